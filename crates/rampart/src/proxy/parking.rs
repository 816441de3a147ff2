//! Idle clients held outside the runtime. A client that has sent nothing yet, or nothing for
//! a whole sweep period, is parked: its bare socket and its few bytes of connection state wait
//! in the worker's own epoll set, with no task and no runtime registration. When it sends a
//! request (or hangs up) it gets a session again. A parked client costs about 64 bytes of
//! proxy memory instead of a session's kilobyte and a half, which is what lets a worker hold
//! tens of thousands of idle pooled connections cheaply.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use rustix::event::epoll;
use slab::Slab;
use tokio::io::unix::AsyncFd;

use super::local::ConnectionState;
use super::reply_queue::ReplyQueue;
use super::router::PoolRouter;
use super::session;
use super::stream::{IdleSocket, watch_fd};
use super::worker::WorkerContext;
use crate::admin::catalog::PoolStat;

/// How often idle sessions are looked at. A session that took no request during one whole
/// period is parked at the next look, so a client idle for 1–2 periods is parked.
pub const IDLE_SWEEP_PERIOD: Duration = Duration::from_secs(1);
/// How many sessions must have ended or parked since the previous sweep before the freed
/// memory is handed back to the operating system.
const TRIM_AFTER_SESSIONS_GONE: usize = 100;
/// Ready parked clients taken from the epoll set per call.
const EVENTS_PER_WAIT: usize = 64;

/// A client with no session: its socket, its pool and what its session must remember.
pub struct ParkedClient {
    pub socket: IdleSocket,
    pub router: Rc<PoolRouter>,
    pub state: ConnectionState,
}

/// The worker's parked clients, in an epoll set of their own that the runtime watches as one
/// file descriptor.
pub struct ParkingLot {
    ready: AsyncFd<OwnedFd>,
    parked: RefCell<Slab<ParkedClient>>,
    /// Nobody watches the set any more (the proxy is stopping): clients are not parked.
    closed: Cell<bool>,
}

impl ParkingLot {
    pub fn new() -> io::Result<ParkingLot> {
        let epoll_set = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        Ok(ParkingLot {
            ready: watch_fd(epoll_set)?,
            parked: RefCell::new(Slab::new()),
            closed: Cell::new(false),
        })
    }

    /// Parks `client` until it sends something or hangs up. A client that cannot be added to
    /// the epoll set (the kernel's watch limit), or that comes once the set is no longer
    /// watched, is served by a session right away instead.
    pub fn park(&self, context: &Rc<WorkerContext>, client: ParkedClient) {
        if self.closed.get() {
            resume(context, client);
            return;
        }
        let mut parked = self.parked.borrow_mut();
        let entry = parked.vacant_entry();
        let added = epoll::add(
            self.ready.get_ref(),
            client.socket.as_fd(),
            epoll::EventData::new_u64(entry.key() as u64),
            epoll::EventFlags::IN | epoll::EventFlags::RDHUP,
        );
        match added {
            Ok(()) => {
                client.router.client_parked(true);
                entry.insert(client);
            }
            Err(error) => {
                drop(parked);
                tracing::debug!("cannot park client {}: {error}", client.state.id);
                resume(context, client);
            }
        }
    }

    /// Gives every parked client that became readable a session, until the proxy stops; then
    /// closes the parked clients (they have nothing in flight).
    pub async fn run(context: Rc<WorkerContext>) {
        let lot = &context.parking;
        let mut stopping = context.stopping.clone();
        let mut events = [epoll::Event {
            flags: epoll::EventFlags::empty(),
            data: epoll::EventData::new_u64(0),
        }; EVENTS_PER_WAIT];
        loop {
            let mut guard = tokio::select! {
                guard = lot.ready.readable() => match guard {
                    Ok(guard) => guard,
                    Err(error) => {
                        tracing::error!("parked clients cannot be watched: {error}");
                        break;
                    }
                },
                _ = stopping.changed() => break,
            };
            let count = match epoll::wait(lot.ready.get_ref(), &mut events[..], Some(&ZERO)) {
                Ok(count) => count,
                Err(rustix::io::Errno::INTR) => continue,
                Err(error) => {
                    tracing::error!("parked clients cannot be watched: {error}");
                    break;
                }
            };
            if count < EVENTS_PER_WAIT {
                guard.clear_ready();
            }
            for event in &events[..count] {
                if let Some(client) = lot.unpark(event.data.u64() as usize) {
                    resume(&context, client);
                }
            }
        }
        lot.closed.set(true);
        let parked = std::mem::take(&mut *lot.parked.borrow_mut());
        for (_, client) in parked {
            client.router.client_parked(false);
            client.router.client_closed(PoolStat::ClientEof);
        }
    }

    fn unpark(&self, key: usize) -> Option<ParkedClient> {
        let client = self.parked.borrow_mut().try_remove(key)?;
        client.router.client_parked(false);
        if let Err(error) = epoll::delete(self.ready.get_ref(), client.socket.as_fd()) {
            tracing::debug!(
                "client {}: leaving the parking set: {error}",
                client.state.id
            );
        }
        Some(client)
    }
}

const ZERO: rustix::time::Timespec = rustix::time::Timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

/// Serves a parked (or just accepted) client with a session again.
pub fn resume(context: &Rc<WorkerContext>, client: ParkedClient) {
    tokio::task::spawn_local(session::serve(Rc::clone(context), client));
}

/// The live sessions of a worker, swept every [`IDLE_SWEEP_PERIOD`] to find the idle ones,
/// and woken all at once when the proxy stops. Sessions register once when they start, so a
/// request costs nothing here.
#[derive(Default)]
pub struct LiveSessions {
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

impl LiveSessions {
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
    pub async fn sweep(context: Rc<WorkerContext>) {
        let mut interval = tokio::time::interval(IDLE_SWEEP_PERIOD);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let live = &context.sessions;
        loop {
            interval.tick().await;
            if live.gone_since_sweep.replace(0) >= TRIM_AFTER_SESSIONS_GONE {
                give_back_free_memory();
            }
            for (_, watched) in live.sessions.borrow_mut().iter_mut() {
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

/// Returns the pages that parked sessions freed to the operating system. glibc keeps freed
/// memory in the middle of its heap resident otherwise, so a burst of sessions would pin
/// their memory after the clients went idle.
fn give_back_free_memory() {
    // SAFETY: malloc_trim only walks and trims the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
