//! A small RESP client for the control plane's own conversations: health-check PINGs, ROLE
//! checks and Sentinel queries and subscriptions. Not used on the request path.

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rampart_config::{Pool, ServerAddress};
use rampart_protocol::{ReplyParser, elements, encode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// Any stream the control plane talks over.
pub trait Transport: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Transport for T {}

pub struct Link {
    stream: Box<dyn Transport>,
    buffer: BytesMut,
    parser: ReplyParser,
}

impl Link {
    pub async fn connect(address: &ServerAddress, limit: Duration) -> io::Result<Link> {
        let stream: Box<dyn Transport> = match address {
            ServerAddress::Tcp { host, port } => {
                let stream =
                    tokio::time::timeout(limit, TcpStream::connect((host.as_str(), *port)))
                        .await
                        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
                stream.set_nodelay(true)?;
                Box::new(stream)
            }
            ServerAddress::Unix { path } => Box::new(UnixStream::connect(path).await?),
        };
        Ok(Link {
            stream,
            buffer: BytesMut::with_capacity(4096),
            parser: ReplyParser::new(),
        })
    }

    /// Connects to a pool's server and authenticates with the pool's password, if any.
    pub async fn to_server(
        pool: &Pool,
        address: &ServerAddress,
        limit: Duration,
    ) -> io::Result<Link> {
        let mut link = Link::connect(address, limit).await?;
        if let Some(password) = &pool.redis_auth {
            link.call(&[b"AUTH", password.as_bytes()], limit).await?;
        }
        Ok(link)
    }

    pub async fn send(&mut self, args: &[&[u8]]) -> io::Result<()> {
        let mut request = Vec::new();
        encode::request(&mut request, args.iter().copied());
        self.stream.write_all(&request).await
    }

    /// Sends a request already encoded and reads its reply within `limit`.
    pub async fn call_encoded(&mut self, request: &[u8], limit: Duration) -> io::Result<Bytes> {
        tokio::time::timeout(limit, async {
            self.stream.write_all(request).await?;
            self.read_reply().await
        })
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
    }

    /// Reads the next complete reply (waits as long as it takes).
    pub async fn read_reply(&mut self) -> io::Result<Bytes> {
        loop {
            match self.parser.parse(&self.buffer) {
                Ok(Some(frame)) => return Ok(self.buffer.split_to(frame.byte_len()).freeze()),
                Ok(None) => {}
                Err(error) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        error.to_string(),
                    ));
                }
            }
            if self.stream.read_buf(&mut self.buffer).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Sends a command and reads its reply within `limit`.
    pub async fn call(&mut self, args: &[&[u8]], limit: Duration) -> io::Result<Bytes> {
        let mut request = Vec::new();
        encode::request(&mut request, args.iter().copied());
        self.call_encoded(&request, limit).await
    }
}

/// The text of a bulk string or simple string reply.
pub fn text(reply: &[u8]) -> Option<&[u8]> {
    let end = reply.len().checked_sub(2)?;
    match reply.first()? {
        b'+' => reply.get(1..end),
        b'$' => {
            let start = reply.iter().position(|&byte| byte == b'\n')? + 1;
            reply.get(start..end)
        }
        _ => None,
    }
}

/// The texts of an array reply's string elements.
pub fn texts(reply: &[u8]) -> Option<Vec<&[u8]>> {
    elements(reply)?
        .map(|range| reply.get(range).and_then(text))
        .collect()
}

/// Whether the server answers PING (after AUTH when the pool has a password).
pub async fn answers_ping(pool: &Pool, address: &ServerAddress, limit: Duration) -> bool {
    async {
        let mut link = Link::to_server(pool, address, limit).await?;
        link.call(&[b"PING"], limit).await
    }
    .await
    .is_ok_and(|reply| text(&reply) == Some(b"PONG"))
}

/// Whether the server says it is a master (`ROLE`).
pub async fn is_master(pool: &Pool, address: &ServerAddress, limit: Duration) -> bool {
    async {
        let mut link = Link::to_server(pool, address, limit).await?;
        link.call(&[b"ROLE"], limit).await
    }
    .await
    .ok()
    .and_then(|reply| {
        elements(&reply)
            .and_then(|mut items| items.next())
            .map(|first| reply.get(first).and_then(text) == Some(b"master"))
    })
    .unwrap_or(false)
}
