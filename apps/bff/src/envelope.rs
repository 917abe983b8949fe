//! Successful answers: `{"success":true,"data":…}` and, for lists,
//! `{"success":true,"data":[…],"meta":{"page","limit","total","totalPages"}}`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use portico_kernel::Page;
use serde::Serialize;
use serde_json::json;

use crate::cache::Lookup;
use crate::error::ApiError;

/// `data` with status 200.
pub fn ok(data: impl Serialize) -> HttpResponse {
    with_status(StatusCode::OK, data)
}

/// `data` with status 201.
pub fn created(data: impl Serialize) -> HttpResponse {
    with_status(StatusCode::CREATED, data)
}

/// `data` accepted for work still to come (a confirmation, a job): 202.
pub fn accepted(data: impl Serialize) -> HttpResponse {
    with_status(StatusCode::ACCEPTED, data)
}

/// Nothing to say: 204.
pub fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

/// A page of rows with its numbers in `meta`.
pub fn page<T: Serialize>(page: &Page<T>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "success": true,
        "data": page.items,
        "meta": {"page": page.page, "limit": page.limit, "total": page.total, "totalPages": page.total_pages},
    }))
}

/// `data` serialised on its own, as the cache keeps it.
pub fn to_bytes(data: &impl Serialize) -> Result<bytes::Bytes, ApiError> {
    serde_json::to_vec(data).map(bytes::Bytes::from).map_err(|error| {
        tracing::error!(%error, "a response could not be serialised");
        ApiError::new(portico_kernel::ErrorKind::Internal, "internal", "The response could not be written.")
    })
}

/// `data` (already JSON) with status 200, saying whether it came from the cache.
pub fn cached(data: &[u8], lookup: Lookup) -> HttpResponse {
    let mut body = Vec::with_capacity(data.len() + 26);
    body.extend_from_slice(b"{\"success\":true,\"data\":");
    body.extend_from_slice(data);
    body.push(b'}');
    HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .insert_header((X_CACHE, lookup.header_value()))
        .body(body)
}

/// Says whether a read was served from the cache: `HIT` or `MISS`.
pub const X_CACHE: &str = "x-cache";

fn with_status(status: StatusCode, data: impl Serialize) -> HttpResponse {
    HttpResponse::build(status).json(json!({"success": true, "data": data}))
}
