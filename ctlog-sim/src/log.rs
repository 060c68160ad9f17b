//! One served log: its key, its entries, its in-memory Merkle tree, its
//! current signed tree head, and the matches ct-core finds in it. Growth
//! appends entries and signs a new head under one write lock, so readers
//! always see a head whose entries exist.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use ct_core::checkpoint::format_checkpoint;
use ct_core::entry::{Depth, Examiner};
use ct_core::merkle::{Hash, MerkleTree, leaf_hash};
use ct_core::sth::{DigitallySigned, HASH_SHA256, SIG_ECDSA, tree_head_signed_bytes};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

use crate::config::{LogConfig, Source};
use crate::error::{Error, Result};
use crate::faults::Faults;
use crate::generate::{Generated, POOL_PER_KIND, Pool};
use crate::operator::Operator;
use crate::store::{Parts, Store};

/// DER prefix of a P-256 SubjectPublicKeyInfo, before the 65-byte point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// A signed tree head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub tree_size: u64,
    pub timestamp: u64,
    pub root: Hash,
    pub signature: DigitallySigned,
    /// The same head as a static-ct-api checkpoint.
    pub checkpoint: String,
}

/// How an entry is spoiled in get-entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    BadBase64,
    TruncatedLeaf,
    GarbageDer,
}

#[derive(Debug)]
pub(crate) struct State {
    pub store: Store,
    pub tree: MerkleTree,
    pub head: Head,
    /// Matching indices (not malformed, not garbage) and their leaf hashes.
    pub matches: Vec<(u64, Hash)>,
    /// Indices whose entry is garbage in the log itself ([`LogConfig::garbage`]).
    pub garbage: BTreeSet<u64>,
}

impl State {
    /// Entry `index` as the log holds it (in its tree and in every view).
    pub fn parts(&self, index: u64) -> Option<Parts> {
        let parts = self.store.parts(index)?;
        Some(if self.garbage.contains(&index) {
            parts.garbage()
        } else {
            parts
        })
    }
}

/// One log.
pub struct Log {
    pub number: usize,
    /// URL with a trailing slash, e.g. `http://127.0.0.1:8080/log0/`.
    pub url: String,
    /// The checkpoint origin and key name: the URL without scheme and trailing slash.
    pub origin: String,
    pub config: LogConfig,
    pub spki: Vec<u8>,
    pub log_id: Hash,
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// Issuer certificates by SHA-256.
    pub issuers: HashMap<Hash, Vec<u8>>,
    pub roots: Vec<Vec<u8>>,
    pub malformed: BTreeMap<u64, Malformed>,
    pub(crate) state: RwLock<State>,
    pub faults: Faults,
    /// The operator it belongs to (None: the default operator, without an
    /// operator-wide limit). Set by [`crate::Simulator::start`].
    pub operator: Option<Arc<Operator>>,
    examiner: Examiner,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("url", &self.url)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Log {
    /// Builds a log (CPU heavy: generates or reads every entry and hashes it).
    pub fn build(number: usize, base_url: &str, config: LogConfig) -> Result<Log> {
        if config.batch_cap == 0 {
            return Err(Error::Config("batch cap must be at least 1".into()));
        }
        let leaf_index = config.views.leaf_index_extension();
        let (store, roots, issuer_chains) = match &config.source {
            Source::Generated {
                seed, match_share, ..
            } => {
                let log_seed = seed.wrapping_add(number as u64 * 0x9e37_79b9);
                let pool = Arc::new(Pool::build(log_seed, POOL_PER_KIND)?);
                let generated = Generated::new(pool.clone(), log_seed, *match_share, leaf_index)?;
                (
                    Store::Generated(Box::new(generated)),
                    pool.roots().to_vec(),
                    pool.chains().to_vec(),
                )
            }
            Source::Replay(dir) => {
                let entries = crate::replay::load(dir, leaf_index)?;
                let mut chains: Vec<_> = entries.iter().map(|e| e.chain.clone()).collect();
                chains.dedup_by(|a, b| Arc::ptr_eq(a, b));
                let roots = chains
                    .iter()
                    .filter_map(|c| c.certs.last().cloned())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                (Store::Replay(entries), roots, chains)
            }
        };
        let mut issuers = HashMap::new();
        for chain in &issuer_chains {
            for (cert, fp) in chain.certs.iter().zip(&chain.fingerprints) {
                issuers.insert(*fp, cert.clone());
            }
        }
        let malformed = config
            .malformed
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let kind = match k % 3 {
                    0 => Malformed::BadBase64,
                    1 => Malformed::TruncatedLeaf,
                    _ => Malformed::GarbageDer,
                };
                (i, kind)
            })
            .collect();
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|e| Error::Sign(e.to_string()))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|e| Error::Sign(e.to_string()))?;
        let mut spki = P256_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(key.public_key().as_ref());
        let log_id = ct_core::sth::log_id(&spki);
        let url = format!("{}/log{number}/", base_url.trim_end_matches('/'));
        let origin = url
            .split_once("://")
            .map_or(url.as_str(), |(_, rest)| rest)
            .trim_end_matches('/')
            .to_owned();
        let faults = Faults::new(&config.faults)?;
        let empty = Head {
            tree_size: 0,
            timestamp: 0,
            root: ct_core::merkle::empty_root(),
            signature: DigitallySigned {
                hash_alg: HASH_SHA256,
                sig_alg: SIG_ECDSA,
                signature: Vec::new(),
            },
            checkpoint: String::new(),
        };
        let log = Log {
            number,
            url,
            origin,
            spki,
            log_id,
            key,
            rng,
            issuers,
            roots,
            malformed,
            state: RwLock::new(State {
                store,
                tree: MerkleTree::new(),
                head: empty,
                matches: Vec::new(),
                garbage: config.garbage.iter().copied().collect(),
            }),
            faults,
            operator: None,
            examiner: Examiner::default(),
            config,
        };
        let initial = match &log.config.source {
            Source::Generated { entries, .. } => *entries,
            Source::Replay(_) => 0,
        };
        log.append(initial)?;
        Ok(log)
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `count` generated entries (replayed logs only hash what they
    /// hold) and publishes a new signed head. Returns the new head.
    pub fn append(&self, count: u64) -> Result<Head> {
        let mut state = self.write_state();
        let state = &mut *state;
        let first = state.tree.size();
        let hashes: Vec<Hash> = match &mut state.store {
            Store::Generated(g) => {
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
                g.append(count, threads)
            }
            Store::Replay(v) => v[first as usize..]
                .iter()
                .map(|p| leaf_hash(&p.leaf_input()))
                .collect(),
        };
        for (k, h) in hashes.into_iter().enumerate() {
            let index = first + k as u64;
            if state.garbage.contains(&index) {
                let h = state.parts(index).map_or(h, |p| leaf_hash(&p.leaf_input()));
                state.tree.push(h);
                continue;
            }
            state.tree.push(h);
            if self.malformed.contains_key(&index) {
                continue;
            }
            let matched = match &state.store {
                Store::Generated(g) => g.matched(index),
                Store::Replay(v) => {
                    let p = &v[index as usize];
                    self.examiner
                        .examine(&p.leaf_input(), &p.extra_data(), Depth::MatchOnly)
                        .matched()
                }
            };
            if matched {
                state.matches.push((index, h));
            }
        }
        let size = state.tree.size();
        let root = state.tree.root(size)?;
        let timestamp = now_ms().max(state.head.timestamp + 1);
        state.head = self.sign(size, timestamp, root)?;
        Ok(state.head.clone())
    }

    fn sign(&self, tree_size: u64, timestamp: u64, root: Hash) -> Result<Head> {
        let msg = tree_head_signed_bytes(timestamp, tree_size, &root);
        let sig = self
            .key
            .sign(&self.rng, &msg)
            .map_err(|e| Error::Sign(e.to_string()))?;
        let signature = DigitallySigned {
            hash_alg: HASH_SHA256,
            sig_alg: SIG_ECDSA,
            signature: sig.as_ref().to_vec(),
        };
        let checkpoint = format_checkpoint(
            &self.origin,
            tree_size,
            &root,
            &self.origin,
            &self.log_id,
            timestamp,
            &signature,
        );
        Ok(Head {
            tree_size,
            timestamp,
            root,
            signature,
            checkpoint,
        })
    }

    /// The current signed head.
    pub fn head(&self) -> Head {
        self.read_state().head.clone()
    }

    /// Entry `index` as the log holds it (whatever get-entries serves).
    pub fn entry(&self, index: u64) -> Option<Parts> {
        self.read_state().parts(index)
    }

    /// Matching indices and leaf hashes so far.
    pub fn matches(&self) -> Vec<(u64, Hash)> {
        self.read_state().matches.clone()
    }
}
