//! Connections a client holds, across a Sentinel failover, end to end: real redis-server
//! masters and replicas, three real redis-sentinel processes and rampart in front (the
//! failover tests' cluster). While shardA's master goes away, clients hold on it: a
//! transaction open (MULTI and queued commands, EXEC not sent), a blocked BLPOP, a WATCH in
//! force, a raw RESP subscriber, and a redis-py `pubsub()` subscriber in its own thread.
//!
//! What must hold (docs/compatibility.md, "Transactions and blocking commands"): what was in
//! flight on a held connection is answered with an error (`-TRYAGAIN shard 'shardA' has a new
//! master; ...` once rampart follows the failover, the connection error if the connection
//! died first); the transaction and WATCH clients are disconnected (after one error if they
//! send more), and no queued command ever runs outside its transaction; the blocked client
//! keeps its connection, and its next BLPOP is served by the promoted master; the subscriber
//! is disconnected, and a new one on the same channel hears what is published after the
//! promotion; redis-py's subscriber reconnects and subscribes again by itself (how many
//! messages published during the failover it missed is printed: pub/sub is at-most-once).
//!
//! The master goes away in two ways: kill -9, whose sockets the kernel closes at once, so
//! held connections end with a connection error before the failover is noticed; and SIGSTOP,
//! a hung machine whose sockets stay open, so that only the failover, followed by rampart,
//! can end them, with `-TRYAGAIN`.

mod support;

use std::fs;
use std::io::{self, BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::replication::info;
use support::resp::{Client, Reply, bulk, call};
use support::sentinel_cluster::{Cluster, Options, SHARD_NAMES, wait_replicated};
use support::wait_until;

/// The shard whose master goes away.
const SHARD: usize = 0;
/// How long after the promotion a redis-py subscriber must hear every message.
const RESUBSCRIBED_WITHIN: Duration = Duration::from_secs(2);
/// How long the publisher to the redis-py subscriber goes on after the promotion.
const PUBLISH_AFTER_PROMOTION: Duration = Duration::from_millis(3500);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TakeDown {
    /// kill -9: the master's sockets close at once.
    Kill,
    /// SIGSTOP: the master hangs with its sockets open, as a machine gone from the network.
    Freeze,
}

/// The documented reply for what a held connection carried when its shard's master moved.
fn tryagain() -> Reply {
    Reply::Error(format!(
        "TRYAGAIN shard '{}' has a new master; the transaction, WATCH or blocking command held \
         on its old master was cancelled",
        SHARD_NAMES[SHARD]
    ))
}

/// The keys (and channel names, which are placed as keys are) the scenario uses, all on
/// shardA.
struct Names {
    queued: [String; 3],
    list: String,
    watched: String,
    channel: String,
    other_channel: String,
    py_channel: String,
    probe: String,
}

impl Names {
    fn on_shard(cluster: &Cluster) -> Names {
        let mut keys = cluster
            .routes
            .data
            .iter()
            .filter(|(_, shard)| *shard == SHARD)
            .map(|(key, _)| key.clone());
        let mut next = || keys.next().expect("enough data keys on shardA");
        Names {
            queued: [next(), next(), next()],
            list: next(),
            watched: next(),
            channel: next(),
            other_channel: next(),
            py_channel: next(),
            probe: next(),
        }
    }
}

/// Reads replies until the proxy closes the connection: the replies, and whether it closed
/// (false: the read timed out with the connection still open).
fn read_until_closed(client: &mut Client) -> (Vec<Reply>, Result<(), String>) {
    let mut replies = Vec::new();
    loop {
        match client.read_reply() {
            Ok(reply) => replies.push(reply),
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                ) =>
            {
                return (replies, Ok(()));
            }
            Err(error) => return (replies, Err(error.to_string())),
        }
    }
}

/// `client` (the `who` client), whose held connection was lost, answers `args` with at most
/// one error and is disconnected.
fn assert_cut_off(label: &str, who: &str, client: &mut Client, args: &[&str]) {
    let (replies, closed) = send_until_closed(client, args);
    println!("{label}: the {who} client's next command got {replies:?}, closed: {closed:?}");
    assert_eq!(
        closed,
        Ok(()),
        "the {who} client's connection was not closed; it got {replies:?}"
    );
    assert!(
        replies.len() <= 1 && replies.iter().all(|reply| matches!(reply, Reply::Error(_))),
        "the {who} client got {replies:?}"
    );
}

/// Sends one command and reads what comes back until the proxy closes the connection. A
/// connection the proxy already closed may refuse the write: that counts as closed.
fn send_until_closed(client: &mut Client, args: &[&str]) -> (Vec<Reply>, Result<(), String>) {
    let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
    match client.try_call(&args) {
        Ok(first) => {
            let (mut rest, closed) = read_until_closed(client);
            rest.insert(0, first);
            (rest, closed)
        }
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            ) =>
        {
            (Vec::new(), Ok(()))
        }
        Err(error) => (Vec::new(), Err(error.to_string())),
    }
}

fn array(items: &[&str]) -> Reply {
    Reply::Array(Some(items.iter().map(bulk).collect()))
}

fn blocked_clients(port: u16) -> u64 {
    info(port, &["clients"])
        .get("blocked_clients")
        .and_then(|count| count.parse().ok())
        .unwrap_or(0)
}

/// rampart's workers in the failover tests' cluster (`--workers 2`).
const WORKERS: i64 = 2;

/// The worker serving a connection: rampart numbers its clients `sequence * workers + worker
/// + 1`, and CLIENT ID answers that number.
fn worker_of(client: &mut Client) -> i64 {
    match client.call_str(&["CLIENT", "ID"]) {
        Reply::Integer(id) => (id - 1) % WORKERS,
        other => panic!("CLIENT ID gave {other:?}"),
    }
}

/// A connection (reads failing after 15 s) that worker `worker` serves.
fn connect_on_worker(port: u16, worker: i64) -> Client {
    for _ in 0..200 {
        let mut client = Client::connect_with_timeout(port, Duration::from_secs(15)).unwrap();
        if worker_of(&mut client) == worker {
            return client;
        }
    }
    panic!("no connection of 200 landed on worker {worker}");
}

/// One `PUBLISH` to the redis-py subscriber's channel.
struct Published {
    number: u64,
    sent: Instant,
    reply: Result<Reply, String>,
}

impl Published {
    /// Whether the server took it (it answered how many subscribers got it).
    fn acknowledged(&self) -> bool {
        matches!(self.reply, Ok(Reply::Integer(_)))
    }
}

/// Publishes numbered messages through the proxy every 20 ms on `client` until stopped,
/// reconnecting after a connection error.
fn start_publisher(
    port: u16,
    client: Client,
    channel: String,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Vec<Published>> {
    std::thread::spawn(move || {
        let connect = || Client::connect_with_timeout(port, Duration::from_secs(15));
        let mut client = Some(client);
        let mut published = Vec::new();
        let mut number = 0;
        while !stop.load(Ordering::Acquire) {
            number += 1;
            let sent = Instant::now();
            let text = number.to_string();
            let reply = match client.as_mut() {
                Some(client) => client
                    .try_call(&[b"PUBLISH", channel.as_bytes(), text.as_bytes()])
                    .map_err(|error| error.to_string()),
                None => Err("not connected".to_string()),
            };
            if reply.is_err() {
                client = connect().ok();
            }
            published.push(Published {
                number,
                sent,
                reply,
            });
            std::thread::sleep(Duration::from_millis(20));
        }
        published
    })
}

/// The redis-py subscriber script, its output lines as they come, killed when dropped.
struct PySubscriber {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: tempfile::NamedTempFile,
}

impl PySubscriber {
    fn start(port: u16, channel: &str) -> PySubscriber {
        let stderr = tempfile::NamedTempFile::new().expect("temp file");
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/clients/redis_py_failover_subscriber.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args([&port.to_string(), channel])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().expect("reopen the stderr file"))
            .spawn()
            .expect("start python3");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let subscriber = PySubscriber {
            child,
            stdin,
            lines,
            stderr,
        };
        wait_until(
            "the redis-py subscriber to be ready",
            Duration::from_secs(15),
            || subscriber.has_line("ready"),
        );
        subscriber
    }

    fn has_line(&self, wanted: &str) -> bool {
        let lines = self.lines.lock().unwrap();
        assert!(
            !lines
                .iter()
                .any(|line| line.starts_with("error no subscribe")),
            "{lines:?}"
        );
        lines.iter().any(|line| line == wanted)
    }

    /// The message numbers received so far.
    fn received(&self) -> Vec<u64> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| line.strip_prefix("message "))
            .filter_map(|number| number.parse().ok())
            .collect()
    }

    /// The exceptions redis-py's worker thread reported.
    fn errors(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.starts_with("error "))
            .cloned()
            .collect()
    }

    /// Ends the script (end of stdin) and waits for it to say so.
    fn finish(&mut self) {
        drop(self.stdin.take());
        wait_until(
            "the redis-py subscriber to stop",
            Duration::from_secs(10),
            || self.has_line("done"),
        );
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }
}

impl Drop for PySubscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn held_connections_across_a_failover(take_down: TakeDown) {
    let label = format!("{take_down:?}").to_lowercase();
    let mut cluster = Cluster::start(Options {
        write_data: false,
        ..Options::default()
    });
    let names = Names::on_shard(&cluster);
    let port = cluster.port;
    let old_master = cluster.shards[SHARD].master.port;
    let promoted = cluster.shards[SHARD].replica.as_ref().unwrap().port;
    let mut other = Client::open(port);
    assert!(other.call_str(&["SET", &names.watched, "before"]).is_ok());
    // The held clients are all on the worker the publisher to redis-py is not on: no request
    // reaches that worker from the take-down until they are checked, so nothing but the
    // failover itself can end what they hold.
    let mut publishing = Client::connect_with_timeout(port, Duration::from_secs(15)).unwrap();
    let quiet = (worker_of(&mut publishing) + 1) % WORKERS;

    // (a) A transaction with two commands queued, EXEC not sent.
    let mut transaction = connect_on_worker(port, quiet);
    assert!(transaction.call_str(&["MULTI"]).is_ok());
    for key in &names.queued[..2] {
        assert_eq!(
            transaction.call_str(&["SET", key, "queued"]),
            Reply::Status("QUEUED".into())
        );
    }
    // (b) A BLPOP blocked on the master.
    let mut blocked = connect_on_worker(port, quiet);
    blocked.send(&[b"BLPOP", names.list.as_bytes(), b"0"]);
    wait_until(
        "the BLPOP to block on the master",
        Duration::from_secs(5),
        || blocked_clients(old_master) >= 1,
    );
    // (c) A WATCH in force.
    let mut watching = connect_on_worker(port, quiet);
    assert!(watching.call_str(&["WATCH", &names.watched]).is_ok());
    assert_eq!(watching.call_str(&["GET", &names.watched]), bulk("before"));
    // (d) A subscriber, which hears a message.
    let mut subscriber = connect_on_worker(port, quiet);
    assert_eq!(
        subscriber.call_str(&["SUBSCRIBE", &names.channel]),
        Reply::Array(Some(vec![
            bulk("subscribe"),
            bulk(&names.channel),
            Reply::Integer(1)
        ]))
    );
    assert_eq!(
        other.call_str(&["PUBLISH", &names.channel, "before"]),
        Reply::Integer(1)
    );
    assert_eq!(
        subscriber.read_reply().unwrap(),
        array(&["message", &names.channel, "before"])
    );
    // redis-py's subscriber, hearing a message every 20 ms.
    let mut py = PySubscriber::start(port, &names.py_channel);
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = start_publisher(
        port,
        publishing,
        names.py_channel.clone(),
        Arc::clone(&stop),
    );
    wait_until(
        "the redis-py subscriber to hear messages",
        Duration::from_secs(5),
        || py.received().len() >= 3,
    );
    wait_replicated(&cluster.shards);

    let taken_down = Instant::now();
    match take_down {
        TakeDown::Kill => {
            cluster.kill_master(SHARD);
        }
        TakeDown::Freeze => {
            cluster.shards[SHARD].master.freeze();
            // A subscription whose confirmation the hung master never sends.
            subscriber.send(&[b"SUBSCRIBE", names.other_channel.as_bytes()]);
        }
    }
    wait_until(
        "the sentinels to promote shardA's replica",
        Duration::from_secs(20),
        || cluster.sentinel_master(SHARD) == Some(promoted),
    );
    let promoted_at = Instant::now();
    // (b) The blocked client gets an error and keeps its connection.
    let answer = blocked.read_reply();
    println!("{label}: the blocked BLPOP was answered {answer:?}");
    let answer = answer.unwrap_or_else(|error| {
        panic!(
            "the blocked client got no reply: {error}\nrampart log:\n{}",
            cluster.log_tail()
        )
    });
    match take_down {
        // Its connection to the old master was closed by the kill, before the failover.
        TakeDown::Kill => assert!(
            answer == tryagain() || matches!(&answer, Reply::Error(_)),
            "the blocked BLPOP got {answer:?}"
        ),
        TakeDown::Freeze => assert_eq!(answer, tryagain(), "the blocked BLPOP's answer"),
    }

    // (d) The subscriber is disconnected; a pending confirmation gets an error first.
    let (replies, closed) = read_until_closed(&mut subscriber);
    println!("{label}: the subscriber got {replies:?} and then its connection closed: {closed:?}");
    assert_eq!(
        closed,
        Ok(()),
        "the subscriber's connection was not closed; it got {replies:?}\nrampart log:\n{}",
        cluster.log_tail()
    );
    if take_down == TakeDown::Freeze {
        let lost = format!(
            "ERR the subscription connection to shard '{}' was lost (the shard's master moved); \
             subscribe again",
            SHARD_NAMES[SHARD]
        );
        assert_eq!(
            replies,
            vec![Reply::Error(lost)],
            "the pending SUBSCRIBE's answer"
        );
    }

    // rampart follows: a write to the shard lands on the promoted master.
    wait_until(
        "rampart to send shardA's writes to the promoted master",
        Duration::from_secs(15),
        || {
            let set = Client::connect_with_timeout(port, Duration::from_secs(12))
                .and_then(|mut client| client.try_call(&[b"SET", names.probe.as_bytes(), b"x"]));
            matches!(set, Ok(reply) if reply.is_ok())
                && call(promoted, &["GET", &names.probe]) == bulk("x")
        },
    );
    let followed_at = Instant::now();
    println!(
        "{label}: sentinels promoted the replica {:.2} s after the take-down; rampart's writes \
         reached it {:.2} s later",
        (promoted_at - taken_down).as_secs_f64(),
        (followed_at - promoted_at).as_secs_f64()
    );

    // (a) The transaction's next command gets an error and the client is disconnected.
    assert_cut_off(
        &label,
        "transaction",
        &mut transaction,
        &["SET", &names.queued[2], "queued"],
    );
    // (c) So is the WATCH client, after an error for the write it sends.
    assert_cut_off(
        &label,
        "WATCH",
        &mut watching,
        &["SET", &names.watched, "after"],
    );
    // Nothing queued ran outside its transaction, and the watched key is untouched.
    for key in &names.queued {
        assert_eq!(
            call(promoted, &["EXISTS", key]),
            Reply::Integer(0),
            "{key}, queued in the transaction, was set on the promoted master"
        );
    }
    assert_eq!(call(promoted, &["GET", &names.watched]), bulk("before"));

    // (b) The blocked client's next BLPOP blocks on the promoted master, and is served there.
    blocked.send(&[b"BLPOP", names.list.as_bytes(), b"10"]);
    wait_until(
        "the new BLPOP to block on the promoted master",
        Duration::from_secs(5),
        || blocked_clients(promoted) >= 1,
    );
    assert_eq!(
        call(promoted, &["LPUSH", &names.list, "after"]),
        Reply::Integer(1)
    );
    assert_eq!(
        blocked.read_reply().unwrap(),
        array(&[&names.list, "after"]),
        "the BLPOP after the failover"
    );

    // (d) A new subscriber on the same channel hears what is published now.
    let mut again = Client::open(port);
    assert_eq!(
        again.call_str(&["SUBSCRIBE", &names.channel]),
        Reply::Array(Some(vec![
            bulk("subscribe"),
            bulk(&names.channel),
            Reply::Integer(1)
        ]))
    );
    let mut publisher_client = Client::open(port);
    assert_eq!(
        publisher_client.call_str(&["PUBLISH", &names.channel, "after"]),
        Reply::Integer(1)
    );
    assert_eq!(
        again.read_reply().unwrap(),
        array(&["message", &names.channel, "after"])
    );

    // redis-py: every message published from the promotion + 2 s on is heard.
    if let Some(left) =
        (promoted_at + PUBLISH_AFTER_PROMOTION).checked_duration_since(Instant::now())
    {
        std::thread::sleep(left);
    }
    stop.store(true, Ordering::Release);
    let published = publisher.join().expect("the publisher thread");
    let must_hear: Vec<u64> = published
        .iter()
        .filter(|message| message.sent >= promoted_at + RESUBSCRIBED_WITHIN)
        .map(|message| message.number)
        .collect();
    assert!(
        must_hear.len() >= 20,
        "only {} messages published late",
        must_hear.len()
    );
    let heard_all = || {
        let received = py.received();
        must_hear.iter().all(|number| received.contains(number))
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !heard_all() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let received = py.received();
    let in_window: Vec<&Published> = published
        .iter()
        .filter(|message| {
            message.sent >= taken_down && message.sent < promoted_at + RESUBSCRIBED_WITHIN
        })
        .collect();
    let lost_in_window = in_window
        .iter()
        .filter(|message| message.acknowledged())
        .filter(|message| !received.contains(&message.number))
        .count();
    let refused_in_window = in_window.len()
        - in_window
            .iter()
            .filter(|message| message.acknowledged())
            .count();
    let errors = py.errors();
    println!(
        "{label}: redis-py subscriber: {} messages published, {} received; of {} published \
         between the take-down and the promotion + 2 s, {lost_in_window} acknowledged but not \
         received, {refused_in_window} not published (error reply or connection error); redis-py's \
         thread met {} exceptions, first {:?}",
        published.len(),
        received.len(),
        in_window.len(),
        errors.len(),
        errors.first()
    );
    let missed: Vec<(u64, String)> = published
        .iter()
        .filter(|message| {
            must_hear.contains(&message.number) && !received.contains(&message.number)
        })
        .map(|message| (message.number, format!("{:?}", message.reply)))
        .collect();
    assert!(
        missed.is_empty(),
        "{label}: redis-py missed {} of the {} messages published from the promotion + 2 s on \
         (number, PUBLISH reply): {:?}\nits errors: {errors:?}\nits stderr:\n{}\nrampart log:\n{}",
        missed.len(),
        must_hear.len(),
        &missed[..missed.len().min(10)],
        py.stderr(),
        cluster.log_tail()
    );
    py.finish();
}

#[test]
fn a_killed_master_cancels_held_connections() {
    held_connections_across_a_failover(TakeDown::Kill);
}

#[test]
fn a_hung_master_cancels_held_connections_with_tryagain() {
    held_connections_across_a_failover(TakeDown::Freeze);
}
