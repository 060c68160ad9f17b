//! Atomic publication. `OUT` is a symlink to the current build folder
//! `OUT.build-<ms>-<pid>` beside it. A new build is written into a fresh
//! folder, then a temporary symlink to it is renamed over `OUT` (one
//! `rename(2)`, atomic), so a reader sees either the old or the new build,
//! never a mix. The previous build is kept (a request may still be reading
//! it); older ones are removed, while the next build reads the database
//! ([`stale`]), or at the latest when it is published.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result, io};

fn parts(out: &Path) -> Result<(PathBuf, String)> {
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Config(format!("--out {} has no usable file name", out.display())))?
        .to_owned();
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name))
}

/// Creates a fresh, empty build folder beside `out`.
pub fn prepare(out: &Path) -> Result<PathBuf> {
    let (parent, name) = parts(out)?;
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let dir = parent.join(format!("{name}.build-{ms}-{}", std::process::id()));
    std::fs::create_dir(&dir).map_err(io(&dir))?;
    Ok(dir)
}

/// Builds beside `out` other than the published one and `fresh`: nobody
/// reads them any more, so they can go while `fresh` is being built.
pub fn stale(out: &Path, fresh: &Path) -> Vec<PathBuf> {
    let Ok((parent, name)) = parts(out) else {
        return Vec::new();
    };
    let current = std::fs::read_link(out).ok();
    let keep: Vec<&std::ffi::OsStr> = [Some(fresh), current.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(|p| p.file_name())
        .collect();
    builds(&parent, &name)
        .into_iter()
        .filter(|b| b.file_name().is_some_and(|n| !keep.contains(&n)))
        .collect()
}

/// Every `NAME.build-*` folder in `parent`.
fn builds(parent: &Path, name: &str) -> Vec<PathBuf> {
    let prefix = format!("{name}.build-");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .map(|e| e.path())
        .collect()
}

/// Removes a build folder that will not be published.
pub fn discard(build: &Path) {
    let _ = std::fs::remove_dir_all(build);
}

/// Points `out` at `build` atomically and removes builds older than the previous one.
pub fn publish(out: &Path, build: &Path) -> Result<()> {
    let (parent, name) = parts(out)?;
    let target = build
        .file_name()
        .ok_or_else(|| Error::Config(format!("bad build folder {}", build.display())))?;
    let previous = std::fs::read_link(out).ok();
    let meta = std::fs::symlink_metadata(out).ok();
    if let Some(m) = &meta {
        if !m.file_type().is_symlink() {
            // First run over a plain folder: move it aside once (it becomes the "previous" build).
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            let aside = parent.join(format!("{name}.build-{ms}-old"));
            std::fs::rename(out, &aside).map_err(io(out))?;
        }
    }
    let tmp = parent.join(format!(".{name}.link-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    symlink(Path::new(target), &tmp)?;
    std::fs::rename(&tmp, out).map_err(io(out))?;
    cleanup(&parent, &name, build, previous.as_deref());
    Ok(())
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, link).map_err(io(link))
}

#[cfg(not(unix))]
fn symlink(_target: &Path, link: &Path) -> Result<()> {
    Err(Error::Config(format!(
        "{}: atomic publication needs symlinks (Unix)",
        link.display()
    )))
}

fn cleanup(parent: &Path, name: &str, current: &Path, previous: Option<&Path>) {
    let keep: Vec<&std::ffi::OsStr> = [Some(current), previous]
        .into_iter()
        .flatten()
        .filter_map(|p| p.file_name())
        .collect();
    for b in builds(parent, name) {
        if b.file_name().is_some_and(|n| !keep.contains(&n)) {
            let _ = std::fs::remove_dir_all(b);
        }
    }
}
