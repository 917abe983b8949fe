//! In-process read-through cache with tag invalidation.
//!
//! Every value is stored under a [`CacheKey`] whose [`Tag`] names what the value is about. Invalidating a tag
//! drops every key of that tag (all users, all variants). A global sequence number orders loads against
//! invalidations, so a refill whose load began before an invalidation (or a flush) is never served
//! afterwards: validity is checked when inserting and again on every read.
//!
//! The cache only serves entries while the cross-instance invalidation feed is connected; while it is down
//! every lookup goes to the loader ([`Lookup::Bypass`]), and reconnecting flushes everything.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::Expiry;
use moka::notification::RemovalCause;
use uuid::Uuid;

/// The longest TTL the cache applies; longer configured values are clamped to it.
const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// How much longer a tag record lives than the longest entry TTL (see [`Cache::build`]).
const TAG_TTL_MARGIN: Duration = Duration::from_secs(60);

/// How long a cached value may be served, by kind of data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtlClass {
    /// Per-user data.
    User,
    /// Tenant-wide data.
    Tenant,
    /// Analytics aggregates.
    Analytics,
    /// Generated reports.
    Reports,
}

/// Cache settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// When false, every lookup goes to the loader and nothing is stored.
    pub enabled: bool,
    /// Maximum number of cached values.
    pub max_entries: u64,
    /// TTL of [`TtlClass::User`] values.
    pub user_ttl: Duration,
    /// TTL of [`TtlClass::Tenant`] values.
    pub tenant_ttl: Duration,
    /// TTL of [`TtlClass::Analytics`] values.
    pub analytics_ttl: Duration,
    /// TTL of [`TtlClass::Reports`] values.
    pub reports_ttl: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_entries: 10_000,
            user_ttl: Duration::from_secs(5 * 60),
            tenant_ttl: Duration::from_secs(10 * 60),
            analytics_ttl: Duration::from_secs(3600),
            reports_ttl: Duration::from_secs(6 * 3600),
        }
    }
}

impl CacheConfig {
    /// The configured TTL of a class.
    pub fn ttl(&self, class: TtlClass) -> Duration {
        match class {
            TtlClass::User => self.user_ttl,
            TtlClass::Tenant => self.tenant_ttl,
            TtlClass::Analytics => self.analytics_ttl,
            TtlClass::Reports => self.reports_ttl,
        }
    }

    fn longest_ttl(&self) -> Duration {
        self.user_ttl.max(self.tenant_ttl).max(self.analytics_ttl).max(self.reports_ttl).min(MAX_TTL)
    }
}

/// What a cached value is about; the unit of invalidation. Renders as `{tenant}/{resource}/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tag {
    /// Tenant that owns the data.
    pub tenant: Uuid,
    /// Kind of resource, e.g. `project`.
    pub resource: String,
    /// Resource id.
    pub id: String,
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.tenant, self.resource, self.id)
    }
}

/// Where a value is cached: its tag, the user for per-user data, and a variant such as a query string.
/// Renders as `{tenant}/{user or -}/{resource}/{id}/{variant}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// What the value is about.
    pub tag: Tag,
    /// The user the value is for, if it is per-user.
    pub user: Option<Uuid>,
    /// Distinguishes values of one tag and user, e.g. a query string; empty for none.
    pub variant: String,
}

impl CacheKey {
    /// A key for tenant-wide data of `tag`, with no variant.
    pub fn new(tag: Tag) -> Self {
        Self { tag, user: None, variant: String::new() }
    }

    /// The same key, for `user` only.
    pub fn for_user(self, user: Uuid) -> Self {
        Self { user: Some(user), ..self }
    }

    /// The same key with variant `v`.
    pub fn variant(self, v: impl Into<String>) -> Self {
        Self { variant: v.into(), ..self }
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Tag { tenant, resource, id } = &self.tag;
        match self.user {
            Some(user) => write!(f, "{tenant}/{user}/{resource}/{id}/{}", self.variant),
            None => write!(f, "{tenant}/-/{resource}/{id}/{}", self.variant),
        }
    }
}

/// How a lookup was served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// From the cache.
    Hit,
    /// From the loader; the value was stored if still valid.
    Miss,
    /// From the loader because the cache is disabled or not connected; nothing was stored.
    Bypass,
}

impl Lookup {
    /// The `X-Cache` header value: `HIT` or `MISS`.
    pub fn header_value(self) -> &'static str {
        match self {
            Lookup::Hit => "HIT",
            Lookup::Miss | Lookup::Bypass => "MISS",
        }
    }
}

/// Counters since the cache was created; `entries` is approximate (moka counts lazily).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups served from the cache.
    pub hits: u64,
    /// Lookups served from the loader, bypasses included.
    pub misses: u64,
    /// Values currently stored, valid or not yet found invalid.
    pub entries: u64,
}

#[derive(Clone, Debug)]
struct Entry {
    value: Bytes,
    /// Sequence number taken before the load began.
    seq: u64,
    ttl: Duration,
}

#[derive(Debug)]
struct ByClass;

impl Expiry<CacheKey, Entry> for ByClass {
    fn expire_after_create(&self, _: &CacheKey, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _: &CacheKey,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

struct Inner {
    config: CacheConfig,
    entries: moka::future::Cache<CacheKey, Entry>,
    /// Sequence number of the latest invalidation of each tag.
    tags: moka::sync::Cache<Tag, u64>,
    seq: AtomicU64,
    /// Entries loaded at or before this sequence number are invalid.
    floor: Arc<AtomicU64>,
    connected: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// The cache. Cloning is cheap and shares the same storage.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("config", &self.inner.config)
            .field("connected", &self.is_connected())
            .field("seq", &self.inner.seq.load(SeqCst))
            .field("floor", &self.inner.floor.load(SeqCst))
            .field("stats", &self.stats())
            .finish()
    }
}

impl Cache {
    /// A cache with `config`, not yet connected (every lookup bypasses it until [`Cache::set_connected`]).
    pub fn new(config: CacheConfig) -> Self {
        let tag_capacity = config.max_entries.max(10_000).saturating_mul(4);
        Self::build(config, tag_capacity)
    }

    /// The same cache, marked connected; for callers (and tests) that have no invalidation feed to wait for.
    pub fn connected(self) -> Self {
        self.inner.connected.store(true, SeqCst);
        self
    }

    fn build(config: CacheConfig, tag_capacity: u64) -> Self {
        let floor = Arc::new(AtomicU64::new(0));
        let listener_floor = Arc::clone(&floor);
        // Why losing a tag record is safe: a record `tags[T] = i` is what makes entries of T loaded before
        // `i` invalid. Whenever moka drops a record for any reason but replacement (expiry, size eviction),
        // the listener raises `floor` to at least `i`, which keeps every one of those entries invalid (and
        // also entries of other tags loaded before `i`): losing a record can only cost extra misses, never
        // serve stale data. A replacement is always by a value at least as large (see `invalidate`), so
        // nothing is lost there. Records live for the longest entry TTL plus a margin, so an entry the
        // record invalidated has normally expired before the record does; the margin covers a refill that
        // stalls between its insert check and its insert, because moka stops returning an expired record
        // before its housekeeping calls the listener. moka also unlinks an evicted record just before
        // calling the listener; `is_valid` reads the floor after the record to keep that gap minimal.
        let tags = moka::sync::Cache::builder()
            .max_capacity(tag_capacity)
            .time_to_live(config.longest_ttl().saturating_add(TAG_TTL_MARGIN))
            .eviction_listener(move |_tag, seq: u64, cause| {
                if cause != RemovalCause::Replaced {
                    listener_floor.fetch_max(seq, SeqCst);
                }
            })
            .build();
        let entries =
            moka::future::Cache::builder().max_capacity(config.max_entries).expire_after(ByClass).build();
        let inner = Inner {
            config,
            entries,
            tags,
            seq: AtomicU64::new(1),
            floor,
            connected: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        };
        Self { inner: Arc::new(inner) }
    }

    /// The configuration the cache was created with.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// Returns the cached value of `key`, or calls `load` and caches its value for the TTL of `class`.
    /// A loader error is returned as is and nothing is stored.
    pub async fn get_or_load<E, F, Fut>(
        &self,
        key: &CacheKey,
        class: TtlClass,
        load: F,
    ) -> Result<(Bytes, Lookup), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
    {
        let inner = &self.inner;
        if !self.serving() {
            inner.misses.fetch_add(1, SeqCst);
            return Ok((load().await?, Lookup::Bypass));
        }
        if let Some(entry) = inner.entries.get(key).await {
            if self.is_valid(&key.tag, entry.seq) {
                inner.hits.fetch_add(1, SeqCst);
                return Ok((entry.value, Lookup::Hit));
            }
            inner.entries.invalidate(key).await;
        }
        inner.misses.fetch_add(1, SeqCst);
        // Taken before the load: any invalidation that could concern what the loader reads gets a larger
        // number, so it makes this value invalid.
        let seq = inner.seq.fetch_add(1, SeqCst);
        let value = load().await?;
        if self.serving() && self.is_valid(&key.tag, seq) {
            let ttl = inner.config.ttl(class).min(MAX_TTL);
            inner.entries.insert(key.clone(), Entry { value: value.clone(), seq, ttl }).await;
        }
        Ok((value, Lookup::Miss))
    }

    /// Drops every key of `tag`, for every user and variant, including refills already under way. The
    /// entries stop being served at once; their memory is freed when they are next looked up or expire.
    pub fn invalidate(&self, tag: &Tag) {
        let seq = self.inner.seq.fetch_add(1, SeqCst);
        // Keep the largest number: two concurrent invalidations may reach the record in either order.
        self.inner
            .tags
            .entry(tag.clone())
            .and_upsert_with(|old| old.map_or(seq, |e| e.into_value().max(seq)));
    }

    /// Drops everything, including refills already under way.
    pub fn flush(&self) {
        let seq = self.inner.seq.fetch_add(1, SeqCst);
        self.inner.floor.fetch_max(seq, SeqCst);
        self.inner.entries.invalidate_all();
    }

    /// Records whether the cross-instance invalidation feed is up. While it is down every lookup is a
    /// bypass; coming back up flushes first, since notifications may have been missed meanwhile.
    pub fn set_connected(&self, connected: bool) {
        if connected && !self.is_connected() {
            self.flush();
        }
        self.inner.connected.store(connected, SeqCst);
    }

    /// Whether the invalidation feed is up.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(SeqCst)
    }

    /// Hit and miss counts and the approximate number of stored values.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.inner.hits.load(SeqCst),
            misses: self.inner.misses.load(SeqCst),
            entries: self.inner.entries.entry_count(),
        }
    }

    /// Parses an invalidation notification `{resource}:{tenant uuid}:{id}`, e.g. `project:0193…:0193…`.
    /// `resource` must match `^[a-z][a-z_]*$`, the tenant must be a hyphenated UUID, and `id` is the
    /// non-empty rest (it may contain `:`). Returns `None` for anything else.
    pub fn parse_notification(payload: &str) -> Option<Tag> {
        let mut parts = payload.splitn(3, ':');
        let (resource, tenant, id) = (parts.next()?, parts.next()?, parts.next()?);
        let mut chars = resource.chars();
        let resource_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c == '_');
        if !resource_ok || tenant.len() != 36 || id.is_empty() {
            return None;
        }
        let tenant = Uuid::try_parse(tenant).ok()?;
        Some(Tag { tenant, resource: resource.to_owned(), id: id.to_owned() })
    }

    fn serving(&self) -> bool {
        self.inner.config.enabled && self.is_connected()
    }

    /// An entry loaded at `seq` is valid iff its load began after the last invalidation of its tag and the
    /// last flush. The floor is read after the record (see [`Cache::build`]).
    fn is_valid(&self, tag: &Tag, seq: u64) -> bool {
        let invalidated = self.inner.tags.get(tag);
        seq > self.inner.floor.load(SeqCst) && invalidated.is_none_or(|i| seq > i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tokio::sync::oneshot;

    fn tag(tenant: Uuid, id: &str) -> Tag {
        Tag { tenant, resource: "project".to_owned(), id: id.to_owned() }
    }

    async fn ok(v: &'static str) -> Result<Bytes, Infallible> {
        Ok(Bytes::from_static(v.as_bytes()))
    }

    async fn get(cache: &Cache, key: &CacheKey, v: &'static str) -> (Bytes, Lookup) {
        get_class(cache, key, TtlClass::Tenant, v).await
    }

    async fn get_class(cache: &Cache, key: &CacheKey, class: TtlClass, v: &'static str) -> (Bytes, Lookup) {
        let Ok(out) = cache.get_or_load(key, class, || ok(v)).await;
        out
    }

    fn hit(v: &'static str) -> (Bytes, Lookup) {
        (Bytes::from_static(v.as_bytes()), Lookup::Hit)
    }

    fn miss(v: &'static str) -> (Bytes, Lookup) {
        (Bytes::from_static(v.as_bytes()), Lookup::Miss)
    }

    #[tokio::test]
    async fn miss_then_hit_with_same_bytes() {
        let cache = Cache::new(CacheConfig::default()).connected();
        let key = CacheKey::new(tag(Uuid::now_v7(), "p1"));
        assert_eq!(get(&cache, &key, "one").await, miss("one"));
        assert_eq!(get(&cache, &key, "two").await, hit("one"));
        cache.inner.entries.run_pending_tasks().await;
        assert_eq!(cache.stats(), CacheStats { hits: 1, misses: 1, entries: 1 });
    }

    #[tokio::test]
    async fn users_and_variants_are_distinct_and_invalidated_together() {
        let cache = Cache::new(CacheConfig::default()).connected();
        let t = tag(Uuid::now_v7(), "p1");
        let plain = CacheKey::new(t.clone());
        let user = CacheKey::new(t.clone()).for_user(Uuid::now_v7());
        let variant = CacheKey::new(t.clone()).variant("page=2");
        assert_eq!(get(&cache, &plain, "a").await, miss("a"));
        assert_eq!(get(&cache, &user, "b").await, miss("b"));
        assert_eq!(get(&cache, &variant, "c").await, miss("c"));
        assert_eq!(get(&cache, &plain, "x").await, hit("a"));
        assert_eq!(get(&cache, &user, "x").await, hit("b"));
        assert_eq!(get(&cache, &variant, "x").await, hit("c"));
        cache.invalidate(&t);
        assert_eq!(get(&cache, &plain, "a2").await, miss("a2"));
        assert_eq!(get(&cache, &user, "b2").await, miss("b2"));
        assert_eq!(get(&cache, &variant, "c2").await, miss("c2"));
        assert_eq!(get(&cache, &user, "x").await, hit("b2"));
    }

    #[tokio::test]
    async fn invalidation_leaves_other_tenants_and_tags_alone() {
        let cache = Cache::new(CacheConfig::default()).connected();
        let (a, b) = (tag(Uuid::now_v7(), "p1"), tag(Uuid::now_v7(), "p1"));
        let other_id = tag(a.tenant, "p2");
        for (t, v) in [(&a, "a"), (&b, "b"), (&other_id, "c")] {
            assert_eq!(get(&cache, &CacheKey::new(t.clone()), v).await, miss(v));
        }
        cache.invalidate(&a);
        assert_eq!(get(&cache, &CacheKey::new(a), "a2").await, miss("a2"));
        assert_eq!(get(&cache, &CacheKey::new(b), "x").await, hit("b"));
        assert_eq!(get(&cache, &CacheKey::new(other_id), "x").await, hit("c"));
    }

    /// Starts a load of `key` that returns "old" once released; returns after the loader has begun.
    async fn start_slow_load(
        cache: &Cache,
        key: &CacheKey,
    ) -> (oneshot::Sender<()>, tokio::task::JoinHandle<Result<(Bytes, Lookup), Infallible>>) {
        let (release_tx, release_rx) = oneshot::channel::<()>();
        let (started_tx, started_rx) = oneshot::channel::<()>();
        let (cache, key) = (cache.clone(), key.clone());
        let task = tokio::spawn(async move {
            let load = || async move {
                started_tx.send(()).unwrap();
                release_rx.await.unwrap();
                Ok(Bytes::from_static(b"old"))
            };
            cache.get_or_load(&key, TtlClass::Tenant, load).await
        });
        started_rx.await.unwrap();
        (release_tx, task)
    }

    #[tokio::test]
    async fn refill_racing_an_invalidation_is_not_stored() {
        let cache = Cache::new(CacheConfig::default()).connected();
        let t = tag(Uuid::now_v7(), "p1");
        let key = CacheKey::new(t.clone());
        let (release, task) = start_slow_load(&cache, &key).await;
        cache.invalidate(&t);
        release.send(()).unwrap();
        assert_eq!(task.await.unwrap().unwrap(), miss("old"));
        cache.inner.entries.run_pending_tasks().await;
        assert_eq!(cache.stats().entries, 0, "rejected at insert, not only on read");
        assert_eq!(get(&cache, &key, "new").await, miss("new"));
        assert_eq!(get(&cache, &key, "x").await, hit("new"));
    }

    #[tokio::test]
    async fn refill_racing_a_flush_is_not_stored() {
        let cache = Cache::new(CacheConfig::default()).connected();
        let key = CacheKey::new(tag(Uuid::now_v7(), "p1"));
        let (release, task) = start_slow_load(&cache, &key).await;
        cache.flush();
        release.send(()).unwrap();
        assert_eq!(task.await.unwrap().unwrap(), miss("old"));
        assert_eq!(get(&cache, &key, "new").await, miss("new"));
        assert_eq!(get(&cache, &key, "x").await, hit("new"));
    }

    #[tokio::test]
    async fn entry_stored_after_an_invalidation_is_rejected_on_read() {
        // A refill that passed its insert check just before the invalidation and inserted just after.
        let cache = Cache::new(CacheConfig::default()).connected();
        let t = tag(Uuid::now_v7(), "p1");
        let key = CacheKey::new(t.clone());
        let seq = cache.inner.seq.fetch_add(1, SeqCst);
        cache.invalidate(&t);
        let stale = Entry { value: Bytes::from_static(b"old"), seq, ttl: Duration::from_secs(60) };
        cache.inner.entries.insert(key.clone(), stale).await;
        assert_eq!(get(&cache, &key, "new").await, miss("new"));
        assert_eq!(get(&cache, &key, "x").await, hit("new"));
    }

    #[tokio::test]
    async fn disconnected_or_disabled_bypasses_and_stores_nothing() {
        let cache = Cache::new(CacheConfig::default());
        assert!(!cache.is_connected());
        let key = CacheKey::new(tag(Uuid::now_v7(), "p1"));
        let bypass = |v: &'static str| (Bytes::from_static(v.as_bytes()), Lookup::Bypass);
        assert_eq!(get(&cache, &key, "a").await, bypass("a"));
        assert_eq!(get(&cache, &key, "b").await, bypass("b"));
        cache.inner.entries.run_pending_tasks().await;
        assert_eq!(cache.stats(), CacheStats { hits: 0, misses: 2, entries: 0 });
        assert_eq!(Lookup::Bypass.header_value(), "MISS");

        let disabled = Cache::new(CacheConfig { enabled: false, ..CacheConfig::default() }).connected();
        assert_eq!(get(&disabled, &key, "a").await, bypass("a"));
        assert_eq!(get(&disabled, &key, "b").await, bypass("b"));
    }

    #[tokio::test]
    async fn reconnect_flushes_but_staying_connected_does_not() {
        let cache = Cache::new(CacheConfig::default()).connected();
        let key = CacheKey::new(tag(Uuid::now_v7(), "p1"));
        assert_eq!(get(&cache, &key, "a").await, miss("a"));
        cache.set_connected(true);
        assert_eq!(get(&cache, &key, "x").await, hit("a"));
        cache.set_connected(false);
        assert_eq!(get(&cache, &key, "b").await, (Bytes::from_static(b"b"), Lookup::Bypass));
        cache.set_connected(true);
        assert!(cache.is_connected());
        assert_eq!(get(&cache, &key, "c").await, miss("c"));
        assert_eq!(get(&cache, &key, "x").await, hit("c"));
        // A refill begun before a disconnect is not stored after the reconnect.
        cache.invalidate(&key.tag);
        let (release, task) = start_slow_load(&cache, &key).await;
        cache.set_connected(false);
        cache.set_connected(true);
        release.send(()).unwrap();
        assert_eq!(task.await.unwrap().unwrap(), miss("old"));
        assert_eq!(get(&cache, &key, "d").await, miss("d"));
    }

    #[tokio::test]
    async fn loader_error_is_returned_and_nothing_stored() {
        let cache = Cache::new(CacheConfig::default()).connected();
        let key = CacheKey::new(tag(Uuid::now_v7(), "p1"));
        let failed = cache.get_or_load(&key, TtlClass::User, || async { Err::<Bytes, _>("boom") }).await;
        assert_eq!(failed, Err("boom"));
        assert_eq!(get(&cache, &key, "a").await, miss("a"));
        assert_eq!(get(&cache, &key, "x").await, hit("a"));
    }

    #[tokio::test]
    async fn entries_expire_by_ttl_class() {
        let config = CacheConfig {
            user_ttl: Duration::from_millis(50),
            tenant_ttl: Duration::from_secs(60),
            ..CacheConfig::default()
        };
        assert_eq!(config.ttl(TtlClass::Analytics), Duration::from_secs(3600));
        assert_eq!(config.ttl(TtlClass::Reports), Duration::from_secs(6 * 3600));
        let cache = Cache::new(config).connected();
        let (short, long) =
            (CacheKey::new(tag(Uuid::now_v7(), "p1")), CacheKey::new(tag(Uuid::now_v7(), "p2")));
        assert_eq!(get_class(&cache, &short, TtlClass::User, "a").await, miss("a"));
        assert_eq!(get_class(&cache, &long, TtlClass::Tenant, "b").await, miss("b"));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(get_class(&cache, &short, TtlClass::User, "a2").await, miss("a2"));
        assert_eq!(get_class(&cache, &long, TtlClass::Tenant, "x").await, hit("b"));
    }

    #[tokio::test]
    async fn evicted_tag_record_raises_the_floor() {
        let cache = Cache::build(CacheConfig::default(), 1).connected();
        let (t1, t2) = (tag(Uuid::now_v7(), "p1"), tag(Uuid::now_v7(), "p2"));
        let key = CacheKey::new(t1.clone());
        assert_eq!(get(&cache, &key, "old").await, miss("old"));
        cache.invalidate(&t1);
        cache.invalidate(&t2);
        let (i1, i2) = (cache.inner.tags.get(&t1).unwrap(), cache.inner.tags.get(&t2).unwrap());
        assert_eq!(cache.inner.floor.load(SeqCst), 0);
        cache.inner.tags.run_pending_tasks();
        // Capacity 1: exactly one record survives, and the floor holds the value of the one lost.
        assert_eq!(cache.inner.tags.entry_count(), 1);
        let lost = if cache.inner.tags.contains_key(&t1) { i2 } else { i1 };
        assert_eq!(cache.inner.floor.load(SeqCst), lost);
        assert_eq!(get(&cache, &key, "new").await, miss("new"));
        assert_eq!(get(&cache, &key, "x").await, hit("new"));
    }

    #[test]
    fn parse_notification_forms() {
        let tenant = Uuid::now_v7();
        let id = Uuid::now_v7();
        let tag = |resource: &str, id: &str| Tag { tenant, resource: resource.to_owned(), id: id.to_owned() };
        assert_eq!(
            Cache::parse_notification(&format!("tenant:{tenant}:{id}")),
            Some(tag("tenant", &id.to_string()))
        );
        assert_eq!(
            Cache::parse_notification(&format!("audit_log:{tenant}:a:b")),
            Some(tag("audit_log", "a:b"))
        );
        let upper = tenant.hyphenated().to_string().to_uppercase();
        assert_eq!(Cache::parse_notification(&format!("x:{upper}:7")), Some(tag("x", "7")));
        let simple = tenant.simple();
        for bad in [
            String::new(),
            "tenant".to_owned(),
            format!("tenant:{tenant}"),
            format!("tenant:{tenant}:"),
            format!(":{tenant}:1"),
            format!("Tenant:{tenant}:1"),
            format!("_tenant:{tenant}:1"),
            format!("1tenant:{tenant}:1"),
            format!("ten-ant:{tenant}:1"),
            format!("tenant:{simple}:1"),
            format!("tenant:{{{tenant}}}:1"),
            "tenant:zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz:1".to_owned(),
            format!("tenant: {tenant}:1"),
        ] {
            assert_eq!(Cache::parse_notification(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn text_forms_start_with_the_tenant() {
        let (tenant, user) = (Uuid::now_v7(), Uuid::now_v7());
        let t = tag(tenant, "p1");
        assert_eq!(t.to_string(), format!("{tenant}/project/p1"));
        let key = CacheKey::new(t.clone());
        assert_eq!(key.to_string(), format!("{tenant}/-/project/p1/"));
        let key = key.for_user(user).variant("q=1");
        assert_eq!(key.to_string(), format!("{tenant}/{user}/project/p1/q=1"));
        assert_eq!((Lookup::Hit.header_value(), Lookup::Miss.header_value()), ("HIT", "MISS"));
    }
}
