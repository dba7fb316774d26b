//! Who may see what: the handlers' state extractor, the current user, the visibility rules of
//! tasks and jobs, and [`Scope`], the task or job a task/job handler works on.
//!
//! A task is visible to its owner, its assignee and admins; a job to whoever sees its task and
//! to its own assignee. Anything else does not exist for the user (404, never 403).

use std::sync::Arc;

use axum::extract::State;

use super::{ApiError, AppState};
use crate::dataset;
use crate::store::{JobRow, TaskRow, UserRow};

/// The handlers' shared state extractor.
pub(crate) type St = State<Arc<AppState>>;

/// The authenticated user of a request (put in the request's extensions by
/// [`super::auth::require_auth`]; handlers take it as `Extension<CurrentUser>`).
#[derive(Debug, Clone)]
pub(crate) struct CurrentUser {
    pub id: i64,
    pub username: String,
    pub is_admin: bool,
    /// The access token used, if the request came with one.
    pub token_id: Option<i64>,
}

impl From<&UserRow> for CurrentUser {
    fn from(u: &UserRow) -> Self {
        CurrentUser {
            id: u.id,
            username: u.username.clone(),
            is_admin: u.is_admin,
            token_id: None,
        }
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("Not found.")
}

/// Task `id` if `me` may see it ([`visible`]), else 404.
pub(crate) fn task_or_404(st: &AppState, id: i64, me: &CurrentUser) -> Result<TaskRow, ApiError> {
    let t = st.store.task(id)?.ok_or_else(not_found)?;
    if visible(&t, me) {
        Ok(t)
    } else {
        Err(not_found())
    }
}

/// Job `id` if `me` may see it (its assignee, or whoever sees its task), else 404.
pub(crate) fn job_or_404(st: &AppState, id: i64, me: &CurrentUser) -> Result<JobRow, ApiError> {
    let job = st.store.job(id)?.ok_or_else(not_found)?;
    if job.assignee_id == Some(me.id) {
        return Ok(job);
    }
    task_or_404(st, job.task_id, me)?;
    Ok(job)
}

/// Whether `me` works on the whole task (its data, annotations, every job): its owner, its
/// assignee or an admin.
pub(crate) fn visible(t: &TaskRow, me: &CurrentUser) -> bool {
    me.is_admin || t.owner_id == Some(me.id) || t.assignee_id == Some(me.id)
}

/// Whether `me` may read the task's description: [`visible`], or the assignee of one of its
/// jobs (who works on that job only, through the job's endpoints).
pub(crate) fn readable(st: &AppState, t: &TaskRow, me: &CurrentUser) -> bool {
    visible(t, me) || st.store.is_job_assignee(t.id, me.id).unwrap_or(false)
}

/// What a task or job handler works on, checked visible to the user: a task, or one job of it
/// (whose frames bound what it reads and writes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope {
    /// The task (of the job, for jobs).
    pub task_id: i64,
    /// The job, for `/api/jobs/{id}/...` endpoints.
    pub job: Option<JobRow>,
}

impl Scope {
    /// Task `id`'s scope, if `me` may see the task.
    pub(crate) fn task(st: &AppState, id: i64, me: &CurrentUser) -> Result<Scope, ApiError> {
        task_or_404(st, id, me)?;
        Ok(Scope {
            task_id: id,
            job: None,
        })
    }

    /// Job `id`'s scope, if `me` may see the job.
    pub(crate) fn job(st: &AppState, id: i64, me: &CurrentUser) -> Result<Scope, ApiError> {
        let job = job_or_404(st, id, me)?;
        Ok(Scope {
            task_id: job.task_id,
            job: Some(job),
        })
    }

    /// The job's id (`None`: the task's endpoint).
    pub(crate) fn job_id(&self) -> Option<i64> {
        self.job.map(|j| j.id)
    }

    /// A job's task-relative frames (`None` for a task: all of them).
    pub(crate) fn job_frames(&self) -> Option<(u64, u64)> {
        self.job.map(|j| (j.range.start, j.range.stop))
    }

    /// The task-relative frames the scope may read and write: the job's, or all the task's
    /// (`(0, 0)` while it has no data).
    pub(crate) fn frames(&self, st: &AppState) -> Result<(u64, u64), ApiError> {
        if let Some(f) = self.job_frames() {
            return Ok(f);
        }
        let size = st
            .store
            .data_of_task(self.task_id)?
            .map(|d| d.spec.range.size)
            .unwrap_or(0);
        Ok((0, size.saturating_sub(1)))
    }

    /// The domain's view of the scope (what datasets are assembled for).
    pub(crate) fn dataset_scope(&self) -> dataset::Scope {
        dataset::Scope {
            task_id: self.task_id,
            job: self.job.map(|j| (j.id, j.range.start, j.range.stop)),
        }
    }
}
