//! Skeleton layouts from a label's SVG: sub-label order and joints, as CVAT's Datumaro
//! bindings read them for the `points` categories.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::annotations::{LabelIndex, LabelInfo};

// ------------------------------------------------------------------------------------------------
// Skeleton SVG

fn svg_tag_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"(?is)<\s*(circle|line)\b([^>]*)>").expect("regex"))
}

fn svg_attr_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r#"([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)')"#)
            .expect("regex")
    })
}

fn xml_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(j) = rest.find(';') else { break };
        let ent = &rest[1..j];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[j + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A skeleton's point layout: sub-label ids in Datumaro order and the joints.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SkeletonLayout {
    pub(crate) sublabels: Vec<i64>,
    pub(crate) joints: Vec<[i64; 2]>,
}

/// Parses the skeleton SVG like CVAT's `_load_categories`: circles give the sub-labels in order
/// (`data-label-name`, or `data-label-id` as stored by CVAT), lines the joints
/// (`data-node-from`, `data-node-to`; sorted, as a set). Sub-labels the SVG does not name are
/// appended.
pub(crate) fn skeleton_layout(labels: &LabelIndex, skeleton: &LabelInfo) -> SkeletonLayout {
    let mut children: Vec<&LabelInfo> = labels.children(skeleton.id).collect();
    children.sort_by_key(|l| l.id);
    let mut out = SkeletonLayout::default();
    for cap in svg_tag_re().captures_iter(&skeleton.svg) {
        let tag = cap[1].to_ascii_lowercase();
        let attrs: HashMap<&str, String> = svg_attr_re()
            .captures_iter(&cap[2])
            .map(|a| {
                let v = a.get(2).or_else(|| a.get(3)).map_or("", |m| m.as_str());
                (a.get(1).map_or("", |m| m.as_str()), xml_unescape(v))
            })
            .collect();
        if tag == "line" {
            let node = |k: &str| attrs.get(k).and_then(|v| v.trim().parse::<i64>().ok());
            if let (Some(a), Some(b)) = (node("data-node-from"), node("data-node-to")) {
                out.joints.push([a, b]);
            }
        } else {
            let found = if let Some(name) = attrs.get("data-label-name") {
                children.iter().find(|c| &c.name == name)
            } else if let Some(id) = attrs
                .get("data-label-id")
                .and_then(|v| v.trim().parse::<i64>().ok())
            {
                children.iter().find(|c| c.id == id)
            } else {
                None
            };
            if let Some(c) = found {
                if !out.sublabels.contains(&c.id) {
                    out.sublabels.push(c.id);
                }
            }
        }
    }
    for c in children {
        if !out.sublabels.contains(&c.id) {
            out.sublabels.push(c.id);
        }
    }
    // Datumaro keeps joints as a set; sorted, they come out as its writer orders them.
    out.joints.sort();
    out.joints.dedup();
    out
}
