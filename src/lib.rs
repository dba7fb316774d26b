//! frameserver: a fast, CVAT-compatible media layer for annotation tools.
//!
//! * [`media`]: FFmpeg behind a small safe surface (demux, seek, decode, RGB, still images).
//! * [`manifest`]: CVAT `manifest.jsonl` files, byte for byte, built at demux speed.
//! * [`codec`]: chunk encoders (stored zip, JPEG, H.264 MP4).
//! * [`ingest`]: safe handling of uploads, archives and share paths.
//! * [`cli`]: the command-line front ends shared by the `manifest` and `frameserver` binaries.

pub mod cli;
pub mod codec;
pub mod ingest;
pub mod manifest;
pub mod media;
