//! The detail view of the selected log (Enter; Esc goes back): its counters,
//! range gauge, throughput, scaling decisions and latest names.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph, Sparkline};

use super::app::App;
use super::render::{count, rate, short_name, state_style};
use super::{feed, scaling, throughput};

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let Some(l) = app.selected_log() else {
        frame.render_widget(Paragraph::new("no log"), area);
        return;
    };
    let [info, gauge, spark, lower] = Layout::vertical([
        Constraint::Length(6),
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
