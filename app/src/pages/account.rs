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
        <Notifications />
    }
}

/// What reaches the person, and how: a checkbox per critical topic for
/// email and for a Slack-compatible webhook, the webhook's address (never
/// shown again once saved: it is its secret), and the latest messages.
#[component]
fn Notifications() -> impl IntoView {
    use crate::api::notify::{get_notify_settings, SaveNotifySettings};
    let save = ServerAction::<SaveNotifySettings>::new();
    let data = Resource::new(move || save.version().get(), |_| get_notify_settings());
    let query = use_query_map();
    let outcome = move || match save.value().get() {
        Some(Err(e)) => Some(("error", e.to_string())),
        Some(Ok(m)) => Some(("notice", m)),
        None => query.with(|q| {
            (q.get("saved").as_deref() == Some("notifications"))
                .then(|| ("notice", "Your notification choices are saved.".to_owned()))
        }),
    };
    view! {
        <section class="card narrow" id="notifications" aria-labelledby="notifications-title">
            <h2 id="notifications-title">"Notifications"</h2>
            <p>
                "Your " <a href="/updates">"updates page"</a>
                " lists what changed since you last looked. The items below can also reach you at once, each message once."
            </p>
            {loaded(data, move |v| {
                let mail_note = if v.mail {
                    format!("Email goes to {}.", v.email)
                } else {
                    "Email is not set up on this RowCol (ROWCOL_SMTP_URL): your email choices apply once it is.".to_owned()
                };
                view! {
                    <ActionForm action=save>
                        <fieldset>
                            <legend>"By email"</legend>
                            <p class="muted">{mail_note}</p>
                            {v.email_topics.iter().map(|(t, label, on)| view! {
                                <label class="check">
                                    <input type="checkbox" name=format!("email_{t}") value="on" checked=*on data-testid=format!("notify-email-{t}") />
                                    {label.clone()}
                                </label>
                            }).collect_view()}
                        </fieldset>
                        <fieldset>
                            <legend>"By chat webhook (Slack-compatible)"</legend>
                            <p class="muted">
                                {if v.webhook_set {
                                    "A webhook address is set. Leave the field empty to keep it."
                                } else {
                                    "No webhook address is set."
                                }}
                            </p>
                            {v.webhook_topics.iter().map(|(t, label, on)| view! {
                                <label class="check">
                                    <input type="checkbox" name=format!("webhook_{t}") value="on" checked=*on data-testid=format!("notify-webhook-{t}") />
                                    {label.clone()}
                                </label>
                            }).collect_view()}
                            <label>
                                "Webhook address (https://…)"
                                <input type="url" name="webhook_url" autocomplete="off" inputmode="url" data-testid="notify-webhook-url" />
                            </label>
                            {v.webhook_set.then(|| view! {
                                <label class="check">
                                    <input type="checkbox" name="remove_webhook" value="on" data-testid="notify-webhook-remove" />
                                    "Remove the webhook address"
                                </label>
                            })}
                        </fieldset>
                        <button type="submit" class="primary" data-testid="notify-save">"Save notification choices"</button>
                    </ActionForm>
                    {(!v.recent.is_empty()).then(|| view! {
                        <h3>"Latest messages to you"</h3>
                        <ul data-testid="notify-recent">
                            {v.recent.iter().map(|n| view! {
                                <li>
                                    {format!("{} · {} · {}", n.at.format("%Y-%m-%d %H:%M UTC"), n.channel, state_words(&n.state))}
                                    {n.last_error.clone().map(|e| view! { <div class="muted">{e}</div> })}
                                </li>
                            }).collect_view()}
                        </ul>
                    })}
                }
                    .into_any()
            })}
            {move || outcome().map(|(class, m)| view! { <p class=class role="status" data-testid="notify-outcome">{m}</p> })}
        </section>
    }
}

fn state_words(state: &str) -> &'static str {
    match state {
        "sent" => "sent",
        "queued" => "waiting to be sent (retrying)",
        "sending" => "being sent",
        "failed" => "could not be sent",
        "uncertain" => "may not have arrived (not sent again)",
        _ => "unknown",
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
