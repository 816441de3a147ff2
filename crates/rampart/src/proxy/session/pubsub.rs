//! A client's subscriptions. A channel (and a shard channel) lives on the shard its name
//! hashes to, as if it were a key, so every publisher and subscriber of it meets on that
//! shard; a pattern is subscribed on every shard. The client gets one link per shard it
//! listens on (`subscriber`), and confirmations written here, with its subscription count
//! over every shard, released once the shards confirmed. In RESP2 a subscribed client may
//! only (un)subscribe, PING, QUIT and RESET, as in Redis; in RESP3 anything.

use std::collections::HashMap;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use rampart_commands::{Arguments, Command, Kind, LocalCommand, PubSubCommand, SessionCommand};
use rampart_protocol::{Protocol, encode};

use super::{Decision, FrameArgs, Session, parser_and_queue_limits};
use crate::proxy::reply_queue::OutputLimits;
use crate::proxy::subscriber::{Confirmations, SubscriberLink};

/// Unread bytes that disconnect a subscribed client at once: Redis's default for its pub/sub
/// clients (`client-output-buffer-limit pubsub 32mb 8mb 60`), unless the pool's are lower.
const PUBSUB_OUTPUT_LIMIT: usize = 32 << 20;
/// Unread bytes that disconnect a subscribed client held above them for
/// `client_output_soft_seconds`: Redis's pub/sub default.
const PUBSUB_OUTPUT_SOFT_LIMIT: usize = 8 << 20;

/// Which kind of subscription a command makes or ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Channel,
    Pattern,
    ShardChannel,
}

impl Family {
    fn of(command: PubSubCommand) -> Option<(Family, bool)> {
        Some(match command {
            PubSubCommand::Subscribe => (Family::Channel, true),
            PubSubCommand::Unsubscribe => (Family::Channel, false),
            PubSubCommand::PSubscribe => (Family::Pattern, true),
            PubSubCommand::PUnsubscribe => (Family::Pattern, false),
            PubSubCommand::SSubscribe => (Family::ShardChannel, true),
            PubSubCommand::SUnsubscribe => (Family::ShardChannel, false),
            PubSubCommand::Publish => return None,
        })
    }

    /// The word Redis uses in the confirmation, and sends to the server.
    fn word(self, subscribe: bool) -> &'static [u8] {
        match (self, subscribe) {
            (Family::Channel, true) => b"subscribe",
            (Family::Channel, false) => b"unsubscribe",
            (Family::Pattern, true) => b"psubscribe",
            (Family::Pattern, false) => b"punsubscribe",
            (Family::ShardChannel, true) => b"ssubscribe",
            (Family::ShardChannel, false) => b"sunsubscribe",
        }
    }
}

/// The subscriptions of one client.
pub(super) struct Subscriptions {
    confirmations: Rc<Confirmations>,
    /// Channel to shard.
    channels: HashMap<Bytes, usize>,
    patterns: Vec<Bytes>,
    shard_channels: HashMap<Bytes, usize>,
    /// The link to each shard, while the client listens there.
    links: Vec<Option<Rc<SubscriberLink>>>,
}

impl Subscriptions {
    pub(super) fn new(confirmations: Rc<Confirmations>) -> Subscriptions {
        Subscriptions {
            confirmations,
            channels: HashMap::new(),
            patterns: Vec::new(),
            shard_channels: HashMap::new(),
            links: Vec::new(),
        }
    }

    /// Subscribed to something: Redis's subscribed mode.
    pub(super) fn active(&self) -> bool {
        !self.channels.is_empty() || !self.patterns.is_empty() || !self.shard_channels.is_empty()
    }

    /// Holds a link or waits for a confirmation: the session must stay.
    pub(super) fn holds_links(&self) -> bool {
        self.links.iter().any(Option::is_some) || self.confirmations.waiting()
    }

    /// The count Redis puts in a confirmation: channels and patterns, or shard channels.
    fn count(&self, family: Family) -> usize {
        match family {
            Family::ShardChannel => self.shard_channels.len(),
            Family::Channel | Family::Pattern => self.channels.len() + self.patterns.len(),
        }
    }

    /// Closes every link (the client leaves, or RESET).
    pub(super) fn close_all(&mut self) {
        self.confirmations.release_all();
        for link in self.links.drain(..).flatten() {
            link.close();
        }
        self.channels.clear();
        self.patterns.clear();
        self.shard_channels.clear();
    }

    /// Closes the links of shards the client no longer listens on, once their confirmations
    /// are in.
    fn close_unused(&mut self) {
        if self.confirmations.waiting() {
            return;
        }
        let patterns = !self.patterns.is_empty();
        for (server, slot) in self.links.iter_mut().enumerate() {
            let used = patterns
                || self.channels.values().any(|&shard| shard == server)
                || self.shard_channels.values().any(|&shard| shard == server);
            if !used && let Some(link) = slot.take() {
                link.close();
            }
        }
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        self.close_all();
    }
}

impl Session {
    /// In RESP2 subscribed mode, only (un)subscribing, PING, QUIT and RESET: anything else
    /// gets Redis's error. `None`: the command may run.
    pub(super) fn check_subscribed_mode(
        &mut self,
        command: &'static Command,
        args: &FrameArgs<'_, '_>,
    ) -> Option<Decision> {
        if self.state.protocol != Protocol::Resp2 || !self.subscriptions.active() {
            return None;
        }
        match command.kind {
            Kind::PubSub(which) if which != PubSubCommand::Publish => None,
            Kind::Local(LocalCommand::Quit) | Kind::Session(SessionCommand::Reset) => None,
            Kind::Local(LocalCommand::Ping) => {
                self.subscribed_ping(args);
                Some(Decision::Done)
            }
            _ => Some(self.reply_error(format_args!(
                "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / \
                 RESET are allowed in this context",
                command.name
            ))),
        }
    }

    /// PING in RESP2 subscribed mode: `["pong", message]`, as Redis answers it there.
    fn subscribed_ping(&mut self, args: &FrameArgs<'_, '_>) {
        encode::array_header(&mut self.scratch, 2);
        encode::bulk_string(&mut self.scratch, b"pong");
        let message = if args.count() > 1 { args.get(1) } else { b"" };
        encode::bulk_string(&mut self.scratch, message);
        self.reply_local();
    }

    /// PUBLISH and the subscription commands.
    pub(super) fn pubsub_command(
        &mut self,
        which: PubSubCommand,
        args: &FrameArgs<'_, '_>,
    ) -> Decision {
        let Some((family, subscribe)) = Family::of(which) else {
            return match self.pool.server_for_key(args.get(1)) {
                Some(server) => Decision::Forward {
                    server,
                    access: super::Access::Write,
                },
                None => self.no_server(),
            };
        };
        let names: Vec<Bytes> = (1..args.count())
            .map(|index| Bytes::copy_from_slice(args.get(index)))
            .collect();
        if subscribe {
            for name in names {
                self.subscribe(family, name);
            }
        } else {
            let names = if names.is_empty() {
                self.subscribed_names(family)
            } else {
                names
            };
            if names.is_empty() {
                let reply = self.confirmation(family.word(false), None, 0);
                self.queue.push_ready(reply);
            }
            for name in names {
                self.unsubscribe(family, name);
            }
        }
        self.apply_output_limits();
        Decision::Done
    }

    /// A subscribed client gets Redis's pub/sub output limits (or the pool's, when lower): a
    /// subscriber that stops reading while messages pour in is disconnected at 32 MB, not 1 GB.
    pub(super) fn apply_output_limits(&mut self) {
        let (_, pool_limits) = parser_and_queue_limits(self.pool.limits());
        let limits = if self.subscriptions.active() {
            let lower = |limit: Option<usize>, pubsub: usize| {
                Some(limit.map_or(pubsub, |limit| limit.min(pubsub)))
            };
            OutputLimits {
                hard: lower(pool_limits.hard, PUBSUB_OUTPUT_LIMIT),
                soft: lower(pool_limits.soft, PUBSUB_OUTPUT_SOFT_LIMIT),
            }
        } else {
            pool_limits
        };
        self.queue.set_output_limits(limits);
    }

    fn subscribed_names(&self, family: Family) -> Vec<Bytes> {
        match family {
            Family::Channel => self.subscriptions.channels.keys().cloned().collect(),
            Family::Pattern => self.subscriptions.patterns.clone(),
            Family::ShardChannel => self.subscriptions.shard_channels.keys().cloned().collect(),
        }
    }

    fn subscribe(&mut self, family: Family, name: Bytes) {
        let word = family.word(true);
        let known = match family {
            Family::Channel => self.subscriptions.channels.contains_key(&name),
            Family::Pattern => self.subscriptions.patterns.contains(&name),
            Family::ShardChannel => self.subscriptions.shard_channels.contains_key(&name),
        };
        if known {
            let reply = self.confirmation(word, Some(&name), self.subscriptions.count(family));
            self.queue.push_ready(reply);
            return;
        }
        let servers: Vec<usize> = match family {
            Family::Pattern => (0..self.pool.pool().servers.len()).collect(),
            Family::Channel | Family::ShardChannel => match self.pool.server_for_key(&name) {
                Some(server) => vec![server],
                None => {
                    self.no_server();
                    return;
                }
            },
        };
        let mut links = Vec::with_capacity(servers.len());
        for &server in &servers {
            match self.link_to(server) {
                Ok(link) => links.push(link),
                Err(limit) => {
                    self.reply_exhausted(&String::from_utf8_lossy(word), limit);
                    self.subscriptions.close_unused();
                    return;
                }
            }
        }
        let first = servers.first().copied().unwrap_or_default();
        match family {
            Family::Channel => {
                self.subscriptions.channels.insert(name.clone(), first);
            }
            Family::Pattern => self.subscriptions.patterns.push(name.clone()),
            Family::ShardChannel => {
                self.subscriptions
                    .shard_channels
                    .insert(name.clone(), first);
            }
        }
        let reply = self.confirmation(word, Some(&name), self.subscriptions.count(family));
        self.expect_confirmations(word, name, &links, reply);
    }

    fn unsubscribe(&mut self, family: Family, name: Bytes) {
        let word = family.word(false);
        let servers: Vec<usize> = match family {
            Family::Channel => self
                .subscriptions
                .channels
                .remove(&name)
                .into_iter()
                .collect(),
            Family::ShardChannel => self
                .subscriptions
                .shard_channels
                .remove(&name)
                .into_iter()
                .collect(),
            Family::Pattern => match self.subscriptions.patterns.iter().position(|p| *p == name) {
                Some(at) => {
                    self.subscriptions.patterns.remove(at);
                    (0..self.subscriptions.links.len()).collect()
                }
                None => Vec::new(),
            },
        };
        let links: Vec<Rc<SubscriberLink>> = servers
            .iter()
            .filter_map(|&server| self.subscriptions.links.get(server).cloned().flatten())
            .collect();
        let reply = self.confirmation(word, Some(&name), self.subscriptions.count(family));
        if links.is_empty() {
            self.queue.push_ready(reply);
        } else {
            self.expect_confirmations(word, name, &links, reply);
        }
    }

    /// Sends `word name` on every link, and queues `reply` for when they all confirmed.
    fn expect_confirmations(
        &mut self,
        word: &'static [u8],
        name: Bytes,
        links: &[Rc<SubscriberLink>],
        reply: Bytes,
    ) {
        encode::request(&mut self.scratch, [word, &name[..]]);
        let request = self.scratch.split().freeze();
        let seq = self.queue.push_waiting(request.len());
        self.subscriptions
            .confirmations
            .expect(word, name, links.len(), seq, reply);
        for link in links {
            link.send(request.clone());
        }
    }

    /// The link to `server`, made on first use; `Err` with the bound when none is free.
    fn link_to(&mut self, server: usize) -> Result<Rc<SubscriberLink>, usize> {
        if self.subscriptions.links.len() <= server {
            self.subscriptions.links.resize(server + 1, None);
        }
        if let Some(Some(link)) = self.subscriptions.links.get(server) {
            return Ok(Rc::clone(link));
        }
        let link = self
            .pool
            .subscriber_link(
                server,
                self.state.protocol,
                &self.subscriptions.confirmations,
            )
            .map_err(|exhausted| exhausted.limit)?;
        if let Some(slot) = self.subscriptions.links.get_mut(server) {
            *slot = Some(Rc::clone(&link));
        }
        Ok(link)
    }

    /// A confirmation as Redis writes it: `[word, name, count]`, a push in RESP3.
    fn confirmation(&self, word: &[u8], name: Option<&[u8]>, count: usize) -> Bytes {
        let mut out = BytesMut::new();
        match self.state.protocol {
            Protocol::Resp2 => encode::array_header(&mut out, 3),
            Protocol::Resp3 => out.extend_from_slice(b">3\r\n"),
        }
        encode::bulk_string(&mut out, word);
        match name {
            Some(name) => encode::bulk_string(&mut out, name),
            None => encode::null(&mut out, self.state.protocol),
        }
        encode::integer(&mut out, i64::try_from(count).unwrap_or(i64::MAX));
        out.freeze()
    }

    /// Disconnects the client once its replies are written when a link failed (its
    /// subscriptions are not moved: it subscribes again when it reconnects); closes the links
    /// of shards it no longer listens on.
    pub(super) fn check_subscriptions(&mut self) {
        if self.subscriptions.confirmations.lost() && matches!(self.closing, super::Closing::Open) {
            self.closing = super::Closing::AfterReplies;
            self.subscriptions.close_all();
            return;
        }
        self.subscriptions.close_unused();
    }
}
