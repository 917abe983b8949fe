//! Cache coherence across instances: every committed change of a cached
//! resource is announced on PostgreSQL's `portico_cache` channel (by a
//! trigger, ids only), and each instance drops the keys it names.

use std::time::Duration;

use portico_store::{CACHE_CHANNEL, Store};

use crate::cache::Cache;

/// Listens on a dedicated connection (outside the pools) for as long as the
/// process runs. While the connection is down the cache is bypassed; when
/// it is back the cache is flushed first, because notifications sent in
/// between are lost.
pub async fn keep_coherent(store: Store, cache: Cache) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match store.listen(CACHE_CHANNEL).await {
            Ok(mut notifications) => {
                cache.set_connected(true);
                backoff = Duration::from_millis(500);
                while let Some(payload) = notifications.next().await {
                    match Cache::parse_notification(&payload) {
                        Some(tag) => cache.invalidate(&tag),
                        None => tracing::warn!(payload = payload.len(), "unreadable cache notification"),
                    }
                }
                cache.set_connected(false);
                tracing::warn!("cache notifications lost: reads bypass the cache until they are back");
            }
            Err(error) => {
                let detail = portico_kernel::redact::text(&error.to_string());
                tracing::warn!(error = %detail, "cannot listen for cache notifications; retrying");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}
