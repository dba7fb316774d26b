//! XML text as Python writes it: [`escape_text`] is `xml.sax.saxutils.escape` (CVAT's XML
//! writer) and what lxml escapes in element text (Datumaro's VOC writer); [`resolve_ref`]
//! reads references back.

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

/// The character of an entity or character reference (`&amp;`, `&#10;`, …) as quick-xml
/// reports it (`Event::GeneralRef`); an unknown entity or a bad number is an error.
pub fn resolve_ref(r: &quick_xml::events::BytesRef<'_>) -> Result<char, String> {
    match r.resolve_char_ref() {
        Ok(Some(c)) => Ok(c),
        Ok(None) => match r.as_ref() {
            b"amp" => Ok('&'),
            b"lt" => Ok('<'),
            b"gt" => Ok('>'),
            b"quot" => Ok('"'),
            b"apos" => Ok('\''),
            other => Err(format!(
                "unknown entity &{};",
                String::from_utf8_lossy(other)
            )),
        },
        Err(e) => Err(format!("bad character reference: {e}")),
    }
}
