//! The four FNV hashes: `fnv1_64`, `fnv1a_64` (nutcracker's default, computed in 32 bits),
//! `fnv1_32` and `fnv1a_32`. Bytes enter through signed char.

use super::{sx, sx64};

const FNV_64_INIT: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_64_PRIME: u64 = 0x0000_0100_0000_01b3;
const FNV_32_INIT: u32 = 2_166_136_261;
const FNV_32_PRIME: u32 = 16_777_619;

/// 64-bit FNV-1, truncated to its low 32 bits.
pub(super) fn fnv1_64(key: &[u8]) -> u32 {
    let h = key
        .iter()
        .fold(FNV_64_INIT, |h, &b| h.wrapping_mul(FNV_64_PRIME) ^ sx64(b));
    h as u32
}

/// nutcracker's "64-bit" FNV-1a, which keeps its state in a `uint32_t`: the low halves of the
/// 64-bit offset basis and prime, multiplied mod 2^32.
pub(super) fn fnv1a_64(key: &[u8]) -> u32 {
    key.iter().fold(FNV_64_INIT as u32, |h, &b| {
        (h ^ sx(b)).wrapping_mul(FNV_64_PRIME as u32)
    })
}

pub(super) fn fnv1_32(key: &[u8]) -> u32 {
    key.iter()
        .fold(FNV_32_INIT, |h, &b| h.wrapping_mul(FNV_32_PRIME) ^ sx(b))
}

pub(super) fn fnv1a_32(key: &[u8]) -> u32 {
    key.iter()
        .fold(FNV_32_INIT, |h, &b| (h ^ sx(b)).wrapping_mul(FNV_32_PRIME))
}
