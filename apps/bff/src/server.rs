//! The HTTP server: the pipeline and the routes.

use std::net::SocketAddr;

use actix_cors::Cors;
use actix_web::dev::{Server, ServerHandle};
use actix_web::http::header;
use actix_web::{App, HttpResponse, HttpServer, middleware, web};
use portico_store::Store;
use serde_json::json;

use crate::auth::TokenKeys;
use crate::cache::{Cache, CacheConfig};
use crate::client::TrustedProxies;
use crate::error::{self, ApiError};
use crate::metrics::{self, Metrics};
use crate::rate_limit::{RateLimiter, RateLimits};
use crate::{api, request_id};
use portico_store::IdempotencyTimes;

/// What the server needs besides the store.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on (port 0: any free port).
    pub addr: SocketAddr,
    /// Verifies bearer tokens.
    pub token_keys: TokenKeys,
    /// Largest JSON body a route accepts unless it sets its own.
    pub json_body_limit: usize,
    /// Browser origins allowed by CORS.
    pub cors_allowed_origins: Vec<String>,
    /// Send `Strict-Transport-Security` (production, behind TLS).
    pub hsts: bool,
    /// The development mailbox's directory; `None` outside development
    /// (its route then answers 404).
    pub dev_mailbox: Option<std::path::PathBuf>,
    /// Proxies whose `X-Forwarded-For` names the client (none: the peer is the client).
    pub trusted_proxies: TrustedProxies,
    /// Rate limits per route class.
    pub rate_limits: RateLimits,
    /// How long idempotency claims and records last.
    pub idempotency: IdempotencyTimes,
    /// The read cache.
    pub cache: CacheConfig,
    /// Where emailed links point, and who sends them.
    pub links: Links,
    /// Seals MFA secrets at rest.
    pub mfa: portico_tenancy::mfa::SecretBox,
    /// Where uploaded files (logos) are kept.
    pub files: Files,
    /// Metering's grace period and reading checks.
    pub metering: MeteringRules,
}

/// Metering's rules, as the handlers and jobs use them.
#[derive(Debug, Clone, Copy)]
pub struct MeteringRules {
    /// How long after usage is closed late events for it are still taken.
    pub usage_grace: chrono::Duration,
    /// The thresholds readings are checked against.
    pub readings: portico_metering::ReadingRules,
    /// How long a meter data source has to answer a pull.
    pub source_timeout: std::time::Duration,
    /// Whether sources may be at loopback, private or link-local addresses
    /// (a platform run on the chargers' own network); refused otherwise.
    pub allow_private_sources: bool,
}

impl Default for MeteringRules {
    fn default() -> Self {
        Self {
            usage_grace: chrono::Duration::hours(72),
            readings: portico_metering::ReadingRules::default(),
            source_timeout: std::time::Duration::from_secs(10),
            allow_private_sources: false,
        }
    }
}

/// The file store the handlers share.
#[derive(Clone)]
pub struct Files(pub std::sync::Arc<dyn portico_kernel::FileStore>);

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Files(..)")
    }
}

/// Where emailed links point, and who sends the emails.
#[derive(Debug, Clone)]
pub struct Links {
    /// The portal's address, without a trailing slash.
    pub portal_url: String,
    /// The sender.
    pub from: portico_kernel::Mailbox,
}

impl Settings {
    /// Settings for tests and tools: port 0, no CORS origins, no HSTS.
    #[must_use]
    pub fn local(token_keys: TokenKeys) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            token_keys,
            json_body_limit: 1024 * 1024,
            cors_allowed_origins: Vec::new(),
            hsts: false,
            dev_mailbox: None,
            trusted_proxies: TrustedProxies::default(),
            rate_limits: RateLimits::default(),
            idempotency: IdempotencyTimes::default(),
            cache: CacheConfig::default(),
            links: Links {
                portal_url: "http://localhost:3000".to_owned(),
                from: portico_kernel::Mailbox::named("Portico", "no-reply@portico.localhost"),
            },
            mfa: portico_tenancy::mfa::SecretBox::new(&[0x5a; 32]),
            // Keys start with the tenant's id, so tests sharing the directory never meet.
            files: Files(std::sync::Arc::new(portico_files::LocalDirectory::new(
                std::env::temp_dir().join("portico-test-files"),
            ))),
            metering: MeteringRules::default(),
        }
    }
}

/// The content security policy of the docs page: everything from this
/// server (the page loads nothing from the internet), inline styles for
/// swagger-ui's layout, no framing.
const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'none'";

/// `/docs/`: swagger-ui, served from the binary, reading `/api/v1/openapi.json`.
fn docs() -> actix_web::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let config = utoipa_swagger_ui::Config::new(["/api/v1/openapi.json"]).validator_url("none");
    web::scope("/docs")
        .wrap(middleware::DefaultHeaders::new().add((header::CONTENT_SECURITY_POLICY, DOCS_CSP)))
        .service(utoipa_swagger_ui::SwaggerUi::new("/{_:.*}").config(config))
}

/// The content security policy of API answers: JSON loads nothing.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// CORS: the configured origins only; others get no CORS headers (the
/// browser then keeps the answer from the page) rather than an error.
fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static(request_id::HEADER),
            header::HeaderName::from_static(crate::auth::TENANT_HEADER),
            header::HeaderName::from_static(crate::api::public::SLUG_HEADER),
            header::HeaderName::from_static("idempotency-key"),
            header::HeaderName::from_static(crate::browser::CSRF_HEADER),
        ])
        .expose_headers([
            header::HeaderName::from_static(request_id::HEADER),
            header::RETRY_AFTER,
            header::HeaderName::from_static("ratelimit-limit"),
            header::HeaderName::from_static("ratelimit-remaining"),
            header::HeaderName::from_static("ratelimit-reset"),
            header::HeaderName::from_static(crate::idempotency::REPLAYED_HEADER),
            header::HeaderName::from_static(crate::envelope::X_CACHE),
        ])
        .supports_credentials()
        .block_on_origin_mismatch(false)
        .max_age(3600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// Security headers on every answer (a route that sets its own CSP keeps it).
fn security_headers(hsts: bool) -> middleware::DefaultHeaders {
    let headers = middleware::DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::CONTENT_SECURITY_POLICY, API_CSP));
    if hsts {
        headers.add((header::STRICT_TRANSPORT_SECURITY, "max-age=31536000; includeSubDomains"))
    } else {
        headers
    }
}

/// Builds the app: middleware, extractor settings, routes, fallbacks.
/// `cache` is kept coherent by [`crate::cache_sync::keep_coherent`], which
/// [`start`] runs.
pub fn configure(
    store: Store,
    cache: Cache,
    settings: &Settings,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    let store = web::Data::new(store);
    let cache = web::Data::new(cache);
    let keys = web::Data::new(settings.token_keys.clone());
    let metrics = web::Data::new(Metrics::default());
    let mailbox = web::Data::new(crate::api::dev::DevMailbox(
        settings.dev_mailbox.clone().map(portico_smtp::FileMailbox::new),
    ));
    let json_limit = settings.json_body_limit;
    let trusted_proxies = web::Data::new(settings.trusted_proxies.clone());
    let rate_limiter = web::Data::new(RateLimiter::new(settings.rate_limits.clone()));
    let idempotency = web::Data::new(settings.idempotency);
    let links = web::Data::new(settings.links.clone());
    let mfa = web::Data::new(settings.mfa.clone());
    let files = web::Data::new(settings.files.clone());
    let metering = web::Data::new(settings.metering);
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(store.clone())
            .app_data(cache.clone())
            .app_data(trusted_proxies.clone())
            .app_data(rate_limiter.clone())
            .app_data(idempotency.clone())
            .app_data(links.clone())
            .app_data(mfa.clone())
            .app_data(files.clone())
            .app_data(metering.clone())
            .app_data(keys.clone())
            .app_data(metrics.clone())
            .app_data(mailbox.clone())
            // The body limit of `json::Json` bodies; a route may set its own.
            .app_data(web::PayloadConfig::new(json_limit))
            .app_data(crate::json::BodyLimit(json_limit))
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .route("/health/live", web::get().to(live))
            .route("/health/ready", web::get().to(ready))
            .route("/metrics", web::get().to(metrics::scrape))
            .configure(api::configure)
            .route("/docs", web::get().to(docs_redirect))
            .service(docs())
            .default_service(web::to(error::not_found));
    }
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

/// Binds and returns the server to await.
/// Also starts listening for other instances' changes (the cache is
/// bypassed until that connection is up).
pub fn start(store: Store, settings: &Settings) -> std::io::Result<Running> {
    // The decoy hash that unknown emails are checked against is made now,
    // not by the first sign-in with an unknown email (which would take twice
    // as long as the others, and tell).
    std::thread::spawn(|| {
        portico_tenancy::password::decoy_hash();
    });
    let cache = Cache::new(settings.cache.clone());
    if settings.cache.enabled {
        tokio::spawn(crate::cache_sync::keep_coherent(store.clone(), cache.clone()));
    }
    let routes = configure(store, cache, settings);
    let (origins, hsts) = (settings.cors_allowed_origins.clone(), settings.hsts);
    let http = HttpServer::new(move || {
        // The last `wrap` runs first: request id and span around everything,
        // then metrics, security headers (on every answer, fallbacks too),
        // the envelope for library-written errors, CORS, compression.
        App::new()
            .wrap(middleware::Compress::default())
            .wrap(cors(&origins))
            .wrap(middleware::from_fn(crate::auth::live_sessions))
            .wrap(middleware::from_fn(crate::api_keys::middleware))
            .wrap(middleware::from_fn(error::envelope_fallback))
            .wrap(security_headers(hsts))
            .wrap(middleware::from_fn(metrics::middleware))
            .wrap(middleware::from_fn(request_id::middleware))
            .configure(routes.clone())
    })
    .bind(settings.addr)?;
    let addr = http.addrs().first().copied().ok_or_else(|| std::io::Error::other("bound to no address"))?;
    let server = http.run();
    Ok(Running { addr, handle: server.handle(), server })
}

/// `/docs` -> `/docs/` (the page's assets are relative to it).
async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect().insert_header((header::LOCATION, "/docs/")).finish()
}

/// The process is up.
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"success": true, "data": {"status": "live"}}))
}

/// The database answers as `portico_app` and every migration is applied.
async fn ready(store: web::Data<Store>) -> Result<HttpResponse, ApiError> {
    use portico_kernel::ErrorKind::Unavailable;
    match store.migrations_current().await {
        Ok(true) => Ok(HttpResponse::Ok().json(json!({
            "success": true,
            "data": {"status": "ready", "database": "reachable", "migrations": "current"}
        }))),
        Ok(false) => Err(ApiError::new(
            Unavailable,
            "health.migrations_pending",
            "The database schema is behind this version.",
        )),
        Err(error) => {
            tracing::warn!(error = %portico_kernel::redact::text(&error.to_string()), "readiness check failed");
            Err(ApiError::new(Unavailable, "health.database_unreachable", "The database cannot be reached."))
        }
    }
}
