//! Log timestamps in Japan Standard Time: holidays (the special laws of
//! 2019-2021 included), weekends, the night boundaries and dates that differ
//! between UTC and JST.

use ct_core::jst::{LogTime, is_holiday};
use jiff::civil::{Date, date};
use jiff::{Timestamp, ToSpan};

/// Unix milliseconds of an RFC 3339 time with its offset written out, so
/// that the expected values do not come from the code under test.
fn ms(rfc3339: &str) -> u64 {
    let t: Timestamp = rfc3339.parse().expect("an RFC 3339 time");
    u64::try_from(t.as_millisecond()).expect("after 1970")
}

fn at(rfc3339: &str) -> LogTime {
    LogTime::from_ms(ms(rfc3339)).expect("in range")
}

#[test]
fn a_holiday_night() {
    // Sports Day, moved to Friday 2021-07-23 for the Olympics.
    assert_eq!(ms("2021-07-23T21:30:00+09:00"), 1_627_043_400_000);
    let t = at("2021-07-23T21:30:00+09:00");
    assert_eq!(
        t,
        LogTime {
            date: date(2021, 7, 23),
            hour: 21,
            weekday: 4,
            night: true,
            weekend: false,
            holiday: true,
        }
    );
}

#[test]
fn a_saturday_and_a_sunday() {
    let sat = at("2024-06-15T14:00:00+09:00");
    assert_eq!(
        (sat.weekday, sat.weekend, sat.holiday, sat.night),
        (5, true, false, false)
    );
    let sun = at("2024-06-16T10:00:00+09:00");
    assert_eq!((sun.weekday, sun.weekend, sun.holiday), (6, true, false));
}

#[test]
fn a_weekday_morning() {
    let t = at("2024-06-12T09:15:00+09:00");
    assert_eq!(
        t,
        LogTime {
            date: date(2024, 6, 12),
            hour: 9,
            weekday: 2,
            night: false,
            weekend: false,
            holiday: false,
        }
    );
}

#[test]
fn night_boundaries() {
    for (time, night) in [
        ("2024-06-12T07:59:59.999+09:00", true),
        ("2024-06-12T08:00:00+09:00", false),
        ("2024-06-12T19:59:59.999+09:00", false),
        ("2024-06-12T20:00:00+09:00", true),
        ("2024-06-12T00:00:00+09:00", true),
        ("2024-06-12T23:59:59.999+09:00", true),
    ] {
        assert_eq!(at(time).night, night, "{time}");
    }
    assert_eq!(at("2024-06-12T07:59:59.999+09:00").hour, 7);
    assert_eq!(at("2024-06-12T20:00:00+09:00").hour, 20);
}

#[test]
fn the_jst_date_differs_from_the_utc_date() {
    // Sunday 2020-08-09 15:30 UTC is Monday 2020-08-10 00:30 JST, Mountain
    // Day as moved for 2020: a holiday that the UTC date is not.
    let t = at("2020-08-09T15:30:00Z");
    assert_eq!(
        t,
        LogTime {
            date: date(2020, 8, 10),
            hour: 0,
            weekday: 0,
            night: true,
            weekend: false,
            holiday: true,
        }
    );
    // Wednesday 16:30 UTC is Thursday 01:30 JST.
    let t = at("2024-06-12T16:30:00Z");
    assert_eq!((t.date, t.hour, t.weekday), (date(2024, 6, 13), 1, 3));
    // Saturday 2024-06-15 20:00 UTC is already Sunday in Tokyo.
    let t = at("2024-06-15T20:00:00Z");
    assert_eq!((t.date, t.weekday, t.weekend), (date(2024, 6, 16), 6, true));
}

#[test]
fn special_and_moved_holidays_of_2019_to_2021() {
    let holidays: [(Date, &str); 14] = [
        (
            date(2019, 4, 30),
            "citizens' holiday before the enthronement",
        ),
        (date(2019, 5, 1), "Enthronement Day"),
        (date(2019, 5, 2), "citizens' holiday after the enthronement"),
        (date(2019, 10, 22), "Enthronement Ceremony"),
        (date(2020, 7, 23), "Marine Day, moved"),
        (date(2020, 7, 24), "Sports Day, moved"),
        (date(2020, 8, 10), "Mountain Day, moved"),
        (date(2021, 7, 22), "Marine Day, moved"),
        (date(2021, 7, 23), "Sports Day, moved"),
        (date(2021, 8, 8), "Mountain Day, moved"),
        (date(2021, 8, 9), "substitute for Mountain Day"),
        (date(2026, 5, 6), "substitute for Constitution Day"),
        (date(2026, 9, 22), "citizens' holiday"),
        (date(2027, 3, 22), "substitute for the vernal equinox"),
    ];
    for (d, what) in holidays {
        assert!(is_holiday(d), "{d} ({what}) is a holiday");
    }
    let not_holidays: [(Date, &str); 7] = [
        (
            date(2020, 10, 12),
            "second Monday of October 2020: Sports Day was moved",
        ),
        (
            date(2021, 10, 11),
            "second Monday of October 2021: Sports Day was moved",
        ),
        (
            date(2020, 7, 20),
            "third Monday of July 2020: Marine Day was moved",
        ),
        (
            date(2021, 7, 19),
            "third Monday of July 2021: Marine Day was moved",
        ),
        (date(2020, 8, 11), "August 11, 2020: Mountain Day was moved"),
        (date(2021, 8, 11), "August 11, 2021: Mountain Day was moved"),
        (date(2024, 6, 15), "an ordinary Saturday"),
    ];
    for (d, what) in not_holidays {
        assert!(!is_holiday(d), "{d} ({what}) is not a holiday");
    }
}

#[test]
fn every_holiday_of_2026() {
    // The Cabinet Office's list for 2026.
    let want = [
        date(2026, 1, 1),
        date(2026, 1, 12),
        date(2026, 2, 11),
        date(2026, 2, 23),
        date(2026, 3, 20),
        date(2026, 4, 29),
        date(2026, 5, 3),
        date(2026, 5, 4),
        date(2026, 5, 5),
        date(2026, 5, 6),
        date(2026, 7, 20),
        date(2026, 8, 11),
        date(2026, 9, 21),
        date(2026, 9, 22),
        date(2026, 9, 23),
        date(2026, 10, 12),
        date(2026, 11, 3),
        date(2026, 11, 23),
    ];
    let got: Vec<Date> = date(2026, 1, 1)
        .series(1.day())
        .take_while(|d| d.year() == 2026)
        .filter(|d| is_holiday(*d))
        .collect();
    assert_eq!(got, want);
}
