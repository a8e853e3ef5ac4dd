//! Issue #8: no plaintext access or refresh token, authorization code,
//! public token, client secret or password anywhere in RowCol's own tables
//! or its logs.
//!
//! The simulators' record of what they issued is theirs and sealed (the
//! `sandbox_state` rows): the scan opens them with the encryption key, collects
//! every secret in it, adds RowCol's own configured secrets and the demo
//! password, then reads every column of every other table (cast to text, on
//! SQLite and PostgreSQL alike) and every given log file, and fails naming
//! `table.column` (or `file:line`) with the secret's kind and a short hash,
//! never the secret itself.
//!
//! `e2e_secret_scan` is ignored by default: scripts/test.sh runs it right
//! after the debug e2e run (scripts/e2e.sh with ROWCOL_E2E_KEEP) with
//!   ROWCOL_SCAN_DATABASE_URL  the e2e database
//!   ROWCOL_SCAN_LOGS          the server log(s), comma separated
//!   ROWCOL_ENCRYPTION_KEY, ROWCOL_DEMO_PASSWORD, ROWCOL_RAMP_WEBHOOK_SECRET,
//!   ROWCOL_PLAID_SECRET (and any other configured secret) as the server had.
//! The other tests prove the scanner can fail.

use app::ssr::crypto::Sealer;
use app::ssr::store::Db;
use rowcol::keys::SANDBOX_STATE_AAD;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};

/// JSON keys in the simulators' state whose string values (at any depth
/// below) are secrets: issued tokens and codes, app and webhook secrets,
/// restricted keys, and the OAuth `state` RowCol sent (RowCol keeps only
/// its hash).
const SECRET_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "refresh",
    "prev_refresh",
    "token",
    "code",
    // (not `public_tokens`: that is the list of records, whose other
    // fields, such as the item id, are identifiers)
    "public_token",
    "link_token",
    "client_secret",
    "secret",
    "secret_key",
    "restricted_key",
    "password",
    "webhook_secret",
    "code_verifier",
    "state",
];

/// Shorter strings are identifiers or enum values, not secrets (every token
/// the simulators issue is far longer).
const MIN_SECRET_LEN: usize = 12;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Secret {
    kind: String,
    value: String,
}

impl Secret {
    fn new(kind: &str, value: &str) -> Option<Secret> {
        (value.len() >= MIN_SECRET_LEN).then(|| Secret {
            kind: kind.to_owned(),
            value: value.to_owned(),
        })
    }
    /// How a finding names the secret: its kind and a short hash.
    fn label(&self) -> String {
        let h = hex::encode(Sha256::digest(self.value.as_bytes()));
        format!("{} (sha256 {})", self.kind, &h[..12])
    }
    /// The forms it could be written in: as is, and percent-encoded.
    fn needles(&self) -> Vec<String> {
        let plain = self.value.clone();
        let encoded: String = url::form_urlencoded::byte_serialize(plain.as_bytes()).collect();
        if encoded == plain {
            vec![plain]
        } else {
            vec![plain, encoded]
        }
    }
}

/// Every secret in the simulators' state document.
fn secrets_in_state(doc: &Value) -> Vec<Secret> {
    fn strings(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            Value::Object(o) => o.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }
    fn walk(v: &Value, out: &mut Vec<Secret>) {
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    if SECRET_KEYS.contains(&k.as_str()) {
                        let mut found = Vec::new();
                        strings(x, &mut found);
                        out.extend(found.iter().filter_map(|s| Secret::new(k, s)));
                    }
                    walk(x, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, &mut out);
    out
}

/// RowCol's own configured secrets, from the environment the server had.
fn configured_secrets() -> Vec<Secret> {
    let mut out = Vec::new();
    for (var, kind) in [
        ("ROWCOL_ENCRYPTION_KEY", "encryption_key"),
        ("ROWCOL_DEMO_PASSWORD", "demo_password"),
        ("ROWCOL_ADMIN_PASSWORD", "admin_password"),
        ("ROWCOL_RAMP_WEBHOOK_SECRET", "ramp_webhook_secret"),
        ("ROWCOL_QBO_WEBHOOK_VERIFIER", "qbo_webhook_verifier"),
        ("ROWCOL_PLAID_SECRET", "plaid_secret"),
        ("ROWCOL_QBO_CLIENT_SECRET", "qbo_client_secret"),
        ("ROWCOL_RAMP_CLIENT_SECRET", "ramp_client_secret"),
        ("ROWCOL_STRIPE_SECRET_KEY", "stripe_secret_key"),
    ] {
        if let Ok(v) = std::env::var(var) {
            out.extend(Secret::new(kind, v.trim()));
        }
    }
    if let Ok(v) = std::env::var("ROWCOL_PREVIOUS_ENCRYPTION_KEYS") {
        out.extend(
            v.split(',')
                .filter_map(|k| Secret::new("previous_encryption_key", k.trim())),
        );
    }
    out
}

/// Deduplicated by value (the first kind seen names it).
fn dedup(all: Vec<Secret>) -> Vec<Secret> {
    let mut seen = BTreeSet::new();
    all.into_iter()
        .filter(|s| seen.insert(s.value.clone()))
        .collect()
}

#[derive(Default, Debug)]
struct Report {
    tables: usize,
    columns: usize,
    rows: usize,
    db_bytes: usize,
    log_files: usize,
    log_bytes: usize,
    /// `table.column` or `file:line` -> the secrets found there (labels).
    findings: BTreeMap<String, BTreeSet<String>>,
}

impl Report {
    fn check(&mut self, place: impl Fn() -> String, text: &str, secrets: &[Secret]) {
        for s in secrets {
            if s.needles().iter().any(|n| text.contains(n.as_str())) {
                self.findings.entry(place()).or_default().insert(s.label());
            }
        }
    }
    fn failure(&self) -> Option<String> {
        if self.findings.is_empty() {
            return None;
        }
        let mut msg = String::from("secrets in plaintext:\n");
        for (place, labels) in &self.findings {
            msg.push_str(&format!(
                "  {place}: {}\n",
                labels.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        Some(msg)
    }
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Every table but `sandbox_state`, with its columns and how to read each
/// one: as the hex of its bytes (text, numbers, blobs alike; a blob need
/// not be UTF-8), decoded here.
async fn tables(db: &Db) -> anyhow::Result<Vec<(String, Vec<(String, String)>)>> {
    use app::ssr::store::Backend;
    let mut conn = db.acquire().await?;
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    match db.backend {
        Backend::Sqlite => {
            let names: Vec<String> = sqlx::query_scalar(
                "select name from sqlite_master where type = 'table' order by name",
            )
            .fetch_all(&mut *conn)
            .await?;
            for t in names {
                let cols: Vec<String> =
                    sqlx::query_scalar("select name from pragma_table_info($1) order by cid")
                        .bind(&t)
                        .fetch_all(&mut *conn)
                        .await?;
                let cols: Vec<(String, String)> = cols
                    .into_iter()
                    .map(|c| {
                        let expr = format!("hex({})", quote(&c));
                        (c, expr)
                    })
                    .collect();
                out.push((t, cols));
            }
        }
        Backend::Postgres => {
            let rows = sqlx::query(
                "select table_name::text, column_name::text, data_type::text
                 from information_schema.columns
                 where table_schema = current_schema()
                 order by table_name, ordinal_position",
            )
            .fetch_all(&mut *conn)
            .await?;
            for r in rows {
                let (t, c, ty): (String, String, String) =
                    (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                let expr = if ty == "bytea" {
                    format!("encode({}, 'hex')", quote(&c))
                } else {
                    format!(
                        "encode(convert_to(cast({} as text), 'UTF8'), 'hex')",
                        quote(&c)
                    )
                };
                match out.last_mut() {
                    Some((last, cols)) if *last == t => cols.push((c, expr)),
                    _ => out.push((t, vec![(c, expr)])),
                }
            }
        }
    }
    out.retain(|(t, _)| t != "sandbox_state");
    Ok(out)
}

async fn scan_database(db: &Db, secrets: &[Secret], report: &mut Report) -> anyhow::Result<()> {
    for (table, cols) in tables(db).await? {
        report.tables += 1;
        report.columns += cols.len();
        if cols.is_empty() {
            continue;
        }
        let select = cols
            .iter()
            .map(|(_, e)| e.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut conn = db.acquire().await?;
        let rows = sqlx::query(&format!("select {select} from {}", quote(&table)))
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            report.rows += 1;
            for (i, (col, _)) in cols.iter().enumerate() {
                let v: Option<String> = row.try_get(i)?;
                let Some(v) = v else { continue };
                let bytes = hex::decode(v.trim())?;
                report.db_bytes += bytes.len();
                let v = String::from_utf8_lossy(&bytes);
                report.check(|| format!("{table}.{col}"), &v, secrets);
            }
        }
    }
    Ok(())
}

fn scan_log(path: &std::path::Path, secrets: &[Secret], report: &mut Report) -> anyhow::Result<()> {
    let bytes = std::fs::read(path)?;
    report.log_files += 1;
    report.log_bytes += bytes.len();
    let text = String::from_utf8_lossy(&bytes);
    for (n, line) in text.lines().enumerate() {
        report.check(|| format!("{}:{}", path.display(), n + 1), line, secrets);
    }
    Ok(())
}

/// The simulators' sealed state, opened: the document and every part saved
/// apart (each client's data, Stripe's), as one array to search.
async fn sandbox_document(db: &Db, sealer: &Sealer) -> anyhow::Result<Option<Value>> {
    use app::ssr::store::sandbox_state;
    let mut conn = db.acquire().await?;
    let Some(sealed) = sandbox_state::load_rails(&mut conn).await? else {
        return Ok(None);
    };
    let json = sealer
        .open(&sealed, SANDBOX_STATE_AAD)
        .map_err(|_| anyhow::anyhow!("the sandbox state does not open with the given key"))?;
    let mut all = vec![serde_json::from_str(&json)?];
    for part in sandbox_state::rails_parts(&mut conn).await? {
        let Some(sealed) = sandbox_state::load_rails_part(&mut conn, &part).await? else {
            continue;
        };
        let json = sealer
            .open(&sealed, &rowcol::keys::sandbox_part_aad(&part))
            .map_err(|_| {
                anyhow::anyhow!("the sandbox's {part} does not open with the given key")
            })?;
        all.push(serde_json::from_str(&json)?);
    }
    Ok(Some(Value::Array(all)))
}

/// Every value RowCol holds sealed in `rail_connection`, opened: each must
/// be one the scan searches for, or the scan would miss its plaintext.
async fn held_secrets(db: &Db, sealer: &Sealer) -> anyhow::Result<Vec<String>> {
    let mut conn = db.acquire().await?;
    let rows = app::ssr::store::connections::all_sealed(&mut conn).await?;
    let mut out = Vec::new();
    for r in rows {
        for v in [&r.token_sealed, &r.refresh_sealed, &r.webhook_secret_sealed]
            .into_iter()
            .flatten()
        {
            let plain = sealer.open(v, &r.connection_id).map_err(|_| {
                anyhow::anyhow!("a sealed value of {} does not open", r.connection_id)
            })?;
            out.push(plain);
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------ tests

#[test]
fn every_kind_of_simulator_secret_is_collected() {
    let doc = serde_json::json!({
        "clients": [{
            "qbo": {"realm_id": "9130357992211234", "access_token": "qbo_sbx_aaaaaaaaaaaaaaaa"},
            "plaid": {"item_id": "item-1", "access_token": "access-sandbox-bbbbbbbbbbbb"}
        }],
        "oauth": {
            "apps": {"qbo": {"name": "QBO", "client_id": "qbo-client", "secret": "app-secret-cccccccccccc"}},
            "stripe_accounts": [{"id": "acct_1", "restricted_key": "rk_test_dddddddddddd"}],
            "grants": [{
                "access": [{"token": "grant-access-eeeeeeeeeeee", "expires_at": "2026-11-28T00:00:00Z"}],
                "refresh": "grant-refresh-ffffffffffff",
                "prev_refresh": [{"token": "grant-prev-gggggggggggg"}],
                "scope": "com.intuit.quickbooks.accounting"
            }],
            "pending": [{"state": "oauth-state-hhhhhhhhhhhh", "redirect_uri": "http://127.0.0.1/cb"}],
            "codes": [{"code": "auth-code-iiiiiiiiiiii", "redirect_uri": "http://127.0.0.1/cb"}]
        },
        "plaid_link": {
            "link_tokens": [{"link_token": "link-sandbox-jjjjjjjjjjjj", "session": {"step": "finished",
                "result": {"public_token": "public-sandbox-kkkkkkkkkkkk"}}}],
            "public_tokens": [{"public_token": "public-sandbox-llllllllllll", "used": true}],
            "access_tokens": [{"access_token": "access-sandbox-mmmmmmmmmmmm"}]
        },
        "ramp_webhook_subs": {"subs": [{"secret": "0123456789abcdef0123", "status": "enabled"}]}
    });
    let found: BTreeSet<String> = secrets_in_state(&doc)
        .into_iter()
        .map(|s| s.value)
        .collect();
    for want in [
        "qbo_sbx_aaaaaaaaaaaaaaaa",
        "access-sandbox-bbbbbbbbbbbb",
        "app-secret-cccccccccccc",
        "rk_test_dddddddddddd",
        "grant-access-eeeeeeeeeeee",
        "grant-refresh-ffffffffffff",
        "grant-prev-gggggggggggg",
        "oauth-state-hhhhhhhhhhhh",
        "auth-code-iiiiiiiiiiii",
        "link-sandbox-jjjjjjjjjjjj",
        "public-sandbox-kkkkkkkkkkkk",
        "public-sandbox-llllllllllll",
        "access-sandbox-mmmmmmmmmmmm",
        "0123456789abcdef0123",
    ] {
        assert!(found.contains(want), "not collected: {want}");
    }
    // Identifiers, scopes, URLs and enum values are not secrets.
    for not in [
        "9130357992211234",
        "qbo-client",
        "com.intuit.quickbooks.accounting",
        "http://127.0.0.1/cb",
        "enabled",
    ] {
        assert!(!found.contains(not), "collected a non-secret: {not}");
    }
}

/// The scanner fails on a token planted in a table (under any column,
/// plain or percent-encoded) and in a log, names the place, and never
/// prints the secret; a clean database and log pass.
#[tokio::test]
async fn the_scanner_catches_a_planted_token() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/scan.db", tmp.path().display());
    let db = rowcol::startup::open_database(&url).await.expect("db");
    let key = Sealer::generate_key();
    let sealer = Sealer::from_base64_key(&key).expect("key");
    let token = "qbo_sbx_planted1234567890/+=";
    let doc = serde_json::json!({"clients": [{"qbo": {"access_token": token}}]});
    {
        let mut conn = db.acquire().await.expect("conn");
        app::ssr::store::sandbox_state::save_rails(
            &mut conn,
            &sealer.seal(&doc.to_string(), SANDBOX_STATE_AAD),
            chrono::Utc::now(),
        )
        .await
        .expect("save state");
    }
    let opened = sandbox_document(&db, &sealer)
        .await
        .expect("open")
        .expect("document");
    let secrets = dedup(secrets_in_state(&opened));
    assert_eq!(secrets.len(), 1);

    let log = tmp.path().join("server.log");
    std::fs::write(
        &log,
        "INFO starting\nINFO request path=/connect/qbo/callback\n",
    )
    .expect("log");

    // Clean: the sealed state itself is out of scope.
    let mut clean = Report::default();
    scan_database(&db, &secrets, &mut clean)
        .await
        .expect("scan");
    scan_log(&log, &secrets, &mut clean).expect("scan log");
    assert!(clean.failure().is_none(), "{:?}", clean.failure());
    assert!(
        clean.tables > 10 && clean.columns > clean.tables,
        "{clean:?}"
    );
    assert!(
        !clean.findings.contains_key("sandbox_state.state"),
        "sandbox_state is out of scope"
    );

    // Planted: in plaintext in one table, percent-encoded in another, and
    // in the log.
    let encoded: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    assert_ne!(encoded, token);
    {
        let mut conn = db.acquire().await.expect("conn");
        sqlx::query("create table planted_a (id integer primary key, note text, blob_col blob)")
            .execute(&mut *conn)
            .await
            .expect("create");
        sqlx::query("insert into planted_a (id, note) values (1, $1)")
            .bind(format!("exchanged; token={token} ok"))
            .execute(&mut *conn)
            .await
            .expect("plant");
        sqlx::query("create table planted_b (url text)")
            .execute(&mut *conn)
            .await
            .expect("create");
        sqlx::query("insert into planted_b (url) values ($1)")
            .bind(format!("https://x.test/cb?access_token={encoded}"))
            .execute(&mut *conn)
            .await
            .expect("plant");
    }
    std::fs::write(
        &log,
        format!("INFO starting\nDEBUG request uri=/connect/qbo/callback?code={token}\n"),
    )
    .expect("log");
    let mut dirty = Report::default();
    scan_database(&db, &secrets, &mut dirty)
        .await
        .expect("scan");
    scan_log(&log, &secrets, &mut dirty).expect("scan log");
    let msg = dirty.failure().expect("the planted token must be caught");
    assert!(msg.contains("planted_a.note"), "{msg}");
    assert!(msg.contains("planted_b.url"), "{msg}");
    assert!(msg.contains("server.log:2"), "{msg}");
    assert!(msg.contains("access_token (sha256 "), "{msg}");
    assert!(
        !msg.contains(token) && !msg.contains(&encoded),
        "the report leaks the secret"
    );
    assert_eq!(dirty.findings.len(), 3, "{msg}");
}

#[tokio::test]
#[ignore = "run by scripts/test.sh after the debug e2e run (see the module docs)"]
async fn e2e_secret_scan() {
    let url = std::env::var("ROWCOL_SCAN_DATABASE_URL")
        .expect("ROWCOL_SCAN_DATABASE_URL: the e2e run's database");
    let logs: Vec<std::path::PathBuf> = std::env::var("ROWCOL_SCAN_LOGS")
        .expect("ROWCOL_SCAN_LOGS: the e2e run's server log(s), comma separated")
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().into())
        .collect();
    let key = std::env::var("ROWCOL_ENCRYPTION_KEY")
        .expect("ROWCOL_ENCRYPTION_KEY: the key the e2e server ran with");
    let sealer = Sealer::from_base64_key(key.trim())
        .expect("ROWCOL_ENCRYPTION_KEY")
        .with_previous(
            std::env::var("ROWCOL_PREVIOUS_ENCRYPTION_KEYS")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty()),
        )
        .expect("ROWCOL_PREVIOUS_ENCRYPTION_KEYS");
    assert!(!logs.is_empty(), "no log to scan");

    let db = Db::connect(&url)
        .await
        .expect("connect to the e2e database");
    let doc = sandbox_document(&db, &sealer)
        .await
        .expect("sandbox state")
        .expect("the e2e database has no sandbox state (was it a sandbox-mode run?)");
    let from_state = secrets_in_state(&doc);
    let mut secrets = from_state.clone();
    secrets.extend(configured_secrets());
    let secrets = dedup(secrets);

    // Every value RowCol holds sealed is one the scan looks for.
    let known: BTreeSet<&str> = secrets.iter().map(|s| s.value.as_str()).collect();
    let held = held_secrets(&db, &sealer)
        .await
        .expect("opening rail_connection");
    let unknown = held.iter().filter(|h| !known.contains(h.as_str())).count();
    assert_eq!(
        unknown, 0,
        "{unknown} of the {} secrets RowCol holds are not in the simulators' state: the scan would not see them",
        held.len()
    );

    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &secrets {
        *kinds.entry(s.kind.as_str()).or_default() += 1;
    }
    for must in ["access_token", "demo_password", "encryption_key"] {
        assert!(
            kinds.contains_key(must),
            "no {must} among the secrets: {kinds:?}"
        );
    }

    let mut report = Report::default();
    scan_database(&db, &secrets, &mut report)
        .await
        .expect("scanning the database");
    for log in &logs {
        scan_log(log, &secrets, &mut report)
            .unwrap_or_else(|e| panic!("reading {}: {e}", log.display()));
    }
    println!(
        "secret scan: {} secrets ({} from the simulators' state, {} held sealed by RowCol; by kind: {:?}) \
         searched in {} tables, {} columns, {} rows, {} bytes of the database and {} log file(s), {} bytes",
        secrets.len(),
        dedup(from_state).len(),
        held.len(),
        kinds,
        report.tables,
        report.columns,
        report.rows,
        report.db_bytes,
        report.log_files,
        report.log_bytes,
    );
    if let Some(msg) = report.failure() {
        panic!("{msg}");
    }
    assert!(report.tables > 10 && report.rows > 0, "{report:?}");
}
