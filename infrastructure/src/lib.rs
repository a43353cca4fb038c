//! expo-updates-server: configuration, wiring and start-up.
//!
//! [`Application::build`] is the one way to assemble the server, used by the
//! binary and by the end-to-end tests alike.

pub mod allocator;
pub mod codesigning;
pub mod config;
pub mod go_import;
pub mod healthcheck;
mod idle_timeout;
pub mod jwt_secret;
mod startup;
pub mod telemetry;

pub use config::Config;
pub use startup::{Application, StartupError};
