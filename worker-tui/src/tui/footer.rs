//! The bottom three lines: this session's totals (with the upload queue and
//! spool), the name's lifetime totals and rank as the manager counts them
//! (all its machines) with the rank's change since yesterday, and the
//! dashboard link with the keys. Session and lifetime figures sit in the
//! same columns.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use worker_engine::view::{Standing, UNKNOWN, fmt_ratio};

use super::app::{App, Screen};
use super::render::count;

/// Lines the footer takes.
pub const HEIGHT: u16 = 3;

/// `label  entries  .jp  ratio  tasks` in fixed columns.
fn totals(label: &str, entries: u64, matches: u64, tasks: u64) -> String {
    format!(
        " {label:<8} {:>6} entries {:>5} .jp {:>7} {:>4} tasks",
        count(entries),
        count(matches),
        fmt_ratio(matches, entries),
        count(tasks),
    )
}

/// The rank with its change since yesterday and the machines, the first
/// that fits in `room` columns: `rank 3 of 17 (▲2 since yesterday), 2
/// machines`, `rank 3 of 17 ▲2, 2 machines`, `rank 3 of 17 ▲2`. Without a
/// known change: `rank 3 of 17, 2 machines`.
fn rank(s: &Standing, room: usize) -> String {
    let machines = match s.machines {
        1 => String::new(),
        n => format!(", {n} machines"),
    };
    let rank = s.rank_text();
    let Some(change) = s.rank_change_text() else {
        return format!("{rank}{machines}");
    };
    let fits = |t: &String| Span::raw(t.as_str()).width() <= room;
    [
        format!("{rank} ({change} since yesterday){machines}"),
        format!("{rank} {change}{machines}"),
    ]
    .into_iter()
    .find(fits)
    .unwrap_or_else(|| format!("{rank} {change}"))
}

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let dim = Style::new().fg(Color::DarkGray);
    let sep = || Span::styled(" │ ", dim);
    let (entries, matches) = app.totals();
    let session = Line::from(vec![
        Span::raw(totals("session", entries, matches, app.tasks_done)),
        sep(),
        Span::raw(format!(
            "{} stored, spool {}",
            count(app.uploaded),
            app.spool_batches
        )),
    ]);
    let lifetime = match &app.standing {
        Some(s) => {
            let head = Span::raw(totals("lifetime", s.entries, s.matches, s.tasks_done));
            let room = usize::from(area.width).saturating_sub(head.width() + sep().width());
            Line::from(vec![head, sep(), Span::raw(rank(s, room))])
        }
        None => Line::from(vec![
            Span::raw(format!(" {:<8} {UNKNOWN:>6}", "lifetime")),
            Span::styled("  (the manager has not told yet)", dim),
        ]),
    };
    let keys = match app.screen {
        Screen::Main => "q quit  p pause  ↑↓ select  ⏎ detail  +/- cap",
        Screen::Detail => "Esc back  q quit  p pause  ↑↓ other log  ± cap",
    };
    // The link first: it is what a volunteer copies; the keys are in the help too.
    let last = match app.standing.as_ref().and_then(|s| s.page_url.as_deref()) {
        Some(url) => Line::from(vec![
            Span::raw(format!(" {url}")),
            sep(),
            Span::styled(keys, dim),
        ]),
        None => Line::styled(format!(" {keys}"), dim),
    };
    frame.render_widget(Paragraph::new(vec![session, lifetime, last]), area);
}
