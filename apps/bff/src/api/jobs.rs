//! The platform's view of the job queue.

use crate::db::Db;
use actix_web::{HttpResponse, web};
use portico_kernel::JobId;
use serde_json::json;

use crate::auth::{PlatformJobsRead, PlatformJobsWrite, Require};
use crate::envelope;
use crate::error::ApiError;
#[allow(unused_imports)] // the OpenAPI attributes name these
use crate::openapi::{ErrorEnvelope, JobOverviewEnvelope, JobRetriedEnvelope};

/// Counts by kind and state, the oldest due job's wait, recent latency and the latest dead jobs.
#[utoipa::path(
    get,
    path = "/api/v1/admin/jobs",
    tag = "jobs",
    responses(
        (status = 200, description = "The queue across all tenants.", body = JobOverviewEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:jobs:read"]))
)]
pub async fn overview(auth: Require<PlatformJobsRead>, store: Db) -> Result<HttpResponse, ApiError> {
    let overview = store.job_overview(&auth.platform()?).await.map_err(|e| ApiError::infra(&e))?;
    Ok(envelope::ok(overview))
}

/// Queues a dead job again with fresh attempts (audited as `job.retry`).
#[utoipa::path(
    post,
    path = "/api/v1/admin/jobs/{id}/retry",
    tag = "jobs",
    params(("id" = String, Path, format = Uuid, description = "The job's id.")),
    responses(
        (status = 200, description = "Queued again.", body = JobRetriedEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such job (`jobs.not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The job is not dead (`jobs.not_dead`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:jobs:write"]))
)]
pub async fn retry(
    auth: Require<PlatformJobsWrite>,
    store: Db,
    id: web::Path<JobId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    store.retry_job(&auth.platform()?, id).await.map_err(|e| ApiError::from_domain(&e))?;
    Ok(envelope::ok(json!({"id": id, "state": "queued"})))
}
