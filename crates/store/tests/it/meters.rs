//! Sites, meters and readings against real PostgreSQL: the site tree and
//! its references, meters and their succession, reading batches all or
//! nothing (also when two race for one meter), readings pulled from a
//! source, imports by serial number, consumption across a replacement in
//! the tenant's time zone, and other tenants seeing none of it.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use diesel_async::AsyncPgConnection;
use portico_kernel::{FixedClock, MeterId, PageRequest, SiteId, TenantContext};
use portico_metering::{
    Granularity, ImportedReading, Meter, MeterChanges, MeterDraft, MeterKind, MeterPlace, MeteringError,
    Reading, ReadingMode, ReadingRules, ReadingSource, ReadingStatus, ReadingsImport, Replacement, Site,
    SiteDraft, SiteKind, candidate,
};
use portico_store::{FlaggedReading, MeterFilter, ReadingsAdded, Store};
use portico_testkit::TestDb;
use rust_decimal::Decimal;

use crate::support::{connect, count, lines, member_of, tenant};

/// The fixed now of every test: after every instant a test reads at.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 15, 0, 0, 0).unwrap()
}

/// `day` March 2026 at `hour`:00 UTC.
fn mar(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
}

fn dec(value: i64) -> Decimal {
    Decimal::from(value)
}

fn date(month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, month, day).unwrap()
}

/// A tenant, `acme`, and a store telling time by [`now`].
struct World {
    db: TestDb,
    store: Store,
    ctx: TenantContext,
}

impl World {
    async fn new() -> Self {
        let db = TestDb::new().await;
        let store = db.store().await.with_clock(Arc::new(FixedClock::at(now())));
        let ctx = member_of(tenant(&store, "acme").await.id);
        Self { db, store, ctx }
    }

    /// Another tenant's member.
    async fn other(&self, slug: &str) -> TenantContext {
        member_of(tenant(&self.store, slug).await.id)
    }

    /// A second store on the same database (its own connections), same clock.
    async fn second_store(&self) -> Store {
        self.db.store().await.with_clock(Arc::new(FixedClock::at(now())))
    }

    /// A connection that sees every tenant's rows, to check what is stored.
    async fn conn(&self) -> AsyncPgConnection {
        connect(&self.db.urls.platform).await
    }

    async fn site(&self, kind: SiteKind, name: &str, parent: Option<SiteId>) -> Site {
        self.store.create_site(&self.ctx, site_draft(kind, name, parent, None)).await.unwrap()
    }

    async fn install(&self, draft: MeterDraft) -> Meter {
        self.store.install_meter(&self.ctx, draft).await.unwrap()
    }

    /// A register on subject `flat-1` counting from 0 since 1 March.
    async fn counter(&self) -> Meter {
        self.install(register(subject("flat-1"), mar(1, 0), Some(0))).await
    }

    async fn add(&self, readings: Vec<Reading>) -> Result<ReadingsAdded, MeteringError> {
        self.store.add_readings(&self.ctx, readings, ReadingRules::default()).await
    }
}

fn site_draft(
    kind: SiteKind,
    name: &str,
    parent_id: Option<SiteId>,
    external_ref: Option<&str>,
) -> SiteDraft {
    SiteDraft { parent_id, kind, name: name.into(), external_ref: external_ref.map(str::to_owned) }
}

fn subject(key: &str) -> MeterPlace {
    MeterPlace::Subject { subject: key.into() }
}

fn on_site(site_id: SiteId) -> MeterPlace {
    MeterPlace::Site { site_id }
}

/// An electricity register (kWh, no digits) in service from `from` at `start`.
fn register(place: MeterPlace, from: DateTime<Utc>, start: Option<i64>) -> MeterDraft {
    MeterDraft {
        place,
        kind: MeterKind::Electricity,
        unit: "kWh".into(),
        mode: ReadingMode::Register { digits: None },
        serial_number: None,
        active_from: Some(from),
        start_reading: start.map(dec),
    }
}

/// A reading typed in by a person.
fn read(meter: MeterId, at: DateTime<Utc>, value: i64) -> Reading {
    candidate(meter, at, dec(value), false, ReadingSource::Manual)
}

/// A reading a source sent.
fn pulled(meter: MeterId, at: DateTime<Utc>, value: i64) -> Reading {
    candidate(meter, at, dec(value), false, ReadingSource::Integration)
}

fn added(accepted: u64, duplicates: u64, rejected: u64, flagged: Vec<FlaggedReading>) -> ReadingsAdded {
    ReadingsAdded { accepted, duplicates, rejected, flagged }
}

/// The refused readings of a batch: place and code.
fn refusals(result: Result<ReadingsAdded, MeteringError>) -> Vec<(usize, &'static str)> {
    match result {
        Err(MeteringError::ReadingsRefused(refused)) => refused.iter().map(|r| (r.index, r.code)).collect(),
        other => panic!("expected a refused batch, got {other:?}"),
    }
}

/// The refused lines of an import: line and code.
fn import_errors(result: Result<ReadingsAdded, MeteringError>) -> Vec<(u64, &'static str)> {
    match result {
        Err(MeteringError::ImportRefused(report)) => report.errors.iter().map(|e| (e.line, e.code)).collect(),
        other => panic!("expected a refused import, got {other:?}"),
    }
}

fn invalid_fields<T: std::fmt::Debug>(result: Result<T, MeteringError>) -> Vec<String> {
    match result {
        Err(MeteringError::Invalid(errors)) => errors.fields().into_iter().map(str::to_owned).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// The rows of a readings file.
fn csv(text: &str) -> Vec<ImportedReading> {
    let mut import = ReadingsImport::new();
    import.feed(text.as_bytes());
    import.finish().unwrap()
}

/// The stored readings of `meter`, oldest first: `MM-DD HH:MI value status [flag] [reason]`.
async fn stored(conn: &mut AsyncPgConnection, meter: MeterId) -> Vec<String> {
    lines(
        conn,
        &format!(
            "SELECT to_char(at AT TIME ZONE 'UTC', 'MM-DD HH24:MI') || ' ' || value::text || ' ' || status \
                    || coalesce(' ' || flagged, '') || coalesce(' ' || reason, '') AS line \
             FROM meter_readings WHERE meter_id = '{meter}' ORDER BY at"
        ),
    )
    .await
}

async fn readings_in_all(conn: &mut AsyncPgConnection) -> i64 {
    count(conn, "SELECT count(*) AS n FROM meter_readings").await
}

/// The site tree as stored: `name parent-name-or-dash`, by name.
async fn tree(conn: &mut AsyncPgConnection) -> Vec<String> {
    lines(
        conn,
        "SELECT s.name || ' ' || coalesce(p.name, '-') AS line FROM metering_sites s \
         LEFT JOIN metering_sites p ON p.tenant_id = s.tenant_id AND p.id = s.parent_id ORDER BY s.name",
    )
    .await
}

/// The metering audit trail of `ctx`'s tenant: `action resource-id`, by action.
async fn trail(conn: &mut AsyncPgConnection, ctx: &TenantContext) -> Vec<String> {
    lines(
        conn,
        &format!(
            "SELECT action || ' ' || resource_id AS line FROM audit_log \
             WHERE tenant_id = '{}' AND action LIKE 'metering.%' ORDER BY action, resource_id",
            ctx.tenant_id
        ),
    )
    .await
}

// ---------------------------------------------------------------- sites

#[tokio::test]
async fn sites_are_created_read_back_and_listed_by_name() {
    let w = World::new().await;
    let park = w
        .store
        .create_site(&w.ctx, site_draft(SiteKind::Property, "Zeta Park", None, Some("P-1")))
        .await
        .unwrap();
    let house = w.site(SiteKind::Building, "Alpha House", Some(park.id)).await;
    assert_eq!(
        (park.parent_id, park.kind, park.name.as_str(), park.external_ref.as_deref()),
        (None, SiteKind::Property, "Zeta Park", Some("P-1"))
    );
    assert_eq!(house.parent_id, Some(park.id));
    assert_eq!(w.store.site(&w.ctx, park.id).await.unwrap(), park);
    assert_eq!(w.store.site(&w.ctx, house.id).await.unwrap(), house);
    let page = w.store.sites(&w.ctx, PageRequest::default()).await.unwrap();
    assert_eq!((page.items, page.total), (vec![house, park.clone()], 2));
    let second = w.store.sites(&w.ctx, PageRequest::new(2, 1).unwrap()).await.unwrap();
    assert_eq!((second.items, second.total), (vec![park], 2), "paged by name");
    let mut conn = w.conn().await;
    assert_eq!(tree(&mut conn).await, ["Alpha House Zeta Park", "Zeta Park -"]);
}

#[tokio::test]
async fn a_site_moves_to_another_parent() {
    let w = World::new().await;
    let north = w.site(SiteKind::Building, "North", None).await;
    let south = w.site(SiteKind::Building, "South", None).await;
    let flat = w.site(SiteKind::Unit, "Flat 1", Some(north.id)).await;
    let moved = w
        .store
        .update_site(&w.ctx, flat.id, site_draft(SiteKind::Unit, "Flat 1", Some(south.id), None))
        .await
        .unwrap();
    assert_eq!(moved, Site { parent_id: Some(south.id), ..flat.clone() });
    assert_eq!(w.store.site(&w.ctx, flat.id).await.unwrap(), moved);
    let mut conn = w.conn().await;
    assert_eq!(tree(&mut conn).await, ["Flat 1 South", "North -", "South -"]);
}

#[tokio::test]
async fn a_site_cannot_move_below_itself_or_its_descendants() {
    let w = World::new().await;
    let park = w.site(SiteKind::Property, "Park", None).await;
    let house = w.site(SiteKind::Building, "House", Some(park.id)).await;
    let flat = w.site(SiteKind::Unit, "Flat", Some(house.id)).await;
    for below in [flat.id, house.id, park.id] {
        let moved = w
            .store
            .update_site(&w.ctx, park.id, site_draft(SiteKind::Property, "Park", Some(below), None))
            .await;
        assert!(matches!(moved, Err(MeteringError::SiteCycle)), "{moved:?}");
    }
    let mut conn = w.conn().await;
    assert_eq!(tree(&mut conn).await, ["Flat House", "House Park", "Park -"]);
    assert!(!trail(&mut conn, &w.ctx).await.iter().any(|a| a.starts_with("metering.site.update")));
}

#[tokio::test]
async fn a_parent_of_another_tenant_is_refused_as_parent_id() {
    let w = World::new().await;
    let globex = w.other("globex").await;
    let theirs =
        w.store.create_site(&globex, site_draft(SiteKind::Property, "Theirs", None, None)).await.unwrap();
    let created =
        w.store.create_site(&w.ctx, site_draft(SiteKind::Unit, "Mine", Some(theirs.id), None)).await;
    assert_eq!(invalid_fields(created), ["parentId"]);
    let mine = w.site(SiteKind::Unit, "Mine", None).await;
    let moved =
        w.store.update_site(&w.ctx, mine.id, site_draft(SiteKind::Unit, "Mine", Some(theirs.id), None)).await;
    assert_eq!(invalid_fields(moved), ["parentId"]);
    let mut conn = w.conn().await;
    assert_eq!(tree(&mut conn).await, ["Mine -", "Theirs -"]);
}

#[tokio::test]
async fn an_external_ref_is_unique_within_a_tenant_but_not_across_tenants() {
    let w = World::new().await;
    let draft = |name: &str, reference: &str| site_draft(SiteKind::Unit, name, None, Some(reference));
    w.store.create_site(&w.ctx, draft("Flat 1", "HV-1")).await.unwrap();
    assert_eq!(invalid_fields(w.store.create_site(&w.ctx, draft("Flat 2", "HV-1")).await), ["externalRef"]);
    let flat_2 = w.store.create_site(&w.ctx, draft("Flat 2", "HV-2")).await.unwrap();
    assert_eq!(
        invalid_fields(w.store.update_site(&w.ctx, flat_2.id, draft("Flat 2", "HV-1")).await),
        ["externalRef"]
    );
    let globex = w.other("globex").await;
    let theirs = w.store.create_site(&globex, draft("Their flat", "HV-1")).await.unwrap();
    assert_eq!(theirs.external_ref.as_deref(), Some("HV-1"));
    let mut conn = w.conn().await;
    let refs =
        lines(&mut conn, "SELECT name || ' ' || external_ref AS line FROM metering_sites ORDER BY name")
            .await;
    assert_eq!(refs, ["Flat 1 HV-1", "Flat 2 HV-2", "Their flat HV-1"]);
}

#[tokio::test]
async fn a_site_with_a_site_or_a_meter_below_it_is_not_deleted() {
    let w = World::new().await;
    let park = w.site(SiteKind::Property, "Park", None).await;
    w.site(SiteKind::Building, "House", Some(park.id)).await;
    let garage = w.site(SiteKind::Other, "Garage", None).await;
    w.install(register(on_site(garage.id), mar(1, 0), None)).await;
    for id in [park.id, garage.id] {
        let deleted = w.store.delete_site(&w.ctx, id).await;
        assert!(matches!(deleted, Err(MeteringError::SiteInUse)), "{deleted:?}");
    }
    let mut conn = w.conn().await;
    assert_eq!(tree(&mut conn).await, ["Garage -", "House Park", "Park -"]);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM meters").await, 1);
    assert!(!trail(&mut conn, &w.ctx).await.iter().any(|a| a.starts_with("metering.site.delete")));
}

#[tokio::test]
async fn an_empty_site_is_deleted() {
    let w = World::new().await;
    let park = w.site(SiteKind::Property, "Park", None).await;
    let house = w.site(SiteKind::Building, "House", Some(park.id)).await;
    w.store.delete_site(&w.ctx, house.id).await.unwrap();
    assert!(matches!(w.store.site(&w.ctx, house.id).await, Err(MeteringError::SiteNotFound)));
    assert!(matches!(w.store.delete_site(&w.ctx, house.id).await, Err(MeteringError::SiteNotFound)));
    w.store.delete_site(&w.ctx, park.id).await.unwrap();
    let mut conn = w.conn().await;
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM metering_sites").await, 0);
}

#[tokio::test]
async fn creating_changing_and_deleting_a_site_are_audited_with_what_changed() {
    let w = World::new().await;
    let garage = w.site(SiteKind::Other, "Garage", None).await;
    w.store
        .update_site(&w.ctx, garage.id, site_draft(SiteKind::Other, "Car park", None, None))
        .await
        .unwrap();
    w.store.delete_site(&w.ctx, garage.id).await.unwrap();
    let mut conn = w.conn().await;
    let id = garage.id;
    assert_eq!(
        trail(&mut conn, &w.ctx).await,
        [
            format!("metering.site.create {id}"),
            format!("metering.site.delete {id}"),
            format!("metering.site.update {id}")
        ]
    );
    let update = lines(
        &mut conn,
        &format!(
            "SELECT changes::text AS line FROM audit_log \
             WHERE action = 'metering.site.update' AND resource_id = '{id}'"
        ),
    )
    .await;
    let update: serde_json::Value = serde_json::from_str(&update[0]).unwrap();
    assert_eq!(update, serde_json::json!({"name": {"before": "Garage", "after": "Car park"}}));
}

// ---------------------------------------------------------------- meters

#[tokio::test]
async fn meters_are_installed_on_a_site_or_on_a_subject() {
    let w = World::new().await;
    let flat = w.site(SiteKind::Unit, "Flat 1", None).await;
    let power = w
        .install(MeterDraft {
            serial_number: Some("E-1".into()),
            ..register(on_site(flat.id), mar(1, 0), Some(1000))
        })
        .await;
    let calls = w
        .install(MeterDraft {
            place: subject("customer-42"),
            kind: MeterKind::ApiCalls,
            unit: "calls".into(),
            mode: ReadingMode::Interval,
            serial_number: None,
            active_from: Some(mar(2, 0)),
            start_reading: None,
        })
        .await;
    assert_eq!(
        (&power.place, power.start_reading, power.active_from, power.replaces),
        (&on_site(flat.id), Some(dec(1000)), mar(1, 0), None)
    );
    assert_eq!(w.store.meter(&w.ctx, power.id).await.unwrap(), power);
    assert_eq!(w.store.meter(&w.ctx, calls.id).await.unwrap(), calls);
    let on_flat = MeterFilter { site_id: Some(flat.id), ..MeterFilter::default() };
    assert_eq!(
        w.store.meters(&w.ctx, on_flat, PageRequest::default()).await.unwrap().items,
        std::slice::from_ref(&power)
    );
    let of_customer = MeterFilter { subject: Some("customer-42".into()), ..MeterFilter::default() };
    assert_eq!(
        w.store.meters(&w.ctx, of_customer, PageRequest::default()).await.unwrap().items,
        std::slice::from_ref(&calls)
    );
    let all = w.store.meters(&w.ctx, MeterFilter::default(), PageRequest::default()).await.unwrap();
    assert_eq!((all.items, all.total), (vec![calls, power], 2), "newest first");
    let mut conn = w.conn().await;
    let rows = lines(
        &mut conn,
        "SELECT coalesce(site_id::text, subject) || ' ' || kind || ' ' || mode || ' ' \
                || coalesce(start_reading::text, '-') || ' ' || coalesce(serial_number, '-') AS line \
         FROM meters ORDER BY active_from",
    )
    .await;
    assert_eq!(
        rows,
        [format!("{} electricity register 1000 E-1", flat.id), "customer-42 api_calls interval - -".into()]
    );
}

#[tokio::test]
async fn a_meter_on_a_site_of_another_tenant_is_refused() {
    let w = World::new().await;
    let globex = w.other("globex").await;
    let theirs =
        w.store.create_site(&globex, site_draft(SiteKind::Unit, "Theirs", None, None)).await.unwrap();
    let installed = w.store.install_meter(&w.ctx, register(on_site(theirs.id), mar(1, 0), None)).await;
    assert_eq!(invalid_fields(installed), ["place.siteId"]);
    let mut conn = w.conn().await;
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM meters").await, 0);
}

#[tokio::test]
async fn a_register_installed_without_a_start_reading_starts_at_zero_now() {
    let w = World::new().await;
    let meter =
        w.install(MeterDraft { active_from: None, ..register(subject("flat-1"), mar(1, 0), None) }).await;
    assert_eq!((meter.start_reading, meter.active_from), (Some(Decimal::ZERO), now()));
    let mut conn = w.conn().await;
    let row = lines(
        &mut conn,
        "SELECT start_reading::text || ' ' || (active_from = '2026-04-15T00:00:00Z')::text AS line \
         FROM meters",
    )
    .await;
    assert_eq!(row, ["0 true"]);
    assert_eq!(w.store.meter(&w.ctx, meter.id).await.unwrap(), meter);
}

#[tokio::test]
async fn a_meters_place_and_serial_number_change_and_nothing_else() {
    let w = World::new().await;
    let flat = w.site(SiteKind::Unit, "Flat 1", None).await;
    let meter = w
        .install(MeterDraft {
            serial_number: Some("E-1".into()),
            ..register(on_site(flat.id), mar(1, 0), Some(7))
        })
        .await;
    let changes = MeterChanges { place: subject("customer-7"), serial_number: Some("E-9".into()) };
    let changed = w.store.update_meter(&w.ctx, meter.id, changes).await.unwrap();
    assert_eq!(
        changed,
        Meter { place: subject("customer-7"), serial_number: Some("E-9".into()), ..meter.clone() }
    );
    assert_eq!(w.store.meter(&w.ctx, meter.id).await.unwrap(), changed);
    let back = MeterChanges { place: on_site(flat.id), serial_number: None };
    let back = w.store.update_meter(&w.ctx, meter.id, back).await.unwrap();
    assert_eq!((&back.place, back.serial_number.as_deref()), (&on_site(flat.id), None));
    let mut conn = w.conn().await;
    let row = lines(
        &mut conn,
        "SELECT coalesce(site_id::text, '-') || ' ' || coalesce(subject, '-') || ' ' \
                || coalesce(serial_number, '-') \
                || ' ' || kind || ' ' || unit || ' ' || start_reading::text AS line FROM meters",
    )
    .await;
    assert_eq!(row, [format!("{} - - electricity kWh 7", flat.id)]);
    let updates =
        count(&mut conn, "SELECT count(*) AS n FROM audit_log WHERE action = 'metering.meter.update'").await;
    assert_eq!(updates, 2);
}

#[tokio::test]
async fn a_meter_with_readings_is_not_deleted() {
    let w = World::new().await;
    let meter = w.counter().await;
    w.add(vec![read(meter.id, mar(2, 0), 10)]).await.unwrap();
    let deleted = w.store.delete_meter(&w.ctx, meter.id).await;
    assert!(matches!(deleted, Err(MeteringError::MeterInUse)), "{deleted:?}");
    assert_eq!(w.store.meter(&w.ctx, meter.id).await.unwrap(), meter);
    let mut conn = w.conn().await;
    assert_eq!(stored(&mut conn, meter.id).await, ["03-02 00:00 10 valid"]);
}

#[tokio::test]
async fn a_meter_without_readings_is_deleted() {
    let w = World::new().await;
    let meter = w.counter().await;
    w.store.delete_meter(&w.ctx, meter.id).await.unwrap();
    assert!(matches!(w.store.meter(&w.ctx, meter.id).await, Err(MeteringError::MeterNotFound)));
    let mut conn = w.conn().await;
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM meters").await, 0);
    assert_eq!(
        trail(&mut conn, &w.ctx).await,
        [format!("metering.meter.create {}", meter.id), format!("metering.meter.delete {}", meter.id)]
    );
}

// ---------------------------------------------------------------- reading batches

#[tokio::test]
async fn accepted_readings_are_stored_with_their_status_and_audited_per_meter() {
    let w = World::new().await;
    let power = w.counter().await;
    let water = w.install(register(subject("flat-2"), mar(1, 0), Some(100))).await;
    let estimate = candidate(water.id, mar(2, 0), dec(150), true, ReadingSource::Manual);
    let report =
        w.add(vec![read(power.id, mar(3, 0), 25), estimate, read(power.id, mar(2, 0), 10)]).await.unwrap();
    assert_eq!(report, added(3, 0, 0, vec![]));
    let mut conn = w.conn().await;
    assert_eq!(stored(&mut conn, power.id).await, ["03-02 00:00 10 valid", "03-03 00:00 25 valid"]);
    assert_eq!(stored(&mut conn, water.id).await, ["03-02 00:00 150 estimated"]);
    let listed = w.store.readings(&w.ctx, water.id, None, None, PageRequest::default()).await.unwrap();
    assert_eq!(
        listed.items.iter().map(|r| (r.value, r.source, r.status.clone())).collect::<Vec<_>>(),
        [(dec(150), ReadingSource::Manual, ReadingStatus::Estimated)]
    );
    let audit = lines(
        &mut conn,
        "SELECT resource_id || ' ' || changes::text AS line FROM audit_log \
         WHERE action = 'metering.readings.add' ORDER BY resource_id",
    )
    .await;
    let mut audit = audit;
    audit.sort();
    let mut expected = [
        format!("{} {{\"source\": {{\"after\": \"manual\"}}, \"readings\": {{\"after\": 2}}}}", power.id),
        format!("{} {{\"source\": {{\"after\": \"manual\"}}, \"readings\": {{\"after\": 1}}}}", water.id),
    ];
    expected.sort();
    assert_eq!(audit, expected);
}

#[tokio::test]
async fn a_meters_readings_are_listed_oldest_first_within_the_period() {
    let w = World::new().await;
    let meter = w.counter().await;
    w.add((2..=5).map(|d| read(meter.id, mar(d, 0), i64::from(d) * 10)).collect()).await.unwrap();
    let page =
        w.store.readings(&w.ctx, meter.id, Some(mar(3, 0)), Some(mar(5, 0)), PageRequest::default()).await;
    let page = page.unwrap();
    assert_eq!(
        page.items.iter().map(|r| (r.at, r.value)).collect::<Vec<_>>(),
        [(mar(3, 0), dec(30)), (mar(4, 0), dec(40))]
    );
    assert_eq!(page.total, 2, "the end is not included");
}

/// A batch of two good readings around `bad` (after the meter's stored
/// reading of 5 March): refused, `bad` named by its place, none of it stored.
async fn assert_refused_whole(w: &World, meter: &Meter, bad: Reading, code: &str) {
    w.add(vec![read(meter.id, mar(5, 0), 50)]).await.unwrap();
    let batch = vec![read(meter.id, mar(6, 0), 60), bad, read(meter.id, mar(8, 0), 80)];
    assert_eq!(refusals(w.add(batch).await), [(1, code)]);
    let mut conn = w.conn().await;
    assert_eq!(stored(&mut conn, meter.id).await, ["03-05 00:00 50 valid"]);
    assert_eq!(readings_in_all(&mut conn).await, 1, "no reading of the batch anywhere");
    let audited =
        count(&mut conn, "SELECT count(*) AS n FROM audit_log WHERE action = 'metering.readings.add'");
    assert_eq!(audited.await, 1, "only the first batch is audited");
}

#[tokio::test]
async fn a_reading_below_the_previous_refuses_the_whole_batch() {
    let w = World::new().await;
    let meter = w.counter().await;
    // 40 on 7 March after the batch's own 60 on 6 March.
    assert_refused_whole(&w, &meter, read(meter.id, mar(7, 0), 40), "metering.reading_below_previous").await;
}

#[tokio::test]
async fn a_reading_in_the_future_refuses_the_whole_batch() {
    let w = World::new().await;
    let meter = w.counter().await;
    let tomorrow = now() + chrono::TimeDelta::days(1);
    assert_refused_whole(&w, &meter, read(meter.id, tomorrow, 90), "metering.reading_in_future").await;
}

#[tokio::test]
async fn a_reading_of_an_unknown_meter_refuses_the_whole_batch() {
    let w = World::new().await;
    let meter = w.counter().await;
    assert_refused_whole(&w, &meter, read(MeterId::new(), mar(7, 0), 70), "metering.meter_not_found").await;
}

#[tokio::test]
async fn a_reading_of_another_tenants_meter_refuses_the_whole_batch() {
    let w = World::new().await;
    let meter = w.counter().await;
    let globex = w.other("globex").await;
    let theirs =
        w.store.install_meter(&globex, register(subject("flat-1"), mar(1, 0), Some(0))).await.unwrap();
    assert_refused_whole(&w, &meter, read(theirs.id, mar(7, 0), 70), "metering.meter_not_found").await;
}

#[tokio::test]
async fn every_refused_reading_of_a_batch_is_named_in_batch_order() {
    let w = World::new().await;
    let meter = w.counter().await;
    let batch = vec![
        read(meter.id, now() + chrono::TimeDelta::hours(1), 90),
        read(meter.id, mar(2, 0), 20),
        read(MeterId::new(), mar(2, 0), 1),
        read(meter.id, mar(3, 0), 10),
    ];
    assert_eq!(
        refusals(w.add(batch).await),
        [
            (0, "metering.reading_in_future"),
            (2, "metering.meter_not_found"),
            (3, "metering.reading_below_previous")
        ]
    );
    let mut conn = w.conn().await;
    assert_eq!(readings_in_all(&mut conn).await, 0);
}

#[tokio::test]
async fn the_same_batch_again_adds_nothing_and_counts_duplicates() {
    let w = World::new().await;
    let meter = w.counter().await;
    let batch = || (2..=4).map(|d| read(meter.id, mar(d, 0), i64::from(d) * 10)).collect::<Vec<_>>();
    assert_eq!(w.add(batch()).await.unwrap(), added(3, 0, 0, vec![]));
    assert_eq!(w.add(batch()).await.unwrap(), added(0, 3, 0, vec![]));
    let mut conn = w.conn().await;
    assert_eq!(
        stored(&mut conn, meter.id).await,
        ["03-02 00:00 20 valid", "03-03 00:00 30 valid", "03-04 00:00 40 valid"]
    );
    let audited =
        count(&mut conn, "SELECT count(*) AS n FROM audit_log WHERE action = 'metering.readings.add'").await;
    assert_eq!(audited, 1, "a batch that added nothing leaves no audit row");
}

#[tokio::test]
async fn another_value_at_a_stored_instant_is_refused_as_a_conflict() {
    let w = World::new().await;
    let meter = w.counter().await;
    w.add(vec![read(meter.id, mar(5, 0), 50)]).await.unwrap();
    let batch = vec![read(meter.id, mar(6, 0), 60), read(meter.id, mar(5, 0), 55)];
    assert_eq!(refusals(w.add(batch).await), [(1, "metering.reading_conflict")]);
    let mut conn = w.conn().await;
    assert_eq!(stored(&mut conn, meter.id).await, ["03-05 00:00 50 valid"]);
}

#[tokio::test]
async fn a_register_rolling_over_is_stored_and_counted_across_the_rollover() {
    let w = World::new().await;
    let meter = w
        .install(MeterDraft {
            mode: ReadingMode::Register { digits: Some(4) },
            ..register(subject("flat-1"), mar(1, 0), Some(9_900))
        })
        .await;
    let report = w.add(vec![read(meter.id, mar(2, 0), 9_990), read(meter.id, mar(3, 0), 20)]).await.unwrap();
    assert_eq!(report, added(2, 0, 0, vec![]));
    let mut conn = w.conn().await;
    assert_eq!(stored(&mut conn, meter.id).await, ["03-02 00:00 9990 valid", "03-03 00:00 20 valid"]);
    // 9_990 - 9_900 = 90, then 10_000 - 9_990 + 20 = 30.
    let used = w.store.consumption(&w.ctx, meter.id, mar(1, 0), mar(3, 0), None).await.unwrap();
    assert_eq!(used.total, dec(120));
}

#[tokio::test]
async fn a_spike_is_stored_flagged_and_reported_by_its_place() {
    let w = World::new().await;
    let meter = w.counter().await;
    // 10 a day from 2 to 7 March: five increases of 10 before the next reading.
    w.add((2..=7).map(|d| read(meter.id, mar(d, 0), i64::from(d - 1) * 10)).collect()).await.unwrap();
    // 8 March: 60 -> 260 is 200, 20 times the trailing 10; 9 March: +10 again.
    let report = w.add(vec![read(meter.id, mar(9, 0), 270), read(meter.id, mar(8, 0), 260)]).await.unwrap();
    let flag = "spike: 20x the trailing average";
    assert_eq!(report, added(2, 0, 0, vec![FlaggedReading { index: 1, flag: flag.into() }]));
    let mut conn = w.conn().await;
    let last_two = stored(&mut conn, meter.id).await.split_off(6);
    assert_eq!(last_two, [format!("03-08 00:00 260 valid {flag}"), "03-09 00:00 270 valid".into()]);
    let listed =
        w.store.readings(&w.ctx, meter.id, Some(mar(8, 0)), None, PageRequest::default()).await.unwrap();
    assert_eq!(listed.items[0].flagged.as_deref(), Some(flag));
}

/// Runs `a` and `b` as two batches of two stores at once, on threads of their own.
async fn race(
    stores: (&Store, &Store),
    ctx: &TenantContext,
    a: Vec<Reading>,
    b: Vec<Reading>,
) -> (Result<ReadingsAdded, MeteringError>, Result<ReadingsAdded, MeteringError>) {
    let batch = |store: &Store, readings: Vec<Reading>| {
        let (store, ctx) = (store.clone(), ctx.clone());
        tokio::spawn(async move { store.add_readings(&ctx, readings, ReadingRules::default()).await })
    };
    let (a, b) = tokio::join!(batch(stores.0, a), batch(stores.1, b));
    (a.unwrap(), b.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_batches_never_store_a_register_out_of_order() {
    let w = World::new().await;
    let second = w.second_store().await;
    for round in 0..8 {
        let meter = w.counter().await;
        // Each is fine alone; together 50 on 6 March would follow 100 on 5 March.
        let (a, b) = race(
            (&w.store, &second),
            &w.ctx,
            vec![read(meter.id, mar(5, 0), 100)],
            vec![read(meter.id, mar(6, 0), 50)],
        )
        .await;
        let outcomes = [a, b].map(|r| match r {
            Ok(report) => format!("ok {}", report.accepted),
            Err(e) => format!("{:?}", refusals(Err(e))),
        });
        assert!(
            outcomes == ["ok 1", "[(0, \"metering.reading_below_previous\")]"]
                || outcomes == ["[(0, \"metering.reading_below_previous\")]", "ok 1"],
            "round {round}: {outcomes:?}"
        );
        let mut conn = w.conn().await;
        assert_eq!(stored(&mut conn, meter.id).await.len(), 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_batches_at_one_instant_store_one_value() {
    let w = World::new().await;
    let second = w.second_store().await;
    for round in 0..8 {
        let meter = w.counter().await;
        let (a, b) = race(
            (&w.store, &second),
            &w.ctx,
            vec![read(meter.id, mar(5, 0), 100)],
            vec![read(meter.id, mar(5, 0), 120)],
        )
        .await;
        let (won, lost) = if a.is_ok() { (a, b) } else { (b, a) };
        assert_eq!(won.unwrap(), added(1, 0, 0, vec![]), "round {round}");
        assert_eq!(refusals(lost), [(0, "metering.reading_conflict")], "round {round}");
        // The same reading twice at once: stored once, the other a duplicate.
        let (a, b) = race(
            (&w.store, &second),
            &w.ctx,
            vec![read(meter.id, mar(6, 0), 130)],
            vec![read(meter.id, mar(6, 0), 130)],
        )
        .await;
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!((a.accepted + b.accepted, a.duplicates + b.duplicates), (1, 1), "round {round}");
        let mut conn = w.conn().await;
        assert_eq!(stored(&mut conn, meter.id).await.len(), 2, "round {round}");
    }
}

// ---------------------------------------------------------------- pulled readings

#[tokio::test]
async fn a_pulled_reading_that_is_refused_is_kept_as_rejected_and_never_counts() {
    let w = World::new().await;
    let meter = w.counter().await;
    let batch = vec![
        pulled(meter.id, mar(2, 0), 10),
        pulled(meter.id, mar(3, 0), 5),
        pulled(meter.id, mar(4, 0), 30),
    ];
    let report = w.store.add_pulled_readings(&w.ctx, batch, ReadingRules::default()).await.unwrap();
    assert_eq!(report, added(2, 0, 1, vec![]));
    let mut conn = w.conn().await;
    assert_eq!(
        stored(&mut conn, meter.id).await,
        [
            "03-02 00:00 10 valid",
            "03-03 00:00 5 rejected the reading 5 is below the previous 10 and no rollover explains it",
            "03-04 00:00 30 valid"
        ]
    );
    let sources = lines(&mut conn, "SELECT DISTINCT source AS line FROM meter_readings").await;
    assert_eq!(sources, ["integration"]);
    // 30 from the start reading 0 on 1 March; the rejected 5 plays no part.
    let used = w.store.consumption(&w.ctx, meter.id, mar(1, 0), mar(4, 0), None).await.unwrap();
    assert_eq!(used.total, dec(30));
}

#[tokio::test]
async fn a_pulled_reading_at_an_instant_the_meter_has_is_rejected_without_a_second_row() {
    let w = World::new().await;
    let meter = w.counter().await;
    let pull = |readings| w.store.add_pulled_readings(&w.ctx, readings, ReadingRules::default());
    pull(vec![pulled(meter.id, mar(2, 0), 10)]).await.unwrap();
    // Another value for 2 March, and within the batch two values for 3 March.
    let batch = vec![
        pulled(meter.id, mar(2, 0), 12),
        pulled(meter.id, mar(3, 0), 20),
        pulled(meter.id, mar(3, 0), 21),
        pulled(meter.id, mar(4, 0), 30),
    ];
    assert_eq!(pull(batch).await.unwrap(), added(2, 0, 2, vec![]));
    let mut conn = w.conn().await;
    assert_eq!(
        stored(&mut conn, meter.id).await,
        ["03-02 00:00 10 valid", "03-03 00:00 20 valid", "03-04 00:00 30 valid"]
    );
}

// ---------------------------------------------------------------- imports

/// Meter `E-1` (from 1000 on 1 March) read 1040 on 5 March, replaced on
/// 11 March at 1100 by a meter starting at 0 with serial `successor_serial`.
async fn replaced_meter(w: &World, successor_serial: &str) -> (Meter, Meter) {
    let old = w
        .install(MeterDraft {
            serial_number: Some("E-1".into()),
            ..register(subject("flat-1"), mar(1, 0), Some(1000))
        })
        .await;
    w.add(vec![read(old.id, mar(5, 0), 1040)]).await.unwrap();
    let replacement = Replacement {
        at: mar(11, 0),
        closing_reading: Some(dec(1100)),
        serial_number: Some(successor_serial.into()),
        start_reading: Some(Decimal::ZERO),
    };
    let replaced = w.store.replace_meter(&w.ctx, old.id, replacement, ReadingRules::default()).await.unwrap();
    (replaced.closed, replaced.successor)
}

#[tokio::test]
async fn an_import_names_the_meter_in_service_at_each_readings_time_by_its_serial_number() {
    let w = World::new().await;
    // The recalibrated meter keeps its serial number.
    let (old, new) = replaced_meter(&w, "E-1").await;
    let rows = csv("serialNumber,at,value\n\
         E-1,2026-03-08T00:00:00Z,1070\n\
         E-1,2026-03-13T00:00:00+01:00,20\n");
    let report = w.store.import_readings(&w.ctx, rows, ReadingRules::default()).await.unwrap();
    assert_eq!(report, added(2, 0, 0, vec![]));
    let mut conn = w.conn().await;
    assert_eq!(
        stored(&mut conn, old.id).await,
        ["03-05 00:00 1040 valid", "03-08 00:00 1070 valid", "03-11 00:00 1100 valid"]
    );
    assert_eq!(stored(&mut conn, new.id).await, ["03-12 23:00 20 valid"]);
    let sources =
        lines(&mut conn, &format!("SELECT source AS line FROM meter_readings WHERE meter_id = '{}'", new.id))
            .await;
    assert_eq!(sources, ["import"]);
}

#[tokio::test]
async fn an_import_names_a_successor_by_its_own_serial_number() {
    let w = World::new().await;
    let (old, new) = replaced_meter(&w, "E-2").await;
    let rows = csv("serialNumber,at,value\n\
         E-1,2026-03-08T00:00:00Z,1070\n\
         E-2,2026-03-13T00:00:00Z,20\n");
    let report = w.store.import_readings(&w.ctx, rows, ReadingRules::default()).await.unwrap();
    assert_eq!(report, added(2, 0, 0, vec![]));
    let mut conn = w.conn().await;
    assert_eq!(stored(&mut conn, old.id).await[1], "03-08 00:00 1070 valid");
    assert_eq!(stored(&mut conn, new.id).await, ["03-13 00:00 20 valid"]);
}

#[tokio::test]
async fn a_reading_at_the_replacement_instant_by_a_kept_serial_number_is_the_old_meters() {
    let w = World::new().await;
    let (old, new) = replaced_meter(&w, "E-1").await;
    // The old meter's number mistyped and corrected after the replacement (so its
    // row now lies after the new meter's): the number still names the old meter then.
    let typo = MeterChanges { place: old.place.clone(), serial_number: Some("E-l".into()) };
    w.store.update_meter(&w.ctx, old.id, typo).await.unwrap();
    let same = MeterChanges { place: old.place.clone(), serial_number: old.serial_number.clone() };
    w.store.update_meter(&w.ctx, old.id, same).await.unwrap();
    // The old register's closing value, 1100 at 11 March 00:00: already stored with the replacement.
    let rows = csv("serialNumber,at,value\nE-1,2026-03-11T00:00:00Z,1100\n");
    let report = w.store.import_readings(&w.ctx, rows, ReadingRules::default()).await.unwrap();
    assert_eq!(report, added(0, 1, 0, vec![]));
    let mut conn = w.conn().await;
    assert_eq!(stored(&mut conn, new.id).await, Vec::<String>::new(), "the new meter starts at 0 then");
}

#[tokio::test]
async fn an_unknown_serial_number_refuses_the_import_at_its_line() {
    let w = World::new().await;
    let (old, new) = replaced_meter(&w, "E-2").await;
    // E-1 was replaced on 11 March: on 13 March no meter has that number.
    let rows = csv("serialNumber,at,value\n\
         E-2,2026-03-12T00:00:00Z,10\n\
         E-1,2026-03-13T00:00:00Z,1130\n\
         X-9,2026-03-13T00:00:00Z,5\n\
         E-2,2026-03-14T00:00:00Z,30\n");
    let refused = w.store.import_readings(&w.ctx, rows, ReadingRules::default()).await;
    assert_eq!(import_errors(refused), [(3, "import.unknown_meter"), (4, "import.unknown_meter")]);
    let mut conn = w.conn().await;
    assert_eq!(stored(&mut conn, new.id).await, Vec::<String>::new(), "no line of the file is stored");
    assert_eq!(stored(&mut conn, old.id).await.len(), 2);
}

#[tokio::test]
async fn a_refused_reading_of_an_import_is_reported_by_its_line() {
    let w = World::new().await;
    let meter = w
        .install(MeterDraft {
            serial_number: Some("W-1".into()),
            ..register(subject("flat-1"), mar(1, 0), Some(0))
        })
        .await;
    let rows = csv("serialNumber,at,value\n\
         W-1,2026-03-02T00:00:00Z,10\n\
         \n\
         W-1,2026-03-03T00:00:00Z,5\n\
         Q-1,2026-03-03T00:00:00Z,5\n\
         W-1,2026-03-04T00:00:00Z,30\n");
    let refused = w.store.import_readings(&w.ctx, rows, ReadingRules::default()).await;
    assert_eq!(import_errors(refused), [(4, "metering.reading_below_previous"), (5, "import.unknown_meter")]);
    let mut conn = w.conn().await;
    assert_eq!(stored(&mut conn, meter.id).await, Vec::<String>::new());
}

#[tokio::test]
async fn flagged_readings_of_an_import_are_named_by_their_line() {
    let w = World::new().await;
    let meter = w.counter().await;
    w.add((2..=7).map(|d| read(meter.id, mar(d, 0), i64::from(d - 1) * 10)).collect()).await.unwrap();
    let rows = csv(&format!(
        "meterId,at,value\n\
         {id},2026-03-08T00:00:00Z,70\n\
         {id},2026-03-09T00:00:00Z,270\n",
        id = meter.id
    ));
    let report = w.store.import_readings(&w.ctx, rows, ReadingRules::default()).await.unwrap();
    // 70 -> 270 is 200, 20 times the trailing 10.
    let flag = FlaggedReading { index: 3, flag: "spike: 20x the trailing average".into() };
    assert_eq!(report, added(2, 0, 0, vec![flag]));
    let mut conn = w.conn().await;
    assert_eq!(stored(&mut conn, meter.id).await.len(), 8);
}

// ---------------------------------------------------------------- replacement

#[tokio::test]
async fn a_replacement_stores_the_closing_reading_closes_the_meter_and_starts_its_successor() {
    let w = World::new().await;
    let flat = w.site(SiteKind::Unit, "Flat 1", None).await;
    let old = w
        .install(MeterDraft {
            serial_number: Some("E-1".into()),
            ..register(on_site(flat.id), mar(1, 0), Some(1000))
        })
        .await;
    w.add(vec![read(old.id, mar(5, 0), 1040)]).await.unwrap();
    let replacement = Replacement {
        at: mar(11, 0),
        closing_reading: Some(dec(1100)),
        serial_number: Some("E-2".into()),
        start_reading: Some(dec(3)),
    };
    let replaced = w.store.replace_meter(&w.ctx, old.id, replacement, ReadingRules::default()).await.unwrap();
    assert_eq!(replaced.closed, Meter { active_until: Some(mar(11, 0)), ..old.clone() });
    let new = replaced.successor.clone();
    assert_eq!(
        new,
        Meter {
            id: new.id,
            serial_number: Some("E-2".into()),
            active_from: mar(11, 0),
            start_reading: Some(dec(3)),
            replaces: Some(old.id),
            ..old.clone()
        }
    );
    let closing = replaced.closing_reading.unwrap();
    assert_eq!((closing.meter_id, closing.at, closing.value), (old.id, mar(11, 0), dec(1100)));
    assert_eq!(w.store.meter(&w.ctx, old.id).await.unwrap(), replaced.closed);
    assert_eq!(w.store.meter(&w.ctx, new.id).await.unwrap(), new);
    let active = MeterFilter { active: Some(true), ..MeterFilter::default() };
    assert_eq!(
        w.store.meters(&w.ctx, active, PageRequest::default()).await.unwrap().items,
        std::slice::from_ref(&new)
    );
    let mut conn = w.conn().await;
    assert_eq!(stored(&mut conn, old.id).await, ["03-05 00:00 1040 valid", "03-11 00:00 1100 valid"]);
    let rows = lines(
        &mut conn,
        "SELECT coalesce(serial_number, '-') || ' ' \
                || to_char(active_from AT TIME ZONE 'UTC', 'MM-DD') || ' ' \
                || coalesce(to_char(active_until AT TIME ZONE 'UTC', 'MM-DD'), 'open') || ' ' \
                || start_reading::text || ' ' \
                || coalesce((SELECT serial_number FROM meters p WHERE p.id = m.replaces), '-') AS line \
         FROM meters m ORDER BY active_from",
    )
    .await;
    assert_eq!(rows, ["E-1 03-01 03-11 1000 -", "E-2 03-11 open 3 E-1"]);
    assert_eq!(
        trail(&mut conn, &w.ctx)
            .await
            .iter()
            .filter(|a| a.starts_with("metering.meter.replace"))
            .collect::<Vec<_>>(),
        [&format!("metering.meter.replace {}", old.id)]
    );
}

#[tokio::test]
async fn a_meter_is_replaced_only_once() {
    let w = World::new().await;
    let (old, _) = replaced_meter(&w, "E-2").await;
    let again = Replacement {
        at: mar(12, 0),
        closing_reading: None,
        serial_number: Some("E-3".into()),
        start_reading: Some(Decimal::ZERO),
    };
    let replaced = w.store.replace_meter(&w.ctx, old.id, again, ReadingRules::default()).await;
    assert!(matches!(replaced, Err(MeteringError::MeterReplaced)), "{replaced:?}");
    let mut conn = w.conn().await;
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM meters").await, 2);
}

#[tokio::test]
async fn a_closing_reading_below_the_previous_refuses_the_replacement_and_changes_nothing() {
    let w = World::new().await;
    let old = w.install(register(subject("flat-1"), mar(1, 0), Some(1000))).await;
    w.add(vec![read(old.id, mar(5, 0), 1040)]).await.unwrap();
    let replacement = Replacement {
        at: mar(11, 0),
        closing_reading: Some(dec(1020)),
        serial_number: None,
        start_reading: Some(Decimal::ZERO),
    };
    let replaced = w.store.replace_meter(&w.ctx, old.id, replacement, ReadingRules::default()).await;
    assert!(
        matches!(
            replaced,
            Err(MeteringError::ReadingBelowPrevious { previous, value })
                if (previous, value) == (dec(1040), dec(1020))
        ),
        "{replaced:?}"
    );
    assert_eq!(w.store.meter(&w.ctx, old.id).await.unwrap(), old);
    let mut conn = w.conn().await;
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM meters").await, 1);
    assert_eq!(stored(&mut conn, old.id).await, ["03-05 00:00 1040 valid"]);
}

#[tokio::test]
async fn a_meter_with_readings_after_the_instant_cannot_be_replaced_then() {
    let w = World::new().await;
    let old = w.install(register(subject("flat-1"), mar(1, 0), Some(1000))).await;
    w.add(vec![read(old.id, mar(12, 0), 1120)]).await.unwrap();
    for closing_reading in [Some(dec(1100)), None] {
        let replacement = Replacement {
            at: mar(11, 0),
            closing_reading,
            serial_number: None,
            start_reading: Some(Decimal::ZERO),
        };
        let replaced = w.store.replace_meter(&w.ctx, old.id, replacement, ReadingRules::default()).await;
        assert_eq!(invalid_fields(replaced), ["at"], "closing reading {closing_reading:?}");
    }
    assert_eq!(w.store.meter(&w.ctx, old.id).await.unwrap(), old);
    let mut conn = w.conn().await;
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM meters").await, 1);
    assert_eq!(stored(&mut conn, old.id).await, ["03-12 00:00 1120 valid"]);
}

// ---------------------------------------------------------------- consumption

#[tokio::test]
async fn consumption_runs_across_a_replacement_interpolated_at_the_period_edges() {
    let w = World::new().await;
    // Old: 1000 on 1 March to 1100 at its replacement on 11 March, 10 a day.
    // New: 0 on 11 March to 50 on 21 March, 5 a day.
    let (old, new) = replaced_meter(&w, "E-2").await;
    w.add(vec![read(new.id, mar(21, 0), 50)]).await.unwrap();
    for asked in [old.id, new.id] {
        // 6 -> 11 March: 5 days of 10; 11 -> 16 March: 5 days of 5.
        let used = w.store.consumption(&w.ctx, asked, mar(6, 0), mar(16, 0), None).await.unwrap();
        assert_eq!(
            (used.meter_id, used.total, used.unit.as_str(), used.buckets),
            (asked, dec(75), "kWh", None)
        );
    }
    // 6 March 12:00 -> 11 March: 4.5 days of 10 = 45; 11 March -> 16 March 08:00:
    // 128 of the 240 hours to 21 March, 50 * 128 / 240 = 26.666666..; 71.666667.
    let used = w.store.consumption(&w.ctx, new.id, mar(6, 12), mar(16, 8), None).await.unwrap();
    assert_eq!(used.total, Decimal::new(71_666_667, 6));
    // The whole chain: 1100 - 1000 + 50 - 0.
    let used = w.store.consumption(&w.ctx, old.id, mar(1, 0), mar(21, 0), None).await.unwrap();
    assert_eq!(used.total, dec(150));
}

async fn set_time_zone(w: &World, zone: &str) {
    let settings: portico_tenancy::UpdateSettings =
        serde_json::from_value(serde_json::json!({ "timeZone": zone })).unwrap();
    let config = w.store.update_settings(&w.ctx, w.ctx.tenant_id, settings).await.unwrap();
    assert_eq!(config.settings.time_zone, zone);
}

#[tokio::test]
async fn day_buckets_follow_the_tenants_time_zone_across_the_spring_change() {
    let w = World::new().await;
    set_time_zone(&w, "Europe/Berlin").await;
    // 1 an hour from 28 March 00:00 CET (27 March 23:00Z) to 31 March 00:00 CEST (30 March 22:00Z).
    let (from, to) = (mar(27, 23), mar(30, 22));
    let meter = w.install(register(subject("charger"), from, Some(0))).await;
    w.add(vec![read(meter.id, to, 71)]).await.unwrap();
    let used = w.store.consumption(&w.ctx, meter.id, from, to, Some(Granularity::Day)).await.unwrap();
    assert_eq!((used.total, used.time_zone.as_str()), (dec(71), "Europe/Berlin"));
    let buckets: Vec<_> =
        used.buckets.unwrap().into_iter().map(|b| (b.local_date, b.start, b.end, b.quantity)).collect();
    assert_eq!(
        buckets,
        [
            (date(3, 28), mar(27, 23), mar(28, 23), dec(24)),
            (date(3, 29), mar(28, 23), mar(29, 22), dec(23)),
            (date(3, 30), mar(29, 22), mar(30, 22), dec(24)),
        ]
    );
}

#[tokio::test]
async fn day_buckets_start_at_the_local_midnights_of_another_time_zone() {
    let w = World::new().await;
    set_time_zone(&w, "Asia/Tokyo").await;
    // 1 an hour over 1 and 2 March UTC; Tokyo's days start at 15:00Z.
    let meter = w.install(register(subject("charger"), mar(1, 0), Some(0))).await;
    w.add(vec![read(meter.id, mar(3, 0), 48)]).await.unwrap();
    let used =
        w.store.consumption(&w.ctx, meter.id, mar(1, 0), mar(3, 0), Some(Granularity::Day)).await.unwrap();
    assert_eq!(used.time_zone, "Asia/Tokyo");
    let buckets: Vec<_> =
        used.buckets.unwrap().into_iter().map(|b| (b.local_date, b.start, b.end, b.quantity)).collect();
    assert_eq!(
        buckets,
        [
            (date(3, 1), mar(1, 0), mar(1, 15), dec(15)),
            (date(3, 2), mar(1, 15), mar(2, 15), dec(24)),
            (date(3, 3), mar(2, 15), mar(3, 0), dec(9)),
        ]
    );
}

#[tokio::test]
async fn consumption_beyond_the_readings_is_not_covered() {
    let w = World::new().await;
    let meter = w.counter().await;
    w.add(vec![read(meter.id, mar(11, 0), 100)]).await.unwrap();
    let used = w.store.consumption(&w.ctx, meter.id, mar(5, 0), mar(15, 0), None).await;
    assert!(
        matches!(used, Err(MeteringError::NotCovered { from, to }) if (from, to) == (mar(5, 0), mar(15, 0))),
        "{used:?}"
    );
    // Up to the last reading it is: 10 a day.
    let used = w.store.consumption(&w.ctx, meter.id, mar(5, 0), mar(11, 0), None).await.unwrap();
    assert_eq!(used.total, dec(60));
}

// ---------------------------------------------------------------- isolation

/// Acme's site with a meter and a reading, and globex's member.
async fn acme_with_a_meter(w: &World) -> (Site, Meter, TenantContext) {
    let flat = w.site(SiteKind::Unit, "Flat 1", None).await;
    let meter = w.install(register(on_site(flat.id), mar(1, 0), Some(0))).await;
    w.add(vec![read(meter.id, mar(2, 0), 10)]).await.unwrap();
    (flat, meter, w.other("globex").await)
}

#[tokio::test]
async fn another_tenant_reads_none_of_a_tenants_sites_meters_or_readings() {
    let w = World::new().await;
    let (flat, meter, globex) = acme_with_a_meter(&w).await;
    let s = &w.store;
    assert!(matches!(s.site(&globex, flat.id).await, Err(MeteringError::SiteNotFound)));
    let sites = s.sites(&globex, PageRequest::default()).await.unwrap();
    assert_eq!((sites.items.len(), sites.total), (0, 0));
    assert!(matches!(s.meter(&globex, meter.id).await, Err(MeteringError::MeterNotFound)));
    let meters = s.meters(&globex, MeterFilter::default(), PageRequest::default()).await.unwrap();
    assert_eq!((meters.items.len(), meters.total), (0, 0));
    let on_their_site = MeterFilter { site_id: Some(flat.id), ..MeterFilter::default() };
    assert_eq!(s.meters(&globex, on_their_site, PageRequest::default()).await.unwrap().total, 0);
    let readings = s.readings(&globex, meter.id, None, None, PageRequest::default()).await;
    assert!(matches!(readings, Err(MeteringError::MeterNotFound)), "{readings:?}");
    let used = s.consumption(&globex, meter.id, mar(1, 0), mar(2, 0), Some(Granularity::Day)).await;
    assert!(matches!(used, Err(MeteringError::MeterNotFound)), "{used:?}");
    let rows = csv(&format!("meterId,at,value\n{},2026-03-03T00:00:00Z,20\n", meter.id));
    let imported = s.import_readings(&globex, rows, ReadingRules::default()).await;
    assert_eq!(import_errors(imported), [(2, "metering.meter_not_found")]);
}

#[tokio::test]
async fn another_tenant_changes_none_of_a_tenants_sites_or_meters() {
    let w = World::new().await;
    let (flat, meter, globex) = acme_with_a_meter(&w).await;
    let s = &w.store;
    let moved = s.update_site(&globex, flat.id, site_draft(SiteKind::Unit, "Mine now", None, None)).await;
    assert!(matches!(moved, Err(MeteringError::SiteNotFound)), "{moved:?}");
    assert!(matches!(s.delete_site(&globex, flat.id).await, Err(MeteringError::SiteNotFound)));
    let changes = MeterChanges { place: subject("theirs"), serial_number: None };
    assert!(matches!(s.update_meter(&globex, meter.id, changes).await, Err(MeteringError::MeterNotFound)));
    assert!(matches!(s.delete_meter(&globex, meter.id).await, Err(MeteringError::MeterNotFound)));
    let replacement = Replacement {
        at: mar(3, 0),
        closing_reading: None,
        serial_number: None,
        start_reading: Some(Decimal::ZERO),
    };
    let replaced = s.replace_meter(&globex, meter.id, replacement, ReadingRules::default()).await;
    assert!(matches!(replaced, Err(MeteringError::MeterNotFound)), "{replaced:?}");
    let pulled =
        s.add_pulled_readings(&globex, vec![pulled(meter.id, mar(3, 0), 20)], ReadingRules::default()).await;
    // A source's values for a meter its tenant does not have are dropped (and counted), never stored.
    assert_eq!(pulled.unwrap(), added(0, 0, 1, vec![]));
    let mut conn = w.conn().await;
    assert_eq!(tree(&mut conn).await, ["Flat 1 -"]);
    assert_eq!(w.store.meter(&w.ctx, meter.id).await.unwrap(), meter);
    assert_eq!(stored(&mut conn, meter.id).await, ["03-02 00:00 10 valid"]);
    assert_eq!(trail(&mut conn, &globex).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_serial_number_two_meters_in_service_share_refuses_its_lines_as_ambiguous() {
    let w = World::new().await;
    let numbered = |subject_key: &str| MeterDraft {
        serial_number: Some("T-1".into()),
        ..register(subject(subject_key), mar(1, 0), Some(0))
    };
    let first = w.install(numbered("flat-1")).await;
    let second = w.install(numbered("flat-2")).await;
    let rows = csv("serialNumber,at,value\nT-1,2026-03-02T00:00:00Z,10\n");
    let refused = w.store.import_readings(&w.ctx, rows, ReadingRules::default()).await;
    assert_eq!(import_errors(refused), [(2, "import.ambiguous_meter")]);
    let mut conn = w.conn().await;
    assert_eq!(stored(&mut conn, first.id).await, Vec::<String>::new());
    assert_eq!(stored(&mut conn, second.id).await, Vec::<String>::new());
}

#[tokio::test]
async fn pulled_readings_of_a_meter_deleted_since_are_dropped_not_failing_the_pull() {
    let w = World::new().await;
    let kept = w.counter().await;
    let gone = w.counter().await;
    w.store.delete_meter(&w.ctx, gone.id).await.unwrap();
    let batch = vec![pulled(gone.id, mar(2, 0), 10), pulled(kept.id, mar(2, 0), 12)];
    let report = w.store.add_pulled_readings(&w.ctx, batch, ReadingRules::default()).await.unwrap();
    assert_eq!(report, added(1, 0, 1, vec![]));
    let mut conn = w.conn().await;
    assert_eq!(stored(&mut conn, kept.id).await, ["03-02 00:00 12 valid"]);
}

#[tokio::test]
async fn a_pull_gives_each_value_to_the_meter_in_service_then_even_after_a_replacement() {
    let w = World::new().await;
    let (old, new) = replaced_meter(&w, "E-2").await;
    // The source was set up with the old meter and never changed.
    let draft: portico_metering::SourceDraft = serde_json::from_value(serde_json::json!({
        "kind": "simulated", "name": "Carport", "meters": {"carport": old.id}
    }))
    .unwrap();
    let source = w.store.create_meter_source(&w.ctx, draft).await.unwrap();
    let outcome = portico_store::PullOutcome::Pulled {
        from: None,
        readings: vec![pulled(old.id, mar(8, 0), 1070), pulled(old.id, mar(13, 0), 20)],
        cursor: Some("2026-03-13T00:00:00Z".into()),
    };
    let report = w.store.record_pull(&w.ctx, source.id, outcome, ReadingRules::default()).await.unwrap();
    assert_eq!(report, added(2, 0, 0, vec![]));
    let mut conn = w.conn().await;
    assert_eq!(
        stored(&mut conn, old.id).await,
        ["03-05 00:00 1040 valid", "03-08 00:00 1070 valid", "03-11 00:00 1100 valid"]
    );
    assert_eq!(stored(&mut conn, new.id).await, ["03-13 00:00 20 valid"]);
    // A pull that overlapped that one and started from the old cursor stores its readings
    // but does not move the cursor back.
    let stale = portico_store::PullOutcome::Pulled {
        from: None,
        readings: vec![pulled(old.id, mar(14, 0), 25)],
        cursor: Some("2026-03-10T00:00:00Z".into()),
    };
    w.store.record_pull(&w.ctx, source.id, stale, ReadingRules::default()).await.unwrap();
    assert_eq!(lines(&mut conn, "SELECT cursor AS line FROM meter_sources").await, ["2026-03-13T00:00:00Z"]);
    assert_eq!(stored(&mut conn, new.id).await, ["03-13 00:00 20 valid", "03-14 00:00 25 valid"]);
}

#[tokio::test]
async fn the_sweep_queues_pulls_only_for_tenants_in_service() {
    use portico_tenancy::{TenantStore as _, TenantTransition};
    let w = World::new().await;
    let draft: portico_metering::SourceDraft =
        serde_json::from_value(serde_json::json!({"kind": "simulated", "name": "Carport"})).unwrap();
    w.store.create_meter_source(&w.ctx, draft).await.unwrap();
    let platform = portico_kernel::PlatformContext::system("test");
    w.store.transition(&w.ctx, w.ctx.tenant_id, TenantTransition::Suspend).await.unwrap();
    assert_eq!(w.store.queue_due_pulls(&platform, 100).await.unwrap(), 0, "a suspended tenant is not pulled");
    w.store.transition(&w.ctx, w.ctx.tenant_id, TenantTransition::Activate).await.unwrap();
    assert_eq!(w.store.queue_due_pulls(&platform, 100).await.unwrap(), 1);
    assert_eq!(w.store.queue_due_pulls(&platform, 100).await.unwrap(), 0, "moved on by its interval");
    let mut conn = w.conn().await;
    let queued = lines(&mut conn, "SELECT kind AS line FROM jobs WHERE kind LIKE 'metering.%'").await;
    assert_eq!(queued, ["metering.pull_source"]);
}
