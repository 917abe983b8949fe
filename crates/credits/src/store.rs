//! The port through which other domains and services spend credits.

use std::future::Future;

use portico_kernel::{ReservationId, TenantContext};

use crate::{Capture, CreditsError, Debit, Movement, Reference, Reserve};

/// Spending credits: what messaging (or a service metering its own sends)
/// needs from the credits store. Every method is one transaction, and a
/// repeated `reference` returns the first result and moves nothing.
pub trait CreditsLedger {
    /// Spends credits at once, drawing from grants in [`crate::draw_order`].
    fn debit(
        &self,
        ctx: &TenantContext,
        reference: Reference,
        debit: Debit,
    ) -> impl Future<Output = Result<Movement, CreditsError>> + Send;

    /// Holds credits for a send about to happen.
    fn reserve(
        &self,
        ctx: &TenantContext,
        reference: Reference,
        reserve: Reserve,
    ) -> impl Future<Output = Result<Movement, CreditsError>> + Send;

    /// Spends held credits (all, or part and the rest goes back).
    fn capture(
        &self,
        ctx: &TenantContext,
        reference: Reference,
        id: ReservationId,
        capture: Capture,
    ) -> impl Future<Output = Result<Movement, CreditsError>> + Send;

    /// Gives held credits back (the send failed or was cancelled).
    fn release(
        &self,
        ctx: &TenantContext,
        reference: Reference,
        id: ReservationId,
    ) -> impl Future<Output = Result<Movement, CreditsError>> + Send;
}
