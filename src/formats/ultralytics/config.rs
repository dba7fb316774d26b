//! `data.yaml`: written by hand byte for byte as Datumaro's `yaml.dump` of its config dict writes
//! it (PyYAML's defaults: keys sorted, block style, plain scalars unless they would read back as
//! another type, non-ASCII escaped in double quotes), and read with `yaml-rust2` into what the
//! importer needs (class names, subset sources, `kpt_shape`).

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;
use yaml_rust2::{Yaml, YamlLoader};

use crate::formats::FormatError;

/// Config keys that are not subsets (Datumaro's `YOLOv8Path.RESERVED_CONFIG_KEYS`).
pub(super) const RESERVED_KEYS: [&str; 6] = [
    "backup",
    "classes",
    "names",
    "path",
    "kpt_shape",
    "flip_idx",
];

/// The config file name.
pub(super) const DATA_YAML: &str = "data.yaml";

/// Writes `data.yaml`: `path: .`, the class names, the subset list and `kpt_shape` (pose), in
/// PyYAML's sorted key order.
pub(super) fn write_config(names: &[&str], subset: &str, kpt_points: Option<usize>) -> String {
    let list = format!("{subset}.txt");
    let mut keys: Vec<(&str, Option<&str>)> = vec![("names", None), ("path", Some("."))];
    if kpt_points.is_some() {
        keys.push(("kpt_shape", None));
    }
    keys.push((subset, Some(list.as_str())));
    keys.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::new();
    for (key, value) in keys {
        put_scalar(&mut out, key);
        out.push(':');
        match (key, value) {
            (_, Some(v)) if key == subset || key == "path" => {
                out.push(' ');
                put_scalar(&mut out, v);
                out.push('\n');
            }
            ("names", _) if names.is_empty() => out.push_str(" {}\n"),
            ("names", _) => {
                out.push('\n');
                for (i, n) in names.iter().enumerate() {
                    out.push_str(&format!("  {i}: "));
                    put_scalar(&mut out, n);
                    out.push('\n');
                }
            }
            _ => {
                let k = kpt_points.unwrap_or(0);
                out.push_str(&format!("\n- {k}\n- 3\n"));
            }
        }
    }
    out
}

/// A string as PyYAML writes it: plain when it reads back as the same string, else single
/// quoted, or double quoted (with escapes) when it has characters outside printable ASCII.
fn put_scalar(out: &mut String, s: &str) {
    let special = s.chars().any(|c| !(' '..='~').contains(&c));
    if special {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\0' => out.push_str("\\0"),
                ' '..='~' => out.push(c),
                c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02X}", c as u32)),
                c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04X}", c as u32)),
                c => out.push_str(&format!("\\U{:08X}", c as u32)),
            }
        }
        out.push('"');
    } else if plain_ok(s) {
        out.push_str(s);
    } else {
        out.push('\'');
        out.push_str(&s.replace('\'', "''"));
        out.push('\'');
    }
}

/// Whether PyYAML writes `s` (printable ASCII) as a plain scalar in block context: no indicator
/// where YAML forbids it, no leading or trailing space, and not a word its YAML 1.1 resolver reads
/// as a null, bool, int, float, timestamp, merge or value key.
fn plain_ok(s: &str) -> bool {
    if s.is_empty() || s.starts_with(' ') || s.ends_with(' ') {
        return false;
    }
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    let b = s.as_bytes();
    let first = b[0];
    let followed_by_space = |i: usize| b.get(i + 1).is_none_or(|&c| c == b' ');
    if b"#,[]{}&*!|>'\"%@`".contains(&first) {
        return false;
    }
    if (first == b'?' || first == b':' || first == b'-') && followed_by_space(0) {
        return false;
    }
    for i in 1..b.len() {
        match b[i] {
            b':' if followed_by_space(i) => return false,
            b'#' if b[i - 1] == b' ' => return false,
            _ => {}
        }
    }
    !resolves_to_other_type(s)
}

/// PyYAML's implicit resolvers (YAML 1.1), approximated closely enough for label and file names.
fn resolves_to_other_type(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
        "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~", "=", "<<",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit() || c == b'_');
    // int: decimal, 0b, 0x, octal, sexagesimal.
    if let Some(h) = t.strip_prefix("0x") {
        if !h.is_empty() && h.bytes().all(|c| c.is_ascii_hexdigit() || c == b'_') {
            return true;
        }
    }
    if let Some(h) = t.strip_prefix("0b") {
        if !h.is_empty() && h.bytes().all(|c| matches!(c, b'0' | b'1' | b'_')) {
            return true;
        }
    }
    if digits(t) {
        return true;
    }
    if t.contains(':') && t.split(':').all(digits) {
        return true;
    }
    // float: [-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+][0-9]+)?, .inf, .nan, sexagesimal floats.
    if matches!(t, ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    if let Some((int, frac)) = mantissa.split_once('.') {
        let int_ok = int.is_empty() || (int.as_bytes()[0].is_ascii_digit() && digits(int));
        let frac_ok = frac.bytes().all(|c| c.is_ascii_digit() || c == b'_');
        let exp_ok = exp.is_none_or(|e| {
            e.strip_prefix(['-', '+'])
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
        });
        let has_digit = !int.is_empty() || frac.bytes().any(|c| c.is_ascii_digit());
        if int_ok && frac_ok && exp_ok && has_digit {
            return true;
        }
    }
    // timestamp: yyyy-mm-dd (and longer forms starting so).
    let d = s.as_bytes();
    d.len() >= 8
        && d[..4].iter().all(u8::is_ascii_digit)
        && d[4] == b'-'
        && d[5].is_ascii_digit()
        && (d[6] == b'-' || (d[6].is_ascii_digit() && d[7] == b'-'))
}

/// Where a subset's images are listed.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Source {
    /// A list file, one image path a line (a `.txt` path).
    List(String),
    /// A directory of images.
    Dir(String),
    /// Image paths given in the config.
    Images(Vec<String>),
}

/// What the importer reads of `data.yaml`.
#[derive(Debug, Clone)]
pub(super) struct Config {
    /// Class names in class order (a `names` map is ordered by its keys), each with the class id
    /// a label line uses for it (its position for a list, its key for a map).
    pub names: Vec<(i64, String)>,
    /// The subsets and where their images are listed, in the config's order.
    pub subsets: Vec<(String, Source)>,
    /// `kpt_shape`, when present: points per skeleton and values per point.
    pub kpt_shape: Option<Result<(usize, usize), String>>,
}

fn scalar_string(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(if *b { "True" } else { "False" }.to_owned()),
        _ => None,
    }
}

/// Parses `data.yaml` (`file` names it in errors).
pub(super) fn read_config(file: &str, text: &str) -> Result<Config, FormatError> {
    let bad = |loc: &str, why: String| FormatError::invalid(file, loc.to_owned(), why);
    // Aliases are copied by the loader (a few lines can expand to gigabytes): refused.
    struct Aliases(usize, usize);
    impl MarkedEventReceiver for Aliases {
        fn on_event(&mut self, ev: Event, mark: Marker) {
            if matches!(ev, Event::Alias(_)) && self.0 == 0 {
                self.0 = 1;
                self.1 = mark.line();
            }
        }
    }
    let mut aliases = Aliases(0, 0);
    // Scan errors are reported by the loader below.
    let _ = Parser::new_from_str(text).load(&mut aliases, true);
    if aliases.0 > 0 {
        return Err(bad(
            &format!("line {}", aliases.1),
            "YAML aliases are not supported".into(),
        ));
    }
    let docs = YamlLoader::load_from_str(text).map_err(|e| {
        let m = e.marker();
        bad(
            &format!("line {}", m.line()),
            format!("malformed YAML: {}", e.info()),
        )
    })?;
    let root = docs.into_iter().next().unwrap_or(Yaml::Null);
    let Yaml::Hash(map) = root else {
        return Err(bad("", "the config is not a mapping of keys".into()));
    };
    let mut names = None;
    let mut subsets = Vec::new();
    let mut kpt_shape = None;
    for (k, v) in &map {
        let Some(key) = scalar_string(k) else {
            continue;
        };
        let loc = format!("key '{key}'");
        match key.as_str() {
            "names" => {
                let list: Vec<(i64, String)> = match v {
                    Yaml::Array(a) => a
                        .iter()
                        .enumerate()
                        .map(|(i, n)| {
                            scalar_string(n)
                                .map(|n| (i as i64, n))
                                .ok_or_else(|| bad(&loc, format!("name {i} is not a string")))
                        })
                        .collect::<Result<_, _>>()?,
                    Yaml::Hash(h) => {
                        let mut l = Vec::with_capacity(h.len());
                        for (id, n) in h {
                            let Yaml::Integer(id) = id else {
                                return Err(bad(&loc, "class ids must be integers".into()));
                            };
                            let n = scalar_string(n).ok_or_else(|| {
                                bad(&loc, format!("the name of class {id} is not a string"))
                            })?;
                            l.push((*id, n));
                        }
                        l.sort_by_key(|(id, _)| *id);
                        l
                    }
                    _ => return Err(bad(&loc, "names must be a list or a map".into())),
                };
                names = Some(list);
            }
            "kpt_shape" => {
                let shape = match v {
                    Yaml::Array(a) if a.len() == 2 => match (&a[0], &a[1]) {
                        (Yaml::Integer(k), Yaml::Integer(d)) if *k >= 0 && (*d == 2 || *d == 3) => {
                            Ok((*k as usize, *d as usize))
                        }
                        _ => Err("kpt_shape must be [points, 2 or 3]".to_owned()),
                    },
                    _ => Err("kpt_shape must be [points, 2 or 3]".to_owned()),
                };
                kpt_shape = Some(shape);
            }
            k if RESERVED_KEYS.contains(&k) => {}
            _ => {
                let source = match v {
                    Yaml::String(s) if s.ends_with(".txt") => Source::List(s.clone()),
                    Yaml::String(s) => Source::Dir(s.clone()),
                    Yaml::Array(a) => Source::Images(
                        a.iter()
                            .map(|p| {
                                scalar_string(p)
                                    .ok_or_else(|| bad(&loc, "image paths must be strings".into()))
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    // `nc: 80`, `download: …`, empty subsets: not image sources.
                    _ => continue,
                };
                subsets.push((key, source));
            }
        }
    }
    let names = names.ok_or_else(|| bad("", "no 'names' (the class list)".into()))?;
    Ok(Config {
        names,
        subsets,
        kpt_shape,
    })
}
