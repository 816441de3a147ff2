//! `servers:` entries, `host:port:weight [name]` or `/path/to/socket:weight [name]`, read from
//! the end as nutcracker reads them (so an IPv6 host keeps its colons), and the node name each
//! entry is hashed and reported by.

use std::path::PathBuf;

use crate::error::ConfigErrorKind;
use crate::model::ServerAddress;
use crate::quirks::nc_atoi;

/// libmemcached compatibility: a server on this port is named by its host alone.
const KETAMA_PORT: u16 = 11211;

/// Separators searched right to left: the name's space (optional), the weight's colon, and the
/// port's colon (TCP only: a unix socket path may not hold a colon).
const DELIMITERS: [u8; 3] = [b' ', b':', b':'];

/// One parsed entry, before it gets its line and config index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub name: String,
    pub address: ServerAddress,
    pub weight: u32,
}

pub(crate) fn parse(value: &str) -> Result<Entry, ConfigErrorKind> {
    let unix = value.starts_with('/');
    let fields_needed = if unix { 2 } else { 3 };

    // `rest` is the part not yet split off.
    let mut rest = value;
    let (mut name, mut weight, mut port) = (None, None, None);
    let mut found = 0;
    while let Some(&delimiter) = DELIMITERS.get(found) {
        match rest.rsplit_once(char::from(delimiter)) {
            None if found == 0 => {}
            None => break,
            Some((head, field)) => {
                match found {
                    0 => name = Some(field),
                    1 => weight = Some(field),
                    2 => port = Some(field),
                    _ => {}
                }
                rest = head;
            }
        }
        found += 1;
    }
    let (Some(weight), true) = (weight, found == fields_needed) else {
        return Err(ConfigErrorKind::ServerFormat {
            value: value.to_owned(),
            hint: format_hint(unix, found),
        });
    };
    let host = rest;

    let weight = match nc_atoi(weight) {
        Ok(0) => {
            return Err(ConfigErrorKind::ServerZeroWeight {
                value: value.to_owned(),
            });
        }
        Ok(weight) => weight,
        Err(_) => {
            return Err(ConfigErrorKind::ServerWeight {
                value: value.to_owned(),
                weight: weight.to_owned(),
            });
        }
    };

    let (address, port_text) = match port {
        None => (
            ServerAddress::Unix {
                path: PathBuf::from(host),
            },
            "",
        ),
        Some(port_text) => match nc_atoi(port_text).map(u16::try_from) {
            Ok(Ok(port)) if port >= 1 => (
                ServerAddress::Tcp {
                    host: host.to_owned(),
                    port,
                },
                port_text,
            ),
            _ => {
                return Err(ConfigErrorKind::ServerPort {
                    value: value.to_owned(),
                    port: port_text.to_owned(),
                });
            }
        },
    };

    let name = match (name, &address) {
        (Some(name), _) => name,
        (None, ServerAddress::Tcp { port, .. }) if *port == KETAMA_PORT => host,
        // `host:port` exactly as written (no weight), or `path:` for a unix socket.
        (None, _) => &value[..host.len() + 1 + port_text.len()],
    };
    Ok(Entry {
        name: name.to_owned(),
        address,
        weight,
    })
}

fn format_hint(unix: bool, found: usize) -> &'static str {
    match (unix, found) {
        (false, 2) => "; add a weight, e.g. \"127.0.0.1:6379:1\"",
        (false, 1) => "; expected e.g. \"127.0.0.1:6379:1 server1\"",
        (true, 1) => "; add a weight, e.g. \"/var/run/redis.sock:1\"",
        (true, _) => "; a unix socket path cannot contain ':'",
        (false, _) => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(name: &str, host: &str, port: u16, weight: u32) -> Entry {
        Entry {
            name: name.to_owned(),
            address: ServerAddress::Tcp {
                host: host.to_owned(),
                port,
            },
            weight,
        }
    }

    #[test]
    fn node_names() {
        assert_eq!(
            parse("127.0.0.1:6379:1"),
            Ok(tcp("127.0.0.1:6379", "127.0.0.1", 6379, 1))
        );
        assert_eq!(
            parse("127.0.0.1:6379:5 server1"),
            Ok(tcp("server1", "127.0.0.1", 6379, 5))
        );
        assert_eq!(
            parse("10.0.0.3:11211:3"),
            Ok(tcp("10.0.0.3", "10.0.0.3", 11211, 3))
        );
        assert_eq!(
            parse("10.0.0.3:11211:3 cache"),
            Ok(tcp("cache", "10.0.0.3", 11211, 3))
        );
        // The port is kept as written in the name.
        assert_eq!(
            parse("127.0.0.1:06379:1"),
            Ok(tcp("127.0.0.1:06379", "127.0.0.1", 6379, 1))
        );
        // A trailing space gives an empty name, which nutcracker accepts [verified].
        assert_eq!(
            parse("127.0.0.1:6379:1 "),
            Ok(tcp("", "127.0.0.1", 6379, 1))
        );
        // So is an empty host [verified].
        assert_eq!(parse(":6379:1"), Ok(tcp(":6379", "", 6379, 1)));
    }

    #[test]
    fn ipv6_hosts_keep_their_colons() {
        assert_eq!(parse("::1:6379:1"), Ok(tcp("::1:6379", "::1", 6379, 1)));
        assert_eq!(
            parse("fe80::1:2:6380:2 v6"),
            Ok(tcp("v6", "fe80::1:2", 6380, 2))
        );
        assert_eq!(
            parse("[::1]:6379:1"),
            Ok(tcp("[::1]:6379", "[::1]", 6379, 1))
        );
    }

    #[test]
    fn unix_sockets() {
        let unix = |name: &str, weight| Entry {
            name: name.to_owned(),
            address: ServerAddress::Unix {
                path: PathBuf::from("/tmp/r.sock"),
            },
            weight,
        };
        assert_eq!(parse("/tmp/r.sock:1"), Ok(unix("/tmp/r.sock:", 1)));
        assert_eq!(parse("/tmp/r.sock:2 redis"), Ok(unix("redis", 2)));
        assert!(matches!(
            parse("/tmp/a:b:1"),
            Err(ConfigErrorKind::ServerFormat { .. })
        ));
        assert!(matches!(
            parse("/tmp/r.sock"),
            Err(ConfigErrorKind::ServerFormat { .. })
        ));
    }

    #[test]
    fn weights_wrap_like_nutcracker() {
        assert_eq!(
            parse("127.0.0.1:6379:4294967297"),
            Ok(tcp("127.0.0.1:6379", "127.0.0.1", 6379, 1))
        );
        assert_eq!(
            parse("127.0.0.1:4294967297:1"),
            Ok(tcp("127.0.0.1:4294967297", "127.0.0.1", 1, 1))
        );
    }

    #[test]
    fn errors() {
        let kind = |value: &str| parse(value).err().map(|e| std::mem::discriminant(&e));
        let format = Some(std::mem::discriminant(&ConfigErrorKind::ServerFormat {
            value: String::new(),
            hint: "",
        }));
        assert_eq!(kind("127.0.0.1:6379"), format);
        assert_eq!(kind("localhost"), format);
        assert_eq!(kind("a b:1:1"), format);
        assert!(
            parse("127.0.0.1:6379")
                .unwrap_err()
                .to_string()
                .contains("add a weight")
        );
        for bad in [
            "h:1:",
            "h:1:x",
            "h:1:-1",
            "h:1:1  name",
            "h:1:1 two words",
            "h:1:2147483648",
        ] {
            assert!(
                matches!(parse(bad), Err(ConfigErrorKind::ServerWeight { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            parse("h:1:0"),
            Err(ConfigErrorKind::ServerZeroWeight { .. })
        ));
        for bad in ["h::1", "h:0:1", "h:65536:1", "h:x:1"] {
            assert!(
                matches!(parse(bad), Err(ConfigErrorKind::ServerPort { .. })),
                "{bad}"
            );
        }
    }
}
