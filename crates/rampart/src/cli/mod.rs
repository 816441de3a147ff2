//! The command line: nutcracker's flags and rampart's subcommands (`args`), and the tools that
//! run without starting the proxy: the configuration test `-t` (`test_conf`),
//! `rampart route` (`route`), `rampart check` (`check`) and `rampart demo` (`demo`).

pub mod args;
pub mod check;
pub mod demo;
pub mod route;
pub mod test_conf;
