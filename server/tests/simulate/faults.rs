//! The faults the simulation injects into the rails, and their tally
//! (injected, fired).

use super::*;

/// Fault kinds the `inject` step chooses from, with their weights, in the
/// order the table prints them. A timeout costs the harness the rail
/// timeout in wall-clock time, so those are rarer.
pub(crate) const INJECTED: [(&str, u64); 30] = [
    ("ramp_create_429", 3),
    ("ramp_create_500", 3),
    ("ramp_create_503", 3),
    ("ramp_create_400", 3),
    ("ramp_create_lose_response", 4),
    // The create's answer lost, then Ramp failing the next calls (the
    // look-up among them) for a while: the bill may be paid, and its
    // webhook arrive, before the release has learnt it exists.
    ("ramp_lost_then_down", 3),
    ("ramp_list_lag", 3),
    ("ramp_429", 3),
    ("ramp_503", 3),
    ("ramp_timeout", 1),
    ("qbo_429", 3),
    ("qbo_500", 3),
    ("qbo_timeout", 1),
    ("qbo_write_lose_response", 3),
    ("qbo_amount_mismatch", 3),
    ("qbo_skip", 3),
    ("qbo_late", 3),
    ("plaid_429", 3),
    ("plaid_500", 3),
    ("plaid_timeout", 1),
    ("plaid_login_required", 3),
    ("plaid_debits_pending_first", 3),
    ("plaid_drop_pending", 3),
    ("webhook_duplicate", 3),
    ("webhook_drop", 3),
    ("webhook_delay", 3),
    // A client's QBO or Ramp access tokens die early at the provider (its
    // refresh still works): RowCol must refresh, never ask the person.
    ("token_expire_early", 3),
    // A client withdraws its QBO or Ramp consent: every grant dies, the
    // next refresh is `invalid_grant`, the connection needs reconnecting.
    ("consent_revoked", 4),
    // A vendor's bank account changes on Ramp (issue #9): its next
    // release must be held until the advisor confirms, some steps later.
    ("vendor_bank_change", 3),
    // The next ACH payment comes back (R01 or R02) days after it was paid.
    ("ramp_ach_return", 3),
];

/// Every fault kind the table reports: the injected ones, the standing
/// reorder of webhooks, and the harness's own interventions.
pub(crate) const FAULTS: [&str; 44] = [
    "ramp_create_429",
    "ramp_create_500",
    "ramp_create_503",
    "ramp_create_400",
    "ramp_create_lose_response",
    "ramp_list_lag",
    "ramp_429",
    "ramp_503",
    "ramp_timeout",
    "qbo_429",
    "qbo_500",
    "qbo_timeout",
    "qbo_write_lose_response",
    "qbo_amount_mismatch",
    "qbo_skip",
    "qbo_late",
    "plaid_429",
    "plaid_500",
    "plaid_timeout",
    "plaid_login_required",
    "plaid_debits_pending_first",
    "plaid_drop_pending",
    "webhook_duplicate",
    "webhook_drop",
    "webhook_delay",
    "webhook_reorder",
    "token_expire_early",
    "consent_revoked",
    "qbo_edit_bill",
    "restart",
    "stale_worker",
    "admin_reconnect",
    "admin_repairs_bank",
    "vendor_bank_change",
    "advisor_confirms_bank",
    // The living world (issue #9): new bills arrive in QBO; open ones are
    // paid by hand, deleted, or edited (amount, vendor) on their own.
    "world_bill_arrived",
    "world_bill_changed",
    "ramp_ach_return",
    // ACH as it settles: the bank debit and the QBO BillPayment came
    // before Ramp marked the bill PAID (evidence out of order).
    "ach_evidence_early",
    // Decisions (issue #16): a second person approves a payment waiting
    // for one, a payment is rejected, an admin overrides a refusal.
    "second_approval",
    "rejected",
    "override",
    // An approved or released payment stopped by a person (archived on
    // Ramp first once released); a released bill the bookkeeper also paid
    // by hand in QBO (the bill paid twice).
    "stopped",
    "hand_paid",
];

/// The simulated rails' API budget in the simulation (`ROWCOL_RAIL_TIMEOUT_MS`)
/// and how long an injected hang lasts: a hang always outlives the budget.
pub(crate) const SIM_RAIL_TIMEOUT_MS: u64 = 1_000;
pub(crate) const SIM_HANG_MS: u32 = 1_500;

#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) injected: BTreeMap<&'static str, u64>,
    pub(crate) fired: BTreeMap<&'static str, u64>,
}

impl Tally {
    pub(crate) fn add(&mut self, other: &Tally) {
        for (k, v) in &other.injected {
            *self.injected.entry(k).or_default() += v;
        }
        for (k, v) in &other.fired {
            *self.fired.entry(k).or_default() += v;
        }
    }
    pub(crate) fn print(&self) {
        println!("{:<28} {:>9} {:>7}", "fault", "injected", "fired");
        for k in FAULTS {
            println!(
                "{:<28} {:>9} {:>7}",
                k,
                self.injected.get(k).copied().unwrap_or(0),
                self.fired.get(k).copied().unwrap_or(0)
            );
        }
    }
}

impl Sim {
    pub(crate) async fn inject(&mut self) {
        let total: u64 = INJECTED.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.below(total);
        let mut kind = INJECTED[0].0;
        for (k, w) in INJECTED {
            if roll < w {
                kind = k;
                break;
            }
            roll -= w;
        }
        if kind == "token_expire_early" || kind == "consent_revoked" {
            self.grant_fault(kind).await;
            return;
        }
        if kind == "vendor_bank_change" {
            self.vendor_bank_change().await;
            return;
        }
        let items: Vec<String> = {
            let st = self.app().sandbox().state().await;
            st.clients.iter().map(|c| c.plaid.item_id.clone()).collect()
        };
        let pick = items[self.rng.below(items.len() as u64) as usize].clone();
        if kind == "plaid_login_required" {
            let name = {
                let st = self.app().sandbox().state().await;
                st.clients
                    .iter()
                    .find(|c| c.plaid.item_id == pick)
                    .map(|c| c.name.clone())
            };
            if let Some(name) = name {
                let id: Option<String> =
                    sqlx::query_scalar("select client_id from client where name = $1")
                        .bind(&name)
                        .fetch_optional(&self.app().state.app.db.pool)
                        .await
                        .expect("client id");
                self.login_asked.extend(id);
            }
        }
        let lag = 30 + self.rng.below(600) as u32;
        let fail = |f: &mut sandbox::Faults, rail: SimRail, status: u16| {
            f.rail_hang_ms = SIM_HANG_MS;
            f.rail_fail_next.push(RailFault::any(rail, status));
        };
        self.app()
            .inject(|f| match kind {
                "ramp_429" => fail(f, SimRail::Ramp, 429),
                "ramp_503" => fail(f, SimRail::Ramp, 503),
                "ramp_timeout" => fail(f, SimRail::Ramp, 0),
                "qbo_429" => fail(f, SimRail::Qbo, 429),
                "qbo_500" => fail(f, SimRail::Qbo, 500),
                "qbo_timeout" => fail(f, SimRail::Qbo, 0),
                "plaid_429" => fail(f, SimRail::Plaid, 429),
                "plaid_500" => fail(f, SimRail::Plaid, 500),
                "plaid_timeout" => fail(f, SimRail::Plaid, 0),
                "qbo_write_lose_response" => f.qbo_write_lose_response_next += 1,
                "qbo_late" => f.qbo_late_next += 1,
                "webhook_delay" => f.webhook_delay_next += 1,
                "ramp_create_429" => f.ramp_create_fail_next.push(429),
                "ramp_create_500" => f.ramp_create_fail_next.push(500),
                "ramp_create_503" => f.ramp_create_fail_next.push(503),
                "ramp_create_400" => f.ramp_create_fail_next.push(400),
                "ramp_create_lose_response" => f.ramp_create_lose_response_next += 1,
                "ramp_lost_then_down" => {
                    f.ramp_create_lose_response_next += 1;
                    for _ in 0..4 {
                        f.rail_fail_next.push(RailFault {
                            method: Some("GET".into()),
                            path: Some("/developer/v1/bills".into()),
                            ..RailFault::any(SimRail::Ramp, 503)
                        });
                    }
                }
                "ramp_list_lag" => f.ramp_list_lag_secs = lag,
                "webhook_duplicate" => f.webhook_duplicate = true,
                "webhook_drop" => f.webhook_drop_next += 1,
                "qbo_amount_mismatch" => f.qbo_amount_mismatch_next += 1,
                "qbo_skip" => f.qbo_skip_next += 1,
                "ramp_ach_return" => f
                    .ramp_ach_return_next
                    .push(if lag.is_multiple_of(2) { "R01" } else { "R02" }.to_owned()),
                "plaid_login_required" => f.plaid_login_required.push(pick),
                "plaid_debits_pending_first" => f.plaid_debits_pending_first = true,
                // Only a pending debit can fall off: debits show as
                // pending first from now on.
                "plaid_drop_pending" => {
                    f.plaid_debits_pending_first = true;
                    f.plaid_drop_pending_next += 1;
                }
                _ => unreachable!("{kind}"),
            })
            .await;
        // A burst is counted as what it is made of.
        if kind == "ramp_lost_then_down" {
            *self
                .tally
                .injected
                .entry("ramp_create_lose_response")
                .or_default() += 1;
            *self.tally.injected.entry("ramp_503").or_default() += 4;
        } else {
            *self.tally.injected.entry(kind).or_default() += 1;
        }
        self.log(format!("inject {kind}"));
    }

    /// Consumed counters that went down during a step fired.
    pub(crate) fn count_fired(&mut self, before: &sandbox::Faults, after: &sandbox::Faults) {
        let mut counts: Vec<(&'static str, u64)> = Vec::new();
        let mut fired = |k: &'static str, b: u64, a: u64| {
            if b > a {
                counts.push((k, b - a));
            }
        };
        for code in [429u16, 500, 503, 400] {
            let n = |f: &sandbox::Faults| {
                f.ramp_create_fail_next
                    .iter()
                    .filter(|c| **c == code)
                    .count() as u64
            };
            let k = match code {
                429 => "ramp_create_429",
                500 => "ramp_create_500",
                503 => "ramp_create_503",
                _ => "ramp_create_400",
            };
            fired(k, n(before), n(after));
        }
        // The one-shot counters: a count that went down fired that often.
        let counters: [(&'static str, Counter); 8] = [
            ("ramp_create_lose_response", |f| {
                f.ramp_create_lose_response_next
            }),
            ("webhook_drop", |f| f.webhook_drop_next),
            ("qbo_amount_mismatch", |f| f.qbo_amount_mismatch_next),
            ("qbo_skip", |f| f.qbo_skip_next),
            ("plaid_drop_pending", |f| f.plaid_drop_pending_next),
            ("qbo_write_lose_response", |f| {
                f.qbo_write_lose_response_next
            }),
            ("qbo_late", |f| f.qbo_late_next),
            ("webhook_delay", |f| f.webhook_delay_next),
        ];
        for (k, count) in counters {
            fired(k, count(before).into(), count(after).into());
        }
        fired(
            "ramp_ach_return",
            before.ramp_ach_return_next.len() as u64,
            after.ramp_ach_return_next.len() as u64,
        );
        for (rail, status, k) in [
            (SimRail::Ramp, 429, "ramp_429"),
            (SimRail::Ramp, 503, "ramp_503"),
            (SimRail::Ramp, 0, "ramp_timeout"),
            (SimRail::Qbo, 429, "qbo_429"),
            (SimRail::Qbo, 500, "qbo_500"),
            (SimRail::Qbo, 0, "qbo_timeout"),
            (SimRail::Plaid, 429, "plaid_429"),
            (SimRail::Plaid, 500, "plaid_500"),
            (SimRail::Plaid, 0, "plaid_timeout"),
        ] {
            let n = |f: &sandbox::Faults| {
                f.rail_fail_next
                    .iter()
                    .filter(|x| x.rail == rail && x.status == status)
                    .count() as u64
            };
            fired(k, n(before), n(after));
        }
        for (k, n) in counts {
            self.fire(k, n);
        }
    }

    /// Standing faults are "fired" for every step they were on during.
    pub(crate) fn count_standing(&mut self, f: &sandbox::Faults) {
        for (k, on) in [
            ("ramp_list_lag", f.ramp_list_lag_secs > 0),
            ("webhook_duplicate", f.webhook_duplicate),
            ("plaid_login_required", !f.plaid_login_required.is_empty()),
            ("plaid_debits_pending_first", f.plaid_debits_pending_first),
            ("webhook_reorder", f.webhook_reorder),
        ] {
            if on {
                self.fire(k, 1);
            }
        }
    }

    /// A grant fault on one client's active QBO or Ramp connection: its
    /// access tokens expire early at the provider, or its consent is
    /// withdrawn. Half the time RowCol's record of the expiry is moved up
    /// too (as an hour of wall-clock time would), so the sweep refreshes
    /// ahead instead of a call being refused first.
    pub(crate) async fn grant_fault(&mut self, kind: &'static str) {
        let conns: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "select r.client_id, c.name, r.rail, r.external_id, r.token_version
             from rail_connection r join client c on c.client_id = r.client_id
             where r.rail in ('qbo', 'ramp') and r.status = 'active'
             order by c.name, r.rail",
        )
        .fetch_all(&self.app().state.app.db.pool)
        .await
        .expect("connections");
        let local = self.rng.below(2) == 0;
        if conns.is_empty() {
            self.log(format!("inject {kind}: no active connection"));
            return;
        }
        let (cid, name, rail, account, version) =
            conns[self.rng.below(conns.len() as u64) as usize].clone();
        let sim_rail = if rail == "qbo" {
            SimRail::Qbo
        } else {
            SimRail::Ramp
        };
        let sb = self.app().sandbox();
        let r = if kind == "consent_revoked" {
            sb.revoke_consent(sim_rail, &account).await
        } else {
            sb.expire_access_tokens(sim_rail, &account).await
        };
        r.expect("grant fault");
        if local {
            sqlx::query(
                "update rail_connection set access_expires_at = 0 where client_id = $1 and rail = $2",
            )
            .bind(&cid)
            .bind(&rail)
            .execute(&self.app().state.app.db.pool)
            .await
            .expect("expire locally");
        }
        if kind == "consent_revoked" {
            self.revoked.insert((cid.clone(), rail.clone()));
            self.revoked_seen.remove(&(cid, rail.clone()));
        } else {
            self.expiries.push((cid, rail.clone(), version));
        }
        *self.tally.injected.entry(kind).or_default() += 1;
        self.log(format!("inject {kind} {name}/{rail} (local: {local})"));
    }
}
