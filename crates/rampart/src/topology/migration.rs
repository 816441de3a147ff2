//! Which pools a reload makes migrate, and the file that lets a migration survive a restart.
//!
//! A reload that changes the ring of a pool with `migrate: true` (or any pool, for
//! `rampart rebalance`) starts a migration: the pool's new configuration keeps the servers that
//! left its ring, marked draining, until their keys have moved, and the old ring goes with it.
//! While a pool migrates, a reload may change its options but not its ring.
//!
//! The old rings of the pools migrating are saved in `<configuration file>.migrating`, as a
//! nutcracker.yml of their own, and the file is removed when the last migration is done. A
//! proxy that starts and finds it resumes those migrations: moving a key twice is harmless,
//! so starting a pass over from the beginning is safe.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rampart_config::{Config, Pool};

use super::{MigrationRing, Topology};

/// A reload that would change the ring of a pool still migrating.
#[derive(Debug, thiserror::Error)]
#[error(
    "pool '{pool}' is still migrating to the ring of the previous reload; its servers, weights \
     and placement can change again once the migration is done"
)]
pub struct StillMigrating {
    pub pool: String,
}

/// A new configuration with the servers that drain added, and the migrations to run.
pub struct Planned {
    pub config: Config,
    /// Per pool index of `config`: its migration (new, or going on).
    pub rings: Vec<(usize, Arc<MigrationRing>)>,
    /// The pools whose migration this reload starts.
    pub started: Vec<String>,
}

/// Plans the migrations of a reload from `current` (with `topology`) to `config`; with
/// `rebalance`, every pool whose ring changed migrates, not only those with `migrate: true`
/// (but those whose keys cannot move: see `Pool::cannot_migrate`).
/// The migration of pool `ending`, if any, is over and does not go on.
pub fn plan(
    current: &Config,
    topology: &Topology,
    mut config: Config,
    rebalance: bool,
    ending: Option<&str>,
) -> Result<Planned, StillMigrating> {
    let mut rings = Vec::new();
    let mut started = Vec::new();
    for (index, pool) in config.pools.iter_mut().enumerate() {
        let Some((old_index, old_pool)) = current
            .pools
            .iter()
            .enumerate()
            .find(|(_, old)| old.name == pool.name)
        else {
            continue;
        };
        if ending == Some(pool.name.as_str()) {
            continue;
        }
        if let Some(ring) = topology.view(old_index).migration.clone() {
            if !old_pool.same_ring(pool) {
                return Err(StillMigrating {
                    pool: pool.name.clone(),
                });
            }
            let draining = old_pool.servers.iter().filter(|server| server.draining);
            pool.servers.extend(draining.cloned());
            rings.push((index, ring));
        } else if (pool.migrate || rebalance && pool.cannot_migrate().is_none())
            && !old_pool.same_ring(pool)
        {
            start(index, pool, old_pool, &mut rings, &mut started);
        }
    }
    Ok(Planned {
        config,
        rings,
        started,
    })
}

/// Starts the migration of `pool` (index `index`) from the ring of `old_pool`.
fn start(
    index: usize,
    pool: &mut Pool,
    old_pool: &Pool,
    rings: &mut Vec<(usize, Arc<MigrationRing>)>,
    started: &mut Vec<String>,
) {
    drain_departed(pool, old_pool);
    if let Some(ring) = MigrationRing::between(old_pool, pool) {
        rings.push((index, Arc::new(ring)));
        started.push(pool.name.clone());
    }
}

/// Keeps the servers of `old_pool` that `pool` no longer has, draining, after its own.
fn drain_departed(pool: &mut Pool, old_pool: &Pool) {
    for server in &old_pool.servers {
        if !pool.servers.iter().any(|kept| kept.name == server.name) {
            let mut draining = server.clone();
            draining.draining = true;
            draining.config_index = pool.servers.len();
            pool.servers.push(draining);
        }
    }
}

/// `config` once the migration of pool `name` is done: without its draining servers.
pub fn finished(config: &Config, name: &str) -> Config {
    let mut config = config.clone();
    for pool in config.pools.iter_mut().filter(|pool| pool.name == name) {
        pool.servers.retain(|server| !server.draining);
    }
    config
}

/// Where the old rings of the migrations of the configuration in `file` are kept.
pub fn state_file(file: &Path) -> PathBuf {
    let mut path = file.as_os_str().to_owned();
    path.push(".migrating");
    PathBuf::from(path)
}

/// Saves the old ring of every migration in `rings` (of pools of `config`), or removes the
/// file when there is none.
pub fn save(config: &Config, rings: &[(usize, Arc<MigrationRing>)]) -> io::Result<()> {
    let path = state_file(&config.file);
    if rings.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        };
    }
    let mut text = String::from(
        "# rampart: the rings these pools had before the reload that started their migration.\n\
         # Removed once every migration is done; do not edit.\n",
    );
    for (_, ring) in rings {
        write_pool(&mut text, &ring.old_pool);
    }
    let next = path.with_extension("migrating.next");
    std::fs::write(&next, text)?;
    std::fs::rename(&next, &path)
}

/// The pool as a nutcracker.yml entry, with what its ring needs.
fn write_pool(text: &mut String, pool: &Pool) {
    let _ = writeln!(text, "{}:", pool.name);
    let _ = writeln!(text, "  listen: {}", pool.listen);
    let _ = writeln!(text, "  redis: true");
    let _ = writeln!(text, "  hash: {}", pool.hash.name());
    let _ = writeln!(text, "  distribution: {}", pool.distribution.name());
    if let Some(tag) = pool.hash_tag {
        let tag = String::from_utf8_lossy(&[tag.open, tag.close]).replace('\'', "''");
        let _ = writeln!(text, "  hash_tag: '{tag}'");
    }
    let _ = writeln!(text, "  servers:");
    for server in &pool.servers {
        let _ = writeln!(
            text,
            "   - {}:{} {}",
            server.address, server.weight, server.name
        );
    }
}

/// The migrations saved beside `config`'s file by a proxy that stopped before they were done:
/// `config` with the servers that drain added, and the migrations to resume. A saved ring that
/// no longer differs from the pool's is left out.
pub fn resume(config: Config) -> io::Result<Planned> {
    let path = state_file(&config.file);
    if !path.exists() {
        return Ok(Planned {
            config,
            rings: Vec::new(),
            started: Vec::new(),
        });
    }
    let saved = rampart_config::load(&path).map_err(|error| io::Error::other(error.to_string()))?;
    let mut config = config;
    let mut rings = Vec::new();
    let mut started = Vec::new();
    for (index, pool) in config.pools.iter_mut().enumerate() {
        let Some(old_pool) = saved.pools.iter().find(|old| old.name == pool.name) else {
            continue;
        };
        if !old_pool.same_ring(pool) {
            start(index, pool, old_pool, &mut rings, &mut started);
        }
    }
    Ok(Planned {
        config,
        rings,
        started,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        rampart_config::parse(yaml, Path::new("/tmp/rampart-test.yml")).expect("valid config")
    }

    #[test]
    fn a_removed_server_drains_last_and_the_old_ring_keeps_its_place() {
        let old = config(
            "a:\n  listen: 127.0.0.1:1\n  redis: true\n  migrate: true\n  servers:\n   - 127.0.0.1:7001:1 s1\n   - 127.0.0.1:7002:1 s2\n   - 127.0.0.1:7003:1 s3\n",
        );
        let new = config(
            "a:\n  listen: 127.0.0.1:1\n  redis: true\n  migrate: true\n  servers:\n   - 127.0.0.1:7001:1 s1\n   - 127.0.0.1:7003:1 s3\n",
        );
        let topology = Topology::new(&old);
        let planned = plan(&old, &topology, new, false, None).expect("a plan");
        let names: Vec<(&str, bool)> = planned.config.pools[0]
            .servers
            .iter()
            .map(|server| (server.name.as_str(), server.draining))
            .collect();
        assert_eq!(names, [("s1", false), ("s3", false), ("s2", true)]);
        assert_eq!(planned.started, ["a"]);
        assert_eq!(planned.rings[0].1.old_servers, [0, 2, 1]);
        assert_eq!(finished(&planned.config, "a").pools[0].servers.len(), 2);
    }

    #[test]
    fn a_saved_ring_reads_back_as_the_same_ring() {
        let old = config(
            "a:\n  listen: 127.0.0.1:1\n  redis: true\n  hash: murmur\n  hash_tag: '{}'\n  distribution: ketama\n  servers:\n   - 127.0.0.1:7001:2 s1\n   - 127.0.0.1:7002:1 s2\n",
        );
        let mut text = String::new();
        write_pool(&mut text, &old.pools[0]);
        let read = rampart_config::parse(&text, Path::new("saved.yml")).expect("valid");
        assert!(read.pools[0].same_ring(&old.pools[0]), "{text}");
    }

    #[test]
    fn a_pool_without_migrate_moves_nothing_unless_rebalanced() {
        let old = config(
            "a:\n  listen: 127.0.0.1:1\n  redis: true\n  servers:\n   - 127.0.0.1:7001:1 s1\n",
        );
        let new = config(
            "a:\n  listen: 127.0.0.1:1\n  redis: true\n  servers:\n   - 127.0.0.1:7001:1 s1\n   - 127.0.0.1:7002:1 s2\n",
        );
        let topology = Topology::new(&old);
        assert!(
            plan(&old, &topology, new.clone(), false, None)
                .expect("a plan")
                .rings
                .is_empty()
        );
        assert_eq!(
            plan(&old, &topology, new, true, None)
                .expect("a plan")
                .started,
            ["a"]
        );
    }
}
