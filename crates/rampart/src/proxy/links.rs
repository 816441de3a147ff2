//! One worker's connections to one server: up to `server_connections` per protocol (RESP2 and
//! RESP3 clients are served by different connections, so replies pass through unchanged),
//! made on first use and then taken round-robin. They close when the links are dropped (their
//! pool was retired by a reload and its last client left), once every request is answered.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use rampart_protocol::Protocol;

use super::backend::{Backend, Role};
use super::shard::Shard;

pub struct ServerLinks {
    shard: Rc<Shard>,
    resp2: RefCell<Vec<Rc<Backend>>>,
    resp3: RefCell<Vec<Rc<Backend>>>,
    next: Cell<usize>,
}

impl ServerLinks {
    pub fn new(shard: Shard) -> ServerLinks {
        ServerLinks {
            shard: Rc::new(shard),
            resp2: RefCell::new(Vec::new()),
            resp3: RefCell::new(Vec::new()),
            next: Cell::new(0),
        }
    }

    fn of(&self, protocol: Protocol) -> &RefCell<Vec<Rc<Backend>>> {
        match protocol {
            Protocol::Resp2 => &self.resp2,
            Protocol::Resp3 => &self.resp3,
        }
    }

    /// A connection for clients speaking `protocol`: a new one while fewer than `limit` exist,
    /// then round-robin.
    pub fn connection(&self, protocol: Protocol, limit: usize) -> Rc<Backend> {
        let mut connections = self.of(protocol).borrow_mut();
        if connections.len() >= limit {
            let next = self.next.get();
            // With no connection yet (a limit of 0), one is made below as if under the limit.
            if let Some(backend) = next
                .checked_rem(connections.len())
                .and_then(|at| connections.get(at))
            {
                self.next.set(next.wrapping_add(1));
                return Rc::clone(backend);
            }
        }
        let backend = Backend::spawn(Rc::clone(&self.shard), protocol, Role::Master);
        connections.push(Rc::clone(&backend));
        backend
    }

    /// What the connections know of their shard.
    pub fn shard(&self) -> &Rc<Shard> {
        &self.shard
    }

    /// Calls `visit` with every connection to the shard's master, RESP2 and RESP3.
    pub fn each_master(&self, mut visit: impl FnMut(&Rc<Backend>)) {
        self.resp2.borrow().iter().for_each(&mut visit);
        self.resp3.borrow().iter().for_each(visit);
    }

    /// Whether some connection to the shard's master failed on its last try. Each such
    /// connection is asked to try again now, so that a shard back up is seen as reachable
    /// without waiting for a request to go to it.
    pub fn check_failing(&self) -> bool {
        let mut failing = false;
        self.each_master(|backend| {
            if backend.is_failing() {
                failing = true;
                backend.preconnect();
            }
        });
        failing
    }

    /// For a read-only command while a connection to the master for `protocol` is failing:
    /// that connection's replica connection.
    pub fn replica_for_read(&self, protocol: Protocol) -> Option<Rc<Backend>> {
        self.of(protocol)
            .borrow()
            .iter()
            .find(|backend| backend.is_failing())
            .map(|backend| backend.replica())
    }

    /// (queued, queued bytes, sent and unanswered) over the master connections.
    pub fn queue_depths(&self) -> (u64, u64, u64) {
        let mut depths = (0, 0, 0);
        self.each_master(|backend| {
            let (queued, bytes, sent) = backend.queue_depths();
            depths = (depths.0 + queued, depths.1 + bytes, depths.2 + sent);
        });
        depths
    }
}

impl Drop for ServerLinks {
    fn drop(&mut self) {
        self.each_master(|backend| backend.retire());
    }
}
