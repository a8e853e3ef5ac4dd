//! The audit log in sentences: who did what to what, with names and
//! amounts, from an entry's actor, action, subject and detail. The raw
//! entry stays one click away on the page; this is what a person reads
//! first. Pure: the caller supplies client names.

use crate::model::{Currency, Money};
use serde_json::Value;

/// The actions RowCol writes, for the page's filter (a typed one works
/// too). Payments add one per state: `payment.approved`, `payment.paid`, …
pub const KNOWN_ACTIONS: &[&str] = &[
    "approval.blocked",
    "approval.override",
    "approval.second_refused",
    "auth.sign_in_failed",
    "auth.signed_in",
    "auth.signed_out",
    "auth.throttled",
    "client.connected",
    "client.created",
    "connection.connected",
    "connection.disconnected",
    "connection.needs_reconnect",
    "connection.refused",
    "connection.repaired",
    "firm.created",
    "hygiene.dismissed",
    "hygiene.rechecked",
    "hygiene.resolved",
    "job.replayed",
    "ledger.annotated",
    "override.acknowledged",
    "payment.approved",
    "payment.awaiting_second_approval",
    "payment.released",
    "payment.paid",
    "payment.recorded",
    "payment.verified",
    "payment.failed",
    "payment.cancelled",
    "payment.rejected",
    "payment.flagged",
    "payment.bank_debit_seen",
    "payment.evidence_reattached",
    "payment.release_retried",
    "policy.changed",
    "sandbox.fault_set",
    "user.created",
    "vendor.bank_account_confirmed",
    "vendor.bank_account_rechecked",
];

/// Who acted, in words.
pub fn actor_words(actor: &str) -> String {
    if actor.contains('@') {
        return actor.to_owned();
    }
    match actor {
        "rowcol" => "RowCol".into(),
        "rowcol:sync" => "RowCol's sync".into(),
        "rowcol:verify" => "RowCol's verification".into(),
        "rowcol:release" => "RowCol's release".into(),
        "rowcol:reconciler" => "RowCol's check of Ramp".into(),
        a if a.starts_with("rowcol:") => format!("RowCol ({})", &a["rowcol:".len()..]),
        a => match a.split_once(':') {
            Some((rail, rest)) => {
                let name = match rail {
                    "ramp" => "Ramp",
                    "qbo" => "QuickBooks",
                    "plaid" => "Plaid",
                    "stripe" => "Stripe",
                    other => other,
                };
                let event = rest.strip_prefix("event:").unwrap_or(rest);
                format!("a {name} notice ({})", short(event))
            }
            None => a.to_owned(),
        },
    }
}

/// An id shortened for reading (the whole one is in the raw entry).
fn short(id: &str) -> String {
    if id.chars().count() > 14 {
        format!("{}…", id.chars().take(12).collect::<String>())
    } else {
        id.to_owned()
    }
}

fn text<'a>(d: &'a Value, key: &str) -> Option<&'a str> {
    d.get(key).and_then(Value::as_str)
}

/// An amount in the detail (`<key>` in minor units, `currency` beside it).
fn money(d: &Value, key: &str) -> Option<String> {
    let minor = d.get(key)?.as_i64()?;
    let cur = text(d, "currency").and_then(|c| Currency::parse(c).ok());
    Some(Money::new(minor, cur.unwrap_or_else(Currency::usd)).to_string())
}

/// The entry as a sentence. `client_name` turns a client id into its name.
pub fn sentence(
    actor: &str,
    action: &str,
    subject: &str,
    detail: &Value,
    client_name: &dyn Fn(&str) -> Option<String>,
) -> String {
    let who = actor_words(actor);
    let client = || {
        client_name(subject)
            .or_else(|| text(detail, "client_id").and_then(client_name))
            .or_else(|| text(detail, "client").map(str::to_owned))
    };
    let for_client = || client().map(|c| format!(" for {c}")).unwrap_or_default();
    let note = |key: &str| {
        text(detail, key)
            .filter(|n| !n.is_empty())
            .map(|n| format!(": \u{201c}{n}\u{201d}"))
            .unwrap_or_default()
    };
    let (kind, verb) = action.split_once('.').unwrap_or((action, ""));
    match (kind, verb) {
        ("auth", "signed_in") => format!("{who} signed in."),
        ("auth", "signed_out") => format!("{who} signed out."),
        ("auth", "sign_in_failed") => format!("A sign-in as {subject} failed."),
        ("auth", "throttled") => {
            format!("Sign-ins as {subject} were paused after repeated failures.")
        }
        ("payment", "flagged") => {
            format!("{who} flagged payment {}{}", short(subject), note("detail"))
        }
        ("payment", state) => {
            let amount = money(detail, "amount_minor")
                .map(|m| format!(" of {m}"))
                .unwrap_or_default();
            format!(
                "{who} moved payment {}{amount} to {}.",
                short(subject),
                state.replace('_', " ")
            )
        }
        ("approval", "override") => format!(
            "{who} overrode a guardrail{}{}",
            for_client(),
            note("reason")
        ),
        ("approval", "blocked") => format!("{who}'s approval{} was refused.", for_client()),
        ("approval", "second_refused") => {
            format!(
                "{who}'s second approval{} was refused{}",
                for_client(),
                note("message")
            )
        }
        ("approval", v) => format!("{who}: approval {}{}.", v.replace('_', " "), for_client()),
        ("policy", "changed") => format!("{who} changed the approval policy{}.", for_client()),
        ("hygiene", "resolved") => format!("{who} resolved a tray item{}", note("note")),
        ("hygiene", "dismissed") => format!("{who} dismissed a tray item{}", note("note")),
        ("hygiene", "rechecked") => format!("{who} asked RowCol to re-check a tray item."),
        ("override", "acknowledged") => {
            format!(
                "{who} acknowledged an override{}{}",
                for_client(),
                note("note")
            )
        }
        ("job", "replayed") => format!("{who} replayed background work that had stopped."),
        ("connection", v) => format!("{who}: connection {}{}.", v.replace('_', " "), for_client()),
        ("user", v) => format!("{who}: user {} ({subject}).", v.replace('_', " ")),
        _ => format!(
            "{who}: {} {}.",
            action.replace(['.', '_'], " "),
            client().unwrap_or_else(|| short(subject))
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(id: &str) -> Option<String> {
        (id == "cli_1").then(|| "Alder Creek Dental".to_owned())
    }

    #[test]
    fn entries_read_as_sentences_with_names_and_amounts() {
        assert_eq!(
            sentence(
                "advisor@x.test",
                "auth.signed_in",
                "usr_1",
                &json!({}),
                &names
            ),
            "advisor@x.test signed in."
        );
        assert_eq!(
            sentence(
                "admin@x.test",
                "approval.override",
                "cli_1",
                &json!({"reason": "Loan lands today"}),
                &names
            ),
            "admin@x.test overrode a guardrail for Alder Creek Dental: \u{201c}Loan lands today\u{201d}"
        );
        let s = sentence(
            "ramp:event:e347aa00bb11cc22",
            "payment.paid",
            "pay_0123456789abcdef",
            &json!({"amount_minor": 12345, "currency": "USD"}),
            &names,
        );
        assert!(s.starts_with("a Ramp notice (e347aa00bb11…)"), "{s}");
        assert!(s.contains("$123.45") && s.ends_with("to paid."), "{s}");
        assert_eq!(actor_words("rowcol:sync"), "RowCol's sync");
        let unknown = sentence("rowcol", "thing.done_now", "cli_1", &json!({}), &names);
        assert_eq!(unknown, "RowCol: thing done now Alder Creek Dental.");
    }
}
