//! The virtual router state machine (RFC 3768 section 6, RFC 5798 section 6) with keepalived's
//! behaviour where the RFCs leave room.
//!
//! A [`Machine`] is driven by [`Machine::handle`]: the caller passes an [`Event`] and the
//! current time, and gets back the [`Action`]s to carry out, in order. Time is a [`Duration`]
//! since any fixed origin the caller picks (its start `Instant`, say); the machine never reads
//! a clock. Between events the caller sleeps until [`Machine::next_deadline`] and then passes
//! [`Event::Timer`].
//!
//! Choices where keepalived and the RFCs leave room, all documented on the items concerned:
//! - a health failure or a failed address add means FAULT: priority 0 is sent and the
//!   addresses are removed, never a lowered priority, so a `nopreempt` peer takes over;
//! - a master hearing a lower priority sends an advert at once and re-announces its
//!   addresses, so a master that comes back from a freeze wins the clients' ARP caches back;
//! - `preempt_delay` opens a window, at start and at the first lower-priority advert, in which
//!   a lower-priority master is still accepted.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::packet::{Advert, AdvertInterval, Auth, Version};

/// The priority of the address owner, which may start as master at once.
pub const OWNER_PRIORITY: u8 = 255;

/// The state a virtual router starts in, keepalived's `state MASTER|BACKUP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitialState {
    /// Start as backup and wait a master-down interval for a master.
    #[default]
    Backup,
    /// With priority 255, become master at once. With any priority, preemption is forced on,
    /// as keepalived does ("nopreempt will not work with initial state MASTER").
    Master,
}

/// The configuration of one virtual router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The protocol version both ends speak.
    pub version: Version,
    /// The virtual router ID, 1 to 255.
    pub vrid: u8,
    /// 1 to 254, or 255 for the address owner.
    pub priority: u8,
    /// The advertisement interval: whole seconds up to 255 for v2, centiseconds up to 40.95 s
    /// for v3.
    pub advert_interval: Duration,
    /// This node's primary address on the interface: the advert source, and the tie-break
    /// between equal priorities (the higher address wins).
    pub primary_address: IpAddr,
    /// The virtual addresses, all of the primary address's family.
    pub addresses: Vec<IpAddr>,
    /// v2 authentication; [`Auth::None`] for v3.
    pub auth: Auth,
    /// Whether a higher-priority backup takes over from a lower-priority master
    /// (keepalived's `nopreempt` sets this to false).
    pub preempt: bool,
    /// How long a backup accepts a lower-priority master before preempting it; see
    /// [`Machine`] for when the delay starts.
    pub preempt_delay: Duration,
    /// When to send the second burst of gratuitous ARPs after becoming master; zero for none.
    pub garp_master_delay: Duration,
    /// Gratuitous ARPs (or unsolicited neighbour adverts) per burst.
    pub garp_master_repeat: u32,
    /// keepalived's `state`.
    pub initial_state: InitialState,
}

impl Config {
    /// A configuration with keepalived's defaults: version 2, priority 100, advert interval
    /// 1 s, no authentication, preemption on without delay, a second gratuitous ARP burst of
    /// 5 after 5 s, and initial state BACKUP.
    pub fn new(vrid: u8, primary_address: IpAddr, addresses: Vec<IpAddr>) -> Self {
        Config {
            version: Version::V2,
            vrid,
            priority: 100,
            advert_interval: Duration::from_secs(1),
            primary_address,
            addresses,
            auth: Auth::None,
            preempt: true,
            preempt_delay: Duration::ZERO,
            garp_master_delay: Duration::from_secs(5),
            garp_master_repeat: 5,
            initial_state: InitialState::Backup,
        }
    }
}

/// Why a [`Config`] cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// VRID 0 does not exist.
    #[error("virtual router ID must be 1 to 255")]
    VridZero,
    /// Priority 0 is reserved for a leaving master.
    #[error("priority must be 1 to 255")]
    PriorityZero,
    /// The interval cannot be carried by the version.
    #[error("advert interval {interval:?} cannot be sent in {version}")]
    Interval {
        /// The configured version.
        version: Version,
        /// The configured interval.
        interval: Duration,
    },
    /// No virtual address.
    #[error("no virtual address")]
    NoAddresses,
    /// IPv6 with version 2, or addresses of a family other than the primary address's.
    #[error("virtual address {0} does not match the version or the primary address's family")]
    AddressFamily(IpAddr),
    /// A password with version 3.
    #[error("VRRPv3 has no authentication")]
    AuthInV3,
}

/// A virtual router's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started, or shut down.
    Initialize,
    /// Listening to the master; takes over when it goes quiet.
    Backup,
    /// Holding the addresses and advertising.
    Master,
    /// Unhealthy: neither holds the addresses nor advertises, until health returns.
    Fault,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        })
    }
}

/// Why the state changed, for the log line of a [`Action::Transition`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// [`Event::Start`] of a backup.
    Started,
    /// [`Event::Start`] of the address owner with initial state MASTER.
    AddressOwner,
    /// No advert from a master for the master-down interval.
    MasterDown,
    /// The master said it was leaving (priority 0) and the skew time passed.
    MasterLeft,
    /// An advert with a higher priority, or an equal one from a higher address.
    Preempted {
        /// The new master.
        by: IpAddr,
        /// Its priority.
        priority: u8,
    },
    /// [`Event::HealthChanged`] reported unhealthy, with the caller's reason.
    Unhealthy(String),
    /// [`Event::VipAddFailed`], with the caller's reason.
    VipAddFailed(String),
    /// [`Event::HealthChanged`] reported healthy again.
    Recovered,
    /// [`Event::Shutdown`].
    Shutdown,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Started => f.write_str("started"),
            Reason::AddressOwner => f.write_str("address owner starting as master"),
            Reason::MasterDown => f.write_str("no advert from the master"),
            Reason::MasterLeft => f.write_str("the master sent priority 0"),
            Reason::Preempted { by, priority } => {
                write!(f, "advert from {by} with priority {priority}")
            }
            Reason::Unhealthy(reason) => write!(f, "unhealthy: {reason}"),
            Reason::VipAddFailed(reason) => {
                write!(f, "adding the virtual addresses failed: {reason}")
            }
            Reason::Recovered => f.write_str("healthy again"),
            Reason::Shutdown => f.write_str("shutting down"),
        }
    }
}

/// Something that happened to the virtual router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Join the virtual router. Only acts in [`State::Initialize`].
    Start,
    /// A decoded advert from `from` (the IP source), which arrived with TTL / hop limit 255.
    /// The machine checks VRID, version, authentication, (v2) interval and addresses itself,
    /// and counts what it ignores in [`Stats`].
    Advert {
        /// The IP source address of the advert.
        from: IpAddr,
        /// The advert.
        advert: Advert,
    },
    /// The time returned by [`Machine::next_deadline`] has come.
    Timer,
    /// The proxy's health, reported whenever it is checked (repeats are harmless). Unhealthy
    /// means FAULT; healthy leaves FAULT for BACKUP, which also retries after
    /// [`Event::VipAddFailed`].
    HealthChanged {
        /// Whether the proxy can serve.
        healthy: bool,
        /// Why, for the log.
        reason: String,
    },
    /// Carrying out [`Action::AddAddresses`] failed: FAULT, as for a health failure.
    VipAddFailed {
        /// Why, for the log.
        reason: String,
    },
    /// Leave the virtual router: a master sends priority 0 and removes the addresses.
    Shutdown,
}

/// What the caller must do, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The state changed; log it once, with the reason.
    Transition {
        /// The state left.
        from: State,
        /// The state entered.
        to: State,
        /// Why.
        reason: Reason,
    },
    /// Send an advert with this priority; [`Machine::advert`] builds it.
    SendAdvert {
        /// The priority to advertise: the configured one, or 0 when leaving.
        priority: u8,
    },
    /// Add the virtual addresses to the interface; report failure with
    /// [`Event::VipAddFailed`].
    AddAddresses,
    /// Remove the virtual addresses from the interface (absent ones are not an error).
    RemoveAddresses,
    /// Send one burst of `count` gratuitous ARPs (IPv4) or unsolicited neighbour adverts
    /// (IPv6) for every virtual address.
    Announce {
        /// Packets per address.
        count: u32,
    },
}

/// Counters the caller can expose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// State changes.
    pub transitions: u64,
    /// Adverts that passed the checks and were acted on.
    pub adverts_accepted: u64,
    /// Adverts with priority 0 accepted.
    pub priority_zero_received: u64,
    /// Adverts ignored for another VRID.
    pub ignored_vrid: u64,
    /// Adverts ignored for another version.
    pub ignored_version: u64,
    /// v2 adverts ignored for another authentication type or password.
    pub ignored_auth: u64,
    /// v2 adverts ignored for another advert interval.
    pub ignored_interval: u64,
    /// Adverts ignored for another set of virtual addresses (not from an address owner).
    pub ignored_addresses: u64,
    /// Lower-priority adverts a master answered with an advert and an announcement.
    pub lower_priority_answered: u64,
}

/// One virtual router.
///
/// **Timers.** `Skew_Time` is `(256 − priority) / 256` s in v2 and
/// `(256 − priority) × Master_Adver_Interval / 256` in v3, where v3 learns
/// `Master_Adver_Interval` from the master's adverts (v2 uses its own interval, which must
/// match). `Master_Down_Interval` is `3 × Master_Adver_Interval + Skew_Time`.
///
/// **Backup.** An accepted advert with priority 0 sets the master-down timer to `Skew_Time`.
/// One with a priority at least ours, or any priority when preemption is off or within the
/// preempt delay, restarts the master-down timer. A lower priority otherwise is ignored, so the
/// timer runs out and this node takes over. When the timer fires the node becomes master: it
/// sends an advert, adds the addresses and announces them.
///
/// **Preempt delay.** keepalived's `preempt_delay` is "seconds after startup or seeing a lower
/// priority master until preemption". Here the window opens at [`Event::Start`] (and on
/// recovery from FAULT), and again at the first lower-priority advert seen outside a window;
/// an advert with a priority at least ours closes it. Inside the window a lower-priority master
/// is accepted like any other.
///
/// **Master.** Sends an advert every advert interval. Priority 0 from another node: an advert
/// at once. A higher priority, or an equal priority from a higher address: back to BACKUP and
/// remove the addresses. A lower priority, or an equal one from a lower address: an advert at
/// once and a new announcement (with its second burst), as keepalived does.
///
/// **Announcements.** Becoming master announces at once and, when `garp_master_delay` is not
/// zero, once more after it.
#[derive(Debug, Clone)]
pub struct Machine {
    config: Config,
    interval: AdvertInterval,
    preempt: bool,
    state: State,
    /// The reason of the last unhealthy report, `None` while healthy.
    unhealthy: Option<String>,
    master_adver_interval: Duration,
    master_down_at: Option<Duration>,
    master_left: bool,
    advert_at: Option<Duration>,
    announce_at: Option<Duration>,
    preempt_until: Option<Duration>,
    master: Option<IpAddr>,
    stats: Stats,
}

impl Machine {
    /// A virtual router in [`State::Initialize`]; [`Event::Start`] sets it going.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        if config.vrid == 0 {
            return Err(ConfigError::VridZero);
        }
        if config.priority == 0 {
            return Err(ConfigError::PriorityZero);
        }
        let interval = AdvertInterval::from_duration(config.advert_interval)
            .filter(|interval| interval.fits(config.version))
            .ok_or(ConfigError::Interval {
                version: config.version,
                interval: config.advert_interval,
            })?;
        if config.addresses.is_empty() {
            return Err(ConfigError::NoAddresses);
        }
        let v6 = config.primary_address.is_ipv6();
        let family_ok = |address: &IpAddr| {
            address.is_ipv6() == v6 && !(address.is_ipv6() && config.version == Version::V2)
        };
        if let Some(address) = std::iter::once(&config.primary_address)
            .chain(&config.addresses)
            .find(|address| !family_ok(address))
        {
            return Err(ConfigError::AddressFamily(*address));
        }
        if config.version == Version::V3 && config.auth != Auth::None {
            return Err(ConfigError::AuthInV3);
        }
        Ok(Machine {
            preempt: config.preempt || config.initial_state == InitialState::Master,
            master_adver_interval: interval.as_duration(),
            interval,
            config,
            state: State::Initialize,
            unhealthy: None,
            master_down_at: None,
            master_left: false,
            advert_at: None,
            announce_at: None,
            preempt_until: None,
            master: None,
            stats: Stats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The master as last seen: this node's primary address while master, the source of the
    /// last accepted advert otherwise, `None` before any.
    pub fn master(&self) -> Option<IpAddr> {
        self.master
    }

    /// The priority this node stands with: the configured one, or 0 outside BACKUP and MASTER.
    pub fn effective_priority(&self) -> u8 {
        match self.state {
            State::Backup | State::Master => self.config.priority,
            State::Initialize | State::Fault => 0,
        }
    }

    /// Whether this node would preempt a lower-priority master (after any delay).
    pub fn preempts(&self) -> bool {
        self.preempt
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// `Master_Down_Interval`: three learned master intervals plus the skew time.
    pub fn master_down_interval(&self) -> Duration {
        self.master_adver_interval * 3 + self.skew_time()
    }

    /// `Skew_Time`, from this node's priority and (v3) the learned master interval.
    pub fn skew_time(&self) -> Duration {
        let share = 256 - u32::from(self.config.priority);
        match self.config.version {
            Version::V2 => Duration::from_secs(1) * share / 256,
            Version::V3 => self.master_adver_interval * share / 256,
        }
    }

    /// When the caller must pass [`Event::Timer`], if any timer runs.
    pub fn next_deadline(&self) -> Option<Duration> {
        [self.master_down_at, self.advert_at, self.announce_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// The advert this node sends with `priority`, for [`crate::packet::encode`].
    pub fn advert(&self, priority: u8) -> Advert {
        Advert {
            version: self.config.version,
            vrid: self.config.vrid,
            priority,
            interval: self.interval,
            addresses: self.config.addresses.clone(),
            auth: self.config.auth,
        }
    }

    /// Feeds `event`, which happened at `now`, and returns what to do, in order.
    pub fn handle(&mut self, event: Event, now: Duration) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            Event::Start => self.start(now, &mut actions),
            Event::Advert { from, advert } => {
                self.advert_received(from, &advert, now, &mut actions)
            }
            Event::Timer => self.timer(now, &mut actions),
            Event::HealthChanged { healthy: true, .. } => {
                self.unhealthy = None;
                if self.state == State::Fault {
                    self.enter_backup(now, Reason::Recovered, &mut actions);
                    self.preempt_until = Some(now + self.config.preempt_delay);
                }
            }
            Event::HealthChanged {
                healthy: false,
                reason,
            } => {
                self.unhealthy = Some(reason.clone());
                self.enter_fault(Reason::Unhealthy(reason), &mut actions);
            }
            Event::VipAddFailed { reason } => {
                if matches!(self.state, State::Backup | State::Master) {
                    self.enter_fault(Reason::VipAddFailed(reason), &mut actions);
                }
            }
            Event::Shutdown => self.shutdown(&mut actions),
        }
        actions
    }

    fn start(&mut self, now: Duration, actions: &mut Vec<Action>) {
        if self.state != State::Initialize {
            return;
        }
        // A previous run may have died holding the addresses; keepalived removes them too.
        actions.push(Action::RemoveAddresses);
        self.preempt_until = Some(now + self.config.preempt_delay);
        if let Some(reason) = &self.unhealthy {
            self.transition(State::Fault, Reason::Unhealthy(reason.clone()), actions);
        } else if self.config.initial_state == InitialState::Master
            && self.config.priority == OWNER_PRIORITY
        {
            self.enter_master(now, Reason::AddressOwner, actions);
        } else {
            self.enter_backup(now, Reason::Started, actions);
        }
    }

    fn advert_received(
        &mut self,
        from: IpAddr,
        advert: &Advert,
        now: Duration,
        actions: &mut Vec<Action>,
    ) {
        if !self.accept(advert) {
            return;
        }
        self.stats.adverts_accepted += 1;
        if advert.priority == 0 {
            self.stats.priority_zero_received += 1;
        }
        match self.state {
            State::Initialize => {}
            State::Fault => {
                if advert.priority != 0 {
                    self.master = Some(from);
                }
            }
            State::Backup => self.backup_advert(from, advert, now),
            State::Master => self.master_advert(from, advert, now, actions),
        }
    }

    /// Whether `advert` belongs to this virtual router; counts the reason if not.
    fn accept(&mut self, advert: &Advert) -> bool {
        let config = &self.config;
        let counter = if advert.vrid != config.vrid {
            &mut self.stats.ignored_vrid
        } else if advert.version != config.version {
            &mut self.stats.ignored_version
        } else if config.version == Version::V2 && advert.auth != config.auth {
            &mut self.stats.ignored_auth
        } else if config.version == Version::V2 && advert.interval != self.interval {
            &mut self.stats.ignored_interval
        } else if advert.priority != OWNER_PRIORITY
            && !same_addresses(&advert.addresses, &config.addresses)
        {
            &mut self.stats.ignored_addresses
        } else {
            return true;
        };
        *counter += 1;
        false
    }

    fn backup_advert(&mut self, from: IpAddr, advert: &Advert, now: Duration) {
        if advert.priority == 0 {
            self.master_down_at = Some(now + self.skew_time());
            self.master_left = true;
            return;
        }
        if advert.priority >= self.config.priority {
            self.preempt_until = None;
        } else if self.preempt {
            let window = *self
                .preempt_until
                .get_or_insert(now + self.config.preempt_delay);
            if now >= window {
                // A lower-priority master and nothing holds us back: let the timer run out.
                return;
            }
        }
        self.master = Some(from);
        self.learn_interval(advert);
        self.master_down_at = Some(now + self.master_down_interval());
        self.master_left = false;
    }

    fn master_advert(
        &mut self,
        from: IpAddr,
        advert: &Advert,
        now: Duration,
        actions: &mut Vec<Action>,
    ) {
        if advert.priority == 0 {
            actions.push(Action::SendAdvert {
                priority: self.config.priority,
            });
            self.advert_at = Some(now + self.interval.as_duration());
            return;
        }
        let theirs = (advert.priority, from);
        let ours = (self.config.priority, self.config.primary_address);
        if theirs > ours {
            self.learn_interval(advert);
            self.master = Some(from);
            let reason = Reason::Preempted {
                by: from,
                priority: advert.priority,
            };
            self.enter_backup(now, reason, actions);
            actions.push(Action::RemoveAddresses);
        } else {
            self.stats.lower_priority_answered += 1;
            actions.push(Action::SendAdvert {
                priority: self.config.priority,
            });
            self.advert_at = Some(now + self.interval.as_duration());
            self.announce(now, actions);
        }
    }

    fn timer(&mut self, now: Duration, actions: &mut Vec<Action>) {
        match self.state {
            State::Backup => {
                if self.master_down_at.is_some_and(|at| at <= now) {
                    let reason = if self.master_left {
                        Reason::MasterLeft
                    } else {
                        Reason::MasterDown
                    };
                    self.enter_master(now, reason, actions);
                }
            }
            State::Master => {
                if self.advert_at.is_some_and(|at| at <= now) {
                    actions.push(Action::SendAdvert {
                        priority: self.config.priority,
                    });
                    self.advert_at = Some(now + self.interval.as_duration());
                }
                if self.announce_at.is_some_and(|at| at <= now) {
                    actions.push(Action::Announce {
                        count: self.config.garp_master_repeat,
                    });
                    self.announce_at = None;
                }
            }
            State::Initialize | State::Fault => {}
        }
    }

    fn shutdown(&mut self, actions: &mut Vec<Action>) {
        match self.state {
            State::Initialize => return,
            State::Master => {
                actions.push(Action::SendAdvert { priority: 0 });
                actions.push(Action::RemoveAddresses);
            }
            State::Backup | State::Fault => {}
        }
        self.transition(State::Initialize, Reason::Shutdown, actions);
        self.master = None;
    }

    fn enter_backup(&mut self, now: Duration, reason: Reason, actions: &mut Vec<Action>) {
        self.transition(State::Backup, reason, actions);
        self.master_down_at = Some(now + self.master_down_interval());
        self.master_left = false;
    }

    fn enter_master(&mut self, now: Duration, reason: Reason, actions: &mut Vec<Action>) {
        self.transition(State::Master, reason, actions);
        self.master = Some(self.config.primary_address);
        self.master_adver_interval = self.interval.as_duration();
        actions.push(Action::SendAdvert {
            priority: self.config.priority,
        });
        actions.push(Action::AddAddresses);
        self.advert_at = Some(now + self.interval.as_duration());
        self.announce(now, actions);
    }

    fn enter_fault(&mut self, reason: Reason, actions: &mut Vec<Action>) {
        match self.state {
            State::Initialize | State::Fault => return,
            State::Master => {
                actions.push(Action::SendAdvert { priority: 0 });
                actions.push(Action::RemoveAddresses);
                self.master = None;
            }
            State::Backup => {}
        }
        self.transition(State::Fault, reason, actions);
    }

    /// Announces the addresses now and schedules the second burst.
    fn announce(&mut self, now: Duration, actions: &mut Vec<Action>) {
        actions.push(Action::Announce {
            count: self.config.garp_master_repeat,
        });
        self.announce_at =
            (!self.config.garp_master_delay.is_zero()).then(|| now + self.config.garp_master_delay);
    }

    /// v3 backups time the master by the interval it advertises.
    fn learn_interval(&mut self, advert: &Advert) {
        if self.config.version == Version::V3 {
            self.master_adver_interval = advert.interval.as_duration();
        }
    }

    /// Moves to `to`, clearing the timers of the state left, and reports it.
    fn transition(&mut self, to: State, reason: Reason, actions: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        self.master_down_at = None;
        self.advert_at = None;
        self.announce_at = None;
        self.stats.transitions += 1;
        actions.push(Action::Transition { from, to, reason });
    }
}

/// Whether two address lists hold the same addresses, in any order.
fn same_addresses(left: &[IpAddr], right: &[IpAddr]) -> bool {
    left.len() == right.len() && left.iter().all(|address| right.contains(address))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn config(priority: u8) -> Config {
        let mut config = Config::new(12, ip("10.213.7.1"), vec![ip("10.213.7.3")]);
        config.priority = priority;
        config.auth = Auth::password(b"secret12");
        config
    }

    fn started(config: Config) -> Machine {
        let mut machine = Machine::new(config).unwrap();
        machine.handle(Event::Start, Duration::ZERO);
        machine
    }

    /// A peer's advert event for `machine`'s virtual router.
    fn advert_from(machine: &Machine, from: &str, priority: u8) -> Event {
        Event::Advert {
            from: ip(from),
            advert: machine.advert(priority),
        }
    }

    fn transitions(actions: &[Action]) -> Vec<(State, State)> {
        actions
            .iter()
            .filter_map(|action| match action {
                Action::Transition { from, to, .. } => Some((*from, *to)),
                _ => None,
            })
            .collect()
    }

    /// Runs the timers up to `until`; returns the actions of each expiry with its time.
    fn run_until(machine: &mut Machine, until: Duration) -> Vec<(Duration, Action)> {
        let mut out = Vec::new();
        while let Some(at) = machine.next_deadline().filter(|at| *at <= until) {
            for action in machine.handle(Event::Timer, at) {
                out.push((at, action));
            }
        }
        out
    }

    /// Becomes master by timing out in backup, and returns the time it did.
    fn master_by_timeout(machine: &mut Machine) -> Duration {
        let at = machine.next_deadline().unwrap();
        machine.handle(Event::Timer, at);
        assert_eq!(machine.state(), State::Master);
        at
    }

    #[test]
    fn start_removes_stale_addresses_and_enters_backup() {
        let mut machine = Machine::new(config(100)).unwrap();
        assert_eq!(machine.state(), State::Initialize);
        assert_eq!(machine.next_deadline(), None);
        let actions = machine.handle(Event::Start, Duration::ZERO);
        assert_eq!(
            actions,
            vec![
                Action::RemoveAddresses,
                Action::Transition {
                    from: State::Initialize,
                    to: State::Backup,
                    reason: Reason::Started
                }
            ]
        );
        assert_eq!(machine.handle(Event::Start, SECOND), vec![]);
        assert_eq!(machine.effective_priority(), 100);
    }

    #[test]
    fn v2_master_down_interval_and_takeover() {
        let mut machine = started(config(100));
        // 3 × 1 s + (256 − 100) / 256 s.
        assert_eq!(
            machine.master_down_interval(),
            ms(3609) + Duration::from_micros(375)
        );
        assert_eq!(
            machine.next_deadline(),
            Some(ms(3609) + Duration::from_micros(375))
        );
        // keepalived's dump at priority 101: 3.605 s.
        assert_eq!(
            started(config(101)).master_down_interval(),
            ms(3605) + Duration::from_micros(468) + Duration::from_nanos(750)
        );
        let at = machine.next_deadline().unwrap();
        assert_eq!(
            machine.handle(Event::Timer, at - Duration::from_nanos(1)),
            vec![]
        );
        let actions = machine.handle(Event::Timer, at);
        assert_eq!(
            actions,
            vec![
                Action::Transition {
                    from: State::Backup,
                    to: State::Master,
                    reason: Reason::MasterDown
                },
                Action::SendAdvert { priority: 100 },
                Action::AddAddresses,
                Action::Announce { count: 5 },
            ]
        );
        assert_eq!(machine.master(), Some(ip("10.213.7.1")));
        assert_eq!(machine.stats().transitions, 2);
        // Then one advert per interval.
        let later = run_until(&mut machine, at + ms(3500));
        let adverts: Vec<Duration> = later
            .iter()
            .filter(|(_, action)| *action == Action::SendAdvert { priority: 100 })
            .map(|(time, _)| *time - at)
            .collect();
        assert_eq!(adverts, vec![SECOND, 2 * SECOND, 3 * SECOND]);
    }

    #[test]
    fn v3_skew_follows_the_learned_master_interval() {
        let mut config = config(100);
        config.version = Version::V3;
        config.auth = Auth::None;
        config.advert_interval = SECOND;
        let mut machine = started(config);
        assert_eq!(
            machine.master_down_interval(),
            ms(3609) + Duration::from_micros(375)
        );
        // The master advertises every 250 ms: 3 × 0.25 + 156 × 0.25 / 256.
        let mut advert = machine.advert(200);
        advert.interval = AdvertInterval::from_centis(25).unwrap();
        let event = Event::Advert {
            from: ip("10.213.7.2"),
            advert,
        };
        machine.handle(event, SECOND);
        assert_eq!(machine.skew_time(), Duration::from_nanos(152_343_750));
        assert_eq!(
            machine.master_down_interval(),
            ms(750) + Duration::from_nanos(152_343_750)
        );
        assert_eq!(
            machine.next_deadline(),
            Some(SECOND + machine.master_down_interval())
        );
        assert_eq!(machine.master(), Some(ip("10.213.7.2")));
        // Becoming master goes back to its own interval.
        master_by_timeout(&mut machine);
        assert_eq!(
            machine.master_down_interval(),
            ms(3609) + Duration::from_micros(375)
        );
    }

    #[test]
    fn v2_ignores_mismatched_adverts_and_counts_them() {
        let mut machine = started(config(100));
        let deadline = machine.next_deadline();
        let mut wrong_vrid = machine.advert(200);
        wrong_vrid.vrid = 13;
        let mut wrong_auth = machine.advert(200);
        wrong_auth.auth = Auth::password(b"secret13");
        let mut wrong_interval = machine.advert(200);
        wrong_interval.interval = AdvertInterval::from_secs(2).unwrap();
        let mut wrong_addresses = machine.advert(200);
        wrong_addresses.addresses = vec![ip("10.213.7.4")];
        let mut wrong_version = machine.advert(200);
        wrong_version.version = Version::V3;
        for advert in [
            wrong_vrid,
            wrong_auth,
            wrong_interval,
            wrong_addresses,
            wrong_version,
        ] {
            let event = Event::Advert {
                from: ip("10.213.7.2"),
                advert,
            };
            assert_eq!(machine.handle(event, SECOND), vec![]);
        }
        assert_eq!(machine.next_deadline(), deadline);
        let stats = machine.stats();
        assert_eq!(
            (
                stats.ignored_vrid,
                stats.ignored_auth,
                stats.ignored_interval
            ),
            (1, 1, 1)
        );
        assert_eq!((stats.ignored_addresses, stats.ignored_version), (1, 1));
        assert_eq!(stats.adverts_accepted, 0);
        // The address owner's advert is accepted whatever addresses it lists.
        let mut owner = machine.advert(255);
        owner.addresses = vec![ip("10.213.7.4")];
        machine.handle(
            Event::Advert {
                from: ip("10.213.7.2"),
                advert: owner,
            },
            SECOND,
        );
        assert_eq!(machine.stats().adverts_accepted, 1);
        assert_eq!(
            machine.next_deadline(),
            Some(SECOND + machine.master_down_interval())
        );
    }

    #[test]
    fn election_by_priority() {
        let mut low = started(config(100));
        let mut high = started(config(101));
        assert!(high.next_deadline() < low.next_deadline());
        // The higher one times out first; its advert holds the lower one in backup.
        let at = master_by_timeout(&mut high);
        let advert = advert_from(&low, "10.213.7.2", 101);
        assert_eq!(low.handle(advert, at), vec![]);
        assert_eq!(low.state(), State::Backup);
        assert_eq!(low.master(), Some(ip("10.213.7.2")));
        assert_eq!(low.next_deadline(), Some(at + low.master_down_interval()));
    }

    #[test]
    fn master_steps_down_for_a_higher_priority() {
        let mut machine = started(config(100));
        let at = master_by_timeout(&mut machine);
        let actions = machine.handle(advert_from(&machine, "10.213.7.2", 150), at + SECOND);
        assert_eq!(
            actions,
            vec![
                Action::Transition {
                    from: State::Master,
                    to: State::Backup,
                    reason: Reason::Preempted {
                        by: ip("10.213.7.2"),
                        priority: 150
                    }
                },
                Action::RemoveAddresses,
            ]
        );
        assert_eq!(machine.master(), Some(ip("10.213.7.2")));
        // The second announcement is cancelled with the rest of the master's timers.
        assert_eq!(
            machine.next_deadline(),
            Some(at + SECOND + machine.master_down_interval())
        );
    }

    #[test]
    fn equal_priority_tie_break_by_primary_address() {
        // Our primary address is 10.213.7.1: a higher address wins, a lower one loses.
        let mut machine = started(config(100));
        let at = master_by_timeout(&mut machine);
        let lower = machine.handle(advert_from(&machine, "10.213.7.0", 100), at);
        assert_eq!(machine.state(), State::Master);
        assert!(lower.contains(&Action::SendAdvert { priority: 100 }));
        let higher = machine.handle(advert_from(&machine, "10.213.7.2", 100), at);
        assert_eq!(transitions(&higher), vec![(State::Master, State::Backup)]);
        // In backup, an equal priority resets the timer whatever the address.
        let later = at + SECOND;
        machine.handle(advert_from(&machine, "10.213.7.0", 100), later);
        assert_eq!(
            machine.next_deadline(),
            Some(later + machine.master_down_interval())
        );
    }

    #[test]
    fn lower_priority_advert_makes_the_master_readvertise_and_announce() {
        // A master resuming from a freeze finds a lower-priority node took over.
        let mut config = config(101);
        config.garp_master_delay = Duration::ZERO;
        let mut machine = started(config);
        let at = master_by_timeout(&mut machine);
        let now = at + ms(300);
        let actions = machine.handle(advert_from(&machine, "10.213.7.2", 100), now);
        assert_eq!(
            actions,
            vec![
                Action::SendAdvert { priority: 101 },
                Action::Announce { count: 5 }
            ]
        );
        assert_eq!(machine.state(), State::Master);
        assert_eq!(machine.stats().lower_priority_answered, 1);
        // The advert timer restarts from the forced advert.
        assert_eq!(machine.next_deadline(), Some(now + SECOND));
    }

    #[test]
    fn priority_zero_takeover_after_skew() {
        let mut machine = started(config(101));
        machine.handle(advert_from(&machine, "10.213.7.2", 150), SECOND);
        let now = 2 * SECOND;
        assert_eq!(
            machine.handle(advert_from(&machine, "10.213.7.2", 0), now),
            vec![]
        );
        // (256 − 101) / 256 s: the 0.61 s observed with keepalived.
        let skew = Duration::from_nanos(605_468_750);
        assert_eq!(machine.next_deadline(), Some(now + skew));
        let actions = machine.handle(Event::Timer, now + skew);
        assert_eq!(
            actions.first(),
            Some(&Action::Transition {
                from: State::Backup,
                to: State::Master,
                reason: Reason::MasterLeft
            })
        );
        assert_eq!(machine.stats().priority_zero_received, 1);
    }

    #[test]
    fn master_answers_priority_zero_at_once() {
        let mut machine = started(config(100));
        let at = master_by_timeout(&mut machine);
        let now = at + ms(400);
        let actions = machine.handle(advert_from(&machine, "10.213.7.2", 0), now);
        assert_eq!(actions, vec![Action::SendAdvert { priority: 100 }]);
        assert_eq!(machine.state(), State::Master);
    }

    #[test]
    fn preempt_takes_over_from_a_lower_priority_master() {
        let mut machine = started(config(150));
        let deadline = machine.next_deadline();
        for second in 1..10 {
            let now = second * SECOND;
            machine.handle(advert_from(&machine, "10.213.7.2", 100), now);
        }
        // The lower-priority adverts never reset the timer.
        assert_eq!(machine.next_deadline(), deadline);
        master_by_timeout(&mut machine);
    }

    #[test]
    fn nopreempt_holds_behind_a_lower_priority_master() {
        let mut config = config(150);
        config.preempt = false;
        let mut machine = started(config);
        assert!(!machine.preempts());
        for second in 1..=10 {
            let now = second * SECOND;
            machine.handle(advert_from(&machine, "10.213.7.2", 100), now);
            assert!(run_until(&mut machine, now + ms(999)).is_empty());
        }
        assert_eq!(machine.state(), State::Backup);
        assert_eq!(machine.master(), Some(ip("10.213.7.2")));
    }

    #[test]
    fn initial_state_master_clears_nopreempt() {
        let mut config = config(150);
        config.preempt = false;
        config.initial_state = InitialState::Master;
        let mut machine = started(config);
        assert!(machine.preempts());
        // Not the owner: it still starts as backup.
        assert_eq!(machine.state(), State::Backup);
        machine.handle(advert_from(&machine, "10.213.7.2", 100), SECOND);
        assert_eq!(
            machine.next_deadline(),
            Some(machine.master_down_interval())
        );
    }

    #[test]
    fn address_owner_with_initial_master_starts_as_master() {
        let mut config = config(255);
        config.initial_state = InitialState::Master;
        let mut machine = Machine::new(config).unwrap();
        let actions = machine.handle(Event::Start, Duration::ZERO);
        assert_eq!(
            actions,
            vec![
                Action::RemoveAddresses,
                Action::Transition {
                    from: State::Initialize,
                    to: State::Master,
                    reason: Reason::AddressOwner
                },
                Action::SendAdvert { priority: 255 },
                Action::AddAddresses,
                Action::Announce { count: 5 },
            ]
        );
        // The owner with initial state BACKUP waits like anyone else, with a short skew.
        let owner_backup = started(self::config(255));
        assert_eq!(owner_backup.state(), State::Backup);
        assert_eq!(owner_backup.skew_time(), Duration::from_nanos(3_906_250));
    }

    #[test]
    fn preempt_delay_accepts_a_lower_master_until_the_delay_after_start() {
        let mut config = config(150);
        config.preempt_delay = 5 * SECOND;
        let mut machine = started(config);
        // Within 5 s of start a lower-priority master holds this node in backup.
        for second in 1..5 {
            let now = second * SECOND;
            machine.handle(advert_from(&machine, "10.213.7.2", 100), now);
            assert_eq!(
                machine.next_deadline(),
                Some(now + machine.master_down_interval())
            );
        }
        // From then on its adverts are ignored and the master-down timer runs out.
        for second in 5..8 {
            machine.handle(advert_from(&machine, "10.213.7.2", 100), second * SECOND);
        }
        assert_eq!(
            machine.next_deadline(),
            Some(4 * SECOND + machine.master_down_interval())
        );
        let changes = run_until(&mut machine, 9 * SECOND);
        assert!(changes.iter().any(|(_, action)| matches!(
            action,
            Action::Transition {
                to: State::Master,
                ..
            }
        )));
    }

    #[test]
    fn preempt_delay_restarts_at_a_new_lower_master() {
        let mut config = config(150);
        config.preempt_delay = 5 * SECOND;
        let mut machine = started(config);
        // A higher-priority master closes the window opened at start.
        machine.handle(advert_from(&machine, "10.213.7.2", 200), SECOND);
        // Ten seconds later a lower-priority master appears: it is accepted for 5 s.
        let first = 11 * SECOND;
        machine.handle(advert_from(&machine, "10.213.7.4", 100), first);
        let held = first + 4 * SECOND;
        machine.handle(advert_from(&machine, "10.213.7.4", 100), held);
        assert_eq!(
            machine.next_deadline(),
            Some(held + machine.master_down_interval())
        );
        machine.handle(advert_from(&machine, "10.213.7.4", 100), first + 5 * SECOND);
        assert_eq!(
            machine.next_deadline(),
            Some(held + machine.master_down_interval())
        );
    }

    #[test]
    fn health_fault_from_master_sends_priority_zero_and_recovers_to_backup() {
        let mut machine = started(config(100));
        let at = master_by_timeout(&mut machine);
        let reason = String::from("listener down");
        let actions = machine.handle(
            Event::HealthChanged {
                healthy: false,
                reason: reason.clone(),
            },
            at + SECOND,
        );
        assert_eq!(
            actions,
            vec![
                Action::SendAdvert { priority: 0 },
                Action::RemoveAddresses,
                Action::Transition {
                    from: State::Master,
                    to: State::Fault,
                    reason: Reason::Unhealthy(reason.clone())
                },
            ]
        );
        assert_eq!(machine.effective_priority(), 0);
        assert_eq!(machine.next_deadline(), None);
        assert_eq!(machine.master(), None);
        // Fault never advertises, and repeated reports change nothing.
        let unhealthy = Event::HealthChanged {
            healthy: false,
            reason,
        };
        assert_eq!(machine.handle(unhealthy, at + 2 * SECOND), vec![]);
        assert_eq!(
            machine.handle(advert_from(&machine, "10.213.7.2", 50), at + 2 * SECOND),
            vec![]
        );
        assert_eq!(machine.master(), Some(ip("10.213.7.2")));
        let healthy = Event::HealthChanged {
            healthy: true,
            reason: String::from("ok"),
        };
        let now = at + 3 * SECOND;
        let actions = machine.handle(healthy.clone(), now);
        assert_eq!(
            actions,
            vec![Action::Transition {
                from: State::Fault,
                to: State::Backup,
                reason: Reason::Recovered
            }]
        );
        assert_eq!(
            machine.next_deadline(),
            Some(now + machine.master_down_interval())
        );
        assert_eq!(machine.handle(healthy, now), vec![]);
    }

    #[test]
    fn health_fault_from_backup_sends_nothing() {
        let mut machine = started(config(100));
        let event = Event::HealthChanged {
            healthy: false,
            reason: String::from("shards unreachable"),
        };
        let actions = machine.handle(event, SECOND);
        assert_eq!(transitions(&actions), vec![(State::Backup, State::Fault)]);
        assert_eq!(actions.len(), 1);
    }

    #[test]
    fn unhealthy_before_start_starts_in_fault() {
        let mut machine = Machine::new(config(100)).unwrap();
        let event = Event::HealthChanged {
            healthy: false,
            reason: String::from("no listener"),
        };
        assert_eq!(machine.handle(event, Duration::ZERO), vec![]);
        let actions = machine.handle(Event::Start, Duration::ZERO);
        assert_eq!(
            actions.last(),
            Some(&Action::Transition {
                from: State::Initialize,
                to: State::Fault,
                reason: Reason::Unhealthy(String::from("no listener"))
            })
        );
        assert_eq!(machine.next_deadline(), None);
    }

    #[test]
    fn vip_add_failure_is_a_fault() {
        let mut machine = started(config(100));
        let at = master_by_timeout(&mut machine);
        let event = Event::VipAddFailed {
            reason: String::from("Operation not permitted"),
        };
        let actions = machine.handle(event, at);
        assert_eq!(
            actions,
            vec![
                Action::SendAdvert { priority: 0 },
                Action::RemoveAddresses,
                Action::Transition {
                    from: State::Master,
                    to: State::Fault,
                    reason: Reason::VipAddFailed(String::from("Operation not permitted"))
                },
            ]
        );
        // A healthy report retries through BACKUP.
        let healthy = Event::HealthChanged {
            healthy: true,
            reason: String::from("ok"),
        };
        machine.handle(healthy, at + SECOND);
        assert_eq!(machine.state(), State::Backup);
    }

    #[test]
    fn shutdown_of_a_master_sends_priority_zero_then_removes_the_addresses() {
        let mut machine = started(config(100));
        let at = master_by_timeout(&mut machine);
        let actions = machine.handle(Event::Shutdown, at + ms(10));
        assert_eq!(
            actions,
            vec![
                Action::SendAdvert { priority: 0 },
                Action::RemoveAddresses,
                Action::Transition {
                    from: State::Master,
                    to: State::Initialize,
                    reason: Reason::Shutdown
                },
            ]
        );
        assert_eq!(machine.next_deadline(), None);
        assert_eq!(machine.handle(Event::Shutdown, at + SECOND), vec![]);
        // A backup just leaves.
        let mut backup = started(config(100));
        let actions = backup.handle(Event::Shutdown, SECOND);
        assert_eq!(
            transitions(&actions),
            vec![(State::Backup, State::Initialize)]
        );
        assert_eq!(actions.len(), 1);
    }

    #[test]
    fn second_announcement_after_garp_master_delay() {
        let mut config = config(100);
        config.garp_master_delay = 5 * SECOND;
        config.garp_master_repeat = 3;
        let mut machine = started(config);
        let at = master_by_timeout(&mut machine);
        let announces: Vec<Duration> = run_until(&mut machine, at + 20 * SECOND)
            .into_iter()
            .filter(|(_, action)| *action == Action::Announce { count: 3 })
            .map(|(time, _)| time - at)
            .collect();
        assert_eq!(announces, vec![5 * SECOND]);
    }

    #[test]
    fn no_second_announcement_when_the_delay_is_zero() {
        let mut config = config(100);
        config.garp_master_delay = Duration::ZERO;
        let mut machine = started(config);
        let at = master_by_timeout(&mut machine);
        let later = run_until(&mut machine, at + 20 * SECOND);
        assert!(
            later
                .iter()
                .all(|(_, action)| matches!(action, Action::SendAdvert { .. }))
        );
    }

    #[test]
    fn config_errors() {
        let check = |edit: fn(&mut Config)| {
            let mut config = config(100);
            edit(&mut config);
            Machine::new(config).err()
        };
        assert_eq!(check(|c| c.vrid = 0), Some(ConfigError::VridZero));
        assert_eq!(check(|c| c.priority = 0), Some(ConfigError::PriorityZero));
        assert!(matches!(
            check(|c| c.advert_interval = Duration::from_millis(500)),
            Some(ConfigError::Interval {
                version: Version::V2,
                ..
            })
        ));
        assert_eq!(
            check(|c| c.addresses.clear()),
            Some(ConfigError::NoAddresses)
        );
        assert_eq!(
            check(|c| c.addresses.push("fd00::1".parse().unwrap())),
            Some(ConfigError::AddressFamily("fd00::1".parse().unwrap()))
        );
        assert_eq!(
            check(|c| c.version = Version::V3),
            Some(ConfigError::AuthInV3)
        );
        let v3_quarter = check(|c| {
            c.version = Version::V3;
            c.auth = Auth::None;
            c.advert_interval = Duration::from_millis(250);
        });
        assert_eq!(v3_quarter, None);
        let v6_in_v2 = check(|c| {
            c.primary_address = "fe80::1".parse().unwrap();
            c.addresses = vec!["fd00::1".parse().unwrap()];
        });
        assert_eq!(
            v6_in_v2,
            Some(ConfigError::AddressFamily("fe80::1".parse().unwrap()))
        );
    }

    #[test]
    fn v3_ipv6_machine_builds_encodable_adverts() {
        let mut config = Config::new(36, ip("fe80::1"), vec![ip("fd00:213:21::36")]);
        config.version = Version::V3;
        config.priority = 200;
        let machine = Machine::new(config).unwrap();
        let mut out = Vec::new();
        let dst = IpAddr::V6(crate::packet::MULTICAST_V6);
        crate::packet::encode(&machine.advert(200), ip("fe80::1"), dst, &mut out).unwrap();
        let decoded = crate::packet::decode(&out, Version::V3, ip("fe80::1"), dst).unwrap();
        assert_eq!(decoded, machine.advert(200));
    }

    #[test]
    fn transitions_read_well_in_a_log() {
        let reason = Reason::Preempted {
            by: ip("10.213.7.2"),
            priority: 150,
        };
        assert_eq!(
            format!("{} -> {}: {reason}", State::Master, State::Backup),
            "MASTER -> BACKUP: advert from 10.213.7.2 with priority 150"
        );
    }
}
