//! What the load drivers share: a database with the production pools, one
//! tenant, a token for it, and a minimal HTTP/1.1 exchange.

// Each driver uses part of this.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use portico_bff::auth::TokenKeys;
use portico_kernel::{PlatformContext, UserId};
use portico_store::Store;
use portico_tenancy::{CreateTenant, Tenant, TenantStore};
use portico_testkit::TestDb;

/// The key the drivers' tokens are signed with.
pub const SECRET: &[u8] = b"bench-secret-0123456789abcdef-0123456789";

/// A fresh database, its store with the production default pools (the test
/// harness's are small), and the tenant `bench`.
pub async fn bench_tenant() -> (TestDb, Store, Tenant) {
    let db = TestDb::new().await;
    let store = Store::connect(&db.urls, &portico_store::PoolConfig::default()).await.unwrap();
    let command = CreateTenant {
        name: "Bench".into(),
        slug: "bench".into(),
        contact_email: "ops@bench.example".into(),
        phone: None,
        industry: None,
        metadata: None,
        status: None,
    };
    let tenant = store.create(&PlatformContext::system("bench"), command).await.unwrap();
    (db, store, tenant)
}

/// A token of an owner of `tenant` holding `permissions`, for an hour.
pub fn owner_token(tenant: &Tenant, permissions: &[&str]) -> String {
    TokenKeys::new(SECRET)
        .mint(UserId::new(), "owner@bench.example", "owner", tenant.id, permissions, 3600)
        .unwrap()
}

/// One request on a kept-alive connection; the status and the `X-Cache` header.
pub fn request(conn: &mut BufReader<TcpStream>, raw: &[u8]) -> (u16, Option<String>) {
    conn.get_mut().write_all(raw).unwrap();
    let mut line = String::new();
    conn.read_line(&mut line).unwrap();
    let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
    let (mut length, mut cache) = (0usize, None);
    loop {
        line.clear();
        conn.read_line(&mut line).unwrap();
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap(),
            "x-cache" => cache = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).unwrap();
    (status, cache)
}

/// Prints how many `what` per second `latencies` (one per request, over
/// `elapsed`, from `connections` connections) make, and their p50 and p99.
pub fn report(
    name: &str,
    mut latencies: Vec<std::time::Duration>,
    elapsed: std::time::Duration,
    what: &str,
    connections: usize,
) {
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{name:<40} {:>9.0} {what}/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} {what}, {connections} connections)",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.len(),
    );
}
