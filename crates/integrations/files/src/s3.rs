//! An S3-compatible object store (AWS S3, MinIO, Ceph, ...), spoken to over
//! HTTP with every request signed with AWS Signature Version 4.

mod signing;
mod transformers;

use std::fmt;
use std::time::Duration;

use chrono::Utc;
use portico_kernel::{FileError, FileFuture, FileKey, FileStore, StoredFile};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, Method, Response, StatusCode};
use url::Url;

use self::signing::{CanonicalParts, Signer};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// What a file stored without a content type is served as.
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Where the bucket is and how to sign for it.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// The service, e.g. `https://s3.eu-central-1.amazonaws.com` or `http://127.0.0.1:9000`.
    pub endpoint: Url,
    /// The bucket that holds every tenant's files.
    pub bucket: String,
    /// The region the signature is scoped to (`us-east-1` for most MinIO set-ups).
    pub region: String,
    /// The access key id (public half of the credentials).
    pub access_key_id: String,
    /// The secret access key; never printed.
    pub secret_access_key: String,
    /// `true`: `<endpoint>/<bucket>/<key>` (MinIO, Ceph); `false`: `<bucket>.<endpoint host>/<key>`.
    pub path_style: bool,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint.as_str())
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("path_style", &self.path_style)
            .finish()
    }
}

/// Files as objects of one bucket, each under its key (`<tenant id>/<path>`).
#[derive(Debug, Clone)]
pub struct S3Store {
    config: S3Config,
    /// The endpoint with the bucket's host (virtual-hosted style), without a path.
    base: Url,
    /// The encoded path every object's path starts with (`/<bucket>` in path style).
    path_prefix: String,
    client: Client,
}

impl S3Store {
    /// A store for `config`; checks the endpoint and builds the HTTP client
    /// (connect timeout 5 s, whole request 30 s).
    pub fn new(config: S3Config) -> Result<Self, FileError> {
        // reqwest is built without a default crypto provider; installing it
        // here means no caller can forget. A second install is a no-op error.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let endpoint = &config.endpoint;
        let invalid = |why: &str| Err(FileError::Unavailable(format!("S3 settings: {why}")));
        if !matches!(endpoint.scheme(), "http" | "https") {
            return invalid("the endpoint must be an http or https URL");
        }
        let Some(host) = endpoint.host_str() else {
            return invalid("the endpoint has no host");
        };
        if !endpoint.username().is_empty() || endpoint.password().is_some() {
            return invalid("the endpoint must not carry credentials");
        }
        if endpoint.query().is_some() || endpoint.fragment().is_some() {
            return invalid("the endpoint must not have a query or fragment");
        }
        if config.bucket.is_empty() || config.region.is_empty() || config.access_key_id.is_empty() {
            return invalid("bucket, region and access key id are required");
        }

        let mut base = endpoint.clone();
        let endpoint_path = endpoint.path().trim_end_matches('/');
        let path_prefix = if config.path_style {
            format!("{endpoint_path}/{}", signing::encode_segment(&config.bucket))
        } else {
            let bucket_host = format!("{}.{host}", config.bucket);
            if base.set_host(Some(&bucket_host)).is_err() {
                return invalid("the bucket cannot be a host name label: use path style");
            }
            endpoint_path.to_owned()
        };
        base.set_path("/");

        let client = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|_| FileError::Unavailable("S3 HTTP client could not be built".to_owned()))?;
        Ok(Self { config, base, path_prefix, client })
    }

    /// The URL of `key`'s object: each key segment encoded, `/` kept.
    fn object_url(&self, key: &FileKey) -> Url {
        let mut path = self.path_prefix.clone();
        for segment in key.as_str().split('/') {
            path.push('/');
            path.push_str(&signing::encode_segment(segment));
        }
        let mut url = self.base.clone();
        url.set_path(&path);
        url
    }

    /// Sends one signed request for `key`'s object.
    async fn send(
        &self,
        method: Method,
        key: &FileKey,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Response, FileError> {
        let url = self.object_url(key);
        let host = host_header(&url);
        let now = Utc::now();
        let amz_date = signing::amz_date(now);
        let payload_sha256 = signing::sha256_hex(body);

        let mut signed: Vec<(&str, &str)> =
            vec![("host", &host), ("x-amz-content-sha256", &payload_sha256), ("x-amz-date", &amz_date)];
        if let Some(content_type) = content_type {
            signed.push(("content-type", content_type));
        }
        let signer = Signer {
            access_key_id: &self.config.access_key_id,
            secret_access_key: &self.config.secret_access_key,
            region: &self.config.region,
        };
        let authorization = signer.authorization(
            now,
            &CanonicalParts {
                method: method.as_str(),
                path: url.path(),
                headers: &signed,
                payload_sha256: &payload_sha256,
            },
        );

        let with_body = method == Method::PUT;
        let mut request = self
            .client
            .request(method, url)
            .header("x-amz-date", amz_date)
            .header("x-amz-content-sha256", payload_sha256)
            .header(AUTHORIZATION, authorization);
        if let Some(content_type) = content_type {
            let value = HeaderValue::from_str(content_type).map_err(|_| {
                FileError::Unavailable(format!("content type of {key} is not a valid header value"))
            })?;
            request = request.header(CONTENT_TYPE, value);
        }
        if with_body {
            request = request.body(body.to_vec());
        }
        request.send().await.map_err(|err| transport_error(key, &err))
    }
}

impl FileStore for S3Store {
    fn put<'a>(&'a self, key: &'a FileKey, content_type: &'a str, bytes: &'a [u8]) -> FileFuture<'a, ()> {
        Box::pin(async move {
            let response = self.send(Method::PUT, key, Some(content_type), bytes).await?;
            if response.status().is_success() {
                return Ok(());
            }
            Err(refusal(key, response).await)
        })
    }

    fn get<'a>(&'a self, key: &'a FileKey) -> FileFuture<'a, Option<StoredFile>> {
        Box::pin(async move {
            let response = self.send(Method::GET, key, None, &[]).await?;
            let status = response.status();
            if status == StatusCode::NOT_FOUND {
                return missing_object(key, response).await.map(|()| None);
            }
            if !status.is_success() {
                return Err(refusal(key, response).await);
            }
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or(DEFAULT_CONTENT_TYPE)
                .to_owned();
            let bytes = response.bytes().await.map_err(|err| transport_error(key, &err))?;
            Ok(Some(StoredFile { content_type, bytes: bytes.to_vec() }))
        })
    }

    fn delete<'a>(&'a self, key: &'a FileKey) -> FileFuture<'a, ()> {
        Box::pin(async move {
            let response = self.send(Method::DELETE, key, None, &[]).await?;
            let status = response.status();
            if status == StatusCode::NOT_FOUND {
                return missing_object(key, response).await;
            }
            if status.is_success() {
                return Ok(());
            }
            Err(refusal(key, response).await)
        })
    }
}

/// The `Host` header reqwest sends for `url`: the port only when it is not the scheme's default.
fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// A 404 means "no such object" unless S3 says the bucket itself is missing,
/// which is a misconfiguration, not an absent file.
async fn missing_object(key: &FileKey, response: Response) -> Result<(), FileError> {
    let body = response.bytes().await.unwrap_or_default();
    match transformers::error_code(&String::from_utf8_lossy(&body)) {
        Some(code @ "NoSuchBucket") => {
            Err(FileError::Unavailable(format!("S3 answered 404 ({code}) for {key}")))
        }
        _ => Ok(()),
    }
}

/// The error for a non-success answer: its status and S3's error code, nothing else from the body.
async fn refusal(key: &FileKey, response: Response) -> FileError {
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    let body = String::from_utf8_lossy(&body);
    let code = transformers::error_code(&body);
    tracing::warn!(%key, %status, code, "S3 refused a file request");
    match code {
        Some(code) => FileError::Unavailable(format!("S3 answered {status} ({code}) for {key}")),
        None => FileError::Unavailable(format!("S3 answered {status} for {key}")),
    }
}

/// The error for a request that got no answer; the URL (endpoint, bucket) is left out.
fn transport_error(key: &FileKey, err: &reqwest::Error) -> FileError {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    FileError::Unavailable(format!("S3 request for {key} {what}"))
}

#[cfg(test)]
mod tests {
    use portico_kernel::TenantId;

    use super::*;

    fn config(endpoint: &str, path_style: bool) -> S3Config {
        S3Config {
            endpoint: Url::parse(endpoint).unwrap(),
            bucket: "portico-files".to_owned(),
            region: "eu-central-1".to_owned(),
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: "very-secret-key".to_owned(),
            path_style,
        }
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let config = config("http://127.0.0.1:9000", true);
        assert!(!format!("{config:?}").contains("very-secret-key"));
        let store = S3Store::new(config).unwrap();
        assert!(!format!("{store:?}").contains("very-secret-key"));
    }

    #[test]
    fn path_style_puts_the_bucket_first_in_the_path() {
        let store = S3Store::new(config("http://127.0.0.1:9000", true)).unwrap();
        let tenant = TenantId::new();
        let key = FileKey::new(tenant, "branding/logo.png").unwrap();
        let url = store.object_url(&key);
        assert_eq!(url.as_str(), format!("http://127.0.0.1:9000/portico-files/{tenant}/branding/logo.png"));
        assert_eq!(host_header(&url), "127.0.0.1:9000");
    }

    #[test]
    fn virtual_hosted_style_puts_the_bucket_in_the_host() {
        let store = S3Store::new(config("https://s3.eu-central-1.amazonaws.com", false)).unwrap();
        let tenant = TenantId::new();
        let key = FileKey::new(tenant, "logo.png").unwrap();
        let url = store.object_url(&key);
        assert_eq!(
            url.as_str(),
            format!("https://portico-files.s3.eu-central-1.amazonaws.com/{tenant}/logo.png")
        );
        assert_eq!(host_header(&url), "portico-files.s3.eu-central-1.amazonaws.com");
    }

    #[test]
    fn an_endpoint_path_is_kept_before_the_bucket() {
        let store = S3Store::new(config("http://storage.internal/s3/", true)).unwrap();
        let tenant = TenantId::new();
        let key = FileKey::new(tenant, "a.txt").unwrap();
        assert_eq!(store.object_url(&key).path(), format!("/s3/portico-files/{tenant}/a.txt"));
    }

    #[test]
    fn an_endpoint_that_is_not_http_is_refused() {
        assert!(S3Store::new(config("ftp://127.0.0.1", true)).is_err());
        assert!(S3Store::new(config("http://user:pw@127.0.0.1", true)).is_err());
        let mut no_bucket = config("http://127.0.0.1:9000", true);
        no_bucket.bucket.clear();
        assert!(S3Store::new(no_bucket).is_err());
    }
}
