//! JSON exactly as Python's `json.dumps(obj, separators=(",", ":"))` writes it: compact, keys in
//! the order given, and `ensure_ascii` on (every character outside printable ASCII becomes `\uXXXX`,
//! characters outside the BMP become a surrogate pair, DEL is escaped too).

use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter};

/// A `serde_json` formatter reproducing Python's `ensure_ascii=True` compact output.
#[derive(Default)]
struct PythonAsciiFormatter;

impl Formatter for PythonAsciiFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if (' '..='~').contains(&c) {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{:04x}", unit)?;
            }
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        char_escape: CharEscape,
    ) -> io::Result<()> {
        // Python writes the same short escapes as serde_json; the remaining control characters as
        // lowercase \u00XX, which serde_json also does. DEL (0x7f) never reaches this method: it
        // is handled in `write_string_fragment`.
        serde_json::ser::CompactFormatter.write_char_escape(writer, char_escape)
    }
}

/// Serialises `value` as one Python-compatible compact JSON line (without the newline).
pub fn to_line<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonAsciiFormatter);
    value
        .serialize(&mut ser)
        .expect("manifest values always serialise");
    String::from_utf8(out).expect("the formatter writes ASCII only")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_python_ensure_ascii() {
        // Expected strings produced by CPython 3.11: json.dumps(x, separators=(",", ":")).
        assert_eq!(to_line(&json!({"a": [1, 2]})), r#"{"a":[1,2]}"#);
        assert_eq!(to_line("sub/é"), r#""sub/\u00e9""#);
        assert_eq!(to_line("名前"), r#""\u540d\u524d""#);
        assert_eq!(to_line("😀"), r#""\ud83d\ude00""#);
        assert_eq!(
            to_line("a\"b\\c\n\t\u{7f}\u{1f}"),
            r#""a\"b\\c\n\t\u007f\u001f""#
        );
        assert_eq!(to_line("x/y"), r#""x/y""#);
    }
}
