//! Zip chunks (spec §12.1/§12.2): entries in frame order, stored (no compression), written
//! deterministically in memory; and random access to one entry of a cached chunk.

use std::io::{Cursor, Read, Write};

use ::zip::write::SimpleFileOptions;
use ::zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use super::{CodecError, Result};

/// The entry name of the `idx`-th frame of a chunk: `format!("{idx:06}.{ext}")`, e.g.
/// `000000.jpeg`; `ext` without the dot, case preserved (`000003.JPG`).
pub fn entry_name(idx: usize, ext: &str) -> String {
    format!("{idx:06}.{ext}")
}

/// Builds a zip chunk in memory. Entries keep their insertion order (consumers map entries to
/// frames by position) and carry a fixed 1980-01-01 00:00 DOS timestamp, so the same frames
/// always give the same bytes.
pub struct ZipChunk {
    writer: ZipWriter<Cursor<Vec<u8>>>,
    options: SimpleFileOptions,
    entries: usize,
}

impl ZipChunk {
    /// A chunk whose entries are STORED, as all CVAT frame chunks are.
    pub fn new() -> Self {
        Self::with_method(CompressionMethod::Stored, 0)
    }

    /// Like [`new`](Self::new), reserving `capacity` bytes up front (e.g. the sum of the
    /// entry sizes plus ~100 bytes per entry).
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_method(CompressionMethod::Stored, capacity)
    }

    /// A chunk whose entries are DEFLATED: CVAT's context-image archives (§12.5).
    pub fn deflated() -> Self {
        Self::with_method(CompressionMethod::Deflated, 0)
    }

    fn with_method(method: CompressionMethod, capacity: usize) -> Self {
        ZipChunk {
            writer: ZipWriter::new(Cursor::new(Vec::with_capacity(capacity))),
            options: SimpleFileOptions::default()
                .compression_method(method)
                .last_modified_time(DateTime::default())
                .unix_permissions(0o644),
            entries: 0,
        }
    }

    /// Appends an entry. Fails on a duplicate name.
    pub fn add(&mut self, name: &str, data: &[u8]) -> Result<()> {
        self.writer.start_file(name, self.options)?;
        self.writer.write_all(data)?;
        self.entries += 1;
        Ok(())
    }

    /// Number of entries added so far.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// No entries yet.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Writes the central directory and returns the archive bytes.
    pub fn finish(self) -> Result<Vec<u8>> {
        Ok(self.writer.finish()?.into_inner())
    }
}

impl Default for ZipChunk {
    fn default() -> Self {
        Self::new()
    }
}

/// Number of entries in a zip archive.
pub fn zip_entry_count(bytes: &[u8]) -> Result<usize> {
    Ok(ZipArchive::new(Cursor::new(bytes))?.len())
}

/// The `index`-th entry (by position in the central directory, i.e. insertion order) of a zip
/// archive: its name and its uncompressed bytes (stored or deflated; the CRC is checked).
pub fn read_zip_entry(bytes: &[u8], index: usize) -> Result<(String, Vec<u8>)> {
    let mut archive = ZipArchive::new(Cursor::new(bytes))?;
    let count = archive.len();
    if index >= count {
        return Err(CodecError::ZipEntryOutOfRange { index, count });
    }
    let mut file = archive.by_index(index)?;
    let name = file.name().to_owned();
    // The declared size is only a hint (capped so a corrupt header cannot force a huge
    // allocation before any data is read).
    let mut data = Vec::with_capacity((file.size() as usize).min(bytes.len().max(1 << 20)));
    file.read_to_end(&mut data)?;
    Ok((name, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        assert_eq!(entry_name(0, "jpeg"), "000000.jpeg");
        assert_eq!(entry_name(3, "JPG"), "000003.JPG");
        assert_eq!(entry_name(1234567, "png"), "1234567.png");
    }

    fn sample() -> Vec<u8> {
        let mut z = ZipChunk::new();
        assert!(z.is_empty());
        // Deliberately not in name order: order of insertion is what counts.
        z.add(&entry_name(1, "png"), b"second").unwrap();
        z.add(&entry_name(0, "jpeg"), b"first").unwrap();
        z.add(&entry_name(2, "tif"), &[]).unwrap();
        z.add(&entry_name(3, "bin"), &vec![7u8; 100_000]).unwrap();
        assert_eq!(z.len(), 4);
        z.finish().unwrap()
    }

    #[test]
    fn round_trip_in_order() {
        let bytes = sample();
        assert_eq!(zip_entry_count(&bytes).unwrap(), 4);
        assert_eq!(
            read_zip_entry(&bytes, 0).unwrap(),
            ("000001.png".into(), b"second".to_vec())
        );
        assert_eq!(
            read_zip_entry(&bytes, 1).unwrap(),
            ("000000.jpeg".into(), b"first".to_vec())
        );
        assert_eq!(read_zip_entry(&bytes, 2).unwrap().1, Vec::<u8>::new());
        assert_eq!(read_zip_entry(&bytes, 3).unwrap().1, vec![7u8; 100_000]);
        let err = read_zip_entry(&bytes, 4).unwrap_err();
        assert!(matches!(
            err,
            CodecError::ZipEntryOutOfRange { index: 4, count: 4 }
        ));
    }

    #[test]
    fn entries_are_stored_and_deterministic() {
        let bytes = sample();
        // 100 kB of one byte value would deflate to almost nothing: stored keeps it whole.
        assert!(bytes.len() > 100_000);
        let mut archive = ZipArchive::new(Cursor::new(&bytes[..])).unwrap();
        for i in 0..archive.len() {
            let f = archive.by_index(i).unwrap();
            assert_eq!(f.compression(), CompressionMethod::Stored);
            assert_eq!(f.compressed_size(), f.size());
            let t = f.last_modified().unwrap();
            assert_eq!((t.year(), t.month(), t.day()), (1980, 1, 1));
        }
        drop(archive);
        assert_eq!(sample(), bytes);
        // Python's zipfile and `unzip` read local headers: check the first one directly.
        assert_eq!(&bytes[0..4], b"PK\x03\x04");
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 0, "method STORED");
    }

    #[test]
    fn deflated_round_trip_and_errors() {
        let mut z = ZipChunk::deflated();
        z.add("a/b.jpg", &vec![1u8; 50_000]).unwrap();
        assert!(z.add("a/b.jpg", b"dup").is_err());
        let bytes = z.finish().unwrap();
        assert!(bytes.len() < 10_000);
        assert_eq!(
            read_zip_entry(&bytes, 0).unwrap(),
            ("a/b.jpg".into(), vec![1u8; 50_000])
        );
        assert!(zip_entry_count(b"not a zip").is_err());
        assert!(read_zip_entry(&[], 0).is_err());
        let empty = ZipChunk::default().finish().unwrap();
        assert_eq!(zip_entry_count(&empty).unwrap(), 0);
    }
}
