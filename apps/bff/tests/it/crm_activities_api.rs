//! CRM activities and timelines over HTTP: tasks logged, completed and
//! reopened, lists filtered, a record's timeline merging its activities and
//! audited changes newest first; the permission wall (a viewer reads, does
//! not write), the tenant wall (another tenant's ids are 404 and an activity
//! cannot link another tenant's contact), the feature gate and bad input.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use portico_kernel::{PLATFORM_TENANT_ID, TenantId, UserId};
use portico_tenancy::Role;
use serde_json::{Value, json};

use crate::support::{TestApp, code, fields, id_of};

async fn platform_conn(app: &TestApp) -> AsyncPgConnection {
    AsyncPgConnection::establish(&app.db.urls.platform).await.unwrap()
}

/// `SELECT … AS n` with one text parameter, over every tenant.
async fn number(app: &TestApp, sql: &str, bind: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Number {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let row: Number =
        diesel::sql_query(sql).bind::<Text, _>(bind).get_result(&mut platform_conn(app).await).await.unwrap();
    row.n
}

/// The activities stored for `tenant`.
async fn activities_of(app: &TestApp, tenant: TenantId) -> i64 {
    number(app, "SELECT count(*) AS n FROM crm_activities WHERE tenant_id = $1::uuid", &tenant.to_string())
        .await
}

/// A contact of `tenant`, written as the table has it (the contacts' own routes are another area's).
pub(crate) async fn contact_of(app: &TestApp, tenant: TenantId) -> String {
    let id = uuid::Uuid::now_v7();
    platform_conn(app)
        .await
        .batch_execute(&format!(
            "INSERT INTO crm_contacts (tenant_id, id, display_name, contact_type, status, created_at, updated_at) \
             VALUES ('{tenant}', '{id}', 'Ada Lovelace', 'customer', 'active', now(), now())"
        ))
        .await
        .unwrap();
    id.to_string()
}

/// A tenant with the `crm` feature switched on (`on`) or off, by the platform's staff.
pub(crate) async fn tenant_with_crm(app: &TestApp, slug: &str, on: bool) -> TenantId {
    let tenant = app.tenant(slug).await;
    let path = format!("/api/v1/tenants/{tenant}/features");
    let res = app.call("PUT", &path, Some(&app.admin_token()), Some(json!({"features": {"crm": on}}))).await;
    assert_eq!(res.status, 200, "{}", res.body);
    tenant
}

/// A tenant with the `crm` feature.
pub(crate) async fn crm_tenant(app: &TestApp, slug: &str) -> TenantId {
    tenant_with_crm(app, slug, true).await
}

/// A staff member of `tenant` (a real membership) and their token.
pub(crate) async fn staff(app: &TestApp, tenant: TenantId, email: &str) -> (UserId, String) {
    let user = app.person(email, tenant, Role::Staff).await;
    let token = app.keys.mint(user, email, "staff", tenant, Role::Staff.permissions(), 600).unwrap();
    (user, token)
}

#[actix_web::test]
async fn a_task_is_logged_completed_once_and_reopened() {
    let app = TestApp::spawn().await;
    let tenant = crm_tenant(&app, "acme").await;
    let (seller, token) = staff(&app, tenant, "seller@acme.example").await;
    let contact = contact_of(&app, tenant).await;
    let body = json!({"kind": "task", "subject": "Send the quote", "dueDate": "2026-11-28", "links": {"contactId": contact}});
    let created = app.call("POST", "/api/v1/crm/activities", Some(&token), Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let data = &created.json["data"];
    assert_eq!(
        (data["kind"].clone(), data["assigneeId"].clone(), data["createdBy"].clone(), data["doneAt"].clone()),
        (json!("task"), json!(seller), json!(seller), Value::Null),
        "assigned to whoever logs it"
    );
    assert_eq!(data["links"]["contactId"], json!(contact));
    let task = id_of(&created);
    let done = app.call("POST", &format!("/api/v1/crm/activities/{task}/complete"), Some(&token), None).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.json["data"]["doneAt"].is_string());
    let stored = number(
        &app,
        "SELECT count(*) AS n FROM crm_activities WHERE id = $1::uuid AND done_at IS NOT NULL",
        &task,
    )
    .await;
    assert_eq!(stored, 1);
    let again =
        app.call("POST", &format!("/api/v1/crm/activities/{task}/complete"), Some(&token), None).await;
    assert_eq!(code(&again), (409, json!("crm.task_already_done")));
    let reopened =
        app.call("POST", &format!("/api/v1/crm/activities/{task}/reopen"), Some(&token), None).await;
    assert_eq!((reopened.status, reopened.json["data"]["doneAt"].clone()), (200, Value::Null));
    let open = app.call("GET", "/api/v1/crm/activities?open=true&kind=task", Some(&token), None).await;
    assert_eq!(open.status, 200, "{}", open.body);
    assert_eq!(
        (open.json["data"][0]["id"].clone(), open.json["meta"]["total"].clone()),
        (json!(task), json!(1))
    );
    // A note is no task.
    let note = json!({"kind": "note", "subject": "Met at the fair", "links": {"contactId": contact}});
    let note = id_of(&app.call("POST", "/api/v1/crm/activities", Some(&token), Some(note)).await);
    let refused =
        app.call("POST", &format!("/api/v1/crm/activities/{note}/complete"), Some(&token), None).await;
    assert_eq!(code(&refused), (409, json!("crm.not_a_task")));
}

#[actix_web::test]
async fn a_viewer_reads_activities_but_does_not_write_them() {
    let app = TestApp::spawn().await;
    let tenant = crm_tenant(&app, "acme").await;
    let (_, token) = staff(&app, tenant, "seller@acme.example").await;
    let contact = contact_of(&app, tenant).await;
    let note = json!({"kind": "note", "subject": "Met", "links": {"contactId": contact}});
    let note = id_of(&app.call("POST", "/api/v1/crm/activities", Some(&token), Some(note.clone())).await);
    let viewer = app.user_token(tenant, Role::Viewer.permissions());
    let listed = app.call("GET", "/api/v1/crm/activities", Some(&viewer), None).await;
    assert_eq!((listed.status, listed.json["meta"]["total"].clone()), (200, json!(1)));
    let read = app.call("GET", &format!("/api/v1/crm/activities/{note}"), Some(&viewer), None).await;
    assert_eq!((read.status, read.json["data"]["subject"].clone()), (200, json!("Met")));
    let timeline =
        app.call("GET", &format!("/api/v1/crm/contacts/{contact}/timeline"), Some(&viewer), None).await;
    assert_eq!(timeline.status, 200, "{}", timeline.body);
    let body = json!({"kind": "note", "subject": "Mine", "links": {"contactId": contact}});
    let writes = [
        ("POST", "/api/v1/crm/activities".to_owned(), Some(body.clone())),
        ("PUT", format!("/api/v1/crm/activities/{note}"), Some(body)),
        ("DELETE", format!("/api/v1/crm/activities/{note}"), None),
        ("POST", format!("/api/v1/crm/activities/{note}/complete"), None),
    ];
    for (method, path, body) in writes {
        let res = app.call(method, &path, Some(&viewer), body).await;
        assert_eq!(res.status, 403, "{method} {path}: {}", res.body);
    }
    assert_eq!(activities_of(&app, tenant).await, 1);
    assert_eq!(app.call("GET", "/api/v1/crm/activities", None, None).await.status, 401);
}

#[actix_web::test]
async fn another_tenants_activities_and_records_are_not_found_and_cannot_be_linked() {
    let app = TestApp::spawn().await;
    let acme = crm_tenant(&app, "acme").await;
    let globex = crm_tenant(&app, "globex").await;
    let (_, ours) = staff(&app, acme, "seller@acme.example").await;
    let (_, theirs) = staff(&app, globex, "seller@globex.example").await;
    let contact = contact_of(&app, acme).await;
    let body = json!({"kind": "note", "subject": "Private notes", "links": {"contactId": contact}});
    let note = id_of(&app.call("POST", "/api/v1/crm/activities", Some(&ours), Some(body.clone())).await);

    for (method, path, body) in [
        ("GET", format!("/api/v1/crm/activities/{note}"), None),
        ("PUT", format!("/api/v1/crm/activities/{note}"), Some(body.clone())),
        ("DELETE", format!("/api/v1/crm/activities/{note}"), None),
        ("POST", format!("/api/v1/crm/activities/{note}/complete"), None),
        ("POST", format!("/api/v1/crm/activities/{note}/reopen"), None),
    ] {
        let res = app.call(method, &path, Some(&theirs), body).await;
        assert_eq!(code(&res), (404, json!("crm.activity_not_found")), "{method} {path}");
        assert!(!res.body.contains("Private notes"));
    }
    let timeline =
        app.call("GET", &format!("/api/v1/crm/contacts/{contact}/timeline"), Some(&theirs), None).await;
    assert_eq!(code(&timeline), (404, json!("crm.contact_not_found")));
    let (lead, company) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    platform_conn(&app)
        .await
        .batch_execute(&format!(
            "INSERT INTO crm_leads (tenant_id, id, name, source, status, created_at, updated_at) \
                 VALUES ('{acme}', '{lead}', 'Grace Hopper', 'manual', 'new', now(), now()); \
             INSERT INTO crm_companies (tenant_id, id, name, created_at, updated_at) \
                 VALUES ('{acme}', '{company}', 'Analytical Engines', now(), now())"
        ))
        .await
        .unwrap();
    for (path, expected) in [
        (format!("/api/v1/crm/leads/{lead}/timeline"), "crm.lead_not_found"),
        (format!("/api/v1/crm/companies/{company}/timeline"), "crm.company_not_found"),
    ] {
        assert_eq!(app.call("GET", &path, Some(&ours), None).await.status, 200, "{path}: acme's own");
        assert_eq!(
            code(&app.call("GET", &path, Some(&theirs), None).await),
            (404, json!(expected)),
            "{path}"
        );
    }
    let listed = app.call("GET", "/api/v1/crm/activities", Some(&theirs), None).await;
    assert_eq!((listed.json["meta"]["total"].clone(), listed.json["data"].clone()), (json!(0), json!([])));

    // Globex cannot log an activity about acme's contact: nothing is written.
    let linked = app.call("POST", "/api/v1/crm/activities", Some(&theirs), Some(body)).await;
    assert_eq!(code(&linked), (422, json!("crm.invalid")));
    assert_eq!(fields(&linked), ["links.contactId"]);
    assert_eq!(activities_of(&app, globex).await, 0);
    let subject = number(
        &app,
        "SELECT count(*) AS n FROM crm_activities WHERE id = $1::uuid AND subject = 'Private notes'",
        &note,
    )
    .await;
    assert_eq!(subject, 1, "acme's note is untouched");
}

#[actix_web::test]
async fn bad_activities_are_refused_with_their_fields_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let tenant = crm_tenant(&app, "acme").await;
    let (_, token) = staff(&app, tenant, "seller@acme.example").await;
    let contact = contact_of(&app, tenant).await;
    let cases = [
        (json!({"kind": "note", "subject": "x", "links": {}}), "crm.invalid", vec!["links"]),
        (
            json!({"kind": "call", "subject": "x", "dueDate": "2026-11-28", "links": {"contactId": contact}}),
            "crm.invalid",
            vec!["dueDate"],
        ),
        (
            json!({"kind": "task", "subject": "x", "assigneeId": UserId::new(), "links": {"contactId": contact}}),
            "crm.invalid",
            vec!["assigneeId"],
        ),
        (
            json!({"kind": "chat", "subject": "x", "links": {"contactId": contact}}),
            "request.invalid_body",
            vec!["kind"],
        ),
    ];
    for (body, expected, expected_fields) in cases {
        let res = app.call("POST", "/api/v1/crm/activities", Some(&token), Some(body.clone())).await;
        assert_eq!(code(&res), (422, json!(expected)), "{body}: {}", res.body);
        assert_eq!(fields(&res), expected_fields, "{body}");
    }
    assert_eq!(activities_of(&app, tenant).await, 0);
    let filter = app.call("GET", "/api/v1/crm/activities?dueFrom=someday", Some(&token), None).await;
    assert_eq!(filter.status, 400, "{}", filter.body);
    let unknown =
        app.call("GET", &format!("/api/v1/crm/widgets/{contact}/timeline"), Some(&token), None).await;
    assert_eq!(code(&unknown), (404, json!("crm.unknown_record_type")));
    let malformed = app.call("GET", "/api/v1/crm/contacts/not-an-id/timeline", Some(&token), None).await;
    assert_eq!(malformed.status, 400, "{}", malformed.body);
}

#[actix_web::test]
async fn a_tenant_without_the_crm_feature_is_refused() {
    let app = TestApp::spawn().await;
    let tenant = tenant_with_crm(&app, "plain", false).await;
    let token = app.user_token(tenant, Role::Owner.permissions());
    for path in
        ["/api/v1/crm/activities".to_owned(), format!("/api/v1/crm/contacts/{}/timeline", UserId::new())]
    {
        let res = app.call("GET", &path, Some(&token), None).await;
        assert_eq!(code(&res), (403, json!("tenancy.feature_disabled")), "{path}");
    }
    let body =
        json!({"kind": "note", "subject": "x", "links": {"contactId": contact_of(&app, tenant).await}});
    let res = app.call("POST", "/api/v1/crm/activities", Some(&token), Some(body)).await;
    assert_eq!(code(&res), (403, json!("tenancy.feature_disabled")));
    assert_eq!(activities_of(&app, tenant).await, 0);
}

#[actix_web::test]
async fn a_timeline_merges_activities_and_audited_changes_newest_first() {
    let app = TestApp::spawn().await;
    let tenant = crm_tenant(&app, "acme").await;
    let (_, token) = staff(&app, tenant, "seller@acme.example").await;
    let contact = contact_of(&app, tenant).await;
    for (subject, at) in [("Intro call", "2026-11-24T08:00:00Z"), ("Demo", "2026-11-24T11:00:00Z")] {
        let body =
            json!({"kind": "meeting", "subject": subject, "occurredAt": at, "links": {"contactId": contact}});
        assert_eq!(app.call("POST", "/api/v1/crm/activities", Some(&token), Some(body)).await.status, 201);
    }
    // The contact's own change, as its area audits it.
    platform_conn(&app)
        .await
        .batch_execute(&format!(
            "INSERT INTO audit_log (tenant_id, id, actor_type, actor_id, actor_tenant_id, action, resource_type, \
                                    resource_id, changes, request_id, occurred_at) \
             VALUES ('{tenant}', '{}', 'user', '{}', '{tenant}', 'crm.contact.update', 'contact', '{contact}', \
                     '{{\"contactType\": {{\"before\": \"prospect\", \"after\": \"customer\"}}}}', 'test', \
                     '2026-11-24T10:00:00Z')",
            uuid::Uuid::now_v7(),
            UserId::new()
        ))
        .await
        .unwrap();
    let res = app
        .call("GET", &format!("/api/v1/crm/contacts/{contact}/timeline?limit=2"), Some(&token), None)
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let entries = res.json["data"].as_array().unwrap();
    let shown: Vec<(Value, Value)> =
        entries.iter().map(|e| (e["type"].clone(), e["occurredAt"].clone())).collect();
    assert_eq!(shown[0], (json!("activity"), json!("2026-11-24T11:00:00Z")));
    assert_eq!(entries[1]["type"], "change");
    assert_eq!(entries[1]["action"], "crm.contact.update");
    assert_eq!(entries[1]["changes"]["contactType"]["after"], "customer");
    assert_eq!(
        (res.json["meta"]["total"].clone(), res.json["meta"]["totalPages"].clone()),
        (json!(3), json!(2))
    );
    let rest = app
        .call("GET", &format!("/api/v1/crm/contacts/{contact}/timeline?limit=2&page=2"), Some(&token), None)
        .await;
    assert_eq!(rest.json["data"][0]["subject"], "Intro call");
}

/// Runs each mutating route under `prefix` as the audit walk does (with this
/// area's `walk` steps): one audit row of its action with the request id,
/// and a replay under the same `Idempotency-Key` answered the same with no
/// second row.
pub(crate) async fn walk_area<'a, F, Fut>(app: &'a TestApp, prefix: &str, step: F)
where
    F: Fn(&'a TestApp, String, &'static str, &'static str, String) -> Fut,
    Fut: std::future::Future<Output = Option<(String, Option<Value>, &'static str)>>,
{
    let admin = app.admin_token();
    let routes = portico_bff::api::ROUTES.iter().filter(|r| r.method != "GET" && r.path.starts_with(prefix));
    let mut walked = 0;
    for (n, route) in routes.enumerate() {
        let request_id = format!("area-walk-{n}");
        let (path, body, action) = step(app, admin.clone(), route.method, route.path, request_id.clone())
            .await
            .unwrap_or_else(|| panic!("{} {}: no walk step", route.method, route.path));
        let headers = [("X-Request-ID", request_id.as_str()), ("Idempotency-Key", request_id.as_str())];
        let body = body.map(|b| b.to_string().into_bytes());
        let res = app.call_with(route.method, &path, Some(&admin), &headers, body.clone()).await;
        assert!(res.status < 300, "{} {}: {}", route.method, route.path, res.body);
        let rows =
            number(app, "SELECT count(*) AS n FROM audit_log WHERE request_id = $1", &request_id).await;
        let actions = number(
            app,
            &format!("SELECT count(*) AS n FROM audit_log WHERE request_id = $1 AND action = '{action}'"),
            &request_id,
        )
        .await;
        assert_eq!((rows, actions), (1, 1), "{} {}: one audit row, {action}", route.method, route.path);
        let again = app
            .call_with(route.method, &path, Some(&admin), &[("Idempotency-Key", request_id.as_str())], body)
            .await;
        assert_eq!((again.status, again.header("idempotency-replayed")), (res.status, Some("true")));
        assert_eq!(again.body, res.body);
        let after =
            number(app, "SELECT count(*) AS n FROM audit_log WHERE request_id = $1", &request_id).await;
        assert_eq!(after, 1, "{} {}: ran once", route.method, route.path);
        walked += 1;
    }
    assert!(walked >= 5, "the area's mutations were walked");
}

#[actix_web::test]
async fn each_activity_mutation_leaves_one_audit_row_and_replays() {
    let app = TestApp::spawn().await;
    walk_area(&app, "/api/v1/crm/activities", |app, admin, method, path, id| async move {
        walk(app, &admin, method, path, &id).await
    })
    .await;
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
    let note = |contact: &str| json!({"kind": "note", "subject": format!("Walked {request_id}"), "links": {"contactId": contact}});
    // An activity made for the walked request (its own request id), and its path.
    let made = |body: Value| async move {
        let res = app.call("POST", "/api/v1/crm/activities", Some(admin), Some(body)).await;
        assert_eq!(res.status, 201, "{}", res.body);
        path.replace("{id}", &id_of(&res))
    };
    // A task for a member of the platform tenant (the walking admin is none).
    let task = |contact: String| async move {
        let email = format!("assignee-{request_id}@portico.example");
        let assignee = app.person(&email, PLATFORM_TENANT_ID, Role::PlatformAdmin).await;
        json!({"kind": "task", "subject": "Walked task", "assigneeId": assignee, "links": {"contactId": contact}})
    };
    let contact = || contact_of(app, PLATFORM_TENANT_ID);
    Some(match (method, path) {
        ("POST", "/api/v1/crm/activities") => {
            (path.to_owned(), Some(note(&contact().await)), "crm.activity.create")
        }
        ("PUT", "/api/v1/crm/activities/{id}") => {
            let contact = contact().await;
            let mut changed = note(&contact);
            changed["subject"] = json!("Walked, changed");
            (made(note(&contact)).await, Some(changed), "crm.activity.update")
        }
        ("DELETE", "/api/v1/crm/activities/{id}") => {
            (made(note(&contact().await)).await, None, "crm.activity.delete")
        }
        ("POST", "/api/v1/crm/activities/{id}/complete") => {
            (made(task(contact().await).await).await, None, "crm.activity.complete")
        }
        ("POST", "/api/v1/crm/activities/{id}/reopen") => {
            let path = made(task(contact().await).await).await;
            let done = app.call("POST", &path.replace("/reopen", "/complete"), Some(admin), None).await;
            assert_eq!(done.status, 200, "{}", done.body);
            (path, None, "crm.activity.reopen")
        }
        _ => return None,
    })
}
