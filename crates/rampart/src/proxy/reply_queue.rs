//! A client's replies in request order. Every request takes a slot when it is read; backends
//! (and the proxy itself) fill slots in any order; the client writes from the head while the
//! head is ready. Fragmented requests merge in their slot once every fragment has answered.
//! While its session waits to read, the backend that answers a client's last outstanding
//! request writes the replies to the client itself, sparing the session a wake-up.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::rc::Rc;

use super::notify::LocalNotify;
use bytes::{Buf, Bytes};

use super::merge::Merging;
use super::stream::{Stream, write_gathered};

/// Spare merge states a client keeps (enough for a pipeline of split requests in flight).
const MAX_SPARE_MERGES: usize = 16;

/// A slot in the reply order.
pub enum Slot {
    /// Sent to a backend; no reply yet.
    Waiting,
    /// The reply, ready to write.
    Ready(Bytes),
    /// Fragments of a split request, some still out.
    Merging(Box<Merging>),
}

struct Queue {
    slots: VecDeque<Slot>,
    /// Sequence number of `slots[0]`.
    first_seq: u64,
    /// The client is gone: late replies are dropped.
    closed: bool,
    /// Slots still waiting for their reply (not `Ready`).
    unanswered: usize,
}

/// Shared between a client session and the backends serving it (same thread).
pub struct ReplyQueue {
    queue: RefCell<Queue>,
    /// Merge states of finished split requests, kept for the next ones. They stay boxed so a
    /// slot can take one back without allocating.
    #[expect(
        clippy::vec_box,
        reason = "the boxes are reused as they are by `Slot::Merging`"
    )]
    spare: RefCell<Vec<Box<Merging>>>,
    /// Woken whenever the head may have become writable.
    pub wake: LocalNotify,
    /// The client's socket, while its session lives.
    client: RefCell<Option<Rc<Stream>>>,
    /// The session waits to read with nothing in the way: a backend that answers the last
    /// outstanding request may write the replies to `client` itself.
    writes_through: Cell<bool>,
}

/// Which part of a request a backend reply answers.
#[derive(Debug, Clone, Copy)]
pub enum Part {
    Whole,
    Fragment(u16),
}

impl ReplyQueue {
    pub fn new() -> ReplyQueue {
        ReplyQueue {
            spare: RefCell::new(Vec::new()),
            queue: RefCell::new(Queue {
                slots: VecDeque::new(),
                first_seq: 0,
                closed: false,
                unanswered: 0,
            }),
            wake: LocalNotify::default(),
            client: RefCell::new(None),
            writes_through: Cell::new(false),
        }
    }

    /// Lends the client's socket for writes through the backends, or takes it back (`None`).
    pub fn set_client(&self, client: Option<Rc<Stream>>) {
        self.writes_through.set(false);
        *self.client.borrow_mut() = client;
    }

    /// Whether a backend may write a fully answered queue to the client now.
    pub fn allow_writes_through(&self, allowed: bool) {
        self.writes_through.set(allowed);
    }

    /// A cleared merge state for a split request, reused when one is spare.
    pub fn merging(&self) -> Box<Merging> {
        self.spare
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Box::new(Merging::new()))
    }

    /// Appends a slot and returns its sequence number.
    pub fn push(&self, slot: Slot) -> u64 {
        let mut queue = self.queue.borrow_mut();
        if !matches!(slot, Slot::Ready(_)) {
            queue.unanswered += 1;
        }
        queue.slots.push_back(slot);
        let seq = queue.first_seq + queue.slots.len() as u64 - 1;
        if seq == queue.first_seq {
            self.wake.notify();
        }
        seq
    }

    /// Requests taken since the client connected (the sequence number the next one gets).
    pub fn requests_taken(&self) -> u64 {
        let queue = self.queue.borrow();
        queue.first_seq + queue.slots.len() as u64
    }

    /// Requests whose replies are not written yet.
    pub fn len(&self) -> usize {
        self.queue.borrow().slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the head has a reply to write while later requests still wait for theirs
    /// (a pipeline spread over several shards, answered shard by shard).
    pub fn partly_answered(&self) -> bool {
        let queue = self.queue.borrow();
        queue.unanswered > 0 && matches!(queue.slots.front(), Some(Slot::Ready(_)))
    }

    /// Fills slot `seq` (or one fragment of it) with a reply.
    pub fn complete(&self, seq: u64, part: Part, reply: Bytes) {
        let mut queue = self.queue.borrow_mut();
        if queue.closed || seq < queue.first_seq {
            return;
        }
        let index = (seq - queue.first_seq) as usize;
        let Some(slot) = queue.slots.get_mut(index) else {
            return;
        };
        let answered = match (part, &mut *slot) {
            (Part::Fragment(fragment), Slot::Merging(merging)) => {
                match merging.complete(fragment, reply) {
                    Some(merged) => {
                        if let Slot::Merging(mut done) =
                            std::mem::replace(slot, Slot::Ready(merged))
                        {
                            let mut spare = self.spare.borrow_mut();
                            if spare.len() < MAX_SPARE_MERGES {
                                done.clear();
                                spare.push(done);
                            }
                        }
                        true
                    }
                    None => false,
                }
            }
            (_, Slot::Waiting) | (Part::Whole, Slot::Merging(_)) => {
                *slot = Slot::Ready(reply);
                true
            }
            (_, Slot::Ready(_)) => return,
        };
        if answered {
            queue.unanswered -= 1;
        }
        let all_answered = queue.unanswered == 0;
        drop(queue);
        if all_answered && self.writes_through.get() {
            if !self.write_through() {
                self.wake.notify();
            }
        } else if index == 0 {
            self.wake.notify();
        }
    }

    /// Writes every reply to the client. False when the socket took less than all of it or
    /// failed: the session then takes over (and meets the same condition itself).
    fn write_through(&self) -> bool {
        let client = self.client.borrow();
        let Some(stream) = client.as_ref() else {
            return false;
        };
        loop {
            match self.write_head(|slices| stream.try_write_vectored(slices)) {
                Ok(Some(_)) => {}
                Ok(None) => return true,
                Err(_) => {
                    self.writes_through.set(false);
                    return false;
                }
            }
        }
    }

    /// Offers the ready replies at the head to `write` as one vectored write,
    /// then drops what it wrote. Returns `Ok(None)` when no reply is ready.
    pub fn write_head(
        &self,
        write: impl FnOnce(&[IoSlice<'_>]) -> io::Result<usize>,
    ) -> io::Result<Option<usize>> {
        let written = {
            let queue = self.queue.borrow();
            let ready = queue.slots.iter().map_while(|slot| match slot {
                Slot::Ready(bytes) => Some(&bytes[..]),
                _ => None,
            });
            write_gathered(ready, write)?
        };
        if let Some(written) = written {
            self.consume(written);
        }
        Ok(written)
    }

    /// Consumes `written` bytes from the head: whole replies are removed, a partly written
    /// one is trimmed.
    fn consume(&self, mut written: usize) {
        let mut queue = self.queue.borrow_mut();
        while written > 0 {
            let Some(Slot::Ready(head)) = queue.slots.front_mut() else {
                return;
            };
            if written < head.len() {
                head.advance(written);
                return;
            }
            written -= head.len();
            queue.slots.pop_front();
            queue.first_seq += 1;
        }
    }

    /// The client went away: forget its slots and its socket; replies still in flight will be
    /// dropped.
    pub fn close(&self) {
        self.set_client(None);
        let mut queue = self.queue.borrow_mut();
        queue.closed = true;
        queue.slots.clear();
        queue.unanswered = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::merge::MergeKind;
    use tokio::net::UnixStream;

    fn written(queue: &ReplyQueue) -> Vec<u8> {
        let mut out = Vec::new();
        queue
            .write_head(|slices| {
                for slice in slices {
                    out.extend_from_slice(slice);
                }
                Ok(slices.iter().map(|slice| slice.len()).sum())
            })
            .expect("an in-memory write");
        out
    }

    #[test]
    fn a_pipeline_is_partly_answered_until_its_last_reply() {
        let queue = ReplyQueue::new();
        let first = queue.push(Slot::Waiting);
        let second = queue.push(Slot::Waiting);
        let mut merging = queue.merging();
        merging.prepare(MergeKind::AllOk, 2);
        let third = queue.push(Slot::Merging(merging));
        assert!(!queue.partly_answered(), "nothing to write yet");

        queue.complete(second, Part::Whole, Bytes::from_static(b"+b\r\n"));
        assert!(!queue.partly_answered(), "the head still waits");
        queue.complete(first, Part::Whole, Bytes::from_static(b"+a\r\n"));
        assert!(queue.partly_answered());
        queue.complete(third, Part::Fragment(1), Bytes::from_static(b"+OK\r\n"));
        assert!(
            queue.partly_answered(),
            "one fragment of the last is still out"
        );
        queue.complete(third, Part::Fragment(0), Bytes::from_static(b"+OK\r\n"));
        assert!(!queue.partly_answered(), "every reply is in");

        assert_eq!(written(&queue), b"+a\r\n+b\r\n+OK\r\n");
        assert!(queue.is_empty());
        let late = queue.push(Slot::Waiting);
        queue.push(Slot::Ready(Bytes::from_static(b"+c\r\n")));
        assert!(!queue.partly_answered());
        queue.complete(late, Part::Whole, Bytes::from_static(b"+d\r\n"));
        assert!(!queue.partly_answered());
        assert_eq!(written(&queue), b"+d\r\n+c\r\n");
    }

    #[test]
    fn the_last_answer_writes_through_only_while_the_session_allows_it() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let (proxy_side, client_side) = UnixStream::pair().expect("a socket pair");
            let client_side = client_side.into_std().expect("a std socket");
            client_side.set_nonblocking(true).expect("non-blocking");
            let received = || {
                let mut bytes = vec![0u8; 64];
                let count = std::io::Read::read(&mut &client_side, &mut bytes).unwrap_or(0);
                bytes.truncate(count);
                bytes
            };
            let queue = ReplyQueue::new();
            queue.set_client(Some(Rc::new(Stream::Unix(proxy_side))));

            let first = queue.push(Slot::Waiting);
            let second = queue.push(Slot::Waiting);
            queue.allow_writes_through(true);
            queue.complete(second, Part::Whole, Bytes::from_static(b"+b\r\n"));
            queue.complete(first, Part::Whole, Bytes::from_static(b"+a\r\n"));
            assert_eq!(received(), b"+a\r\n+b\r\n", "the last answer wrote both");
            assert!(queue.is_empty());

            queue.allow_writes_through(false);
            let third = queue.push(Slot::Waiting);
            queue.complete(third, Part::Whole, Bytes::from_static(b"+c\r\n"));
            assert!(received().is_empty(), "the session writes this one");
            assert_eq!(written(&queue), b"+c\r\n");
        });
    }
}
