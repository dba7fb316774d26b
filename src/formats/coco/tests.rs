//! COCO unit tests.
