//! `GET /audit/export?format=csv|json`: the signed-in user's firm's audit
//! log, oldest first, streamed page by page (memory stays flat however long
//! the range), for any role, viewers included. Filters: `client_id`,
//! `action`, `actor_kind` (`user`, `rail`, `sync`, `system`), `from` and
//! `to` (dates, `YYYY-MM-DD`, inclusive, UTC). Each entry carries `seq`,
//! `at`, `actor_kind`, `actor`, `action`, `subject`, `detail`, `prev_hash`
//! and `hash`; `detail` is the text exactly as hashed, so an auditor can
//! re-hash the chain from the file.

use crate::router_state::ServerState;
use app::model::{ActorKind, FirmId};
use app::ssr::store::audit::{self, ExportFilter, ExportRow};
use app::ssr::store::Db;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use serde::Deserialize;
use tower_sessions::Session;

/// Entries read per page.
const PAGE: i64 = 1_000;

#[derive(Debug, Default, Deserialize)]
pub struct ExportQuery {
    format: Option<String>,
    client_id: Option<String>,
    action: Option<String>,
    actor_kind: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Csv,
    Json,
}

/// The query, checked: everything wrong with it is said at once, in words.
struct Export {
    format: Format,
    filter: ExportFilter,
    actor_kind: Option<ActorKind>,
}

fn parse(q: ExportQuery) -> Result<Export, String> {
    use app::ssr::audit_filter::{self, nonempty, RawFilter};
    let format = match nonempty(q.format).as_deref() {
        None | Some("csv") => Format::Csv,
        Some("json") => Format::Json,
        Some(other) => return Err(format!("format must be csv or json, not {other:?}")),
    };
    let (filter, actor_kind) = audit_filter::parse(RawFilter {
        client_id: q.client_id,
        action: q.action,
        actor_kind: q.actor_kind,
        from: q.from,
        to: q.to,
    })?;
    Ok(Export {
        format,
        filter,
        actor_kind,
    })
}

fn plain(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.to_owned(),
    )
        .into_response()
}

pub async fn export(
    State(st): State<ServerState>,
    session: Session,
    Query(q): Query<ExportQuery>,
) -> Response {
    let user = match app::ssr::auth::user_of_session(&session, &st.app.db).await {
        Ok(u) => u,
        Err(e) => {
            let status =
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return plain(status, "Sign in to export the audit log.");
        }
    };
    let export = match parse(q) {
        Ok(e) => e,
        Err(why) => return plain(StatusCode::BAD_REQUEST, &why),
    };
    let (content_type, name) = match export.format {
        Format::Csv => ("text/csv; charset=utf-8", "audit.csv"),
        Format::Json => ("application/json", "audit.json"),
    };
    let body = Body::from_stream(stream(st.app.db.clone(), user.firm_id, export));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

struct Cursor {
    db: Db,
    firm: FirmId,
    export: Export,
    after: i64,
    written: u64,
    done: bool,
}

/// The body: the opening (CSV header or `[`), one chunk per page, the
/// closing. A read that fails mid-way ends the stream with an error, so the
/// client sees a broken download, never a silently short file.
fn stream(
    db: Db,
    firm: FirmId,
    export: Export,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    let cursor = Cursor {
        db,
        firm,
        export,
        after: 0,
        written: 0,
        done: false,
    };
    futures::stream::unfold(Some(cursor), |state| async move {
        let mut c = state?;
        if c.done {
            return None;
        }
        let mut out: Vec<u8> = Vec::new();
        if c.after == 0 && c.written == 0 {
            out.extend_from_slice(match c.export.format {
                Format::Csv => b"seq,at,actor_kind,actor,action,subject,detail,prev_hash,hash\n",
                Format::Json => b"[",
            });
        }
        let page = async {
            let mut conn = c.db.read().await?;
            audit::export_page(&mut conn, &c.firm, &c.export.filter, c.after, PAGE).await
        }
        .await;
        let rows = match page {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "audit export: a page could not be read");
                return Some((Err(std::io::Error::other("audit export failed")), None));
            }
        };
        if (rows.len() as i64) < PAGE {
            c.done = true;
        }
        if let Some(last) = rows.last() {
            c.after = last.seq;
        }
        for row in rows {
            let kind = ActorKind::of(&row.actor);
            if c.export.actor_kind.is_some_and(|k| k != kind) {
                continue;
            }
            if let Err(e) = write_row(&mut out, c.export.format, &row, kind, c.written) {
                tracing::error!(error = %e, "audit export: a row could not be written");
                return Some((Err(std::io::Error::other("audit export failed")), None));
            }
            c.written += 1;
        }
        if c.done && c.export.format == Format::Json {
            out.extend_from_slice(b"]\n");
        }
        Some((Ok(Bytes::from(out)), Some(c)))
    })
}

fn write_row(
    out: &mut Vec<u8>,
    format: Format,
    row: &ExportRow,
    kind: ActorKind,
    index: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let at = app::ssr::store::from_ms(row.at).to_rfc3339_opts(SecondsFormat::Millis, true);
    match format {
        Format::Csv => {
            let mut w = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(&mut *out);
            w.write_record([
                row.seq.to_string().as_str(),
                &at,
                kind.as_str(),
                &row.actor,
                &row.action,
                &row.subject,
                &row.detail,
                &row.prev_hash,
                &row.hash,
            ])?;
            w.flush()?;
        }
        Format::Json => {
            if index > 0 {
                out.push(b',');
            }
            serde_json::to_writer(
                &mut *out,
                &serde_json::json!({
                    "seq": row.seq,
                    "at": at,
                    "actor_kind": kind.as_str(),
                    "actor": row.actor,
                    "action": row.action,
                    "subject": row.subject,
                    "detail": row.detail,
                    "prev_hash": row.prev_hash,
                    "hash": row.hash,
                }),
            )?;
        }
    }
    Ok(())
}

/// `GET /audit/checkpoint`: the signed head of the signed-in user's firm's
/// chain (after re-hashing it whole), as the file `rowcol verify-audit
/// --checkpoint` checks. Any role may take one: it is evidence, not power.
pub async fn checkpoint(State(st): State<ServerState>, session: Session) -> Response {
    let user = match app::ssr::auth::user_of_session(&session, &st.app.db).await {
        Ok(u) => u,
        Err(e) => {
            let status =
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return plain(status, "Sign in to take a checkpoint of the audit log.");
        }
    };
    let Some(signer) = &st.audit_signer else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "Checkpoints cannot be signed: ROWCOL_AUDIT_SIGNING_KEY is not configured.",
        );
    };
    let now = st.services.clock.now();
    match crate::audit_checkpoint::export(&st.app.db, signer, Some(&user.firm_id), now).await {
        Ok(file) => match serde_json::to_string_pretty(&file) {
            Ok(json) => (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"audit-checkpoint.json\"",
                    ),
                ],
                json,
            )
                .into_response(),
            Err(e) => {
                tracing::error!(error = %e, "encoding a checkpoint");
                plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on our side.",
                )
            }
        },
        Err(crate::audit_checkpoint::ExportError::Broken(why)) => {
            // A broken chain is never signed; the message names the entry.
            plain(StatusCode::CONFLICT, &why)
        }
        Err(e) => {
            tracing::error!(error = %e, "signing an audit checkpoint");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side.",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> ExportQuery {
        let mut q = ExportQuery::default();
        for (k, v) in pairs {
            let v = Some((*v).to_owned());
            match *k {
                "format" => q.format = v,
                "actor_kind" => q.actor_kind = v,
                "from" => q.from = v,
                "to" => q.to = v,
                _ => unreachable!(),
            }
        }
        q
    }

    #[test]
    fn a_bad_query_says_what_is_wrong() {
        for (pairs, says) in [
            (vec![("format", "xml")], "format must be csv or json"),
            (vec![("actor_kind", "robot")], "actor_kind must be"),
            (vec![("from", "28/11/2026")], "from must be a date"),
            (
                vec![("from", "2026-11-29"), ("to", "2026-11-28")],
                "is after to",
            ),
        ] {
            let err = parse(q(&pairs)).err().unwrap_or_default();
            assert!(err.contains(says), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn dates_cover_whole_days() {
        let e = parse(q(&[
            ("from", "2026-11-28"),
            ("to", "2026-11-28"),
            ("format", "json"),
        ]))
        .expect("valid");
        let day = 24 * 3600 * 1000;
        assert_eq!(e.filter.until_ms.unwrap() - e.filter.from_ms.unwrap(), day);
        assert!(e.format == Format::Json);
    }
}
