//! The detail view of the selected log (Enter; Esc goes back): its counters
//! and .jp ratio this session, how much of the log is left and its ETA at
//! the fleet's rate, range gauge, throughput, scaling decisions and latest
//! names.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph, Sparkline};

use worker_engine::view::{UNKNOWN, fmt_eta, fmt_rate, fmt_ratio};

use super::app::App;
use super::render::{count, rate, short_name, state_style};
use super::{feed, scaling, throughput};

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let Some(l) = app.selected_log() else {
        frame.render_widget(Paragraph::new("no log"), area);
        return;
    };
    let [info, gauge, spark, lower] = Layout::vertical([
        Constraint::Length(7),
        Constraint::Length(3),
        Constraint::Length(5),
        Constraint::Min(3),
    ])
    .areas(area);
    let kind = if l.kind.is_empty() { "?" } else { l.kind };
    let label = |s: &'static str| Span::styled(s, Style::new().fg(Color::DarkGray));
    let lines = vec![
        Line::from(vec![
            label("kind "),
            Span::raw(format!("{kind:<9}")),
            label("state "),
            Span::styled(l.state.as_str(), state_style(l.state)),
        ]),
        Line::from(vec![
            label("entries "),
            Span::raw(format!("{:<10}", count(l.entries))),
            label("matches "),
            Span::raw(format!("{:<8}", count(l.matches))),
            label(".jp "),
            Span::raw(format!("{:<8}", fmt_ratio(l.matches, l.entries))),
            label("rate "),
            Span::raw(format!("{}/s", rate(l.rate()))),
        ]),
        Line::from(vec![
            label("requests "),
            Span::raw(format!("{:<9}", count(l.requests))),
            label("429s "),
            Span::raw(format!("{:<6}", count(l.rate_limited))),
            label("5xx "),
            Span::raw(format!("{:<6}", count(l.server_errors))),
            label("errors "),
            Span::raw(count(l.errors)),
        ]),
        Line::from(vec![
            label("fetchers "),
            Span::raw(format!(
                "{} in use / {} allowed",
                l.fetchers_active, l.fetchers_allowed
            )),
        ]),
        match l.outlook {
            Some(o) => Line::from(vec![
                label("log "),
                Span::raw(format!(
                    "{} entries, {} left",
                    count(o.tree_size),
                    count(o.remaining)
                )),
                label("  ETA "),
                Span::raw(fmt_eta(l.eta())),
                label(if o.fleet_rate > 0.0 {
                    "  at the fleet's "
                } else {
                    "  the fleet's rate is not known yet"
                }),
                Span::raw(if o.fleet_rate > 0.0 {
                    format!("{}/s", fmt_rate(o.fleet_rate))
                } else {
                    String::new()
                }),
            ]),
            None => Line::from(vec![
                label("log "),
                Span::raw(format!("{UNKNOWN} (the manager has not told yet)")),
            ]),
        },
    ];
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(format!(" {} ", short_name(&l.name)))),
        info,
    );
    let (ratio, text) = match l.range {
        Some((s, e, n)) => (
            l.progress().unwrap_or(0.0),
            format!("{n} of {s}-{e} ({} left)", e.saturating_sub(n)),
        ),
        None => (0.0, "no range held".to_owned()),
    };
    frame.render_widget(
        Gauge::default()
            .block(Block::bordered().title(" Current range "))
            .gauge_style(Style::new().fg(Color::Green).bg(Color::Black))
            .ratio(ratio)
            .label(text),
        gauge,
    );
    let block = Block::bordered().title(" Entries/s of this log ");
    let w = block.inner(spark).width;
    frame.render_widget(
        Sparkline::default()
            .block(block)
            .data(throughput::tail(&l.history, w))
            .style(Style::new().fg(Color::Cyan)),
        spark,
    );
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(lower);
    scaling::render(app, frame, left, Some(&l.name));
    feed::names(app, frame, right, Some(&l.name));
}
