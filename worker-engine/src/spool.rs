//! The upload spool: every batch of matches lives in a file here from the
//! moment it is formed until the manager acknowledges it. After a crash the
//! files are replayed first. Bounded: a full spool is a clear error, never a
//! silent drop.

use std::path::{Path, PathBuf};

use ct_core::protocol::UploadRequest;
use serde::{Deserialize, Serialize};

/// One spooled batch: the upload request for a task, exactly as it will be sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpoolBatch {
    pub task_id: u64,
    pub request: UploadRequest,
}

/// Spool errors.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error(
        "spool {dir} is full ({bytes} bytes in {files} batches, limit {limit} bytes): is the manager reachable?"
    )]
    Full {
        dir: String,
        bytes: u64,
        files: usize,
        limit: u64,
    },
    #[error("spool {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// A directory of batch files named by sequence number.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    limit_bytes: u64,
    next_seq: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Spool {
    pub fn open(dir: &Path, limit_bytes: u64) -> Result<Self, SpoolError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let next_seq = Self::list_in(dir)?.last().map_or(0, |(seq, _)| seq + 1);
        Ok(Spool {
            dir: dir.to_owned(),
            limit_bytes,
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

    /// Bytes and files waiting.
    pub fn depth(&self) -> (u64, usize) {
        let files = Self::list_in(&self.dir).unwrap_or_default();
        let bytes = files
            .iter()
            .filter_map(|(_, p)| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        (bytes, files.len())
    }

    /// Writes a batch durably (write, fsync, rename) and returns its sequence number.
    pub fn push(&mut self, batch: &SpoolBatch) -> Result<u64, SpoolError> {
        let (bytes, files) = self.depth();
        if bytes >= self.limit_bytes {
            return Err(SpoolError::Full {
                dir: self.dir.display().to_string(),
                bytes,
                files,
                limit: self.limit_bytes,
            });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let path = self.dir.join(format!("{seq:012}.json"));
        let tmp = self.dir.join(format!("{seq:012}.tmp"));
        let data = serde_json::to_vec(batch).map_err(|e| SpoolError::Io {
            path: tmp.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(&data).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(seq)
    }

    pub fn read(&self, path: &Path) -> Result<SpoolBatch, SpoolError> {
        let data = std::fs::read(path).map_err(io(path))?;
        serde_json::from_slice(&data).map_err(|e| SpoolError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })
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

    #[test]
    fn push_read_remove_and_bound() {
        let dir = std::env::temp_dir().join(format!("ctjp-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut spool = Spool::open(&dir, 300).expect("open");
        let batch = SpoolBatch {
            task_id: 3,
            request: UploadRequest {
                entries: vec![ct_core::protocol::UploadEntry {
                    index: 7,
                    leaf_input: "AAAA".repeat(30),
                    extra_data: String::new(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        };
        let a = spool.push(&batch).expect("push");
        let b = spool.push(&batch).expect("push");
        assert!(matches!(spool.push(&batch), Err(SpoolError::Full { .. })));
        // Reopening continues the sequence and sees both batches.
        let spool = Spool::open(&dir, 300).expect("reopen");
        let pending = spool.pending().expect("list");
        assert_eq!(pending.iter().map(|p| p.0).collect::<Vec<_>>(), vec![a, b]);
        assert_eq!(
            spool.read(&pending[0].1).expect("read").request.entries[0].index,
            7
        );
        spool.remove(a).expect("remove");
        assert_eq!(spool.pending().expect("list").len(), 1);
        std::fs::remove_dir_all(&dir).ok();
    }
}
