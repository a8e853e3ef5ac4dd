//! The header: firm, navigation, the signed-in user and (sandbox only) the
//! clock control. The session resource is shared through context and
//! refetched when the clock moves, so every page sees the new date.

use crate::api::auth::{me, Logout};
use crate::api::sandbox::AdvanceClock;
use crate::error::AppError;
use crate::model::SessionUser;
use leptos::prelude::*;
use leptos_router::components::A;

/// Shared handles every page can use.
#[derive(Clone, Copy)]
pub struct Session {
    pub user: Resource<Result<Option<SessionUser>, AppError>>,
    pub advance: ServerAction<AdvanceClock>,
    pub logout: ServerAction<Logout>,
}

pub fn provide_session() {
    let advance = ServerAction::<AdvanceClock>::new();
    let logout = ServerAction::<Logout>::new();
    // Who is signed in (and the sandbox date) changes with these actions;
    // the login page refetches it itself after signing in.
    let user = Resource::new(
        move || (advance.version().get(), logout.version().get()),
        |_| me(),
    );
    provide_context(Session {
        user,
        advance,
        logout,
    });
}

pub fn use_session() -> Session {
    expect_context::<Session>()
}

impl Session {
    /// The signed-in person's role, tracked (a viewer while unknown: no
    /// page shows a control before it knows who may use it).
    pub fn role(&self) -> crate::model::Role {
        self.user
            .get()
            .and_then(|r| r.ok())
            .flatten()
            .map_or(crate::model::Role::Viewer, |u| u.role)
    }
}

#[component]
pub fn Header() -> impl IntoView {
    let session = use_session();
    let logout = session.logout;
    view! {
        <header class="topbar">
            <a class="brand" href="/">"RowCol"</a>
            <Transition fallback=|| ()>
                {move || {
                    session
                        .user
                        .get()
                        .map(|r| match r {
                            Ok(Some(u)) => {
                                let sandbox = u.sandbox;
                                let today = u.today.to_string();
                                // Viewers change nothing, the clock included:
                                // they see the date, not the control.
                                let can_advance = u.role >= crate::model::Role::Advisor;
                                // The fault page exists only on the simulators,
                                // and only admins may use it.
                                let faults_link = sandbox && u.role >= crate::model::Role::Admin;
                                view! {
                                    <nav>
                                        <A href="/">"Portfolio"</A>
                                        <A href="/approvals">
                                            "Approvals"
                                            {(u.waiting > 0).then(|| view! {
                                                <span class="badge warn" data-testid="nav-waiting" title="waiting for a second approver">
                                                    {u.waiting.to_string()}
                                                </span>
                                            })}
                                        </A>
                                        <A href="/updates">"Updates"</A>
                                        <A href="/hygiene">"Hygiene"</A>
                                        <A href="/audit">"Audit"</A>
                                        <A href="/connections">"Connections"</A>
                                        {(u.role >= crate::model::Role::Admin).then(|| view! { <A href="/users">"People"</A> })}
                                        {faults_link.then(|| view! { <A href="/simulator">"Sandbox"</A> })}
                                    </nav>
                                    <span class="firm">{u.firm_name.clone()}</span>
                                    {sandbox.then(|| view! { <SandboxControl today can_advance /> })}
                                    <a class="who" href="/account" title="Your account">{format!("{} · {}", u.email, u.role.as_str())}</a>
                                    <ActionForm action=logout attr:class="inline">
                                        <button type="submit" class="link">"Sign out"</button>
                                    </ActionForm>
                                }
                                    .into_any()
                            }
                            _ => view! { <A href="/login">"Sign in"</A> }.into_any(),
                        })
                }}
            </Transition>
        </header>
    }
}

#[component]
fn SandboxControl(today: String, can_advance: bool) -> impl IntoView {
    let advance = use_session().advance;
    let error = move || match advance.value().get() {
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    view! {
        <div class="sandbox" title="Sandbox: the simulated rails follow this clock">
            <span class="tag">"SANDBOX"</span>
            <span data-testid="sandbox-today">{today}</span>
            {can_advance
                .then(|| {
                    view! {
                        <ActionForm action=advance attr:class="inline">
                            <input
                                type="number"
                                name="days"
                                min="1"
                                max="90"
                                value="1"
                                data-testid="advance-days"
                                aria-label="Days to advance"
                            />
                            <button type="submit" data-testid="advance-clock">
                                "Advance clock"
                            </button>
                        </ActionForm>
                    }
                })}
            {move || error().map(|e| view! { <span class="error">{e}</span> })}
        </div>
    }
}

/// What a page shows when its data failed to load.
/// A page's data as every page shows it: "Loading…" until it first
/// arrives (the last data stays on screen while it reloads), then `ok`'s
/// view of it, or the error in plain words.
pub fn loaded<T, F>(data: Resource<Result<T, AppError>>, ok: F) -> impl IntoView
where
    T: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    F: Fn(T) -> AnyView + Clone + Send + Sync + 'static,
{
    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                let ok = ok.clone();
                data.get()
                    .map(move |r| match r {
                        Ok(v) => ok(v),
                        Err(e) => view! { <LoadError error=e /> }.into_any(),
                    })
            }}
        </Transition>
    }
}

#[component]
pub fn LoadError(error: AppError) -> impl IntoView {
    match error {
        AppError::Unauthenticated => {
            // Back here after signing in.
            let loc = leptos_router::hooks::use_location();
            let here = format!(
                "{}{}",
                loc.pathname.get_untracked(),
                loc.search.get_untracked()
            );
            let href = format!("/login?next={}", urlencoding_path(&here));
            view! {
                <p class="notice">"Please " <a href=href>"sign in"</a> " to continue."</p>
            }
            .into_any()
        }
        other => view! { <p class="error" role="alert">{other.to_string()}</p> }.into_any(),
    }
}

/// `s` made safe as one query value (RFC 3986 unreserved characters and
/// `/` kept, everything else percent-encoded).
fn urlencoding_path(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
