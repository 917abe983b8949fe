//! The `/api/v1` routes.
//!
//! [`ROUTES`] is the one list of routes: `configure` registers exactly these
//! (each resource answering 405 to other methods), and a test checks the
//! list against the OpenAPI document in both directions.

pub mod audit;
pub mod dev;
pub mod jobs;
pub mod public;
pub mod tenants;

use actix_web::{Route, web};

use crate::{error, openapi};

/// Every `/api/v1` route: method and path template.
pub const ROUTES: [(&str, &str); 14] = [
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/public/tenant"),
    ("GET", "/api/v1/tenants"),
    ("POST", "/api/v1/tenants"),
    ("GET", "/api/v1/tenants/{id}"),
    ("PUT", "/api/v1/tenants/{id}"),
    ("DELETE", "/api/v1/tenants/{id}"),
    ("POST", "/api/v1/tenants/{id}/suspend"),
    ("POST", "/api/v1/tenants/{id}/activate"),
    ("GET", "/api/v1/admin/jobs"),
    ("POST", "/api/v1/admin/jobs/{id}/retry"),
    ("GET", "/api/v1/dev/mailbox"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/admin/audit"),
];

/// The handler of a listed route.
fn route(method: &str, path: &str) -> Route {
    match (method, path) {
        ("GET", "/api/v1/openapi.json") => web::get().to(openapi::document),
        ("GET", "/api/v1/public/tenant") => web::get().to(public::tenant),
        ("GET", "/api/v1/tenants") => web::get().to(tenants::list),
        ("POST", "/api/v1/tenants") => web::post().to(tenants::create),
        ("GET", "/api/v1/tenants/{id}") => web::get().to(tenants::get),
        ("PUT", "/api/v1/tenants/{id}") => web::put().to(tenants::update),
        ("DELETE", "/api/v1/tenants/{id}") => web::delete().to(tenants::delete),
        ("POST", "/api/v1/tenants/{id}/suspend") => web::post().to(tenants::suspend),
        ("POST", "/api/v1/tenants/{id}/activate") => web::post().to(tenants::activate),
        ("GET", "/api/v1/admin/jobs") => web::get().to(jobs::overview),
        ("POST", "/api/v1/admin/jobs/{id}/retry") => web::post().to(jobs::retry),
        ("GET", "/api/v1/dev/mailbox") => web::get().to(dev::mailbox),
        ("GET", "/api/v1/audit") => web::get().to(audit::trail),
        ("GET", "/api/v1/admin/audit") => web::get().to(audit::platform_trail),
        // A listed route without a handler answers 404, which the route test reports.
        _ => web::route().to(error::not_found),
    }
}

/// Registers every route of [`ROUTES`].
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut paths: Vec<&str> = Vec::new();
    for (_, path) in ROUTES {
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    for path in paths {
        let mut resource = web::resource(path);
        for (method, _) in ROUTES.iter().filter(|(_, p)| *p == path) {
            resource = resource.route(route(method, path));
        }
        let allowed: Vec<&'static str> = ROUTES.iter().filter(|(_, p)| *p == path).map(|(m, _)| *m).collect();
        let refuse = move || {
            let allowed = allowed.clone();
            async move { error::method_not_allowed(&allowed) }
        };
        cfg.service(resource.default_service(web::to(refuse)));
    }
}
