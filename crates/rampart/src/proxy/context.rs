//! What the tasks of one worker share, on its thread: the read buffer lent to whichever client
//! is reading, the parked clients, the live sessions, and whether the proxy is stopping.

use std::cell::{Cell, RefCell};

use bytes::BytesMut;
use tokio::sync::watch;

use super::parking::ParkingLot;
use super::registry::SessionRegistry;

pub struct WorkerContext {
    /// The read buffer, lent to whichever client is reading, so an idle client holds none.
    pub input: RefCell<BytesMut>,
    pub parking: ParkingLot,
    pub sessions: SessionRegistry,
    /// Changes once, when the proxy starts stopping (for the accept loops and parked clients).
    pub stopping: watch::Receiver<bool>,
    /// Set when the proxy starts stopping, before every session is woken to notice it.
    pub stop_requested: Cell<bool>,
}
