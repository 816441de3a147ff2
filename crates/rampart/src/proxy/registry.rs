//! The live sessions of a worker: swept every [`IDLE_SWEEP_PERIOD`] to find the idle ones,
//! which are asked to park, and woken all at once when the proxy stops. Sessions register once
//! when they start, so a request costs nothing here.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use slab::Slab;

use super::reply_queue::ReplyQueue;

/// How often idle sessions are looked at. A session that took no request during one whole
/// period is parked at the next look, so a client idle for 1–2 periods is parked.
pub const IDLE_SWEEP_PERIOD: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct SessionRegistry {
    sessions: RefCell<Slab<Watched>>,
}

struct Watched {
    queue: Rc<ReplyQueue>,
    /// The session's request count at the previous sweep.
    requests_seen: u64,
    park_asked: bool,
}

impl SessionRegistry {
    pub fn register(&self, queue: &Rc<ReplyQueue>) -> usize {
        self.sessions.borrow_mut().insert(Watched {
            queue: Rc::clone(queue),
            requests_seen: queue.requests_taken(),
            park_asked: false,
        })
    }

    pub fn unregister(&self, key: usize) {
        self.sessions.borrow_mut().try_remove(key);
    }

    /// True once, after a sweep found the session idle and woke it to park.
    pub fn take_park_request(&self, key: usize) -> bool {
        self.sessions
            .borrow_mut()
            .get_mut(key)
            .is_some_and(|watched| std::mem::take(&mut watched.park_asked))
    }

    /// Wakes every session (to notice that the proxy is stopping).
    pub fn wake_all(&self) {
        for (_, watched) in self.sessions.borrow().iter() {
            watched.queue.wake.notify();
        }
    }

    /// Sweeps forever: a session with no new request since the previous sweep and no reply
    /// pending is asked to park.
    pub async fn sweep(&self) {
        let mut interval = tokio::time::interval(IDLE_SWEEP_PERIOD);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            for (_, watched) in self.sessions.borrow_mut().iter_mut() {
                let requests = watched.queue.requests_taken();
                if requests == watched.requests_seen && watched.queue.is_empty() {
                    watched.park_asked = true;
                    watched.queue.wake.notify();
                }
                watched.requests_seen = requests;
            }
        }
    }
}
