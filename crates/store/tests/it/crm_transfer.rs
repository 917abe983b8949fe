//! CRM imports and exports against real PostgreSQL: a good file stored
//! with its normalised keys and search words under one audit row, a file
//! with a refused row writing nothing, duplicates of existing records and
//! of earlier rows skipped however their phones and emails are written,
//! other tenants never matched nor touched, exports reading the tenant's
//! own rows in stable batches, and an export importing into another tenant
//! as the same contacts and leads.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use portico_crm::{
    Company, CompanyDraft, Contact, ContactDraft, ContactExportFilter, ContactImport, ContactImportRow,
    ContactStatus, CrmError, ImportSummary, Lead, LeadDraft, LeadExportFilter, LeadImport, LeadImportRow,
    LeadStatus, MatchReason, MatchedId, SkippedRow, contact_export_header, contact_export_record,
    lead_export_header, lead_export_record,
};
use portico_kernel::csv::ImportReport;
use portico_kernel::{FixedClock, TenantContext, UserId};
use portico_store::{NewUser, Store};
use portico_tenancy::{Email, MembershipKind, Role, UserStatus};
use portico_testkit::TestDb;
use serde_json::json;

use crate::support::{connect, count, lines, member_of, tenant};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

fn contact_rows(file: &str) -> Vec<ContactImportRow> {
    let mut import = ContactImport::new();
    import.feed(file.as_bytes());
    import.finish().unwrap()
}

fn lead_rows(file: &str) -> Vec<LeadImportRow> {
    let mut import = LeadImport::new();
    import.feed(file.as_bytes());
    import.finish().unwrap()
}

/// The report of an import the store refused.
fn refused(result: Result<ImportSummary, CrmError>) -> ImportReport {
    match result {
        Err(CrmError::ImportRefused(report)) => report,
        other => panic!("refused: {other:?}"),
    }
}

/// A German tenant, `acme`, with a member; a store telling time by [`now`].
struct World {
    db: TestDb,
    store: Store,
    ctx: TenantContext,
    member: UserId,
}

impl World {
    async fn new() -> Self {
        let db = TestDb::new().await;
        let store = db.store().await.with_clock(Arc::new(FixedClock::at(now())));
        let ctx = member_of(tenant(&store, "acme").await.id);
        let world = Self { member: UserId::new(), db, store, ctx };
        world.in_germany(&world.ctx).await;
        let member = world.member_of(&world.ctx, "seller@acme.example").await;
        Self { member, ..world }
    }

    /// Another German tenant's member.
    async fn other(&self, slug: &str) -> TenantContext {
        let ctx = member_of(tenant(&self.store, slug).await.id);
        self.in_germany(&ctx).await;
        ctx
    }

    async fn in_germany(&self, ctx: &TenantContext) {
        let settings = json!({"contact": {"country": "DE"}});
        self.sql(&format!(
            "INSERT INTO tenant_settings (tenant_id, settings, updated_at) VALUES ('{}', '{settings}', now()) \
             ON CONFLICT (tenant_id) DO UPDATE SET settings = EXCLUDED.settings",
            ctx.tenant_id
        ))
        .await;
    }

    /// A new person with a membership of the context's tenant.
    async fn member_of(&self, ctx: &TenantContext, email: &str) -> UserId {
        let user = self
            .store
            .create_user(NewUser {
                email: Email::parse(email).unwrap(),
                name: "Seller".into(),
                phone: None,
                status: UserStatus::Active,
                password_hash: None,
                email_verified: true,
            })
            .await
            .unwrap();
        self.store.add_membership(ctx, user.id, Role::Staff, MembershipKind::Staff).await.unwrap();
        user.id
    }

    async fn company(&self, ctx: &TenantContext, name: &str, domain: Option<&str>) -> Company {
        let draft: CompanyDraft = serde_json::from_value(json!({"name": name, "domain": domain})).unwrap();
        self.store.create_company(ctx, draft).await.unwrap()
    }

    async fn contact(&self, ctx: &TenantContext, body: serde_json::Value) -> Contact {
        let draft: ContactDraft = serde_json::from_value(body).unwrap();
        self.store.create_contact(ctx, draft).await.unwrap()
    }

    async fn lead(&self, ctx: &TenantContext, body: serde_json::Value) -> Lead {
        let draft: LeadDraft = serde_json::from_value(body).unwrap();
        self.store.create_lead(ctx, draft).await.unwrap()
    }

    async fn import_contacts(&self, ctx: &TenantContext, file: &str) -> Result<ImportSummary, CrmError> {
        self.store.import_contacts(ctx, contact_rows(file)).await
    }

    async fn import_leads(&self, ctx: &TenantContext, file: &str) -> Result<ImportSummary, CrmError> {
        self.store.import_leads(ctx, lead_rows(file)).await
    }

    /// A connection that sees every tenant's rows.
    async fn conn(&self) -> AsyncPgConnection {
        connect(&self.db.urls.platform).await
    }

    async fn sql(&self, sql: &str) {
        self.conn().await.batch_execute(sql).await.unwrap();
    }

    async fn count(&self, sql: &str) -> i64 {
        count(&mut self.conn().await, sql).await
    }

    async fn lines(&self, sql: &str) -> Vec<String> {
        lines(&mut self.conn().await, sql).await
    }

    async fn contacts_of(&self, ctx: &TenantContext) -> i64 {
        self.count(&format!("SELECT count(*) AS n FROM crm_contacts WHERE tenant_id = '{}'", ctx.tenant_id))
            .await
    }

    async fn leads_of(&self, ctx: &TenantContext) -> i64 {
        self.count(&format!("SELECT count(*) AS n FROM crm_leads WHERE tenant_id = '{}'", ctx.tenant_id))
            .await
    }

    async fn audited(&self, ctx: &TenantContext, action: &str) -> Vec<String> {
        self.lines(&format!(
            "SELECT changes::text AS line FROM audit_log WHERE tenant_id = '{}' AND action = '{action}'",
            ctx.tenant_id
        ))
        .await
    }

    /// The whole contacts export of `ctx` matching `filter`, read in batches of `batch`.
    async fn export_contacts(&self, ctx: &TenantContext, filter: &ContactExportFilter, batch: u32) -> String {
        let mut file = contact_export_header();
        let mut after = None;
        loop {
            let found = self.store.contacts_for_export(ctx, filter, after, batch).await.unwrap();
            for c in &found {
                file.push_str(&contact_export_record(
                    &c.contact,
                    c.company_name.as_deref(),
                    c.owner_email.as_deref(),
                ));
            }
            match found.last() {
                Some(last) if found.len() == batch as usize => {
                    after = Some((last.contact.created_at, last.contact.id))
                }
                _ => return file,
            }
        }
    }

    async fn export_leads(&self, ctx: &TenantContext, filter: &LeadExportFilter) -> String {
        let mut file = lead_export_header();
        for l in self.store.leads_for_export(ctx, filter, None, 1_000).await.unwrap() {
            file.push_str(&lead_export_record(&l.lead, l.owner_email.as_deref()));
        }
        file
    }
}

#[tokio::test]
async fn a_good_contacts_file_is_stored_with_its_keys_and_search_words_under_one_audit_row() {
    let w = World::new().await;
    let acme = w.company(&w.ctx, "Acme GmbH", Some("acme.example")).await;
    let file = "firstName,lastName,email,phone,type,status,companyName,tags,ownerEmail\r\n\
        Sam,Taylor,Sam@Acme.example;sam@home.example,030 1234567,customer,,ACME,vip;berlin,Seller@Acme.example\r\n\
        Ann,Lee,,+49 171 2345678,,inactive,,,\r\n";
    let summary = w.import_contacts(&w.ctx, file).await.unwrap();
    assert_eq!(summary, ImportSummary { rows: 2, created: 2, duplicates: 0, skipped: vec![] });

    let tenant = w.ctx.tenant_id;
    let stored = w
        .lines(&format!(
            "SELECT concat_ws('|', display_name, contact_type, status, email_keys::text, phone_keys::text, \
                    company_id::text, owner_id::text, tags::text) AS line \
             FROM crm_contacts WHERE tenant_id = '{tenant}' ORDER BY display_name"
        ))
        .await;
    assert_eq!(
        stored,
        vec![
            "Ann Lee|prospect|inactive|{}|{+491712345678}|{}".to_owned(),
            format!(
                "Sam Taylor|customer|active|{{sam@acme.example,sam@home.example}}|{{+49301234567}}|{}|{}|{{vip,berlin}}",
                acme.id, w.member
            ),
        ]
    );
    let keys = w
        .lines(&format!(
            "SELECT kind || ':' || key AS line FROM crm_contact_keys WHERE tenant_id = '{tenant}' ORDER BY kind, key"
        ))
        .await;
    assert_eq!(
        keys,
        ["email:sam@acme.example", "email:sam@home.example", "phone:+491712345678", "phone:+49301234567"]
    );
    // The trigger indexed the new contacts' words: search finds Sam by name and by email.
    let found = w
        .count(&format!(
            "SELECT count(DISTINCT record_id) AS n FROM crm_search_terms \
             WHERE tenant_id = '{tenant}' AND kind = 'contact' AND term IN ('taylor', 'acme')"
        ))
        .await;
    assert_eq!(found, 1);
    let audited = w.audited(&w.ctx, "crm.contact.import").await;
    assert_eq!(audited.len(), 1, "one row for the whole file");
    let changes: serde_json::Value = serde_json::from_str(&audited[0]).unwrap();
    assert_eq!(changes["created"]["after"], json!(2));
    assert_eq!(changes["rows"]["after"], json!(2));
}

#[tokio::test]
async fn a_file_with_a_refused_row_writes_nothing() {
    let w = World::new().await;
    let file = "displayName,email,phone,companyName,ownerEmail\r\n\
        Sam,sam@acme.example,,,\r\n\
        Ann,ann at acme,12,,\r\n\
        Bob,bob@acme.example,,Initech,\r\n\
        Cy,cy@acme.example,,,nobody@acme.example\r\n";
    let report = refused(w.import_contacts(&w.ctx, file).await);
    let found: Vec<(u64, &str, &str)> =
        report.errors.iter().map(|e| (e.line, e.code, e.reason.split(':').next().unwrap_or(""))).collect();
    assert_eq!(
        found,
        vec![
            (3, "import.invalid_value", "email"),
            (3, "import.invalid_value", "phone"),
            (4, "import.unknown_company", "companyName"),
            (5, "import.unknown_owner", "ownerEmail"),
        ]
    );
    assert_eq!((report.rows, report.error_count), (4, 4));
    assert_eq!(w.contacts_of(&w.ctx).await, 0, "not even Sam");
    assert!(w.audited(&w.ctx, "crm.contact.import").await.is_empty());
}

#[tokio::test]
async fn contacts_matching_existing_ones_however_written_are_skipped_and_left_alone() {
    let w = World::new().await;
    let jane = w
        .contact(
            &w.ctx,
            json!({"displayName": "Jane", "emails": [{"address": "Jane@Example.com"}], "tags": ["old"]}),
        )
        .await;
    let joe =
        w.contact(&w.ctx, json!({"displayName": "Joe", "phones": [{"number": "+49 30 1234567"}]})).await;
    let file = "displayName,email,phone,tags\r\n\
        Jane Doe,jane@example.com,,new\r\n\
        Joseph,joe@example.com,030 1234567,\r\n\
        Jim,jim@example.com,030 7654321,\r\n";
    let summary = w.import_contacts(&w.ctx, file).await.unwrap();
    assert_eq!(
        summary.skipped,
        vec![
            SkippedRow {
                line: 2,
                matched_by: MatchReason::Email,
                existing_id: Some(MatchedId::Contact(jane.id)),
                same_as_line: None
            },
            SkippedRow {
                line: 3,
                matched_by: MatchReason::Phone,
                existing_id: Some(MatchedId::Contact(joe.id)),
                same_as_line: None
            },
        ]
    );
    assert_eq!((summary.created, summary.duplicates), (1, 2));
    assert_eq!(w.contacts_of(&w.ctx).await, 3, "Jane, Joe and Jim");
    assert_eq!(w.store.contact(&w.ctx, jane.id).await.unwrap(), jane, "Jane is not changed");
    assert_eq!(w.store.contact(&w.ctx, joe.id).await.unwrap(), joe);

    // The same file again creates nothing.
    let again = w.import_contacts(&w.ctx, file).await.unwrap();
    assert_eq!((again.created, again.duplicates), (0, 3));
    assert_eq!(w.contacts_of(&w.ctx).await, 3);
    assert_eq!(w.audited(&w.ctx, "crm.contact.import").await.len(), 2);
}

#[tokio::test]
async fn a_second_row_of_the_same_person_is_skipped() {
    let w = World::new().await;
    let file = "displayName,email,phone\r\n\
        Jane,jane@example.com,\r\n\
        Jane again,JANE@Example.com,\r\n\
        Jim,,+49 (0)30 555-000\r\n\
        Jimmy,,030 555000\r\n";
    let summary = w.import_contacts(&w.ctx, file).await.unwrap();
    assert_eq!(
        summary.skipped.iter().map(|s| (s.line, s.same_as_line)).collect::<Vec<_>>(),
        [(3, Some(2)), (5, Some(4))]
    );
    let names = w
        .lines(&format!(
            "SELECT display_name AS line FROM crm_contacts WHERE tenant_id = '{}' ORDER BY display_name",
            w.ctx.tenant_id
        ))
        .await;
    assert_eq!(names, ["Jane", "Jim"]);
}

#[tokio::test]
async fn an_import_never_matches_nor_touches_another_tenants_records() {
    let w = World::new().await;
    let globex = w.other("globex").await;
    let theirs =
        w.contact(&globex, json!({"displayName": "Jane", "emails": [{"address": "jane@example.com"}]})).await;
    w.company(&globex, "Initech", None).await;
    w.member_of(&globex, "boss@globex.example").await;

    // Their company and their member are not ours.
    let report = refused(
        w.import_contacts(
            &w.ctx,
            "displayName,companyName,ownerEmail\r\nSam,Initech,\r\nAnn,,boss@globex.example\r\n",
        )
        .await,
    );
    assert_eq!(
        report.errors.iter().map(|e| e.code).collect::<Vec<_>>(),
        ["import.unknown_company", "import.unknown_owner"]
    );

    // Their Jane is no duplicate of ours.
    let summary = w.import_contacts(&w.ctx, "displayName,email\r\nJane,jane@example.com\r\n").await.unwrap();
    assert_eq!((summary.created, summary.duplicates), (1, 0));
    assert_eq!((w.contacts_of(&w.ctx).await, w.contacts_of(&globex).await), (1, 1));
    assert_eq!(w.store.contact(&globex, theirs.id).await.unwrap(), theirs);
    assert!(w.audited(&globex, "crm.contact.import").await.is_empty());
}

#[tokio::test]
async fn the_contacts_export_reads_the_tenants_own_rows_filtered_in_stable_batches() {
    let w = World::new().await;
    let globex = w.other("globex").await;
    w.contact(&globex, json!({"displayName": "Not ours", "tags": ["vip"]})).await;
    let mut file = String::from("displayName,tags,status\r\n");
    for n in 0..5 {
        file.push_str(&format!(
            "P{n},{},{}\r\n",
            if n % 2 == 0 { "VIP" } else { "" },
            if n == 4 { "inactive" } else { "" }
        ));
    }
    w.import_contacts(&w.ctx, &file).await.unwrap();

    let all = w.export_contacts(&w.ctx, &ContactExportFilter::default(), 2).await;
    let names: Vec<&str> = all.lines().skip(1).map(|l| l.split(',').nth(2).unwrap()).collect();
    assert_eq!(names, ["P0", "P1", "P2", "P3", "P4"], "oldest first, every batch once");
    assert!(!all.contains("Not ours"));

    let filter = ContactExportFilter {
        tag: Some("vip".into()),
        status: Some(ContactStatus::Active),
        ..Default::default()
    };
    let vip = w.export_contacts(&w.ctx, &filter, 1_000).await;
    let names: Vec<&str> = vip.lines().skip(1).map(|l| l.split(',').nth(2).unwrap()).collect();
    assert_eq!(names, ["P0", "P2"]);

    w.store.note_contacts_export(&w.ctx, &filter).await.unwrap();
    let audited = w.audited(&w.ctx, "crm.contact.export").await;
    assert_eq!(audited.len(), 1);
    assert!(audited[0].contains("\"tag\": \"vip\""), "{}", audited[0]);
}

#[tokio::test]
async fn exported_contacts_import_into_another_tenant_as_the_same_contacts() {
    let w = World::new().await;
    w.company(&w.ctx, "Acme GmbH", None).await;
    let file = "firstName,lastName,displayName,email,phone,type,status,companyName,tags,ownerEmail\r\n\
        Sam,Taylor,\"Taylor, Sam\",sam@acme.example;sam@home.example,030 1234567;+49 171 2345678,customer,active,Acme GmbH,vip;=odd,\r\n\
        =Ann,,,,,vendor,inactive,,,seller@acme.example\r\n";
    w.import_contacts(&w.ctx, file).await.unwrap();
    let exported = w.export_contacts(&w.ctx, &ContactExportFilter::default(), 1_000).await;
    assert!(exported.contains("'+49301234567;+491712345678") && exported.contains("'=Ann"), "{exported}");

    let globex = w.other("globex").await;
    w.company(&globex, "ACME gmbh", None).await;
    w.member_of(&globex, "seller@globex.example").await;
    // Owners are members matched by email: there, the seller is someone else.
    let exported = exported.replace("seller@acme.example", "seller@globex.example");
    let summary = w.import_contacts(&globex, &exported).await.unwrap();
    assert_eq!((summary.created, summary.duplicates), (2, 0));
    let again = w.export_contacts(&globex, &ContactExportFilter::default(), 1_000).await;
    // The company was linked by its normalised name: its own name is written.
    assert_eq!(again, exported.replace("Acme GmbH", "ACME gmbh"), "the same contacts, record for record");
}

#[tokio::test]
async fn a_leads_file_is_stored_with_duplicates_skipped_and_nothing_written_when_a_row_is_refused() {
    let w = World::new().await;
    let old = w.lead(&w.ctx, json!({"name": "Old", "email": "jane@example.com"})).await;
    let file = "name,email,phone,companyName,source,status,estimatedValue,currency,tags,ownerEmail\r\n\
        Jane,Jane@Example.com,,,,,,,,\r\n\
        Kim,kim@example.com,030 1234567,Acme GmbH,website,qualified,12000.50,EUR,fair;2026,seller@acme.example\r\n\
        Kim again,KIM@example.com,,,,,,,,\r\n\
        Lou,,,,,,,,,\r\n";
    let summary = w.import_leads(&w.ctx, file).await.unwrap();
    assert_eq!((summary.rows, summary.created, summary.duplicates), (4, 2, 2));
    assert_eq!(summary.skipped[0].existing_id, Some(MatchedId::Lead(old.id)));
    assert_eq!(summary.skipped[1].same_as_line, Some(3));
    let stored = w
        .lines(&format!(
            "SELECT concat_ws('|', name, email, phone, company_name, source, status, estimated_amount, \
                    estimated_currency, tags::text, owner_id::text) AS line \
             FROM crm_leads WHERE tenant_id = '{}' AND name <> 'Old' ORDER BY name",
            w.ctx.tenant_id
        ))
        .await;
    assert_eq!(
        stored,
        vec![
            format!(
                "Kim|kim@example.com|+49301234567|Acme GmbH|website|qualified|1200050|EUR|{{fair,2026}}|{}",
                w.member
            ),
            "Lou|import|new|{}".to_owned(),
        ]
    );
    let words = w
        .count(&format!(
            "SELECT count(*) AS n FROM crm_search_terms WHERE tenant_id = '{}' AND kind = 'lead' AND term = 'kim'",
            w.ctx.tenant_id
        ))
        .await;
    assert_eq!(words, 1, "search finds the new lead");
    assert_eq!(w.audited(&w.ctx, "crm.lead.import").await.len(), 1);

    let bad = "name,email,ownerEmail\r\nMo,mo@example.com,\r\nNed,ned@example.com,nobody@acme.example\r\n";
    let report = refused(w.import_leads(&w.ctx, bad).await);
    assert_eq!(
        report.errors.iter().map(|e| (e.line, e.code)).collect::<Vec<_>>(),
        [(3, "import.unknown_owner")]
    );
    assert_eq!(w.leads_of(&w.ctx).await, 3, "Old, Kim and Lou: not Mo");
    assert_eq!(w.audited(&w.ctx, "crm.lead.import").await.len(), 1);
}

#[tokio::test]
async fn exported_leads_import_into_another_tenant_and_the_export_is_the_tenants_own() {
    let w = World::new().await;
    let globex = w.other("globex").await;
    w.lead(&globex, json!({"name": "Not ours", "email": "x@globex.example"})).await;
    let file = "name,email,phone,companyName,source,status,estimatedValue,currency,tags\r\n\
        Kim,kim@example.com,+49 30 1234567,@Acme,referral,contacted,99.99,EUR,a;b\r\n\
        Lou,,,,,unqualified,,,\r\n";
    w.import_leads(&w.ctx, file).await.unwrap();
    let exported = w.export_leads(&w.ctx, &LeadExportFilter::default()).await;
    assert!(!exported.contains("Not ours"));
    assert!(exported.contains(",'@Acme,") && exported.contains("'+49301234567"), "{exported}");
    let unqualified = w
        .export_leads(
            &w.ctx,
            &LeadExportFilter { status: Some(LeadStatus::Unqualified), ..Default::default() },
        )
        .await;
    assert_eq!(unqualified.lines().count(), 2, "the header and Lou: {unqualified}");

    let initech = w.other("initech").await;
    let summary = w.import_leads(&initech, &exported).await.unwrap();
    assert_eq!(summary.created, 2);
    assert_eq!(w.export_leads(&initech, &LeadExportFilter::default()).await, exported);
    w.store.note_leads_export(&w.ctx, &LeadExportFilter::default()).await.unwrap();
    assert_eq!(w.audited(&w.ctx, "crm.lead.export").await.len(), 1);
    assert!(w.audited(&globex, "crm.lead.export").await.is_empty());
}

#[tokio::test]
async fn the_same_leads_file_sent_twice_creates_nothing_the_second_time_rows_without_email_too() {
    let w = World::new().await;
    // Leads the tenant has without an email: one with a phone, one with a company only.
    let ann = w.lead(&w.ctx, json!({"name": "Ann Lee", "phone": "+49 30 1234567"})).await;
    let bob = w.lead(&w.ctx, json!({"name": "Bob Ray", "companyName": "Acme GmbH"})).await;
    let file = "name,email,phone,companyName\r\n\
        Kim,kim@example.com,,\r\n\
        ann  lee,,030 1234567,\r\n\
        BOB RAY,,,ACME\r\n\
        Cy,,030 7654321,\r\n\
        Cy,,+49 30 765 4321,\r\n\
        Dee,,,Initech Inc.\r\n\
        dee,,,initech\r\n\
        Eve,,,\r\n\
        Eve,,030 5550000,\r\n";
    let first = w.import_leads(&w.ctx, file).await.unwrap();
    let skipped: Vec<(u64, MatchReason, Option<MatchedId>, Option<u64>)> =
        first.skipped.iter().map(|s| (s.line, s.matched_by, s.existing_id, s.same_as_line)).collect();
    assert_eq!(
        skipped,
        vec![
            (3, MatchReason::Phone, Some(MatchedId::Lead(ann.id)), None),
            (4, MatchReason::Name, Some(MatchedId::Lead(bob.id)), None),
            (6, MatchReason::Phone, None, Some(5)),
            (8, MatchReason::Name, None, Some(7)),
        ]
    );
    assert_eq!(
        (first.rows, first.created, first.duplicates),
        (9, 5, 4),
        "Kim, Cy, Dee, Eve and Eve by phone"
    );
    assert_eq!(w.leads_of(&w.ctx).await, 7);

    let again = w.import_leads(&w.ctx, file).await.unwrap();
    assert_eq!((again.rows, again.created, again.duplicates), (9, 0, 9), "{again:?}");
    assert!(again.skipped.iter().all(|s| s.existing_id.is_some() && s.same_as_line.is_none()), "{again:?}");
    let reasons: Vec<MatchReason> = again.skipped.iter().map(|s| s.matched_by).collect();
    use MatchReason::{Email, Name, Phone};
    assert_eq!(reasons, [Email, Phone, Name, Phone, Phone, Name, Name, Name, Phone]);
    assert_eq!(w.leads_of(&w.ctx).await, 7, "nothing created twice");
    assert_eq!(w.audited(&w.ctx, "crm.lead.import").await.len(), 2);

    // Another tenant's leads without an email are no duplicates of its own.
    let globex = w.other("globex").await;
    let theirs = w.import_leads(&globex, file).await.unwrap();
    assert_eq!((theirs.created, theirs.duplicates), (7, 2));
}

#[tokio::test]
async fn the_export_filters_by_tag_in_any_case_trimmed_and_not_at_all_when_blank() {
    let w = World::new().await;
    w.import_contacts(&w.ctx, "displayName,tags\r\nP0,Vip;berlin\r\nP1,\r\nP2,VIP\r\nP3,vipper\r\n")
        .await
        .unwrap();
    let names = |file: String| -> Vec<String> {
        file.lines().skip(1).map(|l| l.split(',').nth(2).unwrap().to_owned()).collect()
    };
    for (tag, expected) in [
        ("vip", vec!["P0", "P2"]),
        (" vIP ", vec!["P0", "P2"]),
        ("BERLIN", vec!["P0"]),
        ("vi", vec![]),
        ("  ", vec!["P0", "P1", "P2", "P3"]),
    ] {
        let filter = ContactExportFilter { tag: Some(tag.into()), ..Default::default() };
        assert_eq!(names(w.export_contacts(&w.ctx, &filter, 1_000).await), expected, "{tag:?}");
    }

    w.import_leads(&w.ctx, "name,tags\r\nKim,Fair;2026\r\nLou,\r\nMo,FAIR\r\n").await.unwrap();
    let names = |file: String| -> Vec<String> {
        file.lines().skip(1).map(|l| l.split(',').next().unwrap().to_owned()).collect()
    };
    for (tag, expected) in [
        ("fair", vec!["Kim", "Mo"]),
        (" fAIR\t", vec!["Kim", "Mo"]),
        ("fai", vec![]),
        (" ", vec!["Kim", "Lou", "Mo"]),
    ] {
        let filter = LeadExportFilter { tag: Some(tag.into()), ..Default::default() };
        assert_eq!(names(w.export_leads(&w.ctx, &filter).await), expected, "{tag:?}");
    }
}
