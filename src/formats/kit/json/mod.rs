//! JSON for formats that read or write it: [`write`] appends scalars byte for byte as
//! `serde_json` writes them (exporters that write JSON by hand), [`read`] opens annotation files
//! under the import limits and reads them straight into typed values.
pub mod read;
pub mod write;

pub use write::{put_bool, put_f64, put_i64, put_str, put_u64};
