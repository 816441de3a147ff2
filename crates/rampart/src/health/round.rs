//! One probe round: every pool at once, and within a pool the PING and every shard each on a
//! connection of its own, so that a stalled shard delays nothing else (the proxy answers a
//! client in request order). Everything shares one deadline, `limit` after the round starts,
//! so a round ends within about `limit` whatever hangs. Every failure becomes a reason string.

use std::future::Future;
use std::io;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use super::keys::{KEY_PREFIX, SEARCH_LIMIT};
use super::report::{HealthReport, PoolHealth, ShardHealth};
use super::{PoolProbe, Probe, ShardProbe};
use crate::topology::link::Link;

/// The longest reply text a reason quotes.
const QUOTED_REPLY: usize = 200;

/// The round's deadline and the limit it came from (for the reasons' text).
#[derive(Debug, Clone, Copy)]
struct Clock {
    deadline: Instant,
    limit: Duration,
}

impl Clock {
    /// `work`, cut off at the deadline; its error or the time-out as text.
    async fn bound<T>(self, work: impl Future<Output = io::Result<T>>) -> Result<T, String> {
        match tokio::time::timeout_at(self.deadline, work).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("timed out after {} ms", self.limit.as_millis())),
        }
    }
}

impl Probe {
    /// One round, all pools concurrently: connect to the pool's listener (TCP or unix), AUTH
    /// when the pool has `redis_auth`, PING (answered by the proxy itself), and `EXISTS <probe
    /// key>` for each shard (forwarded by the proxy to that shard). Every step must end within
    /// `limit` of the round's start. Never panics.
    pub async fn run(&self, limit: Duration) -> HealthReport {
        let clock = Clock {
            deadline: Instant::now() + limit,
            limit,
        };
        let pools = join_all(self.pools.iter().map(|pool| pool.run(clock))).await;
        HealthReport { pools }
    }
}

impl PoolProbe {
    async fn run(&self, clock: Clock) -> PoolHealth {
        let shards = join_all(self.shards.iter().map(|shard| self.ask_shard(shard, clock)));
        let ((listener, ping), shards) = tokio::join!(self.ping(clock), shards);
        PoolHealth {
            name: self.name.clone(),
            listen: self.shown.clone(),
            listener,
            ping,
            shards,
        }
    }

    /// The listener's verdict (can a client connect?) and the PING's.
    async fn ping(&self, clock: Clock) -> (Result<(), String>, Result<Duration, String>) {
        let mut link = match clock.bound(Link::connect(&self.target, clock.limit)).await {
            Ok(link) => link,
            Err(reason) => return (Err(reason), Err("not sent: no connection".to_string())),
        };
        let ping = async {
            self.authenticate(&mut link, clock).await?;
            let (took, reply) = ask(&mut link, &[b"PING"], clock).await?;
            if reply.as_slice() == b"+PONG\r\n" {
                Ok(took)
            } else {
                Err(quoted(&reply))
            }
        }
        .await;
        (Ok(()), ping)
    }

    async fn ask_shard(&self, shard: &ShardProbe, clock: Clock) -> ShardHealth {
        let answer = match &shard.key {
            None => Err(format!(
                "not probed: none of the keys {KEY_PREFIX}0 to {KEY_PREFIX}{} maps to this shard",
                SEARCH_LIMIT.saturating_sub(1)
            )),
            Some(key) => {
                async {
                    let mut link = clock
                        .bound(Link::connect(&self.target, clock.limit))
                        .await
                        .map_err(|reason| format!("cannot connect: {reason}"))?;
                    self.authenticate(&mut link, clock).await?;
                    let (took, reply) = ask(&mut link, &[b"EXISTS", key], clock).await?;
                    match reply.first() {
                        Some(b':') => Ok(took),
                        Some(b'-') => Err(quoted(&reply)),
                        _ => Err(format!("unexpected reply {}", quoted(&reply))),
                    }
                }
                .await
            }
        };
        ShardHealth {
            name: shard.name.clone(),
            index: shard.index,
            answer,
        }
    }

    /// AUTH with the pool's password, when it has one; anything but +OK is a failure.
    async fn authenticate(&self, link: &mut Link, clock: Clock) -> Result<(), String> {
        let Some(password) = &self.auth else {
            return Ok(());
        };
        let (_, reply) = ask(link, &[b"AUTH", password.as_bytes()], clock)
            .await
            .map_err(|reason| format!("AUTH: {reason}"))?;
        if reply.as_slice() == b"+OK\r\n" {
            Ok(())
        } else {
            Err(format!("AUTH: {}", quoted(&reply)))
        }
    }
}

/// Sends one command and reads its reply before the deadline; how long it took, and the reply.
async fn ask(link: &mut Link, args: &[&[u8]], clock: Clock) -> Result<(Duration, Vec<u8>), String> {
    let sent = Instant::now();
    let reply = clock
        .bound(async {
            link.send(args).await?;
            link.read_reply().await
        })
        .await?;
    Ok((sent.elapsed(), reply.to_vec()))
}

/// A reply's first line, as text a reason can quote.
fn quoted(reply: &[u8]) -> String {
    let line = reply
        .split(|&byte| byte == b'\r')
        .next()
        .unwrap_or_default();
    String::from_utf8_lossy(line)
        .chars()
        .take(QUOTED_REPLY)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_quoted_by_their_first_line() {
        assert_eq!(
            quoted(b"-ERR Connection refused\r\n"),
            "-ERR Connection refused"
        );
        assert_eq!(quoted(b"$3\r\nabc\r\n"), "$3");
        assert_eq!(quoted(&[b'x'; 300]).len(), QUOTED_REPLY);
    }
}
