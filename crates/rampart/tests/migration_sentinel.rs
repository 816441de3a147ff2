//! Online key migration in a pool that follows Redis Sentinel, across a failover: three shards
//! (a master and a replica each) watched by three real redis-sentinel processes, pool `alpha`
//! with `sentinels:` and `migrate: true` over two of them, then a reload that adds the third.
//! Midway through the migration the master of one of the two old shards is killed with -9 and
//! Sentinel promotes its replica.
//!
//! What must hold: no client read through rampart ever gets (nil) or another value for a key
//! that exists (requests that fail with an error during the outage are allowed, and counted);
//! the background migrator waits while the shard fails over (`/status` migration `waiting`),
//! then goes on against the promoted master and finishes (`migration done` in the log); every
//! key then reads back right through rampart and is, on each shard's current master (the
//! promoted one for the failed shard), exactly where `rampart route` on the new file places
//! it, with no copy left elsewhere; and nothing of rampart's reaches the killed master's
//! address once the promotion is known (a listener on that port sees only the sentinels).

mod support;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::admin::{post, status};
use support::process::{Rampart, pool_yaml};
use support::random::{Rng, scrambled};
use support::replication::{SETUP_LIMIT, dbsize, info, node, replica_of, wait_caught_up};
use support::resp::{Client, Reply, bulk, cmd, show};
use support::route::place;
use support::sentinel::{Sentinel, majority_master, wait_sentinels_ready};
use support::sentinel_cluster::{Shard, monitors_of};
use support::stats::Json;
use support::{free_port, tail, wait_until};

/// The shards' Sentinel master names, which are also their server names in the pool: the
/// first two serve before the reload, the third is added by it.
const SHARDS: [&str; 3] = ["shardA", "shardB", "shardC"];
/// The shards in the ring before the reload.
const OLD_SHARDS: [usize; 2] = [0, 1];
/// String keys written before the reload.
const KEYS: usize = 15_000;
/// The background migrator's pace: a pass over the old shards takes about 5 s.
const MIGRATE_RATE: u32 = 3_000;
/// The hot reader reads every HOT_STRIDE-th key only (moved on demand early, then read often).
const HOT_STRIDE: usize = 10;
/// The cold reader's pause between requests: it touches keys all over the keyspace, some of
/// them before the migrator, without moving everything on demand.
const COLD_PACE: Duration = Duration::from_millis(2);
/// The share of one old shard's moving keys gone from its master when that master is killed.
const KILL_AT_SHARE: f64 = 0.3;
/// How long a reload, or what follows at once from it, may take.
const LIMIT: Duration = Duration::from_secs(10);
/// How long Sentinel may take to promote the replica, and rampart to follow.
const FAILOVER_LIMIT: Duration = Duration::from_secs(20);
/// How long the whole migration may take.
const MIGRATION_LIMIT: Duration = Duration::from_secs(60);
/// How the log lines of a migration's start and end begin (pool `alpha`).
const STARTED: &str = "pool 'alpha': migration started";
const DONE: &str = "pool 'alpha': migration done";
/// How the admin endpoint's body of a successful reload begins.
const RELOADED: &str = "configuration reloaded from '";

/// The value key number `n` is written with.
fn value_of(n: usize, key: &str) -> String {
    format!("v{n}:{key}")
}

/// Starts the three shards, each a master with a replica linked to it.
fn start_shards() -> Vec<Shard> {
    SHARDS
        .iter()
        .map(|name| {
            let master = node(&[]);
            let replica = Some(replica_of(master.port));
            Shard {
                name: name.to_string(),
                master,
                replica,
            }
        })
        .collect()
}

/// Pool `alpha` on `port` following `sentinels`, migrating at MIGRATE_RATE, over the shards
/// `members` (indexes into `shards`), each named after its Sentinel master name and
/// configured at its first master's address.
fn alpha(port: u16, shards: &[Shard], sentinels: &[Sentinel], members: &[usize]) -> String {
    let mut directives = format!(
        "  hash: fnv1a_64\n  distribution: ketama\n  timeout: 1000\n  failover_wait_ms: 10000\n  \
         migrate: true\n  migrate_rate: {MIGRATE_RATE}\n  sentinels:\n"
    );
    for sentinel in sentinels {
        directives.push_str(&format!("   - 127.0.0.1:{}\n", sentinel.port));
    }
    let servers: Vec<String> = members
        .iter()
        .map(|&index| {
            format!(
                "127.0.0.1:{}:1 {}",
                shards[index].master.port, shards[index].name
            )
        })
        .collect();
    pool_yaml("alpha", port, &directives, &servers)
}

/// Replaces the proxy's configuration file with `yaml`, as an operator's tool would: written
/// beside it, then renamed over it.
fn install(proxy: &Rampart, yaml: &str) {
    let next = proxy.dir.path().join("rampart.yml.next");
    fs::write(&next, yaml).expect("write the next configuration");
    fs::rename(&next, &proxy.config).expect("rename it over the configuration file");
}

/// A copy of a configuration in the proxy's directory under `name`, for `rampart route`.
fn keep_copy(proxy: &Rampart, name: &str, yaml: &str) -> PathBuf {
    let path = proxy.dir.path().join(name);
    fs::write(&path, yaml).expect("write a copy of a configuration");
    path
}

/// The lines of rampart's log holding `needle`.
fn log_lines(proxy: &Rampart, needle: &str) -> Vec<String> {
    proxy
        .log_text()
        .lines()
        .filter(|line| line.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Waits, for up to `limit`, until rampart's log holds a line with `needle`, failing at once
/// if rampart ends; returns the first one.
fn wait_log(proxy: &mut Rampart, needle: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(line) = log_lines(proxy, needle).into_iter().next() {
            return line;
        }
        assert!(
            !proxy.has_exited(),
            "rampart ended while waiting for {needle:?}; its log:\n{}",
            tail(&proxy.log_text(), 40)
        );
        assert!(
            Instant::now() < deadline,
            "no {needle:?} line after {limit:?}; /status pool alpha: {}\nrampart log:\n{}",
            alpha_status(proxy.admin_port),
            tail(&proxy.log_text(), 40)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The N and S of a `migration done: N keys moved in S s` line.
fn done_numbers(line: &str) -> (u64, f64) {
    let after = &line[line
        .find(DONE)
        .unwrap_or_else(|| panic!("no {DONE:?} in {line}"))
        + DONE.len()..];
    let words: Vec<&str> = after.trim_start_matches(':').split_whitespace().collect();
    match words.as_slice() {
        [moved, "keys", "moved", "in", seconds, "s", ..] => (
            moved
                .parse()
                .unwrap_or_else(|_| panic!("a count in {line}")),
            seconds
                .parse()
                .unwrap_or_else(|_| panic!("seconds in {line}")),
        ),
        _ => panic!("`{DONE}: N keys moved in S s` in {line}"),
    }
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

/// A shard's object in pool `alpha`'s `/status`.
fn shard_status(pool: &Value, name: &str) -> Value {
    pool["shards"]
        .as_array()
        .unwrap_or_else(|| panic!("shards in /status: {pool}"))
        .iter()
        .find(|shard| shard["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("shard {name} in /status: {pool}"))
}

/// `127.0.0.1:PORT`, as `/status` and `rampart route` write addresses.
fn address(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// The shard (index into SHARDS) `rampart route` names for each key under `config`.
fn shards_of(config: &Path, keys: &[String]) -> Vec<usize> {
    place(config, Some("alpha"), &[], keys)
        .iter()
        .map(|placed| {
            SHARDS
                .iter()
                .position(|name| *name == placed.server)
                .unwrap_or_else(|| panic!("route names an unknown server: {placed:?}"))
        })
        .collect()
}

/// Every key in database 0 of the server on `port`.
fn keys_on(port: u16) -> HashSet<Vec<u8>> {
    match Client::open(port).call_str(&["KEYS", "*"]) {
        Reply::Array(Some(items)) => items
            .into_iter()
            .map(|item| match item {
                Reply::Bulk(Some(key)) => key,
                other => panic!("KEYS on {port} gave {other:?}"),
            })
            .collect(),
        other => panic!("KEYS on {port} gave {other:?}"),
    }
}

/// What the readers saw.
#[derive(Default)]
struct Tally {
    requests: u64,
    right: u64,
    /// (nil) for a key that exists.
    missing: u64,
    /// Another value than the key holds.
    wrong: u64,
    /// Error replies and broken connections (allowed during the outage).
    errors: u64,
    /// When the errors came, in seconds from the readers' start.
    error_times: Vec<f64>,
    samples: Vec<String>,
}

impl Tally {
    fn note(&mut self, what: String) {
        if self.samples.len() < 20 {
            self.samples.push(what);
        }
    }

    fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.right += other.right;
        self.missing += other.missing;
        self.wrong += other.wrong;
        self.errors += other.errors;
        self.error_times.extend(other.error_times);
        for sample in other.samples {
            self.note(sample);
        }
    }
}

/// Two client threads reading through the proxy, each reply checked against the key's value:
/// a hot one, unpaced, over every HOT_STRIDE-th key, and a cold one, paced, over all keys.
struct Readers {
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    origin: Instant,
    threads: Vec<JoinHandle<Tally>>,
}

impl Readers {
    fn start(port: u16, keys: &Arc<Vec<String>>) -> Readers {
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let origin = Instant::now();
        let threads = [(HOT_STRIDE, None), (1, Some(COLD_PACE))]
            .into_iter()
            .enumerate()
            .map(|(seed, (stride, pace))| {
                let (keys, stop, requests) =
                    (Arc::clone(keys), Arc::clone(&stop), Arc::clone(&requests));
                std::thread::spawn(move || {
                    let reader = Reader {
                        port,
                        keys: &keys,
                        stride,
                        pace,
                        seed: seed as u64,
                        origin,
                    };
                    reader.run(&stop, &requests)
                })
            })
            .collect();
        let readers = Readers {
            stop,
            requests,
            origin,
            threads,
        };
        wait_until("the readers to get going", LIMIT, || {
            readers.requests() >= 200
        });
        readers
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Seconds since the readers started.
    fn now(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }

    fn stop(mut self) -> Tally {
        self.stop.store(true, Ordering::Release);
        let mut tally = Tally::default();
        for thread in self.threads.drain(..) {
            tally.merge(thread.join().expect("a reader thread"));
        }
        tally
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// One reader: random keys among every `stride`-th, one GET at a time on its own connection,
/// `pace` between requests if given.
struct Reader<'k> {
    port: u16,
    keys: &'k [String],
    stride: usize,
    pace: Option<Duration>,
    seed: u64,
    origin: Instant,
}

impl Reader<'_> {
    fn run(&self, stop: &AtomicBool, requests: &AtomicU64) -> Tally {
        let mut tally = Tally::default();
        let mut rng = Rng::new(self.seed);
        let mut client: Option<Client> = None;
        let choices = self.keys.len().div_ceil(self.stride) as u64;
        while !stop.load(Ordering::Acquire) {
            let Some(connection) = client.as_mut() else {
                match Client::connect(self.port) {
                    Ok(connection) => client = Some(connection),
                    Err(error) => {
                        let at = self.origin.elapsed().as_secs_f64();
                        tally.errors += 1;
                        tally.error_times.push(at);
                        tally.note(format!("+{at:.3}s reader {}: connect: {error}", self.seed));
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                continue;
            };
            let n = rng.below(choices) as usize * self.stride;
            let key = &self.keys[n];
            let at = self.origin.elapsed().as_secs_f64();
            tally.requests += 1;
            requests.fetch_add(1, Ordering::Relaxed);
            let sent = Instant::now();
            let reply = connection.try_call(&[b"GET", key.as_bytes()]);
            let took = sent.elapsed().as_millis();
            match reply {
                Err(error) => {
                    tally.errors += 1;
                    tally.error_times.push(at);
                    tally.note(format!("+{at:.3}s GET {key} ({took} ms): {error}"));
                    client = None;
                }
                Ok(Reply::Error(error)) => {
                    tally.errors += 1;
                    tally.error_times.push(at);
                    tally.note(format!("+{at:.3}s GET {key} ({took} ms): -{error}"));
                }
                Ok(reply) if reply == bulk(value_of(n, key)) => tally.right += 1,
                Ok(Reply::Bulk(None)) => {
                    tally.missing += 1;
                    tally.note(format!("+{at:.3}s GET {key} read (nil)"));
                }
                Ok(reply) => {
                    tally.wrong += 1;
                    tally.note(format!(
                        "+{at:.3}s GET {key} read {reply:?}, not {:?}",
                        value_of(n, key)
                    ));
                }
            }
            if let Some(pace) = self.pace {
                std::thread::sleep(pace);
            }
        }
        tally
    }
}

/// A listener on the killed master's port once the promotion is known: it records the first
/// command of every connection made to that address (Sentinel's, which keeps probing the old
/// master as a replica of the new one, start with `CLIENT SETNAME sentinel-...`).
struct Tripwire {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Tripwire {
    fn listen(port: u16) -> Tripwire {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|error| panic!("listen on the killed master's port {port}: {error}"));
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let seen = Arc::clone(&seen);
                            std::thread::spawn(move || {
                                let first = stream
                                    .set_nonblocking(false)
                                    .and_then(|()| Client::over(stream, Duration::from_secs(2)))
                                    .and_then(|mut client| client.read_reply());
                                seen.lock().unwrap().push(describe_first(first));
                            });
                        }
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        Err(error) => seen.lock().unwrap().push(format!("accept: {error}")),
                    }
                }
            })
        };
        Tripwire {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// The first command of each connection so far.
    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Tripwire {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A connection's first command as words, or what came instead.
fn describe_first(first: io::Result<Reply>) -> String {
    match first {
        Ok(Reply::Array(Some(words))) => words
            .iter()
            .map(|word| word.text().unwrap_or_else(|| format!("{word:?}")))
            .collect::<Vec<_>>()
            .join(" "),
        Ok(other) => format!("{other:?}"),
        Err(error) => format!("nothing ({error})"),
    }
}

/// Whether a first command is a sentinel's (`CLIENT SETNAME sentinel-...`).
fn is_sentinel(first: &str) -> bool {
    let words: Vec<&str> = first.split(' ').collect();
    matches!(words.as_slice(), [client, setname, name]
        if client.eq_ignore_ascii_case("client")
            && setname.eq_ignore_ascii_case("setname")
            && name.starts_with("sentinel-"))
}

/// 15 000 keys in pool `alpha` (shards A and B), three sentinels watching A, B and C; the
/// reload adds C, migrating at 3 000 keys/s while a hot and a cold reader read through
/// rampart. Once 30% of one old shard's moving keys have left its master, that
/// master is killed with -9. Asserts: the kill came mid-migration; rampart sees the master
/// down and its migrator waits, then rampart follows Sentinel to the promoted replica; the
/// migration ends (`migration done: N keys moved`, 0 < N <= the keys whose server changed);
/// no reader got (nil) or a wrong value (errors are counted, not failed); every key reads
/// back right through rampart and sits on the current master of the shard `rampart route`
/// names for the new file, and on no other current master; and after the promotion no
/// connection but Sentinel's reaches the killed master's port. Prints the numbers.
#[test]
fn a_sentinel_pool_migrates_between_current_masters_across_a_failover() {
    let test_start = Instant::now();
    let mut shards = start_shards();
    let monitors = monitors_of(&shards);
    let sentinels = Sentinel::start_group(&[monitors.clone(), monitors.clone(), monitors]);
    wait_sentinels_ready(&sentinels);
    let port = free_port();
    let before = alpha(port, &shards, &sentinels, &OLD_SHARDS);
    let after = alpha(port, &shards, &sentinels, &[0, 1, 2]);
    let mut proxy = Rampart::start(&before, &[port], &["--workers", "2"]);
    let old_file = keep_copy(&proxy, "two.yml", &before);
    let new_file = keep_copy(&proxy, "three.yml", &after);
    for sentinel in &sentinels {
        wait_until(
            &format!("rampart subscribed to sentinel {}", sentinel.port),
            SETUP_LIMIT,
            || sentinel.subscribers() >= 1,
        );
    }

    // The keys, through the proxy, and replicated before anything fails.
    let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(|n| scrambled("msent:", n)).collect());
    let mut client = Client::open(port);
    for (chunk, block) in keys.chunks(1000).enumerate() {
        let commands: Vec<Vec<Vec<u8>>> = block
            .iter()
            .enumerate()
            .map(|(i, key)| cmd(&["SET", key, &value_of(chunk * 1000 + i, key)]))
            .collect();
        for (command, reply) in commands.iter().zip(client.pipeline(&commands)) {
            assert!(reply.is_ok(), "{} gave {reply:?}", show(command));
        }
    }
    for shard in &shards {
        let replica = shard.replica.as_ref().expect("a replica");
        wait_caught_up(shard.master.port, replica.port);
    }
    let old_places = shards_of(&old_file, &keys);
    let new_places = shards_of(&new_file, &keys);
    let held: Vec<i64> = shards
        .iter()
        .map(|shard| dbsize(shard.master.port))
        .collect();
    for shard in OLD_SHARDS {
        let routed = old_places.iter().filter(|&&on| on == shard).count() as i64;
        assert_eq!(
            held[shard], routed,
            "{} holds what route places on it",
            SHARDS[shard]
        );
    }
    assert_eq!(held[2], 0, "shardC is not in the ring yet");
    // Per old shard, how many of its keys go to shardC.
    let moving: Vec<u64> = (0..SHARDS.len())
        .map(|shard| {
            old_places
                .iter()
                .zip(&new_places)
                .filter(|&(&old, &new)| old == shard && new != shard)
                .count() as u64
        })
        .collect();
    let moving_total: u64 = moving.iter().sum();
    assert!(
        moving[0] > 1_000 && moving[1] > 1_000,
        "keys moving from each old shard: {moving:?}"
    );

    // The reload, with the readers on.
    let readers = Readers::start(port, &keys);
    install(&proxy, &after);
    let reloaded_at = readers.now();
    let (code, body) = post(proxy.admin_port, "/reload");
    assert_eq!(code, 200, "POST /reload: {body}");
    assert!(body.contains(RELOADED), "a reload summary: {body}");
    wait_log(&mut proxy, STARTED, LIMIT);

    // Mid-migration: the master of the old shard whose moves are furthest along goes, once
    // 30% of its moving keys have left it (a tenth go at once: the hot reader's).
    let mut victim = None;
    wait_until(
        "30% of one old shard's moving keys gone from its master",
        MIGRATION_LIMIT,
        || {
            assert!(
                log_lines(&proxy, DONE).is_empty(),
                "the migration ended before the failover"
            );
            let gone: Vec<(usize, f64)> = OLD_SHARDS
                .iter()
                .map(|&shard| {
                    let left = held[shard] - dbsize(shards[shard].master.port);
                    (shard, left as f64 / moving[shard] as f64)
                })
                .collect();
            victim = gone
                .into_iter()
                .filter(|&(_, share)| share >= KILL_AT_SHARE)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            victim.is_some()
        },
    );
    let (failed, share_at_kill) = victim.expect("a shard to fail over");
    let migration_at_kill = alpha_status(proxy.admin_port)["migration"].clone();
    let old_master = shards[failed].master.port;
    let promoted = shards[failed].replica.as_ref().expect("a replica").port;
    let killed_at = Instant::now();
    let kill_offset = readers.now();
    shards[failed].master.kill();
    assert!(
        share_at_kill < 1.0,
        "{}'s moves were all done before its master was killed ({share_at_kill:.2})",
        SHARDS[failed]
    );
    assert!(
        migration_at_kill["running"] == true
            && migration_at_kill["moved"]
                .as_u64()
                .is_some_and(|moved| moved > 0 && moved < moving_total),
        "the migration runs with some keys moved, not all, when the master is killed: \
         {migration_at_kill}"
    );

    // The failover: rampart sees the master down, its migrator waits, then it follows the
    // promotion.
    let (mut down_seen, mut waiting_seen, mut switched) = (None, None, None);
    let mut sentinels_agree = None;
    let mut last = Value::Null;
    let deadline = killed_at + FAILOVER_LIMIT;
    while switched.is_none() || sentinels_agree.is_none() {
        assert!(
            Instant::now() < deadline,
            "{} did not fail over to {promoted} within {FAILOVER_LIMIT:?}; /status: {last}\n\
             rampart log:\n{}",
            SHARDS[failed],
            tail(&proxy.log_text(), 40)
        );
        last = alpha_status(proxy.admin_port);
        let shard = shard_status(&last, SHARDS[failed]);
        let since = killed_at.elapsed();
        if shard["master_down"] == true {
            down_seen.get_or_insert(since);
        }
        if last["migration"]["waiting"] == true {
            waiting_seen.get_or_insert(since);
        }
        if switched.is_none() && shard["master"] == address(promoted).as_str() {
            switched = Some(since);
        }
        if sentinels_agree.is_none()
            && majority_master(&sentinels, SHARDS[failed]) == Some(promoted)
        {
            sentinels_agree = Some(since);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let switched = switched.expect("rampart followed the promotion");
    let tripwire = Tripwire::listen(old_master);
    assert_eq!(
        info(promoted, &["replication"])
            .get("role")
            .map(String::as_str),
        Some("master"),
        "the promoted replica reports role:master"
    );

    let done = wait_log(&mut proxy, DONE, MIGRATION_LIMIT);
    let done_at = readers.now();
    let (moved, seconds) = done_numbers(&done);
    let tally = readers.stop();
    let after_done = alpha_status(proxy.admin_port);
    let stats = Json::parse(&proxy.stats());
    let scanned = stats.get("alpha").get("migration_scanned").num();

    let error_span = match (
        tally.error_times.iter().copied().reduce(f64::min),
        tally.error_times.iter().copied().reduce(f64::max),
    ) {
        (Some(first), Some(last)) => format!(
            "from {:+.3} s to {:+.3} s from the kill",
            first - kill_offset,
            last - kill_offset
        ),
        _ => "none".to_string(),
    };
    println!(
        "migration across a failover: {KEYS} keys, {moving_total} change server ({} from shardA, \
         {} from shardB); migration done: {moved} keys moved by the migrator in {seconds:.1} s \
         (the rest on demand), {scanned} keys scanned in all its passes; reloaded at +{reloaded_at:.3}s, {} killed at +{kill_offset:.3}s \
         with {:.0}% of its moving keys gone ({migration_at_kill}), done by +{done_at:.3}s",
        moving[0],
        moving[1],
        SHARDS[failed],
        share_at_kill * 100.0
    );
    println!(
        "failover of {}: rampart saw the master down after {}, its migrator waiting after {}, \
         followed the promotion to {promoted} after {:.3} s; the sentinels' majority named it \
         after {:.3} s",
        SHARDS[failed],
        down_seen.map_or("never".into(), |at| format!("{:.3} s", at.as_secs_f64())),
        waiting_seen.map_or("never".into(), |at| format!("{:.3} s", at.as_secs_f64())),
        switched.as_secs_f64(),
        sentinels_agree.expect("agreed").as_secs_f64()
    );
    println!(
        "readers: {} requests, {} right, {} (nil), {} wrong, \
         {} errors ({error_span})",
        tally.requests, tally.right, tally.missing, tally.wrong, tally.errors
    );

    for sample in &tally.samples {
        println!("  reader: {sample}");
    }
    let excerpt: Vec<String> = proxy
        .log_text()
        .lines()
        .filter(|line| {
            ["migration", "migrator", "now has master", "sentinel event"]
                .iter()
                .any(|needle| line.contains(needle))
        })
        .take(30)
        .map(str::to_string)
        .collect();
    println!(
        "rampart log, migration and failover lines:\n{}",
        excerpt.join("\n")
    );
    let when = format!(
        "reloaded at +{reloaded_at:.3}s, {} killed at +{kill_offset:.3}s, done by +{done_at:.3}s",
        SHARDS[failed]
    );
    assert!(
        tally.missing == 0 && tally.wrong == 0,
        "of {} reads, {} read (nil) and {} a wrong value ({} errors) ({when}):\n{}\n\
         rampart log:\n{}",
        tally.requests,
        tally.missing,
        tally.wrong,
        tally.errors,
        tally.samples.join("\n"),
        tail(&proxy.log_text(), 40)
    );
    assert!(
        down_seen.is_some() && waiting_seen.is_some(),
        "rampart's /status showed the master down after {down_seen:?} and the migrator \
         waiting after {waiting_seen:?} (both expected before the promotion at {switched:?})\n\
         rampart log:\n{}",
        tail(&proxy.log_text(), 40)
    );
    assert!(
        moved > 0 && moved <= moving_total,
        "{moving_total} keys change server; the log says {moved} moved: {done}"
    );
    assert_eq!(log_lines(&proxy, DONE).len(), 1, "one migration: {done}");

    // Afterwards: the migration is over, rampart on the promoted master.
    wait_until("the migration to leave /status", LIMIT, || {
        let migration = &alpha_status(proxy.admin_port)["migration"];
        migration.is_null() || migration["running"] == false
    });
    let masters: Vec<u16> = SHARDS
        .iter()
        .map(|name| {
            majority_master(&sentinels, name)
                .unwrap_or_else(|| panic!("the sentinels' majority names a master of {name}"))
        })
        .collect();
    assert_eq!(
        masters[failed], promoted,
        "Sentinel's master of the failed shard"
    );
    let pool = alpha_status(proxy.admin_port);
    for (index, name) in SHARDS.iter().enumerate() {
        assert_eq!(
            shard_status(&pool, name)["master"],
            address(masters[index]).as_str(),
            "rampart's master of {name} is Sentinel's: {pool}"
        );
    }

    // Every key reads back right through the proxy.
    let mut client = Client::open(port);
    let mut unreadable = Vec::new();
    for (chunk, block) in keys.chunks(1000).enumerate() {
        let commands: Vec<Vec<Vec<u8>>> = block.iter().map(|key| cmd(&["GET", key])).collect();
        for (i, (key, reply)) in block.iter().zip(client.pipeline(&commands)).enumerate() {
            let n = chunk * 1000 + i;
            if reply != bulk(value_of(n, key)) {
                unreadable.push(format!("{key}: {reply:?}"));
            }
        }
    }
    assert!(
        unreadable.is_empty(),
        "{} of {KEYS} keys do not read back through rampart, first ones:\n{}\nrampart log:\n{}",
        unreadable.len(),
        unreadable[..unreadable.len().min(12)].join("\n"),
        tail(&proxy.log_text(), 40)
    );

    // Every key on the current master of the shard route names, and on no other.
    let stored: Vec<HashSet<Vec<u8>>> = masters.iter().map(|&master| keys_on(master)).collect();
    let mut misplaced = Vec::new();
    for (key, &wanted) in keys.iter().zip(&new_places) {
        let holders: Vec<&str> = (0..SHARDS.len())
            .filter(|&shard| stored[shard].contains(key.as_bytes()))
            .map(|shard| SHARDS[shard])
            .collect();
        if holders != [SHARDS[wanted]] {
            misplaced.push(format!(
                "{key}: route says {}, on the current masters of {holders:?}",
                SHARDS[wanted]
            ));
        }
    }
    let by_shard: BTreeMap<&str, usize> = SHARDS
        .iter()
        .zip(&stored)
        .map(|(name, keys)| (*name, keys.len()))
        .collect();
    assert!(
        misplaced.is_empty(),
        "{} of {KEYS} keys misplaced (current masters {masters:?}; keys held {by_shard:?}), \
         first ones:\n{}",
        misplaced.len(),
        misplaced[..misplaced.len().min(12)].join("\n")
    );
    assert_eq!(
        stored.iter().map(HashSet::len).sum::<usize>(),
        KEYS,
        "the current masters hold other keys than these: {by_shard:?}"
    );

    // Nothing of rampart's reached the killed master's address after the promotion.
    let seen = tripwire.seen();
    let foreign: Vec<&String> = seen.iter().filter(|first| !is_sentinel(first)).collect();
    println!(
        "after the promotion: {} connections to the killed master's port {old_master}, {} of \
         them Sentinel's; keys held by the current masters {by_shard:?}; /status after the \
         migration: {}; test took {:.1} s",
        seen.len(),
        seen.len() - foreign.len(),
        after_done["migration"],
        test_start.elapsed().as_secs_f64()
    );
    assert!(
        foreign.is_empty(),
        "connections other than Sentinel's reached the killed master's port {old_master} after \
         rampart followed the promotion; their first commands: {foreign:?}\nrampart log:\n{}",
        tail(&proxy.log_text(), 40)
    );
}
