//! The live sessions of a worker: swept every [`IDLE_SWEEP_PERIOD`] to find the idle ones,
//! which are asked to park, and woken all at once when the proxy stops. Sessions register once
//! when they start, so a request costs nothing here. After a burst of sessions has ended or
//! parked, the sweep hands the memory they freed back to the operating system.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use slab::Slab;

use super::reply_queue::ReplyQueue;

/// How often idle sessions are looked at. A session that took no request during one whole
/// period is parked at the next look, so a client idle for 1–2 periods is parked.
pub const IDLE_SWEEP_PERIOD: Duration = Duration::from_secs(1);
/// How many sessions must have ended or parked since the previous sweep before the freed
/// memory is handed back to the operating system.
const TRIM_AFTER_SESSIONS_GONE: usize = 100;

#[derive(Default)]
pub struct SessionRegistry {
    sessions: RefCell<Slab<Watched>>,
    /// Sessions that ended or parked since the previous sweep.
    gone_since_sweep: Cell<usize>,
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
        self.gone_since_sweep.set(self.gone_since_sweep.get() + 1);
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
            if self.gone_since_sweep.replace(0) >= TRIM_AFTER_SESSIONS_GONE {
                give_back_free_memory();
            }
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

/// Returns the pages that ended sessions freed to the operating system. glibc keeps freed
/// memory in the middle of its heap resident otherwise, so a burst of sessions would pin
/// their memory after the clients went idle.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn give_back_free_memory() {
    // SAFETY: malloc_trim only walks and trims the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators return memory on their own terms.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back_free_memory() {}
