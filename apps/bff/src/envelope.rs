//! Successful answers: `{"success":true,"data":…}` and, for lists,
//! `{"success":true,"data":[…],"meta":{"page","limit","total","totalPages"}}`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use portico_kernel::Page;
use serde::Serialize;
use serde_json::json;

/// `data` with status 200.
pub fn ok(data: impl Serialize) -> HttpResponse {
    with_status(StatusCode::OK, data)
}

/// `data` with status 201.
pub fn created(data: impl Serialize) -> HttpResponse {
    with_status(StatusCode::CREATED, data)
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

fn with_status(status: StatusCode, data: impl Serialize) -> HttpResponse {
    HttpResponse::build(status).json(json!({"success": true, "data": data}))
}
