//! The background migrator of a pool whose ring a reload changed (`migrate: true`, or
//! `rampart rebalance`): it walks each server of the old ring with SCAN and moves exactly the
//! keys whose server changed to their new one with Redis's MIGRATE (REPLACE, so a key keeps
//! its TTL, and the old server's copy is gone once moved), at most `migrate_rate` keys per
//! second. Pass after pass, until a whole pass finds nothing left to move; then it reports the
//! pool as done, and the control plane drops the ring of the past (and the servers that were
//! draining).
//!
//! It follows the topology: it talks to each shard's current master (Sentinel's), waits while
//! a shard of the move is failing over, and runs only on a node that holds its virtual IP
//! when the proxy has `--vrrp`, so the two nodes of a pair never both migrate. Clients never
//! wait for it: the data path moves a key itself the first time a command touches it.

use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rampart_config::{Pool, ServerAddress};
use rampart_protocol::{elements, error_code};
use tokio::sync::mpsc::UnboundedSender;

use super::Control;
use super::link::{Link, text, texts};
use crate::log_limit::limited;

/// How long a MIGRATE may take to reach the new server, in a pool without `timeout`.
pub const DEFAULT_MIGRATE_TIMEOUT_MS: u64 = 5000;
/// How far ahead of its pace the migrator may catch up after a wait.
const THROTTLE_CREDIT: Duration = Duration::from_millis(100);
/// How long the migrator waits before its first move, for the requests routed with the old
/// ring to be answered.
const GRACE: Duration = Duration::from_secs(1);
/// Keys asked for per SCAN.
const SCAN_COUNT: &[u8] = b"200";
/// How long a step (a SCAN, a MIGRATE) may take before the migrator tries it again.
const STEP_LIMIT: Duration = Duration::from_secs(10);
/// How long the migrator waits after a failed step, or while it may not run.
const RETRY_DELAY: Duration = Duration::from_millis(500);

/// Runs the migration of `pool` until it is done, then sends the pool's name to `finished`.
pub(super) async fn run(control: Rc<Control>, pool: usize, finished: UnboundedSender<String>) {
    let Some(entry) = control.config.pools.get(pool) else {
        return;
    };
    let Some(ring) = control.topology.view(pool).migration.clone() else {
        return;
    };
    let started = Instant::now();
    let mut migrator = Migrator {
        control: Rc::clone(&control),
        pool,
        entry,
        placement: entry.placement(),
        throttle: Throttle::new(entry.migrate_rate),
        waiting: false,
        links: Vec::new(),
    };
    // Draining servers first: they are the ones that must end empty.
    let mut old_servers = ring.old_servers.clone();
    old_servers.sort_by_key(|&server| {
        !entry
            .servers
            .get(server)
            .is_some_and(|named| named.draining)
    });
    migrator.estimate(&old_servers).await;
    // Requests a client sent before its worker took the new ring may still be on their way
    // to a key's old server: moving that key now could make them miss it.
    tokio::time::sleep(GRACE).await;
    let mut total = 0;
    loop {
        let mut moved = 0;
        for &server in &old_servers {
            moved += migrator.drain(server).await;
        }
        total += moved;
        if moved == 0 {
            break;
        }
    }
    control.stats.record_migration_end(pool);
    tracing::info!(
        "pool '{}': migration done: {total} keys moved in {:.1} s",
        entry.name,
        started.elapsed().as_secs_f64()
    );
    let _ = finished.send(entry.name.clone());
}

struct Migrator<'c> {
    control: Rc<Control>,
    pool: usize,
    entry: &'c Pool,
    /// The new ring.
    placement: rampart_placement::Placement,
    throttle: Throttle,
    /// It waits for the virtual IP or a failover (shown in the stats).
    waiting: bool,
    /// Its connections: (server, the master's address then, the link).
    links: Vec<(usize, ServerAddress, Link)>,
}

impl Migrator<'_> {
    /// Counts the keys of the old servers, the work ahead.
    async fn estimate(&mut self, servers: &[usize]) {
        let mut keys = 0;
        for &server in servers {
            keys += self
                .call_until_done(server, &encoded(&[b"DBSIZE"]))
                .await
                .as_deref()
                .and_then(integer)
                .unwrap_or(0);
        }
        self.control
            .stats
            .record_migration_estimate(self.pool, keys);
    }

    /// One SCAN pass over `server`, moving every key whose server changed; the keys moved.
    async fn drain(&mut self, server: usize) -> u64 {
        let mut cursor = b"0".to_vec();
        let mut moved = 0;
        loop {
            let Some(reply) = self
                .call_until_done(server, &encoded(&[b"SCAN", &cursor, b"COUNT", SCAN_COUNT]))
                .await
            else {
                return moved;
            };
            let Some((next, keys)) = scan_page(&reply) else {
                limited!(
                    warn,
                    "migration failures",
                    "pool '{}': unexpected SCAN reply from '{}'",
                    self.entry.name,
                    self.server_name(server)
                );
                tokio::time::sleep(RETRY_DELAY).await;
                continue;
            };
            let mut moving: Vec<(usize, Vec<Bytes>)> = Vec::new();
            for key in &keys {
                let Some(owner) = self.placement.server_for_key(key) else {
                    continue;
                };
                if owner == server {
                    continue;
                }
                match moving.iter_mut().find(|(to, _)| *to == owner) {
                    Some((_, batch)) => batch.push(key.clone()),
                    None => moving.push((owner, vec![key.clone()])),
                }
            }
            let mut page_moved = 0;
            for (owner, batch) in &moving {
                if self.migrate(server, *owner, batch).await {
                    page_moved += batch.len() as u64;
                }
            }
            moved += page_moved;
            self.control
                .stats
                .record_migration_progress(self.pool, keys.len() as u64, page_moved);
            self.throttle.after(keys.len().max(1)).await;
            if next == b"0" {
                return moved;
            }
            cursor = next;
        }
    }

    /// Moves `keys` from `from` to `to` with MIGRATE ... REPLACE KEYS; false when it failed
    /// (logged; the next pass tries again).
    async fn migrate(&mut self, from: usize, to: usize, keys: &[Bytes]) -> bool {
        let Some(ServerAddress::Tcp { host, port }) = self.address(to) else {
            return false;
        };
        let request = migrate_request(
            &host,
            port,
            self.entry.redis_db,
            self.entry.timeout_ms.unwrap_or(DEFAULT_MIGRATE_TIMEOUT_MS),
            self.entry
                .redis_auth
                .as_ref()
                .map(|password| password.as_bytes()),
            keys,
        );
        let Some(reply) = self.call_until_done(from, &request).await else {
            return false;
        };
        if error_code(&reply).is_some() {
            limited!(
                warn,
                "migration failures",
                "pool '{}': moving keys from '{}' to '{}' failed: {}",
                self.entry.name,
                self.server_name(from),
                self.server_name(to),
                String::from_utf8_lossy(&reply).trim_end()
            );
            tokio::time::sleep(RETRY_DELAY).await;
            return false;
        }
        true
    }

    /// Sends `request` to `server`'s current master, trying again until it answers; waits while
    /// the shard fails over or while this node may not migrate. `None` when the pool is gone.
    async fn call_until_done(&mut self, server: usize, request: &[u8]) -> Option<Bytes> {
        loop {
            let may_run = self.may_run(server);
            if may_run == self.waiting {
                self.waiting = !may_run;
                self.control
                    .stats
                    .record_migration_waiting(self.pool, self.waiting);
            }
            if !may_run {
                tokio::time::sleep(RETRY_DELAY).await;
                continue;
            }
            let address = self.address(server)?;
            let answer = match self.link_to(server, &address).await {
                Ok(link) => link.call_encoded(request, STEP_LIMIT).await,
                Err(error) => Err(error),
            };
            match answer {
                Ok(reply) => return Some(reply),
                Err(error) => {
                    self.links.retain(|(to, _, _)| *to != server);
                    limited!(
                        warn,
                        "migration failures",
                        "pool '{}': the migrator cannot reach '{}': {error}",
                        self.entry.name,
                        self.server_name(server)
                    );
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
        }
    }

    /// The migrator's connection to `server`'s master at `address`: kept from the previous
    /// step while the master stays there, else a new one (authenticated, on the pool's db).
    async fn link_to(&mut self, server: usize, address: &ServerAddress) -> io::Result<&mut Link> {
        let kept = self
            .links
            .iter()
            .position(|(to, at, _)| *to == server && at == address);
        let at = match kept {
            Some(at) => at,
            None => {
                self.links.retain(|(to, _, _)| *to != server);
                let mut link = Link::to_server(self.entry, address, STEP_LIMIT).await?;
                if self.entry.redis_db != 0 {
                    let db = self.entry.redis_db.to_string();
                    link.call(&[b"SELECT", db.as_bytes()], STEP_LIMIT).await?;
                }
                self.links.push((server, address.clone(), link));
                self.links.len() - 1
            }
        };
        match self.links.get_mut(at) {
            Some((_, _, link)) => Ok(link),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Whether the migrator may talk to `server` now: its shard is not failing over, and this
    /// node holds its virtual IP (or has none).
    fn may_run(&self, server: usize) -> bool {
        let instances = self.control.stats.board.vrrp();
        let holds_ip = instances.is_empty()
            || instances
                .iter()
                .any(|instance| instance.state == rampart_vrrp::State::Master);
        holds_ip && !self.control.topology.master_down(self.pool, server)
    }

    /// Where `server`'s master is now.
    fn address(&self, server: usize) -> Option<ServerAddress> {
        self.control
            .topology
            .view(self.pool)
            .addresses
            .get(server)
            .cloned()
    }

    fn server_name(&self, server: usize) -> &str {
        self.entry
            .servers
            .get(server)
            .map_or("?", |named| named.name.as_str())
    }
}

/// `MIGRATE host port "" db timeout REPLACE [AUTH password] KEYS key...`, encoded.
pub fn migrate_request(
    host: &str,
    port: u16,
    db: u32,
    timeout_ms: u64,
    password: Option<&[u8]>,
    keys: &[Bytes],
) -> Bytes {
    let (port, db, timeout) = (port.to_string(), db.to_string(), timeout_ms.to_string());
    let mut args: Vec<&[u8]> = vec![
        b"MIGRATE",
        host.as_bytes(),
        port.as_bytes(),
        b"",
        db.as_bytes(),
        timeout.as_bytes(),
        b"REPLACE",
    ];
    if let Some(password) = password {
        args.extend([&b"AUTH"[..], password]);
    }
    args.push(b"KEYS");
    args.extend(keys.iter().map(|key| &key[..]));
    let mut request = bytes::BytesMut::new();
    rampart_protocol::encode::request(&mut request, args);
    request.freeze()
}

/// Keeps the migrator at its pace: at most `rate` keys per second. Time spent waiting (for
/// the virtual IP, a failover, a server) earns at most [`THROTTLE_CREDIT`] of keys ahead.
struct Throttle {
    per_key: Duration,
    next: Instant,
}

impl Throttle {
    fn new(rate: u32) -> Throttle {
        Throttle {
            per_key: Duration::from_secs(1) / rate.max(1),
            next: Instant::now(),
        }
    }

    /// `keys` more were handled: waits until the pace allows the next ones.
    async fn after(&mut self, keys: usize) {
        let floor = Instant::now()
            .checked_sub(THROTTLE_CREDIT)
            .unwrap_or_else(Instant::now);
        self.next = self.next.max(floor) + self.per_key * u32::try_from(keys).unwrap_or(u32::MAX);
        tokio::time::sleep_until(self.next.into()).await;
    }
}

/// `args` as a RESP request.
fn encoded(args: &[&[u8]]) -> Bytes {
    let mut request = bytes::BytesMut::new();
    rampart_protocol::encode::request(&mut request, args.iter().copied());
    request.freeze()
}

/// A SCAN reply's next cursor and keys.
fn scan_page(reply: &[u8]) -> Option<(Vec<u8>, Vec<Bytes>)> {
    let mut parts = elements(reply)?;
    let cursor = text(reply.get(parts.next()?)?)?.to_vec();
    let keys = texts(reply.get(parts.next()?)?)?
        .into_iter()
        .map(Bytes::copy_from_slice)
        .collect();
    Some((cursor, keys))
}

/// An integer reply's value.
fn integer(reply: &[u8]) -> Option<u64> {
    let digits = reply.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_page_gives_its_cursor_and_keys() {
        let reply = b"*2\r\n$2\r\n17\r\n*2\r\n$1\r\na\r\n$3\r\nb:c\r\n";
        let (cursor, keys) = scan_page(reply).expect("a page");
        assert_eq!(cursor, b"17");
        assert_eq!(
            keys,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b:c")]
        );
        assert_eq!(
            scan_page(b"*2\r\n$1\r\n0\r\n*0\r\n")
                .expect("empty")
                .1
                .len(),
            0
        );
    }

    #[test]
    fn integers_are_read_from_integer_replies_only() {
        assert_eq!(integer(b":42\r\n"), Some(42));
        assert_eq!(integer(b"+42\r\n"), None);
    }

    #[test]
    fn a_migrate_request_names_its_keys_last() {
        let request = migrate_request(
            "10.0.0.3",
            6379,
            2,
            1000,
            Some(b"secret"),
            &[Bytes::from_static(b"k1"), Bytes::from_static(b"k2")],
        );
        let text = String::from_utf8_lossy(&request);
        assert!(
            text.starts_with(
                "*12\r\n$7\r\nMIGRATE\r\n$8\r\n10.0.0.3\r\n$4\r\n6379\r\n$0\r\n\r\n$1\r\n2\r\n"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("$4\r\nAUTH\r\n$6\r\nsecret\r\n$4\r\nKEYS\r\n$2\r\nk1\r\n$2\r\nk2\r\n"),
            "{text}"
        );
    }
}
