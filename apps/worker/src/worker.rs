//! The run loop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portico_kernel::{Actor, JobId, RequestId, TenantContext, retry_delay};
use portico_store::{ClaimedJob, FailOutcome, Store};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::{HandlerError, JobContext, Registry};

/// How a worker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Jobs run at once.
    pub concurrency: usize,
    /// How long a claimed job is this worker's; past it another worker may take it.
    pub lease: Duration,
    /// How often an idle worker looks for due jobs without being notified
    /// (retries coming due, lost notifications).
    pub poll_interval: Duration,
    /// How long running jobs may take to finish after shutdown is asked.
    pub shutdown_grace: Duration,
    /// First retry delay; doubles per attempt.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_cap: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            lease: Duration::from_secs(300),
            poll_interval: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(30),
            retry_base: Duration::from_secs(5),
            retry_cap: Duration::from_secs(3600),
        }
    }
}

/// Claims and runs jobs until told to stop.
#[derive(Debug, Clone)]
pub struct Worker {
    store: Store,
    registry: Arc<Registry>,
    config: WorkerConfig,
}

/// Jobs claimed and not yet reported, to release at a forced shutdown.
type InFlight = Arc<Mutex<HashMap<JobId, ClaimedJob>>>;

impl Worker {
    /// A worker over `store` running `registry`'s handlers.
    #[must_use]
    pub fn new(store: Store, registry: Registry, config: WorkerConfig) -> Self {
        Self { store, registry: Arc::new(registry), config }
    }

    /// Runs until `shutdown` resolves, then drains as described in the crate docs.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let wake = Arc::new(Notify::new());
        let listener = tokio::spawn(listen(self.store.clone(), wake.clone()));
        let slots = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let in_flight: InFlight = Arc::default();
        let mut running = JoinSet::new();
        let mut schedules_checked: Option<tokio::time::Instant> = None;
        tokio::pin!(shutdown);

        loop {
            // Due schedules become jobs (at most once per poll interval).
            if schedules_checked.is_none_or(|at| at.elapsed() >= self.config.poll_interval) {
                schedules_checked = Some(tokio::time::Instant::now());
                if let Err(error) = self.store.fire_due_schedules(64).await {
                    tracing::warn!(%error, "firing schedules failed");
                }
            }
            // Claim as many jobs as there are free slots.
            let free = slots.available_permits();
            let claimed = if free == 0 {
                Vec::new()
            } else {
                match self.store.claim_jobs(i64::try_from(free).unwrap_or(1), self.config.lease).await {
                    Ok(claimed) => claimed,
                    Err(error) => {
                        tracing::warn!(%error, "claiming jobs failed");
                        Vec::new()
                    }
                }
            };
            let idle = claimed.is_empty();
            for job in claimed {
                let Ok(permit) = slots.clone().try_acquire_owned() else { break };
                in_flight
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(job.id(), job.clone());
                let (worker, in_flight) = (self.clone(), in_flight.clone());
                running.spawn(async move {
                    worker.run_one(&job).await;
                    in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&job.id());
                    drop(permit);
                });
            }
            // Reap finished tasks so the set does not grow.
            while running.try_join_next().is_some() {}
            let wait = if idle || slots.available_permits() == 0 {
                self.config.poll_interval
            } else {
                Duration::ZERO
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = wake.notified(), if !wait.is_zero() => {}
                Some(_) = running.join_next(), if !running.is_empty() && !wait.is_zero() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }

        listener.abort();
        tracing::info!(running = running.len(), "worker stopping: no more claims");
        let drained = tokio::time::timeout(self.config.shutdown_grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            running.abort_all();
            while running.join_next().await.is_some() {}
            let left: Vec<ClaimedJob> = in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .drain()
                .map(|(_, job)| job)
                .collect();
            for job in left {
                if let Err(error) = self.store.release_job(&job).await {
                    tracing::warn!(%error, job = %job.id(), "could not release a job; its lease will expire");
                }
            }
        }
    }

    async fn run_one(&self, job: &ClaimedJob) {
        let ctx = JobContext {
            ctx: TenantContext {
                tenant_id: job.tenant(),
                actor: Actor::system(format!("job:{}", job.kind)),
                permissions: Default::default(),
                request_id: RequestId::generate(),
                origin: portico_kernel::Origin::default(),
            },
            job_id: job.id(),
            attempt: job.attempts,
        };
        let span = tracing::info_span!("job", kind = %job.kind, job_id = %job.id(), tenant_id = %job.tenant(), attempt = job.attempts);
        // The handler runs as a task of its own, so a panic becomes a failed
        // try instead of a job stuck in `running`; it is aborted if this
        // worker is (forced shutdown).
        let handler = AbortOnDrop(tokio::spawn(
            self.registry.run(&job.kind, job.payload.clone(), ctx).instrument(span),
        ));
        let outcome = self.with_lease_renewal(job, handler).await;
        let reported = match outcome {
            Ok(()) => self.store.complete_job(job).await.map(|done| {
                if !done {
                    tracing::warn!(job = %job.id(), "finished after its lease was taken over");
                }
            }),
            Err(error) => {
                let delay = (!error.permanent).then(|| {
                    retry_delay(job.attempts, self.config.retry_base, self.config.retry_cap, jitter())
                });
                self.store.fail_job(job, &error.message, delay).await.map(|outcome| match outcome {
                    FailOutcome::Retrying(at) => tracing::info!(job = %job.id(), %at, "job failed; retrying"),
                    FailOutcome::Dead => {
                        tracing::warn!(job = %job.id(), kind = %job.kind, "job failed for the last time")
                    }
                    FailOutcome::Superseded => {
                        tracing::warn!(job = %job.id(), "failed after its lease was taken over")
                    }
                })
            }
        };
        if let Err(error) = reported {
            tracing::warn!(%error, job = %job.id(), "could not record the job's outcome; its lease will expire");
        }
    }
}

/// Aborts the task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Worker {
    /// Waits for the handler, extending the job's lease every third of it, so
    /// a long job stays this worker's and is not run twice.
    async fn with_lease_renewal(
        &self,
        job: &ClaimedJob,
        mut handler: AbortOnDrop<Result<(), HandlerError>>,
    ) -> Result<(), HandlerError> {
        let mut renew = tokio::time::interval((self.config.lease / 3).max(Duration::from_millis(10)));
        renew.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                finished = &mut handler.0 => {
                    return finished.unwrap_or_else(|error| {
                        let what = if error.is_panic() { "the handler panicked" } else { "the handler was cancelled" };
                        tracing::error!(job = %job.id(), kind = %job.kind, "{what}");
                        Err(HandlerError::new(what))
                    });
                }
                _ = renew.tick() => {
                    match self.store.extend_lease(job, self.config.lease).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(job = %job.id(), "the job's lease was lost while it ran"),
                        Err(error) => tracing::warn!(%error, job = %job.id(), "could not extend the job's lease"),
                    }
                }
            }
        }
    }
}

/// A random number in [0, 1) for retry jitter.
fn jitter() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() >> 75; // 53 random bits
    #[allow(clippy::cast_precision_loss)]
    let value = bits as f64 / (1_u64 << 53) as f64;
    value
}

/// Wakes the loop on every `NOTIFY`; reconnects (after a pause) when the
/// listening connection drops. Polling covers the gaps.
async fn listen(store: Store, wake: Arc<Notify>) {
    loop {
        match store.job_notifications().await {
            Ok(mut notifications) => {
                while notifications.next().await.is_some() {
                    wake.notify_one();
                }
            }
            Err(error) => tracing::warn!(%error, "cannot listen for jobs; polling only"),
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..1000 {
            let value = super::jitter();
            assert!((0.0..1.0).contains(&value), "{value}");
        }
    }
}
