//! Argon2id password hashing.
//!
//! The parameters are the old Go server's (m = 64 MiB, t = 1, p = 4, 32-byte
//! output), so its PHC strings and ours are interchangeable; verification
//! reads the parameters from each stored string.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use domain::ports::{CryptoError, PasswordHasher};
use domain::user::Password;
use tokio::sync::Semaphore;

/// At most this many hashes run at once. Each takes 64 MiB, so a burst of
/// logins costs a bounded amount of memory; the rest wait their turn.
const CONCURRENT_HASHES: usize = 4;

pub struct Argon2Passwords {
    hasher: Argon2<'static>,
    /// A hash of a random password, verified against when the user is
    /// unknown so that such logins cost the same work.
    decoy_hash: String,
    permits: Arc<Semaphore>,
}

impl Argon2Passwords {
    /// Builds the hasher; computes one decoy hash, so call it once at start-up.
    pub fn new() -> Result<Self, CryptoError> {
        let params = Params::new(64 * 1024, 1, 4, Some(32)).map_err(crypto_error)?;
        let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let decoy_password = SaltString::generate(&mut OsRng);
        let decoy_hash = hash_with(&hasher, decoy_password.as_str())?;
        Ok(Self {
            hasher,
            decoy_hash,
            permits: Arc::new(Semaphore::new(CONCURRENT_HASHES)),
        })
    }

    /// Runs CPU-heavy hashing off the async workers, within the permit budget.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, CryptoError> {
        let _permit = self.permits.acquire().await.map_err(crypto_error)?;
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || work(hasher))
            .await
            .map_err(crypto_error)
    }
}

fn hash_with(hasher: &Argon2<'_>, password: &str) -> Result<String, CryptoError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(crypto_error)
}

fn verify_with(hasher: &Argon2<'_>, password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| hasher.verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

fn crypto_error(error: impl std::fmt::Display) -> CryptoError {
    CryptoError(error.to_string())
}

#[async_trait]
impl PasswordHasher for Argon2Passwords {
    async fn hash(&self, password: &Password) -> Result<String, CryptoError> {
        let password = password.expose().to_owned();
        self.run(move |hasher| hash_with(&hasher, &password))
            .await?
    }

    async fn verify(&self, password: &str, phc: &str) -> bool {
        let (password, phc) = (password.to_owned(), phc.to_owned());
        self.run(move |hasher| verify_with(&hasher, &password, &phc))
            .await
            .unwrap_or(false)
    }

    async fn burn_equivalent_work(&self, password: &str) {
        let decoy = self.decoy_hash.clone();
        let _ = self.verify(password, &decoy).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_do_not() {
        let passwords = Argon2Passwords::new().expect("hasher");
        let password = Password::parse("correct horse").expect("valid");
        let phc = passwords.hash(&password).await.expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=65536,t=1,p=4$"));
        assert!(passwords.verify("correct horse", &phc).await);
        assert!(!passwords.verify("wrong horse", &phc).await);
        assert!(!passwords.verify("correct horse", "not a phc string").await);
    }

    #[tokio::test]
    async fn the_go_servers_hashes_verify_as_they_are() {
        // Made by the Go server's scheme: argon2id, m=65536, t=1, p=4,
        // 16-byte salt, 32-byte key, unpadded standard base64.
        let passwords = Argon2Passwords::new().expect("hasher");
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let go_style = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(65536, 1, 4, Some(32)).expect("params"),
        )
        .hash_password(b"hunter22", &salt)
        .expect("hash")
        .to_string();
        assert!(go_style.starts_with("$argon2id$v=19$m=65536,t=1,p=4$MDEyMzQ1Njc4OWFiY2RlZg$"));
        assert!(passwords.verify("hunter22", &go_style).await);
    }
}
