//! The formats kit: the small modules every dataset format is built from, so that a format is
//! its own layout and mapping and nothing else.
//!
//! - [`darknet`]: what YOLO 1.1 and the Ultralytics YOLO formats share (box math, subset and
//!   item naming, label-line fields);
//! - [`dataset`]: what an export reads (task meta, frames, annotations by frame, one shape view
//!   for plain and tracked shapes) and where saved images come from;
//! - [`input`]: what an import reads (a zip read entry by entry under the import limits, or a
//!   bare file) and how a failed read becomes an error;
//! - [`sink`] and [`deflate`]: the streaming zip an export writes, a plain writer per file;
//! - [`frames`]: matching imported item names to task frames, CVAT's strategies (spec §6);
//! - [`paths`]: Python's path helpers as CVAT and Datumaro use them, and archive entry names;
//! - [`labelmap`]: contiguous class ids for the formats that number their classes;
//! - [`images`]: saving every frame's image into the archive, with unique names;
//! - [`json`]: JSON written by hand byte for byte as `serde_json` does, and the streaming reader
//!   pieces (limits on what a parser buffers);
//! - [`mask`]: COCO RLE, polygon/box/ellipse rasterisers, bitmaps;
//! - [`validate`]: the one check of imported annotations against the task or job;
//! - [`xml`]: XML text escaped as Python's writers escape it.
pub mod darknet;
pub mod dataset;
pub mod deflate;
pub mod frames;
pub mod images;
pub mod input;
pub mod json;
pub mod labelmap;
pub mod mask;
pub mod paths;
pub mod sink;
pub mod validate;
pub mod xml;
