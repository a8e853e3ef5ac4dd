//! A client's approval policy: read by anyone in the firm, published by
//! admins as a new version (kept, never edited), previewed first.
// The server functions here take the API's form fields one by one (the
// pinned endpoints): clippy's argument count does not fit them, and the
// browser-side stubs the #[server] macro generates carry no attribute of ours.
#![allow(clippy::too_many_arguments)]

use crate::domain::rules::Policy;
use crate::error::AppError;
use crate::model::PolicyChange;
use leptos::prelude::*;

/// The client's current policy (and its version).
#[server(endpoint = "client_policy")]
pub async fn client_policy(client_id: String) -> Result<Policy, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::current(client_id).await.map(|(p, _)| p))
}

/// Publish a new version of the client's policy (admins). Any field left
/// out keeps its value; a value out of range is refused (422) naming the
/// field. `dual_control_threshold` takes a decimal amount in the client's
/// currency (the page), `dual_control_threshold_minor` minor units
/// (scripts). `expected_version`, when sent, must be the current one.
#[server(endpoint = "set_client_policy")]
pub async fn set_client_policy(
    client_id: String,
    #[server(default)] buffer_days: Option<String>,
    #[server(default)] cash_max_age_secs: Option<String>,
    #[server(default)] bank_history_max_age_secs: Option<String>,
    #[server(default)] dual_control_threshold_minor: Option<String>,
    #[server(default)] dual_control_threshold: Option<String>,
    #[server(default)] duplicate_window_days: Option<String>,
    #[server(default)] new_vendor_second_approver: Option<String>,
    #[server(default)] expected_version: Option<String>,
) -> Result<Policy, AppError> {
    use crate::ssr::auth::respond;
    respond(
        ssr::set(
            client_id,
            ssr::Fields {
                buffer_days,
                cash_max_age_secs,
                bank_history_max_age_secs,
                dual_control_threshold_minor,
                dual_control_threshold,
                duplicate_window_days,
                new_vendor_second_approver,
                expected_version,
            },
            false,
        )
        .await,
    )
}

/// What publishing these values would change among the client's open bills
/// (which would become refused or waiting, or stop being so). Nothing is
/// stored. Admins.
#[server(endpoint = "preview_client_policy")]
pub async fn preview_client_policy(
    client_id: String,
    #[server(default)] buffer_days: Option<String>,
    #[server(default)] cash_max_age_secs: Option<String>,
    #[server(default)] bank_history_max_age_secs: Option<String>,
    #[server(default)] dual_control_threshold_minor: Option<String>,
    #[server(default)] dual_control_threshold: Option<String>,
    #[server(default)] duplicate_window_days: Option<String>,
    #[server(default)] new_vendor_second_approver: Option<String>,
    #[server(default)] expected_version: Option<String>,
) -> Result<Vec<PolicyChange>, AppError> {
    use crate::ssr::auth::respond;
    respond(
        ssr::preview(
            client_id,
            ssr::Fields {
                buffer_days,
                cash_max_age_secs,
                bank_history_max_age_secs,
                dual_control_threshold_minor,
                dual_control_threshold,
                duplicate_window_days,
                new_vendor_second_approver,
                expected_version,
            },
        )
        .await,
    )
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use crate::api::fields::{parse_amount, parse_bool, parse_int};
    use crate::domain::rules::{self, Policy};
    use crate::error::AppError;
    use crate::model::*;
    use crate::ssr::auth::{current_user, state};
    use crate::ssr::store::audit::{self, Entry};
    use crate::ssr::store::{bills, clients, commit, read_models};
    use serde_json::json;

    pub struct Fields {
        pub buffer_days: Option<String>,
        pub cash_max_age_secs: Option<String>,
        pub bank_history_max_age_secs: Option<String>,
        pub dual_control_threshold_minor: Option<String>,
        pub dual_control_threshold: Option<String>,
        pub duplicate_window_days: Option<String>,
        pub new_vendor_second_approver: Option<String>,
        pub expected_version: Option<String>,
    }

    fn field(s: &Option<String>) -> Option<&str> {
        s.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    /// The edited policy: `old` with every field sent replaced, each parsed
    /// and the whole checked against the bounds. 422 names the field.
    fn apply(old: &Policy, currency: &Currency, f: &Fields) -> Result<Policy, AppError> {
        let bad = AppError::Unprocessable;
        let mut p = old.clone();
        // Parsed wide, so "too big" is the bounds' message, not "not a number".
        let int = |name: &str, v: &str| parse_int(name, v, i64::MIN, i64::MAX).map_err(bad);
        let days = |name: &str, v: &str| -> Result<u32, AppError> {
            u32::try_from(int(name, v)?).map_err(|_| {
                AppError::Unprocessable(format!("{name}: must be between 0 and the maximum"))
            })
        };
        if let Some(v) = field(&f.buffer_days) {
            p.buffer_days = days("buffer_days", v).map_err(|_| {
                AppError::Unprocessable(format!(
                    "buffer_days: must be between 0 and {} days",
                    rules::BUFFER_DAYS_MAX
                ))
            })?;
        }
        if let Some(v) = field(&f.cash_max_age_secs) {
            p.cash_max_age_secs = int("cash_max_age_secs", v)?;
        }
        if let Some(v) = field(&f.bank_history_max_age_secs) {
            p.bank_history_max_age_secs = int("bank_history_max_age_secs", v)?;
        }
        if let Some(v) = field(&f.dual_control_threshold_minor) {
            p.dual_control_threshold_minor = int("dual_control_threshold_minor", v)?;
        }
        if let Some(v) = field(&f.dual_control_threshold) {
            p.dual_control_threshold_minor =
                parse_amount("dual_control_threshold", v, currency).map_err(bad)?;
        }
        if let Some(v) = field(&f.duplicate_window_days) {
            p.duplicate_window_days = days("duplicate_window_days", v).map_err(|_| {
                AppError::Unprocessable(format!(
                    "duplicate_window_days: must be between 0 and {} days",
                    rules::DUPLICATE_WINDOW_MAX_DAYS
                ))
            })?;
        }
        if let Some(v) = field(&f.new_vendor_second_approver) {
            p.new_vendor_second_approver =
                parse_bool("new_vendor_second_approver", v).map_err(bad)?;
        }
        p.check()
            .map_err(|e| AppError::Unprocessable(e.to_string()))?;
        Ok(p)
    }

    pub async fn current(client_id: String) -> Result<(Policy, Currency), AppError> {
        let user = current_user().await?;
        let client = ClientId::parse(&client_id).map_err(|_| AppError::NotFound)?;
        let st = state()?;
        let mut conn = st.db.acquire().await?;
        let (p, cur) = clients::policy(&mut conn, &user.firm_id, &client).await?;
        Ok((
            p,
            Currency::parse(&cur)
                .map_err(|e| AppError::internal("a stored currency does not parse", e))?,
        ))
    }

    pub async fn set(client_id: String, f: Fields, _preview: bool) -> Result<Policy, AppError> {
        let user = current_user().await?;
        user.require(Role::Admin)?;
        let client = ClientId::parse(&client_id).map_err(|_| AppError::NotFound)?;
        let st = state()?;
        let now = st.clock.now();
        let mut tx = st.db.begin().await?;
        let (old, cur) = clients::policy(&mut tx, &user.firm_id, &client).await?;
        let cur = Currency::parse(&cur)
            .map_err(|e| AppError::internal("a stored currency does not parse", e))?;
        if let Some(v) = field(&f.expected_version) {
            let v =
                parse_int("expected_version", v, 1, i64::MAX).map_err(AppError::Unprocessable)?;
            if v != old.version {
                return Err(AppError::Conflict(format!(
                    "The policy is at version {} now (you edited version {v}); reload and try again.",
                    old.version
                )));
            }
        }
        let new = apply(&old, &cur, &f)?;
        let published = clients::publish_policy(
            &mut tx,
            &user.firm_id,
            &client,
            &new,
            old.version,
            &user.user_id,
            now,
        )
        .await?;
        audit::record(
            &mut tx,
            &user.firm_id,
            now,
            Entry {
                actor: &user.email,
                action: "policy.changed",
                subject: client.as_str(),
                detail: json!({ "old": old, "new": published }),
            },
        )
        .await?;
        commit(tx).await?;
        Ok(published)
    }

    pub async fn preview(client_id: String, f: Fields) -> Result<Vec<PolicyChange>, AppError> {
        let user = current_user().await?;
        user.require(Role::Admin)?;
        let client = ClientId::parse(&client_id).map_err(|_| AppError::NotFound)?;
        let st = state()?;
        let today = st.clock.today();
        // Read through the pool before holding a connection (SQLite's pool
        // has one).
        let open = read_models::open_bills(&st.db.pool, &user.firm_id, &client, today).await?;
        let mut conn = st.db.acquire().await?;
        let (old, cur) = clients::policy(&mut conn, &user.firm_id, &client).await?;
        let cur = Currency::parse(&cur)
            .map_err(|e| AppError::internal("a stored currency does not parse", e))?;
        let new = apply(&old, &cur, &f)?;
        let summary = read_models::client_summaries(
            &mut conn,
            &user.firm_id,
            st.clock.now(),
            today,
            Some(&client),
        )
        .await?
        .into_iter()
        .next()
        .ok_or(AppError::NotFound)?;
        let ids: Vec<BillId> = open.iter().map(|b| b.bill_id.clone()).collect();
        let selected = bills::open_for_approval(&mut conn, &user.firm_id, &client, &ids).await?;
        let facts = selected
            .iter()
            .map(|b| b.facts())
            .collect::<Result<Vec<_>, _>>()?;
        let others = bills::all_of_client(&mut conn, &client).await?;
        let known = bills::known_vendors(&mut conn, &client).await?;
        Ok(policy_changes(
            &old, &new, &facts, &others, &known, &cur, &summary, today,
        ))
    }

    /// Each open bill whose standing alone (its own rules, and the buffer
    /// with only it selected) differs between `old` and `new`.
    #[allow(clippy::too_many_arguments)]
    fn policy_changes(
        old: &Policy,
        new: &Policy,
        facts: &[rules::BillFacts],
        others: &[rules::OtherBill],
        known: &std::collections::HashSet<String>,
        cur: &Currency,
        summary: &ClientSummary,
        today: chrono::NaiveDate,
    ) -> Vec<PolicyChange> {
        let cash = rules::CashFacts {
            available: summary
                .cash
                .available
                .clone()
                .unwrap_or_else(|| Money::zero(cur.clone())),
            approved_unpaid: summary.cash.approved_unpaid.clone(),
            daily_burn: summary.cash.daily_burn.clone(),
        };
        let standing = |p: &Policy, b: &rules::BillFacts| -> String {
            let one = std::slice::from_ref(b);
            let d = rules::decide(&rules::DecideInput {
                policy: p,
                bills: one,
                others,
                known_vendors: known,
                bank_currency: cur,
                cash: &cash,
                blockers: vec![],
                today,
                override_requested: false,
            });
            match d.ok().and_then(|d| d.outcomes.into_iter().next()) {
                Some((_, rules::BillOutcome::Approved { .. })) => "approved".into(),
                Some((_, rules::BillOutcome::Waits { .. })) => "waits for a second approver".into(),
                Some((_, rules::BillOutcome::Refused { finding })) => {
                    format!("refused ({})", finding.rule.code())
                }
                None => "cannot be judged".into(),
            }
        };
        facts
            .iter()
            .filter_map(|b| {
                let before = standing(old, b);
                let after = standing(new, b);
                if before == after {
                    return None;
                }
                Some(PolicyChange {
                    bill_id: BillId::parse(&b.bill_id).ok()?,
                    vendor_name: b.vendor_name.clone(),
                    amount: Money::new(b.amount_minor, cur.clone()),
                    before,
                    after,
                })
            })
            .collect()
    }
}
