//! nutcracker's `auto_eject_hosts`, with a health-checked return: a server that workers report
//! as failing leaves the ring at once (its keys move, as in nutcracker), and comes back only
//! after `server_retry_timeout` has passed and a PING to it succeeds.

use std::rc::Rc;
use std::time::Duration;

use super::Control;
use super::link::answers_ping;

/// Takes a server out of its pool's ring and schedules its readmission.
pub(super) fn eject(control: &Rc<Control>, pool: usize, server: usize) {
    if !control
        .topology
        .set_live(&control.config, pool, server, false)
    {
        return;
    }
    let entry = &control.config.pools[pool];
    tracing::warn!(
        "ejected server '{}' from pool '{}' for {} ms",
        entry.servers[server].name,
        entry.name,
        entry.server_retry_timeout_ms
    );
    control.stats.record_ejection(pool, server);
    tokio::task::spawn_local(readmit(Rc::clone(control), pool, server));
}

/// Waits `server_retry_timeout`, then PINGs the server until it answers, and puts it back.
async fn readmit(control: Rc<Control>, pool: usize, server: usize) {
    let entry = &control.config.pools[pool];
    let retry = Duration::from_millis(entry.server_retry_timeout_ms.max(1));
    let limit = Duration::from_millis(entry.timeout_ms.unwrap_or(1000).clamp(100, 5000));
    loop {
        tokio::time::sleep(retry).await;
        let address = control.topology.view(pool).addresses[server].clone();
        if answers_ping(entry, &address, limit).await {
            break;
        }
    }
    control
        .topology
        .set_live(&control.config, pool, server, true);
    tracing::warn!(
        "readmitted server '{}' to pool '{}' after a successful PING",
        entry.servers[server].name,
        entry.name
    );
}
