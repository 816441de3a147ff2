//! Reading the demo's live state for the view and for `--kill`: the shards' masters and
//! replicas from the sentinels (`SENTINEL masters`, `SENTINEL replicas`), each proxy's counters
//! and VRRP state from its stats JSON, and which node's interface carries the virtual IP.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value as Json;

use super::netns;
use super::resp::{self, Value};
use super::view::{ProxyStatus, ShardStatus, Snapshot};

/// How long one sentinel or stats port may take to answer.
const TIMEOUT: Duration = Duration::from_millis(500);

/// A proxy node as the observer sees it.
#[derive(Debug, Clone)]
pub struct ProxyTarget {
    pub name: String,
    pub stats: SocketAddr,
    pub namespace: Option<String>,
}

/// What to look at.
#[derive(Debug, Clone)]
pub struct Observer {
    pub sentinels: Vec<SocketAddr>,
    pub shards: Vec<String>,
    pub proxies: Vec<ProxyTarget>,
    /// The VRRP instance name and the virtual IP, when the proxies run one.
    pub vrrp: Option<(String, String)>,
}

impl Observer {
    /// A snapshot now, with the traffic generator's counts.
    pub fn snapshot(&self, traffic_ok: u64, traffic_errors: u64) -> Snapshot {
        Snapshot {
            shards: self.shards(),
            proxies: self.proxies.iter().map(|proxy| self.proxy(proxy)).collect(),
            traffic_ok,
            traffic_errors,
        }
    }

    /// The shards as the first sentinel that answers sees them.
    fn shards(&self) -> Vec<ShardStatus> {
        for sentinel in &self.sentinels {
            if let Ok(masters) = resp::call(*sentinel, &["SENTINEL", "masters"], TIMEOUT) {
                let masters = masters.entries();
                return self
                    .shards
                    .iter()
                    .map(|name| {
                        let master = masters
                            .iter()
                            .find(|master| master.get("name") == Some(name));
                        let replicas =
                            resp::call(*sentinel, &["SENTINEL", "replicas", name], TIMEOUT)
                                .map(|reply| reply.entries())
                                .unwrap_or_default();
                        ShardStatus {
                            name: name.clone(),
                            master: master.and_then(address_of),
                            master_down: master
                                .and_then(|master| master.get("flags"))
                                .is_some_and(|flags| flags.contains("down")),
                            replicas: replicas
                                .iter()
                                .filter_map(|replica| {
                                    let down = replica
                                        .get("flags")
                                        .is_some_and(|flags| flags.contains("down"));
                                    Some((address_of(replica)?, !down))
                                })
                                .collect(),
                        }
                    })
                    .collect();
            }
        }
        self.shards
            .iter()
            .map(|name| ShardStatus {
                name: name.clone(),
                ..ShardStatus::default()
            })
            .collect()
    }

    fn proxy(&self, target: &ProxyTarget) -> ProxyStatus {
        let holds_vip = match (&self.vrrp, &target.namespace) {
            (Some((_, vip)), Some(namespace)) => netns::addresses(namespace).contains(vip),
            _ => false,
        };
        let mut status = ProxyStatus {
            name: target.name.clone(),
            holds_vip,
            ..ProxyStatus::default()
        };
        if let Some(stats) = stats_document(target.stats) {
            status.up = true;
            status.vrrp_state = self.vrrp.as_ref().and_then(|(instance, _)| {
                stats
                    .get(format!("vrrp_{instance}_state"))
                    .and_then(Json::as_str)
                    .map(str::to_string)
            });
            (status.requests, status.errors) = counters(&stats);
        }
        status
    }
}

/// `ip:port` of a sentinel entry.
fn address_of(entry: &std::collections::HashMap<String, String>) -> Option<String> {
    Some(format!("{}:{}", entry.get("ip")?, entry.get("port")?))
}

/// A proxy's stats JSON, if its stats port answers.
pub fn stats_document(address: SocketAddr) -> Option<Json> {
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT).ok()?;
    stream.set_read_timeout(Some(TIMEOUT)).ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Requests and errors summed over every pool and server of a stats document: the servers'
/// `requests`; the pools' `client_err` and `forward_error` and the servers' `server_err` and
/// `server_timedout`.
fn counters(stats: &Json) -> (u64, u64) {
    let count = |object: &Json, key: &str| object.get(key).and_then(Json::as_u64).unwrap_or(0);
    let (mut requests, mut errors) = (0, 0);
    let pools = stats.as_object().into_iter().flatten();
    for pool in pools.filter_map(|(_, pool)| pool.as_object()) {
        for (key, value) in pool {
            match key.as_str() {
                "client_err" | "forward_error" => errors += value.as_u64().unwrap_or(0),
                _ if value.is_object() => {
                    requests += count(value, "requests");
                    errors += count(value, "server_err") + count(value, "server_timedout");
                }
                _ => {}
            }
        }
    }
    (requests, errors)
}

/// The address of `name`'s master as a majority of `sentinels` name it, or as the first to
/// answer says when there is no majority.
pub fn master_of(sentinels: &[SocketAddr], name: &str) -> Option<String> {
    let answers: Vec<String> = sentinels
        .iter()
        .filter_map(|sentinel| {
            let reply = resp::call(
                *sentinel,
                &["SENTINEL", "get-master-addr-by-name", name],
                TIMEOUT,
            )
            .ok()?;
            match reply {
                Value::Array(Some(items)) => Some(format!(
                    "{}:{}",
                    items.first()?.text()?,
                    items.get(1)?.text()?
                )),
                _ => None,
            }
        })
        .collect();
    answers
        .iter()
        .find(|answer| answers.iter().filter(|other| other == answer).count() * 2 > sentinels.len())
        .or(answers.first())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_over_pools_and_servers() {
        let stats: Json = serde_json::from_str(
            r#"{"service":"nutcracker","uptime":5,"vrrp_VI_1_state":"MASTER",
                "demo":{"client_err":1,"forward_error":2,"client_connections":3,
                  "shard1":{"requests":10,"server_err":1,"server_timedout":0},
                  "shard2":{"requests":5,"server_err":0,"server_timedout":4}}}"#,
        )
        .unwrap();
        assert_eq!(counters(&stats), (15, 8));
    }
}
