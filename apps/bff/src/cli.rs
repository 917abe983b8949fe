//! The `portico` command: serve (the default), migrate, db bootstrap.

use std::process::ExitCode;

use portico_db_discovery::{Source, default_state_dir, discover};
use portico_kernel::{PLATFORM_TENANT_ID, PageRequest, PlatformContext, TenantId, UserId};
use portico_store::{DatabaseUrls, Store, bootstrap, redact_url, run_migrations};
use portico_tenancy::{TenantFilter, TenantStore};

use crate::config::{Config, Environment, LogFormat};
use crate::{seed, server};

const USAGE: &str = "\
usage: portico [COMMAND]

commands:
  serve          bootstrap the database, seed demo data (development) and serve the API (default)
  worker         run background jobs until SIGTERM or Ctrl-C (finishes or releases running jobs)
  migrate        apply pending migrations and exit
  db bootstrap   create the roles, the database, the schema and the platform tenant, and exit
  token          mint a development access token (refused in production; people sign in):
                   portico token --tenant ID|SLUG [--permissions a,b] [--role NAME] [--email ADDRESS]
                   (default permissions: a platform admin's for the platform tenant, an owner's otherwise)
  openapi        print the OpenAPI document (`just openapi` writes it to docs/openapi.json)
  help           show this text

configuration: config/default.toml, config/$PORTICO_ENV.toml, PORTICO__SECTION__KEY variables;
database: DATABASE_URL, else (outside production) a server on 127.0.0.1:5432, else a private
cluster under target/ started from the machine's PostgreSQL binaries.";

/// `portico token` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// A tenant id or slug (`platform` for the platform tenant).
    pub tenant: String,
    /// Permissions; `None` for the defaults.
    pub permissions: Option<Vec<String>>,
    /// Role name in the claims.
    pub role: String,
    /// Email in the claims.
    pub email: String,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Serve the API.
    Serve,
    /// Run background jobs.
    Worker,
    /// Apply migrations.
    Migrate,
    /// Bootstrap roles, database, schema and platform tenant.
    Bootstrap,
    /// Mint a development token.
    Token(TokenRequest),
    /// Print the OpenAPI document.
    Openapi,
    /// Print usage.
    Help,
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] | ["serve"] => Ok(Command::Serve),
        ["migrate"] => Ok(Command::Migrate),
        ["worker"] => Ok(Command::Worker),
        ["db", "bootstrap"] => Ok(Command::Bootstrap),
        ["help" | "--help" | "-h"] => Ok(Command::Help),
        ["openapi"] => Ok(Command::Openapi),
        ["token", rest @ ..] => parse_token(rest).map(Command::Token),
        other => Err(format!("unknown command `{}`", other.join(" "))),
    }
}

fn parse_token(args: &[&str]) -> Result<TokenRequest, String> {
    let mut request = TokenRequest {
        tenant: String::new(),
        permissions: None,
        role: "owner".into(),
        email: "dev@portico.example".into(),
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match *flag {
            "--tenant" => request.tenant = (*value).to_owned(),
            "--permissions" => {
                request.permissions = Some(
                    value.split(',').map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect(),
                );
            }
            "--role" => request.role = (*value).to_owned(),
            "--email" => request.email = (*value).to_owned(),
            other => return Err(format!("unknown option `{other}` for token")),
        }
    }
    if request.tenant.is_empty() {
        return Err("token needs --tenant ID|SLUG".into());
    }
    Ok(request)
}

/// Runs `portico` with the process's arguments and environment.
#[must_use]
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    main_with(&args)
}

/// Runs `portico` with `args` (after the program name) and the process's environment.
#[must_use]
pub fn main_with(args: &[String]) -> ExitCode {
    let command = match parse(args) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Openapi) => {
            println!("{}", crate::openapi::json());
            return ExitCode::SUCCESS;
        }
        Ok(command) => command,
        Err(message) => {
            eprintln!("portico: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::load() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("portico: {error}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    match actix_web::rt::System::new().block_on(run(command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("portico: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr: pretty or JSON (with the request's span fields on every line).
fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match config.log_format() {
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// A failure that ends the command.
type Failure = Box<dyn std::error::Error>;

async fn run(command: Command, config: Config) -> Result<(), Failure> {
    let admin_url = admin_url(&config).await?;
    let passwords = &config.secrets.role_passwords;
    match command {
        Command::Token(request) => {
            let urls = DatabaseUrls::derive(&admin_url, &config.database.name, passwords)?;
            let store = Store::connect(&urls, &config.pool()).await?;
            println!("{}", mint(&config, &store, &request).await?);
            Ok(())
        }
        Command::Bootstrap => {
            let urls = bootstrap(&admin_url, &config.database.name, passwords).await?;
            println!("bootstrapped database `{}` (owner {})", urls.database, redact_url(&urls.owner));
            Ok(())
        }
        Command::Migrate => {
            let urls = DatabaseUrls::derive(&admin_url, &config.database.name, passwords)?;
            let applied = run_migrations(&urls.owner).await?;
            println!("applied {} migration(s){}", applied.len(), if applied.is_empty() { "" } else { ":" });
            for version in applied {
                println!("  {version}");
            }
            Ok(())
        }
        Command::Serve => serve(config, &admin_url).await,
        Command::Worker => work(config, &admin_url).await,
        Command::Help | Command::Openapi => Ok(()),
    }
}

/// `DATABASE_URL`, or outside production a discovered (or started) server.
async fn admin_url(config: &Config) -> Result<String, Failure> {
    if let Some(url) = &config.secrets.database_url {
        return Ok(url.clone());
    }
    if config.environment == Environment::Production {
        return Err("DATABASE_URL is required in production".into());
    }
    let discovered = tokio::task::spawn_blocking(|| discover(&default_state_dir())).await??;
    if let Some(note) = &discovered.note {
        tracing::warn!("{note}");
    }
    match &discovered.source {
        Source::Environment => {}
        Source::LocalServer => tracing::info!("using the PostgreSQL server on 127.0.0.1:5432"),
        Source::PrivateCluster(dir) => {
            tracing::info!(dir = %dir.display(), "using the private PostgreSQL cluster")
        }
    }
    Ok(discovered.admin_url)
}

/// Development tokens bypass sign-in: production refuses to mint them.
fn refuse_in_production(config: &Config) -> Result<(), Failure> {
    if config.environment == Environment::Production {
        return Err("development tokens are refused in production: sign in at /api/v1/auth/login".into());
    }
    Ok(())
}

/// A development token for the tenant (id or slug) and permissions asked for.
/// Refused in production, where people sign in.
async fn mint(config: &Config, store: &Store, request: &TokenRequest) -> Result<String, Failure> {
    refuse_in_production(config)?;
    let tenant = match request.tenant.parse::<TenantId>() {
        Ok(id) => id,
        Err(_) if request.tenant == "platform" => PLATFORM_TENANT_ID,
        Err(_) => {
            let filter = TenantFilter { search: Some(request.tenant.clone()), ..TenantFilter::default() };
            let page = store.list(&PlatformContext::system("cli"), &filter, PageRequest::default()).await?;
            page.items
                .into_iter()
                .find(|t| t.slug == request.tenant)
                .map(|t| t.id)
                .ok_or_else(|| format!("no tenant with slug `{}`", request.tenant))?
        }
    };
    let defaults: &[&str] = if tenant == PLATFORM_TENANT_ID {
        portico_tenancy::Role::PlatformAdmin.permissions()
    } else {
        portico_tenancy::Role::Owner.permissions()
    };
    let permissions: Vec<&str> = match &request.permissions {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => defaults.to_vec(),
    };
    let keys = config.token_keys();
    Ok(keys.mint(
        UserId::new(),
        &request.email,
        &request.role,
        tenant,
        &permissions,
        config.auth.token_ttl_secs,
    )?)
}

/// `portico worker`: runs jobs until SIGTERM or Ctrl-C.
async fn work(config: Config, admin_url: &str) -> Result<(), Failure> {
    let urls = bootstrap(admin_url, &config.database.name, &config.secrets.role_passwords).await?;
    // Claims, reports and lease renewals go through the platform pool: one
    // connection per running job, plus the claimer and the scheduler.
    let mut pool = config.pool();
    pool.platform_max_size = pool.platform_max_size.max(config.worker.concurrency + 2);
    let store = Store::connect(&urls, &pool).await?;
    for schedule in crate::jobs::platform_schedules()? {
        store.upsert_schedule(PLATFORM_TENANT_ID, schedule).await?;
    }
    let registry = crate::jobs::registry_with(
        &store,
        config.email_sender()?,
        config.email_from(),
        config.metering_rules(),
    );
    tracing::info!(kinds = ?registry.kinds(), concurrency = config.worker.concurrency, "worker starting");
    println!("Portico worker is running ({} job kinds)", registry.kinds().len());
    portico_worker::Worker::new(store, registry, config.worker()).run(shutdown_signal()).await;
    tracing::info!("worker stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

async fn serve(config: Config, admin_url: &str) -> Result<(), Failure> {
    // A broken industry catalogue (repository data) stops the server here, not at the first request.
    portico_tenancy::Catalogue::builtin()?;
    let urls = bootstrap(admin_url, &config.database.name, &config.secrets.role_passwords).await?;
    let store = Store::connect(&urls, &config.pool()).await?;
    if config.seed.demo_data {
        let tenants = seed::demo_tenants(&store).await?;
        let people = seed::demo_people(&store, &tenants).await?;
        seed::demo_credits(&store, &tenants).await?;
        seed::demo_branding(&store, &tenants).await?;
        seed::demo_metering(&store, &tenants).await?;
        seed::demo_crm(&store, &tenants).await?;
        println!("Demo data: sign in as any of these with the password {}", seed::DEMO_PASSWORD);
        for person in people {
            println!("  {person}");
        }
        println!("and paste these into a shell for the README's examples:");
        for line in seed::demo_exports(&tenants) {
            println!("  {line}");
        }
    }
    let running = server::start(store, &config.server()?)?;
    tracing::info!(addr = %running.addr, environment = config.environment.name(), "serving");
    println!("Portico is listening on http://{} (try /health/ready)", running.addr);
    running.server.await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn development_tokens_are_refused_in_production_only() {
        let vars = |env: &str| -> Vec<(String, String)> {
            [
                ("PORTICO_ENV", env),
                ("DATABASE_URL", "postgres://admin:pw@db/postgres"),
                ("PORTICO_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
                ("PORTICO_MFA_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"),
                ("PORTICO__EMAIL__TRANSPORT", "smtp"),
                ("PORTICO__FILES__LOCAL_DIR", "/srv/portico-files"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
        };
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
        let production = Config::from_sources(&dir, &vars("production")).unwrap();
        let refused = refuse_in_production(&production).unwrap_err().to_string();
        assert!(refused.contains("refused in production"), "{refused}");
        let development = Config::from_sources(&dir, &vars("development")).unwrap();
        assert!(refuse_in_production(&development).is_ok());
    }

    #[test]
    fn commands_parse() {
        assert_eq!(parse(&args("")), Ok(Command::Serve));
        assert_eq!(parse(&args("serve")), Ok(Command::Serve));
        assert_eq!(parse(&args("migrate")), Ok(Command::Migrate));
        assert_eq!(parse(&args("worker")), Ok(Command::Worker));
        assert_eq!(parse(&args("db bootstrap")), Ok(Command::Bootstrap));
        assert_eq!(parse(&args("--help")), Ok(Command::Help));
        assert_eq!(parse(&args("db")), Err("unknown command `db`".to_owned()));
        assert!(parse(&args("serve now")).is_err());
    }

    #[test]
    fn token_arguments_parse() {
        let Ok(Command::Token(request)) =
            parse(&args("token --tenant acme --permissions tenants:read,,tenants:write"))
        else {
            panic!("expected a token command");
        };
        assert_eq!(request.tenant, "acme");
        assert_eq!(request.permissions, Some(vec!["tenants:read".to_owned(), "tenants:write".to_owned()]));
        assert_eq!(parse(&args("token")), Err("token needs --tenant ID|SLUG".to_owned()));
        assert_eq!(parse(&args("token --tenant")), Err("--tenant needs a value".to_owned()));
        assert!(parse(&args("token --tenant a --colour red")).is_err());
    }
}
