//! The channels credits are spent on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a credit pays for: one SMS, one WhatsApp message, one email.
/// Each channel has its own wallet; credits never move between channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Channel {
    /// Text messages.
    Sms,
    /// WhatsApp Cloud messages.
    Whatsapp,
    /// Emails.
    Email,
}

impl Channel {
    /// Every channel, in display order.
    pub const ALL: [Self; 3] = [Self::Sms, Self::Whatsapp, Self::Email];

    /// The name stored and sent (`sms`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Whatsapp => "whatsapp",
            Self::Email => "email",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A channel name that is not one of [`Channel::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a channel (sms, whatsapp, email)")]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|channel| channel.as_str() == text)
            .ok_or_else(|| UnknownChannel(text.chars().take(40).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for channel in Channel::ALL {
            assert_eq!(channel.as_str().parse::<Channel>(), Ok(channel));
            assert_eq!(serde_json::to_string(&channel).unwrap(), format!("\"{channel}\""));
        }
        assert!("SMS".parse::<Channel>().is_err());
        assert!("fax".parse::<Channel>().is_err());
    }
}
