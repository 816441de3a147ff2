//! The proxy's behaviour on the wire, against real redis-server backends, asserted reply by
//! reply with a raw RESP client: ordering of big mixed pipelines, huge values, multi-key
//! commands split over shards, backends dying mid-pipeline, AUTH, refused commands, timeouts,
//! ejection and readmission, the nutcracker stats document, and signals.

mod support;

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::process::{Nutcracker, Rampart, Redis, pings, pool_yaml};
use support::resp::{Client, Reply, bulk, cmd, encode, encode_all, error, nil, ok, pong, show};
use support::route::place;
use support::stats::{Json, pool_counter, servers_sum};
use support::{free_port, wait_until};

// ---------------------------------------------------------------------------------------------
// Pools over real redis-servers, and where keys live.
// ---------------------------------------------------------------------------------------------

/// `shards` redis-servers (started with `redis_args`) behind one rampart pool `alpha`, whose
/// servers are named s0, s1, s2...
struct Cluster {
    redis: Vec<Redis>,
    proxy: Rampart,
    port: u16,
}

impl Cluster {
    fn start(shards: usize, directives: &str, redis_args: &[&str]) -> Cluster {
        let redis: Vec<Redis> = (0..shards).map(|_| Redis::start(redis_args)).collect();
        Cluster::over(redis, directives)
    }

    /// Backends with `requirepass pw`. (Set once started: `Redis::start` waits for +PONG,
    /// which a server started with `--requirepass` never gives.)
    fn start_with_password(shards: usize, directives: &str) -> Cluster {
        let redis: Vec<Redis> = (0..shards)
            .map(|_| {
                let redis = Redis::start(&[]);
                let mut conn = Client::open(redis.port);
                assert_eq!(conn.call_str(&["CONFIG", "SET", "requirepass", "pw"]), ok());
                assert_eq!(
                    noauth_as_nutcracker(Client::open(redis.port).call_str(&["PING"])),
                    error(NOAUTH)
                );
                redis
            })
            .collect();
        Cluster::over(redis, directives)
    }

    fn over(redis: Vec<Redis>, directives: &str) -> Cluster {
        let ports: Vec<u16> = redis.iter().map(|redis| redis.port).collect();
        let (proxy, port) = alpha_proxy(directives, &ports);
        Cluster { redis, proxy, port }
    }

    fn conn(&self) -> Client {
        Client::open(self.port)
    }

    /// The shard index (the N of server `sN`) of each key, from `rampart route`.
    fn shards_of(&self, keys: &[String]) -> Vec<usize> {
        shards_of(&self.proxy.config, keys)
    }

    /// `per_shard` keys `prefix<n>` on each of `shards` shards.
    fn keys_by_shard(&self, prefix: &str, per_shard: usize) -> Vec<Vec<String>> {
        keys_by_shard(&self.proxy.config, prefix, per_shard, self.redis.len())
    }

    /// One key `prefix<n>` on each shard, in shard order.
    fn key_per_shard(&self, prefix: &str) -> Vec<String> {
        self.keys_by_shard(prefix, 1)
            .into_iter()
            .map(|mut bucket| bucket.remove(0))
            .collect()
    }
}

/// The config of pool `alpha`, listening on `port`, over servers `s0`, `s1`... on `backends`
/// (running or not).
fn alpha_yaml(port: u16, directives: &str, backends: &[u16]) -> String {
    let servers: Vec<String> = backends
        .iter()
        .enumerate()
        .map(|(index, backend)| format!("127.0.0.1:{backend}:1 s{index}"))
        .collect();
    pool_yaml("alpha", port, directives, &servers)
}

/// rampart serving `alpha_yaml` on a free port, once it answers; and that port.
fn alpha_proxy(directives: &str, backends: &[u16]) -> (Rampart, u16) {
    let port = free_port();
    let proxy = Rampart::start(&alpha_yaml(port, directives, backends), &[port], &[]);
    (proxy, port)
}

/// The shard index (the N of server `sN`) of each key, from `rampart route`.
fn shards_of(config: &Path, keys: &[String]) -> Vec<usize> {
    place(config, None, &[], keys)
        .iter()
        .map(|placed| {
            let name = &placed.server;
            name.strip_prefix('s')
                .and_then(|number| number.parse().ok())
                .unwrap_or_else(|| panic!("unexpected server name {name:?}"))
        })
        .collect()
}

/// `prefix` and a hex number that looks random: sequential keys like `k1`, `k2`... mostly
/// land on one server with fnv1a_64 and ketama.
fn scrambled(prefix: &str, n: usize) -> String {
    format!(
        "{prefix}{:x}",
        (n as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    )
}

fn keys_by_shard(config: &Path, prefix: &str, per_shard: usize, shards: usize) -> Vec<Vec<String>> {
    let candidates: Vec<String> = (0..per_shard * shards * 20)
        .map(|n| scrambled(prefix, n))
        .collect();
    let mut buckets = vec![Vec::new(); shards];
    for (key, shard) in candidates.iter().zip(shards_of(config, &candidates)) {
        if buckets[shard].len() < per_shard {
            buckets[shard].push(key.clone());
        }
    }
    for (shard, bucket) in buckets.iter().enumerate() {
        assert_eq!(bucket.len(), per_shard, "not enough keys on shard {shard}");
    }
    buckets
}

fn now_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros()
}

/// Whether a redis-server is busy (DEBUG SLEEP): a PING gets no answer within 100 ms.
fn redis_is_blocked(port: u16) -> bool {
    match Client::connect_with_timeout(port, Duration::from_millis(100)) {
        Ok(mut conn) => {
            conn.send(&[b"PING"]);
            conn.read_reply().is_err()
        }
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Waiting for the stats document.
// ---------------------------------------------------------------------------------------------

/// Polls the stats (published every 100 ms) until `read(stats) >= target`, then returns it.
fn stat_reaching(stats: impl Fn() -> String, read: impl Fn(&str) -> u64, target: u64) -> u64 {
    let mut last = 0;
    wait_until(
        &format!("a stats counter to reach {target}"),
        Duration::from_secs(5),
        || {
            last = read(&stats());
            last >= target
        },
    );
    last
}

/// Polls the stats until `read(stats) >= target`, then asserts it is exactly `target`.
fn assert_stat(stats: impl Fn() -> String, read: impl Fn(&str) -> u64, target: u64, what: &str) {
    assert_eq!(stat_reaching(stats, read, target), target, "{what}");
}

/// The document with every number value replaced by 0: its layout, byte for byte.
fn layout(stats: &str) -> String {
    let mut out = String::new();
    let mut rest = stats;
    while let Some(at) = rest.find("\":") {
        out.push_str(&rest[..at + 2]);
        rest = &rest[at + 2..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push('0');
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------------
// 1. A 10,000-command mixed pipeline.
// ---------------------------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// Commands over strings, counters, hashes and lists, with the replies Redis gives.
fn mixed_workload(count: usize) -> (Vec<Vec<Vec<u8>>>, Vec<Reply>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
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
// 2. 20 MiB values.
// ---------------------------------------------------------------------------------------------

fn big_value(seed: u8) -> Vec<u8> {
    (0..20u32 << 20)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 9)) as u8 ^ seed)
        .collect()
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
    let values: Vec<Vec<u8>> = (0..3).map(|seed| big_value(seed as u8 * 77)).collect();
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
// 3. Multi-key commands over three shards.
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

// ---------------------------------------------------------------------------------------------
// 4. A backend killed in the middle of a pipeline.
// ---------------------------------------------------------------------------------------------

/// The value of a GET key in the kill test: 4 KiB, so that replies are often cut mid-way.
fn value_of(key: &str) -> String {
    format!("val-{key}-{}", "v".repeat(4096))
}

const TRANSPORT_ERRORS: [&str; 4] = [
    "ERR Connection refused",
    "ERR Connection reset by peer",
    "ERR Connection closed by server",
    "ERR Broken pipe",
];

#[test]
fn backend_killed_mid_pipeline_every_request_still_gets_a_reply() {
    let mut cluster = Cluster::start(3, "", &[]);
    let dead = 1;
    let get_keys: Vec<String> = (0..300).map(|n| scrambled("g:", n)).collect();
    let set_keys: Vec<String> = (0..500).map(|n| scrambled("s:", n)).collect();
    let get_shards = cluster.shards_of(&get_keys);
    let set_shards = cluster.shards_of(&set_keys);
    for shard in 0..3 {
        assert!(get_shards.contains(&shard) && set_shards.contains(&shard));
    }

    let mut conn = cluster.conn();
    let fill: Vec<Vec<Vec<u8>>> = get_keys
        .iter()
        .map(|key| cmd(&["SET", key, &value_of(key)]))
        .collect();
    let writer = conn.send_in_background(&fill);
    for command in &fill {
        assert_eq!(conn.read_reply().unwrap(), ok(), "{}", show(command));
    }
    writer.join().unwrap().unwrap();

    let mut get_by_shard: Vec<Vec<usize>> = vec![Vec::new(); 3];
    for (n, &shard) in get_shards.iter().enumerate() {
        get_by_shard[shard].push(n);
    }
    let total = 20_000;
    let mut commands = Vec::with_capacity(total);
    let mut plan = Vec::with_capacity(total);
    for i in 0..total {
        if i % 10 == 4 {
            // A split MGET with a key on every shard, the dead one included.
            let picks: Vec<usize> = get_by_shard
                .iter()
                .map(|keys| keys[(i / 10) % keys.len()])
                .collect();
            let mut args = vec!["MGET"];
            args.extend(picks.iter().map(|&n| get_keys[n].as_str()));
            commands.push(cmd(&args));
            let values = picks
                .iter()
                .map(|&n| bulk(value_of(&get_keys[n])))
                .collect();
            plan.push((dead, Reply::Array(Some(values))));
        } else if i % 2 == 0 {
            let n = (i / 2) % get_keys.len();
            commands.push(cmd(&["GET", &get_keys[n]]));
            plan.push((get_shards[n], bulk(value_of(&get_keys[n]))));
        } else {
            let n = i % set_keys.len();
            commands.push(cmd(&["SET", &set_keys[n], &format!("x{i}")]));
            plan.push((set_shards[n], ok()));
        }
    }
    let writer = conn.send_in_background(&commands);
    let before_kill = 2_000;
    let mut first_error: Option<usize> = None;
    let mut errors = 0;
    for (index, (command, (shard, want))) in commands.iter().zip(&plan).enumerate() {
        if index == before_kill {
            cluster.redis[dead].kill();
        }
        let got = conn.read_reply().unwrap_or_else(|error| {
            panic!(
                "no reply {index} of {total} to `{}`: {error}",
                show(command)
            )
        });
        if index < before_kill || *shard != dead {
            assert_eq!(
                &got,
                want,
                "reply {index} to `{}` (shard {shard})",
                show(command)
            );
            continue;
        }
        match &got {
            Reply::Error(text) => {
                assert!(
                    TRANSPORT_ERRORS.contains(&text.as_str()),
                    "reply {index} to `{}` on the dead shard: -{text}",
                    show(command)
                );
                first_error.get_or_insert(index);
                errors += 1;
            }
            _ => {
                assert_eq!(&got, want, "reply {index} to `{}`", show(command));
                assert!(
                    first_error.is_none(),
                    "reply {index} to `{}` succeeded after the dead shard's reply {first_error:?} failed",
                    show(command)
                );
            }
        }
    }
    writer.join().unwrap().expect("pipeline written");
    assert!(errors > 1000, "only {errors} errors from the dead shard");
    assert_eq!(conn.call_str(&["PING"]), pong(), "connection still open");

    let mut fresh = cluster.conn();
    for (n, key) in get_keys.iter().enumerate().take(30) {
        let got = fresh.call_str(&["GET", key]);
        if get_shards[n] == dead {
            assert_eq!(got, error("ERR Connection refused"), "GET {key}");
        } else {
            assert_eq!(got, bulk(value_of(key)), "GET {key}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 5. AUTH.
// ---------------------------------------------------------------------------------------------

/// nutcracker's text; Redis 7 ends it with a period. Either is accepted.
const NOAUTH: &str = "NOAUTH Authentication required";

/// Redis's `NOAUTH Authentication required.` as nutcracker's `NOAUTH Authentication required`.
fn noauth_as_nutcracker(reply: Reply) -> Reply {
    match reply {
        Reply::Error(text) if text == "NOAUTH Authentication required." => error(NOAUTH),
        other => other,
    }
}
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// A connection whose NOAUTH replies are read as nutcracker's text.
struct Auth<'c>(&'c mut Client);

impl Auth<'_> {
    fn call_str(&mut self, args: &[&str]) -> Reply {
        noauth_as_nutcracker(self.0.call_str(args))
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.0.send_raw(bytes);
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        self.0.read_reply().map(noauth_as_nutcracker)
    }
}

fn authed(port: u16) -> Client {
    let mut conn = Client::open(port);
    assert_eq!(conn.call_str(&["AUTH", "pw"]), ok(), "direct AUTH");
    conn
}

#[test]
fn auth_in_all_its_forms_on_a_pool_with_redis_auth() {
    let cluster = Cluster::start_with_password(2, "  redis_auth: pw\n");
    let mut conn = cluster.conn();
    let mut conn = Auth(&mut conn);
    assert_eq!(conn.call_str(&["PING"]), error(NOAUTH));
    assert_eq!(conn.call_str(&["GET", "auth:k"]), error(NOAUTH));
    assert_eq!(conn.call_str(&["SET", "auth:k", "v"]), error(NOAUTH));
    assert_eq!(
        conn.call_str(&["AUTH", "wrong"]),
        error("ERR invalid password")
    );
    assert_eq!(conn.call_str(&["PING"]), error(NOAUTH));
    assert_eq!(
        conn.call_str(&["AUTH"]),
        error("ERR wrong number of arguments for 'auth' command")
    );
    assert_eq!(
        conn.call_str(&["AUTH", "a", "b", "c"]),
        error("ERR syntax error")
    );
    assert_eq!(conn.call_str(&["AUTH", "pw"]), ok());
    assert_eq!(conn.call_str(&["PING"]), pong());
    assert_eq!(conn.call_str(&["SET", "auth:k", "v"]), ok());
    assert_eq!(conn.call_str(&["GET", "auth:k"]), bulk("v"));
    assert_eq!(conn.call_str(&["AUTH", "default", "pw"]), ok());
    assert_eq!(conn.call_str(&["GET", "auth:k"]), bulk("v"));
    assert_eq!(conn.call_str(&["AUTH", "someone", "pw"]), error(WRONGPASS));
    // A bad AUTH after a good one de-authenticates (as nutcracker does).
    assert_eq!(conn.call_str(&["AUTH", "pw"]), ok());
    assert_eq!(
        conn.call_str(&["AUTH", "wrong"]),
        error("ERR invalid password")
    );
    assert_eq!(conn.call_str(&["GET", "auth:k"]), error(NOAUTH));
    assert_eq!(conn.call_str(&["PING"]), error(NOAUTH));

    // Local replies keep their place in a pipeline.
    let commands = vec![
        cmd(&["GET", "auth:k"]),
        cmd(&["AUTH", "pw"]),
        cmd(&["SET", "auth:p", "1"]),
        cmd(&["GET", "auth:k"]),
        cmd(&["AUTH", "nope"]),
        cmd(&["GET", "auth:p"]),
        cmd(&["AUTH", "default", "pw"]),
        cmd(&["GET", "auth:p"]),
    ];
    conn.send_raw(&encode_all(&commands));
    let wanted = [
        error(NOAUTH),
        ok(),
        ok(),
        bulk("v"),
        error("ERR invalid password"),
        error(NOAUTH),
        ok(),
        bulk("1"),
    ];
    for (command, want) in commands.iter().zip(&wanted) {
        assert_eq!(&conn.read_reply().unwrap(), want, "{}", show(command));
    }

    // HELLO 3 AUTH authenticates and answers with a RESP3 map.
    let mut hello = cluster.conn();
    assert!(
        matches!(hello.call_str(&["HELLO", "3"]), Reply::Error(text) if text.starts_with("NOAUTH")),
        "HELLO without AUTH on a password pool"
    );
    assert_eq!(
        hello.call_str(&["HELLO", "3", "AUTH", "default", "wrong"]),
        error(WRONGPASS)
    );
    match hello.call_str(&["HELLO", "3", "AUTH", "default", "pw"]) {
        Reply::Map(pairs) => {
            let field = |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == bulk(name))
                    .map(|(_, value)| value.clone())
                    .unwrap_or_else(|| panic!("HELLO map has no {name}: {pairs:?}"))
            };
            assert_eq!(field("proto"), Reply::Integer(3));
            assert_eq!(field("server"), bulk("redis"));
        }
        other => panic!("HELLO 3 AUTH gave {other:?}"),
    }
    assert_eq!(hello.call_str(&["GET", "auth:k"]), bulk("v"));
    assert_eq!(hello.call_str(&["PING"]), pong());
    // RESP3 end to end: a missing key is RESP3's null.
    assert_eq!(hello.call_str(&["GET", "auth:missing"]), Reply::Null);

    // The data went to the password-protected backends.
    let stored: usize = cluster
        .redis
        .iter()
        .map(|redis| match authed(redis.port).call_str(&["DBSIZE"]) {
            Reply::Integer(count) => count as usize,
            other => panic!("DBSIZE gave {other:?}"),
        })
        .sum();
    assert_eq!(stored, 2, "auth:k and auth:p on the backends");
}

/// A client that said HELLO 3 gets RESP3 replies, split commands included.
#[test]
fn resp3_client_gets_resp3_replies_including_split_commands() {
    let cluster = Cluster::start(3, "", &[]);
    let keys = cluster.key_per_shard("r3:");
    let mut conn = cluster.conn();
    assert!(matches!(conn.call_str(&["HELLO", "3"]), Reply::Map(_)));
    assert_eq!(conn.call_str(&["MSET", &keys[0], "a", &keys[2], "c"]), ok());
    assert_eq!(
        conn.call_str(&["MGET", &keys[0], &keys[1], &keys[2], "r3:none"]),
        Reply::Array(Some(vec![bulk("a"), Reply::Null, bulk("c"), Reply::Null]))
    );
    assert_eq!(conn.call_str(&["GET", &keys[1]]), Reply::Null);
    assert_eq!(
        conn.call_str(&["HSET", "r3:h", "f", "v"]),
        Reply::Integer(1)
    );
    assert_eq!(
        conn.call_str(&["HGETALL", "r3:h"]),
        Reply::Map(vec![(bulk("f"), bulk("v"))])
    );
    assert_eq!(
        conn.call_str(&["EXISTS", &keys[0], &keys[1], &keys[2]]),
        Reply::Integer(2)
    );
    assert_eq!(
        conn.call_str(&["DEL", &keys[0], &keys[1], &keys[2]]),
        Reply::Integer(2)
    );
    // Back to RESP2 on the same connection.
    assert!(matches!(conn.call_str(&["HELLO", "2"]), Reply::Array(_)));
    assert_eq!(
        conn.call_str(&["HGETALL", "r3:h"]),
        Reply::Array(Some(vec![bulk("f"), bulk("v")]))
    );
    assert_eq!(
        conn.call_str(&["MGET", &keys[0], "r3:h"]),
        Reply::Array(Some(vec![nil(), nil()]))
    );
}

#[test]
fn auth_on_a_pool_without_password_is_refused_and_the_connection_stays_open() {
    let cluster = Cluster::start(1, "", &[]);
    let mut conn = cluster.conn();
    assert_eq!(
        conn.call_str(&["AUTH", "x"]),
        error("ERR Client sent AUTH, but no password is set")
    );
    assert_eq!(conn.call_str(&["PING"]), pong());
    assert_eq!(conn.call_str(&["SET", "open:k", "v"]), ok());
    assert_eq!(conn.call_str(&["GET", "open:k"]), bulk("v"));
}

#[test]
fn redis_auth_with_redis_db_writes_into_that_database() {
    let cluster = Cluster::start_with_password(2, "  redis_auth: pw\n  redis_db: 3\n");
    let mut conn = cluster.conn();
    assert_eq!(conn.call_str(&["AUTH", "pw"]), ok());
    let keys: Vec<String> = (0..20).map(|n| format!("db3:{n}")).collect();
    for key in &keys {
        assert_eq!(conn.call_str(&["SET", key, key]), ok(), "SET {key}");
    }
    for key in &keys {
        assert_eq!(conn.call_str(&["GET", key]), bulk(key), "GET {key}");
    }
    let mut in_db3 = 0;
    for redis in &cluster.redis {
        let mut direct = authed(redis.port);
        assert_eq!(
            direct.call_str(&["DBSIZE"]),
            Reply::Integer(0),
            "db 0 stays empty"
        );
        assert_eq!(direct.call_str(&["SELECT", "3"]), ok());
        match direct.call_str(&["DBSIZE"]) {
            Reply::Integer(count) => in_db3 += count,
            other => panic!("DBSIZE gave {other:?}"),
        }
    }
    assert_eq!(in_db3, 20, "every key landed in db 3");
}

// ---------------------------------------------------------------------------------------------
// 6. Refused commands and protocol errors.
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_and_unsupported_commands_get_one_error_and_the_connection_stays_open() {
    let cluster = Cluster::start(1, "", &[]);
    let mut conn = cluster.conn();
    assert_eq!(
        conn.call_str(&["FOO"]),
        error("ERR unknown command 'FOO', with args beginning with: ")
    );
    assert_eq!(conn.call_str(&["PING"]), pong());
    for command in [
        &["BLPOP", "x", "0"][..],
        &["MULTI"],
        &["KEYS", "*"],
        &["SUBSCRIBE", "c"],
    ] {
        match conn.call_str(command) {
            Reply::Error(text) => {
                assert!(text.starts_with("ERR "), "{command:?}: -{text}");
                assert!(
                    text.to_lowercase().contains(&command[0].to_lowercase()),
                    "{command:?}: the error names the command: -{text}"
                );
            }
            other => panic!("{command:?} gave {other:?}"),
        }
        assert_eq!(conn.call_str(&["PING"]), pong(), "after {command:?}");
    }
    // All of them pipelined: one reply each, in order.
    let commands = vec![
        cmd(&["SET", "u:k", "1"]),
        cmd(&["FOO", "bar"]),
        cmd(&["MULTI"]),
        cmd(&["GET", "u:k"]),
        cmd(&["SUBSCRIBE", "c"]),
        cmd(&["PING"]),
    ];
    conn.send_raw(&encode_all(&commands));
    let replies: Vec<Reply> = (0..commands.len())
        .map(|_| conn.read_reply().unwrap())
        .collect();
    assert_eq!(replies[0], ok());
    assert!(matches!(&replies[1], Reply::Error(text) if text.contains("'FOO'")));
    assert!(matches!(&replies[2], Reply::Error(text) if text.to_lowercase().contains("multi")));
    assert_eq!(replies[3], bulk("1"));
    assert!(matches!(&replies[4], Reply::Error(text) if text.to_lowercase().contains("subscribe")));
    assert_eq!(replies[5], pong());
}

#[test]
fn malformed_frame_gets_a_protocol_error_then_the_connection_closes() {
    let cluster = Cluster::start(1, "", &[]);
    let mut conn = cluster.conn();
    assert_eq!(conn.call_str(&["SET", "p:k", "v"]), ok());
    // Replies to the requests before the bad frame still arrive, in order.
    let mut bytes = encode_all(&[cmd(&["SET", "p:k", "w"]), cmd(&["GET", "p:k"])]);
    bytes.extend_from_slice(b"*1\r\n$x\r\n");
    conn.send_raw(&bytes);
    assert_eq!(conn.read_reply().unwrap(), ok());
    assert_eq!(conn.read_reply().unwrap(), bulk("w"));
    match conn.read_reply() {
        Ok(Reply::Error(text)) => assert!(
            text.starts_with("ERR Protocol error: "),
            "protocol error reply: -{text}"
        ),
        other => panic!("malformed frame gave {other:?}"),
    }
    assert!(conn.closed_by_peer(), "closed after the protocol error");
}

#[test]
fn inline_commands_work_and_quit_says_ok_then_closes() {
    let cluster = Cluster::start(1, "", &[]);
    let mut conn = cluster.conn();
    conn.send_raw(b"PING\r\n");
    assert_eq!(conn.read_reply().unwrap(), pong());
    conn.send_raw(b"SET inline:k hello\r\nGET inline:k\r\nEXISTS inline:none\r\n");
    assert_eq!(conn.read_reply().unwrap(), ok());
    assert_eq!(conn.read_reply().unwrap(), bulk("hello"));
    assert_eq!(conn.read_reply().unwrap(), Reply::Integer(0));
    assert_eq!(conn.call_str(&["QUIT"]), ok());
    assert!(conn.closed_by_peer(), "closed after QUIT");

    // Pipelined: replies before QUIT arrive, what follows QUIT is dropped.
    let mut conn = cluster.conn();
    let commands = vec![
        cmd(&["SET", "quit:k", "1"]),
        cmd(&["QUIT"]),
        cmd(&["SET", "quit:k", "2"]),
    ];
    conn.send_raw(&encode_all(&commands));
    assert_eq!(conn.read_reply().unwrap(), ok());
    assert_eq!(conn.read_reply().unwrap(), ok());
    assert!(conn.closed_by_peer(), "closed after QUIT");
    assert_eq!(cluster.conn().call_str(&["GET", "quit:k"]), bulk("1"));
}

#[test]
fn client_half_close_still_gets_every_pending_reply() {
    let cluster = Cluster::start(3, "", &[]);
    let mut conn = cluster.conn();
    let commands: Vec<Vec<Vec<u8>>> = (0..2000)
        .map(|n| {
            let key = scrambled("hc:", n / 2);
            if n % 2 == 0 {
                cmd(&["SET", &key, &n.to_string()])
            } else {
                cmd(&["GET", &key])
            }
        })
        .collect();
    conn.send_raw(&encode_all(&commands));
    conn.shutdown_write().expect("half-close");
    for (n, command) in commands.iter().enumerate() {
        let want = if n % 2 == 0 {
            ok()
        } else {
            bulk((n - 1).to_string())
        };
        assert_eq!(
            conn.read_reply()
                .unwrap_or_else(|error| panic!("reply {n} to `{}`: {error}", show(command))),
            want,
            "reply {n} to `{}`",
            show(command)
        );
    }
    assert!(conn.closed_by_peer(), "closed once the replies are written");
}

// ---------------------------------------------------------------------------------------------
// 7. Backend failures: refused, timed out, ejected and readmitted.
// ---------------------------------------------------------------------------------------------

#[test]
fn dead_server_without_auto_eject_refuses_only_its_keys() {
    let live: Vec<Redis> = (0..2).map(|_| Redis::start(&[])).collect();
    let dead_port = free_port();
    let (proxy, port) = alpha_proxy(
        "  auto_eject_hosts: false\n",
        &[live[0].port, live[1].port, dead_port],
    );
    let buckets = keys_by_shard(&proxy.config, "dead:", 4, 3);
    let mut conn = Client::open(port);
    for _round in 0..3 {
        for (shard, bucket) in buckets.iter().enumerate() {
            for key in bucket {
                let got = conn.call_str(&["SET", key, "v"]);
                if shard == 2 {
                    assert_eq!(got, error("ERR Connection refused"), "SET {key}");
                } else {
                    assert_eq!(got, ok(), "SET {key}");
                    assert_eq!(conn.call_str(&["GET", key]), bulk("v"));
                }
            }
        }
    }
    // A multi-key command touching the dead server fails whole, and the connection lives on.
    let mget = vec!["MGET", &buckets[0][0], &buckets[2][0], &buckets[1][0]];
    assert_eq!(conn.call_str(&mget), error("ERR Connection refused"));
    let mget_live = vec!["MGET", &buckets[0][0], &buckets[1][0]];
    assert_eq!(
        conn.call_str(&mget_live),
        Reply::Array(Some(vec![bulk("v"), bulk("v")]))
    );
    let stats = proxy.stats();
    assert_eq!(pool_counter(&stats, "alpha", "server_ejects"), 0);
    // One forward_error per error reply: 3 rounds of 4 keys, and the MGET's failed fragment.
    assert_stat(
        || proxy.stats(),
        |stats| pool_counter(stats, "alpha", "forward_error"),
        13,
        "forward_error",
    );
}

#[test]
fn pool_timeout_answers_connection_timed_out() {
    let cluster = Cluster::start(2, "  timeout: 400\n", &["--enable-debug-command", "local"]);
    let keys = cluster.keys_by_shard("t:", 2);
    let (asleep, awake) = (&keys[0], &keys[1]);
    let mut conn = cluster.conn();
    for key in asleep.iter().chain(awake) {
        assert_eq!(conn.call_str(&["SET", key, "v"]), ok());
    }
    let mut sleeper = Client::open(cluster.redis[0].port);
    sleeper.send(&[b"DEBUG", b"SLEEP", b"3"]);
    wait_until("redis-server blocked", Duration::from_secs(2), || {
        redis_is_blocked(cluster.redis[0].port)
    });
    let started = Instant::now();
    let got = conn.call_str(&["GET", &asleep[0]]);
    let elapsed = started.elapsed();
    assert_eq!(got, error("ERR Connection timed out"));
    assert!(
        elapsed >= Duration::from_millis(350) && elapsed <= Duration::from_millis(1200),
        "timed out after {elapsed:?} with timeout: 400"
    );
    // The other server is unaffected.
    let started = Instant::now();
    assert_eq!(cluster.conn().call_str(&["GET", &awake[0]]), bulk("v"));
    assert!(started.elapsed() < Duration::from_millis(300));
    // A split command with a fragment on the sleeping server times out whole.
    assert_eq!(
        conn.call_str(&["MGET", &awake[0], &asleep[1], &awake[1]]),
        error("ERR Connection timed out")
    );
    // Pipelined requests all time out with it.
    let started = Instant::now();
    let replies = conn.pipeline(&[
        cmd(&["GET", &asleep[0]]),
        cmd(&["SET", &asleep[1], "1"]),
        cmd(&["GET", &asleep[1]]),
    ]);
    let elapsed = started.elapsed();
    assert_eq!(replies, vec![error("ERR Connection timed out"); 3]);
    assert!(
        elapsed <= Duration::from_millis(1200),
        "pipeline timed out after {elapsed:?} with timeout: 400"
    );
    assert!(redis_is_blocked(cluster.redis[0].port), "still asleep");
    assert!(
        stat_reaching(
            || cluster.proxy.stats(),
            |stats| servers_sum(stats, "alpha", "server_timedout"),
            1
        ) >= 1
    );
    // Once the server wakes up, requests work again on the same client connection.
    assert_eq!(sleeper.read_reply().unwrap(), ok(), "DEBUG SLEEP finished");
    wait_until("the proxy serves again", Duration::from_secs(5), || {
        conn.call_str(&["GET", &asleep[0]]) == bulk("v")
    });
    assert_eq!(
        conn.call_str(&["MGET", &awake[0], &asleep[0]]),
        Reply::Array(Some(vec![bulk("v"), bulk("v")]))
    );
}

/// Redis's `-BUSY` reply (a long script) is passed through, and the backend connection kept
/// (nutcracker closed it and answered `-ERR Invalid argument`).
#[test]
fn busy_server_reply_is_passed_through_and_the_connection_kept() {
    let cluster = Cluster::start(1, "", &["--busy-reply-threshold", "100"]);
    let port = cluster.redis[0].port;
    let mut conn = cluster.conn();
    assert_eq!(conn.call_str(&["SET", "busy:k", "v"]), ok());
    let mut script = Client::open(port);
    script.send(&[b"EVAL", b"while true do end", b"0"]);
    let mut busy = Reply::Null;
    wait_until("redis-server answers BUSY", Duration::from_secs(5), || {
        busy = Client::open(port).call_str(&["GET", "busy:k"]);
        matches!(&busy, Reply::Error(text) if text.starts_with("BUSY"))
    });
    assert_eq!(
        conn.call_str(&["GET", "busy:k"]),
        busy,
        "BUSY passed through"
    );
    assert_eq!(
        conn.call_str(&["SET", "busy:x", "1"]),
        busy,
        "BUSY passed through"
    );
    assert_eq!(Client::open(port).call_str(&["SCRIPT", "KILL"]), ok());
    assert!(
        matches!(script.read_reply().unwrap(), Reply::Error(_)),
        "the script was killed"
    );
    assert_eq!(conn.call_str(&["GET", "busy:k"]), bulk("v"));
    let stats = cluster.proxy.stats();
    let server = Json::parse(&stats);
    let server = server.get("alpha").get("s0");
    assert_eq!(server.get("server_err").num(), 0, "{stats}");
    assert_eq!(server.get("server_eof").num(), 0, "{stats}");
    assert_eq!(pool_counter(&stats, "alpha", "forward_error"), 0, "{stats}");
}

/// A server closing an idle connection (its `timeout`, CLIENT KILL, a restart) is not a
/// failure: with `server_failure_limit: 1` nothing is ejected, and the next request works.
#[test]
fn idle_backend_close_is_not_a_failure_and_a_restarted_server_serves_the_next_request() {
    let first = Redis::start(&[]);
    let restart_port = free_port();
    let mut restarting = Redis::start_on(restart_port, &[]);
    let directives =
        "  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 30000\n";
    let (proxy, port) = alpha_proxy(directives, &[first.port, restart_port]);
    let buckets = keys_by_shard(&proxy.config, "idle:", 3, 2);
    let mut conn = Client::open(port);
    for bucket in &buckets {
        for key in bucket {
            assert_eq!(conn.call_str(&["SET", key, "v"]), ok());
        }
    }
    // Every backend connection of s0 killed while idle.
    let killed =
        Client::open(first.port).call_str(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
    assert!(
        matches!(killed, Reply::Integer(count) if count >= 1),
        "CLIENT KILL: {killed:?}"
    );
    for key in &buckets[0] {
        assert_eq!(
            conn.call_str(&["GET", key]),
            bulk("v"),
            "GET {key} after the idle close"
        );
    }
    // s1 restarted (its data lost): the next request goes to the new process.
    restarting.kill();
    let _restarted = Redis::start_on(restart_port, &[]);
    for key in &buckets[1] {
        assert_eq!(
            conn.call_str(&["GET", key]),
            nil(),
            "GET {key} after the restart"
        );
        assert_eq!(conn.call_str(&["SET", key, "w"]), ok());
    }
    assert_eq!(
        Client::open(restart_port).call_str(&["GET", &buckets[1][0]]),
        bulk("w")
    );
    let stats = proxy.stats();
    assert_eq!(pool_counter(&stats, "alpha", "server_ejects"), 0, "{stats}");
    assert_eq!(pool_counter(&stats, "alpha", "forward_error"), 0, "{stats}");
}

/// With every server ejected, requests get `-ERR Connection refused` at once; the pool serves
/// again once the server is back.
#[test]
fn all_servers_ejected_refuse_then_recover() {
    let redis_port = free_port();
    let mut server = Redis::start_on(redis_port, &[]);
    let directives =
        "  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 500\n";
    let (proxy, port) = alpha_proxy(directives, &[redis_port]);
    let mut conn = Client::open(port);
    assert_eq!(conn.call_str(&["SET", "all:k", "v"]), ok());
    server.kill();
    match conn.call_str(&["GET", "all:k"]) {
        Reply::Error(text) => assert!(TRANSPORT_ERRORS.contains(&text.as_str()), "-{text}"),
        other => panic!("GET on a dead server gave {other:?}"),
    }
    for _ in 0..5 {
        assert_eq!(
            conn.call_str(&["GET", "all:k"]),
            error("ERR Connection refused")
        );
        assert_eq!(
            conn.call_str(&["MGET", "all:k", "all:j"]),
            error("ERR Connection refused")
        );
    }
    assert!(
        stat_reaching(
            || proxy.stats(),
            |stats| pool_counter(stats, "alpha", "server_ejects"),
            1
        ) >= 1
    );
    let _back = Redis::start_on(redis_port, &[]);
    wait_until("the pool serves again", Duration::from_secs(8), || {
        conn.call_str(&["SET", "all:k", "w"]) == ok()
    });
    assert_eq!(conn.call_str(&["GET", "all:k"]), bulk("w"));
}

#[test]
fn ejected_server_moves_its_keys_and_comes_back_when_restarted() {
    let others: Vec<Redis> = (0..2).map(|_| Redis::start(&[])).collect();
    let victim_port = free_port();
    let mut victim = Redis::start_on(victim_port, &[]);
    let directives =
        "  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 1000\n";
    let (proxy, port) = alpha_proxy(directives, &[others[0].port, others[1].port, victim_port]);
    let victim_keys = keys_by_shard(&proxy.config, "ej:", 6, 3).remove(2);
    let key = &victim_keys[0];

    let mut conn = Client::open(port);
    assert_eq!(conn.call_str(&["SET", key, "before"]), ok());
    assert_eq!(
        Client::open(victim_port).call_str(&["GET", key]),
        bulk("before"),
        "{key} lives on s2"
    );
    victim.kill();
    match conn.call_str(&["GET", key]) {
        Reply::Error(text) => assert!(
            TRANSPORT_ERRORS.contains(&text.as_str()),
            "first request after the kill: -{text}"
        ),
        other => panic!("first request after the kill gave {other:?}"),
    }
    wait_until(
        "the key moves to a live server",
        Duration::from_secs(5),
        || conn.call_str(&["SET", key, "moved"]) == ok(),
    );
    for other in &victim_keys {
        assert_eq!(conn.call_str(&["SET", other, "moved"]), ok(), "SET {other}");
        assert_eq!(conn.call_str(&["GET", other]), bulk("moved"), "GET {other}");
    }
    let stats = || proxy.stats();
    assert!(stat_reaching(stats, |s| pool_counter(s, "alpha", "server_ejects"), 1) >= 1);
    let ejected_at = Json::parse(&proxy.stats())
        .get("alpha")
        .get("s2")
        .get("server_ejected_at")
        .num();
    let now = now_micros() as u64;
    assert!(
        ejected_at > now - 60_000_000 && ejected_at <= now,
        "server_ejected_at {ejected_at} is a recent time in µs (now {now})"
    );

    let _restarted = Redis::start_on(victim_port, &[]);
    let mut round = 0;
    wait_until(
        "the restarted server to get its keys back",
        Duration::from_secs(8),
        || {
            round += 1;
            let value = format!("back-{round}");
            conn.call_str(&["SET", key, &value]) == ok()
                && Client::open(victim_port).call_str(&["GET", key]) == bulk(&value)
        },
    );
    assert_eq!(conn.call_str(&["GET", key]), bulk(format!("back-{round}")));
}

// ---------------------------------------------------------------------------------------------
// 8. The stats document.
// ---------------------------------------------------------------------------------------------

/// Two pools, out of order, with server names of several lengths, out of order.
fn stats_yaml(listen: [u16; 2], redis: [u16; 3]) -> String {
    format!(
        "zeta:\n  listen: 127.0.0.1:{}\n  redis: true\n  servers:\n   - 127.0.0.1:{}:1 longname\n   - 127.0.0.1:{}:1 b\n   - 127.0.0.1:{}:1 aa\n\
         ab:\n  listen: 127.0.0.1:{}\n  redis: true\n  servers:\n   - 127.0.0.1:{}:1\n   - 127.0.0.1:{}:1\n",
        listen[0], redis[0], redis[1], redis[2], listen[1], redis[2], redis[0]
    )
}

fn assert_valid_json(stats: &str) {
    let Ok(mut python) = Command::new("python3")
        .args(["-c", "import json, sys; json.load(sys.stdin)"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        return;
    };
    python
        .stdin
        .take()
        .unwrap()
        .write_all(stats.as_bytes())
        .unwrap();
    let output = python.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "python3 json.load rejects the stats: {}\n{stats}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn stats_document_has_nutcracker_layout_and_counts_requests() {
    let redis: Vec<Redis> = (0..3).map(|_| Redis::start(&[])).collect();
    let listen = [free_port(), free_port()];
    let yaml = stats_yaml(listen, [redis[0].port, redis[1].port, redis[2].port]);
    let proxy = Rampart::start(&yaml, &listen, &[]);
    let mut conn = Client::open(listen[0]);
    assert_eq!(conn.call_str(&["PING"]), pong());

    // Published every 100 ms: wait for the first publication that shows this client.
    stat_reaching(
        || proxy.stats(),
        |stats| pool_counter(stats, "zeta", "client_connections"),
        1,
    );
    let stats = proxy.stats();
    assert!(stats.ends_with("}\n"), "ends with a newline: {stats:?}");
    assert_valid_json(&stats);
    let document = Json::parse(&stats);
    assert_eq!(
        document.keys(),
        [
            "service",
            "source",
            "version",
            "uptime",
            "timestamp",
            "total_connections",
            "curr_connections",
            "ab",
            "zeta"
        ]
    );
    assert_eq!(*document.get("service"), Json::Str("nutcracker".into()));
    assert_eq!(*document.get("version"), Json::Str("0.5.0".into()));
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(*document.get("source"), Json::Str(hostname.trim().into()));
    assert!(document.get("uptime").num() < 60);
    let now = now_micros() as u64 / 1_000_000;
    assert!(document.get("timestamp").num().abs_diff(now) <= 5);
    assert!(document.get("curr_connections").num() >= 1, "{stats}");
    assert!(document.get("total_connections").num() >= document.get("curr_connections").num());
    let pool_fields = [
        "client_eof",
        "client_err",
        "client_connections",
        "server_ejects",
        "forward_error",
        "fragments",
    ];
    let server_fields = [
        "server_eof",
        "server_err",
        "server_timedout",
        "server_connections",
        "server_ejected_at",
        "requests",
        "request_bytes",
        "responses",
        "response_bytes",
        "in_queue",
        "in_queue_bytes",
        "out_queue",
        "out_queue_bytes",
    ];
    let mut zeta_keys = pool_fields.to_vec();
    zeta_keys.extend(["b", "aa", "longname"]);
    assert_eq!(document.get("zeta").keys(), zeta_keys);
    let mut ab_keys = pool_fields.to_vec();
    let mut unnamed = [
        format!("127.0.0.1:{}", redis[0].port),
        format!("127.0.0.1:{}", redis[2].port),
    ];
    unnamed.sort_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
    ab_keys.extend(unnamed.iter().map(String::as_str));
    assert_eq!(document.get("ab").keys(), ab_keys);
    for pool in ["ab", "zeta"] {
        for (name, server) in document.get(pool).servers() {
            assert_eq!(server.keys(), server_fields, "fields of {pool}/{name}");
        }
    }

    // 10 SET + 10 GET: +20 requests and +20 responses over zeta's servers.
    let requests_before = servers_sum(&stats, "zeta", "requests");
    let responses_before = servers_sum(&stats, "zeta", "responses");
    for n in 0..10 {
        let key = format!("st:{n}");
        assert_eq!(conn.call_str(&["SET", &key, "v"]), ok());
    }
    for n in 0..10 {
        assert_eq!(conn.call_str(&["GET", &format!("st:{n}")]), bulk("v"));
    }
    assert_stat(
        || proxy.stats(),
        |stats| servers_sum(stats, "zeta", "requests"),
        requests_before + 20,
        "requests",
    );
    assert_stat(
        || proxy.stats(),
        |stats| servers_sum(stats, "zeta", "responses"),
        responses_before + 20,
        "responses",
    );
    // A 10-key MGET counts one request and one response per fragment (per server).
    let keys: Vec<String> = (0..10).map(|n| format!("st:{n}")).collect();
    let mut servers: Vec<String> = place(&proxy.config, Some("zeta"), &[], &keys)
        .into_iter()
        .map(|placed| placed.server)
        .collect();
    servers.sort();
    servers.dedup();
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    assert_eq!(
        conn.call_str(&mget),
        Reply::Array(Some(vec![bulk("v"); 10]))
    );
    let fragments = servers.len() as u64;
    assert_stat(
        || proxy.stats(),
        |stats| servers_sum(stats, "zeta", "requests"),
        requests_before + 20 + fragments,
        "requests after MGET",
    );
    assert_stat(
        || proxy.stats(),
        |stats| servers_sum(stats, "zeta", "responses"),
        responses_before + 20 + fragments,
        "responses after MGET",
    );

    let stats = proxy.stats();
    assert_eq!(pool_counter(&stats, "zeta", "client_connections"), 1);
    assert_eq!(servers_sum(&stats, "ab", "requests"), 0);
    assert!(servers_sum(&stats, "zeta", "request_bytes") > 0);
    assert!(servers_sum(&stats, "zeta", "response_bytes") > 0);
}

/// rampart (with `extra` flags) and nutcracker side by side, both serving `stats_yaml` over
/// the same three redis-servers.
struct SideBySide {
    rampart: Rampart,
    rampart_listen: [u16; 2],
    nutcracker: Nutcracker,
    nutcracker_listen: [u16; 2],
    _redis: Vec<Redis>,
}

impl SideBySide {
    fn start(extra: &[&str]) -> SideBySide {
        let redis: Vec<Redis> = (0..3).map(|_| Redis::start(&[])).collect();
        let redis_ports = [redis[0].port, redis[1].port, redis[2].port];
        let rampart_listen = [free_port(), free_port()];
        let nutcracker_listen = [free_port(), free_port()];
        let rampart = Rampart::start(
            &stats_yaml(rampart_listen, redis_ports),
            &rampart_listen,
            extra,
        );
        let nutcracker = Nutcracker::start(
            &stats_yaml(nutcracker_listen, redis_ports),
            &nutcracker_listen,
        );
        SideBySide {
            rampart,
            rampart_listen,
            nutcracker,
            nutcracker_listen,
            _redis: redis,
        }
    }
}

#[test]
fn stats_document_matches_nutcracker_byte_layout() {
    let SideBySide {
        rampart,
        nutcracker,
        ..
    } = &SideBySide::start(&[]);

    let ours = rampart.stats();
    let theirs = nutcracker.stats();
    let (ours_doc, theirs_doc) = (Json::parse(&ours), Json::parse(&theirs));
    assert_eq!(ours_doc.keys(), theirs_doc.keys(), "top-level keys");
    for pool in ["ab", "zeta"] {
        assert_eq!(
            ours_doc.get(pool).keys(),
            theirs_doc.get(pool).keys(),
            "keys of pool {pool}"
        );
        for ((name, ours_server), (_, theirs_server)) in ours_doc
            .get(pool)
            .servers()
            .iter()
            .zip(theirs_doc.get(pool).servers())
        {
            assert_eq!(
                ours_server.keys(),
                theirs_server.keys(),
                "keys of {pool}/{name}"
            );
        }
    }
    assert_eq!(
        ours_doc.get("source"),
        theirs_doc.get("source"),
        "same hostname"
    );
    assert_eq!(layout(&ours), layout(&theirs), "byte layout, numbers aside");
}

/// Every number in the document by its path, but uptime, timestamp and `fragments` (which
/// nutcracker never counts and rampart does, deliberately).
fn counters(document: &Json) -> Vec<(String, u64)> {
    fn walk(prefix: &str, value: &Json, out: &mut Vec<(String, u64)>) {
        for (key, value) in value.entries() {
            let path = format!("{prefix}/{key}");
            match value {
                Json::Num(number) => {
                    if !["uptime", "timestamp", "fragments"].contains(&key.as_str()) {
                        out.push((path, *number));
                    }
                }
                Json::Obj(_) => walk(&path, value, out),
                Json::Str(_) => {}
            }
        }
    }
    let mut out = Vec::new();
    walk("", document, &mut out);
    out
}

/// The same requests on both pools of a proxy: single-key and split commands, then QUIT.
fn stats_traffic(listen: [u16; 2]) {
    let mut conn = Client::open(listen[0]);
    for n in 0..10 {
        let key = format!("par:{n}");
        assert_eq!(conn.call_str(&["SET", &key, &format!("value {n}")]), ok());
    }
    for n in 0..10 {
        let key = format!("par:{n}");
        assert_eq!(conn.call_str(&["GET", &key]), bulk(format!("value {n}")));
    }
    let keys: Vec<String> = (0..10).map(|n| format!("par:{n}")).collect();
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    assert!(matches!(conn.call_str(&mget), Reply::Array(Some(items)) if items.len() == 10));
    assert_eq!(
        conn.call_str(&["DEL", "par:1", "par:2", "par:nope"]),
        Reply::Integer(2)
    );
    assert_eq!(conn.call_str(&["GET", "par:nope"]), nil());
    // QUIT: rampart says +OK, nutcracker just closes.
    conn.send(&[b"QUIT"]);
    if let Ok(reply) = conn.read_reply() {
        assert_eq!(reply, ok());
        assert!(conn.closed_by_peer());
    }
    let mut other = Client::open(listen[1]);
    assert_eq!(other.call_str(&["SET", "par:ab", "1"]), ok());
    assert_eq!(other.call_str(&["GET", "par:ab"]), bulk("1"));
}

#[test]
fn stats_counters_match_nutcracker_for_the_same_traffic() {
    let SideBySide {
        rampart,
        rampart_listen,
        nutcracker,
        nutcracker_listen,
        ..
    } = &SideBySide::start(&["--workers", "1"]);
    stats_traffic(*rampart_listen);
    stats_traffic(*nutcracker_listen);
    let mut last = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        last = (
            counters(&Json::parse(&rampart.stats())),
            counters(&Json::parse(&nutcracker.stats())),
        );
        if last.0 == last.1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let differences: Vec<String> = last
        .0
        .iter()
        .zip(&last.1)
        .filter(|(ours, theirs)| ours != theirs)
        .map(|(ours, theirs)| format!("{}: rampart {} nutcracker {}", ours.0, ours.1, theirs.1))
        .collect();
    assert!(
        differences.is_empty() && last.0.len() == last.1.len(),
        "counters differ (rampart --workers 1 vs nutcracker):\n{}",
        differences.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// 9. Signals.
// ---------------------------------------------------------------------------------------------

/// rampart (at its default verbosity) serving `alpha_yaml` over one redis-server on a free
/// port, writing its pid file; not waited for.
struct WithPidFile {
    proxy: Rampart,
    port: u16,
    pid_file: PathBuf,
    /// Holds the pid file.
    _dir: tempfile::TempDir,
}

impl WithPidFile {
    fn spawn(redis_port: u16) -> WithPidFile {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let pid_file = dir.path().join("rampart.pid");
        let pid_arg = pid_file.to_str().unwrap();
        let proxy = Rampart::spawn(&alpha_yaml(port, "", &[redis_port]), &["-p", pid_arg]);
        WithPidFile {
            proxy,
            port,
            pid_file,
            _dir: dir,
        }
    }
}

fn wait_for_log(log: &Path, text: &str) {
    wait_until(
        &format!("{text} in {}", log.display()),
        Duration::from_secs(5),
        || fs::read_to_string(log).is_ok_and(|content| content.contains(text)),
    );
}

#[test]
fn signals_are_logged_and_sigterm_drains_in_flight_replies() {
    let redis = Redis::start(&["--enable-debug-command", "local"]);
    let WithPidFile {
        mut proxy,
        port,
        pid_file,
        _dir,
    } = WithPidFile::spawn(redis.port);
    proxy.wait_listening(&[port]);
    let log = proxy.log.clone();
    assert_eq!(
        fs::read_to_string(&pid_file).unwrap().trim(),
        proxy.pid().to_string(),
        "pid file"
    );

    let mut conn = Client::open(port);
    assert_eq!(conn.call_str(&["SET", "sig:k", "v"]), ok());
    // rampart may serve before its handlers exist (see `signals_right_after_start_are_handled`);
    // this test is about what the handlers do.
    wait_until("signal handlers installed", Duration::from_secs(5), || {
        proxy
            .process()
            .catches(&[libc::SIGHUP, libc::SIGTTIN, libc::SIGTTOU, libc::SIGTERM])
    });

    proxy.process().signal(libc::SIGTTIN);
    wait_for_log(&log, "SIGTTIN");
    proxy.process().signal(libc::SIGTTOU);
    wait_for_log(&log, "SIGTTOU");
    // SIGHUP reopens the log: after logrotate moved it away, a new file appears.
    let rotated = proxy.dir.path().join("rampart.log.1");
    fs::rename(&log, &rotated).unwrap();
    proxy.process().signal(libc::SIGHUP);
    wait_for_log(&rotated, "SIGHUP");
    wait_until("a new log file", Duration::from_secs(5), || log.exists());

    // Requests in flight behind a sleeping backend when SIGTERM arrives.
    let mut sleeper = Client::open(redis.port);
    sleeper.send(&[b"DEBUG", b"SLEEP", b"1.5"]);
    wait_until("redis-server blocked", Duration::from_secs(2), || {
        redis_is_blocked(redis.port)
    });
    let mut commands = vec![cmd(&["GET", "sig:k"])];
    let mut wanted = vec![bulk("v")];
    for n in 0..1000 {
        let key = format!("sig:{n}");
        commands.push(cmd(&["SET", &key, &n.to_string()]));
        wanted.push(ok());
        commands.push(cmd(&["GET", &key]));
        wanted.push(bulk(n.to_string()));
    }
    let writer = conn.send_in_background(&commands);
    let forwarded = 1 + commands.len() as u64;
    stat_reaching(
        || proxy.stats(),
        |stats| servers_sum(stats, "alpha", "requests"),
        forwarded,
    );
    assert!(redis_is_blocked(redis.port), "still in flight");
    proxy.process().signal(libc::SIGTERM);
    for (index, (command, want)) in commands.iter().zip(&wanted).enumerate() {
        let got = conn.read_reply().unwrap_or_else(|error| {
            panic!("in-flight reply {index} to `{}`: {error}", show(command))
        });
        assert_eq!(&got, want, "in-flight reply {index} to `{}`", show(command));
    }
    writer.join().unwrap().unwrap();
    assert!(conn.closed_by_peer(), "client closed after its replies");
    let status = proxy.process().wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
    assert!(!pid_file.exists(), "pid file removed");
    wait_for_log(&log, "SIGTERM");
    assert!(
        Client::connect_with_timeout(port, Duration::from_secs(1)).is_err(),
        "no longer listening"
    );
}

/// nutcracker installs its signal handlers before it writes the pid file (and before it
/// listens). Its test harness, like logrotate, signals the pid it finds there: a SIGHUP the
/// moment the pid file exists must be handled, not kill the process.
#[test]
fn signals_right_after_start_are_handled() {
    let redis = Redis::start(&[]);
    for attempt in 0..10 {
        let WithPidFile {
            mut proxy,
            port,
            pid_file,
            _dir,
        } = WithPidFile::spawn(redis.port);
        // Signal as soon as the pid file names the process (a tight poll: wait_until's 20 ms
        // steps would let any start-up race go unnoticed).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !fs::read_to_string(&pid_file).is_ok_and(|pid| pid.trim() == proxy.pid().to_string())
        {
            assert!(Instant::now() < deadline, "no pid file");
            std::thread::yield_now();
        }
        proxy.process().signal(libc::SIGHUP);
        let log = proxy.log.clone();
        wait_until(
            &format!("SIGHUP logged (attempt {attempt})"),
            Duration::from_secs(5),
            || {
                if let Some(status) = proxy.process().exit_status() {
                    panic!("attempt {attempt}: SIGHUP right after start ended rampart: {status}");
                }
                fs::read_to_string(&log).is_ok_and(|text| text.contains("SIGHUP"))
            },
        );
        wait_until("rampart listening", Duration::from_secs(10), || pings(port));
    }
}

#[test]
fn sigint_stops_cleanly_too() {
    let redis = Redis::start(&[]);
    let WithPidFile {
        mut proxy,
        port,
        pid_file,
        _dir,
    } = WithPidFile::spawn(redis.port);
    proxy.wait_listening(&[port]);
    let mut conn = Client::open(port);
    assert_eq!(conn.call_str(&["SET", "int:k", "v"]), ok());
    wait_until("signal handlers installed", Duration::from_secs(5), || {
        proxy.process().catches(&[libc::SIGINT])
    });
    proxy.process().signal(libc::SIGINT);
    assert!(conn.closed_by_peer(), "idle client closed");
    assert_eq!(
        proxy.process().wait_exit(Duration::from_secs(10)).code(),
        Some(0)
    );
    assert!(!pid_file.exists(), "pid file removed");
    wait_for_log(&proxy.log, "SIGINT");
}
