//! The protocol error type.
//!
//! Each message reads as the text after `-ERR ` in the error Redis itself would send for the
//! same input (`Protocol error: invalid bulk length`), so the proxy can answer a bad client
//! exactly as Redis would. Messages never contain CR or LF: a byte quoted in a message is
//! escaped when it is not printable, so the text is always safe inside an error reply line.

use std::fmt;

use crate::reply_type::ReplyType;

/// A violation of RESP found while framing a request or a reply.
///
/// After an error the byte stream cannot be resynchronised; the connection that sent it
/// should be closed (after replying with the error, for a client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A request's `*<count>` is not a number.
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// A `$<len>` is not a number, or is negative in a request.
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// A request's `*<count>` is above the parser's limit ([`crate::RequestLimits`]).
    #[error("Protocol error: a request of {count} arguments is over the limit of {limit}")]
    TooManyArguments { count: usize, limit: usize },
    /// A client that has not authenticated sent more arguments than Redis allows it.
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    /// A client that has not authenticated sent a longer argument than Redis allows it.
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
    /// A request's `$<len>` is above the parser's limit ([`crate::RequestLimits`]).
    #[error("Protocol error: an argument of {len} bytes is over the limit of {limit} bytes")]
    ArgumentTooLong { len: usize, limit: usize },
    /// An element of a request array does not start with `$`.
    #[error("Protocol error: expected '$', got '{}'", EscapedByte(*.0))]
    ExpectedBulk(u8),
    /// An inline request line is longer than [`crate::MAX_INLINE_LEN`].
    #[error("Protocol error: too big inline request")]
    TooBigInlineRequest,
    /// An inline request contains a quote character; quoted arguments are not supported.
    #[error("Protocol error: quoted inline arguments are not supported")]
    QuotedInlineArgument,
    /// A CR is followed by something other than LF, or bulk data is not followed by CRLF.
    #[error("Protocol error: expected CRLF")]
    ExpectedCrlf,
    /// A reply starts with a byte that is no RESP2 or RESP3 type.
    #[error("Protocol error: invalid reply type byte '{}'", EscapedByte(*.0))]
    InvalidReplyType(u8),
    /// A reply aggregate's element count is not a number, is negative, or is too large.
    #[error("Protocol error: invalid aggregate length")]
    InvalidAggregateLength,
    /// The text of a one-line reply does not fit its type (e.g. `#x` or `:12a`).
    #[error("Protocol error: invalid {} reply", .0.name())]
    InvalidReplyValue(ReplyType),
}

/// Displays a byte as itself when it is printable ASCII, and as `\xNN` otherwise.
struct EscapedByte(u8);

impl fmt::Display for EscapedByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() || self.0 == b' ' {
            write!(f, "{}", char::from(self.0))
        } else {
            write!(f, "\\x{:02x}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_redis() {
        assert_eq!(
            ProtocolError::InvalidMultibulkLength.to_string(),
            "Protocol error: invalid multibulk length"
        );
        assert_eq!(
            ProtocolError::InvalidBulkLength.to_string(),
            "Protocol error: invalid bulk length"
        );
        assert_eq!(
            ProtocolError::ExpectedBulk(b'x').to_string(),
            "Protocol error: expected '$', got 'x'"
        );
        assert_eq!(
            ProtocolError::TooBigInlineRequest.to_string(),
            "Protocol error: too big inline request"
        );
        assert_eq!(
            ProtocolError::QuotedInlineArgument.to_string(),
            "Protocol error: quoted inline arguments are not supported"
        );
        assert_eq!(
            ProtocolError::InvalidReplyType(b'x').to_string(),
            "Protocol error: invalid reply type byte 'x'"
        );
        assert_eq!(
            ProtocolError::InvalidReplyValue(ReplyType::Boolean).to_string(),
            "Protocol error: invalid boolean reply"
        );
    }

    #[test]
    fn unprintable_bytes_are_escaped() {
        assert_eq!(
            ProtocolError::ExpectedBulk(b'\r').to_string(),
            "Protocol error: expected '$', got '\\x0d'"
        );
        assert_eq!(
            ProtocolError::InvalidReplyType(0xff).to_string(),
            "Protocol error: invalid reply type byte '\\xff'"
        );
        assert_eq!(
            ProtocolError::ExpectedBulk(b' ').to_string(),
            "Protocol error: expected '$', got ' '"
        );
    }

    #[test]
    fn no_message_contains_a_line_break() {
        for byte in 0..=u8::MAX {
            for error in [
                ProtocolError::ExpectedBulk(byte),
                ProtocolError::InvalidReplyType(byte),
            ] {
                let text = error.to_string();
                assert!(!text.contains(['\r', '\n']), "{text:?}");
            }
        }
    }
}
