//! One worker's ring for one pool: the key placement and which servers are in it. It follows
//! the topology's snapshots, and also drops a server at once when this worker's own
//! connections to it fail `server_failure_limit` times in a row, before the control plane has
//! heard of it. While the pool migrates it also knows the ring before the reload.

use std::cell::RefCell;

use rampart_placement::Placement;

use crate::topology::PoolView;

pub struct Ring {
    placement: RefCell<Placement>,
    live: RefCell<Vec<bool>>,
    /// While the pool migrates: the ring before the reload, and where each of its servers
    /// is now.
    old: RefCell<Option<(Placement, Vec<usize>)>>,
}

impl Ring {
    pub fn new(view: &PoolView) -> Ring {
        let ring = Ring {
            placement: RefCell::new(view.placement.clone()),
            live: RefCell::new(view.live.clone()),
            old: RefCell::new(None),
        };
        ring.follow_migration(view);
        ring
    }

    /// Takes the ring of a newer topology snapshot.
    pub fn follow(&self, view: &PoolView) {
        self.placement.borrow_mut().clone_from(&view.placement);
        self.live.borrow_mut().clone_from(&view.live);
        self.follow_migration(view);
    }

    fn follow_migration(&self, view: &PoolView) {
        *self.old.borrow_mut() = view
            .migration
            .as_ref()
            .map(|ring| (ring.old.clone(), ring.old_servers.clone()));
    }

    /// Whether the pool migrates: keys may still be on their server of the old ring.
    pub fn migrating(&self) -> bool {
        self.old.borrow().is_some()
    }

    /// While the pool migrates: the server a key was on before the reload.
    pub fn old_server_for_key(&self, key: &[u8]) -> Option<usize> {
        let mut old = self.old.borrow_mut();
        let (placement, servers) = old.as_mut()?;
        servers.get(placement.server_for_key(key)?).copied()
    }

    /// The server a key lives on, or `None` when every server is ejected.
    pub fn server_for_key(&self, key: &[u8]) -> Option<usize> {
        self.placement.borrow_mut().server_for_key(key)
    }

    pub fn is_live(&self, server: usize) -> bool {
        self.live.borrow().get(server).copied().unwrap_or(false)
    }

    /// How many servers are in the ring.
    pub fn live_servers(&self) -> usize {
        self.live.borrow().iter().filter(|&&live| live).count()
    }

    /// Takes `server` out of the ring and rebuilds it; false when it was out already.
    pub fn eject(&self, server: usize) -> bool {
        let mut live = self.live.borrow_mut();
        match live.get_mut(server) {
            Some(state) if *state => *state = false,
            _ => return false,
        }
        self.placement.borrow_mut().rebuild(&live);
        true
    }
}
