//! JWT tooling: reading, forging and verifying the server's tokens, and finding the secret
//! that signs them.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

/// A JWT secret long enough to be accepted (exactly 48 bytes).
pub const TEST_JWT_SECRET: &str = "e2e-test-secret-0123456789-abcdefghijklmnopqrstu";

/// Lifetime of an issued token: 72 hours.
pub const TOKEN_LIFETIME_SECS: i64 = 72 * 60 * 60;

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The header of a token, without verification.
pub fn header(token: &str) -> Value {
    let part = token.split('.').next().expect("a JWT has a header");
    decode_part(part)
}

/// The claims of a token, without verification.
pub fn claims(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("a JWT has a payload");
    decode_part(part)
}

fn decode_part(part: &str) -> Value {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .unwrap_or_else(|e| panic!("JWT part is not base64url: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JWT part is not JSON: {e}"))
}

/// Verifies an HS256 token with `secret`, returning the claims.
pub fn verify_hs256(token: &str, secret: impl AsRef<[u8]>) -> Result<Value, String> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "sub"]);
    jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(secret.as_ref()),
        &validation,
    )
    .map(|data| data.claims)
    .map_err(|e| e.to_string())
}

/// Standard claims for `sub`, issued now, valid for `lifetime_secs` (negative: expired).
pub fn claims_for(sub: &str, lifetime_secs: i64) -> Value {
    let iat = now();
    json!({ "sub": sub, "iat": iat, "exp": iat + lifetime_secs })
}

/// Signs `claims` with `secret` using `algorithm` (an HMAC one).
pub fn sign(claims: &Value, secret: &str, algorithm: Algorithm) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign a JWT")
}

/// An unsigned token: `{"alg":"none","typ":"JWT"}` header, empty signature.
pub fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// Whether the contents of `path` are the HS256 secret that signed `token`: used raw, as
/// trimmed text, hex-decoded or base64-decoded.
pub fn file_holds_secret_of(path: &Path, token: &str) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    let mut candidates = vec![bytes.clone(), text.clone().into_bytes()];
    if let Ok(decoded) = hex::decode(&text) {
        candidates.push(decoded);
    }
    for engine in [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ] {
        if let Ok(decoded) = engine.decode(&text) {
            candidates.push(decoded);
        }
    }
    for engine in [
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        if let Ok(decoded) = engine.decode(&text) {
            candidates.push(decoded);
        }
    }
    candidates
        .iter()
        .any(|secret| !secret.is_empty() && verify_hs256(token, secret).is_ok())
}
