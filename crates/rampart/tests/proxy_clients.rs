//! Real clients through rampart, against real redis-server shards: redis-py (its defaults,
//! RESP2 and RESP3), redis-rs (RESP2, RESP3, 1,000 connections at once), redis-cli, the seed's
//! README scenario, and `rampart route` agreeing with where keys really land.
//!
//! The redis-py side lives in `tests/clients/*.py`; each script takes the proxy port and exits
//! non-zero with the failed checks on stderr.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use redis::{Commands, Value};
use support::process::{Rampart, Redis, pool_yaml, run_within};
use support::resp::{Client, Reply, bulk};
use support::route::place;
use support::{free_port, wait_until};

/// Keys the redis-py suite uses for its multi-key checks (`MULTI` in the script).
const PY_MULTI_KEYS: usize = 12;

/// A pool served by rampart over real redis-server shards.
struct Pool {
    backends: Vec<Redis>,
    proxy: Rampart,
    port: u16,
}

impl Pool {
    /// Starts one redis-server per entry of `names` (an empty name means an unnamed server)
    /// and rampart serving them as one pool with `directives`.
    fn start(directives: &str, names: &[&str]) -> Pool {
        Pool::start_weighted(
            directives,
            &names.iter().map(|&name| (name, 1)).collect::<Vec<_>>(),
        )
    }

    fn start_weighted(directives: &str, servers: &[(&str, u32)]) -> Pool {
        let backends: Vec<Redis> = servers.iter().map(|_| Redis::start(&[])).collect();
        let entries: Vec<String> = backends
            .iter()
            .zip(servers)
            .map(|(backend, (name, weight))| {
                format!("127.0.0.1:{}:{weight} {name}", backend.port)
                    .trim_end()
                    .to_string()
            })
            .collect();
        let port = free_port();
        let yaml = pool_yaml("clients", port, directives, &entries);
        let proxy = Rampart::start(&yaml, &[port], &[]);
        Pool {
            backends,
            proxy,
            port,
        }
    }

    /// Three named shards, ketama over murmur, `{}` hash tags: the pool most tests use.
    fn three_shards() -> Pool {
        Pool::start(
            "  hash: murmur\n  distribution: ketama\n  hash_tag: \"{}\"\n",
            &["shard-a", "shard-b", "shard-c"],
        )
    }

    fn url(&self, query: &str) -> String {
        format!("redis://127.0.0.1:{}/{query}", self.port)
    }

    /// Index of the backend each key is placed on, as `rampart route` says.
    fn shards_of(&self, keys: &[Vec<u8>]) -> Vec<usize> {
        place(&self.proxy.config, None, &[], keys)
            .into_iter()
            .map(|placed| {
                let address = placed.address;
                self.backends
                    .iter()
                    .position(|backend| address == format!("127.0.0.1:{}", backend.port))
                    .unwrap_or_else(|| panic!("route named an unknown server {address}"))
            })
            .collect()
    }

    /// Two keys placed on different shards.
    fn keys_on_two_shards(&self) -> (String, String) {
        let candidates: Vec<Vec<u8>> = (0..100)
            .map(|index| format!("cross:{index}").into_bytes())
            .collect();
        let shards = self.shards_of(&candidates);
        let other = shards
            .iter()
            .position(|&shard| shard != shards[0])
            .expect("100 keys all on one shard");
        (
            String::from_utf8(candidates[0].clone()).unwrap(),
            String::from_utf8(candidates[other].clone()).unwrap(),
        )
    }

    fn backend_ports(&self) -> String {
        self.backends
            .iter()
            .map(|backend| backend.port.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Keys held by all the shards together.
    fn total_keys(&self) -> usize {
        self.backends
            .iter()
            .map(|backend| backend.keys(0).len())
            .sum()
    }
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Runs `python3 tests/clients/SCRIPT ARGS...`, killing it after `limit`, and panics with its
/// output unless it exits 0.
fn run_python(script: &str, args: &[String], limit: Duration) {
    if let Err(failure) = try_python(script, args, limit) {
        panic!("{failure}");
    }
}

/// Runs `python3 tests/clients/SCRIPT ARGS...`, killing it after `limit`; its output unless it
/// exits 0.
fn try_python(script: &str, args: &[String], limit: Duration) -> Result<(), String> {
    run_within(
        Command::new("python3")
            .arg(clients_dir().join(script))
            .args(args),
        limit,
    )
    .map(drop)
}

/// The redis-py suite against a fresh three-shard pool, with `protocol` (`default`, 2 or 3).
fn redis_py_suite(protocol: &str) {
    let pool = Pool::three_shards();
    let multi: Vec<Vec<u8>> = (0..PY_MULTI_KEYS)
        .map(|index| format!("multi:{index}").into_bytes())
        .collect();
    let spread: BTreeSet<usize> = pool.shards_of(&multi).into_iter().collect();
    assert_eq!(
        spread.len(),
        3,
        "the suite's multi-key checks must touch every shard"
    );
    let (a, b) = pool.keys_on_two_shards();
    run_python(
        "redis_py_suite.py",
        &[
            pool.port.to_string(),
            "--protocol".into(),
            protocol.into(),
            "--cross".into(),
            a,
            b,
            "--backends".into(),
            pool.backend_ports(),
        ],
        Duration::from_secs(60),
    );
}

#[test]
fn redis_py_with_default_settings() {
    redis_py_suite("default");
}

#[test]
fn redis_py_with_protocol_2() {
    redis_py_suite("2");
}

#[test]
fn redis_py_with_protocol_3() {
    redis_py_suite("3");
}

#[test]
fn redis_py_errors_are_those_of_redis_server() {
    let pool = Pool::three_shards();
    let direct = Redis::start(&[]);
    let failures: Vec<String> = ["default", "2", "3"]
        .into_iter()
        .filter_map(|protocol| {
            try_python(
                "redis_py_errors.py",
                &[
                    pool.port.to_string(),
                    "--direct".into(),
                    direct.port.to_string(),
                    "--protocol".into(),
                    protocol.into(),
                ],
                Duration::from_secs(30),
            )
            .err()
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// SET/GET/MSET/MGET/DEL/EXISTS and a pipeline through one redis-rs connection.
fn redis_rs_basics(connection: &mut redis::Connection, pool: &Pool) {
    let keys: Vec<String> = (0..12).map(|index| format!("rs:{index}")).collect();
    let as_bytes: Vec<Vec<u8>> = keys.iter().map(|key| key.clone().into_bytes()).collect();
    let spread: BTreeSet<usize> = pool.shards_of(&as_bytes).into_iter().collect();
    assert_eq!(spread.len(), 3, "the keys must touch every shard");

    let _: () = connection.set("rs:single", "one").unwrap();
    let value: Option<String> = connection.get("rs:single").unwrap();
    assert_eq!(value.as_deref(), Some("one"));
    let missing: Option<String> = connection.get("rs:missing").unwrap();
    assert_eq!(missing, None);

    let pairs: Vec<(String, String)> = keys
        .iter()
        .map(|key| (key.clone(), format!("value of {key}")))
        .collect();
    let _: () = connection.mset(&pairs).unwrap();
    let mut wanted_keys = keys.clone();
    wanted_keys.insert(3, "rs:missing".into());
    let values: Vec<Option<String>> = connection.mget(&wanted_keys).unwrap();
    let mut expected: Vec<Option<String>> = pairs.iter().map(|(_, v)| Some(v.clone())).collect();
    expected.insert(3, None);
    assert_eq!(values, expected, "MGET across shards, in key order");

    let counted: usize = redis::cmd("EXISTS")
        .arg(&keys)
        .arg("rs:missing")
        .query(connection)
        .unwrap();
    assert_eq!(counted, keys.len(), "EXISTS counts keys on every shard");

    let deleted: usize = connection.del(&wanted_keys).unwrap();
    assert_eq!(deleted, keys.len(), "DEL sums the shards' counts");
    let values: Vec<Option<String>> = connection.mget(&keys).unwrap();
    assert!(values.iter().all(Option::is_none), "{values:?}");

    let (set, incr, got, mget, del, pong): (
        String,
        i64,
        String,
        Vec<Option<String>>,
        usize,
        String,
    ) = redis::pipe()
        .set("rs:p", 41)
        .incr("rs:p", 1)
        .get("rs:p")
        .mset(&pairs[..6])
        .ignore()
        .mget(&keys[..6])
        .del(&keys[..6])
        .ping()
        .query(connection)
        .unwrap();
    assert_eq!(set, "OK");
    assert_eq!(incr, 42);
    assert_eq!(got, "42");
    assert_eq!(
        mget,
        pairs[..6]
            .iter()
            .map(|(_, v)| Some(v.clone()))
            .collect::<Vec<_>>()
    );
    assert_eq!(del, 6);
    assert_eq!(pong, "PONG");

    let error = redis::cmd("NOSUCHCMD")
        .arg("x")
        .query::<Value>(connection)
        .expect_err("an unknown command is an error");
    let text = error.to_string();
    assert!(
        text.contains("unknown command") && text.contains("NOSUCHCMD"),
        "{text}"
    );
    let after: String = redis::cmd("PING").query(connection).unwrap();
    assert_eq!(after, "PONG", "the connection keeps working after an error");
}

/// A redis-rs connection (`query` in its URL) to a fresh three-shard pool, once it has passed
/// the basics, with the pool and how redis-rs read HGETALL of a two-field hash.
fn redis_rs_connected(query: &str) -> (Pool, redis::Connection, Value) {
    let pool = Pool::three_shards();
    let client = redis::Client::open(pool.url(query)).unwrap();
    let mut connection = client.get_connection().unwrap();
    redis_rs_basics(&mut connection, &pool);

    let _: () = connection
        .hset_multiple("rs:h", &[("f1", "v1"), ("f2", "v2")])
        .unwrap();
    let raw: Value = redis::cmd("HGETALL")
        .arg("rs:h")
        .query(&mut connection)
        .unwrap();
    (pool, connection, raw)
}

/// `CLIENT INFO` of a redis-rs connection.
fn client_info(connection: &mut redis::Connection) -> String {
    redis::cmd("CLIENT").arg("INFO").query(connection).unwrap()
}

#[test]
fn redis_rs_resp2() {
    let (_pool, mut connection, raw) = redis_rs_connected("");
    assert!(
        matches!(&raw, Value::Array(items) if items.len() == 4),
        "HGETALL is a flat array in RESP2: {raw:?}"
    );
    let resp = client_info(&mut connection);
    assert!(resp.contains("resp=2"), "{resp}");
}

#[test]
fn redis_rs_resp3() {
    let (_pool, mut connection, raw) = redis_rs_connected("?protocol=resp3");
    assert!(
        matches!(&raw, Value::Map(entries) if entries.len() == 2),
        "HGETALL is a map in RESP3: {raw:?}"
    );
    let _: () = redis::cmd("ZADD")
        .arg("rs:z")
        .arg(1.5)
        .arg("m")
        .query(&mut connection)
        .unwrap();
    let score: Value = redis::cmd("ZSCORE")
        .arg("rs:z")
        .arg("m")
        .query(&mut connection)
        .unwrap();
    assert_eq!(score, Value::Double(1.5), "ZSCORE is a double in RESP3");
    let members: Value = redis::cmd("SMEMBERS")
        .arg("rs:none")
        .query(&mut connection)
        .unwrap();
    assert_eq!(members, Value::Set(vec![]), "SMEMBERS is a set in RESP3");
    let nil: Value = redis::cmd("GET")
        .arg("rs:none")
        .query(&mut connection)
        .unwrap();
    assert_eq!(nil, Value::Nil);
    let values: Value = redis::cmd("MGET")
        .arg("rs:h")
        .arg("rs:none")
        .arg("rs:z")
        .query(&mut connection)
        .unwrap();
    assert_eq!(
        values,
        Value::Array(vec![Value::Nil, Value::Nil, Value::Nil]),
        "MGET of non-string and missing keys gives RESP3 nulls"
    );
    let resp = client_info(&mut connection);
    assert!(resp.contains("resp=3"), "{resp}");
}

/// Reads `connected_clients` from the proxy's INFO.
fn proxy_connected_clients(client: &mut Client) -> u64 {
    match client.call(&[b"INFO", b"clients"]) {
        Reply::Bulk(Some(text)) => String::from_utf8_lossy(&text)
            .lines()
            .find_map(|line| line.strip_prefix("connected_clients:"))
            .and_then(|count| count.trim().parse().ok())
            .expect("INFO clients has connected_clients"),
        other => panic!("INFO clients gave {other:?}"),
    }
}

#[test]
fn redis_rs_thousand_concurrent_clients() {
    const CLIENTS: usize = 1000;
    support::ensure_open_file_limit(4096);
    let pool = Pool::three_shards();
    let url = pool.url("");
    let connected = Arc::new(Barrier::new(CLIENTS + 1));
    let go = Arc::new(Barrier::new(CLIENTS + 1));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|index| {
            let (url, connected, go) = (url.clone(), Arc::clone(&connected), Arc::clone(&go));
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || -> Result<(), String> {
                    let opened = redis::Client::open(url)
                        .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(10)));
                    connected.wait();
                    go.wait();
                    let mut connection = opened.map_err(|error| format!("client {index}: {error}"))?;
                    let (a, b) = (format!("many:{index}:a"), format!("many:{index}:b"));
                    let mine = |what: &str| format!("{what} of client {index}");
                    let check = |got: Option<String>, want: String| {
                        (got.as_deref() == Some(want.as_str()))
                            .then_some(())
                            .ok_or_else(|| format!("client {index}: got {got:?}, want {want:?}"))
                    };
                    let run = |connection: &mut redis::Connection| -> redis::RedisResult<Result<(), String>> {
                        let _: () = connection.set(&a, mine("a"))?;
                        let _: () = connection.set(&b, mine("b"))?;
                        let got_a: Option<String> = connection.get(&a)?;
                        let both: Vec<Option<String>> = connection.mget(&[&a, &b])?;
                        let counter: i64 = connection.incr(format!("many:{index}:n"), 1)?;
                        Ok(check(got_a, mine("a"))
                            .and_then(|()| check(both[0].clone(), mine("a")))
                            .and_then(|()| check(both[1].clone(), mine("b")))
                            .and_then(|()| {
                                (counter == 1)
                                    .then_some(())
                                    .ok_or(format!("client {index}: INCR gave {counter}"))
                            }))
                    };
                    run(&mut connection).map_err(|error| format!("client {index}: {error}"))?
                })
                .expect("spawn a client thread")
        })
        .collect();

    connected.wait();
    let mut observer = Client::connect(pool.port).unwrap();
    wait_until(
        "the proxy to count all 1,000 clients connected at once",
        Duration::from_secs(10),
        || proxy_connected_clients(&mut observer) > CLIENTS as u64,
    );
    go.wait();
    let failures: Vec<String> = threads
        .into_iter()
        .filter_map(|thread| thread.join().expect("client thread panicked").err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {CLIENTS} clients failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(
        pool.total_keys(),
        3 * CLIENTS,
        "every client's keys are on the shards"
    );
}

/// `redis-cli -p PORT args...`: its stdout, asserting it exited 0.
fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli is installed (scripts/test installs redis-tools)");
    assert!(
        output.status.success(),
        "redis-cli {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn redis_cli_through_the_proxy() {
    let pool = Pool::three_shards();
    let port = pool.port;
    assert_eq!(redis_cli(port, &["ping"]), "PONG\n");
    assert_eq!(redis_cli(port, &["set", "{a}1", "a1"]), "OK\n");
    assert_eq!(redis_cli(port, &["set", "{b}1", "b1"]), "OK\n");
    assert_eq!(redis_cli(port, &["get", "{a}1"]), "a1\n");
    assert_eq!(redis_cli(port, &["--no-raw", "get", "{a}1"]), "\"a1\"\n");
    assert_eq!(redis_cli(port, &["get", "{z}missing"]), "\n");
    assert_eq!(
        redis_cli(port, &["mget", "{a}1", "{z}missing", "{b}1"]),
        "a1\n\nb1\n"
    );
    assert_eq!(
        redis_cli(port, &["--no-raw", "mget", "{a}1", "{z}missing", "{b}1"]),
        "1) \"a1\"\n2) (nil)\n3) \"b1\"\n"
    );
    assert_eq!(redis_cli(port, &["-3", "get", "{b}1"]), "b1\n");
    let keyspace = redis_cli(port, &["info", "keyspace"]);
    assert!(
        keyspace.starts_with("# Keyspace\r\ndb0:keys=2,expires=0,"),
        "INFO keyspace sums the shards: {keyspace:?}"
    );
    assert_eq!(
        redis_cli(port, &["del", "{a}1", "{b}1", "{z}missing"]),
        "2\n"
    );

    let unknown = redis_cli(port, &["nosuchcmd", "x"]);
    assert!(
        unknown.starts_with("ERR unknown command 'nosuchcmd'"),
        "redis-cli prints the error: {unknown:?}"
    );
    let unknown = redis_cli(port, &["--no-raw", "nosuchcmd"]);
    assert!(
        unknown.starts_with("(error) ERR unknown command 'nosuchcmd'"),
        "redis-cli prints the error: {unknown:?}"
    );
    assert_eq!(redis_cli(port, &["ping"]), "PONG\n");
}

#[test]
fn readme_seed_scenario_places_a_and_b_on_different_servers() {
    let directives = "  hash: one_at_a_time\n  hash_tag: \"{}\"\n  distribution: modula\n  \
                      auto_eject_hosts: true\n  server_retry_timeout: 2000\n  \
                      server_failure_limit: 1\n  timeout: 400\n";
    let pool = Pool::start(directives, &["", ""]);
    // nutcracker orders servers by name (host:port) length, then bytes.
    let mut sorted: Vec<&Redis> = pool.backends.iter().collect();
    sorted.sort_by_key(|backend| {
        let name = format!("127.0.0.1:{}", backend.port);
        (name.len(), name)
    });
    let (first, second) = (sorted[0], sorted[1]);

    assert_eq!(redis_cli(pool.port, &["set", "{a}1", "a1"]), "OK\n");
    assert_eq!(redis_cli(pool.port, &["set", "{b}1", "b1"]), "OK\n");
    assert_eq!(first.keys(0), vec![b"{a}1".to_vec()], "first server");
    assert_eq!(second.keys(0), vec![b"{b}1".to_vec()], "second server");
    assert_eq!(first.client().call(&[b"GET", b"{a}1"]), bulk("a1"));
    assert_eq!(second.client().call(&[b"GET", b"{b}1"]), bulk("b1"));
    assert_eq!(redis_cli(pool.port, &["get", "{a}1"]), "a1\n");
    assert_eq!(redis_cli(pool.port, &["get", "{b}1"]), "b1\n");

    let routes = place(&pool.proxy.config, None, &[], &["{a}1", "{b}1"]);
    assert_eq!(routes[0].address, format!("127.0.0.1:{}", first.port));
    assert_eq!(routes[1].address, format!("127.0.0.1:{}", second.port));
}

/// Keys for the placement checks: plain, tagged, non-ASCII and non-UTF-8, long and empty-tag.
fn placement_keys(tag: (&str, &str)) -> Vec<Vec<u8>> {
    let (open, close) = tag;
    let mut keys = Vec::new();
    for index in 0..120 {
        keys.push(format!("user:{index}").into_bytes());
        keys.push(format!("{open}group{}{close}:member:{index}", index % 7).into_bytes());
        keys.push(format!("ключ:{index}:é").into_bytes());
    }
    for index in 0..20u8 {
        keys.push(vec![b'k', 0xff, 0x80, b'a' + index, b' ', 0xc3]);
        keys.push(format!("{open}{close}empty-tag:{index}").into_bytes());
        keys.push(format!("{}:{index}", "x".repeat(300)).into_bytes());
    }
    keys
}

/// Writes `keys` through the proxy (MSET in batches, some SETs) and checks each landed only
/// on the shard `rampart route` names.
fn keys_land_where_route_says(pool: &Pool, keys: &[Vec<u8>]) {
    let mut client = Client::connect(pool.port).unwrap();
    for (index, batch) in keys.chunks(25).enumerate() {
        if index % 2 == 0 {
            let mut command: Vec<&[u8]> = vec![b"MSET"];
            for key in batch {
                command.push(key);
                command.push(key);
            }
            assert!(client.call(&command).is_ok(), "MSET batch {index}");
        } else {
            for key in batch {
                assert!(client.call(&[b"SET", key, key]).is_ok());
            }
        }
    }
    let shards = pool.shards_of(keys);
    let mut expected: BTreeMap<usize, BTreeSet<Vec<u8>>> = BTreeMap::new();
    for (key, shard) in keys.iter().zip(shards) {
        expected.entry(shard).or_default().insert(key.clone());
    }
    assert!(
        expected.len() > 1,
        "the keys must spread over several shards"
    );
    for (index, backend) in pool.backends.iter().enumerate() {
        let held: BTreeSet<Vec<u8>> = backend.keys(0).into_iter().collect();
        let wanted = expected.remove(&index).unwrap_or_default();
        let misplaced: Vec<String> = held
            .symmetric_difference(&wanted)
            .take(5)
            .map(|key| String::from_utf8_lossy(key).into_owned())
            .collect();
        assert!(
            misplaced.is_empty(),
            "shard {index} (127.0.0.1:{}) holds {} keys, route says {}; differing e.g. {misplaced:?}",
            backend.port,
            held.len(),
            wanted.len()
        );
    }
}

#[test]
fn keys_land_where_route_says_ketama() {
    let pool = Pool::start_weighted(
        "  hash: md5\n  distribution: ketama\n  hash_tag: \"{}\"\n",
        &[("alpha", 1), ("beta", 2), ("gamma", 3)],
    );
    keys_land_where_route_says(&pool, &placement_keys(("{", "}")));
}

#[test]
fn keys_land_where_route_says_modula() {
    let pool = Pool::start_weighted(
        "  hash: fnv1a_32\n  distribution: modula\n  hash_tag: \"[]\"\n",
        &[("", 1), ("", 1), ("", 2)],
    );
    keys_land_where_route_says(&pool, &placement_keys(("[", "]")));
}

/// redis-py's `register_script` objects and SCRIPT LOAD/EXISTS/FLUSH: SCRIPT goes to every
/// shard, so EVALSHA finds its script on whichever shard its key lives.
#[test]
fn redis_py_scripts_run_on_every_shard() {
    let pool = Pool::three_shards();
    let candidates: Vec<Vec<u8>> = (0..60)
        .map(|index| format!("script:{index}").into_bytes())
        .collect();
    let shards = pool.shards_of(&candidates);
    let mut keys = Vec::new();
    for shard in 0..3 {
        let index = shards
            .iter()
            .position(|&owner| owner == shard)
            .expect("a key on every shard");
        keys.push(String::from_utf8(candidates[index].clone()).unwrap());
    }
    let mut args = vec![pool.port.to_string()];
    args.extend(keys);
    run_python("redis_py_scripts.py", &args, Duration::from_secs(30));
}
