//! One `vrrp_instance NAME { ... }` block: which keywords rampart runs, which it ignores with a
//! warning, and which it refuses; then keepalived's defaults and consistency rules, applied
//! once the global settings are known (keepalived also completes an instance after reading the
//! whole file, so `global_defs` may come after it).

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use super::error::{Fault, KeepalivedErrorKind, Note, Pos};
use super::model::{AuthPassword, StartState, VirtualAddress, VrrpInstance, VrrpVersion};
use super::tree::{Block, Statement, Word};
use super::values::{self, Seen};

const CONTEXT: &str = "a vrrp_instance";

const EXPECTED: &str = "state, interface, virtual_router_id, priority, advert_int, nopreempt, \
                        preempt_delay, virtual_ipaddress, authentication, unicast_src_ip, \
                        unicast_peer, garp_master_delay, garp_master_repeat or version \
                        (track_script, track_interface, notify scripts, smtp_alert and \
                        dont_track_primary are ignored with a warning)";

/// Why rampart refuses an instance keyword that keepalived knows.
fn refusal(keyword: &str) -> Option<&'static str> {
    let reason = match keyword {
        "vrrp_version" => {
            "inside a vrrp_instance the keyword is \"version\" (keepalived rejects vrrp_version \
             here too)"
        }
        "virtual_ipaddress_excluded"
        | "virtual_routes"
        | "virtual_rules"
        | "promote_secondaries" => {
            "rampart adds and removes only the advertised virtual addresses; list them in \
             virtual_ipaddress"
        }
        "use_vmac" | "use_vmac_addr" | "vmac_xmit_base" | "use_ipvlan" | "native_ipv6" | "vrf" => {
            "rampart puts the virtual addresses on the interface itself, with the interface's \
             own MAC address"
        }
        "track_file" | "track_process" | "track_bfd" => {
            "rampart's own health check of the proxy replaces keepalived's trackers"
        }
        "mcast_dst_ip"
        | "unicast_ttl"
        | "check_unicast_src"
        | "track_src_ip"
        | "unicast_fault_no_peer"
        | "old_unicast_checksum"
        | "down_timer_adverts"
        | "lower_prio_no_advert"
        | "higher_prio_send_advert"
        | "garp_lower_prio_delay"
        | "garp_lower_prio_repeat"
        | "garp_master_refresh"
        | "garp_master_refresh_repeat"
        | "garp_extra_if"
        | "accept"
        | "no_accept"
        | "strict_mode"
        | "skip_check_adv_addr" => {
            "it changes VRRP behaviour that rampart's speaker does not implement"
        }
        "debug" | "kernel_rx_buf_size" | "linkbeat_use_polling" | "notify_priority_changes" => {
            "rampart has no equivalent; remove it"
        }
        _ => return None,
    };
    Some(reason)
}

/// What rampart does instead of an instance keyword it ignores.
fn ignored(keyword: &str) -> Option<&'static str> {
    let instead = match keyword {
        "track_script" => {
            "rampart checks the proxy's health itself and, when it fails, goes to FAULT \
             (priority 0, virtual addresses released) instead of adjusting the priority"
        }
        "track_interface" => "rampart tracks the link of the instance's own interface only",
        "notify"
        | "notify_master"
        | "notify_backup"
        | "notify_fault"
        | "notify_stop"
        | "notify_master_rx_lower_pri" => {
            "rampart runs no notify scripts; it logs every state change"
        }
        "smtp_alert" => "rampart sends no e-mail",
        "dont_track_primary" => "rampart goes to FAULT when the instance's interface goes down",
        _ => return None,
    };
    Some(instead)
}

/// The settings from `global_defs` that instances inherit.
#[derive(Debug, Default)]
pub(crate) struct Globals {
    pub version: Option<VrrpVersion>,
    pub garp_master_delay: Option<Duration>,
    pub garp_master_repeat: Option<u32>,
}

/// A vrrp_instance as written, before defaults and cross-keyword checks.
#[derive(Debug)]
pub(crate) struct Draft {
    pub name: String,
    pub pos: Pos,
    state: Option<StartState>,
    interface: Option<String>,
    vrid: Option<u8>,
    priority: Option<u8>,
    /// The value in microseconds, and the word, to check against the version later.
    advert_int: Option<(u64, Word)>,
    nopreempt: bool,
    preempt: bool,
    preempt_delay: Option<Duration>,
    /// Each address with its entry's first word and its `dev`, if any.
    vips: Vec<(VirtualAddress, Word, Option<Word>)>,
    vip_block: Option<Pos>,
    auth: Option<(AuthPassword, Pos)>,
    src_ip: Option<(IpAddr, Word)>,
    peers: Vec<(IpAddr, Word)>,
    garp_master_delay: Option<Duration>,
    garp_master_repeat: Option<u32>,
    version: Option<VrrpVersion>,
}

/// Reads the block of `vrrp_instance NAME`.
pub(crate) fn read(statement: &Statement, notes: &mut Vec<Note>) -> Result<Draft, Fault> {
    let name = match statement.values.first() {
        Some(name) => name.text.clone(),
        None => {
            return Err(Fault::keyword(
                statement.keyword.pos,
                "vrrp_instance",
                KeepalivedErrorKind::InstanceName,
            ));
        }
    };
    values::no_more(statement, 1, "one name, then '{'")?;
    let block = values::block(statement)?;
    let mut draft = Draft {
        name,
        pos: statement.keyword.pos,
        state: None,
        interface: None,
        vrid: None,
        priority: None,
        advert_int: None,
        nopreempt: false,
        preempt: false,
        preempt_delay: None,
        vips: Vec::new(),
        vip_block: None,
        auth: None,
        src_ip: None,
        peers: Vec::new(),
        garp_master_delay: None,
        garp_master_repeat: None,
        version: None,
    };
    let mut seen = Seen::default();
    for statement in &block.body {
        draft.keyword(statement, &mut seen, notes)?;
    }
    Ok(draft)
}

fn byte(number: u32) -> u8 {
    u8::try_from(number).unwrap_or(u8::MAX)
}

impl Draft {
    fn keyword(
        &mut self,
        statement: &Statement,
        seen: &mut Seen,
        notes: &mut Vec<Note>,
    ) -> Result<(), Fault> {
        let keyword = statement.keyword.text.as_str();
        if let Some(instead) = ignored(keyword) {
            if matches!(keyword, "track_script" | "track_interface") {
                values::block(statement)?;
            }
            notes.push(Note::new(
                statement.keyword.pos,
                keyword,
                format!("{keyword:?} is ignored: {instead}"),
            ));
            return Ok(());
        }
        if let Some(reason) = refusal(keyword) {
            return Err(Fault::keyword(
                statement.keyword.pos,
                keyword,
                KeepalivedErrorKind::Unsupported {
                    keyword: keyword.to_owned(),
                    context: CONTEXT,
                    reason,
                },
            ));
        }
        // unicast_src_ip and mcast_src_ip set the same thing.
        if keyword == "mcast_src_ip" {
            let alias = Statement {
                keyword: Word {
                    text: "unicast_src_ip".to_owned(),
                    pos: statement.keyword.pos,
                },
                values: Vec::new(),
                block: None,
            };
            seen.once(&alias, CONTEXT)?;
        } else {
            seen.once(statement, CONTEXT)?;
        }
        match keyword {
            "state" => {
                let word = values::single(statement, "MASTER or BACKUP")?;
                self.state = Some(match word.text.as_str() {
                    "MASTER" => StartState::Master,
                    "BACKUP" => StartState::Backup,
                    other => {
                        return Err(Fault::keyword(
                            word.pos,
                            keyword,
                            KeepalivedErrorKind::InvalidState {
                                value: other.to_owned(),
                            },
                        ));
                    }
                });
            }
            "interface" => {
                let word = values::single(statement, "the name of a network interface")?;
                let valid = (1..=15).contains(&word.text.len())
                    && !matches!(word.text.as_str(), "." | "..")
                    && !word.text.contains(['/', ':'])
                    && !word.text.contains(char::is_whitespace);
                if !valid {
                    return Err(Fault::keyword(
                        word.pos,
                        keyword,
                        KeepalivedErrorKind::InvalidInterface {
                            value: word.text.clone(),
                        },
                    ));
                }
                self.interface = Some(word.text.clone());
            }
            "virtual_router_id" => {
                let vrid = values::integer(statement, 1..=255, "an integer from 1 to 255")?;
                self.vrid = Some(byte(vrid));
            }
            "priority" => {
                let priority = values::integer(statement, 1..=255, "an integer from 1 to 255")?;
                self.priority = Some(byte(priority));
            }
            "advert_int" => {
                let expected = "seconds, such as 1 (or 0.25 with version 3)";
                let (micros, word) = values::seconds(statement, expected)?;
                self.advert_int = Some((micros, word.clone()));
            }
            "nopreempt" => {
                values::flag(statement)?;
                self.nopreempt = true;
            }
            "preempt" => {
                values::flag(statement)?;
                self.preempt = true;
            }
            "preempt_delay" => {
                let expected = "seconds from 0 to 1000, such as 30 or 4.5";
                let (micros, word) = values::seconds(statement, expected)?;
                if micros > 1_000_000_000 {
                    return Err(Fault::keyword(
                        word.pos,
                        keyword,
                        KeepalivedErrorKind::OutOfRange {
                            keyword: keyword.to_owned(),
                            value: word.text.clone(),
                            expected,
                        },
                    ));
                }
                self.preempt_delay = Some(Duration::from_micros(micros));
            }
            "virtual_ipaddress" => self.virtual_addresses(statement, notes)?,
            "authentication" => self.authentication(statement, notes)?,
            "unicast_src_ip" | "mcast_src_ip" => {
                let word = values::single(statement, "an IP address")?;
                self.src_ip = Some((values::address(statement, word)?, word.clone()));
            }
            "unicast_peer" => self.unicast_peers(statement)?,
            "garp_master_delay" => {
                let seconds = values::integer(statement, 0..=4294, "whole seconds from 0 to 4294")?;
                self.garp_master_delay = Some(Duration::from_secs(u64::from(seconds)));
            }
            "garp_master_repeat" => {
                let repeat = values::integer(statement, 1..=255, "an integer from 1 to 255")?;
                self.garp_master_repeat = Some(repeat);
            }
            "version" => {
                let version = values::integer(statement, 2..=3, "2 or 3")?;
                self.version = Some(if version == 3 {
                    VrrpVersion::V3
                } else {
                    VrrpVersion::V2
                });
            }
            _ => {
                return Err(Fault::keyword(
                    statement.keyword.pos,
                    keyword,
                    KeepalivedErrorKind::Unknown {
                        keyword: keyword.to_owned(),
                        context: CONTEXT,
                        expected: EXPECTED,
                    },
                ));
            }
        }
        Ok(())
    }

    fn virtual_addresses(
        &mut self,
        statement: &Statement,
        notes: &mut Vec<Note>,
    ) -> Result<(), Fault> {
        let block = address_block(statement)?;
        self.vip_block = Some(statement.keyword.pos);
        for entry in &block.body {
            values::no_block(entry)?;
            let first = &entry.keyword;
            let vip = virtual_address(statement, first)?;
            if let Some((_, other, _)) = self.vips.iter().find(|(known, _, _)| *known == vip) {
                return Err(duplicate_address(statement, first, other));
            }
            let mut dev = None;
            let mut options = entry.values.iter();
            while let Some(option) = options.next() {
                let value = match option.text.as_str() {
                    "dev" | "label" => options.next().ok_or_else(|| {
                        Fault::keyword(
                            option.pos,
                            &option.text,
                            KeepalivedErrorKind::MissingValue {
                                keyword: option.text.clone(),
                                expected: "an interface name after \"dev\", a label after \
                                           \"label\"",
                            },
                        )
                    })?,
                    _ => {
                        return Err(Fault::keyword(
                            option.pos,
                            &statement.keyword.text,
                            KeepalivedErrorKind::VipOption {
                                value: first.text.clone(),
                                option: option.text.clone(),
                            },
                        ));
                    }
                };
                if option.text == "dev" {
                    dev = Some(value.clone());
                } else {
                    notes.push(Note::new(
                        option.pos,
                        "label",
                        format!(
                            "\"label {}\" of virtual address {:?} is ignored: rampart adds the \
                             address without a label",
                            value.text, first.text
                        ),
                    ));
                }
            }
            self.vips.push((vip, first.clone(), dev));
        }
        Ok(())
    }

    fn authentication(
        &mut self,
        statement: &Statement,
        notes: &mut Vec<Note>,
    ) -> Result<(), Fault> {
        const CONTEXT: &str = "an authentication block";
        let block = values::block(statement)?;
        values::no_more(statement, 0, "'{' after \"authentication\"")?;
        let mut seen = Seen::default();
        let mut pass = false;
        let mut secret: Option<&Word> = None;
        for entry in &block.body {
            seen.once(entry, CONTEXT)?;
            match entry.keyword.text.as_str() {
                "auth_type" => {
                    let word = values::single(entry, "PASS")?;
                    match word.text.as_str() {
                        "PASS" => pass = true,
                        "AH" => {
                            return Err(Fault::keyword(
                                word.pos,
                                "auth_type",
                                KeepalivedErrorKind::AuthAh,
                            ));
                        }
                        other => {
                            return Err(Fault::keyword(
                                word.pos,
                                "auth_type",
                                KeepalivedErrorKind::AuthType {
                                    value: other.to_owned(),
                                },
                            ));
                        }
                    }
                }
                "auth_pass" => {
                    let word = values::single(entry, "a password (up to 8 characters)")?;
                    if word.text.is_empty() {
                        return Err(Fault::keyword(
                            word.pos,
                            "auth_pass",
                            KeepalivedErrorKind::EmptyPassword,
                        ));
                    }
                    secret = Some(word);
                }
                other => {
                    return Err(Fault::keyword(
                        entry.keyword.pos,
                        other,
                        KeepalivedErrorKind::Unknown {
                            keyword: other.to_owned(),
                            context: CONTEXT,
                            expected: "auth_type and auth_pass",
                        },
                    ));
                }
            }
        }
        let secret = match (pass, secret) {
            (true, Some(secret)) => secret,
            (true, None) => {
                return Err(Fault::keyword(
                    statement.keyword.pos,
                    "authentication",
                    KeepalivedErrorKind::AuthNoPassword,
                ));
            }
            (false, _) => {
                return Err(Fault::keyword(
                    statement.keyword.pos,
                    "authentication",
                    KeepalivedErrorKind::AuthNoType,
                ));
            }
        };
        if secret.text.len() > 8 {
            notes.push(Note::new(
                secret.pos,
                "auth_pass",
                format!(
                    "\"auth_pass\" is {} bytes long; only the first 8 are used, as keepalived \
                     does",
                    secret.text.len()
                ),
            ));
        }
        self.auth = Some((AuthPassword::truncated(&secret.text), statement.keyword.pos));
        Ok(())
    }

    fn unicast_peers(&mut self, statement: &Statement) -> Result<(), Fault> {
        let block = address_block(statement)?;
        for entry in &block.body {
            values::no_block(entry)?;
            values::no_more(
                entry,
                0,
                "one address per line (rampart does not support min_ttl or max_ttl)",
            )?;
            let word = &entry.keyword;
            let peer = values::address(statement, word)?;
            if let Some((_, other)) = self.peers.iter().find(|(known, _)| *known == peer) {
                return Err(duplicate_address(statement, word, other));
            }
            self.peers.push((peer, word.clone()));
        }
        Ok(())
    }

    /// Applies keepalived's defaults and checks what depends on several keywords.
    pub fn finish(
        self,
        globals: &Globals,
        file: &Path,
        notes: &mut Vec<Note>,
    ) -> Result<VrrpInstance, Fault> {
        let missing = |keyword, expected| {
            Fault::keyword(
                self.pos,
                "vrrp_instance",
                KeepalivedErrorKind::Missing {
                    name: self.name.clone(),
                    keyword,
                    expected,
                },
            )
        };
        let interface = self
            .interface
            .clone()
            .ok_or_else(|| missing("interface", "\"interface IFNAME\""))?;
        let vrid = self
            .vrid
            .ok_or_else(|| missing("virtual_router_id", "\"virtual_router_id 1..255\""))?;
        let Some((first, first_word, _)) = self.vips.first() else {
            return Err(match self.vip_block {
                Some(pos) => Fault::keyword(
                    pos,
                    "virtual_ipaddress",
                    KeepalivedErrorKind::EmptyList {
                        keyword: "virtual_ipaddress".to_owned(),
                    },
                ),
                None => missing(
                    "virtual_ipaddress",
                    "a \"virtual_ipaddress { ADDRESS ... }\" block",
                ),
            });
        };
        let version = self.version.or(globals.version).unwrap_or(VrrpVersion::V2);
        let first_family = family(&first.addr);
        let words = self
            .vips
            .iter()
            .map(|(vip, word, _)| ("virtual_ipaddress", vip.addr, word))
            .chain(
                self.src_ip
                    .iter()
                    .map(|(ip, word)| ("unicast_src_ip", *ip, word)),
            )
            .chain(
                self.peers
                    .iter()
                    .map(|(ip, word)| ("unicast_peer", *ip, word)),
            );
        for (keyword, addr, word) in words {
            if family(&addr) != first_family {
                return Err(Fault::keyword(
                    word.pos,
                    keyword,
                    KeepalivedErrorKind::MixedFamilies {
                        keyword: keyword.to_owned(),
                        value: word.text.clone(),
                        family: family(&addr),
                        first: first_word.text.clone(),
                        first_line: first_word.pos.line,
                    },
                ));
            }
        }
        if first.addr.is_ipv6() && version == VrrpVersion::V2 {
            return Err(Fault::keyword(
                first_word.pos,
                "virtual_ipaddress",
                KeepalivedErrorKind::Ipv6NeedsV3 {
                    value: first_word.text.clone(),
                },
            ));
        }
        // What fits in one advert on a 1500-byte Ethernet link; the count field is one byte.
        let limit = if first.addr.is_ipv6() { 89 } else { 255 };
        if self.vips.len() > limit {
            return Err(Fault::keyword(
                first_word.pos,
                "virtual_ipaddress",
                KeepalivedErrorKind::TooManyAddresses {
                    keyword: "virtual_ipaddress".to_owned(),
                    limit,
                },
            ));
        }
        for (_, word, dev) in &self.vips {
            if let Some(dev) = dev.as_ref().filter(|dev| dev.text != interface) {
                return Err(Fault::keyword(
                    dev.pos,
                    "virtual_ipaddress",
                    KeepalivedErrorKind::VipDevice {
                        value: word.text.clone(),
                        dev: dev.text.clone(),
                        interface: interface.clone(),
                    },
                ));
            }
        }
        let advert_int_centis = match &self.advert_int {
            None => 100,
            Some((micros, word)) => advert_centis(*micros, word, version)?,
        };
        let auth = match (self.auth, version) {
            (Some((_, pos)), VrrpVersion::V3) => {
                notes.push(Note::new(
                    pos,
                    "authentication",
                    "\"authentication\" is ignored: VRRP version 3 has no authentication, and \
                     keepalived ignores it too"
                        .to_owned(),
                ));
                None
            }
            (auth, _) => auth.map(|(password, _)| password),
        };
        let priority = self.priority.unwrap_or(match self.state {
            Some(StartState::Master) => 255,
            _ => 100,
        });
        let state = self.state.unwrap_or(if priority == 255 {
            StartState::Master
        } else {
            StartState::Backup
        });
        if self.nopreempt && self.preempt {
            return Err(instance_fault(
                &self,
                KeepalivedErrorKind::PreemptConflict {
                    name: self.name.clone(),
                },
            ));
        }
        if self.preempt_delay.is_some_and(|delay| !delay.is_zero()) {
            let other = if self.nopreempt {
                Some("nopreempt")
            } else if state == StartState::Master {
                Some("state MASTER")
            } else {
                None
            };
            if let Some(other) = other {
                return Err(instance_fault(
                    &self,
                    KeepalivedErrorKind::PreemptDelayIgnored {
                        name: self.name.clone(),
                        other,
                    },
                ));
            }
        }
        let nopreempt_cleared = self.nopreempt && (priority == 255 || state == StartState::Master);
        if nopreempt_cleared {
            let why = if priority == 255 {
                "priority 255 (the address owner)"
            } else {
                "initial state MASTER"
            };
            notes.push(Note::new(
                self.pos,
                "nopreempt",
                format!(
                    "\"nopreempt\" of vrrp_instance {:?} is cleared: it does not work with {why}; \
                     keepalived clears it too and preempts",
                    self.name
                ),
            ));
        }
        Ok(VrrpInstance {
            name: self.name,
            file: file.to_path_buf(),
            line: self.pos.line,
            state,
            interface,
            vrid,
            priority,
            advert_int_centis,
            preempt: !self.nopreempt || nopreempt_cleared,
            preempt_delay: self.preempt_delay.unwrap_or_default(),
            nopreempt_cleared,
            virtual_addresses: self.vips.iter().map(|(vip, _, _)| *vip).collect(),
            auth,
            unicast_src_ip: self.src_ip.map(|(ip, _)| ip),
            unicast_peers: self.peers.iter().map(|(ip, _)| *ip).collect(),
            garp_master_delay: self
                .garp_master_delay
                .or(globals.garp_master_delay)
                .unwrap_or(Duration::from_secs(5)),
            garp_master_repeat: self
                .garp_master_repeat
                .or(globals.garp_master_repeat)
                .unwrap_or(5),
            version,
        })
    }
}

fn instance_fault(draft: &Draft, kind: KeepalivedErrorKind) -> Fault {
    Fault::keyword(draft.pos, "vrrp_instance", kind)
}

/// The block of a list of addresses, which must not be empty.
fn address_block(statement: &Statement) -> Result<&Block, Fault> {
    let block = values::block(statement)?;
    values::no_more(statement, 0, "'{' after the keyword")?;
    if block.body.is_empty() {
        return Err(Fault::keyword(
            statement.keyword.pos,
            &statement.keyword.text,
            KeepalivedErrorKind::EmptyList {
                keyword: statement.keyword.text.clone(),
            },
        ));
    }
    Ok(block)
}

fn duplicate_address(statement: &Statement, word: &Word, first: &Word) -> Fault {
    Fault::keyword(
        word.pos,
        &statement.keyword.text,
        KeepalivedErrorKind::DuplicateAddress {
            keyword: statement.keyword.text.clone(),
            value: word.text.clone(),
            first_line: first.pos.line,
        },
    )
}

/// `ADDRESS[/PREFIX]`.
fn virtual_address(statement: &Statement, word: &Word) -> Result<VirtualAddress, Fault> {
    let (text, prefix) = match word.text.split_once('/') {
        Some((text, prefix)) => (text, Some(prefix)),
        None => (word.text.as_str(), None),
    };
    let addr: IpAddr = text.parse().map_err(|_| {
        Fault::keyword(
            word.pos,
            &statement.keyword.text,
            KeepalivedErrorKind::InvalidAddress {
                keyword: statement.keyword.text.clone(),
                value: word.text.clone(),
            },
        )
    })?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix_len = match prefix {
        None => max,
        Some(prefix) => prefix
            .parse::<u8>()
            .ok()
            .filter(|len| *len <= max && prefix.bytes().all(|byte| byte.is_ascii_digit()))
            .ok_or_else(|| {
                Fault::keyword(
                    word.pos,
                    &statement.keyword.text,
                    KeepalivedErrorKind::InvalidPrefix {
                        keyword: statement.keyword.text.clone(),
                        value: word.text.clone(),
                        max,
                    },
                )
            })?,
    };
    Ok(VirtualAddress { addr, prefix_len })
}

/// `advert_int` in centiseconds, if the version can carry it exactly.
fn advert_centis(micros: u64, word: &Word, version: VrrpVersion) -> Result<u16, Fault> {
    let centis = match version {
        VrrpVersion::V2
            if micros.is_multiple_of(1_000_000) && (1..=255).contains(&(micros / 1_000_000)) =>
        {
            u16::try_from(micros / 10_000).ok()
        }
        VrrpVersion::V3
            if micros.is_multiple_of(10_000) && (1..=4095).contains(&(micros / 10_000)) =>
        {
            u16::try_from(micros / 10_000).ok()
        }
        _ => None,
    };
    centis.ok_or_else(|| {
        let value = word.text.clone();
        let kind = match version {
            VrrpVersion::V2 => KeepalivedErrorKind::AdvertIntV2 { value },
            VrrpVersion::V3 => KeepalivedErrorKind::AdvertIntV3 { value },
        };
        Fault::keyword(word.pos, "advert_int", kind)
    })
}

/// The name of an address family, for messages and the VRID check.
pub(crate) fn family(addr: &IpAddr) -> &'static str {
    if addr.is_ipv4() { "IPv4" } else { "IPv6" }
}
