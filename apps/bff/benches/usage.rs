//! Load driver for usage events over HTTP (issue 10): two tenants' events,
//! 1,000,000 each, sent to `POST /api/v1/metering/events` in batches of
//! 1,000 from 2, 4 and 8 clients at once, then `GET /api/v1/metering/usage`
//! (count, sum, unique count) over tenant 1's month before and after
//! `VACUUM ANALYZE`. Then where an ingested batch's time goes: the CPU the
//! driver, the server and PostgreSQL each used while ingesting, the body's
//! parse and checks alone, and the same batches straight through the store
//! beside the same batches over HTTP. Client, server and PostgreSQL share
//! this machine's cores. `PORTICO_BENCH_EVENTS=100000` runs a smaller size;
//! `just bench` runs it. The store's own figures are in `portico-store`'s
//! `usage` bench.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, TimeDelta, TimeZone, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use portico_bff::auth::TokenKeys;
use portico_bff::server::{self, Settings};
use portico_kernel::{Actor, PlatformContext, RequestId, TenantContext, UserId};
use portico_metering::{EventBatch, UsageEvent};
use portico_store::Store;
use portico_tenancy::{CreateTenant, Role, SetFeatures, Tenant, TenantStore};

/// Events per tenant unless `PORTICO_BENCH_EVENTS` says otherwise.
const DEFAULT_EVENTS: usize = 1_000_000;
/// Events per request (the most the route takes).
const BATCH: usize = 1_000;
/// Requests in flight in each ingestion pass, in order. Each level runs
/// twice, mirrored, so that a drift as the table grows weighs on every
/// level alike.
const PASSES: [usize; 6] = [2, 4, 8, 8, 4, 2];
/// The levels reported.
const LEVELS: [usize; 3] = [2, 4, 8];
/// Subjects the events are spread over.
const SUBJECTS: usize = 8;
/// Distinct `user` property values (what `unique_count` counts).
const USERS: usize = 1_000;
/// The events' metric code.
const METRIC: &str = "llm.tokens";
/// Runs of each aggregation; the median is reported.
const RUNS: usize = 11;
/// Requests in flight in the store-versus-HTTP comparison.
const COMPARE_CLIENTS: usize = 4;
/// How long the driver waits for an answer.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// Clock ticks per second of `/proc/*/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// Events per tenant: `PORTICO_BENCH_EVENTS`, a multiple of [`BATCH`], or [`DEFAULT_EVENTS`].
fn events_per_tenant() -> usize {
    let events = std::env::var("PORTICO_BENCH_EVENTS")
        .map(|text| text.replace(['_', ','], "").parse().expect("PORTICO_BENCH_EVENTS: a number"))
        .unwrap_or(DEFAULT_EVENTS);
    assert!(
        events >= 10 * BATCH && events.is_multiple_of(BATCH),
        "PORTICO_BENCH_EVENTS: a multiple of {BATCH}, at least {}",
        10 * BATCH
    );
    events
}

/// The month the events fall in, `[from, to)`.
fn month() -> (DateTime<Utc>, DateTime<Utc>) {
    let from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    (from, Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap())
}

/// Event `n`'s `tokens` property.
fn tokens(n: usize) -> usize {
    (n * 37) % 1000 + 1
}

/// Event `n`'s `user` property, `u-{user(n)}`.
fn user(n: usize) -> usize {
    (n / 3) % USERS
}

/// Batch `b` of a tenant's `events` as a request body: events `b * BATCH ..`,
/// evenly spread over the month in order, each with a subject, a token
/// count, a model and a user.
fn body(b: usize, events: usize) -> String {
    let (from, to) = month();
    let span = u64::try_from((to - from).num_milliseconds()).unwrap();
    let mut out = String::with_capacity(BATCH * 180);
    out.push_str(r#"{"events":["#);
    for i in 0..BATCH {
        let n = b * BATCH + i;
        if i > 0 {
            out.push(',');
        }
        let offset = i64::try_from(n as u64 * span / events as u64).unwrap();
        let at = (from + TimeDelta::milliseconds(offset)).to_rfc3339_opts(SecondsFormat::Millis, true);
        let model = if n.is_multiple_of(3) { "large" } else { "small" };
        let (subject, count, who) = (n % SUBJECTS, tokens(n), user(n));
        write!(
            out,
            r#"{{"id":"evt-{n:08}","subject":"customer-{subject}","metricCode":"{METRIC}","at":"{at}","#
        )
        .unwrap();
        write!(out, r#""properties":{{"tokens":{count},"model":"{model}","user":"u-{who}"}}}}"#).unwrap();
    }
    out.push_str("]}");
    out
}

/// A whole HTTP/1.1 request with a JSON body (or none).
fn raw(method: &str, path: &str, token: &str, body: &str) -> Vec<u8> {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\
         Accept-Encoding: identity\r\n"
    );
    if !body.is_empty() {
        write!(request, "Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()).unwrap();
    }
    request.push_str("\r\n");
    request.push_str(body);
    request.into_bytes()
}

/// A kept-alive connection to the server.
fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let conn = TcpStream::connect(addr).unwrap();
    conn.set_nodelay(true).unwrap();
    conn.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    BufReader::with_capacity(64 * 1024, conn)
}

/// One request on a kept-alive connection: the status and the body.
fn exchange(conn: &mut BufReader<TcpStream>, request: &[u8]) -> (u16, Vec<u8>) {
    conn.get_mut().write_all(request).unwrap();
    let mut line = String::new();
    conn.read_line(&mut line).unwrap();
    let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut length = 0usize;
    loop {
        line.clear();
        conn.read_line(&mut line).unwrap();
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).unwrap();
    (status, body)
}

/// The `data` of a JSON answer, after checking its status.
fn data(answer: (u16, Vec<u8>), expected: u16) -> serde_json::Value {
    let (status, body) = answer;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, expected, "{text}");
    serde_json::from_slice::<serde_json::Value>(&body).unwrap()["data"].clone()
}

/// `utime + stime` of a `/proc/.../stat` file, in clock ticks.
fn ticks(path: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The fields after the parenthesised name start at the third (state);
    // utime and stime are the 14th and 15th.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// CPU ticks of PostgreSQL's processes that work for `database`: its
/// backends (and autovacuum workers), the checkpointer and the WAL and
/// background writers; other databases' backends are left out.
fn postgres_ticks(database: &str) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    let mut total = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|pid| pid.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        let is_postgres =
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "postgres");
        if !is_postgres {
            continue;
        }
        let title = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let title = String::from_utf8_lossy(&title);
        if title.contains(database) || title.contains("checkpointer") || title.contains("writer") {
            total += ticks(&format!("/proc/{pid}/stat")).unwrap_or(0);
        }
    }
    total
}

/// The machine's CPU ticks, all cores: (busy, idle or waiting for IO), from `/proc/stat`.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is in user already).
    let all: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (all - idle, idle)
}

/// A reading of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Sets the peak RSS back to the current RSS (false where the kernel does not allow it).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// CPU used during a stretch, in ticks: by the driver's threads, by this
/// whole process (driver and server), by PostgreSQL for this database, and
/// by the whole machine (busy, and idle or waiting for IO).
#[derive(Debug, Default, Clone, Copy)]
struct Cpu {
    driver: u64,
    process: u64,
    postgres: u64,
    busy: u64,
    idle: u64,
}

impl Cpu {
    /// The readings that count up from now (all but the driver's, which its threads take).
    fn start(database: &str) -> Self {
        let (busy, idle) = machine_ticks();
        Self {
            driver: 0,
            process: ticks("/proc/self/stat").unwrap_or(0),
            postgres: postgres_ticks(database),
            busy,
            idle,
        }
    }

    /// What was used since `self` was started.
    fn since(self, database: &str) -> Self {
        let now = Self::start(database);
        Self {
            driver: 0,
            process: now.process.saturating_sub(self.process),
            postgres: now.postgres.saturating_sub(self.postgres),
            busy: now.busy.saturating_sub(self.busy),
            idle: now.idle.saturating_sub(self.idle),
        }
    }

    fn add(&mut self, other: Self) {
        self.driver += other.driver;
        self.process += other.process;
        self.postgres += other.postgres;
        self.busy += other.busy;
        self.idle += other.idle;
    }

    /// Cores busy on average over `elapsed`: driver / server / PostgreSQL /
    /// anything else on the machine / idle (or waiting for IO).
    fn cores(&self, elapsed: Duration) -> String {
        let cores = |ticks: u64| ticks as f64 / TICKS_PER_SECOND / elapsed.as_secs_f64();
        format!(
            "{:.2}/{:.2}/{:.2}/{:.2}/{:.2}",
            cores(self.driver),
            cores(self.process.saturating_sub(self.driver)),
            cores(self.postgres),
            cores(self.busy.saturating_sub(self.process + self.postgres)),
            cores(self.idle),
        )
    }
}

/// What one ingestion pass measured.
#[derive(Debug, Default)]
struct Pass {
    batches: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    cpu: Cpu,
    /// Peak RSS growth of the process during the pass, in KiB.
    peak_growth_kib: Option<u64>,
}

impl Pass {
    fn add(&mut self, other: Self) {
        self.batches += other.batches;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        self.cpu.add(other.cpu);
        self.peak_growth_kib = self.peak_growth_kib.max(other.peak_growth_kib);
    }

    fn events_per_second(&self) -> f64 {
        (self.batches * BATCH) as f64 / self.elapsed.as_secs_f64()
    }

    /// One row of the table.
    fn row(&mut self, label: &str) -> String {
        self.latencies.sort_unstable();
        let pct = |p: f64| {
            let at = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1);
            self.latencies[at].as_secs_f64() * 1e3
        };
        let memory = self
            .peak_growth_kib
            .map_or_else(|| "n/a".to_owned(), |kib| format!("{:.1}", kib as f64 / 1024.0));
        format!(
            "{label:>8} {:>8} {:>10.0} {:>9.1} {:>8.1} {:>8.1} {:>9} {:>29}",
            self.batches,
            self.events_per_second(),
            self.batches as f64 / self.elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99),
            memory,
            self.cpu.cores(self.elapsed),
        )
    }
}

/// The columns of [`Pass::row`]; the cores are the driver's, the server's,
/// PostgreSQL's, the rest of the machine's, and idle (or waiting for IO).
const TABLE_HEAD: &str =
    " clients  batches   events/s batches/s   p50 ms   p99 ms  RSS +MiB   cores drv/srv/pg/other/idle";

/// Sends `requests[range]` (batches of events, each answered 200 with all
/// accepted) from `clients` connections, each taking the next unsent one.
fn pass(
    addr: SocketAddr,
    requests: &Arc<Vec<Vec<u8>>>,
    range: Range<usize>,
    clients: usize,
    database: &str,
) -> Pass {
    let next = Arc::new(AtomicUsize::new(range.start));
    let accepted = format!("\"accepted\":{BATCH},");
    let reset = reset_peak_rss();
    let peak_before = status_kib("VmHWM:");
    let cpu = Cpu::start(database);
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            let (requests, next, accepted, end) =
                (requests.clone(), next.clone(), accepted.clone(), range.end);
            std::thread::Builder::new()
                .name(format!("bench-client-{client}"))
                .spawn(move || {
                    let mut conn = connect(addr);
                    let mut latencies = Vec::new();
                    loop {
                        let g = next.fetch_add(1, Ordering::Relaxed);
                        if g >= end {
                            break;
                        }
                        let t = Instant::now();
                        let (status, body) = exchange(&mut conn, &requests[g]);
                        latencies.push(t.elapsed());
                        let text = String::from_utf8_lossy(&body);
                        assert!(status == 200 && text.contains(&accepted), "batch {g}: {status} {text}");
                    }
                    (latencies, ticks("/proc/thread-self/stat").unwrap_or(0))
                })
                .unwrap()
        })
        .collect();
    let mut result = Pass::default();
    let mut driver = 0;
    for thread in threads {
        let (latencies, ticks) = thread.join().unwrap();
        result.latencies.extend(latencies);
        driver += ticks;
    }
    result.elapsed = started.elapsed();
    result.batches = range.len();
    result.cpu = Cpu { driver, ..cpu.since(database) };
    result.peak_growth_kib = match (reset, peak_before, status_kib("VmHWM:")) {
        (true, Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    result
}

/// Both tenants' batches over HTTP in the [`PASSES`]; prints each pass and
/// then a row per level.
fn ingest(addr: SocketAddr, requests: &Arc<Vec<Vec<u8>>>, database: &str) {
    let total = requests.len();
    println!(
        "\ningest 2 x {} events over HTTP (POST /api/v1/metering/events, {BATCH} a batch, \
         tenants alternating):",
        total / 2 * BATCH
    );
    println!("{TABLE_HEAD}   (pass: batches)");
    let rss_before = status_kib("VmRSS:");
    let started = Instant::now();
    let mut by_level: BTreeMap<usize, Pass> = BTreeMap::new();
    let mut whole = Pass::default();
    for (i, clients) in PASSES.into_iter().enumerate() {
        let range = total * i / PASSES.len()..total * (i + 1) / PASSES.len();
        let (first, last) = (range.start, range.end - 1);
        let mut measured = pass(addr, requests, range, clients, database);
        println!("{}   (pass {}: {first}..={last})", measured.row(&clients.to_string()), i + 1);
        whole.cpu.add(measured.cpu);
        by_level.entry(clients).or_default().add(measured);
    }
    let elapsed = started.elapsed();
    println!("by level (both passes of each):");
    println!("{TABLE_HEAD}");
    for level in LEVELS {
        if let Some(measured) = by_level.get_mut(&level) {
            println!("{}", measured.row(&level.to_string()));
        }
    }
    println!(
        "all {} events in {:.1} s: {:.0} events/s; cores drv/srv/pg/other/idle {}",
        total * BATCH,
        elapsed.as_secs_f64(),
        (total * BATCH) as f64 / elapsed.as_secs_f64(),
        whole.cpu.cores(elapsed),
    );
    if let (Some(before), Some(after)) = (rss_before, status_kib("VmRSS:")) {
        println!(
            "process RSS {:.1} MiB before ingesting (the prepared requests included), {:.1} MiB after",
            before as f64 / 1024.0,
            after as f64 / 1024.0
        );
    }
}

/// The metric's aggregations, each with what it should come to over `events` events.
fn aggregations(events: usize) -> Vec<(&'static str, serde_json::Value, String)> {
    let sum: usize = (0..events).map(tokens).sum();
    let users = (0..events).map(user).collect::<HashSet<_>>().len();
    vec![
        ("count", serde_json::json!({"type": "count"}), events.to_string()),
        ("sum", serde_json::json!({"type": "sum", "property": "tokens"}), sum.to_string()),
        ("unique_count", serde_json::json!({"type": "unique_count", "property": "user"}), users.to_string()),
    ]
}

/// For each aggregation: redefines tenant 1's metric to it, then times
/// [`RUNS`] `GET /api/v1/metering/usage` over the month and prints the median.
fn measure_usage(addr: SocketAddr, token: &str, metric: &str, events: usize, when: &str) {
    let (from, to) = month();
    let path = format!(
        "/api/v1/metering/usage?metric={METRIC}&from={}&to={}",
        from.to_rfc3339_opts(SecondsFormat::Secs, true),
        to.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    let get = raw("GET", &path, token, "");
    for (name, aggregation, expected) in aggregations(events) {
        // A fresh connection each time: the one before may have idled past the keep-alive.
        let mut conn = connect(addr);
        let draft = serde_json::json!({"code": METRIC, "name": name, "aggregation": aggregation}).to_string();
        data(
            exchange(&mut conn, &raw("PUT", &format!("/api/v1/metering/metrics/{metric}"), token, &draft)),
            200,
        );
        let mut times = Vec::with_capacity(RUNS);
        let mut value = String::new();
        for _ in 0..RUNS {
            let t = Instant::now();
            let answer = exchange(&mut conn, &get);
            times.push(t.elapsed());
            value = data(answer, 200)["value"].as_str().unwrap().to_owned();
        }
        assert_eq!(value, expected, "{name}");
        times.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{when:<21} {name:<13} median {:>8.1} ms   min {:>8.1}   max {:>8.1}   = {value}",
            ms(times[RUNS / 2]),
            ms(times[0]),
            ms(times[RUNS - 1]),
        );
    }
}

/// Whether autovacuum and autoanalyze have visited `usage_events`, and its live rows as last counted.
async fn table_state(owner: &mut AsyncPgConnection) -> String {
    #[derive(QueryableByName)]
    struct State {
        #[diesel(sql_type = BigInt)]
        live: i64,
        #[diesel(sql_type = Nullable<Timestamptz>)]
        vacuumed: Option<DateTime<Utc>>,
        #[diesel(sql_type = Nullable<Timestamptz>)]
        analyzed: Option<DateTime<Utc>>,
    }
    let state: State = diesel::sql_query(
        "SELECT n_live_tup AS live, last_autovacuum AS vacuumed, last_autoanalyze AS analyzed \
         FROM pg_stat_user_tables WHERE relname = 'usage_events'",
    )
    .get_result(owner)
    .await
    .unwrap();
    let when = |at: Option<DateTime<Utc>>| {
        at.map_or_else(|| "never".to_owned(), |at| at.format("%H:%M:%S").to_string())
    };
    format!(
        "n_live_tup {}, last autovacuum {}, last autoanalyze {} (now {})",
        state.live,
        when(state.vacuumed),
        when(state.analyzed),
        Utc::now().format("%H:%M:%S")
    )
}

/// A member of `tenant` for calls straight to the store (which check no permission).
fn member(tenant: &Tenant) -> TenantContext {
    TenantContext {
        tenant_id: tenant.id,
        actor: Actor::User { user_id: UserId::new(), tenant_id: tenant.id },
        permissions: Default::default(),
        request_id: RequestId::generate(),
        origin: portico_kernel::Origin::default(),
    }
}

/// A tenant of the generic profile, with the metering feature switched on.
async fn metering_tenant(store: &Store, slug: &str) -> Tenant {
    let command: CreateTenant = serde_json::from_value(serde_json::json!({
        "name": slug, "slug": slug, "contactEmail": "ops@bench.example"
    }))
    .unwrap();
    let tenant = store.create(&PlatformContext::system("bench"), command).await.unwrap();
    enable_metering(store, &tenant).await;
    tenant
}

/// The generic profile leaves metering off: an override switches it on.
async fn enable_metering(store: &Store, tenant: &Tenant) {
    let on = SetFeatures { features: BTreeMap::from([("metering".to_owned(), Some(true))]) };
    let config = store.set_features(&member(tenant), tenant.id, on).await.unwrap();
    assert!(config.features["metering"].enabled, "metering on for {}", tenant.slug);
}

/// The time of parsing `bodies` as the route does (with field paths), of
/// plain `serde_json`, and of the checks, each over all of them on one core.
fn parse_costs(bodies: &[String]) -> (Duration, Duration, Duration) {
    let started = Instant::now();
    let batches: Vec<EventBatch> = bodies
        .iter()
        .map(|body| {
            let deserializer = &mut serde_json::Deserializer::from_slice(body.as_bytes());
            serde_path_to_error::deserialize(deserializer).unwrap()
        })
        .collect();
    let with_paths = started.elapsed();
    let started = Instant::now();
    for body in bodies {
        std::hint::black_box(serde_json::from_slice::<EventBatch>(body.as_bytes()).unwrap());
    }
    let plain = started.elapsed();
    let now = Utc::now();
    let started = Instant::now();
    for batch in batches {
        std::hint::black_box(batch.validated(now).unwrap());
    }
    (with_paths, plain, started.elapsed())
}

/// Ingests `batches` straight through the store for `tenant`, `clients` at
/// once on this thread, with the grace the server uses: events per second,
/// and the cores kept busy (this process's counted as the server's).
async fn ingest_through_store(
    store: &Store,
    tenant: &Tenant,
    batches: Vec<Vec<UsageEvent>>,
    clients: usize,
    database: &str,
) -> (f64, String) {
    let count = batches.len();
    let queue = std::sync::Mutex::new(batches.into_iter());
    let ctx = member(tenant);
    let grace = server::MeteringRules::default().usage_grace;
    let cpu = Cpu::start(database);
    let started = Instant::now();
    let workers = (0..clients).map(|_| async {
        loop {
            let Some(batch) = queue.lock().unwrap().next() else { break };
            let report = store.ingest_usage(&ctx, batch, grace).await.unwrap();
            assert_eq!(report.accepted, BATCH as u64);
        }
    });
    futures_util::future::join_all(workers).await;
    let elapsed = started.elapsed();
    ((count * BATCH) as f64 / elapsed.as_secs_f64(), cpu.since(database).cores(elapsed))
}

/// The events stored for `tenant`, counted as the platform role.
async fn stored_events(platform: &mut AsyncPgConnection, tenant: &Tenant) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let row: Count = diesel::sql_query("SELECT count(*) AS n FROM usage_events WHERE tenant_id = $1")
        .bind::<diesel::sql_types::Uuid, _>(tenant.id.into_uuid())
        .get_result(platform)
        .await
        .unwrap();
    row.n
}

/// The two tenants' batches, prepared before any timing: request `g` is
/// batch `g / 2` of tenant `g % 2`.
fn prepare(tokens: &[String; 2], events: usize) -> Arc<Vec<Vec<u8>>> {
    let started = Instant::now();
    let requests: Vec<Vec<u8>> = (0..2 * events / BATCH)
        .map(|g| raw("POST", "/api/v1/metering/events", &tokens[g % 2], &body(g / 2, events)))
        .collect();
    println!(
        "{} requests of {:.0} KiB each, prepared in {:.1} s (before any timing)",
        requests.len(),
        requests[0].len() as f64 / 1024.0,
        started.elapsed().as_secs_f64()
    );
    Arc::new(requests)
}

/// Defines tenant 1's metric, then times its aggregations before and after
/// `VACUUM ANALYZE usage_events` (as the owner role, which may vacuum).
async fn usage_figures(addr: SocketAddr, token: &str, owner: &mut AsyncPgConnection, events: usize) {
    let create = {
        let draft = serde_json::json!({"code": METRIC, "name": "Tokens", "aggregation": {"type": "count"}});
        raw("POST", "/api/v1/metering/metrics", token, &draft.to_string())
    };
    let answer = actix_web::rt::task::spawn_blocking(move || exchange(&mut connect(addr), &create));
    let metric = data(answer.await.unwrap(), 201)["id"].as_str().unwrap().to_owned();
    println!(
        "\nGET /api/v1/metering/usage over tenant 1's month ({events} events; tenant 2's {events} in the \
         table too), {RUNS} runs each:"
    );
    println!("usage_events as loaded: {}", table_state(owner).await);
    let usage = |when: &'static str| {
        let (token, metric) = (token.to_owned(), metric.clone());
        actix_web::rt::task::spawn_blocking(move || measure_usage(addr, &token, &metric, events, when))
    };
    usage("as loaded").await.unwrap();
    let vacuum = Instant::now();
    owner.batch_execute("VACUUM ANALYZE usage_events").await.unwrap();
    println!("VACUUM ANALYZE usage_events took {:.1} s", vacuum.elapsed().as_secs_f64());
    usage("after VACUUM ANALYZE").await.unwrap();
}

/// Where an ingested batch's time goes, on `sample` (bodies of tenant 1's
/// batches): their parse and checks alone on one core, then the same
/// batches for two fresh tenants, straight through the store and over HTTP.
async fn breakdown(addr: SocketAddr, store: &Store, fresh: [&Tenant; 2], sample: &[String], database: &str) {
    println!(
        "\nwhere the time goes ({} of tenant 1's batches, sent again for two fresh tenants, \
         {COMPARE_CLIENTS} at once):",
        sample.len()
    );
    let (with_paths, plain, checks) = parse_costs(sample);
    for (what, took) in [
        ("parse as the route does (serde_path_to_error)", with_paths),
        ("parse with plain serde_json", plain),
        ("checks (EventBatch::validated)", checks),
    ] {
        println!(
            "{what:<48} {:>6.2} ms a batch   {:>8.0} events/s on one core",
            took.as_secs_f64() * 1e3 / sample.len() as f64,
            (sample.len() * BATCH) as f64 / took.as_secs_f64()
        );
    }
    let now = Utc::now();
    let parsed: Vec<Vec<UsageEvent>> = sample
        .iter()
        .map(|body| serde_json::from_str::<EventBatch>(body).unwrap().validated(now).unwrap())
        .collect();
    let (rate, cpu) = ingest_through_store(store, fresh[0], parsed, COMPARE_CLIENTS, database).await;
    println!(
        "straight through the store (Store::ingest_usage)   {rate:>8.0} events/s   \
         cores drv/srv/pg/other/idle {cpu}"
    );
    let token = support::owner_token(fresh[1], Role::Owner.permissions());
    let requests: Arc<Vec<Vec<u8>>> =
        Arc::new(sample.iter().map(|body| raw("POST", "/api/v1/metering/events", &token, body)).collect());
    let database = database.to_owned();
    let mut over_http = actix_web::rt::task::spawn_blocking(move || {
        pass(addr, &requests, 0..requests.len(), COMPARE_CLIENTS, &database)
    })
    .await
    .unwrap();
    println!("the same batches over HTTP:");
    println!("{TABLE_HEAD}");
    println!("{}", over_http.row(&COMPARE_CLIENTS.to_string()));
}

fn main() {
    let events = events_per_tenant();
    let system = actix_web::rt::System::new();
    system.block_on(async move {
        let (db, store, first) = support::bench_tenant().await;
        enable_metering(&store, &first).await;
        let second = metering_tenant(&store, "bench-2").await;
        let through_store = metering_tenant(&store, "bench-store").await;
        let through_http = metering_tenant(&store, "bench-http").await;
        let tokens = [&first, &second].map(|t| support::owner_token(t, Role::Owner.permissions()));
        let database = db.urls.database.clone();

        let mut settings = Settings::local(TokenKeys::new(support::SECRET));
        settings.rate_limits.enabled = false;
        let running = server::start(store.clone(), &settings).unwrap();
        let (addr, handle) = (running.addr, running.handle.clone());
        actix_web::rt::spawn(running.server);

        println!(
            "usage events over HTTP, {events} per tenant, 2 tenants (2 cores shared by driver, server and \
             PostgreSQL; PostgreSQL's CPU is this database's backends, the checkpointer and the writers; \
             other is the rest of the machine)"
        );
        let requests = prepare(&tokens, events);
        let ingest_db = database.clone();
        actix_web::rt::task::spawn_blocking(move || ingest(addr, &requests, &ingest_db)).await.unwrap();

        let mut owner = AsyncPgConnection::establish(&db.urls.owner).await.unwrap();
        usage_figures(addr, &tokens[0], &mut owner, events).await;

        let sample: Vec<String> = (0..events / BATCH / 5).map(|b| body(b, events)).collect();
        breakdown(addr, &store, [&through_store, &through_http], &sample, &database).await;

        let mut platform = AsyncPgConnection::establish(&db.urls.platform).await.unwrap();
        let sampled = sample.len() * BATCH;
        for (tenant, expected) in
            [(&first, events), (&second, events), (&through_store, sampled), (&through_http, sampled)]
        {
            let stored = stored_events(&mut platform, tenant).await;
            assert_eq!(stored, i64::try_from(expected).unwrap(), "events stored for {}", tenant.slug);
        }
        handle.stop(true).await;
        drop((owner, platform));
        drop(db);
    });
}
