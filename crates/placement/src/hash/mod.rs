//! The twelve hash functions of nutcracker's `hash:` directive, one file each as in its
//! `hashkit/`, and the [`HashKind`] dispatch between them. All return nutcracker's `uint32_t`.

mod crc16;
mod crc32;
mod fnv;
mod hsieh;
mod jenkins;
pub(crate) mod md5;
mod murmur;
mod one_at_a_time;

/// One of nutcracker's twelve hash functions, named as in nutcracker.yml's `hash:` directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashKind {
    OneAtATime,
    Md5,
    Crc16,
    Crc32,
    Crc32a,
    Fnv1_64,
    Fnv1a64,
    Fnv1_32,
    Fnv1a32,
    Hsieh,
    Murmur,
    Jenkins,
}

impl HashKind {
    /// Every hash, in the order nutcracker documents them.
    pub const ALL: [HashKind; 12] = [
        HashKind::OneAtATime,
        HashKind::Md5,
        HashKind::Crc16,
        HashKind::Crc32,
        HashKind::Crc32a,
        HashKind::Fnv1_64,
        HashKind::Fnv1a64,
        HashKind::Fnv1_32,
        HashKind::Fnv1a32,
        HashKind::Hsieh,
        HashKind::Murmur,
        HashKind::Jenkins,
    ];

    /// The name used in nutcracker.yml.
    pub fn name(self) -> &'static str {
        match self {
            HashKind::OneAtATime => "one_at_a_time",
            HashKind::Md5 => "md5",
            HashKind::Crc16 => "crc16",
            HashKind::Crc32 => "crc32",
            HashKind::Crc32a => "crc32a",
            HashKind::Fnv1_64 => "fnv1_64",
            HashKind::Fnv1a64 => "fnv1a_64",
            HashKind::Fnv1_32 => "fnv1_32",
            HashKind::Fnv1a32 => "fnv1a_32",
            HashKind::Hsieh => "hsieh",
            HashKind::Murmur => "murmur",
            HashKind::Jenkins => "jenkins",
        }
    }

    /// Parses a `hash:` value; exact and case-sensitive, as nutcracker does.
    pub fn from_name(name: &str) -> Option<HashKind> {
        HashKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// Hashes `key` exactly as nutcracker's function of this name does on x86-64. The empty key
    /// is hashed too (nutcracker itself never does: see [`crate::Placement::key_hash`]).
    pub fn hash(self, key: &[u8]) -> u32 {
        match self {
            HashKind::OneAtATime => one_at_a_time::hash(key),
            HashKind::Md5 => md5::hash(key),
            HashKind::Crc16 => crc16::hash(key),
            HashKind::Crc32 => crc32::hash_libmemcached(key),
            HashKind::Crc32a => crc32::hash_ieee(key),
            HashKind::Fnv1_64 => fnv::fnv1_64(key),
            HashKind::Fnv1a64 => fnv::fnv1a_64(key),
            HashKind::Fnv1_32 => fnv::fnv1_32(key),
            HashKind::Fnv1a32 => fnv::fnv1a_32(key),
            HashKind::Hsieh => hsieh::hash(key),
            HashKind::Murmur => murmur::hash(key),
            HashKind::Jenkins => jenkins::hash(key),
        }
    }
}

/// The little-endian 32-bit words of `bytes`, `N` of them; words `bytes` is too short for stay 0.
fn le_words<const N: usize>(bytes: &[u8]) -> [u32; N] {
    let mut words = [0u32; N];
    for (word, chunk) in words.iter_mut().zip(bytes.as_chunks::<4>().0) {
        *word = u32::from_le_bytes(*chunk);
    }
    words
}

/// A key byte widened through x86-64's signed `char`: 0x80..=0xFF become 0xFFFFFF80..=0xFFFFFFFF.
fn sx(byte: u8) -> u32 {
    byte as i8 as i32 as u32
}

/// A key byte widened through signed `char` into 64 bits.
fn sx64(byte: u8) -> u64 {
    byte as i8 as i64 as u64
}
