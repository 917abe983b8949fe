//! Onboarding, one use case across domains in one transaction: the tenant
//! (created or completed), its settings, its owner's invited membership and
//! invitation email job, its welcome credits, the onboarding record and the
//! audit rows. A failure in any step leaves nothing behind.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Bytea, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use portico_credits::{AddCredits, Channel, CreditsError, GrantSource, Reference, WalletRef};
use portico_kernel::{
    Actor, AuditEntry, MembershipId, Origin, PlatformContext, RequestId, TenantContext, TenantId,
};
use portico_tenancy::people::{InvitationLink, person_name};
use portico_tenancy::{
    Catalogue, Email, MembershipKind, NewPerson, OnboardTenant, Onboarding, OnboardingPlan, OnboardingSource,
    OwnerDetails, Role, RoleChoice, SignUp, TenancyError, Tenant, TenantStatus, WelcomeCredit,
    plan_onboarding,
};
use serde_json::json;

use crate::error::{Failure, is_unique_violation};
use crate::store::now_of;
use crate::tenant_profile::{corrupt, load_profile, save_profile};
use crate::tenants::{TenantFailure, TenantRow, load_for_update};
use crate::{Store, audit};

fn resolve(failure: TenantFailure) -> TenancyError {
    failure.resolve(|error| {
        is_unique_violation(error, "tenants_slug_key").then(|| TenancyError::SlugTaken(String::new()))
    })
}

/// A hash of what was asked (the idempotency records' fingerprint), to tell
/// a replay from a different second attempt.
fn fingerprint(source: OnboardingSource, command: &impl serde::Serialize) -> Result<Vec<u8>, TenancyError> {
    let body = serde_json::to_vec(command)
        .map_err(|e| TenancyError::Store(portico_kernel::InfraError::internal(e)))?;
    Ok(crate::fingerprint("onboarding", source.as_str(), &body).into_bytes())
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
    // Its own settings laid over any it set before (the profile supplies
    // the rest), keeping feature overrides the platform may have set.
    let profile = load_profile(conn, id, false).await?;
    let settings = profile.settings.overlaid_by(&plan.settings);
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
    // The welcome credits, out of the platform's stock: now when the
    // platform's staff onboard; for a sign-up, once the owner confirms the
    // address (so unconfirmed sign-ups move no stock).
    let mut welcome_credits = plan.welcome_credits.clone();
    let granted = source == OnboardingSource::Platform;
    if granted {
        for credit in &mut welcome_credits {
            credit.expires_at = Some(welcome(conn, ctx, membership, credit, now).await?);
        }
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
        welcome_credits,
        welcome_credits_granted: granted,
        completed_at: now,
    };
    diesel::sql_query(
        "INSERT INTO onboardings (tenant_id, source, owner_membership_id, owner_email, welcome_credits, \
                                  result, fingerprint, completed_at, welcome_granted_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind::<SqlUuid, _>(id.into_uuid())
    .bind::<Text, _>(source.as_str())
    .bind::<SqlUuid, _>(membership.into_uuid())
    .bind::<Text, _>(&onboarding.owner_email)
    .bind::<Jsonb, _>(serde_json::to_value(&onboarding.welcome_credits).map_err(corrupt)?)
    .bind::<Jsonb, _>(serde_json::to_value(&onboarding).map_err(corrupt)?)
    .bind::<diesel::sql_types::Bytea, _>(fingerprint)
    .bind::<Timestamptz, _>(now)
    .bind::<Nullable<Timestamptz>, _>(granted.then_some(now))
    .execute(conn)
    .await?;
    let changes = json!({
        "source": {"before": null, "after": source},
        "industry": {"before": before.industry, "after": tenant.industry},
        "trialEndsAt": {"before": before.trial_ends_at, "after": tenant.trial_ends_at},
        "ownerMembershipId": {"before": null, "after": membership},
        "welcomeCredits": {"before": null, "after": onboarding.welcome_credits},
        "welcomeCreditsGranted": {"before": null, "after": granted},
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

/// Grants one channel's welcome credits at `now`, out of the platform's
/// stock; returns when they expire. The reference names the owner's
/// membership (a new random id), so no request's own key can take it first.
async fn welcome(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    owner: MembershipId,
    credit: &WelcomeCredit,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, TenantFailure> {
    let channel: Channel =
        credit.channel.parse().map_err(|_| corrupt(format!("channel {}", credit.channel)))?;
    let reference = Reference::parse(&format!("welcome:{owner}:{}", channel.as_str())).map_err(corrupt)?;
    let add = AddCredits {
        amount: credit.amount,
        source: GrantSource::Promotional,
        currency: None,
        priority: None,
        validity_days: Some(credit.validity_days),
        note: Some("Welcome credits".to_owned()),
    };
    // One time for the whole use case: the grants expire as stated, and
    // their ledger and audit rows come before the use case's own audit row.
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
    Ok(now + chrono::Duration::days(i64::from(credit.validity_days)))
}

/// The owner of a signed-up tenant confirmed the address (accepted the
/// invitation), in the acceptance's transaction, scoped to the tenant: the
/// welcome credits are granted now. A channel the platform's stock cannot
/// cover is skipped (in its own savepoint) and named in the audit row, so
/// the platform's stock never keeps an owner from signing in. Nothing
/// happens for any other acceptance.
pub(crate) async fn confirm_owner(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    membership: MembershipId,
    by: audit::By<'_>,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    #[derive(QueryableByName)]
    struct Pending {
        #[diesel(sql_type = Jsonb)]
        welcome_credits: serde_json::Value,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        granted: bool,
    }
    let pending: Option<Pending> = diesel::sql_query(
        "SELECT welcome_credits, welcome_granted_at IS NOT NULL AS granted FROM onboardings \
         WHERE tenant_id = $1 AND owner_membership_id = $2 AND confirmed_at IS NULL FOR UPDATE",
    )
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .bind::<SqlUuid, _>(membership.into_uuid())
    .get_result(conn)
    .await
    .optional()?;
    let Some(pending) = pending else { return Ok(()) };
    let mut granted = Vec::new();
    let mut unavailable = Vec::new();
    if !pending.granted {
        let credits: Vec<WelcomeCredit> =
            serde_json::from_value(pending.welcome_credits).unwrap_or_else(|error| {
                tracing::error!(%tenant, %error, "an onboarding's welcome credits cannot be read");
                Vec::new()
            });
        let ctx = TenantContext {
            tenant_id: tenant,
            actor: Actor::system("onboarding"),
            permissions: std::collections::BTreeSet::new(),
            request_id: by.request_id.clone(),
            origin: by.origin.clone(),
        };
        for mut credit in credits {
            let outcome =
                conn.transaction(async |conn| welcome(conn, &ctx, membership, &credit, now).await).await;
            match outcome {
                Ok(expires_at) => {
                    credit.expires_at = Some(expires_at);
                    granted.push(credit);
                }
                Err(Failure::Db(error)) => return Err(error),
                Err(failure) => {
                    tracing::warn!(%tenant, channel = %credit.channel, "welcome credits not granted: {failure:?}");
                    unavailable.push(credit.channel);
                }
            }
        }
    }
    diesel::sql_query(
        "UPDATE onboardings SET confirmed_at = $3, welcome_granted_at = coalesce(welcome_granted_at, $3) \
         WHERE tenant_id = $1 AND owner_membership_id = $2",
    )
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .bind::<SqlUuid, _>(membership.into_uuid())
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await?;
    let changes = json!({
        "confirmedAt": {"before": null, "after": now},
        "welcomeCredits": {"before": null, "after": granted},
        "welcomeCreditsUnavailable": {"before": null, "after": unavailable},
    });
    let entry = AuditEntry {
        action: "tenant.owner_confirm",
        resource_type: "tenant",
        resource_id: tenant.to_string(),
        changes,
    };
    audit::record(conn, tenant, by, &entry, now).await
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
                let now = now_of(&*clock);
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
    /// owner invited (accepting the emailed link confirms the address, sets
    /// the password and grants the welcome credits). Sent again with the
    /// same details — even racing the first — it answers as the first time
    /// and, while the owner has not confirmed, emails `link` as a new link
    /// (the earlier one stops working); a slug in use otherwise is `SlugTaken`.
    pub async fn sign_up(
        &self,
        command: SignUp,
        link: InvitationLink,
        request_id: &RequestId,
        origin: &Origin,
    ) -> Result<Onboarding, TenancyError> {
        let command = command.validated()?;
        let fingerprint = fingerprint(OnboardingSource::SelfService, &command)?;
        if let Some(first) =
            self.earlier_sign_up(&command.slug, &fingerprint, Some(link.clone()), request_id, origin).await?
        {
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
                        let now = now_of(&*clock);
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
            Err(TenancyError::SlugTaken(_)) => {
                match self.earlier_sign_up(&slug, &fingerprint, None, request_id, origin).await? {
                    Some(first) => Ok(first),
                    None => Err(TenancyError::SlugTaken(slug)),
                }
            }
            other => other,
        }
    }

    /// Closes sign-ups whose owner never confirmed: their invitation expired
    /// (or is gone) and they are older than the invitation's lifetime. Each
    /// such tenant is soft-deleted like any other (its slug stays taken),
    /// audited as `tenant.sign_up_expire`. At most `limit` a run; returns how many.
    pub async fn expire_sign_ups(&self, _ctx: &PlatformContext, limit: i64) -> Result<u64, TenancyError> {
        #[derive(QueryableByName)]
        struct Lapsed {
            #[diesel(sql_type = SqlUuid)]
            tenant_id: uuid::Uuid,
        }
        let now = self.now();
        let lapsed: Vec<Lapsed> = self
            .as_platform(move |conn| {
                Box::pin(async move {
                    Ok(diesel::sql_query(
                        "SELECT o.tenant_id FROM onboardings o \
                         JOIN tenants t ON t.id = o.tenant_id AND t.deleted_at IS NULL \
                         LEFT JOIN invitations i ON i.tenant_id = o.tenant_id AND i.membership_id = o.owner_membership_id \
                         WHERE o.source = 'self_service' AND o.confirmed_at IS NULL AND o.completed_at < $1 \
                           AND (i.expires_at IS NULL OR i.expires_at < $2) \
                         ORDER BY o.completed_at LIMIT $3",
                    )
                    .bind::<Timestamptz, _>(now - chrono::Duration::days(7))
                    .bind::<Timestamptz, _>(now)
                    .bind::<diesel::sql_types::BigInt, _>(limit)
                    .load(conn)
                    .await?)
                })
            })
            .await
            .map_err(resolve)?;
        let mut closed = 0;
        for row in lapsed {
            let id = TenantId::from_uuid(row.tenant_id);
            let ctx = TenantContext {
                tenant_id: id,
                actor: Actor::system("sign-up-expiry"),
                permissions: std::collections::BTreeSet::new(),
                request_id: RequestId::generate(),
                origin: Origin::default(),
            };
            let outcome = self
                .in_tenant(id, move |conn| {
                    Box::pin(async move {
                        let before = load_for_update(conn, id, id).await?;
                        // Confirmed meanwhile: the owner won the race.
                        #[derive(QueryableByName)]
                        struct Open {
                            #[diesel(sql_type = diesel::sql_types::Bool)]
                            open: bool,
                        }
                        let open: Open = diesel::sql_query(
                            "SELECT confirmed_at IS NULL AS open FROM onboardings WHERE tenant_id = $1 FOR UPDATE",
                        )
                        .bind::<SqlUuid, _>(id.into_uuid())
                        .get_result(conn)
                        .await?;
                        if !open.open {
                            return Ok(false);
                        }
                        let after = before.delete(now).map_err(Failure::Domain)?;
                        crate::tenants::save_change(conn, &ctx, "tenant.sign_up_expire", &before, &after).await?;
                        Ok(true)
                    })
                })
                .await
                .map_err(resolve);
            match outcome {
                Ok(true) => closed += 1,
                Ok(false) => {}
                // One tenant's failure does not stop the others; the next run retries it.
                Err(error) => {
                    tracing::warn!(tenant = %id, %error, "an unconfirmed sign-up could not be closed")
                }
            }
        }
        Ok(closed)
    }

    /// The earlier sign-up of `slug` with this fingerprint (sending `link`
    /// to its owner if they have not confirmed yet); `SlugTaken` if a tenant
    /// has the slug otherwise; `None` if the slug is free.
    async fn earlier_sign_up(
        &self,
        slug: &str,
        fingerprint: &[u8],
        link: Option<InvitationLink>,
        request_id: &RequestId,
        origin: &Origin,
    ) -> Result<Option<Onboarding>, TenancyError> {
        let id = match self.in_service(slug).await {
            Ok(id) => id,
            // Free, or held by a tenant out of service (whose slug the insert then finds taken).
            Err(TenancyError::NotFound) => return Ok(None),
            Err(other) => return Err(other),
        };
        let (fingerprint, now) = (fingerprint.to_vec(), self.now());
        let (request_id, origin) = (request_id.clone(), origin.clone());
        let replay = self
            .in_tenant(id, move |conn| {
                Box::pin(async move {
                    let tenant = load_for_update(conn, id, id).await?;
                    if tenant.status != TenantStatus::Trial && tenant.status != TenantStatus::Active {
                        return Ok(None);
                    }
                    let first = match earlier(conn, &tenant, &fingerprint).await {
                        Ok(Some(first)) if first.source == OnboardingSource::SelfService => first,
                        Ok(_) | Err(Failure::Domain(TenancyError::AlreadyOnboarded)) => return Ok(None),
                        Err(other) => return Err(other),
                    };
                    if let Some(link) = link {
                        let actor = Actor::system("sign-up");
                        let by = audit::By { actor: &actor, request_id: &request_id, origin: &origin };
                        resend(conn, &first, link, by, now).await?;
                    }
                    Ok(Some(first))
                })
            })
            .await
            .map_err(resolve)?;
        replay.map(Some).ok_or_else(|| TenancyError::SlugTaken(slug.to_owned()))
    }
}

/// Emails the owner of a signed-up tenant a new link while they have not
/// confirmed (the earlier link stops working). Audited as `invitation.send`.
async fn resend(
    conn: &mut AsyncPgConnection,
    first: &Onboarding,
    link: InvitationLink,
    by: audit::By<'_>,
    now: DateTime<Utc>,
) -> Result<(), TenantFailure> {
    #[derive(QueryableByName)]
    struct Open {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        open: bool,
    }
    let tenant = first.tenant_id;
    let open: Open =
        diesel::sql_query("SELECT confirmed_at IS NULL AS open FROM onboardings WHERE tenant_id = $1")
            .bind::<SqlUuid, _>(tenant.into_uuid())
            .get_result(conn)
            .await?;
    if !open.open {
        return Ok(());
    }
    let (membership, email) = (first.owner_membership_id, first.owner_email.as_str());
    crate::people::send_link(conn, tenant, membership, email, None, link, now)
        .await
        .map_err(|failure| failure.map_domain(TenancyError::Owner))?;
    let changes = json!({"resentOnSignUp": {"before": null, "after": true}});
    let entry = AuditEntry {
        action: "invitation.send",
        resource_type: "membership",
        resource_id: membership.to_string(),
        changes,
    };
    audit::record(conn, tenant, by, &entry, now).await?;
    Ok(())
}
