//! Pool `alpha` of rampart over real redis-servers, its servers named s0, s1, s2...: the set-up
//! most proxy behaviour tests run on, and which shard (the N of `sN`) each key lives on.

use std::path::Path;

use super::free_port;
use super::process::{Rampart, Redis, pool_yaml};
use super::random::scrambled;
use super::resp::Client;
use super::route::place;

/// What rampart answers requests on a server connection that failed: a server that refuses
/// connections, or one killed with requests in flight.
pub const TRANSPORT_ERRORS: [&str; 4] = [
    "ERR Connection refused",
    "ERR Connection reset by peer",
    "ERR Connection closed by server",
    "ERR Broken pipe",
];

/// `shards` redis-servers (started with `redis_args`) behind one rampart pool `alpha`, whose
/// servers are named s0, s1, s2...
pub struct Cluster {
    pub redis: Vec<Redis>,
    pub proxy: Rampart,
    pub port: u16,
}

impl Cluster {
    pub fn start(shards: usize, directives: &str, redis_args: &[&str]) -> Cluster {
        let redis: Vec<Redis> = (0..shards).map(|_| Redis::start(redis_args)).collect();
        Cluster::over(redis, directives)
    }

    pub fn over(redis: Vec<Redis>, directives: &str) -> Cluster {
        let ports: Vec<u16> = redis.iter().map(|redis| redis.port).collect();
        let (proxy, port) = alpha_proxy(directives, &ports);
        Cluster { redis, proxy, port }
    }

    pub fn conn(&self) -> Client {
        Client::open(self.port)
    }

    /// The shard index (the N of server `sN`) of each key, from `rampart route`.
    pub fn shards_of(&self, keys: &[String]) -> Vec<usize> {
        shards_of(&self.proxy.config, keys)
    }

    /// `per_shard` keys `prefix<n>` on each of `shards` shards.
    pub fn keys_by_shard(&self, prefix: &str, per_shard: usize) -> Vec<Vec<String>> {
        keys_by_shard(&self.proxy.config, prefix, per_shard, self.redis.len())
    }

    /// One key `prefix<n>` on each shard, in shard order.
    pub fn key_per_shard(&self, prefix: &str) -> Vec<String> {
        self.keys_by_shard(prefix, 1)
            .into_iter()
            .map(|mut bucket| bucket.remove(0))
            .collect()
    }
}

/// The config of pool `alpha`, listening on `port`, over servers `s0`, `s1`... on `backends`
/// (running or not).
pub fn alpha_yaml(port: u16, directives: &str, backends: &[u16]) -> String {
    let servers: Vec<String> = backends
        .iter()
        .enumerate()
        .map(|(index, backend)| format!("127.0.0.1:{backend}:1 s{index}"))
        .collect();
    pool_yaml("alpha", port, directives, &servers)
}

/// rampart serving `alpha_yaml` on a free port, once it answers; and that port.
pub fn alpha_proxy(directives: &str, backends: &[u16]) -> (Rampart, u16) {
    let port = free_port();
    let proxy = Rampart::start(&alpha_yaml(port, directives, backends), &[port], &[]);
    (proxy, port)
}

/// The shard index (the N of server `sN`) of each key, from `rampart route`.
pub fn shards_of(config: &Path, keys: &[String]) -> Vec<usize> {
    place(config, None, &[], keys)
        .iter()
        .map(|placed| {
            let name = &placed.server;
            name.strip_prefix('s')
                .and_then(|number| number.parse().ok())
                .unwrap_or_else(|| panic!("unexpected server name {name:?}"))
        })
        .collect()
}

/// `per_shard` keys `prefix<n>` on each of `shards` shards of the pool configured in `config`.
pub fn keys_by_shard(
    config: &Path,
    prefix: &str,
    per_shard: usize,
    shards: usize,
) -> Vec<Vec<String>> {
    let candidates: Vec<String> = (0..per_shard * shards * 20)
        .map(|n| scrambled(prefix, n))
        .collect();
    let mut buckets = vec![Vec::new(); shards];
    for (key, shard) in candidates.iter().zip(shards_of(config, &candidates)) {
        if buckets[shard].len() < per_shard {
            buckets[shard].push(key.clone());
        }
    }
    for (shard, bucket) in buckets.iter().enumerate() {
        assert_eq!(bucket.len(), per_shard, "not enough keys on shard {shard}");
    }
    buckets
}
