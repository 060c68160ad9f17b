//! decode+match on a realistic mix of real entries (about 1% matching),
//! beside two baselines measured in the same run: JSON+base64 decoding alone
//! (the floor) and a full x509-parser parse of every entry.
//!
//! Needs `CT_REAL_DATA` (the real get-entries answers); without it, it says
//! so and measures nothing.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ct_core::b64;
use ct_core::entry::{Depth, Examiner};
use ct_core::rfc6962::{GetEntries, LeafEntry};

/// Builds get-entries answers of 256 entries: every non-matching real entry
/// repeated, and the matching ones once per round, about 1% matches overall.
fn corpus() -> Option<(Vec<String>, u64)> {
    let dir = PathBuf::from(std::env::var_os("CT_REAL_DATA")?);
    let mut matching = Vec::new();
    let mut other = Vec::new();
    let examiner = Examiner::default();
    let mut texts = Vec::new();
    for sub in ["get-entries", "single"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(sub))
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        for f in files {
            texts.push(std::fs::read_to_string(f).ok()?);
        }
    }
    for text in &texts {
        let answer: GetEntries<'_> = serde_json::from_str(text).ok()?;
        for e in answer.entries {
            let leaf = b64::decode(&e.leaf_input, "leaf").ok()?;
            let extra = b64::decode(&e.extra_data, "extra").ok()?;
            let owned = LeafEntry {
                leaf_input: e.leaf_input.into_owned().into(),
                extra_data: e.extra_data.into_owned().into(),
            };
            if examiner.examine(&leaf, &extra, Depth::Full).matched() {
                matching.push(owned);
            } else {
                other.push(owned);
            }
        }
    }
    // 99 non-matching entries per matching one.
    let per_match = 99;
    let mut mix = Vec::new();
    let mut o = other.iter().cycle();
    for m in &matching {
        mix.push(m.clone());
        for _ in 0..per_match {
            mix.extend(o.next().cloned());
        }
    }
    let total = mix.len() as u64;
    let answers = mix
        .chunks(256)
        .map(|c| {
            serde_json::to_string(&GetEntries {
                entries: c.to_vec(),
            })
            .unwrap_or_default()
        })
        .collect();
    Some((answers, total))
}

fn bench(c: &mut Criterion) {
    let Some((answers, total)) = corpus() else {
        eprintln!("skipped: CT_REAL_DATA is not set (or unreadable)");
        return;
    };
    let mut group = c.benchmark_group("entries");
    group.throughput(Throughput::Elements(total));
    group.bench_function("floor_json_base64_both_fields", |b| {
        let mut buf = Vec::new();
        b.iter(|| {
            for text in &answers {
                let answer: GetEntries<'_> =
                    serde_json::from_str(text).unwrap_or_else(|_| unreachable!());
                for e in &answer.entries {
                    b64::decode_into(&e.leaf_input, &mut buf, "leaf").ok();
                    black_box(&buf);
                    b64::decode_into(&e.extra_data, &mut buf, "extra").ok();
                    black_box(&buf);
                }
            }
        })
    });
    group.bench_function("floor_json_base64_leaf_only", |b| {
        let mut buf = Vec::new();
        b.iter(|| {
            for text in &answers {
                let answer: GetEntries<'_> =
                    serde_json::from_str(text).unwrap_or_else(|_| unreachable!());
                for e in &answer.entries {
                    b64::decode_into(&e.leaf_input, &mut buf, "leaf").ok();
                    black_box(&buf);
                }
            }
        })
    });
    group.bench_function("floor_plus_leaf_hash", |b| {
        let mut buf = Vec::new();
        b.iter(|| {
            for text in &answers {
                let answer: GetEntries<'_> =
                    serde_json::from_str(text).unwrap_or_else(|_| unreachable!());
                for e in &answer.entries {
                    b64::decode_into(&e.leaf_input, &mut buf, "leaf").ok();
                    black_box(ct_core::merkle::leaf_hash(&buf));
                }
            }
        })
    });
    group.bench_function("decode_match", |b| {
        let mut examiner = Examiner::default();
        b.iter(|| {
            let mut matched = 0u32;
            for text in &answers {
                let answer: GetEntries<'_> =
                    serde_json::from_str(text).unwrap_or_else(|_| unreachable!());
                for e in &answer.entries {
                    let ex = examiner.examine_b64(&e.leaf_input, &e.extra_data, Depth::MatchOnly);
                    matched += u32::from(ex.matched());
                }
            }
            black_box(matched)
        })
    });
    group.bench_function("full_x509_parse", |b| {
        let mut examiner = Examiner::default();
        b.iter(|| {
            let mut matched = 0u32;
            for text in &answers {
                let answer: GetEntries<'_> =
                    serde_json::from_str(text).unwrap_or_else(|_| unreachable!());
                for e in &answer.entries {
                    let ex = examiner.examine_b64(&e.leaf_input, &e.extra_data, Depth::Full);
                    matched += u32::from(ex.matched());
                }
            }
            black_box(matched)
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
