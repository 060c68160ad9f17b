//! The volunteers and the operations page, on `fixture::fill_fleet`: one row
//! per public name with its machines summed, each machine on its name's
//! page, the operations figures the fixture implies, and the flagged name
//! nowhere.

use scraper::Selector;

use crate::fixture::{self, EVIL_WORKER};
use crate::pages::{all_text, read, rows, text};

#[tokio::test]
async fn machines_of_one_name_are_one_row_and_one_page() {
    let (db, dir) = fixture::rendered().await;
    let d = dir.path();
    let list = read(d, "workers/index.html");
    let board = rows(&list, "#leaderboard");
    // #, change, name, machines, entries, matches, tasks, last seen, now.
    assert_eq!(board.len(), 2, "{board:?}");
    assert_eq!(
        board[0][..7],
        ["1", "▲2", "alice", "2", "1,000", "5", "3"],
        "{board:?}"
    );
    assert_eq!(board[0][8], "active");
    assert_eq!(
        board[1][..7],
        ["2", "▼1", EVIL_WORKER, "1", "556", "4", "2"],
        "{board:?}"
    );
    assert_eq!(board[1][8], "idle");
    let links: Vec<&str> = list
        .select(&Selector::parse("#leaderboard a").unwrap())
        .filter_map(|a| a.value().attr("href"))
        .collect();
    assert_eq!(links, ["1.html", "2.html"]);

    // alice's page is her first machine's, with both machines.
    let alice = read(d, "workers/1.html");
    assert_eq!(text(&alice, "h1"), "alice");
    assert_eq!(text(&alice, "#worker-entries"), "1,000");
    assert_eq!(text(&alice, "#worker-matches"), "5");
    assert_eq!(text(&alice, "#worker-tasks"), "3");
    assert_eq!(text(&alice, "#worker-machines"), "2");
    let machines = rows(&alice, "#machines");
    assert_eq!(machines.len(), 2, "{machines:?}");
    // Machine, version, first seen, last seen, entries, matches, tasks, now.
    assert_eq!(
        (&machines[0][..2], &machines[0][4..]),
        (
            &["#1".to_owned(), "0.1.0".to_owned()][..],
            &["700", "3", "2", "active"].map(String::from)[..]
        )
    );
    assert_eq!(
        (&machines[1][..2], &machines[1][4..]),
        (
            &["#3".to_owned(), "0.2.0".to_owned()][..],
            &["300", "2", "1", "active"].map(String::from)[..]
        )
    );
    // 30 days of both machines: 500 (log 1) and 300 (log 2).
    assert!(
        all_text(&alice).contains("800 entries fetched, 4 matches uploaded"),
        "{}",
        all_text(&alice)
    );
    // The second machine's page (the link its worker's screen shows) leads
    // to the name's.
    let second = read(d, "workers/3.html");
    assert_eq!(text(&second, "h1"), "alice");
    let to = second
        .select(&Selector::parse("#identity").unwrap())
        .next()
        .and_then(|a| a.value().attr("href"));
    assert_eq!(to, Some("1.html"));
    let refresh = second
        .select(&Selector::parse("meta[http-equiv=refresh]").unwrap())
        .next()
        .and_then(|m| m.value().attr("content"));
    assert_eq!(refresh, Some("0; url=1.html"));
    let bob = read(d, "workers/2.html");
    assert_eq!(text(&bob, "#worker-entries"), "556");
    assert_eq!(rows(&bob, "#machines").len(), 1);

    // mallory's machine was flagged: no row, no page, not on the home page.
    assert!(!all_text(&list).contains("mallory"));
    assert!(!d.join("workers/4.html").exists());
    assert!(!all_text(&read(d, "index.html")).contains("mallory"));
    db.drop().await;
}

#[tokio::test]
async fn operations_page_shows_the_fixtures_figures() {
    let (db, dir) = fixture::rendered().await;
    let d = dir.path();
    let ops = read(d, "ops/index.html");
    let all = all_text(&ops);
    // 512 of 1,500 entries collected; 488 + 244 left; 512 completed since
    // the start of the previous hour, 1 h 6 min 40 s ago: 460.8 an hour.
    assert_eq!(text(&ops, "#ops-percent"), "34.1%");
    assert_eq!(text(&ops, "#ops-collected"), "512 of 1,500");
    assert_eq!(text(&ops, "#ops-remaining"), "732");
    assert_eq!(text(&ops, "#ops-rate"), "461");
    // 732 / 460.8 hours = 5,719 s.
    assert_eq!(text(&ops, "#ops-eta"), "1 h 35 min");

    // The last 48 hours: the completed check counts, the 10 of 50 hours
    // ago do not.
    assert_eq!(text(&ops, "#outcome-completed"), "3");
    assert_eq!(text(&ops, "#outcome-failed"), "1");
    assert_eq!(text(&ops, "#outcome-expired"), "2");
    assert_eq!(text(&ops, "#outcome-refused"), "1");
    assert_eq!(text(&ops, "#outcome-released"), "0");
    let hourly = rows(&ops, "#outcomes");
    assert_eq!(hourly.len(), 48);
    // Hour, completed, failed, expired, refused, released, checks: this
    // hour first, then 5 and 30 hours ago.
    assert_eq!(hourly[0][1..], ["2", "1", "0", "0", "0", "0"]);
    assert_eq!(hourly[5][1..], ["0", "0", "2", "0", "0", "0"]);
    assert_eq!(hourly[30][1..], ["1", "0", "0", "1", "0", "1"]);
    let ended: i64 = hourly
        .iter()
        .flat_map(|r| &r[1..6])
        .map(|c| c.parse::<i64>().unwrap())
        .sum();
    assert_eq!(ended, 7);
    let chart = Selector::parse("svg[role=img]").unwrap();
    // The outcomes and one progress chart per log.
    assert_eq!(ops.select(&chart).count(), 3);

    // Durations over the 48 hours: outcome, kind, leases, entries, mean,
    // median, p90, longest. Percentiles are bucket bounds capped at the
    // longest lease.
    let durations = rows(&ops, "#durations");
    let of = |outcome: &str, kind: &str| {
        durations
            .iter()
            .find(|r| r[0] == outcome && r[1] == kind)
            .unwrap_or_else(|| panic!("no {outcome} {kind} in {durations:?}"))
            .clone()
    };
    assert_eq!(
        of("completed", "main")[2..],
        [
            "2",
            "512",
            "1 min 45 s",
            "1 min 50 s",
            "1 min 50 s",
            "1 min 50 s"
        ]
    );
    assert_eq!(
        of("expired", "main")[2..],
        [
            "2",
            "512",
            "10 min 50 s",
            "11 min 40 s",
            "11 min 40 s",
            "11 min 40 s"
        ]
    );
    assert_eq!(of("completed", "checks")[2], "1");
    assert_eq!(durations.len(), 5, "{durations:?}");

    // Leases now: alice's second machine's, under her name; not mallory's.
    let leases = rows(&ops, "#leases");
    assert_eq!(leases.len(), 1, "{leases:?}");
    // Name, log, leases, checks, entries, fetched so far (600 - 512).
    assert_eq!(
        leases[0][..6],
        ["alice", "Test Log A", "1", "0", "256", "88"]
    );
    let lease_link = ops
        .select(&Selector::parse("#leases a").unwrap())
        .next()
        .and_then(|a| a.value().attr("href"));
    assert_eq!(lease_link, Some("../workers/1.html"));

    // Progress per log: log, snapshot, tree size, collected, left, gained
    // in 24 h, per hour, ETA.
    let progress = rows(&ops, "#progress");
    assert_eq!(progress.len(), 2, "{progress:?}");
    assert_eq!(progress[0][0], "Test Log A");
    assert_eq!(
        progress[0][2..],
        ["1,000", "256 (25.6%)", "488", "256", "461", "1 h 3 min"]
    );
    assert_eq!(
        progress[1][2..],
        ["500", "256 (51.2%)", "244", "—", "0", "—"]
    );

    // Today's snapshot against yesterday's.
    let ranks = rows(&ops, "#ranks");
    assert_eq!(ranks.len(), 2, "{ranks:?}");
    // #, change, name, machines, entries, tasks, place before.
    assert_eq!(ranks[0][..5], ["1", "▲2", "alice", "2", "1,000"]);
    assert_eq!(ranks[0][6], "3");
    assert_eq!(ranks[1][..3], ["2", "▼1", EVIL_WORKER]);

    // The flagged name is nowhere on the page.
    assert!(!all.contains("mallory"), "{all}");
    // Linked from every page's navigation.
    let nav = read(d, "index.html");
    let to_ops = nav
        .select(&Selector::parse("nav a").unwrap())
        .any(|a| a.value().attr("href") == Some("ops/index.html"));
    assert!(to_ops);
    db.drop().await;
}
