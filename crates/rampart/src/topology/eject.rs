//! nutcracker's `auto_eject_hosts`, with a health-checked return: a server that workers report
//! as failing leaves the ring at once (its keys move, as in nutcracker), and comes back only
//! after `server_retry_timeout` has passed and a PING to it succeeds.

use std::rc::Rc;
use std::time::Duration;

use super::Control;
use super::link::answers_ping;

/// Takes a server out of its pool's ring and schedules its readmission.
pub(super) fn eject(control: &Rc<Control>, pool: usize, server: usize) {
    let Some((entry, named)) = control.server(pool, server) else {
        return;
    };
    if !control
        .topology
        .set_live(&control.config, pool, server, false)
    {
        return;
    }
    tracing::warn!(
        "ejected server '{}' from pool '{}' for {} ms",
        named.name,
        entry.name,
        entry.server_retry_timeout_ms
    );
    control.stats.record_ejection(pool, server);
    readmit_later(control, pool, server);
}

/// Schedules the readmission of a server that is out of the ring.
pub(super) fn readmit_later(control: &Rc<Control>, pool: usize, server: usize) {
    control.spawn(readmit(Rc::clone(control), pool, server));
}

/// Waits `server_retry_timeout`, then PINGs the server until it answers, and puts it back.
async fn readmit(control: Rc<Control>, pool: usize, server: usize) {
    let Some((entry, named)) = control.server(pool, server) else {
        return;
    };
    let retry = Duration::from_millis(entry.server_retry_timeout_ms.max(1));
    let limit = Duration::from_millis(entry.timeout_ms.unwrap_or(1000).clamp(100, 5000));
    loop {
        tokio::time::sleep(retry).await;
        let Some(address) = control.topology.view(pool).addresses.get(server).cloned() else {
            return;
        };
        if answers_ping(entry, &address, limit).await {
            break;
        }
    }
    control
        .topology
        .set_live(&control.config, pool, server, true);
    tracing::warn!(
        "readmitted server '{}' to pool '{}' after a successful PING",
        named.name,
        entry.name
    );
}
