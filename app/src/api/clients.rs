use crate::error::AppError;
use crate::model::{ClientDetail, ClientSummary};
use leptos::prelude::*;

/// Every client of the signed-in user's firm with cash, burn, runway, bills
/// due soon and guardrail status.
#[server(endpoint = "portfolio")]
pub async fn get_portfolio() -> Result<Vec<ClientSummary>, AppError> {
    use crate::ssr::auth::{current_user, respond, state};
    respond(
        async {
            let user = current_user().await?;
            let st = state()?;
            let mut conn = st.db.read().await?;
            Ok(crate::ssr::store::read_models::client_summaries(
                &mut conn,
                &user.firm_id,
                st.clock.now(),
                st.clock.today(),
                None,
            )
            .await?)
        }
        .await,
    )
}

/// One client: summary, open bills and payments. Another firm's client is
/// simply not found.
#[server(endpoint = "client")]
pub async fn get_client(client_id: String) -> Result<ClientDetail, AppError> {
    use crate::model::ClientId;
    use crate::ssr::auth::{current_user, respond, state};
    use crate::ssr::store::read_models as queries;
    respond(
        async {
            let user = current_user().await?;
            let client = ClientId::parse(&client_id).map_err(|_| AppError::NotFound)?;
            let st = state()?;
            let today = st.clock.today();
            let mut conn = st.db.read().await?;
            let summary = queries::client_summaries(
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
            let (policy, _) =
                crate::ssr::store::clients::policy(&mut conn, &user.firm_id, &client).await?;
            drop(conn);
            let bills = queries::open_bills(&st.db.reads, &user.firm_id, &client, today).await?;
            let payments = queries::client_payments(&st.db.reads, &user.firm_id, &client).await?;
            Ok(ClientDetail {
                summary,
                bills,
                payments,
                today,
                policy,
            })
        }
        .await,
    )
}
