//! The static search index: registered domains with their issuance counts,
//! as `search.json` (for machines) and `search-index.js` (loaded by the
//! search page with a plain `<script>`, so it also works from `file://`).

use serde::Serialize;

/// One searchable registered domain.
#[derive(Debug, Clone, Serialize)]
pub struct Entry<'a> {
    /// The registered domain.
    pub d: &'a str,
    /// Issuances naming it.
    pub n: i64,
    /// Path of its page, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p: Option<String>,
}

/// JSON made safe to embed in JavaScript or HTML: `<`, `>`, `&` and the
/// JavaScript line separators are written as `\u` escapes (still valid JSON).
pub fn script_safe_json<T: Serialize + ?Sized>(v: &T) -> serde_json::Result<String> {
    let raw = serde_json::to_string(v)?;
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The JavaScript file that defines the index for `search.js`.
pub fn index_js(entries: &[Entry<'_>]) -> serde_json::Result<String> {
    Ok(format!(
        "window.CTJP_INDEX = {};\n",
        script_safe_json(entries)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_script_breakers() {
        let e = [Entry {
            d: "</script><b>\"x\u{2028}",
            n: 1,
            p: None,
        }];
        let js = index_js(&e).unwrap_or_default();
        assert!(!js.contains("</script>"));
        assert!(!js.contains('\u{2028}'));
        let json = script_safe_json(&e).unwrap_or_default();
        let back: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back[0]["d"], "</script><b>\"x\u{2028}");
    }
}
