//! A subscribed client's connection to one shard: it sends the client's SUBSCRIBE, PSUBSCRIBE,
//! SSUBSCRIBE and their UN- forms, and passes the messages the server pushes to the client's
//! reply queue as they arrive, byte for byte. The server's confirmations are not forwarded:
//! the client's session writes its own (with the client's subscription count over every
//! shard), and the link's [`Confirmations`] releases each one when every shard it went to has
//! confirmed, so a client never hears "subscribed" before the server would deliver to it.
//!
//! A link lives as long as its client's subscriptions on that shard. If it fails, or its
//! shard's master moves, the client is told and disconnected: subscriptions are not moved.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rampart_config::ServerAddress;
use rampart_protocol::{Protocol, ReplyParser, elements, encode, error_code, string_value};
use tokio::io::Interest;
use tokio::time::timeout;

use super::notify::LocalNotify;
use super::reply_queue::{Part, ReplyQueue};
use super::shard::Shard;
use super::stream::{Stream, error_text, read_some, release_if_large, write_gathered};
use crate::log_limit::limited;

/// Read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;
/// How long a connect may take when the pool has no `timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A confirmation the client waits for.
struct Pending {
    /// `subscribe`, `unsubscribe`, `psubscribe`...
    kind: &'static [u8],
    name: Bytes,
    /// Shards still to confirm.
    acks: usize,
    seq: u64,
    reply: Bytes,
}

/// The confirmations a subscribed client waits for, and where its messages go; shared by the
/// client's session and its links.
pub struct Confirmations {
    queue: Rc<ReplyQueue>,
    pending: RefCell<VecDeque<Pending>>,
    /// A link failed: the client is disconnected.
    lost: Cell<bool>,
}

impl Confirmations {
    pub fn new(queue: Rc<ReplyQueue>) -> Confirmations {
        Confirmations {
            queue,
            pending: RefCell::new(VecDeque::new()),
            lost: Cell::new(false),
        }
    }

    /// The client's slot `seq` gets `reply` once `acks` shards have confirmed `kind` for `name`.
    pub fn expect(&self, kind: &'static [u8], name: Bytes, acks: usize, seq: u64, reply: Bytes) {
        self.pending.borrow_mut().push_back(Pending {
            kind,
            name,
            acks,
            seq,
            reply,
        });
    }

    /// Whether some confirmation has not arrived yet.
    pub fn waiting(&self) -> bool {
        !self.pending.borrow().is_empty()
    }

    /// Whether a link failed.
    pub fn lost(&self) -> bool {
        self.lost.get()
    }

    fn confirmed(&self, kind: &[u8], name: &[u8]) {
        let done = {
            let mut pending = self.pending.borrow_mut();
            let Some(at) = pending
                .iter()
                .position(|waiting| waiting.kind == kind && waiting.name == name)
            else {
                return;
            };
            let Some(waiting) = pending.get_mut(at) else {
                return;
            };
            waiting.acks = waiting.acks.saturating_sub(1);
            if waiting.acks > 0 {
                return;
            }
            pending.remove(at)
        };
        if let Some(done) = done {
            self.queue.complete(done.seq, Part::Whole, done.reply);
        }
    }

    fn message(&self, frame: Bytes) {
        self.queue.push_ready(frame);
    }

    /// A link failed: every confirmation still out is answered with `error`, and the session
    /// is woken to disconnect the client.
    fn fail(&self, error: &Bytes) {
        self.lost.set(true);
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        for waiting in pending {
            self.queue.complete(waiting.seq, Part::Whole, error.clone());
        }
        self.queue.wake.notify();
    }

    /// The client leaves subscribed mode at once (RESET): confirmations still out are given
    /// as they are.
    pub fn release_all(&self) {
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        for waiting in pending {
            self.queue.complete(waiting.seq, Part::Whole, waiting.reply);
        }
    }
}

pub struct SubscriberLink {
    shard: Rc<Shard>,
    protocol: Protocol,
    confirmations: Rc<Confirmations>,
    outbox: RefCell<VecDeque<Bytes>>,
    wake: LocalNotify,
    closing: Cell<bool>,
    moved: Cell<bool>,
    ended: Cell<bool>,
}

/// How a link's connection ended.
enum LinkEnd {
    /// The proxy closed it (the client unsubscribed from everything, or left).
    Closed,
    Failed(String),
}

impl SubscriberLink {
    /// Creates the link and its task, which connects at once.
    pub fn spawn(
        shard: Rc<Shard>,
        protocol: Protocol,
        confirmations: Rc<Confirmations>,
    ) -> Rc<SubscriberLink> {
        let link = Rc::new(SubscriberLink {
            shard,
            protocol,
            confirmations,
            outbox: RefCell::new(VecDeque::new()),
            wake: LocalNotify::default(),
            closing: Cell::new(false),
            moved: Cell::new(false),
            ended: Cell::new(false),
        });
        tokio::task::spawn_local(Rc::clone(&link).run());
        link
    }

    /// Sends a (P|S)(UN)SUBSCRIBE request.
    pub fn send(&self, request: Bytes) {
        self.outbox.borrow_mut().push_back(request);
        self.wake.notify();
    }

    /// Closes the connection, which drops its subscriptions on the server.
    pub fn close(&self) {
        self.closing.set(true);
        self.wake.notify();
    }

    /// The shard's master moved: the client is told and disconnected.
    pub fn retarget(&self) {
        self.moved.set(true);
        self.wake.notify();
    }

    pub fn has_ended(&self) -> bool {
        self.ended.get()
    }

    async fn run(self: Rc<Self>) {
        let end = self.connect_and_serve().await;
        self.ended.set(true);
        if let LinkEnd::Failed(reason) = end {
            limited!(
                warn,
                "subscriber connection failures",
                "a subscriber connection to server '{}' of pool '{}' ended: {reason}; its client \
                 is disconnected",
                self.shard.name(),
                self.shard.pool().name
            );
            let reply = format!(
                "-ERR the subscription connection to shard '{}' was lost ({reason}); \
                 subscribe again\r\n",
                self.shard.name()
            );
            self.confirmations.fail(&Bytes::from(reply));
        }
    }

    async fn connect_and_serve(&self) -> LinkEnd {
        let limit = self
            .shard
            .pool()
            .timeout_ms
            .map_or(DEFAULT_CONNECT_TIMEOUT, Duration::from_millis);
        let connected = match self.shard.master_address() {
            ServerAddress::Tcp { host, port } => {
                timeout(limit, Stream::connect_tcp(&host, port)).await
            }
            ServerAddress::Unix { path } => timeout(limit, Stream::connect_unix(&path)).await,
        };
        let stream = match connected {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return LinkEnd::Failed(error_text(&error)),
            Err(_) => return LinkEnd::Failed("connection timed out".into()),
        };
        self.shard.connection_opened();
        let end = self.serve(&stream).await;
        self.shard.connection_closed();
        end
    }

    /// AUTH and HELLO 3 (as needed), ahead of the client's requests; returns how many replies
    /// they bring.
    fn queue_handshake(&self) -> usize {
        let pool = self.shard.pool();
        let mut request = BytesMut::new();
        let mut steps = 0;
        if let Some(password) = &pool.redis_auth {
            encode::request(&mut request, [&b"AUTH"[..], password.as_bytes()]);
            steps += 1;
        }
        if self.protocol == Protocol::Resp3 {
            encode::request(&mut request, [&b"HELLO"[..], b"3"]);
            steps += 1;
        }
        if steps > 0 {
            self.outbox.borrow_mut().push_front(request.freeze());
        }
        steps
    }

    async fn serve(&self, stream: &Stream) -> LinkEnd {
        let mut handshake_replies = self.queue_handshake();
        let mut buffer = BytesMut::with_capacity(READ_CHUNK);
        let mut parser = ReplyParser::new();
        loop {
            if self.closing.get() {
                return LinkEnd::Closed;
            }
            if self.moved.get() {
                return LinkEnd::Failed("the shard's master moved".into());
            }
            if let Err(error) = self.write_some(stream) {
                return LinkEnd::Failed(error_text(&error));
            }
            let interest = if self.outbox.borrow().is_empty() {
                Interest::READABLE
            } else {
                Interest::READABLE | Interest::WRITABLE
            };
            tokio::select! {
                ready = stream.ready(interest) => match ready {
                    Ok(ready) if ready.is_readable() || ready.is_read_closed() => {
                        match read_some(stream, &mut buffer, READ_CHUNK) {
                            Ok(Some(0)) => return LinkEnd::Failed("closed by the server".into()),
                            Ok(_) => {}
                            Err(error) => return LinkEnd::Failed(error_text(&error)),
                        }
                        loop {
                            let frame = match parser.parse(&buffer) {
                                Ok(Some(frame)) => frame,
                                Ok(None) => break,
                                Err(error) => return LinkEnd::Failed(error.to_string()),
                            };
                            let frame = buffer.split_to(frame.byte_len()).freeze();
                            if handshake_replies > 0 {
                                handshake_replies -= 1;
                                if let Some(code) = error_code(&frame) {
                                    let code = String::from_utf8_lossy(code).into_owned();
                                    return LinkEnd::Failed(format!("handshake refused: {code}"));
                                }
                                continue;
                            }
                            if let Err(problem) = self.deliver(frame) {
                                return LinkEnd::Failed(problem);
                            }
                        }
                        release_if_large(&mut buffer, READ_CHUNK);
                    }
                    Ok(_) => {}
                    Err(error) => return LinkEnd::Failed(error_text(&error)),
                },
                () = self.wake.notified() => {}
            }
        }
    }

    /// A frame pushed by the server: a message goes to the client, a confirmation releases
    /// the client's own.
    fn deliver(&self, frame: Bytes) -> Result<(), String> {
        if let Some(code) = error_code(&frame) {
            return Err(format!(
                "the server refused a subscription: {}",
                String::from_utf8_lossy(code)
            ));
        }
        let mut items = elements(&frame).ok_or("a reply that is not a pub/sub message")?;
        let kind = items
            .next()
            .and_then(|range| frame.get(range))
            .and_then(string_value)
            .ok_or("a pub/sub message without its kind")?;
        match kind {
            b"message" | b"pmessage" | b"smessage" => {
                self.confirmations.message(frame.clone());
            }
            b"subscribe" | b"unsubscribe" | b"psubscribe" | b"punsubscribe" | b"ssubscribe"
            | b"sunsubscribe" => {
                let name = items
                    .next()
                    .and_then(|range| frame.get(range))
                    .and_then(string_value)
                    .unwrap_or_default();
                self.confirmations.confirmed(kind, name);
            }
            _ => {}
        }
        Ok(())
    }

    fn write_some(&self, stream: &Stream) -> io::Result<()> {
        let mut outbox = self.outbox.borrow_mut();
        while !outbox.is_empty() {
            let gathered = write_gathered(outbox.iter().map(|bytes| &bytes[..]), |slices| {
                stream.try_write_vectored(slices)
            });
            let mut written = match gathered {
                Ok(written) => written.unwrap_or(0),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) => return Err(error),
            };
            while written > 0 {
                let Some(head) = outbox.front_mut() else {
                    break;
                };
                if written < head.len() {
                    let _ = head.split_to(written);
                    break;
                }
                written -= head.len();
                outbox.pop_front();
            }
        }
        Ok(())
    }
}
