use crate::error::AppError;
use crate::model::HygieneItemView;
use leptos::prelude::*;

/// The firm's open hygiene items: discrepancies and things to fix.
#[server(endpoint = "hygiene")]
pub async fn get_hygiene() -> Result<Vec<HygieneItemView>, AppError> {
    use crate::ssr::auth::{current_user, respond, state};
    respond(
        async {
            let user = current_user().await?;
            let st = state()?;
            Ok(crate::ssr::store::read_models::open_hygiene(&st.db.pool, &user.firm_id).await?)
        }
        .await,
    )
}
