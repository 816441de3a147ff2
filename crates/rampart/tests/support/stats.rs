//! The stats document rampart and nutcracker serve: a tiny parser for its JSON (objects,
//! strings, numbers, no escapes), its counters by pool and server, waiting for a counter to
//! reach a value, and the clock its times are on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::wait_until;

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Num(u64),
    Str(String),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub fn parse(text: &str) -> Json {
        let bytes = text.as_bytes();
        let mut pos = 0;
        let value = Json::value(bytes, &mut pos);
        Json::skip_space(bytes, &mut pos);
        assert_eq!(
            pos,
            bytes.len(),
            "trailing bytes after the document: {text}"
        );
        value
    }

    fn skip_space(bytes: &[u8], pos: &mut usize) {
        while *pos < bytes.len() && bytes[*pos].is_ascii_whitespace() {
            *pos += 1;
        }
    }

    fn expect(bytes: &[u8], pos: &mut usize, byte: u8) {
        Json::skip_space(bytes, pos);
        assert_eq!(
            bytes.get(*pos).copied(),
            Some(byte),
            "expected {:?} at byte {pos} of {}",
            byte as char,
            String::from_utf8_lossy(bytes)
        );
        *pos += 1;
    }

    fn string(bytes: &[u8], pos: &mut usize) -> String {
        Json::expect(bytes, pos, b'"');
        let start = *pos;
        while bytes[*pos] != b'"' {
            assert_ne!(bytes[*pos], b'\\', "no escapes expected");
            *pos += 1;
        }
        *pos += 1;
        String::from_utf8(bytes[start..*pos - 1].to_vec()).expect("UTF-8 string")
    }

    fn value(bytes: &[u8], pos: &mut usize) -> Json {
        Json::skip_space(bytes, pos);
        match bytes[*pos] {
            b'"' => Json::Str(Json::string(bytes, pos)),
            b'0'..=b'9' => {
                let start = *pos;
                while *pos < bytes.len() && bytes[*pos].is_ascii_digit() {
                    *pos += 1;
                }
                Json::Num(
                    std::str::from_utf8(&bytes[start..*pos])
                        .unwrap()
                        .parse()
                        .expect("number fits u64"),
                )
            }
            b'{' => {
                *pos += 1;
                let mut entries = Vec::new();
                Json::skip_space(bytes, pos);
                if bytes[*pos] == b'}' {
                    *pos += 1;
                    return Json::Obj(entries);
                }
                loop {
                    let key = Json::string(bytes, pos);
                    Json::expect(bytes, pos, b':');
                    entries.push((key, Json::value(bytes, pos)));
                    Json::skip_space(bytes, pos);
                    match bytes[*pos] {
                        b',' => *pos += 1,
                        b'}' => {
                            *pos += 1;
                            return Json::Obj(entries);
                        }
                        other => panic!("unexpected {:?} at byte {pos}", other as char),
                    }
                }
            }
            other => panic!("unexpected {:?} at byte {pos}", other as char),
        }
    }

    pub fn entries(&self) -> &[(String, Json)] {
        match self {
            Json::Obj(entries) => entries,
            other => panic!("not an object: {other:?}"),
        }
    }

    pub fn get(&self, key: &str) -> &Json {
        self.entries()
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
            .unwrap_or_else(|| panic!("no key {key:?} in {self:?}"))
    }

    pub fn num(&self) -> u64 {
        match self {
            Json::Num(number) => *number,
            other => panic!("not a number: {other:?}"),
        }
    }

    pub fn keys(&self) -> Vec<&str> {
        self.entries().iter().map(|(key, _)| key.as_str()).collect()
    }

    /// The server objects of a pool object.
    pub fn servers(&self) -> Vec<(&str, &Json)> {
        self.entries()
            .iter()
            .filter(|(_, value)| matches!(value, Json::Obj(_)))
            .map(|(name, value)| (name.as_str(), value))
            .collect()
    }
}

/// A pool counter.
/// The names of pool `pool`'s servers in a stats document, sorted.
pub fn pool_servers(stats: &str, pool: &str) -> Vec<String> {
    let mut servers: Vec<String> = Json::parse(stats)
        .get(pool)
        .servers()
        .into_iter()
        .map(|(name, _)| name.to_string())
        .collect();
    servers.sort();
    servers
}

pub fn pool_counter(stats: &str, pool: &str, name: &str) -> u64 {
    Json::parse(stats).get(pool).get(name).num()
}

/// A server counter summed over the pool's servers.
pub fn servers_sum(stats: &str, pool: &str, name: &str) -> u64 {
    Json::parse(stats)
        .get(pool)
        .servers()
        .iter()
        .map(|(_, server)| server.get(name).num())
        .sum()
}

/// A counter of one server of a pool.
pub fn server_counter(stats: &str, pool: &str, server: &str, name: &str) -> u64 {
    Json::parse(stats).get(pool).get(server).get(name).num()
}

/// Polls the stats (published every 100 ms) until `read(stats) >= target`, then returns it.
pub fn stat_reaching(stats: impl Fn() -> String, read: impl Fn(&str) -> u64, target: u64) -> u64 {
    let mut last = 0;
    wait_until(
        &format!("a stats counter to reach {target}"),
        Duration::from_secs(5),
        || {
            last = read(&stats());
            last >= target
        },
    );
    last
}

/// Polls the stats until `read(stats) >= target`, then asserts it is exactly `target`.
pub fn assert_stat(
    stats: impl Fn() -> String,
    read: impl Fn(&str) -> u64,
    target: u64,
    what: &str,
) {
    assert_eq!(stat_reaching(stats, read, target), target, "{what}");
}

/// Now, in microseconds since the epoch, as `server_ejected_at` is (`timestamp` is in seconds).
pub fn now_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros()
}
