//! Hot configuration reload, against real redis-servers and real clients: SIGUSR1 re-reads the
//! `-c` file and logs what changed (`configuration reloaded from '...': added [..], removed
//! [..], changed [..], unchanged [..]`) or why it refused (`reload refused: FILE:LINE:...`, the
//! running configuration kept). Ten reloads under redis-benchmark lose no request and keep an
//! idle raw client and a redis-rs connection; a broken file (a bad directive, bad YAML) changes
//! nothing, not even placement; a pool added opens its port, a pool removed closes its own, a
//! pool moved to another port leaves the other pools' listeners and clients alone; keys land
//! where `rampart route` says for the new file; the stats follow the new pools and servers
//! while an unchanged pool's counters carry on; and `POST /reload` on the admin endpoint (200 or
//! 422, GET 405) and `rampart reload` (through the admin endpoint, or SIGUSR1 to the pid in a
//! pid file).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::admin::{get, request, status};
use support::process::{Guarded, Rampart, Redis, listening_sockets, pings, pool_yaml};
use support::random::scrambled;
use support::replication::info;
use support::resp::{Client, Reply, bulk, call, ok, pong};
use support::route::place;
use support::shards::shards_of;
use support::stats::{Json, assert_stat, pool_servers, server_counter, servers_sum, stat_reaching};
use support::{free_port, rampart_bin, tail, wait_until};

/// How the log line and the admin endpoint's body of a successful reload begin.
const RELOADED: &str = "configuration reloaded from '";
/// What the log line, the admin endpoint's body and `rampart reload` say on a refusal.
const REFUSED: &str = "reload refused:";
/// What the log line of a refusal adds.
const KEPT: &str = "the running configuration is kept";
/// How long a reload, or what follows from it (a listener opening or closing, the stats
/// publishing the new pools), may take.
const LIMIT: Duration = Duration::from_secs(10);

/// Pool `name` listening on `port` over the redis-servers on `backends`, named `<prefix>0`,
/// `<prefix>1`... in that order.
fn pool(name: &str, port: u16, directives: &str, prefix: &str, backends: &[u16]) -> String {
    let servers: Vec<String> = backends
        .iter()
        .enumerate()
        .map(|(index, backend)| format!("127.0.0.1:{backend}:1 {prefix}{index}"))
        .collect();
    pool_yaml(name, port, directives, &servers)
}

/// The 1-based number of the first line of `yaml` holding `marker`.
fn line_of(yaml: &str, marker: &str) -> usize {
    yaml.lines()
        .position(|line| line.contains(marker))
        .unwrap_or_else(|| panic!("no {marker:?} in:\n{yaml}"))
        + 1
}

/// Replaces the proxy's configuration file with `yaml`, as an operator's tool would: written
/// beside it, then renamed over it.
fn install(proxy: &Rampart, yaml: &str) {
    let next = proxy.dir.path().join("rampart.yml.next");
    fs::write(&next, yaml).expect("write the next configuration");
    fs::rename(&next, &proxy.config).expect("rename it over the configuration file");
}

/// Waits until rampart handles SIGUSR1 (it may serve before its handlers exist).
fn wait_handlers(proxy: &mut Rampart) {
    wait_until("the SIGUSR1 handler installed", LIMIT, || {
        proxy.process().catches(&[libc::SIGUSR1])
    });
}

/// The level word of a text log line (`[2026-12-06 04:29:14.129]  INFO message`).
fn level_of(line: &str) -> &str {
    line.split_once(']')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("a log line with a level: {line}"))
}

/// The pools of one list of a reload summary (`added [beta, gamma]`), sorted.
fn pool_list(text: &str, label: &str) -> Vec<String> {
    let open = format!("{label} [");
    // `changed [` also ends `unchanged [`: the label must start a word.
    let at = text
        .match_indices(&open)
        .map(|(at, _)| at)
        .find(|&at| {
            text[..at]
                .chars()
                .next_back()
                .is_none_or(|before| !before.is_alphanumeric())
        })
        .unwrap_or_else(|| panic!("no {open:?} list in: {text}"));
    let inside = &text[at + open.len()..];
    let inside = &inside[..inside
        .find(']')
        .unwrap_or_else(|| panic!("an unclosed {open:?} list in: {text}"))];
    let mut names: Vec<String> = inside
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

/// What a successful reload reported: the file it read and the pools it added, removed,
/// changed and left unchanged.
#[derive(Debug)]
struct Summary {
    text: String,
    path: String,
    added: Vec<String>,
    removed: Vec<String>,
    changed: Vec<String>,
    unchanged: Vec<String>,
}

impl Summary {
    /// Reads the summary out of a log line or an admin endpoint's (or `rampart reload`'s)
    /// answer.
    fn parse(text: &str) -> Summary {
        let start = text
            .find(RELOADED)
            .unwrap_or_else(|| panic!("no {RELOADED:?} in: {text}"));
        let rest = &text[start + RELOADED.len()..];
        let (path, lists) = rest
            .split_once('\'')
            .unwrap_or_else(|| panic!("the file's name in quotes: {text}"));
        Summary {
            text: text.to_string(),
            path: path.to_string(),
            added: pool_list(lists, "added"),
            removed: pool_list(lists, "removed"),
            changed: pool_list(lists, "changed"),
            unchanged: pool_list(lists, "unchanged"),
        }
    }

    /// Asserts that the file read is `config` and what each list names (in any order).
    fn assert_pools(
        &self,
        config: &Path,
        added: &[&str],
        removed: &[&str],
        changed: &[&str],
        unchanged: &[&str],
    ) {
        assert_eq!(self.path, config.display().to_string(), "{}", self.text);
        let sorted = |names: &[&str]| {
            let mut names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
            names.sort();
            names
        };
        assert_eq!(self.added, sorted(added), "added: {}", self.text);
        assert_eq!(self.removed, sorted(removed), "removed: {}", self.text);
        assert_eq!(self.changed, sorted(changed), "changed: {}", self.text);
        assert_eq!(
            self.unchanged,
            sorted(unchanged),
            "unchanged: {}",
            self.text
        );
    }
}

/// How one reload ended, from its log line.
#[derive(Debug)]
enum Outcome {
    Reloaded(Summary),
    /// The refusal's log line.
    Refused(String),
}

impl Outcome {
    /// The outcome a log line reports: a summary at level INFO, a refusal at level ERROR.
    fn of_line(line: &str) -> Outcome {
        if line.contains(RELOADED) {
            assert_eq!(level_of(line), "INFO", "a reload is logged at info: {line}");
            Outcome::Reloaded(Summary::parse(line))
        } else {
            assert_eq!(
                level_of(line),
                "ERROR",
                "a refusal is logged at error: {line}"
            );
            Outcome::Refused(line.to_string())
        }
    }

    fn summary(self) -> Summary {
        match self {
            Outcome::Reloaded(summary) => summary,
            Outcome::Refused(line) => panic!("the reload was refused: {line}"),
        }
    }

    fn refusal(self) -> String {
        match self {
            Outcome::Refused(line) => line,
            Outcome::Reloaded(summary) => panic!("the reload was accepted: {}", summary.text),
        }
    }
}

/// The log lines that report a reload's outcome, in order.
fn outcome_lines(proxy: &Rampart) -> Vec<String> {
    proxy
        .log_text()
        .lines()
        .filter(|line| line.contains(RELOADED) || line.contains(REFUSED))
        .map(str::to_string)
        .collect()
}

/// Sends SIGUSR1 and waits for the one log line that reports how the reload ended.
fn reload_by_signal(proxy: &mut Rampart) -> Outcome {
    let before = outcome_lines(proxy).len();
    proxy.process().signal(libc::SIGUSR1);
    let mut lines = Vec::new();
    wait_until("the reload's outcome in the log", LIMIT, || {
        lines = outcome_lines(proxy);
        lines.len() > before
    });
    assert_eq!(
        lines.len(),
        before + 1,
        "one outcome per SIGUSR1: {lines:#?}"
    );
    Outcome::of_line(&lines[before])
}

/// Asserts that a refusal (a log line, an admin answer, `rampart reload`'s stderr) names the
/// configuration file and the line at fault after `reload refused:`.
fn assert_names_file_and_line(refusal: &str, config: &Path, line: usize) {
    let start = refusal
        .find(REFUSED)
        .unwrap_or_else(|| panic!("no {REFUSED:?} in: {refusal}"));
    let at = format!("{}:{line}:", config.display());
    assert!(
        refusal[start..].contains(&at),
        "the refusal names {at} after {REFUSED:?}: {refusal}"
    );
}

/// `POST /reload` on the proxy's admin endpoint.
fn post_reload(proxy: &Rampart) -> (u16, String) {
    request(proxy.admin_port, "POST", "/reload")
}

/// `POST /reload`, which must succeed: its summary.
fn reload_by_admin(proxy: &Rampart) -> Summary {
    let (code, body) = post_reload(proxy);
    assert_eq!(code, 200, "POST /reload: {body}");
    Summary::parse(&body)
}

/// `rampart reload` with `args`, run to its end.
fn rampart_reload(args: &[&str]) -> Output {
    Command::new(rampart_bin())
        .arg("reload")
        .args(args)
        .output()
        .expect("run rampart reload")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether a connection to the loopback `port` is refused: nothing listens there.
fn refused(port: u16) -> bool {
    matches!(
        TcpStream::connect(("127.0.0.1", port)),
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// Waits until nothing listens on `port` any more.
fn wait_refused(port: u16) {
    wait_until(
        &format!("connections to port {port} refused"),
        LIMIT,
        || refused(port),
    );
}

/// The inodes of the sockets process `pid` listens with on TCP port `port`.
fn listeners(pid: u32, port: u16) -> BTreeSet<String> {
    listening_sockets(pid)
        .into_iter()
        .filter(|(listening, _)| *listening == port)
        .map(|(_, inode)| inode)
        .collect()
}

/// The pools of a stats document, sorted.
fn stats_pools(stats: &str) -> Vec<String> {
    let mut pools: Vec<String> = Json::parse(stats)
        .servers()
        .into_iter()
        .map(|(name, _)| name.to_string())
        .collect();
    pools.sort();
    pools
}

/// `INFO stats`' `total_commands_processed`, summed over redis-servers.
fn commands_processed(redis: &[Redis]) -> u64 {
    redis
        .iter()
        .map(|server| {
            info(server.port, &["stats"])
                .get("total_commands_processed")
                .and_then(|count| count.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// What redis-benchmark wrote (stdout and stderr, its progress lines ended by `\r`).
fn benchmark_output(log: &Path) -> String {
    fs::read_to_string(log)
        .unwrap_or_default()
        .replace('\r', "\n")
}

/// Waits until the redis-servers have processed `target` commands in all, failing with
/// redis-benchmark's output if it ends first (`before` what); returns the count then.
fn wait_progress(
    redis: &[Redis],
    target: u64,
    bench: &mut Guarded,
    bench_log: &Path,
    proxy: &Rampart,
    before: &str,
) -> u64 {
    let mut processed = 0;
    wait_until(
        &format!("{target} commands on the redis-servers before {before}"),
        Duration::from_secs(30),
        || {
            if let Some(status) = bench.exit_status() {
                panic!(
                    "redis-benchmark ended ({status}) before {before}:\n{}\nrampart log:\n{}",
                    benchmark_output(bench_log),
                    tail(&proxy.log_text(), 30)
                );
            }
            processed = commands_processed(redis);
            processed >= target
        },
    );
    processed
}

/// Ten reloads, alternately adding a third server to the pool and changing its timeout, while
/// redis-benchmark's 20 clients SET and GET through it: redis-benchmark stops at its first
/// error reply or broken connection, so finishing with exit status 0 means no request failed.
/// A raw client and a redis-rs connection opened before the reloads, idle during them, still
/// work on the same sockets afterwards.
#[test]
fn reloads_under_load_lose_no_request() {
    let redis: Vec<Redis> = (0..3).map(|_| Redis::start(&[])).collect();
    let port = free_port();
    let two = [redis[0].port, redis[1].port];
    let three = [redis[0].port, redis[1].port, redis[2].port];
    let initial = pool("alpha", port, "  timeout: 2000\n", "s", &two);
    let files = [
        pool("alpha", port, "  timeout: 2000\n", "s", &three),
        pool("alpha", port, "  timeout: 3000\n", "s", &two),
    ];
    let mut proxy = Rampart::start(&initial, &[port], &[]);
    wait_handlers(&mut proxy);

    let mut raw = Client::open(port);
    assert_eq!(raw.call_str(&["SET", "reload:raw", "before"]), ok());
    let mut connection = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .expect("a redis-rs client")
        .get_connection()
        .expect("a redis-rs connection through the proxy");
    let _: () = redis::cmd("SET")
        .arg("reload:rs")
        .arg("before")
        .query(&mut connection)
        .expect("SET through redis-rs");

    let bench_dir = tempfile::tempdir().unwrap();
    let bench_log = bench_dir.path().join("redis-benchmark.out");
    let mut bench = Guarded::spawn(
        Command::new("redis-benchmark").args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "set,get",
            "-n",
            "200000",
            "-c",
            "20",
            "-r",
            "100000",
            "-q",
        ]),
        &bench_log,
    );
    // Each reload waits for this much traffic after the previous one, so the ten are spread
    // over the first half of the benchmark's 400 000 requests.
    let step = 15_000;
    let mut mark = commands_processed(&redis);
    mark = wait_progress(
        &redis,
        mark + step,
        &mut bench,
        &bench_log,
        &proxy,
        "the first reload",
    );
    for round in 0..10 {
        install(&proxy, &files[round % 2]);
        let summary = reload_by_signal(&mut proxy).summary();
        summary.assert_pools(&proxy.config, &[], &[], &["alpha"], &[]);
        let next = format!("the reload after reload {}", round + 1);
        mark = wait_progress(&redis, mark + step, &mut bench, &bench_log, &proxy, &next);
    }
    let status = bench.wait_exit(Duration::from_secs(60));
    let output = benchmark_output(&bench_log);
    assert!(
        status.success(),
        "redis-benchmark failed ({status}):\n{output}\nrampart log:\n{}",
        tail(&proxy.log_text(), 30)
    );
    assert!(!output.contains("Error"), "{output}");
    for test in ["SET", "GET"] {
        assert!(
            output
                .lines()
                .any(|line| line.starts_with(&format!("{test}: "))
                    && line.contains("requests per second")),
            "a {test} result:\n{output}"
        );
    }

    let lines = outcome_lines(&proxy);
    assert_eq!(lines.len(), 10, "{lines:#?}");
    assert!(
        lines.iter().all(|line| line.contains(RELOADED)),
        "{lines:#?}"
    );

    // The last file has the first one's servers: the keys written before are where they were.
    assert_eq!(raw.call_str(&["PING"]), pong(), "the raw client's socket");
    assert_eq!(raw.call_str(&["GET", "reload:raw"]), bulk("before"));
    assert_eq!(raw.call_str(&["SET", "reload:raw", "after"]), ok());
    assert_eq!(raw.call_str(&["GET", "reload:raw"]), bulk("after"));
    let pinged: String = redis::cmd("PING")
        .query(&mut connection)
        .expect("PING on the redis-rs connection opened before the reloads");
    assert_eq!(pinged, "PONG");
    let value: Option<String> = redis::cmd("GET")
        .arg("reload:rs")
        .query(&mut connection)
        .expect("GET through redis-rs");
    assert_eq!(value.as_deref(), Some("before"));
    let _: () = redis::cmd("SET")
        .arg("reload:rs")
        .arg("after")
        .query(&mut connection)
        .expect("SET through redis-rs after the reloads");
    assert!(!proxy.has_exited(), "rampart is still running");
}

/// A file with a bad directive, then one with bad YAML, both of which would add a third server
/// if they were valid: each is refused (logged at error with the file and line, the running
/// configuration kept), and the proxy goes on serving the old pool, keys placed as before
/// (none reaches the third server); the fixed file is then reloaded with the pool unchanged.
#[test]
fn a_broken_file_is_refused_and_the_running_configuration_kept() {
    let redis: Vec<Redis> = (0..3).map(|_| Redis::start(&[])).collect();
    let port = free_port();
    let two = [redis[0].port, redis[1].port];
    let three = [redis[0].port, redis[1].port, redis[2].port];
    let good = pool("alpha", port, "", "s", &two);
    let mut proxy = Rampart::start(&good, &[port], &[]);
    wait_handlers(&mut proxy);
    // The running file and the three-server file the broken ones would be, for `rampart
    // route` (the real file is broken meanwhile).
    let running = proxy.dir.path().join("running.yml");
    fs::write(&running, &good).unwrap();
    let grown_yaml = pool("alpha", port, "", "s", &three);
    let grown = proxy.dir.path().join("grown.yml");
    fs::write(&grown, &grown_yaml).unwrap();

    // Keys that the three-server ring would move to s2: a broken file applied even in part
    // would lose them.
    let candidates: Vec<String> = (0..600).map(|n| scrambled("broken:", n)).collect();
    let moving: Vec<String> = candidates
        .iter()
        .zip(shards_of(&grown, &candidates))
        .filter(|(_, shard)| *shard == 2)
        .map(|(key, _)| key.clone())
        .take(20)
        .collect();
    assert_eq!(moving.len(), 20, "keys the third server would take");
    let mut conn = Client::open(port);
    for key in &moving {
        assert_eq!(conn.call_str(&["SET", key, key]), ok());
    }
    for (key, shard) in moving.iter().zip(shards_of(&running, &moving)) {
        assert_eq!(
            redis[shard].get(key).as_deref(),
            Some(key.as_str()),
            "{key}"
        );
    }

    let broken = [
        (
            pool("alpha", port, "  hash: nope\n", "s", &three),
            "hash: nope",
        ),
        (format!("{grown_yaml}  - oops\n"), "  - oops"),
    ];
    for (round, (yaml, marker)) in broken.iter().enumerate() {
        install(&proxy, yaml);
        let refusal = reload_by_signal(&mut proxy).refusal();
        assert_names_file_and_line(&refusal, &proxy.config, line_of(yaml, marker));
        assert!(refusal.contains(KEPT), "{refusal}");

        assert_eq!(conn.call_str(&["PING"]), pong(), "the client's socket");
        let mut fresh = Client::open(port);
        for key in &moving {
            assert_eq!(
                fresh.call_str(&["GET", key]),
                bulk(key),
                "{key} is still read from where it was placed"
            );
        }
        let written: Vec<String> = (0..60)
            .map(|n| scrambled(&format!("kept{round}:"), n))
            .collect();
        for key in &written {
            assert_eq!(fresh.call_str(&["SET", key, "v"]), ok());
        }
        for (key, shard) in written.iter().zip(shards_of(&running, &written)) {
            assert_eq!(
                redis[shard].get(key).as_deref(),
                Some("v"),
                "{key} on s{shard}, as the running file places it"
            );
        }
        assert!(
            redis[2].keys(0).is_empty(),
            "the third server of the refused file got keys"
        );
        let shards = status(proxy.admin_port)["pools"][0]["shards"].clone();
        assert_eq!(
            shards.as_array().map(Vec::len),
            Some(2),
            "/status: {shards}"
        );
    }

    install(&proxy, &good);
    reload_by_signal(&mut proxy)
        .summary()
        .assert_pools(&proxy.config, &[], &[], &[], &["alpha"]);
    assert_eq!(conn.call_str(&["GET", &moving[0]]), bulk(&moving[0]));
}

/// Pool `beta` added with a port of its own: once the reload is logged the port serves, from
/// beta's server; a client of `alpha` connected before keeps its connection.
#[test]
fn adding_a_pool_opens_its_port_and_keeps_the_other_pools_clients() {
    let (a, b) = (Redis::start(&[]), Redis::start(&[]));
    let (alpha_port, beta_port) = (free_port(), free_port());
    let alpha = pool("alpha", alpha_port, "", "s", &[a.port]);
    let mut proxy = Rampart::start(&alpha, &[alpha_port], &[]);
    wait_handlers(&mut proxy);
    let mut old = Client::open(alpha_port);
    assert_eq!(old.call_str(&["SET", "added:alpha", "1"]), ok());
    assert!(refused(beta_port), "nothing listens on beta's port yet");

    install(
        &proxy,
        &format!("{alpha}{}", pool("beta", beta_port, "", "b", &[b.port])),
    );
    reload_by_signal(&mut proxy).summary().assert_pools(
        &proxy.config,
        &["beta"],
        &[],
        &[],
        &["alpha"],
    );
    wait_until("beta's port to serve", LIMIT, || pings(beta_port));
    let mut beta = Client::open(beta_port);
    assert_eq!(beta.call_str(&["SET", "added:beta", "2"]), ok());
    assert_eq!(beta.call_str(&["GET", "added:beta"]), bulk("2"));
    assert_eq!(b.get("added:beta").as_deref(), Some("2"));
    assert_eq!(a.get("added:beta"), None);

    assert_eq!(old.call_str(&["PING"]), pong(), "alpha's client's socket");
    assert_eq!(old.call_str(&["GET", "added:alpha"]), bulk("1"));
    assert_eq!(old.call_str(&["SET", "added:alpha", "3"]), ok());
    assert_eq!(a.get("added:alpha").as_deref(), Some("3"));
}

/// Pool `beta` removed: its port refuses connections and it leaves the stats; a client of
/// `alpha` connected before keeps its connection.
#[test]
fn removing_a_pool_closes_its_port_and_keeps_the_other_pools_clients() {
    let (a, b) = (Redis::start(&[]), Redis::start(&[]));
    let (alpha_port, beta_port) = (free_port(), free_port());
    let alpha = pool("alpha", alpha_port, "", "s", &[a.port]);
    let both = format!("{alpha}{}", pool("beta", beta_port, "", "b", &[b.port]));
    let mut proxy = Rampart::start(&both, &[alpha_port, beta_port], &[]);
    wait_handlers(&mut proxy);
    let mut old = Client::open(alpha_port);
    assert_eq!(old.call_str(&["SET", "removed:alpha", "1"]), ok());
    assert_eq!(
        Client::open(beta_port).call_str(&["SET", "removed:beta", "1"]),
        ok()
    );
    assert_eq!(stats_pools(&proxy.stats()), ["alpha", "beta"]);

    install(&proxy, &alpha);
    reload_by_signal(&mut proxy).summary().assert_pools(
        &proxy.config,
        &[],
        &["beta"],
        &[],
        &["alpha"],
    );
    wait_refused(beta_port);
    assert!(listeners(proxy.pid(), beta_port).is_empty());

    assert_eq!(old.call_str(&["PING"]), pong(), "alpha's client's socket");
    assert_eq!(old.call_str(&["GET", "removed:alpha"]), bulk("1"));
    assert_eq!(old.call_str(&["SET", "removed:alpha", "2"]), ok());
    assert_eq!(a.get("removed:alpha").as_deref(), Some("2"));
    wait_until("beta to leave the stats", LIMIT, || {
        stats_pools(&proxy.stats()) == ["alpha"]
    });
    assert!(!proxy.has_exited(), "rampart is still running");
}

/// Pool `alpha` moved from one port to another (reloaded through `POST /reload`): the new port
/// serves, the old one is closed, and pool `beta`'s listening socket is the very same one, its
/// client still served on its connection.
#[test]
fn moving_a_pool_to_another_port_leaves_the_other_pools_listener_alone() {
    let (a, b) = (Redis::start(&[]), Redis::start(&[]));
    let (old_port, new_port, beta_port) = (free_port(), free_port(), free_port());
    let beta = pool("beta", beta_port, "", "b", &[b.port]);
    let before = format!("{}{beta}", pool("alpha", old_port, "", "s", &[a.port]));
    let proxy = Rampart::start(&before, &[old_port, beta_port], &[]);
    let mut beta_client = Client::open(beta_port);
    assert_eq!(beta_client.call_str(&["SET", "moved:beta", "1"]), ok());
    let beta_listeners = listeners(proxy.pid(), beta_port);
    assert!(!beta_listeners.is_empty(), "rampart listens on {beta_port}");
    assert!(refused(new_port), "nothing listens on alpha's new port yet");

    install(
        &proxy,
        &format!("{}{beta}", pool("alpha", new_port, "", "s", &[a.port])),
    );
    reload_by_admin(&proxy).assert_pools(&proxy.config, &[], &[], &["alpha"], &["beta"]);
    wait_until("alpha's new port to serve", LIMIT, || pings(new_port));
    wait_refused(old_port);
    assert!(listeners(proxy.pid(), old_port).is_empty());
    let mut moved = Client::open(new_port);
    assert_eq!(moved.call_str(&["SET", "moved:alpha", "2"]), ok());
    assert_eq!(a.get("moved:alpha").as_deref(), Some("2"));

    assert_eq!(
        listeners(proxy.pid(), beta_port),
        beta_listeners,
        "beta's listening socket is untouched"
    );
    assert_eq!(
        beta_client.call_str(&["PING"]),
        pong(),
        "beta's client's socket"
    );
    assert_eq!(beta_client.call_str(&["GET", "moved:beta"]), bulk("1"));
    assert_eq!(beta_client.call_str(&["SET", "moved:beta", "3"]), ok());
    assert_eq!(b.get("moved:beta").as_deref(), Some("3"));
}

/// A third server added to the pool: keys written after the reload, through a client connected
/// before it and through a new one, are each on the server `rampart route` names for the new
/// file, and on no other; each of the three servers gets some.
#[test]
fn keys_written_after_adding_a_server_are_placed_as_route_says() {
    let redis: Vec<Redis> = (0..3).map(|_| Redis::start(&[])).collect();
    let port = free_port();
    let two = [redis[0].port, redis[1].port];
    let three = [redis[0].port, redis[1].port, redis[2].port];
    let mut proxy = Rampart::start(&pool("alpha", port, "", "s", &two), &[port], &[]);
    wait_handlers(&mut proxy);
    let mut old = Client::open(port);
    assert_eq!(old.call_str(&["PING"]), pong());

    install(&proxy, &pool("alpha", port, "", "s", &three));
    reload_by_signal(&mut proxy)
        .summary()
        .assert_pools(&proxy.config, &[], &[], &["alpha"], &[]);
    let keys: Vec<String> = (0..300).map(|n| scrambled("placed:", n)).collect();
    let mut new = Client::open(port);
    for (index, key) in keys.iter().enumerate() {
        let client = if index % 2 == 0 { &mut old } else { &mut new };
        assert_eq!(client.call_str(&["SET", key, "v"]), ok(), "SET {key}");
    }

    let by_address: BTreeMap<String, usize> = redis
        .iter()
        .enumerate()
        .map(|(index, server)| (format!("127.0.0.1:{}", server.port), index))
        .collect();
    let stored: Vec<BTreeSet<Vec<u8>>> = redis
        .iter()
        .map(|server| server.keys(0).into_iter().collect())
        .collect();
    let mut per_server = [0usize; 3];
    let mut misplaced = Vec::new();
    for placed in place(&proxy.config, Some("alpha"), &[], &keys) {
        let wanted = by_address[&placed.address];
        per_server[wanted] += 1;
        let holders: Vec<usize> = (0..3)
            .filter(|&index| stored[index].contains(&placed.key))
            .collect();
        if holders != [wanted] {
            misplaced.push(format!(
                "{}: route says s{wanted}, found on {holders:?}",
                String::from_utf8_lossy(&placed.key)
            ));
        }
    }
    assert!(
        misplaced.is_empty(),
        "{} of {} keys misplaced: {:#?}",
        misplaced.len(),
        keys.len(),
        &misplaced[..misplaced.len().min(10)]
    );
    assert!(
        per_server.iter().all(|&count| count > 0),
        "every server takes keys: {per_server:?}"
    );
}

/// After a reload (through `POST /reload`) that adds pool `gamma`, adds a server to `beta` and
/// leaves `alpha` alone, the stats document lists the new pools and servers, and alpha's
/// servers' `requests` carry on from where they were.
#[test]
fn the_stats_follow_the_new_pools_and_an_unchanged_pools_counters_carry_on() {
    let redis: Vec<Redis> = (0..5).map(|_| Redis::start(&[])).collect();
    let ports = [free_port(), free_port(), free_port()];
    let alpha = pool("alpha", ports[0], "", "s", &[redis[0].port, redis[1].port]);
    let before = format!(
        "{alpha}{}",
        pool("beta", ports[1], "", "b", &[redis[2].port])
    );
    let proxy = Rampart::start(&before, &ports[..2], &[]);

    let sent = 100;
    let keys: Vec<String> = (0..sent).map(|n| scrambled("counted:", n)).collect();
    let mut conn = Client::open(ports[0]);
    for key in &keys {
        assert_eq!(conn.call_str(&["SET", key, "v"]), ok());
    }
    let alpha_requests = |stats: &str| servers_sum(stats, "alpha", "requests");
    stat_reaching(|| proxy.stats(), alpha_requests, sent as u64);
    let stats = proxy.stats();
    assert_eq!(alpha_requests(&stats), sent as u64, "{stats}");
    let counted: Vec<u64> = ["s0", "s1"]
        .iter()
        .map(|server| server_counter(&stats, "alpha", server, "requests"))
        .collect();
    assert_eq!(pool_servers(&stats, "beta"), ["b0"]);

    let after = format!(
        "{alpha}{}{}",
        pool("beta", ports[1], "", "b", &[redis[2].port, redis[3].port]),
        pool("gamma", ports[2], "", "g", &[redis[4].port])
    );
    install(&proxy, &after);
    reload_by_admin(&proxy).assert_pools(&proxy.config, &["gamma"], &[], &["beta"], &["alpha"]);
    wait_until("gamma's port to serve", LIMIT, || pings(ports[2]));
    let mut stats = String::new();
    wait_until("the stats to show the new pools", LIMIT, || {
        stats = proxy.stats();
        stats_pools(&stats) == ["alpha", "beta", "gamma"]
            && pool_servers(&stats, "beta") == ["b0", "b1"]
    });
    assert_eq!(pool_servers(&stats, "alpha"), ["s0", "s1"], "{stats}");
    assert_eq!(pool_servers(&stats, "gamma"), ["g0"], "{stats}");
    for (server, before) in ["s0", "s1"].iter().zip(&counted) {
        let now = server_counter(&stats, "alpha", server, "requests");
        assert!(
            now >= *before,
            "alpha's {server} counted {before} requests before the reload and {now} after: \
             {stats}"
        );
    }

    let more = 50;
    for key in &keys[..more] {
        assert_eq!(conn.call_str(&["GET", key]), bulk("v"));
    }
    assert_stat(
        || proxy.stats(),
        alpha_requests,
        (sent + more) as u64,
        "alpha's requests go on from the count before the reload",
    );
}

/// `POST /reload` answers 422 naming the file and line for a broken file and 200 with the
/// summary for a valid one (GET is 405); `rampart reload --admin` prints the same, exiting 1
/// on a refusal (on stderr) and 0 on a reload (on stdout).
#[test]
fn the_admin_endpoint_and_rampart_reload_report_the_outcome() {
    let (a, b) = (Redis::start(&[]), Redis::start(&[]));
    let (alpha_port, beta_port) = (free_port(), free_port());
    let alpha = pool("alpha", alpha_port, "", "s", &[a.port]);
    let proxy = Rampart::start(&alpha, &[alpha_port], &[]);
    let admin = format!("127.0.0.1:{}", proxy.admin_port);
    let mut old = Client::open(alpha_port);
    assert_eq!(old.call_str(&["SET", "admin:k", "1"]), ok());

    assert_eq!(get(proxy.admin_port, "/reload").0, 405, "GET /reload");

    let broken = pool("alpha", alpha_port, "  hash: nope\n", "s", &[a.port]);
    let line = line_of(&broken, "hash: nope");
    install(&proxy, &broken);
    let (code, body) = post_reload(&proxy);
    assert_eq!(code, 422, "POST /reload of a broken file: {body}");
    assert_names_file_and_line(&body, &proxy.config, line);
    let refused_run = rampart_reload(&["--admin", &admin]);
    assert_eq!(
        refused_run.status.code(),
        Some(1),
        "rampart reload on a broken file: {refused_run:?}"
    );
    assert_names_file_and_line(&text(&refused_run.stderr), &proxy.config, line);
    assert_eq!(old.call_str(&["GET", "admin:k"]), bulk("1"));

    install(
        &proxy,
        &format!("{alpha}{}", pool("beta", beta_port, "", "b", &[b.port])),
    );
    let reloaded_run = rampart_reload(&["--admin", &admin]);
    assert_eq!(
        reloaded_run.status.code(),
        Some(0),
        "rampart reload on a valid file: {reloaded_run:?}"
    );
    Summary::parse(&text(&reloaded_run.stdout)).assert_pools(
        &proxy.config,
        &["beta"],
        &[],
        &[],
        &["alpha"],
    );
    wait_until("beta's port to serve", LIMIT, || pings(beta_port));
    assert_eq!(
        Client::open(beta_port).call_str(&["SET", "admin:beta", "2"]),
        ok()
    );
    assert_eq!(b.get("admin:beta").as_deref(), Some("2"));

    reload_by_admin(&proxy).assert_pools(&proxy.config, &[], &[], &[], &["alpha", "beta"]);
    assert_eq!(old.call_str(&["PING"]), pong(), "alpha's client's socket");
    assert_eq!(old.call_str(&["GET", "admin:k"]), bulk("1"));
}

/// `rampart reload --pid-file` sends SIGUSR1 to the pid the file holds and says so; the proxy
/// reloads. Without the pid file it exits 1 naming the file.
#[test]
fn rampart_reload_signals_the_pid_in_the_pid_file() {
    let (a, b) = (Redis::start(&[]), Redis::start(&[]));
    let (alpha_port, beta_port) = (free_port(), free_port());
    let alpha = pool("alpha", alpha_port, "", "s", &[a.port]);
    let pid_dir = tempfile::tempdir().unwrap();
    let pid_file = pid_dir.path().join("rampart.pid");
    let pid_arg = pid_file.to_str().unwrap();
    let mut proxy = Rampart::start(&alpha, &[alpha_port], &["-p", pid_arg]);
    wait_until("the pid file", LIMIT, || {
        fs::read_to_string(&pid_file).is_ok_and(|pid| pid.trim() == proxy.pid().to_string())
    });
    wait_handlers(&mut proxy);
    let mut old = Client::open(alpha_port);
    assert_eq!(old.call_str(&["SET", "pidfile:k", "1"]), ok());

    install(
        &proxy,
        &format!("{alpha}{}", pool("beta", beta_port, "", "b", &[b.port])),
    );
    let run = rampart_reload(&["--pid-file", pid_arg]);
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    assert_eq!(
        text(&run.stdout).trim(),
        format!(
            "sent SIGUSR1 to rampart (pid {}); the outcome is in its log",
            proxy.pid()
        )
    );
    let mut lines = Vec::new();
    wait_until("the reload's outcome in the log", LIMIT, || {
        lines = outcome_lines(&proxy);
        !lines.is_empty()
    });
    assert_eq!(lines.len(), 1, "{lines:#?}");
    Outcome::of_line(&lines[0]).summary().assert_pools(
        &proxy.config,
        &["beta"],
        &[],
        &[],
        &["alpha"],
    );
    wait_until("beta's port to serve", LIMIT, || pings(beta_port));
    assert_eq!(old.call_str(&["GET", "pidfile:k"]), bulk("1"));

    let missing = pid_dir.path().join("absent.pid");
    let missing_arg = missing.to_str().unwrap();
    let run = rampart_reload(&["--pid-file", missing_arg]);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let stderr = text(&run.stderr);
    assert!(stderr.contains(missing_arg), "names the pid file: {stderr}");
    assert!(!proxy.has_exited(), "rampart is still running");
}

/// The connections redis-server `redis` has from clients, not counting the one asking.
fn connections_of(redis: &Redis) -> usize {
    match call(redis.port, &["CLIENT", "LIST"]) {
        Reply::Bulk(Some(list)) => String::from_utf8_lossy(&list).lines().count() - 1,
        other => panic!("CLIENT LIST: {other:?}"),
    }
}

/// A subscriber keeps its connection across six reloads (it holds a server link of its own,
/// so it stays on the configuration it subscribed under), while a client sends GETs between
/// them: the views of the pool that the reloads retired in between are dropped with their
/// connections, so the server sees no more connections after six reloads than after one.
#[test]
fn reloads_past_a_subscriber_leave_no_connection_behind() {
    let redis = Redis::start(&[]);
    let port = free_port();
    let file = |timeout: u32| {
        pool(
            "alpha",
            port,
            &format!("  timeout: {timeout}\n"),
            "s",
            &[redis.port],
        )
    };
    let proxy = Rampart::start(&file(1000), &[port], &[]);
    let mut subscriber = Client::open(port);
    assert_eq!(
        subscriber.call_str(&["SUBSCRIBE", "news"]),
        Reply::Array(Some(vec![
            bulk("subscribe"),
            bulk("news"),
            Reply::Integer(1)
        ]))
    );
    let mut connections = Vec::new();
    for round in 1..=6 {
        install(&proxy, &file(1000 + round * 100));
        reload_by_admin(&proxy);
        let mut client = Client::open(port);
        assert_eq!(client.call_str(&["SET", "leak:k", "v"]), ok());
        assert_eq!(client.call_str(&["GET", "leak:k"]), bulk("v"));
        drop(client);
        wait_until("the connections of the view before to close", LIMIT, || {
            connections.push(connections_of(&redis));
            round == 1 || connections.last() <= connections.first()
        });
    }
    assert!(
        connections.last() <= connections.first(),
        "server connections after each reload: {connections:?}"
    );
    assert_eq!(
        call(port, &["PUBLISH", "news", "still here"]),
        Reply::Integer(1)
    );
    assert_eq!(
        subscriber.read_reply().expect("the message"),
        Reply::Array(Some(vec![
            bulk("message"),
            bulk("news"),
            bulk("still here")
        ]))
    );
    drop(proxy);
}
