//! The validated, immutable configuration model: what the proxy and the binary consume. Every
//! default is already applied, and pools and servers are in nutcracker's order.

use std::fmt;
use std::path::PathBuf;

use rampart_placement::{Distribution, HashKind, HashTag, Node, Placement};

use crate::limits::ClientLimits;
use crate::secret::Password;

/// A whole nutcracker.yml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub file: PathBuf,
    /// Sorted as nutcracker sorts them: by byte length of the name, then by its bytes. This is
    /// the pool order of the stats JSON.
    pub pools: Vec<Pool>,
}

/// One pool (the top-level key of nutcracker.yml) with its defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    /// Line of the pool name.
    pub line: usize,
    pub listen: Listen,
    /// Line of the `listen:` value, for reporting a failed address resolution.
    pub listen_line: usize,
    /// `hash:`, default `fnv1a_64`.
    pub hash: HashKind,
    /// `hash_tag:`, default none.
    pub hash_tag: Option<HashTag>,
    /// `distribution:`, default `ketama`.
    pub distribution: Distribution,
    /// `timeout:` in ms; `None` when unset or 0 (nutcracker then waits forever).
    pub timeout_ms: Option<u64>,
    /// `backlog:`, default 512.
    pub backlog: u32,
    /// `redis:`, default false (memcache).
    pub redis: bool,
    /// `redis_auth:`, only allowed with `redis: true`; Debug does not print it.
    pub redis_auth: Option<Password>,
    /// `redis_db:`, default 0.
    pub redis_db: u32,
    /// `preconnect:`, default false.
    pub preconnect: bool,
    /// `auto_eject_hosts:`, default false.
    pub auto_eject_hosts: bool,
    /// `server_connections:`, default 1, never 0.
    pub server_connections: u32,
    /// `server_retry_timeout:` in ms, default 30000.
    pub server_retry_timeout_ms: u64,
    /// `server_failure_limit:`, default 2, as configured (nutcracker treats 0 like 1).
    pub server_failure_limit: u32,
    /// `tcpkeepalive:` (on accepted client sockets), default false.
    pub tcpkeepalive: bool,
    /// Sorted by (byte length, bytes) of the node name: index `i` is nutcracker's server `i`.
    pub servers: Vec<Server>,
    /// rampart extension: with `sentinels:`, how long a request for a shard that has no master
    /// waits for Sentinel to promote one before it gets `-TRYAGAIN` (default 30000 ms).
    pub failover_wait_ms: u64,
    /// rampart extension: with `sentinels:`, read-only commands for a shard whose master is
    /// unreachable go to one of its replicas instead of waiting (default false).
    pub replica_reads: bool,
    /// rampart extension: after a reload changes the pool's ring, the keys whose server
    /// changed move to it online (default false).
    pub migrate: bool,
    /// rampart extension: the most keys per second the background migrator moves (default
    /// 10000).
    pub migrate_rate: u32,
    /// rampart extension: the Redis Sentinels that watch this pool's shards, in config order.
    pub sentinels: Vec<SentinelAddr>,
    /// What one client may make the proxy hold (`client_connections` and rampart's
    /// `client_*` limits).
    pub limits: ClientLimits,
}

/// Where a pool accepts clients. Hosts are kept as written: resolving them is the binary's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// `host:port`, split at the last colon (so `::1:22121` is host `::1`).
    Tcp { host: String, port: u16 },
    /// `/path [perm]`. `permissions` is `Some` only when nutcracker would chmod the socket,
    /// i.e. when the octal mode is present and not 0.
    Unix {
        path: PathBuf,
        permissions: Option<u32>,
    },
}

/// One `servers:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The node name: hashed by ketama, the key in stats, the shard's identity.
    pub name: String,
    pub address: ServerAddress,
    /// At least 1.
    pub weight: u32,
    /// Line of the entry in the file.
    pub line: usize,
    /// Position of the entry in the pool's `servers:` list as written (0-based).
    pub config_index: usize,
    /// Never set by the parser. A reload that removes the server from a migrating pool keeps
    /// it, after the pool's other servers and out of the ring, until its keys have moved.
    pub draining: bool,
}

/// A backend address as written; TCP hosts are resolved lazily, on every new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAddress {
    Tcp { host: String, port: u16 },
    Unix { path: PathBuf },
}

/// A Redis Sentinel of the `sentinels:` extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelAddr {
    /// As written, without the brackets of a `[v6]:port` entry.
    pub host: String,
    pub port: u16,
    pub line: usize,
}

impl Pool {
    /// The pool's key placement over all of its servers in nutcracker's server order, but
    /// those draining (which come last).
    pub fn placement(&self) -> Placement {
        let nodes = self
            .servers
            .iter()
            .filter(|server| !server.draining)
            .map(|server| Node {
                name: server.name.as_bytes().to_vec(),
                weight: server.weight,
            })
            .collect();
        Placement::new(self.hash, self.hash_tag, self.distribution, nodes)
    }

    /// Whether `other` configures this pool identically, wherever in its file it is written:
    /// a reload leaves such a pool alone.
    pub fn same_settings(&self, other: &Pool) -> bool {
        self.without_lines() == other.without_lines()
    }

    /// Whether `other` has the same ring and shards: the same servers (names, addresses,
    /// weights, order), hash, hash tag, distribution and sentinels. Options such as
    /// `timeout` or the client limits may differ.
    pub fn same_shards(&self, other: &Pool) -> bool {
        let (mine, theirs) = (self.without_lines(), other.without_lines());
        (
            &mine.servers,
            mine.hash,
            &mine.hash_tag,
            mine.distribution,
            &mine.sentinels,
        ) == (
            &theirs.servers,
            theirs.hash,
            &theirs.hash_tag,
            theirs.distribution,
            &theirs.sentinels,
        )
    }

    /// Whether `other` places every key on the same server name: the same servers (names and
    /// weights, draining ones left out), hash, hash tag and distribution.
    pub fn same_ring(&self, other: &Pool) -> bool {
        let ring = |pool: &Pool| {
            pool.servers
                .iter()
                .filter(|server| !server.draining)
                .map(|server| (server.name.clone(), server.weight))
                .collect::<Vec<_>>()
        };
        (self.hash, self.hash_tag, self.distribution)
            == (other.hash, other.hash_tag, other.distribution)
            && ring(self) == ring(other)
    }

    /// Why this pool's keys cannot move online when its ring changes, if they cannot.
    pub fn cannot_migrate(&self) -> Option<&'static str> {
        if self.distribution == Distribution::Random {
            Some("\"distribution: random\" places no key on a server of its own")
        } else if self.auto_eject_hosts {
            Some("\"auto_eject_hosts: true\" moves keys on its own when a server fails")
        } else if self
            .servers
            .iter()
            .any(|server| matches!(server.address, ServerAddress::Unix { .. }))
        {
            Some("Redis MIGRATE needs a TCP address for every server, not a unix socket")
        } else {
            None
        }
    }

    /// A copy with every line number set to 0, for comparing what the settings are.
    fn without_lines(&self) -> Pool {
        let mut pool = self.clone();
        pool.line = 0;
        pool.listen_line = 0;
        for server in &mut pool.servers {
            server.line = 0;
        }
        for sentinel in &mut pool.sentinels {
            sentinel.line = 0;
        }
        pool
    }
}

/// `host:port`, or the socket path, as logs and tools show a listen address.
impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Tcp { host, port } => write!(f, "{host}:{port}"),
            Listen::Unix { path, .. } => write!(f, "{}", path.display()),
        }
    }
}

/// `host:port`, or the socket path, as logs and tools show a server's address.
impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddress::Tcp { host, port } => write!(f, "{host}:{port}"),
            ServerAddress::Unix { path } => write!(f, "{}", path.display()),
        }
    }
}
