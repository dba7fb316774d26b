//! `server_files[]`: paths inside the read-only share, confined to the share root.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::IngestError;

/// Resolves a `server_files[]` entry to a path under `share_root`.
///
/// `requested` is relative to the share root, `/`-separated, as CVAT clients send it
/// (`"sub/s_0.png"`). **A leading `/` is not the file system root**: like CVAT
/// (`normpath(path).lstrip('/')`), `"/sub/s_0.png"` means `sub/s_0.png` in the share, and `"/"`
/// is the whole share. Empty and `.` components are dropped; `\` is an ordinary character
/// (the share is a Linux directory).
///
/// Refused: an empty string or one with NUL ([`IngestError::InvalidFileName`]), any `..`
/// component, even one that would stay inside ([`IngestError::ShareParentDir`], as CVAT),
/// a path whose canonical form (all symlinks resolved) is outside the canonical share root, or
/// that is neither a regular file nor a directory ([`IngestError::ShareEscape`]), and a path
/// that does not exist ([`IngestError::ShareNotFound`]).
///
/// Returns `share_root` joined with the normalized relative path, **not** the canonical path:
/// a symlink inside the share keeps its own name, so `strip_prefix(share_root)` gives the name
/// the client used. The result may be a directory; see [`expand_share_dir`].
pub fn resolve_share_path(share_root: &Path, requested: &str) -> Result<PathBuf, IngestError> {
    if requested.is_empty() {
        return Err(IngestError::InvalidFileName {
            name: String::new(),
            reason: "the share path is empty (use \"/\" for the whole share)",
        });
    }
    if requested.contains('\0') {
        return Err(IngestError::InvalidFileName {
            name: requested.to_owned(),
            reason: "the name contains a NUL character",
        });
    }
    let parts: Vec<&str> = requested
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(IngestError::ShareParentDir(requested.to_owned()));
    }
    let root = canonical_root(share_root)?;
    let path = parts
        .iter()
        .fold(share_root.to_path_buf(), |p, c| p.join(c));
    let canonical = match fs::canonicalize(&path) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(IngestError::io(path, e));
        }
        // Not found, a file used as a directory, a dangling or looping symlink.
        Err(_) => return Err(IngestError::ShareNotFound(requested.to_owned())),
    };
    if !canonical.starts_with(&root) {
        return Err(IngestError::ShareEscape(requested.to_owned()));
    }
    let meta = fs::metadata(&canonical).map_err(|e| IngestError::io(&canonical, e))?;
    if !meta.is_file() && !meta.is_dir() {
        return Err(IngestError::ShareEscape(requested.to_owned()));
    }
    Ok(path)
}

/// Lists the files below `dir`, a directory inside the share, recursively and sorted by path.
///
/// `dir` is a path returned by [`resolve_share_path`] (a relative `dir` is taken relative to
/// `share_root`). Returned paths are `dir` joined with the names found (symlinks keep their
/// names, as in [`resolve_share_path`]). Symlinks are followed only when their target is inside
/// the share root; those pointing outside, dangling ones, and anything that is not a regular
/// file or directory (FIFOs, sockets, devices) are skipped silently. A directory reachable
/// twice through symlinks is listed once (no loops).
///
/// Errors: `dir` outside the share ([`IngestError::ShareEscape`]), and unreadable directories
/// ([`IngestError::Io`]).
pub fn expand_share_dir(share_root: &Path, dir: &Path) -> Result<Vec<PathBuf>, IngestError> {
    let root = canonical_root(share_root)?;
    let dir = share_root.join(dir);
    let shown = || {
        dir.strip_prefix(share_root)
            .unwrap_or(&dir)
            .display()
            .to_string()
    };
    let canonical = fs::canonicalize(&dir).map_err(|_| IngestError::ShareNotFound(shown()))?;
    if !canonical.starts_with(&root) {
        return Err(IngestError::ShareEscape(shown()));
    }
    let mut visited = HashSet::from([canonical]);
    let mut pending = vec![dir.clone()];
    let mut files = Vec::new();
    while let Some(current) = pending.pop() {
        let entries = fs::read_dir(&current).map_err(|e| IngestError::io(&current, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| IngestError::io(&current, e))?;
            let path = entry.path();
            let file_type = entry.file_type().map_err(|e| IngestError::io(&path, e))?;
            if file_type.is_file() {
                files.push(path);
            } else if file_type.is_dir() || file_type.is_symlink() {
                let Ok(target) = fs::canonicalize(&path) else {
                    continue; // dangling or looping symlink
                };
                if !target.starts_with(&root) {
                    continue;
                }
                let Ok(meta) = fs::metadata(&target) else {
                    continue;
                };
                if meta.is_file() {
                    files.push(path);
                } else if meta.is_dir() && visited.insert(target) {
                    pending.push(path);
                }
            }
        }
    }
    files.sort();
    Ok(files)
}

fn canonical_root(share_root: &Path) -> Result<PathBuf, IngestError> {
    fs::canonicalize(share_root).map_err(|e| IngestError::io(share_root, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// share/
    ///   a.png, sub/s_0.png, sub/deeper/s_1.png
    ///   etc_link -> /etc, passwd_link -> /etc/passwd, inner_link -> sub/s_0.png,
    ///   sub/loop -> .. (the share itself), dangling -> missing
    fn share() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("share");
        fs::create_dir_all(root.join("sub/deeper")).unwrap();
        fs::write(root.join("a.png"), b"a").unwrap();
        fs::write(root.join("sub/s_0.png"), b"s0").unwrap();
        fs::write(root.join("sub/deeper/s_1.png"), b"s1").unwrap();
        fs::write(tmp.path().join("secret.txt"), b"secret").unwrap();
        symlink("/etc", root.join("etc_link")).unwrap();
        symlink("/etc/passwd", root.join("passwd_link")).unwrap();
        symlink(tmp.path().join("secret.txt"), root.join("sub/secret_link")).unwrap();
        symlink("sub/s_0.png", root.join("inner_link")).unwrap();
        symlink("..", root.join("sub/loop")).unwrap();
        symlink("missing", root.join("dangling")).unwrap();
        (tmp, root)
    }

    #[test]
    fn relative_and_leading_slash_paths() {
        let (_tmp, root) = share();
        assert_eq!(
            resolve_share_path(&root, "sub/s_0.png").unwrap(),
            root.join("sub/s_0.png")
        );
        assert_eq!(
            resolve_share_path(&root, "/sub/s_0.png").unwrap(),
            root.join("sub/s_0.png")
        );
        assert_eq!(
            resolve_share_path(&root, "//sub/./s_0.png").unwrap(),
            root.join("sub/s_0.png")
        );
        assert_eq!(
            resolve_share_path(&root, "/sub/").unwrap(),
            root.join("sub")
        );
        assert_eq!(resolve_share_path(&root, "/").unwrap(), root);
        // A symlink that stays inside keeps its own name.
        assert_eq!(
            resolve_share_path(&root, "inner_link").unwrap(),
            root.join("inner_link")
        );
    }

    #[test]
    fn dot_dot_is_refused_even_inside() {
        let (_tmp, root) = share();
        for bad in [
            "../secret.txt",
            "sub/../../secret.txt",
            "sub/../a.png",
            "/..",
        ] {
            assert!(
                matches!(
                    resolve_share_path(&root, bad),
                    Err(IngestError::ShareParentDir(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn symlinks_out_of_the_share_are_refused() {
        let (_tmp, root) = share();
        for bad in [
            "etc_link",
            "etc_link/passwd",
            "passwd_link",
            "sub/secret_link",
        ] {
            let err = resolve_share_path(&root, bad).unwrap_err();
            assert!(matches!(err, IngestError::ShareEscape(_)), "{bad}: {err}");
            assert_eq!(err.to_string(), format!("Bad file path: {bad}"));
        }
    }

    #[test]
    fn missing_and_malformed() {
        let (_tmp, root) = share();
        for missing in ["nope.png", "a.png/x", "dangling", "sub/loop/sub/nope"] {
            assert!(
                matches!(
                    resolve_share_path(&root, missing),
                    Err(IngestError::ShareNotFound(_))
                ),
                "{missing}"
            );
        }
        assert!(resolve_share_path(&root, "").is_err());
        assert!(resolve_share_path(&root, "a\0.png").is_err());
    }

    #[test]
    fn expanding_skips_outside_links_and_loops() {
        let (_tmp, root) = share();
        let all = expand_share_dir(&root, &root).unwrap();
        let rel: Vec<_> = all
            .iter()
            .map(|p| p.strip_prefix(&root).unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            rel,
            ["a.png", "inner_link", "sub/deeper/s_1.png", "sub/s_0.png"]
        );
        let sub = resolve_share_path(&root, "sub").unwrap();
        let rel: Vec<_> = expand_share_dir(&root, &sub)
            .unwrap()
            .into_iter()
            .map(|p| p.strip_prefix(&root).unwrap().to_str().unwrap().to_owned())
            .collect();
        // `sub/loop` points back to the share root, which is not listed yet from here, so its
        // files appear once under the link's name.
        assert!(rel.contains(&"sub/s_0.png".to_owned()));
        assert!(rel.contains(&"sub/loop/a.png".to_owned()));
        assert!(!rel
            .iter()
            .any(|p| p.contains("secret") || p.contains("etc")));
        assert!(!rel.iter().any(|p| p.starts_with("sub/loop/sub/")));
    }

    #[test]
    fn expanding_a_directory_outside_is_refused() {
        let (_tmp, root) = share();
        assert!(matches!(
            expand_share_dir(&root, &root.join("etc_link")),
            Err(IngestError::ShareEscape(_))
        ));
        assert!(matches!(
            expand_share_dir(&root, Path::new("/etc")),
            Err(IngestError::ShareEscape(_))
        ));
    }
}
