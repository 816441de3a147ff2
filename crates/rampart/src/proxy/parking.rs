//! Idle clients held outside the runtime. A client that has sent nothing yet, or nothing for
//! a whole sweep period, is parked: its bare socket and its few bytes of connection state wait
//! in the worker's own epoll set, with no task and no runtime registration. When it sends a
//! request (or hangs up) it gets a session again. A parked client costs about 64 bytes of
//! proxy memory instead of a session's kilobyte and a half, which is what lets a worker hold
//! tens of thousands of idle pooled connections cheaply. A client parked for longer than its
//! pool's `client_idle_timeout` is closed here, and so is one whose pool a reload removed.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::event::epoll;
use slab::Slab;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tokio::time::{Duration, Instant};

use super::client::IdleClient;
use super::pool::Succession;
use super::stream::watch_fd;
use crate::admin::catalog::{LimitStat, PoolStat};
use crate::log_limit::limited;

/// Ready parked clients taken from the epoll set per call.
const EVENTS_PER_WAIT: usize = 64;
/// How often parked clients are checked against their pool's `client_idle_timeout`.
const IDLE_CHECK_PERIOD: Duration = Duration::from_secs(1);

/// The worker's parked clients, in an epoll set of their own that the runtime watches as one
/// file descriptor.
pub struct ParkingLot {
    ready: AsyncFd<OwnedFd>,
    parked: RefCell<Slab<IdleClient>>,
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
    /// watched, is given back, to be served by a session right away.
    pub fn park(&self, client: IdleClient) -> Result<(), IdleClient> {
        if self.closed.get() {
            return Err(client);
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
                client.pool.client_parked(true);
                entry.insert(client);
                Ok(())
            }
            Err(error) => {
                tracing::debug!("cannot park client {}: {error}", client.state.id);
                Err(client)
            }
        }
    }

    /// Hands every parked client that became readable to `resume`, until the proxy stops;
    /// then closes the parked clients (they have nothing in flight).
    pub async fn run(
        &self,
        mut stopping: watch::Receiver<bool>,
        mut resume: impl FnMut(IdleClient),
    ) {
        let mut events = [epoll::Event {
            flags: epoll::EventFlags::empty(),
            data: epoll::EventData::new_u64(0),
        }; EVENTS_PER_WAIT];
        let mut idle_check = tokio::time::interval(IDLE_CHECK_PERIOD);
        idle_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut guard = tokio::select! {
                guard = self.ready.readable() => match guard {
                    Ok(guard) => guard,
                    Err(error) => {
                        tracing::error!("parked clients cannot be watched: {error}");
                        break;
                    }
                },
                _ = idle_check.tick() => {
                    self.close_idle(Instant::now());
                    continue;
                }
                _ = stopping.changed() => break,
            };
            let count = match epoll::wait(self.ready.get_ref(), &mut events[..], Some(&ZERO)) {
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
            for event in events.iter().take(count) {
                if let Some(client) = self.unpark(event.data.u64() as usize) {
                    resume(client);
                }
            }
        }
        self.closed.set(true);
        let parked = std::mem::take(&mut *self.parked.borrow_mut());
        for (_, client) in parked {
            client.pool.client_parked(false);
            client.pool.client_closed(PoolStat::ClientEof);
        }
    }

    /// After a reload: points every parked client at its pool's new configuration, and
    /// closes those whose pool was removed.
    pub fn follow_reload(&self) {
        let mut removed = Vec::new();
        for (key, client) in self.parked.borrow_mut().iter_mut() {
            match client.pool.succession() {
                Succession::Current => {}
                Succession::Replaced(latest) => client.pool = latest,
                Succession::Removed => removed.push(key),
            }
        }
        for key in removed {
            if let Some(client) = self.unpark(key) {
                client.pool.client_closed(PoolStat::ClientEof);
            }
        }
    }

    /// Closes the parked clients of pools with `client_idle_timeout` that have sent nothing
    /// for that long, as Redis's `timeout` does: without a reply.
    fn close_idle(&self, now: Instant) {
        let expired: Vec<usize> = self
            .parked
            .borrow()
            .iter()
            .filter(|(_, client)| {
                client
                    .pool
                    .limits()
                    .idle_timeout_seconds
                    .is_some_and(|seconds| {
                        now.duration_since(client.active_at)
                            >= Duration::from_secs(u64::from(seconds))
                    })
            })
            .map(|(key, _)| key)
            .collect();
        for key in expired {
            if let Some(client) = self.unpark(key) {
                limited!(
                    info,
                    "idle clients closed",
                    "client {} of pool '{}' closed: idle for client_idle_timeout",
                    client.state.id,
                    client.pool.pool().name
                );
                client.pool.limit_enforced(LimitStat::IdleTimeouts);
                client.pool.client_closed(PoolStat::ClientEof);
            }
        }
    }

    fn unpark(&self, key: usize) -> Option<IdleClient> {
        let client = self.parked.borrow_mut().try_remove(key)?;
        client.pool.client_parked(false);
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
