//! Why a source could not be set up: settings checked once, at start-up.

/// A setting that cannot work; the message names the setting, never a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The evcc base URL is not one this source can ask.
    #[error("evcc base URL: {0}")]
    BaseUrl(&'static str),
    /// The request timeout is zero, which would fail every pull.
    #[error("the evcc request timeout must be more than zero")]
    Timeout,
    /// The HTTP client could not be built.
    #[error("the HTTP client for evcc could not be built")]
    HttpClient,
    /// A simulated charger needs a non-empty meter name.
    #[error("a simulated charger needs a meter name")]
    MeterName,
    /// A simulated charger's power is negative or beyond any charge point.
    #[error("a simulated charger's power must be between 0 and {max} kW", max = crate::simulated::MAX_POWER_KW)]
    Power,
}
