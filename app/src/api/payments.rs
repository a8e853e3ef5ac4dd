use crate::error::AppError;
use crate::model::PaymentDetail;
use leptos::prelude::*;

/// A payment with its chain of custody.
#[server(endpoint = "payment")]
pub async fn get_payment(payment_id: String) -> Result<PaymentDetail, AppError> {
    use crate::model::PaymentId;
    use crate::ssr::auth::{current_user, respond, state};
    respond(
        async {
            let user = current_user().await?;
            let pid = PaymentId::parse(&payment_id).map_err(|_| AppError::NotFound)?;
            let st = state()?;
            Ok(
                crate::ssr::store::read_models::payment_detail(&st.db.pool, &user.firm_id, &pid)
                    .await?,
            )
        }
        .await,
    )
}
