//! The manifest `id`: a name-based UUID (RFC 4122 version 5) of everything a
//! device is served for an update, so it changes exactly when the served
//! content does (bundle, assets, config), and devices already running it
//! are told there is nothing new.

use domain::update::Update;
use serde_json::json;

/// A fixed namespace for manifest ids (itself a v5 UUID of the server's name).
const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f0e_9a4c_3b1d_5e27_a4c8_1f3b_9d2e_7a60);

pub fn manifest_id(update: &Update) -> String {
    let assets: Vec<_> = update
        .assets
        .iter()
        .map(|asset| {
            json!([
                asset.is_launch_asset,
                asset.hash,
                asset.key,
                asset.content_type,
                asset.file_extension,
            ])
        })
        .collect();
    let served = json!({
        "runtimeVersion": update.runtime_version,
        "platform": update.platform.as_str(),
        "kind": update.kind.as_str(),
        "assets": assets,
        "expoConfig": update.expo_config,
    });
    uuid::Uuid::new_v5(&NAMESPACE, served.to_string().as_bytes()).to_string()
}
