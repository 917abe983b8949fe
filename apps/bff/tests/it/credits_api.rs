//! Credits over HTTP: the platform's stock, prices and packages; a tenant's
//! purchases, reservations and low-balance alert; the tenant wall, the
//! permission wall and bad input.

use std::time::{Duration, Instant};

use portico_kernel::{NewJob, PlatformContext, TenantId, UserId};
use portico_tenancy::Role;
use serde_json::{Value, json};

use crate::http::Response;
use crate::support::{TestApp, code, number};

/// The tenant's wallet of `channel`: (balance, held), as stored.
async fn stored_wallet(app: &TestApp, tenant: TenantId, channel: &str) -> (i64, i64) {
    let key = format!("{tenant}/{channel}");
    let balance = number(
        app,
        "SELECT coalesce(sum(balance), 0)::int8 AS n FROM credit_wallets \
         WHERE tenant_id::text || '/' || channel = $1",
        &key,
    )
    .await;
    let held = number(
        app,
        "SELECT coalesce(sum(held), 0)::int8 AS n FROM credit_wallets WHERE tenant_id::text || '/' || channel = $1",
        &key,
    )
    .await;
    (balance, held)
}

/// The platform's stock of `channel`, as stored.
async fn stock_of(app: &TestApp, channel: &str) -> i64 {
    number(
        app,
        "SELECT coalesce(sum(balance), 0)::int8 AS n FROM credit_master_wallets WHERE channel = $1",
        channel,
    )
    .await
}

/// The `credits.low_balance` jobs enqueued for `tenant`.
async fn alerts(app: &TestApp, tenant: TenantId) -> i64 {
    number(
        app,
        "SELECT count(*) AS n FROM jobs WHERE kind = 'credits.low_balance' AND tenant_id = $1::uuid",
        &tenant.to_string(),
    )
    .await
}

/// `method path` with an `Idempotency-Key` and an optional JSON body.
async fn keyed(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    key: &str,
    body: Option<Value>,
) -> Response {
    app.call_with(
        method,
        path,
        Some(token),
        &[("Idempotency-Key", key)],
        body.map(|b| b.to_string().into_bytes()),
    )
    .await
}

/// `method path` as platform staff acting on `tenant`, with an `Idempotency-Key`.
async fn on_tenant(
    app: &TestApp,
    tenant: TenantId,
    method: &str,
    path: &str,
    token: &str,
    key: &str,
    body: Value,
) -> Response {
    let tenant = tenant.to_string();
    let headers = [("Idempotency-Key", key), ("X-Tenant-ID", tenant.as_str())];
    app.call_with(method, path, Some(token), &headers, Some(body.to_string().into_bytes())).await
}

fn price_list() -> Value {
    json!({"prices": [
        {"channel": "sms", "currency": "EUR", "tiers": [
            {"fromQuantity": 1, "unitPrice": "0.08"}, {"fromQuantity": 10000, "unitPrice": "0.065"}]},
        {"channel": "email", "currency": "EUR", "tiers": [{"fromQuantity": 1, "unitPrice": "0.001"}]},
    ]})
}

/// Stocks the platform with `amount` credits of `channel`; the top-up's answer.
async fn top_up(app: &TestApp, admin: &str, channel: &str, amount: i64) -> Response {
    let key = format!("top-up-{}", UserId::new());
    let body = json!({"channel": channel, "amount": amount, "note": "Provider order"});
    let res = keyed(app, "POST", "/api/v1/credits/master-wallet/top-up", admin, &key, Some(body)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    res
}

/// The platform stocked with SMS and priced; a new tenant whose owner
/// bought `sms` SMS credits: (tenant, owner's token).
async fn funded(app: &TestApp, admin: &str, slug: &str, sms: i64) -> (TenantId, String) {
    top_up(app, admin, "sms", 1_000).await;
    let priced = app.call("PUT", "/api/v1/credits/pricing", Some(admin), Some(price_list())).await;
    assert_eq!(priced.status, 200, "{}", priced.body);
    let tenant = app.tenant(slug).await;
    let owner = app.user_token(tenant, Role::Owner.permissions());
    let key = format!("buy-{slug}");
    let res =
        keyed(app, "POST", "/api/v1/credits/wallets/sms/add", &owner, &key, Some(json!({"amount": sms})))
            .await;
    assert_eq!(res.status, 200, "{}", res.body);
    (tenant, owner)
}

async fn reserve(app: &TestApp, token: &str, key: &str, amount: i64) -> Response {
    let body = json!({"channel": "sms", "amount": amount});
    keyed(app, "POST", "/api/v1/credits/reservations", token, key, Some(body)).await
}

#[actix_web::test]
async fn a_package_bought_fills_the_wallets_from_the_platforms_stock_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token_of(UserId::new());

    let sms = top_up(&app, &admin, "sms", 10_000).await;
    assert_eq!(sms.json["data"]["channel"], json!("sms"));
    assert_eq!(sms.json["data"]["balance"], json!(10_000));
    top_up(&app, &admin, "email", 50_000).await;
    let master = app.call("GET", "/api/v1/credits/master-wallet", Some(&admin), None).await;
    assert_eq!(master.status, 200, "{}", master.body);
    let stocked: Vec<(Value, Value)> = master.json["data"]["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["channel"].clone(), w["balance"].clone()))
        .collect();
    assert_eq!(
        stocked,
        [(json!("sms"), json!(10_000)), (json!("whatsapp"), json!(0)), (json!("email"), json!(50_000))]
    );

    let priced = app.call("PUT", "/api/v1/credits/pricing", Some(&admin), Some(price_list())).await;
    assert_eq!(priced.status, 200, "{}", priced.body);
    assert_eq!(priced.json["data"]["prices"].as_array().unwrap().len(), 2);

    let starter = json!({
        "name": "Starter", "description": "1,000 SMS and 5,000 emails.",
        "credits": [{"channel": "sms", "amount": 1000}, {"channel": "email", "amount": 5000}],
        "price": {"amountMinor": 8900, "currency": "EUR"}, "validityDays": 365
    });
    let created = app.call("POST", "/api/v1/credits/packages", Some(&admin), Some(starter)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.json["data"]["active"], json!(true));
    let package = created.json["data"]["id"].as_str().unwrap().to_owned();

    let acme = app.tenant("acme").await;
    let owner = app.user_token(acme, Role::Owner.permissions());
    let prices = app.call("GET", "/api/v1/credits/pricing", Some(&owner), None).await;
    assert_eq!(prices.json["data"], priced.json["data"], "tenants read the price list");
    let listed = app.call("GET", "/api/v1/credits/packages", Some(&owner), None).await;
    assert_eq!(listed.json["data"][0]["name"], json!("Starter"));

    let path = format!("/api/v1/credits/packages/{package}/purchase");
    let bought = keyed(&app, "POST", &path, &owner, "buy-starter-1", None).await;
    assert_eq!(bought.status, 201, "{}", bought.body);
    let data = &bought.json["data"];
    assert_eq!((data["reference"].clone(), data["replayed"].clone()), (json!("buy-starter-1"), json!(false)));
    let filled: Vec<(Value, Value)> = data["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["channel"].clone(), w["balance"].clone()))
        .collect();
    assert_eq!(filled, [(json!("sms"), json!(1000)), (json!("email"), json!(5000))]);
    assert_eq!(data["price"], json!({"amountMinor": 8900, "currency": "EUR"}));
    assert_eq!(
        (stored_wallet(&app, acme, "sms").await, stored_wallet(&app, acme, "email").await),
        ((1000, 0), (5000, 0))
    );
    assert_eq!(
        (stock_of(&app, "sms").await, stock_of(&app, "email").await),
        (9_000, 45_000),
        "moved, not made"
    );
    let sql =
        "SELECT coalesce(sum(total_minor), 0)::int8 AS n FROM credit_purchases WHERE tenant_id = $1::uuid";
    assert_eq!(number(&app, sql, &acme.to_string()).await, 8900, "one purchase, at the package's price");

    // The same key again: the first answer, and nothing moves.
    let again = keyed(&app, "POST", &path, &owner, "buy-starter-1", None).await;
    assert_eq!((again.status, again.header("idempotency-replayed")), (201, Some("true")));
    assert_eq!(again.body, bought.body);
    assert_eq!(stored_wallet(&app, acme, "sms").await, (1000, 0));
    assert_eq!((stock_of(&app, "sms").await, stock_of(&app, "email").await), (9_000, 45_000));
    assert_eq!(number(&app, sql, &acme.to_string()).await, 8900);

    // The same key for another request: refused, nothing moves.
    let bigger = json!({"name": "Bigger", "credits": [{"channel": "sms", "amount": 5000}],
                        "price": {"amountMinor": 30000, "currency": "EUR"}});
    let other = app.call("POST", "/api/v1/credits/packages", Some(&admin), Some(bigger)).await;
    let other = other.json["data"]["id"].as_str().unwrap().to_owned();
    let reused = keyed(
        &app,
        "POST",
        &format!("/api/v1/credits/packages/{other}/purchase"),
        &owner,
        "buy-starter-1",
        None,
    )
    .await;
    assert_eq!(code(&reused), (422, json!("idempotency.key_reused")));
    assert_eq!(stored_wallet(&app, acme, "sms").await, (1000, 0));
    assert_eq!(stock_of(&app, "sms").await, 9_000);

    let ledger = app.call("GET", "/api/v1/credits/transactions?kind=grant", Some(&owner), None).await;
    assert_eq!(ledger.status, 200, "{}", ledger.body);
    assert_eq!(ledger.json["meta"]["total"], json!(2), "one grant per channel");
    let wallets = app.call("GET", "/api/v1/credits/wallets", Some(&owner), None).await;
    assert_eq!(wallets.json["data"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn a_package_switched_off_is_hidden_from_tenants_and_not_sold() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let draft = json!({"name": "Retired", "credits": [{"channel": "sms", "amount": 10}],
                       "price": {"amountMinor": 100, "currency": "EUR"}, "active": false});
    let created = app.call("POST", "/api/v1/credits/packages", Some(&admin), Some(draft)).await;
    let id = created.json["data"]["id"].as_str().unwrap().to_owned();
    let acme = app.tenant("acme").await;
    let owner = app.user_token(acme, Role::Owner.permissions());

    let listed = app.call("GET", "/api/v1/credits/packages", Some(&owner), None).await;
    assert_eq!(listed.json["data"], json!([]));
    let all = app.call("GET", "/api/v1/credits/packages?all=true", Some(&owner), None).await;
    assert_eq!(code(&all), (422, json!("request.invalid_query")), "all is for the platform's staff");
    let read = app.call("GET", &format!("/api/v1/credits/packages/{id}"), Some(&owner), None).await;
    assert_eq!(code(&read), (404, json!("credits.package_not_found")));
    assert!(!read.body.contains("Retired"));
    let bought =
        keyed(&app, "POST", &format!("/api/v1/credits/packages/{id}/purchase"), &owner, "b-1", None).await;
    assert_eq!(code(&bought), (409, json!("credits.package_inactive")));
    assert_eq!(stored_wallet(&app, acme, "sms").await, (0, 0));

    let staff = app.call("GET", "/api/v1/credits/packages?all=true", Some(&admin), None).await;
    assert_eq!(staff.json["data"][0]["name"], json!("Retired"));
    let staff_read = app.call("GET", &format!("/api/v1/credits/packages/{id}"), Some(&admin), None).await;
    assert_eq!(staff_read.json["data"]["active"], json!(false));
}

#[actix_web::test]
async fn a_money_moving_route_without_an_idempotency_key_is_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let (acme, owner) = funded(&app, &admin, "acme", 10).await;

    let body = json!({"channel": "sms", "amount": 3});
    let res = app.call("POST", "/api/v1/credits/reservations", Some(&owner), Some(body)).await;
    assert_eq!(code(&res), (400, json!("idempotency.key_required")), "{}", res.body);
    let add =
        app.call("POST", "/api/v1/credits/wallets/sms/add", Some(&owner), Some(json!({"amount": 5}))).await;
    assert_eq!(code(&add), (400, json!("idempotency.key_required")));
    let stock = stock_of(&app, "sms").await;
    let body = json!({"channel": "sms", "amount": 5, "note": "unkeyed"});
    let top = app.call("POST", "/api/v1/credits/master-wallet/top-up", Some(&admin), Some(body)).await;
    assert_eq!(code(&top), (400, json!("idempotency.key_required")));

    assert_eq!(stored_wallet(&app, acme, "sms").await, (10, 0), "nothing held or bought");
    assert_eq!(stock_of(&app, "sms").await, stock);
    let sql = "SELECT count(*) AS n FROM credit_reservations WHERE tenant_id = $1::uuid";
    assert_eq!(number(&app, sql, &acme.to_string()).await, 0);
}

#[actix_web::test]
async fn reservations_hold_then_capture_or_release_credits() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let (acme, owner) = funded(&app, &admin, "acme", 10).await;

    let held = reserve(&app, &owner, "send-1", 3).await;
    assert_eq!(held.status, 201, "{}", held.body);
    let reservation = &held.json["data"]["reservation"];
    assert_eq!((reservation["status"].clone(), reservation["amount"].clone()), (json!("held"), json!(3)));
    let wallet = &held.json["data"]["wallet"];
    assert_eq!(
        (wallet["balance"].clone(), wallet["held"].clone(), wallet["available"].clone()),
        (json!(10), json!(3), json!(7))
    );
    assert_eq!(stored_wallet(&app, acme, "sms").await, (10, 3));
    let id = reservation["id"].as_str().unwrap().to_owned();
    let read = app.call("GET", &format!("/api/v1/credits/reservations/{id}"), Some(&owner), None).await;
    assert_eq!(read.json["data"]["status"], json!("held"));

    let capture = format!("/api/v1/credits/reservations/{id}/capture");
    let captured = keyed(&app, "POST", &capture, &owner, "send-1-done", Some(json!({"amount": 2}))).await;
    assert_eq!(captured.status, 200, "{}", captured.body);
    assert_eq!(captured.json["data"]["reservation"]["status"], json!("captured"));
    assert_eq!(captured.json["data"]["reservation"]["captured"], json!(2));
    assert_eq!(captured.json["data"]["wallet"]["balance"], json!(8));
    assert_eq!(stored_wallet(&app, acme, "sms").await, (8, 0), "2 spent, 1 back");

    let release = format!("/api/v1/credits/reservations/{id}/release");
    let late = keyed(&app, "POST", &release, &owner, "send-1-cancel", None).await;
    assert_eq!(code(&late), (409, json!("credits.reservation_settled")));
    assert_eq!(stored_wallet(&app, acme, "sms").await, (8, 0));

    let greedy = reserve(&app, &owner, "send-2", 100).await;
    assert_eq!(code(&greedy), (402, json!("credits.insufficient_balance")), "{}", greedy.body);
    assert_eq!(stored_wallet(&app, acme, "sms").await, (8, 0), "nothing held");
    let sql = "SELECT count(*) AS n FROM credit_reservations WHERE tenant_id = $1::uuid";
    assert_eq!(number(&app, sql, &acme.to_string()).await, 1);

    // No body: every held credit is spent.
    let whole = reserve(&app, &owner, "send-3", 4).await;
    let whole = whole.json["data"]["reservation"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/credits/reservations/{whole}/capture");
    let all = keyed(&app, "POST", &path, &owner, "send-3-done", None).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.json["data"]["reservation"]["captured"], json!(4));
    assert_eq!(stored_wallet(&app, acme, "sms").await, (4, 0));

    // A release gives the hold back whole.
    let cancelled = reserve(&app, &owner, "send-4", 2).await;
    let cancelled = cancelled.json["data"]["reservation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(stored_wallet(&app, acme, "sms").await, (4, 2));
    let path = format!("/api/v1/credits/reservations/{cancelled}/release");
    let released = keyed(&app, "POST", &path, &owner, "send-4-cancel", None).await;
    assert_eq!(released.json["data"]["reservation"]["status"], json!("released"), "{}", released.body);
    assert_eq!(stored_wallet(&app, acme, "sms").await, (4, 0));

    let spent = app.call("GET", "/api/v1/credits/transactions?kind=capture", Some(&owner), None).await;
    let amounts: i64 =
        spent.json["data"].as_array().unwrap().iter().map(|e| e["amount"].as_i64().unwrap()).sum();
    assert_eq!(amounts, -6, "the ledger shows what was spent");
}

#[actix_web::test]
async fn a_debit_spends_at_once_and_its_replay_moves_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let (acme, owner) = funded(&app, &admin, "acme", 10).await;
    let body = json!({"channel": "sms", "amount": 4});

    let spent = keyed(&app, "POST", "/api/v1/credits/debits", &owner, "send-9", Some(body.clone())).await;
    assert_eq!(spent.status, 201, "{}", spent.body);
    assert_eq!(spent.json["data"]["entries"][0]["kind"], json!("debit"));
    assert_eq!(spent.json["data"]["entries"][0]["amount"], json!(-4));
    assert_eq!(stored_wallet(&app, acme, "sms").await, (6, 0));

    let again = keyed(&app, "POST", "/api/v1/credits/debits", &owner, "send-9", Some(body)).await;
    assert_eq!(again.json["data"], spent.json["data"], "the first answer, replayed");
    assert_eq!(stored_wallet(&app, acme, "sms").await, (6, 0), "nothing moved twice");
    let sql = "SELECT count(*) AS n FROM credit_entries WHERE tenant_id = $1::uuid AND kind = 'debit'";
    assert_eq!(number(&app, sql, &acme.to_string()).await, 1);

    let short = keyed(
        &app,
        "POST",
        "/api/v1/credits/debits",
        &owner,
        "send-10",
        Some(json!({"channel": "sms", "amount": 7})),
    )
    .await;
    assert_eq!(code(&short), (402, json!("credits.insufficient_balance")), "{}", short.body);
    let zero = keyed(
        &app,
        "POST",
        "/api/v1/credits/debits",
        &owner,
        "send-11",
        Some(json!({"channel": "sms", "amount": 0})),
    )
    .await;
    assert_eq!(code(&zero), (422, json!("credits.invalid")), "{}", zero.body);
    assert_eq!(stored_wallet(&app, acme, "sms").await, (6, 0));
}

#[actix_web::test]
async fn another_tenants_credits_are_not_found() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let (acme, acme_owner) = funded(&app, &admin, "acme", 10).await;
    let held = reserve(&app, &acme_owner, "send-1", 3).await;
    let reservation = held.json["data"]["reservation"]["id"].as_str().unwrap().to_owned();
    let wallet = held.json["data"]["wallet"]["id"].as_str().unwrap().to_owned();
    let plan = json!({"tenantId": acme.to_string(), "name": "Acme SMS", "channel": "sms", "currency": "EUR",
                      "tiers": [{"fromQuantity": 1, "unitPrice": "0.05"}]});
    let plan = app.call("POST", "/api/v1/credits/custom-plans", Some(&admin), Some(plan)).await;
    assert_eq!(plan.status, 201, "{}", plan.body);
    let plan = plan.json["data"]["id"].as_str().unwrap().to_owned();

    let globex = app.tenant("globex").await;
    let stranger = app.user_token(globex, Role::Owner.permissions());
    let res = app.call("GET", &format!("/api/v1/credits/wallets/{wallet}"), Some(&stranger), None).await;
    assert_eq!(code(&res), (404, json!("credits.wallet_not_found")));
    assert!(res.json["data"].is_null());
    let res =
        app.call("GET", &format!("/api/v1/credits/reservations/{reservation}"), Some(&stranger), None).await;
    assert_eq!(code(&res), (404, json!("credits.reservation_not_found")));
    assert!(!res.body.contains(&wallet));
    let res = app.call("GET", &format!("/api/v1/credits/custom-plans/{plan}"), Some(&stranger), None).await;
    assert_eq!(code(&res), (404, json!("credits.plan_not_found")));
    assert!(!res.body.contains("Acme SMS"));
    let res = app.call("GET", "/api/v1/credits/custom-plans", Some(&stranger), None).await;
    assert_eq!(res.json["data"], json!([]));
    let res = app.call("GET", "/api/v1/credits/custom-plans", Some(&acme_owner), None).await;
    assert_eq!(res.json["data"][0]["name"], json!("Acme SMS"), "its own tenant sees it");

    // Nor can it spend another tenant's hold.
    let path = format!("/api/v1/credits/reservations/{reservation}/capture");
    let res = keyed(&app, "POST", &path, &stranger, "steal-1", None).await;
    assert_eq!(code(&res), (404, json!("credits.reservation_not_found")));
    let path = format!("/api/v1/credits/wallets/{wallet}/add");
    let res = keyed(&app, "POST", &path, &stranger, "steal-2", Some(json!({"amount": 5}))).await;
    assert_eq!(code(&res), (404, json!("credits.wallet_not_found")));
    assert_eq!(stored_wallet(&app, acme, "sms").await, (10, 3));
    assert_eq!(stored_wallet(&app, globex, "sms").await, (0, 0));
}

#[actix_web::test]
async fn tenants_cannot_use_the_platforms_routes() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let (acme, owner) = funded(&app, &admin, "acme", 10).await;
    let stock = stock_of(&app, "sms").await;
    // Even a token that claims platform permissions: they count only for the platform's staff.
    let forged = app.user_token(acme, &["credits:read", "platform:credits:read", "platform:credits:write"]);
    for token in [&owner, &forged] {
        let body = json!({"channel": "sms", "amount": 1000, "note": "free credits"});
        let res = keyed(&app, "POST", "/api/v1/credits/master-wallet/top-up", token, "t-1", Some(body)).await;
        assert_eq!(code(&res), (403, json!("auth.permission_denied")), "{}", res.body);
        let res = app.call("PUT", "/api/v1/credits/pricing", Some(token), Some(json!({"prices": []}))).await;
        assert_eq!(code(&res), (403, json!("auth.permission_denied")));
        let package = json!({"name": "Mine", "credits": [{"channel": "sms", "amount": 1}],
                             "price": {"amountMinor": 0, "currency": "EUR"}});
        let res = app.call("POST", "/api/v1/credits/packages", Some(token), Some(package)).await;
        assert_eq!(code(&res), (403, json!("auth.permission_denied")));
        let body = json!({"amount": 500, "reason": "because"});
        let res = keyed(&app, "POST", "/api/v1/credits/wallets/sms/adjust", token, "a-1", Some(body)).await;
        assert_eq!(code(&res), (403, json!("auth.permission_denied")));
        let res = app.call("GET", "/api/v1/credits/master-wallet", Some(token), None).await;
        assert_eq!(code(&res), (403, json!("auth.permission_denied")));
    }
    assert_eq!(stock_of(&app, "sms").await, stock);
    assert_eq!(stored_wallet(&app, acme, "sms").await, (10, 0));
    assert_eq!(number(&app, "SELECT count(*) AS n FROM credit_packages WHERE name = $1", "Mine").await, 0);
    let prices = app.call("GET", "/api/v1/credits/pricing", Some(&owner), None).await;
    assert_eq!(prices.json["data"]["prices"].as_array().unwrap().len(), 2, "the price list stands");
}

#[actix_web::test]
async fn bad_input_is_refused_with_a_stable_code() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let (acme, owner) = funded(&app, &admin, "acme", 10).await;
    let add = |key: &'static str, body: Value| {
        let (app, owner) = (&app, owner.clone());
        async move { keyed(app, "POST", "/api/v1/credits/wallets/sms/add", &owner, key, Some(body)).await }
    };

    let res = add("k-1", json!({"amount": 5, "bonus": true})).await;
    assert_eq!(code(&res), (422, json!("request.invalid_body")), "{}", res.body);
    assert_eq!(res.json["error"]["details"]["fields"][0]["field"], json!("bonus"));
    let res = add("k-2", json!({"amount": 0})).await;
    assert_eq!(code(&res), (422, json!("credits.invalid")), "{}", res.body);
    assert_eq!(res.json["error"]["details"]["fields"][0]["field"], json!("amount"));
    let res = add("k-3", json!({"amount": 50, "source": "promotional", "note": "A gift"})).await;
    assert_eq!(code(&res), (403, json!("credits.source_not_allowed")), "{}", res.body);
    let res = keyed(
        &app,
        "POST",
        "/api/v1/credits/reservations",
        &owner,
        "k-4",
        Some(json!({"channel": "fax", "amount": 1})),
    )
    .await;
    assert_eq!(code(&res), (422, json!("request.invalid_body")));
    assert_eq!(res.json["error"]["details"]["fields"][0]["field"], json!("channel"));
    let res = keyed(
        &app,
        "POST",
        "/api/v1/credits/reservations",
        &owner,
        "k-5",
        Some(json!({"channel": "sms", "amount": 0})),
    )
    .await;
    assert_eq!(code(&res), (422, json!("credits.invalid")));
    let res = app.call("GET", "/api/v1/credits/wallets/fax", Some(&owner), None).await;
    assert_eq!(code(&res), (400, json!("request.invalid_path")), "{}", res.body);
    let res = app.call("GET", "/api/v1/credits/transactions?channel=fax", Some(&owner), None).await;
    assert_eq!(code(&res), (400, json!("request.invalid_query")));
    let res = app.call("GET", "/api/v1/credits/analytics?days=0", Some(&owner), None).await;
    assert_eq!(code(&res), (422, json!("request.invalid_query")));
    let res = app
        .call(
            "GET",
            "/api/v1/credits/custom-plans?tenantId=00000000-0000-7000-8000-000000000001",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(code(&res), (422, json!("request.invalid_query")));
    assert_eq!(stored_wallet(&app, acme, "sms").await, (10, 0), "nothing moved");

    // A key is one request: the same key with another amount is refused.
    let first = add("k-6", json!({"amount": 10})).await;
    assert_eq!(first.json["data"]["wallet"]["balance"], json!(20), "{}", first.body);
    let other = add("k-6", json!({"amount": 20})).await;
    assert_eq!(code(&other), (422, json!("idempotency.key_reused")));
    assert_eq!(stored_wallet(&app, acme, "sms").await, (20, 0));
}

#[actix_web::test]
async fn platform_staff_grant_and_adjust_a_tenants_credits() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token_of(UserId::new());
    let (acme, owner) = funded(&app, &admin, "acme", 10).await;
    let stock = stock_of(&app, "sms").await;

    let body = json!({"amount": 50, "source": "promotional", "validityDays": 30, "note": "Welcome gift"});
    let granted =
        on_tenant(&app, acme, "POST", "/api/v1/credits/wallets/sms/add", &admin, "gift-1", body).await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    assert_eq!(granted.json["data"]["wallet"]["balance"], json!(60));
    let body = json!({"amount": -20, "reason": "Duplicate gift."});
    let adjusted =
        on_tenant(&app, acme, "POST", "/api/v1/credits/wallets/sms/adjust", &admin, "fix-1", body).await;
    assert_eq!(adjusted.status, 200, "{}", adjusted.body);
    assert_eq!(adjusted.json["data"]["entries"][0]["note"], json!("Duplicate gift."));
    assert_eq!(stored_wallet(&app, acme, "sms").await, (40, 0));
    assert_eq!(stock_of(&app, "sms").await, stock - 50 + 20, "given from the stock, taken back to it");

    let body = json!({"amount": -1000, "reason": "Too much."});
    let short =
        on_tenant(&app, acme, "POST", "/api/v1/credits/wallets/sms/adjust", &admin, "fix-2", body).await;
    assert_eq!(code(&short), (402, json!("credits.insufficient_balance")));

    let sql = "SELECT count(*) AS n FROM audit_log WHERE tenant_id = $1::uuid \
               AND action IN ('credits.add', 'credits.adjust')";
    assert_eq!(
        number(&app, sql, &acme.to_string()).await,
        3,
        "the purchase, the gift and the adjustment, in acme's trail"
    );
    let wallet = app.call("GET", "/api/v1/credits/wallets/sms", Some(&owner), None).await;
    let sources: Vec<&str> = wallet.json["data"]["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["promotional", "purchase"], "the expiring gift is drawn first");
}

#[actix_web::test]
async fn a_fall_below_the_threshold_enqueues_one_alert_which_emails_the_owners() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let (acme, owner) = funded(&app, &admin, "acme", 10).await;
    app.person("alert-owner@acme.example", acme, Role::Owner).await;
    app.person("alert-admin@acme.example", acme, Role::Admin).await;
    app.person("alert-staff@acme.example", acme, Role::Staff).await;

    let set = app
        .call("PUT", "/api/v1/credits/wallets/sms", Some(&owner), Some(json!({"lowBalanceThreshold": 6})))
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(
        (set.json["data"]["lowBalanceThreshold"].clone(), set.json["data"]["lowBalance"].clone()),
        (json!(6), json!(false))
    );
    assert_eq!(alerts(&app, acme).await, 0);

    // 10 -> 5 available: below 6, one alert. Held credits are not available,
    // so it is the hold that crosses; its capture leaves `available` as it is.
    let held = reserve(&app, &owner, "send-1", 5).await;
    assert_eq!(held.json["data"]["wallet"]["lowBalance"], json!(true), "{}", held.body);
    assert_eq!(alerts(&app, acme).await, 1);
    let id = held.json["data"]["reservation"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/credits/reservations/{id}/capture");
    let captured = keyed(&app, "POST", &path, &owner, "send-1-done", None).await;
    assert_eq!(captured.json["data"]["wallet"]["lowBalance"], json!(true), "{}", captured.body);
    assert_eq!(alerts(&app, acme).await, 1);
    // Further down: no second alert while it stays below.
    let held = reserve(&app, &owner, "send-2", 2).await;
    let id = held.json["data"]["reservation"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/credits/reservations/{id}/capture");
    keyed(&app, "POST", &path, &owner, "send-2-done", None).await;
    assert_eq!(stored_wallet(&app, acme, "sms").await, (3, 0));
    assert_eq!(alerts(&app, acme).await, 1, "one alert per fall");

    let sql = "SELECT (payload->>'available')::int8 AS n FROM jobs \
               WHERE kind = 'credits.low_balance' AND tenant_id = $1::uuid";
    assert_eq!(number(&app, sql, &acme.to_string()).await, 5);

    // The worker emails the owners and admins (not the staff), each on their own: nobody sees
    // the others' addresses.
    let subject = json!("Your SMS credits are running low");
    let alerts = run_worker_until(&app, |mailbox| {
        let sent: Vec<Value> =
            mailbox.iter().filter(|m| m["message"]["subject"] == subject).cloned().collect();
        (sent.len() >= 2).then_some(Value::Array(sent))
    })
    .await;
    let mut to: Vec<Vec<&str>> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["message"]["to"].as_array().unwrap().iter().map(|t| t["address"].as_str().unwrap()).collect()
        })
        .collect();
    to.sort();
    assert_eq!(to, [["alert-admin@acme.example"], ["alert-owner@acme.example"]]);
    let text = alerts[0]["message"]["text"].as_str().unwrap();
    assert!(
        text.contains("SMS") && text.contains("5 credits available") && text.contains("threshold of 6"),
        "{text}"
    );
    assert!(!crate::support::logs().contains("alert-owner@acme.example"), "no addresses in the logs");
}

#[actix_web::test]
async fn the_expiry_job_gives_back_holds_nobody_settled() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let (acme, owner) = funded(&app, &admin, "acme", 10).await;
    let body = json!({"channel": "sms", "amount": 4, "holdSeconds": 1});
    let held = keyed(&app, "POST", "/api/v1/credits/reservations", &owner, "send-1", Some(body)).await;
    assert_eq!(held.status, 201, "{}", held.body);
    assert_eq!(stored_wallet(&app, acme, "sms").await, (10, 4));
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    let store = app.db.store().await;
    let job = NewJob::of(&portico_bff::jobs::ExpireCredits {}).unwrap();
    store.enqueue_platform(&PlatformContext::system("test"), job).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let worker = Worker::start(&app).await;
    while stored_wallet(&app, acme, "sms").await != (10, 0) {
        assert!(Instant::now() < deadline, "the hold was never given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.stop().await;
    let id = held.json["data"]["reservation"]["id"].as_str().unwrap();
    let read = app.call("GET", &format!("/api/v1/credits/reservations/{id}"), Some(&owner), None).await;
    assert_eq!(read.json["data"]["status"], json!("expired"));
}

/// A worker with the platform's handlers, sending to the app's development mailbox.
struct Worker {
    stop: tokio::sync::oneshot::Sender<()>,
    running: actix_web::rt::task::JoinHandle<()>,
}

impl Worker {
    async fn start(app: &TestApp) -> Self {
        let store = app.db.store().await;
        let sender = std::sync::Arc::new(portico_smtp::FileMailbox::new(&app.mailbox));
        let registry = portico_bff::jobs::registry(&store, sender, crate::jobs_api::sender_address());
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

/// Runs a worker until the development mailbox holds what `found` looks for.
async fn run_worker_until(app: &TestApp, found: impl Fn(&[Value]) -> Option<Value>) -> Value {
    let worker = Worker::start(app).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let hit = loop {
        let res = app.call("GET", "/api/v1/dev/mailbox", None, None).await;
        if let Some(hit) = res.json["data"].as_array().and_then(|m| found(m)) {
            break hit;
        }
        assert!(Instant::now() < deadline, "no such email arrived: {}", res.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    worker.stop().await;
    hit
}
