//! The SCAN cursor a client sees through the proxy: which shard the scan is on and where that
//! shard's own cursor stands, in one decimal u64.
//!
//! A pool of N shards is scanned one shard after another, in the pool's server order. The
//! client's cursor is `server_cursor * N + shard`:
//!
//! - cursor 0 is shard 0 at its own cursor 0, the start of a scan;
//! - while a shard's own cursor is not 0, the client gets `server_cursor * N + shard` back;
//! - when a shard's own cursor comes back 0, the client gets `shard + 1` (the next shard at its
//!   cursor 0), or 0 after the last shard: the end of the scan.
//!
//! With one shard the cursor is the server's own. Redis's cursors are a reverse-binary position
//! in a table of 2^bits buckets, so they stay below 2^bits: they fit unless a shard's table has
//! about 2^64 / N buckets. A server cursor that does not fit is an error, never a cursor that
//! silently wraps and skips keys.

/// Where a client's cursor points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The server's index in the pool.
    pub shard: usize,
    /// That server's own SCAN cursor.
    pub server_cursor: u64,
}

/// A shard answered a cursor too large to carry the shard index alongside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorTooLarge {
    pub server_cursor: u64,
}

/// A client's cursor as redis-server reads it (`strtoul`, base 10): no leading space, an
/// optional sign (a `-` wraps around, as in C), digits, nothing after them (the text ends at
/// a NUL byte), within 64 bits. The empty text is cursor 0. `None` is Redis's
/// `ERR invalid cursor`.
pub fn parse_client_cursor(text: &[u8]) -> Option<u64> {
    let text = text.split(|&byte| byte == 0).next().unwrap_or_default();
    if text.is_empty() {
        return Some(0);
    }
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits.iter().try_fold(0u64, |value, &digit| {
        value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })?;
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// The shard and server cursor of the client's `cursor` in a pool of `shards` servers.
pub fn position(cursor: u64, shards: usize) -> Position {
    let count = shard_count(shards);
    Position {
        shard: usize::try_from(cursor % count).unwrap_or_default(),
        server_cursor: cursor / count,
    }
}

/// The client's next cursor once `shard` of `shards` answered its own `server_cursor`.
pub fn next(shard: usize, server_cursor: u64, shards: usize) -> Result<u64, CursorTooLarge> {
    let count = shard_count(shards);
    let index = u64::try_from(shard).unwrap_or(u64::MAX);
    if server_cursor == 0 {
        let following = index.saturating_add(1);
        return Ok(if following < count { following } else { 0 });
    }
    server_cursor
        .checked_mul(count)
        .and_then(|scaled| scaled.checked_add(index))
        .ok_or(CursorTooLarge { server_cursor })
}

/// The number of shards as a divisor (a pool has at least one server).
fn shard_count(shards: usize) -> u64 {
    u64::try_from(shards).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_as_strtoul_does() {
        for (text, cursor) in [
            (&b"0"[..], Some(0)),
            (b"", Some(0)),
            (b"17", Some(17)),
            (b"+17", Some(17)),
            (b"-1", Some(u64::MAX)),
            (b"-0", Some(0)),
            (b"007", Some(7)),
            (b"18446744073709551615", Some(u64::MAX)),
            (b"18446744073709551616", None),
            (b"12\0junk", Some(12)),
            (b" 1", None),
            (b"1 ", None),
            (b"abc", None),
            (b"1x", None),
            (b"+", None),
            (b"-", None),
            (b"0x10", None),
        ] {
            assert_eq!(parse_client_cursor(text), cursor, "{text:?}");
        }
    }

    #[test]
    fn a_scan_walks_every_shard_in_order() {
        let shards = 3;
        assert_eq!(
            position(0, shards),
            Position {
                shard: 0,
                server_cursor: 0
            }
        );
        let mid_first = next(0, 40, shards).unwrap();
        assert_eq!(mid_first, 120);
        assert_eq!(
            position(mid_first, shards),
            Position {
                shard: 0,
                server_cursor: 40
            }
        );
        assert_eq!(next(0, 0, shards), Ok(1));
        assert_eq!(
            position(1, shards),
            Position {
                shard: 1,
                server_cursor: 0
            }
        );
        assert_eq!(
            position(next(1, 5, shards).unwrap(), shards),
            Position {
                shard: 1,
                server_cursor: 5
            }
        );
        assert_eq!(next(1, 0, shards), Ok(2));
        assert_eq!(next(2, 0, shards), Ok(0), "the last shard ends the scan");
    }

    #[test]
    fn one_shard_keeps_the_servers_cursor() {
        assert_eq!(next(0, 12345, 1), Ok(12345));
        assert_eq!(position(12345, 1).server_cursor, 12345);
        assert_eq!(next(0, 0, 1), Ok(0));
        assert_eq!(next(0, u64::MAX, 1), Ok(u64::MAX));
    }

    #[test]
    fn a_cursor_too_large_is_an_error() {
        assert_eq!(
            next(2, u64::MAX / 3 + 1, 3),
            Err(CursorTooLarge {
                server_cursor: u64::MAX / 3 + 1
            })
        );
        let largest = (u64::MAX - 2) / 3;
        let cursor = next(2, largest, 3).unwrap();
        assert_eq!(
            position(cursor, 3),
            Position {
                shard: 2,
                server_cursor: largest
            }
        );
    }

    #[test]
    fn any_client_cursor_points_at_some_shard() {
        for cursor in [u64::MAX, u64::MAX - 1, 7, 8] {
            assert!(position(cursor, 3).shard < 3);
        }
    }
}
