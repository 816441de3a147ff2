//! The failover tests' read/write load: one client thread through the proxy, alternating GETs
//! of random data keys and SETs of fresh keys on each shard in turn, recording every request's
//! outcome and timing; and what it saw, for the verdict and its failure messages.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::random::Rng;
use super::resp::{Client, Reply};
use super::sentinel_cluster::{Routes, SHARD_NAMES, value_of};
use super::wait_until;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Get,
    Set,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A GET that returned nil or another value than written (or a SET that did not say OK
    /// nor fail).
    Wrong(String),
    /// An error reply or a broken connection.
    Error(String),
}

#[derive(Debug, Clone)]
pub struct Event {
    pub started: Instant,
    pub finished: Instant,
    pub kind: Kind,
    pub shard: usize,
    pub key: String,
    pub outcome: Outcome,
}

impl Event {
    /// A successful SET to `shard` that started at or after `since`.
    pub fn is_write_ok(&self, shard: usize, since: Instant) -> bool {
        self.kind == Kind::Set
            && self.shard == shard
            && self.started >= since
            && self.outcome == Outcome::Ok
    }
}

/// One client alternating GETs of random data keys and SETs of fresh `w:<n>` keys (shard A,
/// shard B, A, ...), one request at a time, paced lightly.
pub struct Load {
    stop: Arc<AtomicBool>,
    events: Arc<Mutex<Vec<Event>>>,
    thread: Option<JoinHandle<()>>,
}

impl Load {
    pub fn start(port: u16, routes: &Arc<Routes>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let events = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, events, routes) =
                (Arc::clone(&stop), Arc::clone(&events), Arc::clone(routes));
            std::thread::spawn(move || run_load(port, &routes, &stop, &events))
        };
        let load = Load {
            stop,
            events,
            thread: Some(thread),
        };
        wait_until("the load to get going", Duration::from_secs(10), || {
            load.events()
                .iter()
                .filter(|event| event.outcome == Outcome::Ok)
                .count()
                >= 20
        });
        load
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// When the first write to `shard` that started at or after `since` succeeded.
    pub fn first_write_ok(&self, shard: usize, since: Instant) -> Option<Instant> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .find(|event| event.is_write_ok(shard, since))
            .map(|event| event.finished)
    }

    /// Waits until a write to `shard` started after `since` succeeded; returns how long after
    /// `since` it finished.
    pub fn wait_recovery(
        &self,
        shard: usize,
        since: Instant,
        log: impl Fn() -> String,
    ) -> Duration {
        let limit = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(at) = self.first_write_ok(shard, since) {
                return at - since;
            }
            assert!(
                Instant::now() < limit,
                "writes to {} never succeeded again after the kill; last errors: {:?}\n\
                 rampart log:\n{}",
                SHARD_NAMES[shard],
                self.events()
                    .iter()
                    .rev()
                    .filter(|event| matches!(event.outcome, Outcome::Error(_)))
                    .take(5)
                    .map(|event| event.outcome.clone())
                    .collect::<Vec<_>>(),
                log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Lets the load run on for `span` (pacing, not synchronisation).
    pub fn run_for(&self, span: Duration) {
        let until = Instant::now() + span;
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(mut self) -> Report {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the load thread");
        }
        Report {
            events: self.events(),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn run_load(port: u16, routes: &Routes, stop: &AtomicBool, events: &Mutex<Vec<Event>>) {
    let mut client: Option<Client> = None;
    let mut rng = Rng::new(0);
    let mut next = vec![0usize; routes.writes.len()];
    let mut turn: usize = 0;
    while !stop.load(Ordering::Acquire) {
        let Some(connection) = client.as_mut() else {
            client = Client::connect(port).ok();
            if client.is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            continue;
        };
        turn += 1;
        let started = Instant::now();
        let (kind, shard, key, result) = if turn.is_multiple_of(2) {
            let (key, shard) = &routes.data[rng.below(routes.data.len() as u64) as usize];
            let result = connection.try_call(&[b"GET", key.as_bytes()]);
            (Kind::Get, *shard, key.clone(), result)
        } else {
            let shard = (turn / 2) % routes.writes.len();
            let keys = &routes.writes[shard];
            let key = keys[next[shard] % keys.len()].clone();
            next[shard] += 1;
            let result = connection.try_call(&[b"SET", key.as_bytes(), value_of(&key).as_bytes()]);
            (Kind::Set, shard, key, result)
        };
        let outcome = match (&result, kind) {
            (Err(error), _) => Outcome::Error(format!("connection: {error}")),
            (Ok(Reply::Error(error)), _) => Outcome::Error(error.clone()),
            (Ok(reply), Kind::Set) if reply.is_ok() => Outcome::Ok,
            (Ok(Reply::Bulk(Some(value))), Kind::Get) if *value == value_of(&key).into_bytes() => {
                Outcome::Ok
            }
            (Ok(reply), _) => Outcome::Wrong(format!("{reply:?}")),
        };
        if result.is_err() {
            client = None;
        }
        events.lock().unwrap().push(Event {
            started,
            finished: Instant::now(),
            kind,
            shard,
            key,
            outcome,
        });
        std::thread::sleep(Duration::from_micros(400));
    }
}

/// What a load saw.
pub struct Report {
    pub events: Vec<Event>,
}

impl Report {
    pub fn requests(&self) -> usize {
        self.events.len()
    }

    pub fn reads(&self) -> usize {
        self.events
            .iter()
            .filter(|event| event.kind == Kind::Get)
            .count()
    }

    pub fn wrong(&self) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|event| matches!(event.outcome, Outcome::Wrong(_)))
            .collect()
    }

    pub fn errors(&self) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|event| matches!(event.outcome, Outcome::Error(_)))
            .collect()
    }

    /// Errors of requests started at or after `since`.
    pub fn errors_since(&self, since: Instant) -> Vec<&Event> {
        self.errors()
            .into_iter()
            .filter(|event| event.started >= since)
            .collect()
    }

    /// Keys of `shard` that a SET started at or after `since` wrote successfully.
    pub fn written_since(&self, shard: usize, since: Instant) -> Vec<String> {
        self.events
            .iter()
            .filter(|event| event.is_write_ok(shard, since))
            .map(|event| event.key.clone())
            .collect()
    }

    /// Fails, describing them (times from `origin`, with rampart's `log`), if any request got
    /// a wrong answer or an error.
    pub fn assert_clean(&self, origin: Instant, log: &str) {
        let (wrong, errors) = (self.wrong(), self.errors());
        assert!(
            wrong.is_empty() && errors.is_empty(),
            "wrong answers:\n{}\nerrors:\n{}\nrampart log:\n{log}",
            Report::describe(&wrong, origin),
            Report::describe(&errors, origin)
        );
    }

    /// A short description of the first few bad events, for failure messages.
    pub fn describe(events: &[&Event], origin: Instant) -> String {
        events
            .iter()
            .take(8)
            .map(|event| {
                format!(
                    "{:?} {} ({}) at +{:.3}s..+{:.3}s: {:?}",
                    event.kind,
                    event.key,
                    SHARD_NAMES[event.shard],
                    offset(event.started, origin),
                    offset(event.finished, origin),
                    event.outcome
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Seconds from `origin` to `at`, negative when `at` is earlier.
pub fn offset(at: Instant, origin: Instant) -> f64 {
    if at >= origin {
        (at - origin).as_secs_f64()
    } else {
        -(origin - at).as_secs_f64()
    }
}
