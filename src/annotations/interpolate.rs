//! Track interpolation (being written): tracks → per-frame shapes, as CVAT exports them.
