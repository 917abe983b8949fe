//! CRM contacts and companies: their lists (filters, sorts, search), one
//! record, its creation, change and deletion, the duplicates among them,
//! and the merge of two duplicates into one.
//!
//! Lists stay fast for a tenant's hundred thousand contacts under row-level
//! security: each sort order is one btree (`tenant_id`, the sort key, `id`)
//! walked in order; only the filters asked for are in the SQL; and a search
//! goes through `crm_search_terms` (prefix ranges over a "C"-collated btree,
//! leakproof comparisons) instead of a full-text index that RLS would keep
//! from being used.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Array, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_crm::{
    Company, CompanyDraft, CompanyDuplicates, CompanyLinks, Contact, ContactDraft, ContactDuplicates,
    ContactLinks, ContactStatus, ContactType, CrmError, MatchReason, MergeCompanies, MergeContacts,
    merge_companies, merge_contacts, normalise_phone,
};
use portico_kernel::{
    ActivityId, AuditEntry, CompanyId, ContactId, DealId, LeadId, Page, PageRequest, TenantContext, TicketId,
    UserId,
};
use serde::{Deserialize, Serialize};

use crate::crm::{
    COMPANY_COLUMNS, CONTACT_COLUMNS, CompanyRow, ContactRow, CrmFailure, calling_code, check_member,
    enum_of, insert_company, insert_contact, json_of, load_company, load_contact, update_company,
    update_contact,
};
use crate::error::{Failure, is_foreign_key_violation};
use crate::meters::{Counted, bounds};
use crate::{Store, audit};

/// Most words of a search that are matched (the longest; the rest are ignored).
pub const MAX_SEARCH_WORDS: usize = 5;
/// A search matching at most this many contacts reads their ids first and
/// names them in the list's query: the planner then walks the sort's index
/// and stops at the page's end (a hashed `= ANY`), instead of reading every
/// match to sort it. Broader searches keep the ids in the query.
const ID_LIST_LIMIT: usize = 10_000;
/// From this offset on, a page's ids are found first on the sort's index
/// alone, and only that page's rows are read.
const DEEP_OFFSET: i64 = 1_000;
/// Most groups a duplicates report lists, per kind of record.
pub const MAX_DUPLICATE_GROUPS: usize = 100;
/// Most records one group of duplicates names (the oldest).
pub const MAX_GROUP_MEMBERS: usize = 100;

fn resolve(failure: CrmFailure) -> CrmError {
    failure.resolve(|_| None)
}

/// The order of a contact list; each ends on the id, so pages are stable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ContactSort {
    /// By display name, A to Z, ignoring case (the default).
    #[default]
    #[serde(rename = "name")]
    Name,
    /// By display name, Z to A.
    #[serde(rename = "-name")]
    NameDesc,
    /// Oldest first.
    #[serde(rename = "createdAt")]
    CreatedAt,
    /// Newest first.
    #[serde(rename = "-createdAt")]
    CreatedAtDesc,
    /// Least recently changed first.
    #[serde(rename = "updatedAt")]
    UpdatedAt,
    /// Most recently changed first.
    #[serde(rename = "-updatedAt")]
    UpdatedAtDesc,
}

impl ContactSort {
    /// The `ORDER BY`: exactly the expressions of an index on `crm_contacts`.
    fn order_by(self) -> &'static str {
        match self {
            Self::Name => "lower(display_name), id",
            Self::NameDesc => "lower(display_name) DESC, id DESC",
            Self::CreatedAt => "created_at, id",
            Self::CreatedAtDesc => "created_at DESC, id DESC",
            Self::UpdatedAt => "updated_at, id",
            Self::UpdatedAtDesc => "updated_at DESC, id DESC",
        }
    }
}

/// Which contacts a list shows, and in which order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactFilter {
    /// Only those with this status.
    pub status: Option<ContactStatus>,
    /// Only those of this type.
    pub contact_type: Option<ContactType>,
    /// Only those this user owns.
    pub owner_id: Option<UserId>,
    /// Only those working for this company.
    pub company_id: Option<CompanyId>,
    /// Only those with this tag (in any case).
    pub tag: Option<String>,
    /// Created at or after this time.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before this time.
    pub created_to: Option<DateTime<Utc>>,
    /// Words that start a word of the name, an email address, a phone
    /// number or the company's name (every word must match); or a phone
    /// number in any format.
    pub q: Option<String>,
    /// The order.
    pub sort: ContactSort,
}

/// The order of a company list; each ends on the id, so pages are stable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CompanySort {
    /// By name, A to Z, ignoring case (the default).
    #[default]
    #[serde(rename = "name")]
    Name,
    /// By name, Z to A.
    #[serde(rename = "-name")]
    NameDesc,
    /// Oldest first.
    #[serde(rename = "createdAt")]
    CreatedAt,
    /// Newest first.
    #[serde(rename = "-createdAt")]
    CreatedAtDesc,
}

impl CompanySort {
    fn order_by(self) -> &'static str {
        match self {
            Self::Name => "lower(name), id",
            Self::NameDesc => "lower(name) DESC, id DESC",
            Self::CreatedAt => "created_at, id",
            Self::CreatedAtDesc => "created_at DESC, id DESC",
        }
    }
}

/// Which companies a list shows, and in which order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompanyFilter {
    /// Words that start a word of the name or the domain (every word must match).
    pub q: Option<String>,
    /// Only those in this industry (any case).
    pub industry: Option<String>,
    /// Only those this user owns.
    pub owner_id: Option<UserId>,
    /// Only those with this tag (in any case).
    pub tag: Option<String>,
    /// The order.
    pub sort: CompanySort,
}

/// The duplicates among a tenant's contacts or companies: at most
/// [`MAX_DUPLICATE_GROUPS`] groups of each, by reason and value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "contacts": [{"reason": "phone", "value": "+49301234567",
                  "contactIds": ["01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f21", "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f24"]}],
    "companies": [{"reason": "domain", "value": "acme.example",
                   "companyIds": ["01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f22", "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f25"]}],
    "truncated": false
})))]
#[serde(rename_all = "camelCase")]
pub struct Duplicates {
    /// Contacts sharing a normalised email address or an E.164 phone number.
    pub contacts: Vec<ContactDuplicates>,
    /// Companies sharing a domain or a normalised name.
    pub companies: Vec<CompanyDuplicates>,
    /// True when there were more groups than listed.
    pub truncated: bool,
}

/// Which records a duplicates report looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DuplicateKind {
    /// Contacts only.
    Contacts,
    /// Companies only.
    Companies,
}

// ------------------------------------------------------------------ queries

/// The `WHERE` of a list: `tenant_id = $1` and each filter asked for, its
/// values bound as text (cast in the SQL) from `$2` on; and a search's
/// matching ids, computed once (`matched`) before the rows are read.
struct Conditions {
    clauses: Vec<String>,
    values: Vec<String>,
    matched: Option<String>,
    /// The total, when a search's ids alone decide it.
    known_total: Option<u64>,
    /// A search's ids, bound after the values as a `uuid[]` (a text cast to
    /// `uuid[]` would be parsed again for every row).
    ids: Option<Vec<uuid::Uuid>>,
}

impl Conditions {
    fn new() -> Self {
        Self {
            clauses: vec!["tenant_id = $1".to_owned()],
            values: Vec::new(),
            matched: None,
            known_total: None,
            ids: None,
        }
    }

    /// Only the records with these ids (a search's, read first): the last
    /// condition, its parameter after every value.
    fn among(&mut self, ids: Vec<uuid::Uuid>) {
        self.push(format!("id = ANY(${})", self.values.len() + 2));
        if self.clauses.len() == 2 {
            self.known_total = Some(u64::try_from(ids.len()).unwrap_or_default());
        }
        self.ids = Some(ids);
    }

    /// A placeholder for `value`.
    fn param(&mut self, value: impl Into<String>) -> String {
        self.values.push(value.into());
        format!("${}", self.values.len() + 1)
    }

    fn push(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    /// `tag` among the record's tags, in any case.
    fn tag(&mut self, kind: &str, tag: Option<&str>) {
        if let Some(tag) = tag.map(str::trim).filter(|t| !t.is_empty()) {
            let p = self.param(tag);
            if kind == "contact" {
                // A contact's tags are also kept lower-cased as `contact_tag` terms (by
                // trigger): an index range, where `= ANY(tags)` would read every row.
                self.push(format!(
                    "id IN (SELECT record_id FROM crm_search_terms WHERE tenant_id = $1 \
                     AND kind = 'contact_tag' AND term = lower({p}) COLLATE \"C\")"
                ));
            } else {
                self.push(format!("lower({p}) = ANY(lower(tags::text)::text[])"));
            }
        }
    }

    /// The ids of the records of `kind` with a search term starting with
    /// `word`; a word of one character must be a whole term (as a prefix it
    /// would match most records and only slow the list down).
    fn term_ids(&mut self, kind: &str, word: &str) -> String {
        let range = if word.chars().count() < 2 {
            format!("term = {} COLLATE \"C\"", self.param(word))
        } else {
            let (from, to) = (self.param(word), self.param(format!("{word}\u{10FFFF}")));
            format!("term >= {from} COLLATE \"C\" AND term < {to} COLLATE \"C\"")
        };
        format!(
            "SELECT record_id AS id FROM crm_search_terms WHERE tenant_id = $1 AND kind = '{kind}' AND {range}"
        )
    }

    /// Only the records whose ids `ids` selects (one column, `id`).
    fn matching(&mut self, ids: String) {
        self.push("id IN (SELECT id FROM matched)".to_owned());
        self.matched = Some(ids);
    }

    /// `SELECT …` over `table` with these conditions.
    fn select(&self, what: &str, table: &str, rest: &str) -> String {
        let with = self
            .matched
            .as_ref()
            .map(|ids| format!("WITH matched AS MATERIALIZED ({ids}) "))
            .unwrap_or_default();
        format!("{with}SELECT {what} FROM {table} WHERE {} {rest}", self.clauses.join(" AND "))
    }

    /// The count of the rows: of the search's ids alone when nothing else filters.
    fn count(&self, table: &str) -> String {
        match &self.matched {
            Some(ids) if self.clauses.len() == 2 => {
                format!("SELECT count(*) AS total FROM ({ids}) AS matched")
            }
            _ => self.select("count(*) AS total", table, ""),
        }
    }

    /// The query that binds `$1` to the tenant and the rest to the values.
    fn bind<'f>(&'f self, sql: String, ctx: &TenantContext) -> BoxedSqlQuery<'f, Pg, SqlQuery> {
        let mut query = diesel::sql_query(sql).into_boxed().bind::<SqlUuid, _>(ctx.tenant_id.into_uuid());
        for value in &self.values {
            query = query.bind::<Text, _>(value.as_str());
        }
        if let Some(ids) = &self.ids {
            query = query.bind::<Array<SqlUuid>, _>(ids.as_slice());
        }
        query
    }
}

#[derive(QueryableByName)]
struct Hit {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
}

#[derive(QueryableByName)]
struct Word {
    #[diesel(sql_type = Text)]
    word: String,
}

/// The words of a search as `crm_words()` splits the records' text (so
/// they compare with the stored terms), the longest [`MAX_SEARCH_WORDS`].
async fn search_words(conn: &mut AsyncPgConnection, q: &str) -> Result<Vec<String>, CrmFailure> {
    let rows: Vec<Word> =
        diesel::sql_query("SELECT unnest(crm_words($1)) AS word").bind::<Text, _>(q).load(conn).await?;
    let mut words: Vec<String> = rows.into_iter().map(|row| row.word).collect();
    words.sort_by(|a, b| b.chars().count().cmp(&a.chars().count()).then_with(|| a.cmp(b)));
    words.truncate(MAX_SEARCH_WORDS);
    Ok(words)
}

/// True when `q` looks like a phone number (digits and separators only).
fn phone_like(q: &str) -> bool {
    let digits = q.chars().filter(char::is_ascii_digit).count();
    digits >= 4 && q.chars().all(|c| c.is_ascii_digit() || " +-./()".contains(c))
}

/// The rows of a page and the total: a page that is not full (and not past
/// the end) says the total itself, so only full pages count.
async fn page_of<R: QueryableByName<Pg> + Send + 'static>(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    table: &str,
    columns: &str,
    conditions: &Conditions,
    order_by: &str,
    page: PageRequest,
) -> Result<(Vec<R>, u64), CrmFailure> {
    let (limit, offset) = bounds(page);
    let window = format!("ORDER BY {order_by} LIMIT {limit} OFFSET {offset}");
    let sql = if offset >= DEEP_OFFSET {
        // A deep page: its ids from the sort's index (read alone when the filters allow),
        // then only its rows, instead of reading every skipped row.
        let ids = conditions.select("id", table, &window);
        format!("SELECT {columns} FROM {table} WHERE tenant_id = $1 AND id IN ({ids}) ORDER BY {order_by}")
    } else {
        conditions.select(columns, table, &window)
    };
    let rows: Vec<R> = conditions.bind(sql, ctx).load(conn).await?;
    let fetched = u64::try_from(rows.len()).unwrap_or_default();
    let total = if let Some(total) = conditions.known_total {
        total
    } else if fetched < u64::from(page.limit()) && (fetched > 0 || offset == 0) {
        page.offset() + fetched
    } else {
        let counted: Counted = conditions.bind(conditions.count(table), ctx).get_result(conn).await?;
        counted.count()
    };
    Ok((rows, total))
}

// -------------------------------------------------------------- duplicates

#[derive(QueryableByName)]
struct Group {
    #[diesel(sql_type = Text)]
    reason: String,
    #[diesel(sql_type = Text)]
    value: String,
    #[diesel(sql_type = Array<SqlUuid>)]
    ids: Vec<uuid::Uuid>,
}

/// Groups of contacts sharing a key: the shared keys are found on
/// `crm_contact_keys`'s primary key first, so only their contacts are read.
async fn contact_groups(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
) -> Result<(Vec<ContactDuplicates>, bool), CrmFailure> {
    let groups: Vec<Group> = diesel::sql_query(format!(
        "WITH shared AS ( \
             SELECT kind, key FROM crm_contact_keys WHERE tenant_id = $1 \
             GROUP BY kind, key HAVING count(*) > 1 ORDER BY kind, key LIMIT {}) \
         SELECT s.kind AS reason, s.key AS value, \
                (array_agg(c.id ORDER BY c.created_at, c.id))[1:{MAX_GROUP_MEMBERS}] AS ids \
         FROM shared s \
         JOIN crm_contact_keys k ON k.tenant_id = $1 AND k.kind = s.kind AND k.key = s.key \
         JOIN crm_contacts c ON c.tenant_id = $1 AND c.id = k.contact_id \
         GROUP BY s.kind, s.key ORDER BY s.kind, s.key",
        MAX_DUPLICATE_GROUPS + 1
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .load(conn)
    .await?;
    let truncated = groups.len() > MAX_DUPLICATE_GROUPS;
    let groups = groups
        .into_iter()
        .take(MAX_DUPLICATE_GROUPS)
        .map(|group| {
            Ok(ContactDuplicates {
                reason: enum_of::<MatchReason>(&group.reason)?,
                value: group.value,
                contact_ids: group.ids.into_iter().map(ContactId::from_uuid).collect(),
            })
        })
        .collect::<Result<_, CrmFailure>>()?;
    Ok((groups, truncated))
}

/// Groups of companies sharing a domain or a normalised name (both indexed).
async fn company_groups(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
) -> Result<(Vec<CompanyDuplicates>, bool), CrmFailure> {
    let groups: Vec<Group> = diesel::sql_query(format!(
        "WITH shared AS ( \
             SELECT reason, value FROM ( \
                 SELECT 'domain' AS reason, domain AS value FROM crm_companies \
                 WHERE tenant_id = $1 AND domain IS NOT NULL GROUP BY domain HAVING count(*) > 1 \
                 UNION ALL \
                 SELECT 'name' AS reason, name_key AS value FROM crm_companies \
                 WHERE tenant_id = $1 AND name_key IS NOT NULL GROUP BY name_key HAVING count(*) > 1) AS found \
             ORDER BY reason, value COLLATE \"C\" LIMIT {}) \
         SELECT s.reason, s.value, (array_agg(c.id ORDER BY c.created_at, c.id))[1:{MAX_GROUP_MEMBERS}] AS ids \
         FROM shared s \
         JOIN crm_companies c ON c.tenant_id = $1 \
              AND ((s.reason = 'domain' AND c.domain = s.value) OR (s.reason = 'name' AND c.name_key = s.value)) \
         GROUP BY s.reason, s.value ORDER BY s.reason, s.value COLLATE \"C\"",
        MAX_DUPLICATE_GROUPS + 1
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .load(conn)
    .await?;
    let truncated = groups.len() > MAX_DUPLICATE_GROUPS;
    let groups = groups
        .into_iter()
        .take(MAX_DUPLICATE_GROUPS)
        .map(|group| {
            Ok(CompanyDuplicates {
                reason: enum_of::<MatchReason>(&group.reason)?,
                value: group.value,
                company_ids: group.ids.into_iter().map(CompanyId::from_uuid).collect(),
            })
        })
        .collect::<Result<_, CrmFailure>>()?;
    Ok((groups, truncated))
}

// ------------------------------------------------------------------ merges

#[derive(QueryableByName)]
struct Linked {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
}

/// The ids of the rows of `table` whose `column` is `record`.
async fn linked(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    table: &str,
    column: &str,
    record: uuid::Uuid,
) -> Result<Vec<uuid::Uuid>, CrmFailure> {
    let rows: Vec<Linked> = diesel::sql_query(format!(
        "SELECT id FROM {table} WHERE tenant_id = $1 AND {column} = $2 ORDER BY id"
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(record)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// Points `column` of the rows `ids` of `table` at `kept`.
async fn repoint(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    table: &str,
    column: &str,
    ids: &[uuid::Uuid],
    kept: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<(), CrmFailure> {
    if ids.is_empty() {
        return Ok(());
    }
    diesel::sql_query(format!(
        "UPDATE {table} SET {column} = $3, updated_at = $4 WHERE tenant_id = $1 AND id = ANY($2)"
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<SqlUuid, _>(kept)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a merge: the merged record as it was and what was re-pointed.
#[allow(clippy::too_many_arguments)]
async fn record_merge(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    kind: &str,
    kept: uuid::Uuid,
    merged: uuid::Uuid,
    snapshot: serde_json::Value,
    repointed: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), CrmFailure> {
    diesel::sql_query(
        "INSERT INTO crm_merges (tenant_id, id, kind, kept_id, merged_id, merged, repointed, merged_at, merged_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(uuid::Uuid::now_v7())
    .bind::<Text, _>(kind)
    .bind::<SqlUuid, _>(kept)
    .bind::<SqlUuid, _>(merged)
    .bind::<Jsonb, _>(snapshot)
    .bind::<Jsonb, _>(repointed)
    .bind::<Timestamptz, _>(now)
    .bind::<Nullable<SqlUuid>, _>(match &ctx.actor {
        portico_kernel::Actor::User { user_id, .. } => Some(user_id.into_uuid()),
        _ => None,
    })
    .execute(conn)
    .await?;
    Ok(())
}

/// `value` (a record) with `mergedId` added, for the merge's audit row.
fn with_merged_id(value: serde_json::Value, merged: Option<uuid::Uuid>) -> serde_json::Value {
    match value {
        serde_json::Value::Object(mut fields) => {
            fields.insert("mergedId".into(), serde_json::json!(merged));
            serde_json::Value::Object(fields)
        }
        other => other,
    }
}

fn uuids<T: Copy>(ids: &[T], into: impl Fn(T) -> uuid::Uuid) -> Vec<uuid::Uuid> {
    ids.iter().copied().map(into).collect()
}

impl Store {
    // ------------------------------------------------------------ contacts

    /// A page of the tenant's contacts matching `filter`, in its order.
    pub async fn contacts(
        &self,
        ctx: &TenantContext,
        filter: ContactFilter,
        page: PageRequest,
    ) -> Result<Page<Contact>, CrmError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                // Fast under RLS: `tenant_id = $1` is explicit and leads every index; the order is
                // exactly one index's (walked in order and stopped at the page's end); only the
                // filters asked for are in the SQL (no `$n IS NULL OR` to defeat the planner); a
                // search first computes its ids once (a materialized CTE) from prefix ranges of
                // `crm_search_terms`, whose "C" text comparisons are leakproof and so stay index
                // conditions under the policy, then reads only those rows; and the total is
                // counted only for a full page (from the search's ids alone when nothing else
                // filters). Measured with 100,000 contacts: see the area's notes in docs.
                let mut conditions = Conditions::new();
                if let Some(status) = filter.status {
                    let p = conditions.param(crate::crm::text_of(&status));
                    conditions.push(format!("status = {p}"));
                }
                if let Some(kind) = filter.contact_type {
                    let p = conditions.param(crate::crm::text_of(&kind));
                    conditions.push(format!("contact_type = {p}"));
                }
                if let Some(owner) = filter.owner_id {
                    let p = conditions.param(owner.to_string());
                    conditions.push(format!("owner_id = {p}::uuid"));
                }
                if let Some(company) = filter.company_id {
                    let p = conditions.param(company.to_string());
                    conditions.push(format!("company_id = {p}::uuid"));
                }
                conditions.tag("contact", filter.tag.as_deref());
                if let Some(from) = filter.created_from {
                    let p = conditions.param(from.to_rfc3339());
                    conditions.push(format!("created_at >= {p}::timestamptz"));
                }
                if let Some(to) = filter.created_to {
                    let p = conditions.param(to.to_rfc3339());
                    conditions.push(format!("created_at < {p}::timestamptz"));
                }
                if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
                    // Each word: contacts with a term starting with it, or working for a company with
                    // one; every word must match. A phone number in any format matches too.
                    let mut sets: Vec<String> = Vec::new();
                    for word in search_words(conn, q).await? {
                        let own = conditions.term_ids("contact", &word);
                        let companies = conditions.term_ids("company", &word);
                        sets.push(format!(
                            "({own} UNION SELECT id FROM crm_contacts WHERE tenant_id = $1 AND company_id IN ({companies}))"
                        ));
                    }
                    let mut alternatives: Vec<String> = Vec::new();
                    if !sets.is_empty() {
                        alternatives.push(format!("({})", sets.join(" INTERSECT ")));
                    }
                    if phone_like(q)
                        && let Some(phone) = normalise_phone(q, calling_code(conn, &ctx).await?)
                    {
                        alternatives.push(format!("({})", conditions.term_ids("contact", &phone)));
                    }
                    if !alternatives.is_empty() {
                        let hits = alternatives.join(" UNION ");
                        let first = format!("SELECT id FROM ({hits}) AS hits LIMIT {}", ID_LIST_LIMIT + 1);
                        let ids: Vec<Hit> = conditions.bind(first, &ctx).load(conn).await?;
                        if ids.len() <= ID_LIST_LIMIT {
                            // The search's terms are no longer needed: a fresh set of conditions
                            // would renumber the filters' parameters, so the words stay bound.
                            conditions.among(ids.into_iter().map(|hit| hit.id).collect());
                        } else {
                            conditions.matching(hits);
                        }
                    }
                }
                let (rows, total) = page_of::<ContactRow>(
                    conn,
                    &ctx,
                    "crm_contacts",
                    CONTACT_COLUMNS,
                    &conditions,
                    filter.sort.order_by(),
                    page,
                )
                .await?;
                let contacts = rows.into_iter().map(ContactRow::into_contact).collect::<Result<_, _>>()?;
                Ok(Page::new(contacts, page, total))
            })
        })
        .await
        .map_err(resolve)
    }

    /// One contact of the tenant.
    pub async fn contact(&self, ctx: &TenantContext, id: ContactId) -> Result<Contact, CrmError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move { load_contact(conn, &ctx, id, false).await })
        })
        .await
        .map_err(resolve)
    }

    /// Creates a contact: phones read in the tenant's country, the owner a
    /// member of the tenant, the company one of its companies.
    pub async fn create_contact(
        &self,
        ctx: &TenantContext,
        draft: ContactDraft,
    ) -> Result<Contact, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let code = calling_code(conn, &ctx).await?;
                let contact = draft.validated(ContactId::new(), code, now).map_err(Failure::Domain)?;
                if let Some(owner) = contact.owner_id {
                    check_member(conn, &ctx, owner, "ownerId").await?;
                }
                insert_contact(conn, &ctx, &contact, code).await?;
                let entry =
                    AuditEntry::between("crm.contact.create", "contact", contact.id, None, Some(&contact));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(contact)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Replaces every field of a contact; a new owner must be a member of the tenant.
    pub async fn update_contact(
        &self,
        ctx: &TenantContext,
        id: ContactId,
        draft: ContactDraft,
    ) -> Result<Contact, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_contact(conn, &ctx, id, true).await?;
                let code = calling_code(conn, &ctx).await?;
                let after = draft.apply(&before, code, now).map_err(Failure::Domain)?;
                if let Some(owner) = after.owner_id.filter(|owner| Some(*owner) != before.owner_id) {
                    check_member(conn, &ctx, owner, "ownerId").await?;
                }
                update_contact(conn, &ctx, &after, code).await?;
                let entry =
                    AuditEntry::between("crm.contact.update", "contact", id, Some(&before), Some(&after));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(after)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Deletes a contact: the activities about it alone go with it, other
    /// activities, deals and leads keep no contact. One that requested
    /// support tickets is merged, not deleted: refused.
    pub async fn delete_contact(&self, ctx: &TenantContext, id: ContactId) -> Result<(), CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_contact(conn, &ctx, id, true).await?;
                if !linked(conn, &ctx, "crm_tickets", "requester_contact_id", id.into_uuid())
                    .await?
                    .is_empty()
                {
                    return Err(Failure::Domain(CrmError::ContactHasTickets));
                }
                // Activities about this contact alone go with it; others stay, unlinked from it.
                let activities =
                    crate::crm::delete_sole_activities(conn, &ctx, "contact_id", id.into_uuid()).await?;
                let deleted = diesel::sql_query("DELETE FROM crm_contacts WHERE tenant_id = $1 AND id = $2")
                    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                    .bind::<SqlUuid, _>(id.into_uuid())
                    .execute(conn)
                    .await;
                match deleted {
                    // A ticket naming it arrived after the check.
                    Err(error) if is_foreign_key_violation(&error) => {
                        return Err(Failure::Domain(CrmError::ContactHasTickets));
                    }
                    other => other?,
                };
                let entry = crate::crm::with_activities_deleted(
                    AuditEntry::between("crm.contact.delete", "contact", id, Some(&before), None),
                    activities,
                );
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }

    /// Merges one contact into another in one transaction: both locked, the
    /// domain's merge planned, every activity, deal, lead and ticket of the
    /// merged contact re-pointed at the kept one, the kept one updated, the
    /// merge recorded (`crm_merges`) and audited, the merged one deleted.
    pub async fn merge_contacts(
        &self,
        ctx: &TenantContext,
        command: MergeContacts,
    ) -> Result<Contact, CrmError> {
        let command = command.validated()?;
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                // Locked in id order, so two merges of the same pair cannot deadlock; the locks also
                // hold off any new row naming the merged contact (its foreign key check waits).
                let (keep_id, merged_id) = (command.keep_id, command.merged_id);
                let (first, second) = if keep_id.into_uuid() < merged_id.into_uuid() {
                    (keep_id, merged_id)
                } else {
                    (merged_id, keep_id)
                };
                let a = load_contact(conn, &ctx, first, true).await?;
                let b = load_contact(conn, &ctx, second, true).await?;
                let (keep, merged) = if a.id == keep_id { (a, b) } else { (b, a) };
                let from = merged.id.into_uuid();
                let links = ContactLinks {
                    activities: linked(conn, &ctx, "crm_activities", "contact_id", from)
                        .await?
                        .into_iter()
                        .map(ActivityId::from_uuid)
                        .collect(),
                    deals: linked(conn, &ctx, "crm_deals", "contact_id", from)
                        .await?
                        .into_iter()
                        .map(DealId::from_uuid)
                        .collect(),
                    leads: linked(conn, &ctx, "crm_leads", "contact_id", from)
                        .await?
                        .into_iter()
                        .map(LeadId::from_uuid)
                        .collect(),
                    tickets: linked(conn, &ctx, "crm_tickets", "requester_contact_id", from)
                        .await?
                        .into_iter()
                        .map(TicketId::from_uuid)
                        .collect(),
                };
                let plan = merge_contacts(&keep, &merged, links, now)
                    .and_then(portico_crm::ContactMerge::within_limits)
                    .map_err(Failure::Domain)?;
                let to = keep.id.into_uuid();
                let repointed = &plan.repoint;
                let activities = uuids(&repointed.activities, ActivityId::into_uuid);
                let deals = uuids(&repointed.deals, DealId::into_uuid);
                let leads = uuids(&repointed.leads, LeadId::into_uuid);
                let tickets = uuids(&repointed.tickets, TicketId::into_uuid);
                repoint(conn, &ctx, "crm_activities", "contact_id", &activities, to, now).await?;
                repoint(conn, &ctx, "crm_deals", "contact_id", &deals, to, now).await?;
                repoint(conn, &ctx, "crm_leads", "contact_id", &leads, to, now).await?;
                repoint(conn, &ctx, "crm_tickets", "requester_contact_id", &tickets, to, now).await?;
                let code = calling_code(conn, &ctx).await?;
                update_contact(conn, &ctx, &plan.kept, code).await?;
                let record = serde_json::json!({
                    "activities": activities, "deals": deals, "leads": leads, "tickets": tickets,
                });
                record_merge(conn, &ctx, "contact", to, from, json_of(&plan.merged)?, record, now).await?;
                diesel::sql_query("DELETE FROM crm_contacts WHERE tenant_id = $1 AND id = $2")
                    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                    .bind::<SqlUuid, _>(from)
                    .execute(conn)
                    .await?;
                let before = with_merged_id(json_of(&keep)?, None);
                let after = with_merged_id(json_of(&plan.kept)?, Some(from));
                let entry =
                    AuditEntry::between("crm.contact.merge", "contact", keep.id, Some(&before), Some(&after));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(plan.kept)
            })
        })
        .await
        .map_err(resolve)
    }

    // ----------------------------------------------------------- companies

    /// A page of the tenant's companies matching `filter`, in its order.
    pub async fn companies(
        &self,
        ctx: &TenantContext,
        filter: CompanyFilter,
        page: PageRequest,
    ) -> Result<Page<Company>, CrmError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                // As the contacts' list: explicit tenant, index order, only the filters asked for.
                let mut conditions = Conditions::new();
                if let Some(industry) = filter.industry.as_deref().map(str::trim).filter(|i| !i.is_empty()) {
                    let p = conditions.param(industry);
                    conditions.push(format!("lower(industry) = lower({p})"));
                }
                if let Some(owner) = filter.owner_id {
                    let p = conditions.param(owner.to_string());
                    conditions.push(format!("owner_id = {p}::uuid"));
                }
                conditions.tag("company", filter.tag.as_deref());
                if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
                    let sets: Vec<String> = search_words(conn, q)
                        .await?
                        .iter()
                        .map(|word| format!("({})", conditions.term_ids("company", word)))
                        .collect();
                    if !sets.is_empty() {
                        conditions.matching(sets.join(" INTERSECT "));
                    }
                }
                let (rows, total) = page_of::<CompanyRow>(
                    conn,
                    &ctx,
                    "crm_companies",
                    COMPANY_COLUMNS,
                    &conditions,
                    filter.sort.order_by(),
                    page,
                )
                .await?;
                let companies = rows.into_iter().map(CompanyRow::into_company).collect::<Result<_, _>>()?;
                Ok(Page::new(companies, page, total))
            })
        })
        .await
        .map_err(resolve)
    }

    /// One company of the tenant.
    pub async fn company(&self, ctx: &TenantContext, id: CompanyId) -> Result<Company, CrmError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move { load_company(conn, &ctx, id, false).await })
        })
        .await
        .map_err(resolve)
    }

    /// Creates a company; the owner must be a member of the tenant.
    pub async fn create_company(
        &self,
        ctx: &TenantContext,
        draft: CompanyDraft,
    ) -> Result<Company, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        let company = draft.validated(CompanyId::new(), now)?;
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                if let Some(owner) = company.owner_id {
                    check_member(conn, &ctx, owner, "ownerId").await?;
                }
                insert_company(conn, &ctx, &company).await?;
                let entry =
                    AuditEntry::between("crm.company.create", "company", company.id, None, Some(&company));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(company)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Replaces every field of a company; a new owner must be a member of the tenant.
    pub async fn update_company(
        &self,
        ctx: &TenantContext,
        id: CompanyId,
        draft: CompanyDraft,
    ) -> Result<Company, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_company(conn, &ctx, id, true).await?;
                let after = draft.apply(&before, now).map_err(Failure::Domain)?;
                if let Some(owner) = after.owner_id.filter(|owner| Some(*owner) != before.owner_id) {
                    check_member(conn, &ctx, owner, "ownerId").await?;
                }
                update_company(conn, &ctx, &after).await?;
                let entry =
                    AuditEntry::between("crm.company.update", "company", id, Some(&before), Some(&after));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(after)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Deletes a company: the activities about it alone go with it; its
    /// contacts, other activities, deals and leads keep no company.
    pub async fn delete_company(&self, ctx: &TenantContext, id: CompanyId) -> Result<(), CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_company(conn, &ctx, id, true).await?;
                // Activities about this company alone go with it; others stay, unlinked from it.
                let activities =
                    crate::crm::delete_sole_activities(conn, &ctx, "company_id", id.into_uuid()).await?;
                diesel::sql_query("DELETE FROM crm_companies WHERE tenant_id = $1 AND id = $2")
                    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                    .bind::<SqlUuid, _>(id.into_uuid())
                    .execute(conn)
                    .await?;
                let entry = crate::crm::with_activities_deleted(
                    AuditEntry::between("crm.company.delete", "company", id, Some(&before), None),
                    activities,
                );
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }

    /// Merges one company into another in one transaction: both locked, the
    /// domain's merge planned, every contact, activity, deal and lead of the
    /// merged company re-pointed at the kept one, the kept one updated, the
    /// merge recorded (`crm_merges`) and audited, the merged one deleted.
    pub async fn merge_companies(
        &self,
        ctx: &TenantContext,
        command: MergeCompanies,
    ) -> Result<Company, CrmError> {
        let command = command.validated()?;
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let (keep_id, merged_id) = (command.keep_id, command.merged_id);
                let (first, second) = if keep_id.into_uuid() < merged_id.into_uuid() {
                    (keep_id, merged_id)
                } else {
                    (merged_id, keep_id)
                };
                let a = load_company(conn, &ctx, first, true).await?;
                let b = load_company(conn, &ctx, second, true).await?;
                let (keep, merged) = if a.id == keep_id { (a, b) } else { (b, a) };
                let from = merged.id.into_uuid();
                let links = CompanyLinks {
                    contacts: linked(conn, &ctx, "crm_contacts", "company_id", from)
                        .await?
                        .into_iter()
                        .map(ContactId::from_uuid)
                        .collect(),
                    activities: linked(conn, &ctx, "crm_activities", "company_id", from)
                        .await?
                        .into_iter()
                        .map(ActivityId::from_uuid)
                        .collect(),
                    deals: linked(conn, &ctx, "crm_deals", "company_id", from)
                        .await?
                        .into_iter()
                        .map(DealId::from_uuid)
                        .collect(),
                    leads: linked(conn, &ctx, "crm_leads", "company_id", from)
                        .await?
                        .into_iter()
                        .map(LeadId::from_uuid)
                        .collect(),
                };
                let plan = merge_companies(&keep, &merged, links, now)
                    .and_then(portico_crm::CompanyMerge::within_limits)
                    .map_err(Failure::Domain)?;
                let to = keep.id.into_uuid();
                let repointed = &plan.repoint;
                let contacts = uuids(&repointed.contacts, ContactId::into_uuid);
                let activities = uuids(&repointed.activities, ActivityId::into_uuid);
                let deals = uuids(&repointed.deals, DealId::into_uuid);
                let leads = uuids(&repointed.leads, LeadId::into_uuid);
                repoint(conn, &ctx, "crm_contacts", "company_id", &contacts, to, now).await?;
                repoint(conn, &ctx, "crm_activities", "company_id", &activities, to, now).await?;
                repoint(conn, &ctx, "crm_deals", "company_id", &deals, to, now).await?;
                repoint(conn, &ctx, "crm_leads", "company_id", &leads, to, now).await?;
                update_company(conn, &ctx, &plan.kept).await?;
                let record = serde_json::json!({
                    "contacts": contacts, "activities": activities, "deals": deals, "leads": leads,
                });
                record_merge(conn, &ctx, "company", to, from, json_of(&plan.merged)?, record, now).await?;
                diesel::sql_query("DELETE FROM crm_companies WHERE tenant_id = $1 AND id = $2")
                    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                    .bind::<SqlUuid, _>(from)
                    .execute(conn)
                    .await?;
                let before = with_merged_id(json_of(&keep)?, None);
                let after = with_merged_id(json_of(&plan.kept)?, Some(from));
                let entry =
                    AuditEntry::between("crm.company.merge", "company", keep.id, Some(&before), Some(&after));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(plan.kept)
            })
        })
        .await
        .map_err(resolve)
    }

    // ---------------------------------------------------------- duplicates

    /// The tenant's duplicate contacts and companies (`kind`: only those).
    pub async fn duplicates(
        &self,
        ctx: &TenantContext,
        kind: Option<DuplicateKind>,
    ) -> Result<Duplicates, CrmError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let mut report = Duplicates::default();
                if kind != Some(DuplicateKind::Companies) {
                    let (groups, truncated) = contact_groups(conn, &ctx).await?;
                    report.contacts = groups;
                    report.truncated |= truncated;
                }
                if kind != Some(DuplicateKind::Contacts) {
                    let (groups, truncated) = company_groups(conn, &ctx).await?;
                    report.companies = groups;
                    report.truncated |= truncated;
                }
                Ok(report)
            })
        })
        .await
        .map_err(resolve)
    }
}
