//! Deals: possible sales on a pipeline, and the one rule for moving them
//! between stages, which decides when a deal is won, lost or reopened and
//! records every move as a [`StageChange`].
//!
//! A deal's probability follows its stage's default unless the deal has its
//! own (`probabilityOverride`). An override holds until the deal's next move:
//! a new stage means a new judgement, so a move drops it unless the move
//! gives one. Moving the deals of a removed stage ([`relocate`]) is nobody's
//! judgement about them, so it keeps their overrides. A won deal counts at
//! 100 % and a lost one at 0 %, whatever it said before.

use chrono::{DateTime, NaiveDate, Utc};
use portico_kernel::{CompanyId, ContactId, DealId, Money, PipelineId, StageId, UserId, ValidationErrors};
use serde::{Deserialize, Serialize};

use crate::text::{amount, check, plain_text};
use crate::{CrmError, Pipeline, StageKind, StageRemoval};

/// Where a deal stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DealStatus {
    /// Still being worked on.
    Open,
    /// Won.
    #[serde(rename_all = "camelCase")]
    Won {
        /// When it was won.
        closed_at: DateTime<Utc>,
        /// Why, if someone said.
        reason: Option<String>,
    },
    /// Lost.
    #[serde(rename_all = "camelCase")]
    Lost {
        /// When it was lost.
        closed_at: DateTime<Utc>,
        /// Why.
        reason: String,
    },
}

impl DealStatus {
    /// When the deal was won or lost; none while it is open.
    #[must_use]
    pub const fn closed_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Open => None,
            Self::Won { closed_at, .. } | Self::Lost { closed_at, .. } => Some(*closed_at),
        }
    }

    /// The kind of stage a deal in this status sits in.
    #[must_use]
    pub const fn stage_kind(&self) -> StageKind {
        match self {
            Self::Open => StageKind::Open,
            Self::Won { .. } => StageKind::Won,
            Self::Lost { .. } => StageKind::Lost,
        }
    }
}

/// A possible sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e20", "title": "Acme: 40 seats",
    "value": {"amountMinor": 1200000, "currency": "EUR"},
    "pipelineId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e10", "stageId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e11",
    "probabilityOverride": null, "expectedCloseDate": "2026-12-31",
    "ownerId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e01", "contactId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e30",
    "companyId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e40", "status": "open",
    "createdAt": "2026-11-23T09:00:00Z", "updatedAt": "2026-11-24T10:30:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct Deal {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: DealId,
    /// What is being sold, to whom.
    pub title: String,
    /// What it is worth.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub value: Money,
    /// The pipeline it is on.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub pipeline_id: PipelineId,
    /// Its stage in that pipeline.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub stage_id: StageId,
    /// Its own probability in percent, in place of its stage's default; `null` follows the stage.
    pub probability_override: Option<u8>,
    /// When it is expected to close.
    pub expected_close_date: Option<NaiveDate>,
    /// Who works on it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub owner_id: UserId,
    /// The person it is with.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub contact_id: Option<ContactId>,
    /// The company it is with.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub company_id: Option<CompanyId>,
    /// Open, won or lost.
    #[serde(flatten)]
    pub status: DealStatus,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Deal {
    /// Its probability in percent, on `pipeline` (its own): 100 when won, 0
    /// when lost, else its override or its stage's default (0 for a stage
    /// `pipeline` does not have).
    #[must_use]
    pub fn probability(&self, pipeline: &Pipeline) -> u8 {
        match &self.status {
            DealStatus::Won { .. } => 100,
            DealStatus::Lost { .. } => 0,
            DealStatus::Open => self
                .probability_override
                .or_else(|| pipeline.stage(self.stage_id).map(|stage| stage.probability))
                .unwrap_or(0),
        }
    }

    /// The deal with its editable fields replaced by `changes`.
    pub fn revise(&self, changes: DealChanges, now: DateTime<Utc>) -> Result<Self, CrmError> {
        let changes = check(changes)?;
        if changes.probability.is_some() && self.status != DealStatus::Open {
            return Err(invalid("probability", "a won deal counts at 100 %, a lost one at 0 %"));
        }
        Ok(Self {
            title: changes.title,
            value: changes.value,
            probability_override: changes.probability,
            expected_close_date: changes.expected_close_date,
            owner_id: changes.owner_id,
            contact_id: changes.contact_id,
            company_id: changes.company_id,
            updated_at: now,
            ..self.clone()
        })
    }
}

/// One move of a deal, as its history keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "dealId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e20",
    "fromPipelineId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e10", "fromStageId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e11",
    "toPipelineId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e10", "toStageId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e13",
    "at": "2026-11-24T10:30:00Z", "by": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e01", "reason": "Chose a competitor"
})))]
#[serde(rename_all = "camelCase")]
pub struct StageChange {
    /// The deal.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub deal_id: DealId,
    /// The pipeline it was on.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub from_pipeline_id: PipelineId,
    /// The stage it left.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub from_stage_id: StageId,
    /// The pipeline it is on now.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub to_pipeline_id: PipelineId,
    /// The stage it entered.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub to_stage_id: StageId,
    /// When.
    pub at: DateTime<Utc>,
    /// Who moved it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub by: UserId,
    /// Why, if said (always for a loss).
    pub reason: Option<String>,
}

/// Creates a deal (`POST /api/v1/crm/deals`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "title": "Acme: 40 seats", "value": {"amountMinor": 1200000, "currency": "EUR"},
    "pipelineId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e10", "expectedCloseDate": "2026-12-31",
    "contactId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e30", "companyId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e40"
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DealDraft {
    /// 1 to 200 characters.
    #[garde(length(chars, min = 1, max = 200), custom(plain_text))]
    pub title: String,
    /// Not negative.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    #[garde(custom(amount))]
    pub value: Money,
    /// The pipeline.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    #[garde(skip)]
    pub pipeline_id: PipelineId,
    /// An open stage of that pipeline; its first open stage when absent.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    #[garde(skip)]
    pub stage_id: Option<StageId>,
    /// Its own probability, 0 to 100 percent; the stage's default when absent.
    #[serde(default)]
    #[garde(inner(range(max = 100)))]
    pub probability: Option<u8>,
    /// When it is expected to close.
    #[serde(default)]
    #[garde(skip)]
    pub expected_close_date: Option<NaiveDate>,
    /// Who works on it; whoever creates it when absent.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    #[garde(skip)]
    pub owner_id: Option<UserId>,
    /// The person it is with.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    #[garde(skip)]
    pub contact_id: Option<ContactId>,
    /// The company it is with.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    #[garde(skip)]
    pub company_id: Option<CompanyId>,
}

impl DealDraft {
    /// The deal `id` on `pipeline` (the one the draft names), created by
    /// `creator`, checked. A new deal starts in an open stage.
    pub fn validated(
        self,
        id: DealId,
        pipeline: &Pipeline,
        creator: UserId,
        now: DateTime<Utc>,
    ) -> Result<Deal, CrmError> {
        let draft = check(self)?;
        if draft.pipeline_id != pipeline.id {
            return Err(CrmError::PipelineNotFound);
        }
        let stage = match draft.stage_id {
            Some(stage_id) => pipeline.stage(stage_id).ok_or(CrmError::StageNotInPipeline(stage_id))?,
            None => pipeline.entry_stage().ok_or(CrmError::StageRequired)?,
        };
        if stage.kind != StageKind::Open {
            return Err(invalid("stageId", "a new deal starts in an open stage"));
        }
        Ok(Deal {
            id,
            title: draft.title,
            value: draft.value,
            pipeline_id: pipeline.id,
            stage_id: stage.id,
            probability_override: draft.probability,
            expected_close_date: draft.expected_close_date,
            owner_id: draft.owner_id.unwrap_or(creator),
            contact_id: draft.contact_id,
            company_id: draft.company_id,
            status: DealStatus::Open,
            created_at: now,
            updated_at: now,
        })
    }
}

/// Replaces a deal's editable fields (`PUT /api/v1/crm/deals/{id}`); its
/// stage changes only by a move.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "title": "Acme: 50 seats", "value": {"amountMinor": 1500000, "currency": "EUR"}, "probability": 60,
    "expectedCloseDate": "2027-01-15", "ownerId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e01",
    "contactId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e30", "companyId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e40"
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DealChanges {
    /// 1 to 200 characters.
    #[garde(length(chars, min = 1, max = 200), custom(plain_text))]
    pub title: String,
    /// Not negative.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    #[garde(custom(amount))]
    pub value: Money,
    /// Its own probability, 0 to 100 percent (open deals only); `null` follows the stage.
    #[serde(default)]
    #[garde(inner(range(max = 100)))]
    pub probability: Option<u8>,
    /// When it is expected to close.
    #[serde(default)]
    #[garde(skip)]
    pub expected_close_date: Option<NaiveDate>,
    /// Who works on it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    #[garde(skip)]
    pub owner_id: UserId,
    /// The person it is with.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    #[garde(skip)]
    pub contact_id: Option<ContactId>,
    /// The company it is with.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    #[garde(skip)]
    pub company_id: Option<CompanyId>,
}

/// Moves a deal to another stage, of its pipeline or of another one
/// (`POST /api/v1/crm/deals/{id}/move`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "stageId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e13", "reason": "Chose a competitor"
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MoveDeal {
    /// The pipeline to move to; the deal's own when absent.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    #[garde(skip)]
    pub pipeline_id: Option<PipelineId>,
    /// The stage to move to, in that pipeline.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    #[garde(skip)]
    pub stage_id: StageId,
    /// The deal's own probability there, 0 to 100 percent; the stage's default when absent.
    #[serde(default)]
    #[garde(inner(range(max = 100)))]
    pub probability: Option<u8>,
    /// Why: up to 500 characters; required to move into a lost stage.
    #[serde(default)]
    #[garde(inner(length(chars, min = 1, max = 500), custom(plain_text)))]
    pub reason: Option<String>,
}

impl MoveDeal {
    /// The command, checked.
    pub fn validated(self) -> Result<Self, CrmError> {
        check(self)
    }
}

/// Moves `deal` as `command` says, `who` moving it at `now`; `pipeline` is
/// the pipeline moved to (the command's, else the deal's own). Into the won
/// stage the deal is won, into the lost stage it is lost (a reason is
/// required), into an open stage it is open again. A move to the stage the
/// deal is in is refused: every history entry is a real move.
pub fn move_deal(
    deal: &Deal,
    pipeline: &Pipeline,
    command: MoveDeal,
    who: UserId,
    now: DateTime<Utc>,
) -> Result<(Deal, StageChange), CrmError> {
    let command = command.validated()?;
    let stage_id = command.stage_id;
    if pipeline.id != command.pipeline_id.unwrap_or(deal.pipeline_id) {
        return Err(CrmError::StageNotInPipeline(stage_id));
    }
    let stage = pipeline.stage(stage_id).ok_or(CrmError::StageNotInPipeline(stage_id))?;
    if stage.id == deal.stage_id {
        return Err(CrmError::DealAlreadyInStage);
    }
    if let (Some(probability), Some(fixed)) = (command.probability, stage.kind.fixed_probability())
        && probability != fixed
    {
        return Err(invalid("probability", "a won deal counts at 100 %, a lost one at 0 %"));
    }
    // A deal that stays won (or lost) while changing pipelines keeps when it closed.
    let status = match (stage.kind, &deal.status) {
        (StageKind::Open, _) => DealStatus::Open,
        (StageKind::Won, DealStatus::Won { closed_at, reason }) => DealStatus::Won {
            closed_at: *closed_at,
            reason: command.reason.clone().or_else(|| reason.clone()),
        },
        (StageKind::Won, _) => DealStatus::Won { closed_at: now, reason: command.reason.clone() },
        (StageKind::Lost, DealStatus::Lost { closed_at, reason }) => DealStatus::Lost {
            closed_at: *closed_at,
            reason: command.reason.clone().unwrap_or_else(|| reason.clone()),
        },
        (StageKind::Lost, _) => match command.reason.clone() {
            Some(reason) => DealStatus::Lost { closed_at: now, reason },
            None => return Err(CrmError::LostReasonRequired),
        },
    };
    let probability_override = if stage.kind == StageKind::Open { command.probability } else { None };
    let moved = Deal {
        pipeline_id: pipeline.id,
        stage_id: stage.id,
        probability_override,
        status,
        updated_at: now,
        ..deal.clone()
    };
    let change = StageChange {
        deal_id: deal.id,
        from_pipeline_id: deal.pipeline_id,
        from_stage_id: deal.stage_id,
        to_pipeline_id: pipeline.id,
        to_stage_id: stage.id,
        at: now,
        by: who,
        reason: command.reason,
    };
    Ok((moved, change))
}

/// Moves `deal` off the stage `removal` removed, to the stage it names,
/// keeping the deal's probability override; `None` when the deal was not
/// in the removed stage.
#[must_use]
pub fn relocate(
    deal: &Deal,
    removal: &StageRemoval,
    who: UserId,
    now: DateTime<Utc>,
) -> Option<(Deal, StageChange)> {
    let target = removal.move_deals_to?;
    if deal.stage_id != removal.removed || deal.pipeline_id != removal.pipeline.id {
        return None;
    }
    let moved = Deal { stage_id: target, updated_at: now, ..deal.clone() };
    let change = StageChange {
        deal_id: deal.id,
        from_pipeline_id: deal.pipeline_id,
        from_stage_id: deal.stage_id,
        to_pipeline_id: deal.pipeline_id,
        to_stage_id: target,
        at: now,
        by: who,
        reason: None,
    };
    Some((moved, change))
}

fn invalid(field: &str, message: &str) -> CrmError {
    CrmError::Invalid(ValidationErrors::field(field, message))
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use portico_kernel::Currency;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap()
    }

    fn later() -> DateTime<Utc> {
        now() + Duration::hours(3)
    }

    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, Currency::parse("EUR").unwrap())
    }

    fn sales() -> Pipeline {
        Pipeline::default_sales(PipelineId::new(), now())
    }

    fn stage(pipeline: &Pipeline, name: &str) -> StageId {
        pipeline.stages.iter().find(|stage| stage.name == name).unwrap().id
    }

    fn deal_on(pipeline: &Pipeline) -> Deal {
        let draft = DealDraft {
            title: "Acme: 40 seats".into(),
            value: eur(1_200_000),
            pipeline_id: pipeline.id,
            stage_id: None,
            probability: None,
            expected_close_date: NaiveDate::from_ymd_opt(2026, 12, 31),
            owner_id: None,
            contact_id: None,
            company_id: None,
        };
        draft.validated(DealId::new(), pipeline, UserId::new(), now()).unwrap()
    }

    fn to(stage_id: StageId) -> MoveDeal {
        MoveDeal { pipeline_id: None, stage_id, probability: None, reason: None }
    }

    fn invalid_fields<T: std::fmt::Debug>(result: Result<T, CrmError>) -> Vec<String> {
        match result {
            Err(CrmError::Invalid(errors)) => errors.fields().into_iter().map(str::to_owned).collect(),
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_new_deal_starts_open_in_the_first_stage_owned_by_its_creator() {
        let pipeline = sales();
        let creator = UserId::new();
        let draft: DealDraft = serde_json::from_value(serde_json::json!({
            "title": "Acme", "value": {"amountMinor": 5000, "currency": "EUR"}, "pipelineId": pipeline.id
        }))
        .unwrap();
        let deal = draft.validated(DealId::new(), &pipeline, creator, now()).unwrap();
        assert_eq!(deal.stage_id, stage(&pipeline, "Lead in"));
        assert_eq!(
            (deal.owner_id, deal.status.clone(), deal.probability_override),
            (creator, DealStatus::Open, None)
        );
        assert_eq!(deal.probability(&pipeline), 10);
    }

    #[test]
    fn a_new_deal_refuses_a_closed_or_foreign_stage_and_a_negative_value() {
        let pipeline = sales();
        let mut draft = DealDraft {
            stage_id: Some(stage(&pipeline, "Won")),
            ..serde_json::from_value(serde_json::json!({
                "title": "Acme", "value": {"amountMinor": 5000, "currency": "EUR"}, "pipelineId": pipeline.id
            }))
            .unwrap()
        };
        let won = draft.clone().validated(DealId::new(), &pipeline, UserId::new(), now());
        assert_eq!(invalid_fields(won), ["stageId"]);
        let elsewhere = sales().stages[0].id;
        draft.stage_id = Some(elsewhere);
        let foreign = draft.clone().validated(DealId::new(), &pipeline, UserId::new(), now());
        assert!(matches!(foreign, Err(CrmError::StageNotInPipeline(id)) if id == elsewhere));
        draft.value = eur(-1);
        draft.title = String::new();
        draft.probability = Some(101);
        let bad = draft.validated(DealId::new(), &pipeline, UserId::new(), now());
        assert_eq!(invalid_fields(bad), ["probability", "title", "value"]);
    }

    #[test]
    fn a_new_deal_is_created_on_the_pipeline_it_names() {
        let pipeline = sales();
        let draft: DealDraft = serde_json::from_value(serde_json::json!({
            "title": "Acme", "value": {"amountMinor": 5000, "currency": "EUR"}, "pipelineId": PipelineId::new()
        }))
        .unwrap();
        let refused = draft.validated(DealId::new(), &pipeline, UserId::new(), now());
        assert!(matches!(refused, Err(CrmError::PipelineNotFound)));
    }

    #[test]
    fn a_move_to_the_next_stage_records_from_to_when_and_who() {
        let pipeline = sales();
        let deal = deal_on(&pipeline);
        let mover = UserId::new();
        let qualified = stage(&pipeline, "Qualified");
        let (moved, change) = move_deal(&deal, &pipeline, to(qualified), mover, later()).unwrap();
        assert_eq!(
            (moved.stage_id, moved.status.clone(), moved.updated_at),
            (qualified, DealStatus::Open, later())
        );
        assert_eq!(moved.probability(&pipeline), 25);
        assert_eq!(
            change,
            StageChange {
                deal_id: deal.id,
                from_pipeline_id: pipeline.id,
                from_stage_id: deal.stage_id,
                to_pipeline_id: pipeline.id,
                to_stage_id: qualified,
                at: later(),
                by: mover,
                reason: None,
            }
        );
    }

    #[test]
    fn a_move_into_the_won_stage_wins_the_deal_with_an_optional_reason() {
        let pipeline = sales();
        let deal = deal_on(&pipeline);
        let won = MoveDeal { reason: Some("Best fit".into()), ..to(stage(&pipeline, "Won")) };
        let (moved, change) = move_deal(&deal, &pipeline, won, UserId::new(), later()).unwrap();
        assert_eq!(moved.status, DealStatus::Won { closed_at: later(), reason: Some("Best fit".into()) });
        assert_eq!(moved.probability(&pipeline), 100);
        assert_eq!(change.reason.as_deref(), Some("Best fit"));
        let (silent, _) =
            move_deal(&deal, &pipeline, to(stage(&pipeline, "Won")), UserId::new(), later()).unwrap();
        assert_eq!(silent.status, DealStatus::Won { closed_at: later(), reason: None });
    }

    #[test]
    fn a_move_into_the_lost_stage_requires_a_lost_reason() {
        let pipeline = sales();
        let deal = deal_on(&pipeline);
        let lost = stage(&pipeline, "Lost");
        assert!(matches!(
            move_deal(&deal, &pipeline, to(lost), UserId::new(), later()),
            Err(CrmError::LostReasonRequired)
        ));
        let blank = MoveDeal { reason: Some("  ".into()), ..to(lost) };
        assert_eq!(invalid_fields(move_deal(&deal, &pipeline, blank, UserId::new(), later())), ["reason"]);
        let with_reason = MoveDeal { reason: Some("Chose a competitor".into()), ..to(lost) };
        let (moved, _) = move_deal(&deal, &pipeline, with_reason, UserId::new(), later()).unwrap();
        assert_eq!(
            moved.status,
            DealStatus::Lost { closed_at: later(), reason: "Chose a competitor".into() }
        );
        assert_eq!(moved.probability(&pipeline), 0);
    }

    #[test]
    fn a_move_out_of_won_or_lost_reopens_the_deal() {
        let pipeline = sales();
        let deal = deal_on(&pipeline);
        let lost = MoveDeal { reason: Some("No budget".into()), ..to(stage(&pipeline, "Lost")) };
        let (lost, _) = move_deal(&deal, &pipeline, lost, UserId::new(), later()).unwrap();
        let proposal = stage(&pipeline, "Proposal");
        let (reopened, change) = move_deal(&lost, &pipeline, to(proposal), UserId::new(), later()).unwrap();
        assert_eq!((&reopened.status, reopened.stage_id), (&DealStatus::Open, proposal));
        assert_eq!(reopened.probability(&pipeline), 50);
        assert_eq!(change.from_stage_id, stage(&pipeline, "Lost"));
    }

    #[test]
    fn a_move_from_won_to_lost_needs_a_reason_and_closes_again() {
        let pipeline = sales();
        let (won, _) =
            move_deal(&deal_on(&pipeline), &pipeline, to(stage(&pipeline, "Won")), UserId::new(), now())
                .unwrap();
        let lost = stage(&pipeline, "Lost");
        assert!(matches!(
            move_deal(&won, &pipeline, to(lost), UserId::new(), later()),
            Err(CrmError::LostReasonRequired)
        ));
        let command = MoveDeal { reason: Some("Cancelled".into()), ..to(lost) };
        let (moved, _) = move_deal(&won, &pipeline, command, UserId::new(), later()).unwrap();
        assert_eq!(moved.status, DealStatus::Lost { closed_at: later(), reason: "Cancelled".into() });
    }

    #[test]
    fn a_move_to_a_stage_of_another_pipeline_is_refused() {
        let pipeline = sales();
        let other = sales();
        let deal = deal_on(&pipeline);
        let foreign = other.stages[1].id;
        let refused = move_deal(&deal, &pipeline, to(foreign), UserId::new(), later());
        assert!(matches!(refused, Err(CrmError::StageNotInPipeline(id)) if id == foreign));
        // Naming the other pipeline without it being the one loaded is refused too.
        let wrong = move_deal(&deal, &other, to(foreign), UserId::new(), later());
        assert!(matches!(wrong, Err(CrmError::StageNotInPipeline(_))));
    }

    #[test]
    fn a_move_to_another_pipeline_names_it() {
        let pipeline = sales();
        let other = sales();
        let deal = deal_on(&pipeline);
        let target = other.stages[2].id;
        let command = MoveDeal { pipeline_id: Some(other.id), ..to(target) };
        let (moved, change) = move_deal(&deal, &other, command, UserId::new(), later()).unwrap();
        assert_eq!((moved.pipeline_id, moved.stage_id), (other.id, target));
        assert_eq!((change.from_pipeline_id, change.to_pipeline_id), (pipeline.id, other.id));
        assert_eq!(moved.probability(&other), 50);
    }

    #[test]
    fn a_won_deal_moved_to_another_pipelines_won_stage_keeps_when_it_was_won() {
        let pipeline = sales();
        let other = sales();
        let (won, _) =
            move_deal(&deal_on(&pipeline), &pipeline, to(stage(&pipeline, "Won")), UserId::new(), now())
                .unwrap();
        let command = MoveDeal { pipeline_id: Some(other.id), ..to(stage(&other, "Won")) };
        let (moved, _) = move_deal(&won, &other, command, UserId::new(), later()).unwrap();
        assert_eq!(moved.status, DealStatus::Won { closed_at: now(), reason: None });
    }

    #[test]
    fn a_move_to_the_stage_the_deal_is_in_is_refused() {
        let pipeline = sales();
        let deal = deal_on(&pipeline);
        let same = move_deal(&deal, &pipeline, to(deal.stage_id), UserId::new(), later());
        assert!(matches!(same, Err(CrmError::DealAlreadyInStage)));
    }

    #[test]
    fn an_override_holds_until_the_next_move_which_may_give_a_new_one() {
        let pipeline = sales();
        let deal = Deal { probability_override: Some(40), ..deal_on(&pipeline) };
        assert_eq!(deal.probability(&pipeline), 40);
        let (moved, _) =
            move_deal(&deal, &pipeline, to(stage(&pipeline, "Qualified")), UserId::new(), later()).unwrap();
        assert_eq!((moved.probability_override, moved.probability(&pipeline)), (None, 25));
        let command = MoveDeal { probability: Some(70), ..to(stage(&pipeline, "Proposal")) };
        let (moved, _) = move_deal(&moved, &pipeline, command, UserId::new(), later()).unwrap();
        assert_eq!((moved.probability_override, moved.probability(&pipeline)), (Some(70), 70));
    }

    #[test]
    fn a_closing_move_cannot_give_another_probability() {
        let pipeline = sales();
        let deal = deal_on(&pipeline);
        let command = MoveDeal { probability: Some(90), ..to(stage(&pipeline, "Won")) };
        assert_eq!(
            invalid_fields(move_deal(&deal, &pipeline, command, UserId::new(), later())),
            ["probability"]
        );
        let command = MoveDeal { probability: Some(100), ..to(stage(&pipeline, "Won")) };
        let (won, _) = move_deal(&deal, &pipeline, command, UserId::new(), later()).unwrap();
        assert_eq!(won.probability_override, None);
    }

    #[test]
    fn the_deals_of_a_removed_stage_move_to_its_target_keeping_their_overrides() {
        let pipeline = sales();
        let proposal = stage(&pipeline, "Proposal");
        let negotiation = stage(&pipeline, "Negotiation");
        let deal = Deal { stage_id: proposal, probability_override: Some(45), ..deal_on(&pipeline) };
        let removal = pipeline.remove_stage(proposal, Some(negotiation), 1, later()).unwrap();
        let who = UserId::new();
        let (moved, change) = relocate(&deal, &removal, who, later()).unwrap();
        assert_eq!((moved.stage_id, moved.probability_override), (negotiation, Some(45)));
        assert_eq!((change.from_stage_id, change.to_stage_id, change.by), (proposal, negotiation, who));
        let elsewhere = deal_on(&pipeline);
        assert!(relocate(&elsewhere, &removal, who, later()).is_none());
    }

    #[test]
    fn revising_a_deal_replaces_its_fields_but_not_its_stage() {
        let pipeline = sales();
        let deal = deal_on(&pipeline);
        let owner = UserId::new();
        let changes: DealChanges = serde_json::from_value(serde_json::json!({
            "title": "Acme: 50 seats", "value": {"amountMinor": 1500000, "currency": "EUR"},
            "probability": 60, "ownerId": owner
        }))
        .unwrap();
        let revised = deal.revise(changes, later()).unwrap();
        assert_eq!(
            (revised.title.as_str(), revised.value, revised.owner_id),
            ("Acme: 50 seats", eur(1_500_000), owner)
        );
        assert_eq!(
            (revised.stage_id, revised.expected_close_date, revised.updated_at),
            (deal.stage_id, None, later())
        );
        assert_eq!(revised.probability(&pipeline), 60);
    }

    #[test]
    fn a_closed_deal_takes_no_probability() {
        let pipeline = sales();
        let (won, _) =
            move_deal(&deal_on(&pipeline), &pipeline, to(stage(&pipeline, "Won")), UserId::new(), now())
                .unwrap();
        let changes = DealChanges {
            title: won.title.clone(),
            value: won.value,
            probability: Some(50),
            expected_close_date: None,
            owner_id: won.owner_id,
            contact_id: None,
            company_id: None,
        };
        assert_eq!(invalid_fields(won.revise(changes, later())), ["probability"]);
    }

    #[test]
    fn a_deal_serialises_its_status_flat() {
        let pipeline = sales();
        let command = MoveDeal { reason: Some("No budget".into()), ..to(stage(&pipeline, "Lost")) };
        let (lost, _) = move_deal(&deal_on(&pipeline), &pipeline, command, UserId::new(), later()).unwrap();
        let json = serde_json::to_value(&lost).unwrap();
        assert_eq!(json["status"], "lost");
        assert_eq!(json["reason"], "No budget");
        assert_eq!(json["closedAt"], "2026-11-24T12:00:00Z");
        assert_eq!(json["value"], serde_json::json!({"amountMinor": 1200000, "currency": "EUR"}));
        assert_eq!(serde_json::from_value::<Deal>(json).unwrap(), lost);
        let open = serde_json::to_value(deal_on(&pipeline)).unwrap();
        assert_eq!(open["status"], "open");
        assert!(open.get("closedAt").is_none());
    }

    #[test]
    fn unknown_fields_in_a_move_are_refused() {
        let json = serde_json::json!({"stageId": StageId::new(), "lostReason": "x"});
        assert!(serde_json::from_value::<MoveDeal>(json).is_err());
    }
}
