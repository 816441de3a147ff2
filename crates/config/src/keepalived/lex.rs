//! Tokens as keepalived 2.2's line reader sees them: whitespace-separated words, '{' and '}'
//! as tokens of their own (even when glued to a word), comments from '#' or '!' to the end of
//! the line, and double-quoted strings that may hold whitespace, '#' and '!'. Quotes glued to
//! other text, which keepalived splits in surprising ways, are refused. Backslashes are plain
//! characters, as keepalived 2.2 reads them outside scripts. `include FILE` lines are replaced
//! by the included file's tokens, read through a caller-supplied reader.

use std::path::{Path, PathBuf};

use super::error::{Fault, Files, KeepalivedErrorKind, Pos};

/// How many files deep `include` may nest before it is taken for a cycle.
const INCLUDE_LIMIT: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Word(String),
    Open,
    Close,
    EndOfLine,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub pos: Pos,
}

/// Reads an included file: its text, or why it cannot be read.
pub(crate) type Reader<'a> = dyn FnMut(&Path) -> Result<String, KeepalivedErrorKind> + 'a;

/// Tokenises `text`, the contents of file `file` in `files`, splicing in included files.
pub(crate) fn tokens(
    text: &str,
    file: usize,
    files: &mut Files,
    read: &mut Reader<'_>,
) -> Result<Vec<Token>, Fault> {
    let mut out = Vec::new();
    tokenise(text, file, files, read, 0, &mut out)?;
    Ok(out)
}

fn tokenise(
    text: &str,
    file: usize,
    files: &mut Files,
    read: &mut Reader<'_>,
    depth: usize,
    out: &mut Vec<Token>,
) -> Result<(), Fault> {
    for (index, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let number = index + 1;
        let words = line_tokens(line, file, number)?;
        match words.first() {
            Some(Token {
                kind: TokenKind::Word(word),
                pos,
            }) if word == "include" => {
                include(&words, *pos, files, read, depth, out)?;
            }
            _ => {
                out.extend(words);
                out.push(Token {
                    kind: TokenKind::EndOfLine,
                    pos: Pos {
                        file,
                        line: number,
                        column: line.chars().count() + 1,
                    },
                });
            }
        }
    }
    Ok(())
}

fn include(
    words: &[Token],
    pos: Pos,
    files: &mut Files,
    read: &mut Reader<'_>,
    depth: usize,
    out: &mut Vec<Token>,
) -> Result<(), Fault> {
    let fault = |kind| Fault::keyword(pos, "include", kind);
    let names: Vec<&Token> = words.iter().skip(1).collect();
    let name = match names.as_slice() {
        [
            Token {
                kind: TokenKind::Word(name),
                ..
            },
        ] => name,
        _ => {
            return Err(fault(KeepalivedErrorKind::IncludeArguments {
                count: names.len(),
            }));
        }
    };
    if name.contains(['*', '?', '[', '{']) {
        return Err(fault(KeepalivedErrorKind::IncludeWildcard {
            pattern: name.clone(),
        }));
    }
    // Relative names are relative to the directory of the including file, as in keepalived.
    let base = files.path(pos.file).parent().unwrap_or(Path::new(""));
    let path: PathBuf = base.join(name);
    if depth >= INCLUDE_LIMIT {
        return Err(fault(KeepalivedErrorKind::IncludeTooDeep {
            path,
            limit: INCLUDE_LIMIT,
        }));
    }
    let text = read(&path).map_err(fault)?;
    let file = files.add(path);
    tokenise(&text, file, files, read, depth + 1, out)
}

/// The tokens of one line, without its end-of-line token.
fn line_tokens(line: &str, file: usize, number: usize) -> Result<Vec<Token>, Fault> {
    let chars: Vec<char> = line.chars().collect();
    let pos = |index: usize| Pos {
        file,
        line: number,
        column: index + 1,
    };
    let mut out = Vec::new();
    let mut word: Option<(usize, String)> = None;
    let flush = |word: &mut Option<(usize, String)>, out: &mut Vec<Token>| {
        if let Some((start, text)) = word.take() {
            out.push(Token {
                kind: TokenKind::Word(text),
                pos: pos(start),
            });
        }
    };
    let mut index = 0;
    while let Some(&c) = chars.get(index) {
        match c {
            '#' | '!' => break,
            '{' | '}' => {
                flush(&mut word, &mut out);
                let kind = if c == '{' {
                    TokenKind::Open
                } else {
                    TokenKind::Close
                };
                out.push(Token {
                    kind,
                    pos: pos(index),
                });
            }
            '"' => {
                if let Some((_, text)) = word.take() {
                    return Err(Fault::at(
                        pos(index),
                        KeepalivedErrorKind::QuoteInsideWord {
                            word: format!("{text}\""),
                        },
                    ));
                }
                let rest = chars.get(index + 1..).unwrap_or_default();
                let Some(length) = rest.iter().position(|&c| c == '"') else {
                    return Err(Fault::at(
                        pos(index),
                        KeepalivedErrorKind::UnterminatedQuote,
                    ));
                };
                let quoted: String = rest.iter().take(length).collect();
                let after = index + length + 2;
                if chars
                    .get(after)
                    .is_some_and(|&c| !(c.is_whitespace() || matches!(c, '{' | '}' | '#' | '!')))
                {
                    return Err(Fault::at(
                        pos(after),
                        KeepalivedErrorKind::TextAfterQuote { quoted },
                    ));
                }
                out.push(Token {
                    kind: TokenKind::Word(quoted),
                    pos: pos(index),
                });
                index = after;
                continue;
            }
            c if c.is_whitespace() => flush(&mut word, &mut out),
            c => match &mut word {
                Some((_, text)) => text.push(c),
                None => word = Some((index, c.to_string())),
            },
        }
        index += 1;
    }
    flush(&mut word, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line_tokens(line, 0, 1)
            .unwrap()
            .into_iter()
            .map(|token| match token.kind {
                TokenKind::Word(word) => word,
                TokenKind::Open => "{".to_owned(),
                TokenKind::Close => "}".to_owned(),
                TokenKind::EndOfLine => "EOL".to_owned(),
            })
            .collect()
    }

    #[test]
    fn splits_words_braces_and_comments() {
        assert_eq!(words("  a  b\t c "), ["a", "b", "c"]);
        assert_eq!(words("vip{ 1.2.3.4 }x"), ["vip", "{", "1.2.3.4", "}", "x"]);
        assert_eq!(words("a # b"), ["a"]);
        assert_eq!(words("abc#def"), ["abc"]);
        assert_eq!(words("abc!def ghi"), ["abc"]);
        assert_eq!(words("! all comment"), Vec::<String>::new());
    }

    #[test]
    fn quotes_keep_whitespace_and_comment_characters() {
        assert_eq!(words(r#"script "a b # c!""#), ["script", "a b # c!"]);
        assert_eq!(words(r#"x "" y"#), ["x", "", "y"]);
        assert_eq!(words(r#"x "a"{"#), ["x", "a", "{"]);
        assert_eq!(words(r"p ab\x41 'q'"), ["p", r"ab\x41", "'q'"]);
    }

    #[test]
    fn refuses_glued_or_unterminated_quotes() {
        let kind = |line: &str| *line_tokens(line, 0, 1).unwrap_err().kind;
        assert_eq!(kind(r#"p "abc"#), KeepalivedErrorKind::UnterminatedQuote);
        assert!(matches!(
            kind(r#"p ab"c d""#),
            KeepalivedErrorKind::QuoteInsideWord { .. }
        ));
        assert!(matches!(
            kind(r#"p "ab"cd"#),
            KeepalivedErrorKind::TextAfterQuote { .. }
        ));
    }

    #[test]
    fn columns_count_characters() {
        let tokens = line_tokens("é  x", 0, 3).unwrap();
        let x = tokens.get(1).unwrap();
        assert_eq!((x.pos.line, x.pos.column), (3, 4));
    }
}
