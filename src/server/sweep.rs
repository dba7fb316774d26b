//! Housekeeping of the data directory: export results past their 24 h, `.zip.part` files of
//! exports a crash or kill interrupted, and uploads abandoned by their client (an upload session
//! or TUS file untouched for `--upload-idle-timeout`). Runs once at start and then periodically.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{datasets, tus, AppState};

/// How long an export's `.zip.part` may go unwritten before it is taken for abandoned (a running
/// export writes to it continuously).
const PART_IDLE: Duration = Duration::from_secs(3600);

/// Cleans what a previous run left: every upload (no upload session survives a restart), every
/// `.zip.part` (nor does an export) and expired results.
pub(crate) fn at_start(st: &AppState) -> std::io::Result<()> {
    let _ = std::fs::remove_dir_all(st.uploads_dir());
    std::fs::create_dir_all(st.uploads_dir())?;
    datasets::clean_exports(st, Duration::ZERO);
    Ok(())
}

/// Sweeps periodically: expired results, stale `.part` files, abandoned uploads.
pub(crate) fn spawn(st: &Arc<AppState>) {
    let idle = Duration::from_secs(st.config.upload_idle_timeout.max(1));
    // Often enough that an abandoned upload goes within ~1.5x its idle timeout.
    let period = (idle / 2).clamp(Duration::from_secs(1), Duration::from_secs(600));
    let st = Arc::clone(st);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let st = Arc::clone(&st);
            let _ = tokio::task::spawn_blocking(move || sweep(&st, idle)).await;
        }
    });
}

fn sweep(st: &AppState, upload_idle: Duration) {
    datasets::clean_exports(st, PART_IDLE);
    forget_stale_uploads(st, upload_idle);
}

/// Time since `path`, or anything directly inside it, was last modified (`Duration::MAX` when
/// it is gone).
pub(crate) fn idle_for(path: &Path) -> Duration {
    let age = |p: &Path| match std::fs::symlink_metadata(p).and_then(|m| m.modified()) {
        Ok(t) => SystemTime::now()
            .duration_since(t)
            .unwrap_or(Duration::ZERO),
        Err(_) => Duration::MAX,
    };
    let mut idle = age(path);
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            idle = idle.min(age(&e.path()));
        }
    }
    idle
}

/// Drops upload sessions, TUS uploads and uploaded annotation files that nobody touched for
/// `idle`, with their files, and anything in the uploads directory that none of them owns.
fn forget_stale_uploads(st: &AppState, idle: Duration) {
    let mut removed = 0usize;
    let stale: Vec<(i64, std::path::PathBuf)> = st
        .uploads
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(_, s)| idle_for(&s.dir) >= idle)
        .map(|(id, s)| (*id, s.dir.clone()))
        .collect();
    for (task, dir) in stale {
        let gone = st
            .uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&task);
        if gone.is_some() {
            let _ = std::fs::remove_dir_all(&dir);
            removed += 1;
        }
    }
    removed += tus::forget_stale(st, idle);
    {
        let mut files = st
            .annotation_files
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        files.retain(|_, path| {
            let keep = idle_for(path) < idle;
            if !keep {
                let _ = std::fs::remove_file(&*path);
                removed += 1;
            }
            keep
        });
    }
    // Files and directories no upload owns any more (e.g. left by a finished import).
    if let Ok(entries) = std::fs::read_dir(st.uploads_dir()) {
        let owned = |p: &Path| {
            st.uploads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .any(|s| p.starts_with(&s.dir) || s.dir.starts_with(p))
                || st
                    .annotation_files
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .any(|f| f.starts_with(p))
                || tus::owns(st, p)
                || creating_from(st, p)
        };
        for e in entries.flatten() {
            let p = e.path();
            if idle_for(&p) >= idle && !owned(&p) {
                let r = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
                if r.is_ok() {
                    removed += 1;
                }
            }
        }
    }
    if removed > 0 {
        tracing::info!(
            removed,
            idle_s = idle.as_secs(),
            "removed abandoned uploads"
        );
    }
}

/// Whether `path` is the upload folder of a task whose data is being created from it.
fn creating_from(st: &AppState, path: &Path) -> bool {
    let Some(id) = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("task_"))
        .and_then(|n| n.parse::<i64>().ok())
    else {
        return false;
    };
    st.creating
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&id)
}
