//! The pure render function: lays the screen out and hands each region to its
//! own module. Nothing here reads the engine or the clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};

use worker_engine::stats::LogState;

use super::app::{App, Screen};
use super::{detail, feed, footer, header, popups, scaling, table, throughput};

/// Draws the whole screen for `app`.
pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let [top, body, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(footer::HEIGHT),
    ])
    .areas(area);
    header::render(app, frame, top);
    footer::render(app, frame, bottom);
    match app.screen {
        Screen::Main => render_main(app, frame, body),
        Screen::Detail => detail::render(app, frame, body),
    }
    if app.drain_started.is_some() {
        popups::drain(app, frame, area);
    }
    if app.help {
        popups::help(app, frame, area);
    }
}

fn render_main(app: &App, frame: &mut Frame, area: Rect) {
    // The table takes what its rows need, up to a third of the screen.
    let rows = app.logs.len().max(1) as u16 + 3;
    let table_h = rows.min((area.height / 3).max(5));
    let [t, middle, lower] = Layout::vertical([
        Constraint::Length(table_h),
        Constraint::Length(6),
        Constraint::Min(3),
    ])
    .areas(area);
    table::render(app, frame, t);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(middle);
    throughput::render(app, frame, left);
    scaling::render(app, frame, right, None);
    let [names, logs] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(lower);
    feed::names(app, frame, names, None);
    feed::log_lines(app, frame, logs);
}

/// A log URL without its scheme and trailing slash.
pub fn short_name(url: &str) -> &str {
    let s = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    s.trim_end_matches('/')
}

/// Keeps the end of `s` (the most telling part of a log URL) within `width`.
pub fn fit_left(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let tail: String = s.chars().skip(n - (width - 1)).collect();
    format!("…{tail}")
}

/// 1234 → "1234", 12345 → "12.3k", 1234567 → "1.23M".
pub fn count(n: u64) -> String {
    match n {
        0..10_000 => n.to_string(),
        10_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2}M", n as f64 / 1e6),
        _ => format!("{:.2}G", n as f64 / 1e9),
    }
}

pub fn rate(r: f64) -> String {
    count(r.round() as u64)
}

/// `H:MM:SS`.
pub fn hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `HH:MM:SS` UTC.
pub fn clock(t: SystemTime) -> String {
    let s = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

pub fn state_style(s: LogState) -> Style {
    match s {
        LogState::Fetching => Style::new().fg(Color::Green),
        LogState::BackingOff => Style::new().fg(Color::Yellow),
        LogState::Error => Style::new().fg(Color::Red),
        LogState::Done => Style::new().fg(Color::Cyan),
        LogState::Idle => Style::new().fg(Color::DarkGray),
    }
}

/// A text progress bar such as `▰▰▰▱▱ 62%`.
pub fn bar(ratio: f64, cells: usize) -> String {
    let filled = ((ratio * cells as f64).round() as usize).min(cells);
    format!(
        "{}{} {:>3}%",
        "▰".repeat(filled),
        "▱".repeat(cells - filled),
        (ratio * 100.0).floor() as u64
    )
}
