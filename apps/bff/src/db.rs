//! The store as handlers see it.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use portico_kernel::ErrorKind;
use portico_store::Store;

use crate::error::ApiError;

/// The store a handler works with. For a request under an `Idempotency-Key`
/// it is bound to the request's transaction, so the handler's changes and the
/// stored response commit together; otherwise it is the plain store. Handlers
/// take this, never `web::Data<Store>`.
///
/// A bound store stays on the pool of its first call: a handler needing both
/// the app and the platform pool cannot run under a key (it fails with 500).
#[derive(Debug, Clone)]
pub struct Db(pub Store);

impl std::ops::Deref for Db {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.0
    }
}

impl FromRequest for Db {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some(bound) = req.extensions().get::<Self>() {
            return ready(Ok(bound.clone()));
        }
        ready(
            req.app_data::<web::Data<Store>>().map(|store| Self(store.get_ref().clone())).ok_or_else(|| {
                ApiError::new(ErrorKind::Internal, "internal", "The store is not configured.")
            }),
        )
    }
}
