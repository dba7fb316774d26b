//! Review issues (a point or region of a job's frame that needs a fix) and their comments.
//! Deleting a job's task deletes its issues and their comments (foreign keys).

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{parse_ts, ts, Result, Store};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS issues (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    frame INTEGER NOT NULL,
    position TEXT NOT NULL,
    owner_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    assignee_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    resolved INTEGER NOT NULL,
    created_date TEXT NOT NULL,
    updated_date TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS issues_by_job ON issues (job_id);
CREATE TABLE IF NOT EXISTS comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    issue_id INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    owner_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    message TEXT NOT NULL,
    created_date TEXT NOT NULL,
    updated_date TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS comments_by_issue ON comments (issue_id);
";

/// An issue.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueRow {
    pub id: i64,
    pub job_id: i64,
    /// Task-relative frame.
    pub frame: u64,
    /// The region: x1, y1, x2, y2, … in frame pixels.
    pub position: Vec<f64>,
    pub owner_id: Option<i64>,
    pub assignee_id: Option<i64>,
    pub resolved: bool,
    pub created_date: DateTime<Utc>,
    pub updated_date: DateTime<Utc>,
}

/// A new issue with its first comment (CVAT creates both from one request).
#[derive(Debug, Clone, PartialEq)]
pub struct NewIssue {
    pub job_id: i64,
    pub frame: u64,
    pub position: Vec<f64>,
    pub owner_id: i64,
    pub assignee_id: Option<i64>,
    pub resolved: bool,
    pub message: String,
}

/// A comment of an issue.
#[derive(Debug, Clone, PartialEq)]
pub struct CommentRow {
    pub id: i64,
    pub issue_id: i64,
    pub owner_id: Option<i64>,
    pub message: String,
    pub created_date: DateTime<Utc>,
    pub updated_date: DateTime<Utc>,
}

const ISSUE_COLUMNS: &str =
    "id, job_id, frame, position, owner_id, assignee_id, resolved, created_date, updated_date";
const COMMENT_COLUMNS: &str = "id, issue_id, owner_id, message, created_date, updated_date";

fn issue_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IssueRow> {
    let position: String = r.get(3)?;
    Ok(IssueRow {
        id: r.get(0)?,
        job_id: r.get(1)?,
        frame: r.get::<_, i64>(2)? as u64,
        position: serde_json::from_str(&position).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
        })?,
        owner_id: r.get(4)?,
        assignee_id: r.get(5)?,
        resolved: r.get(6)?,
        created_date: parse_ts(r.get(7)?)?,
        updated_date: parse_ts(r.get(8)?)?,
    })
}

fn comment_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CommentRow> {
    Ok(CommentRow {
        id: r.get(0)?,
        issue_id: r.get(1)?,
        owner_id: r.get(2)?,
        message: r.get(3)?,
        created_date: parse_ts(r.get(4)?)?,
        updated_date: parse_ts(r.get(5)?)?,
    })
}

impl Store {
    /// Creates an issue and its first comment in one transaction.
    pub fn create_issue(&self, new: &NewIssue) -> Result<IssueRow> {
        let now = Utc::now();
        let id = {
            let mut c = self.conn();
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO issues (job_id, frame, position, owner_id, assignee_id, resolved,
                     created_date, updated_date) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                params![
                    new.job_id,
                    new.frame as i64,
                    serde_json::to_string(&new.position)?,
                    new.owner_id,
                    new.assignee_id,
                    new.resolved,
                    ts(&now),
                ],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO comments (issue_id, owner_id, message, created_date, updated_date)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![id, new.owner_id, new.message, ts(&now)],
            )?;
            tx.commit()?;
            id
        };
        Ok(self
            .issue(id)?
            .expect("the issue was inserted in this call"))
    }

    /// An issue by id.
    pub fn issue(&self, id: i64) -> Result<Option<IssueRow>> {
        let c = self.conn();
        let row = c
            .prepare_cached(&format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE id = ?1"))?
            .query_row([id], issue_from_row)
            .optional()?;
        Ok(row)
    }

    /// Issues, of one job or all, by id.
    pub fn issues(&self, job_id: Option<i64>) -> Result<Vec<IssueRow>> {
        let c = self.conn();
        let sql = format!(
            "SELECT {ISSUE_COLUMNS} FROM issues WHERE ?1 IS NULL OR job_id = ?1 ORDER BY id"
        );
        let mut st = c.prepare_cached(&sql)?;
        let rows = st
            .query_map([job_id], issue_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// How many issues a job has.
    pub fn issue_count(&self, job_id: i64) -> Result<u64> {
        let c = self.conn();
        let n: i64 = c
            .prepare_cached("SELECT count(*) FROM issues WHERE job_id = ?1")?
            .query_row([job_id], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Stores an issue's mutable fields (`position`, `assignee_id`, `resolved`) and stamps its
    /// `updated_date`.
    pub fn update_issue(&self, issue: &IssueRow) -> Result<()> {
        self.conn().execute(
            "UPDATE issues SET position = ?2, assignee_id = ?3, resolved = ?4, updated_date = ?5
             WHERE id = ?1",
            params![
                issue.id,
                serde_json::to_string(&issue.position)?,
                issue.assignee_id,
                issue.resolved,
                ts(&Utc::now()),
            ],
        )?;
        Ok(())
    }

    /// Deletes an issue and its comments.
    pub fn delete_issue(&self, id: i64) -> Result<()> {
        self.conn()
            .execute("DELETE FROM issues WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Adds a comment to an issue (and stamps the issue's `updated_date`).
    pub fn create_comment(
        &self,
        issue_id: i64,
        owner_id: i64,
        message: &str,
    ) -> Result<CommentRow> {
        let now = ts(&Utc::now());
        let id = {
            let mut c = self.conn();
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO comments (issue_id, owner_id, message, created_date, updated_date)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![issue_id, owner_id, message, now],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "UPDATE issues SET updated_date = ?2 WHERE id = ?1",
                params![issue_id, now],
            )?;
            tx.commit()?;
            id
        };
        Ok(self
            .comment(id)?
            .expect("the comment was inserted in this call"))
    }

    /// A comment by id.
    pub fn comment(&self, id: i64) -> Result<Option<CommentRow>> {
        let c = self.conn();
        let row = c
            .prepare_cached(&format!(
                "SELECT {COMMENT_COLUMNS} FROM comments WHERE id = ?1"
            ))?
            .query_row([id], comment_from_row)
            .optional()?;
        Ok(row)
    }

    /// Comments of one issue, or of every issue of one job, or all; by id.
    pub fn comments(&self, issue_id: Option<i64>, job_id: Option<i64>) -> Result<Vec<CommentRow>> {
        let c = self.conn();
        let sql = format!(
            "SELECT {} FROM comments c WHERE (?1 IS NULL OR c.issue_id = ?1)
                 AND (?2 IS NULL OR c.issue_id IN (SELECT id FROM issues WHERE job_id = ?2))
             ORDER BY c.id",
            COMMENT_COLUMNS
                .split(", ")
                .map(|col| format!("c.{col}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut st = c.prepare_cached(&sql)?;
        let rows = st
            .query_map(params![issue_id, job_id], comment_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// How many comments an issue has.
    pub fn comment_count(&self, issue_id: i64) -> Result<u64> {
        let c = self.conn();
        let n: i64 = c
            .prepare_cached("SELECT count(*) FROM comments WHERE issue_id = ?1")?
            .query_row([issue_id], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Changes a comment's message.
    pub fn update_comment(&self, id: i64, message: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE comments SET message = ?2, updated_date = ?3 WHERE id = ?1",
            params![id, message, ts(&Utc::now())],
        )?;
        Ok(())
    }

    /// Deletes a comment.
    pub fn delete_comment(&self, id: i64) -> Result<()> {
        self.conn()
            .execute("DELETE FROM comments WHERE id = ?1", [id])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TaskRow;
    use crate::task::SegmentRange;

    fn store_with_job() -> (Store, i64, i64) {
        let s = Store::in_memory().unwrap();
        let u = s.create_user("ann", "x", false).unwrap().unwrap();
        let t = s.create_task(TaskRow::new("t")).unwrap();
        let spec = crate::store::tests::images_spec(10);
        s.attach_data(t.id, &spec, &[], &[SegmentRange { start: 0, stop: 9 }])
            .unwrap();
        let job = s.jobs_of_task(t.id).unwrap()[0].id;
        (s, job, u.id)
    }

    #[test]
    fn issues_with_comments_live_and_die_with_their_task() {
        let (s, job, user) = store_with_job();
        let issue = s
            .create_issue(&NewIssue {
                job_id: job,
                frame: 3,
                position: vec![1.0, 2.0, 30.5, 40.0],
                owner_id: user,
                assignee_id: None,
                resolved: false,
                message: "box is loose".into(),
            })
            .unwrap();
        assert_eq!(issue.position, vec![1.0, 2.0, 30.5, 40.0]);
        assert_eq!(s.comment_count(issue.id).unwrap(), 1);
        s.create_comment(issue.id, user, "fixed").unwrap();
        let by_job = s.comments(None, Some(job)).unwrap();
        assert_eq!(
            by_job
                .iter()
                .map(|c| c.message.as_str())
                .collect::<Vec<_>>(),
            ["box is loose", "fixed"]
        );
        let mut resolved = issue.clone();
        resolved.resolved = true;
        s.update_issue(&resolved).unwrap();
        assert!(s.issue(issue.id).unwrap().unwrap().resolved);
        assert_eq!(s.issue_count(job).unwrap(), 1);
        let task = s.job(job).unwrap().unwrap().task_id;
        s.delete_task(task).unwrap();
        assert!(s.issue(issue.id).unwrap().is_none());
        assert!(s.comments(Some(issue.id), None).unwrap().is_empty());
    }
}
