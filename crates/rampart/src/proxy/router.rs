//! One worker's view of one pool: the key placement (from the latest topology snapshot, plus
//! ejections this worker has just seen), the connections to each server for RESP2 and RESP3
//! clients, failure counting for `auto_eject_hosts`, and the worker's stats for the pool.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::Arc;

use rampart_config::{Pool, ServerAddress};
use rampart_placement::Placement;
use rampart_protocol::Protocol;

use super::Shared;
use super::backend::{Backend, Role};
use crate::admin::catalog::{PoolStat, ServerStat};
use crate::admin::stats::StatsTable;
use crate::topology::TopologyEvent;

/// The connections to one server, per protocol, used round-robin.
struct ServerLinks {
    resp2: RefCell<Vec<Rc<Backend>>>,
    resp3: RefCell<Vec<Rc<Backend>>>,
    /// One connection to a replica per protocol, for `replica_reads`.
    replica: [RefCell<Option<Rc<Backend>>>; 2],
    next: Cell<usize>,
    failures: Cell<u32>,
}

impl ServerLinks {
    /// Calls `visit` with every connection to the shard's master, RESP2 and RESP3.
    fn each_master(&self, mut visit: impl FnMut(&Rc<Backend>)) {
        self.resp2.borrow().iter().for_each(&mut visit);
        self.resp3.borrow().iter().for_each(visit);
    }
}

pub struct PoolRouter {
    pub index: usize,
    pub shared: Arc<Shared>,
    pub stats: Rc<RefCell<StatsTable>>,
    placement: RefCell<Placement>,
    live: RefCell<Vec<bool>>,
    addresses: RefCell<Vec<ServerAddress>>,
    replicas: RefCell<Vec<Vec<ServerAddress>>>,
    seen_generation: Cell<u64>,
    links: Vec<ServerLinks>,
    myself: Weak<PoolRouter>,
}

impl PoolRouter {
    pub fn new(
        index: usize,
        shared: Arc<Shared>,
        stats: Rc<RefCell<StatsTable>>,
    ) -> Rc<PoolRouter> {
        let view = shared.topology.view(index);
        let generation = shared.topology.generation(index);
        let servers = shared.config.pools[index].servers.len();
        Rc::new_cyclic(|myself| PoolRouter {
            index,
            placement: RefCell::new(view.placement.clone()),
            live: RefCell::new(view.live.clone()),
            addresses: RefCell::new(view.addresses.clone()),
            replicas: RefCell::new(view.replicas.clone()),
            seen_generation: Cell::new(generation),
            links: (0..servers)
                .map(|_| ServerLinks {
                    resp2: RefCell::new(Vec::new()),
                    resp3: RefCell::new(Vec::new()),
                    replica: Default::default(),
                    next: Cell::new(0),
                    failures: Cell::new(0),
                })
                .collect(),
            shared,
            stats,
            myself: Weak::clone(myself),
        })
    }

    pub fn pool(&self) -> &Pool {
        &self.shared.config.pools[self.index]
    }

    /// Takes the latest topology snapshot if the control plane published a new one.
    pub fn refresh(&self) {
        let generation = self.shared.topology.generation(self.index);
        if generation != self.seen_generation.get() {
            let view = self.shared.topology.view(self.index);
            *self.placement.borrow_mut() = view.placement.clone();
            *self.live.borrow_mut() = view.live.clone();
            let mut addresses = self.addresses.borrow_mut();
            for (server, (mine, latest)) in addresses.iter_mut().zip(&view.addresses).enumerate() {
                if mine != latest {
                    latest.clone_into(mine);
                    self.links[server].each_master(|backend| backend.retarget());
                }
            }
            let mut replicas = self.replicas.borrow_mut();
            for (server, (mine, latest)) in replicas.iter_mut().zip(&view.replicas).enumerate() {
                if mine.first() != latest.first() {
                    for link in &self.links[server].replica {
                        if let Some(backend) = link.borrow().as_ref() {
                            backend.retarget();
                        }
                    }
                }
                latest.clone_into(mine);
            }
            self.seen_generation.set(generation);
        }
    }

    /// The server a key lives on, or `None` when every server is ejected.
    pub fn server_for_key(&self, key: &[u8]) -> Option<usize> {
        self.placement.borrow_mut().server_for_key(key)
    }

    /// Where the shard's master is now (per the latest topology snapshot).
    pub fn address(&self, server: usize) -> ServerAddress {
        self.refresh();
        self.addresses.borrow()[server].clone()
    }

    /// Asks the control plane to check the shard's master with the sentinels now.
    pub fn recheck(&self, server: usize) {
        let _ = self.shared.events.send(TopologyEvent::Recheck {
            pool: self.index,
            server,
        });
    }

    /// Servers currently in the ring.
    pub fn live_servers(&self) -> usize {
        self.live.borrow().iter().filter(|&&live| live).count()
    }

    /// A connection to `server` for clients speaking `protocol`: a new one while fewer than
    /// `server_connections` exist, then round-robin.
    pub fn backend(&self, server: usize, protocol: Protocol) -> Rc<Backend> {
        let links = &self.links[server];
        let mut connections = match protocol {
            Protocol::Resp2 => links.resp2.borrow_mut(),
            Protocol::Resp3 => links.resp3.borrow_mut(),
        };
        let limit = self.pool().server_connections as usize;
        if connections.len() < limit {
            let router = self
                .myself
                .upgrade()
                .expect("a router outlives its backends' callers");
            let backend = Backend::spawn(&router, server, protocol, Role::Master);
            connections.push(Rc::clone(&backend));
            return backend;
        }
        let next = links.next.get();
        links.next.set(next.wrapping_add(1));
        Rc::clone(&connections[next % connections.len()])
    }

    /// Where read-only commands go while the shard's master is unreachable: its first healthy
    /// replica (the master's address when Sentinel lists none).
    pub fn replica_address(&self, server: usize) -> ServerAddress {
        self.refresh();
        let replicas = self.replicas.borrow();
        match replicas[server].first() {
            Some(replica) => replica.clone(),
            None => self.addresses.borrow()[server].clone(),
        }
    }

    /// For a read-only command: a connection to one of the shard's replicas when the pool has
    /// `replica_reads`, the shard's master is unreachable, and Sentinel lists a replica.
    pub fn replica_for_read(&self, server: usize, protocol: Protocol) -> Option<Rc<Backend>> {
        if !self.pool().replica_reads || self.replicas.borrow()[server].is_empty() {
            return None;
        }
        let links = &self.links[server];
        let mut master_failing = false;
        links.each_master(|backend| master_failing |= backend.is_failing());
        if !master_failing {
            return None;
        }
        let slot = &links.replica[usize::from(protocol == Protocol::Resp3)];
        let mut replica = slot.borrow_mut();
        if replica.is_none() {
            let router = self.myself.upgrade()?;
            *replica = Some(Backend::spawn(&router, server, protocol, Role::Replica));
        }
        replica.clone()
    }

    /// Whether `server` is in this worker's ring.
    pub fn is_live(&self, server: usize) -> bool {
        self.live.borrow()[server]
    }

    pub fn client_opened(&self) {
        let mut stats = self.stats.borrow_mut();
        *stats.pool_mut(self.index, PoolStat::ClientConnections) += 1;
        stats.total_connections += 1;
        stats.current_connections += 1;
    }

    /// A client left: `how` is `client_eof` or `client_err`.
    pub fn client_closed(&self, how: PoolStat) {
        let mut stats = self.stats.borrow_mut();
        *stats.pool_mut(self.index, how) += 1;
        let gauge = stats.pool_mut(self.index, PoolStat::ClientConnections);
        *gauge = gauge.saturating_sub(1);
        stats.current_connections = stats.current_connections.saturating_sub(1);
    }

    /// Clients connected to this pool across all workers, and how many of them are parked
    /// (as last published).
    pub fn connected_clients(&self) -> (u64, u64) {
        let total = self.shared.stats.sum(&self.shared.config);
        let pool = &total.pools[self.index];
        (
            pool.pool[PoolStat::ClientConnections as usize],
            pool.parked_clients,
        )
    }

    /// A client of this pool was parked (`true`) or left the parking lot (`false`).
    pub fn client_parked(&self, parked: bool) {
        let mut stats = self.stats.borrow_mut();
        let gauge = &mut stats.pools[self.index].parked_clients;
        *gauge = if parked {
            *gauge + 1
        } else {
            gauge.saturating_sub(1)
        };
    }

    pub fn reply_received(&self, server: usize, bytes: usize) {
        self.links[server].failures.set(0);
        let mut stats = self.stats.borrow_mut();
        *stats.server_mut(self.index, server, ServerStat::Responses) += 1;
        *stats.server_mut(self.index, server, ServerStat::ResponseBytes) += bytes as u64;
    }

    pub fn forward_error(&self) {
        *self
            .stats
            .borrow_mut()
            .pool_mut(self.index, PoolStat::ForwardError) += 1;
    }

    pub fn connection_opened(&self, server: usize) {
        let mut stats = self.stats.borrow_mut();
        *stats.server_mut(self.index, server, ServerStat::ServerConnections) += 1;
        stats.total_connections += 1;
        stats.current_connections += 1;
    }

    pub fn connection_closed(&self, server: usize) {
        let mut stats = self.stats.borrow_mut();
        let gauge = stats.server_mut(self.index, server, ServerStat::ServerConnections);
        *gauge = gauge.saturating_sub(1);
        stats.current_connections = stats.current_connections.saturating_sub(1);
    }

    /// Counts a failed connection; with `auto_eject_hosts` (and no sentinels: a Sentinel
    /// pool never moves keys), `server_failure_limit` failures in
    /// a row take the server out of this worker's ring at once and report it to the control
    /// plane, which ejects it everywhere and later readmits it after a successful PING.
    pub fn server_failed(&self, server: usize) {
        let pool = self.pool();
        if !pool.auto_eject_hosts || !pool.sentinels.is_empty() {
            return;
        }
        let links = &self.links[server];
        let failures = links.failures.get() + 1;
        if failures < pool.server_failure_limit.max(1) {
            links.failures.set(failures);
            return;
        }
        links.failures.set(0);
        let mut live = self.live.borrow_mut();
        if !live[server] {
            return;
        }
        live[server] = false;
        self.placement.borrow_mut().rebuild(&live);
        let _ = self.shared.events.send(TopologyEvent::Ejected {
            pool: self.index,
            server,
        });
    }

    /// Writes the queue gauges of this worker's connections into `table`.
    pub fn publish_gauges(&self, table: &mut StatsTable) {
        for (server, links) in self.links.iter().enumerate() {
            let mut depths = (0, 0, 0);
            links.each_master(|backend| {
                let (queued, bytes, sent) = backend.queue_depths();
                depths = (depths.0 + queued, depths.1 + bytes, depths.2 + sent);
            });
            *table.server_mut(self.index, server, ServerStat::InQueue) = depths.0;
            *table.server_mut(self.index, server, ServerStat::InQueueBytes) = depths.1;
            *table.server_mut(self.index, server, ServerStat::OutQueue) = depths.2;
        }
    }
}
