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
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use rampart_config::Listen;
use tokio::sync::watch;
use tokio::task::LocalSet;

use super::client::IdleClient;
use super::context::WorkerContext;
use super::listener::Listener;
use super::local::ConnectionState;
use super::memory;
use super::parking::ParkingLot;
use super::pool::WorkerPool;
use super::registry::SessionRegistry;
use super::session;
use super::worker_stats::WorkerStats;
use super::{Live, Shared};
use crate::admin::stats::StatsTable;
use crate::log_limit::{self, limited};

/// How often a worker publishes its counters for the stats server.
const STATS_PUBLISH_INTERVAL: Duration = Duration::from_millis(100);
/// How often a worker looks for a new configuration, and for a new topology without a request
/// to make it look (see [`follow_control_plane`]).
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
pub fn run(id: usize, live: Arc<Live>, stopping: watch::Receiver<bool>) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    LocalSet::new().block_on(&runtime, serve(id, live, stopping))
}

/// What a worker serves under one configuration: a view of each pool, and its counters.
struct Epoch {
    shared: Arc<Shared>,
    stats: Rc<WorkerStats>,
    pools: Vec<Rc<WorkerPool>>,
}

impl Epoch {
    fn new(shared: Arc<Shared>, stats: WorkerStats) -> Epoch {
        let stats = Rc::new(stats);
        let pools = (0..shared.config.pools.len())
            .map(|pool| {
                Rc::new(WorkerPool::new(
                    pool,
                    Arc::clone(&shared),
                    Rc::clone(&stats),
                ))
            })
            .collect();
        Epoch {
            shared,
            stats,
            pools,
        }
    }
}

/// A pool listener's accept loop: where it listens, its socket, and how to end it.
struct AcceptLoop {
    listen: Listen,
    listener: Rc<Listener>,
    retire: watch::Sender<bool>,
}

/// One worker: its tasks' shared context, the configuration it serves and its accept loops.
struct Worker {
    id: usize,
    live: Arc<Live>,
    context: Rc<WorkerContext>,
    epoch: RefCell<Rc<Epoch>>,
    accepting: RefCell<Vec<AcceptLoop>>,
    /// Views of pools that reloads retired and that some client still holds: each reload
    /// points them straight at the newest view, so that a view in between, once its clients
    /// moved on, is dropped with its connections.
    retired: RefCell<Vec<Weak<WorkerPool>>>,
    next_client: Cell<u64>,
}

async fn serve(id: usize, live: Arc<Live>, stopping: watch::Receiver<bool>) -> io::Result<()> {
    let shared = live.load_full();
    let stats = WorkerStats::new(&shared.config);
    let context = Rc::new(WorkerContext {
        input: RefCell::new(BytesMut::new()),
        parking: ParkingLot::new()?,
        sessions: SessionRegistry::default(),
        stopping: stopping.clone(),
        stop_requested: Cell::new(false),
    });
    let worker = Rc::new(Worker {
        id,
        live,
        context: Rc::clone(&context),
        epoch: RefCell::new(Rc::new(Epoch::new(shared, stats))),
        accepting: RefCell::new(Vec::new()),
        retired: RefCell::new(Vec::new()),
        next_client: Cell::new(0),
    });
    let parking = tokio::task::spawn_local(restarting(id, "the parking lot", {
        let context = Rc::clone(&context);
        let stopping = stopping.clone();
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
    let epoch = worker.epoch();
    worker.open_new_listeners(&epoch);
    for pool in epoch.pools.iter().filter(|pool| pool.pool().preconnect) {
        pool.preconnect();
    }
    tokio::task::spawn_local(restarting(id, "housekeeping", housekeeping));
    tokio::task::spawn_local(restarting(id, "following the control plane", {
        let worker = Rc::clone(&worker);
        move || follow_control_plane(Rc::clone(&worker))
    }));
    tokio::task::spawn_local(restarting(id, "the stats publisher", {
        let worker = Rc::clone(&worker);
        move || publish_stats(Rc::clone(&worker))
    }));
    let mut stopped = stopping.clone();
    // The sender lives until every worker has returned; an error means the same as a stop.
    let _ = stopped.wait_for(|stop| *stop).await;
    worker.accepting.borrow_mut().clear();
    context.stop_requested.set(true);
    context.sessions.wake_all();
    if let Err(error) = parking.await {
        tracing::error!("worker {id}: parked clients: {error}");
    }
    let drained = tokio::time::timeout(DRAIN_LIMIT, async {
        while worker.epoch().stats.clients() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "worker {id}: {} clients still had replies in flight after {DRAIN_LIMIT:?}",
            worker.epoch().stats.clients()
        );
    }
    Ok(())
}

impl Worker {
    /// The configuration the worker serves now.
    fn epoch(&self) -> Rc<Epoch> {
        Rc::clone(&self.epoch.borrow())
    }

    /// Starts accepting on the listeners bound for `epoch`'s configuration that are this
    /// worker's.
    fn open_new_listeners(self: &Rc<Self>, epoch: &Epoch) {
        let bound = epoch
            .shared
            .new_listeners
            .get(self.id)
            .map(|listeners| {
                std::mem::take(
                    &mut *listeners
                        .lock()
                        .unwrap_or_else(|poison| poison.into_inner()),
                )
            })
            .unwrap_or_default();
        for (index, bound) in bound {
            let Some(pool) = epoch.pools.get(index) else {
                continue;
            };
            match bound.into_runtime() {
                Ok(listener) => {
                    if self.id == 0 {
                        epoch.stats.listener_opened();
                    }
                    self.start_accepting(pool, Rc::new(listener));
                }
                Err(error) => tracing::error!(
                    "worker {}: pool '{}' cannot accept: {error}",
                    self.id,
                    pool.pool().name
                ),
            }
        }
    }

    /// Runs an accept loop for `pool` on `listener`.
    fn start_accepting(self: &Rc<Self>, pool: &Rc<WorkerPool>, listener: Rc<Listener>) {
        let (retire, retired) = watch::channel(false);
        let task = {
            let (worker, pool, listener) = (Rc::clone(self), Rc::clone(pool), Rc::clone(&listener));
            move || {
                accept(
                    Rc::clone(&worker),
                    Rc::clone(&pool),
                    Rc::clone(&listener),
                    retired.clone(),
                )
            }
        };
        tokio::task::spawn_local(restarting(self.id, "an accept loop", task));
        self.accepting.borrow_mut().push(AcceptLoop {
            listen: pool.pool().listen.clone(),
            listener,
            retire,
        });
    }

    /// Switches to the configuration a reload published, if there is a newer one: every pool
    /// gets a new view, the old ones pointing their clients at it; a listener whose address
    /// stays is kept, the others close, and the new ones open. Every session is woken to
    /// move to the new configuration.
    fn follow_reload(self: &Rc<Self>) {
        let old = self.epoch();
        if self.live.load().generation == old.shared.generation {
            return;
        }
        let shared = self.live.load_full();
        let stats = old.stats.carried_over(&old.shared.config, &shared.config);
        let epoch = Rc::new(Epoch::new(shared, stats));
        let mut retired = self.retired.borrow_mut();
        retired.extend(old.pools.iter().map(Rc::downgrade));
        retired.retain(|pool| pool.strong_count() > 0);
        for pool in retired.iter().filter_map(Weak::upgrade) {
            let name = &pool.pool().name;
            let latest = epoch.pools.iter().find(|next| next.pool().name == *name);
            pool.retire(latest.cloned());
        }
        drop(retired);
        *self.epoch.borrow_mut() = Rc::clone(&epoch);
        let mut previous = std::mem::take(&mut *self.accepting.borrow_mut());
        for accept_loop in &previous {
            let _ = accept_loop.retire.send(true);
        }
        for pool in &epoch.pools {
            if let Some(at) = previous
                .iter()
                .position(|kept| kept.listen == pool.pool().listen)
            {
                let kept = previous.swap_remove(at);
                self.start_accepting(pool, kept.listener);
            }
        }
        if self.id == 0 {
            for _ in &previous {
                epoch.stats.listener_closed();
            }
        }
        drop(previous);
        self.open_new_listeners(&epoch);
        for pool in epoch.pools.iter().filter(|pool| pool.pool().preconnect) {
            pool.preconnect();
        }
        self.context.parking.follow_reload();
        self.context.sessions.wake_all();
        epoch.shared.workers_serving.fetch_add(1, Ordering::Release);
        tracing::debug!(
            "worker {}: serving configuration {} from now on",
            self.id,
            epoch.shared.generation
        );
    }
}

async fn publish_stats(worker: Rc<Worker>) {
    let mut interval = tokio::time::interval(STATS_PUBLISH_INTERVAL);
    let mut table = StatsTable::new(&worker.epoch().shared.config);
    loop {
        interval.tick().await;
        let epoch = worker.epoch();
        epoch.stats.copy_into(&mut table);
        for pool in &epoch.pools {
            pool.publish_gauges(&mut table);
        }
        epoch
            .shared
            .stats
            .publish(worker.id, &epoch.shared.config, &table);
    }
}

/// Every 100 ms: switches to a configuration a reload published, and takes the pools' latest
/// topology, as every request also does. A worker whose clients send nothing (a blocked
/// BLPOP, a subscriber, a transaction waiting for its client) must still follow a failover:
/// its held connections to a master that hangs, rather than closing its sockets, end only when
/// the worker sees that the master moved.
async fn follow_control_plane(worker: Rc<Worker>) {
    let mut interval = tokio::time::interval(TOPOLOGY_CHECK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        worker.follow_reload();
        for pool in &worker.epoch().pools {
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

/// Accepts clients until the proxy stops or a reload retires the loop. A new client that has
/// not sent anything yet is parked until it does; one whose first request is already there is
/// served at once.
async fn accept(
    worker: Rc<Worker>,
    pool: Rc<WorkerPool>,
    listener: Rc<Listener>,
    mut retired: watch::Receiver<bool>,
) {
    let context = &worker.context;
    let _accepting = pool.shared().stats.accepting();
    let keepalive = pool.pool().tcpkeepalive;
    let workers = pool.shared().workers as u64;
    let mut stopping = context.stopping.clone();
    if *retired.borrow() {
        return;
    }
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.changed() => return,
            _ = retired.changed() => return,
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
        let sequence = worker.next_client.get();
        worker.next_client.set(sequence + 1);
        let eager = socket.has_input();
        let client = IdleClient {
            socket,
            pool: Rc::clone(&pool),
            state: ConnectionState::new(sequence * workers + worker.id as u64 + 1),
            active_at: tokio::time::Instant::now(),
        };
        if eager {
            start_session(context, client);
        } else if let Err(refused) = context.parking.park(client) {
            start_session(context, refused);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::proxy::listener::{BoundListener, bind_tcp};

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
        let board = Arc::new(crate::admin::stats::StatsBoard::new(
            &config,
            2,
            crate::vrrp::board_for(None),
        ));
        let shared = Shared::starting(
            config,
            board,
            events,
            1,
            16 * 1024,
            vec![vec![(0, listener)]],
        );
        let live = Arc::new(Live::from_pointee(shared));
        let (stop, stopping) = watch::channel(false);
        on_worker(async move {
            let worker = tokio::task::spawn_local(serve(0, live, stopping));
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
