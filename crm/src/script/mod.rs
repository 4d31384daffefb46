//! Call scripts: what a campaign's agents read during a call, in sections,
//! with merge fields from the contact, the campaign and the agent.
//!
//! A section's body is text with a small formatting subset, read by our own
//! parser ([`parse`]): blank lines separate paragraphs, a line starting with
//! `- ` is a bullet, `**bold**` and `*italic*` work within a line, and `\`
//! makes the next `\ * { } -` literal. Merge fields are `{first_name}`,
//! `{last_name}`, `{phone}`, `{email}`, `{caller_id}`, `{campaign}`,
//! `{agent}`, and `{field.KEY}` for a field the account defines and shows
//! on the agent's card. The prefix keeps an account's keys from ever
//! meeting a name the script language has or will have.
//!
//! [`Script::render`] is the one place a script meets values: it turns the
//! parsed template into a [`Rendered`] tree whose every leaf is plain text.
//! Values are put into that tree after parsing, never into the template, so
//! nothing in a contact's field is read as formatting, a merge field or
//! markup; the pages build DOM text nodes from the tree.

mod merge;
mod parse;

use serde::{Deserialize, Serialize};

use crate::fields::FieldDef;
use crate::StoreError;

pub use merge::Merge;
use parse::{parse_body, ParsedBlock, Piece};

/// The most sections a script may have.
pub const MAX_SECTIONS: usize = 30;
/// The longest section title, in characters.
pub const MAX_TITLE: usize = 100;
/// The longest section body, in characters.
pub const MAX_BODY: usize = 10_000;
/// The longest merge field name.
pub const MAX_NAME: usize = 60;
/// The longest value a merge field shows, in characters; a longer one is cut.
pub const MAX_VALUE: usize = 200;
/// The most merge fields one script may hold, so that a rendered script
/// stays a small message (at most this many values of [`MAX_VALUE`]).
pub const MAX_MERGES: usize = 300;
/// The merge fields every script may use besides `field.KEY`.
pub const BUILTIN_FIELDS: &[&str] = &[
    "first_name",
    "last_name",
    "phone",
    "email",
    "caller_id",
    "campaign",
    "agent",
];

/// A campaign's script as supervisors write it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// The sections, in the order the agent reads them.
    pub sections: Vec<Section>,
}

/// One section of a script.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "ScriptSection")
)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// The heading, plain text.
    pub title: String,
    /// The text, in the script syntax.
    pub body: String,
}

/// A script rendered for one call: plain text in a fixed structure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "RenderedScript")
)]
pub struct Rendered {
    /// The sections, in order.
    pub sections: Vec<RenderedSection>,
}

/// One rendered section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "RenderedScriptSection")
)]
pub struct RenderedSection {
    /// The heading, plain text.
    pub title: String,
    /// The paragraphs and lists, in order.
    pub blocks: Vec<Block>,
}

/// A paragraph or a bullet list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "ScriptBlock")
)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Block {
    /// Lines shown one under the other.
    Paragraph {
        /// Each line's spans.
        lines: Vec<Vec<Span>>,
    },
    /// Bullet items.
    List {
        /// Each item's spans.
        items: Vec<Vec<Span>>,
    },
}

/// A run of text in one style.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "ScriptSpan")
)]
pub struct Span {
    /// The text, shown as it is: never markup.
    pub text: String,
    /// Shown bold.
    #[serde(default, skip_serializing_if = "is_false")]
    pub bold: bool,
    /// Shown in italics.
    #[serde(default, skip_serializing_if = "is_false")]
    pub italic: bool,
    /// The merge field the text came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The merge field has no value for this call; `text` is empty.
    #[serde(default, skip_serializing_if = "is_false")]
    pub missing: bool,
}

/// Why a section's body cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// A `{` without its `}` on the same line.
    #[error("line {line}: a merge field is not closed with }} (write \\{{ for a literal {{)")]
    Unclosed {
        /// The line, from 1.
        line: usize,
    },
    /// Braces around something that cannot be a merge field's name.
    #[error(
        "line {line}: {{{name}}} is not a merge field (names are lower-case, such as \
         first_name or field.plan; write \\{{ for a literal {{)"
    )]
    BadName {
        /// The line, from 1.
        line: usize,
        /// What stood between the braces, shortened.
        name: String,
    },
}

impl Script {
    /// Checks a script before it is saved: sizes, titles, syntax, and that
    /// every merge field is known. Unknown fields are named, all at once.
    /// `fields` are the account's fields; only those on the card may be used.
    pub fn check(&self, fields: &[FieldDef]) -> Result<(), StoreError> {
        if self.sections.len() > MAX_SECTIONS {
            return Err(invalid(format!(
                "a script has at most {MAX_SECTIONS} sections"
            )));
        }
        let mut unknown: Vec<String> = Vec::new();
        let mut hidden: Vec<String> = Vec::new();
        let mut merges = 0;
        for (i, section) in self.sections.iter().enumerate() {
            let n = i + 1;
            let title = section.title.trim();
            if title.is_empty() || title.chars().count() > MAX_TITLE {
                return Err(invalid(format!(
                    "section {n}: a title is 1 to {MAX_TITLE} characters"
                )));
            }
            if title.chars().any(char::is_control) {
                return Err(invalid(format!(
                    "section {n}: the title holds control characters"
                )));
            }
            if section.body.chars().count() > MAX_BODY {
                return Err(invalid(format!(
                    "section {n} ({title}): the text is longer than {MAX_BODY} characters"
                )));
            }
            if section
                .body
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            {
                return Err(invalid(format!(
                    "section {n} ({title}): the text holds control characters"
                )));
            }
            let blocks = parse_body(&section.body)
                .map_err(|e| invalid(format!("section {n} ({title}), {e}")))?;
            for name in field_names(&blocks) {
                merges += 1;
                let known = match name.strip_prefix("field.") {
                    Some(key) => match fields.iter().find(|f| f.key == key) {
                        Some(f) if f.on_card => true,
                        Some(_) => {
                            push_once(&mut hidden, name);
                            true
                        }
                        None => false,
                    },
                    None => BUILTIN_FIELDS.contains(&name),
                };
                if !known {
                    push_once(&mut unknown, name);
                }
            }
        }
        if merges > MAX_MERGES {
            return Err(invalid(format!(
                "a script holds at most {MAX_MERGES} merge fields; this one holds {merges}"
            )));
        }
        if !unknown.is_empty() {
            let names: Vec<String> = unknown.iter().map(|n| format!("{{{n}}}")).collect();
            return Err(invalid(format!(
                "unknown merge fields: {}; a script may use {} and {{field.KEY}} for a field \
                 the account defines (see GET /api/account/fields)",
                names.join(", "),
                BUILTIN_FIELDS
                    .iter()
                    .map(|n| format!("{{{n}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if !hidden.is_empty() {
            let names: Vec<String> = hidden.iter().map(|n| format!("{{{n}}}")).collect();
            return Err(invalid(format!(
                "merge fields not shown on the agent's card: {}; an admin can show them \
                 (on_card) or the script can leave them out",
                names.join(", ")
            )));
        }
        Ok(())
    }

    /// Renders the script for one call. Never fails: a body that no longer
    /// reads (it was checked when saved, so only by a bug) is shown as its
    /// plain lines, and a field removed since the script was saved shows as
    /// missing.
    pub fn render(&self, merge: &Merge) -> Rendered {
        Rendered {
            sections: self
                .sections
                .iter()
                .map(|s| RenderedSection {
                    title: s.title.trim().to_owned(),
                    blocks: match parse_body(&s.body) {
                        Ok(blocks) => blocks.iter().map(|b| render_block(b, merge)).collect(),
                        Err(_) => vec![Block::Paragraph {
                            lines: s
                                .body
                                .lines()
                                .map(|l| vec![plain(merge::clean(l, MAX_BODY))])
                                .collect(),
                        }],
                    },
                })
                .collect(),
        }
    }

    /// Returns whether the script has no section.
    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }
}

impl Rendered {
    /// Returns the script's text without formatting, a line per line, for
    /// tests and plain-text views.
    pub fn plain_text(&self) -> String {
        let mut out = String::new();
        let line = |spans: &[Span]| spans.iter().map(|s| s.text.as_str()).collect::<String>();
        for section in &self.sections {
            out.push_str(&section.title);
            out.push('\n');
            for block in &section.blocks {
                match block {
                    Block::Paragraph { lines } => {
                        for l in lines {
                            out.push_str(&line(l));
                            out.push('\n');
                        }
                    }
                    Block::List { items } => {
                        for l in items {
                            out.push_str("- ");
                            out.push_str(&line(l));
                            out.push('\n');
                        }
                    }
                }
            }
        }
        out
    }
}

fn render_block(block: &ParsedBlock, merge: &Merge) -> Block {
    match block {
        ParsedBlock::Paragraph(lines) => Block::Paragraph {
            lines: lines.iter().map(|l| render_line(l, merge)).collect(),
        },
        ParsedBlock::List(items) => Block::List {
            items: items.iter().map(|l| render_line(l, merge)).collect(),
        },
    }
}

/// Turns one line's pieces into spans. A marker turns its style on only
/// when the same marker follows later on the line; otherwise it is text.
fn render_line(pieces: &[Piece], merge: &Merge) -> Vec<Span> {
    let (mut bold, mut italic) = (false, false);
    // How many of each marker are still to come, so that pairing stays
    // linear in the line's length.
    let (mut bolds_left, mut italics_left) = pieces.iter().fold((0, 0), |(b, i), p| match p {
        Piece::Bold => (b + 1, i),
        Piece::Italic => (b, i + 1),
        _ => (b, i),
    });
    let mut spans: Vec<Span> = Vec::new();
    let push_text =
        |spans: &mut Vec<Span>, text: &str, bold: bool, italic: bool| match spans.last_mut() {
            Some(last) if last.field.is_none() && last.bold == bold && last.italic == italic => {
                last.text.push_str(text)
            }
            _ => spans.push(Span {
                text: text.to_owned(),
                bold,
                italic,
                ..Span::default()
            }),
        };
    for piece in pieces {
        match piece {
            Piece::Text(t) => push_text(&mut spans, t, bold, italic),
            Piece::Field(name) => {
                let value = merge.value(name);
                spans.push(Span {
                    text: value.unwrap_or_default().to_owned(),
                    bold,
                    italic,
                    field: Some(name.clone()),
                    missing: value.is_none(),
                });
            }
            Piece::Bold | Piece::Italic => {
                let (on, left) = if *piece == Piece::Bold {
                    (&mut bold, &mut bolds_left)
                } else {
                    (&mut italic, &mut italics_left)
                };
                *left -= 1;
                if *on || *left > 0 {
                    *on = !*on;
                } else {
                    let marker = if *piece == Piece::Bold { "**" } else { "*" };
                    push_text(&mut spans, marker, bold, italic);
                }
            }
        }
    }
    spans
}

fn field_names(blocks: &[ParsedBlock]) -> impl Iterator<Item = &str> {
    blocks
        .iter()
        .flat_map(|b| match b {
            ParsedBlock::Paragraph(lines) | ParsedBlock::List(lines) => lines.iter(),
        })
        .flatten()
        .filter_map(|p| match p {
            Piece::Field(name) => Some(name.as_str()),
            _ => None,
        })
}

fn push_once(names: &mut Vec<String>, name: &str) {
    if !names.iter().any(|n| n == name) {
        names.push(name.to_owned());
    }
}

fn plain(text: String) -> Span {
    Span {
        text,
        ..Span::default()
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn invalid(message: String) -> StoreError {
    StoreError::Invalid(message)
}

#[cfg(test)]
mod tests;
