use crate::error::AppError;
use crate::model::AuditPage;
use leptos::prelude::*;

/// The newest audit entries of the firm and the state of its hash chain:
/// verified incrementally (only entries after the last verified checkpoint
/// are re-hashed), or from the first entry when `full` is true.
#[server(endpoint = "audit")]
pub async fn get_audit(full: Option<bool>) -> Result<AuditPage, AppError> {
    use crate::ssr::auth::{current_user, respond, state};
    use crate::ssr::store::audit;
    respond(
        async {
            let user = current_user().await?;
            let st = state()?;
            let entries = audit::list(&st.db.reads, &user.firm_id, 500).await?;
            let chain = if full.unwrap_or(false) {
                audit::verify_chain_full(&st.db.pool, &user.firm_id).await?
            } else {
                audit::verify_chain(&st.db.pool, &user.firm_id).await?
            };
            Ok(AuditPage { entries, chain })
        }
        .await,
    )
}
