//! The platform's job handlers, registered for `portico worker`.

use std::time::Duration;

use std::sync::Arc;

use portico_kernel::{EmailSender, JobKind, NewJob, PLATFORM_TENANT_ID, Recurrence, ScheduleSpec, SendEmail};
use portico_store::Store;
use portico_worker::{HandlerError, Registry};
use serde::{Deserialize, Serialize};

/// Deletes finished jobs past their retention (a platform job).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneJobs {
    /// Days succeeded jobs are kept.
    pub succeeded_days: u32,
    /// Days dead jobs are kept (longer: someone should look at them).
    pub dead_days: u32,
}

impl JobKind for PruneJobs {
    const KIND: &'static str = "jobs.prune";
}

/// Deletes idempotency records past their retention (a platform job).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PruneIdempotencyKeys {}

impl JobKind for PruneIdempotencyKeys {
    const KIND: &'static str = "idempotency.prune";
}

/// Deletes ended sessions, spent tokens and idle failure counts (a platform job).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PruneIdentity {}

impl JobKind for PruneIdentity {
    const KIND: &'static str = "identity.prune";
}

/// An end-to-end check of the job pipeline: waits `delayMs` (at most a
/// minute) and succeeds. Harmless to run twice.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    /// How long the job takes.
    pub delay_ms: u64,
}

impl JobKind for Probe {
    const KIND: &'static str = "system.probe";
}

const DAY: Duration = Duration::from_secs(24 * 3600);

/// The platform's own recurring jobs, registered (idempotently) when a worker starts.
pub fn platform_schedules() -> Result<Vec<ScheduleSpec>, Box<dyn std::error::Error>> {
    Ok(vec![
        ScheduleSpec {
            name: "prune-jobs".to_owned(),
            recurrence: Recurrence::parse("30 3 * * *", "UTC")?,
            job: NewJob::of(&PruneJobs { succeeded_days: 7, dead_days: 30 })?,
        },
        ScheduleSpec {
            name: "prune-idempotency-keys".to_owned(),
            recurrence: Recurrence::parse("15 * * * *", "UTC")?,
            job: NewJob::of(&PruneIdempotencyKeys {})?,
        },
        ScheduleSpec {
            name: "prune-identity".to_owned(),
            recurrence: Recurrence::parse("45 * * * *", "UTC")?,
            job: NewJob::of(&PruneIdentity {})?,
        },
    ])
}

/// Every handler the platform runs.
#[must_use]
pub fn registry(store: &Store, email: Arc<dyn EmailSender>) -> Registry {
    let (store, keys_store, identity_store) = (store.clone(), store.clone(), store.clone());
    Registry::new()
        .on(move |job: SendEmail, ctx| {
            let email = email.clone();
            async move {
                // The job's id names the message: a resend after a crash carries the
                // same Message-ID, which mail systems use to drop the duplicate.
                let mut message = job.message;
                message.message_id.get_or_insert_with(|| format!("<{}@portico>", ctx.job_id));
                email.send(&message).await.map_err(|error| {
                    if error.is_permanent() {
                        HandlerError::permanent(error)
                    } else {
                        HandlerError::new(error)
                    }
                })
            }
        })
        .on(move |job: PruneJobs, ctx| {
            let store = store.clone();
            async move {
                // It deletes across tenants: only the platform's own job may.
                if ctx.ctx.tenant_id != PLATFORM_TENANT_ID {
                    return Err(HandlerError::permanent("jobs.prune runs only as a platform job"));
                }
                let deleted = store
                    .prune_jobs(DAY * job.succeeded_days, DAY * job.dead_days)
                    .await
                    .map_err(HandlerError::new)?;
                tracing::info!(deleted, "pruned finished jobs");
                Ok(())
            }
        })
        .on(move |_: PruneIdempotencyKeys, ctx| {
            let store = keys_store.clone();
            async move {
                if ctx.ctx.tenant_id != PLATFORM_TENANT_ID {
                    return Err(HandlerError::permanent("idempotency.prune runs only as a platform job"));
                }
                let deleted = store.prune_idempotency_keys().await.map_err(HandlerError::new)?;
                tracing::info!(deleted, "pruned expired idempotency keys");
                Ok(())
            }
        })
        .on(move |_: PruneIdentity, ctx| {
            let store = identity_store.clone();
            async move {
                if ctx.ctx.tenant_id != PLATFORM_TENANT_ID {
                    return Err(HandlerError::permanent("identity.prune runs only as a platform job"));
                }
                let pruned = store.prune_identity().await.map_err(HandlerError::new)?;
                tracing::info!(?pruned, "pruned ended sessions and spent tokens");
                Ok(())
            }
        })
        .on(|job: Probe, ctx| async move {
            tokio::time::sleep(Duration::from_millis(job.delay_ms.min(60_000))).await;
            tracing::info!(job = %ctx.job_id, attempt = ctx.attempt, "probe ran");
            Ok(())
        })
}
