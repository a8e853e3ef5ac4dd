use crate::error::AppError;
use crate::model::AuditPage;
use leptos::prelude::*;

/// Entries on one page of the audit log.
pub const PER_PAGE: i64 = 100;

/// A page of the firm's audit log, newest first, older than `before` (a
/// sequence number; the first page when empty), narrowed by client, actor
/// (a kind — `user`, `rail`, `sync`, `system` — or one actor exactly, such
/// as a person's email), action and a date range (`YYYY-MM-DD`, inclusive,
/// UTC); each entry also as a sentence. And the state of the hash chain:
/// verified incrementally (only entries after the last verified checkpoint
/// are re-hashed), or from the first entry when `full` is true.
#[server(endpoint = "audit")]
pub async fn get_audit(
    full: Option<bool>,
    #[server(default)] client_id: String,
    #[server(default)] actor: String,
    #[server(default)] action: String,
    #[server(default)] from: String,
    #[server(default)] to: String,
    #[server(default)] before: String,
) -> Result<AuditPage, AppError> {
    use crate::ssr::auth::respond;
    respond(
        ssr::page(
            full.unwrap_or(false),
            ssr::Query {
                client_id,
                actor,
                action,
                from,
                to,
                before,
            },
        )
        .await,
    )
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::PER_PAGE;
    use crate::domain::audit_words::sentence;
    use crate::error::AppError;
    use crate::model::{ActorKind, AuditEntryView, AuditPage};
    use crate::ssr::audit_filter::{self, nonempty, RawFilter};
    use crate::ssr::auth::{current_user, state};
    use crate::ssr::store::{audit, from_ms, read_models};
    use std::collections::HashMap;

    pub struct Query {
        pub client_id: String,
        pub actor: String,
        pub action: String,
        pub from: String,
        pub to: String,
        pub before: String,
    }

    pub async fn page(full: bool, q: Query) -> Result<AuditPage, AppError> {
        let user = current_user().await?;
        // One field names a kind of actor or one actor exactly.
        let actor = nonempty(Some(q.actor));
        let kind = actor.as_deref().and_then(ActorKind::parse);
        let (base, actor_kind) = audit_filter::parse(RawFilter {
            client_id: Some(q.client_id),
            action: Some(q.action),
            actor_kind: kind.map(|k| k.as_str().to_owned()),
            from: Some(q.from),
            to: Some(q.to),
        })
        .map_err(AppError::Validation)?;
        let before = match nonempty(Some(q.before)) {
            None => None,
            Some(b) => Some(b.parse::<i64>().map_err(|_| {
                AppError::Validation(format!("before must be an entry number, not {b:?}"))
            })?),
        };
        let filter = audit::PageFilter {
            base,
            actor: actor.filter(|_| kind.is_none()),
            actor_kind,
        };
        let st = state()?;
        let mut conn = st.db.read().await?;
        let rows = audit::page(&mut conn, &user.firm_id, &filter, before, PER_PAGE + 1).await?;
        let clients = read_models::client_names(&mut conn, &user.firm_id).await?;
        let people = crate::ssr::store::users::emails_of_firm(&mut conn, &user.firm_id).await?;
        drop(conn);
        let names: HashMap<String, String> = clients
            .iter()
            .map(|(id, name)| (id.to_string(), name.clone()))
            .collect();
        let name_of = |id: &str| names.get(id).cloned();
        let older = (rows.len() as i64 > PER_PAGE)
            .then(|| rows.get(PER_PAGE as usize - 1).map(|r| r.seq))
            .flatten();
        let entries = rows
            .into_iter()
            .take(PER_PAGE as usize)
            .map(|r| {
                let detail: serde_json::Value =
                    serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::Null);
                AuditEntryView {
                    seq: r.seq,
                    at: from_ms(r.at),
                    sentence: sentence(&r.actor, &r.action, &r.subject, &detail, &name_of),
                    actor_kind: ActorKind::of(&r.actor).as_str().to_owned(),
                    actor: r.actor,
                    action: r.action,
                    subject: r.subject,
                    detail: r.detail,
                    hash: r.hash,
                }
            })
            .collect();
        let chain = if full {
            audit::verify_chain_full(&st.db.pool, &user.firm_id).await?
        } else {
            audit::verify_chain(&st.db.pool, &user.firm_id).await?
        };
        Ok(AuditPage {
            entries,
            chain,
            older,
            clients,
            people,
        })
    }
}
