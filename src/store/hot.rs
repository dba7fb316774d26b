//! In-memory copies of the rows every request reads (session or token → user, task, task data),
//! so a cache hit on a chunk does not queue on the database connection four times.
//!
//! Consistency: a copy is filled and dropped only while holding the connection lock (a filler
//! reads the database and inserts in one critical section; a writer changes the database and
//! drops the copy in one), so a copy is never older than the last write made through this
//! [`Store`](super::Store). Changes made by another process (the `frameserver user` CLI on the
//! same database) are seen after at most [`TTL`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use moka::sync::Cache;

use super::{DataRow, TaskRow, TokenRow, UserRow};

/// How long a copy may live without being re-read from the database.
pub const TTL: Duration = Duration::from_secs(10);

const ENTRIES: u64 = 10_000;

fn cache<K, V>() -> Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(ENTRIES)
        .time_to_live(TTL)
        .build()
}

/// A session row: user id, CSRF token, expiry.
pub(super) type SessionEntry = Option<(i64, String, DateTime<Utc>)>;

pub(super) struct HotReads {
    pub(super) sessions: Cache<String, SessionEntry>,
    pub(super) tokens: Cache<String, Option<TokenRow>>,
    pub(super) users: Cache<i64, Option<UserRow>>,
    pub(super) tasks: Cache<i64, Option<TaskRow>>,
    /// Data by task id.
    pub(super) data: Cache<i64, Option<DataRow>>,
}

impl HotReads {
    pub(super) fn new() -> HotReads {
        HotReads {
            sessions: cache(),
            tokens: cache(),
            users: cache(),
            tasks: cache(),
            data: cache(),
        }
    }
}
