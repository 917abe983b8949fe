//! Errors of set-up (connect, bootstrap, migrate) and the mapping of database
//! failures into the domains' infrastructure errors.

use portico_kernel::InfraError;

/// A failure while connecting, bootstrapping or migrating.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The server refused or could not be reached.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[from] diesel::ConnectionError),
    /// A statement failed.
    #[error("database statement failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// Applying or reverting migrations failed.
    #[error("migrations failed: {0}")]
    Migration(String),
    /// A connection URL cannot be used.
    #[error("invalid database URL: {0}")]
    Url(String),
    /// A connection pool could not be built or handed out a connection.
    #[error("connection pool: {0}")]
    Pool(String),
    /// A name given for a database or role is not acceptable.
    #[error("invalid name `{0}`: use 1 to 63 of a-z, 0-9 and _")]
    Name(String),
}

/// A database error as the domains see it: a lost connection is worth a
/// retry, anything else is a fault.
pub(crate) fn infra(error: diesel::result::Error) -> InfraError {
    if connection_lost(&error) { InfraError::unavailable(error) } else { InfraError::internal(error) }
}

/// True when the connection itself is gone (server restart, fail-over,
/// `pg_terminate_backend`).
fn connection_lost(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    matches!(
        error,
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _)
            | Error::BrokenTransactionManager
    )
}

/// No connection could be had from a pool in time.
pub(crate) fn pool_infra(error: diesel_async::pooled_connection::deadpool::PoolError) -> InfraError {
    InfraError::unavailable(error)
}

/// What went wrong inside one store transaction: a domain rule, the
/// database, or the pool. Converted into the domain's error at the end.
#[derive(Debug)]
pub(crate) enum Failure<E> {
    Domain(E),
    Db(diesel::result::Error),
    Infra(InfraError),
}

impl<E> From<diesel::result::Error> for Failure<E> {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error)
    }
}

impl<E> Failure<E> {
    /// The same failure with its domain error converted by `f` (a use case
    /// of one domain calling into another's, inside one transaction).
    pub(crate) fn map_domain<F>(self, f: impl FnOnce(E) -> F) -> Failure<F> {
        match self {
            Self::Domain(error) => Failure::Domain(f(error)),
            Self::Db(error) => Failure::Db(error),
            Self::Infra(error) => Failure::Infra(error),
        }
    }
}

impl<E: From<InfraError>> Failure<E> {
    /// The domain error; `on_db` may recognise a database error first (a
    /// unique violation that means "taken"), else it becomes an [`InfraError`].
    pub(crate) fn resolve(self, on_db: impl FnOnce(&diesel::result::Error) -> Option<E>) -> E {
        match self {
            Self::Domain(error) => error,
            Self::Db(error) => on_db(&error).unwrap_or_else(|| E::from(infra(error))),
            Self::Infra(error) => E::from(error),
        }
    }
}

impl Failure<InfraError> {
    /// The failure of an operation with no domain errors of its own.
    pub(crate) fn into_infra(self) -> InfraError {
        self.resolve(|_| None)
    }
}

/// True when `error` is a unique violation of `constraint`.
pub(crate) fn is_unique_violation(error: &diesel::result::Error, constraint: &str) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some(constraint)
    )
}

/// True when `error` is a foreign-key violation (a row naming a parent that does not exist).
pub(crate) fn is_foreign_key_violation(error: &diesel::result::Error) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::ForeignKeyViolation, _)
    )
}
