//! Writing the replies and requests the proxy makes itself.
//!
//! Replies: `+PONG` and `+OK`, errors such as `-ERR ...`, `-NOAUTH ...` or `-TRYAGAIN ...`,
//! merged results of split commands (`:<sum>`, an `MGET` array header followed by element
//! bytes copied from the fragments), and whatever a locally answered command returns. Where
//! RESP3 has a type RESP2 lacks, the function takes the client's [`Protocol`] and writes the
//! RESP2 fallback Redis itself uses. Requests: backend sub-requests of split commands
//! (`*3\r\n$4\r\nmget\r\n...`) and inline requests re-encoded as RESP before forwarding.
//!
//! Every function appends to a [`BufMut`], such as a `Vec<u8>` or a `BytesMut`, and allocates
//! nothing itself (a growable buffer may grow). Numbers are formatted on the stack. Text
//! written inside a line (simple strings and error messages) has any CR or LF replaced by a
//! space, as Redis does, so a message can never break the framing.

use std::fmt::{self, Write as _};

use bytes::BufMut;
use memchr::memchr2;

use crate::Protocol;

const CRLF: &[u8] = b"\r\n";

/// Writes a simple string: `+<text>\r\n`.
pub fn simple_string<B: BufMut>(out: &mut B, text: &[u8]) {
    out.put_u8(b'+');
    put_line_text(out, text);
    out.put_slice(CRLF);
}

/// Writes an error with the given code: `-<code> <message>\r\n`, or `-<code>\r\n` for an
/// empty message. For example `error(out, b"NOAUTH", b"Authentication required")`.
pub fn error<B: BufMut>(out: &mut B, code: &[u8], message: &[u8]) {
    out.put_u8(b'-');
    put_line_text(out, code);
    if !message.is_empty() {
        out.put_u8(b' ');
        put_line_text(out, message);
    }
    out.put_slice(CRLF);
}

/// Writes a generic error: `-ERR <message>\r\n`.
pub fn err<B: BufMut>(out: &mut B, message: &[u8]) {
    error(out, b"ERR", message);
}

/// Writes an error whose message is formatted: `-<code> <message>\r\n`, without allocating.
/// For example `error_fmt(out, b"ERR", format_args!("{protocol_error}"))` or a message naming
/// a shard.
pub fn error_fmt<B: BufMut>(out: &mut B, code: &[u8], message: fmt::Arguments<'_>) {
    out.put_u8(b'-');
    put_line_text(out, code);
    out.put_u8(b' ');
    // The writer never fails, so neither does formatting into it.
    let _ = LineWriter(out).write_fmt(message);
    out.put_slice(CRLF);
}

/// Writes an integer: `:<value>\r\n`.
pub fn integer<B: BufMut>(out: &mut B, value: i64) {
    put_number_line(out, b':', value);
}

/// Writes a bulk string: `$<len>\r\n<data>\r\n`.
pub fn bulk_string<B: BufMut>(out: &mut B, data: &[u8]) {
    put_number_line(out, b'$', data.len());
    out.put_slice(data);
    out.put_slice(CRLF);
}

/// Writes a null: `_\r\n` in RESP3, the null bulk string `$-1\r\n` in RESP2.
pub fn null<B: BufMut>(out: &mut B, protocol: Protocol) {
    out.put_slice(match protocol {
        Protocol::Resp2 => b"$-1\r\n",
        Protocol::Resp3 => b"_\r\n",
    });
}

/// Writes a null array: `_\r\n` in RESP3, `*-1\r\n` in RESP2.
pub fn null_array<B: BufMut>(out: &mut B, protocol: Protocol) {
    out.put_slice(match protocol {
        Protocol::Resp2 => b"*-1\r\n",
        Protocol::Resp3 => b"_\r\n",
    });
}

/// Writes the header of an array of `len` elements: `*<len>\r\n`. The caller then writes
/// the elements.
pub fn array_header<B: BufMut>(out: &mut B, len: usize) {
    put_number_line(out, b'*', len);
}

/// Writes the header of a map of `pairs` key-value pairs: `%<pairs>\r\n` in RESP3, an array of
/// twice as many elements in RESP2. The caller then writes keys and values alternately.
pub fn map_header<B: BufMut>(out: &mut B, protocol: Protocol, pairs: usize) {
    match protocol {
        Protocol::Resp2 => put_number_line(out, b'*', u128::from(pairs as u64) * 2),
        Protocol::Resp3 => put_number_line(out, b'%', pairs),
    }
}

/// Writes the header of a set of `len` elements: `~<len>\r\n` in RESP3, `*<len>\r\n` in RESP2.
pub fn set_header<B: BufMut>(out: &mut B, protocol: Protocol, len: usize) {
    let prefix = match protocol {
        Protocol::Resp2 => b'*',
        Protocol::Resp3 => b'~',
    };
    put_number_line(out, prefix, len);
}

/// Writes a verbatim string with a three-byte format such as `*b"txt"` or `*b"mkd"`:
/// `=<len>\r\n<format>:<text>\r\n` in RESP3, a bulk string of `text` in RESP2.
pub fn verbatim_string<B: BufMut>(out: &mut B, protocol: Protocol, format: &[u8; 3], text: &[u8]) {
    match protocol {
        Protocol::Resp2 => bulk_string(out, text),
        Protocol::Resp3 => {
            put_number_line(out, b'=', text.len() as u64 + 4);
            out.put_slice(format);
            out.put_u8(b':');
            out.put_slice(text);
            out.put_slice(CRLF);
        }
    }
}

/// Writes a boolean: `#t\r\n` or `#f\r\n` in RESP3, the integer `:1\r\n` or `:0\r\n` in RESP2.
pub fn boolean<B: BufMut>(out: &mut B, protocol: Protocol, value: bool) {
    out.put_slice(match (protocol, value) {
        (Protocol::Resp2, true) => b":1\r\n",
        (Protocol::Resp2, false) => b":0\r\n",
        (Protocol::Resp3, true) => b"#t\r\n",
        (Protocol::Resp3, false) => b"#f\r\n",
    });
}

/// Writes a double: `,<value>\r\n` in RESP3, a bulk string of the same text in RESP2.
///
/// The text is the shortest that reads back as the same `f64` (`1.5`, `3`, `1e-7`), or
/// `inf`, `-inf`, `nan`.
pub fn double<B: BufMut>(out: &mut B, protocol: Protocol, value: f64) {
    let text = DoubleText::new(value);
    match protocol {
        Protocol::Resp2 => bulk_string(out, text.as_bytes()),
        Protocol::Resp3 => {
            out.put_u8(b',');
            out.put_slice(text.as_bytes());
            out.put_slice(CRLF);
        }
    }
}

/// Writes a request as an array of bulk strings: `*<n>\r\n` then `$<len>\r\n<arg>\r\n` for
/// each argument.
///
/// Builds backend sub-requests, e.g. `request(out, [&b"mget"[..], key1, key2])`, and
/// re-encodes an inline request: `request(out, frame.args(buf))`.
pub fn request<'a, B, I>(out: &mut B, args: I)
where
    B: BufMut,
    I: IntoIterator<Item = &'a [u8]>,
    I::IntoIter: ExactSizeIterator,
{
    let args = args.into_iter();
    array_header(out, args.len());
    for arg in args {
        bulk_string(out, arg);
    }
}

/// Writes `<prefix><number>\r\n`.
fn put_number_line<B: BufMut, N: itoa::Integer>(out: &mut B, prefix: u8, number: N) {
    out.put_u8(prefix);
    out.put_slice(itoa::Buffer::new().format(number).as_bytes());
    out.put_slice(CRLF);
}

/// Writes `text` with every CR and LF replaced by a space.
fn put_line_text<B: BufMut>(out: &mut B, text: &[u8]) {
    let mut rest = text;
    while let Some(at) = memchr2(b'\r', b'\n', rest) {
        let (clean, tail) = rest.split_at(at);
        out.put_slice(clean);
        out.put_u8(b' ');
        rest = tail.get(1..).unwrap_or_default();
    }
    out.put_slice(rest);
}

/// Formats into a [`BufMut`] as line text (see [`put_line_text`]).
struct LineWriter<'a, B>(&'a mut B);

impl<B: BufMut> fmt::Write for LineWriter<'_, B> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        put_line_text(self.0, text.as_bytes());
        Ok(())
    }
}

/// The text of a double, formatted on the stack.
struct DoubleText {
    bytes: [u8; 32],
    len: usize,
}

impl DoubleText {
    /// Formats `value`: plain decimal for magnitudes in `[1e-5, 1e16)`, exponent notation
    /// outside it, so the text stays short; every form is the shortest that round-trips.
    fn new(value: f64) -> Self {
        let mut text = Self {
            bytes: [0; 32],
            len: 0,
        };
        // The longest text, such as `-2.2250738585072014e-308`, fits in 32 bytes, so
        // formatting cannot fail.
        let _ = if value.is_nan() {
            text.write_str("nan")
        } else if value.is_infinite() {
            text.write_str(if value > 0.0 { "inf" } else { "-inf" })
        } else if value == 0.0 || (1e-5..1e16).contains(&value.abs()) {
            write!(text, "{value}")
        } else {
            write!(text, "{value:e}")
        };
        text
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

impl fmt::Write for DoubleText {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let end = self.len + text.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ProtocolError, ReplyParser, ReplyType, RequestParser};

    /// Encodes with `write` and returns the bytes.
    fn encoded(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out);
        out
    }

    /// Parses `bytes` as exactly one reply and returns its type.
    fn reply_kind(bytes: &[u8]) -> ReplyType {
        let frame = ReplyParser::new().parse(bytes).unwrap().unwrap();
        assert_eq!(frame.byte_len(), bytes.len(), "{bytes:?}");
        frame.kind()
    }

    #[test]
    fn simple_strings_and_errors() {
        assert_eq!(encoded(|out| simple_string(out, b"PONG")), b"+PONG\r\n");
        assert_eq!(encoded(|out| simple_string(out, b"OK")), b"+OK\r\n");
        assert_eq!(
            encoded(|out| err(out, b"invalid password")),
            b"-ERR invalid password\r\n"
        );
        assert_eq!(
            encoded(|out| error(out, b"NOAUTH", b"Authentication required")),
            b"-NOAUTH Authentication required\r\n"
        );
        assert_eq!(
            encoded(|out| error(out, b"TRYAGAIN", b"")),
            b"-TRYAGAIN\r\n"
        );
        assert_eq!(reply_kind(b"-TRYAGAIN\r\n"), ReplyType::Error);
    }

    #[test]
    fn line_breaks_are_sanitised() {
        assert_eq!(
            encoded(|out| simple_string(out, b"a\r\nb\nc\r")),
            b"+a  b c \r\n"
        );
        assert_eq!(
            encoded(|out| error(out, b"E\nR", b"x\r\n*1")),
            b"-E R x  *1\r\n"
        );
        let bytes = encoded(|out| error_fmt(out, b"ERR", format_args!("shard {}\r\n+OK", "a")));
        assert_eq!(bytes, b"-ERR shard a  +OK\r\n");
        assert_eq!(reply_kind(&bytes), ReplyType::Error);
    }

    #[test]
    fn formatted_errors() {
        let error = ProtocolError::ExpectedBulk(b'x');
        assert_eq!(
            encoded(|out| error_fmt(out, b"ERR", format_args!("{error}"))),
            b"-ERR Protocol error: expected '$', got 'x'\r\n"
        );
        let bytes = encoded(|out| {
            error_fmt(
                out,
                b"ERR",
                format_args!("{}", ProtocolError::ExpectedBulk(b'\n')),
            )
        });
        assert_eq!(bytes, b"-ERR Protocol error: expected '$', got '\\x0a'\r\n");
    }

    #[test]
    fn integers() {
        assert_eq!(encoded(|out| integer(out, 0)), b":0\r\n");
        assert_eq!(encoded(|out| integer(out, -42)), b":-42\r\n");
        assert_eq!(
            encoded(|out| integer(out, i64::MIN)),
            b":-9223372036854775808\r\n"
        );
        for value in [0, 1, -1, 12345, i64::MAX, i64::MIN] {
            let bytes = encoded(|out| integer(out, value));
            assert_eq!(crate::parse_integer_reply(&bytes), Some(value));
        }
    }

    #[test]
    fn bulk_strings_and_nulls() {
        assert_eq!(encoded(|out| bulk_string(out, b"bar")), b"$3\r\nbar\r\n");
        assert_eq!(encoded(|out| bulk_string(out, b"")), b"$0\r\n\r\n");
        assert_eq!(
            encoded(|out| bulk_string(out, b"a\r\nb")),
            b"$4\r\na\r\nb\r\n"
        );
        assert_eq!(encoded(|out| null(out, Protocol::Resp2)), b"$-1\r\n");
        assert_eq!(encoded(|out| null(out, Protocol::Resp3)), b"_\r\n");
        assert_eq!(encoded(|out| null_array(out, Protocol::Resp2)), b"*-1\r\n");
        assert_eq!(encoded(|out| null_array(out, Protocol::Resp3)), b"_\r\n");
        for protocol in [Protocol::Resp2, Protocol::Resp3] {
            for bytes in [
                encoded(|out| null(out, protocol)),
                encoded(|out| null_array(out, protocol)),
            ] {
                assert!(ReplyParser::new().parse(&bytes).unwrap().unwrap().is_null());
            }
        }
    }

    #[test]
    fn aggregate_headers() {
        assert_eq!(encoded(|out| array_header(out, 3)), b"*3\r\n");
        assert_eq!(
            encoded(|out| map_header(out, Protocol::Resp3, 2)),
            b"%2\r\n"
        );
        assert_eq!(
            encoded(|out| map_header(out, Protocol::Resp2, 2)),
            b"*4\r\n"
        );
        assert_eq!(
            encoded(|out| set_header(out, Protocol::Resp3, 2)),
            b"~2\r\n"
        );
        assert_eq!(
            encoded(|out| set_header(out, Protocol::Resp2, 2)),
            b"*2\r\n"
        );
        assert_eq!(
            encoded(|out| map_header(out, Protocol::Resp2, usize::MAX)),
            format!("*{}\r\n", u128::from(usize::MAX as u64) * 2).into_bytes()
        );
    }

    #[test]
    fn aggregates_round_trip() {
        for (protocol, map_kind, set_kind) in [
            (Protocol::Resp2, ReplyType::Array, ReplyType::Array),
            (Protocol::Resp3, ReplyType::Map, ReplyType::Set),
        ] {
            let map = encoded(|out| {
                map_header(out, protocol, 2);
                bulk_string(out, b"server");
                simple_string(out, b"rampart");
                bulk_string(out, b"proto");
                integer(out, 3);
            });
            assert_eq!(reply_kind(&map), map_kind);
            assert_eq!(crate::elements(&map).unwrap().count(), 4);
            let set = encoded(|out| {
                set_header(out, protocol, 2);
                boolean(out, protocol, true);
                double(out, protocol, 2.5);
            });
            assert_eq!(reply_kind(&set), set_kind);
            assert_eq!(crate::elements(&set).unwrap().count(), 2);
        }
    }

    #[test]
    fn merged_mget_round_trips() {
        let fragment = b"*2\r\n$1\r\na\r\n$-1\r\n";
        let mut merged = Vec::new();
        array_header(&mut merged, 2);
        for range in crate::elements(fragment).unwrap() {
            merged.extend_from_slice(&fragment[range]);
        }
        assert_eq!(merged, fragment);
        assert_eq!(reply_kind(&merged), ReplyType::Array);
    }

    #[test]
    fn verbatim_strings() {
        let resp3 = encoded(|out| verbatim_string(out, Protocol::Resp3, b"txt", b"Some string"));
        assert_eq!(resp3, b"=15\r\ntxt:Some string\r\n");
        assert_eq!(reply_kind(&resp3), ReplyType::VerbatimString);
        let resp2 = encoded(|out| verbatim_string(out, Protocol::Resp2, b"txt", b"Some string"));
        assert_eq!(resp2, b"$11\r\nSome string\r\n");
        let empty = encoded(|out| verbatim_string(out, Protocol::Resp3, b"mkd", b""));
        assert_eq!(empty, b"=4\r\nmkd:\r\n");
        assert_eq!(reply_kind(&empty), ReplyType::VerbatimString);
    }

    #[test]
    fn booleans() {
        assert_eq!(
            encoded(|out| boolean(out, Protocol::Resp3, true)),
            b"#t\r\n"
        );
        assert_eq!(
            encoded(|out| boolean(out, Protocol::Resp3, false)),
            b"#f\r\n"
        );
        assert_eq!(
            encoded(|out| boolean(out, Protocol::Resp2, true)),
            b":1\r\n"
        );
        assert_eq!(
            encoded(|out| boolean(out, Protocol::Resp2, false)),
            b":0\r\n"
        );
        assert_eq!(reply_kind(b"#t\r\n"), ReplyType::Boolean);
    }

    #[test]
    fn doubles() {
        let cases: &[(f64, &[u8])] = &[
            (1.5, b"1.5"),
            (3.0, b"3"),
            (-0.25, b"-0.25"),
            (0.0, b"0"),
            (-0.0, b"-0"),
            (0.1 + 0.2, b"0.30000000000000004"),
            (1e-5, b"0.00001"),
            (1e-7, b"1e-7"),
            (1e16, b"1e16"),
            (123_456_789_012_345.6, b"123456789012345.6"),
            (f64::MAX, b"1.7976931348623157e308"),
            (-f64::MIN_POSITIVE, b"-2.2250738585072014e-308"),
            (5e-324, b"5e-324"),
            (f64::INFINITY, b"inf"),
            (f64::NEG_INFINITY, b"-inf"),
            (f64::NAN, b"nan"),
        ];
        for &(value, text) in cases {
            let resp3 = encoded(|out| double(out, Protocol::Resp3, value));
            assert_eq!(resp3, [b",", text, b"\r\n"].concat(), "{value}");
            assert_eq!(reply_kind(&resp3), ReplyType::Double);
            let resp2 = encoded(|out| double(out, Protocol::Resp2, value));
            let expected = encoded(|out| bulk_string(out, text));
            assert_eq!(resp2, expected, "{value}");
            let parsed: f64 = std::str::from_utf8(text).unwrap().parse().unwrap();
            assert!(
                parsed == value || (parsed.is_nan() && value.is_nan()),
                "{value}"
            );
        }
    }

    #[test]
    fn sub_requests_round_trip() {
        let keys: [&[u8]; 2] = [b"key:1", b"key:2"];
        let bytes = encoded(|out| request(out, [&b"mget"[..], keys[0], keys[1]]));
        assert_eq!(
            bytes,
            b"*3\r\n$4\r\nmget\r\n$5\r\nkey:1\r\n$5\r\nkey:2\r\n".as_slice()
        );
        let mut parser = RequestParser::new();
        let frame = parser.parse(&bytes).unwrap().unwrap();
        assert_eq!(frame.byte_len(), bytes.len());
        let args: Vec<&[u8]> = frame.args(&bytes).collect();
        assert_eq!(args, [&b"mget"[..], b"key:1", b"key:2"]);

        let binary: &[&[u8]] = &[b"SET", b"\r\n", b"", b"\0\xff"];
        let bytes = encoded(|out| request(out, binary.iter().copied()));
        let frame = parser.parse(&bytes).unwrap().unwrap();
        let args: Vec<&[u8]> = frame.args(&bytes).collect();
        assert_eq!(args, binary);
    }

    #[test]
    fn inline_requests_re_encode() {
        let inline = b"SET  key\tvalue\r\n";
        let mut parser = RequestParser::new();
        let frame = parser.parse(inline).unwrap().unwrap();
        assert!(frame.is_inline());
        let bytes = encoded(|out| request(out, frame.args(inline)));
        assert_eq!(
            bytes,
            b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n".as_slice()
        );
        let frame = parser.parse(&bytes).unwrap().unwrap();
        assert!(!frame.is_inline());
        assert_eq!(frame.argc(), 3);
    }

    #[test]
    fn encodes_into_bytes_mut() {
        let mut out = bytes::BytesMut::new();
        simple_string(&mut out, b"PONG");
        integer(&mut out, 7);
        assert_eq!(&out[..], b"+PONG\r\n:7\r\n");
    }
}
