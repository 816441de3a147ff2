//! The stats port (`-s`/`-a`, default 0.0.0.0:22222): on every connection it writes one JSON
//! document in nutcracker's layout, for the configuration served now, and closes, reading
//! nothing from the peer.

use std::io::{self, Write};
use std::net::{TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::descriptors::SpareDescriptor;
use crate::log_limit::limited;
use crate::proxy::Live;

/// How long the stats thread waits after an accept failed for another reason than a lack of
/// descriptors, so that a lasting failure cannot spin it.
const ACCEPT_RETRY: Duration = Duration::from_millis(10);

/// Binds the stats socket; failing here stops start-up, as in nutcracker.
pub fn bind(address: &str, port: u16) -> io::Result<TcpListener> {
    let resolved = (address, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address found"))?;
    TcpListener::bind(resolved)
}

/// Serves the stats document on its own thread for the life of the process.
pub fn spawn(listener: TcpListener, live: Arc<Live>) -> io::Result<()> {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string());
    let spare = SpareDescriptor::new()?;
    thread::Builder::new().name("stats".into()).spawn(move || {
        loop {
            match listener.accept() {
                Ok((mut peer, _)) => {
                    let shared = live.load();
                    let document = shared.stats.render(&shared.config, &hostname);
                    let _ = peer.write_all(document.as_bytes());
                }
                Err(error) => match spare.shed(error, || listener.accept()) {
                    Ok(()) => limited!(
                        warn,
                        "stats clients closed out of descriptors",
                        "out of file descriptors: a stats client was closed at once"
                    ),
                    Err(error) => {
                        limited!(
                            warn,
                            "stats accept failures",
                            "stats accept failed: {error}"
                        );
                        thread::sleep(ACCEPT_RETRY);
                    }
                },
            }
        }
    })?;
    Ok(())
}
