//! Slack-compatible incoming webhooks: `POST {"text": …}` as JSON.

use super::SendError;
use std::time::Duration;

/// The client for webhook posts: it follows no redirects (the address was
/// checked when it was saved; a redirect could lead anywhere) and gives up
/// after ten seconds.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

/// Post `text` to `url`.
pub async fn post(http: &reqwest::Client, url: &str, text: &str) -> Result<(), SendError> {
    let sent = http
        .post(url)
        .json(&serde_json::json!({ "text": text }))
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        // Nothing reached the receiver.
        // (Without the address in the words: the URL is the webhook's
        // secret and is never logged or shown.)
        Err(e) if e.is_connect() || e.is_builder() => {
            return Err(SendError::Retry(format!(
                "the webhook could not be reached ({})",
                e.without_url()
            )))
        }
        Err(e) => {
            return Err(SendError::Unknown(format!(
                "the webhook did not answer ({})",
                e.without_url()
            )))
        }
    };
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else if status.as_u16() == 429 || status.is_server_error() {
        Err(SendError::Retry(format!("the webhook answered {status}")))
    } else {
        Err(SendError::Permanent(format!(
            "the webhook answered {status}"
        )))
    }
}
