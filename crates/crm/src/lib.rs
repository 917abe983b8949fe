//! Portico's CRM domain: every tenant's leads, contacts and companies, its
//! deals on several pipelines, the activities on any of them, duplicate
//! detection and merges, and support tickets. Pure types, rules and commands
//! only: the store crate persists them, and other Rust services use them as
//! a plain library.
//!
//! ```
//! use chrono::Utc;
//! use portico_crm::{DealDraft, DealStatus, MoveDeal, Pipeline, move_deal};
//! use portico_kernel::{DealId, PipelineId, UserId};
//!
//! let now = Utc::now();
//! let pipeline = Pipeline::default_sales(PipelineId::new(), now);
//! let seller = UserId::new();
//! let draft: DealDraft = serde_json::from_value(serde_json::json!({
//!     "title": "Acme renewal", "value": {"amountMinor": 1_200_000, "currency": "EUR"},
//!     "pipelineId": pipeline.id
//! }))
//! .unwrap();
//! let deal = draft.validated(DealId::new(), &pipeline, seller, now).unwrap();
//! assert_eq!(deal.stage_id, pipeline.entry_stage().unwrap().id);
//!
//! // Won: the move is recorded as history, from the entry stage to "Won".
//! let won = pipeline.won_stage().unwrap().id;
//! let command: MoveDeal = serde_json::from_value(serde_json::json!({"stageId": won})).unwrap();
//! let (deal, change) = move_deal(&deal, &pipeline, command, seller, now).unwrap();
//! assert!(matches!(deal.status, DealStatus::Won { .. }));
//! assert_eq!((change.to_stage_id, change.by), (won, seller));
//! ```

mod activity;
mod analytics;
mod contact;
mod deal;
mod duplicates;
mod error;
mod lead;
mod normalise;
mod pipeline;
mod sla;
mod text;
mod ticket;
mod transfer;

pub use activity::{
    Activity, ActivityDetail, ActivityDraft, ActivityKind, ActivityLinks, RecordChange, RecordRef,
    TimelineEntry, TimelineMessage, complete_task, reopen_task, timeline,
};
pub use analytics::{
    ConversionRates, CrmAnalytics, CurrencyTotal, PipelineSummary, StageSummary, StageTotals,
    average_days_of, average_days_to_close, conversion_rates, pipeline_summary, summarise_pipeline,
    weighted_value, win_rate, win_rate_of,
};
pub use contact::{
    Address, Company, CompanyDraft, CompanySize, Contact, ContactDraft, ContactEmail, ContactPhone,
    ContactStatus, ContactType, EmailDraft, EmailLabel, MAX_CHANNELS, MAX_TAGS, PhoneDraft, PhoneLabel,
};
pub use deal::{Deal, DealChanges, DealDraft, DealStatus, MoveDeal, StageChange, move_deal, relocate};
pub use duplicates::{
    CompanyDuplicates, CompanyLinks, CompanyMerge, ContactDuplicates, ContactLinks, ContactMerge,
    MatchReason, MergeCompanies, MergeContacts, company_with_domain, company_with_name, contact_with_email,
    find_duplicate_companies, find_duplicate_contacts, merge_companies, merge_contacts,
};
pub use error::CrmError;
pub use lead::{
    ChangeLeadStatus, CompanyStep, ContactStep, ConversionIds, ConversionPlan, ConvertLead, DealFromLead,
    Lead, LeadDraft, LeadSource, LeadState, LeadStatus, plan_conversion,
};
pub use normalise::{
    FREE_MAIL_DOMAINS, calling_code_of, company_domain, host_of, is_free_mail, normalise_company_name,
    normalise_email, normalise_phone, normalise_tags,
};
pub use pipeline::{
    MAX_STAGES, NewStage, Pipeline, PipelineDraft, RenamePipeline, ReorderStages, Stage, StageChanges,
    StageDraft, StageKind, StageRemoval,
};
pub use sla::{BusinessHours, MAX_TARGET_MINUTES, SlaPolicy, SlaTargets, clock_time, due_at, resumed_due};
pub use ticket::{
    Assign, ChangeStatus, Comment, CommentAuthor, NewComment, Requester, SlaBreaches, Ticket, TicketChanges,
    TicketDraft, TicketPriority, TicketStatus, visible_to_requester,
};
pub use transfer::{
    CONTACT_COLUMNS, ContactExportFilter, ContactImport, ContactImportPlan, ContactImportRow, ContactLookups,
    ImportSummary, Known, LEAD_COLUMNS, LIST_SEPARATOR, LeadExportFilter, LeadImport, LeadImportPlan,
    LeadImportRow, LeadLookups, MAX_IMPORT_ROWS, MatchedId, SkippedRow, contact_export_header,
    contact_export_record, contact_lookups, csv_record, lead_export_header, lead_export_record, lead_lookups,
    plan_contact_import, plan_lead_import,
};
