//! Overlays: the help (`?`) and the drain countdown shown while stopping.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::app::App;

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(h.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [c] = Layout::horizontal([Constraint::Length(w.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    c
}

pub fn help(app: &App, frame: &mut Frame, area: Rect) {
    let cap = match app.user_cap {
        0 => format!("none (manager's figure, at most {})", app.max_fetchers),
        c => format!("{c} per log"),
    };
    let text = vec![
        Line::styled("Keys", Style::new().add_modifier(Modifier::BOLD)),
        Line::from("  q, Ctrl-C   stop: finish, flush uploads (twice: now)"),
        Line::from("  p           pause / resume claiming new work"),
        Line::from("  ↑ ↓ (k j)   select a log"),
        Line::from("  Enter       detail of the selected log; Esc back"),
        Line::from("  + -         raise / lower your cap on fetchers"),
        Line::from("  ?           this help; any key closes it"),
        Line::from(""),
        Line::from(format!("  your cap: {cap}")),
        Line::from("  The manager's allowance still applies; a new cap"),
        Line::from("  takes effect at the next heartbeat."),
        Line::from(""),
        Line::from("  session: this run; lifetime: your name's, all its"),
        Line::from("  machines, as the manager counts them (every minute)."),
        Line::from("  .jp: the share of entries that named a .jp domain."),
        Line::from("  ETA: the log's entries left at the whole fleet's rate"),
        Line::from("  of the last 10 minutes (— when not known yet)."),
    ];
    let r = centered(area, 60, text.len() as u16 + 2);
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(text).block(Block::bordered().title(" Help ")),
        r,
    );
}

pub fn drain(app: &App, frame: &mut Frame, area: Rect) {
    let left = app.drain_left.unwrap_or(app.drain_timeout).as_secs();
    let text = vec![
        Line::styled(
            format!(
                "Stopping: {left} s left of {} s",
                app.drain_timeout.as_secs()
            ),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ),
        Line::from(format!(
            "No new claims; finishing ranges and flushing uploads ({} batches in the spool).",
            app.spool_batches
        )),
        Line::styled(
            "q again quits now; unsent uploads stay in the spool for the next start.",
            Style::new().fg(Color::DarkGray),
        ),
    ];
    let r = centered(area, 58, 7);
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(" Quitting ")),
        r,
    );
}
