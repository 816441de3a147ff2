//! `hash_tag`: which part of a key is hashed. Only the bytes between the first opening
//! character and the next closing character count, and only when that tag is not empty.

/// A two-byte `hash_tag` such as `{}` or `$$`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashTag {
    pub open: u8,
    pub close: u8,
}

impl HashTag {
    /// The tag spelled by a `hash_tag:` value, which must be exactly two bytes.
    pub fn new(spec: &[u8]) -> Option<HashTag> {
        match spec {
            [open, close] => Some(HashTag {
                open: *open,
                close: *close,
            }),
            _ => None,
        }
    }

    /// The bytes of `key` that nutcracker hashes: those strictly between the first `open` and
    /// the first `close` after it; the whole key when either is missing or the tag is empty.
    pub fn select<'k>(&self, key: &'k [u8]) -> &'k [u8] {
        let Some(open_at) = key.iter().position(|&b| b == self.open) else {
            return key;
        };
        let after_open = key.get(open_at + 1..).unwrap_or_default();
        match after_open.iter().position(|&b| b == self.close) {
            Some(len) if len > 0 => after_open.get(..len).unwrap_or(key),
            _ => key,
        }
    }
}
