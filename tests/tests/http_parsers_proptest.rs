//! Property tests of the HTTP adapter's request parsers, through the real
//! server: they are private to `adapter-http` (`assets.rs`: `Range`,
//! `If-Range`, `If-None-Match`, `Accept-Encoding` and the asset query;
//! `protocol.rs`: `Accept` negotiation and the update-check headers), so
//! the nearest public surface is the HTTP route that wraps them.
//!
//! Each test starts one server (SQLite, local disk), publishes the v1
//! fixture, and then sends generated requests to it. Properties: never a
//! server error, answers agree with a small reference model of the RFC 9110
//! rule the parser implements, and what is served is exactly the stored
//! file (or the window of it the `Content-Range` names).
//!
//! Each property runs a bounded number of cases (a few seconds in a debug
//! build); `PROPTEST_CASES` overrides that.
#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

use std::collections::BTreeMap;
use std::ops::Range;

use e2e::protocol::{CLIENT_ACCEPT, PRIVATE_KEY_PATH, RawResponse, parse_signature_header};
use e2e::publish::{Export, PublishForm};
use e2e::reqwest::Url;
use e2e::reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use e2e::{Backend, TestApp, brotli_decoded, gzip_decoded, str_field, zstd_decoded};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{
    Config as ProptestConfig, FileFailurePersistence, TestCaseError, TestRunner,
};

/// `PROPTEST_CASES` if set, else `default`.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        // Relative to the package: failing inputs are kept and replayed
        // first on the next run.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/http_parsers_proptest.txt",
        ))),
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------ the fixture

/// One file the published update serves.
#[derive(Clone)]
struct Served {
    platform: String,
    /// The path in the export (the `asset` query value).
    path: String,
    /// The manifest's URL for it.
    url: String,
    bytes: Vec<u8>,
    /// `"<sha256 hex>"`: the identity representation's `ETag`.
    etag: String,
    compressible: bool,
}

/// Without the bytes: a failing case names the file, not its content.
impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field("platform", &self.platform)
            .field("path", &self.path)
            .field("size", &self.bytes.len())
            .field("etag", &self.etag)
            .finish_non_exhaustive()
    }
}

/// A header value's bytes, shown escaped.
#[derive(Clone)]
struct Raw(Vec<u8>);

impl std::fmt::Debug for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: Option<TestApp>,
    project_id: String,
    /// Per platform: the update id its asset URLs name.
    update_ids: BTreeMap<String, String>,
    files: Vec<Served>,
}

impl Fixture {
    /// A server with the v1 fixture published.
    fn start() -> Fixture {
        Self::start_with(&[])
    }

    /// A server with this extra environment and the v1 fixture published.
    fn start_with(env: &[(&str, &str)]) -> Fixture {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (app, project_id, update_ids, files) = runtime.block_on(async {
            let app = TestApp::spawn_with(Backend::Sqlite, env).await;
            let owner = app.register_user().await;
            let project = app.create_project(&owner.token).await;
            let project_id = str_field(&project, "id");
            let key = app.create_key(&owner.token, &project_id, Some("ci")).await;
            let export = Export::v1();
            app.publish(
                &project_id,
                &str_field(&key, "secret"),
                &PublishForm::new(&export),
            )
            .await;
            let mut update_ids = BTreeMap::new();
            let mut files = Vec::new();
            for platform in ["ios", "android"] {
                let manifest = app.latest_manifest(&project_id, platform, "1.0.0").await;
                let listed = std::iter::once(&manifest["launchAsset"])
                    .chain(manifest["assets"].as_array().unwrap().iter());
                for asset in listed {
                    let url = str_field(asset, "url");
                    let query: BTreeMap<String, String> = Url::parse(&url)
                        .unwrap()
                        .query_pairs()
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect();
                    update_ids.insert(platform.to_owned(), query["update"].clone());
                    let path = query["asset"].clone();
                    let bytes = export.bytes(&path);
                    let content_type = str_field(asset, "contentType");
                    files.push(Served {
                        platform: platform.to_owned(),
                        etag: format!("\"{}\"", e2e::publish::sha256_bytes_hex(&bytes)),
                        path,
                        url,
                        bytes,
                        compressible: content_type == "application/javascript",
                    });
                }
            }
            (app, project_id, update_ids, files)
        });
        Fixture {
            runtime,
            app: Some(app),
            project_id,
            update_ids,
            files,
        }
    }

    fn app(&self) -> &TestApp {
        self.app.as_ref().unwrap()
    }

    /// `GET url` with these headers (values as raw bytes), fully read.
    fn get(&self, url: &str, headers: &[(&str, &[u8])]) -> RawResponse {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        let app = self.app();
        self.runtime
            .block_on(app.fetch_request(app.client.get(url).headers(map)))
    }

    fn files_where(&self, compressible: bool) -> Vec<Served> {
        self.files
            .iter()
            .filter(|file| file.compressible == compressible)
            .cloned()
            .collect()
    }

    /// Runs `property` on `cases` generated values; panics with the
    /// smallest failing input.
    fn check<S: Strategy>(
        &self,
        cases: u32,
        strategy: S,
        property: impl Fn(&Fixture, S::Value) -> Result<(), TestCaseError>,
    ) {
        let mut runner = TestRunner::new(config(cases));
        if let Err(failure) = runner.run(&strategy, |value| property(self, value)) {
            panic!("{failure}");
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // The server's task lives in this runtime: stop it there.
        if let Some(app) = self.app.take() {
            self.runtime.block_on(async move { drop(app) });
        }
    }
}

fn header(response: &RawResponse, name: &str) -> Option<String> {
    response
        .headers
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}

/// A header value a client can send: no control characters (tab aside).
fn sendable(value: &str) -> bool {
    HeaderValue::from_str(value).is_ok()
}

/// Text that a hostile client might put anywhere (header-safe).
fn junk() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[a-zA-Z0-9=;.*/+-]{1,5}",
        1 => Just(" ".to_owned()),
        1 => Just("\t".to_owned()),
        1 => Just("..".to_owned()),
        1 => Just("%00".to_owned()),
        1 => Just("é".to_owned()),
        1 => Just("\u{202e}".to_owned()),
        1 => Just("٣".to_owned()),
        1 => Just("\\".to_owned()),
    ];
    vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

// ------------------------------------------------------------------ Range

/// A byte position as a client may write it: in range, at the edges,
/// huge, overflowing `u64`, or malformed.
fn position(size: u64) -> impl Strategy<Value = String> {
    prop_oneof![
        20 => (0..=size + 2).prop_map(|n| n.to_string()),
        1 => Just(size.saturating_sub(1).to_string()),
        1 => Just(size.to_string()),
        1 => Just(u64::MAX.to_string()),
        1 => Just("99999999999999999999999".to_owned()),
        1 => Just("-1".to_owned()),
        1 => Just("+5".to_owned()),
        1 => Just(" 3".to_owned()),
        1 => Just("0x10".to_owned()),
        1 => Just("١".to_owned()),
        1 => Just(String::new()),
    ]
}

fn range_spec(size: u64) -> impl Strategy<Value = String> {
    prop_oneof![
        (position(size), position(size)).prop_map(|(a, b)| format!("{a}-{b}")),
        position(size).prop_map(|a| format!("{a}-")),
        position(size).prop_map(|n| format!("-{n}")),
        junk(),
    ]
}

/// A `Range` header: usually `bytes=<spec>`, sometimes several ranges,
/// another unit or casing, stray whitespace, or junk.
fn range_header(size: u64) -> impl Strategy<Value = String> {
    let unit = prop_oneof![
        8 => Just("bytes="),
        1 => Just("Bytes="),
        1 => Just("items="),
        1 => Just("bytes ="),
        1 => Just(" bytes="),
        1 => Just(""),
    ];
    let number = || prop_oneof![4 => 0..=size + 2, 1 => Just(u64::MAX)];
    prop_oneof![
        // The forms clients send.
        3 => (number(), number()).prop_map(|(a, b)| format!("bytes={a}-{b}")),
        1 => number().prop_map(|a| format!("bytes={a}-")),
        1 => number().prop_map(|n| format!("bytes=-{n}")),
        // Anything else.
        4 => (unit, range_spec(size)).prop_map(|(unit, spec)| format!("{unit}{spec}")),
        1 => (range_spec(size), range_spec(size)).prop_map(|(a, b)| format!("bytes={a},{b}")),
        1 => junk(),
    ]
}

/// What RFC 9110 §14.1.2 says a single, well-formed `bytes` range asks of
/// a file of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RangeAnswer {
    Whole,
    Partial(Range<u64>),
    Unsatisfiable,
}

/// `Some` when `header` is exactly `bytes=<first>-<last>`, `bytes=<first>-`
/// or `bytes=-<suffix>` with plain decimal numbers that fit a `u64`: the
/// forms every client sends, which the server must honour.
fn strict_range(header: &str, size: u64) -> Option<RangeAnswer> {
    let spec = header.strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    let number = |text: &str| -> Option<Option<u64>> {
        if text.is_empty() {
            Some(None)
        } else if text.bytes().all(|b| b.is_ascii_digit()) {
            text.parse().ok().map(Some)
        } else {
            None
        }
    };
    let (first, last) = (number(first)?, number(last)?);
    Some(match (first, last) {
        (None, None) => return None,
        // An invalid range-spec: the field is ignored.
        (Some(first), Some(last)) if last < first => RangeAnswer::Whole,
        (Some(first), _) if first >= size => RangeAnswer::Unsatisfiable,
        (Some(first), Some(last)) => RangeAnswer::Partial(first..last.saturating_add(1).min(size)),
        (Some(first), None) => RangeAnswer::Partial(first..size),
        (None, Some(0)) => RangeAnswer::Unsatisfiable,
        (None, Some(suffix)) => RangeAnswer::Partial(size.saturating_sub(suffix)..size),
    })
}

/// `bytes a-b/size` → `a..b+1`.
fn content_range(value: &str, size: u64) -> Option<Range<u64>> {
    let rest = value.strip_prefix("bytes ")?;
    let (window, total) = rest.split_once('/')?;
    if total != size.to_string() {
        return None;
    }
    let (a, b) = window.split_once('-')?;
    let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b && b < size).then(|| a..b + 1)
}

/// `If-Range` as sent alongside a range.
#[derive(Debug, Clone)]
enum IfRange {
    Absent,
    Current,
    Weak,
    Other(String),
}

#[test]
fn asset_ranges_follow_rfc_9110() {
    let fixture = Fixture::start();
    let images = fixture.files_where(false);
    let bundles = fixture.files_where(true);
    let file = prop_oneof![
        4 => proptest::sample::select(images),
        1 => proptest::sample::select(bundles),
    ];
    let case = file.prop_flat_map(|file| {
        let size = file.bytes.len() as u64;
        let if_range = prop_oneof![
            6 => Just(IfRange::Absent),
            2 => Just(IfRange::Current),
            1 => Just(IfRange::Weak),
            1 => junk().prop_map(IfRange::Other),
        ];
        (Just(file), range_header(size), if_range)
    });
    fixture.check(192, case, |fixture, (file, range, if_range)| {
        prop_assume!(sendable(&range));
        let size = file.bytes.len() as u64;
        let if_range_value = match &if_range {
            IfRange::Absent => None,
            IfRange::Current => Some(file.etag.clone()),
            IfRange::Weak => Some(format!("W/{}", file.etag)),
            IfRange::Other(other) => Some(other.clone()),
        };
        if let Some(value) = &if_range_value {
            prop_assume!(sendable(value));
        }
        let mut headers: Vec<(&str, &[u8])> = vec![("range", range.as_bytes())];
        if let Some(value) = &if_range_value {
            headers.push(("if-range", value.as_bytes()));
        }
        let response = fixture.get(&file.url, &headers);
        // An If-Range that is not the current strong validator: the whole
        // file (RFC 9110 §13.1.5: weak validators never match).
        let validator_matches = match &if_range_value {
            None => true,
            Some(value) => value.trim() == file.etag,
        };
        let expected = strict_range(&range, size).map(|answer| {
            if validator_matches {
                answer
            } else {
                RangeAnswer::Whole
            }
        });
        let answer = match response.status {
            200 => {
                prop_assert_eq!(&response.body, &file.bytes, "200 must be the whole file");
                prop_assert_eq!(header(&response, "content-range"), None);
                RangeAnswer::Whole
            }
            206 => {
                let value = header(&response, "content-range").unwrap_or_default();
                let window = content_range(&value, size);
                prop_assert!(
                    window.is_some(),
                    "206 with Content-Range {:?} for {:?}",
                    value,
                    range
                );
                let window = window.unwrap();
                let slice = &file.bytes[window.start as usize..window.end as usize];
                prop_assert_eq!(&response.body[..], slice);
                prop_assert_eq!(
                    header(&response, "content-length"),
                    Some((window.end - window.start).to_string())
                );
                prop_assert_eq!(header(&response, "content-encoding"), None);
                RangeAnswer::Partial(window)
            }
            416 => {
                prop_assert_eq!(
                    header(&response, "content-range"),
                    Some(format!("bytes */{size}"))
                );
                RangeAnswer::Unsatisfiable
            }
            other => {
                return Err(TestCaseError::fail(format!(
                    "Range {range:?} on {}: HTTP {other} {}",
                    file.path,
                    response.text()
                )));
            }
        };
        match expected {
            // A form every client sends: honoured exactly.
            Some(expected) => prop_assert_eq!(
                answer,
                expected,
                "Range {:?} on a file of {} bytes",
                range,
                size
            ),
            // Anything else may be ignored (RFC 9110 §14.2), but a range
            // that is honoured must be one the header can mean.
            None => {
                if !validator_matches {
                    prop_assert_eq!(answer, RangeAnswer::Whole, "If-Range {:?}", if_range_value);
                }
            }
        }
        Ok(())
    });
}

// ------------------------------------------------------------------ If-None-Match

/// One entity tag of an `If-None-Match` list.
fn entity_tag(etag: String) -> impl Strategy<Value = String> {
    let opaque = etag.trim_matches('"').to_owned();
    prop_oneof![
        2 => Just(etag.clone()),
        2 => Just(format!("W/{etag}")),
        1 => Just(format!("\"{opaque}-br\"")),
        1 => Just(format!("\"{opaque}-gzip\"")),
        1 => Just(format!("W/\"{opaque}-br\"")),
        1 => Just("*".to_owned()),
        1 => Just(format!("\"{}\"", opaque.to_uppercase())),
        1 => Just(opaque.clone()),
        1 => Just(format!("\"{opaque}")),
        1 => Just("\"other\"".to_owned()),
        1 => Just("W/\"\"".to_owned()),
        2 => junk(),
    ]
}

/// RFC 9110 §13.1.2: `*` matches; otherwise a listed entity tag matches
/// when its opaque tag equals the current one (weak comparison: a `W/`
/// prefix is ignored). The server also ignores a repeated `W/` prefix,
/// which no valid entity tag has; that leniency is modelled here.
fn none_match_reference(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|tag| {
        let mut tag = tag;
        while let Some(rest) = tag.strip_prefix("W/") {
            tag = rest;
        }
        tag == "*" || tag == etag
    })
}

#[test]
fn if_none_match_uses_weak_comparison() {
    let fixture = Fixture::start();
    let case = proptest::sample::select(fixture.files.clone()).prop_flat_map(|file| {
        let tags = vec(entity_tag(file.etag.clone()), 0..4);
        let separator = prop_oneof![Just(","), Just(", "), Just(" ,\t")];
        let encoding = prop_oneof![Just(None), Just(Some("br")), Just(Some("gzip"))];
        (Just(file), tags, separator, encoding)
    });
    fixture.check(128, case, |fixture, (file, tags, separator, encoding)| {
        let value = tags.join(separator);
        prop_assume!(sendable(&value));
        let mut headers: Vec<(&str, &[u8])> = vec![("if-none-match", value.as_bytes())];
        if let Some(encoding) = encoding {
            headers.push(("accept-encoding", encoding.as_bytes()));
        }
        let response = fixture.get(&file.url, &headers);
        // The representation this request selects, and its validator.
        let current = match (file.compressible, encoding) {
            (true, Some(encoding)) => format!("\"{}-{encoding}\"", file.etag.trim_matches('"')),
            _ => file.etag.clone(),
        };
        // A value that is not visible ASCII is not read at all (the server
        // reads headers with `HeaderValue::to_str`): no 304.
        let expected =
            if readable(value.as_bytes()).is_some() && none_match_reference(&value, &current) {
                304
            } else {
                200
            };
        prop_assert_eq!(
            response.status,
            expected,
            "If-None-Match {:?} for {}",
            value,
            current
        );
        prop_assert_eq!(header(&response, "etag"), Some(current));
        if response.status == 304 {
            prop_assert!(response.body.is_empty());
        }
        Ok(())
    });
}

// ------------------------------------------------------------------ Accept-Encoding

/// One `Accept-Encoding` member: a coding (any case), maybe a weight.
fn coding_item() -> impl Strategy<Value = String> {
    let coding = prop_oneof![
        3 => Just("br"),
        3 => Just("gzip"),
        1 => Just("x-gzip"),
        1 => Just("BR"),
        1 => Just("GZip"),
        1 => Just("deflate"),
        1 => Just("identity"),
        1 => Just("*"),
        1 => Just("zstd"),
    ];
    let weight = prop_oneof![
        4 => Just(""),
        2 => Just(";q=0"),
        1 => Just(";q=0.0"),
        1 => Just(";q=0.000"),
        1 => Just(";q=1"),
        1 => Just(";q=1.000"),
        1 => Just(";q=0.5"),
        1 => Just(";q=0.001"),
        1 => Just(" ; q=0"),
        // RFC 9110 §12.4.2: the weight is a parameter "named "q"
        // (case-insensitive)".
        2 => Just(";Q=0"),
        1 => Just(";Q=0.8"),
    ];
    prop_oneof![
        8 => (coding, weight).prop_map(|(c, w)| format!("{c}{w}")),
        1 => junk(),
    ]
}

/// The weight of one member per RFC 9110 §12.4.2 (`q` in any case, valid
/// qvalue syntax), or `None` when its weight is not valid syntax.
fn weight(parameters: &[&str]) -> Option<f32> {
    let mut q = 1.0;
    for parameter in parameters {
        let parameter = parameter.trim();
        let (name, value) = parameter.split_once('=')?;
        if !name.eq_ignore_ascii_case("q") {
            return None;
        }
        let valid = value == "1"
            || value
                .strip_prefix("1.")
                .is_some_and(|d| d.len() <= 3 && d.bytes().all(|b| b == b'0'))
            || value == "0"
            || value
                .strip_prefix("0.")
                .is_some_and(|d| d.len() <= 3 && d.bytes().all(|b| b.is_ascii_digit()));
        if !valid {
            return None;
        }
        q = value.parse().ok()?;
    }
    Some(q)
}

/// Each listed coding (lowercase, `x-gzip` read as `gzip`) with its weight;
/// `None` when a member is not valid syntax.
fn accept_encoding_members(header: &str) -> Option<Vec<(String, f32)>> {
    let mut members = Vec::new();
    for item in header.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let mut pieces = item.split(';');
        let coding = pieces.next()?.trim().to_ascii_lowercase();
        if coding.is_empty()
            || !coding
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"*-".contains(&b))
        {
            return None;
        }
        let coding = if coding == "x-gzip" {
            "gzip".to_owned()
        } else {
            coding
        };
        let parameters: Vec<&str> = pieces.collect();
        members.push((coding, weight(&parameters)?));
    }
    Some(members)
}

/// Whether `coding` is acceptable (RFC 9110 §12.5.3): listed with q > 0,
/// or not listed and `*` has q > 0. `None` when the header lists the
/// coding more than once (ambiguous).
fn acceptable(members: &[(String, f32)], coding: &str) -> Option<bool> {
    let listed: Vec<f32> = members
        .iter()
        .filter(|(c, _)| c == coding)
        .map(|(_, q)| *q)
        .collect();
    match listed.as_slice() {
        [q] => Some(*q > 0.0),
        [] => Some(members.iter().any(|(c, q)| c == "*" && *q > 0.0)),
        _ => None,
    }
}

#[test]
fn accept_encoding_honours_weights() {
    let fixture = Fixture::start();
    let file = prop_oneof![
        3 => proptest::sample::select(fixture.files_where(true)),
        1 => proptest::sample::select(fixture.files_where(false)),
    ];
    let case = (
        file,
        vec(coding_item(), 0..4),
        prop_oneof![Just(","), Just(", ")],
    );
    fixture.check(64, case, |fixture, (file, items, separator)| {
        let value = items.join(separator);
        prop_assume!(sendable(&value));
        let response = fixture.get(&file.url, &[("accept-encoding", value.as_bytes())]);
        prop_assert_eq!(response.status, 200);
        let encoding = header(&response, "content-encoding");
        let opaque = file.etag.trim_matches('"');
        let (body, etag) = match encoding.as_deref() {
            None => (response.body.clone(), file.etag.clone()),
            Some("br") => (brotli_decoded(&response.body), format!("\"{opaque}-br\"")),
            Some("gzip") => (gzip_decoded(&response.body), format!("\"{opaque}-gzip\"")),
            Some("zstd") => (zstd_decoded(&response.body), format!("\"{opaque}-zstd\"")),
            Some(other) => return Err(TestCaseError::fail(format!("Content-Encoding {other}"))),
        };
        prop_assert!(body == file.bytes, "the decoded body is not the file");
        prop_assert_eq!(header(&response, "etag"), Some(etag));
        if !file.compressible {
            prop_assert_eq!(encoding, None, "{} is not compressible", file.path);
            prop_assert_eq!(header(&response, "vary"), None);
            return Ok(());
        }
        // The compressible files are the launch bundles, which (bundle
        // diffing being on) also vary by the update the client runs.
        prop_assert_eq!(
            header(&response, "vary"),
            Some("accept-encoding, a-im, expo-current-update-id".to_owned())
        );
        let Some(members) = accept_encoding_members(&value) else {
            // Not valid syntax: any encoding may be chosen; it decoded.
            return Ok(());
        };
        // Never a coding the client refused.
        if let Some(coding) = &encoding {
            prop_assert!(
                acceptable(&members, coding) != Some(false),
                "sent {} to a client that refused it: Accept-Encoding {:?}",
                coding,
                value
            );
        }
        // The smallest stored copy among the codings the client names, else
        // none (`*` is not acted upon; identity is always acceptable here).
        let named = |coding: &str| {
            members.iter().any(|(c, _)| c == coding) && acceptable(&members, coding) == Some(true)
        };
        let ambiguous = ["zstd", "br", "gzip"]
            .iter()
            .any(|c| acceptable(&members, c).is_none());
        if !ambiguous {
            let size_of = |coding: &str| {
                fixture
                    .get(&file.url, &[("accept-encoding", coding.as_bytes())])
                    .body
                    .len()
            };
            let expected = ["zstd", "br", "gzip"]
                .into_iter()
                .filter(|c| named(c))
                .min_by_key(|c| size_of(c));
            prop_assert_eq!(encoding.as_deref(), expected, "Accept-Encoding {:?}", value);
        }
        Ok(())
    });
}

// ------------------------------------------------------------------ the asset query

/// Values for the asset route's query: real ones, near misses, hostile.
fn asset_path_value(paths: Vec<String>) -> impl Strategy<Value = String> {
    let real = proptest::sample::select(paths);
    prop_oneof![
        4 => real.clone(),
        1 => real.clone().prop_map(|p| p.replace('/', "\\")),
        1 => real.clone().prop_map(|p| format!("./{p}")),
        1 => real.clone().prop_map(|p| format!("/{p}")),
        1 => real.clone().prop_map(|p| format!("assets/../{p}")),
        1 => real.clone().prop_map(|p| p.replace('/', "%2F")),
        1 => real.prop_map(|p| format!("{p}\0")),
        1 => Just("../../../../etc/passwd".to_owned()),
        1 => Just("..\\..\\ota.db".to_owned()),
        1 => Just("/etc/passwd".to_owned()),
        1 => Just("ota.db".to_owned()),
        2 => vec(any::<char>(), 0..20).prop_map(String::from_iter),
        1 => junk(),
    ]
}

#[derive(Debug, Clone)]
struct AssetQuery {
    project: String,
    asset: Option<String>,
    update: Option<String>,
    runtime_version: Option<String>,
    platform: Option<String>,
}

#[test]
fn asset_queries_serve_only_published_files() {
    let fixture = Fixture::start();
    let paths: Vec<String> = fixture.files.iter().map(|f| f.path.clone()).collect();
    let update_ids: Vec<String> = fixture.update_ids.values().cloned().collect();
    let project = prop_oneof![
        6 => Just(fixture.project_id.clone()),
        1 => Just(fixture.project_id.to_uppercase()),
        1 => Just("00000000-0000-0000-0000-000000000000".to_owned()),
        1 => vec(any::<char>(), 0..40).prop_map(String::from_iter),
        1 => junk(),
    ];
    let update = prop_oneof![
        3 => proptest::sample::select(update_ids).prop_map(Some),
        1 => Just(None),
        1 => Just(Some("0196d1c2-0000-7000-8000-000000000001".to_owned())),
        1 => junk().prop_map(Some),
    ];
    let runtime_version = prop_oneof![
        3 => Just(Some("1.0.0".to_owned())),
        1 => Just(None),
        1 => Just(Some("2.0.0".to_owned())),
        1 => vec(any::<char>(), 0..10).prop_map(|c| Some(String::from_iter(c))),
    ];
    let platform = prop_oneof![
        2 => Just(Some("ios".to_owned())),
        2 => Just(Some("android".to_owned())),
        1 => Just(None),
        1 => Just(Some("IOS".to_owned())),
        1 => junk().prop_map(Some),
    ];
    let asset = prop_oneof![
        8 => asset_path_value(paths).prop_map(Some),
        1 => Just(None),
    ];
    let case = (project, asset, update, runtime_version, platform).prop_map(
        |(project, asset, update, runtime_version, platform)| AssetQuery {
            project,
            asset,
            update,
            runtime_version,
            platform,
        },
    );
    fixture.check(192, case, |fixture, query| {
        // Segments a URL normalises away (or an empty one) name no route.
        prop_assume!(!["", ".", ".."].contains(&query.project.as_str()));
        let mut url = Url::parse(&fixture.app().address).unwrap();
        url.path_segments_mut()
            .unwrap()
            .extend(["api", "updates", &query.project, "assets"]);
        {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in [
                ("asset", &query.asset),
                ("update", &query.update),
                ("runtimeVersion", &query.runtime_version),
                ("platform", &query.platform),
            ] {
                if let Some(value) = value {
                    pairs.append_pair(name, value);
                }
            }
        }
        let response = fixture.get(url.as_str(), &[]);
        // The reference: which published file, if any, the query names.
        let served_from = |platform: &str, path: &str| {
            fixture
                .files
                .iter()
                .find(|f| f.platform == platform && f.path == path.replace('\\', "/"))
        };
        let project_ok = query.project == fixture.project_id;
        let expected: Result<Option<&Served>, u16> = match (&query.asset, &query.update) {
            (None, _) => Err(400),
            (Some(path), Some(update)) => Ok(fixture
                .update_ids
                .iter()
                .find(|(_, id)| *id == update)
                .and_then(|(platform, _)| served_from(platform, path))
                .filter(|_| project_ok)),
            (Some(path), None) => match (&query.runtime_version, &query.platform) {
                (Some(version), Some(platform)) => {
                    Ok(served_from(platform, path).filter(|_| project_ok && version == "1.0.0"))
                }
                _ => Err(400),
            },
        };
        match expected {
            Err(status) => {
                prop_assert_eq!(response.status, status, "{:?}: {}", query, response.text())
            }
            Ok(None) => prop_assert_eq!(response.status, 404, "{:?}: {}", query, response.text()),
            Ok(Some(file)) => {
                prop_assert_eq!(response.status, 200, "{:?}: {}", query, response.text());
                prop_assert!(
                    response.body == file.bytes,
                    "{:?} served other bytes than {}",
                    query,
                    file.path
                );
            }
        }
        Ok(())
    });
}

// ------------------------------------------------------------------ update-check headers

/// The response structure RFC 9110 §12.5.1 picks from `accept` among the
/// server's three (multipart preferred on ties): `Ok(None)` for 406,
/// `Err(())` when a weight is not valid syntax (then only "no server error"
/// is checked).
fn negotiation_reference(accept: Option<&str>) -> Result<Option<&'static str>, ()> {
    const STRUCTURES: [&str; 3] = [
        "multipart/mixed",
        "application/expo+json",
        "application/json",
    ];
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(Some(STRUCTURES[0]));
    };
    let mut ranges = Vec::new();
    for range in accept.split(',') {
        let mut pieces = range.split(';');
        let media = pieces
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let parameters: Vec<&str> = pieces.collect();
        let q = weight(&parameters).ok_or(())?;
        ranges.push((media, q));
    }
    let quality = |structure: &str| {
        let main = structure.split('/').next().unwrap_or_default();
        ranges
            .iter()
            .filter_map(|(range, q)| {
                let specificity = if range == structure {
                    3
                } else if range.strip_suffix("/*") == Some(main) {
                    2
                } else if range == "*/*" {
                    1
                } else {
                    return None;
                };
                Some((specificity, *q))
            })
            .max_by(|a, b| a.0.cmp(&b.0))
            .map_or(0.0, |(_, q)| q)
    };
    let mut best: Option<(&str, f32)> = None;
    for structure in STRUCTURES {
        let q = quality(structure);
        if q > 0.0 && best.is_none_or(|(_, best_q)| q > best_q) {
            best = Some((structure, q));
        }
    }
    Ok(best.map(|(structure, _)| structure))
}

/// `Expo-Recent-Failed-Update-IDs`: an SFV list of strings, usually of
/// real update ids (any case), sometimes of other items or malformed.
fn failed_update_ids(ids: Vec<&'static str>) -> impl Strategy<Value = String> {
    let item = prop_oneof![
        4 => proptest::sample::select(ids.clone()).prop_map(|id| format!("\"{id}\"")),
        1 => proptest::sample::select(ids).prop_map(|id| format!("\"{}\"", id.to_uppercase())),
        1 => Just("\"not-an-id\"".to_owned()),
        1 => Just("token".to_owned()),
        1 => Just("42".to_owned()),
        1 => Just("(\"a\" \"b\")".to_owned()),
        1 => Just("\"x\";param=1".to_owned()),
        1 => junk(),
    ];
    vec(item, 0..20).prop_map(|items| items.join(", "))
}

fn accept_value() -> impl Strategy<Value = String> {
    let media = prop_oneof![
        Just("multipart/mixed"),
        Just("application/expo+json"),
        Just("application/json"),
        Just("Application/JSON"),
        Just("multipart/*"),
        Just("application/*"),
        Just("*/*"),
        Just("text/html"),
    ];
    let parameter = prop_oneof![
        4 => Just(""),
        1 => Just(";q=0"),
        1 => Just(";q=0.5"),
        1 => Just(";q=1"),
        // Case-insensitive, as above.
        2 => Just(";Q=0"),
        1 => Just("; q=0.2"),
    ];
    prop_oneof![
        1 => Just(CLIENT_ACCEPT.to_owned()),
        6 => vec((media, parameter).prop_map(|(m, p)| format!("{m}{p}")), 0..4).prop_map(|v| v.join(", ")),
        1 => junk(),
    ]
}

/// The update-check headers the server refuses (400) when they are not
/// visible ASCII. (`eas-client-id` is not one: an unreadable client id is
/// read as none, never an error.)
const DEVICE_HEADERS: [&str; 6] = [
    "expo-protocol-version",
    "expo-platform",
    "expo-runtime-version",
    "expo-channel-name",
    "expo-current-update-id",
    "expo-embedded-update-id",
];

/// A header value as the server reads it: only visible ASCII (and tabs)
/// is text (`HeaderValue::to_str`); anything else is as if absent.
fn readable(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|b| *b == b'\t' || (32..127).contains(b))
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}

#[derive(Debug, Clone)]
struct Check {
    headers: Vec<(&'static str, Raw)>,
    query: Vec<(&'static str, String)>,
}

#[test]
fn update_checks_never_fail_on_the_server() {
    let fixture = Fixture::start();
    let text = |real: Vec<&'static str>| {
        prop_oneof![
            8 => proptest::sample::select(real).prop_map(str::to_owned),
            1 => junk(),
            1 => vec(any::<char>(), 0..12).prop_map(String::from_iter),
        ]
    };
    let ids: Vec<&'static str> = fixture
        .update_ids
        .values()
        .map(|id| &*id.clone().leak())
        .collect();
    let header_value = |strategy: BoxedStrategy<String>| {
        prop_oneof![
            6 => strategy.prop_map(|s| Some(Raw(s.into_bytes()))),
            3 => Just(None),
            // obs-text: bytes that are not ASCII (a Latin-1 "é").
            1 => Just(Some(Raw(b"caf\xe9".to_vec()))),
        ]
    };
    let headers = (
        header_value(text(vec!["ios", "android", " ios "]).boxed()),
        header_value(text(vec!["1.0.0", "2.0.0"]).boxed()),
        header_value(text(vec!["0", "1", " 1 ", "2"]).boxed()),
        header_value(accept_value().boxed()),
        header_value(text(vec!["main", "production", "feature/x"]).boxed()),
        header_value(text(vec!["device-1", "0196d1c2-0000-7000-8000-000000000009"]).boxed()),
        header_value(text(ids.clone()).boxed()),
        header_value(text(ids.clone()).boxed()),
        header_value(failed_update_ids(ids).boxed()),
        header_value(text(vec!["Error: boom", ""]).boxed()),
        // Rarely: this server has no signing key, so it answers 400.
        prop_oneof![
            8 => Just(None),
            1 => Just(Some(Raw(e2e::protocol::EXPECT_SIGNATURE.as_bytes().to_vec()))),
        ],
    )
        .prop_map(|values| {
            let (
                platform,
                version,
                protocol,
                accept,
                channel,
                client,
                current,
                embedded,
                failed,
                fatal,
                signature,
            ) = values;
            let names = [
                ("expo-platform", platform),
                ("expo-runtime-version", version),
                ("expo-protocol-version", protocol),
                ("accept", accept),
                ("expo-channel-name", channel),
                ("eas-client-id", client),
                ("expo-current-update-id", current),
                ("expo-embedded-update-id", embedded),
                ("expo-recent-failed-update-ids", failed),
                ("expo-fatal-error", fatal),
                ("expo-expect-signature", signature),
            ];
            names
                .into_iter()
                .filter_map(|(name, value)| value.map(|v| (name, v)))
                .collect::<Vec<_>>()
        });
    let query = vec(
        (
            proptest::sample::select(vec![
                "platform",
                "runtime-version",
                "runtimeVersion",
                "channel",
            ]),
            text(vec!["ios", "1.0.0", "main"]),
        ),
        0..3,
    );
    let case = (headers, query).prop_map(|(headers, query)| Check { headers, query });
    fixture.check(192, case, |fixture, check| {
        for (_, value) in &check.headers {
            prop_assume!(HeaderValue::from_bytes(&value.0).is_ok());
        }
        let mut url = Url::parse(
            &fixture
                .app()
                .url(&TestApp::manifest_path(&fixture.project_id)),
        )
        .unwrap();
        for (name, value) in &check.query {
            url.query_pairs_mut().append_pair(name, value);
        }
        let headers: Vec<(&str, &[u8])> = check
            .headers
            .iter()
            .map(|(n, v)| (*n, v.0.as_slice()))
            .collect();
        let response = fixture.get(url.as_str(), &headers);
        prop_assert!(
            [200, 204, 400, 404, 406].contains(&response.status),
            "HTTP {} for {:?}: {}",
            response.status,
            check,
            response.text()
        );
        let sent = |name: &str| {
            check
                .headers
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| readable(&v.0))
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        // First, a device header that is not text is refused; then the
        // protocol version is read.
        let unreadable = check
            .headers
            .iter()
            .any(|(name, value)| DEVICE_HEADERS.contains(name) && readable(&value.0).is_none());
        if unreadable {
            prop_assert_eq!(response.status, 400, "{:?}", check);
            return Ok(());
        }
        if sent("expo-protocol-version").is_some_and(|v| v != "0" && v != "1") {
            prop_assert_eq!(response.status, 400, "{:?}", check);
            return Ok(());
        }
        let accept = sent("accept");
        if let Ok(chosen) = negotiation_reference(accept) {
            match chosen {
                None => prop_assert_eq!(response.status, 406, "Accept {:?}", accept),
                Some(media_type) => {
                    prop_assert_ne!(response.status, 406, "Accept {:?}", accept);
                    if response.status == 200 {
                        let content_type = header(&response, "content-type").unwrap_or_default();
                        prop_assert!(
                            content_type.starts_with(media_type),
                            "Accept {:?} answered with {}",
                            accept,
                            content_type
                        );
                    }
                }
            }
        }
        Ok(())
    });
}

// ------------------------------------------------------------------ expo-expect-signature

/// The key id the server signs with in [`expect_signature_is_an_sfv_dictionary`].
const SERVER_KEY_ID: &str = "main";

/// The value of one member of an `expo-expect-signature` dictionary
/// (RFC 8941 §3.2), as generated.
#[derive(Debug, Clone)]
enum SfvValue {
    /// A bare key: Boolean true.
    True,
    String(String),
    Token(String),
    Integer(i64),
    Boolean(bool),
    InnerList,
}

impl SfvValue {
    /// `=value`, as serialised after the key.
    fn serialise(&self) -> String {
        match self {
            Self::True => String::new(),
            Self::String(text) => {
                format!("=\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
            }
            Self::Token(token) => format!("={token}"),
            Self::Integer(n) => format!("={n}"),
            Self::Boolean(b) => format!("=?{}", u8::from(*b)),
            Self::InnerList => "=(\"main\" x)".to_owned(),
        }
    }

    /// The text of a string or token, what the server accepts as a name.
    fn text(&self) -> Option<&str> {
        match self {
            Self::String(text) | Self::Token(text) => Some(text),
            _ => None,
        }
    }
}

fn sfv_member() -> impl Strategy<Value = (String, SfvValue, String)> {
    let key = prop_oneof![
        3 => Just("sig"),
        4 => Just("keyid"),
        3 => Just("alg"),
        1 => Just("foo"),
        1 => Just("*x"),
    ];
    let name = prop_oneof![
        4 => Just(SERVER_KEY_ID.to_owned()),
        2 => Just("rsa-v1_5-sha256".to_owned()),
        1 => Just("other".to_owned()),
        1 => Just(String::new()),
        1 => Just("ma\"in".to_owned()),
        1 => "[ -~]{0,8}",
    ];
    let token = prop_oneof![
        3 => Just(SERVER_KEY_ID.to_owned()),
        2 => Just("rsa-v1_5-sha256".to_owned()),
        1 => Just("*main".to_owned()),
        1 => "[a-zA-Z][a-zA-Z0-9:/._-]{0,6}",
    ];
    let value = prop_oneof![
        3 => Just(SfvValue::True),
        4 => name.prop_map(SfvValue::String),
        2 => token.prop_map(SfvValue::Token),
        1 => any::<i32>().prop_map(|n| SfvValue::Integer(n.into())),
        1 => any::<bool>().prop_map(SfvValue::Boolean),
        1 => Just(SfvValue::InnerList),
    ];
    let parameters = prop_oneof![
        4 => Just(String::new()),
        1 => Just(";a=1".to_owned()),
        1 => Just(";x;y=\"z\"".to_owned()),
    ];
    (key.prop_map(str::to_owned), value, parameters)
}

/// A header value: a valid dictionary (members joined with optional
/// whitespace), or one spoilt in a way RFC 8941 refuses.
#[derive(Debug, Clone)]
struct ExpectSignature {
    members: Vec<(String, SfvValue, String)>,
    separator: &'static str,
    /// `Some`: the serialised dictionary is made invalid this way.
    spoiler: Option<&'static str>,
}

impl ExpectSignature {
    fn value(&self) -> String {
        let dictionary: Vec<String> = self
            .members
            .iter()
            .map(|(key, value, parameters)| format!("{key}{}{parameters}", value.serialise()))
            .collect();
        let dictionary = dictionary.join(self.separator);
        match self.spoiler {
            None => dictionary,
            Some("trailing comma") => format!("{dictionary},"),
            Some("leading comma") => format!(",{dictionary}"),
            Some("uppercase key") => format!("Sig, {dictionary}"),
            Some("unterminated string") => format!("{dictionary}, keyid=\"main"),
            Some("bad escape") => format!("keyid=\"ma\\in\", {dictionary}"),
            Some("non-ASCII") => format!("keyid=\"mäin\", {dictionary}"),
            Some("two items") => format!("sig keyid, {dictionary}"),
            Some(other) => panic!("unknown spoiler {other}"),
        }
    }

    /// RFC 8941 (last duplicate wins) and the server's rules: `Err(400)`
    /// or the key id a signed answer names.
    fn expected(&self) -> Result<&'static str, u16> {
        if self.spoiler.is_some() {
            return Err(400);
        }
        let member = |name: &str| {
            self.members
                .iter()
                .rev()
                .find(|(key, _, _)| key == name)
                .map(|(_, value, _)| value)
        };
        if let Some(alg) = member("alg")
            && alg.text() != Some("rsa-v1_5-sha256")
        {
            return Err(400);
        }
        match member("keyid") {
            None => Ok(SERVER_KEY_ID),
            Some(keyid) if keyid.text() == Some(SERVER_KEY_ID) => Ok(SERVER_KEY_ID),
            // Not a string or token, or no key of that id.
            Some(_) => Err(400),
        }
    }
}

#[test]
fn expect_signature_is_an_sfv_dictionary() {
    let fixture = Fixture::start_with(&[
        ("PRIVATE_KEY", PRIVATE_KEY_PATH),
        ("PRIVATE_KEY_ID", SERVER_KEY_ID),
    ]);
    let spoiler = prop_oneof![
        12 => Just(None),
        1 => Just(Some("trailing comma")),
        1 => Just(Some("leading comma")),
        1 => Just(Some("uppercase key")),
        1 => Just(Some("unterminated string")),
        1 => Just(Some("bad escape")),
        1 => Just(Some("non-ASCII")),
        1 => Just(Some("two items")),
    ];
    let case = (
        vec(sfv_member(), 0..4),
        prop_oneof![Just(","), Just(", "), Just(" , "), Just(",\t")],
        spoiler,
    )
        .prop_map(|(members, separator, spoiler)| ExpectSignature {
            members,
            separator,
            spoiler,
        });
    fixture.check(192, case, |fixture, signature| {
        let value = signature.value();
        prop_assume!(HeaderValue::from_str(&value).is_ok());
        let url = fixture
            .app()
            .url(&TestApp::manifest_path(&fixture.project_id));
        let headers: Vec<(&str, &[u8])> = vec![
            ("expo-platform", b"ios"),
            ("expo-runtime-version", b"1.0.0"),
            ("expo-protocol-version", b"1"),
            ("accept", CLIENT_ACCEPT.as_bytes()),
            ("expo-expect-signature", value.as_bytes()),
        ];
        let response = fixture.get(&url, &headers);
        match signature.expected() {
            Err(status) => prop_assert_eq!(
                response.status,
                status,
                "expo-expect-signature {:?}: {}",
                value,
                response.text()
            ),
            Ok(key_id) => {
                prop_assert_eq!(
                    response.status,
                    200,
                    "expo-expect-signature {:?}: {}",
                    value,
                    response.text()
                );
                let parts = response.multipart();
                let manifest = parts.iter().find(|part| part.name() == "manifest");
                prop_assert!(manifest.is_some(), "no manifest part");
                let signed = manifest.and_then(|part| part.header("expo-signature"));
                prop_assert!(
                    signed.is_some(),
                    "the manifest is not signed for {:?}",
                    value
                );
                let members = parse_signature_header(signed.unwrap_or_default());
                let signed_with = members.ok().and_then(|m| m.get("keyid").cloned());
                prop_assert_eq!(signed_with, Some(key_id.to_owned()));
            }
        }
        Ok(())
    });
}

// ------------------------------------------------------------------ failure reports

#[test]
fn failure_reports_never_change_the_answer() {
    let fixture = Fixture::start();
    let ids: Vec<&'static str> = fixture
        .update_ids
        .values()
        .map(|id| &*id.clone().leak())
        .collect();
    let case = (
        proptest::sample::select(vec!["ios", "android"]),
        proptest::option::of(failed_update_ids(ids.clone())),
        proptest::option::of(prop_oneof![Just(String::new()), junk()]),
        proptest::option::of(proptest::sample::select(ids)),
    );
    fixture.check(128, case, |fixture, (platform, failed, fatal, current)| {
        let url = fixture
            .app()
            .url(&TestApp::manifest_path(&fixture.project_id));
        let mut plain: Vec<(&str, &[u8])> = vec![
            ("expo-platform", platform.as_bytes()),
            ("expo-runtime-version", b"1.0.0"),
            ("expo-protocol-version", b"1"),
            ("accept", b"application/expo+json"),
            ("eas-client-id", b"device-1"),
        ];
        if let Some(current) = current {
            plain.push(("expo-current-update-id", current.as_bytes()));
        }
        let mut reported = plain.clone();
        if let Some(failed) = &failed {
            prop_assume!(sendable(failed));
            reported.push(("expo-recent-failed-update-ids", failed.as_bytes()));
        }
        if let Some(fatal) = &fatal {
            prop_assume!(sendable(fatal));
            reported.push(("expo-fatal-error", fatal.as_bytes()));
        }
        let expected = fixture.get(&url, &plain);
        let answer = fixture.get(&url, &reported);
        prop_assert_eq!(answer.status, expected.status, "{}", answer.text());
        prop_assert_eq!(answer.body, expected.body);
        Ok(())
    });
}
