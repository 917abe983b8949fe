//! Browser mode: the portal's tokens live in `__Host-` cookies (HttpOnly,
//! Secure, SameSite=Strict, path `/`), so page JavaScript never sees them,
//! and every unsafe request also carries the CSRF token in a header that
//! must equal its cookie (double submit). Mobile apps and services use
//! bearer tokens instead.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponseBuilder};
use portico_kernel::ErrorKind;

use crate::error::ApiError;

/// The access token's cookie.
pub const ACCESS_COOKIE: &str = "__Host-portico-access";
/// The refresh token's cookie.
pub const REFRESH_COOKIE: &str = "__Host-portico-refresh";
/// The CSRF token's cookie (readable by the page: it sends it back in [`CSRF_HEADER`]).
pub const CSRF_COOKIE: &str = "__Host-portico-csrf";
/// The header every unsafe request in browser mode repeats the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

fn cookie(name: &'static str, value: String, max_age_secs: i64, http_only: bool) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .secure(true)
        .http_only(http_only)
        .same_site(SameSite::Strict)
        .max_age(CookieDuration::seconds(max_age_secs))
        .finish()
}

/// Sets the three cookies of a signed-in browser.
pub fn set_cookies(
    response: &mut HttpResponseBuilder,
    access: String,
    access_secs: i64,
    refresh: String,
    refresh_secs: i64,
    csrf: String,
) {
    response
        .cookie(cookie(ACCESS_COOKIE, access, access_secs, true))
        .cookie(cookie(REFRESH_COOKIE, refresh, refresh_secs, true))
        .cookie(cookie(CSRF_COOKIE, csrf, refresh_secs, false));
}

/// Clears them (sign-out).
pub fn clear_cookies(response: &mut HttpResponseBuilder) {
    for name in [ACCESS_COOKIE, REFRESH_COOKIE] {
        response.cookie(cookie(name, String::new(), 0, true));
    }
    response.cookie(cookie(CSRF_COOKIE, String::new(), 0, false));
}

/// The value of cookie `name`, if sent.
#[must_use]
pub fn cookie_value(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie(name).map(|c| c.value().to_owned()).filter(|v| !v.is_empty())
}

/// Whether `method` changes something (and so needs the CSRF header).
#[must_use]
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The double-submit check: the header equals the cookie (compared in
/// constant time), both present. 403 `auth.csrf_failed` otherwise.
pub fn check_csrf(req: &HttpRequest) -> Result<(), ApiError> {
    let header = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    let cookie = cookie_value(req, CSRF_COOKIE).unwrap_or_default();
    let same = !cookie.is_empty()
        && header.len() == cookie.len()
        && header.bytes().zip(cookie.bytes()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0;
    if same {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::Forbidden,
            "auth.csrf_failed",
            "Send the CSRF token from the __Host-portico-csrf cookie in the X-CSRF-Token header.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_host_prefixed_strict_secure_and_http_only_but_the_csrf_one() {
        let access = cookie(ACCESS_COOKIE, "a".into(), 900, true).to_string();
        assert!(access.starts_with("__Host-portico-access=a;"), "{access}");
        for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/", "Max-Age=900"] {
            assert!(access.contains(attribute), "{attribute} in {access}");
        }
        assert!(!access.contains("Domain"), "__Host- cookies have no Domain");
        let csrf = cookie(CSRF_COOKIE, "c".into(), 60, false).to_string();
        assert!(!csrf.contains("HttpOnly") && csrf.contains("SameSite=Strict"), "{csrf}");
    }
}
