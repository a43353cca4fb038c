//! Generating an Expo code-signing identity: an RSA 2048 private key and a
//! self-signed certificate that the Expo client accepts as
//! `updates.codeSigningCertificate` (Key Usage digitalSignature, Extended
//! Key Usage codeSigning, currently valid), like `npx expo-updates
//! codesigning:generate` makes.

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_RSA_SHA256,
};
use rsa::RsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};

/// The key size the Expo tooling uses.
const RSA_BITS: usize = 2048;

/// A private key and its certificate, both PEM.
pub struct CodeSigningIdentity {
    /// PKCS#8 PEM: what `PRIVATE_KEY` takes.
    pub private_key_pem: String,
    pub certificate_pem: String,
}

impl std::fmt::Debug for CodeSigningIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeSigningIdentity")
            .field("private_key_pem", &"***")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("validity must be 1 to 100 years")]
    Validity,
    #[error("common name must be 1 to 64 characters")]
    CommonName,
    #[error("generating the key or certificate failed: {0}")]
    Generation(String),
}

/// Generates a new key and a self-signed code-signing certificate for it,
/// valid from now for `validity_years`.
pub fn generate_code_signing_identity(
    common_name: &str,
    validity_years: u32,
) -> Result<CodeSigningIdentity, CertificateError> {
    if !(1..=100).contains(&validity_years) {
        return Err(CertificateError::Validity);
    }
    if common_name.is_empty() || common_name.chars().count() > 64 {
        return Err(CertificateError::CommonName);
    }
    let failed = |error: &dyn std::fmt::Display| CertificateError::Generation(error.to_string());
    let key = RsaPrivateKey::new(&mut rand_core::OsRng, RSA_BITS).map_err(|e| failed(&e))?;
    let private_key_pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| failed(&e))?;
    let key_pair = KeyPair::from_pem_and_sign_algo(&private_key_pem, &PKCS_RSA_SHA256)
        .map_err(|e| failed(&e))?;

    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now;
    params.not_after = now + time::Duration::days(365 * i64::from(validity_years));
    let certificate = params.self_signed(&key_pair).map_err(|e| failed(&e))?;
    Ok(CodeSigningIdentity {
        private_key_pem: private_key_pem.to_string(),
        certificate_pem: certificate.pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RsaManifestSigner;
    use domain::ports::ManifestSigner;

    #[test]
    fn the_generated_key_signs_manifests() {
        let identity = generate_code_signing_identity("My App", 10).expect("generated");
        assert!(
            identity
                .certificate_pem
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        let signer = RsaManifestSigner::from_pem(&identity.private_key_pem, "main")
            .expect("PRIVATE_KEY accepts it");
        assert!(signer.signature_header(b"{}").is_ok());
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(generate_code_signing_identity("x", 0).is_err());
        assert!(generate_code_signing_identity("", 1).is_err());
    }
}
