//! What the simulation does at a step: people approving, deciding, stopping
//! and overriding; the clock; the ledger edited by hand; restarts and
//! workers racing.

use super::*;

impl Sim {
    pub(crate) async fn approve(&mut self) {
        let mut bills = self.open_bills().await;
        // Two times in three, an advisor tries a client with a broken rail
        // (if there is one): the approval must be refused.
        if self.rng.below(3) != 0 {
            let broken: Vec<String> = sqlx::query_scalar(
                "select distinct client_id from rail_connection where status = 'needs_reconnect'",
            )
            .fetch_all(&self.app().state.app.db.pool)
            .await
            .expect("broken clients");
            let theirs: Vec<_> = bills
                .iter()
                .filter(|b| broken.contains(&b.0))
                .cloned()
                .collect();
            if !theirs.is_empty() {
                bills = theirs;
            }
        }
        if bills.is_empty() {
            self.log("approve: no open bill".into());
            return;
        }
        let (cid, bid, label, _) = bills[self.rng.below(bills.len() as u64) as usize].clone();
        let form = [("client_id", cid.as_str()), ("bill_ids[]", bid.as_str())];
        let mode = self.rng.below(10);
        let seq0 = self.audit_max().await;
        let before = self.rail_statuses(&cid).await;
        let mut statuses = match mode {
            // a viewer trying: must be refused
            0 => {
                let s = self.call(&self.viewer, "approve_bills", &form).await;
                if s < 400 {
                    self.violations.push(format!(
                        "step {}: a viewer's approval answered {s}",
                        self.step
                    ));
                }
                vec![s]
            }
            // a double submit: two concurrent requests for the same bill
            1 | 2 => {
                let (a, b) = tokio::join!(
                    self.call(&self.advisor, "approve_bills", &form),
                    self.call(&self.advisor, "approve_bills", &form)
                );
                vec![a, b]
            }
            // the same bill approved twice in a row
            3 => {
                let a = self.call(&self.advisor, "approve_bills", &form).await;
                let b = self.call(&self.advisor, "approve_bills", &form).await;
                vec![a, b]
            }
            _ => vec![self.call(&self.advisor, "approve_bills", &form).await],
        };
        let ok = statuses.iter().filter(|s| **s == 200 || **s == 302).count();
        if ok > 1 {
            self.violations.push(format!(
                "step {}: the same bill {label} was approved {ok} times",
                self.step
            ));
        }
        if ok == 1 {
            self.check_buffer(&cid, &bid, &label).await;
        }
        self.check_health_at_approval(&cid, &label, seq0, &before)
            .await;
        // The concurrent pair's order is the scheduler's, not the seed's.
        statuses.sort_unstable();
        self.log(format!("approve {label} mode {mode}: {statuses:?}"));
    }

    /// Issue #16's decisions: on a payment waiting for its second approver,
    /// its first approver tries again (must be refused), the advisor
    /// rejects it, or the admin approves it; with none waiting, an admin
    /// overrides a refusal with a reason (and an advisor's try is refused).
    pub(crate) async fn decide(&mut self) {
        if self.rng.below(4) == 0 {
            return self.stop_one().await;
        }
        let waiting = self.waiting().await;
        let mode = self.rng.below(6);
        if waiting.is_empty() {
            self.override_one(mode == 0).await;
            return;
        }
        let (pid, label, first) = waiting[self.rng.below(waiting.len() as u64) as usize].clone();
        let (who, name) = if first == "admin@northwind.test" {
            (&self.admin, "admin")
        } else {
            (&self.advisor, "advisor")
        };
        match mode {
            0 => {
                let s = self
                    .call(who, "approve_second", &[("payment_id", &pid)])
                    .await;
                if s < 400 {
                    self.violations.push(format!(
                        "step {}: {name} approved {label} a second time ({s})",
                        self.step
                    ));
                }
                self.log(format!("decide {label}: first approver again {s}"));
            }
            1 => {
                let s = self
                    .call(
                        &self.advisor,
                        "reject_payment",
                        &[("payment_id", &pid), ("reason", "vendor asked to hold")],
                    )
                    .await;
                if s == 200 {
                    self.fire("rejected", 1);
                }
                self.log(format!("decide {label}: rejected {s}"));
            }
            _ => {
                let other = if first == "admin@northwind.test" {
                    &self.advisor
                } else {
                    &self.admin
                };
                let s = self
                    .call(other, "approve_second", &[("payment_id", &pid)])
                    .await;
                if s == 200 {
                    self.fire("second_approval", 1);
                }
                self.log(format!("decide {label}: second approval {s}"));
            }
        }
    }

    /// An advisor stops an approved or released payment (the client went
    /// into breach): stopped before release, or archived on Ramp first;
    /// refused (409) once Ramp paid it or while a create is unanswered.
    pub(crate) async fn stop_one(&mut self) {
        let Some((pid, label, state, _)) =
            self.pick_payment(&["approved", "released", "paid"]).await
        else {
            self.log("stop: nothing to stop".into());
            return;
        };
        let s = self
            .call(
                &self.advisor,
                "stop_payment",
                &[("payment_id", &pid), ("reason", "client went into breach")],
            )
            .await;
        if s == 200 {
            self.stopped.insert(pid.clone());
            self.fire("stopped", 1);
        } else if state == "paid" && s != 409 {
            self.violations.push(format!(
                "step {}: stopping paid payment {label} answered {s}",
                self.step
            ));
        }
        self.log(format!("stop {label} ({state}): {s}"));
    }

    /// An admin approves one open bill overriding the overridable rules
    /// with a written reason; `advisor_tries` first has an advisor try the
    /// same (refused, 403).
    pub(crate) async fn override_one(&mut self, advisor_tries: bool) {
        let bills = self.open_bills().await;
        if bills.is_empty() {
            return;
        }
        let (_, bid, label, _) = bills[self.rng.below(bills.len() as u64) as usize].clone();
        let key = format!("sim-override-{}", self.step);
        let form = [
            ("batch_key", key.as_str()),
            ("bill_ids[]", bid.as_str()),
            ("override_reason", "cash arrives from a loan today"),
        ];
        if advisor_tries {
            let s = self.call(&self.advisor, "approve_batch", &form).await;
            if s != 403 {
                self.violations.push(format!(
                    "step {}: an advisor's override of {label} answered {s}",
                    self.step
                ));
            }
        }
        let s = self.call(&self.admin, "approve_batch", &form).await;
        let overridden: i64 = sqlx::query_scalar(
            "select count(*) from payment where bill_id = $1 and overridden = 1",
        )
        .bind(&bid)
        .fetch_one(&self.app().state.app.db.pool)
        .await
        .expect("override");
        if overridden > 0 {
            self.fire("override", 1);
        }
        self.log(format!("override {label}: {s} overridden={overridden}"));
    }

    /// The end: every payment still waiting is approved by another person
    /// or, when the rules now refuse it, rejected.
    pub(crate) async fn decide_all_waiting(&mut self) {
        for (pid, label, first) in self.waiting().await {
            let other = if first == "admin@northwind.test" {
                &self.advisor
            } else {
                &self.admin
            };
            let s = self
                .call(other, "approve_second", &[("payment_id", &pid)])
                .await;
            let r = if s == 200 {
                self.fire("second_approval", 1);
                None
            } else {
                Some(
                    self.call(
                        &self.advisor,
                        "reject_payment",
                        &[("payment_id", &pid), ("reason", "not approved in time")],
                    )
                    .await,
                )
            };
            self.log(format!("end decide {label}: second {s} reject {r:?}"));
        }
    }

    pub(crate) async fn advance(&mut self) {
        let days = 1 + self.rng.below(3);
        let d = days.to_string();
        let s = self
            .call(&self.advisor, "sandbox/advance", &[("days", &d)])
            .await;
        self.log(format!("advance {days}d: {s}"));
        self.note_world().await;
    }

    /// What the living world did during an advance: its changes to open
    /// bills are causes of the flags they can raise, like the harness's
    /// own ledger edits.
    pub(crate) async fn note_world(&mut self) {
        let log = self.app().sandbox().world_log().await;
        for e in log.iter().skip(self.world_seen) {
            let kind = match e.kind.as_str() {
                "bill_arrived" => "world_bill_arrived",
                "paid_by_hand" | "deleted" | "amount_edited" | "vendor_edited" => {
                    "world_bill_changed"
                }
                // Stripe's invoices touch no bill.
                _ => continue,
            };
            *self.tally.injected.entry(kind).or_default() += 1;
            self.fire(kind, 1);
            self.log(format!(
                "world {} {} {}: {}",
                e.day, e.kind, e.bill_id, e.detail
            ));
        }
        self.world_seen = log.len();
        // Payments whose bank debit and QBO record came days before Ramp's
        // PAID: RowCol must take that evidence out of order.
        let st = self.app().sandbox().state().await;
        let early: Vec<String> = st
            .clients
            .iter()
            .flat_map(|c| c.ramp.bills.iter())
            .filter(|b| matches!((b.debited_on, b.payment_date), (Some(d), Some(p)) if d < p))
            .map(|b| b.id.clone())
            .filter(|id| !self.early_seen.contains(id))
            .collect();
        for id in early {
            *self.tally.injected.entry("ach_evidence_early").or_default() += 1;
            self.fire("ach_evidence_early", 1);
            self.early_seen.insert(id);
        }
    }

    /// A vendor of a random client gets a new bank account on Ramp (the
    /// sandbox control, over HTTP); the advisor looks at held releases
    /// 3 to 12 steps later.
    pub(crate) async fn vendor_bank_change(&mut self) {
        let (business, vendor) = {
            let st = self.app().sandbox().state().await;
            let c = &st.clients[self.rng.below(st.clients.len() as u64) as usize];
            let v = &c.ramp.vendors[self.rng.below(c.ramp.vendors.len() as u64) as usize];
            (c.ramp.business_id.clone(), v.id.clone())
        };
        let res = client()
            .post(format!(
                "{}/sandbox/control/ramp/vendor_bank_change",
                self.app().base
            ))
            .json(&serde_json::json!({"business_id": business, "vendor_id": vendor}))
            .send()
            .await
            .expect("vendor bank change");
        assert_eq!(res.status(), 200, "vendor bank change refused");
        let body: serde_json::Value = res.json().await.expect("change answer");
        let account = body["account_id"].as_str().expect("new account").to_owned();
        self.unconfirmed_accounts.insert(account);
        *self.tally.injected.entry("vendor_bank_change").or_default() += 1;
        self.fire("vendor_bank_change", 1);
        let due = self.step + 3 + self.rng.below(10) as usize;
        self.confirm_due = Some(self.confirm_due.map_or(due, |d| d.min(due)));
        self.log(format!("inject vendor_bank_change {vendor}"));
    }

    /// The advisor confirms every held release in the tray (when due, or
    /// `all` at the end); the accounts RowCol then accepts are confirmed.
    pub(crate) async fn advisor_confirms(&mut self, all: bool) {
        if !all && self.confirm_due.is_none_or(|d| self.step < d) {
            return;
        }
        self.confirm_due = None;
        let items: Vec<String> = sqlx::query_scalar(
            "select hygiene_id from hygiene_item
             where reason_code = 'vendor_bank_changed' and status = 'open' order by hygiene_id",
        )
        .fetch_all(&self.app().state.app.db.pool)
        .await
        .expect("held releases");
        for hid in items {
            let s = self
                .call(&self.advisor, "retry_payment", &[("hygiene_id", &hid)])
                .await;
            self.log(format!("advisor confirms bank change {hid}: {s}"));
            if s == 200 {
                *self
                    .tally
                    .injected
                    .entry("advisor_confirms_bank")
                    .or_default() += 1;
                self.fire("advisor_confirms_bank", 1);
            }
        }
        let accepted: Vec<Option<String>> =
            sqlx::query_scalar("select ramp_vendor_account_id from vendor_map")
                .fetch_all(&self.app().state.app.db.pool)
                .await
                .expect("accepted accounts");
        for a in accepted.into_iter().flatten() {
            self.unconfirmed_accounts.remove(&a);
        }
    }

    /// Switch off the standing faults (lag, duplicates, login required,
    /// pending debits) so a seed is not one long outage.
    pub(crate) async fn heal(&mut self) {
        self.app()
            .inject(|f| {
                f.ramp_list_lag_secs = 0;
                f.webhook_duplicate = false;
                f.plaid_login_required.clear();
                f.plaid_debits_pending_first = false;
                f.webhook_reorder = false;
            })
            .await;
        self.log("heal".into());
    }

    /// Webhooks delivered newest first until the next heal (a standing
    /// fault of its own: the harness switches it on half as often).
    pub(crate) async fn reorder(&mut self) {
        self.app().inject(|f| f.webhook_reorder = true).await;
        *self.tally.injected.entry("webhook_reorder").or_default() += 1;
        self.log("inject webhook_reorder".into());
    }

    /// The bookkeeper changes an approved, not yet released bill in QBO.
    pub(crate) async fn edit_in_ledger(&mut self) {
        if self.rng.below(3) == 0 {
            return self.pay_by_hand().await;
        }
        let approved: Vec<_> = self
            .payments()
            .await
            .into_iter()
            .filter(|p| p.2 == "approved")
            .collect();
        if approved.is_empty() {
            self.log("edit: nothing approved".into());
            return;
        }
        let (pid, label, _, _) = approved[self.rng.below(approved.len() as u64) as usize].clone();
        let (realm, qbo_bill) = self.app().ledger_bill_of(&pid).await;
        let amount: i64 =
            sqlx::query_scalar("select amount_minor from payment where payment_id = $1")
                .bind(&pid)
                .fetch_one(&self.app().state.app.db.pool)
                .await
                .expect("amount");
        let (edit, what) = match self.rng.below(3) {
            0 => (QboBillEdit::PayInFull, "pay"),
            1 => (QboBillEdit::Delete, "delete"),
            _ => (QboBillEdit::SetTotal(amount + 100), "total+1.00"),
        };
        let released_already = !self.app().ramp_bills_with_remote_id(&pid).await.is_empty();
        let r = self
            .app()
            .sandbox()
            .qbo_edit_bill(&realm, &qbo_bill, edit)
            .await;
        if r.is_ok() && !released_already {
            self.edited_before_release.insert(pid);
        }
        *self.tally.injected.entry("qbo_edit_bill").or_default() += 1;
        if r.is_ok() {
            self.fire("qbo_edit_bill", 1);
        }
        self.log(format!(
            "edit {label} {what}: {} (ramp bill before: {released_already})",
            r.is_ok()
        ));
    }

    /// The bookkeeper pays a released, not yet paid bill by hand in QBO.
    pub(crate) async fn pay_by_hand(&mut self) {
        let Some((pid, label, _, _)) = self.pick_payment(&["released"]).await else {
            self.log("hand pay: nothing released".into());
            return;
        };
        let (realm, qbo_bill) = self.app().ledger_bill_of(&pid).await;
        let r = self
            .app()
            .sandbox()
            .qbo_edit_bill(&realm, &qbo_bill, QboBillEdit::PayInFull)
            .await;
        *self.tally.injected.entry("hand_paid").or_default() += 1;
        if r.is_ok() {
            self.hand_paid.insert(pid);
            self.fire("hand_paid", 1);
        }
        self.log(format!("hand pay {label}: {}", r.is_ok()));
    }

    pub(crate) async fn restart(&mut self) {
        let app = self.app.take().expect("app");
        self.app = Some(app.restart().await);
        self.sign_in().await;
        *self.tally.injected.entry("restart").or_default() += 1;
        self.fire("restart", 1);
        self.log("restart".into());
    }

    /// A worker that stalls: it claims the next due job, its lease runs out,
    /// a second worker takes the job over; then the first one wakes and
    /// runs it, then the second. The first one's finish must be refused
    /// (lease fencing); the job's outcome is the second's.
    pub(crate) async fn stale_worker(&mut self) {
        use rowcol::jobs::runner::{run_claimed, Outcome, LEASE};
        // The stalled worker wakes before or after the one that took over.
        let stalled_first = self.rng.below(2) == 0;
        let app = self.app();
        let svc = &app.state.services;
        let now = app.state.app.clock.now();
        let Some(first) = app::ssr::store::job_queue::claim(&svc.db, now, now + LEASE)
            .await
            .expect("claim")
        else {
            self.log("stale worker: nothing due".into());
            return;
        };
        app.advance_secs(LEASE.num_seconds() + 1);
        let now = app.state.app.clock.now();
        let second = app::ssr::store::job_queue::claim(&svc.db, now, now + LEASE)
            .await
            .expect("claim");
        let mut b = None;
        if !stalled_first {
            if let Some(c) = &second {
                b = Some(run_claimed(svc, c).await.expect("second run"));
            }
        }
        let a = run_claimed(svc, &first).await.expect("stale run");
        if stalled_first {
            if let Some(c) = &second {
                b = Some(run_claimed(svc, c).await.expect("second run"));
            }
        }
        let took_over = second.as_ref().is_some_and(|c| c.job_id == first.job_id);
        let kind = first.kind.clone();
        if took_over && a != Outcome::LostLease {
            self.violations.push(format!(
                "step {}: a {kind} job's stalled attempt finished ({a:?}) after its lease was taken over",
                self.step
            ));
        }
        *self.tally.injected.entry("stale_worker").or_default() += 1;
        if took_over {
            self.fire("stale_worker", 1);
        }
        self.log(format!(
            "stale worker on {kind} (wakes first: {stalled_first}): took over {took_over}, \
             stalled {a:?}, other {b:?}"
        ));
    }

    /// Two workers draining the queue at once (as two instances do).
    pub(crate) async fn two_workers(&mut self) {
        let svc = &self.app().state.services;
        let (a, b) = tokio::join!(
            rowcol::jobs::runner::drain(svc),
            rowcol::jobs::runner::drain(svc)
        );
        a.expect("drain");
        b.expect("drain");
        // How the work split between them is the scheduler's, not the seed's.
        self.log("two workers drained".into());
    }

    /// One step's action, drawn from the seed (faults only in the runs
    /// with faults); its name for the profile.
    pub(crate) async fn act(&mut self, faults: bool) -> &'static str {
        let roll = self.rng.below(100);
        match roll {
            0..=28 => {
                self.approve().await;
                "approve"
            }
            29..=34 => {
                self.decide().await;
                "decide"
            }
            35..=54 => {
                self.advance().await;
                "advance"
            }
            55..=64 => {
                self.drain().await;
                "drain"
            }
            65..=84 if faults => {
                self.inject().await;
                "inject"
            }
            85 if faults => {
                self.reorder().await;
                "reorder"
            }
            86..=89 if faults => {
                self.heal().await;
                "heal"
            }
            90..=95 if faults => {
                self.edit_in_ledger().await;
                "edit"
            }
            96 if faults => {
                self.restart().await;
                "restart"
            }
            97..=98 if faults => {
                self.stale_worker().await;
                "stale_worker"
            }
            99 if faults => {
                self.two_workers().await;
                "two_workers"
            }
            _ => {
                self.advance().await;
                "advance"
            }
        }
    }

    /// The end: faults off, at least 15 days pass, and on until every
    /// payment's arrival date is 10 days behind (its bank window, 5
    /// business days, is then over): every payment is settled or explained.
    pub(crate) async fn settle(&mut self, steps: usize) {
        // The end: faults off, at least 15 days pass, and on until every
        // payment's arrival date is 10 days behind (its bank window, 5 business
        // days, is then over): every payment is settled or explained.
        // Standing faults off; one-shot ones still queued may fire on what
        // gets paid now (their flags trace back to them).
        self.app()
            .inject(|f| {
                f.ramp_list_lag_secs = 0;
                f.webhook_duplicate = false;
                f.webhook_reorder = false;
                f.plaid_login_required.clear();
                f.plaid_debits_pending_first = false;
                f.rail_fail_next.clear();
                f.ramp_create_fail_next.clear();
                // The world stops changing bills: the end settles what is there.
                f.living_world = false;
            })
            .await;
        let last_arrival: Option<String> =
            sqlx::query_scalar("select max(payment_arrival_date) from payment")
                .fetch_one(&self.app().state.app.db.pool)
                .await
                .expect("arrival dates");
        let last_arrival = last_arrival.and_then(|d| d.parse::<chrono::NaiveDate>().ok());
        for i in 0..40 {
            let today = self.app().state.app.clock.today();
            let done = last_arrival.is_none_or(|d| today > d + chrono::Duration::days(10));
            if i >= 5 && done {
                break;
            }
            self.step = steps + i;
            let before = self.app().sandbox().faults().await;
            // The admin reconnects whatever is still broken; the advisor
            // confirms every held release.
            self.admin_reconnects(true).await;
            self.advisor_confirms(true).await;
            self.decide_all_waiting().await;
            let s = self
                .call(&self.advisor, "sandbox/advance", &[("days", "3")])
                .await;
            let after = self.app().sandbox().faults().await;
            self.count_fired(&before, &after);
            self.track_connections().await;
            self.log(format!("final advance 3d: {s}"));
        }
    }
}
