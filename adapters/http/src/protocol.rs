//! The Expo Updates protocol on the wire: `GET .../manifest` (assets are in
//! `assets.rs`). Decisions are the application's (`ServeService`); this
//! module reads headers and query parameters, negotiates the response
//! structure, and frames multipart bodies exactly as the iOS and Android
//! clients parse them (CRLF everywhere, one content-type per part, closing
//! delimiter followed by CRLF).

use std::collections::HashMap;

use application::{
    AppError, ManifestAnswer, ManifestRequest, ProtocolVersion, ServedManifest, SignatureRequest,
    SignedBody,
};
use domain::id::ProjectId;
use domain::release::ChannelName;
use domain::update::{Platform, RuntimeVersion};
use poem::http::header::{CACHE_CONTROL, CONTENT_TYPE, VARY};
use poem::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use poem::{IntoResponse, Request, Response};

use crate::device_context::{DeviceContext, query_params};
use crate::error::classify;

static EXPO_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("expo-protocol-version");
static EXPO_SFV_VERSION: HeaderName = HeaderName::from_static("expo-sfv-version");
static EXPO_MANIFEST_FILTERS: HeaderName = HeaderName::from_static("expo-manifest-filters");
static EXPO_SIGNATURE: HeaderName = HeaderName::from_static("expo-signature");

/// The request headers that change a manifest answer.
const MANIFEST_VARY: &str = "accept, expo-platform, expo-runtime-version, expo-protocol-version, \
     expo-current-update-id, expo-embedded-update-id, expo-expect-signature, expo-channel-name, \
     eas-client-id";

/// The response structures a client may accept, in the server's preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Structure {
    Multipart,
    ExpoJson,
    Json,
}

impl Structure {
    const ALL: [Self; 3] = [Self::Multipart, Self::ExpoJson, Self::Json];

    fn media_type(self) -> &'static str {
        match self {
            Self::Multipart => "multipart/mixed",
            Self::ExpoJson => "application/expo+json",
            Self::Json => "application/json",
        }
    }
}

/// The value of a `q` parameter (`q=0.5`, `Q = 0.5`): parameter names are
/// case-insensitive (RFC 9110 §12.4.2).
pub(crate) fn quality_value(param: &str) -> Option<&str> {
    let (name, value) = param.split_once('=')?;
    name.trim().eq_ignore_ascii_case("q").then_some(value)
}

/// Proactive negotiation (RFC 9110 §12.5.1): the structure with the highest
/// q-value among those the `Accept` header allows; none header means any.
fn negotiate(accept: Option<&str>) -> Option<Structure> {
    let Some(accept) = accept.filter(|value| !value.trim().is_empty()) else {
        return Some(Structure::Multipart);
    };
    // The q of the most specific range that names the structure (the last
    // of equally specific ones), 0 when none does.
    let quality = |structure: Structure| -> f32 {
        let media = structure.media_type();
        let main = media.split('/').next().unwrap_or_default();
        let mut best: Option<(u8, f32)> = None;
        for range in accept.split(',') {
            let mut pieces = range.split(';');
            let range = pieces.next().unwrap_or_default().trim();
            let specificity = if range.eq_ignore_ascii_case(media) {
                3
            } else if range
                .strip_suffix("/*")
                .is_some_and(|range| range.eq_ignore_ascii_case(main))
            {
                2
            } else if range == "*/*" {
                1
            } else {
                continue;
            };
            if best.is_none_or(|(best, _)| specificity >= best) {
                let q = pieces
                    .filter_map(quality_value)
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                best = Some((specificity, q));
            }
        }
        best.map_or(0.0, |(_, q)| q)
    };
    let mut best: Option<(Structure, f32)> = None;
    for structure in Structure::ALL {
        let q = quality(structure);
        if q > 0.0 && best.is_none_or(|(_, best_q)| q > best_q) {
            best = Some((structure, q));
        }
    }
    best.map(|(structure, _)| structure)
}

/// The headers an update check reads, found in one pass over the request's
/// headers (the first value of each, as `HeaderMap::get` would give).
#[derive(Default)]
struct CheckHeaders<'a> {
    protocol_version: Option<&'a HeaderValue>,
    platform: Option<&'a HeaderValue>,
    runtime_version: Option<&'a HeaderValue>,
    channel_name: Option<&'a HeaderValue>,
    current_update_id: Option<&'a HeaderValue>,
    embedded_update_id: Option<&'a HeaderValue>,
    expect_signature: Option<&'a HeaderValue>,
    recent_failed_update_ids: Option<&'a HeaderValue>,
    fatal_error: bool,
    client_id: Option<&'a HeaderValue>,
    accept: Option<&'a HeaderValue>,
}

impl<'a> CheckHeaders<'a> {
    fn of(headers: &'a HeaderMap) -> Self {
        let mut found = Self::default();
        for (name, value) in headers {
            let slot = match name.as_str() {
                "expo-protocol-version" => &mut found.protocol_version,
                "expo-platform" => &mut found.platform,
                "expo-runtime-version" => &mut found.runtime_version,
                "expo-channel-name" => &mut found.channel_name,
                "expo-current-update-id" => &mut found.current_update_id,
                "expo-embedded-update-id" => &mut found.embedded_update_id,
                "expo-expect-signature" => &mut found.expect_signature,
                "expo-recent-failed-update-ids" => &mut found.recent_failed_update_ids,
                "eas-client-id" => &mut found.client_id,
                "accept" => &mut found.accept,
                "expo-fatal-error" => {
                    found.fatal_error = true;
                    continue;
                }
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        found
    }

    /// The headers an update check is decided by. (`EAS-Client-ID` is not
    /// one: an odd client id is just an id, and one that is not text is read
    /// as none, which puts the device outside partial rollouts; never an
    /// error.) A value that is not visible ASCII (UTF-8 bytes, obs-text) is
    /// refused rather than read as absent, which for `expo-channel-name`
    /// would quietly serve another channel.
    fn check_deciding_headers(&self) -> Result<(), AppError> {
        let deciding = [
            ("expo-protocol-version", self.protocol_version),
            ("expo-platform", self.platform),
            ("expo-runtime-version", self.runtime_version),
            ("expo-channel-name", self.channel_name),
            ("expo-current-update-id", self.current_update_id),
            ("expo-embedded-update-id", self.embedded_update_id),
        ];
        for (name, value) in deciding {
            if value.is_some_and(|value| value.to_str().is_err()) {
                return Err(AppError::Invalid(format!(
                    "{name} must be printable ASCII."
                )));
            }
        }
        Ok(())
    }
}

/// A header's text or else, for the old server's clients, a query
/// parameter's.
fn header_or_query<'a>(
    value: Option<&'a HeaderValue>,
    query: &'a HashMap<String, String>,
    param: &str,
) -> Option<&'a str> {
    text(value).or_else(|| query.get(param).map(String::as_str))
}

/// A header's text, trimmed; none when absent, empty or not text.
fn text(value: Option<&HeaderValue>) -> Option<&str> {
    value
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

pub(crate) fn error_response(error: AppError) -> Response {
    let (status, message) = classify(error);
    poem::web::Json(serde_json::json!({ "error": message }))
        .with_status(status)
        .into_response()
}

/// `GET /api/updates/{project}/manifest`
pub(crate) async fn manifest(req: &Request, context: &DeviceContext<'_>) -> Response {
    let query = match query_params(req) {
        Ok(query) => query,
        Err(error) => return error_response(error),
    };
    let (request, structure) = match manifest_request(req.headers(), &query, context.project) {
        Ok(parsed) => parsed,
        Err(error) => return error_response(error),
    };
    match context.services.serve.manifest(&request).await {
        Ok(served) => {
            context.metrics.observe_manifest(
                context.project.to_owned(),
                request.platform.as_str(),
                served.answer.label(),
            );
            framed(&request, structure, served)
        }
        Err(error) => error_response(error),
    }
}

/// The answer framed as the device asked: multipart or JSON, with the
/// protocol's headers.
fn framed(request: &ManifestRequest, structure: Structure, served: ServedManifest) -> Response {
    let mut response = match (structure, &served.answer) {
        (_, ManifestAnswer::NoContent) => {
            Response::builder().status(StatusCode::NO_CONTENT).finish()
        }
        (Structure::Multipart, ManifestAnswer::Update(body)) => multipart(&[
            Part::signed("manifest", body),
            Part {
                name: "extensions",
                json: EXTENSIONS,
                signature: None,
            },
        ]),
        (Structure::Multipart, ManifestAnswer::NoUpdateAvailable(directive))
        | (Structure::Multipart, ManifestAnswer::RollBackToEmbedded(directive)) => {
            multipart(&[Part::signed("directive", directive)])
        }
        // Only a manifest reaches a JSON-only client (see `directives_allowed`).
        (json, ManifestAnswer::Update(body))
        | (json, ManifestAnswer::NoUpdateAvailable(body))
        | (json, ManifestAnswer::RollBackToEmbedded(body)) => {
            let mut response = Response::builder()
                .header(
                    CONTENT_TYPE,
                    format!("{}; charset=utf-8", json.media_type()),
                )
                .body(body.json.to_string());
            if let Some(Ok(value)) = body.signature.as_deref().map(str::parse) {
                response.headers_mut().insert(EXPO_SIGNATURE.clone(), value);
            }
            response
        }
    };
    let version = match request.protocol {
        ProtocolVersion::V0 => "0",
        ProtocolVersion::V1 => "1",
    };
    let headers = response.headers_mut();
    headers.insert(
        EXPO_PROTOCOL_VERSION.clone(),
        HeaderValue::from_static(version),
    );
    headers.insert(EXPO_SFV_VERSION.clone(), HeaderValue::from_static("0"));
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=0"),
    );
    headers.insert(VARY, HeaderValue::from_static(MANIFEST_VARY));
    // Branch names are restricted to characters that are safe here.
    if let Ok(filters) = HeaderValue::from_str(&served.manifest_filters) {
        headers.insert(EXPO_MANIFEST_FILTERS.clone(), filters);
    }
    response
}

/// Reads an update check once into typed values: each header (or, for the
/// old server's clients, query parameter) is checked here and nowhere else.
fn manifest_request(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    project: &str,
) -> Result<(ManifestRequest, Structure), AppError> {
    let found = CheckHeaders::of(headers);
    // A value that is not text is refused rather than read as absent: an
    // unreadable protocol version would otherwise be served as protocol 0.
    found.check_deciding_headers()?;
    let protocol = match text(found.protocol_version) {
        None | Some("0") => ProtocolVersion::V0,
        Some("1") => ProtocolVersion::V1,
        Some(other) => {
            return Err(AppError::Invalid(format!(
                "Unsupported expo-protocol-version {other:?}; this server speaks 0 and 1."
            )));
        }
    };
    let structure = negotiate(text(found.accept)).ok_or_else(|| {
        AppError::NotAcceptable(
            "Acceptable responses are multipart/mixed, application/expo+json and application/json."
                .to_owned(),
        )
    })?;
    let from_header_or_query = |value, param| header_or_query(value, query, param);
    let signature = match expected_signature(found.expect_signature)? {
        None => SignatureRequest::NotRequested,
        Some(None) => SignatureRequest::AnyKey,
        Some(Some(key_id)) => SignatureRequest::Key(key_id),
    };
    let channel = from_header_or_query(found.channel_name, "channel");
    let platform = from_header_or_query(found.platform, "platform")
        .and_then(Platform::parse)
        .ok_or_else(|| {
            AppError::Invalid("No platform provided. Expected \"ios\" or \"android\".".to_owned())
        })?;
    let runtime_version = from_header_or_query(found.runtime_version, "runtime-version")
        .or_else(|| query.get("runtimeVersion").map(String::as_str))
        .filter(|version| !version.is_empty())
        .ok_or_else(|| AppError::Invalid("No runtimeVersion provided.".to_owned()))?;
    // Checked before it reaches a query: PostgreSQL refuses NUL bytes.
    let runtime_version = RuntimeVersion::parse(runtime_version)?;
    let channel = match channel {
        None => ChannelName::default_channel(),
        Some(raw) => ChannelName::parse(raw)
            .map_err(|error| AppError::Invalid(format!("expo-channel-name: {error}")))?,
    };
    // Not a project id at all: no project by that id.
    let project_id = ProjectId::parse(project)
        .map_err(|_| AppError::NotFound("Project not found.".to_owned()))?;
    let request = ManifestRequest {
        project_id,
        platform,
        runtime_version,
        channel,
        protocol,
        current_update_id: text(found.current_update_id).map(str::to_ascii_lowercase),
        embedded_update_id: text(found.embedded_update_id).map(str::to_ascii_lowercase),
        signature,
        failed_update_ids: recent_failed_update_ids(found.recent_failed_update_ids),
        fatal_error: found.fatal_error,
        client_id: text(found.client_id).map(str::to_owned),
        directives_allowed: structure == Structure::Multipart,
    };
    Ok((request, structure))
}

/// The `extensions` part: no extra headers are needed to fetch our assets.
const EXTENSIONS: &str = "{\"assetRequestHeaders\":{}}";

/// One part of a multipart answer; every part is JSON.
struct Part<'a> {
    name: &'static str,
    json: &'a str,
    signature: Option<&'a str>,
}

impl<'a> Part<'a> {
    fn signed(name: &'static str, body: &'a SignedBody) -> Self {
        Self {
            name,
            json: &body.json,
            signature: body.signature.as_deref(),
        }
    }
}

/// A multipart boundary and the `Content-Type` that names it.
struct Boundary {
    text: &'static str,
    content_type: HeaderValue,
    finder: memchr::memmem::Finder<'static>,
}

impl Boundary {
    /// Random, so that it cannot occur in a body by accident.
    fn random() -> (String, HeaderValue) {
        let text = format!("eus-{:016x}", rand_u64());
        let content_type = HeaderValue::from_str(&format!("multipart/mixed; boundary={text}"))
            .unwrap_or_else(|_| HeaderValue::from_static("multipart/mixed"));
        (text, content_type)
    }
}

fn rand_u64() -> u64 {
    let (high, _) = uuid::Uuid::new_v4().as_u64_pair();
    high
}

/// The process's boundary, made once: every answer uses it unless a body
/// contains it (a publisher may put any text in a manifest, and sees the
/// boundary in every answer), which then gets a fresh one.
static BOUNDARY: std::sync::LazyLock<Boundary> = std::sync::LazyLock::new(|| {
    let (text, _) = Boundary::random();
    // Made once per process and kept for its lifetime: `from_static` then
    // makes every answer's header without a copy.
    let text: &'static str = Box::leak(text.into_boxed_str());
    let content_type: &'static str =
        Box::leak(format!("multipart/mixed; boundary={text}").into_boxed_str());
    Boundary {
        text,
        content_type: HeaderValue::from_static(content_type),
        finder: memchr::memmem::Finder::new(text),
    }
});

/// The headers every manifest answer carries, reserved at once.
const MANIFEST_HEADER_COUNT: usize = 8;

/// Frames parts as `multipart/mixed`, with a boundary that occurs in none
/// of them. Built in one buffer: this runs on every update check.
fn multipart(parts: &[Part<'_>]) -> Response {
    let finder = &BOUNDARY.finder;
    let contains = |text: &str| finder.find(text.as_bytes()).is_some();
    let fresh;
    let shared_occurs = parts
        .iter()
        .any(|part| contains(part.json) || part.signature.is_some_and(contains));
    let (boundary, content_type) = if shared_occurs {
        fresh = Boundary::random();
        (fresh.0.as_str(), fresh.1)
    } else {
        (BOUNDARY.text, BOUNDARY.content_type.clone())
    };
    let size: usize = parts
        .iter()
        .map(|part| part.json.len() + part.signature.map_or(0, str::len) + 160)
        .sum();
    let mut body = String::with_capacity(size + 64);
    for part in parts {
        body.push_str("--");
        body.push_str(boundary);
        body.push_str(
            "\r\ncontent-type: application/json\r\ncontent-disposition: form-data; name=\"",
        );
        body.push_str(part.name);
        body.push_str("\"\r\n");
        if let Some(signature) = part.signature {
            body.push_str("expo-signature: ");
            body.push_str(signature);
            body.push_str("\r\n");
        }
        body.push_str("\r\n");
        body.push_str(part.json);
        body.push_str("\r\n");
    }
    body.push_str("--");
    body.push_str(boundary);
    body.push_str("--\r\n");
    let mut response = Response::from(body);
    let headers = response.headers_mut();
    headers.reserve(MANIFEST_HEADER_COUNT);
    headers.insert(CONTENT_TYPE, content_type);
    response
}

/// `expo-expect-signature`: `None` when the device does not ask for a
/// signature, else the `keyid` it names (if any). The value is an SFV
/// dictionary (`sig, keyid="root", alg="rsa-v1_5-sha256"`); a value that is
/// not one, a `keyid` that is not a string, or an algorithm other than the
/// one Expo defines is refused.
fn expected_signature(value: Option<&HeaderValue>) -> Result<Option<Option<String>>, AppError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let invalid = |why: &str| AppError::Invalid(format!("expo-expect-signature: {why}"));
    let dictionary = sfv::Parser::new(value.as_bytes())
        .parse_dictionary()
        .map_err(|_| invalid("not a Structured Field Values dictionary."))?;
    let text_of = |name: &str| -> Result<Option<String>, AppError> {
        let member = dictionary
            .iter()
            .find(|(key, _)| key.as_str() == name)
            .map(|(_, member)| member);
        match member {
            None => Ok(None),
            Some(sfv::ListEntry::Item(item)) => {
                if let Some(text) = item.bare_item.as_string() {
                    Ok(Some(text.as_str().to_owned()))
                } else if let Some(token) = item.bare_item.as_token() {
                    Ok(Some(token.as_str().to_owned()))
                } else {
                    Err(invalid(&format!("{name} must be a string.")))
                }
            }
            Some(sfv::ListEntry::InnerList(_)) => {
                Err(invalid(&format!("{name} must be a string.")))
            }
        }
    };
    if let Some(alg) = text_of("alg")?
        && alg != SIGNATURE_ALGORITHM
    {
        return Err(invalid(&format!(
            "unsupported alg {alg:?}; this server signs with {SIGNATURE_ALGORITHM:?}."
        )));
    }
    Ok(Some(text_of("keyid")?))
}

/// `Expo-Recent-Failed-Update-IDs`: an SFV list of update ids (strings)
/// that failed to launch on the device. Telemetry only: a malformed value
/// is ignored rather than failing the update check. At most 16 are read.
fn recent_failed_update_ids(value: Option<&HeaderValue>) -> Vec<String> {
    let Some(value) = value else {
        return Vec::new();
    };
    let Ok(list) = sfv::Parser::new(value.as_bytes()).parse_list() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|entry| match entry {
            sfv::ListEntry::Item(item) => item
                .bare_item
                .as_string()
                .map(|id| id.as_str().to_ascii_lowercase()),
            sfv::ListEntry::InnerList(_) => None,
        })
        .take(16)
        .collect()
}

/// The only algorithm Expo code signing defines.
const SIGNATURE_ALGORITHM: &str = "rsa-v1_5-sha256";

#[cfg(test)]
mod tests {
    use super::*;

    fn boundary_of(response: &Response) -> String {
        let content_type = response.headers()[CONTENT_TYPE].to_str().expect("text");
        let boundary = content_type.strip_prefix("multipart/mixed; boundary=");
        boundary.expect("a multipart content type").to_owned()
    }

    #[test]
    fn a_body_never_contains_its_boundary() {
        let plain = multipart(&[Part {
            name: "manifest",
            json: "{}",
            signature: None,
        }]);
        let shared = boundary_of(&plain);
        assert_eq!(shared, BOUNDARY.text);
        let hostile = format!("{{\"extra\":\"--{shared}--\"}}");
        let answer = multipart(&[Part {
            name: "manifest",
            json: &hostile,
            signature: None,
        }]);
        let fresh = boundary_of(&answer);
        assert_ne!(fresh, shared);
        assert!(!hostile.contains(&fresh));
    }

    #[test]
    fn negotiation_follows_q_values() {
        assert_eq!(negotiate(None), Some(Structure::Multipart));
        assert_eq!(
            negotiate(Some(
                "multipart/mixed,application/expo+json,application/json"
            )),
            Some(Structure::Multipart)
        );
        assert_eq!(
            negotiate(Some("application/expo+json, application/json;q=0.5")),
            Some(Structure::ExpoJson)
        );
        assert_eq!(negotiate(Some("application/json")), Some(Structure::Json));
        assert_eq!(
            negotiate(Some("multipart/mixed;q=0.1, application/json")),
            Some(Structure::Json)
        );
        assert_eq!(negotiate(Some("*/*")), Some(Structure::Multipart));
        assert_eq!(negotiate(Some("text/html")), None);
        assert_eq!(negotiate(Some("multipart/mixed;q=0")), None);
    }

    #[test]
    fn expect_signature_names_a_key_or_none() {
        let parse = |value: &str| {
            let value = HeaderValue::from_str(value).expect("header");
            expected_signature(Some(&value))
        };
        assert_eq!(expected_signature(None).ok(), Some(None));
        assert_eq!(
            parse("sig, keyid=\"root\", alg=\"rsa-v1_5-sha256\"").ok(),
            Some(Some(Some("root".to_owned())))
        );
        assert_eq!(parse("sig").ok(), Some(Some(None)));
        assert_eq!(
            parse("sig, keyid=main").ok(),
            Some(Some(Some("main".to_owned())))
        );
        assert!(parse("sig, keyid=1").is_err());
        assert!(parse("sig, alg=\"ecdsa\"").is_err());
        assert!(parse("\"unterminated").is_err());
        assert!(parse("Sig").is_err());
    }
}
