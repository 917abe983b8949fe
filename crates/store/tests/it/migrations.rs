//! Migrations: every one applies, reverts and re-applies to the same schema.

use portico_store::{
    PoolConfig, Store, embedded_versions, revert_all_migrations, revert_last_migration, run_migrations,
    run_next_migration,
};
use portico_testkit::TestDb;

use crate::support::{connect, lines};

/// Everything a migration can change, as sorted lines: columns, constraints,
/// indexes, row-level security, policies, functions and grants. Diesel's own bookkeeping
/// table is left out, except the grants on it, which a migration makes.
async fn catalog(url: &str) -> Vec<String> {
    let mut conn = connect(url).await;
    let sql = "
        SELECT format('column %s.%s %s null=%s default=%s', table_name, column_name, data_type, is_nullable, column_default) AS line
          FROM information_schema.columns WHERE table_schema = 'public'
        UNION ALL
        SELECT format('constraint %s.%s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
          FROM pg_constraint WHERE connamespace = 'public'::regnamespace
        UNION ALL
        SELECT format('index %s', indexdef) FROM pg_indexes WHERE schemaname = 'public'
        UNION ALL
        SELECT format('rls %s enabled=%s forced=%s', relname, relrowsecurity, relforcerowsecurity)
          FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
        UNION ALL
        SELECT format('policy %s.%s %s %s using=%s check=%s', tablename, policyname, cmd, roles, qual, with_check)
          FROM pg_policies WHERE schemaname = 'public'
        UNION ALL
        SELECT format('function %s returns %s definer=%s acl=%s', p.oid::regprocedure, pg_get_function_result(p.oid),
                      p.prosecdef, p.proacl)
          FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
        UNION ALL
        SELECT format('grant %s %s %s', table_name, grantee, privilege_type)
          FROM information_schema.role_table_grants
         WHERE table_schema = 'public' AND grantee IN ('portico_app', 'portico_platform')
        ORDER BY 1";
    let all = lines(&mut conn, sql).await;
    all.into_iter()
        .filter(|line| line.starts_with("grant ") || !line.contains("__diesel_schema_migrations"))
        .collect()
}

#[tokio::test]
async fn each_migration_applies_reverts_and_reapplies_to_the_same_catalog() {
    let db = TestDb::empty().await;
    let mut stepped = Vec::new();
    let mut before = catalog(&db.urls.owner).await;
    while let Some(version) = run_next_migration(&db.urls.owner).await.unwrap() {
        let after = catalog(&db.urls.owner).await;
        assert_ne!(after, before, "{version} changes the schema");
        assert_eq!(revert_last_migration(&db.urls.owner).await.unwrap(), version);
        assert_eq!(catalog(&db.urls.owner).await, before, "{version} reverts to exactly what was there");
        assert_eq!(run_next_migration(&db.urls.owner).await.unwrap(), Some(version.clone()));
        assert_eq!(catalog(&db.urls.owner).await, after, "{version} re-applies to the same schema");
        stepped.push(version);
        before = after;
    }
    assert_eq!(stepped, embedded_versions().unwrap(), "every migration, oldest first");
    assert!(before.iter().any(|l| l.starts_with("policy audit_log.tenant_isolation")), "{before:#?}");
}

#[tokio::test]
async fn reverting_everything_leaves_only_the_migrations_table() {
    let db = TestDb::new().await;
    let reverted = revert_all_migrations(&db.urls.owner).await.unwrap();
    assert_eq!(reverted.len(), embedded_versions().unwrap().len());
    let left = catalog(&db.urls.owner).await;
    assert_eq!(left, Vec::<String>::new(), "nothing but diesel's bookkeeping is left");
    assert_eq!(run_migrations(&db.urls.owner).await.unwrap(), embedded_versions().unwrap());
}

#[tokio::test]
async fn a_second_run_has_nothing_to_apply() {
    let db = TestDb::new().await;
    assert_eq!(run_migrations(&db.urls.owner).await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn instances_starting_together_migrate_once() {
    let db = TestDb::empty().await;
    let (first, second) = tokio::join!(run_migrations(&db.urls.owner), run_migrations(&db.urls.owner));
    let mut applied = first.unwrap();
    applied.extend(second.unwrap());
    assert_eq!(applied, embedded_versions().unwrap(), "each migration applied exactly once");
}

#[tokio::test]
async fn an_empty_database_is_not_ready() {
    let db = TestDb::empty().await;
    let store = Store::connect(&db.urls, &PoolConfig::default()).await.unwrap();
    assert!(!store.migrations_current().await.unwrap());
}

#[tokio::test]
async fn readiness_reports_whether_every_migration_is_applied() {
    let db = TestDb::new().await;
    let store = Store::connect(&db.urls, &PoolConfig::default()).await.unwrap();
    assert!(store.migrations_current().await.unwrap());

    revert_all_migrations(&db.urls.owner).await.unwrap();
    assert!(!store.migrations_current().await.unwrap(), "a database behind its code is not ready");
    let mut owner = connect(&db.urls.owner).await;
    assert_eq!(
        lines(&mut owner, "SELECT version AS line FROM __diesel_schema_migrations").await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn an_industry_the_catalogue_does_not_know_moves_into_the_tenants_metadata() {
    let db = TestDb::empty().await;
    // Everything before the tenant profile, then tenants as they were.
    while let Some(version) = run_next_migration(&db.urls.owner).await.unwrap() {
        if version.ends_with("000014") {
            break;
        }
    }
    let mut conn = connect(&db.urls.owner).await;
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        "INSERT INTO tenants (id, name, slug, contact_email, industry, status, metadata, created_at, updated_at) VALUES
           ('00000000-0000-7000-8000-0000000000a1', 'Old', 'old-one', 'a@old.example', 'real_estate', 'active',
            '{\"crmId\": 7}', now(), now()),
           ('00000000-0000-7000-8000-0000000000a2', 'Kept', 'kept-one', 'a@kept.example', 'trucking', 'active',
            '{}', now(), now())",
    )
    .await
    .unwrap();
    assert!(run_next_migration(&db.urls.owner).await.unwrap().is_some_and(|v| v.ends_with("000015")));
    let rows = lines(
        &mut conn,
        "SELECT slug || ' ' || coalesce(industry, '-') || ' ' || metadata::text AS line FROM tenants ORDER BY slug",
    )
    .await;
    assert_eq!(rows, ["kept-one trucking {}", r#"old-one - {"crmId": 7, "formerIndustry": "real_estate"}"#,]);
}

#[tokio::test]
async fn events_stored_before_the_rollups_are_rolled_up_by_their_migration() {
    let db = TestDb::empty().await;
    while let Some(version) = run_next_migration(&db.urls.owner).await.unwrap() {
        if version.ends_with("000017") {
            break;
        }
    }
    let mut conn = connect(&db.urls.owner).await;
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        "INSERT INTO tenants (id, name, slug, contact_email, status, metadata, created_at, updated_at) VALUES
           ('00000000-0000-7000-8000-0000000000b1', 'Usage', 'usage', 'a@usage.example', 'active', '{}', now(), now());
         INSERT INTO usage_events (tenant_id, event_id, metric_code, subject, at, properties, received_at) VALUES
           ('00000000-0000-7000-8000-0000000000b1', 'e1', 'api.calls', 'acme', '2026-03-02 10:05:00+00', '{\"ms\": 12}', now()),
           ('00000000-0000-7000-8000-0000000000b1', 'e2', 'api.calls', 'acme', '2026-03-02 10:55:00+00', '{\"ms\": \"30.5\"}', now()),
           ('00000000-0000-7000-8000-0000000000b1', 'e3', 'api.calls', 'acme', '2026-03-02 11:00:00+00', '{\"ms\": \"slow\"}', now())",
    )
    .await
    .unwrap();
    assert!(run_next_migration(&db.urls.owner).await.unwrap().is_some_and(|v| v.ends_with("000018")));
    let rows = lines(
        &mut conn,
        "SELECT to_char(hour AT TIME ZONE 'UTC', 'HH24:MI') || ' ' || events || ' ' || sums::text || ' ' || maxes::text \
         AS line FROM usage_rollups ORDER BY hour",
    )
    .await;
    assert_eq!(rows, [r#"10:00 2 {"ms": 42.5} {"ms": 30.5}"#, "11:00 1 {} {}"]);
    let events = lines(&mut conn, "SELECT count(*)::text AS line FROM usage_events").await;
    assert_eq!(events, ["3"], "the events themselves are unchanged");
}
