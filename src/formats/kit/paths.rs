//! Python's path helpers for `/`-separated dataset paths, as CVAT's and Datumaro's code uses
//! them, and the names frames get as archive entries.

/// Python's `os.path.splitext`: `("a/b", ".jpg")` for `a/b.jpg`; leading dots of the file name are
/// not an extension (`.hidden` has none).
pub fn split_ext(p: &str) -> (&str, &str) {
    let name_start = p.rfind('/').map(|i| i + 1).unwrap_or(0);
    if let Some(dot) = p.rfind('.') {
        if dot >= name_start && p[name_start..dot].bytes().any(|b| b != b'.') {
            return (&p[..dot], &p[dot..]);
        }
    }
    (p, "")
}

/// The subset name a Datumaro export writes (the task's, `default` for none), refused when it
/// is not a file name.
pub fn export_subset<'d>(
    ds: &'d crate::formats::TaskDataset<'_>,
) -> Result<&'d str, crate::formats::FormatError> {
    let subset = if ds.subset.is_empty() {
        "default"
    } else {
        ds.subset.as_str()
    };
    if subset.contains(['/', '\\']) {
        return Err(crate::formats::FormatError::Unsupported(format!(
            "the subset name '{subset}' contains a path separator"
        )));
    }
    Ok(subset)
}

/// Python's `os.path.dirname`.
pub fn dirname(p: &str) -> &str {
    match p.rfind('/') {
        None => "",
        Some(i) => {
            let head = &p[..=i];
            let trimmed = head.trim_end_matches('/');
            if trimmed.is_empty() {
                head
            } else {
                trimmed
            }
        }
    }
}

/// Python's `os.path.basename`.
pub fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// `pathlib.PurePosixPath(p).parts`, for relative paths.
pub fn parts(p: &str) -> Vec<&str> {
    p.split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect()
}

/// A frame's path with the extension its image was encoded with: the frame's own name when the
/// extensions agree (case-insensitively), else its stem with `ext` (video frames are
/// `frame_NNNNNN.PNG`, or `.jpg` when JPEG was asked for). Leading `/` are dropped.
pub fn with_image_ext(name: &str, ext: &str) -> String {
    let name = name.trim_start_matches('/');
    let ext = ext.trim_start_matches('.');
    let (stem, own) = split_ext(name);
    if ext.is_empty() || own.trim_start_matches('.').eq_ignore_ascii_case(ext) {
        name.to_owned()
    } else {
        format!("{stem}.{ext}")
    }
}

/// Whether an archive entry is metadata an import skips: macOS resource forks and folders
/// (`__MACOSX/`, `._name`) and the other names CVAT ignores.
pub fn is_metadata_entry(name: &str) -> bool {
    basename(name).starts_with("._") || crate::ingest::is_ignored_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_ext_is_pythons() {
        assert_eq!(split_ext("a/b.jpg"), ("a/b", ".jpg"));
        assert_eq!(split_ext("a.b/c"), ("a.b/c", ""));
        assert_eq!(split_ext(".hidden"), (".hidden", ""));
        assert_eq!(split_ext("a/..x.png"), ("a/..x", ".png"));
        assert_eq!(split_ext("x.tar.gz"), ("x.tar", ".gz"));
        assert_eq!(split_ext("a/..."), ("a/...", ""));
    }

    #[test]
    fn dirname_basename_parts() {
        assert_eq!(dirname("a/b/c.jpg"), "a/b");
        assert_eq!(dirname("c.jpg"), "");
        assert_eq!(dirname("/c.jpg"), "/");
        assert_eq!(basename("a/b/c.jpg"), "c.jpg");
        assert_eq!(parts("./a//b/c"), vec!["a", "b", "c"]);
    }

    #[test]
    fn image_names_take_the_encoded_extension() {
        assert_eq!(
            with_image_ext("frame_000003.PNG", ".png"),
            "frame_000003.PNG"
        );
        assert_eq!(
            with_image_ext("frame_000003.PNG", "jpg"),
            "frame_000003.jpg"
        );
        assert_eq!(with_image_ext("/a/b.jpeg", ""), "a/b.jpeg");
    }

    #[test]
    fn metadata_entries() {
        assert!(is_metadata_entry("__MACOSX/a/._x.xml"));
        assert!(is_metadata_entry("a/._x.xml"));
        assert!(!is_metadata_entry("a/x.xml"));
    }
}
