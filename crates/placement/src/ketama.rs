//! The ketama continuum: each live server gets a weighted share of 160 points per live server,
//! computed in single-precision float exactly as nutcracker does; the points are the four
//! little-endian words of `MD5("name-i")`, sorted; a hash maps to the first point at or above it,
//! wrapping to the lowest point.

use crate::Node;
use crate::hash::md5;

/// Points produced by one MD5 digest.
const POINTS_PER_HASH: usize = 4;
/// Points one server gets when all weights are equal.
const POINTS_PER_SERVER: f32 = 160.0;
/// nutcracker formats `name-i` into a 273-byte buffer, so at most 272 bytes are hashed.
const MAX_HOST_LEN: usize = 272;

#[derive(Debug, Clone, Copy)]
struct Point {
    value: u32,
    server: usize,
}

/// The sorted ring of points of the servers that were live when it was built.
#[derive(Debug, Clone)]
pub(crate) struct Continuum {
    points: Vec<Point>,
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
        Continuum { points }
    }

    /// The server owning `hash`: the first point >= `hash`, else the first point of the ring.
    pub(crate) fn lookup(&self, hash: u32) -> Option<usize> {
        let at = self.points.partition_point(|point| point.value < hash);
        self.points
            .get(at)
            .or_else(|| self.points.first())
            .map(|point| point.server)
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
        for point in &continuum.points {
            counts[point.server] += 1;
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
            .points
            .iter()
            .map(|point| (point.value, point.server))
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
        let values = |c: &Continuum| c.points.iter().map(|p| p.value).collect::<Vec<_>>();
        assert_eq!(values(&a), values(&b));
        assert_eq!(a.points.len(), 160);
        let first = md5::words("x".repeat(272).as_bytes());
        assert_eq!(values(&a).iter().filter(|v| first.contains(v)).count(), 160);
    }

    #[test]
    fn empty_ring_has_no_server() {
        assert_eq!(Continuum::build(&[], &[]).lookup(7), None);
    }
}
