//! `crc16`: CRC-16/XMODEM (poly 0x1021, MSB first, init 0) accumulated in a `u32` that is
//! never masked, so bits 16..31 keep the high bytes of the two previous CRC values.

const POLY: u16 = 0x1021;

#[expect(
    clippy::indexing_slicing,
    reason = "evaluated at compile time, with i < 256"
)]
const TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ POLY
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

pub(super) fn hash(key: &[u8]) -> u32 {
    key.iter().fold(0u32, |crc, &b| {
        (crc << 8) ^ u32::from(entry((crc >> 8) as u8 ^ b))
    })
}

/// The table's entry for `byte`.
#[expect(
    clippy::indexing_slicing,
    reason = "a u8 is always below the table's 256 entries"
)]
fn entry(byte: u8) -> u16 {
    TABLE[usize::from(byte)]
}
