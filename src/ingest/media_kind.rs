//! Media typing of task data, spec §11.3: one video, many images, or one archive.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::names::is_ignored_name;
use super::IngestError;
use crate::manifest::{is_image_name, RELATED_IMAGES_DIR};

/// What a file is, judged by its name like CVAT does (Python `mimetypes` plus `.mxf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// An image MIME type (not SVG, not point clouds).
    Image,
    /// A video MIME type, or `.mxf`.
    Video,
    /// An audio MIME type (CVAT media this server does not handle).
    Audio,
    /// A zip archive (`.zip`).
    Zip,
    /// Another archive: tar and compressed tar, `.gz`, `.bz2`, rar, 7z, cpio.
    Archive,
    /// A PDF document (CVAT media this server does not handle).
    Pdf,
    /// A manifest, `*.jsonl`.
    Manifest,
    /// Anything else: ignored, as CVAT does (e.g. `notes.txt`).
    Other,
}

impl MediaKind {
    /// The kind of `path`, from its name only (the file is not opened).
    pub fn of(path: &Path) -> MediaKind {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
        if is_image_name(path) {
            return MediaKind::Image;
        }
        if ext == "mxf" {
            return MediaKind::Video;
        }
        if ext == "zip" {
            return MediaKind::Zip;
        }
        if ext == "pdf" {
            return MediaKind::Pdf;
        }
        let is_tar = ["tar", "tgz", "tbz", "tbz2", "txz", "taz"].contains(&ext)
            || name
                .rsplit_once('.')
                .is_some_and(|(stem, _)| stem.ends_with(".tar"));
        if is_tar || ["gz", "bz2", "rar", "7z", "cpio"].contains(&ext) {
            return MediaKind::Archive;
        }
        if ext == "jsonl" {
            return MediaKind::Manifest;
        }
        let top = mime_guess::from_ext(ext)
            .first()
            .map(|m| m.type_().as_str().to_owned());
        match top.as_deref() {
            Some("video") => MediaKind::Video,
            Some("audio") => MediaKind::Audio,
            _ => MediaKind::Other,
        }
    }
}

/// The frames of a task, as decided by [`classify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Media {
    /// One video.
    Video(PathBuf),
    /// Images, in the order given (sort them afterwards with the task's sorting method).
    Images(Vec<PathBuf>),
    /// One zip or tar archive: extract it with [`super::extract_archive`] and type its contents
    /// with [`classify_extracted`].
    Archive(PathBuf),
}

/// The result of typing a task's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSet {
    /// The frames' source.
    pub media: Media,
    /// The uploaded manifest (`*.jsonl`), if one was given.
    pub manifest: Option<PathBuf>,
    /// Files below a `related_images` directory: context images, never frames. The caller
    /// links them to their frames (spec §5.3).
    pub related_images: Vec<PathBuf>,
    /// Files that play no part: names CVAT ignores (`__MACOSX`, `.DS_Store`, …) and files that
    /// are neither media nor a manifest (e.g. `notes.txt`). Worth a log line, not an error.
    pub skipped: Vec<PathBuf>,
}

/// Types the files of a task (uploads and expanded share paths), following CVAT (spec §11.3).
///
/// Judged by names only: expand share directories first ([`super::expand_share_dir`]). Paths
/// should be relative to the data root, or at least the root should not itself be below a
/// directory named `related_images`: any file below such a directory is set aside as a
/// related image.
///
/// Allowed: exactly one video, or exactly one archive (zip or tar), or any number of images;
/// plus at most one manifest. Errors, with CVAT's messages:
/// * several unique media, or one next to images: [`IngestError::MixedMedia`], e.g. "… but
///   2 video(s) found.";
/// * no media: [`IngestError::NoMedia`];
/// * more than one `*.jsonl`: [`IngestError::MultipleManifests`];
/// * a single audio file or PDF: [`IngestError::UnsupportedMedia`] (this server handles
///   neither).
pub fn classify(paths: &[PathBuf]) -> Result<MediaSet, IngestError> {
    let sorted = Sorted::new(paths);
    let unique = sorted.videos.len()
        + sorted.audio.len()
        + sorted.archives.len()
        + sorted.pdfs.len()
        + sorted.zips.len();
    if unique > 1 || (unique == 1 && !sorted.images.is_empty()) {
        return Err(IngestError::MixedMedia {
            found: sorted.found(),
        });
    }
    if unique == 0 && sorted.images.is_empty() {
        return Err(IngestError::NoMedia);
    }
    let manifest = sorted.single_manifest()?;
    let media = if let Some(v) = sorted.videos.first() {
        Media::Video(v.clone())
    } else if let Some(a) = sorted.archives.first().or(sorted.zips.first()) {
        Media::Archive(a.clone())
    } else if let Some(a) = sorted.audio.first() {
        return Err(unsupported("audio", a));
    } else if let Some(p) = sorted.pdfs.first() {
        return Err(unsupported("pdf", p));
    } else {
        Media::Images(sorted.images)
    };
    Ok(MediaSet {
        media,
        manifest,
        related_images: sorted.related,
        skipped: sorted.skipped,
    })
}

/// Types the files extracted from an archive: only images are frames (like CVAT's archive
/// readers); videos, nested archives and other files are skipped. A `*.jsonl` file is the
/// manifest (at most one). Files below `related_images` are set aside as in [`classify`].
///
/// Errors: no image ([`IngestError::NoMedia`]), several manifests
/// ([`IngestError::MultipleManifests`]). The result's media is always [`Media::Images`].
pub fn classify_extracted(paths: &[PathBuf]) -> Result<MediaSet, IngestError> {
    let mut sorted = Sorted::new(paths);
    let manifest = sorted.single_manifest()?;
    if sorted.images.is_empty() {
        return Err(IngestError::NoMedia);
    }
    for other in [
        sorted.videos,
        sorted.audio,
        sorted.archives,
        sorted.zips,
        sorted.pdfs,
    ] {
        sorted.skipped.extend(other);
    }
    sorted.skipped.sort();
    Ok(MediaSet {
        media: Media::Images(sorted.images),
        manifest,
        related_images: sorted.related,
        skipped: sorted.skipped,
    })
}

fn unsupported(kind: &'static str, path: &Path) -> IngestError {
    IngestError::UnsupportedMedia {
        kind,
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

/// Whether a directory above the file is named `related_images`.
fn in_related_dir(path: &Path) -> bool {
    path.parent()
        .is_some_and(|p| p.components().any(|c| c.as_os_str() == RELATED_IMAGES_DIR))
}

/// Paths sorted into CVAT's media buckets, input order kept within each.
#[derive(Default)]
struct Sorted {
    images: Vec<PathBuf>,
    videos: Vec<PathBuf>,
    audio: Vec<PathBuf>,
    archives: Vec<PathBuf>,
    pdfs: Vec<PathBuf>,
    zips: Vec<PathBuf>,
    manifests: Vec<PathBuf>,
    related: Vec<PathBuf>,
    skipped: Vec<PathBuf>,
}

impl Sorted {
    fn new(paths: &[PathBuf]) -> Sorted {
        let mut s = Sorted::default();
        for p in paths {
            if is_ignored_name(p) {
                s.skipped.push(p.clone());
                continue;
            }
            if in_related_dir(p) {
                s.related.push(p.clone());
                continue;
            }
            let bucket = match MediaKind::of(p) {
                MediaKind::Image => &mut s.images,
                MediaKind::Video => &mut s.videos,
                MediaKind::Audio => &mut s.audio,
                MediaKind::Zip => &mut s.zips,
                MediaKind::Archive => &mut s.archives,
                MediaKind::Pdf => &mut s.pdfs,
                MediaKind::Manifest => &mut s.manifests,
                MediaKind::Other => &mut s.skipped,
            };
            bucket.push(p.clone());
        }
        s
    }

    fn single_manifest(&self) -> Result<Option<PathBuf>, IngestError> {
        match self.manifests.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            _ => Err(IngestError::MultipleManifests),
        }
    }

    /// CVAT's "N kind(s)" list in its media order, leaving out kinds with no file.
    fn found(&self) -> String {
        let mut out = String::new();
        for (n, kind) in [
            (self.images.len(), "image"),
            (self.videos.len(), "video"),
            (self.audio.len(), "audio"),
            (self.archives.len(), "archive"),
            (self.pdfs.len(), "pdf"),
            (self.zips.len(), "zip"),
        ] {
            if n > 0 {
                if !out.is_empty() {
                    out.push_str(", ");
                }
                let _ = write!(out, "{n} {kind}(s)");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn kinds_by_name() {
        for (name, kind) in [
            ("a.PNG", MediaKind::Image),
            ("a.jpeg", MediaKind::Image),
            ("a.webp", MediaKind::Image),
            ("a.svg", MediaKind::Other),
            ("a.mp4", MediaKind::Video),
            ("a.MKV", MediaKind::Video),
            ("a.webm", MediaKind::Video),
            ("a.avi", MediaKind::Video),
            ("a.mxf", MediaKind::Video),
            ("a.mp3", MediaKind::Audio),
            ("a.zip", MediaKind::Zip),
            ("a.tar", MediaKind::Archive),
            ("a.tar.gz", MediaKind::Archive),
            ("a.tgz", MediaKind::Archive),
            ("a.tar.xz", MediaKind::Archive),
            ("a.rar", MediaKind::Archive),
            ("a.pdf", MediaKind::Pdf),
            ("manifest.jsonl", MediaKind::Manifest),
            ("notes.txt", MediaKind::Other),
            ("noext", MediaKind::Other),
        ] {
            assert_eq!(MediaKind::of(Path::new(name)), kind, "{name}");
        }
    }

    #[test]
    fn images_with_manifest_related_and_junk() {
        let set = classify(&paths(&[
            "b.png",
            "a.jpg",
            "notes.txt",
            "manifest.jsonl",
            "related_images/b_png/ctx.jpg",
            "__MACOSX/._b.png",
            ".DS_Store",
        ]))
        .unwrap();
        assert_eq!(set.media, Media::Images(paths(&["b.png", "a.jpg"])));
        assert_eq!(set.manifest, Some(PathBuf::from("manifest.jsonl")));
        assert_eq!(set.related_images, paths(&["related_images/b_png/ctx.jpg"]));
        assert_eq!(
            set.skipped,
            paths(&["notes.txt", "__MACOSX/._b.png", ".DS_Store"])
        );
    }

    #[test]
    fn one_video_or_one_archive() {
        let set = classify(&paths(&["/u/v.mp4", "/u/manifest.jsonl"])).unwrap();
        assert_eq!(set.media, Media::Video("/u/v.mp4".into()));
        assert!(set.manifest.is_some());
        assert_eq!(
            classify(&paths(&["d.zip", "readme.md"])).unwrap().media,
            Media::Archive("d.zip".into())
        );
        assert_eq!(
            classify(&paths(&["d.tar.gz"])).unwrap().media,
            Media::Archive("d.tar.gz".into())
        );
        // A file named related_images is not below such a directory.
        assert_eq!(
            classify(&paths(&["related_images.png"])).unwrap().media,
            Media::Images(paths(&["related_images.png"]))
        );
    }

    #[test]
    fn mixed_media_errors() {
        let err = classify(&paths(&["a.mp4", "b.mp4"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Only one video, audio, archive, pdf, zip or many image, directory can be used \
             simultaneously, but 2 video(s) found."
        );
        let err = classify(&paths(&["a.png", "b.png", "c.avi"])).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("but 2 image(s), 1 video(s) found."),
            "{err}"
        );
        let err = classify(&paths(&["a.zip", "b.tar"])).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("but 1 archive(s), 1 zip(s) found."),
            "{err}"
        );
        assert!(matches!(
            classify(&paths(&["a.mp4", "x.png"])),
            Err(IngestError::MixedMedia { .. })
        ));
        assert!(matches!(
            classify(&paths(&["a.mp4", "x.pdf"])),
            Err(IngestError::MixedMedia { .. })
        ));
    }

    #[test]
    fn no_media_and_manifest_errors() {
        for case in [
            &[][..],
            &["notes.txt"][..],
            &["manifest.jsonl"][..],
            &["related_images/a_png/x.png"][..],
            &["__MACOSX/a.png", ".DS_Store"][..],
        ] {
            let err = classify(&paths(case)).unwrap_err();
            assert_eq!(err.to_string(), "No media data found", "{case:?}");
        }
        let err = classify(&paths(&["a.png", "m1.jsonl", "m2.jsonl"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Only one manifest file can be attached to data"
        );
    }

    #[test]
    fn audio_and_pdf_are_unsupported() {
        let err = classify(&paths(&["/x/song.mp3"])).unwrap_err();
        assert!(matches!(
            err,
            IngestError::UnsupportedMedia { kind: "audio", .. }
        ));
        assert!(err.to_string().contains("song.mp3"));
        assert!(matches!(
            classify(&paths(&["doc.pdf"])),
            Err(IngestError::UnsupportedMedia { kind: "pdf", .. })
        ));
    }

    #[test]
    fn extracted_contents_are_images_only() {
        let set = classify_extracted(&paths(&[
            "a/1.png",
            "a/2.png",
            "clip.mp4",
            "inner.zip",
            "manifest.jsonl",
            "a/related_images/1_png/c.jpg",
        ]))
        .unwrap();
        assert_eq!(set.media, Media::Images(paths(&["a/1.png", "a/2.png"])));
        assert_eq!(set.manifest, Some("manifest.jsonl".into()));
        assert_eq!(set.related_images, paths(&["a/related_images/1_png/c.jpg"]));
        assert_eq!(set.skipped, paths(&["clip.mp4", "inner.zip"]));
        assert!(matches!(
            classify_extracted(&paths(&["clip.mp4"])),
            Err(IngestError::NoMedia)
        ));
        assert!(matches!(
            classify_extracted(&paths(&["a.png", "x.jsonl", "y.jsonl"])),
            Err(IngestError::MultipleManifests)
        ));
    }
}
