//! Standard error, shared by log lines and a command's progress line.
//!
//! A progress line is redrawn in place (`\r`) and only on a terminal; a
//! log line written while one is shown first ends it, so each log line
//! stands on its own line and a redirected standard error holds log lines
//! only.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static SHOWN: AtomicBool = AtomicBool::new(false);

/// Draws `line` as the progress line, on a terminal only.
pub fn progress(line: &str) {
    let mut err = std::io::stderr().lock();
    if !err.is_terminal() {
        return;
    }
    // Clear to the end of the line, in case the last one was longer.
    let _ = write!(err, "\r{line}\x1b[K");
    let _ = err.flush();
    SHOWN.store(true, Ordering::Relaxed);
}

/// Ends the progress line, if one is shown, so what follows starts afresh.
pub fn end_progress() {
    if SHOWN.swap(false, Ordering::Relaxed) {
        let _ = writeln!(std::io::stderr());
    }
}

/// The writer for log lines: ends any progress line first.
pub fn log_writer() -> std::io::Stderr {
    end_progress();
    std::io::stderr()
}
