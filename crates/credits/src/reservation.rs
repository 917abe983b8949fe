//! Reservations: credits held for a send about to happen, then captured
//! (spent) or released (given back).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use portico_kernel::{ReservationId, WalletId};
use serde::{Deserialize, Serialize};

use crate::{Channel, CreditsError};

/// How long a hold lasts when the caller does not say: a send that has not
/// settled by then is assumed lost and its credits return to the wallet.
pub const DEFAULT_HOLD_SECS: u32 = 15 * 60;
/// The longest hold a caller may ask for.
pub const MAX_HOLD_SECS: u32 = 24 * 3600;

/// Where a reservation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    /// Credits are held.
    Held,
    /// Spent (wholly or in part; the rest went back).
    Captured,
    /// Given back by the caller.
    Released,
    /// Given back because nobody settled it in time.
    Expired,
}

impl ReservationStatus {
    /// Every status.
    pub const ALL: [Self; 4] = [Self::Held, Self::Captured, Self::Released, Self::Expired];

    /// The name stored and sent.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Captured => "captured",
            Self::Released => "released",
            Self::Expired => "expired",
        }
    }
}

impl fmt::Display for ReservationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReservationStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|s| s.as_str() == text).ok_or_else(|| format!("unknown status `{text}`"))
    }
}

/// A reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e62", "walletId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f",
    "channel": "sms", "amount": 3, "captured": 0, "status": "held", "reference": "msg-2026-11-24-0001",
    "expiresAt": "2026-11-24T10:45:00Z", "createdAt": "2026-11-24T10:30:00Z", "settledAt": null
})))]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    /// The reservation.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: ReservationId,
    /// The wallet holding the credits.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub wallet_id: WalletId,
    /// The wallet's channel.
    pub channel: Channel,
    /// Credits held.
    pub amount: i64,
    /// Credits spent when it was captured.
    pub captured: i64,
    /// Where it is in its life.
    pub status: ReservationStatus,
    /// The reference key it was made with.
    pub reference: String,
    /// When an unsettled hold is given back.
    pub expires_at: DateTime<Utc>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was captured, released or expired.
    pub settled_at: Option<DateTime<Utc>>,
}

impl Reservation {
    /// How many credits a capture of `amount` (all of them when `None`)
    /// spends at `now`; the rest of the hold goes back to the wallet.
    pub fn capture(&self, amount: Option<i64>, now: DateTime<Utc>) -> Result<i64, CreditsError> {
        self.open(now)?;
        let amount = amount.unwrap_or(self.amount);
        if amount < 1 || amount > self.amount {
            return Err(CreditsError::CaptureExceedsHold { held: self.amount, requested: amount });
        }
        Ok(amount)
    }

    /// Checks that a release is allowed: the hold is still open. (A hold
    /// past its expiry is given back by whatever touches the wallet first,
    /// so a late release finds it expired.)
    pub fn release(&self) -> Result<(), CreditsError> {
        match self.status {
            ReservationStatus::Held => Ok(()),
            // Its credits went back when it lapsed: said as a capture would say it.
            ReservationStatus::Expired => Err(CreditsError::ReservationExpired),
            settled => Err(CreditsError::ReservationSettled(settled)),
        }
    }

    fn open(&self, now: DateTime<Utc>) -> Result<(), CreditsError> {
        match self.status {
            ReservationStatus::Held if self.expires_at <= now => Err(CreditsError::ReservationExpired),
            ReservationStatus::Held => Ok(()),
            ReservationStatus::Expired => Err(CreditsError::ReservationExpired),
            settled => Err(CreditsError::ReservationSettled(settled)),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn held(amount: i64, now: DateTime<Utc>) -> Reservation {
        Reservation {
            id: ReservationId::new(),
            wallet_id: WalletId::new(),
            channel: Channel::Sms,
            amount,
            captured: 0,
            status: ReservationStatus::Held,
            reference: "r".into(),
            expires_at: now + Duration::minutes(15),
            created_at: now,
            settled_at: None,
        }
    }

    #[test]
    fn a_capture_spends_all_or_part_of_the_hold_never_more() {
        let now = Utc::now();
        let r = held(5, now);
        assert_eq!(r.capture(None, now).unwrap(), 5);
        assert_eq!(r.capture(Some(2), now).unwrap(), 2);
        assert!(matches!(
            r.capture(Some(6), now),
            Err(CreditsError::CaptureExceedsHold { held: 5, requested: 6 })
        ));
        assert!(matches!(r.capture(Some(0), now), Err(CreditsError::CaptureExceedsHold { .. })));
    }

    #[test]
    fn a_settled_or_expired_hold_cannot_be_captured() {
        let now = Utc::now();
        let late = now + Duration::minutes(15);
        assert!(matches!(held(5, now).capture(None, late), Err(CreditsError::ReservationExpired)));
        let swept = Reservation { status: ReservationStatus::Expired, ..held(5, now) };
        assert!(matches!(swept.capture(None, now), Err(CreditsError::ReservationExpired)));
        assert!(matches!(swept.release(), Err(CreditsError::ReservationExpired)), "the same word either way");
        for status in [ReservationStatus::Captured, ReservationStatus::Released] {
            let r = Reservation { status, ..held(5, now) };
            assert!(matches!(r.capture(None, now), Err(CreditsError::ReservationSettled(s)) if s == status));
            assert!(matches!(r.release(), Err(CreditsError::ReservationSettled(s)) if s == status));
        }
        assert!(held(5, now).release().is_ok());
    }
}
