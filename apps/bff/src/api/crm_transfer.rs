//! CRM transfers: the streamed CSV import (row-level errors, matching existing records) and the export of leads and contacts. Every route is gated by the tenant's `crm` feature.

use actix_web::Route;

use crate::api::RouteSpec;

/// This area's routes, with their guarantees.
pub(crate) const ROUTES: &[RouteSpec] = &[];

/// The handler of one of [`ROUTES`].
pub(crate) fn handler(method: &str, path: &str) -> Option<Route> {
    let _ = (method, path);
    None
}

/// This area's part of the OpenAPI document.
#[derive(Debug, utoipa::OpenApi)]
#[openapi()]
pub(crate) struct Doc;
