//! Identifiers: every id the server issues is a UUID in canonical text form.
//!
//! Each kind of record has its own id type, parsed once where a request
//! enters (a path parameter, a header, a form field), so a use case cannot
//! be handed a project id where an update id belongs, and never sees text
//! that could not name a record.

use std::fmt;

/// Text that is not a canonical UUID, so names no record. Callers answer it
/// as "not found" (for ids in paths) or "invalid" (for ids in bodies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an id (a UUID such as 0196d1c2-0000-7000-8000-000000000001)")]
pub struct InvalidId;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Parses an id a client sent: a canonical UUID, else [`InvalidId`].
            pub fn parse(text: &str) -> Result<Self, InvalidId> {
                if is_valid_id(text) {
                    Ok(Self(text.to_owned()))
                } else {
                    Err(InvalidId)
                }
            }

            /// An id the server issued itself or read back from its own
            /// store, where it was checked when it was written.
            pub fn from_trusted(text: String) -> Self {
                Self(text)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// Reads as its text wherever text is wanted (SQL parameters, blob
        /// keys, log fields); text never becomes an id without `parse`.
        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

id_type!(
    /// A project: the tenant boundary.
    ProjectId
);
id_type!(
    /// One update: one platform of one publish.
    UpdateId
);
id_type!(
    /// A publish: the platforms published together share it (`updateId` in
    /// the Go server's API).
    PublishId
);
id_type!(
    /// An account.
    UserId
);
id_type!(
    /// A project API key (its record, not its secret).
    ApiKeyId
);
id_type!(
    /// An event of a project's audit log; a page of the log hands one back
    /// as the cursor of the next page.
    AuditEventId
);

/// True for a canonical UUID (`8-4-4-4-12` hex digits). Ids from clients are
/// checked with this before they reach a store: anything else cannot name a
/// record, and some databases refuse such text outright (PostgreSQL rejects
/// NUL bytes), which must not turn a client's typo into a server error.
pub fn is_valid_id(candidate: &str) -> bool {
    let bytes = candidate.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            8 | 13 | 18 | 23 => *byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_uuids_are_ids() {
        assert!(is_valid_id("0196d1c2-0000-7000-8000-000000000001"));
        assert!(is_valid_id("0196D1C2-0000-7000-8000-00000000000A"));
        for bad in [
            "",
            "x",
            "\0",
            "0196d1c2-0000-7000-8000-00000000000",
            "0196d1c2_0000_7000_8000_000000000001",
        ] {
            assert!(!is_valid_id(bad), "{bad:?}");
            assert_eq!(ProjectId::parse(bad), Err(InvalidId));
        }
    }

    #[test]
    fn typed_ids_keep_their_text() {
        let text = "0196d1c2-0000-7000-8000-000000000001";
        let id = UpdateId::parse(text).expect("an id");
        assert_eq!(id.as_str(), text);
        assert_eq!(id.to_string(), text);
        assert_eq!(String::from(id), text);
    }
}
