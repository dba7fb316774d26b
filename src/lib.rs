//! frameserver: a fast, CVAT-compatible media layer for annotation tools.
//!
//! * [`media`]: FFmpeg behind a small safe surface (demux, seek, decode, RGB, still images).
//! * [`manifest`]: CVAT `manifest.jsonl` files, byte for byte, built at demux speed.
//! * [`codec`]: chunk encoders (stored zip, JPEG, H.264 MP4).
//! * [`ingest`]: safe handling of uploads, archives and share paths; task creation's pipeline.
//! * [`task`], [`store`]: CVAT's data model arithmetic and the embedded SQLite database.
//! * [`frames`], [`cache`]: frames by number from videos, and the byte-bounded chunk cache.
//! * [`budget`]: the process memory budget decoders, builds and items are counted in.
//! * [`chunks`], [`server`]: building chunks, and `frameserver serve` (CVAT's REST API).
//! * [`annotations`]: CVAT's annotation model, validation, track interpolation.
//! * [`auth`], [`labels`]: users' secrets, and CVAT label definitions.
//! * [`workflow`]: jobs' stage, state and status rules (the review workflow).
//! * [`formats`]: dataset exporters and importers behind one trait.
//! * [`cli`]: the command-line front ends shared by the `manifest` and `frameserver` binaries.

pub mod annotations;
pub mod auth;
pub mod budget;
pub mod cache;
pub mod chunks;
pub mod cli;
pub mod codec;
pub mod dataset;
pub mod formats;
pub mod frames;
pub mod ingest;
pub mod labels;
pub mod manifest;
pub mod media;
pub mod server;
pub mod store;
pub mod task;
pub mod workflow;
