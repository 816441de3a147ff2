//! Measurement harness for `Placement::server_for_key`, meant to run under callgrind:
//!
//! ```text
//! cargo build --release --example placement_cost
//! valgrind --tool=callgrind target/release/examples/placement_cost 0
//! valgrind --tool=callgrind target/release/examples/placement_cost 100
//! ```
//!
//! The difference of the two instruction totals divided by `100 * KEYS` is the cost of one
//! lookup. Arguments: passes over the keys, then optionally the hash and distribution names
//! (default `fnv1a_64 ketama`), then optionally a `hash_tag` such as `{}`.

use std::hint::black_box;

use rampart_placement::{Distribution, HashKind, HashTag, Node, Placement};

/// Distinct keys looked up in each pass.
const KEYS: usize = 4096;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let passes: usize = arg(0).and_then(|n| n.parse().ok()).unwrap_or(1);
    let hash = HashKind::from_name(arg(1).unwrap_or("fnv1a_64")).expect("a hash name");
    let distribution =
        Distribution::from_name(arg(2).unwrap_or("ketama")).expect("a distribution name");
    let tag = arg(3).and_then(|spec| HashTag::new(spec.as_bytes()));
    let nodes = (0..3)
        .map(|i| Node {
            name: format!("127.0.0.1:{}", 6379 + i).into_bytes(),
            weight: 1,
        })
        .collect();
    let mut placement = Placement::new(hash, tag, distribution, nodes);
    let keys: Vec<Vec<u8>> = (0..KEYS)
        .map(|i| format!("key:{:012}", i * 7919).into_bytes())
        .collect();
    let mut servers = [0usize; 3];
    for _ in 0..passes {
        for key in &keys {
            if let Some(server) = placement.server_for_key(black_box(key)) {
                servers[server % 3] += 1;
            }
        }
    }
    println!("{servers:?}");
}
