//! Dataset formats: one module per format, each implementing [`Format`]; [`registry`] lists them
//! (CVAT's display names, spec `formats.md` §2). Exports stream into a zip ([`ZipSink`]); imports
//! read a zip or a bare file ([`ImportInput`]) and report the file and line/item of the first
//! problem ([`FormatError::Invalid`]).

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::annotations::{Annotations, LabelIndex};

pub mod cvat;
pub mod datumaro;

/// A frame of the task as formats see it.
#[derive(Debug, Clone)]
pub struct DatasetFrame {
    /// Task-relative frame number.
    pub rel: u64,
    /// Absolute source frame (`start + rel * step`).
    pub abs: u64,
    /// The frame's path as CVAT names it: the image's relative path (with extension) for image
    /// tasks, `frame_{abs:06}.PNG` for video tasks.
    pub name: String,
    pub width: u32,
    pub height: u32,
}

/// A task as formats see it: meta, labels, frames and annotations (tracks not interpolated).
#[derive(Debug, Clone)]
pub struct TaskDataset<'a> {
    pub task_id: i64,
    pub name: String,
    /// `annotation` (images) or `interpolation` (video).
    pub mode: String,
    pub size: u64,
    pub overlap: u64,
    pub bug_tracker: String,
    /// Task subset; empty means `default`.
    pub subset: String,
    pub created: String,
    pub updated: String,
    pub owner: Option<String>,
    /// Video tasks: the video's display size.
    pub original_size: Option<(u32, u32)>,
    /// Segments (jobs): `(id, start, stop)`, task-relative.
    pub segments: Vec<(i64, u64, u64)>,
    pub labels: &'a LabelIndex,
    /// Every task frame, in order (`frames[rel]`).
    pub frames: Vec<DatasetFrame>,
    pub annotations: &'a Annotations,
}

/// Where exported images come from (the chunk cache / frame provider).
pub trait FrameSource: Sync {
    /// The image bytes of task frame `rel`, and the extension they are encoded with.
    fn image(&self, rel: u64) -> Result<(Vec<u8>, String), FormatError>;
}

/// Export options.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions {
    /// Write the images too ("Save images").
    pub save_images: bool,
}

/// A streaming zip writer: each file is written as it is produced, never the whole dataset
/// in memory.
pub struct ZipSink<W: Write + Seek> {
    zip: zip::ZipWriter<W>,
}

impl<W: Write + Seek> ZipSink<W> {
    /// A zip writing into `w`.
    pub fn new(w: W) -> Self {
        ZipSink {
            zip: zip::ZipWriter::new(w),
        }
    }

    /// Starts a deflated file; write its bytes to the returned writer.
    pub fn file(&mut self, name: &str) -> Result<&mut zip::ZipWriter<W>, FormatError> {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(1))
            .large_file(false);
        self.zip
            .start_file(name, opts)
            .map_err(|e| FormatError::Io(e.to_string()))?;
        Ok(&mut self.zip)
    }

    /// Starts a stored (uncompressed) file: for images, which do not compress.
    pub fn stored_file(&mut self, name: &str) -> Result<&mut zip::ZipWriter<W>, FormatError> {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        self.zip
            .start_file(name, opts)
            .map_err(|e| FormatError::Io(e.to_string()))?;
        Ok(&mut self.zip)
    }

    /// Finishes the archive.
    pub fn finish(self) -> Result<W, FormatError> {
        self.zip
            .finish()
            .map_err(|e| FormatError::Io(e.to_string()))
    }
}

/// An import's input: a zip archive, or a bare annotation file.
#[derive(Debug, Clone)]
pub enum ImportInput {
    Zip(PathBuf),
    File(PathBuf),
}

impl ImportInput {
    /// Detects the kind by the file's magic bytes.
    pub fn open(path: &Path) -> Result<ImportInput, FormatError> {
        let mut magic = [0u8; 4];
        let n = std::fs::File::open(path)
            .and_then(|mut f| f.read(&mut magic))
            .map_err(|e| FormatError::Io(format!("{}: {e}", path.display())))?;
        Ok(if n == 4 && &magic == b"PK\x03\x04" {
            ImportInput::Zip(path.to_owned())
        } else {
            ImportInput::File(path.to_owned())
        })
    }

    /// Names of the files inside (a bare file: its own name).
    pub fn names(&self) -> Result<Vec<String>, FormatError> {
        match self {
            ImportInput::File(p) => Ok(vec![p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()]),
            ImportInput::Zip(p) => {
                let z = open_zip(p)?;
                Ok(z.file_names().map(str::to_owned).collect())
            }
        }
    }

    /// Reads one file (by its name inside the zip; a bare file ignores the name). Refuses
    /// entries that decompress to more than `limit` bytes.
    pub fn read(&self, name: &str, limit: u64) -> Result<Vec<u8>, FormatError> {
        let mut out = Vec::new();
        match self {
            ImportInput::File(p) => {
                std::fs::File::open(p)
                    .map_err(|e| FormatError::Io(e.to_string()))?
                    .take(limit + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| FormatError::Io(e.to_string()))?;
            }
            ImportInput::Zip(p) => {
                let mut z = open_zip(p)?;
                let f = z.by_name(name).map_err(|e| {
                    FormatError::invalid(name, "", format!("cannot read it from the archive: {e}"))
                })?;
                f.take(limit + 1).read_to_end(&mut out).map_err(|e| {
                    FormatError::invalid(name, "", format!("the archive is corrupt: {e}"))
                })?;
            }
        }
        if out.len() as u64 > limit {
            return Err(FormatError::invalid(
                name,
                "",
                format!("the file is larger than {limit} bytes"),
            ));
        }
        Ok(out)
    }
}

fn open_zip(p: &Path) -> Result<zip::ZipArchive<std::fs::File>, FormatError> {
    let f = std::fs::File::open(p).map_err(|e| FormatError::Io(e.to_string()))?;
    zip::ZipArchive::new(f).map_err(|e| {
        FormatError::invalid(
            &p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            "",
            format!("not a readable zip archive: {e}"),
        )
    })
}

/// Errors of exports and imports.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(String),
    /// The input is malformed or does not fit the task: the file, where in it, and why.
    #[error("{file}{}: {reason}", if location.is_empty() { String::new() } else { format!(", {location}") })]
    Invalid {
        file: String,
        location: String,
        reason: String,
    },
    /// The archive is not in this format at all.
    #[error("the file is not a {format} dataset: {reason}")]
    NotThisFormat { format: String, reason: String },
}

impl From<std::io::Error> for FormatError {
    fn from(e: std::io::Error) -> Self {
        FormatError::Io(e.to_string())
    }
}

impl FormatError {
    /// A problem at `location` (e.g. "line 12", "item 'a/b'") of `file`.
    pub fn invalid(file: &str, location: impl Into<String>, reason: impl Into<String>) -> Self {
        FormatError::Invalid {
            file: file.to_owned(),
            location: location.into(),
            reason: reason.into(),
        }
    }
}

/// A dataset format. Adding a format is one module implementing this trait, plus a line in
/// [`registry`].
pub trait Format: Send + Sync {
    /// CVAT's display name without the version, e.g. `"CVAT for images"`.
    fn name(&self) -> &'static str;
    /// Version, e.g. `"1.1"`.
    fn version(&self) -> &'static str;
    /// Extension shown in the format list, e.g. `"ZIP"`.
    fn ext(&self) -> &'static str {
        "ZIP"
    }
    /// `2d` or `3d`.
    fn dimension(&self) -> &'static str {
        "2d"
    }
    /// The importer's name when it differs from the exporter's (CVAT XML imports as "CVAT 1.1").
    fn import_name(&self) -> Option<&'static str> {
        None
    }
    /// Whether `export` is implemented.
    fn can_export(&self) -> bool;
    /// Whether `import` is implemented.
    fn can_import(&self) -> bool;
    /// Writes the dataset into `zip`; images come from `images` when `opts.save_images`.
    fn export(
        &self,
        ds: &TaskDataset<'_>,
        opts: &ExportOptions,
        images: Option<&dyn FrameSource>,
        zip: &mut ZipSink<std::fs::File>,
        progress: &dyn Fn(f64),
    ) -> Result<(), FormatError>;
    /// Reads annotations for the task `ds` (its labels and frames) from `input`.
    fn import(&self, input: &ImportInput, ds: &TaskDataset<'_>)
        -> Result<Annotations, FormatError>;

    /// `"{name} {version}"`.
    fn display_name(&self) -> String {
        format!("{} {}", self.name(), self.version())
    }
}

/// Uncompressed bytes per independently compressed piece of a [`DeflatedEntry`].
const PIECE: usize = 64 << 10;
/// The deflate window: each piece is primed with up to this many bytes that precede it, so
/// compressing in pieces costs (almost) no ratio.
const WINDOW: usize = 32 << 10;

/// A compressed piece of a [`DeflatedEntry`]: raw deflate data of `len` bytes ending on a byte
/// boundary (a sync flush, not the final block), and their CRC-32.
struct Piece {
    data: Vec<u8>,
    crc: crc32fast::Hasher,
}

/// Deflates `bytes` (level 1) primed with the window `dict` of what precedes them.
fn deflate_piece(bytes: &[u8], dict: &[u8]) -> Piece {
    use flate2::{Compress, Compression, FlushCompress};
    let mut c = Compress::new(Compression::fast(), false);
    if !dict.is_empty() {
        c.set_dictionary(dict)
            .expect("a raw deflate stream takes a dictionary before any input");
    }
    let mut out = Vec::with_capacity(bytes.len() / 3 + 64);
    loop {
        let done = c.total_in() as usize;
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity() / 2 + 64);
        }
        c.compress_vec(&bytes[done..], &mut out, FlushCompress::Sync)
            .expect("deflating into memory cannot fail");
        // The flush is complete once all input is in and the output was not filled up.
        if c.total_in() as usize == bytes.len() && out.len() < out.capacity() {
            break;
        }
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(bytes);
    Piece { data: out, crc }
}

/// Deflates `bytes` in [`PIECE`]s on all cores; `before` is (the end of) what precedes them in
/// the entry.
fn deflate_in_pieces(bytes: &[u8], before: &[u8]) -> Vec<Piece> {
    use rayon::prelude::*;
    (0..bytes.len().div_ceil(PIECE))
        .into_par_iter()
        .map(|k| {
            let (start, end) = (k * PIECE, ((k + 1) * PIECE).min(bytes.len()));
            let dict = if start == 0 {
                &before[before.len().saturating_sub(WINDOW)..]
            } else {
                &bytes[start.saturating_sub(WINDOW)..start]
            };
            deflate_piece(&bytes[start..end], dict)
        })
        .collect()
}

/// A deflated zip entry compressed on all cores, pigz-style: its bytes are cut into pieces that
/// are deflated independently (each primed with the 32 KiB before it) and concatenated, which is
/// one valid deflate stream. One core deflating an 8 MB annotation file was the longest part
/// of an annotation-only export. The compressed bytes wait in a temporary file (memory stays
/// bounded whatever the dataset size) until [`finish`](Self::finish) copies them into the zip.
///
/// Small writes ([`Write`]) are gathered and compressed in pieces too;
/// [`write_in_parallel_batches`] renders and compresses many items at once.
pub struct DeflatedEntry {
    name: String,
    spool: std::io::BufWriter<std::fs::File>,
    crc: crc32fast::Hasher,
    /// Uncompressed and compressed bytes so far.
    size: u64,
    compressed: u64,
    pending: Vec<u8>,
    /// The last [`WINDOW`] bytes written: the dictionary of the next piece.
    tail: Vec<u8>,
}

impl DeflatedEntry {
    /// An empty entry that will be called `name` in the archive.
    pub fn new(name: &str) -> Result<DeflatedEntry, FormatError> {
        Ok(DeflatedEntry {
            name: name.to_owned(),
            spool: std::io::BufWriter::with_capacity(
                1 << 16,
                tempfile::tempfile()
                    .map_err(|e| FormatError::Io(format!("cannot create a temporary file: {e}")))?,
            ),
            crc: crc32fast::Hasher::new(),
            size: 0,
            compressed: 0,
            pending: Vec::new(),
            tail: Vec::new(),
        })
    }

    fn push(&mut self, pieces: Vec<Piece>, bytes: &[u8]) -> std::io::Result<()> {
        for p in pieces {
            self.spool.write_all(&p.data)?;
            self.compressed += p.data.len() as u64;
            self.crc.combine(&p.crc);
        }
        self.size += bytes.len() as u64;
        let keep = WINDOW.min(bytes.len());
        if keep < WINDOW {
            // Short: the window also holds older bytes.
            let drop = (self.tail.len() + keep).saturating_sub(WINDOW);
            self.tail.drain(..drop);
        } else {
            self.tail.clear();
        }
        self.tail.extend_from_slice(&bytes[bytes.len() - keep..]);
        Ok(())
    }

    fn flush_pending(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.pending);
        let pieces = deflate_in_pieces(&bytes, &self.tail);
        self.push(pieces, &bytes)
    }

    /// Ends the deflate stream and writes the entry into `zip`.
    pub fn finish<W: Write + Seek>(mut self, zip: &mut ZipSink<W>) -> Result<(), FormatError> {
        let io = |e: std::io::Error| FormatError::Io(e.to_string());
        self.flush_pending().map_err(io)?;
        // The final block: empty, fixed Huffman codes (BFINAL=1, BTYPE=01, end of block).
        self.spool.write_all(&[0x03, 0x00]).map_err(io)?;
        self.compressed += 2;
        let mut spool = self.spool.into_inner().map_err(|e| io(e.into_error()))?;
        let size = self.size;
        let (Ok(size32), Ok(compressed32)) = (u32::try_from(size), u32::try_from(self.compressed))
        else {
            return Err(FormatError::Io(format!(
                "{} would be larger than 4 GiB",
                self.name
            )));
        };
        // The zip crate copies a compressed entry only from a zip: give it a local file header
        // followed by the data, as a stream.
        let when = zip::DateTime::default_for_write();
        let mut header = Vec::with_capacity(30 + self.name.len());
        header.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        header.extend_from_slice(&20u16.to_le_bytes()); // version needed: deflate
        header.extend_from_slice(&(1u16 << 11).to_le_bytes()); // flags: UTF-8 name
        header.extend_from_slice(&8u16.to_le_bytes()); // method: deflate
        header.extend_from_slice(&when.timepart().to_le_bytes());
        header.extend_from_slice(&when.datepart().to_le_bytes());
        header.extend_from_slice(&self.crc.finalize().to_le_bytes());
        header.extend_from_slice(&compressed32.to_le_bytes());
        header.extend_from_slice(&size32.to_le_bytes());
        header.extend_from_slice(&(self.name.len() as u16).to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes()); // no extra field
        header.extend_from_slice(self.name.as_bytes());
        spool.seek(std::io::SeekFrom::Start(0)).map_err(io)?;
        let mut stream = std::io::Read::chain(&header[..], spool);
        let file = zip::read::read_zipfile_from_stream(&mut stream)
            .map_err(|e| FormatError::Io(e.to_string()))?
            .ok_or_else(|| FormatError::Io("the entry's header was not read back".into()))?;
        zip.zip
            .raw_copy_file(file)
            .map_err(|e| FormatError::Io(e.to_string()))
    }
}

impl Write for DeflatedEntry {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= 4 * PIECE {
            self.flush_pending()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes `n` rendered items in order into `out`: each batch of items is rendered and
/// compressed on all cores (`render(i)`) while the previous batch is written, so serialising and
/// compressing both use every core; memory holds two batches, whatever `n`.
/// `progress(items written)` is called after each batch.
pub(crate) fn write_in_parallel_batches<E: Send + From<std::io::Error>>(
    n: usize,
    render: impl Fn(usize) -> Result<Vec<u8>, E> + Sync,
    out: &mut DeflatedEntry,
    mut progress: impl FnMut(usize),
) -> Result<(), E> {
    use rayon::prelude::*;
    const BATCH: usize = 128;
    out.flush_pending()?;
    // A batch: its bytes and their compressed pieces (primed with the previous batch's end).
    let make = |start: usize, before: &[u8]| -> Result<(Vec<u8>, Vec<Piece>), E> {
        let items: Vec<Vec<u8>> = (start..(start + BATCH).min(n))
            .into_par_iter()
            .map(&render)
            .collect::<Result<_, E>>()?;
        let bytes = items.concat();
        let pieces = deflate_in_pieces(&bytes, before);
        Ok((bytes, pieces))
    };
    let mut pending = Some(make(0, &out.tail)?);
    let mut start = 0;
    while let Some((bytes, pieces)) = pending.take() {
        let next = start + BATCH;
        let (made, wrote) = rayon::join(
            || {
                if next < n {
                    make(next, &bytes).map(Some)
                } else {
                    Ok(None)
                }
            },
            || out.push(pieces, &bytes),
        );
        wrote?;
        start = next;
        progress(start.min(n));
        pending = made?;
    }
    Ok(())
}

/// Every format frameserver knows, implemented or not.
pub fn registry() -> Vec<Box<dyn Format>> {
    vec![
        Box::new(cvat::CvatXml::IMAGES),
        Box::new(cvat::CvatXml::VIDEO),
        Box::new(datumaro::Datumaro::default()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text that compresses like annotation files do, `n` bytes of it.
    fn text(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        let mut out = Vec::with_capacity(n + 64);
        while out.len() < n {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let line = format!(
                "{{\"id\":{},\"type\":\"bbox\",\"bbox\":[{}.{},{}.{}]}},",
                x >> 54,
                (x >> 20) % 640,
                (x >> 30) % 100,
                (x >> 40) % 480,
                (x >> 12) % 100
            );
            out.extend_from_slice(line.as_bytes());
        }
        out.truncate(n);
        out
    }

    fn read_back(zip: Vec<u8>, name: &str) -> Vec<u8> {
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        let mut f = z.by_name(name).unwrap();
        let mut out = Vec::new();
        // Reading to the end checks the CRC too.
        f.read_to_end(&mut out).unwrap();
        out
    }

    /// Entries written in pieces (small writes, large writes, parallel batches of items of every
    /// size, nothing at all) read back byte for byte, beside ordinary entries, and compress as
    /// well as one deflate stream does.
    #[test]
    fn deflated_entries_read_back_exactly() {
        let mut sink = ZipSink::new(std::io::Cursor::new(Vec::new()));
        sink.stored_file("before.bin")
            .unwrap()
            .write_all(b"raw")
            .unwrap();

        let empty = DeflatedEntry::new("empty.json").unwrap();
        empty.finish(&mut sink).unwrap();

        let items: Vec<Vec<u8>> = (0..300)
            .map(|i| text([0, 10, 3_000, 40_000, 200_000][i % 5], i as u64))
            .collect();
        let mut expected = b"{\"head\":".to_vec();
        let mut e = DeflatedEntry::new("dir/items.json").unwrap();
        e.write_all(&expected).unwrap();
        write_in_parallel_batches(
            items.len(),
            |i| Ok::<_, std::io::Error>(items[i].clone()),
            &mut e,
            |_| {},
        )
        .unwrap();
        for it in &items {
            expected.extend_from_slice(it);
        }
        let big = text(5 * PIECE + 17, 99);
        for part in big.chunks(1000) {
            e.write_all(part).unwrap();
        }
        expected.extend_from_slice(&big);
        e.write_all(b"}").unwrap();
        expected.push(b'}');
        let compressed = e.compressed;
        e.finish(&mut sink).unwrap();
        sink.file("after.txt").unwrap().write_all(b"tail").unwrap();

        let zip = sink.finish().unwrap().into_inner();
        assert_eq!(read_back(zip.clone(), "before.bin"), b"raw");
        assert_eq!(read_back(zip.clone(), "empty.json"), b"");
        assert_eq!(read_back(zip.clone(), "after.txt"), b"tail");
        let got = read_back(zip, "dir/items.json");
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "contents differ");

        let mut one = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        one.write_all(&expected).unwrap();
        let one = one.finish().unwrap().len() as f64;
        assert!(
            (compressed as f64) < one * 1.05,
            "pieces {compressed} bytes vs one stream {one}"
        );
    }
}
