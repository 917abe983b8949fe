//! Passwords: the policy a new one must meet, and Argon2id hashing with
//! OWASP's parameters (m = 19 MiB, t = 2, p = 1).

use std::collections::HashSet;
use std::sync::OnceLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::IdentityError;

/// Shortest password accepted, in characters.
pub const MIN_LEN: usize = 8;
/// Longest password accepted, in characters.
pub const MAX_LEN: usize = 128;

/// OWASP Password Storage Cheat Sheet, Argon2id: 19 MiB of memory, 2
/// iterations, 1 degree of parallelism.
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Iterations.
pub const ITERATIONS: u32 = 2;
/// Lanes.
pub const PARALLELISM: u32 = 1;

/// The 10,000 most common passwords (see `data/README.md` for the source).
const COMMON: &str = include_str!("../data/common-passwords.txt");

fn common() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON.lines().map(str::trim).filter(|line| !line.is_empty()).collect())
}

/// Whether `password` may be chosen: 8 to 128 characters, and not one of
/// the 10,000 most common passwords (ignoring case).
pub fn check_policy(password: &str) -> Result<(), IdentityError> {
    let length = password.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&length) {
        return Err(IdentityError::WeakPassword("use 8 to 128 characters"));
    }
    if common().contains(password.to_lowercase().as_str()) {
        return Err(IdentityError::WeakPassword(
            "this password is one of the most common ones; choose another",
        ));
    }
    Ok(())
}

fn hasher() -> Result<Argon2<'static>, IdentityError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|e| IdentityError::Hashing(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of `password`
/// with a fresh random salt. Costly by design: call it off the async runtime.
pub fn hash(password: &str) -> Result<String, IdentityError> {
    hasher()?
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| IdentityError::Hashing(e.to_string()))
}

/// Whether `password` matches `stored` (a PHC string from [`hash`]; its own
/// parameters are used). A malformed `stored` matches nothing.
#[must_use]
pub fn verify(password: &str, stored: &str) -> bool {
    let (Ok(parsed), Ok(hasher)) = (PasswordHash::new(stored), hasher()) else { return false };
    hasher.verify_password(password.as_bytes(), &parsed).is_ok()
}

/// A hash of a random password, to verify against when no account matches,
/// so that an unknown email costs as much time as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let random = uuid::Uuid::new_v4().to_string();
        hash(&random).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_use_argon2id_with_owasp_parameters_and_verify() {
        let stored = hash("correct horse battery").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(verify("correct horse battery", &stored));
        assert!(!verify("correct horse batterY", &stored));
        assert!(!verify("anything", "not a phc string"));
        assert_ne!(hash("correct horse battery").unwrap(), stored, "a fresh salt each time");
    }

    #[test]
    fn the_policy_wants_length_and_no_common_password() {
        assert!(check_policy("kjH7-vq9!m").is_ok());
        assert!(check_policy("short").is_err());
        assert!(check_policy(&"x".repeat(129)).is_err());
        assert!(check_policy(&"é".repeat(8)).is_ok(), "characters, not bytes");
        for common in ["password", "PASSWORD1", "12345678", "iloveyou", "qwertyuiop"] {
            assert!(matches!(check_policy(common), Err(IdentityError::WeakPassword(_))), "{common}");
        }
        assert_eq!(super::common().len(), 10_000);
    }
}
