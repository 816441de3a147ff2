//! The command line: nutcracker's flags and rampart's subcommands (`args`), and the tools that
//! run without starting the proxy: the configuration test `-t` (`test_conf`),
//! `rampart route` (`route`), `rampart check` (`check`), `rampart demo` (`demo`), and the
//! clients of a running proxy's admin endpoint (`endpoint_client`): `rampart status`
//! (`status`), `rampart reload` (`reload`) and `rampart rebalance` (`rebalance`); and the
//! manual's prose that `--help` and the man page share (`manual`).

pub mod args;
pub mod check;
pub mod demo;
pub mod endpoint_client;
pub mod manual;
pub mod rebalance;
pub mod reload;
pub mod route;
pub mod status;
pub mod test_conf;
