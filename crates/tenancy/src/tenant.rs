//! A tenant and its lifecycle.

use std::fmt;

use chrono::{DateTime, Utc};
use portico_kernel::{PLATFORM_TENANT_ID, TenantId};

use crate::{CreateTenant, TenancyError, UpdateTenant};

/// Where a tenant is in its life. Deletion is separate: a soft delete that
/// hides the tenant but keeps its row, because audit rows outlive it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TenantStatus {
    /// Paying (or free) and in service.
    Active,
    /// Trying the platform; in service.
    Trial,
    /// Temporarily out of service (unpaid, abuse); can be reactivated.
    Suspended,
    /// Closed by choice; can be reactivated.
    Inactive,
}

impl TenantStatus {
    /// Every status, in a stable order.
    pub const ALL: [Self; 4] = [Self::Active, Self::Trial, Self::Suspended, Self::Inactive];

    /// The lower-case name used in storage and messages.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Trial => "trial",
            Self::Suspended => "suspended",
            Self::Inactive => "inactive",
        }
    }

    /// Reads the storage name back; `None` for anything else.
    #[must_use]
    pub fn from_storage(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The status after `action`, or why it is not allowed.
    ///
    /// | from \ action | activate | suspend | deactivate |
    /// |---|---|---|---|
    /// | trial | active | suspended | inactive |
    /// | active | refused | suspended | inactive |
    /// | suspended | active | refused | inactive |
    /// | inactive | active | refused | refused |
    pub fn apply(self, action: TenantTransition) -> Result<Self, TenancyError> {
        use TenantStatus::{Active, Inactive, Suspended, Trial};
        use TenantTransition::{Activate, Deactivate, Suspend};
        match (self, action) {
            (Trial | Suspended | Inactive, Activate) => Ok(Active),
            (Trial | Active, Suspend) => Ok(Suspended),
            (Trial | Active | Suspended, Deactivate) => Ok(Inactive),
            (from, action) => Err(TenancyError::InvalidTransition { from, action }),
        }
    }
}

impl fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change of a tenant's status asked for by an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TenantTransition {
    /// Put (back) in service.
    Activate,
    /// Take out of service temporarily.
    Suspend,
    /// Close.
    Deactivate,
}

impl TenantTransition {
    /// The audit action this transition records (`tenant.suspend`).
    #[must_use]
    pub const fn audit_action(self) -> &'static str {
        match self {
            Self::Activate => "tenant.activate",
            Self::Suspend => "tenant.suspend",
            Self::Deactivate => "tenant.deactivate",
        }
    }
}

impl fmt::Display for TenantTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Activate => "activate",
            Self::Suspend => "suspend",
            Self::Deactivate => "deactivate",
        })
    }
}

/// A business on the platform.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f",
    "name": "Acme Property Management",
    "slug": "acme-property",
    "contactEmail": "hello@acme-property.example",
    "phone": "+4930123456",
    "industry": "property_management",
    "status": "TRIAL",
    "trialEndsAt": "2026-12-23T09:00:00Z",
    "metadata": {"crmId": 7},
    "createdAt": "2026-11-23T09:00:00Z",
    "updatedAt": "2026-11-23T09:00:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// Its id; also the key of every row it owns.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// Unique short name for host names and URLs; never changes.
    pub slug: String,
    /// Where the platform writes to the business.
    pub contact_email: String,
    /// Contact phone in E.164 form (`+4930123456`).
    pub phone: Option<String>,
    /// The industry profile key (`property_management`), if chosen.
    pub industry: Option<String>,
    /// Lifecycle status.
    pub status: TenantStatus,
    /// When its trial ends (set at onboarding for a tenant in trial).
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// Free-form JSON object for integrations.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: serde_json::Value,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it was soft-deleted; deleted tenants are hidden everywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Tenant {
    /// A new tenant from a create command, which is validated here.
    pub fn create(command: CreateTenant, id: TenantId, now: DateTime<Utc>) -> Result<Self, TenancyError> {
        let command = command.validated()?;
        Ok(Self {
            id,
            name: command.name.trim().to_owned(),
            slug: command.slug,
            contact_email: command.contact_email.trim().to_owned(),
            phone: command.phone,
            industry: command.industry,
            status: command.status.unwrap_or(TenantStatus::Trial),
            trial_ends_at: None,
            metadata: command.metadata.unwrap_or_else(|| serde_json::json!({})),
            created_at: now,
            updated_at: now,
            deleted_at: None,
        })
    }

    /// True for the platform operator's own tenant.
    #[must_use]
    pub fn is_platform(&self) -> bool {
        self.id == PLATFORM_TENANT_ID
    }

    /// The tenant with its editable fields replaced by `command` (validated
    /// here). The industry decides a tenant's default features, so only the
    /// platform (`platform_staff`) changes it; others must send it unchanged.
    pub fn update(
        &self,
        command: UpdateTenant,
        platform_staff: bool,
        now: DateTime<Utc>,
    ) -> Result<Self, TenancyError> {
        let command = command.validated()?;
        if !platform_staff && command.industry != self.industry {
            return Err(TenancyError::IndustryLocked);
        }
        Ok(Self {
            name: command.name.trim().to_owned(),
            contact_email: command.contact_email.trim().to_owned(),
            phone: command.phone,
            industry: command.industry,
            metadata: command.metadata.unwrap_or_else(|| serde_json::json!({})),
            updated_at: now,
            ..self.clone()
        })
    }

    /// The tenant after a status transition. The platform tenant cannot be
    /// taken out of service.
    pub fn apply(&self, action: TenantTransition, now: DateTime<Utc>) -> Result<Self, TenancyError> {
        if self.is_platform() && action != TenantTransition::Activate {
            return Err(TenancyError::PlatformTenantProtected);
        }
        let status = self.status.apply(action)?;
        Ok(Self { status, updated_at: now, ..self.clone() })
    }

    /// The tenant soft-deleted: hidden from then on, its row and audit trail kept.
    pub fn delete(&self, now: DateTime<Utc>) -> Result<Self, TenancyError> {
        if self.is_platform() {
            return Err(TenancyError::PlatformTenantProtected);
        }
        Ok(Self { status: TenantStatus::Inactive, updated_at: now, deleted_at: Some(now), ..self.clone() })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, hour, 0, 0).unwrap()
    }

    fn command() -> CreateTenant {
        CreateTenant {
            name: "  Acme Property  ".into(),
            slug: "acme".into(),
            contact_email: "ops@acme.example".into(),
            phone: Some("+4930123456".into()),
            industry: Some("property_management".into()),
            status: None,
            metadata: None,
        }
    }

    fn tenant() -> Tenant {
        Tenant::create(command(), TenantId::new(), at(9)).unwrap()
    }

    #[test]
    fn a_new_tenant_starts_in_trial_with_trimmed_name_and_empty_metadata() {
        let tenant = tenant();
        assert_eq!(tenant.status, TenantStatus::Trial);
        assert_eq!(tenant.name, "Acme Property");
        assert_eq!(tenant.metadata, serde_json::json!({}));
        assert_eq!((tenant.created_at, tenant.updated_at, tenant.deleted_at), (at(9), at(9), None));
    }

    #[test]
    fn a_new_tenant_may_start_active() {
        let tenant = Tenant::create(
            CreateTenant { status: Some(TenantStatus::Active), ..command() },
            TenantId::new(),
            at(9),
        )
        .unwrap();
        assert_eq!(tenant.status, TenantStatus::Active);
    }

    #[test]
    fn create_refuses_an_invalid_command() {
        let bad = CreateTenant { slug: "Not A Slug".into(), ..command() };
        let err = Tenant::create(bad, TenantId::new(), at(9)).unwrap_err();
        let TenancyError::Invalid(errors) = err else { panic!("expected Invalid, got {err:?}") };
        assert_eq!(errors.fields(), vec!["slug"]);
    }

    #[test]
    fn transition_table_is_as_documented() {
        use TenantStatus::*;
        use TenantTransition::*;
        let expected = [
            (Trial, Activate, Some(Active)),
            (Trial, Suspend, Some(Suspended)),
            (Trial, Deactivate, Some(Inactive)),
            (Active, Activate, None),
            (Active, Suspend, Some(Suspended)),
            (Active, Deactivate, Some(Inactive)),
            (Suspended, Activate, Some(Active)),
            (Suspended, Suspend, None),
            (Suspended, Deactivate, Some(Inactive)),
            (Inactive, Activate, Some(Active)),
            (Inactive, Suspend, None),
            (Inactive, Deactivate, None),
        ];
        for (from, action, to) in expected {
            match (from.apply(action), to) {
                (Ok(got), Some(want)) => assert_eq!(got, want, "{from} + {action}"),
                (Err(TenancyError::InvalidTransition { from: f, action: a }), None) => {
                    assert_eq!((f, a), (from, action));
                }
                (got, want) => panic!("{from} + {action}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn apply_stamps_the_change_time() {
        let suspended = tenant().apply(TenantTransition::Suspend, at(10)).unwrap();
        assert_eq!(
            (suspended.status, suspended.updated_at, suspended.created_at),
            (TenantStatus::Suspended, at(10), at(9))
        );
    }

    #[test]
    fn the_platform_tenant_cannot_be_taken_out_of_service() {
        let platform = Tenant { id: PLATFORM_TENANT_ID, status: TenantStatus::Active, ..tenant() };
        for action in [TenantTransition::Suspend, TenantTransition::Deactivate] {
            assert!(matches!(platform.apply(action, at(10)), Err(TenancyError::PlatformTenantProtected)));
        }
        assert!(matches!(platform.delete(at(10)), Err(TenancyError::PlatformTenantProtected)));
        let inactive_platform = Tenant { status: TenantStatus::Inactive, ..platform };
        assert_eq!(
            inactive_platform.apply(TenantTransition::Activate, at(10)).unwrap().status,
            TenantStatus::Active
        );
    }

    #[test]
    fn delete_is_soft_and_closes_the_tenant() {
        let deleted = tenant().delete(at(11)).unwrap();
        assert_eq!(deleted.deleted_at, Some(at(11)));
        assert_eq!(deleted.status, TenantStatus::Inactive);
        assert_eq!(deleted.slug, "acme", "the slug stays reserved");
    }

    #[test]
    fn update_replaces_editable_fields_and_keeps_the_rest() {
        let before = tenant();
        let command = UpdateTenant {
            name: "Acme Homes".into(),
            contact_email: "hello@acme.example".into(),
            phone: None,
            industry: None,
            metadata: Some(serde_json::json!({"crmId": 7})),
        };
        let after = before.update(command, true, at(12)).unwrap();
        assert_eq!(after.name, "Acme Homes");
        assert_eq!(after.phone, None);
        assert_eq!(after.metadata, serde_json::json!({"crmId": 7}));
        assert_eq!(
            (after.id, after.slug.as_str(), after.status, after.created_at),
            (before.id, "acme", before.status, at(9))
        );
        assert_eq!(after.updated_at, at(12));
    }

    #[test]
    fn only_the_platform_changes_an_industry() {
        let before = tenant();
        let command = |industry: Option<&str>| UpdateTenant {
            name: "Acme".into(),
            contact_email: "ops@acme.example".into(),
            phone: None,
            industry: industry.map(str::to_owned),
            metadata: None,
        };
        let err = before.update(command(Some("trucking")), false, at(12)).unwrap_err();
        assert!(matches!(err, TenancyError::IndustryLocked), "{err:?}");
        assert!(matches!(before.update(command(None), false, at(12)), Err(TenancyError::IndustryLocked)));
        assert!(before.update(command(Some("property_management")), false, at(12)).is_ok(), "unchanged");
        let changed = before.update(command(Some("trucking")), true, at(12)).unwrap();
        assert_eq!(changed.industry.as_deref(), Some("trucking"));
    }

    #[test]
    fn storage_names_round_trip() {
        for status in TenantStatus::ALL {
            assert_eq!(TenantStatus::from_storage(status.as_str()), Some(status));
        }
        assert_eq!(TenantStatus::from_storage("ACTIVE"), None);
    }

    #[test]
    fn json_uses_camel_case_and_upper_case_status() {
        let json = serde_json::to_value(tenant()).unwrap();
        assert_eq!(json["contactEmail"], "ops@acme.example");
        assert_eq!(json["status"], "TRIAL");
        assert!(json.get("deletedAt").is_none());
    }
}

/// What anyone may know of a tenant, by its slug: enough for its sign-in
/// page, branded. Only tenants in service (active or trial) are found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f",
    "name": "Acme Property Management",
    "slug": "acme-property",
    "displayName": "Acme Homes",
    "primaryColor": "#1a73e8",
    "accentColor": "#ff9900",
    "hasLogo": true
})))]
#[serde(rename_all = "camelCase")]
pub struct PublicTenant {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: TenantId,
    /// Its name.
    pub name: String,
    /// Its slug.
    pub slug: String,
    /// The name its portal shows, if branded.
    pub display_name: Option<String>,
    /// Its main colour (`#rrggbb`), if branded.
    pub primary_color: Option<String>,
    /// Its second colour, if branded.
    pub accent_color: Option<String>,
    /// Whether `GET /api/v1/public/tenant/logo` has a logo to show.
    pub has_logo: bool,
}
