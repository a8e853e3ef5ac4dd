use crate::error::AppError;
use crate::model::SandboxStatus;
use leptos::prelude::*;

/// Advance the sandbox clock by `days` (1–90): the simulated rails pay what
/// falls due and send their webhooks. Not available in live mode.
#[server(endpoint = "sandbox/advance")]
pub async fn advance_clock(days: String) -> Result<SandboxStatus, AppError> {
    use crate::ssr::auth::{current_user, respond, state};
    respond(
        async {
            // Moving the clock pays bills and moves money in the simulated
            // world: a state change like any other, so viewers may not.
            current_user().await?.require(crate::model::Role::Advisor)?;
            let st = state()?;
            let control = st.sandbox.clone().ok_or(AppError::NotFound)?;
            let days: u32 = days
                .trim()
                .parse()
                .ok()
                .filter(|d| (1..=90).contains(d))
                .ok_or_else(|| {
                    AppError::Validation("Days must be a whole number from 1 to 90.".into())
                })?;
            control.advance_days(days).await.map_err(|e| {
                tracing::error!(error = %e, "sandbox advance failed");
                AppError::Internal
            })
        }
        .await,
    )
}

/// Every simulator fault with its current value (admins only; on the
/// simulators only).
#[server(endpoint = "sandbox/faults")]
pub async fn get_faults() -> Result<crate::model::FaultsView, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::view().await)
}

/// Set one fault (`value` as the page shows it; empty clears it). Admins
/// only, on the simulators only; audited as `sandbox.fault_set`.
#[server(endpoint = "sandbox/faults/set")]
pub async fn set_fault(key: String, value: String) -> Result<crate::model::FaultsView, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::set(&key, &value).await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use crate::error::AppError;
    use crate::model::*;
    use crate::ssr::auth::{current_user, state, CurrentUser};
    use crate::ssr::ports::SandboxControl;
    use crate::ssr::store::audit::{self, Entry};
    use crate::ssr::store::{commit, connections, read_models};
    use serde_json::{json, Value};
    use std::sync::Arc;

    pub const LIVE_ONLY: &str =
        "Fault injection is only on the simulators: RowCol is running against live rails.";

    /// The admin and the simulators, or why not. The role is checked
    /// first, so nobody but an admin learns which rails RowCol runs on.
    async fn admin_on_simulators() -> Result<(CurrentUser, Arc<dyn SandboxControl>), AppError> {
        let user = current_user().await?;
        user.require(Role::Admin)?;
        let control = state()?
            .sandbox
            .clone()
            .ok_or_else(|| AppError::Conflict(LIVE_ONLY.into()))?;
        Ok((user, control))
    }

    fn port(e: crate::ssr::ports::PortError) -> AppError {
        AppError::Validation(e.to_string())
    }

    pub async fn view() -> Result<FaultsView, AppError> {
        let (user, control) = admin_on_simulators().await?;
        let doc = control.faults().await.map_err(port)?;
        render(&user, &doc).await
    }

    async fn render(user: &CurrentUser, doc: &Value) -> Result<FaultsView, AppError> {
        let faults = FAULTS
            .iter()
            .map(|s| {
                let v = doc.get(s.key).unwrap_or(&Value::Null);
                let value = show(s.kind, v);
                FaultRow {
                    key: s.key.into(),
                    group: s.group.into(),
                    kind: s.kind,
                    explain: s.explain.into(),
                    set: match s.kind {
                        FaultKind::OptionalDays => !value.is_empty(),
                        _ => !(value.is_empty() || value == "0" || value == "off"),
                    },
                    value,
                }
            })
            .collect();
        let st = state()?;
        let mut conn = st.db.read().await?;
        let names = read_models::client_names(&mut conn, &user.firm_id).await?;
        let rows = connections::list_for_firm(&mut conn, &user.firm_id).await?;
        let plaid_items = names
            .into_iter()
            .filter_map(|(id, name)| {
                rows.iter()
                    .find(|c| c.client_id == id.as_str() && c.rail == "plaid")
                    .map(|c| (name, c.external_id.clone()))
            })
            .collect();
        Ok(FaultsView {
            faults,
            plaid_items,
        })
    }

    /// A value as the page shows it and as it is typed back.
    fn show(kind: FaultKind, v: &Value) -> String {
        match kind {
            FaultKind::Count => v.as_u64().unwrap_or(0).to_string(),
            FaultKind::Switch => if v.as_bool() == Some(true) {
                "on"
            } else {
                "off"
            }
            .into(),
            FaultKind::OptionalDays => v.as_u64().map(|d| d.to_string()).unwrap_or_default(),
            FaultKind::Statuses | FaultKind::ItemIds | FaultKind::ReturnCodes => v
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
            FaultKind::RailFaults => v
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|f| {
                            let mut s = format!(
                                "{}:{}",
                                f["rail"].as_str().unwrap_or("?"),
                                f["status"].as_u64().unwrap_or(0)
                            );
                            for part in ["method", "path"] {
                                if let Some(p) = f[part].as_str() {
                                    s.push(':');
                                    s.push_str(p);
                                }
                            }
                            s
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
        }
    }

    fn items(value: &str) -> impl Iterator<Item = &str> {
        value.split(',').map(str::trim).filter(|s| !s.is_empty())
    }

    /// Parse what the admin typed; a clear message when it does not fit.
    fn parse(kind: FaultKind, value: &str) -> Result<Value, AppError> {
        let bad = |m: &str| AppError::Validation(m.into());
        let value = value.trim();
        Ok(match kind {
            FaultKind::Count => {
                let n: u32 = if value.is_empty() {
                    0
                } else {
                    value
                        .parse()
                        .map_err(|_| bad("Enter a whole number, 0 or more."))?
                };
                json!(n)
            }
            FaultKind::Switch => match value {
                "on" | "true" => json!(true),
                "" | "off" | "false" => json!(false),
                _ => return Err(bad("A switch is on or off.")),
            },
            FaultKind::Statuses => {
                let mut out = Vec::new();
                for s in items(value) {
                    let code: u16 = s
                        .parse()
                        .ok()
                        .filter(|c| (400..=599).contains(c))
                        .ok_or_else(|| {
                            bad("Statuses are HTTP error codes (400–599), comma separated.")
                        })?;
                    out.push(code);
                }
                json!(out)
            }
            FaultKind::ItemIds => json!(items(value).collect::<Vec<_>>()),
            FaultKind::ReturnCodes => {
                let mut out = Vec::new();
                for s in items(value) {
                    let code = s.to_ascii_uppercase();
                    let ok = code.len() == 3
                        && code.starts_with('R')
                        && code[1..].bytes().all(|b| b.is_ascii_digit());
                    if !ok {
                        return Err(bad(
                            "Return codes are NACHA codes like R01 or R02, comma separated.",
                        ));
                    }
                    out.push(code);
                }
                json!(out)
            }
            FaultKind::OptionalDays => {
                if value.is_empty() {
                    Value::Null
                } else {
                    let d: u32 = value.parse().ok().filter(|d| *d <= 5).ok_or_else(|| {
                        bad("Lead days are a whole number from 0 to 5, or empty.")
                    })?;
                    json!(d)
                }
            }
            FaultKind::RailFaults => {
                let mut out = Vec::new();
                for s in items(value) {
                    let mut parts = s.splitn(4, ':');
                    let rail = parts.next().unwrap_or_default().to_ascii_lowercase();
                    if !["qbo", "ramp", "plaid", "stripe"].contains(&rail.as_str()) {
                        return Err(bad(
                            "A rail failure starts with qbo, ramp, plaid or stripe.",
                        ));
                    }
                    let status: u16 = parts
                        .next()
                        .and_then(|c| c.trim().parse().ok())
                        .filter(|c| *c == 0 || (400..=599).contains(c))
                        .ok_or_else(|| {
                            bad("A rail failure is rail:status, status 0 (hang) or 400–599.")
                        })?;
                    let method = parts
                        .next()
                        .filter(|m| !m.is_empty())
                        .map(str::to_ascii_uppercase);
                    let path = parts.next().filter(|p| !p.is_empty());
                    out.push(
                        json!({"rail": rail, "status": status, "method": method, "path": path}),
                    );
                }
                json!(out)
            }
        })
    }

    pub async fn set(key: &str, value: &str) -> Result<FaultsView, AppError> {
        let (user, control) = admin_on_simulators().await?;
        let spec = fault_spec(key)
            .ok_or_else(|| AppError::Validation(format!("No fault named {key:?}.")))?;
        let new = parse(spec.kind, value)?;
        let mut doc = control.faults().await.map_err(port)?;
        let old = doc.get(key).cloned().unwrap_or(Value::Null);
        doc.as_object_mut()
            .ok_or(AppError::Internal)?
            .insert(key.into(), new.clone());
        // The simulators first: they persist their state to the same
        // database, which a transaction held open across the change would
        // block on SQLite (one writer). Then the audit entry; if it cannot
        // be written the change is undone, so no change goes unaudited.
        let before = control.faults().await.map_err(port)?;
        control.set_faults(doc.clone()).await.map_err(port)?;
        let st = state()?;
        let audited = async {
            let mut tx = st.db.begin().await?;
            audit::record(
                &mut tx,
                &user.firm_id,
                st.clock.now(),
                Entry {
                    actor: &user.email,
                    action: "sandbox.fault_set",
                    subject: key,
                    detail: json!({ "fault": key, "from": old, "to": new }),
                },
            )
            .await?;
            commit(tx).await
        }
        .await;
        if let Err(e) = audited {
            if let Err(undo) = control.set_faults(before).await {
                tracing::error!(error = %undo, fault = key, "could not undo an unaudited fault change");
            }
            return Err(e.into());
        }
        render(&user, &doc).await
    }
}
