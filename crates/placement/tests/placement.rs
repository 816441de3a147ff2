//! Key -> server through the public API: the reference's worked example (§5.1), the three
//! tables of Appendix A, modula weights, ejection, single-server and random pools.

use rampart_placement::{Distribution, HashKind, HashTag, Node, Placement};

fn nodes(spec: &[(&str, u32)]) -> Vec<Node> {
    spec.iter()
        .map(|&(name, weight)| Node {
            name: name.as_bytes().to_vec(),
            weight,
        })
        .collect()
}

fn check(placement: &mut Placement, table: &[(&[u8], usize)]) {
    for &(key, want) in table {
        assert_eq!(
            placement.server_for_key(key),
            Some(want),
            "key {:?}",
            String::from_utf8_lossy(key)
        );
    }
}

#[test]
fn worked_example_fnv1a_64_ketama() {
    let mut p = Placement::new(
        HashKind::Fnv1a64,
        None,
        Distribution::Ketama,
        nodes(&[
            ("127.0.0.1:6379", 1),
            ("127.0.0.1:6380", 1),
            ("127.0.0.1:6381", 1),
        ]),
    );
    assert_eq!(p.key_hash(b"foo"), 4275688823);
    assert_eq!(p.key_hash(b"bar"), 322520602);
    check(
        &mut p,
        &[
            (b"foo", 2),
            (b"bar", 0),
            (b"apple", 0),
            (b"key:1", 1),
            (b"key:2", 1),
            (b"key:3", 1),
            (b"hello world", 0),
        ],
    );
}

#[test]
fn readme_pool_beta() {
    // server1..server4 on ports 6380..6383: index i is port 6380 + i.
    let mut p = Placement::new(
        HashKind::Fnv1a64,
        HashTag::new(b"{}"),
        Distribution::Ketama,
        nodes(&[
            ("server1", 1),
            ("server2", 1),
            ("server3", 1),
            ("server4", 1),
        ]),
    );
    assert_eq!(p.key_hash(b""), 0);
    assert_eq!(p.key_hash(b"user:{user1}:ids"), p.key_hash(b"user1"));
    check(
        &mut p,
        &[
            (b"user:{user1}:ids", 2),
            (b"user:{user1}:tweets", 2),
            (b"user:user1:ids", 1),
            (b"foo", 0),
            (b"bar", 3),
            (b"baz", 3),
            (b"apple", 0),
            (b"key:1000", 3),
            (b"", 2),
            (b"{}", 2),
            (b"\xff", 3),
        ],
    );
}

#[test]
fn modula_crc32a() {
    // Config order .3, .1, .2 sorts to .1, .2, .3.
    let mut p = Placement::new(
        HashKind::Crc32a,
        None,
        Distribution::Modula,
        nodes(&[
            ("10.0.0.1:6379", 1),
            ("10.0.0.2:6379", 1),
            ("10.0.0.3:6379", 1),
        ]),
    );
    check(
        &mut p,
        &[
            (b"foo", 2),
            (b"bar", 2),
            (b"baz", 0),
            (b"apple", 2),
            (b"key:1000", 0),
            (b"", 0),
        ],
    );
}

#[test]
fn ketama_murmur_weighted_with_port_11211_name() {
    // Sorted by (length, bytes): "10.0.0.3" (port 11211, weight 3) comes first.
    let mut p = Placement::new(
        HashKind::Murmur,
        None,
        Distribution::Ketama,
        nodes(&[("10.0.0.3", 3), ("10.0.0.1:6379", 1), ("10.0.0.2:6379", 2)]),
    );
    let (dot3, dot1, dot2) = (0, 1, 2);
    check(
        &mut p,
        &[
            (b"foo", dot3),
            (b"bar", dot2),
            (b"baz", dot1),
            (b"apple", dot1),
            (b"key:1000", dot3),
            (b"", dot3),
        ],
    );
}

#[test]
fn modula_uses_weighted_slots() {
    let mut p = Placement::new(
        HashKind::Crc32a,
        None,
        Distribution::Modula,
        nodes(&[("b", 3), ("zz", 1), ("aaa", 2)]),
    );
    let mut counts = [0usize; 3];
    for i in 0..6000 {
        let key = format!("key:{i}");
        let server = p.server_for_key(key.as_bytes()).expect("live");
        assert_eq!(
            server,
            [0, 0, 0, 1, 2, 2][p.key_hash(key.as_bytes()) as usize % 6]
        );
        counts[server] += 1;
    }
    assert!(counts[0] > counts[2] && counts[2] > counts[1], "{counts:?}");
}

#[test]
fn ejection_rebuilds_like_a_smaller_pool() {
    let all = nodes(&[("a:1", 1), ("b:2", 2), ("c:3", 3)]);
    for distribution in [Distribution::Ketama, Distribution::Modula] {
        let mut p = Placement::new(HashKind::Fnv1a64, None, distribution, all.clone());
        p.rebuild(&[true, true, false]);
        let mut smaller = Placement::new(HashKind::Fnv1a64, None, distribution, all[..2].to_vec());
        for i in 0..3000 {
            let key = format!("k{i}");
            let got = p.server_for_key(key.as_bytes());
            assert!(matches!(got, Some(0 | 1)), "{got:?}");
            assert_eq!(got, smaller.server_for_key(key.as_bytes()));
        }
        p.rebuild(&[true, true, true]);
        let mut fresh = Placement::new(HashKind::Fnv1a64, None, distribution, all.clone());
        for i in 0..3000 {
            let key = format!("k{i}");
            assert_eq!(
                p.server_for_key(key.as_bytes()),
                fresh.server_for_key(key.as_bytes())
            );
        }
    }
}

#[test]
fn no_live_server_means_no_server_until_one_returns() {
    for distribution in Distribution::ALL {
        let mut p = Placement::new(
            HashKind::Fnv1a64,
            None,
            distribution,
            nodes(&[("a", 1), ("b", 1)]),
        );
        p.rebuild(&[false, false]);
        assert_eq!(p.server_for_key(b"foo"), None);
        p.rebuild(&[]);
        assert_eq!(p.server_for_key(b"foo"), None);
        p.rebuild(&[false, true]);
        assert_eq!(p.server_for_key(b"foo"), Some(1));
    }
}

#[test]
fn single_server_pool_skips_hashing() {
    for distribution in Distribution::ALL {
        let mut p = Placement::new(HashKind::Crc32, None, distribution, nodes(&[("only", 7)]));
        for key in [&b""[..], b"foo", b"\xff\xfe", b"{tag}"] {
            assert_eq!(p.server_for_key(key), Some(0));
        }
        p.rebuild(&[false]);
        assert_eq!(p.server_for_key(b"foo"), None);
    }
}

#[test]
fn empty_pool_has_no_server() {
    for distribution in Distribution::ALL {
        let mut p = Placement::new(HashKind::Md5, None, distribution, Vec::new());
        assert_eq!(p.server_for_key(b"foo"), None);
        p.rebuild(&[true]);
        assert_eq!(p.server_for_key(b"foo"), None);
    }
}

#[test]
fn random_ignores_weights_and_spreads_over_live_servers() {
    let mut p = Placement::new(
        HashKind::Fnv1a64,
        None,
        Distribution::Random,
        nodes(&[("a", 1), ("b", 100), ("c", 1)]),
    )
    .with_seed(42);
    let mut counts = [0usize; 3];
    for _ in 0..3000 {
        counts[p.server_for_key(b"same key").expect("live")] += 1;
    }
    assert!(
        counts.iter().all(|&c| (800..1200).contains(&c)),
        "{counts:?}"
    );

    p.rebuild(&[true, false, true]);
    let mut counts = [0usize; 3];
    for _ in 0..2000 {
        counts[p.server_for_key(b"same key").expect("live")] += 1;
    }
    assert_eq!(counts[1], 0);
    assert!(counts[0] > 800 && counts[2] > 800, "{counts:?}");
}

#[test]
fn random_seed_makes_choices_reproducible() {
    let pool = || {
        Placement::new(
            HashKind::Fnv1a64,
            None,
            Distribution::Random,
            nodes(&[("a", 1), ("b", 1), ("c", 1), ("d", 1)]),
        )
    };
    let picks = |mut p: Placement| -> Vec<Option<usize>> {
        (0..64).map(|_| p.server_for_key(b"k")).collect()
    };
    assert_eq!(picks(pool().with_seed(7)), picks(pool().with_seed(7)));
    assert_ne!(picks(pool().with_seed(7)), picks(pool().with_seed(8)));
}

#[test]
fn distribution_names_round_trip() {
    for distribution in Distribution::ALL {
        assert_eq!(
            Distribution::from_name(distribution.name()),
            Some(distribution)
        );
    }
    assert_eq!(Distribution::from_name("Ketama"), None);
}
