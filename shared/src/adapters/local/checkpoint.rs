//! Checkpoints of local mode's database beside its writer.
//!
//! SQLite's automatic checkpoint copies the write-ahead log back into the database on the
//! connection that commits: every 4,000 pages it held the one writer thread for 20 to 30
//! ms, and every job queued behind it waited, which was most of POST /requests' p95.
//! Here a thread with a connection of its own copies the log (WAL allows a checkpoint
//! beside a writer), and the writer only finishes the last few pages. That last step is
//! the writer's because the log starts again from its beginning only when a write begins
//! with all of it copied, which a checkpointer running beside a busy writer seldom sees.

use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError, mpsc};

use rusqlite::Connection;
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;

use super::db::unavailable;
use crate::ports::StoreError;

/// Log pages that start a checkpoint (SQLite's automatic checkpoint defaults to 1,000;
/// workflow executions rewrite the same pages often, so fewer copies of each).
const CHECKPOINT_PAGES: i32 = 4_000;

/// Log pages left to copy that the writer copies itself.
const TAIL_PAGES: i32 = 256;

/// Log pages at which the writer waits for the checkpointer and copies the rest: it is
/// not keeping up (the machine is busy with something else, say).
const MAX_LOG_PAGES: i32 = 2 * CHECKPOINT_PAGES;

/// What the checkpointer is doing, for the writer to read.
#[derive(Default)]
struct Progress {
    /// Held by whoever checkpoints: SQLite refuses a second checkpoint at once, without
    /// waiting, so the writer waits here instead when it must copy the rest itself.
    turn: Mutex<()>,
    /// The log's length and how much of it was copied, when the last checkpoint ended.
    log: AtomicI32,
    copied: AtomicI32,
}

impl Progress {
    fn wait_turn(&self) -> MutexGuard<'_, ()> {
        self.turn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `None` while the checkpointer is at it.
    fn try_turn(&self) -> Option<MutexGuard<'_, ()>> {
        match self.turn.try_lock() {
            Ok(turn) => Some(turn),
            Err(TryLockError::Poisoned(turn)) => Some(turn.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

/// Starts the checkpointer of the database in `file`, whose writer is `writer`.
pub(super) fn start(writer: &mut Connection, file: &Path) -> Result<(), StoreError> {
    let checkpointer = Connection::open(file).map_err(unavailable)?;
    checkpointer
        .pragma_update(None, "synchronous", "NORMAL")
        .map_err(unavailable)?;
    let progress = Arc::new(Progress::default());
    // One pending request is enough: a checkpoint copies whatever the log holds.
    let (wake, woken) = mpsc::sync_channel::<()>(1);
    let seen = progress.clone();
    let mut last = 0;
    // Replaces SQLite's automatic checkpoint, which is itself a WAL hook.
    writer
        .wal_hook(Some(move |wal: &mut Wal, pages: i32| {
            if pages < last {
                // The log started again: what the checkpointer copied was of the old one.
                seen.log.store(0, Ordering::SeqCst);
                seen.copied.store(0, Ordering::SeqCst);
            }
            last = pages;
            on_commit(wal, pages, &seen, &wake);
            // The commit has happened whatever is returned here; an error would only
            // make the statement that committed report one.
            Ok(())
        }))
        .map_err(unavailable)?;
    std::thread::Builder::new()
        .name("sqlite-checkpoint".to_owned())
        .spawn(move || {
            // Ends when the writer's connection, which holds `wake`, is closed.
            while woken.recv().is_ok() {
                let _turn = progress.wait_turn();
                match checkpointer.wal_checkpoint_v2(Some(rusqlite::MAIN_DB), CheckpointMode::PASSIVE)
                {
                    Ok((log, copied)) => {
                        progress.log.store(log, Ordering::SeqCst);
                        progress.copied.store(copied, Ordering::SeqCst);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the database's checkpoint failed; the next one will retry");
                    }
                }
            }
        })
        .map_err(|e| {
            StoreError::Unavailable(format!("cannot start the checkpoint thread: {e}"))
        })?;
    Ok(())
}

/// After each commit on the writer, with the log `pages` long.
fn on_commit(wal: &mut Wal, pages: i32, progress: &Progress, wake: &mpsc::SyncSender<()>) {
    if pages < CHECKPOINT_PAGES {
        return;
    }
    if pages >= MAX_LOG_PAGES {
        // Waits for a running checkpoint, copies what is left, and waits for readers to
        // leave the log, so that the next write starts it again.
        let _turn = progress.wait_turn();
        let _ = wal.checkpoint_v2(CheckpointMode::RESTART);
        return;
    }
    let Some(_turn) = progress.try_turn() else {
        return;
    };
    let (log, copied) = (
        progress.log.load(Ordering::SeqCst),
        progress.copied.load(Ordering::SeqCst),
    );
    if copied > 0 && log <= pages && pages - copied <= TAIL_PAGES {
        let _ = wal.checkpoint();
    } else {
        let _ = wake.try_send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::local::Db;
    use crate::adapters::local::db::ExecCached;
    use rusqlite::params;

    #[test]
    fn the_write_ahead_log_is_copied_back_beside_the_writer_and_stays_short() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let db = Db::open(dir.path()).unwrap();
        let record = "x".repeat(3_000);
        // One commit per job, each a few pages of log: many times the log's bound.
        let writes = 3 * MAX_LOG_PAGES;
        rt.block_on(async {
            for i in 0..writes {
                let record = record.clone();
                db.call(move |c| {
                    c.exec(
                        "INSERT INTO audit (id, actor, record) VALUES (?1, 'me', ?2)",
                        params![format!("{i:08}"), record],
                    )
                    .map_err(unavailable)
                })
                .await
                .unwrap();
            }
        });
        let size = |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().len();
        let page = 4_096;
        // Frames carry a header, and the last commit may take the log past its bound.
        let bound = u64::try_from(MAX_LOG_PAGES).unwrap() * page * 5 / 4;
        assert!(
            size("orchestrator.db-wal") <= bound,
            "the log grew to {} bytes",
            size("orchestrator.db-wal")
        );
        // Copied back: the database file holds most of what was written.
        assert!(size("orchestrator.db") >= u64::try_from(writes).unwrap() * 3_000 / 2);
        let rows: i64 = rt
            .block_on(db.call(|c| {
                c.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
                    .map_err(unavailable)
            }))
            .unwrap();
        assert_eq!(rows, i64::from(writes));
    }
}
