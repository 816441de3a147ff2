//! Typed configuration errors. nutcracker itself prints only "syntax is invalid"; rampart names
//! the file, the line and column, the directive, and what was expected instead.
//!
//! Every message is a complete sentence: [`ConfigError`] prefixes it with `FILE:LINE:COLUMN: `.
//! Messages about a directive name it themselves, so [`ConfigError::directive`] is metadata for
//! callers that want to match on it.

use std::fmt;
use std::path::PathBuf;

/// A 1-based position in the configuration file. Columns count characters, not bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub const START: Pos = Pos { line: 1, column: 1 };
}

/// A directive's value and where it was set.
#[derive(Debug, Clone)]
pub(crate) struct Setting<T> {
    pub value: T,
    pub pos: Pos,
}

/// A configuration file that nutcracker 0.5.0 would reject (or that rampart could not read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file as it was given to [`crate::load`] or [`crate::parse`].
    pub file: PathBuf,
    /// 1-based line; 0 only when the file could not be read at all.
    pub line: usize,
    /// 1-based column (in characters); 0 only when the file could not be read at all.
    pub column: usize,
    /// The pool directive the error is about, when there is one.
    pub directive: Option<String>,
    pub kind: ConfigErrorKind,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.kind)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.kind
            )
        }
    }
}

/// An error before it is tied to a file: where it is, which directive, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    pub pos: Pos,
    pub directive: Option<String>,
    pub kind: ConfigErrorKind,
}

impl Fault {
    /// A fault that is not about one directive (YAML syntax, structure, pool names).
    pub fn at(pos: Pos, kind: ConfigErrorKind) -> Fault {
        Fault {
            pos,
            directive: None,
            kind,
        }
    }

    /// A fault about the directive `name`.
    pub fn directive(pos: Pos, name: &str, kind: ConfigErrorKind) -> Fault {
        Fault {
            pos,
            directive: Some(name.to_owned()),
            kind,
        }
    }

    pub fn into_error(self, file: PathBuf) -> ConfigError {
        ConfigError {
            file,
            line: self.pos.line,
            column: self.pos.column,
            directive: self.directive,
            kind: self.kind,
        }
    }
}

/// What is wrong. Values are quoted with Rust string escapes, so stray spaces and control
/// characters are visible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigErrorKind {
    // ---- the file and its text ----
    #[error("cannot read the configuration file: {reason}")]
    Unreadable { reason: String },
    #[error("{detail}; the configuration must be UTF-8 (or UTF-16 with a byte order mark)")]
    InvalidEncoding { detail: String },
    #[error("control character U+{code:04X} is not allowed anywhere in a YAML file")]
    ControlCharacter { code: u32 },
    #[error(
        "tab character where nutcracker's YAML parser (libyaml) refuses one: in the \
         indentation, or right after a \"-\" or \"?\" indicator; use spaces"
    )]
    MisplacedTab,
    #[error(
        "this value contains a NUL character (\\0), which nutcracker cannot read reliably (it \
         cuts its copy short but keeps the full length); remove it"
    )]
    NulCharacter,
    #[error("invalid YAML: {message}{hint}")]
    Yaml { message: String, hint: &'static str },

    // ---- YAML features nutcracker refuses ----
    #[error("the file holds no YAML document; expected a mapping of pool names to pool directives")]
    NoDocument,
    #[error(
        "explicit document marker {marker:?} is not allowed: nutcracker accepts exactly one YAML \
         document, written without \"---\" or \"...\""
    )]
    DocumentMarker { marker: &'static str },
    #[error("YAML directive {text:?} is not allowed: nutcracker rejects %YAML and %TAG directives")]
    YamlDirective { text: String },
    #[error(
        "flow sequence \"[...]\" is not allowed (nutcracker rejects flow style): write a block \
         list, one \"- entry\" per line"
    )]
    FlowSequence,
    #[error(
        "flow mapping \"{{...}}\" is not allowed (nutcracker rejects flow style): write a block \
         mapping, or quote a value that starts with '{{' (hash_tag: \"{{}}\")"
    )]
    FlowMapping,
    #[error("anchor {text:?} is not allowed: nutcracker rejects YAML anchors and aliases")]
    Anchor { text: String },
    #[error("alias {text:?} is not allowed: nutcracker rejects YAML anchors and aliases")]
    Alias { text: String },
    #[error("tag {text:?} is not allowed: nutcracker rejects YAML tags; write the plain value")]
    Tag { text: String },

    // ---- the shape: pools, then directives ----
    #[error("the top level must be a mapping of pool names to pools, found {found}")]
    RootNotMapping { found: String },
    #[error(
        "pool {pool:?} must be an indented mapping of directives (listen, servers, ...), found {found}"
    )]
    PoolNotMapping { pool: String, found: String },
    #[error("directive {directive:?} is not indented, so it is outside any pool: {fix}", fix = indent_fix(.pool.as_deref()))]
    Outdented {
        directive: String,
        pool: Option<String>,
    },
    #[error(
        "a {what} cannot be used as a key: pool names and directive names must be plain strings"
    )]
    ComplexKey { what: &'static str },
    #[error(
        "this line is indented deeper than directive {directive:?} on line {line}, so YAML \
         reads it as the rest of that directive's value; indent it like the other directives"
    )]
    ContinuedValue { directive: String, line: usize },
    #[error(
        "directive {directive:?} has a nested mapping as its value; expected a plain value \
         (nutcracker allows two levels only: pool name, then \"directive: value\")"
    )]
    NestedMapping { directive: String },
    #[error(
        "directive {directive:?} has a {what} inside its list; expected one plain string per \
         \"- \" entry"
    )]
    NestedInList {
        directive: String,
        what: &'static str,
    },
    #[error(
        "directive {directive:?} is a second list in this pool (the first is {first:?} on line \
         {first_line}); nutcracker allows exactly one list per pool, the servers"
    )]
    SecondList {
        directive: String,
        first: &'static str,
        first_line: usize,
    },
    #[error(
        "pool {pool:?} has no \"servers:\" list; expected \"servers:\" followed by indented \
         \"- host:port:weight [name]\" entries"
    )]
    MissingList { pool: String },
    #[error("a pool name cannot be empty")]
    EmptyPoolName,
    #[error("a directive name cannot be empty")]
    EmptyDirectiveName,
    #[error("directive {directive:?} has an empty value; expected {expected}")]
    EmptyValue {
        directive: String,
        expected: &'static str,
    },

    // ---- directive values ----
    #[error("directive {directive:?} is unknown{hint}")]
    UnknownDirective { directive: String, hint: String },
    #[error(
        "directive {directive:?} is set twice in this pool (first on line {first_line}); each \
         directive may appear once per pool"
    )]
    Duplicate {
        directive: String,
        first_line: usize,
    },
    #[error(
        "directive {directive:?} has the value {value:?}, which is not a number; expected \
         decimal digits only (no sign, spaces or units)"
    )]
    NotANumber { directive: String, value: String },
    #[error(
        "directive {directive:?} has the value {value:?}, which nutcracker reads as a negative \
         32-bit number; expected at most 2147483647"
    )]
    NumberOutOfRange { directive: String, value: String },
    #[error(
        "directive {directive:?} has the value {value:?}, which is not a boolean; expected \
         exactly true or false (lowercase)"
    )]
    NotABool { directive: String, value: String },
    #[error(
        "directive {directive:?} has the value {value:?}, which is not a size; expected decimal \
         digits with an optional unit k, kb, m, mb, g or gb (such as 64mb)"
    )]
    NotASize { directive: String, value: String },
    #[error("directive {directive:?} cannot be 0; it must let at least one request through")]
    ZeroLimit { directive: String },
    #[error(
        "directive \"client_output_soft_limit\" ({soft} bytes) is above \"client_output_limit\" \
         ({hard} bytes), so it would never apply; lower it or raise the hard limit"
    )]
    SoftLimitAboveHardLimit { soft: u64, hard: u64 },
    #[error(
        "directive \"hash\" has the value {value:?}, which is not a valid hash; expected one of \
         {}",
        hash_names()
    )]
    InvalidHash { value: String },
    #[error(
        "directive \"distribution\" has the value {value:?}, which is not a valid distribution; \
         expected one of {}",
        distribution_names()
    )]
    InvalidDistribution { value: String },
    #[error(
        "directive \"hash_tag\" has the value {value:?}, which is {len} {unit} long; expected \
         exactly two characters (bytes), quoted, such as \"{{}}\"", unit = bytes(*.len)
    )]
    InvalidHashTag { value: String, len: usize },
    #[error(
        "directive \"server_connections\" cannot be 0; expected at least 1 connection per server"
    )]
    ZeroServerConnections,
    #[error(
        "directive \"redis_auth\" is only valid for a redis pool; add \"redis: true\" to pool \
         {pool:?}"
    )]
    RedisAuthWithoutRedis { pool: String },
    #[error(
        "directive \"failover_wait_ms\" only applies to a pool with \"sentinels:\"; add the \
         pool's sentinels or remove it from pool {pool:?}"
    )]
    FailoverWaitWithoutSentinels { pool: String },
    #[error(
        "directive \"replica_reads\" only applies to a pool with \"sentinels:\" (replicas are \
         learned from Sentinel); add the pool's sentinels or remove it from pool {pool:?}"
    )]
    ReplicaReadsWithoutSentinels { pool: String },
    #[error("directive \"migrate\" cannot be used in pool {pool:?}: {reason}")]
    MigrateUnsupported { pool: String, reason: &'static str },
    #[error("directive \"migrate_rate\" cannot be 0; expected at least 1 key per second")]
    ZeroMigrateRate,

    // ---- listen ----
    #[error(
        "directive \"listen\" has the value {value:?}, which has no ':' before a port; expected \
         \"host:port\" or \"/path/to/socket [permissions]\""
    )]
    ListenNoPort { value: String },
    #[error(
        "directive \"listen\" has the invalid port {port:?} in {value:?}; expected \"host:port\" \
         with a port from 1 to 65535"
    )]
    ListenInvalidPort { value: String, port: String },
    #[error(
        "directive \"listen\" has the host {host:?}, which cannot be resolved: write IPv6 \
         addresses without brackets, e.g. \"::1:22121\""
    )]
    ListenBracketedHost { host: String },
    #[error(
        "directive \"listen\" has the invalid file permission {perm:?} in {value:?}; expected \
         \"/path/to/socket\" optionally followed by one space and an octal mode up to 0777"
    )]
    ListenPermission { value: String, perm: String },
    #[error(
        "directive \"listen\" has a unix socket path of {len} bytes; expected at most 107 (the \
         size of sun_path)"
    )]
    ListenPathTooLong { len: usize },
    #[error(
        "directive \"listen\" has the same address as pool {other_pool:?} on line {other_line}; \
         each pool needs its own listen address"
    )]
    DuplicateListen {
        other_pool: String,
        other_line: usize,
    },
    #[error(
        "pool {pool:?} has no \"listen:\" directive; expected e.g. \"listen: 127.0.0.1:22121\""
    )]
    MissingListen { pool: String },

    // ---- servers ----
    #[error(
        "directive \"servers\" has the entry {value:?}, which is not \"host:port:weight [name]\" \
         or \"/path/to/socket:weight [name]\"{hint}"
    )]
    ServerFormat { value: String, hint: &'static str },
    #[error(
        "directive \"servers\" has the entry {value:?} with the invalid weight {weight:?}; \
         expected a whole number of at least 1, then optionally one space and a name without \
         spaces"
    )]
    ServerWeight { value: String, weight: String },
    #[error(
        "directive \"servers\" has the entry {value:?} with weight 0; expected a weight of at least 1"
    )]
    ServerZeroWeight { value: String },
    #[error(
        "directive \"servers\" has the entry {value:?} with the invalid port {port:?}; expected \
         a port from 1 to 65535"
    )]
    ServerPort { value: String, port: String },
    #[error(
        "directive \"servers\" has two entries with the node name {name:?} (the other on line \
         {other_line}); servers are identified by name: give one a distinct name"
    )]
    DuplicateServerName { name: String, other_line: usize },
    #[error(
        "pool {pool:?} has no servers; expected a \"servers:\" list of \"host:port:weight \
         [name]\" entries"
    )]
    NoServers { pool: String },

    // ---- pools ----
    #[error(
        "pool {pool:?} is defined twice (first on line {first_line}); pool names must be unique"
    )]
    DuplicatePool { pool: String, first_line: usize },

    // ---- rampart extension: sentinels ----
    #[error(
        "directive {directive:?} (a rampart extension) must be an indented list of {expected} \
         entries, one \"- entry\" per line"
    )]
    NotAList {
        directive: String,
        expected: &'static str,
    },
    #[error(
        "directive \"sentinels\" has the entry {value:?}, which is not \"host:port\" with a port \
         from 1 to 65535"
    )]
    SentinelFormat { value: String },
    #[error(
        "directive \"sentinels\" lists {value:?} twice (first on line {first_line}); each \
         sentinel may appear once per pool"
    )]
    DuplicateSentinel { value: String, first_line: usize },
}

fn bytes(len: usize) -> &'static str {
    if len == 1 { "byte" } else { "bytes" }
}

fn indent_fix(pool: Option<&str>) -> String {
    match pool {
        Some(pool) => {
            format!("indent it under the pool {pool:?} like that pool's other directives")
        }
        None => "indent it under a pool name".to_owned(),
    }
}

fn hash_names() -> String {
    let names: Vec<&str> = rampart_placement::HashKind::ALL
        .iter()
        .map(|kind| kind.name())
        .collect();
    names.join(", ")
}

fn distribution_names() -> String {
    let names: Vec<&str> = rampart_placement::Distribution::ALL
        .iter()
        .map(|kind| kind.name())
        .collect();
    names.join(", ")
}
