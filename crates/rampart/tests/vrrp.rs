//! The built-in VRRP virtual IP, on network namespaces the tests create: two rampart nodes
//! electing a master, taking over after kill -9, a clean stop and a stalled data path,
//! `nopreempt`, interoperation with the real keepalived in both roles (v2 and v3, multicast
//! and unicast, PASS authentication), a client that keeps using the virtual IP and counts its
//! failed requests, a sampler that never sees two owners outside an injected fault, the
//! client's neighbour entry following every change of owner, and a node without CAP_NET_ADMIN
//! that never ends up a master without the address. Needs root.

mod support;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use support::netns::Testbed;
use support::vrrp::{
    Instance, Keepalived, Node, OwnerSampler, REDIS_PORT, VipClient, pool_yaml, show_logs,
    start_local_redis, start_plain_rampart, wait_for_neighbour, wait_for_vip,
};

/// Hosts: two proxies and a client.
const A: usize = 0;
const B: usize = 1;
const CLIENT: usize = 2;

/// RFC 3768: a backup takes over 3 × advert_int + skew after the master's last advert; skew
/// is (256 − priority) / 256 s, about 0.61 s at priority 100.
const MASTER_DOWN_AT_100: Duration = Duration::from_millis(3609);
/// Allowance for the test's own polling and the kernel, on top of the protocol's times.
const SLACK: Duration = Duration::from_millis(600);
/// The neighbour entry of the client must follow a change of owner within this.
const NEIGHBOUR_LIMIT: Duration = Duration::from_millis(200);

fn local_backend_yaml() -> String {
    pool_yaml(&[format!("127.0.0.1:{REDIS_PORT}")])
}

/// A bed with two proxy hosts, each with its own redis-server, and a client host.
struct Pair {
    /// Each proxy host's redis-server (dropped, so killed, before the bed goes).
    redis: Vec<support::process::Guarded>,
    bed: Testbed,
    dir: tempfile::TempDir,
    vip: Ipv4Addr,
}

impl Pair {
    fn new() -> Pair {
        let bed = Testbed::new(3);
        let dir = tempfile::tempdir().unwrap();
        let redis = [A, B]
            .map(|host| start_local_redis(&bed, host, dir.path()))
            .into();
        let vip = bed.subnet_address(100);
        Pair {
            redis,
            bed,
            dir,
            vip,
        }
    }

    fn node(&self, host: usize, instance: &Instance) -> Node {
        Node::start(
            &self.bed,
            host,
            &local_backend_yaml(),
            instance,
            self.dir.path().join(format!("node{host}")),
        )
    }

    /// Waits for the VIP on `host` and for the client's neighbour entry to follow; prints and
    /// returns the takeover time.
    fn expect_owner(
        &self,
        host: usize,
        since: Instant,
        limit: Duration,
        what: &str,
        nodes: &[&Node],
    ) -> Duration {
        let started = Instant::now();
        let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for_vip(&self.bed, host, self.vip, limit)
        }));
        if waited.is_err() {
            panic!(
                "{what}: host {host} did not get the VIP within {limit:?}\n{}",
                show_logs(nodes)
            );
        }
        let takeover = since.elapsed();
        let owned_at = Instant::now();
        let neighbour = wait_for_neighbour(&self.bed, CLIENT, self.vip, host, owned_at);
        eprintln!(
            "{what}: VIP on host {host} after {takeover:?} (waited {:?}); client's neighbour entry followed in {neighbour:?}",
            started.elapsed()
        );
        assert!(
            neighbour <= NEIGHBOUR_LIMIT,
            "{what}: the client's neighbour entry took {neighbour:?}"
        );
        takeover
    }
}

#[test]
fn two_rampart_nodes_elect_take_over_and_never_share_the_vip() {
    let pair = Pair::new();
    let vip = pair.vip;
    let mut a = pair.node(A, &Instance::new(101, vip));
    let mut b = pair.node(B, &Instance::new(100, vip));
    let sampler = OwnerSampler::start(&pair.bed, &[A, B], vip);
    let client = VipClient::start(&pair.bed, CLIENT, vip);
    let mut faults = Vec::new();

    let started = Instant::now();
    pair.expect_owner(
        A,
        started,
        MASTER_DOWN_AT_100 + SLACK * 2,
        "election (101 over 100)",
        &[&a, &b],
    );
    assert_eq!(b.state(&pair.bed), "BACKUP");

    let killed = Instant::now();
    a.kill();
    let takeover = pair.expect_owner(
        B,
        killed,
        MASTER_DOWN_AT_100 + SLACK,
        "kill -9 of the master",
        &[&a, &b],
    );
    assert!(takeover <= MASTER_DOWN_AT_100 + SLACK, "{takeover:?}");
    assert!(
        pair.bed.addresses(A).contains(&vip),
        "a killed node keeps its stale VIP until it runs again"
    );
    a.restart(&pair.bed);
    assert!(
        !pair.bed.addresses(A).contains(&vip),
        "a restarted node removes the stale VIP at start:\n{}",
        a.log()
    );
    faults.push((killed, Instant::now()));
    pair.expect_owner(
        A,
        Instant::now(),
        MASTER_DOWN_AT_100 + SLACK * 2,
        "the restarted higher priority preempts",
        &[&a, &b],
    );

    let stopped = Instant::now();
    a.stop();
    let takeover = pair.expect_owner(
        B,
        stopped,
        Duration::from_secs(1),
        "clean stop of the master",
        &[&a, &b],
    );
    assert!(takeover <= Duration::from_secs(1), "{takeover:?}");
    assert!(
        !pair.bed.addresses(A).contains(&vip),
        "a stopped node released the VIP"
    );

    a.restart(&pair.bed);
    pair.expect_owner(
        A,
        Instant::now(),
        MASTER_DOWN_AT_100 + SLACK * 2,
        "preempt after a clean restart",
        &[&a, &b],
    );

    client.wait_for_answers(20);
    let (answered, failed) = client.finish();
    let (samples, doubles) = sampler.finish(&faults);
    eprintln!(
        "client: {answered} requests answered, {failed} failed across 4 changes of owner; {samples} ownership samples"
    );
    assert!(doubles.is_empty(), "{doubles:#?}");
    assert!(answered > 100, "the client was served: {answered}");
    assert_eq!(a.state(&pair.bed), "MASTER");
    let transitions = support::vrrp::stats_value(&b.stats(&pair.bed), "vrrp_VI_1_transitions");
    assert!(transitions.parse::<u32>().unwrap() >= 4, "{transitions}");
    assert!(b.log().contains("MASTER -> BACKUP"), "{}", b.log());
    b.stop();
}

#[test]
fn a_master_whose_data_path_stalls_gives_the_vip_up() {
    let pair = Pair::new();
    let vip = pair.vip;
    let a = pair.node(A, &Instance::new(101, vip));
    let b = pair.node(B, &Instance::new(100, vip));
    let client = VipClient::start(&pair.bed, CLIENT, vip);
    pair.expect_owner(
        A,
        Instant::now(),
        MASTER_DOWN_AT_100 + SLACK * 2,
        "election",
        &[&a, &b],
    );

    let frozen = Instant::now();
    pair.redis[A].signal(libc::SIGSTOP);
    // Two failed probe rounds (1 s apart, 1 s each), then priority 0: the peer takes over
    // after its skew.
    let takeover = pair.expect_owner(
        B,
        frozen,
        Duration::from_secs(6),
        "backends of the master frozen",
        &[&a, &b],
    );
    assert_eq!(a.state(&pair.bed), "FAULT", "{}", a.log());
    assert!(
        a.log().contains("MASTER -> FAULT") && a.log().contains("shard"),
        "the fault is logged with its reason:\n{}",
        a.log()
    );
    assert!(!pair.bed.addresses(A).contains(&vip));
    eprintln!("stalled data path: VIP moved in {takeover:?}");

    pair.redis[A].signal(libc::SIGCONT);
    pair.expect_owner(
        A,
        Instant::now(),
        Duration::from_secs(10),
        "healthy again, the higher priority preempts",
        &[&a, &b],
    );
    assert!(a.log().contains("FAULT -> BACKUP"), "{}", a.log());
    client.wait_for_answers(20);
    let (answered, failed) = client.finish();
    eprintln!("stalled data path: client: {answered} requests answered, {failed} failed");
}

#[test]
fn nopreempt_keeps_the_vip_on_the_node_that_has_it() {
    let pair = Pair::new();
    let vip = pair.vip;
    let high = Instance {
        nopreempt: true,
        ..Instance::new(101, vip)
    };
    let low = Instance {
        nopreempt: true,
        ..Instance::new(100, vip)
    };
    let mut a = pair.node(A, &high);
    let b = pair.node(B, &low);
    let client = VipClient::start(&pair.bed, CLIENT, vip);
    pair.expect_owner(
        A,
        Instant::now(),
        MASTER_DOWN_AT_100 + SLACK * 2,
        "election",
        &[&a, &b],
    );
    let killed = Instant::now();
    a.kill();
    pair.expect_owner(B, killed, MASTER_DOWN_AT_100 + SLACK, "kill -9", &[&a, &b]);
    a.restart(&pair.bed);
    let deadline = Instant::now() + MASTER_DOWN_AT_100 * 2;
    while Instant::now() < deadline {
        assert!(
            pair.bed.addresses(B).contains(&vip),
            "nopreempt: the VIP stays\n{}",
            show_logs(&[&a, &b])
        );
        assert!(!pair.bed.addresses(A).contains(&vip));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(a.state(&pair.bed), "BACKUP");
    let (answered, failed) = client.finish();
    eprintln!("nopreempt: client: {answered} requests answered, {failed} failed");
}

/// rampart and keepalived share one virtual router, each in both roles.
fn interoperate(version: u8, unicast: bool) {
    let pair = Pair::new();
    let vip = pair.vip;
    let (address_a, address_b) = (pair.bed.address(A), pair.bed.address(B));
    let instance = |priority, source: Ipv4Addr, peer: Ipv4Addr| Instance {
        version,
        advert_int: if version == 3 { 0.5 } else { 1.0 },
        password: (version == 2).then_some("secret12"),
        unicast: unicast.then(|| (source, vec![peer])),
        ..Instance::new(priority, vip)
    };
    let what = format!(
        "v{version} {}",
        if unicast { "unicast" } else { "multicast" }
    );
    let master_down = if version == 3 {
        MASTER_DOWN_AT_100 / 2
    } else {
        MASTER_DOWN_AT_100
    };

    let mut rampart = pair.node(A, &instance(101, address_a, address_b));
    let mut keepalived = Keepalived::start(
        &pair.bed,
        B,
        &instance(100, address_b, address_a),
        pair.dir.path(),
        "b",
    );
    let _proxy_beside_keepalived =
        start_plain_rampart(&pair.bed, B, &local_backend_yaml(), pair.dir.path());
    let client = VipClient::start(&pair.bed, CLIENT, vip);
    pair.expect_owner(
        A,
        Instant::now(),
        master_down + SLACK * 2,
        &format!("{what}: rampart 101 master, keepalived 100 backup"),
        &[&rampart],
    );
    support::wait_until("keepalived in BACKUP", Duration::from_secs(5), || {
        keepalived.log().contains("Entering BACKUP STATE")
    });

    let stopped = Instant::now();
    rampart.stop();
    let takeover = pair.expect_owner(
        B,
        stopped,
        Duration::from_secs(1),
        &format!("{what}: rampart stops, keepalived takes over"),
        &[&rampart],
    );
    assert!(takeover <= Duration::from_secs(1));

    rampart.configure(&instance(99, address_a, address_b));
    rampart.restart(&pair.bed);
    let deadline = Instant::now() + master_down + SLACK;
    while Instant::now() < deadline {
        assert!(
            pair.bed.addresses(B).contains(&vip),
            "{what}: keepalived 100 keeps the VIP over rampart 99\n{}",
            rampart.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(rampart.state(&pair.bed), "BACKUP");

    let stopped = Instant::now();
    keepalived.terminate();
    let takeover = pair.expect_owner(
        A,
        stopped,
        Duration::from_secs(1),
        &format!("{what}: keepalived stops, rampart takes over"),
        &[&rampart],
    );
    assert!(takeover <= Duration::from_secs(1));
    assert!(
        keepalived.complaints().is_empty(),
        "{what}: keepalived complained about rampart's adverts:\n{}",
        keepalived.complaints().join("\n")
    );
    assert!(
        !rampart.log().contains("ignored"),
        "{what}: rampart ignored keepalived's adverts:\n{}",
        rampart.log()
    );
    client.wait_for_answers(20);
    let (answered, failed) = client.finish();
    eprintln!("{what}: client: {answered} requests answered, {failed} failed");
    assert!(answered > 50, "{what}: the client was served");
}

#[test]
fn interoperates_with_keepalived_v2_multicast_with_password() {
    interoperate(2, false);
}

#[test]
fn interoperates_with_keepalived_v2_unicast_with_password() {
    interoperate(2, true);
}

#[test]
fn interoperates_with_keepalived_v3_multicast() {
    interoperate(3, false);
}

#[test]
fn interoperates_with_keepalived_v3_unicast() {
    interoperate(3, true);
}

#[test]
fn a_node_without_cap_net_admin_never_holds_master_without_the_vip() {
    let pair = Pair::new();
    let vip = pair.vip;
    let a = Node::start_with(
        &pair.bed,
        A,
        &local_backend_yaml(),
        &Instance::new(101, vip),
        pair.dir.path().join("node-a"),
        &[
            "setpriv",
            "--inh-caps=-net_admin",
            "--bounding-set=-net_admin",
            "--",
        ],
    );
    let b = pair.node(B, &Instance::new(100, vip));
    let client = VipClient::start(&pair.bed, CLIENT, vip);
    pair.expect_owner(
        B,
        Instant::now(),
        MASTER_DOWN_AT_100 + SLACK * 2,
        "the capable node",
        &[&a, &b],
    );
    let deadline = Instant::now() + MASTER_DOWN_AT_100 * 3;
    let mut states = std::collections::BTreeSet::new();
    while Instant::now() < deadline {
        let state = a.state(&pair.bed);
        assert!(!pair.bed.addresses(A).contains(&vip));
        assert_ne!(state, "MASTER", "a master without its VIP:\n{}", a.log());
        states.insert(state);
        assert!(
            pair.bed.addresses(B).contains(&vip),
            "{}",
            show_logs(&[&a, &b])
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = a.log();
    assert!(log.contains("cannot add") && log.contains("FAULT"), "{log}");
    assert!(
        log.matches("FAULT -> BACKUP").count() <= 1,
        "the node waits before trying the addresses again, it does not flap:\n{log}"
    );
    eprintln!("states seen on the node without CAP_NET_ADMIN: {states:?}");
    let (answered, failed) = client.finish();
    eprintln!("without CAP_NET_ADMIN: client: {answered} requests answered, {failed} failed");
}
