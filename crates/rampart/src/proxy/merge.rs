//! Merging the replies of a request the proxy split across shards: MGET's values in key
//! order, the summed integers of DEL/UNLINK/TOUCH/EXISTS, MSET's single `+OK`, and INFO's
//! keyspace summed over every shard. The first error among the fragments is the reply, except
//! for INFO, which sums the shards that answered so clients' connect-time INFO still works.
//! The whole-keyspace commands (SCAN, DBSIZE, KEYS...) combine as `keyspace_merge` says.

use super::keyspace_merge::KeyspaceMerge;
use super::local::Broadcast;
use bytes::{Bytes, BytesMut};
use std::ops::Range;

use rampart_protocol::{
    Protocol, ReplyType, elements as inspect_elements, encode, is_ok_status, parse_integer_reply,
};

/// How the fragments' replies combine.
pub enum MergeKind {
    /// MGET: values come back in key order (`Merging::key_fragments` says where each key is).
    Values,
    /// DEL, UNLINK, TOUCH, EXISTS.
    SumIntegers,
    /// MSET.
    AllOk,
    /// INFO: the proxy's own sections, then the keyspace summed over the shards.
    Info { local: Bytes, protocol: Protocol },
    /// A request sent to every shard (SCRIPT).
    Broadcast(Broadcast),
    /// SCAN, DBSIZE, KEYS, RANDOMKEY, FLUSHDB, FLUSHALL.
    Keyspace(KeyspaceMerge),
}

/// A split request waiting for its fragments. Its vectors and output buffer keep their
/// capacity from one request to the next (clients recycle them), so a split request costs no
/// allocation once the client has made a few.
pub struct Merging {
    kind: MergeKind,
    /// MGET: the fragment holding each key, in key order.
    pub key_fragments: Vec<u16>,
    replies: Vec<Option<Bytes>>,
    remaining: usize,
    /// MGET: the element ranges of every fragment's reply, fragment after fragment.
    elements: Vec<Range<usize>>,
    /// MGET: per fragment, the next unused and the end index into `elements`.
    cursors: Vec<(usize, usize)>,
    out: BytesMut,
}

impl Merging {
    pub fn new() -> Merging {
        Merging {
            kind: MergeKind::AllOk,
            key_fragments: Vec::new(),
            replies: Vec::new(),
            remaining: 0,
            elements: Vec::new(),
            cursors: Vec::new(),
            out: BytesMut::new(),
        }
    }

    /// Sets what to merge and how many fragments to wait for (`key_fragments` is kept).
    pub fn prepare(&mut self, kind: MergeKind, fragments: usize) {
        self.kind = kind;
        self.replies.clear();
        self.replies.resize(fragments, None);
        self.remaining = fragments;
    }

    /// Forgets the last request, keeping the capacity of its buffers.
    pub fn clear(&mut self) {
        self.key_fragments.clear();
        self.replies.clear();
        self.elements.clear();
        self.cursors.clear();
        self.kind = MergeKind::AllOk;
    }

    /// Records one fragment's reply; returns the merged reply once all have answered.
    pub fn complete(&mut self, fragment: u16, reply: Bytes) -> Option<Bytes> {
        let slot = self.replies.get_mut(usize::from(fragment))?;
        if slot.is_none() {
            *slot = Some(reply);
            self.remaining -= 1;
        }
        (self.remaining == 0).then(|| self.merge())
    }

    fn merge(&mut self) -> Bytes {
        let Merging {
            kind,
            key_fragments,
            replies,
            elements,
            cursors,
            out,
            ..
        } = self;
        let mut answered = replies.iter().flatten();
        if !matches!(kind, MergeKind::Info { .. } | MergeKind::Keyspace(_))
            && let Some(error) = answered.clone().find(|reply| is_error(reply))
        {
            return Bytes::clone(error);
        }
        match kind {
            MergeKind::Values => merge_values(out, key_fragments, replies, elements, cursors),
            MergeKind::SumIntegers => {
                match answered
                    .map(|reply| parse_integer_reply(reply))
                    .sum::<Option<i64>>()
                {
                    Some(sum) => encode::integer(out, sum),
                    None => unexpected(out, "an integer"),
                }
            }
            MergeKind::AllOk | MergeKind::Broadcast(Broadcast::AllOk) => {
                if answered.all(|reply| is_ok_status(reply)) {
                    encode::simple_string(out, b"OK");
                } else {
                    unexpected(out, "+OK");
                }
            }
            MergeKind::Broadcast(Broadcast::SameReply) => {
                let first = answered.next().cloned().unwrap_or_default();
                if answered.all(|reply| *reply == first) {
                    return first;
                }
                unexpected(out, "the same reply from every shard");
            }
            MergeKind::Broadcast(Broadcast::AllSayYes) => {
                let replies: Vec<&Bytes> = answered.collect();
                all_say_yes(out, &replies);
            }
            MergeKind::Keyspace(keyspace) => return keyspace.combine(replies, out),
            MergeKind::Info { local, protocol } => {
                let mut text = local.to_vec();
                let answered: Vec<&Bytes> = answered.filter(|reply| !is_error(reply)).collect();
                text.extend_from_slice(&summed_keyspace(&answered));
                encode::verbatim_string(out, *protocol, b"txt", &text);
            }
        }
        out.split().freeze()
    }
}

fn is_error(reply: &[u8]) -> bool {
    reply
        .first()
        .and_then(|&byte| ReplyType::from_byte(byte))
        .is_some_and(ReplyType::is_error)
}

fn unexpected(out: &mut BytesMut, wanted: &str) {
    encode::error_fmt(
        out,
        b"ERR",
        format_args!("a shard answered a split command with something other than {wanted}"),
    );
}

/// MGET: each key's value, taken in key order from its fragment's array reply.
fn merge_values(
    out: &mut BytesMut,
    key_fragments: &[u16],
    replies: &[Option<Bytes>],
    elements: &mut Vec<Range<usize>>,
    cursors: &mut Vec<(usize, usize)>,
) {
    elements.clear();
    cursors.clear();
    for reply in replies.iter().flatten() {
        let Some(items) = inspect_elements(reply) else {
            return unexpected(out, "an array of values");
        };
        let start = elements.len();
        elements.extend(items);
        cursors.push((start, elements.len()));
    }
    encode::array_header(out, key_fragments.len());
    for &fragment in key_fragments {
        let fragment = usize::from(fragment);
        let value = cursors.get_mut(fragment).and_then(|(next, end)| {
            let range = elements.get(*next..*end)?.first()?.clone();
            *next += 1;
            replies.get(fragment)?.as_ref()?.get(range)
        });
        match value {
            Some(value) => out.extend_from_slice(value),
            None => {
                out.clear();
                return unexpected(out, "an array of values");
            }
        }
    }
}

/// SCRIPT EXISTS over the shards: 1 where every shard has the script, else 0.
fn all_say_yes(out: &mut BytesMut, replies: &[&Bytes]) {
    let mut answers: Option<Vec<bool>> = None;
    for reply in replies {
        let Some(elements) = inspect_elements(reply) else {
            return unexpected(out, "an array of 0 and 1");
        };
        let these: Vec<bool> = elements
            .map(|range| reply.get(range).and_then(parse_integer_reply) == Some(1))
            .collect();
        answers = Some(match answers {
            None => these,
            Some(known) if known.len() == these.len() => {
                known.iter().zip(&these).map(|(a, b)| *a && *b).collect()
            }
            Some(_) => return unexpected(out, "one answer per script"),
        });
    }
    let answers = answers.unwrap_or_default();
    encode::array_header(out, answers.len());
    for answer in answers {
        encode::integer(out, i64::from(answer));
    }
}

/// The text of a bulk or verbatim INFO reply.
fn info_text(reply: &[u8]) -> &[u8] {
    let Some(header_end) = reply.iter().position(|&byte| byte == b'\n') else {
        return b"";
    };
    let body = reply
        .get(header_end + 1..reply.len().saturating_sub(2).max(header_end + 1))
        .unwrap_or_default();
    match reply.first() {
        Some(b'=') => body.get(4..).unwrap_or_default(),
        _ => body,
    }
}

/// `# Keyspace` with each database's keys and expires summed over the shards.
fn summed_keyspace(replies: &[&Bytes]) -> Vec<u8> {
    let mut databases: Vec<(u64, u64, u64, u128)> = Vec::new();
    for reply in replies {
        for line in info_text(reply).split(|&byte| byte == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some((db, keys, expires, avg_ttl)) = parse_keyspace_line(line) {
                match databases.iter_mut().find(|entry| entry.0 == db) {
                    Some(entry) => {
                        entry.1 += keys;
                        entry.2 += expires;
                        entry.3 += u128::from(avg_ttl) * u128::from(expires);
                    }
                    None => databases.push((
                        db,
                        keys,
                        expires,
                        u128::from(avg_ttl) * u128::from(expires),
                    )),
                }
            }
        }
    }
    databases.sort_unstable_by_key(|entry| entry.0);
    let mut text = b"# Keyspace\r\n".to_vec();
    for (db, keys, expires, weighted_ttl) in databases {
        let avg_ttl = weighted_ttl.checked_div(u128::from(expires)).unwrap_or(0);
        text.extend_from_slice(
            format!("db{db}:keys={keys},expires={expires},avg_ttl={avg_ttl}\r\n").as_bytes(),
        );
    }
    text
}

/// `db0:keys=1,expires=0,avg_ttl=0` as (db, keys, expires, avg_ttl).
fn parse_keyspace_line(line: &[u8]) -> Option<(u64, u64, u64, u64)> {
    let line = std::str::from_utf8(line).ok()?;
    let (db, fields) = line.strip_prefix("db")?.split_once(':')?;
    let mut values = [0u64; 3];
    for field in fields.split(',') {
        let (name, value) = field.split_once('=')?;
        let index = ["keys", "expires", "avg_ttl"]
            .iter()
            .position(|known| *known == name);
        if let Some(known) = index.and_then(|index| values.get_mut(index)) {
            *known = value.parse().ok()?;
        }
    }
    Some((db.parse().ok()?, values[0], values[1], values[2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(kind: MergeKind, replies: &[&'static [u8]]) -> Bytes {
        merge_keys(kind, &[], replies)
    }

    fn merge_keys(kind: MergeKind, key_fragments: &[u16], replies: &[&'static [u8]]) -> Bytes {
        let mut merging = Merging::new();
        merging.key_fragments.extend_from_slice(key_fragments);
        merging.prepare(kind, replies.len());
        let mut merged = None;
        for (fragment, reply) in replies.iter().enumerate().rev() {
            merged = merging.complete(fragment as u16, Bytes::from_static(reply));
        }
        merged.expect("all fragments answered")
    }

    #[test]
    fn mget_values_come_back_in_key_order() {
        let merged = merge_keys(
            MergeKind::Values,
            &[1, 0, 1, 0],
            &[b"*2\r\n$1\r\nb\r\n$-1\r\n", b"*2\r\n$1\r\na\r\n$1\r\nc\r\n"],
        );
        assert_eq!(
            &merged[..],
            b"*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$-1\r\n"
        );
    }

    #[test]
    fn a_recycled_merge_state_starts_clean() {
        let mut merging = Merging::new();
        merging.key_fragments.extend_from_slice(&[0, 0]);
        merging.prepare(MergeKind::Values, 1);
        let first = merging.complete(0, Bytes::from_static(b"*2\r\n$1\r\nx\r\n$1\r\ny\r\n"));
        assert_eq!(first.as_deref(), Some(&b"*2\r\n$1\r\nx\r\n$1\r\ny\r\n"[..]));
        merging.clear();
        merging.prepare(MergeKind::SumIntegers, 2);
        assert_eq!(merging.complete(1, Bytes::from_static(b":2\r\n")), None);
        let second = merging.complete(0, Bytes::from_static(b":3\r\n"));
        assert_eq!(second.as_deref(), Some(&b":5\r\n"[..]));
    }

    #[test]
    fn a_short_fragment_reply_is_an_error_not_a_panic() {
        let merged = merge_keys(
            MergeKind::Values,
            &[0, 0, 0],
            &[b"*2\r\n$1\r\nx\r\n$1\r\ny\r\n"],
        );
        assert!(merged.starts_with(b"-ERR"), "{merged:?}");
    }

    #[test]
    fn sums_and_oks_and_errors() {
        assert_eq!(
            &merge(MergeKind::SumIntegers, &[b":2\r\n", b":3\r\n"])[..],
            b":5\r\n"
        );
        assert_eq!(
            &merge(MergeKind::AllOk, &[b"+OK\r\n", b"+OK\r\n"])[..],
            b"+OK\r\n"
        );
        let failed = merge(
            MergeKind::SumIntegers,
            &[b":2\r\n", b"-ERR Connection refused\r\n"],
        );
        assert_eq!(&failed[..], b"-ERR Connection refused\r\n");
    }

    #[test]
    fn info_sums_the_shards_that_answered() {
        let kind = MergeKind::Info {
            local: Bytes::from_static(b""),
            protocol: Protocol::Resp2,
        };
        let merged = merge(
            kind,
            &[
                b"-ERR Connection refused\r\n",
                b"$30\r\ndb0:keys=4,expires=0,avg_ttl=0\r\n",
            ],
        );
        let text = String::from_utf8_lossy(&merged);
        assert!(
            text.starts_with('$') && text.contains("db0:keys=4"),
            "{text}"
        );
    }

    #[test]
    fn keyspace_is_summed_per_database() {
        let kind = MergeKind::Info {
            local: Bytes::from_static(b"# Server\r\n\r\n"),
            protocol: Protocol::Resp2,
        };
        let merged = merge(
            kind,
            &[
                b"$40\r\n# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=10\r\n\r\n",
                b"$40\r\n# Keyspace\r\ndb0:keys=4,expires=1,avg_ttl=30\r\n\r\n",
            ],
        );
        let text = String::from_utf8_lossy(&merged);
        assert!(text.contains("db0:keys=7,expires=2,avg_ttl=20"), "{text}");
    }
}
