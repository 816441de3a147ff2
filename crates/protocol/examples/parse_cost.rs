//! Measurement harness for `RequestParser::parse`, meant to run under callgrind:
//!
//! ```text
//! cargo build --release --example parse_cost
//! valgrind --tool=callgrind target/release/examples/parse_cost 0
//! valgrind --tool=callgrind target/release/examples/parse_cost 1000
//! ```
//!
//! The buffer is a pipeline of 16 requests (GET, SET and MGET in mixed case, as clients send
//! them); each pass frames all of it. The difference of the two instruction totals divided by
//! `1000 * 16` is the cost of framing one request. The argument is the number of passes.

use std::hint::black_box;

use rampart_protocol::RequestParser;

/// Requests in the pipeline.
const PIPELINE: usize = 16;

/// The RESP encoding of a request made of `args`.
fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

fn main() {
    let passes: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let mut pipeline = Vec::new();
    for i in 0..PIPELINE {
        let key = format!("key:{:012}", i * 7919).into_bytes();
        match i % 4 {
            0 | 2 => encode(&[b"GET", &key], &mut pipeline),
            1 => encode(&[b"set", &key, &[b'v'; 32]], &mut pipeline),
            _ => encode(&[b"Mget", &key, b"key:000000000001"], &mut pipeline),
        }
    }
    let mut parser = RequestParser::new();
    let mut args = 0usize;
    for _ in 0..passes {
        let mut consumed = 0;
        while let Ok(Some(frame)) = parser.parse(black_box(&pipeline[consumed..])) {
            args += frame.argc();
            consumed += frame.byte_len();
        }
    }
    println!("{args}");
}
