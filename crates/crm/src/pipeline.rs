//! Pipelines: a tenant's ordered stages that deals move through, and the
//! rules that keep every pipeline usable (an open stage to start in, one won
//! and one lost stage to end in).
//!
//! The shape every pipeline keeps, checked on creation and by every change:
//! - at least one open stage, exactly one won stage and exactly one lost
//!   stage, and at most [`MAX_STAGES`] stages in all;
//! - the open stages come first (the path of a sale), the won and lost
//!   stages after them;
//! - stage names are unique in the pipeline, whatever their case;
//! - an open stage's default probability is 0 to 100 percent; a won stage's
//!   is always 100 and a lost stage's always 0, so a closed deal counts in
//!   full or not at all.
//!
//! Exactly one won and one lost stage keep "mark as won" and "mark as lost"
//! unambiguous; why a deal was lost is its lost reason, not a second stage.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use portico_kernel::{PipelineId, StageId, ValidationErrors};
use serde::{Deserialize, Serialize};

use crate::CrmError;
use crate::text::{check, plain_text};

/// Most stages a pipeline holds.
pub const MAX_STAGES: usize = 30;

/// What reaching a stage means for a deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// The deal is still being worked on.
    Open,
    /// The deal was won.
    Won,
    /// The deal was lost.
    Lost,
}

impl StageKind {
    /// The probability every stage of this kind has, when it is fixed: 100 for won, 0 for lost.
    #[must_use]
    pub const fn fixed_probability(self) -> Option<u8> {
        match self {
            Self::Open => None,
            Self::Won => Some(100),
            Self::Lost => Some(0),
        }
    }

    /// True for won and lost: a deal there is closed.
    #[must_use]
    pub const fn is_closed(self) -> bool {
        !matches!(self, Self::Open)
    }
}

/// A stage of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: StageId,
    /// Its name, unique in the pipeline.
    pub name: String,
    /// Its place in the pipeline, from 0.
    pub position: u32,
    /// The probability, in percent, that a deal here is won, unless the deal says otherwise.
    pub probability: u8,
    /// What reaching it means.
    pub kind: StageKind,
}

/// A pipeline: named, ordered stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e10", "name": "Sales",
    "stages": [
        {"id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e11", "name": "Qualified", "position": 0,
         "probability": 25, "kind": "open"},
        {"id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e12", "name": "Won", "position": 1,
         "probability": 100, "kind": "won"},
        {"id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e13", "name": "Lost", "position": 2,
         "probability": 0, "kind": "lost"}
    ],
    "createdAt": "2026-11-23T09:00:00Z", "updatedAt": "2026-11-23T09:00:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: PipelineId,
    /// Its name, unique in the tenant.
    pub name: String,
    /// Its stages, in order.
    pub stages: Vec<Stage>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// The stages of [`Pipeline::default_sales`]: name, probability, kind.
const SALES_STAGES: [(&str, u8, StageKind); 6] = [
    ("Lead in", 10, StageKind::Open),
    ("Qualified", 25, StageKind::Open),
    ("Proposal", 50, StageKind::Open),
    ("Negotiation", 75, StageKind::Open),
    ("Won", 100, StageKind::Won),
    ("Lost", 0, StageKind::Lost),
];

impl Pipeline {
    /// The pipeline every new tenant gets: Lead in (10 %), Qualified (25 %),
    /// Proposal (50 %), Negotiation (75 %), then Won and Lost.
    #[must_use]
    pub fn default_sales(id: PipelineId, now: DateTime<Utc>) -> Self {
        Self { id, name: "Sales".to_owned(), stages: sales_stages(), created_at: now, updated_at: now }
    }

    /// The stage `id`, if it is one of this pipeline's.
    #[must_use]
    pub fn stage(&self, id: StageId) -> Option<&Stage> {
        self.stages.iter().find(|stage| stage.id == id)
    }

    /// The first open stage: where a new deal starts unless told otherwise.
    #[must_use]
    pub fn entry_stage(&self) -> Option<&Stage> {
        self.stages.iter().find(|stage| stage.kind == StageKind::Open)
    }

    /// The stage a won deal sits in.
    #[must_use]
    pub fn won_stage(&self) -> Option<&Stage> {
        self.stages.iter().find(|stage| stage.kind == StageKind::Won)
    }

    /// The stage a lost deal sits in.
    #[must_use]
    pub fn lost_stage(&self) -> Option<&Stage> {
        self.stages.iter().find(|stage| stage.kind == StageKind::Lost)
    }

    /// The pipeline under a new name (unique in the tenant: the store checks).
    pub fn rename(&self, command: RenamePipeline, now: DateTime<Utc>) -> Result<Self, CrmError> {
        let command = check(command)?;
        Ok(Self { name: command.name, updated_at: now, ..self.clone() })
    }

    /// The pipeline with a new open stage `id`, placed at `position` among
    /// the open stages (after the last one when absent).
    pub fn add_stage(&self, id: StageId, command: NewStage, now: DateTime<Utc>) -> Result<Self, CrmError> {
        let command = check(command)?;
        if self.stages.len() >= MAX_STAGES {
            return Err(invalid("stages", "a pipeline has at most 30 stages"));
        }
        self.check_name_free(&command.name, None)?;
        let open = self.open_count();
        let at = match command.position {
            None => open,
            Some(position) => usize::try_from(position).unwrap_or(usize::MAX),
        };
        if at > open {
            return Err(invalid("position", "a new stage goes among the open stages, before won and lost"));
        }
        let mut stages = self.stages.clone();
        let stage = Stage {
            id,
            name: command.name,
            position: 0,
            probability: command.probability,
            kind: StageKind::Open,
        };
        stages.insert(at, stage);
        Ok(self.with_stages(stages, now))
    }

    /// The pipeline with stage `id` renamed or given a new default
    /// probability (fixed for the won and lost stages).
    pub fn update_stage(
        &self,
        id: StageId,
        command: StageChanges,
        now: DateTime<Utc>,
    ) -> Result<Self, CrmError> {
        let command = check(command)?;
        let stage = self.stage(id).ok_or(CrmError::StageNotFound(id))?;
        if let Some(name) = &command.name {
            self.check_name_free(name, Some(id))?;
        }
        if let (Some(probability), Some(fixed)) = (command.probability, stage.kind.fixed_probability())
            && probability != fixed
        {
            return Err(invalid("probability", "the won stage's probability is 100, the lost stage's 0"));
        }
        let stages = self
            .stages
            .iter()
            .map(|stage| {
                if stage.id != id {
                    return stage.clone();
                }
                Stage {
                    name: command.name.clone().unwrap_or_else(|| stage.name.clone()),
                    probability: command.probability.unwrap_or(stage.probability),
                    ..stage.clone()
                }
            })
            .collect();
        Ok(self.with_stages(stages, now))
    }

    /// The pipeline with its stages in the order of `command.stage_ids`,
    /// which lists every stage once; the open stages stay first.
    pub fn reorder(&self, command: ReorderStages, now: DateTime<Utc>) -> Result<Self, CrmError> {
        let ids = command.stage_ids;
        let distinct: HashSet<StageId> = ids.iter().copied().collect();
        if ids.len() != self.stages.len()
            || distinct.len() != ids.len()
            || !self.stages.iter().all(|stage| distinct.contains(&stage.id))
        {
            return Err(invalid("stageIds", "must list every stage of the pipeline exactly once"));
        }
        let stages: Vec<Stage> = ids.iter().filter_map(|id| self.stage(*id).cloned()).collect();
        if !open_stages_first(&stages) {
            return Err(invalid("stageIds", "the open stages come before the won and lost stages"));
        }
        Ok(self.with_stages(stages, now))
    }

    /// Plans the removal of stage `id`, which holds `deals_in_stage` deals
    /// (the store counts them in the same transaction). Deals in it need a
    /// `target`: another open stage of this pipeline they all move to; a
    /// target that is the removed stage itself counts as none, and one of
    /// another pipeline is refused whether or not deals move. The won and
    /// lost stages and the last open stage cannot be removed.
    pub fn remove_stage(
        &self,
        id: StageId,
        target: Option<StageId>,
        deals_in_stage: u64,
        now: DateTime<Utc>,
    ) -> Result<StageRemoval, CrmError> {
        let stage = self.stage(id).ok_or(CrmError::StageNotFound(id))?;
        if stage.kind.is_closed() || self.open_count() == 1 {
            return Err(CrmError::StageRequired);
        }
        let target = match target {
            Some(target) if target == id => None,
            Some(target) => {
                let found = self.stage(target).ok_or(CrmError::StageNotInPipeline(target))?;
                if found.kind != StageKind::Open {
                    return Err(invalid("targetStageId", "deals move to an open stage"));
                }
                Some(target)
            }
            None => None,
        };
        if deals_in_stage > 0 && target.is_none() {
            return Err(CrmError::StageHasDeals { deals: deals_in_stage });
        }
        let stages = self.stages.iter().filter(|stage| stage.id != id).cloned().collect();
        Ok(StageRemoval {
            pipeline: self.with_stages(stages, now),
            removed: id,
            move_deals_to: if deals_in_stage > 0 { target } else { None },
            deals_to_move: deals_in_stage,
        })
    }

    fn open_count(&self) -> usize {
        self.stages.iter().filter(|stage| stage.kind == StageKind::Open).count()
    }

    fn check_name_free(&self, name: &str, except: Option<StageId>) -> Result<(), CrmError> {
        let taken = self.stages.iter().any(|stage| Some(stage.id) != except && same_name(&stage.name, name));
        if taken { Err(invalid("name", "another stage of this pipeline has this name")) } else { Ok(()) }
    }

    fn with_stages(&self, mut stages: Vec<Stage>, now: DateTime<Utc>) -> Self {
        renumber(&mut stages);
        Self { stages, updated_at: now, ..self.clone() }
    }
}

/// What removing a stage does: the pipeline without it, and where its deals go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRemoval {
    /// The pipeline after the removal, its stages renumbered.
    pub pipeline: Pipeline,
    /// The stage removed.
    pub removed: StageId,
    /// Where the removed stage's deals move; none when it held none.
    pub move_deals_to: Option<StageId>,
    /// How many deals move.
    pub deals_to_move: u64,
}

/// One stage of a new pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"name": "Proposal", "probability": 50})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageDraft {
    /// 1 to 100 characters, unique in the pipeline.
    #[garde(length(chars, min = 1, max = 100), custom(plain_text))]
    pub name: String,
    /// `open` (default), `won` or `lost`.
    #[serde(default = "open")]
    #[garde(skip)]
    pub kind: StageKind,
    /// 0 to 100 percent; required for an open stage, 100 for won and 0 for lost when given.
    #[serde(default)]
    #[garde(inner(range(max = 100)))]
    pub probability: Option<u8>,
}

const fn open() -> StageKind {
    StageKind::Open
}

/// Creates a pipeline (`POST /api/v1/crm/pipelines`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "name": "Renewals",
    "stages": [
        {"name": "Due", "probability": 60}, {"name": "Quoted", "probability": 80},
        {"name": "Renewed", "kind": "won"}, {"name": "Churned", "kind": "lost"}
    ]
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineDraft {
    /// 1 to 100 characters, unique in the tenant.
    #[garde(length(chars, min = 1, max = 100), custom(plain_text))]
    pub name: String,
    /// The stages in order; the default sales stages when absent.
    #[serde(default)]
    #[garde(dive)]
    pub stages: Option<Vec<StageDraft>>,
}

impl PipelineDraft {
    /// The pipeline `id` as the draft describes it, checked, its stages given new ids.
    pub fn validated(self, id: PipelineId, now: DateTime<Utc>) -> Result<Pipeline, CrmError> {
        let mut errors = garde::Validate::validate(&self)
            .map_or_else(ValidationErrors::from, |()| ValidationErrors::default());
        let stages = match &self.stages {
            None => sales_stages(),
            Some(drafts) => {
                let mut stages = Vec::with_capacity(drafts.len());
                for (i, draft) in drafts.iter().enumerate() {
                    let probability = match (draft.kind.fixed_probability(), draft.probability) {
                        (None, Some(probability)) => probability,
                        (None, None) => {
                            errors.0.extend(field(
                                &format!("stages[{i}].probability"),
                                "an open stage needs its probability",
                            ));
                            0
                        }
                        (Some(fixed), given) => {
                            if given.is_some_and(|given| given != fixed) {
                                errors.0.extend(field(
                                    &format!("stages[{i}].probability"),
                                    "the won stage's probability is 100, the lost stage's 0",
                                ));
                            }
                            fixed
                        }
                    };
                    stages.push(Stage {
                        id: StageId::new(),
                        name: draft.name.clone(),
                        position: 0,
                        probability,
                        kind: draft.kind,
                    });
                }
                renumber(&mut stages);
                if let Err(shape) = check_shape(&stages) {
                    errors.0.extend(shape.0);
                }
                stages
            }
        };
        if !errors.is_empty() {
            return Err(CrmError::Invalid(errors));
        }
        Ok(Pipeline { id, name: self.name, stages, created_at: now, updated_at: now })
    }
}

/// Renames a pipeline (`PATCH /api/v1/crm/pipelines/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"name": "Enterprise sales"})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenamePipeline {
    /// 1 to 100 characters, unique in the tenant.
    #[garde(length(chars, min = 1, max = 100), custom(plain_text))]
    pub name: String,
}

/// Adds an open stage (`POST /api/v1/crm/pipelines/{id}/stages`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"name": "Demo", "probability": 35, "position": 2})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewStage {
    /// 1 to 100 characters, unique in the pipeline.
    #[garde(length(chars, min = 1, max = 100), custom(plain_text))]
    pub name: String,
    /// Its default probability, 0 to 100 percent.
    #[garde(range(max = 100))]
    pub probability: u8,
    /// Where it goes, from 0, among the open stages; after the last open stage when absent.
    #[serde(default)]
    #[garde(skip)]
    pub position: Option<u32>,
}

/// Renames a stage or changes its default probability
/// (`PATCH /api/v1/crm/pipelines/{id}/stages/{stageId}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"name": "Proposal sent", "probability": 55})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageChanges {
    /// 1 to 100 characters, unique in the pipeline; unchanged when absent.
    #[serde(default)]
    #[garde(inner(length(chars, min = 1, max = 100), custom(plain_text)))]
    pub name: Option<String>,
    /// 0 to 100 percent (fixed for won and lost); unchanged when absent.
    #[serde(default)]
    #[garde(inner(range(max = 100)))]
    pub probability: Option<u8>,
}

/// Puts a pipeline's stages in a new order (`PUT /api/v1/crm/pipelines/{id}/stages/order`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"stageIds": [
    "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e11", "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e12",
    "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e13"
]})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReorderStages {
    /// Every stage of the pipeline, once each, in the new order.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub stage_ids: Vec<StageId>,
}

fn sales_stages() -> Vec<Stage> {
    let mut stages: Vec<Stage> = SALES_STAGES
        .iter()
        .map(|(name, probability, kind)| Stage {
            id: StageId::new(),
            name: (*name).to_owned(),
            position: 0,
            probability: *probability,
            kind: *kind,
        })
        .collect();
    renumber(&mut stages);
    stages
}

fn renumber(stages: &mut [Stage]) {
    for (position, stage) in (0_u32..).zip(stages.iter_mut()) {
        stage.position = position;
    }
}

fn open_stages_first(stages: &[Stage]) -> bool {
    stages.windows(2).all(|pair| !(pair[0].kind.is_closed() && pair[1].kind == StageKind::Open))
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// The shape rules of the module documentation, for a whole list of stages.
fn check_shape(stages: &[Stage]) -> Result<(), ValidationErrors> {
    let count = |kind| stages.iter().filter(|stage| stage.kind == kind).count();
    let mut errors = ValidationErrors::default();
    if stages.len() > MAX_STAGES {
        errors.0.extend(field("stages", "a pipeline has at most 30 stages"));
    }
    if count(StageKind::Open) == 0 || count(StageKind::Won) != 1 || count(StageKind::Lost) != 1 {
        errors
            .0
            .extend(field("stages", "a pipeline has at least one open stage, one won and one lost stage"));
    }
    if !open_stages_first(stages) {
        errors.0.extend(field("stages", "the open stages come before the won and lost stages"));
    }
    for (i, stage) in stages.iter().enumerate() {
        if stages[..i].iter().any(|earlier| same_name(&earlier.name, &stage.name)) {
            errors.0.extend(field(&format!("stages[{i}].name"), "another stage has this name"));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn field(name: &str, message: &str) -> Vec<portico_kernel::FieldError> {
    ValidationErrors::field(name, message).0
}

fn invalid(name: &str, message: &str) -> CrmError {
    CrmError::Invalid(ValidationErrors::field(name, message))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap()
    }

    fn sales() -> Pipeline {
        Pipeline::default_sales(PipelineId::new(), now())
    }

    fn names(pipeline: &Pipeline) -> Vec<&str> {
        pipeline.stages.iter().map(|stage| stage.name.as_str()).collect()
    }

    fn stage_id(pipeline: &Pipeline, name: &str) -> StageId {
        pipeline.stages.iter().find(|stage| stage.name == name).unwrap().id
    }

    fn draft(json: serde_json::Value) -> Result<Pipeline, CrmError> {
        serde_json::from_value::<PipelineDraft>(json).unwrap().validated(PipelineId::new(), now())
    }

    fn invalid_fields(result: Result<impl std::fmt::Debug, CrmError>) -> Vec<String> {
        match result {
            Err(CrmError::Invalid(errors)) => errors.fields().into_iter().map(str::to_owned).collect(),
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn the_default_sales_pipeline_runs_from_lead_in_to_won_and_lost() {
        let pipeline = sales();
        assert_eq!(names(&pipeline), ["Lead in", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]);
        let probabilities: Vec<u8> = pipeline.stages.iter().map(|s| s.probability).collect();
        assert_eq!(probabilities, [10, 25, 50, 75, 100, 0]);
        let positions: Vec<u32> = pipeline.stages.iter().map(|s| s.position).collect();
        assert_eq!(positions, [0, 1, 2, 3, 4, 5]);
        assert!(check_shape(&pipeline.stages).is_ok());
        assert_eq!(pipeline.entry_stage().unwrap().name, "Lead in");
        assert_eq!(pipeline.won_stage().unwrap().name, "Won");
        assert_eq!(pipeline.lost_stage().unwrap().name, "Lost");
    }

    #[test]
    fn a_draft_without_stages_gets_the_sales_stages() {
        let pipeline = draft(serde_json::json!({"name": "Partners"})).unwrap();
        assert_eq!(pipeline.name, "Partners");
        assert_eq!(pipeline.stages.len(), 6);
    }

    #[test]
    fn a_draft_fixes_won_and_lost_probabilities_and_numbers_its_stages() {
        let pipeline = draft(serde_json::json!({"name": "Renewals", "stages": [
            {"name": "Due", "probability": 60}, {"name": "Renewed", "kind": "won"},
            {"name": "Churned", "kind": "lost", "probability": 0}
        ]}))
        .unwrap();
        let stages: Vec<(&str, u32, u8, StageKind)> =
            pipeline.stages.iter().map(|s| (s.name.as_str(), s.position, s.probability, s.kind)).collect();
        assert_eq!(
            stages,
            [
                ("Due", 0, 60, StageKind::Open),
                ("Renewed", 1, 100, StageKind::Won),
                ("Churned", 2, 0, StageKind::Lost)
            ]
        );
    }

    #[test]
    fn a_draft_needs_an_open_a_won_and_a_lost_stage() {
        let fields = invalid_fields(draft(serde_json::json!({"name": "x", "stages": [
            {"name": "Won", "kind": "won"}, {"name": "Won again", "kind": "won"}
        ]})));
        assert_eq!(fields, ["stages"]);
        assert_eq!(invalid_fields(draft(serde_json::json!({"name": "x", "stages": []}))), ["stages"]);
    }

    #[test]
    fn a_draft_refuses_open_stages_after_closed_ones_duplicate_names_and_wrong_probabilities() {
        let fields = invalid_fields(draft(serde_json::json!({"name": " ", "stages": [
            {"name": "Won", "kind": "won", "probability": 90}, {"name": "Talk"},
            {"name": "won", "probability": 101}, {"name": "Lost", "kind": "lost"}
        ]})));
        assert_eq!(
            fields,
            [
                "name",
                "stages[2].probability",
                "stages[0].probability",
                "stages[1].probability",
                "stages",
                "stages[2].name"
            ]
        );
    }

    #[test]
    fn unknown_fields_in_a_draft_are_refused() {
        assert!(
            serde_json::from_value::<PipelineDraft>(serde_json::json!({"name": "x", "default": true}))
                .is_err()
        );
    }

    #[test]
    fn renaming_keeps_the_stages_and_refuses_a_blank_name() {
        let pipeline = sales();
        let later = now() + chrono::Duration::minutes(5);
        let renamed = pipeline.rename(RenamePipeline { name: "Enterprise".into() }, later).unwrap();
        assert_eq!((renamed.name.as_str(), renamed.updated_at), ("Enterprise", later));
        assert_eq!(renamed.stages, pipeline.stages);
        assert_eq!(invalid_fields(pipeline.rename(RenamePipeline { name: "\t".into() }, now())), ["name"]);
    }

    #[test]
    fn a_new_stage_goes_after_the_last_open_stage_by_default() {
        let pipeline = sales();
        let id = StageId::new();
        let added = pipeline
            .add_stage(id, NewStage { name: "Contract".into(), probability: 90, position: None }, now())
            .unwrap();
        assert_eq!(
            names(&added),
            ["Lead in", "Qualified", "Proposal", "Negotiation", "Contract", "Won", "Lost"]
        );
        let stage = added.stage(id).unwrap();
        assert_eq!((stage.position, stage.probability, stage.kind), (4, 90, StageKind::Open));
    }

    #[test]
    fn a_new_stage_can_go_anywhere_among_the_open_stages_but_not_after_won_or_lost() {
        let pipeline = sales();
        let first = pipeline
            .add_stage(
                StageId::new(),
                NewStage { name: "Inbox".into(), probability: 5, position: Some(0) },
                now(),
            )
            .unwrap();
        assert_eq!(names(&first)[..2], ["Inbox", "Lead in"]);
        let late = pipeline.add_stage(
            StageId::new(),
            NewStage { name: "After won".into(), probability: 5, position: Some(5) },
            now(),
        );
        assert_eq!(invalid_fields(late), ["position"]);
    }

    #[test]
    fn a_new_stage_needs_a_name_not_taken_in_any_case() {
        let taken = sales().add_stage(
            StageId::new(),
            NewStage { name: " proposal ".into(), probability: 50, position: None },
            now(),
        );
        assert_eq!(invalid_fields(taken), ["name"]);
    }

    #[test]
    fn a_pipeline_holds_at_most_thirty_stages() {
        let mut pipeline = sales();
        for i in 0..24 {
            let command = NewStage { name: format!("Step {i}"), probability: 50, position: None };
            pipeline = pipeline.add_stage(StageId::new(), command, now()).unwrap();
        }
        assert_eq!(pipeline.stages.len(), 30);
        let command = NewStage { name: "One too many".into(), probability: 50, position: None };
        assert_eq!(invalid_fields(pipeline.add_stage(StageId::new(), command, now())), ["stages"]);
    }

    #[test]
    fn a_stage_can_be_renamed_and_reweighted_but_won_stays_at_100() {
        let pipeline = sales();
        let proposal = stage_id(&pipeline, "Proposal");
        let changes = StageChanges { name: Some("Proposal sent".into()), probability: Some(55) };
        let changed = pipeline.update_stage(proposal, changes, now()).unwrap();
        let stage = changed.stage(proposal).unwrap();
        assert_eq!((stage.name.as_str(), stage.probability, stage.position), ("Proposal sent", 55, 2));

        let won = stage_id(&pipeline, "Won");
        let renamed = pipeline
            .update_stage(
                won,
                StageChanges { name: Some("Closed won".into()), probability: Some(100) },
                now(),
            )
            .unwrap();
        assert_eq!(renamed.stage(won).unwrap().name, "Closed won");
        let reweighted =
            pipeline.update_stage(won, StageChanges { name: None, probability: Some(90) }, now());
        assert_eq!(invalid_fields(reweighted), ["probability"]);
        let clash =
            pipeline.update_stage(won, StageChanges { name: Some("LOST".into()), probability: None }, now());
        assert_eq!(invalid_fields(clash), ["name"]);
    }

    #[test]
    fn changing_an_unknown_stage_is_not_found() {
        let unknown = StageId::new();
        let result = sales().update_stage(unknown, StageChanges { name: None, probability: Some(1) }, now());
        assert!(matches!(result, Err(CrmError::StageNotFound(id)) if id == unknown));
    }

    #[test]
    fn reordering_takes_a_permutation_and_renumbers() {
        let pipeline = sales();
        let mut ids: Vec<StageId> = pipeline.stages.iter().map(|s| s.id).collect();
        ids.swap(0, 3);
        ids.swap(4, 5);
        let reordered = pipeline.reorder(ReorderStages { stage_ids: ids.clone() }, now()).unwrap();
        assert_eq!(names(&reordered), ["Negotiation", "Qualified", "Proposal", "Lead in", "Lost", "Won"]);
        let positions: Vec<u32> = reordered.stages.iter().map(|s| s.position).collect();
        assert_eq!(positions, [0, 1, 2, 3, 4, 5]);
        assert_eq!(reordered.stages.iter().map(|s| s.id).collect::<Vec<_>>(), ids);
    }

    #[test]
    fn reordering_refuses_anything_but_a_permutation() {
        let pipeline = sales();
        let ids: Vec<StageId> = pipeline.stages.iter().map(|s| s.id).collect();
        let missing = ids[..5].to_vec();
        let repeated = [&ids[..5], &ids[..1]].concat();
        let foreign = [&ids[..5], &[StageId::new()]].concat();
        for stage_ids in [missing, repeated, foreign, Vec::new()] {
            assert_eq!(invalid_fields(pipeline.reorder(ReorderStages { stage_ids }, now())), ["stageIds"]);
        }
    }

    #[test]
    fn reordering_keeps_the_open_stages_before_won_and_lost() {
        let pipeline = sales();
        let mut ids: Vec<StageId> = pipeline.stages.iter().map(|s| s.id).collect();
        ids.swap(3, 4);
        assert_eq!(invalid_fields(pipeline.reorder(ReorderStages { stage_ids: ids }, now())), ["stageIds"]);
    }

    #[test]
    fn removing_an_empty_stage_needs_no_target() {
        let pipeline = sales();
        let proposal = stage_id(&pipeline, "Proposal");
        let removal = pipeline.remove_stage(proposal, None, 0, now()).unwrap();
        assert_eq!(names(&removal.pipeline), ["Lead in", "Qualified", "Negotiation", "Won", "Lost"]);
        assert_eq!(removal.pipeline.stages[2].position, 2);
        assert_eq!((removal.removed, removal.move_deals_to, removal.deals_to_move), (proposal, None, 0));
    }

    #[test]
    fn removing_a_stage_with_deals_needs_a_target_stage() {
        let pipeline = sales();
        let proposal = stage_id(&pipeline, "Proposal");
        let refused = pipeline.remove_stage(proposal, None, 3, now());
        assert!(matches!(refused, Err(CrmError::StageHasDeals { deals: 3 })));
        let onto_itself = pipeline.remove_stage(proposal, Some(proposal), 3, now());
        assert!(matches!(onto_itself, Err(CrmError::StageHasDeals { deals: 3 })));

        let negotiation = stage_id(&pipeline, "Negotiation");
        let removal = pipeline.remove_stage(proposal, Some(negotiation), 3, now()).unwrap();
        assert_eq!((removal.move_deals_to, removal.deals_to_move), (Some(negotiation), 3));
        assert!(removal.pipeline.stage(proposal).is_none());
    }

    #[test]
    fn the_target_of_a_removal_is_an_open_stage_of_the_same_pipeline() {
        let pipeline = sales();
        let proposal = stage_id(&pipeline, "Proposal");
        let elsewhere = sales().stages[0].id;
        let foreign = pipeline.remove_stage(proposal, Some(elsewhere), 3, now());
        assert!(matches!(foreign, Err(CrmError::StageNotInPipeline(id)) if id == elsewhere));
        let won = stage_id(&pipeline, "Won");
        assert_eq!(invalid_fields(pipeline.remove_stage(proposal, Some(won), 3, now())), ["targetStageId"]);
    }

    #[test]
    fn won_lost_and_the_last_open_stage_stay() {
        let pipeline = draft(serde_json::json!({"name": "Tiny", "stages": [
            {"name": "Talk", "probability": 50}, {"name": "Won", "kind": "won"}, {"name": "Lost", "kind": "lost"}
        ]}))
        .unwrap();
        for name in ["Talk", "Won", "Lost"] {
            let refused = pipeline.remove_stage(stage_id(&pipeline, name), None, 0, now());
            assert!(matches!(refused, Err(CrmError::StageRequired)), "{name}");
        }
        let unknown = StageId::new();
        assert!(matches!(
            pipeline.remove_stage(unknown, None, 0, now()),
            Err(CrmError::StageNotFound(id)) if id == unknown
        ));
    }

    #[test]
    fn stage_errors_have_stable_codes_and_kinds() {
        use portico_kernel::{DomainError, ErrorKind};
        let has_deals = CrmError::StageHasDeals { deals: 2 };
        assert_eq!((has_deals.kind(), has_deals.code()), (ErrorKind::Conflict, "crm.stage_has_deals"));
        assert_eq!(has_deals.to_string(), "the stage holds 2 deals: name the stage they move to");
        let foreign = CrmError::StageNotInPipeline(StageId::new());
        assert_eq!((foreign.kind(), foreign.code()), (ErrorKind::Validation, "crm.stage_not_in_pipeline"));
        let unknown = CrmError::StageNotFound(StageId::new());
        assert_eq!((unknown.kind(), unknown.code()), (ErrorKind::NotFound, "crm.stage_not_found"));
        assert_eq!(CrmError::StageRequired.code(), "crm.stage_required");
        assert_eq!(CrmError::LostReasonRequired.kind(), ErrorKind::Validation);
        assert_eq!(CrmError::DealAlreadyInStage.code(), "crm.deal_already_in_stage");
    }

    #[test]
    fn a_pipeline_serialises_in_camel_case() {
        let pipeline = sales();
        let json = serde_json::to_value(&pipeline).unwrap();
        assert_eq!(json["stages"][4]["kind"], "won");
        assert_eq!(json["stages"][4]["probability"], 100);
        assert!(json["createdAt"].is_string());
        assert_eq!(serde_json::from_value::<Pipeline>(json).unwrap(), pipeline);
    }
}
