//! The bottom two lines: upload queue, spool depth, tasks and the session's
//! totals, said honestly to be for this session only, and the keys.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::app::{App, Screen};
use super::render::count;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let (entries, matches) = app.totals();
    let first = Line::from(format!(
        " {} entries · {} matches · {} uploaded │ spool {} │ tasks {}, {} done",
        count(entries),
        count(matches),
        count(app.uploaded),
        app.spool_batches,
        app.active_tasks,
        app.tasks_done,
    ));
    let keys = match app.screen {
        Screen::Main => "q quit  p pause  ↑↓ select  ⏎ detail  +/- cap",
        Screen::Detail => "Esc back  q quit  p pause  ↑↓ other log  ± cap",
    };
    let second = Line::styled(
        format!(" {keys} │ totals: this session only"),
        Style::new().fg(Color::DarkGray),
    );
    frame.render_widget(Paragraph::new(vec![first, second]), area);
}
