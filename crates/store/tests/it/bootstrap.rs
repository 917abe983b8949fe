//! Bootstrap: roles, database, migrations and the platform tenant, idempotently.

use diesel::QueryableByName;
use diesel::sql_types::{Bool, Text};
use diesel_async::RunQueryDsl;
use portico_kernel::PLATFORM_TENANT_ID;
use portico_store::{Admin, RolePasswords, StoreError, bootstrap, platform_tenant_exists};
use portico_testkit::TestDb;

use crate::support::{connect, count, lines};

#[derive(QueryableByName, Debug, PartialEq)]
struct Role {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Bool)]
    login: bool,
    #[diesel(sql_type = Bool)]
    bypass_rls: bool,
    #[diesel(sql_type = Bool)]
    privileged: bool,
}

#[tokio::test]
async fn bootstrap_creates_everything_once_and_can_run_again() {
    // Claim a fresh, cleaned-up name, then let bootstrap create the database itself.
    let db = TestDb::empty().await;
    let mut admin = Admin::connect(db.admin_url()).await.unwrap();
    admin.drop_database(db.name()).await.unwrap();

    let urls = bootstrap(db.admin_url(), db.name(), &RolePasswords::default()).await.unwrap();
    assert_eq!(urls, db.urls);
    let again = bootstrap(db.admin_url(), db.name(), &RolePasswords::default()).await.unwrap();
    assert_eq!(again, urls);

    let mut conn = connect(db.admin_url()).await;
    let roles: Vec<Role> = diesel::sql_query(
        "SELECT rolname::text AS name, rolcanlogin AS login, rolbypassrls AS bypass_rls, \
                (rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication) AS privileged \
         FROM pg_roles WHERE rolname LIKE 'portico\\_%' ORDER BY rolname",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let role =
        |name: &str, bypass_rls| Role { name: name.into(), login: true, bypass_rls, privileged: false };
    assert_eq!(
        roles,
        vec![role("portico_app", false), role("portico_owner", true), role("portico_platform", true)]
    );

    let owner = lines(
        &mut conn,
        &format!(
            "SELECT pg_get_userbyid(datdba)::text AS line FROM pg_database WHERE datname = '{}'",
            db.name()
        ),
    )
    .await;
    assert_eq!(owner, vec!["portico_owner".to_owned()]);

    assert!(platform_tenant_exists(&urls.owner).await.unwrap());
    let mut owner_conn = connect(&urls.owner).await;
    let platform_rows = count(
        &mut owner_conn,
        &format!("SELECT count(*) AS n FROM tenants WHERE id = '{PLATFORM_TENANT_ID}'"),
    )
    .await;
    assert_eq!(platform_rows, 1);
    let creations = count(
        &mut owner_conn,
        &format!("SELECT count(*) AS n FROM audit_log WHERE tenant_id = '{PLATFORM_TENANT_ID}' AND action = 'tenant.create' AND actor_name = 'bootstrap'"),
    )
    .await;
    assert_eq!(creations, 1, "the second bootstrap created and audited nothing");
}

#[tokio::test]
async fn bootstrap_refuses_a_database_name_it_would_have_to_quote() {
    let db = TestDb::new().await;
    let result =
        bootstrap(db.admin_url(), "portico; DROP DATABASE postgres", &RolePasswords::default()).await;
    assert!(matches!(result, Err(StoreError::Name(_))), "{result:?}");
}

#[tokio::test]
async fn other_roles_cannot_connect_to_a_portico_database() {
    let db = TestDb::new().await;
    let mut conn = connect(db.admin_url()).await;
    let acl = lines(
        &mut conn,
        &format!(
            "SELECT coalesce(datacl::text, '') AS line FROM pg_database WHERE datname = '{}'",
            db.name()
        ),
    )
    .await;
    let entries: Vec<&str> = acl[0].trim_matches(|c| c == '{' || c == '}').split(',').collect();
    assert!(entries.iter().all(|e| !e.starts_with('=')), "PUBLIC (an empty grantee) has no rights: {acl:?}");
    assert!(acl[0].contains("portico_app=c/"), "{acl:?}");
}
