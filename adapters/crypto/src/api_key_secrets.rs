//! API-key secrets: 32 random bytes, hex, behind a recognisable prefix.

use domain::api_key::{GeneratedSecret, SECRET_PREFIX};
use domain::ports::SecretGenerator;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Generates `eus_` + 64 hex secrets and hashes presented ones with SHA-256,
/// as the old server did (over the secret's ASCII text), so its 64-hex
/// secrets keep working.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sha256Secrets;

impl SecretGenerator for Sha256Secrets {
    fn generate(&self) -> GeneratedSecret {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let random_hex = hex::encode(bytes);
        let secret = format!("{SECRET_PREFIX}{random_hex}");
        GeneratedSecret {
            hash: self.hash(&secret),
            prefix: random_hex[..8].to_owned(),
            secret,
        }
    }

    fn hash(&self, secret: &str) -> String {
        hex::encode(Sha256::digest(secret.as_bytes()))
    }

    fn hashes_match(&self, a: &str, b: &str) -> bool {
        a.as_bytes().ct_eq(b.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::api_key::looks_like_secret;

    #[test]
    fn generated_secrets_have_the_prefix_and_hash_of_their_text() {
        let generated = Sha256Secrets.generate();
        assert!(
            generated
                .secret
                .starts_with(&format!("eus_{}", generated.prefix))
        );
        assert!(looks_like_secret(&generated.secret));
        assert_eq!(generated.prefix.len(), 8);
        assert_eq!(generated.hash, Sha256Secrets.hash(&generated.secret));
        assert_ne!(Sha256Secrets.generate().secret, generated.secret);
    }

    #[test]
    fn legacy_hash_is_sha256_of_the_hex_text() {
        // sha256("abc") as a sanity anchor for the hex-of-text scheme.
        assert_eq!(
            Sha256Secrets.hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(Sha256Secrets.hashes_match("ab", "ab"));
        assert!(!Sha256Secrets.hashes_match("ab", "ac"));
    }
}
