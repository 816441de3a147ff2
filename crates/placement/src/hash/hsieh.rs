//! `hsieh`: Paul Hsieh's SuperFastHash starting from 0, with nutcracker's tail handling
//! (three trailing bytes: the third through signed char; one trailing byte: unsigned).

use super::sx;

fn read16(pair: &[u8]) -> u32 {
    match pair {
        [lo, hi, ..] => u32::from(u16::from_le_bytes([*lo, *hi])),
        _ => 0,
    }
}

pub(super) fn hash(key: &[u8]) -> u32 {
    if key.is_empty() {
        return 0;
    }
    let mut h: u32 = 0;
    let blocks = key.chunks_exact(4);
    let tail = blocks.remainder();
    for block in blocks {
        h = h.wrapping_add(read16(block));
        let tmp = (read16(block.get(2..).unwrap_or_default()) << 11) ^ h;
        h = (h << 16) ^ tmp;
        h = h.wrapping_add(h >> 11);
    }
    match tail {
        [_, _, third] => {
            h = h.wrapping_add(read16(tail));
            h ^= h << 16;
            h ^= sx(*third) << 18;
            h = h.wrapping_add(h >> 11);
        }
        [_, _] => {
            h = h.wrapping_add(read16(tail));
            h ^= h << 11;
            h = h.wrapping_add(h >> 17);
        }
        [only] => {
            h = h.wrapping_add(u32::from(*only));
            h ^= h << 10;
            h = h.wrapping_add(h >> 1);
        }
        _ => {}
    }
    h ^= h << 3;
    h = h.wrapping_add(h >> 5);
    h ^= h << 4;
    h = h.wrapping_add(h >> 17);
    h ^= h << 25;
    h.wrapping_add(h >> 6)
}
