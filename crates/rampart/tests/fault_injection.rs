//! Faults injected for real around a running rampart: a backend frozen with SIGSTOP and one
//! killed with -9 in the middle of a pipeline, then let go or restarted; a fake backend that
//! answers bytes that are not RESP or a reply nobody asked for; a redis-sentinel frozen while
//! it is the pool's only source of topology; rampart out of file descriptors; and its log on
//! a full disk (`-o /dev/full`).

mod support;

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::load::Load;
use support::process::{Guarded, Rampart, Redis};
use support::resp::{Client, Reply, bulk, call, cmd, error, ok, pong, set_then_get, show};
use support::sentinel::Sentinel;
use support::sentinel_cluster::{self, Options, monitors_of, start_shards, value_of};
use support::shards::{Cluster, TRANSPORT_ERRORS, alpha_yaml, keys_by_shard};
use support::stats::{server_counter, stat_reaching};
use support::{free_port, tail, wait_until};

/// The CPU share a process used over `window`: its CPU time then divided by the time passed.
/// (A measurement over a fixed span, not a wait for a condition.)
fn cpu_share(process: &Guarded, window: Duration) -> f64 {
    let (cpu_before, started) = (process.cpu_time(), Instant::now());
    std::thread::sleep(window);
    (process.cpu_time() - cpu_before).as_secs_f64() / started.elapsed().as_secs_f64()
}

/// Above this CPU share an idle rampart is spinning (a busy loop takes a whole core).
const IDLE_CPU_LIMIT: f64 = 0.25;

/// Writes every key with `value_of(key)` through the proxy.
fn write_values(port: u16, keys: &[Vec<String>]) {
    let commands: Vec<Vec<Vec<u8>>> = keys
        .iter()
        .flatten()
        .map(|key| cmd(&["SET", key, &value_of(key)]))
        .collect();
    let replies = Client::open(port).pipeline(&commands);
    assert!(replies.iter().all(Reply::is_ok), "{replies:?}");
}

/// Pipelines `commands` on `conn` in two parts around a fault: sends the first `split`
/// commands, reads half of their replies, calls `fault`, sends the rest and reads every
/// remaining reply. `check(index, reply, after_fault)` judges each reply; a missing reply
/// (the client's read timeout) fails the test.
fn pipeline_around_fault(
    conn: &mut Client,
    commands: &[Vec<Vec<u8>>],
    split: usize,
    fault: impl FnOnce(),
    mut check: impl FnMut(usize, Reply, bool),
) {
    let mut read = |conn: &mut Client, index: usize, after_fault: bool| {
        let reply = conn.read_reply().unwrap_or_else(|error| {
            panic!(
                "no reply {index} of {} to `{}`: {error}",
                commands.len(),
                show(&commands[index])
            )
        });
        check(index, reply, after_fault);
    };
    conn.send_in_background(&commands[..split])
        .join()
        .unwrap()
        .expect("first part written");
    for index in 0..split / 2 {
        read(conn, index, false);
    }
    fault();
    let writer = conn.send_in_background(&commands[split..]);
    for index in split / 2..commands.len() {
        read(conn, index, index >= split);
    }
    writer.join().unwrap().expect("second part written");
}

// ---------------------------------------------------------------------------------------------
// 1. A backend frozen with SIGSTOP mid-pipeline.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_frozen_backend_times_out_its_requests_and_serves_again_after_sigcont() {
    let cluster = Cluster::start(3, "  timeout: 500\n", &[]);
    let frozen = 1;
    let keys = cluster.keys_by_shard("stop:", 20);
    write_values(cluster.port, &keys);
    let plan: Vec<(usize, &String)> = (0..3_000)
        .map(|i| (i % 3, &keys[i % 3][(i / 3) % 20]))
        .collect();
    let commands: Vec<Vec<Vec<u8>>> = plan.iter().map(|(_, key)| cmd(&["GET", key])).collect();

    let mut conn = cluster.conn();
    let (mut timed_out, mut first_timeout) = (0, None);
    let started = Instant::now();
    pipeline_around_fault(
        &mut conn,
        &commands,
        600,
        || cluster.redis[frozen].freeze(),
        |index, got, after_fault| {
            let (shard, key) = plan[index];
            if shard == frozen && got == error("ERR Connection timed out") {
                first_timeout.get_or_insert(index);
                timed_out += 1;
                return;
            }
            assert_eq!(got, bulk(value_of(key)), "reply {index} to GET {key}");
            if shard == frozen {
                assert!(
                    !after_fault && first_timeout.is_none(),
                    "GET {key} (reply {index}) was answered by the frozen server"
                );
            }
        },
    );
    let pipeline_took = started.elapsed();
    assert!(timed_out >= 800, "only {timed_out} requests timed out");

    // Still frozen: the other shards answer a new client, the frozen one times out.
    let mut fresh = cluster.conn();
    for shard in [0, 2] {
        let key = &keys[shard][0];
        assert_eq!(fresh.call_str(&["GET", key]), bulk(value_of(key)));
    }
    assert_eq!(
        fresh.call_str(&["GET", &keys[frozen][0]]),
        error("ERR Connection timed out")
    );

    cluster.redis[frozen].thaw();
    let resumed = Instant::now();
    let key = &keys[frozen][0];
    wait_until("the thawed shard to serve", Duration::from_secs(10), || {
        fresh.call_str(&["GET", key]) == bulk(value_of(key))
    });
    let recovery = resumed.elapsed();
    for key in &keys[frozen] {
        assert_eq!(conn.call_str(&["GET", key]), bulk(value_of(key)));
    }
    let stats = cluster.proxy.stats();
    assert!(server_counter(&stats, "alpha", "s1", "server_timedout") >= 1);
    for server in ["s0", "s2"] {
        assert_eq!(
            server_counter(&stats, "alpha", server, "server_timedout"),
            0,
            "{stats}"
        );
    }
    println!(
        "SIGSTOP: {timed_out} of 3000 pipelined requests timed out, the pipeline took \
         {pipeline_took:?}; served again {recovery:?} after SIGCONT"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. A backend killed with -9 mid-pipeline, then restarted on its port.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_killed_backend_leaves_no_request_unanswered_and_serves_again_once_restarted() {
    let mut cluster = Cluster::start(3, "", &[]);
    let dead = 1;
    let keys = cluster.keys_by_shard("kill:", 20);
    // SET and GET of the same key, each SET with a value of its own.
    let plan: Vec<(usize, &String, String)> = (0..2_000)
        .map(|pair| {
            let shard = pair % 3;
            let key = &keys[shard][(pair / 3) % 20];
            (shard, key, format!("{key}-{pair}"))
        })
        .collect();
    let commands = set_then_get(
        plan.iter()
            .map(|(_, key, value)| (key.as_str(), value.as_str())),
    );

    let mut conn = cluster.conn();
    let mut errors = 0;
    let port = cluster.redis[dead].port;
    let redis = &mut cluster.redis;
    pipeline_around_fault(
        &mut conn,
        &commands,
        1_000,
        || redis[dead].kill(),
        |index, got, after_fault| {
            let (shard, _, value) = &plan[index / 2];
            let want = if index % 2 == 0 { ok() } else { bulk(value) };
            match &got {
                Reply::Error(text) if *shard == dead => {
                    assert!(
                        TRANSPORT_ERRORS.contains(&text.as_str()),
                        "reply {index} to `{}`: -{text}",
                        show(&commands[index])
                    );
                    errors += 1;
                }
                _ => {
                    assert_eq!(got, want, "reply {index} to `{}`", show(&commands[index]));
                    assert!(
                        !(after_fault && *shard == dead),
                        "`{}` (reply {index}) was answered by the killed server",
                        show(&commands[index])
                    );
                }
            }
        },
    );
    assert!(
        errors >= 1_000,
        "only {errors} errors from the killed shard"
    );
    assert_eq!(
        conn.call_str(&["PING"]),
        pong(),
        "the client connection lives"
    );

    cluster.redis[dead] = Redis::start_on(port, &[]);
    let restarted = Instant::now();
    let key = &keys[dead][0];
    wait_until(
        "the restarted shard to serve",
        Duration::from_secs(10),
        || conn.call_str(&["SET", key, "back"]) == ok(),
    );
    let recovery = restarted.elapsed();
    assert_eq!(conn.call_str(&["GET", key]), bulk("back"));
    assert_eq!(cluster.redis[dead].get(key).as_deref(), Some("back"));
    println!(
        "kill -9: {errors} of {} pipelined requests failed; served again {recovery:?} after \
         the restart",
        commands.len()
    );
}

// ---------------------------------------------------------------------------------------------
// 3. A fake backend that answers garbage, or a reply nobody asked for.
// ---------------------------------------------------------------------------------------------

/// How the fake backend's first connection misbehaves; its later connections behave.
#[derive(Clone, Copy)]
enum Fault {
    /// Answers `after` requests, then sends bytes that are not RESP and answers no more.
    Garbage { after: usize },
    /// Answers request number `after` with its reply and then an extra one.
    ExtraReply { after: usize },
}

/// What the fake backend answers `GET key`.
fn fake_value(key: &str) -> String {
    format!("fake-{key}")
}

/// The reply nobody asked for (no key has this value).
const EXTRA_REPLY: &[u8] = b"$11\r\nextra-reply\r\n";

/// A fake Redis server (a real one cannot send garbage): GET answers `fake_value`, anything
/// else +OK. It counts the connections it accepted and those closed by the proxy.
struct FakeRedis {
    port: u16,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    stopping: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeRedis {
    fn start(fault: Fault) -> FakeRedis {
        let port = free_port();
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the fake backend");
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let stopping = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let threads = Arc::new(Mutex::new(Vec::new()));
        let acceptor = std::thread::spawn({
            let (accepted, closed) = (Arc::clone(&accepted), Arc::clone(&closed));
            let (stopping, streams) = (Arc::clone(&stopping), Arc::clone(&streams));
            let threads = Arc::clone(&threads);
            move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    streams.lock().unwrap().push(stream.try_clone().unwrap());
                    let first = accepted.fetch_add(1, Ordering::SeqCst) == 0;
                    let closed = Arc::clone(&closed);
                    threads.lock().unwrap().push(std::thread::spawn(move || {
                        FakeRedis::serve(stream, first.then_some(fault));
                        closed.fetch_add(1, Ordering::SeqCst);
                    }));
                }
            }
        });
        FakeRedis {
            port,
            accepted,
            closed,
            stopping,
            streams,
            threads,
            acceptor: Some(acceptor),
        }
    }

    /// Answers requests on one connection until the peer closes it.
    fn serve(stream: TcpStream, fault: Option<Fault>) {
        let mut writer = stream.try_clone().unwrap();
        let mut reader = Client::over(stream, Duration::from_secs(60)).unwrap();
        let mut served = 0;
        while let Ok(Reply::Array(Some(request))) = reader.read_reply() {
            served += 1;
            let reply = match request.as_slice() {
                [Reply::Bulk(Some(name)), Reply::Bulk(Some(key))] if name == b"GET" => {
                    let value = fake_value(&String::from_utf8_lossy(key));
                    format!("${}\r\n{value}\r\n", value.len()).into_bytes()
                }
                _ => b"+OK\r\n".to_vec(),
            };
            let bytes = match fault {
                Some(Fault::Garbage { after }) if served == after + 1 => {
                    b"?this is not RESP\r\n".to_vec()
                }
                Some(Fault::Garbage { after }) if served > after => continue,
                Some(Fault::ExtraReply { after }) if served == after => {
                    [reply, EXTRA_REPLY.to_vec()].concat()
                }
                _ => reply,
            };
            if writer.write_all(&bytes).is_err() {
                break;
            }
        }
    }
}

impl Drop for FakeRedis {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for stream in self.streams.lock().unwrap().iter() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        for thread in self.threads.lock().unwrap().drain(..) {
            let _ = thread.join();
        }
    }
}

/// A real redis-server as s0 and the fake backend as s1, behind one worker (so both test
/// clients share its one connection to the fake), and each client's keys on both shards, the
/// real shard's written with `value_of`.
struct FakeShard {
    _real: Redis,
    fake: FakeRedis,
    proxy: Rampart,
    port: u16,
    /// `keys[client][shard]`.
    keys: Vec<Vec<Vec<String>>>,
}

impl FakeShard {
    fn start(fault: Fault) -> FakeShard {
        let real = Redis::start(&[]);
        let fake = FakeRedis::start(fault);
        let port = free_port();
        let yaml = alpha_yaml(port, "", &[real.port, fake.port]);
        let proxy = Rampart::start(&yaml, &[port], &["--workers", "1"]);
        let keys: Vec<Vec<Vec<String>>> = (0..2)
            .map(|client| keys_by_shard(&proxy.config, &format!("c{client}:"), 10, 2))
            .collect();
        let mut direct = real.client();
        for key in keys.iter().flat_map(|shards| &shards[0]) {
            assert!(direct.call_str(&["SET", key, &value_of(key)]).is_ok());
        }
        FakeShard {
            _real: real,
            fake,
            proxy,
            port,
            keys,
        }
    }

    /// The value a GET of `key` (on `shard`) must get.
    fn value(shard: usize, key: &str) -> Reply {
        bulk(if shard == 0 {
            value_of(key)
        } else {
            fake_value(key)
        })
    }

    /// Waits until the proxy has closed the fake's first connection, and checks that the
    /// real server's connection never failed.
    fn assert_only_the_fake_connection_dropped(&self) {
        wait_until(
            "the proxy to close the misbehaving connection",
            Duration::from_secs(5),
            || self.fake.closed.load(Ordering::SeqCst) >= 1,
        );
        let s1_errors = stat_reaching(
            || self.proxy.stats(),
            |stats| server_counter(stats, "alpha", "s1", "server_err"),
            1,
        );
        assert!(s1_errors >= 1, "{}", self.proxy.stats());
        let stats = self.proxy.stats();
        for counter in ["server_err", "server_eof", "server_timedout"] {
            assert_eq!(
                server_counter(&stats, "alpha", "s0", counter),
                0,
                "{counter}: {stats}"
            );
        }
    }

    /// Both clients' keys on both shards read back right, through a new connection.
    fn assert_serves(&self) {
        let mut conn = Client::open(self.port);
        for shards in &self.keys {
            for (shard, keys) in shards.iter().enumerate() {
                for key in keys {
                    assert_eq!(
                        conn.call_str(&["GET", key]),
                        FakeShard::value(shard, key),
                        "GET {key}"
                    );
                }
            }
        }
    }
}

#[test]
fn garbage_from_a_backend_drops_only_its_connection_and_no_reply_goes_astray() {
    let setup = FakeShard::start(Fault::Garbage { after: 150 });
    let port = setup.port;
    // Two clients pipeline GETs of their own keys on both shards at once.
    let clients: Vec<JoinHandle<(usize, usize)>> = setup
        .keys
        .iter()
        .cloned()
        .map(|keys| {
            std::thread::spawn(move || {
                let plan: Vec<(usize, &String)> = (0..600)
                    .map(|i| (i % 2, &keys[i % 2][(i / 2) % 10]))
                    .collect();
                let commands: Vec<Vec<Vec<u8>>> =
                    plan.iter().map(|(_, key)| cmd(&["GET", key])).collect();
                let mut conn = Client::open(port);
                let writer = conn.send_in_background(&commands);
                let mut errors = 0;
                for (index, (shard, key)) in plan.iter().enumerate() {
                    let got = conn
                        .read_reply()
                        .unwrap_or_else(|error| panic!("no reply {index} to GET {key}: {error}"));
                    match &got {
                        Reply::Error(text) if *shard == 1 => {
                            assert!(
                                text.starts_with("ERR Protocol error from server"),
                                "reply {index} to GET {key}: -{text}"
                            );
                            errors += 1;
                        }
                        _ => assert_eq!(
                            got,
                            FakeShard::value(*shard, key),
                            "reply {index} to GET {key}"
                        ),
                    }
                }
                writer.join().unwrap().unwrap();
                (plan.len(), errors)
            })
        })
        .collect();
    let counts: Vec<(usize, usize)> = clients
        .into_iter()
        .map(|client| client.join().expect("a client failed"))
        .collect();
    let errors: usize = counts.iter().map(|(_, errors)| errors).sum();
    assert!(errors >= 1, "no request was in flight on the garbage");
    setup.assert_only_the_fake_connection_dropped();
    setup.assert_serves();
    println!(
        "garbage: {} replies checked, {errors} protocol errors, {} connections to the fake",
        counts.iter().map(|(replies, _)| replies).sum::<usize>(),
        setup.fake.accepted.load(Ordering::SeqCst)
    );
}

/// A FIFO protocol cannot tell an unrequested reply from the next request's: the extra reply
/// comes when no other request is outstanding on the connection (the two clients take turns),
/// which is when a proxy can tell, and must not hand it to anyone.
#[test]
fn an_unrequested_reply_drops_only_its_connection_and_reaches_no_client() {
    let setup = FakeShard::start(Fault::ExtraReply { after: 5 });
    let mut conns = [Client::open(setup.port), Client::open(setup.port)];
    let mut replies = 0;
    for round in 0..20 {
        for (client, conn) in conns.iter_mut().enumerate() {
            for (shard, keys) in setup.keys[client].iter().enumerate() {
                let key = &keys[round % 10];
                let got = conn.call_str(&["GET", key]);
                replies += 1;
                assert_eq!(
                    got,
                    FakeShard::value(shard, key),
                    "client {client}, round {round}: GET {key}\nrampart log:\n{}",
                    tail(&setup.proxy.log_text(), 20)
                );
            }
        }
        if round == 2 {
            setup.assert_only_the_fake_connection_dropped();
        }
    }
    assert_eq!(setup.fake.accepted.load(Ordering::SeqCst), 2);
    setup.assert_serves();
    assert!(
        setup
            .proxy
            .log_text()
            .contains("a reply arrived for no request"),
        "{}",
        tail(&setup.proxy.log_text(), 20)
    );
    println!("extra reply: {replies} replies checked, all right");
}

// ---------------------------------------------------------------------------------------------
// 4. The pool's one sentinel frozen.
// ---------------------------------------------------------------------------------------------

/// Connections waiting in the accept queue of the loopback listener on `port` (the `rx_queue`
/// of a LISTEN socket in /proc/net/tcp): those made to a process that is frozen.
fn accept_backlog(port: u16) -> usize {
    let local = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .expect("/proc/net/tcp")
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let listening = fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A");
            let (_, queued) = fields.get(4)?.split_once(':')?;
            listening.then(|| usize::from_str_radix(queued, 16).ok())?
        })
        .sum()
}

#[test]
fn a_frozen_sentinel_leaves_the_last_known_topology_in_place() {
    let shards = start_shards(&[true, false]);
    let sentinels = Sentinel::start_group(&[monitors_of(&shards)]);
    let cluster = sentinel_cluster::Cluster::front(shards, sentinels, &Options::default());
    let sentinel = &cluster.sentinels[0];
    let first = cluster.shards[0].master.port;
    let promoted = cluster.shards[0].replica.as_ref().unwrap().port;
    // A failover first, so that the topology rampart knows is not its configuration. The
    // first master stays a writable master until Sentinel converts it, so writes sent back
    // to it would succeed there unnoticed but for the check below.
    let forced = Instant::now();
    assert!(call(sentinel.port, &["SENTINEL", "FAILOVER", "shardA"]).is_ok());
    wait_until(
        "rampart to follow the forced failover",
        Duration::from_secs(20),
        || cluster.sentinel_stat(0, "failovers") == 1,
    );
    let followed = forced.elapsed();

    let load = Load::start(cluster.port, &cluster.routes);
    sentinel.freeze();
    let frozen_at = Instant::now();
    wait_until(
        "rampart to try the frozen sentinel twice",
        Duration::from_secs(10),
        || accept_backlog(sentinel.port) >= 2,
    );
    let report = load.stop();
    let frozen_for = frozen_at.elapsed();
    // Checked while the sentinel is still frozen, before it can turn the first master into a
    // replica of the promoted one.
    report.assert_clean(frozen_at, &cluster.log_tail());
    let written = report.written_since(0, frozen_at);
    assert!(!written.is_empty(), "no write to shard A went through");
    for key in &written {
        assert_eq!(call(promoted, &["GET", key]), bulk(value_of(key)), "{key}");
        assert_eq!(call(first, &["EXISTS", key]), Reply::Integer(0), "{key}");
    }

    sentinel.thaw();
    let thawed = Instant::now();
    // Thawed (in TILT mode for 30 s if the stall was long enough), the sentinel is asked
    // again, its events are followed again, and the load goes on.
    let load = Load::start(cluster.port, &cluster.routes);
    sentinel.wait_polled(2);
    cluster.wait_subscribed();
    load.wait_recovery(0, Instant::now(), || cluster.log_tail());
    let after = load.stop();
    after.assert_clean(thawed, &cluster.log_tail());
    assert_eq!(
        cluster.sentinel_stat(0, "failovers"),
        1,
        "{}",
        cluster.log_tail()
    );
    println!(
        "frozen sentinel: rampart followed the forced failover in {followed:?}; with the \
         sentinel frozen for {frozen_for:?}, {} requests, no error, {} writes to shard A all on \
         its new master; {} requests after the thaw, no error",
        report.requests(),
        written.len(),
        after.requests()
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Out of file descriptors.
// ---------------------------------------------------------------------------------------------

/// Whether a new client is served (PONG), refused (closed, or an error reply), or gets no
/// answer at all (a panic).
fn new_client(port: u16) -> Result<Client, String> {
    let mut client = Client::connect_with_timeout(port, Duration::from_secs(5))
        .unwrap_or_else(|error| panic!("connect to {port}: {error}"));
    match client.try_call(&[b"PING"]) {
        Ok(reply) if reply == pong() => Ok(client),
        Ok(Reply::Error(text)) => Err(format!("-{text}")),
        Ok(other) => panic!("PING gave {other:?}"),
        Err(error)
            if error.kind() == std::io::ErrorKind::WouldBlock
                || error.kind() == std::io::ErrorKind::TimedOut =>
        {
            panic!("a new client got no answer within 5 s: {error}")
        }
        Err(error) => Err(format!("closed ({error})")),
    }
}

/// The open-file limit rampart runs under.
const OPEN_FILES: u64 = 64;

/// rampart under RLIMIT_NOFILE `OPEN_FILES` over two redis-servers, with as many clients as
/// it serves: the last new client was refused. Its pool's keys `warm` (on s0, whose backend
/// connection was made first) and `cold` (on s1, not connected yet) hold `value_of` them.
struct OutOfDescriptors {
    _redis: Vec<Redis>,
    proxy: Rampart,
    port: u16,
    warm: String,
    cold: String,
    clients: Vec<Client>,
    /// How the first client past the limit was refused.
    refusal: String,
}

impl OutOfDescriptors {
    fn start() -> OutOfDescriptors {
        let redis: Vec<Redis> = (0..2).map(|_| Redis::start(&[])).collect();
        let port = free_port();
        let yaml = alpha_yaml(port, "", &[redis[0].port, redis[1].port]);
        let proxy = Rampart::start_with_open_files(&yaml, &[port], &["--workers", "1"], OPEN_FILES);
        let mut keys = keys_by_shard(&proxy.config, "fd:", 1, 2);
        let (cold, warm) = (keys[1].remove(0), keys[0].remove(0));
        write_values(port, &[vec![warm.clone()]]);
        let set = redis[1]
            .client()
            .call_str(&["SET", &cold, &value_of(&cold)]);
        assert!(set.is_ok(), "{set:?}");
        let mut clients = Vec::new();
        let refusal = loop {
            assert!(
                clients.len() < OPEN_FILES as usize,
                "{OPEN_FILES} clients served with a limit of {OPEN_FILES} descriptors"
            );
            match new_client(port) {
                Ok(client) => clients.push(client),
                Err(refusal) => break refusal,
            }
        };
        OutOfDescriptors {
            _redis: redis,
            proxy,
            port,
            warm,
            cold,
            clients,
            refusal,
        }
    }
}

#[test]
fn out_of_file_descriptors_new_clients_are_refused_cleanly_until_some_close() {
    let mut out = OutOfDescriptors::start();
    let (port, warm, cold) = (out.port, out.warm.clone(), out.cold.clone());
    let served = out.clients.len();
    let started = Instant::now();
    for _ in 0..5 {
        assert!(new_client(port).is_err(), "a client served past the limit");
    }
    let refusing = started.elapsed() / 5;
    let cpu = cpu_share(out.proxy.process(), Duration::from_secs(1));
    assert!(
        cpu < IDLE_CPU_LIMIT,
        "rampart used {:.0}% CPU out of descriptors\n{}",
        cpu * 100.0,
        tail(&out.proxy.log_text(), 20)
    );
    for client in &mut out.clients {
        assert_eq!(client.call_str(&["GET", &warm]), bulk(value_of(&warm)));
    }
    // A shard without a connection yet gets an error at once.
    let cold_reply = out.clients[0].call_str(&["GET", &cold]);
    assert!(matches!(cold_reply, Reply::Error(_)), "{cold_reply:?}");

    out.clients.truncate(served / 2);
    let closed = Instant::now();
    let mut fresh = None;
    wait_until(
        "a new client to be served after others closed",
        Duration::from_secs(10),
        || {
            fresh = new_client(port).ok();
            fresh.is_some()
        },
    );
    let recovery = closed.elapsed();
    let mut fresh = fresh.unwrap();
    for key in [&warm, &cold] {
        assert_eq!(fresh.call_str(&["GET", key]), bulk(value_of(key)));
    }
    assert!(!out.proxy.has_exited(), "rampart exited");
    let log = out.proxy.log_text();
    assert!(
        log.contains("out of file descriptors: a new client was closed at once"),
        "{}",
        tail(&log, 20)
    );
    println!(
        "fd limit {OPEN_FILES}: {served} clients served, the next refused ({}) in {refusing:?} \
         each, {:.1}% CPU while refusing, a request to an unconnected shard got {cold_reply:?}; \
         a new client served {recovery:?} after half closed",
        out.refusal,
        cpu * 100.0
    );
}

#[test]
fn out_of_file_descriptors_the_admin_endpoint_answers_or_closes_at_once() {
    let out = OutOfDescriptors::start();
    let logged = out.proxy.log_text().lines().count();
    let mut admin = TcpStream::connect(("127.0.0.1", out.proxy.admin_port)).expect("connect");
    admin
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    admin.write_all(b"GET /health HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let read = std::io::Read::read_to_end(&mut admin, &mut answer);
    let hung = read.as_ref().is_err_and(|error| {
        matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )
    });
    assert!(!hung, "the admin client got no answer within 5 s");
    let more = out.proxy.log_text().lines().count() - logged;
    assert!(more <= 5, "{more} log lines for one admin client");
}

// ---------------------------------------------------------------------------------------------
// 6. The log on a full disk.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_full_log_disk_neither_stops_nor_spins_the_proxy() {
    let live = Redis::start(&[]);
    let (dead_port, port) = (free_port(), free_port());
    let yaml = alpha_yaml(port, "", &[live.port, dead_port]);
    let mut proxy = Rampart::spawn(&yaml, &["-v", "11", "-o", "/dev/full", "--workers", "1"]);
    proxy.wait_listening(&[port]);
    let keys = keys_by_shard(&proxy.config, "full:", 5, 2);
    // Clients come and go, and every request to the dead server logs its failure.
    let mut requests = 0;
    for round in 0..20 {
        let mut conn = Client::open(port);
        for key in &keys[0] {
            let value = format!("{key}-{round}");
            assert_eq!(conn.call_str(&["SET", key, &value]), ok());
            assert_eq!(conn.call_str(&["GET", key]), bulk(&value));
        }
        for key in &keys[1] {
            assert_eq!(
                conn.call_str(&["GET", key]),
                error("ERR Connection refused")
            );
        }
        requests += 3 * keys[0].len();
    }
    let cpu = cpu_share(proxy.process(), Duration::from_secs(1));
    assert!(
        cpu < IDLE_CPU_LIMIT,
        "rampart used {:.0}% CPU while idle with its log on a full disk",
        cpu * 100.0
    );
    assert!(!proxy.has_exited(), "rampart exited");
    assert_eq!(Client::open(port).call_str(&["PING"]), pong());
    println!(
        "log on /dev/full: {requests} requests served, {:.1}% CPU idle afterwards",
        cpu * 100.0
    );
}
