//! Reads a section's body into blocks of pieces: the one parser of the
//! script syntax. It knows nothing of values; merge fields are names here.

use super::{ScriptError, MAX_NAME};

/// A block of a section's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ParsedBlock {
    /// Lines of text, kept as the author broke them.
    Paragraph(Vec<Vec<Piece>>),
    /// Bullet items, one line each.
    List(Vec<Vec<Piece>>),
}

/// A piece of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Piece {
    /// Literal text.
    Text(String),
    /// A merge field, by name (`first_name`, `field.plan`).
    Field(String),
    /// `**`, which turns bold on or off when it has a partner on its line.
    Bold,
    /// `*`, which turns italic on or off when it has a partner on its line.
    Italic,
}

/// Reads a body: blank lines separate blocks, lines starting with `- ` are
/// bullet items, the rest are paragraph lines.
pub(super) fn parse_body(body: &str) -> Result<Vec<ParsedBlock>, ScriptError> {
    let mut blocks = Vec::new();
    let mut current: Option<ParsedBlock> = None;
    for (n, raw) in body.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            blocks.extend(current.take());
            continue;
        }
        let at = n + 1;
        if let Some(item) = line.strip_prefix("- ").or((line == "-").then_some("")) {
            let pieces = parse_line(item.trim_start(), at)?;
            match &mut current {
                Some(ParsedBlock::List(items)) => items.push(pieces),
                _ => {
                    blocks.extend(current.take());
                    current = Some(ParsedBlock::List(vec![pieces]));
                }
            }
        } else {
            let pieces = parse_line(line, at)?;
            match &mut current {
                Some(ParsedBlock::Paragraph(lines)) => lines.push(pieces),
                _ => {
                    blocks.extend(current.take());
                    current = Some(ParsedBlock::Paragraph(vec![pieces]));
                }
            }
        }
    }
    blocks.extend(current);
    Ok(blocks)
}

/// Reads one line into pieces; `\` makes the next `\ * { } -` literal.
pub(super) fn parse_line(line: &str, at: usize) -> Result<Vec<Piece>, ScriptError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&next @ ('\\' | '*' | '{' | '}' | '-')) => {
                    text.push(next);
                    chars.next();
                }
                _ => text.push('\\'),
            },
            '{' => {
                let mut inner = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    inner.push(c);
                }
                if !closed {
                    return Err(ScriptError::Unclosed { line: at });
                }
                let name = inner.trim();
                if !is_field_name(name) {
                    return Err(ScriptError::BadName {
                        line: at,
                        name: shorten(name),
                    });
                }
                flush(&mut text, &mut pieces);
                pieces.push(Piece::Field(name.to_owned()));
            }
            '*' => {
                flush(&mut text, &mut pieces);
                if chars.peek() == Some(&'*') {
                    chars.next();
                    pieces.push(Piece::Bold);
                } else {
                    pieces.push(Piece::Italic);
                }
            }
            other => text.push(other),
        }
    }
    flush(&mut text, &mut pieces);
    Ok(pieces)
}

/// Whether a name is written as a merge field may be: a lower-case word
/// (`first_name`), or `field.` and an account field's key.
fn is_field_name(name: &str) -> bool {
    let key = name.strip_prefix("field.").unwrap_or(name);
    let mut chars = key.chars();
    name.len() <= MAX_NAME
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn flush(text: &mut String, pieces: &mut Vec<Piece>) {
    if !text.is_empty() {
        pieces.push(Piece::Text(std::mem::take(text)));
    }
}

/// Returns at most a few dozen characters of what the author wrote, for
/// an error message.
fn shorten(name: &str) -> String {
    const SHOWN: usize = 40;
    if name.chars().count() <= SHOWN {
        name.to_owned()
    } else {
        let mut s: String = name.chars().take(SHOWN).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Piece {
        Piece::Text(s.into())
    }

    #[test]
    fn lines_become_paragraphs_and_bullets() {
        let blocks = parse_body("Hello {first_name},\nthis is {agent}.\n\n- one\n- **two**\nafter")
            .expect("parses");
        assert_eq!(
            blocks,
            vec![
                ParsedBlock::Paragraph(vec![
                    vec![text("Hello "), Piece::Field("first_name".into()), text(",")],
                    vec![text("this is "), Piece::Field("agent".into()), text(".")],
                ]),
                ParsedBlock::List(vec![
                    vec![text("one")],
                    vec![Piece::Bold, text("two"), Piece::Bold],
                ]),
                ParsedBlock::Paragraph(vec![vec![text("after")]]),
            ]
        );
    }

    #[test]
    fn escapes_make_markers_literal() {
        let blocks = parse_body("\\- not a bullet \\*x\\* \\{y\\} a\\b").expect("parses");
        assert_eq!(
            blocks,
            vec![ParsedBlock::Paragraph(vec![vec![text(
                "- not a bullet *x* {y} a\\b"
            )]])]
        );
    }

    #[test]
    fn bad_fields_name_their_line() {
        assert_eq!(
            parse_body("ok\nHello {first_name"),
            Err(ScriptError::Unclosed { line: 2 })
        );
        assert_eq!(
            parse_body("{First Name}"),
            Err(ScriptError::BadName {
                line: 1,
                name: "First Name".into()
            })
        );
        assert!(matches!(
            parse_body("{{first_name}}"),
            Err(ScriptError::BadName { .. })
        ));
        assert!(matches!(parse_body("{}"), Err(ScriptError::BadName { .. })));
        assert!(parse_body("{ field.plan }").is_ok());
    }
}
