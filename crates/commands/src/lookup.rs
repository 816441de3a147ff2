//! Finding a request's command: [`lookup`] by name, [`resolve`] for a whole request (name,
//! subcommand, support, arity), and [`commands`] for the whole table; [`is_http`] spots the
//! HTTP request lines and headers that redis-server refuses as a cross-protocol attack.
//!
//! Names match ASCII case-insensitively without copying. Top-level names are found through the
//! hash table of `name_table`; subcommand tables are small and sorted by lower-case name, and
//! are searched by comparing each byte of the request lowered on the fly.

use crate::args::Arguments;
use crate::command::{Command, Kind};
use crate::error::CommandError;
use crate::name_table;
use crate::table::COMMANDS;

/// The command named `name` (ASCII case-insensitive), or `None` if rampart does not know it.
///
/// This finds top-level entries only; a container's subcommands are found with
/// [`Command::subcommand`], or by [`resolve`] directly.
#[must_use]
pub fn lookup(name: &[u8]) -> Option<&'static Command> {
    name_table::find(name)
}

/// Whether a request's name is an HTTP method or header that redis-server treats as a
/// cross-protocol attack (`POST` and `Host:`, ASCII case-insensitive): a web page or a
/// server-side request forgery aimed at the port would otherwise run the commands in its body.
#[must_use]
pub fn is_http(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"post") || name.eq_ignore_ascii_case(b"host:")
}

/// Every top-level command, sorted by name; subcommands hang off their container.
/// This is what the proxy answers `COMMAND`, `COMMAND COUNT` and `COMMAND INFO` from.
#[must_use]
pub fn commands() -> &'static [Command] {
    COMMANDS
}

/// Finds the command of a request and checks what can be checked without reading its keys:
/// the name is known, a container's subcommand is known, the command is supported, and the
/// argument count fits its arity.
///
/// `Ok` is any command but a [`Kind::Unsupported`] one (a subcommand for containers). An
/// unsupported command is refused before its arity is checked, so `CONFIG` alone is told it is
/// unsupported rather than short of arguments.
///
/// # Errors
///
/// [`CommandError::Unknown`] (no such command, or an empty request),
/// [`CommandError::UnknownSubcommand`], [`CommandError::Unsupported`] or
/// [`CommandError::WrongArity`]. The error borrows the request to quote it.
pub fn resolve(args: &dyn Arguments) -> Result<&'static Command, CommandError<'_>> {
    let unknown = CommandError::Unknown { args };
    if args.count() == 0 {
        return Err(unknown);
    }
    let mut command = lookup(args.get(0)).ok_or(unknown)?;
    if !command.subcommands.is_empty() && args.count() >= 2 {
        let name = args.get(1);
        command = command
            .subcommand(name)
            .ok_or(CommandError::UnknownSubcommand {
                container: command.name,
                subcommand: name,
            })?;
    }
    if let Kind::Unsupported(reason) = command.kind {
        return Err(CommandError::Unsupported {
            command: command.name,
            reason,
        });
    }
    command.check_arity(args.count())?;
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::{is_http, lookup, resolve};
    use crate::command::compare_ignoring_case;
    use crate::table::COMMANDS;
    use crate::{Command, CommandError, Kind, LocalCommand};

    /// The plain search the hash table replaces: a binary search of the sorted table.
    fn lookup_by_binary_search(name: &[u8]) -> Option<&'static Command> {
        COMMANDS
            .binary_search_by(|command| compare_ignoring_case(command.name.as_bytes(), name))
            .ok()
            .map(|found| &COMMANDS[found])
    }

    /// `name` with every other ASCII letter in upper case, starting with the first.
    fn alternating_case(name: &[u8]) -> Vec<u8> {
        name.iter()
            .enumerate()
            .map(|(i, byte)| {
                if i % 2 == 0 {
                    byte.to_ascii_uppercase()
                } else {
                    *byte
                }
            })
            .collect()
    }

    #[test]
    fn every_command_is_found_in_every_case() {
        for command in COMMANDS {
            let lower = command.name.as_bytes().to_vec();
            let upper = lower.to_ascii_uppercase();
            let mixed = alternating_case(&lower);
            let mixed_other_way = alternating_case(&upper).to_ascii_lowercase();
            for name in [&lower, &upper, &mixed, &mixed_other_way] {
                assert_eq!(lookup(name), Some(command), "{}", command.name);
            }
        }
    }

    /// Names one edit away from `name`: each byte replaced by a few others (its case-flipped
    /// neighbours among them), one byte more at either end, and one byte less at either end.
    fn near_misses(name: &[u8]) -> Vec<Vec<u8>> {
        let mut misses = Vec::new();
        for at in 0..name.len() {
            for replacement in [b'a', b'Z', b'_', b'|', 0x20, 0x00, 0x7f, 0x80, 0xc1, 0xff] {
                let mut miss = name.to_vec();
                miss[at] = replacement;
                misses.push(miss);
                let mut miss = name.to_vec();
                miss[at] ^= 0x20;
                misses.push(miss);
            }
        }
        for extra in [b'x', b'_', b' ', 0x00, 0xe0] {
            misses.push([name, &[extra]].concat());
            misses.push([&[extra][..], name].concat());
        }
        if let Some((_, rest)) = name.split_first() {
            misses.push(rest.to_vec());
        }
        if let Some((_, rest)) = name.split_last() {
            misses.push(rest.to_vec());
        }
        misses
    }

    #[test]
    fn near_misses_find_what_the_binary_search_finds() {
        for command in COMMANDS {
            for name in near_misses(command.name.as_bytes()) {
                assert_eq!(
                    lookup(&name),
                    lookup_by_binary_search(&name),
                    "{}",
                    String::from_utf8_lossy(&name)
                );
                assert_eq!(
                    lookup(&name.to_ascii_uppercase()),
                    lookup_by_binary_search(&name.to_ascii_uppercase())
                );
            }
        }
        for sub in COMMANDS.iter().flat_map(|command| command.subcommands) {
            assert_eq!(lookup(sub.name.as_bytes()), None, "{}", sub.name);
        }
    }

    #[test]
    fn http_request_lines_and_host_headers_are_spotted() {
        for name in [&b"POST"[..], b"post", b"Host:", b"HOST:"] {
            assert!(is_http(name), "{name:?}");
        }
        for name in [&b"GET"[..], b"host", b"posts", b"PUT"] {
            assert!(!is_http(name), "{name:?}");
        }
    }

    #[test]
    fn lookup_ignores_ascii_case() {
        for name in [&b"get"[..], b"GET", b"gEt", b"GeT"] {
            assert_eq!(lookup(name).unwrap().name, "get");
        }
        assert_eq!(
            lookup(b"GEORADIUSBYMEMBER_RO").unwrap().name,
            "georadiusbymember_ro"
        );
        assert_eq!(lookup(b"Restore-Asking").unwrap().name, "restore-asking");
    }

    #[test]
    fn lookup_rejects_near_misses() {
        for name in [
            &b""[..],
            b"ge",
            b"gett",
            b"get ",
            b"g\xc3\xa9t",
            b"GET\0",
            b"object|encoding",
            &[0xff; 300],
        ] {
            assert!(lookup(name).is_none(), "{name:?}");
        }
    }

    #[test]
    fn resolve_descends_into_subcommands() {
        let args: [&[u8]; 3] = [b"object", b"ENCODING", b"k"];
        assert_eq!(resolve(&args).unwrap().name, "object|encoding");
        let args: [&[u8]; 2] = [b"object", b"nope"];
        assert!(matches!(
            resolve(&args),
            Err(CommandError::UnknownSubcommand {
                container: "object",
                subcommand: b"nope"
            })
        ));
        let args: [&[u8]; 1] = [b"xinfo"];
        assert!(matches!(
            resolve(&args),
            Err(CommandError::WrongArity { command: "xinfo" })
        ));
        let args: [&[u8]; 2] = [b"object", b"encoding"];
        assert!(matches!(
            resolve(&args),
            Err(CommandError::WrongArity {
                command: "object|encoding"
            })
        ));
    }

    #[test]
    fn resolve_refuses_before_counting() {
        let args: [&[u8]; 1] = [b"cluster"];
        assert!(matches!(
            resolve(&args),
            Err(CommandError::Unsupported {
                command: "cluster",
                ..
            })
        ));
        let args: [&[u8]; 2] = [b"config", b"get"];
        assert!(matches!(
            resolve(&args),
            Err(CommandError::Unsupported {
                command: "config",
                ..
            })
        ));
    }

    #[test]
    fn resolve_checks_arity_and_finds_local_commands() {
        let args: [&[u8]; 1] = [b"PING"];
        assert_eq!(
            resolve(&args).unwrap().kind,
            Kind::Local(LocalCommand::Ping)
        );
        let args: [&[u8]; 1] = [b"auth"];
        assert!(matches!(
            resolve(&args),
            Err(CommandError::WrongArity { command: "auth" })
        ));
        let args: [&[u8]; 0] = [];
        assert!(matches!(resolve(&args), Err(CommandError::Unknown { .. })));
        let args: Vec<&[u8]> = vec![b"nosuch", b"a"];
        assert!(matches!(resolve(&args), Err(CommandError::Unknown { .. })));
    }
}
