//! One virtual router: feeds the VRRP state machine its adverts, timer expiries and the
//! proxy's health, and carries out what it decides: adverts on the raw socket, the virtual
//! addresses through netlink, gratuitous ARP. Every state change is logged once, with its
//! reason, and published on the VRRP board for the stats.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use rampart_config::keepalived::{StartState, VrrpInstance, VrrpVersion};
use rampart_vrrp::{
    Action, Auth, Config, Event, InitialState, Machine, Reason, State, Version, decode, encode,
    packet::VRRP_TTL, parse_ipv4,
};
use tokio::sync::watch;
use tokio::time::Instant;

use super::announce::Announcer;
use super::link::{Interface, LinkError, Netlink};
use super::socket::AdvertSocket;
use super::tracking::Verdict;
use crate::admin::vrrp_status::{InstanceStatus, VrrpBoard};

/// How often a bad advert is reported in the log at most, per instance.
const BAD_ADVERT_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// The largest datagram read from the raw socket (an advert is far smaller).
const DATAGRAM_LIMIT: usize = 2048;
/// After adding the virtual addresses failed, the node stays in FAULT this long before it
/// tries again, doubling up to [`ADDRESS_RETRY_MAX`]: a node that lacks CAP_NET_ADMIN must not
/// flap between BACKUP and FAULT.
const ADDRESS_RETRY_FIRST: Duration = Duration::from_secs(5);
const ADDRESS_RETRY_MAX: Duration = Duration::from_secs(60);

/// Why a virtual router could not start.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error("vrrp_instance '{instance}' ({file}:{line}): {reason}")]
    Setup {
        instance: String,
        file: String,
        line: usize,
        reason: String,
    },
}

/// A virtual router ready to run: its interface, sockets and state machine.
pub struct Speaker {
    name: String,
    interface: Interface,
    netlink: Netlink,
    socket: AdvertSocket,
    announcer: Announcer,
    machine: Machine,
    source: Ipv4Addr,
    /// The virtual addresses with their prefix lengths.
    addresses: Vec<(Ipv4Addr, u8)>,
    board: Arc<VrrpBoard>,
    started: Instant,
    last_bad_advert_log: Option<Instant>,
    /// After a failed add: the wait before the next try, and when it ends.
    address_retry: Option<(Duration, Instant)>,
}

impl Speaker {
    /// Looks up the interface, opens the sockets and builds the state machine. Needs
    /// CAP_NET_RAW (the sockets); adding addresses later needs CAP_NET_ADMIN.
    pub async fn prepare(
        instance: &VrrpInstance,
        board: Arc<VrrpBoard>,
    ) -> Result<Speaker, SpeakerError> {
        let fail = |reason: String| SpeakerError::Setup {
            instance: instance.name.clone(),
            file: instance.file.display().to_string(),
            line: instance.line,
            reason,
        };
        let addresses = instance
            .virtual_addresses
            .iter()
            .map(|virtual_address| match virtual_address.addr {
                IpAddr::V4(address) => Ok((address, virtual_address.prefix_len)),
                IpAddr::V6(address) => Err(fail(format!(
                    "IPv6 virtual address {address}: rampart's speaker serves IPv4 addresses only"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let netlink = Netlink::open().map_err(|error| fail(error.to_string()))?;
        let interface = netlink
            .interface(&instance.interface)
            .await
            .map_err(|error| fail(error.to_string()))?;
        let vips: Vec<IpAddr> = addresses
            .iter()
            .map(|(address, _)| IpAddr::V4(*address))
            .collect();
        let source = match instance.unicast_src_ip {
            Some(IpAddr::V4(source)) => source,
            Some(IpAddr::V6(source)) => {
                return Err(fail(format!(
                    "unicast_src_ip {source}: an IPv4 instance needs an IPv4 source"
                )));
            }
            None => netlink
                .primary_ipv4(&interface, &vips)
                .await
                .map_err(|error| fail(error.to_string()))?,
        };
        let peers = instance
            .unicast_peers
            .iter()
            .map(|peer| match peer {
                IpAddr::V4(peer) => Ok(*peer),
                IpAddr::V6(peer) => Err(fail(format!(
                    "unicast_peer {peer}: an IPv4 instance needs IPv4 peers"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let socket = AdvertSocket::open(&interface, source, &peers)
            .map_err(|error| fail(format!("cannot open the VRRP socket: {error}")))?;
        let announcer = Announcer::open(&interface)
            .map_err(|error| fail(format!("cannot open the ARP socket: {error}")))?;
        let machine = Machine::new(machine_config(instance, IpAddr::V4(source), vips))
            .map_err(|error| fail(error.to_string()))?;
        Ok(Speaker {
            name: instance.name.clone(),
            interface,
            netlink,
            socket,
            announcer,
            machine,
            source,
            addresses,
            board,
            started: Instant::now(),
            last_bad_advert_log: None,
            address_retry: None,
        })
    }

    /// The status the stats show before the speaker runs.
    pub fn status(&self) -> InstanceStatus {
        InstanceStatus {
            name: self.name.clone(),
            state: self.machine.state(),
            priority: self.machine.effective_priority(),
            master: self.machine.master(),
            transitions: self.machine.stats().transitions,
        }
    }

    /// Runs the virtual router until the proxy stops, then leaves it: a master sends
    /// priority 0 and removes its addresses, so its peer takes over at once.
    pub async fn run(
        mut self,
        mut health: watch::Receiver<Verdict>,
        mut stopping: watch::Receiver<bool>,
    ) {
        tracing::info!(
            "vrrp_instance '{}': speaking VRRP on {} from {} (virtual router {}, priority {})",
            self.name,
            self.interface.name,
            self.source,
            self.machine.config().vrid,
            self.machine.config().priority
        );
        self.handle(Event::Start).await;
        let mut datagram = [0u8; DATAGRAM_LIMIT];
        loop {
            let deadline = self
                .machine
                .next_deadline()
                .map(|deadline| self.started + deadline);
            let event = tokio::select! {
                received = self.socket.receive(&mut datagram) => match received {
                    Ok(length) => match self.advert_event(datagram.get(..length).unwrap_or_default()) {
                        Some(event) => event,
                        None => continue,
                    },
                    Err(error) => {
                        tracing::warn!("vrrp_instance '{}': reading adverts: {error}", self.name);
                        continue;
                    }
                },
                () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => Event::Timer,
                changed = health.changed() => {
                    if changed.is_err() {
                        continue;
                    }
                    let verdict = health.borrow_and_update().clone();
                    self.health_event(verdict)
                }
                _ = stopping.changed() => break,
            };
            self.handle(event).await;
        }
        self.handle(Event::Shutdown).await;
    }

    /// The machine's health event for a verdict: healthy only once a failed add of the
    /// addresses may be tried again.
    fn health_event(&self, verdict: Verdict) -> Event {
        match self.address_retry {
            Some((wait, until)) if verdict.healthy && Instant::now() < until => {
                Event::HealthChanged {
                    healthy: false,
                    reason: format!(
                        "adding the virtual addresses failed; next try {wait:?} after the failure"
                    ),
                }
            }
            _ => Event::HealthChanged {
                healthy: verdict.healthy,
                reason: verdict.reason,
            },
        }
    }

    /// Checks a received datagram as RFC 3768/5798 ask (IP protocol, TTL 255, checksum,
    /// version) and turns it into an event; anything else is logged (rate-limited) and dropped.
    fn advert_event(&mut self, datagram: &[u8]) -> Option<Event> {
        let version = self.machine.config().version;
        let checked = parse_ipv4(datagram)
            .map_err(|error| error.to_string())
            .and_then(|ip| {
                if ip.ttl != VRRP_TTL {
                    return Err(format!(
                        "advert from {} with TTL {} (must be {VRRP_TTL})",
                        ip.src, ip.ttl
                    ));
                }
                decode(ip.payload, version, IpAddr::V4(ip.src), IpAddr::V4(ip.dst))
                    .map(|advert| (ip.src, advert))
                    .map_err(|error| format!("advert from {}: {error}", ip.src))
            });
        match checked {
            Ok((from, advert)) => Some(Event::Advert {
                from: IpAddr::V4(from),
                advert,
            }),
            Err(reason) => {
                let now = Instant::now();
                let quiet = self
                    .last_bad_advert_log
                    .is_some_and(|last| now < last + BAD_ADVERT_LOG_INTERVAL);
                if !quiet {
                    self.last_bad_advert_log = Some(now);
                    tracing::warn!("vrrp_instance '{}': ignored {reason}", self.name);
                }
                None
            }
        }
    }

    /// Feeds one event to the machine and carries out what it decides, then publishes the
    /// status.
    async fn handle(&mut self, event: Event) {
        let mut pending = VecDeque::from([event]);
        while let Some(event) = pending.pop_front() {
            let actions = self.machine.handle(event, self.started.elapsed());
            if let Some(failure) = self.carry_out(actions).await {
                pending.push_back(failure);
            }
        }
        self.board.publish(self.status());
    }

    /// Carries out the actions in order, except that the addresses are added before the
    /// advert that claims them is sent: a node that cannot add them (no CAP_NET_ADMIN, a
    /// missing interface) never advertises itself as a master without them. Returns the
    /// failure event to feed back when adding failed.
    async fn carry_out(&mut self, actions: Vec<Action>) -> Option<Event> {
        if actions.contains(&Action::AddAddresses) {
            match self.add_addresses().await {
                Ok(()) => self.address_retry = None,
                Err(error) => {
                    let wait = self.address_retry.map_or(ADDRESS_RETRY_FIRST, |(wait, _)| {
                        (wait * 2).min(ADDRESS_RETRY_MAX)
                    });
                    self.address_retry = Some((wait, Instant::now() + wait));
                    for action in &actions {
                        if let Action::Transition { from, to, reason } = action {
                            self.log_transition(*from, *to, reason);
                        }
                    }
                    return Some(Event::VipAddFailed {
                        reason: format!("{error}; trying again in {wait:?}"),
                    });
                }
            }
        }
        for action in actions {
            match action {
                Action::Transition { from, to, reason } => self.log_transition(from, to, &reason),
                Action::SendAdvert { priority } => self.send_advert(priority),
                Action::AddAddresses => {}
                Action::RemoveAddresses => self.remove_addresses().await,
                Action::Announce { count } => self.announce(count),
            }
        }
        None
    }

    fn log_transition(&self, from: State, to: State, reason: &Reason) {
        let line = format!("vrrp_instance '{}': {from} -> {to}: {reason}", self.name);
        if to == State::Fault {
            tracing::error!("{line}");
        } else {
            tracing::warn!("{line}");
        }
    }

    fn send_advert(&self, priority: u8) {
        let advert = self.machine.advert(priority);
        let mut wire = Vec::with_capacity(64);
        for &destination in self.socket.destinations() {
            wire.clear();
            let sent = encode(
                &advert,
                IpAddr::V4(self.source),
                IpAddr::V4(destination),
                &mut wire,
            )
            .map_err(|error| error.to_string())
            .and_then(|()| {
                self.socket
                    .send(&wire, destination)
                    .map_err(|error| error.to_string())
            });
            if let Err(error) = sent {
                tracing::warn!(
                    "vrrp_instance '{}': cannot send an advert to {destination}: {error}",
                    self.name
                );
            }
        }
    }

    async fn add_addresses(&self) -> Result<(), LinkError> {
        for &(address, prefix_len) in &self.addresses {
            self.netlink
                .add(&self.interface, IpAddr::V4(address), prefix_len)
                .await?;
        }
        tracing::info!(
            "vrrp_instance '{}': added {} to {}",
            self.name,
            self.address_list(),
            self.interface.name
        );
        Ok(())
    }

    async fn remove_addresses(&self) {
        let mut removed = false;
        for &(address, _) in &self.addresses {
            match self
                .netlink
                .remove(&self.interface, IpAddr::V4(address))
                .await
            {
                Ok(was_there) => removed |= was_there,
                Err(error) => tracing::error!("vrrp_instance '{}': {error}", self.name),
            }
        }
        if removed {
            tracing::info!(
                "vrrp_instance '{}': removed {} from {}",
                self.name,
                self.address_list(),
                self.interface.name
            );
        }
    }

    fn announce(&self, count: u32) {
        let addresses: Vec<Ipv4Addr> = self.addresses.iter().map(|(address, _)| *address).collect();
        for _ in 0..count {
            if let Err(error) = self.announcer.announce(&addresses) {
                tracing::warn!(
                    "vrrp_instance '{}': cannot send gratuitous ARP: {error}",
                    self.name
                );
                return;
            }
        }
    }

    fn address_list(&self) -> String {
        let shown: Vec<String> = self
            .addresses
            .iter()
            .map(|(address, prefix_len)| format!("{address}/{prefix_len}"))
            .collect();
        shown.join(", ")
    }
}

/// The state machine's configuration for a keepalived `vrrp_instance`.
fn machine_config(instance: &VrrpInstance, source: IpAddr, addresses: Vec<IpAddr>) -> Config {
    let mut config = Config::new(instance.vrid, source, addresses);
    config.version = match instance.version {
        VrrpVersion::V2 => Version::V2,
        VrrpVersion::V3 => Version::V3,
    };
    config.priority = instance.priority;
    config.advert_interval = instance.advert_interval();
    config.auth = instance
        .auth
        .map_or(Auth::None, |password| Auth::Password(password.wire_bytes()));
    config.preempt = instance.preempt;
    config.preempt_delay = instance.preempt_delay;
    config.garp_master_delay = instance.garp_master_delay;
    config.garp_master_repeat = instance.garp_master_repeat;
    config.initial_state = match instance.state {
        StartState::Master => InitialState::Master,
        StartState::Backup => InitialState::Backup,
    };
    config
}
