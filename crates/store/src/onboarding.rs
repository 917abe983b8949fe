//! Onboarding, one use case across domains in one transaction: the tenant
//! (created or completed), its settings, its owner's invited membership and
//! invitation email job, its welcome credits, the onboarding record and the
//! audit rows. A failure in any step leaves nothing behind.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Bytea, Jsonb, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_credits::{AddCredits, Channel, CreditsError, GrantSource, Reference, WalletRef};
use portico_kernel::{Actor, AuditEntry, Clock, MembershipId, Origin, RequestId, TenantContext, TenantId};
use portico_tenancy::people::{InvitationLink, person_name};
use portico_tenancy::{
    Catalogue, Email, MembershipKind, NewPerson, OnboardTenant, Onboarding, OnboardingPlan, OnboardingSource,
    OwnerDetails, Role, RoleChoice, SignUp, TenancyError, Tenant, TenantStatus, WelcomeCredit,
    plan_onboarding,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::{Failure, is_unique_violation};
use crate::tenant_profile::{corrupt, load_profile, save_profile};
use crate::tenants::{TenantFailure, TenantRow, load_for_update};
use crate::{Store, audit};

fn resolve(failure: TenantFailure) -> TenancyError {
    failure.resolve(|error| {
        is_unique_violation(error, "tenants_slug_key").then(|| TenancyError::SlugTaken(String::new()))
    })
}

/// A hash of what was asked, to tell a replay from a different second attempt.
fn fingerprint(source: OnboardingSource, command: &impl serde::Serialize) -> Result<Vec<u8>, TenancyError> {
    let body = serde_json::to_vec(command)
        .map_err(|e| TenancyError::Store(portico_kernel::InfraError::internal(e)))?;
    let mut hash = Sha256::new();
    hash.update(source.as_str().as_bytes());
    hash.update([0]);
    hash.update(&body);
    Ok(hash.finalize().to_vec())
}

#[derive(QueryableByName)]
struct OnboardingRow {
    #[diesel(sql_type = Jsonb)]
    result: serde_json::Value,
    #[diesel(sql_type = Bytea)]
    fingerprint: Vec<u8>,
}

/// The onboarding of `tenant` if there was one: the answer it gave when
/// `fingerprint` is the same request, `AlreadyOnboarded` when it is not.
async fn earlier(
    conn: &mut AsyncPgConnection,
    tenant: &Tenant,
    fingerprint: &[u8],
) -> Result<Option<Onboarding>, TenantFailure> {
    let row: Option<OnboardingRow> =
        diesel::sql_query("SELECT result, fingerprint FROM onboardings WHERE tenant_id = $1")
            .bind::<SqlUuid, _>(tenant.id.into_uuid())
            .get_result(conn)
            .await
            .optional()?;
    let Some(row) = row else { return Ok(None) };
    if row.fingerprint != fingerprint {
        return Err(Failure::Domain(TenancyError::AlreadyOnboarded));
    }
    // The answer given then, even if the tenant changed since.
    Ok(Some(serde_json::from_value(row.result).map_err(corrupt)?))
}

/// What one onboarding writes, once its plan is decided.
struct Steps<'a> {
    ctx: &'a TenantContext,
    before: &'a Tenant,
    plan: OnboardingPlan,
    owner: &'a OwnerDetails,
    link: InvitationLink,
    source: OnboardingSource,
    fingerprint: &'a [u8],
    now: DateTime<Utc>,
}

/// Writes an onboarding in the caller's transaction, scoped to its tenant.
/// The audit row of the onboarding is the last statement.
async fn write(conn: &mut AsyncPgConnection, steps: Steps<'_>) -> Result<Onboarding, TenantFailure> {
    let Steps { ctx, before, plan, owner, link, source, fingerprint, now } = steps;
    let tenant = &plan.tenant;
    let id = tenant.id;
    // The tenant: its industry and trial end.
    diesel::update(crate::schema::tenants::table)
        .filter(diesel::ExpressionMethods::eq(crate::schema::tenants::id, id.into_uuid()))
        .set(TenantRow::from(tenant))
        .execute(conn)
        .await?;
    // Its own settings (the profile supplies the rest), keeping feature
    // overrides the platform may have set before.
    let profile = load_profile(conn, id, false).await?;
    let settings = if plan.settings.is_empty() { profile.settings } else { plan.settings };
    save_profile(conn, id, &settings, &profile.features, now).await?;
    // The owner, invited: the invitation email is a job in this transaction.
    let email = Email::parse(&owner.email).map_err(|e| Failure::Domain(TenancyError::Owner(e)))?;
    let new = NewPerson {
        email,
        name: person_name(&owner.name).map_err(|e| Failure::Domain(TenancyError::Owner(e)))?,
        phone: owner.phone.clone(),
        kind: MembershipKind::Owner,
        role: RoleChoice::BuiltIn(Role::Owner),
    };
    let membership = MembershipId::new();
    crate::people::invite_in(conn, ctx, &new, (Role::Owner, None), membership, Some(link), now)
        .await
        .map_err(|failure| failure.map_domain(TenancyError::Owner))?;
    // The welcome credits, out of the platform's stock.
    let profile_name = Catalogue::builtin()
        .ok()
        .and_then(|c| c.industry(tenant.industry.as_deref().unwrap_or_default()))
        .map_or_else(String::new, |p| p.name.clone());
    for credit in &plan.welcome_credits {
        welcome(conn, ctx, credit, &profile_name, now).await?;
    }
    let onboarding = Onboarding {
        tenant_id: id,
        slug: tenant.slug.clone(),
        source,
        industry: tenant.industry.clone().unwrap_or_default(),
        status: tenant.status,
        trial_ends_at: tenant.trial_ends_at,
        owner_membership_id: membership,
        owner_email: new.email.as_str().to_owned(),
        welcome_credits: plan.welcome_credits.clone(),
        completed_at: now,
    };
    diesel::sql_query(
        "INSERT INTO onboardings (tenant_id, source, owner_membership_id, owner_email, welcome_credits, \
                                  result, fingerprint, completed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind::<SqlUuid, _>(id.into_uuid())
    .bind::<Text, _>(source.as_str())
    .bind::<SqlUuid, _>(membership.into_uuid())
    .bind::<Text, _>(&onboarding.owner_email)
    .bind::<Jsonb, _>(serde_json::to_value(&onboarding.welcome_credits).map_err(corrupt)?)
    .bind::<Jsonb, _>(serde_json::to_value(&onboarding).map_err(corrupt)?)
    .bind::<diesel::sql_types::Bytea, _>(fingerprint)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await?;
    let changes = json!({
        "source": source,
        "industry": {"before": before.industry, "after": tenant.industry},
        "trialEndsAt": {"before": before.trial_ends_at, "after": tenant.trial_ends_at},
        "ownerMembershipId": membership,
        "welcomeCredits": onboarding.welcome_credits,
    });
    let entry = AuditEntry {
        action: "tenant.onboard",
        resource_type: "tenant",
        resource_id: id.to_string(),
        changes,
    };
    audit::record(conn, id, ctx.into(), &entry, now).await?;
    Ok(onboarding)
}

/// Grants one channel's welcome credits.
async fn welcome(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    credit: &WelcomeCredit,
    profile: &str,
    now: DateTime<Utc>,
) -> Result<(), TenantFailure> {
    let channel: Channel =
        credit.channel.parse().map_err(|_| corrupt(format!("channel {}", credit.channel)))?;
    let reference = Reference::parse(&format!("welcome:{}:{}", ctx.tenant_id, channel.as_str()))
        .map_err(|e| corrupt(e.to_string()))?;
    let days = (credit.expires_at - now).num_days();
    let add = AddCredits {
        amount: credit.amount,
        source: GrantSource::Promotional,
        currency: None,
        priority: None,
        validity_days: u32::try_from(days).ok().filter(|d| *d > 0),
        note: Some(format!("Welcome credits ({profile})")),
    };
    // The onboarding's own time: the grants expire when the onboarding says,
    // and their ledger and audit rows come before its own audit row.
    let at = portico_kernel::FixedClock::at(now);
    crate::credits::add_in(conn, ctx, &at, &reference, WalletRef::Channel(channel), &add).await.map_err(
        |f| {
            f.map_domain(|error| match error {
                CreditsError::MasterInsufficient { channel, .. } => {
                    TenancyError::WelcomeCreditsUnavailable(channel.as_str().to_owned())
                }
                other => TenancyError::Store(portico_kernel::InfraError::internal(format!(
                    "welcome credits: {other}"
                ))),
            })
        },
    )?;
    Ok(())
}

impl Store {
    /// Completes the onboarding of tenant `id`, which the platform's staff
    /// created (the caller checks their permission). Sent again with the
    /// same details it answers as the first time and changes nothing; with
    /// other details it is refused (`AlreadyOnboarded`).
    pub async fn onboard(
        &self,
        ctx: &TenantContext,
        id: TenantId,
        command: OnboardTenant,
        link: InvitationLink,
    ) -> Result<Onboarding, TenancyError> {
        if id != ctx.tenant_id {
            return Err(TenancyError::NotFound);
        }
        let command = command.validated()?;
        let fingerprint = fingerprint(OnboardingSource::Platform, &command)?;
        let catalogue = Catalogue::builtin()?;
        let (ctx, clock) = (ctx.clone(), self.clock());
        self.in_tenant(id, move |conn| {
            Box::pin(async move {
                let before = load_for_update(conn, id, id).await?;
                if let Some(first) = earlier(conn, &before, &fingerprint).await? {
                    return Ok(first);
                }
                let now = self_now(&*clock);
                let plan = plan_onboarding(
                    catalogue,
                    &before,
                    command.industry.as_deref(),
                    command.settings.clone(),
                    now,
                )
                .map_err(Failure::Domain)?;
                let steps = Steps {
                    ctx: &ctx,
                    before: &before,
                    plan,
                    owner: &command.owner,
                    link,
                    source: OnboardingSource::Platform,
                    fingerprint: &fingerprint,
                    now,
                };
                write(conn, steps).await
            })
        })
        .await
        .map_err(resolve)
    }

    /// A business signs itself up: a new tenant in trial, onboarded, its
    /// owner invited (accepting the emailed link confirms the address and
    /// sets the password). Sent again with the same details — even racing
    /// the first — it answers as the first time; a slug in use otherwise is `SlugTaken`.
    pub async fn sign_up(
        &self,
        command: SignUp,
        link: InvitationLink,
        request_id: &RequestId,
        origin: &Origin,
    ) -> Result<Onboarding, TenancyError> {
        let command = command.validated()?;
        let fingerprint = fingerprint(OnboardingSource::SelfService, &command)?;
        if let Some(first) = self.earlier_sign_up(&command.slug, &fingerprint).await? {
            return Ok(first);
        }
        let catalogue = Catalogue::builtin()?;
        let id = TenantId::new();
        let ctx = TenantContext {
            tenant_id: id,
            actor: Actor::system("sign-up"),
            permissions: std::collections::BTreeSet::new(),
            request_id: request_id.clone(),
            origin: origin.clone(),
        };
        let (slug, clock) = (command.slug.clone(), self.clock());
        let created = self
            .in_tenant(id, {
                let fingerprint = fingerprint.clone();
                move |conn| {
                    Box::pin(async move {
                        let now = self_now(&*clock);
                        let tenant = Tenant::create(command.tenant(), id, now).map_err(Failure::Domain)?;
                        diesel::insert_into(crate::schema::tenants::table)
                            .values(TenantRow::from(&tenant))
                            .execute(conn)
                            .await?;
                        let entry = AuditEntry::between("tenant.create", "tenant", id, None, Some(&tenant));
                        audit::record(conn, id, (&ctx).into(), &entry, now).await?;
                        let plan =
                            plan_onboarding(catalogue, &tenant, None, None, now).map_err(Failure::Domain)?;
                        let steps = Steps {
                            ctx: &ctx,
                            before: &tenant,
                            plan,
                            owner: &command.owner,
                            link,
                            source: OnboardingSource::SelfService,
                            fingerprint: &fingerprint,
                            now,
                        };
                        write(conn, steps).await
                    })
                }
            })
            .await
            .map_err(resolve);
        match created {
            // A twin request committed first: answer as it did.
            Err(TenancyError::SlugTaken(_)) => match self.earlier_sign_up(&slug, &fingerprint).await? {
                Some(first) => Ok(first),
                None => Err(TenancyError::SlugTaken(slug)),
            },
            other => other,
        }
    }

    /// The earlier sign-up of `slug` with this fingerprint; `SlugTaken` if a
    /// tenant has the slug otherwise; `None` if the slug is free.
    async fn earlier_sign_up(
        &self,
        slug: &str,
        fingerprint: &[u8],
    ) -> Result<Option<Onboarding>, TenancyError> {
        #[derive(QueryableByName)]
        struct Found {
            #[diesel(sql_type = diesel::sql_types::Nullable<SqlUuid>)]
            id: Option<uuid::Uuid>,
        }
        let wanted = slug.to_owned();
        let found = self
            .in_unscoped(move |conn| {
                Box::pin(async move {
                    let found: Found = diesel::sql_query("SELECT tenant_id_for_slug($1) AS id")
                        .bind::<Text, _>(wanted)
                        .get_result(conn)
                        .await?;
                    Ok(found.id)
                })
            })
            .await
            .map_err(resolve)?;
        let Some(id) = found.map(TenantId::from_uuid) else { return Ok(None) };
        let fingerprint = fingerprint.to_vec();
        let replay = self
            .in_tenant(id, move |conn| {
                Box::pin(async move {
                    let tenant = load_for_update(conn, id, id).await?;
                    if tenant.status != TenantStatus::Trial && tenant.status != TenantStatus::Active {
                        return Ok(None);
                    }
                    match earlier(conn, &tenant, &fingerprint).await {
                        Ok(Some(first)) if first.source == OnboardingSource::SelfService => Ok(Some(first)),
                        Ok(_) | Err(Failure::Domain(TenancyError::AlreadyOnboarded)) => Ok(None),
                        Err(other) => Err(other),
                    }
                })
            })
            .await
            .map_err(resolve)?;
        replay.map(Some).ok_or_else(|| TenancyError::SlugTaken(slug.to_owned()))
    }
}

/// The time as the store keeps it (microseconds).
fn self_now(clock: &dyn Clock) -> DateTime<Utc> {
    chrono::SubsecRound::trunc_subsecs(clock.now(), 6)
}
