//! Load driver for the CRM's contact list (issue 11): two tenants with
//! 100,000 contacts each (and 2,000 companies each) in the same tables,
//! then `GET /api/v1/crm/contacts` of one tenant filtered, sorted, paged
//! deep and searched, from 1 and from 4 clients at once, each request's
//! latency measured at the client (p50 and p99 per query and over all).
//! The goal: p99 under 50 ms. Client, server and PostgreSQL share this
//! machine's cores, and the server runs as in production (the `portico_app`
//! role under row-level security, production pool sizes).
//!
//! The contacts are written with SQL in batches (the store's trigger fills
//! their normalised keys and search words as it does for every write), then
//! `VACUUM ANALYZE` runs, as autovacuum would. `PORTICO_BENCH_CONTACTS=20000`
//! runs a smaller size; `just bench` runs it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use diesel::sql_types::{Array, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use portico_bff::auth::TokenKeys;
use portico_bff::server::{self, Settings};
use portico_kernel::{Actor, PlatformContext, RequestId, TenantContext, UserId};
use portico_store::Store;
use portico_tenancy::{CreateTenant, Role, SetFeatures, Tenant, TenantStore};

/// Contacts per tenant unless `PORTICO_BENCH_CONTACTS` says otherwise.
const DEFAULT_CONTACTS: usize = 100_000;
/// Companies per tenant.
const COMPANIES: usize = 2_000;
/// Rows per insert.
const BATCH: usize = 2_000;
/// Requests per query and client count.
const SAMPLES: usize = 200;
/// Clients in flight, in order.
const CLIENTS: [usize; 2] = [1, 4];
/// The goal at the API.
const GOAL: Duration = Duration::from_millis(50);

const FIRST: [&str; 40] = [
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Emma",
    "Felix",
    "Greta",
    "Hannah",
    "Ida",
    "Jonas",
    "Karl",
    "Lena",
    "Marie",
    "Noah",
    "Olga",
    "Paul",
    "Quentin",
    "Rosa",
    "Sophie",
    "Tom",
    "Ute",
    "Viktor",
    "Wilma",
    "Xaver",
    "Yara",
    "Zoe",
    "Ahmet",
    "Björn",
    "Chiara",
    "Dörte",
    "Elif",
    "François",
    "Giulia",
    "Hugo",
    "Inès",
    "Jürgen",
    "Kai",
    "Luca",
    "Mia",
    "Nils",
];
const LAST: [&str; 50] = [
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Bauer",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Krüger",
    "Hofmann",
    "Hartmann",
    "Lange",
    "Schmitt",
    "Werner",
    "Schmitz",
    "Krause",
    "Meier",
    "Lehmann",
    "Schmid",
    "Schulze",
    "Maier",
    "Köhler",
    "Herrmann",
    "König",
    "Walter",
    "Mayer",
    "Huber",
    "Kaiser",
    "Fuchs",
    "Peters",
    "Lang",
    "Scholz",
    "Möller",
    "Weiß",
    "Jung",
    "Hahn",
    "Rossi",
];
const TRADES: [&str; 10] = [
    "Logistik",
    "Bau",
    "Software",
    "Consulting",
    "Immobilien",
    "Energie",
    "Handel",
    "Medien",
    "Pflege",
    "Technik",
];
const OWNERS: usize = 5;

/// Contacts per tenant: `PORTICO_BENCH_CONTACTS` or [`DEFAULT_CONTACTS`].
fn contacts_per_tenant() -> usize {
    let contacts = std::env::var("PORTICO_BENCH_CONTACTS")
        .map(|text| text.replace(['_', ','], "").parse().expect("PORTICO_BENCH_CONTACTS: a number"))
        .unwrap_or(DEFAULT_CONTACTS);
    assert!(
        contacts >= BATCH && contacts.is_multiple_of(BATCH),
        "PORTICO_BENCH_CONTACTS: a multiple of {BATCH}"
    );
    contacts
}

/// When contact 0 was created; contact `n` a minute before contact `n - 1`.
fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

/// The owners contacts are spread over.
fn owners() -> Vec<uuid::Uuid> {
    (0..OWNERS)
        .map(|i| uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + i as u128))
        .collect()
}

fn company_id(tenant: &Tenant, i: usize) -> uuid::Uuid {
    let base = tenant.id.into_uuid().as_u128() ^ 0x00ff_0000_0000_0000_0000_0000_0000_0000;
    uuid::Uuid::from_u128(base.wrapping_add(i as u128 + 1))
}

/// Companies `Müller Logistik GmbH` and the like, each with a domain.
async fn seed_companies(conn: &mut AsyncPgConnection, tenant: &Tenant) {
    let mut columns: [Vec<String>; 3] = Default::default();
    let mut ids = Vec::with_capacity(COMPANIES);
    for i in 0..COMPANIES {
        let (last, trade) = (LAST[i % LAST.len()], TRADES[(i / LAST.len()) % TRADES.len()]);
        ids.push(company_id(tenant, i));
        columns[0].push(format!("{last} {trade} GmbH"));
        columns[1].push(format!("{last} {trade}").to_lowercase());
        columns[2].push(format!("{}-{}-{i}.example", ascii(last), trade.to_lowercase()));
    }
    diesel::sql_query(
        "INSERT INTO crm_companies (tenant_id, id, name, name_key, domain, tags, created_at, updated_at) \
         SELECT $1, id, name, name_key, domain, '{}', $6, $6 \
         FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[]) AS c(id, name, name_key, domain)",
    )
    .bind::<SqlUuid, _>(tenant.id.into_uuid())
    .bind::<Array<SqlUuid>, _>(&ids)
    .bind::<Array<Text>, _>(&columns[0])
    .bind::<Array<Text>, _>(&columns[1])
    .bind::<Array<Text>, _>(&columns[2])
    .bind::<Timestamptz, _>(epoch())
    .execute(conn)
    .await
    .unwrap();
}

/// `Müller` as `mueller`-free plain ASCII for a domain: `muller`.
fn ascii(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .map(|c| match c {
            'ä' => 'a',
            'ö' => 'o',
            'ü' => 'u',
            'ß' => 's',
            'é' | 'è' => 'e',
            'ç' => 'c',
            other => other,
        })
        .collect()
}

/// Contact `n`: first and last name, an email (at its company's domain or
/// a free-mail one), a Berlin phone, a type, a status, perhaps a company,
/// an owner and tags.
async fn seed_contacts(conn: &mut AsyncPgConnection, tenant: &Tenant, contacts: usize) {
    let owners = owners();
    for start in (0..contacts).step_by(BATCH) {
        let mut ids = Vec::with_capacity(BATCH);
        let mut text: [Vec<String>; 9] = Default::default();
        let mut companies: Vec<Option<uuid::Uuid>> = Vec::with_capacity(BATCH);
        let mut owner_ids = Vec::with_capacity(BATCH);
        let mut created = Vec::with_capacity(BATCH);
        for n in start..start + BATCH {
            let first = FIRST[n % FIRST.len()];
            let last = LAST[(n / FIRST.len() + n * 7) % LAST.len()];
            let company = (n % 3 != 0).then_some((n * 31) % COMPANIES);
            let domain = match company {
                Some(i) => {
                    let (c_last, trade) = (LAST[i % LAST.len()], TRADES[(i / LAST.len()) % TRADES.len()]);
                    format!("{}-{}-{i}.example", ascii(c_last), trade.to_lowercase())
                }
                None => ["gmail.com", "web.de", "outlook.com"][n % 3].to_owned(),
            };
            let email = format!("{}.{}{n}@{domain}", ascii(first), ascii(last));
            let phone = format!("+4930{:07}", n);
            let mut tags = Vec::new();
            if n.is_multiple_of(50) {
                tags.push("vip");
            }
            if n.is_multiple_of(7) {
                tags.push("newsletter");
            }
            if n.is_multiple_of(11) {
                tags.push("event-2026");
            }
            ids.push(uuid::Uuid::now_v7());
            text[0].push(first.to_owned());
            text[1].push(last.to_owned());
            text[2].push(format!("{first} {last}"));
            text[3].push(["customer", "prospect", "partner", "vendor"][n % 4].to_owned());
            text[4].push(if n.is_multiple_of(10) { "inactive" } else { "active" }.to_owned());
            text[5]
                .push(serde_json::json!([{"address": email, "label": "work", "primary": true}]).to_string());
            text[6]
                .push(serde_json::json!([{"number": phone, "label": "work", "primary": true}]).to_string());
            text[7].push(format!("{email}\u{1f}{phone}"));
            text[8].push(tags.join(";"));
            companies.push(company.map(|i| company_id(tenant, i)));
            owner_ids.push(owners[n % OWNERS]);
            created.push(epoch() - TimeDelta::minutes(i64::try_from(n).unwrap()));
        }
        diesel::sql_query(
            "INSERT INTO crm_contacts (tenant_id, id, first_name, last_name, display_name, contact_type, status, \
                 emails, phones, email_keys, phone_keys, company_id, owner_id, tags, created_at, updated_at) \
             SELECT $1, id, first_name, last_name, display_name, contact_type, status, emails::jsonb, phones::jsonb, \
                 ARRAY[split_part(keys, chr(31), 1)], ARRAY[split_part(keys, chr(31), 2)], company_id, owner_id, \
                 CASE WHEN tags = '' THEN '{}'::text[] ELSE string_to_array(tags, ';') END, created, created \
             FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
                         $9::text[], $10::text[], $11::text[], $12::uuid[], $13::uuid[], $14::timestamptz[]) \
                 AS c(id, first_name, last_name, display_name, contact_type, status, emails, phones, keys, tags, \
                      company_id, owner_id, created)",
        )
        .bind::<SqlUuid, _>(tenant.id.into_uuid())
        .bind::<Array<SqlUuid>, _>(&ids)
        .bind::<Array<Text>, _>(&text[0])
        .bind::<Array<Text>, _>(&text[1])
        .bind::<Array<Text>, _>(&text[2])
        .bind::<Array<Text>, _>(&text[3])
        .bind::<Array<Text>, _>(&text[4])
        .bind::<Array<Text>, _>(&text[5])
        .bind::<Array<Text>, _>(&text[6])
        .bind::<Array<Text>, _>(&text[7])
        .bind::<Array<Text>, _>(&text[8])
        .bind::<Array<diesel::sql_types::Nullable<SqlUuid>>, _>(&companies)
        .bind::<Array<SqlUuid>, _>(&owner_ids)
        .bind::<Array<Timestamptz>, _>(&created)
        .execute(conn)
        .await
        .unwrap();
    }
}

/// A tenant with the CRM feature on and its companies and contacts.
async fn seed(store: &Store, owner_url: &str, tenant: &Tenant, contacts: usize) {
    let on = SetFeatures { features: BTreeMap::from([("crm".to_owned(), Some(true))]) };
    let config = store.set_features(&member(tenant), tenant.id, on).await.unwrap();
    assert!(config.features["crm"].enabled, "crm on for {}", tenant.slug);
    let mut conn = AsyncPgConnection::establish(owner_url).await.unwrap();
    diesel::sql_query("SELECT set_config('app.tenant_id', $1, false)")
        .bind::<Text, _>(tenant.id.to_string())
        .execute(&mut conn)
        .await
        .unwrap();
    let started = Instant::now();
    seed_companies(&mut conn, tenant).await;
    seed_contacts(&mut conn, tenant, contacts).await;
    println!(
        "  {}: {contacts} contacts and {COMPANIES} companies written in {:.1?}",
        tenant.slug,
        started.elapsed()
    );
}

fn member(tenant: &Tenant) -> TenantContext {
    TenantContext {
        tenant_id: tenant.id,
        actor: Actor::User { user_id: UserId::new(), tenant_id: tenant.id },
        permissions: Default::default(),
        request_id: RequestId::generate(),
        origin: portico_kernel::Origin::default(),
    }
}

/// The queries measured: a name, the path and what a correct answer holds.
fn queries(tenant: &Tenant, contacts: usize) -> Vec<(&'static str, String, Expect)> {
    let from = (epoch() - TimeDelta::days(30)).to_rfc3339();
    let to = (epoch() - TimeDelta::days(23)).to_rfc3339();
    let list = "/api/v1/crm/contacts";
    let owner = owners()[2];
    let company = company_id(tenant, 62);
    let last_page = contacts / 20;
    vec![
        ("first page by name", format!("{list}?sort=name"), Expect::Total(contacts)),
        (
            "deep page, newest first",
            format!("{list}?sort=-createdAt&page={last_page}"),
            Expect::Total(contacts),
        ),
        ("status and type, by name", format!("{list}?status=inactive&type=customer&sort=name"), Expect::Some),
        ("tag, newest first", format!("{list}?tag=vip&sort=-createdAt"), Expect::Total(contacts / 50)),
        (
            "owner, last updated",
            format!("{list}?ownerId={owner}&sort=-updatedAt"),
            Expect::Total(contacts / OWNERS),
        ),
        ("company", format!("{list}?companyId={company}"), Expect::Some),
        (
            "created in a week",
            format!("{list}?createdFrom={}&createdTo={}", enc(&from), enc(&to)),
            Expect::Some,
        ),
        ("search a surname", format!("{list}?q=schmidt"), Expect::Some),
        ("search first and last name prefixes", format!("{list}?q=anna%20schm"), Expect::Some),
        ("search an email", format!("{list}?q=clara.weber"), Expect::Some),
        ("search a company's trade", format!("{list}?q=logistik&sort=-createdAt"), Expect::Some),
        ("search, nothing found", format!("{list}?q=zzyzx"), Expect::Total(0)),
    ]
}

/// What an answer must hold.
#[derive(Clone, Copy)]
enum Expect {
    /// Exactly this total.
    Total(usize),
    /// Some rows.
    Some,
}

fn enc(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

/// A kept-alive connection to the server.
fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let conn = TcpStream::connect(addr).unwrap();
    conn.set_nodelay(true).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    BufReader::with_capacity(64 * 1024, conn)
}

/// One GET on a kept-alive connection: the status and the body.
fn get(conn: &mut BufReader<TcpStream>, path: &str, token: &str) -> (u16, Vec<u8>) {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\nAccept-Encoding: identity\r\n\r\n"
    );
    conn.get_mut().write_all(request.as_bytes()).unwrap();
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

/// Checks one answer of each query, then measures them all from `clients`
/// clients, the queries interleaved; prints each query's p50 and p99 and
/// returns the worst p99.
fn measure(
    addr: SocketAddr,
    token: &str,
    queries: &[(&'static str, String, Expect)],
    clients: usize,
) -> Duration {
    let mut conn = connect(addr);
    for (name, path, expect) in queries {
        let (status, body) = get(&mut conn, path, token);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 200, "{name}: {json}");
        let total = json["meta"]["total"].as_u64().unwrap();
        match expect {
            Expect::Total(expected) => assert_eq!(total, *expected as u64, "{name}: total"),
            Expect::Some => {
                assert!(total > 0 && !json["data"].as_array().unwrap().is_empty(), "{name}: rows")
            }
        }
    }
    let per_client = SAMPLES.div_ceil(clients);
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let (token, queries) = (token.to_owned(), queries.to_vec());
            std::thread::spawn(move || {
                let mut conn = connect(addr);
                let mut latencies = vec![Vec::with_capacity(per_client); queries.len()];
                for round in 0..per_client {
                    for q in 0..queries.len() {
                        // Each client starts its round at another query.
                        let i = (q + c + round) % queries.len();
                        let begun = Instant::now();
                        let (status, _) = get(&mut conn, &queries[i].1, &token);
                        latencies[i].push(begun.elapsed());
                        assert_eq!(status, 200);
                    }
                }
                latencies
            })
        })
        .collect();
    let mut by_query = vec![Vec::new(); queries.len()];
    for worker in workers {
        for (i, mut measured) in worker.join().unwrap().into_iter().enumerate() {
            by_query[i].append(&mut measured);
        }
    }
    let elapsed = started.elapsed();
    let pct =
        |sorted: &[Duration], p: f64| sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut all = Vec::new();
    let mut worst = Duration::ZERO;
    println!("  {clients} client(s):");
    for ((name, _, _), latencies) in queries.iter().zip(&mut by_query) {
        latencies.sort_unstable();
        let p99 = pct(latencies, 0.99);
        worst = worst.max(p99);
        println!("    {name:<40} p50 {:>6.2} ms   p99 {:>6.2} ms", ms(pct(latencies, 0.5)), ms(p99));
        all.extend_from_slice(latencies);
    }
    all.sort_unstable();
    println!(
        "    {:<40} p50 {:>6.2} ms   p99 {:>6.2} ms   ({} requests, {:.0}/s)",
        "all queries",
        ms(pct(&all, 0.5)),
        ms(pct(&all, 0.99)),
        all.len(),
        all.len() as f64 / elapsed.as_secs_f64()
    );
    worst
}

fn main() {
    let contacts = contacts_per_tenant();
    let system = actix_web::rt::System::new();
    system.block_on(async move {
        let (db, store, first) = support::bench_tenant().await;
        let command: CreateTenant = serde_json::from_value(serde_json::json!({
            "name": "Bench 2", "slug": "bench-2", "contactEmail": "ops@bench.example"
        }))
        .unwrap();
        let second = store.create(&PlatformContext::system("bench"), command).await.unwrap();
        println!("CRM contact list over HTTP: {contacts} contacts in each of 2 tenants");
        seed(&store, &db.urls.owner, &first, contacts).await;
        seed(&store, &db.urls.owner, &second, contacts).await;
        let mut owner = AsyncPgConnection::establish(&db.urls.owner).await.unwrap();
        let started = Instant::now();
        owner.batch_execute("VACUUM ANALYZE").await.unwrap();
        println!("  VACUUM ANALYZE in {:.1?}", started.elapsed());

        let mut settings = Settings::local(TokenKeys::new(support::SECRET));
        settings.rate_limits.enabled = false;
        let running = server::start(store.clone(), &settings).unwrap();
        let (addr, handle) = (running.addr, running.handle.clone());
        actix_web::rt::spawn(running.server);

        let token = support::owner_token(&first, Role::Viewer.permissions());
        let queries = queries(&first, contacts);
        println!("GET /api/v1/crm/contacts (2 cores shared by driver, server and PostgreSQL; {SAMPLES} requests per query):");
        let mut verdicts = Vec::new();
        for clients in CLIENTS {
            let (token, queries) = (token.clone(), queries.clone());
            let worst = actix_web::rt::task::spawn_blocking(move || measure(addr, &token, &queries, clients))
                .await
                .unwrap();
            verdicts.push((clients, worst));
        }
        for (clients, worst) in verdicts {
            println!(
                "  {clients} client(s): worst p99 of any query {:.2} ms (goal {} ms): {}",
                worst.as_secs_f64() * 1e3,
                GOAL.as_millis(),
                if worst < GOAL { "met" } else { "over" }
            );
        }
        handle.stop(true).await;
        drop(owner);
        drop(db);
    });
}
