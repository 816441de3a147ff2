//! `crc32a` (the standard reflected CRC-32 of zlib) and `crc32` (libmemcached's variant:
//! bits 16..30 of the standard CRC, a 15-bit value).

const POLY: u32 = 0xEDB8_8320;

#[expect(
    clippy::indexing_slicing,
    reason = "evaluated at compile time, with i < 256"
)]
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// Standard CRC-32 (IEEE 802.3, as zlib computes it).
pub(super) fn hash_ieee(key: &[u8]) -> u32 {
    !key.iter()
        .fold(u32::MAX, |crc, &b| (crc >> 8) ^ entry(crc as u8 ^ b))
}

/// libmemcached's `crc32`: only 15 bits of the standard CRC survive.
pub(super) fn hash_libmemcached(key: &[u8]) -> u32 {
    (hash_ieee(key) >> 16) & 0x7FFF
}

/// The table's entry for `byte`.
#[expect(
    clippy::indexing_slicing,
    reason = "a u8 is always below the table's 256 entries"
)]
fn entry(byte: u8) -> u32 {
    TABLE[usize::from(byte)]
}
