//! API keys as credentials: `Authorization: Bearer ptk_<12 hex>_<64 hex>`.
//!
//! Looking a key up takes the database, so this middleware runs before rate
//! limiting and idempotency and leaves the request's `Auth` in its
//! extensions, where [`crate::auth::Auth::resolve`] finds it. An unknown,
//! revoked or expired key leaves nothing, and the request is answered 401.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};
use portico_kernel::Actor;
use portico_store::Store;

use crate::auth::Auth;
use crate::error::ApiError;

/// How every key begins.
pub const KEY_PREFIX: &str = "ptk_";

/// A new key: `ptk_`, 12 hex digits (its visible, unique prefix), `_`, and
/// 64 hex digits (256 random bits).
pub fn generate() -> Result<String, ApiError> {
    use portico_tenancy::mfa::random_hex;
    Ok(format!("{KEY_PREFIX}{}_{}", random_hex::<6>()?, random_hex::<32>()?))
}

/// Middleware: resolves an API key into the request's [`Auth`].
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let key = crate::auth::bearer(req.request()).filter(|t| t.starts_with(KEY_PREFIX)).map(str::to_owned);
    if let (Some(key), Some(store)) = (key, req.app_data::<web::Data<Store>>().cloned()) {
        match store.authenticate_api_key(&key).await {
            Ok(Some(principal)) => {
                let actor = Actor::ApiKey { key_id: principal.id, tenant_id: principal.tenant_id };
                let permissions = principal.permissions.into_iter().collect();
                match Auth::context(req.request(), principal.tenant_id, actor, permissions) {
                    Ok(ctx) => {
                        req.extensions_mut().insert(Auth { ctx, claims: None });
                    }
                    Err(error) => {
                        use actix_web::ResponseError as _;
                        let response = error.error_response();
                        return Ok(req.into_response(response).map_into_right_body());
                    }
                }
            }
            Ok(None) => {}
            Err(error) => {
                let error = ApiError::from(error);
                use actix_web::ResponseError as _;
                return Ok(req.into_response(error.error_response()).map_into_right_body());
            }
        }
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_have_a_visible_prefix_and_256_secret_bits() {
        let key = super::generate().unwrap();
        assert_eq!(key.len(), 4 + 12 + 1 + 64, "{key}");
        assert!(key.starts_with("ptk_") && key.as_bytes()[16] == b'_');
        assert_ne!(super::generate().unwrap(), key);
    }
}
