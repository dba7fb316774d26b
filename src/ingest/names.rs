//! File-name checks shared by uploads, share paths and archive entries.

use std::path::Path;

use super::IngestError;

/// Longest accepted file name (one path component), in bytes: the limit of Linux file systems.
pub const MAX_NAME_BYTES: usize = 255;

/// Substrings that make CVAT ignore a path (macOS metadata), spec §11.3. A path containing any
/// of them is neither extracted nor classified.
pub const IGNORED_NAME_PARTS: [&str; 4] = ["__MSOSX", "._.DS_Store", "__MACOSX", ".DS_Store"];

/// Whether CVAT ignores `path` (it contains `__MACOSX`, `__MSOSX`, `.DS_Store` or
/// `._.DS_Store` anywhere, as a substring of the whole path like CVAT does).
pub fn is_ignored_name(path: impl AsRef<Path>) -> bool {
    let path = path.as_ref().to_string_lossy();
    IGNORED_NAME_PARTS.iter().any(|part| path.contains(part))
}

/// The safe base name of a multipart upload's file name.
///
/// Clients send the path they read the file from: `/home/alice/data/img_1.png`, or on Windows
/// `C:\x\y.png`. Both `/` and `\` are separators here, and the last component is kept, so the
/// result never contains a separator. Unicode is kept as it is (no normalization).
///
/// Refused: an empty base name (including names ending in a separator), `.` and `..`, names
/// with NUL or any other control character, and names longer than [`MAX_NAME_BYTES`] bytes.
pub fn sanitize_file_name(client_name: &str) -> Result<String, IngestError> {
    let invalid = |reason| IngestError::InvalidFileName {
        name: client_name.to_owned(),
        reason,
    };
    let base = client_name.rsplit(['/', '\\']).next().unwrap_or_default();
    check_component(base).map_err(invalid)?;
    Ok(base.to_owned())
}

/// Checks one path component (no separators in it): the reason it is refused, if it is.
pub(crate) fn check_component(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name == "." || name == ".." {
        return Err("'.' and '..' are not file names");
    }
    if name.contains('\0') {
        return Err("the name contains a NUL character");
    }
    if name.chars().any(char::is_control) {
        return Err("the name contains control characters");
    }
    if name.len() > MAX_NAME_BYTES {
        return Err("a name is longer than 255 bytes");
    }
    Ok(())
}

/// Normalizes an archive entry name into a relative `/`-separated path, or says why the entry
/// is unsafe.
///
/// `\` counts as a separator (old Windows zip tools write it; `..\evil` must not slip through).
/// Empty and `.` components are dropped. Refused: absolute paths (including `\\server\share`),
/// Windows drive prefixes (`C:`), `..` components, and components that
/// [`check_component`] refuses. `Ok(None)` means the name has no component at all (`./`).
pub(crate) fn normalize_entry_name(raw: &str) -> Result<Option<String>, &'static str> {
    if raw.contains('\0') {
        return Err("the name contains a NUL character");
    }
    let unified = raw.replace('\\', "/");
    if unified.starts_with('/') {
        return Err("absolute paths are not allowed");
    }
    let parts: Vec<&str> = unified
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if let Some(first) = parts.first() {
        let b = first.as_bytes();
        if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
            return Err("Windows drive prefixes are not allowed");
        }
    }
    for part in &parts {
        if *part == ".." {
            return Err("'..' components are not allowed");
        }
        check_component(part)?;
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_name_of_posix_and_windows_paths() {
        assert_eq!(
            sanitize_file_name("/home/alice/data/img_1.png").unwrap(),
            "img_1.png"
        );
        assert_eq!(sanitize_file_name("C:\\x\\y.png").unwrap(), "y.png");
        assert_eq!(sanitize_file_name("a/b\\c.jpg").unwrap(), "c.jpg");
        assert_eq!(sanitize_file_name("plain.png").unwrap(), "plain.png");
        assert_eq!(
            sanitize_file_name("  spaced .png").unwrap(),
            "  spaced .png"
        );
    }

    #[test]
    fn unicode_is_kept() {
        assert_eq!(
            sanitize_file_name("/data/фото/кадр_1.png").unwrap(),
            "кадр_1.png"
        );
        assert_eq!(sanitize_file_name("画像.jpg").unwrap(), "画像.jpg");
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in [
            "",
            "/",
            "dir/",
            "C:\\dir\\",
            ".",
            "..",
            "/x/..",
            "a\\..",
            "a\0b.png",
            "a\nb.png",
            "tab\t.png",
            "del\u{7f}.png",
            "c1\u{85}.png",
        ] {
            let err = sanitize_file_name(bad).unwrap_err();
            assert!(
                matches!(err, IngestError::InvalidFileName { .. }),
                "{bad:?}: {err}"
            );
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn length_limit_is_in_bytes() {
        let ok = "a".repeat(251) + ".png";
        assert_eq!(sanitize_file_name(&ok).unwrap().len(), 255);
        let too_long = "a".repeat(252) + ".png";
        assert!(sanitize_file_name(&too_long).is_err());
        // 128 two-byte characters: 128 chars but 256 bytes.
        let wide = "é".repeat(128);
        assert!(sanitize_file_name(&wide).is_err());
    }

    #[test]
    fn ignored_names() {
        assert!(is_ignored_name("__MACOSX/a/._x.png"));
        assert!(is_ignored_name("a/.DS_Store"));
        assert!(is_ignored_name("a/._.DS_Store"));
        assert!(is_ignored_name("__MSOSX/x.png"));
        assert!(!is_ignored_name("a/b/x.png"));
        assert!(!is_ignored_name("MACOSX.png"));
    }

    #[test]
    fn entry_names() {
        assert_eq!(normalize_entry_name("a/b.png"), Ok(Some("a/b.png".into())));
        assert_eq!(
            normalize_entry_name("./a//./b.png"),
            Ok(Some("a/b.png".into()))
        );
        assert_eq!(normalize_entry_name("a\\b.png"), Ok(Some("a/b.png".into())));
        assert_eq!(normalize_entry_name("./"), Ok(None));
        assert_eq!(normalize_entry_name("dir/"), Ok(Some("dir".into())));
        for bad in [
            "/abs.txt",
            "\\abs.txt",
            "\\\\server\\share\\x",
            "../evil.txt",
            "a/../../evil.txt",
            "a/..",
            "..\\evil.txt",
            "C:/x.txt",
            "c:x.txt",
            "C:\\x.txt",
            "a\0b",
            "a/\x1b[31m.png",
        ] {
            assert!(normalize_entry_name(bad).is_err(), "{bad:?}");
        }
    }
}
