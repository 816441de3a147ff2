//! Running out of file descriptors at a listening socket. `accept` then fails whether or not a
//! client waits, so a listener that only retried would spin and leave the waiting client
//! hanging in the backlog. Each listener keeps one descriptor in reserve (on /dev/null): it
//! lets the reserve go to accept the waiting client and close it at once, so the client sees
//! its connection closed, then takes the reserve back.

use std::cell::RefCell;
use std::fs::File;
use std::io;

/// One descriptor held in reserve for a listener.
pub struct SpareDescriptor(RefCell<Option<File>>);

impl SpareDescriptor {
    pub fn new() -> io::Result<SpareDescriptor> {
        Ok(SpareDescriptor(RefCell::new(Some(File::open(
            "/dev/null",
        )?))))
    }

    /// After an accept failed with `error`: when the process is out of descriptors, closes the
    /// client that `accept_once` accepts with the room the reserve makes, and returns `Ok`.
    /// Otherwise (another error, no reserve, no client waiting) returns the error.
    pub fn shed<T>(
        &self,
        error: io::Error,
        accept_once: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<()> {
        if !out_of_descriptors(&error) {
            return Err(error);
        }
        let mut spare = self.0.borrow_mut();
        let made_room = spare.take().is_some();
        let shed = made_room.then(|| accept_once().map(drop));
        *spare = File::open("/dev/null").ok();
        shed.unwrap_or(Err(error))
    }
}

fn out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}
