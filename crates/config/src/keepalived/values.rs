//! Reading one statement's values the way keepalived 2.2 does, but strictly: exactly the
//! values a keyword takes, decimal integers without sign, decimals with at most six fractional
//! digits (keepalived's timer resolution is a microsecond), and literal IP addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::RangeInclusive;

use super::error::{Fault, KeepalivedErrorKind};
use super::tree::{Block, Statement, Word};

fn fault(statement: &Statement, kind: KeepalivedErrorKind) -> Fault {
    Fault::keyword(statement.keyword.pos, &statement.keyword.text, kind)
}

fn word_fault(statement: &Statement, word: &Word, kind: KeepalivedErrorKind) -> Fault {
    Fault::keyword(word.pos, &statement.keyword.text, kind)
}

/// The statement's block, which it must have.
pub(crate) fn block(statement: &Statement) -> Result<&Block, Fault> {
    statement.block.as_ref().ok_or_else(|| {
        fault(
            statement,
            KeepalivedErrorKind::ExpectedBlock {
                keyword: statement.keyword.text.clone(),
            },
        )
    })
}

/// Refuses a block after a keyword that takes none.
pub(crate) fn no_block(statement: &Statement) -> Result<(), Fault> {
    match &statement.block {
        Some(block) => Err(Fault::keyword(
            block.open,
            &statement.keyword.text,
            KeepalivedErrorKind::UnexpectedBlock {
                keyword: statement.keyword.text.clone(),
            },
        )),
        None => Ok(()),
    }
}

/// The statement's only value (and no block).
pub(crate) fn single<'a>(
    statement: &'a Statement,
    expected: &'static str,
) -> Result<&'a Word, Fault> {
    no_block(statement)?;
    let first = statement.values.first().ok_or_else(|| {
        fault(
            statement,
            KeepalivedErrorKind::MissingValue {
                keyword: statement.keyword.text.clone(),
                expected,
            },
        )
    })?;
    no_more(statement, 1, expected)?;
    Ok(first)
}

/// Refuses values from index `count` on.
pub(crate) fn no_more(
    statement: &Statement,
    count: usize,
    expected: &'static str,
) -> Result<(), Fault> {
    match statement.values.get(count) {
        Some(extra) => Err(word_fault(
            statement,
            extra,
            KeepalivedErrorKind::ExtraValue {
                keyword: statement.keyword.text.clone(),
                value: extra.text.clone(),
                expected,
            },
        )),
        None => Ok(()),
    }
}

/// A keyword that stands alone: no values, no block.
pub(crate) fn flag(statement: &Statement) -> Result<(), Fault> {
    no_block(statement)?;
    no_more(statement, 0, "nothing after it")
}

/// A decimal integer in `range`.
pub(crate) fn integer(
    statement: &Statement,
    range: RangeInclusive<u32>,
    expected: &'static str,
) -> Result<u32, Fault> {
    let word = single(statement, expected)?;
    let kind = |value: &str| -> KeepalivedErrorKind {
        KeepalivedErrorKind::NotANumber {
            keyword: statement.keyword.text.clone(),
            value: value.to_owned(),
            expected,
        }
    };
    if word.text.is_empty() || !word.text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(word_fault(statement, word, kind(&word.text)));
    }
    match word.text.parse::<u32>() {
        Ok(number) if range.contains(&number) => Ok(number),
        _ => Err(word_fault(
            statement,
            word,
            KeepalivedErrorKind::OutOfRange {
                keyword: statement.keyword.text.clone(),
                value: word.text.clone(),
                expected,
            },
        )),
    }
}

/// The statement's only value as a decimal number of seconds, in microseconds, with the word
/// it was read from.
pub(crate) fn seconds<'a>(
    statement: &'a Statement,
    expected: &'static str,
) -> Result<(u64, &'a Word), Fault> {
    let word = single(statement, expected)?;
    let micros = micros(&word.text).ok_or_else(|| {
        word_fault(
            statement,
            word,
            KeepalivedErrorKind::NotANumber {
                keyword: statement.keyword.text.clone(),
                value: word.text.clone(),
                expected,
            },
        )
    })?;
    Ok((micros, word))
}

/// A decimal number of seconds such as `3`, `0.25` or `1.000`, in microseconds; `None` when it
/// is not written that way (or is absurdly large).
fn micros(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if whole.is_empty() || whole.len() > 9 || !digits(whole) || !digits(fraction) {
        return None;
    }
    if text.contains('.') && fraction.is_empty() || fraction.len() > 6 {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let padded = format!("{fraction:0<6}");
    let fraction: u64 = padded.parse().ok()?;
    Some(whole * 1_000_000 + fraction)
}

/// A literal IPv4 or IPv6 address.
pub(crate) fn address(statement: &Statement, word: &Word) -> Result<IpAddr, Fault> {
    word.text.parse().map_err(|_| {
        word_fault(
            statement,
            word,
            KeepalivedErrorKind::InvalidAddress {
                keyword: statement.keyword.text.clone(),
                value: word.text.clone(),
            },
        )
    })
}

/// The keywords set so far in one block (or one kind of block), to refuse a second one.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    lines: HashMap<String, usize>,
}

impl Seen {
    pub fn once(&mut self, statement: &Statement, context: &'static str) -> Result<(), Fault> {
        let keyword = &statement.keyword;
        match self.lines.insert(keyword.text.clone(), keyword.pos.line) {
            Some(first_line) => Err(fault(
                statement,
                KeepalivedErrorKind::Duplicate {
                    keyword: keyword.text.clone(),
                    context,
                    first_line,
                },
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_reads_plain_decimals_only() {
        assert_eq!(micros("1"), Some(1_000_000));
        assert_eq!(micros("0.25"), Some(250_000));
        assert_eq!(micros("1.000"), Some(1_000_000));
        assert_eq!(micros("0.000001"), Some(1));
        for bad in [
            "",
            ".5",
            "1.",
            "1.0000001",
            "-1",
            "+1",
            "1e3",
            "1s",
            "0x10",
            "1 ",
        ] {
            assert_eq!(micros(bad), None, "{bad:?}");
        }
    }
}
