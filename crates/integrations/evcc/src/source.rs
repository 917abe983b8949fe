//! An evcc instance asked over HTTP for its state.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use portico_kernel::Clock;
use portico_metering::{MeterDataSource, PullFuture, Pulled, PulledReading, SourceError};
use reqwest::header::{ACCEPT, HeaderValue};
use reqwest::{Client, Response, StatusCode, redirect};
use url::Url;

use crate::settings::SettingsError;
use crate::{cursor, transformers};

/// The longest a connection may take to open, whatever the request timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest state read: evcc's is tens to hundreds of KiB (forecasts, tariffs).
const MAX_STATE_BYTES: usize = 8 * 1024 * 1024;

/// The loadpoints of one evcc instance, read from `GET {base}/api/state`.
#[derive(Clone)]
pub struct EvccSource {
    /// `{base}/api/state`.
    state_url: Url,
    clock: Arc<dyn Clock>,
    client: Client,
}

impl fmt::Debug for EvccSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvccSource").field("state_url", &self.state_url.as_str()).finish_non_exhaustive()
    }
}

impl EvccSource {
    /// A source for the evcc at `base_url` (e.g. `http://evcc.local:7070`, or a
    /// path behind a reverse proxy), stamping readings with `clock`, each
    /// request given at most `timeout`.
    pub fn new(base_url: Url, clock: Arc<dyn Clock>, timeout: Duration) -> Result<Self, SettingsError> {
        Self::build(base_url, None, clock, timeout)
    }

    /// As [`EvccSource::new`], connecting only to `addresses` for the URL's
    /// host (the ones its caller resolved and checked), so a name that
    /// resolves elsewhere by the time of the request is not followed.
    pub fn at_addresses(
        base_url: Url,
        addresses: &[std::net::SocketAddr],
        clock: Arc<dyn Clock>,
        timeout: Duration,
    ) -> Result<Self, SettingsError> {
        Self::build(base_url, Some(addresses), clock, timeout)
    }

    fn build(
        base_url: Url,
        addresses: Option<&[std::net::SocketAddr]>,
        clock: Arc<dyn Clock>,
        timeout: Duration,
    ) -> Result<Self, SettingsError> {
        // reqwest is built without a default crypto provider; installing it
        // here means no caller can forget. A second install is a no-op error.
        let _ = rustls::crypto::ring::default_provider().install_default();

        if !matches!(base_url.scheme(), "http" | "https") {
            return Err(SettingsError::BaseUrl("must be an http or https URL"));
        }
        if base_url.host_str().is_none_or(str::is_empty) {
            return Err(SettingsError::BaseUrl("has no host"));
        }
        if !base_url.username().is_empty() || base_url.password().is_some() {
            return Err(SettingsError::BaseUrl("must not carry credentials (evcc's state needs none)"));
        }
        if base_url.query().is_some() || base_url.fragment().is_some() {
            return Err(SettingsError::BaseUrl("must not have a query or fragment"));
        }
        if timeout.is_zero() {
            return Err(SettingsError::Timeout);
        }

        let mut state_url = base_url.clone();
        state_url.set_path(&format!("{}/api/state", base_url.path().trim_end_matches('/')));

        let mut builder = Client::builder()
            .connect_timeout(timeout.min(CONNECT_TIMEOUT))
            .timeout(timeout)
            // evcc answers the state itself; a redirect means something else is listening.
            .redirect(redirect::Policy::none());
        if let (Some(addresses), Some(host)) = (addresses, base_url.host_str()) {
            builder = builder.resolve_to_addrs(host, addresses);
        }
        let client = builder.build().map_err(|_| SettingsError::HttpClient)?;
        Ok(Self { state_url, clock, client })
    }

    /// The body of evcc's state, or why there is none.
    async fn state(&self) -> Result<Vec<u8>, SourceError> {
        let response = self
            .client
            .get(self.state_url.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .send()
            .await
            .map_err(|err| transport_error(&err))?;
        let status = response.status();
        if !status.is_success() {
            return Err(refusal(status));
        }
        read_body(response).await
    }
}

impl MeterDataSource for EvccSource {
    fn pull<'a>(&'a self, cursor: Option<&'a str>) -> PullFuture<'a> {
        Box::pin(async move {
            let now = self.clock.now();
            if cursor::caught_up(cursor, now)? {
                return Ok(Pulled { readings: Vec::new(), cursor: cursor.map(str::to_owned) });
            }
            let body = self.state().await?;
            let registers = transformers::registers(&body).map_err(SourceError::Unexpected)?;
            let readings = registers
                .into_iter()
                .map(|register| PulledReading {
                    external_meter: register.meter,
                    at: now,
                    value: register.value,
                })
                .collect();
            Ok(Pulled { readings, cursor: Some(cursor::at(now)) })
        })
    }
}

/// Reads the body, refusing one larger than [`MAX_STATE_BYTES`].
async fn read_body(mut response: Response) -> Result<Vec<u8>, SourceError> {
    let too_large = || SourceError::Unexpected(format!("evcc state is larger than {MAX_STATE_BYTES} bytes"));
    if response.content_length().is_some_and(|length| length > MAX_STATE_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|err| transport_error(&err))? {
        if body.len() + chunk.len() > MAX_STATE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The error for a non-success status: a server that may recover is worth a retry, anything else is not.
fn refusal(status: StatusCode) -> SourceError {
    let message = format!("evcc answered {status} for its state");
    if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        SourceError::Unavailable(message)
    } else {
        SourceError::Unexpected(message)
    }
}

/// The error for a request that got no (whole) answer; the URL is left out.
fn transport_error(err: &reqwest::Error) -> SourceError {
    if err.is_builder() || err.is_redirect() {
        return SourceError::Unexpected("evcc state request could not be made".to_owned());
    }
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "broke off"
    } else {
        "failed"
    };
    SourceError::Unavailable(format!("evcc state request {what}"))
}

#[cfg(test)]
mod tests {
    use portico_kernel::SystemClock;

    use super::*;

    fn source(base: &str) -> Result<EvccSource, SettingsError> {
        EvccSource::new(Url::parse(base).unwrap(), Arc::new(SystemClock), Duration::from_secs(5))
    }

    #[test]
    fn the_state_url_follows_the_base_and_its_path() {
        assert_eq!(
            source("http://evcc.local:7070").unwrap().state_url.as_str(),
            "http://evcc.local:7070/api/state"
        );
        assert_eq!(
            source("http://10.0.0.5:7070/").unwrap().state_url.as_str(),
            "http://10.0.0.5:7070/api/state"
        );
        assert_eq!(
            source("https://home.example/evcc/").unwrap().state_url.as_str(),
            "https://home.example/evcc/api/state"
        );
    }

    #[test]
    fn a_base_url_that_cannot_be_asked_is_refused() {
        assert!(matches!(source("ftp://evcc.local"), Err(SettingsError::BaseUrl(_))));
        assert!(matches!(source("http://admin:secret@evcc.local:7070"), Err(SettingsError::BaseUrl(_))));
        assert!(matches!(source("http://evcc.local:7070/?jq=.loadpoints"), Err(SettingsError::BaseUrl(_))));
        assert!(matches!(source("http://evcc.local:7070/#state"), Err(SettingsError::BaseUrl(_))));
        let no_timeout =
            EvccSource::new(Url::parse("http://evcc.local").unwrap(), Arc::new(SystemClock), Duration::ZERO);
        assert!(matches!(no_timeout, Err(SettingsError::Timeout)));
    }

    #[test]
    fn statuses_worth_a_retry_are_unavailable_and_the_rest_unexpected() {
        for status in [500, 502, 503, 504, 408, 429] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(matches!(refusal(status), SourceError::Unavailable(_)), "{status}");
        }
        for status in [400, 401, 403, 404, 410, 302, 304] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(matches!(refusal(status), SourceError::Unexpected(_)), "{status}");
        }
    }
}
