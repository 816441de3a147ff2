//! Sentinel-aware shard failover, end to end: real redis-server masters and replicas, three
//! real redis-sentinel processes (quorum 2, down-after-milliseconds 1000), rampart in front,
//! and a client doing reads and writes through rampart while a master is killed with -9.
//!
//! What must hold: no read ever returns a wrong value or nil (keys never move to another
//! shard), writes to the failed shard succeed again within down-after + 3 s, at most the one
//! request that was in flight on the dead master fails, every key written before is still
//! there, and one sentinel alone can never move a shard. The last test runs the same kill
//! against nutcracker and prints its numbers for comparison, without asserting them.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::load::{Event, Load, Outcome, Report, offset};
use support::replication::{dbsize, info, node, node_on, replica_of, wait_caught_up};
use support::resp::{Client, Reply, call};
use support::sentinel::{Monitor, RECOVERY_LIMIT, Sentinel, majority_master, wait_sentinels_ready};
use support::sentinel_cluster::{
    Cluster, DATA_KEYS, Options, Routes, SHARD_NAMES, monitors_of, start_nutcracker, start_shards,
    unreadable_data, value_of, wait_replicated, write_data,
};
use support::{tail, wait_until};

/// Prints the summary line, then asserts what every failover must give: zero wrong answers,
/// at most one client error per killed master (the request in flight on it), every data key
/// intact, and each recovery within the limit.
fn verdict(cluster: &Cluster, report: &Report, label: &str, kills: &[(Instant, Duration)]) {
    let origin = kills[0].0;
    let wrong = report.wrong();
    let errors = report.errors();
    let unreadable = unreadable_data(cluster.port, &cluster.routes);
    let recoveries: Vec<String> = kills
        .iter()
        .map(|(_, recovery)| format!("{:.2} s", recovery.as_secs_f64()))
        .collect();
    println!(
        "{label}: recovered in {}, {} client errors out of {} requests, {} wrong answers, \
         {}/{DATA_KEYS} keys intact",
        recoveries.join(" and "),
        errors.len(),
        report.requests(),
        wrong.len(),
        DATA_KEYS - unreadable.len()
    );
    assert!(
        wrong.is_empty(),
        "{label}: {} wrong answers (times from the kill):\n{}\nrampart log:\n{}\n{}",
        wrong.len(),
        Report::describe(&wrong, origin),
        cluster.log_tail(),
        cluster.other_logs()
    );
    assert!(
        unreadable.is_empty(),
        "{label}: {} data keys do not read back: {:?}",
        unreadable.len(),
        &unreadable[..unreadable.len().min(8)]
    );
    assert!(
        errors.len() <= kills.len(),
        "{label}: {} client errors for {} kill(s) (one request at a time, so at most one per \
         kill may have been on the dead master):\n{}\nrampart log:\n{}",
        errors.len(),
        kills.len(),
        Report::describe(&errors, origin),
        cluster.log_tail()
    );
    for (killed_at, recovery) in kills {
        assert!(
            *recovery <= RECOVERY_LIMIT,
            "{label}: writes succeeded again only {recovery:?} after the kill at +{:.3}s \
             (limit {RECOVERY_LIMIT:?})\nrampart log:\n{}",
            offset(*killed_at, origin),
            cluster.log_tail()
        );
    }
}

/// Asserts rampart's `failovers` counters: `expected[shard]` moves per shard.
fn assert_failovers(cluster: &Cluster, expected: &[u64]) {
    for (shard, &count) in expected.iter().enumerate() {
        assert_eq!(
            cluster.sentinel_stat(shard, "failovers"),
            count,
            "rampart's failovers counter for {} (more than one move per failover means it \
             moved the shard back and forth, e.g. back to the old master while some sentinels \
             still named it)\nrampart log:\n{}",
            SHARD_NAMES[shard],
            cluster.log_tail()
        );
    }
}

/// The common scenario: load running, kill -9 of shard A's master, wait until writes to it
/// succeed again, run on for a second, check everything.
fn kill_a_master_under_load(cluster: &mut Cluster, label: &str) {
    let failed = 0;
    let load = Load::start(cluster.port, &cluster.routes);
    let killed_at = cluster.kill_master(failed);
    let recovery = load.wait_recovery(failed, killed_at, || cluster.log_tail());
    load.run_for(Duration::from_secs(1));
    let report = load.stop();
    verdict(cluster, &report, label, &[(killed_at, recovery)]);
    let promoted = cluster.shards[failed].replica.as_ref().unwrap().port;
    wait_until(
        "the sentinels to agree on the promoted replica",
        Duration::from_secs(10),
        || cluster.sentinel_master(failed) == Some(promoted),
    );
    assert_failovers(cluster, &[1, 0]);
}

#[test]
fn kill_9_of_a_master_gives_no_wrong_answer() {
    let mut cluster = Cluster::start(Options::default());
    kill_a_master_under_load(&mut cluster, "failover");
    println!(
        "failover: rampart counted for shardA sdown={} odown={} failovers={}",
        cluster.sentinel_stat(0, "sdown"),
        cluster.sentinel_stat(0, "odown"),
        cluster.sentinel_stat(0, "failovers")
    );
}

#[test]
fn a_restarted_sentinel_is_followed_again() {
    let mut cluster = Cluster::start(Options::default());
    cluster.sentinels[0].restart();
    wait_sentinels_ready(&cluster.sentinels);
    // rampart's event link to the restarted sentinel is back.
    cluster.wait_subscribed();
    kill_a_master_under_load(&mut cluster, "failover after a sentinel restart");
}

#[test]
fn a_minority_of_sentinels_down_does_not_stop_failover() {
    let mut cluster = Cluster::start(Options::default());
    cluster.sentinels[2].kill();
    kill_a_master_under_load(&mut cluster, "failover with 1 of 3 sentinels down");
}

#[test]
fn both_shards_failing_in_turn() {
    let mut cluster = Cluster::start(Options::default());
    let load = Load::start(cluster.port, &cluster.routes);
    let mut kills = Vec::new();
    for shard in 0..2 {
        let killed_at = cluster.kill_master(shard);
        let recovery = load.wait_recovery(shard, killed_at, || cluster.log_tail());
        kills.push((killed_at, recovery));
        load.run_for(Duration::from_secs(1));
    }
    let report = load.stop();
    verdict(&cluster, &report, "two failovers in turn", &kills);
    for shard in 0..2 {
        let promoted = cluster.shards[shard].replica.as_ref().unwrap().port;
        wait_until(
            "the sentinels to agree on the promoted replica",
            Duration::from_secs(10),
            || cluster.sentinel_master(shard) == Some(promoted),
        );
    }
    assert_failovers(&cluster, &[1, 1]);
}

#[test]
fn old_master_rejoins_as_a_replica_and_gets_no_writes() {
    let mut cluster = Cluster::start(Options::default());
    // Sentinel turns a returning old master into a replica 4 publish periods after it sees it
    // as a master; shorten those periods so the test does not wait 8 to 18 s.
    for sentinel in &cluster.sentinels {
        sentinel.debug(&["info-period", "500", "publish-period", "500"]);
    }
    let load = Load::start(cluster.port, &cluster.routes);
    let killed_at = cluster.kill_master(0);
    let recovery = load.wait_recovery(0, killed_at, || cluster.log_tail());
    let new_master = cluster.shards[0].replica.as_ref().unwrap().port;
    let old_port = cluster.shards[0].master.port;
    // Every sentinel must have pinged the new master successfully before the old one comes
    // back: with down-after-milliseconds 1000, Sentinel 7.0 can mark a just-promoted master
    // down about 1 s after the switch (its new link's first PING comes late) and fail over
    // again, to the empty old master if it is back by then.
    wait_until(
        "every sentinel to have a working link to the new master",
        Duration::from_secs(10),
        || {
            cluster
                .sentinels
                .iter()
                .all(|sentinel| sentinel.master_link_healthy("shardA", new_master))
        },
    );

    // The old master comes back, empty, on its old port, as a master.
    let rejoined_at = Instant::now();
    let old = node_on(old_port, &[]);
    let mut as_master = Vec::new();
    let mut master_until = rejoined_at;
    let limit = Instant::now() + Duration::from_secs(30);
    loop {
        let info = info(old_port, &["replication", "keyspace"]);
        match info.get("role").map(String::as_str) {
            Some("master") => {
                master_until = Instant::now();
                as_master.push(info.get("db0").cloned());
            }
            Some("slave")
                if info.get("master_port") == Some(&new_master.to_string())
                    && info.get("master_link_status").map(String::as_str) == Some("up") =>
            {
                break;
            }
            _ => {}
        }
        assert!(
            Instant::now() < limit,
            "the old master was not reconfigured as a synced replica of the new master {}              within 30 s; its INFO replication: {info:?}\nits log:\n{}\n{}\nrampart log:\n{}",
            new_master,
            tail(&old.log(), 20),
            cluster.other_logs(),
            cluster.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let rejoined = Instant::now();
    load.run_for(Duration::from_secs(1));
    let report = load.stop();
    println!(
        "old master rejoin: failover in {:.2} s; old master answered as a master for {:.2} s \
         ({} samples) and was a synced replica {:.2} s after its restart",
        recovery.as_secs_f64(),
        (master_until - rejoined_at).as_secs_f64(),
        as_master.len(),
        (rejoined - rejoined_at).as_secs_f64()
    );

    let with_keys: Vec<&String> = as_master.iter().flatten().collect();
    assert!(
        with_keys.is_empty(),
        "the old master got keys while it claimed to be a master: {with_keys:?}\nrampart log:\n{}",
        cluster.log_tail()
    );
    let errors = report.errors_since(rejoined_at);
    assert!(
        errors.is_empty(),
        "client errors while the old master rejoined:\n{}\nrampart log:\n{}",
        Report::describe(&errors, rejoined_at),
        cluster.log_tail()
    );
    let wrong = report.wrong();
    assert!(
        wrong.is_empty(),
        "wrong answers:\n{}",
        Report::describe(&wrong, killed_at)
    );
    // Every write acknowledged since the restart is on the new master, and replicated from it
    // to the old one.
    let written = report.written_since(0, rejoined_at);
    assert!(!written.is_empty(), "no write to shardA since the restart");
    let new = cluster.shards[0].replica.as_ref().unwrap();
    let missing: Vec<&String> = written
        .iter()
        .filter(|key| new.get(key).as_deref() != Some(value_of(key).as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} writes acknowledged since the old master's restart are not on the new master: \
         {:?}\nrampart log:\n{}",
        missing.len(),
        written.len(),
        &missing[..missing.len().min(8)],
        cluster.log_tail()
    );
    wait_caught_up(new_master, old_port);
    assert_eq!(
        dbsize(old_port),
        dbsize(new_master),
        "the old master is a full replica"
    );
    for key in &written {
        assert_eq!(old.get(key), new.get(key), "{key} on the old master");
    }
    assert_eq!(unreadable_data(cluster.port, &cluster.routes), vec![]);
    assert_failovers(&cluster, &[1, 0]);
}

#[test]
fn no_master_gives_tryagain_after_the_wait() {
    let mut cluster = Cluster::start(Options {
        replicas: vec![false, false],
        failover_wait_ms: 1500,
        ..Options::default()
    });
    let key_on = |shard: usize| {
        cluster
            .routes
            .data
            .iter()
            .find(|(_, on)| *on == shard)
            .map(|(key, _)| key.clone())
            .unwrap()
    };
    let (key_a, key_b) = (key_on(0), key_on(1));

    // Shard B answers throughout, on its own connection.
    let stop = Arc::new(AtomicBool::new(false));
    let other_shard = {
        let (stop, port, key) = (Arc::clone(&stop), cluster.port, key_b.clone());
        std::thread::spawn(move || {
            let mut client = Client::connect(port).unwrap();
            let mut slowest = Duration::ZERO;
            let mut replies = Vec::new();
            while !stop.load(Ordering::Acquire) {
                let started = Instant::now();
                replies.push(client.call(&[b"GET", key.as_bytes()]));
                slowest = slowest.max(started.elapsed());
                std::thread::sleep(Duration::from_millis(20));
            }
            (replies, slowest)
        })
    };

    cluster.kill_master(0);
    let expected =
        Reply::Error("TRYAGAIN shard 'shardA' has no master (failover in progress)".to_string());
    let mut client = Client::connect(cluster.port).unwrap();
    let mut waits = Vec::new();
    for command in [
        vec![&b"SET"[..], key_a.as_bytes(), b"new"],
        vec![&b"GET"[..], key_a.as_bytes()],
    ] {
        let started = Instant::now();
        let reply = client.call(&command);
        let waited = started.elapsed();
        waits.push(waited);
        assert_eq!(
            reply,
            expected,
            "{:?} after {waited:?}\nrampart log:\n{}",
            String::from_utf8_lossy(command[0]),
            cluster.log_tail()
        );
        assert!(
            waited >= Duration::from_millis(1400) && waited <= Duration::from_millis(2500),
            "TRYAGAIN came after {waited:?}, not after about failover_wait_ms (1.5 s)"
        );
    }
    stop.store(true, Ordering::Release);
    let (replies, slowest) = other_shard.join().unwrap();
    println!(
        "no master: TRYAGAIN after {:.2} s and {:.2} s; shardB answered {} GETs meanwhile, \
         slowest in {:.1} ms",
        waits[0].as_secs_f64(),
        waits[1].as_secs_f64(),
        replies.len(),
        slowest.as_secs_f64() * 1000.0
    );
    let value_b = Reply::Bulk(Some(value_of(&key_b).into_bytes()));
    assert!(replies.len() >= 20, "shardB was barely asked: {replies:?}");
    assert!(
        replies.iter().all(|reply| *reply == value_b),
        "shardB gave {replies:?}"
    );
    assert!(
        slowest < Duration::from_millis(500),
        "shardB was held up for {slowest:?} by shardA's missing master"
    );
}

#[test]
fn a_lone_sentinel_cannot_move_a_shard() {
    // Sentinels 1 and 2 watch the real shards. Sentinel 3 watches shardB too, but its shardA
    // is a decoy master (with a replica of its own): a lone sentinel with another idea of
    // where shardA is.
    let shards = start_shards(&[false, false]);
    let decoy = node(&[]);
    let decoy_replica = replica_of(decoy.port);
    let real = monitors_of(&shards);
    let lone = vec![
        Monitor {
            name: "shardA".to_string(),
            port: decoy.port,
            replicas: vec![decoy_replica.port],
        },
        real[1].clone(),
    ];
    let sentinels = Sentinel::start_group(&[real.clone(), real, lone]);
    let cluster = Cluster::front(shards, sentinels, &Options::default());
    let lone = &cluster.sentinels[2];
    assert_eq!(lone.master_port("shardA"), Some(decoy.port));
    let started = Instant::now();
    let load = Load::start(cluster.port, &cluster.routes);

    // 1. The lone sentinel disagrees in `get-master-addr-by-name` for 3 poll rounds.
    lone.wait_polled(3);
    assert_eq!(
        (dbsize(decoy.port), dbsize(decoy_replica.port)),
        (0, 0),
        "writes went to the decoy named by one sentinel of three\nrampart log:\n{}",
        cluster.log_tail()
    );

    // 2. The lone sentinel fails its shardA over on its own and announces +switch-master.
    let forced_at = Instant::now();
    assert!(call(lone.port, &["SENTINEL", "FAILOVER", "shardA"]).is_ok());
    wait_until(
        "the lone sentinel to promote the decoy's replica",
        Duration::from_secs(15),
        || lone.master_port("shardA") == Some(decoy_replica.port),
    );
    let switched = forced_at.elapsed();
    lone.wait_polled(3);
    let report = load.stop();

    let written = report.written_since(0, started);
    let on_real: usize = written
        .iter()
        .filter(|key| cluster.shards[0].master.get(key).as_deref() == Some(value_of(key).as_str()))
        .count();
    let decoy_keys = (dbsize(decoy.port), dbsize(decoy_replica.port));
    println!(
        "lone sentinel: {on_real}/{} shardA writes on the real master, decoy and its replica \
         hold {decoy_keys:?} keys, {} wrong answers, {} errors (lone +switch-master after \
         {:.2} s)",
        written.len(),
        report.wrong().len(),
        report.errors().len(),
        switched.as_secs_f64()
    );
    assert!(!written.is_empty(), "no write to shardA went through");
    assert_eq!(
        decoy_keys,
        (0, 0),
        "writes went to the decoy after a lone sentinel's +switch-master\nrampart log:\n{}",
        cluster.log_tail()
    );
    assert_eq!(
        on_real,
        written.len(),
        "acknowledged shardA writes missing on the real master\nrampart log:\n{}",
        cluster.log_tail()
    );
    report.assert_clean(forced_at, &cluster.log_tail());
    assert_failovers(&cluster, &[0, 0]);
}

#[test]
fn nutcracker_baseline_on_the_same_scenario() {
    let mut shards = start_shards(&[true, true]);
    let monitors = monitors_of(&shards);
    let sentinels = Sentinel::start_group(&[monitors.clone(), monitors.clone(), monitors]);
    wait_sentinels_ready(&sentinels);
    let (nutcracker, port) = start_nutcracker(&shards);
    let routes = Arc::new(Routes::of(&nutcracker.config));
    write_data(port, &routes);
    wait_replicated(&shards);

    let load = Load::start(port, &routes);
    shards[0].master.kill();
    let killed_at = Instant::now();
    let promoted = shards[0].replica.as_ref().unwrap().port;
    wait_until(
        "the sentinels to promote shardA's replica",
        Duration::from_secs(20),
        || majority_master(&sentinels, "shardA") == Some(promoted),
    );
    let promoted_after = killed_at.elapsed();
    load.run_for(Duration::from_secs(1));
    let report = load.stop();
    let unreadable = unreadable_data(port, &routes);
    let after_kill = |events: Vec<&Event>| {
        events
            .into_iter()
            .filter(|event| event.started >= killed_at)
            .count()
    };
    println!(
        "nutcracker: {} wrong answers of {} reads, {} client errors out of {} requests \
         ({} wrong and {} errors after the kill; sentinels promoted the replica after {:.2} s), \
         {}/{DATA_KEYS} keys unreadable after failover ({} of them lived on shardA)",
        report.wrong().len(),
        report.reads(),
        report.errors().len(),
        report.requests(),
        after_kill(report.wrong()),
        after_kill(report.errors()),
        promoted_after.as_secs_f64(),
        unreadable.len(),
        routes.data_on(0)
    );
}

/// A node the sentinels still call the master has been demoted behind their back (it became
/// a replica of another node): writes to it get `-READONLY`, which means they did not run.
/// rampart must not pass that on: it re-checks the sentinels, holds the write within
/// `failover_wait_ms`, and sends it to the master the sentinel names next.
#[test]
fn a_readonly_reply_is_resent_to_the_real_master_not_passed_on() {
    let demoted = node(&[]);
    let real = node(&[]);
    let mut sentinels = Sentinel::start_group(&[vec![Monitor {
        name: SHARD_NAMES[0].to_string(),
        port: demoted.port,
        replicas: Vec::new(),
    }]]);
    let sentinel = sentinels.remove(0);
    let port = support::free_port();
    let yaml = support::process::pool_yaml(
        "alpha",
        port,
        &format!(
            "  timeout: 1000\n  failover_wait_ms: 10000\n  sentinels:\n   - 127.0.0.1:{}\n",
            sentinel.port
        ),
        &[format!("127.0.0.1:{}:1 {}", demoted.port, SHARD_NAMES[0])],
    );
    let rampart = support::process::Rampart::start(&yaml, &[port], &[]);
    let mut client = Client::connect(port).unwrap();
    assert!(client.call(&[b"SET", b"before", b"1"]).is_ok());

    assert!(
        call(
            demoted.port,
            &["REPLICAOF", "127.0.0.1", &real.port.to_string()]
        )
        .is_ok()
    );
    wait_until(
        "the demoted node to sync as a replica",
        Duration::from_secs(10),
        || {
            info(demoted.port, &["replication"])
                .get("master_link_status")
                .map(String::as_str)
                == Some("up")
        },
    );
    let writer = std::thread::spawn(move || client.call(&[b"SET", b"after", b"2"]));
    wait_until(
        "rampart to meet -READONLY and hold the write",
        Duration::from_secs(10),
        || rampart.log_text().contains("no longer a master"),
    );
    assert!(call(sentinel.port, &["SENTINEL", "REMOVE", SHARD_NAMES[0]]).is_ok());
    let real_port = real.port.to_string();
    let monitor = [
        "SENTINEL",
        "MONITOR",
        SHARD_NAMES[0],
        "127.0.0.1",
        &real_port,
        "1",
    ];
    assert!(call(sentinel.port, &monitor).is_ok());
    let reply = writer.join().unwrap();
    println!(
        "READONLY re-send: the held write was answered {reply:?} by the sentinel's new master"
    );
    assert!(
        reply.is_ok(),
        "the write got {reply:?}; rampart log:\n{}",
        rampart.log_text()
    );
    assert_eq!(
        call(real.port, &["GET", "after"]),
        Reply::Bulk(Some(b"2".to_vec())),
        "the held write went to the node the sentinel names now"
    );
}

/// A manual `SENTINEL FAILOVER` demotes a live master: until rampart follows the switch, writes
/// that reach the demoted node get `-READONLY`. Those requests did not run, so rampart must
/// re-check the sentinels and re-send them to the promoted replica: a client never sees
/// `-READONLY`, and no read is wrong. (Sentinel also kills the old master's client
/// connections when it demotes it, so a request in flight on it may get a connection error.)
#[test]
fn a_demoted_masters_readonly_never_reaches_the_client() {
    let cluster = Cluster::start(Options::default());
    let promoted = cluster.shards[0].replica.as_ref().unwrap().port;
    let load = Load::start(cluster.port, &cluster.routes);
    load.run_for(Duration::from_millis(300));
    let switched_at = Instant::now();
    assert!(
        call(
            cluster.sentinels[0].port,
            &["SENTINEL", "FAILOVER", SHARD_NAMES[0]]
        )
        .is_ok()
    );
    wait_until(
        "the sentinels to agree on the promoted replica",
        Duration::from_secs(15),
        || cluster.sentinel_master(0) == Some(promoted),
    );
    let agreed_at = Instant::now();
    let recovery = load.wait_recovery(0, agreed_at, || cluster.log_tail());
    load.run_for(Duration::from_secs(1));
    let report = load.stop();
    let readonly: Vec<_> = report
        .errors()
        .into_iter()
        .filter(|event| matches!(&event.outcome, Outcome::Error(text) if text.contains("READONLY")))
        .collect();
    let resent = cluster
        .rampart
        .log_text()
        .matches("no longer a master")
        .count();
    println!(
        "manual failover: a write to the shard succeeded {:.2} s after the sentinels agreed, \
         {} client errors out of {} requests, {} wrong answers; rampart re-sent after -READONLY \
         {resent} time(s)",
        recovery.as_secs_f64(),
        report.errors().len(),
        report.requests(),
        report.wrong().len()
    );
    assert!(
        readonly.is_empty(),
        "-READONLY reached the client:\n{}",
        Report::describe(&readonly, switched_at)
    );
    assert!(
        report.wrong().is_empty(),
        "wrong answers:\n{}",
        Report::describe(&report.wrong(), switched_at)
    );
    assert!(
        report.errors().len() <= 1,
        "errors:\n{}",
        Report::describe(&report.errors(), switched_at)
    );
}

/// With `replica_reads: true`, once the shard's master is unreachable, reads of its keys are
/// served by the replica Sentinel lists, at once, instead of waiting for the promotion; writes
/// still wait for the new master and are never sent to the replica.
#[test]
fn replica_reads_serve_the_shard_while_its_master_is_down() {
    let mut cluster = Cluster::start(Options {
        replica_reads: true,
        ..Options::default()
    });
    cluster.sentinels[0].wait_polled(2);
    let old_master = cluster.shards[0].master.port;
    let (key, _) = cluster
        .routes
        .data
        .iter()
        .find(|(_, shard)| *shard == 0)
        .cloned()
        .expect("a data key on shard A");
    let expected = Reply::Bulk(Some(value_of(&key).into_bytes()));
    let mut client = Client::connect(cluster.port).unwrap();
    assert_eq!(client.call(&[b"GET", key.as_bytes()]), expected);
    let killed_at = cluster.kill_master(0);
    let mut first_good_read = None;
    let mut read_errors = 0;
    while first_good_read.is_none() && killed_at.elapsed() < Duration::from_secs(5) {
        match client.try_call(&[b"GET", key.as_bytes()]) {
            Ok(reply) if reply == expected => first_good_read = Some(killed_at.elapsed()),
            Ok(Reply::Error(_)) => read_errors += 1,
            Ok(other) => panic!("GET during the outage gave a wrong answer {other:?}"),
            Err(error) => panic!("the connection broke: {error}"),
        }
    }
    let still_old = cluster.sentinel_master(0) == Some(old_master);
    let served = first_good_read.expect("no read of the failed shard succeeded within 5 s");
    println!(
        "replica reads: a read of the failed shard succeeded {:.3} s after the kill ({read_errors} \
         error replies first), while the sentinels still named the dead master: {still_old}",
        served.as_secs_f64()
    );
    assert!(
        still_old,
        "the read was served only after the failover, not by the replica"
    );
    assert!(
        read_errors <= 1,
        "{read_errors} reads failed before the replica served them"
    );
    let write = client.call(&[b"SET", key.as_bytes(), value_of(&key).as_bytes()]);
    assert!(
        write.is_ok(),
        "a write during the outage got {write:?} (it must wait for the new master)"
    );
}
