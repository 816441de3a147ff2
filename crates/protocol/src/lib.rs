//! RESP2/RESP3 framing for rampart, with no I/O.
//!
//! The proxy reads client bytes into a buffer and asks [`RequestParser`] where each request
//! ends and where its arguments are; it routes the request by key and forwards the raw bytes.
//! Backend replies go through [`ReplyParser`], which only finds where each reply ends so the
//! bytes can be passed to the client unchanged. Neither parser copies data: they report byte
//! ranges into the caller's buffer, and both are resumable, so a frame that arrives over many
//! reads costs time proportional to its size.
//!
//! The [`inspect`] helpers read a complete reply (to merge the fragments of a split multi-key
//! command or to recognise backend errors), and [`encode`] writes the replies and requests the
//! proxy makes itself.
//!
//! Framing a pipeline of requests:
//!
//! ```
//! use rampart_protocol::RequestParser;
//!
//! let buf = b"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\nPING\r\n*1\r\n$4\r\nPI";
//! let mut parser = RequestParser::new();
//! let mut consumed = 0;
//! let mut commands = Vec::new();
//! while let Some(frame) = parser.parse(&buf[consumed..])? {
//!     let request = &buf[consumed..consumed + frame.byte_len()];
//!     if !frame.is_empty() {
//!         commands.push(frame.arg(0, request).unwrap_or_default().to_vec());
//!     }
//!     consumed += frame.byte_len();
//! }
//! assert_eq!(commands, [b"GET".to_vec(), b"PING".to_vec()]);
//! // The last request is incomplete: read more bytes, then call `parse` again with
//! // `&buf[consumed..]` grown; the parser resumes where it stopped.
//! # Ok::<(), rampart_protocol::ProtocolError>(())
//! ```
//!
//! Modules:
//! - [`request`]: client request framing (RESP arrays of bulk strings and inline commands);
//! - [`reply`]: backend reply framing (every RESP2 and RESP3 type);
//! - [`inspect`]: reading the contents of a complete reply;
//! - [`encode`]: writing replies and requests;
//! - [`error`]: the protocol error type, worded as Redis words its replies.

// Nothing a client, a config file or a peer sends may panic the process: every index, unwrap
// and panic in code that ships is a compile error (tests are free to use them).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unreachable))]
#![cfg_attr(not(test), deny(clippy::todo, clippy::unimplemented))]

pub mod encode;
pub mod error;
pub mod inspect;
pub mod reply;
mod reply_type;
pub mod request;
mod scan;
#[cfg(test)]
mod testing;

pub use error::ProtocolError;
pub use inspect::{
    Elements, elements, error_code, is_ok_status, parse_integer_reply, string_value,
};
pub use reply::{ReplyFrame, ReplyParser, ReplyType};
pub use request::{
    Args, MAX_BULK_LEN, MAX_INLINE_LEN, MAX_MULTIBULK_LEN, RequestFrame, RequestLimits,
    RequestParser,
};

/// The RESP version spoken on a connection.
///
/// Clients start in RESP2 and switch to RESP3 with `HELLO 3`. The parsers accept both
/// versions; the encoders use it to choose between a RESP3 type and its RESP2 fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// RESP2, the protocol every connection starts with.
    #[default]
    Resp2,
    /// RESP3, negotiated with `HELLO 3`.
    Resp3,
}
