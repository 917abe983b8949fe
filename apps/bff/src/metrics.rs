//! Prometheus metrics at `/metrics`: requests by method, route template and
//! status, latency histograms by route, and the database pools.
//!
//! A small registry of our own: a handful of series, rendered in the text
//! exposition format, kept per app (no process-global recorder).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, web};
use portico_kernel::PlatformContext;
use portico_store::{JobOverview, PoolStatus, Store};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Observations at or below each bound (not yet cumulative).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Registry {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
}

/// The metrics of one app.
#[derive(Debug, Default)]
pub struct Metrics(Mutex<Registry>);

impl Metrics {
    /// Records one answered request.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut registry = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *registry.requests.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
        let histogram = registry.latency.entry((method.to_owned(), route.to_owned())).or_default();
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            histogram.buckets[bucket] += 1;
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// The text exposition of every series, with the pools' current state.
    #[must_use]
    pub fn render(&self, pools: &[(&str, PoolStatus)]) -> String {
        let registry = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        out.push_str("# HELP portico_http_requests_total HTTP requests answered, by method, route template and status.\n");
        out.push_str("# TYPE portico_http_requests_total counter\n");
        for ((method, route, status), count) in &registry.requests {
            let _ = writeln!(
                out,
                "portico_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {count}",
                escape(method),
                escape(route)
            );
        }
        out.push_str(
            "# HELP portico_http_request_duration_seconds Time to answer, by method and route template.\n",
        );
        out.push_str("# TYPE portico_http_request_duration_seconds histogram\n");
        for ((method, route), histogram) in &registry.latency {
            let labels = format!("method=\"{}\",route=\"{}\"", escape(method), escape(route));
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(histogram.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "portico_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "portico_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(out, "portico_http_request_duration_seconds_sum{{{labels}}} {}", histogram.sum);
            let _ =
                writeln!(out, "portico_http_request_duration_seconds_count{{{labels}}} {}", histogram.count);
        }
        out.push_str("# HELP portico_db_pool_connections Database connections, by pool and state.\n");
        out.push_str("# TYPE portico_db_pool_connections gauge\n");
        for (pool, status) in pools {
            let in_use = status.size.saturating_sub(status.idle);
            let _ = writeln!(out, "portico_db_pool_connections{{pool=\"{pool}\",state=\"in_use\"}} {in_use}");
            let _ = writeln!(
                out,
                "portico_db_pool_connections{{pool=\"{pool}\",state=\"idle\"}} {}",
                status.idle
            );
        }
        out.push_str("# HELP portico_db_pool_waiting Callers waiting for a database connection, by pool.\n");
        out.push_str("# TYPE portico_db_pool_waiting gauge\n");
        for (pool, status) in pools {
            let _ = writeln!(out, "portico_db_pool_waiting{{pool=\"{pool}\"}} {}", status.waiting);
        }
        out
    }
}

/// The job queue, read at scrape time: depth by kind and state, the oldest
/// due job's wait, jobs that failed at least once, and recent latency.
#[must_use]
pub fn render_jobs(overview: &JobOverview) -> String {
    let mut out = String::new();
    out.push_str("# HELP portico_jobs Jobs by kind and state (queued and running are the queue's depth).\n");
    out.push_str("# TYPE portico_jobs gauge\n");
    for c in &overview.counts {
        let _ = writeln!(
            out,
            "portico_jobs{{kind=\"{}\",state=\"{}\"}} {}",
            escape(&c.kind),
            escape(&c.state),
            c.jobs
        );
    }
    out.push_str(
        "# HELP portico_jobs_failed Jobs that failed at least once, by kind and state (dead: gave up).\n",
    );
    out.push_str("# TYPE portico_jobs_failed gauge\n");
    for c in &overview.counts {
        let _ = writeln!(
            out,
            "portico_jobs_failed{{kind=\"{}\",state=\"{}\"}} {}",
            escape(&c.kind),
            escape(&c.state),
            c.with_errors
        );
    }
    out.push_str(
        "# HELP portico_jobs_oldest_due_seconds How long the longest-waiting due job has waited, by kind.\n",
    );
    out.push_str("# TYPE portico_jobs_oldest_due_seconds gauge\n");
    for c in overview.counts.iter().filter(|c| c.state == "queued") {
        let _ = writeln!(
            out,
            "portico_jobs_oldest_due_seconds{{kind=\"{}\"}} {}",
            escape(&c.kind),
            c.oldest_due_secs
        );
    }
    out.push_str("# HELP portico_job_latency_seconds Average time from due to done over the last five minutes, by kind.\n");
    out.push_str("# TYPE portico_job_latency_seconds gauge\n");
    for l in &overview.latency {
        let _ =
            writeln!(out, "portico_job_latency_seconds{{kind=\"{}\"}} {}", escape(&l.kind), l.average_secs);
    }
    out
}

/// Label values escape `\`, `"` and newlines.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Middleware: times every request and records it under its route template
/// (`/api/v1/tenants/{id}`; `unmatched` for unknown paths, so cardinality stays bounded).
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let res = next.call(req).await?;
    if let Some(metrics) = metrics {
        let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
        metrics.observe(&method, &route, res.status().as_u16(), started.elapsed().as_secs_f64());
    }
    Ok(res)
}

/// `GET /metrics`.
pub async fn scrape(metrics: web::Data<Metrics>, store: web::Data<Store>) -> HttpResponse {
    let (app, platform) = store.pool_status();
    let mut body = metrics.render(&[("app", app), ("platform", platform)]);
    match store.job_overview(&PlatformContext::system("metrics")).await {
        Ok(overview) => body.push_str(&render_jobs(&overview)),
        Err(error) => tracing::warn!(%error, "job metrics unavailable"),
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_counters_count() {
        let metrics = Metrics::default();
        metrics.observe("GET", "/a/{id}", 200, 0.004);
        metrics.observe("GET", "/a/{id}", 200, 0.3);
        metrics.observe("GET", "/a/{id}", 404, 9.0);
        let text = metrics.render(&[("app", PoolStatus { size: 3, idle: 1, waiting: 2 })]);
        assert!(
            text.contains("portico_http_requests_total{method=\"GET\",route=\"/a/{id}\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("portico_http_requests_total{method=\"GET\",route=\"/a/{id}\",status=\"404\"} 1")
        );
        assert!(text.contains("_bucket{method=\"GET\",route=\"/a/{id}\",le=\"0.001\"} 0"));
        assert!(text.contains("_bucket{method=\"GET\",route=\"/a/{id}\",le=\"0.005\"} 1"));
        assert!(text.contains("_bucket{method=\"GET\",route=\"/a/{id}\",le=\"0.5\"} 2"));
        assert!(text.contains("_bucket{method=\"GET\",route=\"/a/{id}\",le=\"5\"} 2"));
        assert!(text.contains("_bucket{method=\"GET\",route=\"/a/{id}\",le=\"+Inf\"} 3"));
        assert!(text.contains("_count{method=\"GET\",route=\"/a/{id}\"} 3"));
        assert!(text.contains("portico_db_pool_connections{pool=\"app\",state=\"in_use\"} 2"));
        assert!(text.contains("portico_db_pool_waiting{pool=\"app\"} 2"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
