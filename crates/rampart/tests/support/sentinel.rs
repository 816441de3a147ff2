//! redis-sentinel for the failover tests: a group of sentinel processes, each with its own
//! rewritable config in a temp dir, told about each other up front; killing and restarting
//! them; what they say about their masters, replicas, peers and subscribers; and where the
//! majority of them says a master is.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::process::{Guarded, pings};
use super::replication::{SETUP_LIMIT, info};
use super::resp::{Reply, call, try_call};
use super::{free_port, tail, wait_until};

/// Sentinel's `down-after-milliseconds` in every test.
pub const DOWN_AFTER_MS: u64 = 1000;
/// How long after a kill writes to the failed shard must succeed again: down-after + 3 s.
pub const RECOVERY_LIMIT: Duration = Duration::from_millis(DOWN_AFTER_MS + 3000);

/// A flat `name value name value ...` array as a map.
fn fields(reply: &Reply) -> HashMap<String, String> {
    match reply {
        Reply::Array(Some(items)) => items
            .chunks(2)
            .filter_map(|pair| Some((pair.first()?.text()?, pair.get(1)?.text()?)))
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

    /// SIGSTOP, returning once it is stopped.
    pub fn freeze(&self) {
        self.process.freeze();
    }

    /// SIGCONT.
    pub fn thaw(&self) {
        self.process.signal(libc::SIGCONT);
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
            Ok(Reply::Array(Some(items))) => items.get(1)?.text()?.parse().ok(),
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
