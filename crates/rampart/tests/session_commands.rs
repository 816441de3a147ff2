//! Commands that hold a server connection, through rampart over real redis-servers:
//! transactions (MULTI/EXEC/DISCARD, WATCH/UNWATCH) on one shard, compared reply for reply
//! with a redis-server; a WATCH retry loop and redis-py transactions from 20 clients keeping
//! a counter exact; node-redis running all of them and pub/sub; 50 clients blocked in BLPOP while 200 others run GET/SET (their latency
//! measured with and without the blocked ones); blocked clients that leave giving their
//! connection back; the `dedicated_connections` bound; and what a client sees when the server
//! under its transaction or blocked call dies.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use support::process::{Redis, run_within};
use support::resp::{Client, Reply, bulk, cmd, encode_all, ok};
use support::shards::Cluster;
use support::wait_until;

/// The tests of this file run one at a time, so that the latency measured in one is not that
/// of another's load.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn alone() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// rampart over `shards` redis-servers (s0, s1...), murmur/ketama with `{}` hash tags.
fn start(shards: usize, directives: &str) -> Cluster {
    let directives =
        format!("  hash: murmur\n  distribution: ketama\n  hash_tag: \"{{}}\"\n{directives}");
    Cluster::start(shards, &directives, &[])
}

fn shard_of(pool: &Cluster, key: &str) -> usize {
    pool.shards_of(&[key.to_string()])[0]
}

/// A key `prefix<n>` on `shard`, and one that is not.
fn keys_on(pool: &Cluster, shard: usize, prefix: &str) -> (String, String) {
    let mut keys = pool.key_per_shard(prefix);
    let on = keys.remove(shard);
    (on, keys.remove(0))
}

fn run_all(client: &mut Client, commands: &[Vec<Vec<u8>>]) -> Vec<Reply> {
    client.pipeline(commands)
}

/// Replaces the pool-specific texts (rampart's error wording) with their class for comparison.
fn class(reply: &Reply) -> String {
    match reply {
        Reply::Error(text) => text.split(' ').next().unwrap_or_default().to_string(),
        other => format!("{other:?}"),
    }
}

#[test]
fn transactions_answer_as_redis_server_does() {
    let _alone = alone();
    let pool = start(3, "");
    let direct = Redis::start(&[]);
    let script: Vec<Vec<Vec<u8>>> = vec![
        cmd(&["EXEC"]),
        cmd(&["DISCARD"]),
        cmd(&["MULTI"]),
        cmd(&["MULTI"]),
        cmd(&["WATCH", "{t}a"]),
        cmd(&["SET", "{t}a", "1"]),
        cmd(&["INCR", "{t}a"]),
        cmd(&["PING"]),
        cmd(&["GET", "{t}a"]),
        cmd(&["MGET", "{t}a", "{t}b"]),
        cmd(&["EXEC"]),
        cmd(&["WAIT", "0", "0"]),
        cmd(&["MULTI"]),
        cmd(&["INCR", "{t}a"]),
        cmd(&["DISCARD"]),
        cmd(&["GET", "{t}a"]),
        cmd(&["MULTI"]),
        cmd(&["NOSUCHCOMMAND"]),
        cmd(&["INCR", "{t}a"]),
        cmd(&["EXEC"]),
        cmd(&["GET", "{t}a"]),
        cmd(&["MULTI"]),
        cmd(&["SET", "{t}a"]),
        cmd(&["EXEC"]),
        cmd(&["WATCH", "{t}a", "{t}b"]),
        cmd(&["UNWATCH"]),
        cmd(&["MULTI"]),
        cmd(&["PING", "inside"]),
        cmd(&["ECHO", "hi"]),
        cmd(&["EXEC"]),
        cmd(&["MULTI"]),
        cmd(&["LPUSH", "{t}l", "x"]),
        cmd(&["BLPOP", "{t}l", "0"]),
        cmd(&["EXEC"]),
    ];
    let through = run_all(&mut pool.conn(), &script);
    let redis = run_all(&mut direct.client(), &script);
    for ((command, got), want) in script.iter().zip(&through).zip(&redis) {
        assert_eq!(
            class(got),
            class(want),
            "{}: rampart {got:?}, redis-server {want:?}",
            support::resp::show(command)
        );
    }
    assert_eq!(
        through[16], redis[16],
        "unknown command inside MULTI: same text"
    );
}

#[test]
fn a_transaction_stays_on_one_shard() {
    let _alone = alone();
    let pool = start(3, "");
    let shard = shard_of(&pool, "first");
    let (_, elsewhere) = keys_on(&pool, shard, "k");
    let mut client = pool.conn();
    let replies = client.pipeline(&[
        cmd(&["MULTI"]),
        cmd(&["SET", "first", "1"]),
        cmd(&["SET", &elsewhere, "2"]),
        cmd(&["EXEC"]),
        cmd(&["GET", "first"]),
    ]);
    assert_eq!(replies[0], ok());
    assert_eq!(replies[1], Reply::Status("QUEUED".into()));
    let Reply::Error(text) = &replies[2] else {
        panic!("a key on another shard inside MULTI gave {:?}", replies[2]);
    };
    assert!(
        text.contains(&format!("'s{shard}'")) && text.contains("hash tags"),
        "the error names both shards: -{text}"
    );
    assert_eq!(
        replies[3],
        Reply::Error("EXECABORT Transaction discarded because of previous errors.".into())
    );
    assert_eq!(replies[4], Reply::Bulk(None), "nothing of it ran");
    // WATCH over two shards is refused; WATCH, then a transaction on another shard, too.
    let (watched, other) = keys_on(&pool, shard, "w");
    let Reply::Error(text) = client.call_str(&["WATCH", &watched, &other]) else {
        panic!("WATCH across shards was accepted");
    };
    assert!(text.contains("'watch'"), "-{text}");
    assert_eq!(client.call_str(&["WATCH", &watched]), ok());
    assert_eq!(client.call_str(&["MULTI"]), ok());
    assert!(matches!(
        client.call_str(&["SET", &other, "x"]),
        Reply::Error(_)
    ));
    assert!(
        matches!(client.call_str(&["EXEC"]), Reply::Error(text) if text.starts_with("EXECABORT"))
    );
    assert_eq!(client.call_str(&["PING"]), Reply::Status("PONG".into()));
}

#[test]
fn watch_aborts_exec_when_another_client_writes() {
    let _alone = alone();
    let pool = start(2, "");
    let mut watcher = pool.conn();
    let mut writer = pool.conn();
    assert_eq!(watcher.call_str(&["SET", "{w}k", "1"]), ok());
    assert_eq!(watcher.call_str(&["WATCH", "{w}k"]), ok());
    assert_eq!(watcher.call_str(&["GET", "{w}k"]), bulk("1"));
    assert_eq!(writer.call_str(&["SET", "{w}k", "2"]), ok());
    assert_eq!(watcher.call_str(&["MULTI"]), ok());
    assert_eq!(
        watcher.call_str(&["SET", "{w}k", "3"]),
        Reply::Status("QUEUED".into())
    );
    assert_eq!(
        watcher.call_str(&["EXEC"]),
        Reply::Array(None),
        "EXEC aborted"
    );
    assert_eq!(writer.call_str(&["GET", "{w}k"]), bulk("2"));
    // The connection went back clean: the next WATCH/EXEC on it succeeds.
    assert_eq!(watcher.call_str(&["WATCH", "{w}k"]), ok());
    assert_eq!(watcher.call_str(&["MULTI"]), ok());
    watcher.call_str(&["SET", "{w}k", "4"]);
    assert!(matches!(watcher.call_str(&["EXEC"]), Reply::Array(Some(_))));
    assert_eq!(writer.call_str(&["GET", "{w}k"]), bulk("4"));
}

/// 20 clients increment one counter 50 times each with WATCH/GET/MULTI/SET/EXEC, retrying
/// when EXEC is aborted: the counter ends at exactly 1,000.
#[test]
fn a_watch_retry_loop_keeps_a_counter_exact() {
    let _alone = alone();
    let pool = start(3, "");
    let url = format!("redis://127.0.0.1:{}/", pool.port);
    let start = Arc::new(Barrier::new(20));
    let workers: Vec<_> = (0..20)
        .map(|_| {
            let url = url.clone();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                let client = redis::Client::open(url).expect("url");
                let mut connection = client.get_connection().expect("connect");
                start.wait();
                let mut retries = 0;
                for _ in 0..50 {
                    let _: () =
                        redis::transaction(&mut connection, &["{c}counter"], |con, pipe| {
                            let value: Option<i64> =
                                redis::cmd("GET").arg("{c}counter").query(con)?;
                            let result: Option<()> = pipe
                                .set("{c}counter", value.unwrap_or(0) + 1)
                                .ignore()
                                .query(con)?;
                            if result.is_none() {
                                retries += 1;
                            }
                            Ok(result)
                        })
                        .expect("transaction");
                }
                retries
            })
        })
        .collect();
    let retries: u32 = workers
        .into_iter()
        .map(|worker| worker.join().expect("worker"))
        .sum();
    assert_eq!(
        pool.conn().call_str(&["GET", "{c}counter"]),
        bulk("1000"),
        "every increment counted once"
    );
    eprintln!("20 clients x 50 increments: {retries} EXECs aborted by WATCH and retried");
}

#[test]
fn redis_py_transactions_keep_a_counter_exact() {
    let _alone = alone();
    let pool = start(3, "");
    for protocol in ["2", "3"] {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/redis_py_transactions.py");
        let output = run_within(
            Command::new("python3")
                .arg(script)
                .arg(pool.port.to_string())
                .args(["--protocol", protocol]),
            Duration::from_secs(120),
        )
        .unwrap_or_else(|failure| panic!("redis-py RESP{protocol}: {failure}"));
        eprintln!("redis-py RESP{protocol}: {}", output.trim());
    }
}

/// node-redis 6: MULTI/EXEC, WATCH, BLPOP and pub/sub, in RESP2 and RESP3.
#[test]
fn node_redis_runs_transactions_blocking_pops_and_pub_sub() {
    let _alone = alone();
    let pool = start(3, "");
    let node = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/node");
    assert!(
        node.join("node_modules/redis/package.json").exists(),
        "node-redis is missing: run scripts/install-deps"
    );
    for resp in ["2", "3"] {
        let output = run_within(
            Command::new("node")
                .arg("node-redis-sessions.js")
                .arg(pool.port.to_string())
                .args(["--resp", resp])
                .current_dir(&node),
            Duration::from_secs(60),
        )
        .unwrap_or_else(|failure| panic!("node-redis RESP{resp}: {failure}"));
        assert!(output.trim_end().ends_with(": ok"), "{output}");
    }
}

/// Sends BLPOP on `count` new connections and returns them, blocked.
fn blocked_clients(port: u16, count: usize, key_of: impl Fn(usize) -> String) -> Vec<Client> {
    (0..count)
        .map(|index| {
            let mut client = Client::connect(port).expect("connect");
            client.send_raw(&encode_all(&[cmd(&["BLPOP", &key_of(index), "0"])]));
            client
        })
        .collect()
}

/// GET/SET round trips of `clients` connections for `length`: every latency, sorted.
fn measure_latency(port: u16, clients: usize, length: Duration) -> Vec<Duration> {
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..clients)
        .map(|index| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut client = Client::connect(port).expect("connect");
                let key = format!("lat:{index}");
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    assert_eq!(client.call_str(&["SET", &key, "v"]), ok());
                    assert_eq!(client.call_str(&["GET", &key]), bulk("v"));
                    latencies.push(started.elapsed() / 2);
                }
                latencies
            })
        })
        .collect();
    thread::sleep(length);
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<Duration> = workers
        .into_iter()
        .flat_map(|worker| worker.join().expect("worker"))
        .collect();
    all.sort();
    all
}

fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    sorted[(sorted.len() * percent / 100).min(sorted.len() - 1)]
}

#[test]
fn blocked_pops_do_not_delay_other_clients() {
    let _alone = alone();
    support::ensure_open_file_limit(4096);
    let pool = start(3, "");
    let baseline = measure_latency(pool.port, 200, Duration::from_secs(2));
    let mut blocked = blocked_clients(pool.port, 50, |index| format!("queue:{index}"));
    wait_until(
        "50 clients blocked on the servers",
        Duration::from_secs(10),
        || {
            let blocked: usize = pool
                .redis
                .iter()
                .map(|backend| {
                    let info = backend.client().call_str(&["INFO", "clients"]);
                    let text = info.text().unwrap_or_default();
                    text.lines()
                        .find_map(|line| line.strip_prefix("blocked_clients:"))
                        .and_then(|value| value.trim().parse::<usize>().ok())
                        .unwrap_or(0)
                })
                .sum();
            blocked == 50
        },
    );
    let during = measure_latency(pool.port, 200, Duration::from_secs(2));
    let (p50_before, p99_before) = (percentile(&baseline, 50), percentile(&baseline, 99));
    let (p50_during, p99_during) = (percentile(&during, 50), percentile(&during, 99));
    eprintln!(
        "200 clients GET/SET: p50 {p50_before:?} / p99 {p99_before:?} ({} requests) alone; \
         p50 {p50_during:?} / p99 {p99_during:?} ({} requests) with 50 clients blocked in BLPOP",
        baseline.len() * 2,
        during.len() * 2
    );
    assert!(
        p99_during <= p99_before * 2 + Duration::from_millis(5),
        "blocked clients delayed the others: p99 {p99_before:?} -> {p99_during:?}"
    );
    assert!(
        during.len() * 2 >= baseline.len(),
        "throughput fell by half or more"
    );
    // Every blocked client gets its own value.
    let mut pusher = pool.conn();
    for index in 0..50 {
        let key = format!("queue:{index}");
        assert_eq!(
            pusher.call_str(&["RPUSH", &key, &format!("job-{index}")]),
            Reply::Integer(1)
        );
    }
    for (index, client) in blocked.iter_mut().enumerate() {
        let reply = client.read_reply().expect("BLPOP answered");
        assert_eq!(
            reply,
            Reply::Array(Some(vec![
                bulk(format!("queue:{index}")),
                bulk(format!("job-{index}"))
            ]))
        );
        assert_eq!(client.call_str(&["PING"]), Reply::Status("PONG".into()));
    }
}

#[test]
fn dedicated_connections_are_bounded_and_given_back() {
    let _alone = alone();
    let pool = start(1, "  dedicated_connections: 4\n  server_connections: 1\n");
    let backend_clients = || {
        let info = pool.redis[0].client().call_str(&["INFO", "clients"]);
        info.text()
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix("connected_clients:"))
            .and_then(|value| value.trim().parse::<usize>().ok())
            .unwrap_or(0)
    };
    let blocked = blocked_clients(pool.port, 4, |index| format!("bq:{index}"));
    wait_until("4 dedicated connections", Duration::from_secs(10), || {
        backend_clients() >= 5
    });
    let mut fifth = pool.conn();
    let Reply::Error(text) = fifth.call_str(&["BLPOP", "bq:x", "0"]) else {
        panic!("a fifth blocking call went through with dedicated_connections: 4");
    };
    assert!(
        text.contains("dedicated_connections") && text.contains("'blpop'"),
        "the error says which bound: -{text}"
    );
    assert_eq!(
        fifth.call_str(&["SET", "shared", "ok"]),
        ok(),
        "shared path unaffected"
    );
    // Clients that leave while blocked give their connection back, closed on the server.
    drop(blocked);
    wait_until(
        "blocked connections closed",
        Duration::from_secs(10),
        || backend_clients() <= 3,
    );
    let again = blocked_clients(pool.port, 4, |index| format!("bq:{index}"));
    let mut pusher = pool.conn();
    for index in 0..4 {
        pusher.call_str(&["RPUSH", &format!("bq:{index}"), "v"]);
    }
    for mut client in again {
        assert!(matches!(client.read_reply(), Ok(Reply::Array(Some(_)))));
    }
    // Nothing was popped for the clients that left: their BLPOP ended with their connection.
    for index in 0..4 {
        assert_eq!(
            pusher.call_str(&["LLEN", &format!("bq:{index}")]),
            Reply::Integer(0)
        );
    }
    // A blocking call with a timeout returns nil after it, and gives its connection back.
    for _ in 0..8 {
        assert_eq!(
            pusher.call_str(&["BLPOP", "bq:none", "0.05"]),
            Reply::Array(None)
        );
        assert_eq!(
            pusher.call_str(&["XREAD", "BLOCK", "50", "STREAMS", "bq:stream", "$"]),
            Reply::Array(None)
        );
    }
    // Clients that ran a transaction and then sit idle give their connection back: more
    // transactions than dedicated_connections, each on its own client left open, all run.
    let mut idle_clients = Vec::new();
    for index in 0..8 {
        let mut client = pool.conn();
        let key = format!("tx:{index}");
        wait_until(
            "a dedicated connection for a transaction",
            Duration::from_secs(10),
            || {
                let replies =
                    client.pipeline(&[cmd(&["MULTI"]), cmd(&["SET", &key, "1"]), cmd(&["EXEC"])]);
                matches!(replies[2], Reply::Array(Some(_)))
            },
        );
        idle_clients.push(client);
    }
}

#[test]
fn a_dead_server_ends_transactions_and_blocked_calls_with_an_error() {
    let _alone = alone();
    let mut pool = start(1, "  timeout: 2000\n");
    let mut in_transaction = pool.conn();
    assert_eq!(in_transaction.call_str(&["MULTI"]), ok());
    assert_eq!(
        in_transaction.call_str(&["SET", "dead:k", "1"]),
        Reply::Status("QUEUED".into())
    );
    let mut blocked = blocked_clients(pool.port, 1, |_| "dead:q".into()).remove(0);
    wait_until("the pop blocked", Duration::from_secs(10), || {
        pool.redis[0]
            .client()
            .call_str(&["INFO", "clients"])
            .text()
            .is_some_and(|text| text.contains("blocked_clients:1"))
    });
    pool.redis[0].kill();
    let reply = blocked
        .read_reply()
        .expect("the blocked client is answered");
    assert!(matches!(reply, Reply::Error(_)), "BLPOP gave {reply:?}");
    assert!(
        matches!(blocked.call_str(&["PING"]), Reply::Status(_)),
        "a blocked client keeps its connection"
    );
    let reply = in_transaction
        .try_call(&[b"EXEC"])
        .expect("an answer to EXEC");
    assert!(
        matches!(&reply, Reply::Error(text) if text.contains("transaction")),
        "EXEC gave {reply:?}"
    );
    assert!(
        in_transaction.closed_by_peer(),
        "the client whose transaction was lost is disconnected, so it cannot run the rest \
         outside the transaction"
    );
}
