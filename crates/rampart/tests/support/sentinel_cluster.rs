//! The failover tests' cluster: two shards (a master and maybe a replica each) monitored by
//! three sentinels with rampart in front (or nutcracker, for the baseline), the data keys
//! written through it, and which shard each test key lives on.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::process::{Nutcracker, Rampart, Redis, pool_yaml};
use super::replication::{SETUP_LIMIT, node, replica_of, wait_caught_up};
use super::resp::{Client, Reply, bulk, cmd};
use super::route::place;
use super::sentinel::{Monitor, Sentinel, majority_master, wait_sentinels_ready};
use super::stats::server_counter;
use super::{free_port, tail, wait_until};

/// Keys written before the failover and read back during and after it.
pub const DATA_KEYS: usize = 500;
/// `w:<n>` keys routed up front for the load's writes.
const WRITE_KEYS: usize = 24_000;

/// The value every test key is written with.
pub fn value_of(key: &str) -> String {
    format!("value-of-{key}")
}

pub const SHARD_NAMES: [&str; 2] = ["shardA", "shardB"];

/// One shard: its first master and, maybe, a replica (the one Sentinel will promote).
pub struct Shard {
    pub name: String,
    pub master: Redis,
    pub replica: Option<Redis>,
}

/// Starts the shards (with a replica where asked), replicas linked.
pub fn start_shards(with_replica: &[bool]) -> Vec<Shard> {
    with_replica
        .iter()
        .zip(SHARD_NAMES)
        .map(|(&replica, name)| {
            let master = node(&[]);
            let replica = replica.then(|| replica_of(master.port));
            Shard {
                name: name.to_string(),
                master,
                replica,
            }
        })
        .collect()
}

pub fn monitors_of(shards: &[Shard]) -> Vec<Monitor> {
    shards
        .iter()
        .map(|shard| Monitor {
            name: shard.name.clone(),
            port: shard.master.port,
            replicas: shard.replica.iter().map(|node| node.port).collect(),
        })
        .collect()
}

/// The shards' first masters as pool servers, named after their Sentinel master names.
fn shard_servers(shards: &[Shard]) -> Vec<String> {
    shards
        .iter()
        .map(|shard| format!("127.0.0.1:{}:1 {}", shard.master.port, shard.name))
        .collect()
}

/// The rampart config: ketama over the shards, named after their Sentinel master names.
pub fn rampart_yaml(port: u16, shards: &[Shard], sentinels: &[u16], options: &Options) -> String {
    let mut directives = format!(
        "  hash: fnv1a_64\n  distribution: ketama\n  timeout: 1000\n  \
         failover_wait_ms: {}\n  replica_reads: {}\n  sentinels:\n",
        options.failover_wait_ms, options.replica_reads
    );
    for sentinel in sentinels {
        directives.push_str(&format!("   - 127.0.0.1:{sentinel}\n"));
    }
    pool_yaml("alpha", port, &directives, &shard_servers(shards))
}

/// nutcracker's config for the same shards (no Sentinel; ejection as twemproxy users set it).
pub fn nutcracker_yaml(port: u16, shards: &[Shard]) -> String {
    let directives = "  hash: fnv1a_64\n  distribution: ketama\n  timeout: 1000\n  \
                      auto_eject_hosts: true\n  server_failure_limit: 1\n  \
                      server_retry_timeout: 2000\n";
    pool_yaml("alpha", port, directives, &shard_servers(shards))
}

/// Which shard (index into SHARD_NAMES) each key lives on, from `rampart route`.
pub struct Routes {
    /// `k:<i>` keys and their shard.
    pub data: Vec<(String, usize)>,
    /// `w:<n>` keys, per shard.
    pub writes: Vec<Vec<String>>,
}

impl Routes {
    pub fn of(config: &Path) -> Routes {
        let data: Vec<String> = (0..DATA_KEYS).map(|index| format!("k:{index}")).collect();
        let writes: Vec<String> = (0..WRITE_KEYS).map(|index| format!("w:{index}")).collect();
        let all: Vec<&String> = data.iter().chain(&writes).collect();
        let shard_of: HashMap<String, usize> = place(config, None, &[], &all)
            .into_iter()
            .map(|placed| {
                let shard = SHARD_NAMES
                    .iter()
                    .position(|name| *name == placed.server)
                    .unwrap_or_else(|| panic!("unknown server in route output: {placed:?}"));
                (String::from_utf8(placed.key).unwrap(), shard)
            })
            .collect();
        let data: Vec<(String, usize)> = data
            .into_iter()
            .map(|key| {
                let shard = shard_of[&key];
                (key, shard)
            })
            .collect();
        let mut per_shard = vec![Vec::new(); SHARD_NAMES.len()];
        for key in writes {
            per_shard[shard_of[&key]].push(key);
        }
        for (shard, keys) in per_shard.iter().enumerate() {
            assert!(
                keys.len() > WRITE_KEYS / 4 && data.iter().any(|(_, on)| *on == shard),
                "keys are badly spread over the shards"
            );
        }
        Routes {
            data,
            writes: per_shard,
        }
    }

    pub fn data_on(&self, shard: usize) -> usize {
        self.data.iter().filter(|(_, on)| *on == shard).count()
    }
}

/// Writes the data keys through the proxy on `port`.
pub fn write_data(port: u16, routes: &Routes) {
    let commands: Vec<Vec<Vec<u8>>> = routes
        .data
        .iter()
        .map(|(key, _)| cmd(&["SET", key, &value_of(key)]))
        .collect();
    let replies = Client::connect(port)
        .expect("connect to the proxy")
        .pipeline(&commands);
    assert!(
        replies.iter().all(Reply::is_ok),
        "writing the data keys: {replies:?}"
    );
}

/// Data keys that do not read back with their value through the proxy on `port`.
pub fn unreadable_data(port: u16, routes: &Routes) -> Vec<(String, Reply)> {
    let commands: Vec<Vec<Vec<u8>>> = routes
        .data
        .iter()
        .map(|(key, _)| cmd(&["GET", key]))
        .collect();
    let replies = Client::connect(port)
        .expect("connect to the proxy")
        .pipeline(&commands);
    routes
        .data
        .iter()
        .zip(replies)
        .filter(|((key, _), reply)| *reply != bulk(value_of(key)))
        .map(|((key, _), reply)| (key.clone(), reply))
        .collect()
}

/// Waits until each shard's replica has replicated everything its master has.
pub fn wait_replicated(shards: &[Shard]) {
    for shard in shards {
        if let Some(replica) = &shard.replica {
            wait_caught_up(shard.master.port, replica.port);
        }
    }
}

/// Shards, sentinels and rampart, all ready for a failover.
pub struct Cluster {
    pub shards: Vec<Shard>,
    pub sentinels: Vec<Sentinel>,
    pub rampart: Rampart,
    pub port: u16,
    pub routes: Arc<Routes>,
}

pub struct Options {
    pub replicas: Vec<bool>,
    pub failover_wait_ms: u64,
    pub write_data: bool,
    /// The pool's `replica_reads`.
    pub replica_reads: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            replicas: vec![true, true],
            failover_wait_ms: 10_000,
            write_data: true,
            replica_reads: false,
        }
    }
}

impl Cluster {
    pub fn start(options: Options) -> Cluster {
        let shards = start_shards(&options.replicas);
        let monitors = monitors_of(&shards);
        let sentinels = Sentinel::start_group(&[monitors.clone(), monitors.clone(), monitors]);
        Cluster::front(shards, sentinels, &options)
    }

    /// Puts rampart in front of running shards and sentinels, waits until everything is
    /// ready, and writes the data keys.
    pub fn front(shards: Vec<Shard>, sentinels: Vec<Sentinel>, options: &Options) -> Cluster {
        wait_sentinels_ready(&sentinels);
        let port = free_port();
        let sentinel_ports: Vec<u16> = sentinels.iter().map(|sentinel| sentinel.port).collect();
        let yaml = rampart_yaml(port, &shards, &sentinel_ports, options);
        let rampart = Rampart::start(&yaml, &[port], &["--workers", "2"]);
        let routes = Arc::new(Routes::of(&rampart.config));
        let cluster = Cluster {
            shards,
            sentinels,
            rampart,
            port,
            routes,
        };
        cluster.wait_subscribed();
        if options.write_data {
            write_data(port, &cluster.routes);
            wait_replicated(&cluster.shards);
        }
        cluster
    }

    /// Waits until rampart follows the events of every running sentinel.
    pub fn wait_subscribed(&self) {
        for sentinel in &self.sentinels {
            wait_until(
                &format!("rampart subscribed to sentinel {}", sentinel.port),
                SETUP_LIMIT,
                || sentinel.subscribers() >= 1,
            );
        }
    }

    /// kill -9 of a shard's current first master; returns when it is dead.
    pub fn kill_master(&mut self, shard: usize) -> Instant {
        self.shards[shard].master.kill();
        Instant::now()
    }

    /// Where the majority of the reachable sentinels say the shard's master is.
    pub fn sentinel_master(&self, shard: usize) -> Option<u16> {
        majority_master(&self.sentinels, &self.shards[shard].name)
    }

    /// A sentinel counter (`failovers`, `sdown`, `sdown_cleared`, `odown`) of a shard.
    pub fn sentinel_stat(&self, shard: usize, counter: &str) -> u64 {
        server_counter(&self.rampart.stats(), "alpha", SHARD_NAMES[shard], counter)
    }

    /// rampart's log, the last lines, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.rampart.log_text(), 60)
    }

    /// The last lines of every redis-server and sentinel log, for failure messages.
    pub fn other_logs(&self) -> String {
        let mut out = String::new();
        for shard in &self.shards {
            let nodes = [
                ("master", Some(&shard.master)),
                ("replica", shard.replica.as_ref()),
            ];
            for (role, node) in nodes {
                if let Some(node) = node {
                    out.push_str(&format!(
                        "--- {} first {role} on {}:\n{}\n",
                        shard.name,
                        node.port,
                        tail(&node.log(), 25)
                    ));
                }
            }
        }
        for sentinel in &self.sentinels {
            out.push_str(&format!(
                "--- sentinel {}:\n{}\n",
                sentinel.port,
                tail(&sentinel.log(), 25)
            ));
        }
        out
    }
}

/// Starts nutcracker in front of the shards (for the baseline).
pub fn start_nutcracker(shards: &[Shard]) -> (Nutcracker, u16) {
    let port = free_port();
    let nutcracker = Nutcracker::start(&nutcracker_yaml(port, shards), &[port]);
    (nutcracker, port)
}
