//! Configuration: `config/default.toml` -> `config/<environment>.toml` ->
//! `PORTICO__SECTION__KEY` environment variables. Secrets come only from the
//! environment (`DATABASE_URL`, `PORTICO_DATABASE_*_PASSWORD`).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Toml};
use portico_store::{PoolConfig, RolePasswords};

/// The defaults, compiled in so the binary runs from any directory.
const DEFAULTS: &str = include_str!("../../../config/default.toml");

/// Which set of settings applies (`PORTICO_ENV`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// `cargo run`: a local database is found or started, demo data seeded.
    Development,
    /// Automated tests.
    Test,
    /// Real deployments: `DATABASE_URL` is required.
    Production,
}

impl Environment {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "development" => Some(Self::Development),
            "test" => Some(Self::Test),
            "production" => Some(Self::Production),
            _ => None,
        }
    }

    /// The name, as in `config/<name>.toml`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Test => "test",
            Self::Production => "production",
        }
    }
}

/// The HTTP listener.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Largest JSON body a route accepts unless it sets its own (bytes).
    pub json_body_limit_bytes: usize,
    /// Browser origins allowed by CORS (`https://portal.example.com`).
    pub cors_allowed_origins: Vec<String>,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: crate::client::TrustedProxies,
}

/// `Idempotency-Key` handling.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencySection {
    /// How long a running request holds its key (seconds); longer than any request runs.
    pub lease_secs: u64,
    /// How long a response is kept for replay (hours).
    pub retention_hours: u64,
}

/// The read cache.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    /// Off: every read goes to the database.
    pub enabled: bool,
    /// Entries kept in memory.
    pub max_entries: u64,
    /// Lifetime of per-user data (seconds).
    pub user_ttl_secs: u64,
    /// Lifetime of tenant data (seconds).
    pub tenant_ttl_secs: u64,
    /// Lifetime of analytics (seconds).
    pub analytics_ttl_secs: u64,
    /// Lifetime of reports (seconds).
    pub reports_ttl_secs: u64,
}

/// Access tokens.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Lifetime of tokens minted by `portico token` (seconds).
    pub token_ttl_secs: i64,
    /// The portal's address: emailed links (password reset, email verification) point there.
    pub portal_url: String,
}

/// The database and its pools.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Database name on the server of `DATABASE_URL`.
    pub name: String,
    /// Connections as `portico_app`.
    pub app_pool_size: usize,
    /// Connections as `portico_platform`.
    pub platform_pool_size: usize,
    /// Wait for a free connection, in milliseconds.
    pub pool_wait_timeout_ms: u64,
    /// Time to open a connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Age after which a connection is replaced, in seconds.
    pub max_connection_lifetime_secs: u64,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logging.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `pretty` or `json`; unset: JSON in production, pretty elsewhere.
    #[serde(default)]
    pub format: Option<LogFormat>,
    /// Which lines to write, in `RUST_LOG` syntax (`RUST_LOG` wins when set).
    pub filter: String,
}

/// The background worker.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSection {
    /// Jobs run at once.
    pub concurrency: usize,
    /// Lease of a claimed job (seconds).
    pub lease_secs: u64,
    /// Poll interval of an idle worker (milliseconds).
    pub poll_interval_ms: u64,
    /// Time running jobs get to finish on shutdown (seconds).
    pub shutdown_grace_secs: u64,
    /// First retry delay (milliseconds).
    pub retry_base_ms: u64,
    /// Longest retry delay (seconds).
    pub retry_cap_secs: u64,
}

/// How email leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransport {
    /// Kept as files for the development mailbox.
    Mailbox,
    /// Sent over SMTP.
    Smtp,
}

/// Email delivery.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSection {
    /// `mailbox` or `smtp`.
    pub transport: EmailTransport,
    /// Sender display name.
    pub from_name: String,
    /// Sender address.
    pub from_address: String,
    /// SMTP server.
    pub smtp_host: String,
    /// SMTP port.
    pub smtp_port: u16,
    /// `starttls`, `tls` or `plain`.
    pub smtp_security: String,
    /// SMTP user; empty for none.
    pub smtp_username: String,
    /// Time a delivery may take (seconds).
    pub smtp_timeout_secs: u64,
}

/// Where uploaded files (logos) are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilesBackend {
    /// A directory on this machine (development, or a shared volume).
    Local,
    /// An S3-compatible object store.
    S3,
}

/// File storage.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesSection {
    /// `local` or `s3`.
    pub backend: FilesBackend,
    /// The directory of `local`; empty: `portico-files` in the state directory.
    pub local_dir: String,
    /// The S3 endpoint (`https://s3.eu-central-1.amazonaws.com`, `http://127.0.0.1:9000`).
    pub s3_endpoint: String,
    /// The bucket.
    pub s3_bucket: String,
    /// The region the requests are signed for.
    pub s3_region: String,
    /// The access key id; the secret is `PORTICO_S3_SECRET_ACCESS_KEY`.
    pub s3_access_key_id: String,
    /// Address the bucket in the path (MinIO, Ceph) rather than the host name.
    pub s3_path_style: bool,
}

/// Metering: the usage grace period and the thresholds readings are checked against.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeteringSection {
    /// Hours after usage is closed during which late events for it are still taken.
    pub usage_grace_hours: u32,
    /// Seconds a reading may be dated after now (devices' clocks drift).
    pub reading_future_skew_secs: u32,
    /// A consumption more than this many times the meter's trailing average is flagged.
    pub spike_factor: u32,
    /// Seconds a meter data source (an evcc) has to answer a pull.
    pub source_timeout_secs: u64,
    /// Let sources sit at loopback, private or link-local addresses (a self-hosted platform on
    /// the chargers' network); off, a tenant cannot make the worker reach the platform's network.
    pub allow_private_sources: bool,
}

/// Demo data.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedConfig {
    /// Create the demo tenants at start-up.
    pub demo_data: bool,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Files {
    http: HttpConfig,
    auth: AuthConfig,
    log: LogConfig,
    database: DatabaseConfig,
    worker: WorkerSection,
    email: EmailSection,
    seed: SeedConfig,
    files: FilesSection,
    idempotency: IdempotencySection,
    cache: CacheSection,
    rate_limit: crate::rate_limit::RateLimits,
    metering: MeteringSection,
}

/// Secrets, read from the environment only.
#[derive(Clone, Default)]
pub struct Secrets {
    /// `DATABASE_URL`: a role that may create roles and databases.
    pub database_url: Option<String>,
    /// `PORTICO_DATABASE_{OWNER,APP,PLATFORM}_PASSWORD`.
    pub role_passwords: RolePasswords,
    /// `PORTICO_JWT_SECRET`: signs access tokens (HS256).
    pub jwt_secret: Option<String>,
    /// `PORTICO_JWT_PREVIOUS_SECRETS`: comma-separated secrets rotated out,
    /// still verifying the tokens they signed until those expire.
    pub jwt_previous_secrets: Vec<String>,
    /// `PORTICO_SMTP_PASSWORD`.
    pub smtp_password: Option<String>,
    /// `PORTICO_MFA_KEY`: 64 hex digits (256 bits) sealing MFA secrets at rest.
    pub mfa_key: Option<String>,
    /// `PORTICO_S3_SECRET_ACCESS_KEY`: the S3 file store's secret.
    pub s3_secret_access_key: Option<String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("database_url", &self.database_url.as_deref().map(portico_store::redact_url))
            .field("role_passwords", &self.role_passwords)
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "<set>"))
            .field("jwt_previous_secrets", &self.jwt_previous_secrets.len())
            .field("smtp_password", &self.smtp_password.as_ref().map(|_| "<set>"))
            .field("mfa_key", &self.mfa_key.as_ref().map(|_| "<set>"))
            .field("s3_secret_access_key", &self.s3_secret_access_key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Everything Portico reads at start-up, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// Which environment's file was layered on.
    pub environment: Environment,
    /// The HTTP listener.
    pub http: HttpConfig,
    /// Access tokens.
    pub auth: AuthConfig,
    /// Logging.
    pub log: LogConfig,
    /// The database.
    pub database: DatabaseConfig,
    /// The background worker.
    pub worker: WorkerSection,
    /// Email delivery.
    pub email: EmailSection,
    /// Demo data.
    pub seed: SeedConfig,
    /// File storage.
    pub files: FilesSection,
    /// `Idempotency-Key` handling.
    pub idempotency: IdempotencySection,
    /// The read cache.
    pub cache: CacheSection,
    /// Rate limits per route class.
    pub rate_limit: crate::rate_limit::RateLimits,
    /// Metering's grace period and reading checks.
    pub metering: MeteringSection,
    /// Secrets from the environment.
    pub secrets: Secrets,
}

/// Why the configuration was refused: every bad key, one per line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .0.join("\n"))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Loads the layers for `PORTICO_ENV` (default `development`) from
    /// `PORTICO_CONFIG_DIR` (default `config/`) and the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        let dir =
            std::env::var_os("PORTICO_CONFIG_DIR").map_or_else(|| PathBuf::from("config"), PathBuf::from);
        Self::from_sources(&dir, &vars)
    }

    /// Loads from `dir` and the given environment variables (testable).
    pub fn from_sources(dir: &Path, vars: &[(String, String)]) -> Result<Self, ConfigError> {
        let var = |name: &str| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
        };
        let env_name = var("PORTICO_ENV").unwrap_or_else(|| "development".to_owned());
        let environment = Environment::parse(&env_name).ok_or_else(|| {
            ConfigError(vec![format!(
                "PORTICO_ENV: `{env_name}` is not one of development, test, production"
            )])
        })?;

        let mut figment = Figment::new()
            .merge(Toml::string(DEFAULTS))
            .merge(Toml::file(dir.join(format!("{}.toml", environment.name()))));
        for (name, value) in vars {
            if let Some(path) = name.strip_prefix("PORTICO__") {
                let key: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
                // Parsed as TOML-like scalars: "16" is a number, "true" a boolean.
                let value: figment::value::Value = value.parse().unwrap_or_else(|never| match never {});
                figment = figment.merge((key.join("."), value));
            }
        }
        let files = extract_every_section(&figment)?;

        let secrets = Secrets {
            database_url: var("DATABASE_URL"),
            role_passwords: RolePasswords::from_lookup(var),
            jwt_secret: var("PORTICO_JWT_SECRET"),
            jwt_previous_secrets: var("PORTICO_JWT_PREVIOUS_SECRETS")
                .map(|list| {
                    list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
                })
                .unwrap_or_default(),
            smtp_password: var("PORTICO_SMTP_PASSWORD"),
            mfa_key: var("PORTICO_MFA_KEY"),
            s3_secret_access_key: var("PORTICO_S3_SECRET_ACCESS_KEY"),
        };
        let config = Self {
            environment,
            http: files.http,
            auth: files.auth,
            log: files.log,
            database: files.database,
            worker: files.worker,
            email: files.email,
            seed: files.seed,
            files: files.files,
            idempotency: files.idempotency,
            cache: files.cache,
            rate_limit: files.rate_limit,
            metering: files.metering,
            secrets,
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let db = &self.database;
        if portico_store::DatabaseUrls::derive(
            "postgres://x@localhost/postgres",
            &db.name,
            &RolePasswords::default(),
        )
        .is_err()
        {
            problems
                .push("database.name: use 1 to 63 of a-z, 0-9 and _, not starting with a digit".to_owned());
        }
        for (key, value) in [
            ("database.app_pool_size", db.app_pool_size),
            ("database.platform_pool_size", db.platform_pool_size),
        ] {
            if !(1..=1000).contains(&value) {
                problems.push(format!("{key}: must be between 1 and 1000"));
            }
        }
        if self.metering.spike_factor < 2 {
            problems
                .push("metering.spike_factor: must be at least 2 (1 would flag every reading)".to_owned());
        }
        // A pull must end before the next one of a source pulled every 5 minutes is due.
        if !(1..=120).contains(&self.metering.source_timeout_secs) {
            problems.push("metering.source_timeout_secs: must be between 1 and 120".to_owned());
        }
        for (key, value) in [
            ("database.pool_wait_timeout_ms", db.pool_wait_timeout_ms),
            ("database.connect_timeout_ms", db.connect_timeout_ms),
            ("database.max_connection_lifetime_secs", db.max_connection_lifetime_secs),
        ] {
            if value == 0 {
                problems.push(format!("{key}: must be more than 0"));
            }
        }
        if self.environment == Environment::Production && self.secrets.database_url.is_none() {
            problems.push("DATABASE_URL: required in production".to_owned());
        }
        match &self.secrets.jwt_secret {
            Some(secret) if secret.len() < 32 => {
                problems.push("PORTICO_JWT_SECRET: must be at least 32 bytes".to_owned());
            }
            None if self.environment == Environment::Production => {
                problems.push("PORTICO_JWT_SECRET: required in production".to_owned());
            }
            _ => {}
        }
        match &self.secrets.mfa_key {
            Some(key) if parse_key(key).is_none() => {
                problems.push("PORTICO_MFA_KEY: must be 64 hex digits (256 bits)".to_owned());
            }
            None if self.environment == Environment::Production => {
                problems.push("PORTICO_MFA_KEY: required in production".to_owned());
            }
            _ => {}
        }
        if self.files.backend == FilesBackend::Local
            && self.files.local_dir.is_empty()
            && self.environment == Environment::Production
        {
            problems.push(
                "files.backend: production keeps files in an S3-compatible store (`s3`), or in a `local_dir` that \
                 every instance shares"
                    .to_owned(),
            );
        }
        if self.files.backend == FilesBackend::S3 {
            let f = &self.files;
            for (key, value) in [
                ("files.s3_endpoint", &f.s3_endpoint),
                ("files.s3_bucket", &f.s3_bucket),
                ("files.s3_region", &f.s3_region),
                ("files.s3_access_key_id", &f.s3_access_key_id),
            ] {
                if value.is_empty() {
                    problems.push(format!("{key}: required when files.backend is s3"));
                }
            }
            if self.secrets.s3_secret_access_key.is_none() {
                problems.push("PORTICO_S3_SECRET_ACCESS_KEY: required when files.backend is s3".to_owned());
            }
        }
        if !(60..=30 * 24 * 3600).contains(&self.auth.token_ttl_secs) {
            problems.push("auth.token_ttl_secs: must be between 60 and 2592000".to_owned());
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.http.json_body_limit_bytes) {
            problems.push("http.json_body_limit_bytes: must be between 1024 and 67108864".to_owned());
        }
        for origin in &self.http.cors_allowed_origins {
            let parsed = url::Url::parse(origin).ok().filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.path() == "/"
                    && !origin.ends_with('/')
                    && u.query().is_none()
            });
            if parsed.is_none() {
                problems.push(format!(
                    "http.cors_allowed_origins: `{origin}` is not an origin like https://portal.example.com"
                ));
            }
        }
        let worker = &self.worker;
        if !(1..=256).contains(&worker.concurrency) {
            problems.push("worker.concurrency: must be between 1 and 256".to_owned());
        }
        for (key, value) in [
            ("worker.lease_secs", worker.lease_secs),
            ("worker.poll_interval_ms", worker.poll_interval_ms),
            ("worker.retry_base_ms", worker.retry_base_ms),
            ("worker.retry_cap_secs", worker.retry_cap_secs),
        ] {
            if value == 0 {
                problems.push(format!("{key}: must be more than 0"));
            }
        }
        if self.email.transport == EmailTransport::Mailbox && self.environment == Environment::Production {
            problems.push("email.transport: production sends email: use smtp".to_owned());
        }
        if !matches!(self.email.smtp_security.as_str(), "starttls" | "tls" | "plain") {
            problems.push("email.smtp_security: one of starttls, tls, plain".to_owned());
        }
        if self.email.transport == EmailTransport::Smtp
            && !self.email.smtp_username.is_empty()
            && self.secrets.smtp_password.is_none()
        {
            problems.push("PORTICO_SMTP_PASSWORD: required when email.smtp_username is set".to_owned());
        }
        if !self.email.from_address.contains('@') {
            problems.push("email.from_address: an email address".to_owned());
        }
        if !(1..=3600).contains(&self.idempotency.lease_secs) {
            problems.push("idempotency.lease_secs: must be between 1 and 3600".to_owned());
        }
        if !(1..=24 * 30).contains(&self.idempotency.retention_hours) {
            problems.push("idempotency.retention_hours: must be between 1 and 720".to_owned());
        }
        let cache = &self.cache;
        for (key, value) in [
            ("cache.max_entries", cache.max_entries),
            ("cache.user_ttl_secs", cache.user_ttl_secs),
            ("cache.tenant_ttl_secs", cache.tenant_ttl_secs),
            ("cache.analytics_ttl_secs", cache.analytics_ttl_secs),
            ("cache.reports_ttl_secs", cache.reports_ttl_secs),
            ("rate_limit.max_buckets", self.rate_limit.max_buckets),
        ] {
            if value == 0 {
                problems.push(format!("{key}: must be more than 0"));
            }
        }
        if self.environment == Environment::Production && self.seed.demo_data {
            problems.push("seed.demo_data: demo data is refused in production".to_owned());
        }
        if problems.is_empty() { Ok(()) } else { Err(ConfigError(problems)) }
    }

    /// The log format in force.
    #[must_use]
    pub fn log_format(&self) -> LogFormat {
        self.log.format.unwrap_or(if self.environment == Environment::Production {
            LogFormat::Json
        } else {
            LogFormat::Pretty
        })
    }

    /// The token signing keys: `PORTICO_JWT_SECRET`, or (outside
    /// production, where it is required) this machine's development secret.
    #[must_use]
    pub fn token_keys(&self) -> crate::auth::TokenKeys {
        let previous = self.secrets.jwt_previous_secrets.iter().map(String::as_bytes);
        match &self.secrets.jwt_secret {
            Some(secret) => crate::auth::TokenKeys::new(secret.as_bytes()).with_previous(previous),
            None => crate::auth::TokenKeys::new(
                development_secret(&portico_db_discovery::default_state_dir()).as_bytes(),
            ),
        }
    }

    /// The box sealing MFA secrets: `PORTICO_MFA_KEY`, or (outside
    /// production, where it is required) this machine's development key.
    #[must_use]
    pub fn mfa_box(&self) -> portico_tenancy::mfa::SecretBox {
        let key = self.secrets.mfa_key.as_deref().and_then(parse_key).unwrap_or_else(|| {
            let dir = portico_db_discovery::default_state_dir();
            parse_key(development_file(&dir, "portico-dev-mfa-key").get(..64).unwrap_or_default())
                .unwrap_or([0; 32])
        });
        portico_tenancy::mfa::SecretBox::new(&key)
    }

    /// Metering's rules as the handlers and jobs use them.
    #[must_use]
    pub fn metering_rules(&self) -> crate::server::MeteringRules {
        crate::server::MeteringRules {
            usage_grace: chrono::Duration::hours(i64::from(self.metering.usage_grace_hours)),
            readings: portico_metering::ReadingRules {
                future_skew: chrono::Duration::seconds(i64::from(self.metering.reading_future_skew_secs)),
                spike_factor: rust_decimal::Decimal::from(self.metering.spike_factor),
            },
            source_timeout: Duration::from_secs(self.metering.source_timeout_secs.max(1)),
            allow_private_sources: self.metering.allow_private_sources,
        }
    }

    /// The server's settings (building the file store can fail).
    pub fn server(&self) -> Result<crate::server::Settings, ConfigError> {
        Ok(crate::server::Settings {
            addr: self.http.addr,
            token_keys: self.token_keys(),
            json_body_limit: self.http.json_body_limit_bytes,
            cors_allowed_origins: self.http.cors_allowed_origins.clone(),
            hsts: self.environment == Environment::Production,
            mfa: self.mfa_box(),
            files: crate::server::Files(self.file_store()?),
            links: crate::server::Links {
                portal_url: self.auth.portal_url.trim_end_matches('/').to_owned(),
                from: self.email_from(),
            },
            dev_mailbox: (self.environment == Environment::Development
                && self.email.transport == EmailTransport::Mailbox)
                .then(|| self.mailbox_dir()),
            trusted_proxies: self.http.trusted_proxies.clone(),
            rate_limits: self.rate_limit.clone(),
            metering: self.metering_rules(),
            idempotency: portico_store::IdempotencyTimes {
                lease: Duration::from_secs(self.idempotency.lease_secs),
                retention: Duration::from_secs(self.idempotency.retention_hours * 3600),
            },
            cache: crate::cache::CacheConfig {
                enabled: self.cache.enabled,
                max_entries: self.cache.max_entries,
                user_ttl: Duration::from_secs(self.cache.user_ttl_secs),
                tenant_ttl: Duration::from_secs(self.cache.tenant_ttl_secs),
                analytics_ttl: Duration::from_secs(self.cache.analytics_ttl_secs),
                reports_ttl: Duration::from_secs(self.cache.reports_ttl_secs),
            },
        })
    }

    /// The email sender this configuration asks for.
    pub fn email_sender(
        &self,
    ) -> Result<std::sync::Arc<dyn portico_kernel::EmailSender>, portico_kernel::EmailError> {
        let email = &self.email;
        Ok(match email.transport {
            EmailTransport::Mailbox => {
                std::sync::Arc::new(portico_smtp::FileMailbox::new(self.mailbox_dir()))
            }
            EmailTransport::Smtp => {
                let security = match email.smtp_security.as_str() {
                    "tls" => portico_smtp::Security::Tls,
                    "plain" => portico_smtp::Security::Plain,
                    _ => portico_smtp::Security::StartTls,
                };
                let credentials = (!email.smtp_username.is_empty()).then(|| {
                    (email.smtp_username.clone(), self.secrets.smtp_password.clone().unwrap_or_default())
                });
                std::sync::Arc::new(portico_smtp::SmtpSender::new(&portico_smtp::SmtpConfig {
                    host: email.smtp_host.clone(),
                    port: email.smtp_port,
                    security,
                    credentials,
                    timeout: Duration::from_secs(email.smtp_timeout_secs.max(1)),
                })?)
            }
        })
    }

    /// The file store this configuration asks for.
    pub fn file_store(&self) -> Result<std::sync::Arc<dyn portico_kernel::FileStore>, ConfigError> {
        let files = &self.files;
        Ok(match files.backend {
            FilesBackend::Local => {
                let dir = if files.local_dir.is_empty() {
                    portico_db_discovery::default_state_dir().join("portico-files")
                } else {
                    PathBuf::from(&files.local_dir)
                };
                std::sync::Arc::new(portico_files::LocalDirectory::new(dir))
            }
            FilesBackend::S3 => {
                let endpoint = url::Url::parse(&files.s3_endpoint)
                    .map_err(|e| ConfigError(vec![format!("files.s3_endpoint: {e}")]))?;
                let config = portico_files::S3Config {
                    endpoint,
                    bucket: files.s3_bucket.clone(),
                    region: files.s3_region.clone(),
                    access_key_id: files.s3_access_key_id.clone(),
                    secret_access_key: self.secrets.s3_secret_access_key.clone().unwrap_or_default(),
                    path_style: files.s3_path_style,
                };
                std::sync::Arc::new(
                    portico_files::S3Store::new(config)
                        .map_err(|e| ConfigError(vec![format!("files: {e}")]))?,
                )
            }
        })
    }

    /// Where the development mailbox keeps messages.
    #[must_use]
    pub fn mailbox_dir(&self) -> PathBuf {
        portico_db_discovery::default_state_dir().join("portico-mailbox")
    }

    /// The sender of platform email.
    #[must_use]
    pub fn email_from(&self) -> portico_kernel::Mailbox {
        portico_kernel::Mailbox::named(self.email.from_name.clone(), self.email.from_address.clone())
    }

    /// The worker's settings.
    #[must_use]
    pub fn worker(&self) -> portico_worker::WorkerConfig {
        let w = &self.worker;
        portico_worker::WorkerConfig {
            concurrency: w.concurrency,
            lease: Duration::from_secs(w.lease_secs),
            poll_interval: Duration::from_millis(w.poll_interval_ms),
            shutdown_grace: Duration::from_secs(w.shutdown_grace_secs),
            retry_base: Duration::from_millis(w.retry_base_ms),
            retry_cap: Duration::from_secs(w.retry_cap_secs),
        }
    }

    /// The pool settings for the store.
    #[must_use]
    pub fn pool(&self) -> PoolConfig {
        let db = &self.database;
        PoolConfig {
            app_max_size: db.app_pool_size,
            platform_max_size: db.platform_pool_size,
            wait_timeout: Duration::from_millis(db.pool_wait_timeout_ms),
            create_timeout: Duration::from_millis(db.connect_timeout_ms),
            recycle_timeout: Duration::from_millis(db.connect_timeout_ms),
            max_lifetime: Duration::from_secs(db.max_connection_lifetime_secs),
        }
    }
}

/// The sections, each extracted on its own so that bad keys in several
/// sections are all reported (serde stops at the first error of a value).
fn extract_every_section(figment: &Figment) -> Result<Files, ConfigError> {
    fn section<T: serde::de::DeserializeOwned>(
        figment: &Figment,
        name: &str,
        problems: &mut Vec<String>,
    ) -> Option<T> {
        figment
            .extract_inner::<T>(name)
            .map_err(|error| {
                for e in error {
                    let inner: Vec<&str> =
                        e.path.iter().map(String::as_str).filter(|part| *part != name).collect();
                    let key = std::iter::once(name).chain(inner).collect::<Vec<_>>().join(".");
                    problems.push(format!("{key}: {}", e.kind));
                }
            })
            .ok()
    }
    let mut problems = Vec::new();
    let http = section::<HttpConfig>(figment, "http", &mut problems);
    let auth = section::<AuthConfig>(figment, "auth", &mut problems);
    let log = section::<LogConfig>(figment, "log", &mut problems);
    let database = section::<DatabaseConfig>(figment, "database", &mut problems);
    let worker = section::<WorkerSection>(figment, "worker", &mut problems);
    let email = section::<EmailSection>(figment, "email", &mut problems);
    let seed = section::<SeedConfig>(figment, "seed", &mut problems);
    let files = section::<FilesSection>(figment, "files", &mut problems);
    let idempotency = section::<IdempotencySection>(figment, "idempotency", &mut problems);
    let cache = section::<CacheSection>(figment, "cache", &mut problems);
    let rate_limit = section::<crate::rate_limit::RateLimits>(figment, "rate_limit", &mut problems);
    let metering = section::<MeteringSection>(figment, "metering", &mut problems);
    // Unknown sections, which no section above reads.
    const SECTIONS: [&str; 12] = [
        "http",
        "auth",
        "log",
        "database",
        "worker",
        "email",
        "seed",
        "files",
        "idempotency",
        "cache",
        "rate_limit",
        "metering",
    ];
    if let Ok(top) = figment.extract::<figment::value::Dict>() {
        for name in top.keys().filter(|name| !SECTIONS.contains(&name.as_str())) {
            problems.push(format!("{name}: unknown section (expected one of {})", SECTIONS.join(", ")));
        }
    }
    match (http, auth, log, database, worker, email, seed, files, idempotency, cache, rate_limit, metering) {
        (
            Some(http),
            Some(auth),
            Some(log),
            Some(database),
            Some(worker),
            Some(email),
            Some(seed),
            Some(files),
            Some(idempotency),
            Some(cache),
            Some(rate_limit),
            Some(metering),
        ) if problems.is_empty() => Ok(Files {
            http,
            auth,
            log,
            database,
            worker,
            email,
            seed,
            files,
            idempotency,
            cache,
            rate_limit,
            metering,
        }),
        _ => Err(ConfigError(problems)),
    }
}

/// 64 hex digits as 32 bytes.
fn parse_key(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

/// A random secret made on first use and kept in `dir/portico-dev-jwt-secret`
/// (readable by its owner only), so `cargo run` and `portico token` agree
/// while no secret is written in the source. If it cannot be kept, a fresh
/// one is used for this process alone.
fn development_secret(dir: &Path) -> String {
    development_file(dir, "portico-dev-jwt-secret")
}

/// 96 random hex digits made on first use and kept in `dir/name` (mode
/// 0600); a fresh value for this process alone if it cannot be kept.
fn development_file(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    if let Ok(existing) = std::fs::read_to_string(&path)
        && existing.trim().len() >= 32
    {
        return existing.trim().to_owned();
    }
    let fresh: String = (0..3).map(|_| uuid::Uuid::new_v4().simple().to_string()).collect();
    let kept = std::fs::create_dir_all(dir).and_then(|()| {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
        file.write_all(fresh.as_bytes())
    });
    if kept.is_err() {
        tracing::warn!(file = name, "could not keep a development secret; it holds for this process only");
    }
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn development_is_the_default_and_seeds_demo_data() {
        let config = Config::from_sources(&dir(), &[]).unwrap();
        assert_eq!(config.environment, Environment::Development);
        assert_eq!(config.http.addr, "127.0.0.1:8080".parse().unwrap());
        assert!(config.seed.demo_data);
        assert_eq!(config.database.name, "portico");
    }

    #[test]
    fn the_environment_file_and_then_variables_override_defaults() {
        let config = Config::from_sources(
            &dir(),
            &vars(&[
                ("PORTICO_ENV", "test"),
                ("PORTICO__DATABASE__APP_POOL_SIZE", "7"),
                ("PORTICO__SEED__DEMO_DATA", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(config.environment, Environment::Test);
        assert_eq!(config.http.addr.port(), 0, "from test.toml");
        assert_eq!(config.database.app_pool_size, 7, "from the environment");
        assert!(config.seed.demo_data);
        assert_eq!(config.pool().app_max_size, 7);
    }

    #[test]
    fn every_bad_key_is_named() {
        let err = Config::from_sources(
            &dir(),
            &vars(&[
                ("PORTICO__DATABASE__NAME", "Bad Name"),
                ("PORTICO__DATABASE__APP_POOL_SIZE", "0"),
                ("PORTICO__DATABASE__POOL_WAIT_TIMEOUT_MS", "0"),
            ]),
        )
        .unwrap_err();
        let text = err.to_string();
        for key in ["database.name", "database.app_pool_size", "database.pool_wait_timeout_ms"] {
            assert!(text.contains(key), "{key} missing from: {text}");
        }
    }

    #[test]
    fn metering_thresholds_that_would_flag_everything_or_overlap_pulls_are_refused() {
        let err = Config::from_sources(
            &dir(),
            &vars(&[
                ("PORTICO__METERING__SPIKE_FACTOR", "1"),
                ("PORTICO__METERING__SOURCE_TIMEOUT_SECS", "600"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("metering.spike_factor") && err.contains("metering.source_timeout_secs"),
            "{err}"
        );
        let rules = Config::from_sources(&dir(), &[]).unwrap().metering_rules();
        assert_eq!((rules.usage_grace.num_hours(), rules.allow_private_sources), (72, false));
        assert_eq!(rules.readings.spike_factor, rust_decimal::Decimal::TEN);
    }

    #[test]
    fn bad_keys_in_several_sections_are_all_named_at_once() {
        let err = Config::from_sources(
            &dir(),
            &vars(&[
                ("PORTICO__HTTP__ADDR", "nowhere"),
                ("PORTICO__DATABASE__APP_POOL_SIZE", "many"),
                ("PORTICO__AUTH__TOKEN_TTL_SECS", "soon"),
                ("PORTICO__CACHE__SIZE", "1"),
            ]),
        )
        .unwrap_err();
        let text = err.to_string();
        for key in ["http.addr", "database.app_pool_size", "auth.token_ttl_secs", "cache"] {
            assert!(text.contains(key), "{key} missing from: {text}");
        }
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused_with_their_key() {
        let err = Config::from_sources(&dir(), &vars(&[("PORTICO__HTTP__PORT", "80")])).unwrap_err();
        assert!(err.to_string().contains("port"), "{err}");
        let err =
            Config::from_sources(&dir(), &vars(&[("PORTICO__HTTP__ADDR", "not an address")])).unwrap_err();
        assert!(err.to_string().contains("http.addr"), "{err}");
        let err = Config::from_sources(&dir(), &vars(&[("PORTICO_ENV", "staging")])).unwrap_err();
        assert!(err.to_string().contains("PORTICO_ENV"), "{err}");
    }

    #[test]
    fn logs_are_json_in_production_unless_told_otherwise() {
        let production = vars(&[
            ("PORTICO_ENV", "production"),
            ("DATABASE_URL", "postgres://a@b/postgres"),
            ("PORTICO_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("PORTICO_MFA_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"),
            ("PORTICO__EMAIL__TRANSPORT", "smtp"),
            ("PORTICO__FILES__LOCAL_DIR", "/srv/portico-files"),
        ]);
        assert_eq!(Config::from_sources(&dir(), &production).unwrap().log_format(), LogFormat::Json);
        assert_eq!(Config::from_sources(&dir(), &[]).unwrap().log_format(), LogFormat::Pretty);
        let forced = vars(&[("PORTICO__LOG__FORMAT", "json")]);
        assert_eq!(Config::from_sources(&dir(), &forced).unwrap().log_format(), LogFormat::Json);
        let bad = vars(&[("PORTICO__LOG__FORMAT", "xml")]);
        assert!(Config::from_sources(&dir(), &bad).unwrap_err().to_string().contains("log.format"));
    }

    #[test]
    fn the_development_secret_is_random_kept_and_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("portico-secret-test-{}", std::process::id()));
        let first = development_secret(&dir);
        assert!(first.len() >= 32);
        assert_eq!(development_secret(&dir), first, "kept between runs");
        let mode = std::fs::metadata(dir.join("portico-dev-jwt-secret")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let other = std::env::temp_dir().join(format!("portico-secret-test-{}-b", std::process::id()));
        assert_ne!(development_secret(&other), first, "each machine its own");
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&other);
    }

    #[test]
    fn production_sends_email_over_smtp() {
        let production = vars(&[
            ("PORTICO_ENV", "production"),
            ("DATABASE_URL", "postgres://a@b/postgres"),
            ("PORTICO_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("PORTICO_MFA_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"),
            ("PORTICO__EMAIL__TRANSPORT", "mailbox"),
        ]);
        let err = Config::from_sources(&dir(), &production).unwrap_err();
        assert!(err.0.iter().any(|p| p.starts_with("email.transport")), "{err}");
        let bad = vars(&[("PORTICO__EMAIL__SMTP_SECURITY", "ssl3")]);
        assert!(Config::from_sources(&dir(), &bad).unwrap_err().to_string().contains("email.smtp_security"));
    }

    #[test]
    fn the_development_mailbox_is_served_in_development_only() {
        assert!(Config::from_sources(&dir(), &[]).unwrap().server().unwrap().dev_mailbox.is_some());
        let test = vars(&[("PORTICO_ENV", "test")]);
        assert!(Config::from_sources(&dir(), &test).unwrap().server().unwrap().dev_mailbox.is_none());
        let smtp = vars(&[("PORTICO__EMAIL__TRANSPORT", "smtp")]);
        assert!(
            Config::from_sources(&dir(), &smtp).unwrap().server().unwrap().dev_mailbox.is_none(),
            "nothing lands there"
        );
    }

    #[test]
    fn an_smtp_user_needs_its_password() {
        let user =
            vars(&[("PORTICO__EMAIL__TRANSPORT", "smtp"), ("PORTICO__EMAIL__SMTP_USERNAME", "mailer")]);
        let err = Config::from_sources(&dir(), &user).unwrap_err();
        assert!(err.0.iter().any(|p| p.starts_with("PORTICO_SMTP_PASSWORD")), "{err}");
        let with_password = vars(&[
            ("PORTICO__EMAIL__TRANSPORT", "smtp"),
            ("PORTICO__EMAIL__SMTP_USERNAME", "mailer"),
            ("PORTICO_SMTP_PASSWORD", "s3cret"),
        ]);
        assert!(Config::from_sources(&dir(), &with_password).is_ok());
    }

    #[test]
    fn cors_origins_must_be_bare_origins() {
        let err = Config::from_sources(
            &dir(),
            &vars(&[(
                "PORTICO__HTTP__CORS_ALLOWED_ORIGINS",
                "[\"https://ok.example\", \"https://bad.example/path\", \"*\"]",
            )]),
        )
        .unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert!(err.0.iter().all(|p| p.starts_with("http.cors_allowed_origins")), "{err}");
    }

    #[test]
    fn production_needs_a_database_url_and_refuses_demo_data() {
        let err = Config::from_sources(
            &dir(),
            &vars(&[("PORTICO_ENV", "production"), ("PORTICO__SEED__DEMO_DATA", "true")]),
        )
        .unwrap_err();
        assert!(err.0.iter().any(|p| p.starts_with("DATABASE_URL")), "{err}");
        assert!(err.0.iter().any(|p| p.starts_with("seed.demo_data")), "{err}");
        assert!(err.0.iter().any(|p| p.starts_with("PORTICO_JWT_SECRET")), "{err}");
        assert!(err.0.iter().any(|p| p.starts_with("PORTICO_MFA_KEY")), "{err}");
        assert!(err.0.iter().any(|p| p.starts_with("files.backend")), "{err}");
        let short = Config::from_sources(&dir(), &vars(&[("PORTICO_MFA_KEY", "abcd")])).unwrap_err();
        assert!(short.0.iter().any(|p| p.starts_with("PORTICO_MFA_KEY: must be 64 hex digits")), "{short}");
        let ok = Config::from_sources(
            &dir(),
            &vars(&[
                ("PORTICO_ENV", "production"),
                ("DATABASE_URL", "postgres://admin:pw@db/postgres"),
                ("PORTICO_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
                ("PORTICO_MFA_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"),
                ("PORTICO__EMAIL__TRANSPORT", "smtp"),
                ("PORTICO__FILES__BACKEND", "s3"),
                ("PORTICO__FILES__S3_ENDPOINT", "https://s3.eu-central-1.amazonaws.com"),
                ("PORTICO__FILES__S3_BUCKET", "portico-files"),
                ("PORTICO__FILES__S3_ACCESS_KEY_ID", "AKIAEXAMPLE"),
                ("PORTICO_S3_SECRET_ACCESS_KEY", "s3-secret-example"),
            ]),
        )
        .unwrap();
        assert!(!format!("{:?}", ok.secrets).contains(":pw@"), "secrets are redacted in Debug output");
        assert!(!format!("{:?}", ok.secrets).contains("s3-secret-example"), "the S3 secret is redacted");
        assert!(ok.server().is_ok(), "the S3 file store is built");
        let half = Config::from_sources(
            &dir(),
            &vars(&[("PORTICO__FILES__BACKEND", "s3"), ("PORTICO__FILES__S3_BUCKET", "portico-files")]),
        )
        .unwrap_err();
        for key in ["files.s3_endpoint", "files.s3_access_key_id", "PORTICO_S3_SECRET_ACCESS_KEY"] {
            assert!(half.0.iter().any(|p| p.starts_with(key)), "{key}: {half}");
        }
    }
}
