//! The XML writer: Python's `XMLGenerator` as CVAT's `XmlAnnotationWriter` drives it, byte for
//! byte (indentation, quoting, escaping).

use std::fmt::Write as _;
use std::io::{self, Write};

use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

use crate::formats::kit::xml::escape_text;

// ------------------------------------------------------------------------------------------------
// Writing: Python's XMLGenerator, element by element

/// Quotes an attribute value like Python's `xml.sax.saxutils.quoteattr`.
pub(super) fn quote_attr(s: &str, out: &mut String) {
    let mut body = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => body.push_str("&amp;"),
            '<' => body.push_str("&lt;"),
            '>' => body.push_str("&gt;"),
            '\n' => body.push_str("&#10;"),
            '\r' => body.push_str("&#13;"),
            '\t' => body.push_str("&#9;"),
            c => body.push(c),
        }
    }
    if body.contains('"') {
        if body.contains('\'') {
            out.push('"');
            out.push_str(&body.replace('"', "&quot;"));
            out.push('"');
        } else {
            out.push('\'');
            out.push_str(&body);
            out.push('\'');
        }
    } else {
        out.push('"');
        out.push_str(&body);
        out.push('"');
    }
}

const SPACES: &str = "                                                                ";

/// CVAT's `XmlAnnotationWriter` over a `quick_xml::Writer`: a newline and two spaces per level
/// before every element, start tags built in place.
pub(super) struct Xml<W: Write> {
    pub(super) w: Writer<W>,
    pub(super) level: usize,
    pub(super) el: String,
    name_len: usize,
    tmp: String,
}

impl<W: Write> Xml<W> {
    pub(super) fn new(w: W) -> Self {
        Xml {
            w: Writer::new(w),
            level: 0,
            el: String::with_capacity(256),
            name_len: 0,
            tmp: String::with_capacity(256),
        }
    }

    pub(super) fn raw(&mut self, s: &str) -> io::Result<()> {
        self.w.write_event(Event::Text(BytesText::from_escaped(s)))
    }

    fn newline(&mut self) -> io::Result<()> {
        self.raw("\n")?;
        let mut n = self.level * 2;
        while n > 0 {
            let k = n.min(SPACES.len());
            self.raw(&SPACES[..k])?;
            n -= k;
        }
        Ok(())
    }

    /// Starts building a start tag.
    pub(super) fn begin(&mut self, name: &str) {
        self.el.clear();
        self.el.push_str(name);
        self.name_len = name.len();
    }

    pub(super) fn attr(&mut self, key: &str, value: &str) {
        self.el.push(' ');
        self.el.push_str(key);
        self.el.push('=');
        quote_attr(value, &mut self.el);
    }

    pub(super) fn attr_num(&mut self, key: &str, value: impl std::fmt::Display) {
        let _ = write!(self.el, " {key}=\"{value}\"");
    }

    /// `"{:.2f}".format(v)` (Rust's `{:.2}` rounds exactly like Python's).
    pub(super) fn attr_f2(&mut self, key: &str, v: f64) {
        let _ = write!(self.el, " {key}=\"{v:.2}\"");
    }

    pub(super) fn attr_bool(&mut self, key: &str, v: bool) {
        self.attr_num(key, u8::from(v));
    }

    /// `points="x0,y0;x1,y1"` (an odd trailing value is dropped, like Python's `pairwise`).
    pub(super) fn attr_points(&mut self, key: &str, pts: &[f64]) {
        let _ = write!(self.el, " {key}=\"");
        for (i, p) in pts.chunks_exact(2).enumerate() {
            if i > 0 {
                self.el.push(';');
            }
            let _ = write!(self.el, "{:.2},{:.2}", p[0], p[1]);
        }
        self.el.push('"');
    }

    /// Writes the start tag built since [`Xml::begin`] on a new line, one level deeper after.
    pub(super) fn open(&mut self) -> io::Result<()> {
        self.newline()?;
        self.w.write_event(Event::Start(BytesStart::from_content(
            self.el.as_str(),
            self.name_len,
        )))?;
        self.level += 1;
        Ok(())
    }

    pub(super) fn open_plain(&mut self, name: &str) -> io::Result<()> {
        self.begin(name);
        self.open()
    }

    pub(super) fn close(&mut self, name: &str) -> io::Result<()> {
        self.level = self.level.saturating_sub(1);
        self.newline()?;
        self.w.write_event(Event::End(BytesEnd::new(name)))
    }

    /// `<name attrs>text</name>` on a new line, with the start tag built since `begin`.
    pub(super) fn leaf_built(&mut self, text: &str) -> io::Result<()> {
        self.newline()?;
        self.w.write_event(Event::Start(BytesStart::from_content(
            self.el.as_str(),
            self.name_len,
        )))?;
        self.tmp.clear();
        escape_text(text, &mut self.tmp);
        if !self.tmp.is_empty() {
            self.w
                .write_event(Event::Text(BytesText::from_escaped(self.tmp.as_str())))?;
        }
        let name = &self.el[..self.name_len];
        self.w.write_event(Event::End(BytesEnd::new(name)))
    }

    pub(super) fn leaf(&mut self, name: &str, text: &str) -> io::Result<()> {
        self.begin(name);
        self.leaf_built(text)
    }
}
