//! How the VRRP speaker learns the proxy's own health, instead of an external check script:
//! every second a probe goes through the proxy's listeners and workers to every shard
//! (`crate::health`), and a verdict is published after every round. The node is unhealthy
//! (FAULT: priority 0 sent, addresses released) after [`FALL`] failed rounds in a row, and
//! healthy again after [`RISE`] good ones. A shard that Sentinel reports down is failing over,
//! which never counts against the node: its peer would see the same.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::health::Probe;
use crate::proxy::Live;

/// Failed rounds in a row that make the node unhealthy.
pub const FALL: u32 = 2;
/// Good rounds in a row that make it healthy again.
pub const RISE: u32 = 2;
/// How often the probe runs.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long each step of a probe may take (connect, PING, each shard's request).
pub const PROBE_LIMIT: Duration = Duration::from_secs(1);

/// The proxy's health after the latest round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub healthy: bool,
    /// Why it is unhealthy (or what made it healthy again), for the log.
    pub reason: String,
}

impl Verdict {
    pub fn initial() -> Verdict {
        Verdict {
            healthy: true,
            reason: "starting".to_string(),
        }
    }
}

/// Turns rounds of probe results into verdicts, with [`FALL`] and [`RISE`].
#[derive(Debug)]
pub struct Hysteresis {
    healthy: bool,
    /// Rounds in a row whose result disagreed with `healthy`.
    streak: u32,
    reason: String,
}

impl Hysteresis {
    pub fn new() -> Hysteresis {
        Hysteresis {
            healthy: true,
            streak: 0,
            reason: "starting".to_string(),
        }
    }

    /// Takes one round's fault (`None` when the round was good) and returns the verdict.
    pub fn round(&mut self, fault: Option<String>) -> Verdict {
        let round_healthy = fault.is_none();
        if round_healthy == self.healthy {
            self.streak = 0;
        } else {
            self.streak += 1;
            let needed = if self.healthy { FALL } else { RISE };
            if self.streak >= needed {
                self.healthy = round_healthy;
                self.streak = 0;
                self.reason = match &fault {
                    Some(fault) => format!("health check failed {FALL} times in a row: {fault}"),
                    None => format!("health check passed {RISE} times in a row"),
                };
            }
        }
        Verdict {
            healthy: self.healthy,
            reason: self.reason.clone(),
        }
    }
}

/// Probes the proxy every [`CHECK_INTERVAL`] and publishes each verdict, until the proxy stops.
/// After a reload the probe is built again for the new configuration (should that fail, the
/// error is logged and the previous probe goes on).
pub async fn track(
    mut probe: Probe,
    live: Arc<Live>,
    verdicts: watch::Sender<Verdict>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut hysteresis = Hysteresis::new();
    let mut interval = tokio::time::interval(CHECK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut probed = live.load().generation;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stopping.changed() => return,
        }
        let shared = live.load_full();
        if shared.generation != probed {
            probed = shared.generation;
            match Probe::new(&shared.config) {
                Ok(reloaded) => probe = reloaded,
                Err(error) => tracing::error!(
                    "health check: cannot probe the reloaded configuration ({error}); \
                     probing as before"
                ),
            }
        }
        let report = tokio::select! {
            report = probe.run(PROBE_LIMIT) => report,
            _ = stopping.changed() => return,
        };
        let fault = report.fault(|pool, shard| shared.topology.master_down(pool, shard));
        if let Some(fault) = &fault {
            tracing::debug!("health check: {fault}");
        }
        verdicts.send_replace(hysteresis.round(fault));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bad_round_is_not_a_fault_two_are_and_two_good_rounds_recover() {
        let mut hysteresis = Hysteresis::new();
        let bad = || Some("pool 'alpha': no shard answered".to_string());
        assert!(hysteresis.round(None).healthy);
        assert!(hysteresis.round(bad()).healthy, "one bad round");
        assert!(hysteresis.round(None).healthy);
        assert!(hysteresis.round(bad()).healthy);
        let verdict = hysteresis.round(bad());
        assert!(!verdict.healthy, "two bad rounds in a row");
        assert!(
            verdict.reason.contains("no shard answered"),
            "{}",
            verdict.reason
        );
        assert!(!hysteresis.round(None).healthy, "one good round");
        assert!(!hysteresis.round(bad()).healthy);
        assert!(!hysteresis.round(None).healthy);
        assert!(hysteresis.round(None).healthy, "two good rounds in a row");
    }
}
