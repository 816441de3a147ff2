//! A network-namespace test bed (needs root): N host namespaces on one Linux bridge, for tests
//! that need real interfaces, multicast and addresses that come and go (VRRP, keepalived).
//!
//! ```text
//!   <prefix>-h0 ─ eth1 ═╗                 each host: `lo` up, eth1 = 10.213.S.(i+1)/24
//!   <prefix>-h1 ─ eth1 ═╬═ br0 in <prefix>-sw   (veth pairs; the bridge ends are p0, p1, ...)
//!   <prefix>-h2 ─ eth1 ═╝
//! ```
//!
//! - Every namespace name starts with a prefix unique to the test bed (`rpt<pid>-<n>`), so tests
//!   and test binaries can run side by side. Interfaces are created directly inside the
//!   namespaces (`eth1`, `br0`, `p<i>`), so their names stay short and nothing touches the
//!   host's own namespace.
//! - The addresses are private (10.213.S.0/24, S chosen per bed) and exist only inside the
//!   namespaces; [`Testbed::subnet_address`] gives others in the same subnet, e.g. a VIP.
//! - [`Testbed::command`] / [`Testbed::spawn`] run a program inside a host (`ip netns exec`,
//!   which execs the program: the child's PID is the program's). [`Testbed::addresses`],
//!   [`Testbed::mac`] and [`Testbed::neighbour`] read the host's state with `ip`.
//! - Dropping the bed (also while a test panics) kills, by PID, every process still inside its
//!   namespaces (what the test started there and their children, such as keepalived's), then
//!   deletes every namespace it made.

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use super::process::Guarded;

/// The host side of each veth pair, in every host namespace.
pub const INTERFACE: &str = "eth1";

/// The bridge, in the bridge namespace.
const BRIDGE: &str = "br0";

/// Namespaces of one test bed; see the module documentation.
pub struct Testbed {
    prefix: String,
    subnet: u8,
    hosts: Vec<String>,
    bridge: String,
    /// Every namespace created so far, deleted on drop.
    made: Vec<String>,
}

impl Testbed {
    /// `hosts` host namespaces, each with `eth1` up and addressed, all on one bridge.
    pub fn new(hosts: usize) -> Testbed {
        static BEDS: AtomicU32 = AtomicU32::new(0);
        assert!((1..=200).contains(&hosts), "1 to 200 hosts, not {hosts}");
        let serial = BEDS.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let prefix = format!("rpt{pid}-{serial}");
        let mut bed = Testbed {
            subnet: u8::try_from((pid + serial) % 250 + 1).unwrap(),
            hosts: (0..hosts).map(|host| format!("{prefix}-h{host}")).collect(),
            bridge: format!("{prefix}-sw"),
            prefix,
            made: Vec::new(),
        };
        bed.create_namespace(&bed.bridge.clone());
        bed.ip(&["-n", &bed.bridge, "link", "add", BRIDGE, "type", "bridge"]);
        bed.ip(&["-n", &bed.bridge, "link", "set", BRIDGE, "up"]);
        for host in 0..hosts {
            let namespace = bed.hosts[host].clone();
            let port = format!("p{host}");
            bed.create_namespace(&namespace);
            bed.ip(&[
                "link",
                "add",
                INTERFACE,
                "netns",
                &namespace,
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "netns",
                &bed.bridge,
            ]);
            bed.ip(&["-n", &bed.bridge, "link", "set", &port, "master", BRIDGE]);
            bed.ip(&["-n", &bed.bridge, "link", "set", &port, "up"]);
            let address = format!("{}/24", bed.address(host));
            bed.ip(&["-n", &namespace, "addr", "add", &address, "dev", INTERFACE]);
            bed.ip(&["-n", &namespace, "link", "set", INTERFACE, "up"]);
        }
        bed
    }

    fn create_namespace(&mut self, name: &str) {
        self.ip(&["netns", "add", name]);
        self.made.push(name.to_string());
        self.ip(&["-n", name, "link", "set", "lo", "up"]);
    }

    /// The prefix of every name this bed made (also handy for unique file names).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// How many host namespaces there are.
    pub fn hosts(&self) -> usize {
        self.hosts.len()
    }

    /// The name of host `host`'s namespace.
    pub fn namespace(&self, host: usize) -> &str {
        &self.hosts[host]
    }

    /// The namespace holding the bridge (its ports are `p0`, `p1`, ...).
    pub fn bridge_namespace(&self) -> &str {
        &self.bridge
    }

    /// Host `host`'s own address on `eth1`: 10.213.S.(host + 1).
    pub fn address(&self, host: usize) -> Ipv4Addr {
        self.subnet_address(u8::try_from(host + 1).unwrap())
    }

    /// 10.213.S.`last`, an address in the bed's subnet (for example a virtual IP).
    pub fn subnet_address(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet, last)
    }

    /// Runs `ip` with `args` (in the host's own namespace unless they say `-n NS`) and returns
    /// its stdout; panics with its stderr when it fails.
    pub fn ip(&self, args: &[&str]) -> String {
        let output = Command::new("ip")
            .args(args)
            .output()
            .expect("run ip (iproute2)");
        assert!(
            output.status.success(),
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `program` to be run inside host `host` (`ip netns exec NS program`); add its arguments.
    pub fn command(&self, host: usize, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", self.namespace(host)])
            .arg(program);
        command
    }

    /// Runs `program` with `args` inside host `host` to completion, output captured.
    pub fn run<S: AsRef<OsStr>>(&self, host: usize, program: &str, args: &[S]) -> Output {
        self.command(host, program)
            .args(args)
            .output()
            .unwrap_or_else(|error| panic!("cannot run {program}: {error}"))
    }

    /// Starts `program` with `args` inside host `host`, its output going to `log`. The process
    /// is killed when the returned guard is dropped, and in any case when the bed is.
    pub fn spawn<S: AsRef<OsStr>>(
        &self,
        host: usize,
        program: impl AsRef<OsStr>,
        args: &[S],
        log: &Path,
    ) -> Guarded {
        Guarded::spawn(self.command(host, program).args(args), log)
    }

    /// The IPv4 addresses on host `host`'s `eth1` (its own and any it holds, such as a VIP).
    pub fn addresses(&self, host: usize) -> Vec<Ipv4Addr> {
        addresses_in(self.namespace(host))
    }

    /// Runs `work` on a thread inside host `host`'s network namespace (to reach its loopback
    /// services, or to be a client on its `eth1`) and returns what it returns.
    pub fn run_in<T: Send + 'static>(
        &self,
        host: usize,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let namespace = self.namespace(host).to_string();
        std::thread::spawn(move || {
            enter(&namespace);
            work()
        })
        .join()
        .expect("work inside a namespace panicked")
    }

    /// Whether host `host`'s `eth1` carries `address`.
    pub fn holds(&self, host: usize, address: Ipv4Addr) -> bool {
        self.addresses(host).contains(&address)
    }

    /// The MAC address of host `host`'s `eth1`, as `ip` prints it (`aa:bb:...`).
    pub fn mac(&self, host: usize) -> String {
        let shown = self.ip(&["-n", self.namespace(host), "link", "show", INTERFACE]);
        let mut words = shown.split_whitespace();
        words
            .find(|&word| word == "link/ether")
            .and_then(|_| words.next())
            .unwrap_or_else(|| panic!("no MAC address in: {shown}"))
            .to_string()
    }

    /// The MAC that host `host`'s neighbour table holds for `address`, if it has an entry with
    /// one (`ip -n NS neigh show ADDRESS`).
    pub fn neighbour(&self, host: usize, address: Ipv4Addr) -> Option<String> {
        let shown = self.ip(&[
            "-n",
            self.namespace(host),
            "neigh",
            "show",
            &address.to_string(),
        ]);
        let mut words = shown.split_whitespace();
        words.find(|&word| word == "lladdr")?;
        words.next().map(str::to_string)
    }

    /// PIDs of the processes inside `namespace`.
    fn pids(namespace: &str) -> Vec<libc::pid_t> {
        Command::new("ip")
            .args(["netns", "pids", namespace])
            .output()
            .map(|output| {
                String::from_utf8_lossy(&output.stdout)
                    .split_whitespace()
                    .filter_map(|pid| pid.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for namespace in self.made.iter().rev() {
            for pid in Testbed::pids(namespace) {
                // SAFETY: kill(2) on a process inside a namespace this bed made: one the test
                // started there, or a child of one.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            let _ = Command::new("ip")
                .args(["netns", "del", namespace])
                .output();
        }
    }
}

/// The IPv4 addresses on `eth1` in `namespace`.
pub fn addresses_in(namespace: &str) -> Vec<Ipv4Addr> {
    let output = Command::new("ip")
        .args([
            "-n", namespace, "-4", "-o", "addr", "show", "dev", INTERFACE,
        ])
        .output()
        .expect("run ip (iproute2)");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|&word| word == "inet")?;
            words.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

/// Moves the calling thread (only it) into the network namespace `namespace`.
pub fn enter(namespace: &str) {
    let file = std::fs::File::open(format!("/var/run/netns/{namespace}"))
        .unwrap_or_else(|error| panic!("namespace {namespace}: {error}"));
    // SAFETY: setns(2) with a descriptor this function owns; CLONE_NEWNET moves only the
    // calling thread.
    let entered =
        unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
    assert_eq!(entered, 0, "setns into {namespace}");
}
