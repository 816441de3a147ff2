//! Operator-facing views of a running proxy: the nutcracker-compatible stats catalog, the
//! counters workers publish, and the stats server. Nothing here is on the request path.

pub mod catalog;
pub mod server;
pub mod stats;
pub mod vrrp_status;
