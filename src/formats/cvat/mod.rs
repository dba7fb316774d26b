//! CVAT XML 1.1: the "CVAT for images 1.1" and "CVAT for video 1.1" exports and the "CVAT 1.1"
//! import (spec `formats.md` §2, §3, §6, §8.1), written the way CVAT's own `cvat.py` does it
//! (`create_xml_dumper`, `dump_as_cvat_annotation`, `dump_as_cvat_interpolation`, `load_anno`) and
//! `bindings.py` feeds it.
//!
//! Both directions stream: the writer is a `quick_xml::Writer` over the zip entry, one element at
//! a time, and the reader is a `quick_xml::Reader` over the (zip entry's) bytes. Errors name the
//! file and the line of the offending element.
//!
//! Export, as CVAT writes it:
//! * The text is byte-for-byte what Python's `XMLGenerator` produces: `<?xml version="1.0"
//!   encoding="utf-8"?>`, two-space indentation with a newline before every element, no
//!   self-closing tags, `quoteattr`-style attribute quoting, numbers as `"{:.2f}"`, masks as
//!   `rle="1, 2, 3"` (Python's list `repr`).
//! * `<meta><task>`: `id, name, size, mode, overlap, bugtracker, created, updated, subset,
//!   start_frame, stop_frame, frame_filter, segments, owner, assignee, labels, original_size`, then
//!   `<dumped>`. Labels are in id order with `name, color, type, attributes, parent?, svg?`.
//! * Images: one `<image id name width height>` per frame (`id` = absolute frame; video frames are
//!   named `frame_NNNNNN` without extension), its shapes sorted by `z_order` (plain shapes before
//!   track shapes on ties), then its tags. Tracks are interpolated and outside frames dropped (a
//!   skeleton frame whose elements are all outside is dropped too); nothing links the per-frame
//!   shapes of one track (CVAT writes no `track_id` here).
//! * Video: every track as `<track id label source group_id?>` with its interpolated shapes
//!   (keyframes, outside ones included, and every visible frame), frames absolute; then every
//!   plain shape as a one-frame track closed by an outside keyframe on the next frame when that
//!   frame is before the task's stop frame. Tags are not written.
//!
//! Import, as CVAT reads it: `<image>` elements are matched to task frames (§6), shapes and tags
//! in them become plain shapes and tags; `<track>` elements keep only their `keyframe="1"`
//! shapes (outside markers included); mask tracks become one mask shape; skeleton tracks read both
//! CVAT's layout (`<skeleton>` with `<points label>` children) and the older nested `<track>` per
//! element. Labels must exist (unknown: an error), attributes are matched by name (unknown names
//! are skipped, as CVAT does; bad values are an error), mutable ones go to the track's shapes and
//! immutable ones to the track. Everything imported has source `file`.

use crate::annotations::Annotations;
use crate::formats::kit::frames::FrameMatcher;
use crate::formats::kit::images::save_images;
use crate::formats::kit::paths::{is_metadata_entry, with_image_ext};
use crate::formats::{
    DeflatedEntry, ExportOptions, Exporter, FormatError, FrameSource, ImportInput, Importer,
    TaskDataset, ZipSink,
};

mod export;
mod import;
mod xml;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod tests;

/// The CVAT XML formats: `video == false` is "CVAT for images 1.1", `true` is "CVAT for video
/// 1.1". Both import as "CVAT 1.1" (the reader takes either layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CvatXml {
    pub video: bool,
}

impl CvatXml {
    /// "CVAT for images 1.1".
    pub const IMAGES: CvatXml = CvatXml { video: false };
    /// "CVAT for video 1.1".
    pub const VIDEO: CvatXml = CvatXml { video: true };
}

const XML_NAME: &str = "annotations.xml";

impl Exporter for CvatXml {
    fn export(
        &self,
        ds: &TaskDataset<'_>,
        opts: &ExportOptions,
        images: Option<&dyn FrameSource>,
        zip: &mut ZipSink<std::fs::File>,
        progress: &dyn Fn(f64),
    ) -> Result<(), FormatError> {
        let share = if opts.save_images { 0.2 } else { 1.0 };
        let mut entry = DeflatedEntry::new(XML_NAME);
        export::write_xml(ds, self.video, &mut entry, &|p| progress(p * share))?;
        entry.finish(zip)?;
        if opts.save_images {
            save_images(
                ds,
                images,
                zip,
                |_, f, ext| format!("images/{}", with_image_ext(&f.name, ext)),
                &|p| progress(share + (1.0 - share) * p),
            )?;
        }
        Ok(())
    }
}

impl Importer for CvatXml {
    fn read(&self, input: &ImportInput, ds: &TaskDataset<'_>) -> Result<Annotations, FormatError> {
        let mut out = Annotations::default();
        let matcher = FrameMatcher::new(&ds.frames, ds.is_video());
        if input.is_zip() {
            let names = xml_entries(input);
            if names.is_empty() {
                return Err(FormatError::NotThisFormat {
                    format: "CVAT 1.1".into(),
                    reason: "the archive has no .xml annotation file".into(),
                });
            }
            for n in &names {
                import::parse_source(input, n, ds, &matcher, &mut out)?;
            }
        } else {
            let name = input.display_name().to_owned();
            import::parse_source(input, &name, ds, &matcher, &mut out)?;
        }
        Ok(out)
    }
}

/// `.xml` files of an archive at any depth (CVAT reads every one), skipping metadata entries.
fn xml_entries(input: &ImportInput) -> Vec<String> {
    let mut names: Vec<String> = input
        .names()
        .into_iter()
        .filter(|n| n.to_ascii_lowercase().ends_with(".xml") && !is_metadata_entry(n))
        .collect();
    names.sort();
    names
}
