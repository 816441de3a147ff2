//! A client between sessions: its bare socket (outside the runtime), its pool, and the
//! connection state its next session must remember. A new client starts this way, and a
//! session whose client went idle ends this way, to be parked until the client sends again.

use std::rc::Rc;

use super::local::ConnectionState;
use super::pool::WorkerPool;
use super::stream::IdleSocket;

pub struct IdleClient {
    pub socket: IdleSocket,
    pub pool: Rc<WorkerPool>,
    pub state: ConnectionState,
}
