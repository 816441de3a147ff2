//! `rampart -t`: validate a configuration as nutcracker does (listen hosts resolved, nothing
//! bound) and say precisely what is wrong, instead of nutcracker's bare "syntax is invalid".
//! With `--vrrp FILE` it also checks the keepalived.conf, printing its warnings.

use std::path::Path;
use std::process::ExitCode;

use crate::proxy::listener::resolve_listen;

/// Runs the configuration test (of the keepalived.conf too, when given) and returns the
/// process exit status.
pub fn run(file: &Path, vrrp: Option<&Path>) -> ExitCode {
    let proxy = proxy_config(file);
    match vrrp {
        Some(vrrp) if proxy == ExitCode::SUCCESS => keepalived_config(vrrp),
        _ => proxy,
    }
}

fn keepalived_config(file: &Path) -> ExitCode {
    let shown = file.display();
    match rampart_config::keepalived::load(file) {
        Ok(config) => {
            for warning in &config.warnings {
                eprintln!("{warning}");
            }
            eprintln!("rampart: VRRP configuration file '{shown}' syntax is ok");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("rampart: VRRP configuration file '{shown}' syntax is invalid");
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn proxy_config(file: &Path) -> ExitCode {
    let shown = file.display();
    let verdict = rampart_config::load(file)
        .map_err(|error| error.to_string())
        .and_then(|config| {
            config
                .pools
                .iter()
                .try_for_each(|pool| resolve_listen(&config, pool).map(drop))
                .map_err(|error| error.to_string())
        });
    match verdict {
        Ok(()) => {
            eprintln!("rampart: configuration file '{shown}' syntax is ok");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("rampart: configuration file '{shown}' syntax is invalid");
            eprintln!("{reason}");
            ExitCode::FAILURE
        }
    }
}
