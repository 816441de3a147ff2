//! Starting and stopping the proxy: logging, daemonising, the pid file, binding every socket,
//! the worker threads, the control plane (topology and signals), the stats server and, with
//! `--vrrp`, the VRRP speaker, and the admin endpoint (`--admin`). SIGTERM or SIGINT makes a VRRP master hand its virtual IP over
//! (priority 0), stops accepting, lets in-flight replies reach their clients, removes the pid
//! file and exits 0; SIGHUP reopens the log; SIGTTIN/SIGTTOU raise or lower its level;
//! SIGUSR1 reloads the configuration file; SIGUSR2 and SIGALRM are logged and otherwise
//! ignored; SIGPIPE is ignored.
//! Under systemd, READY=1 follows the start of every thread and STOPPING=1 the stop signal.

use std::process::ExitCode;
use std::sync::Arc;
use std::task::Poll;
use std::thread;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, watch};

use crate::admin;
use crate::admin::endpoint::{self, Endpoint};
use crate::admin::stats::StatsBoard;
use crate::cli::args::{AdminAddress, ProxyArgs};
use crate::daemon::{self, PidFile};
use crate::health::Probe;
use crate::logging::Log;
use crate::proxy::{self, Live, Shared};
use crate::service;
use crate::topology::migration;
use crate::topology::reload::{self, ReloadRequest};
use crate::vrrp::{self, Vrrp, VrrpError};

/// Runs the proxy with nutcracker's flags and `workers` threads; returns the exit status.
pub fn run(args: &ProxyArgs, workers: usize) -> ExitCode {
    let fail = |message: String| {
        tracing::error!("{message}");
        eprintln!("rampart: {message}");
        ExitCode::FAILURE
    };
    let config = match rampart_config::load(&args.conf_file) {
        Ok(config) => config,
        Err(error) => {
            return fail(format!(
                "configuration file '{}' syntax is invalid\n{error}",
                args.conf_file.display()
            ));
        }
    };
    let resumed = match migration::resume(config) {
        Ok(resumed) => resumed,
        Err(error) => {
            return fail(format!(
                "cannot read the migration saved in '{}': {error}; remove it to start without \
                 finishing that migration (keys it had not moved yet would read as missing)",
                migration::state_file(&args.conf_file).display()
            ));
        }
    };
    let config = Arc::new(resumed.config);
    let vrrp_config = match args.vrrp.as_deref().map(rampart_config::keepalived::load) {
        None => None,
        Some(Ok(vrrp_config)) => Some(vrrp_config),
        Some(Err(error)) => {
            return fail(format!(
                "VRRP configuration file '{}' syntax is invalid\n{error}",
                error.file.display()
            ));
        }
    };
    if args.daemonize
        && let Err(error) = daemon::daemonize()
    {
        return fail(format!("cannot daemonize: {error}"));
    }
    let log = match Log::install(args.verbose, args.output.as_deref(), args.log_format) {
        Ok(log) => log,
        Err(error) => return fail(format!("cannot open log file: {error}")),
    };
    log_panics();
    let (control_runtime, signals) = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .and_then(|runtime| {
            let signals = Signals::install(&runtime)?;
            Ok((runtime, signals))
        }) {
        Ok(control) => control,
        Err(error) => return fail(format!("cannot install signal handlers: {error}")),
    };
    let _pid_file = match args.pid_file.as_deref().map(PidFile::create).transpose() {
        Ok(pid_file) => pid_file,
        Err(error) => return fail(format!("cannot write pid file: {error}")),
    };
    tracing::info!(
        "rampart-{} started on pid {} with {workers} workers",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    );
    let stats_listener = match admin::server::bind(&args.stats_addr, args.stats_port) {
        Ok(listener) => listener,
        Err(error) => {
            return fail(format!(
                "cannot bind stats server to {}:{}: {error}",
                args.stats_addr, args.stats_port
            ));
        }
    };
    let admin_listener = match args.admin {
        AdminAddress::Off => None,
        AdminAddress::At(address) => match endpoint::bind(address) {
            Ok(listener) => Some(listener),
            Err(error) => return fail(format!("cannot bind admin endpoint to {address}: {error}")),
        },
    };
    let listeners = match proxy::bind_listeners(&config, workers, |_| true) {
        Ok(listeners) => listeners,
        Err(error) => return fail(error.to_string()),
    };
    let vrrp_board = vrrp::board_for(vrrp_config.as_ref());
    let vrrp = match &vrrp_config {
        Some(vrrp_config) => {
            for warning in &vrrp_config.warnings {
                tracing::warn!("{warning}");
            }
            match Vrrp::prepare(vrrp_config, &vrrp_board).and_then(|vrrp| {
                Probe::new(&config)
                    .map(|probe| (vrrp, probe))
                    .map_err(VrrpError::from)
            }) {
                Ok(prepared) => Some(prepared),
                Err(error) => return fail(error.to_string()),
            }
        }
        None => None,
    };
    let board = Arc::new(StatsBoard::new(&config, workers + 1, vrrp_board));
    let (events, event_receiver) = mpsc::unbounded_channel();
    let (reloads, reload_receiver) = mpsc::unbounded_channel();
    let (stop, stopping) = watch::channel(false);
    let live = Arc::new(Live::from_pointee(Shared::starting(
        Arc::clone(&config),
        board,
        events,
        workers,
        args.mbuf_size as usize,
        listeners,
    )));
    for (pool, ring) in resumed.rings {
        live.load().topology.set_migration(pool, Some(ring));
    }
    for pool in &resumed.started {
        tracing::info!(
            "pool '{pool}': resuming the migration saved in '{}'",
            migration::state_file(&args.conf_file).display()
        );
    }
    if let Err(error) = admin::server::spawn(stats_listener, Arc::clone(&live)) {
        return fail(format!("cannot start the stats server: {error}"));
    }
    if let Some(listener) = admin_listener {
        let admin = Endpoint::new(Arc::clone(&live), reloads.clone(), stopping.clone());
        if let Err(error) = endpoint::spawn(listener, admin) {
            return fail(format!("cannot start the admin endpoint: {error}"));
        }
        tracing::info!("admin endpoint listening on {}", args.admin);
    }
    for pool in &config.pools {
        tracing::info!("pool '{}' listening on {}", pool.name, pool.listen);
    }
    proxy::memory::configure();
    let mut threads = Vec::new();
    for id in 0..workers {
        let (live, stopping) = (Arc::clone(&live), stopping.clone());
        let spawned = thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || proxy::worker::run(id, live, stopping));
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(error) => return fail(format!("cannot start worker {id}: {error}")),
        }
    }
    let vrrp_thread =
        match vrrp.map(|(vrrp, probe)| vrrp.spawn(probe, Arc::clone(&live), stopping.clone())) {
            None => None,
            Some(Ok(handle)) => Some(handle),
            Some(Err(error)) => return fail(format!("cannot start the VRRP thread: {error}")),
        };
    let control = thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            let local = tokio::task::LocalSet::new();
            local.spawn_local(reload::run(live, workers, event_receiver, reload_receiver));
            local.block_on(&control_runtime, signals.handle(log, stop, reloads));
        });
    if let Err(error) = control {
        return fail(format!("cannot start the control thread: {error}"));
    }
    service::ready();
    let mut status = ExitCode::SUCCESS;
    for handle in threads {
        if !matches!(handle.join(), Ok(Ok(()))) {
            status = ExitCode::FAILURE;
        }
    }
    if let Some(handle) = vrrp_thread
        && handle.join().is_err()
    {
        status = ExitCode::FAILURE;
    }
    tracing::info!("rampart stopped");
    status
}

/// Logs every panic besides printing it to stderr (which a daemon has closed): a panic in one
/// client's task ends that task and the worker goes on, so the log is where it shows.
fn log_panics() {
    let print = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = thread::current();
        tracing::error!("thread '{}' {info}", thread.name().unwrap_or("unnamed"));
        print(info);
    }));
}

/// What the proxy does with a signal it catches.
#[derive(Clone, Copy)]
enum Reaction {
    /// SIGTERM, SIGINT: stop after the in-flight replies.
    Stop,
    /// SIGHUP: reopen the log file.
    Reopen,
    /// SIGTTIN: raise the log level.
    Louder,
    /// SIGTTOU: lower the log level.
    Quieter,
    /// SIGUSR1: reload the configuration file (a no-op in nutcracker).
    Reload,
    /// SIGUSR2 (a no-op in nutcracker too) and SIGALRM: logged, nothing else.
    Ignore,
}

/// The signals the proxy catches, registered before the pid file exists so that a signal
/// sent as soon as the pid is known is never lost or fatal. SIGPIPE is not among them: the
/// Rust runtime ignores it from the start, as nutcracker does, so a write to a client that
/// left is an EPIPE error, never a signal to handle (or to log once per client).
const CAUGHT: [(libc::c_int, &str, Reaction); 8] = [
    (libc::SIGTERM, "SIGTERM", Reaction::Stop),
    (libc::SIGINT, "SIGINT", Reaction::Stop),
    (libc::SIGHUP, "SIGHUP", Reaction::Reopen),
    (libc::SIGTTIN, "SIGTTIN", Reaction::Louder),
    (libc::SIGTTOU, "SIGTTOU", Reaction::Quieter),
    (libc::SIGUSR1, "SIGUSR1", Reaction::Reload),
    (libc::SIGUSR2, "SIGUSR2", Reaction::Ignore),
    (libc::SIGALRM, "SIGALRM", Reaction::Ignore),
];

/// The registered handlers of [`CAUGHT`], in its order.
struct Signals {
    handlers: Vec<Signal>,
}

impl Signals {
    fn install(runtime: &tokio::runtime::Runtime) -> std::io::Result<Signals> {
        let _context = runtime.enter();
        let handlers = CAUGHT
            .iter()
            .map(|&(number, _, _)| signal(SignalKind::from_raw(number)))
            .collect::<std::io::Result<_>>()?;
        Ok(Signals { handlers })
    }

    /// The next signal to arrive: its number, name and what to do.
    async fn next(&mut self) -> (libc::c_int, &'static str, Reaction) {
        std::future::poll_fn(|context| {
            for (handler, &caught) in self.handlers.iter_mut().zip(&CAUGHT) {
                if handler.poll_recv(context).is_ready() {
                    return Poll::Ready(caught);
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Reacts to signals, each logged with nutcracker's `signal N (NAME) received` line,
    /// until a stop is requested.
    async fn handle(
        mut self,
        log: Log,
        stop: watch::Sender<bool>,
        reloads: mpsc::UnboundedSender<ReloadRequest>,
    ) {
        loop {
            let (number, name, reaction) = self.next().await;
            let received = format!("signal {number} ({name}) received");
            match reaction {
                Reaction::Stop => {
                    tracing::info!("{received}, stopping after in-flight replies");
                    break;
                }
                Reaction::Reopen => {
                    tracing::info!("{received}, reopening log file");
                    if let Err(error) = log.reopen() {
                        tracing::error!("reopening the log file failed: {error}");
                    }
                }
                Reaction::Louder => {
                    tracing::info!("{received}, up logging level");
                    tracing::info!("up log level to {}", log.step_level(true));
                }
                Reaction::Quieter => {
                    tracing::info!("{received}, down logging level");
                    tracing::info!("down log level to {}", log.step_level(false));
                }
                Reaction::Reload => {
                    tracing::info!("{received}, reloading the configuration");
                    let _ = reloads.send(ReloadRequest {
                        rebalance: false,
                        reply: None,
                    });
                }
                Reaction::Ignore => tracing::info!("{received}, ignored"),
            }
        }
        service::stopping();
        let _ = stop.send(true);
    }
}
