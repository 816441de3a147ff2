//! `rampart check`: one probe round against a running proxy (see `health`), its report on
//! stdout, and the verdict as the exit status, for keepalived's `track_script`. A plain
//! program: no terminal, no shell features, done within about the timeout.

use std::process::ExitCode;
use std::time::Duration;

use super::args::{CheckArgs, ShardRule};
use crate::health::{HealthReport, Probe};

/// Runs the check and returns the process exit status: success only when healthy.
pub fn run(args: &CheckArgs) -> ExitCode {
    let config = match rampart_config::load(&args.conf_file) {
        Ok(config) => config,
        Err(error) => {
            eprintln!(
                "rampart check: configuration file '{}' syntax is invalid\n{error}",
                args.conf_file.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let probe = match Probe::new(&config) {
        Ok(probe) => probe,
        Err(error) => {
            eprintln!("rampart check: {error}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rampart check: cannot start a runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let report = runtime.block_on(probe.run(Duration::from_millis(args.timeout)));
    print!("{report}");
    match failure(&report, args.shards) {
        None => {
            println!("rampart check: ok");
            ExitCode::SUCCESS
        }
        Some(reason) => {
            println!("rampart check: FAILED: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// Why the report fails the rule, if it does.
fn failure(report: &HealthReport, rule: ShardRule) -> Option<String> {
    match rule {
        ShardRule::All if report.all_ok() => None,
        ShardRule::All => {
            let mut failures = report.failures();
            let first = failures.next()?;
            match failures.count() {
                0 => Some(first),
                more => Some(format!("{first} (and {more} more)")),
            }
        }
        ShardRule::Any => report.fault(|_, _| false),
    }
}
