//! `listen:` values: `host:port` (split at the last colon, so bare IPv6 works) or
//! `/path/to/socket [perm]` with an octal mode after the last space. No name is resolved here:
//! nutcracker resolves the host at parse time, rampart's binary does it for `-t` and startup.

use std::path::PathBuf;

use crate::error::ConfigErrorKind;
use crate::model::Listen;
use crate::quirks::{nc_atoi, strtol_octal};

/// `sizeof(sockaddr_un.sun_path)` on Linux: the path and its NUL must fit.
const SUN_PATH_LEN: usize = 108;

pub(crate) fn parse(value: &str) -> Result<Listen, ConfigErrorKind> {
    if value.starts_with('/') {
        parse_unix(value)
    } else {
        parse_tcp(value)
    }
}

fn parse_unix(value: &str) -> Result<Listen, ConfigErrorKind> {
    let (path, mode) = match value.rfind(' ') {
        None => (value, 0),
        Some(space) => {
            let perm = &value[space + 1..];
            // nutcracker stores strtol's long in a 32-bit mode_t before comparing with 0777.
            match strtol_octal(perm).map(|mode| mode as u32) {
                Some(mode) if mode <= 0o777 => (&value[..space], mode),
                _ => {
                    return Err(ConfigErrorKind::ListenPermission {
                        value: value.to_owned(),
                        perm: perm.to_owned(),
                    });
                }
            }
        }
    };
    if path.len() >= SUN_PATH_LEN {
        return Err(ConfigErrorKind::ListenPathTooLong { len: path.len() });
    }
    Ok(Listen::Unix {
        path: PathBuf::from(path),
        permissions: (mode != 0).then_some(mode),
    })
}

fn parse_tcp(value: &str) -> Result<Listen, ConfigErrorKind> {
    let Some(colon) = value.rfind(':') else {
        return Err(ConfigErrorKind::ListenNoPort {
            value: value.to_owned(),
        });
    };
    let (host, port) = (&value[..colon], &value[colon + 1..]);
    let port = match nc_atoi(port).map(u16::try_from) {
        Ok(Ok(port)) if port >= 1 => port,
        _ => {
            return Err(ConfigErrorKind::ListenInvalidPort {
                value: value.to_owned(),
                port: port.to_owned(),
            });
        }
    };
    if host.starts_with('[') && host.ends_with(']') {
        return Err(ConfigErrorKind::ListenBracketedHost {
            host: host.to_owned(),
        });
    }
    Ok(Listen::Tcp {
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Listen {
        Listen::Tcp {
            host: host.to_owned(),
            port,
        }
    }

    fn unix(path: &str, permissions: Option<u32>) -> Listen {
        Listen::Unix {
            path: PathBuf::from(path),
            permissions,
        }
    }

    #[test]
    fn tcp_splits_at_the_last_colon() {
        assert_eq!(parse("127.0.0.1:22121"), Ok(tcp("127.0.0.1", 22121)));
        assert_eq!(parse("localhost:1"), Ok(tcp("localhost", 1)));
        assert_eq!(parse("::1:22121"), Ok(tcp("::1", 22121)));
        assert_eq!(parse("0.0.0.0:065535"), Ok(tcp("0.0.0.0", 65535)));
        // Resolution (which fails for an empty host) is the binary's job.
        assert_eq!(parse(":22121"), Ok(tcp("", 22121)));
        // nc_atoi wraps: 4294967297 reads as port 1 [verified].
        assert_eq!(parse("127.0.0.1:4294967297"), Ok(tcp("127.0.0.1", 1)));
    }

    #[test]
    fn tcp_errors() {
        assert!(matches!(
            parse("localhost"),
            Err(ConfigErrorKind::ListenNoPort { .. })
        ));
        for bad in [
            "h:",
            "h:0",
            "h:65536",
            "h:-1",
            "h:80 ",
            "h:http",
            "h:2147483648",
        ] {
            assert!(
                matches!(parse(bad), Err(ConfigErrorKind::ListenInvalidPort { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            parse("[::1]:22121"),
            Err(ConfigErrorKind::ListenBracketedHost { .. })
        ));
    }

    #[test]
    fn unix_socket_and_permissions() {
        assert_eq!(parse("/tmp/r.sock"), Ok(unix("/tmp/r.sock", None)));
        assert_eq!(
            parse("/tmp/r.sock 0770"),
            Ok(unix("/tmp/r.sock", Some(0o770)))
        );
        assert_eq!(
            parse("/tmp/r.sock 777"),
            Ok(unix("/tmp/r.sock", Some(0o777)))
        );
        assert_eq!(parse("/tmp/r.sock 0"), Ok(unix("/tmp/r.sock", None)));
        // Non-octal junk reads as 0: no chmod [verified].
        assert_eq!(parse("/tmp/r.sock 999"), Ok(unix("/tmp/r.sock", None)));
        assert_eq!(parse("/tmp/r.sock 0x1"), Ok(unix("/tmp/r.sock", None)));
        assert_eq!(parse("/tmp/r.sock "), Ok(unix("/tmp/r.sock", None)));
        assert_eq!(parse("/tmp/my sock 7"), Ok(unix("/tmp/my sock", Some(7))));
        // The long is truncated to a 32-bit mode_t [verified].
        assert_eq!(
            parse("/tmp/r.sock 040000000000"),
            Ok(unix("/tmp/r.sock", None))
        );
        assert_eq!(
            parse("/tmp/r.sock -37777777777"),
            Ok(unix("/tmp/r.sock", Some(1)))
        );
    }

    #[test]
    fn unix_errors() {
        for bad in [
            "/tmp/r.sock 01000",
            "/tmp/r.sock -1",
            "/tmp/r.sock 7777777777777777777777777",
        ] {
            assert!(
                matches!(parse(bad), Err(ConfigErrorKind::ListenPermission { .. })),
                "{bad}"
            );
        }
        let longest = format!("/{}", "a".repeat(106));
        assert!(parse(&longest).is_ok());
        assert_eq!(
            parse(&format!("{longest}a 0700")),
            Err(ConfigErrorKind::ListenPathTooLong { len: 108 })
        );
    }
}
