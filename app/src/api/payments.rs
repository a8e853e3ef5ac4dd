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
                crate::ssr::store::read_models::payment_detail(&st.db.reads, &user.firm_id, &pid)
                    .await?,
            )
        }
        .await,
    )
}

/// Stop an approved payment before the money moves: cancelled here if
/// nothing was sent to Ramp, otherwise only after Ramp archived its bill
/// (refused once Ramp has paid it, saying so). Needs a reason; audited.
#[server(endpoint = "stop_payment")]
pub async fn stop_payment(
    payment_id: String,
    #[server(default)] reason: String,
) -> Result<String, AppError> {
    use crate::ssr::auth::{current_user, respond};
    respond(
        async {
            let user = current_user().await?;
            user.require(crate::model::Role::Advisor)?;
            crate::ssr::stop::stop_payment(&user, &payment_id, &reason).await
        }
        .await,
    )
}
