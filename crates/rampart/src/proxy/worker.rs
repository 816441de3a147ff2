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
use tokio::sync::watch;
use tokio::task::LocalSet;

use super::Shared;
use super::client::IdleClient;
use super::context::WorkerContext;
use super::listener::BoundListener;
use super::local::ConnectionState;
use super::memory;
use super::parking::ParkingLot;
use super::pool::WorkerPool;
use super::registry::SessionRegistry;
use super::session;
use super::worker_stats::WorkerStats;
use crate::admin::stats::StatsTable;
use crate::log_limit::{self, limited};

/// How often a worker publishes its counters for the stats server.
const STATS_PUBLISH_INTERVAL: Duration = Duration::from_millis(100);
/// How often a worker does its housekeeping (see [`housekeeping`]).
const HOUSEKEEPING_PERIOD: Duration = Duration::from_secs(1);
/// How long a stopping worker waits for its clients' in-flight replies.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

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
    let stats = Rc::new(WorkerStats::new(&shared.config));
    let pools: Vec<Rc<WorkerPool>> = (0..shared.config.pools.len())
        .map(|pool| {
            Rc::new(WorkerPool::new(
                pool,
                Arc::clone(&shared),
                Rc::clone(&stats),
            ))
        })
        .collect();
    let next_client = Rc::new(Cell::new(0u64));
    let context = Rc::new(WorkerContext {
        input: RefCell::new(BytesMut::new()),
        parking: ParkingLot::new()?,
        sessions: SessionRegistry::default(),
        stopping: stopping.clone(),
        stop_requested: Cell::new(false),
    });
    let parking = tokio::task::spawn_local({
        let context = Rc::clone(&context);
        async move {
            let resume = |client| start_session(&context, client);
            context.parking.run(stopping, resume).await;
        }
    });
    tokio::task::spawn_local({
        let context = Rc::clone(&context);
        async move { context.sessions.sweep().await }
    });
    let mut accepting = Vec::new();
    for (pool, listener) in pools.iter().zip(listeners) {
        if id == 0 {
            stats.listener_opened();
        }
        if pool.pool().preconnect {
            pool.preconnect();
        }
        accepting.push(tokio::task::spawn_local(accept(
            Rc::clone(pool),
            Rc::clone(&context),
            listener,
            Rc::clone(&next_client),
            id,
        )));
    }
    tokio::task::spawn_local(housekeeping());
    tokio::task::spawn_local(publish_stats(
        id,
        Arc::clone(&shared),
        Rc::clone(&stats),
        pools.clone(),
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
        while stats.clients() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "worker {id}: {} clients still had replies in flight after {DRAIN_LIMIT:?}",
            stats.clients()
        );
    }
    Ok(())
}

async fn publish_stats(
    slot: usize,
    shared: Arc<Shared>,
    stats: Rc<WorkerStats>,
    pools: Vec<Rc<WorkerPool>>,
) {
    let mut interval = tokio::time::interval(STATS_PUBLISH_INTERVAL);
    let mut table = StatsTable::new(&shared.config);
    loop {
        interval.tick().await;
        stats.copy_into(&mut table);
        for pool in &pools {
            pool.publish_gauges(&mut table);
        }
        shared.stats.publish(slot, &table);
    }
}

/// Once a second: gives memory that bursts freed back to the operating system, and reports the
/// log lines the worker's rate limits suppressed.
async fn housekeeping() {
    let mut interval = tokio::time::interval(HOUSEKEEPING_PERIOD);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        memory::give_back_after_bursts();
        log_limit::flush();
    }
}

/// Gives a client a session, and parks it whenever the session hands it back idle. A client
/// the parking lot cannot take is served again at once.
fn start_session(context: &Rc<WorkerContext>, client: IdleClient) {
    let context = Rc::clone(context);
    tokio::task::spawn_local(async move {
        let mut client = client;
        while let Some(idle) = session::serve(Rc::clone(&context), client).await {
            match context.parking.park(idle) {
                Ok(()) => return,
                Err(refused) => client = refused,
            }
        }
    });
}

/// Accepts clients until the proxy stops. A new client that has not sent anything yet is
/// parked until it does; one whose first request is already there is served at once.
async fn accept(
    pool: Rc<WorkerPool>,
    context: Rc<WorkerContext>,
    listener: BoundListener,
    next_client: Rc<Cell<u64>>,
    worker: usize,
) -> io::Result<()> {
    let listener = listener.into_runtime()?;
    let _accepting = pool.shared().stats.accepting();
    let keepalive = pool.pool().tcpkeepalive;
    let workers = pool.shared().workers as u64;
    let mut stopping = context.stopping.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.changed() => return Ok(()),
        };
        let socket = match accepted.and_then(|socket| socket.configure(keepalive)) {
            Ok(socket) => socket,
            Err(error) => {
                limited!(
                    warn,
                    "accept failures",
                    "accept on pool '{}' failed: {error}",
                    pool.pool().name
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if !pool.admit_client() {
            limited!(
                warn,
                "clients refused at client_connections",
                "pool '{}': a new client was refused: it already has {} clients \
                 (client_connections)",
                pool.pool().name,
                pool.limits().max_clients.unwrap_or_default()
            );
            socket.refuse(b"-ERR max number of clients reached\r\n");
            continue;
        }
        let sequence = next_client.get();
        next_client.set(sequence + 1);
        let eager = socket.has_input();
        let client = IdleClient {
            socket,
            pool: Rc::clone(&pool),
            state: ConnectionState::new(sequence * workers + worker as u64 + 1),
            active_at: tokio::time::Instant::now(),
        };
        if eager {
            start_session(&context, client);
        } else if let Err(refused) = context.parking.park(client) {
            start_session(&context, refused);
        }
    }
}
