//! The cursor: the instant of the last pull, since evcc keeps no history.

use chrono::TimeDelta;
use portico_metering::{MeterDataSource, SourceError};

use crate::support::{STATE_0_207, evcc_answering, json, now};

#[tokio::test]
async fn a_cursor_at_now_gives_no_readings_without_asking_evcc() {
    let evcc = evcc_answering(json(STATE_0_207), 0).await;

    let pulled = evcc.source.pull(Some("2026-03-29T10:15:30Z")).await.unwrap();

    assert!(pulled.readings.is_empty());
    assert_eq!(pulled.cursor.as_deref(), Some("2026-03-29T10:15:30Z"));
}

#[tokio::test]
async fn a_cursor_after_now_gives_no_readings_and_is_kept() {
    let evcc = evcc_answering(json(STATE_0_207), 0).await;

    let pulled = evcc.source.pull(Some("2026-03-29T10:20:00Z")).await.unwrap();

    assert!(pulled.readings.is_empty());
    assert_eq!(pulled.cursor.as_deref(), Some("2026-03-29T10:20:00Z"));
}

#[tokio::test]
async fn the_next_pull_after_time_has_passed_reads_again_and_moves_the_cursor() {
    let evcc = evcc_answering(json(STATE_0_207), 2).await;
    let first = evcc.source.pull(None).await.unwrap();

    evcc.clock.advance(TimeDelta::minutes(5));
    let next = evcc.source.pull(first.cursor.as_deref()).await.unwrap();

    assert_eq!(next.readings.len(), 2);
    assert!(next.readings.iter().all(|reading| reading.at == now() + TimeDelta::minutes(5)));
    assert_eq!(next.cursor.as_deref(), Some("2026-03-29T10:20:30Z"));
}

#[tokio::test]
async fn a_cursor_that_is_not_an_instant_is_unexpected() {
    let evcc = evcc_answering(json(STATE_0_207), 0).await;

    let result = evcc.source.pull(Some("page-2")).await;

    assert!(matches!(result, Err(SourceError::Unexpected(_))), "{result:?}");
}
