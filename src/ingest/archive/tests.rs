//! Extraction tests on real malicious archives built in temp dirs.

use std::io::Cursor;
use std::time::Instant;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::*;

// ------------------------------------------------------------------------------- helpers

fn stored() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(CompressionMethod::Stored)
}

fn deflated() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(CompressionMethod::Deflated)
}

/// A zip with the given entries; names ending in `/` are directories.
fn zip_of(entries: &[(&str, &[u8])], options: SimpleFileOptions) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        if name.ends_with('/') {
            w.add_directory(*name, options).unwrap();
        } else {
            w.start_file(*name, options).unwrap();
            w.write_all(data).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

/// A ustar header block for a raw tar (bypasses the tar crate's own path checks).
fn tar_header(name: &[u8], kind: u8, size: u64, link: &[u8]) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0001750\0");
    h[116..124].copy_from_slice(b"0001750\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"14000000000\0");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// One raw tar entry: name, type flag, data, link target.
type RawEntry<'a> = (&'a [u8], u8, &'a [u8], &'a [u8]);

/// A raw tar of the given entries, then the end marker.
fn raw_tar(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, data, link) in entries {
        out.extend_from_slice(&tar_header(name, *kind, data.len() as u64, link));
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Every path below `dir` (files with their sizes), or `None` if `dir` does not exist.
fn tree(dir: &Path) -> Option<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                out.push(format!("{rel} ({})", meta.len()));
            }
        }
    }
    fs::symlink_metadata(dir).ok()?;
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    Some(out)
}

struct Case {
    tmp: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        Case {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn archive(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.tmp.path().join(name);
        fs::write(&p, bytes).unwrap();
        p
    }

    /// A destination that does not exist yet (two levels, to check both are cleaned up).
    fn new_dest(&self) -> PathBuf {
        self.tmp.path().join("out/raw")
    }

    /// A destination that exists and already holds a file and a directory.
    fn existing_dest(&self) -> PathBuf {
        let d = self.tmp.path().join("existing");
        fs::create_dir_all(d.join("keep_dir")).unwrap();
        fs::write(d.join("keep.txt"), b"keep").unwrap();
        d
    }

    fn extract(&self, archive: &Path, dest: &Path) -> Result<Vec<PathBuf>, IngestError> {
        extract_archive(archive, dest, &ArchiveLimits::default())
    }

    /// Extracts with `limits` into a fresh and into an existing destination, expecting a
    /// rejection that leaves both exactly as they were. Returns the error.
    fn rejected(&self, archive: &Path, limits: &ArchiveLimits) -> IngestError {
        let mut errors = Vec::new();
        for dest in [self.new_dest(), self.existing_dest()] {
            let before = tree(&dest);
            let err = extract_archive(archive, &dest, limits).unwrap_err();
            assert_eq!(tree(&dest), before, "{err}: {} changed", dest.display());
            if before.is_none() {
                assert!(!self.tmp.path().join("out").exists(), "{err}");
            }
            assert!(err.is_client_error(), "{err}");
            assert!(!err.to_string().contains('\n'), "{err}");
            errors.push(err.to_string());
        }
        assert_eq!(errors[0], errors[1]);
        extract_archive(archive, &self.new_dest(), limits).unwrap_err()
    }

    fn rejected_default(&self, archive: &Path) -> IngestError {
        self.rejected(archive, &ArchiveLimits::default())
    }
}

fn names(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

fn assert_unsafe(err: &IngestError, expected_reason: &str) {
    match err {
        IngestError::UnsafeEntry { reason, .. } => assert!(
            reason.contains(expected_reason),
            "{err} (expected {expected_reason:?})"
        ),
        other => panic!("expected UnsafeEntry ({expected_reason}), got {other:?}"),
    }
}

// ------------------------------------------------------------------------------- zip: good

#[test]
fn zip_nested_dirs_kept_and_macos_junk_skipped() {
    let c = Case::new();
    let zip = zip_of(
        &[
            ("top/", b""),
            ("top/b.png", b"bb"),
            ("top/sub/deeper/a.png", b"aaa"),
            ("a.png", b"a"),
            ("__MACOSX/", b""),
            ("__MACOSX/top/._b.png", b"resource fork"),
            ("top/.DS_Store", b"ds"),
            ("top/._.DS_Store", b"ds"),
            ("__MSOSX/x.png", b"x"),
            ("кадры/кадр 1.png", b"u"),
            ("./dot/./c.png", b"c"),
        ],
        deflated(),
    );
    let archive = c.archive("data.zip", &zip);
    let dest = c.existing_dest();
    let files = c.extract(&archive, &dest).unwrap();
    assert_eq!(
        names(&files),
        [
            "a.png",
            "dot/c.png",
            "top/b.png",
            "top/sub/deeper/a.png",
            "кадры/кадр 1.png"
        ]
    );
    assert_eq!(fs::read(dest.join("top/sub/deeper/a.png")).unwrap(), b"aaa");
    assert_eq!(fs::read(dest.join("keep.txt")).unwrap(), b"keep");
    assert!(!dest.join("__MACOSX").exists());
    assert!(!dest.join("top/.DS_Store").exists());
}

#[test]
fn empty_zip_creates_dest_and_returns_nothing() {
    let c = Case::new();
    let archive = c.archive("empty.zip", &zip_of(&[], stored()));
    let dest = c.new_dest();
    assert!(c.extract(&archive, &dest).unwrap().is_empty());
    assert!(dest.is_dir());
}

#[test]
fn format_is_detected_by_magic_not_name() {
    let c = Case::new();
    let zip = c.archive("really_a_zip.tar", &zip_of(&[("z.png", b"z")], deflated()));
    let tar = c.archive("really_a_tar.zip", &raw_tar(&[(b"t.png", b'0', b"t", b"")]));
    let tgz = c.archive(
        "really_a_tgz.bin",
        &gzip(&raw_tar(&[(b"g.png", b'0', b"g", b"")])),
    );
    assert_eq!(ArchiveFormat::detect(&zip).unwrap(), ArchiveFormat::Zip);
    assert_eq!(ArchiveFormat::detect(&tar).unwrap(), ArchiveFormat::Tar);
    assert_eq!(ArchiveFormat::detect(&tgz).unwrap(), ArchiveFormat::TarGz);
    assert_eq!(
        names(&c.extract(&zip, &c.tmp.path().join("z")).unwrap()),
        ["z.png"]
    );
    assert_eq!(
        names(&c.extract(&tar, &c.tmp.path().join("t")).unwrap()),
        ["t.png"]
    );
    assert_eq!(
        names(&c.extract(&tgz, &c.tmp.path().join("g")).unwrap()),
        ["g.png"]
    );
}

#[test]
fn unsupported_formats() {
    let c = Case::new();
    for (name, bytes) in [
        ("a.rar", &b"Rar!\x1a\x07\x01\x00rest"[..]),
        ("a.7z", &b"7z\xbc\xaf\x27\x1c\x00\x04"[..]),
        ("a.tar.bz2", &b"BZh91AY&SY"[..]),
        ("notes.zip", &b"just some text, not an archive"[..]),
        ("empty.zip", &b""[..]),
    ] {
        let archive = c.archive(name, bytes);
        let err = c.rejected_default(&archive);
        assert!(
            matches!(err, IngestError::UnsupportedArchive(_)),
            "{name}: {err}"
        );
    }
    // A gzip file that is not a tar archive.
    let archive = c.archive("img.png.gz", &gzip(&[7u8; 2000]));
    let err = c.rejected_default(&archive);
    assert!(
        err.to_string().contains("does not contain a tar archive"),
        "{err}"
    );
}

// ------------------------------------------------------------------------------- zip: evil

#[test]
fn zip_with_parent_dir_entry() {
    let c = Case::new();
    let archive = c.archive(
        "evil.zip",
        &zip_of(&[("ok.png", b"ok"), ("../evil.txt", b"evil")], deflated()),
    );
    let err = c.rejected_default(&archive);
    assert_unsafe(&err, "'..'");
    assert!(err.to_string().contains("../evil.txt"), "{err}");
    assert!(!c.tmp.path().join("evil.txt").exists());
}

#[test]
fn zip_with_absolute_entry() {
    let c = Case::new();
    let archive = c.archive("abs.zip", &zip_of(&[("/abs.txt", b"abs")], deflated()));
    assert_unsafe(&c.rejected_default(&archive), "absolute");
}

#[test]
fn zip_with_backslash_and_drive_tricks() {
    let c = Case::new();
    for (name, reason) in [
        ("..\\evil.txt", "'..'"),
        ("a\\..\\..\\evil.txt", "'..'"),
        ("\\abs.txt", "absolute"),
        ("\\\\server\\share\\x.txt", "absolute"),
        ("C:\\evil.txt", "drive"),
        ("C:/evil.txt", "drive"),
        ("d:evil.txt", "drive"),
        ("a/\x1b[2Jb.png", "control"),
    ] {
        let archive = c.archive("tricks.zip", &zip_of(&[(name, b"x")], deflated()));
        assert_unsafe(&c.rejected_default(&archive), reason);
    }
}

#[test]
fn zip_with_symlink_entry() {
    let c = Case::new();
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("first.png", deflated()).unwrap();
    w.write_all(b"written before the symlink is seen").unwrap();
    w.add_symlink("link", "/etc/passwd", stored()).unwrap();
    w.start_file("link/after.png", deflated()).unwrap();
    w.write_all(b"x").unwrap();
    let archive = c.archive("symlink.zip", &w.finish().unwrap().into_inner());
    assert_unsafe(&c.rejected_default(&archive), "symbolic link");
}

/// Rewrites the unix mode of entry `name` in the central directory.
fn patch_zip_mode(zip: &mut [u8], name: &str, mode: u32) {
    let mut i = 0;
    while i + 46 < zip.len() {
        if zip[i..i + 4] == *b"PK\x01\x02" {
            let name_len = u16::from_le_bytes([zip[i + 28], zip[i + 29]]) as usize;
            if &zip[i + 46..i + 46 + name_len] == name.as_bytes() {
                zip[i + 5] = 3; // made by: unix
                zip[i + 38..i + 42].copy_from_slice(&(mode << 16).to_le_bytes());
                return;
            }
        }
        i += 1;
    }
    panic!("{name} not in central directory");
}

#[test]
fn zip_with_fifo_and_device_entries() {
    let c = Case::new();
    for (mode, reason) in [
        (0o010_644, "FIFO"),
        (0o020_644, "device"),
        (0o060_644, "device"),
        (0o140_644, "socket"),
    ] {
        let mut zip = zip_of(&[("a.png", b"a"), ("special", b"")], stored());
        patch_zip_mode(&mut zip, "special", mode);
        let archive = c.archive("special.zip", &zip);
        assert_unsafe(&c.rejected_default(&archive), reason);
    }
}

#[test]
fn zip_with_duplicate_names() {
    let c = Case::new();
    // The zip writer refuses duplicates: write two names and make them equal afterwards.
    let mut zip = zip_of(&[("a.png", b"first"), ("b.png", b"other")], stored());
    for i in 0..zip.len() - 5 {
        if &zip[i..i + 5] == b"b.png" {
            zip[i..i + 5].copy_from_slice(b"a.png");
        }
    }
    let archive = c.archive("dup.zip", &zip);
    let err = c.rejected_default(&archive);
    assert!(
        matches!(&err, IngestError::DuplicateEntry(n) if n == "a.png"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "The archive contains \"a.png\" more than once; the archive was rejected"
    );
}

#[test]
fn zip_with_names_equal_after_normalization() {
    let c = Case::new();
    for pair in [
        [("d/a.png", &b"1"[..]), ("d/./a.png", &b"2"[..])],
        [("d/a.png", &b"1"[..]), ("d//a.png", &b"2"[..])],
        [("d/a.png", &b"1"[..]), ("d\\a.png", &b"2"[..])],
    ] {
        let archive = c.archive("dup.zip", &zip_of(&pair, deflated()));
        let err = c.rejected_default(&archive);
        assert!(matches!(err, IngestError::DuplicateEntry(_)), "{err}");
    }
}

#[test]
fn zip_with_file_and_directory_of_the_same_name() {
    let c = Case::new();
    let archive = c.archive(
        "clash.zip",
        &zip_of(&[("a", b"file"), ("a/b.png", b"b")], deflated()),
    );
    assert_unsafe(&c.rejected_default(&archive), "is a file");
    let archive = c.archive(
        "clash2.zip",
        &zip_of(&[("a/b.png", b"b"), ("a", b"file")], deflated()),
    );
    assert_unsafe(&c.rejected_default(&archive), "as a directory");
}

#[test]
fn zip_entry_clashing_with_existing_destination_file() {
    let c = Case::new();
    let archive = c.archive(
        "clash.zip",
        &zip_of(&[("new.png", b"n"), ("keep.txt", b"x")], deflated()),
    );
    let dest = c.existing_dest();
    let before = tree(&dest);
    let err = c.extract(&archive, &dest).unwrap_err();
    assert_unsafe(&err, "already exists");
    assert_eq!(tree(&dest), before);
    assert_eq!(fs::read(dest.join("keep.txt")).unwrap(), b"keep");
}

#[test]
fn encrypted_zip() {
    use zip::unstable::write::FileOptionsExt;
    let c = Case::new();
    // Only the second entry encrypted.
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("a.png", deflated()).unwrap();
    w.write_all(b"plain").unwrap();
    w.start_file("secret.png", deflated().with_deprecated_encryption(b"pw"))
        .unwrap();
    w.write_all(b"hidden").unwrap();
    let archive = c.archive("secret.zip", &w.finish().unwrap().into_inner());
    let err = c.rejected_default(&archive);
    assert!(
        matches!(&err, IngestError::Encrypted(n) if n == "secret.png"),
        "{err}"
    );
    assert!(err.to_string().contains("without a password"));
}

#[test]
fn truncated_zip() {
    let c = Case::new();
    let zip = zip_of(
        &[("a.png", &[1u8; 5000][..]), ("b.png", &[2u8; 5000][..])],
        deflated(),
    );
    for cut in [zip.len() / 2, zip.len() - 10, 30] {
        let archive = c.archive("cut.zip", &zip[..cut]);
        let err = c.rejected_default(&archive);
        assert!(
            matches!(err, IngestError::Corrupt(_)),
            "cut at {cut}: {err}"
        );
        assert!(
            err.to_string()
                .starts_with("The archive is corrupt or truncated: "),
            "{err}"
        );
    }
}

#[test]
fn zip_with_bad_crc_is_corrupt_and_rolled_back() {
    let c = Case::new();
    let mut zip = zip_of(
        &[("good.png", b"good data"), ("bad.png", b"PAYLOAD-TO-FLIP")],
        stored(),
    );
    let at = zip
        .windows(15)
        .position(|w| w == b"PAYLOAD-TO-FLIP")
        .unwrap();
    zip[at] = b'X';
    let archive = c.archive("crc.zip", &zip);
    let err = c.rejected_default(&archive);
    assert!(matches!(err, IngestError::Corrupt(_)), "{err}");
}

/// `mib` MiB of one byte value, in 1 MiB writes, as entry `name` of `w`.
fn write_uniform(w: &mut ZipWriter<Cursor<Vec<u8>>>, name: &str, mib: usize, value: u8) {
    w.start_file(name, deflated()).unwrap();
    let block = vec![value; 1 << 20];
    for _ in 0..mib {
        w.write_all(&block).unwrap();
    }
}

#[test]
fn zip_bomb_is_stopped_early() {
    let c = Case::new();
    // 128 MiB of zeros deflates to ~128 KB: a ratio of ~1000.
    let started = Instant::now();
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("small.png", deflated()).unwrap();
    w.write_all(b"a small file written before the bomb")
        .unwrap();
    write_uniform(&mut w, "bomb.bin", 128, 0);
    let zip = w.finish().unwrap().into_inner();
    assert!(zip.len() < 300_000, "{}", zip.len());
    let archive = c.archive("bomb.zip", &zip);

    let err = c.rejected_default(&archive);
    match &err {
        IngestError::CompressionBomb {
            entry,
            compressed_bytes,
            ..
        } => {
            assert_eq!(entry, "bomb.bin");
            assert!(*compressed_bytes < 300_000, "{err}");
        }
        other => panic!("expected a bomb, got {other}"),
    }
    assert!(err.to_string().contains("compression bomb"), "{err}");
    assert!(
        started.elapsed().as_secs_f64() < 5.0,
        "{:?}",
        started.elapsed()
    );

    // A lower threshold stops it sooner; with the ratio check off the total bounds it.
    let limits = ArchiveLimits {
        ratio_check_after: 1 << 20,
        ..ArchiveLimits::default()
    };
    assert!(matches!(
        c.rejected(&archive, &limits),
        IngestError::CompressionBomb { .. }
    ));
    let limits = ArchiveLimits {
        max_ratio: f64::INFINITY,
        max_total_bytes: 32 << 20,
        ..ArchiveLimits::default()
    };
    let err = c.rejected(&archive, &limits);
    assert!(
        matches!(err, IngestError::TooLarge { limit } if limit == 32 << 20),
        "{err}"
    );
}

#[test]
fn small_compressible_archives_are_not_bombs() {
    let c = Case::new();
    // A ratio of ~1000, but only 1 MiB out: under RATIO_CHECK_AFTER_BYTES.
    let archive = c.archive(
        "blank.zip",
        &zip_of(&[("blank.bmp", &[0u8; 1 << 20][..])], deflated()),
    );
    assert_eq!(
        names(&c.extract(&archive, &c.new_dest()).unwrap()),
        ["blank.bmp"]
    );
}

#[test]
fn uniform_masks_are_not_bombs() {
    // Real masks: 4K BMPs of one colour (~24 MiB each, deflating ~1000:1). The archive as a
    // whole expands ~1000 times, each entry too, but no entry is large enough to be a bomb.
    let c = Case::new();
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    for (i, value) in [0u8, 255, 7].into_iter().enumerate() {
        write_uniform(&mut w, &format!("masks/{i}.bmp"), 24, value);
    }
    let zip = w.finish().unwrap().into_inner();
    assert!(zip.len() < 200_000, "{}", zip.len());
    let archive = c.archive("masks.zip", &zip);
    let dest = c.new_dest();
    assert_eq!(
        names(&c.extract(&archive, &dest).unwrap()),
        ["masks/0.bmp", "masks/1.bmp", "masks/2.bmp"]
    );
    assert_eq!(
        fs::metadata(dest.join("masks/2.bmp")).unwrap().len(),
        24 << 20
    );

    // The same as a tar.gz.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let block = vec![9u8; 1 << 20];
    for i in 0..3 {
        gz.write_all(&tar_header(
            format!("{i}.bmp").as_bytes(),
            b'0',
            24 << 20,
            b"",
        ))
        .unwrap();
        for _ in 0..24 {
            gz.write_all(&block).unwrap();
        }
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    let archive = c.archive("masks.tgz", &gz.finish().unwrap());
    assert_eq!(
        names(
            &extract_archive(
                &archive,
                &c.tmp.path().join("tgz"),
                &ArchiveLimits::default()
            )
            .unwrap()
        ),
        ["0.bmp", "1.bmp", "2.bmp"]
    );

    // Many such entries are still bounded by the total.
    let limits = ArchiveLimits {
        max_total_bytes: 50 << 20,
        ..ArchiveLimits::default()
    };
    assert!(matches!(
        c.rejected(&archive, &limits),
        IngestError::TooLarge { .. }
    ));
}

/// Rewrites the local-header offset of the central directory record of `name`.
fn patch_zip_offset(zip: &mut [u8], name: &str, offset: u32) {
    let needle = name.as_bytes();
    let mut i = 0;
    while i + 46 < zip.len() {
        if zip[i..i + 4] == *b"PK\x01\x02" {
            let len = u16::from_le_bytes([zip[i + 28], zip[i + 29]]) as usize;
            if &zip[i + 46..i + 46 + len] == needle {
                zip[i + 42..i + 46].copy_from_slice(&offset.to_le_bytes());
                return;
            }
        }
        i += 1;
    }
    panic!("no central record for {name}");
}

#[test]
fn zip_with_overlapping_entries_is_refused() {
    // The "overlapping files" bomb: two central records pointing at the same data.
    let c = Case::new();
    let mut zip = zip_of(
        &[("a.png", &[1u8; 5000][..]), ("b.png", &[1u8; 5000][..])],
        deflated(),
    );
    patch_zip_offset(&mut zip, "b.png", 0);
    let archive = c.archive("overlap.zip", &zip);
    let err = c.rejected_default(&archive);
    assert!(
        matches!(&err, IngestError::OverlappingEntries(a, b) if a == "a.png" && b == "b.png"),
        "{err}"
    );
    // ZipEntries (what imports read through) refuses it too.
    assert!(matches!(
        ZipEntries::open(&archive, &ArchiveLimits::default()),
        Err(IngestError::OverlappingEntries(..))
    ));
}

#[test]
fn zip_entries_are_metered_like_extraction() {
    let c = Case::new();
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("a.xml", deflated()).unwrap();
    w.write_all(b"<annotations/>").unwrap();
    write_uniform(&mut w, "b.xml", 8, b' ');
    let archive = c.archive("import.zip", &w.finish().unwrap().into_inner());
    let limits = ArchiveLimits {
        ratio_check_after: 1 << 20,
        ..ArchiveLimits::default()
    };
    let mut z = ZipEntries::open(&archive, &limits).unwrap();
    assert_eq!(z.names().collect::<Vec<_>>(), ["a.xml", "b.xml"]);
    let mut small = String::new();
    let i = z.index_of("a.xml").unwrap();
    z.entry(i).unwrap().read_to_string(&mut small).unwrap();
    assert_eq!(small, "<annotations/>");
    let i = z.index_of("b.xml").unwrap();
    let mut entry = z.entry(i).unwrap();
    assert_eq!(entry.declared_size(), 8 << 20);
    let e = io::copy(&mut entry, &mut io::sink()).unwrap_err();
    let limit = limit_error(&e).expect("an archive limit");
    assert!(
        matches!(limit, IngestError::CompressionBomb { entry, .. } if entry == "b.xml"),
        "{limit}"
    );
    drop(entry);
    // The total counts every entry read.
    let limits = ArchiveLimits {
        max_total_bytes: 20,
        ..ArchiveLimits::default()
    };
    let mut z = ZipEntries::open(&archive, &limits).unwrap();
    for _ in 0..2 {
        let mut e = z.entry(0).unwrap();
        let r = io::copy(&mut e, &mut io::sink());
        if let Err(e) = r {
            assert!(matches!(
                limit_error(&e),
                Some(IngestError::TooLarge { limit: 20 })
            ));
            return;
        }
    }
    panic!("28 bytes were read under a total of 20");
}

#[test]
fn zip_over_total_size_limit() {
    let c = Case::new();
    let archive = c.archive(
        "big.zip",
        &zip_of(
            &[("a.png", &[1u8; 600][..]), ("b.png", &[2u8; 600][..])],
            stored(),
        ),
    );
    let limits = ArchiveLimits {
        max_total_bytes: 1000,
        ..ArchiveLimits::default()
    };
    let err = c.rejected(&archive, &limits);
    assert_eq!(
        err.to_string(),
        "The archive expands to more than 1000 bytes (--max-extracted-size); split it into \
         smaller archives"
    );
}

#[test]
fn zip_with_too_many_entries() {
    let c = Case::new();
    let entries: Vec<(String, Vec<u8>)> = (0..5)
        .map(|i| (format!("{i}.png"), vec![i as u8]))
        .collect();
    let refs: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let archive = c.archive("many.zip", &zip_of(&refs, stored()));
    let limits = ArchiveLimits {
        max_entries: 4,
        ..ArchiveLimits::default()
    };
    let err = c.rejected(&archive, &limits);
    assert!(
        matches!(err, IngestError::TooManyEntries { limit: 4 }),
        "{err}"
    );
    let limits = ArchiveLimits {
        max_entries: 5,
        ..ArchiveLimits::default()
    };
    assert_eq!(
        extract_archive(&archive, &c.new_dest(), &limits)
            .unwrap()
            .len(),
        5
    );
}

// ------------------------------------------------------------------------------- tar

#[test]
fn tar_with_parent_dir_entry() {
    let c = Case::new();
    let archive = c.archive(
        "evil.tar",
        &raw_tar(&[(b"ok.png", b'0', b"ok", b""), (b"../x", b'0', b"evil", b"")]),
    );
    assert_unsafe(&c.rejected_default(&archive), "'..'");
    assert!(!c.tmp.path().join("x").exists());
}

#[test]
fn tar_with_absolute_and_tricky_names() {
    let c = Case::new();
    for (name, reason) in [
        (&b"/etc/cron.d/x"[..], "absolute"),
        (b"a/../../x", "'..'"),
        (b"..\\x", "'..'"),
        (b"C:\\x", "drive"),
        (b"bad\xff\xfename.png", "UTF-8"),
    ] {
        let archive = c.archive("evil.tar", &raw_tar(&[(name, b'0', b"x", b"")]));
        assert_unsafe(&c.rejected_default(&archive), reason);
    }
}

#[test]
fn tar_with_links_and_special_files() {
    let c = Case::new();
    for (kind, link, reason) in [
        (b'1', &b"ok.png"[..], "hard link"),
        (b'1', b"/etc/passwd", "hard link"),
        (b'2', b"/etc", "symbolic link"),
        (b'3', b"", "device"),
        (b'4', b"", "device"),
        (b'6', b"", "FIFO"),
    ] {
        let archive = c.archive(
            "links.tar",
            &raw_tar(&[
                (b"ok.png", b'0', b"written first", b""),
                (b"link", kind, b"", link),
            ]),
        );
        assert_unsafe(&c.rejected_default(&archive), reason);
    }
}

#[test]
fn tar_with_hardlink_built_by_tar_crate() {
    let c = Case::new();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "a.png", &b"abc"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    b.append_link(&mut h, "b.png", "a.png").unwrap();
    let archive = c.archive("hard.tar", &b.into_inner().unwrap());
    assert_unsafe(&c.rejected_default(&archive), "hard link");
}

#[test]
fn tar_with_duplicate_names() {
    let c = Case::new();
    let archive = c.archive(
        "dup.tar",
        &raw_tar(&[
            (b"d/a.png", b'0', b"1", b""),
            (b"d/./a.png", b'0', b"2", b""),
        ]),
    );
    assert!(matches!(
        c.rejected_default(&archive),
        IngestError::DuplicateEntry(_)
    ));
}

#[test]
fn tar_nested_long_names_and_junk_via_tar_crate() {
    let c = Case::new();
    let long_dir = "d".repeat(120);
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    add("z/y/x.png", b"x");
    add(&format!("{long_dir}/long.png"), b"long");
    add("__MACOSX/z/._x.png", b"fork");
    add("z/.DS_Store", b"ds");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    h.set_mode(0o755);
    h.set_cksum();
    b.append_data(&mut h, "emptydir/", &b""[..]).unwrap();
    let tar = b.into_inner().unwrap();

    for (name, bytes) in [("a.tar", tar.clone()), ("a.tar.gz", gzip(&tar))] {
        let archive = c.archive(name, &bytes);
        let dest = c.tmp.path().join(name.replace('.', "_"));
        let files = c.extract(&archive, &dest).unwrap();
        assert_eq!(
            names(&files),
            [format!("{long_dir}/long.png"), "z/y/x.png".to_owned()]
        );
        assert_eq!(fs::read(dest.join("z/y/x.png")).unwrap(), b"x");
        assert!(!dest.join("__MACOSX").exists());
        assert!(!dest.join("emptydir").exists());
    }
}

#[test]
fn truncated_tar_and_tar_gz() {
    let c = Case::new();
    let tar = raw_tar(&[
        (b"a.png", b'0', &[9u8; 3000], b""),
        (b"b.png", b'0', &[8u8; 3000], b""),
    ]);
    // Cut in the middle of a.png's data, and in the middle of b.png's header.
    for cut in [1500, 512 * 7 + 100] {
        let archive = c.archive("cut.tar", &tar[..cut]);
        let err = c.rejected_default(&archive);
        assert!(
            matches!(err, IngestError::Corrupt(_)),
            "cut at {cut}: {err}"
        );
    }
    let gz = gzip(&tar);
    let archive = c.archive("cut.tar.gz", &gz[..gz.len() - 12]);
    let err = c.rejected_default(&archive);
    assert!(matches!(err, IngestError::Corrupt(_)), "{err}");
}

#[test]
fn tar_with_bad_header_checksum() {
    let c = Case::new();
    let mut tar = raw_tar(&[(b"a.png", b'0', b"a", b""), (b"b.png", b'0', b"b", b"")]);
    tar[1024 + 10] = b'!'; // the second header's name, after its checksum was computed
    let archive = c.archive("bad.tar", &tar);
    assert!(matches!(
        c.rejected_default(&archive),
        IngestError::Corrupt(_)
    ));
}

#[test]
fn tar_gz_bomb_is_stopped_early() {
    let c = Case::new();
    let started = Instant::now();
    let size = 128u64 << 20;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw_tar(&[(b"small.png", b'0', b"s", b"")])[..1024])
        .unwrap();
    gz.write_all(&tar_header(b"bomb.bin", b'0', size, b""))
        .unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..128 {
        gz.write_all(&zeros).unwrap();
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    let archive = c.archive("bomb.tar.gz", &gz.finish().unwrap());
    let err = c.rejected_default(&archive);
    assert!(
        matches!(&err, IngestError::CompressionBomb { entry, .. } if entry == "bomb.bin"),
        "{err}"
    );
    assert!(
        started.elapsed().as_secs_f64() < 5.0,
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn tar_gz_bomb_hidden_in_skipped_entry_is_stopped() {
    let c = Case::new();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar_header(b"__MACOSX/._bomb", b'0', 128 << 20, b""))
        .unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..128 {
        gz.write_all(&zeros).unwrap();
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    let archive = c.archive("hidden.tgz", &gz.finish().unwrap());
    assert!(matches!(
        c.rejected_default(&archive),
        IngestError::CompressionBomb { .. }
    ));
}

#[test]
fn tar_with_huge_long_name_header() {
    let c = Case::new();
    let long = vec![b'a'; 2 << 20];
    let archive = c.archive(
        "longname.tar",
        &raw_tar(&[
            (b"././@LongLink", b'L', &long, b""),
            (b"x", b'0', b"x", b""),
        ]),
    );
    let err = c.rejected_default(&archive);
    assert!(matches!(err, IngestError::UnsupportedArchive(_)), "{err}");
}

#[test]
fn tar_over_limits() {
    let c = Case::new();
    let tar = raw_tar(&[
        (b"a.png", b'0', &[1u8; 600], b""),
        (b"b.png", b'0', &[2u8; 600], b""),
        (b"c.png", b'0', &[3u8; 600], b""),
    ]);
    let archive = c.archive("big.tar", &tar);
    let limits = ArchiveLimits {
        max_total_bytes: 2000,
        ..ArchiveLimits::default()
    };
    assert!(matches!(
        c.rejected(&archive, &limits),
        IngestError::TooLarge { limit: 2000 }
    ));
    let limits = ArchiveLimits {
        max_entries: 2,
        ..ArchiveLimits::default()
    };
    assert!(matches!(
        c.rejected(&archive, &limits),
        IngestError::TooManyEntries { limit: 2 }
    ));
}

#[test]
fn every_byte_is_counted_once() {
    let c = Case::new();
    let tar = raw_tar(&[
        (b"a.png", b'0', &[1u8; 600], b""),
        (b"b.png", b'0', &[2u8; 700], b""),
    ]);
    // tar and tar.gz: the whole tar stream (headers, padding, end marker) is counted.
    for (name, bytes) in [("x.tar", tar.clone()), ("x.tar.gz", gzip(&tar))] {
        let archive = c.archive(name, &bytes);
        let exact = ArchiveLimits {
            max_total_bytes: tar.len() as u64,
            ..ArchiveLimits::default()
        };
        let dest = c.tmp.path().join(name.replace('.', "_"));
        assert_eq!(extract_archive(&archive, &dest, &exact).unwrap().len(), 2);
        let under = ArchiveLimits {
            max_total_bytes: tar.len() as u64 - 1,
            ..exact
        };
        assert!(matches!(
            c.rejected(&archive, &under),
            IngestError::TooLarge { .. }
        ));
    }
    // zip: the entries' data.
    let archive = c.archive(
        "x.zip",
        &zip_of(
            &[("a.png", &[1u8; 600][..]), ("b.png", &[2u8; 700][..])],
            deflated(),
        ),
    );
    let exact = ArchiveLimits {
        max_total_bytes: 1300,
        ..ArchiveLimits::default()
    };
    assert_eq!(
        extract_archive(&archive, &c.tmp.path().join("zz"), &exact)
            .unwrap()
            .len(),
        2
    );
    let under = ArchiveLimits {
        max_total_bytes: 1299,
        ..exact
    };
    assert!(matches!(
        c.rejected(&archive, &under),
        IngestError::TooLarge { .. }
    ));
}

#[test]
fn zip_backslash_directory_entry_is_a_directory() {
    let c = Case::new();
    let archive = c.archive(
        "win.zip",
        &zip_of(&[("dir\\", b""), ("dir\\a.png", b"a")], deflated()),
    );
    let dest = c.new_dest();
    assert_eq!(names(&c.extract(&archive, &dest).unwrap()), ["dir/a.png"]);
    assert_eq!(fs::read(dest.join("dir/a.png")).unwrap(), b"a");
}
