//! QBO name lists: Vendor and Customer (create, full update; `DisplayName`
//! unique across both, else 6240) and Account (create, full update; a
//! unique `Name`). Name lists are not deleted in QBO, only made inactive.

use super::writes::opt_text;
use super::{vbox, Now};
use crate::sim_state::*;
use axum::response::Response;
use serde_json::Value;

/// `DisplayName`, required and unique among vendors and customers (the
/// record `own` itself excepted).
fn display_name(
    c: &SimClient,
    v: &Value,
    own: Option<&str>,
    now: Now,
) -> Result<String, Box<Response>> {
    let name = opt_text(v, "DisplayName")
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| vbox("2020", "Required param missing", "DisplayName", now))?;
    let clash = c
        .qbo
        .vendors
        .iter()
        .map(|x| (&x.id, &x.display_name))
        .chain(
            c.qbo
                .sales
                .customers
                .iter()
                .map(|x| (&x.id, &x.display_name)),
        )
        .any(|(id, n)| Some(id.as_str()) != own && n.eq_ignore_ascii_case(&name));
    if clash {
        return Err(vbox(
            "6240",
            "Duplicate Name Exists Error",
            &format!("The name supplied already exists. : {name}"),
            now,
        ));
    }
    Ok(name)
}

fn active(v: &Value) -> bool {
    v.get("Active").and_then(Value::as_bool).unwrap_or(true)
}

pub(super) fn save_vendor(
    c: &mut SimClient,
    id: Option<&str>,
    v: &Value,
    now: Now,
) -> Result<String, Box<Response>> {
    let name = display_name(c, v, id, now)?;
    let realm = &mut c.qbo;
    if let Some(x) = id.and_then(|id| realm.vendors.iter_mut().find(|x| x.id == id)) {
        x.display_name = name;
        x.active = active(v);
        x.sync_token += 1;
        x.updated = now.at;
        return Ok(x.id.clone());
    }
    let id = realm.take_id();
    realm.vendors.push(QboVendor {
        id: id.clone(),
        sync_token: 0,
        display_name: name,
        active: active(v),
        created: now.at,
        updated: now.at,
    });
    Ok(id)
}

pub(super) fn save_customer(
    c: &mut SimClient,
    id: Option<&str>,
    v: &Value,
    now: Now,
) -> Result<String, Box<Response>> {
    let name = display_name(c, v, id, now)?;
    let realm = &mut c.qbo;
    if let Some(x) = id.and_then(|id| realm.sales.customers.iter_mut().find(|x| x.id == id)) {
        x.display_name = name;
        x.active = active(v);
        x.sync_token += 1;
        x.updated = now.at;
        return Ok(x.id.clone());
    }
    let id = realm.take_id();
    realm.sales.customers.push(QboCustomer {
        id: id.clone(),
        display_name: name,
        active: active(v),
        sync_token: 0,
        created: now.at,
        updated: now.at,
    });
    Ok(id)
}

/// `AccountType` → `Classification`.
const ACCOUNT_TYPES: [(&str, &str); 16] = [
    ("Bank", "Asset"),
    ("Accounts Receivable", "Asset"),
    ("Other Current Asset", "Asset"),
    ("Fixed Asset", "Asset"),
    ("Other Asset", "Asset"),
    ("Accounts Payable", "Liability"),
    ("Credit Card", "Liability"),
    ("Other Current Liability", "Liability"),
    ("Long Term Liability", "Liability"),
    ("Equity", "Equity"),
    ("Income", "Revenue"),
    ("Cost of Goods Sold", "Expense"),
    ("Expense", "Expense"),
    ("Other Income", "Revenue"),
    ("Other Expense", "Expense"),
    ("Non-Posting", "Asset"),
];

pub(super) fn save_account(
    c: &mut SimClient,
    id: Option<&str>,
    v: &Value,
    now: Now,
) -> Result<String, Box<Response>> {
    let name =
        opt_text(v, "Name").ok_or_else(|| vbox("2020", "Required param missing", "Name", now))?;
    if name.contains(':') || name.contains('"') {
        return Err(vbox(
            "2170",
            "Invalid Enumeration",
            "Name cannot contain a colon or a double quote",
            now,
        ));
    }
    let ty = opt_text(v, "AccountType")
        .ok_or_else(|| vbox("2020", "Required param missing", "AccountType", now))?;
    let Some((ty, class)) = ACCOUNT_TYPES.iter().find(|t| t.0 == ty) else {
        return Err(vbox(
            "2170",
            "Invalid Enumeration",
            &format!("AccountType {ty}"),
            now,
        ));
    };
    let realm = &mut c.qbo;
    if realm
        .accounts
        .iter()
        .any(|a| Some(a.id.as_str()) != id && a.name.eq_ignore_ascii_case(&name))
    {
        return Err(vbox(
            "6240",
            "Duplicate Name Exists Error",
            &format!("Another account is already using this name : {name}"),
            now,
        ));
    }
    let sub = opt_text(v, "AccountSubType").unwrap_or_else(|| ty.replace(' ', ""));
    if let Some(a) = id.and_then(|id| realm.accounts.iter_mut().find(|a| a.id == id)) {
        a.name = name;
        a.account_type = (*ty).into();
        a.account_sub_type = sub;
        a.classification = (*class).into();
        a.sync_token += 1;
        a.updated = now.at;
        return Ok(a.id.clone());
    }
    let id = realm.take_id();
    realm.accounts.push(QboAccount {
        id: id.clone(),
        sync_token: 0,
        name,
        account_type: (*ty).into(),
        account_sub_type: sub,
        classification: (*class).into(),
        current_balance_cents: 0,
        created: now.at,
        updated: now.at,
    });
    Ok(id)
}
