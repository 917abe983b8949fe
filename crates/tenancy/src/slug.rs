//! Tenant slugs: the short name in host names and sign-in URLs (`acme.portico.example`).

/// Names a tenant may not take: they would shadow the platform's own hosts and paths.
const RESERVED: &[&str] = &[
    "admin", "api", "app", "auth", "billing", "docs", "help", "login", "mail", "platform", "portico", "root",
    "static", "status", "support", "system", "www",
];

/// Checks a slug: 3 to 63 characters of `a-z`, `0-9` and single hyphens,
/// starting and ending with a letter or digit, and not a reserved name.
pub fn validate_slug(slug: &str) -> Result<(), &'static str> {
    if !(3..=63).contains(&slug.len()) {
        return Err("must be 3 to 63 characters long");
    }
    if !slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err("may contain only lower-case letters, digits and hyphens");
    }
    if slug.starts_with('-') || slug.ends_with('-') || slug.contains("--") {
        return Err("must start and end with a letter or digit and have no double hyphens");
    }
    if RESERVED.contains(&slug) {
        return Err("is reserved");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_slugs_pass() {
        for slug in ["acme", "acme-property", "a1b", "school-42", &"x".repeat(63)] {
            assert_eq!(validate_slug(slug), Ok(()), "{slug}");
        }
    }

    #[test]
    fn bad_slugs_fail_with_a_reason() {
        assert_eq!(validate_slug("ab"), Err("must be 3 to 63 characters long"));
        assert_eq!(validate_slug(&"x".repeat(64)), Err("must be 3 to 63 characters long"));
        assert_eq!(validate_slug("Acme"), Err("may contain only lower-case letters, digits and hyphens"));
        assert_eq!(validate_slug("ac_me"), Err("may contain only lower-case letters, digits and hyphens"));
        assert_eq!(validate_slug("acmé"), Err("may contain only lower-case letters, digits and hyphens"));
        assert!(validate_slug("-acme").is_err());
        assert!(validate_slug("acme-").is_err());
        assert!(validate_slug("ac--me").is_err());
        assert_eq!(validate_slug("platform"), Err("is reserved"));
        assert_eq!(validate_slug("www"), Err("is reserved"));
    }
}
