//! Is the data behind a guardrail fresh enough to judge on? The balance and
//! the bank history (the burn's source) each have a maximum age in the
//! client's policy; a source never read is as stale as one read too long ago.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// One source's age against its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceAge {
    Fresh,
    /// Older than policy allows, by this many seconds.
    Stale {
        over_secs: i64,
    },
    Missing,
}

impl SourceAge {
    pub fn judge(as_of: Option<DateTime<Utc>>, max_age_secs: i64, now: DateTime<Utc>) -> Self {
        match as_of {
            None => SourceAge::Missing,
            Some(t) => {
                let over = (now - t - Duration::seconds(max_age_secs)).num_seconds();
                if over > 0 {
                    SourceAge::Stale { over_secs: over }
                } else {
                    SourceAge::Fresh
                }
            }
        }
    }

    pub fn is_fresh(self) -> bool {
        self == SourceAge::Fresh
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freshness {
    pub balance: SourceAge,
    pub bank_history: SourceAge,
}

impl Freshness {
    pub fn is_fresh(&self) -> bool {
        self.balance.is_fresh() && self.bank_history.is_fresh()
    }

    /// What is too old, in words, for an error an advisor reads.
    pub fn describe(&self) -> String {
        let part = |name: &str, age: SourceAge| match age {
            SourceAge::Fresh => None,
            SourceAge::Missing => Some(format!("the {name} has never been read")),
            SourceAge::Stale { over_secs } => Some(format!(
                "the {name} is {} older than policy allows",
                human(over_secs)
            )),
        };
        let parts: Vec<String> = [
            part("bank balance", self.balance),
            part("bank history", self.bank_history),
        ]
        .into_iter()
        .flatten()
        .collect();
        if parts.is_empty() {
            "the bank data is fresh".into()
        } else {
            parts.join(" and ")
        }
    }
}

fn human(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

impl crate::model::CashPosition {
    pub fn freshness(&self, now: DateTime<Utc>) -> Freshness {
        Freshness {
            balance: SourceAge::judge(self.as_of, self.balance_max_age_secs, now),
            bank_history: SourceAge::judge(
                self.bank_history_as_of,
                self.bank_history_max_age_secs,
                now,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap() + Duration::hours(h)
    }

    #[test]
    fn exactly_at_the_limit_is_fresh_one_second_over_is_not() {
        let read = at(0);
        assert_eq!(SourceAge::judge(Some(read), 3600, at(1)), SourceAge::Fresh);
        assert_eq!(
            SourceAge::judge(Some(read), 3600, at(1) + Duration::seconds(1)),
            SourceAge::Stale { over_secs: 1 }
        );
        assert_eq!(SourceAge::judge(None, 3600, at(0)), SourceAge::Missing);
    }

    #[test]
    fn both_sources_must_be_fresh() {
        let f = Freshness {
            balance: SourceAge::Fresh,
            bank_history: SourceAge::Stale {
                over_secs: 2 * 86_400,
            },
        };
        assert!(!f.is_fresh());
        assert_eq!(
            f.describe(),
            "the bank history is 2 days older than policy allows"
        );
        let g = Freshness {
            balance: SourceAge::Missing,
            bank_history: SourceAge::Fresh,
        };
        assert!(g.describe().contains("never been read"));
    }
}
