//! `one_at_a_time`: Bob Jenkins' one-at-a-time hash, starting from 0, bytes through signed char.

use super::sx;

pub(super) fn hash(key: &[u8]) -> u32 {
    let mut h: u32 = 0;
    for &b in key {
        h = h.wrapping_add(sx(b));
        h = h.wrapping_add(h << 10);
        h ^= h >> 6;
    }
    h = h.wrapping_add(h << 3);
    h ^= h >> 11;
    h.wrapping_add(h << 15)
}
