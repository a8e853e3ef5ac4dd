//! `/account`: one's own password and two-step sign-in (TOTP: scan the QR
//! code, confirm with a code, keep the recovery codes shown once).

use crate::api::users::{totp_fresh_codes, totp_pending, ChangePassword, TotpConfirm, TotpStart};
use crate::components::layout::loaded;
use crate::model::TotpEnrolment;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let start = ServerAction::<TotpStart>::new();
    let confirm = ServerAction::<TotpConfirm>::new();
    let outcome = move || match change.value().get() {
        Some(Err(e)) => Some(("error", e.to_string())),
        Some(Ok(m)) => Some(("notice", m)),
        None => None,
    };
    let query = use_query_map();
    let step = move || {
        query.with(|q| {
            if q.get("codes").is_some() {
                "codes"
            } else if q.get("enrol").is_some() {
                "enrol"
            } else {
                ""
            }
        })
    };
    let totp_error = move || match (start.value().get(), confirm.value().get()) {
        (Some(Err(e)), _) | (_, Some(Err(e))) => Some(e.to_string()),
        _ => None,
    };
    view! {
        <Title text="Your account · RowCol" />
        <section class="card narrow">
            <h1>"Change your password"</h1>
            <ActionForm action=change>
                <label>
                    "Current password"
                    <input type="password" name="current" required=true autocomplete="current-password" data-testid="current-password" />
                </label>
                <label>
                    "New password (at least 12 characters)"
                    <input type="password" name="new_password" required=true minlength="12" autocomplete="new-password" data-testid="new-password" />
                </label>
                <button type="submit" class="primary" data-testid="change-password">"Change password"</button>
            </ActionForm>
            {move || outcome().map(|(class, m)| view! { <p class=class role="status" data-testid="account-outcome">{m}</p> })}
        </section>
        <section class="card narrow">
            <h2>"Two-step sign-in"</h2>
            <p>
                "After your password, RowCol asks for a code from an authenticator app on your phone. Admins must use it in live mode; your firm may ask it of everyone who approves payments."
            </p>
            // Each step comes back in the address (`?enrol=1`, then
            // `?codes=1`), with or without JavaScript.
            {move || {
                if step() == "codes" {
                    view! { <FreshCodes /> }.into_any()
                } else if step() == "enrol" {
                    view! { <Enrol confirm /> }.into_any()
                } else {
                    view! {
                        <ActionForm action=start>
                            <button type="submit" data-testid="totp-start">"Set up two-step sign-in"</button>
                        </ActionForm>
                    }
                        .into_any()
                }
            }}
            {move || totp_error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </section>
    }
}

/// The QR code of the enrolment under way, and the confirmation.
#[component]
fn Enrol(confirm: ServerAction<TotpConfirm>) -> impl IntoView {
    let pending = Resource::new(|| (), |_| totp_pending());
    loaded(pending, move |e: Option<TotpEnrolment>| {
        match e {
        None => view! {
            <p class="notice">"Two-step sign-in is on, or no setup is under way."</p>
        }
        .into_any(),
        Some(e) => view! {
            <p>"Scan this code with your authenticator app, then enter the code it shows."</p>
            <div class="qr" inner_html=e.qr_svg role="img" aria-label="QR code to add RowCol to an authenticator app"></div>
            <p class="muted">
                "Or type this key into the app: " <code data-testid="totp-secret">{e.secret_base32}</code>
            </p>
            <ActionForm action=confirm>
                <label>
                    "Code from the app"
                    <input type="text" name="code" required=true inputmode="numeric" autocomplete="one-time-code" data-testid="totp-code" />
                </label>
                <button type="submit" class="primary" data-testid="totp-confirm">"Turn on"</button>
            </ActionForm>
        }
        .into_any(),
    }
    })
}

/// The recovery codes just made: shown this once.
#[component]
fn FreshCodes() -> impl IntoView {
    let codes = Resource::new(|| (), |_| totp_fresh_codes());
    loaded(codes, |codes: Vec<String>| {
        if codes.is_empty() {
            return view! {
                <p class="notice" data-testid="totp-on">
                    "Two-step sign-in is on. The recovery codes were shown once already."
                </p>
            }
            .into_any();
        }
        view! {
            <p class="notice" role="status" data-testid="totp-on">
                "Two-step sign-in is on. Keep these recovery codes somewhere safe: each signs you in once instead of a code, and they are not shown again."
            </p>
            <ul class="codes" data-testid="recovery-codes">
                {codes.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view()}
            </ul>
        }
        .into_any()
    })
}
