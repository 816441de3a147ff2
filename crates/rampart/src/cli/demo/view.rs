//! The live view, rendered from a [`Snapshot`] of what the sentinels, the proxies' stats and
//! the traffic generator say: a full screen redrawn in place on a terminal, or one plain
//! status line at a time otherwise, plus one line per change seen (a new master, the virtual
//! IP moving). Pure: building the snapshot is `observe`'s work.

use std::fmt::Write as _;

/// What the sentinels say about one shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardStatus {
    pub name: String,
    /// `host:port`, if a sentinel answered.
    pub master: Option<String>,
    pub master_down: bool,
    /// `host:port` and whether the sentinel sees it up.
    pub replicas: Vec<(String, bool)>,
}

/// What one proxy node's stats say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyStatus {
    pub name: String,
    /// Its stats port answered.
    pub up: bool,
    /// Its VRRP state (`MASTER`, `BACKUP`, ...) when it runs the virtual IP.
    pub vrrp_state: Option<String>,
    /// Its interface carries the virtual IP.
    pub holds_vip: bool,
    /// Requests it forwarded, and errors it counted, since it started.
    pub requests: u64,
    pub errors: u64,
}

/// Everything one refresh of the view shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub shards: Vec<ShardStatus>,
    pub proxies: Vec<ProxyStatus>,
    pub traffic_ok: u64,
    pub traffic_errors: u64,
}

impl Snapshot {
    /// The node holding the virtual IP (or the one proxy, without VRRP, when it is up).
    pub fn active_proxy(&self) -> Option<&str> {
        match self.proxies.as_slice() {
            [only] if only.vrrp_state.is_none() => only.up.then_some(only.name.as_str()),
            all => all
                .iter()
                .find(|proxy| proxy.holds_vip && proxy.up)
                .map(|proxy| proxy.name.as_str()),
        }
    }

    fn requests(&self) -> u64 {
        self.proxies.iter().map(|proxy| proxy.requests).sum()
    }

    fn errors(&self) -> u64 {
        self.proxies.iter().map(|proxy| proxy.errors).sum()
    }
}

/// Requests per second through the proxies between two snapshots `seconds` apart.
pub fn ops_per_second(before: &Snapshot, after: &Snapshot, seconds: f64) -> u64 {
    if seconds <= 0.0 {
        return 0;
    }
    let done = after.requests().saturating_sub(before.requests());
    (done as f64 / seconds).round() as u64
}

/// The line telling where to connect.
pub fn connect_line(address: &str) -> String {
    let (host, port) = address.rsplit_once(':').unwrap_or((address, ""));
    format!("connect with: redis-cli -h {host} -p {port}")
}

fn shard_text(shard: &ShardStatus) -> String {
    let master = shard.master.as_deref().unwrap_or("?");
    let down = if shard.master_down { "(down)" } else { "" };
    let replicas: Vec<String> = shard
        .replicas
        .iter()
        .map(|(address, up)| format!("{address}{}", if *up { "" } else { "(down)" }))
        .collect();
    let replicas = if replicas.is_empty() {
        "none".to_string()
    } else {
        replicas.join(",")
    };
    format!("{} master={master}{down} replicas={replicas}", shard.name)
}

fn proxy_text(proxy: &ProxyStatus) -> String {
    let state = match (&proxy.vrrp_state, proxy.up) {
        (_, false) => "down".to_string(),
        (Some(state), true) => state.clone(),
        (None, true) => "up".to_string(),
    };
    format!(
        "{}={state}{}",
        proxy.name,
        vip_mark(proxy, "+vip", "+stale-vip")
    )
}

/// How a node's hold on the virtual IP shows: `live` when it serves it, `stale` when it is
/// down and its interface still carries the address (a kill -9 leaves it there).
fn vip_mark(proxy: &ProxyStatus, live: &'static str, stale: &'static str) -> &'static str {
    match (proxy.holds_vip, proxy.up) {
        (true, true) => live,
        (true, false) => stale,
        (false, _) => "",
    }
}

/// One plain status line.
pub fn status_line(snapshot: &Snapshot, ops: u64) -> String {
    let mut line = String::new();
    for shard in &snapshot.shards {
        let _ = write!(line, "{} | ", shard_text(shard));
    }
    let proxies: Vec<String> = snapshot.proxies.iter().map(proxy_text).collect();
    let _ = write!(
        line,
        "proxies {} | {ops} ops/s, {} errors | traffic ok={} err={}",
        proxies.join(" "),
        snapshot.errors(),
        snapshot.traffic_ok,
        snapshot.traffic_errors
    );
    line
}

/// The full screen for a terminal: the `header` lines (what runs where), a table of shards and proxies, the traffic, the
/// last events and the keys.
pub fn screen(
    header: &[String],
    connect: &str,
    snapshot: &Snapshot,
    ops: u64,
    events: &[String],
    vrrp: bool,
) -> Vec<String> {
    let mut lines = header.to_vec();
    lines.extend([
        connect_line(connect),
        String::new(),
        format!("{:<8} {:<24} {:<8} replicas", "shard", "master", "state"),
    ]);
    for shard in &snapshot.shards {
        let replicas: Vec<String> = shard
            .replicas
            .iter()
            .map(|(address, up)| format!("{address}{}", if *up { "" } else { " (down)" }))
            .collect();
        lines.push(format!(
            "{:<8} {:<24} {:<8} {}",
            shard.name,
            shard.master.as_deref().unwrap_or("?"),
            if shard.master_down { "DOWN" } else { "up" },
            replicas.join(", ")
        ));
    }
    lines.push(String::new());
    lines.push(format!(
        "{:<8} {:<10} {:>10} {:>8}",
        "proxy", "state", "requests", "errors"
    ));
    for proxy in &snapshot.proxies {
        let state = match (&proxy.vrrp_state, proxy.up) {
            (_, false) => "DOWN".to_string(),
            (Some(state), true) => state.clone(),
            (None, true) => "up".to_string(),
        };
        let vip = vip_mark(
            proxy,
            "  <- holds the VIP",
            "  (dead, its interface still has the VIP)",
        );
        lines.push(format!(
            "{:<8} {:<10} {:>10} {:>8}{vip}",
            proxy.name, state, proxy.requests, proxy.errors
        ));
    }
    lines.push(String::new());
    lines.push(format!(
        "{ops} ops/s through the proxies; demo traffic: {} ok, {} errors",
        snapshot.traffic_ok, snapshot.traffic_errors
    ));
    lines.push(String::new());
    lines.extend(events.iter().cloned());
    lines.push(String::new());
    let proxy_key = if vrrp {
        "p kill the active proxy, "
    } else {
        "p kill the proxy, "
    };
    lines.push(format!(
        "keys: 1/2 kill the master of shard 1/2, {proxy_key}r restart what was killed, q quit"
    ));
    lines
}

/// The screen as bytes that redraw a terminal in place (cursor home, clear, lines).
pub fn redraw(lines: &[String]) -> String {
    let mut out = String::from("\x1b[H\x1b[2J");
    for line in lines {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

/// What changed between two snapshots, one line per change.
pub fn changes(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut lines = Vec::new();
    for shard in &after.shards {
        let old = before
            .shards
            .iter()
            .find(|old| old.name == shard.name)
            .and_then(|old| old.master.as_deref());
        if let (Some(old), Some(new)) = (old, shard.master.as_deref())
            && old != new
        {
            lines.push(format!("{}: new master {new} (was {old})", shard.name));
        }
    }
    if after.proxies.len() > 1 {
        let (old, new) = (before.active_proxy(), after.active_proxy());
        if old != new {
            lines.push(match new {
                Some(new) => format!("the virtual IP is now on proxy {new}"),
                None => "no proxy holds the virtual IP".to_string(),
            });
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(master: &str, vip_on: usize) -> Snapshot {
        Snapshot {
            shards: vec![ShardStatus {
                name: "shard1".into(),
                master: Some(master.into()),
                master_down: false,
                replicas: vec![("10.0.0.1:2".into(), false)],
            }],
            proxies: ["a", "b"]
                .iter()
                .enumerate()
                .map(|(index, name)| ProxyStatus {
                    name: (*name).into(),
                    up: true,
                    vrrp_state: Some(if index == vip_on { "MASTER" } else { "BACKUP" }.into()),
                    holds_vip: index == vip_on,
                    requests: 100,
                    errors: 1,
                })
                .collect(),
            traffic_ok: 5,
            traffic_errors: 0,
        }
    }

    #[test]
    fn the_connect_line_holds_a_redis_cli_command() {
        assert_eq!(
            connect_line("10.213.7.100:15007"),
            "connect with: redis-cli -h 10.213.7.100 -p 15007"
        );
    }

    #[test]
    fn a_status_line_shows_masters_replicas_proxies_and_traffic() {
        assert_eq!(
            status_line(&snapshot("10.0.0.1:1", 0), 7),
            "shard1 master=10.0.0.1:1 replicas=10.0.0.1:2(down) | proxies a=MASTER+vip b=BACKUP \
             | 7 ops/s, 2 errors | traffic ok=5 err=0"
        );
    }

    #[test]
    fn changes_name_the_new_master_and_the_new_vip_owner() {
        let before = snapshot("10.0.0.1:1", 0);
        assert!(changes(&before, &before).is_empty());
        assert_eq!(
            changes(&before, &snapshot("10.0.0.1:2", 1)),
            [
                "shard1: new master 10.0.0.1:2 (was 10.0.0.1:1)",
                "the virtual IP is now on proxy b"
            ]
        );
    }

    #[test]
    fn ops_come_from_the_request_counters() {
        let before = snapshot("x", 0);
        let mut after = before.clone();
        after.proxies[0].requests += 30;
        assert_eq!(ops_per_second(&before, &after, 2.0), 15);
        assert_eq!(ops_per_second(&after, &before, 2.0), 0);
        assert_eq!(ops_per_second(&before, &after, 0.0), 0);
    }

    #[test]
    fn the_screen_lists_shards_proxies_events_and_keys() {
        let lines = screen(
            &["header".into()],
            "10.0.0.9:6379",
            &snapshot("10.0.0.1:1", 1),
            3,
            &["an event".into()],
            true,
        );
        assert_eq!(lines[1], "connect with: redis-cli -h 10.0.0.9 -p 6379");
        assert!(
            lines
                .iter()
                .any(|line| line.starts_with("shard1   10.0.0.1:1"))
        );
        assert!(lines.iter().any(|line| line.ends_with("<- holds the VIP")));
        assert!(lines.contains(&"an event".to_string()));
        assert!(redraw(&lines).starts_with("\x1b[H\x1b[2J"));
    }
}
