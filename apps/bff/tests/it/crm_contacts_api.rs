//! CRM contacts and companies over HTTP: the life of each, lists with
//! filters, sorts and search, duplicates and merges; the tenant wall (404
//! and none of the data), the permission wall, the feature gate, and bad
//! input refused with a stable code and nothing written.

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use portico_kernel::TenantId;
use portico_tenancy::Role;
use serde_json::{Value, json};

use crate::http::Response;
use crate::support::{TestApp, audited, code, fields, id_of, number, rows};

/// The names of a list answer's items.
fn names(res: &Response, field: &str) -> Vec<String> {
    assert_eq!(res.status, 200, "{}", res.body);
    res.json["data"].as_array().unwrap().iter().map(|c| c[field].as_str().unwrap().to_owned()).collect()
}

/// A new tenant in Germany (national phone numbers read as German) and its owner's token.
async fn crm_tenant(app: &TestApp, slug: &str) -> (TenantId, String) {
    let tenant = app.tenant(slug).await;
    let path = format!("/api/v1/tenants/{tenant}/settings");
    let body = json!({"contact": {"country": "DE"}});
    let res = app.call("PUT", &path, Some(&app.admin_token()), Some(body)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    (tenant, app.user_token(tenant, Role::Owner.permissions()))
}

async fn create(app: &TestApp, token: &str, path: &str, body: Value) -> String {
    let res = app.call("POST", path, Some(token), Some(body)).await;
    assert_eq!(res.status, 201, "{}", res.body);
    id_of(&res)
}

async fn contact(app: &TestApp, token: &str, body: Value) -> String {
    create(app, token, "/api/v1/crm/contacts", body).await
}

async fn company(app: &TestApp, token: &str, body: Value) -> String {
    create(app, token, "/api/v1/crm/companies", body).await
}

/// SQL that makes a ticket requested by `contact`.
fn ticket_for(tenant: TenantId, contact: &str) -> String {
    format!(
        "INSERT INTO crm_tickets (tenant_id, id, number, subject, description, requester_contact_id, priority, status, \
             first_response_due, resolution_due, created_at, updated_at) \
         VALUES ('{tenant}', gen_random_uuid(), 1, 'Broken', 'It broke', '{contact}', 'normal', 'open', \
                 now(), now(), now(), now())"
    )
}

async fn sql(app: &TestApp, sql: &str) {
    let mut conn = AsyncPgConnection::establish(&app.db.urls.platform).await.unwrap();
    conn.batch_execute(sql).await.unwrap();
}

// ---- The life of a contact and a company ----

#[actix_web::test]
async fn a_contact_is_created_listed_read_changed_and_deleted() {
    let app = TestApp::spawn().await;
    let (acme, owner) = crm_tenant(&app, "acme").await;
    let globex =
        company(&app, &owner, json!({"name": "Globex", "domain": "https://www.globex.example/"})).await;
    let body = json!({
        "firstName": "Sam", "lastName": "Taylor", "contactType": "customer", "companyId": globex,
        "emails": [{"address": "Sam@Globex.example"}], "phones": [{"number": "030 1234567"}], "tags": ["VIP"]
    });
    let res = app.call("POST", "/api/v1/crm/contacts", Some(&owner), Some(body)).await;
    assert_eq!(res.status, 201, "{}", res.body);
    let data = &res.json["data"];
    assert_eq!(data["displayName"], "Sam Taylor");
    assert_eq!(data["emails"], json!([{"address": "sam@globex.example", "label": "work", "primary": true}]));
    assert_eq!(data["phones"][0]["number"], "+49301234567", "read in the tenant's country");
    assert_eq!((data["contactType"].clone(), data["companyId"].clone()), (json!("customer"), json!(globex)));
    let sam = id_of(&res);
    contact(&app, &owner, json!({"displayName": "Ann Other", "status": "inactive"})).await;

    let list = |query: &str| {
        let (app, owner) = (&app, owner.clone());
        let path = format!("/api/v1/crm/contacts{query}");
        async move { app.call("GET", &path, Some(&owner), None).await }
    };
    let all = list("").await;
    assert_eq!(names(&all, "displayName"), ["Ann Other", "Sam Taylor"]);
    assert_eq!(all.json["meta"], json!({"page": 1, "limit": 20, "total": 2, "totalPages": 1}));
    assert_eq!(names(&list("?sort=-name").await, "displayName"), ["Sam Taylor", "Ann Other"]);
    assert_eq!(names(&list("?q=glob").await, "displayName"), ["Sam Taylor"], "by its company's name");
    assert_eq!(names(&list("?q=%2B49%2030%201234567").await, "displayName"), ["Sam Taylor"], "by phone");
    assert_eq!(names(&list("?status=inactive").await, "displayName"), ["Ann Other"]);
    assert_eq!(names(&list("?type=customer&tag=VIP").await, "displayName"), ["Sam Taylor"]);
    assert_eq!(names(&list(&format!("?companyId={globex}")).await, "displayName"), ["Sam Taylor"]);
    let page_two = list("?limit=1&page=2&sort=createdAt").await;
    assert_eq!(names(&page_two, "displayName"), ["Ann Other"]);
    assert_eq!(page_two.json["meta"]["totalPages"], 2);

    let path = format!("/api/v1/crm/contacts/{sam}");
    let res = app.call("GET", &path, Some(&owner), None).await;
    assert_eq!((res.status, res.json["data"]["tags"].clone()), (200, json!(["VIP"])), "{}", res.body);
    let res = app.call("PUT", &path, Some(&owner), Some(json!({"displayName": "Samuel"}))).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        (res.json["data"]["displayName"].clone(), res.json["data"]["emails"].clone()),
        (json!("Samuel"), json!([]))
    );
    let stored =
        number(&app, "SELECT count(*) AS n FROM crm_contact_keys WHERE contact_id = $1::uuid", &sam).await;
    assert_eq!(stored, 0, "PUT replaced the emails and phones");

    let res = app.call("DELETE", &path, Some(&owner), None).await;
    assert_eq!(res.status, 204, "{}", res.body);
    assert_eq!(
        code(&app.call("GET", &path, Some(&owner), None).await),
        (404, json!("crm.contact_not_found"))
    );
    assert_eq!(rows(&app, "crm_contacts", acme).await, 1);
    for action in ["crm.contact.create", "crm.contact.update", "crm.contact.delete", "crm.company.create"] {
        let expected = if action == "crm.contact.create" { 2 } else { 1 };
        assert_eq!(audited(&app, acme, action).await, expected, "{action}");
    }
}

#[actix_web::test]
async fn a_company_is_listed_changed_and_deleted_and_its_contacts_stay() {
    let app = TestApp::spawn().await;
    let (acme, owner) = crm_tenant(&app, "acme").await;
    let id = company(&app, &owner, json!({"name": "Acme GmbH", "industry": "Retail", "tags": ["Key"]})).await;
    company(&app, &owner, json!({"name": "Beta", "domain": "beta.example"})).await;
    let sam = contact(&app, &owner, json!({"displayName": "Sam", "companyId": id})).await;

    let list = |query: &str| {
        let (app, owner) = (&app, owner.clone());
        let path = format!("/api/v1/crm/companies{query}");
        async move { app.call("GET", &path, Some(&owner), None).await }
    };
    assert_eq!(names(&list("").await, "name"), ["Acme GmbH", "Beta"]);
    assert_eq!(names(&list("?sort=-createdAt").await, "name"), ["Beta", "Acme GmbH"]);
    assert_eq!(names(&list("?q=beta.exam").await, "name"), ["Beta"]);
    assert_eq!(names(&list("?industry=retail&tag=Key").await, "name"), ["Acme GmbH"]);

    let path = format!("/api/v1/crm/companies/{id}");
    let res = app.call("PUT", &path, Some(&owner), Some(json!({"name": "Acme AG", "size": "11-50"}))).await;
    assert_eq!((res.status, res.json["data"]["size"].clone()), (200, json!("11-50")), "{}", res.body);
    assert_eq!(app.call("GET", &path, Some(&owner), None).await.json["data"]["name"], "Acme AG");
    assert_eq!(app.call("DELETE", &path, Some(&owner), None).await.status, 204);
    assert_eq!(
        code(&app.call("GET", &path, Some(&owner), None).await),
        (404, json!("crm.company_not_found"))
    );
    let res = app.call("GET", &format!("/api/v1/crm/contacts/{sam}"), Some(&owner), None).await;
    assert_eq!((res.status, res.json["data"]["companyId"].clone()), (200, Value::Null), "the contact stays");
    assert_eq!(rows(&app, "crm_companies", acme).await, 1);
    assert_eq!(audited(&app, acme, "crm.company.delete").await, 1);
}

// ---- Duplicates and merges ----

#[actix_web::test]
async fn duplicates_are_found_and_merged_keeping_every_linked_record() {
    let app = TestApp::spawn().await;
    let (acme, owner) = crm_tenant(&app, "acme").await;
    let keep =
        contact(&app, &owner, json!({"displayName": "Sam", "phones": [{"number": "+49 30 1234567"}]})).await;
    let merged = contact(
        &app,
        &owner,
        json!({"displayName": "Samuel", "phones": [{"number": "030/1234567"}], "emails": [{"address": "sam@acme.example"}]}),
    )
    .await;
    sql(&app, &ticket_for(acme, &merged)).await;
    let a = company(&app, &owner, json!({"name": "Acme GmbH"})).await;
    let b = company(&app, &owner, json!({"name": "ACME", "domain": "acme.example"})).await;

    let res = app.call("GET", "/api/v1/crm/duplicates?type=contacts", Some(&owner), None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        res.json["data"],
        json!({"contacts": [{"reason": "phone", "value": "+49301234567", "contactIds": [keep, merged]}],
               "companies": [], "truncated": false})
    );
    let res = app.call("GET", "/api/v1/crm/duplicates", Some(&owner), None).await;
    assert_eq!(
        res.json["data"]["companies"],
        json!([{"reason": "name", "value": "acme", "companyIds": [a, b]}])
    );

    let body = json!({"keepId": keep, "mergedId": merged});
    let res = app.call("POST", "/api/v1/crm/contacts/merge", Some(&owner), Some(body)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        (res.json["data"]["id"].clone(), res.json["data"]["displayName"].clone()),
        (json!(keep), json!("Sam"))
    );
    assert_eq!(res.json["data"]["emails"][0]["address"], "sam@acme.example", "gained");
    let requested = "SELECT count(*) AS n FROM crm_tickets WHERE requester_contact_id = $1::uuid";
    assert_eq!((number(&app, requested, &keep).await, number(&app, requested, &merged).await), (1, 0));
    let path = format!("/api/v1/crm/contacts/{merged}");
    assert_eq!(
        code(&app.call("GET", &path, Some(&owner), None).await),
        (404, json!("crm.contact_not_found"))
    );
    assert_eq!(number(&app, "SELECT count(*) AS n FROM crm_merges WHERE kept_id = $1::uuid", &keep).await, 1);

    let body = json!({"keepId": a, "mergedId": b});
    let res = app.call("POST", "/api/v1/crm/companies/merge", Some(&owner), Some(body)).await;
    assert_eq!(
        (res.status, res.json["data"]["domain"].clone()),
        (200, json!("acme.example")),
        "{}",
        res.body
    );
    let res = app.call("GET", "/api/v1/crm/duplicates", Some(&owner), None).await;
    assert_eq!(res.json["data"], json!({"contacts": [], "companies": [], "truncated": false}));
    assert_eq!(
        (audited(&app, acme, "crm.contact.merge").await, audited(&app, acme, "crm.company.merge").await),
        (1, 1)
    );
}

// ---- The walls ----

#[actix_web::test]
async fn another_tenant_gets_404_on_every_route_and_none_of_the_data() {
    let app = TestApp::spawn().await;
    let (acme, owner) = crm_tenant(&app, "acme").await;
    let (_, intruder) = crm_tenant(&app, "globex").await;
    let sam =
        contact(&app, &owner, json!({"displayName": "Sam", "emails": [{"address": "sam@acme.example"}]}))
            .await;
    let twin =
        contact(&app, &owner, json!({"displayName": "Sam T", "emails": [{"address": "sam@acme.example"}]}))
            .await;
    let firm = company(&app, &owner, json!({"name": "Acme"})).await;
    let twin_firm = company(&app, &owner, json!({"name": "ACME"})).await;
    let theirs = contact(&app, &intruder, json!({"displayName": "Their own"})).await;
    let their_firm = company(&app, &intruder, json!({"name": "Their firm"})).await;

    let not_found = [
        ("GET", format!("/api/v1/crm/contacts/{sam}"), None, "crm.contact_not_found"),
        (
            "PUT",
            format!("/api/v1/crm/contacts/{sam}"),
            Some(json!({"displayName": "Taken"})),
            "crm.contact_not_found",
        ),
        ("DELETE", format!("/api/v1/crm/contacts/{sam}"), None, "crm.contact_not_found"),
        (
            "POST",
            "/api/v1/crm/contacts/merge".to_owned(),
            Some(json!({"keepId": theirs, "mergedId": sam})),
            "crm.contact_not_found",
        ),
        ("GET", format!("/api/v1/crm/companies/{firm}"), None, "crm.company_not_found"),
        (
            "PUT",
            format!("/api/v1/crm/companies/{firm}"),
            Some(json!({"name": "Taken"})),
            "crm.company_not_found",
        ),
        ("DELETE", format!("/api/v1/crm/companies/{firm}"), None, "crm.company_not_found"),
        (
            "POST",
            "/api/v1/crm/companies/merge".to_owned(),
            Some(json!({"keepId": their_firm, "mergedId": firm})),
            "crm.company_not_found",
        ),
    ];
    for (method, path, body, expected) in not_found {
        let res = app.call(method, &path, Some(&intruder), body).await;
        assert_eq!(code(&res), (404, json!(expected)), "{method} {path}: {}", res.body);
        assert!(!res.body.contains("Sam") && !res.body.contains("Acme"), "{method} {path}: no data");
    }
    let res = app.call("GET", "/api/v1/crm/contacts?q=sam", Some(&intruder), None).await;
    assert!(names(&res, "displayName").is_empty());
    assert_eq!(
        names(&app.call("GET", "/api/v1/crm/contacts", Some(&intruder), None).await, "displayName"),
        ["Their own"]
    );
    assert_eq!(
        names(&app.call("GET", "/api/v1/crm/companies?q=acme", Some(&intruder), None).await, "name"),
        Vec::<String>::new()
    );
    let res = app.call("GET", "/api/v1/crm/duplicates", Some(&intruder), None).await;
    assert_eq!(
        res.json["data"],
        json!({"contacts": [], "companies": [], "truncated": false}),
        "{}",
        res.body
    );

    // Everything of acme is as it was.
    assert_eq!((rows(&app, "crm_contacts", acme).await, rows(&app, "crm_companies", acme).await), (2, 2));
    let res = app.call("GET", &format!("/api/v1/crm/contacts/{sam}"), Some(&owner), None).await;
    assert_eq!(res.json["data"]["displayName"], "Sam");
    let res = app.call("GET", "/api/v1/crm/duplicates", Some(&owner), None).await;
    assert_eq!(res.json["data"]["contacts"][0]["contactIds"], json!([sam, twin]));
    assert_eq!(res.json["data"]["companies"][0]["companyIds"], json!([firm, twin_firm]));
}

#[actix_web::test]
async fn a_viewer_reads_but_cannot_change_anything() {
    let app = TestApp::spawn().await;
    let (acme, owner) = crm_tenant(&app, "acme").await;
    let sam = contact(&app, &owner, json!({"displayName": "Sam"})).await;
    let viewer = app.user_token(acme, Role::Viewer.permissions());
    for path in [
        "/api/v1/crm/contacts".to_owned(),
        format!("/api/v1/crm/contacts/{sam}"),
        "/api/v1/crm/companies".into(),
        "/api/v1/crm/duplicates".into(),
    ] {
        assert_eq!(app.call("GET", &path, Some(&viewer), None).await.status, 200, "{path}");
    }
    let changes = [
        ("POST", "/api/v1/crm/contacts".to_owned(), json!({"displayName": "New"})),
        ("PUT", format!("/api/v1/crm/contacts/{sam}"), json!({"displayName": "Changed"})),
        ("DELETE", format!("/api/v1/crm/contacts/{sam}"), json!(null)),
        ("POST", "/api/v1/crm/contacts/merge".into(), json!({"keepId": sam, "mergedId": sam})),
        ("POST", "/api/v1/crm/companies".into(), json!({"name": "New"})),
        ("POST", "/api/v1/crm/companies/merge".into(), json!({"keepId": sam, "mergedId": sam})),
    ];
    for (method, path, body) in changes {
        let res = app.call(method, &path, Some(&viewer), Some(body)).await;
        assert_eq!(code(&res), (403, json!("auth.permission_denied")), "{method} {path}: {}", res.body);
    }
    let tickets_only = app.user_token(acme, &["tickets:read"]);
    let res = app.call("GET", "/api/v1/crm/contacts", Some(&tickets_only), None).await;
    assert_eq!(code(&res), (403, json!("auth.permission_denied")));
    assert_eq!((rows(&app, "crm_contacts", acme).await, rows(&app, "crm_companies", acme).await), (1, 0));
    let res = app.call("GET", &format!("/api/v1/crm/contacts/{sam}"), Some(&owner), None).await;
    assert_eq!(res.json["data"]["displayName"], "Sam");
}

#[actix_web::test]
async fn the_routes_are_closed_while_the_crm_feature_is_off() {
    let app = TestApp::spawn().await;
    let (acme, owner) = crm_tenant(&app, "acme").await;
    let set = |on: bool| {
        let app = &app;
        async move {
            let path = format!("/api/v1/tenants/{acme}/features");
            let res = app
                .call("PUT", &path, Some(&app.admin_token()), Some(json!({"features": {"crm": on}})))
                .await;
            assert_eq!(res.status, 200, "{}", res.body);
        }
    };
    assert_eq!(app.call("GET", "/api/v1/crm/contacts", Some(&owner), None).await.status, 200);
    set(false).await;
    for (method, path, body) in [
        ("GET", "/api/v1/crm/contacts", None),
        ("POST", "/api/v1/crm/contacts", Some(json!({"displayName": "Sam"}))),
        ("POST", "/api/v1/crm/companies", Some(json!({"name": "Acme"}))),
        ("GET", "/api/v1/crm/duplicates", None),
    ] {
        let res = app.call(method, path, Some(&owner), body).await;
        assert_eq!(code(&res), (403, json!("tenancy.feature_disabled")), "{method} {path}: {}", res.body);
    }
    assert_eq!((rows(&app, "crm_contacts", acme).await, rows(&app, "crm_companies", acme).await), (0, 0));
    set(true).await;
    assert_eq!(
        app.call("POST", "/api/v1/crm/contacts", Some(&owner), Some(json!({"displayName": "Sam"})))
            .await
            .status,
        201
    );
}

// ---- Bad input ----

/// A request and its refusal: method, path, body, status, code, the fields named.
type Refusal = (&'static str, String, Option<Value>, u16, &'static str, &'static [&'static str]);

#[actix_web::test]
async fn bad_input_is_refused_with_a_stable_code_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let (acme, owner) = crm_tenant(&app, "acme").await;
    let sam = contact(&app, &owner, json!({"displayName": "Sam"})).await;
    let firm = company(&app, &owner, json!({"name": "Acme"})).await;
    sql(&app, &ticket_for(acme, &sam)).await;
    let stranger = portico_kernel::UserId::new();

    let refused: [Refusal; 16] = [
        ("GET", "/api/v1/crm/contacts?sort=age".into(), None, 400, "request.invalid_query", &[]),
        ("GET", "/api/v1/crm/contacts?colour=red".into(), None, 400, "request.invalid_query", &[]),
        ("GET", "/api/v1/crm/contacts?createdFrom=yesterday".into(), None, 400, "request.invalid_query", &[]),
        ("GET", "/api/v1/crm/contacts?limit=101".into(), None, 422, "request.invalid_page", &[]),
        (
            "POST",
            "/api/v1/crm/contacts".into(),
            Some(
                json!({"firstName": "Ann", "emails": [{"address": "ann at acme"}], "phones": [{"number": "12"}], "ownerId": stranger}),
            ),
            422,
            "crm.invalid",
            &["emails[0].address", "phones[0].number"],
        ),
        (
            "POST",
            "/api/v1/crm/contacts".into(),
            Some(json!({"displayName": "Ann", "ownerId": stranger})),
            422,
            "crm.invalid",
            &["ownerId"],
        ),
        (
            "POST",
            "/api/v1/crm/contacts".into(),
            Some(json!({"name": "Ann"})),
            422,
            "request.invalid_body",
            &["name"],
        ),
        ("GET", "/api/v1/crm/contacts/not-a-uuid".into(), None, 400, "request.invalid_path", &[]),
        (
            "PUT",
            format!("/api/v1/crm/contacts/{sam}"),
            Some(json!({"tags": [""]})),
            422,
            "crm.invalid",
            &["tags[0]", "displayName"],
        ),
        ("DELETE", format!("/api/v1/crm/contacts/{sam}"), None, 409, "crm.contact_has_tickets", &[]),
        (
            "POST",
            "/api/v1/crm/contacts/merge".into(),
            Some(json!({"keepId": sam, "mergedId": sam})),
            422,
            "crm.merge_into_itself",
            &[],
        ),
        ("GET", "/api/v1/crm/companies?sort=-updatedAt".into(), None, 400, "request.invalid_query", &[]),
        (
            "POST",
            "/api/v1/crm/companies".into(),
            Some(json!({"name": "Mail", "domain": "gmail.com"})),
            422,
            "crm.invalid",
            &["domain"],
        ),
        (
            "PUT",
            format!("/api/v1/crm/companies/{firm}"),
            Some(json!({"name": ""})),
            422,
            "crm.invalid",
            &["name"],
        ),
        (
            "POST",
            "/api/v1/crm/companies/merge".into(),
            Some(json!({"keepId": firm, "mergedId": firm})),
            422,
            "crm.merge_into_itself",
            &[],
        ),
        ("GET", "/api/v1/crm/duplicates?type=leads".into(), None, 400, "request.invalid_query", &[]),
    ];
    for (method, path, body, status, expected, named) in refused {
        let res = app.call(method, &path, Some(&owner), body).await;
        assert_eq!(code(&res), (status, json!(expected)), "{method} {path}: {}", res.body);
        let mut got = fields(&res);
        let mut want: Vec<String> = named.iter().map(|f| (*f).to_owned()).collect();
        got.sort();
        got.dedup();
        want.sort();
        assert_eq!(got, want, "{method} {path}: {}", res.body);
    }
    let res = app
        .call(
            "DELETE",
            &format!("/api/v1/crm/companies/{}", portico_kernel::CompanyId::new()),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(code(&res), (404, json!("crm.company_not_found")));

    // Nothing half-written: the contact and the company are as they were, and only their creation is audited.
    assert_eq!((rows(&app, "crm_contacts", acme).await, rows(&app, "crm_companies", acme).await), (1, 1));
    let res = app.call("GET", &format!("/api/v1/crm/contacts/{sam}"), Some(&owner), None).await;
    assert_eq!(
        (res.json["data"]["displayName"].clone(), res.json["data"]["tags"].clone()),
        (json!("Sam"), json!([]))
    );
    assert_eq!(
        app.call("GET", &format!("/api/v1/crm/companies/{firm}"), Some(&owner), None).await.json["data"]["name"],
        "Acme"
    );
    let changes = number(
        &app,
        "SELECT count(*) AS n FROM audit_log WHERE tenant_id = $1::uuid AND action LIKE 'crm.%' \
         AND action NOT IN ('crm.contact.create', 'crm.company.create')",
        &acme.to_string(),
    )
    .await;
    assert_eq!(changes, 0);
    assert_eq!(rows(&app, "crm_merges", acme).await, 0);
}

// ---- The audit walk ----

#[actix_web::test]
async fn each_change_leaves_one_audit_row_and_a_retry_is_answered_from_the_first_run() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let mutating: Vec<_> = portico_bff::api::ROUTES
        .iter()
        .filter(|r| {
            r.method != "GET"
                && (r.path.starts_with("/api/v1/crm/contacts") || r.path.starts_with("/api/v1/crm/companies"))
        })
        .filter(|r| !r.path.ends_with("/import") && !r.path.ends_with("/export"))
        .collect();
    assert_eq!(mutating.len(), 8);
    for (n, route) in mutating.into_iter().enumerate() {
        let (method, request_id) = (route.method, format!("crm-contacts-walk-{n}"));
        let (path, body, action) = walk(&app, &admin, method, route.path, &request_id).await.unwrap();
        let headers = [("X-Request-ID", request_id.as_str()), ("Idempotency-Key", request_id.as_str())];
        let body = body.map(|b| b.to_string().into_bytes());
        let first = app.call_with(method, &path, Some(&admin), &headers, body.clone()).await;
        assert!(first.status < 300, "{method} {path}: {}", first.body);
        let sql = "SELECT count(*) AS n FROM audit_log WHERE request_id = $1";
        assert_eq!(number(&app, sql, &request_id).await, 1, "{method} {path}: one audit row");
        let sql =
            format!("SELECT count(*) AS n FROM audit_log WHERE request_id = $1 AND action = '{action}'");
        assert_eq!(number(&app, &sql, &request_id).await, 1, "{method} {path}: {action}");
        let every = format!("SELECT count(*) AS n FROM audit_log WHERE action = '{action}' AND $1 <> ''");
        let before = number(&app, &every, "x").await;
        let again = app
            .call_with(method, &path, Some(&admin), &[("Idempotency-Key", request_id.as_str())], body)
            .await;
        assert_eq!(
            (again.status, again.header("idempotency-replayed")),
            (first.status, Some("true")),
            "{method} {path}"
        );
        assert_eq!(again.body, first.body, "{method} {path}");
        assert_eq!(number(&app, &every, "x").await, before, "{method} {path}: the retry wrote nothing");
    }
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
    let person = |suffix: &str| json!({"displayName": format!("{request_id} {suffix}")});
    let firm = |suffix: &str| json!({"name": format!("{request_id} {suffix}")});
    Some(match (method, path) {
        ("POST", "/api/v1/crm/contacts") => (path.to_owned(), Some(person("new")), "crm.contact.create"),
        ("PUT", "/api/v1/crm/contacts/{id}") => {
            let id = contact(app, admin, person("old")).await;
            (path.replace("{id}", &id), Some(person("changed")), "crm.contact.update")
        }
        ("DELETE", "/api/v1/crm/contacts/{id}") => {
            (path.replace("{id}", &contact(app, admin, person("gone")).await), None, "crm.contact.delete")
        }
        ("POST", "/api/v1/crm/contacts/merge") => {
            let keep = contact(app, admin, person("kept")).await;
            let merged = contact(app, admin, person("merged")).await;
            (path.to_owned(), Some(json!({"keepId": keep, "mergedId": merged})), "crm.contact.merge")
        }
        ("POST", "/api/v1/crm/companies") => (path.to_owned(), Some(firm("new")), "crm.company.create"),
        ("PUT", "/api/v1/crm/companies/{id}") => {
            let id = company(app, admin, firm("old")).await;
            (path.replace("{id}", &id), Some(firm("changed")), "crm.company.update")
        }
        ("DELETE", "/api/v1/crm/companies/{id}") => {
            (path.replace("{id}", &company(app, admin, firm("gone")).await), None, "crm.company.delete")
        }
        ("POST", "/api/v1/crm/companies/merge") => {
            let keep = company(app, admin, firm("kept")).await;
            let merged = company(app, admin, firm("merged")).await;
            (path.to_owned(), Some(json!({"keepId": keep, "mergedId": merged})), "crm.company.merge")
        }
        _ => return None,
    })
}
