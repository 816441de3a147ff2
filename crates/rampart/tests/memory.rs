//! Memory after a burst: what a burst of large replies made resident goes back to the
//! operating system within seconds once the burst is over.

mod support;

use std::time::Duration;

use support::free_port;
use support::process::{Rampart, Redis};
use support::resp::{Client, Reply, bulk, cmd, encode_all, ok};
use support::shards::alpha_yaml;

/// The value every GET of the burst reads.
const VALUE_BYTES: usize = 1 << 20;
/// Clients in the burst, and the GETs each sends: about 320 MiB of replies. Each client is
/// paced by its pending-bytes limit, so it takes several to make rampart hold much.
const CLIENTS: usize = 16;
const GETS: usize = 20;
/// How much of their replies rampart must be holding before the clients read them.
const HELD_KB: u64 = 100 * 1024;
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

    // The clients send their GETs and read nothing until rampart holds much of the replies.
    let gets = encode_all(&(0..GETS).map(|_| cmd(&["GET", "big"])).collect::<Vec<_>>());
    let mut burst: Vec<Client> = (0..CLIENTS).map(|_| Client::open(port)).collect();
    for client in &mut burst {
        client.send_raw(&gets);
    }
    support::wait_until(
        &format!("rampart holding {HELD_KB} kB of replies above its {before} kB"),
        Duration::from_secs(20),
        || proxy.vm_rss_kb() > before + HELD_KB,
    );
    for client in &mut burst {
        for index in 0..GETS {
            match client.read_reply() {
                Ok(Reply::Bulk(Some(got))) if got.len() == VALUE_BYTES => {}
                other => panic!("reply {index}: {:?}", other.map(|reply| reply.text())),
            }
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
