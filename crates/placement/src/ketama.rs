//! The ketama continuum: each live server gets a weighted share of 160 points per live server,
//! computed in single-precision float exactly as nutcracker does; the points are the four
//! little-endian words of `MD5("name-i")`, sorted; a hash maps to the first point at or above it,
//! wrapping to the lowest point. A bucket table indexed by the top bits of the hash narrows that
//! search to the few points sharing those bits.

use crate::Node;
use crate::hash::md5;

/// Points produced by one MD5 digest.
const POINTS_PER_HASH: usize = 4;
/// Points one server gets when all weights are equal.
const POINTS_PER_SERVER: f32 = 160.0;
/// nutcracker formats `name-i` into a 273-byte buffer, so at most 272 bytes are hashed.
const MAX_HOST_LEN: usize = 272;

/// Most top-of-hash bits the bucket table is indexed by (a table of 2^16 + 1 entries).
const MAX_BUCKET_BITS: u32 = 16;

#[derive(Debug, Clone, Copy)]
struct Point {
    value: u32,
    server: usize,
}

/// The sorted ring of points of the servers that were live when it was built.
#[derive(Debug, Clone)]
pub(crate) struct Continuum {
    /// Point values, ascending.
    values: Vec<u32>,
    /// `servers[i]` owns the point `values[i]`.
    servers: Vec<usize>,
    /// `bucket_starts[b]` is the index of the first point whose value's top bits are `b` or
    /// more, so the points of bucket `b` are `bucket_starts[b]..bucket_starts[b + 1]`; the
    /// table has one entry per bucket and a last one equal to the number of points.
    bucket_starts: Vec<usize>,
    /// A value's bucket is `value >> bucket_shift`.
    bucket_shift: u32,
}

/// Points for a server of `weight` among `nlive` live servers weighing `total_weight`, with
/// nutcracker's float arithmetic: `4 * floorf((float)(pct * 160 / 4 * nlive + 1e-10))`.
fn points_per_server(weight: u32, total_weight: u64, nlive: usize) -> usize {
    let pct = weight as f32 / total_weight as f32;
    let per_hash = ((pct * POINTS_PER_SERVER) / POINTS_PER_HASH as f32) * nlive as f32;
    let hashes = ((f64::from(per_hash) + 1e-10) as f32).floor();
    // `as` saturates: a NaN or negative count (impossible with weights >= 1) becomes 0.
    POINTS_PER_HASH * hashes as usize
}

impl Continuum {
    /// Builds the ring over `live`, the indices (ascending) of the live servers among `nodes`.
    pub(crate) fn build(nodes: &[Node], live: &[usize]) -> Continuum {
        let live_nodes = || {
            live.iter()
                .filter_map(|&i| nodes.get(i).map(|node| (i, node)))
        };
        let total_weight: u64 = live_nodes().map(|(_, node)| u64::from(node.weight)).sum();
        let mut points = Vec::new();
        let mut host = Vec::new();
        for (server, node) in live_nodes() {
            let count = points_per_server(node.weight, total_weight, live.len());
            for i in 0..count / POINTS_PER_HASH {
                host.clear();
                host.extend_from_slice(&node.name);
                host.extend_from_slice(format!("-{i}").as_bytes());
                host.truncate(MAX_HOST_LEN);
                points.extend(
                    md5::words(&host)
                        .into_iter()
                        .map(|value| Point { value, server }),
                );
            }
        }
        // Stable, like glibc's merge-sort qsort: equal values keep server order.
        points.sort_by_key(|point| point.value);
        let values: Vec<u32> = points.iter().map(|point| point.value).collect();
        // About one point per bucket: the bucket count is the point count rounded up to a power
        // of two, at least 2 so that the shift stays below 32.
        let bucket_bits = values
            .len()
            .next_power_of_two()
            .trailing_zeros()
            .clamp(1, MAX_BUCKET_BITS);
        let bucket_shift = u32::BITS - bucket_bits;
        let bucket_starts = (0..=1u32 << bucket_bits)
            .map(|bucket| values.partition_point(|&value| (value >> bucket_shift) < bucket))
            .collect();
        Continuum {
            values,
            servers: points.iter().map(|point| point.server).collect(),
            bucket_starts,
            bucket_shift,
        }
    }

    /// The server owning `hash`: the first point >= `hash`, else the first point of the ring.
    ///
    /// Points of earlier buckets are below `hash` and the first point of the next bucket is
    /// above it, so only the points of `hash`'s own bucket need searching.
    pub(crate) fn lookup(&self, hash: u32) -> Option<usize> {
        let bucket = (hash >> self.bucket_shift) as usize;
        let (start, end) = match self.bucket_starts.get(bucket..bucket + 2) {
            Some(&[start, end]) => (start, end),
            _ => (0, self.values.len()),
        };
        let in_bucket = self.values.get(start..end).unwrap_or_default();
        let at = start + in_bucket.partition_point(|&value| value < hash);
        self.servers
            .get(at)
            .or_else(|| self.servers.first())
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(weights: &[u32]) -> Vec<Node> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| Node {
                name: format!("10.0.0.{i}:6379").into_bytes(),
                weight,
            })
            .collect()
    }

    /// Points of each configured server in a ring built over `live`.
    fn counts(weights: &[u32], live: &[usize]) -> Vec<usize> {
        let continuum = Continuum::build(&nodes(weights), live);
        let mut counts = vec![0; weights.len()];
        for &server in &continuum.servers {
            counts[server] += 1;
        }
        counts
    }

    #[test]
    fn weighted_point_counts() {
        assert_eq!(counts(&[1, 2, 5], &[0, 1, 2]), [60, 120, 300]);
        assert_eq!(
            counts(&[1, 1, 1, 1, 100], &[0, 1, 2, 3, 4]),
            [4, 4, 4, 4, 768]
        );
        assert_eq!(counts(&[100_000, 1], &[0, 1]), [316, 0]);
    }

    #[test]
    fn live_subset_renormalises_weights() {
        assert_eq!(counts(&[1, 2, 3], &[0, 1]), [104, 212, 0]);
    }

    #[test]
    fn equal_weights_give_160_points_except_float_quirks() {
        for n in [1usize, 2, 3, 4, 10, 24, 26] {
            assert_eq!(points_per_server(1, n as u64, n), 160, "n={n}");
        }
        for n in [25usize, 47, 50, 55, 61, 71, 94, 100, 200] {
            assert_eq!(points_per_server(1, n as u64, n), 156, "n={n}");
        }
        assert!(
            counts(&[1; 25], &(0..25).collect::<Vec<_>>())
                .iter()
                .all(|&c| c == 156)
        );
    }

    #[test]
    fn float_quirk_count_matches_reference() {
        let quirky = (1..=2000usize)
            .filter(|&n| points_per_server(1, n as u64, n) == 156)
            .count();
        assert_eq!(quirky, 207);
    }

    #[test]
    fn worked_example_ring() {
        let nodes: Vec<Node> = ["127.0.0.1:6379", "127.0.0.1:6380", "127.0.0.1:6381"]
            .into_iter()
            .map(|name| Node {
                name: name.as_bytes().to_vec(),
                weight: 1,
            })
            .collect();
        assert_eq!(
            md5::words(b"127.0.0.1:6379-0"),
            [2344048390, 135292586, 1821951742, 687840887]
        );
        let continuum = Continuum::build(&nodes, &[0, 1, 2]);
        let ring: Vec<(u32, usize)> = continuum
            .values
            .iter()
            .copied()
            .zip(continuum.servers.iter().copied())
            .collect();
        assert_eq!(ring.len(), 480);
        assert_eq!(ring[..3], [(20075150, 0), (23409604, 1), (29345296, 1)]);
        assert_eq!(ring.last(), Some(&(4289099568, 2)));
        assert_eq!(continuum.lookup(0), Some(0));
        assert_eq!(continuum.lookup(u32::MAX), Some(0));
        assert_eq!(continuum.lookup(4289099568), Some(2));
    }

    #[test]
    fn long_names_are_truncated_to_272_bytes() {
        let long = |tail: &str| Node {
            name: format!("{}{tail}", "x".repeat(272)).into_bytes(),
            weight: 1,
        };
        let a = Continuum::build(&[long("a")], &[0]);
        let b = Continuum::build(&[long("b")], &[0]);
        let values = |c: &Continuum| c.values.clone();
        assert_eq!(values(&a), values(&b));
        assert_eq!(a.values.len(), 160);
        let first = md5::words("x".repeat(272).as_bytes());
        assert_eq!(values(&a).iter().filter(|v| first.contains(v)).count(), 160);
    }

    /// The plain search the bucket table narrows: a binary search of the whole ring.
    fn lookup_by_full_search(continuum: &Continuum, hash: u32) -> Option<usize> {
        let at = continuum.values.partition_point(|&value| value < hash);
        continuum
            .servers
            .get(at)
            .or_else(|| continuum.servers.first())
            .copied()
    }

    #[test]
    fn bucketed_lookup_matches_full_search() {
        let layouts: [(&[u32], &[usize]); 7] = [
            (&[1], &[0]),
            (&[1, 1, 1], &[0, 1, 2]),
            (&[1, 1, 1], &[0, 2]),
            (&[1, 2, 5], &[0, 1, 2]),
            (&[1, 1, 1, 1, 100], &[0, 1, 2, 3, 4]),
            (&[3; 40], &[1, 5, 6, 7, 20, 39]),
            (&[1; 200], &(0..200).collect::<Vec<_>>()),
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut random_hash = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u32
        };
        for (weights, live) in layouts {
            let continuum = Continuum::build(&nodes(weights), live);
            let edges = continuum
                .values
                .iter()
                .flat_map(|&value| [value.wrapping_sub(1), value, value.wrapping_add(1)]);
            let bucket_edges = (0..=u16::MAX).map(|top| u32::from(top) << 16);
            let hashes = edges
                .chain(bucket_edges)
                .chain([0, 1, u32::MAX - 1, u32::MAX])
                .chain((0..20_000).map(|_| random_hash()));
            for hash in hashes {
                assert_eq!(
                    continuum.lookup(hash),
                    lookup_by_full_search(&continuum, hash),
                    "weights {weights:?}, live {live:?}, hash {hash}"
                );
            }
        }
    }

    #[test]
    fn empty_ring_has_no_server() {
        assert_eq!(Continuum::build(&[], &[]).lookup(7), None);
    }
}
