//! `rampart check`, the health probe operators give keepalived as a `track_script`: its verdicts
//! against a real proxy and real redis-servers (healthy, a dead shard, a frozen shard, a dead
//! proxy, a bad file), how long it takes, and keepalived itself running it under Debian's dash
//! in a network namespace, moving the virtual IP as the proxy's health changes.

mod support;

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::netns::{INTERFACE, Testbed};
use support::process::{Guarded, Rampart, Redis, pool_yaml};
use support::resp::Reply;
use support::{free_port, rampart_bin, wait_until};

/// What one `rampart check` run did.
struct Checked {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Checked {
    fn shown(&self) -> String {
        format!(
            "exit {:?} after {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.took, self.stdout, self.stderr
        )
    }
}

/// Runs `command` to its end (failing the test if it takes over 10 s), timing it.
fn timed(command: &mut Command) -> Checked {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rampart check");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for rampart check") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rampart check still running after 10 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = started.elapsed();
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    Checked {
        code: status.code(),
        stdout,
        stderr,
        took,
    }
}

fn check(config: &Path, extra: &[&str]) -> Checked {
    timed(
        Command::new(rampart_bin())
            .arg("check")
            .arg("-c")
            .arg(config)
            .args(extra),
    )
}

/// Two redis-servers behind rampart, as shards `server1` and `server2` of pool `alpha`, with
/// no `timeout:` (so the proxy itself waits for a frozen shard as long as it takes).
struct Stack {
    shards: [Redis; 2],
    proxy: Rampart,
    listen: u16,
}

impl Stack {
    fn start() -> Stack {
        let shards = [Redis::start(&[]), Redis::start(&[])];
        let listen = free_port();
        let servers: Vec<String> = shards
            .iter()
            .zip(["server1", "server2"])
            .map(|(redis, name)| format!("127.0.0.1:{}:1 {name}", redis.port))
            .collect();
        let proxy = Rampart::start(&pool_yaml("alpha", listen, "", &servers), &[listen], &[]);
        Stack {
            shards,
            proxy,
            listen,
        }
    }

    fn check(&self, extra: &[&str]) -> Checked {
        check(&self.proxy.config, extra)
    }
}

/// The pid of a redis-server this test started, as it reports it.
fn redis_pid(redis: &Redis) -> libc::pid_t {
    let info = match redis.client().call(&[b"INFO", b"server"]) {
        Reply::Bulk(Some(text)) => String::from_utf8_lossy(&text).into_owned(),
        other => panic!("INFO server gave {other:?}"),
    };
    info.lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
        .expect("process_id in INFO")
}

fn signal(pid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill(2) on a redis-server this test started and still owns.
    assert_eq!(
        unsafe { libc::kill(pid, signal) },
        0,
        "kill({pid}, {signal})"
    );
}

#[test]
fn a_healthy_proxy_passes_and_every_shard_is_named() {
    let stack = Stack::start();
    let checked = stack.check(&[]);
    eprintln!("healthy check took {:?}", checked.took);
    assert_eq!(checked.code, Some(0), "{}", checked.shown());
    let listen = stack.listen;
    for line in [
        format!("pool 'alpha' listener 127.0.0.1:{listen}: ok"),
        "pool 'alpha' PING: ok in ".to_string(),
        "pool 'alpha' shard 'server1': ok in ".to_string(),
        "pool 'alpha' shard 'server2': ok in ".to_string(),
        "rampart check: ok".to_string(),
    ] {
        assert!(
            checked.stdout.contains(&line),
            "{line}: {}",
            checked.shown()
        );
    }
    assert!(checked.took < Duration::from_secs(1), "{}", checked.shown());
}

#[test]
fn a_dead_shard_fails_the_check_by_name_unless_any_shard_will_do() {
    let mut stack = Stack::start();
    stack.shards[1].kill();
    let checked = stack.check(&[]);
    assert_eq!(checked.code, Some(1), "{}", checked.shown());
    assert!(
        checked
            .stdout
            .contains("pool 'alpha' shard 'server2': FAILED: "),
        "{}",
        checked.shown()
    );
    assert!(
        checked.stdout.contains("pool 'alpha' shard 'server1': ok"),
        "{}",
        checked.shown()
    );
    assert!(
        checked
            .stdout
            .contains("rampart check: FAILED: pool 'alpha' shard 'server2': "),
        "{}",
        checked.shown()
    );

    let relaxed = stack.check(&["--shards", "any"]);
    assert_eq!(relaxed.code, Some(0), "{}", relaxed.shown());

    stack.shards[0].kill();
    let none_left = stack.check(&["--shards", "any"]);
    assert_eq!(none_left.code, Some(1), "{}", none_left.shown());
    assert!(
        none_left
            .stdout
            .contains("rampart check: FAILED: pool 'alpha': none of its 2 shards answers"),
        "{}",
        none_left.shown()
    );
}

#[test]
fn a_frozen_shard_fails_the_check_within_its_timeout() {
    let stack = Stack::start();
    let frozen = redis_pid(&stack.shards[1]);
    signal(frozen, libc::SIGSTOP);
    let checked = stack.check(&["--timeout", "1000"]);
    signal(frozen, libc::SIGCONT);
    eprintln!("check with a frozen shard took {:?}", checked.took);
    assert_eq!(checked.code, Some(1), "{}", checked.shown());
    assert!(
        checked
            .stdout
            .contains("pool 'alpha' shard 'server2': FAILED: timed out after 1000 ms"),
        "{}",
        checked.shown()
    );
    assert!(
        checked.stdout.contains("pool 'alpha' shard 'server1': ok"),
        "{}",
        checked.shown()
    );
    assert!(
        checked.took >= Duration::from_millis(1000) && checked.took < Duration::from_millis(2500),
        "{}",
        checked.shown()
    );

    let short = stack.check(&["--timeout", "300"]);
    eprintln!("check with --timeout 300 took {:?}", short.took);
    assert_eq!(short.code, Some(0), "the shard is back: {}", short.shown());
}

#[test]
fn a_dead_proxy_fails_the_check_naming_its_listener() {
    let mut stack = Stack::start();
    stack.proxy.process().kill();
    let checked = stack.check(&[]);
    eprintln!("check of a dead proxy took {:?}", checked.took);
    assert_eq!(checked.code, Some(1), "{}", checked.shown());
    let line = format!("pool 'alpha' listener 127.0.0.1:{}: FAILED: ", stack.listen);
    assert!(checked.stdout.contains(&line), "{}", checked.shown());
    assert!(
        checked
            .stdout
            .contains("rampart check: FAILED: pool 'alpha' listener"),
        "{}",
        checked.shown()
    );
}

#[test]
fn a_bad_config_fails_the_check_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken.yml");
    std::fs::write(
        &config,
        "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  hash: nosuchhash\n  servers:\n   - 127.0.0.1:6379:1\n",
    )
    .unwrap();
    let checked = check(&config, &[]);
    assert_eq!(checked.code, Some(1), "{}", checked.shown());
    assert!(
        checked.stderr.contains(&format!("{}:4", config.display())),
        "{}",
        checked.shown()
    );
    assert!(checked.stdout.is_empty(), "{}", checked.shown());

    let missing = check(Path::new("/nonexistent/rampart.yml"), &[]);
    assert_eq!(missing.code, Some(1), "{}", missing.shown());
    assert!(
        missing.stderr.contains("/nonexistent/rampart.yml"),
        "{}",
        missing.shown()
    );
}

#[test]
fn every_pool_is_checked_and_a_password_pool_after_auth() {
    let open = Redis::start(&[]);
    let locked = Redis::start(&["--requirepass", "secret"]);
    let (alpha, beta) = (free_port(), free_port());
    let yaml = |password: &str| {
        pool_yaml(
            "alpha",
            alpha,
            "",
            &[format!("127.0.0.1:{}:1 a1", open.port)],
        ) + &pool_yaml(
            "beta",
            beta,
            &format!("  redis_auth: {password}\n"),
            &[format!("127.0.0.1:{}:1 b1", locked.port)],
        )
    };
    let proxy = Rampart::start(&yaml("secret"), &[alpha, beta], &[]);
    let checked = check(&proxy.config, &[]);
    assert_eq!(checked.code, Some(0), "{}", checked.shown());
    for line in [
        "pool 'alpha' shard 'a1': ok",
        "pool 'beta' PING: ok",
        "pool 'beta' shard 'b1': ok",
    ] {
        assert!(checked.stdout.contains(line), "{line}: {}", checked.shown());
    }

    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong-password.yml");
    std::fs::write(&wrong, yaml("not-the-secret")).unwrap();
    let refused = check(&wrong, &[]);
    assert_eq!(refused.code, Some(1), "{}", refused.shown());
    assert!(
        refused.stdout.contains("pool 'alpha' PING: ok"),
        "{}",
        refused.shown()
    );
    assert!(
        refused
            .stdout
            .contains("pool 'beta' PING: FAILED: AUTH: -ERR"),
        "{}",
        refused.shown()
    );
}

#[test]
fn the_netns_test_bed_links_its_hosts_and_cleans_up() {
    let prefix;
    {
        let bed = Testbed::new(2);
        prefix = bed.prefix().to_string();
        assert_eq!(bed.addresses(0), [bed.address(0)]);
        assert_eq!(bed.addresses(1), [bed.address(1)]);
        let dir = tempfile::tempdir().unwrap();
        let mut redis = bed.spawn(
            0,
            "redis-server",
            &["--port", "6379", "--protected-mode", "no", "--save", ""],
            &dir.path().join("redis.log"),
        );
        let server = bed.address(0).to_string();
        wait_until(
            "redis-server answers across the bridge",
            Duration::from_secs(10),
            || {
                assert!(!redis.has_exited(), "redis-server exited");
                let output = bed.run(1, "redis-cli", &["-h", &server, "-p", "6379", "PING"]);
                String::from_utf8_lossy(&output.stdout).trim() == "PONG"
            },
        );
        assert_eq!(bed.neighbour(1, bed.address(0)), Some(bed.mac(0)));
        assert_ne!(bed.mac(0), bed.mac(1));
        // Nothing of the bed is visible from outside its namespaces.
        assert!(!bed.ip(&["-4", "addr"]).contains(&server));
        redis.kill();
    }
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left = String::from_utf8_lossy(&left.stdout);
    assert!(
        !left.contains(&format!("{prefix}-")),
        "namespaces left behind: {left}"
    );
}

/// Polls `ready` every 50 ms for up to `limit`; whether it became true.
fn became(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// redis-server and rampart inside host 0 of a test bed, on its loopback.
struct Node<'bed> {
    bed: &'bed Testbed,
    dir: PathBuf,
    config: PathBuf,
    redis: Guarded,
    proxy: Guarded,
}

impl<'bed> Node<'bed> {
    const REDIS_PORT: &'static str = "6379";
    const LISTEN_PORT: u16 = 22121;

    fn start(bed: &'bed Testbed, dir: &Path) -> Node<'bed> {
        let redis = bed.spawn(
            0,
            "redis-server",
            &[
                "--port",
                Node::REDIS_PORT,
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                dir.to_str().unwrap(),
            ],
            &dir.join("redis.log"),
        );
        let config = dir.join("rampart.yml");
        let servers = [format!("127.0.0.1:{}:1 server1", Node::REDIS_PORT)];
        std::fs::write(&config, pool_yaml("alpha", Node::LISTEN_PORT, "", &servers)).unwrap();
        let mut node = Node {
            bed,
            dir: dir.to_path_buf(),
            proxy: Node::spawn_proxy(bed, dir, &config),
            config,
            redis,
        };
        node.wait_healthy();
        node
    }

    fn spawn_proxy(bed: &Testbed, dir: &Path, config: &Path) -> Guarded {
        bed.spawn(
            0,
            rampart_bin(),
            &[
                "-c",
                config.to_str().unwrap(),
                "-s",
                "22222",
                "-a",
                "127.0.0.1",
                "-o",
                dir.join("rampart.log").to_str().unwrap(),
            ],
            &dir.join("rampart.out"),
        )
    }

    fn restart_proxy(&mut self) {
        self.proxy = Node::spawn_proxy(self.bed, &self.dir, &self.config);
        self.wait_healthy();
    }

    /// `rampart check` inside the namespace, as keepalived runs it.
    fn check(&self) -> Checked {
        timed(
            self.bed
                .command(0, rampart_bin())
                .arg("check")
                .arg("-c")
                .arg(&self.config)
                .args(["--timeout", "500"]),
        )
    }

    fn wait_healthy(&mut self) {
        wait_until(
            "rampart check passes in the namespace",
            Duration::from_secs(10),
            || {
                assert!(!self.redis.has_exited(), "redis-server exited");
                assert!(!self.proxy.has_exited(), "rampart exited");
                self.check().code == Some(0)
            },
        );
    }
}

/// A keepalived.conf: one BACKUP instance per (name, VRID, VIP, script) on eth1, each tracking
/// its own script, run every second, one failure to FAULT and one success back.
fn keepalived_conf(router: &str, instances: &[(&str, u8, Ipv4Addr, &str)]) -> String {
    let mut conf = format!(
        "global_defs {{\n    router_id {router}\n    enable_script_security\n    script_user root\n}}\n"
    );
    for (name, vrid, vip, script) in instances {
        conf.push_str(&format!(
            "vrrp_script {name}_check {{\n    script \"{script}\"\n    interval 1\n    fall 1\n    rise 1\n}}\n\
             vrrp_instance {name} {{\n    state BACKUP\n    interface {INTERFACE}\n    virtual_router_id {vrid}\n    priority 100\n    advert_int 1\n    virtual_ipaddress {{\n        {vip}/32\n    }}\n    track_script {{\n        {name}_check\n    }}\n}}\n"
        ));
    }
    conf
}

#[test]
fn keepalived_moves_the_vip_with_rampart_check_as_its_track_script_under_dash() {
    let sh = std::fs::read_link("/bin/sh").unwrap_or_default();
    eprintln!("/bin/sh is {}", sh.display());
    let bed = Testbed::new(1);
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(&bed, dir.path());
    let vip = bed.subnet_address(100);
    let seed_vip = bed.subnet_address(101);
    let script = format!(
        "{} check -c {} --timeout 500",
        rampart_bin(),
        node.config.display()
    );
    // The seed's check: only bash knows /dev/tcp, so under dash it never passes.
    let seed_script = format!("</dev/tcp/127.0.0.1/{}", Node::LISTEN_PORT);
    let prefix = bed.prefix().to_string();
    let conf = dir.path().join(format!("{prefix}-keepalived.conf"));
    std::fs::write(
        &conf,
        keepalived_conf(
            &prefix,
            &[
                ("rampart", 51, vip, &script),
                ("seed", 52, seed_vip, &seed_script),
            ],
        ),
    )
    .unwrap();
    let log = dir.path().join(format!("{prefix}-keepalived.log"));
    let pid_file = |what: &str| {
        dir.path()
            .join(format!("{prefix}-{what}.pid"))
            .to_str()
            .unwrap()
            .to_string()
    };
    let mut keepalived = bed.spawn(
        0,
        "keepalived",
        &[
            "-f",
            conf.to_str().unwrap(),
            "-p",
            &pid_file("keepalived"),
            "-r",
            &pid_file("vrrp"),
            "-c",
            &pid_file("checkers"),
            "-n",
            "-l",
            "-D",
        ],
        &log,
    );
    let keepalived_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let holds = |address: Ipv4Addr| bed.holds(0, address);

    let started = Instant::now();
    assert!(
        became(Duration::from_secs(20), || holds(vip)),
        "the VIP never came:\n{}",
        keepalived_log()
    );
    eprintln!("VIP up {:?} after keepalived started", started.elapsed());
    assert!(
        !holds(seed_vip),
        "the seed's /dev/tcp check passed under dash:\n{}",
        keepalived_log()
    );

    // A frozen shard: the check times out, keepalived goes to FAULT and drops the VIP.
    let frozen = node.redis.pid();
    let frozen = libc::pid_t::try_from(frozen).unwrap();
    signal(frozen, libc::SIGSTOP);
    let stopped = Instant::now();
    let gone = became(Duration::from_secs(10), || !holds(vip));
    let frozen_for = stopped.elapsed();
    signal(frozen, libc::SIGCONT);
    assert!(
        gone,
        "the VIP stayed on a frozen shard:\n{}",
        keepalived_log()
    );
    eprintln!("VIP gone {frozen_for:?} after the shard froze");
    assert!(
        keepalived_log().contains("Entering FAULT STATE"),
        "{}",
        keepalived_log()
    );
    let resumed = Instant::now();
    assert!(
        became(Duration::from_secs(20), || holds(vip)),
        "the VIP did not come back after SIGCONT:\n{}",
        keepalived_log()
    );
    eprintln!("VIP back {:?} after the shard resumed", resumed.elapsed());

    // A dead proxy: the listener refuses, FAULT again; a restarted proxy brings the VIP back.
    node.proxy.kill();
    let killed = Instant::now();
    assert!(
        became(Duration::from_secs(10), || !holds(vip)),
        "the VIP stayed on a node without a proxy:\n{}",
        keepalived_log()
    );
    eprintln!("VIP gone {:?} after the proxy died", killed.elapsed());
    node.restart_proxy();
    let restarted = Instant::now();
    assert!(
        became(Duration::from_secs(20), || holds(vip)),
        "the VIP did not come back with the proxy:\n{}",
        keepalived_log()
    );
    eprintln!(
        "VIP back {:?} after the proxy restarted",
        restarted.elapsed()
    );

    assert!(
        !holds(seed_vip),
        "the seed's /dev/tcp check passed under dash:\n{}",
        keepalived_log()
    );
    let log_text = keepalived_log();
    assert!(
        log_text.contains("VRRP_Script(seed_check) failed (exited with status 2)")
            && !log_text.contains("(seed) Entering MASTER STATE"),
        "the seed's instance stays in FAULT:\n{log_text}"
    );

    keepalived.signal(libc::SIGTERM);
    keepalived.wait_exit(Duration::from_secs(10));
    assert!(
        !holds(vip),
        "keepalived left the VIP behind:\n{}",
        keepalived_log()
    );
}
