//! `jenkins`: Bob Jenkins' lookup3 `hashlittle` with initval 13, bytes read little-endian and
//! unsigned. The empty key returns the initial `c` without mixing.

const INITVAL: u32 = 13;

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn finish(mut a: u32, mut b: u32, mut c: u32) -> u32 {
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(14));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(11));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(25));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(16));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(4));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(14));
    c ^= b;
    c.wrapping_sub(b.rotate_left(24))
}

/// The three little-endian words of a block of at most 12 bytes, zero-padded.
fn words(block: &[u8]) -> [u32; 3] {
    let mut padded = [0u8; 12];
    for (dst, src) in padded.iter_mut().zip(block) {
        *dst = *src;
    }
    super::le_words(&padded)
}

pub(super) fn hash(key: &[u8]) -> u32 {
    let init = 0xdead_beef_u32
        .wrapping_add(key.len() as u32)
        .wrapping_add(INITVAL);
    let (mut a, mut b, mut c) = (init, init, init);
    if key.is_empty() {
        return c;
    }
    // Every 12-byte block but the last is mixed; the last (1..=12 bytes) goes to `finish`.
    let last_len = (key.len() - 1) % 12 + 1;
    let (body, last) = key.split_at(key.len() - last_len);
    for block in body.chunks_exact(12) {
        let [x, y, z] = words(block);
        a = a.wrapping_add(x);
        b = b.wrapping_add(y);
        c = c.wrapping_add(z);
        mix(&mut a, &mut b, &mut c);
    }
    let [x, y, z] = words(last);
    finish(a.wrapping_add(x), b.wrapping_add(y), c.wrapping_add(z))
}
