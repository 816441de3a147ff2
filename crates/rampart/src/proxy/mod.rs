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
//! every socket before any worker starts, so a bind failure stops start-up with a clear error.

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

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use rampart_config::{Config, Listen};
use tokio::sync::mpsc::UnboundedSender;

use crate::admin::stats::StatsBoard;
use crate::topology::{Topology, TopologyEvent};
use listener::BoundListener;

/// What every worker shares, read-only (the topology is swapped, never locked).
pub struct Shared {
    pub config: Arc<Config>,
    pub topology: Arc<Topology>,
    pub stats: Arc<StatsBoard>,
    pub events: UnboundedSender<TopologyEvent>,
    pub workers: usize,
    pub started: Instant,
    /// Read buffer growth step, from `-m`.
    pub mbuf_size: usize,
    /// Clients connected to each pool, over every worker (for `client_connections`).
    pub client_counts: Vec<AtomicUsize>,
}

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

/// Binds each pool's listener once per worker (TCP) or once for all (unix).
pub fn bind_listeners(
    config: &Config,
    workers: usize,
) -> Result<Vec<Vec<BoundListener>>, StartError> {
    let mut per_worker: Vec<Vec<BoundListener>> = (0..workers).map(|_| Vec::new()).collect();
    for pool in &config.pools {
        if !pool.redis {
            return Err(StartError::Memcache {
                pool: pool.name.clone(),
            });
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
                    listeners.push(listener::bind_tcp(resolved, pool.backlog).map_err(bind_error)?);
                }
            }
            Listen::Unix { path, permissions } => {
                let shared = listener::bind_unix(path, *permissions).map_err(bind_error)?;
                for listeners in &mut per_worker {
                    listeners.push(shared.try_clone().map_err(bind_error)?);
                }
            }
        }
    }
    Ok(per_worker)
}
