//! A wake-up signal between tasks of one worker thread: one waiting task, one stored permit,
//! no lock and no atomic operation of its own (tokio's `Notify` takes a mutex on every call).

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

#[derive(Default)]
pub struct LocalNotify {
    permit: Cell<bool>,
    waiter: RefCell<Option<Waker>>,
}

impl LocalNotify {
    /// Wakes the waiting task, or lets its next `notified()` return at once.
    pub fn notify(&self) {
        self.permit.set(true);
        if let Some(waker) = self.waiter.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Waits for a notification, consuming the permit.
    pub async fn notified(&self) {
        poll_fn(|context| {
            if self.permit.replace(false) {
                return Poll::Ready(());
            }
            let mut waiter = self.waiter.borrow_mut();
            if !waiter
                .as_ref()
                .is_some_and(|known| known.will_wake(context.waker()))
            {
                *waiter = Some(context.waker().clone());
            }
            Poll::Pending
        })
        .await;
    }
}
