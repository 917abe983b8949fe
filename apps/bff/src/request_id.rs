//! The request id: accepted from `X-Request-Id` when well-formed, else
//! generated; echoed back; on every log line of the request (its span) and in
//! every error envelope.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use portico_kernel::RequestId;
use tracing::Instrument;

/// The header that carries it, both ways.
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static CURRENT: RequestId;
}

/// The id of the request being served; a fresh one outside any request.
#[must_use]
pub fn current() -> RequestId {
    CURRENT.try_with(Clone::clone).unwrap_or_else(|_| RequestId::generate())
}

/// The id the middleware gave `req` (a fresh one outside the pipeline).
#[must_use]
pub fn of(req: &actix_web::HttpRequest) -> RequestId {
    req.extensions().get::<RequestId>().cloned().unwrap_or_else(RequestId::generate)
}

/// Middleware: resolves the id, opens the request's span, echoes the header.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(RequestId::parse)
        .unwrap_or_else(RequestId::generate);
    req.extensions_mut().insert(id.clone());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        route = tracing::field::Empty,
        tenant_id = tracing::field::Empty,
        user_id = tracing::field::Empty,
    );
    let header = HeaderValue::from_str(id.as_str()).ok();
    let started = std::time::Instant::now();
    let mut res = CURRENT.scope(id, next.call(req).instrument(span.clone())).await?;
    if let Some(route) = res.request().match_pattern() {
        span.record("route", route.as_str());
    }
    let status = res.status().as_u16();
    let millis = started.elapsed().as_secs_f64() * 1e3;
    span.in_scope(|| tracing::info!(status, millis = format!("{millis:.1}"), "request served"));
    if let Some(value) = header {
        res.headers_mut().insert(HeaderName::from_static(HEADER), value);
    }
    Ok(res)
}
