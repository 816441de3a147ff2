//! Backends failing under the proxy, against real redis-servers: one killed in the middle of
//! a pipeline, one that is down, asleep past the pool's timeout, busy with a script, closing
//! idle connections or restarted; and auto-ejection moving keys off a dead server and back.

mod support;

use std::time::{Duration, Instant};

use support::process::{Redis, redis_is_blocked};
use support::random::scrambled;
use support::resp::{Client, Reply, bulk, cmd, error, nil, ok, pong, show};
use support::shards::{Cluster, TRANSPORT_ERRORS, alpha_proxy, keys_by_shard};
use support::stats::{Json, assert_stat, now_micros, pool_counter, servers_sum, stat_reaching};
use support::{free_port, wait_until};

// ---------------------------------------------------------------------------------------------
// A backend killed in the middle of a pipeline.
// ---------------------------------------------------------------------------------------------

/// The value of a GET key in the kill test: 4 KiB, so that replies are often cut mid-way.
fn value_of(key: &str) -> String {
    format!("val-{key}-{}", "v".repeat(4096))
}

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
// Backend failures: refused, timed out, ejected and readmitted.
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
