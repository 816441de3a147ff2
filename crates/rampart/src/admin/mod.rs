//! Operator-facing views of a running proxy: the nutcracker-compatible stats catalog, the
//! counters workers publish (with their latency histograms), the stats server, and the admin
//! endpoint with its Prometheus metrics, status document and health check. Nothing here is on
//! the request path.

pub mod catalog;
pub mod endpoint;
pub mod latency;
pub mod metrics;
pub mod server;
pub mod stats;
pub mod status;
pub mod vrrp_status;
