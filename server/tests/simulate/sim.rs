//! The simulation's state and the plain reads and calls every step uses.

use super::*;

/// What one seed produced: its trace hash, the invariant violations, and
/// the fault tally.
pub(crate) struct Outcome {
    pub(crate) trace_hash: String,
    pub(crate) violations: Vec<String>,
    pub(crate) tally: Tally,
    pub(crate) payments: usize,
}

pub(crate) struct Sim {
    pub(crate) app: Option<TestApp>,
    pub(crate) rng: Prng,
    pub(crate) advisor: reqwest::Client,
    pub(crate) viewer: reqwest::Client,
    pub(crate) trace: String,
    pub(crate) violations: Vec<String>,
    pub(crate) tally: Tally,
    /// Payments whose QBO bill the harness changed before any Ramp bill
    /// existed for them: nothing may ever be released for these.
    pub(crate) edited_before_release: HashSet<String>,
    /// Payments a person stopped (they end `cancelled` by decision).
    pub(crate) stopped: HashSet<String>,
    /// Released payments whose QBO bill the bookkeeper then paid by hand:
    /// if Ramp pays too, the bill is paid twice.
    pub(crate) hand_paid: HashSet<String>,
    pub(crate) step: usize,
    /// Every fault that fired, with the step it fired in (standing faults
    /// once per step they were on).
    pub(crate) fired_log: Vec<(usize, &'static str)>,
    /// The step each payment (by label) was first seen in.
    pub(crate) first_seen: HashMap<String, usize>,
    /// An admin of the firm (reconnects rails).
    pub(crate) admin: reqwest::Client,
    /// The firm the simulation runs (the demo firm).
    pub(crate) firm_id: String,
    /// The last audit entry the connection tracking has read.
    pub(crate) audit_seen: i64,
    /// Early expiries not yet answered by a refresh:
    /// (client id, rail, token version when injected).
    pub(crate) expiries: Vec<(String, String, i64)>,
    /// Revoked consents not yet reconnected, by (client id, rail): the
    /// only cause of a QBO or Ramp connection needing reconnect.
    pub(crate) revoked: HashSet<(String, String)>,
    /// Whether the revocation has been seen (needs reconnect) yet.
    pub(crate) revoked_seen: HashSet<(String, String)>,
    /// Clients whose bank was asked for its login (a cause of the Plaid
    /// connection needing reconnect).
    pub(crate) login_asked: HashSet<String>,
    /// When the admin gets to a broken connection, by (client name, rail):
    /// (step, client id).
    pub(crate) reconnect_due: BTreeMap<(String, String), (usize, String)>,
    /// Vendor bank accounts Ramp switched to that no advisor has confirmed
    /// yet: no release may ever pay one of these.
    pub(crate) unconfirmed_accounts: BTreeSet<String>,
    /// The step from which the advisor gets to held releases.
    pub(crate) confirm_due: Option<usize>,
    /// How much of the living world's log the harness has read.
    pub(crate) world_seen: usize,
    /// Ramp bills already counted as paid after their money left.
    pub(crate) early_seen: HashSet<String>,
}

/// An approval row as the invariants read it: (payment, step, user, rules,
/// at).
pub(crate) type Approval = (String, String, String, String, i64);

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub(crate) fn rank(state: &str) -> u8 {
    match state {
        "staged" => 0,
        "awaiting_second_approval" => 1,
        "approved" => 2,
        "released" => 3,
        "paid" => 4,
        "recorded" => 5,
        "verified" => 6,
        // terminal off the happy path
        _ => 7,
    }
}

/// Ranks of the states in which money was sent to Ramp (released to
/// verified).
pub(crate) const SENT: std::ops::RangeInclusive<u8> = 3..=6;

impl Sim {
    /// A simulation of `seed` on a running app.
    pub(crate) async fn new(app: TestApp, seed: u64) -> Sim {
        let mut sim = Sim {
            app: Some(app),
            rng: Prng::new(seed),
            advisor: client(),
            viewer: client(),
            trace: String::new(),
            violations: Vec::new(),
            tally: Tally::default(),
            edited_before_release: HashSet::new(),
            stopped: HashSet::new(),
            hand_paid: HashSet::new(),
            step: 0,
            fired_log: Vec::new(),
            first_seen: HashMap::new(),
            admin: client(),
            firm_id: String::new(),
            audit_seen: 0,
            expiries: Vec::new(),
            revoked: HashSet::new(),
            revoked_seen: HashSet::new(),
            login_asked: HashSet::new(),
            reconnect_due: BTreeMap::new(),
            unconfirmed_accounts: BTreeSet::new(),
            confirm_due: None,
            world_seen: 0,
            early_seen: HashSet::new(),
        };
        sim.firm_id = sqlx::query_scalar("select firm_id from app_user where email = $1")
            .bind("admin@northwind.test")
            .fetch_one(&sim.app().state.app.db.pool)
            .await
            .expect("firm");
        sim
    }

    pub(crate) fn app(&self) -> &TestApp {
        self.app.as_ref().expect("app")
    }

    /// A fault fired `n` times in this step.
    pub(crate) fn fire(&mut self, kind: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        *self.tally.fired.entry(kind).or_default() += n;
        self.fired_log.push((self.step, kind));
    }

    pub(crate) async fn call(
        &self,
        who: &reqwest::Client,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> u16 {
        who.post(format!("{}/api/{endpoint}", self.app().base))
            .form(form)
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    }

    pub(crate) async fn sign_in(&self) {
        for (c, email) in [
            (&self.advisor, "advisor@northwind.test"),
            (&self.viewer, "viewer@northwind.test"),
            (&self.admin, "admin@northwind.test"),
        ] {
            let s = self
                .call(c, "login", &[("email", email), ("password", PASSWORD)])
                .await;
            assert!(s == 200 || s == 302, "login {email}: {s}");
        }
    }

    pub(crate) fn log(&mut self, line: String) {
        self.trace.push_str(&line);
        self.trace.push('\n');
    }

    /// Open bills without a payment, in a deterministic order
    /// (client name, QBO bill id): (client_id, bill_id, label, amount).
    pub(crate) async fn open_bills(&self) -> Vec<(String, String, String, i64)> {
        sqlx::query_as(
            "select b.client_id, b.bill_id, c.name || '/' || b.qbo_bill_id, b.amount_minor
             from staged_bill b join client c on c.client_id = b.client_id
             where b.status = 'open'
             order by c.name, b.qbo_bill_id",
        )
        .fetch_all(&self.app().state.app.db.pool)
        .await
        .expect("open bills")
    }

    /// Every payment: (payment_id, label, state, flag_reason), deterministic order.
    pub(crate) async fn payments(&self) -> Vec<(String, String, String, Option<String>)> {
        sqlx::query_as(
            "select p.payment_id, c.name || '/' || b.qbo_bill_id, p.state, p.flag_reason
             from payment p join staged_bill b on b.bill_id = p.bill_id
             join client c on c.client_id = p.client_id
             order by c.name, b.qbo_bill_id",
        )
        .fetch_all(&self.app().state.app.db.pool)
        .await
        .expect("payments")
    }

    /// Payments waiting for a second approver, oldest first:
    /// (payment_id, label, first approver's email).
    pub(crate) async fn waiting(&self) -> Vec<(String, String, String)> {
        sqlx::query_as(
            "select p.payment_id, c.name || '/' || b.qbo_bill_id, u.email
             from payment p join staged_bill b on b.bill_id = p.bill_id
             join client c on c.client_id = p.client_id
             join approval a on a.payment_id = p.payment_id and a.step = 'first'
             join app_user u on u.user_id = a.user_id
             where p.state = 'awaiting_second_approval'
             order by c.name, b.qbo_bill_id",
        )
        .fetch_all(&self.app().state.app.db.pool)
        .await
        .expect("waiting")
    }

    pub(crate) async fn drain(&mut self) {
        let n = self.app().drain().await;
        self.log(format!("drain: {n}"));
    }

    /// One payment in one of `states`, picked at random.
    pub(crate) async fn pick_payment(
        &mut self,
        states: &[&str],
    ) -> Option<(String, String, String, Option<String>)> {
        let found: Vec<_> = self
            .payments()
            .await
            .into_iter()
            .filter(|p| states.contains(&p.2.as_str()))
            .collect();
        if found.is_empty() {
            return None;
        }
        Some(found[self.rng.below(found.len() as u64) as usize].clone())
    }

    /// The last audit entry of the firm.
    pub(crate) async fn audit_max(&self) -> i64 {
        sqlx::query_scalar::<_, Option<i64>>("select max(seq) from audit_entry where firm_id = $1")
            .bind(&self.firm_id)
            .fetch_one(&self.app().state.app.db.pool)
            .await
            .expect("audit seq")
            .unwrap_or(0)
    }

    /// A client's connections: rail → status.
    pub(crate) async fn rail_statuses(&self, client_id: &str) -> BTreeMap<String, String> {
        sqlx::query_as::<_, (String, String)>(
            "select rail, status from rail_connection where client_id = $1",
        )
        .bind(client_id)
        .fetch_all(&self.app().state.app.db.pool)
        .await
        .expect("statuses")
        .into_iter()
        .collect()
    }

    /// The firm's audit entries after `seq` about connections and approved
    /// payments, in chain order: (seq, action, subject, rail or the
    /// payment's client).
    pub(crate) async fn audit_since(&self, seq: i64) -> Vec<(i64, String, String, String)> {
        let rows: Vec<(i64, String, String, String, Option<String>)> = sqlx::query_as(
            "select a.seq, a.action, a.subject, a.detail, p.client_id from audit_entry a
             left join payment p on p.payment_id = a.subject
             where a.firm_id = $1 and a.seq > $2
               and (a.action like 'connection.%' or a.action = 'payment.approved')
             order by a.seq",
        )
        .bind(&self.firm_id)
        .bind(seq)
        .fetch_all(&self.app().state.app.db.pool)
        .await
        .expect("audit entries");
        rows.into_iter()
            .map(|(seq, action, subject, detail, client)| {
                let extra = if action == "payment.approved" {
                    client.unwrap_or_default()
                } else {
                    serde_json::from_str::<serde_json::Value>(&detail)
                        .ok()
                        .and_then(|d| d["rail"].as_str().map(str::to_owned))
                        .unwrap_or_default()
                };
                (seq, action, subject, extra)
            })
            .collect()
    }
}
