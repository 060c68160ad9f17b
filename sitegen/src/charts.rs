//! Inline SVG charts drawn at build time. Every piece of text is escaped
//! here, so the finished SVG can be marked safe in templates.

use std::fmt::Write;

/// One bar: its axis label, the tooltip text and its value.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub tooltip: String,
    pub value: f64,
}

/// Escapes text for XML/HTML content and attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A compact number: 1234 -> "1.2k", 5_600_000 -> "5.6M".
pub fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a < 10.0 && v.fract() != 0.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// A bar chart with a title (used for `aria-label`), y-axis maximum and
/// every `label_every`-th x label shown.
pub fn bar_chart(title: &str, bars: &[Bar], label_every: usize) -> String {
    const W: f64 = 720.0;
    const H: f64 = 200.0;
    const LEFT: f64 = 48.0;
    const BOTTOM: f64 = 24.0;
    const TOP: f64 = 10.0;
    let max = bars.iter().map(|b| b.value).fold(0.0_f64, f64::max);
    let scale_max = if max > 0.0 { max } else { 1.0 };
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{t}\" preserveAspectRatio=\"none\">\
         <title>{t}</title>",
        t = escape(title)
    );
    // Axis and grid.
    for frac in [0.0, 0.5, 1.0] {
        let y = TOP + (H - TOP - BOTTOM) * (1.0 - frac);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{W}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"axis\" x=\"{x:.1}\" y=\"{ty:.1}\" text-anchor=\"end\">{v}</text>",
            x = LEFT - 4.0,
            ty = y + 4.0,
            v = escape(&compact(scale_max * frac))
        );
    }
    if bars.is_empty() {
        let _ = write!(
            s,
            "<text class=\"axis\" x=\"{x}\" y=\"{y}\" text-anchor=\"middle\">no data yet</text>",
            x = (W + LEFT) / 2.0,
            y = H / 2.0
        );
    }
    let n = bars.len().max(1) as f64;
    let slot = (W - LEFT) / n;
    let every = label_every.max(1);
    for (i, b) in bars.iter().enumerate() {
        let h = (H - TOP - BOTTOM) * (b.value / scale_max).max(0.0);
        let x = LEFT + slot * i as f64;
        let y = H - BOTTOM - h;
        let _ = write!(
            s,
            "<rect class=\"bar\" x=\"{x:.2}\" y=\"{y:.2}\" width=\"{w:.2}\" height=\"{h:.2}\"><title>{tip}</title></rect>",
            w = (slot * 0.8).max(0.5),
            tip = escape(&b.tooltip)
        );
        if i % every == 0 {
            let _ = write!(
                s,
                "<text class=\"axis\" x=\"{lx:.1}\" y=\"{ly:.1}\" text-anchor=\"middle\">{l}</text>",
                lx = x + slot * 0.4,
                ly = H - 6.0,
                l = escape(&b.label)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// One column of a stacked chart: its axis label, the label its tooltips
/// start with, and one value per series.
#[derive(Debug, Clone)]
pub struct Stack {
    pub label: String,
    pub tooltip: String,
    pub values: Vec<f64>,
}

/// A stacked bar chart: one bar per column, one segment per series (class
/// `s0`, `s1`, … so that a legend outside can use the same colours). With
/// `percent`, every column is scaled to 100 %. Tooltips give each segment's
/// value and share of its column.
pub fn stacked_chart(
    title: &str,
    series: &[String],
    columns: &[Stack],
    percent: bool,
    label_every: usize,
) -> String {
    const W: f64 = 720.0;
    const H: f64 = 200.0;
    const LEFT: f64 = 48.0;
    const BOTTOM: f64 = 24.0;
    const TOP: f64 = 10.0;
    let sums: Vec<f64> = columns
        .iter()
        .map(|c| c.values.iter().map(|v| v.max(0.0)).sum())
        .collect();
    let max = if percent {
        100.0
    } else {
        sums.iter().copied().fold(0.0_f64, f64::max)
    };
    let scale_max = if max > 0.0 { max } else { 1.0 };
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{t}\" preserveAspectRatio=\"none\">\
         <title>{t}</title>",
        t = escape(title)
    );
    for frac in [0.0, 0.5, 1.0] {
        let y = TOP + (H - TOP - BOTTOM) * (1.0 - frac);
        let v = if percent {
            format!("{:.0}%", 100.0 * frac)
        } else {
            compact(scale_max * frac)
        };
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{W}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"axis\" x=\"{x:.1}\" y=\"{ty:.1}\" text-anchor=\"end\">{v}</text>",
            x = LEFT - 4.0,
            ty = y + 4.0,
            v = escape(&v)
        );
    }
    if columns.iter().all(|c| c.values.iter().all(|v| *v <= 0.0)) {
        let _ = write!(
            s,
            "<text class=\"axis\" x=\"{x}\" y=\"{y}\" text-anchor=\"middle\">no data yet</text>",
            x = (W + LEFT) / 2.0,
            y = H / 2.0
        );
    }
    let n = columns.len().max(1) as f64;
    let slot = (W - LEFT) / n;
    let every = label_every.max(1);
    let plot = H - TOP - BOTTOM;
    for (i, (c, sum)) in columns.iter().zip(&sums).enumerate() {
        let x = LEFT + slot * i as f64;
        let mut y = H - BOTTOM;
        for (k, v) in c.values.iter().enumerate() {
            let v = v.max(0.0);
            if v <= 0.0 {
                continue;
            }
            let share = if *sum > 0.0 { v / sum * 100.0 } else { 0.0 };
            let shown = if percent { share } else { v };
            let h = plot * (shown / scale_max);
            y -= h;
            let name = series.get(k).map_or("", String::as_str);
            let _ = write!(
                s,
                "<rect class=\"bar s{cls}\" x=\"{x:.2}\" y=\"{y:.2}\" width=\"{w:.2}\" height=\"{h:.2}\">\
                 <title>{tip}</title></rect>",
                cls = k % 8,
                w = (slot * 0.8).max(0.5),
                tip = escape(&format!(
                    "{}: {name} {} ({share:.1}%)",
                    c.tooltip,
                    crate::templates::num(minijinja::Value::from(v as i64))
                ))
            );
        }
        if i % every == 0 {
            let _ = write!(
                s,
                "<text class=\"axis\" x=\"{lx:.1}\" y=\"{ly:.1}\" text-anchor=\"middle\">{l}</text>",
                lx = x + slot * 0.4,
                ly = H - 6.0,
                l = escape(&c.label)
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_scales() {
        let svg = bar_chart(
            "a <b>",
            &[Bar {
                label: "x\"".into(),
                tooltip: "<script>".into(),
                value: 3.0,
            }],
            1,
        );
        assert!(svg.contains("a &lt;b&gt;"));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("x&quot;"));
        assert_eq!(compact(12_345.0), "12k");
        assert_eq!(compact(0.5), "0.5");
        assert_eq!(compact(2.0), "2");
    }

    #[test]
    fn stacks_escape_and_share() {
        let svg = stacked_chart(
            "t",
            &["<CA>".to_owned(), "B".to_owned()],
            &[Stack {
                label: "2026-01".into(),
                tooltip: "2026-01".into(),
                values: vec![3.0, 1.0],
            }],
            true,
            1,
        );
        assert!(svg.contains("&lt;CA&gt; 3 (75.0%)"), "{svg}");
        assert!(svg.contains("class=\"bar s1\""));
        assert!(!svg.contains("<CA>"));
    }
}
