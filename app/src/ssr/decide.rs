//! The approval engine (issue #16): one client's selection judged by every
//! rule with fresh data, inside that client's lock, and turned into
//! payments — approved (release queued) or approved once and waiting for a
//! second approver — or refused as a whole with the rule that said no.
//!
//! `approve_bills` (one client), `approve_batch` (many) and the hygiene
//! tray's retry all come through [`decide_client`]; the second approval
//! through [`approve_second`]; a rejection through [`reject`].

use crate::domain::calendar::payment_arrival_date;
use crate::domain::custody::PaymentState;
use crate::domain::guardrails::LiquidityVerdict;
use crate::domain::rules::{self, BillOutcome, CashFacts, DecideInput, Finding, Rule};
use crate::error::AppError;
use crate::model::*;
use crate::ssr::app_state::AppState;
use crate::ssr::auth::{state, CurrentUser};
use crate::ssr::job_kinds::Job;
use crate::ssr::ports::{LedgerBillNow, PortError};
use crate::ssr::store::approvals::{self, NewApproval};
use crate::ssr::store::audit::{self, Entry};
use crate::ssr::store::payments::{self, NewPayment, Step};
use crate::ssr::store::read_models::{client_summaries, connection_issue};
use crate::ssr::store::{bills, clients, commit, connections, from_ms, hygiene, job_queue, Tx};
use serde_json::json;

/// The most bills one request may approve.
pub const MAX_BILLS: usize = 200;
/// An override's written reason must say something.
pub const OVERRIDE_REASON_MIN_CHARS: usize = 10;

/// One client's selection to judge.
pub struct Request<'a> {
    pub client: &'a ClientId,
    pub bills: Vec<BillId>,
    /// An admin's written reason to override the overridable rules.
    pub override_reason: Option<&'a str>,
    /// A hygiene item this approval resolves (a retry), closed in the same
    /// transaction so the retry happens once.
    pub resolves: Option<&'a str>,
    /// The batch this belongs to: its answer is stored with the decision
    /// and given again for the same key.
    pub batch_key: Option<&'a str>,
}

/// Who may ask for an override: an admin, with a reason. Checked before
/// anything is read.
pub fn check_override(user: &CurrentUser, reason: Option<&str>) -> Result<(), AppError> {
    let Some(reason) = reason else {
        return Ok(());
    };
    if user.role < Role::Admin {
        return Err(AppError::Denied(
            "Only an admin may override a guardrail.".into(),
        ));
    }
    if reason.trim().chars().count() < OVERRIDE_REASON_MIN_CHARS {
        return Err(AppError::Unprocessable(format!(
            "override_reason: write why this override is right (at least {OVERRIDE_REASON_MIN_CHARS} characters)."
        )));
    }
    Ok(())
}

/// A field that is present but blank is absent.
pub fn non_blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A person's reason for acting on a payment, trimmed: 422 naming the
/// field when it is shorter than `min_chars` (`what`: "rejected",
/// "stopped").
pub fn required_reason<'a>(
    reason: &'a str,
    min_chars: usize,
    what: &str,
) -> Result<&'a str, AppError> {
    let reason = reason.trim();
    if reason.chars().count() >= min_chars.max(1) {
        return Ok(reason);
    }
    Err(AppError::Unprocessable(if min_chars > 1 {
        format!("reason: say why the payment is {what} (at least {min_chars} characters).")
    } else {
        format!("reason: say why the payment is {what}.")
    }))
}

fn to_port_message(e: PortError) -> String {
    match e {
        PortError::LoginRequired => {
            "the bank connection needs to be re-authorised (see the hygiene tray)".into()
        }
        PortError::Unavailable(m) => m,
    }
}

/// Bring the client's bank data within policy before judging on it: re-read
/// the balance and the transactions when older than the policy allows (or
/// always, with `force`). A failure is returned as the reason the data could
/// not be refreshed; the freshness rule then refuses if it is still stale.
async fn refresh_if_stale(
    st: &AppState,
    client: &ClientId,
    policy: &clients::ApprovalPolicy,
    force: bool,
) -> Result<(), String> {
    let now = st.clock.now();
    let too_old = |as_of: Option<i64>, max: i64| {
        force || as_of.is_none_or(|t| (now - from_ms(t)).num_seconds() > max)
    };
    if too_old(policy.cash_as_of, policy.cash_max_age_secs) {
        st.cash
            .refresh_cash(client)
            .await
            .map_err(to_port_message)?;
    }
    if too_old(policy.history_as_of, policy.bank_history_max_age_secs) {
        st.cash
            .refresh_bank_history(client)
            .await
            .map_err(to_port_message)?;
    }
    Ok(())
}

/// The ledger's view of the selected bills, read before the approval's
/// transaction (a network call): the inner `Err` says why QuickBooks could
/// not be read.
async fn ledger_view(
    st: &AppState,
    user: &CurrentUser,
    client: &ClientId,
    bills: &[BillId],
) -> Result<Result<Vec<LedgerBillNow>, String>, AppError> {
    let qbo_ids: Vec<String> = {
        let mut conn = st.db.acquire().await?;
        bills::open_for_approval(&mut conn, &user.firm_id, client, bills)
            .await?
            .into_iter()
            .map(|b| b.qbo_bill_id)
            .collect()
    };
    if qbo_ids.is_empty() {
        return Ok(Ok(vec![]));
    }
    Ok(st
        .ledger
        .bills_now(client, &qbo_ids)
        .await
        .map_err(|e| e.to_string()))
}

/// The ledger-mismatch rule: every selected bill as QuickBooks has it now
/// must be what was staged (vendor, amount, open balance). `None` when it
/// is.
fn ledger_mismatch(
    selected: &[bills::SelectedBill],
    view: &Result<Vec<LedgerBillNow>, String>,
) -> Option<Finding> {
    let now = match view {
        Ok(v) => v,
        Err(why) => {
            return Some(Finding::new(
                Rule::StaleData,
                format!("The bills could not be checked against QuickBooks: {why}."),
                None,
            ))
        }
    };
    selected.iter().find_map(|b| {
        let label = b.doc_number.as_deref().unwrap_or(&b.qbo_bill_id);
        let why = match now.iter().find(|l| l.qbo_bill_id == b.qbo_bill_id) {
            None => format!("bill {label} was deleted in QuickBooks"),
            Some(l) if l.vendor_id != b.qbo_vendor_id => {
                format!("bill {label}'s vendor changed in QuickBooks")
            }
            Some(l) if l.amount_minor != b.amount_minor || l.balance_minor != b.balance_minor => {
                let cur = Currency::parse(&b.currency).unwrap_or_else(|_| Currency::usd());
                format!(
                    "bill {label} is {} with {} open in QuickBooks, staged as {} with {} open",
                    Money::new(l.amount_minor, cur.clone()),
                    Money::new(l.balance_minor, cur.clone()),
                    Money::new(b.amount_minor, cur.clone()),
                    Money::new(b.balance_minor, cur)
                )
            }
            Some(_) => return None,
        };
        Some(Finding::new(
            Rule::LedgerMismatch,
            format!(
                "QuickBooks changed since the bills were read: {why}. RowCol is re-reading the ledger; decide again once it has."
            ),
            Some(&b.bill_id),
        ))
    })
}

/// What the rules are judged on, read in the caller's transaction (after
/// the client's lock): blockers, the bank currency and the cash.
struct Facts {
    blockers: Vec<Finding>,
    currency: Currency,
    cash: CashFacts,
}

async fn read_facts(
    tx: &mut Tx<'_>,
    user: &CurrentUser,
    client: &ClientId,
    name: &str,
    refresh_error: Option<String>,
) -> Result<Facts, AppError> {
    let st = state()?;
    let now = st.clock.now();
    let mut blockers = Vec::new();
    let refresh_error_seen = refresh_error.is_some();
    // A rail that needs reconnecting (or was never connected) cannot be
    // trusted: its data may be stale and its writes will not go through.
    let health = connections::rail_health(tx, client.as_str()).await?;
    let issue = connection_issue(&health)
        .filter(|_| !crate::ssr::planted::active(crate::ssr::planted::Bug::NoConnectionCheck));
    if let Some(issue) = issue {
        blockers.push(Finding::new(
            Rule::ConnectionUnhealthy,
            format!(
                "Approvals for {name} are paused: {issue}. An admin can fix it on the Connections page."
            ),
            None,
        ));
    }
    // The cash position inside the lock (includes any payment a concurrent
    // approval just committed).
    let summary = client_summaries(tx, &user.firm_id, now, st.clock.today(), Some(client))
        .await?
        .into_iter()
        .next()
        .ok_or(AppError::NotFound)?;
    let currency = summary.cash.daily_burn.currency.clone();
    let freshness = summary.cash.freshness(now);
    match &summary.cash.available {
        None => blockers.push(Finding::new(
            Rule::StaleData,
            match refresh_error {
                Some(m) => format!("The bank balance could not be read: {m}"),
                None => "no bank balance has been read for this client yet".into(),
            },
            None,
        )),
        Some(_) if !freshness.is_fresh() => blockers.push(Finding::new(
            Rule::StaleData,
            match refresh_error {
                Some(m) => format!(
                    "stale data, nothing was approved: {} (a re-read failed: {m})",
                    freshness.describe()
                ),
                None => format!("stale data, nothing was approved: {}", freshness.describe()),
            },
            None,
        )),
        Some(_) => {}
    }
    // When the bank could not be re-read, that is the first thing to say
    // (503: the data, not a decision, is missing).
    if refresh_error_seen {
        blockers.sort_by_key(|f| f.rule != Rule::StaleData);
    }
    Ok(Facts {
        blockers,
        cash: CashFacts {
            available: summary
                .cash
                .available
                .clone()
                .unwrap_or_else(|| Money::zero(currency.clone())),
            approved_unpaid: summary.cash.approved_unpaid.clone(),
            daily_burn: summary.cash.daily_burn.clone(),
        },
        currency,
    })
}

/// The rules' findings as stored with an approval and in the audit log.
fn findings_json(findings: &[Finding]) -> serde_json::Value {
    json!(findings
        .iter()
        .map(|f| json!({ "rule": f.rule.code(), "effect": f.rule, "message": f.message }))
        .collect::<Vec<_>>())
}

/// What is read about one client's selection before its transaction: the
/// network calls (a fresh bank balance, QuickBooks' view of the bills),
/// which a batch makes for many clients at once.
pub struct Prepared {
    approval: clients::ApprovalPolicy,
    bill_ids: Vec<BillId>,
    refresh_error: Option<String>,
    ledger: Result<Vec<LedgerBillNow>, String>,
}

/// A selection ready to judge, or the answer a batch already gave for it.
pub enum Prep {
    Answered(ClientBatchAnswer),
    Ready(Prepared),
}

/// Judge one client's selection and act on it (see the module docs).
/// Errors are what stops the request itself (not signed in, not the
/// firm's client, a bill not open, a bill already approved); a rule's "no"
/// is an answer with every bill refused.
pub async fn decide_client(
    user: &CurrentUser,
    req: Request<'_>,
) -> Result<ClientBatchAnswer, AppError> {
    match prepare(user, &req).await? {
        Prep::Answered(answer) => Ok(answer),
        Prep::Ready(prepared) => decide_prepared(user, &req, prepared).await,
    }
}

/// The first half of [`decide_client`]: checks, then the rails read
/// (outside any transaction; nothing is written but fresher bank data).
pub async fn prepare(user: &CurrentUser, req: &Request<'_>) -> Result<Prep, AppError> {
    crate::ssr::auth::may_approve(user).await?;
    check_override(user, req.override_reason)?;
    let st = state()?;
    let client = req.client;
    let mut bill_ids = req.bills.clone();
    bill_ids.sort();
    bill_ids.dedup();
    if bill_ids.is_empty() {
        return Err(AppError::Validation(
            "Select at least one bill to approve.".into(),
        ));
    }
    if bill_ids.len() > MAX_BILLS {
        return Err(AppError::Validation(format!(
            "Approve at most {MAX_BILLS} bills at once."
        )));
    }

    // The client must belong to the caller's firm; a batch already answered
    // for it answers the same. (The connection goes back to the pool before
    // the refresh below, which needs one.)
    let approval = {
        let mut conn = st.db.acquire().await?;
        let p = clients::approval_policy(&mut conn, &user.firm_id, client).await?;
        if let Some(key) = req.batch_key {
            if let Some(answer) = stored_answer(&mut conn, user, key, client).await? {
                return Ok(Prep::Answered(answer));
            }
        }
        p
    };
    let refresh_error = refresh_if_stale(&st, client, &approval, false).await.err();
    let ledger = ledger_view(&st, user, client, &bill_ids).await?;
    Ok(Prep::Ready(Prepared {
        approval,
        bill_ids,
        refresh_error,
        ledger,
    }))
}

/// The second half of [`decide_client`]: inside the client's lock, every
/// rule on what [`prepare`] read, and the decision written.
pub async fn decide_prepared(
    user: &CurrentUser,
    req: &Request<'_>,
    prepared: Prepared,
) -> Result<ClientBatchAnswer, AppError> {
    let st = state()?;
    let client = req.client;
    let Prepared {
        approval,
        bill_ids,
        refresh_error,
        ledger,
    } = prepared;
    let now = st.clock.now();
    let today = st.clock.today();
    let mut tx = st.db.begin().await?;
    // Two concurrent approvals for one client are judged one after the
    // other, each against the other's commitments.
    clients::lock_for_approval(&mut tx, client).await?;
    if let Some(key) = req.batch_key {
        if let Some(answer) = stored_answer(&mut tx, user, key, client).await? {
            return Ok(answer);
        }
    }
    // The policy as of the lock: a version published meanwhile judges.
    let (policy, _) = clients::policy(&mut tx, &user.firm_id, client).await?;
    let selected = bills::open_for_approval(&mut tx, &user.firm_id, client, &bill_ids).await?;
    if selected.len() != bill_ids.len() {
        return Err(AppError::NotFound);
    }
    if selected.iter().any(|b| b.payments > 0) {
        return Err(AppError::Conflict(
            "A selected bill is already approved.".into(),
        ));
    }
    let mut facts = read_facts(&mut tx, user, client, &approval.name, refresh_error).await?;
    let mismatch = ledger_mismatch(&selected, &ledger);
    if let Some(f) = mismatch.clone() {
        facts.blockers.push(f);
    }
    let bill_facts = selected
        .iter()
        .map(|b| b.facts())
        .collect::<Result<Vec<_>, _>>()?;
    let others = bills::all_of_client(&mut tx, client).await?;
    let known = bills::known_vendors(&mut tx, client).await?;
    let decision = rules::decide(&DecideInput {
        policy: &policy,
        bills: &bill_facts,
        others: &others,
        known_vendors: &known,
        bank_currency: &facts.currency,
        cash: &facts.cash,
        blockers: facts.blockers.clone(),
        today,
        override_requested: req.override_reason.is_some(),
    })?;

    let mut answer = ClientBatchAnswer {
        client_id: client.clone(),
        client_name: approval.name.clone(),
        approved: vec![],
        awaiting_second_approval: vec![],
        refused: vec![],
        message: String::new(),
    };
    let d = Decided {
        user,
        req,
        client_name: &approval.name,
        bill_ids: &bill_ids,
        policy_version: policy.version,
        currency: &facts.currency,
        decision: &decision,
        now,
    };
    if decision.refused() {
        record_refusal(&mut tx, &d, mismatch.as_ref(), &mut answer).await?;
        finish(&mut tx, user, req.batch_key, client, &answer, now).await?;
        commit(tx).await?;
        return Ok(answer);
    }
    let verdict = decision.verdict.clone().ok_or(AppError::Internal)?;
    let overridden = !decision.overridden.is_empty();
    if overridden {
        record_override(&mut tx, &d, &verdict).await?;
    }
    let mut total = 0i64;
    for (b, (bill_id, outcome)) in selected.iter().zip(&decision.outcomes) {
        debug_assert_eq!(&b.bill_id, bill_id);
        total += b.balance_minor;
        let (entry, released) = create_payment(&mut tx, &d, b, outcome, &verdict, today).await?;
        if released {
            answer.approved.push(entry);
        } else {
            answer.awaiting_second_approval.push(entry);
        }
    }
    if let Some(hygiene_id) = req.resolves {
        hygiene::close(
            &mut tx,
            &user.firm_id,
            hygiene_id,
            hygiene::Closed::Resolved,
            now,
            hygiene::ClosedBy {
                by: &user.email,
                note: "Approved again through every rule: a new payment with its own remote_id.",
            },
        )
        .await?;
    }
    answer.message = approved_message(&d, &answer, total, &verdict);
    finish(&mut tx, user, req.batch_key, client, &answer, now).await?;
    commit(tx).await?;
    Ok(answer)
}

/// What the writes of one client's decision share.
struct Decided<'a> {
    user: &'a CurrentUser,
    req: &'a Request<'a>,
    client_name: &'a str,
    bill_ids: &'a [BillId],
    policy_version: i64,
    currency: &'a Currency,
    decision: &'a rules::ClientDecision,
    now: chrono::DateTime<chrono::Utc>,
}

impl Decided<'_> {
    fn bill_list(&self) -> Vec<&str> {
        self.bill_ids.iter().map(|b| b.as_str()).collect()
    }
}

/// A refused batch: each bill's refusal in the answer, the blocking rule
/// audited, and (refused until re-synced) a ledger re-sync queued.
async fn record_refusal(
    tx: &mut Tx<'_>,
    d: &Decided<'_>,
    mismatch: Option<&Finding>,
    answer: &mut ClientBatchAnswer,
) -> Result<(), AppError> {
    let decision = d.decision;
    let refusal = |o: &BillOutcome| match o {
        BillOutcome::Refused { finding } => Some(finding.clone()),
        _ => None,
    };
    // The cause named is a rule of this client's, not "another client's
    // bill refused the batch".
    let cause = decision
        .outcomes
        .iter()
        .find_map(|(_, o)| {
            refusal(o).filter(|f| !f.message.starts_with("Not approved: a client's"))
        })
        .or_else(|| decision.outcomes.iter().find_map(|(_, o)| refusal(o)))
        .ok_or(AppError::Internal)?;
    for (bill_id, o) in &decision.outcomes {
        if let BillOutcome::Refused { finding } = o {
            answer.refused.push(Refusal {
                bill_id: BillId::parse(bill_id)
                    .map_err(|e| AppError::internal("a stored id does not parse", e))?,
                reason_code: finding.rule.code().into(),
                message: finding.message.clone(),
            });
        }
    }
    answer.message = cause.message.clone();
    let mut detail = json!({
        "client": d.client_name,
        "bills": d.bill_list(),
        "rule": cause.rule.code(),
        "message": cause.message,
        "policy_version": d.policy_version,
    });
    if let (Some(v), Some(o)) = (&decision.verdict, detail.as_object_mut()) {
        o.insert("cash_after_minor".into(), json!(v.cash_after.minor));
        o.insert(
            "required_buffer_minor".into(),
            json!(v.required_buffer.minor),
        );
        o.insert("currency".into(), json!(d.currency.as_str()));
    }
    let client = d.req.client;
    audit::record(
        tx,
        &d.user.firm_id,
        d.now,
        Entry {
            actor: &d.user.email,
            action: "approval.blocked",
            subject: client.as_str(),
            detail,
        },
    )
    .await?;
    if mismatch.is_some_and(|f| f.rule == Rule::LedgerMismatch) {
        // "Refused until re-synced": the re-sync is queued with the refusal.
        let job = Job::SyncLedger {
            client_id: client.to_string(),
        };
        job_queue::enqueue(tx, &job, d.now, d.now).await?;
    }
    Ok(())
}

/// An admin's override: audited with its reason, and filed for another
/// admin to review.
async fn record_override(
    tx: &mut Tx<'_>,
    d: &Decided<'_>,
    verdict: &LiquidityVerdict,
) -> Result<(), AppError> {
    let reason = d.req.override_reason.unwrap_or_default();
    let client = d.req.client;
    audit::record(
        tx,
        &d.user.firm_id,
        d.now,
        Entry {
            actor: &d.user.email,
            action: "approval.override",
            subject: client.as_str(),
            detail: json!({
                "client": d.client_name,
                "bills": d.bill_list(),
                "rules": findings_json(&d.decision.overridden),
                "reason": reason,
                "cash_after_minor": verdict.cash_after.minor,
                "required_buffer_minor": verdict.required_buffer.minor,
                "currency": d.currency.as_str(),
                "policy_version": d.policy_version,
            }),
        },
    )
    .await?;
    let what: Vec<&str> = d
        .decision
        .overridden
        .iter()
        .map(|f| f.message.as_str())
        .collect();
    hygiene::file(
        tx,
        hygiene::NewItem {
            firm_id: d.user.firm_id.as_str(),
            client_id: Some(client.as_str()),
            payment_id: None,
            severity: Severity::High,
            reason_code: ReasonCode::OverrideReview,
            detail: &format!(
                "{} overrode a guardrail for {}: {} Reason given: \u{201c}{}\u{201d}. Another admin should review it.",
                d.user.email,
                d.client_name,
                what.join(" "),
                reason.trim()
            ),
            at: d.now,
            job_id: None,
            opened_by: Some(&d.user.email),
        },
    )
    .await?;
    Ok(())
}

/// One approved bill's payment: created in its first state with its
/// evidence, the approval recorded, and (approved outright) its release
/// queued. Returns the answer's entry and whether it was released.
async fn create_payment(
    tx: &mut Tx<'_>,
    d: &Decided<'_>,
    b: &bills::SelectedBill,
    outcome: &BillOutcome,
    verdict: &LiquidityVerdict,
    today: chrono::NaiveDate,
) -> Result<(BillPayment, bool), AppError> {
    let (to, findings) = match outcome {
        BillOutcome::Approved { findings } => (PaymentState::Approved, findings),
        BillOutcome::Waits { findings } => (PaymentState::AwaitingSecondApproval, findings),
        BillOutcome::Refused { .. } => return Err(AppError::Internal),
    };
    let (user, now) = (d.user, d.now);
    let overridden = !d.decision.overridden.is_empty();
    let pid = PaymentId::generate();
    let arrival = payment_arrival_date(b.due()?, today);
    let amount = Money::new(b.balance_minor, d.currency.clone());
    let mut evidence = format!(
        "liquidity buffer passed: cash after {} ≥ required {}",
        verdict.cash_after, verdict.required_buffer
    );
    if overridden {
        evidence = format!(
            "overridden by {}: {} (reason: {})",
            user.email,
            d.decision
                .overridden
                .iter()
                .map(|f| f.rule.code())
                .collect::<Vec<_>>()
                .join(", "),
            d.req.override_reason.unwrap_or_default().trim()
        );
    }
    if to == PaymentState::AwaitingSecondApproval {
        evidence.push_str("; waits for a second approver");
    }
    payments::create_approved(
        tx,
        NewPayment {
            payment_id: &pid,
            firm_id: &user.firm_id,
            client_id: d.req.client,
            bill_id: &b.bill_id,
            amount: &amount,
            arrival,
            approved_by: &user.user_id,
            policy_version: d.policy_version,
            overridden,
        },
        Step {
            to,
            owner: CustodyOwner::RowCol,
            actor: &user.email,
            evidence,
            at: now,
            audit_detail: Some(json!({
                "client": d.client_name,
                "bill_id": b.bill_id,
                "vendor": b.vendor_name,
                "doc_number": b.doc_number,
                "amount_minor": b.balance_minor,
                "currency": d.currency.as_str(),
                "payment_arrival_date": arrival.to_string(),
                "cash_after_minor": verdict.cash_after.minor,
                "required_buffer_minor": verdict.required_buffer.minor,
                "policy_version": d.policy_version,
                "rules": findings_json(findings),
                "overridden": overridden,
            })),
        },
    )
    .await?;
    approvals::record(
        tx,
        NewApproval {
            payment_id: pid.as_str(),
            user_id: &user.user_id,
            firm_id: &user.firm_id,
            step: approvals::Step::First,
            policy_version: d.policy_version,
            rules: findings_json(findings),
            override_reason: d.req.override_reason.map(str::trim),
            at: now,
        },
    )
    .await?;
    let entry = BillPayment {
        bill_id: BillId::parse(&b.bill_id)
            .map_err(|e| AppError::internal("a stored id does not parse", e))?,
        payment_id: pid.clone(),
    };
    let released = to == PaymentState::Approved;
    if released {
        let job = Job::ReleasePayment {
            payment_id: pid.to_string(),
        };
        job_queue::enqueue(tx, &job, now, now).await?;
    }
    Ok((entry, released))
}

/// "Approved 3 bills for Acme ($1,200.00). Cash after: …; buffer …."
fn approved_message(
    d: &Decided<'_>,
    answer: &ClientBatchAnswer,
    total: i64,
    verdict: &LiquidityVerdict,
) -> String {
    let n = answer.approved.len() + answer.awaiting_second_approval.len();
    let waiting = answer.awaiting_second_approval.len();
    format!(
        "Approved {} bill{} for {} ({}). Cash after: {}; buffer {}.{}{}",
        n,
        if n == 1 { "" } else { "s" },
        d.client_name,
        Money::new(total, d.currency.clone()),
        verdict.cash_after,
        verdict.required_buffer,
        if waiting > 0 {
            format!(
                " {waiting} wait{} for a second approver.",
                if waiting == 1 { "s" } else { "" }
            )
        } else {
            String::new()
        },
        if d.decision.overridden.is_empty() {
            ""
        } else {
            " Overridden with a reason; an admin will review it."
        },
    )
}

async fn stored_answer(
    conn: &mut sqlx::AnyConnection,
    user: &CurrentUser,
    key: &str,
    client: &ClientId,
) -> Result<Option<ClientBatchAnswer>, AppError> {
    match approvals::batch_answer(conn, &user.firm_id, key, client).await? {
        None => Ok(None),
        Some((by, _)) if by != user.user_id.as_str() => Err(AppError::Conflict(
            "This batch key was used by someone else; reload the page for a new one.".into(),
        )),
        Some((_, answer)) => serde_json::from_str(&answer).map(Some).map_err(|e| {
            tracing::error!(error = %e, "stored batch answer does not parse");
            AppError::Internal
        }),
    }
}

async fn finish(
    tx: &mut Tx<'_>,
    user: &CurrentUser,
    batch_key: Option<&str>,
    client: &ClientId,
    answer: &ClientBatchAnswer,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), AppError> {
    if let Some(key) = batch_key {
        let value = serde_json::to_value(answer)
            .map_err(|e| AppError::internal("encoding the batch answer", e))?;
        approvals::store_batch_answer(tx, &user.firm_id, key, client, &user.user_id, &value, now)
            .await?;
    }
    Ok(())
}

/// A payment of the caller's firm that is waiting for its second approver.
async fn waiting_payment(
    conn: &mut sqlx::AnyConnection,
    user: &CurrentUser,
    payment_id: &str,
) -> Result<payments::PaymentRow, AppError> {
    let p = payments::get(conn, payment_id)
        .await?
        .filter(|p| p.firm_id == user.firm_id.as_str())
        .ok_or(AppError::NotFound)?;
    if p.state()? != PaymentState::AwaitingSecondApproval {
        return Err(AppError::Conflict(format!(
            "This payment is {}, not waiting for a second approval.",
            p.state
        )));
    }
    Ok(p)
}

/// The second approval: another person, fresh cash, every rule again. A
/// rule that fails now leaves the payment waiting and says why.
pub async fn approve_second(user: &CurrentUser, payment_id: &str) -> Result<String, AppError> {
    crate::ssr::auth::may_approve(user).await?;
    let st = state()?;
    let (p, approval) = {
        let mut conn = st.db.acquire().await?;
        let p = waiting_payment(&mut conn, user, payment_id).await?;
        let client = ClientId::parse(&p.client_id)
            .map_err(|e| AppError::internal("a stored id does not parse", e))?;
        let approval = clients::approval_policy(&mut conn, &user.firm_id, &client).await?;
        (p, approval)
    };
    if p.approved_by == user.user_id.as_str() {
        return Err(AppError::Denied(
            "You approved this payment first; a second, different person must approve it.".into(),
        ));
    }
    let client = ClientId::parse(&p.client_id)
        .map_err(|e| AppError::internal("a stored id does not parse", e))?;
    // The second approval re-reads the balance whatever its age, and the
    // bill as QuickBooks has it.
    let refresh_error = refresh_if_stale(&st, &client, &approval, true).await.err();
    let bill_id = BillId::parse(&p.bill_id)
        .map_err(|e| AppError::internal("a stored id does not parse", e))?;
    let ledger = ledger_view(&st, user, &client, std::slice::from_ref(&bill_id)).await?;

    let now = st.clock.now();
    let today = st.clock.today();
    let mut tx = st.db.begin().await?;
    clients::lock_for_approval(&mut tx, &client).await?;
    let p = waiting_payment(&mut tx, user, payment_id).await?;
    let (policy, _) = clients::policy(&mut tx, &user.firm_id, &client).await?;
    let bill = bills::open_for_approval(
        &mut tx,
        &user.firm_id,
        &client,
        &[BillId::parse(&p.bill_id)
            .map_err(|e| AppError::internal("a stored id does not parse", e))?],
    )
    .await?;
    let mut facts = read_facts(&mut tx, user, &client, &approval.name, refresh_error).await?;
    let Some(bill) = bill.first() else {
        return Err(AppError::Conflict(
            "This payment's bill is no longer open in QuickBooks (paid or deleted there); reject it."
                .into(),
        ));
    };
    if let Some(f) = ledger_mismatch(std::slice::from_ref(bill), &ledger) {
        facts.blockers.push(f);
    }
    let bill_facts = vec![bill.facts()?];
    // The payment's own amount is already committed: judge the rest of the
    // client's commitments plus this one, with nothing newly selected.
    facts.cash.approved_unpaid = facts
        .cash
        .approved_unpaid
        .checked_sub(&Money::new(p.amount_minor, facts.currency.clone()))?;
    let others = bills::all_of_client(&mut tx, &client).await?;
    let known = bills::known_vendors(&mut tx, &client).await?;
    let first_override = approvals::of_payment(&mut tx, payment_id)
        .await?
        .into_iter()
        .find(|a| a.step == "first")
        .and_then(|a| a.override_reason);
    let decision = rules::decide(&DecideInput {
        policy: &policy,
        bills: &bill_facts,
        others: &others,
        known_vendors: &known,
        bank_currency: &facts.currency,
        cash: &facts.cash,
        blockers: facts.blockers.clone(),
        today,
        // An admin's override at the first approval stands for the rules it
        // overrode; it never stands in for the second person.
        override_requested: first_override.is_some(),
    })?;
    let second = Second {
        user,
        payment_id,
        client_name: &approval.name,
        policy_version: policy.version,
        currency: &facts.currency,
        now,
    };
    if let Some((_, BillOutcome::Refused { finding })) = decision.outcomes.first() {
        let refusal = second.refused(&mut tx, finding).await?;
        commit(tx).await?;
        return Err(refusal);
    }
    let verdict = decision.verdict.clone().ok_or(AppError::Internal)?;
    let findings = match decision.outcomes.first() {
        Some((_, BillOutcome::Approved { findings } | BillOutcome::Waits { findings })) => {
            findings.clone()
        }
        _ => vec![],
    };
    second.approve(&mut tx, &verdict, &findings).await?;
    commit(tx).await?;
    Ok(format!(
        "Approved a second time: {} for {} is released to Ramp. Cash after: {}; buffer {}.",
        Money::new(p.amount_minor, facts.currency.clone()),
        approval.name,
        verdict.cash_after,
        verdict.required_buffer
    ))
}

/// What the writes of a second approval share.
struct Second<'a> {
    user: &'a CurrentUser,
    payment_id: &'a str,
    client_name: &'a str,
    policy_version: i64,
    currency: &'a Currency,
    now: chrono::DateTime<chrono::Utc>,
}

impl Second<'_> {
    /// A rule failed now: audited, and the error that says why (the
    /// payment still waits).
    async fn refused(&self, tx: &mut Tx<'_>, finding: &Finding) -> Result<AppError, AppError> {
        audit::record(
            tx,
            &self.user.firm_id,
            self.now,
            Entry {
                actor: &self.user.email,
                action: "approval.second_refused",
                subject: self.payment_id,
                detail: json!({
                    "client": self.client_name,
                    "rule": finding.rule.code(),
                    "message": finding.message,
                    "policy_version": self.policy_version,
                }),
            },
        )
        .await?;
        Ok(match finding.rule {
            Rule::StaleData => AppError::CashUnavailable(finding.message.clone()),
            Rule::ConnectionUnhealthy | Rule::LedgerMismatch => {
                AppError::Conflict(finding.message.clone())
            }
            _ => AppError::Guardrail(format!(
                "{}: {} The payment still waits.",
                finding.rule.code(),
                finding.message
            )),
        })
    }

    /// The second approval recorded, the payment approved (guarded on its
    /// state) and its release queued.
    async fn approve(
        &self,
        tx: &mut Tx<'_>,
        verdict: &LiquidityVerdict,
        findings: &[Finding],
    ) -> Result<(), AppError> {
        approvals::record(
            tx,
            NewApproval {
                payment_id: self.payment_id,
                user_id: &self.user.user_id,
                firm_id: &self.user.firm_id,
                step: approvals::Step::Second,
                policy_version: self.policy_version,
                rules: findings_json(findings),
                override_reason: None,
                at: self.now,
            },
        )
        .await?;
        let step = payments::record_step(
            tx,
            self.payment_id,
            Step {
                to: PaymentState::Approved,
                owner: CustodyOwner::RowCol,
                actor: &self.user.email,
                evidence: format!(
                    "second approval; liquidity buffer passed: cash after {} ≥ required {}",
                    verdict.cash_after, verdict.required_buffer
                ),
                at: self.now,
                audit_detail: Some(json!({
                    "client": self.client_name,
                    "step": "second",
                    "cash_after_minor": verdict.cash_after.minor,
                    "required_buffer_minor": verdict.required_buffer.minor,
                    "currency": self.currency.as_str(),
                    "policy_version": self.policy_version,
                    "rules": findings_json(findings),
                })),
            },
        )
        .await?;
        if step != payments::StepOutcome::Advanced {
            return Err(AppError::Conflict(
                "This payment changed meanwhile; reload.".into(),
            ));
        }
        job_queue::enqueue(
            tx,
            &Job::ReleasePayment {
                payment_id: self.payment_id.to_owned(),
            },
            self.now,
            self.now,
        )
        .await?;
        Ok(())
    }
}

/// Reject a payment waiting for its second approver (its first approver,
/// another advisor, or an admin), with a reason: it reaches `rejected` and
/// its cash is released at once.
pub async fn reject(
    user: &CurrentUser,
    payment_id: &str,
    reason: &str,
) -> Result<String, AppError> {
    user.require(Role::Advisor)?;
    let reason = required_reason(reason, 1, "rejected")?;
    let st = state()?;
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let p = waiting_payment(&mut tx, user, payment_id).await?;
    let step = payments::record_step(
        &mut tx,
        payment_id,
        Step {
            to: PaymentState::Rejected,
            owner: CustodyOwner::RowCol,
            actor: &user.email,
            evidence: format!("rejected: {reason}"),
            at: now,
            audit_detail: Some(json!({ "reason": reason, "amount_minor": p.amount_minor })),
        },
    )
    .await?;
    if step != payments::StepOutcome::Advanced {
        return Err(AppError::Conflict(
            "This payment changed meanwhile; reload.".into(),
        ));
    }
    commit(tx).await?;
    Ok(format!(
        "Rejected: {} is no longer committed and the bill can be decided again.",
        p.amount()?
    ))
}
