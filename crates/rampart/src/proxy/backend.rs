//! One worker's connection to one backend server: requests from many clients are queued,
//! written in batches with one vectored write, and matched FIFO with the replies, which go
//! back to each client's reply queue byte for byte. The connection opens lazily, sends AUTH,
//! then SELECT, then HELLO 3 (for RESP3 clients) before any client traffic, times requests out,
//! and on failure answers every request it still holds, retrying once those that provably
//! never reached the server.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::rc::{Rc, Weak};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use rampart_config::ServerAddress;
use rampart_protocol::{Protocol, ReplyParser, encode, error_code};
use tokio::io::Interest;
use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until, timeout_at};

use super::reply_queue::{Part, ReplyQueue};
use super::router::PoolRouter;
use super::stream::{Stream, error_text, read_some, release_if_large};
use crate::admin::catalog::ServerStat;

/// Most requests written in one vectored write.
const MAX_IOVECS: usize = 64;
/// Read buffer growth step for replies.
const READ_CHUNK: usize = 16 * 1024;
/// How long a connect may take when the pool has no `timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whose reply a queued request waits for.
pub enum Target {
    Client {
        queue: Rc<ReplyQueue>,
        seq: u64,
        part: Part,
    },
    /// AUTH, SELECT or HELLO sent by the proxy itself; the reply is checked, not forwarded.
    Handshake(&'static str),
}

struct Waiter {
    target: Target,
    deadline: Option<Instant>,
    retried: bool,
}

/// Why a connection ended.
enum Failure {
    /// The server closed it.
    Eof,
    /// The pool's `timeout` passed with a request unanswered.
    TimedOut,
    /// A socket error (refused, reset, broken pipe, host down...).
    Io(io::Error),
    /// The server sent bytes that are not RESP, or a reply nobody asked for.
    Protocol(String),
}

struct State {
    /// Every request not yet answered, oldest first; the last `outbox.len()` are unwritten.
    waiters: VecDeque<Waiter>,
    /// Request bytes still to write, one entry per unwritten waiter.
    outbox: VecDeque<Bytes>,
    /// The head of `outbox` was partly written, so it may have reached the server.
    head_partial: bool,
}

pub struct Backend {
    server: usize,
    protocol: Protocol,
    router: Weak<PoolRouter>,
    state: RefCell<State>,
    wake: Notify,
    /// Connect before the first request (`preconnect: true`).
    eager: Cell<bool>,
}

impl Backend {
    /// Creates the connection object and its task; it connects on the first request.
    pub fn spawn(router: &Rc<PoolRouter>, server: usize, protocol: Protocol) -> Rc<Backend> {
        let backend = Rc::new(Backend {
            server,
            protocol,
            router: Rc::downgrade(router),
            state: RefCell::new(State {
                waiters: VecDeque::new(),
                outbox: VecDeque::new(),
                head_partial: false,
            }),
            wake: Notify::new(),
            eager: Cell::new(false),
        });
        tokio::task::spawn_local(Rc::clone(&backend).run());
        backend
    }

    /// Queues a client's request (or fragment); its reply will complete `seq` in `queue`.
    pub fn send(&self, request: Bytes, queue: &Rc<ReplyQueue>, seq: u64, part: Part) {
        let Some(router) = self.router.upgrade() else {
            return;
        };
        {
            let mut stats = router.stats.borrow_mut();
            *stats.server_mut(router.index, self.server, ServerStat::Requests) += 1;
            *stats.server_mut(router.index, self.server, ServerStat::RequestBytes) +=
                request.len() as u64;
        }
        let deadline = router
            .pool()
            .timeout_ms
            .map(|ms| Instant::now() + Duration::from_millis(ms));
        let mut state = self.state.borrow_mut();
        state.waiters.push_back(Waiter {
            target: Target::Client {
                queue: Rc::clone(queue),
                seq,
                part,
            },
            deadline,
            retried: false,
        });
        state.outbox.push_back(request);
        if state.outbox.len() == 1 {
            self.wake.notify_one();
        }
    }

    /// Connects now rather than on the first request.
    pub fn preconnect(&self) {
        self.eager.set(true);
        self.wake.notify_one();
    }

    /// (queued, queued bytes, sent and unanswered) for the stats gauges.
    pub fn queue_depths(&self) -> (u64, u64, u64) {
        let state = self.state.borrow();
        let queued = state.outbox.len();
        let bytes: usize = state.outbox.iter().map(Bytes::len).sum();
        (
            queued as u64,
            bytes as u64,
            (state.waiters.len() - queued) as u64,
        )
    }

    async fn run(self: Rc<Self>) {
        let mut buffer = BytesMut::with_capacity(READ_CHUNK);
        let mut parser = ReplyParser::new();
        loop {
            while self.state.borrow().waiters.is_empty() && !self.eager.take() {
                self.wake.notified().await;
            }
            let Some(router) = self.router.upgrade() else {
                return;
            };
            let deadline = self
                .front_deadline()
                .unwrap_or_else(|| Instant::now() + DEFAULT_CONNECT_TIMEOUT);
            let connected = match &router.pool().servers[self.server].address {
                ServerAddress::Tcp { host, port } => {
                    timeout_at(deadline, Stream::connect_tcp(host, *port)).await
                }
                ServerAddress::Unix { path } => {
                    timeout_at(deadline, Stream::connect_unix(path)).await
                }
            };
            let stream = match connected {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    self.fail(&router, Failure::Io(error), true);
                    continue;
                }
                Err(_) => {
                    self.fail(&router, Failure::TimedOut, false);
                    continue;
                }
            };
            router.connection_opened(self.server);
            self.queue_handshake(&router);
            drop(router);
            let failure = self.serve(&stream, &mut buffer, &mut parser).await;
            buffer.clear();
            parser.reset();
            let Some(router) = self.router.upgrade() else {
                return;
            };
            router.connection_closed(self.server);
            let idle = self.state.borrow().waiters.is_empty();
            let retry_unwritten = matches!(failure, Failure::Eof | Failure::Io(_));
            if !(idle && matches!(failure, Failure::Eof)) {
                self.fail(&router, failure, retry_unwritten);
            }
        }
    }

    fn front_deadline(&self) -> Option<Instant> {
        self.state
            .borrow()
            .waiters
            .front()
            .and_then(|waiter| waiter.deadline)
    }

    /// Puts AUTH, SELECT and HELLO 3 (as needed) ahead of every queued request.
    fn queue_handshake(&self, router: &PoolRouter) {
        let pool = router.pool();
        let mut steps: Vec<(&'static str, Bytes)> = Vec::new();
        let mut request = BytesMut::new();
        if let Some(password) = &pool.redis_auth {
            encode::request(&mut request, [&b"AUTH"[..], password.as_bytes()]);
            steps.push(("AUTH", request.split().freeze()));
        }
        if pool.redis_db > 0 {
            let db = pool.redis_db.to_string();
            encode::request(&mut request, [&b"SELECT"[..], db.as_bytes()]);
            steps.push(("SELECT", request.split().freeze()));
        }
        if self.protocol == Protocol::Resp3 {
            encode::request(&mut request, [&b"HELLO"[..], b"3"]);
            steps.push(("HELLO 3", request.split().freeze()));
        }
        let deadline = pool
            .timeout_ms
            .map(|ms| Instant::now() + Duration::from_millis(ms));
        let mut state = self.state.borrow_mut();
        for (name, bytes) in steps.into_iter().rev() {
            let insert_at = state.waiters.len() - state.outbox.len();
            state.waiters.insert(
                insert_at,
                Waiter {
                    target: Target::Handshake(name),
                    deadline,
                    retried: true,
                },
            );
            state.outbox.push_front(bytes);
        }
    }

    async fn serve(
        &self,
        stream: &Stream,
        buffer: &mut BytesMut,
        parser: &mut ReplyParser,
    ) -> Failure {
        loop {
            if let Err(error) = self.write_some(stream) {
                return Failure::Io(error);
            }
            let interest = if self.state.borrow().outbox.is_empty() {
                Interest::READABLE
            } else {
                Interest::READABLE | Interest::WRITABLE
            };
            let deadline = self.front_deadline();
            tokio::select! {
                ready = stream.ready(interest) => {
                    match ready {
                        Ok(ready) if ready.is_readable() || ready.is_read_closed() => {
                            if let Some(failure) = self.read_replies(stream, buffer, parser) {
                                return failure;
                            }
                            release_if_large(buffer, READ_CHUNK);
                        }
                        Ok(_) => {}
                        Err(error) => return Failure::Io(error),
                    }
                }
                () = self.wake.notified() => {}
                () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    return Failure::TimedOut;
                }
            }
        }
    }

    /// Writes queued requests, many at once, until the socket would block or all are sent.
    fn write_some(&self, stream: &Stream) -> io::Result<()> {
        let mut state = self.state.borrow_mut();
        while !state.outbox.is_empty() {
            let written = {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let mut count = 0;
                for (slice, bytes) in slices.iter_mut().zip(&state.outbox) {
                    *slice = IoSlice::new(bytes);
                    count += 1;
                }
                match stream.try_write_vectored(&slices[..count]) {
                    Ok(written) => written,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(error) => return Err(error),
                }
            };
            let mut left = written;
            while left > 0 {
                let Some(head) = state.outbox.front_mut() else {
                    break;
                };
                if left < head.len() {
                    head.advance(left);
                    state.head_partial = true;
                    break;
                }
                left -= head.len();
                state.outbox.pop_front();
                state.head_partial = false;
            }
        }
        Ok(())
    }

    /// Reads what the socket has and hands every complete reply to its waiter.
    fn read_replies(
        &self,
        stream: &Stream,
        buffer: &mut BytesMut,
        parser: &mut ReplyParser,
    ) -> Option<Failure> {
        loop {
            match read_some(stream, buffer, READ_CHUNK) {
                Ok(Some(0)) => return Some(Failure::Eof),
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(error) => return Some(Failure::Io(error)),
            }
            loop {
                let frame = match parser.parse(buffer) {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(error) => return Some(Failure::Protocol(error.to_string())),
                };
                let reply = buffer.split_to(frame.byte_len()).freeze();
                if frame.is_push() {
                    continue;
                }
                if let Some(failure) = self.deliver(reply) {
                    return Some(failure);
                }
            }
        }
    }

    fn deliver(&self, reply: Bytes) -> Option<Failure> {
        let waiter = {
            let mut state = self.state.borrow_mut();
            if state.waiters.len() == state.outbox.len() {
                return Some(Failure::Protocol(
                    "a reply arrived for no request".to_string(),
                ));
            }
            state.waiters.pop_front()?
        };
        let router = self.router.upgrade()?;
        match waiter.target {
            Target::Client { queue, seq, part } => {
                router.reply_received(self.server, reply.len());
                queue.complete(seq, part, reply);
            }
            Target::Handshake(step) => {
                if error_code(&reply).is_some() {
                    let text = String::from_utf8_lossy(&reply);
                    tracing::error!(
                        "{step} failed on pool '{}' server '{}': {}",
                        router.pool().name,
                        router.pool().servers[self.server].name,
                        text.trim_end()
                    );
                }
            }
        }
        None
    }

    /// Ends a connection attempt or a connection: counts the failure, answers every request
    /// that may have reached the server with an error, and keeps (once) those that never did.
    fn fail(&self, router: &Rc<PoolRouter>, failure: Failure, retry_unwritten: bool) {
        let (stat, text) = match &failure {
            Failure::Eof => (
                ServerStat::ServerEof,
                "ERR Connection closed by server".to_string(),
            ),
            Failure::TimedOut => (
                ServerStat::ServerTimedout,
                "ERR Connection timed out".to_string(),
            ),
            Failure::Io(error) => (ServerStat::ServerErr, format!("ERR {}", error_text(error))),
            Failure::Protocol(reason) => (
                ServerStat::ServerErr,
                format!("ERR Protocol error from server: {reason}"),
            ),
        };
        let pool = router.pool();
        tracing::warn!(
            "server '{}' of pool '{}' failed: {}",
            pool.servers[self.server].name,
            pool.name,
            text.trim_start_matches("ERR ")
        );
        *router
            .stats
            .borrow_mut()
            .server_mut(router.index, self.server, stat) += 1;
        let mut error_reply = BytesMut::new();
        error_reply.extend_from_slice(b"-");
        error_reply.extend_from_slice(text.as_bytes());
        error_reply.extend_from_slice(b"\r\n");
        let error_reply = error_reply.freeze();

        let mut answered = Vec::new();
        {
            let mut state = self.state.borrow_mut();
            let first_unwritten = state.waiters.len() - state.outbox.len();
            let head_partial = std::mem::take(&mut state.head_partial);
            let waiters = std::mem::take(&mut state.waiters);
            let mut unwritten = std::mem::take(&mut state.outbox);
            for (index, mut waiter) in waiters.into_iter().enumerate() {
                let reached = index < first_unwritten || (index == first_unwritten && head_partial);
                let bytes = if index >= first_unwritten {
                    unwritten.pop_front()
                } else {
                    None
                };
                if matches!(waiter.target, Target::Handshake(_)) {
                    continue;
                }
                match bytes {
                    Some(bytes) if !reached && retry_unwritten && !waiter.retried => {
                        waiter.retried = true;
                        state.waiters.push_back(waiter);
                        state.outbox.push_back(bytes);
                    }
                    _ => answered.push(waiter),
                }
            }
        }
        for waiter in answered {
            if let Target::Client { queue, seq, part } = waiter.target {
                router.forward_error();
                queue.complete(seq, part, error_reply.clone());
            }
        }
        router.server_failed(self.server);
    }
}
