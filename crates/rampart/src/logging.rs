//! The log: nutcracker's verbosity levels (0..11, default 5), its `-o` file that SIGHUP
//! reopens, SIGTTIN/SIGTTOU raising or lowering the level while running, and the line format
//! of `--log-format`. Text lines look like `[2026-11-25 15:20:00.123]  INFO message` (UTC);
//! JSON lines like `{"ts":"2026-11-25T15:20:00.123Z","level":"INFO","message":"message"}`,
//! one object per line, with any structured fields after `message`.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use clap::ValueEnum;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::format::{self, Full};
use tracing_subscriber::fmt::time::UtcTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// nutcracker's highest verbosity (PVERB).
pub const MAX_LEVEL: u8 = 11;

/// The shape of a log line (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// nutcracker-like lines: `[YYYY-MM-DD HH:MM:SS.mmm] LEVEL message`, UTC
    Text,
    /// One JSON object per line: `ts` (RFC 3339, UTC, milliseconds), `level`, `message`, and
    /// any structured fields
    Json,
}

/// The timestamp of text lines, nutcracker's.
const TEXT_TIME: &[BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[[[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]]"
);

/// The `ts` of JSON lines: RFC 3339 in UTC with milliseconds.
const JSON_TIME: &[BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
);

/// Formats one event as a line of the chosen [`LogFormat`].
enum LineFormat {
    Text(format::Format<Full, UtcTime<&'static [BorrowedFormatItem<'static>]>>),
    Json,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: format::Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        match self {
            LineFormat::Text(text) => text.format_event(context, writer, event),
            LineFormat::Json => {
                let line = json_line(OffsetDateTime::now_utc(), event)?;
                writer.write_str(&line)
            }
        }
    }
}

/// One event as a JSON object and a newline. Every string goes through serde_json, so quotes,
/// backslashes, newlines and control characters in a message stay inside their string.
fn json_line(now: OffsetDateTime, event: &Event<'_>) -> Result<String, fmt::Error> {
    let mut fields = JsonFields::default();
    event.record(&mut fields);
    let ts = now.format(JSON_TIME).map_err(|_| fmt::Error)?;
    let mut line = String::with_capacity(128);
    line.push_str("{\"ts\":");
    line.push_str(&Value::String(ts).to_string());
    line.push_str(",\"level\":");
    line.push_str(&Value::from(event.metadata().level().as_str()).to_string());
    line.push_str(",\"message\":");
    line.push_str(&Value::String(fields.message).to_string());
    for (name, value) in fields.others {
        line.push(',');
        line.push_str(&Value::String(name).to_string());
        line.push(':');
        line.push_str(&value.to_string());
    }
    line.push_str("}\n");
    Ok(line)
}

/// The fields of one event: the message, and the others in the order they were recorded.
/// A field named like one of the line's own keys is renamed with a `field.` prefix.
#[derive(Default)]
struct JsonFields {
    message: String,
    others: Vec<(String, Value)>,
}

impl JsonFields {
    fn add(&mut self, field: &Field, value: Value) {
        match field.name() {
            "message" => {
                self.message = match value {
                    Value::String(text) => text,
                    other => other.to_string(),
                }
            }
            name @ ("ts" | "level") => self.others.push((format!("field.{name}"), value)),
            name => self.others.push((name.to_owned(), value)),
        }
    }
}

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.add(field, Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.add(field, Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.add(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.add(field, Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.add(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.add(field, Value::from(value));
    }
}

/// Where log lines go: stderr, or a file opened for appending.
enum Target {
    Stderr,
    File(File),
}

impl Write for Target {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Target::Stderr => io::stderr().write(bytes),
            Target::File(file) => file.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Target::Stderr => io::stderr().flush(),
            Target::File(file) => file.flush(),
        }
    }
}

/// A handle on the running log: change its level, reopen its file.
#[derive(Clone)]
pub struct Log {
    level: Arc<AtomicU8>,
    target: Arc<Mutex<Target>>,
    path: Option<PathBuf>,
}

/// Hands tracing a locked writer per line.
struct SharedTarget(Arc<Mutex<Target>>);

struct TargetGuard<'a>(MutexGuard<'a, Target>);

impl Write for TargetGuard<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<'a> MakeWriter<'a> for SharedTarget {
    type Writer = TargetGuard<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        TargetGuard(self.0.lock().unwrap_or_else(|poison| poison.into_inner()))
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Whether a tracing level is shown at nutcracker verbosity `verbosity`.
fn shown(verbosity: u8, level: &Level) -> bool {
    let needed = match *level {
        Level::ERROR => 0,
        Level::WARN => 4,
        Level::INFO => 5,
        Level::DEBUG => 7,
        Level::TRACE => 8,
    };
    verbosity >= needed
}

impl Log {
    /// Installs the global logger. `path` is `-o`; without it lines go to stderr.
    pub fn install(verbosity: u8, path: Option<&Path>, format: LogFormat) -> io::Result<Log> {
        let target = match path {
            Some(path) => Target::File(open_append(path)?),
            None => Target::Stderr,
        };
        let log = Log {
            level: Arc::new(AtomicU8::new(verbosity.min(MAX_LEVEL))),
            target: Arc::new(Mutex::new(target)),
            path: path.map(Path::to_path_buf),
        };
        let level = Arc::clone(&log.level);
        let lines = match format {
            LogFormat::Text => LineFormat::Text(
                format::format()
                    .with_timer(UtcTime::new(TEXT_TIME))
                    .with_ansi(false)
                    .with_target(false),
            ),
            LogFormat::Json => LineFormat::Json,
        };
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(SharedTarget(Arc::clone(&log.target)))
            .with_ansi(false)
            .event_format(lines)
            .with_filter(filter_fn(move |meta| {
                shown(level.load(Ordering::Relaxed), meta.level())
            }));
        let _ = tracing_subscriber::registry().with(layer).try_init();
        Ok(log)
    }

    /// The current verbosity.
    pub fn level(&self) -> u8 {
        self.level.load(Ordering::Relaxed)
    }

    /// Raises (`up`) or lowers the verbosity by one, within 0..=11; returns the new level.
    pub fn step_level(&self, up: bool) -> u8 {
        let current = self.level();
        let next = if up {
            (current + 1).min(MAX_LEVEL)
        } else {
            current.saturating_sub(1)
        };
        self.level.store(next, Ordering::Relaxed);
        next
    }

    /// Reopens the log file (after logrotate moved it). Logging to stderr needs nothing.
    pub fn reopen(&self) -> io::Result<()> {
        if let Some(path) = &self.path {
            let file = open_append(path)?;
            *self
                .target
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()) = Target::File(file);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt;

    use super::LineFormat;

    /// A log writer that keeps what it is given, for tests.
    #[derive(Clone, Default)]
    pub(crate) struct Captured(pub(crate) Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    #[test]
    fn json_lines_escape_quotes_newlines_and_carry_fields() {
        let captured = Captured::default();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(captured.clone())
            .event_format(LineFormat::Json);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!("a \"quoted\" word,\na new line, a tab\t and \\ a backslash");
            tracing::info!(pool = "alpha", shard = 2, ts = "mine", "with fields");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["level"], "WARN");
        assert_eq!(
            first["message"],
            "a \"quoted\" word,\na new line, a tab\t and \\ a backslash"
        );
        let ts = first["ts"].as_str().unwrap();
        let shape: String = ts
            .chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect();
        assert_eq!(shape, "9999-99-99T99:99:99.999Z");
        assert!(lines[0].starts_with("{\"ts\":\""), "{}", lines[0]);
        let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second["message"], "with fields");
        assert_eq!(second["pool"], "alpha");
        assert_eq!(second["shard"], 2);
        assert_eq!(second["field.ts"], "mine");
        assert_ne!(second["ts"], "mine");
    }
}
