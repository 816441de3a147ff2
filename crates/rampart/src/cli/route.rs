//! `rampart route`: shows where keys live. For each key it prints
//! `key<TAB>server-name<TAB>host:port`, in input order, using the same placement the proxy uses.

use std::io::{self, BufRead, Write};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use rampart_config::{Config, ConfigError, Pool};
use rampart_placement::{Distribution, Placement};

use super::args::RouteArgs;

#[derive(Debug, thiserror::Error)]
enum RouteError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the file has {count} pools ({names}); choose one with --pool NAME")]
    PoolNeeded { count: usize, names: String },
    #[error("no pool named '{wanted}'; the pools are: {names}")]
    UnknownPool { wanted: String, names: String },
    #[error("pool '{pool}' uses distribution random: its keys have no fixed server")]
    RandomDistribution { pool: String },
    #[error("pool '{pool}' has no server named '{wanted}'; its servers are: {names}")]
    UnknownServer {
        pool: String,
        wanted: String,
        names: String,
    },
    #[error("pool '{pool}' has auto_eject_hosts: false, so its servers are never ejected")]
    EjectionDisabled { pool: String },
    #[error("every server of pool '{pool}' is ejected: no key has a server")]
    NoLiveServer { pool: String },
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Runs the subcommand and returns the process exit status.
pub fn run(args: &RouteArgs) -> ExitCode {
    let stdout = io::stdout().lock();
    match route(args, io::stdin().lock(), io::BufWriter::new(stdout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(RouteError::Io(error)) if error.kind() == io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("rampart route: {error}");
            ExitCode::FAILURE
        }
    }
}

fn route(args: &RouteArgs, input: impl BufRead, mut output: impl Write) -> Result<(), RouteError> {
    let config = rampart_config::load(&args.conf_file)?;
    let pool = select_pool(&config, args.pool.as_deref())?;
    if pool.distribution == Distribution::Random {
        return Err(RouteError::RandomDistribution {
            pool: pool.name.clone(),
        });
    }
    let mut placement = placement_with_ejections(pool, &args.ejected)?;
    let addresses: Vec<String> = pool
        .servers
        .iter()
        .map(|server| server.address.to_string())
        .collect();
    {
        let mut print = |key: &[u8]| -> Result<(), RouteError> {
            let (server, address) = placement
                .server_for_key(key)
                .and_then(|index| pool.servers.get(index).zip(addresses.get(index)))
                .ok_or_else(|| RouteError::NoLiveServer {
                    pool: pool.name.clone(),
                })?;
            output.write_all(key)?;
            output.write_all(b"\t")?;
            output.write_all(server.name.as_bytes())?;
            output.write_all(b"\t")?;
            output.write_all(address.as_bytes())?;
            output.write_all(b"\n")?;
            Ok(())
        };
        if args.keys.is_empty() {
            for_each_line(input, &mut print)?;
        } else {
            for key in &args.keys {
                print(key.as_bytes())?;
            }
        }
    }
    output.flush()?;
    Ok(())
}

/// Calls `visit` with each line of `input`, without its `\n`; a last line without one counts.
fn for_each_line(
    mut input: impl BufRead,
    visit: &mut impl FnMut(&[u8]) -> Result<(), RouteError>,
) -> Result<(), RouteError> {
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let key = line.strip_suffix(b"\n").unwrap_or(&line);
        visit(key)?;
    }
}

fn pool_names(config: &Config) -> String {
    let names: Vec<&str> = config.pools.iter().map(|pool| pool.name.as_str()).collect();
    names.join(", ")
}

fn select_pool<'c>(config: &'c Config, wanted: Option<&str>) -> Result<&'c Pool, RouteError> {
    match (wanted, config.pools.as_slice()) {
        (None, [only]) => Ok(only),
        (None, pools) => Err(RouteError::PoolNeeded {
            count: pools.len(),
            names: pool_names(config),
        }),
        (Some(wanted), pools) => pools
            .iter()
            .find(|pool| pool.name == wanted)
            .ok_or_else(|| RouteError::UnknownPool {
                wanted: wanted.to_string(),
                names: pool_names(config),
            }),
    }
}

/// The pool's placement with the named servers taken out of the ring, as an ejection would.
fn placement_with_ejections(pool: &Pool, ejected: &[String]) -> Result<Placement, RouteError> {
    let mut placement = pool.placement();
    if ejected.is_empty() {
        return Ok(placement);
    }
    if !pool.auto_eject_hosts {
        return Err(RouteError::EjectionDisabled {
            pool: pool.name.clone(),
        });
    }
    let mut live = vec![true; pool.servers.len()];
    for wanted in ejected {
        let alive = pool
            .servers
            .iter()
            .zip(live.iter_mut())
            .find_map(|(server, alive)| (&server.name == wanted).then_some(alive))
            .ok_or_else(|| RouteError::UnknownServer {
                pool: pool.name.clone(),
                wanted: wanted.clone(),
                names: pool
                    .servers
                    .iter()
                    .map(|server| server.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        *alive = false;
    }
    placement.rebuild(&live);
    Ok(placement)
}
