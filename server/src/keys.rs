//! The encryption key's life: where it comes from (configuration, or a file
//! in sandbox mode), and re-sealing every stored secret under the current
//! key (`rowcol rotate-key`, and at start for values sealed before values
//! were bound to their row).

use crate::config::Config;
use anyhow::Context;
use app::ssr::crypto::Sealer;
use app::ssr::store::connections::{self, SealedRow};
use app::ssr::store::{commit, sandbox_state, Db};

/// What the sandbox's sealed world is bound to.
pub const SANDBOX_STATE_AAD: &str = "sandbox_state";

/// What a separately saved part of the sandbox's world is bound to (so one
/// part's row cannot be passed off as another's or as the world).
pub fn sandbox_part_aad(part: &str) -> String {
    format!("{SANDBOX_STATE_AAD}.{part}")
}

fn key_file(config: &Config) -> std::path::PathBuf {
    std::path::Path::new(&config.data_dir).join("secret.key")
}

/// The sealer: ROWCOL_ENCRYPTION_KEY, or (sandbox only; live requires the
/// variable) a key generated once into data/secret.key. Previous keys open
/// what was sealed before a rotation.
pub fn sealer(config: &Config) -> anyhow::Result<Sealer> {
    let current = match &config.encryption_key {
        Some(k) => k.clone(),
        None => {
            let path = key_file(config);
            match std::fs::read_to_string(&path) {
                Ok(k) => k,
                Err(_) => {
                    std::fs::create_dir_all(&config.data_dir)?;
                    let k = Sealer::generate_key();
                    write_private(&path, &k, true)?;
                    k
                }
            }
        }
    };
    Sealer::from_base64_key(&current)
        .context("ROWCOL_ENCRYPTION_KEY (or data/secret.key)")?
        .with_previous(config.previous_encryption_keys.iter().map(String::as_str))
        .context("ROWCOL_PREVIOUS_ENCRYPTION_KEYS")
}

/// A sandbox secret that stays the same across restarts of the same
/// installation (derived from its encryption key and `label`), so the
/// credentials the sandbox lists for outside programs keep working.
pub fn derived_sandbox_secret(config: &Config, label: &str) -> anyhow::Result<String> {
    use sha2::{Digest, Sha256};
    let key = match &config.encryption_key {
        Some(k) => k.clone(),
        None => std::fs::read_to_string(key_file(config))?,
    };
    let digest = Sha256::digest(format!("rowcol sandbox {label}\n{}", key.trim()).as_bytes());
    Ok(format!("{label}_{}", hex::encode(&digest[..20])))
}

/// Write a key readable by the owner only.
fn write_private(path: &std::path::Path, key: &str, create_new: bool) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).mode(0o600);
    if create_new {
        o.create_new(true);
    } else {
        o.create(true).truncate(true);
    }
    o.open(path)
        .with_context(|| format!("writing {}", path.display()))?
        .write_all(key.as_bytes())?;
    Ok(())
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ResealReport {
    /// Connection rows whose values were re-sealed.
    pub rows: usize,
    /// Sealed values re-sealed (tokens, refresh tokens, webhook secrets).
    pub values: usize,
    pub sandbox_state: bool,
}

/// Re-seal stored secrets under the sealer's current key, in one
/// transaction (all or nothing). `legacy_only`: just the values written
/// before sealed values named their key and row (done at every start).
pub async fn reseal(db: &Db, sealer: &Sealer, legacy_only: bool) -> anyhow::Result<ResealReport> {
    let rows = {
        let mut conn = db.acquire().await?;
        connections::all_sealed(&mut conn).await?
    };
    let mut report = ResealReport::default();
    let mut tx = db.begin().await?;
    for old in &rows {
        let id = old.connection_id.as_str();
        let mut changed = 0;
        let mut again = |v: &Option<String>| -> anyhow::Result<Option<String>> {
            let Some(v) = v else { return Ok(None) };
            let legacy = !v.starts_with("v2:");
            if (legacy_only && !legacy) || sealer.is_current(v) {
                return Ok(Some(v.clone()));
            }
            let plain = if legacy {
                sealer.open_unbound_legacy(v)
            } else {
                sealer.open(v, id)
            }
            .map_err(|_| {
                anyhow::anyhow!(
                    "connection {id}: a sealed value opens with none of the configured keys \
                     (add the key it was sealed with to ROWCOL_PREVIOUS_ENCRYPTION_KEYS)"
                )
            })?;
            changed += 1;
            Ok(Some(sealer.seal(&plain, id)))
        };
        let new = SealedRow {
            connection_id: old.connection_id.clone(),
            token_sealed: again(&old.token_sealed)?,
            refresh_sealed: again(&old.refresh_sealed)?,
            webhook_secret_sealed: again(&old.webhook_secret_sealed)?,
        };
        if changed == 0 {
            continue;
        }
        if !connections::reseal(&mut tx, old, &new).await? {
            anyhow::bail!("connection {id} changed while re-sealing; run the command again");
        }
        report.rows += 1;
        report.values += changed;
    }
    if let Some(doc) = sandbox_state::load_rails(&mut tx).await? {
        let legacy = !doc.starts_with("v2:");
        if (!legacy_only || legacy) && !sealer.is_current(&doc) {
            let plain = if legacy {
                sealer.open_unbound_legacy(&doc)
            } else {
                sealer.open(&doc, SANDBOX_STATE_AAD)
            }
            .map_err(|_| {
                anyhow::anyhow!("the sandbox state opens with none of the configured keys")
            })?;
            sandbox_state::save_rails(
                &mut tx,
                &sealer.seal(&plain, SANDBOX_STATE_AAD),
                chrono::Utc::now(),
            )
            .await?;
            report.sandbox_state = true;
        }
    }
    for part in sandbox_state::rails_parts(&mut tx).await? {
        let part = part.as_str();
        let Some(doc) = sandbox_state::load_rails_part(&mut tx, part).await? else {
            continue;
        };
        if sealer.is_current(&doc) {
            continue;
        }
        let aad = sandbox_part_aad(part);
        let plain = sealer.open(&doc, &aad).map_err(|_| {
            anyhow::anyhow!("the sandbox's {part} data opens with none of the configured keys")
        })?;
        sandbox_state::save_rails_part(
            &mut tx,
            part,
            &sealer.seal(&plain, &aad),
            chrono::Utc::now(),
        )
        .await?;
        report.sandbox_state = true;
    }
    if !legacy_only {
        report.values += reseal_people(&mut tx, sealer).await?;
    }
    commit(tx).await?;
    Ok(report)
}

/// What the people's side stores sealed: TOTP secrets (bound to the user
/// id), webhook addresses and queued or sent messages (each bound to its
/// own row). Returns how many values were re-sealed.
async fn reseal_people(tx: &mut app::ssr::store::Tx<'_>, sealer: &Sealer) -> anyhow::Result<usize> {
    use app::ssr::store::{notify, users};
    let again = |what: &str, v: &str, aad: &str| -> anyhow::Result<Option<String>> {
        if sealer.is_current(v) {
            return Ok(None);
        }
        let plain = sealer.open(v, aad).map_err(|_| {
            anyhow::anyhow!(
                "{what}: a sealed value opens with none of the configured keys \
                 (add the key it was sealed with to ROWCOL_PREVIOUS_ENCRYPTION_KEYS)"
            )
        })?;
        Ok(Some(sealer.seal(&plain, aad)))
    };
    let mut n = 0;
    for (user, old) in users::sealed_totp(tx).await? {
        if let Some(new) = again(&format!("user {user}'s TOTP secret"), &old, &user)? {
            anyhow::ensure!(
                users::reseal_totp(tx, &user, &old, &new).await?,
                "user {user} changed while re-sealing; run the command again"
            );
            n += 1;
        }
    }
    for (user, old) in notify::sealed_webhooks(tx).await? {
        let aad = notify::webhook_aad(&user);
        if let Some(new) = again(&format!("user {user}'s webhook address"), &old, &aad)? {
            anyhow::ensure!(
                notify::reseal(tx, Some(&user), None, &old, &new).await?,
                "user {user} changed while re-sealing; run the command again"
            );
            n += 1;
        }
    }
    for (id, old) in notify::sealed_messages(tx).await? {
        let aad = notify::message_aad(&id);
        if let Some(new) = again(&format!("message {id}"), &old, &aad)? {
            anyhow::ensure!(
                notify::reseal(tx, None, Some(&id), &old, &new).await?,
                "message {id} changed while re-sealing; run the command again"
            );
            n += 1;
        }
    }
    Ok(n)
}

/// `rowcol rotate-key`: re-seal everything under the current key, or make
/// `new_key` current first (the configured key and previous keys open what
/// is stored). In sandbox mode with the key in data/secret.key, the file
/// gets the new key once the database holds nothing sealed under the old.
pub async fn rotate(config: &Config, new_key: Option<&str>) -> anyhow::Result<ResealReport> {
    let db = crate::startup::open_database(&config.database_url).await?;
    let configured = sealer(config)?;
    let (sealer, new_key) = match new_key {
        None => (configured, None),
        Some(k) => {
            let mut previous: Vec<String> = config.previous_encryption_keys.clone();
            previous.push(match &config.encryption_key {
                Some(k) => k.clone(),
                None => std::fs::read_to_string(key_file(config))?,
            });
            let s = Sealer::from_base64_key(k)
                .context("the new key")?
                .with_previous(previous.iter().map(String::as_str))?;
            (s, Some(k))
        }
    };
    let report = reseal(&db, &sealer, false).await?;
    if let (Some(k), None) = (new_key, &config.encryption_key) {
        // Keep the old key beside it until the operator is sure.
        let path = key_file(config);
        let old = path.with_extension("key.previous");
        std::fs::copy(&path, &old).with_context(|| format!("keeping {}", old.display()))?;
        let tmp = path.with_extension("key.new");
        write_private(&tmp, k, false)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(report)
}
