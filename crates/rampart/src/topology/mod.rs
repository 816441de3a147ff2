//! The control plane's live shard map. For each pool it owns which servers are in the ring and
//! where each shard's master is, and publishes an immutable snapshot per pool that workers
//! read without locks (a generation number tells them when to look again).
//!
//! Two sources change it: ejection (`auto_eject_hosts`: workers report failing servers; a
//! server comes back only after a PING succeeds) and, for pools with `sentinels:`, Redis
//! Sentinel (a shard's master moves to the promoted replica; the ring never changes).
//!
//! A reload (`reload`, which also runs the control plane's loop) replaces the whole
//! configuration: the control plane checks the new file, binds its new listeners, carries over
//! what it learned of the pools and servers that stay, publishes the new configuration for the
//! workers and restarts its own tasks ([`Running`]) for it.

mod eject;
pub mod link;
pub mod migrate;
pub mod migration;
pub mod reload;
mod sentinel;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use std::future::Future;

use arc_swap::ArcSwap;
use rampart_config::{Config, Pool, Server, ServerAddress};
use rampart_placement::Placement;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;

use crate::admin::catalog::{PoolStat, ServerStat};
use crate::admin::stats::{MigrationStat, StatsBoard, StatsTable};

/// A pool as workers should use it.
#[derive(Clone)]
pub struct PoolView {
    /// Servers in the ring.
    pub live: Vec<bool>,
    pub placement: Placement,
    /// Where each shard's master is now (the configured address until Sentinel says otherwise).
    pub addresses: Vec<ServerAddress>,
    /// Each shard's healthy replicas, as Sentinel lists them (pools with `replica_reads`).
    pub replicas: Vec<Vec<ServerAddress>>,
    /// While the pool's keys move after a reload changed its ring: where each key was before.
    pub migration: Option<Arc<MigrationRing>>,
}

/// The ring a migrating pool had before the reload that changed it.
pub struct MigrationRing {
    /// The pool as it was (its servers in the ring then, and how it placed keys).
    pub old_pool: Pool,
    /// The old placement.
    pub old: Placement,
    /// For each server of the old placement, its index among the pool's servers now (a
    /// server that left the ring is draining: it stays, last, until its keys have moved).
    pub old_servers: Vec<usize>,
}

impl MigrationRing {
    /// The ring of `old_pool`, with its servers found by name among `pool`'s; `None` when one
    /// of them is missing.
    pub fn between(old_pool: &Pool, pool: &Pool) -> Option<MigrationRing> {
        let old_servers = old_pool
            .servers
            .iter()
            .filter(|server| !server.draining)
            .map(|server| pool.servers.iter().position(|now| now.name == server.name))
            .collect::<Option<Vec<usize>>>()?;
        let mut old_pool = old_pool.clone();
        old_pool.servers.retain(|server| !server.draining);
        Some(MigrationRing {
            old: old_pool.placement(),
            old_pool,
            old_servers,
        })
    }
}

struct PoolTopology {
    generation: AtomicU64,
    view: ArcSwap<PoolView>,
    /// Per shard: a sentinel reported its master down (`+sdown`/`+odown`) and no new master
    /// or `-sdown` has followed yet. Not part of the view: workers route the same either way.
    master_down: Vec<AtomicBool>,
}

/// Every pool's current view.
pub struct Topology {
    pools: Vec<Arc<PoolTopology>>,
}

/// What workers tell the control plane.
#[derive(Debug, Clone, Copy)]
pub enum TopologyEvent {
    /// A worker saw `server_failure_limit` failures in a row.
    Ejected { pool: usize, server: usize },
    /// A shard's master answered `-READONLY`: ask the sentinels again now.
    Recheck { pool: usize, server: usize },
}

impl PoolTopology {
    /// A pool as configured: every server in the ring, at its configured address.
    fn configured(pool: &Pool) -> PoolTopology {
        PoolTopology {
            generation: AtomicU64::new(0),
            master_down: pool
                .servers
                .iter()
                .map(|_| AtomicBool::new(false))
                .collect(),
            view: ArcSwap::from_pointee(PoolView {
                live: vec![true; pool.servers.len()],
                placement: pool.placement(),
                addresses: pool
                    .servers
                    .iter()
                    .map(|server| server.address.clone())
                    .collect(),
                replicas: vec![Vec::new(); pool.servers.len()],
                migration: None,
            }),
        }
    }

    /// A pool whose servers a reload changed, keeping what was learned of the servers that
    /// stay (matched by name): whether they are ejected and, in a pool with sentinels, where
    /// their master is and which replicas it has.
    fn carried_over(pool: &Pool, old_pool: &Pool, old: &PoolTopology) -> PoolTopology {
        let topology = PoolTopology::configured(pool);
        let old_view = old.view.load();
        let follows_sentinels = !pool.sentinels.is_empty() && !old_pool.sentinels.is_empty();
        let mut view = PoolView::clone(&topology.view.load());
        for (server, named) in pool.servers.iter().enumerate() {
            let Some(before) = old_pool
                .servers
                .iter()
                .position(|old_server| old_server.name == named.name)
            else {
                continue;
            };
            if let (Some(live), Some(&was_live)) =
                (view.live.get_mut(server), old_view.live.get(before))
            {
                *live = was_live || !pool.auto_eject_hosts;
            }
            if follows_sentinels {
                if let (Some(address), Some(learned)) = (
                    view.addresses.get_mut(server),
                    old_view.addresses.get(before),
                ) {
                    learned.clone_into(address);
                }
                if let (Some(replicas), Some(learned)) =
                    (view.replicas.get_mut(server), old_view.replicas.get(before))
                {
                    learned.clone_into(replicas);
                }
                if let (Some(down), Some(was_down)) = (
                    topology.master_down.get(server),
                    old.master_down.get(before),
                ) {
                    down.store(was_down.load(Ordering::Acquire), Ordering::Release);
                }
            }
        }
        if view.live.contains(&false) {
            view.placement.rebuild(&view.live);
        }
        topology.view.store(Arc::new(view));
        topology
    }
}

impl Topology {
    pub fn new(config: &Config) -> Topology {
        Topology {
            pools: config
                .pools
                .iter()
                .map(|pool| Arc::new(PoolTopology::configured(pool)))
                .collect(),
        }
    }

    /// The topology for the configuration a reload brought (`to`), from this one (of
    /// `from`): a pool whose servers and ring did not change keeps its live view, shared with
    /// the workers that still serve clients of the old configuration; a pool whose servers
    /// changed keeps what was learned of the servers that stay.
    pub fn reloaded(&self, from: &Config, to: &Config) -> Topology {
        let pools = to
            .pools
            .iter()
            .map(|pool| {
                let before = from
                    .pools
                    .iter()
                    .zip(&self.pools)
                    .find(|(old_pool, _)| old_pool.name == pool.name);
                match before {
                    Some((old_pool, old)) if old_pool.same_shards(pool) => Arc::clone(old),
                    Some((old_pool, old)) => {
                        Arc::new(PoolTopology::carried_over(pool, old_pool, old))
                    }
                    None => Arc::new(PoolTopology::configured(pool)),
                }
            })
            .collect();
        Topology { pools }
    }

    /// Sets the migration of `pool`: from the ring `ring` describes, or none.
    pub fn set_migration(&self, pool: usize, ring: Option<Arc<MigrationRing>>) {
        self.update(pool, |view| {
            let same = match (&view.migration, &ring) {
                (Some(now), Some(next)) => Arc::ptr_eq(now, next),
                (now, next) => now.is_none() && next.is_none(),
            };
            view.migration = ring;
            !same
        });
    }

    /// The pools migrating now.
    fn migrating(&self) -> Vec<usize> {
        (0..self.pools.len())
            .filter(|&pool| self.view(pool).migration.is_some())
            .collect()
    }

    /// The servers out of the ring now, as (pool, server).
    fn ejected(&self) -> Vec<(usize, usize)> {
        let mut ejected = Vec::new();
        for (pool, topology) in self.pools.iter().enumerate() {
            let view = topology.view.load();
            for (server, &live) in view.live.iter().enumerate() {
                if !live {
                    ejected.push((pool, server));
                }
            }
        }
        ejected
    }

    /// Changes whenever the pool's view changes.
    #[expect(
        clippy::indexing_slicing,
        reason = "the topology has one entry per pool of the process's one Config, whose \
                  indices are the only ones callers hold"
    )]
    pub fn generation(&self, pool: usize) -> u64 {
        self.pools[pool].generation.load(Ordering::Acquire)
    }

    #[expect(
        clippy::indexing_slicing,
        reason = "the topology has one entry per pool of the process's one Config, whose \
                  indices are the only ones callers hold"
    )]
    pub fn view(&self, pool: usize) -> Arc<PoolView> {
        self.pools[pool].view.load_full()
    }

    /// Whether Sentinel reports the shard's master down and has not yet promoted a new one:
    /// the shard is failing over.
    pub fn master_down(&self, pool: usize, server: usize) -> bool {
        self.pools
            .get(pool)
            .and_then(|pool| pool.master_down.get(server))
            .is_some_and(|down| down.load(Ordering::Acquire))
    }

    fn set_master_down(&self, pool: usize, server: usize, down: bool) {
        if let Some(flag) = self
            .pools
            .get(pool)
            .and_then(|pool| pool.master_down.get(server))
        {
            flag.store(down, Ordering::Release);
        }
    }

    /// Publishes a changed copy of the pool's view. `change` edits the copy and says whether
    /// it changed anything; nothing is published when it did not. Returns that answer.
    fn update(&self, pool: usize, change: impl FnOnce(&mut PoolView) -> bool) -> bool {
        let Some(topology) = self.pools.get(pool) else {
            return false;
        };
        let mut view = PoolView::clone(&topology.view.load());
        if !change(&mut view) {
            return false;
        }
        topology.view.store(Arc::new(view));
        topology.generation.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// Sets one server's liveness and rebuilds the ring; returns whether anything changed.
    fn set_live(&self, config: &Config, pool: usize, server: usize, live: bool) -> bool {
        let Some(entry) = config.pools.get(pool) else {
            return false;
        };
        self.update(pool, |view| {
            match view.live.get_mut(server) {
                Some(known) if *known != live => *known = live,
                _ => return false,
            }
            view.placement = entry.placement();
            view.placement.rebuild(&view.live);
            true
        })
    }

    /// Points a shard at a new master; returns whether anything changed.
    fn set_address(&self, pool: usize, server: usize, address: ServerAddress) -> bool {
        self.update(pool, |view| match view.addresses.get_mut(server) {
            Some(known) if *known != address => {
                *known = address;
                true
            }
            _ => false,
        })
    }

    /// Records a shard's healthy replicas; returns whether anything changed.
    fn set_replicas(&self, pool: usize, server: usize, replicas: Vec<ServerAddress>) -> bool {
        self.update(pool, |view| match view.replicas.get_mut(server) {
            Some(known) if *known != replicas => {
                *known = replicas;
                true
            }
            _ => false,
        })
    }
}

/// The control plane's own counters (ejections, failovers), published in its stats slot.
struct ControlStats {
    table: RefCell<StatsTable>,
    config: Arc<Config>,
    board: Arc<StatsBoard>,
    slot: usize,
}

impl ControlStats {
    /// A migration of `pool` runs.
    fn record_migration_start(&self, pool: usize) {
        let mut table = self.table.borrow_mut();
        *table.migration_mut(pool, MigrationStat::Running) = 1;
        self.board.publish(self.slot, &self.config, &table);
    }

    /// The migrator of `pool` waits for the virtual IP or a failover (`true`), or goes on.
    fn record_migration_waiting(&self, pool: usize, waiting: bool) {
        let mut table = self.table.borrow_mut();
        *table.migration_mut(pool, MigrationStat::Waiting) = u64::from(waiting);
        self.board.publish(self.slot, &self.config, &table);
    }

    /// The migration of `pool` has about `keys` keys to read.
    fn record_migration_estimate(&self, pool: usize, keys: u64) {
        let mut table = self.table.borrow_mut();
        *table.migration_mut(pool, MigrationStat::Remaining) = keys;
        self.board.publish(self.slot, &self.config, &table);
    }

    /// The migrator of `pool` read `scanned` more keys and moved `moved` of them.
    fn record_migration_progress(&self, pool: usize, scanned: u64, moved: u64) {
        let mut table = self.table.borrow_mut();
        *table.migration_mut(pool, MigrationStat::Scanned) += scanned;
        *table.migration_mut(pool, MigrationStat::Moved) += moved;
        let remaining = table.migration_mut(pool, MigrationStat::Remaining);
        *remaining = remaining.saturating_sub(scanned);
        self.board.publish(self.slot, &self.config, &table);
    }

    /// The migration of `pool` is over.
    fn record_migration_end(&self, pool: usize) {
        let mut table = self.table.borrow_mut();
        *table.migration_mut(pool, MigrationStat::Running) = 0;
        *table.migration_mut(pool, MigrationStat::Waiting) = 0;
        *table.migration_mut(pool, MigrationStat::Remaining) = 0;
        self.board.publish(self.slot, &self.config, &table);
    }

    fn record_ejection(&self, pool: usize, server: usize) {
        let mut table = self.table.borrow_mut();
        *table.pool_mut(pool, PoolStat::ServerEjects) += 1;
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_micros() as u64);
        *table.server_mut(pool, server, ServerStat::ServerEjectedAt) = now_us;
        self.board.publish(self.slot, &self.config, &table);
    }

    fn record_sentinel(
        &self,
        pool: usize,
        server: usize,
        event: crate::admin::stats::SentinelStat,
    ) {
        let mut table = self.table.borrow_mut();
        *table.sentinel_mut(pool, server, event) += 1;
        self.board.publish(self.slot, &self.config, &table);
    }
}

/// What the control plane's tasks share (all on one thread), for one configuration.
struct Control {
    topology: Arc<Topology>,
    config: Arc<Config>,
    stats: ControlStats,
    /// Every task started for this configuration, ended when a reload replaces it.
    tasks: RefCell<Vec<AbortHandle>>,
}

impl Control {
    /// Pool `pool` and its server `server`, as workers and watchers name them by index.
    fn server(&self, pool: usize, server: usize) -> Option<(&Pool, &Server)> {
        let entry = self.config.pools.get(pool)?;
        Some((entry, entry.servers.get(server)?))
    }

    /// Runs `task` on the control thread until it ends or the configuration is replaced.
    fn spawn(&self, task: impl Future<Output = ()> + 'static) {
        let mut tasks = self.tasks.borrow_mut();
        tasks.retain(|task| !task.is_finished());
        tasks.push(tokio::task::spawn_local(task).abort_handle());
    }
}

/// The control plane running for one configuration: its state and each pool's Sentinel
/// watcher.
pub struct Running {
    control: Rc<Control>,
    watchers: Vec<Option<Rc<sentinel::Watcher>>>,
}

impl Running {
    /// Starts following `topology` for `config`, its counters (published in `board`'s `slot`)
    /// starting from `table`. Servers that are out of the ring (kept so by a reload) are tried
    /// again for readmission.
    pub fn start(
        config: &Arc<Config>,
        topology: &Arc<Topology>,
        board: &Arc<StatsBoard>,
        table: StatsTable,
        slot: usize,
        finished: &UnboundedSender<String>,
    ) -> Running {
        let control = Rc::new(Control {
            stats: ControlStats {
                table: RefCell::new(table),
                config: Arc::clone(config),
                board: Arc::clone(board),
                slot,
            },
            topology: Arc::clone(topology),
            config: Arc::clone(config),
            tasks: RefCell::new(Vec::new()),
        });
        for (pool, server) in control.topology.ejected() {
            eject::readmit_later(&control, pool, server);
        }
        for pool in control.topology.migrating() {
            control.stats.record_migration_start(pool);
            control.spawn(migrate::run(Rc::clone(&control), pool, finished.clone()));
        }
        let watchers = (0..control.config.pools.len())
            .map(|pool| sentinel::Watcher::start(&control, pool))
            .collect();
        Running { control, watchers }
    }

    pub fn handle(&self, event: TopologyEvent) {
        match event {
            TopologyEvent::Ejected { pool, server } => eject::eject(&self.control, pool, server),
            TopologyEvent::Recheck { pool, server } => {
                if let Some(Some(watcher)) = self.watchers.get(pool) {
                    watcher.recheck(server);
                }
            }
        }
    }

    /// Ends every task of this configuration; returns its counters.
    pub fn stop(self) -> StatsTable {
        for task in self.control.tasks.borrow_mut().drain(..) {
            task.abort();
        }
        self.control.stats.table.borrow().clone()
    }
}
