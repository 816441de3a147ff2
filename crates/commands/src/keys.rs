//! Finding the keys of a request: [`Command::keys`] and the [`Keys`] iterator over their
//! argument indexes.
//!
//! Each [`KeySpec`] shape has one small reader here. Readers validate what they read
//! (`numkeys` must be a Redis integer in range, XREAD must have balanced STREAMS) and never
//! index past the request, whatever it contains.

use std::iter::FusedIterator;

use crate::args::Arguments;
use crate::command::{Command, KeySpec, NumKeysRule, OptionArg};
use crate::error::{CommandError, NumKeysProblem};

/// The argument indexes of a request's keys, in Redis's order (a destination given before its
/// sources comes first). It borrows nothing and allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    head: Option<usize>,
    next: usize,
    end: usize,
    step: usize,
    tail: Option<usize>,
}

impl Keys {
    /// No key at all.
    const NONE: Keys = Keys {
        head: None,
        next: 0,
        end: 0,
        step: 1,
        tail: None,
    };

    /// Every `step`-th index from `first` up to, not including, `end`.
    fn range(first: usize, end: usize, step: usize) -> Keys {
        Keys {
            next: first,
            end,
            step,
            ..Keys::NONE
        }
    }

    /// The key at `at` alone.
    fn one(at: usize) -> Keys {
        Keys::range(at, at + 1, 1)
    }

    fn range_len(&self) -> usize {
        if self.next < self.end {
            (self.end - self.next).div_ceil(self.step)
        } else {
            0
        }
    }
}

impl Iterator for Keys {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if let Some(head) = self.head.take() {
            return Some(head);
        }
        if self.next < self.end {
            let at = self.next;
            self.next = self.next.saturating_add(self.step);
            return Some(at);
        }
        self.tail.take()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len =
            usize::from(self.head.is_some()) + self.range_len() + usize::from(self.tail.is_some());
        (len, Some(len))
    }
}

impl ExactSizeIterator for Keys {}

impl FusedIterator for Keys {}

impl Command {
    /// The argument indexes of the keys of a request for this command.
    ///
    /// Checks the arity first, so it is safe on any request. An empty result on a
    /// [`Kind::Forward`](crate::Kind::Forward) command means "route by
    /// [`PLACEHOLDER_KEY`](crate::PLACEHOLDER_KEY)".
    ///
    /// # Errors
    ///
    /// [`CommandError::WrongArity`]; for `numkeys` commands [`CommandError::BadNumKeys`]; for
    /// XREAD and XREADGROUP [`CommandError::Syntax`] or [`CommandError::UnbalancedStreams`].
    pub fn keys<A: Arguments + ?Sized>(&self, args: &A) -> Result<Keys, CommandError<'static>> {
        let argc = args.count();
        self.check_arity(argc)?;
        let wrong_arity = CommandError::WrongArity { command: self.name };
        match self.keys {
            KeySpec::None => Ok(Keys::NONE),
            KeySpec::Single(at) => {
                let at = usize::from(at);
                if at < argc {
                    Ok(Keys::one(at))
                } else {
                    Err(wrong_arity)
                }
            }
            KeySpec::Range { first, last, step } => {
                let reach = usize::from(last.unsigned_abs());
                let end = if last >= 0 {
                    reach + 1
                } else {
                    (argc + 1).saturating_sub(reach)
                };
                if end > argc {
                    return Err(wrong_arity);
                }
                Ok(Keys::range(
                    usize::from(first),
                    end,
                    usize::from(step.max(1)),
                ))
            }
            KeySpec::NumKeys {
                numkeys_at,
                first_key_at,
                dest_at,
                rule,
            } => {
                let first = usize::from(first_key_at);
                let numkeys_at = usize::from(numkeys_at);
                if numkeys_at >= argc || first > argc {
                    return Err(wrong_arity);
                }
                let count = self.numkeys(args.get(numkeys_at), rule, argc - first)?;
                let dest = dest_at.map(usize::from).filter(|&at| at < argc);
                Ok(Keys {
                    head: dest,
                    ..Keys::range(first, first + count, 1)
                })
            }
            KeySpec::Store {
                key,
                options_from,
                store,
                skip,
            } => {
                let key = usize::from(key);
                if key >= argc {
                    return Err(wrong_arity);
                }
                let dest = store_destination(args, usize::from(options_from), store, skip);
                Ok(Keys {
                    tail: dest,
                    ..Keys::one(key)
                })
            }
            KeySpec::Streams { options, .. } => self.stream_keys(args, options),
        }
    }

    /// Reads a `numkeys` argument followed by `available` arguments; returns the key count.
    fn numkeys(
        &self,
        numkeys: &[u8],
        rule: NumKeysRule,
        available: usize,
    ) -> Result<usize, CommandError<'static>> {
        let fail = |problem| CommandError::BadNumKeys {
            command: self.name,
            problem,
        };
        let limits = NumKeysLimits::of(rule);
        let value = parse_integer(numkeys).ok_or(fail(limits.not_integer))?;
        if value < limits.min {
            return Err(fail(limits.below_min));
        }
        let most = available.saturating_sub(limits.after_keys);
        match usize::try_from(value) {
            Ok(count) if count <= most => Ok(count),
            _ => Err(fail(limits.too_many)),
        }
    }

    /// Whether this request may block its server connection: a [`Kind::Blocking`] command, or
    /// XREAD / XREADGROUP with their BLOCK option before STREAMS.
    ///
    /// [`Kind::Blocking`]: crate::Kind::Blocking
    pub fn may_block<A: Arguments + ?Sized>(&self, args: &A) -> bool {
        match (self.kind, self.keys) {
            (crate::Kind::Blocking, _) => true,
            (_, KeySpec::Streams { options, blocking }) => {
                let mut at = 1;
                while at < args.count() {
                    let word = args.get(at);
                    if word.eq_ignore_ascii_case(b"STREAMS") {
                        return false;
                    }
                    match find_option(options, word) {
                        Some(option) if option.name == blocking => return true,
                        Some(option) => at += 1 + usize::from(option.values),
                        None => return false,
                    }
                }
                false
            }
            _ => false,
        }
    }

    /// Walks XREAD / XREADGROUP options up to STREAMS; the keys are the first half after it.
    fn stream_keys<A: Arguments + ?Sized>(
        &self,
        args: &A,
        options: &[OptionArg],
    ) -> Result<Keys, CommandError<'static>> {
        let argc = args.count();
        let mut at = 1;
        while at < argc {
            let word = args.get(at);
            let remaining = argc - at - 1;
            if word.eq_ignore_ascii_case(b"STREAMS") && remaining > 0 {
                if !remaining.is_multiple_of(2) {
                    return Err(CommandError::UnbalancedStreams { command: self.name });
                }
                let first = at + 1;
                return Ok(Keys::range(first, first + remaining / 2, 1));
            }
            match find_option(options, word) {
                Some(option) if usize::from(option.values) <= remaining => {
                    at += 1 + usize::from(option.values);
                }
                _ => break,
            }
        }
        Err(CommandError::Syntax { command: self.name })
    }
}

/// What a [`NumKeysRule`] accepts, and the problem Redis reports for each violation.
struct NumKeysLimits {
    /// Fewest keys allowed.
    min: i64,
    /// Problem when below `min`.
    below_min: NumKeysProblem,
    /// Problem when `numkeys` is not an integer.
    not_integer: NumKeysProblem,
    /// Problem when `numkeys` exceeds the arguments left.
    too_many: NumKeysProblem,
    /// Arguments that must follow the keys (LEFT|RIGHT or MIN|MAX for the MPOP commands).
    after_keys: usize,
}

impl NumKeysLimits {
    const fn of(rule: NumKeysRule) -> NumKeysLimits {
        match rule {
            NumKeysRule::Script => NumKeysLimits {
                min: 0,
                below_min: NumKeysProblem::Negative,
                not_integer: NumKeysProblem::NotAnInteger,
                too_many: NumKeysProblem::MoreThanArgs,
                after_keys: 0,
            },
            NumKeysRule::SortedSet => NumKeysLimits {
                min: 1,
                below_min: NumKeysProblem::NoInputKey,
                not_integer: NumKeysProblem::NotAnInteger,
                too_many: NumKeysProblem::Syntax,
                after_keys: 0,
            },
            NumKeysRule::SetCard => NumKeysLimits {
                min: 1,
                below_min: NumKeysProblem::NotPositive,
                not_integer: NumKeysProblem::NotPositive,
                too_many: NumKeysProblem::MoreThanArgs,
                after_keys: 0,
            },
            NumKeysRule::Pop => NumKeysLimits {
                min: 1,
                below_min: NumKeysProblem::NotPositive,
                not_integer: NumKeysProblem::NotPositive,
                too_many: NumKeysProblem::Syntax,
                after_keys: 1,
            },
        }
    }
}

/// The destination after the last `store` word from `from` on, skipping other options' values.
fn store_destination<A: Arguments + ?Sized>(
    args: &A,
    from: usize,
    store: &[&str],
    skip: &[OptionArg],
) -> Option<usize> {
    let argc = args.count();
    let mut dest = None;
    let mut at = from;
    while at < argc {
        let word = args.get(at);
        if let Some(option) = find_option(skip, word) {
            at += 1 + usize::from(option.values);
        } else if at + 1 < argc
            && store
                .iter()
                .any(|name| word.eq_ignore_ascii_case(name.as_bytes()))
        {
            dest = Some(at + 1);
            at += 2;
        } else {
            at += 1;
        }
    }
    dest
}

fn find_option<'t>(options: &'t [OptionArg], word: &[u8]) -> Option<&'t OptionArg> {
    options
        .iter()
        .find(|option| word.eq_ignore_ascii_case(option.name.as_bytes()))
}

/// Parses an integer the way Redis's `string2ll` does: optional `-`, no `+`, no spaces, no
/// leading zero, within `i64`.
fn parse_integer(text: &[u8]) -> Option<i64> {
    if text == b"0" {
        return Some(0);
    }
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if !matches!(digits.first(), Some(b'1'..=b'9')) {
        return None;
    }
    let mut magnitude: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::parse_integer;
    use crate::{CommandError, NumKeysProblem, lookup};

    fn keys_of(args: &[&[u8]]) -> Result<Vec<usize>, CommandError<'static>> {
        let command = lookup(args[0]).expect("known command");
        command.keys(args).map(Iterator::collect)
    }

    fn sub_keys_of(args: &[&[u8]]) -> Result<Vec<usize>, CommandError<'static>> {
        let command = lookup(args[0])
            .and_then(|c| c.subcommand(args[1]))
            .expect("subcommand");
        command.keys(args).map(Iterator::collect)
    }

    fn numkeys_problem(args: &[&[u8]]) -> NumKeysProblem {
        match keys_of(args) {
            Err(CommandError::BadNumKeys { problem, .. }) => problem,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn integers_parse_like_redis() {
        assert_eq!(parse_integer(b"0"), Some(0));
        assert_eq!(parse_integer(b"12"), Some(12));
        assert_eq!(parse_integer(b"-3"), Some(-3));
        assert_eq!(parse_integer(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_integer(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"1 ",
            b"01",
            b"-0",
            b"1x",
            b"9223372036854775808",
            b"99999999999999999999999",
            b"\xff",
        ] {
            assert_eq!(parse_integer(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn single_key() {
        assert_eq!(keys_of(&[b"get", b"k"]).unwrap(), [1]);
        assert_eq!(keys_of(&[b"set", b"k", b"v", b"EX", b"10"]).unwrap(), [1]);
        assert_eq!(keys_of(&[b"sort_ro", b"k", b"STORE", b"d"]).unwrap(), [1]);
        assert!(matches!(
            keys_of(&[b"get"]),
            Err(CommandError::WrongArity { command: "get" })
        ));
    }

    #[test]
    fn ranges() {
        assert_eq!(keys_of(&[b"mget", b"a", b"b", b"c"]).unwrap(), [1, 2, 3]);
        assert_eq!(keys_of(&[b"del", b"a"]).unwrap(), [1]);
        assert_eq!(keys_of(&[b"mset", b"a", b"1", b"b", b"2"]).unwrap(), [1, 3]);
        assert_eq!(
            keys_of(&[b"msetnx", b"a", b"1", b"b", b"2"]).unwrap(),
            [1, 3]
        );
        assert!(keys_of(&[b"mset", b"a", b"1", b"b"]).is_err());
        assert_eq!(keys_of(&[b"rpoplpush", b"s", b"d"]).unwrap(), [1, 2]);
        assert_eq!(keys_of(&[b"smove", b"s", b"d", b"m"]).unwrap(), [1, 2]);
        assert_eq!(
            keys_of(&[b"lmove", b"s", b"d", b"LEFT", b"RIGHT"]).unwrap(),
            [1, 2]
        );
        assert_eq!(keys_of(&[b"copy", b"s", b"d", b"REPLACE"]).unwrap(), [1, 2]);
        assert_eq!(keys_of(&[b"lcs", b"a", b"b", b"LEN"]).unwrap(), [1, 2]);
        assert_eq!(
            keys_of(&[b"bitop", b"AND", b"d", b"a", b"b"]).unwrap(),
            [2, 3, 4]
        );
        assert_eq!(
            keys_of(&[b"sunionstore", b"d", b"a", b"b"]).unwrap(),
            [1, 2, 3]
        );
        assert_eq!(keys_of(&[b"pfmerge", b"d"]).unwrap(), [1]);
    }

    #[test]
    fn script_numkeys() {
        assert_eq!(
            keys_of(&[b"eval", b"s", b"0"]).unwrap(),
            Vec::<usize>::new()
        );
        assert_eq!(
            keys_of(&[b"eval", b"s", b"0", b"arg"]).unwrap(),
            Vec::<usize>::new()
        );
        assert_eq!(keys_of(&[b"eval", b"s", b"1", b"k", b"arg"]).unwrap(), [3]);
        assert_eq!(
            keys_of(&[b"evalsha", b"sha", b"2", b"k1", b"k2"]).unwrap(),
            [3, 4]
        );
        assert_eq!(keys_of(&[b"fcall", b"f", b"1", b"k"]).unwrap(), [3]);
        assert_eq!(
            keys_of(&[b"fcall_ro", b"f", b"0", b"a"]).unwrap(),
            Vec::<usize>::new()
        );
        assert_eq!(
            numkeys_problem(&[b"eval", b"s", b"x"]),
            NumKeysProblem::NotAnInteger
        );
        assert_eq!(
            numkeys_problem(&[b"eval", b"s", b"-1"]),
            NumKeysProblem::Negative
        );
        assert_eq!(
            numkeys_problem(&[b"eval", b"s", b"2", b"k"]),
            NumKeysProblem::MoreThanArgs
        );
        assert_eq!(
            numkeys_problem(&[b"eval", b"s", b"99999999999999999999"]),
            NumKeysProblem::NotAnInteger
        );
        assert_eq!(
            numkeys_problem(&[b"eval", b"s", b"9223372036854775807"]),
            NumKeysProblem::MoreThanArgs
        );
    }

    #[test]
    fn sorted_set_numkeys() {
        let args: [&[u8]; 6] = [b"zunionstore", b"d", b"2", b"a", b"b", b"WEIGHTS"];
        assert_eq!(keys_of(&args).unwrap(), [1, 3, 4]);
        assert_eq!(
            keys_of(&[b"zinterstore", b"d", b"1", b"a"]).unwrap(),
            [1, 3]
        );
        assert_eq!(
            keys_of(&[b"zdiff", b"2", b"a", b"b", b"WITHSCORES"]).unwrap(),
            [2, 3]
        );
        assert_eq!(keys_of(&[b"zunion", b"1", b"a"]).unwrap(), [2]);
        assert_eq!(
            keys_of(&[b"zintercard", b"2", b"a", b"b", b"LIMIT", b"5"]).unwrap(),
            [2, 3]
        );
        assert_eq!(
            numkeys_problem(&[b"zunion", b"0", b"a"]),
            NumKeysProblem::NoInputKey
        );
        assert_eq!(
            numkeys_problem(&[b"zunion", b"-1", b"a"]),
            NumKeysProblem::NoInputKey
        );
        assert_eq!(
            numkeys_problem(&[b"zunion", b"x", b"a"]),
            NumKeysProblem::NotAnInteger
        );
        assert_eq!(
            numkeys_problem(&[b"zunion", b"3", b"a"]),
            NumKeysProblem::Syntax
        );
        assert_eq!(
            numkeys_problem(&[b"zintercard", b"0", b"a"]),
            NumKeysProblem::NoInputKey
        );
    }

    #[test]
    fn set_card_and_pop_numkeys() {
        let args: [&[u8]; 6] = [b"sintercard", b"2", b"a", b"b", b"LIMIT", b"1"];
        assert_eq!(keys_of(&args).unwrap(), [2, 3]);
        assert_eq!(
            numkeys_problem(&[b"sintercard", b"0", b"a"]),
            NumKeysProblem::NotPositive
        );
        assert_eq!(
            numkeys_problem(&[b"sintercard", b"x", b"a"]),
            NumKeysProblem::NotPositive
        );
        assert_eq!(
            numkeys_problem(&[b"sintercard", b"3", b"a"]),
            NumKeysProblem::MoreThanArgs
        );
        let args: [&[u8]; 5] = [b"lmpop", b"2", b"a", b"b", b"LEFT"];
        assert_eq!(keys_of(&args).unwrap(), [2, 3]);
        let args: [&[u8]; 6] = [b"zmpop", b"1", b"a", b"MIN", b"COUNT", b"2"];
        assert_eq!(keys_of(&args).unwrap(), [2]);
        assert_eq!(
            numkeys_problem(&[b"lmpop", b"2", b"a", b"LEFT"]),
            NumKeysProblem::Syntax
        );
        assert_eq!(
            numkeys_problem(&[b"lmpop", b"0", b"a", b"LEFT"]),
            NumKeysProblem::NotPositive
        );
        assert_eq!(
            numkeys_problem(&[b"zmpop", b"-5", b"a", b"MIN"]),
            NumKeysProblem::NotPositive
        );
    }

    #[test]
    fn store_destinations() {
        assert_eq!(keys_of(&[b"sort", b"k"]).unwrap(), [1]);
        assert_eq!(keys_of(&[b"sort", b"k", b"STORE", b"d"]).unwrap(), [1, 3]);
        assert_eq!(keys_of(&[b"sort", b"k", b"store"]).unwrap(), [1]);
        let args: [&[u8]; 9] = [
            b"sort", b"k", b"BY", b"store", b"GET", b"#", b"store", b"d", b"ALPHA",
        ];
        assert_eq!(keys_of(&args).unwrap(), [1, 7]);
        let args: [&[u8]; 8] = [b"sort", b"k", b"LIMIT", b"0", b"1", b"STORE", b"a", b"x"];
        assert_eq!(keys_of(&args).unwrap(), [1, 6]);
        let args: [&[u8]; 10] = [
            b"sort", b"k", b"STORE", b"a", b"STORE", b"b", b"GET", b"#", b"x", b"y",
        ];
        assert_eq!(keys_of(&args).unwrap(), [1, 5]);
        let args: [&[u8]; 8] = [
            b"georadius",
            b"k",
            b"0",
            b"0",
            b"1",
            b"km",
            b"STOREDIST",
            b"d",
        ];
        assert_eq!(keys_of(&args).unwrap(), [1, 7]);
        let args: [&[u8]; 7] = [
            b"georadiusbymember",
            b"k",
            b"m",
            b"1",
            b"km",
            b"store",
            b"d",
        ];
        assert_eq!(keys_of(&args).unwrap(), [1, 6]);
        let args: [&[u8]; 6] = [b"georadius", b"k", b"0", b"0", b"1", b"km"];
        assert_eq!(keys_of(&args).unwrap(), [1]);
    }

    #[test]
    fn streams_keys_are_the_first_half() {
        let args: [&[u8]; 6] = [b"xread", b"STREAMS", b"a", b"b", b"0", b"$"];
        assert_eq!(keys_of(&args).unwrap(), [2, 3]);
        let args: [&[u8]; 6] = [b"xread", b"count", b"5", b"streams", b"a", b"0"];
        assert_eq!(keys_of(&args).unwrap(), [4]);
        let args: [&[u8]; 8] = [
            b"xreadgroup",
            b"GROUP",
            b"streams",
            b"c",
            b"STREAMS",
            b"k",
            b">",
            b"NOACK",
        ];
        assert!(matches!(
            keys_of(&args),
            Err(CommandError::UnbalancedStreams { .. })
        ));
        let args: [&[u8]; 9] = [
            b"xreadgroup",
            b"GROUP",
            b"streams",
            b"block",
            b"NOACK",
            b"STREAMS",
            b"k",
            b"j",
            b">",
        ];
        assert!(matches!(
            keys_of(&args),
            Err(CommandError::UnbalancedStreams { .. })
        ));
        let args: [&[u8]; 10] = [
            b"xreadgroup",
            b"GROUP",
            b"g",
            b"c",
            b"COUNT",
            b"1",
            b"STREAMS",
            b"k",
            b"j",
            b">",
        ];
        assert!(matches!(
            keys_of(&args),
            Err(CommandError::UnbalancedStreams { .. })
        ));
        let args: [&[u8]; 11] = [
            b"xreadgroup",
            b"GROUP",
            b"g",
            b"c",
            b"COUNT",
            b"1",
            b"STREAMS",
            b"k",
            b"j",
            b">",
            b">",
        ];
        assert_eq!(keys_of(&args).unwrap(), [7, 8]);
        let args: [&[u8]; 5] = [b"xread", b"streams", b"a", b"b", b"c"];
        assert!(matches!(
            keys_of(&args),
            Err(CommandError::UnbalancedStreams { .. })
        ));
        let args: [&[u8]; 5] = [b"xread", b"count", b"1", b"a", b"0"];
        assert!(matches!(keys_of(&args), Err(CommandError::Syntax { .. })));
        let args: [&[u8]; 5] = [b"xread", b"count", b"1", b"count", b"streams"];
        assert!(matches!(keys_of(&args), Err(CommandError::Syntax { .. })));
    }

    #[test]
    fn streams_with_block_may_block() {
        let args: [&[u8]; 6] = [b"xread", b"BLOCK", b"0", b"STREAMS", b"a", b"$"];
        assert_eq!(keys_of(&args).unwrap(), [4]);
        assert!(lookup(args[0]).unwrap().may_block(&args));
        let args: [&[u8]; 9] = [
            b"xreadgroup",
            b"GROUP",
            b"g",
            b"c",
            b"block",
            b"10",
            b"STREAMS",
            b"a",
            b">",
        ];
        assert!(lookup(args[0]).unwrap().may_block(&args));
        let args: [&[u8]; 6] = [b"xread", b"COUNT", b"5", b"STREAMS", b"block", b"$"];
        assert!(!lookup(args[0]).unwrap().may_block(&args));
        let args: [&[u8]; 3] = [b"blpop", b"k", b"0"];
        assert!(lookup(args[0]).unwrap().may_block(&args));
        let args: [&[u8]; 2] = [b"get", b"k"];
        assert!(!lookup(args[0]).unwrap().may_block(&args));
    }

    #[test]
    fn subcommand_keys_are_at_two() {
        assert_eq!(sub_keys_of(&[b"object", b"encoding", b"k"]).unwrap(), [2]);
        assert_eq!(sub_keys_of(&[b"OBJECT", b"FREQ", b"k"]).unwrap(), [2]);
        assert_eq!(
            sub_keys_of(&[b"memory", b"usage", b"k", b"SAMPLES", b"5"]).unwrap(),
            [2]
        );
        assert_eq!(
            sub_keys_of(&[b"xinfo", b"stream", b"k", b"FULL"]).unwrap(),
            [2]
        );
        assert_eq!(
            sub_keys_of(&[b"xgroup", b"create", b"k", b"g", b"$"]).unwrap(),
            [2]
        );
        assert_eq!(
            sub_keys_of(&[b"object", b"help"]).unwrap(),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn keys_iterator_is_exact_size() {
        let args: [&[u8]; 6] = [b"zunionstore", b"d", b"3", b"a", b"b", b"c"];
        let keys = lookup(b"zunionstore").unwrap().keys(&args).unwrap();
        assert_eq!(keys.len(), 4);
        let mut keys = keys;
        keys.next();
        assert_eq!(keys.len(), 3);
        let args: [&[u8]; 6] = [b"mset", b"a", b"1", b"b", b"2", b"c"];
        assert!(lookup(b"mset").unwrap().keys(&args).is_err());
        let args: [&[u8]; 7] = [b"mset", b"a", b"1", b"b", b"2", b"c", b"3"];
        assert_eq!(lookup(b"mset").unwrap().keys(&args).unwrap().len(), 3);
    }

    #[test]
    fn hostile_requests_never_panic() {
        let junk: [&[u8]; 8] = [
            b"",
            b"-",
            b"0",
            b"-9223372036854775808",
            b"\r\n",
            b"STREAMS",
            b"STORE",
            b"BLOCK",
        ];
        for command in crate::commands()
            .iter()
            .flat_map(|c| std::iter::once(c).chain(c.subcommands))
        {
            for len in 0..8 {
                for fill in 0..junk.len() {
                    let mut args: Vec<&[u8]> = vec![command.name.as_bytes()];
                    args.extend((0..len).map(|i| junk[(fill + i) % junk.len()]));
                    if let Ok(keys) = command.keys(&args) {
                        for at in keys {
                            assert!(at < args.len(), "{} {args:?}", command.name);
                        }
                    }
                }
            }
        }
    }
}
