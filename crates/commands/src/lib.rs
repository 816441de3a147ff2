//! The Redis command table of rampart: for every command, which arguments are keys, whether it
//! is forwarded whole, split per shard (and how the replies merge), answered by the proxy, or
//! refused, and with which error text.
//!
//! Pure data and small pure functions, no I/O. The proxy calls [`resolve`] on each request,
//! then [`Command::keys`] to route it:
//!
//! ```
//! use rampart_commands::{Kind, resolve};
//!
//! let request: [&[u8]; 4] = [b"ZUNIONSTORE", b"out", b"1", b"in"];
//! let command = resolve(&request).unwrap();
//! assert_eq!(command.kind, Kind::Forward);
//! let keys: Vec<usize> = command.keys(&request).unwrap().collect();
//! assert_eq!(keys, [1, 3]);
//!
//! let mut text = Vec::new();
//! let request: [&[u8]; 2] = [b"GET", b"a"];
//! let command = resolve(&request).unwrap();
//! command.cross_shard_error().write_to(&mut text);
//! assert!(text.starts_with(b"ERR keys of 'get'"));
//! ```
//!
//! Modules: `args` (the [`Arguments`] view of a request), `command` (the entry types),
//! `table` (the data), `lookup` and `name_table` (finding entries), `keys` (finding keys), `error` (texts).

// Nothing a client, a config file or a peer sends may panic the process: every index, unwrap
// and panic in code that ships is a compile error (tests are free to use them).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unreachable))]
#![cfg_attr(not(test), deny(clippy::todo, clippy::unimplemented))]

mod args;
mod command;
mod error;
mod keys;
mod lookup;
mod name_table;
mod table;

pub use args::Arguments;
pub use command::{
    Command, KeySpec, Keyspace, Kind, LocalCommand, Merge, NumKeysRule, OptionArg, PubSubCommand,
    SessionCommand,
};
pub use error::{CommandError, NumKeysProblem};
pub use keys::Keys;
pub use lookup::{commands, is_http, lookup, resolve};

/// The key by which a [`Kind::Forward`] command without keys is routed (LOLWUT, TIME,
/// `EVAL script 0`, OBJECT HELP...), so such requests go to one fixed shard. Nutcracker routes
/// COMMAND and LOLWUT by this same literal key, so the shard chosen is the same.
pub const PLACEHOLDER_KEY: &[u8] = b"placeholder";
