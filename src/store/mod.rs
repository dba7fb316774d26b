//! The embedded database (SQLite): tasks, their data, images, segments, jobs and background
//! requests. One connection behind a mutex, WAL mode; every statement is short, so handlers call
//! it directly. Structured parts (labels, data spec) are stored as JSON columns.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::task::{DataSpec, ImageFrame, SegmentRange};

mod annotations;
mod hot;
mod jobs;
mod review;

pub use annotations::{
    AnnotationChange, AnnotationStoreError, ALL_FRAMES, DEFAULT_ANNOTATION_CACHE_BYTES,
};
pub use jobs::{JobRow, JobUpdate};
pub use review::{CommentRow, IssueRow, NewIssue};

/// Database errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("corrupt database record: {0}")]
    Json(#[from] serde_json::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A task row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRow {
    pub id: i64,
    pub name: String,
    pub labels: serde_json::Value,
    pub segment_size: u64,
    pub overlap: Option<u64>,
    pub bug_tracker: String,
    pub subset: String,
    pub owner_id: Option<i64>,
    pub assignee_id: Option<i64>,
    pub created_date: DateTime<Utc>,
    pub updated_date: DateTime<Utc>,
    pub data_id: Option<i64>,
}

impl TaskRow {
    /// A task named `name` to be created now ([`Store::create_task`] gives the id): no labels,
    /// owner, data or segment size yet.
    pub fn new(name: impl Into<String>) -> TaskRow {
        let now = Utc::now();
        TaskRow {
            id: 0,
            name: name.into(),
            labels: serde_json::json!([]),
            segment_size: 0,
            overlap: None,
            bug_tracker: String::new(),
            subset: String::new(),
            owner_id: None,
            assignee_id: None,
            created_date: now,
            updated_date: now,
            data_id: None,
        }
    }
}

/// A data row: the spec plus its version (bumped whenever the data changes, so cached chunks
/// of an older version are never served) and the chunks-updated date.
#[derive(Debug, Clone, PartialEq)]
pub struct DataRow {
    pub id: i64,
    pub task_id: i64,
    pub version: i64,
    pub chunks_updated_date: DateTime<Utc>,
    pub spec: DataSpec,
}

/// A background request (`/api/requests/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRow {
    pub id: String,
    /// queued | started | finished | failed
    pub status: String,
    pub message: String,
    pub progress: Option<f64>,
    pub operation_type: String,
    pub target: String,
    pub task_id: Option<i64>,
    pub created_date: DateTime<Utc>,
    pub started_date: Option<DateTime<Utc>>,
    pub finished_date: Option<DateTime<Utc>>,
    pub result_id: Option<i64>,
    /// Who started it.
    #[serde(default)]
    pub owner_id: Option<i64>,
    /// Where to download the result (exports).
    #[serde(default)]
    pub result_url: Option<String>,
}

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

/// The database of background requests beside the main one (`frameserver-requests.sqlite3`).
fn requests_path(main: &Path) -> PathBuf {
    let stem = main
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("frameserver");
    main.with_file_name(format!("{stem}-requests.sqlite3"))
}

/// Attaches the requests database as `rq`. Requests are transient status (CVAT keeps them in
/// Redis): their commits skip the fsync (`synchronous = NORMAL`, ~4 ms per commit on this
/// class of disk, three per export or import), which a crash can only cost a status update.
/// Requests of earlier versions (in the main database) are dropped.
fn attach_requests(conn: &Connection, path: &Path) -> Result<()> {
    conn.execute("ATTACH DATABASE ?1 AS rq", [path.to_string_lossy()])?;
    conn.execute_batch(
        "PRAGMA rq.journal_mode = WAL;
         PRAGMA rq.synchronous = NORMAL;
         CREATE TABLE IF NOT EXISTS rq.requests (
             id TEXT PRIMARY KEY,
             task_id INTEGER,
             info TEXT NOT NULL
         );
         DROP TABLE IF EXISTS main.requests;",
    )?;
    Ok(())
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
        let requests_db = requests_path(path);
        attach_requests(&conn, &requests_db)?;
        // Checkpoints (copying the WAL back into the database) run on a background connection,
        // not inside whichever request's commit crosses the WAL size limit: a large annotation
        // import otherwise pays ~30 ms for it.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let checkpointer = Connection::open(path)?;
        checkpointer.busy_timeout(std::time::Duration::from_secs(5))?;
        attach_requests(&checkpointer, &requests_db)?;
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
        attach_requests(&conn, Path::new(":memory:"))?;
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

    /// Inserts a task; returns it with its id.
    pub fn create_task(&self, mut task: TaskRow) -> Result<TaskRow> {
        let c = self.conn();
        c.execute(
            "INSERT INTO tasks (name, labels, segment_size, overlap, bug_tracker, subset, owner_id, assignee_id, created_date, updated_date, data_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL)",
            params![
                task.name,
                task.labels.to_string(),
                task.segment_size as i64,
                task.overlap.map(|o| o as i64),
                task.bug_tracker,
                task.subset,
                task.owner_id,
                task.assignee_id,
                ts(&task.created_date),
                ts(&task.updated_date)
            ],
        )?;
        task.id = c.last_insert_rowid();
        task.data_id = None;
        self.hot.tasks.invalidate(&task.id);
        Ok(task)
    }

    fn task_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TaskRow> {
        let labels: String = r.get(2)?;
        Ok(TaskRow {
            id: r.get(0)?,
            name: r.get(1)?,
            labels: serde_json::from_str(&labels).unwrap_or(serde_json::Value::Array(vec![])),
            segment_size: r.get::<_, i64>(3)? as u64,
            overlap: r.get::<_, Option<i64>>(4)?.map(|o| o as u64),
            bug_tracker: r.get(5)?,
            subset: r.get(6)?,
            owner_id: r.get(7)?,
            assignee_id: r.get(8)?,
            created_date: parse_ts(r.get(9)?)?,
            updated_date: parse_ts(r.get(10)?)?,
            data_id: r.get(11)?,
        })
    }

    const TASK_COLUMNS: &'static str =
        "id, name, labels, segment_size, overlap, bug_tracker, subset, owner_id, assignee_id, created_date, updated_date, data_id";

    /// A task by id.
    pub fn task(&self, id: i64) -> Result<Option<TaskRow>> {
        self.hot_get(&self.hot.tasks, id, |c| {
            let sql = format!("SELECT {} FROM tasks WHERE id = ?1", Self::TASK_COLUMNS);
            Ok(c.prepare_cached(&sql)?
                .query_row([id], Self::task_from_row)
                .optional()?)
        })
    }

    /// All tasks, newest first.
    pub fn tasks(&self) -> Result<Vec<TaskRow>> {
        let c = self.conn();
        let sql = format!("SELECT {} FROM tasks ORDER BY id DESC", Self::TASK_COLUMNS);
        let mut st = c.prepare(&sql)?;
        let rows = st
            .query_map([], Self::task_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Updates the mutable task fields and `updated_date`.
    pub fn update_task(&self, task: &TaskRow) -> Result<()> {
        let c = self.conn();
        self.hot.tasks.invalidate(&task.id);
        c.execute(
            "UPDATE tasks SET name = ?2, labels = ?3, bug_tracker = ?4, subset = ?5, assignee_id = ?6, updated_date = ?7 WHERE id = ?1",
            params![
                task.id,
                task.name,
                task.labels.to_string(),
                task.bug_tracker,
                task.subset,
                task.assignee_id,
                ts(&task.updated_date)
            ],
        )?;
        Ok(())
    }

    /// Moves a task's `updated_date` to now.
    pub fn touch_task(&self, id: i64) -> Result<()> {
        let c = self.conn();
        self.hot.tasks.invalidate(&id);
        c.execute(
            "UPDATE tasks SET updated_date = ?2 WHERE id = ?1",
            params![id, ts(&Utc::now())],
        )?;
        Ok(())
    }

    /// Deletes a task with its data, images and jobs. Returns the data row it had.
    pub fn delete_task(&self, id: i64) -> Result<Option<DataRow>> {
        let data = self.data_of_task(id)?;
        let mut c = self.conn();
        let tx = c.transaction()?;
        // Requests still running stay: they notice the deletion and end `failed` saying so,
        // instead of vanishing under a client that polls them.
        tx.execute(
            "DELETE FROM rq.requests WHERE task_id = ?1 \
             AND json_extract(info, '$.status') NOT IN ('queued', 'started')",
            [id],
        )?;
        tx.execute("DELETE FROM tasks WHERE id = ?1", [id])?;
        tx.commit()?;
        self.hot.tasks.invalidate(&id);
        self.hot.data.invalidate(&id);
        drop(c);
        self.forget_annotations(id);
        Ok(data)
    }

    /// Stores a task's data, its images and its jobs in one transaction, and links the task.
    pub fn attach_data(
        &self,
        task_id: i64,
        spec: &DataSpec,
        images: &[ImageFrame],
        jobs: &[SegmentRange],
    ) -> Result<DataRow> {
        let now = Utc::now();
        let mut c = self.conn();
        let tx = c.transaction()?;
        tx.execute(
            "INSERT INTO data (task_id, version, chunks_updated_date, spec) VALUES (?1, 1, ?2, ?3)",
            params![task_id, ts(&now), serde_json::to_string(spec)?],
        )?;
        let data_id = tx.last_insert_rowid();
        {
            let mut st =
                tx.prepare("INSERT INTO images (data_id, frame, info) VALUES (?1, ?2, ?3)")?;
            for img in images {
                st.execute(params![
                    data_id,
                    img.frame as i64,
                    serde_json::to_string(img)?
                ])?;
            }
            let mut st = tx.prepare(
                "INSERT INTO jobs (task_id, segment_start, segment_stop, created_date, updated_date)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
            )?;
            for j in jobs {
                st.execute(params![task_id, j.start as i64, j.stop as i64, ts(&now)])?;
            }
        }
        tx.execute(
            "UPDATE tasks SET data_id = ?2, updated_date = ?3 WHERE id = ?1",
            params![task_id, data_id, ts(&now)],
        )?;
        tx.commit()?;
        self.hot.tasks.invalidate(&task_id);
        self.hot.data.invalidate(&task_id);
        Ok(DataRow {
            id: data_id,
            task_id,
            version: 1,
            chunks_updated_date: now,
            spec: spec.clone(),
        })
    }

    /// The data of a task, if it has any.
    pub fn data_of_task(&self, task_id: i64) -> Result<Option<DataRow>> {
        self.hot_get(&self.hot.data, task_id, |c| Self::load_data(c, task_id))
    }

    fn load_data(c: &Connection, task_id: i64) -> Result<Option<DataRow>> {
        let row = c
            .prepare_cached("SELECT id, task_id, version, chunks_updated_date, spec FROM data WHERE task_id = ?1")?.query_row(
                [task_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, parse_ts(r.get(3)?)?, r.get::<_, String>(4)?)),
            )
            .optional()?;
        match row {
            None => Ok(None),
            Some((id, task_id, version, chunks_updated_date, spec)) => Ok(Some(DataRow {
                id,
                task_id,
                version,
                chunks_updated_date,
                spec: serde_json::from_str(&spec)?,
            })),
        }
    }

    /// All images of a data, in frame order.
    pub fn images(&self, data_id: i64) -> Result<Vec<ImageFrame>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT info FROM images WHERE data_id = ?1 ORDER BY frame")?;
        let rows = st
            .query_map([data_id], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.iter().map(|s| Ok(serde_json::from_str(s)?)).collect()
    }

    /// Inserts or replaces a request.
    pub fn put_request(&self, r: &RequestRow) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO rq.requests (id, task_id, info) VALUES (?1, ?2, ?3)",
            params![r.id, r.task_id, serde_json::to_string(r)?],
        )?;
        Ok(())
    }

    /// A request by id.
    pub fn request(&self, id: &str) -> Result<Option<RequestRow>> {
        self.one_request("SELECT info FROM rq.requests WHERE id = ?1", id)
    }

    /// The request whose result URL ends with `suffix` (e.g. `/api/exports/{file id}`), if any.
    pub fn request_by_result(&self, suffix: &str) -> Result<Option<RequestRow>> {
        self.one_request(
            "SELECT info FROM rq.requests \
             WHERE substr(json_extract(info, '$.result_url'), -length(?1)) = ?1 \
             ORDER BY rowid DESC LIMIT 1",
            suffix,
        )
    }

    /// The request `sql` selects (its `info`) with parameter `arg`, if any.
    fn one_request(&self, sql: &str, arg: &str) -> Result<Option<RequestRow>> {
        let s: Option<String> = self
            .conn()
            .prepare_cached(sql)?
            .query_row([arg], |r| r.get(0))
            .optional()?;
        Ok(match s {
            Some(s) => Some(serde_json::from_str(&s)?),
            None => None,
        })
    }

    /// All requests, newest first.
    pub fn requests(&self) -> Result<Vec<RequestRow>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT info FROM rq.requests ORDER BY rowid DESC")?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.iter().map(|s| Ok(serde_json::from_str(s)?)).collect()
    }
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub created_date: DateTime<Utc>,
}

/// A personal access token (the token itself is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub created_date: DateTime<Utc>,
    pub expiry_date: Option<DateTime<Utc>>,
    pub last_used_date: Option<DateTime<Utc>>,
}

/// A label as stored: its JSON (name, color, type, svg, …) without ids, plus its attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelRow {
    pub id: i64,
    pub task_id: i64,
    pub parent_id: Option<i64>,
    pub info: serde_json::Value,
    /// `(attribute id, attribute JSON without id)`.
    pub attributes: Vec<(i64, serde_json::Value)>,
}

impl Store {
    fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
        Ok(UserRow {
            id: r.get(0)?,
            username: r.get(1)?,
            password_hash: r.get(2)?,
            is_admin: r.get::<_, i64>(3)? != 0,
            created_date: parse_ts(r.get(4)?)?,
        })
    }

    /// Creates a user; `None` if the name is taken.
    pub fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        is_admin: bool,
    ) -> Result<Option<UserRow>> {
        let c = self.conn();
        let now = Utc::now();
        match c.execute(
            "INSERT INTO users (username, password_hash, is_admin, created_date) VALUES (?1, ?2, ?3, ?4)",
            params![username, password_hash, is_admin as i64, ts(&now)],
        ) {
            Ok(_) => {
                let id = c.last_insert_rowid();
                self.hot.users.invalidate(&id);
                Ok(Some(UserRow {
                    id,
                    username: username.to_owned(),
                    password_hash: password_hash.to_owned(),
                    is_admin,
                    created_date: now,
                }))
            }
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A user by name.
    pub fn user_by_name(&self, username: &str) -> Result<Option<UserRow>> {
        Ok(self.conn()
            .prepare_cached("SELECT id, username, password_hash, is_admin, created_date FROM users WHERE username = ?1")?
            .query_row(
                [username],
                Self::user_from_row,
            )
            .optional()?)
    }

    /// A user by id.
    pub fn user(&self, id: i64) -> Result<Option<UserRow>> {
        self.hot_get(&self.hot.users, id, |c| {
            Ok(c.prepare_cached(
                "SELECT id, username, password_hash, is_admin, created_date FROM users WHERE id = ?1",
            )?
            .query_row([id], Self::user_from_row)
            .optional()?)
        })
    }

    /// All users by id.
    pub fn users(&self) -> Result<Vec<UserRow>> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT id, username, password_hash, is_admin, created_date FROM users ORDER BY id",
        )?;
        let rows = st
            .query_map([], Self::user_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Replaces a user's password hash and revokes their sessions and access tokens (a changed
    /// password is often a leaked one). A server running in another process
    /// sees it within its in-memory copies' lifetime (10 s).
    pub fn set_password(&self, user_id: i64, password_hash: &str) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        tx.execute(
            "UPDATE users SET password_hash = ?2 WHERE id = ?1",
            params![user_id, password_hash],
        )?;
        tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
        tx.execute("DELETE FROM access_tokens WHERE user_id = ?1", [user_id])?;
        tx.commit()?;
        self.hot.users.invalidate(&user_id);
        self.hot.sessions.invalidate_all();
        self.hot.tokens.invalidate_all();
        Ok(())
    }

    /// Stores a session (by the hash of its id).
    pub fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf: &str,
        expires: DateTime<Utc>,
    ) -> Result<()> {
        let c = self.conn();
        c.execute(
            "INSERT INTO sessions (token_hash, user_id, csrf, expires) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash, user_id, csrf, ts(&expires)],
        )?;
        self.hot.sessions.invalidate(token_hash);
        Ok(())
    }

    /// The user and CSRF token of a live session.
    pub fn session(&self, token_hash: &str) -> Result<Option<(UserRow, String)>> {
        let row = self.hot_get(&self.hot.sessions, token_hash.to_owned(), |c| {
            Ok(c.prepare_cached(
                "SELECT user_id, csrf, expires FROM sessions WHERE token_hash = ?1",
            )?
            .query_row([token_hash], |r| {
                Ok((r.get(0)?, r.get(1)?, parse_ts(r.get(2)?)?))
            })
            .optional()?)
        })?;
        let Some((user_id, csrf, expires)) = row else {
            return Ok(None);
        };
        if expires < Utc::now() {
            self.delete_session(token_hash)?;
            return Ok(None);
        }
        Ok(self.user(user_id)?.map(|u| (u, csrf)))
    }

    /// Ends a session.
    pub fn delete_session(&self, token_hash: &str) -> Result<()> {
        let c = self.conn();
        c.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
        self.hot.sessions.invalidate(token_hash);
        Ok(())
    }

    /// Stores an access token (by its hash).
    pub fn create_token(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &str,
        expiry: Option<DateTime<Utc>>,
    ) -> Result<TokenRow> {
        let c = self.conn();
        let now = Utc::now();
        c.execute(
            "INSERT INTO access_tokens (user_id, name, token_hash, created_date, expiry_date) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![user_id, name, token_hash, ts(&now), expiry.as_ref().map(ts)],
        )?;
        self.hot.tokens.invalidate(token_hash);
        Ok(TokenRow {
            id: c.last_insert_rowid(),
            user_id,
            name: name.to_owned(),
            created_date: now,
            expiry_date: expiry,
            last_used_date: None,
        })
    }

    fn token_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
        Ok(TokenRow {
            id: r.get(0)?,
            user_id: r.get(1)?,
            name: r.get(2)?,
            created_date: parse_ts(r.get(3)?)?,
            expiry_date: r.get::<_, Option<String>>(4)?.map(parse_ts).transpose()?,
            last_used_date: r.get::<_, Option<String>>(5)?.map(parse_ts).transpose()?,
        })
    }

    /// The token and its user, if the token exists and has not expired; records its use.
    pub fn token_by_hash(&self, token_hash: &str) -> Result<Option<(TokenRow, UserRow)>> {
        let t = self.hot_get(&self.hot.tokens, token_hash.to_owned(), |c| {
            Ok(c.prepare_cached("SELECT id, user_id, name, created_date, expiry_date, last_used_date FROM access_tokens WHERE token_hash = ?1")?
                .query_row([token_hash], Self::token_from_row)
                .optional()?)
        })?;
        let Some(mut t) = t else { return Ok(None) };
        if t.expiry_date.is_some_and(|e| e < Utc::now()) {
            return Ok(None);
        }
        // Record use at most once a minute: a write on every request would serialise them.
        let now = Utc::now();
        if t.last_used_date
            .is_none_or(|u| now - u > chrono::Duration::minutes(1))
        {
            let c = self.conn();
            let n = c
                .prepare_cached("UPDATE access_tokens SET last_used_date = ?2 WHERE id = ?1")?
                .execute(params![t.id, ts(&now)])?;
            t.last_used_date = Some(now);
            // Only a token that still exists goes back (a revoke may have run in between).
            if n > 0 {
                self.hot
                    .tokens
                    .insert(token_hash.to_owned(), Some(t.clone()));
            }
        }
        Ok(self.user(t.user_id)?.map(|u| (t, u)))
    }

    /// A user's tokens.
    pub fn tokens(&self, user_id: i64) -> Result<Vec<TokenRow>> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT id, user_id, name, created_date, expiry_date, last_used_date FROM access_tokens WHERE user_id = ?1 ORDER BY id",
        )?;
        let rows = st
            .query_map([user_id], Self::token_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Revokes (deletes) a user's token; false if there was no such token of theirs.
    pub fn revoke_token(&self, user_id: i64, token_id: i64) -> Result<bool> {
        let c = self.conn();
        let n = c.execute(
            "DELETE FROM access_tokens WHERE id = ?1 AND user_id = ?2",
            params![token_id, user_id],
        )?;
        self.hot.tokens.invalidate_all();
        Ok(n > 0)
    }

    /// Sets a task's owner.
    pub fn set_task_owner(&self, task_id: i64, owner_id: Option<i64>) -> Result<()> {
        let c = self.conn();
        self.hot.tasks.invalidate(&task_id);
        c.execute(
            "UPDATE tasks SET owner_id = ?2 WHERE id = ?1",
            params![task_id, owner_id],
        )?;
        Ok(())
    }

    /// Inserts a label (and its attributes) of a task; returns its id.
    pub fn insert_label(
        &self,
        task_id: i64,
        parent_id: Option<i64>,
        info: &serde_json::Value,
        attributes: &[serde_json::Value],
    ) -> Result<i64> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        tx.execute(
            "INSERT INTO labels (task_id, parent_id, info) VALUES (?1, ?2, ?3)",
            params![task_id, parent_id, info.to_string()],
        )?;
        let id = tx.last_insert_rowid();
        for a in attributes {
            tx.execute(
                "INSERT INTO attributes (label_id, info) VALUES (?1, ?2)",
                params![id, a.to_string()],
            )?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// Replaces a label's JSON; attributes with an id are updated, without one added.
    pub fn update_label(
        &self,
        label_id: i64,
        info: &serde_json::Value,
        attributes: &[(Option<i64>, serde_json::Value)],
    ) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        tx.execute(
            "UPDATE labels SET info = ?2 WHERE id = ?1",
            params![label_id, info.to_string()],
        )?;
        for (id, a) in attributes {
            match id {
                Some(id) => tx.execute(
                    "UPDATE attributes SET info = ?3 WHERE id = ?1 AND label_id = ?2",
                    params![id, label_id, a.to_string()],
                )?,
                None => tx.execute(
                    "INSERT INTO attributes (label_id, info) VALUES (?1, ?2)",
                    params![label_id, a.to_string()],
                )?,
            };
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes a label (with its sublabels and attributes).
    pub fn delete_label(&self, label_id: i64) -> Result<()> {
        self.conn()
            .execute("DELETE FROM labels WHERE id = ?1", [label_id])?;
        Ok(())
    }

    /// A task's labels (sublabels included), by id.
    pub fn labels(&self, task_id: i64) -> Result<Vec<LabelRow>> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT id, task_id, parent_id, info FROM labels WHERE task_id = ?1 ORDER BY id",
        )?;
        let rows = st
            .query_map([task_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut ast =
            c.prepare("SELECT id, info FROM attributes WHERE label_id = ?1 ORDER BY id")?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, task_id, parent_id, info) in rows {
            let attributes = ast
                .query_map([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .map(|(aid, s)| Ok((aid, serde_json::from_str(&s)?)))
                .collect::<Result<Vec<_>>>()?;
            out.push(LabelRow {
                id,
                task_id,
                parent_id,
                info: serde_json::from_str(&info)?,
                attributes,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{ChunkType, FileStamp, FrameRange, MediaSource};

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

    #[test]
    fn requests_are_found_by_id_and_by_result_url() {
        let s = Store::in_memory().unwrap();
        let req = |id: &str, url: Option<&str>| RequestRow {
            id: id.into(),
            status: "finished".into(),
            message: String::new(),
            progress: Some(1.0),
            operation_type: "export:dataset".into(),
            target: "task".into(),
            task_id: Some(1),
            created_date: Utc::now(),
            started_date: None,
            finished_date: None,
            result_id: None,
            owner_id: Some(7),
            result_url: url.map(str::to_owned),
        };
        s.put_request(&req("a", Some("http://h/api/exports/00ff")))
            .unwrap();
        s.put_request(&req("b", None)).unwrap();
        s.put_request(&req("c", Some("http://h/api/exports/ab00ff")))
            .unwrap();
        assert_eq!(s.request("b").unwrap().unwrap().id, "b");
        let by = |suffix: &str| s.request_by_result(suffix).unwrap().map(|r| r.id);
        assert_eq!(by("/api/exports/00ff").as_deref(), Some("a"));
        assert_eq!(by("/api/exports/ab00ff").as_deref(), Some("c"));
        assert_eq!(by("/api/exports/ff"), None);
        assert_eq!(s.requests().unwrap().len(), 3);
    }

    #[test]
    fn task_data_jobs_round_trip_and_cascade() {
        let s = Store::in_memory().unwrap();
        let t = s.create_task(task()).unwrap();
        assert_eq!(s.task(t.id).unwrap().unwrap().name, "t");
        let spec = images_spec(3);
        let img = ImageFrame {
            frame: 0,
            path: "/tmp/x/a.png".into(),
            name: "a.png".into(),
            width: 2,
            height: 3,
            related: vec![],
            stamp: FileStamp {
                size: 1,
                mtime_ns: 2,
            },
        };
        let d = s
            .attach_data(
                t.id,
                &spec,
                std::slice::from_ref(&img),
                &[SegmentRange { start: 0, stop: 2 }],
            )
            .unwrap();
        assert_eq!(s.data_of_task(t.id).unwrap().unwrap().spec, spec);
        assert_eq!(s.images(d.id).unwrap(), vec![img]);
        assert_eq!(s.jobs_of_task(t.id).unwrap().len(), 1);
        assert_eq!(s.task(t.id).unwrap().unwrap().data_id, Some(d.id));
        s.delete_task(t.id).unwrap();
        assert!(s.task(t.id).unwrap().is_none());
        assert!(s.images(d.id).unwrap().is_empty());
        assert!(s.jobs(None).unwrap().is_empty());
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
