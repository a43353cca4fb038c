//! Property tests of the domain's parsers: every constructor and parser that
//! a value from a client (an HTTP request, a publish form, an export's
//! `metadata.json` or `expoConfig.json`) passes through.
//!
//! For each: it never panics on arbitrary input (unicode, NUL and other
//! control characters, `..`, backslashes, percent-encodings, lengths around
//! the limits), what it accepts satisfies the documented invariants, and it
//! agrees with a small reference model written from the doc comments.
//!
//! Each property runs [`DEFAULT_CASES`] cases (a few seconds in a debug
//! build); `PROPTEST_CASES` overrides that.
#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

use std::collections::BTreeMap;

use domain::api_key::{KeyName, looks_like_secret};
use domain::audit::ActorKind;
use domain::export::{
    PlatformFiles, RuntimeVersionError, parse_expo_config, parse_metadata, resolve_runtime_version,
    strip_bom,
};
use domain::id::is_valid_id;
use domain::insights::DeviceSketch;
use domain::member::Role;
use domain::project::{ProjectName, Slug};
use domain::release::{BranchName, ChannelName, RolloutPercentage, in_rollout};
use domain::signing_key::{SigningKeyId, UnknownKeyId, choose_signing_key};
use domain::update::{
    ContentEncoding, MAX_MESSAGE_LEN, MAX_PATH_LEN, Platform, RuntimeVersion, UpdateKind,
    asset_blob_key, blob_key_sha256, is_compressed_copy, is_compressible, normalize_export_path,
    parse_message,
};
use domain::user::{Email, Password, Username};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};
use serde_json::{Map, Value, json};

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 512;

/// `ProptestConfig::default()` reads `PROPTEST_CASES`, but a literal
/// `cases` would override it: read it here so the variable still wins.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        // Relative to the package: failing inputs are kept and replayed
        // first on the next run.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/parsers_proptest.txt",
        ))),
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------ strategies

/// Pieces a hostile path or name is made of.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-zA-Z0-9_-]{1,6}",
        3 => Just("/".to_owned()),
        2 => Just("\\".to_owned()),
        2 => Just("..".to_owned()),
        2 => Just(".".to_owned()),
        1 => Just("\0".to_owned()),
        1 => Just(":".to_owned()),
        1 => Just("C:".to_owned()),
        1 => Just("%2e%2e".to_owned()),
        1 => Just("%2F".to_owned()),
        1 => Just("%5c".to_owned()),
        1 => Just("%00".to_owned()),
        1 => Just(" ".to_owned()),
        1 => Just("\n".to_owned()),
        1 => Just("\u{7f}".to_owned()),
        1 => Just("\u{85}".to_owned()),
        1 => Just("\u{202e}".to_owned()),
        1 => Just("\u{2215}".to_owned()),
        1 => Just("\u{ff0e}\u{ff0e}".to_owned()),
        1 => Just("\u{feff}".to_owned()),
        1 => Just("é".to_owned()),
        1 => Just("@".to_owned()),
        2 => any::<char>().prop_map(String::from),
    ]
}

/// Strings built from [`fragment`]s: mostly almost-valid, often hostile.
fn hostile() -> impl Strategy<Value = String> {
    vec(fragment(), 0..12).prop_map(|pieces| pieces.concat())
}

/// Any string: hostile, arbitrary chars (control characters included), or
/// long.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => hostile(),
        2 => vec(any::<char>(), 0..40).prop_map(String::from_iter),
        1 => vec(prop_oneof![Just('a'), Just('é'), Just('\u{1F600}'), Just('/')], 0..1100)
            .prop_map(String::from_iter),
    ]
}

/// Arbitrary JSON, with keys and strings that mean something to the parsers.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("fileMetadata".to_owned()),
        Just("ios".to_owned()),
        Just("android".to_owned()),
        Just("bundle".to_owned()),
        Just("assets".to_owned()),
        Just("path".to_owned()),
        Just("ext".to_owned()),
        Just("runtimeVersion".to_owned()),
        Just("policy".to_owned()),
        Just("version".to_owned()),
        Just("sdkVersion".to_owned()),
        Just("buildNumber".to_owned()),
        Just("versionCode".to_owned()),
        hostile(),
    ];
    let text = prop_oneof![
        Just("appVersion".to_owned()),
        Just("nativeVersion".to_owned()),
        Just("sdkVersion".to_owned()),
        Just("fingerprint".to_owned()),
        any_text(),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        text.prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(key.clone(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A string or, sometimes, another JSON value where a string is expected.
fn stringish() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => any_text().prop_map(Value::String),
        1 => Just(Value::Null),
        1 => any::<i64>().prop_map(Value::from),
        1 => Just(json!(["a"])),
    ]
}

/// JSON shaped like `metadata.json`, with holes and hostile values.
fn metadata_like() -> impl Strategy<Value = Value> {
    let platform = prop_oneof![
        4 => Just("ios".to_owned()),
        4 => Just("android".to_owned()),
        1 => Just("web".to_owned()),
        1 => hostile(),
    ];
    let ext = prop_oneof![
        4 => "[a-zA-Z0-9]{0,17}".prop_map(Value::String),
        1 => stringish(),
    ];
    let asset = (stringish(), proptest::option::of(ext)).prop_map(|(path, ext)| {
        let mut object = Map::new();
        object.insert("path".to_owned(), path);
        if let Some(ext) = ext {
            object.insert("ext".to_owned(), ext);
        }
        Value::Object(object)
    });
    let files = (
        proptest::option::of(stringish()),
        proptest::option::of(vec(asset, 0..5)),
    )
        .prop_map(|(bundle, assets)| {
            let mut object = Map::new();
            if let Some(bundle) = bundle {
                object.insert("bundle".to_owned(), bundle);
            }
            if let Some(assets) = assets {
                object.insert("assets".to_owned(), Value::Array(assets));
            }
            Value::Object(object)
        });
    btree_map(platform, files, 0..3).prop_map(|platforms| {
        json!({
            "version": 0,
            "bundler": "metro",
            "fileMetadata": Value::Object(platforms.into_iter().collect()),
        })
    })
}

/// A valid relative path: 1 to 5 segments of safe characters.
fn valid_path() -> impl Strategy<Value = Vec<String>> {
    vec("[a-zA-Z0-9_-][a-zA-Z0-9_.@-]{0,12}", 1..5)
}

// ------------------------------------------------------------------ reference models

/// `normalize_export_path` as its doc comment states it.
fn reference_normalize(raw: &str) -> Option<String> {
    let path = raw.replace('\\', "/");
    let ok = !path.is_empty()
        && path.len() <= MAX_PATH_LEN
        && !path.chars().any(char::is_control)
        && !path.starts_with('/')
        && !path.contains(':')
        && path
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..");
    ok.then_some(path)
}

/// The invariants of a confined path, checked directly on the result.
fn assert_confined(path: &str) {
    assert!(!path.is_empty(), "empty path");
    assert!(path.len() <= MAX_PATH_LEN, "{path:?} is too long");
    assert!(!path.starts_with('/'), "{path:?} is absolute");
    assert!(!path.contains('\\'), "{path:?} keeps a backslash");
    assert!(!path.contains('\0'), "{path:?} holds NUL");
    assert!(!path.chars().any(char::is_control), "{path:?}");
    assert!(!path.contains(':'), "{path:?} may name a drive");
    for segment in path.split('/') {
        assert!(
            !segment.is_empty() && segment != "." && segment != "..",
            "{path:?} has segment {segment:?}"
        );
    }
}

/// `parse_metadata` on an already parsed document, as documented.
fn reference_metadata(json: &Value) -> Option<BTreeMap<Platform, PlatformFiles>> {
    let file_metadata = json.get("fileMetadata")?.as_object()?;
    if file_metadata.is_empty() {
        return None;
    }
    let mut platforms = BTreeMap::new();
    for (name, files) in file_metadata {
        let platform = match name.as_str() {
            "ios" => Platform::Ios,
            "android" => Platform::Android,
            _ => return None,
        };
        let bundle = files.get("bundle")?.as_str()?;
        let mut assets = Vec::new();
        let listed = match files.get("assets") {
            Some(Value::Array(assets)) => assets.clone(),
            // Absent or not an array: no assets.
            _ => Vec::new(),
        };
        for asset in &listed {
            let path = asset.get("path")?.as_str()?;
            // A missing or non-string ext is read as none.
            let ext = asset.get("ext").and_then(Value::as_str).unwrap_or("");
            if ext.len() > 16 || !ext.chars().all(|c| c.is_ascii_alphanumeric()) {
                return None;
            }
            assets.push((reference_normalize(path)?, ext.to_ascii_lowercase()));
        }
        platforms.insert(
            platform,
            PlatformFiles {
                bundle: reference_normalize(bundle)?,
                assets,
            },
        );
    }
    Some(platforms)
}

/// Branch and channel names, as documented on the types.
fn reference_name(raw: &str, max: usize, slash: bool) -> bool {
    let mut chars = raw.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    first_ok
        && raw.chars().count() <= max
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c) || (slash && c == '/'))
}

fn reference_uuid(raw: &str) -> bool {
    let chars: Vec<char> = raw.chars().collect();
    chars.len() == 36
        && chars.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

// ------------------------------------------------------------------ export paths and metadata

proptest! {
    #![proptest_config(config())]

    /// Never panics; what it accepts is confined, and it agrees with the
    /// documented rule (`\` becomes `/`, nothing else changes).
    #[test]
    fn export_paths_are_confined(raw in any_text()) {
        let normalised = normalize_export_path(&raw);
        if let Ok(path) = &normalised {
            assert_confined(path);
        }
        prop_assert_eq!(normalised.ok(), reference_normalize(&raw));
    }

    /// Normalising a normalised path changes nothing.
    #[test]
    fn export_path_normalisation_is_idempotent(raw in any_text()) {
        if let Ok(path) = normalize_export_path(&raw) {
            prop_assert_eq!(normalize_export_path(&path), Ok(path));
        }
    }

    /// A path made of safe segments is accepted whatever separator joins
    /// them, and always comes back with `/`.
    #[test]
    fn valid_export_paths_round_trip(segments in valid_path(), backslashes in vec(any::<bool>(), 5)) {
        prop_assume!(segments.iter().all(|s| s != "." && s != ".."));
        let mut raw = String::new();
        for (i, segment) in segments.iter().enumerate() {
            if i > 0 {
                raw.push(if backslashes[i % backslashes.len()] { '\\' } else { '/' });
            }
            raw.push_str(segment);
        }
        prop_assert_eq!(normalize_export_path(&raw), Ok(segments.join("/")));
    }

    /// Any byte string: no panic, and every path in an accepted document is
    /// confined.
    #[test]
    fn metadata_from_arbitrary_bytes(bytes in vec(any::<u8>(), 0..256), bom in any::<bool>()) {
        let bytes = if bom { [b"\xEF\xBB\xBF".as_slice(), &bytes].concat() } else { bytes };
        if let Ok(platforms) = parse_metadata(&bytes) {
            for files in platforms.values() {
                files.paths().for_each(assert_confined);
            }
        }
    }

    /// Arbitrary JSON: no panic; accepted documents hold confined paths.
    #[test]
    fn metadata_from_arbitrary_json(document in json_value()) {
        let bytes = serde_json::to_vec(&document).unwrap();
        if let Ok(platforms) = parse_metadata(&bytes) {
            prop_assert!(!platforms.is_empty());
            for files in platforms.values() {
                files.paths().for_each(assert_confined);
            }
        }
    }

    /// Metadata-shaped JSON with holes and hostile values: the parser agrees
    /// with the reference model exactly (what it accepts, and the result).
    #[test]
    fn metadata_agrees_with_the_reference(document in metadata_like(), bom in any::<bool>()) {
        let mut bytes = serde_json::to_vec(&document).unwrap();
        if bom {
            bytes.splice(0..0, *b"\xEF\xBB\xBF");
        }
        let parsed = parse_metadata(&bytes);
        if let Ok(platforms) = &parsed {
            for files in platforms.values() {
                files.paths().for_each(assert_confined);
                for (_, ext) in &files.assets {
                    prop_assert!(ext.len() <= 16);
                    prop_assert!(ext.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
                }
            }
        }
        prop_assert_eq!(parsed.ok(), reference_metadata(&document));
    }

    /// A valid export written with `/` or `\` (Windows) parses back to the
    /// same files with `/`.
    #[test]
    fn valid_metadata_round_trips(
        platforms in btree_map(
            prop_oneof![Just(Platform::Ios), Just(Platform::Android)],
            (valid_path(), vec((valid_path(), "[a-zA-Z0-9]{0,16}"), 0..5)),
            1..3,
        ),
        windows in any::<bool>(),
    ) {
        let join = |segments: &[String]| segments.join(if windows { "\\" } else { "/" });
        let valid = |segments: &[String]| segments.iter().all(|s| s != "." && s != "..");
        prop_assume!(platforms.values().all(|(bundle, assets)| {
            valid(bundle) && assets.iter().all(|(path, _)| valid(path))
        }));
        let document = json!({
            "fileMetadata": platforms.iter().map(|(platform, (bundle, assets))| {
                (platform.as_str().to_owned(), json!({
                    "bundle": join(bundle),
                    "assets": assets.iter()
                        .map(|(path, ext)| json!({"path": join(path), "ext": ext}))
                        .collect::<Vec<_>>(),
                }))
            }).collect::<Map<_, _>>(),
        });
        let expected: BTreeMap<Platform, PlatformFiles> = platforms
            .iter()
            .map(|(platform, (bundle, assets))| {
                (*platform, PlatformFiles {
                    bundle: bundle.join("/"),
                    assets: assets
                        .iter()
                        .map(|(path, ext)| (path.join("/"), ext.to_ascii_lowercase()))
                        .collect(),
                })
            })
            .collect();
        let bytes = serde_json::to_vec(&document).unwrap();
        prop_assert_eq!(parse_metadata(&bytes), Ok(expected));
    }

    /// `expoConfig.json`: accepted exactly when it is a JSON object (after
    /// an optional BOM), and then returned unchanged.
    #[test]
    fn expo_config_is_an_object(document in json_value(), bom in any::<bool>(), garbage in vec(any::<u8>(), 0..64)) {
        let mut bytes = serde_json::to_vec(&document).unwrap();
        if bom {
            bytes.splice(0..0, *b"\xEF\xBB\xBF");
        }
        // Compared with what serde_json reads back (its float parsing is
        // not exact to the last bit).
        let reparsed: Value = serde_json::from_slice(strip_bom(&bytes)).unwrap();
        match parse_expo_config(&bytes) {
            Ok(object) => prop_assert_eq!(Value::Object(object), reparsed),
            Err(_) => prop_assert!(!reparsed.is_object()),
        }
        // Arbitrary bytes never panic, and are accepted only as an object.
        if let Ok(object) = parse_expo_config(&garbage) {
            let reparsed: Value = serde_json::from_slice(strip_bom(&garbage)).unwrap();
            prop_assert_eq!(Value::Object(object), reparsed);
        }
    }

    /// `strip_bom` removes exactly one leading BOM.
    #[test]
    fn strip_bom_removes_one_bom(bytes in vec(any::<u8>(), 0..32)) {
        let with_bom = [b"\xEF\xBB\xBF".as_slice(), &bytes].concat();
        prop_assert_eq!(strip_bom(&with_bom), bytes.as_slice());
        if !bytes.starts_with(b"\xEF\xBB\xBF") {
            prop_assert_eq!(strip_bom(&bytes), bytes.as_slice());
        }
    }

    /// Any app config: no panic; a resolved runtime version is a valid one;
    /// a plain string setting resolves to itself exactly when it is valid.
    #[test]
    fn runtime_versions_resolve_to_valid_ones(
        config in json_value(),
        setting in any_text(),
        platform in prop_oneof![Just(Platform::Ios), Just(Platform::Android)],
    ) {
        if let Value::Object(config) = &config
            && let Ok(version) = resolve_runtime_version(config, platform)
        {
            prop_assert!(RuntimeVersion::parse(version.as_str()).is_ok());
        }
        let mut plain = Map::new();
        plain.insert("runtimeVersion".to_owned(), Value::String(setting.clone()));
        match resolve_runtime_version(&plain, platform) {
            Ok(version) => prop_assert_eq!(version.as_str(), setting.as_str()),
            Err(error) => {
                prop_assert!(RuntimeVersion::parse(&setting).is_err());
                prop_assert!(matches!(error, RuntimeVersionError::Invalid(_)), "{error:?}");
            }
        }
    }

    /// The `appVersion` policy reads `version`; a platform's own
    /// `runtimeVersion` wins over the top-level one.
    #[test]
    fn app_version_policy_and_platform_override(
        version in "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}",
        own in "[a-z0-9.]{1,20}".prop_filter("not . or ..", |own| own != "." && own != ".."),
    ) {
        let config = json!({
            "version": version,
            "runtimeVersion": {"policy": "appVersion"},
            "android": {"runtimeVersion": own},
        });
        let Value::Object(config) = config else { unreachable!() };
        prop_assert_eq!(
            resolve_runtime_version(&config, Platform::Ios).map(|v| v.as_str().to_owned()),
            Ok(version)
        );
        prop_assert_eq!(
            resolve_runtime_version(&config, Platform::Android).map(|v| v.as_str().to_owned()),
            Ok(own)
        );
    }
}

// ------------------------------------------------------------------ update values

proptest! {
    #![proptest_config(config())]

    /// Non-empty, at most 255 characters (not bytes), no control
    /// characters, no `\\` and no empty, `.` or `..` segment between `/`,
    /// kept exactly as sent.
    #[test]
    fn runtime_versions(raw in prop_oneof![
        any_text(),
        vec(prop_oneof![Just('9'), Just('é'), Just('\u{1F600}')], 250..260).prop_map(String::from_iter),
    ]) {
        let expected = !raw.is_empty()
            && raw.chars().count() <= RuntimeVersion::MAX_LEN
            && !raw.chars().any(char::is_control)
            && !raw.contains('\\')
            && !raw.split('/').any(|s| s.is_empty() || s == "." || s == "..");
        match RuntimeVersion::parse(&raw) {
            Ok(version) => {
                prop_assert!(expected, "accepted {raw:?}");
                prop_assert_eq!(version.as_str(), raw.as_str());
            }
            Err(_) => prop_assert!(!expected, "refused {raw:?}"),
        }
    }

    /// Update messages: at most 1024 characters; tab, CR and LF allowed,
    /// no other control character.
    #[test]
    fn messages(raw in prop_oneof![
        any_text(),
        vec(prop_oneof![Just('x'), Just('\n'), Just('\t'), Just('é')], 1020..1030).prop_map(String::from_iter),
    ]) {
        let expected = raw.chars().count() <= MAX_MESSAGE_LEN
            && raw.chars().all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'));
        prop_assert_eq!(parse_message(&raw).ok(), expected.then(|| raw.clone()));
    }

    /// Platforms, update kinds, actor kinds and roles: exactly their
    /// spellings, and `as_str` round-trips.
    #[test]
    fn enumerations_parse_their_spellings(raw in prop_oneof![
        any_text(),
        Just("ios".to_owned()), Just("android".to_owned()), Just("IOS".to_owned()), Just(" ios".to_owned()),
        Just("update".to_owned()), Just("rollback".to_owned()),
        Just("user".to_owned()), Just("apiKey".to_owned()), Just("system".to_owned()),
        Just("owner".to_owned()), Just("member".to_owned()), Just("Owner".to_owned()),
    ]) {
        prop_assert_eq!(Platform::parse(&raw).map(Platform::as_str), ["ios", "android"].into_iter().find(|s| *s == raw));
        prop_assert_eq!(UpdateKind::parse(&raw).map(UpdateKind::as_str), ["update", "rollback"].into_iter().find(|s| *s == raw));
        prop_assert_eq!(ActorKind::parse(&raw).map(ActorKind::as_str), ["user", "apiKey", "system"].into_iter().find(|s| *s == raw));
        prop_assert_eq!(Role::parse(&raw).ok().map(Role::as_str), ["owner", "member"].into_iter().find(|s| *s == raw));
    }

    /// Ids: only canonical UUIDs, which every UUID's text form is.
    #[test]
    fn ids_are_canonical_uuids(raw in prop_oneof![
        any_text(),
        "[0-9a-fA-F-]{30,40}",
        any::<u128>().prop_map(|n| {
            let hex = format!("{n:032x}");
            format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
        }),
    ]) {
        prop_assert_eq!(is_valid_id(&raw), reference_uuid(&raw));
    }

    /// Blob keys: the hash a key names is the one it was made from, for the
    /// file and for its compressed copies.
    #[test]
    fn blob_keys_name_their_hash(project in "[0-9a-f-]{36}", sha in "[0-9a-f]{64}", other in any_text()) {
        let key = asset_blob_key(&project, &sha);
        prop_assert_eq!(blob_key_sha256(&key), sha.as_str());
        prop_assert!(!is_compressed_copy(&key));
        for encoding in ContentEncoding::ALL {
            let copy = encoding.blob_key(&key);
            prop_assert_eq!(blob_key_sha256(&copy), sha.as_str());
            prop_assert!(is_compressed_copy(&copy));
        }
        // Arbitrary text never panics.
        let _ = (blob_key_sha256(&other), is_compressed_copy(&other), is_compressible(&other));
    }

    /// Content types compare case-insensitively and ignore parameters.
    #[test]
    fn compressibility_ignores_case_and_parameters(essence in prop_oneof![
        Just("application/javascript"), Just("image/png"), Just("text/plain"), Just("application/vnd.x+json"), Just("font/ttf"),
    ], parameters in "(; ?[a-z]{1,8}=[a-z0-9-]{1,8}){0,2}", upper in any::<bool>()) {
        let essence_cased = if upper { essence.to_ascii_uppercase() } else { essence.to_owned() };
        prop_assert_eq!(is_compressible(&format!("{essence_cased}{parameters}")), is_compressible(essence));
    }
}

// ------------------------------------------------------------------ release values

proptest! {
    #![proptest_config(config())]

    /// Branch names: 1 to 128 of `A-Z a-z 0-9 . _ - /`, starting with a
    /// letter or digit; channel names the same without `/`, at most 64; and
    /// every channel name is a branch name.
    #[test]
    fn branch_and_channel_names(raw in prop_oneof![
        any_text(),
        "[a-zA-Z0-9][a-zA-Z0-9._/-]{0,130}",
        "[a-zA-Z0-9][a-zA-Z0-9._-]{60,70}",
    ]) {
        let branch = BranchName::parse(&raw);
        prop_assert_eq!(branch.is_ok(), reference_name(&raw, BranchName::MAX_LEN, true), "branch {:?}", raw);
        if let Ok(branch) = &branch {
            prop_assert_eq!(branch.as_str(), raw.as_str());
        }
        let channel = ChannelName::parse(&raw);
        prop_assert_eq!(channel.is_ok(), reference_name(&raw, ChannelName::MAX_LEN, false), "channel {:?}", raw);
        if let Ok(channel) = channel {
            prop_assert_eq!(channel.as_str(), raw.as_str());
            prop_assert_eq!(BranchName::parse(&raw).ok(), Some(channel.same_name_branch()));
        }
    }

    /// Percentages: 0 to 100, 1 to 100 for a publish; the value round-trips.
    #[test]
    fn rollout_percentages(raw in prop_oneof![any::<i64>(), -5i64..110]) {
        let parsed = RolloutPercentage::parse(raw);
        prop_assert_eq!(parsed.is_ok(), (0..=100).contains(&raw));
        if let Ok(percentage) = parsed {
            prop_assert_eq!(i64::from(percentage.value()), raw);
            prop_assert_eq!(percentage.is_complete(), raw == 100);
        }
        prop_assert_eq!(RolloutPercentage::parse_for_publish(raw).is_ok(), (1..=100).contains(&raw));
    }

    /// `EAS-Client-ID` is any text a device sends: deciding never panics,
    /// raising a percentage only adds devices, 0 % takes none and 100 %
    /// takes all (even without an id).
    #[test]
    fn rollouts_only_grow(client in proptest::option::of(any_text()), salt in any_text(), a in 0i64..=100, b in 0i64..=100) {
        let (low, high) = (a.min(b), a.max(b));
        let inside = |p: i64| in_rollout(client.as_deref(), &salt, RolloutPercentage::parse(p).unwrap());
        prop_assert!(!inside(low) || inside(high));
        prop_assert!(!inside(0));
        prop_assert!(inside(100));
        if client.is_none() {
            prop_assert_eq!(inside(high), high == 100);
        }
    }
}

// ------------------------------------------------------------------ accounts, projects, keys

proptest! {
    #![proptest_config(config())]

    /// Usernames: trimmed, 1 to 64 characters, no `@`, whitespace or control
    /// character; so never equal to an email address.
    #[test]
    fn usernames(raw in prop_oneof![any_text(), "[ \t]{0,2}[a-z@.]{1,70}[ \t]{0,2}"]) {
        let trimmed = raw.trim();
        let expected = !trimmed.is_empty()
            && trimmed.chars().count() <= Username::MAX_LEN
            && !trimmed.contains('@')
            && !trimmed.chars().any(|c| c.is_whitespace() || c.is_control());
        match Username::parse(&raw) {
            Ok(name) => {
                prop_assert!(expected);
                prop_assert_eq!(name.as_str(), trimmed);
                prop_assert!(Email::parse(name.as_str()).is_err());
            }
            Err(_) => prop_assert!(!expected),
        }
    }

    /// Emails: trimmed, one `@`, a local part, a dotted domain without empty
    /// labels at either end or in a row; at most 254 bytes.
    #[test]
    fn emails(raw in prop_oneof![
        any_text(),
        "[ ]?[a-z.+@]{1,10}@[a-z.@-]{1,20}[ ]?",
        "[a-z]{1,64}@[a-z]{1,63}\\.[a-z]{1,63}\\.[a-z]{1,63}",
    ]) {
        let email = raw.trim();
        let expected = match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && email.len() <= Email::MAX_LEN
                    && !email.chars().any(|c| c.is_whitespace() || c.is_control())
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            }
            None => false,
        };
        match Email::parse(&raw) {
            Ok(parsed) => {
                prop_assert!(expected, "accepted {raw:?}");
                prop_assert_eq!(parsed.as_str(), email);
            }
            Err(_) => prop_assert!(!expected, "refused {raw:?}"),
        }
    }

    /// Passwords: at least 8 characters, at most 1024 bytes, kept as typed.
    #[test]
    fn passwords(raw in prop_oneof![any_text(), vec(prop_oneof![Just('a'), Just('\u{1F600}')], 250..300).prop_map(String::from_iter)]) {
        let expected = raw.chars().count() >= Password::MIN_CHARS && raw.len() <= Password::MAX_BYTES;
        match Password::parse(&raw) {
            Ok(password) => {
                prop_assert!(expected);
                prop_assert_eq!(password.expose(), raw.as_str());
                let shown = format!("{password:?}");
                prop_assert_eq!(shown.as_str(), "Password(***)");
            }
            Err(_) => prop_assert!(!expected),
        }
    }

    /// Slugs: 1 to 64 of `a-z 0-9 -`, not trimmed.
    #[test]
    fn slugs(raw in prop_oneof![any_text(), "[a-z0-9-]{0,70}"]) {
        let expected = !raw.is_empty()
            && raw.len() <= Slug::MAX_LEN
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        prop_assert_eq!(Slug::parse(&raw).ok().map(Slug::into_inner), expected.then(|| raw.clone()));
    }

    /// Project and key names: trimmed, 1 to 100 (project) / 100 (key)
    /// characters, no control character.
    #[test]
    fn display_names(raw in prop_oneof![any_text(), " {0,2}[a-zé ]{95,105} {0,2}"]) {
        let trimmed = raw.trim();
        let expected = |max: usize| {
            (!trimmed.is_empty() && trimmed.chars().count() <= max && !trimmed.chars().any(char::is_control))
                .then(|| trimmed.to_owned())
        };
        prop_assert_eq!(ProjectName::parse(&raw).ok().map(ProjectName::into_inner), expected(ProjectName::MAX_LEN));
        prop_assert_eq!(KeyName::parse(&raw).ok().map(|name| name.as_str().to_owned()), expected(KeyName::MAX_LEN));
    }

    /// Bearer values that look like key secrets: `eus_` + 64 lowercase hex,
    /// or 64 lowercase hex.
    #[test]
    fn secret_shapes(raw in prop_oneof![any_text(), "(eus_)?[0-9a-fA-F]{62,66}"]) {
        let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let expected = hex(&raw) || raw.strip_prefix("eus_").is_some_and(hex);
        prop_assert_eq!(looks_like_secret(&raw), expected);
    }
}

// ------------------------------------------------------------------ code signing and insights

proptest! {
    #![proptest_config(config())]

    /// Signing key ids: 1 to 64 printable ASCII characters without space,
    /// quote or backslash, so one can be written inside an SFV string.
    #[test]
    fn signing_key_ids(raw in prop_oneof![any_text(), "[!-~]{0,70}"]) {
        let expected = !raw.is_empty()
            && raw.len() <= SigningKeyId::MAX_LEN
            && raw.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        match SigningKeyId::parse(&raw) {
            Ok(id) => {
                prop_assert!(expected, "accepted {raw:?}");
                prop_assert_eq!(id.as_str(), raw.as_str());
                prop_assert_eq!(id.to_string(), raw);
            }
            Err(_) => prop_assert!(!expected, "refused {raw:?}"),
        }
    }

    /// The key a device's `keyid` picks: the project's key of that id, else
    /// the server's when its id matches, else unknown; no `keyid` picks the
    /// project's newest, else the server's.
    #[test]
    fn signing_keys_are_chosen_by_keyid(
        project in vec("[a-c]{1,2}", 0..4),
        server in proptest::option::of("[a-c]{1,2}"),
        requested in proptest::option::of(prop_oneof![3 => "[a-c]{1,2}", 1 => any_text()]),
    ) {
        let project: Vec<(SigningKeyId, String)> = project
            .iter()
            .enumerate()
            .map(|(i, id)| (SigningKeyId::parse(id).unwrap(), format!("project-{i}")))
            .collect();
        let server = server.map(|id| (SigningKeyId::parse(&id).unwrap(), "server".to_owned()));
        let chosen = choose_signing_key(&project, server.as_ref(), requested.as_deref());
        let named = |id: &str| {
            project
                .iter()
                .chain(server.as_ref())
                .find(|(key_id, _)| key_id.as_str() == id)
                .map(|(_, key)| key)
        };
        let expected = match requested.as_deref() {
            None => Ok(project.first().or(server.as_ref()).map(|(_, key)| key)),
            Some(id) => named(id).map(Some).ok_or(UnknownKeyId),
        };
        prop_assert_eq!(chosen, expected);
    }

    /// `EAS-Client-ID` values of any kind go into the device sketch without
    /// panicking; counting a device twice changes nothing; sketches merge
    /// like inserting into one; what is stored reads back the same, and
    /// any stored bytes read back without panicking.
    #[test]
    fn device_sketches(
        a in vec(any_text(), 0..20),
        b in vec(any_text(), 0..20),
        stored in prop_oneof![vec(any::<u8>(), 0..8), vec(any::<u8>(), 1024), vec(any::<u8>(), 1025)],
    ) {
        let sketch = |ids: &[String]| {
            let mut sketch = DeviceSketch::default();
            ids.iter().for_each(|id| sketch.insert(id));
            sketch
        };
        let (sa, sb) = (sketch(&a), sketch(&b));
        let mut twice = sa.clone();
        a.iter().for_each(|id| twice.insert(id));
        prop_assert_eq!(&twice, &sa);
        let mut merged = sa.clone();
        merged.merge(&sb);
        let mut other_way = sb.clone();
        other_way.merge(&sa);
        prop_assert_eq!(&merged, &other_way);
        prop_assert_eq!(&merged, &sketch(&[a.clone(), b.clone()].concat()));
        prop_assert_eq!(sa.is_empty(), a.is_empty());
        prop_assert_eq!(&DeviceSketch::from_bytes(&sa.to_bytes()), &sa);
        let read = DeviceSketch::from_bytes(&stored);
        let _ = read.estimate();
        if stored.len() != 1024 {
            prop_assert!(read.is_empty());
        }
        // Few distinct devices: linear counting never overestimates by more
        // than rounding (registers only fill up), and finds at least one.
        // (Hash collisions between devices may make it underestimate.)
        let distinct = a.iter().collect::<std::collections::BTreeSet<_>>().len() as u64;
        let estimate = sa.estimate();
        prop_assert!(estimate <= distinct + 1, "estimate {} for {} devices", estimate, distinct);
        prop_assert_eq!(estimate == 0, distinct == 0, "estimate {} for {} devices", estimate, distinct);
    }
}
