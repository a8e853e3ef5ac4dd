//! The audit log's filters, parsed at the edge once for the page and the
//! export alike: everything wrong is said in words, nothing is guessed.

use crate::model::ActorKind;
use crate::ssr::store::audit::ExportFilter;
use chrono::NaiveDate;

/// The filters as they arrive (query string or form), each optional.
#[derive(Debug, Default, Clone)]
pub struct RawFilter {
    pub client_id: Option<String>,
    pub action: Option<String>,
    pub actor_kind: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A value that is not just blanks.
pub fn nonempty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Parse the filters: the database's part and the actor's kind.
pub fn parse(q: RawFilter) -> Result<(ExportFilter, Option<ActorKind>), String> {
    let actor_kind =
        match nonempty(q.actor_kind) {
            None => None,
            Some(k) => Some(ActorKind::parse(&k).ok_or_else(|| {
                format!("actor_kind must be user, rail, sync or system, not {k:?}")
            })?),
        };
    let day = |name: &str, v: Option<String>| -> Result<Option<NaiveDate>, String> {
        nonempty(v)
            .map(|d| {
                NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                    .map_err(|_| format!("{name} must be a date like 2026-11-28, not {d:?}"))
            })
            .transpose()
    };
    let from = day("from", q.from)?;
    let to = day("to", q.to)?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(format!("from ({f}) is after to ({t})"));
        }
    }
    let ms = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
    };
    Ok((
        ExportFilter {
            client_id: nonempty(q.client_id),
            action: nonempty(q.action),
            from_ms: from.and_then(ms),
            until_ms: to.and_then(|t| t.succ_opt()).and_then(ms),
        },
        actor_kind,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_checked_and_days_are_inclusive() {
        let (f, k) = parse(RawFilter {
            from: Some("2026-11-28".into()),
            to: Some("2026-11-28".into()),
            actor_kind: Some("user".into()),
            action: Some("  ".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(k, Some(ActorKind::User));
        assert_eq!(f.action, None);
        assert_eq!(f.until_ms.unwrap() - f.from_ms.unwrap(), 86_400_000);
        for bad in [
            RawFilter {
                actor_kind: Some("robot".into()),
                ..Default::default()
            },
            RawFilter {
                from: Some("28/11/2026".into()),
                ..Default::default()
            },
            RawFilter {
                from: Some("2026-12-02".into()),
                to: Some("2026-12-01".into()),
                ..Default::default()
            },
        ] {
            assert!(parse(bad).is_err());
        }
    }
}
