//! The raw RESP client every test uses: sends commands as arrays of bulk strings and reads
//! replies back exactly, RESP2 and RESP3 alike (`$-1`, `*-1` and `_` stay three different
//! nulls), so tests can assert a proxy's byte-level behaviour. Reads time out, so a missing
//! reply fails a test instead of hanging it.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

/// One reply, as read off the wire, keeping its RESP2/RESP3 type.
#[derive(Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Integer(i64),
    /// `$`; `None` is RESP2's null bulk `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*`; `None` is RESP2's null array `*-1`.
    Array(Option<Vec<Reply>>),
    /// RESP3's null `_`.
    Null,
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    Push(Vec<Reply>),
    /// `,`, as the text it came as.
    Double(String),
    Boolean(bool),
    /// `(`, as the text it came as.
    BigNumber(String),
    /// `=`: the three-letter format and the text after `format:`.
    Verbatim(String, Vec<u8>),
    /// `!`.
    BlobError(Vec<u8>),
}

impl Reply {
    pub fn is_ok(&self) -> bool {
        *self == ok()
    }

    /// A bulk, status or integer reply as text.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Bulk(Some(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
            Reply::Status(status) => Some(status.clone()),
            Reply::Integer(number) => Some(number.to_string()),
            _ => None,
        }
    }
}

/// Replies read like what came on the wire; long bulks are shortened.
impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Status(text) => write!(f, "+{text}"),
            Reply::Error(text) => write!(f, "-{text}"),
            Reply::Integer(number) => write!(f, ":{number}"),
            Reply::Bulk(None) => write!(f, "$-1"),
            Reply::Bulk(Some(bytes)) if bytes.len() > 80 => write!(
                f,
                "${} {:?}...",
                bytes.len(),
                String::from_utf8_lossy(&bytes[..40])
            ),
            Reply::Bulk(Some(bytes)) => write!(f, "{:?}", String::from_utf8_lossy(bytes)),
            Reply::Array(None) => write!(f, "*-1"),
            Reply::Array(Some(items)) => f.debug_list().entries(items).finish(),
            Reply::Null => write!(f, "_"),
            Reply::Map(pairs) => f
                .debug_map()
                .entries(pairs.iter().map(|(k, v)| (k, v)))
                .finish(),
            Reply::Set(items) => {
                write!(f, "~")?;
                f.debug_set().entries(items).finish()
            }
            Reply::Push(items) => {
                write!(f, ">")?;
                f.debug_list().entries(items).finish()
            }
            Reply::Double(text) => write!(f, ",{text}"),
            Reply::Boolean(value) => write!(f, "#{}", if *value { 't' } else { 'f' }),
            Reply::BigNumber(text) => write!(f, "({text}"),
            Reply::Verbatim(format, text) => {
                write!(f, "={format}:{:?}", String::from_utf8_lossy(text))
            }
            Reply::BlobError(text) => write!(f, "!{:?}", String::from_utf8_lossy(text)),
        }
    }
}

/// `+OK`.
pub fn ok() -> Reply {
    Reply::Status("OK".into())
}

/// `+PONG`.
pub fn pong() -> Reply {
    Reply::Status("PONG".into())
}

/// A bulk string.
pub fn bulk(bytes: impl AsRef<[u8]>) -> Reply {
    Reply::Bulk(Some(bytes.as_ref().to_vec()))
}

/// RESP2's null bulk, `$-1`.
pub fn nil() -> Reply {
    Reply::Bulk(None)
}

/// An error reply with this text.
pub fn error(text: &str) -> Reply {
    Reply::Error(text.into())
}

/// A command from text arguments.
pub fn cmd(args: &[&str]) -> Vec<Vec<u8>> {
    args.iter().map(|arg| arg.as_bytes().to_vec()).collect()
}

/// `SET key value` then `GET key`, for each (key, value) pair in turn.
pub fn set_then_get<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<Vec<Vec<u8>>> {
    pairs
        .into_iter()
        .flat_map(|(key, value)| [cmd(&["SET", key, value]), cmd(&["GET", key])])
        .collect()
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

/// Encodes commands back to back, as one pipeline.
pub fn encode_all(commands: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    for command in commands {
        let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
        out.extend_from_slice(&encode(&args));
    }
    out
}

/// A command for failure messages, long arguments cut at 40 bytes.
pub fn show(command: &[Vec<u8>]) -> String {
    let words: Vec<String> = command
        .iter()
        .map(|arg| {
            let text = String::from_utf8_lossy(&arg[..arg.len().min(40)]).into_owned();
            if arg.len() > 40 {
                format!("{text}...({} bytes)", arg.len())
            } else {
                text
            }
        })
        .collect();
    words.join(" ")
}

/// Connects to `port`, sends one command with text arguments and reads its reply.
pub fn try_call(port: u16, args: &[&str]) -> io::Result<Reply> {
    let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
    Client::connect(port)?.try_call(&args)
}

/// `try_call`, panicking with the command and port if it gets no reply.
pub fn call(port: u16, args: &[&str]) -> Reply {
    try_call(port, args).unwrap_or_else(|error| panic!("{args:?} on port {port}: {error}"))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// One connection. The `try_` and `read_reply` methods give I/O errors back; the others panic
/// with the command that got no reply.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    /// A connection whose reads fail after 20 s without data.
    pub fn connect(port: u16) -> io::Result<Client> {
        Client::connect_with_timeout(port, Duration::from_secs(20))
    }

    /// A connection whose reads fail after `timeout` without data.
    pub fn connect_with_timeout(port: u16, timeout: Duration) -> io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        Client::over(stream, timeout)
    }

    /// A connection to `address` whose connect, reads and writes fail after `timeout`.
    pub fn connect_addr(address: SocketAddr, timeout: Duration) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&address, timeout)?;
        stream.set_write_timeout(Some(timeout))?;
        Client::over(stream, timeout)
    }

    /// A connection over `stream` whose reads fail after `timeout` without data; on an
    /// accepted stream, a fake server's side (requests read with `read_reply` are arrays).
    pub fn over(stream: TcpStream, timeout: Duration) -> io::Result<Client> {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            reader: BufReader::with_capacity(1 << 16, stream.try_clone()?),
            writer: stream,
        })
    }

    /// A connection for asserting reply by reply: panics if it cannot connect, and its reads
    /// fail after 10 s without data.
    pub fn open(port: u16) -> Client {
        Client::connect_with_timeout(port, Duration::from_secs(10))
            .unwrap_or_else(|error| panic!("connect to 127.0.0.1:{port}: {error}"))
    }

    /// Sends one command and reads its reply.
    pub fn try_call(&mut self, command: &[&[u8]]) -> io::Result<Reply> {
        self.writer.write_all(&encode(command))?;
        self.read_reply()
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, command: &[&[u8]]) -> Reply {
        self.try_call(command).unwrap_or_else(|error| {
            let owned: Vec<Vec<u8>> = command.iter().map(|arg| arg.to_vec()).collect();
            panic!("no reply to {}: {error}", show(&owned))
        })
    }

    /// `call` with text arguments.
    pub fn call_str(&mut self, args: &[&str]) -> Reply {
        let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        self.call(&args)
    }

    /// Sends every command in one write, then reads one reply per command.
    pub fn try_pipeline(&mut self, commands: &[Vec<Vec<u8>>]) -> io::Result<Vec<Reply>> {
        self.writer.write_all(&encode_all(commands))?;
        (0..commands.len()).map(|_| self.read_reply()).collect()
    }

    /// Sends every command in one write, then reads one reply per command.
    pub fn pipeline(&mut self, commands: &[Vec<Vec<u8>>]) -> Vec<Reply> {
        self.send_raw(&encode_all(commands));
        commands
            .iter()
            .map(|command| {
                self.read_reply()
                    .unwrap_or_else(|error| panic!("no reply to {}: {error}", show(command)))
            })
            .collect()
    }

    /// Sends one command without reading its reply.
    pub fn send(&mut self, command: &[&[u8]]) {
        self.writer
            .write_all(&encode(command))
            .expect("send request");
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("send bytes");
    }

    /// Writes `commands` in one go from another thread, so that reading replies meanwhile
    /// can never deadlock against a proxy that stops reading while its replies are unread.
    pub fn send_in_background(&self, commands: &[Vec<Vec<u8>>]) -> JoinHandle<io::Result<()>> {
        let bytes = encode_all(commands);
        let mut writer = self.writer.try_clone().expect("clone stream");
        std::thread::spawn(move || writer.write_all(&bytes))
    }

    /// Another handle on the connection's socket, to write from another thread while this
    /// one reads replies.
    pub fn try_clone_stream(&self) -> io::Result<TcpStream> {
        self.writer.try_clone()
    }

    /// Closes the sending half: the peer reads end of stream after what was sent.
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.writer.shutdown(Shutdown::Write)
    }

    /// True when the peer closed the connection (EOF, or a reset after our data was read).
    pub fn closed_by_peer(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.reader.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => matches!(
                error.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ),
        }
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
            return Err(invalid(format!(
                "line without CRLF: {:?}",
                String::from_utf8_lossy(&line)
            )));
        }
        line.truncate(line.len() - 2);
        // An error may quote a client's command name, which need not be UTF-8.
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// `len` bytes and the CRLF after them.
    fn read_blob(&mut self, len: i64) -> io::Result<Vec<u8>> {
        let len = usize::try_from(len).map_err(|_| invalid(format!("bad length {len}")))?;
        let mut body = vec![0; len + 2];
        self.reader.read_exact(&mut body)?;
        if !body.ends_with(b"\r\n") {
            return Err(invalid("bulk without CRLF".into()));
        }
        body.truncate(len);
        Ok(body)
    }

    fn read_items(&mut self, count: i64) -> io::Result<Vec<Reply>> {
        (0..count).map(|_| self.read_reply()).collect()
    }

    pub fn read_reply(&mut self) -> io::Result<Reply> {
        let line = self.read_line()?;
        if line.is_empty() {
            return Err(invalid("empty line".into()));
        }
        let (kind, rest) = line.split_at(1);
        let number = || {
            rest.parse::<i64>()
                .map_err(|_| invalid(format!("bad number in {line}")))
        };
        Ok(match kind {
            "+" => Reply::Status(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Integer(number()?),
            "_" => Reply::Null,
            "," => Reply::Double(rest.to_string()),
            "#" => Reply::Boolean(rest == "t"),
            "(" => Reply::BigNumber(rest.to_string()),
            "$" => match number()? {
                -1 => Reply::Bulk(None),
                len => Reply::Bulk(Some(self.read_blob(len)?)),
            },
            "!" => Reply::BlobError(self.read_blob(number()?)?),
            "=" => {
                let body = self.read_blob(number()?)?;
                if body.get(3) != Some(&b':') {
                    return Err(invalid(format!("verbatim string without format: {line}")));
                }
                let format = String::from_utf8_lossy(&body[..3]).into_owned();
                Reply::Verbatim(format, body[4..].to_vec())
            }
            "*" => match number()? {
                -1 => Reply::Array(None),
                count => Reply::Array(Some(self.read_items(count)?)),
            },
            "~" => Reply::Set(self.read_items(number()?)?),
            ">" => Reply::Push(self.read_items(number()?)?),
            "%" => {
                let flat = self.read_items(number()? * 2)?;
                Reply::Map(
                    flat.chunks(2)
                        .map(|pair| (pair[0].clone(), pair[1].clone()))
                        .collect(),
                )
            }
            _ => return Err(invalid(format!("unknown reply {line}"))),
        })
    }
}
