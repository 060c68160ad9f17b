//! Tree head signatures (ECDSA P-256 and RSA) and checkpoints verify with
//! keys made here, and fail when anything signed changes.

use ct_core::checkpoint::{Checkpoint, format_checkpoint};
use ct_core::merkle::leaf_hash;
use ct_core::sth::{
    DigitallySigned, HASH_SHA256, LogKey, SIG_ECDSA, SIG_RSA, p256_spki_der, tree_head_signed_bytes,
};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};

fn ecdsa() -> (EcdsaKeyPair, Vec<u8>) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let spki = p256_spki_der(key.public_key().as_ref()).unwrap();
    (key, spki)
}

fn sign_ecdsa(key: &EcdsaKeyPair, msg: &[u8]) -> DigitallySigned {
    let sig = key.sign(&SystemRandom::new(), msg).unwrap();
    DigitallySigned {
        hash_alg: HASH_SHA256,
        sig_alg: SIG_ECDSA,
        signature: sig.as_ref().to_vec(),
    }
}

#[test]
fn ecdsa_tree_head() {
    let (key, spki) = ecdsa();
    let log = LogKey::from_spki_der(&spki).unwrap();
    let root = leaf_hash(b"root");
    let ds = sign_ecdsa(&key, &tree_head_signed_bytes(1000, 42, &root));
    let ds = DigitallySigned::decode(&ds.encode()).unwrap();
    log.verify_tree_head(1000, 42, &root, &ds).unwrap();
    assert!(log.verify_tree_head(1000, 43, &root, &ds).is_err());
    assert!(log.verify_tree_head(1001, 42, &root, &ds).is_err());
    let mut wrong_alg = ds.clone();
    wrong_alg.sig_alg = SIG_RSA;
    assert!(log.verify_tree_head(1000, 42, &root, &wrong_alg).is_err());
}

#[test]
fn rsa_tree_head() {
    let der = include_bytes!("fixtures/test-rsa2048.der");
    let spki = include_bytes!("fixtures/test-rsa2048.spki");
    let key = RsaKeyPair::from_der(der).unwrap();
    let root = leaf_hash(b"r");
    let msg = tree_head_signed_bytes(7, 9, &root);
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), &msg, &mut sig)
        .unwrap();
    let ds = DigitallySigned {
        hash_alg: HASH_SHA256,
        sig_alg: SIG_RSA,
        signature: sig,
    };
    let log = LogKey::from_spki_der(spki).unwrap();
    log.verify_tree_head(7, 9, &root, &ds).unwrap();
    assert!(log.verify_tree_head(7, 10, &root, &ds).is_err());
}

#[test]
fn checkpoint_round_trip() {
    let (key, spki) = ecdsa();
    let log = LogKey::from_spki_der(&spki).unwrap();
    let origin = "ct.example.test/logs/a";
    let root = leaf_hash(b"cp");
    let ds = sign_ecdsa(&key, &tree_head_signed_bytes(555, 1234, &root));
    let text = format_checkpoint(origin, 1234, &root, origin, &log.log_id(), 555, &ds);
    assert!(text.contains("\n\n\u{2014} ct.example.test/logs/a "));
    let cp = Checkpoint::parse(&text).unwrap();
    assert_eq!(
        (cp.origin.as_str(), cp.tree_size, cp.root_hash),
        (origin, 1234, root)
    );
    assert_eq!(cp.verify(origin, &log).unwrap(), 555);
    // Unknown signers are ignored, a wrong name finds no signature.
    let extra = format!("{text}\u{2014} someone.else AAAAAAAAAAAA\n");
    assert_eq!(
        Checkpoint::parse(&extra)
            .unwrap()
            .verify(origin, &log)
            .unwrap(),
        555
    );
    assert!(cp.verify("other", &log).is_err());
    // A changed size no longer verifies.
    let tampered = text.replacen("\n1234\n", "\n1235\n", 1);
    assert!(
        Checkpoint::parse(&tampered)
            .unwrap()
            .verify(origin, &log)
            .is_err()
    );
}

#[test]
fn checkpoint_parse_errors() {
    for bad in [
        "",
        "origin\n12\n",
        "o\nx\nAAAA\n\n",
        "o\n01\nAAAA\n\n\u{2014} n AAAAAA\n",
        "o\n1\n!!\n\n",
    ] {
        assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
    }
}
