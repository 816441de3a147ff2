//! The admin endpoint from a test: one HTTP GET or POST, and `/status` as JSON.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// One GET with HTTP/1.0 (the server closes after answering): status code and body.
pub fn get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the admin port");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read the answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status code");
    (code, body.to_string())
}

/// One POST without a body, with HTTP/1.0: status code and body. Waits up to 30 s for the
/// answer (a reload may take a while).
pub fn post(port: u16, path: &str) -> (u16, String) {
    request(port, "POST", path)
}

/// One request without a body, with HTTP/1.0: status code and body (up to 30 s for it).
pub fn request(port: u16, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the admin port");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read the answer");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("a header block: {text:?}"));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("a status code: {head}"));
    (code, body.to_string())
}

/// `/status` as JSON.
pub fn status(port: u16) -> Value {
    let (code, body) = get(port, "/status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("/status is JSON")
}

/// How often pool `pool` enforced client limit `limit`, from `/status`.
pub fn limit_count(port: u16, pool: &str, limit: &str) -> u64 {
    let status = status(port);
    let pools = status["pools"].as_array().expect("pools in /status");
    let found = pools
        .iter()
        .find(|entry| entry["name"] == pool)
        .unwrap_or_else(|| panic!("pool {pool} in /status"));
    found["limits"][limit]
        .as_u64()
        .unwrap_or_else(|| panic!("limit {limit} in /status: {found}"))
}
