//! Chrome's real v3 log list (`$CT_REAL_DATA/loglists/`): its signature
//! verifies with Google's key, a changed byte or signature is refused, and
//! every log parses with its state, interval and final tree head.

use ct_core::loglist::LogList;
use ct_core::sth::LogKey;

use crate::real::real_data_dir;

#[test]
fn the_real_log_list_verifies_and_parses() {
    let Some(dir) = real_data_dir() else { return };
    let dir = dir.join("loglists");
    let json = std::fs::read(dir.join("chrome-v3-2026-05-29.json")).expect("the log list");
    let sig = std::fs::read(dir.join("chrome-v3-2026-05-29.json.sig")).expect("its signature");
    let pem =
        std::fs::read_to_string(dir.join("google-log-list-signing-key.pem")).expect("the key");
    let key = LogKey::from_pem(&pem).expect("Google's key parses");
    let list = LogList::verified(&json, &sig, &key).expect("the signature verifies");
    assert_eq!(list.operators.len(), 8);
    let logs: Vec<_> = list.operators.iter().flat_map(|o| o.logs.iter()).collect();
    let tiled: Vec<_> = list
        .operators
        .iter()
        .flat_map(|o| o.tiled_logs.iter())
        .collect();
    assert_eq!((logs.len(), tiled.len()), (35, 21));
    let mut states = std::collections::BTreeMap::new();
    for l in logs.iter().chain(tiled.iter()) {
        *states.entry(l.state_name().unwrap_or("none")).or_insert(0) += 1;
    }
    assert_eq!(states.get("usable"), Some(&48));
    assert_eq!(states.get("readonly"), Some(&4));
    assert_eq!(states.get("retired"), Some(&4));
    let finals: Vec<u64> = logs
        .iter()
        .chain(tiled.iter())
        .filter_map(|l| l.final_tree_head())
        .map(|h| h.tree_size)
        .collect();
    assert_eq!(
        finals.len(),
        4,
        "the read-only logs state their final tree head"
    );
    assert!(finals.contains(&65_240_567));

    // One changed byte of the list, or of the signature: refused, clearly.
    let mut changed = json.clone();
    let at = changed.len() / 2;
    changed[at] ^= 1;
    let e = LogList::verified(&changed, &sig, &key)
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not verify"), "{e}");
    let mut bad_sig = sig.clone();
    bad_sig[10] ^= 0x80;
    assert!(LogList::verified(&json, &bad_sig, &key).is_err());
    // Another key.
    let other = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n";
    assert!(LogKey::from_pem(other).is_err());
}
