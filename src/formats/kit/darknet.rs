//! What the Darknet-style formats share (YOLO 1.1, spec §8.11, and the Ultralytics YOLO family,
//! §8.12): Datumaro's box math, its subset and item naming, its `"%.6f"` values and the checked
//! reading of class ids and numbers from a label line.

use std::collections::HashMap;

use crate::formats::{
    read_error, DatasetFrame, ExportOptions, FormatError, FrameSource, ImportInput, TaskDataset,
    ZipSink,
};

use super::frames::{FrameAttr, FrameMatcher, Item, Root};
use super::images::image_names;
use super::paths::split_ext;

/// Darknet's box: centre and size, relative to the image (Datumaro's `_make_yolo_bbox`);
/// `p` is `x1 y1 x2 y2` in pixels.
pub fn yolo_box(p: &[f64], width: u32, height: u32) -> [f64; 4] {
    let (w, h) = (f64::from(width), f64::from(height));
    [
        (p[0] + p[2]) / 2.0 / w,
        (p[1] + p[3]) / 2.0 / h,
        (p[2] - p[0]) / w,
        (p[3] - p[1]) / h,
    ]
}

/// The subset an export writes: the task's, `train` for none or `default` (Datumaro's
/// `_resolve_subsets`); a subset named after one of the config's `reserved` keys, or one that is
/// not a file name, cannot be written.
pub fn subset_name<'d>(
    ds: &'d TaskDataset<'_>,
    reserved: &[&str],
    format: &str,
) -> Result<&'d str, FormatError> {
    let subset = match ds.subset.as_str() {
        "" | "default" => "train",
        s => s,
    };
    if reserved.contains(&subset) {
        return Err(FormatError::Unsupported(format!(
            "cannot export the subset '{subset}' in {format} format: the word is reserved"
        )));
    }
    if subset.contains(['/', '\\']) || subset.chars().any(char::is_whitespace) {
        return Err(FormatError::Unsupported(format!(
            "the subset name '{subset}' is not a {format} subset name"
        )));
    }
    Ok(subset)
}

/// The item id of a frame: its path without extension (leading `/` dropped).
pub fn item_id(f: &DatasetFrame) -> &str {
    split_ext(f.name.trim_start_matches('/')).0
}

pub use super::images::image_name;

/// Which frames are written: frames of one item id (`a.jpg`, `a.png`) are one Datumaro item, the
/// last of them. `written(i)` says whether frame `i` is that one.
pub struct ItemFrames<'d> {
    last_of_id: HashMap<&'d str, usize>,
    frames: &'d [DatasetFrame],
}

impl<'d> ItemFrames<'d> {
    pub fn new(ds: &'d TaskDataset<'_>) -> Self {
        let mut last_of_id = HashMap::with_capacity(ds.frames.len());
        for (i, f) in ds.frames.iter().enumerate() {
            last_of_id.insert(item_id(f), i);
        }
        ItemFrames {
            last_of_id,
            frames: &ds.frames,
        }
    }

    /// Whether frame `i` is the item of its id.
    pub fn written(&self, i: usize) -> bool {
        self.last_of_id.get(item_id(&self.frames[i])) == Some(&i)
    }
}

/// Datumaro's `localize_path`: a path of a config or a subset list without its `data/`.
pub fn localize(path: &str) -> &str {
    let path = path.trim();
    let path = path.strip_prefix("./").unwrap_or(path);
    path.strip_prefix("data/").unwrap_or(path)
}

/// `root` joined with a relative path.
pub fn under(root: &str, path: &str) -> String {
    if root.is_empty() {
        path.to_owned()
    } else {
        format!("{root}/{path}")
    }
}

/// The text of archive entry `name`, decoded as UTF-8 (invalid bytes an error naming it).
pub fn read_text(input: &ImportInput, name: &str) -> Result<String, FormatError> {
    let bytes = input.with_reader(name, |r, _| {
        let mut buf = Vec::new();
        r.read_to_end(&mut buf).map(|_| buf)
    })?;
    let bytes = bytes.map_err(|e| read_error(name, e))?;
    String::from_utf8(bytes)
        .map_err(|e| FormatError::invalid(name, "", format!("not UTF-8 text: {e}")))
}

/// Appends `" %.6f"` of each value (Datumaro's label lines).
pub fn put_values(out: &mut String, values: impl IntoIterator<Item = f64>) {
    use std::fmt::Write as _;
    for v in values {
        let _ = write!(out, " {v:.6}");
    }
}

/// A class id field of a label line, checked against a list of `names` class names (`what`
/// names that list in the error, e.g. `obj.names`).
pub fn class_id(field: &str, names: usize, what: &str) -> Result<usize, String> {
    let class: i64 = field
        .parse()
        .map_err(|_| format!("the class id '{field}' is not an integer"))?;
    usize::try_from(class)
        .ok()
        .filter(|&c| c < names)
        .ok_or_else(|| {
            format!(
                "class id {class} is not in {what} ({names} names: ids 0 to {})",
                names as i64 - 1
            )
        })
}

/// A finite number field of a label line; `what` names it in the error.
pub fn number(field: &str, what: &dyn std::fmt::Display) -> Result<f64, String> {
    field
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| format!("the {what} '{field}' is not a number"))
}

/// Matches imported items to task frames (spec §6, with the root hint of all the items): the
/// task frame of item `id` (its image's extension `image_ext`, empty for none), or an error
/// naming `file` and `location`, where the item was listed.
pub struct ItemMatcher<'d> {
    matcher: FrameMatcher<'d>,
    hint: Option<String>,
}

impl<'d> ItemMatcher<'d> {
    pub fn new<'s>(ds: &'d TaskDataset<'_>, ids: impl IntoIterator<Item = &'s str>) -> Self {
        let matcher = FrameMatcher::new(&ds.frames, ds.is_video());
        let hint = matcher.root_hint(ids);
        ItemMatcher { matcher, hint }
    }

    /// The task-relative frame of an item.
    pub fn frame(
        &self,
        id: &str,
        image_ext: &str,
        file: &str,
        location: impl FnOnce() -> String,
    ) -> Result<u64, FormatError> {
        let item = Item {
            id,
            image_ext: (!image_ext.is_empty()).then_some(image_ext),
            frame: FrameAttr::Absent,
        };
        self.matcher
            .match_item(&item, Root::Hint(self.hint.as_deref()))
            .map(|(rel, _)| rel)
            .ok_or_else(|| {
                FormatError::invalid(
                    file,
                    location(),
                    format!("could not match item id '{id}' with any task frame"),
                )
            })
    }
}

/// With "Save images", writes every frame's image as `<dir>/<name>` (the frame's name with the
/// extension it was encoded with); returns the image names the subset list gives (the frames'
/// names, `.jpg` for none, without images) and the share of the progress the images took.
pub fn save_frame_images(
    ds: &TaskDataset<'_>,
    opts: &ExportOptions,
    images: Option<&dyn FrameSource>,
    zip: &mut ZipSink<std::fs::File>,
    dir: &str,
    progress: &dyn Fn(f64),
) -> Result<(Vec<String>, f64), FormatError> {
    let image_share = if opts.save_images { 0.7 } else { 0.0 };
    let names = image_names(ds, images, zip, opts.save_images, dir, &|p| {
        progress(image_share * p)
    })?;
    Ok((names, image_share))
}

/// The subset list: `data/<dir>/<image>` per written frame (Datumaro's `data/` prefix).
pub fn subset_list(image_names: &[String], items: &ItemFrames<'_>, dir: &str) -> String {
    let mut list = String::new();
    for (i, name) in image_names.iter().enumerate() {
        if items.written(i) {
            list.push_str("data/");
            list.push_str(dir);
            list.push('/');
            list.push_str(name);
            list.push('\n');
        }
    }
    list
}

/// The archive's files an import looks at: no folders, no metadata entries.
pub fn archive_files(input: &ImportInput) -> Vec<String> {
    input
        .names()
        .into_iter()
        .filter(|n| !super::paths::is_metadata_entry(n) && !n.ends_with('/'))
        .collect()
}
