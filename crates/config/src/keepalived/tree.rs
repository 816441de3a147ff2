//! The block structure of a keepalived.conf: statements of a keyword and its values on one
//! line, each optionally followed by a `{ ... }` block whose '{' may end the line or start the
//! next one. A '}' ends a block wherever it stands (after values on the same line, too), as in
//! keepalived. What the keywords mean is left to `config` and `instance`.

use super::error::{Fault, KeepalivedErrorKind, Pos};
use super::lex::{Token, TokenKind};

/// How deep blocks may nest; keepalived's own go three deep.
const DEPTH_LIMIT: usize = 8;

/// Keywords that only make sense at the top level: one of them inside a block that is never
/// closed points at the missing '}'.
const TOP_LEVEL: &[&str] = &[
    "global_defs",
    "vrrp_instance",
    "vrrp_script",
    "vrrp_sync_group",
    "virtual_server",
    "virtual_server_group",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    pub text: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement {
    pub keyword: Word,
    pub values: Vec<Word>,
    pub block: Option<Block>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    /// The position of the '{'.
    pub open: Pos,
    pub body: Vec<Statement>,
}

/// Builds the statements of a whole file.
pub(crate) fn statements(tokens: Vec<Token>) -> Result<Vec<Statement>, Fault> {
    let mut cursor = Cursor { tokens, at: 0 };
    body(&mut cursor, None, 0)
}

/// The tokens, and the index of the next one.
struct Cursor {
    tokens: Vec<Token>,
    at: usize,
}

impl Cursor {
    fn peek_kind(&self, offset: usize) -> Option<&TokenKind> {
        self.tokens.get(self.at + offset).map(|token| &token.kind)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += usize::from(token.is_some());
        token
    }
}

/// The keyword whose block is being read, and where its '{' is.
struct Opened<'a> {
    keyword: &'a Word,
    open: Pos,
}

fn body(
    tokens: &mut Cursor,
    opened: Option<&Opened<'_>>,
    depth: usize,
) -> Result<Vec<Statement>, Fault> {
    let mut out: Vec<Statement> = Vec::new();
    loop {
        let Some(token) = tokens.next() else {
            return match opened {
                None => Ok(out),
                Some(opened) => Err(unclosed(opened, &out)),
            };
        };
        match token.kind {
            TokenKind::EndOfLine => {}
            TokenKind::Close => {
                return match opened {
                    Some(_) => Ok(out),
                    None => Err(Fault::at(token.pos, KeepalivedErrorKind::StrayClose)),
                };
            }
            TokenKind::Open => return Err(Fault::at(token.pos, KeepalivedErrorKind::StrayOpen)),
            TokenKind::Word(text) => {
                let keyword = Word {
                    text,
                    pos: token.pos,
                };
                out.push(statement(tokens, keyword, depth)?);
            }
        }
    }
}

fn statement(tokens: &mut Cursor, keyword: Word, depth: usize) -> Result<Statement, Fault> {
    let mut values = Vec::new();
    while let Some(TokenKind::Word(_)) = tokens.peek_kind(0) {
        if let Some(Token {
            kind: TokenKind::Word(text),
            pos,
        }) = tokens.next()
        {
            values.push(Word { text, pos });
        }
    }
    // A '{' may stand at the start of a following line.
    let mut ahead = 0;
    while tokens.peek_kind(ahead) == Some(&TokenKind::EndOfLine) {
        ahead += 1;
    }
    if tokens.peek_kind(ahead) == Some(&TokenKind::Open) {
        tokens.at += ahead;
    }
    let open = match tokens.peek_kind(0) {
        Some(TokenKind::Open) => tokens.next(),
        _ => None,
    };
    let block = match open {
        None => None,
        Some(open) if depth >= DEPTH_LIMIT => {
            return Err(Fault::at(
                open.pos,
                KeepalivedErrorKind::TooDeep { limit: DEPTH_LIMIT },
            ));
        }
        Some(open) => {
            let opened = Opened {
                keyword: &keyword,
                open: open.pos,
            };
            let body = body(tokens, Some(&opened), depth + 1)?;
            Some(Block {
                open: open.pos,
                body,
            })
        }
    };
    Ok(Statement {
        keyword,
        values,
        block,
    })
}

fn unclosed(opened: &Opened<'_>, body: &[Statement]) -> Fault {
    let hint = body
        .iter()
        .find(|statement| TOP_LEVEL.contains(&statement.keyword.text.as_str()))
        .map(|statement| {
            format!(
                " (\"{}\" on line {} is inside it: is a '}}' missing before it?)",
                statement.keyword.text, statement.keyword.pos.line
            )
        })
        .unwrap_or_default();
    Fault::keyword(
        opened.open,
        &opened.keyword.text,
        KeepalivedErrorKind::UnclosedBlock {
            keyword: opened.keyword.text.clone(),
            line: opened.open.line,
            hint,
        },
    )
}
