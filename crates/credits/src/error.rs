//! Everything that can go wrong with credits, each with a stable code.

use portico_kernel::{Currency, DomainError, ErrorKind, InfraError, ValidationErrors};

use crate::{Channel, ReservationStatus};

/// A failed credits operation. A failed operation moves nothing.
#[derive(Debug, thiserror::Error)]
pub enum CreditsError {
    /// The command's fields break the rules; each failing field is named.
    #[error("invalid request: {0}")]
    Invalid(ValidationErrors),
    /// The wallet cannot cover a debit or reservation.
    #[error("{requested} {channel} credits asked, {available} available")]
    InsufficientBalance {
        /// The wallet's channel.
        channel: Channel,
        /// What was asked.
        requested: i64,
        /// What could be used.
        available: i64,
    },
    /// The platform's master wallet cannot cover a sale or grant.
    #[error("the platform cannot supply {requested} {channel} credits right now")]
    MasterInsufficient {
        /// The channel.
        channel: Channel,
        /// What was asked.
        requested: i64,
    },
    /// No such wallet in the tenant.
    #[error("wallet not found")]
    WalletNotFound,
    /// No such reservation in the tenant.
    #[error("reservation not found")]
    ReservationNotFound,
    /// The reservation was already captured, released or expired.
    #[error("the reservation is already {0}")]
    ReservationSettled(ReservationStatus),
    /// The hold ran out before the capture; its credits went back.
    #[error("the reservation expired before it was captured")]
    ReservationExpired,
    /// A capture of more than was held, or of nothing.
    #[error("cannot capture {requested} of {held} held credits")]
    CaptureExceedsHold {
        /// Credits held.
        held: i64,
        /// Credits asked.
        requested: i64,
    },
    /// No such package.
    #[error("package not found")]
    PackageNotFound,
    /// The package is switched off.
    #[error("the package is not on sale")]
    PackageInactive,
    /// Another package has this name.
    #[error("another package is called this")]
    PackageNameTaken,
    /// No such custom plan.
    #[error("custom plan not found")]
    PlanNotFound,
    /// Neither a custom plan nor the price list prices this purchase.
    #[error("no price for {channel} credits in {currency}")]
    NoPrice {
        /// The channel.
        channel: Channel,
        /// The currency.
        currency: Currency,
    },
    /// The reference was used for another operation in this tenant.
    #[error("this reference was used for another operation")]
    ReferenceReused,
    /// Only the platform's staff may grant credits other than by purchase.
    #[error("only the platform's staff may grant {0} credits")]
    SourceNotAllowed(&'static str),
    /// The store failed; details go to the logs, not the caller.
    #[error(transparent)]
    Store(#[from] InfraError),
}

impl DomainError for CreditsError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) | Self::CaptureExceedsHold { .. } | Self::NoPrice { .. } => {
                ErrorKind::Validation
            }
            Self::InsufficientBalance { .. } => ErrorKind::PaymentRequired,
            Self::WalletNotFound | Self::ReservationNotFound | Self::PackageNotFound | Self::PlanNotFound => {
                ErrorKind::NotFound
            }
            Self::MasterInsufficient { .. }
            | Self::ReservationSettled(_)
            | Self::ReservationExpired
            | Self::PackageInactive
            | Self::PackageNameTaken
            | Self::ReferenceReused => ErrorKind::Conflict,
            Self::SourceNotAllowed(_) => ErrorKind::Forbidden,
            Self::Store(infra) => infra.kind(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "credits.invalid",
            Self::InsufficientBalance { .. } => "credits.insufficient_balance",
            Self::MasterInsufficient { .. } => "credits.master_insufficient",
            Self::WalletNotFound => "credits.wallet_not_found",
            Self::ReservationNotFound => "credits.reservation_not_found",
            Self::ReservationSettled(_) => "credits.reservation_settled",
            Self::ReservationExpired => "credits.reservation_expired",
            Self::CaptureExceedsHold { .. } => "credits.capture_exceeds_hold",
            Self::PackageNotFound => "credits.package_not_found",
            Self::PackageInactive => "credits.package_inactive",
            Self::PackageNameTaken => "credits.package_name_taken",
            Self::PlanNotFound => "credits.plan_not_found",
            Self::NoPrice { .. } => "credits.no_price",
            Self::ReferenceReused => "credits.reference_reused",
            Self::SourceNotAllowed(_) => "credits.source_not_allowed",
            Self::Store(infra) if infra.kind() == ErrorKind::Unavailable => "store.unavailable",
            Self::Store(_) => "internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_namespaced_and_short_balance_is_payment_required() {
        let short = CreditsError::InsufficientBalance { channel: Channel::Sms, requested: 5, available: 2 };
        assert_eq!(
            (short.kind(), short.code()),
            (ErrorKind::PaymentRequired, "credits.insufficient_balance")
        );
        assert_eq!(short.to_string(), "5 sms credits asked, 2 available");
        let infra = CreditsError::Store(InfraError::unavailable("down"));
        assert_eq!(infra.code(), "store.unavailable");
    }
}
