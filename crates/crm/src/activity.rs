//! Activities (calls, emails, meetings, notes and tasks) logged against
//! leads, contacts, companies and deals, and the timeline of a record, which
//! merges its activities with its audited changes and the messages sent to it.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, Utc};
use portico_kernel::{ActivityId, AuditId, CompanyId, ContactId, DealId, LeadId, UserId, ValidationErrors};
use serde::{Deserialize, Serialize};

use crate::CrmError;
use crate::text::{paragraphs, plain_text};

/// What sort of activity it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// A phone call.
    Call,
    /// An email written outside Portico.
    Email,
    /// A meeting.
    Meeting,
    /// A note.
    Note,
    /// Something someone has to do.
    Task,
}

/// An activity's kind, with what only a task has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActivityDetail {
    /// A phone call.
    Call,
    /// An email written outside Portico.
    Email,
    /// A meeting.
    Meeting,
    /// A note.
    Note,
    /// Something someone has to do.
    #[serde(rename_all = "camelCase")]
    Task {
        /// When it is due, if it is.
        due_date: Option<NaiveDate>,
        /// Who has to do it.
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
        assignee_id: UserId,
        /// When it was done; `null` while it is not.
        done_at: Option<DateTime<Utc>>,
    },
}

impl ActivityDetail {
    /// The kind, without a task's details.
    #[must_use]
    pub const fn kind(&self) -> ActivityKind {
        match self {
            Self::Call => ActivityKind::Call,
            Self::Email => ActivityKind::Email,
            Self::Meeting => ActivityKind::Meeting,
            Self::Note => ActivityKind::Note,
            Self::Task { .. } => ActivityKind::Task,
        }
    }
}

/// A record of the CRM that has a timeline (the `{type}/{id}` of its path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum RecordRef {
    /// A lead.
    Lead(LeadId),
    /// A contact.
    Contact(ContactId),
    /// A company.
    Company(CompanyId),
    /// A deal.
    Deal(DealId),
}

/// The records an activity is about: at least one of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "contactId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e30", "dealId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e20"
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivityLinks {
    /// A lead.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    pub lead_id: Option<LeadId>,
    /// A contact.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    pub contact_id: Option<ContactId>,
    /// A company.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    pub company_id: Option<CompanyId>,
    /// A deal.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    pub deal_id: Option<DealId>,
}

impl ActivityLinks {
    /// True when the activity would be about nothing.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.lead_id.is_none()
            && self.contact_id.is_none()
            && self.company_id.is_none()
            && self.deal_id.is_none()
    }

    /// True when `record` is one of the linked records.
    #[must_use]
    pub fn includes(&self, record: RecordRef) -> bool {
        match record {
            RecordRef::Lead(id) => self.lead_id == Some(id),
            RecordRef::Contact(id) => self.contact_id == Some(id),
            RecordRef::Company(id) => self.company_id == Some(id),
            RecordRef::Deal(id) => self.deal_id == Some(id),
        }
    }
}

/// A call, email, meeting, note or task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e50", "kind": "task", "dueDate": "2026-11-28",
    "assigneeId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e01", "doneAt": null,
    "subject": "Send the revised quote", "body": null, "occurredAt": "2026-11-24T10:30:00Z",
    "links": {"contactId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e30", "dealId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e20"},
    "createdBy": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e01",
    "createdAt": "2026-11-24T10:30:00Z", "updatedAt": "2026-11-24T10:30:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: ActivityId,
    /// Its kind, with a task's due date, assignee and completion.
    #[serde(flatten)]
    pub detail: ActivityDetail,
    /// What it is about, in a line.
    pub subject: String,
    /// Notes, minutes, the text of the email.
    pub body: Option<String>,
    /// When it happened, or is planned to (a meeting).
    pub occurred_at: DateTime<Utc>,
    /// The records it is about.
    pub links: ActivityLinks,
    /// Who logged it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub created_by: UserId,
    /// When it was logged.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Activity {
    /// The activity as `draft` describes it now (`PUT`); a task that stays a task stays done or not.
    pub fn revise(&self, draft: ActivityDraft, now: DateTime<Utc>) -> Result<Self, CrmError> {
        let done_at = match &self.detail {
            ActivityDetail::Task { done_at, .. } => *done_at,
            _ => None,
        };
        let revised = draft.validated(self.id, self.created_by, now)?;
        let detail = match revised.detail {
            ActivityDetail::Task { due_date, assignee_id, .. } => {
                ActivityDetail::Task { due_date, assignee_id, done_at }
            }
            other => other,
        };
        Ok(Self { detail, created_at: self.created_at, ..revised })
    }
}

/// Logs an activity (`POST /api/v1/crm/activities`), or its new state (`PUT`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "kind": "task", "subject": "Send the revised quote", "dueDate": "2026-11-28",
    "links": {"dealId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e20"}
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivityDraft {
    /// `call`, `email`, `meeting`, `note` or `task`.
    #[garde(skip)]
    pub kind: ActivityKind,
    /// 1 to 200 characters.
    #[garde(length(chars, min = 1, max = 200), custom(plain_text))]
    pub subject: String,
    /// Up to 20,000 characters; line breaks and tabs allowed.
    #[serde(default)]
    #[garde(inner(length(chars, max = 20_000), custom(paragraphs)))]
    pub body: Option<String>,
    /// When it happened or is planned; now when absent.
    #[serde(default)]
    #[garde(skip)]
    pub occurred_at: Option<DateTime<Utc>>,
    /// The records it is about: at least one.
    #[garde(custom(not_empty))]
    pub links: ActivityLinks,
    /// Tasks only: when it is due.
    #[serde(default)]
    #[garde(skip)]
    pub due_date: Option<NaiveDate>,
    /// Tasks only: who has to do it; whoever logs it when absent.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    #[garde(skip)]
    pub assignee_id: Option<UserId>,
}

impl ActivityDraft {
    /// The activity `id`, logged by `creator` at `now`, checked: only a task
    /// has a due date and an assignee.
    pub fn validated(
        self,
        id: ActivityId,
        creator: UserId,
        now: DateTime<Utc>,
    ) -> Result<Activity, CrmError> {
        let mut errors = garde::Validate::validate(&self)
            .map_or_else(ValidationErrors::from, |()| ValidationErrors::default());
        if self.kind != ActivityKind::Task {
            if self.due_date.is_some() {
                errors.0.extend(ValidationErrors::field("dueDate", "only a task has a due date").0);
            }
            if self.assignee_id.is_some() {
                errors.0.extend(ValidationErrors::field("assigneeId", "only a task has an assignee").0);
            }
        }
        if !errors.is_empty() {
            return Err(CrmError::Invalid(errors));
        }
        let detail = match self.kind {
            ActivityKind::Call => ActivityDetail::Call,
            ActivityKind::Email => ActivityDetail::Email,
            ActivityKind::Meeting => ActivityDetail::Meeting,
            ActivityKind::Note => ActivityDetail::Note,
            ActivityKind::Task => ActivityDetail::Task {
                due_date: self.due_date,
                assignee_id: self.assignee_id.unwrap_or(creator),
                done_at: None,
            },
        };
        Ok(Activity {
            id,
            detail,
            subject: self.subject,
            body: self.body,
            occurred_at: self.occurred_at.unwrap_or(now),
            links: self.links,
            created_by: creator,
            created_at: now,
            updated_at: now,
        })
    }
}

/// The task, done at `now` (`POST /api/v1/crm/activities/{id}/complete`).
pub fn complete_task(activity: &Activity, now: DateTime<Utc>) -> Result<Activity, CrmError> {
    match &activity.detail {
        ActivityDetail::Task { done_at: Some(_), .. } => Err(CrmError::TaskAlreadyDone),
        ActivityDetail::Task { due_date, assignee_id, done_at: None } => Ok(Activity {
            detail: ActivityDetail::Task {
                due_date: *due_date,
                assignee_id: *assignee_id,
                done_at: Some(now),
            },
            updated_at: now,
            ..activity.clone()
        }),
        _ => Err(CrmError::NotATask),
    }
}

/// The task, not done after all (`POST /api/v1/crm/activities/{id}/reopen`).
pub fn reopen_task(activity: &Activity, now: DateTime<Utc>) -> Result<Activity, CrmError> {
    match &activity.detail {
        ActivityDetail::Task { done_at: None, .. } => Err(CrmError::TaskNotDone),
        ActivityDetail::Task { due_date, assignee_id, done_at: Some(_) } => Ok(Activity {
            detail: ActivityDetail::Task { due_date: *due_date, assignee_id: *assignee_id, done_at: None },
            updated_at: now,
            ..activity.clone()
        }),
        _ => Err(CrmError::NotATask),
    }
}

/// A change to a record, as the caller reads it from the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e60", "at": "2026-11-24T11:00:00Z", "action": "crm.contact.update",
    "by": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e01",
    "changes": {"contactType": {"before": "prospect", "after": "customer"}}
})))]
#[serde(rename_all = "camelCase")]
pub struct RecordChange {
    /// The audit row.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: AuditId,
    /// When.
    pub at: DateTime<Utc>,
    /// What happened (`crm.deal.move`).
    pub action: String,
    /// The person who made it; none for an API key or the platform itself.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub by: Option<UserId>,
    /// `{"field": {"before": .., "after": ..}}`, masked as the trail keeps it.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub changes: serde_json::Value,
}

/// A message sent to a record (SMS, email, WhatsApp), as the messaging domain describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e61", "at": "2026-11-24T12:00:00Z", "channel": "sms",
    "summary": "Your quote is ready", "status": "delivered"
})))]
#[serde(rename_all = "camelCase")]
pub struct TimelineMessage {
    /// The message's id in the messaging domain.
    pub id: String,
    /// When it was sent.
    pub at: DateTime<Utc>,
    /// The channel (`sms`, `email`, `whatsapp`).
    pub channel: String,
    /// A line to show: the subject, or the start of the text.
    pub summary: String,
    /// Its delivery status (`sent`, `delivered`, `failed`).
    pub status: String,
}

/// One entry of a record's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "type": "activity", "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e50", "kind": "call",
    "subject": "Intro call", "body": "Talked budget.", "occurredAt": "2026-11-24T10:30:00Z",
    "links": {"contactId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e30"},
    "createdBy": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e01",
    "createdAt": "2026-11-24T10:30:00Z", "updatedAt": "2026-11-24T10:30:00Z"
})))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TimelineEntry {
    /// An activity about the record.
    Activity(Activity),
    /// A change to the record.
    Change(RecordChange),
    /// A message sent to the record.
    Message(TimelineMessage),
}

impl TimelineEntry {
    /// When it happened.
    #[must_use]
    pub const fn at(&self) -> DateTime<Utc> {
        match self {
            Self::Activity(activity) => activity.occurred_at,
            Self::Change(change) => change.at,
            Self::Message(message) => message.at,
        }
    }

    /// Newest first; at the same instant activities, then messages, then
    /// changes, each newest id first, so the order never depends on the
    /// order of the inputs.
    fn newest_first(&self, other: &Self) -> Ordering {
        let rank = |entry: &Self| match entry {
            Self::Activity(_) => 0,
            Self::Message(_) => 1,
            Self::Change(_) => 2,
        };
        other.at().cmp(&self.at()).then_with(|| rank(self).cmp(&rank(other))).then_with(|| {
            match (self, other) {
                (Self::Activity(a), Self::Activity(b)) => b.id.cmp(&a.id),
                (Self::Change(a), Self::Change(b)) => b.id.cmp(&a.id),
                (Self::Message(a), Self::Message(b)) => b.id.cmp(&a.id),
                _ => Ordering::Equal,
            }
        })
    }
}

/// A record's timeline: its `activities`, its `changes` from the audit
/// trail and the `messages` sent to it, newest first. The caller loads each
/// kind for the record (the newest N of each, for a page of N) and keeps
/// the first N of the result.
#[must_use]
pub fn timeline(
    activities: &[Activity],
    changes: &[RecordChange],
    messages: &[TimelineMessage],
) -> Vec<TimelineEntry> {
    let mut entries: Vec<TimelineEntry> = activities
        .iter()
        .cloned()
        .map(TimelineEntry::Activity)
        .chain(changes.iter().cloned().map(TimelineEntry::Change))
        .chain(messages.iter().cloned().map(TimelineEntry::Message))
        .collect();
    entries.sort_by(TimelineEntry::newest_first);
    entries
}

fn not_empty(links: &ActivityLinks, _: &()) -> garde::Result {
    if links.is_empty() {
        Err(garde::Error::new("link the activity to a lead, contact, company or deal"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, hour, 0, 0).unwrap()
    }

    fn draft(json: serde_json::Value) -> ActivityDraft {
        serde_json::from_value(json).unwrap()
    }

    fn task(assignee: UserId) -> Activity {
        let deal = DealId::new();
        draft(serde_json::json!({"kind": "task", "subject": "Send the quote", "dueDate": "2026-11-28",
            "assigneeId": assignee, "links": {"dealId": deal}}))
        .validated(ActivityId::new(), UserId::new(), at(9))
        .unwrap()
    }

    fn note(occurred_at: DateTime<Utc>) -> Activity {
        draft(serde_json::json!({"kind": "note", "subject": "Met at the fair",
            "links": {"contactId": ContactId::new()}}))
        .validated(ActivityId::new(), UserId::new(), occurred_at)
        .unwrap()
    }

    fn change(at: DateTime<Utc>) -> RecordChange {
        RecordChange {
            id: AuditId::new(),
            at,
            action: "crm.contact.update".into(),
            by: Some(UserId::new()),
            changes: serde_json::json!({"status": {"before": "prospect", "after": "customer"}}),
        }
    }

    fn message(id: &str, at: DateTime<Utc>) -> TimelineMessage {
        TimelineMessage {
            id: id.into(),
            at,
            channel: "sms".into(),
            summary: "Your quote is ready".into(),
            status: "delivered".into(),
        }
    }

    fn invalid_fields<T: std::fmt::Debug>(result: Result<T, CrmError>) -> Vec<String> {
        match result {
            Err(CrmError::Invalid(errors)) => errors.fields().into_iter().map(str::to_owned).collect(),
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_call_is_logged_now_by_its_creator_against_its_records() {
        let (creator, contact, deal) = (UserId::new(), ContactId::new(), DealId::new());
        let call = draft(serde_json::json!({"kind": "call", "subject": "Intro call",
            "body": "Talked budget.\nFollow up in a week.", "links": {"contactId": contact, "dealId": deal}}))
        .validated(ActivityId::new(), creator, at(9))
        .unwrap();
        assert_eq!(
            (call.detail.clone(), call.occurred_at, call.created_by),
            (ActivityDetail::Call, at(9), creator)
        );
        assert!(call.links.includes(RecordRef::Contact(contact)));
        assert!(call.links.includes(RecordRef::Deal(deal)));
        assert!(!call.links.includes(RecordRef::Company(CompanyId::new())));
    }

    #[test]
    fn an_activity_is_about_at_least_one_record() {
        let refused = draft(serde_json::json!({"kind": "note", "subject": "x", "links": {}})).validated(
            ActivityId::new(),
            UserId::new(),
            at(9),
        );
        assert_eq!(invalid_fields(refused), ["links"]);
    }

    #[test]
    fn only_a_task_has_a_due_date_and_an_assignee() {
        let refused =
            draft(serde_json::json!({"kind": "meeting", "subject": "Demo", "dueDate": "2026-11-28",
            "assigneeId": UserId::new(), "links": {"leadId": LeadId::new()}}))
            .validated(ActivityId::new(), UserId::new(), at(9));
        assert_eq!(invalid_fields(refused), ["dueDate", "assigneeId"]);
    }

    #[test]
    fn a_task_is_assigned_to_whoever_logs_it_unless_told_otherwise() {
        let creator = UserId::new();
        let task = draft(serde_json::json!({"kind": "task", "subject": "Call back",
            "links": {"companyId": CompanyId::new()}}))
        .validated(ActivityId::new(), creator, at(9))
        .unwrap();
        assert_eq!(task.detail, ActivityDetail::Task { due_date: None, assignee_id: creator, done_at: None });
    }

    #[test]
    fn subjects_and_bodies_refuse_control_characters_but_bodies_keep_line_breaks() {
        let refused = draft(serde_json::json!({"kind": "note", "subject": "a\u{0}b", "body": "x\u{7}",
            "links": {"leadId": LeadId::new()}}))
        .validated(ActivityId::new(), UserId::new(), at(9));
        assert_eq!(invalid_fields(refused), ["body", "subject"]);
        assert!(
            serde_json::from_value::<ActivityDraft>(serde_json::json!({"kind": "note", "subject": "x",
            "links": {"leadId": LeadId::new(), "ticketId": LeadId::new()}}))
            .is_err()
        );
    }

    #[test]
    fn completing_a_task_records_when_and_only_once() {
        let open = task(UserId::new());
        let done = complete_task(&open, at(11)).unwrap();
        assert!(matches!(done.detail, ActivityDetail::Task { done_at: Some(when), .. } if when == at(11)));
        assert_eq!(done.updated_at, at(11));
        assert!(matches!(complete_task(&done, at(12)), Err(CrmError::TaskAlreadyDone)));
        let reopened = reopen_task(&done, at(12)).unwrap();
        assert!(matches!(reopened.detail, ActivityDetail::Task { done_at: None, .. }));
        assert!(matches!(reopen_task(&reopened, at(13)), Err(CrmError::TaskNotDone)));
    }

    #[test]
    fn only_tasks_are_completed() {
        assert!(matches!(complete_task(&note(at(9)), at(10)), Err(CrmError::NotATask)));
        assert!(matches!(reopen_task(&note(at(9)), at(10)), Err(CrmError::NotATask)));
    }

    #[test]
    fn revising_a_done_task_keeps_it_done_and_its_creation() {
        let done = complete_task(&task(UserId::new()), at(10)).unwrap();
        let assignee = UserId::new();
        let revised = done
            .revise(
                draft(serde_json::json!({"kind": "task", "subject": "Send the final quote",
                    "assigneeId": assignee, "links": {"dealId": DealId::new()}})),
                at(12),
            )
            .unwrap();
        assert_eq!(
            revised.detail,
            ActivityDetail::Task { due_date: None, assignee_id: assignee, done_at: Some(at(10)) }
        );
        assert_eq!((revised.id, revised.created_at, revised.updated_at), (done.id, at(9), at(12)));
        assert_eq!(revised.created_by, done.created_by);
    }

    #[test]
    fn an_activity_serialises_its_kind_flat_and_its_links_nested() {
        let assignee = UserId::new();
        let task = task(assignee);
        let json = serde_json::to_value(&task).unwrap();
        assert_eq!(json["kind"], "task");
        assert_eq!(json["dueDate"], "2026-11-28");
        assert_eq!(json["assigneeId"], serde_json::json!(assignee));
        assert!(json["doneAt"].is_null());
        assert!(json["links"]["dealId"].is_string());
        assert!(json["links"]["contactId"].is_null());
        assert_eq!(serde_json::from_value::<Activity>(json).unwrap(), task);
    }

    #[test]
    fn a_timeline_merges_activities_changes_and_messages_newest_first() {
        let call = note(at(10));
        let update = change(at(12));
        let sms = message("msg-1", at(11));
        let older = note(at(8));
        let entries = timeline(
            &[older.clone(), call.clone()],
            std::slice::from_ref(&update),
            std::slice::from_ref(&sms),
        );
        assert_eq!(
            entries,
            [
                TimelineEntry::Change(update),
                TimelineEntry::Message(sms),
                TimelineEntry::Activity(call),
                TimelineEntry::Activity(older)
            ]
        );
        let times: Vec<DateTime<Utc>> = entries.iter().map(TimelineEntry::at).collect();
        assert_eq!(times, [at(12), at(11), at(10), at(8)]);
    }

    #[test]
    fn a_timeline_breaks_ties_the_same_whatever_the_input_order() {
        let (a, b) = (note(at(10)), note(at(10)));
        let (first, second) = if a.id < b.id { (a, b) } else { (b, a) };
        let (update, sms_a, sms_b) = (change(at(10)), message("msg-a", at(10)), message("msg-b", at(10)));
        let expected = vec![
            TimelineEntry::Activity(second.clone()),
            TimelineEntry::Activity(first.clone()),
            TimelineEntry::Message(sms_b.clone()),
            TimelineEntry::Message(sms_a.clone()),
            TimelineEntry::Change(update.clone()),
        ];
        let forwards = timeline(
            &[first.clone(), second.clone()],
            std::slice::from_ref(&update),
            &[sms_a.clone(), sms_b.clone()],
        );
        let backwards = timeline(&[second, first], &[update], &[sms_b, sms_a]);
        assert_eq!(forwards, expected);
        assert_eq!(backwards, expected);
    }

    #[test]
    fn an_empty_record_has_an_empty_timeline() {
        assert!(timeline(&[], &[], &[]).is_empty());
    }

    #[test]
    fn timeline_entries_say_what_they_are() {
        let entries =
            timeline(&[note(at(9))], &[change(at(9) + Duration::minutes(1))], &[message("m", at(8))]);
        let json = serde_json::to_value(&entries).unwrap();
        assert_eq!(json[0]["type"], "change");
        assert_eq!(json[0]["action"], "crm.contact.update");
        assert_eq!(json[1]["type"], "activity");
        assert_eq!(json[1]["kind"], "note");
        assert_eq!(json[2]["type"], "message");
        assert_eq!(json[2]["channel"], "sms");
    }
}
