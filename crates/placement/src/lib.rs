//! Key placement, bit-exact with nutcracker 0.5.0: the twelve hash functions, `hash_tag`
//! selection, and the ketama / modula / random distributions that map a key to a server index.
//! Pure logic: no I/O, no addresses; servers are known only by node name and weight.
//!
//! The tree mirrors the path a key takes: [`tag`] picks the bytes to hash, [`hash`] hashes
//! them, and [`Placement`] hands the hash to the pool's distribution ([`ketama`], [`modula`]
//! or [`random`]), which names a server.

// Nothing a client, a config file or a peer sends may panic the process: every index, unwrap
// and panic in code that ships is a compile error (tests are free to use them).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unreachable))]
#![cfg_attr(not(test), deny(clippy::todo, clippy::unimplemented))]

pub mod hash;
mod ketama;
mod modula;
mod placement;
mod random;
mod tag;

pub use hash::HashKind;
pub use placement::{Distribution, Node, Placement};
pub use tag::HashTag;
