//! Rate limiting of log lines that clients or backends can repeat at will (a failing server,
//! accepts failing at the descriptor limit): each [`limited!`] call site logs at most
//! [`LINES_PER_WINDOW`] lines per [`WINDOW`] on each thread, counts the others, and says how
//! many it suppressed in one line of the same level: `N similar messages suppressed in the last
//! 1.0s (what)`. That line comes with the site's first line after the window, or from the
//! thread's next [`flush`] (every worker flushes once a second), whichever is first. The state
//! is thread-local: a line costs a clock read and no lock.

use std::cell::{Cell, RefCell};
use std::thread::LocalKey;
use std::time::{Duration, Instant};

use tracing::Level;

/// How many lines a call site may log per window on one thread.
pub const LINES_PER_WINDOW: u32 = 10;
/// The window the limit counts in.
pub const WINDOW: Duration = Duration::from_secs(1);

/// Logs like the `tracing` macro of the same name (`error`, `warn`, `info` or `debug`), at
/// most [`LINES_PER_WINDOW`] times per [`WINDOW`] from this call site on this thread. The
/// literal after the level names the lines in the summary of those suppressed.
macro_rules! limited {
    (error, $($rest:tt)+) => { $crate::log_limit::limited!(@at tracing::Level::ERROR, $($rest)+) };
    (warn, $($rest:tt)+) => { $crate::log_limit::limited!(@at tracing::Level::WARN, $($rest)+) };
    (info, $($rest:tt)+) => { $crate::log_limit::limited!(@at tracing::Level::INFO, $($rest)+) };
    (debug, $($rest:tt)+) => { $crate::log_limit::limited!(@at tracing::Level::DEBUG, $($rest)+) };
    (@at $level:expr, $what:literal, $($message:tt)+) => {{
        thread_local! {
            static SITE: $crate::log_limit::Site =
                const { $crate::log_limit::Site::new($level, $what) };
        }
        if tracing::enabled!($level) && $crate::log_limit::admit(&SITE) {
            tracing::event!($level, $($message)+);
        }
    }};
}
pub(crate) use limited;

/// One call site's count on one thread.
pub struct Site {
    level: Level,
    what: &'static str,
    /// When the current window began (none before the first line).
    window: Cell<Option<Instant>>,
    /// Lines logged in the current window.
    logged: Cell<u32>,
    /// Lines suppressed and not yet reported.
    suppressed: Cell<u64>,
    /// Listed in [`UNREPORTED`].
    listed: Cell<bool>,
}

thread_local! {
    /// The call sites of this thread with suppressed lines, for [`flush`].
    static UNREPORTED: RefCell<Vec<&'static LocalKey<Site>>> = const { RefCell::new(Vec::new()) };
}

impl Site {
    pub const fn new(level: Level, what: &'static str) -> Site {
        Site {
            level,
            what,
            window: Cell::new(None),
            logged: Cell::new(0),
            suppressed: Cell::new(0),
            listed: Cell::new(false),
        }
    }

    /// Whether the current window (if any) has ended at `now`.
    fn window_over(&self, now: Instant) -> bool {
        self.window
            .get()
            .is_none_or(|start| now.duration_since(start) >= WINDOW)
    }

    /// Logs how many lines were suppressed since the window began, if any.
    fn report(&self, now: Instant) {
        let suppressed = self.suppressed.replace(0);
        let Some(start) = self.window.get() else {
            return;
        };
        if suppressed == 0 {
            return;
        }
        let seconds = now.duration_since(start).as_secs_f64();
        let what = self.what;
        match self.level {
            Level::ERROR => tracing::error!(
                "{suppressed} similar messages suppressed in the last {seconds:.1}s ({what})"
            ),
            Level::WARN => tracing::warn!(
                "{suppressed} similar messages suppressed in the last {seconds:.1}s ({what})"
            ),
            Level::INFO => tracing::info!(
                "{suppressed} similar messages suppressed in the last {seconds:.1}s ({what})"
            ),
            _ => tracing::debug!(
                "{suppressed} similar messages suppressed in the last {seconds:.1}s ({what})"
            ),
        }
    }
}

/// Whether the call site `site` may log a line now; counts it as suppressed if not.
pub fn admit(site: &'static LocalKey<Site>) -> bool {
    site.with(|state| {
        let now = Instant::now();
        if state.window_over(now) {
            state.report(now);
            state.window.set(Some(now));
            state.logged.set(0);
        }
        if state.logged.get() < LINES_PER_WINDOW {
            state.logged.set(state.logged.get() + 1);
            return true;
        }
        state.suppressed.set(state.suppressed.get() + 1);
        if !state.listed.replace(true) {
            UNREPORTED.with(|unreported| unreported.borrow_mut().push(site));
        }
        false
    })
}

/// Reports the lines this thread's call sites suppressed in windows that have ended.
pub fn flush() {
    flush_at(Instant::now());
}

/// [`flush`] as if it were `now`.
fn flush_at(now: Instant) {
    UNREPORTED.with(|unreported| {
        unreported.borrow_mut().retain(|site| {
            site.with(|state| {
                if !state.window_over(now) {
                    return true;
                }
                state.report(now);
                state.listed.set(false);
                false
            })
        });
    });
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::{LINES_PER_WINDOW, WINDOW, flush, flush_at};
    use crate::logging::tests::Captured;

    #[test]
    fn a_site_logs_its_quota_then_one_summary_per_window() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            for attempt in 0..1000 {
                limited!(warn, "test failures", "attempt {attempt} failed");
                limited!(debug, "hidden lines", "not shown {attempt}");
            }
            flush();
            limited!(warn, "other failures", "another site");
            flush_at(Instant::now() + WINDOW);
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let quota = LINES_PER_WINDOW as usize;
        assert_eq!(lines.len(), quota + 2, "{text}");
        assert!(lines[quota - 1].contains("attempt 9 failed"), "{text}");
        assert!(lines[quota].contains("another site"), "{text}");
        let summary = lines[quota + 1];
        assert!(
            summary.contains(" WARN ")
                && summary.contains("990 similar messages suppressed in the last 1.")
                && summary.ends_with("s (test failures)"),
            "{summary}"
        );
    }
}
