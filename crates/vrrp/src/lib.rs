//! VRRP for rampart: the advertisement codec and the state machine of VRRP version 2
//! (RFC 3768) and version 3 (RFC 5798), wire-compatible with keepalived 2.2, so a rampart
//! node and a keepalived node can share a virtual IP.
//!
//! Pure logic: no sockets, no netlink, no ARP and no clock. [`packet`] turns adverts into
//! bytes and back, [`machine`] decides what a virtual router does as a function of its state,
//! an event and the time the caller passes in, and answers with [`Action`]s. The binary owns
//! the raw socket, adds and removes the addresses with netlink, sends gratuitous ARP or
//! unsolicited neighbour adverts, and feeds the machine its events and timer expiries.

pub mod machine;
pub mod packet;

pub use machine::{Action, Config, ConfigError, Event, InitialState, Machine, Reason, State};
pub use packet::{Advert, AdvertInterval, Auth, Version, decode, encode, parse_ipv4};
