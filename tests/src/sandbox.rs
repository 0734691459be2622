//! A throwaway home directory per test.
//!
//! skiff keeps per-user things (the default state store, config) under
//! `$HOME`. Each test gets its own empty `HOME`, removed afterwards, so tests
//! never see each other's state or the developer's.

use std::path::{Path, PathBuf};

use crate::StoreSnapshot;

/// An empty temporary directory used as `HOME` (and working directory) of
/// every [`crate::Skiff`] run made with it. Deleted on drop.
#[derive(Debug)]
pub struct SandboxHome {
    dir: tempfile::TempDir,
}

impl SandboxHome {
    /// A fresh, empty home.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("skiff-home-")
            .tempdir()
            .expect("create a temporary home directory");
        Self { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the home (`relative` like `".skiff/state"` or `"cluster.yaml"`).
    pub fn join(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Write a file inside the home, creating parent directories; returns its path.
    pub fn write(&self, relative: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|error| panic!("create {}: {error}", parent.display()));
        }
        std::fs::write(&path, contents)
            .unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
        path
    }

    /// Read a file inside the home as UTF-8.
    pub fn read(&self, relative: impl AsRef<Path>) -> String {
        let path = self.join(relative);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
    }

    /// Every file under the home, for "this command wrote nothing" checks.
    pub fn snapshot(&self) -> StoreSnapshot {
        StoreSnapshot::of_dir(self.path())
    }
}

impl Default for SandboxHome {
    fn default() -> Self {
        Self::new()
    }
}
