//! Jobs: one per segment of a task, with their workflow stage and state, their own assignee
//! and their dates.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{parse_ts, ts, Result, Store};
use crate::task::SegmentRange;
use crate::workflow::{Stage, State};

/// A segment with its job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobRow {
    pub id: i64,
    pub task_id: i64,
    pub segment_id: i64,
    pub range: SegmentRange,
    pub stage: Stage,
    pub state: State,
    pub assignee_id: Option<i64>,
    pub assignee_updated_date: Option<DateTime<Utc>>,
    pub created_date: DateTime<Utc>,
    pub updated_date: DateTime<Utc>,
}

/// The mutable fields of a job (`PATCH /api/jobs/{id}`), already checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobUpdate {
    pub stage: Stage,
    pub state: State,
    /// `Some(new)` to change the assignee (stamps `assignee_updated_date`).
    pub assignee: Option<Option<i64>>,
}

const JOB_COLUMNS: &str = "id, task_id, segment_start, segment_stop, stage, state, assignee_id, \
                           assignee_updated_date, created_date, updated_date";

/// Adds the workflow columns to a database of an earlier version; its jobs get their task's
/// dates.
pub(super) fn migrate(c: &Connection) -> Result<()> {
    let mut have = Vec::new();
    {
        let mut st = c.prepare("SELECT name FROM pragma_table_info('jobs')")?;
        for name in st.query_map([], |r| r.get::<_, String>(0))? {
            have.push(name?);
        }
    }
    let missing: Vec<(&str, &str)> = [
        ("stage", "TEXT NOT NULL DEFAULT 'annotation'"),
        ("state", "TEXT NOT NULL DEFAULT 'new'"),
        (
            "assignee_id",
            "INTEGER REFERENCES users(id) ON DELETE SET NULL",
        ),
        ("assignee_updated_date", "TEXT"),
        ("created_date", "TEXT"),
        ("updated_date", "TEXT"),
    ]
    .into_iter()
    .filter(|(column, _)| !have.iter().any(|h| h == column))
    .collect();
    // Nothing to write when up to date (the database may be opened read-only to be refused).
    if missing.is_empty() {
        return Ok(());
    }
    let tx = rusqlite::Transaction::new_unchecked(c, rusqlite::TransactionBehavior::Immediate)?;
    for (column, decl) in missing {
        tx.execute_batch(&format!("ALTER TABLE jobs ADD COLUMN {column} {decl}"))?;
    }
    tx.execute_batch(
        "UPDATE jobs SET
             created_date = (SELECT created_date FROM tasks WHERE tasks.id = jobs.task_id),
             updated_date = (SELECT updated_date FROM tasks WHERE tasks.id = jobs.task_id)
         WHERE created_date IS NULL;
         CREATE INDEX IF NOT EXISTS jobs_by_assignee ON jobs (assignee_id);",
    )?;
    tx.commit()?;
    Ok(())
}

fn job_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    let id: i64 = r.get(0)?;
    let text = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    let bad = |i: usize, what: &str, v: String| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown job {what} '{v}'").into(),
        )
    };
    let stage = text(4)?;
    let state = text(5)?;
    Ok(JobRow {
        id,
        task_id: r.get(1)?,
        segment_id: id,
        range: SegmentRange {
            start: r.get::<_, i64>(2)? as u64,
            stop: r.get::<_, i64>(3)? as u64,
        },
        stage: Stage::parse(&stage).ok_or_else(|| bad(4, "stage", stage.clone()))?,
        state: State::parse(&state).ok_or_else(|| bad(5, "state", state.clone()))?,
        assignee_id: r.get(6)?,
        assignee_updated_date: r.get::<_, Option<String>>(7)?.map(parse_ts).transpose()?,
        created_date: parse_ts(r.get(8)?)?,
        updated_date: parse_ts(r.get(9)?)?,
    })
}

impl Store {
    /// Jobs of a task, in segment order.
    pub fn jobs_of_task(&self, task_id: i64) -> Result<Vec<JobRow>> {
        self.query_jobs(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE task_id = ?1 ORDER BY id"),
            params![task_id],
        )
    }

    /// A job by id.
    pub fn job(&self, id: i64) -> Result<Option<JobRow>> {
        let c = self.conn();
        let row = c
            .prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))?
            .query_row([id], job_from_row)
            .optional()?;
        Ok(row)
    }

    /// All jobs (optionally of one task), by id.
    pub fn jobs(&self, task_id: Option<i64>) -> Result<Vec<JobRow>> {
        match task_id {
            Some(t) => self.jobs_of_task(t),
            None => self.query_jobs(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY id"), []),
        }
    }

    /// Whether `user_id` is the assignee of a job of the task.
    pub fn is_job_assignee(&self, task_id: i64, user_id: i64) -> Result<bool> {
        let c = self.conn();
        let yes = c
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE task_id = ?1 AND assignee_id = ?2)",
            )?
            .query_row(params![task_id, user_id], |r| r.get(0))?;
        Ok(yes)
    }

    /// Applies a job update; answers the job as stored.
    pub fn update_job(&self, id: i64, u: &JobUpdate) -> Result<Option<JobRow>> {
        let now = ts(&Utc::now());
        {
            let c = self.conn();
            match u.assignee {
                Some(a) => c.execute(
                    "UPDATE jobs SET stage = ?2, state = ?3, assignee_id = ?4,
                         assignee_updated_date = ?5, updated_date = ?5 WHERE id = ?1",
                    params![id, u.stage.as_str(), u.state.as_str(), a, now],
                )?,
                None => c.execute(
                    "UPDATE jobs SET stage = ?2, state = ?3, updated_date = ?4 WHERE id = ?1",
                    params![id, u.stage.as_str(), u.state.as_str(), now],
                )?,
            };
        }
        self.job(id)
    }

    fn query_jobs(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<JobRow>> {
        let c = self.conn();
        let mut st = c.prepare_cached(sql)?;
        let rows = st
            .query_map(p, job_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}
