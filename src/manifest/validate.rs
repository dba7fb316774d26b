//! Checking a manifest: its structure, and against its media (spec §9).

use std::path::Path;

use super::images::is_image_name;
use super::model::{read_manifest, Manifest};
use super::video::SEEK_MISMATCH_UPPER_BOUND;
use super::ManifestError;
use crate::media::{self, ColorMode, FrameReader, RgbConverter};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The manifest cannot be used with this media.
    Error,
    /// Worth knowing, but the manifest still works.
    Warning,
}

/// One thing validation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
}

/// Options for [`validate`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidateOptions {
    /// Also compare checksums (CVAT itself never re-checks video checksums).
    pub checksums: bool,
    /// Colour mode the checksums were computed with.
    pub color: ColorMode,
}

fn error(message: String) -> Finding {
    Finding {
        severity: Severity::Error,
        message,
    }
}

fn warning(message: String) -> Finding {
    Finding {
        severity: Severity::Warning,
        message,
    }
}

/// Reads the manifest at `manifest_path`, checks its structure, and with `media` (the video, or
/// the image data root) checks that it describes that media. Stops at the first error; returns
/// the manifest and every finding. A manifest that cannot be parsed is an `Err`.
pub fn validate(
    manifest_path: &Path,
    media: Option<&Path>,
    opts: &ValidateOptions,
) -> Result<(Manifest, Vec<Finding>), ManifestError> {
    let manifest = read_manifest(manifest_path)?;
    let mut findings = Vec::new();
    match &manifest {
        Manifest::Video {
            properties,
            keyframes,
        } => {
            if keyframes.is_empty() {
                findings.push(error("the manifest lists no key frames".into()));
            }
            for w in keyframes.windows(2) {
                if w[1].number <= w[0].number {
                    findings.push(error(format!(
                        "Invalid saved key frames sequence in manifest file: frame {} follows frame {}",
                        w[1].number, w[0].number
                    )));
                    return Ok((manifest, findings));
                }
            }
            if let Some(k) = keyframes.iter().find(|k| k.number >= properties.length) {
                findings.push(error(format!(
                    "key frame {} is beyond the video length {}",
                    k.number, properties.length
                )));
                return Ok((manifest, findings));
            }
            if let Some(video) = media {
                check_video(video, &manifest, opts, &mut findings)?;
            }
        }
        Manifest::Images { items } => {
            if items.is_empty() {
                findings.push(error("the manifest lists no images".into()));
            }
            if let Some(root) = media {
                check_images(root, &manifest, opts, &mut findings);
            }
        }
    }
    Ok((manifest, findings))
}

fn check_video(
    video: &Path,
    manifest: &Manifest,
    opts: &ValidateOptions,
    findings: &mut Vec<Finding>,
) -> Result<(), ManifestError> {
    let Manifest::Video {
        properties,
        keyframes,
    } = manifest
    else {
        unreachable!("called for video manifests only")
    };
    let mut reader = FrameReader::open(video)?;
    let info = reader.source().info().clone();
    let file_name = video
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if file_name != properties.name {
        findings.push(warning(format!(
            "the manifest was made for '{}', not '{}'",
            properties.name, file_name
        )));
    }
    let (w, h) = info.display_size();
    if [w, h] != properties.resolution {
        findings.push(warning(format!(
            "the manifest says {}x{} but the video displays as {w}x{h} (coded {}x{}); older CVAT versions ignore display rotation",
            properties.resolution[0], properties.resolution[1], info.width, info.height
        )));
    }
    let mut rgb = RgbConverter::new(opts.color);
    for k in keyframes {
        if let Err(e) = reader.seek(k.pts) {
            findings.push(error(format!(
                "The uploaded manifest does not match the video: seeking to key frame {} (pts {}) failed: {e}",
                k.number, k.pts
            )));
            return Ok(());
        }
        let mut seen = Vec::new();
        let mut found = None;
        for _ in 0..SEEK_MISMATCH_UPPER_BOUND {
            let Some(frame) = reader.next_frame()? else {
                break;
            };
            let pts = frame.pts().or(frame.best_effort_timestamp());
            if seen.len() < 3 {
                seen.push(pts);
            }
            match pts {
                Some(p) if p == k.pts => {
                    found = Some(frame);
                    break;
                }
                Some(p) if p > k.pts => break,
                _ => {}
            }
        }
        let Some(frame) = found else {
            findings.push(error(format!(
                "The uploaded manifest does not match the video: no frame with pts {} (key frame {}) after seeking; first frames decoded had pts {:?}",
                k.pts, k.number, seen
            )));
            return Ok(());
        };
        if opts.checksums && !k.checksum.is_empty() {
            let actual = rgb.md5_hex(&frame)?;
            if actual != k.checksum {
                findings.push(error(format!(
                    "checksum mismatch at key frame {} (pts {}): manifest {}, video {actual}",
                    k.number, k.pts, k.checksum
                )));
                return Ok(());
            }
        }
    }
    Ok(())
}

fn check_images(
    root: &Path,
    manifest: &Manifest,
    opts: &ValidateOptions,
    findings: &mut Vec<Finding>,
) {
    let Manifest::Images { items } = manifest else {
        unreachable!("called for image manifests only")
    };
    for item in items {
        let rel = item.full_name();
        let path = root.join(&rel);
        if !path.is_file() {
            findings.push(error(format!(
                "'{rel}' is listed but not found under {}",
                root.display()
            )));
            return;
        }
        if !is_image_name(&path) {
            findings.push(warning(format!(
                "'{rel}' does not have an image file extension"
            )));
        }
        let want_checksum = opts.checksums && item.checksum.is_some();
        match media::image::probe(&path, &rel, want_checksum) {
            Err(e) => {
                findings.push(error(e.to_string()));
                return;
            }
            Ok(p) => {
                if (p.width, p.height) != (item.width, item.height) {
                    findings.push(error(format!(
                        "'{rel}': the manifest says {}x{}, the image is {}x{}",
                        item.width, item.height, p.width, p.height
                    )));
                    return;
                }
                if want_checksum && p.checksum != item.checksum {
                    findings.push(error(format!(
                        "'{rel}': checksum mismatch: manifest {}, image {}",
                        item.checksum.as_deref().unwrap_or(""),
                        p.checksum.unwrap_or_default()
                    )));
                    return;
                }
            }
        }
    }
}
