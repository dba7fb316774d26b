//! Task labels (skeleton sublabels are labels with a parent) and their attributes, each kept
//! as its CVAT JSON without ids.

use rusqlite::params;

use super::{Result, Store};

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
