//! Connection handshakes of current Redis clients through rampart, against real redis-server
//! shards: what each library sends between opening the socket and its first command, and that
//! the connection then works (SET/GET/MGET/DEL/HSET/HGETALL over keys on every shard, keys landing
//! on the shards in the pool's database).
//!
//! Two pools are used throughout: `plain` (three shards, no password, database 0) and `secured`
//! (two shards with `requirepass`, `redis_auth` and `redis_db: 2`, so every key must land in
//! database 2 of the shards).
//!
//! Real clients: node-redis (npm `redis` 6 and 5) and ioredis (6 and 5), run as node scripts in
//! `tests/clients/node/` (installed from its package-lock.json by `scripts/install-deps`). Each
//! script connects through a recording tap, checks the exact handshake its library sent and
//! rampart's reply to every command (HELLO's map and `proto`, `+OK` for CLIENT SETINFO...), the
//! RESP2/RESP3 wire type of nulls and maps afterwards, and the library's own view of the replies.
//!
//! The same libraries also connect to a pool with one shard down (they must, and serve the keys
//! on the shards that are up).
//!
//! Stand-ins: Jedis 5, Lettuce 6 and go-redis v9 cannot be installed on this machine (Maven
//! Central and the Go module proxy are unreachable), so their connection set-up is replayed
//! command for command, as their sources send it, with a raw RESP2/RESP3 client, and every reply
//! is checked against what the library requires of it. A replay proves rampart answers those
//! exact sequences; it does not run the library's own reply parsing.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::free_port;
use support::process::{Rampart, Redis, pool_yaml, run_within};
use support::resp::{Client, Reply, bulk, cmd, nil, ok, pong};
use support::route::place;

/// The password of the `secured` pool (`redis_auth`) and of its shards (`requirepass`).
const PASSWORD: &str = "s3cret";
/// The `redis_db` of the `secured` pool.
const SECURED_DB: u32 = 2;
/// Keys each scenario leaves behind (`TAG:kept:0..KEPT`) for the shard check.
const KEPT: usize = 8;

// ---------------------------------------------------------------------------------------------
// Pools

/// rampart serving one pool over real redis-server shards.
struct Pool {
    shards: Vec<Redis>,
    proxy: Rampart,
    port: u16,
    password: Option<&'static str>,
    db: u32,
}

impl Pool {
    /// Three named shards, no password, database 0.
    fn plain() -> Pool {
        Pool::start(&["shard-a", "shard-b", "shard-c"], None, 0)
    }

    /// Two named shards behind `requirepass`, with `redis_auth` and `redis_db: 2`.
    fn secured() -> Pool {
        Pool::start(&["secure-a", "secure-b"], Some(PASSWORD), SECURED_DB)
    }

    fn start(names: &[&str], password: Option<&'static str>, db: u32) -> Pool {
        let extra: Vec<&str> = password.map_or(vec![], |pw| vec!["--requirepass", pw]);
        let shards: Vec<Redis> = names.iter().map(|_| Redis::start(&extra)).collect();
        let servers: Vec<String> = shards
            .iter()
            .zip(names)
            .map(|(shard, name)| format!("127.0.0.1:{}:1 {name}", shard.port))
            .collect();
        let mut directives = String::from("  hash: murmur\n  distribution: ketama\n");
        if let Some(pw) = password {
            directives.push_str(&format!("  redis_auth: {pw}\n"));
        }
        if db != 0 {
            directives.push_str(&format!("  redis_db: {db}\n"));
        }
        let port = free_port();
        let name = if password.is_some() {
            "secured"
        } else {
            "plain"
        };
        let proxy = Rampart::start(&pool_yaml(name, port, &directives, &servers), &[port], &[]);
        Pool {
            shards,
            proxy,
            port,
            password,
            db,
        }
    }

    /// A raw connection to shard `index`, authenticated, in database `db`.
    fn shard(&self, index: usize, db: u32) -> Client {
        let mut client = self.shards[index].client();
        if let Some(pw) = self.password {
            let reply = client.call(&[b"AUTH", pw.as_bytes()]);
            assert!(reply.is_ok(), "AUTH on shard {index}: {reply:?}");
        }
        let reply = client.call(&[b"SELECT", db.to_string().as_bytes()]);
        assert!(reply.is_ok(), "SELECT {db} on shard {index}: {reply:?}");
        client
    }

    /// Keys matching `pattern` in database `db` of each shard, with their values.
    fn keys_on_shards(&self, db: u32, pattern: &str) -> Vec<BTreeMap<String, String>> {
        (0..self.shards.len())
            .map(|index| {
                let mut client = self.shard(index, db);
                let keys = match client.call(&[b"KEYS", pattern.as_bytes()]) {
                    Reply::Array(Some(keys)) => keys,
                    other => panic!("KEYS on shard {index}: {other:?}"),
                };
                keys.into_iter()
                    .map(|key| {
                        let Reply::Bulk(Some(key)) = key else {
                            panic!("KEYS gave {key:?}")
                        };
                        let value = match client.call(&[b"GET", &key]) {
                            Reply::Bulk(Some(value)) => String::from_utf8(value).unwrap(),
                            other => panic!("GET on shard {index}: {other:?}"),
                        };
                        (String::from_utf8(key).unwrap(), value)
                    })
                    .collect()
            })
            .collect()
    }

    /// The `TAG:kept:*` keys a scenario left are all on the shards, once each, in the pool's
    /// database (and not in database 0 when that is another one), spread over several shards.
    fn assert_kept(&self, tag: &str) {
        let pattern = format!("{tag}:kept:*");
        let per_shard = self.keys_on_shards(self.db, &pattern);
        let mut found = BTreeMap::new();
        for (index, keys) in per_shard.iter().enumerate() {
            for (key, value) in keys {
                if let Some(other) = found.insert(key.clone(), (index, value.clone())) {
                    panic!("{key} is on shard {} and shard {index}", other.0);
                }
            }
        }
        let expected: BTreeMap<String, String> = (0..KEPT)
            .map(|i| (format!("{tag}:kept:{i}"), format!("kept {i}")))
            .collect();
        let got: BTreeMap<String, String> = found
            .iter()
            .map(|(key, (_, value))| (key.clone(), value.clone()))
            .collect();
        assert_eq!(got, expected, "keys {tag} left in database {}", self.db);
        let shards_used: BTreeSet<usize> = found.values().map(|(index, _)| *index).collect();
        assert!(
            shards_used.len() >= 2,
            "{tag}'s keys all landed on one shard ({shards_used:?}): the check needs a spread"
        );
        if self.db != 0 {
            let stray: Vec<_> = self
                .keys_on_shards(0, &pattern)
                .into_iter()
                .flatten()
                .collect();
            assert!(
                stray.is_empty(),
                "{tag} keys landed in database 0: {stray:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Real clients: node-redis and ioredis

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/node")
}

/// Fails clearly when the node packages are not installed.
fn require_node_packages() {
    for package in ["redis", "redis-v5", "ioredis", "ioredis-v5"] {
        let manifest = node_dir()
            .join("node_modules")
            .join(package)
            .join("package.json");
        assert!(
            manifest.is_file(),
            "{} is missing: run scripts/install-deps (npm ci --prefix crates/rampart/tests/clients/node)",
            manifest.display()
        );
    }
}

/// A node script run: `node SCRIPT PORT ARGS...`; the tag its `kept` keys carry.
struct Run {
    script: &'static str,
    args: Vec<String>,
    tag: String,
}

/// `script` against `port` with `args` (pairs of `--flag value`, split on spaces), tagged.
fn run(script: &'static str, tag: &str, args: &str) -> Run {
    let mut args: Vec<String> = args.split_whitespace().map(str::to_string).collect();
    args.extend(["--tag".to_string(), tag.to_string()]);
    Run {
        script,
        args,
        tag: tag.to_string(),
    }
}

/// Runs `node SCRIPT PORT ARGS...`, killing it after 30 s; its stdout, or a description of the
/// failure with its stderr and stdout.
fn run_node(script: &str, port: u16, args: &[String]) -> Result<String, String> {
    run_within(
        Command::new("node")
            .arg(script)
            .arg(port.to_string())
            .args(args)
            .current_dir(node_dir()),
        Duration::from_secs(30),
    )
}

/// Runs every scenario against its pool at once, then checks the keys each one left.
fn run_all(runs: &[(&Pool, Run)]) {
    require_node_packages();
    let results: Vec<Result<String, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .iter()
            .map(|(pool, run)| scope.spawn(move || run_node(run.script, pool.port, &run.args)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} client runs failed:\n\n{}",
        failures.len(),
        runs.len(),
        failures
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    for ((pool, run), result) in runs.iter().zip(&results) {
        let stdout = result.as_ref().unwrap();
        assert!(
            stdout.lines().any(|line| line.ends_with(": ok")),
            "{} {:?} did not report ok:\n{stdout}",
            run.script,
            run.args
        );
        pool.assert_kept(&run.tag);
    }
}

/// node-redis 6 (RESP3 by default: HELLO 3, CLIENT SETINFO x2, CLIENT MAINT_NOTIFICATIONS).
#[test]
fn node_redis_6_connects_with_its_defaults_resp2_names_and_passwords() {
    let (plain, secured) = (Pool::plain(), Pool::secured());
    let pw = PASSWORD;
    run_all(&[
        (&plain, run("node-redis.js", "nr6-default", "")),
        (&plain, run("node-redis.js", "nr6-resp2", "--resp 2")),
        (&plain, run("node-redis.js", "nr6-name", "--name nr6-app")),
        (
            &secured,
            run("node-redis.js", "nr6-pw", &format!("--password {pw}")),
        ),
        (
            &secured,
            run(
                "node-redis.js",
                "nr6-user",
                &format!("--username default --password {pw} --name nr6-app"),
            ),
        ),
        (
            &secured,
            run(
                "node-redis.js",
                "nr6-resp2-pw-db",
                &format!("--resp 2 --password {pw} --database {SECURED_DB}"),
            ),
        ),
    ]);
}

/// node-redis 5 (RESP2 by default, no HELLO; `RESP: 3` sends HELLO 3, `RESP: 2` HELLO 2).
#[test]
fn node_redis_5_connects_with_its_defaults_resp3_names_and_passwords() {
    let (plain, secured) = (Pool::plain(), Pool::secured());
    let pw = PASSWORD;
    let v5 = "--package redis-v5";
    run_all(&[
        (&plain, run("node-redis.js", "nr5-default", v5)),
        (
            &plain,
            run("node-redis.js", "nr5-resp3", &format!("{v5} --resp 3")),
        ),
        (
            &plain,
            run(
                "node-redis.js",
                "nr5-resp2-name",
                &format!("{v5} --resp 2 --name nr5-app"),
            ),
        ),
        (
            &secured,
            run("node-redis.js", "nr5-pw", &format!("{v5} --password {pw}")),
        ),
        (
            &secured,
            run(
                "node-redis.js",
                "nr5-resp3-user-db",
                &format!(
                    "{v5} --resp 3 --username default --password {pw} --database {SECURED_DB}"
                ),
            ),
        ),
        (
            &secured,
            run(
                "node-redis.js",
                "nr5-user-name",
                &format!("{v5} --username default --password {pw} --name nr5-app"),
            ),
        ),
    ]);
}

/// ioredis 6 (HELLO 3 carrying AUTH, CLIENT SETNAME, CLIENT SETINFO x2, INFO ready check).
#[test]
fn ioredis_6_connects_with_its_defaults_resp2_connection_names_and_passwords() {
    let (plain, secured) = (Pool::plain(), Pool::secured());
    let pw = PASSWORD;
    run_all(&[
        (&plain, run("ioredis.js", "io6-default", "")),
        (&plain, run("ioredis.js", "io6-resp2", "--protocol 2")),
        (&plain, run("ioredis.js", "io6-name", "--name io6-app")),
        (
            &secured,
            run("ioredis.js", "io6-pw", &format!("--password {pw}")),
        ),
        (
            &secured,
            run(
                "ioredis.js",
                "io6-user-name-db",
                &format!("--username default --password {pw} --name io6-app --db {SECURED_DB}"),
            ),
        ),
        (
            &secured,
            run(
                "ioredis.js",
                "io6-resp2-pw",
                &format!("--protocol 2 --password {pw}"),
            ),
        ),
    ]);
}

/// ioredis 5 (RESP2: AUTH, SELECT, CLIENT SETNAME, CLIENT SETINFO x2, INFO ready check).
#[test]
fn ioredis_5_connects_with_its_defaults_connection_names_and_passwords() {
    let (plain, secured) = (Pool::plain(), Pool::secured());
    let pw = PASSWORD;
    let v5 = "--package ioredis-v5";
    run_all(&[
        (&plain, run("ioredis.js", "io5-default", v5)),
        (
            &plain,
            run("ioredis.js", "io5-name", &format!("{v5} --name io5-app")),
        ),
        (
            &secured,
            run("ioredis.js", "io5-pw", &format!("{v5} --password {pw}")),
        ),
        (
            &secured,
            run(
                "ioredis.js",
                "io5-user-name-db",
                &format!(
                    "{v5} --username default --password {pw} --name io5-app --db {SECURED_DB}"
                ),
            ),
        ),
    ]);
}

/// The first of `candidates` that `rampart route` places on the server named `server`.
fn key_on(pool: &Pool, server: &str, candidates: impl Iterator<Item = String>) -> String {
    let candidates: Vec<String> = candidates.collect();
    place(&pool.proxy.config, None, &[], &candidates)
        .into_iter()
        .find(|placed| placed.server == server)
        .map(|placed| String::from_utf8(placed.key).unwrap())
        .unwrap_or_else(|| panic!("none of {candidates:?} is placed on {server}"))
}

/// With one shard down (and `auto_eject_hosts` off, nutcracker's default), every client must
/// still connect and serve the keys on the shards that are up. node-redis does. ioredis ends its
/// handshake with a ready check, a plain `INFO`; rampart answers INFO with the keyspace summed
/// over every shard, and while one shard is unreachable the whole INFO reply is
/// `-ERR Connection refused`, so ioredis (5 and 6, default `enableReadyCheck`) never becomes
/// ready and reconnects forever, even for keys on the shards that are up. This test fails until
/// rampart answers INFO without the keyspace of the shards it cannot reach.
#[test]
fn every_client_connects_while_a_shard_is_down() {
    require_node_packages();
    let mut pool = Pool::start(&["live", "down"], None, 0);
    pool.shards[1].kill();
    let results: Vec<Result<String, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ["redis", "redis-v5", "ioredis", "ioredis-v5"]
            .into_iter()
            .map(|package| {
                // One key per client: the clients run at once and each deletes its key.
                let key = key_on(
                    &pool,
                    "live",
                    (0..64).map(|i| format!("shard-down:{package}:{i}")),
                );
                let args = vec![
                    "--package".to_string(),
                    package.to_string(),
                    "--key".to_string(),
                    key.clone(),
                ];
                let port = pool.port;
                scope.spawn(move || run_node("shard-down.js", port, &args))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} of 4 clients could not work with one shard of two down:\n\n{}",
        failures.len(),
        failures
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Stand-ins: a raw RESP2/RESP3 connection replaying a library's connection set-up

/// A connection speaking whatever protocol the replayed handshake negotiated; failures name
/// the scenario.
struct Conn {
    client: Client,
    what: String,
}

impl Conn {
    fn connect(port: u16, what: &str) -> Conn {
        Conn {
            client: Client::open(port),
            what: what.to_string(),
        }
    }

    /// Sends `command` and reads its reply.
    fn call(&mut self, command: &[&str]) -> Reply {
        self.pipeline(&[command]).remove(0)
    }

    /// Sends every command in one write (as the libraries pipeline them), then reads one reply
    /// per command.
    fn pipeline(&mut self, commands: &[&[&str]]) -> Vec<Reply> {
        let encoded: Vec<Vec<Vec<u8>>> = commands.iter().map(|command| cmd(command)).collect();
        self.client
            .try_pipeline(&encoded)
            .unwrap_or_else(|e| panic!("{}: reading the replies to {commands:?}: {e}", self.what))
    }
}

/// `+OK`, as every library requires of AUTH, SELECT, CLIENT SETNAME and CLIENT SETINFO.
fn assert_ok(reply: &Reply, what: &str) {
    assert_eq!(reply, &ok(), "{what}");
}

/// A Redis error reply (not a closed connection), which the libraries tolerate for optional
/// handshake commands.
fn assert_redis_error(reply: &Reply, what: &str) {
    assert!(
        matches!(reply, Reply::Error(text) if text.starts_with("ERR ")),
        "{what}: expected an -ERR reply, got {reply:?}"
    );
}

/// HELLO's reply as the libraries read it: a RESP3 map (RESP2: a flat array) with `server`,
/// `version`, `mode` and `role` strings, `proto` and `id` integers and a `modules` array.
/// Returns the connection id.
fn assert_hello(reply: &Reply, protocol: i64, what: &str) -> i64 {
    let fields: Vec<(Reply, Reply)> = match (protocol, reply) {
        (3, Reply::Map(pairs)) => pairs.clone(),
        (2, Reply::Array(Some(flat))) if flat.len() % 2 == 0 => flat
            .chunks(2)
            .map(|pair| (pair[0].clone(), pair[1].clone()))
            .collect(),
        _ => panic!("{what}: HELLO {protocol} must answer with a map, got {reply:?}"),
    };
    let field = |name: &str| -> &Reply {
        &fields
            .iter()
            .find(|(key, _)| *key == bulk(name))
            .unwrap_or_else(|| panic!("{what}: HELLO reply without '{name}': {reply:?}"))
            .1
    };
    assert_eq!(field("proto"), &Reply::Integer(protocol), "{what}: proto");
    for name in ["server", "version", "mode", "role"] {
        assert!(
            matches!(field(name), Reply::Bulk(Some(_))),
            "{what}: HELLO '{name}' must be a string: {reply:?}"
        );
    }
    assert_eq!(field("mode"), &bulk("standalone"), "{what}: mode");
    assert_eq!(field("role"), &bulk("master"), "{what}: role");
    assert!(
        matches!(field("modules"), Reply::Array(Some(_))),
        "{what}: HELLO 'modules' must be an array: {reply:?}"
    );
    match field("id") {
        Reply::Integer(id) => *id,
        other => {
            panic!("{what}: HELLO 'id' must be an integer (Lettuce casts it to Long): {other:?}")
        }
    }
}

/// After a replayed handshake: the connection state, then data over every shard, with nulls and
/// maps in the negotiated protocol's wire types; leaves `TAG:kept:*`; QUIT.
fn use_connection(conn: &mut Conn, tag: &str, protocol: i64, name: Option<&str>) {
    let what = conn.what.clone();
    let null = if protocol == 3 { Reply::Null } else { nil() };
    let expected_name = name.map_or(null.clone(), bulk);
    assert_eq!(
        conn.call(&["CLIENT", "GETNAME"]),
        expected_name,
        "{what}: CLIENT GETNAME"
    );

    let keys: Vec<String> = (0..12).map(|i| format!("{tag}:k{i}")).collect();
    for key in &keys {
        assert_ok(
            &conn.call(&["SET", key, key]),
            &format!("{what}: SET {key}"),
        );
    }
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    let missing = format!("{tag}:missing");
    mget.push(&missing);
    let mut expected: Vec<Reply> = keys.iter().map(bulk).collect();
    expected.push(null.clone());
    assert_eq!(
        conn.call(&mget),
        Reply::Array(Some(expected)),
        "{what}: MGET"
    );
    assert_eq!(
        conn.call(&["GET", &missing]),
        null,
        "{what}: GET of a missing key"
    );

    let hash = format!("{tag}:hash");
    assert_eq!(
        conn.call(&["HSET", &hash, "f1", "v1", "f2", "v2"]),
        Reply::Integer(2),
        "{what}: HSET"
    );
    let fields = [("f1", "v1"), ("f2", "v2")];
    let expected = if protocol == 3 {
        Reply::Map(fields.iter().map(|(f, v)| (bulk(f), bulk(v))).collect())
    } else {
        Reply::Array(Some(
            fields
                .iter()
                .flat_map(|(f, v)| [bulk(f), bulk(v)])
                .collect(),
        ))
    };
    assert_eq!(conn.call(&["HGETALL", &hash]), expected, "{what}: HGETALL");

    let mut del = vec!["DEL"];
    del.extend(keys.iter().map(String::as_str));
    del.push(&hash);
    assert_eq!(
        conn.call(&del),
        Reply::Integer(keys.len() as i64 + 1),
        "{what}: DEL"
    );
    for i in 0..KEPT {
        let key = format!("{tag}:kept:{i}");
        assert_ok(
            &conn.call(&["SET", &key, &format!("kept {i}")]),
            &format!("{what}: SET {key}"),
        );
    }
    assert_ok(&conn.call(&["QUIT"]), &format!("{what}: QUIT"));
}

/// go-redis v9.16 and later (checked against the v9 `baseClient.initConn`): HELLO alone, carrying
/// AUTH (user `default` when only a password is set) and SETNAME; then SELECT and CLIENT
/// SETNAME pipelined (both must be `+OK`); then, on RESP3 with the default maintenance
/// notifications mode "auto", `client maint_notifications on moving-endpoint-type internal-ip`,
/// where a Redis error turns the feature off and anything else fails the connection; then CLIENT
/// SETINFO LIB-NAME `go-redis(<suffix>,<go version>)` and LIB-VER pipelined (Redis errors
/// ignored). go-redis writes command names in lower case.
fn go_redis_connect(
    port: u16,
    what: &str,
    protocol: i64,
    password: Option<&str>,
    name: Option<&str>,
    db: u32,
) -> Conn {
    let mut conn = Conn::connect(port, what);
    let proto = protocol.to_string();
    let mut hello = vec!["hello", &proto];
    if let Some(pw) = password {
        hello.extend(["auth", "default", pw]);
    }
    if let Some(name) = name {
        hello.extend(["setname", name]);
    }
    assert_hello(&conn.call(&hello), protocol, &format!("{what}: {hello:?}"));

    let db_text = db.to_string();
    let mut init: Vec<Vec<&str>> = Vec::new();
    if db > 0 {
        init.push(vec!["select", &db_text]);
    }
    if let Some(name) = name {
        init.push(vec!["client", "setname", name]);
    }
    if !init.is_empty() {
        let commands: Vec<&[&str]> = init.iter().map(Vec::as_slice).collect();
        for (command, reply) in commands.iter().zip(conn.pipeline(&commands)) {
            assert_ok(&reply, &format!("{what}: {command:?}"));
        }
    }
    if protocol == 3 {
        let reply = conn.call(&[
            "client",
            "maint_notifications",
            "on",
            "moving-endpoint-type",
            "internal-ip",
        ]);
        assert_redis_error(&reply, &format!("{what}: client maint_notifications"));
    }
    let setinfo: [&[&str]; 2] = [
        &["client", "setinfo", "LIB-NAME", "go-redis(,go1.24.4)"],
        &["client", "setinfo", "LIB-VER", "9.18.0"],
    ];
    for (command, reply) in setinfo.iter().zip(conn.pipeline(&setinfo)) {
        assert_ok(&reply, &format!("{what}: {command:?}"));
    }
    conn
}

/// Stand-in for go-redis v9 (its module cannot be fetched here): the replay above, with the
/// default options, with Password + DB + ClientName on a `redis_auth`/`redis_db` pool, and with
/// `Protocol: 2`.
#[test]
fn go_redis_v9_handshake_replay() {
    let (plain, secured) = (Pool::plain(), Pool::secured());

    let what = "go-redis v9 defaults";
    let mut conn = go_redis_connect(plain.port, what, 3, None, None, 0);
    use_connection(&mut conn, "go-default", 3, None);
    plain.assert_kept("go-default");

    let what = "go-redis v9 Password+DB+ClientName";
    let mut conn = go_redis_connect(
        secured.port,
        what,
        3,
        Some(PASSWORD),
        Some("go-app"),
        SECURED_DB,
    );
    use_connection(&mut conn, "go-secured", 3, Some("go-app"));
    secured.assert_kept("go-secured");

    let what = "go-redis v9 Protocol 2 + Password";
    let mut conn = go_redis_connect(secured.port, what, 2, Some(PASSWORD), None, 0);
    use_connection(&mut conn, "go-resp2", 2, None);
    secured.assert_kept("go-resp2");
}

/// Lettuce 6.3 and later (`RedisHandshake`, protocol version not configured, so
/// `tryHandshakeResp3`): `HELLO 3 [AUTH <user or default> <password>] [SETNAME <name>]` alone
/// (the reply's `id` read as a Long, `version`/`mode`/`role` as Strings; only `-NOPROTO` or
/// an unknown-command error would make it fall back to RESP2); then SELECT when the database is
/// not 0 (its failure fails the connection); then, fire and forget, `CLIENT SETINFO lib-name
/// Lettuce` and `CLIENT SETINFO lib-ver <version>` pipelined. With `ProtocolVersion.RESP2`
/// configured it sends `AUTH` (or `PING`, pingBeforeActivateConnection), SELECT, then CLIENT
/// SETNAME with the two CLIENT SETINFO.
fn lettuce_connect(
    port: u16,
    what: &str,
    resp2: bool,
    password: Option<&str>,
    name: Option<&str>,
    db: u32,
) -> Conn {
    let mut conn = Conn::connect(port, what);
    if resp2 {
        match password {
            Some(pw) => assert_ok(&conn.call(&["AUTH", pw]), &format!("{what}: AUTH")),
            None => assert_eq!(conn.call(&["PING"]), pong(), "{what}: PING"),
        }
    } else {
        let mut hello = vec!["HELLO", "3"];
        if let Some(pw) = password {
            hello.extend(["AUTH", "default", pw]);
        }
        if let Some(name) = name {
            hello.extend(["SETNAME", name]);
        }
        assert_hello(&conn.call(&hello), 3, &format!("{what}: {hello:?}"));
    }
    if db > 0 {
        assert_ok(
            &conn.call(&["SELECT", &db.to_string()]),
            &format!("{what}: SELECT"),
        );
    }
    let mut metadata: Vec<Vec<&str>> = Vec::new();
    if let (Some(name), true) = (name, resp2) {
        metadata.push(vec!["CLIENT", "SETNAME", name]);
    }
    metadata.push(vec!["CLIENT", "SETINFO", "lib-name", "Lettuce"]);
    metadata.push(vec!["CLIENT", "SETINFO", "lib-ver", "6.7.1.RELEASE"]);
    let commands: Vec<&[&str]> = metadata.iter().map(Vec::as_slice).collect();
    for (command, reply) in commands.iter().zip(conn.pipeline(&commands)) {
        assert_ok(&reply, &format!("{what}: {command:?}"));
    }
    conn
}

/// Stand-in for Lettuce 6 (Maven Central is unreachable here): the replay above, with the
/// default `RedisURI`, with password + client name + database on a `redis_auth`/`redis_db` pool,
/// and with `ProtocolVersion.RESP2` (plain, and with password + client name).
#[test]
fn lettuce_6_handshake_replay() {
    let (plain, secured) = (Pool::plain(), Pool::secured());

    let mut conn = lettuce_connect(plain.port, "Lettuce 6 defaults", false, None, None, 0);
    use_connection(&mut conn, "lettuce-default", 3, None);
    plain.assert_kept("lettuce-default");

    let what = "Lettuce 6 password+clientName+database";
    let mut conn = lettuce_connect(
        secured.port,
        what,
        false,
        Some(PASSWORD),
        Some("lettuce-app"),
        SECURED_DB,
    );
    use_connection(&mut conn, "lettuce-secured", 3, Some("lettuce-app"));
    secured.assert_kept("lettuce-secured");

    let mut conn = lettuce_connect(plain.port, "Lettuce 6 RESP2", true, None, None, 0);
    use_connection(&mut conn, "lettuce-resp2", 2, None);
    plain.assert_kept("lettuce-resp2");

    let what = "Lettuce 6 RESP2 password+clientName";
    let mut conn = lettuce_connect(
        secured.port,
        what,
        true,
        Some(PASSWORD),
        Some("lettuce-app"),
        0,
    );
    use_connection(&mut conn, "lettuce-resp2-secured", 2, Some("lettuce-app"));
    secured.assert_kept("lettuce-resp2-secured");
}

/// Jedis 5 (`Connection.initializeFromClientConfig` and `helloOrAuth`, 5.0 to 5.2): with no
/// protocol configured (the default) no HELLO, only `AUTH <password>` or `AUTH <user>
/// <password>` when set; with `RedisProtocol.RESP3`, `HELLO 3 AUTH <user> <password>` when a
/// user is set, else `AUTH <password>` followed by `HELLO 3`, or plain `HELLO 3`. Then, fire and
/// forget, `CLIENT SETNAME` (when a client name is set), `CLIENT SETINFO LIB-NAME jedis` and
/// `CLIENT SETINFO LIB-VER <version>` pipelined and read together; then `SELECT <db>` when the
/// database is not 0 (it must be `+OK`).
fn jedis_connect(
    port: u16,
    what: &str,
    resp3: bool,
    user: Option<&str>,
    password: Option<&str>,
    name: Option<&str>,
    db: u32,
) -> Conn {
    let mut conn = Conn::connect(port, what);
    match (resp3, user, password) {
        (false, None, Some(pw)) => assert_ok(&conn.call(&["AUTH", pw]), &format!("{what}: AUTH")),
        (false, Some(user), Some(pw)) => assert_ok(
            &conn.call(&["AUTH", user, pw]),
            &format!("{what}: AUTH user"),
        ),
        (false, _, None) => {}
        (true, Some(user), Some(pw)) => {
            let hello = ["HELLO", "3", "AUTH", user, pw];
            assert_hello(&conn.call(&hello), 3, &format!("{what}: {hello:?}"));
        }
        (true, None, Some(pw)) => {
            assert_ok(&conn.call(&["AUTH", pw]), &format!("{what}: AUTH"));
            assert_hello(&conn.call(&["HELLO", "3"]), 3, &format!("{what}: HELLO 3"));
        }
        (true, _, None) => {
            assert_hello(&conn.call(&["HELLO", "3"]), 3, &format!("{what}: HELLO 3"));
        }
    }
    let mut fire_and_forget: Vec<Vec<&str>> = Vec::new();
    if let Some(name) = name {
        fire_and_forget.push(vec!["CLIENT", "SETNAME", name]);
    }
    fire_and_forget.push(vec!["CLIENT", "SETINFO", "LIB-NAME", "jedis"]);
    fire_and_forget.push(vec!["CLIENT", "SETINFO", "LIB-VER", "5.2.0"]);
    let commands: Vec<&[&str]> = fire_and_forget.iter().map(Vec::as_slice).collect();
    for (command, reply) in commands.iter().zip(conn.pipeline(&commands)) {
        assert_ok(&reply, &format!("{what}: {command:?}"));
    }
    if db > 0 {
        assert_ok(
            &conn.call(&["SELECT", &db.to_string()]),
            &format!("{what}: SELECT"),
        );
    }
    conn
}

/// Stand-in for Jedis 5 (Maven Central is unreachable here): the replay above, with the default
/// `DefaultJedisClientConfig`, with password + client name + database, with user + password,
/// and with `RedisProtocol.RESP3` (plain, password only, and user + password).
#[test]
fn jedis_5_handshake_replay() {
    let (plain, secured) = (Pool::plain(), Pool::secured());
    let pw = Some(PASSWORD);

    let mut conn = jedis_connect(plain.port, "Jedis 5 defaults", false, None, None, None, 0);
    use_connection(&mut conn, "jedis-default", 2, None);
    plain.assert_kept("jedis-default");

    let what = "Jedis 5 password+clientName+database";
    let mut conn = jedis_connect(
        secured.port,
        what,
        false,
        None,
        pw,
        Some("jedis-app"),
        SECURED_DB,
    );
    use_connection(&mut conn, "jedis-secured", 2, Some("jedis-app"));
    secured.assert_kept("jedis-secured");

    let what = "Jedis 5 user+password";
    let mut conn = jedis_connect(secured.port, what, false, Some("default"), pw, None, 0);
    use_connection(&mut conn, "jedis-user", 2, None);
    secured.assert_kept("jedis-user");

    let mut conn = jedis_connect(plain.port, "Jedis 5 RESP3", true, None, None, None, 0);
    use_connection(&mut conn, "jedis-resp3", 3, None);
    plain.assert_kept("jedis-resp3");

    let what = "Jedis 5 RESP3 password+clientName+database";
    let mut conn = jedis_connect(
        secured.port,
        what,
        true,
        None,
        pw,
        Some("jedis-app"),
        SECURED_DB,
    );
    use_connection(&mut conn, "jedis-resp3-secured", 3, Some("jedis-app"));
    secured.assert_kept("jedis-resp3-secured");

    let what = "Jedis 5 RESP3 user+password";
    let mut conn = jedis_connect(secured.port, what, true, Some("default"), pw, None, 0);
    use_connection(&mut conn, "jedis-resp3-user", 3, None);
    secured.assert_kept("jedis-resp3-user");
}
