//! Pub/sub through rampart over real redis-servers: the confirmations, subscribed-mode rules,
//! PING and RESET answered byte for byte as a redis-server answers them; channels spread over
//! the shards, patterns on every shard, shard channels; a redis-rs subscriber; and a redis-py
//! fan-out of 10,000 messages to 20 subscribers (RESP2 and RESP3) that loses and duplicates
//! nothing.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::process::{Rampart, Redis, pool_yaml, run_within};
use support::resp::{Client, Reply, bulk, cmd};
use support::shards::Cluster;
use support::{free_port, wait_until};

const DIRECTIVES: &str = "  hash: murmur\n  distribution: ketama\n";

fn start(shards: usize) -> Cluster {
    Cluster::start(shards, DIRECTIVES, &[])
}

fn shard_of(pool: &Cluster, name: &str) -> usize {
    pool.shards_of(&[name.to_string()])[0]
}

/// Channels named `prefix<n>` on two different shards.
fn channels_on_two_shards(pool: &Cluster, prefix: &str) -> (String, String) {
    let names = pool.key_per_shard(prefix);
    (names[0].clone(), names[1].clone())
}

fn read_all(client: &mut Client, count: usize) -> Vec<Reply> {
    (0..count)
        .map(|_| client.read_reply().expect("a reply"))
        .collect()
}

/// The same requests to rampart and to one redis-server: the same replies, in RESP2 and RESP3.
#[test]
fn confirmations_and_subscribed_mode_match_redis_server() {
    let pool = start(3);
    let direct = Redis::start(&[]);
    let (a, b) = channels_on_two_shards(&pool, "chan:");
    for hello in [None, Some("3")] {
        let script: Vec<Vec<Vec<u8>>> = vec![
            cmd(&["UNSUBSCRIBE"]),
            cmd(&["PUNSUBSCRIBE"]),
            cmd(&["SUBSCRIBE", &a, &b, &a]),
            cmd(&["PSUBSCRIBE", "chan:*", "x?"]),
            cmd(&["PING"]),
            cmd(&["PING", "hello"]),
            cmd(&["UNSUBSCRIBE", &b, "never-subscribed"]),
            cmd(&["SSUBSCRIBE", &a]),
            cmd(&["SUNSUBSCRIBE"]),
            cmd(&["PUNSUBSCRIBE"]),
            cmd(&["UNSUBSCRIBE"]),
            cmd(&["PING"]),
        ];
        let mut replies = Vec::new();
        for port in [pool.port, direct.port] {
            let mut client = Client::connect(port).expect("connect");
            if let Some(version) = hello {
                assert!(matches!(
                    client.call_str(&["HELLO", version]),
                    Reply::Map(_) | Reply::Array(_)
                ));
            }
            client.send_raw(&support::resp::encode_all(&script));
            // One reply per channel or pattern for the (un)subscribe family.
            let count = 2 + 3 + 2 + 2 + 2 + 1 + 1 + 2 + 1 + 1;
            replies.push(read_all(&mut client, count));
        }
        assert_eq!(
            replies[0], replies[1],
            "protocol {hello:?}: rampart's replies differ from redis-server's"
        );
    }
    // In RESP2 subscribed mode, other commands get Redis's error; RESET leaves the mode.
    let mut through = pool.conn();
    let mut redis = direct.client();
    for client in [&mut through, &mut redis] {
        client.send_raw(&support::resp::encode_all(&[cmd(&["SUBSCRIBE", "solo"])]));
        client.read_reply().expect("confirmation");
    }
    let refused = through.call_str(&["GET", "k"]);
    assert_eq!(refused, redis.call_str(&["GET", "k"]));
    assert_eq!(through.call_str(&["RESET"]), Reply::Status("RESET".into()));
    assert_eq!(
        through.call_str(&["SET", "after-reset", "1"]),
        support::resp::ok()
    );
}

#[test]
fn messages_reach_subscribers_on_every_shard() {
    let pool = start(3);
    let (a, b) = channels_on_two_shards(&pool, "room:");
    let mut subscriber = pool.conn();
    subscriber.send_raw(&support::resp::encode_all(&[
        cmd(&["SUBSCRIBE", &a, &b]),
        cmd(&["PSUBSCRIBE", "room:*"]),
        cmd(&["SSUBSCRIBE", &a]),
    ]));
    assert_eq!(read_all(&mut subscriber, 4).len(), 4);
    let mut publisher = pool.conn();
    assert_eq!(
        publisher.call_str(&["PUBLISH", &a, "one"]),
        Reply::Integer(2),
        "the channel and the pattern"
    );
    assert_eq!(
        publisher.call_str(&["PUBLISH", &b, "two"]),
        Reply::Integer(2)
    );
    assert_eq!(
        publisher.call_str(&["PUBLISH", "room:x", "three"]),
        Reply::Integer(1)
    );
    assert_eq!(
        publisher.call_str(&["PUBLISH", "other", "none"]),
        Reply::Integer(0)
    );
    assert_eq!(
        publisher.call_str(&["SPUBLISH", &a, "four"]),
        Reply::Integer(1)
    );
    let mut messages = read_all(&mut subscriber, 6);
    messages.sort_by_key(|reply| format!("{reply:?}"));
    let expected = |items: &[&str]| Reply::Array(Some(items.iter().map(bulk).collect()));
    let mut wanted = vec![
        expected(&["message", &a, "one"]),
        expected(&["pmessage", "room:*", &a, "one"]),
        expected(&["message", &b, "two"]),
        expected(&["pmessage", "room:*", &b, "two"]),
        expected(&["pmessage", "room:*", "room:x", "three"]),
        expected(&["smessage", &a, "four"]),
    ];
    wanted.sort_by_key(|reply| format!("{reply:?}"));
    assert_eq!(messages, wanted);
    // Each shard holds only the subscriptions of its own channels (and every pattern).
    for (index, backend) in pool.redis.iter().enumerate() {
        let Reply::Array(Some(channels)) = backend.client().call_str(&["PUBSUB", "CHANNELS"])
        else {
            panic!("PUBSUB CHANNELS");
        };
        for channel in channels {
            let name = channel.text().expect("a channel name");
            assert_eq!(
                shard_of(&pool, &name),
                index,
                "{name} subscribed on shard {index}"
            );
        }
        assert_eq!(
            backend.client().call_str(&["PUBSUB", "NUMPAT"]),
            Reply::Integer(1)
        );
    }
    // Unsubscribing from everything closes the links: the shards forget the client.
    subscriber.send_raw(&support::resp::encode_all(&[
        cmd(&["UNSUBSCRIBE"]),
        cmd(&["PUNSUBSCRIBE"]),
        cmd(&["SUNSUBSCRIBE"]),
    ]));
    assert_eq!(read_all(&mut subscriber, 4).len(), 4);
    wait_until(
        "the shards forget the subscriber",
        Duration::from_secs(10),
        || {
            pool.redis.iter().all(|backend| {
                backend.client().call_str(&["PUBSUB", "NUMPAT"]) == Reply::Integer(0)
            })
        },
    );
    assert_eq!(subscriber.call_str(&["SET", "k", "v"]), support::resp::ok());
}

#[test]
fn a_redis_rs_subscriber_receives_from_every_shard() {
    let pool = start(3);
    let (a, b) = channels_on_two_shards(&pool, "rs:");
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", pool.port)).expect("url");
    let mut connection = client.get_connection().expect("connect");
    let mut pubsub = connection.as_pubsub();
    pubsub.subscribe(&[&a, &b]).expect("subscribe");
    pubsub.psubscribe("rs:*").expect("psubscribe");
    pubsub
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut publisher = client.get_connection().expect("connect");
    for (channel, payload) in [(&a, "x"), (&b, "y")] {
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query(&mut publisher)
            .expect("publish");
        assert_eq!(receivers, 2);
    }
    let mut got: Vec<(String, String)> = (0..4)
        .map(|_| {
            let message = pubsub.get_message().expect("a message");
            (
                message.get_channel_name().to_string(),
                message.get_payload::<String>().expect("payload"),
            )
        })
        .collect();
    got.sort();
    let mut wanted = vec![
        (a.clone(), "x".to_string()),
        (a.clone(), "x".to_string()),
        (b.clone(), "y".to_string()),
        (b.clone(), "y".to_string()),
    ];
    wanted.sort();
    assert_eq!(got, wanted);
}

#[test]
fn a_redis_py_fan_out_loses_and_duplicates_nothing() {
    let pool = start(3);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/redis_py_pubsub.py");
    for protocol in ["2", "3"] {
        let output = run_within(
            Command::new("python3")
                .arg(&script)
                .arg(pool.port.to_string())
                .args(["--protocol", protocol]),
            Duration::from_secs(180),
        )
        .unwrap_or_else(|failure| panic!("redis-py RESP{protocol}: {failure}"));
        eprintln!("redis-py RESP{protocol}: {}", output.trim());
    }
}

#[test]
fn subscribers_are_bounded_by_dedicated_connections() {
    let backends = [Redis::start(&[])];
    let port = free_port();
    let entries = [format!("127.0.0.1:{}:1", backends[0].port)];
    let yaml = pool_yaml("bounded", port, "  dedicated_connections: 2\n", &entries);
    let _proxy = Rampart::start(&yaml, &[port], &[]);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut subscriber = Client::connect(port).expect("connect");
        subscriber.send_raw(&support::resp::encode_all(&[cmd(&["SUBSCRIBE", "c"])]));
        assert!(matches!(subscriber.read_reply(), Ok(Reply::Array(Some(_)))));
        held.push(subscriber);
    }
    let mut third = Client::connect(port).expect("connect");
    let Reply::Error(text) = third.call_str(&["SUBSCRIBE", "c"]) else {
        panic!("a third subscriber went through with dedicated_connections: 2");
    };
    assert!(text.contains("dedicated_connections"), "-{text}");
    assert_eq!(
        third.call_str(&["PING"]),
        Reply::Status("PONG".into()),
        "not subscribed"
    );
    drop(held);
    wait_until("a link freed", Duration::from_secs(10), || {
        let mut retry = Client::connect(port).expect("connect");
        retry.send_raw(&support::resp::encode_all(&[cmd(&["SUBSCRIBE", "c"])]));
        matches!(retry.read_reply(), Ok(Reply::Array(Some(_))))
    });
}

/// A subscriber that stops reading while messages pour in is disconnected at Redis's pub/sub
/// output limit (32 MB), not the 1 GB of ordinary clients; the proxy's memory stays bounded
/// and the publisher is never slowed down.
#[test]
fn a_subscriber_that_does_not_read_is_cut_at_the_pub_sub_limit() {
    let pool = start(1);
    let mut sleeper = pool.conn();
    sleeper.send_raw(&support::resp::encode_all(&[cmd(&["SUBSCRIBE", "flood"])]));
    assert!(matches!(sleeper.read_reply(), Ok(Reply::Array(Some(_)))));
    let before = pool.proxy.vm_rss_kb();
    let payload = "x".repeat(16 * 1024);
    let mut publisher = pool.conn();
    let mut peak = before;
    let mut sent = 0;
    let disconnected = |pool: &Cluster| {
        support::stats::pool_counter(&pool.proxy.stats(), "alpha", "client_err") > 0
    };
    while !disconnected(&pool) {
        let batch: Vec<Vec<Vec<u8>>> = (0..64)
            .map(|_| cmd(&["PUBLISH", "flood", &payload]))
            .collect();
        for reply in publisher.pipeline(&batch) {
            assert!(matches!(reply, Reply::Integer(0 | 1)), "{reply:?}");
        }
        sent += batch.len() * payload.len();
        peak = peak.max(pool.proxy.vm_rss_kb());
        assert!(
            sent < 1 << 30,
            "1 GB published and the subscriber is still connected"
        );
    }
    eprintln!(
        "subscriber cut after {} MB published; rampart RSS {} kB before, {} kB at most",
        sent >> 20,
        before,
        peak
    );
    assert!(
        peak < before + 80 * 1024,
        "rampart grew from {before} kB to {peak} kB"
    );
    // The messages the client had not read were dropped with its connection.
    let unread = (0..10_000)
        .take_while(|_| sleeper.read_reply().is_ok())
        .count();
    assert!(unread < 10_000, "the subscriber's connection is still open");
}
