//! The output of `npx expo export`, as a publish carries it: `metadata.json`
//! (which files each platform launches and loads) and the public
//! `expoConfig.json`. The server checks an upload with these rules and the
//! CLI checks an export with the same rules before sending a byte, so both
//! name a problem the same way.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::update::{Platform, RuntimeVersion, normalize_export_path};
use crate::validation::ValidationError;

/// One platform's files as `metadata.json` lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformFiles {
    /// The launch asset (the JavaScript or Hermes bundle), normalised.
    pub bundle: String,
    /// (normalised path, extension without the dot, lowercase)
    pub assets: Vec<(String, String)>,
}

impl PlatformFiles {
    /// Every file the platform needs, the bundle first.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.bundle.as_str())
            .chain(self.assets.iter().map(|(path, _)| path.as_str()))
    }
}

/// Parses `metadata.json`: `{"fileMetadata": {"ios": {"bundle", "assets": [{"path", "ext"}]}}}`.
/// Key order is not fixed in real exports, paths may use `\` (Windows), and
/// a leading UTF-8 BOM is ignored.
pub fn parse_metadata(bytes: &[u8]) -> Result<BTreeMap<Platform, PlatformFiles>, ValidationError> {
    let file_metadata = file_metadata(bytes)?;
    if file_metadata.is_empty() {
        return Err(metadata_error("fileMetadata lists no platform."));
    }
    let mut platforms = BTreeMap::new();
    for (name, files) in &file_metadata {
        let platform = Platform::parse(name).ok_or_else(|| {
            metadata_error(format!(
                "unsupported platform {name:?} (expected ios or android)."
            ))
        })?;
        platforms.insert(platform, platform_files(name, files)?);
    }
    Ok(platforms)
}

fn metadata_error(why: impl std::fmt::Display) -> ValidationError {
    ValidationError::new(format!("metadata.json: {why}"))
}

/// The `fileMetadata` object of `metadata.json`, by platform name (any
/// name: the Go server accepted `web` and others).
pub fn file_metadata(bytes: &[u8]) -> Result<serde_json::Map<String, Value>, ValidationError> {
    let json: Value = serde_json::from_slice(strip_bom(bytes))
        .map_err(|error| metadata_error(format!("not valid JSON ({error}).")))?;
    match json.get("fileMetadata") {
        Some(Value::Object(file_metadata)) => Ok(file_metadata.clone()),
        _ => Err(metadata_error("has no fileMetadata object.")),
    }
}

/// One platform's entry of `fileMetadata` (`name` is for messages).
pub fn platform_files(name: &str, files: &Value) -> Result<PlatformFiles, ValidationError> {
    let bundle = files
        .get("bundle")
        .and_then(Value::as_str)
        .ok_or_else(|| metadata_error(format!("{name} has no bundle path.")))?;
    let mut assets = Vec::new();
    for asset in files
        .get("assets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let path = asset
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| metadata_error(format!("an asset of {name} has no path.")))?;
        let ext = asset.get("ext").and_then(Value::as_str).unwrap_or_default();
        if !ext.bytes().all(|b| b.is_ascii_alphanumeric()) || ext.len() > 16 {
            return Err(metadata_error(format!(
                "asset {path} has an invalid ext {ext:?}."
            )));
        }
        assets.push((normalize_export_path(path)?, ext.to_ascii_lowercase()));
    }
    Ok(PlatformFiles {
        bundle: normalize_export_path(bundle)?,
        assets,
    })
}

/// Parses `expoConfig.json`, which must be a JSON object.
pub fn parse_expo_config(bytes: &[u8]) -> Result<serde_json::Map<String, Value>, ValidationError> {
    let json: Value = serde_json::from_slice(strip_bom(bytes)).map_err(|error| {
        ValidationError::new(format!("expoConfig.json: not valid JSON ({error})."))
    })?;
    match json {
        Value::Object(object) => Ok(object),
        _ => Err(ValidationError::new(
            "expoConfig.json must be a JSON object.",
        )),
    }
}

/// Drops a leading UTF-8 byte order mark, which Windows editors and
/// PowerShell redirections add.
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Why a runtime version could not be read from an app's config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeVersionError {
    #[error("the app config sets no runtimeVersion")]
    Missing,
    /// A policy that needs the native project or a build (fingerprint).
    #[error("the {0:?} runtime version policy cannot be resolved from the app config alone")]
    Unresolvable(String),
    #[error("{0}")]
    Invalid(String),
}

/// The runtime version an app built from this public config reports on
/// `platform`, as Expo computes it: a platform's own `runtimeVersion` wins
/// over the top-level one; a string is used as is; the `appVersion` policy
/// is `version`, `nativeVersion` is `version(buildNumber|versionCode)` and
/// `sdkVersion` is `exposdk:<sdkVersion>`. The `fingerprint` policy hashes
/// the native project, which only Expo's tooling can do.
pub fn resolve_runtime_version(
    config: &serde_json::Map<String, Value>,
    platform: Platform,
) -> Result<RuntimeVersion, RuntimeVersionError> {
    let platform_config = config.get(platform.as_str());
    let setting = platform_config
        .and_then(|own| own.get("runtimeVersion"))
        .or_else(|| config.get("runtimeVersion"))
        .ok_or(RuntimeVersionError::Missing)?;
    // Expo's own defaults when a field is absent: version "1.0.0",
    // ios.buildNumber "1", android.versionCode 1.
    let text_field =
        |value: Option<&Value>, name: &str, default: &str| -> Result<String, RuntimeVersionError> {
            match value {
                None | Some(Value::Null) => Ok(default.to_owned()),
                Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
                Some(Value::Number(number)) => Ok(number.to_string()),
                _ => Err(RuntimeVersionError::Invalid(format!(
                    "`{name}` in the app config must be a non-empty string or a number"
                ))),
            }
        };
    let resolved = match setting {
        Value::String(text) => text.clone(),
        Value::Object(object) => {
            let policy = object.get("policy").and_then(Value::as_str).unwrap_or("");
            match policy {
                "appVersion" => text_field(config.get("version"), "version", "1.0.0")?,
                "nativeVersion" => {
                    let build_field = match platform {
                        Platform::Ios => "buildNumber",
                        Platform::Android => "versionCode",
                    };
                    let version = text_field(config.get("version"), "version", "1.0.0")?;
                    let build = text_field(
                        platform_config.and_then(|own| own.get(build_field)),
                        &format!("{}.{build_field}", platform.as_str()),
                        "1",
                    )?;
                    format!("{version}({build})")
                }
                "sdkVersion" => match config.get("sdkVersion").and_then(Value::as_str) {
                    Some(sdk) if !sdk.is_empty() => format!("exposdk:{sdk}"),
                    _ => {
                        return Err(RuntimeVersionError::Invalid(
                            "the sdkVersion policy needs `sdkVersion` in the app config".to_owned(),
                        ));
                    }
                },
                other => return Err(RuntimeVersionError::Unresolvable(other.to_owned())),
            }
        }
        _ => {
            return Err(RuntimeVersionError::Invalid(
                "runtimeVersion must be a string or a {\"policy\": …} object".to_owned(),
            ));
        }
    };
    RuntimeVersion::parse(&resolved).map_err(|error| RuntimeVersionError::Invalid(error.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_is_parsed_and_normalised() {
        let metadata = br#"{"version":0,"bundler":"metro","fileMetadata":{
            "android":{"bundle":"_expo\\static\\js\\android\\index-1.hbc","assets":[{"path":"assets/a","ext":"PNG"}]},
            "ios":{"bundle":"_expo/static/js/ios/index-2.hbc","assets":[]}}}"#;
        let platforms = parse_metadata(metadata).expect("valid");
        let android = &platforms[&Platform::Android];
        assert_eq!(android.bundle, "_expo/static/js/android/index-1.hbc");
        assert_eq!(
            android.assets,
            vec![("assets/a".to_owned(), "png".to_owned())]
        );
        assert_eq!(
            android.paths().collect::<Vec<_>>(),
            ["_expo/static/js/android/index-1.hbc", "assets/a"]
        );
        assert!(platforms[&Platform::Ios].assets.is_empty());
    }

    #[test]
    fn bad_metadata_names_the_problem() {
        let cases: [(&[u8], &str); 6] = [
            (b"nope", "not valid JSON"),
            (b"{}", "no fileMetadata"),
            (br#"{"fileMetadata":{}}"#, "lists no platform"),
            (
                br#"{"fileMetadata":{"web":{"bundle":"b"}}}"#,
                "unsupported platform",
            ),
            (br#"{"fileMetadata":{"ios":{"assets":[]}}}"#, "no bundle"),
            (br#"{"fileMetadata":{"ios":{"bundle":"../b"}}}"#, "segment"),
        ];
        for (bytes, expected) in cases {
            match parse_metadata(bytes) {
                Err(error) => assert!(error.0.contains(expected), "{error}"),
                Ok(_) => panic!("{expected}: not refused"),
            }
        }
    }

    #[test]
    fn expo_config_must_be_an_object_and_may_start_with_a_bom() {
        let config = parse_expo_config(b"\xEF\xBB\xBF{\"name\":\"app\"}").expect("object");
        assert_eq!(config.get("name"), Some(&json!("app")));
        assert!(parse_expo_config(b"[1]").is_err());
        assert!(parse_expo_config(b"nope").is_err());
    }

    fn config(value: serde_json::Value) -> serde_json::Map<String, Value> {
        match value {
            Value::Object(object) => object,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn runtime_versions_resolve_like_expo() {
        let resolve = |value, platform| {
            resolve_runtime_version(&config(value), platform).map(|v| v.as_str().to_owned())
        };
        assert_eq!(
            resolve(json!({"runtimeVersion": "1.0.0"}), Platform::Ios),
            Ok("1.0.0".to_owned())
        );
        assert_eq!(
            resolve(
                json!({"version": "2.1.0", "runtimeVersion": {"policy": "appVersion"}}),
                Platform::Android
            ),
            Ok("2.1.0".to_owned())
        );
        let native = json!({"version": "3.0.0", "runtimeVersion": {"policy": "nativeVersion"},
            "ios": {"buildNumber": "7"}, "android": {"versionCode": 12}});
        assert_eq!(
            resolve(native.clone(), Platform::Ios),
            Ok("3.0.0(7)".to_owned())
        );
        assert_eq!(
            resolve(native, Platform::Android),
            Ok("3.0.0(12)".to_owned())
        );
        assert_eq!(
            resolve(
                json!({"sdkVersion": "56.0.0", "runtimeVersion": {"policy": "sdkVersion"}}),
                Platform::Ios
            ),
            Ok("exposdk:56.0.0".to_owned())
        );
        // Expo's defaults for absent fields.
        assert_eq!(
            resolve(
                json!({"runtimeVersion": {"policy": "appVersion"}}),
                Platform::Ios
            ),
            Ok("1.0.0".to_owned())
        );
        assert_eq!(
            resolve(
                json!({"runtimeVersion": {"policy": "nativeVersion"}}),
                Platform::Android
            ),
            Ok("1.0.0(1)".to_owned())
        );
        assert_eq!(
            resolve(
                json!({"runtimeVersion": "1", "ios": {"runtimeVersion": "1-ios"}}),
                Platform::Ios
            ),
            Ok("1-ios".to_owned())
        );
    }

    #[test]
    fn unresolvable_runtime_versions_say_why() {
        let resolve = |value| resolve_runtime_version(&config(value), Platform::Ios);
        assert_eq!(resolve(json!({})), Err(RuntimeVersionError::Missing));
        assert_eq!(
            resolve(json!({"runtimeVersion": {"policy": "fingerprint"}})),
            Err(RuntimeVersionError::Unresolvable("fingerprint".to_owned()))
        );
        assert!(matches!(
            resolve(json!({"runtimeVersion": {"policy": "sdkVersion"}})),
            Err(RuntimeVersionError::Invalid(_))
        ));
        assert!(matches!(
            resolve(json!({"version": true, "runtimeVersion": {"policy": "appVersion"}})),
            Err(RuntimeVersionError::Invalid(_))
        ));
        assert!(matches!(
            resolve(json!({"runtimeVersion": ""})),
            Err(RuntimeVersionError::Invalid(_))
        ));
    }
}
