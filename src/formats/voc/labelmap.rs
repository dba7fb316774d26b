//! VOC label maps (`labelmap.txt`, `label:r,g,b:parts:actions`, spec §7) as Datumaro's
//! `VocLabelMap` reads and writes them, and the categories (`make_voc_categories`) they give:
//! label names with parts appended, and the colour of each class index.

use std::collections::HashMap;

use crate::annotations::LabelIndex;
use crate::formats::kit::mask::voc_color;
use crate::formats::FormatError;

pub(super) const FILE: &str = "labelmap.txt";
pub(super) const BACKGROUND: &str = "background";

/// One label of a label map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub name: String,
    pub color: Option<[u8; 3]>,
    pub parts: Vec<String>,
    pub actions: Vec<String>,
}

impl Entry {
    fn new(name: &str, color: Option<[u8; 3]>) -> Entry {
        Entry {
            name: name.to_owned(),
            color,
            parts: Vec::new(),
            actions: Vec::new(),
        }
    }
}

/// A label map, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct LabelMap {
    pub entries: Vec<Entry>,
}

/// What a label map gives a dataset: label names by index (the map's labels, then their parts,
/// sorted) and colours by index.
#[derive(Debug, Clone)]
pub(super) struct Categories {
    pub names: Vec<String>,
    /// `colors[i]`: the colour of class index `i`, if it has one.
    pub colors: Vec<Option<[u8; 3]>>,
    /// Actions (attribute names) per label index.
    pub actions: Vec<Vec<String>>,
}

impl Categories {
    /// The index of label `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The 256-colour palette of the class masks (an index without a colour is white, as
    /// Datumaro's `paint_mask` paints it).
    pub fn palette(&self) -> Vec<[u8; 3]> {
        (0..256)
            .map(|i| self.colors.get(i).copied().flatten().unwrap_or([255; 3]))
            .collect()
    }

    /// Colour → class index (`MaskCategories.inverse_colormap`: a colour used twice is the
    /// last index).
    pub fn inverse(&self) -> HashMap<[u8; 3], usize> {
        self.colors
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.map(|c| (c, i)))
            .collect()
    }
}

/// The standard VOC labels by class index (Datumaro's `VocLabel`).
const VOC_LABELS: [(&str, u8); 22] = [
    ("background", 0),
    ("aeroplane", 1),
    ("bicycle", 2),
    ("bird", 3),
    ("boat", 4),
    ("bottle", 5),
    ("bus", 6),
    ("car", 7),
    ("cat", 8),
    ("chair", 9),
    ("cow", 10),
    ("diningtable", 11),
    ("dog", 12),
    ("horse", 13),
    ("motorbike", 14),
    ("person", 15),
    ("pottedplant", 16),
    ("sheep", 17),
    ("sofa", 18),
    ("train", 19),
    ("tvmonitor", 20),
    ("ignored", 255),
];

/// `#rrggbb` → RGB (black when it is not a colour).
fn hex_rgb(s: &str) -> [u8; 3] {
    let h = s.trim().trim_start_matches('#');
    let c = |i: usize| {
        h.get(i..i + 2)
            .and_then(|x| u8::from_str_radix(x, 16).ok())
            .unwrap_or(0)
    };
    if h.len() == 6 {
        [c(0), c(2), c(4)]
    } else {
        [0; 3]
    }
}

impl LabelMap {
    /// Datumaro's default VOC label map (`VocLabelMap.make_default`), used when a dataset has
    /// no `labelmap.txt`.
    pub fn default_voc() -> LabelMap {
        let mut entries: Vec<Entry> = VOC_LABELS
            .iter()
            .map(|&(n, i)| Entry::new(n, Some(voc_color(i))))
            .collect();
        let person = entries.iter_mut().find(|e| e.name == "person");
        let person = person.expect("person is a VOC label");
        person.parts = ["head", "hand", "foot"].map(String::from).to_vec();
        person.actions = [
            "other",
            "jumping",
            "phoning",
            "playinginstrument",
            "reading",
            "ridingbike",
            "ridinghorse",
            "running",
            "takingphoto",
            "usingcomputer",
            "walking",
        ]
        .map(String::from)
        .to_vec();
        LabelMap { entries }
    }

    /// The task's labels (id order, names once) without colours, as CVAT synthesises a missing
    /// `labelmap.txt` for a VOC import (`name:::`).
    pub fn synthesised(labels: &LabelIndex) -> LabelMap {
        let mut entries: Vec<Entry> = Vec::new();
        for l in sorted_labels(labels) {
            if !entries.iter().any(|e| e.name == l.name) {
                entries.push(Entry::new(&l.name, None));
            }
        }
        LabelMap { entries }
    }

    /// CVAT's `make_colormap(task)` as the Segmentation mask export passes it to Datumaro:
    /// every label with its colour, `background` (black) first when the task has none, then
    /// sorted by name (the converter sorts a dict label map).
    pub fn task_colormap(labels: &LabelIndex) -> LabelMap {
        let mut entries: Vec<Entry> = Vec::new();
        if !labels.labels.iter().any(|l| l.name == BACKGROUND) {
            entries.push(Entry::new(BACKGROUND, Some([0; 3])));
        }
        for l in sorted_labels(labels) {
            let e = Entry::new(&l.name, Some(hex_rgb(&l.color)));
            // A dict: a later label of the same name replaces the earlier one in place.
            match entries.iter_mut().find(|x| x.name == l.name) {
                Some(x) => *x = e,
                None => entries.push(e),
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let mut m = LabelMap { entries };
        m.find_or_create_background();
        m
    }

    /// The VOC export's `label_map="source"`: the task's labels in category order without
    /// colours, `background` first unless a label has that name; colours are then assigned
    /// by index ([`categories`](Self::categories)) and written back.
    pub fn from_source(labels: &LabelIndex) -> LabelMap {
        let mut m = Self::synthesised(labels);
        m.find_or_create_background();
        let cats = m.categories();
        for (i, e) in m.entries.iter_mut().enumerate() {
            e.color = cats.colors[i];
        }
        m
    }

    /// `find_or_create_background_label`: the label coloured black, else one named
    /// `background`, else a new `background` (black if the map has colours) put first.
    /// Returns its name.
    pub fn find_or_create_background(&mut self) -> String {
        if let Some(e) = self.entries.iter().find(|e| e.color == Some([0; 3])) {
            return e.name.clone();
        }
        if self.entries.iter().any(|e| e.name == BACKGROUND) {
            return BACKGROUND.to_owned();
        }
        let color = self.has_colors().then_some([0; 3]);
        self.entries.insert(0, Entry::new(BACKGROUND, color));
        BACKGROUND.to_owned()
    }

    pub fn has_colors(&self) -> bool {
        self.entries.iter().any(|e| e.color.is_some())
    }

    /// `make_voc_categories`.
    pub fn categories(&self) -> Categories {
        let mut names: Vec<String> = self.entries.iter().map(|e| e.name.clone()).collect();
        let mut actions: Vec<Vec<String>> =
            self.entries.iter().map(|e| e.actions.clone()).collect();
        let mut parts: Vec<&String> = self.entries.iter().flat_map(|e| &e.parts).collect();
        parts.sort();
        parts.dedup();
        for p in parts {
            // `LabelCategories.add` of a name already there is an error in Datumaro; a part
            // named like a label is that label.
            if !names.contains(p) {
                names.push(p.clone());
                actions.push(Vec::new());
            }
        }
        let mut colors = vec![None; names.len()];
        if self.has_colors() {
            for e in &self.entries {
                if let (Some(c), Some(i)) = (e.color, names.iter().position(|n| *n == e.name)) {
                    colors[i] = Some(c);
                }
            }
        } else {
            for (i, c) in colors.iter_mut().enumerate().take(self.entries.len()) {
                *c = Some(voc_color(i as u8));
            }
        }
        Categories {
            names,
            colors,
            actions,
        }
    }

    /// `VocLabelMap.dump_to_file`.
    pub fn write(&self) -> String {
        let mut s = String::from("# label:color_rgb:parts:actions\n");
        for e in &self.entries {
            s.push_str(&e.name);
            s.push(':');
            if let Some([r, g, b]) = e.color {
                s.push_str(&format!("{r},{g},{b}"));
            }
            s.push(':');
            s.push_str(&e.parts.join(","));
            s.push(':');
            s.push_str(&e.actions.join(","));
            s.push('\n');
        }
        s
    }

    /// `VocLabelMap.parse_from_file`: errors name `file` and the line.
    pub fn parse(text: &str, file: &str) -> Result<LabelMap, FormatError> {
        let mut entries: Vec<Entry> = Vec::new();
        for (k, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |r: String| FormatError::invalid(file, format!("line {}", k + 1), r);
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() != 4 {
                return Err(bad(format!(
                    "{} ':'-separated fields, expected 4 (label:r,g,b:parts:actions)",
                    fields.len()
                )));
            }
            let name = fields[0];
            if entries.iter().any(|e| e.name == name) {
                return Err(bad(format!("label '{name}' is already defined")));
            }
            let color = if fields[1].is_empty() {
                None
            } else {
                let c: Vec<&str> = fields[1].split(',').collect();
                let parsed: Option<Vec<u8>> = c.iter().map(|v| v.trim().parse().ok()).collect();
                match parsed {
                    Some(v) if v.len() == 3 => Some([v[0], v[1], v[2]]),
                    _ => {
                        return Err(bad(format!(
                            "label '{name}' has the colour '{}', expected 'r,g,b' (0 to 255)",
                            fields[1]
                        )))
                    }
                }
            };
            let list = |s: &str| -> Vec<String> {
                if s.is_empty() {
                    Vec::new()
                } else {
                    s.split(',').map(|p| p.trim().to_owned()).collect()
                }
            };
            entries.push(Entry {
                name: name.to_owned(),
                color,
                parts: list(fields[2]),
                actions: list(fields[3]),
            });
        }
        Ok(LabelMap { entries })
    }
}

/// The task's labels in category (id) order.
fn sorted_labels(labels: &LabelIndex) -> Vec<&crate::annotations::LabelInfo> {
    let mut v: Vec<_> = labels.labels.iter().collect();
    v.sort_by_key(|l| l.id);
    v
}
