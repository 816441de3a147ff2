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
    /// The pool's key placement over all of its servers, in nutcracker's server order.
    pub fn placement(&self) -> Placement {
        let nodes = self
            .servers
            .iter()
            .map(|server| Node {
                name: server.name.as_bytes().to_vec(),
                weight: server.weight,
            })
            .collect();
        Placement::new(self.hash, self.hash_tag, self.distribution, nodes)
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
