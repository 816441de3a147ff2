//! A client connection: reads requests, frames them without copying, answers local commands,
//! routes the rest by key to a backend connection (splitting multi-key commands by shard),
//! and writes every reply back strictly in request order. Unknown commands, wrong arity and
//! keys that span shards get a `-ERR` naming the command, and the connection stays open; a
//! malformed frame gets `-ERR Protocol error: ...` and the connection closes after it.
//!
//! It holds the client to the pool's limits: it stops reading while too many requests or bytes
//! wait (`client_max_pipeline`, `client_max_pending_bytes`), refuses a request too large
//! (`client_max_request_bytes`, `client_max_request_args`), disconnects a client whose unread
//! replies pass the output limits, and closes one that sends an HTTP request (`POST`, `Host:`),
//! as redis-server does.

use std::io;
use std::ops::Range;
use std::rc::Rc;

use bytes::{Buf, Bytes, BytesMut};
use rampart_commands::{
    Arguments, Command, CommandError, Kind, LocalCommand, Merge, PLACEHOLDER_KEY,
};
use rampart_config::ClientLimits;
use rampart_placement::Distribution;
use rampart_protocol::{ProtocolError, RequestFrame, RequestLimits, RequestParser, encode};
use tokio::io::Interest;
use tokio::time::{Duration, Instant, sleep_until};

use super::backend::Backend;
use super::client::IdleClient;
use super::context::WorkerContext;
use super::keyspace::{self, Plan};
use super::keyspace_merge::KeyspaceMerge;
use super::local::{self, Broadcast, ConnectionState, Outcome, ProxyFacts};
use super::merge::MergeKind;
use super::pool::{Succession, WorkerPool};
use super::premove::MoveWait;
use super::reply_queue::{OutputLimits, OutputState, Part, ReplyQueue};
use super::stream::{Stream, read_some, release_if_large};
use super::subscriber::Confirmations;
use crate::admin::catalog::{LimitStat, PoolStat};
use crate::log_limit::limited;

mod holding;
mod pubsub;

/// How many requests a new client may have waiting before the sizes of its replies are known:
/// until then each is expected to weigh this fraction of `client_max_pending_bytes`.
const FIRST_WINDOW: usize = 16;
/// Room for a request's framing and other arguments beyond `client_max_request_bytes`, so a
/// value of the largest allowed size can still be sent.
const REQUEST_FRAMING_ALLOWANCE: usize = 64 * 1024;

/// A parsed request viewed as the command table's [`Arguments`].
struct FrameArgs<'f, 'b> {
    ranges: &'f [Range<usize>],
    buffer: &'b [u8],
}

impl Arguments for FrameArgs<'_, '_> {
    fn count(&self) -> usize {
        self.ranges.len()
    }

    fn get(&self, index: usize) -> &[u8] {
        self.ranges
            .get(index)
            .and_then(|range| self.buffer.get(range.clone()))
            .unwrap_or_default()
    }
}

/// How the connection ends.
enum Closing {
    /// Still serving.
    Open,
    /// Write what is pending, then close: the client sent QUIT.
    AfterReplies,
    /// The proxy is stopping: handle the requests already read (those held back by the
    /// pipeline limits too) but read no more, write every reply, then close.
    Draining,
    /// Write what is pending (the protocol error included), then close; counts as a client error.
    AfterProtocolError,
    /// Close at once, dropping what is pending (an output limit passed); a client error.
    Disconnected,
}

struct Session {
    pool: Rc<WorkerPool>,
    context: Rc<WorkerContext>,
    queue: Rc<ReplyQueue>,
    state: ConnectionState,
    registration: Registration,
    parser: RequestParser,
    /// Bytes of requests not handled yet: the worker's shared read buffer while a read is
    /// being handled, the client's own buffer only for what is left over (a partial request).
    input: BytesMut,
    /// Read buffer growth step, from `-m`.
    chunk: usize,
    scratch: BytesMut,
    key_servers: Vec<usize>,
    fragment_servers: Vec<usize>,
    fragment_ends: Vec<usize>,
    closing: Closing,
    /// The client has sent EOF.
    end_of_input: bool,
    /// Complete requests are left in `input` because too many replies were pending.
    backlog: bool,
    /// The session already yielded once to let the rest of a partly answered queue arrive.
    deferred: bool,
    /// When the latest read from the client returned: the start of its requests' latency,
    /// read once per batch of requests, not per request.
    received: Instant,
    limits: SessionLimits,
    /// The pool's framing limits (an unauthenticated client gets Redis's smaller ones).
    request_limits: RequestLimits,
    /// Reading is paused at a limit (counted once per pause).
    paused: bool,
    /// The dedicated connections and transaction the client holds.
    holding: holding::Holding,
    /// Its subscriptions.
    subscriptions: pubsub::Subscriptions,
    /// While its pool migrates: the moves of the keys of the request being handled, which
    /// waits for them (see `premove`).
    moving: Option<Rc<MoveWait>>,
}

/// The pool's client limits, in the units the session compares them in.
#[derive(Clone, Copy)]
struct SessionLimits {
    max_pipeline: usize,
    max_pending_bytes: usize,
    max_request_bytes: usize,
    output_soft_hold: Duration,
}

impl SessionLimits {
    fn of(limits: &ClientLimits) -> SessionLimits {
        SessionLimits {
            max_pipeline: limits.max_pipeline as usize,
            max_pending_bytes: saturating_usize(limits.max_pending_bytes),
            max_request_bytes: saturating_usize(limits.max_request_bytes),
            output_soft_hold: Duration::from_secs(u64::from(limits.output_soft_seconds)),
        }
    }
}

fn saturating_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// The framing limits and the output limits of a pool's clients.
fn parser_and_queue_limits(limits: &ClientLimits) -> (RequestLimits, OutputLimits) {
    (
        RequestLimits {
            max_args: limits.max_request_args as usize,
            max_arg_bytes: saturating_usize(limits.max_request_bytes),
            unauthenticated: false,
        },
        OutputLimits {
            hard: limits.output_limit.map(saturating_usize),
            soft: limits.output_soft_limit.map(saturating_usize),
        },
    )
}

/// A session's place in the worker: its entry in the session registry, its reply queue's hold
/// on the client's socket, and its count in the pool. Dropping it gives all of them up however
/// the session ends, so that a session that panics closes its client and is no longer counted,
/// instead of leaving the client hanging.
struct Registration {
    key: usize,
    context: Rc<WorkerContext>,
    queue: Rc<ReplyQueue>,
    pool: Rc<WorkerPool>,
    client: u64,
    /// The session counted how it ended (or handed its client back to be parked).
    counted: bool,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.context.sessions.unregister(self.key);
        self.queue.close();
        if !self.counted {
            tracing::error!(
                "client {} of pool '{}': its session ended abnormally; the client is closed",
                self.client,
                self.pool.pool().name
            );
            self.pool.client_closed(PoolStat::ClientErr);
        }
    }
}

/// Why the serving loop returned.
enum Ending {
    /// The client is gone, or the session closed it.
    Closed,
    /// The client has been idle for a sweep period: hand its socket back to be parked.
    Park,
}

/// What the session waited for.
enum Wakeup {
    /// Its reply queue was woken: replies arrived, the proxy is stopping, or a sweep asks it
    /// to park.
    Queue,
    /// The client's socket became ready.
    Socket(tokio::io::Ready),
    /// The client's unread replies have been over the soft output limit for too long.
    SoftLimitHeld,
}

/// Serves a client until it leaves (or the proxy stops and its replies are written). Returns
/// the client when it has been idle for a sweep period, for the caller to park.
pub async fn serve(context: Rc<WorkerContext>, client: IdleClient) -> Option<IdleClient> {
    let IdleClient {
        socket,
        pool,
        state,
        active_at: _,
    } = client;
    let stream = match socket.into_stream() {
        Ok(stream) => Rc::new(stream),
        Err(error) => {
            crate::log_limit::limited!(
                warn,
                "clients that cannot be served",
                "client {}: cannot be served: {error}",
                state.id
            );
            pool.client_closed(PoolStat::ClientErr);
            return None;
        }
    };
    let (request_limits, output_limits) = parser_and_queue_limits(pool.limits());
    let first_reply_estimate = saturating_usize(pool.limits().max_pending_bytes) / FIRST_WINDOW;
    let queue = Rc::new(ReplyQueue::new(output_limits, first_reply_estimate));
    queue.set_client(Some(Rc::clone(&stream)));
    let holding = holding::Holding::new(Rc::clone(&pool), Rc::clone(&queue));
    let subscriptions = pubsub::Subscriptions::new(Rc::new(Confirmations::new(Rc::clone(&queue))));
    let mut session = Session {
        holding,
        subscriptions,
        registration: Registration {
            key: context.sessions.register(&queue),
            context: Rc::clone(&context),
            queue: Rc::clone(&queue),
            pool: Rc::clone(&pool),
            client: state.id,
            counted: false,
        },
        queue,
        state,
        parser: RequestParser::new(),
        request_limits,
        input: BytesMut::new(),
        chunk: pool.shared().mbuf_size,
        scratch: BytesMut::new(),
        key_servers: Vec::new(),
        fragment_servers: Vec::new(),
        fragment_ends: Vec::new(),
        closing: if context.stop_requested.get() {
            Closing::Draining
        } else {
            Closing::Open
        },
        end_of_input: false,
        backlog: false,
        deferred: false,
        received: Instant::now(),
        limits: SessionLimits::of(pool.limits()),
        paused: false,
        moving: None,
        context,
        pool,
    };
    session.parser.set_limits(session.parser_limits());
    let ending = session.run(&stream).await;
    session.finish(stream, ending)
}

impl Session {
    /// The serving loop: write what is ready, handle requests held back, then wait for the
    /// client's socket or the reply queue, until the connection ends or goes idle.
    async fn run(&mut self, stream: &Stream) -> io::Result<Ending> {
        let queue = Rc::clone(&self.queue);
        loop {
            queue.allow_writes_through(false);
            let _must_wait = self.follow_reload();
            self.check_held_connections(false);
            self.check_subscriptions();
            if self.defer_partial_write() {
                tokio::task::yield_now().await;
                continue;
            }
            let blocked = self.write_replies(stream)?;
            if self.resume_backlog() {
                continue;
            }
            if self.finished() {
                return Ok(Ending::Closed);
            }
            let soft_limit_deadline = match self.queue.output_state() {
                OutputState::Within => None,
                OutputState::AboveSoft(since) => Some(since + self.limits.output_soft_hold),
                OutputState::AboveHard => {
                    self.disconnect_over_output_limit("client_output_limit");
                    return Ok(Ending::Closed);
                }
            };
            let can_read = self.can_read();
            let interest = match (can_read, blocked) {
                (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
                (true, false) => Some(Interest::READABLE),
                (false, true) => Some(Interest::WRITABLE),
                (false, false) => None,
            };
            queue.allow_writes_through(can_read && !blocked && !self.backlog);
            let wakeup = tokio::select! {
                biased;
                () = queue.wake.notified() => Wakeup::Queue,
                ready = async { stream.ready(interest.unwrap_or(Interest::READABLE)).await }, if interest.is_some() => Wakeup::Socket(ready?),
                () = sleep_until(soft_limit_deadline.unwrap_or_else(Instant::now)), if soft_limit_deadline.is_some() => Wakeup::SoftLimitHeld,
            };
            match wakeup {
                Wakeup::Queue => {
                    if let Some(ending) = self.on_queue_wake() {
                        return Ok(ending);
                    }
                }
                Wakeup::Socket(ready) => {
                    if can_read && (ready.is_readable() || ready.is_read_closed()) {
                        self.read_and_handle(stream)?;
                    }
                }
                Wakeup::SoftLimitHeld => {
                    if matches!(self.queue.output_state(), OutputState::AboveSoft(_)) {
                        self.disconnect_over_output_limit("client_output_soft_limit");
                        return Ok(Ending::Closed);
                    }
                }
            }
        }
    }

    fn serving(&self) -> bool {
        matches!(self.closing, Closing::Open)
    }

    /// Still handling the requests it has read: serving, or draining for a stop.
    fn handling(&self) -> bool {
        matches!(self.closing, Closing::Open | Closing::Draining)
    }

    /// Still reading requests: serving, and the client has not sent EOF.
    fn open(&self) -> bool {
        self.serving() && !self.end_of_input
    }

    fn can_read(&mut self) -> bool {
        self.open() && self.has_room()
    }

    /// Whether the client may send more: fewer requests and bytes wait than the pool allows.
    /// A pause is counted once, when it starts.
    fn has_room(&mut self) -> bool {
        let room = self.queue.len() < self.limits.max_pipeline
            && self.queue.pending_bytes() < self.limits.max_pending_bytes;
        if !room && !self.paused {
            self.pool.limit_enforced(LimitStat::ReadsPaused);
        }
        self.paused = !room;
        room
    }

    /// Drops the client at once: its unread replies passed `limit`. The backends' replies
    /// still on their way are read and dropped, so the shared connections never stall.
    fn disconnect_over_output_limit(&mut self, limit: &str) {
        limited!(
            warn,
            "client disconnects at output limits",
            "client {} of pool '{}' disconnected: {} bytes of unread replies passed {limit}",
            self.state.id,
            self.pool.pool().name,
            self.queue.reply_bytes()
        );
        self.pool.limit_enforced(LimitStat::OutputLimitDisconnects);
        self.closing = Closing::Disconnected;
    }

    /// Whether to yield once before writing: some replies of the queue are in and others are
    /// still out. Replies from the other shards that have already arrived then land first,
    /// in one write for the client instead of one per shard. Only once per write, so a slow
    /// shard delays the replies before it by one scheduler round at most.
    fn defer_partial_write(&mut self) -> bool {
        if !self.deferred && self.queue.partly_answered() {
            self.deferred = true;
            return true;
        }
        self.deferred = false;
        false
    }

    /// Handles requests held back by the pipeline limits once there is room again.
    /// Returns true when it did.
    fn resume_backlog(&mut self) -> bool {
        if self.backlog
            && self.handling()
            && !self.awaiting_moves()
            && !self.awaiting_switch()
            && self.has_room()
        {
            self.backlog = self.handle_requests();
            return true;
        }
        false
    }

    /// Nothing more to read or handle, and every reply is written; or only blocking calls
    /// are still out, which may never return: a client that has left (or a proxy that stops)
    /// does not wait for them, as redis-server drops a blocked client that disconnects.
    fn finished(&self) -> bool {
        let more_to_handle = self.open() || (self.backlog && self.handling());
        !more_to_handle && (self.queue.is_empty() || self.holding.waits_only_on_blocked())
    }

    /// The reply queue was woken: start closing when the proxy stops, or end the session when
    /// a sweep asked an idle session to park.
    fn on_queue_wake(&mut self) -> Option<Ending> {
        if self.context.stop_requested.get() && self.serving() {
            self.closing = Closing::Draining;
            return None;
        }
        let asked = self
            .context
            .sessions
            .take_park_request(self.registration.key);
        if asked {
            self.holding.release_finished();
        }
        let idle = self.open()
            && !self.backlog
            && self.queue.is_empty()
            && self.input.is_empty()
            && self.holding.is_empty()
            && !self.subscriptions.holds_links();
        (asked && idle).then_some(Ending::Park)
    }

    /// Reads what the client sent into the worker's shared buffer (or the client's own, when
    /// a partial request is left from before) and handles every complete request in it.
    fn read_and_handle(&mut self, stream: &Stream) -> io::Result<()> {
        let borrowed = self.input.is_empty();
        if borrowed {
            self.input = self.context.input.take();
        }
        let read = self.read_input(stream);
        self.received = Instant::now();
        if let Ok(end) = read {
            self.end_of_input = end;
            self.backlog = self.handle_requests();
        }
        if borrowed {
            self.give_back_input();
        } else {
            release_if_large(&mut self.input, self.chunk);
        }
        read.map(drop)
    }

    /// Ends the session: hands an idle client back to be parked, or counts how it left.
    fn finish(mut self, stream: Rc<Stream>, ending: io::Result<Ending>) -> Option<IdleClient> {
        self.queue.set_client(None);
        let ending = match ending {
            Ok(Ending::Park) => match Rc::try_unwrap(stream)
                .map_err(|_| io::Error::other("the client's socket is still lent out"))
                .and_then(Stream::into_idle)
            {
                Ok(socket) => {
                    self.registration.counted = true;
                    return Some(IdleClient {
                        socket,
                        pool: self.pool,
                        state: self.state,
                        active_at: self.received,
                    });
                }
                Err(error) => Err(error),
            },
            other => other,
        };
        let stat = match (&ending, &self.closing) {
            (Err(_), _) | (_, Closing::AfterProtocolError | Closing::Disconnected) => {
                PoolStat::ClientErr
            }
            _ => PoolStat::ClientEof,
        };
        self.registration.counted = true;
        self.pool.client_closed(stat);
        None
    }

    /// Writes ready replies from the head of the queue. Returns true when the socket is full.
    fn write_replies(&mut self, stream: &Stream) -> io::Result<bool> {
        loop {
            match self
                .queue
                .write_head(|slices| stream.try_write_vectored(slices))
            {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(false),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(error) => return Err(error),
            }
        }
    }

    /// Returns the worker's read buffer, keeping only what is left of it (a partial request),
    /// copied into the client's own buffer.
    fn give_back_input(&mut self) {
        let leftover = if self.input.is_empty() {
            BytesMut::new()
        } else {
            BytesMut::from(&self.input[..])
        };
        self.input.clear();
        self.context
            .input
            .replace(std::mem::replace(&mut self.input, leftover));
    }

    /// Reads what the client sent; returns true at end of input.
    fn read_input(&mut self, stream: &Stream) -> io::Result<bool> {
        loop {
            match read_some(stream, &mut self.input, self.chunk)? {
                Some(0) => return Ok(true),
                Some(_) if self.input.len() < 4 * self.chunk => continue,
                Some(_) | None => return Ok(false),
            }
        }
    }

    /// Handles every complete request in the input. Returns true when it stopped with
    /// requests left because too many replies are pending.
    fn handle_requests(&mut self) -> bool {
        if self.follow_reload() {
            return !self.input.is_empty();
        }
        let mut parser = std::mem::take(&mut self.parser);
        let backlog = self.handle_parsed(&mut parser);
        self.parser = parser;
        backlog
    }

    /// Moves the client to its pool's new configuration after a reload, once it holds nothing
    /// on the old one (a transaction, a blocked call or a subscription keeps it there until it
    /// ends). A client whose pool was removed is told so and closed. Returns true when its
    /// next requests must wait: into a pool that starts migrating, the client moves only once
    /// the replies to its requests routed with the old ring are in, so that no key moves away
    /// under them.
    fn follow_reload(&mut self) -> bool {
        if matches!(self.pool.succession(), Succession::Removed) {
            self.close_removed();
            return false;
        }
        let Some(latest) = self.next_pool() else {
            return false;
        };
        if self.switch_waits_for_replies(&latest) {
            return true;
        }
        let (request_limits, output_limits) = parser_and_queue_limits(latest.limits());
        self.request_limits = request_limits;
        self.queue.set_output_limits(output_limits);
        self.limits = SessionLimits::of(latest.limits());
        self.holding.set_pool(Rc::clone(&latest));
        self.registration.pool = Rc::clone(&latest);
        self.pool = latest;
        self.parser.set_limits(self.parser_limits());
        false
    }

    /// Whether moving to `latest` waits for the replies to the requests already sent: it
    /// starts migrating, and they were routed with the old ring.
    fn switch_waits_for_replies(&self, latest: &WorkerPool) -> bool {
        latest.migrating() && !self.pool.migrating() && !self.queue.is_empty()
    }

    /// The pool's new configuration, when a reload replaced it and the client holds nothing
    /// on the old one.
    fn next_pool(&self) -> Option<Rc<WorkerPool>> {
        let Succession::Replaced(latest) = self.pool.succession() else {
            return None;
        };
        let holds = !self.holding.is_empty()
            || self.subscriptions.active()
            || self.subscriptions.holds_links();
        (!holds).then_some(latest)
    }

    /// Whether the client's next requests wait for a move to its pool's new configuration.
    fn awaiting_switch(&self) -> bool {
        self.next_pool()
            .is_some_and(|latest| self.switch_waits_for_replies(&latest))
    }

    /// Closes the client of a removed pool: at once when it has nothing in flight, else
    /// after the replies it waits for and an error naming the pool for what it sent.
    fn close_removed(&mut self) {
        if !matches!(self.closing, Closing::Open) {
            return;
        }
        self.closing = Closing::AfterReplies;
        if self.input.is_empty() && self.queue.is_empty() {
            return;
        }
        encode::error_fmt(
            &mut self.scratch,
            b"ERR",
            format_args!(
                "pool '{}' was removed by a configuration reload: closing the connection",
                self.pool.pool().name
            ),
        );
        self.reply_local();
        self.input.clear();
    }

    fn handle_parsed(&mut self, parser: &mut RequestParser) -> bool {
        self.pool.refresh();
        self.check_held_connections(true);
        while self.handling() {
            if self.awaiting_moves() || !self.has_room() {
                return !self.input.is_empty();
            }
            let largest = self
                .limits
                .max_request_bytes
                .saturating_add(REQUEST_FRAMING_ALLOWANCE);
            let frame = match parser.parse(&self.input) {
                Ok(Some(frame)) if frame.byte_len() <= largest => frame,
                Ok(found) => {
                    if found.is_some() || self.input.len() > largest {
                        self.pool.limit_enforced(LimitStat::RequestsTooLarge);
                        self.protocol_error(format_args!(
                            "Protocol error: a request of more than {largest} bytes is over the \
                             limit (client_max_request_bytes)"
                        ));
                    }
                    return false;
                }
                Err(error) => {
                    if matches!(
                        error,
                        ProtocolError::TooManyArguments { .. }
                            | ProtocolError::ArgumentTooLong { .. }
                            | ProtocolError::UnauthenticatedMultibulkLength
                            | ProtocolError::UnauthenticatedBulkLength
                    ) {
                        self.pool.limit_enforced(LimitStat::RequestsTooLarge);
                    }
                    self.protocol_error(format_args!("{error}"));
                    return false;
                }
            };
            self.handle(&frame);
            parser.set_limits(self.parser_limits());
        }
        false
    }

    /// The framing limits for the client's next request: Redis's small ones until a client
    /// of a pool with `redis_auth` has authenticated, the pool's after.
    fn parser_limits(&self) -> RequestLimits {
        if self.pool.pool().redis_auth.is_some() && !self.state.authenticated {
            RequestLimits::UNAUTHENTICATED
        } else {
            self.request_limits
        }
    }

    fn protocol_error(&mut self, message: std::fmt::Arguments<'_>) {
        encode::error_fmt(&mut self.scratch, b"ERR", message);
        self.reply_local();
        self.closing = Closing::AfterProtocolError;
        self.input.clear();
    }

    /// Queues the reply built in `scratch`.
    fn reply_local(&mut self) {
        let reply = self.scratch.split().freeze();
        self.queue.push_ready(reply);
    }

    /// Replies a command's error; inside MULTI, EXEC will then fail, as in Redis.
    fn reply_command_error(&mut self, error: &CommandError<'_>) {
        self.holding.note_refused();
        let mut text = Vec::new();
        error.write_to(&mut text);
        self.scratch.extend_from_slice(b"-");
        self.scratch.extend_from_slice(&text);
        self.scratch.extend_from_slice(b"\r\n");
        self.reply_local();
    }

    /// Handles one request and consumes its bytes from the input.
    fn handle(&mut self, frame: &RequestFrame<'_>) {
        let length = frame.byte_len();
        if frame.is_empty() {
            self.input.advance(length);
            return;
        }
        let input = std::mem::take(&mut self.input);
        let decision = self.decide(&FrameArgs {
            ranges: frame.arg_ranges(),
            buffer: &input,
        });
        self.input = input;
        match decision {
            Decision::Done => self.input.advance(length),
            Decision::AwaitMoves => {}
            Decision::Forward { server, access } => {
                let request = self.take_request(frame);
                let seq = self.queue.push_waiting(request.len());
                let backend = self.pool.backend(server, self.state.protocol);
                match access {
                    Access::Read => backend.send_read(request, self.received, &self.queue, seq),
                    Access::Write => {
                        backend.send(request, self.received, &self.queue, seq, Part::Whole);
                    }
                }
            }
            Decision::ForwardTo(backend) => {
                let request = self.take_request(frame);
                let seq = self.queue.push_waiting(request.len());
                backend.send_read(request, self.received, &self.queue, seq);
            }
            Decision::Held { backend, blocking } => {
                let request = self.take_request(frame);
                let seq = self.queue.push_waiting(request.len());
                if blocking {
                    backend.send_blocking(request, self.received, &self.queue, seq);
                    self.track_wait(seq);
                } else {
                    backend.send(request, self.received, &self.queue, seq, Part::Whole);
                }
            }
            Decision::Blocked { backend } => {
                let request = self.take_request(frame);
                let seq = self.queue.push_waiting(request.len());
                backend.send_blocking(request, self.received, &self.queue, seq);
                self.track_blocked(backend);
            }
            Decision::QueueEarly => {
                let request = self.take_request(frame);
                self.keep_early(request);
            }
            Decision::Broadcast(broadcast) => {
                let request = self.take_request(frame);
                self.fan_out(request, MergeKind::Broadcast(broadcast));
            }
            Decision::Split(command, merge) => {
                self.split(frame, command, merge);
                self.input.advance(length);
            }
            Decision::Info => {
                self.fan_out_info();
                self.input.advance(length);
            }
            Decision::Keyspace(plan) => {
                self.send_keyspace(plan);
                self.input.advance(length);
            }
        }
    }

    /// Consumes the request's bytes from the input, as they arrived (inline requests are
    /// re-encoded as RESP for the server).
    fn take_request(&mut self, frame: &RequestFrame<'_>) -> Bytes {
        let length = frame.byte_len();
        if frame.is_inline() {
            encode::request(&mut self.scratch, frame.args(&self.input));
            self.input.advance(length);
            self.scratch.split().freeze()
        } else {
            self.input.split_to(length).freeze()
        }
    }

    /// What to do with a request; local replies are queued here.
    fn decide(&mut self, args: &FrameArgs<'_, '_>) -> Decision {
        if rampart_commands::is_http(args.get(0)) {
            return self.refuse_http(args.get(0));
        }
        let command = match rampart_commands::resolve(args) {
            Ok(command) => command,
            Err(error) => {
                self.reply_command_error(&error);
                return Decision::Done;
            }
        };
        let needs_auth = self.pool.pool().redis_auth.is_some() && !self.state.authenticated;
        let exempt = matches!(
            command.kind,
            Kind::Local(LocalCommand::Auth | LocalCommand::Hello | LocalCommand::Quit)
        );
        if needs_auth && !exempt {
            encode::error(&mut self.scratch, b"NOAUTH", b"Authentication required");
            self.reply_local();
            return Decision::Done;
        }
        if let Some(decision) = self.move_keys_first(command, args) {
            return decision;
        }
        if let Some(decision) = self.check_subscribed_mode(command, args) {
            return decision;
        }
        if let Some(decision) = self.decide_in_transaction(command, args) {
            return decision;
        }
        match command.kind {
            Kind::Local(local_command) => self.answer_local(local_command, args),
            Kind::Forward if command.may_block(args) => self.blocking_call(command, args),
            Kind::Keyspace(command) => {
                Decision::Keyspace(keyspace::plan(command, args, &self.pool, &mut self.scratch))
            }
            Kind::Forward => self.route_whole(command, args),
            Kind::Blocking => self.blocking_call(command, args),
            Kind::Session(which) => self.session_command(which, command, args),
            Kind::PubSub(which) => self.pubsub_command(which, args),
            Kind::Split(merge) => {
                let keys = match command.keys(args) {
                    Ok(keys) => keys,
                    Err(error) => {
                        self.reply_command_error(&error);
                        return Decision::Done;
                    }
                };
                if keys.len() == 1 {
                    self.route_whole(command, args)
                } else {
                    self.key_servers.clear();
                    for index in keys {
                        match self.pool.server_for_key(args.get(index)) {
                            Some(server) => self.key_servers.push(server),
                            None => return self.no_server(),
                        }
                    }
                    Decision::Split(command, merge)
                }
            }
            Kind::Unsupported(_) => {
                self.reply_command_error(&CommandError::Unsupported {
                    command: command.name,
                    reason: "unsupported",
                });
                Decision::Done
            }
        }
    }

    /// Whether the request being handled waits for its keys to move.
    fn awaiting_moves(&self) -> bool {
        self.moving.as_ref().is_some_and(|wait| !wait.is_done())
    }

    /// While the pool migrates: a request with keys whose server changed waits until their
    /// old servers moved them (one MIGRATE per old and new server), and is then decided
    /// again. A move that failed answers the request with `-TRYAGAIN` instead.
    fn move_keys_first(
        &mut self,
        command: &'static Command,
        args: &FrameArgs<'_, '_>,
    ) -> Option<Decision> {
        if let Some(wait) = self.moving.take() {
            let failure = wait.failure()?;
            encode::error_fmt(
                &mut self.scratch,
                b"TRYAGAIN",
                format_args!(
                    "a key of this request could not be moved to its new shard during the \
                     migration: {failure}"
                ),
            );
            self.reply_local();
            return Some(Decision::Done);
        }
        if !self.pool.migrating() {
            return None;
        }
        let mut moves: Vec<(usize, usize, Vec<Bytes>)> = Vec::new();
        for index in command.keys(args).ok()? {
            let key = args.get(index);
            let (Some(to), Some(from)) = (
                self.pool.server_for_key(key),
                self.pool.old_server_for_key(key),
            ) else {
                continue;
            };
            if from == to {
                continue;
            }
            let key = Bytes::copy_from_slice(key);
            match moves
                .iter_mut()
                .find(|(old, new, _)| (*old, *new) == (from, to))
            {
                Some((_, _, keys)) => keys.push(key),
                None => moves.push((from, to, vec![key])),
            }
        }
        if moves.is_empty() {
            return None;
        }
        let wait = MoveWait::new(moves.len(), Rc::clone(&self.queue));
        for (from, to, keys) in &moves {
            self.pool.move_keys(*from, *to, keys, &wait);
        }
        self.moving = Some(wait);
        Some(Decision::AwaitMoves)
    }

    /// Routes a command sent whole: by its keys, which must all live on one server.
    fn route_whole(&mut self, command: &'static Command, args: &FrameArgs<'_, '_>) -> Decision {
        let mut keys = match command.keys(args) {
            Ok(keys) => keys,
            Err(error) => {
                self.reply_command_error(&error);
                return Decision::Done;
            }
        };
        let first = keys.next().map_or(PLACEHOLDER_KEY, |index| args.get(index));
        let Some(server) = self.pool.server_for_key(first) else {
            return self.no_server();
        };
        if self.pool.pool().distribution != Distribution::Random {
            for index in keys {
                if self.pool.server_for_key(args.get(index)) != Some(server) {
                    self.reply_command_error(&command.cross_shard_error());
                    return Decision::Done;
                }
            }
        }
        if let Some(backend) = self.holding.pinned_to(server) {
            return Decision::Held {
                backend,
                blocking: false,
            };
        }
        if command.readonly
            && let Some(replica) = self.pool.replica_for_read(server, self.state.protocol)
        {
            return Decision::ForwardTo(replica);
        }
        let access = if command.readonly {
            Access::Read
        } else {
            Access::Write
        };
        Decision::Forward { server, access }
    }

    /// An HTTP request line or header: closed without a reply, as redis-server does, so a
    /// web page or a forged server-side request cannot write into the cache.
    fn refuse_http(&mut self, name: &[u8]) -> Decision {
        limited!(
            warn,
            "HTTP requests refused",
            "client {} of pool '{}' sent '{}', an HTTP request: closing the connection \
             (possible cross-protocol attack)",
            self.state.id,
            self.pool.pool().name,
            String::from_utf8_lossy(name)
        );
        self.pool.limit_enforced(LimitStat::CrossProtocol);
        self.closing = Closing::AfterProtocolError;
        Decision::Done
    }

    /// Every server is ejected: nutcracker's reply.
    fn no_server(&mut self) -> Decision {
        self.pool.forward_error();
        encode::err(&mut self.scratch, b"Connection refused");
        self.reply_local();
        Decision::Done
    }

    fn answer_local(&mut self, command: LocalCommand, args: &FrameArgs<'_, '_>) -> Decision {
        let pool = &self.pool;
        let facts = || {
            let (connected_clients, parked_clients) = pool.connected_clients();
            ProxyFacts {
                live_servers: pool.live_servers(),
                uptime_seconds: pool.shared().started.elapsed().as_secs(),
                connected_clients,
                parked_clients,
                workers: pool.shared().workers,
            }
        };
        let outcome = local::answer(
            command,
            args,
            &mut self.state,
            pool.pool(),
            facts,
            &mut self.scratch,
        );
        match outcome {
            Outcome::Replied => {
                self.reply_local();
                Decision::Done
            }
            Outcome::Close => {
                self.reply_local();
                self.closing = Closing::AfterReplies;
                Decision::Done
            }
            Outcome::InfoWithKeyspace => Decision::Info,
            Outcome::Broadcast(broadcast) => Decision::Broadcast(broadcast),
        }
    }

    /// Sends one sub-request per server holding some of the keys, lower-case as nutcracker
    /// sends them, and merges their replies in the request's slot.
    fn split(&mut self, frame: &RequestFrame<'_>, command: &'static Command, merge: Merge) {
        let step = command.step();
        self.fragment_servers.clear();
        self.fragment_ends.clear();
        let mut merging = self.queue.merging();
        for &server in &self.key_servers {
            let fragment = match self
                .fragment_servers
                .iter()
                .position(|&known| known == server)
            {
                Some(fragment) => fragment,
                None => {
                    self.fragment_servers.push(server);
                    self.fragment_servers.len() - 1
                }
            };
            merging.key_fragments.push(fragment as u16);
        }
        let fragments = self.fragment_servers.len();
        for &server in &self.fragment_servers {
            let keys = self
                .key_servers
                .iter()
                .filter(|&&owner| owner == server)
                .count();
            encode::array_header(&mut self.scratch, 1 + keys * step);
            encode::bulk_string(&mut self.scratch, command.name.as_bytes());
            for (position, _) in self
                .key_servers
                .iter()
                .enumerate()
                .filter(|(_, owner)| **owner == server)
            {
                let first_arg = 1 + position * step;
                for arg in first_arg..first_arg + step {
                    encode::bulk_string(
                        &mut self.scratch,
                        frame.arg(arg, &self.input).unwrap_or_default(),
                    );
                }
            }
            self.fragment_ends.push(self.scratch.len());
        }
        let kind = match merge {
            Merge::Values => MergeKind::Values,
            Merge::SumIntegers => MergeKind::SumIntegers,
            Merge::AllOk => MergeKind::AllOk,
        };
        merging.prepare(kind, fragments);
        let mut requests = self.scratch.split().freeze();
        let seq = self.queue.push_merging(merging, requests.len());
        self.pool.fragments(fragments);
        let mut start = 0;
        let ends = self.fragment_servers.iter().zip(&self.fragment_ends);
        self.send_as_fragments(
            seq,
            ends.map(|(&server, &end)| {
                let request = requests.split_to(end - start);
                start = end;
                (server, request)
            }),
        );
    }

    /// Sends each `(server, request)` as the next fragment of slot `seq`: fragment N is the
    /// Nth request.
    fn send_as_fragments(&self, seq: u64, requests: impl IntoIterator<Item = (usize, Bytes)>) {
        for (fragment, (server, request)) in requests.into_iter().enumerate() {
            self.pool.backend(server, self.state.protocol).send(
                request,
                self.received,
                &self.queue,
                seq,
                Part::Fragment(fragment as u16),
            );
        }
    }

    /// INFO: the proxy's sections (already in `scratch`) plus the keyspace of every live shard.
    fn fan_out_info(&mut self) {
        let local = self.scratch.split().freeze();
        encode::request(&mut self.scratch, [&b"INFO"[..], b"keyspace"]);
        let request = self.scratch.split().freeze();
        let kind = MergeKind::Info {
            local,
            protocol: self.state.protocol,
        };
        self.fan_out(request, kind);
    }

    /// SCAN to the one shard its cursor points at, PUBSUB NUMSUB to the shards of its
    /// channels, DBSIZE, KEYS, RANDOMKEY, FLUSHDB, FLUSHALL and the other PUBSUB subcommands
    /// to every shard, as `keyspace` planned them (or its refusal).
    fn send_keyspace(&mut self, plan: Plan) {
        match plan {
            Plan::Replied => self.reply_local(),
            Plan::EveryShard { request, merge } => {
                self.pool.fragments(self.pool.pool().servers.len());
                self.fan_out(request, MergeKind::Keyspace(merge));
            }
            Plan::OneShard {
                server,
                request,
                merge,
            } => self.send_fragments(vec![(server, request)], merge),
            Plan::PerShard { requests, merge } => {
                self.pool.fragments(requests.len());
                self.send_fragments(requests, merge);
            }
        }
    }

    /// Sends each request to its server as one fragment of a merged reply, fragment N being
    /// `requests[N]`.
    fn send_fragments(&mut self, requests: Vec<(usize, Bytes)>, merge: KeyspaceMerge) {
        let mut merging = self.queue.merging();
        merging.prepare(MergeKind::Keyspace(merge), requests.len());
        let bytes = requests.iter().map(|(_, request)| request.len()).sum();
        let seq = self.queue.push_merging(merging, bytes);
        self.send_as_fragments(seq, requests);
    }

    /// Sends `request` to every live shard and merges their replies in one slot. With no
    /// live shard the reply is nutcracker's `-ERR Connection refused` (INFO still gives the
    /// proxy's own sections).
    fn fan_out(&mut self, request: Bytes, kind: MergeKind) {
        let servers: Vec<usize> = (0..self.pool.pool().servers.len())
            .filter(|&server| self.pool.is_live(server))
            .collect();
        let mut merging = self.queue.merging();
        merging.prepare(kind, servers.len().max(1));
        let seq = self
            .queue
            .push_merging(merging, request.len() * servers.len());
        if servers.is_empty() {
            self.pool.forward_error();
            self.queue.complete(
                seq,
                Part::Fragment(0),
                Bytes::from_static(b"-ERR Connection refused\r\n"),
            );
        }
        self.send_as_fragments(
            seq,
            servers.into_iter().map(|server| (server, request.clone())),
        );
    }
}

/// Whether a forwarded command only reads, which lets a replica serve it while its shard's
/// master is down (`replica_reads`).
#[derive(Clone, Copy)]
enum Access {
    Read,
    Write,
}

enum Decision {
    /// Answered locally (or refused); nothing to send.
    Done,
    /// Keep the request until its keys have moved to their new server, then decide again.
    AwaitMoves,
    /// Send the request whole to `server`.
    Forward { server: usize, access: Access },
    /// Send the request whole over this connection (a replica, for `replica_reads`).
    ForwardTo(Rc<Backend>),
    /// Send the request whole over a dedicated connection the client holds; `blocking` (WAIT):
    /// the pool's `timeout` does not apply.
    Held {
        backend: Rc<Backend>,
        blocking: bool,
    },
    /// Send a blocking request over a dedicated connection taken for it, given back once it
    /// is answered.
    Blocked { backend: Rc<Backend> },
    /// Keep the request for the transaction's shard, not chosen yet, and answer QUEUED.
    QueueEarly,
    /// Split by the servers in `key_servers`.
    Split(&'static Command, Merge),
    /// INFO with the keyspace summed over the shards.
    Info,
    /// Send the request to every shard (SCRIPT LOAD/EXISTS/FLUSH).
    Broadcast(Broadcast),
    /// A command over the whole keyspace (SCAN, DBSIZE, KEYS...) or PUBSUB's introspection,
    /// as `keyspace` planned it.
    Keyspace(Plan),
}
