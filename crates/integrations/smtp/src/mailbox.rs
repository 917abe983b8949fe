//! The development mailbox: every message is a JSON file in a directory.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use portico_kernel::{EmailError, EmailMessage, EmailSender, SendFuture};

/// A delivered message, as the mailbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEmail {
    /// File-name id (time-ordered).
    pub id: String,
    /// When it was "sent".
    pub sent_at: DateTime<Utc>,
    /// The message.
    pub message: EmailMessage,
}

/// Keeps messages in `dir` instead of sending them.
#[derive(Debug, Clone)]
pub struct FileMailbox {
    dir: PathBuf,
}

impl FileMailbox {
    /// A mailbox in `dir` (created on first delivery).
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Its directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The newest `limit` messages, newest first.
    pub fn newest(&self, limit: usize) -> Vec<StoredEmail> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .rev()
            .take(limit)
            .filter_map(|path| std::fs::read(path).ok())
            .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
            .collect()
    }
}

impl EmailSender for FileMailbox {
    fn send<'a>(&'a self, message: &'a EmailMessage) -> SendFuture<'a> {
        Box::pin(async move {
            let stored = StoredEmail {
                id: uuid::Uuid::now_v7().to_string(),
                sent_at: Utc::now(),
                message: message.clone(),
            };
            let unavailable =
                |e: std::io::Error| EmailError::Unavailable(format!("development mailbox: {e}"));
            std::fs::create_dir_all(&self.dir).map_err(unavailable)?;
            let bytes = serde_json::to_vec_pretty(&stored).map_err(|e| EmailError::Invalid(e.to_string()))?;
            std::fs::write(self.dir.join(format!("{}.json", stored.id)), bytes).map_err(unavailable)?;
            tracing::info!(id = %stored.id, "email kept in the development mailbox");
            Ok(())
        })
    }
}
