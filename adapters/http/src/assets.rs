//! `GET /api/updates/{project}/assets`: an update's files, as a CDN or a
//! phone expects them. Conditional requests (`ETag`, `If-None-Match` → 304),
//! single byte ranges (`Range` → 206, 416), and the brotli or gzip copy made
//! at publish for a client whose `Accept-Encoding` allows it, with `Vary`
//! so shared caches keep the encodings apart.

use std::collections::HashMap;
use std::ops::Range;

use application::{AppError, AssetRequest, LocatedAsset};
use domain::update::ContentEncoding;
use poem::http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, ETAG, IF_NONE_MATCH, IF_RANGE, LOCATION, RANGE, VARY,
};
use poem::http::{HeaderMap, Method, StatusCode};
use poem::web::{Data, Path, Query};
use poem::{Body, Request, Response, ResponseBuilder, handler};

use crate::metrics::AssetServed;
use crate::protocol::error_response;
use application::Services;

/// `GET /api/updates/{project}/assets?update=…&asset=…` (and the old
/// server's `?asset=…&runtimeVersion=…&platform=…`).
#[handler]
pub async fn download(
    req: &Request,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    services: Data<&Services>,
) -> Response {
    let request = match asset_request(query) {
        Ok(request) => request,
        Err(error) => return error_response(error),
    };
    let serve = &services.serve;
    let asset = match serve.locate_asset(&project, &request).await {
        Ok(asset) => asset,
        Err(error) => return error_response(error),
    };
    let headers = req.headers();
    let range = requested_range(headers, &asset);
    // A range is of the uncompressed bytes: a ranged request gets those.
    let encoding = match range {
        Some(_) => None,
        None => {
            serve
                .stored_encoding(&asset, &accepted_encodings(headers))
                .await
        }
    };
    if none_match(headers, &etag(&asset, encoding)) {
        return representation(&asset, encoding)
            .status(StatusCode::NOT_MODIFIED)
            .finish();
    }
    match serve.asset_redirect(&asset, encoding).await {
        Ok(None) => {}
        // The storage answers the range, if any, itself.
        Ok(Some(location)) => {
            if range.is_none() && req.method() == Method::GET {
                serve.record_download(&asset);
            }
            return redirect(&asset, &location);
        }
        Err(error) => return error_response(error),
    }
    let (status, window) = match range {
        None => (StatusCode::OK, None),
        Some(Ok(window)) => (StatusCode::PARTIAL_CONTENT, Some(window)),
        Some(Err(Unsatisfiable)) => {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(CONTENT_RANGE, format!("bytes */{}", asset.size))
                .header(CONTENT_TYPE, "application/json")
                .body(r#"{"error":"The range is outside the file."}"#);
        }
    };
    let (reader, encoding) = match serve.open_asset(&asset, encoding, window.clone()).await {
        Ok(opened) => opened,
        Err(error) => return error_response(error),
    };
    if status == StatusCode::OK && req.method() == Method::GET {
        serve.record_download(&asset);
    }
    let mut response = representation(&asset, encoding);
    if let Some(window) = &window {
        response = response.header(
            CONTENT_RANGE,
            format!("bytes {}-{}/{}", window.start, window.end - 1, asset.size),
        );
    }
    if let Some(encoding) = encoding {
        response = response.header(CONTENT_ENCODING, encoding.token());
    }
    response
        .status(status)
        .header(CONTENT_TYPE, asset.content_type.as_str())
        .header(CONTENT_LENGTH, reader.size)
        .extension(AssetServed {
            encoding: encoding.map_or("identity", |encoding| encoding.token()),
            // A HEAD sends no body.
            bytes: if req.method() == Method::HEAD {
                0
            } else {
                reader.size
            },
        })
        .body(Body::from_bytes_stream(reader.body))
}

/// Sends the client to a presigned storage URL. A URL naming a file forever
/// may be cached as long as the presigned URL lives; the old "latest" form
/// must not be.
fn redirect(asset: &LocatedAsset, location: &str) -> Response {
    let cache = if asset.immutable {
        "public, max-age=600"
    } else {
        "no-cache"
    };
    let mut response = Response::builder()
        .status(StatusCode::FOUND)
        .header(LOCATION, location)
        .header(CACHE_CONTROL, cache);
    if asset.compressible {
        response = response.header(VARY, "accept-encoding");
    }
    response.finish()
}

/// The headers of a representation, for 200, 206 and 304 alike: its
/// validator, how long it may be cached, and what it varies on.
fn representation(asset: &LocatedAsset, encoding: Option<ContentEncoding>) -> ResponseBuilder {
    let mut response = Response::builder()
        .header(ETAG, etag(asset, encoding))
        .header(CACHE_CONTROL, cache_control(asset))
        .header(ACCEPT_RANGES, "bytes");
    if asset.compressible {
        response = response.header(VARY, "accept-encoding");
    }
    response
}

fn asset_request(query: HashMap<String, String>) -> Result<AssetRequest, AppError> {
    let mut query = query;
    let path = query
        .remove("asset")
        .ok_or_else(|| AppError::Invalid("No asset provided.".to_owned()))?;
    match (
        query.remove("update"),
        query.remove("runtimeVersion"),
        query.remove("platform"),
    ) {
        (Some(update_id), _, _) => Ok(AssetRequest::OfUpdate { update_id, path }),
        (None, Some(runtime_version), Some(platform)) => Ok(AssetRequest::Latest {
            runtime_version,
            platform,
            path,
        }),
        _ => Err(AppError::Invalid(
            "Name the update (update=…) or the runtime version and platform.".to_owned(),
        )),
    }
}

fn cache_control(asset: &LocatedAsset) -> &'static str {
    if asset.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=0, must-revalidate"
    }
}

/// A strong validator per representation: the content hash, suffixed for
/// a compressed copy (its bytes differ).
fn etag(asset: &LocatedAsset, encoding: Option<ContentEncoding>) -> String {
    match encoding {
        None => format!("\"{}\"", asset.sha256_hex),
        Some(encoding) => format!("\"{}-{}\"", asset.sha256_hex, encoding.token()),
    }
}

/// `If-None-Match` (RFC 9110 §13.1.2): weak comparison, `*` matches.
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

/// The encodings the client accepts (q > 0). `identity` is always fine.
fn accepted_encodings(headers: &HeaderMap) -> Vec<ContentEncoding> {
    let mut accepted = Vec::new();
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
            "br" => Some(ContentEncoding::Brotli),
            "gzip" | "x-gzip" => Some(ContentEncoding::Gzip),
            _ => None,
        };
        if let (Some(encoding), false) = (encoding, refused) {
            accepted.push(encoding);
        }
    }
    accepted
}

/// A `Range` that cannot be served: 416.
#[derive(Debug, PartialEq, Eq)]
struct Unsatisfiable;

/// The byte window a `Range` header asks for, if it asks for one the server
/// honours: a single `bytes` range. Several ranges, other units, a
/// malformed header or an `If-Range` naming another version get the whole
/// file (RFC 9110 §14.2 lets a server ignore `Range`).
fn requested_range(
    headers: &HeaderMap,
    asset: &LocatedAsset,
) -> Option<Result<Range<u64>, Unsatisfiable>> {
    let value = headers.get(RANGE)?.to_str().ok()?;
    if let Some(validator) = headers.get(IF_RANGE) {
        let identity = etag(asset, None);
        if validator.to_str().ok().map(str::trim) != Some(identity.as_str()) {
            return None;
        }
    }
    parse_range(value, asset.size)
}

fn parse_range(value: &str, size: u64) -> Option<Result<Range<u64>, Unsatisfiable>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let window = if first.is_empty() {
        // The last `n` bytes.
        let n: u64 = last.parse().ok()?;
        if n == 0 {
            return Some(Err(Unsatisfiable));
        }
        size.saturating_sub(n)..size
    } else {
        let start: u64 = first.parse().ok()?;
        let end = if last.is_empty() {
            size
        } else {
            let last: u64 = last.parse().ok()?;
            if last < start {
                return None;
            }
            last.saturating_add(1).min(size)
        };
        start..end
    };
    if window.start >= size || window.is_empty() {
        return Some(Err(Unsatisfiable));
    }
    Some(Ok(window))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok(0..10)));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok(90..100)));
        assert_eq!(parse_range("bytes=-10", 100), Some(Ok(90..100)));
        assert_eq!(parse_range("bytes=-1000", 100), Some(Ok(0..100)));
        assert_eq!(parse_range("bytes=50-1000", 100), Some(Ok(50..100)));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(Unsatisfiable)));
        assert_eq!(parse_range("bytes=-0", 100), Some(Err(Unsatisfiable)));
        // Ignored: the whole file is sent.
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=9-1", 100), None);
        assert_eq!(parse_range("bytes=a-b", 100), None);
    }

    #[test]
    fn accept_encoding_honours_q_zero() {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_ENCODING, "gzip, br;q=0, deflate".parse().unwrap());
        assert_eq!(accepted_encodings(&headers), vec![ContentEncoding::Gzip]);
        headers.insert(ACCEPT_ENCODING, "br;q=0.5, gzip;q=1".parse().unwrap());
        assert_eq!(
            accepted_encodings(&headers),
            vec![ContentEncoding::Brotli, ContentEncoding::Gzip]
        );
    }

    #[test]
    fn if_none_match_lists_and_weak_tags_match() {
        let mut headers = HeaderMap::new();
        headers.insert(IF_NONE_MATCH, "\"x\", W/\"abc\"".parse().unwrap());
        assert!(none_match(&headers, "\"abc\""));
        assert!(!none_match(&headers, "\"abd\""));
        headers.insert(IF_NONE_MATCH, "*".parse().unwrap());
        assert!(none_match(&headers, "\"abc\""));
    }
}
