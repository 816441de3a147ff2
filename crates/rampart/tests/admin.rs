//! The admin endpoint (`--admin`) and `rampart status`, against real redis-servers and, for a
//! failover, real sentinels: `/metrics` read by the Python `prometheus_client` package's
//! OpenMetrics parser (and its classic text parser) as traffic flows, `/status`, `/health`
//! (200, and 503 while stopping), 404s, `--admin off`, a taken admin port, and the table
//! `rampart status` prints, following a failover as it happens.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::admin::{get, status};
use support::process::{Rampart, listening_sockets};
use support::resp::{Client, bulk, call};
use support::sentinel::RECOVERY_LIMIT;
use support::sentinel_cluster::{Cluster, Options, SHARD_NAMES};
use support::shards;
use support::{free_port, rampart_bin, wait_until};

/// Parses OpenMetrics text from stdin with the strict OpenMetrics parser (which also checks
/// that histogram buckets are cumulative and end in +Inf = count), makes sure the classic
/// Prometheus text parser reads it too, and prints every sample as JSON.
const PARSE_METRICS: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import text_string_to_metric_families as classic
text = sys.stdin.read()
list(classic(text))
out = []
for family in text_string_to_metric_families(text):
    for sample in family.samples:
        out.append({"family": family.name, "type": family.type, "name": sample.name,
                    "labels": sample.labels, "value": sample.value})
print(json.dumps(out))
"#;

/// A sample of `/metrics`.
#[derive(Debug)]
struct Sample {
    family: String,
    kind: String,
    name: String,
    labels: HashMap<String, String>,
    value: f64,
}

/// `/metrics`, parsed by the Python client library.
fn metrics(port: u16) -> Vec<Sample> {
    let (code, text) = get(port, "/metrics");
    assert_eq!(code, 200, "{text}");
    let output = support::process::output_with_stdin(
        Command::new("python3").args(["-c", PARSE_METRICS]),
        text.as_bytes(),
    );
    assert!(
        output.status.success(),
        "prometheus_client rejected /metrics (python3 -m pip install prometheus-client?):\n{}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed: Vec<Value> = serde_json::from_slice(&output.stdout).expect("the parser's JSON");
    parsed
        .into_iter()
        .map(|sample| Sample {
            family: sample["family"].as_str().unwrap().to_string(),
            kind: sample["type"].as_str().unwrap().to_string(),
            name: sample["name"].as_str().unwrap().to_string(),
            labels: serde_json::from_value(sample["labels"].clone()).unwrap(),
            value: sample["value"].as_f64().unwrap(),
        })
        .collect()
}

/// The sum of the samples called `name` whose labels include `labels`.
fn total(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|sample| sample.name == name)
        .filter(|sample| {
            labels
                .iter()
                .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(*value))
        })
        .map(|sample| sample.value)
        .sum()
}

fn family_type<'s>(samples: &'s [Sample], family: &str) -> &'s str {
    samples
        .iter()
        .find(|sample| sample.family == family)
        .map_or("missing", |sample| sample.kind.as_str())
}

/// `rampart status` against `--admin 127.0.0.1:<port>`.
fn rampart_status(port: u16, extra: &[&str]) -> Output {
    Command::new(rampart_bin())
        .args(["status", "--admin", &format!("127.0.0.1:{port}")])
        .args(extra)
        .output()
        .expect("run rampart status")
}

/// The TCP ports process `pid` listens on.
fn listening_ports(pid: u32) -> BTreeSet<u16> {
    listening_sockets(pid)
        .into_iter()
        .map(|(port, _)| port)
        .collect()
}

#[test]
fn metrics_count_the_requests_and_their_latency() {
    let cluster = shards::Cluster::start(2, "", &[]);
    let admin = cluster.proxy.admin_port;
    let before = metrics(admin);
    for (family, kind) in [
        ("rampart_requests", "counter"),
        ("rampart_responses", "counter"),
        ("rampart_request_bytes", "counter"),
        ("rampart_response_bytes", "counter"),
        ("rampart_client_connections", "gauge"),
        ("rampart_server_connections", "gauge"),
        ("rampart_in_queue", "gauge"),
        ("rampart_out_queue", "gauge"),
        ("rampart_client_eof", "counter"),
        ("rampart_server_ejects", "counter"),
        ("rampart_forward_error", "counter"),
        ("rampart_fragments", "counter"),
        ("rampart_parked_clients", "gauge"),
        ("rampart_request_duration_seconds", "histogram"),
        ("rampart_uptime_seconds", "gauge"),
        ("rampart_build", "info"),
    ] {
        assert_eq!(family_type(&before, family), kind, "{family}");
    }
    assert_eq!(
        total(
            &before,
            "rampart_server_live",
            &[("pool", "alpha"), ("server", "s1")]
        ),
        1.0
    );

    let sent = 200;
    let mut client = cluster.conn();
    for index in 0..sent {
        let key = format!("key-{}", index / 2);
        if index % 2 == 0 {
            assert!(client.call_str(&["SET", &key, "value"]).is_ok());
        } else {
            assert_eq!(client.call_str(&["GET", &key]), bulk("value"));
        }
    }
    let grown = |samples: &[Sample], name: &str| {
        total(samples, name, &[("pool", "alpha")]) - total(&before, name, &[("pool", "alpha")])
    };
    let mut after = Vec::new();
    wait_until(
        "the workers to publish the requests",
        Duration::from_secs(5),
        || {
            after = metrics(admin);
            grown(&after, "rampart_responses_total") >= f64::from(sent)
        },
    );
    assert_eq!(grown(&after, "rampart_requests_total"), f64::from(sent));
    assert_eq!(grown(&after, "rampart_responses_total"), f64::from(sent));
    assert!(grown(&after, "rampart_request_bytes_total") > f64::from(sent * 20));
    assert!(grown(&after, "rampart_response_bytes_total") >= f64::from(sent * 4));
    assert_eq!(
        grown(&after, "rampart_request_duration_seconds_count"),
        f64::from(sent)
    );
    let sum = grown(&after, "rampart_request_duration_seconds_sum");
    assert!(
        sum > 0.0 && sum < f64::from(sent),
        "{sum} s for {sent} requests"
    );
    for server in ["s0", "s1"] {
        assert!(
            total(
                &after,
                "rampart_requests_total",
                &[("pool", "alpha"), ("server", server)]
            ) > 0.0,
            "server {server} took some of the keys"
        );
    }

    let mut buckets: Vec<(f64, f64)> = after
        .iter()
        .filter(|sample| sample.name == "rampart_request_duration_seconds_bucket")
        .map(|sample| {
            let le = sample.labels["le"].as_str();
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            (bound, sample.value)
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(buckets.len(), 22, "{buckets:?}");
    assert!(
        buckets.windows(2).all(|pair| pair[0].1 <= pair[1].1),
        "cumulative: {buckets:?}"
    );
    assert_eq!(
        buckets.last().map(|bucket| bucket.1),
        Some(total(&after, "rampart_request_duration_seconds_count", &[]))
    );
    assert!(
        buckets
            .first()
            .is_some_and(|bucket| bucket.1 < f64::from(sent)),
        "not every request took under 16 µs: {buckets:?}"
    );
}

#[test]
fn status_health_and_unknown_paths() {
    let cluster = shards::Cluster::start(2, "", &[]);
    let admin = cluster.proxy.admin_port;
    wait_until("/health to say ok", Duration::from_secs(5), || {
        get(admin, "/health") == (200, "ok\n".to_string())
    });
    assert!(call(cluster.port, &["SET", "k", "v"]).is_ok());

    let document = status(admin);
    assert_eq!(document["version"], env!("CARGO_PKG_VERSION"));
    assert!(document["uptime_seconds"].is_u64());
    assert_eq!(document["vrrp"], serde_json::json!([]));
    let pool = &document["pools"][0];
    assert_eq!(pool["name"], "alpha");
    assert_eq!(pool["listen"], format!("127.0.0.1:{}", cluster.port));
    assert_eq!(pool["sentinels"], false);
    let shards = pool["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    for (index, (shard, redis)) in shards.iter().zip(&cluster.redis).enumerate() {
        let address = format!("127.0.0.1:{}", redis.port);
        assert_eq!(shard["name"], format!("s{index}"));
        assert_eq!(shard["configured"], address);
        assert_eq!(shard["master"], address);
        assert_eq!(shard["replicas"], serde_json::json!([]));
        assert_eq!(shard["live"], true);
        assert_eq!(shard["master_down"], false);
    }

    for path in ["/", "/metrics/", "/stats", "/health/x"] {
        assert_eq!(get(admin, path).0, 404, "{path}");
    }
    let mut stream = TcpStream::connect(("127.0.0.1", admin)).unwrap();
    write!(stream, "POST /health HTTP/1.0\r\nContent-Length: 0\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.0 405"), "{answer}");

    // The nutcracker stats document is still served on -s, unchanged in layout.
    assert!(
        cluster
            .proxy
            .stats()
            .starts_with("{\"service\":\"nutcracker\"")
    );
}

#[test]
fn health_is_503_while_stopping() {
    let cluster = shards::Cluster::start(1, "", &[]);
    let mut proxy = cluster.proxy;
    let admin = proxy.admin_port;
    wait_until("/health to say ok", Duration::from_secs(5), || {
        get(admin, "/health").0 == 200
    });
    // A request held by its server keeps the stopping proxy draining for a while.
    call(cluster.redis[0].port, &["CLIENT", "PAUSE", "3000", "ALL"]);
    let mut client = Client::open(cluster.port);
    client.send(&[b"GET", b"held"]);
    std::thread::sleep(Duration::from_millis(100));
    proxy.process().signal(libc::SIGTERM);
    wait_until("/health to say stopping", Duration::from_secs(2), || {
        get(admin, "/health") == (503, "stopping\n".to_string())
    });
    assert!(client.read_reply().is_ok(), "the held request is answered");
    proxy.process().wait_exit(Duration::from_secs(10));
}

#[test]
fn admin_off_binds_nothing_and_the_default_binds_one_port() {
    let redis = support::process::Redis::start(&[]);
    let port = free_port();
    let yaml = shards::alpha_yaml(port, "", &[redis.port]);

    let off = Rampart::start(&yaml, &[port], &["--admin", "off", "--workers", "1"]);
    assert_eq!(
        listening_ports(off.pid()),
        BTreeSet::from([port, off.stats_port])
    );
    drop(off);

    let on = Rampart::start(&yaml, &[port], &["--workers", "1"]);
    assert_eq!(
        listening_ports(on.pid()),
        BTreeSet::from([port, on.stats_port, on.admin_port])
    );
}

#[test]
fn a_taken_admin_port_stops_start_up() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let port = free_port();
    let yaml = shards::alpha_yaml(port, "", &[free_port()]);
    let mut proxy = Rampart::spawn(&yaml, &["--admin", &address]);
    let status = proxy.process().wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1));
    let stderr = fs::read_to_string(proxy.dir.path().join("rampart.out")).unwrap();
    assert!(
        stderr.contains(&format!(
            "cannot bind admin endpoint to {address}: Address already in use"
        )),
        "{stderr}"
    );
}

#[test]
fn rampart_status_prints_a_row_per_shard() {
    let cluster = shards::Cluster::start(2, "", &[]);
    let admin = cluster.proxy.admin_port;
    let output = rampart_status(admin, &["--interval", "100"]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with(&format!(
        "rampart {} at 127.0.0.1:{admin}, up ",
        env!("CARGO_PKG_VERSION")
    )));
    let header: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "POOL", "SHARD", "MASTER", "REPLICAS", "STATE", "REQ/S", "ERRORS"
        ]
    );
    for (index, redis) in cluster.redis.iter().enumerate() {
        let row: Vec<&str> = lines[2 + index].split_whitespace().collect();
        let master = format!("127.0.0.1:{}", redis.port);
        let shard = format!("s{index}");
        assert_eq!(
            row,
            [
                "alpha",
                shard.as_str(),
                master.as_str(),
                "-",
                "up",
                "0",
                "0"
            ]
        );
    }
    assert_eq!(lines.len(), 4, "{table}");

    // --watch redraws: plain blocks when stdout is not a terminal.
    let mut watch = Command::new(rampart_bin())
        .args(["status", "--watch", "--interval", "50"])
        .args(["--admin", &format!("127.0.0.1:{admin}")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = watch.stdout.take().unwrap();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut chunk = [0u8; 4096];
    while seen.matches("POOL").count() < 3 && Instant::now() < deadline {
        let read = stdout.read(&mut chunk).unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk[..read]));
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(seen.matches("POOL").count() >= 3, "{seen}");
    assert!(
        !seen.contains('\x1b'),
        "no ANSI codes into a pipe: {seen:?}"
    );
}

#[test]
fn rampart_status_without_a_proxy_says_so() {
    let port = free_port();
    let output = rampart_status(port, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "is rampart running with --admin 127.0.0.1:{port}?"
        )),
        "{stderr}"
    );
}

#[test]
fn rampart_status_follows_a_failover() {
    let mut cluster = Cluster::start(Options::default());
    let admin = cluster.rampart.admin_port;
    let old = format!("127.0.0.1:{}", cluster.shards[0].master.port);
    let promoted = format!(
        "127.0.0.1:{}",
        cluster.shards[0].replica.as_ref().unwrap().port
    );
    let row_of = |table: &str| {
        table
            .lines()
            .find(|line| line.split_whitespace().nth(1) == Some(SHARD_NAMES[0]))
            .map(str::to_string)
            .unwrap_or_default()
    };
    let table =
        String::from_utf8_lossy(&rampart_status(admin, &["--interval", "50"]).stdout).into_owned();
    assert!(row_of(&table).contains(&old), "{table}");

    let killed_at = cluster.kill_master(0);
    let mut last = String::new();
    let limit = RECOVERY_LIMIT + Duration::from_secs(5);
    while Instant::now() < killed_at + limit {
        let output = rampart_status(admin, &["--interval", "50"]);
        assert!(output.status.success());
        last = String::from_utf8_lossy(&output.stdout).into_owned();
        if row_of(&last)
            .split_whitespace()
            .nth(2)
            .is_some_and(|master| master == promoted)
        {
            break;
        }
    }
    let row = row_of(&last);
    assert_eq!(
        row.split_whitespace().nth(2),
        Some(promoted.as_str()),
        "no new master within {limit:?}:\n{last}\nrampart log:\n{}",
        cluster.log_tail()
    );
    println!(
        "rampart status showed the promoted master {:?} after the kill",
        killed_at.elapsed()
    );
    let samples = metrics(admin);
    assert!(
        total(
            &samples,
            "rampart_failovers_total",
            &[("pool", "alpha"), ("server", SHARD_NAMES[0])]
        ) >= 1.0
    );
}
