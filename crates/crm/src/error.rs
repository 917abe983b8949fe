//! Everything that can go wrong in the CRM domain, each with a stable code.

use portico_kernel::{DomainError, ErrorKind, InfraError, ValidationErrors};

/// A failed CRM operation.
#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    /// The command's fields break the rules; each failing field is named.
    #[error("invalid request: {0}")]
    Invalid(ValidationErrors),
    // Leads, contacts, companies, duplicates.
    /// No such lead in the caller's tenant.
    #[error("lead not found")]
    LeadNotFound,
    /// No such contact in the caller's tenant.
    #[error("contact not found")]
    ContactNotFound,
    /// No such company in the caller's tenant.
    #[error("company not found")]
    CompanyNotFound,
    /// Only a qualified lead converts.
    #[error("only a qualified lead can be converted; this one is {0}")]
    LeadNotQualified(crate::lead::LeadStatus),
    /// The lead was converted already: it converts once and changes no more.
    #[error("the lead was converted already")]
    LeadConverted,
    /// The lead's status machine does not allow this move.
    #[error("a lead cannot go from {from} to {to}")]
    LeadTransition {
        /// The lead's status.
        from: crate::lead::LeadStatus,
        /// The status asked for.
        to: crate::lead::LeadStatus,
    },
    /// A contact or company cannot be merged into itself.
    #[error("a record cannot be merged into itself")]
    MergeIntoItself,
    /// A contact that requested support tickets is merged into another, never deleted.
    #[error("the contact requested support tickets: merge it into another contact instead")]
    ContactHasTickets,
    // Pipelines, deals, activities.
    /// No such pipeline in the tenant.
    #[error("pipeline not found")]
    PipelineNotFound,
    /// Another pipeline of the tenant has this name.
    #[error("another pipeline is called this")]
    PipelineNameTaken,
    /// No such stage in the pipeline.
    #[error("stage {0} not found")]
    StageNotFound(portico_kernel::StageId),
    /// The stage named belongs to no pipeline the operation is about.
    #[error("stage {0} is not in this pipeline")]
    StageNotInPipeline(portico_kernel::StageId),
    /// The stage holds deals and no other stage of its pipeline was named to move them to.
    #[error("the stage holds {deals} deals: name the stage they move to")]
    StageHasDeals {
        /// How many deals are in it.
        deals: u64,
    },
    /// The pipeline holds deals: they are moved or deleted before it goes.
    #[error("the pipeline holds {deals} deals: move or delete them first")]
    PipelineHasDeals {
        /// How many deals are on it.
        deals: u64,
    },
    /// The won stage, the lost stage and the last open stage cannot be removed.
    #[error("a pipeline keeps its won stage, its lost stage and at least one open stage")]
    StageRequired,
    /// No such deal in the tenant.
    #[error("deal not found")]
    DealNotFound,
    /// The deal is already in the stage it was asked to move to.
    #[error("the deal is already in this stage")]
    DealAlreadyInStage,
    /// A deal moved to a lost stage needs the reason it was lost.
    #[error("say why the deal was lost")]
    LostReasonRequired,
    /// No such activity in the tenant.
    #[error("activity not found")]
    ActivityNotFound,
    /// Only tasks are done or not done.
    #[error("the activity is not a task")]
    NotATask,
    /// The task was already done.
    #[error("the task is already done")]
    TaskAlreadyDone,
    /// The task is not done yet.
    #[error("the task is not done")]
    TaskNotDone,
    /// A sum of deal values does not fit in 64-bit minor units.
    #[error("a total is out of range")]
    TotalOutOfRange,
    // Tickets.
    /// No such ticket in the caller's tenant.
    #[error("ticket not found")]
    TicketNotFound,
    /// The ticket is closed: it takes no changes and no comments.
    #[error("the ticket is closed")]
    TicketClosed,
    /// The ticket's status machine does not allow this move.
    #[error("a ticket cannot go from {from} to {to}")]
    TicketTransition {
        /// The ticket's status.
        from: crate::ticket::TicketStatus,
        /// The status asked for.
        to: crate::ticket::TicketStatus,
    },
    /// The store failed; details go to the logs, not the caller.
    /// A CSV import with refused rows: nothing was written.
    #[error("{} rows cannot be imported", .0.error_count)]
    ImportRefused(portico_kernel::csv::ImportReport),
    #[error(transparent)]
    Store(#[from] InfraError),
}

impl DomainError for CrmError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::Validation,
            Self::LeadNotFound | Self::ContactNotFound | Self::CompanyNotFound => ErrorKind::NotFound,
            Self::LeadNotQualified(_) | Self::LeadConverted | Self::LeadTransition { .. } => {
                ErrorKind::Conflict
            }
            Self::MergeIntoItself | Self::ImportRefused(_) => ErrorKind::Validation,
            Self::ContactHasTickets => ErrorKind::Conflict,
            Self::TicketNotFound => ErrorKind::NotFound,
            Self::TicketClosed | Self::TicketTransition { .. } => ErrorKind::Conflict,
            Self::PipelineNotFound | Self::StageNotFound(_) | Self::DealNotFound | Self::ActivityNotFound => {
                ErrorKind::NotFound
            }
            Self::StageNotInPipeline(_) | Self::LostReasonRequired | Self::TotalOutOfRange => {
                ErrorKind::Validation
            }
            Self::PipelineNameTaken
            | Self::StageHasDeals { .. }
            | Self::PipelineHasDeals { .. }
            | Self::StageRequired
            | Self::DealAlreadyInStage
            | Self::NotATask
            | Self::TaskAlreadyDone
            | Self::TaskNotDone => ErrorKind::Conflict,
            Self::Store(infra) => infra.kind(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "crm.invalid",
            Self::LeadNotFound => "crm.lead_not_found",
            Self::ContactNotFound => "crm.contact_not_found",
            Self::CompanyNotFound => "crm.company_not_found",
            Self::LeadNotQualified(_) => "crm.lead_not_qualified",
            Self::LeadConverted => "crm.lead_converted",
            Self::LeadTransition { .. } => "crm.lead_transition",
            Self::MergeIntoItself => "crm.merge_into_itself",
            Self::ContactHasTickets => "crm.contact_has_tickets",
            Self::TicketNotFound => "crm.ticket_not_found",
            Self::TicketClosed => "crm.ticket_closed",
            Self::TicketTransition { .. } => "crm.ticket_transition",
            Self::PipelineNotFound => "crm.pipeline_not_found",
            Self::PipelineNameTaken => "crm.pipeline_name_taken",
            Self::StageNotFound(_) => "crm.stage_not_found",
            Self::StageNotInPipeline(_) => "crm.stage_not_in_pipeline",
            Self::StageHasDeals { .. } => "crm.stage_has_deals",
            Self::PipelineHasDeals { .. } => "crm.pipeline_has_deals",
            Self::StageRequired => "crm.stage_required",
            Self::DealNotFound => "crm.deal_not_found",
            Self::DealAlreadyInStage => "crm.deal_already_in_stage",
            Self::LostReasonRequired => "crm.lost_reason_required",
            Self::ActivityNotFound => "crm.activity_not_found",
            Self::NotATask => "crm.not_a_task",
            Self::TaskAlreadyDone => "crm.task_already_done",
            Self::TaskNotDone => "crm.task_not_done",
            Self::TotalOutOfRange => "crm.total_out_of_range",
            Self::ImportRefused(_) => "crm.import_refused",
            Self::Store(infra) if infra.kind() == ErrorKind::Unavailable => "store.unavailable",
            Self::Store(_) => "internal",
        }
    }
}
