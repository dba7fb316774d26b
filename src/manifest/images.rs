//! Image manifests: finding images (directory or glob), related images, properties, checksums.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;

use super::model::{ImageItem, ImageMeta};
use super::sort::{splitext, SortingMethod};
use super::ManifestError;
use crate::media::image::probe;

/// Directory name whose contents are context images, never frames.
pub const RELATED_IMAGES_DIR: &str = "related_images";

/// The images of a data source, sorted, with their context images.
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// The data root: names are relative to it.
    pub root: PathBuf,
    /// Frame images, in frame order.
    pub frames: Vec<PathBuf>,
    /// Context images per frame image (paths relative to the root, sorted).
    pub related: BTreeMap<PathBuf, Vec<String>>,
}

/// Options for building an image manifest.
#[derive(Debug, Clone, Copy)]
pub struct ImageOptions {
    pub sorting: SortingMethod,
    /// Compute pixel checksums (the CLI does; CVAT's server does not).
    pub checksums: bool,
}

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions {
            sorting: SortingMethod::Lexicographical,
            checksums: true,
        }
    }
}

/// Whether a file name has an image MIME type (by extension, like Python's `mimetypes`), not
/// counting SVG and point clouds.
pub fn is_image_name(path: &Path) -> bool {
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
        return false;
    };
    let ext = ext.to_ascii_lowercase();
    if matches!(ext.as_str(), "svg" | "svgz" | "pcd") {
        return false;
    }
    mime_guess::from_ext(&ext)
        .iter()
        .any(|m| m.type_() == mime_guess::mime::IMAGE)
}

/// Finds the images of `source`: a directory (searched recursively) or a glob pattern (the data
/// root is the leading part of the pattern without wildcards). Related images are separated out.
pub fn discover(source: &str, sorting: SortingMethod) -> Result<ImageSet, ManifestError> {
    let (root, files) = if has_glob_chars(source) {
        let root = glob_root(source);
        let mut files = Vec::new();
        let entries = glob::glob(source)
            .map_err(|e| ManifestError::Usage(format!("invalid glob pattern '{source}': {e}")))?;
        for entry in entries {
            let p = entry.map_err(|e| {
                let path = e.path().to_path_buf();
                ManifestError::io(path, e.into())
            })?;
            if p.is_file() && is_image_name(&p) {
                files.push(p);
            }
        }
        (root, files)
    } else {
        let root = PathBuf::from(source);
        if !root.is_dir() {
            return Err(ManifestError::Usage(format!(
                "'{source}' is neither a directory nor a glob pattern of images"
            )));
        }
        let mut files = Vec::new();
        walk(&root, &mut files)?;
        (root, files)
    };
    split_related(root, files, sorting)
}

fn has_glob_chars(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The leading components of a pattern that contain no wildcard.
fn glob_root(pattern: &str) -> PathBuf {
    let mut root = PathBuf::new();
    let path = Path::new(pattern);
    let comps: Vec<Component> = path.components().collect();
    for (i, c) in comps.iter().enumerate() {
        let s = c.as_os_str().to_string_lossy();
        if has_glob_chars(&s) || i == comps.len() - 1 {
            break;
        }
        root.push(c.as_os_str());
    }
    if root.as_os_str().is_empty() {
        root.push(".");
    }
    root
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ManifestError> {
    let rd = std::fs::read_dir(dir).map_err(|e| ManifestError::io(dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| ManifestError::io(dir, e))?;
        let path = entry.path();
        let ft = entry.file_type().map_err(|e| ManifestError::io(&path, e))?;
        // Follow symlinks like os.walk does for files (not for directories, to avoid loops).
        if ft.is_dir() {
            walk(&path, out)?;
        } else if (ft.is_file() || (ft.is_symlink() && path.is_file())) && is_image_name(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn in_related_dir(rel: &Path) -> bool {
    rel.components()
        .any(|c| c.as_os_str() == RELATED_IMAGES_DIR)
}

/// The frame a context image belongs to (a path of the same form, absolute or relative): `parents[2] / ".".join(parents[0].name.rsplit("_", 1))`.
pub fn owner_of(context: &Path) -> Option<PathBuf> {
    let p0 = context.parent()?;
    let p2 = p0.parent()?.parent()?;
    let dir_name = p0.file_name()?.to_str()?;
    let scene = match dir_name.rsplit_once('_') {
        Some((a, b)) => format!("{a}.{b}"),
        None => dir_name.to_owned(),
    };
    Some(p2.join(scene))
}

fn split_related(
    root: PathBuf,
    files: Vec<PathBuf>,
    sorting: SortingMethod,
) -> Result<ImageSet, ManifestError> {
    let rel = |p: &Path| p.strip_prefix(&root).unwrap_or(p).to_path_buf();
    let (mut frames, contexts): (Vec<PathBuf>, Vec<PathBuf>) =
        files.into_iter().partition(|p| !in_related_dir(&rel(p)));
    let frame_set: std::collections::HashSet<&PathBuf> = frames.iter().collect();
    let mut related: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for c in &contexts {
        if let Some(owner) = owner_of(c) {
            if frame_set.contains(&owner) {
                related.entry(owner).or_default().push(posix(&rel(c)));
            }
        }
    }
    for list in related.values_mut() {
        list.sort();
    }
    if frames.is_empty() {
        return Err(ManifestError::NoImages(root));
    }
    let key_strings: Vec<String> = frames
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut pairs: Vec<(String, PathBuf)> = key_strings.into_iter().zip(frames.drain(..)).collect();
    sorting.sort(&mut pairs, |(k, _)| k.as_str());
    Ok(ImageSet {
        root,
        frames: pairs.into_iter().map(|(_, p)| p).collect(),
        related,
    })
}

/// A path as a `/`-separated string (CVAT replaces `\` with `/`).
fn posix(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

/// Reads every image of `set` (in parallel) and builds the manifest lines, in frame order.
/// `progress` is called once per finished image.
pub fn build_items(
    set: &ImageSet,
    opts: ImageOptions,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<ImageItem>, ManifestError> {
    // Collect every result, then report the first failure in frame order: the same error
    // whatever the thread scheduling.
    let results: Vec<Result<ImageItem, ManifestError>> = set
        .frames
        .par_iter()
        .map(|path| {
            let rel = path.strip_prefix(&set.root).unwrap_or(path);
            let rel_s = posix(rel);
            let props = probe(path, &rel_s, opts.checksums)?;
            let file_name = rel
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let (_, ext) = splitext(&file_name);
            let name = rel_s[..rel_s.len() - ext.len()].to_owned();
            progress();
            Ok(ImageItem {
                name,
                extension: ext.to_owned(),
                width: props.width,
                height: props.height,
                checksum: props.checksum,
                meta: set.related.get(path).map(|r| ImageMeta {
                    related_images: r.clone(),
                }),
            })
        })
        .collect();
    results.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_of_context_image() {
        assert_eq!(
            owner_of(Path::new("/d/sub/related_images/scene_1_png/ctx.jpg")),
            Some(PathBuf::from("/d/sub/scene_1.png"))
        );
    }

    #[test]
    fn glob_root_is_the_wildcard_free_prefix() {
        assert_eq!(glob_root("/data/set/**/*.png"), PathBuf::from("/data/set"));
        assert_eq!(glob_root("*.png"), PathBuf::from("."));
        assert_eq!(glob_root("/a/b[0-9]/c.png"), PathBuf::from("/a"));
    }

    #[test]
    fn image_names() {
        assert!(is_image_name(Path::new("a.JPG")));
        assert!(is_image_name(Path::new("a.webp")));
        assert!(!is_image_name(Path::new("a.svg")));
        assert!(!is_image_name(Path::new("a.txt")));
        assert!(!is_image_name(Path::new("a.pcd")));
    }
}
