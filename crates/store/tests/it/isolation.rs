//! Row-level security as the second wall: queries with NO tenant filter, as
//! `portico_app`, must still see and touch only the scoped tenant's rows.

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use portico_kernel::TenantId;
use portico_tenancy::Tenant;
use portico_testkit::TestDb;

use crate::support::{connect, count, error_of, lines, scope, tenant};

/// Two tenants, each with its own audit row (written by `create`).
async fn two_tenants(db: &TestDb) -> (Tenant, Tenant) {
    let store = db.store().await;
    (tenant(&store, "alpha").await, tenant(&store, "bravo").await)
}

async fn begin_as(conn: &mut AsyncPgConnection, tenant: TenantId) {
    conn.batch_execute("BEGIN").await.unwrap();
    scope(conn, tenant).await;
}

#[tokio::test]
async fn a_tenant_sees_only_its_own_rows_without_any_filter() {
    let db = TestDb::new().await;
    let (a, b) = two_tenants(&db).await;
    let mut conn = connect(&db.urls.app).await;
    begin_as(&mut conn, a.id).await;

    let tenants = lines(&mut conn, "SELECT id::text AS line FROM tenants").await;
    assert_eq!(tenants, vec![a.id.to_string()]);
    let audit_owners = lines(&mut conn, "SELECT DISTINCT tenant_id::text AS line FROM audit_log").await;
    assert_eq!(audit_owners, vec![a.id.to_string()]);
    let b_rows =
        count(&mut conn, &format!("SELECT count(*) AS n FROM audit_log WHERE tenant_id = '{}'", b.id)).await;
    assert_eq!(b_rows, 0, "asking for B's rows by id finds nothing either");
}

#[tokio::test]
async fn a_tenant_cannot_insert_rows_for_another() {
    let db = TestDb::new().await;
    let (a, b) = two_tenants(&db).await;
    let mut conn = connect(&db.urls.app).await;

    begin_as(&mut conn, a.id).await;
    let audit_insert = format!(
        "INSERT INTO audit_log (tenant_id, id, actor_type, actor_name, action, resource_type, resource_id, request_id, occurred_at) \
         VALUES ('{}', gen_random_uuid(), 'system', 'x', 'tenant.poke', 'tenant', 'x', 'r', now())",
        b.id
    );
    assert!(error_of(&mut conn, &audit_insert).await.contains("row-level security"));
    conn.batch_execute("ROLLBACK").await.unwrap();

    begin_as(&mut conn, a.id).await;
    let tenant_insert = format!(
        "INSERT INTO tenants (id, name, slug, contact_email, status, created_at, updated_at) \
         VALUES ('{}', 'Intruder', 'intruder', 'x@y.example', 'active', now(), now())",
        TenantId::new()
    );
    assert!(error_of(&mut conn, &tenant_insert).await.contains("row-level security"));
    conn.batch_execute("ROLLBACK").await.unwrap();

    let mut platform = connect(&db.urls.platform).await;
    let b_audit =
        count(&mut platform, &format!("SELECT count(*) AS n FROM audit_log WHERE tenant_id = '{}'", b.id))
            .await;
    assert_eq!(b_audit, 1, "only B's own creation row");
}

#[tokio::test]
async fn a_tenant_cannot_update_rows_of_another_or_move_its_own() {
    let db = TestDb::new().await;
    let (a, b) = two_tenants(&db).await;
    let mut conn = connect(&db.urls.app).await;
    begin_as(&mut conn, a.id).await;

    let updated = count(
        &mut conn,
        &format!("WITH u AS (UPDATE tenants SET name = 'Hijacked' WHERE id = '{}' RETURNING 1) SELECT count(*) AS n FROM u", b.id),
    )
    .await;
    assert_eq!(updated, 0);
    let moved =
        error_of(&mut conn, &format!("UPDATE tenants SET id = '{}' WHERE id = '{}'", TenantId::new(), a.id))
            .await;
    assert!(moved.contains("row-level security"), "{moved}");
    conn.batch_execute("ROLLBACK").await.unwrap();

    let mut platform = connect(&db.urls.platform).await;
    let names =
        lines(&mut platform, &format!("SELECT name AS line FROM tenants WHERE id = '{}'", b.id)).await;
    assert_eq!(names, vec!["Tenant bravo".to_owned()]);
}

#[tokio::test]
async fn a_connection_with_no_tenant_set_sees_nothing() {
    let db = TestDb::new().await;
    two_tenants(&db).await;
    let mut conn = connect(&db.urls.app).await;
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM tenants").await, 0);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM audit_log").await, 0);
}

#[tokio::test]
async fn a_pooled_connection_forgets_its_tenant_when_the_transaction_ends() {
    let db = TestDb::new().await;
    let (a, _) = two_tenants(&db).await;
    let mut conn = connect(&db.urls.app).await;

    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        scope(conn, a.id).await;
        assert_eq!(count(conn, "SELECT count(*) AS n FROM tenants").await, 1);
        Ok(())
    })
    .await
    .unwrap();

    // The same connection, as the pool hands it to the next request: the
    // setting is now '' (not NULL), which the policies read as "no tenant".
    let setting =
        lines(&mut conn, "SELECT coalesce(current_setting('app.tenant_id', true), '<null>') AS line").await;
    assert_eq!(setting, vec![String::new()]);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM tenants").await, 0);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM audit_log").await, 0);
}

#[tokio::test]
async fn turning_row_security_off_fails_rather_than_leaks() {
    let db = TestDb::new().await;
    let (a, _) = two_tenants(&db).await;
    let mut conn = connect(&db.urls.app).await;
    conn.batch_execute("SET row_security = off").await.unwrap();
    for table in ["tenants", "audit_log"] {
        let error = error_of(&mut conn, &format!("SELECT * FROM {table}")).await;
        assert!(error.contains("row-level security"), "{table}: {error}");
    }
    begin_as(&mut conn, a.id).await;
    let error = error_of(&mut conn, "SELECT * FROM tenants").await;
    assert!(error.contains("row-level security"), "{error}");
}

#[tokio::test]
async fn the_app_role_can_neither_rewrite_history_nor_lift_the_wall() {
    let db = TestDb::new().await;
    let (a, _) = two_tenants(&db).await;
    let mut conn = connect(&db.urls.app).await;
    let attempts = [
        "UPDATE audit_log SET action = 'tenant.nothing'",
        "DELETE FROM audit_log",
        "DELETE FROM tenants",
        "ALTER TABLE tenants DISABLE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON audit_log",
    ];
    for sql in attempts {
        begin_as(&mut conn, a.id).await;
        let error = error_of(&mut conn, sql).await;
        assert!(error.contains("permission denied") || error.contains("must be owner"), "{sql}: {error}");
        conn.batch_execute("ROLLBACK").await.unwrap();
    }
}

#[tokio::test]
async fn every_tenant_owned_table_is_walled_the_same_way() {
    let db = TestDb::new().await;
    let mut conn = connect(&db.urls.owner).await;
    let tables = lines(
        &mut conn,
        "SELECT relname::text AS line FROM pg_class \
         WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname <> '__diesel_schema_migrations' \
         ORDER BY relname",
    )
    .await;
    assert!(tables.contains(&"tenants".to_owned()) && tables.contains(&"audit_log".to_owned()));
    // Identity is global (looked up before any tenant is known); every other table is tenant-owned.
    let global = [
        "api_keys",
        "login_throttle",
        "one_time_tokens",
        "refresh_tokens",
        "sessions",
        "spent_challenges",
        "users",
    ];
    for table in global {
        assert!(tables.contains(&table.to_owned()), "{table} exists");
        let walled = count(
            &mut conn,
            &format!(
                "SELECT count(*) AS n FROM pg_class WHERE oid = 'public.{table}'::regclass AND relrowsecurity"
            ),
        )
        .await;
        assert_eq!(walled, 0, "{table}: global identity, not a tenant's row");
    }
    for table in tables.into_iter().filter(|t| !global.contains(&t.as_str())) {
        let forced = count(
            &mut conn,
            &format!("SELECT count(*) AS n FROM pg_class WHERE oid = 'public.{table}'::regclass AND relrowsecurity AND relforcerowsecurity"),
        )
        .await;
        assert_eq!(forced, 1, "{table}: ENABLE and FORCE ROW LEVEL SECURITY");
        let key = if table == "tenants" { "id" } else { "tenant_id" };
        let policy = format!(
            "SELECT count(*) AS n FROM pg_policies WHERE tablename = '{table}' \
             AND qual = '({key} = (NULLIF(current_setting(''app.tenant_id''::text, true), ''''::text))::uuid)' \
             AND with_check = qual"
        );
        assert_eq!(
            count(&mut conn, &policy).await,
            1,
            "{table}: one policy with USING and WITH CHECK on app.tenant_id"
        );
        if table != "tenants" {
            let leading = count(
                &mut conn,
                &format!(
                    "SELECT count(*) AS n FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
                     WHERE c.conrelid = 'public.{table}'::regclass AND c.contype IN ('p', 'f') AND a.attname <> 'tenant_id' \
                       AND NOT (c.contype = 'f' AND c.confrelid::regclass::text IN ('users', 'sessions', 'refresh_tokens', 'api_keys', 'one_time_tokens'))"
                ),
            )
            .await;
            // (A reference to a global identity row, such as a membership's user, has no tenant to lead with.)
            assert_eq!(leading, 0, "{table}: tenant_id leads the primary key and every foreign key");
        }
    }
}
