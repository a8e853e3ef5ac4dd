//! The approvals page's data: the table across the portfolio and the
//! payments waiting for a second approver.
// The server functions here take the API's form fields one by one (the
// pinned endpoints): clippy's argument count does not fit them, and the
// browser-side stubs the #[server] macro generates carry no attribute of ours.
#![allow(clippy::too_many_arguments)]

use crate::error::AppError;
use crate::model::{ApprovalsPage, WaitingPayment};
use leptos::prelude::*;

/// One page of every open bill across the portfolio, with the rules that
/// apply to each, each client's suggested batch and cash for the what-if.
/// Filters: `client_id`, `vendor` (part of the name), `due_within_days`,
/// `min_amount`/`max_amount` (decimal, the bills' currency), `rule`
/// (`overdue`, `second_approval_required`); `sort` (`due`, `amount`,
/// `client`, `vendor`) and `desc`; `page` from 1, `per_page` up to 500.
#[server(endpoint = "approvals")]
pub async fn get_approvals(
    #[server(default)] client_id: Option<String>,
    #[server(default)] vendor: Option<String>,
    #[server(default)] due_within_days: Option<String>,
    #[server(default)] min_amount: Option<String>,
    #[server(default)] max_amount: Option<String>,
    #[server(default)] rule: Option<String>,
    #[server(default)] sort: Option<String>,
    #[server(default)] desc: Option<String>,
    #[server(default)] page: Option<String>,
    #[server(default)] per_page: Option<String>,
) -> Result<ApprovalsPage, AppError> {
    use crate::ssr::auth::respond;
    respond(
        ssr::page(ssr::Query {
            client_id,
            vendor,
            due_within_days,
            min_amount,
            max_amount,
            rule,
            sort,
            desc,
            page,
            per_page,
        })
        .await,
    )
}

/// The firm's payments waiting for a second approver.
#[server(endpoint = "approvals/waiting")]
pub async fn get_waiting() -> Result<Vec<WaitingPayment>, AppError> {
    use crate::ssr::auth::{current_user, respond, state};
    respond(
        async {
            let user = current_user().await?;
            let st = state()?;
            let mut conn = st.db.read().await?;
            Ok(
                crate::ssr::store::decisions::waiting(&mut conn, &user.firm_id, &user.user_id)
                    .await?,
            )
        }
        .await,
    )
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use crate::api::fields::{parse_amount, parse_int};
    use crate::error::AppError;
    use crate::model::*;
    use crate::ssr::auth::{current_user, state};
    use crate::ssr::store::decisions::{self, Filters, Sort};
    use crate::ssr::store::read_models::client_summaries;

    pub struct Query {
        pub client_id: Option<String>,
        pub vendor: Option<String>,
        pub due_within_days: Option<String>,
        pub min_amount: Option<String>,
        pub max_amount: Option<String>,
        pub rule: Option<String>,
        pub sort: Option<String>,
        pub desc: Option<String>,
        pub page: Option<String>,
        pub per_page: Option<String>,
    }

    fn blank(s: &Option<String>) -> Option<&str> {
        s.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    pub async fn page(q: Query) -> Result<ApprovalsPage, AppError> {
        let user = current_user().await?;
        let st = state()?;
        let now = st.clock.now();
        let today = st.clock.today();
        let bad = |m: String| AppError::Validation(m);
        let filters = Filters {
            client: blank(&q.client_id)
                .map(|c| ClientId::parse(c).map_err(|_| AppError::NotFound))
                .transpose()?,
            vendor: blank(&q.vendor).map(|v| v.chars().take(100).collect()),
            due_within_days: blank(&q.due_within_days)
                .map(|v| parse_int("due_within_days", v, 0, 3650))
                .transpose()
                .map_err(bad)?,
            min_minor: blank(&q.min_amount)
                .map(|v| parse_amount("min_amount", v, &Currency::usd()))
                .transpose()
                .map_err(bad)?,
            max_minor: blank(&q.max_amount)
                .map(|v| parse_amount("max_amount", v, &Currency::usd()))
                .transpose()
                .map_err(bad)?,
            rule: match blank(&q.rule) {
                None => None,
                Some(r @ ("overdue" | "second_approval_required")) => Some(r.to_owned()),
                Some(_) => {
                    return Err(bad("rule: one of overdue, second_approval_required".into()))
                }
            },
        };
        let sort = match blank(&q.sort) {
            None => Sort::Due,
            Some(s) => Sort::parse(s)
                .ok_or_else(|| bad("sort: one of due, amount, client, vendor".into()))?,
        };
        let desc = matches!(blank(&q.desc), Some("1" | "true" | "on"));
        let page = blank(&q.page)
            .map(|v| parse_int("page", v, 1, 1_000_000))
            .transpose()
            .map_err(bad)?
            .unwrap_or(1);
        let per_page = blank(&q.per_page)
            .map(|v| parse_int("per_page", v, 1, 500))
            .transpose()
            .map_err(bad)?
            .unwrap_or(100);
        let paging = decisions::Paging {
            sort,
            desc,
            page: u32::try_from(page).unwrap_or(1),
            per_page: u32::try_from(per_page).unwrap_or(100),
        };
        // The clients' summaries and the table's page are independent
        // reads: on two connections at once when a second one is free
        // (never waited for: two requests each holding one and waiting
        // for another would wait forever), else one after the other.
        let mut conn = st.db.read().await?;
        let (summaries, table) = match st.db.reads.try_acquire() {
            Some(mut second) => {
                let (s, t) = futures::join!(
                    client_summaries(&mut conn, &user.firm_id, now, today, None),
                    decisions::approvals_page(
                        &mut second,
                        &user.firm_id,
                        today,
                        &filters,
                        paging,
                        &st.db.bills_cache,
                    )
                );
                (s?, t?)
            }
            None => (
                client_summaries(&mut conn, &user.firm_id, now, today, None).await?,
                decisions::approvals_page(
                    &mut conn,
                    &user.firm_id,
                    today,
                    &filters,
                    paging,
                    &st.db.bills_cache,
                )
                .await?,
            ),
        };
        if let Some(c) = &filters.client {
            if !summaries.iter().any(|s| &s.client_id == c) {
                return Err(AppError::NotFound);
            }
        }
        let (rows, total) = table.suggest(today, &summaries);
        let clients = summaries
            .iter()
            .filter(|s| rows.iter().any(|r| r.client_id == s.client_id))
            .map(|s| {
                let unavailable = match s.status {
                    GuardrailStatus::Untrusted => Some(
                        s.connection_issue
                            .clone()
                            .unwrap_or_else(|| "a rail needs attention".into()),
                    ),
                    GuardrailStatus::Stale => {
                        Some(format!("stale data: {}", s.cash.freshness(now).describe()))
                    }
                    GuardrailStatus::NoData => Some("no bank balance read yet".into()),
                    _ => None,
                };
                ApprovalClient {
                    client_id: s.client_id.clone(),
                    name: s.name.clone(),
                    available: s.cash.available.clone().filter(|_| unavailable.is_none()),
                    approved_unpaid: s.cash.approved_unpaid.clone(),
                    daily_burn: s.cash.daily_burn.clone(),
                    buffer_days: s.cash.buffer_days,
                    unavailable,
                }
            })
            .collect();
        Ok(ApprovalsPage {
            rows,
            clients,
            total,
            page: u32::try_from(page).unwrap_or(1),
            per_page: u32::try_from(per_page).unwrap_or(100),
            batch_key: uuid::Uuid::new_v4().simple().to_string(),
        })
    }
}
