//! `rampart demo`: starts, on this machine, the architecture rampart exists for (two shards of
//! a master and a replica, three sentinels, and rampart in front following them; as root, two
//! rampart nodes sharing a virtual IP in network namespaces), a little traffic through it, and
//! a live view in which masters and proxies can be killed and restarted. `--kill` acts on a
//! running demo from elsewhere. SIGINT or SIGTERM removes everything it made.
//!
//! The parts: `plan` (the topology and every config text, pure), `start` (bringing it up and
//! tearing it down), `processes`, `netns`, `state` (the state file), `observe` (reading the
//! sentinels and stats), `view` (rendering, pure), `control` (keys and `--kill`), `traffic`
//! (the built-in client), `resp` (a small client) and `error`.

mod control;
mod error;
mod netns;
mod observe;
mod plan;
mod processes;
mod resp;
mod start;
mod state;
mod traffic;
mod view;

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};

use super::args::DemoArgs;
use control::{Action, RawTerminal};
use error::DemoError;
use start::Demo;
use view::Snapshot;

/// How often the view reads the sentinels and the stats.
const REFRESH: Duration = Duration::from_secs(1);
/// How often a plain status line is printed when there is no terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(3);
/// How many event lines the terminal view keeps.
const EVENTS_SHOWN: usize = 8;

/// Runs `rampart demo` (or its `--kill`); returns the exit status.
pub fn run(args: &DemoArgs) -> ExitCode {
    if !args.kill.is_empty() {
        let Some(action) = control::parse_kill(&args.kill) else {
            eprintln!("rampart demo: --kill takes `master-of SHARD` (1 or 2) or `proxy`");
            return ExitCode::FAILURE;
        };
        return match control::kill_from_outside(&action) {
            Ok(done) => {
                say(&done);
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("rampart demo: {error}");
                ExitCode::FAILURE
            }
        };
    }
    match demo() {
        Ok(()) => ExitCode::SUCCESS,
        Err(DemoError::Interrupted) => {
            say("rampart demo: stopped while starting; everything it started is removed");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("rampart demo: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a line on stdout; a closed stdout is not an error worth stopping for.
fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

fn demo() -> Result<(), DemoError> {
    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(Arc::clone(&stop)).map_err(DemoError::Signals)?;
    let mut demo = Demo::start(Arc::clone(&stop))?;
    if let Some(reason) = demo.loopback_reason {
        say(&format!(
            "rampart demo: {reason}, so one proxy runs on loopback, without namespaces or a virtual IP"
        ));
    }
    for line in demo.describe() {
        say(&line);
    }
    let connect = demo.plan.connect_address().to_string();
    say(&view::connect_line(&connect));
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let _raw = if terminal {
        RawTerminal::enter().ok()
    } else {
        None
    };
    let keys = if terminal {
        control::read_keys().ok()
    } else {
        None
    };
    live(&mut demo, &connect, keys.as_ref(), terminal)?;
    say("rampart demo: stopping; removing every process, namespace and file it made");
    drop(demo);
    Ok(())
}

/// SIGINT and SIGTERM set `stop`, from a thread of their own.
fn watch_signals(stop: Arc<AtomicBool>) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut interrupt, mut terminate) = {
        let _context = runtime.enter();
        (
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        )
    };
    std::thread::Builder::new()
        .name("demo-signals".into())
        .spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            });
            stop.store(true, Ordering::SeqCst);
        })?;
    Ok(())
}

/// The live view and its keys, until a signal or `q`.
fn live(
    demo: &mut Demo,
    connect: &str,
    keys: Option<&Receiver<Action>>,
    terminal: bool,
) -> Result<(), DemoError> {
    let observer = demo.observer();
    let header = demo.describe();
    let started = Instant::now();
    let traffic = |demo: &Demo| {
        (
            demo.counts.ok.load(Ordering::SeqCst),
            demo.counts.errors.load(Ordering::SeqCst),
        )
    };
    let (ok, errors) = traffic(demo);
    let mut last: Snapshot = observer.snapshot(ok, errors);
    let mut last_at = Instant::now();
    let mut printed_at: Option<Instant> = None;
    let mut events: VecDeque<String> = VecDeque::new();
    let note = |events: &mut VecDeque<String>, text: String| {
        let line = format!("[{:7.1}s] {text}", started.elapsed().as_secs_f64());
        if !terminal {
            say(&line);
        }
        events.push_back(line);
        while events.len() > EVENTS_SHOWN {
            events.pop_front();
        }
    };
    while !demo.stop.load(Ordering::SeqCst) {
        let action = match keys {
            Some(keys) => match keys.recv_timeout(Duration::from_millis(100)) {
                Ok(action) => Some(action),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(100));
                    None
                }
            },
            None => {
                std::thread::sleep(Duration::from_millis(100));
                None
            }
        };
        match action {
            Some(Action::Quit) => break,
            Some(Action::Restart) => {
                let restarted = demo.processes.restart_dead()?;
                if restarted.is_empty() {
                    note(&mut events, "nothing to restart".into());
                } else {
                    demo.write_state()?;
                    note(&mut events, format!("restarted {}", restarted.join(", ")));
                }
            }
            Some(action) => match control::victim(&demo.state(), &action) {
                Ok(entry) if demo.processes.kill(entry.pid) => note(
                    &mut events,
                    format!(
                        "killed {} ({}, pid {})",
                        entry.label, entry.address, entry.pid
                    ),
                ),
                Ok(entry) => note(&mut events, format!("{} is not running", entry.label)),
                Err(error) => note(&mut events, error.to_string()),
            },
            None => {}
        }
        for ended in demo.processes.reap() {
            note(&mut events, format!("{ended} exited"));
        }
        if last_at.elapsed() < REFRESH {
            continue;
        }
        let (ok, errors) = traffic(demo);
        let now = observer.snapshot(ok, errors);
        let ops = view::ops_per_second(&last, &now, last_at.elapsed().as_secs_f64());
        for change in view::changes(&last, &now) {
            note(&mut events, change);
        }
        (last, last_at) = (now, Instant::now());
        if terminal {
            let screen = view::screen(
                &header,
                connect,
                &last,
                ops,
                events.make_contiguous(),
                last.proxies.len() > 1,
            );
            let _ = std::io::stdout().write_all(view::redraw(&screen).as_bytes());
            let _ = std::io::stdout().flush();
        } else if printed_at.is_none_or(|at| at.elapsed() >= PLAIN_EVERY) {
            say(&view::status_line(&last, ops));
            printed_at = Some(Instant::now());
        }
    }
    Ok(())
}
