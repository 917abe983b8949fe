//! How evcc's failures surface: worth a retry (`Unavailable`) or not (`Unexpected`).

use std::sync::Arc;
use std::time::Duration;

use portico_kernel::FixedClock;
use portico_metering::{MeterDataSource, SourceError};
use wiremock::ResponseTemplate;

use crate::support::{STATE_0_207, evcc_answering, json, now, source_for};

#[tokio::test]
async fn a_server_error_is_unavailable() {
    for status in [500, 503] {
        let evcc = evcc_answering(ResponseTemplate::new(status).set_body_string("internal error"), 1).await;

        let result = evcc.source.pull(None).await;

        let Err(SourceError::Unavailable(message)) = result else { panic!("{status}: {result:?}") };
        assert!(message.contains(&status.to_string()), "{message}");
    }
}

#[tokio::test]
async fn a_missing_endpoint_is_unexpected() {
    let evcc = evcc_answering(ResponseTemplate::new(404).set_body_string("404 page not found"), 1).await;

    let result = evcc.source.pull(None).await;

    assert!(matches!(result, Err(SourceError::Unexpected(ref m)) if m.contains("404")), "{result:?}");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_unexpected() {
    let evcc = evcc_answering(
        ResponseTemplate::new(200).set_body_raw("<html><body>Router login</body></html>", "text/html"),
        1,
    )
    .await;

    let result = evcc.source.pull(None).await;

    let Err(SourceError::Unexpected(message)) = result else { panic!("{result:?}") };
    assert!(!message.contains("Router"), "the body is not quoted: {message}");
}

#[tokio::test]
async fn json_that_is_not_evcc_state_is_unexpected() {
    let evcc = evcc_answering(json(r#"{"status":"ok","uptime":1234}"#), 1).await;

    let result = evcc.source.pull(None).await;

    assert!(matches!(result, Err(SourceError::Unexpected(_))), "{result:?}");
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let evcc = evcc_answering(
        ResponseTemplate::new(302).insert_header("location", "http://elsewhere.invalid/api/state"),
        1,
    )
    .await;

    let result = evcc.source.pull(None).await;

    assert!(matches!(result, Err(SourceError::Unexpected(_))), "{result:?}");
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    // A port that was free a moment ago and has nothing listening now.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let clock = Arc::new(FixedClock::at(now()));
    let source = source_for(&format!("http://127.0.0.1:{port}"), &clock, Duration::from_secs(5));

    let result = source.pull(None).await;

    let Err(SourceError::Unavailable(message)) = result else { panic!("{result:?}") };
    assert!(!message.contains("127.0.0.1"), "the URL is left out: {message}");
}

#[tokio::test]
async fn an_evcc_that_answers_too_late_is_unavailable() {
    let evcc = evcc_answering(json(STATE_0_207).set_delay(Duration::from_secs(3)), 1).await;
    let source = source_for(&evcc.server.uri(), &evcc.clock, Duration::from_millis(200));

    let result = source.pull(None).await;

    let Err(SourceError::Unavailable(message)) = result else { panic!("{result:?}") };
    assert!(message.contains("timed out"), "{message}");
}
