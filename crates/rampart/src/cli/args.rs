//! The command line: nutcracker 0.5.0's flags with the same meanings and defaults, plus
//! rampart's own flags and subcommands, each with the help text `--help` and the man page show.
//! Parsing only; `main` decides what to run.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cli::manual;
use crate::logging::LogFormat;

/// nutcracker's default configuration path (upstream's, not Debian's).
pub const DEFAULT_CONF_FILE: &str = "conf/nutcracker.yml";
/// Where the admin endpoint listens unless `--admin` says otherwise.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:22223";
/// Up to this many usable CPUs, rampart runs one worker unless `--workers` says otherwise.
const SMALL_MACHINE_CPUS: usize = 2;

#[derive(Debug, Parser)]
#[command(
    name = "rampart",
    version,
    about = "A sharding Redis proxy: a drop-in nutcracker (twemproxy) replacement",
    long_about = manual::DESCRIPTION,
    after_long_help = manual::after_long_help(),
    args_conflicts_with_subcommands = true,
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub proxy: ProxyArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The flags nutcracker accepts, with its long names, defaults and ranges.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Show version and exit
    #[arg(short = 'V', long = "version")]
    pub version: bool,

    /// Test configuration for syntax errors and exit
    ///
    /// Exit 0 with "syntax is ok", or 1 with the file, line, column and reason. With `--vrrp`,
    /// checks that keepalived.conf too
    #[arg(short = 't', long = "test-conf")]
    pub test_conf: bool,

    /// Run as a daemon
    ///
    /// Double fork and setsid, standard streams to /dev/null, working directory kept, as
    /// nutcracker does. Not for systemd: its unit runs rampart in the foreground
    #[arg(short = 'd', long = "daemonize")]
    pub daemonize: bool,

    /// Print stats description and exit
    #[arg(short = 'D', long = "describe-stats")]
    pub describe_stats: bool,

    /// Set logging level (0 to 11)
    ///
    /// nutcracker's levels: errors from 0, warnings from 4, notices (rampart's info lines: start,
    /// stop, signals, ejections, failovers, VRRP transitions) from 5, debug from 7, trace from
    /// 8; 11 shows everything. SIGTTIN and SIGTTOU raise and lower it while running. No level
    /// logs a password. A line that a failing server or client can repeat (a server failure, an
    /// accept error) is logged at most 10 times a second, then one line counts those suppressed
    #[arg(short = 'v', long = "verbose", value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u8).range(0..=11))]
    pub verbose: u8,

    /// Set logging file (default: stderr)
    ///
    /// Opened for appending; SIGHUP reopens it, so logrotate can rename it and then signal
    /// (no copytruncate needed)
    #[arg(short = 'o', long = "output", value_name = "S")]
    pub output: Option<PathBuf>,

    /// Log line format (rampart only)
    #[arg(long = "log-format", value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Set configuration file
    ///
    /// An unchanged nutcracker.yml, optionally with rampart's `sentinels:`, `failover_wait_ms`,
    /// `replica_reads` and `client_*` limit pool directives. The default is relative to the
    /// working directory, as nutcracker's is
    #[arg(short = 'c', long = "conf-file", value_name = "S", default_value = DEFAULT_CONF_FILE)]
    pub conf_file: PathBuf,

    /// Set stats monitoring port
    ///
    /// A connection to it receives nutcracker's stats JSON and is closed
    #[arg(short = 's', long = "stats-port", value_name = "N", default_value_t = 22222,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub stats_port: u16,

    /// Set stats monitoring ip
    #[arg(
        short = 'a',
        long = "stats-addr",
        value_name = "S",
        default_value = "0.0.0.0"
    )]
    pub stats_addr: String,

    /// Set stats aggregation interval in msec. Accepted for nutcracker compatibility and not
    /// used: rampart's counters are live (workers publish them every 100 ms)
    #[arg(
        short = 'i',
        long = "stats-interval",
        value_name = "N",
        default_value_t = 30000
    )]
    pub stats_interval: u64,

    /// Set pid file (default: none)
    ///
    /// The decimal pid with no newline, written after daemonising and removed on a clean stop
    #[arg(short = 'p', long = "pid-file", value_name = "S")]
    pub pid_file: Option<PathBuf>,

    /// Set size of mbuf chunk in bytes (512 to 16777216); rampart sizes its read buffers with it
    #[arg(short = 'm', long = "mbuf-size", value_name = "N", default_value_t = 16384,
          value_parser = clap::value_parser!(u32).range(512..=16_777_216))]
    pub mbuf_size: u32,

    /// Serve the virtual IPs of the vrrp_instance blocks in this keepalived.conf with the
    /// built-in VRRP speaker, wire-compatible with keepalived (rampart only; needs
    /// CAP_NET_RAW and CAP_NET_ADMIN). `-t` checks this file too
    #[arg(long = "vrrp", value_name = "FILE")]
    pub vrrp: Option<PathBuf>,

    /// Worker threads, each with its own listener and backend connections (rampart only)
    ///
    /// Default: one per CPU the process may run on (its affinity mask, as `taskset` and
    /// systemd's CPUAffinity set it, and its cgroup CPU quota), but a single worker when that
    /// is 2 CPUs or fewer: on a small machine the proxy shares the cores with its clients and
    /// servers, and a second worker costs more (half the batching per backend connection,
    /// more context switches) than it gives. Measurements in bench/README.md
    #[arg(long = "workers", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,

    /// Serve the admin endpoint (HTTP: /metrics for Prometheus, /status, /health) on this
    /// IP:PORT, or `off` (rampart only)
    #[arg(long = "admin", value_name = "ADDR", default_value = DEFAULT_ADMIN)]
    pub admin: AdminAddress,
}

/// `--admin`: an IP:PORT, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAddress {
    Off,
    At(SocketAddr),
}

impl FromStr for AdminAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<AdminAddress, String> {
        if text == "off" {
            return Ok(AdminAddress::Off);
        }
        text.parse()
            .map(AdminAddress::At)
            .map_err(|_| format!("'{text}' is neither IP:PORT nor 'off'"))
    }
}

impl fmt::Display for AdminAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminAddress::Off => f.write_str("off"),
            AdminAddress::At(address) => address.fmt(f),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the server each key is placed on: `key<TAB>server-name<TAB>host:port`
    Route(RouteArgs),
    /// Check a running proxy as a client would, for keepalived's `track_script`: exit 0 when
    /// every pool answers PING and a request to each shard through the proxy within the
    /// timeout; else print what failed and exit 1
    Check(CheckArgs),
    /// Show a running proxy's shards, masters, requests per second and VRRP state, read from
    /// its admin endpoint; `--watch` redraws the table every interval
    Status(StatusArgs),
    /// Make a running proxy read its configuration file again: print what changed and exit 0,
    /// or print why the new file was refused (the running configuration is kept) and exit 1
    Reload(ReloadArgs),
    /// Make a running proxy read its configuration file again and move the keys of every pool
    /// whose ring changed to their new server, showing the progress until it is done
    Rebalance(RebalanceArgs),

    /// Start a demo of the whole architecture on this machine: 2 shards (master + replica),
    /// 3 sentinels, rampart in front (as root: two nodes sharing a virtual IP in network
    /// namespaces), with traffic and a live view; Ctrl-C removes everything it started
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// The proxy's admin endpoint (its `--admin`), which answers with the outcome
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADMIN)]
    pub admin: SocketAddr,

    /// Send SIGUSR1 to the pid in this file (the proxy's `--pid-file`) instead of asking the
    /// admin endpoint; the outcome is then only in the proxy's log
    #[arg(long = "pid-file", value_name = "FILE", conflicts_with = "admin")]
    pub pid_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RebalanceArgs {
    /// The proxy's admin endpoint (its `--admin`)
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADMIN)]
    pub admin: SocketAddr,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The proxy's admin endpoint (its `--admin`)
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADMIN)]
    pub admin: SocketAddr,

    /// Redraw the table every interval until interrupted
    #[arg(long)]
    pub watch: bool,

    /// Time between the two samples that requests per second are computed from (and between
    /// redraws with `--watch`), in milliseconds
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub interval: u64,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Act on the running demo instead: `master-of SHARD` (1 or 2) or `proxy` (the one
    /// holding the virtual IP) is killed with SIGKILL
    #[arg(long, value_name = "WHAT", num_args = 1..=2)]
    pub kill: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RouteArgs {
    /// Configuration file
    #[arg(short = 'c', long = "conf-file", value_name = "FILE", default_value = DEFAULT_CONF_FILE)]
    pub conf_file: PathBuf,

    /// The pool to route in; may be left out when the file has one pool
    #[arg(long)]
    pub pool: Option<String>,

    /// Route as if this server (by name, as in the stats) were ejected; repeatable
    #[arg(long = "eject", value_name = "SERVER")]
    pub ejected: Vec<String>,

    /// Keys to place; read from stdin, one per line, when none are given
    pub keys: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Configuration file of the proxy to check
    #[arg(short = 'c', long = "conf-file", value_name = "FILE", default_value = DEFAULT_CONF_FILE)]
    pub conf_file: PathBuf,

    /// How long the whole check may take, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub timeout: u64,

    /// Which shards must answer: `all` of them, or `any` (at least one per pool).
    ///
    /// `any` is the rule of rampart's built-in VRRP health. Use it when both proxy nodes run
    /// this check under keepalived and the shards have no Sentinel: one dead shard then fails
    /// `all` on both nodes at once, keepalived puts both in FAULT, and the virtual IP goes away
    /// for every shard, not just the dead one
    #[arg(long, value_enum, value_name = "RULE", default_value_t = ShardRule::All)]
    pub shards: ShardRule,
}

/// How many shards of a pool `rampart check` needs to hear from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShardRule {
    /// Every shard of every pool
    All,
    /// At least one shard of each pool
    Any,
}

impl ProxyArgs {
    /// `--workers`, or the default for the CPUs this process may run on.
    pub fn worker_count(&self) -> usize {
        self.workers.map_or_else(
            || default_workers(std::thread::available_parallelism().map_or(1, usize::from)),
            usize::from,
        )
    }
}

/// The worker count for `cpus` usable CPUs (see `--workers`).
fn default_workers(cpus: usize) -> usize {
    if cpus <= SMALL_MACHINE_CPUS { 1 } else { cpus }
}

#[cfg(test)]
mod tests {
    use super::default_workers;

    #[test]
    fn small_machines_get_one_worker_and_larger_ones_one_per_cpu() {
        assert_eq!(default_workers(1), 1);
        assert_eq!(default_workers(2), 1);
        assert_eq!(default_workers(3), 3);
        assert_eq!(default_workers(16), 16);
    }
}
