//! The configuration text as nutcracker's YAML reader (libyaml) sees it: UTF-8, or UTF-16 with
//! a byte order mark; an initial BOM dropped; control characters refused; every line break
//! (CR LF, CR, NEL, LS, PS) read as a plain LF, so line numbers agree with the reader's.
//! The text is then reconciled with libyaml's scanner rules (see `compat`), and positions in
//! the parsed text are mapped back to the file's.

use saphyr_parser::Marker;

use crate::compat::{self, Insertion};
use crate::error::{ConfigErrorKind, Fault, Pos};

/// Normalised text ready for the YAML parser.
pub(crate) struct Source {
    pub text: String,
    /// The spaces inserted into the text, sorted by line.
    inserted: Vec<Insertion>,
    /// The first token libyaml refuses that the walk cannot see (a misplaced tab, a document
    /// marker), in the file's coordinates.
    refused: Option<Fault>,
}

impl Source {
    /// Decodes the bytes of a file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Source, Fault> {
        match bytes {
            [0xFF, 0xFE, rest @ ..] => decode_utf16(rest, u16::from_le_bytes),
            [0xFE, 0xFF, rest @ ..] => decode_utf16(rest, u16::from_be_bytes),
            _ => match std::str::from_utf8(bytes) {
                Ok(text) => Source::from_text(text),
                Err(error) => {
                    let valid = bytes.get(..error.valid_up_to()).unwrap_or_default();
                    let pos = end_of(&String::from_utf8_lossy(valid));
                    let byte = bytes.get(error.valid_up_to()).copied().unwrap_or_default();
                    Err(Fault::at(
                        pos,
                        ConfigErrorKind::InvalidEncoding {
                            detail: format!("invalid UTF-8 byte 0x{byte:02X}"),
                        },
                    ))
                }
            },
        }
    }

    /// Normalises text that is already decoded.
    pub fn from_text(text: &str) -> Result<Source, Fault> {
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let mut out = String::with_capacity(text.len());
        let mut line = 1;
        let mut column = 1;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            let c = match c {
                '\r' => {
                    if chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                    '\n'
                }
                '\u{85}' | '\u{2028}' | '\u{2029}' => '\n',
                c if is_printable(c) => c,
                c => {
                    return Err(Fault::at(
                        Pos { line, column },
                        ConfigErrorKind::ControlCharacter { code: c as u32 },
                    ));
                }
            };
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
            out.push(c);
        }
        let reconciled = compat::reconcile(out);
        let mut source = Source {
            text: reconciled.text,
            inserted: reconciled.inserted,
            refused: None,
        };
        let tab = reconciled
            .misplaced_tab
            .map(|at| Fault::at(source.original(at), ConfigErrorKind::MisplacedTab));
        let marker = reconciled
            .document_marker
            .map(|(at, marker)| Fault::at(at, ConfigErrorKind::DocumentMarker { marker }));
        source.refused = [tab, marker]
            .into_iter()
            .flatten()
            .min_by_key(|fault| fault.pos);
        Ok(source)
    }

    /// The position of a parser marker in the file (1-based line and column).
    pub fn pos(&self, marker: Marker) -> Pos {
        self.original(Pos {
            line: marker.line(),
            column: marker.col() + 1,
        })
    }

    /// The first non-blank character of a line (1-based), in the file's coordinates.
    pub fn first_nonblank(&self, line: usize) -> Pos {
        let text = self
            .text
            .split('\n')
            .nth(line.saturating_sub(1))
            .unwrap_or_default();
        let blanks = text.chars().take_while(|&c| c == ' ' || c == '\t').count();
        self.original(Pos {
            line,
            column: blanks + 1,
        })
    }

    /// Maps a position in the parsed text back to the file.
    fn original(&self, at: Pos) -> Pos {
        let from = self.inserted.partition_point(|i| i.line < at.line);
        let shift: usize = self
            .inserted
            .iter()
            .skip(from)
            .take_while(|i| i.line == at.line)
            .filter(|i| i.column < at.column)
            .map(|i| i.count.min(at.column - i.column))
            .sum();
        Pos {
            line: at.line,
            column: at.column.saturating_sub(shift).max(1),
        }
    }

    /// The first token nutcracker's YAML parser refuses that the event walk cannot see.
    pub fn refused(&self) -> Option<&Fault> {
        self.refused.as_ref()
    }

    /// The token starting at a parser marker (an anchor, alias or tag), up to the next blank.
    pub fn token_at(&self, marker: Marker) -> String {
        let line = self
            .text
            .split('\n')
            .nth(marker.line().saturating_sub(1))
            .unwrap_or_default();
        line.chars()
            .skip(marker.col())
            .take_while(|c| !c.is_whitespace())
            .collect()
    }

    /// The first `%` directive line before `line` (1-based, exclusive), if any.
    pub fn directive_before(&self, line: usize) -> Option<(Pos, String)> {
        self.text
            .split('\n')
            .take(line.saturating_sub(1))
            .enumerate()
            .find(|(_, text)| text.starts_with('%'))
            .map(|(index, text)| {
                (
                    Pos {
                        line: index + 1,
                        column: 1,
                    },
                    text.trim_end().to_owned(),
                )
            })
    }
}

/// The characters libyaml's reader accepts (YAML 1.1 "printable", plus tab and line breaks).
fn is_printable(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r' | '\u{20}'..='\u{7E}' | '\u{85}' | '\u{A0}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn decode_utf16(bytes: &[u8], word: fn([u8; 2]) -> u16) -> Result<Source, Fault> {
    let words = bytes.chunks(2).map(|pair| match pair {
        [a, b] => Ok(word([*a, *b])),
        _ => Err(()),
    });
    let mut text = String::with_capacity(bytes.len() / 2);
    let mut units = Vec::with_capacity(bytes.len() / 2);
    for unit in words {
        match unit {
            Ok(unit) => units.push(unit),
            Err(()) => return Err(utf16_fault(&text, "odd number of bytes in UTF-16 text")),
        }
    }
    for decoded in char::decode_utf16(units) {
        match decoded {
            Ok(c) => text.push(c),
            Err(_) => return Err(utf16_fault(&text, "unpaired surrogate in UTF-16 text")),
        }
    }
    Source::from_text(&text)
}

fn utf16_fault(decoded: &str, detail: &str) -> Fault {
    Fault::at(
        end_of(decoded),
        ConfigErrorKind::InvalidEncoding {
            detail: detail.to_owned(),
        },
    )
}

/// The position just after `text`.
fn end_of(text: &str) -> Pos {
    let line = 1 + text.matches('\n').count();
    let last = text.rsplit('\n').next().unwrap_or_default();
    Pos {
        line,
        column: 1 + last.chars().count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_bom_and_normalises_breaks() {
        let source = Source::from_bytes(b"\xEF\xBB\xBFa: b\r\nc: d\re: f\xC2\x85g").unwrap();
        assert_eq!(source.text, "a: b\nc: d\ne: f\ng");
    }

    #[test]
    fn decodes_utf16_with_bom() {
        let mut le = vec![0xFF, 0xFE];
        let mut be = vec![0xFE, 0xFF];
        for unit in "p: é".encode_utf16() {
            le.extend(unit.to_le_bytes());
            be.extend(unit.to_be_bytes());
        }
        assert_eq!(Source::from_bytes(&le).unwrap().text, "p: é");
        assert_eq!(Source::from_bytes(&be).unwrap().text, "p: é");
        assert!(Source::from_bytes(&[0xFF, 0xFE, 0x41]).is_err());
        assert!(Source::from_bytes(&[0xFF, 0xFE, 0x00, 0xD8]).is_err());
    }

    #[test]
    fn refuses_control_characters_with_their_position() {
        let fault = Source::from_bytes(b"a: b\nc: \x07").err().unwrap();
        assert_eq!(fault.pos, Pos { line: 2, column: 4 });
        assert_eq!(fault.kind, ConfigErrorKind::ControlCharacter { code: 7 });
        assert!(Source::from_text("a: \u{7F}").is_err());
        assert!(Source::from_text("a: \u{FFFE}").is_err());
        assert!(Source::from_text("a:\tb \u{A0}\u{10000}").is_ok());
    }

    #[test]
    fn invalid_utf8_is_located() {
        let fault = Source::from_bytes(b"a: b\nc: \xFF").err().unwrap();
        assert_eq!(fault.pos, Pos { line: 2, column: 4 });
        assert!(fault.kind.to_string().contains("0xFF"));
    }

    #[test]
    fn positions_map_back_across_inserted_spaces() {
        let source = Source::from_text("a: 'x'#one\nb: 'y'#two #three\n\tc: d").unwrap();
        assert_eq!(source.text, "a: 'x' #one\nb: 'y' #two #three\n\tc: d");
        assert_eq!(source.pos(Marker::new(0, 2, 3)), Pos { line: 2, column: 4 });
        assert_eq!(source.pos(Marker::new(0, 2, 7)), Pos { line: 2, column: 7 });
        assert_eq!(source.pos(Marker::new(0, 2, 8)), Pos { line: 2, column: 8 });
        assert_eq!(source.pos(Marker::new(0, 1, 3)), Pos { line: 1, column: 4 });
        let fault = source.refused().unwrap();
        assert_eq!(fault.pos, Pos { line: 3, column: 1 });
    }

    #[test]
    fn finds_tokens_and_directives() {
        let source = Source::from_text("%YAML 1.1\n---\np: &anchor x").unwrap();
        assert_eq!(source.token_at(Marker::new(0, 3, 3)), "&anchor");
        assert_eq!(
            source.directive_before(2),
            Some((Pos::START, "%YAML 1.1".to_owned()))
        );
        assert_eq!(source.directive_before(1), None);
    }
}
