//! Log timestamps in Japan Standard Time: the date, hour and weekday at which a
//! CT log stamped an entry, taken in Asia/Tokyo, and whether that was at
//! night, on a weekend or on a Japanese national holiday.
//!
//! No IO: the time zone comes from the tzdb that jiff embeds (never from
//! `/usr/share/zoneinfo`), the holidays from the `yasumi` crate, which
//! computes them from the Act on National Holidays, the special laws of
//! 2019-2021 included (the enthronement days and the moved Olympic holidays).

use std::sync::LazyLock;

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::{self, TimeZone, TimeZoneDatabase};

/// Asia/Tokyo from jiff's bundled tzdb. Should the bundle lack it, UTC+9:
/// Japan has kept that offset without daylight saving time since 1952.
static TOKYO: LazyLock<TimeZone> = LazyLock::new(|| {
    TimeZoneDatabase::bundled()
        .get("Asia/Tokyo")
        .unwrap_or_else(|_| TimeZone::fixed(tz::offset(9)))
});

/// The last CT timestamp (Unix milliseconds) [`LogTime::from_ms`] takes:
/// 9999-12-30T22:00:00Z, 9999-12-31 07:00 in Tokyo. SQL that derives the
/// same fields (the analysis tables' generated columns) uses this bound.
pub const LAST_MS: u64 = 253_402_207_200_000;

/// The day in Japan (days since 1970-01-01, UTC+9) of a CT timestamp: the
/// date of [`LogTime::from_ms`] (Japan has kept UTC+9 without daylight
/// saving time since 1952, before any CT log). A timestamp past [`LAST_MS`]
/// (a log's error: no calendar date holds it) counts on the day of
/// `LAST_MS`, so every timestamp has a day, and the day fits an SQL `INT`.
pub fn jst_day(ms: u64) -> i64 {
    // LAST_MS is far below i64::MAX.
    let ms = ms.min(LAST_MS) as i64;
    (ms + 32_400_000).div_euclid(86_400_000)
}

/// When, in Japan, a log entry was stamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogTime {
    /// The calendar date in JST.
    pub date: Date,
    /// The hour in JST, 0 to 23.
    pub hour: u8,
    /// The day of the week: 0 = Monday .. 6 = Sunday.
    pub weekday: u8,
    /// From 20:00 to 07:59 JST.
    pub night: bool,
    /// Saturday or Sunday.
    pub weekend: bool,
    /// A national holiday, substitute holiday or citizens' holiday
    /// ([`is_holiday`]).
    pub holiday: bool,
}

impl LogTime {
    /// From a CT log timestamp (Unix milliseconds). `None` when it is past
    /// what a calendar date can hold (after the year 9999).
    pub fn from_ms(ms: u64) -> Option<LogTime> {
        let ms = i64::try_from(ms).ok()?;
        let at = TOKYO.to_datetime(Timestamp::from_millisecond(ms).ok()?);
        let hour = u8::try_from(at.hour()).ok()?;
        let weekday = u8::try_from(at.weekday().to_monday_zero_offset()).ok()?;
        let date = at.date();
        Some(LogTime {
            date,
            hour,
            weekday,
            night: !(8..20).contains(&hour),
            weekend: matches!(at.weekday(), Weekday::Saturday | Weekday::Sunday),
            holiday: is_holiday(date),
        })
    }
}

/// Whether a date is a Japanese national holiday (国民の祝日), a substitute
/// holiday (振替休日) or a citizens' holiday (国民の休日). Weekends as such
/// are not holidays.
pub fn is_holiday(date: Date) -> bool {
    to_time_date(date).is_some_and(yasumi::is_holiday)
}

/// The same day as a `time::Date`, the type `yasumi` takes.
fn to_time_date(date: Date) -> Option<time::Date> {
    let month = time::Month::try_from(u8::try_from(date.month()).ok()?).ok()?;
    let day = u8::try_from(date.day()).ok()?;
    time::Date::from_calendar_date(i32::from(date.year()), month, day).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokyo_comes_from_the_bundled_tzdb() {
        assert_eq!(TOKYO.iana_name(), Some("Asia/Tokyo"));
    }

    #[test]
    fn out_of_range_timestamps_are_none() {
        assert_eq!(LogTime::from_ms(u64::MAX), None);
        assert_eq!(LogTime::from_ms(i64::MAX as u64), None);
        assert!(LogTime::from_ms(0).is_some());
        assert!(LogTime::from_ms(LAST_MS).is_some());
        assert_eq!(LogTime::from_ms(LAST_MS + 1), None);
        assert_eq!(jst_day(LAST_MS + 1), jst_day(LAST_MS));
        assert_eq!(jst_day(u64::MAX), jst_day(LAST_MS));
    }

    #[test]
    fn the_jst_day_is_the_log_times_date() {
        let epoch = jiff::civil::date(1970, 1, 1);
        // 2024-01-01T14:59:59Z is still Jan 1 in Tokyo; a second later, Jan 2.
        for ms in [
            0,
            1_704_121_199_000,
            1_704_121_200_000,
            1_626_739_200_000,
            LAST_MS,
        ] {
            let t = LogTime::from_ms(ms).unwrap();
            let days = i64::from((t.date - epoch).get_days());
            assert_eq!(jst_day(ms), days, "{ms}");
        }
    }
}
