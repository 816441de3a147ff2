//! The index behind [`lookup`](crate::lookup): a hash table over the names of the top-level
//! commands, built at compile time, in which a name is found in any ASCII case without copying
//! it and, for names of up to eight bytes, without a byte-by-byte comparison.
//!
//! A name is reduced to a [`NameKey`]: its length and up to eight of its bytes, lowered with a
//! few word-wide operations. For a name of at most eight bytes those are all of its bytes, so
//! equal keys mean equal names; longer names are compared in full once their keys match.

use crate::command::Command;
use crate::table::COMMANDS;

/// `log2` of the number of slots of [`SLOTS`].
const SLOT_BITS: u32 = 10;
/// Slots of the table: over three per command, so that most names are found at the first.
const SLOT_COUNT: usize = 1 << SLOT_BITS;
/// A free slot: no index of [`COMMANDS`], so looking it up finds nothing.
const FREE: u16 = u16::MAX;
/// The longest name whose [`NameKey`] holds every byte.
const KEYED_LEN: usize = 8;

/// Indices into [`COMMANDS`], placed by linear probing: the search for a name starts at its
/// key's [`NameKey::slot`] and walks forward to the first free slot.
static SLOTS: [u16; SLOT_COUNT] = slots();

/// `KEYS[i]` is the key of `COMMANDS[i]`.
static KEYS: [NameKey; COMMANDS.len()] = keys();

/// A name's length and up to eight of its bytes, ASCII letters lowered: the first four and
/// the last four (overlapping when the name is shorter than eight), or for a name shorter than
/// four its first, middle and last byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NameKey {
    bytes: u64,
    len: usize,
}

impl NameKey {
    const fn of(name: &[u8]) -> NameKey {
        let bytes = match (name, name) {
            ([a, b, c, d, ..], [.., w, x, y, z]) => {
                let first = u32::from_le_bytes([*a, *b, *c, *d]);
                let last = u32::from_le_bytes([*w, *x, *y, *z]);
                (first as u64) << 32 | last as u64
            }
            ([first, middle, last], _) => short_name_bytes(*first, *middle, *last),
            ([first, last], _) => short_name_bytes(*first, *last, *last),
            ([only], _) => short_name_bytes(*only, *only, *only),
            _ => 0,
        };
        NameKey {
            bytes: lower_ascii_bytes(bytes),
            len: name.len(),
        }
    }

    /// Where the search for this key starts.
    const fn slot(self) -> usize {
        const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
        let mixed = (self.bytes ^ self.len as u64).wrapping_mul(MULTIPLIER);
        (mixed >> (u64::BITS - SLOT_BITS)) as usize
    }
}

/// The key bytes of a name shorter than four: its first, middle and last byte.
const fn short_name_bytes(first: u8, middle: u8, last: u8) -> u64 {
    (first as u64) << 16 | (middle as u64) << 8 | last as u64
}

/// Each of the eight bytes of `word` through [`u8::to_ascii_lowercase`].
const fn lower_ascii_bytes(word: u64) -> u64 {
    const EACH_BYTE: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x80 * EACH_BYTE;
    // Adding to a byte's low seven bits cannot carry into the next byte (0x7F + 0x3F < 0x100);
    // the sum's high bit tells whether those bits reach `A`, or pass `Z`.
    let low_bits = word & !HIGH_BITS;
    let from_a = low_bits + (0x80 - b'A' as u64) * EACH_BYTE;
    let past_z = low_bits + (0x80 - b'Z' as u64 - 1) * EACH_BYTE;
    let upper_case = from_a & !past_z & !word & HIGH_BITS;
    // 0x80 >> 2 is 0x20, the bit that sets an upper-case letter in lower case.
    word | upper_case >> 2
}

#[expect(
    clippy::indexing_slicing,
    reason = "runs only at compile time, for SLOTS: an index out of bounds fails the build"
)]
const fn slots() -> [u16; SLOT_COUNT] {
    assert!(COMMANDS.len() < SLOT_COUNT / 2 && COMMANDS.len() < FREE as usize);
    let mut slots = [FREE; SLOT_COUNT];
    let mut index = 0;
    while index < COMMANDS.len() {
        let mut slot = NameKey::of(COMMANDS[index].name.as_bytes()).slot();
        while slots[slot] != FREE {
            slot = (slot + 1) % SLOT_COUNT;
        }
        slots[slot] = index as u16;
        index += 1;
    }
    slots
}

#[expect(
    clippy::indexing_slicing,
    reason = "runs only at compile time, for KEYS: an index out of bounds fails the build"
)]
const fn keys() -> [NameKey; COMMANDS.len()] {
    let mut keys = [NameKey { bytes: 0, len: 0 }; COMMANDS.len()];
    let mut index = 0;
    while index < COMMANDS.len() {
        keys[index] = NameKey::of(COMMANDS[index].name.as_bytes());
        index += 1;
    }
    keys
}

/// The top-level command named `name` in any ASCII case.
pub(crate) fn find(name: &[u8]) -> Option<&'static Command> {
    let key = NameKey::of(name);
    let mut slot = key.slot();
    loop {
        let index = usize::from(*SLOTS.get(slot)?);
        let command = COMMANDS.get(index)?;
        if KEYS.get(index) == Some(&key)
            && (name.len() <= KEYED_LEN || equals_lowered(command.name.as_bytes(), name))
        {
            return Some(command);
        }
        slot = (slot + 1) % SLOT_COUNT;
    }
}

/// Whether `name` lowered is the lower-case table name `table`.
fn equals_lowered(table: &[u8], name: &[u8]) -> bool {
    table.len() == name.len()
        && table
            .iter()
            .zip(name)
            .all(|(&table_byte, name_byte)| table_byte == name_byte.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowers_every_byte_in_every_position() {
        for position in 0..8 {
            for byte in 0..=u8::MAX {
                for background in [0u64, u64::MAX, 0x5a41_7b60_405b_7f80] {
                    let shift = 8 * position;
                    let word = background & !(0xFF << shift) | u64::from(byte) << shift;
                    let expected =
                        u64::from_le_bytes(word.to_le_bytes().map(|b| b.to_ascii_lowercase()));
                    assert_eq!(lower_ascii_bytes(word), expected, "{word:#x}");
                }
            }
        }
    }

    #[test]
    fn most_names_are_found_at_their_first_slot() {
        let probes: usize = COMMANDS
            .iter()
            .map(|command| {
                let start = NameKey::of(command.name.as_bytes()).slot();
                (0..SLOT_COUNT)
                    .position(|step| {
                        let slot = (start + step) % SLOT_COUNT;
                        COMMANDS.get(usize::from(SLOTS[slot])) == Some(command)
                    })
                    .unwrap()
            })
            .sum();
        assert!(probes * 4 < COMMANDS.len(), "{probes} extra probes");
    }
}
