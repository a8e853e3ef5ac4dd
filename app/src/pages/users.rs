//! `/users`: the firm's people, for admins. Invite by email with a role (a
//! one-time link shown here, valid 72 hours), change a role, deactivate
//! (asked once more; their sessions end at once), issue a password-reset
//! link. The firm's last admin cannot be demoted or deactivated (the
//! server refuses and says why).

use crate::api::users::{
    get_users, ChangeRole, DeactivateUser, InviteUser, ResetLink, ResetTotp, SetTotpForApprovers,
};
use crate::components::layout::loaded;
use crate::model::{Role, UserView, UsersView};
use leptos::prelude::*;
use leptos_meta::Title;

const ROLES: [Role; 3] = [Role::Viewer, Role::Advisor, Role::Admin];

#[component]
pub fn UsersPage() -> impl IntoView {
    let invite = ServerAction::<InviteUser>::new();
    let role = ServerAction::<ChangeRole>::new();
    let deactivate = ServerAction::<DeactivateUser>::new();
    let reset = ServerAction::<ResetLink>::new();
    let setting = ServerAction::<SetTotpForApprovers>::new();
    let totp_reset = ServerAction::<ResetTotp>::new();
    let data = Resource::new(
        move || {
            (
                invite.version().get(),
                role.version().get(),
                deactivate.version().get(),
                reset.version().get(),
                setting.version().get(),
                totp_reset.version().get(),
            )
        },
        |_| get_users(),
    );
    // The link just issued comes back in the address (`?link=`), with or
    // without JavaScript.
    let query = leptos_router::hooks::use_query_map();
    let issued = move || {
        query
            .read()
            .get("link")
            .filter(|l| l.starts_with("/welcome?token="))
    };
    let outcome = move || {
        let err = |v: Option<Result<String, crate::error::AppError>>| match v {
            Some(Err(e)) => Some(("notice bad", e.to_string())),
            Some(Ok(m)) => Some(("notice", m)),
            None => None,
        };
        if let (Some(Err(e)), _) | (_, Some(Err(e))) = (invite.value().get(), reset.value().get()) {
            return Some(("notice bad", e.to_string()));
        }
        err(role.value().get())
            .or_else(|| err(deactivate.value().get()))
            .or_else(|| err(setting.value().get()))
            .or_else(|| err(totp_reset.value().get()))
    };
    view! {
        <Title text="People · RowCol" />
        <h1>"People"</h1>
        {move || {
            outcome().map(|(class, m)| view! { <p class=class role="status" data-testid="users-outcome">{m}</p> })
        }}
        {move || issued().map(|path| view! { <Issued path /> })}
        <section class="card">
            <h2>"Invite someone"</h2>
            <ActionForm action=invite attr:class="filters">
                <label>"Email" <input type="email" name="email" required=true data-testid="invite-email" /></label>
                <label>
                    "Role"
                    <select name="role" data-testid="invite-role">
                        {ROLES
                            .iter()
                            .map(|r| view! { <option value=r.as_str() selected=*r == Role::Advisor>{r.as_str()}</option> })
                            .collect_view()}
                    </select>
                </label>
                <button type="submit" data-testid="invite">"Create invitation link"</button>
            </ActionForm>
        </section>
        {loaded(
            data,
            move |v: UsersView| {
                let on = v.totp_for_approvers;
                view! {
                    <ActionForm action=setting attr:class="filters">
                        <input type="hidden" name="on" value=if on { "" } else { "1" } />
                        <p data-testid="totp-setting">
                            {if on {
                                "Everyone who approves payments must use two-step sign-in."
                            } else {
                                "Approvers may sign in with a password alone."
                            }}
                        </p>
                        <button type="submit" class="secondary" data-testid="toggle-totp-setting">
                            {if on { "Stop requiring it" } else { "Require two-step sign-in for approvers" }}
                        </button>
                    </ActionForm>
                    <ul class="people" aria-label="People">
                        {v
                            .users
                            .into_iter()
                            .map(|u| view! { <Person u role deactivate reset totp_reset /> })
                            .collect_view()}
                    </ul>
                    {(!v.invites.is_empty())
                        .then(|| {
                            view! {
                                <h2>"Invitations not yet accepted"</h2>
                                <ul class="people">
                                    {v
                                        .invites
                                        .into_iter()
                                        .map(|i| {
                                            view! {
                                                <li data-testid="invite-row">
                                                    {format!(
                                                        "{} as {}, invited by {}; the link works until {} UTC",
                                                        i.email,
                                                        i.role.as_str(),
                                                        i.invited_by,
                                                        i.expires_at.format("%Y-%m-%d %H:%M"),
                                                    )}
                                                </li>
                                            }
                                        })
                                        .collect_view()}
                                </ul>
                            }
                        })}
                }
                    .into_any()
            },
        )}
    }
}

/// A link just issued: shown once, to copy and send.
#[component]
fn Issued(path: String) -> impl IntoView {
    view! {
        <div class="notice" role="status" data-testid="link-issued">
            <p>
                "Send this link to the person. It works once, for 72 hours; copy the address of the link:"
            </p>
            <p>
                <a href=path.clone() data-testid="issued-link">{path.clone()}</a>
            </p>
        </div>
    }
}

#[component]
fn Person(
    u: UserView,
    role: ServerAction<ChangeRole>,
    deactivate: ServerAction<DeactivateUser>,
    reset: ServerAction<ResetLink>,
    totp_reset: ServerAction<ResetTotp>,
) -> impl IntoView {
    let uid = u.user_id.clone();
    let can_reset_totp = u.totp_on && !u.is_me;
    let current = u.role;
    let email = u.email.clone();
    let active = u.active;
    view! {
        <li class="person" data-testid="person" data-email=u.email.clone() data-active=active.to_string()>
            <p>
                <strong>{u.name.clone()}</strong>
                " · "
                {u.email.clone()}
                " "
                <span class=if u.active { "badge info" } else { "badge muted" }>
                    {if u.active { u.role.as_str() } else { "deactivated" }}
                </span>
                {u.is_me.then_some(" (you)")}
                {u.totp_on.then_some(" · two-step sign-in")}
            </p>
            {active
                .then(move || {
                    let label = format!("Role of {email}");
                    let (uid1, uid2, uid3, uid4) = (uid.clone(), uid.clone(), uid.clone(), uid.clone());
                    view! {
                        <div class="actions">
                            <ActionForm action=role attr:class="inline">
                                <input type="hidden" name="user_id" value=uid1 />
                                <select name="role" aria-label=label data-testid="role-select">
                                    {ROLES
                                        .iter()
                                        .map(|r| view! { <option value=r.as_str() selected=*r == current>{r.as_str()}</option> })
                                        .collect_view()}
                                </select>
                                <button type="submit" data-testid="change-role">"Change role"</button>
                            </ActionForm>
                            <ActionForm action=reset attr:class="inline">
                                <input type="hidden" name="user_id" value=uid2 />
                                <button type="submit" class="secondary" data-testid="reset-link">
                                    "Password reset link"
                                </button>
                            </ActionForm>
                            {can_reset_totp.then(|| view! {
                                <details class="confirm">
                                    <summary data-testid="totp-reset">"Reset two-step sign-in…"</summary>
                                    <p>"For a lost phone: they sign in with their password and set it up again. Their recovery codes stop working."</p>
                                    <ActionForm action=totp_reset attr:class="inline">
                                        <input type="hidden" name="user_id" value=uid4 />
                                        <button type="submit" class="danger" data-testid="confirm-totp-reset">"Turn it off"</button>
                                    </ActionForm>
                                </details>
                            })}
                            <details class="confirm">
                                <summary data-testid="deactivate">"Deactivate…"</summary>
                                <p>
                                    {format!(
                                        "{email} is signed out everywhere at once and cannot sign in again."
                                    )}
                                </p>
                                <ActionForm action=deactivate attr:class="inline">
                                    <input type="hidden" name="user_id" value=uid3 />
                                    <button type="submit" class="danger" data-testid="confirm-deactivate">
                                        {format!("Deactivate {email}")}
                                    </button>
                                </ActionForm>
                            </details>
                        </div>
                    }
                })}
        </li>
    }
}
