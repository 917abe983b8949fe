//! AWS Signature Version 4, header-based, for the `s3` service, as AWS
//! documents it ("Authenticating Requests: Using the Authorization Header").
//! Pure functions: the time is an input, so the signature of a request is a
//! value that tests compare with AWS's published examples.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SERVICE: &str = "s3";

/// Who signs, and for which region.
pub(crate) struct Signer<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
}

/// The parts of a request that the signature covers.
pub(crate) struct CanonicalParts<'a> {
    pub method: &'a str,
    /// The path as sent: each segment already URI-encoded, `/` kept.
    pub path: &'a str,
    /// Every header to sign, `host`, `x-amz-date` and `x-amz-content-sha256` included.
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the payload.
    pub payload_sha256: &'a str,
}

/// `20130524T000000Z`: the value of `x-amz-date`.
pub(crate) fn amz_date(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Hex SHA-256 of `bytes`, as `x-amz-content-sha256` wants it.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// URI-encodes one path segment the way SigV4 does: everything but
/// `A-Z a-z 0-9 - _ . ~` as `%XX` with upper-case hex.
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The canonical request and its signed-header list (`host;x-amz-date;...`).
pub(crate) fn canonical_request(parts: &CanonicalParts<'_>) -> (String, String) {
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), collapse_spaces(value)))
        .collect();
    headers.sort();
    let signed_headers = headers.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(";");
    let canonical_headers: String = headers.iter().map(|(name, value)| format!("{name}:{value}\n")).collect();
    // No operation here uses a query string, so the canonical query string is empty.
    let request = format!(
        "{}\n{}\n\n{canonical_headers}\n{signed_headers}\n{}",
        parts.method, parts.path, parts.payload_sha256
    );
    (request, signed_headers)
}

/// `<date>/<region>/s3/aws4_request`.
pub(crate) fn credential_scope(at: DateTime<Utc>, region: &str) -> String {
    format!("{}/{region}/{SERVICE}/aws4_request", at.format("%Y%m%d"))
}

/// The string to sign for `canonical_request` at `at`.
pub(crate) fn string_to_sign(at: DateTime<Utc>, region: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        amz_date(at),
        credential_scope(at, region),
        sha256_hex(canonical_request.as_bytes())
    )
}

impl Signer<'_> {
    /// The hex signature of `string_to_sign`, with the key derived for the day of `at`.
    pub(crate) fn signature(&self, at: DateTime<Utc>, string_to_sign: &str) -> String {
        let date = at.format("%Y%m%d").to_string();
        let secret = format!("AWS4{}", self.secret_access_key);
        let key = hmac(secret.as_bytes(), date.as_bytes());
        let key = hmac(&key, self.region.as_bytes());
        let key = hmac(&key, SERVICE.as_bytes());
        let key = hmac(&key, b"aws4_request");
        hex::encode(hmac(&key, string_to_sign.as_bytes()))
    }

    /// The `Authorization` header value for a request made at `at`.
    pub(crate) fn authorization(&self, at: DateTime<Utc>, parts: &CanonicalParts<'_>) -> String {
        let (canonical, signed_headers) = canonical_request(parts);
        let signature = self.signature(at, &string_to_sign(at, self.region, &canonical));
        format!(
            "{ALGORITHM} Credential={}/{}, SignedHeaders={signed_headers}, Signature={signature}",
            self.access_key_id,
            credential_scope(at, self.region),
        )
    }
}

/// Trims a header value and folds runs of spaces into one, as SigV4 canonical headers require.
fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length, so `new_from_slice` cannot fail here.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn aws_example_time() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2013, 5, 24, 0, 0, 0).unwrap()
    }

    fn aws_example_signer() -> Signer<'static> {
        Signer {
            access_key_id: "AKIAIOSFODNN7EXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
        }
    }

    /// AWS's "GET Object" example of header-based authentication.
    fn aws_get_object_example() -> CanonicalParts<'static> {
        CanonicalParts {
            method: "GET",
            path: "/test.txt",
            headers: &[
                ("Host", "examplebucket.s3.amazonaws.com"),
                ("Range", "bytes=0-9"),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", "20130524T000000Z"),
            ],
            payload_sha256: EMPTY_SHA256,
        }
    }

    #[test]
    fn the_canonical_request_of_aws_get_object_example_is_the_documented_one() {
        let (canonical, signed_headers) = canonical_request(&aws_get_object_example());
        assert_eq!(
            canonical,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n\
             x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
             x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(signed_headers, "host;range;x-amz-content-sha256;x-amz-date");
    }

    #[test]
    fn the_string_to_sign_of_aws_get_object_example_is_the_documented_one() {
        let (canonical, _) = canonical_request(&aws_get_object_example());
        assert_eq!(
            string_to_sign(aws_example_time(), "us-east-1", &canonical),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n\
             7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
        );
    }

    #[test]
    fn aws_get_object_example_signs_to_the_documented_authorization() {
        let authorization = aws_example_signer().authorization(aws_example_time(), &aws_get_object_example());
        assert_eq!(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn amz_date_is_the_basic_iso_8601_form() {
        assert_eq!(amz_date(aws_example_time()), "20130524T000000Z");
    }

    #[test]
    fn header_values_are_trimmed_and_inner_spaces_folded() {
        let parts = CanonicalParts {
            method: "PUT",
            path: "/",
            headers: &[("X-Amz-Meta-A", "  a   b  "), ("Host", "h")],
            payload_sha256: EMPTY_SHA256,
        };
        let (canonical, signed_headers) = canonical_request(&parts);
        assert!(canonical.contains("\nhost:h\nx-amz-meta-a:a b\n"), "{canonical}");
        assert_eq!(signed_headers, "host;x-amz-meta-a");
    }

    #[test]
    fn path_segments_keep_unreserved_characters_and_encode_the_rest() {
        assert_eq!(encode_segment("logo-1_v2.png~"), "logo-1_v2.png~");
        assert_eq!(encode_segment("a b/ü+="), "a%20b%2F%C3%BC%2B%3D");
    }
}
