//! The SMTP sender against a local SMTP sink that records the session.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use portico_kernel::{EmailError, EmailMessage, EmailSender, Mailbox};
use portico_smtp::{FileMailbox, Security, SmtpConfig, SmtpSender};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// What the sink saw of one delivery.
#[derive(Debug, Default)]
struct Session {
    auth: Option<String>,
    mail_from: String,
    rcpt_to: Vec<String>,
    data: String,
}

/// Starts a sink on a free port; it advertises AUTH when `auth`, and answers
/// RCPT with 550 when `reject`.
async fn sink(auth: bool, reject: bool) -> (SocketAddr, mpsc::Receiver<Session>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sessions, received) = mpsc::channel(4);
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
        let mut session = Session::default();
        while let Ok(Some(line)) = lines.next_line().await {
            let upper = line.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") {
                if auth {
                    b"250-sink\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
                } else {
                    b"250-sink\r\n250 8BITMIME\r\n"
                }
            } else if upper.starts_with("AUTH PLAIN") {
                session.auth = Some(line[11..].to_owned());
                b"235 2.7.0 accepted\r\n"
            } else if upper.starts_with("MAIL FROM:") {
                session.mail_from = line[10..].to_owned();
                b"250 ok\r\n"
            } else if upper.starts_with("RCPT TO:") {
                session.rcpt_to.push(line[8..].to_owned());
                if reject { b"550 5.1.1 no such user\r\n" } else { b"250 ok\r\n" }
            } else if upper == "DATA" {
                write.write_all(b"354 go ahead\r\n").await.unwrap();
                while let Ok(Some(data)) = lines.next_line().await {
                    if data == "." {
                        break;
                    }
                    session.data.push_str(&data);
                    session.data.push('\n');
                }
                sessions.send(std::mem::take(&mut session)).await.unwrap();
                b"250 queued\r\n"
            } else if upper == "QUIT" {
                write.write_all(b"221 bye\r\n").await.unwrap();
                break;
            } else {
                b"250 ok\r\n"
            };
            write.write_all(reply).await.unwrap();
        }
    });
    (addr, received)
}

fn config(addr: SocketAddr, credentials: Option<(&str, &str)>) -> SmtpConfig {
    SmtpConfig {
        host: addr.ip().to_string(),
        port: addr.port(),
        security: Security::Plain,
        credentials: credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
        timeout: Duration::from_secs(5),
    }
}

fn message() -> EmailMessage {
    EmailMessage {
        from: Mailbox::named("Acme Property", "hello@acme.example"),
        to: vec![Mailbox::address("bob@example.com"), Mailbox::named("Carol", "carol@example.com")],
        reply_to: Some(Mailbox::address("support@acme.example")),
        subject: "Welcome to Acme".into(),
        html: "<p>Hello Bob, in HTML</p>".into(),
        text: "Hello Bob, in plain text".into(),
        message_id: Some("<job-123@portico>".into()),
    }
}

#[tokio::test]
async fn recipients_subject_and_both_bodies_arrive() {
    let (addr, mut sessions) = sink(false, false).await;
    SmtpSender::new(&config(addr, None)).unwrap().send(&message()).await.unwrap();
    let session = tokio::time::timeout(Duration::from_secs(5), sessions.recv()).await.unwrap().unwrap();
    assert_eq!(session.mail_from, "<hello@acme.example>");
    assert_eq!(session.rcpt_to, vec!["<bob@example.com>", "<carol@example.com>"]);
    let data = session.data;
    assert!(data.contains("Subject: Welcome to Acme"), "{data}");
    assert!(data.contains("From: \"Acme Property\" <hello@acme.example>"), "{data}");
    assert!(data.contains("Reply-To: support@acme.example"), "{data}");
    assert!(data.contains("multipart/alternative"), "{data}");
    assert!(data.contains("Content-Type: text/plain") && data.contains("Hello Bob, in plain text"), "{data}");
    assert!(data.contains("Content-Type: text/html") && data.contains("<p>Hello Bob, in HTML</p>"), "{data}");
    assert!(data.contains("Message-ID: <job-123@portico>"), "{data}");
    assert_eq!(session.auth, None, "no credentials, no AUTH");
}

#[tokio::test]
async fn credentials_are_sent_with_auth_plain() {
    let (addr, mut sessions) = sink(true, false).await;
    SmtpSender::new(&config(addr, Some(("mailer", "s3cret")))).unwrap().send(&message()).await.unwrap();
    let session = tokio::time::timeout(Duration::from_secs(5), sessions.recv()).await.unwrap().unwrap();
    // base64("\0mailer\0s3cret")
    assert_eq!(session.auth.as_deref(), Some("AG1haWxlcgBzM2NyZXQ="));
}

#[tokio::test]
async fn a_refused_recipient_is_a_permanent_rejection() {
    let (addr, _sessions) = sink(false, true).await;
    let error = SmtpSender::new(&config(addr, None)).unwrap().send(&message()).await.unwrap_err();
    assert!(matches!(&error, EmailError::Rejected(_)), "{error:?}");
    assert!(error.is_permanent());
}

#[tokio::test]
async fn an_unreachable_server_is_worth_a_retry() {
    let closed = { std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap() };
    let error = SmtpSender::new(&config(closed, None)).unwrap().send(&message()).await.unwrap_err();
    assert!(matches!(&error, EmailError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn the_development_mailbox_keeps_messages_newest_first() {
    let dir = std::env::temp_dir().join(format!("portico-mailbox-test-{}", std::process::id()));
    let mailbox = FileMailbox::new(&dir);
    let mut second = message();
    second.subject = "Second".into();
    mailbox.send(&message()).await.unwrap();
    mailbox.send(&second).await.unwrap();
    let kept = mailbox.newest(10);
    assert_eq!(
        kept.iter().map(|m| m.message.subject.as_str()).collect::<Vec<_>>(),
        vec!["Second", "Welcome to Acme"]
    );
    assert_eq!(mailbox.newest(1).len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
