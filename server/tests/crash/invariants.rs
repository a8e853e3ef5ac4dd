//! The end phase: the world settled, then every invariant checked through
//! the rails' own APIs and RowCol's database.

use super::*;

pub(crate) fn rank(state: &str) -> Option<u8> {
    match state {
        "staged" => Some(0),
        "approved" => Some(1),
        "released" => Some(2),
        "paid" => Some(3),
        "recorded" => Some(4),
        "verified" => Some(5),
        _ => None,
    }
}

/// payment_id, bill_id, state, amount_minor, flag_reason, ramp_bill_id,
/// plaid_txn_id.
pub(crate) type PaymentRow = (
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// A Ramp bill as Ramp's list API shows it.
pub(crate) struct RampBill {
    pub(crate) id: String,
    pub(crate) remote_id: Option<String>,
    pub(crate) status: String,
    pub(crate) amount: i64,
}

/// What the end phase found.
pub(crate) struct Report {
    pub(crate) states: BTreeMap<String, usize>,
    pub(crate) flagged: BTreeMap<String, usize>,
    pub(crate) ramp_bills: usize,
    pub(crate) ramp_paid: usize,
    pub(crate) jobs: BTreeMap<String, i64>,
    pub(crate) claims_cut: i64,
    pub(crate) today: String,
    /// The simulated Ramp's webhooks per status, as its state reports them.
    pub(crate) webhooks: Value,
    /// RowCol's webhook inbox per status.
    pub(crate) inbox: BTreeMap<String, i64>,
}

impl Run {
    /// Faults off; the clock on until every payment's arrival date is 10
    /// days behind (its bank window, 5 business days, is over), at least
    /// 15 days; then wait until no job is due.
    ///
    /// The rails' wall-clock rate limits go off too: RowCol does not yet pace
    /// its QBO calls per realm (an open issue), so during the settle's burst
    /// of advances QBO's throttle could push a verification an hour past
    /// the moment this waits for (seen: a payment left `paid`, its verify
    /// job queued "rate limited" for 13:00 with the clock at noon).
    pub(crate) async fn settle(&mut self) -> String {
        control_post(
            &self.http,
            &format!("{}/sandbox/control/faults", self.base),
            &json!({"qbo_throttle_off": true, "rate_limits_off": true}),
        )
        .await
        .expect("faults off");
        self.decide_all_waiting().await;
        let db = app::ssr::store::Db::connect(&self.db_url)
            .await
            .expect("database");
        let last: Option<String> =
            sqlx::query_scalar("select max(payment_arrival_date) from payment")
                .fetch_one(&db.pool)
                .await
                .expect("arrival dates");
        db.pool.close().await;
        let last = last.and_then(|d| d.parse::<chrono::NaiveDate>().ok());
        let mut today = String::new();
        for i in 0..60 {
            let done = match (today.parse::<chrono::NaiveDate>(), last) {
                (Ok(t), Some(l)) => t > l + chrono::Duration::days(10),
                (Ok(_), None) => true,
                _ => false,
            };
            if i >= 5 && done {
                break;
            }
            let v = post_json(
                &self.http,
                &format!("{}/api/sandbox/advance", self.base),
                &[("days", "3")],
            )
            .await
            .unwrap_or_else(|e| panic!("final advance: {e}\n{}", log_tail(&self.log, 40)));
            today = v["today"].as_str().unwrap_or_default().to_owned();
        }
        // The worker finishes what is due.
        let db = app::ssr::store::Db::connect(&self.db_url)
            .await
            .expect("database");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let now = self.sandbox_now_ms().await;
            let due: i64 = sqlx::query_scalar(
                "select count(*) from job where state = 'queued' and run_at <= $1",
            )
            .bind(now)
            .fetch_one(&db.pool)
            .await
            .expect("due jobs");
            if due == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{due} jobs still due after 120 s\n{}",
                log_tail(&self.log, 40)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        db.pool.close().await;
        today
    }

    /// Jobs leased further ahead than one lease length: after a restart,
    /// a lease taken on a clock the restarted process no longer has (the
    /// sandbox clock went back), which would hold the job for that long.
    pub(crate) async fn far_leases(&self, pool: &sqlx::AnyPool) -> Vec<String> {
        let now_ms = self.sandbox_now_ms().await;
        let far: Vec<(String, String, i64)> = sqlx::query_as(
            "select job_id, kind, lease_until from job
             where state = 'queued' and lease_until is not null and lease_until > $1",
        )
        // A minute's slack: the running process may claim a job (now +
        // one lease) between the read of "now" and this query.
        .bind(now_ms + LEASE_MS + 60_000)
        .fetch_all(pool)
        .await
        .expect("leases");
        far.into_iter()
            .map(|(id, kind, until)| {
                format!(
                    "after restart {}: job {id} ({kind}) leased until {} s from now, \
                     longer than a lease (the clock went back?)",
                    self.stats.restarts,
                    (until - now_ms) / 1000
                )
            })
            .collect()
    }

    /// After a restart: no job is held by a lease from the future.
    pub(crate) async fn check_leases(&mut self) {
        let db = app::ssr::store::Db::connect(&self.db_url)
            .await
            .expect("database");
        let far = self.far_leases(&db.pool).await;
        db.pool.close().await;
        self.stats.violations.extend(far);
    }

    pub(crate) async fn sandbox_now_ms(&self) -> i64 {
        let st = get_json(&self.http, &format!("{}/sandbox/control/state", self.base))
            .await
            .expect("sandbox state");
        let now: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(st["now"].clone()).expect("now");
        now.timestamp_millis()
    }

    /// Every invariant, through the rails' APIs (server running) and then
    /// RowCol's database and `rowcol verify-audit` (server stopped).
    pub(crate) async fn check(&mut self, today: String) -> Report {
        let mut v: Vec<String> = Vec::new();
        let db = app::ssr::store::Db::connect(&self.db_url)
            .await
            .expect("database");
        let pool = &db.pool;
        let sealer = app::ssr::crypto::Sealer::from_base64_key(KEY).expect("key");

        // --- Ramp and Plaid, through their own APIs.
        let (ramp, plaid_txns) = self.read_rails(pool, &sealer).await;
        // The sandbox's own counts agree with what the list API showed.
        let st = get_json(&self.http, &format!("{}/sandbox/control/state", self.base))
            .await
            .expect("sandbox state");
        let listed_open = ramp.iter().filter(|b| b.status == "OPEN").count() as i64;
        let listed_paid = ramp.iter().filter(|b| b.status == "PAID").count() as i64;
        if st["ramp_bills"]["OPEN"].as_i64() != Some(listed_open)
            || st["ramp_bills"]["PAID"].as_i64() != Some(listed_paid)
        {
            v.push(format!(
                "Ramp's list shows {listed_open} open / {listed_paid} paid bills, \
                 the sandbox state {}",
                st["ramp_bills"]
            ));
        }
        // The audit chain, through RowCol's API (full re-hash).
        match post_json(
            &self.http,
            &format!("{}/api/audit", self.base),
            &[("full", "true")],
        )
        .await
        {
            Ok(a) if a["chain"]["ok"] == json!(true) => {}
            Ok(a) => v.push(format!("/api/audit: chain not ok: {}", a["chain"])),
            Err(e) => v.push(format!("/api/audit failed: {e}")),
        }
        v.extend(self.far_leases(pool).await);

        // The server stops; the rest reads the database at rest.
        self.kill();

        // --- RowCol's payments against the rails.
        let payments: Vec<PaymentRow> = sqlx::query_as(
            "select payment_id, bill_id, state, amount_minor, flag_reason, ramp_bill_id,
                        plaid_txn_id
                 from payment order by payment_id",
        )
        .fetch_all(pool)
        .await
        .expect("payments");
        let known: HashSet<&str> = payments.iter().map(|p| p.0.as_str()).collect();
        let mut by_remote: HashMap<&str, Vec<&RampBill>> = HashMap::new();
        for b in &ramp {
            if let Some(r) = b.remote_id.as_deref() {
                by_remote.entry(r).or_default().push(b);
            }
        }
        for (r, bills) in &by_remote {
            if bills.len() > 1 {
                let ids: Vec<&str> = bills.iter().map(|b| b.id.as_str()).collect();
                v.push(format!(
                    "{} Ramp bills carry remote_id {r}: {ids:?}",
                    bills.len()
                ));
            }
            if r.starts_with("pay_") && !known.contains(r) {
                v.push(format!("Ramp bill for unknown payment {r}"));
            }
        }
        // One vendor bill is released at most once, over all its payments.
        let mut per_bill: HashMap<&str, usize> = HashMap::new();
        for (pid, bill, ..) in &payments {
            *per_bill.entry(bill.as_str()).or_default() +=
                by_remote.get(pid.as_str()).map_or(0, Vec::len);
        }
        for (bill, n) in per_bill {
            if n > 1 {
                v.push(format!("bill {bill} has {n} Ramp bills over its payments"));
            }
        }
        let custody: Vec<(String, String, String)> =
            sqlx::query_as("select payment_id, state, evidence from custody_event")
                .fetch_all(pool)
                .await
                .expect("custody");
        let mut steps: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
        for (pid, state, evidence) in &custody {
            steps
                .entry(pid.as_str())
                .or_default()
                .push((state.as_str(), evidence.as_str()));
        }
        // Audit order of the custody steps.
        let audit: Vec<(String, String, i64)> = sqlx::query_as(
            "select subject, action, seq from audit_entry
             where action like 'payment.%' order by firm_id, seq",
        )
        .fetch_all(pool)
        .await
        .expect("audit");
        let mut audit_of: HashMap<&str, Vec<&str>> = HashMap::new();
        for (subject, action, _) in &audit {
            audit_of
                .entry(subject.as_str())
                .or_default()
                .push(action.trim_start_matches("payment."));
        }
        let mut report = Report {
            states: BTreeMap::new(),
            flagged: BTreeMap::new(),
            ramp_bills: by_remote.len(),
            ramp_paid: ramp
                .iter()
                .filter(|b| b.remote_id.is_some() && b.status == "PAID")
                .count(),
            jobs: BTreeMap::new(),
            claims_cut: 0,
            today,
            webhooks: st["webhooks"].clone(),
            inbox: BTreeMap::new(),
        };
        for p in &payments {
            let rb = by_remote.get(p.0.as_str()).and_then(|b| b.first().copied());
            let my_steps = steps.get(p.0.as_str()).cloned().unwrap_or_default();
            let order = audit_of.get(p.0.as_str()).cloned().unwrap_or_default();
            check_payment(p, rb, &my_steps, &order, &plaid_txns, &mut report, &mut v);
        }
        // One bank transaction evidences at most one payment.
        let mut evidence: HashMap<&str, usize> = HashMap::new();
        for p in &payments {
            if let Some(t) = p.6.as_deref() {
                *evidence.entry(t).or_default() += 1;
            }
        }
        for (t, n) in evidence {
            if n > 1 {
                v.push(format!("bank transaction {t} evidences {n} payments"));
            }
        }
        // Every approval RowCol acknowledged survived the kills.
        for pid in &self.stats.acknowledged {
            if !known.contains(pid.as_str()) {
                v.push(format!(
                    "approval {pid} was answered 200 but is not in the database"
                ));
            }
        }
        // Jobs: per state; claims a kill cut short (a claim with no attempt
        // row) that another claim later took over.
        let jobs: Vec<(String, i64)> =
            sqlx::query_as("select state, count(*) from job group by state order by state")
                .fetch_all(pool)
                .await
                .expect("jobs");
        report.jobs = jobs.into_iter().collect();
        let cut: Option<i64> = sqlx::query_scalar(
            "select cast(sum(j.attempts - (select count(*) from job_attempt a
                                           where a.job_id = j.job_id)) as bigint)
             from job j",
        )
        .fetch_one(pool)
        .await
        .expect("cut claims");
        report.claims_cut = cut.unwrap_or(0);
        // A replayed job files no second item for the same payment.
        let twice: Vec<(String, String, i64)> = sqlx::query_as(
            "select payment_id, reason_code, count(*) from hygiene_item
             where payment_id is not null and status = 'open'
             group by payment_id, reason_code having count(*) > 1",
        )
        .fetch_all(pool)
        .await
        .expect("hygiene");
        for (pid, reason, n) in twice {
            v.push(format!("payment {pid} has {n} open {reason} hygiene items"));
        }
        // Every webhook stored was processed (its job commits with it).
        let inbox: Vec<(String, i64)> = sqlx::query_as(
            "select status, count(*) from webhook_inbox group by status order by status",
        )
        .fetch_all(pool)
        .await
        .expect("inbox");
        report.inbox = inbox.into_iter().collect();
        if let Some(n) = report.inbox.get("received") {
            v.push(format!("{n} stored webhooks never processed"));
        }
        // A processing that gave up is marked dead; a crash must cause none.
        if let Some(n) = report.inbox.get("dead") {
            v.push(format!("{n} stored webhooks dead-lettered"));
        }
        db.pool.close().await;

        // The audit chain, re-hashed by the binary's own command.
        v.extend(self.verify_audit());
        self.stats.violations.extend(v);
        report
    }

    /// Every Ramp bill through Ramp's list API (every business, every
    /// page), and every Plaid transaction from the start of each Item's
    /// history (amount in cents, whether it was removed since).
    pub(crate) async fn read_rails(
        &self,
        pool: &sqlx::AnyPool,
        sealer: &app::ssr::crypto::Sealer,
    ) -> (Vec<RampBill>, HashMap<String, (i64, bool)>) {
        let conns: Vec<(String, String, String, String)> = sqlx::query_as(
            "select connection_id, rail, external_id, token_sealed from rail_connection
             where rail in ('ramp', 'plaid') order by client_id, rail",
        )
        .fetch_all(pool)
        .await
        .expect("connections");
        let mut ramp: Vec<RampBill> = Vec::new();
        let mut plaid_txns: HashMap<String, (i64, bool)> = HashMap::new();
        for (connection_id, rail, _, sealed) in &conns {
            let token = sealer
                .open(sealed, connection_id)
                .expect("token opens with the key");
            if rail == "ramp" {
                let mut url = Some(format!(
                    "{}/sandbox/ramp/developer/v1/bills?page_size=100",
                    self.base
                ));
                while let Some(u) = url.take() {
                    let page = ramp_page(&self.http, &u, &token).await;
                    for b in page["data"].as_array().expect("ramp data") {
                        ramp.push(RampBill {
                            id: b["id"].as_str().expect("id").to_owned(),
                            remote_id: b["remote_id"].as_str().map(str::to_owned),
                            status: b["status"].as_str().unwrap_or_default().to_owned(),
                            amount: b["amount"]["amount"].as_i64().unwrap_or(-1),
                        });
                    }
                    url = page["page"]["next"].as_str().map(str::to_owned);
                }
            } else {
                // Plaid: the whole transaction history, from the start.
                let mut cursor = String::new();
                loop {
                    let page = control_post(
                        &self.http,
                        &format!("{}/sandbox/plaid/transactions/sync", self.base),
                        &json!({"client_id": PLAID_CLIENT_ID, "secret": PLAID_SECRET,
                                "access_token": token, "cursor": cursor, "count": 500}),
                    )
                    .await
                    .expect("plaid transactions/sync");
                    for t in page["added"].as_array().expect("added") {
                        let cents = (t["amount"].as_f64().expect("amount") * 100.0).round() as i64;
                        plaid_txns.insert(
                            t["transaction_id"].as_str().expect("id").to_owned(),
                            (cents, false),
                        );
                    }
                    for t in page["removed"].as_array().expect("removed") {
                        if let Some(e) = t["transaction_id"]
                            .as_str()
                            .and_then(|id| plaid_txns.get_mut(id))
                        {
                            e.1 = true;
                        }
                    }
                    cursor = page["next_cursor"].as_str().unwrap_or_default().to_owned();
                    if !page["has_more"].as_bool().unwrap_or(false) {
                        break;
                    }
                }
            }
        }
        (ramp, plaid_txns)
    }

    /// `rowcol verify-audit` (full re-hash) on the database at rest: what
    /// it reports when the chain is broken.
    pub(crate) fn verify_audit(&self) -> Option<String> {
        let mut cmd = Command::new(&self.bin);
        scrub_env(&mut cmd);
        let out = cmd
            .arg("verify-audit")
            .env("DATABASE_URL", &self.db_url)
            .env("ROWCOL_ENCRYPTION_KEY", KEY)
            .env("ROWCOL_DATA_DIR", self.tmp.path())
            .output()
            .expect("rowcol verify-audit");
        (!out.status.success()).then(|| {
            format!(
                "rowcol verify-audit: {} {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

/// One payment against the rails: settled or flagged, its state its
/// furthest custody step (a dead end says why, and nothing moved after it),
/// paid only if Ramp paid that bill for that amount, evidenced only by a
/// real Plaid transaction of the same amount.
fn check_payment(
    p: &PaymentRow,
    rb: Option<&RampBill>,
    my_steps: &[(&str, &str)],
    order: &[&str],
    plaid_txns: &HashMap<String, (i64, bool)>,
    report: &mut Report,
    v: &mut Vec<String>,
) {
    let (pid, _bill, state, amount, flag, ramp_bill, txn) = p;
    *report.states.entry(state.clone()).or_default() += 1;
    if let Some(f) = flag {
        *report.flagged.entry(f.clone()).or_default() += 1;
    }
    // Settled, or flagged with a reason.
    let settled = matches!(
        state.as_str(),
        "verified" | "failed" | "cancelled" | "rejected"
    );
    if !settled && flag.is_none() {
        v.push(format!("payment {pid} ended {state}, unflagged"));
    }
    match rank(state) {
        Some(r) => {
            // The state is its furthest custody step: nothing went back.
            let furthest = my_steps.iter().filter_map(|(s, _)| rank(s)).max();
            if furthest != Some(r) {
                v.push(format!(
                    "payment {pid} is {state} but its custody chain reaches {furthest:?}"
                ));
            }
        }
        None => {
            // A dead end says why, and nothing moved after it.
            match my_steps.iter().find(|(s, _)| *s == state.as_str()) {
                Some((_, ev)) if !ev.trim().is_empty() => {}
                _ => v.push(format!("payment {pid} is {state} without a custody reason")),
            }
            if let Some(at) = order.iter().position(|a| *a == state.as_str()) {
                if let Some(later) = order[at + 1..].iter().find(|a| rank(a).is_some()) {
                    v.push(format!("payment {pid}: custody step {later} after {state}"));
                }
            }
            if let Some(b) = rb {
                v.push(format!(
                    "payment {pid} is {state} but Ramp holds bill {} ({}) for it",
                    b.id, b.status
                ));
            }
        }
    }
    // Paid or beyond: Ramp paid exactly that bill, for that amount.
    if rank(state).is_some_and(|r| r >= 3) {
        match rb {
            Some(b) if b.status == "PAID" && b.amount == *amount => {}
            Some(b) => v.push(format!(
                "payment {pid} is {state} ({amount}) but its Ramp bill {} is {} ({})",
                b.id, b.status, b.amount
            )),
            None => v.push(format!("payment {pid} is {state} with no Ramp bill")),
        }
    }
    if let (Some(b), Some(mine)) = (rb, ramp_bill) {
        if &b.id != mine {
            v.push(format!(
                "payment {pid} points at Ramp bill {mine}, Ramp's bill for it is {}",
                b.id
            ));
        }
    }
    if let Some(b) = rb {
        if b.status == "PAID" && rank(state).is_some_and(|r| r < 3) && flag.is_none() {
            v.push(format!(
                "Ramp paid {} for payment {pid}, RowCol still says {state}",
                b.id
            ));
        }
    }
    // Bank evidence: a real Plaid transaction of the same amount.
    if let Some(t) = txn {
        match plaid_txns.get(t) {
            Some((cents, removed)) => {
                if *cents != *amount {
                    v.push(format!(
                        "payment {pid} ({amount}) evidenced by Plaid {t} of {cents}"
                    ));
                }
                if *removed && flag.is_none() {
                    v.push(format!(
                        "payment {pid} evidenced by removed Plaid {t}, unflagged"
                    ));
                }
            }
            None => v.push(format!("payment {pid}: Plaid has no transaction {t}")),
        }
    }
}
