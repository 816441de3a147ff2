//! `rampart rebalance`: reloads a running proxy's configuration through its admin endpoint
//! (`POST /rebalance`), migrating the keys of every pool whose ring changed (as `migrate: true`
//! would), and shows the migration's progress from `/status` until it is done: a bar with the
//! keys read and moved and the time left, redrawn in place on a terminal, a line a second
//! otherwise.

use std::io::{self, IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use hyper::{Method, StatusCode};

use super::args::RebalanceArgs;
use super::endpoint_client;
use crate::admin::status::{MigrationStatus, Status};

/// How often the progress is read.
const POLL: Duration = Duration::from_millis(500);
/// Width of the progress bar, in characters.
const BAR: usize = 30;

/// Exit 0 once every migration is done; 1 when the reload is refused or the endpoint cannot
/// be read.
pub fn run(args: &RebalanceArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rampart rebalance: cannot start the HTTP client: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(rebalance(args.admin)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rampart rebalance: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn rebalance(admin: SocketAddr) -> Result<(), String> {
    let (status, body) = endpoint_client::request(admin, Method::POST, "/rebalance")
        .await
        .map_err(|error| error.to_string())?;
    let body = String::from_utf8_lossy(&body);
    if status != StatusCode::OK {
        return Err(format!("{status}: {}", body.trim_end()));
    }
    print!("{body}");
    let terminal = io::stdout().is_terminal();
    let mut moved = 0;
    loop {
        let status = read_status(admin).await?;
        let migrating: Vec<(&str, &MigrationStatus)> = status
            .pools
            .iter()
            .filter_map(|pool| Some((pool.name.as_str(), pool.migration.as_ref()?)))
            .collect();
        if migrating.is_empty() {
            if terminal {
                println!();
            }
            println!("migration done: {moved} keys moved");
            return Ok(());
        }
        moved = migrating.iter().map(|(_, migration)| migration.moved).sum();
        let lines: Vec<String> = migrating
            .iter()
            .map(|(pool, migration)| progress_line(pool, migration))
            .collect();
        let mut out = io::stdout().lock();
        let written = if terminal {
            write!(out, "\r\x1b[K{}", lines.join("  "))
        } else {
            writeln!(out, "{}", lines.join("  "))
        };
        if written.and_then(|()| out.flush()).is_err() {
            return Err("cannot write the progress".to_string());
        }
        drop(out);
        tokio::time::sleep(POLL).await;
    }
}

async fn read_status(admin: SocketAddr) -> Result<Status, String> {
    let (status, body) = endpoint_client::request(admin, Method::GET, "/status")
        .await
        .map_err(|error| error.to_string())?;
    if status != StatusCode::OK {
        return Err(format!("{admin}/status answered {status}"));
    }
    serde_json::from_slice(&body)
        .map_err(|error| format!("{admin}/status is not a rampart status document: {error}"))
}

/// `alpha [#######.......]  46%  12000 read, 4000 moved, about 3 s left`.
pub fn progress_line(pool: &str, migration: &MigrationStatus) -> String {
    let total = migration.scanned + migration.remaining_estimate;
    let done = if migration.remaining_estimate == 0 || total == 0 {
        1.0
    } else {
        migration.scanned as f64 / total as f64
    };
    let filled = ((done * BAR as f64).round() as usize).min(BAR);
    let left = match migration.eta_seconds {
        _ if migration.waiting => "waiting for the virtual IP or a failover".to_string(),
        Some(seconds) => format!("about {seconds:.0} s left"),
        None => "checking that nothing is left".to_string(),
    };
    format!(
        "{pool} [{}{}] {:3.0}%  {} read, {} moved, {left}",
        "#".repeat(filled),
        ".".repeat(BAR - filled),
        done * 100.0,
        migration.scanned,
        migration.moved
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_keys_read() {
        let migration = MigrationStatus {
            running: true,
            waiting: false,
            scanned: 500,
            moved: 170,
            remaining_estimate: 1500,
            eta_seconds: Some(3.0),
            draining: Vec::new(),
        };
        assert_eq!(
            progress_line("alpha", &migration),
            "alpha [########......................]  25%  500 read, 170 moved, about 3 s left"
        );
    }
}
