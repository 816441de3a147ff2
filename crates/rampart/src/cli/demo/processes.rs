//! The demo's child processes: redis-server, redis-sentinel and rampart itself, each started
//! from a [`Spec`] kept for restarting it, with its output in its own log file. They are
//! killed by PID (never by name): on request (`kill -9`, as a crash would), and all of them
//! when the demo stops. Each child also gets SIGKILL from the kernel if the demo itself dies.

use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use super::error::DemoError;

/// What a process is, for the view and for `--kill`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Redis,
    Sentinel,
    Proxy,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Redis => "redis",
            Kind::Sentinel => "sentinel",
            Kind::Proxy => "proxy",
        }
    }
}

/// How to start one process, and where it listens.
#[derive(Debug, Clone)]
pub struct Spec {
    /// `redis shard1/a`, `sentinel 2`, `proxy a`.
    pub label: String,
    pub kind: Kind,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub log: PathBuf,
    pub address: SocketAddr,
}

/// A started process; `child` is gone once it has exited and been reaped.
pub struct Managed {
    pub spec: Spec,
    pub pid: u32,
    child: Option<Child>,
}

impl Managed {
    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

/// Every process the demo started.
#[derive(Default)]
pub struct Processes {
    pub list: Vec<Managed>,
}

impl Processes {
    /// Starts a process and waits until `ready` (polled every 50 ms) holds, for up to
    /// `limit`, giving up early when it exits or `stop` is set.
    pub fn start(
        &mut self,
        spec: Spec,
        limit: Duration,
        stop: &AtomicBool,
        ready: impl Fn() -> bool,
    ) -> Result<(), DemoError> {
        let managed = spawn(spec)?;
        let (label, log) = (managed.spec.label.clone(), managed.spec.log.clone());
        self.list.push(managed);
        self.wait(&label, &log, limit, stop, ready)
    }

    /// Waits until `ready` (polled every 50 ms) holds, for up to `limit`, giving up early
    /// when one of the processes exits or `stop` is set; `what` and `log` name it in errors.
    pub fn wait(
        &mut self,
        what: &str,
        log: &Path,
        limit: Duration,
        stop: &AtomicBool,
        ready: impl Fn() -> bool,
    ) -> Result<(), DemoError> {
        let deadline = Instant::now() + limit;
        loop {
            if ready() {
                return Ok(());
            }
            if stop.load(Ordering::SeqCst) {
                return Err(DemoError::Interrupted);
            }
            if let Some(ended) = self.reap().into_iter().next() {
                return Err(DemoError::Exited {
                    what: ended,
                    log: log.to_path_buf(),
                });
            }
            if Instant::now() >= deadline {
                return Err(DemoError::NotReady {
                    what: what.to_string(),
                    log: log.to_path_buf(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Reaps the processes that exited; returns their labels.
    pub fn reap(&mut self) -> Vec<String> {
        let mut ended = Vec::new();
        for managed in &mut self.list {
            let exited = managed
                .child
                .as_mut()
                .is_some_and(|child| !matches!(child.try_wait(), Ok(None)));
            if exited {
                managed.child = None;
                ended.push(managed.spec.label.clone());
            }
        }
        ended
    }

    /// Starts again every process that is not running; returns their labels.
    pub fn restart_dead(&mut self) -> Result<Vec<String>, DemoError> {
        let mut restarted = Vec::new();
        for managed in &mut self.list {
            if !managed.running() {
                *managed = spawn(managed.spec.clone())?;
                restarted.push(managed.spec.label.clone());
            }
        }
        Ok(restarted)
    }

    /// kill -9 of the process with this PID, if it is one of ours and running.
    pub fn kill(&mut self, pid: u32) -> bool {
        let Some(managed) = self
            .list
            .iter_mut()
            .find(|managed| managed.pid == pid && managed.running())
        else {
            return false;
        };
        if let Some(mut child) = managed.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        true
    }

    /// kill -9 of every process, and waits for each.
    pub fn kill_all(&mut self) {
        for managed in self.list.iter_mut().rev() {
            if let Some(mut child) = managed.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Starts a process from its spec: stdin closed, output to its log, SIGKILL if we die.
fn spawn(spec: Spec) -> Result<Managed, DemoError> {
    let failed = |source| DemoError::Spawn {
        what: spec.label.clone(),
        source,
    };
    let log = File::create(&spec.log).map_err(failed)?;
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(failed)?)
        .stderr(log)
        .process_group(0);
    // SAFETY: the closure runs in the child between fork and exec and only makes one
    // async-signal-safe system call (prctl).
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
    let child = command.spawn().map_err(failed)?;
    Ok(Managed {
        pid: child.id(),
        spec,
        child: Some(child),
    })
}

/// kill -9 of `pid` (a process of the demo, or one inside its namespaces).
pub fn kill_pid(pid: u32) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .is_some_and(|pid| rustix::process::kill_process(pid, Signal::KILL).is_ok())
}

/// Whether a process with this PID exists.
pub fn alive(pid: u32) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok())
}
