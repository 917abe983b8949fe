//! Grants: how credits arrive in a wallet, and the one rule that decides
//! which grants a debit draws from.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use portico_kernel::{GrantId, WalletId};
use serde::{Deserialize, Serialize};

use crate::Channel;

/// Where a grant's credits came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum GrantSource {
    /// Bought by the tenant at the price list or its custom plan.
    Purchase,
    /// Bought as part of a package.
    Package,
    /// Given for free (a welcome grant, a campaign).
    Promotional,
    /// Given back for a failed or disputed send.
    Refund,
    /// Added by the platform's staff, with a reason.
    Adjustment,
}

impl GrantSource {
    /// Every source.
    pub const ALL: [Self; 5] =
        [Self::Purchase, Self::Package, Self::Promotional, Self::Refund, Self::Adjustment];

    /// The name stored and sent.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Purchase => "purchase",
            Self::Package => "package",
            Self::Promotional => "promotional",
            Self::Refund => "refund",
            Self::Adjustment => "adjustment",
        }
    }

    /// Whether credits of this source were paid for (purchase, package);
    /// free credits are spent before paid ones at equal priority and expiry.
    #[must_use]
    pub const fn is_paid(self) -> bool {
        matches!(self, Self::Purchase | Self::Package)
    }
}

impl fmt::Display for GrantSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GrantSource {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| format!("unknown grant source `{text}`"))
    }
}

/// The default priority of a grant: lower numbers are drawn first.
pub const DEFAULT_PRIORITY: i16 = 50;

/// A grant as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e60", "walletId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f",
    "channel": "sms", "source": "package", "amount": 1000, "remaining": 640, "priority": 50,
    "expiresAt": "2027-11-23T00:00:00Z", "paid": true, "createdAt": "2026-11-23T09:00:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    /// The grant.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: GrantId,
    /// The wallet it belongs to.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub wallet_id: WalletId,
    /// The wallet's channel.
    pub channel: Channel,
    /// Where it came from.
    pub source: GrantSource,
    /// Credits granted.
    pub amount: i64,
    /// Credits neither spent, held nor expired.
    pub remaining: i64,
    /// Lower is drawn first.
    pub priority: i16,
    /// After this instant its remaining credits expire.
    pub expires_at: Option<DateTime<Utc>>,
    /// Paid for (drawn after free credits at equal priority and expiry).
    pub paid: bool,
    /// When it was granted.
    pub created_at: DateTime<Utc>,
}

/// What the draw order needs of a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drawable {
    /// The grant.
    pub id: GrantId,
    /// Lower is drawn first.
    pub priority: i16,
    /// When it expires, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// Paid credits are drawn after free ones.
    pub paid: bool,
    /// When it was granted.
    pub created_at: DateTime<Utc>,
    /// Credits that can still be drawn.
    pub remaining: i64,
}

impl From<&Grant> for Drawable {
    fn from(grant: &Grant) -> Self {
        Self {
            id: grant.id,
            priority: grant.priority,
            expires_at: grant.expires_at,
            paid: grant.paid,
            created_at: grant.created_at,
            remaining: grant.remaining,
        }
    }
}

impl Drawable {
    /// Whether it can be drawn from at `now` (not expired, something left).
    #[must_use]
    pub fn usable(&self, now: DateTime<Utc>) -> bool {
        self.remaining > 0 && self.expires_at.is_none_or(|at| at > now)
    }
}

/// The order in which grants are drawn: priority (lower first), then the
/// earliest expiry (a grant that never expires last), then free before
/// paid, then the oldest; the id settles the rest, so the order is total.
#[must_use]
pub fn draw_order(a: &Drawable, b: &Drawable) -> Ordering {
    let expiry = match (a.expires_at, b.expires_at) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    a.priority
        .cmp(&b.priority)
        .then(expiry)
        .then(a.paid.cmp(&b.paid))
        .then(a.created_at.cmp(&b.created_at))
        .then(a.id.cmp(&b.id))
}

/// Some credits of one grant, drawn by a debit or held by a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Draw {
    /// The grant drawn from.
    pub grant: GrantId,
    /// How many of its credits.
    pub amount: i64,
}

/// The usable grants cannot cover a debit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    /// What was asked.
    pub requested: i64,
    /// What the usable grants hold.
    pub available: i64,
}

/// Which grants a debit (or hold) of `amount` draws from at `now`, and how
/// much from each, in [`draw_order`]; expired and empty grants are passed
/// over. Fails, drawing nothing, when the usable grants hold less.
pub fn allocate(grants: &[Drawable], amount: i64, now: DateTime<Utc>) -> Result<Vec<Draw>, Shortfall> {
    let mut usable: Vec<&Drawable> = grants.iter().filter(|g| g.usable(now)).collect();
    let available = usable.iter().map(|g| g.remaining).sum::<i64>();
    if amount <= 0 || available < amount {
        return Err(Shortfall { requested: amount, available });
    }
    usable.sort_by(|a, b| draw_order(a, b));
    let mut left = amount;
    let mut draws = Vec::new();
    for grant in usable {
        if left == 0 {
            break;
        }
        let take = grant.remaining.min(left);
        draws.push(Draw { grant: grant.id, amount: take });
        left -= take;
    }
    Ok(draws)
}

/// Splits the draws of a hold into what a capture of `amount` spends and
/// what goes back to the grants: the hold's own order is kept, so the
/// credits spent are the ones that would have been drawn first.
#[must_use]
pub fn split_draws(draws: &[Draw], amount: i64) -> (Vec<Draw>, Vec<Draw>) {
    let (mut spent, mut returned) = (Vec::new(), Vec::new());
    let mut left = amount.max(0);
    for draw in draws {
        let take = draw.amount.min(left);
        left -= take;
        if take > 0 {
            spent.push(Draw { grant: draw.grant, amount: take });
        }
        if draw.amount > take {
            returned.push(Draw { grant: draw.grant, amount: draw.amount - take });
        }
    }
    (spent, returned)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, 12, 0, 0).unwrap()
    }

    /// A paid grant of `remaining` credits, priority 50, no expiry, granted on day 1.
    fn grant(n: u128, remaining: i64) -> Drawable {
        Drawable {
            id: GrantId::from_uuid(uuid::Uuid::from_u128(n)),
            priority: DEFAULT_PRIORITY,
            expires_at: None,
            paid: true,
            created_at: at(1),
            remaining,
        }
    }

    fn drawn(grants: &[Drawable], amount: i64) -> Vec<(GrantId, i64)> {
        allocate(grants, amount, at(5)).unwrap().into_iter().map(|d| (d.grant, d.amount)).collect()
    }

    #[test]
    fn lower_priority_numbers_are_drawn_first() {
        let (a, b) = (Drawable { priority: 10, ..grant(1, 5) }, Drawable { priority: 1, ..grant(2, 5) });
        assert_eq!(drawn(&[a, b], 7), vec![(b.id, 5), (a.id, 2)]);
    }

    #[test]
    fn at_equal_priority_the_earliest_expiry_goes_first_and_no_expiry_last() {
        let never = grant(1, 5);
        let late = Drawable { expires_at: Some(at(20)), ..grant(2, 5) };
        let soon = Drawable { expires_at: Some(at(10)), ..grant(3, 5) };
        assert_eq!(drawn(&[never, late, soon], 12), vec![(soon.id, 5), (late.id, 5), (never.id, 2)]);
    }

    #[test]
    fn priority_outranks_expiry() {
        let soon_but_low = Drawable { priority: 90, expires_at: Some(at(6)), ..grant(1, 5) };
        let never_but_high = Drawable { priority: 10, ..grant(2, 5) };
        assert_eq!(drawn(&[soon_but_low, never_but_high], 5), vec![(never_but_high.id, 5)]);
    }

    #[test]
    fn at_equal_priority_and_expiry_free_credits_go_before_paid() {
        let paid = grant(1, 5);
        let free = Drawable { paid: false, created_at: at(3), ..grant(2, 5) };
        assert_eq!(drawn(&[paid, free], 6), vec![(free.id, 5), (paid.id, 1)]);
    }

    #[test]
    fn then_the_oldest_goes_first_and_the_id_breaks_a_full_tie() {
        let newer = Drawable { created_at: at(3), ..grant(1, 5) };
        let older = Drawable { created_at: at(2), ..grant(2, 5) };
        assert_eq!(drawn(&[newer, older], 6), vec![(older.id, 5), (newer.id, 1)]);
        let (x, y) = (grant(7, 5), grant(6, 5));
        assert_eq!(drawn(&[x, y], 5), vec![(y.id, 5)], "identical grants: the smaller id");
        assert_eq!(drawn(&[y, x], 5), vec![(y.id, 5)], "whatever the input order");
    }

    #[test]
    fn expired_and_empty_grants_are_passed_over() {
        let expired = Drawable { priority: 1, expires_at: Some(at(5)), ..grant(1, 50) };
        let empty = Drawable { priority: 1, ..grant(2, 0) };
        let live = grant(3, 5);
        assert_eq!(drawn(&[expired, empty, live], 5), vec![(live.id, 5)]);
    }

    #[test]
    fn a_debit_the_usable_grants_cannot_cover_draws_nothing() {
        let expired = Drawable { expires_at: Some(at(4)), ..grant(1, 50) };
        let live = grant(2, 5);
        assert_eq!(allocate(&[expired, live], 6, at(5)), Err(Shortfall { requested: 6, available: 5 }));
        assert_eq!(allocate(&[], 1, at(5)), Err(Shortfall { requested: 1, available: 0 }));
        assert!(allocate(&[live], 0, at(5)).is_err(), "nothing to draw is not a debit");
        assert!(allocate(&[live], -3, at(5)).is_err());
    }

    #[test]
    fn a_capture_spends_the_first_drawn_credits_and_returns_the_rest() {
        let (a, b) =
            (GrantId::from_uuid(uuid::Uuid::from_u128(1)), GrantId::from_uuid(uuid::Uuid::from_u128(2)));
        let held = [Draw { grant: a, amount: 3 }, Draw { grant: b, amount: 4 }];
        assert_eq!(
            split_draws(&held, 5),
            (
                vec![Draw { grant: a, amount: 3 }, Draw { grant: b, amount: 2 }],
                vec![Draw { grant: b, amount: 2 }]
            )
        );
        assert_eq!(split_draws(&held, 7), (held.to_vec(), vec![]));
        assert_eq!(split_draws(&held, 0), (vec![], held.to_vec()));
    }
}
