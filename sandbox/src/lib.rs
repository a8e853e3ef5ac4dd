//! Sandbox simulators of Ramp, QuickBooks Online, Plaid and Stripe in one process,
//! sharing one simulated clock, so RowCol can run end to end without the
//! real rails. The crate shares no code with RowCol's rail adapters: it
//! speaks the rails' wire formats on its own (see `wire`), and takes only the
//! shared movable [`Clock`] from `app`.
//!
//! Mount with `Router::new().nest("/sandbox", sandbox.router())`. Paths below
//! are relative to that mount:
//!
//! * `/ramp/developer/v1/...`: entities (list and one, with `accounts[]`),
//!   vendors (list, get, create — approved at once, without a bank account
//!   —, PATCH, DELETE while `is_deletable`; `/{id}/accounts[/{id}]`,
//!   `/{id}/contacts[/{id}]`; every field of Ramp's `Vendor` schema),
//!   `/bills/drafts[/{id}]`, `/transactions[/{id}]` (card transactions;
//!   `state`, `from_date`, `to_date`, `sync_status`, `updated_after`;
//!   declined ones only for `state=DECLINED|ALL`) and `/transfers`
//!   (statement payments) — these three read-only, seeded per business from
//!   the world seed; each needs its scope (403 without), and every list
//!   refuses an undocumented parameter (400). Bills (list with every documented filter,
//!   an undocumented one refused with 400; create by ACH, DOMESTIC_WIRE or
//!   PAID_MANUALLY, the other methods refused as for a vendor without an
//!   address, card or foreign account; get; PATCH while open; DELETE
//!   archives an unpaid bill, whose payment is then never made). Bills carry
//!   every field of Ramp's `Bill` schema. Validation errors are 400
//!   (`InvalidInput`), a page size out of range 422; `page.next` is built
//!   from the configured base. Bearer token per business; `x-trace-id` on
//!   every response; 200 requests per rolling 10 s per business, then 429.
//!   As Ramp documents no de-duplication, every `POST /bills` creates a
//!   bill, even with a `remote_id` seen before.
//! * `/qbo/v3/company/{realmId}/...`: `query` (GET `?query=` or POST
//!   `application/text`; `SELECT *`, `count(*)` or a field list; no `!=`),
//!   `{entity}/{id}` reads (Bill, BillPayment, Vendor, Account, Customer,
//!   Invoice, Payment; `companyinfo/{realmId}`), `POST {entity}`: create,
//!   full update and `sparse` update (SyncToken checked, 5010 when stale),
//!   `?operation=delete` (Bill, BillPayment, Invoice, Payment), void
//!   (`?operation=void` for Invoice, `?operation=update&include=void` for
//!   Payment and BillPayment). A BillPayment lowers the Bills it links, a
//!   Payment the Invoices; deleting or voiding restores them. `cdc`
//!   (`entities`, `changedSince` at most 30 days back, 1,000 objects,
//!   deleted ones as `{Id, status: "Deleted", MetaData}`). A `requestid`
//!   repeated on a write gets the first answer back (kept in memory). 10
//!   requests a second and 500 a minute per realm, then 429 (code 3001).
//!   Times are local to the company's time zone (`DefaultTimeZone`, US
//!   daylight saving) with their offset. `intuit_tid` on every response.
//! * `/plaid/...`: `accounts/get` (balances as of the last refresh: the
//!   last `accounts/balance/get`, or the first advance into a new day),
//!   `accounts/balance/get` (live), `transactions/sync` (every field
//!   plaid-python's models require; pending card purchases of the ordinary
//!   banking, chosen from the seed, may be `modified`, then post the next
//!   day: the pending one `removed`, the posted one `added` with
//!   `pending_transaction_id`), `transactions/refresh`, `item/get`,
//!   `sandbox/item/reset_login`. Per-Item rate limits on a rolling minute
//!   of the sandbox clock (Plaid's Production defaults: balance/get 5,
//!   accounts/get and item/get 15, transactions/sync 50) → 429
//!   `RATE_LIMIT_EXCEEDED` with the endpoint's code (`plaid_limits`). Link:
//!   `link/token/create` (Hosted Link: `hosted_link_url` under
//!   [`SandboxConfig::public_base`]), `link/token/get`,
//!   `item/public_token/exchange` (single use, 30 min), `item/remove`,
//!   `sandbox/public_token/create`. Every access token issued for an item
//!   works until `item/remove` (then ITEM_NOT_FOUND). Webhooks:
//!   `webhook_verification_key/get`, `item/webhook/update`,
//!   `sandbox/item/fire_webhook` (see "Plaid webhooks" below).
//! * `/plaid-link/hl/{opaque}`: the Link pages (HTML forms, no script):
//!   institution → `user_good`/`pass_good` → account → back to the
//!   `completion_redirect_uri`; update mode signs in only and repairs
//!   ITEM_LOGIN_REQUIRED. Not behind the Plaid fault layer.
//! * `/ramp/developer/v1/webhooks`: subscriptions (create → a
//!   `webhooks.verification` event with a `challenge` → `/{id}/verify` →
//!   `active`), list, get, delete.
//!
//! * `/stripe/v1/...`: `oauth/token`, `oauth/deauthorize` (Stripe Apps
//!   OAuth, authenticated with the app's secret key) and `GET account`
//!   (OAuth access token or the account's `rk_test_…` key). The resources
//!   (secret key as Bearer or Basic user: the account's `rk_test_…`, an
//!   OAuth access token, or the Stripe app's `sk_test_…` with
//!   `Stripe-Account: acct_…`; bracket-nested form bodies and queries):
//!   `customers` (create, get, list), `invoices` (create, get, update, list;
//!   `/{id}/finalize|pay|void|mark_uncollectible|add_lines`),
//!   `invoiceitems`, `payment_intents` (create with `confirm`, get, list,
//!   `/{id}/confirm`; `pm_card_visa` succeeds, `pm_card_chargeDeclined*`
//!   give a 402 `card_error` with `decline_code`), `charges`,
//!   `balance_transactions` (fee 2.9% + 30¢; `?payout=`), `payouts`
//!   (automatic, daily: pending → in_transit → paid), `events`
//!   (`previous_attributes` on updates), `reporting/report_types/{id}`,
//!   `reporting/report_runs` (pending, then succeeded on a read a second
//!   later; `result` a File) and `files/{id}`; the CSV at
//!   `/stripe/files/v1/files/{id}/contents`. Lists: `limit` 1–100 (10),
//!   `starting_after`/`ending_before`, `created[...]`, newest first.
//!   `Idempotency-Key` replays (24 h; other parameters → 400
//!   `idempotency_error`); 25 requests/s per account, then 429
//!   (code `rate_limit`). Errors in Stripe's `{"error": {…}}` envelope,
//!   `Request-Id` on every response. Each client's account is seeded from
//!   the world's seed (customers, invoices over 45 days, payments, payouts)
//!   on the first call for it, saved apart ([`STRIPE_PART`]), and carries
//!   on as the clock advances (customers pay open invoices,
//!   payouts move). [`Sandbox::stripe_root_router`] serves the same routes
//!   at `/v1/...` for clients that take no path prefix (Stripe's Node
//!   library).
//!
//! OAuth (see [`oauth`]; token and code times are wall clock): consent pages
//! for a person in a browser at `/intuit/connect/oauth2`,
//! `/ramp-app/v1/authorize` and `/stripe-marketplace/oauth/v2/authorize`
//! (sign in with the demo credentials, pick the company / business /
//! account, Allow or Deny, redirect to one of
//! [`SandboxConfig::redirect_uris`]); token endpoints
//! `/qbo/oauth2/v1/tokens/bearer`, `/ramp/developer/v1/token` and
//! `/stripe/v1/oauth/token` (codes single use, 10 min, bound to client,
//! redirect URI, account and PKCE S256; refresh tokens rotate on every
//! refresh); revocation at `/qbo/v2/oauth2/tokens/revoke`,
//! `/ramp/developer/v1/token/revoke` and `/stripe/v1/oauth/deauthorize`.
//! API calls accept any live access token of a grant for the account.
//!
//! Control routes (sandbox only, JSON):
//!
//! * `POST /control/advance {"days": 1..=90}` → [`AdvanceReport`]. Moves the
//!   clock, pays due Ramp bills (QBO BillPayment + Plaid outflow + a
//!   `bills.paid` webhook), runs the Stripe accounts' days, delivers due
//!   webhooks, persists. A missing,
//!   malformed or out-of-range body → 400 `{"error": "..."}`.
//! * `GET /control/faults` → [`Faults`]; `POST /control/faults` with a
//!   [`Faults`] document replaces them all (fields left out are off/zero;
//!   400 `{"error"}` if malformed). Faults are consumed as they fire.
//! * `GET /control/state` → today, now, and counts (Ramp bills per status,
//!   QBO open bills and BillPayments, webhooks per status).
//! * `POST /control/oauth/revoke {"rail": "qbo|ramp|stripe", "account"}`:
//!   consent withdrawn, every grant for the account dies;
//!   `POST /control/oauth/expire` (same body): its access tokens expire now;
//!   `POST /control/oauth/settings {"qbo_refresh_grace_secs",
//!   "ramp_access_expires_in"}` (both optional) → [`OAuthSettings`].
//! * `GET /control/credentials`: the apps, URLs, demo sign-ins and, per
//!   client, tokens of grants of their own (issued once, persisted) for
//!   outside programs.
//! * `POST /control/ramp/vendor_bank_change {"business_id", "vendor_id"}`
//!   → `{vendor_id, previous_account_id, account_id, account_last_four}`:
//!   the vendor's bank account on Ramp is replaced by a new one (the old
//!   one is gone from its accounts list).
//! * `POST /control/ramp/ach_return {"business_id", "bill_id", "reason"}`
//!   → `{bill_id, reason, amount_cents, transaction_id}`: the PAID ACH
//!   bill's debit comes back today with that return code (as
//!   [`Faults::ramp_ach_return_next`] does later); 404 for an unknown
//!   bill, 409 for one that is not a paid, unreturned ACH bill.
//! * `POST /control/plaid/rotate_webhook_key` → `{"key": <new JWK>,
//!   "expired": [<old JWK, expired_at now>]}`: Plaid webhooks are signed
//!   with a new key from now on; the old one stays retrievable.
//!
//! Ramp webhooks (`bills.paid`, thin payload) go to every active
//! subscription of the business that lists the type, signed with that
//! subscription's secret (hex HMAC-SHA256 of the raw body in both
//! `X-Ramp-Webhook-Signature` and `X-Ramp-Signature`). The world has one
//! subscription per business to [`SandboxConfig::ramp_webhook_url`] with
//! [`SandboxConfig::ramp_webhook_secret`] (following them across restarts).
//! 2xx = delivered; 429/5xx/timeout = retried (up to 10 tries, backoff
//! 30 s doubling to 6 h on the sandbox clock) by `deliver_pending_webhooks`
//! and on every advance; other statuses fail for good. Nothing is delivered
//! in the background: call `deliver_pending_webhooks` from a job if wanted.
//!
//! Plaid webhooks go through the same queue (and the same webhook faults)
//! to an Item's webhook URL (from `/link/token/create`'s `webhook` or
//! `options.webhook` at exchange, or `/item/webhook/update`; an Item
//! without one gets nothing): a POST of the JSON body with
//! `Plaid-Verification: <JWT>` (ES256, `kid` of the world's key, claims
//! `iat` = wall-clock seconds of the attempt and `request_body_sha256`).
//! Anything but 200, or no answer in 10 s, is retried 30 s later, then 4×
//! longer each time, while within 24 h. They fire on `reset_login` and a
//! login-breaking fault (ITEM `ERROR`), on a fault lifted (`LOGIN_REPAIRED`),
//! on an advance that brings an Item that has synced new transactions
//! (`SYNC_UPDATES_AVAILABLE`), on `item/webhook/update`
//! (`WEBHOOK_UPDATE_ACKNOWLEDGED`, to the new URL) and on `fire_webhook`;
//! `item/remove` cancels what is still queued for the Item.
//!
//! The persisted state (through [`SimStore`]) holds the sandbox's own access
//! tokens; treat the stored document as a secret.

mod control;
mod engine;
mod faults;
pub mod oauth;
mod plaid;
mod plaid_limits;
mod plaid_link;
mod plaid_webhooks;
mod qbo;
pub mod qbo_webhooks;
mod ramp;
mod saving;
mod secret;
pub mod sim_state;
mod stripe;
#[cfg(test)]
mod testkit;
mod wire;
pub mod world;

use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use clock::Clock;
use serde::{Deserialize, Serialize};
use sim_state::SimState;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::Mutex;

pub use engine::sign_ramp_webhook;
pub use oauth::{OAuthApp, OAuthSettings, ProviderApps, StripeApp};
pub use saving::{client_part, MemoryStore, SimStore, Snapshot, STRIPE_PART};
pub use secret::Secret;

/// How the sandbox reaches RowCol and which credentials its Plaid expects.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// e.g. `http://127.0.0.1:PORT/webhooks/ramp`. Empty: webhooks stay queued.
    pub ramp_webhook_url: String,
    pub ramp_webhook_secret: Secret,
    /// The simulated QBO app's webhook endpoint, e.g.
    /// `http://127.0.0.1:PORT/webhooks/qbo`. Empty: no QBO webhooks.
    pub qbo_webhook_url: String,
    /// The QBO app's webhook verifier token (`intuit-signature` key).
    pub qbo_webhook_verifier: Secret,
    /// The payload format the QBO app has switched on.
    pub qbo_webhook_format: qbo_webhooks::QboWebhookFormat,
    pub plaid_client_id: String,
    pub plaid_secret: Secret,
    /// The world's seed ([`world::DEFAULT_SEED`] unless configured).
    pub seed: u64,
    /// The sandbox's first day. A fresh world starts at noon UTC on this date
    /// (the clock is offset to it); `None` starts it now. Ignored when a
    /// persisted world is loaded: its clock carries on where it stopped.
    pub start: Option<NaiveDate>,
    /// How many demo clients a fresh world has (2..=44; the first ones of
    /// [`world::CLIENT_NAMES`]). Ignored when a persisted world is loaded.
    pub clients: usize,
    /// A fresh world lives on its own ([`Faults::living_world`]) and starts
    /// with [`world::BROKEN_AT_START`]'s bank logins expired. Ignored when a
    /// persisted world is loaded.
    pub living: bool,
    /// Absolute URL of the sandbox mount, e.g. `http://127.0.0.1:3000/sandbox`
    /// (hosted Link URLs and other absolute links are built from it).
    pub public_base: String,
    /// The redirect URIs registered for every simulated app (exact match),
    /// also the allowed Plaid `completion_redirect_uri` / `redirect_uri`.
    pub redirect_uris: Vec<String>,
}

/// Injected misbehaviour, consumed as it fires.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Statuses (429 with Retry-After: 1, 500, 503, ...) answered to the next
    /// `POST /bills`, in order, creating nothing.
    pub ramp_create_fail_next: Vec<u16>,
    /// Create the bill, then answer 500 (the response is "lost").
    pub ramp_create_lose_response_next: u32,
    /// `GET /bills` leaves out bills created less than this many seconds ago
    /// (sandbox clock): Ramp's list may lag a just-created bill. Stays on
    /// until switched off; `GET /bills/{id}` is not affected.
    pub ramp_list_lag_secs: u32,
    /// Deliver every webhook twice.
    pub webhook_duplicate: bool,
    /// Silently drop the next N webhooks.
    pub webhook_drop_next: u32,
    /// The next N BillPayments recorded in QBO are off by +1.00.
    pub qbo_amount_mismatch_next: u32,
    /// The next N paid bills are NOT recorded in QBO (late sync).
    pub qbo_skip_next: u32,
    /// Item ids whose product calls answer ITEM_LOGIN_REQUIRED.
    pub plaid_login_required: Vec<String>,
    /// Bill-pay debits first show as pending (reducing `available` only)
    /// and post at the next advance after their date, as Plaid reports it:
    /// a new posted transaction with `pending_transaction_id`, the pending
    /// one in `removed`.
    pub plaid_debits_pending_first: bool,
    /// The next N pending debits fall off instead of posting (removed
    /// without a replacement; the held amount is released).
    pub plaid_drop_pending_next: u32,
    /// The next N `/transactions/sync` calls that continue a pagination (a
    /// cursor with more after it) fail with
    /// `TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION`, as when data changes
    /// between pages.
    pub plaid_sync_mutation_next: u32,
    /// Switch QBO's per-realm throttle (10 requests a second, 500 a
    /// minute, on the wall clock) off. It is on by default, as in QBO. The
    /// deterministic simulation turns it off: a wall-clock limit makes a
    /// seed's trace depend on the machine's speed, and RowCol does not yet
    /// pace its QBO calls (a follow-up: under the harness's bursts some
    /// payments were left unverified).
    pub qbo_throttle_off: bool,
    /// Switch the other rails' own rate limits off too: Ramp's 200 calls
    /// per rolling 10 s and Stripe's 25 a second (wall clock), and Plaid's
    /// per-Item limits per minute (sandbox clock, which runs with the wall
    /// clock between advances). On by default, as on the real rails. The
    /// deterministic simulation turns them off for the reason above (and
    /// injects its own 429s).
    pub rate_limits_off: bool,
    /// The world keeps living as the clock moves: new bills arrive in QBO
    /// (about one every three days per client), and about once a month per
    /// client an open bill is paid by hand (a check the bank shows),
    /// deleted, or has its amount or vendor changed. Everything it does is
    /// in the state's `world_log`. On in the demo world; off by default,
    /// so tests see only what they cause.
    pub living_world: bool,
    /// The next calls to a rail's API (any endpoint but the sandbox's own
    /// controls) fail before doing anything, in order per rail: 429 (with
    /// `Retry-After: 1`), 5xx, or `status` 0 — a hang: no answer for
    /// `rail_hang_ms`, so the caller's timeout cuts it. Each answer is in
    /// that rail's error format.
    pub rail_fail_next: Vec<RailFault>,
    /// How long a hang lasts (milliseconds; 0 means 2,000).
    pub rail_hang_ms: u32,
    /// The next N webhooks are queued a day late: they arrive after events
    /// that happened later.
    pub webhook_delay_next: u32,
    /// Due webhooks are delivered newest first.
    pub webhook_reorder: bool,
    /// The next N writes to QBO (POST of an entity) are applied, then
    /// answered 500: the caller cannot know they happened.
    pub qbo_write_lose_response_next: u32,
    /// The next N paid bills reach QBO three days late (Ramp's accounting
    /// sync lagging), not on the day they are paid.
    pub qbo_late_next: u32,
    /// Also send ITEM `LOGIN_REPAIRED` when update mode in the client's own
    /// Link repairs an Item. Plaid documents that webhook only for an Item
    /// repaired *without* update mode in your app, so by default it is not
    /// sent then; on, a receiver meets the extra webhook.
    pub plaid_login_repaired_after_update_mode: bool,
    /// The next paid ACH bills' debits come back, one per entry, with that
    /// NACHA return code (`R01` insufficient funds, `R02` account closed,
    /// …), 2–4 business days after Ramp marked them PAID: the bank shows a
    /// credit `ACH RETURN <code> <REASON> <VENDOR>` for the same amount
    /// (the balance restored) and the Ramp bill is OPEN again with
    /// `paid_at` null, with no webhook (see `engine::return_ach`).
    pub ramp_ach_return_next: Vec<String>,
    /// ACH bills created from now on send their debit this many business
    /// days before the arrival date (0: on it; at most 5) instead of the
    /// seeded 1–3. Stays until cleared. The bank shows the debit and Ramp's
    /// accounting sync writes the QBO BillPayment on the debit day; Ramp
    /// marks the bill PAID on the arrival date.
    pub ramp_ach_lead_days: Option<u32>,
    /// The next N reads of a vendor's bank accounts (`GET
    /// /vendors/{id}/accounts`, of a vendor that has one) find it just
    /// changed, as when a vendor (or someone posing as one) has sent new bank
    /// details: the old account is gone, a new one is the default. `POST
    /// /sandbox/control/ramp/vendor_bank_change` does it to a named vendor.
    pub ramp_vendor_bank_change_next: u32,
}

/// Which simulated rail a [`RailFault`] hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SimRail {
    Qbo,
    Ramp,
    Plaid,
    Stripe,
}

/// One injected failure of a rail's next call ([`Faults::rail_fail_next`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RailFault {
    pub rail: SimRail,
    /// 429, 500, 503, …; 0 for a hang.
    pub status: u16,
    /// Only a call of this method (`GET`, `POST`, …), if set.
    #[serde(default)]
    pub method: Option<String>,
    /// Only a call whose path (under the rail's mount, e.g.
    /// `/developer/v1/bills`) is exactly this, if set.
    #[serde(default)]
    pub path: Option<String>,
}

impl RailFault {
    /// The next call to `rail`, whatever it is.
    pub fn any(rail: SimRail, status: u16) -> RailFault {
        RailFault {
            rail,
            status,
            method: None,
            path: None,
        }
    }

    fn matches(&self, rail: SimRail, method: &str, path: &str) -> bool {
        self.rail == rail
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path.as_deref().is_none_or(|p| p == path)
    }
}

/// What the bookkeeper does to a bill in QuickBooks ([`Sandbox::qbo_edit_bill`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QboBillEdit {
    /// Pay the open balance outside RowCol (a BillPayment from Checking).
    PayInFull,
    /// Delete the bill (QBO bills are deleted, not voided).
    Delete,
    /// Change the bill's total (in minor units); the balance moves with it.
    SetTotal(i64),
    /// Point the bill at another vendor (a QBO Vendor Id).
    SetVendor(String),
    /// Correct the amount (minor units) the bill's one BillPayment applies
    /// to it, as a bookkeeper fixes a wrong entry; the balance follows.
    SetPaymentAmount(i64),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdvanceReport {
    pub today: NaiveDate,
    pub now: DateTime<Utc>,
    pub bills_paid: usize,
    pub webhooks_delivered: usize,
}

#[derive(Debug, Clone)]
pub struct DemoWorld {
    pub clients: Vec<DemoClient>,
}

/// One demo client and the credentials RowCol's seeder stores for it.
#[derive(Debug, Clone)]
pub struct DemoClient {
    pub name: String,
    pub currency: String,
    pub qbo_realm_id: String,
    pub qbo_access_token: Secret,
    pub ramp_business_id: String,
    pub ramp_access_token: Secret,
    pub plaid_item_id: String,
    pub plaid_access_token: Secret,
    /// The seeded grants' refresh tokens (owner RowCol) and when their
    /// access tokens expire (wall clock; issued at world generation).
    pub qbo_refresh_token: Secret,
    pub ramp_refresh_token: Secret,
    pub access_expires_at: DateTime<Utc>,
    pub stripe_account_id: String,
    pub stripe_access_token: Secret,
    pub stripe_refresh_token: Secret,
    /// The world's own Ramp webhook subscription for this business (to
    /// [`SandboxConfig::ramp_webhook_url`]) and its signing secret.
    pub ramp_webhook_subscription_id: String,
    pub ramp_webhook_secret: Secret,
}

pub(crate) struct Inner {
    pub(crate) state: Mutex<SimState>,
    pub(crate) clock: Clock,
    pub(crate) store: Arc<dyn SimStore>,
    pub(crate) config: SandboxConfig,
    pub(crate) http: reqwest::Client,
    /// Ramp rate limiting, per business, on wall-clock time (not persisted).
    pub(crate) ramp_hits: std::sync::Mutex<HashMap<String, VecDeque<std::time::Instant>>>,
    /// Stripe rate limiting, per account, on wall-clock time (not persisted).
    pub(crate) stripe_hits: std::sync::Mutex<HashMap<String, VecDeque<std::time::Instant>>>,
    /// QBO throttling and `requestid` replays, per realm (not persisted).
    pub(crate) qbo: qbo::limits::QboMemory,
    /// The `SimState::stripe_changes` whose Stripe part was last saved.
    pub(crate) stripe_saved: std::sync::atomic::AtomicU64,
    /// The client parts as the store last took them (see [`saving`]).
    pub(crate) saved_parts: std::sync::Mutex<saving::SavedParts>,
    /// Held (shared) by whoever must not see the clock jump meanwhile, and
    /// (exclusively) by an advance: see [`Sandbox::hold_clock`].
    pub(crate) clock_barrier: tokio::sync::RwLock<()>,
    /// The provider apps (fixed once generated).
    pub(crate) apps: oauth::ProviderApps,
}

/// The running simulators. Cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    pub(crate) inner: Arc<Inner>,
}

impl Sandbox {
    /// Load the persisted state from the store, or generate the demo world
    /// (deterministic structure; random tokens) and save it. Restores the
    /// clock offset saved in the state into `clock`.
    pub async fn start(
        clock: Clock,
        store: Arc<dyn SimStore>,
        config: SandboxConfig,
    ) -> anyhow::Result<Sandbox> {
        let mut fresh = false;
        // What the store holds of the client parts: nothing for a fresh
        // world or one saved whole (its first save writes every part).
        let mut saved = saving::SavedParts::default();
        let state = match store.load().await? {
            Some(doc) => {
                let apart = saving::client_parts_of(&doc);
                let mut state: SimState = serde_json::from_value(doc)
                    .map_err(|e| anyhow::anyhow!("sandbox state does not parse: {e}"))?;
                if let Some(n) = apart {
                    state.clients = saving::load_clients(&*store, n).await?;
                    saved = saving::SavedParts::loaded(&state.clients)?;
                }
                clock.set_offset_secs(state.clock_offset_secs);
                // Worlds saved before subscriptions existed get them now;
                // the world's own ones follow the configured URL and secret.
                ramp::seed_webhook_subscriptions(&mut state, &config);
                state
            }
            None => {
                if let Some(day) = config.start {
                    clock.start_at(world::start_instant(day));
                }
                let mut s = world::generate_sized(clock.now(), config.seed, config.clients);
                if config.living {
                    s.faults.living_world = true;
                    s.faults.plaid_login_required = s
                        .clients
                        .iter()
                        .filter(|c| world::BROKEN_AT_START.contains(&c.name.as_str()))
                        .map(|c| c.plaid.item_id.clone())
                        .collect();
                }
                s.clock_offset_secs = clock.offset_secs();
                ramp::seed_webhook_subscriptions(&mut s, &config);
                fresh = true;
                s
            }
        };
        let mut state = state;
        let oauth_new = oauth::ensure(&mut state, Utc::now());
        // Made once per world and persisted: receivers cache keys by kid.
        let key_new = plaid_webhooks::ensure_key(&mut state, Utc::now())?;
        // QBO webhooks announce changes from here on, not the world as found.
        let hooks_new = qbo_webhooks::ensure_baseline(&mut state);
        // After the accounts exist (their ids come from `oauth::ensure`).
        if let Some(part) = store.load_part(STRIPE_PART).await? {
            state.stripe = serde_json::from_value(part)
                .map_err(|e| anyhow::anyhow!("sandbox Stripe data does not parse: {e}"))?;
        }
        let mut stripe_made = false;
        if fresh && config.living {
            // In the living demo every fifth client takes payments through
            // Stripe from the start (its data made now, not on first use).
            let users: Vec<String> = state
                .oauth
                .stripe_accounts
                .iter()
                .step_by(5)
                .map(|a| a.id.clone())
                .collect();
            for id in users {
                stripe::ensure_account(&mut state, &id, clock.now());
            }
            stripe_made = true;
        }
        // A fresh world, and what `start` added to a loaded one, in one save.
        if fresh || oauth_new || key_new || hooks_new {
            let batch = saving::Batch::of(&state, &saved, stripe_made)?;
            store.save(&batch.snapshot()).await?;
            batch.landed(&mut saved);
        }
        let apps = state
            .oauth
            .apps
            .as_ref()
            .map(oauth::AppsRec::public)
            .ok_or_else(|| anyhow::anyhow!("sandbox provider apps missing"))?;
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(engine::WEBHOOK_TIMEOUT)
            .build()?;
        let stripe_changes = state.stripe_changes;
        Ok(Sandbox {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                clock,
                store,
                config,
                http,
                ramp_hits: std::sync::Mutex::new(HashMap::new()),
                stripe_hits: std::sync::Mutex::new(HashMap::new()),
                qbo: Default::default(),
                // Whatever `start` made of Stripe's data it saved.
                stripe_saved: std::sync::atomic::AtomicU64::new(stripe_changes),
                saved_parts: std::sync::Mutex::new(saved),
                clock_barrier: tokio::sync::RwLock::new(()),
                apps,
            }),
        })
    }

    /// Keep the clock from jumping while the guard lives: an advance waits
    /// for every guard to drop (and new guards wait for a pending advance).
    /// RowCol's job runner holds one from claiming a job to finishing it:
    /// its lease is measured on this clock, and a jump of a day in the
    /// middle would expire the lease of a job still running, so a second
    /// worker would run it at the same time (two releases of one payment;
    /// found by server/tests/crash/). Do not hold it across a call that
    /// advances.
    pub async fn hold_clock(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.inner.clock_barrier.read().await
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The configuration this sandbox was started with.
    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// A copy of the whole simulator state, for tests and diagnostics. It
    /// holds the simulated rails' access tokens: treat it as a secret.
    pub async fn state(&self) -> SimState {
        self.inner.state.lock().await.clone()
    }

    /// The clients and the credentials RowCol's seeder stores.
    pub async fn world(&self) -> DemoWorld {
        let st = self.inner.state.lock().await;
        let seeded = |rail: SimRail, account: &str| {
            let g = st.oauth.seeded(rail, account);
            let access = g.and_then(|g| g.access.last());
            (
                Secret::new(access.map(|a| a.token.clone()).unwrap_or_default()),
                Secret::new(g.map(|g| g.refresh.clone()).unwrap_or_default()),
                access.map(|a| a.expires_at),
            )
        };
        DemoWorld {
            clients: st
                .clients
                .iter()
                .map(|c| {
                    let (qbo_access, qbo_refresh, qbo_exp) = seeded(SimRail::Qbo, &c.qbo.realm_id);
                    let (ramp_access, ramp_refresh, ramp_exp) =
                        seeded(SimRail::Ramp, &c.ramp.business_id);
                    let stripe_account_id = st
                        .oauth
                        .stripe_account_of(&c.name)
                        .map(|a| a.id.clone())
                        .unwrap_or_default();
                    let (stripe_access, stripe_refresh, _) =
                        seeded(SimRail::Stripe, &stripe_account_id);
                    DemoClient {
                        name: c.name.clone(),
                        currency: c.currency.clone(),
                        qbo_realm_id: c.qbo.realm_id.clone(),
                        qbo_access_token: qbo_access,
                        ramp_business_id: c.ramp.business_id.clone(),
                        ramp_access_token: ramp_access,
                        plaid_item_id: c.plaid.item_id.clone(),
                        plaid_access_token: Secret::new(c.plaid.access_token.clone()),
                        qbo_refresh_token: qbo_refresh,
                        ramp_refresh_token: ramp_refresh,
                        access_expires_at: [qbo_exp, ramp_exp]
                            .into_iter()
                            .flatten()
                            .min()
                            .unwrap_or_else(Utc::now),
                        stripe_account_id,
                        stripe_access_token: stripe_access,
                        stripe_refresh_token: stripe_refresh,
                        ramp_webhook_subscription_id: ramp::seeded_subscription(&st, c)
                            .map(|s| s.id.clone())
                            .unwrap_or_default(),
                        ramp_webhook_secret: Secret::new(
                            ramp::seeded_subscription(&st, c)
                                .map(|s| s.secret.clone())
                                .unwrap_or_default(),
                        ),
                    }
                })
                .collect(),
        }
    }

    /// Routes relative to the `/sandbox` mount.
    pub fn router(&self) -> Router {
        Router::new()
            .nest("/ramp", faults::layer(ramp::router(), self, SimRail::Ramp))
            .nest("/qbo", faults::layer(qbo::router(), self, SimRail::Qbo))
            .nest(
                "/plaid",
                faults::layer(plaid::router(), self, SimRail::Plaid),
            )
            .nest(
                "/stripe",
                faults::layer(stripe::router(), self, SimRail::Stripe),
            )
            .merge(oauth::pages::router())
            .route("/control/oauth/revoke", post(oauth::control::revoke))
            .route("/control/oauth/expire", post(oauth::control::expire))
            .route("/control/oauth/settings", post(oauth::control::settings))
            .route("/control/credentials", get(oauth::control::credentials))
            // The Link pages are the browser's, not the rail API's: no faults.
            .nest("/plaid-link", plaid_link::pages::router())
            .route("/control/advance", post(control::advance))
            .route(
                "/control/faults",
                get(control::faults_get).post(control::faults_set),
            )
            .route("/control/state", get(control::state))
            .route(
                "/control/ramp/vendor_bank_change",
                post(ramp::vendor_bank::change),
            )
            .route("/control/ramp/ach_return", post(ramp::ach_return::control))
            .route(
                "/control/stripe/unified_payments",
                get(stripe::unified_payments::control),
            )
            .route(
                "/control/plaid/rotate_webhook_key",
                post(plaid_webhooks::rotate_key),
            )
            .with_state(self.clone())
    }

    /// The Stripe API alone, to mount at the root of a listener (`/v1/...`):
    /// Stripe's Node library takes a host, port and protocol but no path
    /// prefix, so it cannot reach the routes under `/sandbox/stripe`.
    pub fn stripe_root_router(&self) -> Router {
        faults::layer(stripe::router(), self, SimRail::Stripe).with_state(self.clone())
    }

    /// Move the clock, run the payment engine, persist, deliver due webhooks
    /// (awaited).
    ///
    /// The world at the new time is made durable before the shared clock
    /// moves: RowCol reads that clock too, so a process killed between the
    /// two would otherwise restart on the old (saved) time after its jobs
    /// had leased and stamped work with the new one (a lease a day ahead
    /// holds its job for a day; found by server/tests/crash/). A failed
    /// save leaves the world and the clock as they were.
    pub async fn advance(&self, by: chrono::Duration) -> anyhow::Result<AdvanceReport> {
        let bills_paid = {
            // Before the state lock: a holder may be waiting for the rails.
            let _jump = self.inner.clock_barrier.write().await;
            let mut st = self.inner.state.lock().await;
            let to = Clock::system();
            to.set_offset_secs(self.inner.clock.offset_secs() + by.num_seconds());
            let mut next = st.clone();
            next.clock_offset_secs = to.offset_secs();
            world::continue_activity(&mut next, to.today());
            world::living::live(&mut next, to.today(), to.now());
            engine::debit_due_ach(&mut next, &to);
            let paid = engine::pay_due_bills(&mut next, &to);
            engine::record_late_in_qbo(&mut next, to.now());
            engine::return_due_ach(&mut next, to.today());
            engine::settle_pending_debits(&mut next, to.today());
            if stripe::advance(&mut next.stripe, to.now()) {
                next.stripe_changes += 1;
            }
            world::living::bank_stripe_payouts(&mut next);
            world::refresh_cached_balances(&mut next, to.now());
            for ci in 0..next.clients.len() {
                plaid_webhooks::note_new_transactions(&mut next, ci, to.now());
            }
            self.persist(&next).await?;
            *st = next;
            self.inner.clock.set_offset_secs(to.offset_secs());
            paid
        };
        let webhooks_delivered = self.deliver_pending_webhooks().await;
        Ok(AdvanceReport {
            today: self.inner.clock.today(),
            now: self.inner.clock.now(),
            bills_paid,
            webhooks_delivered,
        })
    }

    /// A change made in QuickBooks by someone other than RowCol (the
    /// client's bookkeeper): for tests of what RowCol does when the ledger
    /// moves under it. Errors if the realm or bill is unknown.
    pub async fn qbo_edit_bill(
        &self,
        realm_id: &str,
        bill_id: &str,
        edit: QboBillEdit,
    ) -> anyhow::Result<()> {
        let mut st = self.inner.state.lock().await;
        let now = self.inner.clock.now();
        let today = self.inner.clock.today();
        let c = st
            .clients
            .iter_mut()
            .find(|c| c.qbo.realm_id == realm_id)
            .ok_or_else(|| anyhow::anyhow!("unknown realm {realm_id}"))?;
        qbo::edit_bill(&mut c.qbo, bill_id, edit, now, today)?;
        self.persist(&st).await
    }

    /// What the living world did on its own ([`Faults::living_world`]),
    /// oldest first.
    pub async fn world_log(&self) -> Vec<world::living::WorldEvent> {
        self.inner.state.lock().await.world_log.clone()
    }

    pub async fn faults(&self) -> Faults {
        self.inner.state.lock().await.faults.clone()
    }

    /// Replace the faults. An Item whose login they break gets ITEM
    /// `ERROR`; one they stop breaking gets `LOGIN_REPAIRED` (if it has a
    /// webhook URL).
    pub async fn set_faults(&self, f: Faults) {
        let mut st = self.inner.state.lock().await;
        let before: Vec<bool> = (0..st.clients.len())
            .map(|ci| plaid::needs_login(&st, ci))
            .collect();
        st.faults = f;
        plaid_webhooks::login_changes(&mut st, &before, self.inner.clock.now());
        self.persist_logged(&st).await;
    }

    /// Deliver queued webhooks whose time has come (first tries and retries),
    /// every rail's (Stripe's events since the last round are queued
    /// first). Returns how many were delivered (acknowledged: 2xx for
    /// Ramp, QBO and Stripe, 200 for Plaid).
    pub async fn deliver_pending_webhooks(&self) -> usize {
        engine::deliver_due(self).await
    }

    /// Save the world: the document, the client parts that changed and
    /// Stripe's part if it changed since it was last saved, in one save
    /// (all or nothing, see [`saving`]): a process killed mid-save restarts
    /// from the last whole world, never with a part a step ahead of the
    /// rest. Callers hold the state's lock, so saves do not interleave.
    pub(crate) async fn persist(&self, st: &SimState) -> anyhow::Result<()> {
        use std::sync::atomic::Ordering;
        let stripe_changed = st.stripe_changes != self.inner.stripe_saved.load(Ordering::SeqCst);
        let batch = {
            let saved = self.saved_parts();
            saving::Batch::of(st, &saved, stripe_changed)?
        };
        self.inner.store.save(&batch.snapshot()).await?;
        batch.landed(&mut self.saved_parts());
        if stripe_changed {
            self.inner
                .stripe_saved
                .store(st.stripe_changes, Ordering::SeqCst);
        }
        Ok(())
    }

    /// What the store holds of the client parts (a panic elsewhere while
    /// it was held leaves it as the last landed save set it).
    fn saved_parts(&self) -> std::sync::MutexGuard<'_, saving::SavedParts> {
        self.inner
            .saved_parts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Persist from a request handler: a failed save is logged, the request
    /// still answers (the in-memory state is the truth for this process).
    pub(crate) async fn persist_logged(&self, st: &SimState) {
        if let Err(e) = self.persist(st).await {
            tracing::error!(error = %e, "sandbox state save failed");
        }
    }
}
