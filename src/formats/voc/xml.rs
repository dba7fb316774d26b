//! `Annotations/<id>.xml` read with quick-xml's streaming reader into a small element tree (one
//! file is one image's objects), then walked as Datumaro's VOC extractor walks its
//! `ElementTree` (`find` of direct children, texts as they are).

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::formats::FormatError;

/// One element: its tag, text and children, and where it starts (a byte offset).
#[derive(Debug, Default)]
pub(super) struct Node {
    pub tag: String,
    pub text: Option<String>,
    pub children: Vec<usize>,
    pub pos: usize,
}

/// A parsed file; node 0 is the root element.
pub(super) struct Doc<'s> {
    pub nodes: Vec<Node>,
    src: &'s str,
    pub file: String,
}

impl<'s> Doc<'s> {
    /// Parses `src` (the text of `file`).
    pub fn parse(src: &'s str, file: &str) -> Result<Doc<'s>, FormatError> {
        let mut r = Reader::from_str(src);
        let mut nodes: Vec<Node> = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        let line_of = |pos: usize| src[..pos.min(src.len())].matches('\n').count() + 1;
        let bad = |pos: usize, why: String| {
            FormatError::invalid(file, format!("line {}", line_of(pos)), why)
        };
        let mut done = false;
        loop {
            let pos = r.buffer_position() as usize;
            let ev = r
                .read_event()
                .map_err(|e| bad(r.error_position() as usize, format!("malformed XML: {e}")))?;
            let start = |name: &[u8], nodes: &mut Vec<Node>, stack: &mut Vec<usize>| {
                let id = nodes.len();
                nodes.push(Node {
                    tag: String::from_utf8_lossy(name).into_owned(),
                    text: None,
                    children: Vec::new(),
                    pos,
                });
                if let Some(&p) = stack.last() {
                    nodes[p].children.push(id);
                }
                id
            };
            match ev {
                Event::Start(e) => {
                    if done {
                        return Err(bad(pos, "a second root element".into()));
                    }
                    let id = start(e.name().as_ref(), &mut nodes, &mut stack);
                    stack.push(id);
                }
                Event::Empty(e) => {
                    if done {
                        return Err(bad(pos, "a second root element".into()));
                    }
                    start(e.name().as_ref(), &mut nodes, &mut stack);
                    if stack.is_empty() {
                        done = true;
                    }
                }
                Event::End(_) => {
                    stack.pop();
                    if stack.is_empty() {
                        done = true;
                    }
                }
                Event::Text(t) => {
                    if let Some(&p) = stack.last() {
                        let s = t
                            .decode()
                            .map_err(|e| bad(pos, format!("malformed XML text: {e}")))?;
                        push_text(&mut nodes[p], &s);
                    }
                }
                Event::GeneralRef(g) => {
                    if let Some(&p) = stack.last() {
                        let c =
                            crate::formats::kit::xml::resolve_ref(&g).map_err(|e| bad(pos, e))?;
                        let mut b = [0u8; 4];
                        push_text(&mut nodes[p], c.encode_utf8(&mut b));
                    }
                }
                Event::CData(t) => {
                    if let Some(&p) = stack.last() {
                        push_text(&mut nodes[p], &String::from_utf8_lossy(&t));
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if !stack.is_empty() {
            return Err(bad(src.len(), "the XML ends inside an element".into()));
        }
        if nodes.is_empty() {
            return Err(bad(0, "no XML element".into()));
        }
        Ok(Doc {
            nodes,
            src,
            file: file.to_owned(),
        })
    }

    /// The line of node `n`.
    pub fn line(&self, n: usize) -> usize {
        let pos = self.nodes[n].pos.min(self.src.len());
        self.src[..pos].matches('\n').count() + 1
    }

    /// An error at node `n`.
    pub fn error(&self, n: usize, why: impl Into<String>) -> FormatError {
        FormatError::invalid(&self.file, format!("line {}", self.line(n)), why)
    }

    /// The first child of `n` called `tag` (`Element.find`).
    pub fn find(&self, n: usize, tag: &str) -> Option<usize> {
        self.nodes[n]
            .children
            .iter()
            .copied()
            .find(|&c| self.nodes[c].tag == tag)
    }

    /// Every child of `n` called `tag`.
    pub fn find_all<'a>(&'a self, n: usize, tag: &'a str) -> impl Iterator<Item = usize> + 'a {
        self.nodes[n]
            .children
            .iter()
            .copied()
            .filter(move |&c| self.nodes[c].tag == tag)
    }

    /// The text of `n` (`None` for an empty element).
    pub fn text(&self, n: usize) -> Option<&str> {
        self.nodes[n].text.as_deref()
    }
}

fn push_text(n: &mut Node, s: &str) {
    match &mut n.text {
        Some(t) => t.push_str(s),
        None => n.text = Some(s.to_owned()),
    }
}
