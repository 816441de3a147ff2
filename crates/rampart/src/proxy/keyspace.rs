//! The commands over the whole keyspace (SCAN, DBSIZE, KEYS, RANDOMKEY, FLUSHDB, FLUSHALL) and
//! PUBSUB's introspection over the channels of every shard (CHANNELS, SHARDCHANNELS, NUMSUB,
//! SHARDNUMSUB, NUMPAT): checks their arguments as redis-server does, chooses the shards each
//! goes to and the request they get, and refuses them while a shard they need is out of reach,
//! naming it. SCAN goes to one shard at a time, the one its cursor points at (`scan_cursor`);
//! NUMSUB and SHARDNUMSUB are split like MGET, each channel to the shard it lives on (where
//! PUBLISH delivers it); the others go to every shard. `keyspace_merge` combines the replies.
//!
//! A shard ejected from the ring (`auto_eject_hosts`) holds keys the pool cannot reach, so every
//! one of these commands refuses to give a partial answer while one is. FLUSHDB and FLUSHALL
//! are also refused while a connection to some shard is failing, so that a flush known to miss
//! a shard is never applied to the others; Redis has no two-phase commit, so a shard that
//! fails during the flush still leaves the others flushed (its error is the reply). NUMSUB
//! needs only the shards of its channels, which the ring picks among the live ones.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;

use bytes::{Bytes, BytesMut};
use rampart_commands::{Arguments, CommandError, Keyspace};
use rampart_protocol::encode;

use super::keyspace_merge::{Combine, KeyspaceMerge};
use super::local::redis_integer;
use super::pool::WorkerPool;
use super::scan_cursor;

/// What the session does with a whole-keyspace command.
pub enum Plan {
    /// Answered here (an error, or NUMSUB of no channel): the reply is in the output buffer.
    Replied,
    /// `request` goes to every shard of the pool, all of them in the ring; fragment N is
    /// server N.
    EveryShard {
        request: Bytes,
        merge: KeyspaceMerge,
    },
    /// `request` goes to `server` alone (SCAN); `merge` rewrites its reply.
    OneShard {
        server: usize,
        request: Bytes,
        merge: KeyspaceMerge,
    },
    /// Each request goes to its server (NUMSUB's channels, per shard); fragment N is
    /// `requests[N]`.
    PerShard {
        requests: Vec<(usize, Bytes)>,
        merge: KeyspaceMerge,
    },
}

/// Why a whole-keyspace command is refused.
#[derive(Debug)]
enum Refusal<'a> {
    /// Redis's text for a SCAN cursor that is not a number.
    InvalidCursor,
    /// Redis's text for an unknown option.
    Syntax,
    /// Redis's text for a COUNT that is not an integer.
    NotAnInteger,
    /// A shard the command needs is out of the ring.
    Ejected { command: &'a str, shard: &'a str },
    /// A shard a flush needs cannot be reached now.
    Unreachable { command: &'a str, shard: &'a str },
    /// Every shard is ejected: nutcracker's reply.
    NoServer,
    /// An error of the command table's, with Redis's text (it may quote the request).
    Command(CommandError<'a>),
}

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::InvalidCursor => f.write_str("invalid cursor"),
            Refusal::Syntax => f.write_str("syntax error"),
            Refusal::NotAnInteger => f.write_str("value is not an integer or out of range"),
            Refusal::Ejected { command, shard } => write!(
                f,
                "{command} needs every shard, and shard '{shard}' is ejected from the pool"
            ),
            Refusal::Unreachable { command, shard } => write!(
                f,
                "{command} refused: shard '{shard}' is unreachable, so nothing was flushed"
            ),
            Refusal::NoServer => f.write_str("Connection refused"),
            Refusal::Command(error) => write!(f, "{error}"),
        }
    }
}

/// Plans `command`; a refusal is written to `out` (which must be empty), and so, before being
/// taken out of it, is the request for the shards.
pub fn plan(
    command: Keyspace,
    args: &dyn Arguments,
    pool: &WorkerPool,
    out: &mut BytesMut,
) -> Plan {
    match try_plan(command, args, pool, out) {
        Ok(plan) => plan,
        Err(refusal) => {
            out.clear();
            match refusal {
                Refusal::Command(error) => {
                    let mut text = Vec::new();
                    error.write_to(&mut text);
                    out.extend_from_slice(b"-");
                    out.extend_from_slice(&text);
                    out.extend_from_slice(b"\r\n");
                }
                Refusal::NoServer => {
                    pool.forward_error();
                    encode::err(out, b"Connection refused");
                }
                refusal => encode::error_fmt(out, b"ERR", format_args!("{refusal}")),
            }
            Plan::Replied
        }
    }
}

fn try_plan<'p>(
    command: Keyspace,
    args: &'p dyn Arguments,
    pool: &'p WorkerPool,
    out: &mut BytesMut,
) -> Result<Plan, Refusal<'p>> {
    let shards = pool.pool().servers.len();
    let name = |server: usize| {
        pool.pool()
            .servers
            .get(server)
            .map_or("?", |server| server.name.as_str())
    };
    let names = || (0..shards).map(|server| name(server).to_owned()).collect();
    let combine = match command {
        Keyspace::Scan => {
            let position = scan_cursor::position(scan_position(args)?, shards);
            let server = position.shard;
            if !pool.is_live(server) {
                return Err(Refusal::Ejected {
                    command: "SCAN",
                    shard: name(server),
                });
            }
            let cursor = position.server_cursor.to_string();
            let rest = (2..args.count()).map(|index| args.get(index));
            encode::request(
                out,
                [&b"SCAN"[..], cursor.as_bytes()]
                    .into_iter()
                    .chain(rest)
                    .collect::<Vec<_>>(),
            );
            return Ok(Plan::OneShard {
                server,
                request: out.split().freeze(),
                merge: KeyspaceMerge {
                    combine: Combine::Scan {
                        shard: server,
                        shards,
                    },
                    shards: vec![name(server).to_owned()],
                },
            });
        }
        Keyspace::DbSize => Combine::Sum,
        Keyspace::Keys => Combine::Concat,
        Keyspace::RandomKey => Combine::RandomKey {
            pick: RandomState::new().hash_one(pool.live_servers()),
        },
        Keyspace::FlushDb | Keyspace::FlushAll => {
            check_flush_mode(args)?;
            Combine::AllOk
        }
        Keyspace::PubSubChannels | Keyspace::PubSubShardChannels => {
            if args.count() > 3 {
                return Err(Refusal::Command(CommandError::SubcommandSyntax {
                    container: "pubsub",
                    subcommand: args.get(1),
                }));
            }
            Combine::Concat
        }
        Keyspace::PubSubNumPat => Combine::Max,
        Keyspace::PubSubNumSub | Keyspace::PubSubShardNumSub => {
            return plan_numsub(args, pool, out);
        }
    };
    let label = label(command);
    for server in 0..shards {
        if !pool.is_live(server) {
            return Err(Refusal::Ejected {
                command: label,
                shard: name(server),
            });
        }
        if matches!(combine, Combine::AllOk) && !pool.is_reachable(server) {
            return Err(Refusal::Unreachable {
                command: label,
                shard: name(server),
            });
        }
    }
    encode::request(out, (0..args.count()).map(|index| args.get(index)));
    Ok(Plan::EveryShard {
        request: out.split().freeze(),
        merge: KeyspaceMerge {
            combine,
            shards: names(),
        },
    })
}

/// `PUBSUB NUMSUB|SHARDNUMSUB channel...` split by the shard each channel lives on, as MGET
/// is: each shard gets its channels in the request's order, and the merge puts the
/// `channel, count` pairs back in that order. With no channel, Redis's empty array at once.
fn plan_numsub<'p>(
    args: &dyn Arguments,
    pool: &'p WorkerPool,
    out: &mut BytesMut,
) -> Result<Plan, Refusal<'p>> {
    let channels = 2..args.count();
    if channels.is_empty() {
        encode::array_header(out, 0);
        return Ok(Plan::Replied);
    }
    let mut servers: Vec<usize> = Vec::new();
    let mut channel_fragments = Vec::with_capacity(channels.len());
    for index in channels.clone() {
        let server = pool
            .server_for_key(args.get(index))
            .ok_or(Refusal::NoServer)?;
        let fragment = match servers.iter().position(|&known| known == server) {
            Some(fragment) => fragment,
            None => {
                servers.push(server);
                servers.len() - 1
            }
        };
        channel_fragments.push(fragment);
    }
    let mut requests = Vec::with_capacity(servers.len());
    let mut shards = Vec::with_capacity(servers.len());
    for (fragment, &server) in servers.iter().enumerate() {
        let mut request: Vec<&[u8]> = vec![b"PUBSUB", args.get(1)];
        request.extend(
            channels
                .clone()
                .zip(&channel_fragments)
                .filter(|&(_, &owner)| owner == fragment)
                .map(|(index, _)| args.get(index)),
        );
        encode::request(out, request);
        requests.push((server, out.split().freeze()));
        shards.push(
            pool.pool()
                .servers
                .get(server)
                .map_or("?", |server| server.name.as_str())
                .to_owned(),
        );
    }
    Ok(Plan::PerShard {
        requests,
        merge: KeyspaceMerge {
            combine: Combine::Pairs {
                fragments: channel_fragments,
            },
            shards,
        },
    })
}

/// The command's name in refusals.
fn label(command: Keyspace) -> &'static str {
    match command {
        Keyspace::Scan => "SCAN",
        Keyspace::DbSize => "DBSIZE",
        Keyspace::Keys => "KEYS",
        Keyspace::RandomKey => "RANDOMKEY",
        Keyspace::FlushDb => "FLUSHDB",
        Keyspace::FlushAll => "FLUSHALL",
        Keyspace::PubSubChannels => "PUBSUB CHANNELS",
        Keyspace::PubSubShardChannels => "PUBSUB SHARDCHANNELS",
        Keyspace::PubSubNumSub => "PUBSUB NUMSUB",
        Keyspace::PubSubShardNumSub => "PUBSUB SHARDNUMSUB",
        Keyspace::PubSubNumPat => "PUBSUB NUMPAT",
    }
}

/// The client's cursor of `SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]`, once the options
/// are checked as redis-server 7.0 checks them (cursor first, then each option in turn).
fn scan_position(args: &dyn Arguments) -> Result<u64, Refusal<'static>> {
    let cursor = scan_cursor::parse_client_cursor(args.get(1)).ok_or(Refusal::InvalidCursor)?;
    let mut index = 2;
    while index < args.count() {
        let option = args.get(index);
        let has_value = index + 1 < args.count();
        if option.eq_ignore_ascii_case(b"count") && has_value {
            let count = redis_integer(args.get(index + 1)).ok_or(Refusal::NotAnInteger)?;
            if count < 1 {
                return Err(Refusal::Syntax);
            }
        } else if !(option.eq_ignore_ascii_case(b"match") || option.eq_ignore_ascii_case(b"type"))
            || !has_value
        {
            return Err(Refusal::Syntax);
        }
        index += 2;
    }
    Ok(cursor)
}

/// FLUSHDB and FLUSHALL take nothing, `ASYNC` or `SYNC`, as in Redis 7.0.
fn check_flush_mode(args: &dyn Arguments) -> Result<(), Refusal<'static>> {
    let mode = args.get(1);
    match args.count() {
        1 => Ok(()),
        2 if mode.eq_ignore_ascii_case(b"async") || mode.eq_ignore_ascii_case(b"sync") => Ok(()),
        _ => Err(Refusal::Syntax),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(args: &[&str]) -> Result<u64, String> {
        let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        scan_position(&args).map_err(|refusal| refusal.to_string())
    }

    #[test]
    fn scan_options_are_checked_as_redis_does() {
        assert_eq!(scan(&["SCAN", "0"]), Ok(0));
        assert_eq!(
            scan(&["scan", "12", "match", "k*", "COUNT", "5", "type", "string"]),
            Ok(12)
        );
        assert_eq!(scan(&["SCAN", "x"]), Err("invalid cursor".into()));
        assert_eq!(
            scan(&["SCAN", "x", "COUNT", "0"]),
            Err("invalid cursor".into()),
            "the cursor is checked first"
        );
        for bad in [
            &["SCAN", "0", "COUNT", "0"][..],
            &["SCAN", "0", "COUNT", "-3"],
            &["SCAN", "0", "MATCH"],
            &["SCAN", "0", "COUNT"],
            &["SCAN", "0", "LIMIT", "3"],
        ] {
            assert_eq!(scan(bad), Err("syntax error".into()), "{bad:?}");
        }
        for bad in ["ten", "01", " 1", "99999999999999999999"] {
            assert_eq!(
                scan(&["SCAN", "0", "COUNT", bad]),
                Err("value is not an integer or out of range".into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn flush_takes_async_or_sync() {
        for (args, fine) in [
            (&["FLUSHALL"][..], true),
            (&["flushdb", "async"], true),
            (&["FLUSHDB", "SYNC"], true),
            (&["FLUSHALL", "now"], false),
            (&["FLUSHALL", "ASYNC", "SYNC"], false),
        ] {
            let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
            assert_eq!(check_flush_mode(&args).is_ok(), fine, "{args:?}");
        }
    }
}
