//! Combining the shards' replies to a whole-keyspace command: DBSIZE's sum, KEYS's one array,
//! RANDOMKEY's pick among the shards that have a key, FLUSHDB's and FLUSHALL's `+OK`, and SCAN's
//! reply with its cursor rewritten to carry the shard (see `scan_cursor`); and to PUBSUB's
//! introspection: CHANNELS' one array (as KEYS), NUMSUB's `channel, count` pairs put back in
//! the request's order, NUMPAT's largest count. A shard's error is the reply, with the shard's
//! name in it, so a client never gets a partial answer silently. Pure functions of the replies;
//! RESP2 and RESP3 replies pass through in their own protocol.

use bytes::{Bytes, BytesMut};
use rampart_protocol::{Elements, ReplyType, elements, encode, is_ok_status, parse_integer_reply};

use super::scan_cursor::{self, CursorTooLarge};

/// How the replies of a whole-keyspace command combine, and the shards they come from.
pub struct KeyspaceMerge {
    pub combine: Combine,
    /// The name of the shard each fragment went to, by fragment.
    pub shards: Vec<String>,
}

/// What the command's reply is made of.
pub enum Combine {
    /// DBSIZE: the sum of the shards' integers.
    Sum,
    /// PUBSUB NUMPAT: the largest of the shards' integers.
    Max,
    /// KEYS, PUBSUB CHANNELS and SHARDCHANNELS: every shard's array, one after another.
    Concat,
    /// PUBSUB NUMSUB and SHARDNUMSUB: for each channel of the request, in order, the fragment
    /// it went to; each fragment answers a flat `channel, count` array for its channels, in
    /// the order it got them. The reply is one flat array, as redis-server 7.0 gives in RESP2
    /// and RESP3 alike.
    Pairs { fragments: Vec<usize> },
    /// RANDOMKEY: the key of one of the shards that have one, the `pick`-th of them (modulo
    /// their number); nil when no shard has a key.
    RandomKey { pick: u64 },
    /// FLUSHDB, FLUSHALL: `+OK` once every shard said it.
    AllOk,
    /// SCAN on server `shard` of `shards`: its reply, with the client's next cursor.
    Scan { shard: usize, shards: usize },
}

impl KeyspaceMerge {
    /// The reply to the client, from every fragment's reply (by fragment).
    pub fn combine(&self, replies: &[Option<Bytes>], out: &mut BytesMut) -> Bytes {
        let answered = || {
            replies
                .iter()
                .enumerate()
                .filter_map(|(fragment, reply)| Some((fragment, reply.as_ref()?)))
        };
        if let Some((fragment, error)) = answered().find(|(_, reply)| is_error(reply)) {
            named_error(out, self.name(fragment), error);
            return out.split().freeze();
        }
        match &self.combine {
            Combine::Sum => {
                let mut sum = 0i64;
                for (fragment, reply) in answered() {
                    match parse_integer_reply(reply).and_then(|count| sum.checked_add(count)) {
                        Some(total) => sum = total,
                        None => return self.unexpected(out, fragment, "an integer"),
                    }
                }
                encode::integer(out, sum);
            }
            Combine::Max => {
                let mut max = 0i64;
                for (fragment, reply) in answered() {
                    match parse_integer_reply(reply) {
                        Some(count) => max = max.max(count),
                        None => return self.unexpected(out, fragment, "an integer"),
                    }
                }
                encode::integer(out, max);
            }
            Combine::Pairs { fragments } => {
                if let Err(fragment) = merge_pairs(out, fragments, replies) {
                    return self.unexpected(out, fragment, "a channel and its count per channel");
                }
            }
            Combine::Concat => {
                let mut bodies = Vec::with_capacity(replies.len());
                let mut total = 0u64;
                for (fragment, reply) in answered() {
                    let Some(items) = elements(reply) else {
                        return self.unexpected(out, fragment, "an array");
                    };
                    total += items.declared_len();
                    let body = items
                        .clone()
                        .next()
                        .map_or(reply.len(), |first| first.start);
                    bodies.push(reply.get(body..).unwrap_or_default());
                }
                encode::array_header(out, usize::try_from(total).unwrap_or(usize::MAX));
                for body in bodies {
                    out.extend_from_slice(body);
                }
            }
            Combine::RandomKey { pick } => {
                let keys: Vec<&Bytes> = answered()
                    .map(|(_, reply)| reply)
                    .filter(|reply| !is_nil(reply))
                    .collect();
                let count = u64::try_from(keys.len()).unwrap_or(u64::MAX);
                let chosen = pick
                    .checked_rem(count)
                    .and_then(|at| keys.get(usize::try_from(at).ok()?).copied());
                return match (chosen, answered().next()) {
                    (Some(key), _) | (None, Some((_, key))) => Bytes::clone(key),
                    (None, None) => {
                        self.unexpected(out, 0, "a key or nil");
                        out.split().freeze()
                    }
                };
            }
            Combine::AllOk => {
                if let Some((fragment, _)) = answered().find(|(_, reply)| !is_ok_status(reply)) {
                    return self.unexpected(out, fragment, "+OK");
                }
                encode::simple_string(out, b"OK");
            }
            Combine::Scan { shard, shards } => {
                if let Some((_, reply)) = answered().next()
                    && let Err(problem) = rewrite_scan(out, reply, *shard, *shards)
                {
                    out.clear();
                    match problem {
                        ScanProblem::Malformed => {
                            return self.unexpected(out, 0, "a cursor and an array of keys");
                        }
                        ScanProblem::TooLarge(CursorTooLarge { server_cursor }) => {
                            encode::error_fmt(
                                out,
                                b"ERR",
                                format_args!(
                                    "shard '{}' answered SCAN with cursor {server_cursor}, too \
                                     large to carry the shard's index through the proxy \
                                     ({shards} shards)",
                                    self.name(0)
                                ),
                            );
                        }
                    }
                }
            }
        }
        out.split().freeze()
    }

    fn name(&self, fragment: usize) -> &str {
        self.shards.get(fragment).map_or("?", String::as_str)
    }

    fn unexpected(&self, out: &mut BytesMut, fragment: usize, wanted: &str) -> Bytes {
        out.clear();
        encode::error_fmt(
            out,
            b"ERR",
            format_args!(
                "shard '{}' answered with something other than {wanted}",
                self.name(fragment)
            ),
        );
        out.split().freeze()
    }
}

/// NUMSUB's pairs in the request's order, each taken from the reply of the fragment its
/// channel went to; `Err` names a fragment whose reply is short or not an array.
fn merge_pairs(
    out: &mut BytesMut,
    fragments: &[usize],
    replies: &[Option<Bytes>],
) -> Result<(), usize> {
    let mut items: Vec<Option<Elements<'_>>> = replies
        .iter()
        .map(|reply| elements(reply.as_ref()?))
        .collect();
    encode::array_header(out, fragments.len() * 2);
    for &fragment in fragments {
        let reply = replies.get(fragment).and_then(Option::as_ref);
        let pair = items
            .get_mut(fragment)
            .and_then(Option::as_mut)
            .and_then(|items| Some((items.next()?, items.next()?)));
        let (Some(reply), Some((channel, count))) = (reply, pair) else {
            return Err(fragment);
        };
        let (Some(channel), Some(count)) = (reply.get(channel), reply.get(count)) else {
            return Err(fragment);
        };
        out.extend_from_slice(channel);
        out.extend_from_slice(count);
    }
    Ok(())
}

/// Why a SCAN reply could not be rewritten.
enum ScanProblem {
    /// Not `[cursor, [key...]]`.
    Malformed,
    TooLarge(CursorTooLarge),
}

/// `[next client cursor, the shard's keys as they came]`.
fn rewrite_scan(
    out: &mut BytesMut,
    reply: &[u8],
    shard: usize,
    shards: usize,
) -> Result<(), ScanProblem> {
    let mut items = elements(reply).ok_or(ScanProblem::Malformed)?;
    let (Some(cursor), Some(keys), None) = (items.next(), items.next(), items.next()) else {
        return Err(ScanProblem::Malformed);
    };
    let server_cursor = reply
        .get(cursor)
        .and_then(text_of)
        .and_then(|text| std::str::from_utf8(text).ok()?.parse::<u64>().ok())
        .ok_or(ScanProblem::Malformed)?;
    let next = scan_cursor::next(shard, server_cursor, shards).map_err(ScanProblem::TooLarge)?;
    encode::array_header(out, 2);
    encode::bulk_string(out, next.to_string().as_bytes());
    out.extend_from_slice(reply.get(keys.start..).unwrap_or_default());
    Ok(())
}

/// The text of a bulk (`$3\r\nabc\r\n`) or simple (`+abc\r\n`) string.
fn text_of(value: &[u8]) -> Option<&[u8]> {
    let line_end = value.iter().position(|&byte| byte == b'\r')?;
    match value.first()? {
        b'+' => value.get(1..line_end),
        b'$' => value.get(line_end + 2..value.len().checked_sub(2)?),
        _ => None,
    }
}

fn is_error(reply: &[u8]) -> bool {
    reply
        .first()
        .and_then(|&byte| ReplyType::from_byte(byte))
        .is_some_and(ReplyType::is_error)
}

/// A nil reply: RESP2's `$-1` or `*-1`, RESP3's `_`.
fn is_nil(reply: &[u8]) -> bool {
    reply.starts_with(b"_") || reply.starts_with(b"$-1\r\n") || reply.starts_with(b"*-1\r\n")
}

/// A shard's error with the shard named: `-CODE shard 'name': message`, or the error as it is
/// when it names the shard already (`-TRYAGAIN shard 'name' has no master ...`).
fn named_error(out: &mut BytesMut, shard: &str, reply: &Bytes) {
    let line_end = reply
        .iter()
        .position(|&byte| byte == b'\r')
        .unwrap_or(reply.len());
    let text = match reply.first() {
        Some(b'!') => reply.get(line_end + 2..reply.len().saturating_sub(2)),
        _ => reply.get(1..line_end),
    };
    let text = String::from_utf8_lossy(text.unwrap_or_default()).replace(['\r', '\n'], " ");
    let (code, message) = text.split_once(' ').unwrap_or(("ERR", text.as_str()));
    if message.contains(&format!("shard '{shard}'")) {
        encode::error(out, code.as_bytes(), message.as_bytes());
    } else {
        encode::error_fmt(
            out,
            code.as_bytes(),
            format_args!("shard '{shard}': {message}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn combine(combine: Combine, replies: &[&'static [u8]]) -> Bytes {
        let merge = KeyspaceMerge {
            combine,
            shards: (0..replies.len())
                .map(|index| format!("s{index}"))
                .collect(),
        };
        let replies: Vec<Option<Bytes>> = replies
            .iter()
            .map(|reply| Some(Bytes::from_static(reply)))
            .collect();
        merge.combine(&replies, &mut BytesMut::new())
    }

    #[test]
    fn dbsize_sums_and_names_a_failed_shard() {
        assert_eq!(
            &combine(Combine::Sum, &[b":2\r\n", b":3\r\n", b":0\r\n"])[..],
            b":5\r\n"
        );
        assert_eq!(
            &combine(
                Combine::Sum,
                &[b":2\r\n", b"-ERR Connection refused\r\n", b":1\r\n"]
            )[..],
            b"-ERR shard 's1': Connection refused\r\n"
        );
        assert_eq!(
            &combine(Combine::Sum, &[b"-LOADING Redis is loading\r\n"])[..],
            b"-LOADING shard 's0': Redis is loading\r\n"
        );
        let named = b"-TRYAGAIN shard 's0' has no master (failover in progress)\r\n";
        assert_eq!(&combine(Combine::Sum, &[named])[..], named);
        assert!(combine(Combine::Sum, &[b"+OK\r\n"]).starts_with(b"-ERR shard 's0' answered"));
    }

    #[test]
    fn keys_are_one_array_in_either_protocol() {
        assert_eq!(
            &combine(
                Combine::Concat,
                &[
                    b"*1\r\n$1\r\na\r\n",
                    b"*0\r\n",
                    b"*2\r\n$1\r\nb\r\n$2\r\ncc\r\n"
                ]
            )[..],
            b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$2\r\ncc\r\n"
        );
        assert_eq!(
            &combine(Combine::Concat, &[b"*0\r\n", b"*0\r\n"])[..],
            b"*0\r\n"
        );
    }

    #[test]
    fn randomkey_picks_a_shard_with_a_key() {
        for pick in 0..4 {
            let reply = combine(
                Combine::RandomKey { pick },
                &[b"$-1\r\n", b"$1\r\na\r\n", b"$-1\r\n", b"$1\r\nb\r\n"],
            );
            let wanted: &[u8] = if pick % 2 == 0 {
                b"$1\r\na\r\n"
            } else {
                b"$1\r\nb\r\n"
            };
            assert_eq!(&reply[..], wanted);
        }
        assert_eq!(
            &combine(Combine::RandomKey { pick: 9 }, &[b"_\r\n", b"_\r\n"])[..],
            b"_\r\n"
        );
        assert_eq!(
            &combine(Combine::RandomKey { pick: 9 }, &[b"$-1\r\n", b"$-1\r\n"])[..],
            b"$-1\r\n"
        );
    }

    #[test]
    fn flush_is_ok_only_when_every_shard_says_so() {
        assert_eq!(
            &combine(Combine::AllOk, &[b"+OK\r\n", b"+OK\r\n"])[..],
            b"+OK\r\n"
        );
        assert_eq!(
            &combine(
                Combine::AllOk,
                &[b"+OK\r\n", b"-ERR Connection reset by peer\r\n"]
            )[..],
            b"-ERR shard 's1': Connection reset by peer\r\n"
        );
    }

    #[test]
    fn numpat_is_the_largest_count() {
        assert_eq!(
            &combine(Combine::Max, &[b":2\r\n", b":5\r\n", b":0\r\n"])[..],
            b":5\r\n"
        );
        assert_eq!(
            &combine(Combine::Max, &[b":1\r\n", b"-ERR Connection refused\r\n"])[..],
            b"-ERR shard 's1': Connection refused\r\n"
        );
        assert!(combine(Combine::Max, &[b"*0\r\n"]).starts_with(b"-ERR shard 's0' answered"));
    }

    #[test]
    fn numsub_pairs_come_back_in_request_order() {
        // Channels a, b, c, d: a and c on fragment 1, b and d on fragment 0.
        let merged = combine(
            Combine::Pairs {
                fragments: vec![1, 0, 1, 0],
            },
            &[
                b"*4\r\n$1\r\nb\r\n:2\r\n$1\r\nd\r\n:0\r\n",
                b"*4\r\n$1\r\na\r\n:1\r\n$1\r\nc\r\n:3\r\n",
            ],
        );
        assert_eq!(
            &merged[..],
            b"*8\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n:2\r\n$1\r\nc\r\n:3\r\n$1\r\nd\r\n:0\r\n"
        );
        let short = combine(
            Combine::Pairs {
                fragments: vec![0, 0],
            },
            &[b"*2\r\n$1\r\na\r\n:1\r\n"],
        );
        assert!(short.starts_with(b"-ERR shard 's0' answered"), "{short:?}");
        let failed = combine(
            Combine::Pairs {
                fragments: vec![0, 1],
            },
            &[b"*2\r\n$1\r\na\r\n:1\r\n", b"-ERR Connection refused\r\n"],
        );
        assert_eq!(&failed[..], b"-ERR shard 's1': Connection refused\r\n");
    }

    #[test]
    fn scan_carries_the_shard_in_the_cursor() {
        let reply: &[u8] = b"*2\r\n$2\r\n12\r\n*1\r\n$1\r\nk\r\n";
        let merge = |shard| {
            let merge = KeyspaceMerge {
                combine: Combine::Scan { shard, shards: 3 },
                shards: vec!["s".to_owned()],
            };
            merge.combine(&[Some(Bytes::from_static(reply))], &mut BytesMut::new())
        };
        assert_eq!(&merge(1)[..], b"*2\r\n$2\r\n37\r\n*1\r\n$1\r\nk\r\n");
        let last: &[u8] = b"*2\r\n$1\r\n0\r\n*0\r\n";
        for (shard, cursor) in [(0, &b"1"[..]), (1, b"2"), (2, b"0")] {
            let merge = KeyspaceMerge {
                combine: Combine::Scan { shard, shards: 3 },
                shards: vec!["s".to_owned()],
            };
            let merged = merge.combine(&[Some(Bytes::from_static(last))], &mut BytesMut::new());
            let wanted = [b"*2\r\n$1\r\n", cursor, b"\r\n*0\r\n"].concat();
            assert_eq!(&merged[..], &wanted[..]);
        }
    }

    #[test]
    fn a_scan_cursor_too_large_or_a_bad_reply_is_an_error() {
        let huge: &[u8] = b"*2\r\n$20\r\n18446744073709551615\r\n*0\r\n";
        let merged = combine(
            Combine::Scan {
                shard: 0,
                shards: 2,
            },
            &[huge],
        );
        assert!(
            merged.starts_with(b"-ERR shard 's0' answered SCAN with cursor 18446744073709551615"),
            "{merged:?}"
        );
        let merged = combine(
            Combine::Scan {
                shard: 0,
                shards: 2,
            },
            &[b"*1\r\n$1\r\n0\r\n"],
        );
        assert!(
            merged.starts_with(b"-ERR shard 's0' answered with"),
            "{merged:?}"
        );
    }
}
