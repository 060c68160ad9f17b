//! The interactive screen end to end: the real `ct-worker` in tmux (100x30)
//! against ctlog-sim and the real manager (the harness of `e2e.rs`). The
//! table fills, the lifetime totals with the rank (and its change since
//! yesterday) and the dashboard link and the logs' ETAs come from the
//! manager, `p` pauses and resumes, `q` drains and exits 0 with the spool
//! empty, the terminal given back and only true matches stored.

use std::process::Command;
use std::time::{Duration, Instant};

use ctlog_sim::Views;

use super::e2e::{Stack, faulty};

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
    session: &'static str,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    fn start(socket: String, w: u16, h: u16, shell: &str) -> Tmux {
        let t = Tmux {
            socket,
            session: "tui",
        };
        let st = t
            .cmd()
            .args(["new-session", "-d", "-s", t.session])
            .args(["-x", &w.to_string(), "-y", &h.to_string()])
            .arg(shell)
            .env("TERM", "xterm-256color")
            .status()
            .unwrap();
        assert!(st.success(), "tmux new-session failed");
        t
    }

    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        let st = self
            .cmd()
            .args(["send-keys", "-t", self.session, keys])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Polls the screen until `pred` holds; panics with the screen after `limit`.
    fn wait(&self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "waited {limit:?} for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

fn header(screen: &str) -> &str {
    screen.lines().next().unwrap_or("")
}

/// The cells of the logs table's ETA column (right-aligned, 6 wide), one
/// per log row.
fn eta_cells(screen: &str) -> Vec<String> {
    let lines: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    let Some((head, end)) = lines.iter().enumerate().find_map(|(i, l)| {
        let s: String = l.iter().collect();
        let at = s.find(" ETA ")?;
        s.contains("Fetch")
            .then(|| (i, s[..at].chars().count() + 4))
    }) else {
        return Vec::new();
    };
    lines[head + 1..]
        .iter()
        .take_while(|l| l.first() == Some(&'│'))
        .map(|l| {
            l.get(end.saturating_sub(6)..end)
                .map(|c| c.iter().collect::<String>().trim().to_owned())
                .unwrap_or_default()
        })
        .collect()
}

/// The lifetime line of the footer.
fn lifetime(screen: &str) -> &str {
    screen
        .lines()
        .find(|l| l.trim_start().starts_with("lifetime "))
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screen_fills_pauses_and_quits_with_uploads_flushed() {
    if !tmux_available() {
        assert!(
            std::env::var_os("CTJP_REQUIRE_TMUX").is_none(),
            "tmux is required (CTJP_REQUIRE_TMUX) but not installed"
        );
        println!("skipped: tmux not installed");
        return;
    }
    let mut a = faulty(6000, 41, Views::RFC6962);
    a.faults.latency_ms = 20;
    let mut b = faulty(4000, 42, Views::STATIC);
    b.faults.latency_ms = 20;
    let stack = Stack::new("tui", vec![a, b]).await;
    // Third yesterday, first (of one) today.
    stack.rank_yesterday("tui-e2e", 3).await;
    let state = stack.dir.join("tui-worker");
    let shell = format!(
        "CT_LOG=info '{bin}' --manager '{url}' --name tui-e2e --heartbeat-secs 1 \
         --totals-secs 1 --site-url https://ctjp.example.org/ \
         --drain-secs 10 --state-dir '{state}'; echo \"ct-worker exit status $?\"; sleep 600",
        bin = env!("CARGO_BIN_EXE_ct-worker"),
        url = stack.url(""),
        state = state.display(),
    );
    let tmux = Tmux::start(format!("ctjp-tui-{}", std::process::id()), 100, 30, &shell);

    // The table fills: both kinds of log appear with counters.
    let s = tmux.wait("the logs table", Duration::from_secs(60), |s| {
        s.contains("rfc6962") && s.contains("static") && s.contains("mgr connected")
    });
    assert!(header(&s).contains("ct-worker tui-e2e"), "{s}");
    assert!(
        s.contains("Latest matches") && s.contains("Log (files in"),
        "{s}"
    );

    // The manager's figures: the name's lifetime totals and rank with its
    // change since yesterday, the link to its page, and an ETA for a log (a
    // time, or done once collected).
    let s = tmux.wait(
        "lifetime totals, the rank and an ETA",
        Duration::from_secs(60),
        |s| {
            let l = lifetime(s);
            l.contains("rank 1 of 1 (▲2 since yesterday)")
                && !l.contains(" 0 entries")
                && eta_cells(s)
                    .iter()
                    .any(|e| e == "done" || e.starts_with(|c: char| c.is_ascii_digit()))
        },
    );
    assert!(lifetime(&s).contains("% "), "a .jp ratio: {s}");
    assert!(s.contains(" session "), "{s}");
    assert!(s.contains("https://ctjp.example.org/workers/1.html"), "{s}");
    assert_eq!(eta_cells(&s).len(), 2, "{s}");

    // `p` pauses claiming, `p` again resumes.
    tmux.keys("p");
    tmux.wait("PAUSED", Duration::from_secs(5), |s| {
        header(s).contains("PAUSED")
    });
    tmux.keys("p");
    tmux.wait("running", Duration::from_secs(5), |s| {
        header(s).contains("running")
    });
    // The help and the detail view open and close.
    tmux.keys("?");
    tmux.wait("help", Duration::from_secs(5), |s| s.contains("your cap:"));
    tmux.keys("Escape");
    tmux.keys("Enter");
    tmux.wait("detail", Duration::from_secs(5), |s| {
        s.contains("Current range")
    });
    tmux.keys("Escape");
    tmux.wait("main view", Duration::from_secs(5), |s| {
        s.contains("Entries/s (1 sample/s)")
    });

    stack.wait_tasks_done(2, Duration::from_secs(60)).await;
    // `q` drains: stop claiming, flush uploads, then exit 0 and restore.
    tmux.keys("q");
    let s = tmux.wait("the worker's exit", Duration::from_secs(30), |s| {
        s.contains("ct-worker exit status")
    });
    assert!(s.contains("ct-worker exit status 0"), "{s}");
    // The alternate screen is gone: no table is left on the terminal.
    assert!(!s.contains("Latest matches"), "{s}");

    let spooled: Vec<_> = std::fs::read_dir(state.join("spool"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .collect();
    assert!(spooled.is_empty(), "unsent batches left: {spooled:?}");
    let (stored, truth) = (stack.stored(), stack.truth());
    assert!(!stored.is_empty(), "nothing was uploaded");
    assert!(stored.is_subset(&truth), "stored entries that are not true");
    // The logs went to the file, not to the terminal.
    let files: Vec<_> = std::fs::read_dir(state.join("logs"))
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert!(!files.is_empty(), "no log file");
    drop(tmux);
    stack.finish(Vec::new()).await;
}
