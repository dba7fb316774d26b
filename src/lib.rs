//! frameserver: a fast, CVAT-compatible media layer for annotation tools.
//!
//! * [`media`]: FFmpeg behind a small safe surface (demux, seek, decode, RGB, still images).
//! * [`manifest`]: CVAT `manifest.jsonl` files, byte for byte, built at demux speed.
//! * [`cli`]: the command-line front ends shared by the `manifest` and `frameserver` binaries.

pub mod cli;
pub mod manifest;
pub mod media;
