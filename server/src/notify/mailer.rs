//! Email over SMTP (`lettre`), configured by `ROWCOL_SMTP_URL`.

use super::SendError;
use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How long one SMTP conversation may take.
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    // The transport holds the server's credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for `url` (`smtp://`, `smtps://`; credentials in the URL)
    /// sending as `from`.
    pub fn new(url: &str, from: &str) -> Result<Mailer, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("not a usable SMTP URL ({e})"))?
            .timeout(Some(TIMEOUT))
            .build();
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("not a sender address ({e})"))?;
        Ok(Mailer { transport, from })
    }

    /// Send a plain-text message to `to`.
    ///
    /// The connection is tried first (EHLO, NOOP, QUIT): a server that
    /// cannot be reached has received nothing, so that is worth a retry,
    /// whereas a conversation that breaks after the message was handed
    /// over may have delivered it, and is not retried.
    pub async fn send(&self, to: &str, subject: &str, text: &str) -> Result<(), SendError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| SendError::Permanent(format!("not an email address ({e})")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_owned())
            .map_err(|e| SendError::Permanent(format!("the message could not be built ({e})")))?;
        match self.transport.test_connection().await {
            Ok(true) => {}
            Ok(false) => return Err(SendError::Retry("the mail server did not answer".into())),
            Err(e) => return Err(SendError::Retry(format!("the mail server: {e}"))),
        }
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_transient() => Err(SendError::Retry(format!("the mail server: {e}"))),
            Err(e) if e.is_permanent() => {
                Err(SendError::Permanent(format!("the mail server: {e}")))
            }
            Err(e) => Err(SendError::Unknown(format!("the mail server: {e}"))),
        }
    }
}
