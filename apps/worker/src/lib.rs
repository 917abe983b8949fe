//! Portico's background worker: claims jobs from the PostgreSQL queue and
//! runs each with the handler registered for its kind.
//!
//! - A [`Registry`] maps each job kind to a handler taking the typed payload.
//!   Handlers must be idempotent: a worker can die after a handler's effect
//!   and before the job is recorded as done, and the job then runs again
//!   (check whether the effect exists first, or key the effect on the job id).
//! - [`Worker::run`] keeps at most `concurrency` jobs running, claims more as
//!   slots free up, sleeps when the queue is empty until `NOTIFY` (or, if a
//!   notification was lost, the poll interval) wakes it, retries failures with
//!   exponential backoff and jitter, and on shutdown stops claiming, lets
//!   running jobs finish within the grace period and releases the rest.
//! - Every poll interval it also fires due recurring schedules; the store
//!   makes each slot one job however many workers run.
//! - While a handler runs, its lease is renewed every third of the lease, so
//!   a long job is not taken over; a handler that panics counts as a failed
//!   try. Each running job holds a `portico_platform` connection only while
//!   it reports, but give that pool `concurrency` + 2 connections.

mod registry;
mod worker;

pub use registry::{HandlerError, JobContext, Registry};
pub use worker::{Worker, WorkerConfig};
