//! The bodies of rampart's fuzz targets: each takes arbitrary bytes, feeds them to one parser
//! of the pure crates, and checks what must hold for every input (no panic, spans inside the
//! input, resumable parsing equal to parsing at once, encode(decode(x)) decoding to the same
//! value). The libFuzzer targets under `fuzz/` call these functions, and
//! `tests/regressions.rs` replays every input saved under `fuzz/regressions/` through them in
//! the ordinary test run. A violated property panics, which is how libFuzzer reports it.

// A violated property panics through `assert!`, which these lints leave alone; nothing else
// here may: an index, unwrap or panic in the harness would report a bug of its own as the
// parser's.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unreachable))]
#![cfg_attr(not(test), deny(clippy::todo, clippy::unimplemented))]

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use rampart_commands::{Arguments, Kind, resolve};
use rampart_protocol::{ReplyParser, RequestLimits, RequestParser, elements};
use rampart_vrrp::{Version, decode, encode, parse_ipv4};

/// A fuzz target's body: it panics when a property fails for `data`.
pub type Target = fn(data: &[u8]);

/// Every target, by the name its directory and libFuzzer binary have.
pub const TARGETS: [(&str, Target); 6] = [
    ("request_framer", request_framer),
    ("reply_framer", reply_framer),
    ("command_keys", command_keys),
    ("nutcracker_yml", nutcracker_yml),
    ("keepalived_conf", keepalived_conf),
    ("vrrp_packet", vrrp_packet),
];

/// How a buffer frames: the length of each complete frame, then whether the rest is an error.
#[derive(Debug, PartialEq, Eq)]
struct Framing {
    lengths: Vec<usize>,
    failed: bool,
}

/// Frames `data` as client requests, whole and in two reads split at a point the input picks;
/// both must agree, every argument must lie inside its frame, and every request goes through
/// the command table.
pub fn request_framer(data: &[u8]) {
    assert_resumable(data, frame_requests);
}

/// Frames `data` at once and in two reads split at a point the input picks; both must agree.
fn assert_resumable(data: &[u8], frame: fn(&[u8], usize) -> Framing) {
    let split_at = data
        .first()
        .map_or(0, |&byte| usize::from(byte) % (data.len() + 1));
    assert_eq!(
        frame(data, data.len()),
        frame(data, split_at),
        "split at {split_at}"
    );
}

/// The limits a request parser frames `data` with: Redis's small ones for a client that has
/// not authenticated when the last byte is odd, else the defaults.
fn request_limits(data: &[u8]) -> RequestLimits {
    match data.last() {
        Some(byte) if byte % 2 == 1 => RequestLimits::UNAUTHENTICATED,
        _ => RequestLimits::default(),
    }
}

/// Frames the first `available` bytes, then all of them, with one resumable request parser.
fn frame_requests(data: &[u8], available: usize) -> Framing {
    let mut parser = RequestParser::with_limits(request_limits(data));
    frame_all(data, available, |buffer| {
        let Some(frame) = parser.parse(buffer).map_err(drop)? else {
            return Ok(None);
        };
        let length = frame.byte_len();
        assert!(
            length > 0 && length <= buffer.len(),
            "frame of {length} bytes"
        );
        for range in frame.arg_ranges() {
            assert!(
                frame.is_inline() || range.end <= length,
                "argument outside its frame"
            );
        }
        let args: Vec<&[u8]> = frame.args(buffer).collect();
        if !args.is_empty() {
            route(&args);
        }
        Ok(Some(length))
    })
}

/// Runs `next_frame` over the unconsumed part of the first `available` bytes, then of all of
/// them: it returns the length of the frame at the start of what it is given, `None` when that
/// frame is not complete yet, or an error.
fn frame_all(
    data: &[u8],
    available: usize,
    mut next_frame: impl FnMut(&[u8]) -> Result<Option<usize>, ()>,
) -> Framing {
    let mut lengths = Vec::new();
    let mut start = 0;
    let mut visible = available.min(data.len());
    loop {
        let buffer = data.get(start..visible).unwrap_or_default();
        match next_frame(buffer) {
            Ok(Some(length)) => {
                lengths.push(length);
                start += length;
            }
            Ok(None) if visible < data.len() => visible = data.len(),
            Ok(None) => {
                return Framing {
                    lengths,
                    failed: false,
                };
            }
            Err(()) => {
                return Framing {
                    lengths,
                    failed: true,
                };
            }
        }
    }
}

/// Looks a request up in the command table; its keys must be arguments of the request, and a
/// split command's key groups must fit in it.
fn route(args: &[&[u8]]) {
    let Ok(command) = resolve(&args) else {
        return;
    };
    let Ok(keys) = command.keys(&args) else {
        return;
    };
    let count = args.count();
    for key in keys {
        assert!(
            key > 0 && key < count,
            "key index {key} of {count} arguments"
        );
        if matches!(command.kind, Kind::Split(_)) {
            assert!(key + command.step() <= count, "a key group past the end");
        }
    }
}

/// Frames `data` as backend replies, whole and split; both must agree, and every aggregate's
/// elements must lie inside its reply.
pub fn reply_framer(data: &[u8]) {
    assert_resumable(data, frame_replies);
}

fn frame_replies(data: &[u8], available: usize) -> Framing {
    let mut parser = ReplyParser::new();
    frame_all(data, available, |buffer| {
        let Some(frame) = parser.parse(buffer).map_err(drop)? else {
            return Ok(None);
        };
        let length = frame.byte_len();
        assert!(
            length > 0 && length <= buffer.len(),
            "reply of {length} bytes"
        );
        let reply = buffer.get(..length).unwrap_or_default();
        if let Some(items) = elements(reply) {
            for item in items {
                assert!(item.end <= length, "element outside its reply");
            }
        }
        Ok(Some(length))
    })
}

/// Splits `data` at NUL bytes into a request's arguments and routes it through the command
/// table.
pub fn command_keys(data: &[u8]) {
    let args: Vec<&[u8]> = data.split(|&byte| byte == 0).collect();
    route(&args);
}

/// Reads `data` as a nutcracker.yml; any rejection must name the file.
pub fn nutcracker_yml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = rampart_config::parse(text, Path::new("fuzz.yml")) {
        assert!(error.to_string().starts_with("fuzz.yml"), "{error}");
    }
}

/// Reads `data` as a keepalived.conf; any rejection must name the file.
pub fn keepalived_conf(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = rampart_config::keepalived::parse(text, Path::new("fuzz.conf")) {
        assert!(error.to_string().starts_with("fuzz.conf"), "{error}");
    }
}

/// Reads `data` as a received IPv4 datagram and as a bare advert of either version; an
/// advert that decodes must encode and decode again to the same value.
pub fn vrrp_packet(data: &[u8]) {
    if let Ok(datagram) = parse_ipv4(data) {
        let (src, dst) = (IpAddr::V4(datagram.src), IpAddr::V4(datagram.dst));
        advert_round_trip(datagram.payload, src, dst);
    }
    let (src, dst) = (
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
    );
    advert_round_trip(data, src, dst);
}

fn advert_round_trip(payload: &[u8], src: IpAddr, dst: IpAddr) {
    for version in [Version::V2, Version::V3] {
        let Ok(advert) = decode(payload, version, src, dst) else {
            continue;
        };
        let mut wire = Vec::new();
        if encode(&advert, src, dst, &mut wire).is_ok() {
            let again = decode(&wire, version, src, dst);
            assert_eq!(again.as_ref(), Ok(&advert), "re-encoded {wire:02x?}");
        }
    }
}
