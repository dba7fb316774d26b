//! Annotation storage: one row per task frame holding the JSON of the objects (tags, shapes,
//! tracks, with their ids) that start on that frame, and an in-memory copy of recently used
//! tasks' annotations.
//!
//! Why rows per frame: SQLite's cost is per row, and a whole-task replacement (PUT, import) of
//! 30,000 objects wrote and deleted 30,000 rows (~70 ms); per frame it is ~2,000. The annotation
//! UI edits one frame at a time, so a change rewrites only the frames it touches.
//!
//! Exports and `GET …/annotations` read a task's whole annotation set; parsing it back into the
//! typed model costs far more than writing any dataset format, so the typed set is kept in
//! memory per task, bounded in bytes. A change takes the copy out (loading it when evicted),
//! applies itself to it, writes the frames it touched from it, and puts it back only after the
//! transaction committed, all under the database connection lock: the copy never disagrees
//! with the database, and a failed change leaves no copy (the next read loads the database's).

use std::collections::{BTreeMap, BTreeSet, HashSet};
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

/// The objects of one frame, as a row's body (ids included).
#[derive(Default, serde::Serialize)]
struct FrameOut<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'a Tag>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    shapes: Vec<&'a Shape>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tracks: Vec<&'a Track>,
}

/// A row's body as read back.
#[derive(serde::Deserialize)]
struct FrameIn {
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    shapes: Vec<Shape>,
    #[serde(default)]
    tracks: Vec<Track>,
}

/// The objects of `a` whose start frame `want`s, grouped by frame (each group by id).
fn by_frame(a: &Annotations, want: impl Fn(u64) -> bool) -> BTreeMap<u64, FrameOut<'_>> {
    let mut out: BTreeMap<u64, FrameOut<'_>> = BTreeMap::new();
    for t in a.tags.iter().filter(|t| want(t.frame)) {
        out.entry(t.frame).or_default().tags.push(t);
    }
    for s in a.shapes.iter().filter(|s| want(s.frame)) {
        out.entry(s.frame).or_default().shapes.push(s);
    }
    for t in a.tracks.iter().filter(|t| want(t.frame)) {
        out.entry(t.frame).or_default().tracks.push(t);
    }
    out
}

/// The frames a change rewrites: whole ranges, and single frames.
#[derive(Default)]
struct Touched {
    ranges: Vec<(u64, u64)>,
    frames: BTreeSet<u64>,
}

impl Touched {
    fn contains(&self, f: u64) -> bool {
        self.frames.contains(&f) || self.ranges.iter().any(|&(lo, hi)| lo <= f && f <= hi)
    }
}

/// The start frame of the object with top-level id `id` (each list is sorted by id).
fn frame_of(a: &Annotations, id: i64) -> Option<u64> {
    fn find<T>(v: &[T], id: i64, key: impl Fn(&T) -> (Option<i64>, u64)) -> Option<u64> {
        let at = v.partition_point(|x| key(x).0 < Some(id));
        v.get(at)
            .map(&key)
            .filter(|(i, _)| *i == Some(id))
            .map(|(_, f)| f)
    }
    find(&a.tags, id, |t| (t.id, t.frame))
        .or_else(|| find(&a.shapes, id, |s| (s.id, s.frame)))
        .or_else(|| find(&a.tracks, id, |t| (t.id, t.frame)))
}

/// Top-level ids and start frames of `a`'s objects.
fn ids_and_frames(a: &Annotations) -> impl Iterator<Item = (Option<i64>, u64)> + '_ {
    a.tags
        .iter()
        .map(|t| (t.id, t.frame))
        .chain(a.shapes.iter().map(|s| (s.id, s.frame)))
        .chain(a.tracks.iter().map(|t| (t.id, t.frame)))
}

/// Keeps only objects whose start frame is in `lo..=hi`.
fn in_range(a: &Annotations, lo: u64, hi: u64) -> Annotations {
    let keep = |f: u64| f >= lo && f <= hi;
    Annotations {
        version: a.version,
        tags: a.tags.iter().filter(|t| keep(t.frame)).cloned().collect(),
        shapes: a.shapes.iter().filter(|s| keep(s.frame)).cloned().collect(),
        tracks: a.tracks.iter().filter(|t| keep(t.frame)).cloned().collect(),
        intervals: Vec::new(),
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

/// Applies a change to an in-memory set, recording the frames it touches; refuses ids the set
/// does not have.
fn apply(
    a: &mut Annotations,
    change: &AnnotationChange,
    touched: &mut Touched,
) -> Result<(), AnnotationStoreError> {
    match change {
        AnnotationChange::DeleteRange(lo, hi) => {
            touched.ranges.push((*lo, *hi));
            let keep = |f: u64| f < *lo || f > *hi;
            a.tags.retain(|t| keep(t.frame));
            a.shapes.retain(|s| keep(s.frame));
            a.tracks.retain(|t| keep(t.frame));
        }
        AnnotationChange::Delete(ids) => {
            for &id in ids {
                touched
                    .frames
                    .insert(frame_of(a, id).ok_or(AnnotationStoreError::UnknownId(id))?);
            }
            let ids: HashSet<i64> = ids.iter().copied().collect();
            let keep = |id: Option<i64>| id.is_none_or(|i| !ids.contains(&i));
            a.tags.retain(|t| keep(t.id));
            a.shapes.retain(|s| keep(s.id));
            a.tracks.retain(|t| keep(t.id));
        }
        // Fresh ids are usually larger than every existing one (appending keeps each list by
        // id); a change that reserved its ids before another committed is sorted in.
        AnnotationChange::Insert(new) => {
            touched.frames.extend(ids_and_frames(new).map(|(_, f)| f));
            append_by_id(&mut a.tags, &new.tags, |t| t.id);
            append_by_id(&mut a.shapes, &new.shapes, |s| s.id);
            append_by_id(&mut a.tracks, &new.tracks, |t| t.id);
        }
        AnnotationChange::Update(new) => {
            let mut ids = Vec::new();
            for (id, frame) in ids_and_frames(new) {
                let id = id.ok_or(AnnotationStoreError::UnknownId(0))?;
                ids.push(id);
                touched.frames.insert(frame);
            }
            // Deleting them first also records (and checks) their old frames.
            apply(a, &AnnotationChange::Delete(ids), touched)?;
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
    Ok(())
}

/// Reads a task's annotations from the database (each list by id).
fn load(c: &rusqlite::Connection, task_id: i64) -> Result<Annotations> {
    let mut st = c.prepare_cached("SELECT body FROM annotation_frames WHERE task_id = ?1")?;
    let mut rows = st.query(params![task_id])?;
    let mut a = Annotations::default();
    while let Some(r) = rows.next()? {
        // Borrowed text: parsed straight into the typed model, no intermediate `Value`.
        let body = r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
        let f: FrameIn = serde_json::from_str(body)?;
        a.tags.extend(f.tags);
        a.shapes.extend(f.shapes);
        a.tracks.extend(f.tracks);
    }
    a.tags.sort_unstable_by_key(|t| t.id);
    a.shapes.sort_unstable_by_key(|s| s.id);
    a.tracks.sort_unstable_by_key(|t| t.id);
    Ok(a)
}

/// Writes the rows of the `touched` frames of task `task_id` from its new state `a` inside
/// `tx`: the old rows are deleted while the new bodies are serialised on the other cores.
fn write_frames(
    tx: &rusqlite::Transaction<'_>,
    task_id: i64,
    a: &Annotations,
    touched: &Touched,
) -> Result<()> {
    let groups: Vec<(u64, FrameOut<'_>)> =
        by_frame(a, |f| touched.contains(f)).into_iter().collect();
    let (bodies, deleted) = std::thread::scope(|scope| {
        let bodies = scope.spawn(|| {
            groups
                .par_iter()
                .map(|(_, g)| serde_json::to_string(g).expect("annotations serialise"))
                .collect::<Vec<String>>()
        });
        let deleted = (|| -> Result<()> {
            for &(lo, hi) in &touched.ranges {
                tx.execute(
                    "DELETE FROM annotation_frames WHERE task_id = ?1 AND frame >= ?2 AND frame <= ?3",
                    params![task_id, lo.min(i64::MAX as u64) as i64, hi.min(i64::MAX as u64) as i64],
                )?;
            }
            let mut st = tx.prepare_cached(
                "DELETE FROM annotation_frames WHERE task_id = ?1 AND frame = ?2",
            )?;
            for &f in &touched.frames {
                st.execute(params![task_id, f as i64])?;
            }
            Ok(())
        })();
        (
            bodies
                .join()
                .expect("serialising annotations does not panic"),
            deleted,
        )
    });
    deleted?;
    let mut st = tx.prepare_cached(
        "INSERT INTO annotation_frames (task_id, frame, body) VALUES (?1, ?2, ?3)",
    )?;
    for ((frame, _), body) in groups.iter().zip(&bodies) {
        st.execute(params![task_id, *frame as i64, body])?;
    }
    Ok(())
}

/// Moves annotations of earlier versions into `annotation_frames`: from `annotations` (one row
/// per object, ids from its own AUTOINCREMENT) and from `annotation_objects` (one row per
/// object, ids from `annotation_ids`). Object ids are kept.
pub(super) fn migrate(c: &rusqlite::Connection) -> Result<()> {
    let mut tables = Vec::new();
    for name in ["annotations", "annotation_objects"] {
        let exists: bool = c.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [name],
            |r| r.get(0),
        )?;
        if exists {
            tables.push(name);
        }
    }
    if tables.is_empty() {
        return Ok(());
    }
    let tx = rusqlite::Transaction::new_unchecked(c, rusqlite::TransactionBehavior::Immediate)?;
    if tables.contains(&"annotations") {
        // Its ids came from its own sequence: continue above them.
        tx.execute_batch(
            "INSERT INTO annotation_ids (id)
                 SELECT MAX(id) FROM annotations WHERE id > COALESCE(
                     (SELECT seq FROM sqlite_sequence WHERE name = 'annotation_ids'), 0);
             DELETE FROM annotation_ids;",
        )?;
    }
    let mut tasks: BTreeMap<i64, Annotations> = BTreeMap::new();
    for table in &tables {
        let mut st = tx.prepare(&format!("SELECT task_id, id, kind, body FROM {table}"))?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let a = tasks.entry(r.get(0)?).or_default();
            let id = Some(r.get::<_, i64>(1)?);
            let body = r.get_ref(3)?.as_str().map_err(rusqlite::Error::from)?;
            match r.get_ref(2)?.as_str().map_err(rusqlite::Error::from)? {
                "tag" => a.tags.push(Tag {
                    id,
                    ..serde_json::from_str(body)?
                }),
                "shape" => a.shapes.push(Shape {
                    id,
                    ..serde_json::from_str(body)?
                }),
                _ => a.tracks.push(Track {
                    id,
                    ..serde_json::from_str(body)?
                }),
            }
        }
    }
    let all = Touched {
        ranges: vec![ALL_FRAMES],
        ..Default::default()
    };
    for (task_id, mut a) in tasks {
        a.tags.sort_unstable_by_key(|t| t.id);
        a.shapes.sort_unstable_by_key(|s| s.id);
        a.tracks.sort_unstable_by_key(|t| t.id);
        write_frames(&tx, task_id, &a, &all)?;
    }
    for table in tables {
        tx.execute_batch(&format!("DROP TABLE {table};"))?;
    }
    tx.commit()?;
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
        Ok(ids_and_frames(&*self.annotations(task_id, None)?)
            .filter(|(_, f)| (lo..=hi).contains(f))
            .filter_map(|(id, _)| id)
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
        let cache = &self.annotations_cache.tasks;
        // The task's new state. A replacement is simply what it writes (no copy, no read of
        // the old state); any other change applies itself to the current state, which stays
        // out of the cache until the commit.
        let mut touched = Touched::default();
        let mut replacement = false;
        let state = match changes.as_mut_slice() {
            [AnnotationChange::DeleteRange(lo, hi), AnnotationChange::Insert(objs)]
                if (*lo, *hi) == ALL_FRAMES =>
            {
                cache.invalidate(&task_id);
                touched.ranges.push(ALL_FRAMES);
                replacement = true;
                std::mem::take(objs)
            }
            _ => {
                let current = match cache.remove(&task_id) {
                    Some(a) => a,
                    None => Arc::new(load(&c, task_id)?),
                };
                let mut a = Arc::unwrap_or_clone(current);
                for ch in &changes {
                    apply(&mut a, ch, &mut touched)?;
                }
                a
            }
        };
        let tx = c.transaction().map_err(StoreError::from)?;
        write_frames(&tx, task_id, &state, &touched)?;
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

        // Still under the connection lock: the committed state becomes the in-memory copy.
        let state = Arc::new(state);
        cache.insert(task_id, state.clone());
        if replacement {
            // A replacement: what was written is the whole state.
            return Ok(state);
        }
        let mut written = Annotations::default();
        for ch in changes {
            if let AnnotationChange::Insert(objs) | AnnotationChange::Update(objs) = ch {
                apply(
                    &mut written,
                    &AnnotationChange::Insert(objs),
                    &mut Touched::default(),
                )?;
            }
        }
        Ok(Arc::new(written))
    }

    /// Drops a task's in-memory annotations (the task is being deleted).
    pub(super) fn forget_annotations(&self, task_id: i64) {
        self.annotations_cache.tasks.invalidate(&task_id);
    }
}

/// Sets each top-level object's id from `ids`, in tags, shapes, tracks order.
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

    /// Inserts one shape on frame 4; returns what was written.
    fn insert_one(store: &Store, task: i64) -> Arc<Annotations> {
        let one = Annotations {
            shapes: vec![shape(4, 1.0)],
            ..Default::default()
        };
        store
            .change_annotations(task, vec![AnnotationChange::Insert(one)])
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
        let written = insert_one(&store, task);
        assert!(written.shapes[0].id.unwrap() > 41);
        assert_eq!(store.annotations(task, None).unwrap().shapes.len(), 2);
    }

    /// A database of the previous version (one `annotation_objects` row per object) opens with
    /// every object, its id and nested ids intact, one row per frame afterwards; a deleted task
    /// takes its rows with it.
    #[test]
    fn object_rows_are_migrated_to_frame_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let (task, before) = {
            let store = Store::open(&path).unwrap();
            let task = store.create_task(super::super::tests::task()).unwrap().id;
            let mut t = track(2);
            t.id = Some(7);
            t.shapes[0].id = Some(8);
            let mut shapes: Vec<Shape> = (0..3).map(|f| shape(f, f as f64)).collect();
            for (i, s) in shapes.iter_mut().enumerate() {
                s.id = Some(10 + i as i64);
            }
            let c = store.conn();
            c.execute_batch(
                "DELETE FROM annotation_frames;
                 CREATE TABLE annotation_objects (task_id INTEGER NOT NULL, id INTEGER NOT NULL,
                     kind TEXT NOT NULL, frame INTEGER NOT NULL, body TEXT NOT NULL,
                     PRIMARY KEY (task_id, id)) WITHOUT ROWID;
                 INSERT INTO annotation_ids (id) VALUES (12); DELETE FROM annotation_ids;",
            )
            .unwrap();
            let mut ins = c
                .prepare("INSERT INTO annotation_objects VALUES (?1, ?2, ?3, ?4, ?5)")
                .unwrap();
            ins.execute(params![
                task,
                7,
                "track",
                2,
                serde_json::to_string(&t).unwrap()
            ])
            .unwrap();
            for s in &shapes {
                let body = serde_json::to_string(&Shape {
                    id: None,
                    ..s.clone()
                })
                .unwrap();
                ins.execute(params![task, s.id, "shape", s.frame as i64, body])
                    .unwrap();
            }
            let before = Annotations {
                shapes,
                tracks: vec![t],
                ..Default::default()
            };
            (task, before)
        };
        let store = Store::open(&path).unwrap();
        assert_eq!(*store.annotations(task, None).unwrap(), before);
        let c = store.conn();
        let rows: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM annotation_frames WHERE task_id = ?1",
                [task],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rows, 3, "frames 0, 1, 2 (the track starts on 2)");
        let old: bool = c
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'annotation_objects')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!old, "the old table is dropped");
        drop(c);
        let written = insert_one(&store, task);
        assert!(written.shapes[0].id.unwrap() > 12);
        store.delete_task(task).unwrap();
        let left: i64 = store
            .conn()
            .query_row("SELECT COUNT(*) FROM annotation_frames", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0, "a deleted task takes its rows with it");
    }
}
