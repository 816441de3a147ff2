//! One worker's connection to one backend server: requests from many clients are queued,
//! written in batches with one vectored write, and matched FIFO with the replies, which go
//! back to each client's reply queue byte for byte. The connection opens lazily, sends AUTH,
//! then SELECT, then HELLO 3 (for RESP3 clients) before any client traffic, times requests out,
//! and on failure answers every request it still holds, retrying once those that provably
//! never reached the server. After a failure, a PING ends the handshake: the server is
//! reachable again once it answers, not when the connect succeeds.
//!
//! In a pool with `sentinels:` a shard without a reachable master holds its requests that
//! never reached a server for up to `failover_wait_ms`, follows the topology to the promoted
//! master, and re-sends a request its old master refused with `-READONLY`; past the wait the
//! reply is `-TRYAGAIN shard '<name>' has no master (failover in progress)`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use rampart_config::ServerAddress;
use rampart_protocol::{Protocol, ReplyParser, encode, error_code};
use tokio::io::Interest;
use tokio::time::{Instant, sleep_until, timeout_at};

use super::notify::LocalNotify;
use super::premove::MoveWait;
use super::reply_queue::{Part, ReplyQueue};
use super::shard::Shard;
use super::stream::{Stream, error_text, read_some, release_if_large, write_gathered};
use crate::admin::catalog::ServerStat;
use crate::log_limit::limited;

/// Read buffer growth step for replies.
const READ_CHUNK: usize = 16 * 1024;
/// How long a connect may take when the pool has no `timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a shard without a master is tried again while requests wait for a failover.
const FAILOVER_RETRY: Duration = Duration::from_millis(100);

/// Whose reply a queued request waits for.
pub enum Target {
    Client {
        queue: Rc<ReplyQueue>,
        seq: u64,
        part: Part,
    },
    /// AUTH, SELECT or HELLO sent by the proxy itself; the reply is checked, not forwarded.
    Handshake(&'static str),
    /// The PING that ends the handshake of a connection made after a failure: its reply (not
    /// an error such as `-LOADING`), not the connect (a stopped server's kernel still accepts),
    /// makes the server reachable again.
    Probe,
    /// A request the proxy sent for a client whose reply it already gave (the MULTI that opens
    /// a transaction on a dedicated connection): the server's reply is dropped.
    Silent,
    /// A MIGRATE that moves a client's keys before its request runs (see `premove`).
    Moving(Rc<MoveWait>),
}

impl Target {
    /// Answers a request that will get no reply from the server with `reply`, an error.
    fn fail_with(self, shard: &Shard, reply: Bytes) {
        match self {
            Target::Client { queue, seq, part } => {
                shard.forward_error();
                queue.complete(seq, part, reply);
            }
            Target::Moving(wait) => wait.answered(&reply),
            Target::Handshake(_) | Target::Probe | Target::Silent => {}
        }
    }
}

/// When a queued request times out, and until when it may wait for a failover.
#[derive(Default)]
struct Deadlines {
    timeout: Option<Instant>,
    failover: Option<Instant>,
}

struct Waiter {
    target: Target,
    /// When the proxy read the request from its client (the latency histogram's start).
    received: Instant,
    /// When the pool's `timeout` expires for it.
    deadline: Option<Instant>,
    /// Until when it may wait for a failover (pools with sentinels).
    failover_deadline: Option<Instant>,
    /// Its bytes, kept in pools with sentinels to re-send it after `-READONLY`.
    request: Option<Bytes>,
    retried: bool,
    /// A read-only command, which a replica may serve (`replica_reads`).
    readonly: bool,
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
    /// The shard's master moved (Sentinel failover).
    Retarget,
    /// The server refused a write with `-READONLY`: it is no longer the master.
    ReadOnly,
    /// The connection's task panicked (a bug): what it held is answered with an error.
    Panicked,
    /// The proxy closed a dedicated connection it will not use again.
    Closed,
}

impl Failure {
    /// The stats counter it counts in and the `-ERR` text for requests that may have run.
    fn describe(&self) -> (ServerStat, String) {
        match self {
            Failure::Eof => (
                ServerStat::ServerEof,
                "ERR Connection closed by server".into(),
            ),
            Failure::TimedOut => (
                ServerStat::ServerTimedout,
                "ERR Connection timed out".into(),
            ),
            Failure::Io(error) => (ServerStat::ServerErr, format!("ERR {}", error_text(error))),
            Failure::Protocol(reason) => (
                ServerStat::ServerErr,
                format!("ERR Protocol error from server: {reason}"),
            ),
            Failure::Retarget => (
                ServerStat::ServerEof,
                "ERR Connection closed: the shard's master moved".into(),
            ),
            Failure::ReadOnly => (
                ServerStat::ServerErr,
                "ERR Connection closed: the server is no longer a master".into(),
            ),
            Failure::Panicked => (
                ServerStat::ServerErr,
                "ERR Connection closed: internal error in the proxy".into(),
            ),
            Failure::Closed => (
                ServerStat::ServerEof,
                "ERR Connection closed by the proxy".into(),
            ),
        }
    }

    /// Whether requests that never reached the server may be sent again.
    fn unwritten_may_retry(&self) -> bool {
        !matches!(
            self,
            Failure::TimedOut | Failure::Protocol(_) | Failure::Panicked | Failure::Closed
        )
    }
}

struct State {
    /// Every request not yet answered, oldest first; the last `outbox.len()` are unwritten.
    waiters: VecDeque<Waiter>,
    /// Request bytes still to write, one entry per unwritten waiter.
    outbox: VecDeque<Bytes>,
    /// The head of `outbox` was partly written, so it may have reached the server.
    head_partial: bool,
}

/// Which node of the shard a connection goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The shard's master (the configured server, or where Sentinel says it moved).
    Master,
    /// One of its replicas, for read-only commands while the master is unreachable
    /// (`replica_reads`).
    Replica,
}

pub struct Backend {
    shard: Rc<Shard>,
    protocol: Protocol,
    role: Role,
    /// A master's connection to a replica of its shard, made when reads are first handed to
    /// it (`replica_reads`).
    replica: RefCell<Option<Rc<Backend>>>,
    state: RefCell<State>,
    wake: LocalNotify,
    /// The shard's master moved since this connection's address was chosen.
    moved: Cell<bool>,
    /// Connect before the first request (`preconnect: true`).
    eager: Cell<bool>,
    /// The last connection attempt or connection failed (logged once per outage).
    failing: Cell<bool>,
    /// `failover_wait_ms` for pools with sentinels.
    failover_wait: Option<Duration>,
    /// Held by one client at a time (transactions, blocking commands): its first connection is
    /// its only one. When it ends, everything it holds is answered with an error and the
    /// connection is `ended`; a request sent after that is answered at once with the error.
    dedicated: bool,
    /// A dedicated connection ended (or was closed by the proxy).
    ended: Cell<bool>,
    /// The proxy closes a dedicated connection that it will not reuse.
    closing: Cell<bool>,
    /// Nothing can send on this shared connection any more: it closes once it has answered
    /// what it holds.
    retiring: Cell<bool>,
}

impl Backend {
    /// Creates the connection object and its task; it connects on the first request.
    pub fn spawn(shard: Rc<Shard>, protocol: Protocol, role: Role) -> Rc<Backend> {
        Backend::make(shard, protocol, role, false)
    }

    /// Creates a connection to the shard's master that one client holds at a time.
    pub fn spawn_dedicated(shard: Rc<Shard>, protocol: Protocol) -> Rc<Backend> {
        Backend::make(shard, protocol, Role::Master, true)
    }

    fn make(shard: Rc<Shard>, protocol: Protocol, role: Role, dedicated: bool) -> Rc<Backend> {
        let pool = shard.pool();
        let waits_for_master = role == Role::Master && !pool.sentinels.is_empty() && !dedicated;
        let failover_wait = waits_for_master.then(|| Duration::from_millis(pool.failover_wait_ms));
        let backend = Rc::new(Backend {
            shard,
            protocol,
            role,
            replica: RefCell::new(None),
            state: RefCell::new(State {
                waiters: VecDeque::new(),
                outbox: VecDeque::new(),
                head_partial: false,
            }),
            wake: LocalNotify::default(),
            moved: Cell::new(false),
            eager: Cell::new(false),
            failing: Cell::new(false),
            failover_wait,
            dedicated,
            ended: Cell::new(false),
            closing: Cell::new(false),
            retiring: Cell::new(false),
        });
        tokio::task::spawn_local(Rc::clone(&backend).supervise());
        backend
    }

    /// Runs the connection's task, and should it panic, answers every request it held with
    /// an error and runs it again: the clients waiting on it must not hang, and the pool keeps
    /// handing this connection out.
    async fn supervise(self: Rc<Self>) {
        loop {
            match tokio::task::spawn_local(Rc::clone(&self).run()).await {
                Err(error) if error.is_panic() => {
                    tracing::error!(
                        "the connection to server '{}' of pool '{}' panicked; it starts over",
                        self.shard.name(),
                        self.shard.pool().name
                    );
                    self.fail(Failure::Panicked);
                }
                _ => return,
            }
        }
    }

    /// Queues a client's request (or fragment), read from the client at `received`; its reply
    /// will complete `seq` in `queue`.
    pub fn send(
        &self,
        request: Bytes,
        received: Instant,
        queue: &Rc<ReplyQueue>,
        seq: u64,
        part: Part,
    ) {
        self.send_request(request, received, queue, seq, part, false);
    }

    /// Queues a request that may block the connection (BLPOP, WAIT...), on a dedicated
    /// connection: the pool's `timeout` does not apply to it.
    pub fn send_blocking(
        &self,
        request: Bytes,
        received: Instant,
        queue: &Rc<ReplyQueue>,
        seq: u64,
    ) {
        self.queue_request(
            Target::Client {
                queue: Rc::clone(queue),
                seq,
                part: Part::Whole,
            },
            request,
            received,
            Deadlines::default(),
            false,
        );
    }

    /// Queues a MIGRATE that moves keys for a client's request; its reply goes to `wait`.
    pub fn send_moving(&self, request: Bytes, wait: Rc<MoveWait>) {
        self.send_for_proxy(Target::Moving(wait), request);
    }

    /// Queues a request whose reply the proxy drops (its client already has one).
    pub fn send_silent(&self, request: Bytes) {
        self.send_for_proxy(Target::Silent, request);
    }

    /// Queues a request the proxy sends itself, under the pool's `timeout` and never held for
    /// a failover.
    fn send_for_proxy(&self, target: Target, request: Bytes) {
        let now = Instant::now();
        let timeout = self.shard.pool().timeout_ms.map(Duration::from_millis);
        self.queue_request(
            target,
            request,
            now,
            Deadlines {
                timeout: timeout.map(|timeout| now + timeout),
                failover: None,
            },
            false,
        );
    }

    /// Queues a read-only request, which a replica may serve while the master is down
    /// (`replica_reads`).
    pub fn send_read(&self, request: Bytes, received: Instant, queue: &Rc<ReplyQueue>, seq: u64) {
        self.send_request(request, received, queue, seq, Part::Whole, true);
    }

    fn send_request(
        &self,
        request: Bytes,
        received: Instant,
        queue: &Rc<ReplyQueue>,
        seq: u64,
        part: Part,
        readonly: bool,
    ) {
        let timeout = self.shard.pool().timeout_ms.map(Duration::from_millis);
        let now = (timeout.is_some() || self.failover_wait.is_some()).then(Instant::now);
        self.queue_request(
            Target::Client {
                queue: Rc::clone(queue),
                seq,
                part,
            },
            request,
            received,
            Deadlines {
                timeout: now.zip(timeout).map(|(now, timeout)| now + timeout),
                failover: now.zip(self.failover_wait).map(|(now, wait)| now + wait),
            },
            readonly,
        );
    }

    fn queue_request(
        &self,
        target: Target,
        request: Bytes,
        received: Instant,
        deadlines: Deadlines,
        readonly: bool,
    ) {
        if self.ended.get() {
            self.refuse_after_end(target);
            return;
        }
        self.shard.request_sent(request.len());
        let mut state = self.state.borrow_mut();
        state.waiters.push_back(Waiter {
            target,
            received,
            deadline: deadlines.timeout,
            failover_deadline: deadlines.failover,
            request: self.failover_wait.map(|_| request.clone()),
            retried: self.dedicated,
            readonly,
        });
        state.outbox.push_back(request);
        if state.outbox.len() == 1 {
            self.wake.notify();
        }
    }

    /// A request for a dedicated connection that has ended: it never reaches a server.
    fn refuse_after_end(&self, target: Target) {
        let reply = format!(
            "-ERR the connection to shard '{}' held for this client was lost\r\n",
            self.shard.name()
        );
        target.fail_with(&self.shard, Bytes::from(reply));
    }

    /// Whether every request sent on it has been answered.
    pub fn is_idle(&self) -> bool {
        self.state.borrow().waiters.is_empty()
    }

    /// Whether this dedicated connection has ended: it can serve nothing more.
    pub fn has_ended(&self) -> bool {
        self.ended.get()
    }

    /// Closes this dedicated connection: the proxy will not use it again, and whatever it
    /// still holds (a blocked call of a client that left) is dropped with it.
    pub fn close(&self) {
        self.closing.set(true);
        self.wake.notify();
    }

    /// Closes this shared connection (and its replica connection) once every request on it
    /// is answered: the links that handed it out are gone, so nothing more can come.
    pub fn retire(&self) {
        self.retiring.set(true);
        if let Some(replica) = &*self.replica.borrow() {
            replica.retire();
        }
        self.wake.notify();
    }

    /// Whether its last connection attempt or connection failed (the shard's master may be down).
    pub fn is_failing(&self) -> bool {
        self.failing.get()
    }

    /// Connects now rather than on the first request.
    pub fn preconnect(&self) {
        self.eager.set(true);
        self.wake.notify();
    }

    /// The shard's master moved: drop the connection and reconnect to the new address.
    pub fn retarget(&self) {
        self.moved.set(true);
        self.wake.notify();
    }

    /// The shard's replicas changed: this master's replica connection (if it has one)
    /// reconnects to the first of them.
    pub fn retarget_replica(&self) {
        if let Some(replica) = self.replica.borrow().as_ref() {
            replica.retarget();
        }
    }

    /// This master's connection to a replica of its shard, made on first use.
    pub fn replica(&self) -> Rc<Backend> {
        let mut replica = self.replica.borrow_mut();
        Rc::clone(replica.get_or_insert_with(|| {
            Backend::spawn(Rc::clone(&self.shard), self.protocol, Role::Replica)
        }))
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
        let mut failed_before = false;
        loop {
            if failed_before && self.failover_wait.is_some() {
                self.wait_for_master().await;
            }
            while self.state.borrow().waiters.is_empty() && !self.eager.take() {
                if self.closing.get() || self.retiring.get() {
                    self.ended.set(true);
                    return;
                }
                self.wake.notified().await;
            }
            let limit = self
                .shard
                .pool()
                .timeout_ms
                .map_or(DEFAULT_CONNECT_TIMEOUT, Duration::from_millis);
            let deadline = Instant::now() + limit;
            let address = match self.role {
                Role::Master => self.shard.master_address(),
                Role::Replica => self.shard.replica_address(),
            };
            self.moved.set(false);
            let connected = match address {
                ServerAddress::Tcp { host, port } => {
                    timeout_at(deadline, Stream::connect_tcp(&host, port)).await
                }
                ServerAddress::Unix { path } => {
                    timeout_at(deadline, Stream::connect_unix(&path)).await
                }
            };
            let stream = match connected {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    failed_before = true;
                    if self.ended_by(Failure::Io(error)) {
                        return;
                    }
                    continue;
                }
                Err(_) => {
                    failed_before = true;
                    if self.ended_by(Failure::TimedOut) {
                        return;
                    }
                    continue;
                }
            };
            self.shard.connection_opened();
            self.restart_timers();
            self.queue_handshake();
            let failure = self.serve(&stream, &mut buffer, &mut parser).await;
            buffer.clear();
            parser.reset();
            self.shard.connection_closed();
            if self.retiring.get() && matches!(failure, Failure::Closed) {
                self.ended.set(true);
                return;
            }
            if matches!(failure, Failure::ReadOnly) {
                self.shard.recheck();
            }
            if self.dedicated {
                self.end_dedicated(&failure);
                return;
            }
            let idle = self.state.borrow().waiters.is_empty();
            failed_before = !(idle && matches!(failure, Failure::Eof | Failure::Retarget));
            if failed_before {
                self.fail(failure);
            }
        }
    }

    /// Counts a failed connection attempt; a dedicated connection ends with it (true).
    fn ended_by(&self, failure: Failure) -> bool {
        if self.dedicated {
            self.end_dedicated(&failure);
            return true;
        }
        self.fail(failure);
        false
    }

    /// Ends a dedicated connection: its client's transaction, WATCH or blocked call is gone
    /// with it, so every request it holds is answered with an error (`-TRYAGAIN` when the
    /// shard's master moved, which clients retry) and it takes no more.
    fn end_dedicated(&self, failure: &Failure) {
        self.ended.set(true);
        let reply = match failure {
            Failure::Retarget | Failure::ReadOnly => Bytes::from(format!(
                "-TRYAGAIN shard '{}' has a new master; the transaction, WATCH or blocking \
                 command held on its old master was cancelled\r\n",
                self.shard.name()
            )),
            other => Bytes::from(format!("-{}\r\n", other.describe().1)),
        };
        if !matches!(failure, Failure::Closed) {
            let (stat, text) = failure.describe();
            limited!(
                warn,
                "dedicated connection failures",
                "a dedicated connection to server '{}' of pool '{}' ended: {}",
                self.shard.name(),
                self.shard.pool().name,
                text.trim_start_matches("ERR ")
            );
            self.shard.connection_failed(stat);
        }
        let waiters = {
            let mut state = self.state.borrow_mut();
            state.outbox.clear();
            state.head_partial = false;
            std::mem::take(&mut state.waiters)
        };
        for waiter in waiters {
            waiter.target.fail_with(&self.shard, reply.clone());
        }
    }

    /// While requests wait for a shard's new master: retry every 100 ms or as soon as the
    /// topology moves the shard, answering `-TRYAGAIN` to those whose wait is over.
    async fn wait_for_master(&self) {
        let until = Instant::now() + FAILOVER_RETRY;
        while !self.moved.get() && Instant::now() < until {
            tokio::select! {
                () = sleep_until(until) => {}
                () = self.wake.notified() => {}
            }
        }
        let now = Instant::now();
        let expired = self.take_unwritten(|waiter| {
            waiter
                .failover_deadline
                .is_some_and(|deadline| deadline <= now)
        });
        if expired.is_empty() {
            return;
        }
        let reply = self.no_master_reply();
        for (waiter, _) in expired {
            waiter.target.fail_with(&self.shard, reply.clone());
        }
    }

    /// Takes out the requests `pick` chooses, with their bytes, keeping the others in order.
    /// Only while there is no connection, when every waiter is unwritten and pairs with one
    /// outbox entry.
    fn take_unwritten(&self, mut pick: impl FnMut(&Waiter) -> bool) -> Vec<(Waiter, Bytes)> {
        let mut state = self.state.borrow_mut();
        let waiters = std::mem::take(&mut state.waiters);
        let mut outbox = std::mem::take(&mut state.outbox);
        let mut taken = Vec::new();
        for waiter in waiters {
            match outbox.pop_front() {
                Some(bytes) if pick(&waiter) => taken.push((waiter, bytes)),
                bytes => {
                    state.waiters.push_back(waiter);
                    state.outbox.extend(bytes);
                }
            }
        }
        taken
    }

    /// With `replica_reads`, the read-only requests still waiting for this (failing) master
    /// go to a replica instead, keeping their place in their clients' reply order.
    fn hand_reads_to_replica(&self) {
        if self.role != Role::Master
            || !self.shard.pool().replica_reads
            || !self.shard.has_replica()
        {
            return;
        }
        let reads = self.take_unwritten(|waiter| waiter.readonly);
        if reads.is_empty() {
            return;
        }
        let replica = self.replica();
        for (waiter, bytes) in reads {
            if let Target::Client { queue, seq, .. } = waiter.target {
                replica.send_read(bytes, waiter.received, &queue, seq);
            }
        }
    }

    /// What a request gets when its failover wait is over and the shard still has no master.
    fn no_master_reply(&self) -> Bytes {
        let name = self.shard.name();
        Bytes::from(format!(
            "-TRYAGAIN shard '{name}' has no master (failover in progress)\r\n"
        ))
    }

    /// A new connection: the pool's `timeout` counts from now for requests that waited (a
    /// blocking call has none).
    fn restart_timers(&self) {
        let Some(timeout) = self.shard.pool().timeout_ms.map(Duration::from_millis) else {
            return;
        };
        let deadline = Instant::now() + timeout;
        for waiter in &mut self.state.borrow_mut().waiters {
            if waiter.deadline.is_some() {
                waiter.deadline = Some(deadline);
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

    /// Puts AUTH, SELECT and HELLO 3 (as needed) ahead of every queued request, then, on a
    /// connection made after a failure, a PING whose reply marks the server reachable again.
    fn queue_handshake(&self) {
        let pool = self.shard.pool();
        let mut steps: Vec<(Target, Bytes)> = Vec::new();
        let mut request = BytesMut::new();
        if let Some(password) = &pool.redis_auth {
            encode::request(&mut request, [&b"AUTH"[..], password.as_bytes()]);
            steps.push((Target::Handshake("AUTH"), request.split().freeze()));
        }
        if pool.redis_db > 0 {
            let db = pool.redis_db.to_string();
            encode::request(&mut request, [&b"SELECT"[..], db.as_bytes()]);
            steps.push((Target::Handshake("SELECT"), request.split().freeze()));
        }
        if self.protocol == Protocol::Resp3 {
            encode::request(&mut request, [&b"HELLO"[..], b"3"]);
            steps.push((Target::Handshake("HELLO 3"), request.split().freeze()));
        }
        if self.failing.get() {
            encode::request(&mut request, [&b"PING"[..]]);
            steps.push((Target::Probe, request.split().freeze()));
        }
        let now = Instant::now();
        let deadline = pool.timeout_ms.map(|ms| now + Duration::from_millis(ms));
        let mut state = self.state.borrow_mut();
        for (target, bytes) in steps.into_iter().rev() {
            let insert_at = state.waiters.len() - state.outbox.len();
            state.waiters.insert(
                insert_at,
                Waiter {
                    target,
                    received: now,
                    deadline,
                    failover_deadline: None,
                    request: None,
                    retried: true,
                    readonly: false,
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
            if self.retiring.get() && self.state.borrow().waiters.is_empty() {
                return Failure::Closed;
            }
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
                () = self.wake.notified() => {
                    if self.closing.get() {
                        return Failure::Closed;
                    }
                    if self.moved.get() {
                        return Failure::Retarget;
                    }
                }
                () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    return Failure::TimedOut;
                }
            }
        }
    }

    fn write_some(&self, stream: &Stream) -> io::Result<()> {
        let mut state = self.state.borrow_mut();
        while !state.outbox.is_empty() {
            let gathered = write_gathered(state.outbox.iter().map(|bytes| &bytes[..]), |slices| {
                stream.try_write_vectored(slices)
            });
            let written = match gathered {
                Ok(written) => written.unwrap_or(0),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) => return Err(error),
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
            let arrived = Instant::now();
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
                if let Some(failure) = self.deliver(reply, arrived) {
                    return Some(failure);
                }
            }
        }
    }

    /// Hands a reply that arrived at `arrived` to the oldest waiter.
    fn deliver(&self, reply: Bytes, arrived: Instant) -> Option<Failure> {
        let waiter = {
            let mut state = self.state.borrow_mut();
            if state.waiters.len() == state.outbox.len() {
                return Some(Failure::Protocol(
                    "a reply arrived for no request".to_string(),
                ));
            }
            let waiter = state.waiters.pop_front()?;
            if waiter.request.is_some() && error_code(&reply) == Some(b"READONLY") {
                return Some(self.requeue_refused(&mut state, waiter));
            }
            waiter
        };
        match waiter.target {
            Target::Client { queue, seq, part } => {
                self.shard
                    .reply_received(reply.len(), arrived.duration_since(waiter.received));
                queue.complete(seq, part, reply);
            }
            Target::Handshake(step) => {
                self.handshake_step_done(step, &reply);
            }
            Target::Silent => {}
            Target::Moving(wait) => wait.answered(&reply),
            Target::Probe => {
                if self.handshake_step_done("PING", &reply) && self.failing.replace(false) {
                    limited!(
                        warn,
                        "servers reachable again",
                        "server '{}' of pool '{}' is reachable again",
                        self.shard.name(),
                        self.shard.pool().name
                    );
                }
            }
        }
        None
    }

    /// Whether a handshake step succeeded; logs its error reply if not.
    fn handshake_step_done(&self, step: &str, reply: &[u8]) -> bool {
        if error_code(reply).is_none() {
            return true;
        }
        let text = String::from_utf8_lossy(reply);
        limited!(
            error,
            "handshake failures",
            "{step} failed on pool '{}' server '{}': {}",
            self.shard.pool().name,
            self.shard.name(),
            text.trim_end()
        );
        false
    }

    /// A request the server refused with `-READONLY` did not run: it goes back to the front of
    /// the unwritten requests, to be sent to the shard's real master.
    fn requeue_refused(&self, state: &mut State, mut waiter: Waiter) -> Failure {
        if let Some(bytes) = waiter.request.clone() {
            let first_unwritten = state.waiters.len() - state.outbox.len();
            let behind_partial = usize::from(state.head_partial);
            waiter.retried = false;
            state
                .waiters
                .insert(first_unwritten + behind_partial, waiter);
            state.outbox.insert(behind_partial, bytes);
        }
        Failure::ReadOnly
    }

    /// Ends a connection attempt or a connection: counts the failure, answers every request
    /// that may have reached the server with an error, and keeps those that never did (once;
    /// in a pool with sentinels, until their failover wait is over).
    fn fail(&self, failure: Failure) {
        let (stat, text) = failure.describe();
        let pool = self.shard.pool();
        let (server, reason) = (self.shard.name(), text.trim_start_matches("ERR "));
        if self.failing.replace(true) {
            limited!(
                debug,
                "repeated server failures",
                "server '{server}' of pool '{}' failed again: {reason}",
                pool.name
            );
        } else {
            limited!(
                warn,
                "server failures",
                "server '{server}' of pool '{}' failed: {reason}",
                pool.name
            );
        }
        let error_reply = Bytes::from(format!("-{text}\r\n"));
        let no_master = self.failover_wait.map(|_| self.no_master_reply());
        let may_retry = failure.unwritten_may_retry();
        let now = Instant::now();
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
                if matches!(
                    waiter.target,
                    Target::Handshake(_) | Target::Probe | Target::Silent
                ) {
                    continue;
                }
                let keep = match waiter.failover_deadline {
                    Some(deadline) => deadline > now,
                    None => !waiter.retried,
                };
                match bytes {
                    Some(bytes) if !reached && may_retry && keep => {
                        waiter.retried = true;
                        state.waiters.push_back(waiter);
                        state.outbox.push_back(bytes);
                    }
                    Some(_) if !reached && no_master.is_some() => {
                        answered.push((waiter, no_master.clone()));
                    }
                    _ => answered.push((waiter, None)),
                }
            }
        }
        self.hand_reads_to_replica();
        for (waiter, reply) in answered {
            let reply = reply.unwrap_or_else(|| error_reply.clone());
            waiter.target.fail_with(&self.shard, reply);
        }
        self.shard.connection_failed(stat);
    }
}
