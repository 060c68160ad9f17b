//! Snapshot tests of every view (gitui style: `TestBackend` + `insta`), from
//! an `EngineView` filled by hand, plus the update logic and key bindings.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use worker_engine::stats::{LogState, LogStats, Outlook};
use worker_engine::view::{EngineView, ScalingEvent, Standing};

use super::app::{Action, App, Command, Screen, update};
use super::logs::LogBuffer;
use super::{key_action, render};

const ARGON: &str = "https://ct.googleapis.com/logs/us1/argon2025h2/";
const TUAK: &str = "https://tuscolo2025h2.sunlight.geomys.org/";

fn draw(app: &App, w: u16, h: u16) -> TestBackend {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render::render(app, f)).unwrap();
    t.backend().clone()
}

/// The screen as text, one line per row.
fn text(app: &App, w: u16, h: u16) -> String {
    let backend = draw(app, w, h);
    let buf = backend.buffer();
    (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// What the manager says of alice: two machines, third of 17 names (fifth
/// yesterday).
fn standing() -> Standing {
    Standing {
        name: "alice".into(),
        machines: 2,
        entries: 2_310_000,
        matches: 250,
        tasks_done: 120,
        rank: Some(3),
        rank_yesterday: Some(5),
        of: 17,
        page_url: Some("https://ctjp.example.org/workers/3.html".into()),
        at: at(3600 * 9),
    }
}

/// A busy worker: two logs, one fetching, one backing off after 429s, after
/// 90 s of sampling. The manager said how both logs stand: argon has 1.5M
/// entries left at a fleet's 300/s, tuscolo's fleet rate is not known yet.
fn busy() -> (Arc<EngineView>, LogBuffer, App) {
    let view = EngineView::new();
    view.set_worker("alice");
    view.set_manager_state("connected");
    view.set_standing(standing());
    let a = view.log(ARGON);
    a.set_kind("rfc6962");
    a.set_state(LogState::Fetching);
    a.set_range(Some((1_024_000, 1_024_512, 1_024_320)));
    a.fetchers_active.store(3, Relaxed);
    a.fetchers_allowed.store(4, Relaxed);
    let b = view.log(TUAK);
    b.set_kind("static");
    b.set_state(LogState::BackingOff);
    b.set_range(Some((0, 512, 64)));
    b.fetchers_active.store(0, Relaxed);
    b.fetchers_allowed.store(1, Relaxed);
    a.set_outlook(Outlook {
        tree_size: 2_100_000,
        remaining: 1_500_000,
        fleet_rate: 300.0,
        at: at(3600 * 9),
    });
    b.set_outlook(Outlook {
        tree_size: 512,
        remaining: 448,
        fleet_rate: 0.0,
        at: at(3600 * 9),
    });
    view.push_scaling(ScalingEvent {
        at: at(3600 * 9 + 60),
        log: ARGON.into(),
        fetchers: 4,
        reason: "log healthy, raising".into(),
    });
    view.push_scaling(ScalingEvent {
        at: at(3600 * 9 + 75),
        log: TUAK.into(),
        fetchers: 1,
        reason: "429s from the log".into(),
    });
    view.spool_batches.store(2, Relaxed);
    view.uploaded.store(140, Relaxed);
    view.tasks_done.store(7, Relaxed);
    view.active_tasks.store(2, Relaxed);
    let logs = LogBuffer::default();
    logs.push("09:01:00  INFO registered worker=alice");
    logs.push("09:01:15  WARN rate limited log=tuscolo2025h2 retry_in=4s");
    let t0 = Instant::now();
    let mut app = App::new(8, Duration::from_secs(30), t0);
    for s in 0..=90u64 {
        // A ramp, then steady: the sparklines have a shape.
        LogStats::add(&a.entries, 40 * s.min(30));
        LogStats::add(&b.entries, if s < 45 { 300 } else { 0 });
        if s % 10 == 0 {
            LogStats::add(&a.matches, 1);
            a.push_names(&[format!("www{s}.example.co.jp")]);
        }
        if s == 45 {
            LogStats::add(&b.rate_limited, 12);
            LogStats::add(&b.server_errors, 2);
            b.push_names(&["shop.example.jp".into()]);
            LogStats::add(&b.matches, 1);
        }
        app.refresh(&view, &logs, t0 + Duration::from_secs(s));
    }
    (view, logs, app)
}

#[test]
fn empty_80x24() {
    let view = EngineView::new();
    let mut app = App::new(8, Duration::from_secs(30), Instant::now());
    app.refresh(&view, &LogBuffer::default(), Instant::now());
    insta::assert_snapshot!(draw(&app, 80, 24));
}

#[test]
fn busy_80x24() {
    let (_, _, app) = busy();
    insta::assert_snapshot!(draw(&app, 80, 24));
}

#[test]
fn busy_wide_120x34() {
    let (_, _, app) = busy();
    insta::assert_snapshot!(draw(&app, 120, 34));
}

#[test]
fn errors_and_unreachable_manager() {
    let (view, logs, mut app) = busy();
    view.set_manager_state("unreachable: connection refused");
    let a = view.log(ARGON);
    a.set_state(LogState::Error);
    LogStats::add(&a.errors, 5);
    logs.push("09:02:30 ERROR fetch failed log=argon2025h2 error=\"bad JSON\"");
    app.refresh(&view, &logs, Instant::now() + Duration::from_secs(91));
    insta::assert_snapshot!(draw(&app, 80, 24));
}

#[test]
fn help_80x24() {
    let (_, _, mut app) = busy();
    update(&mut app, Action::Help);
    insta::assert_snapshot!(draw(&app, 80, 24));
}

#[test]
fn detail_80x24() {
    let (_, _, mut app) = busy();
    update(&mut app, Action::Enter);
    assert_eq!(app.screen, Screen::Detail);
    insta::assert_snapshot!(draw(&app, 80, 24));
}

#[test]
fn detail_of_the_backing_off_log_100x30() {
    let (_, _, mut app) = busy();
    update(&mut app, Action::Down);
    update(&mut app, Action::Enter);
    insta::assert_snapshot!(draw(&app, 100, 30));
}

#[test]
fn paused_with_a_cap_100x30() {
    let (view, logs, mut app) = busy();
    assert_eq!(
        update(&mut app, Action::TogglePause),
        Some(Command::SetPaused(true))
    );
    view.paused.store(true, Relaxed);
    assert_eq!(update(&mut app, Action::CapDown), Some(Command::SetCap(7)));
    assert_eq!(update(&mut app, Action::CapDown), Some(Command::SetCap(6)));
    view.user_cap.store(6, Relaxed);
    app.refresh(&view, &logs, Instant::now() + Duration::from_secs(91));
    insta::assert_snapshot!(draw(&app, 100, 30));
}

#[test]
fn draining_countdown_80x24() {
    let (view, logs, mut app) = busy();
    let t = Instant::now();
    assert_eq!(update(&mut app, Action::Quit), Some(Command::Cancel));
    update(&mut app, Action::DrainStarted(t));
    app.refresh(&view, &logs, t + Duration::from_secs(12));
    assert_eq!(app.drain_left, Some(Duration::from_secs(18)));
    insta::assert_snapshot!(draw(&app, 80, 24));
    // A second quit leaves at once.
    assert_eq!(update(&mut app, Action::Quit), Some(Command::ExitNow));
}

#[test]
fn tiny_and_odd_sizes_do_not_panic() {
    let (_, _, mut app) = busy();
    for (w, h) in [(1, 1), (20, 5), (40, 10), (80, 24), (300, 80)] {
        draw(&app, w, h);
        update(&mut app, Action::Enter);
        draw(&app, w, h);
        update(&mut app, Action::Help);
        draw(&app, w, h);
        update(&mut app, Action::Back);
        update(&mut app, Action::Back);
    }
}

#[test]
fn cap_goes_down_to_one_and_up_to_none() {
    let mut app = App::new(3, Duration::from_secs(30), Instant::now());
    assert_eq!(update(&mut app, Action::CapDown), Some(Command::SetCap(2)));
    assert_eq!(update(&mut app, Action::CapDown), Some(Command::SetCap(1)));
    assert_eq!(update(&mut app, Action::CapDown), Some(Command::SetCap(1)));
    assert_eq!(update(&mut app, Action::CapUp), Some(Command::SetCap(2)));
    assert_eq!(update(&mut app, Action::CapUp), Some(Command::SetCap(0)));
    assert_eq!(update(&mut app, Action::CapUp), Some(Command::SetCap(0)));
}

#[test]
fn selection_stays_in_range_and_help_swallows_a_key() {
    let (_, _, mut app) = busy();
    update(&mut app, Action::Up);
    assert_eq!(app.selected, 0);
    update(&mut app, Action::Down);
    update(&mut app, Action::Down);
    assert_eq!(app.selected, 1);
    update(&mut app, Action::Help);
    assert_eq!(update(&mut app, Action::TogglePause), None);
    assert!(!app.help && !app.paused);
    update(&mut app, Action::Enter);
    update(&mut app, Action::Back);
    assert_eq!(app.screen, Screen::Main);
}

#[test]
fn the_feed_takes_only_new_names() {
    let (view, logs, mut app) = busy();
    let n = app.feed.len();
    assert_eq!(n, 11, "{:?}", app.feed);
    app.refresh(&view, &logs, Instant::now() + Duration::from_secs(92));
    assert_eq!(app.feed.len(), n);
    view.log(ARGON).push_names(&["new.example.jp".into()]);
    app.refresh(&view, &logs, Instant::now() + Duration::from_secs(93));
    assert_eq!(app.feed.back().unwrap().1, "new.example.jp");
    assert_eq!(app.feed.len(), n + 1);
}

#[test]
fn keys() {
    let k = |c| KeyEvent::new(c, KeyModifiers::NONE);
    assert_eq!(key_action(k(KeyCode::Char('q'))), Some(Action::Quit));
    assert_eq!(
        key_action(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Some(Action::Quit)
    );
    assert_eq!(key_action(k(KeyCode::Char('c'))), None);
    assert_eq!(key_action(k(KeyCode::Char('p'))), Some(Action::TogglePause));
    assert_eq!(key_action(k(KeyCode::Up)), Some(Action::Up));
    assert_eq!(key_action(k(KeyCode::Down)), Some(Action::Down));
    assert_eq!(key_action(k(KeyCode::Enter)), Some(Action::Enter));
    assert_eq!(key_action(k(KeyCode::Esc)), Some(Action::Back));
    assert_eq!(key_action(k(KeyCode::Char('+'))), Some(Action::CapUp));
    assert_eq!(key_action(k(KeyCode::Char('-'))), Some(Action::CapDown));
    assert_eq!(key_action(k(KeyCode::Char('?'))), Some(Action::Help));
}

/// The lifetime line of a screen.
fn lifetime(screen: &str) -> String {
    screen
        .lines()
        .find(|l| l.starts_with(" lifetime "))
        .unwrap_or_default()
        .trim_end()
        .to_owned()
}

/// The rank's change since yesterday: in words where the line has room,
/// as an arrow alone where it has not, and nothing when it is not known.
#[test]
fn the_rank_change_since_yesterday_fits_the_width() {
    let (view, logs, mut app) = busy();
    let now = Instant::now() + Duration::from_secs(91);
    let rank = |app: &App, w| {
        let l = lifetime(&text(app, w, 24));
        l.split(" │ ").nth(1).unwrap_or_default().to_owned()
    };
    assert_eq!(
        rank(&app, 120),
        "rank 3 of 17 (▲2 since yesterday), 2 machines"
    );
    assert_eq!(rank(&app, 100), "rank 3 of 17 ▲2, 2 machines");
    assert_eq!(rank(&app, 80), "rank 3 of 17 ▲2");
    for (yesterday, words) in [
        (Some(2), Some("rank 3 of 17 (▼1 since yesterday)")),
        (Some(3), Some("rank 3 of 17 (= since yesterday)")),
        (None, None),
    ] {
        view.set_standing(Standing {
            machines: 1,
            rank_yesterday: yesterday,
            ..standing()
        });
        app.refresh(&view, &logs, now);
        assert_eq!(
            rank(&app, 100),
            words.unwrap_or("rank 3 of 17"),
            "yesterday {yesterday:?}"
        );
    }
}

/// A log collected to its tree size shows `done`; a log the manager has not
/// told of yet, and a name that is not ranked (no link without --site-url).
#[test]
fn a_collected_log_an_unknown_one_and_an_unranked_name() {
    let (view, logs, mut app) = busy();
    view.log(ARGON).set_outlook(Outlook {
        tree_size: 2_100_000,
        remaining: 0,
        fleet_rate: 0.0,
        at: at(3600 * 9),
    });
    view.log("https://third.example/log/")
        .set_state(LogState::Idle);
    view.set_standing(Standing {
        rank: None,
        machines: 1,
        page_url: None,
        ..standing()
    });
    app.refresh(&view, &logs, Instant::now() + Duration::from_secs(91));
    let screen = text(&app, 80, 24);
    let row = |log: &str| {
        screen
            .lines()
            .find(|l| l.contains(log))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(row("argon2025h2").contains(" done "), "{screen}");
    assert!(row(".example/log").contains("—      —"), "{screen}");
    assert!(screen.contains("120 tasks │ not ranked "), "{screen}");
    assert!(
        !screen.contains("machines") && !screen.contains("https://"),
        "{screen}"
    );
    update(&mut app, Action::Enter);
    assert!(
        text(&app, 80, 24).contains("ETA done"),
        "{}",
        text(&app, 80, 24)
    );
}
