//! The admin endpoint (`--admin`, default 127.0.0.1:22223): HTTP/1.1 served by hyper on a
//! thread and runtime of its own, so a scrape never takes time from a worker or from the
//! control plane following Sentinel. `GET /metrics` (OpenMetrics text for Prometheus),
//! `GET /status` (JSON), `GET /health` (200 `ok`, or 503 with the reason), `POST /reload`
//! (reloads the configuration file: 200 with what changed, or 422 with why the file was
//! refused) and `POST /rebalance` (the same, migrating every pool whose ring changes); any
//! other path is 404 and any other method 405. The nutcracker stats port is separate and unchanged.

use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{oneshot, watch};

use super::metrics;
use super::status;
use crate::descriptors::SpareDescriptor;
use crate::log_limit::limited;
use crate::proxy::Live;
use crate::topology::reload::ReloadRequest;

/// How long a client may take to send its request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The content type of OpenMetrics text, which Prometheus negotiates and parses.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the endpoint reads to answer.
pub struct Endpoint {
    live: Arc<Live>,
    registry: Registry,
    /// Where `POST /reload` asks the control plane to reload.
    reloads: UnboundedSender<ReloadRequest>,
    /// Set once the proxy is stopping.
    stopping: watch::Receiver<bool>,
}

impl Endpoint {
    pub fn new(
        live: Arc<Live>,
        reloads: UnboundedSender<ReloadRequest>,
        stopping: watch::Receiver<bool>,
    ) -> Endpoint {
        let registry = metrics::registry(Arc::clone(&live));
        Endpoint {
            live,
            registry,
            reloads,
            stopping,
        }
    }

    async fn respond(&self, request: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path();
        match (request.method(), path) {
            (&Method::POST, "/reload") => return self.reload(false).await,
            (&Method::POST, "/rebalance") => return self.reload(true).await,
            (_, "/reload" | "/rebalance") => {
                return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only POST\n");
            }
            (&Method::GET, _) => {}
            _ => return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET\n"),
        }
        match path {
            "/metrics" => match metrics::render(&self.registry) {
                Ok(text) => reply(StatusCode::OK, OPENMETRICS, text),
                Err(_) => reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    "cannot encode the metrics\n",
                ),
            },
            "/status" => {
                let shared = self.live.load();
                let document = status::collect(&shared.config, &shared.topology, &shared.stats);
                match serde_json::to_string_pretty(&document) {
                    Ok(json) => reply(StatusCode::OK, "application/json", json + "\n"),
                    Err(error) => reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "text/plain",
                        format!("cannot encode the status: {error}\n"),
                    ),
                }
            }
            "/health" => match self.unhealthy() {
                None => reply(StatusCode::OK, "text/plain", "ok\n"),
                Some(reason) => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", reason + "\n"),
            },
            _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
        }
    }

    /// `POST /reload` (and `/rebalance`, which migrates every pool whose ring changes): 200
    /// with what changed, or 422 with why the new file was refused.
    async fn reload(&self, rebalance: bool) -> Response<Full<Bytes>> {
        let (answer, outcome) = oneshot::channel();
        let sent = self.reloads.send(ReloadRequest {
            rebalance,
            reply: Some(answer),
        });
        match (sent, outcome.await) {
            (Ok(()), Ok(Ok(summary))) => reply(StatusCode::OK, "text/plain", summary + "\n"),
            (Ok(()), Ok(Err(refusal))) => reply(
                StatusCode::UNPROCESSABLE_ENTITY,
                "text/plain",
                refusal + "\n",
            ),
            _ => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "the control plane is not running: the proxy is stopping\n",
            ),
        }
    }

    /// Why the proxy is not serving, if it is not: stopping, or some worker's pool listener
    /// not accepting.
    fn unhealthy(&self) -> Option<String> {
        if *self.stopping.borrow() {
            return Some("stopping".to_string());
        }
        let shared = self.live.load();
        let expected = shared.workers * shared.config.pools.len();
        let accepting = shared.stats.listeners_accepting();
        (accepting < expected).then(|| {
            format!(
                "{accepting} of {expected} pool listeners are accepting \
                 ({} workers x {} pools)",
                shared.workers,
                shared.config.pools.len()
            )
        })
    }
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Binds the endpoint's socket; failing here stops start-up, as the stats port does.
pub fn bind(address: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(address)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves the endpoint on its own thread for the life of the process.
pub fn spawn(listener: TcpListener, endpoint: Endpoint) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    thread::Builder::new().name("admin".into()).spawn(move || {
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, serve(listener, Rc::new(endpoint)));
    })?;
    Ok(())
}

async fn serve(listener: TcpListener, endpoint: Rc<Endpoint>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!("admin endpoint stopped: {error}");
            return;
        }
    };
    let spare = match SpareDescriptor::new() {
        Ok(spare) => spare,
        Err(error) => {
            tracing::error!("admin endpoint stopped: {error}");
            return;
        }
    };
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                let shed = spare.shed(error, || {
                    let mut context = Context::from_waker(Waker::noop());
                    match listener.poll_accept(&mut context) {
                        Poll::Ready(accepted) => accepted,
                        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
                    }
                });
                match shed {
                    Ok(()) => limited!(
                        warn,
                        "admin clients closed out of descriptors",
                        "out of file descriptors: an admin endpoint client was closed at once"
                    ),
                    Err(error) => {
                        limited!(
                            warn,
                            "admin endpoint accept failures",
                            "admin endpoint accept failed: {error}"
                        );
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                continue;
            }
        };
        let endpoint = Rc::clone(&endpoint);
        tokio::task::spawn_local(async move {
            let service = service_fn(|request| {
                let endpoint = Rc::clone(&endpoint);
                async move { Ok::<_, Infallible>(endpoint.respond(&request).await) }
            });
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::debug!("admin endpoint connection: {error}");
            }
        });
    }
}
