use crate::error::AppError;
use crate::model::AuditPage;
use leptos::prelude::*;

/// The newest audit entries of the firm and the result of re-verifying the
/// whole hash chain.
#[server(endpoint = "audit")]
pub async fn get_audit() -> Result<AuditPage, AppError> {
    use crate::ssr::auth::{current_user, respond, state};
    use crate::ssr::store::audit;
    respond(
        async {
            let user = current_user().await?;
            let st = state()?;
            let entries = audit::list(&st.db.pool, &user.firm_id, 500).await?;
            let chain = audit::verify_chain(&st.db.pool, &user.firm_id).await?;
            Ok(AuditPage { entries, chain })
        }
        .await,
    )
}
