//! Matching imported items to task frames (spec `formats.md` §6), one matcher for every format.
//!
//! [`FrameMatcher::match_item`] is CVAT's `match_dm_item`, its strategies tried in order:
//! 1. [`Strategy::Path`]: the item's path (its id with the image's extension, then the bare id)
//!    against the task's frame paths with their extensions stripped (`match_frame`);
//! 2. [`Strategy::UnderRoot`]: the same under the dataset's root hint (`find_dataset_root`,
//!    [`FrameMatcher::root_hint`]) — or, for readers that stream items and cannot know every id
//!    first, [`Strategy::UniqueSuffix`]: the path as the unambiguous tail of one task path;
//! 3. [`Strategy::FrameNumber`]: the item's `frame` attribute, or its id read as an integer;
//! 4. [`Strategy::VideoFrameName`] (video tasks): the number after `frame_` in the id's base name.
//!
//! One deliberate difference: CVAT compares the `frame_NNNNNN` number (an absolute frame, as its
//! exports name video frames) with task-relative frames, which only agree when the task starts at
//! frame 0 with step 1; here it is read as the absolute frame it is.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use super::paths::{basename, dirname, parts, split_ext};
use crate::formats::DatasetFrame;

/// The strategies of [`FrameMatcher::match_item`], in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The item's path against the task frame paths, extensions stripped.
    Path,
    /// The item's path under the dataset's root hint.
    UnderRoot,
    /// The item's path as the tail of exactly one task path (no root hint known).
    UniqueSuffix,
    /// The `frame` attribute, or the id as an integer: a task-relative frame.
    FrameNumber,
    /// Video tasks: the number after `frame_`, an absolute frame.
    VideoFrameName,
}

/// How an item gives its frame number (CVAT: `item.attributes.get('frame', item.id)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameAttr {
    /// No `frame` attribute: the id is read as an integer.
    Absent,
    /// The attribute, read as Python's `int()` would (`None` where that raises).
    Value(Option<i64>),
}

/// An imported item as the matcher sees it.
#[derive(Debug, Clone, Copy)]
pub struct Item<'s> {
    /// The item id: its path without extension.
    pub id: &'s str,
    /// The extension of the item's image, with its dot, when the item names one.
    pub image_ext: Option<&'s str>,
    pub frame: FrameAttr,
}

/// Where the dataset's items sit relative to the task's paths.
#[derive(Debug, Clone, Copy)]
pub enum Root<'s> {
    /// From [`FrameMatcher::root_hint`] over every item id (`None`: nothing matched).
    Hint(Option<&'s str>),
    /// Not known (items are matched as they stream in): use [`Strategy::UniqueSuffix`].
    Unknown,
}

/// The task frames of a dataset, indexed for [`match_item`](FrameMatcher::match_item).
pub struct FrameMatcher<'a> {
    frames: &'a [DatasetFrame],
    /// Frame path without extension → task-relative frame, in frame order.
    stems: Vec<(String, u64)>,
    by_stem: HashMap<String, u64>,
    /// Trailing path parts of the stems → frame, `None` when two frames share the tail: built
    /// on first use (only readers without a root hint need it).
    by_suffix: OnceLock<HashMap<String, Option<u64>>>,
    by_abs: HashMap<u64, u64>,
    rels: HashSet<u64>,
    is_video: bool,
}

impl<'a> FrameMatcher<'a> {
    /// A matcher for `frames`; `is_video` for video tasks ([`TaskDataset::is_video`]).
    ///
    /// [`TaskDataset::is_video`]: crate::formats::TaskDataset::is_video
    pub fn new(frames: &'a [DatasetFrame], is_video: bool) -> Self {
        let stems: Vec<(String, u64)> = frames
            .iter()
            .map(|f| (split_ext(&f.name).0.to_owned(), f.rel))
            .collect();
        FrameMatcher {
            frames,
            by_stem: stems.iter().cloned().collect(),
            stems,
            by_suffix: OnceLock::new(),
            by_abs: frames.iter().map(|f| (f.abs, f.rel)).collect(),
            rels: frames.iter().map(|f| f.rel).collect(),
            is_video,
        }
    }

    /// [`FrameMatcher::by_suffix`], built the first time it is asked for.
    fn by_suffix(&self) -> &HashMap<String, Option<u64>> {
        self.by_suffix.get_or_init(|| {
            let mut by_suffix: HashMap<String, Option<u64>> = HashMap::new();
            for (stem, rel) in &self.stems {
                let mut rest = stem.as_str();
                while let Some(i) = rest.find('/') {
                    rest = &rest[i + 1..];
                    if rest.is_empty() {
                        break;
                    }
                    by_suffix
                        .entry(rest.to_owned())
                        .and_modify(|v| {
                            if *v != Some(*rel) {
                                *v = None
                            }
                        })
                        .or_insert(Some(*rel));
                }
            }
            by_suffix
        })
    }

    /// The task-relative frame of absolute frame `abs`, if the dataset has it.
    pub fn by_abs(&self, abs: u64) -> Option<u64> {
        self.by_abs.get(&abs).copied()
    }

    /// CVAT's `match_frame`: the path (its extension stripped when `has_ext`), then the path
    /// under `root_hint`.
    pub fn match_frame(&self, path: &str, root_hint: Option<&str>, has_ext: bool) -> Option<u64> {
        let path = if has_ext { split_ext(path).0 } else { path };
        if let Some(&f) = self.by_stem.get(path) {
            return Some(f);
        }
        match root_hint {
            Some(h) if !h.is_empty() && !path.starts_with(h) => {
                let joined = if path.starts_with('/') {
                    path.to_owned()
                } else if h.ends_with('/') {
                    format!("{h}{path}")
                } else {
                    format!("{h}/{path}")
                };
                self.by_stem.get(&joined).copied()
            }
            _ => None,
        }
    }

    /// CVAT's `find_dataset_root`: the item id with the most path components is suffix-matched
    /// against the task paths; the unmatched prefix of that task path is the hint.
    pub fn root_hint<'s>(&self, ids: impl IntoIterator<Item = &'s str>) -> Option<String> {
        let mut longest: Option<(&str, usize)> = None;
        for id in ids {
            let n = parts(id).len();
            if longest.is_none_or(|(_, m)| n > m) {
                longest = Some((id, n));
            }
        }
        let (longest, _) = longest?;
        let want = parts(longest);
        let rel = self.stems.iter().find_map(|(stem, rel)| {
            let have = parts(stem);
            (have.len() >= want.len() && have[have.len() - want.len()..] == want[..])
                .then_some(*rel)
        })?;
        let frame = self.frames.iter().find(|f| f.rel == rel)?;
        let longest_match = dirname(&frame.name);
        let cut = dirname(longest).len();
        let mut prefix = if cut == 0 {
            longest_match
        } else {
            longest_match
                .len()
                .checked_sub(cut)
                .and_then(|k| longest_match.get(..k))
                .unwrap_or("")
        };
        if let Some(p) = prefix.strip_suffix('/') {
            prefix = p;
        }
        Some(prefix.to_owned())
    }

    /// The task frame of an item named on `line` of the list file `list` (YOLO's and VOC's
    /// subset lists): no match, or a frame the dataset (a job) does not have, is an error
    /// naming the list and the line.
    pub fn listed_frame<'d>(
        &self,
        ds: &'d crate::formats::TaskDataset<'_>,
        item: &Item<'_>,
        root: Root<'_>,
        list: &str,
        line: usize,
    ) -> Result<&'d DatasetFrame, crate::formats::FormatError> {
        let at = || format!("line {line}");
        let (rel, _) = self.match_item(item, root).ok_or_else(|| {
            crate::formats::FormatError::invalid(
                list,
                at(),
                format!("could not match item id '{}' with any task frame", item.id),
            )
        })?;
        ds.frame_index(rel)
            .map(|i| &ds.frames[i])
            .ok_or_else(|| crate::formats::FormatError::invalid(list, at(), "no such frame"))
    }

    /// CVAT's `match_dm_item`: the task-relative frame of `item`, and the strategy that found it.
    pub fn match_item(&self, item: &Item<'_>, root: Root<'_>) -> Option<(u64, Strategy)> {
        let hint = match root {
            Root::Hint(h) => h,
            Root::Unknown => None,
        };
        let by_path = |path: &str, has_ext| {
            let stem = if has_ext { split_ext(path).0 } else { path };
            if let Some(&f) = self.by_stem.get(stem) {
                return Some((f, Strategy::Path));
            }
            match root {
                Root::Hint(_) => self
                    .match_frame(stem, hint, false)
                    .map(|f| (f, Strategy::UnderRoot)),
                Root::Unknown => self
                    .by_suffix()
                    .get(stem)
                    .copied()
                    .flatten()
                    .map(|f| (f, Strategy::UniqueSuffix)),
            }
        };
        let found = item
            .image_ext
            .and_then(|ext| by_path(&format!("{}{ext}", item.id), true))
            .or_else(|| by_path(item.id, false));
        if found.is_some() {
            return found;
        }
        let n = match item.frame {
            FrameAttr::Absent => py_int_str(item.id),
            FrameAttr::Value(n) => n,
        };
        if let Some(n) = n {
            // A number that is no task frame fails; it does not fall through (as in CVAT).
            let rel = u64::try_from(n).ok()?;
            return self
                .rels
                .contains(&rel)
                .then_some((rel, Strategy::FrameNumber));
        }
        if self.is_video {
            let n = basename(item.id)
                .get("frame_".len()..)
                .and_then(py_int_str)
                .and_then(|n| u64::try_from(n).ok())?;
            return self
                .by_abs
                .get(&n)
                .map(|&rel| (rel, Strategy::VideoFrameName));
        }
        None
    }
}

/// Python's `int(s)` for strings of decimal digits (surrounding whitespace and a sign allowed);
/// `None` where `int()` would raise (and for the `_` separators Python accepts).
pub fn py_int_str(s: &str) -> Option<i64> {
    let t = s.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(rel: u64, abs: u64, name: &str) -> DatasetFrame {
        DatasetFrame {
            rel,
            abs,
            name: name.into(),
            width: 1,
            height: 1,
        }
    }

    const PATHS: [&str; 7] = [
        "a.jpg",
        "a/a.jpg",
        "a/b.jpg",
        "b/a.jpg",
        "b/c.jpg",
        "a/b/c.jpg",
        "a/b/d.jpg",
    ];

    fn task() -> Vec<DatasetFrame> {
        PATHS
            .iter()
            .enumerate()
            .map(|(i, n)| frame(i as u64, i as u64, n))
            .collect()
    }

    fn item(id: &str) -> Item<'_> {
        Item {
            id,
            image_ext: None,
            frame: FrameAttr::Absent,
        }
    }

    #[test]
    fn match_frame_follows_cvat_vectors() {
        // spec §6, FrameMatchingTest.
        let fr = task();
        let m = FrameMatcher::new(&fr, false);
        let name_of = |f: Option<u64>| f.map(|f| PATHS[f as usize]);
        assert_eq!(name_of(m.match_frame("z.jpg", Some(""), true)), None);
        assert_eq!(name_of(m.match_frame("z/a.jpg", Some(""), true)), None);
        assert_eq!(
            name_of(m.match_frame("d.jpg", Some("a/b"), true)),
            Some("a/b/d.jpg")
        );
        assert_eq!(
            name_of(m.match_frame("b/d.jpg", Some("a"), true)),
            Some("a/b/d.jpg")
        );
        for n in PATHS {
            assert_eq!(name_of(m.match_frame(n, None, true)), Some(n));
        }
    }

    #[test]
    fn root_hint_follows_cvat_vectors() {
        let root = |task: &[&str], ids: &[&str]| {
            let fr: Vec<DatasetFrame> = task
                .iter()
                .enumerate()
                .map(|(i, n)| frame(i as u64, i as u64, n))
                .collect();
            FrameMatcher::new(&fr, false).root_hint(ids.iter().copied())
        };
        assert_eq!(
            root(&["a.jpg", "b/c/a.jpg"], &["a", "b/c/a"]).as_deref(),
            Some("")
        );
        assert_eq!(
            root(&["b/a.jpg", "b/c/a.jpg"], &["a", "c/a"]).as_deref(),
            Some("b")
        );
        assert_eq!(root(&["b/c/a.jpg"], &["a"]).as_deref(), Some("b/c"));
        assert_eq!(root(&["a.jpg"], &["z"]), None);
    }

    #[test]
    fn strategies_in_order() {
        let fr = task();
        let m = FrameMatcher::new(&fr, false);
        let rel = |p: &str| PATHS.iter().position(|x| *x == p).unwrap() as u64;
        let with_ext = Item {
            image_ext: Some(".png"),
            ..item("a/b")
        };
        assert_eq!(
            m.match_item(&with_ext, Root::Hint(None)),
            Some((rel("a/b.jpg"), Strategy::Path))
        );
        assert_eq!(
            m.match_item(&item("d"), Root::Hint(Some("a/b"))),
            Some((rel("a/b/d.jpg"), Strategy::UnderRoot))
        );
        // Streamed: the unambiguous tail matches, an ambiguous one falls to the frame number.
        assert_eq!(
            m.match_item(&item("b/d"), Root::Unknown),
            Some((rel("a/b/d.jpg"), Strategy::UniqueSuffix))
        );
        assert_eq!(m.match_item(&item("c"), Root::Unknown), None);
        let numbered = Item {
            frame: FrameAttr::Value(Some(4)),
            ..item("c")
        };
        assert_eq!(
            m.match_item(&numbered, Root::Unknown),
            Some((4, Strategy::FrameNumber))
        );
        assert_eq!(
            m.match_item(&item("3"), Root::Hint(None)),
            Some((3, Strategy::FrameNumber))
        );
        // A frame attribute that is not a number does not fall back to the id.
        let bad = Item {
            frame: FrameAttr::Value(None),
            ..item("3")
        };
        assert_eq!(m.match_item(&bad, Root::Hint(None)), None);
        assert_eq!(m.match_item(&item("99"), Root::Hint(None)), None);
        // Not a video task: frame names are not read.
        assert_eq!(m.match_item(&item("frame_000001"), Root::Hint(None)), None);
    }

    #[test]
    fn video_frame_names_are_absolute_frames() {
        // Start 10, step 3: rel 1..3 are abs 13, 16, 19.
        let fr: Vec<DatasetFrame> = (0..4)
            .map(|r| frame(r, 10 + 3 * r, &format!("frame_{:06}.PNG", 10 + 3 * r)))
            .collect();
        let m = FrameMatcher::new(&fr, true);
        assert_eq!(
            m.match_item(&item("frame_000013"), Root::Hint(None)),
            Some((1, Strategy::Path))
        );
        assert_eq!(
            m.match_item(&item("images/frame_000019"), Root::Unknown),
            Some((3, Strategy::VideoFrameName))
        );
        assert_eq!(m.match_item(&item("sub/frame_000011"), Root::Unknown), None);
    }

    #[test]
    fn py_int_str_is_pythons_int_for_digits() {
        assert_eq!(py_int_str(" +12 "), Some(12));
        assert_eq!(py_int_str("-3"), Some(-3));
        assert_eq!(py_int_str("1.0"), None);
        assert_eq!(py_int_str(""), None);
    }
}
