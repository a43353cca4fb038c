//! Expo code signing: RSASSA-PKCS1-v1_5 with SHA-256 over the exact bytes of
//! a manifest or directive, announced in an `expo-signature` part header.
//!
//! Signing is done by ring (constant-time); rsa only parses the PEM, which
//! may be PKCS#1 (`RSA PRIVATE KEY`, as `expo-updates codesigning:generate`
//! writes it) or PKCS#8 (`PRIVATE KEY`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use domain::ports::{CryptoError, ManifestSigner};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};

/// The only algorithm Expo clients accept.
const ALGORITHM: &str = "rsa-v1_5-sha256";

#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error("PRIVATE_KEY is not a PEM RSA private key (PKCS#1 or PKCS#8, unencrypted)")]
    NotPem,
    #[error("PRIVATE_KEY cannot be used for signing: {0}")]
    Unusable(String),
    #[error("PRIVATE_KEY_ID must be non-empty printable ASCII without quotes or backslashes")]
    BadKeyId,
}

/// Signs manifests and directives with one RSA key.
pub struct RsaManifestSigner {
    key_pair: RsaKeyPair,
    key_id: String,
    identity: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for RsaManifestSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaManifestSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl RsaManifestSigner {
    /// Parses a PEM key. Newlines may be real, CRLF, or escaped as `\n` (as
    /// they end up when a PEM is pasted into a one-line environment variable).
    pub fn from_pem(pem: &str, key_id: &str) -> Result<Self, SigningKeyError> {
        if key_id.is_empty()
            || !key_id
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        {
            return Err(SigningKeyError::BadKeyId);
        }
        let pem = pem
            .replace("\\r\\n", "\n")
            .replace("\\n", "\n")
            .replace("\r\n", "\n");
        let pem = pem.trim();
        let key = RsaPrivateKey::from_pkcs1_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs8_pem(pem))
            .map_err(|_| SigningKeyError::NotPem)?;
        let der = key
            .to_pkcs8_der()
            .map_err(|error| SigningKeyError::Unusable(error.to_string()))?;
        let key_pair = RsaKeyPair::from_pkcs8(der.as_bytes())
            .map_err(|error| SigningKeyError::Unusable(error.to_string()))?;
        Ok(Self {
            key_pair,
            key_id: key_id.to_owned(),
            identity: format!("server:{key_id}"),
            rng: SystemRandom::new(),
        })
    }

    /// Names this signer for signature caches (see
    /// [`ManifestSigner::identity`]); the server key's is `server:<keyid>`.
    pub fn with_identity(mut self, identity: String) -> Self {
        self.identity = identity;
        self
    }

    /// The public key as PKCS#1 `RSAPublicKey` DER: the bytes a
    /// certificate's `subjectPublicKey` bit string holds.
    pub(crate) fn public_key_der(&self) -> &[u8] {
        self.key_pair.public().as_ref()
    }

    /// The raw signature of `body`, base64 (standard alphabet, padded).
    pub fn signature(&self, body: &[u8]) -> Result<String, CryptoError> {
        let mut signature = vec![0u8; self.key_pair.public().modulus_len()];
        self.key_pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, body, &mut signature)
            .map_err(|_| CryptoError("RSA signing failed".to_owned()))?;
        Ok(STANDARD.encode(signature))
    }
}

impl ManifestSigner for RsaManifestSigner {
    fn identity(&self) -> &str {
        &self.identity
    }

    /// `keyid="…", sig="…", alg="rsa-v1_5-sha256"`: an SFV dictionary of
    /// strings, in the order @expo/cli writes it. Base64 and the validated
    /// key id contain no character that needs escaping in an SFV string.
    fn signature_header(&self, body: &[u8]) -> Result<String, CryptoError> {
        let sig = self.signature(body)?;
        Ok(format!(
            "keyid=\"{}\", sig=\"{sig}\", alg=\"{ALGORITHM}\"",
            self.key_id
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/code-signing"
    );

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture")
    }

    #[test]
    fn reproduces_the_expo_test_vector_byte_for_byte() {
        let vector: serde_json::Value =
            serde_json::from_str(&fixture("signature-test-vector.json")).expect("json");
        let signer = RsaManifestSigner::from_pem(&fixture("private-key.pem"), "main").expect("key");
        let signed = vector["signedString"].as_str().expect("string").as_bytes();
        assert_eq!(signer.signature(signed).expect("sig"), vector["sig"]);
        assert_eq!(
            signer.signature_header(signed).expect("header"),
            vector["expoSignatureHeader"]
        );
    }

    #[test]
    fn accepts_escaped_newlines_crlf_and_pkcs8() {
        let pem = fixture("private-key.pem");
        let reference = RsaManifestSigner::from_pem(&pem, "main").expect("key");
        let expected = reference.signature(b"x").expect("sig");
        let escaped = pem.trim().replace('\n', "\\n");
        let crlf = pem.replace('\n', "\r\n");
        let pkcs8 = RsaPrivateKey::from_pkcs1_pem(&pem)
            .expect("pkcs1")
            .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .expect("pkcs8")
            .to_string();
        for variant in [escaped, crlf, pkcs8] {
            let signer = RsaManifestSigner::from_pem(&variant, "main").expect("variant");
            assert_eq!(signer.signature(b"x").expect("sig"), expected);
        }
        assert!(RsaManifestSigner::from_pem("not a key", "main").is_err());
        assert!(RsaManifestSigner::from_pem(&pem, "bad\"id").is_err());
        assert!(RsaManifestSigner::from_pem(&pem, "").is_err());
    }
}
