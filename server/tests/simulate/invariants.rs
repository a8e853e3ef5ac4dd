//! What must hold after every step: checked against the simulators' own
//! state and RowCol's database.

use super::*;

impl Sim {
    /// An approval just accepted must keep the buffer on the data the
    /// simulators hold: the bank's available balance (Plaid), less every
    /// live payment of the client whose debit the bank does not show yet
    /// (none for it, or only one that fell off), less this one, at least
    /// `buffer_days` × daily burn (RowCol's policy and burn estimate).
    pub(crate) async fn check_buffer(&mut self, client_id: &str, bill_id: &str, label: &str) {
        let pool = &self.app().state.app.db.pool;
        let name: String = sqlx::query_scalar("select name from client where client_id = $1")
            .bind(client_id)
            .fetch_one(pool)
            .await
            .expect("client name");
        let live: Vec<(String, i64, String)> = sqlx::query_as(
            "select payment_id, amount_minor, bill_id from payment
             where client_id = $1 and state in ('awaiting_second_approval', 'approved', 'released',
                                                'paid', 'recorded', 'verified')",
        )
        .bind(client_id)
        .fetch_all(pool)
        .await
        .expect("live payments");
        let portfolio: serde_json::Value = self
            .advisor
            .post(format!("{}/api/portfolio", self.app().base))
            .send()
            .await
            .expect("portfolio")
            .json()
            .await
            .expect("portfolio json");
        let Some(row) = portfolio
            .as_array()
            .and_then(|a| a.iter().find(|r| r["client_id"] == client_id))
            .cloned()
        else {
            self.violations.push(format!(
                "step {}: no portfolio row for {name} in {}",
                self.step,
                portfolio.to_string().chars().take(300).collect::<String>()
            ));
            return;
        };
        let burn = row["cash"]["daily_burn"]["minor"].as_i64().unwrap_or(0);
        let buffer_days = row["cash"]["buffer_days"].as_i64().unwrap_or(0);
        let st = self.app().sandbox().state().await;
        let Some(c) = st.clients.iter().find(|c| c.name == name) else {
            return;
        };
        let removed: HashSet<&str> = c
            .plaid
            .txns
            .iter()
            .filter(|t| t.removal)
            .map(|t| t.id.as_str())
            .collect();
        let debited = |ramp_bill: &str| {
            let pending = format!("rampbp{}", ramp_bill.replace('-', ""));
            let posted = format!("{pending}posted");
            c.plaid.txns.iter().any(|t| {
                !t.removal
                    && (t.id == posted || (t.id == pending && !removed.contains(pending.as_str())))
            })
        };
        let mut committed = 0i64;
        let mut selected = 0i64;
        for (pid, amount, bill) in &live {
            if bill == bill_id {
                selected += amount;
                continue;
            }
            let ramp = c
                .ramp
                .bills
                .iter()
                .find(|b| b.remote_id.as_deref() == Some(pid.as_str()));
            if !ramp.is_some_and(|b| debited(&b.id)) {
                committed += amount;
            }
        }
        let available = c.plaid.account.available_cents;
        let after = available - committed - selected;
        let required = burn * buffer_days;
        if after < required {
            self.violations.push(format!(
                "step {}: approval of {label} accepted, but on the simulators' data cash after is \
                 {after} < buffer {required} (available {available}, committed {committed}, \
                 selected {selected})",
                self.step
            ));
        }
    }

    /// Why a flag left on a payment at the end traces to no fault the
    /// harness injected, if it does not: a fault that can cause that
    /// discrepancy must have fired since the payment was first seen.
    pub(crate) fn untraced_flag(&self, label: &str, reason: &str) -> Option<String> {
        let causes: &[&str] = match reason {
            "qbo_sync_missing" => &[
                "consent_revoked",
                "qbo_skip",
                "qbo_late",
                "qbo_edit_bill",
                "world_bill_changed",
                "qbo_429",
                "qbo_500",
                "qbo_timeout",
            ],
            "amount_mismatch" => &["qbo_amount_mismatch", "qbo_edit_bill", "world_bill_changed"],
            "duplicate_payment" => &["qbo_edit_bill", "world_bill_changed", "hand_paid"],
            "bill_changed_in_ledger" => &["qbo_edit_bill", "world_bill_changed"],
            "vendor_bank_changed" => &["vendor_bank_change"],
            "ach_returned" => &["ramp_ach_return"],
            "cash_not_seen" => &[
                "plaid_drop_pending",
                "plaid_login_required",
                "plaid_429",
                "plaid_500",
                "plaid_timeout",
            ],
            _ => &[],
        };
        let since = self.first_seen.get(label).copied().unwrap_or(0);
        let traced = self
            .fired_log
            .iter()
            .any(|(step, k)| *step >= since && causes.contains(k));
        (!traced).then(|| {
            format!(
                "payment {label} ends flagged {reason}, but no fault that causes it fired since \
                 step {since}"
            )
        })
    }

    pub(crate) async fn check(&mut self, at: &str) {
        let mut v = Vec::new();
        let app = self.app();
        let pool = &app.state.app.db.pool;
        let st = app.sandbox().state().await;
        // Never two Ramp bills for one payment.
        let mut by_remote: HashMap<&str, usize> = HashMap::new();
        for b in st.clients.iter().flat_map(|c| c.ramp.bills.iter()) {
            if let Some(r) = b.remote_id.as_deref() {
                *by_remote.entry(r).or_default() += 1;
            }
        }
        for (r, n) in &by_remote {
            if *n > 1 {
                v.push(format!("{n} Ramp bills with remote_id {r}"));
            }
        }
        // Payments whose ACH debit the bank returned: they reached Ramp.
        let returned: HashSet<&str> = st
            .clients
            .iter()
            .flat_map(|c| c.ramp.bills.iter())
            .filter(|b| b.ach_return.is_some())
            .filter_map(|b| b.remote_id.as_deref())
            .collect();
        // No release pays a vendor bank account nobody confirmed.
        for b in st.clients.iter().flat_map(|c| c.ramp.bills.iter()) {
            if let (Some(r), true) = (
                b.remote_id.as_deref(),
                self.unconfirmed_accounts.contains(&b.vendor_account_id),
            ) {
                v.push(format!(
                    "payment {r} released to vendor account {} that no advisor confirmed",
                    b.vendor_account_id
                ));
            }
        }
        // No custody step backwards: in time order, ranks never fall, and
        // the payment's state is its furthest step.
        let events: Vec<(String, String, i64)> = sqlx::query_as(
            "select payment_id, state, at from custody_event order by payment_id, at",
        )
        .fetch_all(pool)
        .await
        .expect("custody");
        let mut furthest: HashMap<String, u8> = HashMap::new();
        let mut last: HashMap<String, (u8, i64, String)> = HashMap::new();
        for (pid, state, at) in &events {
            let r = rank(state);
            if let Some((lr, lat, ls)) = last.get(pid) {
                if r < *lr && at > lat {
                    v.push(format!("payment {pid}: custody {ls} then {state} later"));
                }
            }
            last.insert(pid.clone(), (r, *at, state.clone()));
            let e = furthest.entry(pid.clone()).or_default();
            *e = (*e).max(r);
        }
        let payments = self.payments().await;
        for (pid, label, state, _) in &payments {
            if let Some(f) = furthest.get(pid) {
                if rank(state) < *f {
                    v.push(format!(
                        "payment {label}: state {state} behind its custody chain"
                    ));
                }
            }
        }
        // One bank transaction evidences at most one payment.
        let shared: Vec<(String, i64)> = sqlx::query_as(
            "select plaid_txn_id, count(*) from payment where plaid_txn_id is not null
             group by plaid_txn_id having count(*) > 1",
        )
        .fetch_all(pool)
        .await
        .expect("plaid evidence");
        for (t, n) in shared {
            v.push(format!("bank transaction {t} evidences {n} payments"));
        }
        // A failed or cancelled payment has no Ramp bill Ramp may still pay
        // (a stopped one's is archived): its bill is free to be paid by
        // another payment.
        let live_remote: HashSet<&str> = st
            .clients
            .iter()
            .flat_map(|c| c.ramp.bills.iter())
            .filter(|b| b.archived_at.is_none())
            .filter_map(|b| b.remote_id.as_deref())
            .collect();
        for (pid, label, state, _) in &payments {
            if (state == "failed" || state == "cancelled")
                && live_remote.contains(pid.as_str())
                && !returned.contains(pid.as_str())
            {
                v.push(format!(
                    "payment {label} is {state}, but Ramp has a bill for it"
                ));
            }
        }
        // A payment is recorded only on the BillPayment Ramp's sync wrote
        // for its own Ramp bill (issue #16 §6), never on a bookkeeper's.
        let recorded_on: Vec<(String, String, String)> = sqlx::query_as(
            "select payment_id, qbo_bill_payment_id, ramp_bill_id from payment
             where qbo_bill_payment_id is not null and ramp_bill_id is not null",
        )
        .fetch_all(pool)
        .await
        .expect("ledger records");
        for (pid, bp_id, ramp_bill) in recorded_on {
            // QBO ids are per realm: look in the realm of the client whose
            // Ramp holds the payment's bill.
            let note = st
                .clients
                .iter()
                .find(|c| c.ramp.bills.iter().any(|b| b.id == ramp_bill))
                .and_then(|c| c.qbo.bill_payments.iter().find(|bp| bp.id == bp_id))
                .and_then(|bp| bp.private_note.clone());
            // A BillPayment deleted since can no longer be judged here.
            if note.as_deref().is_some_and(|n| !n.contains(&ramp_bill)) {
                v.push(format!(
                    "payment {pid} is recorded on QBO BillPayment {bp_id} ({note:?}), \
                     which Ramp did not write for its bill {ramp_bill}"
                ));
            }
        }
        // Nothing released for a bill changed in QBO before release.
        for (pid, label, state, _) in &payments {
            if self.edited_before_release.contains(pid) {
                if SENT.contains(&rank(state)) {
                    v.push(format!(
                        "payment {label} is {state} after its bill changed in QBO"
                    ));
                }
                if by_remote.contains_key(pid.as_str()) {
                    v.push(format!(
                        "a Ramp bill exists for {label} after its bill changed in QBO"
                    ));
                }
            }
        }
        // A finished job's outcome is its latest claim's (lease fencing): no
        // superseded claim recorded how the job ended.
        let stale: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "select j.job_id, j.kind, j.attempts, a.attempt from job j
             join job_attempt a on a.job_id = j.job_id
             where j.state in ('done', 'dead') and a.outcome in ('ok', 'dead')
               and a.attempt <> j.attempts",
        )
        .fetch_all(pool)
        .await
        .expect("job attempts");
        for (job, kind, attempts, attempt) in stale {
            v.push(format!(
                "{kind} job {job} ended by attempt {attempt}, but claim {attempts} held it"
            ));
        }
        // Issue #16: no payment sent to Ramp without every approval its
        // policy version required, each by another person, before the
        // release; nobody approves one payment twice.
        let approvals: Vec<Approval> = sqlx::query_as(
            "select payment_id, step, user_id, rules, at from approval order by payment_id, at",
        )
        .fetch_all(pool)
        .await
        .expect("approvals");
        let mut by_payment: HashMap<&str, Vec<&Approval>> = HashMap::new();
        for a in &approvals {
            by_payment.entry(a.0.as_str()).or_default().push(a);
        }
        let released_at: HashMap<String, i64> = events
            .iter()
            .filter(|(_, st, _)| st == "released")
            .map(|(p, _, at)| (p.clone(), *at))
            .collect();
        for (pid, label, state, _) in &payments {
            let mine = by_payment.get(pid.as_str()).cloned().unwrap_or_default();
            let users: HashSet<&str> = mine.iter().map(|a| a.2.as_str()).collect();
            if users.len() != mine.len() {
                v.push(format!("payment {label}: one person approved it twice"));
            }
            let sent = SENT.contains(&rank(state)) || released_at.contains_key(pid);
            if !sent {
                continue;
            }
            let Some(first) = mine.iter().find(|a| a.1 == "first") else {
                v.push(format!("payment {label} is {state} with no approval"));
                continue;
            };
            if first.3.contains("WaitsForSecond") {
                match mine.iter().find(|a| a.1 == "second") {
                    None => v.push(format!(
                        "payment {label} is {state} without the second approval it needs"
                    )),
                    Some(second) => {
                        if second.2 == first.2 {
                            v.push(format!("payment {label}: maker and checker are one person"));
                        }
                        if released_at.get(pid).is_some_and(|r| *r < second.4) {
                            v.push(format!(
                                "payment {label} was released before its second approval"
                            ));
                        }
                    }
                }
            }
        }
        // Committed cash never counts a payment twice: RowCol's figure per
        // client is at most the sum of its distinct payments that may hold
        // cash.
        if let Ok(firm) = app::model::FirmId::parse(&self.firm_id) {
            let now = app.state.app.clock.now();
            let today = app.state.app.clock.today();
            let mut conn = pool.acquire().await.expect("connection");
            let summaries =
                app::ssr::store::read_models::client_summaries(&mut conn, &firm, now, today, None)
                    .await
                    .expect("summaries");
            drop(conn);
            let held: Vec<(String, i64)> = sqlx::query_as(
                "select client_id, cast(coalesce(sum(amount_minor), 0) as bigint) from payment
                 where state in ('awaiting_second_approval', 'approved', 'released', 'paid',
                                 'recorded', 'verified')
                 group by client_id",
            )
            .fetch_all(pool)
            .await
            .expect("held");
            for s in summaries {
                let cap = held
                    .iter()
                    .find(|(c, _)| c == s.client_id.as_str())
                    .map_or(0, |(_, n)| *n);
                if s.cash.approved_unpaid.minor > cap {
                    v.push(format!(
                        "{}: committed {} exceeds its payments' {}",
                        s.name, s.cash.approved_unpaid.minor, cap
                    ));
                }
            }
        }
        // The audit chain verifies.
        let firms: Vec<String> = sqlx::query_scalar("select firm_id from firm")
            .fetch_all(pool)
            .await
            .expect("firms");
        for f in firms {
            let id = app::model::FirmId::parse(&f).expect("firm id");
            let chain = app::ssr::store::audit::verify_chain_full(pool, &id)
                .await
                .expect("verify");
            if !chain.ok {
                v.push(format!(
                    "audit chain of {f} broken at {:?}",
                    chain.broken_at
                ));
            }
        }
        for x in v {
            self.violations.push(format!("{at}: {x}"));
        }
    }

    /// What must hold once the world has settled: every connection healthy,
    /// no reconnect asked, every returned payment failed, every bill paid
    /// twice flagged, every payment settled or explained (and, without
    /// faults, verified). Returns the payments as they ended.
    pub(crate) async fn check_end(
        &mut self,
        seed: u64,
        faults: bool,
    ) -> Vec<(String, String, String, Option<String>)> {
        // Every connection is healthy again, and the tray no longer asks for
        // a reconnect.
        let broken: Vec<(String, String, String)> = sqlx::query_as(
            "select c.name, r.rail, r.status from rail_connection r
             join client c on c.client_id = r.client_id
             where r.status <> 'active' order by c.name, r.rail",
        )
        .fetch_all(&self.app().state.app.db.pool)
        .await
        .expect("connections");
        for (name, rail, status) in broken {
            self.violations.push(format!(
                "seed {seed} end: {name}'s {rail} connection is {status} after the admin reconnected"
            ));
        }
        let asks: Vec<String> = sqlx::query_scalar(
            "select h.detail from hygiene_item h where h.status = 'open'
             and h.reason_code = 'rail_reauth_needed' order by h.detail",
        )
        .fetch_all(&self.app().state.app.db.pool)
        .await
        .expect("hygiene");
        for d in asks {
            self.violations.push(format!(
                "seed {seed} end: the tray still asks for a reconnect: {d}"
            ));
        }
        self.check(&format!("seed {seed} end")).await;
        let payments = self.payments().await;
        // Every payment whose ACH debit came back ends failed.
        let returned: Vec<(String, String)> = self
            .app()
            .sandbox()
            .state()
            .await
            .clients
            .iter()
            .flat_map(|c| c.ramp.bills.iter())
            .filter_map(|b| Some((b.remote_id.clone()?, b.ach_return.clone()?)))
            .collect();
        for (pid, code) in &returned {
            if let Some((_, label, state, _)) = payments.iter().find(|p| &p.0 == pid) {
                if state != "failed" {
                    self.violations.push(format!(
                        "seed {seed} end: payment {label} came back ({code}) but ends {state}"
                    ));
                }
            }
        }
        // A bill the bookkeeper paid by hand that Ramp paid too was paid
        // twice: it must be in the tray as a duplicate payment.
        let ramp_paid: HashSet<String> = self
            .app()
            .sandbox()
            .state()
            .await
            .clients
            .iter()
            .flat_map(|c| c.ramp.bills.iter())
            .filter(|b| b.status == sandbox::sim_state::RampStatus::Paid)
            .filter_map(|b| b.remote_id.clone())
            .collect();
        for (pid, label, state, _) in &payments {
            if !(self.hand_paid.contains(pid) && ramp_paid.contains(pid)) {
                continue;
            }
            let flagged: i64 = sqlx::query_scalar(
                "select count(*) from hygiene_item where payment_id = $1
                 and reason_code = 'duplicate_payment' and severity = 'critical'",
            )
            .bind(pid)
            .fetch_one(&self.app().state.app.db.pool)
            .await
            .expect("hygiene");
            if flagged == 0 {
                self.violations.push(format!(
                    "seed {seed} end: {label} was paid by hand in QBO and by Ramp, ends {state}, \
                     and no duplicate_payment item says so"
                ));
            }
        }
        for (pid, label, state, flag) in &payments {
            let settled = matches!(
                state.as_str(),
                "verified" | "failed" | "cancelled" | "rejected"
            );
            if !settled && flag.is_none() {
                // What the hygiene tray says about its client, for the report.
                let open: Vec<String> = sqlx::query_scalar(
                    "select h.reason_code || ': ' || h.detail from hygiene_item h
                     join payment p on p.client_id = h.client_id
                     join staged_bill b on b.bill_id = p.bill_id
                     join client c on c.client_id = p.client_id
                     where h.status = 'open' and c.name || '/' || b.qbo_bill_id = $1
                     order by h.reason_code",
                )
                .bind(label)
                .fetch_all(&self.app().state.app.db.pool)
                .await
                .expect("hygiene");
                self.violations.push(format!(
                    "seed {seed} end: payment {label} still {state}, unflagged \
                     (its client's open hygiene items: {open:?})"
                ));
            }
            if let Some(reason) = flag {
                if let Some(why) = self.untraced_flag(label, reason) {
                    self.violations.push(format!("seed {seed} end: {why}"));
                }
            }
            // Without faults every payment is verified, or was rejected by a
            // person (a decision, not a discrepancy).
            let stopped = state == "cancelled" && self.stopped.contains(pid);
            if !faults && state != "verified" && state != "rejected" && !stopped {
                self.violations.push(format!(
                    "seed {seed} end (no faults): payment {label} ended {state} (flag {flag:?})"
                ));
            }
            self.log(format!("end {label}={state} flag={flag:?}"));
        }
        payments
    }
}
