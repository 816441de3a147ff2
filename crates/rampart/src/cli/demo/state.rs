//! The running demo's state file: its PID, where clients connect, the sentinels, and every
//! process it started (PID, role, address, and a proxy's stats address), so that
//! `rampart demo --kill ...` in another terminal can act on it. It lives in
//! `$XDG_RUNTIME_DIR/rampart-demo.json`, or `/tmp/rampart-demo-<uid>/state.json`, is rewritten
//! whenever a process is restarted, and is removed (with its directory) when the demo stops.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::error::DemoError;
use super::processes::Kind;

/// One process as the state file lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub label: String,
    pub kind: Kind,
    pub pid: u32,
    pub address: String,
    /// A proxy's stats port address.
    pub stats: Option<String>,
}

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub pid: u32,
    pub dir: String,
    pub connect: String,
    pub sentinels: Vec<String>,
    pub vrrp_instance: Option<String>,
    pub processes: Vec<Entry>,
}

impl State {
    pub fn to_json(&self) -> String {
        let processes: Vec<Value> = self
            .processes
            .iter()
            .map(|entry| {
                json!({
                    "label": entry.label,
                    "kind": entry.kind.name(),
                    "pid": entry.pid,
                    "address": entry.address,
                    "stats": entry.stats,
                })
            })
            .collect();
        json!({
            "pid": self.pid,
            "dir": self.dir,
            "connect": self.connect,
            "sentinels": self.sentinels,
            "vrrp_instance": self.vrrp_instance,
            "processes": processes,
        })
        .to_string()
    }

    pub fn from_json(text: &str) -> Result<State, String> {
        let document: Value = serde_json::from_str(text).map_err(|error| error.to_string())?;
        let text_of = |value: &Value, key: &str| -> Result<String, String> {
            value
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("no \"{key}\""))
        };
        let pid_of = |value: &Value| -> Result<u32, String> {
            value
                .get("pid")
                .and_then(Value::as_u64)
                .and_then(|pid| u32::try_from(pid).ok())
                .ok_or_else(|| "no \"pid\"".to_string())
        };
        let sentinels = document
            .get("sentinels")
            .and_then(Value::as_array)
            .ok_or("no \"sentinels\"")?
            .iter()
            .filter_map(|sentinel| sentinel.as_str().map(str::to_string))
            .collect();
        let processes = document
            .get("processes")
            .and_then(Value::as_array)
            .ok_or("no \"processes\"")?
            .iter()
            .map(|entry| {
                let kind = match text_of(entry, "kind")?.as_str() {
                    "redis" => Kind::Redis,
                    "sentinel" => Kind::Sentinel,
                    "proxy" => Kind::Proxy,
                    other => return Err(format!("unknown kind \"{other}\"")),
                };
                Ok(Entry {
                    label: text_of(entry, "label")?,
                    kind,
                    pid: pid_of(entry)?,
                    address: text_of(entry, "address")?,
                    stats: text_of(entry, "stats").ok(),
                })
            })
            .collect::<Result<Vec<Entry>, String>>()?;
        Ok(State {
            pid: pid_of(&document)?,
            dir: text_of(&document, "dir")?,
            connect: text_of(&document, "connect")?,
            sentinels,
            vrrp_instance: text_of(&document, "vrrp_instance").ok(),
            processes,
        })
    }
}

/// Where the state file is.
pub fn path() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_dir() => dir.join("rampart-demo.json"),
        _ => PathBuf::from(format!(
            "/tmp/rampart-demo-{}",
            rustix::process::getuid().as_raw()
        ))
        .join("state.json"),
    }
}

/// Reads the state file at `path`.
pub fn read(path: &Path) -> Result<State, DemoError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(DemoError::NotRunning(path.to_path_buf()));
        }
        Err(source) => {
            return Err(DemoError::File {
                what: "cannot read",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    State::from_json(&text).map_err(|reason| DemoError::BadState {
        path: path.to_path_buf(),
        reason,
    })
}

/// Writes the state file at `path` (through a temporary file and a rename).
pub fn write(path: &Path, state: &State) -> Result<(), DemoError> {
    let failed = |source| DemoError::File {
        what: "cannot write",
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(failed)?;
    }
    let temporary = path.with_extension("json.new");
    fs::write(&temporary, state.to_json()).map_err(failed)?;
    fs::rename(&temporary, path).map_err(failed)
}

/// Removes the state file, and its directory when it is the demo's own.
pub fn remove(path: &Path) {
    let _ = fs::remove_file(path);
    if let Some(dir) = path.parent()
        && dir
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("rampart-demo-"))
    {
        let _ = fs::remove_dir(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_a_round_trip() {
        let state = State {
            pid: 42,
            dir: "/tmp/x".into(),
            connect: "10.213.7.100:15007".into(),
            sentinels: vec!["10.213.7.254:15004".into()],
            vrrp_instance: Some("VI_1".into()),
            processes: vec![
                Entry {
                    label: "proxy a".into(),
                    kind: Kind::Proxy,
                    pid: 7,
                    address: "10.213.7.1:15007".into(),
                    stats: Some("10.213.7.1:15008".into()),
                },
                Entry {
                    label: "redis shard1/a".into(),
                    kind: Kind::Redis,
                    pid: 8,
                    address: "10.213.7.254:15000".into(),
                    stats: None,
                },
            ],
        };
        assert_eq!(State::from_json(&state.to_json()), Ok(state));
    }

    #[test]
    fn a_foreign_file_is_refused() {
        assert!(State::from_json("{}").is_err());
        assert!(State::from_json("not json").is_err());
    }
}
