//! Credits on PostgreSQL: wallets, grants, the append-only ledger,
//! reservations, the master wallet and the catalogue.
//!
//! Every operation that moves credits runs in one transaction that first
//! locks the wallet row (an upsert by channel, or `FOR UPDATE` by id), so
//! operations on one wallet happen one after another and none reads a
//! balance another is changing. Under the lock it loads the wallet's open
//! grants, settles what is due (expired holds go back, expired grants
//! expire), lets the domain decide (`allocate`, `split_draws`, `crossing`),
//! and writes the grants, the entries, the wallet, the reference record,
//! the audit row and any alert job before it commits. A reference seen
//! before answers the stored result and moves nothing.

use chrono::{DateTime, Duration, Utc};
use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{
    Array, BigInt, Bool, Integer, Jsonb, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::FutureExt as _;
use portico_credits::{
    AddCredits, AdjustCredits, Book, Capture, Channel, ChannelPrice, CreditsError, CreditsLedger, CustomPlan,
    Debit, Draw, Drawable, Entry, EntryDraft, EntryKind, Grant, GrantSource, LowBalanceAlert, Movement,
    Package, PackageCredits, PackagePurchase, PriceTier, Reference, Reservation, ReservationStatus, Reserve,
    ThresholdCrossing, Wallet, WalletRef, WalletSettings, crossing, quote,
};
use portico_kernel::{
    Actor, AuditEntry, Clock, Currency, CustomPlanId, EntryId, GrantId, Money, NewJob, PLATFORM_TENANT_ID,
    PackageId, PlatformContext, ReservationId, TenantContext, TenantId, WalletId,
};
use serde_json::json;

use crate::error::{Failure, is_unique_violation};
use crate::store::now_of;
use crate::{Store, audit};

pub(crate) type CreditsFailure = Failure<CreditsError>;

pub(crate) fn resolve(failure: CreditsFailure) -> CreditsError {
    failure.resolve(|error| {
        if is_unique_violation(error, "credit_operations_pkey") {
            // The same reference, used at the same moment for an operation on another wallet.
            Some(CreditsError::ReferenceReused)
        } else if is_unique_violation(error, "credit_packages_name_key") {
            Some(CreditsError::PackageNameTaken)
        } else if matches!(error, diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ForeignKeyViolation, info)
            if info.constraint_name() == Some("credit_wallets_tenant_id_fkey"))
        {
            // A wallet created on first use for a tenant that does not exist (staff naming one with X-Tenant-ID).
            Some(CreditsError::WalletNotFound)
        } else {
            None
        }
    })
}

pub(crate) fn domain<T>(error: CreditsError) -> Result<T, CreditsFailure> {
    Err(Failure::Domain(error))
}

/// How an actor is written on ledger lines.
pub(crate) fn actor_text(actor: &Actor) -> String {
    match actor {
        Actor::User { user_id, .. } => format!("user:{user_id}"),
        Actor::ApiKey { key_id, .. } => format!("api_key:{key_id}"),
        Actor::System { name } => format!("system:{name}"),
    }
}

pub(crate) fn channel_of(text: &str) -> Result<Channel, CreditsFailure> {
    text.parse().map_err(|e| Failure::Infra(portico_kernel::InfraError::internal(e)))
}

pub(crate) fn corrupt(what: impl std::fmt::Display) -> CreditsFailure {
    Failure::Infra(portico_kernel::InfraError::internal(what.to_string()))
}

// ---------------------------------------------------------------------------
// Rows

#[derive(QueryableByName)]
pub(crate) struct WalletRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    channel: String,
    #[diesel(sql_type = BigInt)]
    balance: i64,
    #[diesel(sql_type = BigInt)]
    held: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    low_balance_threshold: Option<i64>,
    #[diesel(sql_type = Bool)]
    low_balance_alerted: bool,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
}

pub(crate) const WALLET_COLUMNS: &str =
    "id, channel, balance, held, low_balance_threshold, low_balance_alerted, created_at, updated_at";

impl WalletRow {
    pub(crate) fn into_wallet(self) -> Result<Wallet, CreditsFailure> {
        Ok(Wallet {
            id: WalletId::from_uuid(self.id),
            channel: channel_of(&self.channel)?,
            balance: self.balance,
            held: self.held,
            available: self.balance - self.held,
            low_balance_threshold: self.low_balance_threshold,
            low_balance: self.low_balance_alerted,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(QueryableByName)]
pub(crate) struct GrantRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    wallet_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    source: String,
    #[diesel(sql_type = BigInt)]
    amount: i64,
    #[diesel(sql_type = BigInt)]
    remaining: i64,
    #[diesel(sql_type = SmallInt)]
    priority: i16,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    expires_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Bool)]
    paid: bool,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

impl GrantRow {
    pub(crate) fn drawable(&self) -> Drawable {
        Drawable {
            id: GrantId::from_uuid(self.id),
            priority: self.priority,
            expires_at: self.expires_at,
            paid: self.paid,
            created_at: self.created_at,
            remaining: self.remaining,
        }
    }

    pub(crate) fn into_grant(self, channel: Channel) -> Result<Grant, CreditsFailure> {
        Ok(Grant {
            id: GrantId::from_uuid(self.id),
            wallet_id: WalletId::from_uuid(self.wallet_id),
            channel,
            source: self.source.parse().map_err(corrupt)?,
            amount: self.amount,
            remaining: self.remaining,
            priority: self.priority,
            expires_at: self.expires_at,
            paid: self.paid,
            created_at: self.created_at,
        })
    }
}

pub(crate) const GRANT_COLUMNS: &str =
    "id, wallet_id, source, amount, remaining, priority, expires_at, paid, created_at";

#[derive(QueryableByName)]
pub(crate) struct EntryRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    wallet_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    channel: String,
    #[diesel(sql_type = SqlUuid)]
    grant_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    amount: i64,
    #[diesel(sql_type = BigInt)]
    balance_after: i64,
    #[diesel(sql_type = Text)]
    reference: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    reservation_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Text)]
    actor: String,
    #[diesel(sql_type = Nullable<Text>)]
    note: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub(crate) total: i64,
}

impl EntryRow {
    pub(crate) fn into_entry(self) -> Result<Entry, CreditsFailure> {
        Ok(Entry {
            id: EntryId::from_uuid(self.id),
            wallet_id: WalletId::from_uuid(self.wallet_id),
            channel: channel_of(&self.channel)?,
            grant_id: GrantId::from_uuid(self.grant_id),
            kind: self.kind.parse().map_err(corrupt)?,
            amount: self.amount,
            balance_after: self.balance_after,
            reference: self.reference,
            reservation_id: self.reservation_id.map(ReservationId::from_uuid),
            actor: self.actor,
            note: self.note,
            created_at: self.created_at,
        })
    }
}

#[derive(QueryableByName)]
pub(crate) struct ReservationRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    wallet_id: uuid::Uuid,
    #[diesel(sql_type = BigInt)]
    amount: i64,
    #[diesel(sql_type = BigInt)]
    captured: i64,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Jsonb)]
    draws: serde_json::Value,
    #[diesel(sql_type = Text)]
    reference: String,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    settled_at: Option<DateTime<Utc>>,
}

pub(crate) const RESERVATION_COLUMNS: &str =
    "id, wallet_id, amount, captured, status, draws, reference, expires_at, created_at, settled_at";

impl ReservationRow {
    pub(crate) fn draws(&self) -> Result<Vec<Draw>, CreditsFailure> {
        serde_json::from_value(self.draws.clone()).map_err(corrupt)
    }

    pub(crate) fn into_reservation(self, channel: Channel) -> Result<Reservation, CreditsFailure> {
        Ok(Reservation {
            id: ReservationId::from_uuid(self.id),
            wallet_id: WalletId::from_uuid(self.wallet_id),
            channel,
            amount: self.amount,
            captured: self.captured,
            status: self.status.parse().map_err(corrupt)?,
            reference: self.reference,
            expires_at: self.expires_at,
            created_at: self.created_at,
            settled_at: self.settled_at,
        })
    }
}

#[derive(QueryableByName)]
struct OperationRow {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Jsonb)]
    request: serde_json::Value,
    #[diesel(sql_type = Jsonb)]
    result: serde_json::Value,
}

// ---------------------------------------------------------------------------
// Reference keys

/// The stored result of `reference` in `tenant`, if the operation ran before:
/// the same operation answers it again (marked replayed), another one is refused.
pub(crate) async fn replayed<T: serde::de::DeserializeOwned>(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    reference: &Reference,
    kind: &str,
    request: &serde_json::Value,
) -> Result<Option<T>, CreditsFailure> {
    let row = diesel::sql_query(OPERATION_SELECT)
        .bind::<SqlUuid, _>(tenant.into_uuid())
        .bind::<Text, _>(reference.as_str())
        .get_result(conn)
        .await
        .optional()?;
    replay_of(row, kind, request)
}

const OPERATION_SELECT: &str =
    "SELECT kind, request, result FROM credit_operations WHERE tenant_id = $1 AND reference = $2";

/// The first result of an operation recorded as `row`, if there is one: the
/// same operation gets it marked replayed, another one is refused.
fn replay_of<T: serde::de::DeserializeOwned>(
    row: Option<OperationRow>,
    kind: &str,
    request: &serde_json::Value,
) -> Result<Option<T>, CreditsFailure> {
    let Some(row) = row else { return Ok(None) };
    if row.kind != kind || &row.request != request {
        return domain(CreditsError::ReferenceReused);
    }
    let mut result = row.result;
    if let Some(object) = result.as_object_mut() {
        object.insert("replayed".to_owned(), serde_json::Value::Bool(true));
    }
    serde_json::from_value(result).map(Some).map_err(corrupt)
}

/// Records `reference`'s result, so that a repeat answers it.
pub(crate) async fn remember(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    reference: &Reference,
    kind: &str,
    request: &serde_json::Value,
    result: &impl serde::Serialize,
    now: DateTime<Utc>,
) -> Result<(), CreditsFailure> {
    let result = serde_json::to_value(result).map_err(corrupt)?;
    diesel::sql_query(
        "INSERT INTO credit_operations (tenant_id, reference, kind, request, result, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .bind::<Text, _>(reference.as_str())
    .bind::<Text, _>(kind)
    .bind::<Jsonb, _>(request)
    .bind::<Jsonb, _>(&result)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The ledger of one locked wallet

/// One wallet, locked for the rest of the transaction. Its [`Book`] (the
/// domain's arithmetic) is loaded after the reference is checked, so a
/// repeated reference changes nothing at all; [`Ledger::write`] writes what
/// the book says.
struct Ledger {
    tenant: TenantId,
    wallet: WalletRow,
    channel: Channel,
    book: Book,
    reference: String,
    actor: String,
    now: DateTime<Utc>,
}

/// Who expiry entries are written by: the platform, whichever operation
/// noticed them.
const EXPIRY_ACTOR: &str = "system:credits.expire";

impl Ledger {
    /// Locks `tenant`'s wallet for `channel`, creating it on first use.
    async fn by_channel(
        conn: &mut AsyncPgConnection,
        tenant: TenantId,
        channel: Channel,
        reference: &str,
        actor: String,
        clock: &dyn Clock,
    ) -> Result<Self, CreditsFailure> {
        // An upsert locks the existing row as `FOR UPDATE` would, and creates a missing one.
        let wallet: WalletRow = diesel::sql_query(format!(
            "INSERT INTO credit_wallets (tenant_id, id, channel, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (tenant_id, channel) DO UPDATE SET updated_at = credit_wallets.updated_at \
             RETURNING {WALLET_COLUMNS}"
        ))
        .bind::<SqlUuid, _>(tenant.into_uuid())
        .bind::<SqlUuid, _>(WalletId::new().into_uuid())
        .bind::<Text, _>(channel.as_str())
        .bind::<Timestamptz, _>(now_of(clock))
        .get_result(conn)
        .await?;
        Self::locked(tenant, wallet, reference, actor, clock)
    }

    /// Locks `tenant`'s wallet `id`.
    async fn by_id(
        conn: &mut AsyncPgConnection,
        tenant: TenantId,
        id: WalletId,
        reference: &str,
        actor: String,
        clock: &dyn Clock,
    ) -> Result<Self, CreditsFailure> {
        let wallet: Option<WalletRow> = diesel::sql_query(format!(
            "SELECT {WALLET_COLUMNS} FROM credit_wallets WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
        ))
        .bind::<SqlUuid, _>(tenant.into_uuid())
        .bind::<SqlUuid, _>(id.into_uuid())
        .get_result(conn)
        .await
        .optional()?;
        let Some(wallet) = wallet else { return domain(CreditsError::WalletNotFound) };
        Self::locked(tenant, wallet, reference, actor, clock)
    }

    async fn open(
        conn: &mut AsyncPgConnection,
        tenant: TenantId,
        wallet: WalletRef,
        reference: &str,
        actor: String,
        clock: &dyn Clock,
    ) -> Result<Self, CreditsFailure> {
        match wallet {
            WalletRef::Id(id) => Self::by_id(conn, tenant, id, reference, actor, clock).await,
            WalletRef::Channel(channel) => {
                Self::by_channel(conn, tenant, channel, reference, actor, clock).await
            }
        }
    }

    /// The locked wallet, at the time the lock was had: operations on one
    /// wallet then write their entries in the order they ran.
    fn locked(
        tenant: TenantId,
        wallet: WalletRow,
        reference: &str,
        actor: String,
        clock: &dyn Clock,
    ) -> Result<Self, CreditsFailure> {
        let now = now_of(clock);
        let channel = channel_of(&wallet.channel)?;
        let book = Book::new(channel, wallet.balance, wallet.held, Vec::new(), now);
        Ok(Self { tenant, wallet, channel, book, reference: reference.to_owned(), actor, now })
    }

    /// Loads the open grants and settles what is due: holds nobody settled
    /// in time go back, then what is left of expired grants expires.
    async fn open_book(&mut self, conn: &mut AsyncPgConnection) -> Result<(), CreditsFailure> {
        let grants: Vec<GrantRow> = self.open_grants().load(conn).await?;
        self.settle_due(conn, &grants).await
    }

    /// The query for the wallet's grants with credits left.
    fn open_grants(&self) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
        diesel::sql_query(format!(
            "SELECT {GRANT_COLUMNS} FROM credit_grants WHERE tenant_id = $1 AND wallet_id = $2 AND remaining > 0"
        ))
        .into_boxed()
        .bind::<SqlUuid, _>(self.tenant.into_uuid())
        .bind::<SqlUuid, _>(self.wallet.id)
    }

    /// Checks `reference` (as [`replayed`]) and, when it is new, opens the
    /// book (as [`Ledger::open_book`]): both reads sent at once, one wait.
    async fn check<T: serde::de::DeserializeOwned>(
        &mut self,
        conn: &mut AsyncPgConnection,
        reference: &Reference,
        kind: &str,
        request: &serde_json::Value,
    ) -> Result<Option<T>, CreditsFailure> {
        let shared: &AsyncPgConnection = conn;
        let first = diesel::sql_query(OPERATION_SELECT)
            .bind::<SqlUuid, _>(self.tenant.into_uuid())
            .bind::<Text, _>(reference.as_str())
            .get_result::<OperationRow>(&mut &*shared);
        let grants = self.open_grants().load::<GrantRow>(&mut &*shared);
        let (first, grants): (Option<OperationRow>, Vec<GrantRow>) =
            futures_util::future::try_join(first.map(OptionalExtension::optional), grants).await?;
        if first.is_some() {
            return replay_of(first, kind, request);
        }
        self.settle_due(conn, &grants).await?;
        Ok(None)
    }

    /// Puts `grants` in the book and settles what is due: holds nobody
    /// settled in time go back, then what is left of expired grants expires.
    async fn settle_due(
        &mut self,
        conn: &mut AsyncPgConnection,
        grants: &[GrantRow],
    ) -> Result<(), CreditsFailure> {
        self.book.grants = grants.iter().map(GrantRow::drawable).collect();
        if self.wallet.held > 0 {
            let due: Vec<ReservationRow> = diesel::sql_query(format!(
                "UPDATE credit_reservations SET status = 'expired', settled_at = $3 \
                 WHERE tenant_id = $1 AND wallet_id = $2 AND status = 'held' AND expires_at <= $3 \
                 RETURNING {RESERVATION_COLUMNS}"
            ))
            .bind::<SqlUuid, _>(self.tenant.into_uuid())
            .bind::<SqlUuid, _>(self.wallet.id)
            .bind::<Timestamptz, _>(self.now)
            .load(conn)
            .await?;
            for reservation in &due {
                let draws = reservation.draws()?;
                self.with_grants_of(conn, &draws).await?;
                self.book.settle_hold(&draws, 0, ReservationId::from_uuid(reservation.id));
            }
        }
        self.book.expire_due();
        Ok(())
    }

    /// Makes sure the book has every grant of `draws` (a hold's grants may
    /// have nothing left and so not be among the open ones).
    async fn with_grants_of(
        &mut self,
        conn: &mut AsyncPgConnection,
        draws: &[Draw],
    ) -> Result<(), CreditsFailure> {
        let missing: Vec<uuid::Uuid> = draws
            .iter()
            .map(|d| d.grant)
            .filter(|id| !self.book.grants.iter().any(|g| g.id == *id))
            .map(GrantId::into_uuid)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let rows: Vec<GrantRow> = diesel::sql_query(format!(
            "SELECT {GRANT_COLUMNS} FROM credit_grants WHERE tenant_id = $1 AND wallet_id = $2 AND id = ANY($3)"
        ))
        .bind::<SqlUuid, _>(self.tenant.into_uuid())
        .bind::<SqlUuid, _>(self.wallet.id)
        .bind::<Array<SqlUuid>, _>(&missing)
        .load(conn)
        .await?;
        if rows.len() != missing.len() {
            // A hold names a grant this wallet does not have: never written, never to be ignored.
            return Err(corrupt("a hold draws from a grant of another wallet"));
        }
        self.book.grants.extend(rows.iter().map(GrantRow::drawable));
        Ok(())
    }

    fn wallet_id(&self) -> WalletId {
        WalletId::from_uuid(self.wallet.id)
    }

    /// An entry of the book as the ledger keeps it.
    fn entry(&self, draft: &EntryDraft, reference: &str, actor: &str) -> Entry {
        Entry {
            id: draft.id,
            wallet_id: self.wallet_id(),
            channel: self.channel,
            grant_id: draft.grant,
            kind: draft.kind,
            amount: draft.amount,
            balance_after: draft.balance_after,
            reference: reference.to_owned(),
            reservation_id: draft.reservation,
            actor: actor.to_owned(),
            note: draft.note.clone(),
            created_at: self.now,
        }
    }

    /// Writes what the book changed: new grants, drawn and returned grants,
    /// entries (expiries as the platform's, under `expiry:<grant>`), the
    /// wallet and its low-balance alert. Answers the wallet as it now is and
    /// the operation's own entries.
    async fn write(&self, conn: &mut AsyncPgConnection) -> Result<(Wallet, Vec<Entry>), CreditsFailure> {
        let tenant = self.tenant.into_uuid();
        let book = &self.book;
        if !book.new_grants.is_empty() {
            let g = &book.new_grants;
            diesel::sql_query(
                "INSERT INTO credit_grants (tenant_id, id, wallet_id, source, amount, remaining, priority, expires_at, \
                                            paid, reference, created_at) \
                 SELECT $1, g.id, $2, g.source, g.amount, g.remaining, g.priority, g.expires_at, g.paid, $3, $4 \
                   FROM unnest($5::uuid[], $6::text[], $7::int8[], $8::int2[], $9::timestamptz[], $10::int8[], \
                               $11::bool[]) \
                        AS g(id, source, amount, priority, expires_at, remaining, paid)",
            )
            .bind::<SqlUuid, _>(tenant)
            .bind::<SqlUuid, _>(self.wallet.id)
            .bind::<Text, _>(&self.reference)
            .bind::<Timestamptz, _>(self.now)
            .bind::<Array<SqlUuid>, _>(g.iter().map(|g| g.id.into_uuid()).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(g.iter().map(|g| g.source.as_str()).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(g.iter().map(|g| g.amount).collect::<Vec<_>>())
            .bind::<Array<SmallInt>, _>(g.iter().map(|g| g.priority).collect::<Vec<_>>())
            .bind::<Array<Nullable<Timestamptz>>, _>(g.iter().map(|g| g.expires_at).collect::<Vec<_>>())
            // As the book has them now (an operation may draw from a grant it made).
            .bind::<Array<BigInt>, _>(
                g.iter()
                    .map(|n| book.grants.iter().find(|d| d.id == n.id).map_or(n.amount, |d| d.remaining))
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Bool>, _>(g.iter().map(|g| g.source.is_paid()).collect::<Vec<_>>())
            .execute(conn)
            .await?;
        }
        let (balance, held, available) = (book.balance, book.held, book.available());
        let threshold = self.wallet.low_balance_threshold;
        let mut alerted = self.wallet.low_balance_alerted;
        match crossing(threshold, alerted, available) {
            ThresholdCrossing::Alert => {
                alerted = true;
                let alert = LowBalanceAlert {
                    wallet_id: self.wallet_id(),
                    channel: self.channel,
                    available,
                    threshold: threshold.unwrap_or_default(),
                };
                let job = NewJob::of(&alert)
                    .map_err(corrupt)?
                    .unique(format!("credits.low_balance:{}", self.wallet.id));
                crate::jobs::enqueue_in(conn, self.tenant, &job, self.now).await?;
            }
            ThresholdCrossing::Rearm => alerted = false,
            ThresholdCrossing::None => {}
        }
        let expiries: Vec<Entry> = book
            .expired
            .iter()
            .map(|draft| self.entry(draft, &format!("expiry:{}", draft.grant), EXPIRY_ACTOR))
            .collect();
        let own: Vec<Entry> =
            book.entries.iter().map(|draft| self.entry(draft, &self.reference, &self.actor)).collect();
        let all: Vec<&Entry> = expiries.iter().chain(own.iter()).collect();
        // The grants that were there before (new ones were written whole just above).
        let known: Vec<&Drawable> =
            book.grants.iter().filter(|g| !book.new_grants.iter().any(|n| n.id == g.id)).collect();

        // The grants, the entries and the wallet do not depend on one another: their
        // statements are pipelined (sent together, run in order), one wait instead of three.
        let shared: &AsyncPgConnection = conn;
        let grants_written = (!known.is_empty()).then(|| {
            diesel::sql_query(
                "UPDATE credit_grants g SET remaining = c.remaining \
                   FROM unnest($2::uuid[], $3::int8[]) AS c(id, remaining) \
                  WHERE g.tenant_id = $1 AND g.wallet_id = $4 AND g.id = c.id AND g.remaining <> c.remaining",
            )
            .bind::<SqlUuid, _>(tenant)
            .bind::<Array<SqlUuid>, _>(known.iter().map(|g| g.id.into_uuid()).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(known.iter().map(|g| g.remaining).collect::<Vec<_>>())
            .bind::<SqlUuid, _>(self.wallet.id)
            .execute(&mut &*shared)
        });
        let entries_written = (!all.is_empty()).then(|| {
            diesel::sql_query(
                "INSERT INTO credit_entries (tenant_id, id, wallet_id, grant_id, kind, amount, balance_after, reference, \
                                             reservation_id, actor, note, created_at) \
                 SELECT $1, e.id, $2, e.grant_id, e.kind, e.amount, e.balance_after, e.reference, e.reservation_id, \
                        e.actor, e.note, $3 \
                   FROM unnest($4::uuid[], $5::uuid[], $6::text[], $7::int8[], $8::int8[], $9::uuid[], $10::text[], \
                               $11::text[], $12::text[]) \
                        AS e(id, grant_id, kind, amount, balance_after, reservation_id, note, reference, actor)",
            )
            .bind::<SqlUuid, _>(tenant)
            .bind::<SqlUuid, _>(self.wallet.id)
            .bind::<Timestamptz, _>(self.now)
            .bind::<Array<SqlUuid>, _>(all.iter().map(|e| e.id.into_uuid()).collect::<Vec<_>>())
            .bind::<Array<SqlUuid>, _>(all.iter().map(|e| e.grant_id.into_uuid()).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(all.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(all.iter().map(|e| e.amount).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(all.iter().map(|e| e.balance_after).collect::<Vec<_>>())
            .bind::<Array<Nullable<SqlUuid>>, _>(
                all.iter().map(|e| e.reservation_id.map(ReservationId::into_uuid)).collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Text>>, _>(all.iter().map(|e| e.note.clone()).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(all.iter().map(|e| e.reference.clone()).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(all.iter().map(|e| e.actor.clone()).collect::<Vec<_>>())
            .execute(&mut &*shared)
        });
        let wallet_written = diesel::sql_query(format!(
            "UPDATE credit_wallets SET balance = $3, held = $4, low_balance_alerted = $5, updated_at = $6, \
                    low_balance_threshold = $7 \
             WHERE tenant_id = $1 AND id = $2 RETURNING {WALLET_COLUMNS}"
        ))
        .bind::<SqlUuid, _>(tenant)
        .bind::<SqlUuid, _>(self.wallet.id)
        .bind::<BigInt, _>(balance)
        .bind::<BigInt, _>(held)
        .bind::<Bool, _>(alerted)
        .bind::<Timestamptz, _>(self.now)
        .bind::<Nullable<BigInt>, _>(threshold)
        .get_result::<WalletRow>(&mut &*shared);
        let (_, _, wallet) = futures_util::future::try_join3(
            async move { if let Some(written) = grants_written { written.await } else { Ok(0) } },
            async move { if let Some(written) = entries_written { written.await } else { Ok(0) } },
            wallet_written,
        )
        .await?;
        Ok((wallet.into_wallet()?, own))
    }

    /// Writes the changes and answers them as a movement.
    async fn finish(
        self,
        conn: &mut AsyncPgConnection,
        reservation: Option<Reservation>,
    ) -> Result<Movement, CreditsFailure> {
        let (wallet, entries) = self.write(conn).await?;
        Ok(Movement { reference: self.reference, replayed: false, wallet, entries, reservation })
    }
}

/// What a ledger operation records as it ends.
struct Done<'a> {
    /// The operation's kind, as its reference record keeps it (`debit`).
    kind: &'static str,
    /// Its audit action (`credits.debit`).
    action: &'static str,
    reference: &'a Reference,
    /// Its parameters, which a repeat of the reference must match.
    request: &'a serde_json::Value,
    /// What the audit row says beyond the reference and the balance after.
    changes: serde_json::Value,
}

/// How every ledger operation ends: its changes written, its audit row
/// (with the reference and the balance after), and its reference remembered.
async fn conclude(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    ledger: Ledger,
    reservation: Option<Reservation>,
    done: Done<'_>,
) -> Result<Movement, CreditsFailure> {
    let (wallet, now) = (ledger.wallet_id(), ledger.now);
    let movement = ledger.finish(conn, reservation).await?;
    let mut changes = done.changes;
    if let Some(fields) = changes.as_object_mut() {
        fields.insert("reference".to_owned(), json!(done.reference));
        fields.insert("balance".to_owned(), json!(movement.wallet.balance));
    }
    audit::record(conn, ctx.tenant_id, ctx.into(), &audit_entry(done.action, wallet, changes), now).await?;
    remember(conn, ctx.tenant_id, done.reference, done.kind, done.request, &movement, now).await?;
    Ok(movement)
}

/// Moves `delta` credits of `channel` into (positive) or out of (negative)
/// the platform's stock, for the scoped tenant. Fails when the stock is short.
async fn master_transfer(
    conn: &mut AsyncPgConnection,
    channel: Channel,
    delta: i64,
    reference: &str,
    actor: &str,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), CreditsFailure> {
    #[derive(QueryableByName)]
    struct After {
        #[diesel(sql_type = Nullable<BigInt>)]
        after: Option<i64>,
    }
    let moved: After =
        diesel::sql_query("SELECT credit_master_transfer($1, $2, $3, $4, $5, $6, $7) AS after")
            .bind::<SqlUuid, _>(EntryId::new().into_uuid())
            .bind::<Text, _>(channel.as_str())
            .bind::<BigInt, _>(delta)
            .bind::<Text, _>(reference)
            .bind::<Text, _>(actor)
            .bind::<Nullable<Text>, _>(note)
            .bind::<Timestamptz, _>(now)
            .get_result(conn)
            .await?;
    if moved.after.is_none() {
        return domain(CreditsError::MasterInsufficient { channel, requested: -delta });
    }
    Ok(())
}

/// Credits given rather than bought (and adjustments) come from the
/// platform's staff or the platform itself, never from a tenant's own people.
fn may_give(ctx: &TenantContext, source: GrantSource) -> Result<(), CreditsError> {
    let platform = matches!(ctx.actor, Actor::System { .. }) || ctx.platform().is_ok();
    if source == GrantSource::Purchase || platform {
        Ok(())
    } else {
        Err(CreditsError::SourceNotAllowed(source.as_str()))
    }
}

fn audit_entry(action: &'static str, wallet: WalletId, changes: serde_json::Value) -> AuditEntry {
    AuditEntry { action, resource_type: "credit_wallet", resource_id: wallet.to_string(), changes }
}

// ---------------------------------------------------------------------------
// Catalogue rows

#[derive(QueryableByName)]
pub(crate) struct PriceRow {
    #[diesel(sql_type = Text)]
    channel: String,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = Jsonb)]
    tiers: serde_json::Value,
}

impl PriceRow {
    pub(crate) fn into_price(self) -> Result<ChannelPrice, CreditsFailure> {
        Ok(ChannelPrice {
            channel: channel_of(&self.channel)?,
            currency: Currency::parse(&self.currency).map_err(corrupt)?,
            tiers: serde_json::from_value::<Vec<PriceTier>>(self.tiers).map_err(corrupt)?,
        })
    }
}

pub(crate) async fn load_prices(conn: &mut AsyncPgConnection) -> Result<Vec<ChannelPrice>, CreditsFailure> {
    let rows: Vec<PriceRow> = diesel::sql_query(
        "SELECT channel, currency, tiers FROM credit_prices WHERE tenant_id = $1 ORDER BY channel, currency",
    )
    .bind::<SqlUuid, _>(PLATFORM_TENANT_ID.into_uuid())
    .load(conn)
    .await?;
    rows.into_iter().map(PriceRow::into_price).collect()
}

#[derive(QueryableByName)]
pub(crate) struct PackageRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    description: String,
    #[diesel(sql_type = Jsonb)]
    credits: serde_json::Value,
    #[diesel(sql_type = BigInt)]
    price_minor: i64,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = Nullable<Integer>)]
    validity_days: Option<i32>,
    #[diesel(sql_type = Bool)]
    active: bool,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
}

pub(crate) const PACKAGE_COLUMNS: &str =
    "id, name, description, credits, price_minor, currency, validity_days, active, created_at, updated_at";

impl PackageRow {
    pub(crate) fn into_package(self) -> Result<Package, CreditsFailure> {
        Ok(Package {
            id: PackageId::from_uuid(self.id),
            name: self.name,
            description: self.description,
            credits: serde_json::from_value::<Vec<PackageCredits>>(self.credits).map_err(corrupt)?,
            price: Money::from_minor(self.price_minor, Currency::parse(&self.currency).map_err(corrupt)?),
            validity_days: self.validity_days.and_then(|d| u32::try_from(d).ok()),
            active: self.active,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub(crate) async fn load_package(
    conn: &mut AsyncPgConnection,
    id: PackageId,
) -> Result<Package, CreditsFailure> {
    let row: Option<PackageRow> = diesel::sql_query(format!(
        "SELECT {PACKAGE_COLUMNS} FROM credit_packages WHERE tenant_id = $1 AND id = $2"
    ))
    .bind::<SqlUuid, _>(PLATFORM_TENANT_ID.into_uuid())
    .bind::<SqlUuid, _>(id.into_uuid())
    .get_result(conn)
    .await
    .optional()?;
    row.ok_or(Failure::Domain(CreditsError::PackageNotFound))?.into_package()
}

#[derive(QueryableByName)]
pub(crate) struct PlanRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    tenant_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    channel: String,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = Jsonb)]
    tiers: serde_json::Value,
    #[diesel(sql_type = Timestamptz)]
    valid_from: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    valid_until: Option<DateTime<Utc>>,
    #[diesel(sql_type = Bool)]
    active: bool,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
}

pub(crate) const PLAN_COLUMNS: &str =
    "id, tenant_id, name, channel, currency, tiers, valid_from, valid_until, active, created_at, updated_at";

impl PlanRow {
    pub(crate) fn into_plan(self) -> Result<CustomPlan, CreditsFailure> {
        Ok(CustomPlan {
            id: CustomPlanId::from_uuid(self.id),
            tenant_id: TenantId::from_uuid(self.tenant_id),
            name: self.name,
            channel: channel_of(&self.channel)?,
            currency: Currency::parse(&self.currency).map_err(corrupt)?,
            tiers: serde_json::from_value(self.tiers).map_err(corrupt)?,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            active: self.active,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub(crate) async fn load_plans(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
) -> Result<Vec<CustomPlan>, CreditsFailure> {
    let rows: Vec<PlanRow> = diesel::sql_query(format!(
        "SELECT {PLAN_COLUMNS} FROM credit_custom_plans WHERE tenant_id = $1 ORDER BY valid_from DESC, id"
    ))
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .load(conn)
    .await?;
    rows.into_iter().map(PlanRow::into_plan).collect()
}

/// Records what a tenant bought, for billing.
#[allow(clippy::too_many_arguments)]
async fn record_purchase(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    reference: &str,
    package: Option<PackageId>,
    channel: Option<Channel>,
    quantity: i64,
    unit_price: Option<String>,
    total: Money,
    plan: Option<CustomPlanId>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), CreditsFailure> {
    diesel::sql_query(
        "INSERT INTO credit_purchases (tenant_id, id, reference, package_id, channel, quantity, unit_price, \
                                       total_minor, currency, plan_id, actor, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7::numeric, $8, $9, $10, $11, $12)",
    )
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .bind::<SqlUuid, _>(uuid::Uuid::now_v7())
    .bind::<Text, _>(reference)
    .bind::<Nullable<SqlUuid>, _>(package.map(PackageId::into_uuid))
    .bind::<Nullable<Text>, _>(channel.map(Channel::as_str))
    .bind::<BigInt, _>(quantity)
    .bind::<Nullable<Text>, _>(unit_price)
    .bind::<BigInt, _>(total.amount_minor())
    .bind::<Text, _>(total.currency().code())
    .bind::<Nullable<SqlUuid>, _>(plan.map(CustomPlanId::into_uuid))
    .bind::<Text, _>(actor)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Operations

/// Adds credits to a wallet in the caller's transaction (see
/// [`Store::add_credits`]); the caller has checked who may give `add.source`.
pub(crate) async fn add_in(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    clock: &dyn portico_kernel::Clock,
    reference: &Reference,
    wallet: WalletRef,
    add: &AddCredits,
) -> Result<Movement, CreditsFailure> {
    let tenant = ctx.tenant_id;
    let mut ledger =
        Ledger::open(conn, tenant, wallet, reference.as_str(), actor_text(&ctx.actor), clock).await?;
    let now = ledger.now;
    let request = json!({"wallet": ledger.wallet.id, "add": {
            "amount": add.amount, "source": add.source, "currency": add.currency,
            "priority": add.priority, "validityDays": add.validity_days, "note": add.note}});
    if let Some(first) = ledger.check(conn, reference, "add", &request).await? {
        return Ok(first);
    }
    let channel = ledger.channel;
    let mut quoted = None;
    if add.source == GrantSource::Purchase {
        let currency = match add.currency {
            Some(currency) => currency,
            None => Currency::parse("EUR").map_err(corrupt)?,
        };
        let prices = load_prices(conn).await?;
        let plans = load_plans(conn, tenant).await?;
        let price = quote(&prices, &plans, channel, currency, add.amount, now).map_err(Failure::Domain)?;
        record_purchase(
            conn,
            tenant,
            reference.as_str(),
            None,
            Some(channel),
            add.amount,
            Some(price.unit_price.to_string()),
            price.total,
            price.plan_id,
            &ledger.actor,
            now,
        )
        .await?;
        quoted = Some(price);
    }
    master_transfer(conn, channel, -add.amount, reference.as_str(), &ledger.actor, add.note.as_deref(), now)
        .await?;
    let expires_at = add.validity_days.map(|days| now + Duration::days(i64::from(days)));
    let priority = add.priority.unwrap_or(portico_credits::DEFAULT_PRIORITY);
    ledger.book.grant(add.source, add.amount, priority, expires_at, add.note.as_deref());
    let changes = json!({"source": add.source, "amount": add.amount,
            "price": quoted.as_ref().map(|q| q.total)});
    let done = Done { kind: "add", action: "credits.add", reference, request: &request, changes };
    conclude(conn, ctx, ledger, None, done).await
}

impl Store {
    /// Adds credits to a wallet, moved out of the platform's stock: a
    /// purchase is priced (the tenant's custom plan, else the price list)
    /// and recorded for billing; other sources are free. The caller checks
    /// who may grant other sources.
    pub async fn add_credits(
        &self,
        ctx: &TenantContext,
        reference: Reference,
        wallet: WalletRef,
        add: AddCredits,
    ) -> Result<Movement, CreditsError> {
        may_give(ctx, add.source)?;
        let (ctx, clock) = (ctx.clone(), self.clock());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move { add_in(conn, &ctx, &*clock, &reference, wallet, &add).await })
        })
        .await
        .map_err(resolve)
    }

    /// The platform's staff give (positive) or take (negative) credits by
    /// hand, with a reason: what is given comes out of the platform's stock
    /// as a free grant, what is taken goes back to it.
    pub async fn adjust_credits(
        &self,
        ctx: &TenantContext,
        reference: Reference,
        wallet: WalletRef,
        adjust: AdjustCredits,
    ) -> Result<Movement, CreditsError> {
        may_give(ctx, GrantSource::Adjustment)?;
        let (ctx, clock) = (ctx.clone(), self.clock());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let tenant = ctx.tenant_id;
                let mut ledger =
                    Ledger::open(conn, tenant, wallet, reference.as_str(), actor_text(&ctx.actor), &*clock)
                        .await?;
                let now = ledger.now;
                let request =
                    json!({"wallet": ledger.wallet.id, "amount": adjust.amount, "reason": adjust.reason});
                if let Some(first) = ledger.check(conn, &reference, "adjust", &request).await? {
                    return Ok(first);
                }
                let channel = ledger.channel;
                if adjust.amount > 0 {
                    ledger.book.grant(
                        GrantSource::Adjustment,
                        adjust.amount,
                        portico_credits::DEFAULT_PRIORITY,
                        None,
                        Some(&adjust.reason),
                    );
                } else {
                    ledger
                        .book
                        .spend(-adjust.amount, EntryKind::Adjustment, Some(&adjust.reason))
                        .map_err(Failure::Domain)?;
                }
                let actor = ledger.actor.clone();
                master_transfer(
                    conn,
                    channel,
                    -adjust.amount,
                    reference.as_str(),
                    &actor,
                    Some(&adjust.reason),
                    now,
                )
                .await?;
                let changes = json!({"amount": adjust.amount, "reason": adjust.reason});
                let done = Done {
                    kind: "adjust",
                    action: "credits.adjust",
                    reference: &reference,
                    request: &request,
                    changes,
                };
                conclude(conn, &ctx, ledger, None, done).await
            })
        })
        .await
        .map_err(resolve)
    }

    /// Buys an active package: one paid grant per channel in it, moved out
    /// of the platform's stock, recorded for billing at the package's price.
    pub async fn purchase_package(
        &self,
        ctx: &TenantContext,
        reference: Reference,
        package: PackageId,
    ) -> Result<PackagePurchase, CreditsError> {
        let (ctx, clock) = (ctx.clone(), self.clock());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let tenant = ctx.tenant_id;
                let found = load_package(conn, package).await?;
                let request = json!({"package": package});
                let actor = actor_text(&ctx.actor);
                // Wallets are locked in channel order, so two purchases never wait on each other in a circle.
                // A repeat answers before it locks (and so creates) any wallet; the check is
                // made again under the locks for a duplicate racing the first.
                if let Some(first) = replayed(conn, tenant, &reference, "package", &request).await? {
                    return Ok(first);
                }
                let mut credits = found.credits.clone();
                credits.sort_by_key(|c| c.channel);
                let mut ledgers = Vec::new();
                for entry in &credits {
                    ledgers.push(
                        Ledger::by_channel(conn, tenant, entry.channel, reference.as_str(), actor.clone(), &*clock,).await?,
                    );
                }
                if let Some(first) = replayed(conn, tenant, &reference, "package", &request).await? {
                    return Ok(first);
                }
                for ledger in &mut ledgers {
                    ledger.open_book(conn).await?;
                }
                let now = now_of(&*clock);
                if !found.active {
                    return domain(CreditsError::PackageInactive);
                }
                record_purchase(conn, tenant, reference.as_str(), Some(package), None,
                    credits.iter().map(|c| c.amount).sum(), None, found.price, None, &actor, now).await?;
                let expires_at = found.validity_days.map(|days| now + Duration::days(i64::from(days)));
                let (mut wallets, mut entries) = (Vec::new(), Vec::new());
                for (entry, mut ledger) in credits.iter().zip(ledgers) {
                    master_transfer(conn, entry.channel, -entry.amount, reference.as_str(), &actor, Some(&found.name), now)
                        .await?;
                    ledger.book.grant(GrantSource::Package, entry.amount, portico_credits::DEFAULT_PRIORITY, expires_at, None);
                    let movement = ledger.finish(conn, None).await?;
                    wallets.push(movement.wallet);
                    entries.extend(movement.entries);
                }
                let purchase = PackagePurchase {
                    reference: reference.as_str().to_owned(),
                    replayed: false,
                    package_id: package,
                    price: found.price,
                    wallets,
                    entries,
                };
                let changes = json!({"package": package, "name": found.name, "price": found.price, "reference": reference});
                let entry = AuditEntry {
                    action: "credits.package_purchase",
                    resource_type: "credit_package",
                    resource_id: package.to_string(),
                    changes,
                };
                audit::record(conn, tenant, (&ctx).into(), &entry, now).await?;
                remember(conn, tenant, &reference, "package", &request, &purchase, now).await?;
                Ok(purchase)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Sets a wallet's low-balance threshold (creating the wallet on first use).
    pub async fn set_wallet_settings(
        &self,
        ctx: &TenantContext,
        wallet: WalletRef,
        settings: WalletSettings,
    ) -> Result<Wallet, CreditsError> {
        let (ctx, clock) = (ctx.clone(), self.clock());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let tenant = ctx.tenant_id;
                let mut ledger = Ledger::open(conn, tenant, wallet, "settings", actor_text(&ctx.actor), &*clock,).await?;
                let now = ledger.now;
                ledger.open_book(conn).await?;
                let before = ledger.wallet.low_balance_threshold;
                ledger.wallet.low_balance_threshold = settings.low_balance_threshold;
                // A new threshold above what is left alerts now; one at or below re-arms.
                let wallet_id = ledger.wallet_id();
                let movement = ledger.finish(conn, None).await?;
                let changes = json!({"lowBalanceThreshold": {"before": before, "after": settings.low_balance_threshold}});
                audit::record(conn, tenant, (&ctx).into(), &audit_entry("credits.wallet_update", wallet_id, changes), now)
                    .await?;
                Ok(movement.wallet)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Expires every hold and grant that is due, wallet by wallet, each in
    /// its tenant's own transaction (the job behind the schedule). Answers
    /// how many wallets it settled; when one fails, the others are still
    /// settled and the first error is answered (so the job runs again).
    pub async fn settle_due_credits(
        &self,
        _ctx: &PlatformContext,
        limit: i64,
    ) -> Result<usize, CreditsError> {
        #[derive(QueryableByName)]
        struct Due {
            #[diesel(sql_type = SqlUuid)]
            tenant_id: uuid::Uuid,
            #[diesel(sql_type = SqlUuid)]
            wallet_id: uuid::Uuid,
        }
        let now = self.now();
        let due: Vec<Due> = self
            .as_platform(move |conn| {
                Box::pin(async move {
                    Ok(diesel::sql_query(
                        "SELECT tenant_id, wallet_id FROM credit_grants \
                          WHERE remaining > 0 AND expires_at <= $1 \
                         UNION \
                         SELECT tenant_id, wallet_id FROM credit_reservations \
                          WHERE status = 'held' AND expires_at <= $1 \
                         LIMIT $2",
                    )
                    .bind::<Timestamptz, _>(now)
                    .bind::<BigInt, _>(limit)
                    .load(conn)
                    .await?)
                })
            })
            .await
            .map_err(resolve)?;
        let (mut settled, mut failed) = (0, None);
        for wallet in due {
            let tenant = TenantId::from_uuid(wallet.tenant_id);
            let id = WalletId::from_uuid(wallet.wallet_id);
            let clock = self.clock();
            let result = self
                .in_tenant(tenant, move |conn| {
                    Box::pin(async move {
                        let mut ledger =
                            Ledger::by_id(conn, tenant, id, "expiry", EXPIRY_ACTOR.into(), &*clock).await?;
                        ledger.open_book(conn).await?;
                        ledger.finish(conn, None).await?;
                        Ok(())
                    })
                })
                .await
                .map_err(resolve);
            // One wallet that fails does not hold the others back; the job is retried for it.
            match result {
                Ok(()) => settled += 1,
                Err(error) => {
                    let detail = portico_kernel::redact::text(&error.to_string());
                    tracing::warn!(%tenant, wallet = %id, error = %detail, "settling due credits failed");
                    failed.get_or_insert(error);
                }
            }
        }
        match failed {
            Some(error) => Err(error),
            None => Ok(settled),
        }
    }
}

impl CreditsLedger for Store {
    async fn debit(
        &self,
        ctx: &TenantContext,
        reference: Reference,
        debit: Debit,
    ) -> Result<Movement, CreditsError> {
        let (ctx, clock) = (ctx.clone(), self.clock());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let tenant = ctx.tenant_id;
                let mut ledger = Ledger::by_channel(
                    conn,
                    tenant,
                    debit.channel,
                    reference.as_str(),
                    actor_text(&ctx.actor),
                    &*clock,
                )
                .await?;
                let request = json!({"channel": debit.channel, "amount": debit.amount});
                if let Some(first) = ledger.check(conn, &reference, "debit", &request).await? {
                    return Ok(first);
                }
                if debit.amount < 1 {
                    return domain(CreditsError::Invalid(portico_kernel::ValidationErrors::field(
                        "amount",
                        "at least 1",
                    )));
                }
                ledger.book.spend(debit.amount, EntryKind::Debit, None).map_err(Failure::Domain)?;
                let changes = json!({"amount": debit.amount});
                let done = Done {
                    kind: "debit",
                    action: "credits.debit",
                    reference: &reference,
                    request: &request,
                    changes,
                };
                conclude(conn, &ctx, ledger, None, done).await
            })
        })
        .await
        .map_err(resolve)
    }

    async fn reserve(
        &self,
        ctx: &TenantContext,
        reference: Reference,
        reserve: Reserve,
    ) -> Result<Movement, CreditsError> {
        let (ctx, clock) = (ctx.clone(), self.clock());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let tenant = ctx.tenant_id;
                let mut ledger =
                    Ledger::by_channel(conn, tenant, reserve.channel, reference.as_str(), actor_text(&ctx.actor), &*clock,)
                        .await?;
                let now = ledger.now;
                let request = json!({"channel": reserve.channel, "amount": reserve.amount,
                    "holdSeconds": reserve.hold_seconds});
                if let Some(first) = ledger.check(conn, &reference, "reserve", &request).await? {
                    return Ok(first);
                }
                let draws = ledger.book.hold(reserve.amount).map_err(Failure::Domain)?;
                let hold = reserve.hold_seconds.unwrap_or(portico_credits::DEFAULT_HOLD_SECS);
                let reservation = Reservation {
                    id: ReservationId::new(),
                    wallet_id: ledger.wallet_id(),
                    channel: ledger.channel,
                    amount: reserve.amount,
                    captured: 0,
                    status: ReservationStatus::Held,
                    reference: reference.as_str().to_owned(),
                    expires_at: now + Duration::seconds(i64::from(hold)),
                    created_at: now,
                    settled_at: None,
                };
                diesel::sql_query(
                    "INSERT INTO credit_reservations (tenant_id, id, wallet_id, amount, status, draws, reference, \
                                                      expires_at, created_at) \
                     VALUES ($1, $2, $3, $4, 'held', $5, $6, $7, $8)",
                )
                .bind::<SqlUuid, _>(tenant.into_uuid())
                .bind::<SqlUuid, _>(reservation.id.into_uuid())
                .bind::<SqlUuid, _>(reservation.wallet_id.into_uuid())
                .bind::<BigInt, _>(reservation.amount)
                .bind::<Jsonb, _>(serde_json::to_value(&draws).map_err(corrupt)?)
                .bind::<Text, _>(&reservation.reference)
                .bind::<Timestamptz, _>(reservation.expires_at)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let changes = json!({"reservation": reservation.id, "amount": reserve.amount});
                let done =
                    Done { kind: "reserve", action: "credits.reserve", reference: &reference, request: &request, changes };
                conclude(conn, &ctx, ledger, Some(reservation), done).await
            })
        })
        .await
        .map_err(resolve)
    }

    async fn capture(
        &self,
        ctx: &TenantContext,
        reference: Reference,
        id: ReservationId,
        capture: Capture,
    ) -> Result<Movement, CreditsError> {
        self.settle(ctx, reference, id, Some(capture)).await
    }

    async fn release(
        &self,
        ctx: &TenantContext,
        reference: Reference,
        id: ReservationId,
    ) -> Result<Movement, CreditsError> {
        self.settle(ctx, reference, id, None).await
    }
}

impl Store {
    /// Captures (`Some`) or releases (`None`) reservation `id`.
    async fn settle(
        &self,
        ctx: &TenantContext,
        reference: Reference,
        id: ReservationId,
        capture: Option<Capture>,
    ) -> Result<Movement, CreditsError> {
        let (ctx, clock) = (ctx.clone(), self.clock());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let tenant = ctx.tenant_id;
                #[derive(QueryableByName)]
                struct Owner {
                    #[diesel(sql_type = SqlUuid)]
                    wallet_id: uuid::Uuid,
                }
                let owner: Option<Owner> = diesel::sql_query(
                    "SELECT wallet_id FROM credit_reservations WHERE tenant_id = $1 AND id = $2",
                )
                .bind::<SqlUuid, _>(tenant.into_uuid())
                .bind::<SqlUuid, _>(id.into_uuid())
                .get_result(conn)
                .await
                .optional()?;
                let Some(owner) = owner else { return domain(CreditsError::ReservationNotFound) };
                // The wallet first (as every operation), then the reservation under it.
                let mut ledger = Ledger::by_id(
                    conn,
                    tenant,
                    WalletId::from_uuid(owner.wallet_id),
                    reference.as_str(),
                    actor_text(&ctx.actor),
                    &*clock,
                )
                .await?;
                let now = ledger.now;
                let kind = if capture.is_some() { "capture" } else { "release" };
                let request = json!({"reservation": id, "amount": capture.as_ref().and_then(|c| c.amount)});
                if let Some(first) = ledger.check(conn, &reference, kind, &request).await? {
                    return Ok(first);
                }
                let row: ReservationRow = diesel::sql_query(format!(
                    "SELECT {RESERVATION_COLUMNS} FROM credit_reservations WHERE tenant_id = $1 AND id = $2"
                ))
                .bind::<SqlUuid, _>(tenant.into_uuid())
                .bind::<SqlUuid, _>(id.into_uuid())
                .get_result(conn)
                .await?;
                let draws = row.draws()?;
                let mut reservation = row.into_reservation(ledger.channel)?;
                let spent = match &capture {
                    Some(capture) => reservation.capture(capture.amount, now).map_err(Failure::Domain)?,
                    None => {
                        reservation.release().map_err(Failure::Domain)?;
                        0
                    }
                };
                ledger.with_grants_of(conn, &draws).await?;
                ledger.book.settle_hold(&draws, spent, id);
                reservation.status =
                    if capture.is_some() { ReservationStatus::Captured } else { ReservationStatus::Released };
                reservation.captured = spent;
                reservation.settled_at = Some(now);
                diesel::sql_query(
                    "UPDATE credit_reservations SET status = $3, captured = $4, settled_at = $5 \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind::<SqlUuid, _>(tenant.into_uuid())
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<Text, _>(reservation.status.as_str())
                .bind::<BigInt, _>(spent)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let action = if capture.is_some() { "credits.capture" } else { "credits.release" };
                let changes = json!({"reservation": id, "captured": spent});
                let done = Done { kind, action, reference: &reference, request: &request, changes };
                conclude(conn, &ctx, ledger, Some(reservation), done).await
            })
        })
        .await
        .map_err(resolve)
    }
}
