//! CVAT's frame sorting methods (spec §6).

use std::cmp::Ordering;
use std::str::FromStr;

/// How image paths are ordered into frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortingMethod {
    /// Code-point order of the full path string (CVAT's CLI default): `b10` before `b9`.
    #[default]
    Lexicographical,
    /// `natsort.os_sorted`: numbers compare as numbers, path components separately, case ignored.
    Natural,
    /// Keep the order given.
    Predefined,
    /// Shuffle (unseeded, like CVAT).
    Random,
}

impl FromStr for SortingMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "lexicographical" => Ok(Self::Lexicographical),
            "natural" => Ok(Self::Natural),
            "predefined" => Ok(Self::Predefined),
            "random" => Ok(Self::Random),
            other => Err(format!(
                "unknown sorting method '{other}' (expected lexicographical, natural, predefined or random)"
            )),
        }
    }
}

impl SortingMethod {
    /// CVAT's name for the method.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lexicographical => "lexicographical",
            Self::Natural => "natural",
            Self::Predefined => "predefined",
            Self::Random => "random",
        }
    }

    /// Sorts `items` by the path string `key` returns.
    pub fn sort<T>(self, items: &mut [T], key: impl Fn(&T) -> &str) {
        match self {
            Self::Lexicographical => items.sort_by(|a, b| key(a).cmp(key(b))),
            Self::Natural => {
                // Precompute keys: natural keys are not free to build.
                let mut keyed: Vec<(NaturalKey, usize)> = items
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (NaturalKey::new(key(t)), i))
                    .collect();
                keyed.sort_by(|a, b| a.0.cmp(&b.0));
                let order: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
                apply_permutation(items, order);
            }
            Self::Predefined => {}
            Self::Random => {
                use rand::seq::SliceRandom;
                items.shuffle(&mut rand::rng());
            }
        }
    }
}

/// Reorders `items` so that position `k` holds the element formerly at `order[k]`.
fn apply_permutation<T>(items: &mut [T], mut order: Vec<usize>) {
    for i in 0..items.len() {
        // Follow the cycle starting at i; mark visited entries by pointing them at themselves.
        let mut current = i;
        while order[current] != i {
            let next = order[current];
            items.swap(current, next);
            order[current] = current;
            current = next;
        }
        order[current] = current;
    }
}

/// A piece of a natural-sort key: text (case-folded) or a number (digits without leading zeros).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Chunk {
    Text(String),
    Num(String),
}

impl Ord for Chunk {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Chunk::Text(a), Chunk::Text(b)) => a.cmp(b),
            (Chunk::Num(a), Chunk::Num(b)) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
            // natsort keys alternate text/number starting with text, so mixed pairs compare a
            // text chunk with a number chunk only when one side is empty-prefixed; text "" < all.
            (Chunk::Text(a), Chunk::Num(_)) => {
                if a.is_empty() {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (Chunk::Num(_), Chunk::Text(b)) => {
                if b.is_empty() {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
        }
    }
}
impl PartialOrd for Chunk {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// natsort's key with `PATH | IGNORECASE` (what `os_sorted` does on Linux without ICU): the
/// path is split into components, the file name's extensions are split off, and each part is
/// split into alternating text/number chunks, text case-folded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NaturalKey(Vec<Vec<Chunk>>);

impl NaturalKey {
    /// Builds the key of one path string.
    pub fn new(path: &str) -> Self {
        NaturalKey(path_parts(path).iter().map(|p| chunks(p)).collect())
    }
}

/// Splits a path like natsort's `path_splitter`: components, then the last component's
/// extensions (stopping at an extension that starts with a digit, e.g. `.5`).
fn path_parts(path: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    if path.starts_with('/') {
        parts.push("/".into());
    }
    parts.extend(path.split('/').filter(|s| !s.is_empty()).map(str::to_owned));
    if let Some(mut base) = parts.pop() {
        let mut exts = Vec::new();
        loop {
            let (stem, ext) = splitext(&base);
            if ext.is_empty() || ext[1..].starts_with(|c: char| c.is_ascii_digit()) {
                break;
            }
            exts.push(ext.to_owned());
            base = stem.to_owned();
        }
        parts.push(base);
        parts.extend(exts.into_iter().rev());
    }
    parts
}

/// Python's `os.path.splitext` on a file name: split at the last dot, ignoring leading dots.
pub fn splitext(name: &str) -> (&str, &str) {
    let leading = name.len() - name.trim_start_matches('.').len();
    match name[leading..].rfind('.') {
        Some(i) => name.split_at(leading + i),
        None => (name, ""),
    }
}

fn chunks(s: &str) -> Vec<Chunk> {
    let folded = s.to_lowercase();
    let mut out = Vec::new();
    let mut text = String::new();
    let mut num = String::new();
    for c in folded.chars() {
        if c.is_ascii_digit() {
            if num.is_empty() {
                out.push(Chunk::Text(std::mem::take(&mut text)));
            }
            num.push(c);
        } else {
            if !num.is_empty() {
                out.push(Chunk::Num(normalise_number(&std::mem::take(&mut num))));
            }
            text.push(c);
        }
    }
    if !num.is_empty() {
        out.push(Chunk::Num(normalise_number(&num)));
    } else if !text.is_empty() || out.is_empty() {
        out.push(Chunk::Text(text));
    }
    out
}

fn normalise_number(digits: &str) -> String {
    let t = digits.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(method: SortingMethod, names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        method.sort(&mut v, |s| s.as_str());
        v
    }

    #[test]
    fn lexicographical_puts_b10_before_b9() {
        assert_eq!(
            sorted(
                SortingMethod::Lexicographical,
                &["/d/b9.png", "/d/b10.png", "/d/B2.png"]
            ),
            ["/d/B2.png", "/d/b10.png", "/d/b9.png"]
        );
    }

    #[test]
    fn natural_is_numeric_case_insensitive_and_path_aware() {
        assert_eq!(
            sorted(
                SortingMethod::Natural,
                &["/d/b10.png", "/d/b9.png", "/d/B2.png", "/d/a.png"]
            ),
            ["/d/a.png", "/d/B2.png", "/d/b9.png", "/d/b10.png"]
        );
        // Path-aware: a directory "x" sorts before "x-1" even though '/' > '-'.
        assert_eq!(
            sorted(SortingMethod::Natural, &["/d/x-1/a.png", "/d/x/b.png"]),
            ["/d/x/b.png", "/d/x-1/a.png"]
        );
        // Numbers first (empty text chunk).
        assert_eq!(
            sorted(
                SortingMethod::Natural,
                &["/d/a1.png", "/d/10.png", "/d/9.png"]
            ),
            ["/d/9.png", "/d/10.png", "/d/a1.png"]
        );
    }

    #[test]
    fn predefined_keeps_order_and_random_permutes() {
        assert_eq!(
            sorted(SortingMethod::Predefined, &["c", "a", "b"]),
            ["c", "a", "b"]
        );
        let mut r = sorted(SortingMethod::Random, &["c", "a", "b"]);
        r.sort();
        assert_eq!(r, ["a", "b", "c"]);
    }

    #[test]
    fn splitext_follows_python() {
        assert_eq!(splitext("a.tar.gz"), ("a.tar", ".gz"));
        assert_eq!(splitext(".hidden"), (".hidden", ""));
        assert_eq!(splitext("..x.png"), ("..x", ".png"));
        assert_eq!(splitext("noext"), ("noext", ""));
    }

    #[test]
    fn permutation_is_applied() {
        let mut v = vec!['a', 'b', 'c', 'd'];
        apply_permutation(&mut v, vec![2, 0, 3, 1]);
        assert_eq!(v, ['c', 'a', 'd', 'b']);
    }
}
