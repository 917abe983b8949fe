//! CRM contacts and companies against real PostgreSQL: their changes with
//! one audit row each, owners who must be members, lists filtered, sorted
//! in stable pages and searched by name, email, phone and company, other
//! tenants never seen (not even through search terms), duplicates however
//! their phones and emails were written, and merges that keep every linked
//! record.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel_async::AsyncPgConnection;
use diesel_async::SimpleAsyncConnection;
use portico_crm::{
    Company, CompanyDraft, Contact, ContactDraft, ContactStatus, ContactType, CrmError, MatchReason,
    MergeCompanies, MergeContacts,
};
use portico_kernel::{CompanyId, ContactId, FixedClock, PageRequest, TenantContext, UserId};
use portico_store::{CompanyFilter, CompanySort, ContactFilter, ContactSort, DuplicateKind, NewUser, Store};
use portico_tenancy::{Email, MembershipKind, Role, UserStatus};
use portico_testkit::TestDb;
use serde_json::json;

use crate::support::{connect, count, lines, member_of, tenant};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

/// A German tenant, `acme`, with a member; a store whose clock the test moves.
struct World {
    db: TestDb,
    store: Store,
    clock: Arc<FixedClock>,
    ctx: TenantContext,
    member: UserId,
}

impl World {
    async fn new() -> Self {
        let db = TestDb::new().await;
        let clock = Arc::new(FixedClock::at(now()));
        let store = db.store().await.with_clock(clock.clone());
        let ctx = member_of(tenant(&store, "acme").await.id);
        let world = Self { member: UserId::new(), db, store, clock, ctx };
        world.in_country(&world.ctx, "DE").await;
        let member = world.member_of(&world.ctx, "seller@acme.example").await;
        Self { member, ..world }
    }

    /// Another tenant's member (in Germany too).
    async fn other(&self, slug: &str) -> TenantContext {
        let ctx = member_of(tenant(&self.store, slug).await.id);
        self.in_country(&ctx, "DE").await;
        ctx
    }

    async fn in_country(&self, ctx: &TenantContext, country: &str) {
        let settings = json!({"contact": {"country": country}});
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

    async fn audited(&self, action: &str) -> i64 {
        let tenant = self.ctx.tenant_id;
        self.count(&format!(
            "SELECT count(*) AS n FROM audit_log WHERE tenant_id = '{tenant}' AND action = '{action}'"
        ))
        .await
    }

    async fn contact(&self, body: serde_json::Value) -> Contact {
        self.store.create_contact(&self.ctx, contact_draft(body)).await.unwrap()
    }

    async fn company(&self, body: serde_json::Value) -> Company {
        self.store.create_company(&self.ctx, company_draft(body)).await.unwrap()
    }

    async fn list(&self, filter: ContactFilter) -> Vec<String> {
        self.list_in(&self.ctx, filter).await
    }

    async fn list_in(&self, ctx: &TenantContext, filter: ContactFilter) -> Vec<String> {
        let page = self.store.contacts(ctx, filter, PageRequest::new(1, 100).unwrap()).await.unwrap();
        assert_eq!(page.total, page.items.len() as u64, "one page holds them all");
        page.items.into_iter().map(|c| c.display_name).collect()
    }

    async fn search(&self, q: &str) -> Vec<String> {
        self.list(ContactFilter { q: Some(q.into()), ..ContactFilter::default() }).await
    }
}

fn contact_draft(body: serde_json::Value) -> ContactDraft {
    serde_json::from_value(body).unwrap()
}

fn company_draft(body: serde_json::Value) -> CompanyDraft {
    serde_json::from_value(body).unwrap()
}

fn refused_fields(result: Result<impl std::fmt::Debug, CrmError>) -> Vec<String> {
    match result {
        Err(CrmError::Invalid(errors)) => errors.0.into_iter().map(|e| e.field).collect(),
        other => panic!("expected a refusal naming fields: {other:?}"),
    }
}

// ---- Changes ----

#[tokio::test]
async fn a_contact_is_created_changed_and_deleted_with_one_audit_row_each() {
    let w = World::new().await;
    let created = w
        .contact(json!({
            "firstName": "Sam", "lastName": "Taylor", "contactType": "customer",
            "emails": [{"address": "Sam@Acme.example"}], "phones": [{"number": "030 1234567"}],
            "ownerId": w.member, "tags": ["VIP"]
        }))
        .await;
    assert_eq!(created.display_name, "Sam Taylor");
    assert_eq!(created.primary_phone(), Some("+49301234567"), "read in the tenant's country");
    let id = created.id;
    let mut conn = w.conn().await;
    let stored = lines(
        &mut conn,
        &format!(
            "SELECT email_keys::text || ' ' || phone_keys::text || ' ' || owner_id::text AS line \
             FROM crm_contacts WHERE id = '{id}'"
        ),
    )
    .await;
    assert_eq!(stored, [format!("{{sam@acme.example}} {{+49301234567}} {}", w.member)]);
    let keys = format!("SELECT count(*) AS n FROM crm_contact_keys WHERE contact_id = '{id}'");
    assert_eq!(count(&mut conn, &keys).await, 2, "the trigger keeps the keys");
    assert_eq!(w.store.contact(&w.ctx, id).await.unwrap(), created);

    w.clock.advance(Duration::hours(1));
    let changed = w
        .store
        .update_contact(&w.ctx, id, contact_draft(json!({"displayName": "Sam T.", "status": "inactive"})))
        .await
        .unwrap();
    assert_eq!((changed.display_name.as_str(), changed.status), ("Sam T.", ContactStatus::Inactive));
    assert!(
        changed.emails.is_empty() && changed.tags.is_empty() && changed.owner_id.is_none(),
        "PUT replaces"
    );
    assert_eq!((changed.created_at, changed.updated_at), (now(), now() + Duration::hours(1)));
    assert_eq!(w.store.contact(&w.ctx, id).await.unwrap(), changed);
    assert_eq!(count(&mut conn, &keys).await, 0, "its keys went with its emails and phones");

    w.store.delete_contact(&w.ctx, id).await.unwrap();
    assert!(matches!(w.store.contact(&w.ctx, id).await, Err(CrmError::ContactNotFound)));
    let terms = format!("SELECT count(*) AS n FROM crm_search_terms WHERE record_id = '{id}'");
    assert_eq!(count(&mut conn, &terms).await, 0, "its search words are gone");
    for action in ["crm.contact.create", "crm.contact.update", "crm.contact.delete"] {
        assert_eq!(w.audited(action).await, 1, "{action}");
    }
    assert!(matches!(w.store.delete_contact(&w.ctx, id).await, Err(CrmError::ContactNotFound)));
}

#[tokio::test]
async fn an_owner_outside_the_tenant_or_another_tenants_company_is_refused_and_nothing_is_written() {
    let w = World::new().await;
    let globex = w.other("globex").await;
    let outsider = w.member_of(&globex, "seller@globex.example").await;
    let result = w
        .store
        .create_contact(&w.ctx, contact_draft(json!({"displayName": "Sam", "ownerId": outsider})))
        .await;
    assert_eq!(refused_fields(result), ["ownerId"]);
    let theirs = w.store.create_company(&globex, company_draft(json!({"name": "Globex"}))).await.unwrap();
    let result = w
        .store
        .create_contact(&w.ctx, contact_draft(json!({"displayName": "Sam", "companyId": theirs.id})))
        .await;
    assert_eq!(refused_fields(result), ["companyId"]);
    let result =
        w.store.create_company(&w.ctx, company_draft(json!({"name": "Acme", "ownerId": outsider}))).await;
    assert_eq!(refused_fields(result), ["ownerId"]);
    let result = w
        .store
        .create_contact(&w.ctx, contact_draft(json!({"displayName": "Sam", "phones": [{"number": "12"}]})));
    assert_eq!(refused_fields(result.await), ["phones[0].number"]);

    let tenant = w.ctx.tenant_id;
    for table in ["crm_contacts", "crm_companies", "crm_search_terms"] {
        let sql = format!("SELECT count(*) AS n FROM {table} WHERE tenant_id = '{tenant}'");
        assert_eq!(w.count(&sql).await, 0, "{table}");
    }
    assert_eq!(w.audited("crm.contact.create").await + w.audited("crm.company.create").await, 0);

    let sam = w.contact(json!({"displayName": "Sam", "ownerId": w.member})).await;
    let result = w.store.update_contact(
        &w.ctx,
        sam.id,
        contact_draft(json!({"displayName": "Sam", "ownerId": outsider})),
    );
    assert_eq!(refused_fields(result.await), ["ownerId"]);
    assert_eq!(w.store.contact(&w.ctx, sam.id).await.unwrap().owner_id, Some(w.member), "unchanged");
}

#[tokio::test]
async fn a_contact_who_requested_tickets_is_not_deleted() {
    let w = World::new().await;
    let sam = w.contact(json!({"displayName": "Sam"})).await;
    w.sql(&ticket_for(w.ctx.tenant_id, sam.id, 1)).await;
    assert!(matches!(w.store.delete_contact(&w.ctx, sam.id).await, Err(CrmError::ContactHasTickets)));
    assert_eq!(w.store.contact(&w.ctx, sam.id).await.unwrap(), sam, "still there");
    assert_eq!(w.audited("crm.contact.delete").await, 0);
}

#[tokio::test]
async fn a_company_is_changed_and_deleted_and_its_contacts_keep_no_company() {
    let w = World::new().await;
    let acme =
        w.company(json!({"name": "Acme GmbH", "domain": "https://www.acme.example/", "tags": ["key"]})).await;
    assert_eq!(acme.domain.as_deref(), Some("acme.example"));
    let sam = w.contact(json!({"displayName": "Sam", "companyId": acme.id})).await;
    w.clock.advance(Duration::minutes(5));
    let changed = w
        .store
        .update_company(&w.ctx, acme.id, company_draft(json!({"name": "Acme AG", "industry": "Property"})))
        .await
        .unwrap();
    assert_eq!((changed.name.as_str(), changed.domain.as_deref(), changed.tags.len()), ("Acme AG", None, 0));
    assert_eq!(w.store.company(&w.ctx, acme.id).await.unwrap(), changed);
    let key = format!("SELECT name_key AS line FROM crm_companies WHERE id = '{}'", acme.id);
    assert_eq!(lines(&mut w.conn().await, &key).await, ["acme"], "the normalised name follows the name");

    w.store.delete_company(&w.ctx, acme.id).await.unwrap();
    assert!(matches!(w.store.company(&w.ctx, acme.id).await, Err(CrmError::CompanyNotFound)));
    assert_eq!(w.store.contact(&w.ctx, sam.id).await.unwrap().company_id, None);
    for action in ["crm.company.create", "crm.company.update", "crm.company.delete"] {
        assert_eq!(w.audited(action).await, 1, "{action}");
    }
}

// ---- Lists ----

#[tokio::test]
async fn the_contact_list_filters_by_each_field() {
    let w = World::new().await;
    let acme = w.company(json!({"name": "Acme"})).await;
    w.contact(json!({"displayName": "Ann", "contactType": "customer", "tags": ["VIP"], "ownerId": w.member}))
        .await;
    w.clock.advance(Duration::days(1));
    w.contact(
        json!({"displayName": "Bob", "status": "inactive", "companyId": acme.id, "tags": ["vip", "berlin"]}),
    )
    .await;
    w.clock.advance(Duration::days(1));
    w.contact(json!({"displayName": "Cy", "contactType": "vendor"})).await;

    let all = ContactFilter::default();
    assert_eq!(w.list(all.clone()).await, ["Ann", "Bob", "Cy"]);
    let status = ContactFilter { status: Some(ContactStatus::Inactive), ..all.clone() };
    assert_eq!(w.list(status).await, ["Bob"]);
    let kind = ContactFilter { contact_type: Some(ContactType::Vendor), ..all.clone() };
    assert_eq!(w.list(kind).await, ["Cy"]);
    assert_eq!(w.list(ContactFilter { owner_id: Some(w.member), ..all.clone() }).await, ["Ann"]);
    assert_eq!(w.list(ContactFilter { company_id: Some(acme.id), ..all.clone() }).await, ["Bob"]);
    assert_eq!(
        w.list(ContactFilter { tag: Some("VIP".into()), ..all.clone() }).await,
        ["Ann", "Bob"],
        "any case"
    );
    assert_eq!(
        w.list(ContactFilter { tag: Some(" vip ".into()), ..all.clone() }).await,
        ["Ann", "Bob"],
        "trimmed"
    );
    assert!(w.list(ContactFilter { tag: Some("vi".into()), ..all.clone() }).await.is_empty(), "whole tags");
    assert_eq!(w.list(ContactFilter { tag: Some("berlin".into()), ..all.clone() }).await, ["Bob"]);
    let from_day_2 = ContactFilter { created_from: Some(now() + Duration::days(1)), ..all.clone() };
    assert_eq!(w.list(from_day_2).await, ["Bob", "Cy"], "from is inclusive");
    let before_day_2 = ContactFilter { created_to: Some(now() + Duration::days(1)), ..all.clone() };
    assert_eq!(w.list(before_day_2).await, ["Ann"], "to is exclusive");
    let none = ContactFilter {
        status: Some(ContactStatus::Inactive),
        contact_type: Some(ContactType::Vendor),
        ..all
    };
    assert!(w.list(none).await.is_empty());
}

#[tokio::test]
async fn each_sort_order_pages_stably_and_counts_the_total() {
    let w = World::new().await;
    // Names that tie ignoring case, times that tie: the id breaks every tie.
    let names = ["delta", "Alpha", "charlie", "alpha", "Bravo", "echo", "ALPHA"];
    let mut made = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        if i % 2 == 0 {
            w.clock.advance(Duration::minutes(1));
        }
        made.push(w.contact(json!({"displayName": name})).await);
    }
    // Touch two, so the change times differ from the creation times.
    w.clock.advance(Duration::minutes(10));
    for contact in [&made[0], &made[4]] {
        let body = json!({"displayName": contact.display_name.clone()});
        w.store.update_contact(&w.ctx, contact.id, contact_draft(body)).await.unwrap();
    }
    let stored: Vec<Contact> = {
        let page =
            w.store.contacts(&w.ctx, ContactFilter::default(), PageRequest::new(1, 100).unwrap()).await;
        page.unwrap().items
    };
    for sort in [
        ContactSort::Name,
        ContactSort::NameDesc,
        ContactSort::CreatedAt,
        ContactSort::CreatedAtDesc,
        ContactSort::UpdatedAt,
        ContactSort::UpdatedAtDesc,
    ] {
        let mut expected = stored.clone();
        // By name the id alone breaks ties; by a time, the id too.
        expected.sort_by_key(|c| match sort {
            ContactSort::Name | ContactSort::NameDesc => {
                (c.display_name.to_lowercase(), None, c.id.into_uuid())
            }
            ContactSort::CreatedAt | ContactSort::CreatedAtDesc => {
                (String::new(), Some(c.created_at), c.id.into_uuid())
            }
            ContactSort::UpdatedAt | ContactSort::UpdatedAtDesc => {
                (String::new(), Some(c.updated_at), c.id.into_uuid())
            }
        });
        if matches!(sort, ContactSort::NameDesc | ContactSort::CreatedAtDesc | ContactSort::UpdatedAtDesc) {
            expected.reverse();
        }
        let expected: Vec<ContactId> = expected.iter().map(|c| c.id).collect();
        let mut paged = Vec::new();
        for number in 1..=3 {
            let page = w
                .store
                .contacts(
                    &w.ctx,
                    ContactFilter { sort, ..ContactFilter::default() },
                    PageRequest::new(number, 3).unwrap(),
                )
                .await
                .unwrap();
            assert_eq!((page.total, page.total_pages), (7, 3), "{sort:?} page {number}");
            paged.extend(page.items.into_iter().map(|c| c.id));
        }
        assert_eq!(paged, expected, "{sort:?}: three pages, each contact once, in order");
    }
    let names: Vec<String> = stored.iter().map(|c| c.display_name.to_lowercase()).collect();
    assert_eq!(
        names,
        ["alpha", "alpha", "alpha", "bravo", "charlie", "delta", "echo"],
        "by name ignoring case"
    );
    let past =
        w.store.contacts(&w.ctx, ContactFilter::default(), PageRequest::new(9, 3).unwrap()).await.unwrap();
    assert_eq!((past.items.len(), past.total), (0, 7), "a page past the end still counts them");
}

#[tokio::test]
async fn search_finds_contacts_by_partial_name_email_phone_and_company_name() {
    let w = World::new().await;
    let globex = w.company(json!({"name": "Globex Corporation", "domain": "globex.example"})).await;
    w.contact(json!({
        "firstName": "Samantha", "lastName": "Taylor",
        "emails": [{"address": "sam.t@acme.example"}], "phones": [{"number": "+49 30 1234567"}]
    }))
    .await;
    w.contact(json!({"displayName": "Hank Scorpio", "companyId": globex.id, "phones": [{"number": "0171 2345678"}]}))
        .await;
    w.contact(json!({"displayName": "Tay Zonday", "emails": [{"address": "tay@example.org"}]})).await;

    assert_eq!(w.search("tay").await, ["Samantha Taylor", "Tay Zonday"], "a word's start, any case");
    assert_eq!(w.search("sam tay").await, ["Samantha Taylor"], "every word must match");
    assert_eq!(w.search("acme").await, ["Samantha Taylor"], "a part of an email address");
    assert_eq!(w.search("sam.t@acme.example").await, ["Samantha Taylor"], "a whole email address");
    assert_eq!(w.search("GLOBEX").await, ["Hank Scorpio"], "the company's name");
    assert_eq!(w.search("hank glob").await, ["Hank Scorpio"], "a name and the company's together");
    assert_eq!(
        w.search("030/1234567").await,
        ["Samantha Taylor"],
        "a national number in the tenant's country"
    );
    assert_eq!(w.search("+49 171 2345678").await, ["Hank Scorpio"], "an international number");
    assert_eq!(w.search("4930123").await, ["Samantha Taylor"], "the start of a number's digits");
    assert_eq!(
        w.search("t").await,
        ["Samantha Taylor"],
        "one character is a whole word (sam.t@), not a prefix"
    );
    assert!(w.search("taylorx").await.is_empty());
    assert!(w.search("zzz").await.is_empty());
    assert_eq!(w.search("   ").await.len(), 3, "a blank search is no search");
    // Words past the fifth are ignored: the five longest still match.
    assert_eq!(w.search("samantha taylor sam acme example x").await, ["Samantha Taylor"]);

    let companies = w
        .store
        .companies(
            &w.ctx,
            CompanyFilter { q: Some("glob".into()), ..CompanyFilter::default() },
            PageRequest::new(1, 10).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(companies.items, [globex]);
}

#[tokio::test]
async fn a_search_counts_every_match_across_its_pages() {
    let w = World::new().await;
    let acme = w.company(json!({"name": "Acme"})).await;
    for (name, status) in [("Ann Taylor", "active"), ("Bob Taylor", "inactive"), ("Cy Taylor", "active")] {
        w.contact(json!({"displayName": name, "status": status})).await;
    }
    w.contact(json!({"displayName": "Dee", "companyId": acme.id})).await;
    w.contact(json!({"displayName": "Eve Taylor", "companyId": acme.id})).await;
    let page = |q: &str, status: Option<ContactStatus>, number: u32| {
        let w = &w;
        let filter = ContactFilter { q: Some(q.into()), status, ..ContactFilter::default() };
        async move { w.store.contacts(&w.ctx, filter, PageRequest::new(number, 2).unwrap()).await.unwrap() }
    };
    let first = page("taylor", None, 1).await;
    let names: Vec<&str> = first.items.iter().map(|c| c.display_name.as_str()).collect();
    assert_eq!((names, first.total, first.total_pages), (vec!["Ann Taylor", "Bob Taylor"], 4, 2));
    let second = page("taylor", None, 2).await;
    assert_eq!((second.items.len(), second.total), (2, 4));
    let active = page("taylor", Some(ContactStatus::Active), 1).await;
    assert_eq!((active.items.len(), active.total), (2, 3), "the search's ids with the status filter");
    let by_company = page("acme", None, 1).await;
    assert_eq!((by_company.items.len(), by_company.total), (2, 2));
    let both = page("acme taylor", None, 1).await;
    assert_eq!(both.items.iter().map(|c| c.display_name.as_str()).collect::<Vec<_>>(), ["Eve Taylor"]);
}

#[tokio::test]
async fn the_company_list_filters_and_sorts() {
    let w = World::new().await;
    w.company(json!({"name": "beta", "industry": "Retail", "tags": ["Key"]})).await;
    w.clock.advance(Duration::minutes(1));
    w.company(json!({"name": "Alpha", "industry": "retail", "ownerId": w.member})).await;
    w.clock.advance(Duration::minutes(1));
    w.company(json!({"name": "Gamma", "domain": "gamma.example"})).await;
    let names = |filter: CompanyFilter| {
        let w = &w;
        async move {
            let page = w.store.companies(&w.ctx, filter, PageRequest::new(1, 10).unwrap()).await.unwrap();
            assert_eq!(page.total, page.items.len() as u64);
            page.items.into_iter().map(|c| c.name).collect::<Vec<_>>()
        }
    };
    let all = CompanyFilter::default();
    assert_eq!(names(all.clone()).await, ["Alpha", "beta", "Gamma"]);
    assert_eq!(
        names(CompanyFilter { sort: CompanySort::NameDesc, ..all.clone() }).await,
        ["Gamma", "beta", "Alpha"]
    );
    assert_eq!(
        names(CompanyFilter { sort: CompanySort::CreatedAt, ..all.clone() }).await,
        ["beta", "Alpha", "Gamma"]
    );
    assert_eq!(
        names(CompanyFilter { sort: CompanySort::CreatedAtDesc, ..all.clone() }).await,
        ["Gamma", "Alpha", "beta"]
    );
    assert_eq!(
        names(CompanyFilter { industry: Some("RETAIL".into()), ..all.clone() }).await,
        ["Alpha", "beta"]
    );
    assert_eq!(names(CompanyFilter { owner_id: Some(w.member), ..all.clone() }).await, ["Alpha"]);
    assert_eq!(names(CompanyFilter { tag: Some("Key".into()), ..all.clone() }).await, ["beta"]);
    assert_eq!(names(CompanyFilter { tag: Some("key".into()), ..all.clone() }).await, ["beta"], "any case");
    assert_eq!(names(CompanyFilter { q: Some("gamma.exa".into()), ..all }).await, ["Gamma"], "by domain");
}

// ---- Isolation ----

#[tokio::test]
async fn another_tenants_contacts_and_companies_are_never_seen_or_touched() {
    let w = World::new().await;
    let globex = w.other("globex").await;
    let theirs = w
        .store
        .create_contact(
            &globex,
            contact_draft(json!({"displayName": "Sam Taylor", "emails": [{"address": "sam@acme.example"}],
                                 "phones": [{"number": "030 1234567"}]})),
        )
        .await
        .unwrap();
    let their_company =
        w.store.create_company(&globex, company_draft(json!({"name": "Acme"}))).await.unwrap();
    let ours = w
        .contact(json!({"displayName": "Sam Turner", "emails": [{"address": "sam@acme.example"}],
                        "phones": [{"number": "030 1234567"}]}))
        .await;

    assert_eq!(w.list(ContactFilter::default()).await, ["Sam Turner"]);
    assert!(w.search("taylor").await.is_empty(), "their name is not found here");
    for q in ["sam", "acme", "030 1234567"] {
        assert_eq!(w.search(q).await, ["Sam Turner"], "{q}: their search terms are not ours");
    }
    let companies =
        w.store.companies(&w.ctx, CompanyFilter::default(), PageRequest::new(1, 10).unwrap()).await;
    assert!(companies.unwrap().items.is_empty());
    let report = w.store.duplicates(&w.ctx, None).await.unwrap();
    assert!(
        report.contacts.is_empty() && report.companies.is_empty(),
        "the same email across tenants is no duplicate"
    );

    assert!(matches!(w.store.contact(&w.ctx, theirs.id).await, Err(CrmError::ContactNotFound)));
    let change = contact_draft(json!({"displayName": "Taken"}));
    assert!(matches!(
        w.store.update_contact(&w.ctx, theirs.id, change).await,
        Err(CrmError::ContactNotFound)
    ));
    assert!(matches!(w.store.delete_contact(&w.ctx, theirs.id).await, Err(CrmError::ContactNotFound)));
    let merge = MergeContacts { keep_id: ours.id, merged_id: theirs.id };
    assert!(matches!(w.store.merge_contacts(&w.ctx, merge).await, Err(CrmError::ContactNotFound)));
    let merge = MergeContacts { keep_id: theirs.id, merged_id: ours.id };
    assert!(matches!(w.store.merge_contacts(&w.ctx, merge).await, Err(CrmError::ContactNotFound)));
    assert!(matches!(w.store.company(&w.ctx, their_company.id).await, Err(CrmError::CompanyNotFound)));
    assert!(matches!(w.store.delete_company(&w.ctx, their_company.id).await, Err(CrmError::CompanyNotFound)));
    let ours_company = w.company(json!({"name": "Acme"})).await;
    let merge = MergeCompanies { keep_id: ours_company.id, merged_id: their_company.id };
    assert!(matches!(w.store.merge_companies(&w.ctx, merge).await, Err(CrmError::CompanyNotFound)));

    assert_eq!(w.store.contact(&globex, theirs.id).await.unwrap(), theirs, "theirs untouched");
    assert_eq!(w.store.company(&globex, their_company.id).await.unwrap(), their_company);
    assert_eq!(w.list_in(&globex, ContactFilter::default()).await, ["Sam Taylor"]);
}

// ---- Duplicates ----

#[tokio::test]
async fn duplicates_match_phones_and_emails_however_they_were_written() {
    let w = World::new().await;
    let a = w
        .contact(json!({"displayName": "A", "emails": [{"address": "Sam@Acme.example"}], "phones": [{"number": "+49 30 1234567"}]}))
        .await;
    w.clock.advance(Duration::minutes(1));
    let b = w.contact(json!({"displayName": "B", "phones": [{"number": "030/1234567"}]})).await;
    w.clock.advance(Duration::minutes(1));
    let c = w.contact(json!({"displayName": "C", "emails": [{"address": "sam@acme.EXAMPLE "}]})).await;
    w.contact(json!({"displayName": "D", "emails": [{"address": "other@acme.example"}]})).await;
    let acme = w.company(json!({"name": "Acme GmbH", "domain": "https://www.acme.example"})).await;
    w.clock.advance(Duration::minutes(1));
    let acme2 = w.company(json!({"name": "ACME", "domain": "acme.example"})).await;
    w.company(json!({"name": "Globex"})).await;

    let report = w.store.duplicates(&w.ctx, None).await.unwrap();
    let contacts: Vec<(MatchReason, &str, Vec<ContactId>)> =
        report.contacts.iter().map(|g| (g.reason, g.value.as_str(), g.contact_ids.clone())).collect();
    assert_eq!(
        contacts,
        [
            (MatchReason::Email, "sam@acme.example", vec![a.id, c.id]),
            (MatchReason::Phone, "+49301234567", vec![a.id, b.id]),
        ]
    );
    let companies: Vec<(MatchReason, &str, Vec<CompanyId>)> =
        report.companies.iter().map(|g| (g.reason, g.value.as_str(), g.company_ids.clone())).collect();
    assert_eq!(
        companies,
        [
            (MatchReason::Domain, "acme.example", vec![acme.id, acme2.id]),
            (MatchReason::Name, "acme", vec![acme.id, acme2.id])
        ]
    );
    assert!(!report.truncated);
    let only = w.store.duplicates(&w.ctx, Some(DuplicateKind::Contacts)).await.unwrap();
    assert_eq!((only.contacts.len(), only.companies.len()), (2, 0));
    let only = w.store.duplicates(&w.ctx, Some(DuplicateKind::Companies)).await.unwrap();
    assert_eq!((only.contacts.len(), only.companies.len()), (0, 2));
}

// ---- Merges ----

/// SQL that makes a ticket `number` requested by `contact`.
fn ticket_for(tenant: portico_kernel::TenantId, contact: ContactId, number: i64) -> String {
    format!(
        "INSERT INTO crm_tickets (tenant_id, id, number, subject, description, requester_contact_id, priority, status, \
             first_response_due, resolution_due, created_at, updated_at) \
         VALUES ('{tenant}', gen_random_uuid(), {number}, 'Broken', 'It broke', '{contact}', 'normal', 'open', \
                 now(), now(), now(), now())"
    )
}

#[tokio::test]
async fn a_merge_keeps_every_linked_record_and_records_the_merge() {
    let w = World::new().await;
    let t = w.ctx.tenant_id;
    let acme = w.company(json!({"name": "Acme"})).await;
    let keep = w
        .contact(json!({"firstName": "Sam", "displayName": "Sam Taylor", "emails": [{"address": "sam@acme.example"}],
                        "tags": ["vip"]}))
        .await;
    let merged = w
        .contact(json!({"lastName": "Taylor", "displayName": "S. Taylor", "companyId": acme.id,
                        "emails": [{"address": "SAM@acme.example"}, {"address": "sam@home.example"}],
                        "phones": [{"number": "030 1234567"}], "tags": ["VIP", "berlin"], "ownerId": w.member}))
        .await;
    let (m, k) = (merged.id, keep.id);
    // What other areas link to the merged contact, written as they would be.
    let pipeline = "0193a000-0000-7000-8000-000000000001";
    let stage = "0193a000-0000-7000-8000-000000000002";
    w.sql(&format!(
        "INSERT INTO crm_pipelines (tenant_id, id, name, created_at, updated_at) VALUES ('{t}', '{pipeline}', 'Sales', now(), now()); \
         INSERT INTO crm_stages (tenant_id, pipeline_id, id, name, position, probability, kind) \
             VALUES ('{t}', '{pipeline}', '{stage}', 'New', 0, 10, 'open'); \
         INSERT INTO crm_deals (tenant_id, id, title, amount, currency, pipeline_id, stage_id, owner_id, contact_id, \
                                status, created_at, updated_at) \
             SELECT '{t}', gen_random_uuid(), title, 1000, 'EUR', '{pipeline}', '{stage}', '{owner}', '{m}', 'open', now(), now() \
             FROM unnest(ARRAY['Renewal', 'Upsell']) AS title; \
         INSERT INTO crm_deals (tenant_id, id, title, amount, currency, pipeline_id, stage_id, owner_id, contact_id, \
                                status, created_at, updated_at) \
             VALUES ('{t}', gen_random_uuid(), 'Kept''s own', 1, 'EUR', '{pipeline}', '{stage}', '{owner}', '{k}', 'open', now(), now()); \
         INSERT INTO crm_leads (tenant_id, id, name, source, status, contact_id, created_at, updated_at) \
             VALUES ('{t}', gen_random_uuid(), 'Lead', 'manual', 'new', '{m}', now(), now()); \
         INSERT INTO crm_activities (tenant_id, id, kind, subject, occurred_at, contact_id, created_by, created_at, updated_at) \
             VALUES ('{t}', gen_random_uuid(), 'note', 'Called', now(), '{m}', '{owner}', now(), now());",
        owner = w.member
    ))
    .await;
    w.sql(&ticket_for(t, m, 7)).await;
    let linked_to = |id: ContactId| {
        format!(
            "SELECT (SELECT count(*) FROM crm_deals WHERE contact_id = '{id}') \
                  + (SELECT count(*) FROM crm_leads WHERE contact_id = '{id}') \
                  + (SELECT count(*) FROM crm_activities WHERE contact_id = '{id}') \
                  + (SELECT count(*) FROM crm_tickets WHERE requester_contact_id = '{id}') AS n"
        )
    };
    assert_eq!((w.count(&linked_to(m)).await, w.count(&linked_to(k)).await), (5, 1));

    w.clock.advance(Duration::hours(2));
    let kept = w.store.merge_contacts(&w.ctx, MergeContacts { keep_id: k, merged_id: m }).await.unwrap();
    assert_eq!((kept.id, kept.display_name.as_str()), (k, "Sam Taylor"), "the kept one's values win");
    assert_eq!(
        (kept.first_name.as_deref(), kept.last_name.as_deref()),
        (Some("Sam"), Some("Taylor")),
        "gaps filled"
    );
    let emails: Vec<&str> = kept.emails.iter().map(|e| e.address.as_str()).collect();
    assert_eq!(emails, ["sam@acme.example", "sam@home.example"], "each address once");
    assert_eq!(kept.primary_phone(), Some("+49301234567"));
    assert_eq!((kept.company_id, kept.owner_id), (Some(acme.id), Some(w.member)));
    assert_eq!(kept.tags, ["vip", "berlin"]);
    assert_eq!(kept.updated_at, now() + Duration::hours(2));
    assert_eq!(w.store.contact(&w.ctx, k).await.unwrap(), kept, "stored as answered");

    assert_eq!(
        (w.count(&linked_to(m)).await, w.count(&linked_to(k)).await),
        (0, 6),
        "every record moved, none lost"
    );
    assert!(matches!(w.store.contact(&w.ctx, m).await, Err(CrmError::ContactNotFound)));
    let record = lines(
        &mut w.conn().await,
        &format!(
            "SELECT kind || ' ' || kept_id || ' ' || (merged ->> 'displayName') || ' ' || \
                    jsonb_array_length(repointed -> 'deals') || jsonb_array_length(repointed -> 'leads') || \
                    jsonb_array_length(repointed -> 'activities') || jsonb_array_length(repointed -> 'tickets') AS line \
             FROM crm_merges WHERE merged_id = '{m}'"
        ),
    )
    .await;
    assert_eq!(record, [format!("contact {k} S. Taylor 2111")]);
    let keys = format!("SELECT count(*) AS n FROM crm_contact_keys WHERE contact_id = '{k}'");
    assert_eq!(w.count(&keys).await, 3, "the kept contact's keys include what it gained");
    assert_eq!(w.search("home").await, ["Sam Taylor"], "and its search words");
    assert_eq!(w.audited("crm.contact.merge").await, 1);
    assert_eq!(w.store.duplicates(&w.ctx, None).await.unwrap().contacts.len(), 0, "no duplicate left");
}

#[tokio::test]
async fn a_merge_past_the_limits_or_into_itself_is_refused_and_changes_nothing() {
    let w = World::new().await;
    let emails = |from: usize| {
        (from..from + 6).map(|i| json!({"address": format!("p{i}@acme.example")})).collect::<Vec<_>>()
    };
    let keep = w.contact(json!({"displayName": "Keep", "emails": emails(0)})).await;
    let merged = w.contact(json!({"displayName": "Merged", "emails": emails(6)})).await;
    w.sql(&ticket_for(w.ctx.tenant_id, merged.id, 1)).await;
    let result =
        w.store.merge_contacts(&w.ctx, MergeContacts { keep_id: keep.id, merged_id: merged.id }).await;
    assert_eq!(refused_fields(result), ["emails"]);
    assert_eq!(w.store.contact(&w.ctx, keep.id).await.unwrap(), keep);
    assert_eq!(w.store.contact(&w.ctx, merged.id).await.unwrap(), merged);
    let requested =
        format!("SELECT count(*) AS n FROM crm_tickets WHERE requester_contact_id = '{}'", merged.id);
    assert_eq!(w.count(&requested).await, 1, "the ticket stays with its requester");
    let result = w.store.merge_contacts(&w.ctx, MergeContacts { keep_id: keep.id, merged_id: keep.id }).await;
    assert!(matches!(result, Err(CrmError::MergeIntoItself)));
    assert_eq!(w.count("SELECT count(*) AS n FROM crm_merges").await, 0);
    assert_eq!(w.audited("crm.contact.merge").await, 0);
}

#[tokio::test]
async fn a_company_merge_moves_its_contacts_and_deals_to_the_kept_company() {
    let w = World::new().await;
    let t = w.ctx.tenant_id;
    let keep = w.company(json!({"name": "Acme GmbH", "tags": ["key"]})).await;
    let merged = w
        .company(
            json!({"name": "ACME", "domain": "acme.example", "industry": "Retail", "tags": ["KEY", "b2b"]}),
        )
        .await;
    let sam = w.contact(json!({"displayName": "Sam", "companyId": merged.id})).await;
    let (pipeline, stage) = ("0193a000-0000-7000-8000-000000000011", "0193a000-0000-7000-8000-000000000012");
    w.sql(&format!(
        "INSERT INTO crm_pipelines (tenant_id, id, name, created_at, updated_at) VALUES ('{t}', '{pipeline}', 'Sales', now(), now()); \
         INSERT INTO crm_stages (tenant_id, pipeline_id, id, name, position, probability, kind) \
             VALUES ('{t}', '{pipeline}', '{stage}', 'New', 0, 10, 'open'); \
         INSERT INTO crm_deals (tenant_id, id, title, amount, currency, pipeline_id, stage_id, owner_id, company_id, \
                                status, created_at, updated_at) \
             VALUES ('{t}', gen_random_uuid(), 'Deal', 1, 'EUR', '{pipeline}', '{stage}', '{owner}', '{m}', 'open', now(), now()); \
         INSERT INTO crm_leads (tenant_id, id, name, source, status, company_id, created_at, updated_at) \
             VALUES ('{t}', gen_random_uuid(), 'Lead', 'manual', 'new', '{m}', now(), now()); \
         INSERT INTO crm_activities (tenant_id, id, kind, subject, occurred_at, company_id, created_by, created_at, updated_at) \
             VALUES ('{t}', gen_random_uuid(), 'note', 'Met', now(), '{m}', '{owner}', now(), now());",
        owner = w.member,
        m = merged.id
    ))
    .await;
    let kept = w
        .store
        .merge_companies(&w.ctx, MergeCompanies { keep_id: keep.id, merged_id: merged.id })
        .await
        .unwrap();
    assert_eq!(
        (kept.name.as_str(), kept.domain.as_deref(), kept.industry.as_deref()),
        ("Acme GmbH", Some("acme.example"), Some("Retail"))
    );
    assert_eq!(kept.tags, ["key", "b2b"]);
    assert_eq!(w.store.contact(&w.ctx, sam.id).await.unwrap().company_id, Some(keep.id));
    let at = |id: CompanyId| {
        format!(
            "SELECT (SELECT count(*) FROM crm_deals WHERE company_id = '{id}') \
                  + (SELECT count(*) FROM crm_leads WHERE company_id = '{id}') \
                  + (SELECT count(*) FROM crm_activities WHERE company_id = '{id}') AS n"
        )
    };
    assert_eq!((w.count(&at(merged.id)).await, w.count(&at(keep.id)).await), (0, 3));
    assert!(matches!(w.store.company(&w.ctx, merged.id).await, Err(CrmError::CompanyNotFound)));
    assert_eq!(w.count("SELECT count(*) AS n FROM crm_merges WHERE kind = 'company'").await, 1);
    assert_eq!(w.audited("crm.company.merge").await, 1);
    assert_eq!(w.search("acme").await, ["Sam"], "a contact is found by its new company's name");
}

// ---- Deleting what activities name ----

/// An activity (a note) of the world's tenant naming these records; its id.
async fn note_about(w: &World, links: &[(&str, uuid::Uuid)]) -> uuid::Uuid {
    let id = uuid::Uuid::now_v7();
    let columns: Vec<&str> = links.iter().map(|(column, _)| *column).collect();
    let values: Vec<String> = links.iter().map(|(_, value)| format!("'{value}'")).collect();
    w.sql(&format!(
        "INSERT INTO crm_activities (tenant_id, id, kind, subject, occurred_at, {}, created_by, created_at, updated_at) \
         VALUES ('{}', '{id}', 'note', 'Note', now(), {}, '{}', now(), now())",
        columns.join(", "),
        w.ctx.tenant_id,
        values.join(", "),
        w.member
    ))
    .await;
    id
}

/// What is left of an activity: its contact and company links, or `gone`.
async fn links_of(w: &World, activity: uuid::Uuid) -> Vec<String> {
    let sql = format!(
        "SELECT coalesce(contact_id::text, '-') || ' ' || coalesce(company_id::text, '-') AS line \
         FROM crm_activities WHERE id = '{activity}'"
    );
    lines(&mut w.conn().await, &sql).await
}

#[tokio::test]
async fn deleting_a_contact_deletes_the_activities_about_it_alone_and_unlinks_the_others() {
    let w = World::new().await;
    let acme = w.company(json!({"name": "Acme GmbH"})).await;
    let sam = w.contact(json!({"displayName": "Sam", "companyId": acme.id})).await;
    let (sam_id, acme_id) = (sam.id.into_uuid(), acme.id.into_uuid());
    let sole = note_about(&w, &[("contact_id", sam_id)]).await;
    let shared = note_about(&w, &[("contact_id", sam_id), ("company_id", acme_id)]).await;
    // Another tenant's activity about a record with the same id is not theirs to delete.
    let other = w.other("globex").await;
    let theirs = uuid::Uuid::now_v7();
    w.sql(&format!(
        "INSERT INTO crm_contacts (tenant_id, id, display_name, contact_type, status, created_at, updated_at) \
         VALUES ('{t}', '{sam_id}', 'Theirs', 'customer', 'active', now(), now()); \
         INSERT INTO crm_activities (tenant_id, id, kind, subject, occurred_at, contact_id, created_by, created_at, updated_at) \
         VALUES ('{t}', '{theirs}', 'note', 'Theirs', now(), '{sam_id}', '{}', now(), now())",
        w.member,
        t = other.tenant_id
    ))
    .await;

    w.store.delete_contact(&w.ctx, sam.id).await.unwrap();
    assert!(links_of(&w, sole).await.is_empty(), "the activity about the contact alone went with it");
    assert_eq!(links_of(&w, shared).await, [format!("- {acme_id}")], "the shared one stays, unlinked");
    assert_eq!(links_of(&w, theirs).await, [format!("{sam_id} -")], "another tenant's stays");
    let audited = lines(
        &mut w.conn().await,
        &format!(
            "SELECT changes ->> 'activitiesDeleted' AS line FROM audit_log \
             WHERE action = 'crm.contact.delete' AND resource_id = '{sam_id}'"
        ),
    )
    .await;
    assert_eq!(audited, ["1"]);
}

#[tokio::test]
async fn deleting_a_company_deletes_the_activities_about_it_alone_and_unlinks_the_others() {
    let w = World::new().await;
    let acme = w.company(json!({"name": "Acme GmbH"})).await;
    let sam = w.contact(json!({"displayName": "Sam"})).await;
    let (sam_id, acme_id) = (sam.id.into_uuid(), acme.id.into_uuid());
    let sole = note_about(&w, &[("company_id", acme_id)]).await;
    let shared = note_about(&w, &[("contact_id", sam_id), ("company_id", acme_id)]).await;

    w.store.delete_company(&w.ctx, acme.id).await.unwrap();
    assert!(links_of(&w, sole).await.is_empty(), "the activity about the company alone went with it");
    assert_eq!(links_of(&w, shared).await, [format!("{sam_id} -")], "the shared one stays, unlinked");
    let audited = lines(
        &mut w.conn().await,
        &format!(
            "SELECT changes ->> 'activitiesDeleted' AS line FROM audit_log \
             WHERE action = 'crm.company.delete' AND resource_id = '{acme_id}'"
        ),
    )
    .await;
    assert_eq!(audited, ["1"]);
}

/// A search matching more contacts than it names by id (10,000) keeps its
/// ids in the query, and a page from offset 1,000 on finds its ids on the
/// index first: both read exactly the rows plain SQL orders there.
#[tokio::test]
async fn a_broad_search_and_a_deep_page_read_the_rows_sql_orders_there() {
    let w = World::new().await;
    let t = w.ctx.tenant_id;
    w.sql(&format!(
        "INSERT INTO crm_contacts (tenant_id, id, display_name, contact_type, status, created_at, updated_at) \
         SELECT '{t}', gen_random_uuid(), 'Zed Able ' || n, 'customer', 'active', \
                timestamptz '2026-01-01 00:00Z' + make_interval(mins => n), timestamptz '2026-01-01 00:00Z' \
         FROM generate_series(1, 10050) AS n"
    ))
    .await;
    let expected = |offset: u32, limit: u32| {
        format!(
            "SELECT display_name AS line FROM crm_contacts WHERE tenant_id = '{t}' \
             ORDER BY created_at DESC, id DESC OFFSET {offset} LIMIT {limit}"
        )
    };
    let page = |q: Option<&str>, number: u32, limit: u32| {
        let filter = ContactFilter {
            q: q.map(Into::into),
            sort: ContactSort::CreatedAtDesc,
            ..ContactFilter::default()
        };
        let store = &w.store;
        let ctx = &w.ctx;
        async move { store.contacts(ctx, filter, PageRequest::new(number, limit).unwrap()).await.unwrap() }
    };

    let broad = page(Some("zed"), 2, 20).await;
    assert_eq!(broad.total, 10_050, "every match counted");
    let names: Vec<String> = broad.items.into_iter().map(|c| c.display_name).collect();
    assert_eq!(names, lines(&mut w.conn().await, &expected(20, 20)).await);

    let deep = page(None, 11, 100).await;
    assert_eq!(deep.total, 10_050);
    let names: Vec<String> = deep.items.into_iter().map(|c| c.display_name).collect();
    assert_eq!(names, lines(&mut w.conn().await, &expected(1_000, 100)).await);
    let searched_deep = page(Some("able"), 101, 100).await;
    let names: Vec<String> = searched_deep.items.into_iter().map(|c| c.display_name).collect();
    assert_eq!(names, lines(&mut w.conn().await, &expected(10_000, 100)).await, "the last page, searched");
}
