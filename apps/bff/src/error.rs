//! Every error the API answers, in one envelope:
//! `{"success":false,"error":{"code","message","details","statusCode","requestId"}}`.
//! The HTTP status of each `ErrorKind` is decided here and nowhere else.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use portico_credits::CreditsError;
use portico_kernel::{DomainError, ErrorKind, RequestId, ValidationErrors};
use portico_tenancy::TenancyError;
use serde_json::{Value, json};

/// The one status of each kind.
#[must_use]
pub const fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Validation => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::PaymentRequired => StatusCode::PAYMENT_REQUIRED,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error as the API answers it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error of `kind` with a stable `code` and a message for people.
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self::with_status(status_of(kind), code, message)
    }

    /// For the few HTTP-level errors that have no domain kind (405, 413, 415).
    pub fn with_status(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: Value::Null, retry_after: None }
    }

    /// Adds machine-readable details (the failing fields of a body, ...).
    #[must_use]
    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Tells the client to wait `secs` seconds before trying again (`Retry-After`).
    #[must_use]
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// A failed validation, naming each field.
    pub fn invalid(code: &'static str, errors: &ValidationErrors) -> Self {
        Self::new(ErrorKind::Validation, code, "The request has invalid fields.")
            .details(json!({ "fields": errors }))
    }

    /// Any domain error; a server-side one is logged and answered without internals.
    pub fn from_domain(error: &(impl DomainError + ?Sized)) -> Self {
        let kind = error.kind();
        if kind.is_client_error() {
            Self::new(kind, error.code(), error.to_string())
        } else {
            let detail = portico_kernel::redact::text(&error.to_string());
            tracing::error!(code = error.code(), error = %detail, "request failed on our side");
            Self::server_side(kind, error.code())
        }
    }

    /// A store failure outside any domain operation: logged, answered 503 or 500.
    pub fn infra(error: &portico_kernel::InfraError) -> Self {
        let code = if error.kind() == ErrorKind::Unavailable { "store.unavailable" } else { "internal" };
        let detail = portico_kernel::redact::text(&error.to_string());
        tracing::error!(code, error = %detail, "request failed on our side");
        Self::server_side(error.kind(), code)
    }

    fn server_side(kind: ErrorKind, code: &'static str) -> Self {
        let message = match kind {
            ErrorKind::Unavailable => "A service Portico depends on is unavailable. Try again shortly.",
            _ => "Something went wrong on our side. The request id identifies it in our logs.",
        };
        Self::new(kind, code, message)
    }

    /// The stable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The envelope body.
    #[must_use]
    pub fn body(&self, request_id: &RequestId) -> Value {
        json!({
            "success": false,
            "error": {
                "code": self.code,
                "message": self.message,
                "details": self.details,
                "statusCode": self.status.as_u16(),
                "requestId": request_id.as_str(),
            }
        })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            response.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        response.json(self.body(&crate::request_id::current()))
    }
}

impl From<TenancyError> for ApiError {
    fn from(error: TenancyError) -> Self {
        match &error {
            TenancyError::Invalid(fields)
            | TenancyError::InvalidSettings(fields)
            | TenancyError::InvalidBranding(fields)
            | TenancyError::InvalidOnboarding(fields) => Self::invalid(error.code(), fields),
            _ => Self::from_domain(&error),
        }
    }
}

impl From<CreditsError> for ApiError {
    fn from(error: CreditsError) -> Self {
        match &error {
            CreditsError::Invalid(fields) => Self::invalid(error.code(), fields),
            _ => Self::from_domain(&error),
        }
    }
}

impl From<portico_metering::MeteringError> for ApiError {
    fn from(error: portico_metering::MeteringError) -> Self {
        use portico_metering::MeteringError;
        match &error {
            MeteringError::Invalid(fields) => Self::invalid(error.code(), fields),
            MeteringError::ReadingsRefused(refused) => {
                let message = format!("{} readings were refused; nothing was stored.", refused.len());
                Self::new(ErrorKind::Validation, error.code(), message)
                    .details(json!({ "readings": refused }))
            }
            MeteringError::UsageClosed { closed_through, events } => {
                let message = "Every event of the batch falls in usage closed past its grace period; nothing was stored.";
                Self::new(ErrorKind::Validation, error.code(), message)
                    .details(json!({ "closed": events, "closedThrough": closed_through }))
            }
            MeteringError::ImportRefused(report) => {
                let message = format!("{} rows cannot be imported; nothing was written.", report.error_count);
                Self::new(ErrorKind::Validation, error.code(), message)
                    .details(serde_json::to_value(report).unwrap_or_default())
            }
            _ => Self::from_domain(&error),
        }
    }
}

impl From<portico_crm::CrmError> for ApiError {
    fn from(error: portico_crm::CrmError) -> Self {
        use portico_crm::CrmError;
        match &error {
            CrmError::Invalid(fields) => Self::invalid(error.code(), fields),
            CrmError::StageHasDeals { deals } => Self::from_domain(&error).details(json!({ "deals": deals })),
            CrmError::ImportRefused(report) => {
                let message = format!("{} rows cannot be imported; nothing was written.", report.error_count);
                Self::new(ErrorKind::Validation, error.code(), message)
                    .details(serde_json::to_value(report).unwrap_or_default())
            }
            _ => Self::from_domain(&error),
        }
    }
}

/// Bad path parameters (a malformed UUID, ...).
pub fn path_error(error: actix_web::error::PathError, _: &HttpRequest) -> actix_web::Error {
    let actix_web::error::PathError::Deserialize(inner) = &error else {
        return ApiError::with_status(
            StatusCode::BAD_REQUEST,
            "request.invalid_path",
            "The path is not valid.",
        )
        .into();
    };
    ApiError::with_status(
        StatusCode::BAD_REQUEST,
        "request.invalid_path",
        format!("The path is not valid: {inner}."),
    )
    .into()
}

/// Bad query strings (a page that is not a number, an unknown status, ...).
pub fn query_error(error: actix_web::error::QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    let message = match &error {
        actix_web::error::QueryPayloadError::Deserialize(inner) => {
            format!("The query is not valid: {inner}.")
        }
        _ => "The query is not valid.".to_owned(),
    };
    ApiError::with_status(StatusCode::BAD_REQUEST, "request.invalid_query", message).into()
}

/// Middleware: an error answer that is not already the envelope (written by
/// a library: a refused CORS preflight, a missing docs asset) is replaced by
/// one with the same status and no internals.
pub async fn envelope_fallback(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<
    actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>,
    actix_web::Error,
> {
    let res = next.call(req).await?;
    let is_envelope = res
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if res.status().as_u16() < 400 || is_envelope {
        return Ok(res.map_into_left_body());
    }
    let response = fallback(res.status()).error_response();
    let (request, _) = res.into_parts();
    Ok(actix_web::dev::ServiceResponse::new(request, response).map_into_right_body())
}

/// The envelope for an error status written by someone else.
fn fallback(status: StatusCode) -> ApiError {
    let (code, message) = match status.as_u16() {
        400 => ("http.bad_request", "The request was refused."),
        404 => ("http.route_not_found", "No such route."),
        405 => ("http.method_not_allowed", "This route does not take that method."),
        500.. => ("internal", "Something went wrong on our side. The request id identifies it in our logs."),
        _ => ("http.refused", "The request was refused."),
    };
    ApiError::with_status(status, code, message)
}

/// No route has this path.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorKind::NotFound, "http.route_not_found", "No such route."))
}

/// The path exists but not with this method: 405, with `Allow` listing `allowed`.
#[must_use]
pub fn method_not_allowed(allowed: &[&str]) -> HttpResponse {
    let error = ApiError::with_status(
        StatusCode::METHOD_NOT_ALLOWED,
        "http.method_not_allowed",
        "This route does not take that method.",
    );
    let mut response = error.error_response();
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allowed.join(", ")) {
        response.headers_mut().insert(actix_web::http::header::ALLOW, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_exactly_one_status() {
        let statuses: Vec<u16> = ErrorKind::ALL.into_iter().map(|k| status_of(k).as_u16()).collect();
        assert_eq!(statuses, vec![404, 409, 422, 401, 403, 402, 429, 503, 500]);
    }

    #[test]
    fn server_side_errors_carry_no_internals() {
        let error =
            TenancyError::Store(portico_kernel::InfraError::internal("relation \"tenants\" does not exist"));
        let api = ApiError::from(error);
        let body = api.body(&RequestId::generate()).to_string();
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.contains("relation") && !body.contains("tenants"), "{body}");
        assert_eq!(api.code(), "internal");
    }

    #[test]
    fn validation_errors_name_their_fields() {
        let api = ApiError::from(TenancyError::Invalid(ValidationErrors::field("slug", "is reserved")));
        let body = api.body(&RequestId::generate());
        assert_eq!(body["error"]["statusCode"], 422);
        assert_eq!(body["error"]["code"], "tenancy.invalid_tenant");
        assert_eq!(body["error"]["details"]["fields"][0]["field"], "slug");
    }

    #[test]
    fn credits_errors_keep_their_codes_and_a_short_balance_is_402() {
        let short = CreditsError::InsufficientBalance {
            channel: portico_credits::Channel::Sms,
            requested: 5,
            available: 2,
        };
        let api = ApiError::from(short);
        assert_eq!((api.status, api.code()), (StatusCode::PAYMENT_REQUIRED, "credits.insufficient_balance"));
        let invalid = ApiError::from(CreditsError::Invalid(ValidationErrors::field("amount", "at least 1")));
        let body = invalid.body(&RequestId::generate());
        assert_eq!(body["error"]["code"], "credits.invalid");
        assert_eq!(body["error"]["details"]["fields"][0]["field"], "amount");
    }
}
