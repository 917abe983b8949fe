//! The port through which the tenancy domain persists tenants.

use std::future::Future;

use portico_kernel::{Page, PageRequest, PlatformContext, TenantContext, TenantId};

use crate::{CreateTenant, PublicTenant, TenancyError, Tenant, TenantStatus, TenantTransition, UpdateTenant};

/// Which tenants a platform listing shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantFilter {
    /// Only tenants in this status.
    pub status: Option<TenantStatus>,
    /// Only tenants whose name or slug contains this text (case-insensitive).
    pub search: Option<String>,
}

/// Persistence of tenants. Each method is one transaction that also writes
/// the audit row of the change.
///
/// Methods taking a [`TenantContext`] act only inside `ctx.tenant_id`: asking
/// for another tenant's id answers [`TenancyError::NotFound`], so existence
/// does not leak. Methods taking a [`PlatformContext`] act across tenants.
/// Deleted tenants are not found.
pub trait TenantStore: Send + Sync {
    /// Creates a tenant (validating the command) and audits `tenant.create`.
    fn create(
        &self,
        ctx: &PlatformContext,
        command: CreateTenant,
    ) -> impl Future<Output = Result<Tenant, TenancyError>> + Send;

    /// One tenant, if it is the context's tenant.
    fn get(
        &self,
        ctx: &TenantContext,
        id: TenantId,
    ) -> impl Future<Output = Result<Tenant, TenancyError>> + Send;

    /// A page of tenants, newest first.
    fn list(
        &self,
        ctx: &PlatformContext,
        filter: &TenantFilter,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Tenant>, TenancyError>> + Send;

    /// Replaces the editable fields; audits `tenant.update` with the changed fields.
    fn update(
        &self,
        ctx: &TenantContext,
        id: TenantId,
        command: UpdateTenant,
    ) -> impl Future<Output = Result<Tenant, TenancyError>> + Send;

    /// Applies a lifecycle transition; audits `tenant.activate`/`suspend`/`deactivate`.
    fn transition(
        &self,
        ctx: &TenantContext,
        id: TenantId,
        action: TenantTransition,
    ) -> impl Future<Output = Result<Tenant, TenancyError>> + Send;

    /// The public face of the in-service tenant with this slug, for pages
    /// shown before sign-in; `NotFound` for unknown, deleted, suspended or
    /// inactive tenants alike.
    fn find_public(&self, slug: &str) -> impl Future<Output = Result<PublicTenant, TenancyError>> + Send;

    /// Soft-deletes the tenant; audits `tenant.delete`.
    fn delete(
        &self,
        ctx: &TenantContext,
        id: TenantId,
    ) -> impl Future<Output = Result<(), TenancyError>> + Send;
}
