//! Modula distribution: every live server owns `weight` consecutive slots, in server order, and
//! a hash maps to slot `hash % total_slots`.

use crate::Node;

/// The slot table, stored as runs (one per live server) so huge weights cost no memory.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    /// `(end, server)`: the server owns the slots below `end` not owned by an earlier run.
    runs: Vec<(u64, usize)>,
    total: u64,
}

impl Slots {
    /// Lays out the slots of `live`, the indices (ascending) of the live servers among `nodes`.
    pub(crate) fn build(nodes: &[Node], live: &[usize]) -> Slots {
        let mut total = 0u64;
        let mut runs = Vec::with_capacity(live.len());
        for &server in live {
            if let Some(node) = nodes.get(server)
                && node.weight > 0
            {
                total += u64::from(node.weight);
                runs.push((total, server));
            }
        }
        Slots { runs, total }
    }

    /// The server owning slot `hash % total_slots`.
    pub(crate) fn lookup(&self, hash: u32) -> Option<usize> {
        let slot = u64::from(hash).checked_rem(self.total)?;
        let run = self.runs.partition_point(|&(end, _)| end <= slot);
        self.runs.get(run).map(|&(_, server)| server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_slots_in_server_order() {
        let nodes: Vec<Node> = [3, 1, 2]
            .into_iter()
            .map(|weight| Node {
                name: b"n".to_vec(),
                weight,
            })
            .collect();
        let slots = Slots::build(&nodes, &[0, 1, 2]);
        let layout: Vec<_> = (0..12).map(|h| slots.lookup(h)).collect();
        let expected = [0, 0, 0, 1, 2, 2, 0, 0, 0, 1, 2, 2].map(Some);
        assert_eq!(layout, expected);

        let without_first = Slots::build(&nodes, &[1, 2]);
        let layout: Vec<_> = (0..6).map(|h| without_first.lookup(h)).collect();
        assert_eq!(layout, [1, 2, 2, 1, 2, 2].map(Some));
    }

    #[test]
    fn no_slots_no_server() {
        assert_eq!(Slots::build(&[], &[]).lookup(5), None);
    }
}
