//! A second factor: TOTP (RFC 6238: HMAC-SHA-1, 30-second steps, 6
//! digits, one step of drift either way), single-use recovery codes, and
//! the sealing of secrets at rest.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hmac::{Hmac, Mac};
use sha2::Digest as _;

use crate::IdentityError;

/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Recovery codes issued when MFA is turned on.
pub const RECOVERY_CODES: usize = 10;

/// RFC 4226 HOTP: the `digits`-digit code of `counter`.
#[must_use]
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let Ok(mut mac) = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret) else { return 0 };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest.get(19).copied().unwrap_or(0) & 0x0f);
    let word =
        digest.get(offset..offset + 4).map_or(0, |b| u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]));
    word % 10u32.pow(digits)
}

/// RFC 6238 TOTP: the code of the step containing `unix_secs`.
#[must_use]
pub fn totp(secret: &[u8], unix_secs: u64, digits: u32) -> u32 {
    hotp(secret, unix_secs / STEP_SECS, digits)
}

/// The step `code` belongs to, if it is the code of the current step or one
/// either side of it and that step is later than `last_used` (each code is
/// accepted once: the caller records the step).
#[must_use]
pub fn verify_totp(secret: &[u8], code: &str, unix_secs: u64, last_used: Option<u64>) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    let now = unix_secs / STEP_SECS;
    [now.saturating_sub(1), now, now + 1]
        .into_iter()
        .filter(|step| last_used.is_none_or(|last| *step > last))
        .find(|step| hotp(secret, *step, DIGITS) == wanted)
}

/// `N` bytes from the system's random source.
pub fn random<const N: usize>() -> Result<[u8; N], IdentityError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| IdentityError::Hashing(e.to_string()))?;
    Ok(bytes)
}

/// `N` random bytes as `2 N` hex digits: refresh tokens, emailed links, API key parts.
pub fn random_hex<const N: usize>() -> Result<String, IdentityError> {
    Ok(random::<N>()?.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// A new TOTP secret: 160 random bits (RFC 4226's recommendation).
pub fn new_secret() -> Result<[u8; 20], IdentityError> {
    random()
}

/// RFC 4648 base32 without padding, as authenticator apps take secrets.
#[must_use]
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The `otpauth://` URI an authenticator app scans (as a QR code).
#[must_use]
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        encode(issuer),
        encode(account),
        base32(secret),
        encode(issuer)
    )
}

/// Ten recovery codes (`xxxxx-xxxxx`, from an alphabet without look-alikes).
pub fn recovery_codes() -> Result<Vec<String>, IdentityError> {
    const ALPHABET: &[u8; 31] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let bytes: [u8; 10] = random()?;
        let chars: String = bytes.iter().map(|b| char::from(ALPHABET[usize::from(b % 31)])).collect();
        codes.push(format!("{}-{}", &chars[..5], &chars[5..]));
    }
    Ok(codes)
}

/// How a recovery code is stored: SHA-256 (hex) of it, ignoring case and dashes.
#[must_use]
pub fn recovery_hash(code: &str) -> String {
    let normal: String =
        code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect();
    sha2::Sha256::digest(normal.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Seals secrets at rest (ChaCha20-Poly1305, a fresh nonce per secret) with
/// a key from configuration, so a copy of the database alone reveals none.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(<key>)")
    }
}

impl SecretBox {
    /// A box with this 256-bit key.
    #[must_use]
    pub fn new(key: &[u8; 32]) -> Self {
        Self { cipher: ChaCha20Poly1305::new(key.into()) }
    }

    /// `nonce || ciphertext` of `plain`.
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, IdentityError> {
        let nonce: [u8; 12] = random()?;
        let sealed = self
            .cipher
            .encrypt(&Nonce::from(nonce), plain)
            .map_err(|_| IdentityError::Hashing("sealing failed".to_owned()))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// The plain text of something [`seal`](Self::seal)ed with this key.
    #[must_use]
    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        let nonce: [u8; 12] = sealed.get(..12)?.try_into().ok()?;
        self.cipher.decrypt(&Nonce::from(nonce), sealed.get(12..)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B, SHA-1 column (8 digits, seed "12345678901234567890").
    #[test]
    fn rfc_6238_test_vectors() {
        let seed = b"12345678901234567890";
        for (time, expected) in [
            (59, 94_287_082),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(totp(seed, time, 8), expected, "T = {time}");
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_only_once() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111;
        let code = |t: u64| format!("{:06}", totp(secret, t, DIGITS));
        let step = now / STEP_SECS;
        assert_eq!(verify_totp(secret, &code(now), now, None), Some(step));
        assert_eq!(verify_totp(secret, &code(now - 30), now, None), Some(step - 1));
        assert_eq!(verify_totp(secret, &code(now + 30), now, None), Some(step + 1));
        assert_eq!(verify_totp(secret, &code(now - 60), now, None), None, "two steps old");
        assert_eq!(verify_totp(secret, &code(now), now, Some(step)), None, "used");
        assert_eq!(verify_totp(secret, "12345", now, None), None);
        assert_eq!(verify_totp(secret, "abcdef", now, None), None);
    }

    #[test]
    fn base32_and_the_otpauth_uri() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"12345678901234567890"), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let uri = otpauth_uri("Portico", "a@b.example", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/Portico:a%40b.example?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Portico\
             &algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn recovery_codes_are_distinct_and_hashed_loosely() {
        let codes = recovery_codes().unwrap();
        assert_eq!(codes.len(), 10);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), 10);
        assert_eq!(recovery_hash("ABCDE-fghjk"), recovery_hash("abcdefghjk"));
        assert_ne!(recovery_hash("abcdefghjk"), recovery_hash("abcdefghjm"));
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let sealed = SecretBox::new(&[7; 32]).seal(b"secret").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(SecretBox::new(&[7; 32]).open(&sealed).as_deref(), Some(b"secret".as_slice()));
        assert_eq!(SecretBox::new(&[8; 32]).open(&sealed), None);
        assert_eq!(SecretBox::new(&[7; 32]).open(b"short"), None);
    }
}
