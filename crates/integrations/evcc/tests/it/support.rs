//! A mock evcc, a stopped clock and the state bodies evcc sends.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use portico_evcc::EvccSource;
use portico_kernel::FixedClock;
use rust_decimal::Decimal;
use url::Url;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The state as evcc 0.207 and later send it: the object itself. Loadpoints
/// "Garage" (1234.567 kWh), "Carport" (6539.884 kWh), "Gäste" (no counter).
pub const STATE_0_207: &str = include_str!("../../testdata/state-0.207.json");
/// The state as evcc before 0.207 sent it: wrapped in `result`. Loadpoints
/// without a title (812.25 kWh) and "Stellplatz" (20101.277000000002 kWh).
pub const STATE_0_133: &str = include_str!("../../testdata/state-0.133-result.json");

/// When the tests' clock stands.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 29, 10, 15, 30).unwrap()
}

pub fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

/// A 200 answer carrying `body` as JSON.
pub fn json(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.to_owned(), "application/json")
}

/// A mock evcc at `server`, the clock it is read with, and the source that reads it.
pub struct Evcc {
    pub server: MockServer,
    pub clock: Arc<FixedClock>,
    pub source: EvccSource,
}

/// A mock evcc that answers `GET /api/state` (and nothing else) with `response`, `calls` times.
pub async fn evcc_answering(response: ResponseTemplate, calls: u64) -> Evcc {
    let server = MockServer::start().await;
    state_endpoint(&server, "/api/state", response, calls).await;
    let clock = Arc::new(FixedClock::at(now()));
    let source = source_for(&server.uri(), &clock, Duration::from_secs(5));
    Evcc { server, clock, source }
}

/// Mounts evcc's state endpoint at `at`: a GET asking for JSON.
pub async fn state_endpoint(server: &MockServer, at: &str, response: ResponseTemplate, calls: u64) {
    Mock::given(method("GET"))
        .and(path(at))
        .and(header("accept", "application/json"))
        .respond_with(response)
        .expect(calls)
        .mount(server)
        .await;
}

pub fn source_for(base: &str, clock: &Arc<FixedClock>, timeout: Duration) -> EvccSource {
    EvccSource::new(Url::parse(base).unwrap(), clock.clone(), timeout).unwrap()
}
