//! The command table: every command Redis 7.0 knows, with what rampart does with it.
//!
//! This is data, looked up by name (see `lookup.rs`), like nutcracker's dispatch table. Facts
//! (arity, key positions, read-only) are those of redis-server 7.0's `COMMAND` reply; the test
//! `tests/redis_facts.rs` checks them against a copy of that reply. Entries are sorted by name,
//! and so are subcommand tables; a test checks it.
//!
//! Every command nutcracker 0.5.0 forwarded is forwarded, with its keys fixed where nutcracker
//! routed by the wrong argument (ZUNION, ZINTER and ZDIFF by their keys, not `numkeys`; EVAL
//! with any `numkeys`; every key of SMOVE, RENAME, SUNION... listed so the proxy can check they
//! share a shard). MGET, MSET, DEL, UNLINK, TOUCH and EXISTS are split per shard; SCAN, DBSIZE,
//! KEYS, RANDOMKEY, FLUSHDB and FLUSHALL are served over the keyspace of every shard, and
//! PUBSUB's CHANNELS, SHARDCHANNELS, NUMSUB, SHARDNUMSUB and NUMPAT over every shard's channels.

use crate::command::{
    Command, KeySpec, Keyspace, Kind, LocalCommand, Merge, NumKeysRule, OptionArg, PubSubCommand,
    SessionCommand,
};

/// Reason given for server administration.
const ADMIN: &str = "it administers a single server; run it on that server directly";
/// Reason given for commands reporting on one server.
const SERVER_STATE: &str = "it reports on a single server, not on the pool";
/// Reason given for Redis Cluster commands.
const CLUSTER: &str = "Redis Cluster commands do not apply to a sharding proxy";
/// Reason given for MOVE and SWAPDB.
const DATABASES: &str = "the database is chosen per pool in the proxy configuration";
/// Reason given for MIGRATE.
const MIGRATE: &str = "keys are placed by the proxy; moving them between servers would lose them";
/// Reason given for SCRIPT and FUNCTION.
const SCRIPTS: &str = "functions must be loaded on every server directly";

/// No key.
const NO_KEY: KeySpec = KeySpec::None;
/// The key right after the command name.
const KEY: KeySpec = KeySpec::Single(1);
/// The key right after a subcommand name (OBJECT ENCODING key).
const SUB_KEY: KeySpec = KeySpec::Single(2);
/// Every argument is a key.
const ALL_KEYS: KeySpec = KeySpec::Range {
    first: 1,
    last: -1,
    step: 1,
};
/// Key and value pairs (MSET).
const PAIRS: KeySpec = KeySpec::Range {
    first: 1,
    last: -1,
    step: 2,
};
/// Source and destination (RENAME, SMOVE...).
const TWO_KEYS: KeySpec = KeySpec::Range {
    first: 1,
    last: 2,
    step: 1,
};
/// Every argument but the last, a timeout (BLPOP).
const ALL_BUT_LAST: KeySpec = KeySpec::Range {
    first: 1,
    last: -2,
    step: 1,
};
/// BITOP operation destkey key...
const BITOP_KEYS: KeySpec = KeySpec::Range {
    first: 2,
    last: -1,
    step: 1,
};
/// EVAL script numkeys key... arg...
const SCRIPT_KEYS: KeySpec = KeySpec::NumKeys {
    numkeys_at: 2,
    first_key_at: 3,
    dest_at: None,
    rule: NumKeysRule::Script,
};
/// ZUNION numkeys key...
const ZSET_KEYS: KeySpec = KeySpec::NumKeys {
    numkeys_at: 1,
    first_key_at: 2,
    dest_at: None,
    rule: NumKeysRule::SortedSet,
};
/// ZUNIONSTORE destination numkeys key...
const ZSET_STORE_KEYS: KeySpec = KeySpec::NumKeys {
    numkeys_at: 2,
    first_key_at: 3,
    dest_at: Some(1),
    rule: NumKeysRule::SortedSet,
};
/// SINTERCARD numkeys key... [LIMIT n]
const SINTERCARD_KEYS: KeySpec = KeySpec::NumKeys {
    numkeys_at: 1,
    first_key_at: 2,
    dest_at: None,
    rule: NumKeysRule::SetCard,
};
/// LMPOP numkeys key... LEFT|RIGHT
const MPOP_KEYS: KeySpec = KeySpec::NumKeys {
    numkeys_at: 1,
    first_key_at: 2,
    dest_at: None,
    rule: NumKeysRule::Pop,
};
/// BLMPOP timeout numkeys key... LEFT|RIGHT
const BLOCKING_MPOP_KEYS: KeySpec = KeySpec::NumKeys {
    numkeys_at: 2,
    first_key_at: 3,
    dest_at: None,
    rule: NumKeysRule::Pop,
};
/// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE dest]
const SORT_KEYS: KeySpec = KeySpec::Store {
    key: 1,
    options_from: 2,
    store: &["STORE"],
    skip: &[
        OptionArg {
            name: "BY",
            values: 1,
        },
        OptionArg {
            name: "GET",
            values: 1,
        },
        OptionArg {
            name: "LIMIT",
            values: 2,
        },
    ],
};
/// GEORADIUS key longitude latitude radius unit [...] [STORE key] [STOREDIST key]
const GEORADIUS_KEYS: KeySpec = KeySpec::Store {
    key: 1,
    options_from: 6,
    store: &["STORE", "STOREDIST"],
    skip: &[],
};
/// GEORADIUSBYMEMBER key member radius unit [...] [STORE key] [STOREDIST key]
const GEORADIUSBYMEMBER_KEYS: KeySpec = KeySpec::Store {
    key: 1,
    options_from: 5,
    store: &["STORE", "STOREDIST"],
    skip: &[],
};
/// XREAD [COUNT n] [BLOCK ms] STREAMS key... id...
const XREAD_KEYS: KeySpec = KeySpec::Streams {
    options: &[
        OptionArg {
            name: "COUNT",
            values: 1,
        },
        OptionArg {
            name: "BLOCK",
            values: 1,
        },
    ],
    blocking: "BLOCK",
};
/// XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS key... id...
const XREADGROUP_KEYS: KeySpec = KeySpec::Streams {
    options: &[
        OptionArg {
            name: "GROUP",
            values: 2,
        },
        OptionArg {
            name: "COUNT",
            values: 1,
        },
        OptionArg {
            name: "BLOCK",
            values: 1,
        },
        OptionArg {
            name: "NOACK",
            values: 0,
        },
    ],
    blocking: "BLOCK",
};

/// A forwarded command that only reads.
const fn read(name: &'static str, arity: i32, keys: KeySpec) -> Command {
    Command {
        name,
        arity,
        kind: Kind::Forward,
        keys,
        readonly: true,
        subcommands: &[],
    }
}

/// A forwarded command that may write.
const fn write(name: &'static str, arity: i32, keys: KeySpec) -> Command {
    Command {
        readonly: false,
        ..read(name, arity, keys)
    }
}

/// A keyless command that is not read-only (used for the refused ones).
const fn plain(name: &'static str, arity: i32) -> Command {
    write(name, arity, NO_KEY)
}

/// `command`, split per shard and merged by `merge`.
const fn split(command: Command, merge: Merge) -> Command {
    Command {
        kind: Kind::Split(merge),
        ..command
    }
}

/// `command`, refused for `reason`; its arity and keys remain for `COMMAND INFO`.
const fn refuse(command: Command, reason: &'static str) -> Command {
    Command {
        kind: Kind::Unsupported(reason),
        ..command
    }
}

/// `command`, which may block its connection: sent on a connection of the client's own.
const fn blocking(command: Command) -> Command {
    Command {
        kind: Kind::Blocking,
        ..command
    }
}

/// A pub/sub command.
const fn pubsub(command: Command, which: PubSubCommand) -> Command {
    Command {
        kind: Kind::PubSub(which),
        ..command
    }
}

/// `command`, served on a connection the client holds.
const fn session(command: Command, which: SessionCommand) -> Command {
    Command {
        kind: Kind::Session(which),
        ..command
    }
}

/// `command`, served over the keyspace of every shard.
const fn keyspace(command: Command, which: Keyspace) -> Command {
    Command {
        kind: Kind::Keyspace(which),
        ..command
    }
}

/// A command the proxy answers itself.
const fn local(name: &'static str, arity: i32, which: LocalCommand) -> Command {
    Command {
        kind: Kind::Local(which),
        ..plain(name, arity)
    }
}

/// A container whose subcommands are handled differently.
const fn container(name: &'static str, arity: i32, subcommands: &'static [Command]) -> Command {
    Command {
        subcommands,
        ..plain(name, arity)
    }
}

const MEMORY: &[Command] = &[
    refuse(plain("memory|doctor", 2), SERVER_STATE),
    read("memory|help", 2, NO_KEY),
    refuse(plain("memory|malloc-stats", 2), SERVER_STATE),
    refuse(plain("memory|purge", 2), ADMIN),
    refuse(plain("memory|stats", 2), SERVER_STATE),
    read("memory|usage", -3, SUB_KEY),
];

const OBJECT: &[Command] = &[
    read("object|encoding", 3, SUB_KEY),
    read("object|freq", 3, SUB_KEY),
    read("object|help", 2, NO_KEY),
    read("object|idletime", 3, SUB_KEY),
    read("object|refcount", 3, SUB_KEY),
];

const PUBSUB: &[Command] = &[
    keyspace(plain("pubsub|channels", -2), Keyspace::PubSubChannels),
    read("pubsub|help", 2, NO_KEY),
    keyspace(plain("pubsub|numpat", 2), Keyspace::PubSubNumPat),
    keyspace(plain("pubsub|numsub", -2), Keyspace::PubSubNumSub),
    keyspace(
        plain("pubsub|shardchannels", -2),
        Keyspace::PubSubShardChannels,
    ),
    keyspace(plain("pubsub|shardnumsub", -2), Keyspace::PubSubShardNumSub),
];

const XGROUP: &[Command] = &[
    write("xgroup|create", -5, SUB_KEY),
    write("xgroup|createconsumer", 5, SUB_KEY),
    write("xgroup|delconsumer", 5, SUB_KEY),
    write("xgroup|destroy", 4, SUB_KEY),
    read("xgroup|help", 2, NO_KEY),
    write("xgroup|setid", -5, SUB_KEY),
];

const XINFO: &[Command] = &[
    read("xinfo|consumers", 4, SUB_KEY),
    read("xinfo|groups", 3, SUB_KEY),
    read("xinfo|help", 2, NO_KEY),
    read("xinfo|stream", -3, SUB_KEY),
];

/// Every top-level command, sorted by name.
pub(crate) const COMMANDS: &[Command] = &[
    refuse(plain("acl", -2), ADMIN),
    write("append", 3, KEY),
    refuse(plain("asking", 1), CLUSTER),
    local("auth", -2, LocalCommand::Auth),
    refuse(plain("bgrewriteaof", 1), ADMIN),
    refuse(plain("bgsave", -1), ADMIN),
    read("bitcount", -2, KEY),
    write("bitfield", -2, KEY),
    read("bitfield_ro", -2, KEY),
    write("bitop", -4, BITOP_KEYS),
    read("bitpos", -3, KEY),
    blocking(write("blmove", 6, TWO_KEYS)),
    blocking(write("blmpop", -5, BLOCKING_MPOP_KEYS)),
    blocking(write("blpop", -3, ALL_BUT_LAST)),
    blocking(write("brpop", -3, ALL_BUT_LAST)),
    blocking(write("brpoplpush", 4, TWO_KEYS)),
    blocking(write("bzmpop", -5, BLOCKING_MPOP_KEYS)),
    blocking(write("bzpopmax", -3, ALL_BUT_LAST)),
    blocking(write("bzpopmin", -3, ALL_BUT_LAST)),
    local("client", -2, LocalCommand::Client),
    refuse(plain("cluster", -2), CLUSTER),
    local("command", -1, LocalCommand::Command),
    refuse(plain("config", -2), ADMIN),
    write("copy", -3, TWO_KEYS),
    keyspace(read("dbsize", 1, NO_KEY), Keyspace::DbSize),
    refuse(plain("debug", -2), ADMIN),
    write("decr", 2, KEY),
    write("decrby", 3, KEY),
    split(write("del", -2, ALL_KEYS), Merge::SumIntegers),
    session(plain("discard", 1), SessionCommand::Discard),
    read("dump", 2, KEY),
    local("echo", 2, LocalCommand::Echo),
    write("eval", -3, SCRIPT_KEYS),
    read("eval_ro", -3, SCRIPT_KEYS),
    write("evalsha", -3, SCRIPT_KEYS),
    read("evalsha_ro", -3, SCRIPT_KEYS),
    session(plain("exec", 1), SessionCommand::Exec),
    split(read("exists", -2, ALL_KEYS), Merge::SumIntegers),
    write("expire", -3, KEY),
    write("expireat", -3, KEY),
    read("expiretime", 2, KEY),
    refuse(plain("failover", -1), ADMIN),
    write("fcall", -3, SCRIPT_KEYS),
    read("fcall_ro", -3, SCRIPT_KEYS),
    keyspace(plain("flushall", -1), Keyspace::FlushAll),
    keyspace(plain("flushdb", -1), Keyspace::FlushDb),
    refuse(plain("function", -2), SCRIPTS),
    write("geoadd", -5, KEY),
    read("geodist", -4, KEY),
    read("geohash", -2, KEY),
    read("geopos", -2, KEY),
    write("georadius", -6, GEORADIUS_KEYS),
    read("georadius_ro", -6, KEY),
    write("georadiusbymember", -5, GEORADIUSBYMEMBER_KEYS),
    read("georadiusbymember_ro", -5, KEY),
    read("geosearch", -7, KEY),
    write("geosearchstore", -8, TWO_KEYS),
    read("get", 2, KEY),
    read("getbit", 3, KEY),
    write("getdel", 2, KEY),
    write("getex", -2, KEY),
    read("getrange", 4, KEY),
    write("getset", 3, KEY),
    write("hdel", -3, KEY),
    local("hello", -1, LocalCommand::Hello),
    read("hexists", 3, KEY),
    read("hget", 3, KEY),
    read("hgetall", 2, KEY),
    write("hincrby", 4, KEY),
    write("hincrbyfloat", 4, KEY),
    read("hkeys", 2, KEY),
    read("hlen", 2, KEY),
    read("hmget", -3, KEY),
    write("hmset", -4, KEY),
    read("hrandfield", -2, KEY),
    read("hscan", -3, KEY),
    write("hset", -4, KEY),
    write("hsetnx", 4, KEY),
    read("hstrlen", 3, KEY),
    read("hvals", 2, KEY),
    write("incr", 2, KEY),
    write("incrby", 3, KEY),
    write("incrbyfloat", 3, KEY),
    local("info", -1, LocalCommand::Info),
    keyspace(read("keys", 2, NO_KEY), Keyspace::Keys),
    refuse(plain("lastsave", 1), SERVER_STATE),
    refuse(plain("latency", -2), ADMIN),
    read("lcs", -3, TWO_KEYS),
    read("lindex", 3, KEY),
    write("linsert", 5, KEY),
    read("llen", 2, KEY),
    write("lmove", 5, TWO_KEYS),
    write("lmpop", -4, MPOP_KEYS),
    read("lolwut", -1, NO_KEY),
    write("lpop", -2, KEY),
    read("lpos", -3, KEY),
    write("lpush", -3, KEY),
    write("lpushx", -3, KEY),
    read("lrange", 4, KEY),
    write("lrem", 4, KEY),
    write("lset", 4, KEY),
    write("ltrim", 4, KEY),
    container("memory", -2, MEMORY),
    split(read("mget", -2, ALL_KEYS), Merge::Values),
    refuse(write("migrate", -6, KeySpec::Single(3)), MIGRATE),
    refuse(plain("module", -2), ADMIN),
    refuse(plain("monitor", 1), ADMIN),
    refuse(write("move", 3, KEY), DATABASES),
    split(write("mset", -3, PAIRS), Merge::AllOk),
    write("msetnx", -3, PAIRS),
    session(plain("multi", 1), SessionCommand::Multi),
    container("object", -2, OBJECT),
    write("persist", 2, KEY),
    write("pexpire", -3, KEY),
    write("pexpireat", -3, KEY),
    read("pexpiretime", 2, KEY),
    write("pfadd", -2, KEY),
    read("pfcount", -2, ALL_KEYS),
    refuse(write("pfdebug", 3, SUB_KEY), ADMIN),
    write("pfmerge", -2, ALL_KEYS),
    refuse(plain("pfselftest", 1), ADMIN),
    local("ping", -1, LocalCommand::Ping),
    write("psetex", 4, KEY),
    pubsub(plain("psubscribe", -2), PubSubCommand::PSubscribe),
    refuse(plain("psync", -3), ADMIN),
    read("pttl", 2, KEY),
    pubsub(plain("publish", 3), PubSubCommand::Publish),
    container("pubsub", -2, PUBSUB),
    pubsub(plain("punsubscribe", -1), PubSubCommand::PUnsubscribe),
    local("quit", -1, LocalCommand::Quit),
    keyspace(read("randomkey", 1, NO_KEY), Keyspace::RandomKey),
    refuse(plain("readonly", 1), CLUSTER),
    refuse(plain("readwrite", 1), CLUSTER),
    write("rename", 3, TWO_KEYS),
    write("renamenx", 3, TWO_KEYS),
    refuse(plain("replconf", -1), ADMIN),
    refuse(plain("replicaof", 3), ADMIN),
    session(plain("reset", 1), SessionCommand::Reset),
    write("restore", -4, KEY),
    refuse(write("restore-asking", -4, KEY), CLUSTER),
    refuse(plain("role", 1), SERVER_STATE),
    write("rpop", -2, KEY),
    write("rpoplpush", 3, TWO_KEYS),
    write("rpush", -3, KEY),
    write("rpushx", -3, KEY),
    write("sadd", -3, KEY),
    refuse(plain("save", 1), ADMIN),
    keyspace(read("scan", -2, NO_KEY), Keyspace::Scan),
    read("scard", 2, KEY),
    local("script", -2, LocalCommand::Script),
    read("sdiff", -2, ALL_KEYS),
    write("sdiffstore", -3, ALL_KEYS),
    local("select", 2, LocalCommand::Select),
    write("set", -3, KEY),
    write("setbit", 4, KEY),
    write("setex", 4, KEY),
    write("setnx", 3, KEY),
    write("setrange", 4, KEY),
    refuse(plain("shutdown", -1), ADMIN),
    read("sinter", -2, ALL_KEYS),
    read("sintercard", -3, SINTERCARD_KEYS),
    write("sinterstore", -3, ALL_KEYS),
    read("sismember", 3, KEY),
    refuse(plain("slaveof", 3), ADMIN),
    refuse(plain("slowlog", -2), ADMIN),
    read("smembers", 2, KEY),
    read("smismember", -3, KEY),
    write("smove", 4, TWO_KEYS),
    write("sort", -2, SORT_KEYS),
    read("sort_ro", -2, KEY),
    write("spop", -2, KEY),
    write("spublish", 3, KEY),
    read("srandmember", -2, KEY),
    write("srem", -3, KEY),
    read("sscan", -3, KEY),
    pubsub(write("ssubscribe", -2, ALL_KEYS), PubSubCommand::SSubscribe),
    read("strlen", 2, KEY),
    pubsub(plain("subscribe", -2), PubSubCommand::Subscribe),
    read("substr", 4, KEY),
    read("sunion", -2, ALL_KEYS),
    write("sunionstore", -3, ALL_KEYS),
    pubsub(
        write("sunsubscribe", -1, ALL_KEYS),
        PubSubCommand::SUnsubscribe,
    ),
    refuse(plain("swapdb", 3), DATABASES),
    refuse(plain("sync", 1), ADMIN),
    read("time", 1, NO_KEY),
    split(read("touch", -2, ALL_KEYS), Merge::SumIntegers),
    read("ttl", 2, KEY),
    read("type", 2, KEY),
    split(write("unlink", -2, ALL_KEYS), Merge::SumIntegers),
    pubsub(plain("unsubscribe", -1), PubSubCommand::Unsubscribe),
    session(plain("unwatch", 1), SessionCommand::Unwatch),
    session(plain("wait", 3), SessionCommand::Wait),
    session(write("watch", -2, ALL_KEYS), SessionCommand::Watch),
    write("xack", -4, KEY),
    write("xadd", -5, KEY),
    write("xautoclaim", -6, KEY),
    write("xclaim", -6, KEY),
    write("xdel", -3, KEY),
    container("xgroup", -2, XGROUP),
    container("xinfo", -2, XINFO),
    read("xlen", 2, KEY),
    read("xpending", -3, KEY),
    read("xrange", -4, KEY),
    read("xread", -4, XREAD_KEYS),
    write("xreadgroup", -7, XREADGROUP_KEYS),
    read("xrevrange", -4, KEY),
    write("xsetid", -3, KEY),
    write("xtrim", -4, KEY),
    write("zadd", -4, KEY),
    read("zcard", 2, KEY),
    read("zcount", 4, KEY),
    read("zdiff", -3, ZSET_KEYS),
    write("zdiffstore", -4, ZSET_STORE_KEYS),
    write("zincrby", 4, KEY),
    read("zinter", -3, ZSET_KEYS),
    read("zintercard", -3, ZSET_KEYS),
    write("zinterstore", -4, ZSET_STORE_KEYS),
    read("zlexcount", 4, KEY),
    write("zmpop", -4, MPOP_KEYS),
    read("zmscore", -3, KEY),
    write("zpopmax", -2, KEY),
    write("zpopmin", -2, KEY),
    read("zrandmember", -2, KEY),
    read("zrange", -4, KEY),
    read("zrangebylex", -4, KEY),
    read("zrangebyscore", -4, KEY),
    write("zrangestore", -5, TWO_KEYS),
    read("zrank", 3, KEY),
    write("zrem", -3, KEY),
    write("zremrangebylex", 4, KEY),
    write("zremrangebyrank", 4, KEY),
    write("zremrangebyscore", 4, KEY),
    read("zrevrange", -4, KEY),
    read("zrevrangebylex", -4, KEY),
    read("zrevrangebyscore", -4, KEY),
    read("zrevrank", 3, KEY),
    read("zscan", -3, KEY),
    read("zscore", 3, KEY),
    read("zunion", -3, ZSET_KEYS),
    write("zunionstore", -4, ZSET_STORE_KEYS),
];

#[cfg(test)]
mod tests {
    use super::COMMANDS;
    use crate::command::{Command, KeySpec, Keyspace, Kind, LocalCommand, Merge};

    fn all() -> impl Iterator<Item = &'static Command> {
        COMMANDS
            .iter()
            .flat_map(|command| std::iter::once(command).chain(command.subcommands))
    }

    fn sorted_and_unique(table: &[Command]) {
        for pair in table.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} then {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn tables_are_sorted_and_unique() {
        sorted_and_unique(COMMANDS);
        for command in COMMANDS {
            sorted_and_unique(command.subcommands);
        }
    }

    #[test]
    fn names_are_lower_case_and_subcommands_prefixed() {
        for command in all() {
            assert!(!command.name.is_empty());
            assert!(
                !command.name.bytes().any(|byte| byte.is_ascii_uppercase()),
                "{}",
                command.name
            );
        }
        for container in COMMANDS {
            assert!(!container.name.contains('|'));
            for sub in container.subcommands {
                let short = sub
                    .name
                    .strip_prefix(container.name)
                    .and_then(|s| s.strip_prefix('|'));
                assert!(short.is_some_and(|s| !s.is_empty()), "{}", sub.name);
                assert!(sub.subcommands.is_empty());
            }
        }
    }

    #[test]
    fn split_commands_are_exactly_the_six() {
        let split: Vec<(&str, Merge)> = all()
            .filter_map(|command| match command.kind {
                Kind::Split(merge) => Some((command.name, merge)),
                _ => None,
            })
            .collect();
        assert_eq!(
            split,
            [
                ("del", Merge::SumIntegers),
                ("exists", Merge::SumIntegers),
                ("mget", Merge::Values),
                ("mset", Merge::AllOk),
                ("touch", Merge::SumIntegers),
                ("unlink", Merge::SumIntegers),
            ]
        );
        for command in all().filter(|command| matches!(command.kind, Kind::Split(_))) {
            assert!(matches!(
                command.keys,
                KeySpec::Range {
                    first: 1,
                    last: -1,
                    ..
                }
            ));
        }
    }

    #[test]
    fn local_commands() {
        let local: Vec<(&str, LocalCommand)> = all()
            .filter_map(|command| match command.kind {
                Kind::Local(which) => Some((command.name, which)),
                _ => None,
            })
            .collect();
        assert_eq!(
            local,
            [
                ("auth", LocalCommand::Auth),
                ("client", LocalCommand::Client),
                ("command", LocalCommand::Command),
                ("echo", LocalCommand::Echo),
                ("hello", LocalCommand::Hello),
                ("info", LocalCommand::Info),
                ("ping", LocalCommand::Ping),
                ("quit", LocalCommand::Quit),
                ("script", LocalCommand::Script),
                ("select", LocalCommand::Select),
            ]
        );
    }

    #[test]
    fn keyspace_commands_are_exactly_these() {
        let keyspace: Vec<(&str, Keyspace)> = all()
            .filter_map(|command| match command.kind {
                Kind::Keyspace(which) => Some((command.name, which)),
                _ => None,
            })
            .collect();
        assert_eq!(
            keyspace,
            [
                ("dbsize", Keyspace::DbSize),
                ("flushall", Keyspace::FlushAll),
                ("flushdb", Keyspace::FlushDb),
                ("keys", Keyspace::Keys),
                ("pubsub|channels", Keyspace::PubSubChannels),
                ("pubsub|numpat", Keyspace::PubSubNumPat),
                ("pubsub|numsub", Keyspace::PubSubNumSub),
                ("pubsub|shardchannels", Keyspace::PubSubShardChannels),
                ("pubsub|shardnumsub", Keyspace::PubSubShardNumSub),
                ("randomkey", Keyspace::RandomKey),
                ("scan", Keyspace::Scan),
            ]
        );
    }

    #[test]
    fn refused_commands_say_why() {
        for command in all() {
            if let Kind::Unsupported(reason) = command.kind {
                assert!(reason.len() > 10, "{}", command.name);
            }
        }
        for name in [
            "move", "config", "function", "cluster", "readonly", "migrate",
        ] {
            let command = COMMANDS
                .iter()
                .find(|command| command.name == name)
                .expect(name);
            assert!(matches!(command.kind, Kind::Unsupported(_)), "{name}");
        }
    }

    #[test]
    fn containers_route_only_through_subcommands() {
        let containers: Vec<&str> = COMMANDS
            .iter()
            .filter(|command| !command.subcommands.is_empty())
            .map(|command| command.name)
            .collect();
        assert_eq!(
            containers,
            ["memory", "object", "pubsub", "xgroup", "xinfo"]
        );
    }
}
