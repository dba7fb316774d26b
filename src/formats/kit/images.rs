//! Saving the frames' images into an export ("Save images"): one loop for every format, in
//! frame order (a video's frame source decodes sequentially), each image a stored zip entry.

use std::collections::HashSet;

use crate::formats::{DatasetFrame, FormatError, FrameSource, TaskDataset, ZipSink};

/// Writes the image of every frame of `ds` into `zip`, in frame order. `entry` names each one
/// from the frame's index in `ds.frames`, the frame and the extension the source encoded it
/// with (e.g. `".PNG"`); `progress` gets the fraction of frames written.
pub fn save_images(
    ds: &TaskDataset<'_>,
    images: Option<&dyn FrameSource>,
    zip: &mut ZipSink<std::fs::File>,
    mut entry: impl FnMut(usize, &DatasetFrame, &str) -> String,
    progress: &dyn Fn(f64),
) -> Result<(), FormatError> {
    save_images_as(
        ds,
        images,
        zip,
        |i, f, ext, names| names.push(entry(i, f, ext)),
        progress,
    )
}

/// [`save_images`] for formats that write a frame's image under several names (Ultralytics YOLO
/// Classification: once per tag) or none: `entries` pushes the names of frame `i`'s image.
pub fn save_images_as(
    ds: &TaskDataset<'_>,
    images: Option<&dyn FrameSource>,
    zip: &mut ZipSink<std::fs::File>,
    mut entries: impl FnMut(usize, &DatasetFrame, &str, &mut Vec<String>),
    progress: &dyn Fn(f64),
) -> Result<(), FormatError> {
    let src = images.ok_or_else(|| {
        FormatError::Unsupported("images were requested but there is no frame source".into())
    })?;
    let n = ds.frames.len().max(1) as f64;
    let mut names = Vec::with_capacity(1);
    for (i, f) in ds.frames.iter().enumerate() {
        let (bytes, ext) = src.image(f.rel)?;
        names.clear();
        entries(i, f, &ext, &mut names);
        for name in &names {
            zip.stored_file(name)?.write_all(&bytes)?;
        }
        progress((i + 1) as f64 / n);
    }
    Ok(())
}

/// The image file name of a frame in an export without images: its own name (leading `/`
/// dropped), `.jpg` when it has no extension (as Datumaro names an item's image).
pub fn image_name(f: &DatasetFrame) -> String {
    let name = f.name.trim_start_matches('/');
    if super::paths::split_ext(name).1.is_empty() {
        format!("{name}.jpg")
    } else {
        name.to_owned()
    }
}

/// The image file name of every frame as the annotation files name it: the frame's own name
/// (leading `/` dropped, `.jpg` when it has none), or with `save`, the name of the image saved
/// under `dir/` with the extension the frame source encoded it with (YOLO's and VOC's
/// layouts keep the frame's folders).
pub fn image_names(
    ds: &TaskDataset<'_>,
    images: Option<&dyn FrameSource>,
    zip: &mut ZipSink<std::fs::File>,
    save: bool,
    dir: &str,
    progress: &dyn Fn(f64),
) -> Result<Vec<String>, FormatError> {
    let mut names: Vec<String> = ds.frames.iter().map(image_name).collect();
    if save {
        save_images(
            ds,
            images,
            zip,
            |i, f, ext| {
                names[i] = super::paths::with_image_ext(&f.name, ext);
                format!("{dir}/{}", names[i])
            },
            progress,
        )?;
    }
    Ok(names)
}

/// File names made unique the way Datumaro does when it saves media: a name already used gets
/// `_1`, `_2`, … before its extension.
#[derive(Debug, Default)]
pub struct UniqueNames {
    used: HashSet<String>,
}

impl UniqueNames {
    /// `stem` + `ext` (`ext` without its dot; empty for none), suffixed until unused.
    pub fn name(&mut self, stem: &str, ext: &str) -> String {
        let with_ext = |stem: &str| {
            if ext.is_empty() {
                stem.to_owned()
            } else {
                format!("{stem}.{ext}")
            }
        };
        let mut name = with_ext(stem);
        let mut k = 1;
        while !self.used.insert(name.clone()) {
            name = with_ext(&format!("{stem}_{k}"));
            k += 1;
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clashing_names_get_suffixes() {
        let mut u = UniqueNames::default();
        assert_eq!(u.name("a_b", "png"), "a_b.png");
        assert_eq!(u.name("a_b", "png"), "a_b_1.png");
        assert_eq!(u.name("a_b", "png"), "a_b_2.png");
        assert_eq!(u.name("a_b", "jpg"), "a_b.jpg");
        assert_eq!(u.name("x", ""), "x");
    }
}
