//! What the proxy knows about one command: [`Command`] and the types that describe it
//! ([`Kind`], [`Merge`], [`LocalCommand`], [`KeySpec`]), plus the checks that need only the
//! argument count.
//!
//! Finding the keys of a request is in `keys.rs`; the table itself is in `table.rs`.

use std::cmp::Ordering;

use crate::error::CommandError;

/// One entry of the command table (or of a container's subcommand table).
///
/// A container such as OBJECT or XINFO has a non-empty [`subcommands`](Command::subcommands)
/// table. [`resolve`](crate::resolve) always descends into it, so the proxy never handles a
/// container entry itself; the container's own `kind` and `keys` (`Forward`, no key) only
/// describe it for `COMMAND INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    /// Lower-case name as Redis spells it; a subcommand is `container|sub`, e.g. `object|encoding`,
    /// which is also how Redis names it in error messages.
    pub name: &'static str,
    /// Redis arity, counting the name (and, for a subcommand, the container too): `N` means exactly
    /// `N` elements, `-N` at least `N`.
    pub arity: i32,
    /// What the proxy does with it.
    pub kind: Kind,
    /// Where its keys are.
    pub keys: KeySpec,
    /// It does not modify data, so a replica may serve it.
    pub readonly: bool,
    /// Subcommands, sorted by name, for containers whose subcommands are routed differently.
    /// Empty for every other command, including containers handled as a whole (CLIENT, CONFIG...).
    pub subcommands: &'static [Command],
}

/// What the proxy does with a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Sent whole to the shard of its keys. When it has several keys they must all belong to one
    /// shard (the proxy checks, and answers [`CommandError::CrossShard`] otherwise). When
    /// [`Command::keys`] yields no key at all (LOLWUT, TIME, `EVAL script 0`), it is routed by
    /// [`PLACEHOLDER_KEY`](crate::PLACEHOLDER_KEY), as nutcracker does for COMMAND and LOLWUT.
    Forward,
    /// Split into one request per shard holding some of its keys (keeping their order, and
    /// [`Command::step`] elements per key), whose replies are merged as the [`Merge`] says.
    Split(Merge),
    /// Answered by the proxy itself without reaching a server.
    Local(LocalCommand),
    /// May block its connection (BLPOP, BZPOPMIN...): sent whole, like [`Kind::Forward`], but
    /// on a backend connection of the client's own so that no other client waits behind it.
    Blocking,
    /// Changes or uses the state of the client's connection to a server (transactions, WAIT):
    /// served on a backend connection the client holds, as [`SessionCommand`] says.
    Session(SessionCommand),
    /// Pub/sub: a channel lives on the shard its name hashes to, as if it were a key.
    PubSub(PubSubCommand),
    /// Over the whole pool, its keyspace or its channels: sent to every shard (or, for SCAN, to
    /// one shard after another; for PUBSUB NUMSUB, to the shards of its channels) and the
    /// replies combined, as the [`Keyspace`] command needs.
    Keyspace(Keyspace),
    /// Refused with [`CommandError::Unsupported`]; the text is the reason shown to the user.
    Unsupported(&'static str),
}

/// How the replies of a split command's fragments are merged into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// MGET: an array with each key's value, in the order of the request.
    Values,
    /// DEL, UNLINK, TOUCH, EXISTS: the sum of the fragments' integer replies.
    SumIntegers,
    /// MSET: `+OK` once every fragment answered `+OK`.
    AllOk,
}

/// The commands over the whole keyspace, which the proxy serves from every shard, and PUBSUB's
/// introspection, over the channels of every shard (a channel lives on the shard its name
/// hashes to, as if it were a key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyspace {
    /// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]`: one shard after another, the shard's
    /// index carried in the cursor.
    Scan,
    /// `DBSIZE`: the sum over the shards.
    DbSize,
    /// `KEYS pattern`: every shard's keys, one array.
    Keys,
    /// `RANDOMKEY`: a key of some shard; nil only when every shard is empty.
    RandomKey,
    /// `FLUSHDB [ASYNC|SYNC]`: every shard, refused while a shard is unreachable.
    FlushDb,
    /// `FLUSHALL [ASYNC|SYNC]`: as FLUSHDB.
    FlushAll,
    /// `PUBSUB CHANNELS [pattern]`: every shard's channels, one array.
    PubSubChannels,
    /// `PUBSUB SHARDCHANNELS [pattern]`: every shard's shard channels, one array.
    PubSubShardChannels,
    /// `PUBSUB NUMSUB [channel...]`: each channel's count from the shard it lives on, in the
    /// request's order.
    PubSubNumSub,
    /// `PUBSUB SHARDNUMSUB [shardchannel...]`: as NUMSUB, for shard channels.
    PubSubShardNumSub,
    /// `PUBSUB NUMPAT`: the largest of the shards' counts (a pattern subscribed through the
    /// proxy is subscribed on every shard).
    PubSubNumPat,
}

/// The commands the proxy answers itself; it implements each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalCommand {
    /// `PING [message]`.
    Ping,
    /// `ECHO message`.
    Echo,
    /// `QUIT`: flush pending replies, then close.
    Quit,
    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`: protocol negotiation.
    Hello,
    /// `AUTH [user] password`, checked against the pool's password.
    Auth,
    /// `CLIENT ...`: connection-level settings such as SETNAME, GETNAME, ID, SETINFO.
    Client,
    /// `SELECT db`: the database is fixed per pool.
    Select,
    /// `COMMAND [COUNT | INFO | DOCS | LIST ...]`, answered from [`commands`](crate::commands).
    Command,
    /// `INFO [section ...]`: the proxy's own view.
    Info,
    /// `SCRIPT LOAD | EXISTS | FLUSH`: sent to every shard, so EVALSHA finds the script
    /// wherever its keys live.
    Script,
}

/// The commands that tie a client to one server connection for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCommand {
    /// `MULTI`: starts a transaction; the first keyed command picks its shard.
    Multi,
    /// `EXEC`: runs the transaction.
    Exec,
    /// `DISCARD`: drops the transaction.
    Discard,
    /// `WATCH key...`: keys of one shard, watched on a connection the client then holds.
    Watch,
    /// `UNWATCH`.
    Unwatch,
    /// `WAIT numreplicas timeout`: only on a connection the client holds, where its writes went.
    Wait,
    /// `RESET`: ends the transaction, WATCH and subscriptions, back to RESP2 and no name.
    Reset,
}

/// The pub/sub commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PubSubCommand {
    /// `PUBLISH channel message`: to the channel's shard.
    Publish,
    /// `SUBSCRIBE channel...`.
    Subscribe,
    /// `UNSUBSCRIBE [channel...]`.
    Unsubscribe,
    /// `PSUBSCRIBE pattern...`: on every shard.
    PSubscribe,
    /// `PUNSUBSCRIBE [pattern...]`.
    PUnsubscribe,
    /// `SSUBSCRIBE shardchannel...`.
    SSubscribe,
    /// `SUNSUBSCRIBE [shardchannel...]`.
    SUnsubscribe,
}

/// An option word inside a command's arguments, and how many values follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionArg {
    /// Upper-case option word, matched ASCII case-insensitively.
    pub name: &'static str,
    /// Number of arguments that follow the word and belong to it.
    pub values: u8,
}

/// How strictly a `numkeys` argument is checked, and with which Redis error texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumKeysRule {
    /// EVAL, EVALSHA, FCALL and their `_RO` forms: zero keys allowed.
    Script,
    /// ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD: at least one key.
    SortedSet,
    /// SINTERCARD: at least one key.
    SetCard,
    /// LMPOP, ZMPOP, BLMPOP, BZMPOP: at least one key.
    Pop,
}

/// Where a command's keys are, as argument indexes (0 is the command name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// No key (PING, LOLWUT, TIME...).
    None,
    /// One key at this index.
    Single(u8),
    /// Keys from `first` to `last` inclusive, every `step` arguments. A negative `last` counts
    /// from the end: -1 is the last argument, -2 the one before.
    Range {
        /// Index of the first key.
        first: u8,
        /// Index of the last key, or negative from the end.
        last: i8,
        /// Distance between keys: 2 for key/value pairs.
        step: u8,
    },
    /// A `numkeys` argument followed by that many keys, optionally with a destination key
    /// elsewhere (ZUNIONSTORE's, at index 1).
    NumKeys {
        /// Index of the `numkeys` argument.
        numkeys_at: u8,
        /// Index of the first of the `numkeys` keys.
        first_key_at: u8,
        /// Index of a destination key, which comes first among the keys.
        dest_at: Option<u8>,
        /// Which values are valid, and the error texts.
        rule: NumKeysRule,
    },
    /// A key, and a destination key following the last of the `store` words found from index
    /// `options_from` on (SORT's STORE, GEORADIUS's STORE and STOREDIST). The words in `skip`
    /// are other options whose values are skipped, so a value is never taken for an option.
    Store {
        /// Index of the source key.
        key: u8,
        /// Index where the options start.
        options_from: u8,
        /// Option words whose value is a destination key (upper-case).
        store: &'static [&'static str],
        /// Other options and their number of values.
        skip: &'static [OptionArg],
    },
    /// XREAD and XREADGROUP: options from index 1, then `STREAMS k1 .. kn id1 .. idn`; the keys
    /// are the first half after STREAMS. With the `blocking` option the command may block.
    Streams {
        /// Options allowed before STREAMS, and their number of values.
        options: &'static [OptionArg],
        /// The option that would block the connection (BLOCK).
        blocking: &'static str,
    },
}

impl Command {
    /// Checks the number of elements (the name included) against the Redis arity, and for
    /// key/value pair commands (MSET, MSETNX) that the pairs are complete, as Redis does.
    ///
    /// # Errors
    ///
    /// [`CommandError::WrongArity`] when the count does not fit.
    pub fn check_arity(&self, argc: usize) -> Result<(), CommandError<'static>> {
        let wrong = CommandError::WrongArity { command: self.name };
        let needed = self.arity.unsigned_abs() as usize;
        let fits = if self.arity >= 0 {
            argc == needed
        } else {
            argc >= needed
        };
        if !fits {
            return Err(wrong);
        }
        if let KeySpec::Range { first, last, step } = self.keys
            && last < 0
            && step > 1
            && argc.saturating_sub(usize::from(first)) % usize::from(step) != 0
        {
            return Err(wrong);
        }
        Ok(())
    }

    /// Number of elements per key in a split command: 2 for MSET (key and value), else 1.
    #[must_use]
    pub fn step(&self) -> usize {
        match self.keys {
            KeySpec::Range { step, .. } => usize::from(step.max(1)),
            _ => 1,
        }
    }

    /// The legacy `first key, last key, step` triple that `COMMAND INFO` shows, (0, 0, 0) when
    /// the keys can only be found by reading the arguments (EVAL, XREAD...).
    #[must_use]
    pub fn key_positions(&self) -> (i32, i32, i32) {
        match self.keys {
            KeySpec::None | KeySpec::Streams { .. } | KeySpec::NumKeys { dest_at: None, .. } => {
                (0, 0, 0)
            }
            KeySpec::Single(at)
            | KeySpec::NumKeys {
                dest_at: Some(at), ..
            }
            | KeySpec::Store { key: at, .. } => (i32::from(at), i32::from(at), 1),
            KeySpec::Range { first, last, step } => {
                (i32::from(first), i32::from(last), i32::from(step))
            }
        }
    }

    /// The subcommand of this container named `name` (ASCII case-insensitive), if any.
    #[must_use]
    pub fn subcommand(&self, name: &[u8]) -> Option<&'static Command> {
        let prefix = self.name.len() + 1;
        self.subcommands
            .binary_search_by(|sub| {
                let short = sub.name.as_bytes().get(prefix..).unwrap_or_default();
                compare_ignoring_case(short, name)
            })
            .ok()
            .and_then(|found| self.subcommands.get(found))
    }

    /// The error a [`Kind::Forward`] command gets when its keys belong to different shards.
    #[must_use]
    pub fn cross_shard_error(&self) -> CommandError<'static> {
        CommandError::CrossShard { command: self.name }
    }
}

/// Orders a lower-case table name against a request's name as if the latter were lower-case.
pub(crate) fn compare_ignoring_case(table: &[u8], name: &[u8]) -> Ordering {
    let lowered = name.iter().map(u8::to_ascii_lowercase);
    table.iter().copied().cmp(lowered)
}

#[cfg(test)]
mod tests {
    use crate::{CommandError, lookup};

    #[test]
    fn arity_exact_and_minimum() {
        let get = lookup(b"get").unwrap();
        assert!(get.check_arity(2).is_ok());
        assert!(get.check_arity(1).is_err());
        assert!(get.check_arity(3).is_err());
        let del = lookup(b"del").unwrap();
        assert!(del.check_arity(1).is_err());
        assert!(del.check_arity(2).is_ok());
        assert!(del.check_arity(1000).is_ok());
    }

    #[test]
    fn key_value_pairs_must_be_complete() {
        for name in [&b"mset"[..], b"msetnx"] {
            let command = lookup(name).unwrap();
            assert!(command.check_arity(2).is_err());
            assert!(command.check_arity(3).is_ok());
            assert!(matches!(
                command.check_arity(4),
                Err(CommandError::WrongArity { .. })
            ));
            assert!(command.check_arity(5).is_ok());
        }
    }

    #[test]
    fn step_is_two_only_for_pairs() {
        assert_eq!(lookup(b"mset").unwrap().step(), 2);
        assert_eq!(lookup(b"mget").unwrap().step(), 1);
        assert_eq!(lookup(b"del").unwrap().step(), 1);
        assert_eq!(lookup(b"get").unwrap().step(), 1);
    }

    #[test]
    fn subcommands_are_case_insensitive() {
        let object = lookup(b"OBJECT").unwrap();
        assert_eq!(
            object.subcommand(b"EnCoDiNg").unwrap().name,
            "object|encoding"
        );
        assert!(object.subcommand(b"encodingx").is_none());
        assert!(object.subcommand(b"").is_none());
        assert!(lookup(b"get").unwrap().subcommand(b"x").is_none());
    }
}
