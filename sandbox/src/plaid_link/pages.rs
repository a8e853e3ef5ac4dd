//! The Link pages (browser, server-rendered forms, no script), mounted at
//! `/plaid-link`: `GET`/`POST /hl/{opaque}`. Each link token has one
//! session; its step lives here, so a form only does what its step allows.
//!
//! Steps: pick an institution (the world's banks) → sign in (`user_good` /
//! `pass_good`) → pick an account (the accounts of the world's businesses at
//! that bank) → a public token is issued. Update mode (a token created with
//! `access_token`): sign in only, then the item's ITEM_LOGIN_REQUIRED is
//! cleared. "Exit" ends the session at any step. At the end: 303 to the
//! token's `completion_redirect_uri`, or a "You may close this window" page.

use super::{banks, issue_public_token, LINK_PASSWORD, LINK_USERNAME};
use crate::sim_state::*;
use crate::Sandbox;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use chrono::Utc;
use std::collections::HashMap;

pub(crate) fn router() -> Router<Sandbox> {
    Router::new().route("/hl/{id}", get(show).post(submit))
}

/// HTML-escape text for an element or a quoted attribute.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · Plaid Link (sandbox)</title></head><body><main>\
         <p>Plaid Link (sandbox)</p><h1>{t}</h1>{body}</main></body></html>",
        t = esc(title)
    );
    let mut res = (status, Html(html)).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res.headers_mut().insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    res
}

fn message(status: StatusCode, title: &str, text: &str) -> Response {
    page(status, title, &format!("<p>{}</p>", esc(text)))
}

const EXIT: &str =
    "<button type=\"submit\" name=\"action\" value=\"exit\" formnovalidate>Exit</button>";
const CONTINUE: &str =
    "<button type=\"submit\" name=\"action\" value=\"continue\">Continue</button>";

fn client_name_shown(t: &LinkTokenRec) -> &str {
    // Plaid shows "This Application" for a name over 30 characters.
    if t.client_name.chars().count() > 30 {
        "This Application"
    } else {
        &t.client_name
    }
}

fn institution_name(st: &SimState, id: &str) -> String {
    banks(st)
        .into_iter()
        .find(|(i, _)| i == id)
        .map(|(_, n)| n)
        .unwrap_or_else(|| id.to_owned())
}

fn institution_page(st: &SimState, t: &LinkTokenRec, error: Option<&str>) -> Response {
    let shown = t.country_codes.iter().any(|c| c == super::BANK_COUNTRY);
    let mut options = String::new();
    if shown {
        for (id, name) in banks(st) {
            options.push_str(&format!(
                "<option value=\"{}\">{}</option>",
                esc(&id),
                esc(&name)
            ));
        }
    }
    let err = error
        .map(|e| format!("<p role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page(
        status,
        "Select your bank",
        &format!(
            "<p>{} uses Plaid to connect your account.</p>{err}<form method=\"post\">\
             <label>Institution <select name=\"institution\" required>{options}</select></label> \
             {CONTINUE} {EXIT}</form>",
            esc(client_name_shown(t))
        ),
    )
}

fn credentials_page(st: &SimState, s: &LinkSessionRec, wrong: bool) -> Response {
    let bank = institution_name(st, s.institution_id.as_deref().unwrap_or(""));
    let err = if wrong {
        "<p role=\"alert\">The credentials were not correct. Please try again.</p>"
    } else {
        ""
    };
    page(
        StatusCode::OK,
        &format!("Sign in to {bank}"),
        &format!(
            "{err}<p data-testid=\"sandbox-credentials\">Sandbox: use username \
             <code>user_good</code> and password <code>pass_good</code>.</p>\
             <form method=\"post\">\
             <label>Username <input name=\"username\" autocomplete=\"off\" required></label> \
             <label>Password <input name=\"password\" type=\"password\" autocomplete=\"off\" required></label> \
             {CONTINUE} {EXIT}</form>"
        ),
    )
}

/// The accounts at `institution`: (account id, "<business> — <name> ••<mask>").
fn accounts_at(st: &SimState, institution: &str) -> Vec<(String, String, usize)> {
    st.clients
        .iter()
        .enumerate()
        .filter(|(_, c)| c.plaid.institution_id == institution)
        .map(|(ci, c)| {
            let a = &c.plaid.account;
            (
                a.account_id.clone(),
                format!("{} — {} ••{}", c.name, a.name, a.mask),
                ci,
            )
        })
        .collect()
}

fn account_page(st: &SimState, s: &LinkSessionRec, error: Option<&str>) -> Response {
    let mut options = String::new();
    for (id, text, _) in accounts_at(st, s.institution_id.as_deref().unwrap_or("")) {
        options.push_str(&format!(
            "<option value=\"{}\">{}</option>",
            esc(&id),
            esc(&text)
        ));
    }
    let err = error
        .map(|e| format!("<p role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page(
        status,
        "Select an account",
        &format!(
            "{err}<form method=\"post\">\
             <label>Account <select name=\"account\" required>{options}</select></label> \
             {CONTINUE} {EXIT}</form>"
        ),
    )
}

/// The end of a session: back to the app, or a closing page.
fn finish(t: &LinkTokenRec) -> Response {
    match &t.completion_redirect_uri {
        Some(uri) => match header::HeaderValue::from_str(uri) {
            Ok(loc) => {
                let mut res = StatusCode::SEE_OTHER.into_response();
                res.headers_mut().insert(header::LOCATION, loc);
                res.headers_mut().insert(
                    header::CACHE_CONTROL,
                    header::HeaderValue::from_static("no-store"),
                );
                res
            }
            Err(_) => done_page(),
        },
        None => done_page(),
    }
}

fn done_page() -> Response {
    message(StatusCode::OK, "All done", "You may close this window.")
}

fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Link not found",
        "This Link session does not exist.",
    )
}

fn expired() -> Response {
    message(
        StatusCode::BAD_REQUEST,
        "This link has expired",
        "Return to the application and start again.",
    )
}

/// The token of this hosted page, with its session started.
fn token_index(st: &mut SimState, id: &str) -> Option<usize> {
    let i = st
        .plaid_link
        .link_tokens
        .iter()
        .position(|t| t.hosted && t.hosted_id == id)?;
    if st.plaid_link.link_tokens[i].session.is_none() {
        let update_institution = st.plaid_link.link_tokens[i]
            .update_item
            .as_ref()
            .and_then(|item| st.clients.iter().find(|c| c.plaid.item_id == *item))
            .map(|c| c.plaid.institution_id.clone());
        let step = if update_institution.is_some() {
            LinkStep::Credentials
        } else {
            LinkStep::Institution
        };
        st.plaid_link.link_tokens[i].session = Some(LinkSessionRec {
            link_session_id: uuid::Uuid::new_v4().to_string(),
            started_at: Utc::now(),
            finished_at: None,
            step,
            institution_id: update_institution,
            exit_status: None,
            result: None,
        });
    }
    Some(i)
}

fn render_step(st: &SimState, i: usize) -> Response {
    let t = &st.plaid_link.link_tokens[i];
    let Some(s) = &t.session else {
        return not_found();
    };
    match s.step {
        LinkStep::Institution => institution_page(st, t, None),
        LinkStep::Credentials => credentials_page(st, s, false),
        LinkStep::Account => account_page(st, s, None),
        LinkStep::Finished | LinkStep::Exited => done_page(),
    }
}

fn is_open(t: &LinkTokenRec) -> bool {
    t.session
        .as_ref()
        .is_none_or(|s| !matches!(s.step, LinkStep::Finished | LinkStep::Exited))
}

async fn show(State(sb): State<Sandbox>, Path(id): Path<String>) -> Response {
    let mut st = sb.inner.state.lock().await;
    let Some(known) = st
        .plaid_link
        .link_tokens
        .iter()
        .find(|t| t.hosted && t.hosted_id == id)
    else {
        return not_found();
    };
    if is_open(known) && known.expiration <= Utc::now() {
        return expired();
    }
    let Some(i) = token_index(&mut st, &id) else {
        return not_found();
    };
    sb.persist_logged(&st).await;
    render_step(&st, i)
}

async fn submit(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return message(
            StatusCode::BAD_REQUEST,
            "Something went wrong",
            "The form could not be read.",
        );
    };
    let mut st = sb.inner.state.lock().await;
    let now = Utc::now();
    let Some(known) = st
        .plaid_link
        .link_tokens
        .iter()
        .find(|t| t.hosted && t.hosted_id == id)
    else {
        return not_found();
    };
    if !is_open(known) {
        return done_page();
    }
    if known.expiration <= now {
        return expired();
    }
    let Some(i) = token_index(&mut st, &id) else {
        return not_found();
    };
    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let Some(step) = st.plaid_link.link_tokens[i]
        .session
        .as_ref()
        .map(|s| s.step)
    else {
        return not_found();
    };
    if field("action") == "exit" {
        let status = match step {
            LinkStep::Account => "requires_account_selection",
            _ => "requires_credentials",
        };
        if let Some(s) = st.plaid_link.link_tokens[i].session.as_mut() {
            s.step = LinkStep::Exited;
            s.exit_status = Some(status.to_owned());
            s.finished_at = Some(now);
        }
        sb.persist_logged(&st).await;
        return finish(&st.plaid_link.link_tokens[i]);
    }
    let response = match step {
        LinkStep::Institution => {
            let t = &st.plaid_link.link_tokens[i];
            let shown = t.country_codes.iter().any(|c| c == super::BANK_COUNTRY);
            let chosen = field("institution");
            if !shown || !banks(&st).iter().any(|(id, _)| id == chosen) {
                return institution_page(&st, t, Some("Select one of the listed institutions."));
            }
            if let Some(s) = st.plaid_link.link_tokens[i].session.as_mut() {
                s.institution_id = Some(chosen.to_owned());
                s.step = LinkStep::Credentials;
            }
            render_step(&st, i)
        }
        LinkStep::Credentials => {
            if field("username") != LINK_USERNAME || field("password") != LINK_PASSWORD {
                let Some(s) = st.plaid_link.link_tokens[i].session.as_ref() else {
                    return not_found();
                };
                return credentials_page(&st, s, true);
            }
            match st.plaid_link.link_tokens[i].update_item.clone() {
                Some(item_id) => {
                    let Some(ci) = st.clients.iter().position(|c| c.plaid.item_id == item_id)
                    else {
                        return not_found();
                    };
                    if st.plaid_link.removed_items.contains(&item_id) {
                        return message(
                            StatusCode::BAD_REQUEST,
                            "Something went wrong",
                            "This connection no longer exists.",
                        );
                    }
                    // The user logged in again: the item is repaired.
                    let was_broken = crate::plaid::needs_login(&st, ci);
                    st.clients[ci].plaid.login_required = false;
                    st.faults.plaid_login_required.retain(|x| *x != item_id);
                    if was_broken {
                        crate::plaid_webhooks::repaired_by_update_mode(
                            &mut st,
                            ci,
                            sb.inner.clock.now(),
                        );
                    }
                    complete(&mut st, i, ci, now);
                    sb.persist_logged(&st).await;
                    finish(&st.plaid_link.link_tokens[i])
                }
                None => {
                    if let Some(s) = st.plaid_link.link_tokens[i].session.as_mut() {
                        s.step = LinkStep::Account;
                    }
                    render_step(&st, i)
                }
            }
        }
        LinkStep::Account => {
            let institution = st.plaid_link.link_tokens[i]
                .session
                .as_ref()
                .and_then(|s| s.institution_id.clone())
                .unwrap_or_default();
            let chosen = field("account");
            let Some(ci) = accounts_at(&st, &institution)
                .into_iter()
                .find(|(id, _, _)| id == chosen)
                .map(|(_, _, ci)| ci)
            else {
                let Some(s) = st.plaid_link.link_tokens[i].session.as_ref() else {
                    return not_found();
                };
                return account_page(&st, s, Some("Select one of the listed accounts."));
            };
            complete(&mut st, i, ci, now);
            sb.persist_logged(&st).await;
            return finish(&st.plaid_link.link_tokens[i]);
        }
        LinkStep::Finished | LinkStep::Exited => done_page(),
    };
    sb.persist_logged(&st).await;
    response
}

/// Finish session `i` with the item of client `ci`: a public token.
fn complete(st: &mut SimState, i: usize, ci: usize, now: chrono::DateTime<Utc>) {
    // "In update mode, this field will not have an effect" (Plaid's
    // `/link/token/create`): only `/item/webhook/update` changes an Item's URL.
    let t = &st.plaid_link.link_tokens[i];
    let webhook = if t.update_item.is_some() {
        None
    } else {
        t.webhook.clone()
    };
    let public_token = issue_public_token(st, ci, webhook, now);
    let c = &st.clients[ci];
    let result = LinkResultRec {
        public_token,
        item_id: c.plaid.item_id.clone(),
        institution_id: c.plaid.institution_id.clone(),
        institution_name: c.plaid.institution_name.clone(),
        account_id: c.plaid.account.account_id.clone(),
        account_name: c.plaid.account.name.clone(),
        account_mask: c.plaid.account.mask.clone(),
    };
    if let Some(s) = st.plaid_link.link_tokens[i].session.as_mut() {
        s.step = LinkStep::Finished;
        s.finished_at = Some(now);
        s.result = Some(result);
    }
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">O'Neil & Co</a>"),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Neil &amp; Co&lt;/a&gt;"
        );
    }
}
