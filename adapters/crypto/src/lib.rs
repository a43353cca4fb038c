//! Crypto adapter: password hashing (argon2id), session tokens (JWT HS256),
//! API-key secrets (random, SHA-256 at rest) and webhook signatures
//! (Standard Webhooks, HMAC-SHA256).

mod api_key_secrets;
mod certificate;
mod code_signing;
mod jwt;
mod key_sealer;
mod passwords;
mod signing_keys;
mod webhook_signatures;

pub use api_key_secrets::Sha256Secrets;
pub use certificate::{CertificateError, CodeSigningIdentity, generate_code_signing_identity};
pub use code_signing::{RsaManifestSigner, SigningKeyError};
pub use jwt::{JwtTokens, MIN_SECRET_BYTES};
pub use key_sealer::{AesGcmKeySealer, MIN_MASTER_KEY_CHARS, MasterKeyTooShort};
pub use passwords::Argon2Passwords;
pub use signing_keys::RsaSigningKeys;
pub use webhook_signatures::StandardWebhookSigner;
