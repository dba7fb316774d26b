//! Safe extraction of zip, tar and tar.gz archives of images.
//!
//! The archive is hostile until proven otherwise. Every entry name is normalized and checked
//! before anything is written ([`super::names::normalize_entry_name`]); only regular files are
//! written, with `create_new` (never through an existing file or symlink); uncompressed bytes are
//! counted as they stream out of the decompressor, so sizes in headers are never trusted and a
//! bomb is stopped after a few megabytes. On any error everything written so far is removed, so
//! the destination is left as it was.

use std::cell::Cell;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use zip::result::ZipError;

use super::names::{is_ignored_name, normalize_entry_name};
use super::IngestError;

/// The expansion ratio is only checked once this many uncompressed bytes have come out of an
/// archive (4 MiB): small archives of very compressible files are fine.
pub const RATIO_CHECK_AFTER_BYTES: u64 = 4 << 20;

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
    /// Most uncompressed bytes in total. Default 64 GiB.
    pub max_total_bytes: u64,
    /// Largest accepted ratio of uncompressed bytes to the archive's size on disk, checked once
    /// more than [`RATIO_CHECK_AFTER_BYTES`] have come out (compression-bomb protection).
    /// Default 200; `f64::INFINITY` disables the check.
    pub max_ratio: f64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_entries: 100_000,
            max_total_bytes: 64 << 30,
            max_ratio: 200.0,
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
///   [`ArchiveLimits::max_total_bytes`] uncompressed, or an expansion ratio above
///   [`ArchiveLimits::max_ratio`] ([`IngestError::TooManyEntries`], [`IngestError::TooLarge`],
///   [`IngestError::CompressionBomb`]);
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
    let archive_bytes = fs::metadata(archive)
        .map_err(|e| IngestError::io(archive, e))?
        .len();
    let file = File::open(archive).map_err(|e| IngestError::io(archive, e))?;
    let meter = Meter::new(*limits, archive_bytes);
    let mut out = Output::create(dest)?;
    match format {
        ArchiveFormat::Zip => extract_zip(archive, file, &mut out, &meter)?,
        ArchiveFormat::Tar => extract_tar(BufReader::new(file), &mut out, &meter)?,
        ArchiveFormat::TarGz => {
            let mut gz = flate2::read::MultiGzDecoder::new(BufReader::new(file));
            let mut head = [0u8; 512];
            let n =
                read_up_to(&mut gz, &mut head).map_err(|e| IngestError::Corrupt(e.to_string()))?;
            if !is_tar_header(&head[..n]) {
                return Err(IngestError::UnsupportedArchive(
                    "the gzip file does not contain a tar archive; upload a zip, tar or tar.gz \
                     archive"
                        .into(),
                ));
            }
            // The tar reader gets the peeked block back first (and meters it then).
            extract_tar(io::Cursor::new(head).chain(gz), &mut out, &meter)?;
        }
    }
    Ok(out.commit())
}

// ---------------------------------------------------------------------------------------------
// Zip

fn extract_zip(
    path: &Path,
    file: File,
    out: &mut Output,
    meter: &Meter,
) -> Result<(), IngestError> {
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(zip_error)?;
    if zip.len() > meter.limits.max_entries {
        return Err(IngestError::TooManyEntries {
            limit: meter.limits.max_entries,
        });
    }
    // The zip reader keeps one entry per name: walk the central directory ourselves so that
    // duplicates (which would hide an entry) and extra entries are seen.
    check_central_directory(
        path,
        zip.central_directory_start(),
        meter.limits.max_entries,
    )?;

    // Names first: an unsafe name anywhere rejects the archive before anything is written.
    let mut names = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let name = zip.name_for_index(i).unwrap_or_default().to_owned();
        let rel = normalize_entry_name(&name).map_err(|reason| IngestError::UnsafeEntry {
            name: name.clone(),
            reason,
        })?;
        names.push((name, rel));
    }

    for (i, (name, rel)) in names.into_iter().enumerate() {
        let entry = match zip.by_index(i) {
            Ok(entry) => entry,
            Err(ZipError::UnsupportedArchive(msg)) if msg == ZipError::PASSWORD_REQUIRED => {
                return Err(IngestError::Encrypted(name));
            }
            Err(e) => return Err(zip_error(e)),
        };
        if entry.encrypted() {
            return Err(IngestError::Encrypted(name));
        }
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
        let mut reader = MeteredReader::new(entry, meter);
        copy_entry(&mut reader, &mut target, out.dest.join(&rel), meter, &name)?;
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
        let written = copy_entry(&mut entry, &mut target, out.dest.join(&rel), meter, &name)?;
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
struct Meter {
    limits: ArchiveLimits,
    archive_bytes: u64,
    total: Cell<u64>,
    /// While tar headers are being read: `total` when that started.
    metadata_start: Cell<Option<u64>>,
    violation: Cell<Option<Violation>>,
}

#[derive(Debug, Clone, Copy)]
enum Violation {
    TooLarge,
    Bomb,
    MetadataTooLarge,
}

impl Meter {
    fn new(limits: ArchiveLimits, archive_bytes: u64) -> Meter {
        Meter {
            limits,
            archive_bytes,
            total: Cell::new(0),
            metadata_start: Cell::new(None),
            violation: Cell::new(None),
        }
    }

    fn metadata_phase(&self, on: bool) {
        self.metadata_start.set(on.then(|| self.total.get()));
    }

    fn add(&self, n: usize) -> io::Result<()> {
        let total = self.total.get().saturating_add(n as u64);
        self.total.set(total);
        let violation = if total > self.limits.max_total_bytes {
            Some(Violation::TooLarge)
        } else if total > RATIO_CHECK_AFTER_BYTES
            && total as f64 > self.limits.max_ratio * self.archive_bytes as f64
        {
            Some(Violation::Bomb)
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
                Err(io::Error::other("archive limit exceeded"))
            }
        }
    }

    fn violation(&self) -> Option<IngestError> {
        self.violation.get().map(|v| match v {
            Violation::TooLarge => IngestError::TooLarge {
                limit: self.limits.max_total_bytes,
            },
            Violation::Bomb => IngestError::CompressionBomb {
                max_ratio: self.limits.max_ratio,
                archive_bytes: self.archive_bytes,
            },
            Violation::MetadataTooLarge => IngestError::UnsupportedArchive(
                "a tar entry has a long-name or pax header larger than 1 MiB".into(),
            ),
        })
    }
}

/// A read error from the archive: a limit that was hit, else corruption.
fn read_error(meter: &Meter, e: io::Error) -> IngestError {
    meter
        .violation()
        .unwrap_or_else(|| IngestError::Corrupt(e.to_string()))
}

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
    meter: &Meter,
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
                return Err(meter
                    .violation()
                    .unwrap_or_else(|| IngestError::Corrupt(format!("{name:?}: {e}"))))
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
