//! Load driver for the HTTP API: `GET /api/v1/tenants/{id}` served from the
//! cache, the same route with the cache off (every read a scoped
//! transaction), and `/health/live` (no database) in the same run, so their
//! ratios compare. Client and server share this machine's cores.
//! `just bench` runs it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::BufReader;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use portico_bff::auth::TokenKeys;
use portico_bff::server::{self, Settings};
use support::request;

/// Keep-alive connections the driver keeps busy.
const CONNECTIONS: usize = 32;
/// How long each scenario runs.
const DURATION: Duration = Duration::from_secs(8);

/// Drives `path` on `addr` from [`CONNECTIONS`] connections for [`DURATION`]
/// and prints requests per second and latency percentiles; every answer must
/// be 200 (and carry `expect_cache`, when given).
fn scenario(name: &str, addr: SocketAddr, path: &str, token: &str, expect_cache: Option<&str>) {
    let raw = format!(
        "GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\nAccept-Encoding: identity\r\n\r\n"
    )
    .into_bytes();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (raw, expect) = (raw.clone(), expect_cache.map(str::to_owned));
        tasks.push(std::thread::spawn(move || {
            let mut conn = BufReader::new(TcpStream::connect(addr).unwrap());
            let mut latencies = Vec::new();
            while started.elapsed() < DURATION {
                let t = Instant::now();
                let (status, cache) = request(&mut conn, &raw);
                latencies.push(t.elapsed());
                assert_eq!(status, 200);
                if let Some(expected) = &expect {
                    assert_eq!(cache.as_deref(), Some(expected.as_str()));
                }
            }
            latencies
        }));
    }
    let latencies = tasks.into_iter().flat_map(|task| task.join().unwrap()).collect();
    support::report(name, latencies, started.elapsed(), "requests", CONNECTIONS);
}

fn settings(cache: bool) -> Settings {
    let mut settings = Settings::local(TokenKeys::new(support::SECRET));
    settings.rate_limits.enabled = false;
    settings.cache.enabled = cache;
    settings
}

fn main() {
    let system = actix_web::rt::System::new();
    system.block_on(async {
        let (db, store, tenant) = support::bench_tenant().await;
        let token = support::owner_token(&tenant, &["tenants:read"]);
        let cached = server::start(store.clone(), &settings(true)).unwrap();
        let uncached = server::start(store, &settings(false)).unwrap();
        let (cached_addr, uncached_addr) = (cached.addr, uncached.addr);
        let (cached_handle, uncached_handle) = (cached.handle.clone(), uncached.handle.clone());
        actix_web::rt::spawn(cached.server);
        actix_web::rt::spawn(uncached.server);

        // The driver runs on threads of its own, beside the servers' workers.
        let path = format!("/api/v1/tenants/{}", tenant.id);
        let driver = std::thread::spawn(move || {
            // Warm up, and wait for the cache's notification listener to connect.
            let deadline = Instant::now() + Duration::from_secs(10);
            let raw = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n");
            let mut conn = BufReader::new(TcpStream::connect(cached_addr).unwrap());
            while request(&mut conn, raw.as_bytes()).1.as_deref() != Some("HIT") {
                assert!(Instant::now() < deadline, "the cache never served a hit");
                std::thread::sleep(Duration::from_millis(20));
            }
            println!("GET /api/v1/tenants/{{id}} beside a route without database work (2 cores, shared with the driver):");
            scenario("no database (/health/live)", cached_addr, "/health/live", &token, None);
            scenario("tenant, cache hit", cached_addr, &path, &token, Some("HIT"));
            scenario("tenant, cache off", uncached_addr, &path, &token, Some("MISS"));
        });
        actix_web::rt::task::spawn_blocking(move || driver.join().unwrap()).await.unwrap();
        cached_handle.stop(true).await;
        uncached_handle.stop(true).await;
        drop(db);
    });
}
