//! The service manager's view of the process: systemd's `Type=notify` protocol. `READY=1` once
//! the listeners are bound and the workers started, `STOPPING=1` when a stop begins. Without
//! `NOTIFY_SOCKET` (not under systemd) both do nothing.

use sd_notify::NotifyState;

/// Tells the service manager that rampart serves.
pub fn ready() {
    notify(&[NotifyState::Ready]);
}

/// Tells the service manager that rampart has begun to stop.
pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

fn notify(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!("cannot notify the service manager (NOTIFY_SOCKET): {error}");
    }
}
