//! The control plane's loop, which runs the topology's tasks for the configuration served now,
//! and reloading the configuration file (SIGUSR1, `rampart reload`, `POST /reload`): the new
//! file is read and checked, the listeners of new listen addresses are bound, and a new
//! configuration for the workers is built from it, carrying over what must outlive the reload
//! (the topology learned of pools and servers that stay, each pool's client count, the stats
//! board). Anything that fails leaves the running configuration as it is.

use std::fmt;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use std::sync::atomic::Ordering;
use std::time::Duration;

use rampart_config::{Config, ConfigError};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;

use super::migration::{self, StillMigrating};
use super::{Running, TopologyEvent};
use crate::admin::stats::StatsTable;
use crate::proxy::{self, Live, Shared, StartError};

/// Why a new configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Invalid(#[from] ConfigError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    StillMigrating(#[from] StillMigrating),
}

/// A configuration ready to be published, the receiver of its workers' topology events, and
/// what changed, for the log and the caller.
pub struct Reloaded {
    pub shared: Arc<Shared>,
    pub events: UnboundedReceiver<TopologyEvent>,
    pub summary: String,
}

/// How often a reload looks whether every worker serves the new configuration.
const SWITCH_POLL: Duration = Duration::from_millis(2);
/// How long a reload waits for that before it reports anyway.
const SWITCH_LIMIT: Duration = Duration::from_secs(5);

/// Asks the control plane to reload the configuration file; the outcome (what changed, or
/// why the new file was refused) goes to `reply` when there is one. With `rebalance`, every
/// pool whose ring changes migrates its keys, as if it had `migrate: true`.
pub struct ReloadRequest {
    pub rebalance: bool,
    pub reply: Option<oneshot::Sender<Result<String, String>>>,
}

/// Waits until every worker serves `shared` (each looks every 100 ms), so that a reload is
/// reported once the new configuration routes every new request, and a migration's moves
/// start only once no worker routes with the old ring.
async fn workers_switched(shared: &Shared) {
    let all = async {
        while shared.workers_serving.load(Ordering::Acquire) < shared.workers {
            tokio::time::sleep(SWITCH_POLL).await;
        }
    };
    if tokio::time::timeout(SWITCH_LIMIT, all).await.is_err() {
        tracing::warn!(
            "only {} of {} workers serve the reloaded configuration after {SWITCH_LIMIT:?}",
            shared.workers_serving.load(Ordering::Acquire),
            shared.workers
        );
    }
}

/// Runs the control plane for as long as the proxy runs: follows the topology of the live
/// configuration, reloads it on request, and ends each migration once its keys have moved.
/// Must run inside a `LocalSet`.
pub async fn run(
    live: Arc<Live>,
    slot: usize,
    mut events: UnboundedReceiver<TopologyEvent>,
    mut reloads: UnboundedReceiver<ReloadRequest>,
) {
    let (finished, mut migrations_done) = mpsc::unbounded_channel();
    let shared = live.load_full();
    let mut running = start(&shared, StatsTable::new(&shared.config), slot, &finished);
    loop {
        let current = live.load_full();
        let (outcome, reply) = tokio::select! {
            Some(event) = events.recv() => {
                running.handle(event);
                continue;
            }
            Some(pool) = migrations_done.recv() => {
                let config = migration::finished(&current.config, &pool);
                let ended = prepare(&current, config, false, Some(&pool)).map(|mut reloaded| {
                    reloaded.summary = format!(
                        "pool '{pool}': its migration is over; the servers that drained leave it"
                    );
                    reloaded
                });
                (ended, None)
            }
            request = reloads.recv() => {
                let Some(request) = request else {
                    return;
                };
                (reload(&current, request.rebalance), request.reply)
            }
        };
        let outcome = match outcome {
            Ok(reloaded) => {
                let table = running
                    .stop()
                    .remapped(&current.config, &reloaded.shared.config);
                live.store(Arc::clone(&reloaded.shared));
                workers_switched(&reloaded.shared).await;
                running = start(&reloaded.shared, table, slot, &finished);
                events = reloaded.events;
                tracing::info!("{}", reloaded.summary);
                Ok(reloaded.summary)
            }
            Err(error) => {
                let refusal = format!("reload refused: {error}; the running configuration is kept");
                tracing::error!("{refusal}");
                Err(refusal)
            }
        };
        if let Some(reply) = reply {
            let _ = reply.send(outcome);
        }
    }
}

/// Starts the control plane's tasks for `shared`'s configuration.
fn start(
    shared: &Shared,
    table: StatsTable,
    slot: usize,
    finished: &UnboundedSender<String>,
) -> Running {
    Running::start(
        &shared.config,
        &shared.topology,
        &shared.stats,
        table,
        slot,
        finished,
    )
}

/// Reads the configuration file `current` was loaded from again and prepares it.
pub fn reload(current: &Shared, rebalance: bool) -> Result<Reloaded, ReloadError> {
    let config = rampart_config::load(&current.config.file)?;
    prepare(current, config, rebalance, None)
}

/// Prepares `config` to replace `current`'s; with `rebalance`, every pool whose ring changes
/// migrates; the migration of pool `ending` is over.
fn prepare(
    current: &Shared,
    config: Config,
    rebalance: bool,
    ending: Option<&str>,
) -> Result<Reloaded, ReloadError> {
    let file = &current.config.file;
    let planned = migration::plan(
        &current.config,
        &current.topology,
        config,
        rebalance,
        ending,
    )?;
    let config = Arc::new(planned.config);
    let listening = |pool: &rampart_config::Pool| {
        current
            .config
            .pools
            .iter()
            .any(|old| old.listen == pool.listen)
    };
    let listeners = proxy::bind_listeners(&config, current.workers, |pool| !listening(pool))?;
    let topology = Arc::new(current.topology.reloaded(&current.config, &config));
    for pool in 0..config.pools.len() {
        let ring = planned
            .rings
            .iter()
            .find(|(migrating, _)| *migrating == pool);
        topology.set_migration(pool, ring.map(|(_, ring)| Arc::clone(ring)));
    }
    if let Err(error) = migration::save(&config, &planned.rings) {
        tracing::warn!(
            "cannot save the migrations in '{}': {error}; a restart would not resume them",
            migration::state_file(file).display()
        );
    }
    for pool in &planned.started {
        tracing::info!(
            "pool '{pool}': migration started (the old ring is saved in '{}')",
            migration::state_file(file).display()
        );
    }
    let client_counts = config
        .pools
        .iter()
        .map(|pool| {
            current
                .config
                .pools
                .iter()
                .zip(&current.client_counts)
                .find(|(old, _)| old.name == pool.name)
                .map_or_else(
                    || Arc::new(AtomicUsize::new(0)),
                    |(_, count)| Arc::clone(count),
                )
        })
        .collect();
    let (events, receiver) = mpsc::unbounded_channel();
    let summary = format!(
        "configuration reloaded from '{}': {}",
        file.display(),
        Changes::between(&current.config, &config)
    );
    let shared = Arc::new(Shared {
        config,
        topology,
        stats: Arc::clone(&current.stats),
        events,
        workers: current.workers,
        started: current.started,
        mbuf_size: current.mbuf_size,
        client_counts,
        generation: current.generation + 1,
        workers_serving: AtomicUsize::new(0),
        new_listeners: listeners.into_iter().map(Mutex::new).collect(),
    });
    Ok(Reloaded {
        shared,
        events: receiver,
        summary,
    })
}

/// Which pools a reload adds, removes, changes or leaves alone, by name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
}

impl Changes {
    pub fn between(old: &Config, new: &Config) -> Changes {
        let mut changes = Changes::default();
        for pool in &new.pools {
            let name = pool.name.clone();
            match old.pools.iter().find(|old| old.name == pool.name) {
                None => changes.added.push(name),
                Some(old) if old.same_settings(pool) => changes.unchanged.push(name),
                Some(_) => changes.changed.push(name),
            }
        }
        for pool in &old.pools {
            if !new.pools.iter().any(|new| new.name == pool.name) {
                changes.removed.push(pool.name.clone());
            }
        }
        changes
    }
}

impl fmt::Display for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lists = [
            ("added", &self.added),
            ("removed", &self.removed),
            ("changed", &self.changed),
            ("unchanged", &self.unchanged),
        ];
        for (at, (what, names)) in lists.into_iter().enumerate() {
            let separator = if at == 0 { "" } else { ", " };
            write!(f, "{separator}{what} [{}]", names.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(yaml: &str) -> Config {
        rampart_config::parse(yaml, Path::new("test.yml")).expect("valid config")
    }

    #[test]
    fn changes_name_each_pool_once() {
        let old = config(
            "a:\n  listen: 127.0.0.1:1\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n\
             b:\n  listen: 127.0.0.1:2\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n\
             c:\n  listen: 127.0.0.1:3\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n",
        );
        let new = config(
            "\nb:\n  listen: 127.0.0.1:2\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n\
             c:\n  listen: 127.0.0.1:3\n  redis: true\n  timeout: 400\n  servers:\n   - 127.0.0.1:6379:1\n\
             d:\n  listen: 127.0.0.1:4\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n",
        );
        let changes = Changes::between(&old, &new);
        assert_eq!(
            changes.to_string(),
            "added [d], removed [a], changed [c], unchanged [b]"
        );
    }
}
