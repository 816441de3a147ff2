//! [`Placement`]: a pool's servers, its hash, `hash_tag` and distribution, and the ring built
//! over the live servers. It answers "which server owns this key?" without allocating.

use crate::ketama::Continuum;
use crate::modula::Slots;
use crate::random::Picker;
use crate::{HashKind, HashTag};

/// How hashed keys are spread over the live servers (`distribution:` directive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Distribution {
    Ketama,
    Modula,
    Random,
}

impl Distribution {
    pub const ALL: [Distribution; 3] = [
        Distribution::Ketama,
        Distribution::Modula,
        Distribution::Random,
    ];

    /// The name used in nutcracker.yml.
    pub fn name(self) -> &'static str {
        match self {
            Distribution::Ketama => "ketama",
            Distribution::Modula => "modula",
            Distribution::Random => "random",
        }
    }

    /// Parses a `distribution:` value; exact and case-sensitive.
    pub fn from_name(name: &str) -> Option<Distribution> {
        Distribution::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
    }
}

/// A server as placement sees it: its node name (the explicit name, else `host:port`, `host`
/// for port 11211, or `path:` for a unix socket) and its weight (>= 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    pub name: Vec<u8>,
    pub weight: u32,
}

/// The ring of one distribution, built over the servers that were live.
#[derive(Debug, Clone)]
enum Ring {
    Ketama(Continuum),
    Modula(Slots),
    Random(Picker),
}

/// Seed of the random distribution unless [`Placement::with_seed`] gives another.
const DEFAULT_SEED: u64 = 0x6e75_7463_7261_636b;

/// Maps keys to server indices for one pool, exactly as nutcracker 0.5.0 does.
#[derive(Debug, Clone)]
pub struct Placement {
    hash: HashKind,
    tag: Option<HashTag>,
    nodes: Vec<Node>,
    ring: Ring,
    nlive: usize,
}

impl Placement {
    /// A placement with every server live. `nodes` are in nutcracker's server order (sorted by
    /// name length, then bytes); index `i` of this slice is "server i".
    pub fn new(
        hash: HashKind,
        tag: Option<HashTag>,
        distribution: Distribution,
        nodes: Vec<Node>,
    ) -> Placement {
        let live: Vec<usize> = (0..nodes.len()).collect();
        let ring = match distribution {
            Distribution::Ketama => Ring::Ketama(Continuum::build(&nodes, &live)),
            Distribution::Modula => Ring::Modula(Slots::build(&nodes, &live)),
            Distribution::Random => Ring::Random(Picker::new(&live, DEFAULT_SEED)),
        };
        Placement {
            hash,
            tag,
            nodes,
            ring,
            nlive: live.len(),
        }
    }

    /// Reseeds the random distribution's generator (other distributions ignore the seed).
    pub fn with_seed(mut self, seed: u64) -> Placement {
        if let Ring::Random(picker) = &mut self.ring {
            picker.reseed(seed);
        }
        self
    }

    /// The servers, in server order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Rebuilds the ring over the servers whose `live[i]` is true (missing entries count as
    /// down), as nutcracker rebuilds its continuum after an ejection or a retry: ketama
    /// renormalises the weights over the live servers. With no server live the previous ring
    /// is kept, as nutcracker keeps it, but [`Placement::server_for_key`] returns `None`.
    pub fn rebuild(&mut self, live: &[bool]) {
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| live.get(i).copied().unwrap_or(false))
            .collect();
        self.nlive = live.len();
        if live.is_empty() {
            return;
        }
        match &mut self.ring {
            Ring::Ketama(continuum) => *continuum = Continuum::build(&self.nodes, &live),
            Ring::Modula(slots) => *slots = Slots::build(&self.nodes, &live),
            Ring::Random(picker) => picker.set_live(&live),
        }
    }

    /// The hash nutcracker computes for this key: the `hash_tag` selection first, and 0 for an
    /// empty selection (the empty key is never hashed).
    pub fn key_hash(&self, key: &[u8]) -> u32 {
        key_hash(self.hash, self.tag, key)
    }

    /// The index of the server owning `key`, or `None` when no server is live. A pool of one
    /// server answers 0 without hashing; the random distribution ignores the key.
    pub fn server_for_key(&mut self, key: &[u8]) -> Option<usize> {
        if self.nlive == 0 {
            return None;
        }
        if self.nodes.len() == 1 {
            return Some(0);
        }
        match &mut self.ring {
            Ring::Ketama(continuum) => continuum.lookup(key_hash(self.hash, self.tag, key)),
            Ring::Modula(slots) => slots.lookup(key_hash(self.hash, self.tag, key)),
            Ring::Random(picker) => picker.pick(),
        }
    }
}

fn key_hash(hash: HashKind, tag: Option<HashTag>, key: &[u8]) -> u32 {
    let selected = match tag {
        Some(tag) => tag.select(key),
        None => key,
    };
    if selected.is_empty() {
        0
    } else {
        hash.hash(selected)
    }
}
