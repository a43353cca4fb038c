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
use poem::http::HeaderMap;
use poem::http::header::{CACHE_CONTROL, CONTENT_TYPE, VARY};
use poem::web::{Data, Path, Query};
use poem::{IntoResponse, Request, Response, handler};

use crate::error::classify;
use crate::metrics::ManifestServed;
use application::Services;

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
    let ranges: Vec<(String, f32)> = accept
        .split(',')
        .filter_map(|range| {
            let mut pieces = range.split(';');
            let media = pieces.next()?.trim().to_ascii_lowercase();
            let q = pieces
                .filter_map(quality_value)
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((media, q))
        })
        .collect();
    let quality = |structure: Structure| -> f32 {
        let media = structure.media_type();
        let main = media.split('/').next().unwrap_or_default();
        let specificity = |range: &str| {
            if range == media {
                Some(3)
            } else if range.strip_suffix("/*") == Some(main) {
                Some(2)
            } else if range == "*/*" {
                Some(1)
            } else {
                None
            }
        };
        ranges
            .iter()
            .filter_map(|(range, q)| specificity(range).map(|s| (s, *q)))
            .max_by_key(|(s, _)| *s)
            .map_or(0.0, |(_, q)| q)
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

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// The headers an update check is decided by. (`EAS-Client-ID` is not one:
/// an odd client id is just an id, and one that is not text is read as
/// none, which puts the device outside partial rollouts; never an error.)
const DEVICE_HEADERS: [&str; 6] = [
    "expo-protocol-version",
    "expo-platform",
    "expo-runtime-version",
    "expo-channel-name",
    "expo-current-update-id",
    "expo-embedded-update-id",
];

/// A header that must be visible ASCII when present: a value that is not
/// (UTF-8 bytes, obs-text) is refused rather than read as absent, which for
/// `expo-channel-name` would quietly serve another channel.
fn ascii_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AppError> {
    match headers.get(name) {
        Some(value) if value.to_str().is_err() => Err(AppError::Invalid(format!(
            "{name} must be printable ASCII."
        ))),
        _ => Ok(header(headers, name)),
    }
}

pub(crate) fn error_response(error: AppError) -> Response {
    let (status, message) = classify(error);
    poem::web::Json(serde_json::json!({ "error": message }))
        .with_status(status)
        .into_response()
}

/// `GET /api/updates/{project}/manifest`
#[handler]
pub async fn manifest(
    req: &Request,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    services: Data<&Services>,
) -> Response {
    let (request, structure) = match manifest_request(req.headers(), &query, &project) {
        Ok(parsed) => parsed,
        Err(error) => return error_response(error),
    };
    match services.serve.manifest(&request).await {
        Ok(served) => framed(&request, structure, served, project),
        Err(error) => error_response(error),
    }
}

/// The answer framed as the device asked: multipart or JSON, with the
/// protocol's headers, and what the metrics count.
fn framed(
    request: &ManifestRequest,
    structure: Structure,
    served: ServedManifest,
    project: String,
) -> Response {
    let served_metric = ManifestServed {
        project_id: project,
        platform: request.platform.as_str(),
        answer: served.answer.label(),
    };
    let mut response = match (structure, &served.answer) {
        (Structure::Multipart, ManifestAnswer::Update(body)) => multipart(&[
            Part::signed("manifest", body),
            Part {
                name: "extensions",
                json: EXTENSIONS,
                signature: None,
            },
        ]),
        (Structure::Multipart, directive) => {
            multipart(&[Part::signed("directive", directive.body())])
        }
        (json, answer) => {
            let body = answer.body();
            let mut response = Response::builder()
                .header(
                    CONTENT_TYPE,
                    format!("{}; charset=utf-8", json.media_type()),
                )
                .body(body.json.to_string());
            if let Some(Ok(value)) = body.signature.as_deref().map(str::parse) {
                response.headers_mut().insert("expo-signature", value);
            }
            response
        }
    };
    response.extensions_mut().insert(served_metric);
    let version = match request.protocol {
        ProtocolVersion::V0 => "0",
        ProtocolVersion::V1 => "1",
    };
    let headers = response.headers_mut();
    headers.insert(
        "expo-protocol-version",
        poem::http::HeaderValue::from_static(version),
    );
    headers.insert(
        "expo-sfv-version",
        poem::http::HeaderValue::from_static("0"),
    );
    headers.insert(
        CACHE_CONTROL,
        poem::http::HeaderValue::from_static("private, max-age=0"),
    );
    headers.insert(VARY, poem::http::HeaderValue::from_static(MANIFEST_VARY));
    // Branch names are restricted to characters that are safe here.
    if let Ok(filters) = poem::http::HeaderValue::from_str(&served.manifest_filters) {
        headers.insert("expo-manifest-filters", filters);
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
    // A value that is not text is refused rather than read as absent: an
    // unreadable protocol version would otherwise be served as protocol 0.
    for name in DEVICE_HEADERS {
        ascii_header(headers, name)?;
    }
    let protocol = match header(headers, "expo-protocol-version") {
        None | Some("0") => ProtocolVersion::V0,
        Some("1") => ProtocolVersion::V1,
        Some(other) => {
            return Err(AppError::Invalid(format!(
                "Unsupported expo-protocol-version {other:?}; this server speaks 0 and 1."
            )));
        }
    };
    let structure = negotiate(header(headers, "accept")).ok_or_else(|| {
        AppError::NotAcceptable(
            "Acceptable responses are multipart/mixed, application/expo+json and application/json."
                .to_owned(),
        )
    })?;
    let from_header_or_query = |name: &str, param: &str| {
        header(headers, name).or_else(|| query.get(param).map(String::as_str))
    };
    let signature = match expected_signature(headers)? {
        None => SignatureRequest::NotRequested,
        Some(None) => SignatureRequest::AnyKey,
        Some(Some(key_id)) => SignatureRequest::Key(key_id),
    };
    let channel = ascii_header(headers, "expo-channel-name")?
        .or_else(|| query.get("channel").map(String::as_str));
    let platform = from_header_or_query("expo-platform", "platform")
        .and_then(Platform::parse)
        .ok_or_else(|| {
            AppError::Invalid("No platform provided. Expected \"ios\" or \"android\".".to_owned())
        })?;
    let runtime_version = from_header_or_query("expo-runtime-version", "runtime-version")
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
        current_update_id: header(headers, "expo-current-update-id").map(str::to_ascii_lowercase),
        embedded_update_id: header(headers, "expo-embedded-update-id").map(str::to_ascii_lowercase),
        signature,
        failed_update_ids: recent_failed_update_ids(headers),
        fatal_error: headers.contains_key("expo-fatal-error"),
        client_id: header(headers, "eas-client-id").map(str::to_owned),
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

/// Frames parts as `multipart/mixed`. The boundary is random, so it cannot
/// occur in the JSON bodies by accident. Built in one buffer: this runs on
/// every update check.
fn multipart(parts: &[Part<'_>]) -> Response {
    let boundary = format!("eus-{}", uuid::Uuid::new_v4().simple());
    let size: usize = parts
        .iter()
        .map(|part| part.json.len() + part.signature.map_or(0, str::len) + 160)
        .sum();
    let mut body = String::with_capacity(size + 64);
    for part in parts {
        body.push_str("--");
        body.push_str(&boundary);
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
    body.push_str(&boundary);
    body.push_str("--\r\n");
    Response::builder()
        .header(
            CONTENT_TYPE,
            format!("multipart/mixed; boundary={boundary}"),
        )
        .body(body)
}

/// `expo-expect-signature`: `None` when the device does not ask for a
/// signature, else the `keyid` it names (if any). The value is an SFV
/// dictionary (`sig, keyid="root", alg="rsa-v1_5-sha256"`); a value that is
/// not one, a `keyid` that is not a string, or an algorithm other than the
/// one Expo defines is refused.
fn expected_signature(headers: &HeaderMap) -> Result<Option<Option<String>>, AppError> {
    let Some(value) = headers.get("expo-expect-signature") else {
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
fn recent_failed_update_ids(headers: &HeaderMap) -> Vec<String> {
    let Some(value) = headers.get("expo-recent-failed-update-ids") else {
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
            let mut headers = HeaderMap::new();
            headers.insert(
                "expo-expect-signature",
                poem::http::HeaderValue::from_str(value).expect("header"),
            );
            expected_signature(&headers)
        };
        assert_eq!(expected_signature(&HeaderMap::new()).ok(), Some(None));
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
