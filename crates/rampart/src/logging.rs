//! The log: nutcracker's verbosity levels (0..11, default 5), its `-o` file that SIGHUP
//! reopens, and SIGTTIN/SIGTTOU raising or lowering the level while running.
//! Lines look like `[2026-11-25 15:20:00.123] INFO message` (UTC).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::Level;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::time::UtcTime;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// nutcracker's highest verbosity (PVERB).
pub const MAX_LEVEL: u8 = 11;

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
    pub fn install(verbosity: u8, path: Option<&Path>) -> io::Result<Log> {
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
        let timer = UtcTime::new(time::macros::format_description!(
            "[[[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]]"
        ));
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(SharedTarget(Arc::clone(&log.target)))
            .with_timer(timer)
            .with_ansi(false)
            .with_target(false)
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
