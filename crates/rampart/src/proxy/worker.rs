//! A worker thread: its own single-threaded runtime, its own listener per pool (SO_REUSEPORT
//! spreads clients over workers), its own backend connections, its own parked clients, and
//! its own stats table, which it publishes every 100 ms. Nothing on the request path is
//! shared with another thread.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rampart_config::Listen;
use rampart_protocol::Protocol;
use tokio::sync::watch;
use tokio::task::LocalSet;

use super::Shared;
use super::listener::BoundListener;
use super::local::ConnectionState;
use super::parking::{self, LiveSessions, ParkedClient, ParkingLot};
use super::router::PoolRouter;
use crate::admin::catalog::PoolStat;
use crate::admin::stats::StatsTable;

/// How often a worker publishes its counters for the stats server.
const STATS_PUBLISH_INTERVAL: Duration = Duration::from_millis(100);
/// How long a stopping worker waits for its clients' in-flight replies.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// What the tasks of one worker share, on its thread.
pub struct WorkerContext {
    /// The read buffer, lent to whichever client is reading, so an idle client holds none.
    pub input: RefCell<BytesMut>,
    pub parking: ParkingLot,
    pub sessions: LiveSessions,
    /// Changes once, when the proxy starts stopping (for the accept loops and parked clients).
    pub stopping: watch::Receiver<bool>,
    /// Set when the proxy starts stopping, before every session is woken to notice it.
    pub stop_requested: Cell<bool>,
}

/// Runs worker `id` until the proxy stops and its clients are drained. Worker 0 counts the
/// pool listeners in the stats, once, as nutcracker counts its one listener per pool.
pub fn run(
    id: usize,
    shared: Arc<Shared>,
    listeners: Vec<BoundListener>,
    stopping: watch::Receiver<bool>,
) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    LocalSet::new().block_on(&runtime, serve(id, shared, listeners, stopping))
}

async fn serve(
    id: usize,
    shared: Arc<Shared>,
    listeners: Vec<BoundListener>,
    stopping: watch::Receiver<bool>,
) -> io::Result<()> {
    let stats = Rc::new(RefCell::new(StatsTable::new(&shared.config)));
    let routers: Vec<Rc<PoolRouter>> = (0..shared.config.pools.len())
        .map(|pool| PoolRouter::new(pool, Arc::clone(&shared), Rc::clone(&stats)))
        .collect();
    let next_client = Rc::new(Cell::new(0u64));
    let context = Rc::new(WorkerContext {
        input: RefCell::new(BytesMut::new()),
        parking: ParkingLot::new()?,
        sessions: LiveSessions::default(),
        stopping: stopping.clone(),
        stop_requested: Cell::new(false),
    });
    let parking = tokio::task::spawn_local(ParkingLot::run(Rc::clone(&context)));
    tokio::task::spawn_local(LiveSessions::sweep(Rc::clone(&context)));
    let mut accepting = Vec::new();
    for (router, listener) in routers.iter().zip(listeners) {
        if id == 0 {
            let mut table = stats.borrow_mut();
            table.total_connections += 1;
            table.current_connections += 1;
        }
        if router.pool().preconnect {
            for server in 0..router.pool().servers.len() {
                router.backend(server, Protocol::Resp2).preconnect();
            }
        }
        accepting.push(tokio::task::spawn_local(accept(
            Rc::clone(router),
            Rc::clone(&context),
            listener,
            Rc::clone(&next_client),
            id,
        )));
    }
    tokio::task::spawn_local(publish_stats(
        id,
        Arc::clone(&shared),
        Rc::clone(&stats),
        routers.clone(),
    ));
    for task in accepting {
        if let Ok(Err(error)) = task.await {
            tracing::error!("worker {id}: accepting stopped: {error}");
        }
    }
    context.stop_requested.set(true);
    context.sessions.wake_all();
    if let Err(error) = parking.await {
        tracing::error!("worker {id}: parked clients: {error}");
    }
    let drained = tokio::time::timeout(DRAIN_LIMIT, async {
        while clients(&stats.borrow()) > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "worker {id}: {} clients still had replies in flight after {DRAIN_LIMIT:?}",
            clients(&stats.borrow())
        );
    }
    Ok(())
}

fn clients(table: &StatsTable) -> u64 {
    table
        .pools
        .iter()
        .map(|pool| pool.pool[PoolStat::ClientConnections as usize])
        .sum()
}

async fn publish_stats(
    slot: usize,
    shared: Arc<Shared>,
    stats: Rc<RefCell<StatsTable>>,
    routers: Vec<Rc<PoolRouter>>,
) {
    let mut interval = tokio::time::interval(STATS_PUBLISH_INTERVAL);
    let mut table = stats.borrow().clone();
    loop {
        interval.tick().await;
        table.clone_from(&stats.borrow());
        for router in &routers {
            router.publish_gauges(&mut table);
        }
        shared.stats.publish(slot, &table);
    }
}

/// Accepts clients until the proxy stops. A new client that has not sent anything yet is
/// parked until it does; one whose first request is already there is served at once.
async fn accept(
    router: Rc<PoolRouter>,
    context: Rc<WorkerContext>,
    listener: BoundListener,
    next_client: Rc<Cell<u64>>,
    worker: usize,
) -> io::Result<()> {
    let listener = listener.into_runtime()?;
    let keepalive = router.pool().tcpkeepalive;
    let workers = router.shared.workers as u64;
    let mut stopping = context.stopping.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.changed() => return Ok(()),
        };
        let socket = match accepted.and_then(|socket| socket.configure(keepalive)) {
            Ok(socket) => socket,
            Err(error) => {
                tracing::warn!("accept on pool '{}' failed: {error}", router.pool().name);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let sequence = next_client.get();
        next_client.set(sequence + 1);
        router.client_opened();
        let eager = socket.has_input();
        let client = ParkedClient {
            socket,
            router: Rc::clone(&router),
            state: ConnectionState::new(sequence * workers + worker as u64 + 1),
        };
        if eager {
            parking::resume(&context, client);
        } else {
            context.parking.park(&context, client);
        }
    }
}

/// Describes a pool's listen address for logs.
pub fn listen_text(listen: &Listen) -> String {
    match listen {
        Listen::Tcp { host, port } => format!("{host}:{port}"),
        Listen::Unix { path, .. } => path.display().to_string(),
    }
}
