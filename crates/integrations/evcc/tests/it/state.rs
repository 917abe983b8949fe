//! What a state body turns into: one reading per loadpoint with a total counter.

use std::sync::Arc;
use std::time::Duration;

use portico_evcc::EvccSource;
use portico_kernel::FixedClock;
use url::Url;

use portico_metering::{MeterDataSource, PulledReading};
use wiremock::MockServer;

use crate::support::{STATE_0_133, STATE_0_207, dec, evcc_answering, json, now, source_for, state_endpoint};

fn reading(meter: &str, value: &str) -> PulledReading {
    PulledReading { external_meter: meter.to_owned(), at: now(), value: dec(value) }
}

#[tokio::test]
async fn the_state_of_current_evcc_gives_a_reading_per_loadpoint_with_a_counter() {
    let evcc = evcc_answering(json(STATE_0_207), 1).await;

    let pulled = evcc.source.pull(None).await.unwrap();

    // "Gäste" has no chargeTotalImport: no reading, and no failure.
    assert_eq!(pulled.readings, vec![reading("Garage", "1234.567"), reading("Carport", "6539.884")]);
}

#[tokio::test]
async fn the_result_wrapped_state_of_older_evcc_is_read_the_same() {
    let evcc = evcc_answering(json(STATE_0_133), 1).await;

    let pulled = evcc.source.pull(None).await.unwrap();

    // The first loadpoint has an empty title; the second's float noise is rounded to the Wh.
    assert_eq!(pulled.readings, vec![reading("loadpoint-1", "812.25"), reading("Stellplatz", "20101.277")]);
}

#[tokio::test]
async fn loadpoints_are_named_by_title_or_else_by_position() {
    let state = r#"{"loadpoints":[
        {"title":"Garage","chargePower":11040,"chargeTotalImport":3120.5},
        {"title":"","chargePower":0,"chargeTotalImport":77.125},
        {"title":"Gäste","chargePower":0,"chargedEnergy":0},
        {"chargePower":0,"chargeTotalImport":5}
    ],"version":"0.210.2"}"#;
    let evcc = evcc_answering(json(state), 1).await;

    let pulled = evcc.source.pull(None).await.unwrap();

    assert_eq!(
        pulled.readings,
        vec![reading("Garage", "3120.5"), reading("loadpoint-2", "77.125"), reading("loadpoint-4", "5")]
    );
}

#[tokio::test]
async fn the_register_value_is_parsed_exactly() {
    let evcc =
        evcc_answering(json(r#"{"loadpoints":[{"title":"Garage","chargeTotalImport":1234.567}]}"#), 1).await;

    let pulled = evcc.source.pull(None).await.unwrap();

    assert_eq!(pulled.readings[0].value, dec("1234.567"));
    assert_eq!(pulled.readings[0].value.to_string(), "1234.567");
}

#[tokio::test]
async fn readings_and_cursor_carry_the_instant_of_the_pull() {
    let evcc = evcc_answering(json(STATE_0_207), 1).await;

    let pulled = evcc.source.pull(None).await.unwrap();

    assert!(pulled.readings.iter().all(|reading| reading.at == now()));
    assert_eq!(pulled.cursor.as_deref(), Some("2026-03-29T10:15:30Z"));
}

#[tokio::test]
async fn a_state_without_counted_loadpoints_gives_no_readings_but_moves_the_cursor() {
    let evcc = evcc_answering(json(r#"{"loadpoints":[],"version":"0.207.0"}"#), 1).await;

    let pulled = evcc.source.pull(None).await.unwrap();

    assert!(pulled.readings.is_empty());
    assert_eq!(pulled.cursor.as_deref(), Some("2026-03-29T10:15:30Z"));
}

#[tokio::test]
async fn a_base_url_with_a_path_keeps_it_before_the_api() {
    let server = MockServer::start().await;
    state_endpoint(&server, "/evcc/api/state", json(STATE_0_207), 1).await;
    let clock = std::sync::Arc::new(portico_kernel::FixedClock::at(now()));
    let source = source_for(&format!("{}/evcc/", server.uri()), &clock, Duration::from_secs(5));

    let pulled = source.pull(None).await.unwrap();

    assert_eq!(pulled.readings.len(), 2);
}

#[tokio::test]
async fn a_source_pinned_to_addresses_connects_only_there_whatever_the_name_resolves_to() {
    let server = MockServer::start().await;
    state_endpoint(
        &server,
        "/api/state",
        json(r#"{"loadpoints":[{"title":"Garage","chargeTotalImport":7}]}"#),
        1,
    )
    .await;
    let clock = Arc::new(FixedClock::at(now()));
    // A name no resolver knows: only the pinned address can answer for it.
    let url = Url::parse(&format!("http://evcc.invalid:{}", server.address().port())).unwrap();
    let source = EvccSource::at_addresses(url, &[*server.address()], clock, Duration::from_secs(5)).unwrap();

    let pulled = source.pull(None).await.unwrap();

    assert_eq!(pulled.readings[0].value, dec("7"));
    server.verify().await;
}
