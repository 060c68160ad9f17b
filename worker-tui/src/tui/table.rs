//! The logs table: one row per log with its kind, state, range progress,
//! entries/s, matches, 429s, errors and fetchers in use / allowed.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use super::app::{App, LogRow};
use super::render::{bar, count, fit_left, rate, short_name, state_style};

fn right(s: String) -> Cell<'static> {
    Cell::from(Line::from(s).alignment(Alignment::Right))
}

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let block = Block::bordered().title(" Logs ");
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
    // The range column fits from 100 columns up; the detail view always has it.
    let wide = area.width >= 100;
    let name_w = usize::from(area.width.saturating_sub(if wide { 84 } else { 66 })).max(8);
    let mut head = vec!["Log", "Kind", "State"];
    if wide {
        head.push("Range");
    }
    head.extend(["Progress", "e/s", "Match", "429", "Err", "Fetch"]);
    let header = Row::new(head.into_iter().map(|h| match h {
        "e/s" | "Match" | "429" | "Err" | "Fetch" => right(h.to_owned()),
        _ => Cell::from(h),
    }))
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = app.logs.iter().map(|l| row(l, name_w, wide));
    let mut widths = vec![
        Constraint::Fill(1),
        Constraint::Length(7),
        Constraint::Length(11),
    ];
    if wide {
        widths.push(Constraint::Length(17));
    }
    widths.extend([
        Constraint::Length(10),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(5),
    ]);
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("›");
    let mut state = TableState::default().with_selected(Some(app.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

fn row(l: &LogRow, name_w: usize, wide: bool) -> Row<'static> {
    let progress = l.progress().map_or_else(|| "-".to_owned(), |p| bar(p, 5));
    let errors = l.errors + l.server_errors;
    let mut cells = vec![
        Cell::from(fit_left(short_name(&l.name), name_w)),
        Cell::from(if l.kind.is_empty() { "?" } else { l.kind }),
        Cell::from(l.state.as_str()).style(state_style(l.state)),
    ];
    if wide {
        cells.push(Cell::from(
            l.range
                .map_or_else(|| "-".to_owned(), |(s, e, _)| format!("{s}-{e}")),
        ));
    }
    cells.extend([
        Cell::from(progress),
        right(rate(l.rate())),
        right(count(l.matches)),
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
