//! Reply integrity under backend faults: 20 clients, each on its own connection, pipeline SETs
//! and GETs of their own keys on every shard (and an MGET across the shards), each SET with a
//! value unique to the client and the request, while one redis-server is killed with -9 and
//! restarted on its port, twice.
//! Every reply must be the right one for its own request or an error: never another client's
//! value, never another request's (which would show replies out of order).

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::process::Redis;
use support::resp::{Client, Reply, bulk, nil, ok, set_then_get, show};
use support::shards::{Cluster, TRANSPORT_ERRORS};
use support::wait_until;

const CLIENTS: usize = 20;
const SHARDS: usize = 3;
/// The shard whose server is killed and restarted.
const VICTIM: usize = 1;
/// Keys each client has on each shard.
const KEYS_PER_SHARD: usize = 4;
/// SET and GET pairs in each pipeline.
const PAIRS: usize = 30;

/// What the clients saw, counted as they go.
#[derive(Default)]
struct Tally {
    /// Replies checked.
    replies: AtomicU64,
    errors: AtomicU64,
    /// Reads on the victim's shard that found nothing (the SET went to the killed process).
    lost: AtomicU64,
    /// Requests on the victim's shard answered right.
    victim_served: AtomicU64,
    /// Replies that may not answer their request, described.
    wrong: Mutex<Vec<String>>,
}

fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::SeqCst)
}

/// Whether `got` may answer a request that must get `want`: `want` itself; on the victim's
/// shard a transport error; or for a read there, nil (what the SET wrote died with the killed
/// process). An MGET (one key on each shard, the victim's among them) fails whole or has nil
/// in the victim's place.
fn judge(tally: &Tally, got: &Reply, want: &Reply, on_victim: bool) -> bool {
    let counter = match (got, want) {
        _ if got == want => None,
        (Reply::Error(text), _) if on_victim && TRANSPORT_ERRORS.contains(&text.as_str()) => {
            Some(&tally.errors)
        }
        (Reply::Bulk(None), Reply::Bulk(Some(_))) if on_victim => Some(&tally.lost),
        (Reply::Array(Some(items)), Reply::Array(Some(wants))) if items.len() == wants.len() => {
            let victim_lost = items[VICTIM] == nil();
            let others_right =
                (0..SHARDS).all(|shard| shard == VICTIM || items[shard] == wants[shard]);
            if !(victim_lost && others_right) {
                return false;
            }
            Some(&tally.lost)
        }
        _ => return false,
    };
    match counter {
        Some(counter) => counter.fetch_add(1, Ordering::SeqCst),
        None if on_victim => tally.victim_served.fetch_add(1, Ordering::SeqCst),
        None => 0,
    };
    true
}

/// One client: pipelines of SET key value, GET key over its own keys (shard by shard in turn)
/// and an MGET of the last key it set on each shard, checking every reply, until `stop`.
fn run_client(
    id: usize,
    port: u16,
    keys: Vec<Vec<String>>,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let mut conn = Client::connect_with_timeout(port, Duration::from_secs(10))
        .unwrap_or_else(|error| panic!("client {id}: connect: {error}"));
    let mut round = 0;
    while !stop.load(Ordering::SeqCst) {
        let plan: Vec<(usize, &String, String)> = (0..PAIRS)
            .map(|pair| {
                let shard = pair % SHARDS;
                let key = &keys[shard][(pair / SHARDS + round) % KEYS_PER_SHARD];
                (shard, key, format!("client{id}-round{round}-pair{pair}"))
            })
            .collect();
        let mut commands = set_then_get(
            plan.iter()
                .map(|(_, key, value)| (key.as_str(), value.as_str())),
        );
        let mut wants: Vec<(Reply, bool)> = plan
            .iter()
            .flat_map(|(shard, _, value)| {
                [(ok(), *shard == VICTIM), (bulk(value), *shard == VICTIM)]
            })
            .collect();
        // The last pairs set one key on each shard, in shard order, last in this pipeline.
        let last = &plan[PAIRS - SHARDS..];
        let mut mget = vec![b"MGET".to_vec()];
        mget.extend(last.iter().map(|(_, key, _)| key.as_bytes().to_vec()));
        commands.push(mget);
        let values = last.iter().map(|(_, _, value)| bulk(value)).collect();
        wants.push((Reply::Array(Some(values)), true));

        let replies = conn
            .try_pipeline(&commands)
            .unwrap_or_else(|error| panic!("client {id}, round {round}: no reply: {error}"));
        for ((got, (want, on_victim)), command) in replies.iter().zip(&wants).zip(&commands) {
            tally.replies.fetch_add(1, Ordering::SeqCst);
            if !judge(&tally, got, want, *on_victim) {
                tally.wrong.lock().unwrap().push(format!(
                    "client {id}, round {round}: `{}` got {got:?}, want {want:?}",
                    show(command)
                ));
            }
        }
        round += 1;
    }
}

#[test]
fn no_reply_reaches_the_wrong_client_or_request_while_a_backend_is_killed_and_restarted() {
    let mut cluster = Cluster::start(SHARDS, "", &[]);
    let victim_port = cluster.redis[VICTIM].port;
    let all_keys = cluster.keys_by_shard("integrity:", CLIENTS * KEYS_PER_SHARD);
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let keys: Vec<Vec<String>> = all_keys
                .iter()
                .map(|shard| shard[id * KEYS_PER_SHARD..][..KEYS_PER_SHARD].to_vec())
                .collect();
            let (port, stop, tally) = (cluster.port, Arc::clone(&stop), Arc::clone(&tally));
            std::thread::spawn(move || run_client(id, port, keys, stop, tally))
        })
        .collect();
    let limit = Duration::from_secs(15);
    wait_until("every client to be under way", limit, || {
        read(&tally.victim_served) >= CLIENTS as u64
    });

    let mut outages = Vec::new();
    for _ in 0..2 {
        let errors = read(&tally.errors);
        cluster.redis[VICTIM].kill();
        let killed = Instant::now();
        wait_until("clients to see the kill", limit, || {
            read(&tally.errors) > errors
        });
        cluster.redis[VICTIM] = Redis::start_on(victim_port, &[]);
        let served = read(&tally.victim_served);
        wait_until("the restarted server to serve the clients", limit, || {
            read(&tally.victim_served) >= served + CLIENTS as u64
        });
        outages.push(killed.elapsed());
    }
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().expect("a client got no reply");
    }

    let wrong = tally.wrong.lock().unwrap();
    let (replies, errors) = (read(&tally.replies), read(&tally.errors));
    println!(
        "reply integrity: {replies} replies checked, {errors} errors, {} reads found their SET \
         lost with the killed server, {} wrong; kill to served again: {outages:?}",
        read(&tally.lost),
        wrong.len()
    );
    assert!(
        wrong.is_empty(),
        "{} wrong replies, the first:\n{}",
        wrong.len(),
        wrong[..wrong.len().min(10)].join("\n")
    );
    assert!(errors >= 2, "the kills caused only {errors} errors");
}
