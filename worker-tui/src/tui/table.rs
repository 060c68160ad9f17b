//! The logs table: one row per log with its state, current range progress,
//! entries/s, matches and their .jp ratio this session, the log's ETA (at
//! the fleet's rate, from the manager), 429s, errors and fetchers in use /
//! allowed. The kind shows from 90 columns, the range and a progress bar
//! from 120; the detail view always has them.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use worker_engine::view::{fmt_eta, fmt_ratio};

use super::app::{App, LogRow};
use super::render::{bar, count, fit_left, rate, short_name, state_style};

fn right(s: String) -> Cell<'static> {
    Cell::from(Line::from(s).alignment(Alignment::Right))
}

/// Which optional columns fit.
#[derive(Debug, Clone, Copy)]
struct Fit {
    kind: bool,
    /// The range and a progress bar instead of a percentage.
    wide: bool,
}

/// The columns after the name: header, width, right-aligned.
fn columns(fit: Fit) -> Vec<(&'static str, u16, bool)> {
    let mut c = Vec::new();
    if fit.kind {
        c.push(("Kind", 7, false));
    }
    c.push(("State", 11, false));
    if fit.wide {
        c.push(("Range", 17, false));
        c.push(("Progress", 10, false));
    } else {
        c.push(("Task", 4, true));
    }
    c.extend([
        ("e/s", 6, true),
        ("Match", 6, true),
        (".jp", 7, true),
        ("ETA", 6, true),
        ("429", 5, true),
        ("Err", 5, true),
        ("Fetch", 5, true),
    ]);
    c
}

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let title = match app.active_tasks {
        0 => " Logs ".to_owned(),
        1 => " Logs · 1 task held ".to_owned(),
        n => format!(" Logs · {n} tasks held "),
    };
    let block = Block::bordered().title(title);
    if app.logs.is_empty() {
        let text = if app.paused {
            "paused: no work is claimed (p to resume)"
        } else {
            "no work yet: waiting for the manager to hand out ranges…"
        };
        frame.render_widget(
            Paragraph::new(text)
                .style(Style::new().fg(Color::DarkGray))
                .block(block),
            area,
        );
        return;
    }
    let fit = Fit {
        kind: area.width >= 90,
        wide: area.width >= 120,
    };
    let cols = columns(fit);
    // Borders, the highlight symbol and one space between columns.
    let fixed: u16 = cols.iter().map(|(_, w, _)| w + 1).sum::<u16>() + 3;
    let name_w = usize::from(area.width.saturating_sub(fixed)).max(8);
    let header = Row::new(std::iter::once(Cell::from("Log")).chain(cols.iter().map(
        |&(h, _, r)| {
            if r {
                right(h.to_owned())
            } else {
                Cell::from(h)
            }
        },
    )))
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = app.logs.iter().map(|l| row(l, name_w, fit));
    let widths = std::iter::once(Constraint::Fill(1))
        .chain(cols.iter().map(|&(_, w, _)| Constraint::Length(w)));
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("›");
    let mut state = TableState::default().with_selected(Some(app.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

fn row(l: &LogRow, name_w: usize, fit: Fit) -> Row<'static> {
    let errors = l.errors + l.server_errors;
    let mut cells = vec![Cell::from(fit_left(short_name(&l.name), name_w))];
    if fit.kind {
        cells.push(Cell::from(if l.kind.is_empty() { "?" } else { l.kind }));
    }
    cells.push(Cell::from(l.state.as_str()).style(state_style(l.state)));
    if fit.wide {
        cells.push(Cell::from(
            l.range
                .map_or_else(|| "-".to_owned(), |(s, e, _)| format!("{s}-{e}")),
        ));
        cells.push(Cell::from(
            l.progress().map_or_else(|| "-".to_owned(), |p| bar(p, 5)),
        ));
    } else {
        cells.push(right(l.progress().map_or_else(
            || "-".to_owned(),
            |p| format!("{}%", (p * 100.0).floor() as u64),
        )));
    }
    cells.extend([
        right(rate(l.rate())),
        right(count(l.matches)),
        right(fmt_ratio(l.matches, l.entries)),
        right(fmt_eta(l.eta())),
        right(count(l.rate_limited)).style(if l.rate_limited > 0 {
            Style::new().fg(Color::Yellow)
        } else {
            Style::new()
        }),
        right(count(errors)).style(if errors > 0 {
            Style::new().fg(Color::Red)
        } else {
            Style::new()
        }),
        right(format!("{}/{}", l.fetchers_active, l.fetchers_allowed)),
    ]);
    Row::new(cells)
}
