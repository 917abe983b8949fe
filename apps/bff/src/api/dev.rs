//! Development-only routes: they answer 404 outside development.

use actix_web::{HttpResponse, web};
use portico_kernel::ErrorKind;
use portico_smtp::FileMailbox;

use crate::envelope;
use crate::error::ApiError;
#[allow(unused_imports)] // the OpenAPI attributes name these
use crate::openapi::{ErrorEnvelope, MailboxEnvelope};

/// The development mailbox, when enabled.
#[derive(Debug, Clone)]
pub struct DevMailbox(pub Option<FileMailbox>);

/// The 50 newest emails the platform "sent" in development, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/dev/mailbox",
    tag = "dev",
    responses(
        (status = 200, description = "Kept emails, newest first.", body = MailboxEnvelope),
        (status = 404, description = "Not development (`http.route_not_found`).", body = ErrorEnvelope),
    ),
    security(())
)]
pub async fn mailbox(mailbox: web::Data<DevMailbox>) -> Result<HttpResponse, ApiError> {
    match &mailbox.0 {
        Some(mailbox) => Ok(envelope::ok(mailbox.newest(50))),
        None => Err(ApiError::new(ErrorKind::NotFound, "http.route_not_found", "No such route.")),
    }
}
