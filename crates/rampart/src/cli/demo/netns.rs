//! The proxy tier's network when the demo runs as root: a bridge in its own namespace, one
//! namespace per proxy node joined to it by a veth, and a veth from the root namespace with a
//! private address (10.213.x.254/24) that exists only there, so that the host reaches the
//! virtual IP and the nodes reach the backends. Everything is made with `ip` and removed
//! again, also after a start that failed half-way.
//!
//! ```text
//!   root ns: <prefix> 10.213.S.254 ══╗
//!   <prefix>-a: eth1 10.213.S.1 ═════╬═ br0 in <prefix>-sw
//!   <prefix>-b: eth1 10.213.S.2 ═════╝      (virtual IP 10.213.S.100 on the VRRP master)
//! ```

use std::process::Command;

use super::error::DemoError;
use super::plan::{BRIDGE, HOST_PORT_NAME, NODE_INTERFACE, Namespaces, ProxyNode};

/// Why the proxy tier cannot run in namespaces here, if it cannot.
pub fn unavailable() -> Option<&'static str> {
    if !rustix::process::geteuid().is_root() {
        return Some("not running as root");
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(output) if output.status.success() => None,
        _ => Some("`ip netns` is not available (install iproute2)"),
    }
}

/// A subnet 10.213.S.0/24 that no address of the root namespace is in, starting from `seed`.
pub fn free_subnet(seed: u32) -> u8 {
    let shown = Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    let first = seed % 250;
    (0..250)
        .filter_map(|step| u8::try_from((first + step) % 250 + 1).ok())
        .find(|subnet| !shown.contains(&format!("inet 10.213.{subnet}.")))
        .unwrap_or(1)
}

/// The namespaces and links made so far; removed by [`Network::remove`] or on drop.
pub struct Network {
    namespaces: Vec<String>,
    host_interface: Option<String>,
}

impl Network {
    /// Builds the bridge, the nodes' namespaces and the root namespace's veth.
    pub fn create(plan: &Namespaces, nodes: &[ProxyNode]) -> Result<Network, DemoError> {
        let mut network = Network {
            namespaces: Vec::new(),
            host_interface: None,
        };
        let bridge = plan.bridge_namespace();
        network.add_namespace(&bridge)?;
        ip(&["-n", &bridge, "link", "add", BRIDGE, "type", "bridge"])?;
        ip(&["-n", &bridge, "link", "set", BRIDGE, "up"])?;
        for (index, node) in nodes.iter().enumerate() {
            let Some(namespace) = &node.namespace else {
                continue;
            };
            let port = format!("p{index}");
            network.add_namespace(namespace)?;
            ip(&[
                "link",
                "add",
                NODE_INTERFACE,
                "netns",
                namespace,
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "netns",
                &bridge,
            ])?;
            attach(&bridge, &port)?;
            let address = format!("{}/24", node.address);
            ip(&[
                "-n",
                namespace,
                "addr",
                "add",
                &address,
                "dev",
                NODE_INTERFACE,
            ])?;
            ip(&["-n", namespace, "link", "set", NODE_INTERFACE, "up"])?;
        }
        let host = plan.host_interface();
        ip(&[
            "link",
            "add",
            &host,
            "type",
            "veth",
            "peer",
            "name",
            HOST_PORT_NAME,
            "netns",
            &bridge,
        ])?;
        network.host_interface = Some(host.clone());
        attach(&bridge, HOST_PORT_NAME)?;
        let address = format!("{}/24", plan.host_address());
        ip(&["addr", "add", &address, "dev", &host])?;
        ip(&["link", "set", &host, "up"])?;
        Ok(network)
    }

    fn add_namespace(&mut self, name: &str) -> Result<(), DemoError> {
        ip(&["netns", "add", name])?;
        self.namespaces.push(name.to_string());
        ip(&["-n", name, "link", "set", "lo", "up"])
    }

    /// Kills what still runs in the namespaces, deletes them and the root namespace's veth.
    pub fn remove(&mut self) {
        for namespace in self.namespaces.drain(..).rev() {
            for pid in pids_in(&namespace) {
                super::processes::kill_pid(pid);
            }
            let _ = ip(&["netns", "del", &namespace]);
        }
        if let Some(host) = self.host_interface.take() {
            let exists = Command::new("ip")
                .args(["link", "show", "dev", &host])
                .output()
                .is_ok_and(|output| output.status.success());
            if exists {
                let _ = ip(&["link", "del", &host]);
            }
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Puts a bridge port up and on the bridge.
fn attach(bridge_namespace: &str, port: &str) -> Result<(), DemoError> {
    ip(&[
        "-n",
        bridge_namespace,
        "link",
        "set",
        port,
        "master",
        BRIDGE,
    ])?;
    ip(&["-n", bridge_namespace, "link", "set", port, "up"])
}

/// PIDs of the processes inside `namespace`.
fn pids_in(namespace: &str) -> Vec<u32> {
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

/// The IPv4 addresses on a node's `eth1`.
pub fn addresses(namespace: &str) -> Vec<String> {
    Command::new("ip")
        .args([
            "-n",
            namespace,
            "-4",
            "-o",
            "addr",
            "show",
            "dev",
            NODE_INTERFACE,
        ])
        .output()
        .map(|output| {
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|line| {
                    let mut words = line.split_whitespace();
                    words.find(|&word| word == "inet")?;
                    Some(words.next()?.split('/').next()?.to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `ip` with `args`.
fn ip(args: &[&str]) -> Result<(), DemoError> {
    let failed = |reason: String| DemoError::Ip {
        command: args.join(" "),
        reason,
    };
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|error| failed(error.to_string()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ))
    }
}
