//! [`CommandError`]: why a request cannot go on, with the error text the client gets.
//!
//! The texts follow Redis 7.0 wherever Redis has one, since clients match on them. They are
//! rendered once, into either a caller's byte buffer ([`CommandError::write_to`], the bytes a
//! client gets) or a formatter (`Display`, lossy UTF-8 for logs), without allocating.
//! Request bytes are quoted the way Redis quotes them: cut at 128 bytes and at a NUL byte,
//! with CR and LF turned into spaces so the reply stays one line.

use std::fmt;

use crate::args::Arguments;

/// Longest quoted request element, and budget of the argument preview, as in Redis.
const QUOTE_LIMIT: usize = 128;

/// Why a request cannot be forwarded or answered.
#[derive(Debug, Clone, Copy)]
pub enum CommandError<'a> {
    /// No command has this name (the request's first element, possibly missing).
    Unknown {
        /// The whole request, quoted in the message like Redis does.
        args: &'a dyn Arguments,
    },
    /// A container (OBJECT, XINFO...) has no such subcommand.
    UnknownSubcommand {
        /// The container's name.
        container: &'static str,
        /// The subcommand as sent.
        subcommand: &'a [u8],
    },
    /// A subcommand got an argument count its arity allows but the subcommand does not
    /// (`PUBSUB CHANNELS a b`): Redis's `addReplySubcommandSyntaxError`.
    SubcommandSyntax {
        /// The container's name.
        container: &'static str,
        /// The subcommand as sent.
        subcommand: &'a [u8],
    },
    /// The argument count does not fit the command's arity (or MSET pairs are incomplete).
    WrongArity {
        /// The command's (or subcommand's) full name.
        command: &'static str,
    },
    /// rampart refuses this command.
    Unsupported {
        /// The command's name.
        command: &'static str,
        /// Why, in a few words.
        reason: &'static str,
    },
    /// The `numkeys` argument is invalid.
    BadNumKeys {
        /// The command's name.
        command: &'static str,
        /// What is wrong, which picks the Redis text.
        problem: NumKeysProblem,
    },
    /// The arguments do not parse far enough to find the keys (Redis: `ERR syntax error`).
    Syntax {
        /// The command's name.
        command: &'static str,
    },
    /// XREAD or XREADGROUP has an odd number of arguments after STREAMS.
    UnbalancedStreams {
        /// The command's name.
        command: &'static str,
    },
    /// A forwarded command's keys belong to different shards.
    CrossShard {
        /// The command's name.
        command: &'static str,
    },
}

/// What is wrong with a `numkeys` argument; each maps to the Redis text for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumKeysProblem {
    /// Not an integer: `ERR value is not an integer or out of range`.
    NotAnInteger,
    /// Below zero where zero is allowed: `ERR Number of keys can't be negative`.
    Negative,
    /// Below one, sorted-set commands: `ERR at least 1 input key is needed for '<cmd>' command`.
    NoInputKey,
    /// Below one or not an integer, SINTERCARD and the MPOP commands:
    /// `ERR numkeys should be greater than 0`.
    NotPositive,
    /// More keys than arguments: `ERR Number of keys can't be greater than number of args`.
    MoreThanArgs,
    /// More keys than arguments, where Redis just says `ERR syntax error`.
    Syntax,
}

impl CommandError<'_> {
    /// Appends the error text to `out`: what follows `-` in a RESP error reply, without the
    /// trailing CRLF, e.g. `ERR wrong number of arguments for 'get' command`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut sink = BytesSink(out);
        // Writing into a vector cannot fail.
        let _ = self.render(&mut sink);
    }

    fn render(&self, out: &mut dyn Sink) -> fmt::Result {
        match *self {
            CommandError::Unknown { args } => {
                let name = if args.count() > 0 { args.get(0) } else { b"" };
                out.text("ERR unknown command '")?;
                out.user(quoted(name, QUOTE_LIMIT))?;
                out.text("', with args beginning with: ")?;
                let mut shown = 0;
                for index in 1..args.count() {
                    if shown >= QUOTE_LIMIT {
                        break;
                    }
                    let arg = quoted(args.get(index), QUOTE_LIMIT - shown);
                    out.text("'")?;
                    out.user(arg)?;
                    out.text("' ")?;
                    shown += arg.len() + 3;
                }
                Ok(())
            }
            CommandError::UnknownSubcommand {
                container,
                subcommand,
            } => {
                out.text("ERR unknown subcommand '")?;
                out.user(quoted(subcommand, QUOTE_LIMIT))?;
                out.text("'. Try ")?;
                help_hint(out, container)
            }
            CommandError::SubcommandSyntax {
                container,
                subcommand,
            } => {
                out.text("ERR unknown subcommand or wrong number of arguments for '")?;
                out.user(quoted(subcommand, QUOTE_LIMIT))?;
                out.text("'. Try ")?;
                help_hint(out, container)
            }
            CommandError::WrongArity { command } => {
                out.text("ERR wrong number of arguments for '")?;
                out.text(command)?;
                out.text("' command")
            }
            CommandError::Unsupported { command, reason } => {
                out.text("ERR command '")?;
                out.text(command)?;
                out.text("' is not supported by rampart: ")?;
                out.text(reason)
            }
            CommandError::BadNumKeys { command, problem } => match problem {
                NumKeysProblem::NotAnInteger => out.text("ERR value is not an integer or out of range"),
                NumKeysProblem::Negative => out.text("ERR Number of keys can't be negative"),
                NumKeysProblem::NoInputKey => {
                    out.text("ERR at least 1 input key is needed for '")?;
                    out.text(command)?;
                    out.text("' command")
                }
                NumKeysProblem::NotPositive => out.text("ERR numkeys should be greater than 0"),
                NumKeysProblem::MoreThanArgs => {
                    out.text("ERR Number of keys can't be greater than number of args")
                }
                NumKeysProblem::Syntax => out.text("ERR syntax error"),
            },
            CommandError::Syntax { .. } => out.text("ERR syntax error"),
            CommandError::UnbalancedStreams { .. } => out.text(
                "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
            ),
            CommandError::CrossShard { command } => {
                out.text("ERR keys of '")?;
                out.text(command)?;
                out.text(
                    "' map to different shards; keys used together must share a hash tag, \
                     e.g. {user1}:a and {user1}:b",
                )
            }
        }
    }
}

impl fmt::Display for CommandError<'_> {
    /// The same text as [`CommandError::write_to`], with bytes that are not UTF-8 shown as U+FFFD.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.render(&mut LossySink(f))
    }
}

impl std::error::Error for CommandError<'_> {}

/// Where an error text goes: fixed text, and request bytes that need sanitising.
trait Sink {
    fn text(&mut self, text: &str) -> fmt::Result;
    fn user(&mut self, bytes: &[u8]) -> fmt::Result;
}

struct BytesSink<'v>(&'v mut Vec<u8>);

impl Sink for BytesSink<'_> {
    fn text(&mut self, text: &str) -> fmt::Result {
        self.0.extend_from_slice(text.as_bytes());
        Ok(())
    }

    fn user(&mut self, bytes: &[u8]) -> fmt::Result {
        self.0.extend(bytes.iter().map(|&byte| one_line(byte)));
        Ok(())
    }
}

struct LossySink<'f, 'g>(&'f mut fmt::Formatter<'g>);

impl Sink for LossySink<'_, '_> {
    fn text(&mut self, text: &str) -> fmt::Result {
        self.0.write_str(text)
    }

    fn user(&mut self, bytes: &[u8]) -> fmt::Result {
        for chunk in bytes.utf8_chunks() {
            let mut pieces = chunk.valid().split(['\r', '\n']);
            if let Some(first) = pieces.next() {
                self.0.write_str(first)?;
            }
            for piece in pieces {
                self.0.write_str(" ")?;
                self.0.write_str(piece)?;
            }
            if !chunk.invalid().is_empty() {
                self.0.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}

/// `CONTAINER HELP.`, the end of Redis's subcommand errors.
fn help_hint(out: &mut dyn Sink, container: &str) -> fmt::Result {
    for letter in container.chars() {
        out.text(letter.to_ascii_uppercase().encode_utf8(&mut [0; 4]))?;
    }
    out.text(" HELP.")
}

/// Redis replaces CR and LF in error texts by spaces.
fn one_line(byte: u8) -> u8 {
    match byte {
        b'\r' | b'\n' => b' ',
        other => other,
    }
}

/// What C's `%.*s` prints of `bytes`: up to the first NUL, at most `limit` bytes.
fn quoted(bytes: &[u8], limit: usize) -> &[u8] {
    let shown = bytes.get(..limit).unwrap_or(bytes);
    shown.split(|&byte| byte == 0).next().unwrap_or(shown)
}

#[cfg(test)]
mod tests {
    use super::{CommandError, NumKeysProblem};
    use crate::{Arguments, lookup, resolve};

    fn text(error: &CommandError<'_>) -> String {
        let mut out = Vec::new();
        error.write_to(&mut out);
        let shown = error.to_string();
        assert_eq!(shown.as_bytes(), out.as_slice());
        shown
    }

    fn resolve_text(args: &dyn Arguments) -> Vec<u8> {
        let mut out = Vec::new();
        resolve(args).expect_err("an error").write_to(&mut out);
        out
    }

    #[test]
    fn unknown_command_quotes_its_args_like_redis() {
        let args: [&[u8]; 3] = [b"foo", b"a", b"b"];
        assert_eq!(
            resolve_text(&args),
            b"ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
        let args: [&[u8]; 1] = [b"foo"];
        assert_eq!(
            resolve_text(&args),
            b"ERR unknown command 'foo', with args beginning with: "
        );
        let args: [&[u8]; 0] = [];
        assert_eq!(
            resolve_text(&args),
            b"ERR unknown command '', with args beginning with: "
        );
    }

    #[test]
    fn unknown_command_preview_is_bounded() {
        let a = [b'a'; 200];
        let args: [&[u8]; 3] = [b"foo", &a, b"b"];
        let mut expected = b"ERR unknown command 'foo', with args beginning with: '".to_vec();
        expected.extend_from_slice(&[b'a'; 128]);
        expected.extend_from_slice(b"' ");
        assert_eq!(resolve_text(&args), expected);

        let (a, b) = ([b'a'; 100], [b'b'; 100]);
        let args: [&[u8]; 4] = [b"foo", &a, &b, b"c"];
        let mut expected = b"ERR unknown command 'foo', with args beginning with: '".to_vec();
        expected.extend_from_slice(&[b'a'; 100]);
        expected.extend_from_slice(b"' '");
        expected.extend_from_slice(&[b'b'; 25]);
        expected.extend_from_slice(b"' ");
        assert_eq!(resolve_text(&args), expected);

        let name = [b'f'; 200];
        let args: [&[u8]; 2] = [&name, b"x\r\ny"];
        let mut expected = b"ERR unknown command '".to_vec();
        expected.extend_from_slice(&[b'f'; 128]);
        expected.extend_from_slice(b"', with args beginning with: 'x  y' ");
        assert_eq!(resolve_text(&args), expected);

        let many: Vec<&[u8]> = std::iter::once(&b"foo"[..])
            .chain(std::iter::repeat_n(&b""[..], 10_000))
            .collect();
        assert!(resolve_text(&many).len() < 220);
    }

    #[test]
    fn quoting_stops_at_nul_like_c() {
        let args: [&[u8]; 3] = [b"foo", b"a\0b", b"c"];
        assert_eq!(
            resolve_text(&args),
            b"ERR unknown command 'foo', with args beginning with: 'a' 'c' "
        );
    }

    #[test]
    fn display_is_lossy_but_one_line() {
        let args: [&[u8]; 2] = [b"f\xffo", b"\r\n"];
        let error = resolve(&args).unwrap_err();
        assert_eq!(
            error.to_string(),
            "ERR unknown command 'f\u{FFFD}o', with args beginning with: '  ' "
        );
    }

    #[test]
    fn unknown_subcommand() {
        let args: [&[u8]; 3] = [b"object", b"foo", b"k"];
        assert_eq!(
            resolve_text(&args),
            b"ERR unknown subcommand 'foo'. Try OBJECT HELP."
        );
        let args: [&[u8]; 2] = [b"XGROUP", b"x\r\n"];
        assert_eq!(
            resolve_text(&args),
            b"ERR unknown subcommand 'x  '. Try XGROUP HELP."
        );
    }

    #[test]
    fn wrong_arity_names_the_full_command() {
        let args: [&[u8]; 1] = [b"GET"];
        assert_eq!(
            resolve_text(&args),
            b"ERR wrong number of arguments for 'get' command"
        );
        let args: [&[u8]; 4] = [b"mset", b"a", b"b", b"c"];
        assert_eq!(
            resolve_text(&args),
            b"ERR wrong number of arguments for 'mset' command"
        );
        let args: [&[u8]; 3] = [b"object", b"encoding", b"a"];
        assert!(resolve(&args).is_ok());
        let args: [&[u8]; 4] = [b"object", b"encoding", b"a", b"b"];
        assert_eq!(
            resolve_text(&args),
            b"ERR wrong number of arguments for 'object|encoding' command"
        );
    }

    #[test]
    fn unsupported_gives_the_reason() {
        let args: [&[u8]; 3] = [b"SWAPDB", b"0", b"1"];
        assert_eq!(
            resolve_text(&args),
            b"ERR command 'swapdb' is not supported by rampart: \
              the database is chosen per pool in the proxy configuration"
                .as_slice()
        );
        let args: [&[u8]; 3] = [b"memory", b"stats", b"x"];
        assert!(resolve_text(&args).starts_with(b"ERR command 'memory|stats' is not supported"));
    }

    #[test]
    fn keyspace_commands_are_served_with_redis_arity() {
        for name in ["scan", "dbsize", "keys", "randomkey", "flushdb", "flushall"] {
            let args: [&[u8]; 2] = [name.as_bytes(), b"x"];
            let command = lookup(name.as_bytes()).expect(name);
            assert!(matches!(command.kind, crate::Kind::Keyspace(_)), "{name}");
            if command.arity == 1 {
                assert_eq!(
                    resolve_text(&args),
                    format!("ERR wrong number of arguments for '{name}' command").as_bytes()
                );
            } else {
                assert!(resolve(&args).is_ok(), "{name}");
            }
        }
        let args: [&[u8]; 1] = [b"SCAN"];
        assert_eq!(
            resolve_text(&args),
            b"ERR wrong number of arguments for 'scan' command"
        );
    }

    #[test]
    fn pubsub_subcommand_errors_follow_redis() {
        let args: [&[u8]; 2] = [b"PUBSUB", b"NOPE"];
        assert_eq!(
            resolve_text(&args),
            b"ERR unknown subcommand 'NOPE'. Try PUBSUB HELP."
        );
        let error = CommandError::SubcommandSyntax {
            container: "pubsub",
            subcommand: b"CHANNELS",
        };
        assert_eq!(
            text(&error),
            "ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP."
        );
        let args: [&[u8]; 3] = [b"pubsub", b"numpat", b"x"];
        assert_eq!(
            resolve_text(&args),
            b"ERR wrong number of arguments for 'pubsub|numpat' command"
        );
    }

    #[test]
    fn numkeys_texts_follow_redis() {
        let cases = [
            (
                NumKeysProblem::NotAnInteger,
                "ERR value is not an integer or out of range",
            ),
            (
                NumKeysProblem::Negative,
                "ERR Number of keys can't be negative",
            ),
            (
                NumKeysProblem::NoInputKey,
                "ERR at least 1 input key is needed for 'zunion' command",
            ),
            (
                NumKeysProblem::NotPositive,
                "ERR numkeys should be greater than 0",
            ),
            (
                NumKeysProblem::MoreThanArgs,
                "ERR Number of keys can't be greater than number of args",
            ),
            (NumKeysProblem::Syntax, "ERR syntax error"),
        ];
        for (problem, expected) in cases {
            let error = CommandError::BadNumKeys {
                command: "zunion",
                problem,
            };
            assert_eq!(text(&error), expected);
        }
    }

    #[test]
    fn streams_and_syntax_texts() {
        let args: [&[u8]; 5] = [b"xread", b"streams", b"a", b"b", b"c"];
        let error = lookup(b"xread").unwrap().keys(&args).unwrap_err();
        assert_eq!(
            text(&error),
            "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."
        );
        let args: [&[u8]; 5] = [b"xread", b"count", b"1", b"a", b"0"];
        let error = lookup(b"xread").unwrap().keys(&args).unwrap_err();
        assert_eq!(text(&error), "ERR syntax error");
    }

    #[test]
    fn cross_shard_names_the_command() {
        let error = lookup(b"SUNION").unwrap().cross_shard_error();
        assert_eq!(
            text(&error),
            "ERR keys of 'sunion' map to different shards; keys used together must share a \
             hash tag, e.g. {user1}:a and {user1}:b"
        );
    }
}
