//! VRRP test parts on a [`Testbed`]: keepalived.conf text, rampart nodes with `--vrrp` and real
//! keepalived processes inside hosts, a sampler that records which hosts hold the virtual IP
//! every 50 ms, and a client that keeps sending requests to the virtual IP and counts what
//! failed.

use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::netns::{Testbed, addresses_in, enter};
use super::process::Guarded;
use super::resp::{Client, Reply};
use super::{rampart_bin, tail, wait_until};

/// The proxy port and stats port of every rampart node (each host has its own loopback).
pub const PROXY_PORT: u16 = 22121;
pub const STATS_PORT: u16 = 22222;
/// Where each host's own redis-server listens, on its loopback.
pub const REDIS_PORT: u16 = 6390;
/// The instance name every test configuration uses.
pub const INSTANCE: &str = "VI_1";

/// One `vrrp_instance` as the tests write it.
#[derive(Debug, Clone)]
pub struct Instance {
    pub priority: u8,
    pub vip: Ipv4Addr,
    pub version: u8,
    /// Seconds; fractions only with version 3.
    pub advert_int: f64,
    pub nopreempt: bool,
    pub password: Option<&'static str>,
    /// Unicast peers (none: multicast), with this node's own address as `unicast_src_ip`.
    pub unicast: Option<(Ipv4Addr, Vec<Ipv4Addr>)>,
    /// A keepalived `vrrp_script` to track, as `script` text (keepalived only).
    pub track_script: Option<String>,
}

impl Instance {
    pub fn new(priority: u8, vip: Ipv4Addr) -> Instance {
        Instance {
            priority,
            vip,
            version: 2,
            advert_int: 1.0,
            nopreempt: false,
            password: Some("secret12"),
            unicast: None,
            track_script: None,
        }
    }

    /// The keepalived.conf text (both BACKUP at start, as the seed's nodes are).
    pub fn conf(&self) -> String {
        let mut text = String::from("global_defs {\n    router_id rampart_test\n");
        if self.track_script.is_some() {
            text.push_str("    enable_script_security\n    script_user root\n");
        }
        text.push_str(&format!("    vrrp_version {}\n}}\n", self.version));
        if let Some(script) = &self.track_script {
            text.push_str(&format!(
                "vrrp_script chk_proxy {{\n    script \"{script}\"\n    interval 1\n    fall 1\n    rise 1\n}}\n"
            ));
        }
        text.push_str(&format!(
            "vrrp_instance {INSTANCE} {{\n    state BACKUP\n    interface eth1\n    virtual_router_id 12\n    priority {}\n    advert_int {}\n",
            self.priority, self.advert_int
        ));
        if self.nopreempt {
            text.push_str("    nopreempt\n");
        }
        if let Some(password) = self.password {
            text.push_str(&format!(
                "    authentication {{\n        auth_type PASS\n        auth_pass {password}\n    }}\n"
            ));
        }
        if let Some((source, peers)) = &self.unicast {
            text.push_str(&format!(
                "    unicast_src_ip {source}\n    unicast_peer {{\n"
            ));
            for peer in peers {
                text.push_str(&format!("        {peer}\n"));
            }
            text.push_str("    }\n");
        }
        text.push_str(&format!(
            "    virtual_ipaddress {{\n        {}\n    }}\n",
            self.vip
        ));
        if self.track_script.is_some() {
            text.push_str("    track_script {\n        chk_proxy\n    }\n");
        }
        text.push_str("}\n");
        text
    }
}

/// nutcracker.yml for a node: one pool on every address, backed by `backends` (host:port).
pub fn pool_yaml(backends: &[String]) -> String {
    let mut yaml = format!(
        "alpha:\n  listen: 0.0.0.0:{PROXY_PORT}\n  hash: fnv1a_64\n  distribution: ketama\n  \
         redis: true\n  timeout: 1000\n  servers:\n"
    );
    for (index, backend) in backends.iter().enumerate() {
        yaml.push_str(&format!("   - {backend}:1 shard{index}\n"));
    }
    yaml
}

/// A redis-server on a host's loopback, for that host's rampart.
pub fn start_local_redis(bed: &Testbed, host: usize, dir: &std::path::Path) -> Guarded {
    let log = dir.join(format!("redis-{host}.log"));
    let port = REDIS_PORT.to_string();
    let process = bed.spawn(
        host,
        "redis-server",
        &[
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        &log,
    );
    wait_until("redis-server in the bed", Duration::from_secs(10), || {
        bed.run_in(host, || {
            ping(SocketAddr::from(([127, 0, 0, 1], REDIS_PORT)))
        })
    });
    process
}

/// rampart without `--vrrp` in a host, as the proxy beside a keepalived there.
pub fn start_plain_rampart(
    bed: &Testbed,
    host: usize,
    yaml: &str,
    dir: &std::path::Path,
) -> Guarded {
    let config = dir.join(format!("plain-{host}.yml"));
    fs::write(&config, yaml).unwrap();
    let out = dir.join(format!("plain-{host}.out"));
    let config = config.display().to_string();
    let stats = STATS_PORT.to_string();
    let mut process = bed.spawn(
        host,
        rampart_bin(),
        &[
            "-c",
            config.as_str(),
            "-s",
            stats.as_str(),
            "-a",
            "127.0.0.1",
        ],
        &out,
    );
    process.wait_ready(
        "plain rampart in the bed",
        || {
            bed.run_in(host, || {
                ping(SocketAddr::from(([127, 0, 0, 1], PROXY_PORT)))
            })
        },
        || fs::read_to_string(&out).unwrap_or_default(),
    );
    process
}

/// Whether a Redis-speaking server at `address` answers PING.
pub fn ping(address: SocketAddr) -> bool {
    Client::connect_addr(address, Duration::from_millis(500))
        .and_then(|mut client| client.try_call(&[b"PING"]))
        .is_ok_and(|reply| reply == Reply::Status("PONG".into()))
}

/// A rampart node with `--vrrp` in one host of the bed.
pub struct Node {
    pub host: usize,
    pub dir: PathBuf,
    process: Option<Guarded>,
    starts: u32,
    extra: Vec<String>,
}

impl Node {
    /// Writes the node's configuration into `dir` and starts it.
    pub fn start(
        bed: &Testbed,
        host: usize,
        yaml: &str,
        instance: &Instance,
        dir: PathBuf,
    ) -> Node {
        Node::start_with(bed, host, yaml, instance, dir, &[])
    }

    /// The same, running rampart through `wrapper` (a program and its arguments, such as
    /// `setpriv` dropping a capability).
    pub fn start_with(
        bed: &Testbed,
        host: usize,
        yaml: &str,
        instance: &Instance,
        dir: PathBuf,
        wrapper: &[&str],
    ) -> Node {
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("nutcracker.yml"), yaml).unwrap();
        let mut node = Node {
            host,
            dir,
            process: None,
            starts: 0,
            extra: wrapper.iter().map(|word| word.to_string()).collect(),
        };
        node.configure(instance);
        node.restart(bed);
        node
    }

    /// Rewrites the node's keepalived.conf (takes effect at the next start).
    pub fn configure(&self, instance: &Instance) {
        fs::write(self.dir.join("keepalived.conf"), instance.conf()).unwrap();
    }

    /// Starts the node again (after a kill or a stop) and waits until it serves.
    pub fn restart(&mut self, bed: &Testbed) {
        self.starts += 1;
        let path = |name: &str| self.dir.join(name).display().to_string();
        let log = path(&format!("rampart-{}.log", self.starts));
        let mut words: Vec<String> = self.extra.clone();
        words.extend(
            [
                rampart_bin(),
                "-c",
                &path("nutcracker.yml"),
                "--vrrp",
                &path("keepalived.conf"),
                "-s",
                &STATS_PORT.to_string(),
                "-a",
                "127.0.0.1",
                "-v",
                "6",
                "-o",
                &log,
            ]
            .map(str::to_string),
        );
        let (program, args) = words.split_first().unwrap();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.dir.join(format!("rampart-{}.out", self.starts));
        let mut process = bed.spawn(self.host, program, &args, &out);
        let host = self.host;
        process.wait_ready(
            "rampart in the bed",
            || {
                bed.run_in(host, || {
                    ping(SocketAddr::from(([127, 0, 0, 1], PROXY_PORT)))
                })
            },
            || fs::read_to_string(&out).unwrap_or_default(),
        );
        self.process = Some(process);
    }

    pub fn process(&mut self) -> &mut Guarded {
        self.process.as_mut().expect("the node runs")
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// SIGTERM, and waits for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.signal(libc::SIGTERM);
            assert!(process.wait_exit(Duration::from_secs(15)).success());
        }
    }

    /// The latest log of the node.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join(format!("rampart-{}.log", self.starts)))
            .unwrap_or_default()
    }

    /// The node's stats JSON.
    pub fn stats(&self, bed: &Testbed) -> String {
        bed.run_in(self.host, || {
            let mut stream = TcpStream::connect(("127.0.0.1", STATS_PORT))?;
            let mut document = String::new();
            stream.read_to_string(&mut document)?;
            Ok::<_, std::io::Error>(document)
        })
        .unwrap_or_default()
    }

    /// The VRRP state the node reports in its stats (`MASTER`, `BACKUP`, ...).
    pub fn state(&self, bed: &Testbed) -> String {
        stats_value(&self.stats(bed), &format!("vrrp_{INSTANCE}_state"))
    }
}

/// A value of the stats JSON, by key, without its quotes.
pub fn stats_value(stats: &str, key: &str) -> String {
    let pattern = format!("\"{key}\":");
    stats
        .split(&pattern)
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .map(|value| value.trim().trim_matches('"').to_string())
        .unwrap_or_default()
}

/// The real keepalived in one host. It runs a VRRP child process of its own, so it is
/// stopped with SIGTERM (and the child killed by the PID it wrote) when dropped.
pub struct Keepalived {
    pub log: PathBuf,
    child_pid_file: PathBuf,
    process: Guarded,
}

impl Keepalived {
    pub fn start(
        bed: &Testbed,
        host: usize,
        instance: &Instance,
        dir: &std::path::Path,
        tag: &str,
    ) -> Keepalived {
        let file = |name: &str| dir.join(format!("{tag}-{name}")).display().to_string();
        fs::write(file("keepalived.conf"), instance.conf()).unwrap();
        let log = dir.join(format!("{tag}-keepalived.log"));
        let process = bed.spawn(
            host,
            "keepalived",
            &[
                "-f",
                &file("keepalived.conf"),
                "-p",
                &file("keepalived.pid"),
                "-r",
                &file("vrrp.pid"),
                "-c",
                &file("checkers.pid"),
                "-n",
                "-l",
                "-D",
            ],
            &log,
        );
        Keepalived {
            log,
            child_pid_file: PathBuf::from(file("vrrp.pid")),
            process,
        }
    }

    pub fn process(&mut self) -> &mut Guarded {
        &mut self.process
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM: keepalived sends priority 0 and leaves (its exit takes about a second).
    pub fn terminate(&mut self) {
        if self.process.exit_status().is_none() {
            self.process.signal(libc::SIGTERM);
        }
    }

    /// Lines where keepalived complains about what it received.
    pub fn complaints(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|line| {
                let lower = line.to_lowercase();
                [
                    "invalid", "mismatch", "bad ", "wrong", "error", "ttl", "checksum", "auth",
                ]
                .iter()
                .any(|word| lower.contains(word))
            })
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        let child = fs::read_to_string(&self.child_pid_file)
            .ok()
            .and_then(|pid| pid.trim().parse::<libc::pid_t>().ok());
        if self.process.exit_status().is_none() {
            self.process.signal(libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.process.exit_status().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if let Some(pid) = child {
            // SAFETY: kill(2) on the VRRP child keepalived reported; if it already ended, the
            // PID is not reused this quickly and the call fails harmlessly.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Waits until `host` holds `vip` and returns how long that took, failing after `limit`.
pub fn wait_for_vip(bed: &Testbed, host: usize, vip: Ipv4Addr, limit: Duration) -> Duration {
    let started = Instant::now();
    wait_until(&format!("the VIP on host {host}"), limit, || {
        bed.addresses(host).contains(&vip)
    });
    started.elapsed()
}

/// Samples which hosts hold the virtual IP, one host after the other, continuously, about
/// every 50 ms per host.
pub struct OwnerSampler {
    samples: Arc<Mutex<Vec<(Instant, usize, bool)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl OwnerSampler {
    pub fn start(bed: &Testbed, hosts: &[usize], vip: Ipv4Addr) -> OwnerSampler {
        let namespaces: Vec<(usize, String)> = hosts
            .iter()
            .map(|&host| (host, bed.namespace(host).to_string()))
            .collect();
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (samples, stop) = (Arc::clone(&samples), Arc::clone(&stop));
            move || {
                let pause = Duration::from_millis(50) / namespaces.len() as u32;
                while !stop.load(Ordering::SeqCst) {
                    for (host, namespace) in &namespaces {
                        let holds = addresses_in(namespace).contains(&vip);
                        samples.lock().unwrap().push((Instant::now(), *host, holds));
                        std::thread::sleep(pause);
                    }
                }
            }
        });
        OwnerSampler {
            samples,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling and returns the moments where two hosts held the VIP at once, outside
    /// `faults` (time windows of injected faults). Samples are taken one host after the other,
    /// so a double owner counts only when host X held it in the samples just before and just
    /// after a sample of host Y that held it too.
    pub fn finish(mut self, faults: &[(Instant, Instant)]) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        let samples = self.samples.lock().unwrap().clone();
        let in_fault = |at: Instant| faults.iter().any(|(from, to)| *from <= at && at <= *to);
        let mut doubles = Vec::new();
        for window in samples.windows(3) {
            let [(_, x1, held1), (at, y, held_y), (_, x2, held2)] = window else {
                continue;
            };
            if x1 == x2 && x1 != y && *held1 && *held_y && *held2 && !in_fault(*at) {
                doubles.push(format!("hosts {x1} and {y} both held the VIP at {at:?}"));
            }
        }
        (samples.len(), doubles)
    }
}

/// A client in one host that sends `SET` to the virtual IP in a loop, reconnecting after any
/// failure, and counts the requests answered and those that failed.
pub struct VipClient {
    pub answered: Arc<AtomicU64>,
    pub failed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl VipClient {
    pub fn start(bed: &Testbed, host: usize, vip: Ipv4Addr) -> VipClient {
        let namespace = bed.namespace(host).to_string();
        let answered = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (answered, failed, stop) = (
                Arc::clone(&answered),
                Arc::clone(&failed),
                Arc::clone(&stop),
            );
            move || {
                enter(&namespace);
                let address = SocketAddr::from((vip, PROXY_PORT));
                let mut client = None;
                let mut sequence = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    sequence += 1;
                    let key = format!("vip-client:{sequence}");
                    let reply = match client.take() {
                        Some(connected) => Ok(connected),
                        None => Client::connect_addr(address, Duration::from_millis(300)),
                    }
                    .and_then(|mut connected: Client| {
                        let reply = connected.try_call(&[b"SET", key.as_bytes(), b"v"])?;
                        Ok((connected, reply))
                    });
                    match reply {
                        Ok((connected, reply)) if reply.is_ok() => {
                            answered.fetch_add(1, Ordering::SeqCst);
                            client = Some(connected);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        VipClient {
            answered,
            failed,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits until `count` more requests have been answered (the VIP serves again).
    pub fn wait_for_answers(&self, count: u64) {
        let target = self.answered.load(Ordering::SeqCst) + count;
        wait_until("the client to be served", Duration::from_secs(10), || {
            self.answered.load(Ordering::SeqCst) >= target
        });
    }

    /// Stops the client; returns (answered, failed).
    pub fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        (
            self.answered.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
        )
    }
}

/// Waits until `client_host`'s neighbour entry for `vip` holds `owner_host`'s MAC; returns how
/// long that took from `since`.
pub fn wait_for_neighbour(
    bed: &Testbed,
    client_host: usize,
    vip: Ipv4Addr,
    owner_host: usize,
    since: Instant,
) -> Duration {
    let mac = bed.mac(owner_host);
    wait_until(
        &format!(
            "host {client_host}'s neighbour entry for {vip} to be host {owner_host}'s MAC {mac}"
        ),
        Duration::from_secs(5),
        || bed.neighbour(client_host, vip).as_deref() == Some(mac.as_str()),
    );
    since.elapsed()
}

/// The log of a node for a failure message.
pub fn show_logs(nodes: &[&Node]) -> String {
    nodes
        .iter()
        .map(|node| format!("--- host {} ---\n{}", node.host, tail(&node.log(), 30)))
        .collect::<Vec<_>>()
        .join("\n")
}
