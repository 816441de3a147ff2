//! The data path. Each worker thread (`worker`) accepts clients on its own listeners
//! (`listener`), holds idle ones outside the runtime (`client`, `parking`) and serves the
//! others with a session (`session`, tracked by `registry`), which answers local commands
//! (`local`) and routes the rest through the worker's view of the pool (`pool`: its `ring`
//! and the `links` to each server) to backend connections (`backend`, told of their shard by
//! `shard`); transactions and blocking commands go on connections a client holds alone
//! (`dedicated`, held by the session's `session::holding`), subscriptions on links of their
//! own (`subscriber`, managed by `session::pubsub`). Replies come back through each client's
//! `reply_queue`, with split requests merged (`merge`). The commands over the whole keyspace
//! (SCAN, DBSIZE, KEYS...) and PUBSUB's introspection are planned by `keyspace`, their replies
//! combined by `keyspace_merge`, SCAN's cursor by `scan_cursor`. Counting goes through `worker_stats`;
//! `memory` gives what bursts freed back to the operating system. `bind_listeners` binds
//! every socket before any worker starts (or before a reload is published), so a bind failure
//! stops start-up, or refuses the reload, with a clear error.

pub mod backend;
pub mod client;
pub mod context;
pub mod dedicated;
pub mod keyspace;
pub mod keyspace_merge;
pub mod links;
pub mod listener;
pub mod local;
pub mod memory;
pub mod merge;
pub mod notify;
pub mod parking;
pub mod pool;
pub mod premove;
pub mod registry;
pub mod reply_queue;
pub mod ring;
pub mod scan_cursor;
pub mod session;
pub mod shard;
pub mod stream;
pub mod subscriber;
pub mod worker;
pub mod worker_stats;

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use rampart_config::{Config, Listen, Pool};
use tokio::sync::mpsc::UnboundedSender;

use crate::admin::stats::StatsBoard;
use crate::topology::{Topology, TopologyEvent};
use listener::BoundListener;

/// What every worker shares under one configuration, read-only (the topology is swapped,
/// never locked). A reload publishes a new one in [`Live`].
pub struct Shared {
    pub config: Arc<Config>,
    pub topology: Arc<Topology>,
    pub stats: Arc<StatsBoard>,
    pub events: UnboundedSender<TopologyEvent>,
    pub workers: usize,
    pub started: Instant,
    /// Read buffer growth step, from `-m`.
    pub mbuf_size: usize,
    /// Clients connected to each pool, over every worker (for `client_connections`); a
    /// reload hands a pool that stays the same counter.
    pub client_counts: Vec<Arc<AtomicUsize>>,
    /// 0 for the configuration the proxy started with, one more for each reload.
    pub generation: u64,
    /// Workers that serve this configuration: a reload is reported once all of them do.
    pub workers_serving: AtomicUsize,
    /// The listeners bound for this configuration, per worker: (pool index, socket). All of
    /// them at start; at a reload only those of new listen addresses, as workers keep the
    /// sockets of addresses that stay. Each worker takes its own when it starts serving it.
    pub new_listeners: Vec<Mutex<Vec<(usize, BoundListener)>>>,
}

impl Shared {
    /// The configuration the proxy starts with, served by `workers` workers on `listeners`
    /// (per worker, as [`bind_listeners`] gives them); workers report to `events`.
    pub fn starting(
        config: Arc<Config>,
        stats: Arc<StatsBoard>,
        events: UnboundedSender<TopologyEvent>,
        workers: usize,
        mbuf_size: usize,
        listeners: Vec<Vec<(usize, BoundListener)>>,
    ) -> Shared {
        Shared {
            topology: Arc::new(Topology::new(&config)),
            client_counts: config
                .pools
                .iter()
                .map(|_| Arc::new(AtomicUsize::new(0)))
                .collect(),
            config,
            stats,
            events,
            workers,
            started: Instant::now(),
            mbuf_size,
            generation: 0,
            workers_serving: AtomicUsize::new(0),
            new_listeners: listeners.into_iter().map(Mutex::new).collect(),
        }
    }
}

/// The configuration the proxy serves now: workers check it every 100 ms, the admin endpoint,
/// the stats port and VRRP tracking read it when they answer.
pub type Live = ArcSwap<Shared>;

/// A start-up failure, with what failed and why.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Resolve(#[from] listener::ListenResolveError),
    #[error(
        "pool '{pool}' is a memcache pool (no `redis: true`); rampart serves the redis protocol only"
    )]
    Memcache { pool: String },
    #[error("pool '{pool}': cannot listen on '{address}': {source}")]
    Bind {
        pool: String,
        address: String,
        source: std::io::Error,
    },
}

/// Checks that every pool speaks redis, and binds the listeners of the pools `wanted` picks,
/// once per worker (TCP) or once for all (unix), each with its pool's index.
pub fn bind_listeners(
    config: &Config,
    workers: usize,
    wanted: impl Fn(&Pool) -> bool,
) -> Result<Vec<Vec<(usize, BoundListener)>>, StartError> {
    let mut per_worker: Vec<Vec<(usize, BoundListener)>> =
        (0..workers).map(|_| Vec::new()).collect();
    for (index, pool) in config.pools.iter().enumerate() {
        if !pool.redis {
            return Err(StartError::Memcache {
                pool: pool.name.clone(),
            });
        }
        if !wanted(pool) {
            continue;
        }
        let address = pool.listen.to_string();
        let bind_error = |source| StartError::Bind {
            pool: pool.name.clone(),
            address: address.clone(),
            source,
        };
        match &pool.listen {
            Listen::Tcp { host, port } => {
                let resolved = listener::resolve_tcp(config, pool, host, *port)?;
                listener::ensure_free(resolved).map_err(bind_error)?;
                for listeners in &mut per_worker {
                    let bound = listener::bind_tcp(resolved, pool.backlog).map_err(bind_error)?;
                    listeners.push((index, bound));
                }
            }
            Listen::Unix { path, permissions } => {
                let shared = listener::bind_unix(path, *permissions).map_err(bind_error)?;
                for listeners in &mut per_worker {
                    listeners.push((index, shared.try_clone().map_err(bind_error)?));
                }
            }
        }
    }
    Ok(per_worker)
}
