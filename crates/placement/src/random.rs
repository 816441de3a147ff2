//! Random distribution: each key goes to a uniformly random live server, weights ignored and
//! the key never hashed (nutcracker uses `random() % nlive`). A small splitmix64 generator keeps
//! the crate free of dependencies and the lookup free of allocation.

/// The live servers to choose from and the generator that chooses.
#[derive(Debug, Clone)]
pub(crate) struct Picker {
    live: Vec<usize>,
    state: u64,
}

impl Picker {
    pub(crate) fn new(live: &[usize], seed: u64) -> Picker {
        Picker {
            live: live.to_vec(),
            state: seed,
        }
    }

    /// Replaces the candidates, keeping the generator's position.
    pub(crate) fn set_live(&mut self, live: &[usize]) {
        self.live.clear();
        self.live.extend_from_slice(live);
    }

    pub(crate) fn reseed(&mut self, seed: u64) {
        self.state = seed;
    }

    /// splitmix64: every seed, zero included, gives a full-period sequence.
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn pick(&mut self) -> Option<usize> {
        let n = self.live.len() as u64;
        let at = self.next_u64().checked_rem(n)?;
        self.live.get(at as usize).copied()
    }
}
