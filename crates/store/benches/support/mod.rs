//! The load driver the store's benches share: a member context, and a
//! scenario runner printing throughput and latency percentiles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portico_kernel::{Actor, RequestId, TenantContext, UserId};

/// A user of `tenant` (the store methods benched check no permission).
pub fn member(tenant: portico_kernel::TenantId) -> TenantContext {
    TenantContext {
        tenant_id: tenant,
        actor: Actor::User { user_id: UserId::new(), tenant_id: tenant },
        permissions: Default::default(),
        request_id: RequestId::generate(),
        origin: portico_kernel::Origin::default(),
    }
}

/// Runs `operations` calls of `op(worker, n)` (n counts each worker's calls)
/// on `concurrency` workers and prints throughput and latency percentiles.
pub async fn scenario<F, Fut>(name: &str, concurrency: usize, operations: usize, op: F)
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let op = op.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(operations / concurrency);
            for n in 0..operations / concurrency {
                let t = Instant::now();
                op(worker, n).await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{name:<44} c={concurrency:<3} {:>8.0} ops/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
}
