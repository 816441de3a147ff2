//! The log: `--log-format json` writes one valid JSON object per line (with `ts`, `level` and
//! `message`; quotes and newlines are unit-tested in `logging`) and keeps doing so in the new
//! file after a logrotate-style rename and SIGHUP; and no password reaches the log at the highest
//! verbosity, in either format: not the pool's `redis_auth`, not what clients send with AUTH
//! (right or wrong), not a keepalived.conf's `auth_pass`. A server is logged reachable again
//! only once it answers, not when a stopped server's kernel accepts the connection; and a server
//! that fails thousands of times a second gives a bounded number of lines, and says how many
//! it suppressed.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::process::{Rampart, Redis};
use support::resp::{Client, Reply, bulk, cmd, error, ok, pong};
use support::shards::alpha_yaml;
use support::{free_port, rampart_bin, wait_until};

/// The pool password: the backends' requirepass and what clients must AUTH with.
const POOL_PASSWORD: &str = "PoolSecret-1";
/// A second pool's redis_auth that the backend refuses (its handshake AUTH fails).
const REFUSED_PASSWORD: &str = "OtherSecret-5";
/// Wrong passwords clients try.
const WRONG_PASSWORDS: [&str; 3] = ["WrongGuess-2", "WrongGuess-3", "WrongGuess-4"];
/// The keepalived.conf's auth_pass (11 bytes: VRRP sends the first 8, "VrrpSecr").
const VRRP_PASSWORD: &str = "VrrpSecret9";

fn secrets() -> Vec<&'static str> {
    let mut all = vec![POOL_PASSWORD, REFUSED_PASSWORD, VRRP_PASSWORD, "VrrpSecr"];
    all.extend(WRONG_PASSWORDS);
    all
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in secrets() {
        for line in text.lines() {
            assert!(
                !line.contains(secret),
                "{what} shows the password {secret:?}: {line}"
            );
        }
    }
}

/// Every line is a JSON object with an RFC 3339 UTC `ts` in milliseconds, a `level` and a
/// `message`; returns the messages.
fn json_messages(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
            let ts = value["ts"].as_str().expect("ts");
            assert_eq!(ts.len(), "2026-11-25T15:20:00.123Z".len(), "ts {ts}");
            assert_eq!(&ts[10..11], "T", "ts {ts}");
            assert_eq!(&ts[19..20], ".", "ts {ts}");
            assert!(ts.ends_with('Z'), "ts {ts}");
            let level = value["level"].as_str().expect("level");
            assert!(
                ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&level),
                "level {level}"
            );
            value["message"].as_str().expect("message").to_owned()
        })
        .collect()
}

fn keepalived_conf(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("keepalived.conf");
    let text = format!(
        "vrrp_instance VI_1 {{\n    state BACKUP\n    interface rmpnoexist0\n    \
         virtual_router_id 51\n    priority 100\n    advert_int 1\n    authentication {{\n        \
         auth_type PASS\n        auth_pass {VRRP_PASSWORD}\n    }}\n    virtual_ipaddress {{\n        \
         192.0.2.10\n    }}\n}}\n"
    );
    fs::write(&path, text).unwrap();
    path
}

/// Runs everything that could log a password, at `-v 11`, in `format`; returns the log and
/// what rampart printed.
fn exercise(format: &str) -> String {
    let redis = Redis::start(&[]);
    assert_eq!(
        Client::open(redis.port).call_str(&["CONFIG", "SET", "requirepass", POOL_PASSWORD]),
        ok()
    );
    let (port, refused_port) = (free_port(), free_port());
    let yaml = format!(
        "{}{}",
        alpha_yaml(
            port,
            &format!("  redis_auth: {POOL_PASSWORD}\n"),
            &[redis.port]
        ),
        alpha_yaml(
            refused_port,
            &format!("  redis_auth: {REFUSED_PASSWORD}\n"),
            &[redis.port]
        )
        .replace("alpha:", "beta:")
    );
    let mut proxy = Rampart::spawn(&yaml, &["-v", "11", "--log-format", format]);
    proxy.wait_listening(&[port, refused_port]);

    let mut client = Client::open(port);
    for wrong in WRONG_PASSWORDS {
        assert!(matches!(client.call_str(&["AUTH", wrong]), Reply::Error(_)));
    }
    for wrong in [
        &["AUTH", "default", WRONG_PASSWORDS[1]][..],
        &["HELLO", "3", "AUTH", "default", WRONG_PASSWORDS[2]],
    ] {
        assert!(matches!(client.call_str(wrong), Reply::Error(_)));
    }
    assert_eq!(client.call_str(&["AUTH", POOL_PASSWORD]), ok());
    assert_eq!(client.call_str(&["SET", "logs:k", "v"]), ok());
    assert_eq!(client.call_str(&["GET", "logs:k"]), bulk("v"));
    let mut refused = Client::open(refused_port);
    assert_eq!(refused.call_str(&["AUTH", REFUSED_PASSWORD]), ok());
    let _ = refused.call_str(&["GET", "logs:k"]);
    wait_until("the refused AUTH logged", Duration::from_secs(5), || {
        proxy.log_text().contains("AUTH failed")
    });
    proxy.process().signal(libc::SIGTERM);
    proxy.process().wait_exit(Duration::from_secs(15));
    let mut all = proxy.log_text();

    // The keepalived.conf: checked with -t, and loaded by a proxy start that then fails on
    // the missing interface (so no network is touched).
    let conf = keepalived_conf(proxy.dir.path());
    let checked = Command::new(rampart_bin())
        .args(["-t", "-v", "11", "--log-format", format, "-c"])
        .arg(&proxy.config)
        .arg("--vrrp")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(checked.status.success(), "{checked:?}");
    all.push_str(&String::from_utf8_lossy(&checked.stderr));
    all.push_str(&String::from_utf8_lossy(&checked.stdout));
    let vrrp_log = proxy.dir.path().join("vrrp.log");
    let started = Command::new(rampart_bin())
        .args(["-v", "11", "--log-format", format])
        .args(["-s", &free_port().to_string(), "-a", "127.0.0.1", "-c"])
        .arg(&proxy.config)
        .arg("--vrrp")
        .arg(&conf)
        .arg("-o")
        .arg(&vrrp_log)
        .output();
    let started = started.unwrap();
    assert!(!started.status.success(), "no such interface: {started:?}");
    let vrrp_text = fs::read_to_string(&vrrp_log).unwrap();
    assert!(vrrp_text.contains("rmpnoexist0"), "{vrrp_text}");
    all.push_str(&vrrp_text);
    all.push_str(&String::from_utf8_lossy(&started.stderr));
    all
}

#[test]
fn no_password_in_text_logs_at_the_highest_verbosity() {
    let log = exercise("text");
    assert!(log.contains("AUTH failed on pool 'beta'"), "{log}");
    assert_no_secret("the text log", &log);
}

#[test]
fn no_password_in_json_logs_at_the_highest_verbosity() {
    let log = exercise("json");
    assert_no_secret("the JSON log", &log);
}

#[test]
fn json_lines_stay_valid_after_a_rotation() {
    let redis = Redis::start(&[]);
    let port = free_port();
    let mut proxy = Rampart::spawn(
        &alpha_yaml(port, "", &[redis.port]),
        &["--log-format", "json"],
    );
    proxy.wait_listening(&[port]);
    wait_until("signal handlers installed", Duration::from_secs(5), || {
        proxy.process().catches(&[libc::SIGHUP, libc::SIGTTIN])
    });
    let rotated = proxy.dir.path().join("rampart.log.1");
    fs::rename(&proxy.log, &rotated).unwrap();
    proxy.process().signal(libc::SIGHUP);
    wait_until("SIGHUP in the rotated log", Duration::from_secs(5), || {
        fs::read_to_string(&rotated).is_ok_and(|text| text.contains("SIGHUP"))
    });
    wait_until("a new log file", Duration::from_secs(5), || {
        proxy.log.exists()
    });
    proxy.process().signal(libc::SIGTTIN);
    wait_until("SIGTTIN in the new log", Duration::from_secs(5), || {
        proxy.log_text().contains("SIGTTIN")
    });
    let old = json_messages(&fs::read_to_string(&rotated).unwrap());
    assert!(old.iter().any(|message| message.contains("started on pid")));
    let new = json_messages(&proxy.log_text());
    assert!(new.iter().any(|message| message.contains("SIGTTIN")));
    assert!(!new.iter().any(|message| message.contains("started on pid")));
}

/// The text format is nutcracker's: `[YYYY-MM-DD HH:MM:SS.mmm]` then the level.
#[test]
fn text_lines_keep_the_nutcracker_timestamp() {
    let redis = Redis::start(&[]);
    let port = free_port();
    let mut proxy = Rampart::spawn(&alpha_yaml(port, "", &[redis.port]), &[]);
    proxy.wait_listening(&[port]);
    let text = proxy.log_text();
    let first = text.lines().next().expect("a log line");
    assert_eq!(&first[0..1], "[");
    assert_eq!(&first[24..25], "]", "{first}");
    assert!(first.contains(" INFO "), "{first}");
}

/// A SIGSTOPped redis-server's kernel still accepts connections: rampart calls the server
/// reachable again only once it answered on the new connection, after SIGCONT, and once.
#[test]
fn a_stopped_server_is_reachable_again_only_once_it_answers() {
    const REACHABLE: &str = "server 's0' of pool 'alpha' is reachable again";
    let redis = Redis::start(&[]);
    let port = free_port();
    let mut proxy = Rampart::spawn(&alpha_yaml(port, "  timeout: 300\n", &[redis.port]), &[]);
    proxy.wait_listening(&[port]);
    let mut client = Client::open(port);
    assert_eq!(client.call_str(&["SET", "stopped:k", "v"]), ok());
    redis.freeze();
    // The first GET times out on the old connection; each later one on a new connection that
    // the stopped server's kernel accepted.
    for _ in 0..4 {
        assert_eq!(
            client.call_str(&["GET", "stopped:k"]),
            error("ERR Connection timed out")
        );
    }
    let stopped = proxy.log_text();
    assert!(
        stopped.contains("server 's0' of pool 'alpha' failed: Connection timed out"),
        "{stopped}"
    );
    assert!(!stopped.contains(REACHABLE), "{stopped}");
    redis.thaw();
    assert_eq!(client.call_str(&["GET", "stopped:k"]), bulk("v"));
    wait_until(
        "the server logged reachable again",
        Duration::from_secs(5),
        || proxy.log_text().contains(REACHABLE),
    );
    assert_eq!(client.call_str(&["GET", "stopped:k"]), bulk("v"));
    assert_eq!(proxy.log_text().matches(REACHABLE).count(), 1);
}

/// A redis-server whose one client slot is taken answers every new connection with `-ERR max
/// number of clients reached` and closes it: a failing server that answers, thousands of times
/// a second. The log keeps to its rate limit (10 lines a second per call site) and says how many
/// lines it suppressed.
#[test]
fn a_server_failing_thousands_of_times_a_second_logs_a_bounded_number_of_lines() {
    const ROUNDS: usize = 2000;
    let redis = Redis::start(&["--maxclients", "1"]);
    // Taken once the server has seen the start-up check's connection close.
    let mut slot = None;
    wait_until("the one client slot", Duration::from_secs(5), || {
        let mut client = redis.client();
        let taken = client.call_str(&["PING"]) == pong();
        slot = taken.then_some(client);
        taken
    });
    let port = free_port();
    let mut proxy = Rampart::spawn(&alpha_yaml(port, "", &[redis.port]), &["--workers", "1"]);
    proxy.wait_listening(&[port]);
    let started = Instant::now();
    let mut client = Client::open(port);
    let pair = [cmd(&["GET", "flood:a"]), cmd(&["GET", "flood:b"])];
    for _ in 0..ROUNDS {
        for reply in client.pipeline(&pair) {
            assert!(matches!(reply, Reply::Error(_)), "{reply:?}");
        }
    }
    let windows = started.elapsed().as_secs() + 2;
    wait_until("a suppressed-lines summary", Duration::from_secs(5), || {
        proxy
            .log_text()
            .contains("similar messages suppressed in the last")
    });
    let log = proxy.log_text();
    let failures = log
        .lines()
        .filter(|line| line.contains("PING failed"))
        .count();
    assert!(failures > 0, "{log}");
    assert!(
        failures as u64 <= 10 * windows,
        "{failures} PING failures logged in {windows} windows:\n{log}"
    );
    assert!(
        log.lines().count() as u64 <= 4 * 11 * windows + 10,
        "{} lines for {ROUNDS} rounds of failures:\n{log}",
        log.lines().count()
    );
    assert!(
        log.contains("similar messages suppressed in the last")
            && log.contains("(handshake failures)"),
        "{log}"
    );
}
