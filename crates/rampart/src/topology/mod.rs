//! The control plane's live shard map. It owns which servers of each pool are in the ring,
//! publishes an immutable snapshot per pool that workers read without locks (a generation
//! number tells them when to look again), ejects servers that workers report as failing
//! (`auto_eject_hosts`), and readmits them only after a PING to them succeeds.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use rampart_config::{Config, Pool, ServerAddress};
use rampart_placement::Placement;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::admin::catalog::{PoolStat, ServerStat};
use crate::admin::stats::{StatsBoard, StatsTable};

/// A pool's ring as workers should use it.
pub struct PoolView {
    pub live: Vec<bool>,
    pub placement: Placement,
}

struct PoolTopology {
    generation: AtomicU64,
    view: ArcSwap<PoolView>,
}

/// Every pool's current view.
pub struct Topology {
    pools: Vec<PoolTopology>,
}

/// What workers tell the control plane.
#[derive(Debug, Clone, Copy)]
pub enum TopologyEvent {
    /// A worker saw `server_failure_limit` failures in a row.
    Ejected { pool: usize, server: usize },
}

impl Topology {
    pub fn new(config: &Config) -> Topology {
        Topology {
            pools: config
                .pools
                .iter()
                .map(|pool| PoolTopology {
                    generation: AtomicU64::new(0),
                    view: ArcSwap::from_pointee(PoolView {
                        live: vec![true; pool.servers.len()],
                        placement: pool.placement(),
                    }),
                })
                .collect(),
        }
    }

    /// Changes whenever the pool's view changes.
    pub fn generation(&self, pool: usize) -> u64 {
        self.pools[pool].generation.load(Ordering::Acquire)
    }

    pub fn view(&self, pool: usize) -> Arc<PoolView> {
        self.pools[pool].view.load_full()
    }

    fn publish(&self, pool_index: usize, pool: &Pool, live: Vec<bool>) {
        let mut placement = pool.placement();
        placement.rebuild(&live);
        self.pools[pool_index]
            .view
            .store(Arc::new(PoolView { live, placement }));
        self.pools[pool_index]
            .generation
            .fetch_add(1, Ordering::AcqRel);
    }

    /// Sets one server's liveness; returns whether anything changed.
    fn set_live(&self, config: &Config, pool: usize, server: usize, live: bool) -> bool {
        let mut servers = self.view(pool).live.clone();
        if servers[server] == live {
            return false;
        }
        servers[server] = live;
        self.publish(pool, &config.pools[pool], servers);
        true
    }
}

/// The control plane's own counters (ejections), published in its stats slot.
struct ControlStats {
    table: RefCell<StatsTable>,
    board: Arc<StatsBoard>,
    slot: usize,
}

impl ControlStats {
    fn record_ejection(&self, pool: usize, server: usize) {
        let mut table = self.table.borrow_mut();
        *table.pool_mut(pool, PoolStat::ServerEjects) += 1;
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_micros() as u64);
        *table.server_mut(pool, server, ServerStat::ServerEjectedAt) = now_us;
        self.board.publish(self.slot, &table);
    }
}

/// Runs the control plane until every worker is gone. Must run inside a `LocalSet`.
pub async fn run(
    topology: Arc<Topology>,
    config: Arc<Config>,
    board: Arc<StatsBoard>,
    slot: usize,
    mut events: UnboundedReceiver<TopologyEvent>,
) {
    let stats = Rc::new(ControlStats {
        table: RefCell::new(StatsTable::new(&config)),
        board,
        slot,
    });
    while let Some(event) = events.recv().await {
        let TopologyEvent::Ejected { pool, server } = event;
        if !topology.set_live(&config, pool, server, false) {
            continue;
        }
        let entry = &config.pools[pool];
        tracing::warn!(
            "ejected server '{}' from pool '{}' for {} ms",
            entry.servers[server].name,
            entry.name,
            entry.server_retry_timeout_ms
        );
        stats.record_ejection(pool, server);
        tokio::task::spawn_local(readmit(
            Arc::clone(&topology),
            Arc::clone(&config),
            pool,
            server,
        ));
    }
}

/// Waits `server_retry_timeout`, then PINGs the server until it answers, and puts it back.
async fn readmit(topology: Arc<Topology>, config: Arc<Config>, pool: usize, server: usize) {
    let entry = &config.pools[pool];
    let retry = Duration::from_millis(entry.server_retry_timeout_ms.max(1));
    loop {
        tokio::time::sleep(retry).await;
        if probe(entry, server).await {
            break;
        }
    }
    topology.set_live(&config, pool, server, true);
    tracing::warn!(
        "readmitted server '{}' to pool '{}' after a successful PING",
        entry.servers[server].name,
        entry.name
    );
}

/// Whether the server answers PING (after AUTH when the pool has a password).
pub async fn probe(pool: &Pool, server: usize) -> bool {
    let limit = Duration::from_millis(pool.timeout_ms.unwrap_or(1000).clamp(100, 5000));
    tokio::time::timeout(limit, ping(pool, server))
        .await
        .unwrap_or(false)
}

async fn ping(pool: &Pool, server: usize) -> bool {
    let mut request = Vec::new();
    if let Some(password) = &pool.redis_auth {
        rampart_protocol::encode::request(&mut request, [&b"AUTH"[..], password.as_bytes()]);
    }
    rampart_protocol::encode::request(&mut request, [&b"PING"[..]]);
    let mut reply = Vec::new();
    let exchanged = match &pool.servers[server].address {
        ServerAddress::Tcp { host, port } => {
            match tokio::net::TcpStream::connect((host.as_str(), *port)).await {
                Ok(mut stream) => exchange(&mut stream, &request, &mut reply).await,
                Err(_) => false,
            }
        }
        ServerAddress::Unix { path } => match tokio::net::UnixStream::connect(path).await {
            Ok(mut stream) => exchange(&mut stream, &request, &mut reply).await,
            Err(_) => false,
        },
    };
    exchanged && reply.ends_with(b"+PONG\r\n")
}

async fn exchange<S: AsyncReadExt + AsyncWriteExt + Unpin>(
    stream: &mut S,
    request: &[u8],
    reply: &mut Vec<u8>,
) -> bool {
    if stream.write_all(request).await.is_err() {
        return false;
    }
    let mut chunk = [0u8; 512];
    while !reply.ends_with(b"+PONG\r\n") && !reply.starts_with(b"-") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(read) => reply.extend_from_slice(&chunk[..read]),
        }
    }
    true
}
