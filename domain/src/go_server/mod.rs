//! The Go expo-updates-server's data, as an importer finds it: the rows of
//! its SQLite database, its tree of update directories, the manifest ids
//! its devices know, and the rules that carry all of it over to this
//! server's users, projects, members, keys and updates.
//!
//! Pure, like the rest of the domain: the adapters read the Go server's
//! files (ports in [`ports`]), the application drives the import.

pub mod files;
pub mod plan;
pub mod ports;
pub mod rows;
pub mod tree;

pub use files::{GoIndex, GoIndexFile, go_update_time, legacy_manifest_id};
pub use rows::{GoApiKey, GoDatabase, GoMembership, GoProject, GoUser, row_time};
pub use tree::{GoTree, StrayDir, TreeEntry, UpdateDir};
