//! Probe keys: for every shard of a pool, a key of the form `rampart:health:<n>` that the
//! pool's placement sends to that shard, so that a request for it travels through the proxy to
//! exactly that shard. Pure: no I/O.

use rampart_placement::{Distribution, Placement};

/// The fixed part of every probe key.
pub const KEY_PREFIX: &str = "rampart:health:";

/// How many candidate keys (`n` = 0, 1, 2, ...) the search tries before it gives up on the
/// shards still without a key (a `hash_tag` can make every candidate hash alike).
pub const SEARCH_LIMIT: u32 = 100_000;

/// The `n`th candidate key.
pub fn candidate(n: u32) -> Vec<u8> {
    format!("{KEY_PREFIX}{n}").into_bytes()
}

/// For each of the placement's servers, in server order, the first candidate key it owns, or
/// `None` when none of the first [`SEARCH_LIMIT`] candidates lands there. The random
/// distribution owns no key; every server then gets `None`.
pub fn shard_keys(placement: &mut Placement, distribution: Distribution) -> Vec<Option<Vec<u8>>> {
    let mut keys: Vec<Option<Vec<u8>>> = vec![None; placement.nodes().len()];
    if distribution == Distribution::Random {
        return keys;
    }
    let mut missing = keys.len();
    for n in 0..SEARCH_LIMIT {
        if missing == 0 {
            break;
        }
        let key = candidate(n);
        let owner = placement
            .server_for_key(&key)
            .and_then(|index| keys.get_mut(index));
        if let Some(slot @ None) = owner {
            *slot = Some(key);
            missing -= 1;
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_placement::{HashKind, HashTag, Node};

    fn placement(distribution: Distribution, tag: Option<HashTag>, servers: usize) -> Placement {
        let nodes = (0..servers)
            .map(|index| Node {
                name: format!("server{index}").into_bytes(),
                weight: 1,
            })
            .collect();
        Placement::new(HashKind::Fnv1a64, tag, distribution, nodes)
    }

    fn assert_every_shard_owns_its_key(distribution: Distribution, servers: usize) {
        let mut ring = placement(distribution, None, servers);
        let keys = shard_keys(&mut ring, distribution);
        assert_eq!(keys.len(), servers);
        for (index, key) in keys.iter().enumerate() {
            let key = key.as_ref().expect("a key for every shard");
            assert!(key.starts_with(KEY_PREFIX.as_bytes()));
            assert_eq!(ring.server_for_key(key), Some(index));
        }
    }

    #[test]
    fn ketama_finds_a_key_for_every_shard() {
        for servers in [1, 2, 3, 7, 40] {
            assert_every_shard_owns_its_key(Distribution::Ketama, servers);
        }
    }

    #[test]
    fn modula_finds_a_key_for_every_shard() {
        for servers in [1, 2, 5, 16] {
            assert_every_shard_owns_its_key(Distribution::Modula, servers);
        }
    }

    #[test]
    fn random_has_no_per_shard_keys() {
        let mut ring = placement(Distribution::Random, None, 3);
        assert_eq!(
            shard_keys(&mut ring, Distribution::Random),
            vec![None, None, None]
        );
    }

    #[test]
    fn the_first_candidates_are_taken() {
        let mut ring = placement(Distribution::Modula, None, 1);
        assert_eq!(
            shard_keys(&mut ring, Distribution::Modula),
            vec![Some(b"rampart:health:0".to_vec())]
        );
    }

    #[test]
    fn a_hash_tag_that_selects_a_constant_leaves_shards_without_a_key() {
        // The tag "::" selects "health" from every candidate: all of them hash alike.
        let tag = HashTag::new(b"::");
        assert!(tag.is_some());
        let mut ring = placement(Distribution::Ketama, tag, 4);
        let keys = shard_keys(&mut ring, Distribution::Ketama);
        assert_eq!(keys.iter().filter(|key| key.is_some()).count(), 1);
    }
}
