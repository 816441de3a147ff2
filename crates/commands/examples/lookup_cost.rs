//! Measurement harness for `lookup`, meant to run under callgrind:
//!
//! ```text
//! cargo build --release --example lookup_cost
//! valgrind --tool=callgrind target/release/examples/lookup_cost 0
//! valgrind --tool=callgrind target/release/examples/lookup_cost 1000
//! ```
//!
//! The difference of the two instruction totals divided by `1000 * NAMES.len()` is the cost
//! of one lookup. The argument is the number of passes over the names.

use std::hint::black_box;

/// Command names as clients send them: mostly GET and SET, in the cases clients use.
const NAMES: [&[u8]; 16] = [
    b"GET", b"SET", b"get", b"set", b"GET", b"MGET", b"Get", b"SET", b"GET", b"mget", b"SET",
    b"DEL", b"GET", b"set", b"INCR", b"EXPIRE",
];

fn main() {
    let passes: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let mut found = 0usize;
    for _ in 0..passes {
        for name in NAMES {
            if rampart_commands::lookup(black_box(name)).is_some() {
                found += 1;
            }
        }
    }
    println!("{found}");
}
