//! The minijinja environment, built once per process: embedded templates
//! (optionally overridden file by file from `--templates DIR`), strict
//! undefined handling, autoescape by the `.html` extension, and the filters
//! the templates use for numbers and times.

use std::path::PathBuf;

use minijinja::{Environment, Error as TplError, ErrorKind, UndefinedBehavior, Value};

/// Templates and static files compiled into the binary.
pub const EMBEDDED: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("_macros.html", include_str!("../templates/_macros.html")),
    ("index.html", include_str!("../templates/index.html")),
    ("logs.html", include_str!("../templates/logs.html")),
    ("log.html", include_str!("../templates/log.html")),
    ("workers.html", include_str!("../templates/workers.html")),
    ("worker.html", include_str!("../templates/worker.html")),
    ("machine.html", include_str!("../templates/machine.html")),
    ("ops.html", include_str!("../templates/ops.html")),
    (
        "certificates.html",
        include_str!("../templates/certificates.html"),
    ),
    ("domain.html", include_str!("../templates/domain.html")),
    ("_scope.html", include_str!("../templates/_scope.html")),
    ("pki.html", include_str!("../templates/pki.html")),
    ("ca.html", include_str!("../templates/ca.html")),
    ("category.html", include_str!("../templates/category.html")),
    ("orgs.html", include_str!("../templates/orgs.html")),
    ("org.html", include_str!("../templates/org.html")),
    ("lapses.html", include_str!("../templates/lapses.html")),
    ("cert.html", include_str!("../templates/cert.html")),
    ("search.html", include_str!("../templates/search.html")),
];

/// Static files copied as they are (overridable like templates).
pub const STATIC: &[(&str, &str)] = &[
    ("style.css", include_str!("../templates/style.css")),
    ("search.js", include_str!("../templates/search.js")),
];

/// Reads `name` from the override folder if it holds it, else the embedded copy.
pub fn source(
    overrides: Option<&PathBuf>,
    name: &str,
    embedded: &[(&str, &str)],
) -> Option<String> {
    if let Some(dir) = overrides {
        if !name.contains("..") && !name.starts_with('/') {
            if let Ok(s) = std::fs::read_to_string(dir.join(name)) {
                return Some(s);
            }
        }
    }
    embedded
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| (*s).to_owned())
}

/// Builds the environment for one time zone.
pub fn environment(overrides: Option<PathBuf>, tz: jiff::tz::TimeZone) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_loader(move |name| Ok(source(overrides.as_ref(), name, EMBEDDED)));
    env.add_filter("num", num);
    env.add_filter("pct", pct);
    env.add_filter("compact", |v: f64| crate::charts::compact(v));
    env.add_filter("duration", duration);
    env.add_filter("duration_ms", |ms: u64| {
        if ms < 1000 {
            "under 1 s".to_owned()
        } else {
            duration(ms / 1000)
        }
    });
    let local = tz.clone();
    env.add_filter("localtime", move |ms: i64| -> Result<String, TplError> {
        fmt_time(ms, &local, "%Y-%m-%d %H:%M %Z")
    });
    let local_day = tz;
    env.add_filter("localdate", move |ms: i64| -> Result<String, TplError> {
        fmt_time(ms, &local_day, "%Y-%m-%d")
    });
    env.add_filter("utctime", |ms: i64| -> Result<String, TplError> {
        fmt_time(ms, &jiff::tz::TimeZone::UTC, "%Y-%m-%d %H:%M:%S UTC")
    });
    env.add_filter("utcdate", |ms: i64| -> Result<String, TplError> {
        fmt_time(ms, &jiff::tz::TimeZone::UTC, "%Y-%m-%d")
    });
    env.add_filter("isotime", |ms: i64| -> Result<String, TplError> {
        let ts = timestamp(ms)?;
        Ok(ts.to_string())
    });
    env
}

fn timestamp(ms: i64) -> Result<jiff::Timestamp, TplError> {
    jiff::Timestamp::from_millisecond(ms)
        .map_err(|e| TplError::new(ErrorKind::InvalidOperation, format!("bad time {ms}: {e}")))
}

/// Formats Unix milliseconds in a time zone with a strftime pattern.
pub fn fmt_time(ms: i64, tz: &jiff::tz::TimeZone, pattern: &str) -> Result<String, TplError> {
    let zoned = timestamp(ms)?.to_zoned(tz.clone());
    Ok(zoned.strftime(pattern).to_string())
}

/// 1234567 -> "1,234,567".
pub fn num(v: Value) -> String {
    let n = i64::try_from(v.clone()).ok();
    let Some(n) = n else {
        return v.to_string();
    };
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// `part|pct(whole)` -> "12.3" (no sign), "0.0" when whole is 0; capped at 100.
pub fn pct(part: f64, whole: f64) -> String {
    if whole <= 0.0 {
        return "0.0".into();
    }
    let p = (part / whole * 100.0).clamp(0.0, 100.0);
    // Never show 100.0 for an unfinished whole.
    if p > 99.95 && part < whole {
        return "99.9".into();
    }
    format!("{p:.1}")
}

/// Seconds in the two largest units: "45 s", "1 min 50 s", "1 h 35 min",
/// "3 d 4 h" (cut, not rounded: the time is at least that).
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let two = |a: u64, ua: &str, b: u64, ub: &str| {
        if b == 0 {
            format!("{a} {ua}")
        } else {
            format!("{a} {ua} {b} {ub}")
        }
    };
    if d > 0 {
        two(d, "d", h, "h")
    } else if h > 0 {
        two(h, "h", m, "min")
    } else if m > 0 {
        two(m, "min", s, "s")
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(num(Value::from(1_234_567)), "1,234,567");
        assert_eq!(num(Value::from(-12)), "-12");
        assert_eq!(pct(1.0, 3.0), "33.3");
        assert_eq!(pct(999_999.0, 1_000_000.0), "99.9");
        assert_eq!(pct(5.0, 0.0), "0.0");
        assert_eq!(duration(0), "0 s");
        assert_eq!(duration(110), "1 min 50 s");
        assert_eq!(duration(120), "2 min");
        assert_eq!(duration(5719), "1 h 35 min");
        assert_eq!(duration(3 * 86_400 + 4 * 3600 + 59), "3 d 4 h");
        assert_eq!(duration(u64::MAX).split(' ').count(), 4);
    }
}
