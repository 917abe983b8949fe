//! Portico's shared vocabulary, used by every domain crate and app.
//!
//! The kernel owns the few types that mean the same thing everywhere: typed
//! UUIDv7 ids, [`Money`], pagination ([`PageRequest`], [`Page`]), the
//! [`ErrorKind`] every domain error maps to, the [`TenantContext`] a request
//! runs in, and the [`Clock`] that tells the time. It is framework-free: no
//! web framework, database driver or async runtime.
//!
//! ```
//! use portico_kernel::{Currency, Money, PageRequest, TenantId};
//!
//! let tenant = TenantId::new();
//! assert_eq!(tenant.to_string().parse::<TenantId>(), Ok(tenant));
//!
//! let eur = Currency::parse("EUR").unwrap();
//! let total = Money::from_minor(1_999, eur).checked_add(Money::from_minor(1, eur)).unwrap();
//! assert_eq!(total.to_string(), "20.00 EUR");
//!
//! let page = PageRequest::new(2, 25).unwrap();
//! assert_eq!(page.offset(), 25);
//! ```

mod audit;
mod clock;
mod context;
pub mod csv;
mod email;
mod error;
mod files;
mod id;
mod job;
mod money;
mod page;
pub mod redact;
mod schedule;
pub mod text;
mod validation;

pub use audit::AuditEntry;
pub use clock::{Clock, FixedClock, SystemClock};
pub use context::{Actor, ContextError, Origin, PlatformContext, RequestId, TenantContext};
pub use email::{EmailError, EmailMessage, EmailSender, Mailbox, SendEmail, SendFuture};
pub use error::{DomainError, ErrorKind, InfraError};
pub use files::{FileError, FileFuture, FileKey, FileStore, StoredFile};
pub use id::{
    ActivityId, ApiKeyId, AuditId, CommentId, CompanyId, ContactId, CustomPlanId, DealId, EntryId, GrantId,
    IdParseError, JobId, LeadId, MembershipId, MeterId, MeterSourceId, MetricId, PackageId, PipelineId,
    ReadingId, ReservationId, RoleId, SessionId, SiteId, StageId, TenantId, TicketId, UserId, WalletId,
};
pub use job::{JobError, JobKind, NewJob, retry_delay};
pub use money::{Currency, Money, MoneyError};
pub use page::{Page, PageError, PageRequest};
pub use schedule::{Firing, Recurrence, ScheduleError, ScheduleSpec};
pub use validation::{FieldError, ValidationErrors};

/// The platform tenant: the operator of a Portico installation, itself a tenant.
///
/// Its id is fixed so every installation, test database and service agrees on
/// it without a lookup; bootstrap creates its row.
pub const PLATFORM_TENANT_ID: TenantId =
    TenantId::from_uuid(uuid::Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0001));
