//! The domain of expo-updates-server: the types and rules of users, projects,
//! memberships and API keys, and the ports (traits) through which the
//! application reaches storage and cryptography.
//!
//! Nothing here performs I/O. Values that cross a port are validated on the way
//! in by the constructors below, so an adapter never has to re-check them.

pub mod api_key;
pub mod audit;
pub mod blob;
pub mod embedded;
pub mod export;
pub mod fault;
pub mod go_server;
pub mod id;
pub mod insights;
pub mod member;
pub mod outbound;
pub mod patch;
pub mod ports;
pub mod project;
pub mod release;
pub mod signing_key;
pub mod update;
pub mod user;
pub mod validation;
pub mod webhook;
pub mod webhook_retry;

pub use validation::ValidationError;
