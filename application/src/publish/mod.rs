//! Publishing: turning the upload of an `npx expo export` into updates.
//!
//! Every file part is streamed into staging storage as it arrives (hashed on
//! the way), so memory stays bounded whatever the upload's size. Only once
//! the whole form is in and valid are the listed files promoted to their
//! content-addressed keys and the updates committed, in one transaction.
//! Whatever happens, staging is emptied before the request ends.
//!
//! `form` reads the upload's typed parts, `store` checks and stores a
//! publish, `service` is the use case, and `republish` makes the
//! publishes that upload nothing (rollbacks and republishes).

mod form;
mod header;
mod republish;
mod service;
mod store;

pub use form::{FormText, MAX_HASHES_PER_QUERY, PartKind, UploadPart, UploadParts};
pub use header::Published;
pub use republish::{RepublishRequest, RollbackRequest};
pub use service::PublishService;
pub(crate) use store::{content_type_of, find_publish};
