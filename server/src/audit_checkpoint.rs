//! Signed checkpoints of the audit chain. The hash chain proves entries
//! were not edited one by one, but someone with the database could rewrite
//! the whole log and re-hash it end to end. A checkpoint, signed with an
//! Ed25519 key from configuration and kept by the auditor outside RowCol,
//! names each firm's head (entry number and hash) at a moment: a rewritten
//! log no longer has that hash at that entry, and the signature cannot be
//! forged without the key.
//!
//! The key: `ROWCOL_AUDIT_SIGNING_KEY`, a base64 32-byte Ed25519 seed. The
//! sandbox derives a stable one from its encryption key; live mode without
//! it cannot sign (and says so).

use crate::config::Config;
use anyhow::{bail, Context};
use app::model::FirmId;
use app::ssr::store::{audit, firms, Db};
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};

/// The file an auditor keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointFile {
    pub version: u32,
    /// The signer's public key, base64 (to compare with the one on record).
    pub public_key: String,
    pub checkpoints: Vec<Checkpoint>,
}

/// One firm's head, signed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub firm_id: String,
    pub seq: i64,
    pub head: String,
    pub signed_at: String,
    /// Ed25519 over [`message`], base64.
    pub signature: String,
}

/// The exact bytes signed.
fn message(firm_id: &str, seq: i64, head: &str, signed_at: &str) -> Vec<u8> {
    format!("rowcol-audit-checkpoint/v1\n{firm_id}\n{seq}\n{head}\n{signed_at}\n").into_bytes()
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// The signing key, from configuration or (sandbox) derived.
pub struct Signer {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn from_config(config: &Config) -> anyhow::Result<Signer> {
        let seed: Vec<u8> = match &config.audit_signing_key {
            Some(k) => b64()
                .decode(k.trim())
                .context("ROWCOL_AUDIT_SIGNING_KEY is not base64")?,
            None if config.rails == crate::config::RailsMode::Sandbox => {
                use sha2::{Digest, Sha256};
                let secret = crate::keys::derived_sandbox_secret(config, "audit_signing")?;
                Sha256::digest(secret.as_bytes()).to_vec()
            }
            None => bail!(
                "set ROWCOL_AUDIT_SIGNING_KEY (a base64 32-byte Ed25519 seed) to sign audit checkpoints"
            ),
        };
        Self::from_seed(&seed)
    }

    pub fn from_seed(seed: &[u8]) -> anyhow::Result<Signer> {
        if seed.len() != 32 {
            bail!("the audit signing key must be 32 bytes, not {}", seed.len());
        }
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| anyhow::anyhow!("the audit signing key is not an Ed25519 seed"))?;
        Ok(Signer { pair })
    }

    pub fn public_key(&self) -> String {
        b64().encode(self.pair.public_key().as_ref())
    }

    fn sign(&self, firm_id: &str, seq: i64, head: &str, signed_at: &str) -> String {
        b64().encode(
            self.pair
                .sign(&message(firm_id, seq, head, signed_at))
                .as_ref(),
        )
    }
}

/// Why no checkpoint was signed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A broken chain is never vouched for (the message names the entry).
    #[error("{0}")]
    Broken(String),
    #[error(transparent)]
    Store(#[from] app::ssr::store::StoreError),
}

/// Sign the head of each firm whose chain re-hashes whole from its first
/// entry (a broken chain is never vouched for: that is an error naming it).
pub async fn export(
    db: &Db,
    signer: &Signer,
    only: Option<&FirmId>,
    now: DateTime<Utc>,
) -> Result<CheckpointFile, ExportError> {
    let firms = match only {
        Some(f) => vec![f.clone()],
        None => {
            let mut conn = db.acquire().await?;
            firms::all(&mut conn).await?
        }
    };
    let signed_at = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut checkpoints = Vec::new();
    for firm in firms {
        let status = audit::verify_chain_full(&db.pool, &firm).await?;
        if !status.ok {
            return Err(ExportError::Broken(format!(
                "{firm}: the chain is broken at entry {} ({}): nothing signed",
                status.broken_at.unwrap_or_default(),
                status.problem.unwrap_or_default()
            )));
        }
        let (seq, head) = {
            let mut conn = db.acquire().await?;
            audit::head(&mut conn, &firm).await?
        };
        checkpoints.push(Checkpoint {
            signature: signer.sign(firm.as_str(), seq, &head, &signed_at),
            firm_id: firm.to_string(),
            seq,
            head,
            signed_at: signed_at.clone(),
        });
    }
    Ok(CheckpointFile {
        version: 1,
        public_key: signer.public_key(),
        checkpoints,
    })
}

/// Check a checkpoint file against the database: signed by this
/// installation's key, and each firm's entry at the checkpoint still has
/// the signed hash. Returns one line per checkpoint, and whether all held.
pub async fn verify(
    db: &Db,
    signer: &Signer,
    file: &CheckpointFile,
) -> anyhow::Result<(Vec<String>, bool)> {
    let mut lines = Vec::new();
    let mut all_ok = true;
    if file.public_key != signer.public_key() {
        lines.push(format!(
            "checkpoint file: signed by another key ({}), not this installation's ({})",
            file.public_key,
            signer.public_key()
        ));
        return Ok((lines, false));
    }
    let key = b64().decode(&file.public_key).context("public_key")?;
    let public = UnparsedPublicKey::new(&ED25519, key);
    for c in &file.checkpoints {
        let signature_ok = b64().decode(&c.signature).ok().is_some_and(|sig| {
            public
                .verify(&message(&c.firm_id, c.seq, &c.head, &c.signed_at), &sig)
                .is_ok()
        });
        let verdict = if !signature_ok {
            "BROKEN: the signature does not match (the file was altered)".to_owned()
        } else {
            let firm = FirmId::parse(&c.firm_id).map_err(|e| anyhow::anyhow!("{e}"))?;
            let stored = {
                let mut conn = db.acquire().await?;
                audit::stored_hash(&mut conn, &firm, c.seq).await?
            };
            match stored {
                Some(h) if h == c.head => "ok".to_owned(),
                Some(h) => format!(
                    "BROKEN at entry {}: its hash is {h}, the signed checkpoint says {} (the log was rewritten)",
                    c.seq, c.head
                ),
                None => format!(
                    "BROKEN at entry {}: the entry is gone (the log was cut)",
                    c.seq
                ),
            }
        };
        all_ok &= verdict == "ok";
        lines.push(format!(
            "{}: checkpoint at entry {} signed {}: {verdict}",
            c.firm_id, c.seq, c.signed_at
        ));
    }
    Ok((lines, all_ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_covers_every_field() {
        let s = Signer::from_seed(&[7u8; 32]).unwrap();
        let sig = s.sign("firm_1", 12, "abc", "2026-11-28T00:00:00Z");
        let public = UnparsedPublicKey::new(&ED25519, s.pair.public_key().as_ref().to_vec());
        let raw = b64().decode(sig).unwrap();
        assert!(public
            .verify(&message("firm_1", 12, "abc", "2026-11-28T00:00:00Z"), &raw)
            .is_ok());
        for (firm, seq, head) in [
            ("firm_2", 12, "abc"),
            ("firm_1", 13, "abc"),
            ("firm_1", 12, "abd"),
        ] {
            assert!(public
                .verify(&message(firm, seq, head, "2026-11-28T00:00:00Z"), &raw)
                .is_err());
        }
        assert!(Signer::from_seed(&[1u8; 31]).is_err());
        assert!(!format!("{s:?}").contains("pair"), "the key is not printed");
    }
}
