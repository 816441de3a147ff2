//! Test support shared by every test binary: free loopback ports, polling with deadlines, log
//! tails and the binary under test here; in their modules, the admin endpoint (`admin`), real
//! server processes (`process`),
//! the raw RESP client (`resp`), `rampart route` (`route`), the stats document (`stats`), the
//! one pseudo-random generator (`random`), pool `alpha` over redis-servers (`shards`), and for
//! failover, replicated redis-servers (`replication`), redis-sentinel (`sentinel`), two shards
//! behind Sentinel and rampart (`sentinel_cluster`) and a read/write load (`load`); network
//! namespaces (`netns`) and VRRP nodes, keepalived and a client of the virtual IP in them
//! (`vrrp`). Every
//! process is killed by PID when dropped. Each test binary compiles this module on its own and
//! uses part of it, hence the `allow(dead_code)`.
#![allow(dead_code)]

pub mod admin;
pub mod load;
pub mod netns;
pub mod process;
pub mod random;
pub mod replication;
pub mod resp;
pub mod route;
pub mod sentinel;
pub mod sentinel_cluster;
pub mod shards;
pub mod stats;
pub mod vrrp;

use std::net::TcpListener;
use std::time::{Duration, Instant};

/// Where test ports come from: below Linux's ephemeral range (32768 and up), so an outgoing
/// connection never takes a port a test is about to listen on.
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A loopback TCP port that is free now and that no other call in this test binary has
/// handed out. Each test binary starts at its own offset (from its pid), so binaries running
/// one after another rarely meet either.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(TEST_PORTS.end - TEST_PORTS.start);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id() * 97 % span,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::SeqCst) % span;
        let port = TEST_PORTS.start + offset as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {TEST_PORTS:?}");
}

/// Polls `ready` every 20 ms until it returns true, panicking with `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last `lines` lines of a log.
pub fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The rampart binary under test.
pub fn rampart_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rampart")
}

/// Makes sure this process, and the rampart it starts next (which inherits the limit), may
/// hold `needed` open descriptors, raising the soft limit towards the hard one if needed.
pub fn ensure_open_file_limit(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < needed && limit.rlim_max > limit.rlim_cur {
            limit.rlim_cur = limit.rlim_max.min(needed.max(65536));
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    assert!(
        limit.rlim_cur >= needed,
        "the open-file limit ({}, hard {}) is below the {needed} this test needs",
        limit.rlim_cur,
        limit.rlim_max
    );
}
