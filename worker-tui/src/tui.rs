//! The interactive frontend: a ratatui + crossterm screen over the engine's
//! shared [`EngineView`]. One `tokio::select!` loop takes terminal events, a
//! render tick (the only time the view is sampled), the cancellation token
//! and the engine's end. `q`/Ctrl-C cancel the token like SIGTERM does; the
//! screen then counts the drain down until the engine returns.
//!
//! [`app`] holds the state and `update`; [`render`] and the region modules
//! draw it; [`logs`] routes tracing into the log pane.

pub mod app;
mod detail;
mod feed;
mod footer;
mod header;
pub mod logs;
mod popups;
pub mod render;
mod scaling;
mod table;
mod throughput;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use futures::StreamExt;
use ratatui::DefaultTerminal;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use worker_engine::view::EngineView;

use app::{Action, App, Command, update};
use logs::LogBuffer;

/// Frames per second of the render tick.
pub const FPS: u64 = 5;

/// What the screen needs besides the view.
#[derive(Debug, Clone)]
pub struct Options {
    pub max_fetchers: u32,
    pub drain_timeout: Duration,
    /// Shown in the log pane's title.
    pub log_path: String,
}

/// Runs the screen until the engine returns (or the user quits twice).
/// The terminal is restored on return and, through ratatui's hook, on panic.
pub async fn run(
    view: Arc<EngineView>,
    cancel: CancellationToken,
    engine: JoinHandle<anyhow::Result<()>>,
    logs: LogBuffer,
    opts: Options,
) -> anyhow::Result<()> {
    let mut terminal = ratatui::try_init().context("starting the interactive screen")?;
    let result = event_loop(&mut terminal, &view, &cancel, engine, &logs, opts).await;
    ratatui::restore();
    result
}

/// The key bindings.
pub fn key_action(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    Some(match key.code {
        KeyCode::Char('c') if ctrl => Action::Quit,
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('p') => Action::TogglePause,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Enter => Action::Enter,
        KeyCode::Esc | KeyCode::Backspace => Action::Back,
        KeyCode::Char('+' | '=') => Action::CapUp,
        KeyCode::Char('-' | '_') => Action::CapDown,
        KeyCode::Char('?' | 'h') => Action::Help,
        _ => return None,
    })
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    view: &EngineView,
    cancel: &CancellationToken,
    mut engine: JoinHandle<anyhow::Result<()>>,
    logs: &LogBuffer,
    opts: Options,
) -> anyhow::Result<()> {
    let mut app = App::new(opts.max_fetchers, opts.drain_timeout, Instant::now());
    app.log_path = opts.log_path;
    let mut events = EventStream::new();
    let mut events_open = true;
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / FPS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut draining = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                app.refresh(view, logs, Instant::now());
            }
            ev = events.next(), if events_open => match ev {
                Some(Ok(Event::Key(key))) => {
                    let Some(action) = key_action(key) else { continue };
                    match update(&mut app, action) {
                        Some(Command::SetPaused(p)) => {
                            view.paused.store(p, Relaxed);
                            tracing::info!(paused = p, "claiming {}", if p { "paused" } else { "resumed" });
                        }
                        Some(Command::SetCap(c)) => {
                            view.user_cap.store(c, Relaxed);
                            tracing::info!(cap = c, "own cap on fetchers per log changed (0: none)");
                        }
                        Some(Command::Cancel) => {
                            tracing::info!("stopping: no new claims, flushing uploads (q again to quit at once)");
                            cancel.cancel();
                        }
                        Some(Command::ExitNow) => {
                            tracing::warn!("quit during the drain; unsent uploads stay in the spool");
                            return Ok(());
                        }
                        None => {}
                    }
                }
                // Redraw below; `draw` resizes its buffers to the terminal.
                Some(Ok(Event::Resize(..))) => {}
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    // Without input there is no way to quit: stop gracefully.
                    tracing::error!(error = %e, "reading the terminal failed; stopping");
                    events_open = false;
                    cancel.cancel();
                }
                None => {
                    events_open = false;
                    cancel.cancel();
                }
            },
            () = cancel.cancelled(), if !draining => {
                draining = true;
                update(&mut app, Action::DrainStarted(Instant::now()));
                app.refresh(view, logs, Instant::now());
            }
            res = &mut engine => {
                return res.context("the engine task failed")?;
            }
        }
        terminal.draw(|f| render::render(&app, f))?;
    }
}
