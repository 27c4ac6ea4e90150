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

fn form(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", k, url_encode(v))).collect::<Vec<_>>().join("&")
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The form a stock GeoReport v2 client posts: the location and the user in their fields.
fn stock_form(jurisdiction: &str, text: &str) -> String {
    form(&[
        ("api_key", "key-12345"),
        ("jurisdiction_id", jurisdiction),
        ("service_code", "slow_action"),
        ("description", text),
        ("address_string", "1 Check Street"),
        ("address_id", "410702-0042"),
        ("lat", "35.30325"),
        ("long", "113.92675"),
        ("email", "check@example.com"),
        ("first_name", "Ada"),
        ("last_name", "Lovelace"),
        ("device_id", "dev-9"),
        ("attribute[target_kind]", "window"),
        ("attribute[target_id]", "ZH01"),
    ])
}

/// Posts `form`; the new request's id.
async fn post(addr: &str, form: &str) -> String {
    let (st, body) = http_request(addr, "POST", "/open311/v2/requests.json", Some(form)).await;
    assert_eq!(st, 201, "{body}");
    json(&body)[0]["service_request_id"].as_str().unwrap().to_string()
}

async fn get(addr: &str, id: &str) -> serde_json::Value {
    let (st, body) = http_request(addr, "GET", &format!("/open311/v2/requests/{id}.json"), None).await;
    assert_eq!(st, 200, "{body}");
    json(&body)[0].clone()
}

/// The ids `GET requests.json{q}` lists, sorted.
async fn listed(addr: &str, q: &str) -> Vec<String> {
    let (_, body) = http_request(addr, "GET", &format!("/open311/v2/requests.json{q}"), None).await;
    let mut ids: Vec<String> =
        json(&body).as_array().unwrap().iter().map(|r| r["service_request_id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

/// What a stock GeoReport v2 client posts comes back as it sent it: the location in its own
/// fields (`address`, `address_id`, `lat`, `long`), not folded into the description; the user's
/// `email`, names and device only to an inspector, each in its field; `updated_datetime` moves
/// with each step; `status_notes` is the last step in Chinese and `agency_responsible` the
/// department it was assigned to; bad coordinates are the spec's error.
#[tokio::test(flavor = "multi_thread")]
async fn a_stock_client_gets_back_what_it_sent() {
    use xiaoneng_e2e::proto::complaint::v1 as cpb;
    use xiaoneng_kit::auth::roles;
    let svc = super::start(&xiaoneng_e2e::shared_brokers(), "2026-11-02T10:00:00+08:00").await;
    let addr = svc.env_of("XIAONENG__DOMAIN__OPEN311__ADDR").unwrap();
    let id = post(&addr, &stock_form("410702", "窗口一直没人")).await;
    let r = get(&addr, &id).await;
    assert_eq!(r["description"], "窗口一直没人");
    assert_eq!((r["address"].as_str(), r["address_id"].as_str()), (Some("1 Check Street"), Some("410702-0042")));
    assert_eq!((r["lat"].as_f64(), r["long"].as_f64()), (Some(35.30325), Some(113.92675)));
    assert_eq!((r["status_notes"].as_str(), r["agency_responsible"].as_str()), (Some("已登记, 待分办"), Some("")));
    assert_eq!(r["updated_datetime"], "2026-11-02T10:00:00+08:00");
    let text = r.to_string();
    for secret in ["check@example.com", "Ada", "Lovelace", "dev-9"] {
        assert!(!text.contains(secret), "{secret} in a public read: {text}");
    }
    let mut office = super::as_in(&svc, "xiaonengban", &[roles::SUPERVISOR], "410700").await;
    super::advance(&mut office, &id, cpb::Step::Assign, |r| r.unit = "行政审批局".into()).await;
    let r = get(&addr, &id).await;
    assert_eq!(r["status_notes"], "已分办至行政审批局, 待调查核实");
    assert_eq!(r["agency_responsible"], "行政审批局");
    let mut inspector = super::as_in(&svc, "jiwei-01", &[roles::INSPECTOR], "410700").await;
    let why = cpb::RevealComplainantRequest { id: id.clone(), purpose: "核实投诉人联系方式".into() };
    let who = inspector.reveal_complainant(why).await.unwrap().into_inner().complainant.unwrap();
    assert_eq!(
        (
            who.email.as_str(),
            who.first_name.as_str(),
            who.last_name.as_str(),
            who.device_id.as_str(),
            who.address.as_str()
        ),
        ("check@example.com", "Ada", "Lovelace", "dev-9", "")
    );
    let bad = stock_form("410702", "x").replace("lat=35.30325", "lat=north");
    let (st, body) = http_request(&addr, "POST", "/open311/v2/requests.json", Some(&bad)).await;
    assert_eq!((st, json(&body)[0]["description"].as_str()), (400, Some("lat must be a number")));
}

/// The city's endpoint lists its counties' requests, a county's only its own; a county that
/// does not publish (`open311.publish.410721 = false`) is absent from every public read.
#[tokio::test(flavor = "multi_thread")]
async fn the_city_lists_its_counties_and_a_withheld_county_is_not_public() {
    let withheld = [("XIAONENG__DOMAIN__OPEN311__PUBLISH__410721", "false")];
    let svc = super::start_with_extra(&xiaoneng_e2e::shared_brokers(), "2026-11-02T10:00:00+08:00", &withheld).await;
    let addr = svc.env_of("XIAONENG__DOMAIN__OPEN311__ADDR").unwrap();
    let id = post(&addr, &stock_form("410702", "红旗区等太久")).await;
    let other = post(&addr, &stock_form("410703", "卫滨区等太久")).await;
    let hidden = post(&addr, &stock_form("410721", "新乡县不公开")).await;
    let mut both = vec![id.clone(), other.clone()];
    both.sort();
    assert_eq!(listed(&addr, "").await, both, "the city's jurisdiction (the default) lists both counties");
    assert_eq!(listed(&addr, "?jurisdiction_id=410703").await, [other.clone()]);
    assert_eq!(listed(&addr, "?jurisdiction_id=410702").await, [id.clone()]);
    assert_eq!(listed(&addr, "?jurisdiction_id=410721").await, Vec::<String>::new());
    let (st, _) = http_request(&addr, "GET", &format!("/open311/v2/requests/{hidden}.json"), None).await;
    assert_eq!(st, 404, "a withheld county's request is not public");
    let (st, _) =
        http_request(&addr, "GET", &format!("/open311/v2/requests/{other}.json?jurisdiction_id=410702"), None).await;
    assert_eq!(st, 404, "another county's request is not in 410702's jurisdiction");
}
