//! The top line: worker name, connection to the manager, paused or running,
//! the user's cap, uptime and the help key.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::App;
use super::render::hms;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let worker = if app.worker.is_empty() {
        "(registering)"
    } else {
        app.worker.as_str()
    };
    let manager_style = if app.manager.starts_with("connected") {
        Style::new().fg(Color::Green)
    } else if app.manager.starts_with("connecting") {
        Style::new().fg(Color::Yellow)
    } else {
        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
    };
    let (status, status_style) = if app.drain_started.is_some() {
        ("STOPPING", Style::new().fg(Color::Black).bg(Color::Yellow))
    } else if app.paused {
        ("PAUSED", Style::new().fg(Color::Black).bg(Color::Yellow))
    } else {
        ("running", Style::new().fg(Color::Green))
    };
    let cap = match app.user_cap {
        0 => "none".to_owned(),
        c => c.to_string(),
    };
    let sep = Span::styled(" │ ", Style::new().fg(Color::DarkGray));
    let line = Line::from(vec![
        Span::styled(
            format!(" ct-worker {worker}"),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        sep.clone(),
        Span::raw("mgr "),
        Span::styled(app.manager.clone(), manager_style),
        sep.clone(),
        Span::styled(status, status_style),
        sep.clone(),
        Span::raw(format!("cap {cap}")),
        sep.clone(),
        Span::raw(hms(app.uptime)),
        sep,
        Span::styled("? help", Style::new().fg(Color::DarkGray)),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}
