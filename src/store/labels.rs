//! Task labels (skeleton sublabels are labels with a parent) and their attributes, each kept
//! as its CVAT JSON without ids, and their conversions: to the domain's [`LabelIndex`] (what
//! validation and the formats read) and to CVAT's `Label` JSON (what the API serves).

use rusqlite::params;
use serde_json::{Map, Value};

use super::{Result, Store};
use crate::annotations::{AttrSpec, LabelIndex, LabelInfo};

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

impl LabelRow {
    /// The label as validation and the formats see it; a field missing from the stored JSON is
    /// empty (type `any`, attribute input type `text`, not mutable).
    pub fn label_info(&self) -> LabelInfo {
        let r = self;
        LabelInfo {
            id: r.id,
            name: r.info["name"].as_str().unwrap_or("").to_owned(),
            kind: r.info["type"].as_str().unwrap_or("any").to_owned(),
            color: r.info["color"].as_str().unwrap_or("").to_owned(),
            svg: r.info["svg"].as_str().unwrap_or("").to_owned(),
            parent: r.parent_id,
            attributes: r
                .attributes
                .iter()
                .map(|(id, a)| {
                    (
                        *id,
                        AttrSpec {
                            name: a["name"].as_str().unwrap_or("").to_owned(),
                            input_type: a["input_type"].as_str().unwrap_or("text").to_owned(),
                            values: a["values"]
                                .as_array()
                                .map(|v| {
                                    v.iter()
                                        .filter_map(|x| x.as_str().map(str::to_owned))
                                        .collect()
                                })
                                .unwrap_or_default(),
                            default_value: a["default_value"].as_str().unwrap_or("").to_owned(),
                            mutable: a["mutable"].as_bool().unwrap_or(false),
                        },
                    )
                })
                .collect(),
        }
    }
}

impl LabelIndex {
    /// Builds the index from stored labels (a task's, as [`Store::labels`] returns them).
    pub fn new(rows: &[LabelRow]) -> LabelIndex {
        LabelIndex::from_labels(rows.iter().map(LabelRow::label_info).collect())
    }
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

/// The `Label` JSON served by `/api/labels` (and embedded in exports): ids, attributes with ids,
/// sublabels.
pub fn label_json(row: &LabelRow, all: &[LabelRow]) -> Value {
    let mut m = row.info.as_object().cloned().unwrap_or_default();
    let mut out = Map::new();
    out.insert("id".into(), row.id.into());
    for k in ["name", "color", "type", "svg"] {
        out.insert(k.into(), m.remove(k).unwrap_or_else(|| "".into()));
    }
    out.insert(
        "attributes".into(),
        Value::Array(
            row.attributes
                .iter()
                .map(|(id, a)| {
                    let mut a = a.as_object().cloned().unwrap_or_default();
                    let mut o = Map::new();
                    o.insert("id".into(), (*id).into());
                    o.append(&mut a);
                    Value::Object(o)
                })
                .collect(),
        ),
    );
    out.insert(
        "sublabels".into(),
        Value::Array(
            all.iter()
                .filter(|l| l.parent_id == Some(row.id))
                .map(|l| label_json(l, all))
                .collect(),
        ),
    );
    out.insert("has_parent".into(), row.parent_id.is_some().into());
    out.insert("project_id".into(), Value::Null);
    out.insert("task_id".into(), row.task_id.into());
    out.insert(
        "parent_id".into(),
        row.parent_id.map(Value::from).unwrap_or(Value::Null),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::tests::task;
    use super::*;

    /// Stored labels read back into the domain index (missing fields take their defaults) and
    /// into CVAT's label JSON (sublabels nested, ids on attributes).
    #[test]
    fn stored_labels_convert_to_index_and_json() {
        let s = Store::in_memory().unwrap();
        let t = s.create_task(task()).unwrap().id;
        let body = s
            .insert_label(
                t,
                None,
                &json!({"name": "body", "color": "#fa3253", "type": "skeleton", "svg": "<g/>"}),
                &[
                    json!({"name": "pose", "input_type": "select", "values": ["a", "b"],
                         "default_value": "a", "mutable": true}),
                ],
            )
            .unwrap();
        let head = s
            .insert_label(
                t,
                Some(body),
                &json!({"name": "head"}),
                &[json!({"name": "x"})],
            )
            .unwrap();
        let rows = s.labels(t).unwrap();

        let index = LabelIndex::new(&rows);
        let b = index.by_name("body").unwrap();
        assert_eq!(
            (b.id, b.kind.as_str(), b.color.as_str()),
            (body, "skeleton", "#fa3253")
        );
        assert_eq!(b.attributes[0].1.values, ["a", "b"]);
        assert!(b.attributes[0].1.mutable);
        let h = index.child_by_name(body, "head").unwrap();
        assert_eq!((h.id, h.kind.as_str(), h.svg.as_str()), (head, "any", ""));
        let x = &h.attributes[0].1;
        assert_eq!((x.input_type.as_str(), x.mutable), ("text", false));

        let j = label_json(&rows[0], &rows);
        assert_eq!(j["id"], body);
        assert_eq!(j["attributes"][0]["name"], "pose");
        assert!(j["attributes"][0]["id"].is_i64());
        assert_eq!(j["sublabels"][0]["id"], head);
        assert_eq!(j["sublabels"][0]["has_parent"], true);
        assert_eq!(j["sublabels"][0]["type"], "");
        assert_eq!(j["task_id"], t);
    }
}
