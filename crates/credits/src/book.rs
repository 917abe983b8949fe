//! The arithmetic of one wallet: what each operation does to its balance,
//! its holds and its grants, and which ledger entries it writes. Pure: the
//! store loads a [`Book`], applies an operation under the wallet's lock,
//! and writes what the book says.

use chrono::{DateTime, Utc};
use portico_kernel::{EntryId, GrantId, ReservationId};

use crate::{Channel, CreditsError, Draw, Drawable, EntryKind, GrantSource, allocate, split_draws};

/// A grant an operation creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGrant {
    /// Its id.
    pub id: GrantId,
    /// Where it came from.
    pub source: GrantSource,
    /// Credits granted.
    pub amount: i64,
    /// Lower is drawn first.
    pub priority: i16,
    /// When its remaining credits expire.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A ledger entry an operation writes (the store adds wallet, reference and actor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryDraft {
    /// Its id.
    pub id: EntryId,
    /// The grant it adds to or draws from.
    pub grant: GrantId,
    /// What it records.
    pub kind: EntryKind,
    /// Credits in (positive) or out (negative).
    pub amount: i64,
    /// The wallet's balance right after it.
    pub balance_after: i64,
    /// The reservation it captures.
    pub reservation: Option<ReservationId>,
    /// Why.
    pub note: Option<String>,
}

/// One wallet's balance, holds and open grants at `now`, and what the
/// operations applied to it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Book {
    /// The wallet's channel.
    pub channel: Channel,
    /// Credits granted and neither spent nor expired (the sum of the entries).
    pub balance: i64,
    /// Credits held by open reservations.
    pub held: i64,
    /// The grants with credits left (and any a hold is returned to), new ones included.
    pub grants: Vec<Drawable>,
    /// Grants created (also in `grants`).
    pub new_grants: Vec<NewGrant>,
    /// Entries of the operation itself.
    pub entries: Vec<EntryDraft>,
    /// Expiry entries of grants that ran out (the platform's doing, not the caller's).
    pub expired: Vec<EntryDraft>,
    now: DateTime<Utc>,
}

impl Book {
    /// A `channel` wallet with `balance` and `held` credits and its open `grants`, at `now`.
    #[must_use]
    pub fn new(channel: Channel, balance: i64, held: i64, grants: Vec<Drawable>, now: DateTime<Utc>) -> Self {
        Self {
            channel,
            balance,
            held,
            grants,
            new_grants: Vec::new(),
            entries: Vec::new(),
            expired: Vec::new(),
            now,
        }
    }

    /// What a debit or reservation can use: `balance - held`.
    #[must_use]
    pub const fn available(&self) -> i64 {
        self.balance - self.held
    }

    /// The instant the book works at.
    #[must_use]
    pub const fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Expires what is left of every grant whose expiry has come.
    pub fn expire_due(&mut self) {
        let now = self.now;
        let due: Vec<(GrantId, i64)> = self
            .grants
            .iter()
            .filter(|g| g.remaining > 0 && g.expires_at.is_some_and(|at| at <= now))
            .map(|g| (g.id, g.remaining))
            .collect();
        for (grant, remaining) in due {
            if let Some(entry) = self.take(grant, remaining, EntryKind::Expiry, None, None) {
                self.expired.push(entry);
            }
        }
    }

    /// Adds a grant of `amount` credits; its id.
    pub fn grant(
        &mut self,
        source: GrantSource,
        amount: i64,
        priority: i16,
        expires_at: Option<DateTime<Utc>>,
        note: Option<&str>,
    ) -> GrantId {
        let id = GrantId::new();
        self.new_grants.push(NewGrant { id, source, amount, priority, expires_at });
        let paid = source.is_paid();
        self.grants.push(Drawable {
            id,
            priority,
            expires_at,
            paid,
            created_at: self.now,
            remaining: amount,
        });
        self.balance += amount;
        let entry = self.draft(id, EntryKind::Grant, amount, None, note);
        self.entries.push(entry);
        id
    }

    /// Spends `amount` credits now, in draw order, as entries of `kind`
    /// (a debit, or an adjustment down). Fails, changing nothing, when the
    /// usable grants hold less.
    pub fn spend(&mut self, amount: i64, kind: EntryKind, note: Option<&str>) -> Result<(), CreditsError> {
        for draw in self.allocate(amount)? {
            if let Some(entry) = self.take(draw.grant, draw.amount, kind, None, note) {
                self.entries.push(entry);
            }
        }
        Ok(())
    }

    /// Holds `amount` credits: they leave their grants but stay in the
    /// balance. The draws say where they came from.
    pub fn hold(&mut self, amount: i64) -> Result<Vec<Draw>, CreditsError> {
        let draws = self.allocate(amount)?;
        for draw in &draws {
            if let Some(grant) = self.grants.iter_mut().find(|g| g.id == draw.grant) {
                grant.remaining -= draw.amount;
            }
        }
        self.held += amount;
        Ok(draws)
    }

    /// Ends a hold of `draws`: `spent` of its credits are captured (entries
    /// in the hold's own order), the rest go back to their grants, and any
    /// of those that expired meanwhile expire now. `release` is `spent = 0`.
    /// Every grant of `draws` must be in the book.
    pub fn settle_hold(&mut self, draws: &[Draw], spent: i64, reservation: ReservationId) {
        let total: i64 = draws.iter().map(|d| d.amount).sum();
        let (captured, returned) = split_draws(draws, spent);
        for draw in &returned {
            if let Some(grant) = self.grants.iter_mut().find(|g| g.id == draw.grant) {
                grant.remaining += draw.amount;
            }
        }
        self.held -= total;
        for draw in captured {
            self.balance -= draw.amount;
            let entry = self.draft(draw.grant, EntryKind::Capture, -draw.amount, Some(reservation), None);
            self.entries.push(entry);
        }
        self.expire_due();
    }

    fn allocate(&self, amount: i64) -> Result<Vec<Draw>, CreditsError> {
        allocate(&self.grants, amount, self.now).map_err(|short| CreditsError::InsufficientBalance {
            channel: self.channel,
            requested: amount,
            available: short.available,
        })
    }

    /// Takes `amount` out of `grant` and the balance; the entry that records it.
    fn take(
        &mut self,
        grant: GrantId,
        amount: i64,
        kind: EntryKind,
        reservation: Option<ReservationId>,
        note: Option<&str>,
    ) -> Option<EntryDraft> {
        let row = self.grants.iter_mut().find(|g| g.id == grant)?;
        row.remaining -= amount;
        self.balance -= amount;
        Some(self.draft(grant, kind, -amount, reservation, note))
    }

    fn draft(
        &self,
        grant: GrantId,
        kind: EntryKind,
        amount: i64,
        reservation: Option<ReservationId>,
        note: Option<&str>,
    ) -> EntryDraft {
        EntryDraft {
            id: EntryId::new(),
            grant,
            kind,
            amount,
            balance_after: self.balance,
            reservation,
            note: note.map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn grant(remaining: i64, expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Drawable {
        Drawable { id: GrantId::new(), priority: 50, expires_at, paid: true, created_at: now, remaining }
    }

    /// The invariant every operation keeps: balance = Σ remaining + held.
    fn balanced(book: &Book) -> bool {
        book.balance == book.grants.iter().map(|g| g.remaining).sum::<i64>() + book.held
    }

    #[test]
    fn a_hold_moves_credits_out_of_grants_but_not_out_of_the_balance() {
        let now = Utc::now();
        let mut book = Book::new(Channel::Sms, 100, 0, vec![grant(100, None, now)], now);
        let draws = book.hold(30).unwrap();
        assert_eq!((book.balance, book.held, book.available()), (100, 30, 70));
        assert_eq!(draws.iter().map(|d| d.amount).sum::<i64>(), 30);
        assert!(book.entries.is_empty() && balanced(&book));
    }

    #[test]
    fn a_partial_capture_spends_part_and_returns_the_rest() {
        let now = Utc::now();
        let (a, b) = (grant(3, Some(now + Duration::days(1)), now), grant(10, None, now));
        let mut book = Book::new(Channel::Sms, 13, 0, vec![a, b], now);
        let draws = book.hold(5).unwrap();
        let reservation = ReservationId::new();
        book.settle_hold(&draws, 4, reservation);
        assert_eq!((book.balance, book.held, book.available()), (9, 0, 9));
        let spent: Vec<(GrantId, i64, i64)> =
            book.entries.iter().map(|e| (e.grant, e.amount, e.balance_after)).collect();
        assert_eq!(
            spent,
            vec![(a.id, -3, 10), (b.id, -1, 9)],
            "the soon-expiring grant first, then the other"
        );
        assert!(
            book.entries.iter().all(|e| e.kind == EntryKind::Capture && e.reservation == Some(reservation))
        );
        assert_eq!(book.grants[1].remaining, 9, "one credit went back to b");
        assert!(balanced(&book));
    }

    #[test]
    fn a_release_returns_everything_and_writes_nothing() {
        let now = Utc::now();
        let mut book = Book::new(Channel::Sms, 10, 0, vec![grant(10, None, now)], now);
        let draws = book.hold(10).unwrap();
        assert_eq!(book.available(), 0);
        book.settle_hold(&draws, 0, ReservationId::new());
        assert_eq!((book.balance, book.held, book.available()), (10, 0, 10));
        assert!(book.entries.is_empty() && balanced(&book));
    }

    #[test]
    fn credits_returned_to_a_grant_that_expired_meanwhile_expire() {
        let now = Utc::now();
        let soon = grant(10, Some(now + Duration::minutes(5)), now);
        let mut book = Book::new(Channel::Sms, 10, 0, vec![soon], now);
        let draws = book.hold(4).unwrap();
        // Later: the hold is released after the grant's expiry.
        let mut later = Book::new(
            Channel::Sms,
            book.balance,
            book.held,
            book.grants.clone(),
            now + Duration::minutes(10),
        );
        later.expire_due();
        assert_eq!((later.balance, later.held), (4, 4), "the 6 unheld credits expired");
        later.settle_hold(&draws, 0, ReservationId::new());
        assert_eq!((later.balance, later.held, later.available()), (0, 0, 0));
        assert_eq!(later.expired.iter().map(|e| e.amount).collect::<Vec<_>>(), vec![-6, -4]);
        assert!(later.entries.is_empty() && balanced(&later));
    }

    #[test]
    fn expiry_takes_the_unused_part_of_a_partly_used_grant() {
        let now = Utc::now();
        let promo = grant(100, Some(now + Duration::days(1)), now);
        let mut book = Book::new(Channel::Sms, 100, 0, vec![promo], now);
        book.spend(30, EntryKind::Debit, None).unwrap();
        let mut later =
            Book::new(Channel::Sms, book.balance, book.held, book.grants.clone(), now + Duration::days(2));
        later.expire_due();
        assert_eq!(later.expired.len(), 1);
        assert_eq!((later.expired[0].amount, later.expired[0].balance_after), (-70, 0));
        assert_eq!(later.balance, 0);
        assert!(balanced(&later));
    }

    #[test]
    fn spending_more_than_is_available_changes_nothing() {
        let now = Utc::now();
        let mut book = Book::new(Channel::Sms, 10, 4, vec![grant(6, None, now)], now);
        let before = book.clone();
        assert!(matches!(
            book.spend(7, EntryKind::Debit, None),
            Err(CreditsError::InsufficientBalance { requested: 7, available: 6, .. })
        ));
        assert!(book.hold(7).is_err());
        assert_eq!(book, before);
    }

    #[test]
    fn credits_granted_can_be_spent_in_the_same_book() {
        let now = Utc::now();
        let mut book = Book::new(Channel::Sms, 0, 0, Vec::new(), now);
        let id = book.grant(GrantSource::Refund, 10, 50, None, Some("failed send"));
        book.spend(3, EntryKind::Debit, None).unwrap();
        assert_eq!(book.grants.iter().find(|g| g.id == id).map(|g| g.remaining), Some(7));
        assert_eq!(book.entries.iter().map(|e| e.balance_after).collect::<Vec<_>>(), vec![10, 7]);
        assert!(balanced(&book));
    }

    #[test]
    fn a_grant_adds_to_the_balance_with_one_entry() {
        let now = Utc::now();
        let mut book = Book::new(Channel::Sms, 0, 0, Vec::new(), now);
        let id = book.grant(GrantSource::Promotional, 25, 50, None, Some("welcome"));
        assert_eq!((book.balance, book.entries.len()), (25, 1));
        assert_eq!(
            (book.entries[0].grant, book.entries[0].amount, book.entries[0].balance_after),
            (id, 25, 25)
        );
        assert_eq!(book.new_grants[0].amount, 25);
    }
}
