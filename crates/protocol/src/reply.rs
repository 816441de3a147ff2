//! Backend reply framing.
//!
//! [`ReplyParser`] finds where a reply ends in a backend connection's read buffer, so the
//! proxy can pass the bytes to the client unchanged and pair the reply with its request. It
//! accepts every RESP2 and RESP3 type: simple string `+`, error `-`, integer `:`, bulk `$`
//! (with `$-1`), array `*` (with `*-1`), null `_`, boolean `#`, double `,`, big number `(`,
//! blob error `!`, verbatim string `=`, map `%`, set `~`, push `>` and attribute `|`. An
//! attribute and the reply it annotates form one frame. RESP3 streamed aggregates (`*?`)
//! are not accepted; Redis never sends them.
//!
//! The parser keeps no stack: a reply is complete when every element announced so far has
//! been read, so it counts the elements still owed. An aggregate header replaces the one
//! element it is with its children; an attribute adds its children and leaves the element it
//! annotates owed. Nesting therefore costs nothing and has no depth limit, and the state is a
//! few integers, resumable at any byte: a reply that arrives over many reads costs time
//! proportional to its size.

use crate::error::ProtocolError;
pub use crate::reply_type::ReplyType;
use crate::scan::{find_crlf, parse_i64};

/// What follows a value's header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// This many values follow; 0 for a value complete in its line. For a map the count is
    /// twice the number of pairs; for an attribute it also includes the annotated value.
    Children(u64),
    /// This many bytes of data and a CRLF follow.
    Body(usize),
}

/// The decoded header line of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: ReplyType,
    pub(crate) shape: Shape,
    /// Whether the value is a null (`_`, `$-1` or `*-1`).
    pub(crate) null: bool,
}

impl Header {
    /// Decodes the header of a `kind` value whose line (between the type byte and CRLF) is
    /// `line`.
    pub(crate) fn decode(kind: ReplyType, line: &[u8]) -> Result<Self, ProtocolError> {
        let invalid = ProtocolError::InvalidReplyValue(kind);
        let header = |shape, null| Ok(Self { kind, shape, null });
        match kind {
            ReplyType::SimpleString | ReplyType::Error => header(Shape::Children(0), false),
            ReplyType::Integer => match parse_i64(line) {
                Some(_) => header(Shape::Children(0), false),
                None => Err(invalid),
            },
            ReplyType::Null if line.is_empty() => header(Shape::Children(0), true),
            ReplyType::Boolean if matches!(line, b"t" | b"f") => header(Shape::Children(0), false),
            ReplyType::Double if is_double(line) => header(Shape::Children(0), false),
            ReplyType::BigNumber if is_big_number(line) => header(Shape::Children(0), false),
            ReplyType::Null | ReplyType::Boolean | ReplyType::Double | ReplyType::BigNumber => {
                Err(invalid)
            }
            ReplyType::BulkString | ReplyType::BlobError | ReplyType::VerbatimString => {
                let error = ProtocolError::InvalidBulkLength;
                match parse_i64(line).ok_or(error)? {
                    -1 if kind == ReplyType::BulkString => header(Shape::Children(0), true),
                    len => header(Shape::Body(usize::try_from(len).map_err(|_| error)?), false),
                }
            }
            ReplyType::Array
            | ReplyType::Map
            | ReplyType::Set
            | ReplyType::Push
            | ReplyType::Attribute => {
                let error = ProtocolError::InvalidAggregateLength;
                let count = match parse_i64(line).ok_or(error)? {
                    -1 if kind == ReplyType::Array => return header(Shape::Children(0), true),
                    count => u64::try_from(count).map_err(|_| error)?,
                };
                let children = match kind {
                    ReplyType::Map => count.checked_mul(2),
                    ReplyType::Attribute => count.checked_mul(2).and_then(|n| n.checked_add(1)),
                    _ => Some(count),
                };
                header(Shape::Children(children.ok_or(error)?), false)
            }
        }
    }
}

/// Whether `line` is a RESP3 double: `inf`, `-inf`, `nan`, or a decimal number with an
/// optional sign, fraction and exponent.
fn is_double(line: &[u8]) -> bool {
    if matches!(line, b"inf" | b"+inf" | b"-inf" | b"nan" | b"-nan") {
        return true;
    }
    let unsigned = line
        .strip_prefix(b"-")
        .or(line.strip_prefix(b"+"))
        .unwrap_or(line);
    let (mantissa, exponent) = match unsigned.iter().position(|&b| b == b'e' || b == b'E') {
        Some(at) => unsigned.split_at(at),
        None => (unsigned, &b""[..]),
    };
    let (integral, fraction) = match mantissa.iter().position(|&b| b == b'.') {
        Some(at) => mantissa.split_at(at),
        None => (mantissa, &b""[..]),
    };
    let digits = |text: &[u8]| text.iter().all(u8::is_ascii_digit);
    let fraction = fraction.get(1..).unwrap_or_default();
    let mantissa_ok =
        digits(integral) && digits(fraction) && !(integral.is_empty() && fraction.is_empty());
    let exponent_ok = match exponent.get(1..) {
        None => true,
        Some(power) => {
            let power = power
                .strip_prefix(b"-")
                .or(power.strip_prefix(b"+"))
                .unwrap_or(power);
            !power.is_empty() && digits(power)
        }
    };
    mantissa_ok && exponent_ok
}

/// Whether `line` is a RESP3 big number: an optional sign and at least one digit.
fn is_big_number(line: &[u8]) -> bool {
    let digits = line
        .strip_prefix(b"-")
        .or(line.strip_prefix(b"+"))
        .unwrap_or(line);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// A resumable, reusable framer of backend replies.
///
/// Call [`parse`](Self::parse) with a buffer that starts at the first unconsumed byte. When it
/// returns `Ok(None)`, read more bytes and call it again with the same buffer, grown (its start
/// unchanged). When it returns a frame, consume [`ReplyFrame::byte_len`] bytes from the front
/// of the buffer; the next call starts a new reply. After an error the stream is out of sync;
/// the parser is reset but the connection should be closed.
///
/// The parser owns no heap memory.
#[derive(Debug, Clone)]
pub struct ReplyParser {
    /// Offset of the next unread byte of the current reply.
    pos: usize,
    /// Values still owed before the reply is complete; 0 between replies.
    owed: u64,
    /// Bytes of the line starting at `pos` before `scan` hold no CR.
    scan: usize,
    /// The type and length of a string value whose header was read and whose data is awaited
    /// at `pos`.
    body: Option<(ReplyType, usize)>,
    /// The type of the reply itself once its header is read; [`ReplyType::Attribute`] until
    /// then, since an attribute is never the type of a reply.
    top_kind: ReplyType,
    /// Whether the reply itself is a null.
    top_null: bool,
}

impl Default for ReplyParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplyParser {
    /// Creates a parser waiting for the first byte of a reply.
    pub const fn new() -> Self {
        Self {
            pos: 0,
            owed: 0,
            scan: 0,
            body: None,
            top_kind: ReplyType::Attribute,
            top_null: false,
        }
    }

    /// Frames the reply at the start of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` holds only part of a reply, and the frame once it is
    /// complete.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<ReplyFrame>, ProtocolError> {
        let result = self.advance(buf);
        if result.is_err() {
            self.reset();
        }
        result
    }

    /// Forgets any partly parsed reply; the next call to [`parse`](Self::parse) expects a
    /// buffer starting at a new reply.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Reads values as far as `buf` allows.
    fn advance(&mut self, buf: &[u8]) -> Result<Option<ReplyFrame>, ProtocolError> {
        if self.owed == 0 {
            *self = Self {
                owed: 1,
                ..Self::new()
            };
        }
        loop {
            if let Some((kind, len)) = self.body {
                let error = ProtocolError::InvalidBulkLength;
                let end = self.pos.checked_add(len).ok_or(error)?;
                let after = end.checked_add(2).ok_or(error)?;
                let Some(terminator) = buf.get(end..after) else {
                    return Ok(None);
                };
                if terminator != b"\r\n" {
                    return Err(ProtocolError::ExpectedCrlf);
                }
                if kind == ReplyType::VerbatimString
                    && buf
                        .get(self.pos + 3..end)
                        .is_none_or(|rest| !rest.starts_with(b":"))
                {
                    return Err(ProtocolError::InvalidReplyValue(kind));
                }
                self.body = None;
                if let Some(frame) = self.value_read(after, 0)? {
                    return Ok(Some(frame));
                }
                continue;
            }
            let Some(&byte) = buf.get(self.pos) else {
                return Ok(None);
            };
            let kind = ReplyType::from_byte(byte).ok_or(ProtocolError::InvalidReplyType(byte))?;
            self.scan = self.scan.max(self.pos + 1);
            let Some(cr) = find_crlf(buf, &mut self.scan, usize::MAX, ProtocolError::ExpectedCrlf)?
            else {
                return Ok(None);
            };
            let line = buf.get(self.pos + 1..cr).unwrap_or_default();
            let header = Header::decode(kind, line)?;
            // The reply itself is the first value other than an attribute that is read while
            // it is the only value owed: while the pairs of an attribute before it are read,
            // the reply is owed too. Reading an attribute here leaves `top_kind` unchanged.
            if self.top_kind == ReplyType::Attribute && self.owed == 1 {
                self.top_kind = kind;
                self.top_null = header.null;
            }
            match header.shape {
                Shape::Body(len) => {
                    self.pos = cr + 2;
                    self.body = Some((kind, len));
                }
                Shape::Children(children) => {
                    if let Some(frame) = self.value_read(cr + 2, children)? {
                        return Ok(Some(frame));
                    }
                }
            }
        }
    }

    /// Accounts for a value whose header (and data) ended before `next` and which owes
    /// `children` more values; returns the frame if that completes the reply.
    fn value_read(
        &mut self,
        next: usize,
        children: u64,
    ) -> Result<Option<ReplyFrame>, ProtocolError> {
        self.pos = next;
        // While a reply is in progress at least one value is owed: the one just read.
        self.owed = (self.owed - 1)
            .checked_add(children)
            .ok_or(ProtocolError::InvalidAggregateLength)?;
        if self.owed > 0 {
            return Ok(None);
        }
        Ok(Some(ReplyFrame {
            byte_len: next,
            kind: self.top_kind,
            null: self.top_null,
        }))
    }
}

/// One complete reply: where it ends and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyFrame {
    byte_len: usize,
    kind: ReplyType,
    null: bool,
}

impl ReplyFrame {
    /// The number of bytes the reply occupies at the start of the buffer; the caller
    /// consumes exactly this many.
    pub fn byte_len(&self) -> usize {
        self.byte_len
    }

    /// The reply's type. For a reply preceded by an attribute, the type of the reply itself
    /// (never [`ReplyType::Attribute`]).
    pub fn kind(&self) -> ReplyType {
        self.kind
    }

    /// Whether the reply is an error (`-` or `!`).
    pub fn is_error(&self) -> bool {
        self.kind.is_error()
    }

    /// Whether the reply is a push (`>`): out-of-band data such as a pub/sub message or a
    /// client-tracking invalidation, which answers no request and must not be paired with one.
    pub fn is_push(&self) -> bool {
        self.kind == ReplyType::Push
    }

    /// Whether the reply is a null (`_`, `$-1` or `*-1`).
    pub fn is_null(&self) -> bool {
        self.null
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::XorShift;

    type Outcome = (Vec<(usize, ReplyFrame)>, Option<ProtocolError>);

    /// Frames every reply of `input` arriving in pieces of `step` bytes (all at once for
    /// `usize::MAX`), recording each frame with its offset.
    fn in_pieces(input: &[u8], step: usize) -> Outcome {
        let mut parser = ReplyParser::new();
        let mut frames = Vec::new();
        let mut offset = 0;
        let mut available: usize = 0;
        loop {
            available = available.saturating_add(step).min(input.len());
            loop {
                match parser.parse(&input[offset..available]) {
                    Ok(Some(frame)) => {
                        frames.push((offset, frame));
                        offset += frame.byte_len();
                    }
                    Ok(None) => break,
                    Err(error) => return (frames, Some(error)),
                }
            }
            if available == input.len() {
                return (frames, None);
            }
        }
    }

    fn one_shot(input: &[u8]) -> Outcome {
        in_pieces(input, usize::MAX)
    }

    /// Asserts that every way of splitting `input` gives the one-shot result, and returns it.
    fn split_invariant(input: &[u8]) -> Outcome {
        let expected = one_shot(input);
        for step in [1, 2, 3, 5] {
            assert_eq!(in_pieces(input, step), expected, "step {step}");
        }
        for cut in 0..input.len() {
            let mut parser = ReplyParser::new();
            let mut frames = Vec::new();
            let mut offset = 0;
            let mut outcome = None;
            'pieces: for available in [cut, input.len()] {
                loop {
                    match parser.parse(&input[offset..available]) {
                        Ok(Some(frame)) => {
                            frames.push((offset, frame));
                            offset += frame.byte_len();
                        }
                        Ok(None) => break,
                        Err(error) => {
                            outcome = Some(error);
                            break 'pieces;
                        }
                    }
                }
            }
            assert_eq!((frames, outcome), expected, "cut at {cut}");
        }
        expected
    }

    /// Parses `input` as exactly one reply, checking every split point.
    fn single(input: &[u8]) -> ReplyFrame {
        let (frames, error) = split_invariant(input);
        assert_eq!(error, None, "{input:?}");
        assert_eq!(frames.len(), 1, "{input:?}");
        let (offset, frame) = frames[0];
        assert_eq!(offset, 0);
        assert_eq!(frame.byte_len(), input.len(), "{input:?}");
        frame
    }

    fn error_of(input: &[u8]) -> ProtocolError {
        split_invariant(input).1.expect("a protocol error")
    }

    #[test]
    fn every_type() {
        let cases: &[(&[u8], ReplyType)] = &[
            (b"+OK\r\n", ReplyType::SimpleString),
            (b"+\r\n", ReplyType::SimpleString),
            (b"-ERR unknown command\r\n", ReplyType::Error),
            (b":0\r\n", ReplyType::Integer),
            (b":-42\r\n", ReplyType::Integer),
            (b"$5\r\nhello\r\n", ReplyType::BulkString),
            (b"$0\r\n\r\n", ReplyType::BulkString),
            (b"$4\r\n\r\n\r\n\r\n", ReplyType::BulkString),
            (b"*2\r\n$1\r\na\r\n:1\r\n", ReplyType::Array),
            (b"*0\r\n", ReplyType::Array),
            (b"_\r\n", ReplyType::Null),
            (b"#t\r\n", ReplyType::Boolean),
            (b"#f\r\n", ReplyType::Boolean),
            (b",3.14\r\n", ReplyType::Double),
            (b",-1.5e-10\r\n", ReplyType::Double),
            (b",10\r\n", ReplyType::Double),
            (b",.5\r\n", ReplyType::Double),
            (b",inf\r\n", ReplyType::Double),
            (b",-inf\r\n", ReplyType::Double),
            (b",nan\r\n", ReplyType::Double),
            (
                b"(3492890328409238509324850943850943825024385\r\n",
                ReplyType::BigNumber,
            ),
            (b"(-1\r\n", ReplyType::BigNumber),
            (b"!21\r\nSYNTAX invalid syntax\r\n", ReplyType::BlobError),
            (b"=15\r\ntxt:Some string\r\n", ReplyType::VerbatimString),
            (b"=4\r\nmkd:\r\n", ReplyType::VerbatimString),
            (b"%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n", ReplyType::Map),
            (b"%0\r\n", ReplyType::Map),
            (b"~3\r\n:1\r\n:2\r\n:3\r\n", ReplyType::Set),
            (
                b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
                ReplyType::Push,
            ),
        ];
        for &(input, kind) in cases {
            let frame = single(input);
            assert_eq!(frame.kind(), kind, "{input:?}");
            assert_eq!(frame.is_error(), kind.is_error(), "{input:?}");
            assert_eq!(frame.is_push(), kind == ReplyType::Push, "{input:?}");
            assert_eq!(frame.is_null(), kind == ReplyType::Null, "{input:?}");
            assert_eq!(ReplyType::from_byte(input[0]), Some(kind));
            assert_eq!(kind.byte(), input[0]);
        }
    }

    #[test]
    fn nulls() {
        for input in [&b"$-1\r\n"[..], b"*-1\r\n", b"_\r\n"] {
            let frame = single(input);
            assert!(frame.is_null(), "{input:?}");
            assert!(!frame.is_error());
        }
        assert!(!single(b"*1\r\n$-1\r\n").is_null());
        assert!(!single(b"$0\r\n\r\n").is_null());
    }

    #[test]
    fn type_bytes_round_trip() {
        for byte in 0..=u8::MAX {
            if let Some(kind) = ReplyType::from_byte(byte) {
                assert_eq!(kind.byte(), byte);
                assert!(!kind.name().is_empty());
            }
        }
        assert!(ReplyType::Map.is_aggregate());
        assert!(ReplyType::Attribute.is_aggregate());
        assert!(!ReplyType::BulkString.is_aggregate());
    }

    #[test]
    fn errors_are_flagged() {
        assert!(single(b"-READONLY You can't write against a read only replica.\r\n").is_error());
        assert!(single(b"!3\r\nERR\r\n").is_error());
        assert!(!single(b"+ERR\r\n").is_error());
    }

    #[test]
    fn attribute_and_reply_are_one_frame() {
        let input = b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n";
        let frame = single(input);
        assert_eq!(frame.kind(), ReplyType::Array);

        let frame = single(b"|0\r\n-ERR x\r\n");
        assert_eq!(frame.kind(), ReplyType::Error);
        assert!(frame.is_error());

        let frame = single(b"|1\r\n+a\r\n+b\r\n|1\r\n+c\r\n+d\r\n_\r\n");
        assert_eq!(frame.kind(), ReplyType::Null);
        assert!(frame.is_null());

        // An attribute on the value of an attribute.
        let frame = single(b"|1\r\n+a\r\n|1\r\n+b\r\n+c\r\n_\r\n:7\r\n");
        assert_eq!(frame.kind(), ReplyType::Integer);
        assert!(!frame.is_null());

        let frame = single(b"|1\r\n+k\r\n*1\r\n:5\r\n$2\r\nok\r\n");
        assert_eq!(frame.kind(), ReplyType::BulkString);
    }

    #[test]
    fn attribute_inside_an_aggregate() {
        let input = b"*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n";
        let frame = single(input);
        assert_eq!(frame.kind(), ReplyType::Array);
        let (frames, _) = one_shot(b"*1\r\n|1\r\n+a\r\n:1\r\n:2\r\n+next\r\n");
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1].1.kind(), ReplyType::SimpleString);
    }

    #[test]
    fn pushes_are_flagged_among_replies() {
        let input = b"+OK\r\n>2\r\n+invalidate\r\n*1\r\n$3\r\nkey\r\n:1\r\n";
        let (frames, error) = split_invariant(input);
        assert_eq!(error, None);
        let pushes: Vec<bool> = frames.iter().map(|(_, frame)| frame.is_push()).collect();
        assert_eq!(pushes, [false, true, false]);
    }

    #[test]
    fn pipeline_of_many_frames() {
        let mut input = Vec::new();
        let pieces: [&[u8]; 8] = [
            b"+OK\r\n",
            b"$3\r\nbar\r\n",
            b"$-1\r\n",
            b":7\r\n",
            b"*3\r\n$1\r\na\r\n$-1\r\n*1\r\n:1\r\n",
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            b"%1\r\n+k\r\n~1\r\n#t\r\n",
            b"=8\r\ntxt:a\r\nb\r\n",
        ];
        for round in 0..20 {
            input.extend_from_slice(pieces[round % pieces.len()]);
        }
        let (frames, error) = split_invariant(&input);
        assert_eq!(error, None);
        assert_eq!(frames.len(), 20);
        for (round, (offset, frame)) in frames.iter().enumerate() {
            let piece = pieces[round % pieces.len()];
            assert_eq!(&input[*offset..offset + frame.byte_len()], piece);
        }
    }

    #[test]
    fn nested_twenty_deep() {
        let mut input = Vec::new();
        for _ in 0..20 {
            input.extend_from_slice(b"*2\r\n");
        }
        input.extend_from_slice(b":1\r\n");
        for _ in 0..20 {
            input.extend_from_slice(b"$1\r\nx\r\n");
        }
        let frame = single(&input);
        assert_eq!(frame.kind(), ReplyType::Array);
        // One element short: incomplete at every depth.
        assert_eq!(one_shot(&input[..input.len() - 7]), (vec![], None));
    }

    #[test]
    fn deep_nesting_costs_nothing() {
        let depth = 100_000;
        let mut input = b"*1\r\n".repeat(depth);
        input.extend_from_slice(b"+deep\r\n");
        let (frames, error) = one_shot(&input);
        assert_eq!(error, None);
        assert_eq!(frames[0].1.byte_len(), input.len());
    }

    #[test]
    fn big_bulk_is_linear() {
        let len = 20 * 1024 * 1024;
        let mut input = format!("${len}\r\n").into_bytes();
        let header_len = input.len();
        input.resize(header_len + len, b'v');
        input.extend_from_slice(b"\r\n");
        let mut parser = ReplyParser::new();
        let mut available = 0;
        let frame = loop {
            available = (available + 64 * 1024).min(input.len());
            if let Some(frame) = parser.parse(&input[..available]).unwrap() {
                break frame;
            }
            // The data is awaited without being looked at.
            assert_eq!(parser.pos, header_len);
            assert_eq!(parser.body, Some((ReplyType::BulkString, len)));
        };
        assert_eq!(frame.byte_len(), input.len());
    }

    #[test]
    fn million_element_array_is_linear() {
        let count = 1_000_000;
        let mut input = format!("*{count}\r\n").into_bytes();
        for i in 0..count {
            input.extend_from_slice(if i % 2 == 0 {
                b":1\r\n"
            } else {
                b"$1\r\nx\r\n"
            });
        }
        let mut parser = ReplyParser::new();
        let mut available = 0;
        let mut calls = 0;
        let frame = loop {
            available = (available + 64 * 1024).min(input.len());
            calls += 1;
            if let Some(frame) = parser.parse(&input[..available]).unwrap() {
                break frame;
            }
            // Every complete element was consumed: the next call starts after them.
            assert!(available - parser.pos < 7, "{available} {}", parser.pos);
        };
        assert!(calls > 50);
        assert_eq!(frame.byte_len(), input.len());
        assert_eq!(frame.kind(), ReplyType::Array);
    }

    #[test]
    fn long_simple_string_is_resumable() {
        let mut input = b"-ERR ".to_vec();
        input.resize(100_000, b'e');
        input.extend_from_slice(b"\r\n");
        let mut parser = ReplyParser::new();
        for end in (1..input.len() - 2).step_by(1000) {
            assert_eq!(parser.parse(&input[..end]), Ok(None));
            assert_eq!(parser.scan, end);
        }
        assert!(parser.parse(&input).unwrap().unwrap().is_error());
    }

    #[test]
    fn invalid_type_bytes() {
        for byte in [b'x', b'?', b'\r', b'\n', b' ', b'0', 0, 0xff] {
            assert_eq!(error_of(&[byte]), ProtocolError::InvalidReplyType(byte));
        }
        assert_eq!(
            error_of(b"*2\r\n:1\r\nPING\r\n"),
            ProtocolError::InvalidReplyType(b'P')
        );
        assert_eq!(error_of(b"+OK\r\n@"), ProtocolError::InvalidReplyType(b'@'));
    }

    #[test]
    fn invalid_lengths() {
        for input in [
            &b"$-2\r\n"[..],
            b"$x\r\n",
            b"$\r\n",
            b"$1x\r\n",
            b"$01\r\n",
            b"$?\r\n",
            b"!-1\r\n",
            b"=-1\r\n",
            b"$99999999999999999999\r\n",
        ] {
            assert_eq!(
                error_of(input),
                ProtocolError::InvalidBulkLength,
                "{input:?}"
            );
        }
        for input in [
            &b"*-2\r\n"[..],
            b"*x\r\n",
            b"*\r\n",
            b"*?\r\n",
            b"%-1\r\n",
            b"~-1\r\n",
            b">-1\r\n",
            b"|-1\r\n",
            b"*1 \r\n",
            b"%9223372036854775808\r\n",
            &b"%9223372036854775807\r\n".repeat(2),
            &b"|9223372036854775807\r\n".repeat(2),
            &b"*9223372036854775807\r\n".repeat(3),
        ] {
            assert_eq!(
                error_of(input),
                ProtocolError::InvalidAggregateLength,
                "{input:?}"
            );
        }
    }

    #[test]
    fn invalid_values() {
        for (input, kind) in [
            (&b":1.5\r\n"[..], ReplyType::Integer),
            (b":\r\n", ReplyType::Integer),
            (b": 1\r\n", ReplyType::Integer),
            (b"_x\r\n", ReplyType::Null),
            (b"#x\r\n", ReplyType::Boolean),
            (b"#\r\n", ReplyType::Boolean),
            (b"#tt\r\n", ReplyType::Boolean),
            (b",abc\r\n", ReplyType::Double),
            (b",\r\n", ReplyType::Double),
            (b",1e\r\n", ReplyType::Double),
            (b",.\r\n", ReplyType::Double),
            (b",1.2.3\r\n", ReplyType::Double),
            (b"(\r\n", ReplyType::BigNumber),
            (b"(12a\r\n", ReplyType::BigNumber),
            (b"=3\r\ntxt\r\n", ReplyType::VerbatimString),
            (b"=5\r\ntxt;x\r\n", ReplyType::VerbatimString),
        ] {
            assert_eq!(
                error_of(input),
                ProtocolError::InvalidReplyValue(kind),
                "{input:?}"
            );
        }
    }

    #[test]
    fn missing_crlf() {
        for input in [
            &b"+OK\rX"[..],
            b":1\r:",
            b"$3\r\nfooXY",
            b"$3\r\nfoo\rX",
            b"$3\r\nfoo\n\r",
            b"*1\r\n$1\r\nab\r\n",
        ] {
            assert_eq!(error_of(input), ProtocolError::ExpectedCrlf, "{input:?}");
        }
    }

    #[test]
    fn incomplete_frames_wait() {
        let input = b"|1\r\n+a\r\n:1\r\n*2\r\n$3\r\nfoo\r\n%1\r\n_\r\n#t\r\n";
        for end in 0..input.len() {
            assert_eq!(one_shot(&input[..end]), (vec![], None), "{end}");
        }
        single(input);
    }

    #[test]
    fn errors_and_reset_leave_a_clean_parser() {
        let mut parser = ReplyParser::new();
        assert!(parser.parse(b"*2\r\n:x\r\n").is_err());
        assert_eq!(parser.parse(b"+OK\r\n").unwrap().unwrap().byte_len(), 5);
        assert_eq!(parser.parse(b"*2\r\n:1\r\n"), Ok(None));
        parser.reset();
        assert_eq!(
            parser.parse(b":1\r\n").unwrap().unwrap().kind(),
            ReplyType::Integer
        );
    }

    #[test]
    fn random_garbage_never_panics() {
        let alphabet = b"+-:$*_#,(!=%~>|\r\n0123456789-.tfxeinf ";
        let mut rng = XorShift(0x0123_4567_89ab_cdef);
        for _ in 0..3000 {
            let len = rng.below(40);
            let input: Vec<u8> = (0..len)
                .map(|_| match rng.below(10) {
                    0 => rng.next() as u8,
                    _ => alphabet[rng.below(alphabet.len())],
                })
                .collect();
            let expected = one_shot(&input);
            assert_eq!(in_pieces(&input, 1), expected, "{input:?}");
            assert_eq!(in_pieces(&input, 4), expected, "{input:?}");
        }
    }

    /// Appends a random well-formed value of at most `depth` levels to `out`.
    fn random_value(rng: &mut XorShift, depth: usize, out: &mut Vec<u8>) {
        let scalars: [&[u8]; 12] = [
            b"+OK\r\n",
            b"-ERR no\r\n",
            b":-12\r\n",
            b"$3\r\na\r\n\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"_\r\n",
            b"#f\r\n",
            b",1.5e3\r\n",
            b"(123\r\n",
            b"!4\r\nOOPS\r\n",
            b"=6\r\ntxt:hi\r\n",
        ];
        let choice = rng.below(if depth == 0 { 12 } else { 17 });
        if let Some(scalar) = scalars.get(choice) {
            out.extend_from_slice(scalar);
            return;
        }
        let count = rng.below(4);
        let (byte, children) = match choice {
            12 => (b'*', count),
            13 => (b'%', count * 2),
            14 => (b'~', count),
            15 => (b'>', count),
            _ => (b'|', count * 2 + 1),
        };
        out.push(byte);
        out.extend_from_slice(format!("{count}\r\n").as_bytes());
        for _ in 0..children {
            random_value(rng, depth - 1, out);
        }
    }

    #[test]
    fn random_valid_pipelines_survive_every_split() {
        let mut rng = XorShift(7);
        for _ in 0..40 {
            let mut input = Vec::new();
            let mut ends = Vec::new();
            for _ in 0..rng.below(4) + 1 {
                random_value(&mut rng, 3, &mut input);
                ends.push(input.len());
            }
            let (frames, error) = split_invariant(&input);
            assert_eq!(error, None, "{input:?}");
            let got: Vec<usize> = frames.iter().map(|(at, f)| at + f.byte_len()).collect();
            assert_eq!(got, ends, "{input:?}");
        }
    }
}
