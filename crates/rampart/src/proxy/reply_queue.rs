//! A client's replies in request order. Every request takes a slot when it is read; backends
//! (and the proxy itself) fill slots in any order; the client writes from the head while the
//! head is ready. Fragmented requests merge in their slot once every fragment has answered.
//! While its session waits to read, the backend that answers a client's last outstanding
//! request writes the replies to the client itself, sparing the session a wake-up.
//!
//! The queue also counts what the client makes the proxy hold: the bytes of its requests still
//! waiting for replies, of the replies it has not read, and of the replies still to come,
//! estimated from the largest of its recent replies (the server builds a reply in its own
//! memory before the proxy reads it, so a pipeline of large GETs must be paced before it is
//! sent). It notes when the unread replies pass the pool's output limits, for the session to
//! disconnect the client.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::rc::Rc;

use super::notify::LocalNotify;
use bytes::{Buf, Bytes};
use tokio::time::Instant;

use super::merge::Merging;
use super::stream::{Stream, write_gathered};

/// Spare merge states a client keeps (enough for a pipeline of split requests in flight).
const MAX_SPARE_MERGES: usize = 16;

/// A slot in the reply order.
enum Slot {
    /// Sent to a backend; no reply yet.
    Waiting { request_bytes: usize },
    /// The reply, ready to write.
    Ready(Bytes),
    /// Fragments of a split request, some still out; `held_bytes` of their replies are in.
    Merging {
        merging: Box<Merging>,
        request_bytes: usize,
        held_bytes: usize,
    },
}

/// Unread reply bytes at which a client is disconnected (`None`: no limit).
#[derive(Debug, Clone, Copy, Default)]
pub struct OutputLimits {
    /// At once.
    pub hard: Option<usize>,
    /// Once held above it for the pool's `client_output_soft_seconds`.
    pub soft: Option<usize>,
}

/// Where a client's unread replies stand against its output limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputState {
    Within,
    /// Above the soft limit since this instant.
    AboveSoft(Instant),
    AboveHard,
}

struct Queue {
    slots: VecDeque<Slot>,
    /// Sequence number of `slots[0]`.
    first_seq: u64,
    /// The client is gone: late replies are dropped.
    closed: bool,
    /// Slots still waiting for their reply (not `Ready`).
    unanswered: usize,
    /// Bytes of the requests still waiting for their replies.
    request_bytes: usize,
    /// Bytes of replies held for the client: ready to write, or fragments waiting to merge.
    reply_bytes: usize,
    /// What a reply still to come is expected to weigh: the largest recent reply, decaying by
    /// a sixteenth with every smaller one.
    reply_estimate: usize,
    limits: OutputLimits,
    output: OutputState,
}

impl Queue {
    /// Reply bytes arrived (`added`) or were written or merged away (`removed`): updates the
    /// count and where it stands against the limits. True when it just passed a limit, which
    /// the session must learn of even while it waits for nothing else.
    fn account_replies(&mut self, added: usize, removed: usize) -> bool {
        self.reply_bytes = (self.reply_bytes + added).saturating_sub(removed);
        let bytes = self.reply_bytes;
        let before = self.output;
        self.output = if self.limits.hard.is_some_and(|hard| bytes > hard) {
            OutputState::AboveHard
        } else if self.limits.soft.is_some_and(|soft| bytes > soft) {
            match self.output {
                OutputState::Within => OutputState::AboveSoft(Instant::now()),
                held => held,
            }
        } else {
            OutputState::Within
        };
        matches!(
            (before, self.output),
            (OutputState::Within, OutputState::AboveSoft(_))
                | (
                    OutputState::Within | OutputState::AboveSoft(_),
                    OutputState::AboveHard
                )
        )
    }
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
    /// Woken whenever the head may have become writable, or the replies passed an output
    /// limit.
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
    /// A queue whose replies still to come are first estimated at `first_reply_estimate` bytes
    /// each, until replies arrive.
    pub fn new(limits: OutputLimits, first_reply_estimate: usize) -> ReplyQueue {
        ReplyQueue {
            spare: RefCell::new(Vec::new()),
            queue: RefCell::new(Queue {
                slots: VecDeque::new(),
                first_seq: 0,
                closed: false,
                unanswered: 0,
                request_bytes: 0,
                reply_bytes: 0,
                reply_estimate: first_reply_estimate,
                limits,
                output: OutputState::Within,
            }),
            wake: LocalNotify::default(),
            client: RefCell::new(None),
            writes_through: Cell::new(false),
        }
    }

    /// Changes the output limits (a client that subscribes gets Redis's pub/sub ones).
    pub fn set_output_limits(&self, limits: OutputLimits) {
        let passed_limit = {
            let mut queue = self.queue.borrow_mut();
            queue.limits = limits;
            queue.account_replies(0, 0)
        };
        if passed_limit {
            self.wake.notify();
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

    /// Appends a reply the proxy made itself and returns its sequence number.
    pub fn push_ready(&self, reply: Bytes) -> u64 {
        let passed_limit = self.queue.borrow_mut().account_replies(reply.len(), 0);
        let seq = self.push(Slot::Ready(reply));
        if passed_limit {
            self.wake.notify();
        }
        seq
    }

    /// Appends a slot for a request of `request_bytes` sent whole to a backend.
    pub fn push_waiting(&self, request_bytes: usize) -> u64 {
        self.push(Slot::Waiting { request_bytes })
    }

    /// Appends a slot for a request split (or sent to every shard) as `merging` says, whose
    /// fragments total `request_bytes`.
    pub fn push_merging(&self, merging: Box<Merging>, request_bytes: usize) -> u64 {
        self.push(Slot::Merging {
            merging,
            request_bytes,
            held_bytes: 0,
        })
    }

    /// Appends a slot and returns its sequence number.
    fn push(&self, slot: Slot) -> u64 {
        let mut queue = self.queue.borrow_mut();
        match &slot {
            Slot::Ready(_) => {}
            Slot::Waiting { request_bytes } | Slot::Merging { request_bytes, .. } => {
                queue.unanswered += 1;
                queue.request_bytes += request_bytes;
            }
        }
        queue.slots.push_back(slot);
        let seq = queue.first_seq + queue.slots.len() as u64 - 1;
        if seq == queue.first_seq {
            self.wake.notify();
        }
        seq
    }

    /// Bytes the client makes the proxy (and its servers) hold: its requests still waiting
    /// for replies, its replies not yet written, and the estimated replies still to come.
    pub fn pending_bytes(&self) -> usize {
        let queue = self.queue.borrow();
        let to_come = queue.unanswered.saturating_mul(queue.reply_estimate);
        (queue.request_bytes + queue.reply_bytes).saturating_add(to_come)
    }

    /// Bytes of replies held for the client.
    pub fn reply_bytes(&self) -> usize {
        self.queue.borrow().reply_bytes
    }

    /// Where the client's unread replies stand against its output limits.
    pub fn output_state(&self) -> OutputState {
        self.queue.borrow().output
    }

    /// Requests taken since the client connected (the sequence number the next one gets).
    pub fn requests_taken(&self) -> u64 {
        let queue = self.queue.borrow();
        queue.first_seq + queue.slots.len() as u64
    }

    /// Requests still waiting for their replies.
    pub fn unanswered(&self) -> usize {
        self.queue.borrow().unanswered
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

    /// Whether request `seq` has its reply (written to the client, or ready to be).
    pub fn is_answered(&self, seq: u64) -> bool {
        let queue = self.queue.borrow();
        match seq.checked_sub(queue.first_seq) {
            None => true,
            Some(index) => usize::try_from(index)
                .ok()
                .and_then(|index| queue.slots.get(index))
                .is_none_or(|slot| matches!(slot, Slot::Ready(_))),
        }
    }

    /// Fills slot `seq` (or one fragment of it) with a reply.
    pub fn complete(&self, seq: u64, part: Part, reply: Bytes) {
        let mut queue = self.queue.borrow_mut();
        if queue.closed || seq < queue.first_seq {
            return;
        }
        let index = (seq - queue.first_seq) as usize;
        queue.reply_estimate = reply
            .len()
            .max(queue.reply_estimate - queue.reply_estimate / 16);
        let Some(slot) = queue.slots.get_mut(index) else {
            return;
        };
        let arrived = reply.len();
        // Whether the slot is answered, its request's bytes, and the reply bytes it now holds
        // more and no longer holds.
        let (answered, request_bytes, added, removed) = match (part, &mut *slot) {
            (
                Part::Fragment(fragment),
                Slot::Merging {
                    merging,
                    request_bytes,
                    held_bytes,
                },
            ) => match merging.complete(fragment, reply) {
                Some(merged) => {
                    let (request_bytes, held_bytes) = (*request_bytes, *held_bytes);
                    let merged_len = merged.len();
                    if let Slot::Merging { merging, .. } =
                        std::mem::replace(slot, Slot::Ready(merged))
                    {
                        self.keep_spare(merging);
                    }
                    (true, request_bytes, merged_len, held_bytes)
                }
                None => {
                    *held_bytes += arrived;
                    (false, 0, arrived, 0)
                }
            },
            (_, Slot::Waiting { request_bytes }) => {
                let request_bytes = *request_bytes;
                *slot = Slot::Ready(reply);
                (true, request_bytes, arrived, 0)
            }
            (
                Part::Whole,
                Slot::Merging {
                    request_bytes,
                    held_bytes,
                    ..
                },
            ) => {
                let (request_bytes, held_bytes) = (*request_bytes, *held_bytes);
                *slot = Slot::Ready(reply);
                (true, request_bytes, arrived, held_bytes)
            }
            (_, Slot::Ready(_)) => return,
        };
        if answered {
            queue.unanswered -= 1;
            queue.request_bytes = queue.request_bytes.saturating_sub(request_bytes);
        }
        let passed_limit = queue.account_replies(added, removed);
        let all_answered = queue.unanswered == 0;
        drop(queue);
        if passed_limit {
            self.wake.notify();
        } else if all_answered && self.writes_through.get() {
            if !self.write_through() {
                self.wake.notify();
            }
        } else if index == 0 {
            self.wake.notify();
        }
    }

    /// Keeps a finished merge state for the next split request.
    fn keep_spare(&self, mut merging: Box<Merging>) {
        let mut spare = self.spare.borrow_mut();
        if spare.len() < MAX_SPARE_MERGES {
            merging.clear();
            spare.push(merging);
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
        queue.account_replies(0, written);
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
        queue.request_bytes = 0;
        queue.reply_bytes = 0;
        queue.output = OutputState::Within;
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
        let queue = ReplyQueue::new(OutputLimits::default(), 0);
        let first = queue.push_waiting(10);
        let second = queue.push_waiting(10);
        let mut merging = queue.merging();
        merging.prepare(MergeKind::AllOk, 2);
        let third = queue.push_merging(merging, 20);
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
        let late = queue.push_waiting(10);
        queue.push_ready(Bytes::from_static(b"+c\r\n"));
        assert!(!queue.partly_answered());
        queue.complete(late, Part::Whole, Bytes::from_static(b"+d\r\n"));
        assert!(!queue.partly_answered());
        assert_eq!(written(&queue), b"+d\r\n+c\r\n");
    }

    #[test]
    fn pending_bytes_count_requests_in_flight_and_unread_replies() {
        let queue = ReplyQueue::new(OutputLimits::default(), 0);
        let get = queue.push_waiting(30);
        let mut merging = queue.merging();
        merging.prepare(MergeKind::SumIntegers, 2);
        let del = queue.push_merging(merging, 50);
        assert_eq!(queue.pending_bytes(), 80, "two requests in flight");

        queue.complete(del, Part::Fragment(0), Bytes::from_static(b":1\r\n"));
        assert_eq!(
            queue.pending_bytes(),
            80 + 4 + 2 * 4,
            "a held fragment counts, and the replies to come are estimated from it"
        );
        queue.complete(del, Part::Fragment(1), Bytes::from_static(b":2\r\n"));
        assert_eq!(
            queue.reply_bytes(),
            4,
            "the fragments merged into one reply"
        );
        assert_eq!(queue.pending_bytes(), 30 + 4 + 4);
        queue.complete(get, Part::Whole, Bytes::from_static(b"$3\r\nabc\r\n"));
        assert_eq!(queue.pending_bytes(), 13);

        let mut partly = Vec::new();
        queue
            .write_head(|slices| {
                partly.extend_from_slice(&slices[0][..5]);
                Ok(5)
            })
            .expect("an in-memory write");
        assert_eq!(queue.pending_bytes(), 8, "written bytes no longer count");
        assert_eq!(written(&queue), b"bc\r\n:3\r\n");
        assert_eq!(queue.pending_bytes(), 0);
    }

    #[test]
    fn replies_to_come_weigh_as_the_largest_recent_reply() {
        let queue = ReplyQueue::new(OutputLimits::default(), 1000);
        let first = queue.push_waiting(0);
        let second = queue.push_waiting(0);
        assert_eq!(queue.pending_bytes(), 2000, "the first estimate");
        queue.complete(first, Part::Whole, Bytes::from(vec![b'a'; 4000]));
        assert_eq!(queue.pending_bytes(), 4000 + 4000, "one held, one to come");
        queue.complete(second, Part::Whole, Bytes::from_static(b"+OK\r\n"));
        assert_eq!(written(&queue).len(), 4005);
        for _ in 0..100 {
            let seq = queue.push_waiting(0);
            queue.complete(seq, Part::Whole, Bytes::from_static(b"+OK\r\n"));
            written(&queue);
        }
        queue.push_waiting(0);
        assert!(
            queue.pending_bytes() < 100,
            "small replies bring the estimate down: {}",
            queue.pending_bytes()
        );
    }

    #[test]
    fn unread_replies_pass_the_soft_then_the_hard_limit() {
        let queue = ReplyQueue::new(
            OutputLimits {
                hard: Some(100),
                soft: Some(50),
            },
            0,
        );
        let first = queue.push_waiting(10);
        let second = queue.push_waiting(10);
        queue.complete(first, Part::Whole, Bytes::from(vec![b'a'; 60]));
        let OutputState::AboveSoft(since) = queue.output_state() else {
            panic!("above the soft limit: {:?}", queue.output_state());
        };
        queue.complete(second, Part::Whole, Bytes::from(vec![b'b'; 20]));
        assert_eq!(
            queue.output_state(),
            OutputState::AboveSoft(since),
            "the soft limit counts from when it was first passed"
        );
        queue.push_ready(Bytes::from(vec![b'c'; 30]));
        assert_eq!(queue.output_state(), OutputState::AboveHard);
        queue.close();
        assert_eq!(queue.output_state(), OutputState::Within);
        assert_eq!(queue.pending_bytes(), 0);
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
            let queue = ReplyQueue::new(OutputLimits::default(), 0);
            queue.set_client(Some(Rc::new(Stream::Unix(proxy_side))));

            let first = queue.push_waiting(10);
            let second = queue.push_waiting(10);
            queue.allow_writes_through(true);
            queue.complete(second, Part::Whole, Bytes::from_static(b"+b\r\n"));
            queue.complete(first, Part::Whole, Bytes::from_static(b"+a\r\n"));
            assert_eq!(received(), b"+a\r\n+b\r\n", "the last answer wrote both");
            assert!(queue.is_empty());

            queue.allow_writes_through(false);
            let third = queue.push_waiting(10);
            queue.complete(third, Part::Whole, Bytes::from_static(b"+c\r\n"));
            assert!(received().is_empty(), "the session writes this one");
            assert_eq!(written(&queue), b"+c\r\n");
        });
    }
}
