//! Typed UUIDv7 identifiers: a `TenantId` can never be passed where a `UserId` is meant.

use std::fmt;
use std::str::FromStr;

/// The error of parsing an id from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid {kind}: expected a UUID")]
pub struct IdParseError {
    /// The id type that was being parsed (`TenantId`, ...).
    pub kind: &'static str,
    /// The rejected text, cut to 64 characters.
    pub input: String,
}

/// Declares a typed id: a UUIDv7 newtype, serialised as its hyphenated string.
macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) id.
            #[must_use]
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }

            /// Wraps an existing UUID (read from storage or a trusted source).
            #[must_use]
            pub const fn from_uuid(uuid: uuid::Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            #[must_use]
            pub const fn as_uuid(&self) -> &uuid::Uuid {
                &self.0
            }

            /// The underlying UUID, by value.
            #[must_use]
            pub const fn into_uuid(self) -> uuid::Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::try_parse(s).map(Self).map_err(|_| IdParseError {
                    kind: stringify!($name),
                    input: s.chars().take(64).collect(),
                })
            }
        }

        impl From<$name> for uuid::Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(&self.0.hyphenated())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

typed_id!(
    /// A tenant: one business on the platform.
    TenantId
);
typed_id!(
    /// A person with credentials (identity is global; memberships are per tenant).
    UserId
);
typed_id!(
    /// A tenant's API key, as an actor.
    ApiKeyId
);
typed_id!(
    /// One row of the audit trail.
    AuditId
);
typed_id!(
    /// A background job.
    JobId
);
typed_id!(
    /// A person's membership of one tenant.
    MembershipId
);
typed_id!(
    /// A signed-in device: one chain of refresh tokens.
    SessionId
);
typed_id!(
    /// A tenant's custom role.
    RoleId
);
typed_id!(
    /// A tenant's credit wallet for one channel.
    WalletId
);
typed_id!(
    /// A place meters belong to: a property, a building, a unit.
    SiteId
);
typed_id!(
    /// A meter (a physical register, or a stream of usage quantities).
    MeterId
);
typed_id!(
    /// One reading of a meter.
    ReadingId
);
typed_id!(
    /// An external system a tenant's readings are pulled from (a charge controller).
    MeterSourceId
);
typed_id!(
    /// A billable metric: how usage events add up to a billable quantity.
    MetricId
);
typed_id!(
    /// A lead: someone who might buy, not yet a customer.
    LeadId
);
typed_id!(
    /// A contact: a person the tenant deals with.
    ContactId
);
typed_id!(
    /// A company the tenant deals with.
    CompanyId
);
typed_id!(
    /// A sales pipeline: ordered stages deals move through.
    PipelineId
);
typed_id!(
    /// A stage of a pipeline.
    StageId
);
typed_id!(
    /// A deal: a possible sale moving through a pipeline.
    DealId
);
typed_id!(
    /// An activity: a call, email, meeting, note or task.
    ActivityId
);
typed_id!(
    /// A support ticket.
    TicketId
);
typed_id!(
    /// A comment on a support ticket.
    CommentId
);
typed_id!(
    /// A grant of credits to a wallet (what a debit draws from).
    GrantId
);
typed_id!(
    /// Credits held for a send about to happen.
    ReservationId
);
typed_id!(
    /// A named bundle of credits for sale.
    PackageId
);
typed_id!(
    /// A tenant's negotiated credit prices.
    CustomPlanId
);
typed_id!(
    /// One line of a credit ledger.
    EntryId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_uuid_v7_and_time_ordered() {
        let first = TenantId::new();
        let second = TenantId::new();
        assert_eq!(first.as_uuid().get_version_num(), 7);
        assert!(first < second, "v7 ids sort by creation time");
    }

    #[test]
    fn ids_round_trip_through_text() {
        let id = UserId::new();
        assert_eq!(id.to_string().parse::<UserId>(), Ok(id));
    }

    #[test]
    fn parse_error_names_the_id_type_and_input() {
        let err = "not-a-uuid".parse::<TenantId>().unwrap_err();
        assert_eq!(err.kind, "TenantId");
        assert_eq!(err.input, "not-a-uuid");
        assert_eq!(err.to_string(), "`not-a-uuid` is not a valid TenantId: expected a UUID");
    }

    #[test]
    fn serde_uses_the_plain_string() {
        let id: TenantId = "01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"01890a5d-ac96-774b-bcce-b302099a8057\"");
        assert_eq!(serde_json::from_str::<TenantId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<TenantId>("\"nope\"").is_err());
        assert!(serde_json::from_str::<TenantId>("42").is_err());
    }

    #[test]
    fn debug_names_the_type() {
        let id: ApiKeyId = "01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap();
        assert_eq!(format!("{id:?}"), "ApiKeyId(01890a5d-ac96-774b-bcce-b302099a8057)");
    }

    #[test]
    fn platform_tenant_id_is_a_valid_v7_uuid() {
        let id = crate::PLATFORM_TENANT_ID;
        assert_eq!(id.as_uuid().get_version_num(), 7);
        assert_eq!(id.to_string(), "00000000-0000-7000-8000-000000000001");
    }
}
