//! `/status`: one JSON document with what an operator asks first: every pool and shard (the
//! configured address, where its master is now, the replicas Sentinel lists, whether it is in
//! the ring or failing over, its traffic so far, how far its migration is), the VRRP
//! instances, the uptime and the version. The admin endpoint writes it; `rampart status` reads it back with the same types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use rampart_config::Config;

use super::catalog::{LimitStat, PoolStat, ServerStat};
use super::stats::{MigrationStat, StatsBoard};
use crate::topology::Topology;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub uptime_seconds: u64,
    pub pools: Vec<PoolStatus>,
    pub vrrp: Vec<VrrpStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolStatus {
    pub name: String,
    pub listen: String,
    /// Whether Sentinel tells the pool where its masters are.
    pub sentinels: bool,
    pub client_connections: u64,
    pub parked_clients: u64,
    /// Requests answered with an error because no server could serve them.
    pub forward_errors: u64,
    /// How often each client limit was enforced, by its counter name (docs/limits.md).
    #[serde(default)]
    pub limits: BTreeMap<String, u64>,
    pub shards: Vec<ShardStatus>,
    /// The pool's online migration, while one runs (`null` otherwise).
    #[serde(default)]
    pub migration: Option<MigrationStatus>,
}

/// How far a pool's migration is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationStatus {
    /// The pool migrates: commands move the keys they touch first.
    pub running: bool,
    /// This node's background migrator waits: for the virtual IP (on a VRRP backup, which
    /// leaves the moves to the master) or for a shard to fail over.
    #[serde(default)]
    pub waiting: bool,
    /// Keys read from the old servers so far (every pass).
    pub scanned: u64,
    /// Keys moved to their new server so far.
    pub moved: u64,
    /// Keys still to read in the first pass, as estimated from the old servers' sizes.
    pub remaining_estimate: u64,
    /// When the first pass should end at `migrate_rate` (`null` once it has).
    pub eta_seconds: Option<f64>,
    /// The servers that left the ring and drain until their keys have moved.
    pub draining: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardStatus {
    /// The configured server name (the Sentinel master name in a pool with sentinels).
    pub name: String,
    /// The address in the configuration file.
    pub configured: String,
    /// Where the shard's master is now (moves with Sentinel failovers).
    pub master: String,
    /// The healthy replicas Sentinel lists (pools with `replica_reads`).
    pub replicas: Vec<String>,
    /// In the pool's ring (false while `auto_eject_hosts` has ejected it).
    pub live: bool,
    /// Sentinel reports the master down and has not promoted another yet.
    pub master_down: bool,
    pub requests: u64,
    pub responses: u64,
    /// Failed server connections: EOF, errors and timeouts.
    pub errors: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrrpStatus {
    pub instance: String,
    pub state: String,
    pub priority: u8,
    /// The current master's address, once known.
    pub master: Option<String>,
    pub transitions: u64,
}

/// The document as things are now.
pub fn collect(config: &Config, topology: &Topology, board: &StatsBoard) -> Status {
    let table = board.sum(config);
    let pools = config
        .pools
        .iter()
        .enumerate()
        .zip(&table.pools)
        .map(|((index, pool), counters)| {
            let view = topology.view(index);
            let pool_stat = |stat: PoolStat| counters.pool.get(stat as usize).copied().unwrap_or(0);
            let shards = pool
                .servers
                .iter()
                .enumerate()
                .zip(&counters.servers)
                .map(|((server, config), values)| {
                    let stat = |stat: ServerStat| values.get(stat as usize).copied().unwrap_or(0);
                    ShardStatus {
                        name: config.name.clone(),
                        configured: config.address.to_string(),
                        master: view
                            .addresses
                            .get(server)
                            .map_or_else(|| config.address.to_string(), ToString::to_string),
                        replicas: view
                            .replicas
                            .get(server)
                            .map(|replicas| replicas.iter().map(ToString::to_string).collect())
                            .unwrap_or_default(),
                        live: view.live.get(server).copied().unwrap_or(false),
                        master_down: topology.master_down(index, server),
                        requests: stat(ServerStat::Requests),
                        responses: stat(ServerStat::Responses),
                        errors: stat(ServerStat::ServerEof)
                            + stat(ServerStat::ServerErr)
                            + stat(ServerStat::ServerTimedout),
                    }
                })
                .collect();
            PoolStatus {
                name: pool.name.clone(),
                listen: pool.listen.to_string(),
                sentinels: !pool.sentinels.is_empty(),
                client_connections: pool_stat(PoolStat::ClientConnections),
                parked_clients: counters.parked_clients,
                forward_errors: pool_stat(PoolStat::ForwardError),
                limits: LimitStat::ALL
                    .into_iter()
                    .map(|stat| {
                        let count = counters.limits.get(stat as usize).copied().unwrap_or(0);
                        (stat.name().to_string(), count)
                    })
                    .collect(),
                shards,
                migration: view.migration.as_ref().map(|_| {
                    let stat = |stat: MigrationStat| {
                        counters.migration.get(stat as usize).copied().unwrap_or(0)
                    };
                    let remaining = stat(MigrationStat::Remaining);
                    MigrationStatus {
                        running: stat(MigrationStat::Running) == 1,
                        waiting: stat(MigrationStat::Waiting) == 1,
                        scanned: stat(MigrationStat::Scanned),
                        moved: stat(MigrationStat::Moved),
                        remaining_estimate: remaining,
                        eta_seconds: (remaining > 0)
                            .then(|| remaining as f64 / f64::from(pool.migrate_rate.max(1))),
                        draining: pool
                            .servers
                            .iter()
                            .filter(|server| server.draining)
                            .map(|server| server.name.clone())
                            .collect(),
                    }
                }),
            }
        })
        .collect();
    let vrrp = board
        .vrrp()
        .into_iter()
        .map(|instance| VrrpStatus {
            state: instance.state.to_string(),
            instance: instance.name,
            priority: instance.priority,
            master: instance.master.map(|address| address.to_string()),
            transitions: instance.transitions,
        })
        .collect();
    Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_seconds: board.uptime().as_secs(),
        pools,
        vrrp,
    }
}
