//! `S3Store` against a wiremock server standing in for S3 (path style).

use hmac::{Hmac, Mac};
use portico_files::{S3Config, S3Store};
use portico_kernel::{FileError, FileKey, FileStore, StoredFile, TenantId};
use sha2::{Digest, Sha256};
use wiremock::http::{HeaderMap, HeaderValue, Method, Url};
use wiremock::matchers::{body_bytes, header, header_regex, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const BUCKET: &str = "portico-files";
const REGION: &str = "eu-central-1";
const ACCESS_KEY_ID: &str = "AKIAPORTICOTEST";
const SECRET: &str = "s3cr3t/Portico+Key";

fn store_for(server: &MockServer, secret: &str) -> S3Store {
    S3Store::new(S3Config {
        endpoint: Url::parse(&server.uri()).unwrap(),
        bucket: BUCKET.to_owned(),
        region: REGION.to_owned(),
        access_key_id: ACCESS_KEY_ID.to_owned(),
        secret_access_key: secret.to_owned(),
        path_style: true,
    })
    .unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn object_path(key: &FileKey) -> String {
    format!("/{BUCKET}/{key}")
}

fn s3_error(code: &str, message: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>"#
    )
}

/// Accepts a request only if its SigV4 `Authorization` is what the secret
/// gives for the request as received: method, path, the signed headers'
/// values, and a payload hash that is the body's. Written apart from the
/// crate's signer, so one mistake cannot hide in both.
struct SignedWith {
    access_key_id: &'static str,
    secret: &'static str,
    region: &'static str,
}

impl SignedWith {
    fn portico() -> Self {
        Self { access_key_id: ACCESS_KEY_ID, secret: SECRET, region: REGION }
    }

    fn verify(&self, request: &Request) -> Result<(), String> {
        let text = |name: &str| -> Result<String, String> {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .ok_or_else(|| format!("no {name} header"))
        };
        let authorization = text("authorization")?;
        let amz_date = text("x-amz-date")?;
        let payload_sha256 = text("x-amz-content-sha256")?;
        if payload_sha256 != sha256_hex(&request.body) {
            return Err("x-amz-content-sha256 is not the body's hash".to_owned());
        }

        let fields = authorization.strip_prefix("AWS4-HMAC-SHA256 ").ok_or("not AWS4-HMAC-SHA256")?;
        let field = |name: &str| {
            fields
                .split(", ")
                .find_map(|f| f.strip_prefix(name).and_then(|f| f.strip_prefix('=')))
                .map(str::to_owned)
                .ok_or_else(|| format!("no {name} in Authorization"))
        };
        let (credential, signed_headers, signature) =
            (field("Credential")?, field("SignedHeaders")?, field("Signature")?);
        let date = amz_date.get(..8).ok_or("short x-amz-date")?;
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        if credential != format!("{}/{scope}", self.access_key_id) {
            return Err(format!("credential {credential} is not for {scope}"));
        }
        for required in ["host", "x-amz-content-sha256", "x-amz-date"] {
            if !signed_headers.split(';').any(|h| h == required) {
                return Err(format!("{required} is not signed"));
            }
        }

        let mut canonical_headers = String::new();
        for name in signed_headers.split(';') {
            let value = text(name)?;
            canonical_headers
                .push_str(&format!("{name}:{}\n", value.split_whitespace().collect::<Vec<_>>().join(" ")));
        }
        let canonical_request = format!(
            "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_sha256}",
            request.method,
            request.url.path(),
            request.url.query().unwrap_or_default(),
        );
        let string_to_sign =
            format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()));
        let mac = |key: &[u8], data: &str| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
            mac.update(data.as_bytes());
            mac.finalize().into_bytes().to_vec()
        };
        let mut key = mac(format!("AWS4{}", self.secret).as_bytes(), date);
        for part in [self.region, "s3", "aws4_request"] {
            key = mac(&key, part);
        }
        let expected = hex::encode(mac(&key, &string_to_sign));
        if signature == expected { Ok(()) } else { Err(format!("signature {signature} is not {expected}")) }
    }
}

impl Match for SignedWith {
    fn matches(&self, request: &Request) -> bool {
        self.verify(request).map_err(|why| eprintln!("SigV4 check failed: {why}")).is_ok()
    }
}

/// The verifier is itself checked with AWS's documented "GET Object"
/// example, and must refuse the same request once a signed header changes.
#[test]
fn the_test_verifier_accepts_aws_example_and_refuses_a_tampered_copy() {
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("host", "examplebucket.s3.amazonaws.com"),
        ("range", "bytes=0-9"),
        ("x-amz-content-sha256", empty),
        ("x-amz-date", "20130524T000000Z"),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    let mut request = Request {
        url: Url::parse("http://examplebucket.s3.amazonaws.com/test.txt").unwrap(),
        method: Method::GET,
        headers,
        body: Vec::new(),
    };
    let aws = SignedWith {
        access_key_id: "AKIAIOSFODNN7EXAMPLE",
        secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        region: "us-east-1",
    };

    assert_eq!(aws.verify(&request), Ok(()));
    request.headers.insert("range", HeaderValue::from_static("bytes=0-10"));
    assert!(aws.verify(&request).is_err());
}

#[tokio::test]
async fn put_sends_the_bytes_signed_to_the_objects_path() {
    let server = MockServer::start().await;
    let logo = FileKey::new(TenantId::new(), "branding/logo.png").unwrap();
    let bytes = b"\x89PNG not really".to_vec();
    let scope = format!(r"{ACCESS_KEY_ID}/\d{{8}}/{REGION}/s3/aws4_request");
    let signed_headers = "content-type;host;x-amz-content-sha256;x-amz-date";
    let authorization_pattern = format!(
        r"^AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={signed_headers}, Signature=[0-9a-f]{{64}}$"
    );
    Mock::given(method("PUT"))
        .and(path(object_path(&logo)))
        .and(header("content-type", "image/png"))
        .and(header("x-amz-content-sha256", sha256_hex(&bytes).as_str()))
        .and(header_regex("authorization", &authorization_pattern))
        .and(header_regex("x-amz-date", r"^\d{8}T\d{6}Z$"))
        .and(body_bytes(bytes.clone()))
        .and(SignedWith::portico())
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;

    store_for(&server, SECRET).put(&logo, "image/png", &bytes).await.unwrap();
}

#[tokio::test]
async fn a_request_signed_with_another_secret_is_refused_by_the_verifier() {
    let server = MockServer::start().await;
    let logo = FileKey::new(TenantId::new(), "logo.png").unwrap();
    Mock::given(SignedWith::portico()).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    Mock::given(method("PUT"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_raw(s3_error("SignatureDoesNotMatch", "no"), "application/xml"),
        )
        .mount(&server)
        .await;

    let put = store_for(&server, "not-the-secret").put(&logo, "image/png", b"png").await;

    assert!(matches!(put, Err(FileError::Unavailable(_))), "{put:?}");
}

#[tokio::test]
async fn get_returns_the_bytes_and_the_content_type_s3_sends() {
    let server = MockServer::start().await;
    let logo = FileKey::new(TenantId::new(), "branding/logo.svg").unwrap();
    Mock::given(method("GET"))
        .and(path(object_path(&logo)))
        .and(header("x-amz-content-sha256", sha256_hex(b"").as_str()))
        .and(SignedWith::portico())
        .respond_with(ResponseTemplate::new(200).set_body_raw(b"<svg/>".to_vec(), "image/svg+xml"))
        .expect(1)
        .mount(&server)
        .await;

    let file = store_for(&server, SECRET).get(&logo).await.unwrap();

    assert_eq!(
        file,
        Some(StoredFile { content_type: "image/svg+xml".to_owned(), bytes: b"<svg/>".to_vec() })
    );
}

#[tokio::test]
async fn get_of_a_missing_object_is_none() {
    let server = MockServer::start().await;
    let logo = FileKey::new(TenantId::new(), "logo.png").unwrap();
    Mock::given(method("GET"))
        .and(path(object_path(&logo)))
        .and(SignedWith::portico())
        .respond_with(
            ResponseTemplate::new(404).set_body_raw(s3_error("NoSuchKey", "gone"), "application/xml"),
        )
        .expect(1)
        .mount(&server)
        .await;

    assert_eq!(store_for(&server, SECRET).get(&logo).await.unwrap(), None);
}

#[tokio::test]
async fn a_missing_bucket_is_an_error_not_a_missing_file() {
    let server = MockServer::start().await;
    let logo = FileKey::new(TenantId::new(), "logo.png").unwrap();
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(404).set_body_raw(s3_error("NoSuchBucket", "none"), "application/xml"),
        )
        .mount(&server)
        .await;

    let get = store_for(&server, SECRET).get(&logo).await;

    assert!(matches!(&get, Err(FileError::Unavailable(m)) if m.contains("NoSuchBucket")), "{get:?}");
}

#[tokio::test]
async fn delete_sends_a_signed_delete_of_the_object() {
    let server = MockServer::start().await;
    let logo = FileKey::new(TenantId::new(), "branding/logo.png").unwrap();
    Mock::given(method("DELETE"))
        .and(path(object_path(&logo)))
        .and(SignedWith::portico())
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;

    store_for(&server, SECRET).delete(&logo).await.unwrap();
}

#[tokio::test]
async fn deleting_a_missing_object_succeeds() {
    let server = MockServer::start().await;
    let logo = FileKey::new(TenantId::new(), "logo.png").unwrap();
    Mock::given(method("DELETE"))
        .respond_with(
            ResponseTemplate::new(404).set_body_raw(s3_error("NoSuchKey", "gone"), "application/xml"),
        )
        .expect(1)
        .mount(&server)
        .await;

    store_for(&server, SECRET).delete(&logo).await.unwrap();
}

#[tokio::test]
async fn a_refusal_names_status_and_s3_code_but_never_the_secret_or_body_text() {
    let server = MockServer::start().await;
    let logo = FileKey::new(TenantId::new(), "logo.png").unwrap();
    // A hostile or buggy server echoing the secret must not get it into the error.
    let body = s3_error("SignatureDoesNotMatch", &format!("we calculated with {SECRET}"));
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(403).set_body_raw(body, "application/xml"))
        .mount(&server)
        .await;

    let Err(FileError::Unavailable(message)) =
        store_for(&server, SECRET).put(&logo, "image/png", b"png").await
    else {
        panic!("a 403 must be an error");
    };

    assert!(message.contains("403"), "{message}");
    assert!(message.contains("SignatureDoesNotMatch"), "{message}");
    assert!(message.contains(logo.as_str()), "{message}");
    assert!(!message.contains(SECRET), "{message}");
    assert!(!message.contains("we calculated"), "{message}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable_without_naming_it() {
    // A port that was just free: nothing listens there (a dropped MockServer would, as wiremock pools them).
    let address = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let store = S3Store::new(S3Config {
        endpoint: Url::parse(&format!("http://{address}")).unwrap(),
        bucket: BUCKET.to_owned(),
        region: REGION.to_owned(),
        access_key_id: ACCESS_KEY_ID.to_owned(),
        secret_access_key: SECRET.to_owned(),
        path_style: true,
    })
    .unwrap();
    let logo = FileKey::new(TenantId::new(), "logo.png").unwrap();

    let Err(FileError::Unavailable(message)) = store.get(&logo).await else {
        panic!("an unreachable endpoint must be an error");
    };

    assert!(message.contains("could not connect"), "{message}");
    assert!(!message.contains(&address.to_string()), "{message}");
    assert!(!message.contains(BUCKET), "{message}");
}
