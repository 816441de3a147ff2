//! Client request framing.
//!
//! [`RequestParser`] finds where a request ends in the client's read buffer and where each of
//! its arguments lies, without copying any byte. It accepts what Redis accepts:
//!
//! - RESP arrays of bulk strings, `*<count>\r\n` then `$<len>\r\n<bytes>\r\n` per argument;
//! - inline commands such as `PING\r\n` or `GET foo\n` (health checkers such as HAProxy send
//!   them): arguments separated by whitespace, the line ended by LF with an optional CR before
//!   it. Quoted inline arguments are not supported and are a protocol error.
//!
//! Redis skips an empty inline line, `*0` and any negative count without running a command;
//! the parser reports these as frames with no arguments so the caller consumes their bytes.
//!
//! The parser is resumable: given the same buffer grown by more bytes, it continues where it
//! stopped, so a request that arrives over many reads costs time proportional to its size.

use std::ops::Range;

use memchr::{memchr, memchr2};

use crate::error::ProtocolError;
use crate::scan::{find_crlf, parse_i64};

/// The largest argument count of a request by default, as in Redis 6 (Redis 7 takes up to
/// 2^31 - 1; `client_max_request_args` sets it per pool).
pub const MAX_MULTIBULK_LEN: usize = 1024 * 1024;

/// The largest argument of a request in bytes, as Redis's default `proto-max-bulk-len`.
pub const MAX_BULK_LEN: usize = 512 * 1024 * 1024;

/// The longest inline request line in bytes (before its LF), as in Redis.
pub const MAX_INLINE_LEN: usize = 64 * 1024;

/// The longest text `string2ll` accepts (`-9223372036854775808`); a longer `*` or `$` line
/// cannot hold a valid length.
const MAX_LENGTH_DIGITS: usize = 20;

/// The most digits [`common_length_line`] reads: any such number fits in an `i64`.
const COMMON_LENGTH_DIGITS: usize = 9;

/// How many argument spans the parser keeps allocated between frames; a larger vector, grown
/// by one huge request, is shrunk back so that one request does not pin its memory.
const RETAINED_ARG_CAPACITY: usize = 1024;

/// Where the parser stands inside the current request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    /// No byte of the next request has been examined.
    #[default]
    Start,
    /// An inline line; bytes before `scan` hold no LF.
    Inline { scan: usize },
    /// Expecting a `$<len>\r\n` header at `pos`, with `remaining` arguments still to come.
    BulkHeader { remaining: usize },
    /// Expecting `len` bytes and CRLF at `pos`, with `remaining` arguments still to come,
    /// this one included.
    BulkBody { remaining: usize, len: usize },
}

/// The largest request a parser accepts: its argument count and the length of each argument.
/// Requests beyond them are protocol errors, found from their headers, before their bytes
/// are buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    pub max_args: usize,
    pub max_arg_bytes: usize,
    /// The client has not authenticated: the limits are Redis's for such clients, and so are
    /// the errors.
    pub unauthenticated: bool,
}

impl RequestLimits {
    /// What Redis allows a client that has not authenticated yet on a server with a password:
    /// 10 arguments of 16 KB, enough for AUTH and HELLO.
    pub const UNAUTHENTICATED: RequestLimits = RequestLimits {
        max_args: 10,
        max_arg_bytes: 16 * 1024,
        unauthenticated: true,
    };
}

impl Default for RequestLimits {
    /// Redis's own limits.
    fn default() -> RequestLimits {
        RequestLimits {
            max_args: MAX_MULTIBULK_LEN,
            max_arg_bytes: MAX_BULK_LEN,
            unauthenticated: false,
        }
    }
}

/// A resumable, reusable framer of client requests.
///
/// Call [`parse`](Self::parse) with a buffer that starts at the first unconsumed byte. When it
/// returns `Ok(None)`, read more bytes and call it again with the same buffer, grown (its start
/// unchanged). When it returns a frame, consume [`RequestFrame::byte_len`] bytes from the
/// front of the buffer; the next call starts a new request. After an error the stream is out
/// of sync; the parser is reset but the connection should be closed.
///
/// The argument spans live in a vector owned by the parser, cleared (not reallocated) for
/// each request.
#[derive(Debug, Default)]
pub struct RequestParser {
    args: Vec<Range<usize>>,
    state: State,
    pos: usize,
    limits: RequestLimits,
}

impl RequestParser {
    /// Creates a parser with Redis's limits, waiting for the first byte of a request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses requests beyond `limits` from the next request on.
    pub fn set_limits(&mut self, limits: RequestLimits) {
        self.limits = limits;
    }

    /// Creates a parser that refuses requests beyond `limits`.
    pub fn with_limits(limits: RequestLimits) -> Self {
        RequestParser {
            limits,
            ..Self::default()
        }
    }

    /// Frames the request at the start of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` holds only part of a request, and the frame once it is
    /// complete. Ranges in the frame are relative to the start of `buf`.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<RequestFrame<'_>>, ProtocolError> {
        match self.advance(buf) {
            Ok(Some(end)) => Ok(Some(RequestFrame {
                byte_len: end.byte_len,
                inline: end.inline,
                args: &self.args,
            })),
            Ok(None) => Ok(None),
            Err(error) => {
                self.reset();
                Err(error)
            }
        }
    }

    /// Forgets any partly parsed request; the next call to [`parse`](Self::parse) expects a
    /// buffer starting at a new request.
    pub fn reset(&mut self) {
        self.state = State::Start;
        self.begin();
    }

    /// Prepares the state for a request starting at offset 0.
    fn begin(&mut self) {
        self.pos = 0;
        self.args.clear();
        if self.args.capacity() > RETAINED_ARG_CAPACITY {
            self.args.shrink_to(RETAINED_ARG_CAPACITY);
        }
    }

    /// Runs the state machine as far as `buf` allows.
    fn advance(&mut self, buf: &[u8]) -> Result<Option<Completed>, ProtocolError> {
        match self.state {
            State::Start => {
                self.begin();
                match buf.first() {
                    None => Ok(None),
                    Some(b'*') => {
                        let error = ProtocolError::InvalidMultibulkLength;
                        let Some((count, next)) = length_line(buf, 0, error)? else {
                            return Ok(None);
                        };
                        if count <= 0 {
                            return Ok(Some(Completed {
                                byte_len: next,
                                inline: false,
                            }));
                        }
                        let remaining = usize::try_from(count).map_err(|_| error)?;
                        if remaining > self.limits.max_args {
                            return Err(if self.limits.unauthenticated {
                                ProtocolError::UnauthenticatedMultibulkLength
                            } else {
                                ProtocolError::TooManyArguments {
                                    count: remaining,
                                    limit: self.limits.max_args,
                                }
                            });
                        }
                        self.bulk_strings(buf, next, remaining, None)
                    }
                    Some(_) => self.inline(buf, 0),
                }
            }
            State::Inline { scan } => self.inline(buf, scan),
            State::BulkHeader { remaining } => self.bulk_strings(buf, self.pos, remaining, None),
            State::BulkBody { remaining, len } => {
                self.bulk_strings(buf, self.pos, remaining, Some(len))
            }
        }
    }

    /// Frames the bulk strings of a multibulk from `pos`, with `remaining` (at least one) still
    /// to come; `header_len` is the length of the first when its `$` line was already read.
    /// When `buf` ends first, the state and position to resume from are saved.
    fn bulk_strings(
        &mut self,
        buf: &[u8],
        mut pos: usize,
        mut remaining: usize,
        mut header_len: Option<usize>,
    ) -> Result<Option<Completed>, ProtocolError> {
        let error = ProtocolError::InvalidBulkLength;
        loop {
            let len = match header_len.take() {
                Some(len) => len,
                None => {
                    let Some(&first) = buf.get(pos) else {
                        return Ok(self.wait(pos, State::BulkHeader { remaining }));
                    };
                    if first != b'$' {
                        return Err(ProtocolError::ExpectedBulk(first));
                    }
                    let Some((len, next)) = length_line(buf, pos, error)? else {
                        return Ok(self.wait(pos, State::BulkHeader { remaining }));
                    };
                    pos = next;
                    let len = usize::try_from(len).map_err(|_| error)?;
                    if len > self.limits.max_arg_bytes {
                        return Err(if self.limits.unauthenticated {
                            ProtocolError::UnauthenticatedBulkLength
                        } else {
                            ProtocolError::ArgumentTooLong {
                                len,
                                limit: self.limits.max_arg_bytes,
                            }
                        });
                    }
                    len
                }
            };
            let end = pos.checked_add(len).ok_or(error)?;
            let after = end.checked_add(2).ok_or(error)?;
            let Some(terminator) = buf.get(end..after) else {
                return Ok(self.wait(pos, State::BulkBody { remaining, len }));
            };
            if terminator != b"\r\n" {
                return Err(ProtocolError::ExpectedCrlf);
            }
            self.args.push(pos..end);
            pos = after;
            if remaining <= 1 {
                self.state = State::Start;
                return Ok(Some(Completed {
                    byte_len: after,
                    inline: false,
                }));
            }
            remaining -= 1;
        }
    }

    /// Saves where to resume once more bytes have arrived; there is no frame yet.
    fn wait(&mut self, pos: usize, state: State) -> Option<Completed> {
        self.pos = pos;
        self.state = state;
        None
    }

    /// Frames an inline request; bytes of `buf` before `scan` are known to hold no LF.
    fn inline(&mut self, buf: &[u8], scan: usize) -> Result<Option<Completed>, ProtocolError> {
        let end = buf.len().min(MAX_INLINE_LEN + 1);
        let window = buf.get(scan..end).unwrap_or_default();
        let Some(offset) = memchr(b'\n', window) else {
            if buf.len() > MAX_INLINE_LEN {
                return Err(ProtocolError::TooBigInlineRequest);
            }
            self.state = State::Inline {
                scan: scan.max(end),
            };
            return Ok(None);
        };
        let newline = scan + offset;
        let line = buf.get(..newline).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if memchr2(b'"', b'\'', line).is_some() {
            return Err(ProtocolError::QuotedInlineArgument);
        }
        let mut word_start = None;
        for (index, &byte) in line.iter().enumerate() {
            match word_start {
                Some(start) if ends_word(byte) => {
                    self.args.push(start..index);
                    word_start = None;
                }
                None if !is_space(byte) => word_start = Some(index),
                _ => {}
            }
        }
        if let Some(start) = word_start {
            self.args.push(start..line.len());
        }
        self.state = State::Start;
        Ok(Some(Completed {
            byte_len: newline + 1,
            inline: true,
        }))
    }
}

/// The end of a request found by [`RequestParser::advance`].
struct Completed {
    byte_len: usize,
    inline: bool,
}

/// Parses the `*<n>` or `$<n>` line starting at `start`: the number and the offset after the
/// line's CRLF, or `None` when the line is incomplete.
#[inline]
fn length_line(
    buf: &[u8],
    start: usize,
    error: ProtocolError,
) -> Result<Option<(i64, usize)>, ProtocolError> {
    match common_length_line(buf, start) {
        Some(line) => Ok(Some(line)),
        None => any_length_line(buf, start, error),
    }
}

/// [`length_line`] for every line, the rare ones included: incomplete, long, or invalid.
#[cold]
fn any_length_line(
    buf: &[u8],
    start: usize,
    error: ProtocolError,
) -> Result<Option<(i64, usize)>, ProtocolError> {
    let digits_start = start + 1;
    let mut from = digits_start;
    let Some(cr) = find_crlf(buf, &mut from, digits_start + MAX_LENGTH_DIGITS, error)? else {
        return Ok(None);
    };
    let digits = buf.get(digits_start..cr).unwrap_or_default();
    let value = parse_i64(digits).ok_or(error)?;
    Ok(Some((value, cr + 2)))
}

/// The common case of [`length_line`] in one pass: a complete line of one to
/// [`COMMON_LENGTH_DIGITS`] digits, the first not zero. `None` leaves any other line, valid or
/// not, to the general parser.
fn common_length_line(buf: &[u8], start: usize) -> Option<(i64, usize)> {
    let digits_start = start + 1;
    let first = *buf.get(digits_start)?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut value = i64::from(first - b'0');
    let mut at = digits_start + 1;
    loop {
        let byte = *buf.get(at)?;
        if byte == b'\r' {
            break;
        }
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 || at - digits_start >= COMMON_LENGTH_DIGITS {
            return None;
        }
        value = value * 10 + i64::from(digit);
        at += 1;
    }
    (buf.get(at + 1) == Some(&b'\n')).then_some((value, at + 2))
}

/// Whether Redis's inline splitter skips `byte` before a word (`isspace`).
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

/// Whether `byte` ends an inline word, as in Redis's splitter: `\v` and `\f` are skipped
/// before a word but belong to it once it has begun.
fn ends_word(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

/// One complete request, borrowed from the [`RequestParser`] that framed it.
///
/// Argument ranges are offsets into the buffer given to [`RequestParser::parse`].
#[derive(Debug, Clone, Copy)]
pub struct RequestFrame<'a> {
    byte_len: usize,
    inline: bool,
    args: &'a [Range<usize>],
}

impl<'a> RequestFrame<'a> {
    /// The number of bytes the request occupies at the start of the buffer; the caller
    /// consumes exactly this many.
    pub fn byte_len(&self) -> usize {
        self.byte_len
    }

    /// The number of arguments, the command name included.
    pub fn argc(&self) -> usize {
        self.args.len()
    }

    /// Whether the frame holds no command: an empty inline line, `*0` or a negative count,
    /// which Redis skips. Consume its bytes and produce no reply.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// Whether the request was an inline command rather than a RESP array. Inline requests
    /// must be re-encoded (see [`crate::encode::request`]) before they are forwarded.
    pub fn is_inline(&self) -> bool {
        self.inline
    }

    /// The byte range of every argument, in order.
    pub fn arg_ranges(&self) -> &'a [Range<usize>] {
        self.args
    }

    /// The byte range of argument `index` (0 is the command name).
    pub fn arg_range(&self, index: usize) -> Option<Range<usize>> {
        self.args.get(index).cloned()
    }

    /// The bytes of argument `index` (0 is the command name) in `buf`, the buffer that was
    /// parsed.
    pub fn arg<'b>(&self, index: usize, buf: &'b [u8]) -> Option<&'b [u8]> {
        buf.get(self.args.get(index)?.clone())
    }

    /// The bytes of every argument in `buf`, the buffer that was parsed.
    pub fn args<'b>(&self, buf: &'b [u8]) -> Args<'a, 'b> {
        Args {
            ranges: self.args.iter(),
            buf,
        }
    }
}

/// An iterator over the arguments of a [`RequestFrame`] as byte slices.
///
/// It yields exactly [`RequestFrame::argc`] items. Given a buffer other than the one parsed,
/// an argument that falls outside it is yielded as an empty slice.
#[derive(Debug, Clone)]
pub struct Args<'a, 'b> {
    ranges: std::slice::Iter<'a, Range<usize>>,
    buf: &'b [u8],
}

impl<'b> Iterator for Args<'_, 'b> {
    type Item = &'b [u8];

    fn next(&mut self) -> Option<&'b [u8]> {
        let range = self.ranges.next()?;
        Some(self.buf.get(range.clone()).unwrap_or_default())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ranges.size_hint()
    }
}

impl ExactSizeIterator for Args<'_, '_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::XorShift;

    /// What a frame says, detached from the parser so frames can be compared.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Owned {
        offset: usize,
        byte_len: usize,
        inline: bool,
        args: Vec<Vec<u8>>,
    }

    type Outcome = (Vec<Owned>, Option<ProtocolError>);

    fn owned(frame: &RequestFrame<'_>, buf: &[u8], offset: usize) -> Owned {
        Owned {
            offset,
            byte_len: frame.byte_len(),
            inline: frame.is_inline(),
            args: frame.args(buf).map(<[u8]>::to_vec).collect(),
        }
    }

    /// Frames every request of `input` given all at once.
    fn one_shot(input: &[u8]) -> Outcome {
        let mut parser = RequestParser::new();
        let mut frames = Vec::new();
        let mut offset = 0;
        loop {
            let buf = &input[offset..];
            match parser.parse(buf) {
                Ok(Some(frame)) => {
                    frames.push(owned(&frame, buf, offset));
                    offset += frame.byte_len();
                }
                Ok(None) => return (frames, None),
                Err(error) => return (frames, Some(error)),
            }
        }
    }

    /// Frames every request of `input` arriving in pieces of `step` bytes.
    fn in_pieces(input: &[u8], step: usize) -> Outcome {
        let mut parser = RequestParser::new();
        let mut frames = Vec::new();
        let mut offset = 0;
        let mut available = 0;
        while available < input.len() {
            available = (available + step).min(input.len());
            loop {
                let buf = &input[offset..available];
                match parser.parse(buf) {
                    Ok(Some(frame)) => {
                        frames.push(owned(&frame, buf, offset));
                        offset += frame.byte_len();
                    }
                    Ok(None) => break,
                    Err(error) => return (frames, Some(error)),
                }
            }
        }
        (frames, None)
    }

    /// Asserts that every way of splitting `input` gives the one-shot result, and returns it.
    fn split_invariant(input: &[u8]) -> Outcome {
        let expected = one_shot(input);
        for step in [1, 2, 3, 7] {
            assert_eq!(in_pieces(input, step), expected, "step {step}");
        }
        for cut in 0..=input.len() {
            let mut parser = RequestParser::new();
            let mut frames = Vec::new();
            let mut offset = 0;
            let mut outcome = None;
            'pieces: for available in [cut, input.len()] {
                loop {
                    let buf = &input[offset..available];
                    match parser.parse(buf) {
                        Ok(Some(frame)) => {
                            frames.push(owned(&frame, buf, offset));
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

    fn args(list: &[&[u8]]) -> Vec<Vec<u8>> {
        list.iter().map(|arg| arg.to_vec()).collect()
    }

    fn single(input: &[u8]) -> Owned {
        let (frames, error) = split_invariant(input);
        assert_eq!(error, None);
        assert_eq!(frames.len(), 1, "{frames:?}");
        frames.into_iter().next().unwrap()
    }

    fn error_of(input: &[u8]) -> ProtocolError {
        let (_, error) = split_invariant(input);
        error.expect("a protocol error")
    }

    #[test]
    fn resp_array() {
        let input = b"*3\r\n$3\r\nSET\r\n$3\r\nfoo\r\n$5\r\nhello\r\n";
        let frame = single(input);
        assert_eq!(frame.byte_len, input.len());
        assert!(!frame.inline);
        assert_eq!(frame.args, args(&[b"SET", b"foo", b"hello"]));
    }

    #[test]
    fn frame_accessors() {
        let input = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        let mut parser = RequestParser::new();
        let frame = parser.parse(input).unwrap().unwrap();
        assert_eq!(frame.argc(), 2);
        assert!(!frame.is_empty());
        assert_eq!(frame.arg_ranges(), &[8..11, 17..18]);
        assert_eq!(frame.arg_range(1), Some(17..18));
        assert_eq!(frame.arg_range(2), None);
        assert_eq!(frame.arg(0, input), Some(&b"GET"[..]));
        assert_eq!(frame.arg(1, input), Some(&b"k"[..]));
        assert_eq!(frame.arg(2, input), None);
        assert_eq!(frame.arg(1, b"short"), None);
        assert_eq!(frame.args(input).len(), 2);
        let short: Vec<&[u8]> = frame.args(b"*2\r\n$3\r\nGET").collect();
        assert_eq!(short, [&b"GET"[..], b""]);
    }

    #[test]
    fn binary_and_empty_arguments() {
        let frame = single(b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$4\r\n\r\n\0\xff\r\n");
        assert_eq!(frame.args, args(&[b"SET", b"", b"\r\n\0\xff"]));
    }

    #[test]
    fn pipeline_of_many_frames() {
        let mut input = Vec::new();
        for i in 0..50 {
            let key = format!("key:{i}");
            input.extend_from_slice(
                format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).as_bytes(),
            );
            input.extend_from_slice(b"PING\r\n");
        }
        let (frames, error) = split_invariant(&input);
        assert_eq!(error, None);
        assert_eq!(frames.len(), 100);
        for (i, pair) in frames.chunks(2).enumerate() {
            assert_eq!(pair[0].args[1], format!("key:{i}").into_bytes());
            assert_eq!(pair[1].args, args(&[b"PING"]));
            assert!(pair[1].inline);
        }
        let last = frames.last().unwrap();
        assert_eq!(last.offset + last.byte_len, input.len());
    }

    #[test]
    fn inline_commands() {
        let frame = single(b"PING\r\n");
        assert!(frame.inline);
        assert_eq!(frame.byte_len, 6);
        assert_eq!(frame.args, args(&[b"PING"]));

        let frame = single(b"GET foo\n");
        assert_eq!(frame.byte_len, 8);
        assert_eq!(frame.args, args(&[b"GET", b"foo"]));

        let frame = single(b"  SET\tkey   value \t\r\n");
        assert_eq!(frame.args, args(&[b"SET", b"key", b"value"]));

        let frame = single(b"SET k a\rb\r\n");
        assert_eq!(frame.args, args(&[b"SET", b"k", b"a", b"b"]));
    }

    #[test]
    fn empty_inline_lines_are_skipped() {
        let (frames, error) = split_invariant(b"\r\n\n \t\r\nPING\r\n");
        assert_eq!(error, None);
        let lens: Vec<(usize, usize)> = frames.iter().map(|f| (f.byte_len, f.args.len())).collect();
        assert_eq!(lens, [(2, 0), (1, 0), (4, 0), (6, 1)]);
        assert!(frames[..3].iter().all(|f| f.inline));
    }

    #[test]
    fn empty_and_negative_multibulk_are_skipped() {
        let (frames, error) = split_invariant(b"*0\r\n*-1\r\n*-7\r\n*1\r\n$4\r\nPING\r\n");
        assert_eq!(error, None);
        let lens: Vec<(usize, usize)> = frames.iter().map(|f| (f.byte_len, f.args.len())).collect();
        assert_eq!(lens, [(4, 0), (5, 0), (5, 0), (14, 1)]);
        assert!(frames.iter().all(|f| !f.inline));
        let mut parser = RequestParser::new();
        assert!(parser.parse(b"*0\r\n").unwrap().unwrap().is_empty());
    }

    #[test]
    fn quoted_inline_arguments_are_rejected() {
        assert_eq!(
            error_of(b"SET k \"a b\"\r\n"),
            ProtocolError::QuotedInlineArgument
        );
        assert_eq!(error_of(b"GET 'k'\n"), ProtocolError::QuotedInlineArgument);
        assert_eq!(error_of(b"GET it's\n"), ProtocolError::QuotedInlineArgument);
    }

    #[test]
    fn inline_length_limit() {
        let mut input = vec![b'a'; MAX_INLINE_LEN];
        input.push(b'\n');
        let (frames, error) = one_shot(&input);
        assert_eq!(error, None);
        assert_eq!(frames[0].args[0].len(), MAX_INLINE_LEN);
        assert_eq!(in_pieces(&input, 4096), (frames, None));

        let mut input = vec![b'a'; MAX_INLINE_LEN + 1];
        input.push(b'\n');
        assert_eq!(one_shot(&input).1, Some(ProtocolError::TooBigInlineRequest));
        assert_eq!(
            in_pieces(&input, 4096).1,
            Some(ProtocolError::TooBigInlineRequest)
        );
        let input = vec![b'a'; MAX_INLINE_LEN + 1];
        assert_eq!(one_shot(&input).1, Some(ProtocolError::TooBigInlineRequest));
        let input = vec![b'a'; MAX_INLINE_LEN];
        assert_eq!(one_shot(&input), (vec![], None));
    }

    #[test]
    fn inline_is_resumable() {
        let mut parser = RequestParser::new();
        let input = b"GET some-long-key\r\n";
        for end in 0..input.len() {
            assert!(parser.parse(&input[..end]).unwrap().is_none());
            if end > 0 {
                assert_eq!(parser.state, State::Inline { scan: end });
            }
        }
        let frame = parser.parse(input).unwrap().unwrap();
        assert_eq!(frame.argc(), 2);
    }

    #[test]
    fn multibulk_length_errors() {
        for input in [
            &b"*x\r\n"[..],
            b"*\r\n",
            b"*1x\r\n",
            b"*01\r\n",
            b"*+1\r\n",
            b"*-0\r\n",
            b"* 1\r\n",
            b"*9223372036854775808\r\n",
            b"*123456789012345678901234567890",
            b"*1\n$4\r\nPING\r\n",
        ] {
            assert_eq!(
                error_of(input),
                ProtocolError::InvalidMultibulkLength,
                "{input:?}"
            );
        }
        let frame = split_invariant(b"*1048576\r\n$3\r\nGET\r\n");
        assert_eq!(frame, (vec![], None));
    }

    #[test]
    fn bulk_length_errors() {
        for input in [
            &b"*1\r\n$-1\r\n"[..],
            b"*1\r\n$-5\r\n",
            b"*1\r\n$x\r\n",
            b"*1\r\n$\r\n",
            b"*1\r\n$3a\r\n",
            b"*1\r\n$03\r\n",
            b"*1\r\n$99999999999999999999\r\n",
            b"*1\r\n$123456789012345678901234567890",
        ] {
            assert_eq!(
                error_of(input),
                ProtocolError::InvalidBulkLength,
                "{input:?}"
            );
        }
        let outcome = split_invariant(b"*1\r\n$536870912\r\n");
        assert_eq!(outcome, (vec![], None));
    }

    #[test]
    fn limits_refuse_from_the_headers() {
        assert_eq!(
            error_of(b"*1048577\r\n"),
            ProtocolError::TooManyArguments {
                count: 1_048_577,
                limit: MAX_MULTIBULK_LEN
            }
        );
        assert_eq!(
            error_of(b"*1\r\n$536870913\r\n"),
            ProtocolError::ArgumentTooLong {
                len: 536_870_913,
                limit: MAX_BULK_LEN
            }
        );
        let mut parser = RequestParser::with_limits(RequestLimits {
            max_args: 2,
            max_arg_bytes: 3,
            unauthenticated: false,
        });
        let frame = parser.parse(b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
        assert!(matches!(frame, Ok(Some(_))));
        assert_eq!(
            parser.parse(b"*3\r\n").err(),
            Some(ProtocolError::TooManyArguments { count: 3, limit: 2 })
        );
        assert_eq!(
            parser.parse(b"*1\r\n$4\r\n").err(),
            Some(ProtocolError::ArgumentTooLong { len: 4, limit: 3 })
        );
        parser.set_limits(RequestLimits::UNAUTHENTICATED);
        assert_eq!(
            parser.parse(b"*11\r\n").err(),
            Some(ProtocolError::UnauthenticatedMultibulkLength)
        );
        assert_eq!(
            parser.parse(b"*1\r\n$16385\r\n").err(),
            Some(ProtocolError::UnauthenticatedBulkLength)
        );
        assert_eq!(
            ProtocolError::TooManyArguments { count: 3, limit: 2 }.to_string(),
            "Protocol error: a request of 3 arguments is over the limit of 2"
        );
    }

    #[test]
    fn element_must_be_bulk() {
        assert_eq!(
            error_of(b"*2\r\n$3\r\nGET\r\nx\r\n"),
            ProtocolError::ExpectedBulk(b'x')
        );
        assert_eq!(error_of(b"*1\r\n:1\r\n"), ProtocolError::ExpectedBulk(b':'));
        assert_eq!(
            error_of(b"*1\r\n*1\r\n$1\r\na\r\n"),
            ProtocolError::ExpectedBulk(b'*')
        );
    }

    #[test]
    fn missing_crlf() {
        for input in [
            &b"*1\rx"[..],
            b"*1\r\n$3\rx",
            b"*1\r\n$3\r\nfooXY",
            b"*1\r\n$3\r\nfoo\rX",
            b"*1\r\n$3\r\nfoo\n\r",
            b"*1\r\n$3\r\nfoobar\r\n",
        ] {
            assert_eq!(error_of(input), ProtocolError::ExpectedCrlf, "{input:?}");
        }
    }

    #[test]
    fn incomplete_frames_wait() {
        let input = b"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n";
        for end in 0..input.len() {
            assert_eq!(one_shot(&input[..end]), (vec![], None), "{end}");
        }
    }

    #[test]
    fn errors_reset_the_parser() {
        let mut parser = RequestParser::new();
        assert!(parser.parse(b"*1\r\n$x\r\n").is_err());
        let frame = parser.parse(b"*1\r\n$4\r\nPING\r\n").unwrap().unwrap();
        assert_eq!(frame.argc(), 1);
    }

    #[test]
    fn reset_discards_a_partial_frame() {
        let mut parser = RequestParser::new();
        assert!(parser.parse(b"*2\r\n$3\r\nGET\r\n").unwrap().is_none());
        parser.reset();
        let frame = parser.parse(b"PING\r\n").unwrap().unwrap();
        assert!(frame.is_inline());
        assert_eq!(frame.argc(), 1);
    }

    #[test]
    fn big_value_is_linear() {
        let len = 20 * 1024 * 1024;
        let mut input = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${len}\r\n").into_bytes();
        let header_len = input.len();
        input.resize(header_len + len, b'v');
        input.extend_from_slice(b"\r\n");
        let mut parser = RequestParser::new();
        let mut available = 0;
        let frame_len = loop {
            available = (available + 64 * 1024).min(input.len());
            if let Some(frame) = parser.parse(&input[..available]).unwrap() {
                break frame.byte_len();
            }
            // Once the header is read, the parser waits for the body without looking at it.
            if available >= header_len {
                assert_eq!(parser.pos, header_len);
                assert_eq!(parser.state, State::BulkBody { remaining: 1, len });
            }
        };
        assert_eq!(frame_len, input.len());
        let frame = parser.parse(&input).unwrap().unwrap();
        assert_eq!(frame.arg(2, &input).unwrap().len(), len);
    }

    #[test]
    fn million_arguments_are_linear() {
        let count = 1_000_000;
        let mut input = format!("*{}\r\n$4\r\nMSET\r\n", count + 1).into_bytes();
        for i in 0..count {
            let value = (i % 10) as u8 + b'0';
            input.extend_from_slice(b"$1\r\n");
            input.push(value);
            input.extend_from_slice(b"\r\n");
        }
        let mut parser = RequestParser::new();
        let mut available = 0;
        let mut calls = 0;
        let frame_len = loop {
            available = (available + 64 * 1024).min(input.len());
            calls += 1;
            if let Some(frame) = parser.parse(&input[..available]).unwrap() {
                assert_eq!(frame.argc(), count + 1);
                break frame.byte_len();
            }
            // Every complete argument was consumed: the next call starts after them.
            assert!(available - parser.pos < 7, "{available} {}", parser.pos);
            assert_eq!(parser.args.len(), 1 + (parser.pos - 20) / 7);
        };
        assert!(calls > 100);
        assert_eq!(frame_len, input.len());
        let frame = parser.parse(&input).unwrap().unwrap();
        assert_eq!(frame.arg(count, &input), Some(&b"9"[..]));
    }

    #[test]
    fn huge_requests_do_not_pin_memory() {
        let mut input = b"*5000\r\n".to_vec();
        for _ in 0..5000 {
            input.extend_from_slice(b"$1\r\nx\r\n");
        }
        let mut parser = RequestParser::new();
        assert_eq!(parser.parse(&input).unwrap().unwrap().argc(), 5000);
        assert_eq!(parser.parse(b"PING\r\n").unwrap().unwrap().argc(), 1);
        assert!(parser.args.capacity() <= RETAINED_ARG_CAPACITY);
    }

    #[test]
    fn values_over_16_mib() {
        let len = 17 * 1024 * 1024;
        let mut input = format!("*2\r\n$3\r\nGET\r\n${len}\r\n").into_bytes();
        input.resize(input.len() + len, b'x');
        input.extend_from_slice(b"\r\n");
        let mut parser = RequestParser::new();
        let frame = parser.parse(&input).unwrap().unwrap();
        assert_eq!(frame.byte_len(), input.len());
        assert_eq!(frame.arg(1, &input).unwrap().len(), len);
    }

    #[test]
    fn random_garbage_never_panics() {
        let alphabet = b"*$:+-\r\n0123456789 \t\"'abcPING";
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2000 {
            let len = rng.below(40);
            let input: Vec<u8> = (0..len)
                .map(|_| match rng.below(8) {
                    0 => rng.next() as u8,
                    _ => alphabet[rng.below(alphabet.len())],
                })
                .collect();
            let expected = one_shot(&input);
            assert_eq!(in_pieces(&input, 1), expected, "{input:?}");
            assert_eq!(in_pieces(&input, 5), expected, "{input:?}");
        }
    }

    #[test]
    fn common_length_lines_read_as_the_general_parser_reads_them() {
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for value in [
            0u64,
            1,
            9,
            10,
            99,
            100,
            12345,
            999_999_999,
            1_000_000_000,
            u64::MAX,
        ] {
            lines.push(format!("${value}\r\n").into_bytes());
            lines.push(format!("$0{value}\r\n").into_bytes());
            lines.push(format!("$-{value}\r\n").into_bytes());
        }
        let mut rng = XorShift(7);
        let alphabet = b"0123456789\r\n-+ x";
        for _ in 0..5000 {
            let mut line = vec![b'$'];
            line.extend((0..rng.below(14)).map(|_| alphabet[rng.below(alphabet.len())]));
            lines.push(line);
        }
        let error = ProtocolError::InvalidBulkLength;
        let mut common = 0;
        for line in &lines {
            for end in 0..=line.len() {
                let buf = &line[..end];
                if let Some(found) = common_length_line(buf, 0) {
                    common += 1;
                    assert_eq!(any_length_line(buf, 0, error), Ok(Some(found)), "{buf:?}");
                }
                assert_eq!(
                    length_line(buf, 0, error),
                    any_length_line(buf, 0, error),
                    "{buf:?}"
                );
            }
        }
        assert!(common > 20, "{common}");
    }

    #[test]
    fn random_valid_pipelines_survive_every_split() {
        let mut rng = XorShift(42);
        for _ in 0..30 {
            let mut input = Vec::new();
            let mut expected = Vec::new();
            for _ in 0..rng.below(5) + 1 {
                let argc = rng.below(4) + 1;
                let frame_args: Vec<Vec<u8>> = (0..argc)
                    .map(|_| (0..rng.below(12)).map(|_| rng.next() as u8).collect())
                    .collect();
                input.extend_from_slice(format!("*{argc}\r\n").as_bytes());
                for arg in &frame_args {
                    input.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
                    input.extend_from_slice(arg);
                    input.extend_from_slice(b"\r\n");
                }
                expected.push(frame_args);
            }
            let (frames, error) = split_invariant(&input);
            assert_eq!(error, None);
            let got: Vec<Vec<Vec<u8>>> = frames.into_iter().map(|f| f.args).collect();
            assert_eq!(got, expected);
        }
    }
}
