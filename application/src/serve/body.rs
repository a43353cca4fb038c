//! The bodies devices are sent, serialised once per update when its stream
//! is loaded: manifests in the exact shape both clients parse, the
//! `rollBackToEmbedded` directive, and the message of a "no update" 404.

use chrono::{DateTime, SecondsFormat, Utc};
use domain::release::{BranchName, ChannelName};
use domain::update::{Platform, RuntimeVersion, Update, UpdateAsset, UpdateKind};
use serde_json::{Map, Value, json};

/// Writes bodies whose asset URLs start with the server's public address
/// (or `ASSET_URL_BASE`).
#[derive(Debug, Clone)]
pub(crate) struct Bodies {
    pub asset_base_url: String,
}

impl Bodies {
    /// The body a device is sent for an update: its manifest, or for a
    /// rollback the `rollBackToEmbedded` directive.
    pub(crate) fn of(&self, update: &Update) -> String {
        match update.kind {
            UpdateKind::Update => self.manifest_json(update).to_string(),
            UpdateKind::Rollback => json!({
                "type": "rollBackToEmbedded",
                "parameters": { "commitTime": timestamp(update.created_at) },
            })
            .to_string(),
        }
    }

    fn manifest_json(&self, update: &Update) -> Value {
        let launch = update.launch_asset();
        let assets: Vec<Value> = update
            .assets
            .iter()
            .filter(|asset| !asset.is_launch_asset)
            .map(|asset| self.asset_json(update, asset))
            .collect();
        let mut extra = Map::new();
        if let Some(Ok(config)) = update
            .expo_config
            .as_deref()
            .map(serde_json::from_str::<Value>)
        {
            extra.insert("expoClient".to_owned(), config);
        }
        json!({
            "id": update.manifest_id,
            "createdAt": timestamp(update.created_at),
            "runtimeVersion": update.runtime_version.as_str(),
            "launchAsset": launch.map(|asset| self.asset_json(update, asset)),
            "assets": assets,
            "metadata": { "branch": update.branch.as_str() },
            "extra": extra,
        })
    }

    fn asset_json(&self, update: &Update, asset: &UpdateAsset) -> Value {
        let mut value = json!({
            "hash": asset.hash,
            "key": asset.key,
            "contentType": asset.content_type,
            "url": self.asset_url(update, asset),
        });
        if let (Some(ext), false) = (&asset.file_extension, asset.is_launch_asset) {
            value["fileExtension"] = json!(ext);
        }
        value
    }

    /// An absolute URL naming the update and the file, so it keeps working
    /// (and keeps its bytes) after newer publishes.
    fn asset_url(&self, update: &Update, asset: &UpdateAsset) -> String {
        format!(
            "{}/api/updates/{}/assets?update={}&asset={}",
            self.asset_base_url,
            percent_encode(update.project_id.as_str()),
            percent_encode(update.id.as_str()),
            percent_encode(&asset.path)
        )
    }
}

/// The `expo-manifest-filters` header for a branch: an SFV dictionary.
/// Branch names are restricted to characters that are safe in it.
pub(crate) fn manifest_filters(branch: &BranchName) -> String {
    format!("branch=\"{}\"", branch.as_str())
}

/// A 404 that says which runtime versions do have updates: a mismatch
/// between the app's runtime version and the published one is the most
/// common reason an app sees no update.
pub(crate) fn no_update_message(
    runtime_version: &RuntimeVersion,
    platform: Platform,
    channel: &ChannelName,
    branch: &BranchName,
    versions_with_updates: &[RuntimeVersion],
) -> String {
    let available = if versions_with_updates.is_empty() {
        format!(
            "no runtime version has updates for {} yet",
            platform.as_str()
        )
    } else {
        let listed: Vec<String> = versions_with_updates
            .iter()
            .take(20)
            .map(|v| format!("{:?}", v.as_str()))
            .collect();
        format!(
            "runtime versions with updates for {}: {}",
            platform.as_str(),
            listed.join(", ")
        )
    };
    format!(
        "No update for runtime version {:?} on {} in branch {:?} (channel {:?}); {available}.",
        runtime_version.as_str(),
        platform.as_str(),
        branch.as_str(),
        channel.as_str(),
    )
}

/// `2026-01-01T10:00:00.000Z`: the exact shape both clients parse.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `/`.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        let at =
            DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z").map(|t| t.with_timezone(&Utc));
        assert_eq!(
            at.map(timestamp).ok().as_deref(),
            Some("2026-01-01T10:00:00.000Z")
        );
    }

    #[test]
    fn urls_are_percent_encoded() {
        assert_eq!(
            percent_encode("assets/a b&c=d?é"),
            "assets/a%20b%26c%3Dd%3F%C3%A9"
        );
    }
}
