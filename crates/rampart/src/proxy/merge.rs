//! Merging the replies of a request the proxy split across shards: MGET's values in key
//! order, the summed integers of DEL/UNLINK/TOUCH/EXISTS, MSET's single `+OK`, and INFO's
//! keyspace summed over every shard. The first error among the fragments is the reply, except
//! for INFO, which sums the shards that answered so clients' connect-time INFO still works.

use super::local::Broadcast;
use bytes::{Bytes, BytesMut};
use rampart_protocol::{Protocol, ReplyType, elements, encode, is_ok_status, parse_integer_reply};

/// How the fragments' replies combine.
pub enum MergeKind {
    /// MGET: `key_fragments[i]` is the fragment holding key i; values come back in key order.
    Values { key_fragments: Vec<u16> },
    /// DEL, UNLINK, TOUCH, EXISTS.
    SumIntegers,
    /// MSET.
    AllOk,
    /// INFO: the proxy's own sections, then the keyspace summed over the shards.
    Info { local: Bytes, protocol: Protocol },
    /// A request sent to every shard (SCRIPT).
    Broadcast(Broadcast),
}

/// A split request waiting for its fragments.
pub struct Merging {
    kind: MergeKind,
    replies: Vec<Option<Bytes>>,
    remaining: usize,
}

impl Merging {
    pub fn new(kind: MergeKind, fragments: usize) -> Merging {
        Merging {
            kind,
            replies: vec![None; fragments],
            remaining: fragments,
        }
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

    fn merge(&self) -> Bytes {
        let replies: Vec<&Bytes> = self.replies.iter().flatten().collect();
        let first_error = replies.iter().find(|reply| is_error(reply));
        if let (Some(error), false) = (first_error, matches!(self.kind, MergeKind::Info { .. })) {
            return Bytes::clone(error);
        }
        let mut out = BytesMut::new();
        match &self.kind {
            MergeKind::Values { key_fragments } => {
                merge_values(&mut out, key_fragments, &replies);
            }
            MergeKind::SumIntegers => {
                let sum: Option<i64> = replies.iter().map(|reply| parse_integer_reply(reply)).sum();
                match sum {
                    Some(sum) => encode::integer(&mut out, sum),
                    None => unexpected(&mut out, "an integer"),
                }
            }
            MergeKind::AllOk => {
                if replies.iter().all(|reply| is_ok_status(reply)) {
                    encode::simple_string(&mut out, b"OK");
                } else {
                    unexpected(&mut out, "+OK");
                }
            }
            MergeKind::Broadcast(Broadcast::SameReply) => {
                if replies.windows(2).all(|pair| pair[0] == pair[1]) {
                    return Bytes::clone(replies.first().copied().unwrap_or(&Bytes::new()));
                }
                unexpected(&mut out, "the same reply from every shard");
            }
            MergeKind::Broadcast(Broadcast::AllOk) => {
                if replies.iter().all(|reply| is_ok_status(reply)) {
                    encode::simple_string(&mut out, b"OK");
                } else {
                    unexpected(&mut out, "+OK");
                }
            }
            MergeKind::Broadcast(Broadcast::AllSayYes) => all_say_yes(&mut out, &replies),
            MergeKind::Info { local, protocol } => {
                let mut text = local.to_vec();
                let answered: Vec<&Bytes> = replies
                    .into_iter()
                    .filter(|reply| !is_error(reply))
                    .collect();
                text.extend_from_slice(&summed_keyspace(&answered));
                encode::verbatim_string(&mut out, *protocol, b"txt", &text);
            }
        }
        out.freeze()
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

fn merge_values(out: &mut BytesMut, key_fragments: &[u16], replies: &[&Bytes]) {
    let mut cursors: Vec<_> = replies.iter().map(|reply| elements(reply)).collect();
    let mut values = Vec::with_capacity(key_fragments.len());
    for &fragment in key_fragments {
        let element = cursors
            .get_mut(usize::from(fragment))
            .and_then(|cursor| cursor.as_mut()?.next());
        match element {
            Some(range) => values.push(&replies[usize::from(fragment)][range]),
            None => return unexpected(out, "an array of values"),
        }
    }
    encode::array_header(out, values.len());
    for value in values {
        out.extend_from_slice(value);
    }
}

/// SCRIPT EXISTS over the shards: 1 where every shard has the script, else 0.
fn all_say_yes(out: &mut BytesMut, replies: &[&Bytes]) {
    let mut answers: Option<Vec<bool>> = None;
    for reply in replies {
        let Some(elements) = elements(reply) else {
            return unexpected(out, "an array of 0 and 1");
        };
        let these: Vec<bool> = elements
            .map(|range| parse_integer_reply(&reply[range]) == Some(1))
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
    let body = &reply[header_end + 1..reply.len().saturating_sub(2).max(header_end + 1)];
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
        if let Some(index) = index {
            values[index] = value.parse().ok()?;
        }
    }
    Some((db.parse().ok()?, values[0], values[1], values[2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(kind: MergeKind, replies: &[&'static [u8]]) -> Bytes {
        let mut merging = Merging::new(kind, replies.len());
        let mut merged = None;
        for (fragment, reply) in replies.iter().enumerate().rev() {
            merged = merging.complete(fragment as u16, Bytes::from_static(reply));
        }
        merged.expect("all fragments answered")
    }

    #[test]
    fn mget_values_come_back_in_key_order() {
        let kind = MergeKind::Values {
            key_fragments: vec![1, 0, 1, 0],
        };
        let merged = merge(
            kind,
            &[b"*2\r\n$1\r\nb\r\n$-1\r\n", b"*2\r\n$1\r\na\r\n$1\r\nc\r\n"],
        );
        assert_eq!(
            &merged[..],
            b"*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$-1\r\n"
        );
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
