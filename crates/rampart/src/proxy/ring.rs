//! One worker's ring for one pool: the key placement and which servers are in it. It follows
//! the topology's snapshots, and also drops a server at once when this worker's own
//! connections to it fail `server_failure_limit` times in a row, before the control plane has
//! heard of it.

use std::cell::RefCell;

use rampart_placement::Placement;

use crate::topology::PoolView;

pub struct Ring {
    placement: RefCell<Placement>,
    live: RefCell<Vec<bool>>,
}

impl Ring {
    pub fn new(view: &PoolView) -> Ring {
        Ring {
            placement: RefCell::new(view.placement.clone()),
            live: RefCell::new(view.live.clone()),
        }
    }

    /// Takes the ring of a newer topology snapshot.
    pub fn follow(&self, view: &PoolView) {
        self.placement.borrow_mut().clone_from(&view.placement);
        self.live.borrow_mut().clone_from(&view.live);
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
