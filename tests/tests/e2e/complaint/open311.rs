//! The Open311 GeoReport v2 face, spoken as an existing client would: plain HTTP, JSON and
//! XML, a form-encoded POST with `api_key`, `jurisdiction_id` for the city's counties, and
//! the spec's error documents.

use xiaoneng_e2e::http_request;

use super::start;

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open311_client_lists_services_files_and_follows_a_request() {
    let svc = start(&xiaoneng_e2e::shared_brokers(), "2026-09-30T10:00:00+08:00").await;
    let addr = svc.env_of("XIAONENG__DOMAIN__OPEN311__ADDR").unwrap();

    let (st, body) = http_request(&addr, "GET", "/open311/v2/services.json?jurisdiction_id=410702", None).await;
    assert_eq!(st, 200, "{body}");
    let services = json(&body);
    let codes: Vec<&str> = services.as_array().unwrap().iter().map(|s| s["service_code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"buck_passing") && codes.contains(&"bribery"), "{codes:?}");
    assert_eq!(services[0]["metadata"], true);
    let (st, xml) = http_request(&addr, "GET", "/open311/v2/services.xml", None).await;
    assert_eq!(st, 200);
    assert!(xml.starts_with("<?xml") && xml.contains("<services><service><service_code>"), "{xml}");
    let (st, body) = http_request(&addr, "GET", "/open311/v2/services/buck_passing.json", None).await;
    assert_eq!(st, 200, "{body}");
    let def = json(&body);
    let attrs: Vec<&str> = def["attributes"].as_array().unwrap().iter().map(|a| a["code"].as_str().unwrap()).collect();
    assert_eq!(attrs, ["target_kind", "target_id", "kind"]);

    // Errors as the spec shapes them.
    let (st, body) = http_request(&addr, "GET", "/open311/v2/services.json?jurisdiction_id=110000", None).await;
    assert_eq!((st, json(&body)[0]["description"].as_str().unwrap()), (404, "jurisdiction_id not found"));
    let form = "service_code=buck_passing&description=%E6%8E%A8%E8%AF%BF&attribute%5Btarget_kind%5D=window&attribute%5Btarget_id%5D=ZH01";
    let (st, body) = http_request(&addr, "POST", "/open311/v2/requests.json", Some(form)).await;
    assert_eq!((st, json(&body)[0]["code"].as_i64().unwrap()), (403, 403));
    let (st, xml) = http_request(&addr, "POST", "/open311/v2/requests.xml", Some("api_key=key-12345")).await;
    assert_eq!(st, 400);
    assert!(xml.contains("<errors><error><code>400</code>"), "{xml}");

    let with_key = format!(
        "api_key=key-12345&jurisdiction_id=410702&{form}&first_name=%E4%B8%89&last_name=%E5%BC%A0&phone=13700001111"
    );
    let (st, body) = http_request(&addr, "POST", "/open311/v2/requests.json", Some(&with_key)).await;
    assert_eq!(st, 201, "{body}");
    let created = json(&body);
    let id = created[0]["service_request_id"].as_str().unwrap().to_string();
    assert!(created[0]["service_notice"].as_str().unwrap().contains("2026-10-20"));

    let (st, body) = http_request(&addr, "GET", &format!("/open311/v2/requests/{id}.json"), None).await;
    assert_eq!(st, 200, "{body}");
    let r = &json(&body)[0];
    assert_eq!(r["status"], "open");
    assert_eq!(r["service_code"], "buck_passing");
    // The legal clock: 10 working days across National Day.
    assert_eq!(r["expected_datetime"], "2026-10-20T18:00:00+08:00");
    assert!(!body.contains("13700001111") && !body.contains("张三"), "{body}");
    let (_, xml) = http_request(&addr, "GET", &format!("/open311/v2/requests/{id}.xml"), None).await;
    assert!(
        xml.contains(&format!("<service_request_id>{id}</service_request_id>"))
            && xml.contains("<status>open</status>")
    );
    let (_, body) =
        http_request(&addr, "GET", &format!("/open311/v2/requests.json?service_request_id={id}&status=closed"), None)
            .await;
    assert_eq!(json(&body).as_array().unwrap().len(), 0, "not closed");
    let (st, _) =
        http_request(&addr, "GET", &format!("/open311/v2/requests/{}.json", uuid::Uuid::new_v4()), None).await;
    assert_eq!(st, 404);
}
