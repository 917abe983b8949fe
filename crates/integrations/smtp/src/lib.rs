//! Email delivery for Portico's `EmailSender` port.
//!
//! - [`SmtpSender`]: SMTP with lettre, over implicit TLS, STARTTLS, or plain
//!   (for local relays), with optional authentication. A permanent refusal
//!   (5xx) is [`EmailError::Rejected`]; anything worth retrying is
//!   [`EmailError::Unavailable`].
//! - [`FileMailbox`]: the development mode. Messages are written as JSON files
//!   to a directory, so the platform runs with no mail server, and the API's
//!   development mailbox shows what was "sent".

mod mailbox;

use std::time::Duration;

use lettre::message::{Mailbox as LettreMailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
pub use mailbox::{FileMailbox, StoredEmail};
use portico_kernel::{EmailError, EmailMessage, EmailSender, Mailbox, SendFuture};

/// How the connection to the server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain, upgraded with STARTTLS, which is required (port 587).
    StartTls,
    /// No encryption: only for a relay on the same host or network.
    Plain,
}

/// Where and how to send.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// Server host name.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Connection protection.
    pub security: Security,
    /// User name and password, if the server wants them.
    pub credentials: Option<(String, String)>,
    /// How long a delivery may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("credentials", &self.credentials.as_ref().map(|(user, _)| (user, "<password>")))
            .finish()
    }
}

/// Sends over SMTP.
#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmtpSender")
    }
}

impl SmtpSender {
    /// A sender for `config` (connections are opened per delivery, pooled by lettre).
    pub fn new(config: &SmtpConfig) -> Result<Self, EmailError> {
        let builder = match config.security {
            Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host),
            Security::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host),
            Security::Plain => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)),
        }
        .map_err(|e| EmailError::Invalid(format!("SMTP settings: {e}")))?;
        let mut builder = builder.port(config.port).timeout(Some(config.timeout));
        if let Some((user, password)) = &config.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self { transport: builder.build() })
    }
}

fn mailbox(mailbox: &Mailbox) -> Result<LettreMailbox, EmailError> {
    let address =
        mailbox.address.parse().map_err(|_| EmailError::Invalid("an address is not valid".to_owned()))?;
    Ok(LettreMailbox::new(mailbox.name.clone(), address))
}

/// The MIME message: `multipart/alternative` with the text and HTML bodies.
fn build(message: &EmailMessage) -> Result<Message, EmailError> {
    if message.to.is_empty() {
        return Err(EmailError::Invalid("no recipient".to_owned()));
    }
    let mut builder = Message::builder().from(mailbox(&message.from)?).subject(message.subject.clone());
    for to in &message.to {
        builder = builder.to(mailbox(to)?);
    }
    if let Some(reply_to) = &message.reply_to {
        builder = builder.reply_to(mailbox(reply_to)?);
    }
    if let Some(id) = &message.message_id {
        builder = builder.message_id(Some(id.clone()));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(message.text.clone(), message.html.clone()))
        .map_err(|e| EmailError::Invalid(e.to_string()))
}

impl EmailSender for SmtpSender {
    fn send<'a>(&'a self, message: &'a EmailMessage) -> SendFuture<'a> {
        Box::pin(async move {
            let email = build(message)?;
            match self.transport.send(email).await {
                Ok(_) => Ok(()),
                Err(error) if error.is_permanent() => Err(EmailError::Rejected(error.to_string())),
                Err(error) => Err(EmailError::Unavailable(error.to_string())),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> EmailMessage {
        EmailMessage {
            from: Mailbox::named("Acme", "hello@acme.example"),
            to: vec![Mailbox::address("bob@example.com")],
            reply_to: Some(Mailbox::address("support@acme.example")),
            subject: "Welcome".into(),
            html: "<p>Hi</p>".into(),
            text: "Hi".into(),
            message_id: None,
        }
    }

    #[test]
    fn a_message_without_recipients_or_with_a_bad_address_is_invalid() {
        assert!(matches!(build(&EmailMessage { to: vec![], ..message() }), Err(EmailError::Invalid(_))));
        let bad = EmailMessage { to: vec![Mailbox::address("not an address")], ..message() };
        assert!(matches!(build(&bad), Err(EmailError::Invalid(_))));
    }

    #[test]
    fn debug_output_hides_the_password() {
        let config = SmtpConfig {
            host: "smtp.example".into(),
            port: 587,
            security: Security::StartTls,
            credentials: Some(("user".into(), "hunter2".into())),
            timeout: Duration::from_secs(10),
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
