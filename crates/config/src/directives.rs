//! The pool directive table: one row per directive, naming its value's reader. This is the one
//! place to add a directive; a rampart-only list directive (like `sentinels:`) is a row with
//! [`Shape::RampartList`].
//!
//! nutcracker's rules, kept here: each directive at most once per pool (`servers` excepted),
//! numbers are `nc_atoi` digits, booleans exactly `true`/`false`, enums exact and
//! case-sensitive. A nutcracker directive may also be written as the pool's single block list,
//! each entry then being read as one more value (so `listen:` with two entries is a duplicate).

use rampart_placement::{Distribution, HashKind, HashTag};

use crate::error::{ConfigErrorKind, Fault, Pos, Setting};
use crate::limits::{LimitSettings, parse_size};
use crate::model::{Listen, SentinelAddr, Server};
use crate::quirks::{AtoiError, nc_atoi};
use crate::secret::Password;
use crate::{listen, sentinels, servers};

/// A scalar as read from the file, with its position.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Value<'a> {
    pub text: &'a str,
    pub pos: Pos,
}

/// How a directive may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// nutcracker's: `key: value`, or the pool's one block list.
    Nutcracker,
    /// rampart's: only a block list, which does not count as nutcracker's one list.
    RampartList,
}

/// Reads one value into the pool; gets its own table row to name the directive in errors.
type Apply = fn(&mut PoolBuilder, &Directive, Value<'_>) -> Result<(), Fault>;

pub(crate) struct Directive {
    pub name: &'static str,
    /// What a valid value looks like, for error messages.
    pub expected: &'static str,
    pub shape: Shape,
    apply: Apply,
}

impl Directive {
    /// Reads one value of this directive into the pool.
    pub fn apply(&self, pool: &mut PoolBuilder, value: Value<'_>) -> Result<(), Fault> {
        (self.apply)(pool, self, value)
    }
}

const NUMBER: &str = "a number (decimal digits)";
const BOOL: &str = "true or false";
const SIZE: &str = "a size in bytes: decimal digits with an optional unit k, kb, m, mb, g or gb";

/// Every directive, nutcracker 0.5.0's in its own order, then rampart's.
static DIRECTIVES: [Directive; 31] = [
    Directive {
        name: "listen",
        expected: "\"host:port\" or \"/path/to/socket [permissions]\"",
        shape: Shape::Nutcracker,
        apply: |pool, this, value| {
            claim(&pool.listen, this.name, value)?;
            let listen = read(value, this.name, listen::parse)?;
            set(
                &mut pool.listen,
                this.name,
                value,
                (listen, value.text.to_owned()),
            )
        },
    },
    Directive {
        name: "hash",
        expected: "a hash name such as fnv1a_64, murmur or md5",
        shape: Shape::Nutcracker,
        apply: |pool, this, value| {
            claim(&pool.hash, this.name, value)?;
            let hash = HashKind::from_name(value.text).ok_or_else(|| {
                fault(
                    value,
                    this.name,
                    ConfigErrorKind::InvalidHash {
                        value: value.text.to_owned(),
                    },
                )
            })?;
            set(&mut pool.hash, this.name, value, hash)
        },
    },
    Directive {
        name: "hash_tag",
        expected: "two characters, quoted, such as \"{}\"",
        shape: Shape::Nutcracker,
        apply: |pool, this, value| {
            claim(&pool.hash_tag, this.name, value)?;
            let tag = HashTag::new(value.text.as_bytes()).ok_or_else(|| {
                fault(
                    value,
                    this.name,
                    ConfigErrorKind::InvalidHashTag {
                        value: value.text.to_owned(),
                        len: value.text.len(),
                    },
                )
            })?;
            set(&mut pool.hash_tag, this.name, value, tag)
        },
    },
    Directive {
        name: "distribution",
        expected: "ketama, modula or random",
        shape: Shape::Nutcracker,
        apply: |pool, this, value| {
            claim(&pool.distribution, this.name, value)?;
            let distribution = Distribution::from_name(value.text).ok_or_else(|| {
                fault(
                    value,
                    this.name,
                    ConfigErrorKind::InvalidDistribution {
                        value: value.text.to_owned(),
                    },
                )
            })?;
            set(&mut pool.distribution, this.name, value, distribution)
        },
    },
    Directive {
        name: "timeout",
        expected: "a timeout in milliseconds (decimal digits)",
        shape: Shape::Nutcracker,
        apply: |pool, this, value| number(&mut pool.timeout, this.name, value),
    },
    Directive {
        name: "backlog",
        expected: NUMBER,
        shape: Shape::Nutcracker,
        apply: |pool, this, value| number(&mut pool.backlog, this.name, value),
    },
    Directive {
        name: "client_connections",
        expected: NUMBER,
        shape: Shape::Nutcracker,
        apply: |pool, this, value| number(&mut pool.limits.client_connections, this.name, value),
    },
    Directive {
        name: "redis",
        expected: BOOL,
        shape: Shape::Nutcracker,
        apply: |pool, this, value| boolean(&mut pool.redis, this.name, value),
    },
    Directive {
        name: "tcpkeepalive",
        expected: BOOL,
        shape: Shape::Nutcracker,
        apply: |pool, this, value| boolean(&mut pool.tcpkeepalive, this.name, value),
    },
    Directive {
        name: "redis_auth",
        expected: "a password",
        shape: Shape::Nutcracker,
        apply: |pool, this, value| {
            let password = Password::new(value.text.to_owned());
            set(&mut pool.redis_auth, this.name, value, password)
        },
    },
    Directive {
        name: "redis_db",
        expected: "a database number (decimal digits)",
        shape: Shape::Nutcracker,
        apply: |pool, this, value| number(&mut pool.redis_db, this.name, value),
    },
    Directive {
        name: "preconnect",
        expected: BOOL,
        shape: Shape::Nutcracker,
        apply: |pool, this, value| boolean(&mut pool.preconnect, this.name, value),
    },
    Directive {
        name: "auto_eject_hosts",
        expected: BOOL,
        shape: Shape::Nutcracker,
        apply: |pool, this, value| boolean(&mut pool.auto_eject_hosts, this.name, value),
    },
    Directive {
        name: "server_connections",
        expected: "a number of connections, at least 1",
        shape: Shape::Nutcracker,
        apply: |pool, this, value| number(&mut pool.server_connections, this.name, value),
    },
    Directive {
        name: "server_retry_timeout",
        expected: "a time in milliseconds (decimal digits)",
        shape: Shape::Nutcracker,
        apply: |pool, this, value| number(&mut pool.server_retry_timeout, this.name, value),
    },
    Directive {
        name: "server_failure_limit",
        expected: NUMBER,
        shape: Shape::Nutcracker,
        apply: |pool, this, value| number(&mut pool.server_failure_limit, this.name, value),
    },
    Directive {
        name: "servers",
        expected: "\"host:port:weight [name]\" or \"/path/to/socket:weight [name]\"",
        shape: Shape::Nutcracker,
        apply: |pool, this, value| {
            let entry = read(value, this.name, servers::parse)?;
            let server = Server {
                name: entry.name,
                address: entry.address,
                weight: entry.weight,
                line: value.pos.line,
                config_index: pool.servers.len(),
                draining: false,
            };
            pool.servers.push(Setting {
                value: server,
                pos: value.pos,
            });
            Ok(())
        },
    },
    Directive {
        name: "failover_wait_ms",
        expected: "a time in milliseconds (decimal digits)",
        shape: Shape::Nutcracker,
        apply: |pool, this, value| number(&mut pool.failover_wait_ms, this.name, value),
    },
    Directive {
        name: "replica_reads",
        expected: BOOL,
        shape: Shape::Nutcracker,
        apply: |pool, this, value| boolean(&mut pool.replica_reads, this.name, value),
    },
    Directive {
        name: "migrate",
        expected: BOOL,
        shape: Shape::Nutcracker,
        apply: |pool, this, value| boolean(&mut pool.migrate, this.name, value),
    },
    Directive {
        name: "migrate_rate",
        expected: "keys per second (decimal digits, at least 1)",
        shape: Shape::Nutcracker,
        apply: |pool, this, value| number(&mut pool.migrate_rate, this.name, value),
    },
    Directive {
        name: "client_max_request_bytes",
        expected: SIZE,
        shape: Shape::Nutcracker,
        apply: |pool, this, value| size(&mut pool.limits.max_request_bytes, this.name, value),
    },
    Directive {
        name: "client_max_request_args",
        expected: NUMBER,
        shape: Shape::Nutcracker,
        apply: |pool, this, value| number(&mut pool.limits.max_request_args, this.name, value),
    },
    Directive {
        name: "client_max_pipeline",
        expected: NUMBER,
        shape: Shape::Nutcracker,
        apply: |pool, this, value| number(&mut pool.limits.max_pipeline, this.name, value),
    },
    Directive {
        name: "client_max_pending_bytes",
        expected: SIZE,
        shape: Shape::Nutcracker,
        apply: |pool, this, value| size(&mut pool.limits.max_pending_bytes, this.name, value),
    },
    Directive {
        name: "client_output_limit",
        expected: SIZE,
        shape: Shape::Nutcracker,
        apply: |pool, this, value| size(&mut pool.limits.output_limit, this.name, value),
    },
    Directive {
        name: "client_output_soft_limit",
        expected: SIZE,
        shape: Shape::Nutcracker,
        apply: |pool, this, value| size(&mut pool.limits.output_soft_limit, this.name, value),
    },
    Directive {
        name: "client_output_soft_seconds",
        expected: "a time in seconds (decimal digits)",
        shape: Shape::Nutcracker,
        apply: |pool, this, value| number(&mut pool.limits.output_soft_seconds, this.name, value),
    },
    Directive {
        name: "client_idle_timeout",
        expected: "a time in seconds (decimal digits; 0 never closes an idle client)",
        shape: Shape::Nutcracker,
        apply: |pool, this, value| number(&mut pool.limits.idle_timeout, this.name, value),
    },
    Directive {
        name: "dedicated_connections",
        expected: NUMBER,
        shape: Shape::Nutcracker,
        apply: |pool, this, value| number(&mut pool.limits.dedicated_connections, this.name, value),
    },
    Directive {
        name: "sentinels",
        expected: "\"host:port\"",
        shape: Shape::RampartList,
        apply: |pool, this, value| {
            let (host, port) = read(value, this.name, sentinels::parse)?;
            if let Some(first) = pool
                .sentinels
                .iter()
                .find(|s| s.host == host && s.port == port)
            {
                return Err(fault(
                    value,
                    this.name,
                    ConfigErrorKind::DuplicateSentinel {
                        value: value.text.to_owned(),
                        first_line: first.line,
                    },
                ));
            }
            pool.sentinels.push(SentinelAddr {
                host,
                port,
                line: value.pos.line,
            });
            Ok(())
        },
    },
];

/// The directive called `name`, if there is one.
pub(crate) fn lookup(name: &str) -> Option<&'static Directive> {
    DIRECTIVES.iter().find(|directive| directive.name == name)
}

/// What to add after "directive "x" is unknown".
pub(crate) fn unknown_hint(name: &str) -> String {
    if name == "reuseport" {
        return "; nutcracker 0.5.0 has no \"reuseport\" (only unreleased twemproxy master does): \
                remove it"
            .to_owned();
    }
    let closest = DIRECTIVES
        .iter()
        .map(|directive| (edit_distance(name, directive.name), directive.name))
        .min();
    match closest {
        Some((distance, known)) if distance <= 2 || name.eq_ignore_ascii_case(known) => {
            format!("; did you mean {known:?}?")
        }
        _ => {
            let names: Vec<&str> = DIRECTIVES.iter().map(|directive| directive.name).collect();
            format!("; expected one of {}", names.join(", "))
        }
    }
}

/// Levenshtein distance over characters (directive names are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(previous.len());
        current.push(i + 1);
        for ((cb, &diagonal), &above) in b.iter().zip(&previous).zip(previous.iter().skip(1)) {
            let left = current.last().copied().unwrap_or(i + 1);
            let substitution = diagonal + usize::from(ca != *cb);
            current.push(substitution.min(above + 1).min(left + 1));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

/// One pool as its directives are read, before defaults and pool-wide checks.
#[derive(Debug, Clone)]
pub(crate) struct PoolBuilder {
    pub name: String,
    pub pos: Pos,
    /// The listen address and its raw string (pools are compared by the raw string).
    pub listen: Option<Setting<(Listen, String)>>,
    pub hash: Option<Setting<HashKind>>,
    pub hash_tag: Option<Setting<HashTag>>,
    pub distribution: Option<Setting<Distribution>>,
    pub timeout: Option<Setting<u32>>,
    pub backlog: Option<Setting<u32>>,
    pub redis: Option<Setting<bool>>,
    pub tcpkeepalive: Option<Setting<bool>>,
    pub redis_auth: Option<Setting<Password>>,
    pub redis_db: Option<Setting<u32>>,
    pub preconnect: Option<Setting<bool>>,
    pub auto_eject_hosts: Option<Setting<bool>>,
    pub server_connections: Option<Setting<u32>>,
    pub server_retry_timeout: Option<Setting<u32>>,
    pub server_failure_limit: Option<Setting<u32>>,
    /// rampart extension: how long requests wait for a new master during a failover.
    pub failover_wait_ms: Option<Setting<u32>>,
    /// rampart extension: read-only commands may go to a replica while the master is down.
    pub replica_reads: Option<Setting<bool>>,
    /// rampart extension: keys whose server changed move online after a reload.
    pub migrate: Option<Setting<bool>>,
    /// rampart extension: how many keys per second the background migrator moves at most.
    pub migrate_rate: Option<Setting<u32>>,
    /// rampart's per-client limits, `client_connections` included.
    pub limits: LimitSettings,
    /// In config order.
    pub servers: Vec<Setting<Server>>,
    pub sentinels: Vec<SentinelAddr>,
    /// Where each rampart list directive began, to refuse a second one.
    lists: Vec<(&'static str, Pos)>,
}

impl PoolBuilder {
    pub fn new(name: String, pos: Pos) -> PoolBuilder {
        PoolBuilder {
            name,
            pos,
            listen: None,
            hash: None,
            hash_tag: None,
            distribution: None,
            timeout: None,
            backlog: None,
            redis: None,
            tcpkeepalive: None,
            redis_auth: None,
            redis_db: None,
            preconnect: None,
            auto_eject_hosts: None,
            server_connections: None,
            server_retry_timeout: None,
            server_failure_limit: None,
            failover_wait_ms: None,
            replica_reads: None,
            migrate: None,
            migrate_rate: None,
            limits: LimitSettings::default(),
            servers: Vec::new(),
            sentinels: Vec::new(),
            lists: Vec::new(),
        }
    }

    /// A rampart list directive starts at `pos`; each may appear once per pool.
    pub fn begin_rampart_list(&mut self, directive: &Directive, pos: Pos) -> Result<(), Fault> {
        if let Some((_, first)) = self.lists.iter().find(|(name, _)| *name == directive.name) {
            return Err(Fault::directive(
                pos,
                directive.name,
                ConfigErrorKind::Duplicate {
                    directive: directive.name.to_owned(),
                    first_line: first.line,
                },
            ));
        }
        self.lists.push((directive.name, pos));
        Ok(())
    }
}

fn fault(value: Value<'_>, directive: &str, kind: ConfigErrorKind) -> Fault {
    Fault::directive(value.pos, directive, kind)
}

/// Runs a value reader, attaching the value's position and the directive.
fn read<T>(
    value: Value<'_>,
    directive: &str,
    reader: fn(&str) -> Result<T, ConfigErrorKind>,
) -> Result<T, Fault> {
    reader(value.text).map_err(|kind| fault(value, directive, kind))
}

/// nutcracker checks for a duplicate before it reads the value.
fn claim<T>(slot: &Option<Setting<T>>, directive: &str, value: Value<'_>) -> Result<(), Fault> {
    match slot {
        Some(first) => Err(fault(
            value,
            directive,
            ConfigErrorKind::Duplicate {
                directive: directive.to_owned(),
                first_line: first.pos.line,
            },
        )),
        None => Ok(()),
    }
}

fn set<T>(
    slot: &mut Option<Setting<T>>,
    directive: &str,
    value: Value<'_>,
    parsed: T,
) -> Result<(), Fault> {
    claim(slot, directive, value)?;
    *slot = Some(Setting {
        value: parsed,
        pos: value.pos,
    });
    Ok(())
}

fn number(slot: &mut Option<Setting<u32>>, directive: &str, value: Value<'_>) -> Result<(), Fault> {
    claim(slot, directive, value)?;
    let parsed = nc_atoi(value.text).map_err(|error| {
        let (name, text) = (directive.to_owned(), value.text.to_owned());
        let kind = match error {
            AtoiError::NotANumber => ConfigErrorKind::NotANumber {
                directive: name,
                value: text,
            },
            AtoiError::Negative => ConfigErrorKind::NumberOutOfRange {
                directive: name,
                value: text,
            },
        };
        fault(value, directive, kind)
    })?;
    set(slot, directive, value, parsed)
}

fn size(slot: &mut Option<Setting<u64>>, directive: &str, value: Value<'_>) -> Result<(), Fault> {
    claim(slot, directive, value)?;
    let parsed = parse_size(value.text).ok_or_else(|| {
        fault(
            value,
            directive,
            ConfigErrorKind::NotASize {
                directive: directive.to_owned(),
                value: value.text.to_owned(),
            },
        )
    })?;
    set(slot, directive, value, parsed)
}

fn boolean(
    slot: &mut Option<Setting<bool>>,
    directive: &str,
    value: Value<'_>,
) -> Result<(), Fault> {
    claim(slot, directive, value)?;
    let parsed = match value.text {
        "true" => true,
        "false" => false,
        _ => {
            return Err(fault(
                value,
                directive,
                ConfigErrorKind::NotABool {
                    directive: directive.to_owned(),
                    value: value.text.to_owned(),
                },
            ));
        }
    };
    set(slot, directive, value, parsed)
}
