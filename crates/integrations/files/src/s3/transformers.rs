//! What S3 sends back, read without an XML parser: only the error `<Code>`
//! is ever needed, and it is a short identifier.

/// The `<Code>` of an S3 error body (`SignatureDoesNotMatch`, `NoSuchBucket`, ...),
/// if there is one that looks like an S3 error code.
pub(crate) fn error_code(body: &str) -> Option<&str> {
    let start = body.find("<Code>")? + "<Code>".len();
    let len = body[start..].find("</Code>")?;
    let code = body[start..start + len].trim();
    // Only an identifier is passed on, never free text from the body.
    let plausible = !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    plausible.then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_of_an_s3_error_body_is_read() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error>"#;
        assert_eq!(error_code(body), Some("SignatureDoesNotMatch"));
    }

    #[test]
    fn a_body_without_a_plausible_code_gives_none() {
        assert_eq!(error_code(""), None);
        assert_eq!(error_code("<html>Bad Gateway</html>"), None);
        assert_eq!(error_code("<Code></Code>"), None);
        assert_eq!(error_code("<Code>not a code <script></Code>"), None);
        assert_eq!(error_code("<Code>Unterminated"), None);
    }
}
