//! The QBO simulator over HTTP: writes and their business rules, SyncToken
//! checks, delete and void, CDC, `requestid` replay and throttling.

use crate::testkit::{start, Kit};
use serde_json::{json, Value};

struct Qbo {
    k: Kit,
    realm: String,
    token: String,
}

async fn qbo() -> Qbo {
    let k = start(String::new()).await;
    let (realm, token) = {
        let st = k.sb.inner.state.lock().await;
        let q = &st.clients[0].qbo;
        (q.realm_id.clone(), q.access_token.clone())
    };
    Qbo { k, realm, token }
}

impl Qbo {
    async fn call(
        &self,
        get: bool,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value) {
        // Stay under 10 requests a second, as a client must.
        tokio::time::sleep(std::time::Duration::from_millis(105)).await;
        let url = format!("{}/qbo/v3/company/{}/{path}", self.k.base, self.realm);
        let mut req = if get {
            self.k.http.get(url)
        } else {
            self.k.http.post(url)
        };
        req = req
            .query(&[("minorversion", "75")])
            .query(query)
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
    async fn get(&self, path: &str) -> Value {
        let (s, v) = self.call(true, path, &[], None).await;
        assert_eq!(s, 200, "{path}: {v}");
        v
    }
    async fn post(&self, entity: &str, query: &[(&str, &str)], body: Value) -> (u16, Value) {
        self.call(false, entity, query, Some(body)).await
    }
    async fn ok(&self, entity: &str, query: &[(&str, &str)], body: Value) -> Value {
        let (s, v) = self.post(entity, query, body).await;
        assert_eq!(s, 200, "{entity}: {v}");
        v
    }
}

fn code(v: &Value) -> &str {
    v["Fault"]["Error"][0]["code"].as_str().unwrap_or("")
}

/// An open bill of the realm and the payment body paying `amount` of it.
async fn open_bill(q: &Qbo) -> (Value, Value) {
    let bills = q
        .get("query?query=select%20*%20from%20Bill%20where%20Balance%20%3E%20'0'")
        .await;
    let bill = bills["QueryResponse"]["Bill"][0].clone();
    let bank = q
        .get("query?query=select%20*%20from%20Account%20where%20AccountType%20%3D%20'Bank'")
        .await;
    let bank_id = bank["QueryResponse"]["Account"][0]["Id"].clone();
    let body = json!({
        "VendorRef": bill["VendorRef"], "PayType": "Check", "TotalAmt": 10.5,
        "CheckPayment": {"BankAccountRef": {"value": bank_id}}, "PrivateNote": "first",
        "Line": [{"Amount": 10.5, "LinkedTxn": [{"TxnId": bill["Id"], "TxnType": "Bill"}]}],
    });
    (bill, body)
}

fn balance(v: &Value) -> f64 {
    v["Balance"].as_f64().unwrap()
}

#[tokio::test]
async fn updates_check_the_sync_token_and_sparse_keeps_what_is_not_sent() {
    let q = qbo().await;
    let (bill, body) = open_bill(&q).await;
    let bp = q.ok("billpayment", &[], body).await["BillPayment"].clone();
    let id = bp["Id"].as_str().unwrap();
    let v = q
        .ok(
            "billpayment",
            &[],
            json!({"Id": id, "SyncToken": "0", "sparse": true, "DocNumber": "D-1"}),
        )
        .await;
    assert_eq!(v["BillPayment"]["PrivateNote"], "first");
    assert_eq!(v["BillPayment"]["DocNumber"], "D-1");
    assert_eq!(v["BillPayment"]["SyncToken"], "1");
    let (s, v) = q
        .post(
            "billpayment",
            &[],
            json!({"Id": id, "SyncToken": "0", "sparse": true, "PrivateNote": "x"}),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "5010"));
    // A full update clears what it leaves out, and revalidates the rest.
    let mut full = q.get(&format!("billpayment/{id}")).await["BillPayment"].clone();
    full.as_object_mut().unwrap().remove("PrivateNote");
    full["Line"][0]["Amount"] = json!(1e9);
    let (s, v) = q.post("billpayment", &[], full.clone()).await;
    assert_eq!((s, code(&v)), (400, "6000"), "{v}");
    full["Line"][0]["Amount"] = json!(4.0);
    full["TotalAmt"] = json!(4.0);
    let v = q.ok("billpayment", &[], full).await;
    assert!(v["BillPayment"].get("PrivateNote").is_none());
    assert_eq!(v["BillPayment"]["DocNumber"], "D-1");
    let after = q
        .get(&format!("bill/{}", bill["Id"].as_str().unwrap()))
        .await;
    assert!((balance(&bill) - 4.0 - balance(&after["Bill"])).abs() < 1e-9);
}

#[tokio::test]
async fn delete_and_void_restore_the_bill_and_cdc_reports_them() {
    let q = qbo().await;
    let (bill, body) = open_bill(&q).await;
    let bill_path = format!("bill/{}", bill["Id"].as_str().unwrap());
    let first = q
        .ok("billpayment", &[("requestid", "r-1")], body.clone())
        .await;
    // The same requestid: the stored answer, nothing applied twice.
    let again = q
        .ok("billpayment", &[("requestid", "r-1")], body.clone())
        .await;
    assert_eq!(first, again);
    let lowered = balance(&q.get(&bill_path).await["Bill"]);
    assert!((balance(&bill) - 10.5 - lowered).abs() < 1e-9);
    let id = first["BillPayment"]["Id"].as_str().unwrap().to_owned();
    let (s, v) = q
        .post(
            "billpayment",
            &[("operation", "delete")],
            json!({"Id": id, "SyncToken": "0"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["BillPayment"]["status"], "Deleted");
    assert_eq!(balance(&q.get(&bill_path).await["Bill"]), balance(&bill));
    let (s, v) = q.call(true, &format!("billpayment/{id}"), &[], None).await;
    assert_eq!((s, code(&v)), (400, "610"));

    let voided = q.ok("billpayment", &[], body).await["BillPayment"].clone();
    let vid = voided["Id"].as_str().unwrap();
    let (s, _) = q
        .post(
            "billpayment",
            &[("operation", "void")],
            json!({"Id": vid, "SyncToken": "0"}),
        )
        .await;
    assert_eq!(s, 400, "bill payments are voided by update&include=void");
    let v = q
        .ok(
            "billpayment",
            &[("operation", "update"), ("include", "void")],
            json!({"Id": vid, "SyncToken": "0", "sparse": true}),
        )
        .await;
    assert_eq!(
        (
            v["BillPayment"]["TotalAmt"].as_f64(),
            v["BillPayment"]["PrivateNote"].as_str()
        ),
        (Some(0.0), Some("Voided"))
    );
    assert_eq!(balance(&q.get(&bill_path).await["Bill"]), balance(&bill));

    let info = q.get(&format!("companyinfo/{}", q.realm)).await;
    let now = info["time"].as_str().unwrap().to_owned();
    let t = chrono::DateTime::parse_from_rfc3339(&now).unwrap();
    let since = (t - chrono::Duration::minutes(5)).to_rfc3339();
    let (s, v) = q
        .call(
            true,
            "cdc",
            &[("entities", "BillPayment,Bill"), ("changedSince", &since)],
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let groups = v["CDCResponse"][0]["QueryResponse"].as_array().unwrap();
    let bps = groups[0]["BillPayment"].as_array().unwrap();
    let deleted = bps.iter().find(|b| b["Id"] == json!(id)).unwrap();
    assert_eq!(deleted["status"], "Deleted");
    assert!(deleted["MetaData"]["LastUpdatedTime"].is_string());
    assert!(bps
        .iter()
        .any(|b| b["Id"] == json!(vid) && b["PrivateNote"] == "Voided"));
    assert!(groups[1]["Bill"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["Id"] == bill["Id"]));
    let old = (t - chrono::Duration::days(31)).to_rfc3339();
    let (s, v) = q
        .call(
            true,
            "cdc",
            &[("entities", "Bill"), ("changedSince", &old)],
            None,
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = q.call(true, "cdc", &[("changedSince", &since)], None).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn payments_lower_invoices_and_names_are_unique() {
    let q = qbo().await;
    let vendors = q
        .get("query?query=select%20DisplayName%20from%20Vendor")
        .await;
    let taken = vendors["QueryResponse"]["Vendor"][0]["DisplayName"].clone();
    assert_eq!(
        vendors["QueryResponse"]["Vendor"][0]
            .as_object()
            .unwrap()
            .len(),
        1
    );
    let (s, v) = q.post("customer", &[], json!({"DisplayName": taken})).await;
    assert_eq!((s, code(&v)), (400, "6240"));
    let cust = q
        .ok("customer", &[], json!({"DisplayName": "Judge Co"}))
        .await["Customer"]["Id"]
        .clone();
    let inv = q
        .ok(
            "invoice",
            &[],
            json!({"CustomerRef": {"value": cust}, "TxnDate": "",
                   "Line": [{"Amount": 80.0, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}},
                            {"Amount": 20.0, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}]}),
        )
        .await["Invoice"]
        .clone();
    assert_eq!(
        (inv["TotalAmt"].as_f64(), balance(&inv)),
        (Some(100.0), 100.0)
    );
    let inv_id = inv["Id"].as_str().unwrap();
    let pay = |amt: f64| {
        json!({"CustomerRef": {"value": cust}, "TotalAmt": amt,
               "Line": [{"Amount": amt, "LinkedTxn": [{"TxnId": inv_id, "TxnType": "Invoice"}]}]})
    };
    let (s, v) = q.post("payment", &[], pay(100.01)).await;
    assert_eq!((s, code(&v)), (400, "6000"));
    let p = q.ok("payment", &[], pay(30.0)).await["Payment"].clone();
    assert_eq!(
        balance(&q.get(&format!("invoice/{inv_id}")).await["Invoice"]),
        70.0
    );
    let cur = q.get(&format!("invoice/{inv_id}")).await["Invoice"].clone();
    let (s, v) = q
        .post(
            "invoice",
            &[("operation", "delete")],
            json!({"Id": inv_id, "SyncToken": cur["SyncToken"]}),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "6000"));
    q.ok(
        "payment",
        &[("operation", "delete")],
        json!({"Id": p["Id"], "SyncToken": "0"}),
    )
    .await;
    assert_eq!(
        balance(&q.get(&format!("invoice/{inv_id}")).await["Invoice"]),
        100.0
    );
    let (s, v) = q
        .post(
            "vendor",
            &[("operation", "delete")],
            json!({"Id": "4", "SyncToken": "0"}),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "500"));
}

#[tokio::test]
async fn more_than_ten_a_second_is_throttled() {
    let q = qbo().await;
    let url = format!(
        "{}/qbo/v3/company/{}/companyinfo/{}",
        q.k.base, q.realm, q.realm
    );
    let mut statuses = vec![];
    for _ in 0..12 {
        let r =
            q.k.http
                .get(&url)
                .bearer_auth(&q.token)
                .send()
                .await
                .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            let v: Value = r.json().await.unwrap();
            assert_eq!(code(&v), "3001");
        }
    }
    assert_eq!(&statuses[..10], &[200; 10]);
    assert_eq!(statuses[10], 429);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s, v) = q
        .call(
            true,
            "query",
            &[("query", "select * from Bill where Id != '1'")],
            None,
        )
        .await;
    assert_eq!((s, code(&v)), (400, "4000"));
}
