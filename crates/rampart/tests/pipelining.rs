//! Pipelines, big values and split commands through a pool of three real redis-servers,
//! asserted reply by reply with a raw RESP client: a 10,000-command mixed pipeline answered in
//! order, 20 MiB values byte exact, multi-key commands split over the shards and merged, and
//! requests written one byte at a time.

mod support;

use std::collections::HashMap;

use support::random::{Rng, scrambled};
use support::resp::{Client, Reply, bulk, cmd, encode, error, nil, ok, pong, show};
use support::shards::Cluster;
use support::stats::{assert_stat, pool_counter};

// ---------------------------------------------------------------------------------------------
// A 10,000-command mixed pipeline.
// ---------------------------------------------------------------------------------------------

/// Commands over strings, counters, hashes and lists, with the replies Redis gives.
fn mixed_workload(count: usize) -> (Vec<Vec<Vec<u8>>>, Vec<Reply>) {
    let mut rng = Rng::new(0);
    let mut strings: HashMap<String, Vec<u8>> = HashMap::new();
    let mut hashes: HashMap<String, HashMap<String, Vec<u8>>> = HashMap::new();
    let mut lists: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    let mut commands = Vec::with_capacity(count);
    let mut expected = Vec::with_capacity(count);
    let string_key = |rng: &mut Rng| {
        if rng.below(3) == 0 {
            format!("cnt:{}", rng.below(20))
        } else {
            format!("str:{}", rng.below(60))
        }
    };
    for i in 0..count {
        let (command, reply) = match rng.below(14) {
            0 | 1 => {
                let key = format!("str:{}", rng.below(60));
                let value = format!("value-{i}-{}\r\n", "x".repeat(rng.below(50) as usize));
                strings.insert(key.clone(), value.clone().into_bytes());
                let name = if i % 2 == 0 { "SET" } else { "set" };
                (cmd(&[name, &key, &value]), ok())
            }
            2 | 3 => {
                let key = string_key(&mut rng);
                let reply = Reply::Bulk(strings.get(&key).cloned());
                (cmd(&["GET", &key]), reply)
            }
            4 => {
                let key = format!("cnt:{}", rng.below(20));
                let next = strings
                    .get(&key)
                    .map(|value| String::from_utf8_lossy(value).parse::<i64>().unwrap())
                    .unwrap_or(0)
                    + 1;
                strings.insert(key.clone(), next.to_string().into_bytes());
                (cmd(&["INCR", &key]), Reply::Integer(next))
            }
            5 => {
                let mut keys: Vec<String> = Vec::new();
                for _ in 0..=rng.below(3) {
                    let key = string_key(&mut rng);
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
                let deleted = keys
                    .iter()
                    .filter(|key| strings.remove(*key).is_some())
                    .count();
                let mut args = vec!["DEL"];
                args.extend(keys.iter().map(String::as_str));
                (cmd(&args), Reply::Integer(deleted as i64))
            }
            6 => {
                let keys: Vec<String> = (0..2 + rng.below(5))
                    .map(|_| string_key(&mut rng))
                    .collect();
                let values = keys
                    .iter()
                    .map(|key| Reply::Bulk(strings.get(key).cloned()))
                    .collect();
                let mut args = vec!["MGET"];
                args.extend(keys.iter().map(String::as_str));
                (cmd(&args), Reply::Array(Some(values)))
            }
            7 => {
                let key = format!("hash:{}", rng.below(12));
                let field = format!("f{}", rng.below(6));
                let value = format!("hv-{i}");
                let new = hashes
                    .entry(key.clone())
                    .or_default()
                    .insert(field.clone(), value.clone().into_bytes())
                    .is_none();
                (
                    cmd(&["HSET", &key, &field, &value]),
                    Reply::Integer(i64::from(new)),
                )
            }
            8 => {
                let key = format!("hash:{}", rng.below(12));
                let field = format!("f{}", rng.below(6));
                let value = hashes.get(&key).and_then(|hash| hash.get(&field)).cloned();
                (cmd(&["HGET", &key, &field]), Reply::Bulk(value))
            }
            9 => {
                let key = format!("list:{}", rng.below(12));
                let value = format!("lv-{i}");
                let list = lists.entry(key.clone()).or_default();
                list.insert(0, value.clone().into_bytes());
                let length = list.len() as i64;
                (cmd(&["LPUSH", &key, &value]), Reply::Integer(length))
            }
            10 => {
                let key = format!("list:{}", rng.below(12));
                let items = lists
                    .get(&key)
                    .map(|list| list.iter().take(5).map(bulk).collect())
                    .unwrap_or_default();
                (cmd(&["LRANGE", &key, "0", "4"]), Reply::Array(Some(items)))
            }
            11 => (cmd(&[if i % 2 == 0 { "PING" } else { "ping" }]), pong()),
            12 => {
                let arg = format!("arg{i}");
                let text =
                    format!("ERR unknown command 'FOOBAR', with args beginning with: '{arg}' ");
                (cmd(&["FOOBAR", &arg]), Reply::Error(text))
            }
            _ => {
                let command = if i % 2 == 0 {
                    cmd(&["GET"])
                } else {
                    cmd(&["GET", "a", "b"])
                };
                (
                    command,
                    error("ERR wrong number of arguments for 'get' command"),
                )
            }
        };
        commands.push(command);
        expected.push(reply);
    }
    (commands, expected)
}

#[test]
fn pipeline_of_10000_mixed_commands_gets_every_reply_in_order() {
    let cluster = Cluster::start(3, "", &[]);
    // The texts the workload expects are Redis's own.
    let (unknown, arity) = {
        let mut conn = Client::open(cluster.redis[0].port);
        (conn.call_str(&["FOOBAR", "arg7"]), conn.call_str(&["GET"]))
    };
    assert_eq!(
        unknown,
        error("ERR unknown command 'FOOBAR', with args beginning with: 'arg7' ")
    );
    assert_eq!(
        arity,
        error("ERR wrong number of arguments for 'get' command")
    );

    let (commands, expected) = mixed_workload(10_000);
    let mut conn = cluster.conn();
    let writer = conn.send_in_background(&commands);
    for (index, (command, want)) in commands.iter().zip(&expected).enumerate() {
        let got = conn
            .read_reply()
            .unwrap_or_else(|error| panic!("reply {index} to `{}`: {error}", show(command)));
        assert_eq!(&got, want, "reply {index} to `{}`", show(command));
    }
    writer.join().unwrap().expect("pipeline written");
    assert_eq!(conn.call_str(&["PING"]), pong(), "connection still open");

    // The keys were really spread over the three shards.
    for redis in &cluster.redis {
        assert!(
            !redis.keys(0).is_empty(),
            "shard on {} got no key",
            redis.port
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 20 MiB values.
// ---------------------------------------------------------------------------------------------

/// 20 MiB that look random, different for each `seed`.
fn big_value(seed: u64) -> Vec<u8> {
    Rng::new(seed).bytes(20 << 20)
}

fn assert_same_bytes(got: &Reply, want: &[u8], what: &str) {
    match got {
        Reply::Bulk(Some(bytes)) => {
            assert_eq!(bytes.len(), want.len(), "{what}: length");
            assert!(bytes == want, "{what}: bytes differ");
        }
        other => panic!("{what}: got {other:?}"),
    }
}

#[test]
fn values_of_20_mib_round_trip_byte_exact() {
    let cluster = Cluster::start(3, "", &[]);
    let keys = cluster.key_per_shard("big:");
    let values: Vec<Vec<u8>> = (0..3).map(big_value).collect();
    let mut conn = cluster.conn();

    assert_eq!(conn.call(&[b"SET", b"big:single", &values[0]]), ok());
    let got = conn.call(&[b"GET", b"big:single"]);
    assert_same_bytes(&got, &values[0], "GET big:single");

    let mset = conn.call(&[
        b"MSET",
        keys[0].as_bytes(),
        &values[0],
        keys[1].as_bytes(),
        &values[1],
        keys[2].as_bytes(),
        &values[2],
    ]);
    assert_eq!(mset, ok());
    let mget = conn.call(&[
        b"MGET",
        keys[0].as_bytes(),
        keys[1].as_bytes(),
        keys[2].as_bytes(),
    ]);
    match mget {
        Reply::Array(Some(items)) => {
            assert_eq!(items.len(), 3);
            for (index, item) in items.iter().enumerate() {
                assert_same_bytes(item, &values[index], &format!("MGET value {index}"));
            }
        }
        other => panic!("MGET gave {other:?}"),
    }
    // Each value is on its own shard, whole.
    for (shard, key) in keys.iter().enumerate() {
        let mut direct = Client::open(cluster.redis[shard].port);
        assert_eq!(
            direct.call_str(&["STRLEN", key]),
            Reply::Integer(20 << 20),
            "{key} on shard {shard}"
        );
    }
    assert_eq!(conn.call_str(&["PING"]), pong());
}

// ---------------------------------------------------------------------------------------------
// Multi-key commands over three shards.
// ---------------------------------------------------------------------------------------------

#[test]
fn multi_key_commands_are_split_over_shards_and_merged() {
    let cluster = Cluster::start(3, "", &[]);
    let buckets = cluster.keys_by_shard("mk:", 3);
    // Interleaved: shard 0, 1, 2, then 0, 1, 2...; the middle key of each shard is missing.
    let mut all = Vec::new();
    let mut present = Vec::new();
    for position in 0..3 {
        for bucket in &buckets {
            all.push(bucket[position].clone());
            present.push(position != 1);
        }
    }
    let with = |name: &str, keys: &[String]| {
        let mut args = vec![name.to_string()];
        args.extend(keys.iter().cloned());
        args
    };
    let mut conn = cluster.conn();
    let call = |conn: &mut Client, args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        conn.call_str(&args)
    };
    let fragments_before = pool_counter(&cluster.proxy.stats(), "alpha", "fragments");

    let mut mset = vec!["MSET".to_string()];
    for (key, &here) in all.iter().zip(&present) {
        if here {
            mset.push(key.clone());
            mset.push(format!("value of {key}"));
        }
    }
    assert_eq!(call(&mut conn, &mset), ok(), "MSET");
    for (shard, bucket) in buckets.iter().enumerate() {
        let mut stored: Vec<Vec<u8>> = cluster.redis[shard].keys(0);
        stored.sort();
        let mut wanted = vec![
            bucket[0].clone().into_bytes(),
            bucket[2].clone().into_bytes(),
        ];
        wanted.sort();
        assert_eq!(stored, wanted, "keys stored on shard {shard}");
    }

    let values: Vec<Reply> = all
        .iter()
        .zip(&present)
        .map(|(key, &here)| {
            if here {
                bulk(format!("value of {key}"))
            } else {
                nil()
            }
        })
        .collect();
    assert_eq!(
        call(&mut conn, &with("MGET", &all)),
        Reply::Array(Some(values)),
        "MGET with missing keys interleaved"
    );

    // EXISTS counts every key on every shard, a repeated key twice (nutcracker counted only
    // the first key's shard).
    let mut exists = with("EXISTS", &all);
    exists.push(all[0].clone());
    assert_eq!(call(&mut conn, &exists), Reply::Integer(7), "EXISTS");
    assert_eq!(
        call(&mut conn, &with("TOUCH", &all)),
        Reply::Integer(6),
        "TOUCH"
    );
    let some = vec![
        buckets[0][0].clone(),
        buckets[1][1].clone(),
        buckets[2][0].clone(),
    ];
    assert_eq!(
        call(&mut conn, &with("DEL", &some)),
        Reply::Integer(2),
        "DEL"
    );
    assert_eq!(
        call(&mut conn, &with("UNLINK", &all)),
        Reply::Integer(4),
        "UNLINK"
    );
    assert_eq!(call(&mut conn, &with("EXISTS", &all)), Reply::Integer(0));
    assert_eq!(
        call(&mut conn, &with("MGET", &all)),
        Reply::Array(Some(vec![nil(); 9]))
    );
    for redis in &cluster.redis {
        assert!(redis.keys(0).is_empty());
    }

    // 8 split commands, each over 3 shards.
    let wanted = fragments_before + 8 * 3;
    assert_stat(
        || cluster.proxy.stats(),
        |stats| pool_counter(stats, "alpha", "fragments"),
        wanted,
        "fragments counter",
    );
}

#[test]
fn split_commands_over_many_keys_and_the_empty_key() {
    let cluster = Cluster::start(3, "", &[]);
    let present: Vec<String> = (0..500).map(|n| scrambled("many:", n)).collect();
    let absent: Vec<String> = (0..500).map(|n| scrambled("none:", n)).collect();
    let mut conn = cluster.conn();
    let mut mset = vec![b"MSET".to_vec()];
    for key in &present {
        mset.push(key.clone().into_bytes());
        mset.push(format!("{key}=").into_bytes());
    }
    let mut mget = vec![b"MGET".to_vec()];
    let mut values = Vec::new();
    for (key, missing) in present.iter().zip(&absent) {
        mget.push(key.clone().into_bytes());
        values.push(bulk(format!("{key}=")));
        mget.push(missing.clone().into_bytes());
        values.push(nil());
    }
    let first: Vec<Vec<u8>> = present[..126]
        .iter()
        .map(|key| key.clone().into_bytes())
        .collect();
    let mut mget_first = vec![b"MGET".to_vec()];
    mget_first.extend(first.iter().cloned());
    let mut del_first = vec![b"DEL".to_vec()];
    del_first.extend(first.iter().cloned());
    let mut del_all = vec![b"DEL".to_vec()];
    del_all.extend(present.iter().map(|key| key.clone().into_bytes()));
    let replies = conn.pipeline(&[mset, mget, mget_first, del_first, del_all]);
    assert_eq!(replies[0], ok(), "MSET of 500 keys");
    assert_eq!(
        replies[1],
        Reply::Array(Some(values.clone())),
        "MGET of 1000 keys"
    );
    let first_values: Vec<Reply> = values.iter().step_by(2).take(126).cloned().collect();
    assert_eq!(
        replies[2],
        Reply::Array(Some(first_values)),
        "MGET of 126 keys"
    );
    assert_eq!(replies[3], Reply::Integer(126), "DEL of 126 keys");
    assert_eq!(replies[4], Reply::Integer(374), "DEL of the 500 keys");

    // The empty key is a key like any other.
    assert_eq!(conn.call_str(&["SET", "", "empty"]), ok());
    assert_eq!(conn.call_str(&["GET", ""]), bulk("empty"));
    assert_eq!(conn.call_str(&["MSET", "", "e2", "x", "1"]), ok());
    assert_eq!(
        conn.call_str(&["MGET", "", "x", "y"]),
        Reply::Array(Some(vec![bulk("e2"), bulk("1"), nil()]))
    );
    assert_eq!(conn.call_str(&["EXISTS", "", "x", "y"]), Reply::Integer(2));
    assert_eq!(conn.call_str(&["DEL", "", "x", "y"]), Reply::Integer(2));
}

#[test]
fn requests_written_one_byte_at_a_time() {
    let cluster = Cluster::start(3, "", &[]);
    let mut conn = cluster.conn();
    let value: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let keys = cluster.keys_by_shard("byte:", 1);
    let mut bytes = encode(&[b"PING"]);
    bytes.extend(encode(&[b"SET", keys[0][0].as_bytes(), &value]));
    bytes.extend(encode(&[
        b"MSET",
        keys[1][0].as_bytes(),
        b"one",
        keys[2][0].as_bytes(),
        b"two",
    ]));
    bytes.extend(encode(&[
        b"MGET",
        keys[0][0].as_bytes(),
        keys[1][0].as_bytes(),
        keys[2][0].as_bytes(),
    ]));
    bytes.extend_from_slice(b"PING\r\n");
    for byte in &bytes {
        conn.send_raw(std::slice::from_ref(byte));
    }
    assert_eq!(conn.read_reply().unwrap(), pong());
    assert_eq!(conn.read_reply().unwrap(), ok());
    assert_eq!(conn.read_reply().unwrap(), ok());
    assert_eq!(
        conn.read_reply().unwrap(),
        Reply::Array(Some(vec![bulk(&value), bulk("one"), bulk("two")]))
    );
    assert_eq!(conn.read_reply().unwrap(), pong());
}
