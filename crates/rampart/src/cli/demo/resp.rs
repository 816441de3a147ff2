//! A small blocking RESP2 client for the demo's own requests: PINGs while starting, the
//! sentinels' view of the shards, INFO of a replica, and the traffic generator's SET and GET.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Status(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Value>>),
}

impl Value {
    /// A status, bulk string or integer as text.
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Status(text) => Some(text.clone()),
            Value::Bulk(Some(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
            Value::Integer(number) => Some(number.to_string()),
            _ => None,
        }
    }

    /// A flat `name value name value ...` array as a map.
    pub fn fields(&self) -> HashMap<String, String> {
        match self {
            Value::Array(Some(items)) => items
                .chunks(2)
                .filter_map(|pair| Some((pair.first()?.text()?, pair.get(1)?.text()?)))
                .collect(),
            _ => HashMap::new(),
        }
    }

    /// An array of flat field arrays (`SENTINEL masters`, `SENTINEL replicas`).
    pub fn entries(&self) -> Vec<HashMap<String, String>> {
        match self {
            Value::Array(Some(items)) => items.iter().map(Value::fields).collect(),
            _ => Vec::new(),
        }
    }
}

/// One connection, used for request after request.
pub struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    /// Connects within `timeout`; every later read and write has the same limit.
    pub fn connect(address: SocketAddr, timeout: Duration) -> io::Result<Connection> {
        let stream = TcpStream::connect_timeout(&address, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            reader: BufReader::new(stream),
        })
    }

    /// Changes the read and write time limit.
    pub fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.reader.get_ref().set_read_timeout(Some(timeout))?;
        self.reader.get_ref().set_write_timeout(Some(timeout))
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, args: &[&str]) -> io::Result<Value> {
        self.reader.get_mut().write_all(&encode(args))?;
        read_value(&mut self.reader)
    }
}

/// One command on a fresh connection.
pub fn call(address: SocketAddr, args: &[&str], timeout: Duration) -> io::Result<Value> {
    Connection::connect(address, timeout)?.call(args)
}

/// Whether the server at `address` answers PING with PONG.
pub fn pings(address: SocketAddr, timeout: Duration) -> bool {
    matches!(call(address, &["PING"], timeout), Ok(Value::Status(status)) if status == "PONG")
}

/// A command as a RESP array of bulk strings.
fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad reply: {what}"))
}

/// One line without its CRLF.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Reads one reply.
fn read_value(reader: &mut impl BufRead) -> io::Result<Value> {
    let line = read_line(reader)?;
    let mut chars = line.chars();
    let kind = chars.next().ok_or_else(|| invalid("empty line"))?;
    let rest = chars.as_str();
    let length = || rest.parse::<i64>().map_err(|_| invalid(&line));
    match kind {
        '+' => Ok(Value::Status(rest.to_string())),
        '-' => Ok(Value::Error(rest.to_string())),
        ':' => Ok(Value::Integer(length()?)),
        '$' => match usize::try_from(length()?) {
            Err(_) => Ok(Value::Bulk(None)),
            Ok(size) => {
                let mut body = vec![0; size + 2];
                reader.read_exact(&mut body)?;
                body.truncate(size);
                Ok(Value::Bulk(Some(body)))
            }
        },
        '*' => match usize::try_from(length()?) {
            Err(_) => Ok(Value::Array(None)),
            Ok(count) => (0..count)
                .map(|_| read_value(reader))
                .collect::<io::Result<Vec<Value>>>()
                .map(|items| Value::Array(Some(items))),
        },
        _ => Err(invalid(&line)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> io::Result<Value> {
        read_value(&mut io::Cursor::new(bytes))
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(encode(&["GET", "k"]), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }

    #[test]
    fn replies_parse() {
        assert_eq!(parse(b"+PONG\r\n").unwrap(), Value::Status("PONG".into()));
        assert_eq!(parse(b"-ERR x\r\n").unwrap(), Value::Error("ERR x".into()));
        assert_eq!(parse(b":12\r\n").unwrap(), Value::Integer(12));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Value::Bulk(None));
        assert_eq!(
            parse(b"$2\r\nab\r\n").unwrap().text().as_deref(),
            Some("ab")
        );
        assert!(parse(b"").is_err());
        assert!(parse(b"?\r\n").is_err());
    }

    #[test]
    fn sentinel_entries_become_maps() {
        let reply =
            parse(b"*1\r\n*4\r\n$4\r\nname\r\n$6\r\nshard1\r\n$4\r\nport\r\n$4\r\n6379\r\n")
                .unwrap();
        let entries = reply.entries();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["name"], "shard1");
        assert_eq!(entries[0]["port"], "6379");
    }
}
