//! Metering over HTTP: sites, meters and readings with their consumption,
//! usage events and the billable metrics that add them up, closing usage,
//! meter data sources pulled by the worker; the tenant wall, the
//! permission wall, the feature gate and bad input.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use portico_kernel::{NewJob, PlatformContext, TenantId};
use portico_tenancy::Role;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::http::Response;
use crate::support::{TestApp, code, fields, id_of, number, rows};

/// Local midnight of 1 January 2026 in Berlin (the generic industry's time zone).
const JAN_1: &str = "2025-12-31T23:00:00Z";

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// A decimal sent as a JSON string.
fn dec_of(value: &Value) -> Decimal {
    dec(value.as_str().unwrap_or_else(|| panic!("not a decimal string: {value}")))
}

/// `SELECT … AS t` with one text parameter (none when no row or NULL), over every tenant.
async fn text(app: &TestApp, sql: &str, bind: &str) -> Option<String> {
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = Nullable<Text>)]
        t: Option<String>,
    }
    let mut conn = AsyncPgConnection::establish(&app.db.urls.platform).await.unwrap();
    let rows: Vec<Found> = diesel::sql_query(sql).bind::<Text, _>(bind).load(&mut conn).await.unwrap();
    rows.into_iter().next().and_then(|row| row.t)
}

/// The readings stored for a meter, of any status.
async fn stored_readings(app: &TestApp, meter: &str) -> i64 {
    number(app, "SELECT count(*) AS n FROM meter_readings WHERE meter_id = $1::uuid", meter).await
}

/// Switches the tenant's `metering` feature on or off (as platform staff).
async fn set_metering(app: &TestApp, tenant: TenantId, on: bool) {
    let body = json!({"features": {"metering": on}});
    let path = format!("/api/v1/tenants/{tenant}/features");
    let res = app.call("PUT", &path, Some(&app.admin_token()), Some(body)).await;
    assert_eq!(res.status, 200, "{}", res.body);
}

/// A new tenant (of the generic industry, where metering is off) with the
/// feature switched on; and its owner's token.
async fn metering_tenant(app: &TestApp, slug: &str) -> (TenantId, String) {
    let tenant = app.tenant(slug).await;
    set_metering(app, tenant, true).await;
    (tenant, app.user_token(tenant, Role::Owner.permissions()))
}

/// A site (`parent` below, if any); its id.
async fn site(app: &TestApp, token: &str, kind: &str, name: &str, parent: Option<&str>) -> String {
    let body = json!({"kind": kind, "name": name, "parentId": parent});
    let res = app.call("POST", "/api/v1/metering/sites", Some(token), Some(body)).await;
    assert_eq!(res.status, 201, "{}", res.body);
    id_of(&res)
}

/// An electricity register on `site`, serial number `serial`, in service
/// from [`JAN_1`] where it read 1000 kWh.
fn register_on(site: &str, serial: &str) -> Value {
    json!({
        "place": {"type": "site", "siteId": site}, "kind": "electricity", "unit": "kWh",
        "mode": {"mode": "register", "digits": 6}, "serialNumber": serial,
        "activeFrom": JAN_1, "startReading": "1000"
    })
}

/// A flat with the register of [`register_on`]: the flat's id and the meter's.
async fn flat_with_meter(app: &TestApp, token: &str, serial: &str) -> (String, String) {
    let flat = site(app, token, "unit", "Flat 3.2", None).await;
    let res =
        app.call("POST", "/api/v1/metering/meters", Some(token), Some(register_on(&flat, serial))).await;
    assert_eq!(res.status, 201, "{}", res.body);
    (flat, id_of(&res))
}

fn reading(meter: &str, at: &str, value: &str) -> Value {
    json!({"meterId": meter, "at": at, "value": value})
}

async fn add_readings(app: &TestApp, token: &str, readings: Vec<Value>) -> Response {
    app.call("POST", "/api/v1/metering/readings", Some(token), Some(json!({ "readings": readings }))).await
}

fn event(id: &str, subject: &str, metric: &str, at: &str, properties: Value) -> Value {
    json!({"id": id, "subject": subject, "metricCode": metric, "at": at, "properties": properties})
}

async fn send_events(app: &TestApp, token: &str, events: Vec<Value>) -> Response {
    app.call("POST", "/api/v1/metering/events", Some(token), Some(json!({ "events": events }))).await
}

async fn define_metric(app: &TestApp, token: &str, body: Value) -> String {
    let res = app.call("POST", "/api/v1/metering/metrics", Some(token), Some(body)).await;
    assert_eq!(res.status, 201, "{}", res.body);
    id_of(&res)
}

fn count_metric(code: &str) -> Value {
    json!({"code": code, "name": "API calls", "aggregation": {"type": "count"}})
}

/// `GET /api/v1/metering/usage` with `query`.
async fn usage(app: &TestApp, token: &str, query: &str) -> Response {
    app.call("GET", &format!("/api/v1/metering/usage?{query}"), Some(token), None).await
}

/// `POST /api/v1/metering/readings/import` with `body` as CSV.
async fn csv(app: &TestApp, token: &str, body: &str) -> Response {
    let headers = [("Content-Type", "text/csv")];
    app.call_with(
        "POST",
        "/api/v1/metering/readings/import",
        Some(token),
        &headers,
        Some(body.as_bytes().to_vec()),
    )
    .await
}

// ---- The tenant wall ----

#[actix_web::test]
async fn another_tenants_sites_and_meters_are_not_found_and_stay_as_they_were() {
    let app = TestApp::spawn().await;
    let (_, acme) = metering_tenant(&app, "acme").await;
    let (_, globex) = metering_tenant(&app, "globex").await;
    let (flat, meter) = flat_with_meter(&app, &acme, "E-1").await;
    let added = add_readings(&app, &acme, vec![reading(&meter, "2026-01-02T23:00:00Z", "1048")]).await;
    assert_eq!(added.status, 200, "{}", added.body);

    let site_path = format!("/api/v1/metering/sites/{flat}");
    let meter_path = format!("/api/v1/metering/meters/{meter}");
    let rename = json!({"kind": "unit", "name": "Taken over"});
    let replace = json!({"at": "2026-01-03T00:00:00Z", "closingReading": "1050", "startReading": "0"});
    let moved = json!({"place": {"type": "subject", "subject": "customer-42"}});
    let attempts: [(&str, String, Option<Value>, &str); 10] = [
        ("GET", site_path.clone(), None, "metering.site_not_found"),
        ("PUT", site_path.clone(), Some(rename), "metering.site_not_found"),
        ("DELETE", site_path, None, "metering.site_not_found"),
        ("GET", meter_path.clone(), None, "metering.meter_not_found"),
        ("PUT", meter_path.clone(), Some(moved), "metering.meter_not_found"),
        ("DELETE", meter_path.clone(), None, "metering.meter_not_found"),
        ("POST", format!("{meter_path}/replace"), Some(replace), "metering.meter_not_found"),
        ("GET", format!("{meter_path}/readings"), None, "metering.meter_not_found"),
        (
            "GET",
            format!("{meter_path}/consumption?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z"),
            None,
            "metering.meter_not_found",
        ),
        (
            "GET",
            format!(
                "{meter_path}/consumption?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&granularity=day"
            ),
            None,
            "metering.meter_not_found",
        ),
    ];
    for (method, path, body, expected) in attempts {
        let res = app.call(method, &path, Some(&globex), body).await;
        assert_eq!(code(&res), (404, json!(expected)), "{method} {path}: {}", res.body);
        assert!(
            !res.body.contains("1048") && !res.body.contains("Flat 3.2"),
            "{method} {path}: {}",
            res.body
        );
    }

    // Globex's own lists hold nothing of Acme's.
    let sites = app.call("GET", "/api/v1/metering/sites", Some(&globex), None).await;
    assert_eq!((sites.json["data"].clone(), sites.json["meta"]["total"].clone()), (json!([]), json!(0)));
    let meters = app.call("GET", "/api/v1/metering/meters", Some(&globex), None).await;
    assert_eq!((meters.json["data"].clone(), meters.json["meta"]["total"].clone()), (json!([]), json!(0)));

    // Acme's site, meter and reading are as they were.
    let name = "SELECT name AS t FROM metering_sites WHERE id = $1::uuid";
    assert_eq!(text(&app, name, &flat).await.as_deref(), Some("Flat 3.2"));
    let open = "SELECT count(*) AS n FROM meters WHERE id = $1::uuid AND active_until IS NULL AND site_id IS NOT NULL";
    assert_eq!(number(&app, open, &meter).await, 1);
    assert_eq!(number(&app, "SELECT count(*) AS n FROM meters WHERE replaces = $1::uuid", &meter).await, 0);
    assert_eq!(stored_readings(&app, &meter).await, 1);
}

#[actix_web::test]
async fn a_meter_or_source_of_another_tenant_cannot_be_named_in_ones_own() {
    let app = TestApp::spawn().await;
    let (_, acme) = metering_tenant(&app, "acme").await;
    let (globex_id, globex) = metering_tenant(&app, "globex").await;
    let (acme_site, meter) = flat_with_meter(&app, &acme, "E-1").await;

    let on_acme_site = app
        .call("POST", "/api/v1/metering/meters", Some(&globex), Some(register_on(&acme_site, "G-1")))
        .await;
    assert_eq!(code(&on_acme_site), (422, json!("metering.invalid")), "{}", on_acme_site.body);
    assert_eq!(fields(&on_acme_site), ["place.siteId"]);
    let below = json!({"kind": "unit", "name": "Annex", "parentId": acme_site});
    let below_acme = app.call("POST", "/api/v1/metering/sites", Some(&globex), Some(below)).await;
    assert_eq!(code(&below_acme), (422, json!("metering.invalid")), "{}", below_acme.body);
    assert_eq!(fields(&below_acme), ["parentId"]);
    let source = json!({"kind": "simulated", "name": "Borrowed", "meters": {"simulated-charger": meter}});
    let mapped = app.call("POST", "/api/v1/metering/sources", Some(&globex), Some(source)).await;
    assert_eq!(code(&mapped), (422, json!("metering.invalid")), "{}", mapped.body);
    assert_eq!(fields(&mapped), ["meters.simulated-charger"]);

    assert_eq!(rows(&app, "metering_sites", globex_id).await, 0);
    assert_eq!(rows(&app, "meters", globex_id).await, 0);
    assert_eq!(rows(&app, "meter_sources", globex_id).await, 0);
}

#[actix_web::test]
async fn a_readings_batch_naming_another_tenants_meter_is_refused_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let (_, acme) = metering_tenant(&app, "acme").await;
    let (_, globex) = metering_tenant(&app, "globex").await;
    let (_, acme_meter) = flat_with_meter(&app, &acme, "E-1").await;
    let (_, globex_meter) = flat_with_meter(&app, &globex, "G-1").await;

    let res = add_readings(
        &app,
        &globex,
        vec![
            reading(&globex_meter, "2026-01-02T23:00:00Z", "1048"),
            reading(&acme_meter, "2026-01-02T23:00:00Z", "9999"),
        ],
    )
    .await;

    assert_eq!(code(&res), (422, json!("metering.readings_refused")), "{}", res.body);
    let refused = res.json["error"]["details"]["readings"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{}", res.body);
    assert_eq!(
        (refused[0]["index"].clone(), refused[0]["code"].clone()),
        (json!(1), json!("metering.meter_not_found"))
    );
    assert_eq!(stored_readings(&app, &acme_meter).await, 0);
    assert_eq!(stored_readings(&app, &globex_meter).await, 0, "all or nothing");
}

#[actix_web::test]
async fn another_tenants_metrics_and_sources_are_not_found_and_stay_as_they_were() {
    let app = TestApp::spawn().await;
    let (acme_id, acme) = metering_tenant(&app, "acme").await;
    let (_, globex) = metering_tenant(&app, "globex").await;
    let metric = define_metric(&app, &acme, count_metric("api.calls")).await;
    let (_, meter) = flat_with_meter(&app, &acme, "E-1").await;
    let source = json!({"kind": "simulated", "name": "Demo charger", "meters": {"simulated-charger": meter}});
    let created = app.call("POST", "/api/v1/metering/sources", Some(&acme), Some(source)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let source = id_of(&created);

    let metric_path = format!("/api/v1/metering/metrics/{metric}");
    let redefined = json!({"code": "api.calls", "name": "Hijacked", "aggregation": {"type": "count"}});
    for (method, body) in [("GET", None), ("PUT", Some(redefined)), ("DELETE", None)] {
        let res = app.call(method, &metric_path, Some(&globex), body).await;
        assert_eq!(code(&res), (404, json!("metering.metric_not_found")), "{method}: {}", res.body);
    }
    let res = app.call("DELETE", &format!("/api/v1/metering/sources/{source}"), Some(&globex), None).await;
    assert_eq!(code(&res), (404, json!("metering.source_not_found")), "{}", res.body);
    let listed = app.call("GET", "/api/v1/metering/metrics", Some(&globex), None).await;
    assert_eq!(listed.json["data"], json!([]), "{}", listed.body);
    let sources = app.call("GET", "/api/v1/metering/sources", Some(&globex), None).await;
    assert_eq!(sources.json["data"], json!([]), "{}", sources.body);
    let figure =
        usage(&app, &globex, "metric=api.calls&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z").await;
    assert_eq!(code(&figure), (404, json!("metering.metric_not_found")), "{}", figure.body);

    let name = "SELECT name AS t FROM billable_metrics WHERE id = $1::uuid";
    assert_eq!(text(&app, name, &metric).await.as_deref(), Some("API calls"));
    let kept = "SELECT count(*) AS n FROM meter_sources WHERE tenant_id = $1::uuid";
    assert_eq!(number(&app, kept, &acme_id.to_string()).await, 1);
}

#[actix_web::test]
async fn usage_of_one_tenant_is_not_counted_for_another_with_the_same_metric_code() {
    let app = TestApp::spawn().await;
    let (acme_id, acme) = metering_tenant(&app, "acme").await;
    let (globex_id, globex) = metering_tenant(&app, "globex").await;
    define_metric(&app, &acme, count_metric("api.calls")).await;
    define_metric(&app, &globex, count_metric("api.calls")).await;
    let at = "2026-03-10T12:00:00Z";
    let acme_events =
        (1..=3).map(|n| event(&format!("e-{n}"), "customer-42", "api.calls", at, json!({}))).collect();
    assert_eq!(send_events(&app, &acme, acme_events).await.json["data"]["accepted"], json!(3));

    // The same event id in another tenant is another event, not a duplicate.
    let res = send_events(&app, &globex, vec![event("e-1", "customer-42", "api.calls", at, json!({}))]).await;
    assert_eq!(res.json["data"], json!({"accepted": 1, "duplicates": [], "closed": []}), "{}", res.body);

    let query = "metric=api.calls&from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z&groupBy=subject";
    let acme_figure = usage(&app, &acme, query).await;
    assert_eq!(acme_figure.status, 200, "{}", acme_figure.body);
    assert_eq!(
        (acme_figure.json["data"]["value"].clone(), acme_figure.json["data"]["bySubject"].clone()),
        (json!("3"), json!({"customer-42": "3"}))
    );
    let globex_figure = usage(&app, &globex, query).await;
    assert_eq!(
        (globex_figure.json["data"]["value"].clone(), globex_figure.json["data"]["bySubject"].clone()),
        (json!("1"), json!({"customer-42": "1"}))
    );
    assert_eq!(
        (rows(&app, "usage_events", acme_id).await, rows(&app, "usage_events", globex_id).await),
        (3, 1)
    );
}

// ---- The permission wall ----

#[actix_web::test]
async fn a_viewer_reads_but_cannot_write_ingest_or_close() {
    let app = TestApp::spawn().await;
    let (acme, owner) = metering_tenant(&app, "acme").await;
    let (_, meter) = flat_with_meter(&app, &owner, "E-1").await;
    let viewer = app.user_token(acme, Role::Viewer.permissions());

    assert_eq!(app.call("GET", "/api/v1/metering/sites", Some(&viewer), None).await.status, 200);
    assert_eq!(
        app.call("GET", &format!("/api/v1/metering/meters/{meter}"), Some(&viewer), None).await.status,
        200
    );
    let writes: [(&str, &str, Value, &str); 5] = [
        ("POST", "/api/v1/metering/sites", json!({"kind": "unit", "name": "Flat 1"}), "metering:write"),
        ("POST", "/api/v1/metering/metrics", count_metric("api.calls"), "metering:write"),
        (
            "POST",
            "/api/v1/metering/events",
            json!({"events": [event("e-1", "customer-42", "api.calls", "2026-03-01T00:00:00Z", json!({}))]}),
            "metering:ingest",
        ),
        (
            "POST",
            "/api/v1/metering/readings",
            json!({"readings": [reading(&meter, "2026-01-02T23:00:00Z", "1048")]}),
            "metering:ingest",
        ),
        (
            "POST",
            "/api/v1/metering/usage/close",
            json!({"through": "2026-03-01T00:00:00Z"}),
            "metering:close",
        ),
    ];
    for (method, path, body, permission) in writes {
        let res = app.call(method, path, Some(&viewer), Some(body)).await;
        assert_eq!(code(&res), (403, json!("auth.permission_denied")), "{path}: {}", res.body);
        assert_eq!(res.json["error"]["details"]["permission"], json!(permission), "{path}");
    }
    let import =
        csv(&app, &viewer, &format!("meterId,at,value\r\n{meter},2026-01-02T23:00:00Z,1048\r\n")).await;
    assert_eq!(code(&import), (403, json!("auth.permission_denied")), "{}", import.body);

    assert_eq!(rows(&app, "metering_sites", acme).await, 1, "only the owner's flat");
    assert_eq!(rows(&app, "usage_events", acme).await, 0);
    assert_eq!(stored_readings(&app, &meter).await, 0);
    assert_eq!(rows(&app, "billable_metrics", acme).await, 0);
    assert_eq!(rows(&app, "usage_closures", acme).await, 0);
}

#[actix_web::test]
async fn staff_ingest_events_and_readings_but_cannot_define_sites_or_metrics_or_close_usage() {
    let app = TestApp::spawn().await;
    let (acme, owner) = metering_tenant(&app, "acme").await;
    let (flat, meter) = flat_with_meter(&app, &owner, "E-1").await;
    let staff = app.user_token(acme, Role::Staff.permissions());

    let events = send_events(
        &app,
        &staff,
        vec![event("e-1", "customer-42", "api.calls", "2026-03-01T00:00:00Z", json!({}))],
    )
    .await;
    assert_eq!((events.status, events.json["data"]["accepted"].clone()), (200, json!(1)), "{}", events.body);
    let readings = add_readings(&app, &staff, vec![reading(&meter, "2026-01-02T23:00:00Z", "1048")]).await;
    assert_eq!(
        (readings.status, readings.json["data"]["accepted"].clone()),
        (200, json!(1)),
        "{}",
        readings.body
    );
    let import =
        csv(&app, &staff, &format!("meterId,at,value\r\n{meter},2026-01-04T23:00:00Z,1100\r\n")).await;
    assert_eq!((import.status, import.json["data"]["accepted"].clone()), (200, json!(1)), "{}", import.body);

    let refused: [(&str, Value); 4] = [
        ("/api/v1/metering/sites", json!({"kind": "unit", "name": "Flat 1"})),
        ("/api/v1/metering/meters", register_on(&flat, "E-2")),
        ("/api/v1/metering/metrics", count_metric("api.calls")),
        ("/api/v1/metering/usage/close", json!({"through": "2026-03-01T00:00:00Z"})),
    ];
    for (path, body) in refused {
        let res = app.call("POST", path, Some(&staff), Some(body)).await;
        assert_eq!(code(&res), (403, json!("auth.permission_denied")), "{path}: {}", res.body);
    }

    assert_eq!(rows(&app, "usage_events", acme).await, 1);
    assert_eq!(stored_readings(&app, &meter).await, 2);
    assert_eq!(rows(&app, "metering_sites", acme).await, 1);
    assert_eq!(rows(&app, "billable_metrics", acme).await, 0);
    assert_eq!(rows(&app, "usage_closures", acme).await, 0);
}

#[actix_web::test]
async fn an_owner_defines_ingests_and_closes() {
    let app = TestApp::spawn().await;
    let (acme, owner) = metering_tenant(&app, "acme").await;

    let (_, meter) = flat_with_meter(&app, &owner, "E-1").await;
    define_metric(&app, &owner, count_metric("api.calls")).await;
    let readings = add_readings(&app, &owner, vec![reading(&meter, "2026-01-02T23:00:00Z", "1048")]).await;
    assert_eq!(readings.status, 200, "{}", readings.body);
    let events = send_events(
        &app,
        &owner,
        vec![event("e-1", "customer-42", "api.calls", "2026-03-01T00:00:00Z", json!({}))],
    )
    .await;
    assert_eq!(events.status, 200, "{}", events.body);
    let closed = app
        .call(
            "POST",
            "/api/v1/metering/usage/close",
            Some(&owner),
            Some(json!({"through": "2026-02-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(closed.status, 200, "{}", closed.body);

    let tenant = acme.to_string();
    assert_eq!((rows(&app, "metering_sites", acme).await, stored_readings(&app, &meter).await), (1, 1));
    assert_eq!(rows(&app, "usage_events", acme).await, 1);
    let through = "SELECT to_char(closed_through AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS t \
                   FROM usage_closures WHERE tenant_id = $1::uuid";
    assert_eq!(text(&app, through, &tenant).await.as_deref(), Some("2026-02-01 00:00"));
}

// ---- The feature gate ----

#[actix_web::test]
async fn metering_routes_are_closed_while_the_feature_is_off_and_open_again_when_on() {
    let app = TestApp::spawn().await;
    let (acme, owner) = metering_tenant(&app, "acme").await;
    let (_, globex) = metering_tenant(&app, "globex").await;
    let sites = |token: String| {
        let app = &app;
        async move { app.call("GET", "/api/v1/metering/sites", Some(&token), None).await }
    };
    // Read once, so a cached answer would be there to go stale.
    assert_eq!(sites(owner.clone()).await.status, 200);

    set_metering(&app, acme, false).await;
    let res = sites(owner.clone()).await;
    assert_eq!(code(&res), (403, json!("tenancy.feature_disabled")), "{}", res.body);
    let batch = vec![event("e-1", "customer-42", "api.calls", "2026-03-01T00:00:00Z", json!({}))];
    let res = send_events(&app, &owner, batch.clone()).await;
    assert_eq!(code(&res), (403, json!("tenancy.feature_disabled")), "{}", res.body);
    let res = app
        .call("POST", "/api/v1/metering/sites", Some(&owner), Some(json!({"kind": "unit", "name": "F"})))
        .await;
    assert_eq!(code(&res), (403, json!("tenancy.feature_disabled")), "{}", res.body);
    let res = app
        .call(
            "GET",
            "/api/v1/metering/usage?metric=x&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(code(&res), (403, json!("tenancy.feature_disabled")), "{}", res.body);
    assert_eq!(sites(globex).await.status, 200, "another tenant keeps the feature");
    assert_eq!((rows(&app, "usage_events", acme).await, rows(&app, "metering_sites", acme).await), (0, 0));

    set_metering(&app, acme, true).await;
    assert_eq!(sites(owner.clone()).await.status, 200);
    let res = send_events(&app, &owner, batch).await;
    assert_eq!((res.status, res.json["data"]["accepted"].clone()), (200, json!(1)), "{}", res.body);
    assert_eq!(rows(&app, "usage_events", acme).await, 1);
}

#[actix_web::test]
async fn a_tenant_of_an_industry_without_metering_cannot_use_it() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("acme").await;
    let owner = app.user_token(acme, Role::Owner.permissions());
    let res = app.call("GET", "/api/v1/metering/meters", Some(&owner), None).await;
    assert_eq!(code(&res), (403, json!("tenancy.feature_disabled")), "{}", res.body);
}

// ---- Usage events ----

#[actix_web::test]
async fn events_repeated_in_a_batch_or_sent_again_are_reported_as_duplicates_and_stored_once() {
    let app = TestApp::spawn().await;
    let (acme, owner) = metering_tenant(&app, "acme").await;
    let at = "2026-03-01T12:00:00Z";
    let a = event("evt-a", "customer-42", "api.calls", at, json!({}));
    let b = event("evt-b", "customer-42", "api.calls", at, json!({}));
    let c = event("evt-c", "customer-7", "api.calls", at, json!({}));

    let first = send_events(&app, &owner, vec![a.clone(), b.clone(), a.clone()]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json["data"], json!({"accepted": 2, "duplicates": ["evt-a"], "closed": []}));
    let again = send_events(&app, &owner, vec![a, b, c]).await;
    assert_eq!(again.json["data"], json!({"accepted": 1, "duplicates": ["evt-a", "evt-b"], "closed": []}));

    assert_eq!(rows(&app, "usage_events", acme).await, 3);
    let once = "SELECT count(*) AS n FROM usage_events WHERE event_id = $1";
    assert_eq!(number(&app, once, "evt-a").await, 1);
}

#[actix_web::test]
async fn a_batch_of_1001_events_is_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let (acme, owner) = metering_tenant(&app, "acme").await;
    let events: Vec<Value> = (0..1_001)
        .map(|n| event(&format!("evt-{n}"), "customer-42", "api.calls", "2026-03-01T12:00:00Z", json!({})))
        .collect();

    let res = send_events(&app, &owner, events.clone()).await;

    assert_eq!(code(&res), (422, json!("metering.invalid")), "{}", res.body);
    assert_eq!(fields(&res), ["events"]);
    assert_eq!(rows(&app, "usage_events", acme).await, 0);
    let thousand = send_events(&app, &owner, events[..1_000].to_vec()).await;
    assert_eq!(thousand.json["data"]["accepted"], json!(1_000), "1,000 is the limit: {}", thousand.body);
}

#[actix_web::test]
async fn a_bad_event_is_named_by_its_place_and_nothing_of_the_batch_is_stored() {
    let app = TestApp::spawn().await;
    let (acme, owner) = metering_tenant(&app, "acme").await;
    let at = "2026-03-01T12:00:00Z";
    let batch = vec![
        event("evt-1", "customer-42", "api.calls", at, json!({})),
        event("evt-2", "customer-42", "api.calls", at, json!({})),
        event("evt-3", "customer-42", "API Calls", at, json!({})),
    ];

    let res = send_events(&app, &owner, batch).await;

    assert_eq!(code(&res), (422, json!("metering.invalid")), "{}", res.body);
    assert_eq!(fields(&res), ["events[2].metricCode"]);
    assert_eq!(rows(&app, "usage_events", acme).await, 0);
}

/// An instant `days` from now, as RFC 3339.
fn days_from_now(days: i64) -> String {
    (Utc::now() + chrono::Duration::days(days)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[actix_web::test]
async fn events_in_usage_closed_past_its_grace_are_reported_closed_and_the_others_stored() {
    let app = TestApp::spawn_with(|s| s.metering.usage_grace = chrono::Duration::zero()).await;
    let (acme, owner) = metering_tenant(&app, "acme").await;
    let (through, before, after) = (days_from_now(-10), days_from_now(-20), days_from_now(-5));
    let closed = app
        .call("POST", "/api/v1/metering/usage/close", Some(&owner), Some(json!({ "through": through })))
        .await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    assert_eq!(closed.json["data"], json!({"closedThrough": through, "graceHours": 0}));

    let res = send_events(
        &app,
        &owner,
        vec![
            event("late", "customer-42", "api.calls", &before, json!({})),
            event("on-time", "customer-42", "api.calls", &after, json!({})),
            event("at-the-edge", "customer-42", "api.calls", &through, json!({})),
        ],
    )
    .await;

    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"], json!({"accepted": 2, "duplicates": [], "closed": ["late"]}));
    assert_eq!(rows(&app, "usage_events", acme).await, 2);
    assert_eq!(number(&app, "SELECT count(*) AS n FROM usage_events WHERE event_id = $1", "late").await, 0);
}

#[actix_web::test]
async fn a_batch_wholly_in_closed_usage_is_refused_as_usage_closed() {
    let app = TestApp::spawn_with(|s| s.metering.usage_grace = chrono::Duration::zero()).await;
    let (acme, owner) = metering_tenant(&app, "acme").await;
    let through = days_from_now(-10);
    let closed = app
        .call("POST", "/api/v1/metering/usage/close", Some(&owner), Some(json!({ "through": through })))
        .await;
    assert_eq!(closed.status, 200, "{}", closed.body);

    let res = send_events(
        &app,
        &owner,
        vec![
            event("late-1", "customer-42", "api.calls", &days_from_now(-20), json!({})),
            event("late-2", "customer-7", "api.calls", &days_from_now(-11), json!({})),
        ],
    )
    .await;

    assert_eq!(code(&res), (422, json!("metering.usage_closed")), "{}", res.body);
    assert_eq!(res.json["error"]["details"]["closed"], json!(["late-1", "late-2"]));
    assert_eq!(rows(&app, "usage_events", acme).await, 0);
}

#[actix_web::test]
async fn late_events_are_taken_within_the_grace_period() {
    let app = TestApp::spawn().await; // 72 hours of grace
    let (acme, owner) = metering_tenant(&app, "acme").await;
    let through = days_from_now(-1);
    app.call("POST", "/api/v1/metering/usage/close", Some(&owner), Some(json!({ "through": through }))).await;

    let res = send_events(
        &app,
        &owner,
        vec![event("late", "customer-42", "api.calls", &days_from_now(-3), json!({}))],
    )
    .await;

    assert_eq!(res.json["data"], json!({"accepted": 1, "duplicates": [], "closed": []}), "{}", res.body);
    assert_eq!(rows(&app, "usage_events", acme).await, 1);
}

#[actix_web::test]
async fn usage_is_not_closed_in_the_future_and_a_closing_only_moves_forward() {
    let app = TestApp::spawn().await;
    let (acme, owner) = metering_tenant(&app, "acme").await;
    let close = |through: String| {
        let (app, owner) = (&app, owner.clone());
        async move {
            app.call(
                "POST",
                "/api/v1/metering/usage/close",
                Some(&owner),
                Some(json!({ "through": through })),
            )
            .await
        }
    };

    let future = close(days_from_now(1)).await;
    assert_eq!(code(&future), (422, json!("metering.invalid_period")), "{}", future.body);
    assert_eq!(rows(&app, "usage_closures", acme).await, 0);

    let later = days_from_now(-2);
    assert_eq!(close(later.clone()).await.json["data"]["closedThrough"], json!(later));
    let earlier = close(days_from_now(-30)).await;
    assert_eq!((earlier.status, earlier.json["data"]["closedThrough"].clone()), (200, json!(later)));
}

// ---- Billable metrics and usage figures ----

#[actix_web::test]
async fn usage_counts_and_sums_the_events_of_the_period_per_metric_and_subject() {
    let app = TestApp::spawn().await;
    let (_, owner) = metering_tenant(&app, "acme").await;
    define_metric(&app, &owner, count_metric("api.calls")).await;
    define_metric(
        &app,
        &owner,
        json!({
            "code": "llm.tokens", "name": "Tokens of the large model",
            "aggregation": {"type": "sum", "property": "tokens"},
            "filters": [{"property": "model", "values": ["large"]}]
        }),
    )
    .await;
    let tokens = |n: i64, model: &str| json!({"tokens": n, "model": model});
    let res = send_events(
        &app,
        &owner,
        vec![
            event("c-1", "customer-42", "api.calls", "2026-03-01T00:00:00Z", json!({})),
            event("c-2", "customer-42", "api.calls", "2026-03-15T08:30:00Z", json!({})),
            event("c-3", "customer-7", "api.calls", "2026-03-31T23:59:59Z", json!({})),
            // Outside [from, to): the end is exclusive.
            event("c-4", "customer-7", "api.calls", "2026-04-01T00:00:00Z", json!({})),
            event("c-5", "customer-42", "api.calls", "2026-02-28T23:59:59Z", json!({})),
            event("t-1", "customer-42", "llm.tokens", "2026-03-02T10:00:00Z", tokens(812, "large")),
            event("t-2", "customer-42", "llm.tokens", "2026-03-02T11:00:00Z", tokens(100, "small")),
            event("t-3", "customer-7", "llm.tokens", "2026-03-20T10:00:00Z", tokens(472, "large")),
            event("t-4", "customer-9", "llm.tokens", "2026-03-21T10:00:00Z", json!({"tokens": 5})),
            event("t-5", "customer-7", "llm.tokens", "2026-04-02T10:00:00Z", tokens(1000, "large")),
        ],
    )
    .await;
    assert_eq!(res.json["data"]["accepted"], json!(10), "{}", res.body);
    let march = "from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z";

    let calls = usage(&app, &owner, &format!("metric=api.calls&{march}&groupBy=subject")).await;
    assert_eq!(calls.status, 200, "{}", calls.body);
    assert_eq!(
        calls.json["data"],
        json!({
            "metric": "api.calls", "subject": null, "from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z",
            "value": "3", "bySubject": {"customer-42": "2", "customer-7": "1"}
        })
    );
    // 812 + 472: the small model's and the unlabelled event's tokens are filtered out.
    let summed = usage(&app, &owner, &format!("metric=llm.tokens&{march}&groupBy=subject")).await;
    assert_eq!(
        (summed.json["data"]["value"].clone(), summed.json["data"]["bySubject"].clone()),
        (json!("1284"), json!({"customer-42": "812", "customer-7": "472"})),
        "{}",
        summed.body
    );
    let one = usage(&app, &owner, &format!("metric=llm.tokens&{march}&subject=customer-7")).await;
    assert_eq!(
        (
            one.json["data"]["value"].clone(),
            one.json["data"]["subject"].clone(),
            one.json["data"]["bySubject"].clone()
        ),
        (json!("472"), json!("customer-7"), Value::Null)
    );
    let april =
        usage(&app, &owner, "metric=api.calls&from=2026-04-01T00:00:00Z&to=2026-05-01T00:00:00Z").await;
    assert_eq!(april.json["data"]["value"], json!("1"));
    let empty =
        usage(&app, &owner, "metric=llm.tokens&from=2025-01-01T00:00:00Z&to=2025-02-01T00:00:00Z").await;
    assert_eq!(empty.json["data"]["value"], json!("0"), "nothing that counts is 0");
}

#[actix_web::test]
async fn a_figure_asked_for_one_subject_is_broken_down_for_that_subject_only() {
    let app = TestApp::spawn().await;
    let (_, owner) = metering_tenant(&app, "acme").await;
    define_metric(&app, &owner, count_metric("api.calls")).await;
    let at = "2026-03-10T12:00:00Z";
    let events = vec![
        event("c-1", "customer-42", "api.calls", at, json!({})),
        event("c-2", "customer-7", "api.calls", at, json!({})),
        event("c-3", "customer-7", "api.calls", at, json!({})),
    ];
    assert_eq!(send_events(&app, &owner, events).await.json["data"]["accepted"], json!(3));

    let query = "metric=api.calls&from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z&subject=customer-7&groupBy=subject";
    let res = usage(&app, &owner, query).await;

    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        (res.json["data"]["value"].clone(), res.json["data"]["bySubject"].clone()),
        (json!("2"), json!({"customer-7": "2"}))
    );
}

#[actix_web::test]
async fn a_figure_of_an_unknown_metric_is_404_and_a_malformed_question_400_or_422() {
    let app = TestApp::spawn().await;
    let (_, owner) = metering_tenant(&app, "acme").await;
    define_metric(&app, &owner, count_metric("api.calls")).await;

    let unknown = usage(&app, &owner, "metric=nope&from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z").await;
    assert_eq!(code(&unknown), (404, json!("metering.metric_not_found")), "{}", unknown.body);
    let no_from = usage(&app, &owner, "metric=api.calls&to=2026-04-01T00:00:00Z").await;
    assert_eq!(code(&no_from), (400, json!("request.invalid_query")), "{}", no_from.body);
    let bad_time = usage(&app, &owner, "metric=api.calls&from=yesterday&to=2026-04-01T00:00:00Z").await;
    assert_eq!(code(&bad_time), (400, json!("request.invalid_query")), "{}", bad_time.body);
    let backwards =
        usage(&app, &owner, "metric=api.calls&from=2026-04-01T00:00:00Z&to=2026-03-01T00:00:00Z").await;
    assert_eq!(code(&backwards), (422, json!("metering.invalid_period")), "{}", backwards.body);
}

#[actix_web::test]
async fn a_metric_code_taken_is_409_and_an_unknown_aggregation_422() {
    let app = TestApp::spawn().await;
    let (acme, owner) = metering_tenant(&app, "acme").await;
    let first = define_metric(&app, &owner, count_metric("api.calls")).await;

    let taken =
        app.call("POST", "/api/v1/metering/metrics", Some(&owner), Some(count_metric("api.calls"))).await;
    assert_eq!(code(&taken), (409, json!("metering.metric_code_taken")), "{}", taken.body);
    let other = define_metric(&app, &owner, count_metric("api.errors")).await;
    let renamed = app
        .call(
            "PUT",
            &format!("/api/v1/metering/metrics/{other}"),
            Some(&owner),
            Some(count_metric("api.calls")),
        )
        .await;
    assert_eq!(code(&renamed), (409, json!("metering.metric_code_taken")), "{}", renamed.body);
    let median = json!({"code": "llm.median", "name": "Median", "aggregation": {"type": "median", "property": "tokens"}});
    let unknown = app.call("POST", "/api/v1/metering/metrics", Some(&owner), Some(median)).await;
    assert_eq!(code(&unknown), (422, json!("request.invalid_body")), "{}", unknown.body);
    let bad_code = json!({"code": "API Calls", "name": "Calls", "aggregation": {"type": "count"}});
    let invalid = app.call("POST", "/api/v1/metering/metrics", Some(&owner), Some(bad_code)).await;
    assert_eq!(code(&invalid), (422, json!("metering.invalid")), "{}", invalid.body);
    assert_eq!(fields(&invalid), ["code"]);

    let codes =
        "SELECT string_agg(code, ',' ORDER BY code) AS t FROM billable_metrics WHERE tenant_id = $1::uuid";
    assert_eq!(text(&app, codes, &acme.to_string()).await.as_deref(), Some("api.calls,api.errors"));
    let listed = app.call("GET", "/api/v1/metering/metrics", Some(&owner), None).await;
    assert_eq!(listed.json["data"][0]["id"], json!(first));
}

// ---- Sites, meters and readings ----

#[actix_web::test]
async fn a_site_tree_is_created_listed_read_and_kept_a_tree() {
    let app = TestApp::spawn().await;
    let (acme, owner) = metering_tenant(&app, "acme").await;
    let property = site(&app, &owner, "property", "Lindenhof", None).await;
    let building = site(&app, &owner, "building", "Haus A", Some(&property)).await;
    let flat = site(&app, &owner, "unit", "Flat 3.2", Some(&building)).await;

    let listed = app.call("GET", "/api/v1/metering/sites", Some(&owner), None).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let names: Vec<&str> =
        listed.json["data"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Flat 3.2", "Haus A", "Lindenhof"], "by name");
    assert_eq!(listed.json["meta"]["total"], json!(3));
    let read = app.call("GET", &format!("/api/v1/metering/sites/{flat}"), Some(&owner), None).await;
    assert_eq!(
        read.json["data"],
        json!({"id": flat, "parentId": building, "kind": "unit", "name": "Flat 3.2", "externalRef": null})
    );

    let below_itself = json!({"kind": "property", "name": "Lindenhof", "parentId": flat});
    let res = app
        .call("PUT", &format!("/api/v1/metering/sites/{property}"), Some(&owner), Some(below_itself))
        .await;
    assert_eq!(code(&res), (409, json!("metering.site_cycle")), "{}", res.body);
    let parent = "SELECT coalesce(parent_id::text, '-') AS t FROM metering_sites WHERE id = $1::uuid";
    assert_eq!(text(&app, parent, &property).await.as_deref(), Some("-"));
    assert_eq!(rows(&app, "metering_sites", acme).await, 3);
}

#[actix_web::test]
async fn a_readings_batch_is_stored_listed_and_gives_the_consumption_per_local_day() {
    let app = TestApp::spawn().await;
    let (_, owner) = metering_tenant(&app, "acme").await;
    let (_, meter) = flat_with_meter(&app, &owner, "E-1").await;

    // 1000 at the start (1 January, Berlin's midnight), 1048 two days later,
    // 1100 two days after that: 1 kWh an hour, then 13/12 kWh an hour.
    let res = add_readings(
        &app,
        &owner,
        vec![
            reading(&meter, "2026-01-04T23:00:00Z", "1100"),
            reading(&meter, "2026-01-02T23:00:00Z", "1048"),
        ],
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"], json!({"accepted": 2, "duplicates": 0, "rejected": 0, "flagged": []}));
    assert_eq!(stored_readings(&app, &meter).await, 2);

    let page =
        app.call("GET", &format!("/api/v1/metering/meters/{meter}/readings"), Some(&owner), None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let readings = page.json["data"].as_array().unwrap();
    let seen: Vec<(&str, &str, &str)> = readings
        .iter()
        .map(|r| (r["at"].as_str().unwrap(), r["value"].as_str().unwrap(), r["source"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [("2026-01-02T23:00:00Z", "1048", "manual"), ("2026-01-04T23:00:00Z", "1100", "manual")]
    );
    assert_eq!(page.json["meta"]["total"], json!(2));
    let later = app
        .call(
            "GET",
            &format!("/api/v1/metering/meters/{meter}/readings?from=2026-01-03T00:00:00Z"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(later.json["meta"]["total"], json!(1), "{}", later.body);

    // From noon on 1 January (11:00 UTC) to the end of 3 January, Berlin time.
    let path = format!(
        "/api/v1/metering/meters/{meter}/consumption?from=2026-01-01T11:00:00Z&to=2026-01-03T23:00:00Z&granularity=day"
    );
    let used = app.call("GET", &path, Some(&owner), None).await;
    assert_eq!(used.status, 200, "{}", used.body);
    let data = &used.json["data"];
    assert_eq!((data["meterId"].clone(), data["unit"].clone()), (json!(meter), json!("kWh")));
    assert_eq!(data["timeZone"], json!("Europe/Berlin"));
    assert_eq!(dec_of(&data["total"]), dec("62"), "12 + 24 + 26");
    let buckets: Vec<(&str, &str, &str, Decimal)> = data["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["localDate"].as_str().unwrap(),
                b["start"].as_str().unwrap(),
                b["end"].as_str().unwrap(),
                dec_of(&b["quantity"]),
            )
        })
        .collect();
    assert_eq!(
        buckets,
        [
            ("2026-01-01", "2026-01-01T11:00:00Z", "2026-01-01T23:00:00Z", dec("12")),
            ("2026-01-02", "2026-01-01T23:00:00Z", "2026-01-02T23:00:00Z", dec("24")),
            ("2026-01-03", "2026-01-02T23:00:00Z", "2026-01-03T23:00:00Z", dec("26")),
        ]
    );
    let beyond = app
        .call(
            "GET",
            &format!("/api/v1/metering/meters/{meter}/consumption?from=2026-01-04T00:00:00Z&to=2026-01-06T00:00:00Z"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(code(&beyond), (409, json!("metering.not_covered")), "{}", beyond.body);
}

#[actix_web::test]
async fn a_refused_reading_refuses_its_batch_naming_each_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let (_, owner) = metering_tenant(&app, "acme").await;
    let (_, meter) = flat_with_meter(&app, &owner, "E-1").await;
    add_readings(&app, &owner, vec![reading(&meter, "2026-01-02T23:00:00Z", "1048")]).await;

    let res = add_readings(
        &app,
        &owner,
        vec![
            reading(&meter, "2026-01-04T23:00:00Z", "1100"),
            reading(&meter, "2026-01-05T23:00:00Z", "1090"),
            reading(&meter, &days_from_now(2), "1200"),
        ],
    )
    .await;

    assert_eq!(code(&res), (422, json!("metering.readings_refused")), "{}", res.body);
    let refused: Vec<(Value, Value)> = res.json["error"]["details"]["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].clone(), r["code"].clone()))
        .collect();
    assert_eq!(
        refused,
        [
            (json!(1), json!("metering.reading_below_previous")),
            (json!(2), json!("metering.reading_in_future"))
        ]
    );
    assert_eq!(stored_readings(&app, &meter).await, 1, "only the earlier batch's");
}

#[actix_web::test]
async fn a_replaced_meter_is_closed_and_its_successor_carries_the_consumption_on() {
    let app = TestApp::spawn().await;
    let (_, owner) = metering_tenant(&app, "acme").await;
    let (_, old) = flat_with_meter(&app, &owner, "E-1").await;
    add_readings(&app, &owner, vec![reading(&old, "2026-01-04T23:00:00Z", "1100")]).await;

    let body = json!({"at": "2026-01-05T23:00:00Z", "closingReading": "1130", "serialNumber": "E-2", "startReading": "0"});
    let replaced = app
        .call("POST", &format!("/api/v1/metering/meters/{old}/replace"), Some(&owner), Some(body.clone()))
        .await;

    assert_eq!(replaced.status, 201, "{}", replaced.body);
    let data = &replaced.json["data"];
    assert_eq!(
        (data["closed"]["id"].clone(), data["closed"]["activeUntil"].clone()),
        (json!(old), json!("2026-01-05T23:00:00Z"))
    );
    let successor = data["successor"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (
            data["successor"]["replaces"].clone(),
            data["successor"]["activeFrom"].clone(),
            data["successor"]["serialNumber"].clone(),
            data["successor"]["activeUntil"].clone(),
        ),
        (json!(old), json!("2026-01-05T23:00:00Z"), json!("E-2"), Value::Null)
    );
    assert_eq!(data["successor"]["place"], data["closed"]["place"], "in the same place");
    assert_eq!(
        (data["closingReading"]["value"].clone(), data["closingReading"]["at"].clone()),
        (json!("1130"), json!("2026-01-05T23:00:00Z"))
    );
    let until = "SELECT to_char(active_until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS t FROM meters WHERE id = $1::uuid";
    assert_eq!(text(&app, until, &old).await.as_deref(), Some("2026-01-05 23:00"));
    let replaces = "SELECT replaces::text AS t FROM meters WHERE id = $1::uuid";
    assert_eq!(text(&app, replaces, &successor).await, Some(old.clone()));
    assert_eq!(stored_readings(&app, &old).await, 2, "with its closing reading");
    let active = app.call("GET", "/api/v1/metering/meters?active=true", Some(&owner), None).await;
    assert_eq!(
        active.json["data"].as_array().unwrap().iter().map(|m| m["id"].clone()).collect::<Vec<_>>(),
        [json!(successor)]
    );

    // The old meter reads no more; the new one carries on from 0.
    let late = add_readings(&app, &owner, vec![reading(&old, "2026-01-06T23:00:00Z", "1150")]).await;
    assert_eq!(
        late.json["error"]["details"]["readings"][0]["code"],
        json!("metering.meter_inactive"),
        "{}",
        late.body
    );
    let res = add_readings(&app, &owner, vec![reading(&successor, "2026-01-06T23:00:00Z", "20")]).await;
    assert_eq!(res.status, 200, "{}", res.body);
    // 30 kWh on the old meter's last day, 20 on the new one's first, whichever id is asked.
    for meter in [&old, &successor] {
        let path = format!(
            "/api/v1/metering/meters/{meter}/consumption?from=2026-01-04T23:00:00Z&to=2026-01-06T23:00:00Z&granularity=day"
        );
        let used = app.call("GET", &path, Some(&owner), None).await;
        assert_eq!(used.status, 200, "{}", used.body);
        assert_eq!(dec_of(&used.json["data"]["total"]), dec("50"));
        let days: Vec<(&str, Decimal)> = used.json["data"]["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| (b["localDate"].as_str().unwrap(), dec_of(&b["quantity"])))
            .collect();
        assert_eq!(days, [("2026-01-05", dec("30")), ("2026-01-06", dec("20"))]);
    }

    let again =
        app.call("POST", &format!("/api/v1/metering/meters/{old}/replace"), Some(&owner), Some(body)).await;
    assert_eq!(code(&again), (409, json!("metering.meter_replaced")), "{}", again.body);
    assert_eq!(number(&app, "SELECT count(*) AS n FROM meters WHERE replaces = $1::uuid", &old).await, 1);
}

#[actix_web::test]
async fn a_site_with_a_meter_or_a_site_below_it_is_not_deleted() {
    let app = TestApp::spawn().await;
    let (acme, owner) = metering_tenant(&app, "acme").await;
    let building = site(&app, &owner, "building", "Haus A", None).await;
    site(&app, &owner, "unit", "Flat 1", Some(&building)).await;
    let metered = site(&app, &owner, "unit", "Plant room", None).await;
    let res =
        app.call("POST", "/api/v1/metering/meters", Some(&owner), Some(register_on(&metered, "E-1"))).await;
    let meter = id_of(&res);

    for site in [&building, &metered] {
        let res = app.call("DELETE", &format!("/api/v1/metering/sites/{site}"), Some(&owner), None).await;
        assert_eq!(code(&res), (409, json!("metering.site_in_use")), "{}", res.body);
    }
    assert_eq!(rows(&app, "metering_sites", acme).await, 3);

    // A meter without readings may go; then its site may too.
    let gone = app.call("DELETE", &format!("/api/v1/metering/meters/{meter}"), Some(&owner), None).await;
    assert_eq!(gone.status, 204, "{}", gone.body);
    let gone = app.call("DELETE", &format!("/api/v1/metering/sites/{metered}"), Some(&owner), None).await;
    assert_eq!(gone.status, 204, "{}", gone.body);
    assert_eq!(rows(&app, "metering_sites", acme).await, 2);
}

#[actix_web::test]
async fn a_readings_file_is_imported_by_serial_number_and_meter_id() {
    let app = TestApp::spawn().await;
    let (_, owner) = metering_tenant(&app, "acme").await;
    let (_, meter) = flat_with_meter(&app, &owner, "E-1").await;

    let by_serial = "serialNumber,at,value\r\nE-1,2026-01-03T00:00:00+01:00,1048\r\n\r\nE-1,2026-01-05T00:00:00+01:00,1100\r\n";
    let res = csv(&app, &owner, by_serial).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"], json!({"accepted": 2, "duplicates": 0, "rejected": 0, "flagged": []}));
    let by_id = format!(
        "meterId,at,value,estimated\n{meter},2026-01-05T00:00:00+01:00,1100,\n{meter},2026-01-06T00:00:00+01:00,1125,true\n"
    );
    let res = csv(&app, &owner, &by_id).await;
    assert_eq!(
        res.json["data"],
        json!({"accepted": 1, "duplicates": 1, "rejected": 0, "flagged": []}),
        "{}",
        res.body
    );

    let imported = "SELECT count(*) AS n FROM meter_readings WHERE meter_id = $1::uuid AND source = 'import'";
    assert_eq!(number(&app, imported, &meter).await, 3);
    let estimated =
        "SELECT value::text AS t FROM meter_readings WHERE meter_id = $1::uuid AND status = 'estimated'";
    assert_eq!(text(&app, estimated, &meter).await.as_deref(), Some("1125"));
}

#[actix_web::test]
async fn a_readings_file_with_bad_rows_is_refused_by_line_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let (_, owner) = metering_tenant(&app, "acme").await;
    let (_, meter) = flat_with_meter(&app, &owner, "E-1").await;
    let errors = |res: &Response| -> Vec<(Value, Value)> {
        res.json["error"]["details"]["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors: {}", res.body))
            .iter()
            .map(|e| (e["line"].clone(), e["code"].clone()))
            .collect()
    };

    // Lines that do not read.
    let unreadable = "serialNumber,at,value\r\nE-1,2026-01-03T00:00:00+01:00,1048\r\nE-1,yesterday,1050\r\nE-1,2026-01-05T00:00:00+01:00,\"12,5\"\r\n";
    let res = csv(&app, &owner, unreadable).await;
    assert_eq!(code(&res), (422, json!("import.invalid_rows")), "{}", res.body);
    assert_eq!(
        errors(&res),
        [(json!(3), json!("import.invalid_time")), (json!(4), json!("import.invalid_value"))]
    );
    assert_eq!(
        (res.json["error"]["details"]["rows"].clone(), res.json["error"]["details"]["errorCount"].clone()),
        (json!(3), json!(2))
    );

    // Lines that read but that the meters refuse.
    let refused = "serialNumber,at,value\nE-1,2026-01-03T00:00:00+01:00,1048\nE-404,2026-01-04T00:00:00+01:00,5\nE-1,2026-01-05T00:00:00+01:00,1040\n";
    let res = csv(&app, &owner, refused).await;
    assert_eq!(code(&res), (422, json!("import.invalid_rows")), "{}", res.body);
    assert_eq!(
        errors(&res),
        [(json!(3), json!("import.unknown_meter")), (json!(4), json!("metering.reading_below_previous"))]
    );

    let empty = csv(&app, &owner, "serialNumber,at,value\r\n").await;
    assert_eq!(errors(&empty), [(json!(1), json!("import.empty"))]);
    assert_eq!(stored_readings(&app, &meter).await, 0);
}

#[actix_web::test]
async fn a_readings_file_not_sent_as_csv_is_415() {
    let app = TestApp::spawn().await;
    let (_, owner) = metering_tenant(&app, "acme").await;
    let (_, meter) = flat_with_meter(&app, &owner, "E-1").await;
    let body = b"serialNumber,at,value\r\nE-1,2026-01-03T00:00:00+01:00,1048\r\n".to_vec();

    let res = app
        .call_with(
            "POST",
            "/api/v1/metering/readings/import",
            Some(&owner),
            &[("Content-Type", "text/plain")],
            Some(body),
        )
        .await;

    assert_eq!(code(&res), (415, json!("import.not_csv")), "{}", res.body);
    assert_eq!(stored_readings(&app, &meter).await, 0);
}

// ---- Idempotency ----

#[actix_web::test]
async fn a_readings_batch_sent_twice_with_one_key_is_replayed_and_stored_once() {
    let app = TestApp::spawn().await;
    let (_, owner) = metering_tenant(&app, "acme").await;
    let (_, meter) = flat_with_meter(&app, &owner, "E-1").await;
    let body =
        json!({"readings": [reading(&meter, "2026-01-02T23:00:00Z", "1048")]}).to_string().into_bytes();
    let send = || {
        app.call_with(
            "POST",
            "/api/v1/metering/readings",
            Some(&owner),
            &[("Idempotency-Key", "readings-1")],
            Some(body.clone()),
        )
    };

    let first = send().await;
    let again = send().await;

    assert_eq!((first.status, first.header("idempotency-replayed")), (200, None), "{}", first.body);
    assert_eq!((again.status, again.header("idempotency-replayed")), (200, Some("true")), "{}", again.body);
    // The first answer, not a second batch's (which would report a duplicate).
    assert_eq!(again.json["data"], json!({"accepted": 1, "duplicates": 0, "rejected": 0, "flagged": []}));
    assert_eq!(stored_readings(&app, &meter).await, 1);
}

#[actix_web::test]
async fn a_site_created_twice_with_one_key_is_replayed_and_stored_once() {
    let app = TestApp::spawn().await;
    let (acme, owner) = metering_tenant(&app, "acme").await;
    let body =
        json!({"kind": "property", "name": "Lindenhof", "externalRef": "HV-1"}).to_string().into_bytes();
    let send = || {
        app.call_with(
            "POST",
            "/api/v1/metering/sites",
            Some(&owner),
            &[("Idempotency-Key", "site-1")],
            Some(body.clone()),
        )
    };

    let first = send().await;
    let again = send().await;

    assert_eq!((first.status, first.header("idempotency-replayed")), (201, None), "{}", first.body);
    assert_eq!((again.status, again.header("idempotency-replayed")), (201, Some("true")), "{}", again.body);
    assert_eq!(id_of(&again), id_of(&first));
    assert_eq!(rows(&app, "metering_sites", acme).await, 1);
}

// ---- Meter data sources pulled by the worker ----

/// A worker with the platform's handlers until stopped.
struct Worker {
    stop: tokio::sync::oneshot::Sender<()>,
    running: actix_web::rt::task::JoinHandle<()>,
}

impl Worker {
    async fn start(app: &TestApp) -> Self {
        let store = app.db.store().await;
        let sender = std::sync::Arc::new(portico_smtp::FileMailbox::new(&app.mailbox));
        // The mock evcc listens on 127.0.0.1, as on a self-hosted platform's own network.
        let rules = portico_bff::server::MeteringRules { allow_private_sources: true, ..Default::default() };
        let registry =
            portico_bff::jobs::registry_with(&store, sender, crate::jobs_api::sender_address(), rules);
        let config =
            portico_worker::WorkerConfig { poll_interval: Duration::from_millis(50), ..Default::default() };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = actix_web::rt::spawn(portico_worker::Worker::new(store, registry, config).run(async {
            let _ = stopped.await;
        }));
        Self { stop, running }
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.running.await.unwrap();
    }
}

/// Queues the `metering.pull_sources` sweep (as the schedule does) and runs
/// a worker until the sweep and the `pulls` pulls it queued have succeeded.
async fn sweep_and_pull(app: &TestApp, pulls: i64) {
    let store = app.db.store().await;
    let sweep = NewJob::of(&portico_bff::jobs::PullMeterSources {}).unwrap();
    store.enqueue_platform(&PlatformContext::system("test"), sweep).await.unwrap();
    let worker = Worker::start(app).await;
    let succeeded = "SELECT count(*) AS n FROM jobs WHERE kind = $1 AND state = 'succeeded'";
    let dead = "SELECT count(*) AS n FROM jobs WHERE kind LIKE $1 AND state = 'dead'";
    let deadline = Instant::now() + Duration::from_secs(20);
    while number(app, succeeded, "metering.pull_sources").await < 1
        || number(app, succeeded, "metering.pull_source").await < pulls
    {
        assert_eq!(number(app, dead, "metering.%").await, 0, "a metering job died");
        assert!(Instant::now() < deadline, "the pulls never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.stop().await;
    assert_eq!(
        number(app, "SELECT count(*) AS n FROM jobs WHERE kind = $1", "metering.pull_source").await,
        pulls
    );
}

/// An EV charge point's register (ev_charging, kWh) in service from [`JAN_1`] at 1000 kWh; its id.
async fn charge_point_meter(app: &TestApp, token: &str) -> String {
    let carport = site(app, token, "other", "Carport", None).await;
    let mut body = register_on(&carport, "WB-1");
    body["kind"] = json!("ev_charging");
    let res = app.call("POST", "/api/v1/metering/meters", Some(token), Some(body)).await;
    assert_eq!(res.status, 201, "{}", res.body);
    id_of(&res)
}

/// A mock evcc answering `GET /api/state` with `response`, exactly once.
async fn evcc(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET")).and(path("/api/state")).respond_with(response).expect(1).mount(&server).await;
    server
}

/// The tenant's only source, as listed.
async fn the_source(app: &TestApp, token: &str) -> Value {
    let res = app.call("GET", "/api/v1/metering/sources", Some(token), None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let sources = res.json["data"].as_array().unwrap();
    assert_eq!(sources.len(), 1, "{}", res.body);
    sources[0].clone()
}

fn instant(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap_or_else(|| panic!("not a time: {value}")))
        .unwrap()
        .with_timezone(&Utc)
}

#[actix_web::test]
async fn the_sweep_pulls_an_evcc_sources_register_into_the_meter_it_maps() {
    // The mock evcc listens on 127.0.0.1, as on a self-hosted platform's own network.
    let app = TestApp::spawn_with(|s| s.metering.allow_private_sources = true).await;
    let (_, owner) = metering_tenant(&app, "acme").await;
    let meter = charge_point_meter(&app, &owner).await;
    let state = r#"{"loadpoints":[{"title":"Carport","chargeTotalImport":1234.567},{"title":"Garage","chargeTotalImport":99}]}"#;
    let server = evcc(ResponseTemplate::new(200).set_body_raw(state, "application/json")).await;
    let body =
        json!({"kind": "evcc", "name": "Home evcc", "baseUrl": server.uri(), "meters": {"Carport": meter}});
    let created = app.call("POST", "/api/v1/metering/sources", Some(&owner), Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        (created.json["data"]["lastPulledAt"].clone(), created.json["data"]["everyMinutes"].clone()),
        (Value::Null, json!(15))
    );
    let source = id_of(&created);

    sweep_and_pull(&app, 1).await;

    let page =
        app.call("GET", &format!("/api/v1/metering/meters/{meter}/readings"), Some(&owner), None).await;
    let readings = page.json["data"].as_array().unwrap();
    assert_eq!(readings.len(), 1, "Garage maps to no meter: {}", page.body);
    assert_eq!(
        (readings[0]["value"].clone(), readings[0]["source"].clone(), readings[0]["flagged"].clone()),
        (json!("1234.567"), json!("integration"), Value::Null)
    );
    let stored = "SELECT value::text || ' ' || source || ' ' || status AS t FROM meter_readings WHERE meter_id = $1::uuid";
    assert_eq!(text(&app, stored, &meter).await.as_deref(), Some("1234.567 integration valid"));

    let pulled = the_source(&app, &owner).await;
    assert_eq!(pulled["lastError"], Value::Null, "{pulled}");
    let (last_pulled, created_at) = (instant(&pulled["lastPulledAt"]), instant(&pulled["createdAt"]));
    assert!(last_pulled >= created_at, "{pulled}");
    assert!(instant(&pulled["nextPullAt"]) > last_pulled, "moved on by its interval: {pulled}");
    // The cursor is the instant of the pull, which the reading carries.
    let cursor =
        text(&app, "SELECT cursor AS t FROM meter_sources WHERE id = $1::uuid", &source).await.unwrap();
    let cursor = DateTime::parse_from_rfc3339(&cursor).unwrap().with_timezone(&Utc);
    assert_eq!(chrono::SubsecRound::trunc_subsecs(cursor, 6), instant(&readings[0]["at"]));
    server.verify().await;
}

#[actix_web::test]
async fn a_failing_evcc_leaves_its_error_on_the_source_and_no_reading() {
    // The mock evcc listens on 127.0.0.1, as on a self-hosted platform's own network.
    let app = TestApp::spawn_with(|s| s.metering.allow_private_sources = true).await;
    let (_, owner) = metering_tenant(&app, "acme").await;
    let meter = charge_point_meter(&app, &owner).await;
    let server = evcc(ResponseTemplate::new(500)).await;
    let body =
        json!({"kind": "evcc", "name": "Home evcc", "baseUrl": server.uri(), "meters": {"Carport": meter}});
    let created = app.call("POST", "/api/v1/metering/sources", Some(&owner), Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let source = id_of(&created);

    sweep_and_pull(&app, 1).await;

    let failed = the_source(&app, &owner).await;
    assert_eq!(
        (failed["lastError"].clone(), failed["lastPulledAt"].clone()),
        (
            json!("meter data source unavailable: evcc answered 500 Internal Server Error for its state"),
            Value::Null
        ),
        "{failed}"
    );
    assert_eq!(stored_readings(&app, &meter).await, 0);
    assert_eq!(text(&app, "SELECT cursor AS t FROM meter_sources WHERE id = $1::uuid", &source).await, None);
    server.verify().await;
}

#[actix_web::test]
async fn a_simulated_source_stores_the_simulated_chargers_register() {
    let app = TestApp::spawn().await;
    let (_, owner) = metering_tenant(&app, "acme").await;
    let carport = site(&app, &owner, "other", "Carport", None).await;
    // A new charge point's register, starting at 0 when the source starts charging.
    let body = json!({
        "place": {"type": "site", "siteId": carport}, "kind": "ev_charging", "unit": "kWh",
        "mode": {"mode": "register"}
    });
    let meter = id_of(&app.call("POST", "/api/v1/metering/meters", Some(&owner), Some(body)).await);
    let point = portico_bff::jobs::SIMULATED_CHARGE_POINT;
    let body =
        json!({"kind": "simulated", "name": "Demo charger", "everyMinutes": 5, "meters": { point: meter }});
    let created = app.call("POST", "/api/v1/metering/sources", Some(&owner), Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.json["data"]["baseUrl"], Value::Null);

    sweep_and_pull(&app, 1).await;

    let page =
        app.call("GET", &format!("/api/v1/metering/meters/{meter}/readings"), Some(&owner), None).await;
    let readings = page.json["data"].as_array().unwrap();
    assert_eq!(readings.len(), 1, "{}", page.body);
    assert_eq!(readings[0]["source"], json!("integration"));
    // 11 kW from the source's creation to the pull, to the Wh.
    let source = the_source(&app, &owner).await;
    let elapsed_ms = (instant(&readings[0]["at"]) - instant(&source["createdAt"])).num_milliseconds();
    let expected = (Decimal::from(elapsed_ms) * Decimal::from(11) / Decimal::from(3_600_000)).round_dp(3);
    assert_eq!(dec_of(&readings[0]["value"]), expected, "{}", page.body);
    assert_eq!(source["lastError"], Value::Null, "{source}");
    assert!(!source["lastPulledAt"].is_null(), "{source}");
}

#[actix_web::test]
async fn a_source_naming_a_deleted_meter_still_pulls_the_others_and_shows_the_stale_name() {
    // The mock evcc listens on 127.0.0.1, as on a self-hosted platform's own network.
    let app = TestApp::spawn_with(|s| s.metering.allow_private_sources = true).await;
    let (_, owner) = metering_tenant(&app, "acme").await;
    let carport = charge_point_meter(&app, &owner).await;
    let garage = charge_point_meter(&app, &owner).await;
    let state = r#"{"loadpoints":[{"title":"Carport","chargeTotalImport":1234.567},{"title":"Garage","chargeTotalImport":99}]}"#;
    let server = evcc(ResponseTemplate::new(200).set_body_raw(state, "application/json")).await;
    let meters = json!({"Carport": carport, "Garage": garage});
    let body = json!({"kind": "evcc", "name": "Home evcc", "baseUrl": server.uri(), "meters": meters});
    let created = app.call("POST", "/api/v1/metering/sources", Some(&owner), Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    // Installed by mistake, without readings: it may go while the source still names it.
    let gone = app.call("DELETE", &format!("/api/v1/metering/meters/{garage}"), Some(&owner), None).await;
    assert_eq!(gone.status, 204, "{}", gone.body);

    sweep_and_pull(&app, 1).await;

    let stored = "SELECT value::text || ' ' || source || ' ' || status AS t FROM meter_readings WHERE meter_id = $1::uuid";
    assert_eq!(text(&app, stored, &carport).await.as_deref(), Some("1234.567 integration valid"));
    assert_eq!(stored_readings(&app, &garage).await, 0);
    let pulled = the_source(&app, &owner).await;
    assert!(!pulled["lastPulledAt"].is_null(), "the pull counts: {pulled}");
    assert_eq!(
        pulled["lastError"],
        json!("no meter of this tenant for Garage: the meter was deleted, its values are not kept")
    );
    server.verify().await;
}

#[actix_web::test]
async fn a_source_of_a_tenant_whose_metering_is_off_is_not_pulled() {
    let app = TestApp::spawn().await;
    let (tenant, owner) = metering_tenant(&app, "acme").await;
    let meter = charge_point_meter(&app, &owner).await;
    let point = portico_bff::jobs::SIMULATED_CHARGE_POINT;
    let body = json!({"kind": "simulated", "name": "Demo charger", "meters": { point: meter }});
    let created = app.call("POST", "/api/v1/metering/sources", Some(&owner), Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    set_metering(&app, tenant, false).await;

    sweep_and_pull(&app, 1).await;

    assert_eq!(stored_readings(&app, &meter).await, 0);
    let last = "SELECT last_pulled_at::text AS t FROM meter_sources WHERE id = $1::uuid";
    assert_eq!(text(&app, last, &id_of(&created)).await, None);
}

#[actix_web::test]
async fn an_evcc_at_a_private_address_is_refused_unless_the_platform_allows_it() {
    use portico_bff::server::MeteringRules;
    let at = |address: &str| -> portico_metering::MeterSource {
        let draft: portico_metering::SourceDraft =
            serde_json::from_value(json!({"kind": "evcc", "name": "evcc", "baseUrl": address})).unwrap();
        draft.validated(portico_kernel::MeterSourceId::new(), Utc::now()).unwrap()
    };
    let clock: std::sync::Arc<dyn portico_kernel::Clock> = std::sync::Arc::new(portico_kernel::SystemClock);
    let refused = MeteringRules::default();
    for address in [
        "http://127.0.0.1:7070",
        "http://localhost:7070",
        "http://10.0.0.8",
        "http://169.254.169.254",
        "http://[::1]:7070",
    ] {
        let answer = portico_bff::jobs::data_source(&at(address), clock.clone(), &refused).await;
        assert_eq!(
            answer.err().as_deref(),
            Some("the address is not a public one (loopback, private or link-local addresses are refused)"),
            "{address}"
        );
    }
    let allowed = MeteringRules { allow_private_sources: true, ..MeteringRules::default() };
    assert!(portico_bff::jobs::data_source(&at("http://127.0.0.1:7070"), clock, &allowed).await.is_ok());
}

#[actix_web::test]
async fn a_source_is_refused_at_a_private_address_too_often_or_beyond_twenty() {
    let app = TestApp::spawn().await;
    let (_, owner) = metering_tenant(&app, "acme").await;
    let create = |body: Value| app.call("POST", "/api/v1/metering/sources", Some(&owner), Some(body));
    for address in
        ["http://127.0.0.1:7070", "http://localhost:7070", "http://192.168.1.20", "http://[fe80::1]"]
    {
        let res = create(json!({"kind": "evcc", "name": "evcc", "baseUrl": address})).await;
        assert_eq!(
            (res.status, res.json["error"]["code"].as_str()),
            (422, Some("metering.invalid")),
            "{address}"
        );
        assert_eq!(res.json["error"]["details"]["fields"][0]["field"], "baseUrl");
    }
    let res = create(json!({"kind": "simulated", "name": "Too often", "everyMinutes": 4})).await;
    assert_eq!(
        (res.status, res.json["error"]["details"]["fields"][0]["field"].as_str()),
        (422, Some("everyMinutes"))
    );
    for n in 0..20 {
        let res = create(json!({"kind": "simulated", "name": format!("Charger {n}")})).await;
        assert_eq!(res.status, 201, "{}", res.body);
    }
    let res = create(json!({"kind": "simulated", "name": "One too many"})).await;
    assert_eq!((res.status, res.json["error"]["code"].as_str()), (409, Some("metering.too_many_sources")));
    let stored = number(&app, "SELECT count(*) AS n FROM meter_sources WHERE name LIKE $1", "%").await;
    assert_eq!(stored, 20);
}
