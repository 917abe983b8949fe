//! Support tickets over HTTP: numbered per tenant, due by the tenant's SLA
//! policy (instants computed here by hand), clocks stopped while pending and
//! resumed, the first response set by an agent's first public comment,
//! internal comments hidden from the requester, deleted with their comments;
//! the permission wall (a viewer reads, does not write; the SLA policy is a
//! tenant setting, `tenants:write`), the tenant wall, the feature gate and
//! bad input.

use chrono::{DateTime, TimeDelta, Utc};
use portico_crm::SlaPolicy;
use portico_kernel::{PLATFORM_TENANT_ID, TenantId};
use portico_tenancy::Role;
use serde_json::{Value, json};

use crate::crm_activities_api::{contact_of, crm_tenant, staff, tenant_with_crm};
use crate::http::Response;
use crate::support::{TestApp, code, fields, id_of, number};

fn instant(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap_or_else(|| panic!("not an instant: {value}")).parse().unwrap()
}

async fn tickets_of(app: &TestApp, tenant: TenantId) -> i64 {
    number(app, "SELECT count(*) AS n FROM crm_tickets WHERE tenant_id = $1::uuid", &tenant.to_string()).await
}

/// Calendar time (no business hours, so a due time is its ticket's creation
/// plus the target, whenever the test runs): high 90 min / 10 h, urgent
/// 30 min / 24 h but normal 2 h / 4 h (urgent answers first, resolves last).
fn policy_body() -> Value {
    json!({
        "low": {"firstResponseMinutes": 1440, "resolutionMinutes": 10080},
        "normal": {"firstResponseMinutes": 120, "resolutionMinutes": 240},
        "high": {"firstResponseMinutes": 90, "resolutionMinutes": 600},
        "urgent": {"firstResponseMinutes": 30, "resolutionMinutes": 1440}
    })
}

/// A token of the tenant's administrator: `tenants:write` among the rest.
fn admin_of(app: &TestApp, tenant: TenantId) -> String {
    app.user_token(tenant, Role::Admin.permissions())
}

fn ticket_body(contact: &str, priority: &str) -> Value {
    json!({"subject": "Invoices page shows an error", "description": "Since this morning it says 500.",
           "requester": {"type": "contact", "contactId": contact}, "priority": priority})
}

#[actix_web::test]
async fn a_ticket_is_due_by_the_tenants_policy_and_its_clock_pauses_while_pending() {
    let app = TestApp::spawn().await;
    let tenant = crm_tenant(&app, "acme").await;
    let (agent, token) = staff(&app, tenant, "agent@acme.example").await;
    let contact = contact_of(&app, tenant).await;
    let set = app
        .call("PUT", "/api/v1/tickets/sla-policy", Some(&admin_of(&app, tenant)), Some(policy_body()))
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    let policy: SlaPolicy = serde_json::from_value(policy_body()).unwrap();
    let read = app.call("GET", "/api/v1/tickets/sla-policy", Some(&token), None).await;
    assert_eq!(serde_json::from_value::<SlaPolicy>(read.json["data"].clone()).unwrap(), policy);

    let opened = app.call("POST", "/api/v1/tickets", Some(&token), Some(ticket_body(&contact, "high"))).await;
    assert_eq!(opened.status, 201, "{}", opened.body);
    let ticket = &opened.json["data"];
    assert_eq!((ticket["number"].clone(), ticket["status"].clone()), (json!(1), json!("open")));
    // High, in calendar time: 90 minutes and 10 hours after it was opened (the default would be 4 h / 1 day).
    let created = instant(&ticket["createdAt"]);
    assert_eq!(instant(&ticket["firstResponseDue"]), created + TimeDelta::minutes(90));
    assert_eq!(instant(&ticket["resolutionDue"]), created + TimeDelta::hours(10));
    let id = id_of(&opened);
    let second = app.call("POST", "/api/v1/tickets", Some(&token), Some(ticket_body(&contact, "low"))).await;
    assert_eq!(second.json["data"]["number"], 2);

    let status = |status: &str| json!({"status": status});
    let path = format!("/api/v1/tickets/{id}/status");
    let pending = app.call("POST", &path, Some(&token), Some(status("pending"))).await;
    assert_eq!(pending.status, 200, "{}", pending.body);
    let stopped = instant(&pending.json["data"]["slaStoppedAt"]);
    let due = instant(&ticket["resolutionDue"]);
    assert_eq!(
        instant(&pending.json["data"]["resolutionDue"]),
        due,
        "due times move when the clock restarts"
    );
    actix_web::rt::time::sleep(std::time::Duration::from_millis(1200)).await;
    let before = Utc::now();
    let open = app.call("POST", &path, Some(&token), Some(status("open"))).await;
    let after = Utc::now();
    assert_eq!(open.status, 200, "{}", open.body);
    assert!(open.json["data"]["slaStoppedAt"].is_null());
    // Resumed between `before` and `after`: due later by the time it stood still, so the time
    // left when it stopped (here, calendar time) is left again.
    let resumed = instant(&open.json["data"]["resolutionDue"]);
    assert!(stopped > created && stopped < due);
    let left = due - stopped;
    assert!(
        before - TimeDelta::milliseconds(1) + left <= resumed && resumed <= after + left,
        "due {due}, stopped {stopped}, resumed between {before} and {after}: {resumed}"
    );
    let stored = number(
        &app,
        "SELECT count(*) AS n FROM crm_tickets WHERE id = $1::uuid AND sla_stopped_at IS NULL AND status = 'open'",
        &id,
    )
    .await;
    assert_eq!(stored, 1);

    // The agent's first public comment is the first response; an internal one is not.
    let internal = json!({"body": "Check the logs", "internal": true});
    let noted =
        app.call("POST", &format!("/api/v1/tickets/{id}/comments"), Some(&token), Some(internal)).await;
    assert_eq!(noted.status, 201, "{}", noted.body);
    let after_note = app.call("GET", &format!("/api/v1/tickets/{id}"), Some(&token), None).await;
    assert!(after_note.json["data"]["firstRespondedAt"].is_null());
    let reply = app
        .call(
            "POST",
            &format!("/api/v1/tickets/{id}/comments"),
            Some(&token),
            Some(json!({"body": "We are on it"})),
        )
        .await;
    assert_eq!(reply.json["data"]["author"], json!({"type": "agent", "userId": agent}));
    let answered = app.call("GET", &format!("/api/v1/tickets/{id}"), Some(&token), None).await;
    assert_eq!(answered.json["data"]["firstRespondedAt"], reply.json["data"]["createdAt"]);
}

#[actix_web::test]
async fn the_requester_sees_the_public_comments_only_and_reopens_a_pending_ticket_by_replying() {
    let app = TestApp::spawn().await;
    let tenant = crm_tenant(&app, "acme").await;
    let (_, agent) = staff(&app, tenant, "agent@acme.example").await;
    let (customer, requester) = staff(&app, tenant, "customer@acme.example").await;
    let body = json!({"subject": "Export fails", "description": "The CSV export stops at 1,000 rows.",
                      "requester": {"type": "user", "userId": customer}, "priority": "normal"});
    let id = id_of(&app.call("POST", "/api/v1/tickets", Some(&agent), Some(body)).await);
    let comments = format!("/api/v1/tickets/{id}/comments");
    for (token, body) in [
        (&agent, json!({"body": "Known bug in the exporter", "internal": true})),
        (&agent, json!({"body": "We are looking into it"})),
    ] {
        assert_eq!(app.call("POST", &comments, Some(token), Some(body)).await.status, 201);
    }
    let pending = app
        .call(
            "POST",
            &format!("/api/v1/tickets/{id}/status"),
            Some(&agent),
            Some(json!({"status": "pending"})),
        )
        .await;
    assert_eq!(pending.json["data"]["status"], "pending");
    let reply = app.call("POST", &comments, Some(&requester), Some(json!({"body": "Still failing"}))).await;
    assert_eq!((reply.status, reply.json["data"]["author"].clone()), (201, json!({"type": "requester"})));
    let ticket = app.call("GET", &format!("/api/v1/tickets/{id}"), Some(&agent), None).await;
    assert_eq!(ticket.json["data"]["status"], "open", "the requester's reply reopens it");
    assert!(ticket.json["data"]["firstRespondedAt"].is_string());

    let seen = app.call("GET", &comments, Some(&requester), None).await;
    let bodies: Vec<&str> =
        seen.json["data"].as_array().unwrap().iter().map(|c| c["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["We are looking into it", "Still failing"]);
    assert_eq!(seen.json["meta"]["total"], 2);
    assert!(!seen.body.contains("Known bug"), "internal comments never reach the requester");
    let all = app.call("GET", &comments, Some(&agent), None).await;
    assert_eq!(all.json["meta"]["total"], 3);
    let internal =
        app.call("POST", &comments, Some(&requester), Some(json!({"body": "psst", "internal": true}))).await;
    assert_eq!(
        (code(&internal), fields(&internal)),
        ((422, json!("crm.invalid")), vec!["internal".to_owned()])
    );
    assert_eq!(
        number(&app, "SELECT count(*) AS n FROM crm_ticket_comments WHERE ticket_id = $1::uuid", &id).await,
        3
    );
}

#[actix_web::test]
async fn a_viewer_reads_tickets_but_does_not_write_them() {
    let app = TestApp::spawn().await;
    let tenant = crm_tenant(&app, "acme").await;
    let (member, agent) = staff(&app, tenant, "agent@acme.example").await;
    let contact = contact_of(&app, tenant).await;
    let id =
        id_of(&app.call("POST", "/api/v1/tickets", Some(&agent), Some(ticket_body(&contact, "high"))).await);
    let viewer = app.user_token(tenant, Role::Viewer.permissions());
    for path in [
        "/api/v1/tickets".to_owned(),
        format!("/api/v1/tickets/{id}"),
        format!("/api/v1/tickets/{id}/comments"),
        "/api/v1/tickets/sla-policy".to_owned(),
    ] {
        let res = app.call("GET", &path, Some(&viewer), None).await;
        assert_eq!(res.status, 200, "{path}: {}", res.body);
    }
    let writes = [
        ("POST", "/api/v1/tickets".to_owned(), ticket_body(&contact, "low")),
        ("PUT", "/api/v1/tickets/sla-policy".to_owned(), policy_body()),
        (
            "PUT",
            format!("/api/v1/tickets/{id}"),
            json!({"subject": "x", "description": "y", "priority": "low"}),
        ),
        ("POST", format!("/api/v1/tickets/{id}/comments"), json!({"body": "Hello"})),
        ("POST", format!("/api/v1/tickets/{id}/assign"), json!({"assignee": member})),
        ("POST", format!("/api/v1/tickets/{id}/status"), json!({"status": "resolved"})),
        ("DELETE", format!("/api/v1/tickets/{id}"), Value::Null),
    ];
    for (method, path, body) in writes {
        let body = (!body.is_null()).then_some(body);
        let res = app.call(method, &path, Some(&viewer), body).await;
        assert_eq!(res.status, 403, "{method} {path}: {}", res.body);
    }
    // A CRM-only role has no say over tickets, and no token none at all.
    let crm_only = app.user_token(tenant, &["crm:read", "crm:write"]);
    assert_eq!(app.call("GET", "/api/v1/tickets", Some(&crm_only), None).await.status, 403);
    let delete = app.call("DELETE", &format!("/api/v1/tickets/{id}"), Some(&crm_only), None).await;
    assert_eq!(delete.status, 403, "{}", delete.body);
    assert_eq!(app.call("GET", "/api/v1/tickets", None, None).await.status, 401);
    assert_eq!(tickets_of(&app, tenant).await, 1);
    let unchanged = app.call("GET", &format!("/api/v1/tickets/{id}"), Some(&viewer), None).await;
    assert_eq!(
        (unchanged.json["data"]["status"].clone(), unchanged.json["data"]["assignee"].clone()),
        (json!("open"), Value::Null)
    );
    let plain = tenant_with_crm(&app, "plain", false).await;
    let owner = app.user_token(plain, Role::Owner.permissions());
    let gated = app.call("GET", "/api/v1/tickets", Some(&owner), None).await;
    assert_eq!(code(&gated), (403, json!("tenancy.feature_disabled")));
}

#[actix_web::test]
async fn another_tenants_tickets_are_not_found_and_untouched() {
    let app = TestApp::spawn().await;
    let acme = crm_tenant(&app, "acme").await;
    let globex = crm_tenant(&app, "globex").await;
    let (_, ours) = staff(&app, acme, "agent@acme.example").await;
    let (theirs_member, theirs) = staff(&app, globex, "agent@globex.example").await;
    let contact = contact_of(&app, acme).await;
    let id =
        id_of(&app.call("POST", "/api/v1/tickets", Some(&ours), Some(ticket_body(&contact, "urgent"))).await);
    for (method, path, body) in [
        ("GET", format!("/api/v1/tickets/{id}"), None),
        ("GET", format!("/api/v1/tickets/{id}/comments"), None),
        (
            "PUT",
            format!("/api/v1/tickets/{id}"),
            Some(json!({"subject": "x", "description": "y", "priority": "low"})),
        ),
        ("POST", format!("/api/v1/tickets/{id}/comments"), Some(json!({"body": "Hello"}))),
        ("POST", format!("/api/v1/tickets/{id}/assign"), Some(json!({"assignee": theirs_member}))),
        ("POST", format!("/api/v1/tickets/{id}/status"), Some(json!({"status": "resolved"}))),
        ("DELETE", format!("/api/v1/tickets/{id}"), None),
    ] {
        let res = app.call(method, &path, Some(&theirs), body).await;
        assert_eq!(code(&res), (404, json!("crm.ticket_not_found")), "{method} {path}");
        assert!(!res.body.contains("Invoices page"));
    }
    let listed = app.call("GET", "/api/v1/tickets", Some(&theirs), None).await;
    assert_eq!((listed.json["meta"]["total"].clone(), listed.json["data"].clone()), (json!(0), json!([])));
    // Nor can globex open a ticket for acme's contact.
    let foreign =
        app.call("POST", "/api/v1/tickets", Some(&theirs), Some(ticket_body(&contact, "low"))).await;
    assert_eq!(
        (code(&foreign), fields(&foreign)),
        ((422, json!("crm.invalid")), vec!["requester.contactId".to_owned()])
    );
    assert_eq!((tickets_of(&app, globex).await, tickets_of(&app, acme).await), (0, 1));
    let ticket = app.call("GET", &format!("/api/v1/tickets/{id}"), Some(&ours), None).await;
    assert_eq!(
        (
            ticket.json["data"]["status"].clone(),
            ticket.json["data"]["priority"].clone(),
            ticket.json["data"]["assignee"].clone()
        ),
        (json!("open"), json!("urgent"), Value::Null)
    );
    assert_eq!(
        number(&app, "SELECT count(*) AS n FROM crm_ticket_comments WHERE ticket_id = $1::uuid", &id).await,
        0
    );
}

#[actix_web::test]
async fn bad_tickets_and_moves_are_refused_with_stable_codes_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let tenant = crm_tenant(&app, "acme").await;
    let (_, token) = staff(&app, tenant, "agent@acme.example").await;
    let contact = contact_of(&app, tenant).await;
    let outsider = portico_kernel::UserId::new();
    let cases = [
        (
            json!({"subject": "", "description": "y", "requester": {"type": "contact", "contactId": contact}}),
            "crm.invalid",
            "subject",
        ),
        (
            json!({"subject": "x", "description": "y", "requester": {"type": "user", "userId": outsider}}),
            "crm.invalid",
            "requester.userId",
        ),
        (
            json!({"subject": "x", "description": "y", "requester": {"type": "contact", "contactId": contact}, "assignee": outsider}),
            "crm.invalid",
            "assignee",
        ),
        (
            json!({"subject": "x", "description": "y", "requester": {"type": "contact", "contactId": contact}, "priority": "asap"}),
            "request.invalid_body",
            "priority",
        ),
    ];
    for (body, expected, field) in cases {
        let res = app.call("POST", "/api/v1/tickets", Some(&token), Some(body.clone())).await;
        assert_eq!(
            (code(&res), fields(&res)),
            ((422, json!(expected)), vec![field.to_owned()]),
            "{body}: {}",
            res.body
        );
    }
    assert_eq!(tickets_of(&app, tenant).await, 0);
    let mut bad_policy = policy_body();
    bad_policy["high"]["firstResponseMinutes"] = json!(5000);
    let refused =
        app.call("PUT", "/api/v1/tickets/sla-policy", Some(&admin_of(&app, tenant)), Some(bad_policy)).await;
    assert_eq!(
        (code(&refused), fields(&refused)),
        ((422, json!("crm.invalid")), vec!["high.firstResponseMinutes".to_owned()])
    );
    assert_eq!(
        number(
            &app,
            "SELECT count(*) AS n FROM crm_settings WHERE tenant_id = $1::uuid",
            &tenant.to_string()
        )
        .await,
        0
    );

    let id =
        id_of(&app.call("POST", "/api/v1/tickets", Some(&token), Some(ticket_body(&contact, "low"))).await);
    let status = format!("/api/v1/tickets/{id}/status");
    let closed = app.call("POST", &status, Some(&token), Some(json!({"status": "closed"}))).await;
    assert_eq!(code(&closed), (409, json!("crm.ticket_transition")));
    let assign = app
        .call(
            "POST",
            &format!("/api/v1/tickets/{id}/assign"),
            Some(&token),
            Some(json!({"assignee": outsider})),
        )
        .await;
    assert_eq!((code(&assign), fields(&assign)), ((422, json!("crm.invalid")), vec!["assignee".to_owned()]));
    let empty = app
        .call("POST", &format!("/api/v1/tickets/{id}/comments"), Some(&token), Some(json!({"body": ""})))
        .await;
    assert_eq!(code(&empty), (422, json!("crm.invalid")));
    let filter = app.call("GET", "/api/v1/tickets?status=solved", Some(&token), None).await;
    assert_eq!(filter.status, 400, "{}", filter.body);
    let stored = number(
        &app,
        "SELECT count(*) AS n FROM crm_tickets WHERE id = $1::uuid AND status = 'open' AND assignee_id IS NULL",
        &id,
    )
    .await;
    assert_eq!(stored, 1);
    assert_eq!(
        number(&app, "SELECT count(*) AS n FROM crm_ticket_comments WHERE ticket_id = $1::uuid", &id).await,
        0
    );
    // Resolved, then closed: a closed ticket takes nothing more.
    app.call("POST", &status, Some(&token), Some(json!({"status": "resolved"}))).await;
    assert_eq!(app.call("POST", &status, Some(&token), Some(json!({"status": "closed"}))).await.status, 200);
    let late = app
        .call("POST", &format!("/api/v1/tickets/{id}/comments"), Some(&token), Some(json!({"body": "Hi"})))
        .await;
    assert_eq!(code(&late), (409, json!("crm.ticket_closed")));
}

#[actix_web::test]
async fn lists_filter_by_status_priority_and_breach_and_sort_by_creation_or_either_due_time() {
    let app = TestApp::spawn().await;
    let tenant = crm_tenant(&app, "acme").await;
    let (member, token) = staff(&app, tenant, "agent@acme.example").await;
    let contact = contact_of(&app, tenant).await;
    let set = app
        .call("PUT", "/api/v1/tickets/sla-policy", Some(&admin_of(&app, tenant)), Some(policy_body()))
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    // Normal (2 h / 4 h), then urgent (30 min / 24 h): urgent is answered first, resolved last.
    let normal = id_of(
        &app.call("POST", "/api/v1/tickets", Some(&token), Some(ticket_body(&contact, "normal"))).await,
    );
    let urgent = id_of(
        &app.call("POST", "/api/v1/tickets", Some(&token), Some(ticket_body(&contact, "urgent"))).await,
    );
    app.call(
        "POST",
        &format!("/api/v1/tickets/{normal}/assign"),
        Some(&token),
        Some(json!({"assignee": member})),
    )
    .await;
    let ids = |res: &Response| -> Vec<String> {
        res.json["data"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect()
    };
    let get = |query: &str| {
        let path = format!("/api/v1/tickets{query}");
        let token = token.clone();
        let app = &app;
        async move { app.call("GET", &path, Some(&token), None).await }
    };
    let (newest_first, oldest_first) = ([urgent.clone(), normal.clone()], [normal.clone(), urgent.clone()]);
    assert_eq!(ids(&get("").await), newest_first, "newest first by default");
    assert_eq!(ids(&get("?sort=-createdAt").await), newest_first);
    assert_eq!(ids(&get("?sort=createdAt").await), oldest_first);
    assert_eq!(ids(&get("?sort=firstResponseDue").await), newest_first, "urgent is to be answered first");
    assert_eq!(ids(&get("?sort=resolutionDue").await), oldest_first, "normal is to be resolved first");
    for gone in ["newest", "due", "created_at"] {
        let res = get(&format!("?sort={gone}")).await;
        assert_eq!(code(&res), (400, json!("request.invalid_query")), "{gone}: {}", res.body);
    }
    assert_eq!(ids(&get("?priority=normal").await), std::slice::from_ref(&normal));
    assert_eq!(ids(&get(&format!("?assigneeId={member}")).await), std::slice::from_ref(&normal));
    assert_eq!(ids(&get(&format!("?requesterContactId={contact}&status=open")).await).len(), 2);
    assert_eq!(ids(&get("?breached=true").await), Vec::<String>::new(), "both just opened");
    assert_eq!(ids(&get("?breached=false").await).len(), 2);
}

#[actix_web::test]
async fn a_ticket_is_deleted_with_its_comments_in_one_audited_change() {
    let app = TestApp::spawn().await;
    let tenant = crm_tenant(&app, "acme").await;
    let (_, token) = staff(&app, tenant, "agent@acme.example").await;
    let contact = contact_of(&app, tenant).await;
    let id =
        id_of(&app.call("POST", "/api/v1/tickets", Some(&token), Some(ticket_body(&contact, "high"))).await);
    let kept =
        id_of(&app.call("POST", "/api/v1/tickets", Some(&token), Some(ticket_body(&contact, "low"))).await);
    for (ticket, body) in [(&id, json!({"body": "We are on it"})), (&kept, json!({"body": "Noted"}))] {
        let path = format!("/api/v1/tickets/{ticket}/comments");
        assert_eq!(app.call("POST", &path, Some(&token), Some(body)).await.status, 201);
    }
    let path = format!("/api/v1/tickets/{id}");
    let deleted = app.call("DELETE", &path, Some(&token), None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert_eq!(code(&app.call("GET", &path, Some(&token), None).await), (404, json!("crm.ticket_not_found")));
    let comments = "SELECT count(*) AS n FROM crm_ticket_comments WHERE ticket_id = $1::uuid";
    assert_eq!((number(&app, comments, &id).await, number(&app, comments, &kept).await), (0, 1));
    assert_eq!(tickets_of(&app, tenant).await, 1, "the other ticket stays");
    let audited =
        "SELECT count(*) AS n FROM audit_log WHERE action = 'crm.ticket.delete' AND resource_id = $1";
    assert_eq!(number(&app, audited, &id).await, 1);
    let again = app.call("DELETE", &path, Some(&token), None).await;
    assert_eq!(code(&again), (404, json!("crm.ticket_not_found")));
    assert_eq!(number(&app, audited, &id).await, 1);
}

#[actix_web::test]
async fn the_sla_policy_is_a_tenant_setting_that_ticket_writers_cannot_change() {
    let app = TestApp::spawn().await;
    let tenant = crm_tenant(&app, "acme").await;
    let (_, staff_token) = staff(&app, tenant, "agent@acme.example").await;
    let path = "/api/v1/tickets/sla-policy";
    // Staff work tickets (`tickets:write`) but do not hold the tenant's settings.
    let tickets_only = app.user_token(tenant, &["tickets:read", "tickets:write"]);
    for token in [&staff_token, &tickets_only] {
        let refused = app.call("PUT", path, Some(token), Some(policy_body())).await;
        assert_eq!(refused.status, 403, "{}", refused.body);
    }
    let tenant_id = tenant.to_string();
    let settings = "SELECT count(*) AS n FROM crm_settings WHERE tenant_id = $1::uuid";
    assert_eq!(number(&app, settings, &tenant_id).await, 0);
    let default = app.call("GET", path, Some(&staff_token), None).await;
    assert_eq!(
        serde_json::from_value::<SlaPolicy>(default.json["data"].clone()).unwrap(),
        SlaPolicy::default()
    );
    // `tenants:write` is what it takes (with the feature on).
    let settings_writer = app.user_token(tenant, &["tenants:write"]);
    let set = app.call("PUT", path, Some(&settings_writer), Some(policy_body())).await;
    assert_eq!(set.status, 200, "{}", set.body);
    let read = app.call("GET", path, Some(&staff_token), None).await;
    assert_eq!(read.json["data"], set.json["data"]);
    let audited = "SELECT count(*) AS n FROM audit_log WHERE tenant_id = $1::uuid AND action = 'crm.ticket.sla_policy.update'";
    assert_eq!((number(&app, audited, &tenant_id).await, number(&app, settings, &tenant_id).await), (1, 1));
}

#[actix_web::test]
async fn each_ticket_mutation_leaves_one_audit_row_and_replays() {
    let app = TestApp::spawn().await;
    crate::crm_activities_api::walk_area(
        &app,
        "/api/v1/tickets",
        |app, admin, method, path, id| async move { walk(app, &admin, method, path, &id).await },
    )
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
    // A ticket of the platform tenant made for the walked request (its own request id), and its path.
    let made = || async move {
        let contact = contact_of(app, PLATFORM_TENANT_ID).await;
        let res =
            app.call("POST", "/api/v1/tickets", Some(admin), Some(ticket_body(&contact, "normal"))).await;
        assert_eq!(res.status, 201, "{}", res.body);
        path.replace("{id}", &id_of(&res))
    };
    Some(match (method, path) {
        ("POST", "/api/v1/tickets") => (
            path.to_owned(),
            Some(ticket_body(&contact_of(app, PLATFORM_TENANT_ID).await, "high")),
            "crm.ticket.create",
        ),
        ("PUT", "/api/v1/tickets/sla-policy") => {
            (path.to_owned(), Some(policy_body()), "crm.ticket.sla_policy.update")
        }
        ("PUT", "/api/v1/tickets/{id}") => (
            made().await,
            Some(
                json!({"subject": "Walked", "description": format!("Walked by {request_id}"), "priority": "urgent"}),
            ),
            "crm.ticket.update",
        ),
        ("DELETE", "/api/v1/tickets/{id}") => (made().await, None, "crm.ticket.delete"),
        ("POST", "/api/v1/tickets/{id}/comments") => {
            (made().await, Some(json!({"body": format!("Walked by {request_id}")})), "crm.ticket.comment")
        }
        ("POST", "/api/v1/tickets/{id}/assign") => {
            let email = format!("agent-{request_id}@portico.example");
            let agent = app.person(&email, PLATFORM_TENANT_ID, Role::PlatformAdmin).await;
            (made().await, Some(json!({"assignee": agent})), "crm.ticket.assign")
        }
        ("POST", "/api/v1/tickets/{id}/status") => {
            (made().await, Some(json!({"status": "pending"})), "crm.ticket.status")
        }
        _ => return None,
    })
}
