//! Recent log lines for the UI: a `tracing_subscriber::fmt` layer writes each
//! event into a [`LogBuffer`] (a small ring) instead of the terminal.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

const KEEP: usize = 500;

/// The newest formatted log lines, shared between the logging layer and the UI.
#[derive(Debug, Clone, Default)]
pub struct LogBuffer(Arc<Mutex<VecDeque<String>>>);

impl LogBuffer {
    pub fn push(&self, line: impl Into<String>) {
        if let Ok(mut b) = self.0.lock() {
            b.push_back(line.into());
            while b.len() > KEEP {
                b.pop_front();
            }
        }
    }

    /// The last `n` lines, oldest first.
    pub fn recent(&self, n: usize) -> Vec<String> {
        self.0
            .lock()
            .map(|b| b.iter().skip(b.len().saturating_sub(n)).cloned().collect())
            .unwrap_or_default()
    }
}

/// Collects one event's text; the lines go to the buffer when dropped.
pub struct LineWriter {
    text: Vec<u8>,
    sink: LogBuffer,
}

impl io::Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        for line in String::from_utf8_lossy(&self.text).lines() {
            if !line.trim().is_empty() {
                self.sink.push(line);
            }
        }
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            text: Vec::new(),
            sink: self.clone(),
        }
    }
}

/// `HH:MM:SS` in UTC: short enough for the log pane.
#[derive(Debug, Clone, Copy)]
pub struct Clock;

impl FormatTime for Clock {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        let s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            % 86_400;
        write!(w, "{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    }
}
