//! The control plane's live shard map. For each pool it owns which servers are in the ring and
//! where each shard's master is, and publishes an immutable snapshot per pool that workers
//! read without locks (a generation number tells them when to look again).
//!
//! Two sources change it: ejection (`auto_eject_hosts`: workers report failing servers; a
//! server comes back only after a PING succeeds) and, for pools with `sentinels:`, Redis
//! Sentinel (a shard's master moves to the promoted replica; the ring never changes).

mod eject;
pub mod link;
mod sentinel;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use rampart_config::{Config, Pool, Server, ServerAddress};
use rampart_placement::Placement;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::admin::catalog::{PoolStat, ServerStat};
use crate::admin::stats::{StatsBoard, StatsTable};

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
    pools: Vec<PoolTopology>,
}

/// What workers tell the control plane.
#[derive(Debug, Clone, Copy)]
pub enum TopologyEvent {
    /// A worker saw `server_failure_limit` failures in a row.
    Ejected { pool: usize, server: usize },
    /// A shard's master answered `-READONLY`: ask the sentinels again now.
    Recheck { pool: usize, server: usize },
}

impl Topology {
    pub fn new(config: &Config) -> Topology {
        Topology {
            pools: config
                .pools
                .iter()
                .map(|pool| PoolTopology {
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
                    }),
                })
                .collect(),
        }
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
    board: Arc<StatsBoard>,
    slot: usize,
}

impl ControlStats {
    fn record_ejection(&self, pool: usize, server: usize) {
        let mut table = self.table.borrow_mut();
        *table.pool_mut(pool, PoolStat::ServerEjects) += 1;
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_micros() as u64);
        *table.server_mut(pool, server, ServerStat::ServerEjectedAt) = now_us;
        self.board.publish(self.slot, &table);
    }

    fn record_sentinel(
        &self,
        pool: usize,
        server: usize,
        event: crate::admin::stats::SentinelStat,
    ) {
        let mut table = self.table.borrow_mut();
        *table.sentinel_mut(pool, server, event) += 1;
        self.board.publish(self.slot, &table);
    }
}

/// What the control plane's tasks share (all on one thread).
struct Control {
    topology: Arc<Topology>,
    config: Arc<Config>,
    stats: ControlStats,
}

impl Control {
    /// Pool `pool` and its server `server`, as workers and watchers name them by index.
    fn server(&self, pool: usize, server: usize) -> Option<(&Pool, &Server)> {
        let entry = self.config.pools.get(pool)?;
        Some((entry, entry.servers.get(server)?))
    }
}

/// Runs the control plane until every worker is gone. Must run inside a `LocalSet`.
pub async fn run(
    topology: Arc<Topology>,
    config: Arc<Config>,
    board: Arc<StatsBoard>,
    slot: usize,
    mut events: UnboundedReceiver<TopologyEvent>,
) {
    let control = Rc::new(Control {
        stats: ControlStats {
            table: RefCell::new(StatsTable::new(&config)),
            board,
            slot,
        },
        topology,
        config,
    });
    let watchers: Vec<Option<Rc<sentinel::Watcher>>> = (0..control.config.pools.len())
        .map(|pool| sentinel::Watcher::start(&control, pool))
        .collect();
    while let Some(event) = events.recv().await {
        match event {
            TopologyEvent::Ejected { pool, server } => eject::eject(&control, pool, server),
            TopologyEvent::Recheck { pool, server } => {
                if let Some(Some(watcher)) = watchers.get(pool) {
                    watcher.recheck(server);
                }
            }
        }
    }
}
