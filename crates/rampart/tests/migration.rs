//! Online key migration, against real redis-servers and real clients: a reload that changes the
//! ring of a pool with `migrate: true` (a server added or removed) takes effect at once while
//! every key whose server changed moves to it (Redis MIGRATE ... REPLACE), on demand when a
//! client touches it and in the background, throttled to `migrate_rate`, until the log says
//! `pool 'alpha': migration done: N keys moved in ...`. Under a read/write load no client reads
//! (nil) or an old value; every key of every type keeps its value and TTL and ends on the
//! server `rampart route` names for the new file (and nutcracker agrees); a removed server is
//! drained, then dropped from the stats; `/status`, the stats JSON and `/metrics` report the
//! progress, `moved` counting exactly the keys whose server changed; a rampart killed midway
//! resumes from `<config>.migrating` when started again; a reload that would change the ring
//! again is refused while the pool migrates (`still migrating`), an option change is not; and
//! `rampart rebalance` migrates a pool without `migrate: true`, showing progress until done.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redis::ConnectionLike;
use serde_json::Value;
use support::admin::{get, post, status};
use support::process::{Nutcracker, Rampart, Redis, output_within, pool_yaml};
use support::random::{Rng, scrambled};
use support::resp::{Client, Reply, bulk, cmd, ok, show};
use support::route::place;
use support::stats::{Json, pool_servers};
use support::{free_port, rampart_bin, tail, wait_until};

/// How the log line of a migration's start begins (pool `alpha`).
const STARTED: &str = "pool 'alpha': migration started";
/// How the log line of a migration's end begins (pool `alpha`).
const DONE: &str = "pool 'alpha': migration done";
/// How the log line and the admin endpoint's body of a successful reload begin.
const RELOADED: &str = "configuration reloaded from '";
/// What the log line and the admin endpoint's body of a refused reload say.
const REFUSED: &str = "reload refused:";
/// Why a reload that changes the ring of a migrating pool is refused.
const STILL_MIGRATING: &str = "still migrating";
/// How long a reload, or what follows at once from it, may take.
const LIMIT: Duration = Duration::from_secs(10);
/// How long a whole migration may take (they take a few seconds at the rates used here).
const MIGRATION_LIMIT: Duration = Duration::from_secs(60);
/// Placement as nutcracker's defaults, spelled out: what the tests' route and nutcracker use.
const RING: &str = "  hash: fnv1a_64\n  distribution: ketama\n";

/// Pool `alpha` listening on `port`, with `directives` after the ring's, over the
/// redis-servers `members` (indexes into `redis`), server `redis[N]` named `sN` whatever the
/// others: a server removed leaves the others' names, and so their ring points, alone.
fn alpha(port: u16, directives: &str, redis: &[Redis], members: &[usize]) -> String {
    let servers: Vec<String> = members
        .iter()
        .map(|&index| format!("127.0.0.1:{}:1 s{index}", redis[index].port))
        .collect();
    pool_yaml("alpha", port, &format!("{RING}{directives}"), &servers)
}

/// `migrate: true` at `rate` keys per second.
fn migrating_at(rate: u32) -> String {
    format!("  migrate: true\n  migrate_rate: {rate}\n")
}

/// Replaces the proxy's configuration file with `yaml`, as an operator's tool would: written
/// beside it, then renamed over it.
fn install(proxy: &Rampart, yaml: &str) {
    let next = proxy.dir.path().join("rampart.yml.next");
    fs::write(&next, yaml).expect("write the next configuration");
    fs::rename(&next, &proxy.config).expect("rename it over the configuration file");
}

/// A copy of a configuration in the proxy's directory under `name`, for `rampart route` once
/// the real file has changed.
fn keep_copy(proxy: &Rampart, name: &str, yaml: &str) -> PathBuf {
    let path = proxy.dir.path().join(name);
    fs::write(&path, yaml).expect("write a copy of a configuration");
    path
}

/// Where rampart keeps a running migration's state: beside the configuration file.
fn state_file(config: &Path) -> PathBuf {
    PathBuf::from(format!("{}.migrating", config.display()))
}

/// Waits until rampart handles SIGUSR1 (it may serve before its handlers exist).
fn wait_handlers(proxy: &mut Rampart) {
    wait_until("the SIGUSR1 handler installed", LIMIT, || {
        proxy.process().catches(&[libc::SIGUSR1])
    });
}

/// The lines of rampart's (current) log holding `needle`.
fn log_lines(proxy: &Rampart, needle: &str) -> Vec<String> {
    proxy
        .log_text()
        .lines()
        .filter(|line| line.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Waits, for up to `limit`, until rampart's log holds more than `before` lines with `needle`,
/// failing at once if rampart ends; returns the first new one.
fn wait_log(proxy: &mut Rampart, needle: &str, before: usize, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let lines = log_lines(proxy, needle);
        if lines.len() > before {
            return lines[before].clone();
        }
        assert!(
            !proxy.has_exited(),
            "rampart ended while waiting for {needle:?}; its log:\n{}",
            tail(&proxy.log_text(), 40)
        );
        assert!(
            Instant::now() < deadline,
            "no new {needle:?} line after {limit:?}; /status migration: {}\nrampart log:\n{}",
            migration(proxy.admin_port),
            tail(&proxy.log_text(), 40)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for the migration's `done` line (the `before + 1`-th of the log) and returns it.
fn wait_done(proxy: &mut Rampart, before: usize) -> String {
    wait_log(proxy, DONE, before, MIGRATION_LIMIT)
}

/// The N of a `migration done: N keys moved in ...` line.
fn moved_in(line: &str) -> u64 {
    let after = &line[line
        .find(DONE)
        .unwrap_or_else(|| panic!("no {DONE:?} in {line}"))
        + DONE.len()..];
    after
        .trim_start_matches(':')
        .split_whitespace()
        .next()
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("`{DONE}: N keys moved` in {line}"))
}

/// SIGUSR1, then the log line that reports the reload's outcome, which must be a reload.
fn reload_by_signal(proxy: &mut Rampart) -> String {
    let outcomes = |proxy: &Rampart| {
        proxy
            .log_text()
            .lines()
            .filter(|line| line.contains(RELOADED) || line.contains(REFUSED))
            .count()
    };
    let before = outcomes(proxy);
    proxy.process().signal(libc::SIGUSR1);
    let mut line = String::new();
    wait_until("the reload's outcome in the log", LIMIT, || {
        let lines: Vec<String> = proxy
            .log_text()
            .lines()
            .filter(|line| line.contains(RELOADED) || line.contains(REFUSED))
            .map(str::to_string)
            .collect();
        if let Some(found) = lines.get(before) {
            line = found.clone();
            true
        } else {
            false
        }
    });
    assert!(line.contains(RELOADED), "the reload was refused: {line}");
    line
}

/// `POST /reload`, which must be taken: its answer, the summary.
fn reload_by_admin(proxy: &Rampart) -> String {
    let (code, body) = post(proxy.admin_port, "/reload");
    assert_eq!(code, 200, "POST /reload: {body}");
    assert!(body.contains(RELOADED), "a reload summary: {body}");
    body
}

/// Pool `alpha`'s object in `/status`.
fn alpha_status(admin_port: u16) -> Value {
    let document = status(admin_port);
    document["pools"]
        .as_array()
        .expect("pools in /status")
        .iter()
        .find(|pool| pool["name"] == "alpha")
        .cloned()
        .unwrap_or_else(|| panic!("pool alpha in /status: {document}"))
}

/// Pool `alpha`'s `migration` in `/status` (`null` when it has none).
fn migration(admin_port: u16) -> Value {
    let pool = alpha_status(admin_port);
    assert!(
        pool.get("migration").is_some(),
        "a `migration` field in pool alpha's /status: {pool}"
    );
    pool["migration"].clone()
}

/// A `u64` field of a `/status` migration object.
fn count(migration: &Value, field: &str) -> u64 {
    migration[field]
        .as_u64()
        .unwrap_or_else(|| panic!("a count `{field}` in the migration: {migration}"))
}

/// The server names of pool `alpha` in `/status`, sorted.
fn status_shards(admin_port: u16) -> Vec<String> {
    let pool = alpha_status(admin_port);
    let mut names: Vec<String> = pool["shards"]
        .as_array()
        .unwrap_or_else(|| panic!("shards in /status: {pool}"))
        .iter()
        .map(|shard| shard["name"].as_str().expect("a shard name").to_string())
        .collect();
    names.sort();
    names
}

/// A pool-level field of pool `alpha` in a stats document.
fn alpha_field(stats: &str, name: &str) -> u64 {
    Json::parse(stats).get("alpha").get(name).num()
}

/// The value of `/metrics` sample `name{pool="alpha"}`.
fn metric(admin_port: u16, name: &str) -> f64 {
    let (code, text) = get(admin_port, "/metrics");
    assert_eq!(code, 200, "/metrics: {text}");
    let sample = format!("{name}{{pool=\"alpha\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&sample))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("a sample {sample:?} in /metrics:\n{text}"))
}

/// What a data key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Hash,
    List,
    Set,
    Zset,
    Stream,
}

impl Kind {
    /// What TYPE answers.
    fn type_name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Hash => "hash",
            Kind::List => "list",
            Kind::Set => "set",
            Kind::Zset => "zset",
            Kind::Stream => "stream",
        }
    }
}

/// Four strings in ten keys, then one of each other type, a second hash.
const EVERY_KIND: [Kind; 10] = [
    Kind::String,
    Kind::Hash,
    Kind::List,
    Kind::String,
    Kind::Set,
    Kind::Zset,
    Kind::String,
    Kind::Stream,
    Kind::Hash,
    Kind::String,
];

/// One data key, what it holds and its TTL, all derived from its number: written once before
/// the reload, only read afterwards.
#[derive(Debug, Clone)]
struct Item {
    key: String,
    kind: Kind,
    /// The EXPIRE it was given, in seconds (600 to 3600), if any.
    ttl: Option<u64>,
    /// The value of a string; the values of fields `f0`, `f1`... of a hash; the elements of a
    /// list or set; the members of a sorted set (scores 0, 10, 20...); the `e` field of
    /// stream entries `1-0`, `2-0`...
    elements: Vec<String>,
}

/// `count` data keys `prefix<scrambled n>`, their kinds taken from `kinds` in turn, a third
/// of them with a TTL.
fn items(prefix: &str, count: usize, kinds: &[Kind]) -> Vec<Item> {
    (0..count)
        .map(|n| {
            let mut rng = Rng::new(n as u64 ^ 0x6d69_6772_6174_6521);
            let kind = kinds[n % kinds.len()];
            let ttl = (rng.below(3) == 0).then(|| 600 + rng.below(3001));
            let size = if kind == Kind::String {
                1
            } else {
                1 + rng.below(4) as usize
            };
            let tag = rng.next_u64();
            Item {
                key: scrambled(prefix, n),
                kind,
                ttl,
                elements: (0..size).map(|j| format!("{n:x}.{j}.{tag:x}")).collect(),
            }
        })
        .collect()
}

impl Item {
    /// The commands that create it.
    fn writes(&self) -> Vec<Vec<Vec<u8>>> {
        let key = self.key.as_str();
        let with = |name: &str, args: Vec<String>| {
            let mut command = cmd(&[name, key]);
            command.extend(args.into_iter().map(String::into_bytes));
            command
        };
        let mut commands = match self.kind {
            Kind::String => vec![cmd(&["SET", key, &self.elements[0]])],
            Kind::Hash => vec![with(
                "HSET",
                self.elements
                    .iter()
                    .enumerate()
                    .flat_map(|(j, value)| [format!("f{j}"), value.clone()])
                    .collect(),
            )],
            Kind::List => vec![with("RPUSH", self.elements.clone())],
            Kind::Set => vec![with("SADD", self.elements.clone())],
            Kind::Zset => vec![with(
                "ZADD",
                self.elements
                    .iter()
                    .enumerate()
                    .flat_map(|(j, member)| [(j * 10).to_string(), member.clone()])
                    .collect(),
            )],
            Kind::Stream => self
                .elements
                .iter()
                .enumerate()
                .map(|(j, value)| cmd(&["XADD", key, &format!("{}-0", j + 1), "e", value]))
                .collect(),
        };
        if let Some(ttl) = self.ttl {
            commands.push(cmd(&["EXPIRE", key, &ttl.to_string()]));
        }
        commands
    }

    /// The command that reads all of it.
    fn read(&self) -> Vec<Vec<u8>> {
        let key = self.key.as_str();
        match self.kind {
            Kind::String => cmd(&["GET", key]),
            Kind::Hash => cmd(&["HGETALL", key]),
            Kind::List => cmd(&["LRANGE", key, "0", "-1"]),
            Kind::Set => cmd(&["SMEMBERS", key]),
            Kind::Zset => cmd(&["ZRANGE", key, "0", "-1", "WITHSCORES"]),
            Kind::Stream => cmd(&["XRANGE", key, "-", "+"]),
        }
    }

    /// What `read` answers (RESP2), hashes and sets in sorted order.
    fn expected(&self) -> Reply {
        let array = |items: Vec<Reply>| Reply::Array(Some(items));
        let mut sorted = self.elements.clone();
        sorted.sort();
        match self.kind {
            Kind::String => bulk(&self.elements[0]),
            Kind::Hash => array(
                self.elements
                    .iter()
                    .enumerate()
                    .flat_map(|(j, value)| [bulk(format!("f{j}")), bulk(value)])
                    .collect(),
            ),
            Kind::List => array(self.elements.iter().map(bulk).collect()),
            Kind::Set => array(sorted.iter().map(bulk).collect()),
            Kind::Zset => array(
                self.elements
                    .iter()
                    .enumerate()
                    .flat_map(|(j, member)| [bulk(member), bulk((j * 10).to_string())])
                    .collect(),
            ),
            Kind::Stream => array(
                self.elements
                    .iter()
                    .enumerate()
                    .map(|(j, value)| {
                        array(vec![
                            bulk(format!("{}-0", j + 1)),
                            array(vec![bulk("e"), bulk(value)]),
                        ])
                    })
                    .collect(),
            ),
        }
    }

    /// Checks a reply to `read`: `Missing` for (nil) or an empty collection, `Wrong` for
    /// anything else than what it holds.
    fn judge(&self, reply: &Reply) -> Verdict {
        let missing = match reply {
            Reply::Bulk(None) | Reply::Array(None) | Reply::Null => true,
            Reply::Array(Some(items)) | Reply::Set(items) => items.is_empty(),
            Reply::Map(pairs) => pairs.is_empty(),
            _ => false,
        };
        if missing {
            Verdict::Missing
        } else if self.normalized(reply) == self.expected() {
            Verdict::Right
        } else {
            Verdict::Wrong
        }
    }

    /// A reply to `read` with a hash's pairs and a set's members sorted, as `expected` has
    /// them.
    fn normalized(&self, reply: &Reply) -> Reply {
        let text = |reply: &Reply| reply.text().unwrap_or_default();
        match (self.kind, reply) {
            (Kind::Set, Reply::Array(Some(items)) | Reply::Set(items)) => {
                let mut items = items.clone();
                items.sort_by_key(text);
                Reply::Array(Some(items))
            }
            (Kind::Hash, Reply::Array(Some(flat))) if flat.len() % 2 == 0 => {
                let mut pairs: Vec<(Reply, Reply)> = flat
                    .chunks(2)
                    .map(|pair| (pair[0].clone(), pair[1].clone()))
                    .collect();
                pairs.sort_by_key(|(field, _)| text(field));
                Reply::Array(Some(pairs.into_iter().flat_map(|(f, v)| [f, v]).collect()))
            }
            (Kind::Hash, Reply::Map(pairs)) => {
                let mut pairs = pairs.clone();
                pairs.sort_by_key(|(field, _)| text(field));
                Reply::Array(Some(pairs.into_iter().flat_map(|(f, v)| [f, v]).collect()))
            }
            _ => reply.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Right,
    Missing,
    Wrong,
}

/// Sends `commands` through `port` in pipelines of 1000, asserting that none got an error or
/// (nil).
fn pipeline_all(port: u16, commands: &[Vec<Vec<u8>>]) {
    let mut client = Client::open(port);
    for chunk in commands.chunks(1000) {
        for (command, reply) in chunk.iter().zip(client.pipeline(chunk)) {
            assert!(
                !matches!(reply, Reply::Error(_) | Reply::Bulk(None) | Reply::Null),
                "{} gave {reply:?}",
                show(command)
            );
        }
    }
}

/// Writes every item through `port`.
fn fill(port: u16, items: &[Item]) {
    let commands: Vec<Vec<Vec<u8>>> = items.iter().flat_map(Item::writes).collect();
    pipeline_all(port, &commands);
}

/// Reads every item back through `port` (TYPE, its value, PTTL) and describes what is not as
/// written: another type, a missing or different value, a TTL lost or grown (PTTL must be
/// above 0 and at most the EXPIRE given, or -1 for a key without one).
fn problems(port: u16, items: &[Item]) -> Vec<String> {
    let mut client = Client::open(port);
    let mut found = Vec::new();
    for chunk in items.chunks(400) {
        let commands: Vec<Vec<Vec<u8>>> = chunk
            .iter()
            .flat_map(|item| {
                [
                    cmd(&["TYPE", &item.key]),
                    item.read(),
                    cmd(&["PTTL", &item.key]),
                ]
            })
            .collect();
        let replies = client.pipeline(&commands);
        for (item, replies) in chunk.iter().zip(replies.chunks(3)) {
            let key = &item.key;
            if replies[0] != Reply::Status(item.kind.type_name().into()) {
                found.push(format!(
                    "{key}: TYPE {:?}, written as a {}",
                    replies[0],
                    item.kind.type_name()
                ));
            }
            if item.judge(&replies[1]) != Verdict::Right {
                found.push(format!(
                    "{key}: {} gave {:?}, expected {:?}",
                    show(&item.read()),
                    replies[1],
                    item.expected()
                ));
            }
            let ttl_kept = match (item.ttl, &replies[2]) {
                (Some(ttl), Reply::Integer(left)) => *left > 0 && *left as u64 <= ttl * 1000,
                (None, Reply::Integer(left)) => *left == -1,
                _ => false,
            };
            if !ttl_kept {
                found.push(format!(
                    "{key}: PTTL {:?}, given EXPIRE {:?} s",
                    replies[2], item.ttl
                ));
            }
        }
    }
    found
}

/// Asserts that every item reads back through `port` as written, TTL included.
fn assert_intact(port: u16, items: &[Item], proxy: &Rampart) {
    let found = problems(port, items);
    assert!(
        found.is_empty(),
        "{} problems in {} keys, first ones:\n{}\nrampart log:\n{}",
        found.len(),
        items.len(),
        found[..found.len().min(12)].join("\n"),
        tail(&proxy.log_text(), 30)
    );
}

/// The keys of some items.
fn keys_of(items: &[Item]) -> Vec<String> {
    items.iter().map(|item| item.key.clone()).collect()
}

/// The index in `redis` of the server `rampart route` names for each key under `config`.
fn servers_of(config: &Path, redis: &[Redis], keys: &[String]) -> Vec<usize> {
    let by_address: BTreeMap<String, usize> = redis
        .iter()
        .enumerate()
        .map(|(index, server)| (format!("127.0.0.1:{}", server.port), index))
        .collect();
    place(config, Some("alpha"), &[], keys)
        .iter()
        .map(|placed| {
            *by_address
                .get(&placed.address)
                .unwrap_or_else(|| panic!("route names an unknown server: {placed:?}"))
        })
        .collect()
}

/// How many of `keys` are on another server under `after` than under `before`.
fn changing(before: &Path, after: &Path, redis: &[Redis], keys: &[String]) -> u64 {
    servers_of(before, redis, keys)
        .iter()
        .zip(servers_of(after, redis, keys))
        .filter(|(old, new)| **old != *new)
        .count() as u64
}

/// Asserts that each of `keys` is on the server `rampart route` names for `config` and on no
/// other of `redis`, and that the servers hold nothing else (no copy left behind).
fn assert_placed(config: &Path, redis: &[Redis], keys: &[String]) {
    let stored: Vec<HashSet<Vec<u8>>> = redis
        .iter()
        .map(|server| server.keys(0).into_iter().collect())
        .collect();
    let mut misplaced = Vec::new();
    for (key, wanted) in keys.iter().zip(servers_of(config, redis, keys)) {
        let holders: Vec<usize> = (0..redis.len())
            .filter(|&index| stored[index].contains(key.as_bytes()))
            .collect();
        if holders != [wanted] {
            misplaced.push(format!("{key}: route says s{wanted}, found on {holders:?}"));
        }
    }
    assert!(
        misplaced.is_empty(),
        "{} of {} keys misplaced, first ones:\n{}",
        misplaced.len(),
        keys.len(),
        misplaced[..misplaced.len().min(12)].join("\n")
    );
    let held: Vec<usize> = stored.iter().map(HashSet::len).collect();
    assert_eq!(
        held.iter().sum::<usize>(),
        keys.len(),
        "the servers hold other keys than these (by server: {held:?})"
    );
}

/// What a load saw: requests made, failures counted and the first few described, and each
/// writer's keys with the version it last wrote.
#[derive(Default)]
struct Tally {
    requests: u64,
    /// (nil) or an empty collection for a key that exists.
    missing: u64,
    /// Another value than the key holds, or than its writer last wrote.
    stale: u64,
    /// Error replies and broken connections.
    errors: u64,
    samples: Vec<String>,
    versions: Vec<(String, i64)>,
}

impl Tally {
    fn note(&mut self, what: String) {
        if self.samples.len() < 20 {
            self.samples.push(what);
        }
    }

    fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.missing += other.missing;
        self.stale += other.stale;
        self.errors += other.errors;
        for sample in other.samples {
            self.note(sample);
        }
        self.versions.extend(other.versions);
    }

    /// Fails, with the samples (times from the load's start), `when` (what happened at which
    /// time) and rampart's log, unless no request failed.
    fn assert_clean(&self, when: &str, proxy: &Rampart) {
        assert!(
            self.missing == 0 && self.stale == 0 && self.errors == 0,
            "of {} requests, {} read (nil) or nothing, {} read a wrong or old value, {} failed \
             ({when}):\n{}\nrampart log:\n{}",
            self.requests,
            self.missing,
            self.stale,
            self.errors,
            self.samples.join("\n"),
            tail(&proxy.log_text(), 30)
        );
    }
}

/// Clients through the proxy during a migration: readers (raw RESP connections) reading random
/// data keys, each reply checked against what the key holds; writers (redis-rs connections)
/// each INCRementing keys of its own in turn, checking INCR answers the last version plus one
/// and GET then reads it.
struct Load {
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    origin: Instant,
    threads: Vec<JoinHandle<Tally>>,
}

impl Load {
    /// Starts `readers` readers of `items` and a writer for each list of `versioned` keys
    /// (which hold "0"), and waits until they have made some requests.
    fn start(port: u16, items: &Arc<Vec<Item>>, readers: u64, versioned: &[Vec<String>]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let origin = Instant::now();
        let mut threads = Vec::new();
        for seed in 0..readers {
            let (items, stop, requests) =
                (Arc::clone(items), Arc::clone(&stop), Arc::clone(&requests));
            threads.push(std::thread::spawn(move || {
                read_loop(port, &items, seed, &stop, &requests, origin)
            }));
        }
        for keys in versioned {
            let (keys, stop, requests) = (keys.clone(), Arc::clone(&stop), Arc::clone(&requests));
            threads.push(std::thread::spawn(move || {
                write_loop(port, keys, &stop, &requests, origin)
            }));
        }
        let load = Load {
            stop,
            requests,
            origin,
            threads,
        };
        wait_until("the load to get going", LIMIT, || load.requests() >= 200);
        load
    }

    /// Requests made so far.
    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Seconds since the load started, for failure messages.
    fn now(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }

    fn stop(mut self) -> Tally {
        self.stop.store(true, Ordering::Release);
        let mut tally = Tally::default();
        for thread in self.threads.drain(..) {
            tally.merge(thread.join().expect("a load thread"));
        }
        tally
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// One reader: random items, one request at a time on its own connection, until `stop`.
fn read_loop(
    port: u16,
    items: &[Item],
    seed: u64,
    stop: &AtomicBool,
    requests: &AtomicU64,
    origin: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut rng = Rng::new(seed);
    let mut client: Option<Client> = None;
    while !stop.load(Ordering::Acquire) {
        let Some(connection) = client.as_mut() else {
            match Client::connect(port) {
                Ok(connection) => client = Some(connection),
                Err(error) => {
                    tally.errors += 1;
                    tally.note(format!("reader {seed}: connect: {error}"));
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            continue;
        };
        let item = &items[rng.below(items.len() as u64) as usize];
        let command = item.read();
        let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
        let at = origin.elapsed().as_secs_f64();
        tally.requests += 1;
        requests.fetch_add(1, Ordering::Relaxed);
        match connection.try_call(&args) {
            Err(error) => {
                tally.errors += 1;
                tally.note(format!("+{at:.3}s {}: {error}", show(&command)));
                client = None;
            }
            Ok(Reply::Error(error)) => {
                tally.errors += 1;
                tally.note(format!("+{at:.3}s {}: -{error}", show(&command)));
            }
            Ok(reply) => match item.judge(&reply) {
                Verdict::Right => {}
                Verdict::Missing => {
                    tally.missing += 1;
                    tally.note(format!("+{at:.3}s {} read {reply:?}", show(&command)));
                }
                Verdict::Wrong => {
                    tally.stale += 1;
                    tally.note(format!(
                        "+{at:.3}s {} read {reply:?}, not {:?}",
                        show(&command),
                        item.expected()
                    ));
                }
            },
        }
    }
    tally
}

/// One writer: INCR then GET of each of `keys` in turn on its own redis-rs connection, until
/// `stop`; its tally holds each key's last version.
fn write_loop(
    port: u16,
    keys: Vec<String>,
    stop: &AtomicBool,
    requests: &AtomicU64,
    origin: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let client =
        redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("a redis-rs client");
    let connect = || {
        let connection = client
            .get_connection()
            .expect("a redis-rs connection through the proxy");
        connection
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("a read timeout");
        connection
    };
    let mut connection = connect();
    let mut versions = vec![0i64; keys.len()];
    let mut turn = 0;
    while !stop.load(Ordering::Acquire) {
        let at = turn % keys.len();
        turn += 1;
        let key = &keys[at];
        let when = origin.elapsed().as_secs_f64();
        tally.requests += 2;
        requests.fetch_add(2, Ordering::Relaxed);
        let incremented: redis::RedisResult<i64> =
            redis::cmd("INCR").arg(key).query(&mut connection);
        match incremented {
            Ok(version) if version == versions[at] + 1 => versions[at] = version,
            Ok(version) => {
                tally.stale += 1;
                tally.note(format!(
                    "+{when:.3}s INCR {key} gave {version}, after {} was written",
                    versions[at]
                ));
                versions[at] = version;
            }
            Err(error) => {
                tally.errors += 1;
                tally.note(format!("+{when:.3}s INCR {key}: {error}"));
                if !connection.is_open() {
                    connection = connect();
                }
                // It may or may not have been applied: take what the key holds now.
                if let Ok(Some(now)) = redis::cmd("GET")
                    .arg(key)
                    .query::<Option<i64>>(&mut connection)
                {
                    versions[at] = now;
                }
                continue;
            }
        }
        let read: redis::RedisResult<Option<i64>> =
            redis::cmd("GET").arg(key).query(&mut connection);
        match read {
            Ok(Some(version)) if version == versions[at] => {}
            Ok(Some(version)) => {
                tally.stale += 1;
                tally.note(format!(
                    "+{when:.3}s GET {key} read {version} after INCR gave {}",
                    versions[at]
                ));
            }
            Ok(None) => {
                tally.missing += 1;
                tally.note(format!("+{when:.3}s GET {key} read (nil) after INCR"));
            }
            Err(error) => {
                tally.errors += 1;
                tally.note(format!("+{when:.3}s GET {key}: {error}"));
                if !connection.is_open() {
                    connection = connect();
                }
            }
        }
    }
    tally.versions = keys.into_iter().zip(versions).collect();
    tally
}

/// `writers` lists of `per_writer` keys `ver<w>:<scrambled n>`, written "0" through `port`.
fn versioned_keys(port: u16, writers: usize, per_writer: usize) -> Vec<Vec<String>> {
    let lists: Vec<Vec<String>> = (0..writers)
        .map(|writer| {
            (0..per_writer)
                .map(|n| scrambled(&format!("ver{writer}:"), n))
                .collect()
        })
        .collect();
    let commands: Vec<Vec<Vec<u8>>> = lists
        .iter()
        .flatten()
        .map(|key| cmd(&["SET", key, "0"]))
        .collect();
    pipeline_all(port, &commands);
    lists
}

/// Asserts that each writer's keys hold, through `port`, the version it last wrote.
fn assert_versions(port: u16, tally: &Tally) {
    let mut client = Client::open(port);
    let commands: Vec<Vec<Vec<u8>>> = tally
        .versions
        .iter()
        .map(|(key, _)| cmd(&["GET", key]))
        .collect();
    let replies = client.pipeline(&commands);
    let wrong: Vec<String> = tally
        .versions
        .iter()
        .zip(replies)
        .filter(|((_, version), reply)| *reply != bulk(version.to_string()))
        .map(|((key, version), reply)| format!("{key}: {reply:?}, last written {version}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} written keys do not hold their last version:\n{}",
        wrong.len(),
        tally.versions.len(),
        wrong[..wrong.len().min(12)].join("\n")
    );
}

/// A third server added to a `migrate: true` pool of two holding 100 000 keys of every type
/// (strings, hashes, lists, sets, sorted sets, streams; a third with a TTL), reloaded with
/// SIGUSR1 while three readers and two writers work through the proxy: the migration starts
/// and ends in the log, no read got (nil) or a wrong value and no INCR or GET an old version
/// or an error; afterwards every key has its type, value and TTL (PTTL above 0 and at most
/// the EXPIRE given; -1 without), each writer's keys their last version, every key is on the
/// server `rampart route` names for the new file and on no other, and the real nutcracker
/// on the new file reads 2 000 of the strings back right, i.e. agrees on placement.
#[test]
fn adding_a_server_moves_100k_keys_of_every_type_under_load() {
    let redis: Vec<Redis> = (0..3).map(|_| Redis::start(&[])).collect();
    let port = free_port();
    let directives = migrating_at(50_000);
    let before = alpha(port, &directives, &redis, &[0, 1]);
    let after = alpha(port, &directives, &redis, &[0, 1, 2]);
    let mut proxy = Rampart::start(&before, &[port], &[]);
    wait_handlers(&mut proxy);
    let old_file = keep_copy(&proxy, "two.yml", &before);

    let items = Arc::new(items("mig:", 100_000, &EVERY_KIND));
    fill(port, &items);
    let versioned = versioned_keys(port, 2, 500);
    let mut all_keys = keys_of(&items);
    all_keys.extend(versioned.iter().flatten().cloned());
    assert!(redis[2].keys(0).is_empty(), "s2 is not in the ring yet");
    let load = Load::start(port, &items, 3, &versioned);

    install(&proxy, &after);
    let reloaded_at = load.now();
    let requests_at_reload = load.requests();
    let summary = reload_by_signal(&mut proxy);
    assert!(summary.contains("changed [alpha]"), "{summary}");
    wait_log(&mut proxy, STARTED, 0, LIMIT);
    let done = wait_done(&mut proxy, 0);
    let done_at = load.now();
    let requests_during = load.requests() - requests_at_reload;
    let tally = load.stop();
    let when = format!("reloaded at +{reloaded_at:.3}s, migration done by +{done_at:.3}s");
    tally.assert_clean(&when, &proxy);
    assert!(
        requests_during > 0,
        "the load made no request during the migration ({when})"
    );
    let moving = changing(&old_file, &proxy.config, &redis, &all_keys);
    let moved = moved_in(&done);
    assert!(
        moving > 10_000 && moved > 0 && moved <= moving,
        "{moving} keys change server; the log says {moved} moved: {done}"
    );
    assert_eq!(log_lines(&proxy, DONE).len(), 1, "one migration");

    assert_intact(port, &items, &proxy);
    assert_versions(port, &tally);
    assert_placed(&proxy.config, &redis, &all_keys);

    let nutcracker_port = free_port();
    let nutcracker = Nutcracker::start(
        &alpha(nutcracker_port, "", &redis, &[0, 1, 2]),
        &[nutcracker_port],
    );
    let strings: Vec<&Item> = items
        .iter()
        .filter(|item| item.kind == Kind::String)
        .take(2_000)
        .collect();
    let commands: Vec<Vec<Vec<u8>>> = strings.iter().map(|item| item.read()).collect();
    let replies = Client::open(nutcracker_port).pipeline(&commands);
    let disagreements: Vec<String> = strings
        .iter()
        .zip(&replies)
        .filter(|(item, reply)| item.judge(reply) != Verdict::Right)
        .map(|(item, reply)| format!("{}: {reply:?}", item.key))
        .collect();
    assert!(
        disagreements.is_empty(),
        "nutcracker on {} reads {} of {} keys wrong:\n{}",
        nutcracker.config.display(),
        disagreements.len(),
        strings.len(),
        disagreements[..disagreements.len().min(12)].join("\n")
    );
}

/// Server s1 removed from a `migrate: true` pool of three holding 30 000 keys of every type,
/// under the same load: while its keys move /status lists it as draining; no client read got
/// (nil), a wrong or old value or an error; once done s1 holds no key (DBSIZE 0) and leaves
/// the stats JSON and /status, and every key is intact and where `rampart route` says.
#[test]
fn removing_a_server_drains_it_under_load_then_drops_it() {
    let redis: Vec<Redis> = (0..3).map(|_| Redis::start(&[])).collect();
    let port = free_port();
    let directives = migrating_at(20_000);
    let before = alpha(port, &directives, &redis, &[0, 1, 2]);
    let after = alpha(port, &directives, &redis, &[0, 2]);
    let mut proxy = Rampart::start(&before, &[port], &[]);
    let items = Arc::new(items("drain:", 30_000, &EVERY_KIND));
    fill(port, &items);
    let versioned = versioned_keys(port, 2, 300);
    let mut all_keys = keys_of(&items);
    all_keys.extend(versioned.iter().flatten().cloned());
    let on_s1 = redis[1].keys(0).len();
    assert!(on_s1 > 5_000, "s1 holds {on_s1} keys before the reload");
    assert_eq!(pool_servers(&proxy.stats(), "alpha"), ["s0", "s1", "s2"]);
    let load = Load::start(port, &items, 3, &versioned);

    install(&proxy, &after);
    let reloaded_at = load.now();
    let summary = reload_by_admin(&proxy);
    assert!(summary.contains("changed [alpha]"), "{summary}");
    let running = migration(proxy.admin_port);
    assert_eq!(running["running"], true, "{running}");
    assert_eq!(
        running["draining"],
        serde_json::json!(["s1"]),
        "s1 drains while its keys move: {running}"
    );
    wait_done(&mut proxy, 0);
    let done_at = load.now();
    let tally = load.stop();
    let when = format!("reloaded at +{reloaded_at:.3}s, migration done by +{done_at:.3}s");
    tally.assert_clean(&when, &proxy);

    assert_eq!(
        redis[1].client().call_str(&["DBSIZE"]),
        Reply::Integer(0),
        "the removed server ends empty"
    );
    let mut stats = String::new();
    wait_until("s1 to leave the stats", LIMIT, || {
        stats = proxy.stats();
        pool_servers(&stats, "alpha") == ["s0", "s2"]
    });
    wait_until("s1 to leave /status", LIMIT, || {
        status_shards(proxy.admin_port) == ["s0", "s2"]
    });
    let finished = migration(proxy.admin_port);
    assert!(
        finished.is_null() || finished["draining"] == serde_json::json!([]),
        "nothing drains once done: {finished}"
    );
    assert_intact(port, &items, &proxy);
    assert_versions(port, &tally);
    assert_placed(&proxy.config, &redis, &all_keys);
}

/// A third server added to a pool of 4 000 keys migrating at 1 000 keys/s, no client meanwhile:
/// midway /status shows the migration running with its counts (scanned at least moved, some
/// moved but not all, a remaining estimate, an ETA in seconds, nothing draining), the stats
/// JSON has `migration_running` 1 and the scanned and moved counts after nutcracker's pool
/// counters, and `/metrics` its three samples; once done, the log line, the stats' and
/// `/metrics`' moved counts and /status (if it still shows the migration) all say exactly the
/// number of keys whose server `rampart route` changes between the two files, everything
/// was scanned, and nothing runs any more.
#[test]
fn progress_is_reported_and_moved_counts_exactly_the_keys_whose_server_changed() {
    let redis: Vec<Redis> = (0..3).map(|_| Redis::start(&[])).collect();
    let port = free_port();
    let directives = migrating_at(1_000);
    let before = alpha(port, &directives, &redis, &[0, 1]);
    let after = alpha(port, &directives, &redis, &[0, 1, 2]);
    let mut proxy = Rampart::start(&before, &[port], &[]);
    let old_file = keep_copy(&proxy, "two.yml", &before);
    let new_file = keep_copy(&proxy, "three.yml", &after);
    let items = items("progress:", 4_000, &[Kind::String]);
    fill(port, &items);
    let keys = keys_of(&items);
    let moving = changing(&old_file, &new_file, &redis, &keys);
    assert!(moving > 800, "{moving} keys change server");
    assert!(
        migration(proxy.admin_port).is_null(),
        "no migration before the reload"
    );
    let stats = proxy.stats();
    assert_eq!(alpha_field(&stats, "migration_running"), 0, "{stats}");
    assert_eq!(alpha_field(&stats, "migration_moved"), 0, "{stats}");

    install(&proxy, &after);
    reload_by_admin(&proxy);
    let mut midway = Value::Null;
    wait_until("the migration midway, with an ETA", LIMIT, || {
        midway = migration(proxy.admin_port);
        assert!(
            log_lines(&proxy, DONE).is_empty(),
            "the migration ended before it was seen midway: {midway}"
        );
        midway["running"] == true
            && midway["moved"].as_u64().is_some_and(|moved| moved > 0)
            && midway["eta_seconds"].is_number()
    });
    let (scanned, moved) = (count(&midway, "scanned"), count(&midway, "moved"));
    assert!(moved < moving, "midway: {midway}");
    assert!(scanned >= moved, "midway: {midway}");
    count(&midway, "remaining_estimate");
    assert!(
        midway["eta_seconds"].as_f64().is_some_and(|eta| eta >= 0.0),
        "midway: {midway}"
    );
    assert_eq!(midway["draining"], serde_json::json!([]), "{midway}");

    // The stats document is published every 100 ms: it may lag /status a little.
    let mut stats = String::new();
    wait_until("the stats to show the migration running", LIMIT, || {
        stats = proxy.stats();
        assert!(
            log_lines(&proxy, DONE).is_empty(),
            "the migration ended before the stats showed it running: {stats}"
        );
        alpha_field(&stats, "migration_running") == 1
    });
    assert!(
        alpha_field(&stats, "migration_scanned") >= alpha_field(&stats, "migration_moved"),
        "{stats}"
    );
    let fields = Json::parse(&stats).get("alpha").keys().join(",");
    let position = |name: &str| {
        fields
            .split(',')
            .position(|field| field == name)
            .unwrap_or_else(|| panic!("no {name} in pool alpha's stats: {fields}"))
    };
    let first_server = ["s0", "s1", "s2"].map(position).into_iter().min().unwrap();
    assert!(
        position("fragments") < position("migration_running")
            && position("migration_running") < position("migration_scanned")
            && position("migration_scanned") < position("migration_moved")
            && position("migration_moved") < first_server,
        "the migration fields follow nutcracker's pool counters, before the servers: {fields}"
    );
    wait_until("/metrics to show the migration running", LIMIT, || {
        metric(proxy.admin_port, "rampart_migration_running") == 1.0
    });
    assert!(
        metric(proxy.admin_port, "rampart_migration_keys_scanned_total")
            >= metric(proxy.admin_port, "rampart_migration_keys_moved_total")
    );

    let done = wait_done(&mut proxy, 0);
    assert_eq!(moved_in(&done), moving, "{done}");
    let mut stats = String::new();
    wait_until("the stats to show the migration over", LIMIT, || {
        stats = proxy.stats();
        alpha_field(&stats, "migration_running") == 0
    });
    assert_eq!(alpha_field(&stats, "migration_moved"), moving, "{stats}");
    assert!(
        alpha_field(&stats, "migration_scanned") >= keys.len() as u64,
        "every key of the old servers was scanned: {stats}"
    );
    wait_until("/metrics to show the migration over", LIMIT, || {
        metric(proxy.admin_port, "rampart_migration_running") == 0.0
    });
    assert_eq!(
        metric(proxy.admin_port, "rampart_migration_keys_moved_total"),
        moving as f64
    );
    assert!(metric(proxy.admin_port, "rampart_migration_keys_scanned_total") >= keys.len() as f64);
    let finished = migration(proxy.admin_port);
    assert!(
        finished.is_null() || (finished["running"] == false && count(&finished, "moved") == moving),
        "after the migration: {finished}"
    );
    assert_intact(port, &items, &proxy);
    assert_placed(&proxy.config, &redis, &keys);
}

/// rampart killed (SIGKILL) a third of the way through a migration of 20 000 keys: the state
/// file `<config>.migrating` is there and holds the previous, two-server ring; started again
/// on the same file and ports, rampart at once reads every key right (none (nil)), finishes
/// the migration (logged in its new log), removes the state file, and every key ends where
/// `rampart route` says for the new file.
#[test]
fn a_migration_killed_midway_resumes_after_a_restart() {
    let redis: Vec<Redis> = (0..3).map(|_| Redis::start(&[])).collect();
    let port = free_port();
    let directives = migrating_at(5_000);
    let before = alpha(port, &directives, &redis, &[0, 1]);
    let after = alpha(port, &directives, &redis, &[0, 1, 2]);
    let mut proxy = Rampart::start(&before, &[port], &[]);
    let old_file = keep_copy(&proxy, "two.yml", &before);
    let items = items("resume:", 20_000, &[Kind::String]);
    fill(port, &items);
    let keys = keys_of(&items);
    let state = state_file(&proxy.config);
    assert!(!state.exists(), "no state file before a migration");

    install(&proxy, &after);
    reload_by_admin(&proxy);
    let moving = changing(&old_file, &proxy.config, &redis, &keys);
    let mut progress = Value::Null;
    wait_until("a third of the keys moved", Duration::from_secs(30), || {
        progress = migration(proxy.admin_port);
        progress["moved"]
            .as_u64()
            .is_some_and(|moved| moved * 3 >= moving)
    });
    proxy.process().kill();
    assert!(
        count(&progress, "moved") < moving,
        "the migration was over before rampart was killed: {progress}"
    );
    assert!(
        log_lines(&proxy, DONE).is_empty(),
        "the migration was over before rampart was killed"
    );
    let saved =
        fs::read_to_string(&state).unwrap_or_else(|error| panic!("{}: {error}", state.display()));
    let address = |index: usize| format!("127.0.0.1:{}", redis[index].port);
    assert!(
        saved.contains(&address(0)) && saved.contains(&address(1)) && !saved.contains(&address(2)),
        "the state file holds the previous, two-server ring:\n{saved}"
    );

    proxy.restart(&[port]);
    let commands: Vec<Vec<Vec<u8>>> = items.iter().map(Item::read).collect();
    let replies = Client::open(port).pipeline(&commands);
    let wrong: Vec<String> = items
        .iter()
        .zip(&replies)
        .filter(|(item, reply)| item.judge(reply) != Verdict::Right)
        .map(|(item, reply)| format!("{}: {reply:?}", item.key))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} keys read wrong right after the restart:\n{}\nrampart log:\n{}",
        wrong.len(),
        items.len(),
        wrong[..wrong.len().min(12)].join("\n"),
        tail(&proxy.log_text(), 30)
    );
    wait_done(&mut proxy, 0);
    wait_until("the state file removed", LIMIT, || !state.exists());
    assert_intact(port, &items, &proxy);
    assert_placed(&proxy.config, &redis, &keys);
}

/// While a pool migrates (slowly: 1 000 keys/s), a reload that would add a fourth server is
/// refused (422 from `POST /reload`, logged) with `still migrating`: the ring stays the
/// three-server one (keys written meanwhile go where it says, none to s3); a reload that only
/// changes `timeout` is taken and the migration goes on to its one end; a ring change is
/// taken again after it.
#[test]
fn a_ring_change_is_refused_while_migrating_and_an_option_change_is_taken() {
    let redis: Vec<Redis> = (0..4).map(|_| Redis::start(&[])).collect();
    let port = free_port();
    let directives = migrating_at(1_000);
    let before = alpha(port, &directives, &redis, &[0, 1]);
    let three = alpha(port, &directives, &redis, &[0, 1, 2]);
    let four = alpha(port, &directives, &redis, &[0, 1, 2, 3]);
    let slower = alpha(
        port,
        &format!("{directives}  timeout: 4000\n"),
        &redis,
        &[0, 1, 2],
    );
    let mut proxy = Rampart::start(&before, &[port], &[]);
    let three_file = keep_copy(&proxy, "three.yml", &three);
    let items = items("refused:", 4_000, &[Kind::String]);
    fill(port, &items);

    install(&proxy, &three);
    reload_by_admin(&proxy);
    assert_eq!(migration(proxy.admin_port)["running"], true);

    install(&proxy, &four);
    let (code, body) = post(proxy.admin_port, "/reload");
    assert_eq!(code, 422, "a ring change while migrating: {body}");
    assert!(
        body.contains(REFUSED) && body.contains(STILL_MIGRATING),
        "{body}"
    );
    let refusal = wait_log(&mut proxy, REFUSED, 0, LIMIT);
    assert!(refusal.contains(STILL_MIGRATING), "{refusal}");
    assert_eq!(status_shards(proxy.admin_port), ["s0", "s1", "s2"]);
    let written: Vec<String> = (0..300).map(|n| scrambled("meanwhile:", n)).collect();
    let sets: Vec<Vec<Vec<u8>>> = written.iter().map(|key| cmd(&["SET", key, key])).collect();
    for (key, reply) in written.iter().zip(Client::open(port).pipeline(&sets)) {
        assert_eq!(reply, ok(), "SET {key}");
    }
    for (key, server) in written
        .iter()
        .zip(servers_of(&three_file, &redis, &written))
    {
        assert_eq!(
            redis[server].get(key).as_deref(),
            Some(key.as_str()),
            "{key} on s{server}, as the running three-server ring places it"
        );
    }
    assert!(redis[3].keys(0).is_empty(), "the refused server got keys");

    install(&proxy, &slower);
    let summary = reload_by_admin(&proxy);
    assert!(summary.contains("changed [alpha]"), "{summary}");
    assert_eq!(
        migration(proxy.admin_port)["running"],
        true,
        "an option change leaves the migration running"
    );
    wait_done(&mut proxy, 0);
    assert_eq!(log_lines(&proxy, STARTED).len(), 1, "one migration");
    assert_eq!(log_lines(&proxy, DONE).len(), 1, "one migration");
    assert_intact(port, &items, &proxy);
    let mut all_keys = keys_of(&items);
    all_keys.extend(written);
    assert_placed(&proxy.config, &redis, &all_keys);

    install(&proxy, &four);
    reload_by_admin(&proxy);
    wait_log(&mut proxy, STARTED, 1, LIMIT);
}

/// `rampart rebalance --admin` on a pool without `migrate: true` grown from two servers to
/// three: it exits 1 with the refusal while the file is broken; on the good file it prints the
/// reload summary, progress lines with `moved` counts and last `migration done`, and exits
/// 0; every key then reads right and is where `rampart route` says.
#[test]
fn rampart_rebalance_migrates_a_pool_without_migrate_and_reports_until_done() {
    let redis: Vec<Redis> = (0..3).map(|_| Redis::start(&[])).collect();
    let port = free_port();
    let before = alpha(port, "", &redis, &[0, 1]);
    let after = alpha(port, "", &redis, &[0, 1, 2]);
    let mut proxy = Rampart::start(&before, &[port], &[]);
    let admin = format!("127.0.0.1:{}", proxy.admin_port);
    let items = items(
        "rebalance:",
        6_000,
        &[Kind::String, Kind::Hash, Kind::List, Kind::Zset],
    );
    fill(port, &items);
    let rebalance = || {
        output_within(
            Command::new(rampart_bin()).args(["rebalance", "--admin", &admin]),
            MIGRATION_LIMIT,
        )
    };

    install(
        &proxy,
        &alpha(port, "  timeout: nope\n", &redis, &[0, 1, 2]),
    );
    let refused = rebalance();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(said.contains(REFUSED), "the refusal: {said}");
    assert!(redis[2].keys(0).is_empty(), "nothing moved on a refusal");

    install(&proxy, &after);
    let run = rebalance();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    assert!(stdout.contains(RELOADED), "the reload summary: {stdout}");
    assert!(
        stdout.lines().any(|line| line.contains("moved")),
        "progress with moved counts: {stdout}"
    );
    let last = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default();
    assert!(last.contains("migration done"), "the last line: {stdout}");
    wait_log(&mut proxy, DONE, 0, LIMIT);
    assert_intact(port, &items, &proxy);
    assert_placed(&proxy.config, &redis, &keys_of(&items));
}
