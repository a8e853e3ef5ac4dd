//! The `rowcol` commands.

use crate::config::{Cli, Command};
use crate::startup::{open_database, Application};
use app::model::Role;
use app::ssr::crypto::hash_password;
use app::ssr::store::users::{self, NewUser};
use app::ssr::store::{audit, commit, firms};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            open_database(&config.database_url).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::CreateFirm {
            name,
            admin_email,
            admin_password,
        } => create_firm(&config, &name, &admin_email, &admin_password).await,
        Command::RotateKey { new_key } => rotate_key(&config, new_key.as_deref()).await,
        Command::AddUser {
            firm,
            email,
            name,
            role,
            password,
        } => add_user(&config, &firm, &email, &name, &role, &password).await,
        Command::VerifyAudit {
            incremental,
            checkpoint,
        } => verify_audit(&config, incremental, checkpoint.as_deref()).await,
        Command::AuditCheckpoint { out } => audit_checkpoint(&config, out.as_deref()).await,
    }
}

/// `rowcol audit-checkpoint`: sign every firm's chain head.
async fn audit_checkpoint(
    config: &crate::config::Config,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use crate::audit_checkpoint::{export, Signer};
    let signer = Signer::from_config(config)?;
    let db = open_database(&config.database_url).await?;
    let file = export(&db, &signer, None, chrono::Utc::now()).await?;
    let json = serde_json::to_string_pretty(&file)?;
    match out {
        Some(path) => {
            std::fs::write(path, json + "\n")?;
            println!(
                "signed {} firm head(s) into {} (public key {})",
                file.checkpoints.len(),
                path.display(),
                file.public_key
            );
        }
        None => println!("{json}"),
    }
    Ok(())
}

/// `rowcol serve` (the default): the app on its address until Ctrl-C.
async fn serve(config: crate::config::Config) -> anyhow::Result<()> {
    tracing::info!(?config, "starting");
    let listener = tokio::net::TcpListener::bind(&config.addr).await?;
    // Serve only this build's own bundle (a mismatched one never
    // hydrates); checked before anything touches the database.
    crate::site::check_bundle(
        &crate::startup::leptos_options(listener.local_addr()?),
        app::BUILD_STAMP,
    )?;
    // A password the operator chose is theirs already: never echo it
    // into the log (issue #8's secret scan reads the logs). Only a
    // generated one is printed, or nobody could sign in.
    let chosen_password = config.demo_password.is_some();
    let app = Application::build(config, listener).await?;
    println!("RowCol is listening on http://{}", app.addr);
    if let Some(pw) = &app.demo_password {
        println!("Sandbox mode. Sign in as advisor@northwind.test, admin@northwind.test or viewer@northwind.test");
        if chosen_password {
            println!("with the password set in ROWCOL_DEMO_PASSWORD");
        } else {
            println!("with the password: {pw}");
        }
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = tx.send(true);
    });
    app.run(rx).await
}

/// `rowcol create-firm`: a firm and its first admin.
async fn create_firm(
    config: &crate::config::Config,
    name: &str,
    admin_email: &str,
    admin_password: &str,
) -> anyhow::Result<()> {
    if admin_password.len() < 12 {
        anyhow::bail!("the admin password must be at least 12 characters");
    }
    let db = open_database(&config.database_url).await?;
    let now = chrono::Utc::now();
    let hash = hash_password(admin_password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let email = admin_email.trim().to_ascii_lowercase();
    let mut tx = db.begin().await?;
    let firm = firms::create(
        &mut tx,
        name,
        "rowcol:cli",
        serde_json::json!({ "name": name, "admin": admin_email }),
        now,
    )
    .await?;
    users::create(
        &mut tx,
        &NewUser {
            firm: &firm,
            email: &email,
            name: &email,
            role: Role::Admin,
            password_hash: &hash,
        },
        now,
    )
    .await?;
    commit(tx).await?;
    println!("created firm {firm} with admin {admin_email}");
    Ok(())
}

/// `rowcol rotate-key`: re-seal every sealed value under a new key.
async fn rotate_key(config: &crate::config::Config, new_key: Option<&str>) -> anyhow::Result<()> {
    let r = crate::keys::rotate(config, new_key).await?;
    println!(
        "re-sealed {} value(s) in {} connection(s){}",
        r.values,
        r.rows,
        if r.sandbox_state {
            " and the sandbox state"
        } else {
            ""
        }
    );
    if new_key.is_some() && config.encryption_key.is_some() {
        println!("now set ROWCOL_ENCRYPTION_KEY to the new key on every instance");
    }
    Ok(())
}

/// `rowcol add-user`: a user in an existing firm, audited.
async fn add_user(
    config: &crate::config::Config,
    firm: &str,
    email: &str,
    name: &str,
    role: &str,
    password: &str,
) -> anyhow::Result<()> {
    let role = Role::parse(role)
        .ok_or_else(|| anyhow::anyhow!("--role must be admin, advisor or viewer"))?;
    if password.len() < 12 {
        anyhow::bail!("the password must be at least 12 characters");
    }
    let db = open_database(&config.database_url).await?;
    let now = chrono::Utc::now();
    let hash = hash_password(password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let email = email.trim().to_ascii_lowercase();
    let mut tx = db.begin().await?;
    let firm_id = firms::find_by_name(&mut tx, firm)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no firm named {firm:?}"))?;
    users::create(
        &mut tx,
        &NewUser {
            firm: &firm_id,
            email: &email,
            name,
            role,
            password_hash: &hash,
        },
        now,
    )
    .await?;
    audit::record(
        &mut tx,
        &firm_id,
        now,
        audit::Entry {
            actor: "rowcol:cli",
            action: "user.created",
            subject: &email,
            detail: serde_json::json!({ "role": role.as_str() }),
        },
    )
    .await?;
    commit(tx).await?;
    println!("added {email} ({}) to {firm}", role.as_str());
    Ok(())
}

/// `rowcol verify-audit`: re-hash every firm's chain (strictest by default;
/// `--incremental` trusts each firm's last verified checkpoint).
async fn verify_audit(
    config: &crate::config::Config,
    incremental: bool,
    checkpoint: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let db = open_database(&config.database_url).await?;
    let all = {
        let mut conn = db.acquire().await?;
        firms::all(&mut conn).await?
    };
    let mut broken = Vec::new();
    for f in all {
        let status = if incremental {
            audit::verify_chain(&db.pool, &f).await?
        } else {
            audit::verify_chain_full(&db.pool, &f).await?
        };
        let verdict = match (&status.broken_at, &status.problem) {
            _ if status.ok => "ok".to_owned(),
            (Some(at), Some(problem)) => format!("BROKEN at entry {at}: {problem}"),
            (Some(at), None) => format!("BROKEN at entry {at}"),
            (None, _) => "BROKEN".to_owned(),
        };
        println!("{f}: {} entries, {verdict}", status.entries);
        if !status.ok {
            broken.push(format!("{f}: {verdict}"));
        }
    }
    if incremental {
        println!(
            "(incremental: entries up to each firm's last verified checkpoint were not re-hashed)"
        );
    }
    if let Some(path) = checkpoint {
        use crate::audit_checkpoint::{verify, CheckpointFile, Signer};
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let file: CheckpointFile = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a checkpoint file: {e}", path.display()))?;
        let (lines, ok) = verify(&db, &Signer::from_config(config)?, &file).await?;
        for l in &lines {
            println!("{l}");
        }
        if !ok {
            broken.extend(lines.into_iter().filter(|l| !l.ends_with(": ok")));
        }
    }
    if !broken.is_empty() {
        anyhow::bail!("{} broken chain(s): {}", broken.len(), broken.join("; "));
    }
    Ok(())
}
