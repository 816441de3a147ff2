//! Online key migration on a VRRP pair, on network namespaces the tests create: two rampart
//! nodes with `--vrrp` in front of three redis-servers of a host of their own, pool `alpha`
//! with `migrate: true`. Reloaded as documented (the BACKUP first, then the MASTER) with a
//! third server, only the MASTER's background migrator reads the old servers: the BACKUP knows
//! of the migration (`/status`, its `<config>.migrating`) but its `migration_scanned` stays 0.
//! When the master is killed midway, the backup takes the virtual IP and its migrator takes
//! over, moving only what is left. A client of the virtual IP never reads a nil or a wrong
//! value, and every key ends on the server `rampart route` names for the new file, and only
//! there. Needs root.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::netns::{Testbed, enter};
use support::process::Guarded;
use support::resp::{Client, Reply, cmd};
use support::route::place;
use support::stats::Json;
use support::vrrp::{Instance, Node, PROXY_PORT, ping, show_logs, wait_for_vip};
use support::{tail, wait_until};

/// Hosts: two proxies, a client of the virtual IP, and the redis-servers.
const A: usize = 0;
const B: usize = 1;
const CLIENT: usize = 2;
const STORE: usize = 3;

/// The ports of the redis-servers on the store host's bed address; server N is `sN`.
const BACKEND_PORTS: [u16; 3] = [7001, 7002, 7003];
/// The admin endpoint's default address, on each host's own loopback.
const ADMIN_PORT: u16 = 22223;
/// How many string keys the pool holds.
const KEYS: usize = 20_000;
/// Every how many keys the client of the virtual IP reads one during the migration.
const SAMPLE_EVERY: usize = 10;
/// The pool's `migrate_rate`: 20,000 keys take a pass of about 5 s.
const RATE: u32 = 4000;
/// The master is killed once its migrator has moved this share of the keys that move...
const KILL_AT: f64 = 0.25;
/// ... and it must not have gone past this one by then.
const KILL_BEFORE: f64 = 0.80;
/// How many keys the backup's count may exceed what the master left: a MIGRATE whose batch
/// lost a key to a client's move between SCAN and MIGRATE still counts the whole batch.
const RACE_SLACK: u64 = 50;

/// How the log lines of a reload's outcome begin.
const RELOADED: &str = "configuration reloaded from '";
const REFUSED: &str = "reload refused:";
/// How the log lines of a migration's start and end begin.
const STARTED: &str = "pool 'alpha': migration started";
const DONE: &str = "pool 'alpha': migration done";

/// How long a reload, a takeover or the first steps after them may take.
const LIMIT: Duration = Duration::from_secs(10);
/// How long the backup's share of the migration may take.
const MIGRATION_LIMIT: Duration = Duration::from_secs(40);

/// The bed: the redis-servers (dropped, so killed, before the bed goes) and where files go.
struct Bed {
    redis: Vec<Guarded>,
    bed: Testbed,
    dir: tempfile::TempDir,
    vip: Ipv4Addr,
}

impl Bed {
    fn new() -> Bed {
        let bed = Testbed::new(4);
        let dir = tempfile::tempdir().unwrap();
        let address = bed.address(STORE);
        let redis = BACKEND_PORTS
            .iter()
            .map(|&port| {
                let log = dir.path().join(format!("redis-{port}.log"));
                let (port_text, bind) = (port.to_string(), address.to_string());
                let data = dir.path().display().to_string();
                let process = bed.spawn(
                    STORE,
                    "redis-server",
                    &[
                        "--port",
                        port_text.as_str(),
                        "--bind",
                        bind.as_str(),
                        "--protected-mode",
                        "no",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        data.as_str(),
                    ],
                    &log,
                );
                wait_until("a redis-server in the bed", LIMIT, || {
                    bed.run_in(STORE, move || ping(SocketAddr::from((address, port))))
                });
                process
            })
            .collect();
        let vip = bed.subnet_address(100);
        Bed {
            redis,
            bed,
            dir,
            vip,
        }
    }

    /// Pool `alpha` on every address of a proxy host, with `migrate: true`, over the
    /// redis-servers `members` (server N named `sN`, so adding one leaves the others' ring
    /// points alone).
    fn yaml(&self, members: &[usize]) -> String {
        let mut yaml = format!(
            "alpha:\n  listen: 0.0.0.0:{PROXY_PORT}\n  hash: fnv1a_64\n  distribution: ketama\n  \
             redis: true\n  timeout: 2000\n  migrate: true\n  migrate_rate: {RATE}\n  servers:\n"
        );
        for &member in members {
            yaml.push_str(&format!(
                "   - {}:{}:1 s{member}\n",
                self.bed.address(STORE),
                BACKEND_PORTS[member]
            ));
        }
        yaml
    }

    /// A copy of a configuration for `rampart route`.
    fn keep(&self, name: &str, yaml: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, yaml).unwrap();
        path
    }

    fn node(&self, host: usize, priority: u8, yaml: &str) -> Node {
        Node::start(
            &self.bed,
            host,
            yaml,
            &Instance::new(priority, self.vip),
            self.dir.path().join(format!("node{host}")),
        )
    }

    fn vip_address(&self) -> SocketAddr {
        SocketAddr::from((self.vip, PROXY_PORT))
    }

    /// Runs `work` with a connection to the virtual IP, from the client host.
    fn through_vip<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Client) -> T + Send + 'static,
    ) -> T {
        let address = self.vip_address();
        self.bed.run_in(CLIENT, move || {
            let mut client = Client::connect_addr(address, Duration::from_secs(5))
                .unwrap_or_else(|error| panic!("connect to the VIP {address}: {error}"));
            work(&mut client)
        })
    }

    /// Every key each redis-server holds, by server index.
    fn backend_keys(&self) -> Vec<BTreeSet<String>> {
        let address = self.bed.address(STORE);
        self.bed.run_in(STORE, move || {
            BACKEND_PORTS
                .iter()
                .map(|&port| {
                    let mut client = Client::connect_addr(
                        SocketAddr::from((address, port)),
                        Duration::from_secs(5),
                    )
                    .expect("connect to a redis-server");
                    match client.call(&[b"KEYS", b"*"]) {
                        Reply::Array(Some(keys)) => keys
                            .iter()
                            .map(|key| key.text().expect("a key name"))
                            .collect(),
                        other => panic!("KEYS * on port {port}: {other:?}"),
                    }
                })
                .collect()
        })
    }
}

/// The value key `index` holds.
fn value_of(index: usize) -> String {
    format!(
        "value-{index}-{}",
        index.wrapping_mul(2_654_435_761) % 1_000_003
    )
}

/// The server index of each key, as `rampart route -c config` places it.
fn servers_of(config: &Path, keys: &[String]) -> Vec<usize> {
    place(config, Some("alpha"), &[], keys)
        .iter()
        .map(|placed| {
            placed
                .server
                .strip_prefix('s')
                .and_then(|index| index.parse().ok())
                .unwrap_or_else(|| panic!("a server named sN: {placed:?}"))
        })
        .collect()
}

/// Replaces the node's nutcracker.yml with `yaml` (beside it, then renamed over it), sends
/// SIGUSR1 and returns the log line of the outcome, which must be a reload.
fn reload(node: &mut Node, yaml: &str) -> String {
    let outcomes = |node: &Node| -> Vec<String> {
        node.log()
            .lines()
            .filter(|line| line.contains(RELOADED) || line.contains(REFUSED))
            .map(str::to_string)
            .collect()
    };
    let before = outcomes(node).len();
    let next = node.dir.join("nutcracker.yml.next");
    fs::write(&next, yaml).unwrap();
    fs::rename(&next, node.dir.join("nutcracker.yml")).unwrap();
    wait_until("the SIGUSR1 handler installed", LIMIT, || {
        node.process().catches(&[libc::SIGUSR1])
    });
    node.process().signal(libc::SIGUSR1);
    let mut line = String::new();
    wait_until(
        "the reload's outcome in the log",
        LIMIT,
        || match outcomes(node).get(before) {
            Some(found) => {
                line = found.clone();
                true
            }
            None => false,
        },
    );
    assert!(line.contains(RELOADED), "the reload was refused: {line}");
    line
}

/// Pool `alpha`'s migration counters in the node's stats JSON: (running, scanned, moved).
fn counters(bed: &Testbed, node: &Node) -> (u64, u64, u64) {
    let stats = node.stats(bed);
    assert!(
        !stats.is_empty(),
        "no stats from host {}:\n{}",
        node.host,
        tail(&node.log(), 30)
    );
    let document = Json::parse(&stats);
    let pool = document.get("alpha");
    (
        pool.get("migration_running").num(),
        pool.get("migration_scanned").num(),
        pool.get("migration_moved").num(),
    )
}

/// Pool `alpha`'s `migration` in the node's `/status` (`null` when it has none).
fn status_migration(bed: &Testbed, node: &Node) -> Value {
    let document = bed.run_in(node.host, || support::admin::status(ADMIN_PORT));
    let pool = document["pools"]
        .as_array()
        .expect("pools in /status")
        .iter()
        .find(|pool| pool["name"] == "alpha")
        .cloned()
        .unwrap_or_else(|| panic!("pool alpha in /status: {document}"));
    assert!(
        pool.get("migration").is_some(),
        "a `migration` field in pool alpha's /status: {pool}"
    );
    pool["migration"].clone()
}

/// The N of a `migration done: N keys moved in S s` line.
fn moved_in(line: &str) -> u64 {
    line[line.find(DONE).expect("a done line") + DONE.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("`{DONE}: N keys moved` in {line}"))
}

/// Where a node keeps its running migration: beside its configuration file.
fn state_file(node: &Node) -> PathBuf {
    node.dir.join("nutcracker.yml.migrating")
}

/// A client in the client host that reads sample keys through the virtual IP in a loop,
/// reconnecting after any failure, and counts what it got.
struct Reader {
    reads: Arc<AtomicU64>,
    nils: Arc<AtomicU64>,
    wrong: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
    /// Error replies and wrong values, as text (the first few).
    problems: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// What the reader counted.
#[derive(Debug, Clone, Copy)]
struct Reads {
    reads: u64,
    nils: u64,
    wrong: u64,
    failures: u64,
}

impl Reader {
    /// Reads the keys `sample` (indexes), four per round trip, about every 10 ms.
    fn start(bed: &Bed, keys: &Arc<Vec<String>>, sample: Vec<usize>) -> Reader {
        let namespace = bed.bed.namespace(CLIENT).to_string();
        let address = bed.vip_address();
        let mut reader = Reader {
            reads: Arc::default(),
            nils: Arc::default(),
            wrong: Arc::default(),
            failures: Arc::default(),
            problems: Arc::default(),
            stop: Arc::default(),
            thread: None,
        };
        let (reads, nils, wrong, failures, problems, stop) = (
            Arc::clone(&reader.reads),
            Arc::clone(&reader.nils),
            Arc::clone(&reader.wrong),
            Arc::clone(&reader.failures),
            Arc::clone(&reader.problems),
            Arc::clone(&reader.stop),
        );
        let keys = Arc::clone(keys);
        let thread = std::thread::spawn(move || {
            enter(&namespace);
            let note = |what: String| {
                let mut problems = problems.lock().unwrap();
                if problems.len() < 20 {
                    problems.push(what);
                }
            };
            let mut client: Option<Client> = None;
            let mut next = 0;
            while !stop.load(Ordering::SeqCst) {
                let batch: Vec<usize> = (0..4)
                    .map(|offset| sample[(next + offset) % sample.len()])
                    .collect();
                let commands: Vec<Vec<Vec<u8>>> = batch
                    .iter()
                    .map(|&index| cmd(&["GET", &keys[index]]))
                    .collect();
                let replies = match client.take() {
                    Some(connected) => Ok(connected),
                    None => Client::connect_addr(address, Duration::from_secs(2)),
                }
                .and_then(|mut connected| {
                    let replies = connected.try_pipeline(&commands)?;
                    Ok((connected, replies))
                });
                match replies {
                    Ok((connected, replies)) => {
                        client = Some(connected);
                        next += batch.len();
                        for (&index, reply) in batch.iter().zip(&replies) {
                            reads.fetch_add(1, Ordering::SeqCst);
                            match reply {
                                Reply::Bulk(Some(value))
                                    if *value == value_of(index).as_bytes() => {}
                                Reply::Bulk(None) => {
                                    nils.fetch_add(1, Ordering::SeqCst);
                                    note(format!("nil for {}", keys[index]));
                                }
                                other => {
                                    wrong.fetch_add(1, Ordering::SeqCst);
                                    note(format!("{other:?} for {}", keys[index]));
                                }
                            }
                        }
                    }
                    Err(_) => {
                        failures.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        reader.thread = Some(thread);
        reader
    }

    fn now(&self) -> Reads {
        Reads {
            reads: self.reads.load(Ordering::SeqCst),
            nils: self.nils.load(Ordering::SeqCst),
            wrong: self.wrong.load(Ordering::SeqCst),
            failures: self.failures.load(Ordering::SeqCst),
        }
    }

    /// Stops the reader; what it counted, and its problems.
    fn finish(mut self) -> (Reads, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        (self.now(), self.problems.lock().unwrap().clone())
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A pair reloaded as documented (BACKUP first, then MASTER) with a third server: the backup's
/// migrator reads nothing while the master migrates; the master is killed (kill -9) once it
/// has moved a quarter of the keys that move, the backup takes the VIP and its migrator moves
/// only what is left until `migration done`; a client of the VIP never reads a nil or a wrong
/// value, every key reads back afterwards, and each is on its `rampart route` server only.
#[test]
fn only_the_master_migrates_and_the_backup_finishes_after_a_takeover() {
    let test_started = Instant::now();
    let mut bed = Bed::new();
    let old_yaml = bed.yaml(&[0, 1]);
    let new_yaml = bed.yaml(&[0, 1, 2]);
    let old_file = bed.keep("old.yml", &old_yaml);
    let new_file = bed.keep("new.yml", &new_yaml);
    let mut a = bed.node(A, 101, &old_yaml);
    let mut b = bed.node(B, 100, &old_yaml);
    let elected = wait_for_vip(&bed.bed, A, bed.vip, Duration::from_secs(10));
    wait_until("A MASTER and B BACKUP in their stats", LIMIT, || {
        a.state(&bed.bed) == "MASTER" && b.state(&bed.bed) == "BACKUP"
    });

    let keys: Arc<Vec<String>> =
        Arc::new((0..KEYS).map(|index| format!("mv:{index:05}")).collect());
    let filled = Instant::now();
    bed.through_vip({
        let keys = Arc::clone(&keys);
        move |client| {
            for chunk in (0..KEYS).collect::<Vec<_>>().chunks(1000) {
                let commands: Vec<Vec<Vec<u8>>> = chunk
                    .iter()
                    .map(|&index| cmd(&["SET", &keys[index], &value_of(index)]))
                    .collect();
                let replies = client.pipeline(&commands);
                assert!(replies.iter().all(Reply::is_ok), "SET through the VIP");
            }
        }
    });
    let filled = filled.elapsed();
    let before = servers_of(&old_file, &keys);
    let after = servers_of(&new_file, &keys);
    let on_backends = bed.backend_keys();
    for (index, key) in keys.iter().enumerate() {
        assert!(
            on_backends[before[index]].contains(key),
            "{key} on s{} before the reload",
            before[index]
        );
    }
    let moving: Vec<usize> = (0..KEYS)
        .filter(|&index| before[index] != after[index])
        .collect();
    let expected = moving.len() as u64;
    assert!(
        expected > 0 && moving.iter().all(|&index| after[index] == 2),
        "adding s2 moves keys to s2 only"
    );
    eprintln!("elected A in {elected:?}; {KEYS} keys filled in {filled:?}; {expected} move to s2");

    // The documented order: the backup first, then the master.
    let sample: Vec<usize> = (0..KEYS).step_by(SAMPLE_EVERY).collect();
    let sample_moving = sample
        .iter()
        .filter(|&&index| before[index] != after[index])
        .count();
    let reader = Reader::start(&bed, &keys, sample);
    let b_reload = reload(&mut b, &new_yaml);
    assert!(
        b.log().contains(STARTED),
        "B starts a migration:\n{b_reload}\n{}",
        tail(&b.log(), 20)
    );
    assert!(state_file(&b).exists(), "B saved the old ring");
    let a_reload = reload(&mut a, &new_yaml);
    let a_reloaded = Instant::now();
    assert!(
        a.log().contains(STARTED),
        "A starts a migration:\n{a_reload}\n{}",
        tail(&a.log(), 20)
    );
    assert!(state_file(&a).exists(), "A saved the old ring");

    // While A is the master, only A's migrator reads.
    let b_status = status_migration(&bed.bed, &b);
    assert!(
        b_status.is_object(),
        "B knows of the migration in /status: {b_status}"
    );
    assert_eq!(b_status["scanned"], 0, "B's migrator waits: {b_status}");
    assert_eq!(b_status["moved"], 0, "B's migrator waits: {b_status}");
    assert_eq!(
        b_status["waiting"], true,
        "B says its migrator waits for the virtual IP: {b_status}"
    );
    let (mut polls, mut a_scans, mut b_running_seen) = (0u32, Vec::new(), BTreeSet::new());
    let mut a_times: Vec<Duration> = Vec::new();
    let mut a_moved = 0;
    let deadline = a_reloaded + LIMIT;
    while (a_moved as f64) < expected as f64 * KILL_AT {
        let (a_running, a_scanned, moved) = counters(&bed.bed, &a);
        let (b_running, b_scanned, b_moved) = counters(&bed.bed, &b);
        b_running_seen.insert(b_running);
        assert_eq!(
            (b_scanned, b_moved),
            (0, 0),
            "B (BACKUP) must not migrate while A is the master (A: running {a_running}, \
             scanned {a_scanned}, moved {moved}):\n{}",
            show_logs(&[&a, &b])
        );
        a_scans.push(a_scanned);
        a_times.push(a_reloaded.elapsed());
        a_moved = moved;
        polls += 1;
        assert!(
            Instant::now() < deadline,
            "A's migrator moved only {a_moved} of {expected} keys in {LIMIT:?}:\n{}",
            show_logs(&[&a, &b])
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let a_scanned = *a_scans.last().unwrap();
    let a_began = a_scans
        .iter()
        .position(|&scanned| scanned > 0)
        .map_or(Duration::ZERO, |first| a_times[first]);
    let a_phase = a_reloaded.elapsed();
    assert!(
        a_scans.windows(2).all(|pair| pair[0] <= pair[1]) && a_scans[0] < a_scanned,
        "A's migration_scanned grows: {a_scans:?}"
    );
    assert!(
        (a_moved as f64) <= expected as f64 * KILL_BEFORE,
        "A moved {a_moved} of {expected} before the test could kill it"
    );
    assert_eq!(b.state(&bed.bed), "BACKUP");
    assert!(!a.log().contains(DONE), "A is not done yet");
    let reads_with_a = reader.now();

    // kill -9 of the master midway: B takes the VIP and its migrator starts.
    let killed = Instant::now();
    a.kill();
    let takeover = wait_for_vip(&bed.bed, B, bed.vip, LIMIT);
    // B's migration_scanned after the kill, every 20 ms: (since the kill, scanned).
    let mut b_scans: Vec<(Duration, u64)> = Vec::new();
    let deadline = Instant::now() + MIGRATION_LIMIT;
    let done = loop {
        let (_, scanned, _) = counters(&bed.bed, &b);
        b_scans.push((killed.elapsed(), scanned));
        if let Some(line) = b.log().lines().find(|line| line.contains(DONE)) {
            break line.to_string();
        }
        assert!(
            !b.process().has_exited(),
            "B ended:\n{}",
            tail(&b.log(), 40)
        );
        assert!(
            Instant::now() < deadline,
            "no {DONE:?} from B within {MIGRATION_LIMIT:?}; B scanned {scanned}:\n{}",
            tail(&b.log(), 40)
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let b_done = killed.elapsed();
    let (b_running, b_scanned, b_counted) = counters(&bed.bed, &b);
    let (reads, problems) = reader.finish();
    let b_moved = moved_in(&done);
    // When B's migrator began (the last sample at 0), and what it read in its first second.
    let first = b_scans
        .iter()
        .position(|&(_, scanned)| scanned > 0)
        .unwrap_or_else(|| panic!("B's migration_scanned never grew: {b_scans:?}"));
    assert!(
        first > 0,
        "B scanned before the test saw it at 0: {b_scans:?}"
    );
    let (began, seen) = (b_scans[first - 1].0, b_scans[first]);
    let first_second = b_scans
        .iter()
        .take_while(|&&(at, _)| at <= began + Duration::from_secs(1))
        .last()
        .map_or(0, |&(_, scanned)| scanned);
    let b_rate = b_scanned as f64 / (b_done - began).as_secs_f64();
    eprintln!(
        "A (MASTER): scanned {a_scanned} and moved {a_moved} of {expected} in {a_phase:?} after \
         its reload ({:.0} keys/s; first seen scanning {a_began:?} after it); B (BACKUP) \
         polled {polls} times meanwhile: scanned 0, moved 0, migration_running \
         {b_running_seen:?}, /status migration {b_status}",
        a_scanned as f64 / a_phase.as_secs_f64(),
    );
    eprintln!(
        "A killed: B had the VIP {takeover:?} later; B's migration_scanned was 0 {began:?} \
         after the kill, {} at {:?}, {first_second} at most 1 s after it was 0; B logged `{}` \
         {b_done:?} after the kill (scanned {b_scanned}, moved {b_counted}: {b_rate:.0} \
         keys/s on average since it began; migrate_rate {RATE})",
        seen.1,
        seen.0,
        done.trim(),
    );
    eprintln!(
        "client of the VIP: {} reads while A was master, {} in all, {} nils, {} wrong, {} \
         failed round trips (connections, around the takeover); {sample_moving} of the \
         sampled keys move",
        reads_with_a.reads, reads.reads, reads.nils, reads.wrong, reads.failures,
    );
    assert!(
        first_second <= u64::from(RATE) * 3 / 2,
        "B keeps to migrate_rate after the takeover, however long it waited: {first_second} \
         keys read in its first second at {RATE} keys/s"
    );
    assert_eq!(b_running, 0, "B's migration no longer runs");
    assert!(
        bed.redis
            .iter_mut()
            .all(|redis| redis.exit_status().is_none()),
        "every redis-server still runs"
    );
    assert_eq!(
        b_counted, b_moved,
        "the stats and the log agree on what B moved"
    );
    assert!(b_moved > 0, "B moved what A had not");
    assert!(
        b_moved + a_moved <= expected + RACE_SLACK,
        "B moved {b_moved} though A had moved {a_moved} of {expected}: work done twice"
    );
    assert!(
        reads_with_a.reads > 0 && reads.reads > reads_with_a.reads,
        "the client read through the VIP with A then B as master: {reads_with_a:?} {reads:?}"
    );
    assert_eq!(
        (reads.nils, reads.wrong),
        (0, 0),
        "the client of the VIP read no nil and no wrong value: {problems:#?}"
    );
    wait_until("B's state file removed", LIMIT, || !state_file(&b).exists());
    wait_until("B's /status migration null", LIMIT, || {
        status_migration(&bed.bed, &b).is_null()
    });

    // Every key on its server for the new file, and only there.
    let on_backends = bed.backend_keys();
    let mut misplaced = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        for (server, held) in on_backends.iter().enumerate() {
            if held.contains(key) != (server == after[index]) && misplaced.len() < 10 {
                misplaced.push(format!(
                    "{key}: route says s{}, s{server} {}",
                    after[index],
                    if held.contains(key) {
                        "holds it"
                    } else {
                        "lacks it"
                    }
                ));
            }
        }
    }
    assert!(misplaced.is_empty(), "{misplaced:#?}");
    let per_server: BTreeMap<usize, usize> = on_backends
        .iter()
        .enumerate()
        .map(|(server, held)| (server, held.len()))
        .collect();
    assert_eq!(per_server.values().sum::<usize>(), KEYS, "{per_server:?}");

    // And every key reads back its value through the VIP.
    let read_back = bed.through_vip({
        let keys = Arc::clone(&keys);
        move |client| {
            let mut bad = Vec::new();
            for chunk in (0..KEYS).collect::<Vec<_>>().chunks(1000) {
                let commands: Vec<Vec<Vec<u8>>> = chunk
                    .iter()
                    .map(|&index| cmd(&["GET", &keys[index]]))
                    .collect();
                for (&index, reply) in chunk.iter().zip(client.pipeline(&commands)) {
                    if reply != Reply::Bulk(Some(value_of(index).into_bytes())) {
                        bad.push(format!("{}: {reply:?}", keys[index]));
                    }
                }
            }
            bad
        }
    });
    assert!(
        read_back.is_empty(),
        "{} keys wrong: {:?}",
        read_back.len(),
        &read_back[..read_back.len().min(10)]
    );
    eprintln!(
        "final placement {per_server:?} matches rampart route; {KEYS} keys read back; test took {:?}",
        test_started.elapsed()
    );
    b.stop();
}
