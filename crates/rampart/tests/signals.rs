//! Signals: SIGTTIN and SIGTTOU logged, SIGHUP reopening the log, SIGTERM draining the
//! replies in flight, SIGINT stopping cleanly, signals sent the moment the pid file exists, and
//! every signal nutcracker survives (and SIGALRM) leaving rampart serving.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::process::{Rampart, Redis, pings, redis_is_blocked};
use support::resp::{Client, bulk, cmd, ok, show};
use support::shards::alpha_yaml;
use support::stats::{servers_sum, stat_reaching};
use support::{free_port, wait_until};

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

    /// Spawns it and waits until it listens; with a client connected to it.
    fn serving(redis_port: u16) -> (WithPidFile, Client) {
        let mut rampart = WithPidFile::spawn(redis_port);
        rampart.proxy.wait_listening(&[rampart.port]);
        let conn = Client::open(rampart.port);
        (rampart, conn)
    }

    /// Sends `signal` (named `name`), which must stop rampart cleanly: the idle client `conn`
    /// closed, exit status 0, the pid file removed, the signal in the log.
    fn assert_stops_cleanly(&mut self, conn: &mut Client, signal: libc::c_int, name: &str) {
        self.proxy.process().signal(signal);
        assert!(conn.closed_by_peer(), "idle client closed");
        let status = self.proxy.process().wait_exit(Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "exit status after {name}");
        assert!(!self.pid_file.exists(), "pid file removed");
        wait_for_log(&self.proxy.log, name);
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
    // A connection whose replies have all been small gets a whole pipeline forwarded at once
    // (a new one is paced until the size of its replies is known).
    let warm_up = vec![cmd(&["GET", "sig:k"]); 200];
    assert!(
        conn.pipeline(&warm_up)
            .iter()
            .all(|reply| *reply == bulk("v"))
    );
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
    let forwarded = 1 + warm_up.len() as u64 + commands.len() as u64;
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

/// Each signal nutcracker survives, and SIGALRM, leaves rampart serving through its
/// redis-server, with the signal logged (but SIGPIPE, which is ignored); SIGUSR1 reloads the
/// unchanged file without closing the client. SIGTERM then still stops it cleanly.
#[test]
fn every_signal_nutcracker_survives_leaves_rampart_serving() {
    let redis = Redis::start(&[]);
    let (mut rampart, mut conn) = WithPidFile::serving(redis.port);
    let (proxy, port) = (&mut rampart.proxy, rampart.port);
    assert_eq!(conn.call_str(&["SET", "survive:k", "v0"]), ok());
    let caught = [
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGHUP,
    ];
    wait_until("signal handlers installed", Duration::from_secs(5), || {
        proxy.process().catches(&caught)
    });
    assert!(proxy.process().ignores(&[libc::SIGPIPE]), "SIGPIPE ignored");
    let signals = [
        (
            libc::SIGUSR1,
            Some("signal 10 (SIGUSR1) received, reloading the configuration"),
        ),
        (libc::SIGUSR2, Some("signal 12 (SIGUSR2) received, ignored")),
        (libc::SIGALRM, Some("signal 14 (SIGALRM) received, ignored")),
        (libc::SIGPIPE, None),
        (libc::SIGTTIN, Some("up log level to 6")),
        (libc::SIGTTOU, Some("down log level to 5")),
        (
            libc::SIGHUP,
            Some("signal 1 (SIGHUP) received, reopening log file"),
        ),
    ];
    for (round, (signal, logged)) in signals.into_iter().enumerate() {
        proxy.process().signal(signal);
        if let Some(line) = logged {
            wait_for_log(&proxy.log, line);
        }
        let value = format!("v{}", round + 1);
        assert_eq!(conn.call_str(&["SET", "survive:k", &value]), ok());
        assert_eq!(
            Client::open(port).call_str(&["GET", "survive:k"]),
            bulk(&value),
            "a new client after signal {signal}"
        );
        assert_eq!(redis.get("survive:k").as_deref(), Some(value.as_str()));
        assert!(
            proxy.process().exit_status().is_none(),
            "signal {signal} ended rampart"
        );
    }
    assert!(
        !proxy.log_text().contains("SIGPIPE"),
        "SIGPIPE is ignored, not caught"
    );
    rampart.assert_stops_cleanly(&mut conn, libc::SIGTERM, "SIGTERM");
}

#[test]
fn sigint_stops_cleanly_too() {
    let redis = Redis::start(&[]);
    let (mut rampart, mut conn) = WithPidFile::serving(redis.port);
    assert_eq!(conn.call_str(&["SET", "int:k", "v"]), ok());
    wait_until("signal handlers installed", Duration::from_secs(5), || {
        rampart.proxy.process().catches(&[libc::SIGINT])
    });
    rampart.assert_stops_cleanly(&mut conn, libc::SIGINT, "SIGINT");
}
