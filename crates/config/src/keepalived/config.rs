//! The top level of a keepalived.conf and its `global_defs`: which blocks rampart runs
//! (`vrrp_instance`), which it reads (`global_defs`), which it ignores with a warning
//! (`vrrp_script`), and which it refuses; then the checks across instances (unique names, one
//! virtual_router_id per interface and address family).

use std::collections::HashMap;
use std::time::Duration;

use super::error::{Fault, Files, KeepalivedErrorKind, Note, Pos};
use super::instance::{self, Globals};
use super::model::{VrrpConfig, VrrpVersion};
use super::tree::Statement;
use super::values::{self, Seen};

const TOP: &str = "the top level";
const GLOBAL: &str = "global_defs";

/// Why rampart refuses a top-level block that keepalived knows.
fn top_refusal(keyword: &str) -> Option<&'static str> {
    let reason = match keyword {
        "vrrp_sync_group" => {
            "rampart runs each vrrp_instance on its own and cannot tie instances' states \
             together; use a single instance, or separate ones without the group"
        }
        "virtual_server" | "virtual_server_group" => {
            "LVS load balancing is not part of rampart; rampart itself is the proxy"
        }
        "static_ipaddress" | "static_routes" | "static_rules" => {
            "rampart does not configure static addresses, routes or rules; configure them with \
             the system's network configuration"
        }
        "vrrp_track_process" | "vrrp_track_file" | "track_file" | "bfd_instance" => {
            "rampart's own health check of the proxy replaces keepalived's trackers"
        }
        "linkbeat_interfaces" => "rampart follows link state through netlink only",
        "garp_group" => "rampart sends gratuitous ARPs per instance only",
        _ => return None,
    };
    Some(reason)
}

/// What rampart does instead of a `global_defs` keyword it ignores.
fn global_ignored(keyword: &str) -> Option<&'static str> {
    let instead = match keyword {
        "notification_email"
        | "notification_email_from"
        | "smtp_server"
        | "smtp_helo_name"
        | "smtp_connect_timeout"
        | "smtp_alert"
        | "smtp_alert_vrrp"
        | "smtp_alert_checker" => "rampart sends no e-mail; it logs every state change",
        "enable_script_security" | "script_user" => "rampart runs no scripts",
        "vrrp_skip_check_adv_addr" => {
            "it only skips a check of received adverts and changes nothing that is sent"
        }
        "vrrp_garp_interval" | "vrrp_gna_interval" => {
            "rampart sends each burst of gratuitous ARPs without a pause between them"
        }
        _ => return None,
    };
    Some(instead)
}

/// Why rampart refuses a `global_defs` keyword that keepalived knows.
fn global_refusal(keyword: &str) -> Option<&'static str> {
    let reason = match keyword {
        "vrrp_strict" => {
            "strict mode turns off accept mode, so keepalived installs firewall rules that drop \
             traffic to a virtual address unless the priority is 255, and changes what is sent; \
             rampart does neither, and a proxy behind the virtual address needs that traffic: \
             remove it"
        }
        "vrrp_garp_master_refresh"
        | "vrrp_garp_master_refresh_repeat"
        | "vrrp_garp_lower_prio_delay"
        | "vrrp_garp_lower_prio_repeat"
        | "vrrp_min_garp"
        | "vrrp_mcast_group4"
        | "vrrp_mcast_group6"
        | "vrrp_check_unicast_src"
        | "vrrp_lower_prio_no_advert"
        | "vrrp_higher_prio_send_advert"
        | "vrrp_down_timer_adverts"
        | "vrrp_iptables"
        | "vrrp_nftables"
        | "vrrp_ipsets" => "it changes VRRP behaviour that rampart's speaker does not implement",
        _ => return None,
    };
    Some(reason)
}

/// Reads the statements of a whole file (with its includes) into the model.
pub(crate) fn config(
    statements: &[Statement],
    files: &Files,
    notes: &mut Vec<Note>,
) -> Result<VrrpConfig, Fault> {
    let mut globals = Globals::default();
    let mut router_id = None;
    let mut global_seen = Seen::default();
    let mut drafts = Vec::new();
    for statement in statements {
        let keyword = statement.keyword.text.as_str();
        match keyword {
            "global_defs" => {
                values::no_more(statement, 0, "'{' after \"global_defs\"")?;
                for entry in &values::block(statement)?.body {
                    global(entry, &mut globals, &mut router_id, &mut global_seen, notes)?;
                }
            }
            "vrrp_instance" => drafts.push(instance::read(statement, notes)?),
            "vrrp_script" => {
                values::block(statement)?;
                let name = statement
                    .values
                    .first()
                    .map_or_else(String::new, |name| format!(" {:?}", name.text));
                notes.push(Note::new(
                    statement.keyword.pos,
                    keyword,
                    format!(
                        "\"vrrp_script\"{name} is ignored: rampart checks the proxy's health \
                         itself instead of running scripts"
                    ),
                ));
            }
            _ => {
                let kind = match top_refusal(keyword) {
                    Some(reason) => KeepalivedErrorKind::Unsupported {
                        keyword: keyword.to_owned(),
                        context: TOP,
                        reason,
                    },
                    None => KeepalivedErrorKind::Unknown {
                        keyword: keyword.to_owned(),
                        context: TOP,
                        expected: "global_defs, vrrp_instance or vrrp_script",
                    },
                };
                return Err(Fault::keyword(statement.keyword.pos, keyword, kind));
            }
        }
    }
    if drafts.is_empty() {
        return Err(Fault::at(
            Pos {
                file: 0,
                line: 1,
                column: 1,
            },
            KeepalivedErrorKind::NoInstances,
        ));
    }
    let mut instances = Vec::with_capacity(drafts.len());
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut vrids: HashMap<(String, &'static str, u8), (String, usize)> = HashMap::new();
    for draft in drafts {
        let pos = draft.pos;
        if let Some(first_line) = names.insert(draft.name.clone(), pos.line) {
            return Err(Fault::keyword(
                pos,
                "vrrp_instance",
                KeepalivedErrorKind::DuplicateInstance {
                    name: draft.name,
                    first_line,
                },
            ));
        }
        let instance = draft.finish(&globals, files.path(pos.file), notes)?;
        let family = instance
            .virtual_addresses
            .first()
            .map_or("IPv4", |vip| instance::family(&vip.addr));
        let key = (instance.interface.clone(), family, instance.vrid);
        if let Some((other, other_line)) = vrids.get(&key) {
            return Err(Fault::keyword(
                pos,
                "virtual_router_id",
                KeepalivedErrorKind::DuplicateVrid {
                    name: instance.name.clone(),
                    vrid: instance.vrid,
                    family,
                    interface: instance.interface.clone(),
                    other: other.clone(),
                    other_line: *other_line,
                },
            ));
        }
        vrids.insert(key, (instance.name.clone(), instance.line));
        instances.push(instance);
    }
    Ok(VrrpConfig {
        file: files.path(0).to_path_buf(),
        router_id,
        instances,
        warnings: Vec::new(),
    })
}

fn global(
    statement: &Statement,
    globals: &mut Globals,
    router_id: &mut Option<String>,
    seen: &mut Seen,
    notes: &mut Vec<Note>,
) -> Result<(), Fault> {
    let keyword = statement.keyword.text.as_str();
    if let Some(instead) = global_ignored(keyword) {
        notes.push(Note::new(
            statement.keyword.pos,
            keyword,
            format!("{keyword:?} in global_defs is ignored: {instead}"),
        ));
        return Ok(());
    }
    let unsupported = |reason| {
        Fault::keyword(
            statement.keyword.pos,
            keyword,
            KeepalivedErrorKind::Unsupported {
                keyword: keyword.to_owned(),
                context: GLOBAL,
                reason,
            },
        )
    };
    if let Some(reason) = global_refusal(keyword) {
        return Err(unsupported(reason));
    }
    seen.once(statement, GLOBAL)?;
    match keyword {
        "router_id" => {
            *router_id = Some(
                values::single(statement, "a name for this node")?
                    .text
                    .clone(),
            );
        }
        "vrrp_version" => {
            let version = values::integer(statement, 2..=3, "2 or 3")?;
            globals.version = Some(if version == 3 {
                VrrpVersion::V3
            } else {
                VrrpVersion::V2
            });
        }
        "vrrp_garp_master_delay" => {
            let seconds = values::integer(statement, 0..=4294, "whole seconds from 0 to 4294")?;
            globals.garp_master_delay = Some(Duration::from_secs(u64::from(seconds)));
        }
        "vrrp_garp_master_repeat" => {
            let repeat = values::integer(statement, 1..=255, "an integer from 1 to 255")?;
            globals.garp_master_repeat = Some(repeat);
        }
        _ => {
            return Err(Fault::keyword(
                statement.keyword.pos,
                keyword,
                KeepalivedErrorKind::Unknown {
                    keyword: keyword.to_owned(),
                    context: GLOBAL,
                    expected: "router_id, vrrp_version, vrrp_garp_master_delay or \
                               vrrp_garp_master_repeat (e-mail and script settings, \
                               vrrp_skip_check_adv_addr, vrrp_garp_interval and \
                               vrrp_gna_interval are ignored with a warning)",
                },
            ));
        }
    }
    Ok(())
}
