//! Bodies serialised once and signed at most once per key.

use std::sync::{Arc, Mutex, OnceLock};

use domain::ports::ManifestSigner;

use super::answer::SignedBody;
use crate::error::{AppError, AppResult};

/// A JSON body serialised once and signed at most once: a signature depends
/// only on the bytes, so every device asking for it shares it.
///
/// Per key: a project that rotates keys serves the same body signed by its
/// new key and, to devices that ask for it, by its old one. The first key's
/// signature is read without a lock; others (rare) behind a mutex.
#[derive(Debug)]
pub(crate) struct SignedOnce {
    json: Arc<str>,
    /// (signer identity, signature header) of the first key that signed.
    first: OnceLock<(Arc<str>, Arc<str>)>,
    others: Mutex<Vec<(Arc<str>, Arc<str>)>>,
}

/// Signatures kept per body besides the first key's.
const MAX_OTHER_SIGNATURES: usize = 64;

impl SignedOnce {
    pub(crate) fn new(json: String) -> Self {
        Self {
            json: json.into(),
            first: OnceLock::new(),
            others: Mutex::new(Vec::new()),
        }
    }

    /// The body, signed by `signer` when there is one (the device asked
    /// for a signature).
    pub(crate) fn body(&self, signer: Option<&dyn ManifestSigner>) -> AppResult<SignedBody> {
        let signature = match signer {
            Some(signer) => Some(self.signature(signer)?),
            None => None,
        };
        Ok(SignedBody {
            json: Arc::clone(&self.json),
            signature,
        })
    }

    fn signature(&self, signer: &dyn ManifestSigner) -> AppResult<Arc<str>> {
        let identity = signer.identity();
        if let Some((first, signature)) = self.first.get()
            && **first == *identity
        {
            return Ok(Arc::clone(signature));
        }
        let mut others = self
            .others
            .lock()
            .map_err(|_| AppError::Internal("a signature cache lock was poisoned".to_owned()))?;
        if let Some((_, signature)) = others.iter().find(|(id, _)| **id == *identity) {
            return Ok(Arc::clone(signature));
        }
        let signature: Arc<str> = signer.signature_header(self.json.as_bytes())?.into();
        let entry = (Arc::<str>::from(identity), Arc::clone(&signature));
        // Two first requests may both sign; the bytes are equal.
        if let Err(entry) = self.first.set(entry)
            && self.first.get().is_some_and(|(first, _)| *first != entry.0)
        {
            // Bounded: the shared `noUpdateAvailable` body is signed by every
            // project's keys; the oldest signature is dropped (and made
            // again if asked for).
            if others.len() >= MAX_OTHER_SIGNATURES {
                others.remove(0);
            }
            others.push(entry);
        }
        Ok(signature)
    }

    pub(crate) fn weight(&self) -> u64 {
        // The body, its signature once made (~350 B for RSA-2048), overhead.
        self.json.len() as u64 + 512
    }
}
