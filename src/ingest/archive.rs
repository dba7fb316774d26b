//! Safe extraction of zip, tar and tar.gz archives of images.
//!
//! The archive is hostile until proven otherwise. Every entry name is normalized and checked
//! before anything is written ([`super::names::normalize_entry_name`]); only regular files are
//! written, with `create_new` (never through an existing file or symlink); uncompressed bytes are
//! counted as they stream out of the decompressor, so sizes in headers are never trusted. On any
//! error everything written so far is removed, so the destination is left as it was.
//!
//! Bombs are refused the way unzip-style detectors do it: zip entries whose data overlap (the
//! "overlapping files" bomb) are refused before anything is read, an entry that expands more than
//! [`ArchiveLimits::max_ratio`] times its compressed size is stopped once
//! [`ArchiveLimits::ratio_check_after`] bytes came out of it (small, very compressible entries such
//! as uniform masks are fine), and the total is capped by [`ArchiveLimits::max_total_bytes`].
//!
//! [`ZipEntries`] reads a zip entry by entry under the same rules without extracting it: the
//! annotation importers use it.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use zip::result::ZipError;

use super::names::{is_ignored_name, normalize_entry_name};
use super::IngestError;

/// Default of [`ArchiveLimits::ratio_check_after`]: an entry's expansion ratio is only checked
/// once this many uncompressed bytes have come out of it (64 MiB). A uniform 4K mask as a BMP is
/// 25 MiB and deflates ~1000:1; a bomb entry is stopped after this much.
pub const RATIO_CHECK_AFTER_BYTES: u64 = 64 << 20;

/// Largest GNU long name / pax header block accepted before a tar entry (1 MiB): the tar reader
/// keeps these in memory.
const MAX_TAR_METADATA_BYTES: u64 = 1 << 20;

/// Limits applied while extracting an archive; exceeding any of them rejects the whole archive.
///
/// Sizes are the bytes that actually come out of the archive while it is read (for tar, headers
/// and skipped entries included), never the sizes its headers claim.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArchiveLimits {
    /// Most entries (files, directories, skipped ones included). Default 100 000.
    pub max_entries: usize,
    /// Most uncompressed bytes in total (`--max-extracted-size`). Default 64 GiB.
    pub max_total_bytes: u64,
    /// Largest accepted ratio of an entry's uncompressed bytes to its compressed bytes, checked
    /// once more than [`ratio_check_after`](Self::ratio_check_after) bytes have come out of that
    /// entry (compression-bomb protection). Default 200; `f64::INFINITY` disables the check.
    pub max_ratio: f64,
    /// Entries are never refused for their ratio before this many bytes came out of them.
    /// Default [`RATIO_CHECK_AFTER_BYTES`].
    pub ratio_check_after: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_entries: 100_000,
            max_total_bytes: 64 << 30,
            max_ratio: 200.0,
            ratio_check_after: RATIO_CHECK_AFTER_BYTES,
        }
    }
}

/// An archive format [`extract_archive`] can read, detected from the file's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// A zip archive (`PK\x03\x04`, or the end record of an empty one).
    Zip,
    /// An uncompressed tar archive (`ustar` magic, or an old header with a valid checksum).
    Tar,
    /// A gzip-compressed tar archive (`\x1f\x8b`); `.tar.gz`, `.tgz`.
    TarGz,
}

impl ArchiveFormat {
    /// Detects the format from the magic bytes at the start of `path` (the name is not used).
    ///
    /// Errors: [`IngestError::UnsupportedArchive`] for anything else (rar, 7z, bzip2, xz, not an
    /// archive), [`IngestError::Io`] if the file cannot be read.
    pub fn detect(path: &Path) -> Result<ArchiveFormat, IngestError> {
        let mut head = [0u8; 512];
        let mut file = File::open(path).map_err(|e| IngestError::io(path, e))?;
        let n = read_up_to(&mut file, &mut head).map_err(|e| IngestError::io(path, e))?;
        Self::from_magic(&head[..n])
    }

    fn from_magic(head: &[u8]) -> Result<ArchiveFormat, IngestError> {
        let unsupported = |what: &str| {
            Err(IngestError::UnsupportedArchive(format!(
                "{what}; upload a zip, tar or tar.gz archive"
            )))
        };
        if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
            Ok(ArchiveFormat::Zip)
        } else if head.starts_with(b"\x1f\x8b") {
            Ok(ArchiveFormat::TarGz)
        } else if is_tar_header(head) {
            Ok(ArchiveFormat::Tar)
        } else if head.starts_with(b"Rar!") {
            unsupported("RAR archives are not supported")
        } else if head.starts_with(b"7z\xbc\xaf\x27\x1c") {
            unsupported("7z archives are not supported")
        } else if head.starts_with(b"BZh") {
            unsupported("bzip2-compressed archives are not supported")
        } else if head.starts_with(b"\xfd7zXZ\x00") {
            unsupported("xz-compressed archives are not supported")
        } else if head.is_empty() {
            unsupported("the file is empty")
        } else {
            unsupported("the file is not an archive this server can read")
        }
    }
}

/// Whether `block` starts with a tar header: the `ustar` magic, or an old (v7) header whose
/// checksum is right.
fn is_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 {
        return false;
    }
    if &block[257..262] == b"ustar" {
        return true;
    }
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .map(|&b| b as char)
        .filter(|c| ('0'..='7').contains(c))
        .collect();
    let Ok(stored) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    let sum: u32 = block[..512]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u32
            }
        })
        .sum();
    sum == stored && block[0] != 0
}

/// Extracts a zip, tar or tar.gz archive (detected by its magic bytes, whatever its name) into
/// `dest`, creating `dest` if needed. Returns the extracted files' paths relative to `dest`,
/// sorted (`/`-separated, nested directories kept).
///
/// Only regular files are written. Not extracted, silently: directory entries (directories are
/// created as files need them) and names CVAT ignores ([`super::is_ignored_name`]:
/// `__MACOSX`, `.DS_Store`, …). Backslashes in entry names count as separators.
///
/// The whole archive is rejected, and everything written so far removed (`dest` is left as it
/// was, including not existing), on:
/// * an unsafe entry name: absolute, `..`, a drive prefix (`C:`), control characters
///   ([`IngestError::UnsafeEntry`]);
/// * symlinks, hard links, devices, FIFOs, sockets ([`IngestError::UnsafeEntry`]);
/// * two entries with the same normalized path, or a file where another entry needs a
///   directory ([`IngestError::DuplicateEntry`], [`IngestError::UnsafeEntry`]), or an entry whose
///   path already exists in `dest`;
/// * more than [`ArchiveLimits::max_entries`] entries, more than
///   [`ArchiveLimits::max_total_bytes`] uncompressed, an entry expanding more than
///   [`ArchiveLimits::max_ratio`] times, or zip entries sharing their data
///   ([`IngestError::TooManyEntries`], [`IngestError::TooLarge`],
///   [`IngestError::CompressionBomb`], [`IngestError::OverlappingEntries`]);
/// * encrypted zip entries ([`IngestError::Encrypted`]), unsupported formats or compression
///   methods ([`IngestError::UnsupportedArchive`]);
/// * corrupt or truncated data, CRC mismatches ([`IngestError::Corrupt`]).
///
/// Write failures in `dest` are [`IngestError::Io`] (a server fault). Extraction is synchronous
/// and CPU-bound: call it from a blocking task.
pub fn extract_archive(
    archive: &Path,
    dest: &Path,
    limits: &ArchiveLimits,
) -> Result<Vec<PathBuf>, IngestError> {
    let format = ArchiveFormat::detect(archive)?;
    let mut out = Output::create(dest)?;
    match format {
        ArchiveFormat::Zip => extract_zip(ZipEntries::open(archive, limits)?, &mut out)?,
        ArchiveFormat::Tar | ArchiveFormat::TarGz => {
            let meter = Meter::new(*limits);
            let file = File::open(archive).map_err(|e| IngestError::io(archive, e))?;
            let raw = BufReader::new(RawCounter::new(file, &meter));
            if format == ArchiveFormat::Tar {
                extract_tar(raw, &mut out, &meter)?;
            } else {
                let mut gz = flate2::read::MultiGzDecoder::new(raw);
                let mut head = [0u8; 512];
                let n = read_up_to(&mut gz, &mut head)
                    .map_err(|e| IngestError::Corrupt(e.to_string()))?;
                if !is_tar_header(&head[..n]) {
                    return Err(IngestError::UnsupportedArchive(
                        "the gzip file does not contain a tar archive; upload a zip, tar or \
                         tar.gz archive"
                            .into(),
                    ));
                }
                // The tar reader gets the peeked block back first (and meters it then).
                extract_tar(io::Cursor::new(head).chain(gz), &mut out, &meter)?;
            }
        }
    }
    Ok(out.commit())
}

// ---------------------------------------------------------------------------------------------
// Zip

/// A zip archive read entry by entry under [`ArchiveLimits`], without extracting it: every byte
/// that comes out of an entry is counted against the limits, as [`extract_archive`] counts them
/// (which uses it for zips).
///
/// Opening it checks the central directory first: the number of entries, duplicate names (the
/// zip reader would keep only one of them), and that no two entries share compressed data (an
/// "overlapping files" bomb) nor run into the central directory.
pub struct ZipEntries {
    zip: zip::ZipArchive<BufReader<RawCounter<File>>>,
    meter: Meter,
}

impl ZipEntries {
    /// Opens the zip at `path`. Errors: [`IngestError::Io`] if it cannot be read,
    /// [`IngestError::Corrupt`] / [`IngestError::UnsupportedArchive`] if it is not a readable zip,
    /// [`IngestError::TooManyEntries`], [`IngestError::DuplicateEntry`],
    /// [`IngestError::OverlappingEntries`].
    pub fn open(path: &Path, limits: &ArchiveLimits) -> Result<ZipEntries, IngestError> {
        let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
        let meter = Meter::new(*limits);
        let raw = BufReader::new(RawCounter::new(file, &meter));
        let mut zip = zip::ZipArchive::new(raw).map_err(zip_error)?;
        if zip.len() > limits.max_entries {
            return Err(IngestError::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        // The zip reader keeps one entry per name: walk the central directory ourselves so that
        // duplicates (which would hide an entry) and extra entries are seen.
        check_central_directory(path, zip.central_directory_start(), limits.max_entries)?;
        check_overlaps(&mut zip)?;
        Ok(ZipEntries { zip, meter })
    }

    /// Entry names as stored (not normalized), in central-directory order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        (0..self.zip.len()).map(|i| self.zip.name_for_index(i).unwrap_or_default())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.zip.len()
    }

    /// Whether the archive has no entries.
    pub fn is_empty(&self) -> bool {
        self.zip.len() == 0
    }

    /// The index of the entry stored as `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.zip.index_for_name(name)
    }

    /// Opens entry `index` for reading. Its reads fail once a limit is passed, with an
    /// [`io::Error`] whose inner error is the [`IngestError`] (see [`limit_error`]).
    ///
    /// Errors: [`IngestError::Encrypted`], [`IngestError::UnsupportedArchive`] (compression
    /// method), [`IngestError::Corrupt`].
    pub fn entry(&mut self, index: usize) -> Result<ZipEntry<'_>, IngestError> {
        let name = self
            .zip
            .name_for_index(index)
            .unwrap_or_default()
            .to_owned();
        let ZipEntries { zip, meter } = self;
        // The entry's compressed bytes are counted as they are read, from its local header on
        // (a little more than its data: the ratio errs on the lenient side).
        meter.begin_entry(&name);
        let file = match zip.by_index(index) {
            Ok(file) => file,
            Err(ZipError::UnsupportedArchive(msg)) if msg == ZipError::PASSWORD_REQUIRED => {
                return Err(IngestError::Encrypted(name));
            }
            Err(e) => return Err(zip_error(e)),
        };
        if file.encrypted() {
            return Err(IngestError::Encrypted(name));
        }
        Ok(ZipEntry {
            reader: MeteredReader::new(file, meter),
        })
    }
}

/// One zip entry being read (see [`ZipEntries::entry`]).
pub struct ZipEntry<'a> {
    reader: MeteredReader<'a, zip::read::ZipFile<'a, BufReader<RawCounter<File>>>>,
}

impl ZipEntry<'_> {
    /// The uncompressed size its headers declare: a hint, never trusted.
    pub fn declared_size(&self) -> u64 {
        self.reader.inner.size()
    }

    fn is_dir(&self) -> bool {
        self.reader.inner.is_dir()
    }

    fn unix_mode(&self) -> Option<u32> {
        self.reader.inner.unix_mode()
    }
}

impl Read for ZipEntry<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

/// The archive limit behind a read error of a [`ZipEntry`], if that is what it is.
pub fn limit_error(e: &io::Error) -> Option<&IngestError> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<IngestError>())
}

/// Refuses zip entries whose bytes (local header to the end of the compressed data) overlap
/// another entry's or run into the central directory: the "overlapping files" zip bomb, where
/// many entries inflate the same compressed kernel. (`zip`'s own `has_overlapping_files` is
/// quadratic in the number of entries.)
fn check_overlaps<R: Read + Seek>(zip: &mut zip::ZipArchive<R>) -> Result<(), IngestError> {
    let end_of_data = zip.central_directory_start();
    let mut spans = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let f = zip.by_index_raw(i).map_err(zip_error)?;
        let end = f.data_start().saturating_add(f.compressed_size());
        spans.push((f.header_start(), end, i));
    }
    spans.sort_unstable();
    let name = |zip: &zip::ZipArchive<_>, i| zip.name_for_index(i).unwrap_or_default().to_owned();
    for pair in spans.windows(2) {
        let ((_, end, a), (start, _, b)) = (pair[0], pair[1]);
        if start < end {
            return Err(IngestError::OverlappingEntries(name(zip, a), name(zip, b)));
        }
    }
    if let Some(&(_, end, i)) = spans.last() {
        if end > end_of_data {
            return Err(IngestError::Corrupt(format!(
                "the data of {:?} runs into the central directory",
                name(zip, i)
            )));
        }
    }
    Ok(())
}

fn extract_zip(mut zip: ZipEntries, out: &mut Output) -> Result<(), IngestError> {
    // Names first: an unsafe name anywhere rejects the archive before anything is written.
    let mut names = Vec::with_capacity(zip.len());
    for name in zip.names() {
        let rel = normalize_entry_name(name).map_err(|reason| IngestError::UnsafeEntry {
            name: name.to_owned(),
            reason,
        })?;
        names.push((name.to_owned(), rel));
    }

    for (i, (name, rel)) in names.into_iter().enumerate() {
        let mut entry = zip.entry(i)?;
        let file_type = entry.unix_mode().map(|m| m & 0o170_000).unwrap_or(0);
        if let Some(reason) = special_file_reason(file_type) {
            return Err(IngestError::UnsafeEntry { name, reason });
        }
        if entry.is_dir() || name.ends_with('\\') || file_type == 0o040_000 {
            continue;
        }
        let Some(rel) = rel else {
            return Err(IngestError::UnsafeEntry {
                name,
                reason: "the file has no name",
            });
        };
        if is_ignored_name(&rel) {
            continue;
        }
        let mut target = out.create_file(&rel, &name)?;
        copy_entry(&mut entry, &mut target, out.dest.join(&rel), None, &name)?;
    }
    Ok(())
}

/// Why a unix file type (mode & 0o170000) is refused, if it is.
fn special_file_reason(file_type: u32) -> Option<&'static str> {
    match file_type {
        0 | 0o100_000 | 0o040_000 => None,
        0o120_000 => Some("symbolic links are not allowed"),
        0o020_000 | 0o060_000 => Some("device files are not allowed"),
        0o010_000 => Some("FIFOs are not allowed"),
        0o140_000 => Some("sockets are not allowed"),
        _ => Some("the entry is not a regular file"),
    }
}

/// Walks the zip central directory from `start`: counts its records (at most `max_entries`) and
/// refuses duplicate names.
fn check_central_directory(path: &Path, start: u64, max_entries: usize) -> Result<(), IngestError> {
    let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    let mut r = BufReader::new(file);
    r.seek(SeekFrom::Start(start))
        .map_err(|e| IngestError::Corrupt(e.to_string()))?;
    let mut seen = HashSet::new();
    let mut fixed = [0u8; 46];
    loop {
        let n =
            read_up_to(&mut r, &mut fixed[..4]).map_err(|e| IngestError::Corrupt(e.to_string()))?;
        if n < 4 || fixed[..4] != *b"PK\x01\x02" {
            return Ok(());
        }
        r.read_exact(&mut fixed[4..])
            .map_err(|e| IngestError::Corrupt(format!("central directory: {e}")))?;
        let u16_at = |i: usize| u16::from_le_bytes([fixed[i], fixed[i + 1]]) as usize;
        let (name_len, extra_len, comment_len) = (u16_at(28), u16_at(30), u16_at(32));
        let mut name = vec![0u8; name_len];
        r.read_exact(&mut name)
            .map_err(|e| IngestError::Corrupt(format!("central directory: {e}")))?;
        r.seek_relative((extra_len + comment_len) as i64)
            .map_err(|e| IngestError::Corrupt(e.to_string()))?;
        if seen.len() >= max_entries {
            return Err(IngestError::TooManyEntries { limit: max_entries });
        }
        if !seen.insert(name.clone()) {
            return Err(IngestError::DuplicateEntry(
                String::from_utf8_lossy(&name).into_owned(),
            ));
        }
    }
}

fn zip_error(e: ZipError) -> IngestError {
    match e {
        ZipError::UnsupportedArchive(msg) => IngestError::UnsupportedArchive(format!(
            "{msg}; re-create the archive without encryption, using deflate or no compression"
        )),
        ZipError::Io(e) => IngestError::Corrupt(e.to_string()),
        other => IngestError::Corrupt(other.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Tar

fn extract_tar<R: Read>(reader: R, out: &mut Output, meter: &Meter) -> Result<(), IngestError> {
    let mut tar = tar::Archive::new(MeteredReader::new(reader, meter));
    extract_tar_entries(&mut tar, out, meter)?;
    // Read on to the end so that a truncated or corrupt gzip stream (its CRC comes last) is
    // noticed even when the tar end marker came out fine.
    drain(&mut tar.into_inner(), meter)
}

fn extract_tar_entries<R: Read>(
    tar: &mut tar::Archive<R>,
    out: &mut Output,
    meter: &Meter,
) -> Result<(), IngestError> {
    use tar::EntryType as T;

    let mut entries = tar.entries().map_err(|e| read_error(meter, e))?;
    let mut count = 0usize;
    loop {
        meter.metadata_phase(true);
        let next = entries.next();
        meter.metadata_phase(false);
        let Some(entry) = next else {
            return Ok(());
        };
        let mut entry = entry.map_err(|e| read_error(meter, e))?;
        count += 1;
        if count > meter.limits.max_entries {
            return Err(IngestError::TooManyEntries {
                limit: meter.limits.max_entries,
            });
        }
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8(raw).map_err(|e| IngestError::UnsafeEntry {
            name: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            reason: "the name is not valid UTF-8",
        })?;
        meter.begin_entry(&name);
        let rel = normalize_entry_name(&name).map_err(|reason| IngestError::UnsafeEntry {
            name: name.clone(),
            reason,
        })?;
        let unsafe_entry = |reason| IngestError::UnsafeEntry {
            name: name.clone(),
            reason,
        };
        match entry.header().entry_type() {
            T::Regular | T::Continuous => {}
            T::Directory | T::XGlobalHeader => {
                drain(&mut entry, meter)?;
                continue;
            }
            T::Symlink => return Err(unsafe_entry("symbolic links are not allowed")),
            T::Link => return Err(unsafe_entry("hard links are not allowed")),
            T::Char | T::Block => return Err(unsafe_entry("device files are not allowed")),
            T::Fifo => return Err(unsafe_entry("FIFOs are not allowed")),
            T::GNUSparse => {
                return Err(IngestError::UnsupportedArchive(format!(
                    "{name:?} is a sparse file; re-create the archive without --sparse"
                )))
            }
            _ => return Err(unsafe_entry("the entry is not a regular file")),
        }
        let Some(rel) = rel else {
            return Err(unsafe_entry("the file has no name"));
        };
        if is_ignored_name(&rel) {
            drain(&mut entry, meter)?;
            continue;
        }
        let declared = entry.size();
        let mut target = out.create_file(&rel, &name)?;
        let written = copy_entry(
            &mut entry,
            &mut target,
            out.dest.join(&rel),
            Some(meter),
            &name,
        )?;
        if written != declared {
            return Err(IngestError::Corrupt(format!(
                "{name:?} ends after {written} of its {declared} bytes"
            )));
        }
    }
}

fn drain(entry: &mut impl Read, meter: &Meter) -> Result<(), IngestError> {
    io::copy(entry, &mut io::sink())
        .map(drop)
        .map_err(|e| read_error(meter, e))
}

// ---------------------------------------------------------------------------------------------
// Shared machinery

/// Counts uncompressed bytes as they come out of the archive and enforces the limits.
#[derive(Debug)]
struct Meter {
    limits: ArchiveLimits,
    total: Cell<u64>,
    /// Raw (compressed) archive bytes read from the file so far, shared with its
    /// [`RawCounter`]; entries' ratios are measured with it.
    raw: Arc<AtomicU64>,
    /// `raw` when the current entry began.
    entry_start: Cell<u64>,
    /// Uncompressed bytes out of the current entry.
    entry_out: Cell<u64>,
    entry_name: RefCell<String>,
    /// While tar headers are being read: `total` when that started.
    metadata_start: Cell<Option<u64>>,
    violation: Cell<Option<Violation>>,
}

#[derive(Debug, Clone, Copy)]
enum Violation {
    TooLarge,
    /// An entry's ratio: its compressed and uncompressed bytes then.
    Bomb(u64, u64),
    MetadataTooLarge,
}

impl Meter {
    fn new(limits: ArchiveLimits) -> Meter {
        Meter {
            limits,
            total: Cell::new(0),
            raw: Arc::new(AtomicU64::new(0)),
            entry_start: Cell::new(0),
            entry_out: Cell::new(0),
            entry_name: RefCell::new(String::new()),
            metadata_start: Cell::new(None),
            violation: Cell::new(None),
        }
    }

    /// Starts counting a new entry's ratio: its bytes out against the raw bytes read from now.
    fn begin_entry(&self, name: &str) {
        self.entry_out.set(0);
        self.entry_start.set(self.raw.load(Ordering::Relaxed));
        let mut n = self.entry_name.borrow_mut();
        n.clear();
        n.push_str(name);
    }

    /// The current entry's compressed bytes read so far.
    fn entry_compressed(&self) -> u64 {
        self.raw.load(Ordering::Relaxed) - self.entry_start.get()
    }

    fn metadata_phase(&self, on: bool) {
        self.metadata_start.set(on.then(|| self.total.get()));
    }

    fn add(&self, n: usize) -> io::Result<()> {
        let total = self.total.get().saturating_add(n as u64);
        self.total.set(total);
        let entry = self.entry_out.get().saturating_add(n as u64);
        self.entry_out.set(entry);
        let violation = if total > self.limits.max_total_bytes {
            Some(Violation::TooLarge)
        } else if entry > self.limits.ratio_check_after
            && entry as f64 > self.limits.max_ratio * self.entry_compressed().max(1) as f64
        {
            Some(Violation::Bomb(self.entry_compressed(), entry))
        } else if self
            .metadata_start
            .get()
            .is_some_and(|start| total - start > MAX_TAR_METADATA_BYTES)
        {
            Some(Violation::MetadataTooLarge)
        } else {
            None
        };
        match violation {
            None => Ok(()),
            Some(v) => {
                self.violation.set(Some(v));
                Err(io::Error::other(self.error(v)))
            }
        }
    }

    fn error(&self, v: Violation) -> IngestError {
        match v {
            Violation::TooLarge => IngestError::TooLarge {
                limit: self.limits.max_total_bytes,
            },
            Violation::Bomb(compressed_bytes, out_bytes) => IngestError::CompressionBomb {
                entry: self.entry_name.borrow().clone(),
                max_ratio: self.limits.max_ratio,
                compressed_bytes,
                out_bytes,
            },
            Violation::MetadataTooLarge => IngestError::UnsupportedArchive(
                "a tar entry has a long-name or pax header larger than 1 MiB".into(),
            ),
        }
    }

    fn violation(&self) -> Option<IngestError> {
        self.violation.get().map(|v| self.error(v))
    }
}

/// A read error from the archive: a limit that was hit, else corruption.
fn read_error(meter: &Meter, e: io::Error) -> IngestError {
    meter
        .violation()
        .unwrap_or_else(|| IngestError::Corrupt(e.to_string()))
}

/// Counts the raw archive bytes read (below the decompressor) into its [`Meter`].
struct RawCounter<R> {
    inner: R,
    raw: Arc<AtomicU64>,
}

impl<R> RawCounter<R> {
    fn new(inner: R, meter: &Meter) -> Self {
        RawCounter {
            inner,
            raw: Arc::clone(&meter.raw),
        }
    }
}

impl<R: Read> Read for RawCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.raw.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: Seek> Seek for RawCounter<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Counts the uncompressed bytes read; fails (with the [`IngestError`] inside the
/// [`io::Error`]) once a limit is passed.
struct MeteredReader<'m, R> {
    inner: R,
    meter: &'m Meter,
}

impl<'m, R> MeteredReader<'m, R> {
    fn new(inner: R, meter: &'m Meter) -> Self {
        MeteredReader { inner, meter }
    }
}

impl<R: Read> Read for MeteredReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.meter.add(n)?;
        Ok(n)
    }
}

/// Streams one entry into `target`; returns the bytes written.
fn copy_entry(
    reader: &mut impl Read,
    target: &mut File,
    target_path: PathBuf,
    meter: Option<&Meter>,
    name: &str,
) -> Result<u64, IngestError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if let Some(v) = meter.and_then(Meter::violation) {
                    return Err(v);
                }
                return Err(match e.downcast::<IngestError>() {
                    Ok(limit) => limit,
                    Err(e) => IngestError::Corrupt(format!("{name:?}: {e}")),
                });
            }
        };
        target
            .write_all(&buf[..n])
            .map_err(|e| IngestError::io(&target_path, e))?;
        written += n as u64;
    }
    Ok(written)
}

/// Fills `buf` as far as the reader allows; returns the count (less only at end of input).
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The destination directory and everything created in it; removed again unless committed.
struct Output {
    dest: PathBuf,
    /// Directories this extraction created (`dest` and its missing ancestors included), in
    /// creation order.
    created_dirs: Vec<PathBuf>,
    /// Files created, absolute.
    created_files: Vec<PathBuf>,
    /// Extracted files, relative to `dest`.
    extracted: Vec<PathBuf>,
    /// Normalized relative paths of files, and of the directories they need.
    files: HashSet<String>,
    dirs: HashSet<String>,
    committed: bool,
}

impl Output {
    fn create(dest: &Path) -> Result<Output, IngestError> {
        let mut out = Output {
            dest: dest.to_path_buf(),
            created_dirs: Vec::new(),
            created_files: Vec::new(),
            extracted: Vec::new(),
            files: HashSet::new(),
            dirs: HashSet::new(),
            committed: false,
        };
        let mut missing = Vec::new();
        let mut p = dest;
        loop {
            match fs::symlink_metadata(p) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    missing.push(p.to_path_buf());
                    match p.parent() {
                        Some(parent) if !parent.as_os_str().is_empty() => p = parent,
                        _ => break,
                    }
                }
                Err(e) => return Err(IngestError::io(p, e)),
            }
        }
        for dir in missing.into_iter().rev() {
            fs::create_dir(&dir).map_err(|e| IngestError::io(&dir, e))?;
            out.created_dirs.push(dir);
        }
        if !fs::metadata(dest)
            .map_err(|e| IngestError::io(dest, e))?
            .is_dir()
        {
            return Err(IngestError::io(
                dest,
                io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            ));
        }
        Ok(out)
    }

    /// Registers `rel` (normalized) as a file, refusing duplicates and file/directory clashes,
    /// creates its parent directories and the file itself (never overwriting anything).
    fn create_file(&mut self, rel: &str, name: &str) -> Result<File, IngestError> {
        let clash = |reason| IngestError::UnsafeEntry {
            name: name.to_owned(),
            reason,
        };
        if self.files.contains(rel) {
            return Err(IngestError::DuplicateEntry(name.to_owned()));
        }
        if self.dirs.contains(rel) {
            return Err(clash("another entry uses this path as a directory"));
        }
        let prefixes: Vec<&str> = rel.match_indices('/').map(|(i, _)| &rel[..i]).collect();
        if prefixes.iter().any(|p| self.files.contains(*p)) {
            return Err(clash(
                "a parent directory of this entry is a file in the archive",
            ));
        }
        self.files.insert(rel.to_owned());
        for prefix in &prefixes {
            if self.dirs.insert((*prefix).to_owned()) {
                let dir = self.dest.join(prefix);
                match fs::symlink_metadata(&dir) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        return Err(clash(
                            "a parent directory exists as a file in the destination",
                        ))
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        fs::create_dir(&dir).map_err(|e| IngestError::io(&dir, e))?;
                        self.created_dirs.push(dir);
                    }
                    Err(e) => return Err(IngestError::io(dir, e)),
                }
            }
        }
        let path = self.dest.join(rel);
        let file = match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(clash(
                    "a file of that name already exists in the destination",
                ))
            }
            Err(e) => return Err(IngestError::io(path, e)),
        };
        self.created_files.push(path);
        self.extracted.push(PathBuf::from(rel));
        Ok(file)
    }

    fn commit(mut self) -> Vec<PathBuf> {
        self.committed = true;
        let mut files = std::mem::take(&mut self.extracted);
        files.sort();
        files
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for file in self.created_files.iter().rev() {
            let _ = fs::remove_file(file);
        }
        for dir in self.created_dirs.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests;
