//! A client between sessions: its bare socket (outside the runtime), its pool, and the
//! connection state its next session must remember. A new client starts this way, and a
//! session whose client went idle ends this way, to be parked until the client sends again.

use std::rc::Rc;

use tokio::time::Instant;

use super::local::ConnectionState;
use super::pool::WorkerPool;
use super::stream::IdleSocket;

pub struct IdleClient {
    pub socket: IdleSocket,
    pub pool: Rc<WorkerPool>,
    pub state: ConnectionState,
    /// When the client last sent a request (or connected), for `client_idle_timeout`.
    pub active_at: Instant,
}
