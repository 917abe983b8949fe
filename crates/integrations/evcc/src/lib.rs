//! Meter readings from [evcc](https://evcc.io), the open-source EV charge
//! controller, for the metering domain's [`MeterDataSource`](portico_metering::MeterDataSource) port.
//!
//! This crate owns two sources:
//! - [`EvccSource`]: asks an evcc instance for its state (`GET {base}/api/state`)
//!   and turns each loadpoint's charge meter register into a reading.
//! - [`SimulatedCharger`]: the development mode. A charge point that is not
//!   there, whose register grows at a fixed power with the clock, so the
//!   platform runs with no charger and no network.
//!
//! # What is relied upon in evcc's state
//! Checked against evcc's source (`core/keys/loadpoint.go`, `core/loadpoint.go`,
//! the session code's `chargeMeterTotal`, the parameter cache's `State`,
//! `util/encode/encode.go`), its REST API change log (pull request #22299,
//! released in 0.207) and state bodies published by other evcc integrations:
//! - The body is the state object itself since evcc 0.207; before, it was
//!   wrapped as `{"result": {...}}`. Both are accepted.
//! - `loadpoints` is always present: an array whose entry `i` is evcc's
//!   loadpoint `i + 1` (evcc's API ids start at 1). An entry may be `null`
//!   where evcc has no loadpoint at that id; it is passed over but keeps its
//!   position.
//! - `loadpoints[].title` (string): the name shown in evcc's UI.
//! - `loadpoints[].chargeTotalImport` (number, **kWh**): the charge meter's
//!   total import register. evcc publishes it only when the loadpoint's charge
//!   meter reports an energy total, so a loadpoint without it gives no reading.
//!   evcc's MQTT page lists this topic as Wh, but evcc's source logs and stores
//!   it as kWh (`charge total import: %.3fkWh`, chargers convert Wh to kWh),
//!   and real states show it below the same session's `sessionEnergy` in Wh.
//! - Current evcc rounds every float to 3 decimals before encoding it and sends
//!   NaN or infinity as `null` (older versions sent float noise such as
//!   `20101.277000000002`); when reading the meter fails it publishes `0`.
//! - `GET /api/state` is unauthenticated (evcc's REST API page lists it with
//!   no authentication), so no credential is taken, and a base URL carrying
//!   one is refused.
//!
//! # Readings
//! - The external meter of a loadpoint is its `title`, trimmed, when that is
//!   not empty, else `loadpoint-{n}` with `n` its 1-based position (evcc's
//!   loadpoint id). Renaming a loadpoint in evcc therefore starts a new
//!   external meter; so does emptying its title. When two loadpoints end up
//!   with the same name, neither gives a reading (a warning says so) rather
//!   than one meter getting both registers.
//! - The value is the register in kWh as a `Decimal`: parsed as an `f64` (the
//!   workspace's serde_json keeps no number text) and rounded half-even to 3
//!   decimals, which gives back exactly the digits evcc, having rounded to 3
//!   decimals itself, sent; integers are taken exactly.
//! - Passed over with a `tracing` warning naming only the loadpoint's position
//!   and meter name: `null` (evcc's encoding of NaN or infinity), a value that
//!   is not a number, a negative value, one too large for a `Decimal`.
//!   Passed over quietly (debug): no `chargeTotalImport`, and `0`, which is
//!   what evcc publishes when reading the meter fails, so it cannot be trusted.
//! - evcc keeps no history and gives no time for its state, so every reading
//!   is stamped with the instant of the pull, read from the injected
//!   [`Clock`](portico_kernel::Clock). evcc refreshes its state once per
//!   control interval, so a value may be up to one interval older.
//! - The cursor is that instant in RFC 3339. A pull whose cursor is at or
//!   after now returns no readings (and the cursor unchanged) without asking
//!   evcc; a cursor that is not an RFC 3339 instant is
//!   [`SourceError::Unexpected`](portico_metering::SourceError::Unexpected).
//!
//! # Failures
//! [`SourceError::Unavailable`](portico_metering::SourceError::Unavailable)
//! (worth a retry): connection refused or failed, timeout, an answer that
//! broke off, 5xx, 408 and 429.
//! [`SourceError::Unexpected`](portico_metering::SourceError::Unexpected):
//! any other non-success status (4xx, an unfollowed redirect), a body that is
//! not evcc's state, a body over 8 MiB. Messages carry the status or the kind
//! of parse error, never the body or the URL.

mod cursor;
mod settings;
mod simulated;
mod source;
mod transformers;

pub use settings::SettingsError;
pub use simulated::SimulatedCharger;
pub use source::EvccSource;
