//! One worker's view of one pool: its ring (from the latest topology snapshot, plus ejections
//! this worker has just seen), its connections to each server, and the pool's counters in the
//! worker's stats. Sessions route through it; backend connections never call back into it.
//! A reload retires it: its clients move to the pool's new configuration at their next
//! request, and its connections close once the last of them has left and they are answered.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use rampart_config::{ClientLimits, Pool, ServerAddress};
use rampart_protocol::Protocol;

use super::Shared;
use super::backend::Backend;
use super::dedicated::{DedicatedConnections, Exhausted};
use super::links::ServerLinks;
use super::premove::MoveWait;
use super::ring::Ring;
use super::shard::Shard;
use super::subscriber::{Confirmations, SubscriberLink};
use super::worker_stats::WorkerStats;
use crate::admin::catalog::{LimitStat, PoolStat, ServerStat};
use crate::admin::stats::StatsTable;
use crate::topology::migrate::{DEFAULT_MIGRATE_TIMEOUT_MS, migrate_request};

/// What became of a worker's pool at the reloads since it was made.
#[derive(Clone)]
pub enum Succession {
    /// It serves the current configuration.
    Current,
    /// A reload gave the pool a new configuration: this is the latest one.
    Replaced(Rc<WorkerPool>),
    /// A reload removed the pool.
    Removed,
}

pub struct WorkerPool {
    index: usize,
    /// Set when a reload retires this pool.
    successor: RefCell<Succession>,
    shared: Arc<Shared>,
    stats: Rc<WorkerStats>,
    ring: Rc<Ring>,
    /// Each shard's master address and first replica as last seen, to notice moves.
    addresses: RefCell<Vec<ServerAddress>>,
    first_replicas: RefCell<Vec<Option<ServerAddress>>>,
    seen_generation: Cell<u64>,
    links: Vec<ServerLinks>,
    dedicated: DedicatedConnections,
}

impl WorkerPool {
    pub fn new(index: usize, shared: Arc<Shared>, stats: Rc<WorkerStats>) -> WorkerPool {
        let view = shared.topology.view(index);
        let generation = shared.topology.generation(index);
        let ring = Rc::new(Ring::new(&view));
        let links = (0..view.addresses.len())
            .map(|server| {
                let shard = Shard::new(
                    index,
                    server,
                    Arc::clone(&shared),
                    Rc::clone(&stats),
                    Rc::clone(&ring),
                );
                ServerLinks::new(shard)
            })
            .collect();
        WorkerPool {
            index,
            successor: RefCell::new(Succession::Current),
            addresses: RefCell::new(view.addresses.clone()),
            first_replicas: RefCell::new(
                view.replicas
                    .iter()
                    .map(|replicas| replicas.first().cloned())
                    .collect(),
            ),
            seen_generation: Cell::new(generation),
            dedicated: DedicatedConnections::new(
                shared
                    .config
                    .pools
                    .get(index)
                    .map_or(0, |pool| pool.limits.dedicated_connections),
            ),
            ring,
            links,
            shared,
            stats,
        }
    }

    #[expect(
        clippy::indexing_slicing,
        reason = "a WorkerPool is made for a pool index of the Config it shares"
    )]
    pub fn pool(&self) -> &Pool {
        &self.shared.config.pools[self.index]
    }

    /// What every worker shares (configuration, start time, worker count).
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// A reload retires this pool: `latest` serves it from now on, or nothing when the pool
    /// was removed.
    pub fn retire(&self, latest: Option<Rc<WorkerPool>>) {
        *self.successor.borrow_mut() = latest.map_or(Succession::Removed, Succession::Replaced);
    }

    /// Whether this pool still serves the current configuration, and if not, what does.
    pub fn succession(&self) -> Succession {
        match &*self.successor.borrow() {
            Succession::Current => Succession::Current,
            Succession::Removed => Succession::Removed,
            Succession::Replaced(next) => match next.succession() {
                Succession::Current => Succession::Replaced(Rc::clone(next)),
                later => later,
            },
        }
    }

    /// Counts into the pool's latest counters: a client that came before a reload is counted
    /// with the pool's new configuration, whose counters took over the old ones.
    fn count(&self, record: impl FnOnce(&WorkerStats, usize)) {
        match self.succession() {
            Succession::Replaced(latest) => record(&latest.stats, latest.index),
            Succession::Current | Succession::Removed => record(&self.stats, self.index),
        }
    }

    /// Takes the latest topology snapshot if the control plane published a new one, and
    /// points the connections of a shard whose master or replica moved at the new address.
    pub fn refresh(&self) {
        let generation = self.shared.topology.generation(self.index);
        if generation == self.seen_generation.get() {
            return;
        }
        let view = self.shared.topology.view(self.index);
        self.ring.follow(&view);
        let mut addresses = self.addresses.borrow_mut();
        let mut first_replicas = self.first_replicas.borrow_mut();
        for (server, links) in self.links.iter().enumerate() {
            if let (Some(mine), Some(latest)) =
                (addresses.get_mut(server), view.addresses.get(server))
                && mine != latest
            {
                latest.clone_into(mine);
                links.each_master(|backend| backend.retarget());
                self.dedicated.retarget(server);
            }
            let latest = view
                .replicas
                .get(server)
                .and_then(|replicas| replicas.first());
            if let Some(mine) = first_replicas.get_mut(server)
                && mine.as_ref() != latest
            {
                *mine = latest.cloned();
                links.each_master(|backend| backend.retarget_replica());
            }
        }
        self.seen_generation.set(generation);
    }

    /// The server a key lives on, or `None` when every server is ejected.
    pub fn server_for_key(&self, key: &[u8]) -> Option<usize> {
        self.ring.server_for_key(key)
    }

    /// Whether the pool migrates after a reload changed its ring.
    pub fn migrating(&self) -> bool {
        self.ring.migrating()
    }

    /// While the pool migrates: the server a key was on before the reload.
    pub fn old_server_for_key(&self, key: &[u8]) -> Option<usize> {
        self.ring.old_server_for_key(key)
    }

    /// Asks server `from` to move `keys` to server `to`'s master; `wait` gets the answer.
    pub fn move_keys(&self, from: usize, to: usize, keys: &[Bytes], wait: &Rc<MoveWait>) {
        let address = self.addresses.borrow().get(to).cloned();
        let Some(ServerAddress::Tcp { host, port }) = address else {
            wait.answered(b"-ERR the new server has no TCP address to MIGRATE to\r\n");
            return;
        };
        let pool = self.pool();
        let request = migrate_request(
            &host,
            port,
            pool.redis_db,
            pool.timeout_ms.unwrap_or(DEFAULT_MIGRATE_TIMEOUT_MS),
            pool.redis_auth.as_ref().map(|password| password.as_bytes()),
            keys,
        );
        self.backend(from, Protocol::Resp2)
            .send_moving(request, Rc::clone(wait));
    }

    /// Servers currently in the ring.
    pub fn live_servers(&self) -> usize {
        self.ring.live_servers()
    }

    /// Whether `server` is in this worker's ring.
    pub fn is_live(&self, server: usize) -> bool {
        self.ring.is_live(server)
    }

    /// Whether `server` is in the ring and no connection to it is failing (a failing one is
    /// asked to reconnect now, so that the next call sees a shard that came back).
    pub fn is_reachable(&self, server: usize) -> bool {
        self.is_live(server)
            && self
                .links
                .get(server)
                .is_some_and(|links| !links.check_failing())
    }

    /// A connection to `server` for clients speaking `protocol`.
    #[expect(
        clippy::indexing_slicing,
        reason = "servers come from the pool's ring, which has one entry per link"
    )]
    pub fn backend(&self, server: usize, protocol: Protocol) -> Rc<Backend> {
        let limit = self.pool().server_connections as usize;
        self.links[server].connection(protocol, limit)
    }

    /// A connection to `server`'s master that the client speaking `protocol` holds alone,
    /// until it gives it back with [`release_dedicated`](Self::release_dedicated).
    pub fn acquire_dedicated(
        &self,
        server: usize,
        protocol: Protocol,
    ) -> Result<Rc<Backend>, Exhausted> {
        let limit = self.pool().limits.dedicated_connections as usize;
        let links = self.links.get(server).ok_or(Exhausted { limit })?;
        self.dedicated.acquire(server, links.shard(), protocol)
    }

    /// A link to `server` for a subscribed client, counted with the dedicated connections.
    pub fn subscriber_link(
        &self,
        server: usize,
        protocol: Protocol,
        confirmations: &Rc<Confirmations>,
    ) -> Result<Rc<SubscriberLink>, Exhausted> {
        let limit = self.pool().limits.dedicated_connections as usize;
        let links = self.links.get(server).ok_or(Exhausted { limit })?;
        self.dedicated
            .subscribe(server, links.shard(), protocol, confirmations)
    }

    /// Gives back a dedicated connection; `clean` when nothing of its client lingers on it.
    pub fn release_dedicated(&self, backend: &Rc<Backend>, clean: bool) {
        self.dedicated.release(backend, clean);
    }

    /// A server's configured name, for messages.
    pub fn server_name(&self, server: usize) -> &str {
        self.pool()
            .servers
            .get(server)
            .map_or("?", |server| server.name.as_str())
    }

    /// Connects to every server now (`preconnect: true`).
    pub fn preconnect(&self) {
        for server in 0..self.links.len() {
            self.backend(server, Protocol::Resp2).preconnect();
        }
    }

    /// For a read-only command: a connection to one of the shard's replicas when the pool has
    /// `replica_reads`, the shard's master is unreachable, and Sentinel lists a replica.
    pub fn replica_for_read(&self, server: usize, protocol: Protocol) -> Option<Rc<Backend>> {
        let listed = self
            .first_replicas
            .borrow()
            .get(server)
            .is_some_and(Option::is_some);
        if !self.pool().replica_reads || !listed {
            return None;
        }
        self.links.get(server)?.replica_for_read(protocol)
    }

    /// What one client may make the proxy hold.
    pub fn limits(&self) -> &ClientLimits {
        &self.pool().limits
    }

    /// Counts a new client in, unless the pool already has `client_connections` clients:
    /// then it counts the refusal and returns false.
    pub fn admit_client(&self) -> bool {
        let Some(count) = self.shared.client_counts.get(self.index) else {
            return false;
        };
        let before = count.fetch_add(1, Ordering::Relaxed);
        if let Some(max) = self.limits().max_clients
            && before >= max as usize
        {
            count.fetch_sub(1, Ordering::Relaxed);
            self.limit_enforced(LimitStat::ClientsRefused);
            return false;
        }
        self.count(|stats, pool| stats.client_opened(pool));
        true
    }

    /// A client left: `how` is `client_eof` or `client_err`.
    pub fn client_closed(&self, how: PoolStat) {
        if let Some(count) = self.shared.client_counts.get(self.index) {
            count.fetch_sub(1, Ordering::Relaxed);
        }
        self.count(|stats, pool| stats.client_closed(pool, how));
    }

    /// A client limit was enforced.
    pub fn limit_enforced(&self, limit: LimitStat) {
        self.count(|stats, pool| stats.limit_enforced(pool, limit));
    }

    /// A client of this pool was parked (`true`) or left the parking lot (`false`).
    pub fn client_parked(&self, parked: bool) {
        self.count(|stats, pool| stats.client_parked(pool, parked));
    }

    /// A split request became `count` fragments.
    pub fn fragments(&self, count: usize) {
        self.count(|stats, pool| stats.fragments(pool, count));
    }

    pub fn forward_error(&self) {
        self.count(|stats, pool| stats.forward_error(pool));
    }

    /// Clients connected to this pool across all workers, and how many of them are parked
    /// (as last published). It reads every worker's published table: for INFO only.
    pub fn connected_clients(&self) -> (u64, u64) {
        let total = self.shared.stats.sum(&self.shared.config);
        (
            total.pool(self.index, PoolStat::ClientConnections),
            total.parked_clients(self.index),
        )
    }

    /// Writes the queue gauges of this worker's connections into `table`.
    pub fn publish_gauges(&self, table: &mut StatsTable) {
        for (server, links) in self.links.iter().enumerate() {
            let (queued, bytes, sent) = links.queue_depths();
            *table.server_mut(self.index, server, ServerStat::InQueue) = queued;
            *table.server_mut(self.index, server, ServerStat::InQueueBytes) = bytes;
            *table.server_mut(self.index, server, ServerStat::OutQueue) = sent;
        }
    }
}
