//! The per-client limits, against real redis-servers: a client that pipelines large GETs and
//! never reads costs only itself (the other clients of its shard keep their latency, the
//! proxy's memory stays near the output limit and redis-server's does not grow), the soft
//! output limit, pausing at the pipeline and pending-bytes limits without losing a reply,
//! `client_connections`, the request size and argument limits, the idle timeout, and HTTP
//! requests refused as redis-server refuses them. Each limit is counted in `/status`.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::admin::{get, limit_count};
use support::process::{Rampart, Redis, pool_yaml, vm_rss_kb};
use support::resp::{Client, Reply, bulk, cmd, encode_all, ok, pong};
use support::stats::pool_counter;
use support::{free_port, wait_until};

const MB: u64 = 1024 * 1024;
/// How long a test waits for something the proxy does within a second or two.
const LIMIT: Duration = Duration::from_secs(15);

struct Proxy {
    redis: Redis,
    proxy: Rampart,
    port: u16,
}

/// rampart with one pool over one redis-server, with `directives` added to the pool.
fn start(directives: &str) -> Proxy {
    start_with(directives, &[])
}

/// The same, with rampart's command-line `flags`.
fn start_with(directives: &str, flags: &[&str]) -> Proxy {
    let redis = Redis::start(&[]);
    let port = free_port();
    let servers = [format!("127.0.0.1:{}:1 only", redis.port)];
    let proxy = Rampart::start(
        &pool_yaml("alpha", port, directives, &servers),
        &[port],
        flags,
    );
    Proxy { redis, proxy, port }
}

impl Proxy {
    fn client(&self) -> Client {
        Client::open(self.port)
    }

    fn limit(&self, name: &str) -> u64 {
        limit_count(self.proxy.admin_port, "alpha", name)
    }

    /// Waits for the stats to show limit `name` enforced `times` times (they are published
    /// every 100 ms), then checks it was not enforced more often.
    fn assert_limit(&self, name: &str, times: u64) {
        wait_until(
            &format!("limit {name} counted {times} times"),
            LIMIT,
            || self.limit(name) >= times,
        );
        assert_eq!(self.limit(name), times, "limit {name}");
    }

    fn redis_used_memory(&self) -> u64 {
        used_memory(&mut self.redis.client())
    }
}

/// A redis-server's `used_memory`, which counts its clients' output buffers.
fn used_memory(redis: &mut Client) -> u64 {
    let info = redis.call(&[b"INFO", b"memory"]);
    let Reply::Bulk(Some(text)) = info else {
        panic!("INFO memory gave {info:?}");
    };
    String::from_utf8_lossy(&text)
        .lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
        .expect("used_memory in INFO memory")
}

/// A raw connection that writes `requests` from a thread and never reads a reply.
fn never_reading_client(port: u16, requests: Vec<u8>) -> (TcpStream, thread::JoinHandle<()>) {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect the slow client");
    let mut writer = stream.try_clone().expect("clone the slow client");
    writer
        .set_write_timeout(Some(Duration::from_secs(30)))
        .expect("a write timeout");
    let sender = thread::spawn(move || {
        let _ = writer.write_all(&requests);
    });
    (stream, sender)
}

/// True once the peer closed `stream` (EOF or reset), reading and dropping what it sent.
fn closed_by_peer(stream: &mut TcpStream, limit: Duration) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("a read timeout");
    let deadline = Instant::now() + limit;
    let mut sink = vec![0u8; 1 << 20];
    while Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => {}
        }
    }
    false
}

#[test]
fn a_client_that_never_reads_costs_only_itself() {
    let proxy = start_with(
        "  timeout: 2000\n  client_max_pending_bytes: 4mb\n  client_output_limit: 64mb\n  \
         client_output_soft_limit: 2mb\n  client_output_soft_seconds: 1\n",
        &["--workers", "1"],
    );
    let mut setup = proxy.client();
    let large = vec![b'v'; 256 * 1024];
    assert_eq!(setup.call(&[b"SET", b"large", &large]), ok());
    assert_eq!(setup.call_str(&["SET", "small", "s"]), ok());

    let mut neighbour = proxy.client();
    let mut baseline = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        assert_eq!(neighbour.call_str(&["GET", "small"]), bulk("s"));
        baseline.push(started.elapsed());
    }
    let rss_before = vm_rss_kb(proxy.proxy.pid()) * 1024;
    let redis_before = proxy.redis_used_memory();

    let gets = encode_all(&vec![cmd(&["GET", "large"]); 20_000]);
    let (mut slow, sender) = never_reading_client(proxy.port, gets);
    let attacked = Arc::new(AtomicBool::new(true));
    let sampler = {
        let attacked = Arc::clone(&attacked);
        let (proxy_pid, redis_port) = (proxy.proxy.pid(), proxy.redis.port);
        thread::spawn(move || {
            let mut redis = Client::open(redis_port);
            let (mut rss_peak, mut redis_peak) = (0u64, 0u64);
            while attacked.load(Ordering::Relaxed) {
                rss_peak = rss_peak.max(vm_rss_kb(proxy_pid) * 1024);
                redis_peak = redis_peak.max(used_memory(&mut redis));
                thread::sleep(Duration::from_millis(10));
            }
            (rss_peak, redis_peak)
        })
    };

    let mut during = Vec::new();
    let attack_started = Instant::now();
    while attack_started.elapsed() < Duration::from_secs(2) || during.len() < 200 {
        let started = Instant::now();
        assert_eq!(
            neighbour.call_str(&["GET", "small"]),
            bulk("s"),
            "the neighbour's request {} during the attack",
            during.len()
        );
        during.push(started.elapsed());
    }
    proxy.assert_limit("output_limit_disconnects", 1);
    assert!(
        closed_by_peer(&mut slow, LIMIT),
        "the client that never reads is disconnected"
    );
    attacked.store(false, Ordering::Relaxed);
    let (rss_peak, redis_peak) = sampler.join().expect("the sampler");
    sender.join().expect("the slow client's writer");
    assert_eq!(
        pool_counter(&proxy.proxy.stats(), "alpha", "client_err"),
        1,
        "the disconnect counts as a client error"
    );

    baseline.sort();
    during.sort();
    let p99 = |sorted: &[Duration]| sorted[sorted.len() * 99 / 100];
    println!(
        "neighbour p99 {:?} before, {:?} during ({} requests); proxy RSS +{} MB at peak; \
         redis used_memory +{} KB at peak",
        p99(&baseline),
        p99(&during),
        during.len(),
        rss_peak.saturating_sub(rss_before) / MB,
        redis_peak.saturating_sub(redis_before) / 1024
    );
    assert!(
        p99(&during) < Duration::from_millis(250).max(p99(&baseline) * 20),
        "the neighbour's p99 went from {:?} to {:?}",
        p99(&baseline),
        p99(&during)
    );
    assert!(
        rss_peak.saturating_sub(rss_before) < 64 * MB + 64 * MB,
        "the proxy grew by {} MB with a 64 MB output limit",
        rss_peak.saturating_sub(rss_before) / MB
    );
    assert!(
        redis_peak.saturating_sub(redis_before) < 8 * MB,
        "redis-server grew by {} KB: the proxy stopped draining it",
        redis_peak.saturating_sub(redis_before) / 1024
    );
    assert_eq!(neighbour.call_str(&["GET", "small"]), bulk("s"));
}

#[test]
fn unread_replies_held_over_the_soft_limit_disconnect_after_its_time() {
    let proxy = start(
        "  client_output_limit: 0\n  client_output_soft_limit: 1mb\n  \
         client_output_soft_seconds: 2\n",
    );
    let mut setup = proxy.client();
    assert_eq!(
        setup.call(&[b"SET", b"half", &vec![b'h'; 512 * 1024]]),
        ok()
    );

    let gets = encode_all(&vec![cmd(&["GET", "half"]); 200]);
    let started = Instant::now();
    let (mut slow, sender) = never_reading_client(proxy.port, gets);
    let (mut within, within_sender) =
        never_reading_client(proxy.port, encode_all(&[cmd(&["GET", "half"])]));
    proxy.assert_limit("output_limit_disconnects", 1);
    let held = started.elapsed();
    assert!(
        held >= Duration::from_millis(1800),
        "disconnected after {held:?}, before the soft limit's 2 s"
    );
    assert!(closed_by_peer(&mut slow, LIMIT), "disconnected");
    sender.join().expect("the slow client's writer");
    within_sender.join().expect("the other client's writer");
    assert!(
        !closed_by_peer(&mut within, Duration::from_millis(500)),
        "a client under the soft limit stays connected"
    );
}

#[test]
fn pipelines_pause_at_the_limits_and_every_reply_arrives_in_order() {
    let proxy = start("  client_max_pipeline: 4\n  client_max_pending_bytes: 2kb\n");
    let mut client = proxy.client();
    let value = |n: usize| format!("{n:0>600}");
    let mut commands = Vec::new();
    for n in 0..500 {
        commands.push(cmd(&["SET", &format!("p:{n}"), &value(n)]));
        commands.push(cmd(&["GET", &format!("p:{n}")]));
    }
    let sender = client.send_in_background(&commands);
    for n in 0..500 {
        assert_eq!(client.read_reply().expect("a SET reply"), ok(), "SET {n}");
        assert_eq!(
            client.read_reply().expect("a GET reply"),
            bulk(value(n)),
            "GET {n}"
        );
    }
    sender
        .join()
        .expect("the writer")
        .expect("every request sent");
    wait_until("reading paused at a limit", LIMIT, || {
        proxy.limit("reads_paused") > 0
    });
    assert_eq!(client.call_str(&["PING"]), pong());
}

#[test]
fn clients_past_client_connections_are_told_and_refused() {
    let proxy = start("  client_connections: 3\n");
    // The start-up check's connection may still be closing: retry until three fit.
    let mut admitted: Vec<Client> = Vec::new();
    wait_until("three clients admitted", LIMIT, || {
        admitted = (0..3).map(|_| proxy.client()).collect();
        admitted.iter_mut().all(|client| {
            client
                .try_call(&[b"PING"])
                .is_ok_and(|reply| reply == pong())
        })
    });
    let mut refused = proxy.client();
    assert_eq!(
        refused.read_reply().expect("the refusal"),
        Reply::Error("ERR max number of clients reached".into())
    );
    assert!(refused.closed_by_peer());
    wait_until("the refusal counted", LIMIT, || {
        proxy.limit("clients_refused") >= 1
    });

    admitted.pop();
    wait_until("a place freed by a client that left", LIMIT, || {
        proxy
            .client()
            .try_call(&[b"PING"])
            .is_ok_and(|reply| reply == pong())
    });
    for client in &mut admitted {
        assert_eq!(client.call_str(&["PING"]), pong());
    }
}

#[test]
fn requests_over_the_size_and_argument_limits_are_refused_and_closed() {
    let proxy = start("  client_max_request_bytes: 1kb\n  client_max_request_args: 8\n");
    let mut client = proxy.client();
    assert_eq!(client.call(&[b"SET", b"fits", &[b'f'; 1024]]), ok());

    let mut large = proxy.client();
    assert_eq!(
        large.call(&[b"SET", b"k", &[b'x'; 1025]]),
        Reply::Error(
            "ERR Protocol error: an argument of 1025 bytes is over the limit of 1024 bytes".into()
        )
    );
    assert!(large.closed_by_peer());

    let mut many = proxy.client();
    let mset = cmd(&["MSET", "a", "1", "b", "2", "c", "3", "d", "4"]);
    let args: Vec<&[u8]> = mset.iter().map(Vec::as_slice).collect();
    assert_eq!(
        many.call(&args),
        Reply::Error("ERR Protocol error: a request of 9 arguments is over the limit of 8".into())
    );
    assert!(many.closed_by_peer());
    proxy.assert_limit("requests_too_large", 2);
    assert_eq!(client.call_str(&["GET", "fits"]), bulk(vec![b'f'; 1024]));
}

#[test]
fn a_request_larger_than_the_limit_in_total_is_refused() {
    let proxy = start("  client_max_request_bytes: 1kb\n");
    let mut client = proxy.client();
    let value = vec![b'x'; 1000];
    let mut args: Vec<&[u8]> = vec![b"MSET"];
    let keys: Vec<String> = (0..100).map(|n| format!("t:{n}")).collect();
    for key in &keys {
        args.push(key.as_bytes());
        args.push(&value);
    }
    let reply = client.call(&args);
    assert_eq!(
        reply,
        Reply::Error(
            "ERR Protocol error: a request of more than 66560 bytes is over the limit \
             (client_max_request_bytes)"
                .into()
        )
    );
    assert!(client.closed_by_peer());
    proxy.assert_limit("requests_too_large", 1);
}

#[test]
fn idle_clients_are_closed_after_client_idle_timeout() {
    let proxy = start("  client_idle_timeout: 2\n");
    let mut idle = proxy.client();
    assert_eq!(idle.call_str(&["PING"]), pong());
    let mut busy = proxy.client();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        assert_eq!(busy.call_str(&["PING"]), pong(), "a busy client stays");
        thread::sleep(Duration::from_millis(250));
    }
    assert!(idle.closed_by_peer(), "the idle client was closed");
    proxy.assert_limit("idle_timeouts", 1);
    assert_eq!(busy.call_str(&["PING"]), pong());

    let silent = TcpStream::connect(("127.0.0.1", proxy.port)).expect("a silent client");
    let mut silent = silent;
    assert!(
        closed_by_peer(&mut silent, LIMIT),
        "a client that never sent anything is closed too"
    );
}

#[test]
fn http_requests_are_closed_without_running_their_body_as_redis_does() {
    let proxy = start("");
    let attacks: [&[u8]; 3] = [
        b"POST / HTTP/1.1\r\nHost: cache\r\nContent-Length: 20\r\n\r\nSET xproto pwned\r\n",
        b"Host: cache\r\n\r\nSET xproto pwned\r\n",
        b"*1\r\n$4\r\npost\r\nSET xproto pwned\r\n",
    ];
    for (index, attack) in attacks.iter().enumerate() {
        for port in [proxy.port, proxy.redis.port] {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            stream.write_all(attack).expect("send the HTTP request");
            let mut answer = Vec::new();
            stream
                .set_read_timeout(Some(LIMIT))
                .expect("a read timeout");
            let _ = stream.read_to_end(&mut answer);
            assert!(
                answer.is_empty(),
                "attack {index} on port {port} got {:?}",
                String::from_utf8_lossy(&answer)
            );
        }
    }
    assert_eq!(proxy.redis.get("xproto"), None, "the body never ran");
    proxy.assert_limit("cross_protocol", 3);
    let (_, metrics) = get(proxy.proxy.admin_port, "/metrics");
    assert!(
        metrics.contains("rampart_client_limit_total{pool=\"alpha\",limit=\"cross_protocol\"} 3"),
        "{metrics}"
    );
    assert_eq!(proxy.client().call_str(&["PING"]), pong());
}

#[test]
fn replies_the_proxy_makes_itself_count_toward_the_bound_too() {
    let proxy = start("  client_max_pending_bytes: 1mb\n");
    let rss_before = vm_rss_kb(proxy.proxy.pid()) * 1024;
    let commands = encode_all(&vec![cmd(&["COMMAND"]); 2000]);
    let clients: Vec<_> = (0..10)
        .map(|_| never_reading_client(proxy.port, commands.clone()))
        .collect();
    wait_until("every client paused", LIMIT, || {
        proxy.limit("reads_paused") >= 10
    });
    let grown = (vm_rss_kb(proxy.proxy.pid()) * 1024).saturating_sub(rss_before);
    println!(
        "10 clients sending COMMAND and never reading: proxy RSS +{} MB",
        grown / MB
    );
    assert!(
        grown < 10 * 2 * MB + 32 * MB,
        "ten paused clients grew the proxy by {} MB with a 1 MB bound each",
        grown / MB
    );
    for (stream, sender) in clients {
        drop(stream);
        drop(sender);
    }
    assert_eq!(proxy.client().call_str(&["PING"]), pong());
}
