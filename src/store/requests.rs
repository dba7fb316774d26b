//! Background requests (`/api/requests/{id}`: exports, imports, task data creation), kept in
//! their own database file beside the main one.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{Result, Store};

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

/// The database of background requests beside the main one (`frameserver-requests.sqlite3`).
pub(super) fn path(main: &Path) -> PathBuf {
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
pub(super) fn attach(conn: &Connection, path: &Path) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
