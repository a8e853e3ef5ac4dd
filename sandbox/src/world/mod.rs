//! The demo world: 24 small businesses, each with a QBO realm, a Ramp
//! business and a Plaid item. The world is a function of a seed and a start
//! instant: the same pair gives the same clients, bills, balances and bank
//! history (only the access tokens are random), so tests pin both.

mod activity;
pub mod living;
mod prng;

use crate::sim_state::*;
use crate::Faults;
use activity::history;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};

pub use activity::{
    continue_activity, day_txns, refresh_cached_balances, trailing_30_day_outflow_cents,
};
pub use prng::Prng;

/// The default world seed (`ROWCOL_SANDBOX_SEED` overrides it).
pub const DEFAULT_SEED: u64 = 0x526f_7743_6f6c_2026; // "RowCol 2026"

/// Client names: two alphabetical runs (the second was added later, after
/// the first, so that a smaller world stays a prefix of a bigger one). The
/// first is the rich one, the second is the tight one; [`NEAR_BUFFER`] are
/// close to their buffer.
pub const CLIENT_NAMES: [&str; 44] = [
    "Alder Creek Dental",
    "Birch Lane Bakery",
    "Cedar Ridge Veterinary",
    "Driftwood Coffee Roasters",
    "Elm Street Pediatrics",
    "Fern Hollow Landscaping",
    "Granite Peak Plumbing",
    "Harbor View Yoga",
    "Ironwood Fitness",
    "Juniper Floral Studio",
    "Kestrel Architecture",
    "Lakeside Auto Repair",
    "Maple Leaf Daycare",
    "Northwind Logistics",
    "Oak and Anchor Brewing",
    "Pine Street Books",
    "Quarry Hill Stoneworks",
    "Redwood Chiropractic",
    "Silver Birch Salon",
    "Tidewater Marine Supply",
    "Upland Orchards",
    "Valley Print Shop",
    "Willow Bend Veterinary",
    "Yarrow Home Goods",
    "Aspen Grove Pharmacy",
    "Bayside Pet Grooming",
    "Cobalt Machine Works",
    "Dune Road Surf Shop",
    "Evergreen Title Company",
    "Foxglove Tea House",
    "Golden Hour Photography",
    "Hawthorn Family Law",
    "Indigo Textile Co",
    "Jade Garden Restaurant",
    "Keystone Roofing",
    "Lantern Hill Winery",
    "Meadowlark Music School",
    "Nettle and Sage Apothecary",
    "Orchard Park Optometry",
    "Prairie Wind Solar",
    "Riverstone Physical Therapy",
    "Sagebrush Trucking",
    "Thistle Creek Farms",
    "Vista Point Realty",
];

/// Clients whose cash sits just above their buffer: one more bill of the
/// usual size breaks it.
pub const NEAR_BUFFER: [&str; 3] = [
    "Dune Road Surf Shop",
    "Jade Garden Restaurant",
    "Sagebrush Trucking",
];

/// The clients of the demo world whose bank login has expired at the start
/// (a broken connection to repair), when the world lives.
pub const BROKEN_AT_START: [&str; 2] = ["Foxglove Tea House", "Keystone Roofing"];

/// The size of the world the tests use: the first 24 clients (tests pin it,
/// so that the demo world can grow without changing what they see).
pub const TEST_CLIENTS: usize = 24;
pub const RICH: &str = "Alder Creek Dental";
pub const TIGHT: &str = "Birch Lane Bakery";

const VENDOR_NAMES: [&str; 18] = [
    "Sysco Foods",
    "Staples Business",
    "Pacific Gas & Electric",
    "Comcast Business",
    "Henry Schein",
    "Grainger Industrial",
    "Cintas Uniforms",
    "Uline Shipping",
    "Blue Shield Health",
    "Waste Management",
    "Acme Janitorial",
    "Metro Office Lease",
    "Patterson Dental Supply",
    "King Arthur Flour",
    "Restaurant Depot",
    "Verizon Wireless",
    "Hartford Insurance",
    "Brightline Marketing",
];

/// A fresh random token (the only non-deterministic part of the world).
pub fn random_token(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(rand::random::<[u8; 20]>()))
}

/// Where a pinned sandbox's clock starts on its first day: noon UTC, so a
/// test run of a few hours never crosses midnight.
pub fn start_instant(day: NaiveDate) -> DateTime<Utc> {
    at_noon(day)
}

/// 12:00:00, checked at compile time.
const NOON: NaiveTime = match NaiveTime::from_hms_opt(12, 0, 0) {
    Some(t) => t,
    None => panic!("a valid time"),
};

fn at_noon(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NOON).and_utc()
}

struct Profile {
    daily_burn: i64,
    available: Option<i64>,
    bill_amounts: Vec<i64>,
}

fn profile(rng: &mut Prng, name: &str) -> Profile {
    match name {
        RICH => Profile {
            daily_burn: 200_000,
            available: Some(95_000_000 + rng.range(0, 5_000_000)),
            bill_amounts: (0..5).map(|_| rng.range(100_000, 900_000)).collect(),
        },
        // Available is set after the history exists (see `generate`).
        TIGHT => Profile {
            daily_burn: 150_000,
            available: None,
            bill_amounts: vec![50_000, 425_000, 783_050, 1_800_000],
        },
        n if NEAR_BUFFER.contains(&n) => {
            let daily_burn = rng.range(40_000, 120_000);
            Profile {
                daily_burn,
                available: None,
                // Three everyday bills and one big one.
                bill_amounts: vec![
                    rng.range(daily_burn, daily_burn * 3),
                    rng.range(daily_burn, daily_burn * 3),
                    rng.range(daily_burn, daily_burn * 3),
                    rng.range(daily_burn * 8, daily_burn * 12),
                ],
            }
        }
        _ => {
            let available = rng.range(2_000_000, 60_000_000);
            let runway_days = rng.range(60, 240);
            let n = rng.range(3, 7);
            Profile {
                daily_burn: (available / runway_days).max(20_000),
                available: Some(available),
                bill_amounts: (0..n).map(|_| rng.range(20_000, 2_500_000)).collect(),
            }
        }
    }
}

/// The realms' time zones, in turn: QBO answers times in the company's own.
const QBO_ZONES: [&str; 4] = [
    "America/Los_Angeles",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
];

/// Build the whole demo world from `seed` as of `now` (today = `now`'s date).
pub fn generate(now: DateTime<Utc>, seed: u64) -> SimState {
    generate_sized(now, seed, CLIENT_NAMES.len())
}

/// The demo world with only its first `clients` clients (at least the rich
/// and the tight one; at most all of [`CLIENT_NAMES`]). The ones kept are exactly as in the
/// full world: a smaller world is a prefix of the bigger one. The
/// simulation harness runs thousands of small worlds.
pub fn generate_sized(now: DateTime<Utc>, seed: u64, clients: usize) -> SimState {
    let today = now.date_naive();
    let mut rng = Prng::new(seed);
    let wanted = clients.clamp(2, CLIENT_NAMES.len());
    let mut clients = Vec::new();
    for (i, name) in CLIENT_NAMES.iter().take(wanted).enumerate() {
        let p = profile(&mut rng, name);
        let created = now - Duration::days(400);

        // --- QBO realm
        let mut qbo = QboRealm {
            realm_id: format!("9341{}", rng.digits(12)),
            access_token: random_token("qbo_sbx_"),
            next_id: 1,
            created_at: created,
            accounts: vec![],
            vendors: vec![],
            bills: vec![],
            bill_payments: vec![],
            time_zone: QBO_ZONES[i % QBO_ZONES.len()].to_owned(),
            sales: QboSales::default(),
            deleted: vec![],
        };
        for (acct, ty, sub, class) in [
            ("Checking", "Bank", "Checking", "Asset"),
            (
                "Accounts Payable (A/P)",
                "Accounts Payable",
                "AccountsPayable",
                "Liability",
            ),
            (
                "Operating Expenses",
                "Expense",
                "OtherMiscellaneousServiceCost",
                "Expense",
            ),
        ] {
            let id = qbo.take_id();
            qbo.accounts.push(QboAccount {
                id,
                sync_token: 0,
                name: acct.into(),
                account_type: ty.into(),
                account_sub_type: sub.into(),
                classification: class.into(),
                current_balance_cents: 0,
                created,
                updated: created,
            });
        }
        let expense_id = qbo
            .account_named("Operating Expenses")
            .map(|a| a.id.clone())
            .unwrap_or_default();

        // Vendors: 2–4 distinct names from the pool.
        let n_bills = p.bill_amounts.len();
        let n_vendors = (rng.range(2, 4) as usize).min(n_bills);
        let mut pool: Vec<&str> = VENDOR_NAMES.to_vec();
        let mut ramp_vendors = Vec::new();
        for _ in 0..n_vendors {
            let k = rng.range(0, pool.len() as i64 - 1) as usize;
            let vname = pool.remove(k);
            let id = qbo.take_id();
            qbo.vendors.push(QboVendor {
                id: id.clone(),
                sync_token: 0,
                display_name: vname.into(),
                active: true,
                created,
                updated: created,
            });
            ramp_vendors.push(RampVendorRec {
                id: rng.uuid(),
                name: vname.into(),
                accounting_vendor_remote_id: id,
                contact_id: rng.uuid(),
                account_id: rng.uuid(),
                account_last_four: rng.digits(4),
                created_at: created,
                country: "US".into(),
                state: None,
                vendor_owner_id: None,
                contact_email: None,
                contact_first_name: None,
                contact_last_name: None,
                via_api: false,
            });
        }
        let doc_base = rng.range(1000, 8000);
        for (j, amount) in p.bill_amounts.iter().enumerate() {
            let vendor = &qbo.vendors[j % n_vendors];
            let due = today + Duration::days(rng.range(-3, 30));
            let txn_date = due - Duration::days(30);
            let bill = QboBill {
                id: String::new(),
                vendor_id: vendor.id.clone(),
                doc_number: format!("INV-{}", doc_base + j as i64 * 7),
                txn_date,
                due_date: due,
                total_cents: *amount,
                balance_cents: *amount,
                expense_account_id: expense_id.clone(),
                description: format!("{} services", vendor.display_name),
                sync_token: 0,
                created: at_noon(txn_date).min(now),
                updated: at_noon(txn_date).min(now),
            };
            let id = qbo.take_id();
            qbo.bills.push(QboBill { id, ..bill });
        }

        // --- Plaid item
        let phase = rng.range(0, 13);
        let txns = history(&mut rng, today, p.daily_burn, phase);
        let available = match p.available {
            Some(a) => a,
            None => {
                // Tight: the buffer sits halfway between the smallest and the
                // largest bill, so the largest breaks it and the smallest fits.
                // Near the buffer: the smallest bill just fits.
                let burn = trailing_30_day_outflow_cents(&txns, today) / 30;
                let small = *p.bill_amounts.iter().min().unwrap_or(&0);
                let large = *p.bill_amounts.iter().max().unwrap_or(&0);
                if *name == TIGHT {
                    14 * burn + (small + large) / 2
                } else {
                    14 * burn + small + small / 5
                }
            }
        };
        let plaid = PlaidItem {
            item_id: rng.alnum(37),
            access_token: format!("access-sandbox-{}", uuid::Uuid::new_v4()),
            institution_id: "ins_109508".into(),
            institution_name: "First Platypus Bank".into(),
            account: PlaidAccount {
                account_id: rng.alnum(37),
                name: "Business Checking".into(),
                official_name: format!("{name} Business Checking"),
                mask: rng.digits(4),
                available_cents: available,
                current_cents: available,
                cached: Some(CachedBalances {
                    available_cents: available,
                    current_cents: available,
                    as_of: now,
                }),
            },
            login_required: false,
            daily_burn_cents: p.daily_burn,
            payroll_phase: phase,
            activity_through: Some(today - Duration::days(1)),
            sync_started: false,
            txns_announced: 0,
            transactions_ready_at: None,
            txns,
        };

        // --- Ramp business
        let ramp = RampBusiness {
            business_id: rng.uuid(),
            access_token: random_token("ramp_tok_"),
            entity: RampEntity {
                id: rng.uuid(),
                name: name.to_string(),
                bank_account_id: rng.uuid(),
                bank_last_four: plaid.account.mask.clone(),
            },
            vendors: ramp_vendors,
            bills: vec![],
        };
        clients.push(SimClient {
            name: name.to_string(),
            currency: "USD".into(),
            qbo,
            ramp,
            plaid,
        });
    }
    SimState {
        version: STATE_VERSION,
        seed,
        clock_offset_secs: 0,
        faults: Faults::default(),
        seq: 0,
        clients,
        webhooks: vec![],
        qbo_late: vec![],
        ach_returns_due: vec![],
        oauth: Default::default(),
        plaid_link: PlaidLinkState::default(),
        ramp_webhook_subs: RampWebhookSubs::default(),
        // Random, not from the seed: `Sandbox::start` makes it.
        plaid_webhook_keys: vec![],
        // The first look is taken by `Sandbox::start`.
        qbo_hooks: Default::default(),
        // Made once the Stripe accounts exist (`Sandbox::start`).
        stripe: Default::default(),
        stripe_changes: 0,
        plaid_calls: Default::default(),
        living_through: Some(today - Duration::days(1)),
        world_log: vec![],
        stripe_payouts_banked: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixed start instants (noon UTC): the properties below must hold on
    /// any day, so they are checked across a run of consecutive days (every
    /// weekday, a month end, payroll phases) rather than on today's date.
    fn start_days() -> Vec<DateTime<Utc>> {
        let first = NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
        (0..70)
            .map(|d| at_noon(first + Duration::days(d)))
            .collect()
    }

    fn pinned() -> DateTime<Utc> {
        at_noon(NaiveDate::from_ymd_opt(2026, 11, 28).expect("date"))
    }

    #[test]
    fn structure_is_deterministic_and_sorted() {
        let now = pinned();
        let (a, b) = (generate(now, DEFAULT_SEED), generate(now, DEFAULT_SEED));
        assert_eq!(a.clients.len(), 44);
        let names: Vec<_> = a.clients.iter().map(|c| c.name.clone()).collect();
        // Two alphabetical runs: the tests' 24, then the demo's others.
        for run in [&names[..TEST_CLIENTS], &names[TEST_CLIENTS..]] {
            let mut sorted = run.to_vec();
            sorted.sort();
            assert_eq!(run, &sorted[..]);
        }
        assert_eq!(names[0], "Alder Creek Dental");
        for (x, y) in a.clients.iter().zip(&b.clients) {
            assert_eq!(x.qbo.realm_id, y.qbo.realm_id);
            assert_eq!(x.ramp.business_id, y.ramp.business_id);
            assert_eq!(
                x.plaid.account.available_cents,
                y.plaid.account.available_cents
            );
            assert_ne!(
                x.ramp.access_token, y.ramp.access_token,
                "tokens are random"
            );
        }
    }

    #[test]
    fn another_seed_gives_another_world() {
        let a = generate(pinned(), DEFAULT_SEED);
        let b = generate(pinned(), DEFAULT_SEED ^ 1);
        assert_ne!(a.clients[3].qbo.realm_id, b.clients[3].qbo.realm_id);
    }

    #[test]
    fn every_client_is_in_range() {
        for now in start_days() {
            every_client_is_in_range_on(now);
        }
    }

    fn every_client_is_in_range_on(now: DateTime<Utc>) {
        let today = now.date_naive();
        for c in generate(now, DEFAULT_SEED).clients {
            let bills = &c.qbo.bills;
            assert!((3..=7).contains(&bills.len()), "{}", c.name);
            let vendors: std::collections::HashSet<_> =
                bills.iter().map(|b| &b.vendor_id).collect();
            assert!((2..=4).contains(&vendors.len()), "{}", c.name);
            let docs: std::collections::HashSet<_> = bills.iter().map(|b| &b.doc_number).collect();
            assert_eq!(docs.len(), bills.len());
            for b in bills {
                assert!((20_000..=2_500_000).contains(&b.total_cents));
                assert!(
                    b.due_date >= today - Duration::days(3)
                        && b.due_date <= today + Duration::days(30)
                );
            }
            let avail = c.plaid.account.available_cents;
            if NEAR_BUFFER.contains(&c.name.as_str()) {
                // Just above 14 days of spending: the smallest bill fits,
                // the largest does not.
                let burn = trailing_30_day_outflow_cents(&c.plaid.txns, today) / 30;
                let small = bills.iter().map(|b| b.total_cents).min().unwrap_or(0);
                let large = bills.iter().map(|b| b.total_cents).max().unwrap_or(0);
                assert!(avail - small >= 14 * burn, "{}", c.name);
                assert!(avail - large < 14 * burn, "{}", c.name);
            } else if c.name != RICH && c.name != TIGHT {
                assert!((2_000_000..=60_000_000).contains(&avail), "{}", c.name);
            }
            assert!(c.plaid.txns.iter().any(|t| t.amount_cents < 0));
            assert!(trailing_30_day_outflow_cents(&c.plaid.txns, today) > 0);
            assert_eq!(c.ramp.vendors.len(), vendors.len());
        }
    }

    #[test]
    fn rich_and_tight_clients_behave() {
        for now in start_days() {
            rich_and_tight_clients_behave_on(now);
        }
    }

    fn rich_and_tight_clients_behave_on(now: DateTime<Utc>) {
        let today = now.date_naive();
        let world = generate(now, DEFAULT_SEED);
        let buffer = |c: &SimClient| trailing_30_day_outflow_cents(&c.plaid.txns, today) / 30 * 14;

        let rich = &world.clients[0];
        assert_eq!(rich.name, RICH);
        assert!(rich.plaid.account.available_cents >= 90_000_000);
        assert_eq!(rich.qbo.bills.len(), 5);
        for b in &rich.qbo.bills {
            assert!((100_000..=900_000).contains(&b.total_cents));
            assert!(rich.plaid.account.available_cents - b.total_cents >= buffer(rich));
        }

        let tight = world
            .clients
            .iter()
            .find(|c| c.name == TIGHT)
            .expect("tight client");
        let avail = tight.plaid.account.available_cents;
        let largest = tight.qbo.bills.iter().map(|b| b.total_cents).max().unwrap();
        let smallest = tight.qbo.bills.iter().map(|b| b.total_cents).min().unwrap();
        assert!(
            avail - largest < buffer(tight),
            "largest bill must break the buffer"
        );
        assert!(avail - smallest >= buffer(tight), "smallest bill must fit");
    }

    #[test]
    fn activity_continues_as_the_clock_advances() {
        let now = pinned();
        let today = now.date_naive();
        let mut st = generate(now, DEFAULT_SEED);
        let before = st.clients[2].plaid.txns.len();
        let burn_before = trailing_30_day_outflow_cents(&st.clients[2].plaid.txns, today);
        let later = today + Duration::days(45);
        continue_activity(&mut st, later);
        let item = &st.clients[2].plaid;
        assert!(item.txns.len() > before);
        assert_eq!(item.activity_through, Some(later - Duration::days(1)));
        let burn_after = trailing_30_day_outflow_cents(&item.txns, later);
        assert!(burn_after * 2 > burn_before && burn_after < burn_before * 2);
        // A modification restates a transaction already counted.
        let moved: i64 = item.txns[before..]
            .iter()
            .filter(|t| !t.modification)
            .map(|t| t.amount_cents)
            .sum();
        let fresh = generate(now, DEFAULT_SEED);
        let a0 = fresh.clients[2].plaid.account.available_cents;
        assert_eq!(a0 - item.account.available_cents, moved);
        // Running it again for the same day adds nothing.
        let n = item.txns.len();
        continue_activity(&mut st, later);
        assert_eq!(st.clients[2].plaid.txns.len(), n);
    }
}
