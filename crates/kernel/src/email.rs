//! Email as the domains send it: a message, the port that delivers it, and
//! the job that sends one after the request. Tenancy (invitations, sign-in)
//! and messaging both use it, so it lives in the kernel.

use std::future::Future;
use std::pin::Pin;

use crate::JobKind;

/// A named address: `Acme <hello@acme.example>`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mailbox {
    /// Display name, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The address.
    pub address: String,
}

impl Mailbox {
    /// An address without a display name.
    pub fn address(address: impl Into<String>) -> Self {
        Self { name: None, address: address.into() }
    }

    /// A named address.
    pub fn named(name: impl Into<String>, address: impl Into<String>) -> Self {
        Self { name: Some(name.into()), address: address.into() }
    }
}

/// One email, with both an HTML and a plain-text body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailMessage {
    /// Sender.
    pub from: Mailbox,
    /// Recipients (at least one).
    pub to: Vec<Mailbox>,
    /// Where replies go, if not to `from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Mailbox>,
    /// Subject line.
    pub subject: String,
    /// HTML body.
    pub html: String,
    /// Plain-text body (for clients that show no HTML, and for spam filters).
    pub text: String,
    /// `Message-ID` (`<id@host>`); the send job sets one from its id so a
    /// resend after a crash is recognisably the same message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// Why an email was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// The message itself is wrong (a malformed address): retrying cannot help.
    #[error("invalid email: {0}")]
    Invalid(String),
    /// The server refused it for good (unknown mailbox, policy).
    #[error("email rejected: {0}")]
    Rejected(String),
    /// The server could not be reached or asked to try later.
    #[error("email service unavailable: {0}")]
    Unavailable(String),
}

impl EmailError {
    /// True when retrying cannot succeed.
    #[must_use]
    pub const fn is_permanent(&self) -> bool {
        matches!(self, Self::Invalid(_) | Self::Rejected(_))
    }
}

/// A future that sends.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), EmailError>> + Send + 'a>>;

/// Delivers email: SMTP in production, a local mailbox in development.
pub trait EmailSender: Send + Sync {
    /// Sends `message`.
    fn send<'a>(&'a self, message: &'a EmailMessage) -> SendFuture<'a>;
}

/// The job that sends one email after the request that asked for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SendEmail {
    /// The email.
    pub message: EmailMessage,
}

impl JobKind for SendEmail {
    const KIND: &'static str = "email.send";
    const MAX_ATTEMPTS: i32 = 8;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_job_carries_the_whole_message() {
        let message = EmailMessage {
            from: Mailbox::named("Acme", "hello@acme.example"),
            to: vec![Mailbox::address("bob@example.com")],
            reply_to: None,
            subject: "Welcome".into(),
            html: "<p>Hi</p>".into(),
            text: "Hi".into(),
            message_id: None,
        };
        let job = crate::NewJob::of(&SendEmail { message: message.clone() }).unwrap();
        assert_eq!(job.kind, "email.send");
        let back: SendEmail = serde_json::from_value(job.payload).unwrap();
        assert_eq!(back.message, message);
    }

    #[test]
    fn only_unavailability_is_worth_a_retry() {
        assert!(EmailError::Rejected("550".into()).is_permanent());
        assert!(EmailError::Invalid("bad address".into()).is_permanent());
        assert!(!EmailError::Unavailable("timeout".into()).is_permanent());
    }
}
