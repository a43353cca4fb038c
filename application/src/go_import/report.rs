//! What an import did, or in a dry run would do: counts per kind, and each
//! row or directory that was skipped, needs a person, or was imported with
//! a caveat, named and explained.

use domain::go_server::plan::{Note, NoteKind};
use serde::Serialize;

/// Counts per kind of thing imported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub users: u64,
    pub projects: u64,
    pub members: u64,
    pub keys: u64,
    /// Updates with a bundle, one per platform.
    pub updates: u64,
    /// Roll-backs to the embedded update, one per platform.
    pub rollbacks: u64,
    /// Files stored (each once per project by its SHA-256).
    pub files: u64,
    pub bytes: u64,
}

impl Counts {
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// What an earlier import brought that the Go server no longer has, and
/// that was therefore removed here (a key revoked there, a member removed,
/// an update directory deleted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    pub members: u64,
    pub keys: u64,
    pub updates: u64,
}

/// One remark: what it is about, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// `user <id>`, `project <id>`, `project_user <id>`, `key <id>`, or an
    /// update directory's path in the Go tree.
    pub about: String,
    pub reason: String,
}

/// The report of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    pub dry_run: bool,
    /// Where the data came from.
    pub source: Source,
    /// What this run imported (all zero when nothing was new).
    pub imported: Counts,
    /// What earlier runs had imported already and was left as it is.
    pub already_imported: Counts,
    pub removed: Removed,
    /// Rows and directories left out by a rule.
    pub skipped: Vec<Entry>,
    /// What a person has to look at: left out, left alone, or served
    /// differently than the Go server did.
    pub problems: Vec<Entry>,
    /// Imported with a change or a caveat.
    pub warnings: Vec<Entry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub database: String,
    pub updates: String,
}

impl ImportReport {
    pub(crate) fn note(&mut self, note: Note) {
        let entry = Entry {
            about: note.subject,
            reason: note.message,
        };
        match note.kind {
            NoteKind::Warning => self.warnings.push(entry),
            NoteKind::Skipped => self.skipped.push(entry),
            NoteKind::Problem => self.problems.push(entry),
        }
    }

    pub(crate) fn warn(&mut self, about: impl Into<String>, reason: impl Into<String>) {
        self.note(Note::warning(about, reason));
    }

    pub(crate) fn skip(&mut self, about: impl Into<String>, reason: impl Into<String>) {
        self.note(Note::skipped(about, reason));
    }

    pub(crate) fn problem(&mut self, about: impl Into<String>, reason: impl Into<String>) {
        self.note(Note::problem(about, reason));
    }

    /// The report for a person reading a terminal.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        let verb = if self.dry_run {
            "Would import (dry run, nothing written)"
        } else {
            "Imported"
        };
        let counts = |c: &Counts| {
            format!(
                "{} users, {} projects, {} members, {} keys, {} updates, {} rollbacks, {} files ({} bytes)",
                c.users, c.projects, c.members, c.keys, c.updates, c.rollbacks, c.files, c.bytes
            )
        };
        text.push_str(&format!(
            "From {} and {}\n",
            self.source.database, self.source.updates
        ));
        text.push_str(&format!("{verb}: {}\n", counts(&self.imported)));
        text.push_str(&format!(
            "Already imported earlier: {}\n",
            counts(&self.already_imported)
        ));
        let removed = &self.removed;
        if *removed != Removed::default() {
            text.push_str(&format!(
                "Removed (gone from the Go server since the last import): {} members, {} keys, {} updates\n",
                removed.members, removed.keys, removed.updates
            ));
        }
        for (title, entries) in [
            ("Problems (need a person's decision)", &self.problems),
            ("Skipped", &self.skipped),
            ("Warnings", &self.warnings),
        ] {
            if entries.is_empty() {
                continue;
            }
            text.push_str(&format!("\n{title}: {}\n", entries.len()));
            for entry in entries {
                text.push_str(&format!("  - {}: {}\n", entry.about, entry.reason));
            }
        }
        text
    }
}
