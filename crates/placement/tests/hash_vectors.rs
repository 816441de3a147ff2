//! Every hash against the vector table of the reference (§3), plus upstream's ketama md5 vectors.

use rampart_placement::HashKind;

const KEYS: [&[u8]; 9] = [
    b"a",
    b"foo",
    b"apple",
    b"123456789",
    b"hello world",
    b"key:1000",
    b"\xff",
    b"\xe4\xbd\xa0\xe5\xa5\xbd",
    b"abcdefghijklmnopqrstuvwxyz",
];

/// One row per hash, in `HashKind::ALL` order; one column per entry of `KEYS`.
const VECTORS: [(HashKind, [u32; 9]); 12] = [
    (
        HashKind::OneAtATime,
        [
            3392050242, 596015325, 2297466611, 3328923845, 1045060183, 1521767476, 2925896852,
            1275633067, 3119901962,
        ],
    ),
    (
        HashKind::Md5,
        [
            3111502092, 3675831724, 3195025439, 2498230565, 3141252702, 3586336007, 3561969920,
            2674444926, 3620994243,
        ],
    ),
    (
        HashKind::Crc16,
        [
            31879, 205303702, 3662830516, 2257596867, 4060494820, 366246570, 7920, 1120778135,
            424960940,
        ],
    ),
    (
        HashKind::Crc32,
        [26807, 3187, 10542, 19444, 3402, 25586, 32512, 20642, 19495],
    ),
    (
        HashKind::Crc32a,
        [
            3904355907, 2356372769, 2838417488, 3421780262, 222957957, 1676837091, 4278190080,
            1352841281, 1277644989,
        ],
    ),
    (
        HashKind::Fnv1_64,
        [
            2248259518, 1805727027, 473199127, 737744598, 2979073647, 1123819815, 2046707744,
            223760903, 174274776,
        ],
    ),
    (
        HashKind::Fnv1a64,
        [
            2248273036, 4275688823, 1488911807, 600231420, 37540583, 1220681747, 2046707310,
            931594915, 3452142242,
        ],
    ),
    (
        HashKind::Fnv1_32,
        [
            84696446, 1083137555, 67176023, 605325334, 1418570095, 1032065511, 4210270944,
            1586576519, 2174595032,
        ],
    ),
    (
        HashKind::Fnv1a32,
        [
            3826002220, 2851307223, 280767167, 3146166556, 3582672807, 375777235, 4193493326,
            718964643, 2965113986,
        ],
    ),
    (
        HashKind::Hsieh,
        [
            2472816263, 1993659431, 3738850110, 3841726064, 1333368947, 2106251928, 44489640,
            2370877334, 3678650127,
        ],
    ),
    (
        HashKind::Murmur,
        [
            1262581116, 3303027599, 4142305122, 3077965456, 1578702139, 3313089737, 3679652508,
            1243698303, 127046282,
        ],
    ),
    (
        HashKind::Jenkins,
        [
            3768813200, 2583187353, 1442444624, 427260662, 355681275, 2979807287, 3784723880,
            3776367849, 718112419,
        ],
    ),
];

#[test]
fn every_hash_matches_the_vector_table() {
    for (kind, expected) in VECTORS {
        for (key, want) in KEYS.iter().zip(expected) {
            assert_eq!(
                kind.hash(key),
                want,
                "{} of {:?}",
                kind.name(),
                String::from_utf8_lossy(key)
            );
        }
    }
}

#[test]
fn table_covers_every_hash_in_order() {
    let kinds: Vec<HashKind> = VECTORS.iter().map(|(kind, _)| *kind).collect();
    assert_eq!(kinds, HashKind::ALL);
}

#[test]
fn empty_key_values() {
    assert_eq!(HashKind::Md5.hash(b""), 3649838548);
    assert_eq!(HashKind::Fnv1_64.hash(b""), 2216829733);
    assert_eq!(HashKind::Fnv1a64.hash(b""), 2216829733);
    assert_eq!(HashKind::Fnv1_32.hash(b""), 2166136261);
    assert_eq!(HashKind::Fnv1a32.hash(b""), 2166136261);
    assert_eq!(HashKind::Jenkins.hash(b""), 3735928572);
    for kind in [
        HashKind::OneAtATime,
        HashKind::Crc16,
        HashKind::Crc32,
        HashKind::Crc32a,
        HashKind::Hsieh,
        HashKind::Murmur,
    ] {
        assert_eq!(kind.hash(b""), 0, "{}", kind.name());
    }
}

#[test]
fn crc16_keeps_unmasked_high_bits() {
    assert_eq!(HashKind::Crc16.hash(b"123456789"), 0x869031C3);
    assert_eq!(HashKind::Crc32a.hash(b"123456789"), 0xCBF43926);
}

#[test]
fn ketama_md5_point_vectors() {
    use md5::{Digest, Md5};
    let digest: [u8; 16] = Md5::digest(b"server1-8").into();
    let word =
        |i: usize| u32::from_le_bytes([digest[i], digest[i + 1], digest[i + 2], digest[i + 3]]);
    assert_eq!(word(0), 3853726576);
    assert_eq!(word(12), 2667054752);
    assert_eq!(HashKind::Md5.hash(b"server1-8"), 3853726576);
}

#[test]
fn names_round_trip() {
    for kind in HashKind::ALL {
        assert_eq!(HashKind::from_name(kind.name()), Some(kind));
    }
    assert_eq!(HashKind::from_name("FNV1A_64"), None);
    assert_eq!(HashKind::from_name("fnv1a_64"), Some(HashKind::Fnv1a64));
}

#[test]
fn long_and_odd_lengths_do_not_panic() {
    let key: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    for kind in HashKind::ALL {
        for len in 0..=key.len() {
            let _ = kind.hash(&key[..len]);
        }
    }
}
