//! The request streams that run while kills land: approvals and double
//! submits, retries, second approvals, clock advances, injected faults.

use super::*;

/// What the request streams did (merged over the run).
#[derive(Default, Debug)]
pub(crate) struct Stats {
    pub(crate) kills: u32,
    pub(crate) kills_at_start: u32,
    pub(crate) restarts: u32,
    pub(crate) approvals_ok: u32,
    pub(crate) approvals_refused: u32,
    /// Refusals by status (409 already approved, 422 guardrail, 503 bank).
    pub(crate) refused: BTreeMap<u16, u32>,
    /// Retries of failed releases answered 200.
    pub(crate) retries_ok: u32,
    /// Second approvals answered 200.
    pub(crate) seconds_ok: u32,
    pub(crate) requests_cut: u32,
    pub(crate) double_submits: u32,
    pub(crate) advances: u32,
    pub(crate) faults: u32,
    /// Which requests were in flight when a kill cut them.
    pub(crate) cut_at: BTreeMap<&'static str, u32>,
    /// Payment ids RowCol answered 200 for: each must exist at the end.
    pub(crate) acknowledged: Vec<String>,
    pub(crate) violations: Vec<String>,
}

impl Stats {
    pub(crate) fn add(&mut self, o: Stats) {
        self.approvals_ok += o.approvals_ok;
        self.approvals_refused += o.approvals_refused;
        self.retries_ok += o.retries_ok;
        self.seconds_ok += o.seconds_ok;
        for (k, n) in o.refused {
            *self.refused.entry(k).or_default() += n;
        }
        self.requests_cut += o.requests_cut;
        self.double_submits += o.double_submits;
        self.advances += o.advances;
        self.faults += o.faults;
        for (k, n) in o.cut_at {
            *self.cut_at.entry(k).or_default() += n;
        }
        self.acknowledged.extend(o.acknowledged);
        self.violations.extend(o.violations);
    }
}

/// Which job a request stream has.
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    /// Approvals, double submits, reads.
    Approver,
    /// Clock advances, fault injection, now and then an approval.
    World,
}

/// A server function call; the JSON answer of a 2xx, else an error.
pub(crate) async fn post_json(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<Value, String> {
    let r = http
        .post(url)
        .header("accept", "application/json")
        .form(form)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|e| format!("{url}: {e}"))?;
    if !(200..300).contains(&status) {
        return Err(format!("{url}: {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("{url}: {e}: {text}"))
}

/// An approval: `Ok(Ok(payment ids))` when approved, `Ok(Err(status))` when
/// refused with an answer (409 already approved, 422 guardrail, 503 stale
/// bank…), `Err` when the request was cut.
pub(crate) async fn approve_call(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<Result<Vec<String>, u16>, String> {
    let r = http
        .post(url)
        .header("accept", "application/json")
        .form(form)
        .send()
        .await
        .map_err(|e| format!("approve: {e}"))?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|e| format!("approve: {e}"))?;
    if status == 200 || status == 302 {
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let ids = v["payments"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Ok(ids))
    } else if status >= 500 && status != 503 {
        Err(format!("approve: {status} {text}"))
    } else {
        Ok(Err(status))
    }
}

/// One page of Ramp's bill list; waits out its rate limit (429), which
/// RowCol's own worker may be using up at the same moment.
pub(crate) async fn ramp_page(http: &reqwest::Client, url: &str, token: &str) -> Value {
    for _ in 0..30 {
        let r = http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("ramp list");
        let status = r.status().as_u16();
        let text = r.text().await.expect("ramp list body");
        match status {
            200 => return serde_json::from_str(&text).expect("ramp json"),
            429 => tokio::time::sleep(Duration::from_secs(1)).await,
            _ => panic!("Ramp's bill list answered {status}: {text}"),
        }
    }
    panic!("Ramp's bill list stayed rate limited for 30 s");
}

pub(crate) async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let r = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|e| format!("{url}: {e}"))?;
    if status != 200 {
        return Err(format!("{url}: {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("{url}: {e}"))
}

/// A JSON POST to a sandbox control or a rail API.
pub(crate) async fn control_post(
    http: &reqwest::Client,
    url: &str,
    body: &Value,
) -> Result<Value, String> {
    let r = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|e| format!("{url}: {e}"))?;
    if status != 200 {
        return Err(format!("{url}: {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("{url}: {e}"))
}

impl Run {
    /// Payments waiting for a second approver (ids, oldest first).
    pub(crate) async fn waiting(&self) -> Result<Vec<String>, String> {
        let list = post_json(
            &self.admin,
            &format!("{}/api/approvals/waiting", self.base),
            &[],
        )
        .await?;
        Ok(list
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| w["payment_id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The second approval of a waiting payment, by the admin (now and
    /// then twice at once: at most one may be answered 200); the advisor
    /// who approved first trying it is refused.
    pub(crate) async fn second(&self, rng: &mut Prng, s: &mut Stats) -> Result<(), String> {
        let ids = self.waiting().await?;
        if ids.is_empty() {
            return Ok(());
        }
        let pid = ids[rng.below(ids.len() as u64) as usize].clone();
        let url = format!("{}/api/approve_second", self.base);
        let form = [("payment_id", pid.as_str())];
        let status = |r: Result<reqwest::Response, reqwest::Error>| {
            r.map(|r| r.status().as_u16()).map_err(|e| e.to_string())
        };
        if rng.below(4) == 0 {
            let own = status(self.http.post(&url).form(&form).send().await)?;
            if own < 400 {
                s.violations
                    .push(format!("the first approver approved {pid} again ({own})"));
            }
        }
        let answers = if rng.below(3) == 0 {
            s.double_submits += 1;
            let (a, b) = tokio::join!(
                self.admin.post(&url).form(&form).send(),
                self.admin.post(&url).form(&form).send()
            );
            vec![status(a)?, status(b)?]
        } else {
            vec![status(self.admin.post(&url).form(&form).send().await)?]
        };
        let ok = answers.iter().filter(|a| **a == 200).count();
        if ok > 1 {
            s.violations.push(format!(
                "the second approval of {pid} was answered 200 twice"
            ));
        }
        s.seconds_ok += ok as u32;
        Ok(())
    }

    /// Before the end: every payment still waiting is approved by the
    /// admin or, when the rules now refuse it, rejected by the advisor.
    pub(crate) async fn decide_all_waiting(&mut self) {
        let ids = self
            .waiting()
            .await
            .unwrap_or_else(|e| panic!("waiting list: {e}\n{}", log_tail(&self.log, 40)));
        for pid in ids {
            let second = self
                .admin
                .post(format!("{}/api/approve_second", self.base))
                .form(&[("payment_id", pid.as_str())])
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string());
            if second == Ok(200) {
                self.stats.seconds_ok += 1;
                continue;
            }
            let rejected = self
                .http
                .post(format!("{}/api/reject_payment", self.base))
                .form(&[
                    ("payment_id", pid.as_str()),
                    ("reason", "not approved in time"),
                ])
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string());
            assert_eq!(
                rejected,
                Ok(200),
                "rejecting {pid} after {second:?}\n{}",
                log_tail(&self.log, 40)
            );
        }
    }

    /// One round: traffic from two streams until the kill `after` the start.
    pub(crate) async fn round(&mut self, rng: &mut Prng, after: Duration, kills: u32) {
        let child = self.child.clone().expect("running");
        let killed = Arc::new(AtomicBool::new(false));
        let timer = {
            let killed = killed.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let mut c = child.lock().expect("child");
                let _ = c.kill();
                killed.store(true, Ordering::SeqCst);
            })
        };
        // Approvals per round: the demo firm's cash approves ~110 bills in
        // all (then the guardrail refuses), spread over the whole run.
        let most = (200 / u64::from(kills.max(1))).max(3);
        let budget = AtomicI64::new(rng.between(1, most) as i64);
        let (a, b) = tokio::join!(
            self.stream(
                Stream::Approver,
                Prng::new(rng.next_u64()),
                &killed,
                &budget
            ),
            self.stream(Stream::World, Prng::new(rng.next_u64()), &killed, &budget),
        );
        timer.await.expect("kill timer");
        self.stats.add(a);
        self.stats.add(b);
        self.stats.kills += 1;
        self.kill();
    }

    /// Requests until the process is killed.
    pub(crate) async fn stream(
        &self,
        kind: Stream,
        mut rng: Prng,
        killed: &AtomicBool,
        budget: &AtomicI64,
    ) -> Stats {
        let mut s = Stats::default();
        while !killed.load(Ordering::SeqCst) {
            let roll = rng.below(100);
            let (op, r) = match (kind, roll) {
                (Stream::Approver, 0..=79) | (Stream::World, 0..=14)
                    if budget.fetch_sub(1, Ordering::SeqCst) > 0 =>
                {
                    // Spread over the round, so kills land among them.
                    tokio::time::sleep(Duration::from_millis(rng.between(0, 600))).await;
                    ("approve", self.approve(&mut rng, &mut s).await)
                }
                (Stream::Approver, 0..=79) | (Stream::World, 0..=14) => (
                    "portfolio",
                    post_json(&self.http, &format!("{}/api/portfolio", self.base), &[])
                        .await
                        .map(drop),
                ),
                (Stream::Approver, 80..=89) => ("retry", self.retry(&mut rng, &mut s).await),
                (Stream::Approver, _) => ("second", self.second(&mut rng, &mut s).await),
                (Stream::World, 15..=64) => ("advance", self.advance(&mut rng, &mut s).await),
                (Stream::World, _) => ("faults", self.fault(&mut rng, &mut s).await),
            };
            if r.is_err() {
                s.requests_cut += 1;
                *s.cut_at.entry(op).or_default() += 1;
                if !killed.load(Ordering::SeqCst) {
                    // An error before the kill: not a crash artefact.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        s
    }

    /// Approve one or two open bills of a seeded client; now and then the
    /// same form twice at once (a double submit).
    pub(crate) async fn approve(&self, rng: &mut Prng, s: &mut Stats) -> Result<(), String> {
        let cid = self.clients[rng.below(self.clients.len() as u64) as usize].clone();
        let detail = post_json(
            &self.http,
            &format!("{}/api/client", self.base),
            &[("client_id", cid.as_str())],
        )
        .await?;
        let mut bills: Vec<String> = detail["bills"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|b| b["bill_id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if bills.is_empty() {
            return Ok(());
        }
        bills.sort();
        let n = 1 + rng.below(2) as usize;
        let mut pick = Vec::new();
        for _ in 0..n.min(bills.len()) {
            let b = bills.remove(rng.below(bills.len() as u64) as usize);
            pick.push(b);
        }
        let mut form = vec![("client_id", cid.as_str())];
        for b in &pick {
            form.push(("bill_ids[]", b.as_str()));
        }
        let url = format!("{}/api/approve_bills", self.base);
        let answers = if rng.below(4) == 0 {
            s.double_submits += 1;
            let (a, b) = tokio::join!(
                approve_call(&self.http, &url, &form),
                approve_call(&self.http, &url, &form)
            );
            vec![a, b]
        } else {
            vec![approve_call(&self.http, &url, &form).await]
        };
        let mut ok = 0;
        let mut cut = None;
        for a in answers {
            match a {
                Ok(Ok(ids)) => {
                    ok += 1;
                    s.approvals_ok += 1;
                    s.acknowledged.extend(ids);
                }
                Ok(Err(status)) => {
                    s.approvals_refused += 1;
                    *s.refused.entry(status).or_default() += 1;
                }
                Err(e) => cut = Some(e),
            }
        }
        if ok > 1 {
            s.violations.push(format!(
                "a double submit of {pick:?} was approved twice (both answered 200)"
            ));
        }
        match cut {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The hygiene tray's Retry on a failed (or unconfirmed) release, now
    /// and then pressed twice at once.
    pub(crate) async fn retry(&self, rng: &mut Prng, s: &mut Stats) -> Result<(), String> {
        let items = post_json(&self.http, &format!("{}/api/hygiene", self.base), &[]).await?;
        let mut ids: Vec<String> = items["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|i| {
                        matches!(
                            i["reason_code"].as_str(),
                            Some("release_failed" | "release_unconfirmed")
                        )
                    })
                    .filter_map(|i| i["hygiene_id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if ids.is_empty() {
            return Ok(());
        }
        ids.sort();
        let id = ids[rng.below(ids.len() as u64) as usize].clone();
        let url = format!("{}/api/retry_payment", self.base);
        let form = [("hygiene_id", id.as_str())];
        let answers = if rng.below(3) == 0 {
            s.double_submits += 1;
            let (a, b) = tokio::join!(
                approve_call(&self.http, &url, &form),
                approve_call(&self.http, &url, &form)
            );
            vec![a, b]
        } else {
            vec![approve_call(&self.http, &url, &form).await]
        };
        let mut ok = 0;
        let mut cut = None;
        for a in answers {
            match a {
                Ok(Ok(ids)) => {
                    ok += 1;
                    s.retries_ok += 1;
                    s.acknowledged.extend(ids);
                }
                Ok(Err(status)) => {
                    s.approvals_refused += 1;
                    *s.refused.entry(status).or_default() += 1;
                }
                Err(e) => cut = Some(e),
            }
        }
        if ok > 1 {
            s.violations.push(format!(
                "hygiene item {id} was retried twice (both answered 200)"
            ));
        }
        cut.map_or(Ok(()), Err)
    }

    pub(crate) async fn advance(&self, rng: &mut Prng, s: &mut Stats) -> Result<(), String> {
        let days = rng.between(1, 3);
        let r = if rng.below(5) < 3 {
            // The console's button: advance, then settle RowCol's queue.
            let d = days.to_string();
            post_json(
                &self.http,
                &format!("{}/api/sandbox/advance", self.base),
                &[("days", d.as_str())],
            )
            .await
        } else {
            // The scripting control: the worker settles on its own.
            control_post(
                &self.http,
                &format!("{}/sandbox/control/advance", self.base),
                &json!({ "days": days }),
            )
            .await
        };
        if r.is_ok() {
            s.advances += 1;
        }
        r.map(drop)
    }

    pub(crate) async fn fault(&self, rng: &mut Prng, s: &mut Stats) -> Result<(), String> {
        let url = format!("{}/sandbox/control/faults", self.base);
        let mut f: sandbox::Faults = serde_json::from_value(get_json(&self.http, &url).await?)
            .map_err(|e| format!("faults: {e}"))?;
        match rng.below(12) {
            0 => f.ramp_create_fail_next.push(500),
            1 => f.ramp_create_fail_next.push(503),
            2 => f.ramp_create_fail_next.push(429),
            // Ramp refuses: the payment fails (and must hold no Ramp bill).
            3 => f.ramp_create_fail_next.push(400),
            4 | 5 => f.ramp_create_lose_response_next += 1,
            6 => f.ramp_list_lag_secs = rng.between(30, 600) as u32,
            7 => f.webhook_duplicate = true,
            8 => f.webhook_drop_next += 1,
            // QBO records the payment off by 1.00: flagged amount_mismatch.
            9 => f.qbo_amount_mismatch_next += 1,
            // heal the standing ones
            _ => {
                f.ramp_list_lag_secs = 0;
                f.webhook_duplicate = false;
            }
        }
        control_post(&self.http, &url, &serde_json::to_value(&f).expect("faults")).await?;
        s.faults += 1;
        Ok(())
    }
}
