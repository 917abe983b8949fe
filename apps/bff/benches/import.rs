//! Load driver for the bulk import: 100,000 people sent as one CSV file to
//! `POST /api/v1/platform-users/bulk-import` over a raw HTTP/1.1 request
//! (upload, streaming parse, role checks and one transaction of batched
//! inserts), beside the parse alone (`ImportParser` over the same bytes in
//! 64 KiB chunks, in-process), so their ratio shows where the time goes.
//! Where Linux allows it, the process's peak RSS growth during each is shown
//! too (`VmHWM`, reset through `/proc/self/clear_refs`): a lower bound, since
//! the allocator reuses memory freed earlier without returning it. Client,
//! server and PostgreSQL share this machine's cores. `just bench` runs it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use portico_bff::auth::TokenKeys;
use portico_bff::server::{self, Settings};
use portico_kernel::TenantId;
use portico_tenancy::Role;
use portico_tenancy::people_import::ImportParser;
use portico_testkit::TestDb;

/// People in the file (the most one import takes).
const ROWS: usize = 100_000;
/// The chunk size of the parse-only run.
const CHUNK: usize = 64 * 1024;
/// Parse-only runs; the fastest is reported.
const PARSE_RUNS: usize = 3;
/// How long the driver waits for the import's answer.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// The import file: unique addresses, every tenth name quoted (it holds a
/// comma), every other row a phone number, kinds cycling so the default
/// roles are viewer, viewer and staff.
fn csv() -> Vec<u8> {
    let mut file = String::from("email,name,phone,kind,role\r\n");
    for i in 0..ROWS {
        let name = if i % 10 == 0 { format!("\"Doe, Person {i}\"") } else { format!("Person {i}") };
        let phone = if i % 2 == 0 { format!("+49 30 {i:07}") } else { String::new() };
        let kind = ["student", "parent", "staff"][i % 3];
        file.push_str(&format!("person-{i}@bench.example,{name},{phone},{kind},\r\n"));
    }
    file.into_bytes()
}

/// Peak resident set size of this process in KiB (`VmHWM`), when readable.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Sets the peak back to the current RSS, so the next reading shows the
/// growth of what runs in between; false where the kernel does not allow it.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Runs `work` and says how far the peak RSS rose above the RSS before it.
fn peak_growth<T>(work: impl FnOnce() -> T) -> (T, String) {
    let reset = reset_peak_rss();
    let before = peak_rss_kib();
    let value = work();
    let growth = match (reset, before, peak_rss_kib()) {
        (true, Some(before), Some(after)) => {
            format!(
                "peak RSS +{:.1} MiB (to {:.1} MiB)",
                (after - before) as f64 / 1024.0,
                after as f64 / 1024.0
            )
        }
        _ => "peak RSS not readable".to_owned(),
    };
    (value, growth)
}

/// The parse alone, best of [`PARSE_RUNS`].
fn parse_only(file: &[u8]) -> Duration {
    (0..PARSE_RUNS)
        .map(|_| {
            let started = Instant::now();
            let mut parser = ImportParser::new();
            for chunk in file.chunks(CHUNK) {
                parser.feed(chunk);
            }
            let rows = parser.finish().unwrap();
            let elapsed = started.elapsed();
            assert_eq!(rows.len(), ROWS);
            elapsed
        })
        .min()
        .unwrap()
}

/// One request on a fresh connection: the status, the response body, and
/// when the server had taken the whole request body.
fn import(addr: SocketAddr, token: &str, file: &[u8]) -> (u16, serde_json::Value, Duration) {
    let started = Instant::now();
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let head = format!(
        "POST /api/v1/platform-users/bulk-import HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: text/csv\r\nContent-Length: {}\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n",
        file.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(file).unwrap();
    let sent = started.elapsed();
    let mut response = Vec::new();
    conn.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.to_owned())), sent)
}

/// The tenant's memberships, counted as the platform role.
async fn memberships(db: &TestDb, tenant: TenantId) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = AsyncPgConnection::establish(&db.urls.platform).await.unwrap();
    let row: Count = diesel::sql_query("SELECT count(*) AS n FROM memberships WHERE tenant_id = $1::uuid")
        .bind::<Text, _>(tenant.to_string())
        .get_result(&mut conn)
        .await
        .unwrap();
    row.n
}

fn main() {
    let system = actix_web::rt::System::new();
    system.block_on(async {
        let (db, store, tenant) = support::bench_tenant().await;
        let token = support::owner_token(&tenant, Role::Owner.permissions());
        let mut settings = Settings::local(TokenKeys::new(support::SECRET));
        settings.rate_limits.enabled = false;
        let running = server::start(store, &settings).unwrap();
        let (addr, handle) = (running.addr, running.handle.clone());
        actix_web::rt::spawn(running.server);
        let before = memberships(&db, tenant.id).await;

        // The driver runs on a thread of its own, beside the server's workers.
        let driver = std::thread::spawn(move || {
            let file = csv();
            println!(
                "bulk import of {ROWS} people ({:.1} MiB of CSV; 2 cores shared by driver, server and PostgreSQL):",
                file.len() as f64 / (1024.0 * 1024.0)
            );
            // The import first, so its memory figure owes nothing to what the parse left behind.
            let started = Instant::now();
            let ((status, body, sent), http_memory) = peak_growth(|| import(addr, &token, &file));
            let elapsed = started.elapsed();
            assert_eq!(status, 201, "{body}");
            assert_eq!(body["data"]["rows"], ROWS as u64, "{body}");
            assert_eq!(body["data"]["invited"], ROWS as u64, "{body}");
            println!(
                "import {ROWS} rows over HTTP:           {:>8.3} s, {:>9.0} rows/s   {http_memory}",
                elapsed.as_secs_f64(),
                ROWS as f64 / elapsed.as_secs_f64(),
            );
            println!(
                "  body written to the socket after {:.3} s (the server parses as it reads), answer {:.3} s later",
                sent.as_secs_f64(),
                (elapsed - sent).as_secs_f64(),
            );
            let (parse, parse_memory) = peak_growth(|| parse_only(&file));
            println!(
                "parse only ({} KiB chunks, best of {PARSE_RUNS}): {:>8.3} s, {:>9.0} rows/s   {parse_memory}",
                CHUNK / 1024,
                parse.as_secs_f64(),
                ROWS as f64 / parse.as_secs_f64(),
            );
        });
        actix_web::rt::task::spawn_blocking(move || driver.join().unwrap()).await.unwrap();
        let after = memberships(&db, tenant.id).await;
        assert_eq!(after - before, ROWS as i64, "memberships written");
        println!("memberships of the tenant: {before} before, {after} after");
        handle.stop(true).await;
        drop(db);
    });
}
