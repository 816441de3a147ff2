//! Placement parity with the real nutcracker 0.5.0: keys are written through nutcracker,
//! read back from each redis-server, and compared with what `rampart route` says.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use support::free_port;
use support::process::{Nutcracker, Redis, pool_yaml};
use support::resp::{Client, error};
use support::route::place;

const HASHES: [&str; 12] = [
    "one_at_a_time",
    "md5",
    "crc16",
    "crc32",
    "crc32a",
    "fnv1_64",
    "fnv1a_64",
    "fnv1_32",
    "fnv1a_32",
    "hsieh",
    "murmur",
    "jenkins",
];

/// Keys of every kind that matters for placement: ASCII, hash tags in both styles, non-ASCII
/// UTF-8, bytes that are not UTF-8, the empty key and long keys. None holds `\n` or `\t`.
fn keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for i in 0..150 {
        keys.push(format!("key:{i}").into_bytes());
        keys.push(format!("user:{{u{}}}:field{i}", i % 7).into_bytes());
    }
    for i in 0..40 {
        keys.push(format!("$tag{}$rest{i}", i % 5).into_bytes());
        keys.push(format!("ключ:{i}").into_bytes());
        keys.push(format!("你好{i}").into_bytes());
        keys.push(vec![0xff, 0x80 + i as u8, b'k', 0xc3]);
        keys.push(format!("{}{i}", "long".repeat(60)).into_bytes());
    }
    keys.extend([
        b"".to_vec(),
        b"{}".to_vec(),
        b"a{}{b}".to_vec(),
        b"{abc".to_vec(),
        b"a}b{c".to_vec(),
    ]);
    keys
}

/// A pool beyond the hash x distribution grid: name, directives, servers, names by port.
type ExtraPool<'a> = (&'a str, &'a str, &'a Vec<String>, &'a BTreeMap<u16, String>);

/// One pool of a generated nutcracker.yml.
struct PoolSpec {
    name: String,
    port: u16,
    db: u32,
    body: String,
}

fn pool(name: &str, db: u32, directives: &str, servers: &[String]) -> PoolSpec {
    let port = free_port();
    let body = pool_yaml(
        name,
        port,
        &format!("  redis_db: {db}\n{directives}"),
        servers,
    );
    PoolSpec {
        name: name.to_string(),
        port,
        db,
        body,
    }
}

/// Writes every key through nutcracker's pool port; each SET must succeed.
fn write_through(port: u16, keys: &[Vec<u8>]) {
    let commands: Vec<Vec<Vec<u8>>> = keys
        .iter()
        .map(|key| vec![b"SET".to_vec(), key.clone(), b"v".to_vec()])
        .collect();
    let replies = Client::connect(port).unwrap().pipeline(&commands);
    for (key, reply) in keys.iter().zip(&replies) {
        assert!(
            reply.is_ok(),
            "SET {:?} through nutcracker gave {reply:?}",
            String::from_utf8_lossy(key)
        );
    }
}

/// Compares where nutcracker stored each key of `pool` with rampart's placement.
/// `names` maps each backend port to the server name rampart should print for it.
fn assert_parity(
    config: &Path,
    spec: &PoolSpec,
    backends: &[&Redis],
    names: &BTreeMap<u16, String>,
    ejected: &[&str],
    keys: &[Vec<u8>],
) -> usize {
    let mut stored: BTreeMap<Vec<u8>, String> = BTreeMap::new();
    for redis in backends {
        for key in redis.keys(spec.db) {
            let previous = stored.insert(key.clone(), names[&redis.port].clone());
            assert!(
                previous.is_none(),
                "key {key:?} stored twice in pool {}",
                spec.name
            );
        }
    }
    let mut mismatches = Vec::new();
    for placed in place(config, Some(&spec.name), ejected, keys) {
        let (key, server) = (placed.key, placed.server);
        let actual = stored
            .get(&key)
            .cloned()
            .unwrap_or_else(|| "<missing>".into());
        if actual != server {
            mismatches.push(format!(
                "{:?}: nutcracker {actual}, rampart {server}",
                String::from_utf8_lossy(&key)
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "pool {}: {} of {} keys differ: {:#?}",
        spec.name,
        mismatches.len(),
        keys.len(),
        &mismatches[..mismatches.len().min(10)]
    );
    keys.len()
}

fn unnamed(redis: &Redis, weight: u32) -> String {
    format!("127.0.0.1:{}:{weight}", redis.port)
}

#[test]
fn every_hash_distribution_weight_name_and_tag_matches_nutcracker() {
    let backends: Vec<Redis> = (0..5)
        .map(|_| Redis::start(&["--databases", "64"]))
        .collect();
    let plain: Vec<String> = backends.iter().map(|r| unnamed(r, 1)).collect();
    let plain_names: BTreeMap<u16, String> = backends
        .iter()
        .map(|r| (r.port, format!("127.0.0.1:{}", r.port)))
        .collect();
    let named_list = ["server1", "b", "zz", "alpha", "a-much-longer-name"];
    let named: Vec<String> = backends
        .iter()
        .zip([1, 2, 5, 1, 3])
        .zip(named_list)
        .map(|((r, weight), name)| format!("{} {name}", unnamed(r, weight)))
        .collect();
    let named_names: BTreeMap<u16, String> = backends
        .iter()
        .zip(named_list)
        .map(|(r, name)| (r.port, name.to_string()))
        .collect();
    let weighted: Vec<String> = backends
        .iter()
        .zip([1, 2, 5, 3, 1])
        .map(|(r, w)| unnamed(r, w))
        .collect();

    let mut pools: Vec<(PoolSpec, &BTreeMap<u16, String>)> = Vec::new();
    for (i, hash) in HASHES.iter().enumerate() {
        for (j, distribution) in ["ketama", "modula"].iter().enumerate() {
            let db = 1 + (i * 2 + j) as u32;
            let directives = format!("  hash: {hash}\n  distribution: {distribution}\n");
            pools.push((
                pool(&format!("{hash}_{distribution}"), db, &directives, &plain),
                &plain_names,
            ));
        }
    }
    let extra: [ExtraPool<'_>; 6] = [
        (
            "weighted_ketama",
            "  hash: fnv1a_64\n  distribution: ketama\n",
            &weighted,
            &plain_names,
        ),
        (
            "weighted_modula",
            "  hash: md5\n  distribution: modula\n",
            &weighted,
            &plain_names,
        ),
        (
            "named_ketama",
            "  hash: murmur\n  distribution: ketama\n",
            &named,
            &named_names,
        ),
        (
            "named_modula",
            "  hash: crc32a\n  distribution: modula\n",
            &named,
            &named_names,
        ),
        (
            "tag_braces",
            "  hash: fnv1a_64\n  hash_tag: \"{}\"\n",
            &named,
            &named_names,
        ),
        (
            "tag_dollars",
            "  hash: one_at_a_time\n  distribution: modula\n  hash_tag: \"$$\"\n",
            &plain,
            &plain_names,
        ),
    ];
    for (k, (name, directives, servers, names)) in extra.into_iter().enumerate() {
        pools.push((pool(name, 40 + k as u32, directives, servers), names));
    }

    let yaml: String = pools.iter().map(|(spec, _)| spec.body.as_str()).collect();
    let ports: Vec<u16> = pools.iter().map(|(spec, _)| spec.port).collect();
    let nutcracker = Nutcracker::start(&yaml, &ports);
    let keys = keys();
    let backend_refs: Vec<&Redis> = backends.iter().collect();
    let mut compared = 0;
    for (spec, names) in &pools {
        write_through(spec.port, &keys);
        compared += assert_parity(&nutcracker.config, spec, &backend_refs, names, &[], &keys);
    }
    println!(
        "placement parity: {compared} keys over {} pools, 0 differ",
        pools.len()
    );
}

#[test]
fn ketama_over_25_servers_matches_nutcracker() {
    let backends: Vec<Redis> = (0..25).map(|_| Redis::start(&[])).collect();
    let servers: Vec<String> = backends.iter().map(|r| unnamed(r, 1)).collect();
    let names: BTreeMap<u16, String> = backends
        .iter()
        .map(|r| (r.port, format!("127.0.0.1:{}", r.port)))
        .collect();
    let spec = pool(
        "twenty_five",
        0,
        "  hash: fnv1a_64\n  distribution: ketama\n",
        &servers,
    );
    let nutcracker = Nutcracker::start(&spec.body, &[spec.port]);
    let keys = keys();
    write_through(spec.port, &keys);
    let refs: Vec<&Redis> = backends.iter().collect();
    let compared = assert_parity(&nutcracker.config, &spec, &refs, &names, &[], &keys);
    println!("25-server ketama parity: {compared} keys, 0 differ");
}

#[test]
fn ring_rebuilt_after_an_ejection_matches_nutcracker() {
    let mut backends: Vec<Redis> = (0..4)
        .map(|_| Redis::start(&["--databases", "4"]))
        .collect();
    let labels = ["w1", "w2", "w3", "w4"];
    let servers: Vec<String> = backends
        .iter()
        .zip(labels)
        .enumerate()
        .map(|(i, (r, name))| format!("{} {name}", unnamed(r, i as u32 + 1)))
        .collect();
    let names: BTreeMap<u16, String> = backends
        .iter()
        .zip(labels)
        .map(|(r, name)| (r.port, name.to_string()))
        .collect();
    let eject =
        "  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 600000\n";
    let ketama = pool(
        "eject_ketama",
        1,
        &format!("  hash: fnv1a_64\n  distribution: ketama\n{eject}"),
        &servers,
    );
    let modula = pool(
        "eject_modula",
        2,
        &format!("  hash: crc32a\n  distribution: modula\n{eject}"),
        &servers,
    );
    let yaml = format!("{}{}", ketama.body, modula.body);
    let nutcracker = Nutcracker::start(&yaml, &[ketama.port, modula.port]);

    let doomed = backends.remove(2);
    let doomed_name = "w3";
    drop(doomed);
    let keys = keys();
    for spec in [&ketama, &modula] {
        let before = place(&nutcracker.config, Some(&spec.name), &[], &keys);
        let victim = &before
            .iter()
            .find(|placed| placed.server == doomed_name)
            .expect("a key on w3")
            .key;
        let reply = Client::connect(spec.port).unwrap().call(&[b"GET", victim]);
        assert_eq!(
            reply,
            error("ERR Connection refused"),
            "the first request to a dead server fails"
        );
        write_through(spec.port, &keys);
        let refs: Vec<&Redis> = backends.iter().collect();
        let compared = assert_parity(
            &nutcracker.config,
            spec,
            &refs,
            &names,
            &[doomed_name],
            &keys,
        );
        println!("ejection parity ({}): {compared} keys, 0 differ", spec.name);
    }
}
