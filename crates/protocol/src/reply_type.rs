//! The RESP2 and RESP3 value types, named after the first byte that announces each, shared by
//! the reply framer, the inspection helpers and the protocol errors.

/// The type of a RESP2 or RESP3 value, named after its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyType {
    /// `+OK`
    SimpleString,
    /// `-ERR message`
    Error,
    /// `:42`
    Integer,
    /// `$5\r\nhello`, or the RESP2 null `$-1`
    BulkString,
    /// `*2` followed by two values, or the RESP2 null array `*-1`
    Array,
    /// `_`, the RESP3 null
    Null,
    /// `#t` or `#f`
    Boolean,
    /// `,3.14`, `,inf`, `,nan`
    Double,
    /// `(3492890328409238509324850943850943825024385`
    BigNumber,
    /// `!21\r\nSYNTAX invalid syntax`
    BlobError,
    /// `=15\r\ntxt:Some string`
    VerbatimString,
    /// `%2` followed by two key-value pairs
    Map,
    /// `~2` followed by two values
    Set,
    /// `>2` followed by two values: out-of-band data, not the reply to a request
    Push,
    /// `|1` followed by one key-value pair, then the value the attribute annotates
    Attribute,
}

impl ReplyType {
    /// The type announced by a value's first byte, if it is one.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            b'+' => Self::SimpleString,
            b'-' => Self::Error,
            b':' => Self::Integer,
            b'$' => Self::BulkString,
            b'*' => Self::Array,
            b'_' => Self::Null,
            b'#' => Self::Boolean,
            b',' => Self::Double,
            b'(' => Self::BigNumber,
            b'!' => Self::BlobError,
            b'=' => Self::VerbatimString,
            b'%' => Self::Map,
            b'~' => Self::Set,
            b'>' => Self::Push,
            b'|' => Self::Attribute,
            _ => return None,
        })
    }

    /// The first byte of a value of this type.
    pub fn byte(self) -> u8 {
        match self {
            Self::SimpleString => b'+',
            Self::Error => b'-',
            Self::Integer => b':',
            Self::BulkString => b'$',
            Self::Array => b'*',
            Self::Null => b'_',
            Self::Boolean => b'#',
            Self::Double => b',',
            Self::BigNumber => b'(',
            Self::BlobError => b'!',
            Self::VerbatimString => b'=',
            Self::Map => b'%',
            Self::Set => b'~',
            Self::Push => b'>',
            Self::Attribute => b'|',
        }
    }

    /// A lower-case name for messages, such as `simple string`.
    pub fn name(self) -> &'static str {
        match self {
            Self::SimpleString => "simple string",
            Self::Error => "error",
            Self::Integer => "integer",
            Self::BulkString => "bulk string",
            Self::Array => "array",
            Self::Null => "null",
            Self::Boolean => "boolean",
            Self::Double => "double",
            Self::BigNumber => "big number",
            Self::BlobError => "blob error",
            Self::VerbatimString => "verbatim string",
            Self::Map => "map",
            Self::Set => "set",
            Self::Push => "push",
            Self::Attribute => "attribute",
        }
    }

    /// Whether values of this type are errors (`-` or `!`).
    pub fn is_error(self) -> bool {
        matches!(self, Self::Error | Self::BlobError)
    }

    /// Whether values of this type contain other values (`*`, `%`, `~`, `>`, `|`).
    pub fn is_aggregate(self) -> bool {
        matches!(
            self,
            Self::Array | Self::Map | Self::Set | Self::Push | Self::Attribute
        )
    }
}
