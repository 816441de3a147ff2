//! One worker's dedicated connections for one pool: server connections that one client holds
//! at a time, for a transaction, a WATCH, a blocking command or its subscriptions, so that
//! nothing it leaves on the connection (a queued MULTI, a watched key, a blocked BLPOP, a
//! subscription) reaches another client and no other client waits behind it. At most
//! `dedicated_connections` are held at once; a connection given back clean (after EXEC,
//! DISCARD or UNWATCH, or an answered blocking call) is kept for the next client, a few per
//! server, and any other is closed. Subscriber links are never reused.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use rampart_protocol::Protocol;

use super::backend::Backend;
use super::shard::Shard;
use super::subscriber::{Confirmations, SubscriberLink};

/// Clean connections kept per server and protocol for the next client.
const IDLE_PER_SERVER: usize = 4;

/// Every dedicated connection is held: the pool's `dedicated_connections` is reached.
#[derive(Debug, Clone, Copy)]
pub struct Exhausted {
    pub limit: usize,
}

/// A dedicated connection and whom it serves.
struct Link {
    server: usize,
    protocol: Protocol,
    backend: Rc<Backend>,
}

pub struct DedicatedConnections {
    limit: usize,
    /// Clean connections kept for the next client.
    idle: RefCell<Vec<Link>>,
    /// Every connection held by a client now, so a failover can reach them.
    in_use: RefCell<Vec<Link>>,
    /// Subscribed clients' links, by server, while they live.
    subscribers: RefCell<Vec<(usize, Weak<SubscriberLink>)>>,
}

impl DedicatedConnections {
    pub fn new(limit: u32) -> DedicatedConnections {
        DedicatedConnections {
            limit: limit as usize,
            idle: RefCell::new(Vec::new()),
            in_use: RefCell::new(Vec::new()),
            subscribers: RefCell::new(Vec::new()),
        }
    }

    /// A connection to `shard` (server `server`) for one client speaking `protocol`: a clean
    /// one kept from before, or a new one.
    pub fn acquire(
        &self,
        server: usize,
        shard: &Rc<Shard>,
        protocol: Protocol,
    ) -> Result<Rc<Backend>, Exhausted> {
        self.check_room()?;
        let kept = {
            let mut idle = self.idle.borrow_mut();
            idle.retain(|kept| !kept.backend.has_ended());
            idle.iter()
                .position(|kept| kept.server == server && kept.protocol == protocol)
                .map(|at| idle.swap_remove(at).backend)
        };
        let backend = kept.unwrap_or_else(|| Backend::spawn_dedicated(Rc::clone(shard), protocol));
        self.in_use.borrow_mut().push(Link {
            server,
            protocol,
            backend: Rc::clone(&backend),
        });
        Ok(backend)
    }

    /// A subscriber link to `shard` (server `server`) for one client.
    pub fn subscribe(
        &self,
        server: usize,
        shard: &Rc<Shard>,
        protocol: Protocol,
        confirmations: &Rc<Confirmations>,
    ) -> Result<Rc<SubscriberLink>, Exhausted> {
        self.check_room()?;
        let link = SubscriberLink::spawn(Rc::clone(shard), protocol, Rc::clone(confirmations));
        self.subscribers
            .borrow_mut()
            .push((server, Rc::downgrade(&link)));
        Ok(link)
    }

    /// Room for one more held connection.
    fn check_room(&self) -> Result<(), Exhausted> {
        self.subscribers
            .borrow_mut()
            .retain(|(_, link)| link.upgrade().is_some_and(|link| !link.has_ended()));
        let held = self.in_use.borrow().len() + self.subscribers.borrow().len();
        if held >= self.limit {
            return Err(Exhausted { limit: self.limit });
        }
        Ok(())
    }

    /// Takes back a connection a client held. `clean`: nothing the client did lingers on it
    /// (its transaction ended, its WATCH is gone, its blocking call was answered), so the next
    /// client may have it; otherwise it is closed.
    pub fn release(&self, backend: &Rc<Backend>, clean: bool) {
        let link = {
            let mut in_use = self.in_use.borrow_mut();
            let Some(at) = in_use
                .iter()
                .position(|held| Rc::ptr_eq(&held.backend, backend))
            else {
                return;
            };
            in_use.swap_remove(at)
        };
        let mut idle = self.idle.borrow_mut();
        let kept_for_server = idle
            .iter()
            .filter(|kept| kept.server == link.server && kept.protocol == link.protocol)
            .count();
        if clean && !backend.has_ended() && kept_for_server < IDLE_PER_SERVER {
            idle.push(link);
        } else {
            backend.close();
        }
    }

    /// The master of `server` moved: held connections end with `-TRYAGAIN` for what they
    /// hold, subscriber links end (their clients are disconnected), kept ones are closed.
    pub fn retarget(&self, server: usize) {
        for held in self
            .in_use
            .borrow()
            .iter()
            .filter(|held| held.server == server)
        {
            held.backend.retarget();
        }
        for (_, link) in self
            .subscribers
            .borrow()
            .iter()
            .filter(|(link_server, _)| *link_server == server)
        {
            if let Some(link) = link.upgrade() {
                link.retarget();
            }
        }
        self.idle.borrow_mut().retain(|kept| {
            let keep = kept.server != server;
            if !keep {
                kept.backend.close();
            }
            keep
        });
    }
}

impl Drop for DedicatedConnections {
    /// The pool was retired by a reload and its last client left: the clean connections kept
    /// for the next client close.
    fn drop(&mut self) {
        for kept in self.idle.get_mut().drain(..) {
            kept.backend.close();
        }
    }
}
