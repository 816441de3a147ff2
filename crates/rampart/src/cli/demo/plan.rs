//! The demo's topology, decided before anything starts: which shards, sentinels and proxy
//! nodes exist, on which addresses and ports, under which namespace and interface names, and
//! the text of every configuration file and command line. Pure: no I/O, so it is unit-tested.

use std::net::{Ipv4Addr, SocketAddrV4};

/// Sentinel's `down-after-milliseconds`: a dead master is noticed after 2 s.
pub const DOWN_AFTER_MS: u64 = 2000;
/// Sentinel's `failover-timeout`.
pub const FAILOVER_TIMEOUT_MS: u64 = 10_000;
/// How long the proxy holds a request for a shard without a master: well above a failover.
pub const FAILOVER_WAIT_MS: u64 = 10_000;
/// The `vrrp_instance` name in the keepalived.conf the demo writes.
pub const VRRP_INSTANCE: &str = "VI_1";
/// The bridge and the node side of each veth, inside the namespaces.
pub const BRIDGE: &str = "br0";
pub const NODE_INTERFACE: &str = "eth1";
/// The bridge's port for the root namespace's veth, inside the bridge namespace.
pub const HOST_PORT_NAME: &str = "host";

/// The shards: each a master and one replica, named as Sentinel knows them.
pub const SHARD_NAMES: [&str; 2] = ["shard1", "shard2"];
/// How many sentinels watch the shards (quorum 2).
pub const SENTINELS: usize = 3;
/// How many ports the demo needs: 2 redis-servers per shard, the sentinels, the proxy and
/// its stats port.
pub const PORTS_NEEDED: usize = SHARD_NAMES.len() * 2 + SENTINELS + 2;

/// Where the proxy tier runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// One proxy on loopback, beside the backends.
    Loopback,
    /// Two proxy nodes sharing a virtual IP, each in its own network namespace.
    Namespaces(Namespaces),
}

/// Names and addresses of the namespace test bed: a bridge namespace, one namespace per proxy
/// node, and a veth from the root namespace to the bridge carrying 10.213.`subnet`.254/24.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespaces {
    /// `rdemo<pid>`: the start of every namespace name and the root namespace's veth.
    pub prefix: String,
    pub subnet: u8,
}

impl Namespaces {
    pub fn new(pid: u32, subnet: u8) -> Namespaces {
        Namespaces {
            prefix: format!("rdemo{pid}"),
            subnet,
        }
    }

    /// The namespace holding the bridge.
    pub fn bridge_namespace(&self) -> String {
        format!("{}-sw", self.prefix)
    }

    /// The root namespace's end of the veth to the bridge (at most 15 characters).
    pub fn host_interface(&self) -> String {
        self.prefix.clone()
    }

    /// The root namespace's address on its veth: where the backends listen.
    pub fn host_address(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet, 254)
    }

    /// The virtual IP the proxy nodes share.
    pub fn vip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet, 100)
    }

    /// Node `index`'s own address on its `eth1`.
    pub fn node_address(&self, index: usize) -> Ipv4Addr {
        let last = u8::try_from(index + 1).unwrap_or(u8::MAX);
        Ipv4Addr::new(10, 213, self.subnet, last)
    }
}

/// One shard: its Sentinel name and the ports of the redis-servers that start as its master
/// and its replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardPlan {
    pub name: &'static str,
    pub master_port: u16,
    pub replica_port: u16,
}

/// One rampart node of the proxy tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyNode {
    /// `a`, `b`, ...
    pub name: String,
    /// Its namespace, when the tier runs in namespaces.
    pub namespace: Option<String>,
    /// Where the demo reaches its listener and stats port.
    pub address: Ipv4Addr,
    /// Its VRRP priority (the first node is preferred).
    pub priority: u8,
}

/// Everything the demo starts, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub network: Network,
    pub shards: Vec<ShardPlan>,
    pub sentinel_ports: Vec<u16>,
    pub proxy_port: u16,
    pub stats_port: u16,
}

impl Plan {
    /// Lays out the demo on `ports` (at least [`PORTS_NEEDED`] free ones).
    pub fn new(network: Network, ports: &[u16]) -> Option<Plan> {
        let mut ports = ports.iter().copied();
        let mut shards = Vec::new();
        for name in SHARD_NAMES {
            shards.push(ShardPlan {
                name,
                master_port: ports.next()?,
                replica_port: ports.next()?,
            });
        }
        let sentinel_ports = (0..SENTINELS)
            .map(|_| ports.next())
            .collect::<Option<Vec<u16>>>()?;
        Some(Plan {
            network,
            shards,
            sentinel_ports,
            proxy_port: ports.next()?,
            stats_port: ports.next()?,
        })
    }

    /// Where redis-servers and sentinels listen: the host's bridge address, or loopback.
    pub fn backend_host(&self) -> Ipv4Addr {
        match &self.network {
            Network::Loopback => Ipv4Addr::LOCALHOST,
            Network::Namespaces(namespaces) => namespaces.host_address(),
        }
    }

    /// Where clients connect: the virtual IP, or the one proxy on loopback.
    pub fn connect_address(&self) -> SocketAddrV4 {
        let host = match &self.network {
            Network::Loopback => Ipv4Addr::LOCALHOST,
            Network::Namespaces(namespaces) => namespaces.vip(),
        };
        SocketAddrV4::new(host, self.proxy_port)
    }

    /// The proxy nodes: two in namespaces, or one on loopback.
    pub fn proxy_nodes(&self) -> Vec<ProxyNode> {
        match &self.network {
            Network::Loopback => vec![ProxyNode {
                name: "a".to_string(),
                namespace: None,
                address: Ipv4Addr::LOCALHOST,
                priority: 0,
            }],
            Network::Namespaces(namespaces) => ["a", "b"]
                .iter()
                .zip([101_u8, 100])
                .enumerate()
                .map(|(index, (name, priority))| ProxyNode {
                    name: (*name).to_string(),
                    namespace: Some(format!("{}-{name}", namespaces.prefix)),
                    address: namespaces.node_address(index),
                    priority,
                })
                .collect(),
        }
    }

    /// The sentinels' addresses.
    pub fn sentinel_addresses(&self) -> Vec<SocketAddrV4> {
        self.sentinel_ports
            .iter()
            .map(|&port| SocketAddrV4::new(self.backend_host(), port))
            .collect()
    }

    /// redis-server's arguments for one node of a shard, its files in `dir`; a replica
    /// replicates from the shard's first master.
    pub fn redis_args(&self, shard: &ShardPlan, replica: bool, dir: &str) -> Vec<String> {
        let host = self.backend_host().to_string();
        let port = if replica {
            shard.replica_port
        } else {
            shard.master_port
        };
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            &host,
            "--protected-mode",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            dir,
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
            "--replica-announce-ip",
            &host,
        ]
        .iter()
        .map(|word| (*word).to_string())
        .collect();
        if replica {
            args.extend([
                "--replicaof".to_string(),
                host.clone(),
                shard.master_port.to_string(),
            ]);
        }
        args
    }

    /// Sentinel `index`'s id: fixed, so that the sentinels can be told about each other up
    /// front and may fail over without waiting for discovery.
    pub fn sentinel_id(&self, index: usize) -> String {
        format!("{:032x}{:08x}", self.proxy_port, index + 1)
    }

    /// The sentinel.conf of sentinel `index`, its files in `dir`.
    pub fn sentinel_conf(&self, index: usize, dir: &str) -> String {
        let host = self.backend_host();
        let port = self.sentinel_ports.get(index).copied().unwrap_or_default();
        let mut conf = format!(
            "port {port}\nbind {host}\nprotected-mode no\ndaemonize no\ndir {dir}\n\
             sentinel myid {}\nsentinel announce-ip {host}\n",
            self.sentinel_id(index)
        );
        for shard in &self.shards {
            let name = shard.name;
            conf.push_str(&format!(
                "sentinel monitor {name} {host} {} 2\n\
                 sentinel down-after-milliseconds {name} {DOWN_AFTER_MS}\n\
                 sentinel failover-timeout {name} {FAILOVER_TIMEOUT_MS}\n\
                 sentinel parallel-syncs {name} 1\n\
                 sentinel known-replica {name} {host} {}\n",
                shard.master_port, shard.replica_port
            ));
            for (other, other_port) in self.sentinel_ports.iter().enumerate() {
                if other != index {
                    conf.push_str(&format!(
                        "sentinel known-sentinel {name} {host} {other_port} {}\n",
                        self.sentinel_id(other)
                    ));
                }
            }
        }
        conf
    }

    /// The proxy's nutcracker.yml: one pool over the shards, following the sentinels.
    pub fn proxy_yaml(&self) -> String {
        let host = self.backend_host();
        let listen = match self.network {
            Network::Loopback => Ipv4Addr::LOCALHOST,
            Network::Namespaces(_) => Ipv4Addr::UNSPECIFIED,
        };
        let mut yaml = format!(
            "demo:\n  listen: {listen}:{}\n  redis: true\n  hash: fnv1a_64\n  \
             distribution: ketama\n  timeout: 1000\n  failover_wait_ms: {FAILOVER_WAIT_MS}\n  \
             sentinels:\n",
            self.proxy_port
        );
        for address in self.sentinel_addresses() {
            yaml.push_str(&format!("   - {address}\n"));
        }
        yaml.push_str("  servers:\n");
        for shard in &self.shards {
            yaml.push_str(&format!(
                "   - {host}:{}:1 {}\n",
                shard.master_port, shard.name
            ));
        }
        yaml
    }

    /// The keepalived.conf of a proxy node in namespaces: both nodes BACKUP with `nopreempt`
    /// (`a` wins the first election), so a node restarted after a kill does not take the
    /// virtual IP back and interrupt the traffic a second time.
    pub fn keepalived_conf(&self, node: &ProxyNode) -> Option<String> {
        let Network::Namespaces(namespaces) = &self.network else {
            return None;
        };
        Some(format!(
            "global_defs {{\n    router_id rampart_demo_{}\n}}\n\
             vrrp_instance {VRRP_INSTANCE} {{\n    state BACKUP\n    interface {NODE_INTERFACE}\n    \
             virtual_router_id {}\n    priority {}\n    advert_int 1\n    nopreempt\n    \
             authentication {{\n        auth_type PASS\n        auth_pass demo\n    }}\n    \
             virtual_ipaddress {{\n        {}\n    }}\n}}\n",
            node.name,
            namespaces.subnet,
            node.priority,
            namespaces.vip()
        ))
    }

    /// rampart's arguments for a node, with its files named under `dir`.
    pub fn proxy_args(&self, node: &ProxyNode, dir: &str) -> Vec<String> {
        let stats_addr = match self.network {
            Network::Loopback => "127.0.0.1",
            Network::Namespaces(_) => "0.0.0.0",
        };
        let mut args = vec![
            "-c".to_string(),
            format!("{dir}/nutcracker.yml"),
            "-s".to_string(),
            self.stats_port.to_string(),
            "-a".to_string(),
            stats_addr.to_string(),
            "-o".to_string(),
            format!("{dir}/proxy-{}.log", node.name),
            "--workers".to_string(),
            "1".to_string(),
        ];
        if self.keepalived_conf(node).is_some() {
            args.push("--vrrp".to_string());
            args.push(format!("{dir}/keepalived-{}.conf", node.name));
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> Vec<u16> {
        (15_000..15_000 + PORTS_NEEDED as u16).collect()
    }

    fn namespaced() -> Plan {
        Plan::new(Network::Namespaces(Namespaces::new(4242, 7)), &ports()).unwrap()
    }

    #[test]
    fn ports_are_handed_out_in_order() {
        let plan = Plan::new(Network::Loopback, &ports()).unwrap();
        assert_eq!(plan.shards[0].master_port, 15_000);
        assert_eq!(plan.shards[1].replica_port, 15_003);
        assert_eq!(plan.sentinel_ports, vec![15_004, 15_005, 15_006]);
        assert_eq!((plan.proxy_port, plan.stats_port), (15_007, 15_008));
        assert!(Plan::new(Network::Loopback, &ports()[1..]).is_none());
    }

    #[test]
    fn loopback_has_one_node_and_no_vrrp() {
        let plan = Plan::new(Network::Loopback, &ports()).unwrap();
        let nodes = plan.proxy_nodes();
        assert_eq!(nodes.len(), 1);
        assert_eq!(plan.connect_address().to_string(), "127.0.0.1:15007");
        assert_eq!(plan.keepalived_conf(&nodes[0]), None);
        assert!(
            !plan
                .proxy_args(&nodes[0], "/d")
                .contains(&"--vrrp".to_string())
        );
        assert!(plan.proxy_yaml().contains("listen: 127.0.0.1:15007"));
    }

    #[test]
    fn namespaces_have_two_nodes_sharing_the_vip() {
        let plan = namespaced();
        let Network::Namespaces(namespaces) = &plan.network else {
            panic!("namespaced");
        };
        let nodes = plan.proxy_nodes();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].namespace.as_deref(), Some("rdemo4242-a"));
        assert_eq!(nodes[1].address, Ipv4Addr::new(10, 213, 7, 2));
        assert_eq!(namespaces.bridge_namespace(), "rdemo4242-sw");
        assert!(namespaces.host_interface().len() <= 15);
        assert_eq!(plan.connect_address().to_string(), "10.213.7.100:15007");
        let conf = plan.keepalived_conf(&nodes[1]).unwrap();
        assert!(conf.contains("priority 100\n    advert_int 1\n    nopreempt\n"));
        assert!(conf.contains("interface eth1\n"));
        assert!(conf.contains("        10.213.7.100\n"));
        let args = plan.proxy_args(&nodes[0], "/d");
        assert!(args.ends_with(&["--vrrp".to_string(), "/d/keepalived-a.conf".to_string()]));
    }

    #[test]
    fn backends_listen_on_the_bridge_address() {
        let plan = namespaced();
        let yaml = plan.proxy_yaml();
        assert!(yaml.contains("listen: 0.0.0.0:15007\n"));
        assert!(yaml.contains("   - 10.213.7.254:15004\n"));
        assert!(yaml.contains("   - 10.213.7.254:15002:1 shard2\n"));
        assert!(yaml.contains("failover_wait_ms: 10000\n"));
        let replica = plan.redis_args(&plan.shards[0], true, "/d");
        assert!(replica.ends_with(&[
            "--replicaof".to_string(),
            "10.213.7.254".to_string(),
            "15000".to_string()
        ]));
        assert!(
            replica
                .windows(2)
                .any(|pair| pair == ["--bind", "10.213.7.254"])
        );
    }

    #[test]
    fn sentinels_know_each_other_and_the_replicas() {
        let plan = namespaced();
        let conf = plan.sentinel_conf(1, "/d");
        assert!(conf.starts_with("port 15005\nbind 10.213.7.254\n"));
        assert!(conf.contains("sentinel monitor shard1 10.213.7.254 15000 2\n"));
        assert!(conf.contains("sentinel down-after-milliseconds shard2 2000\n"));
        assert!(conf.contains("sentinel known-replica shard2 10.213.7.254 15003\n"));
        let known = format!(
            "sentinel known-sentinel shard1 10.213.7.254 15004 {}\n",
            plan.sentinel_id(0)
        );
        assert!(conf.contains(&known));
        assert!(!conf.contains(&format!("15005 {}", plan.sentinel_id(1))));
        assert_eq!(plan.sentinel_id(2).len(), 40);
    }
}
