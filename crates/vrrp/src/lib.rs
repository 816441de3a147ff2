//! VRRP for rampart: the advertisement codec and the state machine of VRRP version 2
//! (RFC 3768) and version 3 (RFC 5798), wire-compatible with keepalived 2.2, so a rampart
//! node and a keepalived node can share a virtual IP.
//!
//! Pure logic: no sockets, no netlink, no ARP and no clock. [`packet`] turns adverts into
//! bytes and back, [`machine`] decides what a virtual router does as a function of its state,
//! an event and the time the caller passes in, and answers with [`Action`]s. The binary owns
//! the raw socket, adds and removes the addresses with netlink, sends gratuitous ARP or
//! unsolicited neighbour adverts, and feeds the machine its events and timer expiries:
//!
//! - once: [`Machine::new`], then [`Event::Start`];
//! - for each datagram read from the raw socket: [`parse_ipv4`] (IPv4), drop it unless the
//!   TTL / hop limit is [`packet::VRRP_TTL`], [`decode`] it, and pass [`Event::Advert`];
//! - when [`Machine::next_deadline`] comes: [`Event::Timer`];
//! - whenever the proxy's health is checked: [`Event::HealthChanged`]; when adding the
//!   addresses fails: [`Event::VipAddFailed`]; on exit: [`Event::Shutdown`];
//! - after each, carry out the returned actions in order, building each advert with
//!   [`Machine::advert`] and [`encode`].
//!
//! ```
//! use std::time::Duration;
//! use rampart_vrrp::{Action, Config, Event, Machine, State, Version, decode, encode};
//!
//! let primary = "10.213.7.1".parse().unwrap();
//! let group = rampart_vrrp::packet::MULTICAST_V4.into();
//! let mut machine = Machine::new(Config::new(12, primary, vec!["10.213.7.3".parse().unwrap()]))?;
//! machine.handle(Event::Start, Duration::ZERO);
//!
//! // No master is heard: at the deadline this node takes over.
//! let deadline = machine.next_deadline().unwrap();
//! let mut wire = Vec::new();
//! for action in machine.handle(Event::Timer, deadline) {
//!     match action {
//!         Action::SendAdvert { priority } => encode(&machine.advert(priority), primary, group, &mut wire)?,
//!         Action::Transition { from, to, reason } => println!("{from} -> {to}: {reason}"),
//!         Action::AddAddresses | Action::RemoveAddresses | Action::Announce { .. } => {}
//!     }
//! }
//! assert_eq!(machine.state(), State::Master);
//! assert_eq!(decode(&wire, Version::V2, primary, group)?.priority, 100);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// Nothing a client, a config file or a peer sends may panic the process: every index, unwrap
// and panic in code that ships is a compile error (tests are free to use them).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unreachable))]
#![cfg_attr(not(test), deny(clippy::todo, clippy::unimplemented))]

pub mod machine;
pub mod packet;

pub use machine::{
    Action, Config, ConfigError, Event, InitialState, Machine, Reason, State, Stats,
};
pub use packet::{
    Advert, AdvertInterval, Auth, DatagramError, EncodeError, Ipv4Datagram, PacketError, Version,
    decode, encode, parse_ipv4,
};
