//! `rampart reload`: asks a running proxy to read its configuration file again. Through its
//! admin endpoint (`POST /reload`), which answers what changed or why the new file was refused;
//! or, with `--pid-file` (a proxy without `--admin`), with SIGUSR1, whose outcome is only in
//! the proxy's log.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use hyper::{Method, StatusCode};
use rustix::process::{Pid, Signal, kill_process};

use super::args::ReloadArgs;
use super::endpoint_client;

/// Exit 0 when the proxy took the new configuration (or, with `--pid-file`, got the signal);
/// 1 with the reason otherwise.
pub fn run(args: &ReloadArgs) -> ExitCode {
    match &args.pid_file {
        Some(pid_file) => signal(pid_file),
        None => ask(args),
    }
}

fn ask(args: &ReloadArgs) -> ExitCode {
    let answer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the HTTP client: {error}"))
        .and_then(|runtime| {
            runtime
                .block_on(endpoint_client::request(
                    args.admin,
                    Method::POST,
                    "/reload",
                ))
                .map_err(|error| error.to_string())
        });
    match answer {
        Ok((StatusCode::OK, body)) => {
            print!("{}", String::from_utf8_lossy(&body));
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprint!(
                "rampart reload: {status}: {}",
                String::from_utf8_lossy(&body)
            );
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("rampart reload: {error}");
            ExitCode::FAILURE
        }
    }
}

fn signal(pid_file: &Path) -> ExitCode {
    let pid = match fs::read_to_string(pid_file) {
        Ok(text) => text.trim().parse::<i32>().ok(),
        Err(error) => {
            eprintln!(
                "rampart reload: cannot read the pid file '{}': {error}",
                pid_file.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let Some(target) = pid.and_then(Pid::from_raw) else {
        eprintln!(
            "rampart reload: the pid file '{}' does not hold a process id",
            pid_file.display()
        );
        return ExitCode::FAILURE;
    };
    match kill_process(target, Signal::USR1) {
        Ok(()) => {
            println!(
                "sent SIGUSR1 to rampart (pid {}); the outcome is in its log",
                target.as_raw_nonzero()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!(
                "rampart reload: cannot signal pid {}: {error}",
                target.as_raw_nonzero()
            );
            ExitCode::FAILURE
        }
    }
}
