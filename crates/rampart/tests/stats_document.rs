//! The stats document: nutcracker's fields and layout byte for byte, requests and responses
//! counted per server (a split command once per fragment), and the same counters as nutcracker
//! for the same traffic, with rampart and nutcracker side by side over the same redis-servers.

mod support;

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::free_port;
use support::process::{Nutcracker, Rampart, Redis};
use support::resp::{Client, Reply, bulk, nil, ok, pong};
use support::route::place;
use support::stats::{Json, assert_stat, now_micros, pool_counter, servers_sum, stat_reaching};

/// Two pools, out of order, with server names of several lengths, out of order.
fn stats_yaml(listen: [u16; 2], redis: [u16; 3]) -> String {
    format!(
        "zeta:\n  listen: 127.0.0.1:{}\n  redis: true\n  servers:\n   - 127.0.0.1:{}:1 longname\n   - 127.0.0.1:{}:1 b\n   - 127.0.0.1:{}:1 aa\n\
         ab:\n  listen: 127.0.0.1:{}\n  redis: true\n  servers:\n   - 127.0.0.1:{}:1\n   - 127.0.0.1:{}:1\n",
        listen[0], redis[0], redis[1], redis[2], listen[1], redis[2], redis[0]
    )
}

fn assert_valid_json(stats: &str) {
    let Ok(mut python) = Command::new("python3")
        .args(["-c", "import json, sys; json.load(sys.stdin)"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        return;
    };
    python
        .stdin
        .take()
        .unwrap()
        .write_all(stats.as_bytes())
        .unwrap();
    let output = python.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "python3 json.load rejects the stats: {}\n{stats}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn stats_document_has_nutcracker_layout_and_counts_requests() {
    let redis: Vec<Redis> = (0..3).map(|_| Redis::start(&[])).collect();
    let listen = [free_port(), free_port()];
    let yaml = stats_yaml(listen, [redis[0].port, redis[1].port, redis[2].port]);
    let proxy = Rampart::start(&yaml, &listen, &[]);
    let mut conn = Client::open(listen[0]);
    assert_eq!(conn.call_str(&["PING"]), pong());

    // Published every 100 ms: wait for the first publication that shows this client.
    stat_reaching(
        || proxy.stats(),
        |stats| pool_counter(stats, "zeta", "client_connections"),
        1,
    );
    let stats = proxy.stats();
    assert!(stats.ends_with("}\n"), "ends with a newline: {stats:?}");
    assert_valid_json(&stats);
    let document = Json::parse(&stats);
    assert_eq!(
        document.keys(),
        [
            "service",
            "source",
            "version",
            "uptime",
            "timestamp",
            "total_connections",
            "curr_connections",
            "ab",
            "zeta"
        ]
    );
    assert_eq!(*document.get("service"), Json::Str("nutcracker".into()));
    assert_eq!(*document.get("version"), Json::Str("0.5.0".into()));
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(*document.get("source"), Json::Str(hostname.trim().into()));
    assert!(document.get("uptime").num() < 60);
    let now = now_micros() as u64 / 1_000_000;
    assert!(document.get("timestamp").num().abs_diff(now) <= 5);
    assert!(document.get("curr_connections").num() >= 1, "{stats}");
    assert!(document.get("total_connections").num() >= document.get("curr_connections").num());
    let pool_fields = [
        "client_eof",
        "client_err",
        "client_connections",
        "server_ejects",
        "forward_error",
        "fragments",
    ];
    let server_fields = [
        "server_eof",
        "server_err",
        "server_timedout",
        "server_connections",
        "server_ejected_at",
        "requests",
        "request_bytes",
        "responses",
        "response_bytes",
        "in_queue",
        "in_queue_bytes",
        "out_queue",
        "out_queue_bytes",
    ];
    let mut zeta_keys = pool_fields.to_vec();
    zeta_keys.extend(["b", "aa", "longname"]);
    assert_eq!(document.get("zeta").keys(), zeta_keys);
    let mut ab_keys = pool_fields.to_vec();
    let mut unnamed = [
        format!("127.0.0.1:{}", redis[0].port),
        format!("127.0.0.1:{}", redis[2].port),
    ];
    unnamed.sort_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
    ab_keys.extend(unnamed.iter().map(String::as_str));
    assert_eq!(document.get("ab").keys(), ab_keys);
    for pool in ["ab", "zeta"] {
        for (name, server) in document.get(pool).servers() {
            assert_eq!(server.keys(), server_fields, "fields of {pool}/{name}");
        }
    }

    // 10 SET + 10 GET: +20 requests and +20 responses over zeta's servers.
    let requests_before = servers_sum(&stats, "zeta", "requests");
    let responses_before = servers_sum(&stats, "zeta", "responses");
    for n in 0..10 {
        let key = format!("st:{n}");
        assert_eq!(conn.call_str(&["SET", &key, "v"]), ok());
    }
    for n in 0..10 {
        assert_eq!(conn.call_str(&["GET", &format!("st:{n}")]), bulk("v"));
    }
    assert_stat(
        || proxy.stats(),
        |stats| servers_sum(stats, "zeta", "requests"),
        requests_before + 20,
        "requests",
    );
    assert_stat(
        || proxy.stats(),
        |stats| servers_sum(stats, "zeta", "responses"),
        responses_before + 20,
        "responses",
    );
    // A 10-key MGET counts one request and one response per fragment (per server).
    let keys: Vec<String> = (0..10).map(|n| format!("st:{n}")).collect();
    let mut servers: Vec<String> = place(&proxy.config, Some("zeta"), &[], &keys)
        .into_iter()
        .map(|placed| placed.server)
        .collect();
    servers.sort();
    servers.dedup();
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    assert_eq!(
        conn.call_str(&mget),
        Reply::Array(Some(vec![bulk("v"); 10]))
    );
    let fragments = servers.len() as u64;
    assert_stat(
        || proxy.stats(),
        |stats| servers_sum(stats, "zeta", "requests"),
        requests_before + 20 + fragments,
        "requests after MGET",
    );
    assert_stat(
        || proxy.stats(),
        |stats| servers_sum(stats, "zeta", "responses"),
        responses_before + 20 + fragments,
        "responses after MGET",
    );

    let stats = proxy.stats();
    assert_eq!(pool_counter(&stats, "zeta", "client_connections"), 1);
    assert_eq!(servers_sum(&stats, "ab", "requests"), 0);
    assert!(servers_sum(&stats, "zeta", "request_bytes") > 0);
    assert!(servers_sum(&stats, "zeta", "response_bytes") > 0);
}

/// rampart (with `extra` flags) and nutcracker side by side, both serving `stats_yaml` over
/// the same three redis-servers.
struct SideBySide {
    rampart: Rampart,
    rampart_listen: [u16; 2],
    nutcracker: Nutcracker,
    nutcracker_listen: [u16; 2],
    _redis: Vec<Redis>,
}

impl SideBySide {
    fn start(extra: &[&str]) -> SideBySide {
        let redis: Vec<Redis> = (0..3).map(|_| Redis::start(&[])).collect();
        let redis_ports = [redis[0].port, redis[1].port, redis[2].port];
        let rampart_listen = [free_port(), free_port()];
        let nutcracker_listen = [free_port(), free_port()];
        let rampart = Rampart::start(
            &stats_yaml(rampart_listen, redis_ports),
            &rampart_listen,
            extra,
        );
        let nutcracker = Nutcracker::start(
            &stats_yaml(nutcracker_listen, redis_ports),
            &nutcracker_listen,
        );
        SideBySide {
            rampart,
            rampart_listen,
            nutcracker,
            nutcracker_listen,
            _redis: redis,
        }
    }
}

/// The document with every number value replaced by 0: its layout, byte for byte.
fn layout(stats: &str) -> String {
    let mut out = String::new();
    let mut rest = stats;
    while let Some(at) = rest.find("\":") {
        out.push_str(&rest[..at + 2]);
        rest = &rest[at + 2..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push('0');
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn stats_document_matches_nutcracker_byte_layout() {
    let SideBySide {
        rampart,
        nutcracker,
        ..
    } = &SideBySide::start(&[]);

    let ours = rampart.stats();
    let theirs = nutcracker.stats();
    let (ours_doc, theirs_doc) = (Json::parse(&ours), Json::parse(&theirs));
    assert_eq!(ours_doc.keys(), theirs_doc.keys(), "top-level keys");
    for pool in ["ab", "zeta"] {
        assert_eq!(
            ours_doc.get(pool).keys(),
            theirs_doc.get(pool).keys(),
            "keys of pool {pool}"
        );
        for ((name, ours_server), (_, theirs_server)) in ours_doc
            .get(pool)
            .servers()
            .iter()
            .zip(theirs_doc.get(pool).servers())
        {
            assert_eq!(
                ours_server.keys(),
                theirs_server.keys(),
                "keys of {pool}/{name}"
            );
        }
    }
    assert_eq!(
        ours_doc.get("source"),
        theirs_doc.get("source"),
        "same hostname"
    );
    assert_eq!(layout(&ours), layout(&theirs), "byte layout, numbers aside");
}

/// Every number in the document by its path, but uptime, timestamp and `fragments` (which
/// nutcracker never counts and rampart does, deliberately).
fn counters(document: &Json) -> Vec<(String, u64)> {
    fn walk(prefix: &str, value: &Json, out: &mut Vec<(String, u64)>) {
        for (key, value) in value.entries() {
            let path = format!("{prefix}/{key}");
            match value {
                Json::Num(number) => {
                    if !["uptime", "timestamp", "fragments"].contains(&key.as_str()) {
                        out.push((path, *number));
                    }
                }
                Json::Obj(_) => walk(&path, value, out),
                Json::Str(_) => {}
            }
        }
    }
    let mut out = Vec::new();
    walk("", document, &mut out);
    out
}

/// The same requests on both pools of a proxy: single-key and split commands, then QUIT.
fn stats_traffic(listen: [u16; 2]) {
    let mut conn = Client::open(listen[0]);
    for n in 0..10 {
        let key = format!("par:{n}");
        assert_eq!(conn.call_str(&["SET", &key, &format!("value {n}")]), ok());
    }
    for n in 0..10 {
        let key = format!("par:{n}");
        assert_eq!(conn.call_str(&["GET", &key]), bulk(format!("value {n}")));
    }
    let keys: Vec<String> = (0..10).map(|n| format!("par:{n}")).collect();
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    assert!(matches!(conn.call_str(&mget), Reply::Array(Some(items)) if items.len() == 10));
    assert_eq!(
        conn.call_str(&["DEL", "par:1", "par:2", "par:nope"]),
        Reply::Integer(2)
    );
    assert_eq!(conn.call_str(&["GET", "par:nope"]), nil());
    // QUIT: rampart says +OK, nutcracker just closes.
    conn.send(&[b"QUIT"]);
    if let Ok(reply) = conn.read_reply() {
        assert_eq!(reply, ok());
        assert!(conn.closed_by_peer());
    }
    let mut other = Client::open(listen[1]);
    assert_eq!(other.call_str(&["SET", "par:ab", "1"]), ok());
    assert_eq!(other.call_str(&["GET", "par:ab"]), bulk("1"));
}

#[test]
fn stats_counters_match_nutcracker_for_the_same_traffic() {
    let SideBySide {
        rampart,
        rampart_listen,
        nutcracker,
        nutcracker_listen,
        ..
    } = &SideBySide::start(&["--workers", "1"]);
    stats_traffic(*rampart_listen);
    stats_traffic(*nutcracker_listen);
    let mut last = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        last = (
            counters(&Json::parse(&rampart.stats())),
            counters(&Json::parse(&nutcracker.stats())),
        );
        if last.0 == last.1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let differences: Vec<String> = last
        .0
        .iter()
        .zip(&last.1)
        .filter(|(ours, theirs)| ours != theirs)
        .map(|(ours, theirs)| format!("{}: rampart {} nutcracker {}", ours.0, ours.1, theirs.1))
        .collect();
    assert!(
        differences.is_empty() && last.0.len() == last.1.len(),
        "counters differ (rampart --workers 1 vs nutcracker):\n{}",
        differences.join("\n")
    );
}
