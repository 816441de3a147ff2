//! The validated VRRP model read from a keepalived.conf: what rampart's VRRP speaker runs. Every
//! keepalived default is already applied, including the ones that depend on each other
//! (priority from the start state, start state from the priority).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::error::Warning;

/// A whole keepalived.conf, with its includes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpConfig {
    pub file: PathBuf,
    /// `router_id` from `global_defs`, for logging.
    pub router_id: Option<String>,
    /// In file order.
    pub instances: Vec<VrrpInstance>,
    /// What keepalived would do that rampart does not, in file order.
    pub warnings: Vec<Warning>,
}

/// One `vrrp_instance` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpInstance {
    pub name: String,
    /// The file (main or included) and line of `vrrp_instance NAME`.
    pub file: PathBuf,
    pub line: usize,
    /// `state`; without it, MASTER when the priority is 255 and BACKUP otherwise.
    pub state: StartState,
    pub interface: String,
    /// `virtual_router_id`, 1 to 255.
    pub vrid: u8,
    /// `priority`, 1 to 255; without it, 255 with `state MASTER` and 100 otherwise.
    pub priority: u8,
    /// `advert_int` in centiseconds: whole seconds for version 2 (100 to 25500), 1 to 4095 for
    /// version 3; default 100.
    pub advert_int_centis: u16,
    /// False with `nopreempt` (unless keepalived would clear it: see `nopreempt_cleared`).
    pub preempt: bool,
    /// `preempt_delay`, default 0.
    pub preempt_delay: Duration,
    /// `nopreempt` was given with a start state of MASTER (or priority 255), where keepalived
    /// logs "nopreempt will not work with initial state MASTER - clearing" and preempts; so
    /// does rampart, and `preempt` is true.
    pub nopreempt_cleared: bool,
    /// `virtual_ipaddress`, in file order; never empty, all of one address family.
    pub virtual_addresses: Vec<VirtualAddress>,
    /// `authentication { auth_type PASS; auth_pass ... }`, version 2 only.
    pub auth: Option<AuthPassword>,
    /// `unicast_src_ip` (or keepalived's synonym `mcast_src_ip`): the source of adverts.
    pub unicast_src_ip: Option<IpAddr>,
    /// `unicast_peer`: with peers, adverts go to each of them instead of the multicast group.
    pub unicast_peers: Vec<IpAddr>,
    /// `garp_master_delay` (or global `vrrp_garp_master_delay`), default 5 s: when to repeat
    /// the gratuitous ARPs after becoming master; 0 means no repeat.
    pub garp_master_delay: Duration,
    /// `garp_master_repeat` (or global `vrrp_garp_master_repeat`), default 5: gratuitous ARPs
    /// per burst.
    pub garp_master_repeat: u32,
    /// `version` (or global `vrrp_version`), default 2.
    pub version: VrrpVersion,
}

impl VrrpInstance {
    /// The advertisement interval.
    pub fn advert_interval(&self) -> Duration {
        Duration::from_millis(u64::from(self.advert_int_centis) * 10)
    }
}

/// The state an instance starts in (after Initialize).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartState {
    Master,
    Backup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpVersion {
    /// RFC 3768.
    V2,
    /// RFC 5798.
    V3,
}

/// One `virtual_ipaddress` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualAddress {
    pub addr: IpAddr,
    /// The `/PREFIX` given, or 32 (IPv4) and 128 (IPv6).
    pub prefix_len: u8,
}

/// A VRRPv2 simple-authentication password: the first 8 bytes of `auth_pass`, NUL-padded, as
/// it goes on the wire. Debug does not print it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuthPassword([u8; 8]);

impl AuthPassword {
    /// Keeps the first 8 bytes of `secret`, as keepalived does.
    pub(crate) fn truncated(secret: &str) -> AuthPassword {
        let mut bytes = [0; 8];
        for (byte, value) in bytes.iter_mut().zip(secret.bytes()) {
            *byte = value;
        }
        AuthPassword(bytes)
    }

    /// The 8 bytes of the advert's authentication data.
    pub fn wire_bytes(&self) -> [u8; 8] {
        self.0
    }
}

impl fmt::Debug for AuthPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthPassword(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_truncated_padded_and_redacted() {
        let password = AuthPassword::truncated("secret123456");
        assert_eq!(&password.wire_bytes(), b"secret12");
        assert_eq!(
            &AuthPassword::truncated("abc").wire_bytes(),
            b"abc\0\0\0\0\0"
        );
        let debug = format!("{password:?}");
        assert_eq!(debug, "AuthPassword(<redacted>)");
        assert!(!format!("{:?}", Some(password)).contains("secret"));
    }
}
