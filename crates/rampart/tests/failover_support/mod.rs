//! Harness for the failover tests: redis-server masters and replicas on chosen or free ports,
//! a group of redis-sentinel processes (each with its own rewritable config in a temp dir),
//! rampart or nutcracker in front, the routing of test keys, and a read/write load thread that
//! records every request's outcome. Every process is started here and killed by PID.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::process::{Guarded, Nutcracker, Rampart, Redis, pings, pool_yaml};
use crate::support::resp::{Client, Reply};
use crate::support::route::place;
use crate::support::stats::server_counter;
use crate::support::{free_port, wait_until};

/// Keys written before the failover and read back during and after it.
pub const DATA_KEYS: usize = 500;
/// `w:<n>` keys routed up front for the load's writes.
const WRITE_KEYS: usize = 24_000;
/// Sentinel's `down-after-milliseconds` in every test.
pub const DOWN_AFTER_MS: u64 = 1000;
/// How long after a kill writes to the failed shard must succeed again: down-after + 3 s.
pub const RECOVERY_LIMIT: Duration = Duration::from_millis(DOWN_AFTER_MS + 3000);
/// How long setup steps (replication, sentinel discovery) may take.
const SETUP_LIMIT: Duration = Duration::from_secs(20);

// ------------------------------------------------------------------------------------------
// Small RESP helpers
// ------------------------------------------------------------------------------------------

/// Connects, sends one command, returns the reply.
pub fn try_call(port: u16, args: &[&str]) -> io::Result<Reply> {
    let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
    Client::connect(port)?.try_call(&args)
}

pub fn call(port: u16, args: &[&str]) -> Reply {
    try_call(port, args).unwrap_or_else(|error| panic!("{args:?} on port {port}: {error}"))
}

/// A bulk, status or integer reply as text.
pub fn text(reply: &Reply) -> Option<String> {
    match reply {
        Reply::Bulk(Some(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Reply::Status(status) => Some(status.clone()),
        Reply::Integer(number) => Some(number.to_string()),
        _ => None,
    }
}

/// A flat `name value name value ...` array as a map.
fn fields(reply: &Reply) -> HashMap<String, String> {
    match reply {
        Reply::Array(Some(items)) => items
            .chunks(2)
            .filter_map(|pair| Some((text(pair.first()?)?, text(pair.get(1)?)?)))
            .collect(),
        _ => HashMap::new(),
    }
}

/// An array of flat field arrays (`SENTINEL replicas`, `SENTINEL sentinels`).
fn entries(reply: &Reply) -> Vec<HashMap<String, String>> {
    match reply {
        Reply::Array(Some(items)) => items.iter().map(fields).collect(),
        _ => Vec::new(),
    }
}

/// `INFO <sections>` of a server as `field -> value`; empty if it cannot be reached.
pub fn info(port: u16, sections: &[&str]) -> HashMap<String, String> {
    let mut args = vec!["INFO"];
    args.extend_from_slice(sections);
    match try_call(port, &args) {
        Ok(Reply::Bulk(Some(body))) => String::from_utf8_lossy(&body)
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.to_string(), value.trim().to_string()))
            .collect(),
        _ => HashMap::new(),
    }
}

/// Number of keys in database 0 of a server.
pub fn dbsize(port: u16) -> i64 {
    match call(port, &["DBSIZE"]) {
        Reply::Integer(count) => count,
        other => panic!("DBSIZE on {port} gave {other:?}"),
    }
}

/// The last `lines` lines of a log.
pub fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The value every test key is written with.
pub fn value_of(key: &str) -> String {
    format!("value-of-{key}")
}

// ------------------------------------------------------------------------------------------
// redis-server
// ------------------------------------------------------------------------------------------

/// Flags of every redis-server here: diskless replication without delay, so that a replica
/// syncs at once.
const REPLICATION: [&str; 4] = [
    "--repl-diskless-sync",
    "yes",
    "--repl-diskless-sync-delay",
    "0",
];

/// A redis-server (master unless `extra` says otherwise) on a free port.
pub fn node(extra: &[&str]) -> Redis {
    node_on(free_port(), extra)
}

/// A redis-server on `port` (also to bring a killed master back on its old port).
pub fn node_on(port: u16, extra: &[&str]) -> Redis {
    Redis::start_on(port, &[&REPLICATION[..], extra].concat())
}

/// A replica of the master on `master`, waited for until its link is up.
pub fn replica_of(master: u16) -> Redis {
    let master = master.to_string();
    let node = node(&["--replicaof", "127.0.0.1", &master]);
    wait_link_up(&node, &master);
    node
}

/// Waits until `node` replicates from `master` with its link up.
pub fn wait_link_up(node: &Redis, master: &str) {
    wait_until(
        &format!("replica {} linked to {master}", node.port),
        SETUP_LIMIT,
        || {
            let info = info(node.port, &["replication"]);
            info.get("role").map(String::as_str) == Some("slave")
                && info.get("master_port").map(String::as_str) == Some(master)
                && info.get("master_link_status").map(String::as_str) == Some("up")
        },
    );
}

// ------------------------------------------------------------------------------------------
// redis-sentinel
// ------------------------------------------------------------------------------------------

/// What one sentinel monitors: a master name at an address, with its known replicas.
#[derive(Clone, Debug)]
pub struct Monitor {
    pub name: String,
    pub port: u16,
    pub replicas: Vec<u16>,
}

/// A redis-sentinel process with its own config file (which it rewrites) in a temp dir.
pub struct Sentinel {
    pub port: u16,
    pub id: String,
    pub monitors: Vec<Monitor>,
    pub dir: tempfile::TempDir,
    pub conf: PathBuf,
    process: Guarded,
    restarts: usize,
}

impl Sentinel {
    /// Starts one sentinel per monitor list. Sentinels that monitor the same name at the same
    /// address are told about each other (`known-sentinel`, with fixed ids), as sentinel itself
    /// would write it after discovery, so that failover is authorised without waiting for
    /// hello messages.
    pub fn start_group(monitors: &[Vec<Monitor>]) -> Vec<Sentinel> {
        let ports: Vec<u16> = monitors.iter().map(|_| free_port()).collect();
        let ids: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(index, port)| format!("{:032x}{:08x}", u128::from(*port), index + 1))
            .collect();
        let mut sentinels = Vec::new();
        for (index, own) in monitors.iter().enumerate() {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut conf = format!(
                "port {}\nbind 127.0.0.1\ndaemonize no\nprotected-mode no\ndir {}\nsentinel myid {}\n",
                ports[index],
                dir.path().display(),
                ids[index]
            );
            for monitor in own {
                let name = &monitor.name;
                conf.push_str(&format!(
                    "sentinel monitor {name} 127.0.0.1 {} 2\n\
                     sentinel down-after-milliseconds {name} {DOWN_AFTER_MS}\n\
                     sentinel failover-timeout {name} 3000\n\
                     sentinel parallel-syncs {name} 1\n",
                    monitor.port
                ));
                for replica in &monitor.replicas {
                    conf.push_str(&format!(
                        "sentinel known-replica {name} 127.0.0.1 {replica}\n"
                    ));
                }
                for (other, theirs) in monitors.iter().enumerate() {
                    let same = theirs
                        .iter()
                        .any(|them| them.name == *name && them.port == monitor.port);
                    if other != index && same {
                        conf.push_str(&format!(
                            "sentinel known-sentinel {name} 127.0.0.1 {} {}\n",
                            ports[other], ids[other]
                        ));
                    }
                }
            }
            let path = dir.path().join("sentinel.conf");
            fs::write(&path, conf).expect("write sentinel.conf");
            let process = Sentinel::spawn(&path, dir.path(), 0);
            sentinels.push(Sentinel {
                port: ports[index],
                id: ids[index].clone(),
                monitors: own.clone(),
                dir,
                conf: path,
                process,
                restarts: 0,
            });
        }
        for sentinel in &mut sentinels {
            sentinel.wait_pings();
        }
        sentinels
    }

    fn spawn(conf: &Path, dir: &Path, restarts: usize) -> Guarded {
        Guarded::spawn(
            Command::new("redis-sentinel").arg(conf),
            &dir.join(format!("sentinel.{restarts}.log")),
        )
    }

    fn wait_pings(&mut self) {
        let port = self.port;
        let (dir, restarts) = (self.dir.path(), self.restarts);
        self.process.wait_ready(
            &format!("redis-sentinel on {port}"),
            || pings(port),
            || {
                format!(
                    "redis-sentinel on {port} exited:\n{}",
                    sentinel_log(dir, restarts)
                )
            },
        );
    }

    /// kill -9.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// kill -9, then start again on the same port with the config it rewrote.
    pub fn restart(&mut self) {
        self.process.kill();
        self.restarts += 1;
        self.process = Sentinel::spawn(&self.conf, self.dir.path(), self.restarts);
        self.wait_pings();
    }

    pub fn log(&self) -> String {
        sentinel_log(self.dir.path(), self.restarts)
    }

    /// `SENTINEL get-master-addr-by-name`'s port.
    pub fn master_port(&self, name: &str) -> Option<u16> {
        match try_call(self.port, &["SENTINEL", "get-master-addr-by-name", name]) {
            Ok(Reply::Array(Some(items))) => text(items.get(1)?)?.parse().ok(),
            _ => None,
        }
    }

    /// Whether this sentinel has `name`'s master at `port`, not down, and has had a PING
    /// reply from it since it started watching it there (no PING outstanding).
    pub fn master_link_healthy(&self, name: &str, port: u16) -> bool {
        let master = try_call(self.port, &["SENTINEL", "master", name])
            .map(|reply| fields(&reply))
            .unwrap_or_default();
        master.get("port") == Some(&port.to_string())
            && master.get("flags").map(String::as_str) == Some("master")
            && master.get("last-ping-sent").map(String::as_str) == Some("0")
    }

    /// Speeds up the sentinel's periodic INFO and hello messages (`SENTINEL DEBUG`).
    pub fn debug(&self, settings: &[&str]) {
        let mut args = vec!["SENTINEL", "DEBUG"];
        args.extend_from_slice(settings);
        assert!(
            call(self.port, &args).is_ok(),
            "SENTINEL DEBUG {settings:?}"
        );
    }

    /// Every monitored master is up, every configured replica is connected, and every other
    /// sentinel watching the same master is known and reachable.
    pub fn ready(&self, group: &[Sentinel]) -> bool {
        self.monitors.iter().all(|monitor| {
            let name = monitor.name.as_str();
            let master = try_call(self.port, &["SENTINEL", "master", name])
                .map(|reply| fields(&reply))
                .unwrap_or_default();
            let replicas = try_call(self.port, &["SENTINEL", "replicas", name])
                .map(|reply| entries(&reply))
                .unwrap_or_default();
            let peers = try_call(self.port, &["SENTINEL", "sentinels", name])
                .map(|reply| entries(&reply))
                .unwrap_or_default();
            let expected_peers = group
                .iter()
                .filter(|other| {
                    other.port != self.port
                        && other
                            .monitors
                            .iter()
                            .any(|them| them.name == name && them.port == monitor.port)
                })
                .count();
            master.get("flags").map(String::as_str) == Some("master")
                && monitor.replicas.iter().all(|replica| {
                    replicas.iter().any(|entry| {
                        entry.get("port") == Some(&replica.to_string())
                            && entry.get("flags").map(String::as_str) == Some("slave")
                            && entry.get("master-link-status").map(String::as_str) == Some("ok")
                    })
                })
                && peers.len() == expected_peers
                && peers
                    .iter()
                    .all(|peer| peer.get("flags").map(String::as_str) == Some("sentinel"))
        })
    }

    /// Connections that subscribed to rampart's four channels (rampart's event links).
    pub fn subscribers(&self) -> usize {
        match try_call(self.port, &["CLIENT", "LIST"]) {
            Ok(Reply::Bulk(Some(list))) => String::from_utf8_lossy(&list)
                .lines()
                .filter(|line| line.contains(" sub=4 "))
                .count(),
            _ => 0,
        }
    }

    /// Connections it ever accepted, counting the one this question comes on.
    pub fn connections_received(&self) -> u64 {
        info(self.port, &["stats"])
            .get("total_connections_received")
            .and_then(|count| count.parse().ok())
            .unwrap_or(0)
    }

    /// Waits until rampart has asked this sentinel `rounds` more times where the masters are:
    /// rampart opens one connection per poll round, other sentinels keep theirs open, and
    /// the connections this wait opens itself are subtracted.
    pub fn wait_polled(&self, rounds: u64) {
        let start = self.connections_received();
        let mut own = 0;
        wait_until(
            &format!(
                "{rounds} rounds of rampart's polling of sentinel {}",
                self.port
            ),
            Duration::from_secs(10),
            || {
                own += 1;
                self.connections_received() >= start + own + rounds
            },
        );
    }
}

/// The logs of every run of a sentinel, in order.
fn sentinel_log(dir: &Path, restarts: usize) -> String {
    (0..=restarts)
        .map(|run| fs::read_to_string(dir.join(format!("sentinel.{run}.log"))).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n--- restarted ---\n")
}

pub fn wait_sentinels_ready(sentinels: &[Sentinel]) {
    for sentinel in sentinels {
        let limit = Instant::now() + SETUP_LIMIT;
        while !sentinel.ready(sentinels) {
            assert!(
                Instant::now() < limit,
                "sentinel {} never saw its masters, replicas and peers; its log:\n{}\n\
                 SENTINEL replicas/sentinels: {:?}",
                sentinel.port,
                tail(&sentinel.log(), 40),
                sentinel
                    .monitors
                    .iter()
                    .map(|monitor| (
                        try_call(sentinel.port, &["SENTINEL", "replicas", &monitor.name]).ok(),
                        try_call(sentinel.port, &["SENTINEL", "sentinels", &monitor.name]).ok()
                    ))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

// ------------------------------------------------------------------------------------------
// A two-shard cluster behind rampart (or nutcracker)
// ------------------------------------------------------------------------------------------

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
        .map(|(key, _)| {
            vec![
                b"SET".to_vec(),
                key.clone().into_bytes(),
                value_of(key).into_bytes(),
            ]
        })
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
        .map(|(key, _)| vec![b"GET".to_vec(), key.clone().into_bytes()])
        .collect();
    let replies = Client::connect(port)
        .expect("connect to the proxy")
        .pipeline(&commands);
    routes
        .data
        .iter()
        .zip(replies)
        .filter(|((key, _), reply)| *reply != Reply::Bulk(Some(value_of(key).into_bytes())))
        .map(|((key, _), reply)| (key.clone(), reply))
        .collect()
}

/// Waits until the replica on `replica` has applied everything its master on `master` had
/// when this was called. (`WAIT` on a fresh connection would prove nothing: it only waits for
/// that connection's own writes.)
pub fn wait_caught_up(master: u16, replica: u16) {
    let offset = |port: u16, field: &str| -> Option<i64> {
        info(port, &["replication"]).get(field)?.parse().ok()
    };
    let target = offset(master, "master_repl_offset").expect("the master's replication offset");
    wait_until(
        &format!("replica {replica} to catch up with master {master} (offset {target})"),
        SETUP_LIMIT,
        || offset(replica, "slave_repl_offset").is_some_and(|applied| applied >= target),
    );
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

/// Where the majority of the reachable sentinels say the master called `name` is.
pub fn majority_master(sentinels: &[Sentinel], name: &str) -> Option<u16> {
    let answers: Vec<u16> = sentinels
        .iter()
        .filter_map(|sentinel| sentinel.master_port(name))
        .collect();
    answers
        .iter()
        .copied()
        .find(|port| answers.iter().filter(|other| *other == port).count() * 2 > answers.len())
}

/// Starts nutcracker in front of the shards (for the baseline).
pub fn start_nutcracker(shards: &[Shard]) -> (Nutcracker, u16) {
    let port = free_port();
    let nutcracker = Nutcracker::start(&nutcracker_yaml(port, shards), &[port]);
    (nutcracker, port)
}

// ------------------------------------------------------------------------------------------
// The read/write load
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Get,
    Set,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A GET that returned nil or another value than written (or a SET that did not say OK
    /// nor fail).
    Wrong(String),
    /// An error reply or a broken connection.
    Error(String),
}

#[derive(Debug, Clone)]
pub struct Event {
    pub started: Instant,
    pub finished: Instant,
    pub kind: Kind,
    pub shard: usize,
    pub key: String,
    pub outcome: Outcome,
}

impl Event {
    /// A successful SET to `shard` that started at or after `since`.
    pub fn is_write_ok(&self, shard: usize, since: Instant) -> bool {
        self.kind == Kind::Set
            && self.shard == shard
            && self.started >= since
            && self.outcome == Outcome::Ok
    }
}

/// One client alternating GETs of random data keys and SETs of fresh `w:<n>` keys (shard A,
/// shard B, A, ...), one request at a time, paced lightly.
pub struct Load {
    stop: Arc<AtomicBool>,
    events: Arc<Mutex<Vec<Event>>>,
    thread: Option<JoinHandle<()>>,
}

impl Load {
    pub fn start(port: u16, routes: &Arc<Routes>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let events = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, events, routes) =
                (Arc::clone(&stop), Arc::clone(&events), Arc::clone(routes));
            std::thread::spawn(move || run_load(port, &routes, &stop, &events))
        };
        let load = Load {
            stop,
            events,
            thread: Some(thread),
        };
        wait_until("the load to get going", Duration::from_secs(10), || {
            load.events()
                .iter()
                .filter(|event| event.outcome == Outcome::Ok)
                .count()
                >= 20
        });
        load
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// When the first write to `shard` that started at or after `since` succeeded.
    pub fn first_write_ok(&self, shard: usize, since: Instant) -> Option<Instant> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .find(|event| event.is_write_ok(shard, since))
            .map(|event| event.finished)
    }

    /// Waits until a write to `shard` started after `since` succeeded; returns how long after
    /// `since` it finished.
    pub fn wait_recovery(
        &self,
        shard: usize,
        since: Instant,
        log: impl Fn() -> String,
    ) -> Duration {
        let limit = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(at) = self.first_write_ok(shard, since) {
                return at - since;
            }
            assert!(
                Instant::now() < limit,
                "writes to {} never succeeded again after the kill; last errors: {:?}\n\
                 rampart log:\n{}",
                SHARD_NAMES[shard],
                self.events()
                    .iter()
                    .rev()
                    .filter(|event| matches!(event.outcome, Outcome::Error(_)))
                    .take(5)
                    .map(|event| event.outcome.clone())
                    .collect::<Vec<_>>(),
                log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Lets the load run on for `span` (pacing, not synchronisation).
    pub fn run_for(&self, span: Duration) {
        let until = Instant::now() + span;
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(mut self) -> Report {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the load thread");
        }
        Report {
            events: self.events(),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn run_load(port: u16, routes: &Routes, stop: &AtomicBool, events: &Mutex<Vec<Event>>) {
    let mut client: Option<Client> = None;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = vec![0usize; routes.writes.len()];
    let mut turn: usize = 0;
    while !stop.load(Ordering::Acquire) {
        let Some(connection) = client.as_mut() else {
            client = Client::connect(port).ok();
            if client.is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            continue;
        };
        turn += 1;
        let started = Instant::now();
        let (kind, shard, key, result) = if turn.is_multiple_of(2) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let (key, shard) = &routes.data[(seed % routes.data.len() as u64) as usize];
            let result = connection.try_call(&[b"GET", key.as_bytes()]);
            (Kind::Get, *shard, key.clone(), result)
        } else {
            let shard = (turn / 2) % routes.writes.len();
            let keys = &routes.writes[shard];
            let key = keys[next[shard] % keys.len()].clone();
            next[shard] += 1;
            let result = connection.try_call(&[b"SET", key.as_bytes(), value_of(&key).as_bytes()]);
            (Kind::Set, shard, key, result)
        };
        let outcome = match (&result, kind) {
            (Err(error), _) => Outcome::Error(format!("connection: {error}")),
            (Ok(Reply::Error(error)), _) => Outcome::Error(error.clone()),
            (Ok(reply), Kind::Set) if reply.is_ok() => Outcome::Ok,
            (Ok(Reply::Bulk(Some(value))), Kind::Get) if *value == value_of(&key).into_bytes() => {
                Outcome::Ok
            }
            (Ok(reply), _) => Outcome::Wrong(format!("{reply:?}")),
        };
        if result.is_err() {
            client = None;
        }
        events.lock().unwrap().push(Event {
            started,
            finished: Instant::now(),
            kind,
            shard,
            key,
            outcome,
        });
        std::thread::sleep(Duration::from_micros(400));
    }
}

/// What a load saw.
pub struct Report {
    pub events: Vec<Event>,
}

impl Report {
    pub fn requests(&self) -> usize {
        self.events.len()
    }

    pub fn reads(&self) -> usize {
        self.events
            .iter()
            .filter(|event| event.kind == Kind::Get)
            .count()
    }

    pub fn wrong(&self) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|event| matches!(event.outcome, Outcome::Wrong(_)))
            .collect()
    }

    pub fn errors(&self) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|event| matches!(event.outcome, Outcome::Error(_)))
            .collect()
    }

    /// Errors of requests started at or after `since`.
    pub fn errors_since(&self, since: Instant) -> Vec<&Event> {
        self.errors()
            .into_iter()
            .filter(|event| event.started >= since)
            .collect()
    }

    /// Keys of `shard` that a SET started at or after `since` wrote successfully.
    pub fn written_since(&self, shard: usize, since: Instant) -> Vec<String> {
        self.events
            .iter()
            .filter(|event| event.is_write_ok(shard, since))
            .map(|event| event.key.clone())
            .collect()
    }

    /// A short description of the first few bad events, for failure messages.
    pub fn describe(events: &[&Event], origin: Instant) -> String {
        events
            .iter()
            .take(8)
            .map(|event| {
                format!(
                    "{:?} {} ({}) at +{:.3}s..+{:.3}s: {:?}",
                    event.kind,
                    event.key,
                    SHARD_NAMES[event.shard],
                    offset(event.started, origin),
                    offset(event.finished, origin),
                    event.outcome
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Seconds from `origin` to `at`, negative when `at` is earlier.
pub fn offset(at: Instant, origin: Instant) -> f64 {
    if at >= origin {
        (at - origin).as_secs_f64()
    } else {
        -(origin - at).as_secs_f64()
    }
}
