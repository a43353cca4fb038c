//! Answers and what tests assert about them: [`Response`] (status, headers, body as text and
//! JSON) and the checks of JSON values (fields, ids, timestamps, no secrets).

use std::collections::BTreeSet;
use std::io::Read;

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::Value;
use uuid::Uuid;

/// A fully read HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The body parsed as JSON; `Value::Null` when it is empty or not JSON.
    pub json: Value,
}

impl Response {
    pub(crate) async fn read(response: reqwest::Response) -> Response {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("read the response body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Response {
            status,
            headers,
            text,
            json,
        }
    }

    pub fn content_type(&self) -> String {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    }

    /// Asserts the status code, printing the body when it differs.
    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Response {
        assert_eq!(
            self.status, expected,
            "expected HTTP {expected}, got {} with body: {}",
            self.status, self.text
        );
        self
    }

    /// Asserts an error answer: the status, and a JSON body `{"error": "<non-empty>"}`.
    /// Returns the message.
    #[track_caller]
    pub fn assert_error(&self, expected: u16) -> String {
        self.assert_status(expected);
        let message = self
            .json
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or_else(|| {
                panic!(
                    "HTTP {expected} body should be {{\"error\": \"...\"}}, got: {}",
                    self.text
                )
            });
        assert!(
            !message.trim().is_empty(),
            "the error message is empty: {}",
            self.text
        );
        message.to_owned()
    }

    /// Asserts `403 {"error": "Permission denied."}`: the answer to a non-member, the same
    /// as for a project that does not exist.
    #[track_caller]
    pub fn assert_permission_denied(&self) {
        let message = self.assert_error(403);
        assert_eq!(message, "Permission denied.", "body: {}", self.text);
    }

    /// Asserts `403` with an error message of the server's choosing: the answer to a member
    /// calling an owner-only route (unlike strangers, members know the project exists).
    #[track_caller]
    pub fn assert_forbidden(&self) {
        self.assert_error(403);
    }

    /// Asserts a 2xx status with an empty body (e.g. `204 No Content`).
    #[track_caller]
    pub fn assert_no_content(&self) {
        self.assert_status(204);
        assert!(self.text.is_empty(), "204 must have no body: {}", self.text);
    }

    /// The JSON body as an array.
    #[track_caller]
    pub fn array(&self) -> &Vec<Value> {
        self.json
            .as_array()
            .unwrap_or_else(|| panic!("expected a JSON array, got: {}", self.text))
    }
}

/// The string value of `value[key]`, panicking with the JSON when it is absent.
#[track_caller]
pub fn str_field(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("expected a string field {key:?} in {value}"))
        .to_owned()
}

/// Asserts that `value` is an object having every key in `keys`.
#[track_caller]
pub fn assert_has_fields(value: &Value, keys: &[&str]) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("expected a JSON object, got {value}"));
    for key in keys {
        assert!(
            object.contains_key(*key),
            "missing field {key:?} in {value}"
        );
    }
}

/// Every object key anywhere in `value`, lower-cased.
pub fn all_keys(value: &Value) -> BTreeSet<String> {
    fn walk(value: &Value, keys: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    keys.insert(key.to_lowercase());
                    walk(child, keys);
                }
            }
            Value::Array(items) => items.iter().for_each(|child| walk(child, keys)),
            _ => {}
        }
    }
    let mut keys = BTreeSet::new();
    walk(value, &mut keys);
    keys
}

/// Asserts that no key anywhere in `value` mentions a password, a hash or a secret.
#[track_caller]
pub fn assert_no_secrets(value: &Value) {
    for key in all_keys(value) {
        assert!(
            !key.contains("password") && !key.contains("hash") && !key.contains("secret"),
            "sensitive field {key:?} exposed in {value}"
        );
    }
    let text = value.to_string();
    assert!(
        !text.contains("$argon2"),
        "a password hash is exposed in {text}"
    );
}

/// Asserts a user object `{"id","username","email","createdAt"}` without any secret.
#[track_caller]
pub fn assert_user_shape(user: &Value) {
    assert_has_fields(user, &["id", "username", "email", "createdAt"]);
    assert_uuid(&user["id"]);
    assert_rfc3339(&user["createdAt"]);
    assert_no_secrets(user);
}

#[track_caller]
pub fn assert_uuid(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("expected a UUID string, got {value}"));
    assert!(Uuid::parse_str(text).is_ok(), "not a UUID: {text:?}");
}

#[track_caller]
pub fn assert_rfc3339(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("expected an RFC 3339 string, got {value}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("not an RFC 3339 timestamp: {text:?} ({e})"))
}

/// Asserts `YYYY-MM-DDTHH:MM:SS.sssZ` (milliseconds, UTC), the only timestamp shape both
/// Expo clients parse and the one the API writes; returns the instant.
#[track_caller]
pub fn assert_timestamp_millis(value: &Value) -> chrono::DateTime<chrono::Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("expected a timestamp string, got {value}"));
    let bytes = text.as_bytes();
    let digit = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    let shape_ok = bytes.len() == 24
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22]
            .iter()
            .all(|&i| digit(i))
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
        && bytes[19] == b'.'
        && bytes[23] == b'Z';
    assert!(
        shape_ok,
        "{text:?} does not match ^\\d{{4}}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{{3}}Z$ \
         (an RFC 3339 timestamp with milliseconds in UTC)"
    );
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not a timestamp: {e}"))
        .with_timezone(&chrono::Utc)
}

/// Whether two JSON values describe the same thing: equal, except that two RFC 3339
/// timestamps only need to be the same instant to the millisecond (a value fresh from memory
/// may carry more precision than the same value read back from the database).
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, value)| y.get(key).is_some_and(|other| same_json(value, other)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b))
        }
        (Value::String(x), Value::String(y)) if x != y => {
            match (
                chrono::DateTime::parse_from_rfc3339(x),
                chrono::DateTime::parse_from_rfc3339(y),
            ) {
                (Ok(x), Ok(y)) => (x - y).num_milliseconds() == 0,
                _ => false,
            }
        }
        _ => a == b,
    }
}

/// Asserts [`same_json`], printing both values otherwise.
#[track_caller]
pub fn assert_same(actual: &Value, expected: &Value) {
    assert!(
        same_json(actual, expected),
        "JSON differs:\n  actual:   {actual}\n  expected: {expected}"
    );
}

/// The bytes a brotli stream decodes to (panics when it is not one).
pub fn brotli_decoded(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(bytes, 64 * 1024)
        .read_to_end(&mut out)
        .expect("a valid brotli stream");
    out
}

/// The bytes a zstd frame decodes to (panics when it is not one).
pub fn zstd_decoded(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::decode_all(bytes).expect("a valid zstd frame")
}

/// The bytes a gzip stream decodes to (panics when it is not one).
pub fn gzip_decoded(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a valid gzip stream");
    out
}
