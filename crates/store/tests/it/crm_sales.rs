//! CRM sales against real PostgreSQL: leads searched and filtered, the
//! conversion of a lead (matching an existing contact by email and company
//! by domain, refused a second time, also when two race), stage moves and
//! their history, removing a stage with deals, the sales figures checked
//! against numbers worked out by hand, bad input leaving nothing behind,
//! and other tenants seeing none of it.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use portico_crm::{
    ConvertLead, CrmError, Deal, DealDraft, DealStatus, Lead, LeadDraft, LeadStatus, MoveDeal, Pipeline,
    PipelineDraft,
};
use portico_kernel::{
    Actor, Currency, DealId, FixedClock, LeadId, PageRequest, PipelineId, StageId, TenantContext, TenantId,
    UserId,
};
use portico_store::{LeadConversion, LeadFilter, LeadSort, NewUser, Store};
use portico_tenancy::{Email, MembershipKind, Role, UserStatus};
use portico_testkit::TestDb;
use rust_decimal::Decimal;
use serde_json::json;

use crate::support::{connect, count, lines, member_of, tenant};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()
}

/// A tenant, `acme`, whose acting user is a member, and a store on a clock the test moves.
struct World {
    db: TestDb,
    store: Store,
    clock: Arc<FixedClock>,
    ctx: TenantContext,
}

impl World {
    async fn new() -> Self {
        let db = TestDb::new().await;
        let clock = Arc::new(FixedClock::at(t0()));
        let store = db.store().await.with_clock(clock.clone());
        let ctx = member(&store, tenant(&store, "acme").await.id, "seller@acme.example").await;
        Self { db, store, clock, ctx }
    }

    /// A member of another tenant.
    async fn other(&self, slug: &str) -> TenantContext {
        let id = tenant(&self.store, slug).await.id;
        member(&self.store, id, &format!("seller@{slug}.example")).await
    }

    /// A connection that sees every tenant's rows, to check what is stored.
    async fn conn(&self) -> AsyncPgConnection {
        connect(&self.db.urls.platform).await
    }

    async fn lead(&self, body: serde_json::Value) -> Lead {
        self.store.create_lead(&self.ctx, serde_json::from_value(body).unwrap()).await.unwrap()
    }

    async fn qualified(&self, body: serde_json::Value) -> Lead {
        let lead = self.lead(body).await;
        self.store.change_lead_status(&self.ctx, lead.id, LeadStatus::Qualified).await.unwrap()
    }

    async fn sales(&self) -> Pipeline {
        sales_of(&self.store, &self.ctx).await
    }

    async fn deal(&self, pipeline: &Pipeline, stage: &str, body: serde_json::Value) -> Deal {
        let mut body = body;
        body["pipelineId"] = json!(pipeline.id);
        body["stageId"] = json!(stage_id(pipeline, stage));
        body.as_object_mut().unwrap().entry("title").or_insert(json!("A deal"));
        let draft: DealDraft = serde_json::from_value(body).unwrap();
        self.store.create_deal(&self.ctx, draft).await.unwrap()
    }

    async fn move_to(
        &self,
        deal: DealId,
        pipeline: &Pipeline,
        stage: &str,
        reason: Option<&str>,
    ) -> Result<Deal, CrmError> {
        let command: MoveDeal =
            serde_json::from_value(json!({"stageId": stage_id(pipeline, stage), "reason": reason})).unwrap();
        self.store.move_deal(&self.ctx, deal, command).await
    }
}

/// The tenant's pipeline "Sales" with the default stages, created by the first who asks (a read makes none).
async fn sales_of(store: &Store, ctx: &TenantContext) -> Pipeline {
    if let Some(sales) = store.pipelines(ctx).await.unwrap().into_iter().find(|p| p.name == "Sales") {
        return sales;
    }
    let draft: PipelineDraft = serde_json::from_value(json!({"name": "Sales"})).unwrap();
    store.create_pipeline(ctx, draft).await.unwrap()
}

/// A new user made a member of `tenant`, acting on it.
async fn member(store: &Store, tenant: TenantId, email: &str) -> TenantContext {
    let admin = member_of(tenant);
    let new = NewUser {
        email: Email::parse(email).unwrap(),
        name: "Seller".into(),
        phone: None,
        status: UserStatus::Active,
        password_hash: None,
        email_verified: true,
    };
    let user = store.create_user(new).await.unwrap().id;
    store.add_membership(&admin, user, Role::Staff, MembershipKind::Staff).await.unwrap();
    TenantContext { actor: Actor::User { user_id: user, tenant_id: tenant }, ..admin }
}

fn user_of(ctx: &TenantContext) -> UserId {
    match ctx.actor {
        Actor::User { user_id, .. } => user_id,
        _ => unreachable!("a user acts in these tests"),
    }
}

/// A recorded move: from, to, when, who, why.
type Move = (StageId, StageId, DateTime<Utc>, UserId, Option<String>);

fn stage_id(pipeline: &Pipeline, name: &str) -> StageId {
    pipeline.stages.iter().find(|s| s.name == name).unwrap().id
}

fn convert(body: serde_json::Value) -> ConvertLead {
    serde_json::from_value(body).unwrap()
}

fn eur(minor: i64) -> serde_json::Value {
    json!({"amountMinor": minor, "currency": "EUR"})
}

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// Stores a contact and a company of the tenant the way the contacts area does (the trigger keys the email).
async fn existing_contact_and_company(world: &World) -> (uuid::Uuid, uuid::Uuid) {
    let (contact, company) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let tenant = world.ctx.tenant_id;
    world
        .conn()
        .await
        .batch_execute(&format!(
            "INSERT INTO crm_companies (tenant_id, id, name, name_key, domain, created_at, updated_at) \
             VALUES ('{tenant}', '{company}', 'ACME Group', 'acme group', 'acme.example', now(), now()); \
             INSERT INTO crm_contacts (tenant_id, id, display_name, contact_type, status, emails, email_keys, \
                 created_at, updated_at) \
             VALUES ('{tenant}', '{contact}', 'S. Taylor', 'customer', 'active', \
                 '[{{\"address\": \"sam@acme.example\", \"label\": \"work\", \"primary\": true}}]', \
                 '{{sam@acme.example}}', now(), now());"
        ))
        .await
        .unwrap();
    (contact, company)
}

fn sam() -> serde_json::Value {
    json!({"name": "Sam Taylor", "email": "Sam@ACME.example", "companyName": "Acme GmbH",
           "estimatedValue": eur(1_200_000), "tags": ["fair"]})
}

// ------------------------------------------------------------------ leads

#[tokio::test]
async fn a_lead_is_stored_normalised_and_audited() {
    let world = World::new().await;
    let lead = world
        .lead(json!({"name": " Sam Taylor ", "email": "Sam@ACME.example", "phone": "+49 30 1234567"}))
        .await;
    assert_eq!((lead.name.as_str(), lead.email.as_deref()), ("Sam Taylor", Some("sam@acme.example")));
    assert_eq!(lead.phone.as_deref(), Some("+49301234567"));
    assert_eq!(world.store.lead(&world.ctx, lead.id).await.unwrap(), lead);
    let mut conn = world.conn().await;
    let stored = lines(
        &mut conn,
        &format!("SELECT status || ' ' || email AS line FROM crm_leads WHERE id = '{}'", lead.id),
    )
    .await;
    assert_eq!(stored, vec!["new sam@acme.example"]);
    let audited = count(
        &mut conn,
        &format!(
            "SELECT count(*) AS n FROM audit_log WHERE action = 'crm.lead.create' AND resource_id = '{}'",
            lead.id
        ),
    )
    .await;
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn lead_search_matches_word_prefixes_of_name_email_and_company() {
    let world = World::new().await;
    let sam = world.lead(sam()).await;
    let jo = world.lead(json!({"name": "Jo Miller", "email": "jo@beta.example", "companyName": "Beta AG", "tags": ["fair"]})).await;
    world.lead(json!({"name": "Kim Lee", "source": "referral"})).await;
    let other = world.other("globex").await;
    world
        .store
        .create_lead(&other, serde_json::from_value(json!({"name": "Sam Other"})).unwrap())
        .await
        .unwrap();

    let search = |q: &str| LeadFilter { q: Some(q.to_owned()), ..LeadFilter::default() };
    let ids =
        |page: portico_kernel::Page<Lead>| page.items.into_iter().map(|l| l.id).collect::<Vec<LeadId>>();
    let all = PageRequest::new(1, 100).unwrap();
    assert_eq!(ids(world.store.leads(&world.ctx, search("sam"), all).await.unwrap()), vec![sam.id]);
    assert_eq!(ids(world.store.leads(&world.ctx, search("ACM"), all).await.unwrap()), vec![sam.id]);
    assert_eq!(ids(world.store.leads(&world.ctx, search("tay sam"), all).await.unwrap()), vec![sam.id]);
    assert_eq!(ids(world.store.leads(&world.ctx, search("mill beta"), all).await.unwrap()), vec![jo.id]);
    assert_eq!(ids(world.store.leads(&world.ctx, search("jo@beta"), all).await.unwrap()), vec![jo.id]);
    assert!(world.store.leads(&world.ctx, search("sam beta"), all).await.unwrap().items.is_empty());

    let tagged = LeadFilter { tag: Some("fair".into()), sort: LeadSort::Name, ..LeadFilter::default() };
    let page = world.store.leads(&world.ctx, tagged, all).await.unwrap();
    assert_eq!((ids(page.clone()), page.total), (vec![jo.id, sam.id], 2));
    let referral = LeadFilter { source: Some(portico_crm::LeadSource::Referral), ..LeadFilter::default() };
    assert_eq!(world.store.leads(&world.ctx, referral, all).await.unwrap().total, 1);
    let paged =
        world.store.leads(&world.ctx, LeadFilter::default(), PageRequest::new(2, 2).unwrap()).await.unwrap();
    assert_eq!((paged.items.len(), paged.total, paged.total_pages), (1, 3, 2));
}

// ------------------------------------------------------------- conversion

#[tokio::test]
async fn conversion_links_the_contact_with_the_email_and_the_company_with_the_domain() {
    let world = World::new().await;
    let (contact, company) = existing_contact_and_company(&world).await;
    let lead = world.qualified(sam()).await;
    let pipeline = world.sales().await;
    let proposal = stage_id(&pipeline, "Proposal");
    world.clock.set(t0() + Duration::hours(2));
    let done: LeadConversion = world
        .store
        .convert_lead(
            &world.ctx,
            lead.id,
            convert(json!({"deal": {"pipelineId": pipeline.id, "stageId": proposal}})),
        )
        .await
        .unwrap();

    assert_eq!((done.contact.id.into_uuid(), done.contact_created), (contact, false));
    let linked = done.company.as_ref().unwrap();
    assert_eq!((linked.id.into_uuid(), done.company_created), (company, false));
    // The contact had no company: the conversion gave it the matched one.
    assert_eq!(done.contact.company_id.map(|c| c.into_uuid()), Some(company));
    let deal = done.deal.clone().unwrap();
    assert_eq!(
        (deal.stage_id, deal.value.amount_minor(), deal.title.as_str()),
        (proposal, 1_200_000, "Acme GmbH")
    );
    assert_eq!((deal.contact_id, deal.company_id), (Some(done.contact.id), Some(linked.id)));
    match done.lead.state {
        portico_crm::LeadState::Converted { contact_id, company_id, deal_id, converted_at } => {
            assert_eq!(
                (contact_id, company_id, deal_id),
                (Some(done.contact.id), Some(linked.id), Some(deal.id))
            );
            assert_eq!(converted_at, t0() + Duration::hours(2));
        }
        other => panic!("not converted: {other:?}"),
    }

    let mut conn = world.conn().await;
    let tenant = world.ctx.tenant_id;
    assert_eq!(
        count(&mut conn, &format!("SELECT count(*) AS n FROM crm_contacts WHERE tenant_id = '{tenant}'"))
            .await,
        1
    );
    assert_eq!(
        count(&mut conn, &format!("SELECT count(*) AS n FROM crm_companies WHERE tenant_id = '{tenant}'"))
            .await,
        1
    );
    let stored = lines(&mut conn, &format!(
        "SELECT status || ' ' || contact_id || ' ' || company_id || ' ' || deal_id AS line FROM crm_leads WHERE id = '{}'",
        lead.id)).await;
    assert_eq!(stored, vec![format!("converted {contact} {company} {}", deal.id)]);
    assert_eq!(
        count(
            &mut conn,
            &format!(
                "SELECT count(*) AS n FROM crm_contacts WHERE id = '{contact}' AND company_id = '{company}'"
            )
        )
        .await,
        1
    );
    // Made in the conversion: no stage change is recorded for it.
    assert_eq!(
        count(
            &mut conn,
            &format!("SELECT count(*) AS n FROM crm_deal_stage_changes WHERE deal_id = '{}'", deal.id)
        )
        .await,
        0
    );
    assert_eq!(count(&mut conn, &format!(
        "SELECT count(*) AS n FROM audit_log WHERE action = 'crm.lead.convert' AND resource_id = '{}'", lead.id)).await, 1);
}

#[tokio::test]
async fn conversion_makes_the_contact_and_company_when_nothing_matches() {
    let world = World::new().await;
    let lead = world
        .qualified(json!({"name": "Ada Byron", "email": "ada@engines.example", "phone": "+44 20 7946 0000",
                                       "companyName": "Analytical Engines Ltd"}))
        .await;
    let done = world
        .store
        .convert_lead(&world.ctx, lead.id, convert(json!({"contactType": "customer"})))
        .await
        .unwrap();
    assert!(done.contact_created && done.company_created && done.deal.is_none());
    assert_eq!(done.contact.display_name, "Ada Byron");
    assert_eq!(done.contact.emails[0].address, "ada@engines.example");
    assert_eq!(done.contact.contact_type, portico_crm::ContactType::Customer);
    let company = done.company.unwrap();
    assert_eq!(
        (company.name.as_str(), company.domain.as_deref()),
        ("Analytical Engines Ltd", Some("engines.example"))
    );
    let mut conn = world.conn().await;
    // The new contact is keyed by its email, so later duplicates and imports find it.
    assert_eq!(count(&mut conn, &format!(
        "SELECT count(*) AS n FROM crm_contact_keys WHERE contact_id = '{}' AND key = 'ada@engines.example'", done.contact.id)).await, 1);
}

#[tokio::test]
async fn a_second_conversion_is_refused_and_writes_nothing() {
    let world = World::new().await;
    let lead = world.qualified(sam()).await;
    world.store.convert_lead(&world.ctx, lead.id, convert(json!({}))).await.unwrap();
    let again = world.store.convert_lead(&world.ctx, lead.id, convert(json!({}))).await;
    assert!(matches!(again, Err(CrmError::LeadConverted)), "{again:?}");
    let mut conn = world.conn().await;
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM crm_contacts").await, 1);
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM audit_log WHERE action = 'crm.lead.convert'").await,
        1
    );
    // A converted lead changes no more.
    let edit = world
        .store
        .update_lead(&world.ctx, lead.id, serde_json::from_value(json!({"name": "X"})).unwrap())
        .await;
    assert!(matches!(edit, Err(CrmError::LeadConverted)), "{edit:?}");
}

#[tokio::test]
async fn of_two_racing_conversions_exactly_one_succeeds() {
    let world = World::new().await;
    let lead = world.qualified(sam()).await;
    let pipeline = world.sales().await;
    let second = world.db.store().await.with_clock(world.clock.clone());
    let body = json!({"deal": {"pipelineId": pipeline.id, "stageId": stage_id(&pipeline, "Lead in")}});
    let (a, b) = tokio::join!(
        world.store.convert_lead(&world.ctx, lead.id, convert(body.clone())),
        second.convert_lead(&world.ctx, lead.id, convert(body)),
    );
    let outcomes = [a.is_ok(), b.is_ok()];
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{a:?} / {b:?}");
    assert!(matches!(a.err().or(b.err()), Some(CrmError::LeadConverted)));
    let mut conn = world.conn().await;
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM crm_contacts").await, 1);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM crm_companies").await, 1);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM crm_deals").await, 1);
}

#[tokio::test]
async fn a_lead_not_qualified_does_not_convert() {
    let world = World::new().await;
    let lead = world.lead(sam()).await;
    let refused = world.store.convert_lead(&world.ctx, lead.id, convert(json!({}))).await;
    assert!(matches!(refused, Err(CrmError::LeadNotQualified(LeadStatus::New))), "{refused:?}");
    let mut conn = world.conn().await;
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM crm_contacts").await, 0);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM crm_companies").await, 0);
    assert_eq!(lines(&mut conn, "SELECT status AS line FROM crm_leads").await, vec!["new"]);
}

// ------------------------------------------------------- deals and stages

#[tokio::test]
async fn stage_moves_are_recorded_with_from_to_when_and_who() {
    let world = World::new().await;
    let pipeline = world.sales().await;
    let deal = world.deal(&pipeline, "Lead in", json!({"value": eur(10_000), "probability": 30})).await;
    assert_eq!(deal.owner_id, user_of(&world.ctx));

    world.clock.set(t0() + Duration::days(1));
    let proposal = world.move_to(deal.id, &pipeline, "Proposal", None).await.unwrap();
    // A move is a new judgement: the override goes, the stage's 50 % counts.
    assert_eq!((proposal.probability_override, proposal.probability(&pipeline)), (None, 50));

    world.clock.set(t0() + Duration::days(2));
    let refused = world.move_to(deal.id, &pipeline, "Lost", None).await;
    assert!(matches!(refused, Err(CrmError::LostReasonRequired)), "{refused:?}");
    let lost = world.move_to(deal.id, &pipeline, "Lost", Some("Chose a competitor")).await.unwrap();
    assert_eq!(
        lost.status,
        DealStatus::Lost { closed_at: t0() + Duration::days(2), reason: "Chose a competitor".into() }
    );
    let again = world.move_to(deal.id, &pipeline, "Lost", Some("Again")).await;
    assert!(matches!(again, Err(CrmError::DealAlreadyInStage)), "{again:?}");

    world.clock.set(t0() + Duration::days(3));
    let reopened = world.move_to(deal.id, &pipeline, "Negotiation", None).await.unwrap();
    assert_eq!(reopened.status, DealStatus::Open);

    let history = world.store.deal_history(&world.ctx, deal.id).await.unwrap();
    let seen: Vec<Move> =
        history.into_iter().map(|c| (c.from_stage_id, c.to_stage_id, c.at, c.by, c.reason)).collect();
    let by = user_of(&world.ctx);
    let s = |name| stage_id(&pipeline, name);
    assert_eq!(
        seen,
        vec![
            (s("Lead in"), s("Proposal"), t0() + Duration::days(1), by, None),
            (s("Proposal"), s("Lost"), t0() + Duration::days(2), by, Some("Chose a competitor".to_owned())),
            (s("Lost"), s("Negotiation"), t0() + Duration::days(3), by, None),
        ]
    );
    let mut conn = world.conn().await;
    let stored = lines(&mut conn, &format!(
        "SELECT status || ' ' || (closed_at IS NULL) || ' ' || coalesce(close_reason, '-') AS line FROM crm_deals WHERE id = '{}'",
        deal.id)).await;
    // Reopened: no longer closed, and the lost reason went with the loss.
    assert_eq!(stored, vec!["open true -"]);
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM audit_log WHERE action = 'crm.deal.move'").await,
        3
    );
}

#[tokio::test]
async fn a_stage_with_deals_goes_only_with_a_stage_for_its_deals() {
    let world = World::new().await;
    let pipeline = world.sales().await;
    let a = world.deal(&pipeline, "Qualified", json!({"value": eur(100), "probability": 90})).await;
    let b = world.deal(&pipeline, "Qualified", json!({"value": eur(200)})).await;
    let untouched = world.deal(&pipeline, "Proposal", json!({"value": eur(300)})).await;
    let qualified = stage_id(&pipeline, "Qualified");
    let negotiation = stage_id(&pipeline, "Negotiation");

    let refused = world.store.remove_stage(&world.ctx, pipeline.id, qualified, None).await;
    assert!(matches!(refused, Err(CrmError::StageHasDeals { deals: 2 })), "{refused:?}");
    let to_won =
        world.store.remove_stage(&world.ctx, pipeline.id, qualified, Some(stage_id(&pipeline, "Won"))).await;
    assert!(matches!(to_won, Err(CrmError::Invalid(_))), "{to_won:?}");
    let mut conn = world.conn().await;
    assert_eq!(
        count(&mut conn, &format!("SELECT count(*) AS n FROM crm_stages WHERE id = '{qualified}'")).await,
        1
    );
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM crm_deal_stage_changes").await, 0);

    world.clock.set(t0() + Duration::hours(5));
    let after =
        world.store.remove_stage(&world.ctx, pipeline.id, qualified, Some(negotiation)).await.unwrap();
    assert!(after.stage(qualified).is_none());
    assert_eq!(after.stages.iter().map(|s| s.position).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    assert_eq!(world.store.pipeline(&world.ctx, pipeline.id).await.unwrap(), after);
    for (deal, overridden) in [(a.id, Some(90)), (b.id, None)] {
        let moved = world.store.deal(&world.ctx, deal).await.unwrap();
        // Moved by nobody's judgement: an override stays.
        assert_eq!((moved.stage_id, moved.probability_override), (negotiation, overridden));
        let history = world.store.deal_history(&world.ctx, deal).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!((history[0].from_stage_id, history[0].to_stage_id), (qualified, negotiation));
        assert_eq!((history[0].at, history[0].by), (t0() + Duration::hours(5), user_of(&world.ctx)));
    }
    assert_eq!(
        world.store.deal(&world.ctx, untouched.id).await.unwrap().stage_id,
        stage_id(&pipeline, "Proposal")
    );
    assert_eq!(
        count(&mut conn, &format!("SELECT count(*) AS n FROM crm_stages WHERE id = '{qualified}'")).await,
        0
    );
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM audit_log WHERE action = 'crm.stage.delete'").await,
        1
    );
}

#[tokio::test]
async fn pipelines_keep_their_shape_and_their_names_unique() {
    let world = World::new().await;
    let draft = |body: serde_json::Value| -> PipelineDraft { serde_json::from_value(body).unwrap() };
    let renewals = world.store.create_pipeline(&world.ctx, draft(json!({"name": "Renewals", "stages": [
        {"name": "Due", "probability": 60}, {"name": "Renewed", "kind": "won"}, {"name": "Churned", "kind": "lost"}]})))
        .await.unwrap();
    let taken = world.store.create_pipeline(&world.ctx, draft(json!({"name": "renewals"}))).await;
    assert!(matches!(taken, Err(CrmError::PipelineNameTaken)), "{taken:?}");
    let shapeless = world
        .store
        .create_pipeline(
            &world.ctx,
            draft(json!({"name": "Odd", "stages": [{"name": "Only", "probability": 5}]})),
        )
        .await;
    assert!(matches!(shapeless, Err(CrmError::Invalid(_))), "{shapeless:?}");

    let added = world
        .store
        .add_stage(
            &world.ctx,
            renewals.id,
            serde_json::from_value(json!({"name": "Quoted", "probability": 80})).unwrap(),
        )
        .await
        .unwrap();
    let names: Vec<&str> = added.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["Due", "Quoted", "Renewed", "Churned"]);
    let quoted = stage_id(&added, "Quoted");
    let order = json!({"stageIds": [quoted, stage_id(&added, "Due"), stage_id(&added, "Renewed"), stage_id(&added, "Churned")]});
    let reordered = world
        .store
        .reorder_stages(&world.ctx, renewals.id, serde_json::from_value(order).unwrap())
        .await
        .unwrap();
    assert_eq!(reordered.entry_stage().unwrap().id, quoted);
    let changed = world
        .store
        .update_stage(
            &world.ctx,
            renewals.id,
            quoted,
            serde_json::from_value(json!({"probability": 85})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(changed.stage(quoted).unwrap().probability, 85);
    let renamed = world
        .store
        .rename_pipeline(
            &world.ctx,
            renewals.id,
            serde_json::from_value(json!({"name": "Renewals 2027"})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "Renewals 2027");
    assert_eq!(world.store.pipeline(&world.ctx, renewals.id).await.unwrap(), renamed);
    let mut conn = world.conn().await;
    let stored = lines(&mut conn, &format!(
        "SELECT position || ' ' || name || ' ' || probability || ' ' || kind AS line FROM crm_stages WHERE pipeline_id = '{}' ORDER BY position",
        renewals.id)).await;
    assert_eq!(stored, vec!["0 Quoted 85 open", "1 Due 60 open", "2 Renewed 100 won", "3 Churned 0 lost"]);

    // A pipeline with deals stays; without, it goes with its stages.
    world.deal(&renamed, "Due", json!({"value": eur(1)})).await;
    let refused = world.store.delete_pipeline(&world.ctx, renewals.id).await;
    assert!(matches!(refused, Err(CrmError::PipelineHasDeals { deals: 1 })), "{refused:?}");
    let empty = world.store.create_pipeline(&world.ctx, draft(json!({"name": "Empty"}))).await.unwrap();
    world.store.delete_pipeline(&world.ctx, empty.id).await.unwrap();
    let gone = world.store.pipeline(&world.ctx, empty.id).await;
    assert!(matches!(gone, Err(CrmError::PipelineNotFound)), "{gone:?}");
    let stages = format!("SELECT count(*) AS n FROM crm_stages WHERE pipeline_id = '{}'", empty.id);
    assert_eq!(count(&mut conn, &stages).await, 0);
    // The tenant has pipelines: no default one is added to them.
    let names: Vec<String> =
        world.store.pipelines(&world.ctx).await.unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(names, vec!["Renewals 2027"]);
}

#[tokio::test]
async fn reading_pipelines_and_figures_writes_nothing() {
    let world = World::new().await;
    let mut conn = world.conn().await;
    let tenant = world.ctx.tenant_id;
    let written = format!(
        "SELECT (SELECT count(*) FROM crm_pipelines WHERE tenant_id = '{tenant}') \
              + (SELECT count(*) FROM crm_stages WHERE tenant_id = '{tenant}') \
              + (SELECT count(*) FROM audit_log WHERE tenant_id = '{tenant}' AND action LIKE 'crm.%') AS n"
    );
    let before = count(&mut conn, &written).await;
    // A tenant without pipelines lists none and gets no summaries, and a second reader makes none either.
    let second = world.db.store().await.with_clock(world.clock.clone());
    let (a, b) = tokio::join!(world.store.pipelines(&world.ctx), second.pipelines(&world.ctx));
    assert_eq!((a.unwrap(), b.unwrap()), (vec![], vec![]));
    let figures = world.store.crm_analytics(&world.ctx, None, None).await.unwrap();
    assert!(figures.pipelines.is_empty(), "{figures:?}");
    assert_eq!(
        (figures.win_rate, figures.conversion.lead_to_deal, figures.conversion.deal_to_won),
        (None, None, None)
    );
    assert_eq!(count(&mut conn, &written).await, before);
    assert_eq!(before, 0);

    // The first pipeline is a write: without stages it gets the default sales ones.
    let sales = world.sales().await;
    assert_eq!(
        sales.stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        vec!["Lead in", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]
    );
    assert_eq!(world.store.pipelines(&world.ctx).await.unwrap(), vec![sales]);
}

// -------------------------------------------------------------- analytics

#[tokio::test]
async fn analytics_add_up_by_stage_as_worked_out_by_hand() {
    let world = World::new().await;
    let pipeline = world.sales().await;
    world.deal(&pipeline, "Lead in", json!({"value": eur(1005)})).await; //       10 %: 100.5 -> 100 (half to even)
    world.deal(&pipeline, "Lead in", json!({"value": eur(2000)})).await; //       10 %: 200
    world.deal(&pipeline, "Proposal", json!({"value": eur(1015)})).await; //      50 %: 507.5 -> 508
    world.deal(&pipeline, "Proposal", json!({"value": eur(1015), "probability": 40})).await; // 406
    let usd = json!({"amountMinor": 700, "currency": "USD"});
    world.deal(&pipeline, "Proposal", json!({"value": usd})).await; //            counted apart
    let won = world.deal(&pipeline, "Negotiation", json!({"value": eur(50_000)})).await;
    let lost = world.deal(&pipeline, "Negotiation", json!({"value": eur(70_000)})).await;
    world.clock.set(t0() + Duration::hours(84)); // 3.5 days after creation
    world.move_to(won.id, &pipeline, "Won", None).await.unwrap();
    world.move_to(lost.id, &pipeline, "Lost", Some("Price")).await.unwrap();
    // Four leads, one converted without a deal: none of them became a deal, 0 %.
    let converted = world.qualified(json!({"name": "Conv"})).await;
    world.store.convert_lead(&world.ctx, converted.id, convert(json!({}))).await.unwrap();
    for name in ["L2", "L3", "L4"] {
        world.lead(json!({"name": name})).await;
    }
    // Another tenant's deals count for nothing here.
    let other = world.other("globex").await;
    let theirs = sales_of(&world.store, &other).await;
    let draft: DealDraft =
        serde_json::from_value(json!({"title": "T", "value": eur(999_999), "pipelineId": theirs.id}))
            .unwrap();
    world.store.create_deal(&other, draft).await.unwrap();

    let figures =
        world.store.crm_analytics(&world.ctx, None, Some(Currency::parse("EUR").unwrap())).await.unwrap();
    assert_eq!(figures.pipelines.len(), 1);
    let summary = &figures.pipelines[0];
    let rows: Vec<(&str, u64, i64, i64)> = summary
        .stages
        .iter()
        .map(|s| (s.name.as_str(), s.deals, s.value.amount_minor(), s.weighted_value.amount_minor()))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("Lead in", 2, 3005, 300),
            ("Qualified", 0, 0, 0),
            ("Proposal", 2, 2030, 914),
            ("Negotiation", 0, 0, 0),
            ("Won", 1, 50_000, 50_000),
            ("Lost", 1, 70_000, 0),
        ]
    );
    assert_eq!(
        (summary.open_deals, summary.open_value.amount_minor(), summary.weighted_value.amount_minor()),
        (4, 5035, 1214)
    );
    let other_currencies: Vec<(u64, i64, String)> = summary
        .other_currencies
        .iter()
        .map(|t| (t.deals, t.value.amount_minor(), t.value.currency().code().to_owned()))
        .collect();
    assert_eq!(other_currencies, vec![(1, 700, "USD".to_owned())]);
    assert_eq!(figures.win_rate, Some(dec("50.00")));
    assert_eq!(figures.average_days_to_close, Some(dec("3.5")));
    assert_eq!(figures.conversion.lead_to_deal, Some(dec("0.00"))); // 0 of 4
    assert_eq!(figures.conversion.deal_to_won, Some(dec("14.29"))); // 1 of 7

    // In dollars the euro deals are the ones apart; one pipeline asked for by id gives the same.
    let dollars = world
        .store
        .crm_analytics(&world.ctx, Some(pipeline.id), Some(Currency::parse("USD").unwrap()))
        .await
        .unwrap();
    let proposal = dollars.pipelines[0].stages.iter().find(|s| s.name == "Proposal").unwrap();
    assert_eq!(
        (proposal.deals, proposal.value.amount_minor(), proposal.weighted_value.amount_minor()),
        (1, 700, 350)
    );
    assert_eq!(dollars.pipelines[0].other_currencies[0].deals, 6);
    let missing = world.store.crm_analytics(&world.ctx, Some(theirs.id), None).await;
    assert!(matches!(missing, Err(CrmError::PipelineNotFound)), "{missing:?}");
}

/// The share of the tenant's leads that became deals, on `pipeline` if given.
async fn lead_to_deal(world: &World, pipeline: Option<PipelineId>) -> Option<Decimal> {
    world.store.crm_analytics(&world.ctx, pipeline, None).await.unwrap().conversion.lead_to_deal
}

#[tokio::test]
async fn lead_to_deal_counts_the_leads_whose_conversion_made_a_deal() {
    let world = World::new().await;
    let sales = world.sales().await;
    let renewals: PipelineDraft = serde_json::from_value(json!({"name": "Renewals"})).unwrap();
    let renewals = world.store.create_pipeline(&world.ctx, renewals).await.unwrap();
    let with_deal = |pipeline: &Pipeline| {
        convert(json!({"deal": {"pipelineId": pipeline.id, "stageId": stage_id(pipeline, "Lead in")}}))
    };
    // Five leads: A became a deal on Sales, B one on Renewals, C converted without a deal, D and E not converted.
    let a = world.qualified(json!({"name": "A", "estimatedValue": eur(100)})).await;
    let on_sales = world.store.convert_lead(&world.ctx, a.id, with_deal(&sales)).await.unwrap();
    let b = world.qualified(json!({"name": "B", "estimatedValue": eur(100)})).await;
    world.store.convert_lead(&world.ctx, b.id, with_deal(&renewals)).await.unwrap();
    let c = world.qualified(json!({"name": "C"})).await;
    world.store.convert_lead(&world.ctx, c.id, convert(json!({}))).await.unwrap();
    world.lead(json!({"name": "D"})).await;
    world.lead(json!({"name": "E"})).await;

    assert_eq!(lead_to_deal(&world, None).await, Some(dec("40.00"))); // A and B of 5
    // On one pipeline, of all the leads still: only the deals made on it count.
    assert_eq!(lead_to_deal(&world, Some(sales.id)).await, Some(dec("20.00"))); // A of 5
    assert_eq!(lead_to_deal(&world, Some(renewals.id)).await, Some(dec("20.00"))); // B of 5
    // A deal deleted since: its lead no longer counts as having become one.
    world.store.delete_deal(&world.ctx, on_sales.deal.unwrap().id).await.unwrap();
    assert_eq!(lead_to_deal(&world, None).await, Some(dec("20.00"))); // B of 5
    assert_eq!(lead_to_deal(&world, Some(sales.id)).await, Some(dec("0.00")));
}

// ------------------------------------------------------------- activities

/// A note of the world's tenant naming these records; its id.
async fn note_about(world: &World, links: &[(&str, uuid::Uuid)]) -> uuid::Uuid {
    let id = uuid::Uuid::now_v7();
    let columns: Vec<&str> = links.iter().map(|(column, _)| *column).collect();
    let values: Vec<String> = links.iter().map(|(_, value)| format!("'{value}'")).collect();
    world
        .conn()
        .await
        .batch_execute(&format!(
            "INSERT INTO crm_activities (tenant_id, id, kind, subject, occurred_at, {}, created_by, created_at, \
                 updated_at) \
             VALUES ('{}', '{id}', 'note', 'Note', now(), {}, '{}', now(), now())",
            columns.join(", "),
            world.ctx.tenant_id,
            values.join(", "),
            user_of(&world.ctx)
        ))
        .await
        .unwrap();
    id
}

/// The `activitiesDeleted` of the deletion of `id` audited as `action`.
async fn activities_deleted(world: &World, action: &str, id: impl std::fmt::Display) -> Vec<String> {
    let sql = format!(
        "SELECT coalesce(changes ->> 'activitiesDeleted', '-') AS line FROM audit_log \
         WHERE action = '{action}' AND resource_id = '{id}'"
    );
    lines(&mut world.conn().await, &sql).await
}

#[tokio::test]
async fn deleting_a_lead_or_a_deal_deletes_the_activities_about_it_alone() {
    let world = World::new().await;
    let (contact, _) = existing_contact_and_company(&world).await;
    let lead = world.lead(json!({"name": "Sam"})).await.id.into_uuid();
    let pipeline = world.sales().await;
    let deal = world.deal(&pipeline, "Lead in", json!({"value": eur(5)})).await.id;
    let about_lead = note_about(&world, &[("lead_id", lead)]).await;
    let lead_and_contact = note_about(&world, &[("lead_id", lead), ("contact_id", contact)]).await;
    let lead_and_deal = note_about(&world, &[("lead_id", lead), ("deal_id", deal.into_uuid())]).await;
    let about_deal = note_about(&world, &[("deal_id", deal.into_uuid())]).await;
    let deal_and_contact =
        note_about(&world, &[("deal_id", deal.into_uuid()), ("contact_id", contact)]).await;
    let left = || async {
        lines(
            &mut world.conn().await,
            "SELECT id || ' ' || coalesce(lead_id::text, '-') || ' ' || coalesce(contact_id::text, '-') || ' ' \
                 || coalesce(deal_id::text, '-') AS line FROM crm_activities ORDER BY id",
        )
        .await
    };

    world.store.delete_lead(&world.ctx, LeadId::from_uuid(lead)).await.unwrap();
    assert_eq!(
        left().await,
        vec![
            format!("{lead_and_contact} - {contact} -"),
            format!("{lead_and_deal} - - {deal}"),
            format!("{about_deal} - - {deal}"),
            format!("{deal_and_contact} - {contact} {deal}"),
        ],
        "{about_lead} went with the lead"
    );
    assert_eq!(activities_deleted(&world, "crm.lead.delete", lead).await, ["1"]);

    // The one about the lead and the deal is now about the deal alone: it goes with the deal.
    world.store.delete_deal(&world.ctx, deal).await.unwrap();
    assert_eq!(
        left().await,
        vec![format!("{lead_and_contact} - {contact} -"), format!("{deal_and_contact} - {contact} -")]
    );
    assert_eq!(activities_deleted(&world, "crm.deal.delete", deal).await, ["2"]);
}

// ------------------------------------------------------------------ races

/// Runs `write` while another transaction, begun with `sql`, commits half a
/// second later: what the write answers once it has seen the commit.
async fn racing<T>(world: &World, sql: &str, write: impl std::future::Future<Output = T>) -> T {
    let mut other = world.conn().await;
    other.batch_execute(&format!("BEGIN; {sql}")).await.unwrap();
    let (answer, ()) = tokio::join!(write, async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        other.batch_execute("COMMIT").await.unwrap();
    });
    answer
}

#[tokio::test]
async fn a_deal_written_while_its_stage_or_contact_goes_is_refused_not_failed() {
    let world = World::new().await;
    let (contact, _) = existing_contact_and_company(&world).await;
    let pipeline = world.sales().await;
    let deal = world.deal(&pipeline, "Lead in", json!({"value": eur(5)})).await;
    let (qualified, proposal) = (stage_id(&pipeline, "Qualified"), stage_id(&pipeline, "Proposal"));
    // A stage's removal holds its pipeline FOR UPDATE before it deletes the stage.
    let remove = |stage: StageId| {
        format!(
            "SELECT id FROM crm_pipelines WHERE id = '{}' FOR UPDATE; DELETE FROM crm_stages WHERE id = '{stage}';",
            pipeline.id
        )
    };

    let draft: DealDraft = serde_json::from_value(
        json!({"title": "T", "value": eur(1), "pipelineId": pipeline.id, "stageId": qualified}),
    )
    .unwrap();
    let created = racing(&world, &remove(qualified), world.store.create_deal(&world.ctx, draft)).await;
    assert!(matches!(created, Err(CrmError::StageNotInPipeline(s)) if s == qualified), "{created:?}");

    let command: MoveDeal = serde_json::from_value(json!({"stageId": proposal})).unwrap();
    let moved = racing(&world, &remove(proposal), world.store.move_deal(&world.ctx, deal.id, command)).await;
    assert!(matches!(moved, Err(CrmError::StageNotInPipeline(s)) if s == proposal), "{moved:?}");

    let draft: DealDraft = serde_json::from_value(
        json!({"title": "T", "value": eur(1), "pipelineId": pipeline.id, "contactId": contact}),
    )
    .unwrap();
    let delete_contact = format!("DELETE FROM crm_contacts WHERE id = '{contact}';");
    let created = racing(&world, &delete_contact, world.store.create_deal(&world.ctx, draft)).await;
    match created {
        Err(CrmError::Invalid(errors)) => assert_eq!(errors.0[0].field, "contactId"),
        other => panic!("{other:?}"),
    }
    let mut conn = world.conn().await;
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM crm_deals").await, 1);
    assert_eq!(world.store.deal(&world.ctx, deal.id).await.unwrap(), deal);
}

// ------------------------------------------------- isolation and bad input

#[tokio::test]
async fn other_tenants_see_and_name_none_of_it() {
    let world = World::new().await;
    let (contact, company) = existing_contact_and_company(&world).await;
    let lead = world.lead(sam()).await;
    let pipeline = world.sales().await;
    let deal = world.deal(&pipeline, "Lead in", json!({"value": eur(5)})).await;
    let other = world.other("globex").await;

    assert!(matches!(world.store.lead(&other, lead.id).await, Err(CrmError::LeadNotFound)));
    assert!(matches!(world.store.delete_lead(&other, lead.id).await, Err(CrmError::LeadNotFound)));
    assert!(matches!(
        world.store.change_lead_status(&other, lead.id, LeadStatus::Contacted).await,
        Err(CrmError::LeadNotFound)
    ));
    assert!(matches!(
        world.store.convert_lead(&other, lead.id, convert(json!({}))).await,
        Err(CrmError::LeadNotFound)
    ));
    assert!(matches!(world.store.deal(&other, deal.id).await, Err(CrmError::DealNotFound)));
    assert!(matches!(world.store.deal_history(&other, deal.id).await, Err(CrmError::DealNotFound)));
    assert!(matches!(world.store.delete_deal(&other, deal.id).await, Err(CrmError::DealNotFound)));
    assert!(matches!(world.store.pipeline(&other, pipeline.id).await, Err(CrmError::PipelineNotFound)));
    assert!(matches!(
        world.store.delete_pipeline(&other, pipeline.id).await,
        Err(CrmError::PipelineNotFound)
    ));
    let everything = PageRequest::new(1, 100).unwrap();
    assert_eq!(world.store.leads(&other, LeadFilter::default(), everything).await.unwrap().total, 0);
    assert_eq!(
        world.store.deals(&other, portico_store::DealFilter::default(), everything).await.unwrap().total,
        0
    );

    // A deal of theirs cannot name our pipeline, contact or company.
    let theirs = sales_of(&world.store, &other).await;
    let with = |extra: serde_json::Value| -> DealDraft {
        let mut body = json!({"title": "T", "value": eur(1), "pipelineId": theirs.id});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value(body).unwrap()
    };
    for (extra, field) in [
        (json!({"pipelineId": pipeline.id}), "pipelineId"),
        (json!({"contactId": contact}), "contactId"),
        (json!({"companyId": company}), "companyId"),
        (json!({"ownerId": user_of(&world.ctx)}), "ownerId"),
    ] {
        match world.store.create_deal(&other, with(extra)).await {
            Err(CrmError::Invalid(errors)) => assert_eq!(errors.0[0].field, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let mut conn = world.conn().await;
    assert_eq!(
        count(
            &mut conn,
            &format!("SELECT count(*) AS n FROM crm_deals WHERE tenant_id = '{}'", other.tenant_id)
        )
        .await,
        0
    );
    assert_eq!(world.store.lead(&world.ctx, lead.id).await.unwrap(), lead);
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_leaves_nothing() {
    let world = World::new().await;
    let bad_email: LeadDraft = serde_json::from_value(json!({"name": "X", "email": "not-an-email"})).unwrap();
    match world.store.create_lead(&world.ctx, bad_email).await {
        Err(CrmError::Invalid(errors)) => assert_eq!(errors.0[0].field, "email"),
        other => panic!("{other:?}"),
    }
    let stranger: LeadDraft = serde_json::from_value(json!({"name": "X", "ownerId": UserId::new()})).unwrap();
    match world.store.create_lead(&world.ctx, stranger).await {
        Err(CrmError::Invalid(errors)) => assert_eq!(errors.0[0].field, "ownerId"),
        other => panic!("{other:?}"),
    }
    let pipeline = world.sales().await;
    let won_stage: DealDraft =
        serde_json::from_value(json!({"title": "T", "value": eur(1), "pipelineId": pipeline.id,
                                                            "stageId": stage_id(&pipeline, "Won")}))
        .unwrap();
    assert!(matches!(world.store.create_deal(&world.ctx, won_stage).await, Err(CrmError::Invalid(_))));
    let lead = world.lead(json!({"name": "Y"})).await;
    let back = world.store.change_lead_status(&world.ctx, lead.id, LeadStatus::New).await;
    assert!(matches!(back, Ok(ref same) if same.status() == LeadStatus::New));
    let skip = world.store.change_lead_status(&world.ctx, lead.id, LeadStatus::Converted).await;
    assert!(matches!(skip, Err(CrmError::LeadTransition { .. })), "{skip:?}");
    let mut conn = world.conn().await;
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM crm_leads").await, 1);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM crm_deals").await, 0);
    // Only the lead made (and the pipeline) is audited: a status left as it was is no change.
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM audit_log WHERE action LIKE 'crm.%' AND action <> 'crm.pipeline.create'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_converted_lead_outlives_the_contact_it_became() {
    let world = World::new().await;
    let lead = world.qualified(sam()).await;
    let done = world.store.convert_lead(&world.ctx, lead.id, convert(json!({}))).await.unwrap();
    world
        .conn()
        .await
        .batch_execute(&format!("DELETE FROM crm_contacts WHERE id = '{}'", done.contact.id))
        .await
        .unwrap();
    let read = world.store.lead(&world.ctx, lead.id).await.unwrap();
    match read.state {
        portico_crm::LeadState::Converted { contact_id, company_id, .. } => {
            assert_eq!((contact_id, company_id), (None, done.company.map(|c| c.id)));
        }
        other => panic!("no longer converted: {other:?}"),
    }
    let listed =
        world.store.leads(&world.ctx, LeadFilter::default(), PageRequest::new(1, 10).unwrap()).await.unwrap();
    assert_eq!(listed.items, vec![read]);
    let again = world.store.convert_lead(&world.ctx, lead.id, convert(json!({}))).await;
    assert!(matches!(again, Err(CrmError::LeadConverted)), "{again:?}");
}

#[tokio::test]
async fn deals_and_leads_filter_and_sort_as_asked() {
    let world = World::new().await;
    let (contact, _) = existing_contact_and_company(&world).await;
    let pipeline = world.sales().await;
    let small =
        world.deal(&pipeline, "Lead in", json!({"value": eur(100), "expectedCloseDate": "2026-12-01"})).await;
    world.clock.set(t0() + Duration::days(1));
    let large = world
        .deal(
            &pipeline,
            "Proposal",
            json!({"value": eur(900), "expectedCloseDate": "2026-11-20", "contactId": contact}),
        )
        .await;
    let undated = world.deal(&pipeline, "Proposal", json!({"value": eur(500)})).await;
    world.move_to(small.id, &pipeline, "Won", None).await.unwrap();

    let all = PageRequest::new(1, 100).unwrap();
    let ids = |filter: portico_store::DealFilter| {
        let store = &world.store;
        let ctx = &world.ctx;
        async move {
            store.deals(ctx, filter, all).await.unwrap().items.into_iter().map(|d| d.id).collect::<Vec<_>>()
        }
    };
    use portico_store::{DealFilter, DealSort};
    let sorted = |sort| DealFilter { sort, ..DealFilter::default() };
    assert_eq!(ids(sorted(DealSort::ValueDesc)).await, vec![large.id, undated.id, small.id]);
    assert_eq!(ids(sorted(DealSort::Value)).await, vec![small.id, undated.id, large.id]);
    assert_eq!(ids(sorted(DealSort::ExpectedCloseDate)).await, vec![large.id, small.id, undated.id]);
    assert_eq!(ids(sorted(DealSort::CreatedAt)).await, vec![small.id, large.id, undated.id]);
    let closing = DealFilter {
        close_from: chrono::NaiveDate::from_ymd_opt(2026, 11, 15),
        close_to: chrono::NaiveDate::from_ymd_opt(2026, 11, 30),
        ..DealFilter::default()
    };
    assert_eq!(ids(closing).await, vec![large.id]);
    let with_contact = DealFilter {
        contact_id: Some(portico_kernel::ContactId::from_uuid(contact)),
        ..DealFilter::default()
    };
    assert_eq!(ids(with_contact).await, vec![large.id]);
    assert_eq!(
        ids(DealFilter { status: Some(portico_crm::StageKind::Won), ..DealFilter::default() }).await,
        vec![small.id]
    );
    let in_proposal = DealFilter {
        stage_id: Some(stage_id(&pipeline, "Proposal")),
        sort: DealSort::Value,
        ..DealFilter::default()
    };
    assert_eq!(ids(in_proposal).await, vec![undated.id, large.id]);
    let late = DealFilter { created_from: Some(t0() + Duration::hours(1)), ..DealFilter::default() };
    assert_eq!(ids(late).await.len(), 2);

    let first = world.lead(json!({"name": "Early"})).await;
    world.clock.set(t0() + Duration::days(5));
    let second = world.lead(json!({"name": "Late"})).await;
    let window = LeadFilter { created_to: Some(t0() + Duration::days(2)), ..LeadFilter::default() };
    let early: Vec<LeadId> =
        world.store.leads(&world.ctx, window, all).await.unwrap().items.into_iter().map(|l| l.id).collect();
    assert_eq!(early, vec![first.id]);
    let newest: Vec<LeadId> = world
        .store
        .leads(&world.ctx, LeadFilter::default(), all)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(newest, vec![second.id, first.id]);
}
