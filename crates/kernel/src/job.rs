//! Background jobs as the domains describe them: a kind, a typed payload,
//! and the retry rule. The queue itself lives in the store; the worker runs
//! handlers. A handler may run more than once for one job (a worker can die
//! after the effect and before recording success), so every handler must be
//! idempotent: check before acting, or key its effect on the job's id.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::id::JobId;

/// A kind of job and its payload type: `SendEmail { .. }` is kind `email.send`.
pub trait JobKind: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stable name stored with each job (`email.send`): lower case, dots.
    const KIND: &'static str;
    /// How often a failing job is tried before it is dead.
    const MAX_ATTEMPTS: i32 = 5;
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Its id, chosen up front so the enqueuer can refer to it.
    pub id: JobId,
    /// [`JobKind::KIND`], or a stored kind (a schedule's).
    pub kind: std::borrow::Cow<'static, str>,
    /// The payload, serialised.
    pub payload: serde_json::Value,
    /// Higher runs first.
    pub priority: i16,
    /// Not before this time; `None` for as soon as possible.
    pub run_at: Option<DateTime<Utc>>,
    /// While a job with this key is queued or running in the same tenant, another is not enqueued.
    pub unique_key: Option<String>,
    /// Tries before the job is dead.
    pub max_attempts: i32,
}

impl NewJob {
    /// A job of kind `J` carrying `payload`.
    pub fn of<J: JobKind>(payload: &J) -> Result<Self, serde_json::Error> {
        Ok(Self {
            id: JobId::new(),
            kind: std::borrow::Cow::Borrowed(J::KIND),
            payload: serde_json::to_value(payload)?,
            priority: 0,
            run_at: None,
            unique_key: None,
            max_attempts: J::MAX_ATTEMPTS,
        })
    }

    /// Runs no earlier than `at`.
    #[must_use]
    pub fn at(self, at: DateTime<Utc>) -> Self {
        Self { run_at: Some(at), ..self }
    }

    /// Not enqueued while another job with `key` is pending in the tenant.
    #[must_use]
    pub fn unique(self, key: impl Into<String>) -> Self {
        Self { unique_key: Some(key.into()), ..self }
    }

    /// Runs before lower priorities.
    #[must_use]
    pub fn priority(self, priority: i16) -> Self {
        Self { priority, ..self }
    }
}

/// Why an operator's action on a job was refused.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// No such job.
    #[error("job not found")]
    NotFound,
    /// Only dead jobs can be retried.
    #[error("only a dead job can be retried; this one is {0}")]
    NotDead(String),
    /// A job with the same unique key is already pending.
    #[error("a job with the same unique key is already pending")]
    DuplicatePending,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::InfraError),
}

impl crate::DomainError for JobError {
    fn kind(&self) -> crate::ErrorKind {
        match self {
            Self::NotFound => crate::ErrorKind::NotFound,
            Self::NotDead(_) | Self::DuplicatePending => crate::ErrorKind::Conflict,
            Self::Store(infra) => infra.kind(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "jobs.not_found",
            Self::NotDead(_) => "jobs.not_dead",
            Self::DuplicatePending => "jobs.duplicate_pending",
            Self::Store(infra) if infra.kind() == crate::ErrorKind::Unavailable => "store.unavailable",
            Self::Store(_) => "internal",
        }
    }
}

/// The delay before try `attempt + 1` after try `attempt` failed: exponential
/// from `base`, capped at `cap`, with "equal jitter" (half fixed, half random)
/// so that jobs failing together do not retry together. `random` is in `[0, 1)`.
#[must_use]
pub fn retry_delay(attempt: i32, base: Duration, cap: Duration, random: f64) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let full = base.saturating_mul(2_u32.saturating_pow(exponent)).min(cap);
    let half = full / 2;
    half + half.mul_f64(random.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Ping {
        to: String,
    }

    impl JobKind for Ping {
        const KIND: &'static str = "test.ping";
        const MAX_ATTEMPTS: i32 = 3;
    }

    #[test]
    fn a_new_job_carries_its_kind_payload_and_attempts() {
        let job = NewJob::of(&Ping { to: "x".into() }).unwrap().unique("ping:x").priority(5);
        assert_eq!((job.kind.as_ref(), job.max_attempts, job.priority), ("test.ping", 3, 5));
        assert_eq!(job.payload, serde_json::json!({"to": "x"}));
        assert_eq!(job.unique_key.as_deref(), Some("ping:x"));
        assert_eq!(job.run_at, None);
    }

    #[test]
    fn delays_grow_exponentially_within_their_jitter_and_cap() {
        let base = Duration::from_secs(2);
        let cap = Duration::from_secs(60);
        let at = |attempt, random| retry_delay(attempt, base, cap, random);
        assert_eq!((at(1, 0.0), at(1, 1.0)), (Duration::from_secs(1), Duration::from_secs(2)));
        assert_eq!((at(2, 0.0), at(2, 1.0)), (Duration::from_secs(2), Duration::from_secs(4)));
        assert_eq!((at(3, 0.0), at(3, 1.0)), (Duration::from_secs(4), Duration::from_secs(8)));
        assert_eq!(at(3, 0.5), Duration::from_secs(6));
        assert_eq!((at(10, 0.0), at(10, 1.0)), (Duration::from_secs(30), Duration::from_secs(60)), "capped");
        assert_eq!(at(i32::MAX, 1.0), cap, "no overflow");
        assert_eq!(at(0, 1.0), Duration::from_secs(2), "attempt 0 is treated as the first");
    }
}
