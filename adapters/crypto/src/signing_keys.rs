//! Project signing keys: parsing uploaded PEMs into signers, checking that a
//! certificate is for its key, and generating new key pairs.

use std::sync::Arc;

use domain::ports::{CryptoError, GeneratedSigningKey, ManifestSigner, SigningKeyFactory};
use domain::signing_key::SigningKeyId;
use x509_cert::Certificate;
use x509_cert::der::DecodePem;

use crate::certificate::generate_code_signing_identity;
use crate::code_signing::{RsaManifestSigner, SigningKeyError};

/// RSA keys, as Expo code signing uses them.
#[derive(Debug, Default, Clone, Copy)]
pub struct RsaSigningKeys;

impl SigningKeyFactory for RsaSigningKeys {
    fn signer(
        &self,
        private_key_pem: &str,
        key_id: &SigningKeyId,
    ) -> Result<Arc<dyn ManifestSigner>, CryptoError> {
        let signer = RsaManifestSigner::from_pem(private_key_pem, key_id.as_str())
            .map_err(|error| CryptoError(describe(&error)))?;
        Ok(Arc::new(signer))
    }

    fn certificate_matches(
        &self,
        private_key_pem: &str,
        certificate_pem: &str,
    ) -> Result<bool, CryptoError> {
        let certificate = Certificate::from_pem(certificate_pem.trim().as_bytes())
            .map_err(|_| CryptoError("certificate is not a PEM X.509 certificate.".to_owned()))?;
        let signer = RsaManifestSigner::from_pem(private_key_pem, "check")
            .map_err(|error| CryptoError(describe(&error)))?;
        let certified = certificate
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        Ok(certified == signer.public_key_der())
    }

    fn generate(
        &self,
        common_name: &str,
        validity_years: u32,
    ) -> Result<GeneratedSigningKey, CryptoError> {
        let identity = generate_code_signing_identity(common_name, validity_years)
            .map_err(|error| CryptoError(format!("{error}.")))?;
        Ok(GeneratedSigningKey {
            private_key_pem: identity.private_key_pem,
            certificate_pem: identity.certificate_pem,
        })
    }
}

/// The client-facing reason a PEM is refused (the adapter's own messages
/// name `PRIVATE_KEY`, the server's variable).
fn describe(error: &SigningKeyError) -> String {
    match error {
        SigningKeyError::NotPem => {
            "privateKey is not a PEM RSA private key (PKCS#1 or PKCS#8, unencrypted).".to_owned()
        }
        SigningKeyError::Unusable(reason) => {
            format!("privateKey cannot be used for signing: {reason}.")
        }
        SigningKeyError::BadKeyId => "keyId is not valid.".to_owned(),
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
    fn a_certificate_matches_its_own_key_only() {
        let keys = RsaSigningKeys;
        let key = fixture("private-key.pem");
        let certificate = fixture("certificate.pem");
        assert!(keys.certificate_matches(&key, &certificate).expect("parse"));
        let other = keys.generate("other", 1).expect("generate");
        assert!(
            !keys
                .certificate_matches(&other.private_key_pem, &certificate)
                .expect("parse")
        );
        assert!(
            keys.certificate_matches(&other.private_key_pem, &other.certificate_pem)
                .expect("parse")
        );
        assert!(keys.certificate_matches(&key, "not a certificate").is_err());
        let id = SigningKeyId::parse("k").expect("id");
        assert!(keys.signer("not a key", &id).is_err());
        assert!(keys.signer(&key, &id).is_ok());
    }
}
