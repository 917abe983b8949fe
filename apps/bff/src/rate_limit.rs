//! Request rate limiting: token-bucket quotas kept in a bounded in-memory cache, and the
//! middleware that applies each route's class of them.
//!
//! A [`Limiter`] checks all the buckets that apply to one request (for instance the caller's own
//! and its tenant's) at once: a request is allowed only if every bucket has a token, and then it
//! takes one from each. Per-client buckets are keyed by [`crate::client::client_address`].

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use moka::sync::Cache;
use serde::{Deserialize, Serialize};

use crate::api::RateClass;

/// Slack for floating-point rounding when counting whole tokens.
const EPSILON: f64 = 1e-9;

/// Longest idle time moka accepts (it panics above 1000 years).
const MAX_IDLE: Duration = Duration::from_hours(1000 * 365 * 24);

/// A token-bucket quota: at most `burst` tokens, refilled at `burst / per` tokens per second.
///
/// Written as `"N/UNIT"` (N in 1..=1000000, UNIT one of s, sec, second, m, min, minute, h, hour)
/// by `FromStr`, `Display` and serde.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Quota {
    /// The bucket size: how many requests may be made at once.
    pub burst: u32,
    /// The time an empty bucket takes to fill up again.
    pub per: Duration,
}

/// The error for a quota string that is not of the form `"N/UNIT"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaError(String);

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid quota {:?}: expected N/UNIT with N in 1..=1000000 and UNIT one of \
             s, sec, second, m, min, minute, h, hour (e.g. \"120/min\")",
            self.0
        )
    }
}

impl std::error::Error for QuotaError {}

impl FromStr for Quota {
    type Err = QuotaError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || QuotaError(text.to_owned());
        let (count, unit) = text.trim().split_once('/').ok_or_else(error)?;
        let count = count.trim();
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error());
        }
        let burst = count.parse::<u32>().ok().filter(|n| (1..=1_000_000).contains(n)).ok_or_else(error)?;
        let secs = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            _ => return Err(error()),
        };
        Ok(Self { burst, per: Duration::from_secs(secs) })
    }
}

impl fmt::Display for Quota {
    /// Writes the canonical form ("10/s", "120/min", "1000/h"); a `per` that is none of these units
    /// is written in `Duration`'s debug form (such as "10/90s"), which does not parse back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.per.as_secs(), self.per.subsec_nanos()) {
            (1, 0) => write!(f, "{}/s", self.burst),
            (60, 0) => write!(f, "{}/min", self.burst),
            (3600, 0) => write!(f, "{}/h", self.burst),
            _ => write!(f, "{}/{:?}", self.burst, self.per),
        }
    }
}

impl TryFrom<String> for Quota {
    type Error = QuotaError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Quota> for String {
    fn from(quota: Quota) -> Self {
        quota.to_string()
    }
}

impl Quota {
    /// The time this quota takes to refill `tokens` tokens, or `fallback` if that is not finite.
    fn time_for(self, tokens: f64, fallback: Duration) -> Duration {
        let secs = self.per.as_secs_f64() * tokens.max(0.0) / f64::from(self.burst);
        Duration::try_from_secs_f64(secs).unwrap_or(fallback)
    }
}

/// The outcome of [`Limiter::check`], describing the most restrictive bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The burst of the most restrictive bucket.
    pub limit: u32,
    /// Whole tokens left in that bucket after this request.
    pub remaining: u32,
    /// Time until that bucket is full again.
    pub reset: Duration,
    /// On refusal only: time until that bucket has one token again.
    pub retry_after: Option<Duration>,
}

/// The state of one token bucket.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Adds the tokens earned since the last refill; a `now` before it adds none.
    fn refill(&mut self, quota: Quota, now: Instant) {
        let burst = f64::from(quota.burst);
        if quota.per.is_zero() {
            self.tokens = burst;
        } else if let Some(elapsed) = now.checked_duration_since(self.last) {
            self.tokens += elapsed.div_duration_f64(quota.per) * burst;
        }
        self.tokens = self.tokens.min(burst).max(0.0);
        self.last = self.last.max(now);
    }

    /// Describes this bucket; `retry_after` is set when the request was refused.
    fn decision(&self, quota: Quota, allowed: bool) -> Decision {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "tokens lie in 0..=burst")]
        let remaining = (self.tokens + EPSILON).floor() as u32;
        Decision {
            allowed,
            limit: quota.burst,
            remaining,
            reset: quota.time_for(f64::from(quota.burst) - self.tokens, Duration::ZERO),
            retry_after: (!allowed).then(|| quota.time_for(1.0 - self.tokens, quota.per)),
        }
    }
}

/// A set of token buckets keyed by string, kept in a bounded cache that drops idle buckets.
pub struct Limiter {
    buckets: Cache<String, Arc<Mutex<Bucket>>>,
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter").field("buckets", &self.buckets.entry_count()).finish()
    }
}

impl Limiter {
    /// Creates a limiter keeping at most `max_buckets` buckets, each dropped after `idle` unused.
    #[must_use]
    pub fn new(max_buckets: u64, idle: Duration) -> Self {
        let buckets = Cache::builder().max_capacity(max_buckets).time_to_idle(idle.min(MAX_IDLE)).build();
        Self { buckets }
    }

    /// Takes one token from every bucket in `buckets` if each has one, otherwise takes none.
    ///
    /// A bucket seen for the first time starts full. A key listed twice counts once, with its
    /// first quota. The decision describes, if allowed, the bucket with the fewest tokens left
    /// (the longer reset on a tie), else the one with the longest wait for a token. With no
    /// buckets the request is allowed and the decision is all zero.
    #[must_use]
    pub fn check(&self, buckets: &[(&str, Quota)], now: Instant) -> Decision {
        let mut keyed = buckets.to_vec();
        keyed.sort_by_key(|&(key, _)| key);
        keyed.dedup_by(|later, earlier| later.0 == earlier.0);
        let cells: Vec<_> = keyed
            .iter()
            .map(|&(key, quota)| {
                let full = || Arc::new(Mutex::new(Bucket { tokens: f64::from(quota.burst), last: now }));
                (quota, self.buckets.get_with_by_ref(key, full))
            })
            .collect();
        // Locked in key order, so concurrent checks cannot deadlock.
        let mut locked: Vec<_> = cells
            .iter()
            .map(|(quota, cell)| (*quota, cell.lock().unwrap_or_else(PoisonError::into_inner)))
            .collect();
        for (quota, bucket) in &mut locked {
            bucket.refill(*quota, now);
        }
        let allowed = locked.iter().all(|(_, bucket)| bucket.tokens + EPSILON >= 1.0);
        let decisions = locked.iter_mut().map(|(quota, bucket)| {
            if allowed {
                bucket.tokens = (bucket.tokens - 1.0).max(0.0);
            }
            bucket.decision(*quota, allowed)
        });
        let chosen = if allowed {
            decisions.min_by(|a, b| a.remaining.cmp(&b.remaining).then(b.reset.cmp(&a.reset)))
        } else {
            decisions.max_by_key(|d| d.retry_after)
        };
        chosen.unwrap_or(Decision {
            allowed: true,
            limit: 0,
            remaining: 0,
            reset: Duration::ZERO,
            retry_after: None,
        })
    }
}

/// The limits of each route class (`[rate_limit]` in `config/`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Off: no route is limited.
    pub enabled: bool,
    /// Buckets kept in memory (least recently used ones go first, and come back full).
    pub max_buckets: u64,
    /// Per client address, on public routes and on requests without valid credentials.
    pub public: Quota,
    /// Per user or API key, on reads.
    pub read_per_principal: Quota,
    /// Per tenant (all its users and keys together), on reads.
    pub read_per_tenant: Quota,
    /// Per user or API key, on changes.
    pub write_per_principal: Quota,
    /// Per tenant, on changes.
    pub write_per_tenant: Quota,
    /// Per user or API key, on usage and reading ingestion (batches of up to 1,000).
    pub ingest_per_principal: Quota,
    /// Per tenant, on usage and reading ingestion.
    pub ingest_per_tenant: Quota,
    /// Per client address, on sign-in and token refresh.
    pub auth: Quota,
}

impl Default for RateLimits {
    fn default() -> Self {
        let quota = |burst, per| Quota { burst, per };
        Self {
            enabled: true,
            max_buckets: 100_000,
            public: quota(60, Duration::from_secs(60)),
            read_per_principal: quota(600, Duration::from_secs(60)),
            read_per_tenant: quota(3000, Duration::from_secs(60)),
            write_per_principal: quota(120, Duration::from_secs(60)),
            write_per_tenant: quota(600, Duration::from_secs(60)),
            ingest_per_principal: quota(6000, Duration::from_secs(60)),
            ingest_per_tenant: quota(12000, Duration::from_secs(60)),
            auth: quota(10, Duration::from_secs(60)),
        }
    }
}

/// The limits and this instance's buckets, shared by the app's workers.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    limiter: Limiter,
}

impl RateLimiter {
    /// Buckets for `limits`; an idle bucket is dropped once it would be full again anyway.
    #[must_use]
    pub fn new(limits: RateLimits) -> Self {
        let longest = [
            limits.public,
            limits.read_per_principal,
            limits.read_per_tenant,
            limits.write_per_principal,
            limits.write_per_tenant,
            limits.ingest_per_principal,
            limits.ingest_per_tenant,
            limits.auth,
        ]
        .iter()
        .map(|quota| quota.per)
        .max()
        .unwrap_or(Duration::from_secs(60));
        Self { limiter: Limiter::new(limits.max_buckets, longest), limits }
    }

    /// The buckets a request to a route of `class` draws from.
    fn buckets(
        &self,
        class: RateClass,
        who: Option<(String, String)>,
        ip: Option<IpAddr>,
    ) -> Vec<(String, Quota)> {
        let limits = &self.limits;
        let (per_principal, per_tenant) = match class {
            RateClass::Read => (limits.read_per_principal, limits.read_per_tenant),
            RateClass::Write => (limits.write_per_principal, limits.write_per_tenant),
            RateClass::Ingest => (limits.ingest_per_principal, limits.ingest_per_tenant),
            RateClass::Public | RateClass::Auth => (limits.public, limits.public),
        };
        if class == RateClass::Auth {
            return vec![(format!("auth:{}", crate::client::client_key(ip)), limits.auth)];
        }
        match (class, who) {
            (RateClass::Read | RateClass::Write | RateClass::Ingest, Some((principal, tenant))) => {
                let name = match class {
                    RateClass::Read => "read",
                    RateClass::Ingest => "ingest",
                    _ => "write",
                };
                vec![
                    (format!("{name}:principal:{principal}"), per_principal),
                    (format!("{name}:tenant:{tenant}"), per_tenant),
                ]
            }
            _ => vec![(format!("public:{}", crate::client::client_key(ip)), limits.public)],
        }
    }
}

/// Whole seconds, rounded up (a client waiting that long is never early).
fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// Middleware: the route's class of limits, per principal and tenant for
/// authenticated requests and per client address otherwise. Every answer
/// carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`;
/// a refused request gets 429 with `Retry-After`. Buckets live in this
/// instance: with N instances behind a balancer a client may get up to N
/// times the limit.
pub async fn middleware(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use actix_web::ResponseError as _;
    use actix_web::http::header::{HeaderName, HeaderValue};

    let limiter = req.app_data::<actix_web::web::Data<RateLimiter>>().cloned();
    let class = req.match_pattern().and_then(|pattern| crate::api::spec(req.method().as_str(), &pattern));
    let (Some(limiter), Some(route)) = (limiter, class) else {
        return next.call(req).await.map(actix_web::dev::ServiceResponse::map_into_boxed_body);
    };
    if !limiter.limits.enabled {
        return next.call(req).await.map(actix_web::dev::ServiceResponse::map_into_boxed_body);
    }
    let who = crate::auth::Auth::resolve(req.request()).ok().and_then(|auth| {
        let principal = match &auth.ctx.actor {
            portico_kernel::Actor::User { user_id, .. } => user_id.to_string(),
            portico_kernel::Actor::ApiKey { key_id, .. } => key_id.to_string(),
            portico_kernel::Actor::System { .. } => return None,
        };
        Some((principal, auth.ctx.tenant_id.to_string()))
    });
    let buckets = limiter.buckets(route.rate, who, crate::client::client_address(req.request()));
    let keyed: Vec<(&str, Quota)> = buckets.iter().map(|(key, quota)| (key.as_str(), *quota)).collect();
    let decision = limiter.limiter.check(&keyed, Instant::now());
    let headers = [
        ("ratelimit-limit", decision.limit.to_string()),
        ("ratelimit-remaining", decision.remaining.to_string()),
        ("ratelimit-reset", ceil_secs(decision.reset).to_string()),
    ];
    let mut res = if decision.allowed {
        next.call(req).await?.map_into_boxed_body()
    } else {
        let wait = ceil_secs(decision.retry_after.unwrap_or(decision.reset)).max(1);
        let error = crate::error::ApiError::new(
            portico_kernel::ErrorKind::RateLimited,
            "rate_limit.exceeded",
            format!("Too many requests. Retry in {wait} s."),
        )
        .details(serde_json::json!({ "retryAfterSeconds": wait }));
        let mut response = error.error_response();
        if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(actix_web::http::header::RETRY_AFTER, value);
        }
        req.into_response(response)
    };
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(HeaderName::from_static(name), value);
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn q(text: &str) -> Quota {
        text.parse().unwrap()
    }

    fn allow(limit: u32, remaining: u32, reset_ms: u64) -> Decision {
        Decision { allowed: true, limit, remaining, reset: ms(reset_ms), retry_after: None }
    }

    fn deny(limit: u32, reset_ms: u64, retry_ms: u64) -> Decision {
        Decision { allowed: false, limit, remaining: 0, reset: ms(reset_ms), retry_after: Some(ms(retry_ms)) }
    }

    fn limiter() -> Limiter {
        Limiter::new(1000, Duration::from_mins(10))
    }

    #[test]
    fn quota_parses_and_prints() {
        for (text, burst, secs, canonical) in [
            ("120/min", 120, 60, "120/min"),
            ("10/s", 10, 1, "10/s"),
            ("10/sec", 10, 1, "10/s"),
            ("10/second", 10, 1, "10/s"),
            ("5/m", 5, 60, "5/min"),
            ("5/minute", 5, 60, "5/min"),
            ("1000/h", 1000, 3600, "1000/h"),
            ("1000000/hour", 1_000_000, 3600, "1000000/h"),
        ] {
            let quota = q(text);
            assert_eq!(quota, Quota { burst, per: Duration::from_secs(secs) });
            assert_eq!(quota.to_string(), canonical);
        }
        assert_eq!(Quota { burst: 3, per: ms(1500) }.to_string(), "3/1.5s");
        for bad in ["", "10", "0/s", "1000001/s", "-1/s", "+5/s", "5/day", "5/", "/s", "a/s", "5/S"] {
            assert_eq!(bad.parse::<Quota>(), Err(QuotaError(bad.to_owned())), "{bad}");
        }
        assert_eq!(
            "5/day".parse::<Quota>().unwrap_err().to_string(),
            "invalid quota \"5/day\": expected N/UNIT with N in 1..=1000000 and UNIT one of \
             s, sec, second, m, min, minute, h, hour (e.g. \"120/min\")"
        );
    }

    #[test]
    fn quota_serde() {
        #[derive(Debug, Deserialize)]
        struct Config {
            write: Quota,
        }
        let config: Config = serde_json::from_str(r#"{"write": "120/min"}"#).unwrap();
        assert_eq!(config.write, Quota { burst: 120, per: Duration::from_mins(1) });
        assert_eq!(serde_json::to_string(&q("10/sec")).unwrap(), r#""10/s""#);
        let error = serde_json::from_str::<Config>(r#"{"write": "0/s"}"#).unwrap_err().to_string();
        assert!(error.starts_with("invalid quota \"0/s\""), "{error}");
    }

    #[test]
    fn burst_then_refused_with_exact_retry_after() {
        let (limiter, t0) = (limiter(), Instant::now());
        let check = |quota: &str, at: Duration| limiter.check(&[(quota, q(quota))], t0 + at);
        // 3/min: one token every 20 s.
        assert_eq!(check("3/min", ms(0)), allow(3, 2, 20_000));
        assert_eq!(check("3/min", ms(0)), allow(3, 1, 40_000));
        assert_eq!(check("3/min", ms(0)), allow(3, 0, 60_000));
        assert_eq!(check("3/min", ms(0)), deny(3, 60_000, 20_000));
        assert_eq!(check("3/min", ms(5_000)), deny(3, 55_000, 15_000));
        assert_eq!(check("3/min", ms(20_000)), allow(3, 0, 60_000));
        // 120/min: one token every 500 ms.
        for _ in 0..120 {
            assert!(check("120/min", ms(0)).allowed);
        }
        assert_eq!(check("120/min", ms(0)), deny(120, 60_000, 500));
        assert_eq!(check("120/min", ms(200)), deny(120, 59_800, 300));
    }

    #[test]
    fn refill_after_half_the_period_gives_half_the_tokens() {
        let (limiter, t0) = (limiter(), Instant::now());
        let quota = q("10/s");
        for _ in 0..10 {
            assert!(limiter.check(&[("u", quota)], t0).allowed);
        }
        assert_eq!(limiter.check(&[("u", quota)], t0 + ms(500)), allow(10, 4, 600));
        assert_eq!(limiter.check(&[("u", quota)], t0 + Duration::from_mins(1)), allow(10, 9, 100));
    }

    #[test]
    fn empty_tenant_bucket_refuses_and_user_keeps_its_token() {
        let (limiter, t0) = (limiter(), Instant::now());
        let (user, tenant) = (q("5/s"), q("2/s"));
        assert_eq!(limiter.check(&[("tenant:a", tenant)], t0), allow(2, 1, 500));
        assert_eq!(limiter.check(&[("tenant:a", tenant)], t0), allow(2, 0, 1000));
        assert_eq!(limiter.check(&[("user:1", user), ("tenant:a", tenant)], t0), deny(2, 1000, 500));
        assert_eq!(limiter.check(&[("user:1", user)], t0), allow(5, 4, 200));
        // Allowed: the decision describes the bucket with the fewest tokens left.
        assert_eq!(limiter.check(&[("user:1", user), ("tenant:a", tenant)], t0 + ms(500)), allow(2, 0, 1000));
    }

    #[test]
    fn duplicate_and_no_buckets() {
        let (limiter, t0) = (limiter(), Instant::now());
        assert_eq!(limiter.check(&[("u", q("5/s")), ("u", q("1/s"))], t0), allow(5, 4, 200));
        assert_eq!(limiter.check(&[], t0), allow(0, 0, 0));
    }

    #[test]
    fn clock_going_backwards_refills_nothing() {
        let (limiter, t0) = (limiter(), Instant::now());
        let check = |at_ms: u64| limiter.check(&[("u", q("2/s"))], t0 + ms(at_ms));
        assert_eq!(check(10_000), allow(2, 1, 500));
        assert_eq!(check(0), allow(2, 0, 1000));
        assert_eq!(check(5_000), deny(2, 1000, 500));
        assert_eq!(check(10_000), deny(2, 1000, 500));
        assert_eq!(check(10_250), deny(2, 750, 250));
        assert_eq!(check(11_000), allow(2, 1, 500));
    }

    #[test]
    fn poisoned_bucket_still_works() {
        let (limiter, t0) = (limiter(), Instant::now());
        assert!(limiter.check(&[("u", q("2/s"))], t0).allowed);
        let cell = limiter.buckets.get("u").unwrap();
        let poisoned = std::thread::spawn(move || {
            let _guard = cell.lock().unwrap();
            panic!("poison the bucket");
        });
        assert!(poisoned.join().is_err());
        assert_eq!(limiter.check(&[("u", q("2/s"))], t0), allow(2, 0, 1000));
    }

    #[test]
    fn opposite_key_orders_do_not_deadlock() {
        let (limiter, t0) = (Arc::new(limiter()), Instant::now());
        let quota = q("1000000/s");
        let threads: Vec<_> = [["a", "b"], ["b", "a"]]
            .into_iter()
            .map(|[x, y]| {
                let limiter = Arc::clone(&limiter);
                std::thread::spawn(move || {
                    (0..2000).filter(|_| limiter.check(&[(x, quota), (y, quota)], t0).allowed).count()
                })
            })
            .collect();
        let allowed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(allowed, 4000);
        assert_eq!(limiter.check(&[("a", quota)], t0).remaining, 1_000_000 - 4001);
    }
}
