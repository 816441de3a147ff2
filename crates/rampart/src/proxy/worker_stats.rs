//! One worker's counters. The data path counts only through these methods (no lock: the table
//! lives on the worker's thread), and the worker copies the table to the stats board on a timer.

use std::cell::RefCell;
use std::time::Duration;

use rampart_config::Config;

use crate::admin::catalog::{LimitStat, PoolStat, ServerStat};
use crate::admin::stats::StatsTable;

pub struct WorkerStats {
    table: RefCell<StatsTable>,
}

impl WorkerStats {
    pub fn new(config: &Config) -> WorkerStats {
        WorkerStats {
            table: RefCell::new(StatsTable::new(config)),
        }
    }

    /// The counters for the configuration a reload brought (`to`), taken over from these
    /// (indexed like `from`): those of pools and servers that stay go on. The server
    /// connection gauges start at 0, as the new configuration opens connections of its own,
    /// and the clients of removed pools leave the connection gauge, as they are closed.
    pub fn carried_over(&self, from: &Config, to: &Config) -> WorkerStats {
        let old = self.table.borrow();
        let mut table = old.remapped(from, to);
        let connections = ServerStat::ServerConnections as usize;
        let mut leaving = 0;
        for (index, (pool, counters)) in from.pools.iter().zip(&old.pools).enumerate() {
            let servers = counters.servers.iter();
            leaving += servers
                .filter_map(|server| server.get(connections))
                .sum::<u64>();
            if !to.pools.iter().any(|kept| kept.name == pool.name) {
                leaving += old.pool(index, PoolStat::ClientConnections);
            }
        }
        for counters in &mut table.pools {
            for gauge in counters
                .servers
                .iter_mut()
                .filter_map(|s| s.get_mut(connections))
            {
                *gauge = 0;
            }
        }
        table.current_connections = table.current_connections.saturating_sub(leaving);
        WorkerStats {
            table: RefCell::new(table),
        }
    }

    /// A pool listener was opened (nutcracker counts it as a connection).
    pub fn listener_opened(&self) {
        let mut table = self.table.borrow_mut();
        table.total_connections += 1;
        table.current_connections += 1;
    }

    /// A reload closed a pool listener.
    pub fn listener_closed(&self) {
        let mut table = self.table.borrow_mut();
        table.current_connections = table.current_connections.saturating_sub(1);
    }

    pub fn client_opened(&self, pool: usize) {
        let mut table = self.table.borrow_mut();
        *table.pool_mut(pool, PoolStat::ClientConnections) += 1;
        table.total_connections += 1;
        table.current_connections += 1;
    }

    /// A client left: `how` is `client_eof` or `client_err`.
    pub fn client_closed(&self, pool: usize, how: PoolStat) {
        let mut table = self.table.borrow_mut();
        *table.pool_mut(pool, how) += 1;
        let gauge = table.pool_mut(pool, PoolStat::ClientConnections);
        *gauge = gauge.saturating_sub(1);
        table.current_connections = table.current_connections.saturating_sub(1);
    }

    /// A client of `pool` was parked (`true`) or left the parking lot (`false`).
    pub fn client_parked(&self, pool: usize, parked: bool) {
        let mut table = self.table.borrow_mut();
        let gauge = table.parked_clients_mut(pool);
        *gauge = if parked {
            *gauge + 1
        } else {
            gauge.saturating_sub(1)
        };
    }

    /// Clients connected to this worker, over every pool.
    pub fn clients(&self) -> u64 {
        let table = self.table.borrow();
        (0..table.pools.len())
            .map(|pool| table.pool(pool, PoolStat::ClientConnections))
            .sum()
    }

    pub fn fragments(&self, pool: usize, count: usize) {
        *self.table.borrow_mut().pool_mut(pool, PoolStat::Fragments) += count as u64;
    }

    /// A client limit of `pool` was enforced.
    pub fn limit_enforced(&self, pool: usize, limit: LimitStat) {
        *self.table.borrow_mut().limit_mut(pool, limit) += 1;
    }

    pub fn forward_error(&self, pool: usize) {
        *self
            .table
            .borrow_mut()
            .pool_mut(pool, PoolStat::ForwardError) += 1;
    }

    pub fn request_sent(&self, pool: usize, server: usize, bytes: usize) {
        let mut table = self.table.borrow_mut();
        *table.server_mut(pool, server, ServerStat::Requests) += 1;
        *table.server_mut(pool, server, ServerStat::RequestBytes) += bytes as u64;
    }

    /// A reply of `bytes` arrived, `elapsed` after its request was read from the client.
    pub fn reply_received(&self, pool: usize, server: usize, bytes: usize, elapsed: Duration) {
        let mut table = self.table.borrow_mut();
        *table.server_mut(pool, server, ServerStat::Responses) += 1;
        *table.server_mut(pool, server, ServerStat::ResponseBytes) += bytes as u64;
        table.latency_mut(pool).record(elapsed);
    }

    pub fn server_connection_opened(&self, pool: usize, server: usize) {
        let mut table = self.table.borrow_mut();
        *table.server_mut(pool, server, ServerStat::ServerConnections) += 1;
        table.total_connections += 1;
        table.current_connections += 1;
    }

    pub fn server_connection_closed(&self, pool: usize, server: usize) {
        let mut table = self.table.borrow_mut();
        let gauge = table.server_mut(pool, server, ServerStat::ServerConnections);
        *gauge = gauge.saturating_sub(1);
        table.current_connections = table.current_connections.saturating_sub(1);
    }

    /// A connection to a server ended badly: `how` is `server_eof`, `server_err` or
    /// `server_timedout`.
    pub fn server_failed(&self, pool: usize, server: usize, how: ServerStat) {
        *self.table.borrow_mut().server_mut(pool, server, how) += 1;
    }

    /// Copies the counters into `snapshot` (which keeps its allocation between calls).
    pub fn copy_into(&self, snapshot: &mut StatsTable) {
        snapshot.clone_from(&self.table.borrow());
    }
}
