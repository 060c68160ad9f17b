//! The feed of the latest matching names and the pane of recent log lines.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph};

use super::app::App;

/// Newest names at the top; only those of `log` when given.
pub fn names(app: &App, frame: &mut Frame, area: Rect, log: Option<&str>) {
    let block = Block::bordered().title(" Latest matches ");
    let rows = usize::from(block.inner(area).height);
    let lines: Vec<Line> = app
        .feed
        .iter()
        .rev()
        .filter(|(l, _)| log.is_none_or(|x| x == l))
        .take(rows)
        .map(|(_, n)| Line::from(n.clone()))
        .collect();
    let p = if lines.is_empty() {
        Paragraph::new("no matches yet").style(Style::new().fg(Color::DarkGray))
    } else {
        Paragraph::new(lines)
    };
    frame.render_widget(p.block(block), area);
}

/// The newest log lines that fit, oldest at the top.
pub fn log_lines(app: &App, frame: &mut Frame, area: Rect) {
    let title = if app.log_path.is_empty() {
        " Log ".to_owned()
    } else {
        format!(" Log (files in {}) ", app.log_path)
    };
    let block = Block::bordered().title(title);
    let rows = usize::from(block.inner(area).height);
    let lines: Vec<Line> = app
        .log_lines
        .iter()
        .skip(app.log_lines.len().saturating_sub(rows))
        .map(|l| {
            let style = if l.contains(" ERROR ") {
                Style::new().fg(Color::Red)
            } else if l.contains(" WARN ") {
                Style::new().fg(Color::Yellow)
            } else {
                Style::new()
            };
            Line::styled(l.clone(), style)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
