//! A manifest signer without a key.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use domain::ports::{CryptoError, ManifestSigner};
use domain::signing_key::SigningKeyId;
use sha2::{Digest, Sha256};

/// A [`ManifestSigner`] whose signature is a pure function of its key id
/// and the bytes, in the real header's shape:
/// `sig="<base64 SHA-256 of key id, NUL, body>", keyid="<key id>", alg="rsa-v1_5-sha256"`.
///
/// Not a signature anything can verify: tests compare headers, and count
/// calls ([`calls`](Self::calls)) to see that a body is signed once.
#[derive(Debug)]
pub struct FakeSigner {
    key_id: SigningKeyId,
    calls: AtomicU64,
}

impl FakeSigner {
    /// A signer for `key_id` (an SFV-safe key id, such as `main`).
    ///
    /// # Panics
    ///
    /// When `key_id` is not a valid key id: a mistake in the test.
    pub fn new(key_id: &str) -> Self {
        Self {
            key_id: SigningKeyId::parse(key_id).expect("a valid signing key id"),
            calls: AtomicU64::new(0),
        }
    }

    pub fn key_id(&self) -> &SigningKeyId {
        &self.key_id
    }

    /// How many times a body was signed.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The header this signer gives for `body`, without counting a call.
    pub fn expected_header(&self, body: &[u8]) -> String {
        let digest = Sha256::new()
            .chain_update(self.key_id.as_str().as_bytes())
            .chain_update([0u8])
            .chain_update(body)
            .finalize();
        format!(
            "sig=\"{}\", keyid=\"{}\", alg=\"rsa-v1_5-sha256\"",
            STANDARD.encode(digest),
            self.key_id.as_str()
        )
    }
}

impl ManifestSigner for FakeSigner {
    fn identity(&self) -> &str {
        self.key_id.as_str()
    }

    fn signature_header(&self, body: &[u8]) -> Result<String, CryptoError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(self.expected_header(body))
    }
}
