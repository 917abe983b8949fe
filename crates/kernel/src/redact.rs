//! PII and secrets out of logs: one set of rules for emails, phone numbers
//! and tokens, used wherever text may reach a log line.

use std::sync::OnceLock;

use regex::Regex;

/// `alice@example.com` -> `a***@example.com`: the domain stays (useful when
/// tracing a delivery problem), the person does not.
#[must_use]
pub fn email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// `+4930123456` -> `+49******56`: country code and last two digits stay.
#[must_use]
pub fn phone(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 6 {
        return "***".to_owned();
    }
    let plus = if number.trim_start().starts_with('+') { "+" } else { "" };
    let head: String = digits[..2].iter().collect();
    let tail: String = digits[digits.len() - 2..].iter().collect();
    format!("{plus}{head}{}{tail}", "*".repeat(digits.len() - 4))
}

/// Any token, key or password: nothing of it stays.
#[must_use]
pub fn secret(_value: &str) -> &'static str {
    "[redacted]"
}

/// Free text (an error message, a database detail) with every email, JWT,
/// bearer credential and phone-like number in it masked.
#[must_use]
pub fn text(input: &str) -> String {
    /// What replaces a match.
    type Mask = fn(&str) -> String;
    static PATTERNS: OnceLock<[(Regex, Mask); 4]> = OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| {
        // The expressions are constants: a failure here is a bug caught by the tests.
        let compile = |pattern: &str| {
            Regex::new(pattern).unwrap_or_else(|_| Regex::new("$^").unwrap_or_else(|_| unreachable!()))
        };
        [
            (compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+"), |_| "Bearer [redacted]".to_owned()),
            (compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), |_| {
                "[redacted token]".to_owned()
            }),
            (compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), email),
            (compile(r"\+?[0-9][0-9 ().-]{6,}[0-9]"), phone),
        ]
    });
    let mut out = input.to_owned();
    for (pattern, mask) in patterns {
        out = pattern.replace_all(&out, |caps: &regex::Captures<'_>| mask(&caps[0])).into_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_keep_their_domain_only() {
        assert_eq!(email("alice@example.com"), "a***@example.com");
        assert_eq!(email("not-an-email"), "***");
    }

    #[test]
    fn phones_keep_country_code_and_last_two_digits() {
        assert_eq!(phone("+4930123456"), "+49******56");
        assert_eq!(phone("030 1234 5678"), "03*******78");
        assert_eq!(phone("123"), "***");
    }

    #[test]
    fn secrets_leave_nothing() {
        assert_eq!(secret("hunter2"), "[redacted]");
    }

    #[test]
    fn free_text_is_scrubbed_of_every_kind() {
        let message = "duplicate key (contact_email)=(bob.smith@acme.example) for +49 30 1234567; \
                       Authorization: Bearer abc.def-123 and token eyJhbGciOi.eyJzdWIiOi.sig_ok";
        let clean = text(message);
        assert!(!clean.contains("bob.smith"), "{clean}");
        assert!(clean.contains("b***@acme.example"), "{clean}");
        assert!(!clean.contains("1234567"), "{clean}");
        assert!(!clean.contains("abc.def-123"), "{clean}");
        assert!(!clean.contains("eyJhbGciOi"), "{clean}");
        assert!(clean.starts_with("duplicate key (contact_email)="), "{clean}");
    }

    #[test]
    fn ids_and_ordinary_numbers_survive() {
        let message = "tenant 01890a5d-ac96-774b-bcce-b302099a8057 page 2 of 10";
        assert_eq!(text(message), message);
    }
}
