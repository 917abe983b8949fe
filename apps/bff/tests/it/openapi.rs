//! The OpenAPI document matches the routes, documents each one fully, is
//! committed fresh, and its docs page works with no internet.

use std::collections::BTreeSet;

use portico_bff::api::ROUTES;
use serde_json::Value;

use crate::support::TestApp;

fn document() -> Value {
    serde_json::from_str(portico_bff::openapi::json()).unwrap()
}

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    ops
}

#[actix_web::test]
async fn every_route_is_documented_and_every_documented_route_answers() {
    let listed: BTreeSet<(String, String)> =
        ROUTES.iter().map(|r| (r.method.to_owned(), r.path.to_owned())).collect();
    assert_eq!(listed, operations(&document()), "api::ROUTES and the OpenAPI document differ");

    let app = TestApp::spawn().await;
    let token = app.admin_token();
    let id = portico_kernel::TenantId::new().to_string();
    for route in ROUTES.iter() {
        let (method, path) = (route.method, route.path);
        let concrete = path.replace("{id}", &id);
        let res = app.call(method, &concrete, Some(&token), None).await;
        assert!(res.json.is_object(), "{method} {path}: answers JSON: {}", res.body);
        let code = res.json["error"]["code"].as_str().unwrap_or("");
        assert!(
            res.status != 405 && code != "http.route_not_found" && code != "http.method_not_allowed",
            "{method} {path} is listed but not served: {}",
            res.body
        );
    }
}

#[test]
fn every_operation_names_its_permission_schemas_and_examples() {
    let doc = document();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let has_example = |reference: &str| {
        let name = reference.trim_start_matches("#/components/schemas/");
        schemas.get(name).is_some_and(|s| s.get("example").is_some() || s.get("examples").is_some())
    };
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let name = format!("{method} {path}");
            let sign_in = [
                "/api/v1/auth/login",
                "/api/v1/auth/refresh",
                "/api/v1/auth/forgot-password",
                "/api/v1/auth/reset-password",
                "/api/v1/auth/verify-email",
                "/api/v1/auth/mfa/verify",
                "/api/v1/invitations/accept",
                "/api/v1/onboarding",
                "/api/v1/industries",
            ]
            .contains(&path.as_str());
            if path.starts_with("/api/v1/public/") || path.starts_with("/api/v1/dev/") || sign_in {
                assert_eq!(op["security"], serde_json::json!([{}]), "{name}: public, no credentials");
            } else if path.starts_with("/api/v1/auth/") {
                // One's own sessions and profile: any signed-in person, no permission.
                assert_eq!(
                    op["security"],
                    serde_json::json!([{"bearer": []}]),
                    "{name}: any signed-in person"
                );
            } else if path != "/api/v1/openapi.json" {
                let scopes = &op["security"][0]["bearer"];
                assert_eq!(
                    scopes.as_array().map(Vec::len),
                    Some(1),
                    "{name}: one permission as the bearer scope"
                );
            }
            if let Some(reference) =
                op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
            {
                assert!(has_example(reference), "{name}: request schema {reference} has an example");
            }
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.keys().any(|s| s.starts_with('2')), "{name}: a success response");
            for (status, response) in responses {
                if status != "204" && path != "/api/v1/openapi.json" {
                    let reference = response["content"]["application/json"]["schema"]["$ref"].as_str();
                    let csv = response["content"]["text/csv"]["schema"].is_object();
                    let image = response["content"]["image/png"]["schema"].is_object();
                    assert!(reference.is_some() || csv || image, "{name} {status}: a response schema");
                }
            }
        }
    }
    for name in ["Tenant", "PublicTenant", "PageMeta", "ErrorBody", "CreateTenant", "UpdateTenant"] {
        assert!(has_example(&format!("#/components/schemas/{name}")), "{name} has an example");
    }
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
}

/// Every property name under `value` that is not camelCase (the API's JSON is).
fn snake_properties(schema: &str, value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = map.get("properties") {
                found.extend(properties.keys().filter(|k| k.contains('_')).map(|k| format!("{schema}.{k}")));
            }
            map.values().for_each(|v| snake_properties(schema, v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| snake_properties(schema, v, found)),
        _ => {}
    }
}

#[test]
fn every_schema_names_its_properties_as_the_json_does() {
    // utoipa does not read serde's `rename_all_fields`: a struct variant's
    // fields would be documented in snake_case while the JSON is camelCase.
    let doc = document();
    let mut found = Vec::new();
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        snake_properties(name, schema, &mut found);
    }
    assert!(found.is_empty(), "snake_case properties: {found:?}");
}

#[test]
fn the_committed_document_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed.trim_end() == portico_bff::openapi::json().trim_end(),
        "docs/openapi.json is stale: run `just openapi` and commit it"
    );
}

#[actix_web::test]
async fn the_served_document_is_the_generated_one() {
    let app = TestApp::spawn().await;
    let res = app.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json, document());
}

#[actix_web::test]
async fn the_docs_page_loads_nothing_from_the_internet() {
    let app = TestApp::spawn().await;
    let page = app.call("GET", "/docs/", None, None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.header("content-type").unwrap_or("").starts_with("text/html"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"), "{csp}");

    let mut assets = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for piece in page.body.split(attribute).skip(1) {
            let target = piece.split('"').next().unwrap();
            assert!(!target.contains("://") && !target.starts_with("//"), "the page loads {target}");
            assets.push(target.trim_start_matches("./").to_owned());
        }
    }
    assert!(assets.iter().any(|a| a.ends_with(".js")), "{assets:?}");
    for asset in &assets {
        let res = app.call("GET", &format!("/docs/{asset}"), None, None).await;
        assert_eq!(res.status, 200, "/docs/{asset}");
    }
    let initializer = app.call("GET", "/docs/swagger-initializer.js", None, None).await;
    assert!(initializer.body.contains("/api/v1/openapi.json"), "{}", initializer.body);
    assert!(!initializer.body.contains("https://"), "no remote validator or spec: {}", initializer.body);
}
