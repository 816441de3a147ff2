//! `rampart status`: a terminal table of a running proxy, read from its admin endpoint's
//! `/status`: one row per shard (pool, shard, master, replicas, state, requests per second,
//! errors), a progress line per pool that migrates, and one line per VRRP instance, the way
//! `redis-cli --stat` or `top` shows things. Requests per second come from two samples
//! `--interval` apart; `--watch` redraws every interval (clearing the screen when stdout is a
//! terminal, plain blocks otherwise).

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};

use super::args::StatusArgs;
use super::endpoint_client::{self, EndpointError};
use super::rebalance::progress_line;
use crate::admin::status::Status;

/// Why the status could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error("{address}/status answered {status}")]
    Refused {
        address: SocketAddr,
        status: StatusCode,
    },
    #[error("{address}/status is not a rampart status document: {source}")]
    Document {
        address: SocketAddr,
        source: serde_json::Error,
    },
    #[error("cannot start the HTTP client: {0}")]
    Runtime(io::Error),
}

/// Prints the table once (or every interval with `--watch`); exit 1 when the endpoint cannot
/// be read.
pub fn run(args: &StatusArgs) -> ExitCode {
    match show(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rampart status: {error}");
            ExitCode::FAILURE
        }
    }
}

fn show(args: &StatusArgs) -> Result<(), FetchError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(FetchError::Runtime)?;
    let interval = Duration::from_millis(args.interval);
    let clear = args.watch && io::stdout().is_terminal();
    let mut before = Sample::take(&runtime, args.admin)?;
    loop {
        std::thread::sleep(interval);
        let now = Sample::take(&runtime, args.admin)?;
        let table = render(&now, &before, args.admin);
        let mut out = io::stdout().lock();
        let written = if clear {
            write!(out, "\x1b[H\x1b[2J{table}")
        } else if args.watch {
            writeln!(out, "{table}")
        } else {
            write!(out, "{table}")
        };
        if written.and_then(|()| out.flush()).is_err() || !args.watch {
            return Ok(());
        }
        before = now;
    }
}

/// One `/status` document and when it was read.
struct Sample {
    status: Status,
    at: Instant,
}

impl Sample {
    fn take(runtime: &tokio::runtime::Runtime, address: SocketAddr) -> Result<Sample, FetchError> {
        let (status, body) =
            runtime.block_on(endpoint_client::request(address, Method::GET, "/status"))?;
        if status != StatusCode::OK {
            return Err(FetchError::Refused { address, status });
        }
        let status = serde_json::from_slice(&body)
            .map_err(|source| FetchError::Document { address, source })?;
        Ok(Sample {
            status,
            at: Instant::now(),
        })
    }
}

/// The table for `now`, with rates since `before`.
fn render(now: &Sample, before: &Sample, address: SocketAddr) -> String {
    let seconds = now.at.duration_since(before.at).as_secs_f64().max(1e-3);
    let earlier: HashMap<(&str, &str), u64> = before
        .status
        .pools
        .iter()
        .flat_map(|pool| {
            pool.shards
                .iter()
                .map(|shard| ((pool.name.as_str(), shard.name.as_str()), shard.requests))
        })
        .collect();
    let mut rows = vec![
        [
            "POOL", "SHARD", "MASTER", "REPLICAS", "STATE", "REQ/S", "ERRORS",
        ]
        .map(String::from),
    ];
    for pool in &now.status.pools {
        for shard in &pool.shards {
            let previous = earlier
                .get(&(pool.name.as_str(), shard.name.as_str()))
                .copied()
                .unwrap_or(shard.requests);
            let rate = shard.requests.saturating_sub(previous) as f64 / seconds;
            let draining = pool
                .migration
                .as_ref()
                .is_some_and(|migration| migration.draining.contains(&shard.name));
            let state = if draining {
                "draining"
            } else if !shard.live {
                "ejected"
            } else if shard.master_down {
                "master down"
            } else {
                "up"
            };
            let replicas = if shard.replicas.is_empty() {
                "-".to_string()
            } else {
                shard.replicas.join(",")
            };
            rows.push([
                pool.name.clone(),
                shard.name.clone(),
                shard.master.clone(),
                replicas,
                state.to_string(),
                format!("{rate:.0}"),
                shard.errors.to_string(),
            ]);
        }
    }
    let mut text = format!(
        "rampart {} at {address}, up {}\n",
        now.status.version,
        uptime(now.status.uptime_seconds)
    );
    text.push_str(&columns(&rows));
    for pool in &now.status.pools {
        if let Some(migration) = &pool.migration {
            text.push_str(&format!(
                "migrating: {}\n",
                progress_line(&pool.name, migration)
            ));
        }
    }
    for instance in &now.status.vrrp {
        text.push_str(&format!(
            "VRRP {}: {}, priority {}, master {}, {} transitions\n",
            instance.instance,
            instance.state,
            instance.priority,
            instance.master.as_deref().unwrap_or("unknown"),
            instance.transitions
        ));
    }
    text
}

/// Rows laid out in left-aligned columns two spaces apart.
fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(line.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// `3d04h05m`, `2h03m04s`, `5m06s` or `7s`.
fn uptime(seconds: u64) -> String {
    let (days, hours) = (seconds / 86_400, seconds / 3600 % 24);
    let (minutes, seconds) = (seconds / 60 % 60, seconds % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, _) => format!("{minutes}m{seconds:02}s"),
        (0, _, _) => format!("{hours}h{minutes:02}m{seconds:02}s"),
        _ => format!("{days}d{hours:02}h{minutes:02}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::status::{PoolStatus, ShardStatus, VrrpStatus};

    fn sample(requests: u64, at: Instant) -> Sample {
        Sample {
            status: Status {
                version: "0.1.0".into(),
                uptime_seconds: 3725,
                pools: vec![PoolStatus {
                    name: "alpha".into(),
                    listen: "127.0.0.1:22121".into(),
                    sentinels: true,
                    client_connections: 1,
                    parked_clients: 0,
                    forward_errors: 0,
                    limits: Default::default(),
                    migration: None,
                    shards: vec![ShardStatus {
                        name: "clusterA".into(),
                        configured: "127.0.0.1:7000".into(),
                        master: "127.0.0.1:7001".into(),
                        replicas: vec![],
                        live: true,
                        master_down: false,
                        requests,
                        responses: requests,
                        errors: 2,
                    }],
                }],
                vrrp: vec![VrrpStatus {
                    instance: "VI_1".into(),
                    state: "MASTER".into(),
                    priority: 100,
                    master: Some("10.0.0.1".into()),
                    transitions: 1,
                }],
            },
            at,
        }
    }

    #[test]
    fn the_table_has_a_row_per_shard_with_its_rate_and_a_vrrp_line() {
        let start = Instant::now();
        let before = sample(100, start);
        let now = sample(600, start + Duration::from_millis(500));
        let address = SocketAddr::from(([127, 0, 0, 1], 22223));
        assert_eq!(
            render(&now, &before, address),
            "rampart 0.1.0 at 127.0.0.1:22223, up 1h02m05s\n\
             POOL   SHARD     MASTER          REPLICAS  STATE  REQ/S  ERRORS\n\
             alpha  clusterA  127.0.0.1:7001  -         up     1000   2\n\
             VRRP VI_1: MASTER, priority 100, master 10.0.0.1, 1 transitions\n"
        );
    }

    #[test]
    fn a_migrating_pool_shows_its_draining_shard_and_a_progress_line() {
        let start = Instant::now();
        let before = sample(100, start);
        let mut now = sample(100, start + Duration::from_millis(500));
        now.status.pools[0].migration = Some(crate::admin::status::MigrationStatus {
            running: true,
            waiting: false,
            scanned: 100,
            moved: 40,
            remaining_estimate: 300,
            eta_seconds: Some(1.0),
            draining: vec!["clusterA".into()],
        });
        let table = render(&now, &before, SocketAddr::from(([127, 0, 0, 1], 22223)));
        assert!(table.contains("  draining  "), "{table}");
        assert!(
            table.contains("migrating: alpha [########......................]  25%  100 read, 40 moved, about 1 s left\n"),
            "{table}"
        );
    }

    #[test]
    fn uptime_reads_like_top() {
        assert_eq!(uptime(7), "7s");
        assert_eq!(uptime(306), "5m06s");
        assert_eq!(uptime(90_061), "1d01h01m");
    }
}
