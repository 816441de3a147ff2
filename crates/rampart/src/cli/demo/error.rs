//! What can go wrong in `rampart demo`, each with the message the user sees.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "{0} is not installed (not found on PATH); install it first, on Debian: apt-get install redis-server redis-sentinel"
    )]
    MissingProgram(&'static str),
    #[error("cannot find this rampart executable: {0}")]
    OwnExecutable(io::Error),
    #[error("`ip {command}` failed: {reason}")]
    Ip { command: String, reason: String },
    #[error("cannot start {what}: {source}")]
    Spawn { what: String, source: io::Error },
    #[error("{what} did not become ready in time; see {log}")]
    NotReady { what: String, log: PathBuf },
    #[error("{what} exited while starting; see {log}")]
    Exited { what: String, log: PathBuf },
    #[error("{what} {path}: {source}")]
    File {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("no free TCP ports for the demo")]
    NoPorts,
    #[error("stopped by a signal while starting")]
    Interrupted,
    #[error("a demo is already running (pid {pid}, state file {path})")]
    AlreadyRunning { pid: u32, path: PathBuf },
    #[error("no demo is running (no state file at {0})")]
    NotRunning(PathBuf),
    #[error("the state file {path} is not what `rampart demo` writes: {reason}")]
    BadState { path: PathBuf, reason: String },
    #[error("no shard '{0}': name shard1 or shard2 (or 1 or 2)")]
    UnknownShard(String),
    #[error("no sentinel answers with a master for {0}")]
    NoMaster(String),
    #[error("the master of {shard} ({address}) is not a process of the demo")]
    NotOurs { shard: String, address: String },
    #[error("no proxy is active now (none holds the virtual IP)")]
    NoActiveProxy,
    #[error("kill -9 of pid {pid}: {source}")]
    Kill { pid: u32, source: io::Error },
    #[error("cannot install signal handlers: {0}")]
    Signals(io::Error),
}
