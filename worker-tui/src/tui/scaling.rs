//! The manager's scaling decisions as they arrived, newest first: new
//! fetcher figures and budgets (in the reason, e.g. `5 req/s, 256/req`),
//! and cooldowns (in yellow, without a fetcher figure).

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
            if e.is_cooldown() {
                // Kept off the log for a while: no fetcher figure to show.
                spans.push(Span::styled(
                    e.reason.clone(),
                    Style::new().fg(Color::Yellow),
                ));
            } else {
                spans.push(Span::styled(
                    format!("→{} ", e.fetchers),
                    Style::new().fg(Color::Cyan),
                ));
                spans.push(Span::raw(e.reason.clone()));
            }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

    use std::time::{Duration, Instant, SystemTime};

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use worker_engine::view::ScalingEvent;

    use super::*;

    fn text(app: &App, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| render(app, f, f.area(), None)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..h)
            .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn budgets_and_cooldowns_are_shown() {
        let mut app = App::new(8, Duration::from_secs(30), Instant::now());
        app.scaling = vec![
            ScalingEvent {
                at: SystemTime::UNIX_EPOCH,
                log: "https://a.example/log/".into(),
                fetchers: 3,
                reason: "steady · 5 req/s, 256/req".into(),
            },
            ScalingEvent::cooldown(
                SystemTime::UNIX_EPOCH,
                "https://b.example/log/".into(),
                Duration::from_secs(270),
                "3 failures in a row",
            ),
        ];
        let screen = text(&app, 90, 5);
        assert!(screen.contains("→3 steady · 5 req/s, 256/req"), "{screen}");
        assert!(
            screen.contains("cooling down 4m30s: 3 failures in a row"),
            "{screen}"
        );
        assert!(!screen.contains("→0"), "{screen}");
    }
}
