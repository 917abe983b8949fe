//! The test harness itself: who tests connect as, and that nothing is left behind.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel_async::RunQueryDsl;
use portico_store::Admin;
use portico_testkit::{TestDb, sweep_now, template_name};

use crate::support::connect;

#[derive(QueryableByName, Debug)]
struct Identity {
    #[diesel(sql_type = Text)]
    who: String,
    #[diesel(sql_type = Bool)]
    bypass_rls: bool,
    #[diesel(sql_type = Bool)]
    superuser: bool,
    #[diesel(sql_type = BigInt)]
    owned: i64,
    #[diesel(sql_type = BigInt)]
    memberships: i64,
    #[diesel(sql_type = Bool)]
    can_create_in_public: bool,
}

#[tokio::test]
async fn tests_connect_as_the_app_role_which_bypasses_nothing_and_owns_nothing() {
    let db = TestDb::new().await;
    let mut conn = connect(&db.urls.app).await;
    let me: Identity = diesel::sql_query(
        "SELECT current_user::text AS who, r.rolbypassrls AS bypass_rls, r.rolsuper AS superuser, \
                (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid) AS owned, \
                (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid) AS memberships, \
                has_schema_privilege('public', 'CREATE') AS can_create_in_public \
         FROM pg_roles r WHERE r.rolname = current_user",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(me.who, "portico_app");
    assert!(!me.bypass_rls, "portico_app must not bypass row-level security");
    assert!(!me.superuser);
    assert_eq!(me.owned, 0, "portico_app owns no table, view or sequence");
    assert_eq!(me.memberships, 0, "portico_app inherits no other role's rights");
    assert!(!me.can_create_in_public, "portico_app cannot create tables of its own");
}

#[tokio::test]
async fn the_template_is_sealed_against_connections() {
    let db = TestDb::new().await;
    let mut admin = Admin::connect(db.admin_url()).await.unwrap();
    let template = admin.database(&template_name()).await.unwrap().unwrap();
    assert!(template.is_template && !template.allow_connections, "{template:?}");
}

#[tokio::test]
async fn a_test_database_is_dropped_with_its_handle() {
    let db = TestDb::new().await;
    let name = db.name().to_owned();
    let admin_url = db.admin_url().to_owned();
    let mut admin = Admin::connect(&admin_url).await.unwrap();
    assert!(admin.database(&name).await.unwrap().is_some());
    drop(db);
    assert_eq!(admin.database(&name).await.unwrap(), None);
}

#[tokio::test]
async fn databases_left_by_a_crashed_run_are_swept() {
    let db = TestDb::new().await;
    let mut admin = Admin::connect(db.admin_url()).await.unwrap();
    // A process id above Linux's pid_max: certainly not running.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let stale = format!("portico_test_4194400_{now}_0");
    admin.create_database(&stale, None).await.unwrap();
    sweep_now().await;
    assert_eq!(admin.database(&stale).await.unwrap(), None);
    assert!(admin.database(db.name()).await.unwrap().is_some(), "a live test's database stays");
}
