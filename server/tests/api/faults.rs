//! The console's Sandbox page: faults set through its server functions.

use crate::support::{Engine, TestApp};

both_engines!(
    admin_sets_a_fault_that_the_control_api_shows_and_audits,
    fault_catalogue_covers_every_fault,
);

async fn admin_sets_a_fault_that_the_control_api_shows_and_audits(e: Engine) {
    let mut app = TestApp::spawn(e).await;
    app.login("admin@northwind.test").await;
    let (status, body) = app
        .call(
            "sandbox/faults/set",
            &[("key", "ramp_create_fail_next"), ("value", "503")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let row = body["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "ramp_create_fail_next")
        .unwrap()
        .clone();
    assert_eq!(
        (row["value"].as_str(), row["set"].as_bool()),
        (Some("503"), Some(true))
    );
    let faults: serde_json::Value = app
        .http
        .get(format!("{}/sandbox/control/faults", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults["ramp_create_fail_next"], serde_json::json!([503]));
    assert_eq!(
        app.count("select count(*) from audit_entry where action = 'sandbox.fault_set' and subject = 'ramp_create_fail_next'")
            .await,
        1
    );
    // Bad input is refused with a reason and changes nothing.
    let (status, body) = app
        .call(
            "sandbox/faults/set",
            &[("key", "webhook_drop_next"), ("value", "-1")],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .call(
            "sandbox/faults/set",
            &[("key", "ramp_ach_return_next"), ("value", "X9")],
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // The faults added since the page: ACH returns and lead days (0 is a
    // value, so it shows as set), reaching the simulators' own document.
    let (status, body) = app
        .call(
            "sandbox/faults/set",
            &[("key", "ramp_ach_return_next"), ("value", "r01, R02")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .call(
            "sandbox/faults/set",
            &[("key", "ramp_ach_lead_days"), ("value", "0")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let row = |k: &str| {
        body["faults"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == k)
            .unwrap()
            .clone()
    };
    assert_eq!(row("ramp_ach_lead_days")["set"], serde_json::json!(true));
    assert_eq!(
        row("ramp_ach_return_next")["value"],
        serde_json::json!("R01, R02")
    );
    let f = app.sandbox().faults().await;
    assert_eq!(
        (f.ramp_ach_return_next, f.ramp_ach_lead_days),
        (vec!["R01".to_string(), "R02".to_string()], Some(0))
    );
    let (status, body) = app
        .call(
            "sandbox/faults/set",
            &[("key", "ramp_ach_lead_days"), ("value", "")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.sandbox().faults().await.ramp_ach_lead_days, None);

    // An advisor (and a viewer) are refused, and nothing changes.
    for who in ["advisor@northwind.test", "viewer@northwind.test"] {
        app.new_session();
        app.login(who).await;
        let (status, _) = app
            .call(
                "sandbox/faults/set",
                &[("key", "ramp_create_fail_next"), ("value", "")],
            )
            .await;
        assert_eq!(status, 403, "{who}");
        let (status, _) = app.call("sandbox/faults", &[]).await;
        assert_eq!(status, 403, "{who}");
    }
    assert_eq!(
        app.sandbox().faults().await.ramp_create_fail_next,
        vec![503]
    );
    assert_eq!(
        app.count("select count(*) from audit_entry where action = 'sandbox.fault_set'")
            .await,
        4
    );
}

/// Every field of the simulators' fault document has a row on the page.
async fn fault_catalogue_covers_every_fault(_e: Engine) {
    let doc = serde_json::to_value(sandbox::Faults::default()).unwrap();
    for key in doc.as_object().unwrap().keys() {
        assert!(
            app::model::fault_spec(key).is_some(),
            "the Sandbox page does not list the fault {key}"
        );
    }
    assert_eq!(doc.as_object().unwrap().len(), app::model::FAULTS.len());
}
