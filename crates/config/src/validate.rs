//! Checks that need a whole pool or the whole file, then nutcracker's defaults and ordering:
//! a pool needs `listen`, servers, a non-zero `server_connections`, and `redis: true` for
//! `redis_auth`; node names are unique within a pool; listen strings and pool names are unique
//! in the file. Servers and pools are then sorted by (byte length, bytes) of their names.

use std::path::PathBuf;

use rampart_placement::{Distribution, HashKind};

use crate::directives::PoolBuilder;
use crate::error::{ConfigErrorKind, Fault, Pos, Setting};
use crate::model::{Config, Pool};
use crate::quirks::nc_compare;

const DEFAULT_BACKLOG: u32 = 512;
const DEFAULT_SERVER_CONNECTIONS: u32 = 1;
const DEFAULT_SERVER_RETRY_TIMEOUT_MS: u32 = 30_000;
const DEFAULT_SERVER_FAILURE_LIMIT: u32 = 2;
/// How long requests wait for a new master during a Sentinel failover: long enough for a
/// failover with `down-after-milliseconds` up to 25 s plus the election.
const DEFAULT_FAILOVER_WAIT_MS: u32 = 30_000;
/// rampart extension: the background migrator's default pace, in keys per second.
const DEFAULT_MIGRATE_RATE: u32 = 10_000;

/// A pool that passed its own checks, with what the file-wide checks still need.
pub(crate) struct Checked {
    pool: Pool,
    pos: Pos,
    listen_raw: String,
    listen_pos: Pos,
}

fn value_or<T: Copy>(setting: &Option<Setting<T>>, default: T) -> T {
    setting.as_ref().map_or(default, |setting| setting.value)
}

/// Applies the pool-wide checks and the defaults to one pool.
pub(crate) fn pool(builder: PoolBuilder) -> Result<Checked, Fault> {
    let Some(Setting {
        value: (listen, listen_raw),
        pos: listen_pos,
    }) = builder.listen
    else {
        return Err(Fault::directive(
            builder.pos,
            "listen",
            ConfigErrorKind::MissingListen { pool: builder.name },
        ));
    };
    if let Some(Setting { value: 0, pos }) = builder.server_connections {
        return Err(Fault::directive(
            pos,
            "server_connections",
            ConfigErrorKind::ZeroServerConnections,
        ));
    }
    let redis = value_or(&builder.redis, false);
    if let (Some(auth), false) = (&builder.redis_auth, redis) {
        return Err(Fault::directive(
            auth.pos,
            "redis_auth",
            ConfigErrorKind::RedisAuthWithoutRedis { pool: builder.name },
        ));
    }
    if let (Some(wait), true) = (&builder.failover_wait_ms, builder.sentinels.is_empty()) {
        return Err(Fault::directive(
            wait.pos,
            "failover_wait_ms",
            ConfigErrorKind::FailoverWaitWithoutSentinels { pool: builder.name },
        ));
    }
    if let (Some(reads), true) = (&builder.replica_reads, builder.sentinels.is_empty()) {
        return Err(Fault::directive(
            reads.pos,
            "replica_reads",
            ConfigErrorKind::ReplicaReadsWithoutSentinels { pool: builder.name },
        ));
    }
    if let Some(Setting { value: 0, pos }) = builder.migrate_rate {
        return Err(Fault::directive(
            pos,
            "migrate_rate",
            ConfigErrorKind::ZeroMigrateRate,
        ));
    }
    if builder.servers.is_empty() {
        return Err(Fault::directive(
            builder.pos,
            "servers",
            ConfigErrorKind::NoServers { pool: builder.name },
        ));
    }
    let limits = builder.limits.build()?;
    let mut servers = builder.servers;
    servers.sort_by(|a, b| nc_compare(a.value.name.as_bytes(), b.value.name.as_bytes()));
    if let Some((first, second)) = adjacent_equal(&servers, |s| s.value.name.as_bytes()) {
        let (earlier, later) = in_file_order(first, second, |server| server.pos);
        return Err(Fault::directive(
            later.pos,
            "servers",
            ConfigErrorKind::DuplicateServerName {
                name: later.value.name.clone(),
                other_line: earlier.pos.line,
            },
        ));
    }

    let migrate_pos = builder.migrate.as_ref().map(|setting| setting.pos);
    let pool = Pool {
        name: builder.name,
        line: builder.pos.line,
        listen,
        listen_line: listen_pos.line,
        hash: value_or(&builder.hash, HashKind::Fnv1a64),
        hash_tag: builder.hash_tag.map(|setting| setting.value),
        distribution: value_or(&builder.distribution, Distribution::Ketama),
        timeout_ms: match value_or(&builder.timeout, 0) {
            0 => None,
            ms => Some(u64::from(ms)),
        },
        backlog: value_or(&builder.backlog, DEFAULT_BACKLOG),
        redis,
        redis_auth: builder.redis_auth.map(|setting| setting.value),
        redis_db: value_or(&builder.redis_db, 0),
        preconnect: value_or(&builder.preconnect, false),
        auto_eject_hosts: value_or(&builder.auto_eject_hosts, false),
        server_connections: value_or(&builder.server_connections, DEFAULT_SERVER_CONNECTIONS),
        server_retry_timeout_ms: u64::from(value_or(
            &builder.server_retry_timeout,
            DEFAULT_SERVER_RETRY_TIMEOUT_MS,
        )),
        server_failure_limit: value_or(&builder.server_failure_limit, DEFAULT_SERVER_FAILURE_LIMIT),
        tcpkeepalive: value_or(&builder.tcpkeepalive, false),
        servers: servers.into_iter().map(|server| server.value).collect(),
        failover_wait_ms: u64::from(value_or(
            &builder.failover_wait_ms,
            DEFAULT_FAILOVER_WAIT_MS,
        )),
        replica_reads: value_or(&builder.replica_reads, false),
        migrate: value_or(&builder.migrate, false),
        migrate_rate: value_or(&builder.migrate_rate, DEFAULT_MIGRATE_RATE),
        sentinels: builder.sentinels,
        limits,
    };
    if let (true, Some(pos), Some(reason)) = (pool.migrate, migrate_pos, pool.cannot_migrate()) {
        return Err(Fault::directive(
            pos,
            "migrate",
            ConfigErrorKind::MigrateUnsupported {
                pool: pool.name,
                reason,
            },
        ));
    }
    Ok(Checked {
        pool,
        pos: builder.pos,
        listen_raw,
        listen_pos,
    })
}

/// Applies the file-wide checks and nutcracker's pool order.
pub(crate) fn config(file: PathBuf, mut pools: Vec<Checked>) -> Result<Config, Fault> {
    pools.sort_by(|a, b| nc_compare(a.listen_raw.as_bytes(), b.listen_raw.as_bytes()));
    if let Some((first, second)) = adjacent_equal(&pools, |checked| checked.listen_raw.as_bytes()) {
        let (earlier, later) = in_file_order(first, second, |checked| checked.listen_pos);
        return Err(Fault::directive(
            later.listen_pos,
            "listen",
            ConfigErrorKind::DuplicateListen {
                other_pool: earlier.pool.name.clone(),
                other_line: earlier.listen_pos.line,
            },
        ));
    }
    pools.sort_by(|a, b| nc_compare(a.pool.name.as_bytes(), b.pool.name.as_bytes()));
    if let Some((first, second)) = adjacent_equal(&pools, |checked| checked.pool.name.as_bytes()) {
        let (earlier, later) = in_file_order(first, second, |checked| checked.pos);
        return Err(Fault::at(
            later.pos,
            ConfigErrorKind::DuplicatePool {
                pool: later.pool.name.clone(),
                first_line: earlier.pool.line,
            },
        ));
    }
    Ok(Config {
        file,
        pools: pools.into_iter().map(|checked| checked.pool).collect(),
    })
}

/// The first two neighbours of a sorted slice whose keys nutcracker deems equal.
fn adjacent_equal<T>(sorted: &[T], key: impl Fn(&T) -> &[u8]) -> Option<(&T, &T)> {
    sorted
        .iter()
        .zip(sorted.iter().skip(1))
        .find(|(a, b)| nc_compare(key(a), key(b)).is_eq())
}

/// Orders two items by where they appear in the file.
fn in_file_order<'a, T>(a: &'a T, b: &'a T, pos: impl Fn(&T) -> Pos) -> (&'a T, &'a T) {
    if pos(a) <= pos(b) { (a, b) } else { (b, a) }
}
