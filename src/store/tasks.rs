//! Tasks, their data (the spec of where frames come from, as JSON) and its images; attaching
//! data also creates the task's jobs, one per segment.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{parse_ts, ts, Result, Store};
use crate::task::{DataSpec, ImageFrame, SegmentRange};

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

impl Store {
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::{images_spec, task};
    use super::*;
    use crate::task::FileStamp;

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
}
