//! rampart extension: a pool's `sentinels:` list of Redis Sentinel `host:port` addresses
//! (`[v6]:port` or bare `v6:port`, split at the last colon). nutcracker 0.5.0 rejects any such
//! list ("more than one sequence directive"), so this syntax is rampart's own and stricter:
//! plain decimal ports 1..65535, no empty host, no duplicates.

use crate::error::ConfigErrorKind;

/// `host:port` of one entry.
pub(crate) fn parse(value: &str) -> Result<(String, u16), ConfigErrorKind> {
    let invalid = || ConfigErrorKind::SentinelFormat {
        value: value.to_owned(),
    };
    let (host, port) = value.rsplit_once(':').ok_or_else(invalid)?;
    let host = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(invalid());
    }
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match port.parse::<u16>() {
        Ok(port) if port >= 1 => Ok((host.to_owned(), port)),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse("127.0.0.1:26379"),
            Ok(("127.0.0.1".to_owned(), 26379))
        );
        assert_eq!(parse("sentinel-a:1"), Ok(("sentinel-a".to_owned(), 1)));
        assert_eq!(parse("[::1]:26379"), Ok(("::1".to_owned(), 26379)));
        assert_eq!(parse("::1:26379"), Ok(("::1".to_owned(), 26379)));
    }

    #[test]
    fn errors() {
        for bad in [
            "127.0.0.1",
            ":26379",
            "[]:26379",
            "h:",
            "h:0",
            "h:65536",
            "h:+1",
            "h:1x",
            "h: 1",
            "a b:1",
            "h:99999999999",
        ] {
            assert!(
                matches!(parse(bad), Err(ConfigErrorKind::SentinelFormat { .. })),
                "{bad}"
            );
        }
    }
}
