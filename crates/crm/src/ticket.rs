//! Support tickets: who asked, how urgent it is, where it is in its life
//! (open, pending, resolved, closed), its comments, and its service-level
//! clocks.
//!
//! The clocks run only while a ticket is open. Pending (waiting on the
//! requester) and resolved stop them; returning to open starts them again
//! with the time that was left, so a reopened ticket resumes its resolution
//! clock rather than getting a fresh one, and a breach stays a breach.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use portico_kernel::{CommentId, ContactId, TicketId, UserId, ValidationErrors};
use serde::{Deserialize, Serialize};

use crate::CrmError;
use crate::sla::{SlaPolicy, clock_time, due_at, resumed_due};
use crate::text::{paragraphs_not_blank, plain_text};

/// Who a ticket is for: a contact of the tenant, or a user of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Requester {
    /// A contact in the tenant's CRM.
    #[serde(rename_all = "camelCase")]
    Contact {
        /// The contact.
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
        contact_id: ContactId,
    },
    /// A user with an account (a member of the tenant, or a tenant asking the platform).
    #[serde(rename_all = "camelCase")]
    User {
        /// The user.
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
        user_id: UserId,
    },
}

/// How urgent a ticket is; it picks the ticket's service-level targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TicketPriority {
    /// Whenever there is time.
    Low,
    /// The usual.
    #[default]
    Normal,
    /// Soon.
    High,
    /// Now: something is down.
    Urgent,
}

impl TicketPriority {
    /// Every priority, lowest first.
    pub const ALL: [Self; 4] = [Self::Low, Self::Normal, Self::High, Self::Urgent];

    /// The name stored and sent.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
            Self::Urgent => "urgent",
        }
    }
}

impl fmt::Display for TicketPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TicketPriority {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|p| p.as_str() == text).ok_or_else(|| format!("unknown priority `{text}`"))
    }
}

/// Where a ticket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Support is working on it; the clocks run.
    Open,
    /// Waiting on the requester; the clocks are stopped.
    Pending,
    /// Support considers it solved; it may still be reopened.
    Resolved,
    /// Done for good: nothing changes any more.
    Closed,
}

impl TicketStatus {
    /// Every status.
    pub const ALL: [Self; 4] = [Self::Open, Self::Pending, Self::Resolved, Self::Closed];

    /// The name stored and sent.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Pending => "pending",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
        }
    }

    /// Whether a ticket may go from this status to `to` (closed goes nowhere).
    #[must_use]
    pub const fn can_become(self, to: Self) -> bool {
        matches!(
            (self, to),
            (Self::Open, Self::Pending | Self::Resolved)
                | (Self::Pending, Self::Open | Self::Resolved)
                | (Self::Resolved, Self::Open | Self::Closed)
        )
    }
}

impl fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TicketStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|s| s.as_str() == text).ok_or_else(|| format!("unknown status `{text}`"))
    }
}

/// A support ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e70", "number": 42,
    "subject": "Invoices page shows an error", "description": "Since this morning the invoices page says 500.",
    "requester": {"type": "contact", "contactId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e71"},
    "priority": "high", "status": "open", "assignee": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e72",
    "createdAt": "2026-11-06T17:30:00Z", "firstResponseDue": "2026-11-09T11:30:00Z",
    "resolutionDue": "2026-11-10T17:30:00Z", "firstRespondedAt": null, "resolvedAt": null,
    "closedAt": null, "slaStoppedAt": null
})))]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: TicketId,
    /// Its number for people (`#42`), from the tenant's sequence; none until the store assigns it.
    pub number: Option<i64>,
    /// What it is about, in one line.
    pub subject: String,
    /// The request in full.
    pub description: String,
    /// Who asked.
    pub requester: Requester,
    /// How urgent it is.
    pub priority: TicketPriority,
    /// Where it is in its life.
    pub status: TicketStatus,
    /// The agent working on it, if anyone.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub assignee: Option<UserId>,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When the first public reply by an agent is due.
    pub first_response_due: DateTime<Utc>,
    /// When it is due to be resolved.
    pub resolution_due: DateTime<Utc>,
    /// When an agent first replied publicly.
    pub first_responded_at: Option<DateTime<Utc>>,
    /// When it was last resolved; cleared when it is reopened.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When it was closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// When its service-level clocks stopped (it went pending or resolved); none while they run.
    pub sla_stopped_at: Option<DateTime<Utc>>,
}

/// Which of a ticket's service-level targets are missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SlaBreaches {
    /// The first public reply came, or is still missing, after it was due.
    pub first_response: bool,
    /// The clock ran past the resolution due time.
    pub resolution: bool,
}

impl SlaBreaches {
    /// Whether any target is missed.
    #[must_use]
    pub const fn any(self) -> bool {
        self.first_response || self.resolution
    }
}

/// Postgres keeps microseconds: every instant the domain records is cut to them.
fn instant(now: DateTime<Utc>) -> DateTime<Utc> {
    now.trunc_subsecs(6)
}

impl Ticket {
    /// Which targets are missed as of `now`. A stopped clock is judged as of
    /// the moment it stopped; a due instant itself is still in time.
    #[must_use]
    pub fn breached(&self, now: DateTime<Utc>) -> SlaBreaches {
        let clock = self.sla_stopped_at.unwrap_or(now);
        SlaBreaches {
            first_response: self.first_responded_at.unwrap_or(clock) > self.first_response_due,
            resolution: clock > self.resolution_due,
        }
    }

    /// The ticket moved to `command.status` at `now`, its clocks stopped or
    /// started again under `policy`'s business hours. Closed tickets refuse
    /// with [`CrmError::TicketClosed`]; moves the status machine does not
    /// allow with [`CrmError::TicketTransition`].
    pub fn change_status(
        &self,
        command: ChangeStatus,
        now: DateTime<Utc>,
        policy: &SlaPolicy,
    ) -> Result<Self, CrmError> {
        let (from, to) = (self.status, command.status);
        if from == TicketStatus::Closed {
            return Err(CrmError::TicketClosed);
        }
        if !from.can_become(to) {
            return Err(CrmError::TicketTransition { from, to });
        }
        let now = instant(now);
        let mut ticket = match to {
            TicketStatus::Open => self.resumed(now, policy),
            TicketStatus::Pending => self.stopped(now),
            TicketStatus::Resolved => Self { resolved_at: Some(now), ..self.stopped(now) },
            TicketStatus::Closed => Self { closed_at: Some(now), ..self.clone() },
        };
        ticket.status = to;
        Ok(ticket)
    }

    /// The ticket handed to `command.assignee` (nobody when absent). Whether
    /// the assignee is an agent of the tenant is the store's to check.
    pub fn assign(&self, command: Assign) -> Result<Self, CrmError> {
        if self.status == TicketStatus::Closed {
            return Err(CrmError::TicketClosed);
        }
        Ok(Self { assignee: command.assignee, ..self.clone() })
    }

    /// The comment `id` by `author` at `now`, and the ticket after it: an
    /// agent's first public comment is the first response, and a public
    /// comment by the requester puts a pending or resolved ticket back to
    /// open (its clocks start again). Requesters write no internal comments;
    /// closed tickets take none.
    pub fn comment(
        &self,
        command: NewComment,
        id: CommentId,
        author: CommentAuthor,
        now: DateTime<Utc>,
        policy: &SlaPolicy,
    ) -> Result<(Self, Comment), CrmError> {
        garde::Validate::validate(&command).map_err(|report| CrmError::Invalid(report.into()))?;
        if self.status == TicketStatus::Closed {
            return Err(CrmError::TicketClosed);
        }
        if command.internal && author == CommentAuthor::Requester {
            return Err(CrmError::Invalid(ValidationErrors::field(
                "internal",
                "internal comments are for agents only",
            )));
        }
        let now = instant(now);
        let mut ticket = self.clone();
        match author {
            CommentAuthor::Agent { .. } if !command.internal && self.first_responded_at.is_none() => {
                // A reply while the clocks are stopped is judged by the time that had run.
                if let Some(stopped_at) = self.sla_stopped_at {
                    ticket.first_response_due =
                        resumed_due(self.first_response_due, stopped_at, now, policy.business_hours.as_ref());
                }
                ticket.first_responded_at = Some(now);
            }
            CommentAuthor::Requester
                if !command.internal
                    && matches!(self.status, TicketStatus::Pending | TicketStatus::Resolved) =>
            {
                ticket = Self { status: TicketStatus::Open, ..self.resumed(now, policy) };
            }
            _ => {}
        }
        let comment = Comment {
            id,
            ticket_id: self.id,
            author,
            body: command.body,
            internal: command.internal,
            created_at: now,
        };
        Ok((ticket, comment))
    }

    /// The ticket with `changes` applied. A new priority takes its targets
    /// under `policy`, counted from the ticket's creation: each due time is
    /// the new target after `created_at`, plus the clock time its clock was
    /// already stopped (what the old due time had gained over its target), so
    /// time spent pending still does not count. A first response already
    /// given keeps the due time it was judged by. Closed tickets refuse with
    /// [`CrmError::TicketClosed`].
    pub fn revise(&self, changes: TicketChanges, policy: &SlaPolicy) -> Result<Self, CrmError> {
        garde::Validate::validate(&changes).map_err(|report| CrmError::Invalid(report.into()))?;
        if self.status == TicketStatus::Closed {
            return Err(CrmError::TicketClosed);
        }
        let mut ticket = Self {
            subject: changes.subject,
            description: changes.description,
            priority: changes.priority,
            ..self.clone()
        };
        if changes.priority != self.priority {
            let hours = policy.business_hours.as_ref();
            let (old, new) = (policy.targets(self.priority), policy.targets(changes.priority));
            let moved = |due: DateTime<Utc>, old_target: TimeDelta, new_target: TimeDelta| {
                let stopped = (clock_time(self.created_at, due, hours) - old_target).max(TimeDelta::zero());
                due_at(self.created_at, new_target + stopped, hours)
            };
            ticket.resolution_due = moved(self.resolution_due, old.resolution(), new.resolution());
            if self.first_responded_at.is_none() {
                ticket.first_response_due =
                    moved(self.first_response_due, old.first_response(), new.first_response());
            }
        }
        Ok(ticket)
    }

    /// The ticket with its clocks stopped at `now` (a clock already stopped stays stopped since then).
    fn stopped(&self, now: DateTime<Utc>) -> Self {
        Self { sla_stopped_at: self.sla_stopped_at.or(Some(now)), ..self.clone() }
    }

    /// The ticket with its clocks running again from `now`: each due time
    /// still ahead when they stopped moves by the clock time they were stopped.
    fn resumed(&self, now: DateTime<Utc>, policy: &SlaPolicy) -> Self {
        let mut ticket = Self { resolved_at: None, sla_stopped_at: None, ..self.clone() };
        if let Some(stopped_at) = self.sla_stopped_at {
            let hours = policy.business_hours.as_ref();
            ticket.resolution_due = resumed_due(self.resolution_due, stopped_at, now, hours);
            if self.first_responded_at.is_none() {
                ticket.first_response_due = resumed_due(self.first_response_due, stopped_at, now, hours);
            }
        }
        ticket
    }
}

/// Opens a ticket (`POST /api/v1/tickets`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "subject": "Invoices page shows an error", "description": "Since this morning the invoices page says 500.",
    "requester": {"type": "contact", "contactId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e71"},
    "priority": "high", "assignee": null
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TicketDraft {
    /// What it is about, 1 to 200 characters on one line.
    #[garde(length(chars, min = 1, max = 200), custom(plain_text))]
    pub subject: String,
    /// The request in full, 1 to 20,000 characters.
    #[garde(length(chars, min = 1, max = 20_000), custom(paragraphs_not_blank))]
    pub description: String,
    /// Who asked (whether the contact or user exists is the store's to check).
    #[garde(skip)]
    pub requester: Requester,
    /// How urgent it is (default `normal`).
    #[serde(default)]
    #[garde(skip)]
    pub priority: TicketPriority,
    /// The agent to work on it, if already known.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    #[garde(skip)]
    pub assignee: Option<UserId>,
}

impl TicketDraft {
    /// The open ticket `id` as the draft describes it, checked, opened at
    /// `now` with its due times from `policy`'s targets for its priority.
    pub fn validated(self, id: TicketId, now: DateTime<Utc>, policy: &SlaPolicy) -> Result<Ticket, CrmError> {
        garde::Validate::validate(&self).map_err(|report| CrmError::Invalid(report.into()))?;
        let now = instant(now);
        let targets = policy.targets(self.priority);
        let hours = policy.business_hours.as_ref();
        Ok(Ticket {
            id,
            number: None,
            subject: self.subject,
            description: self.description,
            requester: self.requester,
            priority: self.priority,
            status: TicketStatus::Open,
            assignee: self.assignee,
            created_at: now,
            first_response_due: due_at(now, targets.first_response(), hours),
            resolution_due: due_at(now, targets.resolution(), hours),
            first_responded_at: None,
            resolved_at: None,
            closed_at: None,
            sla_stopped_at: None,
        })
    }
}

/// Replaces a ticket's subject, description and priority (`PUT /api/v1/tickets/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "subject": "Invoices page shows an error 500", "description": "Since this morning the invoices page says 500.",
    "priority": "urgent"
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TicketChanges {
    /// What it is about, 1 to 200 characters on one line.
    #[garde(length(chars, min = 1, max = 200), custom(plain_text))]
    pub subject: String,
    /// The request in full, 1 to 20,000 characters.
    #[garde(length(chars, min = 1, max = 20_000), custom(paragraphs_not_blank))]
    pub description: String,
    /// How urgent it is; a change moves the due times (see [`Ticket::revise`]).
    #[garde(skip)]
    pub priority: TicketPriority,
}

/// Moves a ticket to another status (`POST /api/v1/tickets/{id}/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"status": "resolved"})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeStatus {
    /// The status to move to.
    #[garde(skip)]
    pub status: TicketStatus,
}

/// Hands a ticket to an agent, or to nobody (`POST /api/v1/tickets/{id}/assign`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"assignee": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e72"})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Assign {
    /// The agent; `null` to unassign.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[garde(skip)]
    pub assignee: Option<UserId>,
}

/// Who wrote a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum CommentAuthor {
    /// An agent of the tenant's support.
    #[serde(rename_all = "camelCase")]
    Agent {
        /// The agent.
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
        user_id: UserId,
    },
    /// The ticket's requester.
    Requester,
}

/// Comments on a ticket (`POST /api/v1/tickets/{id}/comments`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "body": "We have found the cause and are deploying a fix.", "internal": false
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewComment {
    /// The text, 1 to 20,000 characters.
    #[garde(length(chars, min = 1, max = 20_000), custom(paragraphs_not_blank))]
    pub body: String,
    /// A note among agents, never shown to the requester (default `false`).
    #[serde(default)]
    #[garde(skip)]
    pub internal: bool,
}

/// A comment on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e73", "ticketId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e70",
    "author": {"type": "agent", "userId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e72"},
    "body": "We have found the cause and are deploying a fix.", "internal": false,
    "createdAt": "2026-11-09T10:05:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: CommentId,
    /// The ticket it is on.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub ticket_id: TicketId,
    /// Who wrote it.
    pub author: CommentAuthor,
    /// The text.
    pub body: String,
    /// A note among agents, never shown to the requester.
    pub internal: bool,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// The comments a requester may see: every one but the internal ones, in the given order.
#[must_use]
pub fn visible_to_requester(comments: impl IntoIterator<Item = Comment>) -> Vec<Comment> {
    comments.into_iter().filter(|comment| !comment.internal).collect()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};

    use super::*;
    use crate::sla::BusinessHours;

    /// A UTC instant in November 2026 (the 2nd is a Monday, the 6th a Friday).
    fn nov(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, minute, 0).unwrap()
    }

    fn draft(priority: TicketPriority) -> TicketDraft {
        TicketDraft {
            subject: "Invoices page shows an error".into(),
            description: "Since this morning\nthe invoices page says 500.".into(),
            requester: Requester::Contact { contact_id: ContactId::new() },
            priority,
            assignee: None,
        }
    }

    /// An urgent ticket opened at Monday 10:00 under the default (calendar) policy:
    /// first response due 11:00, resolution due 14:00.
    fn urgent_at_ten() -> Ticket {
        draft(TicketPriority::Urgent)
            .validated(TicketId::new(), nov(2, 10, 0), &SlaPolicy::default())
            .unwrap()
    }

    fn to(ticket: &Ticket, status: TicketStatus, at: DateTime<Utc>) -> Result<Ticket, CrmError> {
        ticket.change_status(ChangeStatus { status }, at, &SlaPolicy::default())
    }

    fn agent() -> CommentAuthor {
        CommentAuthor::Agent { user_id: UserId::new() }
    }

    fn say(body: &str, internal: bool) -> NewComment {
        NewComment { body: body.into(), internal }
    }

    #[test]
    fn a_new_ticket_is_open_with_due_times_from_its_priority() {
        let ticket = urgent_at_ten();
        assert_eq!(ticket.status, TicketStatus::Open);
        assert_eq!(ticket.number, None);
        assert_eq!(ticket.created_at, nov(2, 10, 0));
        assert_eq!(ticket.first_response_due, nov(2, 11, 0));
        assert_eq!(ticket.resolution_due, nov(2, 14, 0));
        // Normal by default: 8 h and 3 days.
        let body = r#"{"subject": "Question", "description": "How do I export?",
                       "requester": {"type": "user", "userId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e72"}}"#;
        let normal: TicketDraft = serde_json::from_str(body).unwrap();
        let ticket = normal.validated(TicketId::new(), nov(2, 10, 0), &SlaPolicy::default()).unwrap();
        assert_eq!(ticket.priority, TicketPriority::Normal);
        assert_eq!(ticket.first_response_due, nov(2, 18, 0));
        assert_eq!(ticket.resolution_due, nov(5, 10, 0));
    }

    #[test]
    fn a_ticket_opened_friday_1730_under_office_hours_is_first_answered_by_monday_1230() {
        let policy = SlaPolicy {
            high: crate::sla::SlaTargets::hours(4, 9),
            business_hours: Some(BusinessHours::weekdays_nine_to_six(0)),
            ..SlaPolicy::default()
        };
        let ticket = draft(TicketPriority::High).validated(TicketId::new(), nov(6, 17, 30), &policy).unwrap();
        assert_eq!(ticket.first_response_due, nov(9, 12, 30));
        // 9 h: 30 min Friday, 8 h 30 Monday -> Monday 17:30.
        assert_eq!(ticket.resolution_due, nov(9, 17, 30));
    }

    #[test]
    fn a_draft_with_a_blank_subject_or_control_characters_is_refused() {
        let bad = TicketDraft {
            subject: "   ".into(),
            description: "a\u{0}b".into(),
            ..draft(TicketPriority::Low)
        };
        let Err(CrmError::Invalid(errors)) =
            bad.validated(TicketId::new(), nov(2, 10, 0), &SlaPolicy::default())
        else {
            panic!("expected a validation error")
        };
        let mut fields = errors.fields();
        fields.sort_unstable();
        assert_eq!(fields, vec!["description", "subject"]);
        let body = r#"{"subject": "x", "description": "y", "requester": {"type": "contact",
                       "contactId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e71"}, "status": "closed"}"#;
        assert!(serde_json::from_str::<TicketDraft>(body).is_err(), "unknown fields are refused");
    }

    #[test]
    fn the_status_machine_allows_exactly_the_documented_moves() {
        use TicketStatus::{Closed, Open, Pending, Resolved};
        let allowed = [
            (Open, Pending),
            (Open, Resolved),
            (Pending, Open),
            (Pending, Resolved),
            (Resolved, Open),
            (Resolved, Closed),
        ];
        for from in TicketStatus::ALL {
            for to in TicketStatus::ALL {
                assert_eq!(from.can_become(to), allowed.contains(&(from, to)), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn a_move_the_machine_does_not_allow_is_an_invalid_transition() {
        let ticket = urgent_at_ten();
        let err = to(&ticket, TicketStatus::Closed, nov(2, 10, 5)).unwrap_err();
        assert!(matches!(
            err,
            CrmError::TicketTransition { from: TicketStatus::Open, to: TicketStatus::Closed }
        ));
        assert_eq!(portico_kernel::DomainError::code(&err), "crm.ticket_transition");
        assert!(matches!(
            to(&ticket, TicketStatus::Open, nov(2, 10, 5)),
            Err(CrmError::TicketTransition { .. })
        ));
    }

    #[test]
    fn a_closed_ticket_is_final() {
        let resolved = to(&urgent_at_ten(), TicketStatus::Resolved, nov(2, 12, 0)).unwrap();
        let closed = to(&resolved, TicketStatus::Closed, nov(3, 12, 0)).unwrap();
        assert_eq!(closed.status, TicketStatus::Closed);
        assert_eq!(closed.closed_at, Some(nov(3, 12, 0)));
        assert_eq!(closed.resolved_at, Some(nov(2, 12, 0)));
        for status in TicketStatus::ALL {
            let err = to(&closed, status, nov(4, 9, 0)).unwrap_err();
            assert!(matches!(err, CrmError::TicketClosed));
            assert_eq!(portico_kernel::DomainError::code(&err), "crm.ticket_closed");
        }
        assert!(matches!(closed.assign(Assign { assignee: None }), Err(CrmError::TicketClosed)));
        assert!(matches!(
            closed.comment(
                say("hello?", false),
                CommentId::new(),
                CommentAuthor::Requester,
                nov(4, 9, 0),
                &SlaPolicy::default()
            ),
            Err(CrmError::TicketClosed)
        ));
    }

    #[test]
    fn time_in_pending_is_added_to_the_due_times_when_the_ticket_returns_to_open() {
        // Due 11:00 and 14:00; pending from 10:30 to 13:00 (2 h 30) -> due 13:30 and 16:30.
        let pending = to(&urgent_at_ten(), TicketStatus::Pending, nov(2, 10, 30)).unwrap();
        assert_eq!(pending.sla_stopped_at, Some(nov(2, 10, 30)));
        assert_eq!(pending.resolution_due, nov(2, 14, 0), "due times move only when the clock restarts");
        let open = to(&pending, TicketStatus::Open, nov(2, 13, 0)).unwrap();
        assert_eq!(open.sla_stopped_at, None);
        assert_eq!(open.first_response_due, nov(2, 13, 30));
        assert_eq!(open.resolution_due, nov(2, 16, 30));
    }

    #[test]
    fn pending_stops_the_clock_in_business_hours_too() {
        // Office hours, urgent 1 h / 4 h: opened Monday 16:00 -> due 17:00 and Tuesday 11:00.
        let policy = SlaPolicy {
            business_hours: Some(BusinessHours::weekdays_nine_to_six(0)),
            ..SlaPolicy::default()
        };
        let ticket =
            draft(TicketPriority::Urgent).validated(TicketId::new(), nov(2, 16, 0), &policy).unwrap();
        assert_eq!(ticket.resolution_due, nov(3, 11, 0));
        let answered = ticket
            .comment(say("Looking", false), CommentId::new(), agent(), nov(2, 16, 30), &policy)
            .unwrap()
            .0;
        // Pending Monday 17:00 (3 h of work left) to Wednesday 10:00 -> due Wednesday 13:00.
        let pending = answered
            .change_status(ChangeStatus { status: TicketStatus::Pending }, nov(2, 17, 0), &policy)
            .unwrap();
        let open = pending
            .change_status(ChangeStatus { status: TicketStatus::Open }, nov(4, 10, 0), &policy)
            .unwrap();
        assert_eq!(open.resolution_due, nov(4, 13, 0));
        assert_eq!(open.first_response_due, nov(2, 17, 0), "a clock already answered does not move");
    }

    #[test]
    fn a_pending_ticket_is_judged_as_of_when_its_clock_stopped() {
        let pending = to(&urgent_at_ten(), TicketStatus::Pending, nov(2, 10, 30)).unwrap();
        assert_eq!(pending.breached(nov(5, 0, 0)), SlaBreaches::default());
        let open = to(&pending, TicketStatus::Open, nov(5, 0, 0)).unwrap();
        // Due again 30 min and 3 h 30 after 00:00.
        assert_eq!(open.breached(nov(5, 0, 30)), SlaBreaches::default());
        assert_eq!(open.breached(nov(5, 0, 31)), SlaBreaches { first_response: true, resolution: false });
        assert_eq!(open.breached(nov(5, 3, 31)), SlaBreaches { first_response: true, resolution: true });
    }

    #[test]
    fn breaches_flag_each_missed_target_and_a_due_instant_is_still_in_time() {
        let ticket = urgent_at_ten();
        assert!(!ticket.breached(nov(2, 11, 0)).any());
        assert_eq!(ticket.breached(nov(2, 11, 1)), SlaBreaches { first_response: true, resolution: false });
        assert_eq!(ticket.breached(nov(2, 14, 1)), SlaBreaches { first_response: true, resolution: true });
        // Answered late at 11:30: that stays a breach; resolved at 13:00: in time, for good.
        let answered = ticket
            .comment(say("On it", false), CommentId::new(), agent(), nov(2, 11, 30), &SlaPolicy::default())
            .unwrap()
            .0;
        let resolved = to(&answered, TicketStatus::Resolved, nov(2, 13, 0)).unwrap();
        assert_eq!(resolved.breached(nov(9, 0, 0)), SlaBreaches { first_response: true, resolution: false });
    }

    #[test]
    fn reopening_clears_the_resolution_and_resumes_the_clock_with_the_time_that_was_left() {
        // Resolved at 12:00 with 2 h left; reopened the next day at 09:00 -> due 11:00.
        let resolved = to(&urgent_at_ten(), TicketStatus::Resolved, nov(2, 12, 0)).unwrap();
        assert_eq!(resolved.resolved_at, Some(nov(2, 12, 0)));
        assert_eq!(resolved.sla_stopped_at, Some(nov(2, 12, 0)));
        let reopened = to(&resolved, TicketStatus::Open, nov(3, 9, 0)).unwrap();
        assert_eq!(reopened.status, TicketStatus::Open);
        assert_eq!(reopened.resolved_at, None);
        assert_eq!(reopened.resolution_due, nov(3, 11, 0));
    }

    #[test]
    fn resolving_a_pending_ticket_keeps_the_clock_stopped_since_it_went_pending() {
        let pending = to(&urgent_at_ten(), TicketStatus::Pending, nov(2, 13, 0)).unwrap();
        let resolved = to(&pending, TicketStatus::Resolved, nov(2, 18, 0)).unwrap();
        assert_eq!(resolved.sla_stopped_at, Some(nov(2, 13, 0)));
        assert!(
            !resolved.breached(nov(3, 0, 0)).resolution,
            "resolved after 14:00 but the clock stopped at 13:00"
        );
    }

    #[test]
    fn an_agents_public_comment_is_the_first_response_and_an_internal_one_is_not() {
        let ticket = urgent_at_ten();
        let (noted, note) = ticket
            .comment(
                say("Check the logs", true),
                CommentId::new(),
                agent(),
                nov(2, 10, 10),
                &SlaPolicy::default(),
            )
            .unwrap();
        assert!(note.internal);
        assert_eq!(noted.first_responded_at, None);
        let (answered, reply) = noted
            .comment(
                say("We are on it", false),
                CommentId::new(),
                agent(),
                nov(2, 10, 20),
                &SlaPolicy::default(),
            )
            .unwrap();
        assert_eq!(answered.first_responded_at, Some(nov(2, 10, 20)));
        assert_eq!(reply.ticket_id, ticket.id);
        assert_eq!(reply.created_at, nov(2, 10, 20));
        let again = answered
            .comment(
                say("Still on it", false),
                CommentId::new(),
                agent(),
                nov(2, 10, 40),
                &SlaPolicy::default(),
            )
            .unwrap()
            .0;
        assert_eq!(again.first_responded_at, Some(nov(2, 10, 20)), "only the first reply counts");
    }

    #[test]
    fn a_first_response_while_the_clock_is_stopped_is_judged_by_the_time_that_ran() {
        // Due 11:00; pending 10:30 (30 min left); the agent replies at 15:00 -> due 15:30, in time.
        let pending = to(&urgent_at_ten(), TicketStatus::Pending, nov(2, 10, 30)).unwrap();
        let answered = pending
            .comment(
                say("Here you go", false),
                CommentId::new(),
                agent(),
                nov(2, 15, 0),
                &SlaPolicy::default(),
            )
            .unwrap()
            .0;
        assert_eq!(answered.first_response_due, nov(2, 15, 30));
        assert!(!answered.breached(nov(2, 16, 0)).first_response);
    }

    #[test]
    fn a_requesters_public_reply_puts_a_pending_or_resolved_ticket_back_to_open() {
        let policy = SlaPolicy::default();
        let pending = to(&urgent_at_ten(), TicketStatus::Pending, nov(2, 10, 30)).unwrap();
        let (open, comment) = pending
            .comment(
                say("Here is the log", false),
                CommentId::new(),
                CommentAuthor::Requester,
                nov(2, 11, 30),
                &policy,
            )
            .unwrap();
        assert_eq!(comment.author, CommentAuthor::Requester);
        assert_eq!(open.status, TicketStatus::Open);
        assert_eq!(open.resolution_due, nov(2, 15, 0), "one hour in pending");
        assert_eq!(open.first_responded_at, None, "the requester's reply is no response");
        let resolved = to(&open, TicketStatus::Resolved, nov(2, 12, 0)).unwrap();
        let reopened = resolved
            .comment(
                say("Still broken", false),
                CommentId::new(),
                CommentAuthor::Requester,
                nov(2, 13, 0),
                &policy,
            )
            .unwrap()
            .0;
        assert_eq!(reopened.status, TicketStatus::Open);
        assert_eq!(reopened.resolved_at, None);
    }

    #[test]
    fn a_requester_cannot_write_an_internal_comment() {
        let Err(CrmError::Invalid(errors)) = urgent_at_ten().comment(
            say("psst", true),
            CommentId::new(),
            CommentAuthor::Requester,
            nov(2, 10, 5),
            &SlaPolicy::default(),
        ) else {
            panic!("expected a validation error")
        };
        assert_eq!(errors.fields(), vec!["internal"]);
    }

    #[test]
    fn internal_comments_are_never_shown_to_the_requester() {
        let ticket = urgent_at_ten();
        let policy = SlaPolicy::default();
        let (_, public) =
            ticket.comment(say("Hello", false), CommentId::new(), agent(), nov(2, 10, 1), &policy).unwrap();
        let (_, internal) =
            ticket.comment(say("VIP", true), CommentId::new(), agent(), nov(2, 10, 2), &policy).unwrap();
        assert_eq!(visible_to_requester([public.clone(), internal]), vec![public]);
    }

    #[test]
    fn assigning_hands_the_ticket_over_and_null_unassigns_it() {
        let agent_id = UserId::new();
        let assigned = urgent_at_ten().assign(Assign { assignee: Some(agent_id) }).unwrap();
        assert_eq!(assigned.assignee, Some(agent_id));
        let body: Assign = serde_json::from_str(r#"{"assignee": null}"#).unwrap();
        assert_eq!(assigned.assign(body).unwrap().assignee, None);
    }

    #[test]
    fn recorded_instants_are_cut_to_microseconds() {
        let now = nov(2, 10, 0) + TimeDelta::nanoseconds(1_234_567);
        let ticket =
            draft(TicketPriority::Low).validated(TicketId::new(), now, &SlaPolicy::default()).unwrap();
        assert_eq!(ticket.created_at, nov(2, 10, 0) + TimeDelta::microseconds(1_234));
    }

    #[test]
    fn statuses_and_priorities_round_trip_through_their_names() {
        for status in TicketStatus::ALL {
            assert_eq!(status.as_str().parse::<TicketStatus>(), Ok(status));
            assert_eq!(serde_json::to_string(&status).unwrap(), format!("\"{status}\""));
        }
        for priority in TicketPriority::ALL {
            assert_eq!(priority.as_str().parse::<TicketPriority>(), Ok(priority));
        }
        assert!("solved".parse::<TicketStatus>().is_err());
        let requester = Requester::User { user_id: "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e72".parse().unwrap() };
        assert_eq!(
            serde_json::to_value(requester).unwrap(),
            serde_json::json!({"type": "user", "userId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e72"})
        );
    }

    fn changes(priority: TicketPriority) -> TicketChanges {
        TicketChanges {
            subject: "Invoices page: error 500".into(),
            description: "Since this morning the invoices page says 500.".into(),
            priority,
        }
    }

    #[test]
    fn a_revision_replaces_the_text_and_keeps_the_due_times_of_an_unchanged_priority() {
        let ticket = urgent_at_ten();
        let revised = ticket.revise(changes(TicketPriority::Urgent), &SlaPolicy::default()).unwrap();
        assert_eq!(revised.subject, "Invoices page: error 500");
        assert_eq!(
            (revised.first_response_due, revised.resolution_due),
            (ticket.first_response_due, ticket.resolution_due)
        );
        assert_eq!(
            (revised.id, revised.created_at, revised.status),
            (ticket.id, ticket.created_at, ticket.status)
        );
    }

    #[test]
    fn a_new_priority_takes_its_targets_from_the_creation_time() {
        // Urgent at Monday 10:00 (1 h / 4 h) lowered to normal (8 h / 3 days): 18:00 and Thursday 10:00.
        let lowered = urgent_at_ten().revise(changes(TicketPriority::Normal), &SlaPolicy::default()).unwrap();
        assert_eq!(lowered.first_response_due, nov(2, 18, 0));
        assert_eq!(lowered.resolution_due, nov(5, 10, 0));
        // Under office hours: high (4 h / 1 day = 24 working hours) opened Friday 17:30 ->
        // Monday 12:30 and (30 min Fri + 9 h Mon, Tue, 5 h 30 Wed) Wednesday 14:30.
        let policy = SlaPolicy {
            business_hours: Some(BusinessHours::weekdays_nine_to_six(0)),
            ..SlaPolicy::default()
        };
        let low = draft(TicketPriority::Low).validated(TicketId::new(), nov(6, 17, 30), &policy).unwrap();
        let raised = low.revise(changes(TicketPriority::High), &policy).unwrap();
        assert_eq!(raised.first_response_due, nov(9, 12, 30));
        assert_eq!(raised.resolution_due, nov(11, 14, 30));
    }

    #[test]
    fn a_new_priority_keeps_the_time_the_clock_was_stopped() {
        // Urgent 10:00, pending 10:30 to 13:00 (2 h 30 stopped): due 13:30 and 16:30.
        let pending = to(&urgent_at_ten(), TicketStatus::Pending, nov(2, 10, 30)).unwrap();
        let open = to(&pending, TicketStatus::Open, nov(2, 13, 0)).unwrap();
        // As high (4 h / 24 h) from 10:00 plus the 2 h 30: 16:30 and Tuesday 12:30.
        let raised = open.revise(changes(TicketPriority::High), &SlaPolicy::default()).unwrap();
        assert_eq!(raised.first_response_due, nov(2, 16, 30));
        assert_eq!(raised.resolution_due, nov(3, 12, 30));
    }

    #[test]
    fn a_first_response_already_given_keeps_its_due_time() {
        let answered = urgent_at_ten()
            .comment(say("On it", false), CommentId::new(), agent(), nov(2, 10, 30), &SlaPolicy::default())
            .unwrap()
            .0;
        let lowered = answered.revise(changes(TicketPriority::Low), &SlaPolicy::default()).unwrap();
        assert_eq!(lowered.first_response_due, nov(2, 11, 0));
        assert_eq!(lowered.resolution_due, nov(9, 10, 0), "low: 7 days from creation");
    }

    #[test]
    fn a_closed_ticket_or_a_bad_revision_is_refused() {
        let resolved = to(&urgent_at_ten(), TicketStatus::Resolved, nov(2, 12, 0)).unwrap();
        let closed = to(&resolved, TicketStatus::Closed, nov(3, 12, 0)).unwrap();
        assert!(matches!(
            closed.revise(changes(TicketPriority::Low), &SlaPolicy::default()),
            Err(CrmError::TicketClosed)
        ));
        let blank = TicketChanges { subject: " ".into(), ..changes(TicketPriority::Low) };
        let Err(CrmError::Invalid(errors)) = urgent_at_ten().revise(blank, &SlaPolicy::default()) else {
            panic!("expected a validation error")
        };
        assert_eq!(errors.fields(), vec!["subject"]);
        let body = r#"{"subject": "x", "description": "y", "priority": "high", "status": "closed"}"#;
        assert!(serde_json::from_str::<TicketChanges>(body).is_err(), "unknown fields are refused");
    }
}
