//! The upload spool: every batch of matches lives in a file here from the
//! moment it is formed until the manager acknowledges it. After a crash the
//! files are replayed first. Bounded by its [`Room`]: a batch waits for room
//! before it is written and gives its room back once the manager has settled
//! it, so a full spool slows the worker down and never drops anything.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ct_core::protocol::UploadRequest;
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One spooled batch: the upload request for a task, exactly as it will be sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpoolBatch {
    pub task_id: u64,
    pub request: UploadRequest,
}

impl SpoolBatch {
    /// The batch as its spool file holds it.
    pub fn encode(&self) -> Result<Vec<u8>, SpoolError> {
        serde_json::to_vec(self).map_err(|source| SpoolError::Json {
            path: format!("batch of task {}", self.task_id),
            source,
        })
    }
}

/// Spool errors.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("spool {path}: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("the spool's room is closed")]
    Closed,
}

/// How much of the spool may be taken before the worker stops claiming:
/// half of it, so that the tasks it holds still find room for their uploads.
const HIGH_WATER_SHARE: u64 = 2;

/// The spool's bound, counted in KiB. A batch reserves its size before it is
/// written and gives it back when its [`Reservation`] is dropped (once the
/// manager has settled it). A batch larger than the whole spool reserves all
/// of it: it waits until the spool is empty and then goes alone, so even the
/// smallest spool never deadlocks. Waiters are served in order, so a large
/// batch is not starved by small ones.
#[derive(Debug, Clone)]
pub struct Room {
    free: Arc<Semaphore>,
    total_kib: u32,
}

/// The room one spooled batch holds until it is dropped.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
}

impl Room {
    /// Room for `limit_bytes` (rounded up to KiB, at least 1 KiB).
    pub fn new(limit_bytes: u64) -> Self {
        let most = u64::try_from(Semaphore::MAX_PERMITS)
            .unwrap_or(u64::MAX)
            .min(u64::from(u32::MAX));
        let total_kib = u32::try_from(limit_bytes.div_ceil(1024).clamp(1, most)).unwrap_or(1);
        Room {
            free: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
        }
    }

    /// The KiB a batch of `bytes` reserves: its size, but never more than
    /// the whole spool.
    fn kib_for(&self, bytes: u64) -> u32 {
        u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_kib)
    }

    /// Room for a batch of `bytes` now, if there is that much free.
    pub fn try_reserve(&self, bytes: u64) -> Option<Reservation> {
        self.free
            .clone()
            .try_acquire_many_owned(self.kib_for(bytes))
            .ok()
            .map(|p| Reservation { _permit: p })
    }

    /// Waits until there is room for a batch of `bytes`.
    pub async fn reserve(&self, bytes: u64) -> Result<Reservation, SpoolError> {
        self.free
            .clone()
            .acquire_many_owned(self.kib_for(bytes))
            .await
            .map(|p| Reservation { _permit: p })
            .map_err(|_| SpoolError::Closed)
    }

    /// KiB reserved by batches not yet settled.
    pub fn used_kib(&self) -> u64 {
        u64::from(self.total_kib).saturating_sub(self.free.available_permits() as u64)
    }

    /// Whether more than the high-water share of the spool is taken: the
    /// worker claims no new task until the manager has acknowledged enough.
    pub fn above_high_water(&self) -> bool {
        self.used_kib() * HIGH_WATER_SHARE > u64::from(self.total_kib)
    }
}

/// A directory of batch files named by sequence number.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    next_seq: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Spool {
    /// Opens (creating it when absent) the spool in `dir`; the sequence goes
    /// on after the batches already there.
    pub fn open(dir: &Path) -> Result<Self, SpoolError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let next_seq = Self::list_in(dir)?.last().map_or(0, |(seq, _)| seq + 1);
        Ok(Spool {
            dir: dir.to_owned(),
            next_seq,
        })
    }

    fn list_in(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SpoolError> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = e.map_err(io(dir))?.path();
            let seq = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(seq) = seq {
                out.push((seq, path));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Batch files waiting, oldest first.
    pub fn pending(&self) -> Result<Vec<(u64, PathBuf)>, SpoolError> {
        Self::list_in(&self.dir)
    }

    /// Writes an encoded batch ([`SpoolBatch::encode`]) durably (write,
    /// fsync, rename) and returns its sequence number. The caller holds a
    /// [`Reservation`] for it.
    pub fn push(&mut self, data: &[u8]) -> Result<u64, SpoolError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let path = self.dir.join(format!("{seq:012}.json"));
        let tmp = self.dir.join(format!("{seq:012}.tmp"));
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(data).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(seq)
    }

    /// Reads a batch file back, with its size in bytes.
    pub fn read(&self, path: &Path) -> Result<(SpoolBatch, u64), SpoolError> {
        let data = std::fs::read(path).map_err(io(path))?;
        let batch = serde_json::from_slice(&data).map_err(|source| SpoolError::Json {
            path: path.display().to_string(),
            source,
        })?;
        Ok((batch, data.len() as u64))
    }

    pub fn path_of(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:012}.json"))
    }

    /// Forgets an acknowledged batch.
    pub fn remove(&self, seq: u64) -> Result<(), SpoolError> {
        let path = self.path_of(seq);
        std::fs::remove_file(&path).map_err(io(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(task_id: u64, index: u64, bytes: usize) -> SpoolBatch {
        SpoolBatch {
            task_id,
            request: UploadRequest {
                entries: vec![ct_core::protocol::UploadEntry {
                    index,
                    leaf_input: "A".repeat(bytes),
                    extra_data: String::new(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        }
    }

    #[test]
    fn push_read_remove_and_replay() {
        let dir = std::env::temp_dir().join(format!("ctjp-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut spool = Spool::open(&dir).expect("open");
        let data = batch(3, 7, 120).encode().expect("encode");
        let a = spool.push(&data).expect("push");
        let b = spool.push(&data).expect("push");
        // Reopening continues the sequence and sees both batches.
        let mut spool = Spool::open(&dir).expect("reopen");
        let pending = spool.pending().expect("list");
        assert_eq!(pending.iter().map(|p| p.0).collect::<Vec<_>>(), vec![a, b]);
        let (read, bytes) = spool.read(&pending[0].1).expect("read");
        assert_eq!(read.request.entries[0].index, 7);
        assert_eq!(bytes, data.len() as u64);
        assert!(spool.push(&data).expect("push") > b);
        spool.remove(a).expect("remove");
        assert_eq!(spool.pending().expect("list").len(), 2);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn room_is_given_back_when_a_batch_is_settled() {
        let room = Room::new(10 * 1024);
        let first = room.try_reserve(6 * 1024).expect("room for 6 KiB");
        assert_eq!(room.used_kib(), 6);
        assert!(room.above_high_water());
        // 6 of 10 KiB taken: another 6 KiB must wait.
        assert!(room.try_reserve(6 * 1024).is_none());
        let small = room.try_reserve(100).expect("room for 1 KiB");
        drop(first);
        assert_eq!(room.used_kib(), 1);
        assert!(!room.above_high_water());
        assert!(room.try_reserve(6 * 1024).is_some());
        drop(small);
        assert_eq!(room.used_kib(), 0);
    }

    #[test]
    fn a_batch_larger_than_the_spool_goes_alone() {
        let room = Room::new(1024 * 1024);
        let small = room.try_reserve(10).expect("room");
        // Three MiB in a one-MiB spool: it waits for the spool to empty ...
        assert!(room.try_reserve(3 << 20).is_none());
        drop(small);
        // ... and then takes all of it.
        let big = room
            .try_reserve(3 << 20)
            .expect("an empty spool takes anything");
        assert_eq!(room.used_kib(), 1024);
        assert!(room.try_reserve(1).is_none());
        drop(big);
        // A spool of no bytes still takes one batch at a time.
        let none = Room::new(0);
        let one = none.try_reserve(5000).expect("one batch");
        assert!(none.try_reserve(1).is_none());
        drop(one);
        assert!(none.try_reserve(1).is_some());
    }

    #[tokio::test]
    async fn a_waiting_batch_gets_room_when_another_is_settled() {
        let room = Room::new(2048);
        let held = room.reserve(2048).await.expect("room");
        let waiter = {
            let room = room.clone();
            tokio::spawn(async move { room.reserve(2048).await.is_ok() })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(held);
        assert!(waiter.await.expect("join"));
    }
}
