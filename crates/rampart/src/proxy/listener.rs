//! Pool listeners: one TCP socket per pool per worker with SO_REUSEADDR and SO_REUSEPORT (the
//! kernel spreads new clients over the workers), or one unix socket per pool shared by all
//! workers, created (old socket file removed) and chmod'ed as nutcracker does.

use std::fmt;
use std::fs;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::Path;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use rampart_config::{Config, Listen, Pool};
use rustix::net::SocketFlags;
use socket2::{Domain, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::stream::{IdleSocket, OwnsFd, watch_fd};
use crate::descriptors::SpareDescriptor;
use crate::log_limit::limited;

/// A bound, listening socket not yet handed to a runtime.
pub enum BoundListener {
    Tcp(std::net::TcpListener),
    Unix(StdUnixListener),
}

/// The same socket inside a worker's runtime. New clients come out of it as idle sockets, not
/// registered with the runtime until they send something.
pub struct Listener {
    socket: AsyncFd<BoundListener>,
    /// Out of descriptors, makes room to close a waiting client at once.
    spare: SpareDescriptor,
}

/// A listen host that getaddrinfo cannot resolve, located in the configuration file.
#[derive(Debug)]
pub struct ListenResolveError {
    file: String,
    line: usize,
    host: String,
    port: u16,
    reason: String,
}

impl std::error::Error for ListenResolveError {}

impl fmt::Display for ListenResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: directive \"listen\": cannot resolve '{}' (port {}): {}",
            self.file, self.line, self.host, self.port, self.reason
        )
    }
}

/// Resolves a pool's TCP listen address the way nutcracker does at parse time: the first
/// result of getaddrinfo. Unix sockets need no resolution and give `None`.
pub fn resolve_listen(
    config: &Config,
    pool: &Pool,
) -> Result<Option<SocketAddr>, ListenResolveError> {
    match &pool.listen {
        Listen::Tcp { host, port } => resolve_tcp(config, pool, host, *port).map(Some),
        Listen::Unix { .. } => Ok(None),
    }
}

/// Resolves a pool's TCP `host:port` listen address (the first getaddrinfo result).
pub fn resolve_tcp(
    config: &Config,
    pool: &Pool,
    host: &str,
    port: u16,
) -> Result<SocketAddr, ListenResolveError> {
    let error = |reason: String| ListenResolveError {
        file: config.file.display().to_string(),
        line: pool.listen_line,
        host: host.to_string(),
        port,
        reason,
    };
    match (host, port).to_socket_addrs() {
        Ok(mut addresses) => addresses
            .next()
            .ok_or_else(|| error("no address found".to_string())),
        Err(io_error) => Err(error(io_error.to_string())),
    }
}

/// Fails when another process already listens on `address`. SO_REUSEPORT would otherwise
/// let a second rampart (or anything else using it) share the port silently.
pub fn ensure_free(address: SocketAddr) -> io::Result<()> {
    std::net::TcpListener::bind(address).map(drop)
}

/// Binds a TCP listener that other workers can bind too.
pub fn bind_tcp(address: SocketAddr, backlog: u32) -> io::Result<BoundListener> {
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(BoundListener::Tcp(socket.into()))
}

/// Binds a unix-socket listener, replacing a stale socket file, with optional permissions.
pub fn bind_unix(path: &Path, permissions: Option<u32>) -> io::Result<BoundListener> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let listener = StdUnixListener::bind(path)?;
    listener.set_nonblocking(true)?;
    if let Some(mode) = permissions {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok(BoundListener::Unix(listener))
}

impl BoundListener {
    /// Another handle on the same socket (for unix listeners shared by workers).
    pub fn try_clone(&self) -> io::Result<BoundListener> {
        Ok(match self {
            BoundListener::Tcp(listener) => BoundListener::Tcp(listener.try_clone()?),
            BoundListener::Unix(listener) => BoundListener::Unix(listener.try_clone()?),
        })
    }

    pub fn into_runtime(self) -> io::Result<Listener> {
        Ok(Listener {
            socket: watch_fd(self)?,
            spare: SpareDescriptor::new()?,
        })
    }

    fn accept_idle(&self) -> io::Result<IdleSocket> {
        let client = rustix::net::accept_with(self, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)?;
        Ok(match self {
            BoundListener::Tcp(_) => IdleSocket::Tcp(client.into()),
            BoundListener::Unix(_) => IdleSocket::Unix(client.into()),
        })
    }
}

impl AsFd for BoundListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            BoundListener::Tcp(listener) => listener.as_fd(),
            BoundListener::Unix(listener) => listener.as_fd(),
        }
    }
}

// SAFETY: a bound listener owns its socket, which closes only when the listener is dropped.
unsafe impl OwnsFd for BoundListener {}

impl AsRawFd for BoundListener {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl Listener {
    /// Waits for the next client.
    pub async fn accept(&self) -> io::Result<IdleSocket> {
        loop {
            let mut ready = self.socket.readable().await?;
            match ready.try_io(|socket| self.accept_or_shed(socket.get_ref())) {
                Ok(Ok(Some(client))) => return Ok(client),
                Ok(Ok(None)) | Err(_) => {}
                Ok(Err(error)) => return Err(error),
            }
        }
    }

    /// The next waiting client, or `None` when the process was out of descriptors and a
    /// waiting client was closed at once.
    fn accept_or_shed(&self, listener: &BoundListener) -> io::Result<Option<IdleSocket>> {
        match listener.accept_idle() {
            Ok(client) => Ok(Some(client)),
            Err(error) => {
                self.spare.shed(error, || listener.accept_idle())?;
                limited!(
                    warn,
                    "clients closed out of descriptors",
                    "out of file descriptors: a new client was closed at once"
                );
                Ok(None)
            }
        }
    }
}
