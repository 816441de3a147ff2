//! A client connection: reads requests, frames them without copying, answers local commands,
//! routes the rest by key to a backend connection (splitting multi-key commands by shard),
//! and writes every reply back strictly in request order. Unknown commands, wrong arity and
//! keys that span shards get a `-ERR` naming the command, and the connection stays open; a
//! malformed frame gets `-ERR Protocol error: ...` and the connection closes after it.

use std::io;
use std::ops::Range;
use std::rc::Rc;

use bytes::{Buf, Bytes, BytesMut};
use rampart_commands::{
    Arguments, Command, CommandError, Kind, LocalCommand, Merge, PLACEHOLDER_KEY,
};
use rampart_placement::Distribution;
use rampart_protocol::{RequestFrame, RequestParser, encode};
use tokio::io::Interest;

use super::backend::Backend;
use super::local::{self, Broadcast, ConnectionState, Outcome, ProxyFacts};
use super::merge::MergeKind;
use super::parking::ParkedClient;
use super::reply_queue::{MAX_IOVECS, Part, ReplyQueue, Slot};
use super::router::PoolRouter;
use super::stream::{Stream, read_some, release_if_large};
use super::worker::WorkerContext;
use crate::admin::catalog::PoolStat;

/// Most requests a client may have waiting for replies before the proxy stops reading from it.
const MAX_PENDING_REPLIES: usize = 4096;
/// Largest request the proxy buffers (Redis's own bulk limit plus framing).
const MAX_REQUEST_BYTES: usize = 512 * 1024 * 1024 + 64 * 1024;

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
        self.buffer
            .get(self.ranges[index].clone())
            .unwrap_or_default()
    }
}

/// How the connection ends.
enum Closing {
    /// Still serving.
    Open,
    /// Write what is pending, then close: the client sent QUIT or EOF, or the proxy is stopping.
    AfterReplies,
    /// Write what is pending (the protocol error included), then close; counts as a client error.
    AfterProtocolError,
}

struct Session {
    router: Rc<PoolRouter>,
    context: Rc<WorkerContext>,
    queue: Rc<ReplyQueue>,
    state: ConnectionState,
    /// Bytes of requests not handled yet: the worker's shared read buffer while a read is
    /// being handled, the client's own buffer only for what is left over (a partial request).
    input: BytesMut,
    scratch: BytesMut,
    key_servers: Vec<usize>,
    fragment_servers: Vec<usize>,
    fragment_ends: Vec<usize>,
    closing: Closing,
}

/// Why the serving loop returned.
enum Ending {
    /// The client is gone, or the session closed it.
    Closed,
    /// The client has been idle for a sweep period: hand its socket to the parking lot.
    Park,
}

/// Serves a client until it leaves (or the proxy stops and its replies are written), or until
/// it has been idle long enough to be parked again.
pub async fn serve(context: Rc<WorkerContext>, client: ParkedClient) {
    let ParkedClient {
        socket,
        router,
        state,
    } = client;
    let stream = match socket.into_stream() {
        Ok(stream) => Rc::new(stream),
        Err(error) => {
            tracing::warn!("client {}: cannot be served: {error}", state.id);
            router.client_closed(PoolStat::ClientErr);
            return;
        }
    };
    let chunk = router.shared.mbuf_size;
    let queue = Rc::new(ReplyQueue::new());
    queue.set_client(Some(Rc::clone(&stream)));
    let registered = context.sessions.register(&queue);
    let mut session = Session {
        queue,
        state,
        input: BytesMut::new(),
        context: Rc::clone(&context),
        scratch: BytesMut::new(),
        key_servers: Vec::new(),
        fragment_servers: Vec::new(),
        fragment_ends: Vec::new(),
        closing: if context.stop_requested.get() {
            Closing::AfterReplies
        } else {
            Closing::Open
        },
        router,
    };
    let mut parser = RequestParser::new();
    let mut end_of_input = false;
    let mut backlog = false;
    let mut deferred = false;
    let outcome: io::Result<Ending> = async {
        loop {
            session.queue.allow_writes_through(false);
            if !deferred && session.queue.partly_answered() {
                // Let replies from the other shards that have already arrived land first:
                // one write for the client instead of one per shard. Only once per write,
                // so a slow shard delays the replies before it by one scheduler round at most.
                deferred = true;
                tokio::task::yield_now().await;
                continue;
            }
            deferred = false;
            let blocked = session.write_replies(&stream)?;
            let serving = matches!(session.closing, Closing::Open);
            if backlog && serving && session.queue.len() < MAX_PENDING_REPLIES {
                backlog = session.handle_requests(&mut parser);
                continue;
            }
            let open = serving && !end_of_input;
            if !(open || (backlog && serving)) && session.queue.is_empty() {
                return Ok(Ending::Closed);
            }
            let can_read = open && session.queue.len() < MAX_PENDING_REPLIES;
            let interest = match (can_read, blocked) {
                (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
                (true, false) => Some(Interest::READABLE),
                (false, true) => Some(Interest::WRITABLE),
                (false, false) => None,
            };
            session
                .queue
                .allow_writes_through(can_read && !blocked && !backlog);
            tokio::select! {
                biased;
                () = session.queue.wake.notified() => {
                    if context.stop_requested.get() && serving {
                        session.closing = Closing::AfterReplies;
                        continue;
                    }
                    let idle = open && !backlog && session.queue.is_empty() && session.input.is_empty();
                    if context.sessions.take_park_request(registered) && idle {
                        return Ok(Ending::Park);
                    }
                }
                ready = async { stream.ready(interest.unwrap_or(Interest::READABLE)).await }, if interest.is_some() => {
                    let ready = ready?;
                    if can_read && (ready.is_readable() || ready.is_read_closed()) {
                        let borrowed = session.input.is_empty();
                        if borrowed {
                            session.input = session.context.input.take();
                        }
                        let read = session.read_input(&stream, chunk);
                        if let Ok(end) = read {
                            end_of_input = end;
                            backlog = session.handle_requests(&mut parser);
                        }
                        if borrowed {
                            session.give_back_input();
                        } else {
                            release_if_large(&mut session.input, chunk);
                        }
                        read?;
                    }
                }
            }
        }
    }
    .await;
    context.sessions.unregister(registered);
    session.queue.set_client(None);
    let outcome = match outcome {
        Ok(Ending::Park) => match Rc::try_unwrap(stream)
            .map_err(|_| io::Error::other("the client's socket is still lent out"))
            .and_then(Stream::into_idle)
        {
            Ok(socket) => {
                let client = ParkedClient {
                    socket,
                    router: session.router,
                    state: session.state,
                };
                context.parking.park(&context, client);
                return;
            }
            Err(error) => Err(error),
        },
        other => other,
    };
    let stat = match (&outcome, &session.closing) {
        (Err(_), _) | (_, Closing::AfterProtocolError) => PoolStat::ClientErr,
        _ => PoolStat::ClientEof,
    };
    session.queue.close();
    session.router.client_closed(stat);
}

impl Session {
    /// Writes ready replies from the head of the queue. Returns true when the socket is full.
    fn write_replies(&mut self, stream: &Stream) -> io::Result<bool> {
        loop {
            match self
                .queue
                .write_head::<MAX_IOVECS>(|slices| stream.try_write_vectored(slices))
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
    fn read_input(&mut self, stream: &Stream, chunk: usize) -> io::Result<bool> {
        loop {
            match read_some(stream, &mut self.input, chunk)? {
                Some(0) => return Ok(true),
                Some(_) if self.input.len() < 4 * chunk => continue,
                Some(_) | None => return Ok(false),
            }
        }
    }

    /// Handles every complete request in the input. Returns true when it stopped with
    /// requests left because too many replies are pending.
    fn handle_requests(&mut self, parser: &mut RequestParser) -> bool {
        self.router.refresh();
        while matches!(self.closing, Closing::Open) {
            if self.queue.len() >= MAX_PENDING_REPLIES {
                return !self.input.is_empty();
            }
            let frame = match parser.parse(&self.input) {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    if self.input.len() > MAX_REQUEST_BYTES {
                        self.protocol_error(format_args!(
                            "Protocol error: request is larger than {MAX_REQUEST_BYTES} bytes"
                        ));
                    }
                    return false;
                }
                Err(error) => {
                    self.protocol_error(format_args!("{error}"));
                    return false;
                }
            };
            self.handle(&frame);
        }
        false
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
        self.queue.push(Slot::Ready(reply));
    }

    fn reply_command_error(&mut self, error: &CommandError<'_>) {
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
            Decision::Forward(server, readonly) => {
                let request = self.take_request(frame);
                let seq = self.queue.push(Slot::Waiting);
                let backend = self.router.backend(server, self.state.protocol);
                if readonly {
                    backend.send_read(request, &self.queue, seq);
                } else {
                    backend.send(request, &self.queue, seq, Part::Whole);
                }
            }
            Decision::ForwardTo(backend) => {
                let request = self.take_request(frame);
                let seq = self.queue.push(Slot::Waiting);
                backend.send_read(request, &self.queue, seq);
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
        let command = match rampart_commands::resolve(args) {
            Ok(command) => command,
            Err(error) => {
                self.reply_command_error(&error);
                return Decision::Done;
            }
        };
        let needs_auth = self.router.pool().redis_auth.is_some() && !self.state.authenticated;
        let exempt = matches!(
            command.kind,
            Kind::Local(LocalCommand::Auth | LocalCommand::Hello | LocalCommand::Quit)
        );
        if needs_auth && !exempt {
            encode::error(&mut self.scratch, b"NOAUTH", b"Authentication required");
            self.reply_local();
            return Decision::Done;
        }
        match command.kind {
            Kind::Local(local_command) => self.answer_local(local_command, args),
            Kind::Forward => self.route_whole(command, args),
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
                        match self.router.server_for_key(args.get(index)) {
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
        let Some(server) = self.router.server_for_key(first) else {
            return self.no_server();
        };
        if self.router.pool().distribution != Distribution::Random {
            for index in keys {
                if self.router.server_for_key(args.get(index)) != Some(server) {
                    self.reply_command_error(&command.cross_shard_error());
                    return Decision::Done;
                }
            }
        }
        if command.readonly
            && let Some(replica) = self.router.replica_for_read(server, self.state.protocol)
        {
            return Decision::ForwardTo(replica);
        }
        Decision::Forward(server, command.readonly)
    }

    /// Every server is ejected: nutcracker's reply.
    fn no_server(&mut self) -> Decision {
        self.router.forward_error();
        encode::err(&mut self.scratch, b"Connection refused");
        self.reply_local();
        Decision::Done
    }

    fn answer_local(&mut self, command: LocalCommand, args: &FrameArgs<'_, '_>) -> Decision {
        let (connected_clients, parked_clients) = self.router.connected_clients();
        let facts = ProxyFacts {
            pool: self.router.pool(),
            live_servers: self.router.live_servers(),
            uptime_seconds: self.router.shared.started.elapsed().as_secs(),
            connected_clients,
            parked_clients,
            workers: self.router.shared.workers,
        };
        match local::answer(command, args, &mut self.state, &facts, &mut self.scratch) {
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
        for fragment in 0..fragments {
            let server = self.fragment_servers[fragment];
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
        let seq = self.queue.push(Slot::Merging({
            merging.prepare(kind, fragments);
            merging
        }));
        *self
            .router
            .stats
            .borrow_mut()
            .pool_mut(self.router.index, PoolStat::Fragments) += fragments as u64;
        let mut requests = self.scratch.split().freeze();
        let mut start = 0;
        for fragment in 0..fragments {
            let server = self.fragment_servers[fragment];
            let end = self.fragment_ends[fragment];
            let request = requests.split_to(end - start);
            start = end;
            self.router.backend(server, self.state.protocol).send(
                request,
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

    /// Sends `request` to every live shard and merges their replies in one slot. With no
    /// live shard the reply is nutcracker's `-ERR Connection refused` (INFO still gives the
    /// proxy's own sections).
    fn fan_out(&mut self, request: Bytes, kind: MergeKind) {
        let servers: Vec<usize> = (0..self.router.pool().servers.len())
            .filter(|&server| self.router.is_live(server))
            .collect();
        let mut merging = self.queue.merging();
        merging.prepare(kind, servers.len().max(1));
        let seq = self.queue.push(Slot::Merging(merging));
        if servers.is_empty() {
            self.router.forward_error();
            self.queue.complete(
                seq,
                Part::Fragment(0),
                Bytes::from_static(b"-ERR Connection refused\r\n"),
            );
        }
        for (fragment, server) in servers.into_iter().enumerate() {
            self.router.backend(server, self.state.protocol).send(
                request.clone(),
                &self.queue,
                seq,
                Part::Fragment(fragment as u16),
            );
        }
    }
}

enum Decision {
    /// Answered locally (or refused); nothing to send.
    Done,
    /// Send the request whole to this server; `true` for a read-only command.
    Forward(usize, bool),
    /// Send the request whole over this connection (a replica, for `replica_reads`).
    ForwardTo(Rc<Backend>),
    /// Split by the servers in `key_servers`.
    Split(&'static Command, Merge),
    /// INFO with the keyspace summed over the shards.
    Info,
    /// Send the request to every shard (SCRIPT LOAD/EXISTS/FLUSH).
    Broadcast(Broadcast),
}
