//! The commands over the whole keyspace through rampart, against real redis-server shards:
//! SCAN walks every shard (100,000 keys, each seen exactly once, with MATCH, COUNT and TYPE, by
//! the raw client and by redis-py in RESP2 and RESP3), DBSIZE sums, KEYS unites, RANDOMKEY
//! finds a key (nil only on an empty pool), FLUSHDB empties every shard, and a shard that is
//! down makes them fail naming it, a flush refused before anything is flushed. Bad input gets
//! the error text redis-server gives.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::process::run_within;
use support::resp::{Client, Reply, cmd};
use support::shards::Cluster;
use support::wait_until;

/// String keys `k:<n>` filled by the big scan test.
const STRINGS: usize = 100_000;
/// Hashes `h:<n>` among them.
const HASHES: usize = 300;

/// Fills the pool through the proxy with pipelined MSETs of 500 keys, and HSETs.
fn fill(conn: &mut Client) {
    let batch = 500;
    let msets: Vec<Vec<Vec<u8>>> = (0..STRINGS / batch)
        .map(|chunk| {
            let mut command = vec![b"MSET".to_vec()];
            for index in chunk * batch..(chunk + 1) * batch {
                command.push(format!("k:{index}").into_bytes());
                command.push(b"v".to_vec());
            }
            command
        })
        .collect();
    for chunk in msets.chunks(20) {
        assert!(conn.pipeline(chunk).iter().all(Reply::is_ok));
    }
    let hsets: Vec<Vec<Vec<u8>>> = (0..HASHES)
        .map(|index| cmd(&["HSET", &format!("h:{index}"), "f", "v"]))
        .collect();
    for reply in conn.pipeline(&hsets) {
        assert_eq!(reply, Reply::Integer(1));
    }
}

/// Every key a full scan returns (with `options` after the cursor), in order, and the
/// cursors the proxy handed out.
fn scan_all(conn: &mut Client, options: &[&str]) -> (Vec<Vec<u8>>, Vec<u64>) {
    let mut cursor = "0".to_owned();
    let mut keys = Vec::new();
    let mut cursors = Vec::new();
    for _ in 0..1_000_000 {
        let mut args = vec!["SCAN", cursor.as_str()];
        args.extend_from_slice(options);
        let reply = conn.call_str(&args);
        let Reply::Array(Some(items)) = &reply else {
            panic!("SCAN {cursor} gave {reply:?}");
        };
        let [Reply::Bulk(Some(next)), Reply::Array(Some(batch))] = items.as_slice() else {
            panic!("SCAN {cursor} gave {reply:?}");
        };
        for key in batch {
            let Reply::Bulk(Some(key)) = key else {
                panic!("SCAN gave the key {key:?}");
            };
            keys.push(key.clone());
        }
        cursor = String::from_utf8(next.clone()).expect("a text cursor");
        let number: u64 = cursor.parse().expect("a decimal u64 cursor");
        cursors.push(number);
        if number == 0 {
            return (keys, cursors);
        }
    }
    panic!("the scan never ended");
}

fn key_set(keys: &[Vec<u8>]) -> HashSet<Vec<u8>> {
    keys.iter().cloned().collect()
}

fn dbsize(conn: &mut Client) -> i64 {
    match conn.call_str(&["DBSIZE"]) {
        Reply::Integer(count) => count,
        other => panic!("DBSIZE gave {other:?}"),
    }
}

fn run_python(args: &[String]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/redis_py_keyspace.py");
    if let Err(failure) = run_within(
        Command::new("python3").arg(script).args(args),
        Duration::from_secs(60),
    ) {
        panic!("{failure}");
    }
}

#[test]
fn scan_dbsize_keys_and_randomkey_cover_every_shard() {
    let cluster = Cluster::start(3, "", &[]);
    let mut conn = cluster.conn();
    fill(&mut conn);
    let total = STRINGS + HASHES;

    let per_shard: Vec<i64> = cluster
        .redis
        .iter()
        .map(|redis| dbsize(&mut redis.client()))
        .collect();
    assert!(
        per_shard.iter().all(|&count| count > 10_000),
        "keys on every shard: {per_shard:?}"
    );
    assert_eq!(dbsize(&mut conn), per_shard.iter().sum::<i64>());
    assert_eq!(dbsize(&mut conn), total as i64);

    let (keys, cursors) = scan_all(&mut conn, &["COUNT", "1000"]);
    let distinct = key_set(&keys);
    assert_eq!(keys.len(), total, "every key once");
    assert_eq!(distinct.len(), total, "no key twice");
    assert!(distinct.contains(&b"k:0"[..]) && distinct.contains(&b"h:299"[..]));
    for shard_start in [1, 2] {
        assert!(
            cursors.contains(&shard_start),
            "the scan moved on to shard {shard_start} with cursor {shard_start}"
        );
    }

    let (matched, _) = scan_all(&mut conn, &["MATCH", "k:1*", "COUNT", "500"]);
    let wanted: HashSet<Vec<u8>> = (0..STRINGS)
        .map(|index| format!("k:{index}").into_bytes())
        .filter(|key| key.starts_with(b"k:1"))
        .collect();
    assert_eq!(matched.len(), wanted.len());
    assert_eq!(key_set(&matched), wanted);

    let (hashes, _) = scan_all(&mut conn, &["TYPE", "hash", "COUNT", "2000"]);
    let wanted: HashSet<Vec<u8>> = (0..HASHES)
        .map(|index| format!("h:{index}").into_bytes())
        .collect();
    assert_eq!(hashes.len(), HASHES);
    assert_eq!(key_set(&hashes), wanted);

    match conn.call_str(&["KEYS", "h:*"]) {
        Reply::Array(Some(items)) => {
            let keys: Vec<Vec<u8>> = items
                .into_iter()
                .map(|item| match item {
                    Reply::Bulk(Some(key)) => key,
                    other => panic!("KEYS gave {other:?}"),
                })
                .collect();
            assert_eq!(keys.len(), HASHES);
            assert_eq!(key_set(&keys), wanted);
        }
        other => panic!("KEYS gave {other:?}"),
    }

    for _ in 0..5 {
        let Reply::Bulk(Some(key)) = conn.call_str(&["RANDOMKEY"]) else {
            panic!("RANDOMKEY gave no key");
        };
        assert!(distinct.contains(&key), "RANDOMKEY gave an unknown key");
    }

    let port = cluster.port.to_string();
    for protocol in ["2", "3"] {
        run_python(&[
            port.clone(),
            protocol.to_owned(),
            total.to_string(),
            HASHES.to_string(),
        ]);
    }
}

#[test]
fn resp3_replies_and_flushdb_then_an_empty_pool() {
    let cluster = Cluster::start(3, "", &[]);
    let keys = cluster.keys_by_shard("flush:", 4);
    let mut conn = cluster.conn();
    for key in keys.iter().flatten() {
        assert!(conn.call_str(&["SET", key, "v"]).is_ok());
    }
    let mut resp3 = cluster.conn();
    assert!(matches!(resp3.call_str(&["HELLO", "3"]), Reply::Map(_)));
    assert_eq!(resp3.call_str(&["DBSIZE"]), Reply::Integer(12));
    let Reply::Array(Some(found)) = resp3.call_str(&["KEYS", "flush:*"]) else {
        panic!("KEYS in RESP3 is not an array");
    };
    assert_eq!(found.len(), 12);
    match resp3.call_str(&["SCAN", "0", "COUNT", "100"]) {
        Reply::Array(Some(items)) => {
            assert_eq!(items.len(), 2);
            assert_eq!(items[0], Reply::Bulk(Some(b"1".to_vec())), "on to shard 1");
            assert!(matches!(&items[1], Reply::Array(Some(batch)) if batch.len() == 4));
        }
        other => panic!("SCAN in RESP3 gave {other:?}"),
    }
    assert!(matches!(
        resp3.call_str(&["RANDOMKEY"]),
        Reply::Bulk(Some(_))
    ));

    assert!(conn.call_str(&["FLUSHDB"]).is_ok());
    for redis in &cluster.redis {
        assert_eq!(
            dbsize(&mut redis.client()),
            0,
            "FLUSHDB emptied every shard"
        );
    }
    assert_eq!(dbsize(&mut conn), 0);
    assert_eq!(conn.call_str(&["RANDOMKEY"]), Reply::Bulk(None));
    assert_eq!(resp3.call_str(&["RANDOMKEY"]), Reply::Null);
    let (none, _) = scan_all(&mut conn, &[]);
    assert!(none.is_empty());
    assert_eq!(
        conn.call_str(&["KEYS", "*"]),
        Reply::Array(Some(Vec::new()))
    );

    assert!(conn.call_str(&["SET", "again", "v"]).is_ok());
    assert!(conn.call_str(&["FLUSHALL", "ASYNC"]).is_ok());
    wait_until(
        "FLUSHALL ASYNC to empty the pool",
        Duration::from_secs(5),
        || dbsize(&mut conn) == 0,
    );
}

#[test]
fn bad_input_gets_redis_servers_errors() {
    let cluster = Cluster::start(2, "", &[]);
    let mut proxy = cluster.conn();
    let mut direct = cluster.redis[0].client();
    for bad in [
        &["SCAN", "abc"][..],
        &["SCAN", "1x"],
        &["SCAN", " 1"],
        &["SCAN", "99999999999999999999"],
        &["SCAN", "abc", "COUNT", "0"],
        &["SCAN", "0", "COUNT", "0"],
        &["SCAN", "0", "COUNT", "-1"],
        &["SCAN", "0", "COUNT", "ten"],
        &["SCAN", "0", "MATCH"],
        &["SCAN", "0", "LIMIT", "3"],
        &["SCAN"],
        &["DBSIZE", "x"],
        &["KEYS"],
        &["KEYS", "a", "b"],
        &["RANDOMKEY", "x"],
        &["FLUSHDB", "now"],
        &["FLUSHALL", "ASYNC", "SYNC"],
    ] {
        let expected = direct.call_str(bad);
        assert!(matches!(expected, Reply::Error(_)), "{bad:?}: {expected:?}");
        assert_eq!(proxy.call_str(bad), expected, "{bad:?}");
    }
    for odd in [&["SCAN", ""][..], &["SCAN", "+0"], &["SCAN", "-0"]] {
        assert!(
            matches!(direct.call_str(odd), Reply::Array(Some(_))),
            "{odd:?}"
        );
        assert!(
            matches!(proxy.call_str(odd), Reply::Array(Some(_))),
            "{odd:?}"
        );
    }
}

#[test]
fn a_shard_down_fails_the_keyspace_commands_and_refuses_a_flush() {
    let mut cluster = Cluster::start(3, "", &[]);
    let keys = cluster.key_per_shard("kept:");
    let mut conn = cluster.conn();
    for key in &keys {
        assert!(conn.call_str(&["SET", key, "v"]).is_ok());
    }
    cluster.redis[1].kill();
    wait_until(
        "DBSIZE to fail naming s1",
        Duration::from_secs(10),
        || match conn.call_str(&["DBSIZE"]) {
            Reply::Error(text) => {
                assert!(text.contains("shard 's1'"), "-{text}");
                true
            }
            _ => false,
        },
    );
    for flush in [&["FLUSHALL"][..], &["FLUSHDB", "SYNC"]] {
        match conn.call_str(flush) {
            Reply::Error(text) => assert!(
                text.contains("shard 's1' is unreachable") && text.contains("nothing was flushed"),
                "{flush:?}: -{text}"
            ),
            other => panic!("{flush:?} with a shard down gave {other:?}"),
        }
    }
    for shard in [0, 2] {
        assert_eq!(
            cluster.redis[shard].get(&keys[shard]).as_deref(),
            Some("v"),
            "nothing was flushed on s{shard}"
        );
    }
    for command in [&["KEYS", "*"][..], &["RANDOMKEY"], &["SCAN", "1"]] {
        match conn.call_str(command) {
            Reply::Error(text) => assert!(text.contains("shard 's1'"), "{command:?}: -{text}"),
            other => panic!("{command:?} with s1 down gave {other:?}"),
        }
    }
    let Reply::Array(Some(first)) = conn.call_str(&["SCAN", "0", "COUNT", "100"]) else {
        panic!("the scan of s0 failed");
    };
    assert_eq!(first[0], Reply::Bulk(Some(b"1".to_vec())));
}

#[test]
fn an_ejected_shard_is_named() {
    let mut cluster = Cluster::start(
        2,
        "  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 60000\n",
        &[],
    );
    let mut conn = cluster.conn();
    cluster.redis[1].kill();
    wait_until(
        "s1 to be ejected",
        Duration::from_secs(10),
        || matches!(conn.call_str(&["DBSIZE"]), Reply::Error(text) if text.contains("ejected")),
    );
    for command in [
        &["DBSIZE"][..],
        &["SCAN", "1"],
        &["FLUSHALL"],
        &["KEYS", "*"],
    ] {
        match conn.call_str(command) {
            Reply::Error(text) => assert!(
                text.contains("shard 's1' is ejected"),
                "{command:?}: -{text}"
            ),
            other => panic!("{command:?} with s1 ejected gave {other:?}"),
        }
    }
}
