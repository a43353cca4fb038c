//! Private keys at rest: AES-256-GCM under a key derived (HKDF-SHA256) from
//! the operator's `SIGNING_KEY_ENCRYPTION_KEY`.
//!
//! A sealed value is `version (1) | nonce (12) | ciphertext | tag (16)`. The
//! context (project and key id) is authenticated as associated data: a
//! sealed key copied into another row does not open.

use domain::ports::{CryptoError, KeySealer};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, Salt};
use ring::rand::{SecureRandom, SystemRandom};

/// The shortest master key accepted: 32 characters of `openssl rand
/// -base64 32` carry 192 bits and more.
pub const MIN_MASTER_KEY_CHARS: usize = 32;

const FORMAT_VERSION: u8 = 1;
const HKDF_SALT: &[u8] = b"expo-updates-server";
const HKDF_INFO: &[u8] = b"signing-key-encryption v1";

#[derive(Debug, thiserror::Error)]
#[error("SIGNING_KEY_ENCRYPTION_KEY must be at least {MIN_MASTER_KEY_CHARS} characters")]
pub struct MasterKeyTooShort;

/// Seals and opens private keys; holds only the derived key.
pub struct AesGcmKeySealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for AesGcmKeySealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesGcmKeySealer(***)")
    }
}

impl AesGcmKeySealer {
    pub fn from_master_key(master_key: &str) -> Result<Self, MasterKeyTooShort> {
        if master_key.chars().count() < MIN_MASTER_KEY_CHARS {
            return Err(MasterKeyTooShort);
        }
        let prk = Salt::new(HKDF_SHA256, HKDF_SALT).extract(master_key.as_bytes());
        let mut key_bytes = [0u8; 32];
        prk.expand(&[HKDF_INFO], &AES_256_GCM)
            .and_then(|okm| okm.fill(&mut key_bytes))
            .map_err(|_| MasterKeyTooShort)?;
        let key = UnboundKey::new(&AES_256_GCM, &key_bytes).map_err(|_| MasterKeyTooShort)?;
        Ok(Self {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }
}

impl KeySealer for AesGcmKeySealer {
    fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| CryptoError("no randomness for a nonce".to_owned()))?;
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| CryptoError("sealing failed".to_owned()))?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(FORMAT_VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, CryptoError> {
        let refused = || {
            CryptoError(
                "a stored signing key does not open: SIGNING_KEY_ENCRYPTION_KEY differs from \
                 the one it was stored with, or the row was altered"
                    .to_owned(),
            )
        };
        let (&version, rest) = sealed.split_first().ok_or_else(refused)?;
        if version != FORMAT_VERSION || rest.len() < NONCE_LEN {
            return Err(refused());
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut in_out)
            .map_err(|_| refused())?;
        Ok(plaintext.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(master: &str) -> AesGcmKeySealer {
        AesGcmKeySealer::from_master_key(master).expect("long enough")
    }

    #[test]
    fn opens_what_it_sealed_in_the_same_context_only() {
        let a = sealer(&"a".repeat(32));
        let sealed = a.seal(b"private key", "project-1/main").expect("seal");
        assert!(!sealed.windows(11).any(|w| w == b"private key"));
        assert_eq!(
            a.open(&sealed, "project-1/main").expect("open"),
            b"private key"
        );
        assert!(a.open(&sealed, "project-2/main").is_err());
        assert!(
            sealer(&"b".repeat(32))
                .open(&sealed, "project-1/main")
                .is_err()
        );
        let mut tampered = sealed.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert!(a.open(&tampered, "project-1/main").is_err());
        assert!(a.open(&[], "project-1/main").is_err());
        // Two seals of the same key differ (fresh nonces).
        assert_ne!(
            sealed,
            a.seal(b"private key", "project-1/main").expect("seal")
        );
    }

    #[test]
    fn short_master_keys_are_refused() {
        assert!(AesGcmKeySealer::from_master_key(&"x".repeat(31)).is_err());
    }
}
