//! Test support shared by the unit tests of several modules.

/// A tiny deterministic PRNG (xorshift64*), so the randomised tests need no crate.
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    /// The next pseudo-random number.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A pseudo-random number in `0..bound`.
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}
