//! The archive of local mode: a directory, each key a file under it (`/` makes folders).
//! A file is written beside its final name, flushed to disk and renamed over it, so a
//! reader never sees half an export and a crash leaves the last whole one.

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;

use crate::ports::{Archive, StoreError};

pub struct DirArchive {
    dir: PathBuf,
}

impl DirArchive {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DirArchive { dir: dir.into() }
    }

    /// The file of `key`: only plain names below the directory.
    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let relative = Path::new(key);
        let plain = !key.is_empty()
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(StoreError::Corrupt(format!(
                "`{key}` is not a key of the archive (plain names separated by `/`)"
            )));
        }
        Ok(self.dir.join(relative))
    }
}

fn unavailable(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("cannot {what} {}: {e}", path.display()))
}

#[async_trait]
impl Archive for DirArchive {
    async fn put(&self, key: &str, body: &[u8]) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let (dir, body) = (path.parent().map(Path::to_path_buf), body.to_vec());
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            if let Some(dir) = &dir {
                std::fs::create_dir_all(dir).map_err(|e| unavailable("create", dir, e))?;
            }
            let partial = path.with_extension(format!("partial-{}", uuid::Uuid::new_v4()));
            let mut file =
                std::fs::File::create(&partial).map_err(|e| unavailable("create", &partial, e))?;
            file.write_all(&body)
                .and_then(|()| file.sync_all())
                .map_err(|e| unavailable("write", &partial, e))?;
            std::fs::rename(&partial, &path).map_err(|e| unavailable("rename", &partial, e))?;
            // The rename is durable once the folder is.
            if let Some(dir) = &dir {
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| unavailable("sync", dir, e))?;
            }
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(body) => Ok(Some(body)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(unavailable("read", &path, e)),
        }
    }

    fn location(&self) -> String {
        format!("file://{}", self.dir.display())
    }
}
