//! CRM imports and exports over HTTP: a CSV file of contacts or leads in
//! (row errors by line and column, nothing written when one is refused,
//! duplicates skipped however they are written) and the same columns out,
//! streamed, guarded against spreadsheet formulas and importing into
//! another tenant as the same records; the tenant wall, the permission
//! wall, the feature gate and the content type.

use portico_kernel::TenantId;
use portico_tenancy::Role;
use serde_json::{Value, json};

use crate::http::Response;
use crate::support::{TestApp, audited, code, rows};

const CONTACTS_IMPORT: &str = "/api/v1/crm/contacts/import";
const CONTACTS_EXPORT: &str = "/api/v1/crm/contacts/export";
const LEADS_IMPORT: &str = "/api/v1/crm/leads/import";
const LEADS_EXPORT: &str = "/api/v1/crm/leads/export";

/// A new tenant in Germany (national phone numbers read as German) and its owner's token.
async fn crm_tenant(app: &TestApp, slug: &str) -> (TenantId, String) {
    let tenant = app.tenant(slug).await;
    let path = format!("/api/v1/tenants/{tenant}/settings");
    let res =
        app.call("PUT", &path, Some(&app.admin_token()), Some(json!({"contact": {"country": "DE"}}))).await;
    assert_eq!(res.status, 200, "{}", res.body);
    (tenant, app.user_token(tenant, Role::Owner.permissions()))
}

/// `POST path` with a CSV body.
async fn upload(app: &TestApp, path: &str, token: &str, csv: &str) -> Response {
    app.call_with("POST", path, Some(token), &[("Content-Type", "text/csv")], Some(csv.as_bytes().to_vec()))
        .await
}

/// `POST path` with a filter, answered 200 with CSV: its text.
async fn download(app: &TestApp, path: &str, token: &str, filter: Value) -> String {
    let res = app.call("POST", path, Some(token), Some(filter)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.header("content-type"), Some("text/csv; charset=utf-8"));
    res.body
}

async fn created(app: &TestApp, token: &str, path: &str, body: Value) -> String {
    let res = app.call("POST", path, Some(token), Some(body)).await;
    assert_eq!(res.status, 201, "{}", res.body);
    res.json["data"]["id"].as_str().unwrap().to_owned()
}

const GOOD_CONTACTS: &str = "firstName,lastName,email,phone,type,companyName,tags\r\n\
    Sam,Taylor,Sam@Acme.example,030 1234567,customer,acme gmbh,vip;berlin\r\n\
    Ann,Lee,ann@home.example,,,,\r\n";

#[actix_web::test]
async fn a_contacts_file_is_imported_and_exported_in_the_same_columns() {
    let app = TestApp::spawn().await;
    let (acme, owner) = crm_tenant(&app, "acme").await;
    let company = created(&app, &owner, "/api/v1/crm/companies", json!({"name": "Acme GmbH"})).await;

    let res = upload(&app, CONTACTS_IMPORT, &owner, GOOD_CONTACTS).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"], json!({"rows": 2, "created": 2, "duplicates": 0, "skipped": []}));
    assert_eq!(rows(&app, "crm_contacts", acme).await, 2);
    assert_eq!(audited(&app, acme, "crm.contact.import").await, 1);

    // The contacts API sees them, normalised and linked.
    let list = app.call("GET", "/api/v1/crm/contacts?q=taylor", Some(&owner), None).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let sam = &list.json["data"][0];
    assert_eq!((sam["displayName"].clone(), sam["companyId"].clone()), (json!("Sam Taylor"), json!(company)));
    assert_eq!(sam["emails"][0]["address"], "sam@acme.example");
    assert_eq!(sam["phones"][0]["number"], "+49301234567");

    let csv = download(&app, CONTACTS_EXPORT, &owner, json!({})).await;
    assert_eq!(
        csv,
        "firstName,lastName,displayName,email,phone,type,status,companyName,tags,ownerEmail\r\n\
         Sam,Taylor,Sam Taylor,sam@acme.example,'+49301234567,customer,active,Acme GmbH,vip;berlin,\r\n\
         Ann,Lee,Ann Lee,ann@home.example,,prospect,active,,,\r\n",
        "a phone starting with + is guarded against spreadsheet formulas"
    );
    let vip = download(&app, CONTACTS_EXPORT, &owner, json!({"tag": "VIP", "contactType": "customer"})).await;
    assert_eq!(vip.lines().count(), 2, "the header and Sam: {vip}");
    assert_eq!(audited(&app, acme, "crm.contact.export").await, 2, "each export is audited");
}

#[actix_web::test]
async fn a_file_with_a_bad_row_answers_the_report_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (acme, owner) = crm_tenant(&app, "acme").await;
    let bad = "displayName,email,type,companyName\r\n\
        Sam,sam@acme.example,customer,\r\n\
        Ann,ann at acme,boss,\r\n\
        Bob,bob@acme.example,,Initech\r\n\
        Cy,cy@acme.example\r\n";
    let res = upload(&app, CONTACTS_IMPORT, &owner, bad).await;
    assert_eq!(code(&res), (422, json!("crm.import_refused")), "{}", res.body);
    let details = &res.json["error"]["details"];
    assert_eq!((details["rows"].clone(), details["errorCount"].clone()), (json!(4), json!(2)));
    assert_eq!(
        details["errors"],
        json!([
            {"line": 3, "code": "import.invalid_value", "reason": "type \"boss\" is not one of customer, prospect, partner, vendor"},
            {"line": 5, "code": "import.field_count", "reason": "expected 4 fields, found 2"},
        ]),
        "a line that does not read is reported before the rows are checked against the tenant"
    );
    let res = upload(
        &app,
        CONTACTS_IMPORT,
        &owner,
        &bad.replace(",boss,", ",,").replace("\r\nCy,cy@acme.example", ""),
    )
    .await;
    assert_eq!(code(&res), (422, json!("crm.import_refused")), "{}", res.body);
    let errors: Vec<(u64, String, String)> = res.json["error"]["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let column = e["reason"].as_str().unwrap().split(':').next().unwrap().to_owned();
            (e["line"].as_u64().unwrap(), e["code"].as_str().unwrap().to_owned(), column)
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (3, "import.invalid_value".to_owned(), "email".to_owned()),
            (4, "import.unknown_company".to_owned(), "companyName".to_owned()),
        ]
    );
    assert!(!res.body.contains("ann at acme"), "reasons repeat no address");
    assert_eq!(rows(&app, "crm_contacts", acme).await, 0, "not even Sam");
    assert_eq!(audited(&app, acme, "crm.contact.import").await, 0);

    let res = upload(&app, CONTACTS_IMPORT, &owner, "email,phone\r\nsam@acme.example,\r\n").await;
    assert_eq!(res.json["error"]["details"]["errors"][0]["code"], "import.missing_column");
    let res = upload(&app, CONTACTS_IMPORT, &owner, "").await;
    assert_eq!(res.json["error"]["details"]["errors"][0]["code"], "import.empty");
}

#[actix_web::test]
async fn rows_matching_existing_contacts_however_written_are_skipped() {
    let app = TestApp::spawn().await;
    let (acme, owner) = crm_tenant(&app, "acme").await;
    let jane = created(
        &app,
        &owner,
        "/api/v1/crm/contacts",
        json!({"displayName": "Jane", "emails": [{"address": "Jane@Example.com"}], "phones": [{"number": "+49 30 1234567"}]}),
    )
    .await;
    let file = "displayName,email,phone\r\n\
        Jane by mail,jane@example.com,\r\n\
        Jane by phone,,030 1234567\r\n\
        Jim,jim@example.com,\r\n\
        Jim again,JIM@example.com,\r\n";
    let res = upload(&app, CONTACTS_IMPORT, &owner, file).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        res.json["data"],
        json!({"rows": 4, "created": 1, "duplicates": 3, "skipped": [
            {"line": 2, "matchedBy": "email", "existingId": jane, "sameAsLine": null},
            {"line": 3, "matchedBy": "phone", "existingId": jane, "sameAsLine": null},
            {"line": 5, "matchedBy": "email", "existingId": null, "sameAsLine": 4},
        ]})
    );
    assert_eq!(rows(&app, "crm_contacts", acme).await, 2, "Jane and Jim");
    let res = app.call("GET", &format!("/api/v1/crm/contacts/{jane}"), Some(&owner), None).await;
    assert_eq!(res.json["data"]["displayName"], "Jane", "left as it was");
}

#[actix_web::test]
async fn an_export_imports_into_another_tenant_as_the_same_contacts() {
    let app = TestApp::spawn().await;
    let (_, owner) = crm_tenant(&app, "acme").await;
    created(&app, &owner, "/api/v1/crm/companies", json!({"name": "Acme GmbH"})).await;
    let file = "displayName,email,phone,type,status,companyName,tags\r\n\
        \"Taylor, Sam\",sam@acme.example;sam@home.example,+49 171 2345678;030 1234567,partner,inactive,Acme GmbH,=sum\r\n\
        @Ann,,,vendor,,,\r\n";
    assert_eq!(upload(&app, CONTACTS_IMPORT, &owner, file).await.status, 200);
    let exported = download(&app, CONTACTS_EXPORT, &owner, json!({})).await;

    let (globex, theirs) = crm_tenant(&app, "globex").await;
    created(&app, &theirs, "/api/v1/crm/companies", json!({"name": "Acme GmbH"})).await;
    let res = upload(&app, CONTACTS_IMPORT, &theirs, &exported).await;
    assert_eq!(res.json["data"]["created"], 2, "{}", res.body);
    assert_eq!(rows(&app, "crm_contacts", globex).await, 2);
    assert_eq!(download(&app, CONTACTS_EXPORT, &theirs, json!({})).await, exported);
}

#[actix_web::test]
async fn leads_are_imported_with_duplicates_skipped_and_exported_back() {
    let app = TestApp::spawn().await;
    let (acme, owner) = crm_tenant(&app, "acme").await;
    let old =
        created(&app, &owner, "/api/v1/crm/leads", json!({"name": "Old", "email": "jane@example.com"})).await;
    let file = "name,email,phone,companyName,source,status,estimatedValue,currency,tags\r\n\
        Jane,JANE@example.com,,,,,,,\r\n\
        Kim,kim@example.com,030 1234567,Acme GmbH,website,qualified,12000.50,EUR,fair\r\n";
    let res = upload(&app, LEADS_IMPORT, &owner, file).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        res.json["data"]["skipped"],
        json!([{"line": 2, "matchedBy": "email", "existingId": old, "sameAsLine": null}])
    );
    assert_eq!((rows(&app, "crm_leads", acme).await, audited(&app, acme, "crm.lead.import").await), (2, 1));

    let csv = download(&app, LEADS_EXPORT, &owner, json!({"status": "qualified"})).await;
    assert_eq!(
        csv,
        "name,email,phone,companyName,source,status,estimatedValue,currency,tags,ownerEmail\r\n\
         Kim,kim@example.com,'+49301234567,Acme GmbH,website,qualified,12000.50,EUR,fair,\r\n"
    );
    assert_eq!(audited(&app, acme, "crm.lead.export").await, 1);

    let res = upload(&app, LEADS_IMPORT, &owner, "name,status\r\nNed,converted\r\n").await;
    assert_eq!(code(&res), (422, json!("crm.import_refused")));
    assert_eq!(res.json["error"]["details"]["errors"][0]["line"], 2);
    assert_eq!(rows(&app, "crm_leads", acme).await, 2);
}

#[actix_web::test]
async fn a_leads_file_sent_twice_creates_nothing_the_second_time_rows_without_email_too() {
    let app = TestApp::spawn().await;
    let (acme, owner) = crm_tenant(&app, "acme").await;
    let file = "name,email,phone,companyName,tags\r\n\
        Kim,kim@example.com,,,fair\r\n\
        Ann Lee,,030 1234567,,\r\n\
        Bob Ray,,,Acme GmbH,FAIR\r\n\
        Cy,,,,\r\n";
    let send = || async {
        // The bulk routes ignore Idempotency-Key: the file itself must not duplicate.
        let headers = [("Content-Type", "text/csv"), ("Idempotency-Key", "same-file")];
        app.call_with("POST", LEADS_IMPORT, Some(&owner), &headers, Some(file.as_bytes().to_vec())).await
    };
    let first = send().await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(
        (first.json["data"]["created"].clone(), first.json["data"]["duplicates"].clone()),
        (json!(4), json!(0))
    );
    let again = send().await;
    assert_eq!(again.status, 200, "{}", again.body);
    let skipped = &again.json["data"]["skipped"];
    assert_eq!(
        (again.json["data"]["created"].clone(), again.json["data"]["duplicates"].clone()),
        (json!(0), json!(4)),
        "{}",
        again.body
    );
    let reasons: Vec<&str> =
        skipped.as_array().unwrap().iter().map(|s| s["matchedBy"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["email", "phone", "name", "name"]);
    assert_eq!(rows(&app, "crm_leads", acme).await, 4);
    assert_eq!(audited(&app, acme, "crm.lead.import").await, 2);

    let csv = download(&app, LEADS_EXPORT, &owner, json!({"tag": " Fair "})).await;
    let names: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(names, ["Kim", "Bob Ray"], "a tag in any case, trimmed");
    assert_eq!(audited(&app, acme, "crm.lead.export").await, 1);
}

#[actix_web::test]
async fn another_tenant_neither_matches_nor_sees_the_records() {
    let app = TestApp::spawn().await;
    let (acme, owner) = crm_tenant(&app, "acme").await;
    assert_eq!(
        upload(&app, CONTACTS_IMPORT, &owner, "displayName,email\r\nJane,jane@example.com\r\n").await.status,
        200
    );
    assert_eq!(upload(&app, LEADS_IMPORT, &owner, "name,email\r\nKim,kim@example.com\r\n").await.status, 200);

    let (globex, theirs) = crm_tenant(&app, "globex").await;
    for path in [CONTACTS_EXPORT, LEADS_EXPORT] {
        let csv = download(&app, path, &theirs, json!({})).await;
        assert_eq!(csv.lines().count(), 1, "the header alone: {csv}");
    }
    // Their Jane and Kim are not duplicates of acme's.
    let res = upload(&app, CONTACTS_IMPORT, &theirs, "displayName,email\r\nJane,jane@example.com\r\n").await;
    assert_eq!(
        (res.json["data"]["created"].clone(), res.json["data"]["duplicates"].clone()),
        (json!(1), json!(0))
    );
    let res = upload(&app, LEADS_IMPORT, &theirs, "name,email\r\nKim,kim@example.com\r\n").await;
    assert_eq!(res.json["data"]["created"], 1);
    assert_eq!((rows(&app, "crm_contacts", acme).await, rows(&app, "crm_contacts", globex).await), (1, 1));
    assert_eq!((rows(&app, "crm_leads", acme).await, rows(&app, "crm_leads", globex).await), (1, 1));
    assert_eq!(audited(&app, acme, "crm.contact.import").await, 1, "globex's import is globex's");

    // The owner of another tenant is no member here.
    let res =
        upload(&app, CONTACTS_IMPORT, &theirs, "displayName,ownerEmail\r\nSam,owner@acme.example\r\n").await;
    assert_eq!(res.json["error"]["details"]["errors"][0]["code"], "import.unknown_owner", "{}", res.body);
}

#[actix_web::test]
async fn the_routes_need_crm_write_the_crm_feature_and_a_csv_body() {
    let app = TestApp::spawn().await;
    let (acme, owner) = crm_tenant(&app, "acme").await;
    let reader = app.user_token(acme, &["crm:read"]);
    for (path, csv) in [(CONTACTS_IMPORT, GOOD_CONTACTS), (LEADS_IMPORT, "name\r\nKim\r\n")] {
        assert_eq!(code(&upload(&app, path, &reader, csv).await), (403, json!("auth.permission_denied")));
        let anonymous =
            app.call_with("POST", path, None, &[("Content-Type", "text/csv")], Some(csv.into())).await;
        assert_eq!(anonymous.status, 401);
        let json_body = app.call("POST", path, Some(&owner), Some(json!({"csv": csv}))).await;
        assert_eq!(code(&json_body), (415, json!("import.not_csv")));
    }
    for path in [CONTACTS_EXPORT, LEADS_EXPORT] {
        let res = app.call("POST", path, Some(&reader), Some(json!({}))).await;
        assert_eq!(code(&res), (403, json!("auth.permission_denied")), "exports carry personal data");
        let res = app.call("POST", path, Some(&owner), Some(json!({"colour": "red"}))).await;
        assert_eq!(code(&res), (422, json!("request.invalid_body")));
    }
    assert_eq!((rows(&app, "crm_contacts", acme).await, rows(&app, "crm_leads", acme).await), (0, 0));
    assert_eq!(audited(&app, acme, "crm.contact.export").await, 0);

    let features = format!("/api/v1/tenants/{acme}/features");
    let res =
        app.call("PUT", &features, Some(&app.admin_token()), Some(json!({"features": {"crm": false}}))).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let res = upload(&app, CONTACTS_IMPORT, &owner, GOOD_CONTACTS).await;
    assert_eq!(code(&res), (403, json!("tenancy.feature_disabled")));
    let res = app.call("POST", CONTACTS_EXPORT, Some(&owner), Some(json!({}))).await;
    assert_eq!(code(&res), (403, json!("tenancy.feature_disabled")));
    assert_eq!(rows(&app, "crm_contacts", acme).await, 0);
}

#[actix_web::test]
async fn the_walked_imports_and_exports_leave_their_audit_action() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    for path in [CONTACTS_IMPORT, LEADS_IMPORT] {
        let (csv, action) = csv_step("POST", path, "walk-check").unwrap();
        let res = upload(&app, path, &admin, &csv).await;
        assert_eq!((res.status, res.json["data"]["created"].clone()), (200, json!(1)), "{}", res.body);
        assert_eq!(audited(&app, portico_kernel::PLATFORM_TENANT_ID, action).await, 1, "{path}");
    }
    for path in [CONTACTS_EXPORT, LEADS_EXPORT] {
        let (path, body, action) = walk(&app, &admin, "POST", path, "walk-check").await.unwrap();
        assert_eq!(app.call("POST", &path, Some(&admin), body).await.status, 200);
        assert_eq!(audited(&app, portico_kernel::PLATFORM_TENANT_ID, action).await, 1, "{path}");
    }
    assert!(walk(&app, &admin, "POST", CONTACTS_IMPORT, "walk-check").await.is_none());
    assert!(csv_step("POST", "/api/v1/crm/contacts", "walk-check").is_none());
}

/// This area's mutating routes for the audit walk: the concrete path, the
/// body and the audit action each leaves (set up as needed), or `None` for
/// a route of another area. The imports take a CSV body, which this
/// signature cannot carry: see [`csv_step`].
pub(crate) async fn walk(
    app: &TestApp,
    admin: &str,
    method: &str,
    path: &str,
    request_id: &str,
) -> Option<(String, Option<Value>, &'static str)> {
    let _ = (app, admin, request_id);
    match (method, path) {
        ("POST", CONTACTS_EXPORT) => {
            Some((path.to_owned(), Some(json!({"status": "active"})), "crm.contact.export"))
        }
        ("POST", LEADS_EXPORT) => Some((path.to_owned(), Some(json!({"status": "new"})), "crm.lead.export")),
        _ => None,
    }
}

/// The CSV body of a walked import (sent as `text/csv`) and the audit
/// action it leaves, or `None` for another route.
pub(crate) fn csv_step(method: &str, path: &str, request_id: &str) -> Option<(String, &'static str)> {
    match (method, path) {
        ("POST", CONTACTS_IMPORT) => Some((
            format!("displayName,email\r\nWalked,walked@{request_id}.example\r\n"),
            "crm.contact.import",
        )),
        ("POST", LEADS_IMPORT) => {
            Some((format!("name,email\r\nWalked,walked@{request_id}.example\r\n"), "crm.lead.import"))
        }
        _ => None,
    }
}
