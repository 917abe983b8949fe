//! The kinds every domain error falls into; the bff maps each to one HTTP status.

use std::fmt;

/// What went wrong, in the terms a caller can act on.
///
/// Every domain error names exactly one kind; the HTTP status of a kind is
/// decided in one place in the bff, never in a domain crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The thing does not exist, or the caller may not know that it does.
    NotFound,
    /// The request contradicts the current state (duplicate, wrong state).
    Conflict,
    /// The input is malformed or breaks a rule.
    Validation,
    /// The caller is not authenticated.
    Unauthorized,
    /// The caller is authenticated but may not do this.
    Forbidden,
    /// The action needs credit or a paid plan the tenant lacks.
    PaymentRequired,
    /// The caller is sending too much; try again later.
    RateLimited,
    /// A dependency (database, provider) is unavailable; try again later.
    Unavailable,
    /// A fault on our side.
    Internal,
}

impl ErrorKind {
    /// Every kind, for exhaustive checks.
    pub const ALL: [Self; 9] = [
        Self::NotFound,
        Self::Conflict,
        Self::Validation,
        Self::Unauthorized,
        Self::Forbidden,
        Self::PaymentRequired,
        Self::RateLimited,
        Self::Unavailable,
        Self::Internal,
    ];

    /// True for kinds that are the caller's to fix (everything but
    /// [`Unavailable`](Self::Unavailable) and [`Internal`](Self::Internal)).
    #[must_use]
    pub const fn is_client_error(self) -> bool {
        !matches!(self, Self::Unavailable | Self::Internal)
    }
}

/// Implemented by every domain error enum: its kind and its stable code.
pub trait DomainError: std::error::Error {
    /// The kind, which decides the HTTP status.
    fn kind(&self) -> ErrorKind;
    /// The stable, machine-readable code (`tenancy.slug_taken`).
    fn code(&self) -> &'static str;
}

/// An infrastructure failure (database, network) carried through a domain
/// error without the domain knowing the infrastructure's types.
///
/// Its message is for logs only; callers see a generic text.
pub struct InfraError {
    kind: ErrorKind,
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl InfraError {
    /// A dependency that is down or timed out: worth retrying.
    pub fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self { kind: ErrorKind::Unavailable, source: source.into() }
    }

    /// A fault that retrying will not fix.
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self { kind: ErrorKind::Internal, source: source.into() }
    }

    /// [`ErrorKind::Unavailable`] or [`ErrorKind::Internal`].
    #[must_use]
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Debug for InfraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InfraError").field("kind", &self.kind).field("source", &self.source).finish()
    }
}

impl fmt::Display for InfraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Unavailable => write!(f, "dependency unavailable: {}", self.source),
            _ => write!(f, "internal failure: {}", self.source),
        }
    }
}

impl std::error::Error for InfraError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.source.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unavailable_and_internal_are_server_side() {
        let server_side: Vec<_> = ErrorKind::ALL.into_iter().filter(|k| !k.is_client_error()).collect();
        assert_eq!(server_side, vec![ErrorKind::Unavailable, ErrorKind::Internal]);
    }

    #[test]
    fn infra_error_keeps_its_kind_and_cause() {
        let err = InfraError::unavailable("pool timed out");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(err.to_string(), "dependency unavailable: pool timed out");
        let err = InfraError::internal("bad row");
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(std::error::Error::source(&err).is_some());
    }
}
