//! Contiguous class numbers for formats that number their classes (YOLO's class ids, COCO's
//! category ids, mask PNG indices): the task's top-level labels that can carry shapes, in the
//! task's label order. Skeleton sub-labels (points of a skeleton, not classes of their own) and
//! tag-only labels (no geometry to write) are never counted.

use std::collections::HashMap;

use crate::annotations::{LabelIndex, LabelInfo};

/// Class number ↔ label id, numbered from a format's first class number.
#[derive(Debug, Clone)]
pub struct LabelMap<'l> {
    classes: Vec<&'l LabelInfo>,
    by_id: HashMap<i64, usize>,
    first: u64,
}

/// Whether a label is a class: top level (not a skeleton's point) and not for tags only.
pub fn is_class(label: &LabelInfo) -> bool {
    label.parent.is_none() && label.kind != "tag"
}

impl<'l> LabelMap<'l> {
    /// The classes of `labels`, numbered `first`, `first + 1`, … (YOLO: 0; COCO: 1).
    pub fn new(labels: &'l LabelIndex, first: u64) -> Self {
        Self::with(labels, first, is_class)
    }

    /// The labels of `labels` that `keep` chooses, numbered `first`, `first + 1`, … in the
    /// task's order (Ultralytics YOLO Pose: the skeletons only).
    pub fn with(labels: &'l LabelIndex, first: u64, keep: impl Fn(&LabelInfo) -> bool) -> Self {
        let classes: Vec<&LabelInfo> = labels.labels.iter().filter(|l| keep(l)).collect();
        let by_id = classes.iter().enumerate().map(|(i, l)| (l.id, i)).collect();
        LabelMap {
            classes,
            by_id,
            first,
        }
    }

    /// How many classes there are.
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// The class number of a label id (`None` for sub-labels, tag-only and unknown labels).
    pub fn class_of(&self, label_id: i64) -> Option<u64> {
        self.by_id.get(&label_id).map(|&i| self.first + i as u64)
    }

    /// The label of a class number.
    pub fn label(&self, class: u64) -> Option<&'l LabelInfo> {
        let i = usize::try_from(class.checked_sub(self.first)?).ok()?;
        self.classes.get(i).copied()
    }

    /// The classes in order, with their numbers.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &'l LabelInfo)> + '_ {
        self.classes
            .iter()
            .enumerate()
            .map(|(i, l)| (self.first + i as u64, *l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(id: i64, name: &str, kind: &str, parent: Option<i64>) -> LabelInfo {
        LabelInfo {
            id,
            name: name.into(),
            kind: kind.into(),
            color: String::new(),
            svg: String::new(),
            parent,
            attributes: vec![],
        }
    }

    #[test]
    fn sublabels_and_tag_labels_are_not_classes() {
        let labels = LabelIndex::from_labels(vec![
            label(7, "car", "rectangle", None),
            label(3, "weather", "tag", None),
            label(9, "person", "skeleton", None),
            label(10, "head", "points", Some(9)),
            label(4, "any", "any", None),
        ]);
        let m = LabelMap::new(&labels, 0);
        assert_eq!(m.len(), 3);
        assert_eq!(
            m.iter().map(|(c, l)| (c, l.id)).collect::<Vec<_>>(),
            vec![(0, 7), (1, 9), (2, 4)]
        );
        assert_eq!(m.class_of(10), None);
        assert_eq!(m.class_of(3), None);
        assert_eq!(m.class_of(99), None);
        let coco = LabelMap::new(&labels, 1);
        assert_eq!(coco.class_of(4), Some(3));
        assert_eq!(coco.label(1).map(|l| l.id), Some(7));
        assert_eq!(coco.label(0).map(|l| l.id), None);
        assert_eq!(coco.label(4).map(|l| l.id), None);
    }
}
