//! Column lengths of the schema, and the small helpers every writer uses.

use std::time::{SystemTime, UNIX_EPOCH};

/// `tasks.last_error`, `tasks.proof_error`, `logs.last_poll_error`, `sths.error`.
pub const ERROR_TEXT: usize = 1000;
/// `workers.name` in characters.
pub const WORKER_NAME_CHARS: usize = 64;
/// `workers.version`, `workers.address`.
pub const SHORT_TEXT: usize = 64;
/// `logs.url`, `logs.monitoring_url`, `logs.description`.
pub const URL: usize = 512;
/// `certificates.serial`.
pub const SERIAL: usize = 1024;
/// TEXT columns (65,535 bytes), with room for JSON escaping.
pub const TEXT: usize = 60_000;
/// `names.name`, `names.registered_domain`.
pub const NAME: usize = 700;
/// `certificates.key_algorithm`, `signature_algorithm`.
pub const ALGORITHM: usize = 128;

/// Now as Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Cuts a string to at most `max` bytes on a character boundary.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `"?, ?, ?"` with `n` placeholders.
pub fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_characters_whole() {
        assert_eq!(clip("añb", 2), "a");
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(placeholders(3), "?, ?, ?");
    }
}
