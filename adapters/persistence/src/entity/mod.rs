//! SeaORM entities: one module per table. They are persistence shapes only;
//! the conversions to and from domain types live beside the stores.

pub mod api_key;
pub mod audit_event;
pub mod channel;
pub mod embedded_bundle;
pub mod legacy_import;
pub mod member;
pub mod patch;
pub mod project;
pub mod signing_key;
pub mod update;
pub mod update_asset;
pub mod update_insight;
pub mod user;
