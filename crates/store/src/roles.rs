//! The three database roles and the connection URLs that use them.

use std::fmt;

use crate::StoreError;

/// Owns the schema and runs migrations; never used by request code.
pub const OWNER_ROLE: &str = "portico_owner";
/// What request code connects as: no ownership, no BYPASSRLS, DML only.
pub const APP_ROLE: &str = "portico_app";
/// Crosses tenants for platform views, the job claimer and sweeps: BYPASSRLS, DML only.
pub const PLATFORM_ROLE: &str = "portico_platform";

/// Passwords for the three roles, when the server does not trust local
/// connections. Bootstrap sets them; the connection URLs carry them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RolePasswords {
    /// For [`OWNER_ROLE`].
    pub owner: Option<String>,
    /// For [`APP_ROLE`].
    pub app: Option<String>,
    /// For [`PLATFORM_ROLE`].
    pub platform: Option<String>,
}

impl RolePasswords {
    /// The environment variables that hold the passwords.
    pub const VARIABLES: [&str; 3] = [
        "PORTICO_DATABASE_OWNER_PASSWORD",
        "PORTICO_DATABASE_APP_PASSWORD",
        "PORTICO_DATABASE_PLATFORM_PASSWORD",
    ];

    /// Reads the passwords through `lookup` (the process environment, or a
    /// list in tests); empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let read = |name: &str| lookup(name).filter(|value| !value.is_empty());
        Self {
            owner: read(Self::VARIABLES[0]),
            app: read(Self::VARIABLES[1]),
            platform: read(Self::VARIABLES[2]),
        }
    }

    /// Reads the passwords from the process environment.
    #[must_use]
    pub fn from_environment() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

impl fmt::Debug for RolePasswords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |p: &Option<String>| if p.is_some() { "<set>" } else { "<none>" };
        f.debug_struct("RolePasswords")
            .field("owner", &shown(&self.owner))
            .field("app", &shown(&self.app))
            .field("platform", &shown(&self.platform))
            .finish()
    }
}

/// The URLs of one database for each role, derived from an admin URL.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrls {
    /// The database name.
    pub database: String,
    /// As [`OWNER_ROLE`]: migrations.
    pub owner: String,
    /// As [`APP_ROLE`]: request code.
    pub app: String,
    /// As [`PLATFORM_ROLE`]: cross-tenant work.
    pub platform: String,
}

impl fmt::Debug for DatabaseUrls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseUrls")
            .field("database", &self.database)
            .field("owner", &redact_url(&self.owner))
            .field("app", &redact_url(&self.app))
            .field("platform", &redact_url(&self.platform))
            .finish()
    }
}

impl DatabaseUrls {
    /// The URLs of `database` on the server of `admin_url`, one per role.
    pub fn derive(admin_url: &str, database: &str, passwords: &RolePasswords) -> Result<Self, StoreError> {
        check_name(database)?;
        Ok(Self {
            database: database.to_owned(),
            owner: with_role(admin_url, database, OWNER_ROLE, passwords.owner.as_deref())?,
            app: with_role(admin_url, database, APP_ROLE, passwords.app.as_deref())?,
            platform: with_role(admin_url, database, PLATFORM_ROLE, passwords.platform.as_deref())?,
        })
    }
}

/// `admin_url` with another database (and nothing else changed).
pub fn with_database(admin_url: &str, database: &str) -> Result<String, StoreError> {
    let mut url = parse(admin_url)?;
    url.set_path(&format!("/{database}"));
    Ok(url.into())
}

fn with_role(
    admin_url: &str,
    database: &str,
    role: &str,
    password: Option<&str>,
) -> Result<String, StoreError> {
    let mut url = parse(admin_url)?;
    url.set_path(&format!("/{database}"));
    url.set_username(role).map_err(|()| StoreError::Url("the URL must name a host".into()))?;
    url.set_password(password).map_err(|()| StoreError::Url("the URL must name a host".into()))?;
    Ok(url.into())
}

fn parse(text: &str) -> Result<url::Url, StoreError> {
    let url = url::Url::parse(text).map_err(|e| StoreError::Url(e.to_string()))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(StoreError::Url("expected a postgres:// URL".into()));
    }
    if url.host().is_none() {
        return Err(StoreError::Url("the URL must name a host".into()));
    }
    Ok(url)
}

/// The URL with its password replaced by `***`, for logs.
#[must_use]
pub fn redact_url(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.into()
        }
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

/// Database and role names are interpolated into DDL, so only plain
/// lower-case identifiers are accepted.
pub(crate) fn check_name(name: &str) -> Result<(), StoreError> {
    let plain = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if plain { Ok(()) } else { Err(StoreError::Name(name.chars().take(80).collect())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_gets_its_own_url_on_the_same_server() {
        let urls = DatabaseUrls::derive(
            "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
            "portico",
            &RolePasswords { app: Some("s3cr@t/".into()), ..RolePasswords::default() },
        )
        .unwrap();
        assert_eq!(urls.owner, "postgres://portico_owner@127.0.0.1:5432/portico?sslmode=disable");
        assert_eq!(urls.app, "postgres://portico_app:s3cr%40t%2F@127.0.0.1:5432/portico?sslmode=disable");
        assert_eq!(urls.platform, "postgres://portico_platform@127.0.0.1:5432/portico?sslmode=disable");
    }

    #[test]
    fn debug_output_hides_passwords() {
        let passwords = RolePasswords { owner: Some("hunter2".into()), ..RolePasswords::default() };
        let urls = DatabaseUrls::derive("postgres://a:b@h/postgres", "portico", &passwords).unwrap();
        let shown = format!("{urls:?} {passwords:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***") && shown.contains("<set>"));
    }

    #[test]
    fn bad_urls_and_names_are_refused() {
        assert!(matches!(
            DatabaseUrls::derive("mysql://h/db", "portico", &RolePasswords::default()),
            Err(StoreError::Url(_))
        ));
        assert!(matches!(
            DatabaseUrls::derive("postgres:///db", "portico", &RolePasswords::default()),
            Err(StoreError::Url(_))
        ));
        for bad in ["", "Portico", "drop table", "a\"b", "1abc", &"a".repeat(64)] {
            assert!(matches!(check_name(bad), Err(StoreError::Name(_))), "{bad}");
        }
        assert!(check_name("portico_test_1").is_ok());
    }

    #[test]
    fn passwords_come_from_their_variables_and_empty_means_unset() {
        let passwords = RolePasswords::from_lookup(|name| match name {
            "PORTICO_DATABASE_APP_PASSWORD" => Some("a".into()),
            "PORTICO_DATABASE_OWNER_PASSWORD" => Some(String::new()),
            _ => None,
        });
        assert_eq!(passwords, RolePasswords { app: Some("a".into()), ..RolePasswords::default() });
    }

    #[test]
    fn with_database_changes_only_the_path() {
        assert_eq!(
            with_database("postgres://u:p@h:1/postgres", "other").unwrap(),
            "postgres://u:p@h:1/other"
        );
    }
}
