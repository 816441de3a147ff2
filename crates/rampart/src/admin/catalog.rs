//! The names and meanings of nutcracker's stats counters, in the order its stats JSON and
//! `--describe-stats` list them. Counters are indexed by these enums everywhere.

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
