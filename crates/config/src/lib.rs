//! rampart-config owns nutcracker.yml: it reads the file exactly as nutcracker 0.5.0 does
//! (accepting what it accepts, rejecting what it rejects), reports every rejection with the
//! file, line, column, directive and what was expected, and produces an immutable, validated
//! [`Config`] with nutcracker's defaults and ordering. It also reads rampart's additive pool
//! directives (`sentinels:` and the per-client limits of `limits`). No I/O beyond reading the file: listen hosts are resolved
//! by the binary.
//!
//! The path of a file through the crate: `source` decodes the text (with `compat` bridging
//! saphyr-parser's YAML 1.2 and nutcracker's libyaml), `walk` walks the YAML events and
//! enforces nutcracker's YAML shape, `directives` reads each pool directive (with `listen`,
//! `servers` and `sentinels` for the structured values, and `quirks` for nutcracker's number
//! and string rules), and `validate` checks pools and the whole file before building the
//! `model`. Every rejection is a [`ConfigError`] whose [`ConfigErrorKind`] says what was wrong.
//!
//! Passwords are [`Password`]s, which Debug does not print (`secret`).
//!
//! The [`keepalived`] module reads the keepalived.conf of rampart's built-in VRRP speaker.

// Nothing a client, a config file or a peer sends may panic the process: every index, unwrap
// and panic in code that ships is a compile error (tests are free to use them).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unreachable))]
#![cfg_attr(not(test), deny(clippy::todo, clippy::unimplemented))]

mod compat;
mod directives;
mod error;
pub mod keepalived;
mod limits;
mod listen;
mod model;
mod quirks;
mod secret;
mod sentinels;
mod servers;
mod source;
mod validate;
mod walk;

use std::path::Path;

pub use error::{ConfigError, ConfigErrorKind};
pub use limits::ClientLimits;
pub use model::{Config, Listen, Pool, SentinelAddr, Server, ServerAddress};
pub use secret::Password;

use error::Fault;
use source::Source;

/// Reads and validates the configuration file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let bytes = std::fs::read(path).map_err(|error| ConfigError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        directive: None,
        kind: ConfigErrorKind::Unreadable {
            reason: error.to_string(),
        },
    })?;
    let source = Source::from_bytes(&bytes).map_err(|fault| fault.into_error(path.into()))?;
    build(&source, path)
}

/// Validates configuration text; `file` names it in errors and in [`Config::file`].
pub fn parse(source: &str, file: &Path) -> Result<Config, ConfigError> {
    let source = Source::from_text(source).map_err(|fault| fault.into_error(file.into()))?;
    build(&source, file)
}

fn build(source: &Source, file: &Path) -> Result<Config, ConfigError> {
    let result = walk::pools(source).and_then(|pools| validate::config(file.to_path_buf(), pools));
    // Some refused tokens are found apart from the walk; the earlier problem is reported.
    let result = match (result, source.refused()) {
        (Err(fault), Some(refused)) if refused.pos < fault.pos => Err(refused.clone()),
        (Ok(_), Some(refused)) => Err(refused.clone()),
        (result, _) => result,
    };
    result.map_err(|fault: Fault| fault.into_error(file.to_path_buf()))
}
