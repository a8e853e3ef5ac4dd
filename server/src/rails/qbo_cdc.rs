//! QBO's Change Data Capture answer, read as the ledger sync needs it
//! (rails.md §1.7): `CDCResponse[0].QueryResponse[]`, each holding one
//! entity's changed objects, deleted ones shortened to `{Id, status:
//! "Deleted"}`.

use super::{LedgerChanges, RailError};
use serde_json::Value;

/// The most objects one CDC answer holds.
const CDC_CAP: usize = 1_000;

/// The bills of a CDC answer: those changed (as they are now) and the ids
/// of those deleted; incomplete when the answer reached QBO's cap.
pub(super) fn parse_changes(body: &Value) -> Result<LedgerChanges, RailError> {
    let mut out = LedgerChanges::default();
    let mut seen = 0usize;
    let responses = body
        .pointer("/CDCResponse/0/QueryResponse")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for r in &responses {
        for b in r
            .get("Bill")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            seen += 1;
            if b.get("status").and_then(Value::as_str) == Some("Deleted") {
                let id = b.get("Id").and_then(Value::as_str).unwrap_or_default();
                out.deleted.push(id.to_owned());
            } else {
                out.bills.push(super::qbo::parse_bill(b)?);
            }
        }
    }
    // That many may mean more than QBO said.
    out.complete = seen < CDC_CAP;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deleted_bills_are_ids_and_an_empty_answer_is_complete() {
        let body = json!({"CDCResponse": [{"QueryResponse": [{"Bill": [
            {"Id": "7", "status": "Deleted", "MetaData": {"LastUpdatedTime": "2027-03-01T10:00:00-08:00"}}
        ]}]}]});
        let ch = parse_changes(&body).unwrap();
        assert_eq!(ch.deleted, vec!["7".to_owned()]);
        assert!(ch.bills.is_empty());
        assert!(ch.complete);
        let empty = parse_changes(&json!({"CDCResponse": [{"QueryResponse": [{}]}]})).unwrap();
        assert!(empty.complete && empty.bills.is_empty() && empty.deleted.is_empty());
    }
}
