//! Session tokens: JWT signed with HMAC-SHA256, valid for 72 hours.

use chrono::Utc;
use domain::ports::{CryptoError, TokenError, TokenService};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

/// The shortest secret the server will sign with: HS256 is only as strong as
/// its key, and the old server signed with an empty one.
pub const MIN_SECRET_BYTES: usize = 32;

const LIFETIME_SECONDS: i64 = 72 * 3600;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: i64,
    exp: i64,
}

pub struct JwtTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtTokens {
    /// Refuses a secret shorter than [`MIN_SECRET_BYTES`].
    pub fn new(secret: &[u8]) -> Result<Self, CryptoError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(CryptoError(format!(
                "JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        // Only HS256: a token claiming any other algorithm is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        })
    }
}

impl TokenService for JwtTokens {
    fn issue(&self, user_id: &str) -> Result<String, CryptoError> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_owned(),
            iat: now,
            exp: now + LIFETIME_SECONDS,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|error| CryptoError(error.to_string()))
    }

    fn verify(&self, token: &str) -> Result<String, TokenError> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims.sub)
            .map_err(|_| TokenError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn issued_tokens_verify_and_carry_the_user() {
        let tokens = JwtTokens::new(SECRET).expect("tokens");
        let token = tokens.issue("user-1").expect("token");
        assert_eq!(tokens.verify(&token), Ok("user-1".to_owned()));
    }

    #[test]
    fn short_secrets_and_other_algorithms_are_refused() {
        assert!(JwtTokens::new(b"short").is_err());
        let tokens = JwtTokens::new(SECRET).expect("tokens");
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: "u".into(),
            iat: now,
            exp: now + 60,
        };
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .expect("hs512");
        assert_eq!(tokens.verify(&hs512), Err(TokenError::Invalid));
        let expired = Claims {
            sub: "u".into(),
            iat: now - 7200,
            exp: now - 3600,
        };
        let old = encode(
            &Header::new(Algorithm::HS256),
            &expired,
            &EncodingKey::from_secret(SECRET),
        )
        .expect("expired");
        assert_eq!(tokens.verify(&old), Err(TokenError::Invalid));
    }
}
