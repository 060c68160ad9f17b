//! The manager's scaling decisions as they arrived, newest first.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::app::App;
use super::render::{clock, fit_left, short_name};

/// All decisions, or only those of `log`.
pub fn render(app: &App, frame: &mut Frame, area: Rect, log: Option<&str>) {
    let block = Block::bordered().title(" Manager scaling (fetchers, reason) ");
    let rows = usize::from(block.inner(area).height);
    let lines: Vec<Line> = app
        .scaling
        .iter()
        .rev()
        .filter(|e| log.is_none_or(|l| e.log == l))
        .take(rows)
        .map(|e| {
            let mut spans = vec![
                Span::styled(clock(e.at), Style::new().fg(Color::DarkGray)),
                Span::raw(" "),
            ];
            if log.is_none() {
                spans.push(Span::raw(format!("{} ", fit_left(short_name(&e.log), 14))));
            }
            spans.push(Span::styled(
                format!("→{} ", e.fetchers),
                Style::new().fg(Color::Cyan),
            ));
            spans.push(Span::raw(e.reason.clone()));
            Line::from(spans)
        })
        .collect();
    let p = if lines.is_empty() {
        Paragraph::new("no scaling decisions yet").style(Style::new().fg(Color::DarkGray))
    } else {
        Paragraph::new(lines)
    };
    frame.render_widget(p.block(block), area);
}
