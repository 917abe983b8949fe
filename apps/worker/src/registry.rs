//! Handlers by job kind.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use portico_kernel::{JobId, JobKind, TenantContext};

/// Where and as whom a handler runs: the job's tenant, the system as actor
/// (`job:<kind>`), and the job's identity for idempotency keys.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// Scope for every store call the handler makes.
    pub ctx: TenantContext,
    /// The job (stable across retries: key effects on it).
    pub job_id: JobId,
    /// This try's number, from 1.
    pub attempt: i32,
}

/// Why a handler failed; the message is stored with the job (PII masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError {
    /// What went wrong.
    pub message: String,
    /// Retrying cannot help: the job is dead at once.
    pub permanent: bool,
}

impl HandlerError {
    /// A failure worth retrying, described by `error`.
    pub fn new(error: impl std::fmt::Display) -> Self {
        Self { message: error.to_string(), permanent: false }
    }

    /// A failure retrying cannot fix (a refused recipient, a malformed payload).
    pub fn permanent(error: impl std::fmt::Display) -> Self {
        Self { message: error.to_string(), permanent: true }
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>>;
type Erased = Arc<dyn Fn(serde_json::Value, JobContext) -> BoxFuture + Send + Sync>;

/// The handlers a worker runs, one per job kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<&'static str, Erased>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.handlers.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `handler` for jobs of kind `J`, with the payload deserialized.
    #[must_use]
    pub fn on<J, F, Fut>(mut self, handler: F) -> Self
    where
        J: JobKind,
        F: Fn(J, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let erased: Erased = Arc::new(move |payload, ctx| match serde_json::from_value::<J>(payload) {
            Ok(job) => Box::pin(handler(job, ctx)),
            Err(error) => {
                let message = format!("the payload does not fit {}: {error}", J::KIND);
                Box::pin(std::future::ready(Err(HandlerError::permanent(message))))
            }
        });
        self.handlers.insert(J::KIND, erased);
        self
    }

    /// The kinds it handles.
    #[must_use]
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self.handlers.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }

    /// Runs the handler of `kind`; a kind without one fails (and so ends dead, visibly).
    pub(crate) fn run(&self, kind: &str, payload: serde_json::Value, ctx: JobContext) -> BoxFuture {
        match self.handlers.get(kind) {
            Some(handler) => handler(payload, ctx),
            None => Box::pin(std::future::ready(Err(HandlerError::new(format!(
                "no handler for job kind {kind}"
            ))))),
        }
    }
}
