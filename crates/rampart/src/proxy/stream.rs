//! One socket type for the data path: a TCP or unix-domain stream, with the readiness-based
//! reads and vectored writes the client and backend loops use, and its idle form, a bare
//! socket outside the runtime (a new or parked client).

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use bytes::BytesMut;
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::{TcpStream, UnixStream};

use super::memory;

pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A client socket the runtime does not watch: non-blocking, owned, nothing else.
pub enum IdleSocket {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl AsFd for IdleSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            IdleSocket::Tcp(stream) => stream.as_fd(),
            IdleSocket::Unix(stream) => stream.as_fd(),
        }
    }
}

impl IdleSocket {
    /// Registers the socket with the worker's runtime.
    pub fn into_stream(self) -> io::Result<Stream> {
        Ok(match self {
            IdleSocket::Tcp(stream) => Stream::Tcp(TcpStream::from_std(stream)?),
            IdleSocket::Unix(stream) => Stream::Unix(UnixStream::from_std(stream)?),
        })
    }

    /// Whether the client already sent something (or hung up), found by peeking at one byte.
    pub fn has_input(&self) -> bool {
        let mut byte = [0u8; 1];
        let peek = RecvFlags::PEEK | RecvFlags::DONTWAIT;
        !matches!(rustix::net::recv(self, &mut byte, peek), Err(Errno::AGAIN))
    }

    /// Sends `reply` if the socket takes it at once, then closes the connection (a client
    /// turned away, who must learn why without the proxy waiting on it).
    pub fn refuse(self, reply: &[u8]) {
        let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
        if let Err(error) = rustix::net::send(&self, reply, flags) {
            tracing::debug!("a refused client did not take its reply: {error}");
        }
    }

    /// Applies the client socket options nutcracker applies: TCP_NODELAY, and SO_KEEPALIVE
    /// with `tcpkeepalive: true`.
    pub fn configure(self, keepalive: bool) -> io::Result<IdleSocket> {
        if let IdleSocket::Tcp(stream) = &self {
            stream.set_nodelay(true)?;
            if keepalive {
                socket2::SockRef::from(stream).set_keepalive(true)?;
            }
        }
        Ok(self)
    }
}

impl Stream {
    pub async fn connect_tcp(host: &str, port: u16) -> io::Result<Stream> {
        let stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        Ok(Stream::Tcp(stream))
    }

    pub async fn connect_unix(path: &Path) -> io::Result<Stream> {
        Ok(Stream::Unix(UnixStream::connect(path).await?))
    }

    /// Takes the socket out of the runtime.
    pub fn into_idle(self) -> io::Result<IdleSocket> {
        Ok(match self {
            Stream::Tcp(stream) => IdleSocket::Tcp(stream.into_std()?),
            Stream::Unix(stream) => IdleSocket::Unix(stream.into_std()?),
        })
    }

    /// Waits until the socket is readable, writable, or both, as asked.
    pub async fn ready(&self, interest: Interest) -> io::Result<tokio::io::Ready> {
        match self {
            Stream::Tcp(stream) => stream.ready(interest).await,
            Stream::Unix(stream) => stream.ready(interest).await,
        }
    }

    /// Reads what is available into `buf`'s spare capacity; `Ok(0)` is end of stream.
    pub fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Tcp(stream) => stream.try_read_buf(buf),
            Stream::Unix(stream) => stream.try_read_buf(buf),
        }
    }

    /// Runs a non-blocking operation; a `WouldBlock` from it clears the readiness it used.
    pub fn try_io<R>(
        &self,
        interest: Interest,
        operation: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        match self {
            Stream::Tcp(stream) => stream.try_io(interest, operation),
            Stream::Unix(stream) => stream.try_io(interest, operation),
        }
    }

    pub fn try_write_vectored(&self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(stream) => stream.try_write_vectored(slices),
            Stream::Unix(stream) => stream.try_write_vectored(slices),
        }
    }
}

/// A type that owns its descriptor: it stays open, and stays the same descriptor, for as long
/// as the value lives, and is closed only when the value is dropped.
///
/// # Safety
/// Implement it only for owning types; a borrowed or copied descriptor could be closed or
/// reused while the runtime still watches it.
pub unsafe trait OwnsFd: AsRawFd {}

// SAFETY: an `OwnedFd` closes its descriptor only when dropped.
unsafe impl OwnsFd for OwnedFd {}

/// Registers a descriptor the proxy owns (a listener, an epoll set) with the worker's runtime.
pub fn watch_fd<T: OwnsFd>(owner: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: `OwnsFd` guarantees the descriptor stays open and unchanged for as long as the
    // `AsyncFd` holds `owner`.
    unsafe { AsyncFd::register(owner) }.map_err(io::Error::from)
}

/// Most buffers one vectored write offers the kernel.
const MAX_IOVECS: usize = 64;

/// Offers the leading `buffers` (at most [`MAX_IOVECS`]) to `write` as one vectored write.
/// `Ok(None)` when there was nothing to write.
pub fn write_gathered<'a>(
    buffers: impl IntoIterator<Item = &'a [u8]>,
    write: impl FnOnce(&[IoSlice<'_>]) -> io::Result<usize>,
) -> io::Result<Option<usize>> {
    let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
    let mut count = 0;
    for (slice, bytes) in slices.iter_mut().zip(buffers) {
        *slice = IoSlice::new(bytes);
        count += 1;
    }
    match slices.get(..count) {
        Some(filled) if !filled.is_empty() => write(filled).map(Some),
        _ => Ok(None),
    }
}

/// Reads into `buf`, growing it by at least `chunk` bytes of spare room first.
/// `Ok(None)` means the socket had nothing (yet); `Ok(Some(0))` is end of stream.
///
/// A short read (less than the room offered) means the socket is drained, so its readiness is
/// cleared there and then, as nutcracker does: the next call returns `Ok(None)` without a
/// `recv` that would only say EAGAIN. Edge-triggered epoll reports the next data anyway.
pub fn read_some(stream: &Stream, buf: &mut BytesMut, chunk: usize) -> io::Result<Option<usize>> {
    if buf.capacity() - buf.len() < chunk / 2 {
        buf.reserve(chunk);
    }
    let room = buf.capacity() - buf.len();
    let mut read = None;
    let drained = stream.try_io(Interest::READABLE, || {
        let count = stream.try_read_buf(buf)?;
        read = Some(count);
        if count > 0 && count < room {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(())
        }
    });
    match drained {
        Err(error) if error.kind() != io::ErrorKind::WouldBlock => Err(error),
        _ => Ok(read),
    }
}

/// Gives back the memory of a buffer that grew for a large request or reply once it is empty,
/// so one 20 MiB value does not pin 20 MiB for the life of the connection.
pub fn release_if_large(buffer: &mut BytesMut, chunk: usize) {
    if buffer.is_empty() && buffer.capacity() > 8 * chunk {
        *buffer = BytesMut::with_capacity(chunk);
        memory::large_buffer_released();
    }
}

/// The glibc text of an OS error (`Connection refused`), as nutcracker puts in `-ERR` replies.
pub fn error_text(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}
