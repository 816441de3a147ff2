//! Test support shared by every test binary: free loopback ports, polling with deadlines and
//! the binary under test here; real server processes (`process`), the raw RESP client
//! (`resp`), `rampart route` (`route`) and the stats document (`stats`) in their modules. Every process is killed by PID
//! when dropped. Each test binary compiles this module on its own and uses part of it, hence
//! the `allow(dead_code)`.
#![allow(dead_code)]

pub mod process;
pub mod resp;
pub mod route;
pub mod stats;

use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A loopback TCP port that was free a moment ago (the OS picks it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("the OS hands out a free loopback port")
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

/// The rampart binary under test.
pub fn rampart_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rampart")
}
