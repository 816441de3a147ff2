//! The client side of the admin endpoint, for `rampart status` and `rampart reload`: one
//! request through hyper's own HTTP/1 client connection (`hyper::client::conn::http1`),
//! already built for the endpoint's server side: no HTTP parsing of our own and no second
//! client crate.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::HOST;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long one request to the endpoint may take.
const REQUEST_LIMIT: Duration = Duration::from_secs(10);

/// Why the endpoint could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("cannot connect to {address}: {source}; is rampart running with --admin {address}?")]
    Connect {
        address: SocketAddr,
        source: io::Error,
    },
    #[error("{address} did not answer within {REQUEST_LIMIT:?}")]
    TimedOut { address: SocketAddr },
    #[error("HTTP exchange with {address} failed: {source}")]
    Http {
        address: SocketAddr,
        source: hyper::Error,
    },
    #[error("cannot build the request: {0}")]
    Request(#[from] hyper::http::Error),
}

/// Sends `method path` to the endpoint at `address`; its status and body.
pub async fn request(
    address: SocketAddr,
    method: Method,
    path: &str,
) -> Result<(StatusCode, Bytes), EndpointError> {
    tokio::time::timeout(REQUEST_LIMIT, exchange(address, method, path))
        .await
        .unwrap_or(Err(EndpointError::TimedOut { address }))
}

async fn exchange(
    address: SocketAddr,
    method: Method,
    path: &str,
) -> Result<(StatusCode, Bytes), EndpointError> {
    let http = |source| EndpointError::Http { address, source };
    let stream = TcpStream::connect(address)
        .await
        .map_err(|source| EndpointError::Connect { address, source })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http)?;
    let driver = tokio::spawn(connection);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, address.to_string())
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await.map_err(http)?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(http)?;
    driver.abort();
    Ok((status, body.to_bytes()))
}
