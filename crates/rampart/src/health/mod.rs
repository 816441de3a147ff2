//! The proxy's health, seen from outside as a client sees it: for every pool, is its listener
//! accepting, does the proxy answer PING itself, and does each shard answer a request sent
//! through the proxy? One [`Probe`] is built per configuration and run as often as wanted; each
//! run gives a [`HealthReport`]. Shared by `rampart check` (keepalived's `track_script`) and the
//! built-in VRRP speaker's health tracking.

mod keys;
pub mod report;
mod round;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use rampart_config::{Config, Listen, Password, Pool, ServerAddress};
use rampart_placement::Distribution;

use crate::proxy::listener::{ListenResolveError, resolve_tcp};

pub use report::HealthReport;

/// What the probe of a configuration needs, prepared once: each pool's address and password,
/// and the key that reaches each of its shards.
#[derive(Debug)]
pub struct Probe {
    pools: Vec<PoolProbe>,
}

/// A configuration the probe cannot be built for.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Listen(#[from] ListenResolveError),
    #[error(
        "pool '{pool}' is a memcache pool (no `redis: true`); rampart serves the redis protocol only"
    )]
    Memcache { pool: String },
}

#[derive(Debug)]
struct PoolProbe {
    name: String,
    /// Where the probe connects.
    target: ServerAddress,
    /// `target` as the report shows it.
    shown: String,
    /// The pool's `redis_auth`; Debug does not print it.
    auth: Option<Password>,
    shards: Vec<ShardProbe>,
}

#[derive(Debug)]
struct ShardProbe {
    name: String,
    /// Index in the pool's servers; `None` for the probe of a random-distribution pool.
    index: Option<usize>,
    /// `None` when no candidate key maps to the shard: it cannot be probed.
    key: Option<Vec<u8>>,
}

impl Probe {
    /// Builds the probe for a validated configuration: resolves each pool's listen address (an
    /// unspecified one, such as `0.0.0.0`, is probed on loopback) and finds, for every shard, a
    /// key `rampart:health:<n>` the pool's placement sends there. A pool with the random
    /// distribution gets a single probe key, answered by whichever shard the proxy picks.
    pub fn new(config: &Config) -> Result<Probe, ProbeError> {
        let pools = config
            .pools
            .iter()
            .map(|pool| PoolProbe::new(config, pool))
            .collect::<Result<_, _>>()?;
        Ok(Probe { pools })
    }
}

impl PoolProbe {
    fn new(config: &Config, pool: &Pool) -> Result<PoolProbe, ProbeError> {
        if !pool.redis {
            return Err(ProbeError::Memcache {
                pool: pool.name.clone(),
            });
        }
        let (target, shown) = match &pool.listen {
            Listen::Tcp { host, port } => {
                let address = on_loopback_if_unspecified(resolve_tcp(config, pool, host, *port)?);
                let target = ServerAddress::Tcp {
                    host: address.ip().to_string(),
                    port: address.port(),
                };
                (target, address.to_string())
            }
            Listen::Unix { path, .. } => (
                ServerAddress::Unix { path: path.clone() },
                path.display().to_string(),
            ),
        };
        let shards = if pool.distribution == Distribution::Random {
            vec![ShardProbe {
                name: "any (random distribution)".to_string(),
                index: None,
                key: Some(keys::candidate(0)),
            }]
        } else {
            let mut placement = pool.placement();
            keys::shard_keys(&mut placement, pool.distribution)
                .into_iter()
                .zip(&pool.servers)
                .enumerate()
                .map(|(index, (key, server))| ShardProbe {
                    name: server.name.clone(),
                    index: Some(index),
                    key,
                })
                .collect()
        };
        Ok(PoolProbe {
            name: pool.name.clone(),
            target,
            shown,
            auth: pool.redis_auth.clone(),
            shards,
        })
    }
}

/// A wildcard listen address accepts on every interface; the probe uses loopback's.
fn on_loopback_if_unspecified(address: SocketAddr) -> SocketAddr {
    let ip = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, address.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(yaml: &str) -> Config {
        rampart_config::parse(yaml, Path::new("test.yml")).expect("valid config")
    }

    fn probe(yaml: &str) -> Probe {
        Probe::new(&config(yaml)).expect("probe")
    }

    #[test]
    fn every_shard_of_a_ketama_pool_gets_its_key() {
        let config = config(
            "alpha:\n  listen: 0.0.0.0:22121\n  redis: true\n  redis_auth: secret\n  servers:\n   - 127.0.0.1:6379:1 one\n   - 127.0.0.1:6380:1 two\n   - 127.0.0.1:6381:1 three\n",
        );
        let probe = Probe::new(&config).expect("probe");
        let [pool] = probe.pools.as_slice() else {
            panic!("one pool expected");
        };
        assert_eq!(pool.shown, "127.0.0.1:22121");
        assert_eq!(pool.auth.as_ref().map(Password::expose), Some("secret"));
        let names: Vec<&str> = pool
            .shards
            .iter()
            .map(|shard| shard.name.as_str())
            .collect();
        assert_eq!(names, ["one", "two", "three"]);
        let mut placement = config.pools[0].placement();
        for (index, shard) in pool.shards.iter().enumerate() {
            assert_eq!(shard.index, Some(index));
            let key = shard.key.as_ref().expect("a key");
            assert_eq!(placement.server_for_key(key), Some(index));
        }
    }

    #[test]
    fn a_random_pool_gets_one_probe_key() {
        let probe = probe(
            "r:\n  listen: /tmp/rampart-probe.sock\n  redis: true\n  distribution: random\n  servers:\n   - 127.0.0.1:6379:1\n   - 127.0.0.1:6380:1\n",
        );
        let [pool] = probe.pools.as_slice() else {
            panic!("one pool expected");
        };
        assert_eq!(pool.shown, "/tmp/rampart-probe.sock");
        let [shard] = pool.shards.as_slice() else {
            panic!("one probe expected");
        };
        assert_eq!(shard.index, None);
        assert_eq!(shard.key.as_deref(), Some(&b"rampart:health:0"[..]));
    }

    #[test]
    fn a_memcache_pool_is_refused() {
        let config = config("m:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11211:1\n");
        assert!(matches!(
            Probe::new(&config),
            Err(ProbeError::Memcache { .. })
        ));
    }

    #[test]
    fn wildcard_addresses_are_probed_on_loopback() {
        let v4: SocketAddr = "0.0.0.0:1".parse().expect("address");
        let v6: SocketAddr = "[::]:2".parse().expect("address");
        let other: SocketAddr = "10.0.0.1:3".parse().expect("address");
        assert_eq!(on_loopback_if_unspecified(v4).to_string(), "127.0.0.1:1");
        assert_eq!(on_loopback_if_unspecified(v6).to_string(), "[::1]:2");
        assert_eq!(on_loopback_if_unspecified(other), other);
    }
}
