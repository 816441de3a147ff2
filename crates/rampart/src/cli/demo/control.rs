//! Acting on the demo: the keys of the live view (`1`/`2` kill a shard's master, `p` the
//! active proxy, `r` restarts what was killed, `q` quits), `rampart demo --kill ...` from
//! another terminal (through the state file), and the terminal mode that lets single keys
//! through without Enter.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver};
use std::thread;

use rustix::termios::{self, LocalModes, OptionalActions, Termios};

use super::error::DemoError;
use super::observe::{master_of, stats_document};
use super::processes::{Kind, kill_pid};
use super::state::{self, Entry, State};

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// kill -9 of a shard's current master (by shard name or number).
    KillMaster(String),
    /// kill -9 of the proxy holding the virtual IP (or the only proxy).
    KillProxy,
    /// Start again whatever was killed.
    Restart,
    Quit,
}

/// The action of a key pressed in the live view.
pub fn action_for_key(key: u8) -> Option<Action> {
    match key {
        b'1' | b'2' => Some(Action::KillMaster(char::from(key).to_string())),
        b'p' | b'P' => Some(Action::KillProxy),
        b'r' | b'R' => Some(Action::Restart),
        b'q' | b'Q' => Some(Action::Quit),
        _ => None,
    }
}

/// `--kill master-of SHARD` or `--kill proxy`.
pub fn parse_kill(words: &[String]) -> Option<Action> {
    match words {
        [what, shard] if what == "master-of" => Some(Action::KillMaster(shard.clone())),
        [what] if what == "proxy" => Some(Action::KillProxy),
        _ => None,
    }
}

/// The process a kill action is aimed at, as the state file lists it.
pub fn victim(state: &State, action: &Action) -> Result<Entry, DemoError> {
    match action {
        Action::KillMaster(which) => {
            let shard = shard_name(which).ok_or_else(|| DemoError::UnknownShard(which.clone()))?;
            let sentinels: Vec<SocketAddr> = state
                .sentinels
                .iter()
                .filter_map(|address| address.parse().ok())
                .collect();
            let address =
                master_of(&sentinels, &shard).ok_or(DemoError::NoMaster(shard.clone()))?;
            state
                .processes
                .iter()
                .find(|entry| entry.kind == Kind::Redis && entry.address == address)
                .cloned()
                .ok_or(DemoError::NotOurs { shard, address })
        }
        _ => {
            let proxies: Vec<&Entry> = state
                .processes
                .iter()
                .filter(|entry| entry.kind == Kind::Proxy)
                .collect();
            let active = match &state.vrrp_instance {
                None => proxies.first().copied(),
                Some(instance) => proxies.into_iter().find(|entry| {
                    let key = format!("vrrp_{instance}_state");
                    entry
                        .stats
                        .as_deref()
                        .and_then(|stats| stats.parse().ok())
                        .and_then(stats_document)
                        .is_some_and(|stats| {
                            stats.get(&key).and_then(|state| state.as_str()) == Some("MASTER")
                        })
                }),
            };
            active.cloned().ok_or(DemoError::NoActiveProxy)
        }
    }
}

/// `shard1` for `1` or `shard1`.
fn shard_name(which: &str) -> Option<String> {
    let number = which.strip_prefix("shard").unwrap_or(which);
    matches!(number, "1" | "2").then(|| format!("shard{number}"))
}

/// `rampart demo --kill ...`: kill -9 of the process aimed at in the running demo.
pub fn kill_from_outside(action: &Action) -> Result<String, DemoError> {
    let path = state::path();
    let state = state::read(&path)?;
    if !super::processes::alive(state.pid) {
        return Err(DemoError::NotRunning(path));
    }
    let entry = victim(&state, action)?;
    if kill_pid(entry.pid) {
        Ok(format!(
            "killed {} ({}, pid {}) with SIGKILL",
            entry.label, entry.address, entry.pid
        ))
    } else {
        Err(DemoError::Kill {
            pid: entry.pid,
            source: std::io::Error::last_os_error(),
        })
    }
}

/// The terminal in a mode where each key arrives at once, without echo (Ctrl-C still sends
/// SIGINT); the previous mode comes back when dropped.
pub struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    pub fn enter() -> std::io::Result<RawTerminal> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.local_modes
            .remove(LocalModes::ICANON | LocalModes::ECHO);
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        Ok(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// A thread reading keys from stdin; its actions arrive on the receiver.
pub fn read_keys() -> std::io::Result<Receiver<Action>> {
    let (sender, receiver) = mpsc::channel();
    thread::Builder::new()
        .name("demo-keys".into())
        .spawn(move || {
            let mut key = [0_u8; 1];
            let mut stdin = std::io::stdin();
            while let Ok(1) = stdin.read(&mut key) {
                let [byte] = key;
                if let Some(action) = action_for_key(byte)
                    && sender.send(action).is_err()
                {
                    break;
                }
            }
        })?;
    Ok(receiver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_actions() {
        assert_eq!(action_for_key(b'2'), Some(Action::KillMaster("2".into())));
        assert_eq!(action_for_key(b'p'), Some(Action::KillProxy));
        assert_eq!(action_for_key(b'r'), Some(Action::Restart));
        assert_eq!(action_for_key(b'q'), Some(Action::Quit));
        assert_eq!(action_for_key(b'x'), None);
    }

    #[test]
    fn kill_arguments_parse() {
        let words = |list: &[&str]| list.iter().map(|word| word.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_kill(&words(&["master-of", "shard2"])),
            Some(Action::KillMaster("shard2".into()))
        );
        assert_eq!(parse_kill(&words(&["proxy"])), Some(Action::KillProxy));
        assert_eq!(parse_kill(&words(&["master-of"])), None);
        assert_eq!(parse_kill(&words(&["sentinel"])), None);
    }

    #[test]
    fn shards_are_named_by_number_or_name() {
        assert_eq!(shard_name("1").as_deref(), Some("shard1"));
        assert_eq!(shard_name("shard2").as_deref(), Some("shard2"));
        assert_eq!(shard_name("3"), None);
    }
}
