//! The analysis fields of every real entry in `$CT_REAL_DATA` agree with an
//! independent parser: `tests/independent/analysis.py`, which decodes the
//! leaves itself and reads the certificates with Python's `cryptography`.
//! Entries it cannot read are skipped and counted, as are entries that only
//! ct-core's lenient parse read (they have no analysis fields).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use ct_core::cert::{CertInfo, DistinguishedName};
use ct_core::entry::{Depth, Examiner};
use ct_core::rfc6962::GetEntries;
use serde::Deserialize;

use crate::real::{entry_files, real_data_dir};

#[derive(Debug, Deserialize)]
struct Line {
    file: String,
    pos: usize,
    #[serde(default)]
    skip: Option<String>,
    #[serde(flatten)]
    fields: Option<Fields>,
}

#[derive(Debug, Deserialize)]
struct Fields {
    spki_sha256: String,
    authority_key_id: Option<String>,
    subject_key_id: Option<String>,
    san_count: u32,
    is_wildcard: bool,
    crl_urls: Vec<String>,
    ocsp_urls: Vec<String>,
    ca_issuers_urls: Vec<String>,
    subject: Dn,
    issuer: Dn,
    policies: Vec<String>,
    validation: String,
    validation_inferred: bool,
    issuer_rewritten: bool,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Dn {
    cn: Option<String>,
    o: Option<String>,
    c: Option<String>,
    st: Option<String>,
    l: Option<String>,
    ou: Option<String>,
}

impl Dn {
    fn of(d: &DistinguishedName) -> Dn {
        Dn {
            cn: d.cn.clone(),
            o: d.o.clone(),
            c: d.c.clone(),
            st: d.st.clone(),
            l: d.l.clone(),
            ou: d.ou.clone(),
        }
    }
}

/// Runs the Python parser over the data; panics with what to install when
/// python3 or `cryptography` is missing.
fn independent(dir: &Path) -> HashMap<(String, usize), Line> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/independent/analysis.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run python3 ({e}): this test needs python3 with `pip install cryptography`"
            )
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() != Some(3),
        "{}: {stderr}\nthis test needs Python's cryptography package: pip install cryptography",
        script.display()
    );
    assert!(
        out.status.success(),
        "{} failed: {stderr}",
        script.display()
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8 output")
        .lines()
        .map(|l| {
            let line: Line = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            ((line.file.clone(), line.pos), line)
        })
        .collect()
}

fn compare(ctx: &str, got: &CertInfo, want: &Fields) {
    assert_eq!(
        got.spki_sha256.map(|h| h.to_hex()).as_deref(),
        Some(want.spki_sha256.as_str()),
        "{ctx}: spki_sha256"
    );
    assert_eq!(
        got.subject_key_id, want.subject_key_id,
        "{ctx}: subject_key_id"
    );
    assert_eq!(
        got.authority_key_id, want.authority_key_id,
        "{ctx}: authority_key_id"
    );
    assert_eq!(got.san_count, want.san_count, "{ctx}: san_count");
    assert_eq!(got.is_wildcard, want.is_wildcard, "{ctx}: is_wildcard");
    assert_eq!(got.crl_urls, want.crl_urls, "{ctx}: crl_urls");
    assert_eq!(got.ocsp_urls, want.ocsp_urls, "{ctx}: ocsp_urls");
    assert_eq!(
        got.ca_issuers_urls, want.ca_issuers_urls,
        "{ctx}: ca_issuers_urls"
    );
    assert_eq!(Dn::of(&got.subject), want.subject, "{ctx}: subject");
    assert_eq!(Dn::of(&got.issuer), want.issuer, "{ctx}: issuer");
    assert_eq!(got.policies, want.policies, "{ctx}: policies");
    assert_eq!(
        got.validation.as_str(),
        want.validation,
        "{ctx}: validation"
    );
    assert_eq!(
        got.validation_inferred, want.validation_inferred,
        "{ctx}: validation_inferred"
    );
}

#[test]
fn real_entries_agree_with_an_independent_parser() {
    let Some(dir) = real_data_dir() else { return };
    let mut want = independent(&dir);
    let mut examiner = Examiner::default();
    let (mut compared, mut rewritten, mut inferred) = (0, 0, 0);
    let mut skipped = Vec::new();
    let mut lenient = Vec::new();
    for path in entry_files(&dir) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("entry file");
        let answer: GetEntries<'_> = serde_json::from_str(&text).expect("get-entries JSON");
        for (pos, e) in answer.entries.iter().enumerate() {
            let ctx = format!("{name} #{pos}");
            let line = want
                .remove(&(name.clone(), pos))
                .unwrap_or_else(|| panic!("{ctx}: analysis.py printed no line"));
            let examined = examiner.examine_b64(&e.leaf_input, &e.extra_data, Depth::Full);
            if let Some(why) = line.skip {
                skipped.push(format!("{ctx}: {why}"));
                continue;
            }
            let fields = line.fields.expect("fields when not skipped");
            let cert = examined
                .cert
                .unwrap_or_else(|| panic!("{ctx}: ct-core found no certificate"));
            if let Some(why) = &cert.parse_error {
                lenient.push(format!("{ctx}: {why}"));
                continue;
            }
            compare(&ctx, &cert, &fields);
            compared += 1;
            rewritten += usize::from(fields.issuer_rewritten);
            inferred += usize::from(fields.validation_inferred);
        }
    }
    assert!(
        want.is_empty(),
        "analysis.py printed lines for no entry: {want:?}"
    );
    eprintln!(
        "{compared} real entries agree with analysis.py ({rewritten} precerts with a \
         precertificate signing certificate, {inferred} with an inferred validation level)"
    );
    eprintln!(
        "skipped {} that Python's cryptography cannot read:\n  {}",
        skipped.len(),
        skipped.join("\n  ")
    );
    eprintln!(
        "skipped {} that only ct-core's lenient parse read:\n  {}",
        lenient.len(),
        lenient.join("\n  ")
    );
    assert!(compared >= 200, "only {compared} entries compared");
    // The data has these; without them the interesting paths went untested.
    assert!(rewritten > 0 && inferred > 0);
}
