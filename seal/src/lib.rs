//! Secrets at rest: rail tokens and the sandbox's world are sealed with
//! AES-256-GCM under a key from configuration.
//!
//! A sealed value names the key it was sealed under (`v2:<key id>:<base64>`)
//! and is bound to associated data, the id of what it belongs to (a rail
//! connection, the sandbox state): a sealed token copied into another row
//! does not open there. A [`Sealer`] seals under its current key and opens
//! under the current or any previous key, so keys rotate without downtime
//! (`rowcol rotate-key` re-seals everything under the current one).
//!
//! Its own crate so that the AEAD's generic code is instantiated here, where
//! the dev profile optimises it (Cargo.toml): instantiated in `app` at
//! opt-level 0, sealing the sandbox's ~350 KB world took ~110 ms, after
//! every simulator change.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the encryption key must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("sealed value is corrupt, bound to something else, or sealed under an unknown key")]
    Open,
}

const V2: &str = "v2:";

#[derive(Clone)]
struct SealKey {
    id: String,
    cipher: Aes256Gcm,
}

impl SealKey {
    fn from_base64(key_b64: &str) -> Result<Self, CryptoError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key_b64.trim())
            .map_err(|_| CryptoError::BadKey)?;
        if bytes.len() != 32 {
            return Err(CryptoError::BadKey);
        }
        // A key's id: the first 8 hex digits of its SHA-256, enough to tell
        // a handful of keys apart and nothing about the key.
        let id = hex::encode(&Sha256::digest(&bytes)[..4]);
        Ok(SealKey {
            id,
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
        })
    }
}

/// Seals and opens secrets. `Debug` never shows a key.
#[derive(Clone)]
pub struct Sealer {
    current: SealKey,
    previous: Vec<SealKey>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("key_id", &self.current.id)
            .field("previous", &self.previous.len())
            .finish_non_exhaustive()
    }
}

impl Sealer {
    pub fn from_base64_key(key_b64: &str) -> Result<Self, CryptoError> {
        Ok(Sealer {
            current: SealKey::from_base64(key_b64)?,
            previous: Vec::new(),
        })
    }

    /// Also open values sealed under these (older) keys.
    pub fn with_previous<'a>(
        mut self,
        keys: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, CryptoError> {
        for k in keys {
            let k = SealKey::from_base64(k)?;
            if k.id != self.current.id && !self.previous.iter().any(|p| p.id == k.id) {
                self.previous.push(k);
            }
        }
        Ok(self)
    }

    /// A fresh random key, base64 (for `rowcol` to generate one on first start).
    pub fn generate_key() -> String {
        let key = Aes256Gcm::generate_key(OsRng);
        base64::engine::general_purpose::STANDARD.encode(key)
    }

    /// The id of the key new values are sealed under.
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// Seal `plaintext` under the current key, bound to `bound_to` (the id
    /// of the row or document it belongs to).
    pub fn seal(&self, plaintext: &str, bound_to: &str) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        // Encryption with a valid key and a fresh nonce cannot fail.
        let ct = self
            .current
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: bound_to.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!(
            "{V2}{}:{}",
            self.current.id,
            base64::engine::general_purpose::STANDARD.encode(out)
        )
    }

    /// Open a value sealed by [`Sealer::seal`] with the same `bound_to`.
    pub fn open(&self, sealed: &str, bound_to: &str) -> Result<String, CryptoError> {
        let rest = sealed.strip_prefix(V2).ok_or(CryptoError::Open)?;
        let (kid, b64) = rest.split_once(':').ok_or(CryptoError::Open)?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == kid)
            .ok_or(CryptoError::Open)?;
        decrypt(&key.cipher, b64, bound_to.as_bytes())
    }

    /// Is this value sealed under the current key (nothing to re-seal)?
    pub fn is_current(&self, sealed: &str) -> bool {
        sealed
            .strip_prefix(V2)
            .and_then(|r| r.split_once(':'))
            .is_some_and(|(kid, _)| kid == self.current.id)
    }

    /// Open a value sealed before key ids and binding existed (bare base64,
    /// no associated data), under any known key: only to re-seal it.
    pub fn open_unbound_legacy(&self, sealed: &str) -> Result<String, CryptoError> {
        if sealed.starts_with(V2) {
            return Err(CryptoError::Open);
        }
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find_map(|k| decrypt(&k.cipher, sealed, b"").ok())
            .ok_or(CryptoError::Open)
    }
}

fn decrypt(cipher: &Aes256Gcm, b64: &str, aad: &[u8]) -> Result<String, CryptoError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| CryptoError::Open)?;
    if raw.len() < 12 {
        return Err(CryptoError::Open);
    }
    let (nonce, ct) = raw.split_at(12);
    let pt = cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| CryptoError::Open)?;
    String::from_utf8(pt).map_err(|_| CryptoError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::from_base64_key(&Sealer::generate_key()).unwrap()
    }

    #[test]
    fn seal_round_trips_and_detects_tampering() {
        let s = sealer();
        let sealed = s.seal("ramp_tok_secret", "conn-1");
        assert!(!sealed.contains("ramp_tok_secret"));
        assert!(sealed.starts_with(&format!("v2:{}:", s.key_id())));
        assert_eq!(s.open(&sealed, "conn-1").unwrap(), "ramp_tok_secret");
        assert!(sealer().open(&sealed, "conn-1").is_err());
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 3;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert!(s
            .open(&String::from_utf8(flipped).unwrap(), "conn-1")
            .is_err());
        assert!(!format!("{s:?}").contains(&Sealer::generate_key()[..4]));
    }

    #[test]
    fn a_sealed_value_opens_only_where_it_was_bound() {
        let s = sealer();
        let sealed = s.seal("qbo-refresh", "conn-1");
        assert!(s.open(&sealed, "conn-2").is_err());
        assert!(s.open(&sealed, "").is_err());
    }

    #[test]
    fn previous_keys_open_and_the_current_one_seals() {
        let old_key = Sealer::generate_key();
        let old = Sealer::from_base64_key(&old_key).unwrap();
        let sealed_old = old.seal("tok", "c");
        let new = Sealer::from_base64_key(&Sealer::generate_key())
            .unwrap()
            .with_previous([old_key.as_str()])
            .unwrap();
        assert_eq!(new.open(&sealed_old, "c").unwrap(), "tok");
        assert!(!new.is_current(&sealed_old));
        let resealed = new.seal("tok", "c");
        assert!(new.is_current(&resealed));
        assert!(old.open(&resealed, "c").is_err());
        assert_ne!(new.key_id(), old.key_id());
    }

    #[test]
    fn legacy_values_open_only_through_the_legacy_door() {
        let s = sealer();
        // What the previous format wrote: base64(nonce || ciphertext), no AAD.
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ct = s.current.cipher.encrypt(&nonce, b"old".as_ref()).unwrap();
        let legacy =
            base64::engine::general_purpose::STANDARD.encode([nonce.to_vec(), ct].concat());
        assert!(s.open(&legacy, "").is_err());
        assert_eq!(s.open_unbound_legacy(&legacy).unwrap(), "old");
        assert!(s.open_unbound_legacy(&s.seal("x", "")).is_err());
    }
}
