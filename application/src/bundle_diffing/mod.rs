//! Bundle diffing: BSDIFF40 patches from the launch bundles devices run to
//! the one a new update ships, so a device one update behind downloads a
//! patch instead of the whole bundle.
//!
//! A publish names the patches it wants (`plan`), in the transaction that
//! stores it; workers on any instance claim them one at a time and compute
//! them in the background (`worker`); serving finds the ready ones
//! (`serve::patches`). Nothing is computed on a request's path.

mod embedded;
mod plan;
mod service;
mod status;
mod worker;

pub use embedded::EmbeddedUpload;
pub use service::{PatchCounters, PatchService};
pub use status::BundlePatches;
pub use worker::MAX_DIFF_INPUT_BYTES;
