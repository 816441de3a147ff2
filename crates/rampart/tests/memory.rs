//! Memory after a burst: what a burst of large replies made resident goes back to the
//! operating system within seconds once the burst is over, even when a single client made it.

mod support;

use std::time::Duration;

use support::free_port;
use support::process::{Rampart, Redis};
use support::resp::{Client, Reply, bulk, cmd, encode_all, ok};
use support::shards::alpha_yaml;

/// The value every GET of the burst reads.
const VALUE_BYTES: usize = 1 << 20;
/// GETs in the burst: about 300 MiB of replies.
const GETS: usize = 300;
/// How much of its replies rampart must be holding before the client reads them.
const HELD_KB: u64 = 200 * 1024;
/// How far above its resident size before the burst rampart may stay.
const MARGIN_KB: u64 = 16 * 1024;

#[test]
fn memory_a_burst_made_resident_goes_back_after_it() {
    let redis = Redis::start(&[]);
    let value = "v".repeat(VALUE_BYTES);
    assert_eq!(redis.client().call_str(&["SET", "big", &value]), ok());
    let port = free_port();
    let proxy = Rampart::start(
        &alpha_yaml(port, "", &[redis.port]),
        &[port],
        &["--workers", "1"],
    );
    assert_eq!(Client::open(port).call_str(&["GET", "big"]), bulk(&value));
    let before = proxy.vm_rss_kb();

    // The client sends its GETs and reads nothing until rampart holds most of the replies.
    let mut burst = Client::open(port);
    let gets: Vec<Vec<Vec<u8>>> = (0..GETS).map(|_| cmd(&["GET", "big"])).collect();
    burst.send_raw(&encode_all(&gets));
    support::wait_until(
        &format!("rampart holding {HELD_KB} kB of replies above its {before} kB"),
        Duration::from_secs(20),
        || proxy.vm_rss_kb() > before + HELD_KB,
    );
    for index in 0..GETS {
        match burst.read_reply() {
            Ok(Reply::Bulk(Some(got))) if got.len() == VALUE_BYTES => {}
            other => panic!("reply {index}: {:?}", other.map(|reply| reply.text())),
        }
    }
    drop(burst);

    let mut settled = 0;
    support::wait_until(
        &format!("resident size back within {MARGIN_KB} kB of {before} kB"),
        Duration::from_secs(5),
        || {
            settled = proxy.vm_rss_kb();
            settled < before + MARGIN_KB
        },
    );
    eprintln!("resident: {before} kB before the burst, {settled} kB after it");
}
