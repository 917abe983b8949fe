//! The platform's job handlers, registered for `portico worker`.

use std::time::Duration;

use std::sync::Arc;

use portico_credits::{Channel, LowBalanceAlert};
use portico_kernel::{Clock, TenantContext};
use portico_kernel::{
    EmailMessage, EmailSender, JobKind, Mailbox, NewJob, PLATFORM_TENANT_ID, PlatformContext, Recurrence,
    ScheduleSpec, SendEmail,
};
use portico_metering::{MeterDataSource, MeterSource, MeteringError, SourceKind, readings_of_pull};
use portico_store::{PullOutcome, PullSource, Store};

use crate::server::MeteringRules;
use portico_worker::{HandlerError, Registry};
use serde::{Deserialize, Serialize};

/// Deletes finished jobs past their retention (a platform job).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneJobs {
    /// Days succeeded jobs are kept.
    pub succeeded_days: u32,
    /// Days dead jobs are kept (longer: someone should look at them).
    pub dead_days: u32,
}

impl JobKind for PruneJobs {
    const KIND: &'static str = "jobs.prune";
}

/// Deletes idempotency records past their retention (a platform job).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PruneIdempotencyKeys {}

impl JobKind for PruneIdempotencyKeys {
    const KIND: &'static str = "idempotency.prune";
}

/// Deletes ended sessions, spent tokens and idle failure counts (a platform job).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PruneIdentity {}

impl JobKind for PruneIdentity {
    const KIND: &'static str = "identity.prune";
}

/// Expires every hold and grant that is due, wallet by wallet (a platform job).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpireCredits {}

impl JobKind for ExpireCredits {
    const KIND: &'static str = "credits.expire";
}

/// Closes self-service sign-ups whose owner never confirmed the address (a platform job).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpireSignUps {}

impl JobKind for ExpireSignUps {
    const KIND: &'static str = "tenancy.expire_sign_ups";
}

/// Sign-ups one run of `tenancy.expire_sign_ups` closes at most; the next run takes the rest.
const SIGN_UP_BATCH: i64 = 500;

/// Wallets one run of `credits.expire` settles at most; the next run, five
/// minutes later, takes the rest.
const EXPIRE_BATCH: i64 = 1000;

/// Queues a pull of every meter data source that is due (a platform job,
/// each minute); each pull runs as a `metering.pull_source` job in its
/// source's tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PullMeterSources {}

impl JobKind for PullMeterSources {
    const KIND: &'static str = "metering.pull_sources";
}

/// Sources one sweep queues at most; the next sweep, a minute later, takes the rest.
const PULL_BATCH: i64 = 1000;

/// The name of the simulated charger's one charge point, as its source's
/// `meters` map names it.
pub const SIMULATED_CHARGE_POINT: &str = "simulated-charger";

/// The simulated charger charges at a wallbox's 11 kW.
const SIMULATED_POWER_KW: i64 = 11;

/// An end-to-end check of the job pipeline: waits `delayMs` (at most a
/// minute) and succeeds. Harmless to run twice.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    /// How long the job takes.
    pub delay_ms: u64,
}

impl JobKind for Probe {
    const KIND: &'static str = "system.probe";
}

const DAY: Duration = Duration::from_secs(24 * 3600);

/// The platform's own recurring jobs, registered (idempotently) when a worker starts.
pub fn platform_schedules() -> Result<Vec<ScheduleSpec>, Box<dyn std::error::Error>> {
    Ok(vec![
        ScheduleSpec {
            name: "prune-jobs".to_owned(),
            recurrence: Recurrence::parse("30 3 * * *", "UTC")?,
            job: NewJob::of(&PruneJobs { succeeded_days: 7, dead_days: 30 })?,
        },
        ScheduleSpec {
            name: "prune-idempotency-keys".to_owned(),
            recurrence: Recurrence::parse("15 * * * *", "UTC")?,
            job: NewJob::of(&PruneIdempotencyKeys {})?,
        },
        ScheduleSpec {
            name: "prune-identity".to_owned(),
            recurrence: Recurrence::parse("45 * * * *", "UTC")?,
            job: NewJob::of(&PruneIdentity {})?,
        },
        ScheduleSpec {
            name: "expire-sign-ups".to_owned(),
            recurrence: Recurrence::parse("20 * * * *", "UTC")?,
            job: NewJob::of(&ExpireSignUps {})?,
        },
        ScheduleSpec {
            name: "pull-meter-sources".to_owned(),
            recurrence: Recurrence::parse("* * * * *", "UTC")?,
            job: NewJob::of(&PullMeterSources {})?,
        },
        ScheduleSpec {
            name: "expire-credits".to_owned(),
            recurrence: Recurrence::parse("*/5 * * * *", "UTC")?,
            job: NewJob::of(&ExpireCredits {})?,
        },
    ])
}

/// How a channel is named to people.
fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Sms => "SMS",
        Channel::Whatsapp => "WhatsApp",
        Channel::Email => "email",
        other => other.as_str(),
    }
}

/// The email that tells one of a tenant's owners and admins (`to`) a wallet fell below its threshold.
#[must_use]
pub fn low_balance_email(from: &Mailbox, to: &str, alert: &LowBalanceAlert) -> EmailMessage {
    let channel = channel_name(alert.channel);
    let what = format!(
        "Your {channel} wallet has {} credits available, below the alert threshold of {}.",
        alert.available, alert.threshold
    );
    let next = format!("Buy {channel} credits or a package to keep sending.");
    EmailMessage {
        from: from.clone(),
        to: vec![Mailbox::address(to)],
        reply_to: None,
        subject: format!("Your {channel} credits are running low"),
        html: format!("<p>{what}</p><p>{next}</p>"),
        text: format!("{what}\n\n{next}\n"),
        message_id: None,
    }
}

/// Whether retrying a failed send can help.
fn send_failure(error: portico_kernel::EmailError) -> HandlerError {
    if error.is_permanent() { HandlerError::permanent(error) } else { HandlerError::new(error) }
}

/// The source a configured one stands for: an evcc at its address, or the
/// simulated charger; `clock` stamps the readings. An evcc whose address
/// resolves to a loopback, private, link-local or otherwise non-public
/// address is refused unless `rules.allow_private_sources` (a self-hosted
/// platform on the chargers' network): a tenant must not make the worker
/// reach the platform's own network.
pub async fn data_source(
    source: &MeterSource,
    clock: Arc<dyn Clock>,
    rules: &MeteringRules,
) -> Result<Box<dyn MeterDataSource>, String> {
    match source.kind {
        SourceKind::Evcc => {
            let address = source.base_url.as_deref().unwrap_or_default();
            let url = url::Url::parse(address).map_err(|e| format!("the address does not read: {e}"))?;
            let evcc = if rules.allow_private_sources {
                portico_evcc::EvccSource::new(url, clock, rules.source_timeout)
            } else {
                // Connects only to the addresses checked here (no second lookup to rebind).
                let addresses = public_addresses(&url).await?;
                portico_evcc::EvccSource::at_addresses(url, &addresses, clock, rules.source_timeout)
            }
            .map_err(|e| e.to_string())?;
            Ok(Box::new(evcc))
        }
        SourceKind::Simulated => {
            let power = rust_decimal::Decimal::from(SIMULATED_POWER_KW);
            let charger =
                portico_evcc::SimulatedCharger::new(SIMULATED_CHARGE_POINT, clock, source.created_at, power)
                    .map_err(|e| e.to_string())?;
            Ok(Box::new(charger))
        }
    }
}

/// The resolved addresses of `url`'s host, when every one is public.
async fn public_addresses(url: &url::Url) -> Result<Vec<std::net::SocketAddr>, String> {
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(80);
    let resolved: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| "the address's host name does not resolve".to_owned())?
        .collect();
    if resolved.is_empty() || resolved.iter().any(|addr| !is_public(addr.ip())) {
        return Err(
            "the address is not a public one (loopback, private or link-local addresses are refused)".into(),
        );
    }
    Ok(resolved)
}

/// Whether `address` names a loopback, private or link-local host by itself
/// (an IP literal, `localhost`), without asking DNS.
#[must_use]
pub fn names_private_host(address: &str) -> bool {
    let Ok(url) = url::Url::parse(address) else { return false };
    match url.host() {
        Some(url::Host::Ipv4(ip)) => !is_public(ip.into()),
        Some(url::Host::Ipv6(ip)) => !is_public(ip.into()),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => false,
    }
}

/// Whether `ip` is reachable on the internet at large: not loopback,
/// private, link-local, shared (carrier-grade NAT), unspecified, broadcast,
/// multicast or documentation space.
fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || (a == 192 && b == 0 && c == 0))
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            // An IPv4 address inside (mapped, compatible, NAT64, 6to4) is judged as itself.
            let embedded = match segments {
                [0, 0, 0, 0, 0, 0xffff | 0, high, low] | [0x64, 0xff9b, 0, 0, 0, 0, high, low] => {
                    let [a, b] = high.to_be_bytes();
                    let [c, d] = low.to_be_bytes();
                    Some(std::net::Ipv4Addr::new(a, b, c, d))
                }
                [0x2002, high, low, ..] => {
                    let [a, b] = high.to_be_bytes();
                    let [c, d] = low.to_be_bytes();
                    Some(std::net::Ipv4Addr::new(a, b, c, d))
                }
                _ => None,
            };
            match embedded {
                Some(v4) if !v6.is_loopback() && !v6.is_unspecified() => is_public(IpAddr::V4(v4)),
                _ => {
                    let first = segments[0];
                    !(v6.is_loopback()
                        || v6.is_unspecified()
                        || v6.is_multicast()
                        || (first & 0xfe00) == 0xfc00
                        || (first & 0xffc0) == 0xfe80
                        || (first & 0xffc0) == 0xfec0)
                }
            }
        }
    }
}

/// Pulls one source and records what it brought (or why it failed).
async fn pull_source(
    store: &Store,
    ctx: &TenantContext,
    job: PullSource,
    rules: MeteringRules,
) -> Result<(), HandlerError> {
    let source = match store.source_for_pull(ctx, job.source_id).await {
        Ok(source) => source,
        // Removed since the pull was queued: nothing to do.
        Err(MeteringError::SourceNotFound) => return Ok(()),
        Err(error) => return Err(HandlerError::new(error)),
    };
    // A tenant whose metering was switched off keeps its sources, but nothing is pulled for it.
    if ctx.tenant_id != PLATFORM_TENANT_ID {
        let config = store.config_of(ctx.tenant_id).await.map_err(HandlerError::new)?;
        if !config.enabled("metering") {
            tracing::info!(source = %source.id, "metering is off for the tenant: not pulled");
            return Ok(());
        }
    }
    let outcome = match data_source(&source, store.clock(), &rules).await {
        Err(message) => PullOutcome::Failed(message),
        Ok(data_source) => match data_source.pull(source.cursor.as_deref()).await {
            Ok(pulled) => {
                let (readings, ignored) = readings_of_pull(&source.meters, pulled.readings);
                if ignored > 0 {
                    tracing::info!(source = %source.id, ignored, "pulled values of meters the source does not map");
                }
                PullOutcome::Pulled { from: source.cursor.clone(), readings, cursor: pulled.cursor }
            }
            Err(error) => PullOutcome::Failed(error.to_string()),
        },
    };
    let failed = matches!(outcome, PullOutcome::Failed(_));
    let added =
        store.record_pull(ctx, source.id, outcome, rules.readings).await.map_err(HandlerError::new)?;
    tracing::info!(
        source = %source.id, failed, accepted = added.accepted, rejected = added.rejected,
        duplicates = added.duplicates, "meter data source pulled"
    );
    Ok(())
}

/// Every handler the platform runs; platform email is sent from `from`;
/// metering's rules are the defaults (see [`registry_with`]).
#[must_use]
pub fn registry(store: &Store, email: Arc<dyn EmailSender>, from: Mailbox) -> Registry {
    registry_with(store, email, from, MeteringRules::default())
}

/// Every handler the platform runs, with metering's rules as configured.
#[must_use]
pub fn registry_with(
    store: &Store,
    email: Arc<dyn EmailSender>,
    from: Mailbox,
    metering: MeteringRules,
) -> Registry {
    let (store, keys_store, identity_store) = (store.clone(), store.clone(), store.clone());
    let (alert_store, expire_store, sign_up_store) = (store.clone(), store.clone(), store.clone());
    let (sweep_store, pull_store) = (store.clone(), store.clone());
    Registry::new()
        .on(move |_: PullMeterSources, ctx| {
            let store = sweep_store.clone();
            async move {
                // It reads every tenant's sources: only the platform's own job may.
                if ctx.ctx.tenant_id != PLATFORM_TENANT_ID {
                    return Err(HandlerError::permanent("metering.pull_sources runs only as a platform job"));
                }
                let queued = store
                    .queue_due_pulls(&PlatformContext::system(PullMeterSources::KIND), PULL_BATCH)
                    .await
                    .map_err(HandlerError::new)?;
                if queued > 0 {
                    tracing::info!(queued, "queued meter data source pulls");
                }
                Ok(())
            }
        })
        .on(move |job: PullSource, ctx| {
            let store = pull_store.clone();
            async move { pull_source(&store, &ctx.ctx, job, metering).await }
        })
        .on(move |job: SendEmail, ctx| {
            let email = email.clone();
            async move {
                // The job's id names the message: a resend after a crash carries the
                // same Message-ID, which mail systems use to drop the duplicate.
                let mut message = job.message;
                message.message_id.get_or_insert_with(|| format!("<{}@portico>", ctx.job_id));
                email.send(&message).await.map_err(send_failure)
            }
        })
        .on(move |alert: LowBalanceAlert, ctx| {
            let (store, from) = (alert_store.clone(), from.clone());
            async move {
                // Enqueued in the tenant's scope: its own owners and admins, read through RLS.
                let recipients = store.credit_alert_recipients(&ctx.ctx).await.map_err(HandlerError::new)?;
                if recipients.is_empty() {
                    tracing::info!(channel = %alert.channel, "low balance: nobody to tell");
                    return Ok(());
                }
                // One email each (no one sees the others' addresses), sent as jobs of their own;
                // a retry of this job while they wait adds none (their keys are taken).
                for (n, to) in recipients.iter().enumerate() {
                    let message = low_balance_email(&from, to, &alert);
                    let job = NewJob::of(&SendEmail { message })
                        .map_err(HandlerError::permanent)?
                        .unique(format!("credits.low_balance:{}:{n}", ctx.job_id));
                    store.enqueue(&ctx.ctx, job).await.map_err(HandlerError::new)?;
                }
                tracing::info!(channel = %alert.channel, recipients = recipients.len(), "low balance alert queued");
                Ok(())
            }
        })
        .on(move |_: ExpireCredits, ctx| {
            let store = expire_store.clone();
            async move {
                // It reads every tenant's wallets: only the platform's own job may.
                if ctx.ctx.tenant_id != PLATFORM_TENANT_ID {
                    return Err(HandlerError::permanent("credits.expire runs only as a platform job"));
                }
                let settled = store
                    .settle_due_credits(&PlatformContext::system(ExpireCredits::KIND), EXPIRE_BATCH)
                    .await
                    .map_err(HandlerError::new)?;
                tracing::info!(settled, "expired due credit holds and grants");
                Ok(())
            }
        })
        .on(move |_: ExpireSignUps, ctx| {
            let store = sign_up_store.clone();
            async move {
                // It reads every tenant's onboarding: only the platform's own job may.
                if ctx.ctx.tenant_id != PLATFORM_TENANT_ID {
                    return Err(HandlerError::permanent("tenancy.expire_sign_ups runs only as a platform job"));
                }
                let closed = store
                    .expire_sign_ups(&PlatformContext::system(ExpireSignUps::KIND), SIGN_UP_BATCH)
                    .await
                    .map_err(HandlerError::new)?;
                tracing::info!(closed, "closed sign-ups never confirmed");
                Ok(())
            }
        })
        .on(move |job: PruneJobs, ctx| {
            let store = store.clone();
            async move {
                // It deletes across tenants: only the platform's own job may.
                if ctx.ctx.tenant_id != PLATFORM_TENANT_ID {
                    return Err(HandlerError::permanent("jobs.prune runs only as a platform job"));
                }
                let deleted = store
                    .prune_jobs(DAY * job.succeeded_days, DAY * job.dead_days)
                    .await
                    .map_err(HandlerError::new)?;
                tracing::info!(deleted, "pruned finished jobs");
                Ok(())
            }
        })
        .on(move |_: PruneIdempotencyKeys, ctx| {
            let store = keys_store.clone();
            async move {
                if ctx.ctx.tenant_id != PLATFORM_TENANT_ID {
                    return Err(HandlerError::permanent("idempotency.prune runs only as a platform job"));
                }
                let deleted = store.prune_idempotency_keys().await.map_err(HandlerError::new)?;
                tracing::info!(deleted, "pruned expired idempotency keys");
                Ok(())
            }
        })
        .on(move |_: PruneIdentity, ctx| {
            let store = identity_store.clone();
            async move {
                if ctx.ctx.tenant_id != PLATFORM_TENANT_ID {
                    return Err(HandlerError::permanent("identity.prune runs only as a platform job"));
                }
                let pruned = store.prune_identity().await.map_err(HandlerError::new)?;
                tracing::info!(?pruned, "pruned ended sessions and spent tokens");
                Ok(())
            }
        })
        .on(|job: Probe, ctx| async move {
            tokio::time::sleep(Duration::from_millis(job.delay_ms.min(60_000))).await;
            tracing::info!(job = %ctx.job_id, attempt = ctx.attempt, "probe ran");
            Ok(())
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.9",
            "192.168.1.20",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "192.0.0.8",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
            "::10.0.0.1",
            "fec0::1",
        ] {
            assert!(!super::is_public(private.parse().unwrap()), "{private}");
        }
        for public in
            ["8.8.8.8", "151.101.1.69", "2a00:1450:4001:80b::200e", "::ffff:8.8.4.4", "64:ff9b::808:808"]
        {
            assert!(super::is_public(public.parse().unwrap()), "{public}");
        }
    }
}
