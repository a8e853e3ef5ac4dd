//! The whole simulator state, saved through `SimStore` after every
//! mutation (a document and parts: see `crate::saving`). Amounts are integer minor units (cents).
//! Records hold access tokens, so none of them derives `Debug`.

use crate::Faults;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub const STATE_VERSION: u32 = 1;

#[derive(Clone, Serialize, Deserialize)]
pub struct SimState {
    pub version: u32,
    /// The seed the world was generated from; daily activity continues from it.
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub clock_offset_secs: i64,
    pub faults: Faults,
    /// A counter for trace ids and other sequence numbers.
    pub seq: u64,
    /// Saved as parts of their own (`crate::saving`), not in the document;
    /// read from a document saved before parts existed.
    #[serde(default, skip_serializing)]
    pub clients: Vec<SimClient>,
    pub webhooks: Vec<WebhookRec>,
    /// Paid bills whose QBO record is held back ([`crate::Faults::qbo_late_next`]).
    #[serde(default)]
    pub qbo_late: Vec<LateQboRecord>,
    /// Paid ACH bills whose debit the bank will return on `due`
    /// ([`crate::Faults::ramp_ach_return_next`]).
    #[serde(default)]
    pub ach_returns_due: Vec<AchReturnDue>,
    /// Provider apps, Stripe accounts, authorization codes and grants.
    #[serde(default)]
    pub oauth: crate::oauth::OAuthState,
    /// Plaid Link sessions, public tokens and the access tokens issued by
    /// exchanges (wall-clock times).
    #[serde(default)]
    pub plaid_link: PlaidLinkState,
    /// Ramp webhook subscriptions, every business's.
    #[serde(default)]
    pub ramp_webhook_subs: RampWebhookSubs,
    /// The keys Plaid webhooks are signed with (ES256), oldest first; the
    /// last one is current, the others have `expired_at` set. Made once per
    /// world (see `plaid_webhooks::ensure_key`) and kept across restarts.
    #[serde(default)]
    pub plaid_webhook_keys: Vec<PlaidWebhookKey>,
    /// What QBO webhooks last saw of each realm (see `qbo_webhooks`).
    #[serde(default)]
    pub qbo_hooks: crate::qbo_webhooks::QboHookState,
    /// Every Stripe account's objects (see `stripe::data`). Saved as its
    /// own part ([`crate::STRIPE_PART`]), only when it changed: it is most
    /// of the world's size, and re-sealing it on every Ramp or QBO call
    /// made the simulation four times slower.
    #[serde(skip)]
    pub stripe: crate::stripe::data::StripeData,
    /// Bumped by every change to `stripe`; the sandbox saves the part when
    /// this differs from what it last saved.
    #[serde(skip)]
    pub stripe_changes: u64,
    /// Plaid's per-Item rate limits: recent calls (sandbox clock), not
    /// saved (a rolling minute).
    #[serde(skip)]
    pub plaid_calls: crate::plaid_limits::CallLog,
    /// The last day the living world has lived (see `world::living`).
    #[serde(default)]
    pub living_through: Option<NaiveDate>,
    /// What the living world did on its own, oldest first (capped).
    #[serde(default)]
    pub world_log: Vec<crate::world::living::WorldEvent>,
    /// Stripe payouts already credited to their client's bank.
    #[serde(default)]
    pub stripe_payouts_banked: std::collections::BTreeSet<String>,
}

/// An ACH debit the vendor's bank will send back on `due`.
#[derive(Clone, Serialize, Deserialize)]
pub struct AchReturnDue {
    /// Index into [`SimState::clients`].
    pub client: usize,
    pub bill_id: String,
    /// NACHA return code: `R01`, `R02`, …
    pub reason: String,
    pub due: NaiveDate,
}

/// A BillPayment Ramp's accounting sync will write to QBO on `due`.
#[derive(Clone, Serialize, Deserialize)]
pub struct LateQboRecord {
    /// Index into [`SimState::clients`].
    pub client: usize,
    pub due: NaiveDate,
    pub bill: RampBillRec,
    pub vendor: RampVendorRec,
    pub extra_cents: i64,
}

fn default_seed() -> u64 {
    crate::world::DEFAULT_SEED
}

impl SimState {
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct SimClient {
    pub name: String,
    pub currency: String,
    pub qbo: QboRealm,
    pub ramp: RampBusiness,
    pub plaid: PlaidItem,
}

// ------------------------------------------------------------------- QBO

#[derive(Clone, Serialize, Deserialize)]
pub struct QboRealm {
    pub realm_id: String,
    /// The first access token of the realm's seeded grant (API calls are
    /// authorized by grants: see `crate::oauth`).
    pub access_token: String,
    pub next_id: u64,
    pub created_at: DateTime<Utc>,
    pub accounts: Vec<QboAccount>,
    pub vendors: Vec<QboVendor>,
    pub bills: Vec<QboBill>,
    pub bill_payments: Vec<QboBillPayment>,
    /// The company's time zone (IANA name; empty: `America/Los_Angeles`).
    /// QBO answers times local to it, with its offset.
    #[serde(default)]
    pub time_zone: String,
    /// The A/R side: customers, invoices and received payments.
    #[serde(default)]
    pub sales: QboSales,
    /// What was deleted, and when (for CDC's `status: "Deleted"` records).
    #[serde(default)]
    pub deleted: Vec<QboTombstone>,
}

impl QboRealm {
    pub fn take_id(&mut self) -> String {
        let id = self.next_id;
        self.next_id += 1;
        id.to_string()
    }

    pub fn account_named(&self, name: &str) -> Option<&QboAccount> {
        self.accounts.iter().find(|a| a.name == name)
    }

    pub fn vendor(&self, id: &str) -> Option<&QboVendor> {
        self.vendors.iter().find(|v| v.id == id)
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct QboAccount {
    pub id: String,
    #[serde(default)]
    pub sync_token: u32,
    pub name: String,
    pub account_type: String,
    pub account_sub_type: String,
    pub classification: String,
    pub current_balance_cents: i64,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct QboVendor {
    pub id: String,
    #[serde(default)]
    pub sync_token: u32,
    pub display_name: String,
    pub active: bool,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct QboBill {
    pub id: String,
    pub vendor_id: String,
    pub doc_number: String,
    pub txn_date: NaiveDate,
    pub due_date: NaiveDate,
    pub total_cents: i64,
    pub balance_cents: i64,
    pub expense_account_id: String,
    pub description: String,
    pub sync_token: u32,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct QboBillPayment {
    pub id: String,
    pub vendor_id: String,
    pub txn_date: NaiveDate,
    pub total_cents: i64,
    pub bank_account_id: String,
    pub private_note: Option<String>,
    pub doc_number: Option<String>,
    pub lines: Vec<QboPaymentLine>,
    pub sync_token: u32,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct QboPaymentLine {
    pub amount_cents: i64,
    pub bill_id: String,
}

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct QboSales {
    pub customers: Vec<QboCustomer>,
    pub invoices: Vec<QboInvoice>,
    pub payments: Vec<QboPayment>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct QboCustomer {
    pub id: String,
    pub display_name: String,
    pub active: bool,
    pub sync_token: u32,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// An invoice; voided ones keep their record with zero amounts.
#[derive(Clone, Serialize, Deserialize)]
pub struct QboInvoice {
    pub id: String,
    pub customer_id: String,
    pub doc_number: Option<String>,
    pub txn_date: NaiveDate,
    pub due_date: Option<NaiveDate>,
    pub total_cents: i64,
    pub balance_cents: i64,
    pub lines: Vec<QboSalesLine>,
    pub private_note: Option<String>,
    pub sync_token: u32,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct QboSalesLine {
    pub amount_cents: i64,
    pub description: Option<String>,
}

/// A received payment; lines link the invoices it pays.
#[derive(Clone, Serialize, Deserialize)]
pub struct QboPayment {
    pub id: String,
    pub customer_id: String,
    pub txn_date: NaiveDate,
    pub total_cents: i64,
    pub lines: Vec<QboInvoiceLink>,
    pub private_note: Option<String>,
    pub payment_ref_num: Option<String>,
    pub sync_token: u32,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct QboInvoiceLink {
    pub amount_cents: i64,
    pub invoice_id: String,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct QboTombstone {
    /// The entity name, e.g. `BillPayment`.
    pub entity: String,
    pub id: String,
    pub deleted: DateTime<Utc>,
}

// ------------------------------------------------------------------ Ramp

#[derive(Clone, Serialize, Deserialize)]
pub struct RampBusiness {
    pub business_id: String,
    /// The first access token of the business's seeded grant.
    pub access_token: String,
    pub entity: RampEntity,
    pub vendors: Vec<RampVendorRec>,
    pub bills: Vec<RampBillRec>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct RampEntity {
    pub id: String,
    pub name: String,
    pub bank_account_id: String,
    pub bank_last_four: String,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct RampVendorRec {
    pub id: String,
    pub name: String,
    pub accounting_vendor_remote_id: String,
    pub contact_id: String,
    pub account_id: String,
    pub account_last_four: String,
    pub created_at: DateTime<Utc>,
    /// ISO 3166 country; the world's vendors are all in the US.
    #[serde(default = "us")]
    pub country: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub vendor_owner_id: Option<String>,
    /// The contact's email, as given at create (seeded vendors have none).
    #[serde(default)]
    pub contact_email: Option<String>,
    #[serde(default)]
    pub contact_first_name: Option<String>,
    #[serde(default)]
    pub contact_last_name: Option<String>,
    /// Made through `POST /vendors` (and so deletable until billed); the
    /// world's vendors are synced from the ledger and are not.
    #[serde(default)]
    pub via_api: bool,
}

fn us() -> String {
    "US".into()
}

#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RampStatus {
    #[serde(rename = "OPEN")]
    Open,
    #[serde(rename = "PAID")]
    Paid,
}

impl RampStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RampStatus::Open => "OPEN",
            RampStatus::Paid => "PAID",
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct RampBillRec {
    pub id: String,
    pub remote_id: Option<String>,
    pub entity_id: String,
    pub vendor_id: String,
    pub vendor_contact_id: String,
    pub invoice_number: String,
    pub issued_at: NaiveDate,
    pub due_at: NaiveDate,
    pub amount_cents: i64,
    pub line_items: Vec<(i64, String)>,
    pub memo: Option<String>,
    pub payment_arrival_date: NaiveDate,
    pub source_bank_account_id: String,
    pub vendor_account_id: String,
    pub status: RampStatus,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub payment_date: Option<NaiveDate>,
    pub trace_id: Option<String>,
    /// `ACH`, `DOMESTIC_WIRE` or `PAID_MANUALLY` (worlds saved before the
    /// field existed held only ACH bills).
    #[serde(default = "ach")]
    pub payment_method: String,
    /// `PAID_MANUALLY`'s `manual_payment_method` (CHECK, CASH, ...).
    #[serde(default)]
    pub manual_payment_method: Option<String>,
    #[serde(default)]
    pub posting_date: Option<NaiveDate>,
    /// Set by `DELETE /bills/{id}`: an archived bill is never paid and
    /// stays readable.
    #[serde(default)]
    pub archived_at: Option<DateTime<Utc>>,
    /// The NACHA return code (`R01`, `R02`, …) once the bank returned this
    /// bill's ACH debit ([`crate::Faults::ramp_ach_return_next`]). Sandbox
    /// bookkeeping, not rendered: Ramp documents no such field. A returned
    /// bill is OPEN again but never paid again by the engine.
    #[serde(default)]
    pub ach_return: Option<String>,
    /// How many business days before the arrival date the ACH debit leaves
    /// the client's bank (1–3, fixed at creation from the world's seed; 0
    /// for other methods and for bills saved before the field existed: the
    /// money then moves on the arrival date). Sandbox bookkeeping.
    #[serde(default)]
    pub ach_lead: u32,
    /// The day the money left the client's bank (and Ramp's accounting sync
    /// wrote the QBO BillPayment): set before `paid_at` for an ACH bill with
    /// a lead, on the arrival date otherwise. Sandbox bookkeeping.
    #[serde(default)]
    pub debited_on: Option<NaiveDate>,
}

fn ach() -> String {
    "ACH".to_owned()
}

// ----------------------------------------------------------------- Plaid

#[derive(Clone, Serialize, Deserialize)]
pub struct PlaidItem {
    pub item_id: String,
    pub access_token: String,
    pub institution_id: String,
    pub institution_name: String,
    pub account: PlaidAccount,
    pub login_required: bool,
    /// Ordinary banking continues as the clock advances (see
    /// `world::continue_activity`): its size, payroll phase, and the last
    /// day generated.
    #[serde(default)]
    pub daily_burn_cents: i64,
    #[serde(default)]
    pub payroll_phase: i64,
    #[serde(default)]
    pub activity_through: Option<NaiveDate>,
    /// `/transactions/sync` has been called on this Item: Plaid sends
    /// `SYNC_UPDATES_AVAILABLE` only to Items that have synced once.
    #[serde(default)]
    pub sync_started: bool,
    /// How much of `txns` a `SYNC_UPDATES_AVAILABLE` has announced (or
    /// needed no announcing); what lies beyond is news for the next one.
    #[serde(default)]
    pub txns_announced: usize,
    /// A new Item's transactions are not ready until then (its initial
    /// pull): `/transactions/sync` answers PRODUCT_NOT_READY before.
    /// `None` for the seeded Items, whose history is there from the start.
    #[serde(default)]
    pub transactions_ready_at: Option<DateTime<Utc>>,
    /// Append-only; a sync cursor is a position in this log. A pending
    /// transaction is resolved by a later entry: its posted form (carrying
    /// `pending_transaction_id`) or a removal.
    pub txns: Vec<PlaidTxnRec>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct PlaidAccount {
    pub account_id: String,
    pub name: String,
    pub official_name: String,
    pub mask: String,
    pub available_cents: i64,
    pub current_cents: i64,
    /// The balances `/accounts/get` answers: as of the last refresh (a
    /// `/accounts/balance/get`, or Plaid's own once-a-day update); `None`
    /// until the first, when they are the live ones.
    #[serde(default)]
    pub cached: Option<CachedBalances>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct CachedBalances {
    pub available_cents: i64,
    pub current_cents: i64,
    pub as_of: DateTime<Utc>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct PlaidTxnRec {
    pub id: String,
    /// Plaid sign: positive = money out.
    pub amount_cents: i64,
    pub date: NaiveDate,
    pub name: String,
    pub pending: bool,
    /// On a posted transaction: the pending one it replaces. Plaid's sync
    /// then lists that pending one in `removed` (in the same page).
    #[serde(default)]
    pub pending_transaction_id: Option<String>,
    /// This log entry removes transaction `id` (a pending authorisation
    /// that fell off without posting); sync lists it in `removed`.
    #[serde(default)]
    pub removal: bool,
    /// This log entry is the new form of transaction `id`, already listed
    /// (a pending one whose details changed); sync lists it in `modified`.
    #[serde(default)]
    pub modification: bool,
    /// When it was authorized, if not `date` (a posted transaction carries
    /// its pending form's date here).
    #[serde(default)]
    pub authorized_date: Option<NaiveDate>,
    /// A card purchase at a store (Plaid's `payment_channel: "in store"`);
    /// otherwise `other` (bank transfers, fees, deposits).
    #[serde(default)]
    pub in_store: bool,
}

impl PlaidTxnRec {
    /// A posted bank transfer, check or return (not a card purchase):
    /// `amount_cents` in Plaid's sign, positive = money out.
    pub fn posted(id: String, amount_cents: i64, date: NaiveDate, name: String) -> Self {
        PlaidTxnRec {
            id,
            amount_cents,
            date,
            name,
            pending: false,
            pending_transaction_id: None,
            removal: false,
            modification: false,
            authorized_date: None,
            in_store: false,
        }
    }
}

// -------------------------------------------------------------- webhooks

#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    Pending,
    Delivered,
    Failed,
    Dropped,
    /// Its Plaid Item was removed before it got through: Plaid sends
    /// nothing more about a removed Item.
    Cancelled,
}

/// Which rail sends a webhook, and so how it is signed and retried.
#[derive(Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookRail {
    /// HMAC-SHA256 with a subscription's secret; 429/5xx/timeouts retried.
    #[default]
    Ramp,
    /// A `Plaid-Verification` ES256 JWT; anything but 200 retried for 24 h.
    Plaid,
    /// `intuit-signature` (base64 HMAC-SHA256 with the verifier token);
    /// retried on Intuit's schedule; one realm's in order (`business_id`
    /// holds the realm id).
    Qbo,
    /// `Stripe-Signature` (HMAC-SHA256 of `{t}.{body}` with the endpoint's
    /// secret); any non-2xx retried 3 times, then dead-lettered.
    /// `business_id` holds the account, `subscription_id` the endpoint.
    Stripe,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct WebhookRec {
    /// Stable across retries.
    pub event_id: String,
    pub business_id: String,
    /// The exact bytes signed and sent.
    pub body: String,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub status: WebhookStatus,
    pub last_http_status: Option<u16>,
    /// The Ramp webhook subscription this delivery belongs to: its endpoint
    /// and secret. `None` (deliveries queued before subscriptions existed):
    /// the configured URL and secret.
    #[serde(default)]
    pub subscription_id: Option<String>,
    /// A delivery is being awaited right now (never persisted).
    #[serde(skip)]
    pub in_flight: bool,
    /// Ramp for records saved before Plaid webhooks existed.
    #[serde(default)]
    pub rail: WebhookRail,
    /// Plaid: the Item the webhook is about (removing the Item cancels it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    /// Plaid and QBO: where it goes (the Item's webhook URL, the QBO
    /// app's, when it was queued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

// ------------------------------------------------------- Plaid Link state

/// What Plaid Link and the token exchange have issued. Times are wall clock.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct PlaidLinkState {
    pub link_tokens: Vec<LinkTokenRec>,
    pub public_tokens: Vec<PublicTokenRec>,
    /// Access tokens issued by `/item/public_token/exchange` (the world's
    /// seeded one is [`PlaidItem::access_token`]).
    pub access_tokens: Vec<AccessTokenRec>,
    /// Items deleted with `/item/remove`: their tokens answer ITEM_NOT_FOUND.
    pub removed_items: Vec<String>,
    /// The webhook URL of an item (item id, URL), set through Link.
    pub item_webhooks: Vec<(String, String)>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct LinkTokenRec {
    pub link_token: String,
    /// The opaque part of the hosted Link URL.
    pub hosted_id: String,
    pub hosted: bool,
    pub created_at: DateTime<Utc>,
    pub expiration: DateTime<Utc>,
    pub client_name: String,
    pub language: String,
    pub country_codes: Vec<String>,
    pub products: Vec<String>,
    pub webhook: Option<String>,
    pub redirect_uri: Option<String>,
    pub completion_redirect_uri: Option<String>,
    /// Update mode: the item whose login is repaired.
    pub update_item: Option<String>,
    pub session: Option<LinkSessionRec>,
}

#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkStep {
    Institution,
    Credentials,
    Account,
    Finished,
    Exited,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct LinkSessionRec {
    pub link_session_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub step: LinkStep,
    pub institution_id: Option<String>,
    /// The step the user left from (Plaid's exit `status`).
    pub exit_status: Option<String>,
    pub result: Option<LinkResultRec>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct LinkResultRec {
    pub public_token: String,
    pub item_id: String,
    pub institution_id: String,
    pub institution_name: String,
    pub account_id: String,
    pub account_name: String,
    pub account_mask: String,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct PublicTokenRec {
    pub public_token: String,
    pub item_id: String,
    pub created_at: DateTime<Utc>,
    pub used: bool,
    /// Set on the item when exchanged (from the link token or the sandbox call).
    pub webhook: Option<String>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct AccessTokenRec {
    pub access_token: String,
    pub item_id: String,
    pub created_at: DateTime<Utc>,
    /// Issued for outside programs by `/control/credentials` (a token of
    /// their own, so removing RowCol's never touches it, and vice versa).
    #[serde(default)]
    pub external: bool,
}

// ------------------------------------------------ Plaid webhook signing key

/// One ES256 (P-256) key Plaid webhooks are signed with. Its `Debug` does
/// not show the private key.
#[derive(Clone, Serialize, Deserialize)]
pub struct PlaidWebhookKey {
    pub kid: String,
    /// The private key: PKCS#8 DER, standard base64. A secret (the whole
    /// state is sealed at rest); only `plaid_webhooks` reads it.
    pub(crate) pkcs8: String,
    /// The public point's coordinates, base64url without padding (the
    /// JWK's `x` and `y`).
    pub x: String,
    pub y: String,
    /// Unix seconds, wall clock.
    pub created_at: i64,
    /// Unix seconds, wall clock; set when a newer key replaced this one.
    pub expired_at: Option<i64>,
}

impl std::fmt::Debug for PlaidWebhookKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaidWebhookKey")
            .field("kid", &self.kid)
            .field("pkcs8", &"[redacted]")
            .field("x", &self.x)
            .field("y", &self.y)
            .field("created_at", &self.created_at)
            .field("expired_at", &self.expired_at)
            .finish()
    }
}

// ---------------------------------------------- Ramp webhook subscriptions

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct RampWebhookSubs {
    /// The world's own subscriptions (one per business, to the configured
    /// URL) have been created; a deleted one stays deleted.
    pub seeded: bool,
    pub subs: Vec<RampWebhookSub>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct RampWebhookSub {
    pub id: String,
    pub business_id: String,
    pub endpoint_url: String,
    pub event_types: Vec<String>,
    pub additional_headers: Vec<(String, String)>,
    pub secret: String,
    /// `pending_verification`, `active` or `inactive`.
    pub status: String,
    pub challenge: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Created by the world for RowCol's seeder: follows the configured URL
    /// and secret across restarts.
    pub seeded: bool,
}
