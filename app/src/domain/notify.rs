//! Which tray items are worth interrupting a person for, and in what words:
//! pure, so the job that sends and the page where people choose agree.

use crate::model::{ReasonCode, Role};
use serde::{Deserialize, Serialize};

/// The critical kinds of item a person can ask to hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Topic {
    /// A payment could not be sent, or could not be confirmed sent.
    PaymentFailed,
    /// The bank sent a payment back.
    PaymentReturned,
    /// A bill may be paid twice.
    DuplicatePayment,
    /// A rail needs its owner to sign in again.
    ConnectionBroken,
}

impl Topic {
    pub const ALL: [Topic; 4] = [
        Topic::PaymentFailed,
        Topic::PaymentReturned,
        Topic::DuplicatePayment,
        Topic::ConnectionBroken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::PaymentFailed => "payment_failed",
            Topic::PaymentReturned => "payment_returned",
            Topic::DuplicatePayment => "duplicate_payment",
            Topic::ConnectionBroken => "connection_broken",
        }
    }

    pub fn parse(s: &str) -> Option<Topic> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The choice's words on the settings page.
    pub fn label(self) -> &'static str {
        match self {
            Topic::PaymentFailed => "A payment failed",
            Topic::PaymentReturned => "The bank returned a payment",
            Topic::DuplicatePayment => "A bill may be paid twice",
            Topic::ConnectionBroken => "A connection needs signing in again",
        }
    }
}

/// The topic of an item with this reason, if it is critical enough to
/// send; the rest wait in the tray and the digest.
pub fn topic_of(reason: ReasonCode) -> Option<Topic> {
    match reason {
        ReasonCode::ReleaseFailed | ReasonCode::ReleaseUnconfirmed => Some(Topic::PaymentFailed),
        ReasonCode::AchReturned => Some(Topic::PaymentReturned),
        ReasonCode::DuplicatePayment => Some(Topic::DuplicatePayment),
        ReasonCode::RailReauthNeeded => Some(Topic::ConnectionBroken),
        ReasonCode::AmountMismatch
        | ReasonCode::QboSyncMissing
        | ReasonCode::CashNotSeen
        | ReasonCode::JobDeadLettered
        | ReasonCode::BillChangedInLedger
        | ReasonCode::VendorBankChanged
        | ReasonCode::OverrideReview => None,
    }
}

/// How a message reaches a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Channel {
    Email,
    /// A Slack-compatible incoming webhook: `POST {"text": …}`.
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        [Channel::Email, Channel::Webhook]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// A set of topics, stored as their names joined by commas (unknown names
/// are dropped, so a topic retired later reads as not chosen).
pub fn parse_topics(s: &str) -> Vec<Topic> {
    let mut out: Vec<Topic> = s
        .split(',')
        .filter_map(|t| Topic::parse(t.trim()))
        .collect();
    out.sort_by_key(|t| Topic::ALL.iter().position(|a| a == t));
    out.dedup();
    out
}

pub fn format_topics(topics: &[Topic]) -> String {
    parse_topics(
        &topics
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(","),
    )
    .iter()
    .map(|t| t.as_str())
    .collect::<Vec<_>>()
    .join(",")
}

/// What a person receives before they choose: people who act on payments
/// hear about every critical item by email; viewers only read, so they
/// opt in.
pub fn default_email_topics(role: Role) -> Vec<Topic> {
    if role >= Role::Advisor {
        Topic::ALL.to_vec()
    } else {
        Vec::new()
    }
}

/// Why a webhook address is refused, if it is. Live instances post only
/// over HTTPS (the URL carries the webhook's secret); a sandbox may also
/// post to a loopback address over plain HTTP, for a local receiver.
pub fn check_webhook_url(url: &str, live: bool) -> Result<(), &'static str> {
    let url = url.trim();
    if url.len() > 2048 {
        return Err("The webhook address is too long (2,048 characters at most).");
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("The webhook address must start with https://.");
    };
    let host = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("")
        .rsplit('@')
        .next()
        .unwrap_or("");
    let host_name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    if host_name.is_empty() {
        return Err("The webhook address has no host.");
    }
    let loopback = matches!(host_name, "localhost" | "127.0.0.1" | "::1");
    // A live instance posts only to public hosts: an address inside the
    // network RowCol runs in (by its IP) would let a person probe it. (A
    // public name that resolves inside is not caught here.)
    let internal = loopback
        || match host_name.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => {
                ip.is_private() || ip.is_loopback() || ip.is_link_local() || ip.is_unspecified()
            }
            Ok(std::net::IpAddr::V6(ip)) => {
                ip.is_loopback() || ip.is_unspecified() || (ip.segments()[0] & 0xfe00) == 0xfc00
            }
            Err(_) => false,
        };
    if live && internal {
        return Err("The webhook address must be a public host.");
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(()),
        "http" if loopback && !live => Ok(()),
        _ => Err("The webhook address must start with https://."),
    }
}

/// A message about one item: its subject line and its text (plain words
/// first; the tray has the codes and evidence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub subject: String,
    pub text: String,
}

/// The message for an item of `reason` for `client` (its name, when the
/// item concerns one) about `payment` (in words: "$1,234.00 to Acme"),
/// linking to the tray. Plain words only: the rail's codes and the raw
/// evidence stay in the tray, a click away.
pub fn item_message(
    reason: ReasonCode,
    client: Option<&str>,
    payment: Option<&str>,
    tray_link: &str,
) -> Message {
    let headline = crate::domain::tray::headline(reason);
    let label = crate::domain::tray::reason_label(reason);
    let subject = match client {
        Some(c) => format!("RowCol: {c}: {label}"),
        None => format!("RowCol: {label}"),
    };
    let mut text = match client {
        Some(c) => format!("{c}: {headline}"),
        None => headline.to_owned(),
    };
    if let Some(p) = payment {
        text.push_str(&format!("\nThe payment: {p}."));
    }
    text.push_str(&format!("\n\nOpen it in RowCol: {tray_link}"));
    Message { subject, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_critical_reasons_and_only_they_have_a_topic() {
        assert_eq!(
            topic_of(ReasonCode::ReleaseFailed),
            Some(Topic::PaymentFailed)
        );
        assert_eq!(
            topic_of(ReasonCode::AchReturned),
            Some(Topic::PaymentReturned)
        );
        assert_eq!(
            topic_of(ReasonCode::DuplicatePayment),
            Some(Topic::DuplicatePayment)
        );
        assert_eq!(
            topic_of(ReasonCode::RailReauthNeeded),
            Some(Topic::ConnectionBroken)
        );
        assert_eq!(topic_of(ReasonCode::CashNotSeen), None);
        assert_eq!(topic_of(ReasonCode::OverrideReview), None);
    }

    #[test]
    fn topics_round_trip_in_a_stable_order_and_drop_unknown_names() {
        let t = parse_topics("connection_broken, payment_failed,retired,payment_failed");
        assert_eq!(t, vec![Topic::PaymentFailed, Topic::ConnectionBroken]);
        assert_eq!(format_topics(&t), "payment_failed,connection_broken");
        assert_eq!(parse_topics(""), Vec::<Topic>::new());
    }

    #[test]
    fn viewers_opt_in_and_people_who_act_get_every_topic() {
        assert!(default_email_topics(Role::Viewer).is_empty());
        assert_eq!(default_email_topics(Role::Advisor).len(), 4);
    }

    #[test]
    fn webhook_addresses_are_https_except_loopback_in_a_sandbox() {
        assert!(check_webhook_url("https://hooks.slack.com/services/T/B/x", true).is_ok());
        assert!(check_webhook_url("http://hooks.slack.com/services/T/B/x", false).is_err());
        assert!(check_webhook_url("http://127.0.0.1:9000/hook", false).is_ok());
        assert!(check_webhook_url("http://127.0.0.1:9000/hook", true).is_err());
        assert!(check_webhook_url("http://[::1]:9/x", false).is_ok());
        // A loopback name in the user part does not make the host loopback.
        assert!(check_webhook_url("http://localhost@evil.test/x", false).is_err());
        assert!(check_webhook_url("ftp://x.test/", false).is_err());
        assert!(check_webhook_url("https:///path", false).is_err());
        assert!(check_webhook_url("hooks.slack.com", false).is_err());
        // Live: nothing inside the network, even over HTTPS.
        assert!(check_webhook_url("https://10.1.2.3/hook", true).is_err());
        assert!(check_webhook_url("https://169.254.169.254/latest", true).is_err());
        assert!(check_webhook_url("https://localhost/hook", true).is_err());
        assert!(check_webhook_url("https://[fd00::1]/hook", true).is_err());
        assert!(check_webhook_url("https://203.0.113.9/hook", true).is_ok());
    }

    #[test]
    fn a_message_names_the_client_in_plain_words_and_links_to_the_tray() {
        let m = item_message(
            ReasonCode::AchReturned,
            Some("Alder Creek Dental"),
            Some("$1,234.00 to Acme Supplies"),
            "https://rowcol.test/hygiene",
        );
        assert_eq!(
            m.subject,
            "RowCol: Alder Creek Dental: payment returned by the bank"
        );
        assert_eq!(
            m.text,
            "Alder Creek Dental: The bank sent a payment back. The bill is unpaid again.\n\
             The payment: $1,234.00 to Acme Supplies.\n\n\
             Open it in RowCol: https://rowcol.test/hygiene"
        );
        let firm_wide = item_message(ReasonCode::DuplicatePayment, None, None, "/h");
        assert_eq!(
            firm_wide.text,
            "This bill may be paid twice.\n\nOpen it in RowCol: /h"
        );
    }
}
