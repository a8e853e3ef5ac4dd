//! Connections breaking (expiries, revoked consent, bank logins) and an
//! admin reconnecting through the real flows.

use super::*;

impl Sim {
    /// After each step: early expiries RowCol has refreshed past fired;
    /// every connection that went needs-reconnect traces to a fault that
    /// causes it (a revoked consent, a bank asking for its login) and gets
    /// an admin some steps later; a reconnect clears the revocation.
    pub(crate) async fn track_connections(&mut self) {
        let pool = self.app().state.app.db.pool.clone();
        let mut fired = 0;
        let mut still = Vec::new();
        for (cid, rail, version) in std::mem::take(&mut self.expiries) {
            let now: i64 = sqlx::query_scalar(
                "select token_version from rail_connection where client_id = $1 and rail = $2",
            )
            .bind(&cid)
            .bind(&rail)
            .fetch_one(&pool)
            .await
            .expect("version");
            if now > version {
                fired += 1;
            } else {
                still.push((cid, rail, version));
            }
        }
        self.expiries = still;
        self.fire("token_expire_early", fired);
        let seen = self.audit_seen;
        for (seq, action, client, rail) in self.audit_since(seen).await {
            self.audit_seen = seq;
            let key = (client.clone(), rail.clone());
            match action.as_str() {
                "connection.needs_reconnect" => {
                    let caused = if rail == "plaid" {
                        self.login_asked.contains(&client)
                    } else {
                        self.revoked.contains(&key)
                    };
                    let name: String =
                        sqlx::query_scalar("select name from client where client_id = $1")
                            .bind(&client)
                            .fetch_one(&pool)
                            .await
                            .expect("name");
                    if !caused {
                        self.violations.push(format!(
                            "step {}: {name}'s {rail} connection needs reconnecting (audit entry \
                             {seq}), but no fault that causes it was injected",
                            self.step
                        ));
                    }
                    if rail != "plaid" && self.revoked_seen.insert(key) {
                        self.fire("consent_revoked", 1);
                    }
                    // The admin gets to it two to six steps later.
                    let due = self.step + 2 + self.rng.below(5) as usize;
                    self.reconnect_due.insert((name, rail), (due, client));
                }
                "connection.connected" => {
                    self.revoked.remove(&key);
                    self.revoked_seen.remove(&key);
                }
                _ => {}
            }
        }
    }

    /// The admin gets to the broken connections that are due (all of them
    /// when `all`): QBO and Ramp are reconnected through the real flow, the
    /// bank's login is renewed at the bank (the fault off; a later read
    /// repairs the connection).
    pub(crate) async fn admin_reconnects(&mut self, all: bool) {
        let pool = self.app().state.app.db.pool.clone();
        if all {
            // Every connection that needs reconnecting, known or not yet.
            let rows: Vec<(String, String, String)> = sqlx::query_as(
                "select c.name, r.rail, r.client_id from rail_connection r
                 join client c on c.client_id = r.client_id
                 where r.status = 'needs_reconnect' order by c.name, r.rail",
            )
            .fetch_all(&pool)
            .await
            .expect("broken");
            for (name, rail, cid) in rows {
                self.reconnect_due.insert((name, rail), (self.step, cid));
            }
        }
        let due: Vec<((String, String), String)> = self
            .reconnect_due
            .iter()
            .filter(|(_, (at, _))| all || *at <= self.step)
            .map(|(k, (_, cid))| (k.clone(), cid.clone()))
            .collect();
        for ((name, rail), cid) in due {
            self.reconnect_due.remove(&(name.clone(), rail.clone()));
            let (status, account): (String, String) = sqlx::query_as(
                "select status, external_id from rail_connection where client_id = $1 and rail = $2",
            )
            .bind(&cid)
            .bind(&rail)
            .fetch_one(&pool)
            .await
            .expect("connection");
            if status != "needs_reconnect" {
                self.log(format!("admin: {name}/{rail} is {status} again"));
                continue;
            }
            if rail == "plaid" {
                let asked = self
                    .app()
                    .sandbox()
                    .faults()
                    .await
                    .plaid_login_required
                    .contains(&account);
                if asked {
                    self.app()
                        .inject(|f| f.plaid_login_required.retain(|i| *i != account))
                        .await;
                    *self.tally.injected.entry("admin_repairs_bank").or_default() += 1;
                    self.fire("admin_repairs_bank", 1);
                }
                self.log(format!("admin renews {name}'s bank login ({asked})"));
                continue;
            }
            *self.tally.injected.entry("admin_reconnect").or_default() += 1;
            match self.reconnect(&cid, &rail, &account).await {
                Ok(()) => {
                    self.fire("admin_reconnect", 1);
                    self.log(format!("admin reconnects {name}/{rail}: ok"));
                }
                Err(why) => {
                    // A rail fault on the token endpoint, say: again later.
                    let due = self.step + 1 + self.rng.below(3) as usize;
                    self.reconnect_due
                        .insert((name.clone(), rail.clone()), (due, cid));
                    self.log(format!("admin reconnects {name}/{rail}: {why}"));
                }
            }
        }
    }

    /// Reconnect `rail` for the client as the firm's admin does: POST
    /// /connect/{rail}/start, sign in at the provider and allow the same
    /// account, then the browser lands on the callback.
    pub(crate) async fn reconnect(
        &self,
        client_id: &str,
        rail: &str,
        account: &str,
    ) -> Result<(), String> {
        let base = &self.app().base;
        let location = |r: &reqwest::Response| {
            r.headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let res = self
            .admin
            .post(format!("{base}/connect/{rail}/start"))
            .form(&[("client_id", client_id)])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if res.status().as_u16() != 303 {
            return Err(format!("start answered {}", res.status()));
        }
        let authorize = location(&res);
        let provider = client();
        let html = provider
            .get(&authorize)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let marker = "name=\"request\" value=\"";
        let request = html
            .find(marker)
            .map(|at| &html[at + marker.len()..])
            .and_then(|rest| rest.find('"').map(|end| rest[..end].replace("&amp;", "&")))
            .ok_or("no request field on the authorize page")?;
        let (user, pass) = if rail == "qbo" {
            sandbox::oauth::QBO_SIGN_IN
        } else {
            sandbox::oauth::RAMP_SIGN_IN
        };
        let consent = provider
            .post(&authorize)
            .form(&[
                ("request", request.as_str()),
                ("username", user),
                ("password", pass),
            ])
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        if !consent.contains(&format!("<option value=\"{account}\"")) {
            return Err(format!("the consent page does not offer {account}"));
        }
        let back = provider
            .post(&authorize)
            .form(&[
                ("request", request.as_str()),
                ("account", account),
                ("decision", "allow"),
            ])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if back.status().as_u16() != 303 {
            return Err(format!("the decision answered {}", back.status()));
        }
        let res = self
            .admin
            .get(location(&back))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let to = location(&res);
        if res.status().as_u16() == 303 && to == format!("/connections?connected={rail}") {
            Ok(())
        } else {
            Err(format!("the callback answered {} ({to})", res.status()))
        }
    }

    /// No approval accepted while a rail of its client needs reconnecting.
    /// Replays the audit chain written during the approval request(s) from
    /// the statuses just before: `connection.needs_reconnect` breaks a
    /// rail, `connection.connected` / `connection.repaired` mend it, and
    /// every `payment.approved` of the client must find none broken. A bank
    /// login repaired by a successful read is not audited; that read is the
    /// approval's own balance refresh, which comes before its check, so a
    /// Plaid connection healthy right after the request counts as mended.
    pub(crate) async fn check_health_at_approval(
        &mut self,
        client_id: &str,
        label: &str,
        seq0: i64,
        before: &BTreeMap<String, String>,
    ) {
        let after = self.rail_statuses(client_id).await;
        let mut broken: BTreeSet<String> = before
            .iter()
            .filter(|(_, s)| *s == "needs_reconnect")
            .map(|(r, _)| r.clone())
            .collect();
        if after.get("plaid").map(String::as_str) == Some("active") {
            broken.remove("plaid");
        }
        for (seq, action, subject, extra) in self.audit_since(seq0).await {
            match action.as_str() {
                "connection.needs_reconnect" if subject == client_id => {
                    broken.insert(extra);
                }
                "connection.connected" | "connection.repaired" if subject == client_id => {
                    broken.remove(&extra);
                }
                "payment.approved" if extra == client_id && !broken.is_empty() => {
                    self.violations.push(format!(
                        "step {}: a payment for {label} was approved (audit entry {seq}) while \
                         the client's {broken:?} connection needed reconnecting",
                        self.step
                    ));
                }
                _ => {}
            }
        }
    }
}
