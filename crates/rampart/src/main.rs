//! The `rampart` binary: parses the nutcracker-compatible command line and runs what it asks
//! for: a configuration test, a stats description, the `route` tool, the `check` probe, the
//! `status`, `reload` and `rebalance` clients of a running proxy, or the proxy. The module tree follows the architecture: `proxy` (data path), `topology` (control
//! plane), `vrrp` (the built-in virtual IP), `health` (the proxy's health seen from outside, for
//! the VRRP speaker and `rampart check`), `admin` (stats), `cli` (flags and the tools that run
//! without the proxy), plus process housekeeping (`run`, `daemon`, `logging` with `log_limit`
//! for lines that repeat, and `service` for systemd's readiness protocol).

// Nothing a client, a config file or a peer sends may panic the process: every index, unwrap
// and panic in code that ships is a compile error (tests are free to use them).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unreachable))]
#![cfg_attr(not(test), deny(clippy::todo, clippy::unimplemented))]

mod admin;
mod cli;
mod daemon;
mod descriptors;
mod health;
mod log_limit;
mod logging;
mod proxy;
mod run;
mod service;
mod topology;
mod vrrp;

use std::process::ExitCode;

use clap::Parser;

use cli::args::{Cli, Command, ProxyArgs};
use cli::{check, demo, rebalance, reload, route, status, test_conf};

/// The version banner; names the nutcracker release whose behaviour rampart reproduces.
fn banner() -> String {
    format!(
        "This is rampart-{} (nutcracker-0.5.0 compatible)\n",
        env!("CARGO_PKG_VERSION")
    )
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Some(Command::Route(args)) => route::run(&args),
        Some(Command::Check(args)) => check::run(&args),
        Some(Command::Status(args)) => status::run(&args),
        Some(Command::Reload(args)) => reload::run(&args),
        Some(Command::Rebalance(args)) => rebalance::run(&args),
        Some(Command::Demo(args)) => demo::run(&args),
        None => run_proxy_flags(&cli.proxy),
    }
}

fn run_proxy_flags(args: &ProxyArgs) -> ExitCode {
    if args.version {
        eprintln!("{}", banner());
        return ExitCode::SUCCESS;
    }
    if args.describe_stats {
        eprint!("{}\n{}", banner(), admin::catalog::describe());
        return ExitCode::SUCCESS;
    }
    if args.test_conf {
        return test_conf::run(&args.conf_file, args.vrrp.as_deref());
    }
    run::run(args, args.worker_count())
}
