//! Moving a key before a command touches it, while its pool migrates after a reload changed
//! its ring: the session asks the key's old server to MIGRATE it (REPLACE, keeping its TTL) to
//! the new one, and holds the client's next requests until every old server answered. A key
//! already moved (or never written) answers NOKEY at once. So a read never finds `(nil)` for
//! a key that exists, and a write never lands beside an older copy that would come back.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use rampart_protocol::error_code;

use super::reply_queue::ReplyQueue;

/// The moves one request waits for, one per old server of its keys.
pub struct MoveWait {
    pending: Cell<usize>,
    /// The first move that failed: the server's error, or the connection's.
    failure: RefCell<Option<String>>,
    /// Woken once every move is answered.
    queue: Rc<ReplyQueue>,
}

impl MoveWait {
    pub fn new(moves: usize, queue: Rc<ReplyQueue>) -> Rc<MoveWait> {
        Rc::new(MoveWait {
            pending: Cell::new(moves),
            failure: RefCell::new(None),
            queue,
        })
    }

    /// An old server answered one move (`+OK`, `+NOKEY`, or an error).
    pub fn answered(&self, reply: &[u8]) {
        if error_code(reply).is_some() {
            let text = String::from_utf8_lossy(reply.get(1..).unwrap_or_default());
            self.failure
                .borrow_mut()
                .get_or_insert_with(|| text.trim_end().to_string());
        }
        self.pending.set(self.pending.get().saturating_sub(1));
        if self.is_done() {
            self.queue.wake.notify();
        }
    }

    /// Every move was answered.
    pub fn is_done(&self) -> bool {
        self.pending.get() == 0
    }

    /// Why a move failed, once every move was answered.
    pub fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }
}
