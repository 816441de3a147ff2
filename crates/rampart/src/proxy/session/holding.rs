//! What a client holds beyond the shared connections, and the requests that need it: the
//! dedicated connection its WATCH or transaction is pinned to, the transaction itself
//! (MULTI/EXEC/DISCARD with Redis's replies, on the one shard its first key picks), WAIT on
//! that connection, and the dedicated connections its blocking calls wait on. Connections go
//! back to the worker's pool clean when the transaction, WATCH or blocking call is over, and
//! are closed otherwise.

use std::rc::Rc;

use bytes::Bytes;
use rampart_commands::{Arguments, Command, Kind, LocalCommand, PLACEHOLDER_KEY, SessionCommand};
use rampart_protocol::encode;

use super::{Closing, Decision, FrameArgs, Session};
use crate::proxy::backend::Backend;
use crate::proxy::pool::WorkerPool;
use crate::proxy::reply_queue::ReplyQueue;

/// Requests a transaction may queue before a key picks its shard.
const MAX_EARLY_REQUESTS: usize = 1024;

/// The dedicated connection a client's WATCH or transaction runs on.
struct Pinned {
    server: usize,
    backend: Rc<Backend>,
    /// WATCH is in force on it.
    watching: bool,
    /// Its MULTI was sent (the transaction's state is on the server).
    in_multi: bool,
    /// The transaction and WATCH are over: it goes back before the client's next request,
    /// unless that is WAIT, which must follow the writes it waits for.
    done: bool,
}

/// An open MULTI.
#[derive(Default)]
struct Transaction {
    /// Requests queued before any key picked the shard; sent, silently, once one does.
    early: Vec<Bytes>,
    /// A queued command was refused: EXEC answers `-EXECABORT`, as Redis does.
    aborted: bool,
}

pub(super) struct Holding {
    pool: Rc<WorkerPool>,
    queue: Rc<ReplyQueue>,
    pinned: Option<Pinned>,
    transaction: Option<Transaction>,
    /// Dedicated connections of blocking calls still waiting for their reply.
    blocked: Vec<Rc<Backend>>,
    /// WAITs sent on the pinned connection and not answered yet (their sequence numbers): the
    /// connection is not given back while one is out.
    waits: Vec<u64>,
}

impl Holding {
    pub(super) fn new(pool: Rc<WorkerPool>, queue: Rc<ReplyQueue>) -> Holding {
        Holding {
            pool,
            queue,
            pinned: None,
            transaction: None,
            blocked: Vec::new(),
            waits: Vec::new(),
        }
    }

    /// Serves the client with `pool` from now on (a reload replaced its pool); only while it
    /// holds nothing.
    pub(super) fn set_pool(&mut self, pool: Rc<WorkerPool>) {
        self.pool = pool;
    }

    /// Holds nothing: the session may be parked.
    pub(super) fn is_empty(&self) -> bool {
        self.pinned.is_none()
            && self.transaction.is_none()
            && self.blocked.is_empty()
            && self.waits.is_empty()
    }

    /// Whether every reply still to come is that of a blocking call or a WAIT.
    pub(super) fn waits_only_on_blocked(&self) -> bool {
        let blocking = self.blocked.len() + self.waits.len();
        blocking > 0 && self.queue.unanswered() == blocking
    }

    /// Inside MULTI: a refused command makes EXEC fail.
    pub(super) fn note_refused(&mut self) {
        if let Some(transaction) = &mut self.transaction {
            transaction.aborted = true;
        }
    }

    /// A connection for a request to `server` outside a transaction: the pinned one while the
    /// client's WATCH is on that shard, so its reads and writes stay in order with its EXEC.
    pub(super) fn pinned_to(&self, server: usize) -> Option<Rc<Backend>> {
        self.pinned
            .as_ref()
            .filter(|pinned| pinned.server == server && !pinned.done)
            .map(|pinned| Rc::clone(&pinned.backend))
    }

    /// Gives back the connections whose blocking call was answered, and forgets answered WAITs.
    pub(super) fn release_answered(&mut self) {
        let queue = &self.queue;
        self.waits.retain(|&seq| !queue.is_answered(seq));
        let pool = &self.pool;
        self.blocked.retain(|backend| {
            let answered = backend.is_idle();
            if answered {
                pool.release_dedicated(backend, true);
            }
            !answered
        });
    }

    /// Whether the pinned connection was lost while a transaction or WATCH was on it: the
    /// client's state on the server is gone, so the session closes the client once it has its
    /// error replies, rather than run its next commands outside the transaction.
    pub(super) fn lost_pinned_state(&mut self) -> bool {
        let Some(pinned) = self.pinned.take_if(|pinned| pinned.backend.has_ended()) else {
            return false;
        };
        self.pool.release_dedicated(&pinned.backend, false);
        let had_state = pinned.watching || pinned.in_multi || self.transaction.is_some();
        self.transaction = None;
        had_state
    }

    /// An idle client gives back a pinned connection whose transaction and WATCH are over once
    /// everything sent on it is answered (a WAIT right after EXEC is no longer expected).
    pub(super) fn release_finished(&mut self) {
        if self.waits.is_empty()
            && let Some(pinned) = self
                .pinned
                .take_if(|pinned| pinned.done && pinned.backend.is_idle())
        {
            self.pool.release_dedicated(&pinned.backend, true);
        }
    }

    /// Gives the pinned connection back if its transaction and WATCH are over and no WAIT is
    /// out on it.
    fn release_done(&mut self) {
        let waiting = !self.waits.is_empty();
        if let Some(pinned) = self.pinned.take_if(|pinned| pinned.done && !waiting) {
            self.pool.release_dedicated(&pinned.backend, true);
        }
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        if let Some(pinned) = self.pinned.take() {
            let clean = pinned.done && self.transaction.is_none() && pinned.backend.is_idle();
            self.pool.release_dedicated(&pinned.backend, clean);
        }
        for backend in self.blocked.drain(..) {
            let clean = backend.is_idle();
            self.pool.release_dedicated(&backend, clean);
        }
    }
}

/// Why a request cannot have the connection it needs.
enum Refusal {
    /// The transaction or WATCH is on another shard.
    OtherShard { held: usize, wanted: usize },
    /// Every dedicated connection of the pool on this worker is held.
    Exhausted { limit: usize },
}

impl Session {
    /// Inside MULTI, where a request goes (`None` outside one, and for QUIT). Before any
    /// request but WAIT, gives back the pinned connection of a finished transaction.
    pub(super) fn decide_in_transaction(
        &mut self,
        command: &'static Command,
        args: &FrameArgs<'_, '_>,
    ) -> Option<Decision> {
        if command.kind != Kind::Session(SessionCommand::Wait) {
            self.holding.release_done();
        }
        let immediate = matches!(
            command.kind,
            Kind::Local(LocalCommand::Quit) | Kind::Session(SessionCommand::Reset)
        );
        (self.holding.transaction.is_some() && !immediate)
            .then(|| self.queue_in_transaction(command, args))
    }

    /// MULTI, EXEC, DISCARD, WATCH, UNWATCH and WAIT outside a transaction.
    pub(super) fn session_command(
        &mut self,
        which: SessionCommand,
        command: &'static Command,
        args: &FrameArgs<'_, '_>,
    ) -> Decision {
        match which {
            SessionCommand::Multi => {
                self.holding.transaction = Some(Transaction::default());
                match &mut self.holding.pinned {
                    Some(pinned) => {
                        pinned.in_multi = true;
                        pinned.done = false;
                        Decision::Held {
                            backend: Rc::clone(&pinned.backend),
                            blocking: false,
                        }
                    }
                    None => self.reply_status(b"OK"),
                }
            }
            SessionCommand::Exec => self.reply_error(format_args!("EXEC without MULTI")),
            SessionCommand::Discard => self.reply_error(format_args!("DISCARD without MULTI")),
            SessionCommand::Watch => {
                let Some(server) = self.shard_of(command, args) else {
                    return Decision::Done;
                };
                match self.pin(server) {
                    Ok(backend) => {
                        if let Some(pinned) = &mut self.holding.pinned {
                            pinned.watching = true;
                        }
                        Decision::Held {
                            backend,
                            blocking: false,
                        }
                    }
                    Err(refusal) => self.refuse(refusal, command.name),
                }
            }
            SessionCommand::Unwatch => match &mut self.holding.pinned {
                Some(pinned) => {
                    pinned.watching = false;
                    pinned.done = true;
                    Decision::Held {
                        backend: Rc::clone(&pinned.backend),
                        blocking: false,
                    }
                }
                None => self.reply_status(b"OK"),
            },
            SessionCommand::Reset => {
                self.reset();
                Decision::Done
            }
            SessionCommand::Wait => match &self.holding.pinned {
                Some(pinned) => Decision::Held {
                    backend: Rc::clone(&pinned.backend),
                    blocking: true,
                },
                None => self.reply_error(format_args!(
                    "WAIT through rampart waits for the writes of the connection it is sent on: \
                     send it right after EXEC, or after WATCH, where the client's writes went \
                     through one server connection"
                )),
            },
        }
    }

    /// RESET: ends the transaction and WATCH (the pinned connection gets DISCARD and UNWATCH
    /// behind whatever it still carries, and goes back), the subscriptions, the client's name
    /// and authentication, and goes back to RESP2, as Redis does.
    fn reset(&mut self) {
        self.holding.transaction = None;
        if let Some(pinned) = self.holding.pinned.take() {
            if pinned.in_multi {
                pinned.backend.send_silent(discard_request());
            }
            pinned.backend.send_silent(unwatch_request());
            self.pool.release_dedicated(&pinned.backend, true);
        }
        self.subscriptions.close_all();
        self.apply_output_limits();
        self.state.protocol = rampart_protocol::Protocol::Resp2;
        self.state.name = None;
        if self.pool.pool().redis_auth.is_some() {
            self.state.authenticated = false;
        }
        encode::simple_string(&mut self.scratch, b"RESET");
        self.reply_local();
    }

    /// A blocking command outside a transaction: on a dedicated connection of its own, so it
    /// delays no other client (nor the client's own WATCH).
    pub(super) fn blocking_call(
        &mut self,
        command: &'static Command,
        args: &FrameArgs<'_, '_>,
    ) -> Decision {
        let Some(server) = self.shard_of(command, args) else {
            return Decision::Done;
        };
        match self.pool.acquire_dedicated(server, self.state.protocol) {
            Ok(backend) => Decision::Blocked { backend },
            Err(exhausted) => self.refuse(
                Refusal::Exhausted {
                    limit: exhausted.limit,
                },
                command.name,
            ),
        }
    }

    /// Records a WAIT sent on the pinned connection, answered in `seq`.
    pub(super) fn track_wait(&mut self, seq: u64) {
        self.holding.waits.push(seq);
    }

    /// Records a blocking call sent on a dedicated connection of its own.
    pub(super) fn track_blocked(&mut self, backend: Rc<Backend>) {
        self.holding.blocked.push(backend);
    }

    /// Inside MULTI: queue the request on the transaction's shard (the first key picks it),
    /// with Redis's replies for nested MULTI, WATCH inside MULTI, EXEC and DISCARD.
    fn queue_in_transaction(
        &mut self,
        command: &'static Command,
        args: &FrameArgs<'_, '_>,
    ) -> Decision {
        match command.kind {
            Kind::Session(SessionCommand::Multi) => {
                return self.reply_error(format_args!("MULTI calls can not be nested"));
            }
            Kind::Session(SessionCommand::Watch) => {
                return self.reply_error(format_args!("WATCH inside MULTI is not allowed"));
            }
            Kind::Session(SessionCommand::Exec) => return self.exec(),
            Kind::Session(SessionCommand::Discard) => return self.discard(),
            Kind::Local(LocalCommand::Ping | LocalCommand::Echo)
            | Kind::Forward
            | Kind::Split(_)
            | Kind::Blocking
            | Kind::Session(_) => {}
            Kind::Local(_) | Kind::Unsupported(_) | Kind::PubSub(_) | Kind::Keyspace(_) => {
                self.holding.note_refused();
                return self.reply_error(format_args!(
                    "'{}' cannot be queued in a transaction through rampart",
                    command.name
                ));
            }
        }
        let has_keys = match command.keys(args) {
            Ok(mut keys) => keys.next().is_some(),
            Err(error) => {
                self.reply_command_error(&error);
                return Decision::Done;
            }
        };
        if has_keys {
            let Some(server) = self.shard_of(command, args) else {
                return Decision::Done;
            };
            return match self.pin(server) {
                Ok(backend) => Decision::Held {
                    backend,
                    blocking: false,
                },
                Err(refusal) => self.refuse(refusal, command.name),
            };
        }
        match &self.holding.pinned {
            Some(pinned) => Decision::Held {
                backend: Rc::clone(&pinned.backend),
                blocking: false,
            },
            None => self.queue_early(),
        }
    }

    /// A keyless request in a transaction whose shard is not chosen yet.
    fn queue_early(&mut self) -> Decision {
        let full = self
            .holding
            .transaction
            .as_ref()
            .is_some_and(|transaction| transaction.early.len() >= MAX_EARLY_REQUESTS);
        if full {
            self.holding.note_refused();
            return self.reply_error(format_args!(
                "more than {MAX_EARLY_REQUESTS} commands queued before the transaction's first key"
            ));
        }
        Decision::QueueEarly
    }

    /// Keeps a request of a transaction whose shard is not chosen yet, and answers QUEUED.
    pub(super) fn keep_early(&mut self, request: Bytes) {
        if let Some(transaction) = &mut self.holding.transaction {
            transaction.early.push(request);
        }
        encode::simple_string(&mut self.scratch, b"QUEUED");
        self.reply_local();
    }

    fn exec(&mut self) -> Decision {
        let aborted = self
            .holding
            .transaction
            .as_ref()
            .is_some_and(|transaction| transaction.aborted);
        if aborted {
            self.holding.transaction = None;
            if let Some(pinned) = &mut self.holding.pinned {
                pinned.backend.send_silent(discard_request());
                pinned.in_multi = false;
                pinned.watching = false;
                pinned.done = true;
            }
            encode::error(
                &mut self.scratch,
                b"EXECABORT",
                b"Transaction discarded because of previous errors.",
            );
            self.reply_local();
            return Decision::Done;
        }
        if self.holding.pinned.is_none() {
            let pinned = match self.pool.server_for_key(PLACEHOLDER_KEY) {
                Some(server) => self.pin(server),
                None => {
                    self.holding.transaction = None;
                    return self.no_server();
                }
            };
            if let Err(refusal) = pinned {
                self.holding.transaction = None;
                return self.refuse(refusal, "exec");
            }
        }
        self.holding.transaction = None;
        self.finish_transaction()
    }

    fn discard(&mut self) -> Decision {
        self.holding.transaction = None;
        if self.holding.pinned.is_none() {
            return self.reply_status(b"OK");
        }
        self.finish_transaction()
    }

    /// EXEC or DISCARD on the pinned connection, which then goes back once they are sent.
    fn finish_transaction(&mut self) -> Decision {
        match &mut self.holding.pinned {
            Some(pinned) => {
                pinned.in_multi = false;
                pinned.watching = false;
                pinned.done = true;
                Decision::Held {
                    backend: Rc::clone(&pinned.backend),
                    blocking: false,
                }
            }
            None => Decision::Done,
        }
    }

    /// The one shard of a command's keys; `None` after replying the error when they span
    /// shards or no server is live.
    fn shard_of(&mut self, command: &'static Command, args: &FrameArgs<'_, '_>) -> Option<usize> {
        let keys = match command.keys(args) {
            Ok(keys) => keys,
            Err(error) => {
                self.reply_command_error(&error);
                return None;
            }
        };
        let mut shard = None;
        for index in keys {
            let Some(server) = self.pool.server_for_key(args.get(index)) else {
                self.holding.note_refused();
                self.no_server();
                return None;
            };
            if shard.is_some_and(|first| first != server) {
                self.reply_command_error(&command.cross_shard_error());
                return None;
            }
            shard = Some(server);
        }
        shard.or_else(|| self.pool.server_for_key(PLACEHOLDER_KEY))
    }

    /// The connection pinned to `server`, taking one when none is pinned yet. A transaction
    /// that has none sends its MULTI and the requests it queued before, silently, since the
    /// client already has their replies.
    fn pin(&mut self, server: usize) -> Result<Rc<Backend>, Refusal> {
        if let Some(pinned) = &mut self.holding.pinned {
            if pinned.server != server {
                return Err(Refusal::OtherShard {
                    held: pinned.server,
                    wanted: server,
                });
            }
            pinned.done = false;
            return Ok(Rc::clone(&pinned.backend));
        }
        let backend = self
            .pool
            .acquire_dedicated(server, self.state.protocol)
            .map_err(|exhausted| Refusal::Exhausted {
                limit: exhausted.limit,
            })?;
        let in_multi = self.holding.transaction.is_some();
        if let Some(transaction) = &mut self.holding.transaction {
            backend.send_silent(multi_request());
            for request in transaction.early.drain(..) {
                backend.send_silent(request);
            }
        }
        self.holding.pinned = Some(Pinned {
            server,
            backend: Rc::clone(&backend),
            watching: false,
            in_multi,
            done: false,
        });
        Ok(backend)
    }

    /// Replies why `command` cannot run; inside MULTI the transaction then fails at EXEC.
    fn refuse(&mut self, refusal: Refusal, command: &str) -> Decision {
        self.holding.note_refused();
        match refusal {
            Refusal::OtherShard { held, wanted } => {
                let in_transaction = self.holding.transaction.is_some();
                let pool = Rc::clone(&self.pool);
                self.reply_error(format_args!(
                    "keys of '{command}' are on shard '{}', but this connection's {} is on shard \
                     '{}': a transaction or WATCH covers one shard (use hash tags to keep its \
                     keys together)",
                    pool.server_name(wanted),
                    if in_transaction {
                        "transaction"
                    } else {
                        "WATCH"
                    },
                    pool.server_name(held),
                ))
            }
            Refusal::Exhausted { limit } => self.reply_exhausted(command, limit),
        }
    }

    /// `command` found every dedicated connection of the pool on this worker held.
    pub(super) fn reply_exhausted(&mut self, command: &str, limit: usize) -> Decision {
        let pool = Rc::clone(&self.pool);
        self.reply_error(format_args!(
            "'{command}' needs a server connection of its own, and all {limit} of pool '{}' on \
             this worker are held (dedicated_connections)",
            pool.pool().name
        ))
    }

    fn reply_status(&mut self, status: &[u8]) -> Decision {
        encode::simple_string(&mut self.scratch, status);
        self.reply_local();
        Decision::Done
    }

    pub(super) fn reply_error(&mut self, message: std::fmt::Arguments<'_>) -> Decision {
        encode::error_fmt(&mut self.scratch, b"ERR", message);
        self.reply_local();
        Decision::Done
    }

    /// Closes the client once its replies are written when its pinned connection was lost
    /// with a transaction or WATCH on it, so its next commands cannot run outside the
    /// transaction; with `explain` (requests have just arrived) it first answers one error
    /// saying so. Gives back connections whose blocking call was answered, or lost.
    pub(super) fn check_held_connections(&mut self, explain: bool) {
        let lost = self.holding.lost_pinned_state();
        self.holding.release_answered();
        if !lost || !matches!(self.closing, Closing::Open) {
            return;
        }
        tracing::debug!(
            "client {}: the server connection holding its transaction or WATCH was lost; \
             closing the client",
            self.state.id
        );
        if explain {
            self.reply_error(format_args!(
                "the server connection holding this client's transaction or WATCH was lost; \
                 the transaction is discarded and the connection closes"
            ));
        }
        self.closing = Closing::AfterReplies;
    }
}

fn multi_request() -> Bytes {
    Bytes::from_static(b"*1\r\n$5\r\nMULTI\r\n")
}

fn unwatch_request() -> Bytes {
    Bytes::from_static(b"*1\r\n$7\r\nUNWATCH\r\n")
}

fn discard_request() -> Bytes {
    Bytes::from_static(b"*1\r\n$7\r\nDISCARD\r\n")
}
