//! Onboarding: what a new tenant gets before its first sign-in — its owner
//! (invited, which also confirms the owner's address), its settings, the
//! features and welcome credits of its industry, and a trial.
//!
//! Two doors lead here: the platform's staff complete a tenant they created
//! ([`OnboardTenant`]), and a business signs itself up ([`SignUp`]). Both
//! end in one store use case, fed by [`plan_onboarding`].

use chrono::{DateTime, Duration, Utc};
use garde::Validate;
use portico_kernel::{MembershipId, TenantId, ValidationErrors};

use crate::command::slug_rules;
use crate::settings::plain_text;
use crate::{Catalogue, CreateTenant, TenancyError, Tenant, TenantStatus, UpdateSettings};

/// The person who will own the tenant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OwnerDetails {
    /// Their name, 1 to 200 characters.
    #[garde(length(chars, min = 1, max = 200), custom(plain_text))]
    pub name: String,
    /// Their email address: the invitation goes there, and accepting it confirms it.
    #[garde(length(max = 254), custom(email_rules))]
    pub email: String,
    /// Their phone in E.164 form.
    #[serde(default)]
    #[garde(pattern(r"^\+[1-9][0-9]{6,14}$"))]
    pub phone: Option<String>,
}

/// The platform's staff complete a tenant they created.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "owner": {"name": "Ada Lovelace", "email": "ada@acme-property.example", "phone": "+4930123456"},
    "industry": "property_management",
    "settings": {"timeZone": "Europe/Berlin", "invoicePrefix": "ACME"}
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OnboardTenant {
    /// Its owner.
    #[garde(dive)]
    pub owner: OwnerDetails,
    /// Its industry profile (`GET /api/v1/industries`); the tenant's own, else `generic`, when absent.
    #[serde(default)]
    #[garde(skip)]
    pub industry: Option<String>,
    /// Settings of its own from the start; the rest follow the profile.
    #[serde(default)]
    #[garde(dive)]
    pub settings: Option<UpdateSettings>,
}

impl OnboardTenant {
    /// The command if every rule holds, else each failing field.
    pub fn validated(self) -> Result<Self, TenancyError> {
        self.validate().map_err(|report| TenancyError::InvalidOnboarding(ValidationErrors::from(report)))?;
        Ok(self)
    }
}

/// A business signs itself up: a new tenant in trial, and its owner.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "name": "Speedy Haulage",
    "slug": "speedy-haulage",
    "industry": "trucking",
    "owner": {"name": "Grace Hopper", "email": "grace@speedy-haulage.example"}
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignUp {
    /// The business's name, 1 to 200 characters.
    #[garde(length(chars, max = 200), custom(plain_text))]
    pub name: String,
    /// Its short name for host names and URLs (see `POST /api/v1/tenants`).
    #[garde(custom(slug_rules))]
    pub slug: String,
    /// Its industry profile; `generic` when absent.
    #[serde(default)]
    #[garde(skip)]
    pub industry: Option<String>,
    /// Its owner, who also becomes its contact.
    #[garde(dive)]
    pub owner: OwnerDetails,
}

impl SignUp {
    /// The command if every rule holds, else each failing field; an
    /// industry the catalogue does not know is `UnknownIndustry`.
    pub fn validated(self) -> Result<Self, TenancyError> {
        self.validate().map_err(|report| TenancyError::InvalidOnboarding(ValidationErrors::from(report)))?;
        if let Some(industry) = self.industry.as_deref() {
            Catalogue::builtin()?.profile_of(Some(industry))?;
        }
        Ok(self)
    }

    /// The tenant this sign-up creates: in trial, its owner as its contact.
    #[must_use]
    pub fn tenant(&self) -> CreateTenant {
        CreateTenant {
            name: self.name.clone(),
            slug: self.slug.clone(),
            contact_email: self.owner.email.clone(),
            phone: self.owner.phone.clone(),
            industry: self.industry.clone(),
            status: Some(TenantStatus::Trial),
            metadata: None,
        }
    }
}

/// Which door a tenant came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OnboardingSource {
    /// Completed by the platform's staff.
    Platform,
    /// Signed up by the business itself.
    SelfService,
}

impl OnboardingSource {
    /// The storage name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::SelfService => "self_service",
        }
    }

    /// Reads the storage name back.
    #[must_use]
    pub fn from_storage(name: &str) -> Option<Self> {
        [Self::Platform, Self::SelfService].into_iter().find(|s| s.as_str() == name)
    }
}

/// Credits a new tenant is welcomed with, on one channel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WelcomeCredit {
    /// The channel (`sms`).
    pub channel: String,
    /// How many credits.
    pub amount: i64,
    /// Days they stay usable once granted.
    pub validity_days: u32,
    /// When they expire: set once granted (at onboarding by the platform's
    /// staff; for a sign-up, when the owner confirms the address).
    pub expires_at: Option<DateTime<Utc>>,
}

/// What onboarding will do, decided before anything is written.
#[derive(Debug, Clone, PartialEq)]
pub struct OnboardingPlan {
    /// The tenant after onboarding: its industry set, its trial end fixed.
    pub tenant: Tenant,
    /// The settings of its own.
    pub settings: UpdateSettings,
    /// The welcome credits to grant.
    pub welcome_credits: Vec<WelcomeCredit>,
}

/// Decides the onboarding of `tenant`: the industry (asked for, else the
/// tenant's, else generic; unknown ones refused), the owner's settings
/// (validated), the profile's welcome credits and, for a tenant in trial,
/// when the trial ends. The platform tenant, and a tenant that is not in
/// service, cannot be onboarded.
pub fn plan_onboarding(
    catalogue: &Catalogue,
    tenant: &Tenant,
    industry: Option<&str>,
    settings: Option<UpdateSettings>,
    now: DateTime<Utc>,
) -> Result<OnboardingPlan, TenancyError> {
    if tenant.is_platform() {
        return Err(TenancyError::PlatformTenantProtected);
    }
    if !matches!(tenant.status, TenantStatus::Trial | TenantStatus::Active) {
        return Err(TenancyError::NotInService(tenant.status));
    }
    let profile = catalogue.profile_of(industry.or(tenant.industry.as_deref()))?;
    let settings = settings.unwrap_or_default().validated()?;
    let welcome_credits = profile
        .welcome_credits
        .iter()
        .map(|(channel, amount)| WelcomeCredit {
            channel: channel.clone(),
            amount: *amount,
            validity_days: profile.welcome_credit_days,
            expires_at: None,
        })
        .collect();
    let trial_ends_at = (tenant.status == TenantStatus::Trial)
        .then(|| tenant.trial_ends_at.unwrap_or(now + Duration::days(i64::from(profile.trial_days))));
    let tenant =
        Tenant { industry: Some(profile.key.clone()), trial_ends_at, updated_at: now, ..tenant.clone() };
    Ok(OnboardingPlan { tenant, settings, welcome_credits })
}

/// A completed onboarding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "tenantId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f",
    "slug": "speedy-haulage",
    "source": "self_service",
    "industry": "trucking",
    "status": "TRIAL",
    "trialEndsAt": "2026-12-20T09:00:00Z",
    "ownerMembershipId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e60",
    "ownerEmail": "grace@speedy-haulage.example",
    "welcomeCredits": [{"channel": "sms", "amount": 100, "validityDays": 60, "expiresAt": null}],
    "welcomeCreditsGranted": false,
    "completedAt": "2026-12-06T09:00:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct Onboarding {
    /// The tenant.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub tenant_id: TenantId,
    /// Its slug.
    pub slug: String,
    /// Which door it came through.
    pub source: OnboardingSource,
    /// Its industry profile.
    pub industry: String,
    /// Its status.
    pub status: TenantStatus,
    /// When its trial ends, if it is in trial.
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// The owner's (invited) membership.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub owner_membership_id: MembershipId,
    /// Where the invitation went.
    pub owner_email: String,
    /// The credits it is welcomed with.
    pub welcome_credits: Vec<WelcomeCredit>,
    /// Whether they were granted; a signed-up tenant gets them when its
    /// owner confirms the address.
    pub welcome_credits_granted: bool,
    /// When onboarding completed.
    pub completed_at: DateTime<Utc>,
}

/// An address people can sign in with (the identity rules, not only its shape).
fn email_rules(value: &str, _: &()) -> garde::Result {
    crate::Email::parse(value).map(|_| ()).map_err(|_| garde::Error::new("not a valid email address"))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 9, 0, 0).unwrap()
    }

    fn tenant(status: TenantStatus, industry: Option<&str>) -> Tenant {
        let command = CreateTenant {
            name: "Acme".into(),
            slug: "acme".into(),
            contact_email: "ops@acme.example".into(),
            phone: None,
            industry: industry.map(str::to_owned),
            status: Some(TenantStatus::Trial),
            metadata: None,
        };
        Tenant { status, ..Tenant::create(command, TenantId::new(), now()).unwrap() }
    }

    fn catalogue() -> &'static Catalogue {
        Catalogue::builtin().unwrap()
    }

    #[test]
    fn a_trial_tenant_gets_its_profile_credits_and_a_trial_end() {
        let plan =
            plan_onboarding(catalogue(), &tenant(TenantStatus::Trial, Some("trucking")), None, None, now())
                .unwrap();
        assert_eq!(plan.tenant.industry.as_deref(), Some("trucking"));
        assert_eq!(plan.tenant.trial_ends_at, Some(now() + Duration::days(14)));
        assert_eq!(
            plan.welcome_credits,
            vec![
                WelcomeCredit { channel: "sms".into(), amount: 100, validity_days: 60, expires_at: None },
                WelcomeCredit {
                    channel: "whatsapp".into(),
                    amount: 100,
                    validity_days: 60,
                    expires_at: None
                },
            ]
        );
        assert!(plan.settings.is_empty());
    }

    #[test]
    fn the_industry_asked_for_wins_and_none_means_generic() {
        let t = tenant(TenantStatus::Active, Some("trucking"));
        let plan = plan_onboarding(catalogue(), &t, Some("service_repair"), None, now()).unwrap();
        assert_eq!(plan.tenant.industry.as_deref(), Some("service_repair"));
        assert_eq!(plan.tenant.trial_ends_at, None, "an active tenant has no trial");
        let plan =
            plan_onboarding(catalogue(), &tenant(TenantStatus::Trial, None), None, None, now()).unwrap();
        assert_eq!(plan.tenant.industry.as_deref(), Some("generic"));
    }

    #[test]
    fn refusals() {
        let t = tenant(TenantStatus::Trial, None);
        assert!(matches!(
            plan_onboarding(catalogue(), &t, Some("alchemy"), None, now()),
            Err(TenancyError::UnknownIndustry(_))
        ));
        let bad = UpdateSettings { currency: Some("XXXX".into()), ..UpdateSettings::default() };
        assert!(matches!(
            plan_onboarding(catalogue(), &t, None, Some(bad), now()),
            Err(TenancyError::InvalidSettings(_))
        ));
        let platform = Tenant { id: portico_kernel::PLATFORM_TENANT_ID, ..t.clone() };
        assert!(matches!(
            plan_onboarding(catalogue(), &platform, None, None, now()),
            Err(TenancyError::PlatformTenantProtected)
        ));
        let suspended = tenant(TenantStatus::Suspended, None);
        assert!(matches!(
            plan_onboarding(catalogue(), &suspended, None, None, now()),
            Err(TenancyError::NotInService(TenantStatus::Suspended))
        ));
    }

    #[test]
    fn a_sign_up_creates_a_trial_tenant_with_its_owner_as_contact() {
        let sign_up: SignUp = serde_json::from_value(serde_json::json!({
            "name": "Speedy", "slug": "speedy", "owner": {"name": "Grace", "email": "grace@speedy.example"}
        }))
        .unwrap();
        let create = sign_up.validated().unwrap().tenant();
        assert_eq!(create.contact_email, "grace@speedy.example");
        assert_eq!(create.status, Some(TenantStatus::Trial));
    }

    #[test]
    fn a_sign_up_for_an_unknown_industry_says_so() {
        let sign_up: SignUp = serde_json::from_value(serde_json::json!({
            "name": "Speedy", "slug": "speedy", "industry": "alchemy",
            "owner": {"name": "Grace", "email": "grace@speedy.example"}
        }))
        .unwrap();
        assert!(matches!(sign_up.validated(), Err(TenancyError::UnknownIndustry(key)) if key == "alchemy"));
    }

    #[test]
    fn a_sign_up_names_each_bad_field() {
        let sign_up: SignUp = serde_json::from_value(serde_json::json!({
            "name": " ", "slug": "Bad Slug", "owner": {"name": "", "email": "ada@localhost"}
        }))
        .unwrap();
        let Err(TenancyError::InvalidOnboarding(errors)) = sign_up.validated() else { panic!("accepted") };
        let mut fields = errors.fields();
        fields.sort_unstable();
        fields.dedup();
        assert_eq!(fields, ["name", "owner.email", "owner.name", "slug"]);
        assert!(
            serde_json::from_value::<SignUp>(serde_json::json!({"name": "a", "slug": "abc",
            "owner": {"name": "a", "email": "a@b.example"}, "plan": "gold"}))
            .is_err()
        );
    }
}
