//! The outcome of one probe round, and the two verdicts drawn from it: `fault` (the built-in
//! VRRP health: a pool is down only when its listener or PING fails or none of its shards
//! answers) and `all_ok` (`rampart check`: everything answered). Also its one-line-per-check
//! text. Pure: no I/O.

use std::fmt;
use std::time::Duration;

/// What one probe round saw, pool by pool, in configuration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    pub pools: Vec<PoolHealth>,
}

/// One pool: its listener, the proxy's own PING answer, and each shard's answer through the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolHealth {
    pub name: String,
    /// The address probed: `host:port` as resolved (an unspecified address probed on
    /// loopback), or the unix socket path.
    pub listen: String,
    pub listener: Result<(), String>,
    /// How long the PING took.
    pub ping: Result<Duration, String>,
    pub shards: Vec<ShardHealth>,
}

/// One shard's answer to a harmless read of its probe key, through the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardHealth {
    pub name: String,
    /// The shard's index in the pool's servers; `None` for the single probe of a pool with the
    /// random distribution, whose keys have no fixed shard.
    pub index: Option<usize>,
    /// How long the answer took; an error reply (such as `-ERR Connection refused` or
    /// `-TRYAGAIN ...`) is a failure with its text.
    pub answer: Result<Duration, String>,
}

impl HealthReport {
    /// For the built-in VRRP health: a short line naming the pool and what failed when a
    /// pool's listener refuses, its PING is not answered in time, or none of its shards
    /// answers. `excused(pool_index, shard_index)` tells that a shard is in a Sentinel
    /// failover: a pool whose every failing shard is excused is healthy. `None` when healthy.
    pub fn fault(&self, excused: impl Fn(usize, usize) -> bool) -> Option<String> {
        self.pools
            .iter()
            .enumerate()
            .find_map(|(pool_index, pool)| pool.fault(|shard| excused(pool_index, shard)))
    }

    /// For `rampart check`: every listener, every PING and every shard answered.
    pub fn all_ok(&self) -> bool {
        self.failures().next().is_none()
    }

    /// Each failed check, as a line of the report names it.
    pub fn failures(&self) -> impl Iterator<Item = String> + '_ {
        self.pools.iter().flat_map(|pool| {
            let listener =
                pool.listener.as_ref().err().map(|reason| {
                    format!("pool '{}' listener {}: {reason}", pool.name, pool.listen)
                });
            let ping = pool
                .ping
                .as_ref()
                .err()
                .map(|reason| format!("pool '{}' PING: {reason}", pool.name));
            let shards =
                pool.shards.iter().filter_map(|shard| {
                    shard.answer.as_ref().err().map(|reason| {
                        format!("pool '{}' shard '{}': {reason}", pool.name, shard.name)
                    })
                });
            listener.into_iter().chain(ping).chain(shards)
        })
    }
}

impl PoolHealth {
    fn fault(&self, excused: impl Fn(usize) -> bool) -> Option<String> {
        if let Err(reason) = &self.listener {
            return Some(format!(
                "pool '{}' listener {}: {reason}",
                self.name, self.listen
            ));
        }
        if let Err(reason) = &self.ping {
            return Some(format!("pool '{}' PING: {reason}", self.name));
        }
        let failing: Vec<&ShardHealth> = self
            .shards
            .iter()
            .filter(|shard| shard.answer.is_err())
            .collect();
        let (Some(first), true) = (failing.first(), failing.len() == self.shards.len()) else {
            return None;
        };
        if failing
            .iter()
            .all(|shard| shard.index.is_some_and(&excused))
        {
            return None;
        }
        let reason = first.answer.as_ref().err().map_or("", String::as_str);
        Some(format!(
            "pool '{}': none of its {} shards answers; shard '{}': {reason}",
            self.name,
            self.shards.len(),
            first.name
        ))
    }
}

/// A check's outcome as the report shows it.
fn outcome(result: &Result<Duration, String>) -> String {
    match result {
        Ok(took) => format!("ok in {:.1} ms", took.as_secs_f64() * 1000.0),
        Err(reason) => format!("FAILED: {reason}"),
    }
}

impl fmt::Display for HealthReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pool in &self.pools {
            let listener = match &pool.listener {
                Ok(()) => "ok".to_string(),
                Err(reason) => format!("FAILED: {reason}"),
            };
            writeln!(
                f,
                "pool '{}' listener {}: {listener}",
                pool.name, pool.listen
            )?;
            writeln!(f, "pool '{}' PING: {}", pool.name, outcome(&pool.ping))?;
            for shard in &pool.shards {
                writeln!(
                    f,
                    "pool '{}' shard '{}': {}",
                    pool.name,
                    shard.name,
                    outcome(&shard.answer)
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Duration = Duration::from_micros(300);

    fn shard(name: &str, index: usize, answer: Result<Duration, &str>) -> ShardHealth {
        ShardHealth {
            name: name.to_string(),
            index: Some(index),
            answer: answer.map_err(str::to_string),
        }
    }

    fn pool(name: &str, shards: Vec<ShardHealth>) -> PoolHealth {
        PoolHealth {
            name: name.to_string(),
            listen: "127.0.0.1:22121".to_string(),
            listener: Ok(()),
            ping: Ok(FAST),
            shards,
        }
    }

    fn healthy() -> HealthReport {
        HealthReport {
            pools: vec![
                pool(
                    "alpha",
                    vec![shard("server1", 0, Ok(FAST)), shard("server2", 1, Ok(FAST))],
                ),
                pool("beta", vec![shard("b1", 0, Ok(FAST))]),
            ],
        }
    }

    fn nothing_excused(_: usize, _: usize) -> bool {
        false
    }

    #[test]
    fn a_healthy_report_has_no_fault_and_is_all_ok() {
        let report = healthy();
        assert_eq!(report.fault(nothing_excused), None);
        assert!(report.all_ok());
    }

    #[test]
    fn a_refusing_listener_is_a_fault() {
        let mut report = healthy();
        report.pools[1].listener = Err("connection refused".to_string());
        assert_eq!(
            report.fault(nothing_excused).as_deref(),
            Some("pool 'beta' listener 127.0.0.1:22121: connection refused")
        );
        assert!(!report.all_ok());
    }

    #[test]
    fn an_unanswered_ping_is_a_fault_even_when_shards_are_excused() {
        let mut report = healthy();
        report.pools[0].ping = Err("timed out after 1000 ms".to_string());
        assert_eq!(
            report.fault(|_, _| true).as_deref(),
            Some("pool 'alpha' PING: timed out after 1000 ms")
        );
        assert!(!report.all_ok());
    }

    #[test]
    fn one_dead_shard_of_two_fails_only_all_ok() {
        let mut report = healthy();
        report.pools[0].shards[1].answer = Err("-ERR Connection refused".to_string());
        assert_eq!(report.fault(nothing_excused), None);
        assert!(!report.all_ok());
        assert_eq!(
            report.failures().collect::<Vec<_>>(),
            ["pool 'alpha' shard 'server2': -ERR Connection refused"]
        );
    }

    #[test]
    fn no_answering_shard_is_a_fault_naming_one() {
        let mut report = healthy();
        report.pools[0].shards[0].answer = Err("timed out after 500 ms".to_string());
        report.pools[0].shards[1].answer = Err("-ERR Connection refused".to_string());
        assert_eq!(
            report.fault(nothing_excused).as_deref(),
            Some(
                "pool 'alpha': none of its 2 shards answers; shard 'server1': timed out after 500 ms"
            )
        );
    }

    #[test]
    fn excused_shards_never_count_against_the_node() {
        let mut report = healthy();
        report.pools[1].shards[0].answer = Err("-TRYAGAIN no master".to_string());
        assert!(report.fault(nothing_excused).is_some());
        assert_eq!(report.fault(|pool, shard| (pool, shard) == (1, 0)), None);
        // The excuse is per pool: the same shard index in another pool does not count.
        assert!(
            report
                .fault(|pool, shard| (pool, shard) == (0, 0))
                .is_some()
        );
        assert!(!report.all_ok());
    }

    #[test]
    fn a_pool_with_some_unexcused_failing_shard_and_none_answering_is_a_fault() {
        let mut report = healthy();
        report.pools[0].shards[0].answer = Err("-TRYAGAIN".to_string());
        report.pools[0].shards[1].answer = Err("timed out after 500 ms".to_string());
        assert!(
            report
                .fault(|pool, shard| (pool, shard) == (0, 0))
                .is_some()
        );
        assert_eq!(report.fault(|pool, _| pool == 0), None);
    }

    #[test]
    fn the_random_distribution_probe_is_never_excused() {
        let mut report = healthy();
        report.pools[1].shards = vec![ShardHealth {
            name: "any".to_string(),
            index: None,
            answer: Err("timed out after 500 ms".to_string()),
        }];
        assert!(report.fault(|_, _| true).is_some());
    }

    #[test]
    fn the_text_has_one_line_per_check() {
        let mut report = healthy();
        report.pools[0].shards[1].answer = Err("timed out after 1000 ms".to_string());
        assert_eq!(
            report.to_string(),
            "pool 'alpha' listener 127.0.0.1:22121: ok\n\
             pool 'alpha' PING: ok in 0.3 ms\n\
             pool 'alpha' shard 'server1': ok in 0.3 ms\n\
             pool 'alpha' shard 'server2': FAILED: timed out after 1000 ms\n\
             pool 'beta' listener 127.0.0.1:22121: ok\n\
             pool 'beta' PING: ok in 0.3 ms\n\
             pool 'beta' shard 'b1': ok in 0.3 ms\n"
        );
    }
}
