//! Idle clients: a client that has sent nothing yet, or nothing for a sweep period, is parked
//! (held as a bare socket, with no session), and served again as soon as it speaks, with its
//! connection state (RESP version, name, authentication) intact. Parked clients count as
//! connected, close cleanly, are closed on shutdown, and cost little memory.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use support::process::{Rampart, Redis, pool_yaml};
use support::resp::{Client, Reply, bulk, ok, pong};
use support::stats::pool_counter;
use support::{free_port, wait_until};

/// How long a test waits for clients to be parked: the sweep runs every second and parks a
/// client idle for a whole period, so two seconds suffice; the rest is slack for a busy CI.
const PARKING_LIMIT: Duration = Duration::from_secs(15);

/// A fixed worker count, so the memory figures do not depend on the machine's CPU count
/// (each worker parks, sweeps and trims on its own).
const WORKERS: &[&str] = &["--workers", "2"];

struct Proxy {
    _redis: Vec<Redis>,
    proxy: Rampart,
    port: u16,
    /// The pool's `redis_auth`, which the INFO connections send first.
    password: Option<&'static str>,
}

fn start(password: Option<&'static str>) -> Proxy {
    let directives = password.map_or(String::new(), |password| {
        format!("  redis_auth: {password}\n")
    });
    let redis: Vec<Redis> = (0..2).map(|_| Redis::start(&[])).collect();
    let servers: Vec<String> = redis
        .iter()
        .enumerate()
        .map(|(index, redis)| format!("127.0.0.1:{}:1 s{index}", redis.port))
        .collect();
    let port = free_port();
    let proxy = Rampart::start(
        &pool_yaml("alpha", port, &directives, &servers),
        &[port],
        WORKERS,
    );
    Proxy {
        _redis: redis,
        proxy,
        port,
        password,
    }
}

impl Proxy {
    /// `(connected_clients, parked_clients)` from INFO, asked on a connection of its own.
    /// The figures are the workers' last published ones (every 100 ms), so the asking
    /// connection is usually not in them yet, and one that just closed may still be.
    fn clients(&self) -> (u64, u64) {
        let mut asking = Client::open(self.port);
        if let Some(password) = self.password {
            assert_eq!(asking.call_str(&["AUTH", password]), ok());
        }
        let Reply::Bulk(Some(text)) = asking.call_str(&["INFO", "clients"]) else {
            panic!("INFO clients gave no bulk string");
        };
        let text = String::from_utf8(text).expect("INFO is text");
        let field = |name: &str| -> u64 {
            text.lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or_else(|| panic!("INFO clients has no {name} in {text:?}"))
        };
        (field("connected_clients:"), field("parked_clients:"))
    }

    /// Waits until INFO reports `connected` clients, `parked` of them parked.
    fn wait_for_clients(&self, connected: u64, parked: u64) {
        wait_until(
            &format!("{connected} connected and {parked} parked clients"),
            PARKING_LIMIT,
            || self.clients() == (connected, parked),
        );
    }

    fn pool_counter(&self, name: &str) -> u64 {
        pool_counter(&self.proxy.stats(), "alpha", name)
    }
}

fn silent_clients(port: u16, count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect a silent client"))
        .collect()
}

fn ping(stream: &mut TcpStream) {
    stream.write_all(b"PING\r\n").expect("send PING");
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).expect("read +PONG");
    assert_eq!(&reply, b"+PONG\r\n");
}

/// `SET key v` on a raw stream, asserting the `+OK`.
fn set(stream: &mut (impl Read + Write), key: &str) {
    let request = format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1\r\nv\r\n", key.len());
    stream.write_all(request.as_bytes()).expect("send SET");
    let mut reply = [0u8; 5];
    stream.read_exact(&mut reply).expect("read +OK");
    assert_eq!(&reply, b"+OK\r\n", "SET {key}");
}

#[test]
fn silent_clients_are_parked_and_served_as_soon_as_they_speak() {
    let proxy = start(None);
    let mut clients = silent_clients(proxy.port, 200);
    proxy.wait_for_clients(200, 200);
    for (index, stream) in clients.iter_mut().enumerate() {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        set(stream, &format!("silent:{index}"));
    }
    proxy.wait_for_clients(200, 0);
    proxy.wait_for_clients(200, 200);
    for stream in &mut clients {
        ping(stream);
    }
}

#[test]
fn a_parked_client_keeps_its_protocol_and_name() {
    let proxy = start(None);
    let mut client = Client::open(proxy.port);
    let Reply::Map(hello) = client.call_str(&["HELLO", "3", "SETNAME", "billing-worker"]) else {
        panic!("HELLO 3 answers a map");
    };
    assert!(hello.contains(&(bulk("proto"), Reply::Integer(3))));
    assert_eq!(client.call_str(&["HSET", "h", "f", "v"]), Reply::Integer(1));
    proxy.wait_for_clients(1, 1);

    assert_eq!(
        client.call_str(&["HGETALL", "h"]),
        Reply::Map(vec![(bulk("f"), bulk("v"))]),
        "a RESP3 map after parking"
    );
    assert_eq!(
        client.call_str(&["CLIENT", "GETNAME"]),
        bulk("billing-worker")
    );
    assert_eq!(client.call_str(&["PING"]), pong());
}

#[test]
fn a_parked_client_stays_authenticated() {
    let proxy = start(Some("s3cret"));
    let mut client = Client::open(proxy.port);
    assert!(matches!(client.call_str(&["PING"]), Reply::Error(text) if text.starts_with("NOAUTH")));
    assert_eq!(client.call_str(&["AUTH", "s3cret"]), ok());
    let mut stranger = Client::open(proxy.port);
    proxy.wait_for_clients(2, 2);
    assert_eq!(client.call_str(&["PING"]), pong(), "still authenticated");
    assert!(
        matches!(stranger.call_str(&["PING"]), Reply::Error(text) if text.starts_with("NOAUTH")),
        "a client that never authenticated still is not"
    );
}

#[test]
fn parked_clients_that_leave_are_counted_and_the_rest_closed_at_shutdown() {
    let mut proxy = start(None);
    let mut clients = silent_clients(proxy.port, 100);
    proxy.wait_for_clients(100, 100);
    let eof_before = proxy.pool_counter("client_eof");
    let leaving: Vec<TcpStream> = clients.drain(..40).collect();
    drop(leaving);
    proxy.wait_for_clients(60, 60);
    wait_until("40 more client_eof", PARKING_LIMIT, || {
        proxy.pool_counter("client_eof") >= eof_before + 40
    });
    assert_eq!(proxy.pool_counter("client_err"), 0);

    proxy.proxy.process().signal(libc::SIGTERM);
    let status = proxy.proxy.process().wait_exit(Duration::from_secs(10));
    assert!(status.success(), "SIGTERM with parked clients: {status:?}");
    for stream in &mut clients {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        let mut byte = [0u8; 1];
        assert_eq!(stream.read(&mut byte).expect("read EOF"), 0);
    }
}

#[test]
fn idle_clients_cost_little_memory() {
    const CLIENTS: usize = 3000;
    support::ensure_open_file_limit(CLIENTS as u64 * 2 + 256);
    let proxy = start(None);
    proxy.wait_for_clients(0, 0);
    let before = proxy.proxy.vm_rss_kb();
    let mut clients = silent_clients(proxy.port, CLIENTS);
    proxy.wait_for_clients(CLIENTS as u64, CLIENTS as u64);
    let connected = proxy.proxy.vm_rss_kb();
    assert!(
        connected - before < 1024,
        "{CLIENTS} silent clients grew the proxy from {before} kB to {connected} kB"
    );

    for stream in &mut clients {
        ping(stream);
    }
    proxy.wait_for_clients(CLIENTS as u64, CLIENTS as u64);
    let mut settled = 0;
    wait_until("memory given back after parking", PARKING_LIMIT, || {
        settled = proxy.proxy.vm_rss_kb();
        settled - before < 2048
    });
}

#[test]
fn a_unix_socket_pool_parks_and_serves_its_clients_too() {
    let redis = Redis::start(&[]);
    let port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("rampart.sock");
    let server = format!("127.0.0.1:{}:1", redis.port);
    let yaml = format!(
        "{}local:\n  listen: {} 0600\n  redis: true\n  servers:\n   - {server}\n",
        pool_yaml("alpha", port, "", std::slice::from_ref(&server)),
        path.display()
    );
    let proxy = Rampart::start(&yaml, &[port], WORKERS);
    let mut silent: Vec<UnixStream> = (0..5)
        .map(|_| UnixStream::connect(&path).expect("connect to the unix socket"))
        .collect();
    let mode = fs::metadata(&path)
        .expect("socket file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the listen permissions are applied");
    wait_until("5 parked unix clients", PARKING_LIMIT, || {
        pool_counter(&proxy.stats(), "local", "client_connections") == 5
            && unix_info_clients(&path).contains("parked_clients:5\r\n")
    });
    for (index, stream) in silent.iter_mut().enumerate() {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        set(stream, &format!("unix:{index}"));
    }
    assert_eq!(redis.get("unix:4").as_deref(), Some("v"));
}

/// The `# Clients` section of INFO, asked over the unix socket at `path`.
fn unix_info_clients(path: &std::path::Path) -> String {
    let mut stream = UnixStream::connect(path).expect("connect to the unix socket");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream
        .write_all(b"*2\r\n$4\r\nINFO\r\n$7\r\nclients\r\n")
        .expect("send INFO");
    let mut text = String::new();
    let mut chunk = [0u8; 512];
    while !text.ends_with("\r\n\r\n\r\n") {
        let read = stream.read(&mut chunk).expect("read INFO");
        assert!(read > 0, "the proxy closed during INFO; got {text:?}");
        text.push_str(&String::from_utf8_lossy(&chunk[..read]));
    }
    text
}
