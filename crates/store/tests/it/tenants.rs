//! The tenant store: each change and its audit row in one transaction,
//! another tenant's data unreachable, nothing half-written on failure.

use diesel::QueryableByName;
use diesel::sql_types::{Jsonb, Nullable, Text};
use diesel_async::RunQueryDsl;
use portico_kernel::{PLATFORM_TENANT_ID, PageRequest, TenantId};
use portico_store::Store;
use portico_tenancy::{
    TenancyError, TenantFilter, TenantStatus, TenantStore, TenantTransition, UpdateTenant,
};
use portico_testkit::TestDb;
use serde_json::json;

use crate::support::{command, connect, count, member_of, platform, staff_on, tenant};

#[derive(QueryableByName, Debug)]
struct AuditRow {
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Text)]
    actor_type: String,
    #[diesel(sql_type = Nullable<Text>)]
    actor_tenant_id: Option<String>,
    #[diesel(sql_type = Text)]
    request_id: String,
    #[diesel(sql_type = Jsonb)]
    changes: serde_json::Value,
}

/// The audit trail of `tenant`, oldest first, read through the platform role.
async fn audit_of(db: &TestDb, tenant: TenantId) -> Vec<AuditRow> {
    let mut conn = connect(&db.urls.platform).await;
    diesel::sql_query(
        "SELECT action, actor_type, actor_tenant_id::text, request_id, changes FROM audit_log \
         WHERE tenant_id = $1::uuid ORDER BY occurred_at, id",
    )
    .bind::<Text, _>(tenant.to_string())
    .load(&mut conn)
    .await
    .unwrap()
}

async fn tenant_rows(db: &TestDb) -> i64 {
    count(&mut connect(&db.urls.platform).await, "SELECT count(*) AS n FROM tenants").await
}

async fn audit_rows(db: &TestDb) -> i64 {
    count(&mut connect(&db.urls.platform).await, "SELECT count(*) AS n FROM audit_log").await
}

fn update(name: &str) -> UpdateTenant {
    serde_json::from_value(
        json!({"name": name, "contactEmail": "new@acme.example", "metadata": {"crmId": 7}}),
    )
    .unwrap()
}

#[tokio::test]
async fn create_stores_the_tenant_and_audits_it_in_one_go() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let ctx = platform();
    let created = store.create(&ctx, command("acme")).await.unwrap();

    assert_eq!(created.status, TenantStatus::Trial);
    assert_eq!(store.get(&member_of(created.id), created.id).await.unwrap(), created);
    let audit = audit_of(&db, created.id).await;
    assert_eq!(audit.len(), 1);
    assert_eq!((audit[0].action.as_str(), audit[0].actor_type.as_str()), ("tenant.create", "system"));
    assert_eq!(audit[0].request_id, ctx.request_id.as_str());
    assert_eq!(audit[0].changes["slug"], json!({"before": null, "after": "acme"}));
}

#[tokio::test]
async fn a_taken_slug_is_a_conflict_and_writes_nothing() {
    let db = TestDb::new().await;
    let store = db.store().await;
    tenant(&store, "acme").await;
    let (tenants_before, audit_before) = (tenant_rows(&db).await, audit_rows(&db).await);

    let err = store.create(&platform(), command("acme")).await.unwrap_err();
    assert!(matches!(&err, TenancyError::SlugTaken(slug) if slug == "acme"), "{err:?}");
    assert_eq!((tenant_rows(&db).await, audit_rows(&db).await), (tenants_before, audit_before));
}

#[tokio::test]
async fn an_invalid_command_writes_nothing() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let (tenants_before, audit_before) = (tenant_rows(&db).await, audit_rows(&db).await);
    let mut bad = command("acme");
    bad.contact_email = "nope".into();
    let err = store.create(&platform(), bad).await.unwrap_err();
    let TenancyError::Invalid(errors) = err else { panic!("{err:?}") };
    assert_eq!(errors.fields(), vec!["contactEmail"]);
    assert_eq!((tenant_rows(&db).await, audit_rows(&db).await), (tenants_before, audit_before));
}

#[tokio::test]
async fn another_tenants_id_is_not_found_for_every_operation() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let a = tenant(&store, "alpha").await;
    let b = tenant(&store, "bravo").await;
    let as_a = member_of(a.id);

    assert!(matches!(store.get(&as_a, b.id).await, Err(TenancyError::NotFound)));
    assert!(matches!(store.update(&as_a, b.id, update("Mine now")).await, Err(TenancyError::NotFound)));
    assert!(matches!(
        store.transition(&as_a, b.id, TenantTransition::Suspend).await,
        Err(TenancyError::NotFound)
    ));
    assert!(matches!(store.delete(&as_a, b.id).await, Err(TenancyError::NotFound)));

    assert_eq!(store.get(&member_of(b.id), b.id).await.unwrap(), b, "B is untouched");
    assert_eq!(audit_of(&db, b.id).await.len(), 1, "only B's creation is in B's trail");
}

#[tokio::test]
async fn update_changes_the_editable_fields_and_audits_only_what_changed() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    let ctx = member_of(acme.id);

    let updated = store.update(&ctx, acme.id, update("Acme Homes")).await.unwrap();
    assert_eq!((updated.name.as_str(), updated.contact_email.as_str()), ("Acme Homes", "new@acme.example"));
    assert_eq!(updated.metadata, json!({"crmId": 7}));
    assert_eq!(store.get(&ctx, acme.id).await.unwrap(), updated, "what is returned is what is stored");

    let audit = audit_of(&db, acme.id).await;
    assert_eq!(audit.last().unwrap().action, "tenant.update");
    let changes = audit.last().unwrap().changes.as_object().unwrap().clone();
    let mut fields: Vec<&str> = changes.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, vec!["contactEmail", "metadata", "name", "updatedAt"]);
    assert_eq!(changes["name"], json!({"before": "Tenant acme", "after": "Acme Homes"}));
}

#[tokio::test]
async fn transitions_follow_the_lifecycle_and_refusals_write_nothing() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    let ctx = member_of(acme.id);

    let suspended = store.transition(&ctx, acme.id, TenantTransition::Suspend).await.unwrap();
    assert_eq!(suspended.status, TenantStatus::Suspended);
    let audit_before = audit_rows(&db).await;
    let err = store.transition(&ctx, acme.id, TenantTransition::Suspend).await.unwrap_err();
    assert!(matches!(err, TenancyError::InvalidTransition { from: TenantStatus::Suspended, .. }), "{err:?}");
    assert_eq!(audit_rows(&db).await, audit_before);
    assert_eq!(store.get(&ctx, acme.id).await.unwrap().status, TenantStatus::Suspended);

    let active = store.transition(&ctx, acme.id, TenantTransition::Activate).await.unwrap();
    assert_eq!(active.status, TenantStatus::Active);
    let actions: Vec<String> = audit_of(&db, acme.id).await.into_iter().map(|row| row.action).collect();
    assert_eq!(actions, vec!["tenant.create", "tenant.suspend", "tenant.activate"]);
}

#[tokio::test]
async fn platform_staff_acting_on_a_tenant_is_audited_as_such() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    store.transition(&staff_on(acme.id), acme.id, TenantTransition::Suspend).await.unwrap();
    let last = audit_of(&db, acme.id).await.pop().unwrap();
    assert_eq!(last.action, "tenant.suspend");
    assert_eq!(
        last.actor_tenant_id,
        Some(PLATFORM_TENANT_ID.to_string()),
        "the actor came from the platform tenant"
    );
}

#[tokio::test]
async fn the_platform_tenant_cannot_be_suspended_or_deleted() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let ctx = staff_on(PLATFORM_TENANT_ID);
    let err = store.transition(&ctx, PLATFORM_TENANT_ID, TenantTransition::Suspend).await.unwrap_err();
    assert!(matches!(err, TenancyError::PlatformTenantProtected));
    assert!(matches!(
        store.delete(&ctx, PLATFORM_TENANT_ID).await,
        Err(TenancyError::PlatformTenantProtected)
    ));
    assert_eq!(store.get(&ctx, PLATFORM_TENANT_ID).await.unwrap().status, TenantStatus::Active);
}

#[tokio::test]
async fn delete_is_soft_hides_the_tenant_and_keeps_its_slug_and_trail() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    let ctx = member_of(acme.id);
    store.delete(&ctx, acme.id).await.unwrap();

    assert!(matches!(store.get(&ctx, acme.id).await, Err(TenancyError::NotFound)));
    assert!(matches!(store.delete(&ctx, acme.id).await, Err(TenancyError::NotFound)));
    let listed = store.list(&platform(), &TenantFilter::default(), PageRequest::default()).await.unwrap();
    assert!(listed.items.iter().all(|t| t.id != acme.id));

    let mut conn = connect(&db.urls.platform).await;
    let kept = count(&mut conn, &format!("SELECT count(*) AS n FROM tenants WHERE id = '{}' AND deleted_at IS NOT NULL AND status = 'inactive'", acme.id)).await;
    assert_eq!(kept, 1, "the row stays, marked deleted");
    assert_eq!(audit_of(&db, acme.id).await.last().unwrap().action, "tenant.delete");
    assert!(matches!(store.create(&platform(), command("acme")).await, Err(TenancyError::SlugTaken(_))));
}

#[tokio::test]
async fn list_pages_filters_and_searches_newest_first() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let mut created = Vec::new();
    for slug in ["alpha-homes", "bravo-school", "charlie-homes", "delta-energy", "echo_x"]
        .map(|s| s.replace('_', "-"))
    {
        created.push(tenant(&store, &slug).await);
    }
    let ctx = member_of(created[0].id);
    store.transition(&ctx, created[0].id, TenantTransition::Suspend).await.unwrap();

    let first =
        store.list(&platform(), &TenantFilter::default(), PageRequest::new(1, 2).unwrap()).await.unwrap();
    // Five tenants and the platform tenant.
    assert_eq!((first.total, first.total_pages, first.items.len()), (6, 3, 2));
    assert_eq!(first.items[0].slug, "echo-x", "newest first");
    let last =
        store.list(&platform(), &TenantFilter::default(), PageRequest::new(3, 2).unwrap()).await.unwrap();
    assert_eq!(last.items.last().unwrap().slug, "platform", "the platform tenant is the oldest");

    let homes = TenantFilter { search: Some("HOMES".into()), ..TenantFilter::default() };
    let found = store.list(&platform(), &homes, PageRequest::default()).await.unwrap();
    let slugs: Vec<&str> = found.items.iter().map(|t| t.slug.as_str()).collect();
    assert_eq!(slugs, vec!["charlie-homes", "alpha-homes"]);

    let wildcard = TenantFilter { search: Some("%".into()), ..TenantFilter::default() };
    assert_eq!(
        store.list(&platform(), &wildcard, PageRequest::default()).await.unwrap().total,
        0,
        "% is literal"
    );

    let suspended = TenantFilter { status: Some(TenantStatus::Suspended), ..TenantFilter::default() };
    let found = store.list(&platform(), &suspended, PageRequest::default()).await.unwrap();
    assert_eq!(found.items.iter().map(|t| t.id).collect::<Vec<_>>(), vec![created[0].id]);
}

#[tokio::test]
async fn concurrent_changes_to_one_tenant_are_serialised() {
    let db = TestDb::new().await;
    let store: Store = db.store().await;
    let acme = tenant(&store, "acme").await;
    let ctx = member_of(acme.id);
    // Trial -> Suspended is allowed once; the second must see the first's result.
    let (one, two) = tokio::join!(
        store.transition(&ctx, acme.id, TenantTransition::Suspend),
        store.transition(&ctx, acme.id, TenantTransition::Suspend)
    );
    assert_eq!([one.is_ok(), two.is_ok()].iter().filter(|ok| **ok).count(), 1, "{one:?} {two:?}");
    let suspensions =
        audit_of(&db, acme.id).await.into_iter().filter(|r| r.action == "tenant.suspend").count();
    assert_eq!(suspensions, 1);
}

#[tokio::test]
async fn a_public_page_finds_an_in_service_tenant_by_slug_and_nothing_else() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    let found = store.find_public("acme").await.unwrap();
    assert_eq!((found.id, found.name.as_str(), found.slug.as_str()), (acme.id, "Tenant acme", "acme"));

    let suspended = tenant(&store, "paused").await;
    store.transition(&member_of(suspended.id), suspended.id, TenantTransition::Suspend).await.unwrap();
    let deleted = tenant(&store, "gone").await;
    store.delete(&member_of(deleted.id), deleted.id).await.unwrap();
    for slug in ["paused", "gone", "nobody", "Not A Slug", "platform-x'; --"] {
        assert!(matches!(store.find_public(slug).await, Err(TenancyError::NotFound)), "{slug}");
    }
}

#[tokio::test]
async fn the_slug_lookup_reveals_an_id_and_leaves_the_wall_standing() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    let mut conn = connect(&db.urls.app).await;
    let ids = crate::support::lines(&mut conn, "SELECT tenant_id_for_slug('acme')::text AS line").await;
    assert_eq!(ids, vec![acme.id.to_string()]);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM tenants").await, 0, "still no rows unscoped");
    let mut platform = connect(&db.urls.platform).await;
    let denied = crate::support::error_of(&mut platform, "SELECT tenant_id_for_slug('acme')").await;
    assert!(denied.contains("permission denied"), "only portico_app may call it: {denied}");
}
