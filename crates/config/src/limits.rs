//! rampart's per-client limits of a pool: the directives that bound what one client may make the
//! proxy hold (its connections, request size, pipeline, unread replies and idle time), their
//! defaults, and Redis's size syntax (`512mb`, `64kb`, `1g`) for the byte-valued ones.
//! `client_connections` is nutcracker's own directive, which nutcracker parses and ignores;
//! rampart enforces it.

use crate::error::{ConfigErrorKind, Fault, Setting};

/// Redis's `proto-max-bulk-len`.
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 512 * MB;
/// The most arguments Redis's request parser takes from one multibulk header.
pub const DEFAULT_MAX_REQUEST_ARGS: u32 = 1024 * 1024;
/// Requests a client may have waiting for replies before the proxy stops reading from it.
pub const DEFAULT_MAX_PIPELINE: u32 = 4096;
/// Bytes of requests in flight plus unread replies before the proxy stops reading a client.
pub const DEFAULT_MAX_PENDING_BYTES: u64 = 16 * MB;
/// Unread reply bytes that disconnect a client at once (one largest value fits).
pub const DEFAULT_OUTPUT_LIMIT: u64 = GB;
/// Unread reply bytes that disconnect a client when held for `client_output_soft_seconds`.
pub const DEFAULT_OUTPUT_SOFT_LIMIT: u64 = 256 * MB;
pub const DEFAULT_OUTPUT_SOFT_SECONDS: u32 = 60;
/// Server connections of its own that clients may hold at once, per worker, for transactions
/// and blocking commands.
pub const DEFAULT_DEDICATED_CONNECTIONS: u32 = 128;

const KB: u64 = 1024;
const MB: u64 = 1024 * KB;
const GB: u64 = 1024 * MB;

/// What one client of a pool may make the proxy hold, with every default applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// `client_connections:`, the pool's most clients; `None` (unset or 0) is unlimited, as
    /// nutcracker documents it.
    pub max_clients: Option<u32>,
    /// `client_max_request_bytes:`, the largest request; default 512 MB.
    pub max_request_bytes: u64,
    /// `client_max_request_args:`, the most arguments in one request; default 1,048,576.
    pub max_request_args: u32,
    /// `client_max_pipeline:`, requests waiting for replies before reading stops; default 4096.
    pub max_pipeline: u32,
    /// `client_max_pending_bytes:`, request bytes in flight plus unread reply bytes before
    /// reading stops; default 16 MB.
    pub max_pending_bytes: u64,
    /// `client_output_limit:`, unread reply bytes that disconnect the client; default 1 GB,
    /// `None` when set to 0.
    pub output_limit: Option<u64>,
    /// `client_output_soft_limit:`, unread reply bytes that disconnect the client once held
    /// for `output_soft_seconds`; default 256 MB, `None` when set to 0.
    pub output_soft_limit: Option<u64>,
    /// `client_output_soft_seconds:`, default 60.
    pub output_soft_seconds: u32,
    /// `client_idle_timeout:` in seconds; `None` (the default, or 0) never closes an idle
    /// client, as Redis's `timeout 0`.
    pub idle_timeout_seconds: Option<u32>,
    /// `dedicated_connections:`, how many server connections of their own (for MULTI, WATCH
    /// and blocking commands) the pool's clients may hold at once on each worker; default
    /// 128, 0 refuses those commands.
    pub dedicated_connections: u32,
}

impl Default for ClientLimits {
    fn default() -> ClientLimits {
        ClientLimits {
            max_clients: None,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_request_args: DEFAULT_MAX_REQUEST_ARGS,
            max_pipeline: DEFAULT_MAX_PIPELINE,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
            output_limit: Some(DEFAULT_OUTPUT_LIMIT),
            output_soft_limit: Some(DEFAULT_OUTPUT_SOFT_LIMIT),
            output_soft_seconds: DEFAULT_OUTPUT_SOFT_SECONDS,
            idle_timeout_seconds: None,
            dedicated_connections: DEFAULT_DEDICATED_CONNECTIONS,
        }
    }
}

/// The limit directives as read, before defaults.
#[derive(Debug, Clone, Default)]
pub(crate) struct LimitSettings {
    /// nutcracker parses it and ignores it; rampart enforces it.
    pub client_connections: Option<Setting<u32>>,
    pub max_request_bytes: Option<Setting<u64>>,
    pub max_request_args: Option<Setting<u32>>,
    pub max_pipeline: Option<Setting<u32>>,
    pub max_pending_bytes: Option<Setting<u64>>,
    pub output_limit: Option<Setting<u64>>,
    pub output_soft_limit: Option<Setting<u64>>,
    pub output_soft_seconds: Option<Setting<u32>>,
    pub idle_timeout: Option<Setting<u32>>,
    pub dedicated_connections: Option<Setting<u32>>,
}

impl LimitSettings {
    /// Applies the defaults; a limit that must hold at least one request cannot be 0, and a
    /// soft output limit cannot be above the hard one (an unset one is lowered to it).
    pub fn build(&self) -> Result<ClientLimits, Fault> {
        let defaults = ClientLimits::default();
        let nonzero_u32 = |setting: &Option<Setting<u32>>, name: &str, default: u32| {
            nonzero(setting, name, default, |value| *value == 0)
        };
        let nonzero_u64 = |setting: &Option<Setting<u64>>, name: &str, default: u64| {
            nonzero(setting, name, default, |value| *value == 0)
        };
        let output_limit = optional(&self.output_limit, defaults.output_limit);
        let limits = ClientLimits {
            max_clients: optional(&self.client_connections, defaults.max_clients),
            max_request_bytes: nonzero_u64(
                &self.max_request_bytes,
                "client_max_request_bytes",
                defaults.max_request_bytes,
            )?,
            max_request_args: nonzero_u32(
                &self.max_request_args,
                "client_max_request_args",
                defaults.max_request_args,
            )?,
            max_pipeline: nonzero_u32(
                &self.max_pipeline,
                "client_max_pipeline",
                defaults.max_pipeline,
            )?,
            max_pending_bytes: nonzero_u64(
                &self.max_pending_bytes,
                "client_max_pending_bytes",
                defaults.max_pending_bytes,
            )?,
            output_limit,
            output_soft_limit: match &self.output_soft_limit {
                Some(_) => optional(&self.output_soft_limit, None),
                None => defaults
                    .output_soft_limit
                    .map(|soft| output_limit.map_or(soft, |hard| soft.min(hard))),
            },
            output_soft_seconds: self
                .output_soft_seconds
                .as_ref()
                .map_or(defaults.output_soft_seconds, |setting| setting.value),
            idle_timeout_seconds: optional(&self.idle_timeout, defaults.idle_timeout_seconds),
            dedicated_connections: self
                .dedicated_connections
                .as_ref()
                .map_or(defaults.dedicated_connections, |setting| setting.value),
        };
        if let (Some(soft), Some(hard)) = (limits.output_soft_limit, limits.output_limit)
            && soft > hard
            && let Some(setting) = self
                .output_soft_limit
                .as_ref()
                .or(self.output_limit.as_ref())
        {
            return Err(Fault::directive(
                setting.pos,
                "client_output_soft_limit",
                ConfigErrorKind::SoftLimitAboveHardLimit { soft, hard },
            ));
        }
        Ok(limits)
    }
}

/// A setting where 0 means "no limit".
fn optional<T: Copy + Default + PartialEq>(
    setting: &Option<Setting<T>>,
    default: Option<T>,
) -> Option<T> {
    match setting {
        Some(setting) if setting.value == T::default() => None,
        Some(setting) => Some(setting.value),
        None => default,
    }
}

/// A setting that cannot be 0.
fn nonzero<T: Copy>(
    setting: &Option<Setting<T>>,
    name: &str,
    default: T,
    is_zero: impl Fn(&T) -> bool,
) -> Result<T, Fault> {
    match setting {
        Some(setting) if is_zero(&setting.value) => Err(Fault::directive(
            setting.pos,
            name,
            ConfigErrorKind::ZeroLimit {
                directive: name.to_owned(),
            },
        )),
        Some(setting) => Ok(setting.value),
        None => Ok(default),
    }
}

/// Reads a byte size as Redis's configuration does: decimal digits with an optional unit,
/// case-insensitive: `k`/`m`/`g` are powers of 1000, `kb`/`mb`/`gb` powers of 1024.
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at_checked(digits)?;
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => KB,
        "m" => 1000 * 1000,
        "mb" => MB,
        "g" => 1000 * 1000 * 1000,
        "gb" => GB,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(multiplier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_redis_reads_them() {
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("1k"), Some(1000));
        assert_eq!(parse_size("1kb"), Some(1024));
        assert_eq!(parse_size("64MB"), Some(64 * MB));
        assert_eq!(parse_size("2g"), Some(2_000_000_000));
        assert_eq!(parse_size("1Gb"), Some(GB));
        for bad in [
            "",
            "mb",
            "-1",
            "1.5mb",
            "1 mb",
            "1tb",
            "99999999999999999999gb",
        ] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }
}
