//! Data endpoints (spec §15): chunks, frames, previews and context images of tasks and jobs,
//! with `X-Checksum`, `X-Updated-Date` and Range support; data meta; and the upload entry point.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::job_or_404;
use super::access::{task_or_404, CurrentUser, St};
use super::{create, ApiError, AppState, Loaded};
use crate::budget::{self, Budget};
use crate::cache::{Item, ItemKey, ItemKind};
use crate::chunks::{self, BuildError, BuildKind, Source};
use crate::codec;
use crate::frames::{SeekTable, SourceWatch};
use crate::task::{iso_utc, task_chunk, x_checksum, ChunkType, MediaSource, Quality, SegmentRange};
use axum::Extension;

/// Loads (once) what serving a task's data needs.
pub(crate) fn loaded(st: &AppState, task_id: i64) -> Result<Arc<Loaded>, ApiError> {
    let data = st
        .store
        .data_of_task(task_id)?
        .ok_or_else(|| ApiError::not_found("Task has no media"))?;
    if let Some(l) = st
        .loaded
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&data.id)
    {
        if l.data.version == data.version {
            return Ok(Arc::clone(l));
        }
    }
    let images = st.store.images(data.id)?;
    let seek = match &data.spec.media {
        MediaSource::Video {
            manifest: Some(m), ..
        } => SeekTable::from_manifest(m).map_err(|e| ApiError::internal(e.to_string()))?,
        _ => SeekTable::none(),
    };
    let l = Arc::new(Loaded {
        data,
        images,
        seek,
        sources: SourceWatch::default(),
    });
    st.loaded
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(l.data.id, Arc::clone(&l));
    Ok(l)
}

/// Memory the process needs besides the budget: code, libraries, runtime, the database, and
/// what is not counted (connection buffers, logins' password hashing, the allocator's overhead).
/// An idle server peaks at ~64 MiB VmHWM after a login (argon2 hashes in 19 MiB).
const BASE_MEMORY: u64 = 96 << 20;

/// The least `--memory-limit` above the cache and the base that leaves builds room to run.
const MIN_BUILD_MEMORY: u64 = 64 << 20;

/// How long a build may wait for memory before the request is answered 503.
const MEMORY_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Installs the process-wide limits the server's decoders and builds honour: the pixel limit
/// (`--max-image-pixels`) and the memory budget (`--memory-limit`, less the process's base; the
/// item cache lives inside it), whose reclaimer closes parked decoders and lets go of held
/// items when memory is short. Called once at start.
pub(crate) fn install_limits(st: &AppState) -> anyhow::Result<()> {
    let c = &st.config;
    budget::tune_allocator();
    crate::media::image::set_max_pixels(c.max_image_pixels);
    let limit = c.memory_limit();
    let least = c
        .cache_size
        .saturating_add(BASE_MEMORY)
        .saturating_add(MIN_BUILD_MEMORY);
    if limit < least {
        anyhow::bail!(
            "--memory-limit {limit} is too small: it must hold the cache (--cache-size {}), the \
             server itself ({} MiB) and at least {} MiB for decoding, i.e. be at least {least}",
            c.cache_size,
            BASE_MEMORY >> 20,
            MIN_BUILD_MEMORY >> 20
        );
    }
    let total = limit - BASE_MEMORY;
    // The cache may stay full: what is left is the most one build can ever get.
    let budget = Budget::new(total, total - c.cache_size);
    let (pool, cache) = (st.pool.clone(), st.cache.clone());
    budget.set_reclaimer(move |bytes| {
        let freed = cache.release_held(bytes);
        if freed < bytes {
            pool.shed(bytes - freed);
        }
    });
    if !budget::set_global(budget) {
        anyhow::bail!("the memory budget was installed twice");
    }
    Ok(())
}

/// Builds (or fetches from the cache) the item `key` with `build`, on a blocking worker, at most
/// `--workers` at a time, each once the memory `need` says it takes is free in the budget
/// (waiting for it, in order). Concurrent requests for one key build it once; failures are not
/// cached.
async fn item<N, F>(
    st: &Arc<AppState>,
    l: &Arc<Loaded>,
    key: ItemKey,
    need: N,
    build: F,
) -> Result<Arc<Item>, ApiError>
where
    N: FnOnce(&Source<'_>) -> u64 + Send + 'static,
    F: FnOnce(&Source<'_>) -> Result<Item, BuildError> + Send + 'static,
{
    let st2 = Arc::clone(st);
    let l2 = Arc::clone(l);
    st.cache
        .get_or_build(key, move || async move {
            let permit = Arc::clone(&st2.permits)
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let bytes = need(&source(&st2, &l2));
            let memory = tokio::time::timeout(MEMORY_WAIT, budget::global().reserve("this build", bytes))
                .await
                .map_err(|_| {
                    BuildError::Busy(format!(
                        "no memory for this build after {} s: the server is busy (--memory-limit); try again",
                        MEMORY_WAIT.as_secs()
                    ))
                })??;
            // The permit and the memory go with the blocking build: they are held until it
            // ends even if every client waiting for it goes away.
            tokio::task::spawn_blocking(move || {
                let _held = (permit, memory);
                build(&source(&st2, &l2))
            })
            .await
            .unwrap_or_else(|e| {
                Err(BuildError::Read {
                    path: String::new(),
                    reason: format!("the chunk builder failed unexpectedly: {e}"),
                })
            })
        })
        .await
        .map_err(|e| {
            let mut err = ApiError::from(&*e);
            err.message = super::error::task_message(st, &l.data.spec.dir, None, &err.message);
            err
        })
}

/// The build source of a loaded task: its data, images, seek table and the decoder pool.
pub(crate) fn source<'a>(st: &'a AppState, l: &'a Loaded) -> Source<'a> {
    Source {
        data_id: l.data.id,
        version: l.data.version,
        spec: &l.data.spec,
        images: &l.images,
        seek: &l.seek,
        pool: &st.pool,
    }
}

/// Checks that the sources of absolute frames `abs` are unchanged (each looked at no more than
/// once a second): a changed or missing source answers 409 or 410 also for items already
/// cached. A failed check drops the data's cached items.
fn check_sources(
    st: &AppState,
    l: &Loaded,
    abs: impl IntoIterator<Item = u64>,
) -> Result<(), ApiError> {
    let r = match &l.data.spec.media {
        MediaSource::Video {
            path, name, stamp, ..
        } => l.sources.check(path, name, stamp),
        MediaSource::Images => abs
            .into_iter()
            .filter_map(|a| l.images.get(a as usize))
            .try_for_each(|img| l.sources.check(&img.path, &img.name, &img.stamp)),
    };
    r.map_err(|e| {
        st.cache.invalidate_data(l.data.id);
        ApiError::from(&BuildError::Frames(e))
    })
}

fn key(l: &Loaded, kind: ItemKind, number: u64, quality: Quality) -> ItemKey {
    ItemKey {
        data_id: l.data.id,
        version: l.data.version,
        kind,
        number,
        quality,
    }
}

/// Absolute frames of task-relative frames `r`.
fn abs_frames(l: &Loaded, r: SegmentRange) -> Vec<u64> {
    (r.start..=r.stop)
        .map(|f| l.data.spec.range.abs(f))
        .collect()
}

/// The task chunk `n` item (shared by task chunk requests, compressed frames and prefetch).
async fn task_chunk_item(
    st: &Arc<AppState>,
    l: &Arc<Loaded>,
    n: u64,
    quality: Quality,
) -> Result<Arc<Item>, ApiError> {
    let spec = &l.data.spec;
    let r = task_chunk(spec.range.size, spec.chunk_size, n)
        .ok_or_else(|| chunk_range_error(n, spec.range.size, spec.chunk_size))?;
    range_chunk_item(st, l, ItemKind::TaskChunk, n, r, quality).await
}

/// The chunk item holding task-relative frames `r`, cached under (`kind`, `n`).
async fn range_chunk_item(
    st: &Arc<AppState>,
    l: &Arc<Loaded>,
    kind: ItemKind,
    n: u64,
    r: SegmentRange,
    quality: Quality,
) -> Result<Arc<Item>, ApiError> {
    let frames = abs_frames(l, r);
    check_sources(st, l, frames.iter().copied())?;
    let wanted = frames.clone();
    item(
        st,
        l,
        key(l, kind, n, quality),
        move |src| chunks::build_memory(src, &wanted, quality, BuildKind::Chunk),
        move |src| chunks::build_chunk(src, &frames, quality),
    )
    .await
}

/// After chunk `n` is served, build chunk `n + 1` in the background — annotators play forward —
/// unless every builder is busy or its memory is not free now (prefetch never queues behind
/// real requests).
fn prefetch_next(st: &Arc<AppState>, l: &Arc<Loaded>, n: u64, quality: Quality) {
    let spec = &l.data.spec;
    let Some(next) = task_chunk(spec.range.size, spec.chunk_size, n + 1) else {
        return;
    };
    if st
        .cache
        .contains(&key(l, ItemKind::TaskChunk, n + 1, quality))
    {
        return;
    }
    if st.permits.available_permits() == 0 {
        return;
    }
    let need = chunks::build_memory(
        &source(st, l),
        &abs_frames(l, next),
        quality,
        BuildKind::Chunk,
    );
    if budget::global().available() < need {
        return;
    }
    st.cache
        .metrics()
        .prefetches
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (st, l) = (Arc::clone(st), Arc::clone(l));
    tokio::spawn(async move {
        if let Err(e) = task_chunk_item(&st, &l, n + 1, quality).await {
            tracing::debug!("prefetch of chunk {} failed: {}", n + 1, e.message);
        }
    });
}

fn chunk_range_error(n: u64, frames: u64, cs: u64) -> ApiError {
    ApiError::bad_request(format!(
        "Invalid chunk number '{n}'. The chunk number should be in the [0, {}] range",
        frames.div_ceil(cs).saturating_sub(1)
    ))
}

#[derive(Deserialize)]
pub(crate) struct DataQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    quality: Option<String>,
    number: Option<String>,
    index: Option<String>,
}

enum DataType {
    Chunk,
    Frame,
    Preview,
    ContextImage,
}

fn parse_query(q: &DataQuery) -> Result<(DataType, Quality), ApiError> {
    let kind = match q.kind.as_deref() {
        Some("chunk") => DataType::Chunk,
        Some("frame") => DataType::Frame,
        Some("preview") => DataType::Preview,
        Some("context_image") => DataType::ContextImage,
        _ => {
            return Err(ApiError::bad_request(
                "Data type not specified or has wrong value",
            ))
        }
    };
    let quality = match q.quality.as_deref() {
        None => Quality::Compressed,
        Some(s) => match Quality::parse(s) {
            Some(q) => q,
            None if matches!(kind, DataType::ContextImage) => Quality::Compressed,
            None => return Err(ApiError::bad_request("Wrong quality value")),
        },
    };
    Ok((kind, quality))
}

fn parse_number(s: &Option<String>, what: &str) -> Result<Option<u64>, ApiError> {
    match s {
        None => Ok(None),
        Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
            ApiError::bad_request(format!("{what} must be a non-negative integer, got '{v}'"))
        }),
    }
}

/// Sends item bytes with CVAT's headers, honouring `Range`.
fn send(item: &Item, updated: chrono::DateTime<chrono::Utc>, headers: &HeaderMap) -> Response {
    let total = item.bytes.len();
    let mut resp = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => Response::new(Body::from(item.bytes.clone())),
        Some(range) => match parse_range(range, total) {
            RangeSpec::Ignore => Response::new(Body::from(item.bytes.clone())),
            RangeSpec::Invalid => {
                return ApiError::bad_request("Invalid Range header").into_response()
            }
            RangeSpec::Unsatisfiable => {
                let mut r = Response::new(Body::empty());
                *r.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
                r.headers_mut()
                    .insert(header::CONTENT_RANGE, hv(&format!("bytes */{total}")));
                return r;
            }
            RangeSpec::Bytes(a, b) => {
                let mut r = Response::new(Body::from(item.bytes.slice(a..=b)));
                *r.status_mut() = StatusCode::PARTIAL_CONTENT;
                r.headers_mut()
                    .insert(header::CONTENT_RANGE, hv(&format!("bytes {a}-{b}/{total}")));
                r
            }
        },
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(item.mime));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert("X-Checksum", hv(&x_checksum(&item.bytes).to_string()));
    h.insert("X-Updated-Date", hv(&iso_utc(updated)));
    resp
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).expect("ASCII header value")
}

#[derive(Debug, PartialEq, Eq)]
enum RangeSpec {
    Ignore,
    Invalid,
    Unsatisfiable,
    Bytes(usize, usize),
}

/// Parses `Range` as CVAT does: `([^=\s]+)\s*=\s*(.+)`, one `(\d*)-(\d*)` range; other units are
/// ignored (full response), malformed values are a 400.
fn parse_range(v: &str, total: usize) -> RangeSpec {
    let Some((unit, spec)) = v.split_once('=') else {
        return RangeSpec::Invalid;
    };
    let (unit, spec) = (unit.trim(), spec.trim());
    if unit.is_empty() || spec.is_empty() {
        return RangeSpec::Invalid;
    }
    if unit != "bytes" {
        return RangeSpec::Ignore;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeSpec::Invalid;
    };
    let (a, b) = (a.trim(), b.trim());
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !digits(a) || !digits(b) || (a.is_empty() && b.is_empty()) {
        return RangeSpec::Invalid;
    }
    let parse = |s: &str| s.parse::<usize>().ok();
    match (a.is_empty(), b.is_empty()) {
        (true, false) => {
            // Suffix: the last n bytes.
            let Some(n) = parse(b) else {
                return RangeSpec::Invalid;
            };
            if n == 0 || total == 0 {
                return RangeSpec::Unsatisfiable;
            }
            RangeSpec::Bytes(total.saturating_sub(n), total - 1)
        }
        (false, true) => match parse(a) {
            Some(s) if s < total => RangeSpec::Bytes(s, total - 1),
            Some(_) => RangeSpec::Unsatisfiable,
            None => RangeSpec::Invalid,
        },
        _ => match (parse(a), parse(b)) {
            (Some(s), Some(e)) if s < total && e >= s => RangeSpec::Bytes(s, e.min(total - 1)),
            (Some(_), Some(_)) => RangeSpec::Unsatisfiable,
            _ => RangeSpec::Invalid,
        },
    }
}

/// A frame (task-relative `rel`) as served by `type=frame`.
async fn frame_item(
    st: &Arc<AppState>,
    l: &Arc<Loaded>,
    rel: u64,
    quality: Quality,
) -> Result<Arc<Item>, ApiError> {
    let spec = &l.data.spec;
    let abs = spec.range.abs(rel);
    let from_zip =
        quality == Quality::Compressed && spec.compressed_chunk_type == ChunkType::Imageset;
    if from_zip {
        // The compressed frame is the JPEG inside its compressed chunk: build or reuse the chunk.
        let n = rel / spec.chunk_size;
        let chunk = task_chunk_item(st, l, n, quality).await?;
        let pos = (rel % spec.chunk_size) as usize;
        let (_, bytes) = codec::read_zip_entry(&chunk.bytes, pos)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        return Ok(Arc::new(Item {
            bytes: bytes.into(),
            mime: "image/jpeg",
        }));
    }
    let is_video = matches!(spec.media, MediaSource::Video { .. });
    check_sources(st, l, [abs])?;
    item(
        st,
        l,
        key(l, ItemKind::Frame, rel, quality),
        move |src| chunks::build_memory(src, &[abs], quality, BuildKind::Frame),
        move |src| {
            if is_video {
                chunks::video_frame_png(src, abs)
            } else {
                chunks::image_frame_original(src, abs)
            }
        },
    )
    .await
}

async fn preview_item(
    st: &Arc<AppState>,
    l: &Arc<Loaded>,
    rel: u64,
) -> Result<Arc<Item>, ApiError> {
    let abs = l.data.spec.range.abs(rel);
    check_sources(st, l, [abs])?;
    item(
        st,
        l,
        key(l, ItemKind::Preview, rel, Quality::Compressed),
        move |src| chunks::build_memory(src, &[abs], Quality::Compressed, BuildKind::Small),
        move |src| chunks::preview(src, abs),
    )
    .await
}

fn preview_response(item: &Item) -> Response {
    let mut r = Response::new(Body::from(item.bytes.clone()));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(item.mime));
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Prefer"));
    r
}

async fn context_item(
    st: &Arc<AppState>,
    l: &Arc<Loaded>,
    rel: u64,
) -> Result<Arc<Item>, ApiError> {
    let abs = l.data.spec.range.abs(rel);
    let img = l
        .images
        .get(abs as usize)
        .filter(|i| !i.related.is_empty())
        .cloned();
    let Some(img) = img else {
        return Err(ApiError::not_found("The frame has no context images"));
    };
    check_sources(st, l, [abs])?;
    item(
        st,
        l,
        key(l, ItemKind::ContextImage, rel, Quality::Compressed),
        |_| 0,
        move |_| chunks::context_images(&img),
    )
    .await
}

/// `GET /api/tasks/{id}/data`
#[utoipa::path(get, path = "/api/tasks/{id}/data", tag = "tasks", params(("id" = i64, Path, description = "Task id"), ("type" = String, Query, description = "chunk | frame | preview | context_image"), ("quality" = String, Query, description = "compressed | original"), ("number" = u64, Query, description = "Chunk or frame number")), responses((status = 200, description = "Chunk, frame or image bytes", body = Object)))]
pub(crate) async fn task_data(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Query(q): Query<DataQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    task_or_404(&st, id, &me)?;
    let (kind, quality) = parse_query(&q)?;
    let l = loaded(&st, id)?;
    let spec = &l.data.spec;
    let updated = l.data.chunks_updated_date;
    match kind {
        DataType::Preview => return Ok(preview_response(&*preview_item(&st, &l, 0).await?)),
        DataType::Chunk => {
            let n = parse_number(&q.number, "number")?
                .ok_or_else(|| ApiError::bad_request("Number is not specified"))?;
            let it = task_chunk_item(&st, &l, n, quality).await?;
            prefetch_next(&st, &l, n, quality);
            Ok(send(&it, updated, &headers))
        }
        DataType::Frame | DataType::ContextImage => {
            let n = parse_number(&q.number, "number")?
                .ok_or_else(|| ApiError::bad_request("Number is not specified"))?;
            if n >= spec.range.size {
                return Err(ApiError::bad_request(format!(
                    "Invalid frame '{n}'. The frame number should be in the [0, {}] range",
                    spec.range.size - 1
                )));
            }
            let it = if matches!(kind, DataType::Frame) {
                frame_item(&st, &l, n, quality).await?
            } else {
                context_item(&st, &l, n).await?
            };
            Ok(send(&it, updated, &headers))
        }
    }
}

/// `GET /api/jobs/{id}/data`
#[utoipa::path(get, path = "/api/jobs/{id}/data", tag = "jobs", params(("id" = i64, Path, description = "Job id"), ("type" = String, Query, description = "chunk | frame | preview | context_image"), ("quality" = String, Query, description = "compressed | original"), ("number" = u64, Query, description = "Task frame or (deprecated) task chunk number"), ("index" = u64, Query, description = "Job-relative chunk index")), responses((status = 200, description = "Chunk, frame or image bytes", body = Object)))]
pub(crate) async fn job_data(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Query(q): Query<DataQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let job = job_or_404(&st, id, &me)?;
    let (kind, quality) = parse_query(&q)?;
    let l = loaded(&st, job.task_id)?;
    let cs = l.data.spec.chunk_size;
    let seg = job.range;
    let updated = l.data.chunks_updated_date;
    let number = parse_number(&q.number, "number")?;
    let index = parse_number(&q.index, "index")?;
    match kind {
        DataType::Preview => Ok(preview_response(&*preview_item(&st, &l, seg.start).await?)),
        DataType::Chunk => {
            let it = match (number, index) {
                (None, None) => {
                    return Err(ApiError::bad_request("Number or Index is not specified"))
                }
                (Some(_), Some(_)) => {
                    return Err(ApiError::bad_request(
                        "Number and Index cannot be used together",
                    ))
                }
                (None, Some(i)) => {
                    let r = seg
                        .chunk(i, cs)
                        .ok_or_else(|| chunk_range_error(i, seg.len(), cs))?;
                    range_chunk_item(&st, &l, ItemKind::SegmentChunk(job.id), i, r, quality).await?
                }
                (Some(n), None) => {
                    // Deprecated: task chunk n limited to the job's frames.
                    let (first, last) = (seg.start / cs, seg.stop / cs);
                    if n < first || n > last {
                        return Err(ApiError::bad_request(format!(
                            "Invalid chunk number '{n}'. The chunk number should be in the [{first}, {last}] range"
                        )));
                    }
                    let r = SegmentRange {
                        start: (n * cs).max(seg.start),
                        stop: ((n + 1) * cs - 1).min(seg.stop),
                    };
                    let whole = task_chunk(l.data.spec.range.size, cs, n) == Some(r);
                    if whole {
                        task_chunk_item(&st, &l, n, quality).await?
                    } else {
                        range_chunk_item(&st, &l, ItemKind::JobTaskChunk(job.id), n, r, quality)
                            .await?
                    }
                }
            };
            Ok(send(&it, updated, &headers))
        }
        DataType::Frame | DataType::ContextImage => {
            let n = number.ok_or_else(|| ApiError::bad_request("Number is not specified"))?;
            if n < seg.start || n > seg.stop {
                return Err(ApiError::bad_request(format!(
                    "Incorrect requested frame number: {n}"
                )));
            }
            let it = if matches!(kind, DataType::Frame) {
                frame_item(&st, &l, n, quality).await?
            } else {
                context_item(&st, &l, n).await?
            };
            Ok(send(&it, updated, &headers))
        }
    }
}

/// `GET /api/tasks/{id}/preview`
#[utoipa::path(get, path = "/api/tasks/{id}/preview", tag = "tasks", params(("id" = i64, Path, description = "Task id")), responses((status = 200, description = "Preview image", body = Object)))]
pub(crate) async fn task_preview(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    task_or_404(&st, id, &me)?;
    let l = loaded(&st, id)?;
    Ok(preview_response(&*preview_item(&st, &l, 0).await?))
}

/// `GET /api/jobs/{id}/preview`
#[utoipa::path(get, path = "/api/jobs/{id}/preview", tag = "jobs", params(("id" = i64, Path, description = "Job id")), responses((status = 200, description = "Preview image", body = Object)))]
pub(crate) async fn job_preview(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let job = job_or_404(&st, id, &me)?;
    let l = loaded(&st, job.task_id)?;
    Ok(preview_response(
        &*preview_item(&st, &l, job.range.start).await?,
    ))
}

fn frames_meta(l: &Loaded, rel: impl Iterator<Item = u64>) -> Value {
    match &l.data.spec.media {
        MediaSource::Video { name, width, height, .. } => json!([{
            "width": width, "height": height, "name": name, "related_files": 0, "has_related_context": false
        }]),
        MediaSource::Images => Value::Array(
            rel.filter_map(|r| l.images.get(l.data.spec.range.abs(r) as usize))
                .map(|i| {
                    json!({
                        "width": i.width, "height": i.height, "name": i.name,
                        "related_files": i.related.len(), "has_related_context": !i.related.is_empty()
                    })
                })
                .collect(),
        ),
    }
}

fn chapters_meta(l: &Loaded, seg: Option<SegmentRange>) -> Value {
    match &l.data.spec.media {
        MediaSource::Video { chapters, .. } => Value::Array(
            chapters
                .iter()
                .filter(|c| {
                    seg.is_none_or(|s| c.start >= s.start as i64 && c.start <= s.stop as i64)
                })
                .map(|c| {
                    let mut meta = serde_json::Map::new();
                    if let Some(t) = &c.title {
                        meta.insert("title".into(), Value::from(t.clone()));
                    }
                    json!({"id": c.id, "start": c.start, "stop": c.stop, "metadata": meta})
                })
                .collect(),
        ),
        MediaSource::Images => Value::Null,
    }
}

/// `DataMetaRead` of a task (`seg` None) or of a job's segment, fields in CVAT's order.
fn meta_json(l: &Loaded, seg: Option<SegmentRange>) -> Value {
    let spec = &l.data.spec;
    let frames = seg.unwrap_or(SegmentRange {
        start: 0,
        stop: spec.range.size - 1,
    });
    let (start, stop) = match seg {
        None => (spec.range.start, spec.range.stop),
        Some(s) => (
            spec.range.abs(s.start),
            spec.range.abs(s.stop).min(spec.range.stop),
        ),
    };
    let mut m = serde_json::Map::new();
    m.insert("chapters".into(), chapters_meta(l, seg));
    m.insert(
        "chunks_updated_date".into(),
        iso_utc(l.data.chunks_updated_date).into(),
    );
    m.insert("chunk_size".into(), spec.chunk_size.into());
    m.insert("size".into(), frames.len().into());
    m.insert("image_quality".into(), spec.image_quality.into());
    m.insert("start_frame".into(), start.into());
    m.insert("stop_frame".into(), stop.into());
    m.insert("frame_filter".into(), spec.frame_filter.clone().into());
    m.insert("frames".into(), frames_meta(l, frames.start..=frames.stop));
    m.insert("deleted_frames".into(), json!([]));
    m.insert("included_frames".into(), Value::Null);
    m.insert("storage".into(), spec.storage.clone().into());
    m.insert("cloud_storage_id".into(), Value::Null);
    Value::Object(m)
}

/// `GET /api/tasks/{id}/data/meta` (field order as in CVAT, spec §15.4)
#[utoipa::path(get, path = "/api/tasks/{id}/data/meta", tag = "tasks", params(("id" = i64, Path, description = "Task id")), responses((status = 200, description = "DataMetaRead", body = Object)))]
pub(crate) async fn task_meta(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    task_or_404(&st, id, &me)?;
    let l = loaded(&st, id).map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            ApiError::bad_request("Data is not uploaded for the task yet")
        } else {
            e
        }
    })?;
    Ok(Json(meta_json(&l, None)))
}

/// `GET /api/jobs/{id}/data/meta`
#[utoipa::path(get, path = "/api/jobs/{id}/data/meta", tag = "jobs", params(("id" = i64, Path, description = "Job id")), responses((status = 200, description = "DataMetaRead of the job", body = Object)))]
pub(crate) async fn job_meta(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let job = job_or_404(&st, id, &me)?;
    let l = loaded(&st, job.task_id)?;
    Ok(Json(meta_json(&l, Some(job.range))))
}

/// `POST /api/tasks/{id}/data`: the upload protocol (Upload-Start / Upload-Multiple /
/// Upload-Finish), or a one-shot multipart or JSON request.
#[utoipa::path(post, path = "/api/tasks/{id}/data", tag = "tasks", params(("id" = i64, Path, description = "Task id")), responses((status = 202, description = "Upload protocol step, or the rq_id of the creation request", body = Object)))]
pub(crate) async fn post_data(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
    req: Request,
) -> Result<Response, ApiError> {
    create::post_data(st, id, me, req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_cvat() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeSpec::Bytes(0, 9));
        assert_eq!(parse_range("bytes = 90-", 100), RangeSpec::Bytes(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), RangeSpec::Bytes(90, 99));
        assert_eq!(parse_range("bytes=50-1000", 100), RangeSpec::Bytes(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=9-2", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("items=0-1", 100), RangeSpec::Ignore);
        assert_eq!(parse_range("bytes=a-b", 100), RangeSpec::Invalid);
        assert_eq!(parse_range("garbage", 100), RangeSpec::Invalid);
        assert_eq!(parse_range("bytes=-", 100), RangeSpec::Invalid);
    }
}
