//! The names and meanings of nutcracker's stats counters, in the order its stats JSON and
//! `--describe-stats` list them, and of rampart's client-limit counters (in the metrics and
//! `/status`, not in nutcracker's JSON). Counters are indexed by these enums everywhere.

/// Per-pool counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolStat {
    ClientEof,
    ClientErr,
    ClientConnections,
    ServerEjects,
    ForwardError,
    Fragments,
}

/// Per-server counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerStat {
    ServerEof,
    ServerErr,
    ServerTimedout,
    ServerConnections,
    ServerEjectedAt,
    Requests,
    RequestBytes,
    Responses,
    ResponseBytes,
    InQueue,
    InQueueBytes,
    OutQueue,
    OutQueueBytes,
}

impl PoolStat {
    pub const COUNT: usize = 6;
    pub const ALL: [PoolStat; PoolStat::COUNT] = [
        PoolStat::ClientEof,
        PoolStat::ClientErr,
        PoolStat::ClientConnections,
        PoolStat::ServerEjects,
        PoolStat::ForwardError,
        PoolStat::Fragments,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PoolStat::ClientEof => "client_eof",
            PoolStat::ClientErr => "client_err",
            PoolStat::ClientConnections => "client_connections",
            PoolStat::ServerEjects => "server_ejects",
            PoolStat::ForwardError => "forward_error",
            PoolStat::Fragments => "fragments",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            PoolStat::ClientEof => "# eof on client connections",
            PoolStat::ClientErr => "# errors on client connections",
            PoolStat::ClientConnections => "# active client connections",
            PoolStat::ServerEjects => "# times backend server was ejected",
            PoolStat::ForwardError => "# times we encountered a forwarding error",
            PoolStat::Fragments => "# fragments created from a multi-vector request",
        }
    }
}

/// Per-pool counts of the client limits enforced (rampart's own, see docs/limits.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitStat {
    /// New clients refused: the pool had `client_connections` clients.
    ClientsRefused,
    /// Clients closed for a request over `client_max_request_bytes` or
    /// `client_max_request_args`.
    RequestsTooLarge,
    /// Times reading from a client paused at `client_max_pipeline` or
    /// `client_max_pending_bytes`, until its replies drained.
    ReadsPaused,
    /// Clients disconnected for unread replies over `client_output_limit`, or over
    /// `client_output_soft_limit` for `client_output_soft_seconds`.
    OutputLimitDisconnects,
    /// Clients closed after `client_idle_timeout` seconds without a request.
    IdleTimeouts,
    /// Connections closed because they sent an HTTP request line or header (`POST`, `Host:`).
    CrossProtocol,
}

impl LimitStat {
    pub const COUNT: usize = 6;
    pub const ALL: [LimitStat; LimitStat::COUNT] = [
        LimitStat::ClientsRefused,
        LimitStat::RequestsTooLarge,
        LimitStat::ReadsPaused,
        LimitStat::OutputLimitDisconnects,
        LimitStat::IdleTimeouts,
        LimitStat::CrossProtocol,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LimitStat::ClientsRefused => "clients_refused",
            LimitStat::RequestsTooLarge => "requests_too_large",
            LimitStat::ReadsPaused => "reads_paused",
            LimitStat::OutputLimitDisconnects => "output_limit_disconnects",
            LimitStat::IdleTimeouts => "idle_timeouts",
            LimitStat::CrossProtocol => "cross_protocol",
        }
    }
}

impl ServerStat {
    pub const COUNT: usize = 13;
    pub const ALL: [ServerStat; ServerStat::COUNT] = [
        ServerStat::ServerEof,
        ServerStat::ServerErr,
        ServerStat::ServerTimedout,
        ServerStat::ServerConnections,
        ServerStat::ServerEjectedAt,
        ServerStat::Requests,
        ServerStat::RequestBytes,
        ServerStat::Responses,
        ServerStat::ResponseBytes,
        ServerStat::InQueue,
        ServerStat::InQueueBytes,
        ServerStat::OutQueue,
        ServerStat::OutQueueBytes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ServerStat::ServerEof => "server_eof",
            ServerStat::ServerErr => "server_err",
            ServerStat::ServerTimedout => "server_timedout",
            ServerStat::ServerConnections => "server_connections",
            ServerStat::ServerEjectedAt => "server_ejected_at",
            ServerStat::Requests => "requests",
            ServerStat::RequestBytes => "request_bytes",
            ServerStat::Responses => "responses",
            ServerStat::ResponseBytes => "response_bytes",
            ServerStat::InQueue => "in_queue",
            ServerStat::InQueueBytes => "in_queue_bytes",
            ServerStat::OutQueue => "out_queue",
            ServerStat::OutQueueBytes => "out_queue_bytes",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            ServerStat::ServerEof => "# eof on server connections",
            ServerStat::ServerErr => "# errors on server connections",
            ServerStat::ServerTimedout => "# timeouts on server connections",
            ServerStat::ServerConnections => "# active server connections",
            ServerStat::ServerEjectedAt => "timestamp when server was ejected in usec since epoch",
            ServerStat::Requests => "# requests",
            ServerStat::RequestBytes => "total request bytes",
            ServerStat::Responses => "# responses",
            ServerStat::ResponseBytes => "total response bytes",
            ServerStat::InQueue => "# requests in incoming queue",
            ServerStat::InQueueBytes => "current request bytes in incoming queue",
            ServerStat::OutQueue => "# requests in outgoing queue",
            ServerStat::OutQueueBytes => "current request bytes in outgoing queue",
        }
    }
}

/// The text `--describe-stats` prints, laid out as nutcracker lays it out.
pub fn describe() -> String {
    let mut text = String::from("pool stats:\n");
    for stat in PoolStat::ALL {
        text.push_str(&format!(
            "  {:<20}\"{}\"\n",
            stat.name(),
            stat.description()
        ));
    }
    text.push_str("\nserver stats:\n");
    for stat in ServerStat::ALL {
        text.push_str(&format!(
            "  {:<20}\"{}\"\n",
            stat.name(),
            stat.description()
        ));
    }
    text
}
