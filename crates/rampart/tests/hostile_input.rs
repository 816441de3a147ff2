//! Hostile input over real sockets. One rampart over two redis-servers takes a table of bad
//! requests: truncated frames; negative, huge and non-digit lengths; bare CRLFs and LFs; inline
//! commands with quotes, NULs and odd whitespace; 1 MB names and keys; overlong inline lines;
//! RESP3 frames and nested arrays as requests; huge argument counts; pipelines mixing valid
//! and invalid requests; half-closes, hang-ups and byte-by-byte sends; seeded random bytes.
//! Each case is sent as the table says. After each one the proxy must still run, another
//! client must still be served, and the answer (replies, then a close or a still-open
//! connection, never a hang) must be what the table wants and what a real redis-server answers
//! to the same bytes, unless the case says why rampart deliberately differs. At the end,
//! rampart's RSS must come back near its baseline. The same table also runs from several
//! clients at once; a client that never reads its replies must stall no one and have its
//! memory given back once it hangs up; and on a pool with a password, clients that have not
//! authenticated are held to Redis's limits.

mod support;

use std::fmt;
use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::process::{Redis, vm_rss_kb};
use support::random::Rng;
use support::resp::{Client, Reply, bulk, cmd, encode, encode_all, ok};
use support::shards::Cluster;
use support::tail;

/// How long a read or a write may wait before the case counts as hung.
const PATIENCE: Duration = Duration::from_secs(10);

/// How far above its baseline rampart's RSS may stay once the cases are over: allocators keep
/// some freed memory.
const RSS_MARGIN_KIB: u64 = 32 * 1024;

/// One MiB, the size of the big names and keys.
const MIB: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------
// What a case is.
// ---------------------------------------------------------------------------------------------

/// How the bytes of a case are sent, always from a thread of their own while replies are read.
#[derive(Clone, Copy)]
enum How {
    /// In one write.
    Whole,
    /// In one write, then shutdown(Write): the server reads end of stream after them.
    HalfClose,
    /// One byte a write, a millisecond apart.
    ByteByByte,
    /// In writes of this many bytes.
    Chunks(usize),
    /// In one write, then the client closes the socket without reading a reply.
    HangUp,
}

/// What a server must answer to a case.
enum Want {
    /// Replies whose first lines start with these texts, then the connection still answers
    /// a PING.
    Open(Vec<&'static str>),
    /// Replies whose first lines start with these texts, then the server closes the connection.
    Closed(Vec<&'static str>),
    /// Any replies, then the server closes the connection (random input, half-closed).
    AnyThenClosed,
    /// Nothing to read: the client hung up.
    Nothing,
}

fn open(replies: &[&'static str]) -> Want {
    Want::Open(replies.to_vec())
}

fn closed(replies: &[&'static str]) -> Want {
    Want::Closed(replies.to_vec())
}

/// How a real redis-server answers the same bytes, sent the same way.
enum Parity {
    /// Alike: the same first reply lines (the same class for errors), and it closes the
    /// connection or keeps it open alike.
    Same,
    /// Otherwise, as this says, and why rampart deliberately differs.
    Differs { redis: Want, why: &'static str },
    /// Not compared, and why.
    NotCompared(&'static str),
}

struct Case {
    name: String,
    bytes: Vec<u8>,
    how: How,
    want: Want,
    parity: Parity,
}

impl Case {
    fn new(name: impl Into<String>, bytes: impl AsRef<[u8]>, how: How, want: Want) -> Case {
        let name = name.into();
        assert_eq!(
            matches!(how, How::HangUp),
            matches!(want, Want::Nothing),
            "case {name}: only a client that hangs up wants nothing"
        );
        Case {
            name,
            bytes: bytes.as_ref().to_vec(),
            how,
            want,
            parity: Parity::Same,
        }
    }

    fn redis_answers(mut self, redis: Want, why: &'static str) -> Case {
        self.parity = Parity::Differs { redis, why };
        self
    }

    fn not_compared(mut self, why: &'static str) -> Case {
        self.parity = Parity::NotCompared(why);
        self
    }
}

/// A command with text arguments, as RESP.
fn resp(args: &[&str]) -> Vec<u8> {
    encode_all(&[cmd(args)])
}

/// `*<count>\r\n$3\r\nFOO\r\n` and `count - 1` arguments `a`: an unknown command with
/// `count` arguments in all.
fn unknown_with_arguments(count: usize) -> Vec<u8> {
    let mut bytes = format!("*{count}\r\n$3\r\nFOO\r\n").into_bytes();
    bytes.extend(b"$1\r\na\r\n".repeat(count - 1));
    bytes
}

/// SET of a 1 MiB key, then GET of it.
fn set_and_get_big_key(prefix: u8) -> Vec<u8> {
    let key = vec![prefix; MIB];
    [encode(&[b"SET", &key, b"big"]), encode(&[b"GET", &key])].concat()
}

/// A pipeline of valid commands with some bytes overwritten at random.
fn mutated_pipeline(seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut bytes = encode_all(&[
        cmd(&["SET", "hostile:rnd:a", "value"]),
        cmd(&["GET", "hostile:rnd:a"]),
        cmd(&["MGET", "hostile:rnd:a", "hostile:rnd:b", "hostile:rnd:c"]),
        cmd(&["PING"]),
        cmd(&["DEL", "hostile:rnd:a", "hostile:rnd:b"]),
    ])
    .repeat(8);
    for _ in 0..12 {
        let at = rng.below(bytes.len() as u64) as usize;
        bytes[at] = rng.bytes(1)[0];
    }
    bytes
}

const UNKNOWN_FOO: &str = "-ERR unknown command 'FOO'";
const BAD_COUNT: &str = "-ERR Protocol error: invalid multibulk length";
const BAD_LENGTH: &str = "-ERR Protocol error: invalid bulk length";
const NO_CRLF: &str = "-ERR Protocol error: expected CRLF";
const TOO_BIG_INLINE: &str = "-ERR Protocol error: too big inline request";
const QUOTES: &str = "-ERR Protocol error: quoted inline arguments are not supported";

// Why rampart differs from redis-server, where it does on purpose.
const COUNT_CAP: &str = "rampart caps a request's argument count at 1,048,576 (Redis 6's \
     limit) to bound what one client makes it hold; Redis 7 accepts up to INT_MAX and waits";
const LIMIT_NAMED: &str = "rampart's error names the size it refused and the limit \
                           (client_max_request_args or client_max_request_bytes); Redis says \
                           only invalid multibulk or bulk length";
const STRICT_CRLF: &str = "Redis skips the two bytes after a length line's CR or a bulk \
     without looking at them; rampart checks they are CRLF, as nutcracker does, and anything \
     else means the stream is out of sync: a protocol error, then the close";
const NO_QUOTES: &str = "rampart does not unescape quoted inline arguments (Redis does); it \
     refuses them with a protocol error rather than guess";
const INLINE_NUL: &str = "Redis looks for an inline line's end with strchr, which stops at a \
     NUL, so it never answers the line; rampart frames the line by its length";
const EOF_DROPS_REPLIES: &str = "redis-server drops the replies it has not yet written once \
     it reads end of stream; rampart writes them all before it closes";
const NUMKEYS_FIRST: &str = "rampart reads numkeys to route the script before any server \
     looks the script up";
const RANDOM: &str = "random bytes mix quotes, NULs and bad bulk terminators, where the \
     cases above document the differences";

// Bugs the table shows (see the cases marked with them).

/// Every case, in the order they run.
fn cases() -> Vec<Case> {
    use How::*;
    let mut cases = vec![
        // Argument counts.
        Case::new(
            "count INT_MAX",
            b"*2147483647\r\n",
            HalfClose,
            closed(&["-ERR Protocol error: a request of 2147483647 arguments is over the limit of 1048576"]),
        )
        .redis_answers(closed(&[]), COUNT_CAP),
        Case::new(
            "count at the cap, then EOF",
            b"*1048576\r\n",
            HalfClose,
            closed(&[]),
        ),
        Case::new(
            "count over the cap",
            b"*1048577\r\n",
            HalfClose,
            closed(&["-ERR Protocol error: a request of 1048577 arguments is over the limit of 1048576"]),
        )
        .redis_answers(closed(&[]), COUNT_CAP),
        Case::new(
            "count i64 max",
            b"*9223372036854775807\r\n",
            Whole,
            closed(&["-ERR Protocol error: a request of 9223372036854775807 arguments is over the limit of 1048576"]),
        )
        .redis_answers(closed(&[BAD_COUNT]), LIMIT_NAMED),
        Case::new(
            "count overflows i64",
            b"*99999999999999999999999\r\n",
            Whole,
            closed(&[BAD_COUNT]),
        ),
        Case::new("count -5", b"*-5\r\nPING\r\n", Whole, open(&["+PONG"])),
        Case::new("count -1", b"*-1\r\nPING\r\n", Whole, open(&["+PONG"])),
        Case::new(
            "count i64 min",
            b"*-9223372036854775808\r\nPING\r\n",
            Whole,
            open(&["+PONG"]),
        ),
        Case::new("count -0", b"*-0\r\n", Whole, closed(&[BAD_COUNT])),
        Case::new(
            "empty arrays",
            b"*0\r\n*0\r\nPING\r\n",
            Whole,
            open(&["+PONG"]),
        ),
        Case::new("count not a number", b"*x\r\n", Whole, closed(&[BAD_COUNT])),
        Case::new("count empty", b"*\r\n", Whole, closed(&[BAD_COUNT])),
        Case::new(
            "count with a plus",
            b"*+1\r\n$4\r\nPING\r\n",
            Whole,
            closed(&[BAD_COUNT]),
        ),
        Case::new(
            "count after a space",
            b"* 1\r\n$4\r\nPING\r\n",
            Whole,
            closed(&[BAD_COUNT]),
        ),
        Case::new(
            "count with a leading zero",
            b"*01\r\n$4\r\nPING\r\n",
            Whole,
            closed(&[BAD_COUNT]),
        ),
        Case::new(
            "count of 24 digits",
            b"*000000000000000000000001\r\n$4\r\nPING\r\n",
            Whole,
            closed(&[BAD_COUNT]),
        ),
        // Bulk lengths.
        Case::new(
            "length INT_MAX",
            b"*1\r\n$2147483647\r\n",
            Whole,
            closed(&["-ERR Protocol error: an argument of 2147483647 bytes is over the limit of 536870912 bytes"]),
        )
        .redis_answers(closed(&[BAD_LENGTH]), LIMIT_NAMED),
        Case::new(
            "length 512 MiB + 1",
            b"*1\r\n$536870913\r\n",
            Whole,
            closed(&["-ERR Protocol error: an argument of 536870913 bytes is over the limit of 536870912 bytes"]),
        )
        .redis_answers(closed(&[BAD_LENGTH]), LIMIT_NAMED),
        Case::new(
            "length 512 MiB, then EOF",
            b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$536870912\r\nabc",
            HalfClose,
            closed(&[]),
        ),
        Case::new(
            "length overflows i64",
            b"*1\r\n$99999999999999999999999\r\n",
            Whole,
            closed(&[BAD_LENGTH]),
        ),
        Case::new("length -1", b"*1\r\n$-1\r\n", Whole, closed(&[BAD_LENGTH])),
        Case::new("length -5", b"*1\r\n$-5\r\n", Whole, closed(&[BAD_LENGTH])),
        Case::new(
            "length not a number",
            b"*1\r\n$abc\r\n",
            Whole,
            closed(&[BAD_LENGTH]),
        ),
        Case::new(
            "length after a space",
            b"*1\r\n$ 4\r\nPING\r\n",
            Whole,
            closed(&[BAD_LENGTH]),
        ),
        Case::new(
            "length with a plus",
            b"*1\r\n$+4\r\nPING\r\n",
            Whole,
            closed(&[BAD_LENGTH]),
        ),
        Case::new(
            "length with a leading zero",
            b"*1\r\n$04\r\nPING\r\n",
            Whole,
            closed(&[BAD_LENGTH]),
        ),
        Case::new(
            "length of 25 digits",
            b"*1\r\n$0000000000000000000000004\r\nPING\r\n",
            Whole,
            closed(&[BAD_LENGTH]),
        ),
        // The shape of a frame.
        Case::new(
            "nested array",
            b"*1\r\n*1\r\n$4\r\nPING\r\n",
            Whole,
            closed(&["-ERR Protocol error: expected '$', got '*'"]),
        ),
        Case::new(
            "integer as an argument",
            b"*1\r\n:1\r\n",
            Whole,
            closed(&["-ERR Protocol error: expected '$', got ':'"]),
        ),
        Case::new(
            "bulk longer than its length",
            b"*1\r\n$2\r\nPING\r\n",
            Whole,
            closed(&[NO_CRLF]),
        )
        .redis_answers(open(&["-ERR unknown command 'PI'"]), STRICT_CRLF),
        Case::new(
            "bulk without its CRLF",
            b"*1\r\n$4\r\nPINGxx",
            Whole,
            closed(&[NO_CRLF]),
        )
        .redis_answers(open(&["+PONG"]), STRICT_CRLF),
        Case::new(
            "bulk ended by two LFs",
            b"*1\r\n$4\r\nPING\n\n",
            Whole,
            closed(&[NO_CRLF]),
        )
        .redis_answers(open(&["+PONG"]), STRICT_CRLF),
        Case::new(
            "count line CR without LF",
            b"*1\rX$4\r\nPING\r\n",
            Whole,
            closed(&[NO_CRLF]),
        )
        .redis_answers(open(&["+PONG"]), STRICT_CRLF),
        Case::new(
            "lines ended by LF alone, then EOF",
            b"*1\n$4\nPING\n",
            HalfClose,
            closed(&[]),
        ),
        Case::new(
            "truncated SET, then EOF",
            b"*3\r\n$3\r\nSET\r\n$1\r\n",
            HalfClose,
            closed(&[]),
        ),
        Case::new(
            "truncated inline, then EOF",
            b"PING",
            HalfClose,
            closed(&[]),
        ),
        Case::new(
            "PING then a truncated GET, then EOF",
            b"PING\r\n*2\r\n$3\r\nGET\r\n$10\r\nabc",
            HalfClose,
            closed(&["+PONG"]),
        ),
        Case::new(
            "empty command name",
            b"*1\r\n$0\r\n\r\n",
            Whole,
            open(&["-ERR unknown command ''"]),
        ),
        // Bare line ends and inline commands.
        Case::new(
            "bare CRLFs",
            b"\r\n\r\n\r\nPING\r\n",
            Whole,
            open(&["+PONG"]),
        ),
        Case::new("bare LFs", b"\n\n\nPING\n", Whole, open(&["+PONG"])),
        Case::new(
            "blank inline line",
            b"  \t \r\nPING\r\n",
            Whole,
            open(&["+PONG"]),
        ),
        Case::new(
            "CR inside an inline line",
            b"PING\rPING\r\n",
            Whole,
            open(&["$4"]),
        ),
        Case::new(
            "inline with tabs",
            b"\tSET\thostile:tab\tv\t\r\nGET hostile:tab\n",
            Whole,
            open(&["+OK", "$1"]),
        ),
        Case::new(
            "unbalanced double quote",
            b"SET \"abc def\r\n",
            Whole,
            closed(&[QUOTES]),
        ),
        Case::new(
            "unbalanced single quote",
            b"SET 'abc def\r\n",
            Whole,
            closed(&[QUOTES]),
        ),
        Case::new(
            "balanced quotes",
            b"SET \"q k\" v\r\n",
            Whole,
            closed(&[QUOTES]),
        )
        .redis_answers(open(&["+OK"]), NO_QUOTES),
        Case::new("empty quoted name", b"\"\"\r\n", Whole, closed(&[QUOTES]))
            .redis_answers(open(&["-ERR unknown command ''"]), NO_QUOTES),
        Case::new(
            "vertical tab inside an inline word",
            b"SET hostile:vt\x0bv\r\n",
            Whole,
            open(&["-ERR wrong number of arguments for 'set' command"]),
        ),
        Case::new(
            "form feed ending an inline word",
            b"PING\x0c\r\n",
            Whole,
            open(&["-ERR unknown command 'PING\x0c'"]),
        ),
        // NUL bytes.
        Case::new(
            "NUL in an inline key",
            b"GET a\x00b\r\n",
            HalfClose,
            closed(&["$-1"]),
        )
        .redis_answers(closed(&[]), INLINE_NUL),
        Case::new(
            "NUL alone on an inline line",
            b"\x00\r\nPING\r\n",
            HalfClose,
            closed(&["-ERR unknown command ''", "+PONG"]),
        )
        .redis_answers(closed(&[]), INLINE_NUL),
        Case::new(
            "NUL in a command name",
            b"*2\r\n$4\r\nG\x00ET\r\n$1\r\na\r\n",
            Whole,
            open(&["-ERR unknown command 'G'"]),
        ),
        Case::new(
            "NUL in a key",
            [
                encode(&[b"SET", b"hostile:\x00k", b"v"]),
                encode(&[b"GET", b"hostile:\x00k"]),
            ]
            .concat(),
            Whole,
            open(&["+OK", "$1"]),
        ),
        Case::new(
            "NUL argument to PING",
            encode(&[b"PING", b"\x00"]),
            Whole,
            open(&["$1"]),
        ),
        // Big names, keys and lines.
        Case::new(
            "1 MiB command name",
            encode(&[&vec![b'A'; MIB]]),
            Whole,
            open(&["-ERR unknown command 'AAAA"]),
        ),
        Case::new(
            "1 MiB key",
            set_and_get_big_key(b'k'),
            Whole,
            open(&["+OK", "$3"]),
        ),
        Case::new(
            "1 MiB key in 1 KiB writes",
            set_and_get_big_key(b'c'),
            Chunks(1024),
            open(&["+OK", "$3"]),
        ),
        Case::new(
            "1 MiB inline line",
            [&vec![b'A'; MIB][..], b"\r\n"].concat(),
            Whole,
            closed(&[TOO_BIG_INLINE]),
        ),
        Case::new(
            "64 KiB inline without LF, then EOF",
            vec![b'A'; 64 * 1024],
            HalfClose,
            closed(&[]),
        ),
        Case::new(
            "64 KiB inline line, then its LF",
            [&vec![b'A'; 64 * 1024][..], b"\n"].concat(),
            Whole,
            open(&["-ERR unknown command 'AAAA"]),
        ),
        Case::new(
            "64 KiB inline line with its CR, then LF",
            [&vec![b'A'; 64 * 1024 - 1][..], b"\r\n"].concat(),
            Whole,
            open(&["-ERR unknown command 'AAAA"]),
        ),
        Case::new(
            "70 KiB inline without LF",
            vec![b'A'; 70 * 1024],
            Whole,
            closed(&[TOO_BIG_INLINE]),
        ),
        // RESP3 and reply frames sent as requests: inline lines to Redis and rampart alike.
        Case::new(
            "RESP3 map",
            b"%1\r\n+a\r\n+b\r\n",
            Whole,
            open(&[
                "-ERR unknown command '%1'",
                "-ERR unknown command '+a'",
                "-ERR unknown command '+b'",
            ]),
        ),
        Case::new(
            "RESP3 set",
            b"~1\r\n$4\r\nPING\r\n",
            Whole,
            open(&[
                "-ERR unknown command '~1'",
                "-ERR unknown command '$4'",
                "+PONG",
            ]),
        ),
        Case::new(
            "RESP3 push",
            b">1\r\n$4\r\nPING\r\n",
            Whole,
            open(&[
                "-ERR unknown command '>1'",
                "-ERR unknown command '$4'",
                "+PONG",
            ]),
        ),
        Case::new(
            "RESP3 null",
            b"_\r\n",
            Whole,
            open(&["-ERR unknown command '_'"]),
        ),
        Case::new(
            "RESP3 boolean",
            b"#t\r\n",
            Whole,
            open(&["-ERR unknown command '#t'"]),
        ),
        Case::new(
            "RESP3 double",
            b",1.5\r\n",
            Whole,
            open(&["-ERR unknown command ',1.5'"]),
        ),
        Case::new(
            "RESP3 big number",
            b"(123\r\n",
            Whole,
            open(&["-ERR unknown command '(123'"]),
        ),
        Case::new(
            "RESP3 verbatim string",
            b"=8\r\ntxt:PING\r\n",
            Whole,
            open(&[
                "-ERR unknown command '=8'",
                "-ERR unknown command 'txt:PING'",
            ]),
        ),
        Case::new(
            "RESP3 blob error",
            b"!3\r\nERR\r\n",
            Whole,
            open(&["-ERR unknown command '!3'", "-ERR unknown command 'ERR'"]),
        ),
        Case::new(
            "simple string",
            b"+PING\r\n",
            Whole,
            open(&["-ERR unknown command '+PING'"]),
        ),
        Case::new(
            "error",
            b"-ERR\r\n",
            Whole,
            open(&["-ERR unknown command '-ERR'"]),
        ),
        Case::new(
            "integer",
            b":1\r\n",
            Whole,
            open(&["-ERR unknown command ':1'"]),
        ),
        Case::new(
            "RESP3 map after HELLO 3",
            [resp(&["HELLO", "3"]), b"%1\r\n+a\r\n+b\r\n".to_vec()].concat(),
            Whole,
            open(&[
                "%7",
                "-ERR unknown command '%1'",
                "-ERR unknown command '+a'",
                "-ERR unknown command '+b'",
            ]),
        ),
        Case::new(
            "HELLO 3, then a bad length",
            [resp(&["HELLO", "3"]), b"*1\r\n$x\r\n".to_vec()].concat(),
            Whole,
            closed(&["%7", BAD_LENGTH]),
        ),
        // Many arguments, many commands.
        Case::new(
            "1,048,576 arguments",
            unknown_with_arguments(MIB),
            Whole,
            open(&["-ERR unknown command 'FOO', with args beginning with: 'a' 'a'"]),
        ),
        Case::new(
            "MGET of 100,000 keys",
            encode_all(&[["MGET".to_string()]
                .into_iter()
                .chain((0..100_000).map(|n| format!("hostile:mget:{n}")))
                .map(String::into_bytes)
                .collect()]),
            Whole,
            open(&["*100000"]),
        ),
        Case::new(
            "10,000 unknown commands, then EOF",
            resp(&["FOO"]).repeat(10_000),
            HalfClose,
            Want::Closed(vec![UNKNOWN_FOO; 10_000]),
        )
        .not_compared(EOF_DROPS_REPLIES),
        Case::new(
            "DEL without keys",
            resp(&["DEL"]),
            Whole,
            open(&["-ERR wrong number of arguments for 'del' command"]),
        ),
        Case::new(
            "MSET missing a value",
            resp(&["MSET", "hostile:a", "1", "hostile:b"]),
            Whole,
            open(&["-ERR wrong number of arguments for 'mset' command"]),
        ),
        Case::new(
            "5,000 GETs, then a bad length",
            [
                resp(&["GET", "hostile:many"]).repeat(5_000),
                b"*1\r\n$x\r\n".to_vec(),
            ]
            .concat(),
            Whole,
            Want::Closed([vec!["$-1"; 5_000], vec![BAD_LENGTH]].concat()),
        ),
        // Pipelines mixing valid and invalid requests.
        Case::new(
            "valid, unknown, bad arity, valid, bad frame, valid",
            [
                resp(&["SET", "hostile:pm", "1"]),
                resp(&["FOO"]),
                resp(&["GET"]),
                resp(&["GET", "hostile:pm"]),
                b"*1\r\n$x\r\n".to_vec(),
                resp(&["SET", "hostile:pm", "22"]),
            ]
            .concat(),
            Whole,
            closed(&[
                "+OK",
                UNKNOWN_FOO,
                "-ERR wrong number of arguments for 'get' command",
                "$1",
                BAD_LENGTH,
            ]),
        ),
        // What followed the bad frame was not run: the value is still "1".
        Case::new(
            "nothing after a bad frame ran",
            resp(&["GET", "hostile:pm"]),
            Whole,
            open(&["$1"]),
        ),
        Case::new(
            "MGET over both shards, then a nested array",
            [
                resp(&["MGET", "hostile:a", "hostile:b", "hostile:c", "hostile:d"]),
                b"*1\r\n*0\r\n".to_vec(),
            ]
            .concat(),
            Whole,
            closed(&["*4", "-ERR Protocol error: expected '$', got '*'"]),
        ),
        Case::new(
            "garbage after a valid command",
            b"PING\r\n\xff\xfe garbage\r\n",
            Whole,
            open(&["+PONG", "-ERR unknown command '\u{fffd}\u{fffd}'"]),
        ),
        Case::new(
            "a partial line after valid commands, then EOF",
            b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\nxyz",
            HalfClose,
            closed(&["+PONG", "+PONG"]),
        ),
        Case::new(
            "QUIT, then garbage",
            b"QUIT\r\n*1\r\n$x\r\n\xff\xff",
            Whole,
            closed(&["+OK"]),
        ),
        Case::new(
            "QUIT after an MGET over both shards",
            [
                resp(&["MGET", "hostile:a", "hostile:b", "hostile:c", "hostile:d"]),
                resp(&["QUIT"]),
                resp(&["GET", "hostile:a"]),
            ]
            .concat(),
            Whole,
            closed(&["*4", "+OK"]),
        ),
        // Half-closed sockets: every reply still arrives.
        Case::new(
            "two PINGs, then EOF",
            b"PING\r\nPING\r\n",
            HalfClose,
            closed(&["+PONG", "+PONG"]),
        ),
        Case::new(
            "SET and GET, then EOF",
            [
                resp(&["SET", "hostile:hc", "v"]),
                resp(&["GET", "hostile:hc"]),
            ]
            .concat(),
            HalfClose,
            closed(&["+OK", "$1"]),
        ),
        // Clients that hang up with replies pending.
        Case::new(
            "hang-up after 5,000 GETs",
            resp(&["GET", "hostile:hang"]).repeat(5_000),
            HangUp,
            Want::Nothing,
        ),
        Case::new(
            "hang-up halfway through a 1 MiB key",
            &set_and_get_big_key(b'h')[..MIB / 2],
            HangUp,
            Want::Nothing,
        ),
        // Very slow clients.
        Case::new(
            "SET and GET byte by byte",
            [
                resp(&["SET", "hostile:slow", "v"]),
                b"GET hostile:slow\n".to_vec(),
            ]
            .concat(),
            ByteByByte,
            open(&["+OK", "$1"]),
        ),
        Case::new(
            "bad length byte by byte",
            b"*1\r\n$x\r\n",
            ByteByByte,
            closed(&[BAD_LENGTH]),
        ),
        Case::new(
            "nested array byte by byte",
            b"*2\r\n$3\r\nGET\r\n*1\r\n",
            ByteByByte,
            closed(&["-ERR Protocol error: expected '$', got '*'"]),
        ),
        Case::new(
            "bare LFs byte by byte",
            b"\n\n\nPING\n",
            ByteByByte,
            open(&["+PONG"]),
        ),
        // Commands the proxy answers itself, with hostile arguments.
        Case::new(
            "HELLO 4",
            resp(&["HELLO", "4"]),
            Whole,
            open(&["-NOPROTO unsupported protocol version"]),
        ),
        Case::new(
            "HELLO -1",
            resp(&["HELLO", "-1"]),
            Whole,
            open(&["-NOPROTO unsupported protocol version"]),
        ),
        Case::new(
            "HELLO 03",
            resp(&["HELLO", "03"]),
            Whole,
            open(&["-ERR Protocol version is not an integer or out of range"]),
        ),
        Case::new(
            "HELLO of 23 digits",
            resp(&["HELLO", "99999999999999999999999"]),
            Whole,
            open(&["-ERR Protocol version is not an integer or out of range"]),
        ),
        Case::new(
            "CLIENT SETNAME with a newline",
            resp(&["CLIENT", "SETNAME", "a\nb"]),
            Whole,
            open(&["-ERR Client names cannot contain spaces, newlines or special characters."]),
        ),
        Case::new(
            "HELLO 3 SETNAME with a space",
            resp(&["HELLO", "3", "SETNAME", "a b"]),
            Whole,
            open(&["-ERR Client names cannot contain spaces, newlines or special characters."]),
        ),
        Case::new(
            "HELLO 2 SETNAME with a newline",
            resp(&["HELLO", "2", "SETNAME", "x\nid=0"]),
            Whole,
            open(&["-ERR Client names cannot contain spaces, newlines or special characters."]),
        ),
        Case::new(
            "COMMAND COUNT with an argument",
            resp(&["COMMAND", "COUNT", "x"]),
            Whole,
            open(&["-ERR wrong number of arguments for 'command|count' command"]),
        ),
        Case::new(
            "unknown command with a 200-byte argument",
            resp(&["fooBar", &"x".repeat(200)]),
            Whole,
            open(&["-ERR unknown command 'fooBar', with args beginning with: 'xxxx"]),
        ),
        // Key counts in the arguments, which the proxy reads to route.
        Case::new(
            "EVAL numkeys -1",
            resp(&["EVAL", "return 1", "-1"]),
            Whole,
            open(&["-ERR Number of keys can't be negative"]),
        ),
        Case::new(
            "EVAL numkeys beyond the arguments",
            resp(&["EVAL", "return 1", "99999999999", "hostile:a"]),
            Whole,
            open(&["-ERR Number of keys can't be greater than number of args"]),
        ),
        Case::new(
            "EVAL numkeys not a number",
            resp(&["EVAL", "return 1", "abc", "hostile:a"]),
            Whole,
            open(&["-ERR value is not an integer or out of range"]),
        ),
        Case::new(
            "EVALSHA numkeys -5",
            resp(&["EVALSHA", "abc", "-5"]),
            Whole,
            open(&["-ERR Number of keys can't be negative"]),
        )
        .redis_answers(open(&["-NOSCRIPT"]), NUMKEYS_FIRST),
        Case::new(
            "ZUNIONSTORE numkeys beyond the arguments",
            resp(&["ZUNIONSTORE", "hostile:d", "99999999999", "hostile:a"]),
            Whole,
            open(&["-ERR syntax error"]),
        ),
        Case::new(
            "LMPOP numkeys -1",
            resp(&["LMPOP", "-1", "hostile:a", "LEFT"]),
            Whole,
            open(&["-ERR numkeys should be greater than 0"]),
        ),
        Case::new(
            "XREAD with unbalanced streams",
            resp(&["XREAD", "STREAMS", "hostile:a", "hostile:b", "0"]),
            Whole,
            open(&["-ERR Unbalanced XREAD list of streams"]),
        ),
    ];
    // Seeded random bytes, and valid pipelines with random bytes overwritten.
    for seed in 1..=6 {
        cases.push(
            Case::new(
                format!("2 KiB of random bytes, seed {seed}"),
                Rng::new(seed).bytes(2048),
                HalfClose,
                Want::AnyThenClosed,
            )
            .not_compared(RANDOM),
        );
    }
    for seed in 1..=6 {
        cases.push(
            Case::new(
                format!("mutated pipeline, seed {seed}"),
                mutated_pipeline(seed),
                HalfClose,
                Want::AnyThenClosed,
            )
            .not_compared(RANDOM),
        );
    }
    cases
}

// ---------------------------------------------------------------------------------------------
// Sending a case and reading what comes back.
// ---------------------------------------------------------------------------------------------

/// How a connection ended, as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum End {
    /// It answered the PING sent after the wanted replies.
    Open,
    /// The server closed it (end of stream or reset).
    Closed,
    /// Nothing came within `PATIENCE`.
    Hung,
    /// A reply beyond those wanted (its first line).
    Extra(String),
    /// Bytes that are not RESP, or another I/O error.
    Broken(String),
    /// The client hung up without reading.
    HungUp,
}

/// What a server answered: the first line of each reply, and how the connection ended.
struct Outcome {
    replies: Vec<String>,
    end: End,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self
            .replies
            .iter()
            .take(6)
            .map(|line| shorten(line))
            .collect();
        let more = self.replies.len().saturating_sub(shown.len());
        write!(f, "{shown:?}")?;
        if more > 0 {
            write!(f, " and {more} more")?;
        }
        write!(f, ", then {:?}", self.end)
    }
}

fn shorten(line: &str) -> String {
    if line.len() <= 60 {
        return line.to_string();
    }
    let cut = (0..=60)
        .rev()
        .find(|&at| line.is_char_boundary(at))
        .unwrap_or(0);
    format!("{}...({} bytes)", &line[..cut], line.len())
}

/// A reply's first line as it came on the wire (`+OK`, `-ERR ...`, `$3`, `*2`, `%7`...).
fn first_line(reply: &Reply) -> String {
    match reply {
        Reply::Status(text) => format!("+{text}"),
        Reply::Error(text) => format!("-{text}"),
        Reply::Integer(number) => format!(":{number}"),
        Reply::Bulk(None) => "$-1".into(),
        Reply::Bulk(Some(bytes)) => format!("${}", bytes.len()),
        Reply::Array(None) => "*-1".into(),
        Reply::Array(Some(items)) => format!("*{}", items.len()),
        Reply::Null => "_".into(),
        Reply::Map(pairs) => format!("%{}", pairs.len()),
        Reply::Set(items) => format!("~{}", items.len()),
        Reply::Push(items) => format!(">{}", items.len()),
        Reply::Double(text) => format!(",{text}"),
        Reply::Boolean(value) => format!("#{}", if *value { 't' } else { 'f' }),
        Reply::BigNumber(text) => format!("({text}"),
        Reply::Verbatim(format, text) => format!("={}", format.len() + 1 + text.len()),
        Reply::BlobError(text) => format!("!{}", text.len()),
    }
}

/// Sends `bytes` to `port` as `how` says and reads what `want` expects, then how the
/// connection ends.
fn exchange(port: u16, bytes: &[u8], how: How, want: &Want) -> Outcome {
    let mut client = Client::connect_with_timeout(port, PATIENCE)
        .unwrap_or_else(|error| panic!("connect to 127.0.0.1:{port}: {error}"));
    let writer = write_in_background(&client, bytes.to_vec(), how);
    let count = match want {
        Want::Open(replies) | Want::Closed(replies) => replies.len(),
        Want::AnyThenClosed => usize::MAX,
        Want::Nothing => {
            writer.join().expect("writer thread");
            return Outcome {
                replies: Vec::new(),
                end: End::HungUp,
            };
        }
    };
    let mut replies = Vec::new();
    let mut end = None;
    while replies.len() < count {
        match client.read_reply() {
            Ok(reply) => replies.push(first_line(&reply)),
            Err(error) => {
                end = Some(end_of(&error));
                break;
            }
        }
    }
    writer.join().expect("writer thread");
    let end = end.unwrap_or_else(|| end_after_replies(&mut client, how));
    Outcome { replies, end }
}

/// Writes `bytes` as `how` says from a thread of its own, so that a server which stops reading
/// while its replies are unread cannot deadlock the case. A server may close the connection
/// before it has read everything (after a protocol error), so a failed write just ends the
/// sending: the replies tell the rest.
fn write_in_background(client: &Client, bytes: Vec<u8>, how: How) -> JoinHandle<()> {
    let mut stream = client.try_clone_stream().expect("clone the socket");
    stream
        .set_write_timeout(Some(PATIENCE))
        .expect("set a write timeout");
    std::thread::spawn(move || {
        let _ = send(&mut stream, &bytes, how);
    })
}

fn send(stream: &mut TcpStream, bytes: &[u8], how: How) -> io::Result<()> {
    match how {
        How::Whole | How::HangUp => stream.write_all(bytes),
        How::HalfClose => {
            stream.write_all(bytes)?;
            stream.shutdown(Shutdown::Write)
        }
        How::ByteByByte => {
            for byte in bytes {
                stream.write_all(std::slice::from_ref(byte))?;
                // Pacing, not synchronisation: each byte reaches the server on its own.
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(())
        }
        How::Chunks(size) => bytes
            .chunks(size)
            .try_for_each(|chunk| stream.write_all(chunk)),
    }
}

/// How the connection ends once the wanted replies are read: after a half-close the server
/// must close it; otherwise a PING tells whether it is still open.
fn end_after_replies(client: &mut Client, how: How) -> End {
    let half_closed = matches!(how, How::HalfClose);
    if !half_closed {
        let probe = client
            .try_clone_stream()
            .and_then(|mut stream| stream.write_all(&encode(&[b"PING"])));
        if probe.is_err() {
            return End::Closed;
        }
    }
    match client.read_reply() {
        Ok(Reply::Status(text)) if text == "PONG" && !half_closed => End::Open,
        Ok(reply) => End::Extra(first_line(&reply)),
        Err(error) => end_of(&error),
    }
}

fn end_of(error: &io::Error) -> End {
    match error.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted => End::Closed,
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => End::Hung,
        _ => End::Broken(error.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Judging an outcome.
// ---------------------------------------------------------------------------------------------

/// The longest reply line a client may get: an error quotes at most a short part of what the
/// client sent, never a 1 MiB name back.
const MAX_REPLY_LINE: usize = 1024;

/// Whether `outcome` is what `want` asks for.
fn check(want: &Want, outcome: &Outcome) -> Result<(), String> {
    if let Some(line) = outcome
        .replies
        .iter()
        .find(|line| line.len() > MAX_REPLY_LINE)
    {
        return Err(format!(
            "a reply line of {} bytes: {}",
            line.len(),
            shorten(line)
        ));
    }
    let (replies, end) = match want {
        Want::Open(replies) => (Some(replies), End::Open),
        Want::Closed(replies) => (Some(replies), End::Closed),
        Want::AnyThenClosed => (None, End::Closed),
        Want::Nothing => (None, End::HungUp),
    };
    let replies_match = replies.is_none_or(|replies| {
        replies.len() == outcome.replies.len()
            && replies
                .iter()
                .zip(&outcome.replies)
                .all(|(want, got)| got.starts_with(want))
    });
    if replies_match && outcome.end == end {
        Ok(())
    } else {
        let replies: Vec<String> = replies
            .into_iter()
            .flatten()
            .take(6)
            .map(|line| shorten(line))
            .collect();
        Err(format!("wanted {replies:?}, then {end:?}; got {outcome}"))
    }
}

/// A reply line as parity compares it: errors by their class (the first word, or `ERR
/// Protocol error`), other replies whole.
fn class(line: &str) -> String {
    match line.strip_prefix('-') {
        Some(error) if error.starts_with("ERR Protocol error") => "-ERR Protocol error".into(),
        Some(error) => format!("-{}", error.split(' ').next().unwrap_or_default()),
        None => line.to_string(),
    }
}

fn same_answer(ours: &Outcome, theirs: &Outcome) -> bool {
    ours.end == theirs.end
        && ours.replies.len() == theirs.replies.len()
        && ours
            .replies
            .iter()
            .zip(&theirs.replies)
            .all(|(a, b)| class(a) == class(b))
}

// ---------------------------------------------------------------------------------------------
// Around the cases: another client, and rampart's memory.
// ---------------------------------------------------------------------------------------------

/// Another client, connected before the cases (and authenticated, on a pool with a password):
/// each round it writes a key of its own and reads it back, and reads it again through a new
/// connection.
struct Bystander {
    port: u16,
    password: Option<&'static str>,
    client: Client,
    round: usize,
}

impl Bystander {
    fn connect(port: u16, password: Option<&'static str>) -> Bystander {
        let client = Bystander::client(port, password)
            .unwrap_or_else(|error| panic!("connect the bystander to {port}: {error}"));
        Bystander {
            port,
            password,
            client,
            round: 0,
        }
    }

    /// A new connection, authenticated when there is a password.
    fn client(port: u16, password: Option<&str>) -> io::Result<Client> {
        let mut client = Client::connect_with_timeout(port, PATIENCE)?;
        if let Some(password) = password {
            let reply = client.try_call(&[b"AUTH", password.as_bytes()])?;
            if !reply.is_ok() {
                return Err(io::Error::other(format!("AUTH gave {reply:?}")));
            }
        }
        Ok(client)
    }

    /// One round; after a failure, the next round starts on a new connection.
    fn served(&mut self) -> Result<(), String> {
        self.round += 1;
        let result = self.round_trip();
        if result.is_err()
            && let Ok(client) = Bystander::client(self.port, self.password)
        {
            self.client = client;
        }
        result
    }

    fn round_trip(&mut self) -> Result<(), String> {
        let key = format!("hostile:bystander:{}", self.round);
        let value = format!("value {}", self.round);
        let set = self
            .client
            .try_call(&[b"SET", key.as_bytes(), value.as_bytes()])
            .map_err(|error| format!("SET {key}: {error}"))?;
        let get = self
            .client
            .try_call(&[b"GET", key.as_bytes()])
            .map_err(|error| format!("GET {key}: {error}"))?;
        let fresh = Bystander::client(self.port, self.password)
            .and_then(|mut client| client.try_call(&[b"GET", key.as_bytes()]))
            .map_err(|error| format!("GET {key} on a new connection: {error}"))?;
        if set.is_ok() && get == bulk(&value) && fresh == bulk(&value) {
            Ok(())
        } else {
            Err(format!(
                "SET {key} gave {set:?}, GET {get:?}, GET on a new connection {fresh:?}"
            ))
        }
    }
}

/// What the cases came to: failures, and where rampart differs from redis-server (or was not
/// compared with it).
#[derive(Default)]
struct Verdicts {
    failures: Vec<String>,
    differences: Vec<String>,
}

impl Verdicts {
    /// Sends `case` to rampart and, as its parity says, to the redis-server on `redis`; then
    /// checks that rampart still runs and serves the bystander.
    fn judge(&mut self, case: &Case, cluster: &mut Cluster, redis: u16, bystander: &mut Bystander) {
        let ours = exchange(cluster.port, &case.bytes, case.how, &case.want);
        let mut problems = Vec::new();
        if let Err(problem) = check(&case.want, &ours) {
            problems.push(format!("rampart: {problem}"));
        }
        match &case.parity {
            Parity::Same => {
                let theirs = exchange(redis, &case.bytes, case.how, &case.want);
                if !same_answer(&ours, &theirs) {
                    problems.push(format!("redis-server answered {theirs}; rampart {ours}"));
                }
            }
            Parity::Differs { redis: want, why } => {
                let theirs = exchange(redis, &case.bytes, case.how, want);
                if let Err(problem) = check(want, &theirs) {
                    problems.push(format!(
                        "redis-server, documented as differing ({why}): {problem}"
                    ));
                }
                self.differences.push(format!(
                    "{}: rampart {ours}; redis-server {theirs}",
                    case.name
                ));
            }
            Parity::NotCompared(why) => {
                self.differences.push(format!(
                    "{}: rampart {ours}; not compared: {why}",
                    case.name
                ));
            }
        }
        // The proxy runs and serves everyone else.
        assert!(
            !cluster.proxy.has_exited(),
            "rampart exited after case `{}`; its log:\n{}",
            case.name,
            tail(&cluster.proxy.log_text(), 30)
        );
        if let Err(problem) = bystander.served() {
            self.failures.push(format!(
                "{}: another client was not served: {problem}",
                case.name
            ));
        }
        if !problems.is_empty() {
            self.failures
                .push(format!("{}: {}", case.name, problems.join("; ")));
        }
    }

    /// Shows the differences; fails if any case failed.
    fn finish(self) {
        eprintln!(
            "where rampart deliberately differs from redis-server, or is not compared:\n  {}",
            self.differences.join("\n  ")
        );
        assert!(
            self.failures.is_empty(),
            "{} failing cases:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

/// Polls the RSS of process `pid` until it is within `RSS_MARGIN_KIB` of `baseline`, for at
/// most 20 s; returns the last reading.
fn rss_back_near(pid: u32, baseline: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut rss = vm_rss_kb(pid);
    while rss > baseline + RSS_MARGIN_KIB && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        rss = vm_rss_kb(pid);
    }
    rss
}

/// Samples a process's RSS every 10 ms on a thread of its own, keeping the highest.
struct PeakRss {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PeakRss {
    fn start(pid: u32) -> PeakRss {
        let peak = Arc::new(AtomicU64::new(vm_rss_kb(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (peak, stop) = (Arc::clone(&peak), Arc::clone(&stop));
            move || {
                while !stop.load(Ordering::Acquire) {
                    peak.fetch_max(vm_rss_kb(pid), Ordering::AcqRel);
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        });
        PeakRss {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("RSS sampler");
        }
        self.peak.load(Ordering::Acquire)
    }
}

impl Drop for PeakRss {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

// ---------------------------------------------------------------------------------------------
// The suite.
// ---------------------------------------------------------------------------------------------

#[test]
fn hostile_input_never_stops_the_proxy_serving_others() {
    let mut cluster = Cluster::start(2, "", &[]);
    let redis = Redis::start(&[]);
    let cases = cases();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let mut names: Vec<&str> = cases.iter().map(|case| case.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names are unique");

    let pid = cluster.proxy.pid();
    let mut bystander = Bystander::connect(cluster.port, None);
    bystander.served().expect("the bystander, before the cases");
    let baseline = vm_rss_kb(pid);
    let sampler = PeakRss::start(pid);
    let started = Instant::now();

    let mut verdicts = Verdicts::default();
    for case in &cases {
        verdicts.judge(case, &mut cluster, redis.port, &mut bystander);
    }
    let elapsed = started.elapsed();
    drop(bystander);

    // The memory the big requests took goes back.
    let after = rss_back_near(pid, baseline);
    let peak = sampler.finish().max(after);
    eprintln!(
        "{} cases in {elapsed:.1?}; rampart RSS: baseline {baseline} KiB, peak {peak} KiB, \
         after {after} KiB",
        cases.len()
    );
    verdicts.finish();
    assert!(
        after <= baseline + RSS_MARGIN_KIB,
        "rampart's RSS stayed at {after} KiB (baseline {baseline} KiB, peak {peak} KiB)"
    );
}

// ---------------------------------------------------------------------------------------------
// Hostile clients at once.
// ---------------------------------------------------------------------------------------------

/// How many hostile clients run the table at the same time, each from its own place in it.
const AT_ONCE: usize = 4;

#[test]
fn hostile_clients_at_once_leave_the_others_served() {
    let mut cluster = Cluster::start(2, "", &[]);
    let port = cluster.port;
    let mut bystander = Bystander::connect(port, None);
    // "nothing after a bad frame ran" reads the value the pipelines before it set.
    assert_eq!(bystander.client.call_str(&["SET", "hostile:pm", "1"]), ok());
    let cases = Arc::new(cases());
    let clients: Vec<JoinHandle<Vec<String>>> = (0..AT_ONCE)
        .map(|client| {
            let cases = Arc::clone(&cases);
            std::thread::spawn(move || {
                let start = client * cases.len() / AT_ONCE;
                (0..cases.len())
                    .map(|step| &cases[(start + step) % cases.len()])
                    .filter_map(|case| {
                        let outcome = exchange(port, &case.bytes, case.how, &case.want);
                        check(&case.want, &outcome)
                            .err()
                            .map(|problem| format!("{}: {problem}", case.name))
                    })
                    .collect()
            })
        })
        .collect();
    while clients.iter().any(|client| !client.is_finished()) {
        bystander.served().unwrap_or_else(|problem| {
            panic!("another client was not served amid {AT_ONCE} hostile ones: {problem}")
        });
    }
    let failures: Vec<String> = clients
        .into_iter()
        .flat_map(|client| client.join().expect("hostile client thread"))
        .collect();
    assert!(!cluster.proxy.has_exited(), "rampart exited");
    assert!(
        failures.is_empty(),
        "{} cases answered otherwise with {AT_ONCE} hostile clients at once:\n{}",
        failures.len(),
        failures.join("\n")
    );
    bystander.served().expect("served at the end");
}

// ---------------------------------------------------------------------------------------------
// A client that never reads its replies.
// ---------------------------------------------------------------------------------------------

/// The value the non-reading client asks for, 2,000 times: about 128 MiB of replies.
const UNREAD_VALUE: usize = 64 * 1024;
const UNREAD_GETS: usize = 2_000;

#[test]
fn a_client_that_never_reads_stalls_no_one_and_its_replies_are_given_back() {
    let mut cluster = Cluster::start(2, "", &[]);
    let pid = cluster.proxy.pid();
    let mut bystander = Bystander::connect(cluster.port, None);
    let value = vec![b'u'; UNREAD_VALUE];
    assert_eq!(
        bystander.client.call(&[b"SET", b"hostile:unread", &value]),
        ok()
    );
    let baseline = vm_rss_kb(pid);

    let hog = Client::connect_with_timeout(cluster.port, PATIENCE).expect("connect");
    hog.send_in_background(&vec![cmd(&["GET", "hostile:unread"]); UNREAD_GETS])
        .join()
        .expect("writer thread")
        .expect("the GETs are sent");
    // While the replies wait for a reader that never comes, everyone else is served, that
    // value included.
    for _ in 0..20 {
        bystander.served().unwrap_or_else(|problem| {
            panic!("another client was not served while replies waited unread: {problem}")
        });
    }
    assert_eq!(
        bystander.client.call(&[b"GET", b"hostile:unread"]),
        bulk(&value),
        "the big value, to another client"
    );
    // rampart paces the client by the bytes it holds (client_max_pending_bytes, 16 MB by
    // default), so it never holds the 128 MiB of replies.
    let peak = vm_rss_kb(pid);
    assert!(
        peak < baseline + 64 * 1024,
        "rampart grew from {baseline} KiB to {peak} KiB for one client that never reads"
    );
    assert!(!cluster.proxy.has_exited(), "rampart exited");

    drop(hog);
    let after = rss_back_near(pid, baseline);
    eprintln!(
        "unread replies: rampart RSS baseline {baseline} KiB, peak {peak} KiB, after the \
         hang-up {after} KiB"
    );
    bystander.served().expect("served after the hang-up");
    assert!(
        after <= baseline + RSS_MARGIN_KIB,
        "rampart's RSS stayed at {after} KiB after the client hung up (baseline {baseline} KiB, \
         peak {peak} KiB)"
    );
}

// ---------------------------------------------------------------------------------------------
// Clients that have not authenticated.
// ---------------------------------------------------------------------------------------------

/// Cases for a pool with `redis_auth`, before and after AUTH.
fn unauthenticated_cases() -> Vec<Case> {
    use How::*;
    let big = "v".repeat(20_000);
    let mut mset = vec!["MSET"];
    for key in [
        "hostile:a",
        "hostile:b",
        "hostile:c",
        "hostile:d",
        "hostile:e",
    ] {
        mset.extend([key, big.as_str()]);
    }
    vec![
        Case::new(
            "unauthenticated, 11 arguments",
            b"*11\r\n",
            HalfClose,
            closed(&["-ERR Protocol error: unauthenticated multibulk length"]),
        ),
        Case::new(
            "unauthenticated, an argument of 16,385 bytes",
            b"*2\r\n$3\r\nGET\r\n$16385\r\n",
            HalfClose,
            closed(&["-ERR Protocol error: unauthenticated bulk length"]),
        ),
        Case::new(
            "unauthenticated, 10 arguments",
            resp(&["MGET", "a", "b", "c", "d", "e", "f", "g", "h", "i"]),
            HalfClose,
            closed(&["-NOAUTH Authentication required"]),
        ),
        Case::new(
            "unauthenticated, a bad length",
            b"*1\r\n$x\r\n",
            Whole,
            closed(&[BAD_LENGTH]),
        ),
        Case::new(
            "AUTH, then 11 arguments of 20,000 bytes",
            [resp(&["AUTH", "pw"]), resp(&mset)].concat(),
            Whole,
            open(&["+OK", "+OK"]),
        ),
    ]
}

#[test]
fn clients_that_have_not_authenticated_are_limited_as_redis_limits_them() {
    let mut cluster = Cluster::start(2, "  redis_auth: pw\n", &["--requirepass", "pw"]);
    let redis = Redis::start(&["--requirepass", "pw"]);
    let mut bystander = Bystander::connect(cluster.port, Some("pw"));
    let mut verdicts = Verdicts::default();
    for case in &unauthenticated_cases() {
        verdicts.judge(case, &mut cluster, redis.port, &mut bystander);
    }
    verdicts.finish();
}
