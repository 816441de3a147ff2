//! Bringing the demo up, step by step, into a [`Demo`] that owns every resource as soon as it
//! exists: free ports, the temporary directory and its configuration files, the namespaces
//! (as root), the redis-servers, the sentinels, the proxy nodes, the state file and the
//! traffic generator. Dropping the `Demo` (after a stop, or an error half-way) removes them all.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::error::DemoError;
use super::netns;
use super::observe::{Observer, ProxyTarget};
use super::plan::{Namespaces, Network, PORTS_NEEDED, Plan, ProxyNode, VRRP_INSTANCE};
use super::processes::{Kind, Processes, Spec, alive};
use super::resp;
use super::state::{self, Entry, State};
use super::traffic::{self, Counts};

/// How long one process may take to become ready.
const READY_LIMIT: Duration = Duration::from_secs(15);
/// How long a PING during start-up may take.
const PING_TIMEOUT: Duration = Duration::from_millis(300);
/// Where the demo looks for free ports (below the test suite's 20000..32000 and Linux's
/// ephemeral range).
const PORT_RANGE: std::ops::Range<u16> = 15_000..20_000;

/// The running demo and everything it made.
pub struct Demo {
    pub plan: Plan,
    pub stop: Arc<AtomicBool>,
    pub counts: Arc<Counts>,
    pub processes: Processes,
    pub dir: PathBuf,
    pub state_path: PathBuf,
    /// Why the proxy tier runs on loopback, if it does.
    pub loopback_reason: Option<&'static str>,
    network: Option<netns::Network>,
    traffic: Option<JoinHandle<()>>,
    state_written: bool,
}

impl Demo {
    /// Starts everything; `stop` (set by SIGINT or SIGTERM) interrupts the start.
    pub fn start(stop: Arc<AtomicBool>) -> Result<Demo, DemoError> {
        for program in ["redis-server", "redis-sentinel"] {
            if !on_path(program) {
                return Err(DemoError::MissingProgram(program));
            }
        }
        let executable = std::env::current_exe().map_err(DemoError::OwnExecutable)?;
        let state_path = state::path();
        if let Ok(running) = state::read(&state_path)
            && alive(running.pid)
        {
            return Err(DemoError::AlreadyRunning {
                pid: running.pid,
                path: state_path,
            });
        }
        let pid = std::process::id();
        let loopback_reason = netns::unavailable();
        let network = match loopback_reason {
            Some(_) => Network::Loopback,
            None => Network::Namespaces(Namespaces::new(pid, netns::free_subnet(pid))),
        };
        let plan = Plan::new(network, &free_ports(pid)).ok_or(DemoError::NoPorts)?;
        let dir = std::env::temp_dir().join(format!("rampart-demo.{pid}"));
        let mut demo = Demo {
            plan,
            stop,
            counts: Arc::new(Counts::default()),
            processes: Processes::default(),
            dir: dir.clone(),
            state_path,
            loopback_reason,
            network: None,
            traffic: None,
            state_written: false,
        };
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).map_err(|source| DemoError::File {
            what: "cannot create",
            path: dir.clone(),
            source,
        })?;
        demo.write_configs()?;
        if let Network::Namespaces(namespaces) = &demo.plan.network {
            demo.network = Some(netns::Network::create(
                namespaces,
                &demo.plan.proxy_nodes(),
            )?);
        }
        demo.start_backends()?;
        demo.start_proxies(&executable)?;
        demo.write_state()?;
        let connect = SocketAddr::V4(demo.plan.connect_address());
        let stop = Arc::clone(&demo.stop);
        demo.processes.wait(
            &format!("the proxy at {connect}"),
            &demo.dir,
            READY_LIMIT,
            &stop,
            || resp::pings(connect, PING_TIMEOUT),
        )?;
        let spawned = traffic::spawn(connect, Arc::clone(&demo.counts), Arc::clone(&demo.stop))
            .map_err(|source| DemoError::Spawn {
                what: "the traffic generator".into(),
                source,
            })?;
        demo.traffic = Some(spawned);
        Ok(demo)
    }

    fn dir_text(&self) -> String {
        self.dir.display().to_string()
    }

    fn write_configs(&self) -> Result<(), DemoError> {
        let write = |name: String, text: String| {
            let path = self.dir.join(name);
            fs::write(&path, text).map_err(|source| DemoError::File {
                what: "cannot write",
                path,
                source,
            })
        };
        write("nutcracker.yml".into(), self.plan.proxy_yaml())?;
        for index in 0..self.plan.sentinel_ports.len() {
            let dir = self.dir.join(format!("sentinel-{}", index + 1));
            fs::create_dir_all(&dir).map_err(|source| DemoError::File {
                what: "cannot create",
                path: dir.clone(),
                source,
            })?;
            write(
                format!("sentinel-{}.conf", index + 1),
                self.plan.sentinel_conf(index, &dir.display().to_string()),
            )?;
        }
        for node in self.plan.proxy_nodes() {
            if let Some(conf) = self.plan.keepalived_conf(&node) {
                write(format!("keepalived-{}.conf", node.name), conf)?;
            }
        }
        Ok(())
    }

    /// The redis-servers (masters, then their replicas, linked) and the sentinels.
    fn start_backends(&mut self) -> Result<(), DemoError> {
        let host = self.plan.backend_host();
        let shards = self.plan.shards.clone();
        for replica in [false, true] {
            for shard in &shards {
                let (port, node) = if replica {
                    (shard.replica_port, "b")
                } else {
                    (shard.master_port, "a")
                };
                let dir = self.dir.join(format!("redis-{}-{node}", shard.name));
                fs::create_dir_all(&dir).map_err(|source| DemoError::File {
                    what: "cannot create",
                    path: dir.clone(),
                    source,
                })?;
                let address = SocketAddr::V4(SocketAddrV4::new(host, port));
                let spec = Spec {
                    label: format!("redis {}/{node}", shard.name),
                    kind: Kind::Redis,
                    program: PathBuf::from("redis-server"),
                    args: self
                        .plan
                        .redis_args(shard, replica, &dir.display().to_string()),
                    log: self.dir.join(format!("redis-{}-{node}.log", shard.name)),
                    address,
                };
                if replica {
                    let stop = Arc::clone(&self.stop);
                    self.processes
                        .start(spec, READY_LIMIT, &stop, || linked(address))?;
                } else {
                    self.start_answering(spec)?;
                }
            }
        }
        for (index, port) in self.plan.sentinel_ports.clone().into_iter().enumerate() {
            let address = SocketAddr::V4(SocketAddrV4::new(host, port));
            let spec = Spec {
                label: format!("sentinel {}", index + 1),
                kind: Kind::Sentinel,
                program: PathBuf::from("redis-sentinel"),
                args: vec![format!("{}/sentinel-{}.conf", self.dir_text(), index + 1)],
                log: self.dir.join(format!("sentinel-{}.log", index + 1)),
                address,
            };
            self.start_answering(spec)?;
        }
        Ok(())
    }

    /// The rampart nodes, each in its namespace (through `ip netns exec`) or on loopback.
    fn start_proxies(&mut self, executable: &Path) -> Result<(), DemoError> {
        for node in self.plan.proxy_nodes() {
            let mut args = self.plan.proxy_args(&node, &self.dir_text());
            let program = match &node.namespace {
                Some(namespace) => {
                    let mut wrapped = vec![
                        "netns".to_string(),
                        "exec".to_string(),
                        namespace.clone(),
                        executable.display().to_string(),
                    ];
                    wrapped.append(&mut args);
                    args = wrapped;
                    PathBuf::from("ip")
                }
                None => executable.to_path_buf(),
            };
            let address = SocketAddr::V4(SocketAddrV4::new(node.address, self.plan.proxy_port));
            let spec = Spec {
                label: format!("proxy {}", node.name),
                kind: Kind::Proxy,
                program,
                args,
                log: self.dir.join(format!("proxy-{}.out", node.name)),
                address,
            };
            self.start_answering(spec)?;
        }
        Ok(())
    }

    /// Starts a process and waits until it answers PING where it listens.
    fn start_answering(&mut self, spec: Spec) -> Result<(), DemoError> {
        let (address, stop) = (spec.address, Arc::clone(&self.stop));
        self.processes.start(spec, READY_LIMIT, &stop, || {
            resp::pings(address, PING_TIMEOUT)
        })
    }

    fn stats_address(&self, node: &ProxyNode) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(node.address, self.plan.stats_port))
    }

    /// What the state file says now.
    pub fn state(&self) -> State {
        let nodes = self.plan.proxy_nodes();
        State {
            pid: std::process::id(),
            dir: self.dir_text(),
            connect: self.plan.connect_address().to_string(),
            sentinels: self
                .plan
                .sentinel_addresses()
                .iter()
                .map(ToString::to_string)
                .collect(),
            vrrp_instance: self.vrrp_instance(),
            processes: self
                .processes
                .list
                .iter()
                .map(|managed| {
                    let stats = nodes
                        .iter()
                        .find(|node| managed.spec.label == format!("proxy {}", node.name))
                        .map(|node| self.stats_address(node).to_string());
                    Entry {
                        label: managed.spec.label.clone(),
                        kind: managed.spec.kind,
                        pid: managed.pid,
                        address: managed.spec.address.to_string(),
                        stats,
                    }
                })
                .collect(),
        }
    }

    /// Writes (or rewrites) the state file.
    pub fn write_state(&mut self) -> Result<(), DemoError> {
        self.state_written = true;
        state::write(&self.state_path, &self.state())
    }

    fn vrrp_instance(&self) -> Option<String> {
        matches!(self.plan.network, Network::Namespaces(_)).then(|| VRRP_INSTANCE.to_string())
    }

    /// What the live view looks at.
    pub fn observer(&self) -> Observer {
        let vip = match &self.plan.network {
            Network::Namespaces(namespaces) => Some(namespaces.vip().to_string()),
            Network::Loopback => None,
        };
        Observer {
            sentinels: self
                .plan
                .sentinel_addresses()
                .into_iter()
                .map(SocketAddr::V4)
                .collect(),
            shards: self
                .plan
                .shards
                .iter()
                .map(|shard| shard.name.to_string())
                .collect(),
            proxies: self
                .plan
                .proxy_nodes()
                .iter()
                .map(|node| ProxyTarget {
                    name: node.name.clone(),
                    stats: self.stats_address(node),
                    namespace: node.namespace.clone(),
                })
                .collect(),
            vrrp: self.vrrp_instance().zip(vip),
        }
    }

    /// The lines describing what runs where, printed once at start.
    pub fn describe(&self) -> Vec<String> {
        let host = self.plan.backend_host();
        let mut lines = vec![format!("rampart demo: files in {}", self.dir_text())];
        for shard in &self.plan.shards {
            lines.push(format!(
                "  {}: master {host}:{}, replica {host}:{}",
                shard.name, shard.master_port, shard.replica_port
            ));
        }
        let sentinels: Vec<String> = self
            .plan
            .sentinel_addresses()
            .iter()
            .map(ToString::to_string)
            .collect();
        lines.push(format!(
            "  sentinels: {} (down-after-milliseconds {})",
            sentinels.join(", "),
            super::plan::DOWN_AFTER_MS
        ));
        for node in self.plan.proxy_nodes() {
            let place = node
                .namespace
                .as_deref()
                .map_or(String::new(), |namespace| {
                    format!(" in namespace {namespace}")
                });
            lines.push(format!(
                "  proxy {}: {}:{} (stats {}){place}",
                node.name,
                node.address,
                self.plan.proxy_port,
                self.stats_address(&node)
            ));
        }
        if let Network::Namespaces(namespaces) = &self.plan.network {
            lines.push(format!(
                "  virtual IP {} (VRRP instance {VRRP_INSTANCE}); this host is {} on veth {}",
                namespaces.vip(),
                namespaces.host_address(),
                namespaces.host_interface()
            ));
        }
        lines.push(format!(
            "  state file {} (rampart demo --kill master-of 1|2, rampart demo --kill proxy)",
            self.state_path.display()
        ));
        lines
    }

    /// Stops and removes everything, in order: the traffic generator, every process, the
    /// namespaces and the veth, the files.
    fn teardown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.traffic.take() {
            let _ = handle.join();
        }
        self.processes.kill_all();
        if let Some(mut network) = self.network.take() {
            network.remove();
        }
        let _ = fs::remove_dir_all(&self.dir);
        if self.state_written {
            state::remove(&self.state_path);
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Whether a replica at `address` has its link to its master up.
fn linked(address: SocketAddr) -> bool {
    resp::call(address, &["INFO", "replication"], PING_TIMEOUT)
        .ok()
        .and_then(|reply| reply.text())
        .is_some_and(|info| info.contains("master_link_status:up"))
}

/// Whether an executable called `program` is on PATH.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            fs::metadata(dir.join(program))
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
    })
}

/// [`PORTS_NEEDED`] TCP ports free on every address now, starting at an offset from `seed`.
fn free_ports(seed: u32) -> Vec<u16> {
    let span = u32::from(PORT_RANGE.end - PORT_RANGE.start);
    (0..span)
        .filter_map(|step| u16::try_from((seed * 7 + step) % span).ok())
        .map(|offset| PORT_RANGE.start + offset)
        .filter(|&port| TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok())
        .take(PORTS_NEEDED)
        .collect()
}
