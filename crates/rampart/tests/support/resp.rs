//! A deliberately small RESP2 client for tests: sends commands as arrays of bulk strings and
//! reads replies back exactly, so tests can assert byte-level behaviour of a proxy.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    pub fn is_ok(&self) -> bool {
        *self == Reply::Status("OK".to_string())
    }
}

pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// Encodes one command as a RESP array of bulk strings.
pub fn encode(command: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", command.len()).into_bytes();
    for arg in command {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Client {
    pub fn connect(port: u16) -> io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        Ok(Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, command: &[&[u8]]) -> io::Result<Reply> {
        self.writer.write_all(&encode(command))?;
        self.read_reply()
    }

    /// Sends every command in one write, then reads one reply per command.
    pub fn pipeline(&mut self, commands: &[Vec<Vec<u8>>]) -> io::Result<Vec<Reply>> {
        let mut out = Vec::new();
        for command in commands {
            let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
            out.extend_from_slice(&encode(&args));
        }
        self.writer.write_all(&out)?;
        (0..commands.len()).map(|_| self.read_reply()).collect()
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        if !line.ends_with(b"\r\n") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "line without CRLF",
            ));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "non-UTF-8 header"))
    }

    pub fn read_reply(&mut self) -> io::Result<Reply> {
        let line = self.read_line()?;
        let (kind, rest) = line.split_at(1);
        let number = || {
            rest.parse::<i64>().map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad length {line}"))
            })
        };
        Ok(match kind {
            "+" => Reply::Status(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Integer(number()?),
            "$" => match number()? {
                -1 => Reply::Bulk(None),
                len => {
                    let mut body = vec![0; len as usize + 2];
                    self.reader.read_exact(&mut body)?;
                    body.truncate(len as usize);
                    Reply::Bulk(Some(body))
                }
            },
            "*" => match number()? {
                -1 => Reply::Array(None),
                len => Reply::Array(Some(
                    (0..len)
                        .map(|_| self.read_reply())
                        .collect::<io::Result<_>>()?,
                )),
            },
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unexpected reply {line}"),
                ));
            }
        })
    }
}
