//! Throughput sparklines of the last minutes: all logs, and the selected log.

use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Sparkline};

use super::app::{App, mean_tail};
use super::render::{fit_left, rate, short_name};

/// The newest `width` samples, oldest first.
pub fn tail(h: &VecDeque<u64>, width: u16) -> Vec<u64> {
    h.iter()
        .skip(h.len().saturating_sub(usize::from(width)))
        .copied()
        .collect()
}

fn peak(h: &VecDeque<u64>) -> u64 {
    h.iter().copied().max().unwrap_or(0)
}

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let block = Block::bordered().title(" Entries/s (1 sample/s) ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [l1, s1, l2, s2] = Layout::vertical([Constraint::Length(1); 4]).areas(inner);
    let w = inner.width;
    frame.render_widget(
        Paragraph::new(Line::from(format!(
            "all logs {}/s, peak {}",
            rate(app.total_rate()),
            peak(&app.total_history)
        ))),
        l1,
    );
    frame.render_widget(
        Sparkline::default()
            .data(tail(&app.total_history, w))
            .style(Style::new().fg(Color::Green)),
        s1,
    );
    match app.selected_log() {
        Some(l) => {
            let label = format!(
                " {}/s, peak {}",
                rate(mean_tail(&l.history, 5)),
                peak(&l.history)
            );
            let room = usize::from(w).saturating_sub(label.chars().count());
            frame.render_widget(
                Paragraph::new(format!("{}{label}", fit_left(short_name(&l.name), room))),
                l2,
            );
            frame.render_widget(
                Sparkline::default()
                    .data(tail(&l.history, w))
                    .style(Style::new().fg(Color::Cyan)),
                s2,
            );
        }
        None => frame.render_widget(
            Paragraph::new("no log selected").style(Style::new().fg(Color::DarkGray)),
            l2,
        ),
    }
}
