//! Scratch folders for tests: a new, empty folder under the system's temp folder, with a name no
//! other test or run has (`fastai-<tag>-<pid>-<n>-<nanos>`), removed when dropped, so tests that
//! run at the same time (in one process or in several checkouts) never share files.
//!
//! `FASTAI_KEEP_TEST_FILES=1` keeps the folders (their paths are printed), for a look by eye at
//! the figures a test draws.
#![allow(dead_code)]

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh folder, removed with everything in it when this value is dropped.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl TempDir {
    /// Creates `<temp>/fastai-<tag>-...`; `tag` says which test it belongs to.
    pub fn new(tag: &str) -> TempDir {
        loop {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("fastai-{tag}-{}-{n}-{nanos}", std::process::id()));
            // `create_dir`, not `create_dir_all`: fails if the name is taken, so the folder is new.
            match std::fs::create_dir(&path) {
                Ok(()) => return TempDir { path },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create {}: {e}", path.display()),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("FASTAI_KEEP_TEST_FILES").is_some_and(|v| !v.is_empty() && v != "0") {
            eprintln!("kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
