//! The audit log: who changed what in a project, and when.

use chrono::{DateTime, Utc};

/// Who did something: a signed-in user or a project API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    User,
    ApiKey,
    /// The server itself (background retention).
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::ApiKey => "apiKey",
            Self::System => "system",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "user" => Some(Self::User),
            "apiKey" => Some(Self::ApiKey),
            "system" => Some(Self::System),
            _ => None,
        }
    }
}

/// An actor as recorded: the name is a snapshot, so the log still reads
/// after the user is renamed or the key revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
    pub name: String,
}

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Time-ordered (UUIDv7): the log pages by it.
    pub id: String,
    pub project_id: String,
    pub actor: Actor,
    /// What happened, e.g. `update.publish` or `channel.update`.
    pub action: String,
    /// The ids and values involved, as a JSON object.
    pub details: String,
    pub created_at: DateTime<Utc>,
}
