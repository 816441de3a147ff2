//! The tests' one source of pseudo-random numbers: SplitMix64, the same sequence from the same
//! seed on every run, for workloads, values and keys that look random yet reproduce exactly.

/// SplitMix64's increment (the golden ratio in 64 bits).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// A SplitMix64 generator. Its outputs are a bijection of its state, which only ever adds
/// `GAMMA`, so generators with distinct seeds give distinct first outputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GAMMA);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// The next `len` bytes of the sequence.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(len + 8);
        while bytes.len() < len {
            bytes.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        bytes.truncate(len);
        bytes
    }
}

/// `prefix` and a hex number that looks random, a different one for each `n`: sequential keys
/// like `k1`, `k2`... mostly land on one server with fnv1a_64 and ketama.
pub fn scrambled(prefix: &str, n: usize) -> String {
    format!("{prefix}{:x}", Rng::new(n as u64).next_u64())
}
