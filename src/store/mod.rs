//! The embedded database (SQLite): tasks, their data, images, segments, jobs and background
//! requests. One connection behind a mutex, WAL mode; every statement is short, so handlers call
//! it directly. Structured parts (labels, data spec) are stored as JSON columns.
//!
//! This module holds the [`Store`] itself: opening and migrating the database (the schema of
//! every table is created here or by the table group's `migrate`/`SCHEMA`), the connection
//! lock, the in-memory copies' fill path and the errors. Each table group has its own module,
//! its rows re-exported here:
//!
//! * `tasks`: tasks, their data and images (and creating a task's jobs with its data);
//! * `jobs`: jobs, their stage, state and assignee;
//! * `annotations`: annotation rows per frame and their in-memory copies;
//! * `review`: review issues and comments;
//! * `labels`: labels and attributes, and their conversion to the domain's label index
//!   and to CVAT's label JSON;
//! * `users`: users, sessions and access tokens;
//! * `requests`: background requests, in their own database file;
//! * `hot`: the in-memory copies of the rows every request reads.

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

mod annotations;
mod hot;
mod jobs;
mod labels;
mod requests;
mod review;
mod tasks;
mod users;

pub use annotations::{
    AnnotationChange, AnnotationStoreError, ALL_FRAMES, DEFAULT_ANNOTATION_CACHE_BYTES,
};
pub use jobs::{JobRow, JobUpdate};
pub use labels::{label_json, LabelRow};
pub use requests::RequestRow;
pub use review::{CommentRow, IssueRow, NewIssue};
pub use tasks::{DataRow, TaskRow};
pub use users::{TokenRow, UserRow};

/// Database errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("corrupt database record: {0}")]
    Json(#[from] serde_json::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA foreign_keys = ON;
-- 32 MiB of page cache (SQLite's default is 2 MiB): replacing a large task's annotations
-- reads every page it frees, and re-reading them from the WAL cost more than the writes.
PRAGMA cache_size = -32768;
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    segment_size INTEGER NOT NULL,
    overlap INTEGER,
    bug_tracker TEXT NOT NULL,
    subset TEXT NOT NULL,
    owner_id INTEGER,
    assignee_id INTEGER,
    created_date TEXT NOT NULL,
    updated_date TEXT NOT NULL,
    data_id INTEGER
);
CREATE TABLE IF NOT EXISTS data (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    chunks_updated_date TEXT NOT NULL,
    spec TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    data_id INTEGER NOT NULL REFERENCES data(id) ON DELETE CASCADE,
    frame INTEGER NOT NULL,
    info TEXT NOT NULL,
    PRIMARY KEY (data_id, frame)
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    segment_start INTEGER NOT NULL,
    segment_stop INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin INTEGER NOT NULL,
    created_date TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    expires TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS access_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_date TEXT NOT NULL,
    expiry_date TEXT,
    last_used_date TEXT
);
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    parent_id INTEGER REFERENCES labels(id) ON DELETE CASCADE,
    info TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS attributes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    label_id INTEGER NOT NULL REFERENCES labels(id) ON DELETE CASCADE,
    info TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS annotation_frames (
    task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    frame INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (task_id, frame)
);
CREATE TABLE IF NOT EXISTS annotation_ids (id INTEGER PRIMARY KEY AUTOINCREMENT);
";

/// The database.
pub struct Store {
    conn: Mutex<Connection>,
    annotations_cache: annotations::AnnotationCache,
    hot: hot::HotReads,
    /// Dropping it stops the background checkpoint thread.
    _checkpointer: Option<std::sync::mpsc::Sender<()>>,
}

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn parse_ts(s: String) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(review::SCHEMA)?;
        annotations::migrate(&conn)?;
        jobs::migrate(&conn)?;
        let requests_db = requests::path(path);
        requests::attach(&conn, &requests_db)?;
        // Checkpoints (copying the WAL back into the database) run on a background connection,
        // not inside whichever request's commit crosses the WAL size limit: a large annotation
        // import otherwise pays ~30 ms for it.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let checkpointer = Connection::open(path)?;
        checkpointer.busy_timeout(std::time::Duration::from_secs(5))?;
        requests::attach(&checkpointer, &requests_db)?;
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(std::time::Duration::from_millis(500))
                {
                    if let Err(e) = checkpointer.execute_batch("PRAGMA wal_checkpoint(PASSIVE);") {
                        tracing::warn!("database checkpoint failed: {e}");
                    }
                }
                // Closing the last connection checkpoints and removes the WAL.
            })
            .map_err(|e| {
                StoreError::Sqlite(rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
            })?;
        Ok(Store {
            conn: Mutex::new(conn),
            annotations_cache: annotations::AnnotationCache::new(DEFAULT_ANNOTATION_CACHE_BYTES),
            hot: hot::HotReads::new(),
            _checkpointer: Some(stop),
        })
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(review::SCHEMA)?;
        jobs::migrate(&conn)?;
        requests::attach(&conn, Path::new(":memory:"))?;
        Ok(Store {
            conn: Mutex::new(conn),
            annotations_cache: annotations::AnnotationCache::new(DEFAULT_ANNOTATION_CACHE_BYTES),
            hot: hot::HotReads::new(),
            _checkpointer: None,
        })
    }

    /// `key` from `cache`, else `load`ed and kept; see [`hot`] for why both happen under the
    /// connection lock.
    fn hot_get<K, V>(
        &self,
        cache: &moka::sync::Cache<K, V>,
        key: K,
        load: impl FnOnce(&Connection) -> Result<V>,
    ) -> Result<V>
    where
        K: std::hash::Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        if let Some(v) = cache.get(&key) {
            return Ok(v);
        }
        let c = self.conn();
        let v = load(&c)?;
        cache.insert(key, v.clone());
        Ok(v)
    }

    /// Whether the database is read-only (SQLite opens it so, without an error, when the file
    /// cannot be written).
    pub fn is_read_only(&self) -> bool {
        let c = self.conn();
        [rusqlite::MAIN_DB, c"rq"]
            .iter()
            .any(|db| c.is_readonly(*db).unwrap_or(false))
    }

    /// A health check: both databases answer a query.
    pub fn check(&self) -> Result<()> {
        let c = self.conn();
        c.query_row("SELECT count(*) FROM tasks WHERE id < 0", [], |_| Ok(()))?;
        c.query_row("SELECT count(*) FROM rq.requests WHERE 0", [], |_| Ok(()))?;
        Ok(())
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (statements are
        // atomic), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{ChunkType, DataSpec, FrameRange, MediaSource};

    /// The data spec of an image task of `frames` frames (no files behind it).
    pub(super) fn images_spec(frames: u64) -> DataSpec {
        DataSpec {
            range: FrameRange::new(frames, 0, None, 1).unwrap(),
            frame_filter: String::new(),
            chunk_size: 2,
            image_quality: 70,
            compressed_chunk_type: ChunkType::Imageset,
            original_chunk_type: ChunkType::Imageset,
            storage: "local".into(),
            sorting_method: "lexicographical".into(),
            media: MediaSource::Images,
            dir: "/tmp/x".into(),
        }
    }

    pub(super) fn task() -> TaskRow {
        TaskRow {
            labels: serde_json::json!([{"name": "car"}]),
            ..TaskRow::new("t")
        }
    }

    /// The in-memory copies (`hot`) never outlive a change made through the store.
    #[test]
    fn cached_reads_follow_writes() {
        let s = Store::in_memory().unwrap();
        // A miss is cached too: creating the row must replace it.
        assert!(s.task(1).unwrap().is_none());
        let t = s.create_task(task()).unwrap();
        assert_eq!(t.id, 1);
        assert!(s.task(1).unwrap().is_some());
        let mut renamed = s.task(1).unwrap().unwrap();
        renamed.name = "renamed".into();
        s.update_task(&renamed).unwrap();
        assert_eq!(s.task(1).unwrap().unwrap().name, "renamed");
        s.set_task_owner(1, Some(7)).unwrap();
        assert_eq!(s.task(1).unwrap().unwrap().owner_id, Some(7));

        let u = s.create_user("ann", "h1", false).unwrap().unwrap();
        let later = Utc::now() + chrono::Duration::hours(1);
        assert!(s.session("sess").unwrap().is_none());
        s.create_session("sess", u.id, "csrf", later).unwrap();
        assert_eq!(s.session("sess").unwrap().unwrap().0.username, "ann");
        s.delete_session("sess").unwrap();
        assert!(s.session("sess").unwrap().is_none());
        s.create_session("sess2", u.id, "csrf", later).unwrap();
        assert!(s.session("sess2").unwrap().is_some());
        s.set_password(u.id, "h2").unwrap();
        assert!(
            s.session("sess2").unwrap().is_none(),
            "a new password ends sessions"
        );
        assert_eq!(s.user(u.id).unwrap().unwrap().password_hash, "h2");
        let kept = s.create_token(u.id, "kept?", "tok2", None).unwrap();
        assert!(s.token_by_hash("tok2").unwrap().is_some());
        s.set_password(u.id, "h3").unwrap();
        assert!(
            s.token_by_hash("tok2").unwrap().is_none(),
            "a new password revokes tokens"
        );
        assert!(s.tokens(u.id).unwrap().iter().all(|t| t.id != kept.id));

        assert!(s.token_by_hash("tok").unwrap().is_none());
        let tok = s.create_token(u.id, "ci", "tok", None).unwrap();
        assert!(s.token_by_hash("tok").unwrap().is_some());
        assert!(s.revoke_token(u.id, tok.id).unwrap());
        assert!(s.token_by_hash("tok").unwrap().is_none());
    }
}
