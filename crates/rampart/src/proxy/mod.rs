//! The data path: worker threads that accept clients, route their requests by key to backend
//! connections, and write replies back in order. `run` binds every socket first (a bind
//! failure stops start-up with a clear error), then starts the workers, the control plane
//! and the stats server, and returns once a stop signal has drained the workers.

pub mod backend;
pub mod listener;
pub mod local;
pub mod merge;
pub mod notify;
pub mod parking;
pub mod reply_queue;
pub mod router;
pub mod session;
pub mod stream;
pub mod worker;

use std::sync::Arc;
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
        let address = worker::listen_text(&pool.listen);
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
