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
