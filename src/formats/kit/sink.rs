//! Where exports go: a streaming zip ([`ZipSink`]) that hands formats a plain writer per file.

use std::io::{Seek, Write};

use crate::formats::{zip_error, FormatError};

/// A streaming zip writer: each file is written as it is produced, never the whole dataset
/// in memory. Annotation files are written as [`DeflatedEntry`]s, images as stored files.
pub struct ZipSink<W: Write + Seek> {
    /// Buffered: the zip crate copies raw entries and writes headers in small pieces.
    pub(super) zip: zip::ZipWriter<std::io::BufWriter<W>>,
}

impl<W: Write + Seek> ZipSink<W> {
    /// A zip writing into `w`.
    pub fn new(w: W) -> Self {
        ZipSink {
            zip: zip::ZipWriter::new(std::io::BufWriter::with_capacity(1 << 16, w)),
        }
    }

    /// Starts a stored (uncompressed) file: for images, which do not compress.
    pub fn stored_file(&mut self, name: &str) -> Result<&mut dyn Write, FormatError> {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        self.zip.start_file(name, opts).map_err(zip_error)?;
        Ok(&mut self.zip)
    }

    /// Finishes the archive.
    pub fn finish(self) -> Result<W, FormatError> {
        self.zip
            .finish()
            .map_err(zip_error)?
            .into_inner()
            .map_err(|e| FormatError::io("cannot write the archive", e.into_error()))
    }
}
