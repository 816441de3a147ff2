//! A worker thread: its own single-threaded runtime, its own listener per pool (SO_REUSEPORT
//! spreads clients over workers), its own backend connections, its own parked clients, and
//! its own stats table, which it publishes every 100 ms. Nothing on the request path is
//! shared with another thread.
//!
//! A panic in one task costs that task only: the runtime catches it, and the worker's own
//! tasks (accept loops, parking lot, sweep, stats) are run again by [`restarting`].

use std::cell::{Cell, RefCell};
use std::future::Future;
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
use super::listener::{BoundListener, Listener};
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
/// How often a worker looks for a new topology without a request to make it look (see
/// [`follow_topology`]).
const TOPOLOGY_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// How often a worker does its housekeeping (see [`housekeeping`]).
const HOUSEKEEPING_PERIOD: Duration = Duration::from_secs(1);
/// How long a stopping worker waits for its clients' in-flight replies.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// How long a worker task that panicked waits before it runs again, so that a task that
/// panics at once every time cannot spin.
const RESTART_DELAY: Duration = Duration::from_millis(100);

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
    let parking = tokio::task::spawn_local(restarting(id, "the parking lot", {
        let context = Rc::clone(&context);
        move || {
            let (context, stopping) = (Rc::clone(&context), stopping.clone());
            async move {
                let resume = |client| start_session(&context, client);
                context.parking.run(stopping, resume).await;
            }
        }
    }));
    tokio::task::spawn_local(restarting(id, "the idle sweep", {
        let context = Rc::clone(&context);
        move || {
            let context = Rc::clone(&context);
            async move { context.sessions.sweep().await }
        }
    }));
    let mut accepting = Vec::new();
    for (pool, listener) in pools.iter().zip(listeners) {
        if id == 0 {
            stats.listener_opened();
        }
        if pool.pool().preconnect {
            pool.preconnect();
        }
        let listener = match listener.into_runtime() {
            Ok(listener) => Rc::new(listener),
            Err(error) => {
                tracing::error!("worker {id}: accepting stopped: {error}");
                continue;
            }
        };
        let (pool, context, next_client) = (
            Rc::clone(pool),
            Rc::clone(&context),
            Rc::clone(&next_client),
        );
        accepting.push(tokio::task::spawn_local(restarting(
            id,
            "an accept loop",
            move || {
                accept(
                    Rc::clone(&pool),
                    Rc::clone(&context),
                    Rc::clone(&listener),
                    Rc::clone(&next_client),
                    id,
                )
            },
        )));
    }
    tokio::task::spawn_local(restarting(id, "housekeeping", housekeeping));
    tokio::task::spawn_local(restarting(id, "following the topology", {
        let pools = pools.clone();
        move || follow_topology(pools.clone())
    }));
    tokio::task::spawn_local(restarting(id, "the stats publisher", {
        let (shared, stats, pools) = (Arc::clone(&shared), Rc::clone(&stats), pools.clone());
        move || publish_stats(id, Arc::clone(&shared), Rc::clone(&stats), pools.clone())
    }));
    for task in accepting {
        // An accept loop ends when the proxy stops; a panic in it was already restarted.
        let _ = task.await;
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

/// Every 100 ms: takes the pools' latest topology, as every request also does. A worker whose
/// clients send nothing (a blocked BLPOP, a subscriber, a transaction waiting for its client)
/// must still follow a failover: its held connections to a master that hangs, rather than
/// closing its sockets, end only when the worker sees that the master moved.
async fn follow_topology(pools: Vec<Rc<WorkerPool>>) {
    let mut interval = tokio::time::interval(TOPOLOGY_CHECK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        for pool in &pools {
            pool.refresh();
        }
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

/// Runs the task `make` builds until it returns, building it again whenever it panics: a
/// worker's own tasks serve all its clients and must outlive a bug that panics one of them.
/// `None` when the runtime cancelled it.
async fn restarting<T, F>(worker: usize, what: &str, mut make: impl FnMut() -> F) -> Option<T>
where
    T: 'static,
    F: Future<Output = T> + 'static,
{
    loop {
        match tokio::task::spawn_local(make()).await {
            Ok(done) => return Some(done),
            Err(error) if error.is_panic() => {
                tracing::error!("worker {worker}: {what} panicked ({error}); running it again");
                tokio::time::sleep(RESTART_DELAY).await;
            }
            Err(_) => return None,
        }
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
    listener: Rc<Listener>,
    next_client: Rc<Cell<u64>>,
    worker: usize,
) {
    let _accepting = pool.shared().stats.accepting();
    let keepalive = pool.pool().tcpkeepalive;
    let workers = pool.shared().workers as u64;
    let mut stopping = context.stopping.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.changed() => return,
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::proxy::listener::bind_tcp;
    use crate::topology::Topology;

    /// Runs `test` on a current-thread runtime inside a `LocalSet`, as a worker runs.
    fn on_worker<F: Future>(test: F) -> F::Output {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        LocalSet::new().block_on(&runtime, test)
    }

    #[test]
    fn a_task_that_panics_holding_a_borrow_costs_only_itself() {
        on_worker(async {
            let shared = Rc::new(RefCell::new(Vec::new()));
            let neighbour = tokio::task::spawn_local({
                let shared = Rc::clone(&shared);
                async move {
                    for request in 0..20 {
                        shared.borrow_mut().push(request);
                        tokio::task::yield_now().await;
                    }
                }
            });
            let panicking = tokio::task::spawn_local({
                let shared = Rc::clone(&shared);
                async move {
                    tokio::task::yield_now().await;
                    let _held = shared.borrow_mut();
                    panic!("a bug in one client's session");
                }
            });
            assert!(panicking.await.unwrap_err().is_panic());
            neighbour.await.unwrap();
            // Unwinding released the borrow: RefCell has no poisoning.
            assert_eq!(*shared.borrow(), (0..20).collect::<Vec<_>>());
        });
    }

    /// Sends PING on `client` and reads the answer.
    async fn ping(client: &mut TcpStream) -> Vec<u8> {
        client.write_all(b"PING\r\n").await.unwrap();
        let mut answer = vec![0; 7];
        client.read_exact(&mut answer).await.unwrap();
        answer
    }

    #[test]
    fn a_panic_beside_a_session_leaves_the_worker_serving() {
        let config = rampart_config::parse(
            "alpha:\n  listen: 127.0.0.1:1\n  redis: true\n  servers:\n   - 127.0.0.1:1:1\n",
            Path::new("test.yml"),
        )
        .map(Arc::new)
        .unwrap();
        let listener = bind_tcp("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let BoundListener::Tcp(socket) = &listener else {
            unreachable!("bound over TCP")
        };
        let address = socket.local_addr().unwrap();
        let (events, _event_receiver) = tokio::sync::mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            stats: Arc::new(crate::admin::stats::StatsBoard::new(
                &config,
                2,
                crate::vrrp::board_for(None),
            )),
            topology: Arc::new(Topology::new(&config)),
            config,
            events,
            workers: 1,
            started: Instant::now(),
            mbuf_size: 16 * 1024,
            client_counts: vec![std::sync::atomic::AtomicUsize::new(0)],
        });
        let (stop, stopping) = watch::channel(false);
        on_worker(async move {
            let worker = tokio::task::spawn_local(serve(0, shared, vec![listener], stopping));
            let mut session = TcpStream::connect(address).await.unwrap();
            assert_eq!(ping(&mut session).await, b"+PONG\r\n");
            let panicked = tokio::task::spawn_local(async { panic!("a bug in another task") });
            assert!(panicked.await.unwrap_err().is_panic());
            assert_eq!(ping(&mut session).await, b"+PONG\r\n");
            let mut newcomer = TcpStream::connect(address).await.unwrap();
            assert_eq!(ping(&mut newcomer).await, b"+PONG\r\n");
            stop.send(true).unwrap();
            drop((session, newcomer));
            worker.await.unwrap().unwrap();
        });
    }

    #[test]
    fn a_worker_task_that_panics_runs_again() {
        on_worker(async {
            let runs = Rc::new(Cell::new(0));
            let answer = restarting(0, "a test task", || {
                let runs = Rc::clone(&runs);
                async move {
                    runs.set(runs.get() + 1);
                    if runs.get() == 1 {
                        panic!("the first run panics");
                    }
                    42
                }
            })
            .await;
            assert_eq!((answer, runs.get()), (Some(42), 2));
        });
    }
}
