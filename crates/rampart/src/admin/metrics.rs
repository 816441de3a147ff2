//! `/metrics`: the proxy's counters in the OpenMetrics text format (which Prometheus scrapes),
//! built at scrape time by a `prometheus-client` collector from the sum of the workers' tables,
//! the topology and the VRRP board. Nothing is updated on the request path for it.
//!
//! Names follow Prometheus conventions: the `rampart_` prefix, `_total` on counters, seconds
//! and bytes, labels `pool` and `server` (the configured server name), `instance` and `state`
//! for VRRP.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use rampart_config::Config;
use rampart_vrrp::State;

use super::catalog::{LimitStat, PoolStat, ServerStat};
use super::latency::Latency;
use super::stats::{MigrationStat, SentinelStat, StatsBoard, StatsTable};
use crate::proxy::Live;
use crate::topology::Topology;

/// Every VRRP state, for the one-hot `rampart_vrrp_state`.
const VRRP_STATES: [State; 4] = [
    State::Initialize,
    State::Backup,
    State::Master,
    State::Fault,
];

/// The registry `/metrics` encodes: one collector over the live state.
pub fn registry(live: Arc<Live>) -> Registry {
    let mut registry = Registry::with_prefix("rampart");
    registry.register_collector(Box::new(Scrape { live }));
    registry
}

/// The `/metrics` body.
pub fn render(registry: &Registry) -> Result<String, fmt::Error> {
    let mut text = String::with_capacity(16 * 1024);
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

/// Reads the live state when scraped.
struct Scrape {
    live: Arc<Live>,
}

impl fmt::Debug for Scrape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scrape").finish_non_exhaustive()
    }
}

/// The configuration served at the time of one scrape, with its topology and counters.
struct Snapshot<'s> {
    config: &'s Config,
    topology: &'s Topology,
    board: &'s StatsBoard,
}

/// A histogram read from a [`Latency`] table.
struct Histogram<'l>(&'l Latency);

impl EncodeMetric for Histogram<'_> {
    fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        let buckets: Vec<(f64, u64)> = self.0.buckets().collect();
        encoder.encode_histogram::<NoLabelSet>(self.0.sum_seconds(), self.0.count(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Writes one metric family: its descriptor, then one sample per label set.
fn family<L: EncodeLabelSet, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    series: impl IntoIterator<Item = (L, M)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, metric) in series {
        metric.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes a metric without labels.
fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: impl EncodeMetric,
) -> fmt::Result {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// Which kind of metric a nutcracker pool counter is, and its Prometheus name.
fn pool_metric(stat: PoolStat) -> (&'static str, MetricType) {
    match stat {
        PoolStat::ClientConnections => ("client_connections", MetricType::Gauge),
        PoolStat::ClientEof => ("client_eof", MetricType::Counter),
        PoolStat::ClientErr => ("client_err", MetricType::Counter),
        PoolStat::ServerEjects => ("server_ejects", MetricType::Counter),
        PoolStat::ForwardError => ("forward_error", MetricType::Counter),
        PoolStat::Fragments => ("fragments", MetricType::Counter),
    }
}

/// Which kind of metric a nutcracker server counter is, and its Prometheus name; `None` for
/// `server_ejected_at`, shown in seconds as `rampart_server_ejected_timestamp_seconds`.
fn server_metric(stat: ServerStat) -> Option<(&'static str, MetricType)> {
    let counter = MetricType::Counter;
    let gauge = MetricType::Gauge;
    Some(match stat {
        ServerStat::ServerEof => ("server_eof", counter),
        ServerStat::ServerErr => ("server_err", counter),
        ServerStat::ServerTimedout => ("server_timedout", counter),
        ServerStat::ServerConnections => ("server_connections", gauge),
        ServerStat::ServerEjectedAt => return None,
        ServerStat::Requests => ("requests", counter),
        ServerStat::RequestBytes => ("request_bytes", counter),
        ServerStat::Responses => ("responses", counter),
        ServerStat::ResponseBytes => ("response_bytes", counter),
        ServerStat::InQueue => ("in_queue", gauge),
        ServerStat::InQueueBytes => ("in_queue_bytes", gauge),
        ServerStat::OutQueue => ("out_queue", gauge),
        ServerStat::OutQueueBytes => ("out_queue_bytes", gauge),
    })
}

/// A counter or a gauge of value `value`, as `metric_type` says.
fn value_metric(metric_type: MetricType, value: u64) -> Box<dyn EncodeMetric> {
    match metric_type {
        MetricType::Counter => Box::new(ConstCounter::new(value)),
        _ => Box::new(ConstGauge::new(value)),
    }
}

impl Snapshot<'_> {
    /// Per-pool families: nutcracker's pool counters, parked clients, client limits,
    /// migration, latency.
    fn pools(&self, encoder: &mut DescriptorEncoder, table: &StatsTable) -> fmt::Result {
        let pools = || self.config.pools.iter().zip(&table.pools);
        for stat in PoolStat::ALL {
            let (name, metric_type) = pool_metric(stat);
            family(
                encoder,
                name,
                stat.description().trim_start_matches("# "),
                metric_type,
                pools().map(|(pool, counters)| {
                    let value = counters.pool.get(stat as usize).copied().unwrap_or(0);
                    (
                        [("pool", pool.name.as_str())],
                        value_metric(metric_type, value),
                    )
                }),
            )?;
        }
        family(
            encoder,
            "parked_clients",
            "idle clients held without a session",
            MetricType::Gauge,
            pools().map(|(pool, counters)| {
                (
                    [("pool", pool.name.as_str())],
                    ConstGauge::new(counters.parked_clients),
                )
            }),
        )?;
        family(
            encoder,
            "client_limit",
            "client limits enforced, by limit (see docs/limits.md)",
            MetricType::Counter,
            pools().flat_map(|(pool, counters)| {
                LimitStat::ALL.into_iter().map(|stat| {
                    let count = counters.limits.get(stat as usize).copied().unwrap_or(0);
                    (
                        [("pool", pool.name.as_str()), ("limit", stat.name())],
                        ConstCounter::new(count),
                    )
                })
            }),
        )?;
        for (stat, name, help, metric_type) in [
            (
                MigrationStat::Running,
                "migration_running",
                "1 while the pool's keys move after a reload changed its ring",
                MetricType::Gauge,
            ),
            (
                MigrationStat::Scanned,
                "migration_keys_scanned",
                "keys the migrator read from the pool's old servers",
                MetricType::Counter,
            ),
            (
                MigrationStat::Moved,
                "migration_keys_moved",
                "keys the migrator moved to their new server",
                MetricType::Counter,
            ),
            (
                MigrationStat::Waiting,
                "migration_waiting",
                "1 while this node's migrator waits for the virtual IP or a failover",
                MetricType::Gauge,
            ),
            (
                MigrationStat::Remaining,
                "migration_remaining_keys",
                "keys still to read in the migration's first pass (estimated)",
                MetricType::Gauge,
            ),
        ] {
            family(
                encoder,
                name,
                help,
                metric_type,
                pools().map(|(pool, counters)| {
                    let value = counters.migration.get(stat as usize).copied().unwrap_or(0);
                    (
                        [("pool", pool.name.as_str())],
                        value_metric(metric_type, value),
                    )
                }),
            )?;
        }
        family(
            encoder,
            "request_duration_seconds",
            "time from reading a forwarded request (or fragment) from the client to its \
             server's reply",
            MetricType::Histogram,
            pools().map(|(pool, counters)| {
                ([("pool", pool.name.as_str())], Histogram(&counters.latency))
            }),
        )
    }

    /// Per-server families: nutcracker's server counters, liveness, and Sentinel counters when
    /// some pool has sentinels.
    fn servers(&self, encoder: &mut DescriptorEncoder, table: &StatsTable) -> fmt::Result {
        let servers = || {
            self.config
                .pools
                .iter()
                .enumerate()
                .zip(&table.pools)
                .flat_map(|((index, pool), counters)| {
                    pool.servers.iter().enumerate().zip(&counters.servers).map(
                        move |((server, config), values)| {
                            (
                                index,
                                server,
                                [
                                    ("pool", pool.name.as_str()),
                                    ("server", config.name.as_str()),
                                ],
                                values,
                            )
                        },
                    )
                })
        };
        for stat in ServerStat::ALL {
            let Some((name, metric_type)) = server_metric(stat) else {
                continue;
            };
            family(
                encoder,
                name,
                stat.description().trim_start_matches("# "),
                metric_type,
                servers().map(|(_, _, labels, values)| {
                    let value = values.get(stat as usize).copied().unwrap_or(0);
                    (labels, value_metric(metric_type, value))
                }),
            )?;
        }
        family(
            encoder,
            "server_ejected_timestamp_seconds",
            "when the server was last ejected, in seconds since the epoch (0: never)",
            MetricType::Gauge,
            servers().map(|(_, _, labels, values)| {
                let micros = values
                    .get(ServerStat::ServerEjectedAt as usize)
                    .copied()
                    .unwrap_or(0);
                (labels, ConstGauge::new(micros as f64 / 1e6))
            }),
        )?;
        family(
            encoder,
            "server_live",
            "1 while the server is in its pool's ring, 0 while ejected",
            MetricType::Gauge,
            servers().map(|(pool, server, labels, _)| {
                let live = self
                    .topology
                    .view(pool)
                    .live
                    .get(server)
                    .copied()
                    .unwrap_or(false);
                (labels, ConstGauge::new(i64::from(live)))
            }),
        )?;
        family(
            encoder,
            "master_down",
            "1 while Sentinel reports the shard's master down and has not promoted another",
            MetricType::Gauge,
            servers().map(|(pool, server, labels, _)| {
                let down = self.topology.master_down(pool, server);
                (labels, ConstGauge::new(i64::from(down)))
            }),
        )?;
        if self
            .config
            .pools
            .iter()
            .all(|pool| pool.sentinels.is_empty())
        {
            return Ok(());
        }
        for (stat, help) in [
            (
                SentinelStat::Failovers,
                "times Sentinel moved the shard's master",
            ),
            (SentinelStat::Sdown, "+sdown events for the shard's master"),
            (
                SentinelStat::SdownCleared,
                "-sdown events for the shard's master",
            ),
            (SentinelStat::Odown, "+odown events for the shard's master"),
        ] {
            family(
                encoder,
                stat.name(),
                help,
                MetricType::Counter,
                servers()
                    .filter(|&(pool, ..)| {
                        self.config
                            .pools
                            .get(pool)
                            .is_some_and(|pool| !pool.sentinels.is_empty())
                    })
                    .map(|(pool, server, labels, _)| {
                        let value = table
                            .pools
                            .get(pool)
                            .and_then(|counters| counters.sentinel.get(server))
                            .and_then(|values| values.get(stat as usize))
                            .copied()
                            .unwrap_or(0);
                        (labels, ConstCounter::new(value))
                    }),
            )?;
        }
        Ok(())
    }

    /// The VRRP instances (with `--vrrp`): one-hot state, priority, transitions.
    fn vrrp(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let instances = self.board.vrrp();
        if instances.is_empty() {
            return Ok(());
        }
        let states: Vec<(String, String, bool)> = instances
            .iter()
            .flat_map(|instance| {
                VRRP_STATES.iter().map(|state| {
                    (
                        instance.name.clone(),
                        state.to_string(),
                        *state == instance.state,
                    )
                })
            })
            .collect();
        family(
            encoder,
            "vrrp_state",
            "1 for the virtual router's current state, 0 for the others",
            MetricType::Gauge,
            states.iter().map(|(instance, state, current)| {
                (
                    [("instance", instance.as_str()), ("state", state.as_str())],
                    ConstGauge::new(i64::from(*current)),
                )
            }),
        )?;
        family(
            encoder,
            "vrrp_priority",
            "the priority the virtual router advertises now (0 in FAULT)",
            MetricType::Gauge,
            instances.iter().map(|instance| {
                (
                    [("instance", instance.name.as_str())],
                    ConstGauge::new(i64::from(instance.priority)),
                )
            }),
        )?;
        family(
            encoder,
            "vrrp_transitions",
            "state changes of the virtual router since start",
            MetricType::Counter,
            instances.iter().map(|instance| {
                (
                    [("instance", instance.name.as_str())],
                    ConstCounter::new(instance.transitions),
                )
            }),
        )
    }
}

impl Collector for Scrape {
    fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
        let shared = self.live.load();
        Snapshot {
            config: &shared.config,
            topology: &shared.topology,
            board: &shared.stats,
        }
        .encode(encoder)
    }
}

impl Snapshot<'_> {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let table = self.board.sum(self.config);
        single(
            &mut encoder,
            "build",
            "the running rampart's version",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        )?;
        single(
            &mut encoder,
            "uptime_seconds",
            "time since the proxy started",
            ConstGauge::new(self.board.uptime().as_secs_f64()),
        )?;
        single(
            &mut encoder,
            "connections",
            "connections ever opened (clients, servers, listeners)",
            ConstCounter::new(table.total_connections),
        )?;
        single(
            &mut encoder,
            "current_connections",
            "connections open now (clients, servers, listeners)",
            ConstGauge::new(table.current_connections),
        )?;
        self.pools(&mut encoder, &table)?;
        self.servers(&mut encoder, &table)?;
        self.vrrp(&mut encoder)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::path::Path;

    use super::*;
    use crate::admin::vrrp_status::{InstanceStatus, VrrpBoard};
    use crate::proxy::Shared;

    #[test]
    fn vrrp_state_is_one_hot_with_priority_and_transitions() {
        let config = Arc::new(
            rampart_config::parse(
                "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1 s0\n",
                Path::new("test.yml"),
            )
            .expect("a valid config"),
        );
        let vrrp = Arc::new(VrrpBoard::new(vec![InstanceStatus {
            name: "VI_1".into(),
            state: State::Master,
            priority: 150,
            master: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))),
            transitions: 3,
        }]));
        let board = Arc::new(StatsBoard::new(&config, 1, vrrp));
        let (events, _receiver) = tokio::sync::mpsc::unbounded_channel();
        let shared = Shared::starting(config, board, events, 1, 16 * 1024, Vec::new());
        let live = Arc::new(Live::from_pointee(shared));
        let text = render(&registry(live)).expect("encodable metrics");
        for line in [
            "rampart_vrrp_state{instance=\"VI_1\",state=\"INIT\"} 0",
            "rampart_vrrp_state{instance=\"VI_1\",state=\"BACKUP\"} 0",
            "rampart_vrrp_state{instance=\"VI_1\",state=\"MASTER\"} 1",
            "rampart_vrrp_state{instance=\"VI_1\",state=\"FAULT\"} 0",
            "rampart_vrrp_priority{instance=\"VI_1\"} 150",
            "rampart_vrrp_transitions_total{instance=\"VI_1\"} 3",
            "rampart_server_live{pool=\"alpha\",server=\"s0\"} 1",
            "# TYPE rampart_request_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|found| found == line), "{line}\n{text}");
        }
        assert!(
            !text.contains("rampart_failovers"),
            "Sentinel counters only for pools with sentinels"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
