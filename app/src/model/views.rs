//! What the console shows: portfolio rows, client detail, payments and their
//! chain of custody, the hygiene tray and the audit log.

use super::{BillId, ClientId, CustodyOwner, HygieneId, Money, PaymentId, ReasonCode, Severity};
use crate::domain::custody::PaymentState;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// A user's role in their firm. Ordered: a higher role can do what a lower can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Advisor,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "advisor" => Some(Role::Advisor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Advisor => "advisor",
            Role::Admin => "admin",
        }
    }
}

/// The signed-in user, as the browser may see them (no ids of secrets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionUser {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub firm_name: String,
    /// Whether this instance runs on the sandbox rails (shows the clock control).
    pub sandbox: bool,
    /// The RowCol clock's date (advances with the sandbox clock).
    pub today: NaiveDate,
    /// Payments of the firm waiting for a second approver (the nav shows it).
    #[serde(default)]
    pub waiting: u32,
}

/// Traffic light for a client's liquidity guardrail with nothing new selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardrailStatus {
    /// Cash after approved payments clears the buffer.
    Ok,
    /// Approving everything due in 14 days would break the buffer.
    AtRisk,
    /// Already below the buffer.
    Breach,
    /// No bank balance yet.
    NoData,
    /// The balance or the bank history is older than the client's policy
    /// allows: nothing is judged (and nothing approved) on it.
    Stale,
    /// A rail needs reconnecting (or was never connected): its data cannot
    /// be trusted and nothing is approved until it is fixed.
    Untrusted,
}

impl GuardrailStatus {
    pub fn label(self) -> &'static str {
        match self {
            GuardrailStatus::Ok => "OK",
            GuardrailStatus::AtRisk => "At risk",
            GuardrailStatus::Breach => "Breach",
            GuardrailStatus::NoData => "No data",
            GuardrailStatus::Stale => "Stale data — refresh",
            GuardrailStatus::Untrusted => "Untrusted — reconnect",
        }
    }
}

/// The cash picture of one client, as the calculators see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CashPosition {
    pub available: Option<Money>,
    /// When the balance was read.
    pub as_of: Option<DateTime<Utc>>,
    pub daily_burn: Money,
    /// Committed cash: payments approved and not yet out of the held
    /// balance (approved, released, paid, recorded — or verified against a
    /// debit the held balance was read before).
    pub approved_unpaid: Money,
    pub buffer_days: u32,
    /// When the bank transactions (the burn's source) were last synced.
    pub bank_history_as_of: Option<DateTime<Utc>>,
    /// When the ledger's open bills were last read.
    pub bills_as_of: Option<DateTime<Utc>>,
    /// The policy's maximum ages, in seconds.
    pub balance_max_age_secs: i64,
    pub bank_history_max_age_secs: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientSummary {
    pub client_id: ClientId,
    pub name: String,
    pub cash: CashPosition,
    pub runway_days: Option<i64>,
    pub due_soon_count: u32,
    pub due_soon_total: Money,
    pub status: GuardrailStatus,
    /// Why the guardrail cannot be trusted: a rail that needs reconnecting.
    pub connection_issue: Option<String>,
    /// Payments approved once, waiting for a second approver.
    #[serde(default)]
    pub waiting_count: u32,
    /// Open hygiene items of the client.
    #[serde(default)]
    pub open_hygiene: u32,
}

impl ClientSummary {
    /// What needs a person's attention, in one number: bills due within 14
    /// days not yet decided, approvals waiting, open hygiene items, and a
    /// broken connection.
    pub fn attention(&self) -> u32 {
        self.due_soon_count
            + self.waiting_count
            + self.open_hygiene
            + u32::from(self.connection_issue.is_some())
    }

    /// The numbers behind the status word, in a sentence.
    pub fn status_reason(&self) -> String {
        let c = &self.cash;
        let required = c.daily_burn.minor.saturating_mul(i64::from(c.buffer_days));
        let cur = c.daily_burn.currency.clone();
        let m = |v: i64| Money::new(v, cur.clone()).to_string();
        match (self.status, &c.available) {
            (GuardrailStatus::Untrusted, _) => format!(
                "Not judged: {}.",
                self.connection_issue
                    .as_deref()
                    .unwrap_or("a rail needs attention")
            ),
            (GuardrailStatus::Stale, _) => {
                "Not judged: the bank balance or history is older than the policy allows.".into()
            }
            (GuardrailStatus::NoData, _) | (_, None) => "No bank balance has been read yet.".into(),
            (status, Some(a)) => {
                let free = a.minor.saturating_sub(c.approved_unpaid.minor);
                let headroom = free.saturating_sub(required);
                match status {
                    GuardrailStatus::Breach => format!(
                        "{} after commitments, under the {}-day buffer of {}: short by {}.",
                        m(free),
                        c.buffer_days,
                        m(required),
                        m(-headroom)
                    ),
                    GuardrailStatus::AtRisk => format!(
                        "{} above the {}-day buffer, but the {} due in 14 days would take it under.",
                        m(headroom),
                        c.buffer_days,
                        self.due_soon_total
                    ),
                    _ => format!(
                        "{} above the {}-day buffer ({}), even after the {} due in 14 days.",
                        m(headroom),
                        c.buffer_days,
                        m(required),
                        self.due_soon_total
                    ),
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillView {
    pub bill_id: BillId,
    pub vendor_name: String,
    pub doc_number: Option<String>,
    pub amount: Money,
    pub due_date: NaiveDate,
    pub overdue: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentSummary {
    pub payment_id: PaymentId,
    pub client_id: ClientId,
    pub client_name: String,
    pub vendor_name: String,
    pub doc_number: Option<String>,
    pub amount: Money,
    pub state: PaymentState,
    pub flag_reason: Option<String>,
    pub payment_arrival_date: NaiveDate,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientDetail {
    pub summary: ClientSummary,
    pub bills: Vec<BillView>,
    pub payments: Vec<PaymentSummary>,
    /// RowCol's date (the sandbox clock's in the sandbox): day 0 of the
    /// cash projection.
    pub today: NaiveDate,
    /// The client's current approval policy.
    pub policy: crate::domain::rules::Policy,
}

/// One step of a payment's chain of custody.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustodyStep {
    pub state: PaymentState,
    /// Which system owns the truth of this step: RowCol, Ramp, QBO or Plaid.
    pub owner: CustodyOwner,
    /// A user's email, or the rail event that moved it.
    pub actor: String,
    pub evidence: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentDetail {
    pub summary: PaymentSummary,
    pub steps: Vec<CustodyStep>,
    /// Who approved it (one row, or two under dual control), by which
    /// policy version, with an override's reason.
    pub approvals: Vec<super::ApprovalView>,
    pub ramp_bill_id: Option<String>,
    pub qbo_bill_payment_id: Option<String>,
    pub plaid_txn_id: Option<String>,
    /// Evidence that arrived out of order, explained in words
    /// (`domain::evidence_order`).
    pub order_notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApproveOutcome {
    pub payments: Vec<PaymentId>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HygieneItemView {
    pub hygiene_id: HygieneId,
    pub client_id: Option<ClientId>,
    pub client_name: Option<String>,
    pub payment_id: Option<PaymentId>,
    /// The payment's state now (the tray offers *stop* while it can).
    pub payment_state: Option<crate::domain::custody::PaymentState>,
    /// The payment in words: its amount and vendor.
    pub payment_summary: Option<String>,
    pub severity: Severity,
    pub reason_code: ReasonCode,
    /// The evidence as RowCol recorded it (ids and codes): one click away.
    pub detail: String,
    pub created_at: DateTime<Utc>,
    pub status: crate::domain::tray::ItemStatus,
    /// Who closed it: a person's email, or `rowcol` when it cleared itself.
    pub closed_by: Option<String>,
    pub close_note: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    /// What the signed-in person may do about it now.
    pub actions: Vec<crate::domain::tray::TrayAction>,
    /// The attempts of the job it reports, first first.
    pub attempts: Vec<JobAttemptView>,
}

/// One attempt of a background job, as the tray shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobAttemptView {
    pub attempt: i64,
    pub at: DateTime<Utc>,
    pub outcome: String,
    pub error: Option<String>,
}

/// Which items the tray shows. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrayFilter {
    #[serde(default)]
    pub client: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub reason: String,
    /// `open` (the default), `resolved`, `dismissed` or `all`.
    #[serde(default)]
    pub state: String,
}

/// The tray: the items the filter selects, newest first, and what the
/// filter can choose from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrayView {
    pub items: Vec<HygieneItemView>,
    /// More items matched than are shown.
    pub more: bool,
    pub clients: Vec<(ClientId, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntryView {
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// What happened, in words (names and amounts).
    pub sentence: String,
    /// `user`, `rail`, `sync` or `system`.
    pub actor_kind: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub hash: String,
}

/// Who made an audit entry, by kind: a person (their email), a rail's event
/// (`ramp:event:…`), the sync (`rowcol:sync`), or RowCol itself (`rowcol`,
/// `rowcol:release`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    User,
    Rail,
    Sync,
    System,
}

impl ActorKind {
    pub const ALL: [ActorKind; 4] = [
        ActorKind::User,
        ActorKind::Rail,
        ActorKind::Sync,
        ActorKind::System,
    ];

    pub fn of(actor: &str) -> Self {
        if actor.contains('@') {
            ActorKind::User
        } else if actor == "rowcol:sync" {
            ActorKind::Sync
        } else if actor == "rowcol" || actor.starts_with("rowcol:") {
            ActorKind::System
        } else {
            ActorKind::Rail
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Rail => "rail",
            ActorKind::Sync => "sync",
            ActorKind::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[cfg(test)]
mod actor_kind_tests {
    use super::ActorKind;

    #[test]
    fn each_actor_has_its_kind() {
        for (actor, kind) in [
            ("advisor@northwind.test", ActorKind::User),
            ("ramp:event:e347", ActorKind::Rail),
            ("rowcol:sync", ActorKind::Sync),
            ("rowcol", ActorKind::System),
            ("rowcol:release", ActorKind::System),
        ] {
            assert_eq!(ActorKind::of(actor), kind, "{actor}");
            assert_eq!(ActorKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ActorKind::parse("robot"), None);
    }
}

/// The result of re-hashing a firm's audit chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainStatus {
    pub entries: i64,
    pub ok: bool,
    /// The first sequence number whose hash or link does not match.
    pub broken_at: Option<i64>,
    /// What broke there, in words (its contents, its link, a gap, the
    /// firm's stored head).
    #[serde(default)]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    pub chain: ChainStatus,
    /// The `before` of the next (older) page, if there is one.
    pub older: Option<i64>,
    /// What the filters can choose from.
    pub clients: Vec<(ClientId, String)>,
    /// The firm's people (emails), who act as themselves.
    pub people: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxStatus {
    pub today: NaiveDate,
    pub now: DateTime<Utc>,
    pub bills_paid: usize,
    pub webhooks_delivered: usize,
}

/// A rail connection's health, as people see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionHealth {
    Connected,
    NeedsReconnect,
    Disconnected,
    Never,
}

impl ConnectionHealth {
    /// The badge's colour class: green, red, amber, grey.
    pub fn badge_class(self) -> &'static str {
        match self {
            ConnectionHealth::Connected => "badge ok",
            ConnectionHealth::NeedsReconnect => "badge bad",
            ConnectionHealth::Disconnected => "badge warn",
            ConnectionHealth::Never => "badge muted",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ConnectionHealth::Connected => "connected",
            ConnectionHealth::NeedsReconnect => "needs reconnect",
            ConnectionHealth::Disconnected => "disconnected",
            ConnectionHealth::Never => "never connected",
        }
    }
}

/// One client's connection to one rail (never a token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RailConnectionView {
    pub rail: super::Rail,
    pub health: ConnectionHealth,
    /// QBO company, Ramp business, bank ••mask, Stripe account.
    pub account_name: Option<String>,
    pub external_id: Option<String>,
    pub method: Option<String>,
    pub connected_by: Option<String>,
    pub connected_at: Option<DateTime<Utc>>,
    pub access_expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Said ahead of time: consent or refresh token running out soon.
    pub warning: Option<String>,
    /// Ramp: the connection's webhook subscription (`active`,
    /// `pending_verification`).
    pub webhook_status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientConnectionsView {
    pub client_id: ClientId,
    pub name: String,
    pub rails: Vec<RailConnectionView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionsView {
    /// Only admins get the connect / disconnect buttons (the server refuses
    /// everyone else anyway).
    pub can_manage: bool,
    /// Advisors and admins may ask for a client's rails to be read again.
    pub can_refresh: bool,
    pub clients: Vec<ClientConnectionsView>,
}

/// A person of the firm, as the users page shows them (never a hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserView {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    /// The person looking.
    pub is_me: bool,
    /// Signs in with a second factor.
    pub totp_on: bool,
}

/// An invitation not yet accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InviteView {
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    pub expires_at: DateTime<Utc>,
}

/// The firm's people and open invitations (admins only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsersView {
    pub users: Vec<UserView>,
    pub invites: Vec<InviteView>,
    /// Everyone who approves payments must use two-step sign-in.
    pub totp_for_approvers: bool,
}

/// Turning on two-step sign-in: the QR code to scan (SVG), and the same
/// as text for typing in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TotpEnrolment {
    pub qr_svg: String,
    pub secret_base32: String,
}

/// A one-time link just issued: shown once, to hand to the person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkIssued {
    /// The path of the link on this site (`/welcome?token=…`).
    pub path: String,
    pub expires_at: DateTime<Utc>,
    pub message: String,
}

/// What a one-time link is, for its page (nothing secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkInfo {
    /// `invite` or `reset`.
    pub purpose: String,
    pub email: String,
    pub firm_name: String,
    pub role: Option<Role>,
}

/// What changed since the person last looked (`/updates`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestView {
    /// From when: the last time they marked it seen, else a week back.
    pub since: DateTime<Utc>,
    pub first_look: bool,
    /// Payments that failed, came back or may go twice.
    pub urgent: Vec<DigestItem>,
    /// Everything else filed in the tray since.
    pub flagged: Vec<DigestItem>,
    /// Items filed since beyond what is listed.
    pub more: bool,
    /// Open items in the tray now, of any age.
    pub open_now: i64,
    /// Connections that need signing in again, now.
    pub broken: Vec<BrokenConnection>,
    /// Payments waiting for a second approver, now.
    pub waiting: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestItem {
    pub hygiene_id: String,
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub payment_id: Option<String>,
    /// The item in plain words.
    pub headline: String,
    pub reason_code: ReasonCode,
    pub severity: Severity,
    /// `open`, `resolved` or `dismissed`, now.
    pub status: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokenConnection {
    pub client_id: String,
    pub client_name: String,
    pub rail: String,
}

/// A person's notification choices (`/account`). The webhook address is
/// never sent back: only whether one is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifySettingsView {
    /// Email is configured on this instance.
    pub mail: bool,
    pub email: String,
    /// `(topic, its words, chosen)` for email, then for the webhook.
    pub email_topics: Vec<(String, String, bool)>,
    pub webhook_topics: Vec<(String, String, bool)>,
    pub webhook_set: bool,
    /// The latest messages sent to the person.
    pub recent: Vec<SentNotice>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentNotice {
    pub channel: String,
    /// `queued`, `sending`, `sent`, `failed` or `uncertain`.
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub at: DateTime<Utc>,
}
