//! The HTTP server: routes and the state they share.

use std::net::SocketAddr;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpResponse, HttpServer, web};
use portico_kernel::RequestId;
use portico_store::Store;
use serde_json::json;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// PostgreSQL behind every domain port.
    pub store: Store,
}

/// Registers every route on an actix app.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live)).route("/health/ready", web::get().to(ready));
}

/// A bound, not yet awaited server.
pub struct Running {
    /// The address actually bound (port 0 resolved).
    pub addr: SocketAddr,
    /// Stops the server.
    pub handle: ServerHandle,
    /// Resolves when the server has stopped.
    pub server: Server,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// Binds `addr` and returns the server to await.
pub fn start(addr: SocketAddr, store: Store) -> std::io::Result<Running> {
    let state = web::Data::new(AppState { store });
    let http = HttpServer::new(move || App::new().app_data(state.clone()).configure(routes)).bind(addr)?;
    let addr = http.addrs().first().copied().ok_or_else(|| std::io::Error::other("bound to no address"))?;
    let server = http.run();
    Ok(Running { addr, handle: server.handle(), server })
}

/// The process is up.
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"success": true, "data": {"status": "live"}}))
}

/// The database answers as `portico_app` and every migration is applied.
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match state.store.migrations_current().await {
        Ok(true) => HttpResponse::Ok().json(json!({
            "success": true,
            "data": {"status": "ready", "database": "reachable", "migrations": "current"}
        })),
        Ok(false) => not_ready("health.migrations_pending", "The database schema is behind this version."),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            not_ready("health.database_unreachable", "The database cannot be reached.")
        }
    }
}

fn not_ready(code: &str, message: &str) -> HttpResponse {
    HttpResponse::ServiceUnavailable().json(json!({
        "success": false,
        "error": {
            "code": code,
            "message": message,
            "details": null,
            "statusCode": 503,
            "requestId": RequestId::generate().as_str(),
        }
    }))
}
