//! The `portico` command: serve (the default), migrate, db bootstrap.

use std::process::ExitCode;

use portico_db_discovery::{Source, default_state_dir, discover};
use portico_store::{DatabaseUrls, Store, bootstrap, redact_url, run_migrations};

use crate::config::{Config, Environment};
use crate::{seed, server};

const USAGE: &str = "\
usage: portico [COMMAND]

commands:
  serve          bootstrap the database, seed demo data (development) and serve the API (default)
  migrate        apply pending migrations and exit
  db bootstrap   create the roles, the database, the schema and the platform tenant, and exit
  help           show this text

configuration: config/default.toml, config/$PORTICO_ENV.toml, PORTICO__SECTION__KEY variables;
database: DATABASE_URL, else (outside production) a server on 127.0.0.1:5432, else a private
cluster under target/ started from the machine's PostgreSQL binaries.";

/// What the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Serve the API.
    Serve,
    /// Apply migrations.
    Migrate,
    /// Bootstrap roles, database, schema and platform tenant.
    Bootstrap,
    /// Print usage.
    Help,
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] | ["serve"] => Ok(Command::Serve),
        ["migrate"] => Ok(Command::Migrate),
        ["db", "bootstrap"] => Ok(Command::Bootstrap),
        ["help" | "--help" | "-h"] => Ok(Command::Help),
        other => Err(format!("unknown command `{}`", other.join(" "))),
    }
}

/// Runs `portico` with the process's arguments and environment.
#[must_use]
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse(&args) {
        Ok(Command::Help) => {
            println!("{USAGE}");
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
    init_tracing();
    match actix_web::rt::System::new().block_on(run(command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("portico: {error}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// A failure that ends the command.
type Failure = Box<dyn std::error::Error>;

async fn run(command: Command, config: Config) -> Result<(), Failure> {
    let admin_url = admin_url(&config).await?;
    let passwords = &config.secrets.role_passwords;
    match command {
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
        Command::Help => Ok(()),
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

async fn serve(config: Config, admin_url: &str) -> Result<(), Failure> {
    let urls = bootstrap(admin_url, &config.database.name, &config.secrets.role_passwords).await?;
    let store = Store::connect(&urls, &config.pool()).await?;
    if config.seed.demo_data {
        for tenant in seed::demo_tenants(&store).await? {
            println!("demo tenant {:<16} {}", tenant.slug, tenant.id);
        }
    }
    let running = server::start(store, &config.server())?;
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
    fn commands_parse() {
        assert_eq!(parse(&args("")), Ok(Command::Serve));
        assert_eq!(parse(&args("serve")), Ok(Command::Serve));
        assert_eq!(parse(&args("migrate")), Ok(Command::Migrate));
        assert_eq!(parse(&args("db bootstrap")), Ok(Command::Bootstrap));
        assert_eq!(parse(&args("--help")), Ok(Command::Help));
        assert_eq!(parse(&args("db")), Err("unknown command `db`".to_owned()));
        assert!(parse(&args("serve now")).is_err());
    }
}
