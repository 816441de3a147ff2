//! Every rule of nutcracker 0.5.0's configuration, through the public API: defaults, each
//! directive's values and errors, servers and node names, listen, pool-wide and file-wide
//! checks, ordering, YAML structure, and rampart's `sentinels:` and client-limit extensions.

use std::path::{Path, PathBuf};

use rampart_config::{
    ClientLimits, Config, ConfigError, ConfigErrorKind, Listen, Password, SentinelAddr,
    ServerAddress, load, parse,
};
use rampart_placement::{Distribution, HashKind, HashTag};

const FILE: &str = "conf/test.yml";

/// Whether an error is of the expected kind.
type Expect = fn(&ConfigErrorKind) -> bool;

fn ok(source: &str) -> Config {
    match parse(source, Path::new(FILE)) {
        Ok(config) => config,
        Err(error) => panic!("expected {source:?} to be accepted, got: {error}"),
    }
}

fn err(source: &str) -> ConfigError {
    match parse(source, Path::new(FILE)) {
        Ok(config) => panic!("expected {source:?} to be rejected, got {config:?}"),
        Err(error) => error,
    }
}

/// A pool `p` with `extra` directive lines and one server.
fn pool(extra: &str) -> String {
    format!("p:\n  listen: 127.0.0.1:22121\n{extra}  servers:\n   - 127.0.0.1:6379:1\n")
}

/// A pool `p` with the given server entries.
fn with_servers(entries: &[&str]) -> String {
    let list: String = entries.iter().map(|e| format!("   - {e}\n")).collect();
    format!("p:\n  listen: 127.0.0.1:22121\n  servers:\n{list}")
}

fn at(error: &ConfigError) -> (usize, usize) {
    (error.line, error.column)
}

// ---------------------------------------------------------------- defaults and values

#[test]
fn defaults() {
    let config = ok(&pool(""));
    assert_eq!(config.file, PathBuf::from(FILE));
    let p = &config.pools[0];
    assert_eq!(p.name, "p");
    assert_eq!(p.line, 1);
    assert_eq!(
        p.listen,
        Listen::Tcp {
            host: "127.0.0.1".into(),
            port: 22121
        }
    );
    assert_eq!(p.listen_line, 2);
    assert_eq!(p.hash, HashKind::Fnv1a64);
    assert_eq!(p.hash_tag, None);
    assert_eq!(p.distribution, Distribution::Ketama);
    assert_eq!(p.timeout_ms, None);
    assert_eq!(p.backlog, 512);
    assert!(!p.redis);
    assert_eq!(p.redis_auth, None);
    assert_eq!(p.redis_db, 0);
    assert!(!p.preconnect);
    assert!(!p.auto_eject_hosts);
    assert_eq!(p.server_connections, 1);
    assert_eq!(p.server_retry_timeout_ms, 30_000);
    assert_eq!(p.server_failure_limit, 2);
    assert!(!p.tcpkeepalive);
    assert!(p.sentinels.is_empty());
}

#[test]
fn every_directive() {
    let config = ok(&pool(
        "  hash: murmur\n  hash_tag: \"{}\"\n  distribution: modula\n  timeout: 400\n  \
         backlog: 1024\n  client_connections: 10\n  redis: true\n  tcpkeepalive: true\n  \
         redis_auth: s3cret\n  redis_db: 3\n  preconnect: true\n  auto_eject_hosts: true\n  \
         server_connections: 4\n  server_retry_timeout: 2000\n  server_failure_limit: 0\n",
    ));
    let p = &config.pools[0];
    assert_eq!(p.hash, HashKind::Murmur);
    assert_eq!(p.hash_tag, HashTag::new(b"{}"));
    assert_eq!(p.distribution, Distribution::Modula);
    assert_eq!(p.timeout_ms, Some(400));
    assert_eq!(p.backlog, 1024);
    assert!(p.redis && p.tcpkeepalive && p.preconnect && p.auto_eject_hosts);
    assert_eq!(p.redis_auth.as_ref().map(Password::expose), Some("s3cret"));
    assert_eq!(p.redis_db, 3);
    assert_eq!(p.server_connections, 4);
    assert_eq!(p.server_retry_timeout_ms, 2000);
    assert_eq!(p.server_failure_limit, 0);
}

#[test]
fn every_hash_and_distribution_name() {
    for kind in HashKind::ALL {
        let config = ok(&pool(&format!("  hash: {}\n", kind.name())));
        assert_eq!(config.pools[0].hash, kind);
    }
    for kind in Distribution::ALL {
        let config = ok(&pool(&format!("  distribution: {}\n", kind.name())));
        assert_eq!(config.pools[0].distribution, kind);
    }
}

#[test]
fn timeout_zero_means_none() {
    assert_eq!(ok(&pool("  timeout: 0\n")).pools[0].timeout_ms, None);
}

#[test]
fn numbers_wrap_like_nc_atoi() {
    let p = &ok(&pool(
        "  backlog: 4294967297\n  client_connections: 4294967297\n",
    ))
    .pools[0];
    assert_eq!(p.backlog, 1);
    let error = err(&pool("  backlog: 2147483648\n"));
    assert!(matches!(
        error.kind,
        ConfigErrorKind::NumberOutOfRange { .. }
    ));
    assert_eq!(at(&error), (3, 12));
    assert_eq!(error.directive.as_deref(), Some("backlog"));
}

#[test]
fn numbers_are_digits_only() {
    for bad in ["-1", "+1", "400ms", "1.5", "0x10", "\"\"", "' 1'"] {
        let error = err(&pool(&format!("  timeout: {bad}\n")));
        assert!(
            matches!(
                error.kind,
                ConfigErrorKind::NotANumber { .. } | ConfigErrorKind::EmptyValue { .. }
            ),
            "{bad}: {error}"
        );
        assert_eq!(error.directive.as_deref(), Some("timeout"));
    }
    for name in [
        "backlog",
        "client_connections",
        "redis_db",
        "server_connections",
        "server_retry_timeout",
        "server_failure_limit",
    ] {
        let error = err(&pool(&format!("  {name}: x\n")));
        assert!(
            matches!(error.kind, ConfigErrorKind::NotANumber { .. }),
            "{name}"
        );
    }
}

#[test]
fn booleans_are_exactly_true_or_false() {
    for name in ["redis", "tcpkeepalive", "preconnect", "auto_eject_hosts"] {
        for bad in ["True", "yes", "on", "1", "TRUE", "false "] {
            let quoted = format!("  {name}: \"{bad}\"\n");
            let error = err(&pool(&quoted));
            assert!(
                matches!(error.kind, ConfigErrorKind::NotABool { .. }),
                "{name}: {bad}"
            );
        }
        ok(&pool(&format!("  {name}: false\n")));
        ok(&pool(&format!("  {name}: \"true\"\n")));
    }
}

#[test]
fn hash_and_distribution_names_are_exact() {
    let error = err(&pool("  hash: FNV1A_64\n"));
    assert!(matches!(error.kind, ConfigErrorKind::InvalidHash { .. }));
    assert!(error.to_string().contains("one_at_a_time, md5"));
    let error = err(&pool("  distribution: ketamma\n"));
    assert_eq!(
        error.to_string(),
        "conf/test.yml:3:17: directive \"distribution\" has the value \"ketamma\", which is not \
         a valid distribution; expected one of ketama, modula, random"
    );
}

#[test]
fn hash_tag_is_two_bytes() {
    assert_eq!(
        ok(&pool("  hash_tag: \"$$\"\n")).pools[0].hash_tag,
        HashTag::new(b"$$")
    );
    assert_eq!(
        ok(&pool("  hash_tag: é\n")).pools[0].hash_tag,
        HashTag::new("é".as_bytes())
    );
    for bad in ["\"{\"", "\"{}}\"", "ab c"] {
        let error = err(&pool(&format!("  hash_tag: {bad}\n")));
        assert!(
            matches!(error.kind, ConfigErrorKind::InvalidHashTag { .. }),
            "{bad}"
        );
    }
}

#[test]
fn redis_auth_needs_a_redis_pool() {
    for extra in ["  redis_auth: pw\n", "  redis: false\n  redis_auth: pw\n"] {
        let error = err(&pool(extra));
        assert!(matches!(
            error.kind,
            ConfigErrorKind::RedisAuthWithoutRedis { .. }
        ));
        assert_eq!(error.directive.as_deref(), Some("redis_auth"));
    }
    let config = ok(&pool("  redis_auth: pw\n  redis: true\n"));
    assert_eq!(
        config.pools[0].redis_auth.as_ref().map(Password::expose),
        Some("pw")
    );
}

#[test]
fn server_connections_cannot_be_zero() {
    let error = err(&pool("  server_connections: 0\n"));
    assert_eq!(error.kind, ConfigErrorKind::ZeroServerConnections);
    assert_eq!(at(&error), (3, 23));
}

#[test]
fn every_directive_once_per_pool() {
    for (name, value) in [
        ("listen", "127.0.0.1:22122"),
        ("hash", "md5"),
        ("hash_tag", "\"{}\""),
        ("distribution", "random"),
        ("timeout", "1"),
        ("backlog", "1"),
        ("client_connections", "1"),
        ("redis", "true"),
        ("tcpkeepalive", "true"),
        ("redis_auth", "pw"),
        ("redis_db", "1"),
        ("preconnect", "true"),
        ("auto_eject_hosts", "true"),
        ("server_connections", "1"),
        ("server_retry_timeout", "1"),
        ("server_failure_limit", "1"),
    ] {
        let error = err(&pool(&format!("  {name}: {value}\n  {name}: {value}\n")));
        assert!(
            matches!(error.kind, ConfigErrorKind::Duplicate { .. }),
            "{name}: {error}"
        );
        assert_eq!(error.directive.as_deref(), Some(name));
    }
    // A duplicate is refused before its value is read, as nutcracker does.
    let error = err(&pool("  timeout: 1\n  timeout: x\n"));
    assert!(matches!(
        error.kind,
        ConfigErrorKind::Duplicate { first_line: 3, .. }
    ));
}

#[test]
fn unknown_directives() {
    let error = err(&pool("  reuseport: true\n"));
    assert!(matches!(
        error.kind,
        ConfigErrorKind::UnknownDirective { .. }
    ));
    assert_eq!(error.directive.as_deref(), Some("reuseport"));
    assert!(
        error
            .to_string()
            .contains("nutcracker 0.5.0 has no \"reuseport\"")
    );
    let error = err(&pool("  hash_tags: \"{}\"\n"));
    assert!(error.to_string().contains("did you mean \"hash_tag\"?"));
    let error = err(&pool("  Listen: x\n"));
    assert!(error.to_string().contains("did you mean \"listen\"?"));
    let error = err(&pool("  name: shard\n"));
    assert!(error.to_string().contains("expected one of listen, hash"));
}

#[test]
fn any_directive_may_be_the_pools_one_list() {
    let config = ok(
        "p:\n  listen: 127.0.0.1:22121\n  servers: 127.0.0.1:6379:1\n  servers: 127.0.0.1:6380:1\n  \
         hash:\n   - crc32a\n",
    );
    assert_eq!(config.pools[0].hash, HashKind::Crc32a);
    assert_eq!(config.pools[0].servers.len(), 2);
    let config = ok("p:\n  listen:\n   - 127.0.0.1:22121\n  servers: 127.0.0.1:6379:1\n");
    assert_eq!(config.pools[0].listen_line, 3);
    let error =
        err("p:\n  listen:\n   - 127.0.0.1:22121\n   - 127.0.0.1:22122\n  servers: a:1:1\n");
    assert!(matches!(error.kind, ConfigErrorKind::Duplicate { .. }));
}

// ---------------------------------------------------------------- servers and node names

#[test]
fn node_names() {
    let config = ok(&with_servers(&[
        "127.0.0.1:6379:1",
        "127.0.0.1:6380:1 named",
        "127.0.0.1:11211:1",
        "127.0.0.1:06381:1",
        "/tmp/r.sock:1",
        "/tmp/s.sock:1 sock",
    ]));
    let mut names: Vec<&str> = config.pools[0]
        .servers
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "/tmp/r.sock:",
            "127.0.0.1",
            "127.0.0.1:06381",
            "127.0.0.1:6379",
            "named",
            "sock"
        ]
    );
}

#[test]
fn ipv6_server_hosts() {
    let config = ok(&with_servers(&["::1:6379:1", "fe80::1:2:6380:3 v6"]));
    let servers = &config.pools[0].servers;
    assert_eq!(servers[0].name, "v6");
    assert_eq!(
        servers[0].address,
        ServerAddress::Tcp {
            host: "fe80::1:2".into(),
            port: 6380
        }
    );
    assert_eq!(servers[0].weight, 3);
    assert_eq!(servers[1].name, "::1:6379");
    assert_eq!(
        servers[1].address,
        ServerAddress::Tcp {
            host: "::1".into(),
            port: 6379
        }
    );
}

#[test]
fn unix_socket_servers() {
    let config = ok(&with_servers(&["/var/run/redis.sock:2", "/tmp/b.sock:1 b"]));
    let servers = &config.pools[0].servers;
    assert_eq!(servers[0].name, "b");
    assert_eq!(servers[1].name, "/var/run/redis.sock:");
    assert_eq!(
        servers[1].address,
        ServerAddress::Unix {
            path: "/var/run/redis.sock".into()
        }
    );
    assert_eq!(servers[1].weight, 2);
    let error = err(&with_servers(&["/tmp/a:b:1"]));
    assert!(matches!(error.kind, ConfigErrorKind::ServerFormat { .. }));
}

#[test]
fn server_entry_errors() {
    let cases: [(&str, Expect); 8] = [
        ("127.0.0.1:6379", |k| {
            matches!(k, ConfigErrorKind::ServerFormat { .. })
        }),
        ("localhost", |k| {
            matches!(k, ConfigErrorKind::ServerFormat { .. })
        }),
        ("127.0.0.1:6379:0", |k| {
            matches!(k, ConfigErrorKind::ServerZeroWeight { .. })
        }),
        ("127.0.0.1:6379:x", |k| {
            matches!(k, ConfigErrorKind::ServerWeight { .. })
        }),
        ("127.0.0.1:6379:1 two words", |k| {
            matches!(k, ConfigErrorKind::ServerWeight { .. })
        }),
        ("127.0.0.1:0:1", |k| {
            matches!(k, ConfigErrorKind::ServerPort { .. })
        }),
        ("127.0.0.1:65536:1", |k| {
            matches!(k, ConfigErrorKind::ServerPort { .. })
        }),
        ("127.0.0.1:http:1", |k| {
            matches!(k, ConfigErrorKind::ServerPort { .. })
        }),
    ];
    for (entry, expected) in cases {
        let error = err(&with_servers(&["127.0.0.1:7000:1", entry]));
        assert!(expected(&error.kind), "{entry}: {error}");
        assert_eq!(at(&error), (5, 6), "{entry}");
        assert_eq!(error.directive.as_deref(), Some("servers"));
    }
}

#[test]
fn duplicate_node_names() {
    let error = err(&with_servers(&[
        "127.0.0.1:6379:1",
        "127.0.0.1:6380:1",
        "127.0.0.1:6379:2",
    ]));
    assert_eq!(
        error.kind,
        ConfigErrorKind::DuplicateServerName {
            name: "127.0.0.1:6379".into(),
            other_line: 4,
        }
    );
    assert_eq!(at(&error), (6, 6));
    let error = err(&with_servers(&["127.0.0.1:6379:1 a", "127.0.0.1:6380:1 a"]));
    assert!(matches!(
        error.kind,
        ConfigErrorKind::DuplicateServerName { .. }
    ));
    // Same address under two names is fine.
    ok(&with_servers(&["127.0.0.1:6379:1 a", "127.0.0.1:6379:1 b"]));
}

#[test]
fn servers_are_sorted_by_name_length_then_bytes() {
    let config = ok(&with_servers(&[
        "10.0.0.3:6379:1",
        "10.0.0.1:6379:1",
        "127.0.0.1:6379:1 bb",
        "127.0.0.1:6380:1 a",
        "10.0.0.2:6379:1",
        "127.0.0.1:6381:1 ab",
    ]));
    let order: Vec<(&str, usize, usize)> = config.pools[0]
        .servers
        .iter()
        .map(|s| (s.name.as_str(), s.config_index, s.line))
        .collect();
    assert_eq!(
        order,
        [
            ("a", 3, 7),
            ("ab", 5, 9),
            ("bb", 2, 6),
            ("10.0.0.1:6379", 1, 5),
            ("10.0.0.2:6379", 4, 8),
            ("10.0.0.3:6379", 0, 4),
        ]
    );
}

#[test]
fn placement_uses_the_sorted_servers() {
    let config = ok(&with_servers(&[
        "127.0.0.1:6380:2 zz",
        "127.0.0.1:6379:1 a",
    ]));
    let placement = config.pools[0].placement();
    let nodes: Vec<(&[u8], u32)> = placement
        .nodes()
        .iter()
        .map(|node| (node.name.as_slice(), node.weight))
        .collect();
    assert_eq!(nodes, [(&b"a"[..], 1), (&b"zz"[..], 2)]);
}

// ---------------------------------------------------------------- listen

#[test]
fn listen_forms() {
    let listen = |value: &str| {
        ok(&format!("p:\n  listen: {value}\n  servers:\n   - a:1:1\n")).pools[0]
            .listen
            .clone()
    };
    assert_eq!(
        listen("::1:22121"),
        Listen::Tcp {
            host: "::1".into(),
            port: 22121
        }
    );
    assert_eq!(
        listen("localhost:1"),
        Listen::Tcp {
            host: "localhost".into(),
            port: 1
        }
    );
    assert_eq!(
        listen("/tmp/r.sock 0770"),
        Listen::Unix {
            path: "/tmp/r.sock".into(),
            permissions: Some(0o770)
        }
    );
    assert_eq!(
        listen("/tmp/r.sock"),
        Listen::Unix {
            path: "/tmp/r.sock".into(),
            permissions: None
        }
    );
    assert_eq!(
        listen("/tmp/r.sock 999"),
        Listen::Unix {
            path: "/tmp/r.sock".into(),
            permissions: None
        }
    );
}

#[test]
fn listen_errors() {
    let error = |value: &str| err(&format!("p:\n  listen: {value}\n  servers:\n   - a:1:1\n"));
    assert!(matches!(
        error("127.0.0.1").kind,
        ConfigErrorKind::ListenNoPort { .. }
    ));
    assert!(matches!(
        error("127.0.0.1:0").kind,
        ConfigErrorKind::ListenInvalidPort { .. }
    ));
    assert!(matches!(
        error("127.0.0.1:65536").kind,
        ConfigErrorKind::ListenInvalidPort { .. }
    ));
    assert!(matches!(
        error("\"[::1]:22121\"").kind,
        ConfigErrorKind::ListenBracketedHost { .. }
    ));
    assert!(matches!(
        error("/tmp/r.sock 01000").kind,
        ConfigErrorKind::ListenPermission { .. }
    ));
    let long = format!("/tmp/{}", "x".repeat(103));
    assert_eq!(
        error(&long).kind,
        ConfigErrorKind::ListenPathTooLong { len: 108 }
    );
    let missing = err("p:\n  servers:\n   - a:1:1\n");
    assert!(matches!(
        missing.kind,
        ConfigErrorKind::MissingListen { .. }
    ));
    assert_eq!(at(&missing), (1, 1));
}

// ---------------------------------------------------------------- file-wide checks and order

#[test]
fn pools_are_sorted_by_name_length_then_bytes() {
    let source: String = ["us", "knw", "rnd", "b", "a"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            format!(
                "{name}:\n  listen: 127.0.0.1:{}\n  servers:\n   - a:1:1\n",
                22000 + i
            )
        })
        .collect();
    let config = ok(&source);
    let names: Vec<(&str, usize)> = config
        .pools
        .iter()
        .map(|p| (p.name.as_str(), p.line))
        .collect();
    assert_eq!(
        names,
        [("a", 17), ("b", 13), ("us", 1), ("knw", 5), ("rnd", 9)]
    );
}

#[test]
fn duplicate_pools_and_listen_addresses() {
    let p = "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - a:1:1\n";
    let q_same_listen = "q:\n  listen: 127.0.0.1:22121\n  servers:\n   - a:1:1\n";
    let p_again = "p:\n  listen: 127.0.0.1:22122\n  servers:\n   - a:1:1\n";
    let error = err(&format!("{p}{q_same_listen}"));
    assert!(matches!(
        error.kind,
        ConfigErrorKind::DuplicateListen { ref other_pool, other_line: 2, .. } if other_pool == "p"
    ));
    assert_eq!(at(&error), (6, 11));
    let error = err(&format!("{p}{p_again}"));
    assert_eq!(
        error.kind,
        ConfigErrorKind::DuplicatePool {
            pool: "p".into(),
            first_line: 1
        }
    );
    assert_eq!(at(&error), (5, 1));
    // The listen check compares strings: the same address spelled differently passes.
    ok(&format!(
        "{p}q:\n  listen: 127.0.0.1:022121\n  servers:\n   - a:1:1\n"
    ));
}

// ---------------------------------------------------------------- YAML structure

#[test]
fn seed_config_with_outdented_directives() {
    let source = "nutcrakerB:\n  listen: 127.0.0.1:63790\nhash: one_at_a_time\n  hash_tag: \"{}\"\n  \
                  distribution: modula\ntimeout: 400\n  servers:\n   - 127.0.0.1:6379:1\n";
    let error = err(source);
    assert_eq!(at(&error), (3, 1));
    assert_eq!(error.directive.as_deref(), Some("hash"));
    assert_eq!(
        error.to_string(),
        "conf/test.yml:3:1: directive \"hash\" is not indented, so it is outside any pool: \
         indent it under the pool \"nutcrakerB\" like that pool's other directives"
    );
}

#[test]
fn outdented_directives_elsewhere() {
    let error = err(&format!("{}timeout: 400\n", pool("")));
    assert_eq!(
        (at(&error), error.directive.as_deref()),
        ((5, 1), Some("timeout"))
    );
    let error = err("p:\nlisten: 127.0.0.1:1\n  servers:\n   - a:1:1\n");
    assert_eq!(
        (at(&error), error.directive.as_deref()),
        ((2, 1), Some("listen"))
    );
    let error = err("listen: 127.0.0.1:1\nservers:\n - a:1:1\n");
    assert!(matches!(
        error.kind,
        ConfigErrorKind::Outdented { pool: None, .. }
    ));
    // A pool may be named like a directive.
    ok("redis:\n  listen: 127.0.0.1:1\n  servers:\n   - a:1:1\n");
}

#[test]
fn deeper_indentation_continues_a_value() {
    let error = err("p:\n  listen: 127.0.0.1:1\n   hash: md5\n  servers:\n   - a:1:1\n");
    assert!(matches!(
        error.kind,
        ConfigErrorKind::ContinuedValue { line: 2, .. }
    ));
    assert_eq!(at(&error), (3, 4));
}

#[test]
fn structure_errors() {
    let cases: [(&str, (usize, usize), Expect); 14] = [
        ("", (1, 1), |k| matches!(k, ConfigErrorKind::NoDocument)),
        ("# only a comment\n", (1, 1), |k| {
            matches!(k, ConfigErrorKind::NoDocument)
        }),
        ("just text\n", (1, 1), |k| {
            matches!(k, ConfigErrorKind::RootNotMapping { .. })
        }),
        ("- a\n", (1, 1), |k| {
            matches!(k, ConfigErrorKind::RootNotMapping { .. })
        }),
        ("p: x\n", (1, 1), |k| {
            matches!(k, ConfigErrorKind::PoolNotMapping { .. })
        }),
        ("p:\n - x\n", (1, 1), |k| {
            matches!(k, ConfigErrorKind::PoolNotMapping { .. })
        }),
        ("p:\nq:\n", (1, 1), |k| {
            matches!(k, ConfigErrorKind::PoolNotMapping { .. })
        }),
        ("p:\n  listen: 127.0.0.1:1\n", (1, 1), |k| {
            matches!(k, ConfigErrorKind::MissingList { .. })
        }),
        ("p:\n  listen:\n    host: x\n", (3, 5), |k| {
            matches!(k, ConfigErrorKind::NestedMapping { .. })
        }),
        ("p:\n  servers:\n   - host: x\n", (3, 6), |k| {
            matches!(k, ConfigErrorKind::NestedInList { .. })
        }),
        ("p:\n  servers:\n   - - a:1:1\n", (3, 6), |k| {
            matches!(k, ConfigErrorKind::NestedInList { .. })
        }),
        (
            "p:\n  hash:\n   - md5\n  servers:\n   - a:1:1\n",
            (4, 3),
            |k| matches!(k, ConfigErrorKind::SecondList { first_line: 2, .. }),
        ),
        ("\"\":\n  listen: 127.0.0.1:1\n", (1, 1), |k| {
            matches!(k, ConfigErrorKind::EmptyPoolName)
        }),
        ("p:\n  \"\": x\n", (2, 3), |k| {
            matches!(k, ConfigErrorKind::EmptyDirectiveName)
        }),
    ];
    for (source, position, expected) in cases {
        let error = err(source);
        assert!(expected(&error.kind), "{source:?}: {error}");
        assert_eq!(at(&error), position, "{source:?}: {error}");
    }
}

#[test]
fn empty_values() {
    for extra in ["  redis_auth: \"\"\n", "  timeout:\n", "  hash: ''\n"] {
        let error = err(&pool(extra));
        assert!(
            matches!(error.kind, ConfigErrorKind::EmptyValue { .. }),
            "{extra}"
        );
    }
    let error = err("p:\n  listen: 127.0.0.1:1\n  servers:\n   - \"\"\n");
    assert!(matches!(error.kind, ConfigErrorKind::EmptyValue { .. }));
    assert!(
        error
            .to_string()
            .contains("expected \"host:port:weight [name]\"")
    );
}

#[test]
fn yaml_features_nutcracker_refuses() {
    let cases: [(&str, (usize, usize), Expect); 9] = [
        ("---\np: x\n", (1, 1), |k| {
            matches!(k, ConfigErrorKind::DocumentMarker { marker: "---" })
        }),
        (
            "p:\n  listen: 127.0.0.1:1\n  servers:\n   - a:1:1\n...\n",
            (5, 1),
            |k| matches!(k, ConfigErrorKind::DocumentMarker { marker: "..." }),
        ),
        ("...\np: x\n", (1, 1), |k| {
            matches!(k, ConfigErrorKind::DocumentMarker { marker: "..." })
        }),
        ("%YAML 1.1\n---\np: x\n", (1, 1), |k| {
            matches!(k, ConfigErrorKind::YamlDirective { .. })
        }),
        ("p:\n  servers: [a:1:1]\n", (2, 12), |k| {
            matches!(k, ConfigErrorKind::FlowSequence)
        }),
        ("p:\n  hash_tag: {}\n", (2, 13), |k| {
            matches!(k, ConfigErrorKind::FlowMapping)
        }),
        (
            "p: &a\n  listen: x\n",
            (1, 4),
            |k| matches!(k, ConfigErrorKind::Anchor { text } if text == "&a"),
        ),
        (
            "p:\n  listen: !!str x\n",
            (2, 11),
            |k| matches!(k, ConfigErrorKind::Tag { text } if text == "!!str"),
        ),
        ("p:\n  listen: *a\n", (2, 11), |k| {
            matches!(
                k,
                ConfigErrorKind::Alias { .. } | ConfigErrorKind::Yaml { .. }
            )
        }),
    ];
    for (source, position, expected) in cases {
        let error = err(source);
        assert!(expected(&error.kind), "{source:?}: {error}");
        assert_eq!(at(&error), position, "{source:?}: {error}");
    }
}

#[test]
fn tabs_follow_libyaml() {
    ok("p:\n  listen:\t127.0.0.1:1\t# comment\n  servers:\t\n   - a:1:1\t\n");
    for source in [
        "p:\n\tlisten: 127.0.0.1:1\n  servers:\n   - a:1:1\n",
        "p:\n  listen: 127.0.0.1:1\n  servers:\n   -\ta:1:1\n",
        "p:\n  listen: 127.0.0.1:1\n  servers:\n   - a:1:1\n\t\n",
    ] {
        assert_eq!(
            err(source).kind,
            ConfigErrorKind::MisplacedTab,
            "{source:?}"
        );
    }
}

#[test]
fn quoting_comments_and_line_breaks() {
    let config = ok(
        "\u{FEFF}'p':   # pool\r\n  \"listen\": \"127.0.0.1:1\"#glued\r\n  redis: 'true'\r\n  servers:\r\n   - 'a:1:1 x'\r\n",
    );
    assert!(config.pools[0].redis);
    assert_eq!(config.pools[0].servers[0].name, "x");
    let error = err("p:\n  hash: 'md5'#c\n  timeout: x\n");
    assert_eq!(at(&error), (3, 12));
    let error = err("p:\n  listen: 127.0.0.1:1 \u{7}\n");
    assert_eq!(error.kind, ConfigErrorKind::ControlCharacter { code: 7 });
    let error = err(&pool("  redis: true\n  redis_auth: \"a\\0b\"\n"));
    assert_eq!(error.kind, ConfigErrorKind::NulCharacter);
    assert_eq!(
        (at(&error), error.directive.as_deref()),
        ((4, 15), Some("redis_auth"))
    );
}

// ---------------------------------------------------------------- rampart's sentinels

#[test]
fn sentinels_extension() {
    let config = ok(
        "p:\n  listen: 127.0.0.1:1\n  sentinels:\n   - 127.0.0.1:26379\n   - \"[::1]:26380\"\n  \
         servers:\n   - a:1:1\n",
    );
    assert_eq!(
        config.pools[0].sentinels,
        [
            SentinelAddr {
                host: "127.0.0.1".into(),
                port: 26379,
                line: 4
            },
            SentinelAddr {
                host: "::1".into(),
                port: 26380,
                line: 5
            },
        ]
    );
    // Sentinels do not count as the pool's one nutcracker list.
    let error = err("p:\n  listen: 127.0.0.1:1\n  sentinels:\n   - h:1\n");
    assert!(matches!(error.kind, ConfigErrorKind::MissingList { .. }));
}

#[test]
fn sentinels_errors() {
    let with = |list: &str| format!("p:\n  listen: 127.0.0.1:1\n  servers:\n   - a:1:1\n{list}");
    let error = err(&with("  sentinels: 127.0.0.1:26379\n"));
    assert!(matches!(error.kind, ConfigErrorKind::NotAList { .. }));
    let error = err(&with("  sentinels:\n"));
    assert!(matches!(error.kind, ConfigErrorKind::NotAList { .. }));
    let error = err(&with("  sentinels:\n   - h:0\n"));
    assert!(matches!(error.kind, ConfigErrorKind::SentinelFormat { .. }));
    assert_eq!(at(&error), (6, 6));
    let error = err(&with("  sentinels:\n   - h:1\n   - h:1\n"));
    assert_eq!(
        error.kind,
        ConfigErrorKind::DuplicateSentinel {
            value: "h:1".into(),
            first_line: 6
        }
    );
    let error = err(&with("  sentinels:\n   - h:1\n  sentinels:\n   - h:2\n"));
    assert!(matches!(
        error.kind,
        ConfigErrorKind::Duplicate { first_line: 5, .. }
    ));
    let error = err(&with("  sentinels:\n   - - h:1\n"));
    assert!(matches!(error.kind, ConfigErrorKind::NestedInList { .. }));
}

#[test]
fn failover_wait_ms_extension() {
    let sentinel_pool = |extra: &str| {
        format!(
            "p:\n  listen: 127.0.0.1:1\n{extra}  sentinels:\n   - 127.0.0.1:26379\n  servers:\n   - a:1:1\n"
        )
    };
    assert_eq!(ok(&sentinel_pool("")).pools[0].failover_wait_ms, 30_000);
    let config = ok(&sentinel_pool("  failover_wait_ms: 4000\n"));
    assert_eq!(config.pools[0].failover_wait_ms, 4000);
    let error = err(&sentinel_pool("  failover_wait_ms: soon\n"));
    assert!(
        matches!(error.kind, ConfigErrorKind::NotANumber { .. }),
        "{error}"
    );
    let error =
        err("p:\n  listen: 127.0.0.1:1\n  failover_wait_ms: 4000\n  servers:\n   - a:1:1\n");
    assert_eq!(
        error.kind,
        ConfigErrorKind::FailoverWaitWithoutSentinels { pool: "p".into() }
    );
    assert_eq!(at(&error).0, 3);
}

#[test]
fn replica_reads_extension() {
    let with_sentinels = |extra: &str| {
        format!(
            "p:\n  listen: 127.0.0.1:1\n{extra}  sentinels:\n   - 127.0.0.1:26379\n  servers:\n   - a:1:1\n"
        )
    };
    assert!(!ok(&with_sentinels("")).pools[0].replica_reads);
    assert!(ok(&with_sentinels("  replica_reads: true\n")).pools[0].replica_reads);
    let error = err(&with_sentinels("  replica_reads: yes\n"));
    assert!(
        matches!(error.kind, ConfigErrorKind::NotABool { .. }),
        "{error}"
    );
    let error = err("p:\n  listen: 127.0.0.1:1\n  replica_reads: true\n  servers:\n   - a:1:1\n");
    assert_eq!(
        error.kind,
        ConfigErrorKind::ReplicaReadsWithoutSentinels { pool: "p".into() }
    );
}

#[test]
fn migrate_extension() {
    let with = |extra: &str| {
        format!("p:\n  listen: 127.0.0.1:1\n  redis: true\n{extra}  servers:\n   - a:1:1\n")
    };
    let pool = &ok(&with("")).pools[0];
    assert_eq!((pool.migrate, pool.migrate_rate), (false, 10_000));
    let pool = &ok(&with("  migrate: true\n  migrate_rate: 500\n")).pools[0];
    assert_eq!((pool.migrate, pool.migrate_rate), (true, 500));
    let error = err(&with("  migrate: true\n  distribution: random\n"));
    assert!(
        matches!(&error.kind, ConfigErrorKind::MigrateUnsupported { reason, .. } if reason.contains("random")),
        "{error}"
    );
    assert_eq!(at(&error).0, 4, "the line of `migrate:`");
    let error = err(&with("  auto_eject_hosts: true\n  migrate: true\n"));
    assert!(error.to_string().contains("auto_eject_hosts"), "{error}");
    let error = err(
        "p:\n  listen: 127.0.0.1:1\n  redis: true\n  migrate: true\n  servers:\n   - /tmp/r.sock:1\n",
    );
    assert!(error.to_string().contains("unix socket"), "{error}");
    let error = err(&with("  migrate_rate: 0\n"));
    assert_eq!(error.kind, ConfigErrorKind::ZeroMigrateRate);
    assert!(
        ok(&with("  distribution: random\n  migrate: false\n")).pools[0]
            .cannot_migrate()
            .is_some()
    );
}

#[test]
fn client_limits_have_safe_defaults() {
    let limits = ok(&pool("")).pools[0].limits;
    assert_eq!(limits, ClientLimits::default());
    assert_eq!(
        limits.max_clients, None,
        "unlimited, as nutcracker documents"
    );
    assert_eq!(
        limits.max_request_bytes,
        512 * 1024 * 1024,
        "proto-max-bulk-len"
    );
    assert_eq!(limits.max_request_args, 1024 * 1024);
    assert_eq!(limits.max_pipeline, 4096);
    assert_eq!(limits.output_limit, Some(1024 * 1024 * 1024));
    assert_eq!(limits.idle_timeout_seconds, None, "as Redis's timeout 0");
}

#[test]
fn client_limits_are_read_with_redis_sizes() {
    let config = ok(&pool(concat!(
        "  client_connections: 100\n",
        "  client_max_request_bytes: 1mb\n",
        "  client_max_request_args: 64\n",
        "  client_max_pipeline: 16\n",
        "  client_max_pending_bytes: 64kb\n",
        "  client_output_limit: 8m\n",
        "  client_output_soft_limit: 0\n",
        "  client_output_soft_seconds: 5\n",
        "  client_idle_timeout: 300\n",
    )));
    let limits = config.pools[0].limits;
    assert_eq!(limits.max_clients, Some(100));
    assert_eq!(limits.max_request_bytes, 1024 * 1024);
    assert_eq!(limits.max_request_args, 64);
    assert_eq!(limits.max_pipeline, 16);
    assert_eq!(limits.max_pending_bytes, 64 * 1024);
    assert_eq!(limits.output_limit, Some(8_000_000));
    assert_eq!(limits.output_soft_limit, None, "0 turns it off");
    assert_eq!(limits.output_soft_seconds, 5);
    assert_eq!(limits.idle_timeout_seconds, Some(300));
    let unlimited = ok(&pool(
        "  client_connections: 0
  client_output_limit: 0
",
    ));
    assert_eq!(unlimited.pools[0].limits.max_clients, None);
    assert_eq!(unlimited.pools[0].limits.output_limit, None);
    let low_hard = ok(&pool("  client_output_limit: 1mb\n")).pools[0].limits;
    assert_eq!(
        low_hard.output_soft_limit,
        Some(1024 * 1024),
        "an unset soft limit never exceeds the hard one"
    );
}

#[test]
fn client_limit_errors_name_the_directive_and_line() {
    let error = err(&pool(
        "  client_max_request_bytes: 12 mb
",
    ));
    assert!(
        matches!(error.kind, ConfigErrorKind::NotASize { .. }),
        "{error}"
    );
    assert_eq!(error.directive.as_deref(), Some("client_max_request_bytes"));
    assert!(
        error.to_string().starts_with(
            "conf/test.yml:3:29: directive \"client_max_request_bytes\" has the value \"12 mb\""
        ),
        "{error}"
    );
    let error = err(&pool(
        "  client_max_pipeline: 0
",
    ));
    assert_eq!(
        error.kind,
        ConfigErrorKind::ZeroLimit {
            directive: "client_max_pipeline".into()
        }
    );
    assert_eq!(at(&error).0, 3);
    let error = err(&pool(
        "  client_output_limit: 1mb
  client_output_soft_limit: 2mb
",
    ));
    assert!(
        matches!(error.kind, ConfigErrorKind::SoftLimitAboveHardLimit { .. }),
        "{error}"
    );
    assert_eq!(at(&error).0, 4);
    let error = err(&pool(
        "  client_idle_timeout: -1
",
    ));
    assert!(
        matches!(error.kind, ConfigErrorKind::NotANumber { .. }),
        "{error}"
    );
}

// ---------------------------------------------------------------- errors and files

#[test]
fn error_display_names_file_line_and_column() {
    let error = err(&pool("  timeout: soon\n"));
    assert_eq!(error.file, PathBuf::from(FILE));
    assert_eq!(error.directive.as_deref(), Some("timeout"));
    assert!(
        error
            .to_string()
            .starts_with("conf/test.yml:3:12: directive \"timeout\"")
    );
}

#[test]
fn load_reads_files_and_reports_unreadable_ones() {
    let missing = Path::new("/nonexistent/rampart/nutcracker.yml");
    let error = load(missing).unwrap_err();
    assert!(matches!(error.kind, ConfigErrorKind::Unreadable { .. }));
    let text = error.to_string();
    assert!(
        text.starts_with("/nonexistent/rampart/nutcracker.yml: cannot read"),
        "{text}"
    );
    assert!(text.contains("No such file or directory"), "{text}");

    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/accept/a02_readme_pools.yml");
    let config = load(&path).unwrap();
    assert_eq!(config.file, path);
    let names: Vec<&str> = config.pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["beta", "alpha", "delta", "gamma"]);
}
