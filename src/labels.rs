//! Labels as CVAT defines them (spec `client-api.md` §6.2, §17): name, color, type, attributes,
//! skeleton sublabels and SVG. Validation of what clients send (the JSON served back is built
//! from the stored rows, in `store::labels`).

use serde_json::{json, Map, Value};

/// Label types CVAT knows.
pub const LABEL_TYPES: &[&str] = &[
    "any",
    "rectangle",
    "polygon",
    "polyline",
    "points",
    "ellipse",
    "cuboid",
    "mask",
    "tag",
    "skeleton",
];
/// Attribute input types CVAT knows.
pub const INPUT_TYPES: &[&str] = &["checkbox", "radio", "number", "text", "select"];

/// Colors given to labels sent without one (CVAT assigns from a palette too).
const PALETTE: &[&str] = &[
    "#fa3253", "#3d3df5", "#33ddff", "#fafa37", "#83e070", "#ff6a4d", "#b83df5", "#ff355e",
    "#34d1b7", "#ddff33", "#24b353", "#b8860b", "#ff007c", "#aaf0d1", "#fa7dbb", "#66ff66",
];

/// A skeleton's SVG as CVAT stores it: each element's `data-label-name="NAME"` becomes
/// `data-label-id="ID"` once its sublabel has an id (CVAT's web UI finds an element's sublabel
/// by that id; the formats read either form).
pub fn svg_with_label_ids(svg: &str, sublabels: &[(String, i64)]) -> String {
    let mut out = svg.to_owned();
    for (name, id) in sublabels {
        let attr_name = format!("data-label-name=\"{}\"", escape_attr(name));
        out = out.replace(&attr_name, &format!("data-label-id=\"{id}\""));
    }
    out
}

/// `"`, `&`, `<` as an SVG attribute value writes them.
fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
}

/// A validated label definition: the stored JSON (no ids) and its attributes and sublabels.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSpec {
    /// `{"name","color","type","svg"}` plus any extra keys the client sent that we keep.
    pub info: Value,
    /// Attribute JSON with their ids when they came with one (updates).
    pub attributes: Vec<(Option<i64>, Value)>,
    pub sublabels: Vec<LabelSpec>,
    /// The id, when a PATCH refers to an existing label.
    pub id: Option<i64>,
    /// `"deleted": true` in a PATCH.
    pub deleted: bool,
}

fn err(msg: String) -> String {
    msg
}

/// Validates one attribute, filling CVAT's defaults (`mutable` false, `default_value` the first
/// value, or "false" for checkboxes).
fn attribute(a: &Value, label: &str) -> Result<(Option<i64>, Value), String> {
    let name = a
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| err(format!("label '{label}': every attribute needs a 'name'")))?;
    if name.chars().count() > 64 {
        return Err(format!(
            "label '{label}': attribute name '{name}' must be at most 64 characters"
        ));
    }
    let input_type = a
        .get("input_type")
        .and_then(Value::as_str)
        .unwrap_or("select");
    if !INPUT_TYPES.contains(&input_type) {
        return Err(format!("label '{label}', attribute '{name}': unknown input_type '{input_type}' (expected one of {})", INPUT_TYPES.join(", ")));
    }
    let values: Vec<String> = match a.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(v)) => v
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                _ => Err(format!(
                    "label '{label}', attribute '{name}': values must be strings"
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(format!(
                "label '{label}', attribute '{name}': 'values' must be a list"
            ))
        }
    };
    // CVAT stores the values joined by newlines in a 4096-character column.
    if values.iter().map(|v| v.chars().count() + 1).sum::<usize>() > 4097 {
        return Err(format!(
            "label '{label}', attribute '{name}': the values are longer than 4096 characters in all"
        ));
    }
    match input_type {
        "select" | "radio" if values.is_empty() => {
            return Err(format!(
                "label '{label}', attribute '{name}': a {input_type} attribute needs values"
            ))
        }
        "number" => {
            let nums: Vec<f64> = values.iter().filter_map(|v| v.parse().ok()).collect();
            if values.len() != 3 || nums.len() != 3 || nums[0] > nums[1] || nums[2] <= 0.0 {
                return Err(format!("label '{label}', attribute '{name}': a number attribute needs values [min, max, step] with min <= max and step > 0"));
            }
        }
        "checkbox" if values.iter().any(|v| v != "true" && v != "false") => {
            return Err(format!("label '{label}', attribute '{name}': checkbox values must be \"true\" or \"false\""));
        }
        _ => {}
    }
    let default_value = match a.get("default_value").and_then(Value::as_str) {
        Some(d) => {
            if matches!(input_type, "select" | "radio") && !values.iter().any(|v| v == d) {
                return Err(format!("label '{label}', attribute '{name}': default value '{d}' is not one of the values"));
            }
            if d.chars().count() > 128 {
                return Err(format!("label '{label}', attribute '{name}': the default value is longer than 128 characters"));
            }
            d.to_owned()
        }
        None => match input_type {
            "checkbox" => values.first().cloned().unwrap_or_else(|| "false".into()),
            _ => values.first().cloned().unwrap_or_default(),
        },
    };
    let values = if values.is_empty() && input_type == "checkbox" {
        vec!["false".to_owned()]
    } else {
        values
    };
    let mutable = a.get("mutable").and_then(Value::as_bool).unwrap_or(false);
    Ok((
        a.get("id").and_then(Value::as_i64),
        json!({"name": name, "mutable": mutable, "input_type": input_type, "default_value": default_value, "values": values}),
    ))
}

/// Validates label definitions as sent in a task create or update; `index` picks default colors.
pub fn parse_labels(list: &Value) -> Result<Vec<LabelSpec>, String> {
    let arr = list
        .as_array()
        .ok_or_else(|| "'labels' must be a list".to_owned())?;
    let mut names = std::collections::HashSet::new();
    arr.iter()
        .enumerate()
        .map(|(i, l)| {
            let spec = parse_label(l, i, false)?;
            let name = spec.info["name"].as_str().unwrap_or_default().to_owned();
            if !spec.deleted && !names.insert(name.clone()) {
                return Err(format!(
                    "label names must be unique: '{name}' appears twice"
                ));
            }
            Ok(spec)
        })
        .collect()
}

fn parse_label(l: &Value, index: usize, is_sublabel: bool) -> Result<LabelSpec, String> {
    let obj = l
        .as_object()
        .ok_or_else(|| "every label must be an object".to_owned())?;
    let id = obj.get("id").and_then(Value::as_i64);
    let deleted = obj.get("deleted").and_then(Value::as_bool).unwrap_or(false);
    let name = obj.get("name").and_then(Value::as_str).unwrap_or_default();
    if (name.is_empty() && id.is_none()) || name.chars().count() > 64 {
        return Err(format!("label name '{name}' must be 1 to 64 characters"));
    }
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or("any");
    if !LABEL_TYPES.contains(&kind) {
        return Err(format!(
            "label '{name}': unknown type '{kind}' (expected one of {})",
            LABEL_TYPES.join(", ")
        ));
    }
    if is_sublabel && kind == "skeleton" {
        return Err(format!(
            "label '{name}': a skeleton cannot contain a skeleton"
        ));
    }
    let color = match obj.get("color").and_then(Value::as_str) {
        Some(c)
            if c.len() == 7
                && c.starts_with('#')
                && c[1..].chars().all(|x| x.is_ascii_hexdigit()) =>
        {
            c.to_ascii_lowercase()
        }
        Some("") | None => PALETTE[index % PALETTE.len()].to_owned(),
        Some(c) => {
            return Err(format!(
                "label '{name}': color '{c}' must look like #rrggbb"
            ))
        }
    };
    let mut attr_names = std::collections::HashSet::new();
    let attributes = obj
        .get("attributes")
        .and_then(Value::as_array)
        .map(|v| v.as_slice())
        .unwrap_or(&[])
        .iter()
        .map(|a| {
            let parsed = attribute(a, name)?;
            let an = parsed.1["name"].as_str().unwrap_or_default().to_owned();
            if !attr_names.insert(an.clone()) {
                return Err(format!(
                    "label '{name}': attribute names must be unique: '{an}'"
                ));
            }
            Ok(parsed)
        })
        .collect::<Result<Vec<_>, String>>()?;
    let sublabels = match obj.get("sublabels").and_then(Value::as_array) {
        Some(s) if !s.is_empty() => {
            if kind != "skeleton" {
                return Err(format!(
                    "label '{name}': only skeleton labels have sublabels"
                ));
            }
            s.iter()
                .enumerate()
                .map(|(i, sl)| parse_label(sl, index + i + 1, true))
                .collect::<Result<Vec<_>, _>>()?
        }
        _ => {
            if kind == "skeleton" && !deleted && id.is_none() {
                return Err(format!("label '{name}': a skeleton needs sublabels"));
            }
            Vec::new()
        }
    };
    let svg = obj
        .get("svg")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut info = Map::new();
    info.insert("name".into(), name.into());
    info.insert("color".into(), color.into());
    info.insert("type".into(), kind.into());
    info.insert("svg".into(), svg.into());
    Ok(LabelSpec {
        info: Value::Object(info),
        attributes,
        sublabels,
        id,
        deleted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skeleton_svg_gets_sublabel_ids() {
        let svg = r#"<line data-type="edge" data-node-from="1" data-node-to="2"></line><circle data-node-id="1" data-label-name="head"></circle><circle data-node-id="2" data-label-name="a&amp;b"></circle>"#;
        let got = svg_with_label_ids(svg, &[("head".into(), 7), ("a&b".into(), 8)]);
        assert!(
            got.contains(r#"data-node-id="1" data-label-id="7""#),
            "{got}"
        );
        assert!(
            got.contains(r#"data-node-id="2" data-label-id="8""#),
            "{got}"
        );
        assert!(!got.contains("data-label-name"), "{got}");
    }

    #[test]
    fn labels_get_defaults_and_bad_ones_are_refused() {
        let l = parse_labels(&json!([
            {"name": "car", "color": "#FF0000", "attributes": [{"name": "color", "input_type": "select", "values": ["red", "blue"]}]},
            {"name": "person", "type": "rectangle"},
            {"name": "body", "type": "skeleton", "sublabels": [{"name": "head", "type": "points"}], "svg": "<circle/>"}
        ]))
        .unwrap();
        assert_eq!(l[0].info["color"], "#ff0000");
        assert_eq!(l[0].attributes[0].1["default_value"], "red");
        assert_eq!(l[0].attributes[0].1["mutable"], false);
        assert_eq!(l[1].info["color"], PALETTE[1]);
        assert_eq!(l[2].sublabels.len(), 1);
        for (bad, why) in [
            (json!([{"name": "a"}, {"name": "a"}]), "unique"),
            (json!([{"name": "a", "type": "circle"}]), "unknown type"),
            (
                json!([{"name": "a", "attributes": [{"name": "x", "input_type": "select"}]}]),
                "needs values",
            ),
            (
                json!([{"name": "a", "attributes": [{"name": "x", "input_type": "number", "values": ["5", "1", "1"]}]}]),
                "min <= max",
            ),
            (
                json!([{"name": "a", "attributes": [{"name": "x", "input_type": "radio", "values": ["p"], "default_value": "q"}]}]),
                "not one of",
            ),
            (json!([{"name": "a", "color": "red"}]), "#rrggbb"),
            (
                json!([{"name": "s", "type": "skeleton"}]),
                "needs sublabels",
            ),
            (json!([{"name": ""}]), "1 to 64"),
            (json!([{"name": "x".repeat(65)}]), "1 to 64"),
            (
                json!([{"name": "a", "attributes": [{"name": "n".repeat(65), "input_type": "text"}]}]),
                "at most 64",
            ),
            (
                json!([{"name": "a", "attributes": [{"name": "x", "input_type": "select", "values": vec!["v".repeat(100); 50]}]}]),
                "4096",
            ),
            (
                json!([{"name": "a", "attributes": [{"name": "x", "input_type": "text", "default_value": "d".repeat(129)}]}]),
                "128",
            ),
        ] {
            let e = parse_labels(&bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
