//! Following Redis Sentinel for pools with `sentinels:`. Each server's name is the Sentinel
//! master name; its configured address is only where to start. The watcher subscribes to
//! `+switch-master`, `+sdown`, `-sdown` and `+odown` on every sentinel, and asks every sentinel
//! `SENTINEL get-master-addr-by-name` at start, every second, and at once when a worker saw
//! `-READONLY`. A new master is accepted when a majority of all configured sentinels name it,
//! or on `+switch-master` when the promoted node itself says `role:master` and a majority of
//! the reachable sentinels know it as the shard's master or replica. So one lone or lagging
//! sentinel can never move a shard, not even to a real master of something else. Answers
//! carrying an older Sentinel config epoch than the accepted master's are ignored, so sentinels
//! that have not heard of a failover yet cannot move the shard back. Placement never changes:
//! a failover moves the shard's address, not its keys.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use rampart_config::{Pool, SentinelAddr, ServerAddress};
use tokio::sync::Notify;

use super::Control;
use rampart_protocol::elements;

use super::link::{Link, is_master, texts};
use crate::admin::stats::SentinelStat;

/// How often every sentinel is asked where each master is.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long one sentinel may take to answer before it counts as unreachable.
const SENTINEL_TIMEOUT: Duration = Duration::from_millis(500);
/// How long to wait before re-subscribing to a sentinel that went away.
const RESUBSCRIBE_DELAY: Duration = Duration::from_millis(500);

pub struct Watcher {
    control: Rc<Control>,
    pool: usize,
    recheck: Notify,
    /// Per shard, the Sentinel config epoch of the master last accepted: an answer from an
    /// older epoch (a sentinel that has not heard of the failover yet) is not counted.
    epochs: RefCell<Vec<u64>>,
}

/// One sentinel's view of one shard's master.
struct MasterView {
    address: ServerAddress,
    epoch: u64,
    /// Its replicas that the sentinel does not think down.
    replicas: Vec<ServerAddress>,
}

impl Watcher {
    /// Starts watching the pool's sentinels; `None` for a pool without sentinels.
    pub(super) fn start(control: &Rc<Control>, pool: usize) -> Option<Rc<Watcher>> {
        let entry = control.config.pools.get(pool)?;
        if entry.sentinels.is_empty() {
            return None;
        }
        let watcher = Rc::new(Watcher {
            control: Rc::clone(control),
            pool,
            recheck: Notify::new(),
            epochs: RefCell::new(vec![0; entry.servers.len()]),
        });
        for sentinel in &entry.sentinels {
            control.spawn(Rc::clone(&watcher).subscribe(sentinel_address(sentinel)));
        }
        control.spawn(Rc::clone(&watcher).poll());
        Some(watcher)
    }

    /// Asks the sentinels again now, because `server`'s master refused a write.
    pub(super) fn recheck(&self, server: usize) {
        let Some((pool, named)) = self.control.server(self.pool, server) else {
            return;
        };
        tracing::debug!(
            "shard '{}' of pool '{}' answered -READONLY: asking the sentinels now",
            named.name,
            pool.name
        );
        self.recheck.notify_one();
    }

    /// The watched pool's configuration.
    fn pool(&self) -> Option<&Pool> {
        self.control.config.pools.get(self.pool)
    }

    /// The config epoch of the master last accepted for `server`.
    fn epoch(&self, server: usize) -> u64 {
        self.epochs.borrow().get(server).copied().unwrap_or(0)
    }

    fn set_epoch(&self, server: usize, epoch: u64) {
        if let Some(known) = self.epochs.borrow_mut().get_mut(server) {
            *known = epoch;
        }
    }

    async fn poll(self: Rc<Self>) {
        loop {
            self.ask_every_sentinel().await;
            tokio::select! {
                () = tokio::time::sleep(POLL_INTERVAL) => {}
                () = self.recheck.notified() => {}
            }
        }
    }

    /// One round of `get-master-addr-by-name` for every shard on every sentinel.
    async fn ask_every_sentinel(&self) {
        let Some(pool) = self.pool() else {
            return;
        };
        let mut answers = Vec::with_capacity(pool.sentinels.len());
        for sentinel in &pool.sentinels {
            if let Some(masters) = self.ask(sentinel).await {
                answers.push(masters);
            }
        }
        let reachable = answers.len();
        for server in 0..pool.servers.len() {
            let known_epoch = self.epoch(server);
            let mut tally: Vec<(&ServerAddress, usize, u64)> = Vec::new();
            let current = answers
                .iter()
                .filter_map(|masters| masters.get(server)?.as_ref())
                .filter(|view| view.epoch >= known_epoch);
            for view in current {
                match tally.iter_mut().find(|(known, ..)| *known == &view.address) {
                    Some((_, votes, epoch)) => {
                        *votes += 1;
                        *epoch = (*epoch).max(view.epoch);
                    }
                    None => tally.push((&view.address, 1, view.epoch)),
                }
            }
            let Some(&(address, votes, epoch)) = tally.iter().max_by_key(|(_, votes, _)| *votes)
            else {
                continue;
            };
            if votes * 2 <= pool.sentinels.len() {
                continue;
            }
            if pool.replica_reads {
                let replicas = answers
                    .iter()
                    .filter_map(|masters| masters.get(server)?.as_ref())
                    .find(|view| view.address == *address && view.epoch == epoch)
                    .map(|view| view.replicas.clone())
                    .unwrap_or_default();
                self.control
                    .topology
                    .set_replicas(self.pool, server, replicas);
            }
            self.set_epoch(server, epoch);
            let reason = format!(
                "{votes} of {} sentinels agree, config epoch {epoch} ({reachable} reachable)",
                pool.sentinels.len()
            );
            self.accept(server, address.clone(), &reason);
        }
    }

    /// Where one sentinel says each shard's master is; `None` if it cannot be reached.
    async fn ask(&self, sentinel: &SentinelAddr) -> Option<Vec<Option<MasterView>>> {
        let pool = self.pool()?;
        let mut link = Link::connect(&sentinel_address(sentinel), SENTINEL_TIMEOUT)
            .await
            .ok()?;
        let mut masters = Vec::with_capacity(pool.servers.len());
        for server in &pool.servers {
            masters.push(master_view(&mut link, server.name.as_bytes()).await.ok()?);
        }
        Some(masters)
    }

    /// Whether a majority of the reachable sentinels know `address` as the shard's master or
    /// one of its replicas (a promoted replica is, a node from another shard is not); if so,
    /// the newest config epoch among the sentinels that already name it master.
    async fn shard_member_for_majority(
        &self,
        server: usize,
        address: &ServerAddress,
    ) -> Option<u64> {
        let (pool, named) = self.control.server(self.pool, server)?;
        let name = named.name.as_bytes();
        let (mut reachable, mut members) = (0, 0);
        let mut epoch = self.epoch(server);
        for sentinel in &pool.sentinels {
            let Ok(mut link) = Link::connect(&sentinel_address(sentinel), SENTINEL_TIMEOUT).await
            else {
                continue;
            };
            let master = master_view(&mut link, name).await;
            let replicas = link
                .call(&[b"SENTINEL", b"replicas", name], SENTINEL_TIMEOUT)
                .await;
            let (Ok(master), Ok(replicas)) = (master, replicas) else {
                continue;
            };
            reachable += 1;
            let names_it_master = master.as_ref().is_some_and(|view| view.address == *address);
            if let Some(view) = master.filter(|_| names_it_master) {
                epoch = epoch.max(view.epoch);
            }
            let lists_it_replica = elements(&replicas).is_some_and(|mut entries| {
                entries.any(|entry| {
                    replicas.get(entry).and_then(replica_address).as_ref() == Some(address)
                })
            });
            members += usize::from(names_it_master || lists_it_replica);
        }
        (members * 2 > reachable).then_some(epoch)
    }

    /// Follows one sentinel's events for as long as the proxy runs.
    async fn subscribe(self: Rc<Self>, address: ServerAddress) {
        loop {
            if let Ok(mut link) = Link::connect(&address, SENTINEL_TIMEOUT).await {
                let channels: [&[u8]; 5] = [
                    b"SUBSCRIBE",
                    b"+switch-master",
                    b"+sdown",
                    b"-sdown",
                    b"+odown",
                ];
                if link.send(&channels).await.is_ok() {
                    while let Ok(message) = link.read_reply().await {
                        if let Some(fields) = texts(&message)
                            && let [b"message", channel, payload] = fields.as_slice()
                        {
                            self.on_event(channel, payload).await;
                        }
                    }
                }
            }
            tokio::time::sleep(RESUBSCRIBE_DELAY).await;
        }
    }

    async fn on_event(&self, channel: &[u8], payload: &[u8]) {
        let Some(pool) = self.pool() else {
            return;
        };
        let words: Vec<&[u8]> = payload.split(|&byte| byte == b' ').collect();
        let server_named = |name: &[u8]| {
            pool.servers
                .iter()
                .enumerate()
                .find(|(_, server)| server.name.as_bytes() == name)
        };
        match channel {
            b"+switch-master" => {
                let [name, _, _, host, port, ..] = words.as_slice() else {
                    return;
                };
                let (Some((server, _)), Some(address)) =
                    (server_named(name), address_of(host, port))
                else {
                    return;
                };
                if !is_master(pool, &address, SENTINEL_TIMEOUT).await {
                    return;
                }
                if let Some(epoch) = self.shard_member_for_majority(server, &address).await {
                    self.set_epoch(server, epoch);
                    self.accept(
                        server,
                        address,
                        "+switch-master; the node reports role:master and a majority of the \
                         reachable sentinels know it as the shard's master or replica",
                    );
                }
            }
            b"+sdown" | b"-sdown" | b"+odown" => {
                let [b"master", name, ..] = words.as_slice() else {
                    return;
                };
                let Some((server, named)) = server_named(name) else {
                    return;
                };
                let stat = match channel {
                    b"+sdown" => SentinelStat::Sdown,
                    b"-sdown" => SentinelStat::SdownCleared,
                    _ => SentinelStat::Odown,
                };
                tracing::warn!(
                    "sentinel event {} for shard '{}' of pool '{}'",
                    String::from_utf8_lossy(channel),
                    named.name,
                    pool.name
                );
                self.control.stats.record_sentinel(self.pool, server, stat);
                let down = channel != b"-sdown";
                self.control
                    .topology
                    .set_master_down(self.pool, server, down);
                if !down {
                    self.recheck.notify_one();
                }
            }
            _ => {}
        }
    }

    /// Points the shard at its new master.
    fn accept(&self, server: usize, address: ServerAddress, reason: &str) {
        if self
            .control
            .topology
            .set_address(self.pool, server, address.clone())
        {
            self.control
                .topology
                .set_master_down(self.pool, server, false);
            if let Some((pool, named)) = self.control.server(self.pool, server) {
                tracing::warn!(
                    "shard '{}' of pool '{}' now has master {address} ({reason})",
                    named.name,
                    pool.name
                );
            }
            self.control
                .stats
                .record_sentinel(self.pool, server, SentinelStat::Failovers);
        }
    }
}

fn address_of(host: &[u8], port: &[u8]) -> Option<ServerAddress> {
    Some(ServerAddress::Tcp {
        host: String::from_utf8(host.to_vec()).ok()?,
        port: std::str::from_utf8(port).ok()?.parse().ok()?,
    })
}

/// The `ip` and `port` fields of one `SENTINEL replicas` entry (a flat field/value list).
fn replica_address(entry: &[u8]) -> Option<ServerAddress> {
    let fields = texts(entry)?;
    address_of(field(&fields, b"ip")?, field(&fields, b"port")?)
}

/// The value of field `wanted` in a flat field/value list.
fn field<'a>(fields: &[&'a [u8]], wanted: &[u8]) -> Option<&'a [u8]> {
    let (pairs, _) = fields.as_chunks::<2>();
    pairs
        .iter()
        .find(|[name, _]| *name == wanted)
        .map(|[_, value]| *value)
}

fn sentinel_address(sentinel: &SentinelAddr) -> ServerAddress {
    ServerAddress::Tcp {
        host: sentinel.host.clone(),
        port: sentinel.port,
    }
}

/// `SENTINEL get-master-addr-by-name`, the `config-epoch` of `SENTINEL master` and the
/// reachable entries of `SENTINEL replicas`: where the sentinel says the master is, how recent
/// that knowledge is, and where its replicas are. `Ok(None)` when the
/// sentinel does not know the master name.
async fn master_view(link: &mut Link, name: &[u8]) -> std::io::Result<Option<MasterView>> {
    let address = link
        .call(
            &[b"SENTINEL", b"get-master-addr-by-name", name],
            SENTINEL_TIMEOUT,
        )
        .await?;
    let details = link
        .call(&[b"SENTINEL", b"master", name], SENTINEL_TIMEOUT)
        .await?;
    let replicas = link
        .call(&[b"SENTINEL", b"replicas", name], SENTINEL_TIMEOUT)
        .await?;
    let address = texts(&address).and_then(|fields| address_of(fields.first()?, fields.get(1)?));
    let epoch = texts(&details).and_then(|fields| {
        std::str::from_utf8(field(&fields, b"config-epoch")?)
            .ok()?
            .parse()
            .ok()
    });
    let healthy = elements(&replicas)
        .map(|entries| {
            entries
                .filter_map(|entry| replicas.get(entry))
                .filter(|entry| replica_is_up(entry))
                .filter_map(replica_address)
                .collect()
        })
        .unwrap_or_default();
    Ok(address.map(|address| MasterView {
        address,
        epoch: epoch.unwrap_or(0),
        replicas: healthy,
    }))
}

/// Whether a `SENTINEL replicas` entry's `flags` say it is reachable.
fn replica_is_up(entry: &[u8]) -> bool {
    texts(entry).is_some_and(|fields| {
        field(&fields, b"flags").is_some_and(|flags| {
            ![&b"s_down"[..], b"o_down", b"disconnected"]
                .iter()
                .any(|bad| flags.windows(bad.len()).any(|window| window == *bad))
        })
    })
}
