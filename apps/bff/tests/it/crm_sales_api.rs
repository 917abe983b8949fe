//! CRM sales over HTTP: leads searched, qualified and converted (once),
//! pipelines and their stages, deals moved with their history, a stage
//! with deals removed only with a target, the sales figures; the tenant
//! wall, the permission wall, the feature gate and bad input. Also this
//! area's steps of the audit walk.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use portico_kernel::TenantId;
use portico_tenancy::Role;
use serde_json::{Value, json};

use crate::http::Response;
use crate::support::{TestApp, code, fields, id_of, number, rows};

/// Switches the tenant's `crm` feature on or off (as platform staff).
async fn set_crm(app: &TestApp, tenant: TenantId, on: bool) {
    let body = json!({"features": {"crm": on}});
    let path = format!("/api/v1/tenants/{tenant}/features");
    let res = app.call("PUT", &path, Some(&app.admin_token()), Some(body)).await;
    assert_eq!(res.status, 200, "{}", res.body);
}

/// A new tenant with the crm feature on, and its owner's token.
async fn crm_tenant(app: &TestApp, slug: &str) -> (TenantId, String) {
    let tenant = app.tenant(slug).await;
    set_crm(app, tenant, true).await;
    (tenant, app.user_token(tenant, Role::Owner.permissions()))
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> Response {
    app.call("POST", path, Some(token), Some(body)).await
}

async fn get(app: &TestApp, token: &str, path: &str) -> Response {
    app.call("GET", path, Some(token), None).await
}

/// A lead; its id.
async fn lead(app: &TestApp, token: &str, body: Value) -> String {
    let res = post(app, token, "/api/v1/crm/leads", body).await;
    assert_eq!(res.status, 201, "{}", res.body);
    id_of(&res)
}

/// A qualified lead; its id.
async fn qualified(app: &TestApp, token: &str, body: Value) -> String {
    let id = lead(app, token, body).await;
    let res =
        post(app, token, &format!("/api/v1/crm/leads/{id}/status"), json!({"status": "qualified"})).await;
    assert_eq!(res.status, 200, "{}", res.body);
    id
}

/// The tenant's pipeline "Sales" with the default stages, created by the first who asks (a read makes none).
async fn sales(app: &TestApp, token: &str) -> Value {
    let res = get(app, token, "/api/v1/crm/pipelines").await;
    assert_eq!(res.status, 200, "{}", res.body);
    if let Some(sales) = res.json["data"].as_array().unwrap().iter().find(|p| p["name"] == "Sales") {
        return sales.clone();
    }
    let res = post(app, token, "/api/v1/crm/pipelines", json!({"name": "Sales"})).await;
    assert_eq!(res.status, 201, "{}", res.body);
    res.json["data"].clone()
}

fn stage(pipeline: &Value, name: &str) -> String {
    pipeline["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A deal of 100.00 EUR in `stage_name` of `pipeline`; its id.
async fn deal(app: &TestApp, token: &str, pipeline: &Value, stage_name: &str) -> String {
    let body = json!({"title": "Deal", "value": {"amountMinor": 10_000, "currency": "EUR"},
                      "pipelineId": pipeline["id"], "stageId": stage(pipeline, stage_name)});
    let res = post(app, token, "/api/v1/crm/deals", body).await;
    assert_eq!(res.status, 201, "{}", res.body);
    id_of(&res)
}

// ---- Leads and their conversion ----

#[actix_web::test]
async fn a_lead_is_searched_qualified_and_converted_once() {
    let app = TestApp::spawn().await;
    let (tenant, token) = crm_tenant(&app, "acme").await;
    let sam = qualified(
        &app,
        &token,
        json!({"name": "Sam Taylor", "email": "Sam@Acme.example",
        "companyName": "Acme GmbH", "estimatedValue": {"amountMinor": 1_200_000, "currency": "EUR"}}),
    )
    .await;
    lead(&app, &token, json!({"name": "Jo Miller", "email": "jo@beta.example"})).await;

    let found = get(&app, &token, "/api/v1/crm/leads?q=acm%20tay&sort=name").await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.json["meta"]["total"], 1);
    assert_eq!(found.json["data"][0]["id"], json!(sam));
    assert_eq!(found.json["data"][0]["email"], "sam@acme.example");
    let qualified_only = get(&app, &token, "/api/v1/crm/leads?status=qualified").await;
    assert_eq!(qualified_only.json["meta"]["total"], 1, "{}", qualified_only.body);

    let pipeline = sales(&app, &token).await;
    let body = json!({"contactType": "customer",
                      "deal": {"pipelineId": pipeline["id"], "stageId": stage(&pipeline, "Proposal")}});
    let res = post(&app, &token, &format!("/api/v1/crm/leads/{sam}/convert"), body.clone()).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let data = &res.json["data"];
    assert_eq!(
        (data["lead"]["status"].as_str(), data["contactCreated"].as_bool()),
        (Some("converted"), Some(true))
    );
    assert_eq!(data["contact"]["emails"][0]["address"], "sam@acme.example");
    assert_eq!(data["company"]["domain"], "acme.example");
    assert_eq!(data["deal"]["stageId"], json!(stage(&pipeline, "Proposal")));
    assert_eq!(data["deal"]["value"]["amountMinor"], 1_200_000);
    assert_eq!(data["lead"]["dealId"], data["deal"]["id"]);

    let again = post(&app, &token, &format!("/api/v1/crm/leads/{sam}/convert"), body).await;
    assert_eq!(code(&again), (409, json!("crm.lead_converted")), "{}", again.body);
    assert_eq!(rows(&app, "crm_contacts", tenant).await, 1);
    assert_eq!(rows(&app, "crm_deals", tenant).await, 1);
    let stored = number(
        &app,
        "SELECT count(*) AS n FROM crm_leads WHERE id = $1::uuid AND status = 'converted'",
        &sam,
    )
    .await;
    assert_eq!(stored, 1);
}

#[actix_web::test]
async fn a_lead_is_changed_and_deleted() {
    let app = TestApp::spawn().await;
    let (tenant, token) = crm_tenant(&app, "acme").await;
    let id = lead(&app, &token, json!({"name": "Sam"})).await;
    let path = format!("/api/v1/crm/leads/{id}");
    let res =
        app.call("PUT", &path, Some(&token), Some(json!({"name": "Sam Taylor", "tags": ["VIP"]}))).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        (res.json["data"]["name"].as_str(), res.json["data"]["status"].as_str()),
        (Some("Sam Taylor"), Some("new"))
    );
    assert_eq!(get(&app, &token, &path).await.json["data"]["name"], "Sam Taylor");
    let res = app.call("DELETE", &path, Some(&token), None).await;
    assert_eq!(res.status, 204, "{}", res.body);
    assert_eq!(code(&get(&app, &token, &path).await), (404, json!("crm.lead_not_found")));
    assert_eq!(rows(&app, "crm_leads", tenant).await, 0);
}

// ---- Pipelines, stages and deals ----

#[actix_web::test]
async fn deals_move_between_stages_and_keep_their_history() {
    let app = TestApp::spawn().await;
    let (tenant, token) = crm_tenant(&app, "acme").await;
    let pipeline = sales(&app, &token).await;
    let id = deal(&app, &token, &pipeline, "Lead in").await;
    let lost = json!({"stageId": stage(&pipeline, "Lost")});
    let res = post(&app, &token, &format!("/api/v1/crm/deals/{id}/move"), lost).await;
    assert_eq!(code(&res), (422, json!("crm.lost_reason_required")), "{}", res.body);
    let won = json!({"stageId": stage(&pipeline, "Won"), "reason": "Signed"});
    let res = post(&app, &token, &format!("/api/v1/crm/deals/{id}/move"), won).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        (res.json["data"]["status"].as_str(), res.json["data"]["reason"].as_str()),
        (Some("won"), Some("Signed"))
    );
    assert!(res.json["data"]["closedAt"].is_string(), "{}", res.body);

    let history = get(&app, &token, &format!("/api/v1/crm/deals/{id}/history")).await;
    assert_eq!(history.status, 200, "{}", history.body);
    let changes = history.json["data"].as_array().unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["fromStageId"], json!(stage(&pipeline, "Lead in")));
    assert_eq!(changes[0]["toStageId"], json!(stage(&pipeline, "Won")));
    assert!(changes[0]["by"].is_string() && changes[0]["at"].is_string(), "{}", history.body);
    assert_eq!(rows(&app, "crm_deal_stage_changes", tenant).await, 1);

    let won_deals = get(&app, &token, "/api/v1/crm/deals?status=won&sort=-value").await;
    assert_eq!(won_deals.json["meta"]["total"], 1, "{}", won_deals.body);
    let open_deals = get(
        &app,
        &token,
        &format!("/api/v1/crm/deals?status=open&pipelineId={}", pipeline["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(open_deals.json["meta"]["total"], 0, "{}", open_deals.body);
}

#[actix_web::test]
async fn a_stage_with_deals_is_removed_only_with_a_stage_for_them() {
    let app = TestApp::spawn().await;
    let (tenant, token) = crm_tenant(&app, "acme").await;
    let pipeline = sales(&app, &token).await;
    let pid = pipeline["id"].as_str().unwrap().to_owned();
    let id = deal(&app, &token, &pipeline, "Qualified").await;
    let qualified = stage(&pipeline, "Qualified");
    let path = format!("/api/v1/crm/pipelines/{pid}/stages/{qualified}");

    let res = app.call("DELETE", &path, Some(&token), None).await;
    assert_eq!(code(&res), (409, json!("crm.stage_has_deals")), "{}", res.body);
    assert_eq!(res.json["error"]["details"]["deals"], 1);
    assert_eq!(number(&app, "SELECT count(*) AS n FROM crm_stages WHERE id = $1::uuid", &qualified).await, 1);

    let target = stage(&pipeline, "Proposal");
    let res = app.call("DELETE", &format!("{path}?moveDealsTo={target}"), Some(&token), None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"]["stages"].as_array().unwrap().len(), 5);
    assert_eq!(
        get(&app, &token, &format!("/api/v1/crm/deals/{id}")).await.json["data"]["stageId"],
        json!(target)
    );
    let history = get(&app, &token, &format!("/api/v1/crm/deals/{id}/history")).await;
    assert_eq!(history.json["data"][0]["fromStageId"], json!(qualified), "{}", history.body);
    assert_eq!(rows(&app, "crm_deal_stage_changes", tenant).await, 1);

    // The pipeline with its deal stays; an empty one goes.
    let res = app.call("DELETE", &format!("/api/v1/crm/pipelines/{pid}"), Some(&token), None).await;
    assert_eq!(code(&res), (409, json!("crm.pipeline_has_deals")), "{}", res.body);
    let made = post(&app, &token, "/api/v1/crm/pipelines", json!({"name": "Renewals"})).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let taken = post(&app, &token, "/api/v1/crm/pipelines", json!({"name": "RENEWALS"})).await;
    assert_eq!(code(&taken), (409, json!("crm.pipeline_name_taken")), "{}", taken.body);
    let res =
        app.call("DELETE", &format!("/api/v1/crm/pipelines/{}", id_of(&made)), Some(&token), None).await;
    assert_eq!(res.status, 204, "{}", res.body);
    assert_eq!(rows(&app, "crm_pipelines", tenant).await, 1);
}

#[actix_web::test]
async fn stages_are_added_changed_and_reordered() {
    let app = TestApp::spawn().await;
    let (_, token) = crm_tenant(&app, "acme").await;
    let pipeline = sales(&app, &token).await;
    let pid = pipeline["id"].as_str().unwrap();
    let res = post(
        &app,
        &token,
        &format!("/api/v1/crm/pipelines/{pid}/stages"),
        json!({"name": "Demo", "probability": 35, "position": 1}),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"]["stages"][1]["name"], "Demo");
    let demo = stage(&res.json["data"], "Demo");
    let res = app
        .call(
            "PUT",
            &format!("/api/v1/crm/pipelines/{pid}/stages/{demo}"),
            Some(&token),
            Some(json!({"probability": 40})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"]["stages"][1]["probability"], 40);
    let mut ids: Vec<Value> =
        res.json["data"]["stages"].as_array().unwrap().iter().map(|s| s["id"].clone()).collect();
    ids.swap(0, 1);
    let res =
        post(&app, &token, &format!("/api/v1/crm/pipelines/{pid}/stages/reorder"), json!({"stageIds": ids}))
            .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"]["stages"][0]["name"], "Demo");
    let res = app
        .call(
            "PUT",
            &format!("/api/v1/crm/pipelines/{pid}"),
            Some(&token),
            Some(json!({"name": "Direct sales"})),
        )
        .await;
    assert_eq!(res.json["data"]["name"], "Direct sales", "{}", res.body);
}

#[actix_web::test]
async fn analytics_give_the_figures_per_stage() {
    let app = TestApp::spawn().await;
    let (_, token) = crm_tenant(&app, "acme").await;
    let pipeline = sales(&app, &token).await;
    deal(&app, &token, &pipeline, "Proposal").await; // 100.00 at 50 %
    deal(&app, &token, &pipeline, "Negotiation").await; // 100.00 at 75 %
    let res = get(
        &app,
        &token,
        &format!("/api/v1/crm/analytics?currency=EUR&pipelineId={}", pipeline["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let summary = &res.json["data"]["pipelines"][0];
    assert_eq!(
        (summary["openDeals"].as_u64(), summary["openValue"]["amountMinor"].as_i64()),
        (Some(2), Some(20_000))
    );
    assert_eq!(summary["weightedValue"]["amountMinor"], 12_500);
    assert_eq!(summary["stages"][2]["weightedValue"]["amountMinor"], 5_000);
    assert!(res.json["data"]["winRate"].is_null(), "{}", res.body);
    // A bad query value is a bad query, as everywhere else.
    for bad in ["currency=euro", "currency=eur", "currency=XXY"] {
        let res = get(&app, &token, &format!("/api/v1/crm/analytics?{bad}")).await;
        assert_eq!(code(&res), (400, json!("request.invalid_query")), "{bad}: {}", res.body);
    }
}

// ---- The tenant wall ----

#[actix_web::test]
async fn another_tenant_gets_404_for_every_record_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (tenant, token) = crm_tenant(&app, "acme").await;
    let (_, theirs) = crm_tenant(&app, "globex").await;
    let lead_id = qualified(&app, &token, json!({"name": "Sam"})).await;
    let pipeline = sales(&app, &token).await;
    let pid = pipeline["id"].as_str().unwrap().to_owned();
    let sid = stage(&pipeline, "Qualified");
    let deal_id = deal(&app, &token, &pipeline, "Lead in").await;

    let lead_path = format!("/api/v1/crm/leads/{lead_id}");
    let deal_path = format!("/api/v1/crm/deals/{deal_id}");
    let pipeline_path = format!("/api/v1/crm/pipelines/{pid}");
    let calls: Vec<(&str, String, Option<Value>, &str)> = vec![
        ("GET", lead_path.clone(), None, "crm.lead_not_found"),
        ("PUT", lead_path.clone(), Some(json!({"name": "Stolen"})), "crm.lead_not_found"),
        ("DELETE", lead_path.clone(), None, "crm.lead_not_found"),
        ("POST", format!("{lead_path}/status"), Some(json!({"status": "contacted"})), "crm.lead_not_found"),
        ("POST", format!("{lead_path}/convert"), Some(json!({})), "crm.lead_not_found"),
        ("GET", deal_path.clone(), None, "crm.deal_not_found"),
        (
            "PUT",
            deal_path.clone(),
            Some(json!({"title": "T", "value": {"amountMinor": 1, "currency": "EUR"}, "ownerId": deal_id})),
            "crm.deal_not_found",
        ),
        ("DELETE", deal_path.clone(), None, "crm.deal_not_found"),
        ("GET", format!("{deal_path}/history"), None, "crm.deal_not_found"),
        ("POST", format!("{deal_path}/move"), Some(json!({"stageId": sid})), "crm.deal_not_found"),
        ("GET", pipeline_path.clone(), None, "crm.pipeline_not_found"),
        ("PUT", pipeline_path.clone(), Some(json!({"name": "Stolen"})), "crm.pipeline_not_found"),
        ("DELETE", pipeline_path.clone(), None, "crm.pipeline_not_found"),
        (
            "POST",
            format!("{pipeline_path}/stages"),
            Some(json!({"name": "X", "probability": 1})),
            "crm.pipeline_not_found",
        ),
        (
            "POST",
            format!("{pipeline_path}/stages/reorder"),
            Some(json!({"stageIds": []})),
            "crm.pipeline_not_found",
        ),
        (
            "PUT",
            format!("{pipeline_path}/stages/{sid}"),
            Some(json!({"name": "X"})),
            "crm.pipeline_not_found",
        ),
        ("DELETE", format!("{pipeline_path}/stages/{sid}"), None, "crm.pipeline_not_found"),
        ("GET", format!("/api/v1/crm/analytics?pipelineId={pid}"), None, "crm.pipeline_not_found"),
    ];
    for (method, path, body, expected) in calls {
        let res = app.call(method, &path, Some(&theirs), body).await;
        assert_eq!(code(&res), (404, json!(expected)), "{method} {path}: {}", res.body);
        assert!(
            !res.body.contains(&lead_id) && !res.body.contains("Sam"),
            "{method} {path} leaks: {}",
            res.body
        );
    }
    // Their lists hold none of ours, and their deal cannot name our pipeline.
    assert_eq!(get(&app, &theirs, "/api/v1/crm/leads").await.json["meta"]["total"], 0);
    assert_eq!(get(&app, &theirs, "/api/v1/crm/deals").await.json["meta"]["total"], 0);
    let body = json!({"title": "T", "value": {"amountMinor": 1, "currency": "EUR"}, "pipelineId": pid});
    let res = post(&app, &theirs, "/api/v1/crm/deals", body).await;
    assert_eq!(code(&res), (422, json!("crm.invalid")), "{}", res.body);
    assert_eq!(fields(&res), vec!["pipelineId"]);

    let ours = get(&app, &token, &lead_path).await;
    assert_eq!(
        (ours.json["data"]["name"].as_str(), ours.json["data"]["status"].as_str()),
        (Some("Sam"), Some("qualified"))
    );
    assert_eq!(rows(&app, "crm_deals", tenant).await, 1);
    assert_eq!(rows(&app, "crm_stages", tenant).await, 6);
    assert_eq!(rows(&app, "crm_contacts", tenant).await, 0);
}

// ---- The permission wall and the feature gate ----

#[actix_web::test]
async fn reading_needs_crm_read_and_changing_crm_write() {
    let app = TestApp::spawn().await;
    let (tenant, _) = crm_tenant(&app, "acme").await;
    let reader = app.user_token(tenant, &["crm:read"]);
    let nobody = app.user_token(tenant, &["tickets:read"]);
    for path in ["/api/v1/crm/leads", "/api/v1/crm/deals", "/api/v1/crm/pipelines", "/api/v1/crm/analytics"] {
        assert_eq!(get(&app, &reader, path).await.status, 200, "{path}");
        assert_eq!(code(&get(&app, &nobody, path).await).0, 403, "{path}");
        assert_eq!(app.call("GET", path, None, None).await.status, 401, "{path}");
    }
    for path in ["/api/v1/crm/leads", "/api/v1/crm/deals", "/api/v1/crm/pipelines"] {
        let res = post(&app, &reader, path, json!({"name": "X"})).await;
        assert_eq!(res.status, 403, "{path}: {}", res.body);
    }
    assert_eq!(rows(&app, "crm_leads", tenant).await, 0);
    // Reading wrote nothing (no default pipeline either); the refused create added none.
    assert_eq!(rows(&app, "crm_pipelines", tenant).await, 0);
    assert_eq!(rows(&app, "crm_stages", tenant).await, 0);
}

#[actix_web::test]
async fn a_tenant_without_pipelines_reads_none_and_empty_figures() {
    let app = TestApp::spawn().await;
    let (tenant, token) = crm_tenant(&app, "acme").await;
    let res = get(&app, &token, "/api/v1/crm/pipelines").await;
    assert_eq!((res.status, res.json["data"].clone()), (200, json!([])), "{}", res.body);
    let res = get(&app, &token, "/api/v1/crm/analytics").await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"]["pipelines"], json!([]), "{}", res.body);
    assert_eq!(
        res.json["data"]["conversion"],
        json!({"leadToDeal": null, "dealToWon": null}),
        "{}",
        res.body
    );
    let res =
        get(&app, &token, "/api/v1/crm/analytics?pipelineId=0193a2b4-0000-7000-8000-000000000000").await;
    assert_eq!(code(&res), (404, json!("crm.pipeline_not_found")), "{}", res.body);
    for table in ["crm_pipelines", "crm_stages"] {
        assert_eq!(rows(&app, table, tenant).await, 0, "{table}");
    }
    let audited = "SELECT count(*) AS n FROM audit_log WHERE tenant_id = $1::uuid AND action LIKE 'crm.%'";
    assert_eq!(number(&app, audited, &tenant.to_string()).await, 0);
}

#[actix_web::test]
async fn deleting_a_lead_or_a_deal_takes_the_activities_about_it_alone() {
    let app = TestApp::spawn().await;
    let (tenant, token) = crm_tenant(&app, "acme").await;
    let lead_id = lead(&app, &token, json!({"name": "Sam"})).await;
    let pipeline = sales(&app, &token).await;
    let deal_id = deal(&app, &token, &pipeline, "Lead in").await;
    let note = |column: &str, id: &str, also: Option<(&str, &str)>| {
        let (extra_column, extra_value) =
            also.map_or((String::new(), String::new()), |(c, v)| (format!(", {c}"), format!(", '{v}'")));
        format!(
            "INSERT INTO crm_activities (tenant_id, id, kind, subject, occurred_at, {column}{extra_column}, \
                 created_by, created_at, updated_at) \
             VALUES ('{tenant}', gen_random_uuid(), 'note', 'Note', now(), '{id}'{extra_value}, gen_random_uuid(), \
                 now(), now());"
        )
    };
    let sql = [
        note("lead_id", &lead_id, None),
        note("deal_id", &deal_id, None),
        note("lead_id", &lead_id, Some(("deal_id", &deal_id))),
    ]
    .concat();
    let mut conn = AsyncPgConnection::establish(&app.db.urls.platform).await.unwrap();
    diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, &sql).await.unwrap();

    let res = app.call("DELETE", &format!("/api/v1/crm/leads/{lead_id}"), Some(&token), None).await;
    assert_eq!(res.status, 204, "{}", res.body);
    // The note about the lead alone went; the one about the lead and the deal stays, about the deal.
    let about_deal = "SELECT count(*) AS n FROM crm_activities WHERE deal_id = $1::uuid AND lead_id IS NULL";
    assert_eq!(
        (rows(&app, "crm_activities", tenant).await, number(&app, about_deal, &deal_id).await),
        (2, 2)
    );
    let res = app.call("DELETE", &format!("/api/v1/crm/deals/{deal_id}"), Some(&token), None).await;
    assert_eq!(res.status, 204, "{}", res.body);
    assert_eq!(rows(&app, "crm_activities", tenant).await, 0);
}

#[actix_web::test]
async fn crm_sales_routes_are_closed_while_the_feature_is_off() {
    let app = TestApp::spawn().await;
    let (tenant, token) = crm_tenant(&app, "acme").await;
    set_crm(&app, tenant, false).await;
    let res = get(&app, &token, "/api/v1/crm/deals").await;
    assert_eq!(code(&res), (403, json!("tenancy.feature_disabled")), "{}", res.body);
    let res = post(&app, &token, "/api/v1/crm/leads", json!({"name": "X"})).await;
    assert_eq!(code(&res), (403, json!("tenancy.feature_disabled")), "{}", res.body);
    assert_eq!(rows(&app, "crm_leads", tenant).await, 0);
}

// ---- Bad input ----

#[actix_web::test]
async fn bad_input_gets_a_stable_code_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (tenant, token) = crm_tenant(&app, "acme").await;
    let res = post(&app, &token, "/api/v1/crm/leads", json!({"name": "X", "email": "nope"})).await;
    assert_eq!(code(&res), (422, json!("crm.invalid")), "{}", res.body);
    assert_eq!(fields(&res), vec!["email"]);
    let res = post(
        &app,
        &token,
        "/api/v1/crm/leads",
        json!({"name": "X", "ownerId": "0193a2b4-0000-7000-8000-000000000000"}),
    )
    .await;
    assert_eq!(
        (code(&res), fields(&res)),
        ((422, json!("crm.invalid")), vec!["ownerId".to_owned()]),
        "{}",
        res.body
    );
    let res = post(&app, &token, "/api/v1/crm/leads", json!({"name": "X", "colour": "red"})).await;
    assert!(res.status == 400 || res.status == 422, "{}", res.body);
    assert!(res.json["error"]["code"].as_str().unwrap().starts_with("request."), "{}", res.body);
    let res = get(&app, &token, "/api/v1/crm/leads?sort=colour").await;
    assert_eq!(code(&res), (400, json!("request.invalid_query")), "{}", res.body);
    let res = get(&app, &token, "/api/v1/crm/deals?page=0").await;
    assert_eq!(code(&res), (422, json!("request.invalid_page")), "{}", res.body);
    let res = get(&app, &token, "/api/v1/crm/leads/not-a-uuid").await;
    assert_eq!(code(&res), (400, json!("request.invalid_path")), "{}", res.body);

    let id = lead(&app, &token, json!({"name": "Sam"})).await;
    let res = post(&app, &token, &format!("/api/v1/crm/leads/{id}/convert"), json!({})).await;
    assert_eq!(code(&res), (409, json!("crm.lead_not_qualified")), "{}", res.body);
    let res =
        post(&app, &token, &format!("/api/v1/crm/leads/{id}/status"), json!({"status": "converted"})).await;
    assert_eq!(code(&res), (409, json!("crm.lead_transition")), "{}", res.body);
    let res = post(
        &app,
        &token,
        "/api/v1/crm/pipelines",
        json!({"name": "Odd", "stages": [{"name": "Only", "probability": 5}]}),
    )
    .await;
    assert_eq!(code(&res), (422, json!("crm.invalid")), "{}", res.body);
    let pipeline = sales(&app, &token).await;
    let body = json!({"title": "T", "value": {"amountMinor": 1, "currency": "EUR"}, "pipelineId": pipeline["id"],
                      "stageId": stage(&pipeline, "Won")});
    let res = post(&app, &token, "/api/v1/crm/deals", body).await;
    assert_eq!(code(&res), (422, json!("crm.invalid")), "{}", res.body);

    assert_eq!(rows(&app, "crm_leads", tenant).await, 1);
    assert_eq!(rows(&app, "crm_contacts", tenant).await, 0);
    assert_eq!(rows(&app, "crm_deals", tenant).await, 0);
    assert_eq!(rows(&app, "crm_pipelines", tenant).await, 1);
    let status =
        number(&app, "SELECT count(*) AS n FROM crm_leads WHERE id = $1::uuid AND status = 'new'", &id).await;
    assert_eq!(status, 1);
}

// ---- The audit walk ----

/// The walk of `guarantees`, over this area's routes only, on a tenant of
/// its own: each change leaves exactly one audit row under its request id,
/// and sent again with its `Idempotency-Key` answers the same, writing nothing.
#[actix_web::test]
async fn every_crm_sales_change_leaves_one_audit_row_and_replays() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limits.write_per_principal = "1000/min".parse().unwrap();
        s.rate_limits.write_per_tenant = "1000/min".parse().unwrap();
    })
    .await;
    let (tenant, token) = crm_tenant(&app, "walker").await;
    let mut walked = 0;
    for route in portico_bff::api::ROUTES.iter().filter(|r| r.method != "GET") {
        let request_id = format!("sales-walk-{walked}");
        let Some((path, body, action)) = walk(&app, &token, route.method, route.path, &request_id).await
        else {
            continue;
        };
        let headers = [("X-Request-ID", request_id.as_str()), ("Idempotency-Key", request_id.as_str())];
        let body = body.map(|b| b.to_string().into_bytes());
        let res = app.call_with(route.method, &path, Some(&token), &headers, body.clone()).await;
        assert!(res.status < 300, "{} {}: {}", route.method, route.path, res.body);
        let actions = |action: &'static str| {
            let (app, request_id) = (&app, request_id.clone());
            async move {
                let sql = "SELECT count(*) AS n FROM audit_log WHERE request_id = $1 AND action LIKE $2";
                #[derive(QueryableByName)]
                struct Number {
                    #[diesel(sql_type = BigInt)]
                    n: i64,
                }
                let mut conn = AsyncPgConnection::establish(&app.db.urls.platform).await.unwrap();
                let row: Number = diesel::sql_query(sql)
                    .bind::<Text, _>(&request_id)
                    .bind::<Text, _>(action)
                    .get_result(&mut conn)
                    .await
                    .unwrap();
                row.n
            }
        };
        assert_eq!((actions("%").await, actions(action).await), (1, 1), "{} {}", route.method, route.path);
        let again = app.call_with(route.method, &path, Some(&token), &headers, body).await;
        assert_eq!(again.header("idempotency-replayed"), Some("true"), "{} {}", route.method, route.path);
        assert_eq!((again.status, again.body), (res.status, res.body), "{} {}", route.method, route.path);
        assert_eq!(actions("%").await, 1, "{} {}: ran once", route.method, route.path);
        walked += 1;
    }
    assert_eq!(walked, 16, "every change of this area was walked");
    assert!(rows(&app, "audit_log", tenant).await >= 16);
}

/// A pipeline of the walked tenant made for one walked request; it as JSON.
async fn walk_pipeline(app: &TestApp, admin: &str, request_id: &str) -> Value {
    let res = post(app, admin, "/api/v1/crm/pipelines", json!({"name": format!("Walk {request_id}")})).await;
    assert_eq!(res.status, 201, "{}", res.body);
    res.json["data"].clone()
}

/// A deal on a fresh pipeline of the walked tenant; its id and the pipeline.
async fn walk_deal(app: &TestApp, admin: &str, request_id: &str) -> (String, Value) {
    let pipeline = walk_pipeline(app, admin, request_id).await;
    (deal(app, admin, &pipeline, "Lead in").await, pipeline)
}

/// This area's mutating routes for the audit walk: the concrete path, the
/// body and the audit action each leaves (set up as needed), or `None` for
/// a route of another area.
pub(crate) async fn walk(
    app: &TestApp,
    admin: &str,
    method: &str,
    path: &str,
    request_id: &str,
) -> Option<(String, Option<Value>, &'static str)> {
    let with = |id: &str| path.replace("{id}", id);
    Some(match (method, path) {
        ("POST", "/api/v1/crm/leads") => {
            (path.to_owned(), Some(json!({"name": request_id})), "crm.lead.create")
        }
        ("PUT", "/api/v1/crm/leads/{id}") => {
            let id = lead(app, admin, json!({"name": request_id})).await;
            (with(&id), Some(json!({"name": format!("{request_id} renamed")})), "crm.lead.update")
        }
        ("DELETE", "/api/v1/crm/leads/{id}") => {
            (with(&lead(app, admin, json!({"name": request_id})).await), None, "crm.lead.delete")
        }
        ("POST", "/api/v1/crm/leads/{id}/status") => {
            let id = lead(app, admin, json!({"name": request_id})).await;
            (with(&id), Some(json!({"status": "contacted"})), "crm.lead.status")
        }
        ("POST", "/api/v1/crm/leads/{id}/convert") => {
            let email = format!(
                "{}@walk.example",
                request_id.to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "")
            );
            let id = qualified(app, admin, json!({"name": request_id, "email": email})).await;
            (with(&id), Some(json!({})), "crm.lead.convert")
        }
        ("POST", "/api/v1/crm/pipelines") => {
            (path.to_owned(), Some(json!({"name": format!("Walk {request_id}")})), "crm.pipeline.create")
        }
        ("PUT", "/api/v1/crm/pipelines/{id}") => {
            let pipeline = walk_pipeline(app, admin, request_id).await;
            let body = json!({"name": format!("Walk {request_id} renamed")});
            (with(pipeline["id"].as_str().unwrap()), Some(body), "crm.pipeline.update")
        }
        ("DELETE", "/api/v1/crm/pipelines/{id}") => {
            let pipeline = walk_pipeline(app, admin, request_id).await;
            (with(pipeline["id"].as_str().unwrap()), None, "crm.pipeline.delete")
        }
        ("POST", "/api/v1/crm/pipelines/{id}/stages") => {
            let pipeline = walk_pipeline(app, admin, request_id).await;
            let body = json!({"name": "Demo", "probability": 35});
            (with(pipeline["id"].as_str().unwrap()), Some(body), "crm.stage.create")
        }
        ("POST", "/api/v1/crm/pipelines/{id}/stages/reorder") => {
            let pipeline = walk_pipeline(app, admin, request_id).await;
            let mut ids: Vec<Value> =
                pipeline["stages"].as_array().unwrap().iter().map(|s| s["id"].clone()).collect();
            ids.swap(0, 1);
            (with(pipeline["id"].as_str().unwrap()), Some(json!({"stageIds": ids})), "crm.stage.reorder")
        }
        ("PUT", "/api/v1/crm/pipelines/{id}/stages/{stageId}") => {
            let pipeline = walk_pipeline(app, admin, request_id).await;
            let path =
                with(pipeline["id"].as_str().unwrap()).replace("{stageId}", &stage(&pipeline, "Proposal"));
            (path, Some(json!({"probability": 55})), "crm.stage.update")
        }
        ("DELETE", "/api/v1/crm/pipelines/{id}/stages/{stageId}") => {
            let pipeline = walk_pipeline(app, admin, request_id).await;
            let path =
                with(pipeline["id"].as_str().unwrap()).replace("{stageId}", &stage(&pipeline, "Proposal"));
            (path, None, "crm.stage.delete")
        }
        ("POST", "/api/v1/crm/deals") => {
            let pipeline = walk_pipeline(app, admin, request_id).await;
            let body = json!({"title": request_id, "value": {"amountMinor": 100, "currency": "EUR"},
                              "pipelineId": pipeline["id"]});
            (path.to_owned(), Some(body), "crm.deal.create")
        }
        ("PUT", "/api/v1/crm/deals/{id}") => {
            let (id, _) = walk_deal(app, admin, request_id).await;
            let owner =
                get(app, admin, &format!("/api/v1/crm/deals/{id}")).await.json["data"]["ownerId"].clone();
            let body = json!({"title": format!("{request_id} revised"),
                              "value": {"amountMinor": 200, "currency": "EUR"}, "ownerId": owner});
            (with(&id), Some(body), "crm.deal.update")
        }
        ("DELETE", "/api/v1/crm/deals/{id}") => {
            (with(&walk_deal(app, admin, request_id).await.0), None, "crm.deal.delete")
        }
        ("POST", "/api/v1/crm/deals/{id}/move") => {
            let (id, pipeline) = walk_deal(app, admin, request_id).await;
            (with(&id), Some(json!({"stageId": stage(&pipeline, "Proposal")})), "crm.deal.move")
        }
        _ => return None,
    })
}
