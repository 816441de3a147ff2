//! The demo's own client: a few SET and GET requests per second through the address clients
//! use (the virtual IP, or the proxy on loopback), counting what succeeded and what failed,
//! so the view shows whether traffic carries on while masters and proxies are killed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::resp::{Connection, Value};

/// The pause between two SET + GET rounds.
const PAUSE: Duration = Duration::from_millis(250);
/// How long one request may take: above a failover, which the proxy waits out.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(12);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Keys written in turn (`demo:traffic:<n>`), spread over both shards.
const KEYS: u64 = 16;

/// The counts the view shows.
#[derive(Debug, Default)]
pub struct Counts {
    pub ok: AtomicU64,
    pub errors: AtomicU64,
}

/// The generator's thread; stops when `stop` is set.
pub fn spawn(
    address: SocketAddr,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("demo-traffic".into())
        .spawn(move || {
            let mut connection: Option<Connection> = None;
            let mut round: u64 = 0;
            while !stop.load(Ordering::SeqCst) {
                round += 1;
                let key = format!("demo:traffic:{}", round % KEYS);
                let value = round.to_string();
                let outcome = match connection.take() {
                    Some(open) => Ok(open),
                    None => Connection::connect(address, CONNECT_TIMEOUT),
                }
                .and_then(|mut open| {
                    open.set_timeout(REQUEST_TIMEOUT)?;
                    let set = open.call(&["SET", &key, &value])?;
                    let get = open.call(&["GET", &key])?;
                    Ok((open, set, get))
                });
                match outcome {
                    Ok((open, set, get)) => {
                        let right = set == Value::Status("OK".into())
                            && get.text().as_deref() == Some(value.as_str());
                        let counter = if right { &counts.ok } else { &counts.errors };
                        counter.fetch_add(1, Ordering::SeqCst);
                        connection = Some(open);
                    }
                    Err(_) => {
                        counts.errors.fetch_add(1, Ordering::SeqCst);
                    }
                }
                thread::sleep(PAUSE);
            }
        })
}
