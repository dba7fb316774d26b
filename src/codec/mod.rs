//! Chunk encoders (being written).
