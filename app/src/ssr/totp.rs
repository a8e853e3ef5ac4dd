//! The second factor: TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30-second
//! steps, one step of clock skew either way) through `totp-rs`, and
//! recovery codes. Codes are checked against the real clock (a phone's
//! authenticator does not follow the sandbox's), and each time step is
//! accepted once per person.

use rand::RngCore;
use sha2::{Digest, Sha256};
use totp_rs::{Builder, Totp};

/// How many recovery codes a person gets (each works once).
pub const RECOVERY_CODES: usize = 10;

/// A new random secret: 160 bits, as RFC 4226 recommends.
pub fn new_secret() -> Vec<u8> {
    let mut s = vec![0u8; 20];
    rand::thread_rng().fill_bytes(&mut s);
    s
}

/// The person's TOTP.
pub fn totp(secret: &[u8], email: &str) -> Option<Totp> {
    Builder::new()
        .with_secret(secret.to_vec())
        .with_account_name(email)
        .with_issuer(Some("RowCol"))
        .build()
        .ok()
}

/// The person's secret sealed at rest (bound to their user id).
pub fn seal(sealer: &crate::ssr::crypto::Sealer, secret: &[u8], user_id: &str) -> String {
    sealer.seal(&hex::encode(secret), user_id)
}

/// The person's TOTP from their sealed secret.
pub fn open(
    sealer: &crate::ssr::crypto::Sealer,
    sealed: &str,
    user_id: &str,
    email: &str,
) -> Result<Totp, crate::error::AppError> {
    use crate::error::AppError;
    let hexed = sealer
        .open(sealed, user_id)
        .map_err(|e| AppError::internal("opening a TOTP secret", e))?;
    let secret = hex::decode(hexed).map_err(|e| AppError::internal("a TOTP secret", e))?;
    totp(&secret, email).ok_or_else(|| {
        tracing::error!("a stored TOTP secret does not make a TOTP");
        AppError::Internal
    })
}

/// What the person scans to enrol: the QR code of the `otpauth://` URL and
/// the key as text.
pub fn enrolment(t: &Totp) -> Result<crate::model::TotpEnrolment, crate::error::AppError> {
    use crate::error::AppError;
    let url = t
        .to_url()
        .map_err(|e| AppError::internal("the otpauth URL", e))?;
    Ok(crate::model::TotpEnrolment {
        qr_svg: qr_svg(&url).ok_or(AppError::Internal)?,
        secret_base32: t.secret().to_base32(),
    })
}

/// The time step a code matches at `unix_secs`, if it does.
pub fn check(totp: &Totp, code: &str, unix_secs: u64) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    totp.check(&code, unix_secs)
}

/// The real clock, for codes.
pub fn now_secs() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0)
}

/// The code an authenticator shows at `unix_secs` for the key as it was
/// shown to the person (base32): what a person types, for scripts and tests.
pub fn code_for(secret_base32: &str, email: &str, unix_secs: u64) -> Option<String> {
    let secret = totp_rs::Secret::try_from_base32(secret_base32).ok()?;
    Some(
        totp(secret.as_bytes(), email)?
            .generate(unix_secs)
            .to_string(),
    )
}

/// The enrolment QR code of an `otpauth://` URL, as SVG.
pub fn qr_svg(url: &str) -> Option<String> {
    let code = qrcode::QrCode::new(url.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

/// New recovery codes (`xxxxx-xxxxx`, 50 random bits each) and their
/// hashes (what is stored).
pub fn recovery_codes() -> (Vec<String>, Vec<String>) {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let mut c = String::with_capacity(11);
            for i in 0..10 {
                if i == 5 {
                    c.push('-');
                }
                c.push(ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char);
            }
            c
        })
        .collect();
    let hashes = codes.iter().map(|c| recovery_hash(c)).collect();
    (codes, hashes)
}

/// The stored form of a recovery code (as typed: case and spaces do not
/// matter).
pub fn recovery_hash(code: &str) -> String {
    let norm: String = code
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    hex::encode(Sha256::digest(norm.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_matches_its_step_and_only_with_its_secret() {
        let secret = new_secret();
        let t = totp(&secret, "a@b.test").unwrap();
        let at = 1_800_000_000;
        let code = t.generate(at).to_string();
        assert_eq!(check(&t, &code, at), Some(at / 30));
        assert_eq!(check(&t, &code, at + 30), Some(at / 30), "one step of skew");
        assert_eq!(check(&t, &code, at + 300), None);
        let other = totp(&new_secret(), "a@b.test").unwrap();
        assert_eq!(check(&other, &code, at), None);
        assert_eq!(check(&t, "12345", at), None);
        assert!(t.to_url().unwrap().starts_with("otpauth://totp/RowCol:"));
    }

    #[test]
    fn recovery_codes_are_random_and_hashed_as_typed() {
        let (codes, hashes) = recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert_eq!(recovery_hash(&codes[0].to_uppercase()), hashes[0]);
        assert_ne!(codes[0], codes[1]);
        assert!(qr_svg("otpauth://totp/RowCol:a?secret=ABC")
            .unwrap()
            .contains("<svg"));
    }
}
