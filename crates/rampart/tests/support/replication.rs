//! redis-server masters and replicas for the failover tests: started with diskless
//! replication on chosen or free ports, replicas waited for until linked or caught up, and what
//! a server's `INFO` and `DBSIZE` say.

use std::collections::HashMap;
use std::time::Duration;

use super::process::Redis;
use super::resp::{Reply, call, try_call};
use super::{free_port, wait_until};

/// How long setup steps (replication, sentinel discovery) may take.
pub const SETUP_LIMIT: Duration = Duration::from_secs(20);

/// `INFO <sections>` of a server as `field -> value`; empty if it cannot be reached.
pub fn info(port: u16, sections: &[&str]) -> HashMap<String, String> {
    let mut args = vec!["INFO"];
    args.extend_from_slice(sections);
    match try_call(port, &args) {
        Ok(Reply::Bulk(Some(body))) => String::from_utf8_lossy(&body)
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.to_string(), value.trim().to_string()))
            .collect(),
        _ => HashMap::new(),
    }
}

/// Number of keys in database 0 of a server.
pub fn dbsize(port: u16) -> i64 {
    match call(port, &["DBSIZE"]) {
        Reply::Integer(count) => count,
        other => panic!("DBSIZE on {port} gave {other:?}"),
    }
}

/// Flags of every redis-server here: diskless replication without delay, so that a replica
/// syncs at once.
const REPLICATION: [&str; 4] = [
    "--repl-diskless-sync",
    "yes",
    "--repl-diskless-sync-delay",
    "0",
];

/// A redis-server (master unless `extra` says otherwise) on a free port.
pub fn node(extra: &[&str]) -> Redis {
    node_on(free_port(), extra)
}

/// A redis-server on `port` (also to bring a killed master back on its old port).
pub fn node_on(port: u16, extra: &[&str]) -> Redis {
    Redis::start_on(port, &[&REPLICATION[..], extra].concat())
}

/// A replica of the master on `master`, waited for until its link is up.
pub fn replica_of(master: u16) -> Redis {
    let master = master.to_string();
    let node = node(&["--replicaof", "127.0.0.1", &master]);
    wait_link_up(&node, &master);
    node
}

/// Waits until `node` replicates from `master` with its link up.
pub fn wait_link_up(node: &Redis, master: &str) {
    wait_until(
        &format!("replica {} linked to {master}", node.port),
        SETUP_LIMIT,
        || {
            let info = info(node.port, &["replication"]);
            info.get("role").map(String::as_str) == Some("slave")
                && info.get("master_port").map(String::as_str) == Some(master)
                && info.get("master_link_status").map(String::as_str) == Some("up")
        },
    );
}

/// Waits until the replica on `replica` has applied everything its master on `master` had
/// when this was called. (`WAIT` on a fresh connection would prove nothing: it only waits for
/// that connection's own writes.)
pub fn wait_caught_up(master: u16, replica: u16) {
    let offset = |port: u16, field: &str| -> Option<i64> {
        info(port, &["replication"]).get(field)?.parse().ok()
    };
    let target = offset(master, "master_repl_offset").expect("the master's replication offset");
    wait_until(
        &format!("replica {replica} to catch up with master {master} (offset {target})"),
        SETUP_LIMIT,
        || offset(replica, "slave_repl_offset").is_some_and(|applied| applied >= target),
    );
}
