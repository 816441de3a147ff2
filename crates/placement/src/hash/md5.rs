//! `md5`: MD5 of the key, read as little-endian 32-bit words. The first word is the key hash;
//! ketama uses all four words of `md5("name-i")` as ring points.

use md5::{Digest, Md5};

/// The four little-endian words of `MD5(data)`.
pub(crate) fn words(data: &[u8]) -> [u32; 4] {
    let digest: [u8; 16] = Md5::digest(data).into();
    super::le_words(&digest)
}

pub(super) fn hash(key: &[u8]) -> u32 {
    let [first, ..] = words(key);
    first
}
