//! `Idempotency-Key` on mutations: a retried request is answered with the
//! response of its first run, never run twice.
//!
//! Per route, as [`crate::api::ROUTES`] declares it. The key is scoped by the
//! tenant acted on and the principal (user or API key); the request's
//! fingerprint is its method, path and a hash of its body. The handler runs
//! with a [`Db`] bound to one transaction, and the response is stored in that
//! same transaction (see `portico_store::Unit`). Successes and domain
//! outcomes (404, 409, ...) pin the key; a refused request (400, 401, 403,
//! 408, 413, 415, 422, 428, 429) and a failure on our side (5xx) do not, and
//! nothing of it is kept.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError};
use futures_util::StreamExt;
use portico_kernel::{Actor, ErrorKind};
use portico_store::{Claim, Completion, IdempotencyScope, IdempotencyTimes, Store, StoredResponse};

use crate::api::{self, Idempotency};
use crate::auth::Auth;
use crate::db::Db;
use crate::error::ApiError;
use crate::json::BodyLimit;

/// The request header.
pub const KEY_HEADER: &str = "idempotency-key";
/// Set on a replayed response.
pub const REPLAYED_HEADER: &str = "idempotency-replayed";
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// Whether a response of this status is kept for replay.
#[must_use]
pub fn pins(status: StatusCode) -> bool {
    let refused = matches!(status.as_u16(), 400 | 401 | 403 | 408 | 413 | 415 | 422 | 428 | 429);
    (status.is_success() || status.is_client_error()) && !refused
}

/// Checks a client's key: 1 to 255 visible ASCII characters.
fn parse_key(value: &HeaderValue) -> Result<String, ApiError> {
    let key = value
        .to_str()
        .ok()
        .filter(|k| (1..=MAX_KEY_LEN).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
    key.map(str::to_owned).ok_or_else(|| {
        ApiError::with_status(
            StatusCode::BAD_REQUEST,
            "idempotency.invalid_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice).",
        )
    })
}

/// Middleware: applies the route's [`Idempotency`] declaration.
pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let declared = req
        .match_pattern()
        .and_then(|pattern| api::spec(req.method().as_str(), &pattern))
        .map_or(Idempotency::Exempt, |route| route.idempotency);
    let pass = |req: ServiceRequest, next: Next<_>| async move {
        next.call(req).await.map(ServiceResponse::map_into_boxed_body)
    };
    if declared == Idempotency::Exempt {
        return pass(req, next).await;
    }
    let key = match req.headers().get(KEY_HEADER).map(parse_key) {
        None if declared == Idempotency::Required => {
            return Ok(refuse(
                req,
                ApiError::with_status(
                    StatusCode::BAD_REQUEST,
                    "idempotency.key_required",
                    "This route moves money or credits: send an Idempotency-Key header.",
                ),
            ));
        }
        None => return pass(req, next).await,
        Some(Err(error)) => return Ok(refuse(req, error)),
        Some(Ok(key)) => key,
    };
    // Without an authenticated principal there is nothing to scope the key
    // by: the handler answers 401 or 403 and the key plays no part.
    let Ok(auth) = Auth::resolve(req.request()) else { return pass(req, next).await };
    let principal = match &auth.ctx.actor {
        Actor::User { user_id, .. } => user_id.into_uuid(),
        Actor::ApiKey { key_id, .. } => key_id.into_uuid(),
        Actor::System { .. } => return pass(req, next).await,
    };
    let (Some(store), Some(times)) = (
        req.app_data::<web::Data<Store>>().cloned(),
        req.app_data::<web::Data<IdempotencyTimes>>().map(|times| *times.get_ref()),
    ) else {
        return Ok(refuse(
            req,
            ApiError::new(ErrorKind::Internal, "internal", "Idempotency is not configured."),
        ));
    };
    let limit = req.app_data::<BodyLimit>().map_or(BodyLimit::DEFAULT.0, |limit| limit.0);
    let body = match read_body(&mut req, limit).await {
        Ok(body) => body,
        Err(error) => return Ok(refuse(req, error)),
    };
    let path = req.uri().path_and_query().map_or_else(|| req.path().to_owned(), ToString::to_string);
    let fingerprint = portico_store::fingerprint(req.method().as_str(), &path, &body);
    req.set_payload(bytes_payload(body));

    let scope = IdempotencyScope { tenant: auth.ctx.tenant_id, principal, key };
    let unit = match store.claim_idempotency_key(&scope, &fingerprint, times).await {
        Err(error) => return Ok(refuse(req, ApiError::infra(&error))),
        Ok(Claim::Replay(stored)) => return Ok(replay(req, &stored)),
        Ok(Claim::KeyReused) => {
            return Ok(refuse(
                req,
                ApiError::new(
                    ErrorKind::Validation,
                    "idempotency.key_reused",
                    "This Idempotency-Key was used for another request. Use a new key for a new request.",
                ),
            ));
        }
        Ok(Claim::InProgress) => return Ok(in_progress(req)),
        Ok(Claim::UnknownTenant) => {
            return Ok(refuse(
                req,
                ApiError::new(
                    ErrorKind::NotFound,
                    "tenancy.tenant_not_found",
                    "The tenant acted on does not exist.",
                ),
            ));
        }
        Ok(Claim::Fresh(unit)) => unit,
    };

    req.extensions_mut().insert(Db(store.within(&unit)));
    let res = match next.call(req).await {
        Ok(res) => res,
        Err(error) => {
            release(unit).await;
            return Err(error);
        }
    };
    if !pins(res.status()) {
        release(unit).await;
        return Ok(res.map_into_boxed_body());
    }
    let (request, response) = res.into_parts();
    let (head, body) = response.into_parts();
    let Ok(bytes) = actix_web::body::to_bytes(body).await else {
        release(unit).await;
        let error = ApiError::new(ErrorKind::Internal, "internal", "The response could not be read.");
        return Ok(ServiceResponse::new(request, error.error_response()));
    };
    let stored = StoredResponse {
        status: head.status().as_u16(),
        content_type: head
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        body: bytes.to_vec(),
    };
    match unit.commit(&stored).await {
        Ok(Completion::Committed) => {
            crate::cache_sync::after_commit(&request);
            Ok(ServiceResponse::new(request, head.set_body(BoxBody::new(bytes))))
        }
        Ok(Completion::Superseded) => Ok(in_progress(ServiceRequest::from_request(request))),
        Err(error) => Ok(ServiceResponse::new(request, ApiError::infra(&error).error_response())),
    }
}

/// Rolls back and frees the key of a request that does not pin it.
async fn release(unit: portico_store::Unit) {
    if let Err(error) = unit.abandon().await {
        // The claim then runs out with its lease; the key is usable again after it.
        tracing::warn!(error = %portico_kernel::redact::text(&error.to_string()), "idempotency key not released");
    }
}

fn refuse(req: ServiceRequest, error: ApiError) -> ServiceResponse<BoxBody> {
    req.into_response(error.error_response())
}

fn in_progress(req: ServiceRequest) -> ServiceResponse<BoxBody> {
    let mut response = ApiError::new(
        ErrorKind::Conflict,
        "idempotency.in_progress",
        "A request with this Idempotency-Key is still running. Retry after it has finished.",
    )
    .error_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    req.into_response(response)
}

fn replay(req: ServiceRequest, stored: &StoredResponse) -> ServiceResponse<BoxBody> {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    if let Some(content_type) = stored.content_type.as_deref() {
        response.insert_header((header::CONTENT_TYPE, content_type));
    }
    response.insert_header((HeaderName::from_static(REPLAYED_HEADER), HeaderValue::from_static("true")));
    req.into_response(response.body(stored.body.clone()))
}

/// Reads the whole body, refusing more than `limit` bytes with 413.
async fn read_body(req: &mut ServiceRequest, limit: usize) -> Result<Bytes, ApiError> {
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::with_status(
                StatusCode::BAD_REQUEST,
                "request.unreadable_body",
                "The body could not be read.",
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::with_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request.body_too_large",
                "The body is larger than this route accepts.",
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn bytes_payload(body: Bytes) -> actix_web::dev::Payload {
    actix_web::dev::Payload::from(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_pin_refusals_and_failures_do_not() {
        for status in [200, 201, 204, 404, 409, 410] {
            assert!(pins(StatusCode::from_u16(status).unwrap()), "{status} pins");
        }
        for status in [400, 401, 403, 413, 415, 422, 429, 500, 503] {
            assert!(!pins(StatusCode::from_u16(status).unwrap()), "{status} does not pin");
        }
    }

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert_eq!(parse_key(&HeaderValue::from_static("abc-123")).unwrap(), "abc-123");
        assert!(parse_key(&HeaderValue::from_static("")).is_err());
        assert!(parse_key(&HeaderValue::from_static("with space")).is_err());
        assert!(parse_key(&HeaderValue::from_str(&"k".repeat(256)).unwrap()).is_err());
        assert!(parse_key(&HeaderValue::from_str(&"k".repeat(255)).unwrap()).is_ok());
    }
}
