//! Cache coherence across instances: every committed change of a cached
//! resource is announced on PostgreSQL's `portico_cache` channel (by a
//! trigger, ids only), and each instance drops the keys it names.

use std::time::Duration;

use portico_store::{CACHE_CHANNEL, Store};

use crate::cache::{Cache, Tag};

/// After this long without a notification the connection is checked with
/// a round trip: a half-open connection (a dropped NAT entry, a fail-over)
/// would otherwise leave the cache trusting a feed that no longer comes.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// How long that round trip may take.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Listens on a dedicated connection (outside the pools) for as long as the
/// process runs. While the connection is down the cache is bypassed; when
/// it is back the cache is flushed first, because notifications sent in
/// between are lost. A silent connection is checked every [`HEARTBEAT`], so
/// a dead one is noticed within about 20 s.
pub async fn keep_coherent(store: Store, cache: Cache) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match store.listen(CACHE_CHANNEL).await {
            Ok(mut notifications) => {
                cache.set_connected(true);
                backoff = Duration::from_millis(500);
                loop {
                    match tokio::time::timeout(HEARTBEAT, notifications.next()).await {
                        Ok(Some(payload)) => match Cache::parse_notification(&payload) {
                            Some(tag) => cache.invalidate(&tag),
                            None => tracing::warn!(bytes = payload.len(), "unreadable cache notification"),
                        },
                        Ok(None) => break,
                        Err(_quiet) if notifications.ping(PING_TIMEOUT).await => {}
                        Err(_quiet) => break,
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

/// The cache invalidations of a handler's changes: applied at once, and
/// again by the idempotency middleware once the request's transaction has
/// committed. Under an `Idempotency-Key` the change commits after the
/// handler returns, so a read in between could refill the old value; the
/// second invalidation drops it before the answer leaves.
#[derive(Debug)]
pub struct Invalidations {
    cache: actix_web::web::Data<Cache>,
    req: actix_web::HttpRequest,
}

/// Tags invalidated while serving a request, for [`after_commit`].
#[derive(Debug, Default)]
struct Pending(Vec<Tag>);

impl Invalidations {
    /// Drops every cached key of `tag`, on this instance (others learn
    /// through the table's trigger).
    pub fn tag(&self, tag: Tag) {
        use actix_web::HttpMessage as _;
        self.cache.invalidate(&tag);
        let mut extensions = self.req.extensions_mut();
        match extensions.get_mut::<Pending>() {
            Some(pending) => pending.0.push(tag),
            None => {
                extensions.insert(Pending(vec![tag]));
            }
        }
    }
}

impl actix_web::FromRequest for Invalidations {
    type Error = crate::error::ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(
            req.app_data::<actix_web::web::Data<Cache>>()
                .map(|cache| Self { cache: cache.clone(), req: req.clone() })
                .ok_or_else(|| {
                    crate::error::ApiError::new(
                        portico_kernel::ErrorKind::Internal,
                        "internal",
                        "The cache is not configured.",
                    )
                }),
        )
    }
}

/// Repeats the request's invalidations after its transaction committed.
pub fn after_commit(req: &actix_web::HttpRequest) {
    use actix_web::HttpMessage as _;
    let (Some(cache), Some(pending)) =
        (req.app_data::<actix_web::web::Data<Cache>>(), req.extensions_mut().remove::<Pending>())
    else {
        return;
    };
    for tag in &pending.0 {
        cache.invalidate(tag);
    }
}
