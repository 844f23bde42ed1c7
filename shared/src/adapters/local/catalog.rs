//! The catalog in local mode: the snapshot loaded from the catalog directory, held in
//! memory and swapped whole on reload. `serve` looks at the directory twice a second
//! (polling file sizes and times works on every file system, containers' bind mounts
//! included) and reloads it when it changed.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::catalog::Severity;
use crate::catalog::snapshot::{CatalogSnapshot, SnapshotError};
use crate::ports::CatalogStore;

pub struct LocalCatalog {
    current: RwLock<Arc<CatalogSnapshot>>,
}

impl LocalCatalog {
    pub fn new(snapshot: CatalogSnapshot) -> Self {
        LocalCatalog {
            current: RwLock::new(Arc::new(snapshot)),
        }
    }

    /// Serves `snapshot` from now on; requests in flight keep the one they started with.
    pub fn replace(&self, snapshot: CatalogSnapshot) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
    }
}

impl CatalogStore for LocalCatalog {
    fn current(&self) -> Arc<CatalogSnapshot> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn publish(&self, snapshot: CatalogSnapshot) {
        self.replace(snapshot);
    }
}

/// What the catalog directory looks like, cheaply: every file's path, size and
/// modification time (hidden files and directories aside, as the loader skips them).
/// Two equal stamps mean nothing worth reloading changed.
pub fn stamp(dir: &Path) -> u64 {
    fn walk(dir: &Path, hasher: &mut DefaultHasher) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            path.hash(hasher);
            if meta.is_dir() {
                walk(&path, hasher);
            } else {
                meta.len().hash(hasher);
                if let Ok(modified) = meta.modified() {
                    modified.hash(hasher);
                }
            }
        }
    }
    let mut hasher = DefaultHasher::new();
    walk(dir, &mut hasher);
    hasher.finish()
}

/// What a look at the directory came to.
pub enum Reload {
    /// Nothing changed on disk.
    Unchanged,
    /// The files changed, to the version being served (an edit undone).
    Same,
    /// A new valid version is served now.
    Replaced(Arc<CatalogSnapshot>),
    /// The edit does not validate: the previous version stays. Why, file by file.
    Refused(String),
}

impl LocalCatalog {
    /// Looks at `dir` (whose stamp was `last`) and serves what it holds now if that is a
    /// valid catalog: the whole directory is validated, so a half-finished edit or a
    /// removal that breaks a bundle never goes live.
    pub async fn reload(&self, dir: &Path, last: &mut u64) -> Reload {
        let owned = dir.to_owned();
        let now = tokio::task::spawn_blocking(move || stamp(&owned))
            .await
            .unwrap_or(*last);
        if now == *last {
            return Reload::Unchanged;
        }
        *last = now;
        let owned = dir.to_owned();
        let loaded = tokio::task::spawn_blocking(move || CatalogSnapshot::from_dir(&owned)).await;
        let snapshot = match loaded {
            Ok(Ok(snapshot)) => snapshot,
            Ok(Err(SnapshotError::Invalid(findings))) => {
                let errors: Vec<String> = findings
                    .iter()
                    .filter(|f| f.severity == Severity::Error)
                    .map(|f| format!("{}:{}:{}: {}", f.file, f.line, f.column, f.message))
                    .collect();
                return Reload::Refused(errors.join("; "));
            }
            Ok(Err(e)) => return Reload::Refused(e.to_string()),
            Err(e) => return Reload::Refused(format!("the catalog could not be loaded: {e}")),
        };
        if snapshot.version == self.current().version {
            return Reload::Same;
        }
        self.replace(snapshot);
        Reload::Replaced(self.current())
    }
}
