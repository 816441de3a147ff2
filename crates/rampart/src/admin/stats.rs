//! nutcracker-compatible stats: per-worker counter tables that workers fill without locks and
//! publish periodically, their sum, and the exact JSON document nutcracker's stats port serves.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rampart_config::Config;

use super::catalog::{LimitStat, PoolStat, ServerStat};
use super::latency::Latency;
use super::vrrp_status::{InstanceStatus, VrrpBoard, render_json_keys};

/// rampart's per-server counters for pools with `sentinels:`, shown after nutcracker's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentinelStat {
    /// Times the shard's master moved.
    Failovers,
    /// `+sdown` events for the shard's master.
    Sdown,
    /// `-sdown` events.
    SdownCleared,
    /// `+odown` events.
    Odown,
}

impl SentinelStat {
    pub const COUNT: usize = 4;
    pub const ALL: [SentinelStat; SentinelStat::COUNT] = [
        SentinelStat::Failovers,
        SentinelStat::Sdown,
        SentinelStat::SdownCleared,
        SentinelStat::Odown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SentinelStat::Failovers => "failovers",
            SentinelStat::Sdown => "sdown",
            SentinelStat::SdownCleared => "sdown_cleared",
            SentinelStat::Odown => "odown",
        }
    }
}

/// rampart's per-pool counters of online migration, shown after nutcracker's for pools with
/// `migrate: true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationStat {
    /// 1 while a migration runs (a gauge).
    Running,
    /// Keys the migrator read from the old servers.
    Scanned,
    /// Keys it moved to their new server.
    Moved,
    /// Keys still to read, as estimated from the old servers' sizes (a gauge).
    Remaining,
    /// 1 while this node's migrator waits: for the virtual IP (a VRRP backup), or for a shard
    /// to fail over (a gauge).
    Waiting,
}

impl MigrationStat {
    pub const COUNT: usize = 5;

    pub fn name(self) -> &'static str {
        match self {
            MigrationStat::Running => "migration_running",
            MigrationStat::Scanned => "migration_scanned",
            MigrationStat::Moved => "migration_moved",
            MigrationStat::Remaining => "migration_remaining",
            MigrationStat::Waiting => "migration_waiting",
        }
    }
}

/// One pool's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolCounters {
    pub pool: [u64; PoolStat::COUNT],
    pub servers: Vec<[u64; ServerStat::COUNT]>,
    /// Sentinel counters per server (all zero for pools without sentinels).
    pub sentinel: Vec<[u64; SentinelStat::COUNT]>,
    /// Clients connected but parked (idle, with no session). rampart's own gauge: INFO shows
    /// it; the stats JSON keeps nutcracker's layout and leaves it out.
    pub parked_clients: u64,
    /// How long the pool's forwarded requests took (rampart's own; not in the stats JSON).
    pub latency: Latency,
    /// Client limits enforced (rampart's own; not in the stats JSON).
    pub limits: [u64; LimitStat::COUNT],
    /// Online migration, by [`MigrationStat`].
    pub migration: [u64; MigrationStat::COUNT],
}

/// Every counter one worker (or the control plane) keeps, indexed like the config's pools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsTable {
    pub pools: Vec<PoolCounters>,
    /// Connections ever created (clients, servers, listeners).
    pub total_connections: u64,
    /// Connections open now.
    pub current_connections: u64,
}

impl StatsTable {
    pub fn new(config: &Config) -> StatsTable {
        StatsTable {
            pools: config
                .pools
                .iter()
                .map(|pool| PoolCounters {
                    pool: [0; PoolStat::COUNT],
                    servers: vec![[0; ServerStat::COUNT]; pool.servers.len()],
                    sentinel: vec![[0; SentinelStat::COUNT]; pool.servers.len()],
                    parked_clients: 0,
                    latency: Latency::default(),
                    limits: [0; LimitStat::COUNT],
                    migration: [0; MigrationStat::COUNT],
                })
                .collect(),
            total_connections: 0,
            current_connections: 0,
        }
    }

    /// Counter `stat` of pool `pool`; 0 for a pool the table does not have.
    pub fn pool(&self, pool: usize, stat: PoolStat) -> u64 {
        self.pools
            .get(pool)
            .and_then(|counters| counters.pool.get(stat as usize))
            .copied()
            .unwrap_or(0)
    }

    /// Pool `pool`'s parked clients; 0 for a pool the table does not have.
    pub fn parked_clients(&self, pool: usize) -> u64 {
        self.pools
            .get(pool)
            .map_or(0, |counters| counters.parked_clients)
    }
}

/// The counters themselves, for the worker and the control plane to count into.
#[expect(
    clippy::indexing_slicing,
    reason = "the table is built from the one Config of the process, whose pool and server \
              indices every caller holds, and a stat's discriminant is below its COUNT"
)]
impl StatsTable {
    pub fn parked_clients_mut(&mut self, pool: usize) -> &mut u64 {
        &mut self.pools[pool].parked_clients
    }

    pub fn migration_mut(&mut self, pool: usize, stat: MigrationStat) -> &mut u64 {
        &mut self.pools[pool].migration[stat as usize]
    }

    pub fn limit_mut(&mut self, pool: usize, stat: LimitStat) -> &mut u64 {
        &mut self.pools[pool].limits[stat as usize]
    }

    pub fn latency_mut(&mut self, pool: usize) -> &mut Latency {
        &mut self.pools[pool].latency
    }

    pub fn pool_mut(&mut self, pool: usize, stat: PoolStat) -> &mut u64 {
        &mut self.pools[pool].pool[stat as usize]
    }

    pub fn server_mut(&mut self, pool: usize, server: usize, stat: ServerStat) -> &mut u64 {
        &mut self.pools[pool].servers[server][stat as usize]
    }

    pub fn sentinel_mut(&mut self, pool: usize, server: usize, stat: SentinelStat) -> &mut u64 {
        &mut self.pools[pool].sentinel[server][stat as usize]
    }
}

impl StatsTable {
    /// Adds `other` into `self`: counters and gauges sum; `server_ejected_at` keeps the latest.
    pub fn accumulate(&mut self, other: &StatsTable) {
        for (mine, theirs) in self.pools.iter_mut().zip(&other.pools) {
            for (a, b) in mine.pool.iter_mut().zip(&theirs.pool) {
                *a += b;
            }
            mine.parked_clients += theirs.parked_clients;
            for (a, b) in mine.limits.iter_mut().zip(&theirs.limits) {
                *a += b;
            }
            for (a, b) in mine.migration.iter_mut().zip(&theirs.migration) {
                *a += b;
            }
            mine.latency.accumulate(&theirs.latency);
            for (server, other_server) in mine.sentinel.iter_mut().zip(&theirs.sentinel) {
                for (a, b) in server.iter_mut().zip(other_server) {
                    *a += b;
                }
            }
            for (server, other_server) in mine.servers.iter_mut().zip(&theirs.servers) {
                let values = server.iter_mut().zip(other_server);
                for (stat, (a, &b)) in ServerStat::ALL.into_iter().zip(values) {
                    *a = if stat == ServerStat::ServerEjectedAt {
                        (*a).max(b)
                    } else {
                        *a + b
                    };
                }
            }
        }
        self.total_connections += other.total_connections;
        self.current_connections += other.current_connections;
    }
}

impl StatsTable {
    /// This table, indexed like `from`, re-indexed for `to`: pools and servers are matched by
    /// name, those `to` lacks are left out, and those it adds start at zero.
    pub fn remapped(&self, from: &Config, to: &Config) -> StatsTable {
        let mut table = StatsTable::new(to);
        table.total_connections = self.total_connections;
        table.current_connections = self.current_connections;
        for (pool, counters) in to.pools.iter().zip(&mut table.pools) {
            let Some((old_pool, old)) = from
                .pools
                .iter()
                .zip(&self.pools)
                .find(|(old_pool, _)| old_pool.name == pool.name)
            else {
                continue;
            };
            counters.pool = old.pool;
            counters.parked_clients = old.parked_clients;
            counters.latency.clone_from(&old.latency);
            counters.limits = old.limits;
            counters.migration = old.migration;
            let servers = counters.servers.iter_mut().zip(&mut counters.sentinel);
            for (server, (values, sentinel)) in pool.servers.iter().zip(servers) {
                let old_servers = old_pool
                    .servers
                    .iter()
                    .zip(old.servers.iter().zip(&old.sentinel));
                if let Some((_, (old_values, old_sentinel))) = old_servers
                    .into_iter()
                    .find(|(named, _)| named.name == server.name)
                {
                    *values = *old_values;
                    *sentinel = *old_sentinel;
                }
            }
        }
        table
    }
}

/// One publisher's latest table and the configuration it is indexed by.
struct Published {
    config: Arc<Config>,
    table: StatsTable,
}

/// Where workers publish their tables; the stats server sums them on demand. A reload
/// changes the configuration: a table published under an older one is re-indexed by name
/// when summed, so the counters of pools and servers that stay go on.
pub struct StatsBoard {
    slots: Vec<Mutex<Published>>,
    started: Instant,
    /// The virtual routers' status (none without `--vrrp`).
    vrrp: Arc<VrrpBoard>,
    /// Pool listeners accepting clients now, over every worker (for `/health`).
    accepting: AtomicUsize,
}

/// Counts one listener as accepting for as long as it lives.
pub struct Accepting<'b>(&'b AtomicUsize);

impl Drop for Accepting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl StatsBoard {
    /// One slot per publisher (workers and the control plane).
    pub fn new(config: &Arc<Config>, publishers: usize, vrrp: Arc<VrrpBoard>) -> StatsBoard {
        StatsBoard {
            slots: (0..publishers)
                .map(|_| {
                    Mutex::new(Published {
                        config: Arc::clone(config),
                        table: StatsTable::new(config),
                    })
                })
                .collect(),
            started: Instant::now(),
            vrrp,
            accepting: AtomicUsize::new(0),
        }
    }

    /// A worker's pool listener starts accepting; it counts until the guard is dropped.
    pub fn accepting(&self) -> Accepting<'_> {
        self.accepting.fetch_add(1, Ordering::Relaxed);
        Accepting(&self.accepting)
    }

    /// Pool listeners accepting clients now, over every worker.
    pub fn listeners_accepting(&self) -> usize {
        self.accepting.load(Ordering::Relaxed)
    }

    /// Time since the proxy started.
    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Every virtual router's latest status.
    pub fn vrrp(&self) -> Vec<InstanceStatus> {
        self.vrrp.snapshot()
    }

    /// Replaces publisher `slot`'s table with a copy of `table`, indexed like `config`.
    pub fn publish(&self, slot: usize, config: &Arc<Config>, table: &StatsTable) {
        // Every publisher was given a slot of its own; any other index has nowhere to go.
        let Some(published) = self.slots.get(slot) else {
            return;
        };
        let mut published = published
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if !Arc::ptr_eq(&published.config, config) {
            published.config = Arc::clone(config);
        }
        published.table.clone_from(table);
    }

    /// The sum of every publisher's latest table, indexed like `config`.
    pub fn sum(&self, config: &Config) -> StatsTable {
        let mut total = StatsTable::new(config);
        for slot in &self.slots {
            let published = slot.lock().unwrap_or_else(|poison| poison.into_inner());
            if std::ptr::eq(Arc::as_ptr(&published.config), config) {
                total.accumulate(&published.table);
            } else {
                total.accumulate(&published.table.remapped(&published.config, config));
            }
        }
        total
    }

    /// The stats document, byte for byte in nutcracker's layout.
    pub fn render(&self, config: &Config, hostname: &str) -> String {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        render_json(
            config,
            &self.sum(config),
            &self.vrrp.snapshot(),
            hostname,
            self.started.elapsed().as_secs(),
            timestamp,
        )
    }
}

/// nutcracker's stats JSON: `", "` between entries, `": {"` to open, `},` between siblings,
/// names not escaped, a final newline.
pub fn render_json(
    config: &Config,
    table: &StatsTable,
    vrrp: &[InstanceStatus],
    hostname: &str,
    uptime: u64,
    timestamp: u64,
) -> String {
    let mut out = String::with_capacity(512);
    let _ = write!(
        out,
        "{{\"service\":\"nutcracker\", \"source\":\"{hostname}\", \"version\":\"0.5.0\", \
         \"uptime\":{uptime}, \"timestamp\":{timestamp}, \"total_connections\":{}, \
         \"curr_connections\":{}",
        table.total_connections, table.current_connections
    );
    render_json_keys(vrrp, &mut out);
    for (p, (pool, counters)) in config.pools.iter().zip(&table.pools).enumerate() {
        let _ = write!(out, "{}\"{}\": {{", separator(p), pool.name);
        for (i, (stat, value)) in PoolStat::ALL.into_iter().zip(&counters.pool).enumerate() {
            let comma = if i > 0 { ", " } else { "" };
            let _ = write!(out, "{comma}\"{}\":{value}", stat.name());
        }
        if pool.migrate {
            for stat in [
                MigrationStat::Running,
                MigrationStat::Scanned,
                MigrationStat::Moved,
            ] {
                let value = counters.migration.get(stat as usize).copied().unwrap_or(0);
                let _ = write!(out, ", \"{}\":{value}", stat.name());
            }
        }
        let servers = counters.servers.iter().zip(&counters.sentinel);
        for (s, (server, (values, sentinel))) in pool.servers.iter().zip(servers).enumerate() {
            let _ = write!(out, "{}\"{}\": {{", separator(s), server.name);
            for (i, (stat, value)) in ServerStat::ALL.into_iter().zip(values).enumerate() {
                let comma = if i > 0 { ", " } else { "" };
                let _ = write!(out, "{comma}\"{}\":{value}", stat.name());
            }
            if !pool.sentinels.is_empty() {
                for (stat, value) in SentinelStat::ALL.into_iter().zip(sentinel) {
                    let _ = write!(out, ", \"{}\":{value}", stat.name());
                }
            }
            out.push('}');
        }
        out.push('}');
    }
    out.push_str("}\n");
    out
}

/// nutcracker opens the first pool (and a pool's first server) with `", "` and later ones
/// with a bare `","`.
fn separator(index: usize) -> &'static str {
    if index == 0 { ", " } else { "," }
}
