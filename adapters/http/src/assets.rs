//! `GET /api/updates/{project}/assets`: an update's files, as a CDN or a
//! phone expects them. Conditional requests (`ETag`, `If-None-Match` → 304),
//! single byte ranges (`Range` → 206, 416), and the smallest of the zstd,
//! brotli or gzip copies made at publish that the client's `Accept-Encoding`
//! allows, with `Vary`
//! so shared caches keep the encodings apart; and for a client that names
//! the update it runs (`A-IM: bsdiff`), a patch of the launch bundle
//! (`226 IM Used`) when one is ready.

use std::collections::HashMap;

use application::{
    AcceptedEncodings, AppError, AssetAnswer, AssetRequest, AssetTarget, ByteRange, IfNoneMatch,
    PatchRequest, Representation,
};
use domain::id::{ProjectId, UpdateId};
use domain::update::{ContentEncoding, Platform, RuntimeVersion};
use poem::http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, ETAG, IF_NONE_MATCH, IF_RANGE, LOCATION, RANGE, VARY,
};
use poem::http::{HeaderMap, Method, StatusCode};
use poem::{Body, Request, Response, ResponseBuilder};

use crate::device_context::{DeviceContext, query_params};
use crate::metrics::Metrics;
use crate::protocol::error_response;

/// `GET /api/updates/{project}/assets?update=…&asset=…` (and the old
/// server's `?asset=…&runtimeVersion=…&platform=…`).
pub(crate) async fn download(req: &Request, context: &DeviceContext<'_>) -> Response {
    let query = match query_params(req) {
        Ok(query) => query,
        Err(error) => return error_response(error),
    };
    let request = match asset_request(req, context.project, query) {
        Ok(request) => request,
        Err(error) => return error_response(error),
    };
    match context.services.serve.asset(&request).await {
        Ok(answer) => framed(answer, request.head_only, context.metrics),
        Err(error) => error_response(error),
    }
}

/// The answer as HTTP: status, headers, and the body unless it is a HEAD.
fn framed(answer: AssetAnswer, head_only: bool, metrics: &Metrics) -> Response {
    match answer {
        AssetAnswer::NotModified(representation) => with_representation(&representation)
            .status(StatusCode::NOT_MODIFIED)
            .finish(),
        AssetAnswer::Patch {
            etag,
            base_update_id,
            body,
        } => {
            metrics.observe_asset_bytes("bsdiff", if head_only { 0 } else { body.size });
            Response::builder()
                .status(StatusCode::IM_USED)
                .header(IM, "bsdiff")
                .header(EXPO_BASE_UPDATE_ID, base_update_id)
                .header(ETAG, etag)
                // One device's patch: no shared cache may keep it, and no
                // answer to this URL is the same for another base.
                .header(CACHE_CONTROL, "private, no-store")
                .header(VARY, VARY_BY_BASE)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, body.size)
                .body(Body::from_bytes_stream(body.body))
        }
        AssetAnswer::Redirect {
            location,
            immutable,
            varies_by_encoding,
            varies_by_base,
        } => {
            // A URL naming a file forever may be cached as long as the
            // presigned URL lives; the old "latest" form must not be.
            let cache = if immutable {
                "public, max-age=600"
            } else {
                "no-cache"
            };
            let mut response = Response::builder()
                .status(StatusCode::FOUND)
                .header(LOCATION, location)
                .header(CACHE_CONTROL, cache);
            if let Some(vary) = vary(varies_by_encoding, varies_by_base) {
                response = response.header(VARY, vary);
            }
            response.finish()
        }
        AssetAnswer::RangeNotSatisfiable { size } => Response::builder()
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(CONTENT_RANGE, format!("bytes */{size}"))
            .header(CONTENT_TYPE, "application/json")
            .body(r#"{"error":"The range is outside the file."}"#),
        AssetAnswer::Body {
            representation,
            body,
            range,
        } => {
            let mut response = with_representation(&representation).status(StatusCode::OK);
            if let Some((window, size)) = &range {
                response = response.status(StatusCode::PARTIAL_CONTENT).header(
                    CONTENT_RANGE,
                    format!("bytes {}-{}/{size}", window.start, window.end - 1),
                );
            }
            if let Some(encoding) = representation.encoding {
                response = response.header(CONTENT_ENCODING, encoding.token());
            }
            metrics.observe_asset_bytes(
                representation
                    .encoding
                    .map_or("identity", |encoding| encoding.token()),
                // A HEAD sends no body.
                if head_only { 0 } else { body.size },
            );
            response
                .header(CONTENT_TYPE, representation.content_type.as_str())
                .header(CONTENT_LENGTH, body.size)
                .body(Body::from_bytes_stream(body.body))
        }
    }
}

/// The headers of a representation, for 200, 206 and 304 alike: its
/// validator, how long it may be cached, and what it varies on.
fn with_representation(representation: &Representation) -> ResponseBuilder {
    let cache_control = if representation.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=0, must-revalidate"
    };
    let mut response = Response::builder()
        .header(ETAG, representation.etag.as_str())
        .header(CACHE_CONTROL, cache_control)
        .header(ACCEPT_RANGES, "bytes");
    if let Some(vary) = vary(
        representation.varies_by_encoding,
        representation.varies_by_base,
    ) {
        response = response.header(VARY, vary);
    }
    response
}

/// `IM` (RFC 3229): the instance manipulation applied, on a patch answer.
const IM: &str = "im";
/// The update a patch applies to; the client checks it is the one it runs.
const EXPO_BASE_UPDATE_ID: &str = "expo-base-update-id";
/// What a launch bundle's answer depends on with bundle diffing on.
const VARY_BY_BASE: &str = "a-im, expo-current-update-id";

/// The `Vary` header of a file's answer, if it varies at all.
fn vary(by_encoding: bool, by_base: bool) -> Option<&'static str> {
    match (by_encoding, by_base) {
        (false, false) => None,
        (true, false) => Some("accept-encoding"),
        (false, true) => Some(VARY_BY_BASE),
        (true, true) => Some("accept-encoding, a-im, expo-current-update-id"),
    }
}

/// What a client that takes patches sent (`A-IM: bsdiff`, and a running
/// update id), or `None`: a malformed or missing id means no patch, never
/// an error.
fn patch_request(headers: &HeaderMap) -> Option<PatchRequest> {
    let takes_bsdiff = headers
        .get_all("a-im")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| {
            let coding = item.split(';').next().unwrap_or_default().trim();
            coding.eq_ignore_ascii_case("bsdiff")
        });
    if !takes_bsdiff {
        return None;
    }
    let id = |name: &str| {
        let value = headers.get(name)?.to_str().ok()?.trim();
        uuid::Uuid::try_parse(value)
            .ok()
            .map(|_| value.to_ascii_lowercase())
    };
    Some(PatchRequest {
        base_manifest_id: id("expo-current-update-id")?,
        requested_manifest_id: match headers.get("expo-requested-update-id") {
            None => None,
            // Named, but not an update id: not a request this server can
            // match to its update, so no patch.
            Some(_) => Some(id("expo-requested-update-id")?),
        },
    })
}

/// Reads a download request once into typed values. Ids and names that
/// cannot name a file are "not found", as a file that is not there.
fn asset_request(
    req: &Request,
    project: &str,
    mut query: HashMap<String, String>,
) -> Result<AssetRequest, AppError> {
    let not_found = || AppError::NotFound("Asset not found.".to_owned());
    let path = query
        .remove("asset")
        .ok_or_else(|| AppError::Invalid("No asset provided.".to_owned()))?;
    let target = match (
        query.remove("update"),
        query.remove("runtimeVersion"),
        query.remove("platform"),
    ) {
        (Some(update_id), _, _) => AssetTarget::OfUpdate {
            update_id: UpdateId::parse(&update_id).map_err(|_| not_found())?,
            path,
        },
        (None, Some(runtime_version), Some(platform)) => AssetTarget::Latest {
            runtime_version: RuntimeVersion::parse(&runtime_version).map_err(|_| not_found())?,
            platform: Platform::parse(&platform).ok_or_else(not_found)?,
            path,
        },
        _ => {
            return Err(AppError::Invalid(
                "Name the update (update=…) or the runtime version and platform.".to_owned(),
            ));
        }
    };
    let headers = req.headers();
    Ok(AssetRequest {
        project_id: ProjectId::parse(project).map_err(|_| not_found())?,
        target,
        accepted_encodings: accepted_encodings(headers),
        range: headers
            .get(RANGE)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_range),
        if_range: headers.get(IF_RANGE).map(|value| {
            value
                .to_str()
                .map_or_else(|_| String::new(), |v| v.trim().to_owned())
        }),
        if_none_match: if_none_match(headers),
        head_only: req.method() == Method::HEAD,
        patch: patch_request(headers),
    })
}

/// `If-None-Match` (RFC 9110 §13.1.2): the tags listed, for a weak
/// comparison; `*` matches any.
fn if_none_match(headers: &HeaderMap) -> IfNoneMatch {
    let mut tags = Vec::new();
    let listed = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim);
    for tag in listed {
        if tag == "*" {
            return IfNoneMatch::Any;
        }
        tags.push(tag.trim_start_matches("W/").to_owned());
    }
    match tags.is_empty() {
        true => IfNoneMatch::Absent,
        false => IfNoneMatch::Tags(tags),
    }
}

/// The encodings the client accepts (q > 0). `identity` is always fine.
fn accepted_encodings(headers: &HeaderMap) -> AcceptedEncodings {
    let mut accepted = AcceptedEncodings::default();
    let values = headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for item in values {
        let mut pieces = item.split(';');
        let coding = pieces
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let refused = pieces
            .filter_map(crate::protocol::quality_value)
            .any(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0));
        let encoding = match coding.as_str() {
            "zstd" => Some(ContentEncoding::Zstd),
            "br" => Some(ContentEncoding::Brotli),
            "gzip" | "x-gzip" => Some(ContentEncoding::Gzip),
            _ => None,
        };
        if let (Some(encoding), false) = (encoding, refused) {
            accepted.accept(encoding);
        }
    }
    accepted
}

/// The byte range a `Range` header asks for, if it asks for one the server
/// honours: a single `bytes` range. Several ranges, other units or a
/// malformed header get the whole file (RFC 9110 §14.2 lets a server
/// ignore `Range`).
fn parse_range(value: &str) -> Option<ByteRange> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return last.parse().ok().map(ByteRange::Suffix);
    }
    let first: u64 = first.parse().ok()?;
    let last = match last.is_empty() {
        true => None,
        false => Some(last.parse::<u64>().ok().filter(|last| *last >= first)?),
    };
    Some(ByteRange::From { first, last })
}

#[expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_byte_ranges_are_honoured() {
        let from = |first, last| Some(ByteRange::From { first, last });
        assert_eq!(parse_range("bytes=0-9"), from(0, Some(9)));
        assert_eq!(parse_range("bytes=90-"), from(90, None));
        assert_eq!(parse_range("bytes=-10"), Some(ByteRange::Suffix(10)));
        assert_eq!(parse_range(" bytes=-0"), Some(ByteRange::Suffix(0)));
        // Ignored: the whole file is sent.
        assert_eq!(parse_range("bytes=0-1,5-6"), None);
        assert_eq!(parse_range("items=0-1"), None);
        assert_eq!(parse_range("bytes=9-1"), None);
        assert_eq!(parse_range("bytes=a-b"), None);
    }

    #[test]
    fn accept_encoding_honours_q_zero() {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_ENCODING, "gzip, br;q=0, deflate".parse().unwrap());
        let accepted = accepted_encodings(&headers);
        assert!(accepted.accepts(ContentEncoding::Gzip));
        assert!(!accepted.accepts(ContentEncoding::Brotli));
        headers.insert(ACCEPT_ENCODING, "br;q=0.5, gzip;q=1".parse().unwrap());
        let accepted = accepted_encodings(&headers);
        assert!(accepted.accepts(ContentEncoding::Brotli));
        assert!(accepted.accepts(ContentEncoding::Gzip));
        assert!(!accepted.accepts(ContentEncoding::Zstd));
        // What Android clients send since expo-updates 56.0.14.
        headers.insert(ACCEPT_ENCODING, "zstd, br, gzip".parse().unwrap());
        let accepted = accepted_encodings(&headers);
        assert!(ContentEncoding::ALL.iter().all(|e| accepted.accepts(*e)));
    }

    #[test]
    fn a_patch_is_asked_for_only_with_bsdiff_and_a_running_update_id() {
        let base = "0190AAAA-0000-7000-8000-000000000001";
        let mut headers = HeaderMap::new();
        headers.insert("expo-current-update-id", base.parse().unwrap());
        assert_eq!(patch_request(&headers), None);
        headers.insert("a-im", "gzip, BSDIFF".parse().unwrap());
        let asked = patch_request(&headers).unwrap();
        assert_eq!(asked.base_manifest_id, base.to_ascii_lowercase());
        assert_eq!(asked.requested_manifest_id, None);
        headers.insert("expo-requested-update-id", "not-an-id".parse().unwrap());
        assert_eq!(patch_request(&headers), None);
        headers.insert("expo-requested-update-id", base.parse().unwrap());
        assert!(
            patch_request(&headers)
                .unwrap()
                .requested_manifest_id
                .is_some()
        );
        headers.insert("expo-current-update-id", "../../etc".parse().unwrap());
        assert_eq!(patch_request(&headers), None);
        headers.insert("expo-current-update-id", base.parse().unwrap());
        headers.insert("a-im", "vcdiff".parse().unwrap());
        assert_eq!(patch_request(&headers), None);
    }

    #[test]
    fn if_none_match_lists_and_weak_tags_match() {
        let mut headers = HeaderMap::new();
        headers.insert(IF_NONE_MATCH, "\"x\", W/\"abc\"".parse().unwrap());
        assert!(if_none_match(&headers).matches("\"abc\""));
        assert!(!if_none_match(&headers).matches("\"abd\""));
        headers.insert(IF_NONE_MATCH, "*".parse().unwrap());
        assert_eq!(if_none_match(&headers), IfNoneMatch::Any);
        assert_eq!(if_none_match(&HeaderMap::new()), IfNoneMatch::Absent);
    }
}
