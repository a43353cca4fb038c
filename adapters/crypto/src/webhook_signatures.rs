//! Webhook signatures (Standard Webhooks): HMAC-SHA256 with `ring`, which
//! the crate already uses; the tests check them with the specification's
//! own Rust library, as a receiver would.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use domain::ports::{CryptoError, WebhookSigner};
use domain::webhook::{SECRET_PREFIX, WebhookSecret};
use rand::RngCore;
use ring::hmac;

/// Bytes of key in a new secret (the specification allows 24 to 64).
const SECRET_BYTES: usize = 24;

#[derive(Debug, Default, Clone, Copy)]
pub struct StandardWebhookSigner;

impl WebhookSigner for StandardWebhookSigner {
    fn new_secret(&self) -> WebhookSecret {
        let mut key = [0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut key);
        WebhookSecret::from_trusted(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
    }

    fn signature(
        &self,
        secret: &WebhookSecret,
        delivery_id: &str,
        timestamp: i64,
        body: &[u8],
    ) -> Result<String, CryptoError> {
        let encoded = secret
            .expose()
            .strip_prefix(SECRET_PREFIX)
            .unwrap_or(secret.expose());
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| CryptoError("a webhook secret that is not base64".to_owned()))?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
        let mut context = hmac::Context::with_key(&key);
        context.update(delivery_id.as_bytes());
        context.update(b".");
        context.update(timestamp.to_string().as_bytes());
        context.update(b".");
        context.update(body);
        Ok(format!("v1,{}", STANDARD.encode(context.sign().as_ref())))
    }
}

#[expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_specifications_test_vector_and_library() {
        // The vector of the Standard Webhooks Rust library's own test.
        let secret =
            WebhookSecret::from_trusted("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_owned());
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let signed = StandardWebhookSigner
            .signature(
                &secret,
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1_649_367_553,
                body,
            )
            .unwrap();
        assert_eq!(signed, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");

        // A new secret, verified by the library as a receiver does.
        let secret = StandardWebhookSigner.new_secret();
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(format!("{secret:?}"), "WebhookSecret(..)");
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap();
        let body = br#"{"type":"webhook.test"}"#;
        let signature = StandardWebhookSigner
            .signature(&secret, "01a2-delivery", now, body)
            .unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", "01a2-delivery".parse().unwrap());
        headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
        headers.insert("webhook-signature", signature.parse().unwrap());
        let receiver = standardwebhooks::Webhook::new(secret.expose()).unwrap();
        receiver.verify(body, &headers).unwrap();
        assert!(
            receiver
                .verify(br#"{"type":"tampered"}"#, &headers)
                .is_err()
        );

        let broken = WebhookSecret::from_trusted("whsec_not base64!".to_owned());
        assert!(
            StandardWebhookSigner
                .signature(&broken, "id", now, body)
                .is_err()
        );
    }
}
