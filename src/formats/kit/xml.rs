//! XML text as Python writes it: [`escape_text`] is `xml.sax.saxutils.escape` (CVAT's XML
//! writer) and what lxml escapes in element text (Datumaro's VOC writer).

/// Appends `s` with `&`, `<` and `>` escaped.
pub fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}
