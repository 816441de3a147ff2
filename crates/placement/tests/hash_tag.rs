//! `hash_tag` selection edge cases (§4 of the reference).

use rampart_placement::HashTag;

fn braces() -> HashTag {
    HashTag::new(b"{}").expect("two bytes")
}

#[test]
fn new_needs_exactly_two_bytes() {
    assert_eq!(
        HashTag::new(b"{}"),
        Some(HashTag {
            open: b'{',
            close: b'}'
        })
    );
    assert_eq!(
        HashTag::new(b"$$"),
        Some(HashTag {
            open: b'$',
            close: b'$'
        })
    );
    assert_eq!(HashTag::new(b""), None);
    assert_eq!(HashTag::new(b"{"), None);
    assert_eq!(HashTag::new(b"{}}"), None);
}

#[test]
fn braces_select_the_tag() {
    let tag = braces();
    assert_eq!(tag.select(b"user:{user1}:ids"), b"user1");
    assert_eq!(tag.select(b"{user1}"), b"user1");
    assert_eq!(tag.select(b"a{b}c{d}"), b"b");
    assert_eq!(tag.select(b"a{b{c}"), b"b{c");
}

#[test]
fn only_the_first_open_counts() {
    assert_eq!(braces().select(b"a{}{b}"), b"a{}{b}");
}

#[test]
fn missing_or_misordered_close_hashes_whole_key() {
    let tag = braces();
    assert_eq!(tag.select(b"{abc"), b"{abc");
    assert_eq!(tag.select(b"a}b{c"), b"a}b{c");
    assert_eq!(tag.select(b"plain"), b"plain");
    assert_eq!(tag.select(b"{"), b"{");
    assert_eq!(tag.select(b""), b"");
}

#[test]
fn empty_tag_hashes_whole_key() {
    assert_eq!(braces().select(b"{}"), b"{}");
    assert_eq!(braces().select(b"x{}y"), b"x{}y");
}

#[test]
fn same_open_and_close() {
    let tag = HashTag::new(b"$$").expect("two bytes");
    assert_eq!(tag.select(b"$tag$rest"), b"tag");
    assert_eq!(tag.select(b"$$rest"), b"$$rest");
    assert_eq!(tag.select(b"$tag"), b"$tag");
    assert_eq!(tag.select(b"a$b$c$d"), b"b");
}
