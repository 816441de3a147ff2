//! `murmur`: MurmurHash2 (m = 0x5bd1e995, r = 24) seeded with `0xdeadbeef * len`.

const M: u32 = 0x5bd1_e995;
const R: u32 = 24;

pub(super) fn hash(key: &[u8]) -> u32 {
    // nutcracker truncates the length to 32 bits for the seed, as `(uint32_t)length`.
    let len = key.len() as u32;
    let mut h = 0xdead_beef_u32.wrapping_mul(len) ^ len;
    let blocks = key.chunks_exact(4);
    let tail = blocks.remainder();
    for block in blocks {
        let mut k = match block {
            [a, b, c, d] => u32::from_le_bytes([*a, *b, *c, *d]),
            _ => 0,
        };
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u32::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}
