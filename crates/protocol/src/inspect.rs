//! Reading the contents of a complete reply.
//!
//! The proxy looks inside a few replies: it sums the integers of split `DEL` fragments,
//! copies the elements of split `MGET` fragments into one merged array, checks that split
//! `MSET` fragments said `+OK`, and recognises backend errors such as `-READONLY` or `-LOADING`
//! by their code. These helpers take one complete reply, such as the bytes of a
//! [`crate::ReplyFrame`], skip any attribute before it, and never copy. On input that is not a
//! well-formed reply they return `None` (or stop early) rather than panic.

use std::ops::Range;

use memchr::memchr;

use crate::reply::{Header, ReplyParser, Shape};
use crate::reply_type::ReplyType;
use crate::scan::parse_i64;

/// The value of an integer reply (`:42\r\n`), or `None` for any other reply.
pub fn parse_integer_reply(reply: &[u8]) -> Option<i64> {
    let value = value_of(reply)?;
    match value.first()? {
        b':' => parse_i64(first_line(value)?.0),
        _ => None,
    }
}

/// The bytes of a bulk string (`$3\r\nfoo\r\n`) or simple string (`+foo\r\n`) reply, or
/// `None` for any other reply (a null bulk string included).
pub fn string_value(reply: &[u8]) -> Option<&[u8]> {
    let value = value_of(reply)?;
    let (line, after) = first_line(value)?;
    match value.first()? {
        b'+' => Some(line),
        b'$' => {
            let len = usize::try_from(parse_i64(line)?).ok()?;
            value.get(after..after.checked_add(len)?)
        }
        _ => None,
    }
}

/// Whether the reply is the status `+OK`.
pub fn is_ok_status(reply: &[u8]) -> bool {
    value_of(reply).is_some_and(|value| value.starts_with(b"+OK\r\n"))
}

/// The code of an error reply: its first word, such as `ERR`, `READONLY`, `OOM`, `BUSY`,
/// `LOADING`, `NOAUTH` or `WRONGPASS`. `None` for a reply that is not an error (`-` or `!`)
/// or whose text starts with a space.
pub fn error_code(reply: &[u8]) -> Option<&[u8]> {
    let value = value_of(reply)?;
    let (line, after) = first_line(value)?;
    let text = match value.first()? {
        b'-' => line,
        b'!' => {
            let len = usize::try_from(parse_i64(line)?).ok()?;
            value.get(after..after.checked_add(len)?)?
        }
        _ => return None,
    };
    let code = text.split(|&byte| byte == b' ').next()?;
    (!code.is_empty()).then_some(code)
}

/// The elements of an array, set, push or map reply, as byte ranges of `reply`.
///
/// `None` for a reply of another type and for the null array `*-1`. A map yields its keys and
/// values alternately. An element preceded by an attribute is yielded together with it.
pub fn elements(reply: &[u8]) -> Option<Elements<'_>> {
    let start = skip_attributes(reply)?;
    let value = reply.get(start..)?;
    let header = header(value)?;
    let is_list = matches!(
        header.kind,
        ReplyType::Array | ReplyType::Set | ReplyType::Push | ReplyType::Map
    );
    match header.shape {
        Shape::Children(count) if is_list && !header.null => Some(Elements {
            reply,
            pos: start + first_line(value)?.1,
            remaining: count,
            declared: count,
        }),
        _ => None,
    }
}

/// An iterator over the elements of a complete aggregate reply; see [`elements`].
#[derive(Debug, Clone)]
pub struct Elements<'a> {
    reply: &'a [u8],
    pos: usize,
    remaining: u64,
    declared: u64,
}

impl Elements<'_> {
    /// The number of elements the aggregate's header announces (twice the number of pairs for
    /// a map). A well-formed reply yields exactly this many.
    pub fn declared_len(&self) -> u64 {
        self.declared
    }
}

impl Iterator for Elements<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        if self.remaining == 0 {
            return None;
        }
        match skip_value(self.reply, self.pos) {
            Some(end) => {
                let range = self.pos..end;
                self.pos = end;
                self.remaining -= 1;
                Some(range)
            }
            None => {
                self.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, usize::try_from(self.remaining).ok())
    }
}

/// The value of `reply` after any attributes before it.
fn value_of(reply: &[u8]) -> Option<&[u8]> {
    reply.get(skip_attributes(reply)?..)
}

/// The offset of the value of `reply` after any attributes before it.
fn skip_attributes(reply: &[u8]) -> Option<usize> {
    let mut pos = 0;
    while reply.get(pos) == Some(&b'|') {
        let attribute = reply.get(pos..)?;
        let Shape::Children(children) = header(attribute)?.shape else {
            return None;
        };
        pos += first_line(attribute)?.1;
        // An attribute's children end with the value it annotates, which is not skipped.
        for _ in 1..children {
            pos = skip_value(reply, pos)?;
        }
    }
    Some(pos)
}

/// The offset just after the complete value that starts at `pos`.
fn skip_value(reply: &[u8], pos: usize) -> Option<usize> {
    let frame = ReplyParser::new().parse(reply.get(pos..)?).ok()??;
    Some(pos + frame.byte_len())
}

/// The header of the value at the start of `value`.
fn header(value: &[u8]) -> Option<Header> {
    let kind = ReplyType::from_byte(*value.first()?)?;
    Header::decode(kind, first_line(value)?.0).ok()
}

/// The text of the first line of `value` (between its type byte and its CRLF), and the offset
/// just after that line.
fn first_line(value: &[u8]) -> Option<(&[u8], usize)> {
    let cr = memchr(b'\r', value)?;
    if value.get(cr + 1) != Some(&b'\n') {
        return None;
    }
    Some((value.get(1..cr)?, cr + 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::XorShift;

    #[test]
    fn bulk_and_simple_strings() {
        assert_eq!(
            string_value(b"$9\r\nsubscribe\r\n"),
            Some(&b"subscribe"[..])
        );
        assert_eq!(string_value(b"+pong\r\n"), Some(&b"pong"[..]));
        assert_eq!(string_value(b"$0\r\n\r\n"), Some(&b""[..]));
        assert_eq!(string_value(b"$-1\r\n"), None);
        assert_eq!(string_value(b":1\r\n"), None);
        assert_eq!(string_value(b"$5\r\nab\r\n"), None);
    }

    fn collect(reply: &[u8]) -> Vec<&[u8]> {
        elements(reply)
            .expect("an aggregate")
            .map(|range| &reply[range])
            .collect()
    }

    #[test]
    fn integer_replies() {
        assert_eq!(parse_integer_reply(b":42\r\n"), Some(42));
        assert_eq!(parse_integer_reply(b":0\r\n"), Some(0));
        assert_eq!(parse_integer_reply(b":-1\r\n"), Some(-1));
        assert_eq!(
            parse_integer_reply(b":9223372036854775807\r\n"),
            Some(i64::MAX)
        );
        assert_eq!(parse_integer_reply(b"|1\r\n+a\r\n+b\r\n:5\r\n"), Some(5));
        for other in [
            &b""[..],
            b":",
            b":12",
            b":12\r",
            b":1x\r\n",
            b"+42\r\n",
            b"$2\r\n42\r\n",
            b"-ERR 42\r\n",
            b":9223372036854775808\r\n",
        ] {
            assert_eq!(parse_integer_reply(other), None, "{other:?}");
        }
    }

    #[test]
    fn ok_status() {
        assert!(is_ok_status(b"+OK\r\n"));
        assert!(is_ok_status(b"|1\r\n+a\r\n:1\r\n+OK\r\n"));
        for other in [
            &b""[..],
            b"+OK",
            b"+OKAY\r\n",
            b"+ok\r\n",
            b"-OK\r\n",
            b"$2\r\nOK\r\n",
            b"+QUEUED\r\n",
        ] {
            assert!(!is_ok_status(other), "{other:?}");
        }
    }

    #[test]
    fn error_codes() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"-ERR unknown command 'foo'\r\n", b"ERR"),
            (
                b"-READONLY You can't write against a read only replica.\r\n",
                b"READONLY",
            ),
            (
                b"-OOM command not allowed when used memory > 'maxmemory'.\r\n",
                b"OOM",
            ),
            (b"-BUSY Redis is busy running a script.\r\n", b"BUSY"),
            (b"-BUSYKEY Target key name already exists.\r\n", b"BUSYKEY"),
            (
                b"-LOADING Redis is loading the dataset in memory\r\n",
                b"LOADING",
            ),
            (b"-NOAUTH Authentication required.\r\n", b"NOAUTH"),
            (
                b"-WRONGPASS invalid username-password pair\r\n",
                b"WRONGPASS",
            ),
            (b"-ERR\r\n", b"ERR"),
            (b"!21\r\nSYNTAX invalid syntax\r\n", b"SYNTAX"),
            (b"!4\r\nOOPS\r\n", b"OOPS"),
            (b"|1\r\n+a\r\n+b\r\n-MOVED 1 x\r\n", b"MOVED"),
        ];
        for &(reply, code) in cases {
            assert_eq!(error_code(reply), Some(code), "{reply:?}");
        }
        for other in [
            &b""[..],
            b"-\r\n",
            b"- leading space\r\n",
            b"-ERR",
            b"+OK\r\n",
            b":1\r\n",
            b"$3\r\nERR\r\n",
            b"!9\r\nSHORT\r\n",
            b"!x\r\nBAD\r\n",
        ] {
            assert_eq!(error_code(other), None, "{other:?}");
        }
    }

    #[test]
    fn mget_elements() {
        let reply = b"*4\r\n$1\r\na\r\n$-1\r\n$2\r\nbc\r\n$0\r\n\r\n";
        let items = elements(reply).unwrap();
        assert_eq!(items.declared_len(), 4);
        assert_eq!(
            collect(reply),
            [
                &b"$1\r\na\r\n"[..],
                b"$-1\r\n",
                b"$2\r\nbc\r\n",
                b"$0\r\n\r\n"
            ]
        );
    }

    #[test]
    fn elements_of_every_aggregate() {
        assert_eq!(
            collect(b"*2\r\n*2\r\n:1\r\n:2\r\n+x\r\n"),
            [&b"*2\r\n:1\r\n:2\r\n"[..], b"+x\r\n"]
        );
        assert_eq!(
            collect(b"%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n"),
            [&b"+a\r\n"[..], b":1\r\n", b"+b\r\n", b":2\r\n"]
        );
        assert_eq!(elements(b"%2\r\n").unwrap().declared_len(), 4);
        assert_eq!(collect(b"~1\r\n#t\r\n"), [&b"#t\r\n"[..]]);
        assert_eq!(
            collect(b">2\r\n+invalidate\r\n*1\r\n$1\r\nk\r\n"),
            [&b"+invalidate\r\n"[..], b"*1\r\n$1\r\nk\r\n"]
        );
        assert!(collect(b"*0\r\n").is_empty());
    }

    #[test]
    fn elements_with_attributes() {
        let reply = b"|1\r\n+a\r\n+b\r\n*2\r\n|1\r\n+c\r\n+d\r\n:1\r\n:2\r\n";
        let ranges: Vec<Range<usize>> = elements(reply).unwrap().collect();
        assert_eq!(ranges, [16..32, 32..36]);
        assert_eq!(&reply[16..32], b"|1\r\n+c\r\n+d\r\n:1\r\n");
    }

    #[test]
    fn elements_of_other_replies() {
        for other in [
            &b""[..],
            b"*-1\r\n",
            b"$3\r\nfoo\r\n",
            b"+OK\r\n",
            b"-ERR x\r\n",
            b"_\r\n",
            b"*x\r\n",
            b"*1",
            b"*1\rx",
        ] {
            assert!(elements(other).is_none(), "{other:?}");
        }
    }

    #[test]
    fn truncated_aggregate_stops_early() {
        let reply = b"*3\r\n$1\r\na\r\n$5\r\nab";
        let mut items = elements(reply).unwrap();
        assert_eq!(items.next(), Some(4..11));
        assert_eq!(items.next(), None);
        assert_eq!(items.next(), None);
        assert_eq!(items.size_hint(), (0, Some(0)));
    }

    #[test]
    fn random_garbage_never_panics() {
        let alphabet = b"+-:$*_#,(!=%~>|\r\n0123456789 OKER";
        let mut rng = XorShift(99);
        for _ in 0..5000 {
            let len = rng.below(30);
            let input: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            parse_integer_reply(&input);
            is_ok_status(&input);
            if let Some(code) = error_code(&input) {
                assert!(!code.is_empty());
            }
            if let Some(items) = elements(&input) {
                for range in items {
                    assert!(range.end <= input.len());
                }
            }
        }
    }
}
