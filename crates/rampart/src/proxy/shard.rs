//! What a backend connection knows of its shard, handed to it when it is made: the pool and
//! server it serves, where the shard's master (or a replica) is now, where its traffic and
//! failures are counted, and how a failure counts toward `auto_eject_hosts`. One `Shard` is
//! shared by a worker's connections to one server; it never reaches back into the pool view
//! that owns them.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rampart_config::{Pool, ServerAddress};

use super::Shared;
use super::ring::Ring;
use super::worker_stats::WorkerStats;
use crate::admin::catalog::ServerStat;
use crate::topology::{PoolView, TopologyEvent};

pub struct Shard {
    pool: usize,
    server: usize,
    shared: Arc<Shared>,
    stats: Rc<WorkerStats>,
    ring: Rc<Ring>,
    /// Failed connections in a row, toward `server_failure_limit`.
    failures: Cell<u32>,
}

impl Shard {
    pub fn new(
        pool: usize,
        server: usize,
        shared: Arc<Shared>,
        stats: Rc<WorkerStats>,
        ring: Rc<Ring>,
    ) -> Shard {
        Shard {
            pool,
            server,
            shared,
            stats,
            ring,
            failures: Cell::new(0),
        }
    }

    /// The pool's configuration.
    #[expect(
        clippy::indexing_slicing,
        reason = "a Shard is made for a pool index of the process's one Config"
    )]
    pub fn pool(&self) -> &Pool {
        &self.shared.config.pools[self.pool]
    }

    /// The server's configured name (its Sentinel master name in a pool with sentinels).
    #[expect(
        clippy::indexing_slicing,
        reason = "a Shard is made for a server index of its pool in the process's one Config"
    )]
    pub fn name(&self) -> &str {
        &self.pool().servers[self.server].name
    }

    /// Where the shard's master is now, per the latest topology snapshot.
    pub fn master_address(&self) -> ServerAddress {
        self.master_in(&self.shared.topology.view(self.pool))
    }

    /// Where the shard's master is in `view`.
    #[expect(
        clippy::indexing_slicing,
        reason = "a Shard is made for a server index of its pool, and every view has an \
                  address for each of the pool's servers"
    )]
    fn master_in(&self, view: &PoolView) -> ServerAddress {
        view.addresses[self.server].clone()
    }

    /// Where read-only commands go while the master is unreachable: the shard's first healthy
    /// replica, or the master's address when Sentinel lists none.
    pub fn replica_address(&self) -> ServerAddress {
        let view = self.shared.topology.view(self.pool);
        match view
            .replicas
            .get(self.server)
            .and_then(|replicas| replicas.first())
        {
            Some(replica) => replica.clone(),
            None => self.master_in(&view),
        }
    }

    /// Whether Sentinel lists a healthy replica of the shard.
    pub fn has_replica(&self) -> bool {
        self.shared
            .topology
            .view(self.pool)
            .replicas
            .get(self.server)
            .is_some_and(|replicas| !replicas.is_empty())
    }

    /// Asks the control plane to check the shard's master with the sentinels now.
    pub fn recheck(&self) {
        let _ = self.shared.events.send(TopologyEvent::Recheck {
            pool: self.pool,
            server: self.server,
        });
    }

    pub fn request_sent(&self, bytes: usize) {
        self.stats.request_sent(self.pool, self.server, bytes);
    }

    /// A reply arrived, `elapsed` after its request was read from the client: the server is
    /// answering, so its failure count starts over.
    pub fn reply_received(&self, bytes: usize, elapsed: Duration) {
        self.failures.set(0);
        self.stats
            .reply_received(self.pool, self.server, bytes, elapsed);
    }

    /// A request was answered with an error because its server could not serve it.
    pub fn forward_error(&self) {
        self.stats.forward_error(self.pool);
    }

    pub fn connection_opened(&self) {
        self.stats.server_connection_opened(self.pool, self.server);
    }

    pub fn connection_closed(&self) {
        self.stats.server_connection_closed(self.pool, self.server);
    }

    /// Counts a failed connection (`how` is `server_eof`, `server_err` or `server_timedout`).
    /// With `auto_eject_hosts` (and no sentinels: a Sentinel pool never moves keys),
    /// `server_failure_limit` failures in a row take the server out of this worker's ring at
    /// once and report it to the control plane, which ejects it everywhere and later readmits
    /// it after a successful PING.
    pub fn connection_failed(&self, how: ServerStat) {
        self.stats.server_failed(self.pool, self.server, how);
        let pool = self.pool();
        if !pool.auto_eject_hosts || !pool.sentinels.is_empty() {
            return;
        }
        let failures = self.failures.get() + 1;
        if failures < pool.server_failure_limit.max(1) {
            self.failures.set(failures);
            return;
        }
        self.failures.set(0);
        if self.ring.eject(self.server) {
            let _ = self.shared.events.send(TopologyEvent::Ejected {
                pool: self.pool,
                server: self.server,
            });
        }
    }
}
