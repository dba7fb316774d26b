//! Annotation storage: one row per top-level object (tag, shape, track) holding its JSON body
//! (the id lives in the row), and an in-memory copy of recently used tasks' annotations.
//!
//! Exports and `GET …/annotations` read a task's whole annotation set; parsing 30,000 JSON rows
//! back into the typed model costs far more than writing any dataset format, so the typed set is
//! kept in memory per task, bounded in bytes. The copy is only touched while holding the
//! database connection lock, after the transaction committed, so it can never disagree with the
//! database: a change either updates it in place (cheap, e.g. the UI's `PATCH ?action=create`)
//! or replaces it (a whole-task `PUT` or import).

use std::collections::HashSet;
use std::sync::Arc;

use rayon::prelude::*;
use rusqlite::{params, OptionalExtension};

use super::{ts, Result, Store, StoreError};
use crate::annotations::{assign_nested_ids, nested_count, Annotations, Shape, Tag, Track};

/// Default bound of the in-memory annotation copies, in (estimated) bytes.
pub const DEFAULT_ANNOTATION_CACHE_BYTES: u64 = 256 << 20;

/// The frame range that means "the whole task" in [`AnnotationChange::DeleteRange`].
pub const ALL_FRAMES: (u64, u64) = (0, i64::MAX as u64);

/// One change of an annotation transaction.
#[derive(Debug, Clone)]
pub enum AnnotationChange {
    /// Delete every object of the task whose start frame is in the range (inclusive).
    DeleteRange(u64, u64),
    /// Delete objects by id.
    Delete(Vec<i64>),
    /// Insert objects: each top-level object gets a new id, nested objects (track keyframes,
    /// skeleton elements) fresh ids.
    Insert(Annotations),
    /// Replace objects by their top-level id; nested objects without an id get fresh ones.
    Update(Annotations),
}

/// Why an annotation transaction was refused.
#[derive(Debug, thiserror::Error)]
pub enum AnnotationStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An update or delete named an object the task does not have.
    #[error("the task has no annotation object with id {0}")]
    UnknownId(i64),
}

/// The typed annotations of recently used tasks (whole tasks, ids set, each list by id).
pub(super) struct AnnotationCache {
    tasks: moka::sync::Cache<i64, Arc<Annotations>>,
    /// The next free object id, once read from the database (0: not yet). Ids are handed out
    /// here, without a database round trip (a commit costs an fsync), and each change records
    /// its highest id in `annotation_ids` inside its own transaction, so a restarted server
    /// continues above every committed id.
    next_id: std::sync::Mutex<i64>,
}

impl AnnotationCache {
    pub(super) fn new(max_bytes: u64) -> AnnotationCache {
        AnnotationCache {
            tasks: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, a: &Arc<Annotations>| approx_bytes(a))
                .build(),
            next_id: std::sync::Mutex::new(0),
        }
    }
}

/// Rough heap size of an annotation set, for the cache bound.
fn approx_bytes(a: &Annotations) -> u32 {
    fn attrs(n: usize) -> usize {
        n * (std::mem::size_of::<crate::annotations::AttributeVal>() + 16)
    }
    fn shape(s: &Shape) -> usize {
        std::mem::size_of::<Shape>()
            + s.points.len() * 8
            + attrs(s.attributes.len())
            + s.elements.iter().map(shape).sum::<usize>()
    }
    fn track(t: &Track) -> usize {
        std::mem::size_of::<Track>()
            + attrs(t.attributes.len())
            + t.shapes
                .iter()
                .map(|s| std::mem::size_of_val(s) + s.points.len() * 8 + attrs(s.attributes.len()))
                .sum::<usize>()
            + t.elements.iter().map(track).sum::<usize>()
    }
    let n = a.tags.len() * std::mem::size_of::<Tag>()
        + a.tags
            .iter()
            .map(|t| attrs(t.attributes.len()))
            .sum::<usize>()
        + a.shapes.iter().map(shape).sum::<usize>()
        + a.tracks.iter().map(track).sum::<usize>();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A top-level object as stored.
enum Object<'a> {
    Tag(&'a Tag),
    Shape(&'a Shape),
    Track(&'a Track),
}

impl Object<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Object::Tag(_) => "tag",
            Object::Shape(_) => "shape",
            Object::Track(_) => "track",
        }
    }

    fn frame(&self) -> u64 {
        match self {
            Object::Tag(t) => t.frame,
            Object::Shape(s) => s.frame,
            Object::Track(t) => t.frame,
        }
    }

    fn id(&self) -> Option<i64> {
        match self {
            Object::Tag(t) => t.id,
            Object::Shape(s) => s.id,
            Object::Track(t) => t.id,
        }
    }

    /// The stored body: the object's JSON (its id is the row's; the one in the body is
    /// ignored on read).
    fn body(&self) -> String {
        let r = match self {
            Object::Tag(t) => serde_json::to_string(t),
            Object::Shape(s) => serde_json::to_string(s),
            Object::Track(t) => serde_json::to_string(t),
        };
        r.expect("annotations serialise")
    }
}

fn objects(a: &Annotations) -> impl Iterator<Item = Object<'_>> {
    a.tags
        .iter()
        .map(Object::Tag)
        .chain(a.shapes.iter().map(Object::Shape))
        .chain(a.tracks.iter().map(Object::Track))
}

/// Keeps only objects whose start frame is in `lo..=hi`.
fn in_range(a: &Annotations, lo: u64, hi: u64) -> Annotations {
    let keep = |f: u64| f >= lo && f <= hi;
    Annotations {
        version: a.version,
        tags: a.tags.iter().filter(|t| keep(t.frame)).cloned().collect(),
        shapes: a.shapes.iter().filter(|s| keep(s.frame)).cloned().collect(),
        tracks: a.tracks.iter().filter(|t| keep(t.frame)).cloned().collect(),
    }
}

/// Puts `x` into `v` (sorted by id) at its id's place.
fn insert_sorted<T>(v: &mut Vec<T>, x: T, id: impl Fn(&T) -> Option<i64>) {
    let key = id(&x);
    let at = v.partition_point(|y| id(y) < key);
    v.insert(at, x);
}

/// Appends `new` to `v` (both by id), keeping `v` sorted by id.
fn append_by_id<T: Clone>(v: &mut Vec<T>, new: &[T], id: impl Fn(&T) -> Option<i64>) {
    let sorted = match (v.last(), new.first()) {
        (Some(a), Some(b)) => id(a) < id(b),
        _ => true,
    };
    v.extend_from_slice(new);
    if !sorted {
        v.sort_by_key(|x| id(x));
    }
}

/// Applies a committed change to an in-memory copy.
fn apply(a: &mut Annotations, change: &AnnotationChange) {
    match change {
        AnnotationChange::DeleteRange(lo, hi) => {
            let keep = |f: u64| f < *lo || f > *hi;
            a.tags.retain(|t| keep(t.frame));
            a.shapes.retain(|s| keep(s.frame));
            a.tracks.retain(|t| keep(t.frame));
        }
        AnnotationChange::Delete(ids) => {
            let ids: HashSet<i64> = ids.iter().copied().collect();
            let keep = |id: Option<i64>| id.is_none_or(|i| !ids.contains(&i));
            a.tags.retain(|t| keep(t.id));
            a.shapes.retain(|s| keep(s.id));
            a.tracks.retain(|t| keep(t.id));
        }
        // Fresh ids are usually larger than every existing one (appending keeps each list by
        // id); a change that reserved its ids before another committed is sorted in.
        AnnotationChange::Insert(new) => {
            append_by_id(&mut a.tags, &new.tags, |t| t.id);
            append_by_id(&mut a.shapes, &new.shapes, |s| s.id);
            append_by_id(&mut a.tracks, &new.tracks, |t| t.id);
        }
        AnnotationChange::Update(new) => {
            let ids: Vec<i64> = objects(new).filter_map(|o| o.id()).collect();
            apply(a, &AnnotationChange::Delete(ids));
            for t in &new.tags {
                insert_sorted(&mut a.tags, t.clone(), |t| t.id);
            }
            for s in &new.shapes {
                insert_sorted(&mut a.shapes, s.clone(), |s| s.id);
            }
            for t in &new.tracks {
                insert_sorted(&mut a.tracks, t.clone(), |t| t.id);
            }
        }
    }
}

/// Moves annotations from the table of earlier versions (`annotations`, ids from its own
/// AUTOINCREMENT) into `annotation_objects` (ids from `annotation_ids`, clustered by task).
pub(super) fn migrate(c: &rusqlite::Connection) -> Result<()> {
    let old: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'annotations')",
        [],
        |r| r.get(0),
    )?;
    if old {
        c.execute_batch(
            "BEGIN;
             INSERT INTO annotation_objects (task_id, id, kind, frame, body)
                 SELECT task_id, id, kind, frame, body FROM annotations;
             INSERT INTO annotation_ids (id)
                 SELECT MAX(id) FROM annotations WHERE id > COALESCE(
                     (SELECT seq FROM sqlite_sequence WHERE name = 'annotation_ids'), 0);
             DELETE FROM annotation_ids;
             DROP TABLE annotations;
             COMMIT;",
        )?;
    }
    Ok(())
}

/// Reads a task's annotations from the database, by id.
fn load(c: &rusqlite::Connection, task_id: i64) -> Result<Annotations> {
    let mut st = c.prepare_cached(
        "SELECT id, kind, body FROM annotation_objects WHERE task_id = ?1 ORDER BY id",
    )?;
    let mut rows = st.query(params![task_id])?;
    let mut a = Annotations::default();
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        // Borrowed text: parsed straight into the typed model, no intermediate `Value`.
        let kind = r.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
        let body = r.get_ref(2)?.as_str().map_err(rusqlite::Error::from)?;
        match kind {
            "tag" => {
                let mut t: Tag = serde_json::from_str(body)?;
                t.id = Some(id);
                a.tags.push(t);
            }
            "shape" => {
                let mut s: Shape = serde_json::from_str(body)?;
                s.id = Some(id);
                a.shapes.push(s);
            }
            _ => {
                let mut t: Track = serde_json::from_str(body)?;
                t.id = Some(id);
                a.tracks.push(t);
            }
        }
    }
    Ok(a)
}

/// Sets each top-level object's id from `ids`, in `objects` order.
fn set_ids(a: &mut Annotations, ids: &[i64]) {
    let mut it = ids.iter().copied();
    for t in &mut a.tags {
        t.id = it.next();
    }
    for s in &mut a.shapes {
        s.id = it.next();
    }
    for t in &mut a.tracks {
        t.id = it.next();
    }
}

/// Runs a deletion change inside `tx`.
fn delete(
    tx: &rusqlite::Transaction<'_>,
    task_id: i64,
    change: &AnnotationChange,
) -> Result<(), AnnotationStoreError> {
    match change {
        AnnotationChange::DeleteRange(lo, hi) => {
            tx.execute(
                "DELETE FROM annotation_objects WHERE task_id = ?1 AND frame >= ?2 AND frame <= ?3",
                params![task_id, *lo as i64, *hi as i64],
            )
            .map_err(StoreError::from)?;
        }
        AnnotationChange::Delete(ids) => {
            let mut st = tx
                .prepare_cached("DELETE FROM annotation_objects WHERE task_id = ?1 AND id = ?2")
                .map_err(StoreError::from)?;
            for &id in ids.iter() {
                if st.execute(params![task_id, id]).map_err(StoreError::from)? == 0 {
                    return Err(AnnotationStoreError::UnknownId(id));
                }
            }
        }
        AnnotationChange::Insert(_) | AnnotationChange::Update(_) => {}
    }
    Ok(())
}

impl Store {
    /// Annotations of a task whose start frame is in `range` (all when `None`), each list by
    /// id, ids set; `version` is 0.
    pub fn annotations(&self, task_id: i64, range: Option<(u64, u64)>) -> Result<Arc<Annotations>> {
        let c = self.conn();
        let all = match self.annotations_cache.tasks.get(&task_id) {
            Some(a) => a,
            None => {
                let a = Arc::new(load(&c, task_id)?);
                self.annotations_cache.tasks.insert(task_id, a.clone());
                a
            }
        };
        drop(c);
        Ok(match range {
            None => all,
            Some((lo, hi)) => Arc::new(in_range(&all, lo, hi)),
        })
    }

    /// Ids of a task's objects whose start frame is in `range` (all when `None`).
    pub fn annotation_ids(&self, task_id: i64, range: Option<(u64, u64)>) -> Result<HashSet<i64>> {
        let (lo, hi) = range.unwrap_or((0, u64::MAX));
        Ok(objects(&*self.annotations(task_id, None)?)
            .filter(|o| (lo..=hi).contains(&o.frame()))
            .filter_map(|o| o.id())
            .collect())
    }

    /// Reserves `n` consecutive fresh object ids.
    fn allocate_ids(&self, n: usize) -> Result<std::ops::Range<i64>> {
        let mut next = self
            .annotations_cache
            .next_id
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if *next == 0 {
            let seq: i64 = self
                .conn()
                .query_row(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'annotation_ids'",
                    [],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0);
            *next = seq + 1;
        }
        let first = *next;
        *next += n as i64;
        Ok(first..*next)
    }

    /// Applies annotation changes in one transaction and moves the task's `updated_date`.
    /// Returns the objects inserted or updated, with their ids. Nothing changes if any step
    /// fails (e.g. an update of an id that is not the task's); nested ids reserved for a failed
    /// change are simply never used.
    pub fn change_annotations(
        &self,
        task_id: i64,
        mut changes: Vec<AnnotationChange>,
    ) -> Result<Arc<Annotations>, AnnotationStoreError> {
        // Ids first: bodies contain the nested ids.
        let mut highest = 0;
        for ch in &mut changes {
            let (objs, keep) = match ch {
                AnnotationChange::Insert(o) => (o, false),
                AnnotationChange::Update(o) => (o, true),
                _ => continue,
            };
            let top = if keep { 0 } else { objs.len() };
            let mut ids = self.allocate_ids(top + nested_count(objs))?;
            highest = highest.max(ids.end - 1);
            if !keep {
                let own: Vec<i64> = ids.by_ref().take(top).collect();
                set_ids(objs, &own);
            }
            assign_nested_ids(objs, &mut ids, keep);
        }

        let mut c = self.conn();
        let tx = c.transaction().map_err(StoreError::from)?;
        // The bodies are serialised on the other cores while this thread runs the deletions that
        // come first (a replacement deletes as many rows as it writes).
        let first_write = changes
            .iter()
            .position(|c| matches!(c, AnnotationChange::Insert(_) | AnnotationChange::Update(_)))
            .unwrap_or(changes.len());
        let (bodies, deleted) = std::thread::scope(|scope| {
            let bodies = scope.spawn(|| {
                changes
                    .iter()
                    .map(|ch| match ch {
                        AnnotationChange::Insert(o) | AnnotationChange::Update(o) => {
                            let list: Vec<Object<'_>> = objects(o).collect();
                            list.par_iter().map(Object::body).collect()
                        }
                        _ => Vec::new(),
                    })
                    .collect::<Vec<Vec<String>>>()
            });
            let deleted = changes[..first_write]
                .iter()
                .try_for_each(|ch| delete(&tx, task_id, ch));
            (
                bodies
                    .join()
                    .expect("serialising annotations does not panic"),
                deleted,
            )
        });
        deleted?;
        for (ch, bodies) in changes.iter_mut().zip(bodies).skip(first_write) {
            match ch {
                AnnotationChange::DeleteRange(..) | AnnotationChange::Delete(_) => {
                    delete(&tx, task_id, ch)?
                }
                AnnotationChange::Insert(objs) => {
                    let mut st = tx
                        .prepare_cached(
                            "INSERT INTO annotation_objects (task_id, id, kind, frame, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                        )
                        .map_err(StoreError::from)?;
                    for (o, body) in objects(objs).zip(&bodies) {
                        st.execute(params![task_id, o.id(), o.kind(), o.frame() as i64, body])
                            .map_err(StoreError::from)?;
                    }
                }
                AnnotationChange::Update(objs) => {
                    let mut st = tx
                        .prepare_cached(
                            "UPDATE annotation_objects SET kind = ?3, frame = ?4, body = ?5 WHERE task_id = ?1 AND id = ?2",
                        )
                        .map_err(StoreError::from)?;
                    for (o, body) in objects(objs).zip(&bodies) {
                        let Some(id) = o.id() else {
                            return Err(AnnotationStoreError::UnknownId(0));
                        };
                        let n = st
                            .execute(params![task_id, id, o.kind(), o.frame() as i64, body])
                            .map_err(StoreError::from)?;
                        if n == 0 {
                            return Err(AnnotationStoreError::UnknownId(id));
                        }
                    }
                }
            }
        }
        if highest > 0 {
            // The sequence only grows (AUTOINCREMENT keeps the largest id ever inserted).
            tx.execute("INSERT INTO annotation_ids (id) VALUES (?1)", [highest])
                .map_err(StoreError::from)?;
            tx.execute("DELETE FROM annotation_ids", [])
                .map_err(StoreError::from)?;
        }
        tx.execute(
            "UPDATE tasks SET updated_date = ?2 WHERE id = ?1",
            params![task_id, ts(&chrono::Utc::now())],
        )
        .map_err(StoreError::from)?;
        tx.commit().map_err(StoreError::from)?;
        self.hot.tasks.invalidate(&task_id);

        // Still under the connection lock: bring the in-memory copy to the committed state.
        let cache = &self.annotations_cache.tasks;
        if let [AnnotationChange::DeleteRange(lo, hi), AnnotationChange::Insert(objs)] =
            changes.as_mut_slice()
        {
            if (*lo, *hi) == ALL_FRAMES {
                // A replacement: the task now holds exactly what was written (no copy made).
                let written = Arc::new(std::mem::take(objs));
                cache.insert(task_id, written.clone());
                return Ok(written);
            }
        }
        if let Some(old) = cache.remove(&task_id) {
            let mut a = Arc::unwrap_or_clone(old);
            for ch in &changes {
                apply(&mut a, ch);
            }
            cache.insert(task_id, Arc::new(a));
        }
        let mut written = Annotations::default();
        for ch in changes {
            if let AnnotationChange::Insert(objs) | AnnotationChange::Update(objs) = ch {
                apply(&mut written, &AnnotationChange::Insert(objs));
            }
        }
        Ok(Arc::new(written))
    }

    /// Drops a task's in-memory annotations (the task is being deleted).
    pub(super) fn forget_annotations(&self, task_id: i64) {
        self.annotations_cache.tasks.invalidate(&task_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::ShapeType;

    fn shape(frame: u64, x: f64) -> Shape {
        serde_json::from_value(serde_json::json!({
            "type": "rectangle", "frame": frame, "label_id": 1, "points": [x, 0.0, x + 1.0, 1.0]
        }))
        .unwrap()
    }

    fn track(frame: u64) -> Track {
        serde_json::from_value(serde_json::json!({
            "frame": frame, "label_id": 1,
            "shapes": [{"type": "points", "frame": frame, "points": [1.0, 2.0]}]
        }))
        .unwrap()
    }

    /// The in-memory copy equals a fresh read of the database after every kind of change.
    #[test]
    fn cache_follows_every_change() {
        let store = Store::in_memory().unwrap();
        let task = store.create_task(super::super::tests::task()).unwrap().id;
        let fresh = |s: &Store| {
            let c = s.conn();
            load(&c, task).unwrap()
        };
        let first = Annotations {
            shapes: (0..6).map(|f| shape(f, f as f64)).collect(),
            tracks: vec![track(2)],
            tags: vec![
                serde_json::from_value(serde_json::json!({"frame": 1, "label_id": 1})).unwrap(),
            ],
            ..Default::default()
        };
        let written = store
            .change_annotations(
                task,
                vec![
                    AnnotationChange::DeleteRange(ALL_FRAMES.0, ALL_FRAMES.1),
                    AnnotationChange::Insert(first),
                ],
            )
            .unwrap();
        assert!(
            written.tracks[0].shapes[0].id.is_some(),
            "nested ids assigned"
        );
        assert_eq!(*store.annotations(task, None).unwrap(), fresh(&store));

        // Append, update (moving a shape to another frame and kind of list), delete, range delete.
        let more = Annotations {
            shapes: vec![shape(7, 7.0)],
            ..Default::default()
        };
        store
            .change_annotations(task, vec![AnnotationChange::Insert(more)])
            .unwrap();
        assert_eq!(*store.annotations(task, None).unwrap(), fresh(&store));
        let mut s = store.annotations(task, None).unwrap().shapes[2].clone();
        s.frame = 9;
        s.kind = ShapeType::Rectangle;
        s.points = vec![5.0, 5.0, 6.0, 6.0];
        let upd = Annotations {
            shapes: vec![s],
            ..Default::default()
        };
        store
            .change_annotations(task, vec![AnnotationChange::Update(upd)])
            .unwrap();
        assert_eq!(*store.annotations(task, None).unwrap(), fresh(&store));
        let id = store.annotations(task, None).unwrap().shapes[0].id.unwrap();
        store
            .change_annotations(task, vec![AnnotationChange::Delete(vec![id])])
            .unwrap();
        store
            .change_annotations(task, vec![AnnotationChange::DeleteRange(2, 4)])
            .unwrap();
        let now = store.annotations(task, None).unwrap();
        assert_eq!(*now, fresh(&store));
        assert!(now.tracks.is_empty() && now.shapes.iter().all(|s| !(2..=4).contains(&s.frame)));
        assert_eq!(
            store.annotations(task, Some((5, 7))).unwrap().shapes.len(),
            2
        );

        // A refused change leaves both the database and the copy as they were.
        let before = store.annotations(task, None).unwrap();
        let err = store
            .change_annotations(
                task,
                vec![
                    AnnotationChange::DeleteRange(0, 100),
                    AnnotationChange::Delete(vec![999_999]),
                ],
            )
            .unwrap_err();
        assert!(matches!(err, AnnotationStoreError::UnknownId(999_999)));
        assert_eq!(store.annotations(task, None).unwrap(), before);
        assert_eq!(*before, fresh(&store));
    }

    /// A database of an earlier version (annotations in their own AUTOINCREMENT table) opens
    /// with its annotations and ids intact, and later ids do not collide with them.
    #[test]
    fn old_annotation_table_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let task = {
            let store = Store::open(&path).unwrap();
            let task = store.create_task(super::super::tests::task()).unwrap().id;
            store
                .conn()
                .execute_batch(&format!(
                    "CREATE TABLE annotations (id INTEGER PRIMARY KEY AUTOINCREMENT,
                         task_id INTEGER NOT NULL, kind TEXT NOT NULL, frame INTEGER NOT NULL,
                         body TEXT NOT NULL);
                     INSERT INTO annotations (id, task_id, kind, frame, body) VALUES (41, {task},
                         'shape', 3, '{{\"type\":\"points\",\"frame\":3,\"label_id\":1,\"points\":[1,2]}}');"
                ))
                .unwrap();
            task
        };
        let store = Store::open(&path).unwrap();
        let a = store.annotations(task, None).unwrap();
        assert_eq!(a.shapes.len(), 1);
        assert_eq!(a.shapes[0].id, Some(41));
        let written = store
            .change_annotations(
                task,
                vec![AnnotationChange::Insert(Annotations {
                    shapes: vec![shape(4, 1.0)],
                    ..Default::default()
                })],
            )
            .unwrap();
        assert!(written.shapes[0].id.unwrap() > 41);
        assert_eq!(store.annotations(task, None).unwrap().shapes.len(), 2);
    }
}
