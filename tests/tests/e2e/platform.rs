//! The platform as a caller meets it: six services with health and reflection, tokens and
//! regions, clear errors, clear config failures, graceful shutdown.

use std::process::Command;

use crate::common::create_departments;
use tonic::Code;
use tonic_types::StatusExt;
use xiaoneng_e2e::proto::accountability::v1::{
    accountability_service_client::AccountabilityServiceClient, ListLedgerEntriesRequest,
};
use xiaoneng_e2e::proto::catalog::v1::{
    catalog_service_client::CatalogServiceClient, CreateDepartmentRequest, CreateDepartmentResponse, Department,
    GetDepartmentRequest, ListDepartmentsRequest,
};
use xiaoneng_e2e::{bin_dir, channel, eventually, health, http_get, shared_brokers, token, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

#[tokio::test(flavor = "multi_thread")]
async fn six_services_serve_health_and_reflection() {
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest,
        server_reflection_response::MessageResponse, ServerReflectionRequest,
    };
    let brokers = shared_brokers();
    let mut procs = Vec::new();
    for kind in ServiceKind::ALL {
        procs.push(ServiceProc::start(kind, &brokers).await);
    }
    for p in &procs {
        assert_eq!(health(&p.addr(), p.kind.grpc_service()).await.as_deref(), Ok("Serving"));
        assert_eq!(health(&p.addr(), "").await.as_deref(), Ok("Serving"));
        let mut client = ServerReflectionClient::new(channel(&p.addr(), None).await);
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = client.server_reflection_info(tokio_stream::iter([req])).await.unwrap().into_inner();
        let resp = stream.message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
            panic!("unexpected reflection answer")
        };
        let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&p.kind.grpc_service()), "{names:?}");
        assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    }
    // Prometheus metrics over HTTP, counting the calls above.
    let port = xiaoneng_e2e::free_port();
    let addr = format!("127.0.0.1:{port}");
    let queue =
        ServiceProc::start_with(ServiceKind::Queue, &brokers, &[("XIAONENG__SERVICE__METRICS_ADDR", &addr)]).await;
    assert_eq!(health(&queue.addr(), "").await.as_deref(), Ok("Serving"));
    let body = http_get(&addr, "/metrics").await;
    assert!(body.contains("grpc_server_requests_total"), "{body}");
    assert!(body.contains("/grpc.health.v1.Health/Check"), "{body}");
    procs.push(queue);

    // Graceful stop: SIGTERM ends the process cleanly.
    for mut p in procs {
        let status = p.terminate();
        assert!(status.success(), "{} exited with {status}:\n{}", p.kind.name(), p.log_tail());
    }
}

fn dept(region: &str, code: &str) -> CreateDepartmentRequest {
    let department = Department {
        region_code: region.into(),
        code: code.into(),
        display_name: "县民政局".into(),
        ..Default::default()
    };
    CreateDepartmentRequest { department: Some(department), request_id: String::new() }
}

/// No token or a forged one is UNAUTHENTICATED on every service; a wrong role or another
/// county's region is PERMISSION_DENIED.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_token_is_unauthenticated_and_a_wrong_role_or_region_denied() {
    let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
    let acc = ServiceProc::start(ServiceKind::Accountability, &shared_brokers()).await;
    let as_ = |t: Option<String>| {
        let addr = catalog.addr();
        async move { CatalogServiceClient::new(channel(&addr, t.as_deref()).await) }
    };
    let code = |r: Result<tonic::Response<CreateDepartmentResponse>, tonic::Status>| r.unwrap_err().code();
    assert_eq!(code(as_(None).await.create_department(dept("410702", "A")).await), Code::Unauthenticated);
    let forged = as_(Some("not.a.jwt".into())).await.create_department(dept("410702", "A")).await;
    assert_eq!(code(forged), Code::Unauthenticated);
    let mut acc_anon = AccountabilityServiceClient::new(channel(&acc.addr(), None).await);
    let ledger = acc_anon.list_ledger_entries(ListLedgerEntriesRequest::default()).await;
    assert_eq!(ledger.unwrap_err().code(), Code::Unauthenticated);
    let clerk = Some(token("clerk", &[roles::CLERK], "410702"));
    assert_eq!(code(as_(clerk).await.create_department(dept("410702", "A")).await), Code::PermissionDenied);
    let admin = Some(token("admin", &[roles::CATALOG_ADMIN], "410702"));
    assert_eq!(code(as_(admin).await.create_department(dept("410703", "A")).await), Code::PermissionDenied);
}

/// Bad fields are INVALID_ARGUMENT naming each; a duplicate is ALREADY_EXISTS; the same request
/// id returns the first answer; an unknown id is NOT_FOUND, a malformed one INVALID_ARGUMENT;
/// public reads need no token.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_duplicates_and_replays_get_their_codes() {
    let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
    let admin = token("admin", &[roles::CATALOG_ADMIN], "410702");
    let mut c = CatalogServiceClient::new(channel(&catalog.addr(), Some(&admin)).await);
    let err = c.create_department(dept("41", "")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let details = err.get_error_details();
    let fields: Vec<_> = details.bad_request().unwrap().field_violations.iter().map(|v| v.field.clone()).collect();
    assert_eq!(fields, ["department.region_code", "department.code"]);
    assert_eq!(details.error_info().unwrap().reason, "INVALID_ARGUMENT");
    let first = c.create_department(dept("410702", "MZJ")).await.unwrap().into_inner().department.unwrap();
    assert_eq!(c.create_department(dept("410702", "MZJ")).await.unwrap_err().code(), Code::AlreadyExists);
    let again = CreateDepartmentRequest { request_id: "req-1".into(), ..dept("410702", "MZJ2") };
    let a = c.create_department(again.clone()).await.unwrap().into_inner().department.unwrap();
    let b = c.create_department(again).await.unwrap().into_inner().department.unwrap();
    assert_eq!(a.id, b.id);
    let mut anon = CatalogServiceClient::new(channel(&catalog.addr(), None).await);
    let get = |id: String| {
        let mut anon = anon.clone();
        async move { anon.get_department(GetDepartmentRequest { id }).await.map(|r| r.into_inner().department.unwrap()) }
    };
    assert_eq!(get(uuid::Uuid::new_v4().to_string()).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(get("x".into()).await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(get(first.id.clone()).await.unwrap().code, "MZJ");
    let req = ListDepartmentsRequest { region_code: "410702".into(), ..Default::default() };
    assert_eq!(anon.list_departments(req).await.unwrap().into_inner().departments.len(), 2);
}

/// The city's supervisors read the ledger of every county (narrowed to one on request, paged
/// with each entry once); a county's supervisor reads only its own and may not ask for another.
#[tokio::test(flavor = "multi_thread")]
async fn the_city_reads_every_county_and_a_county_only_its_own() {
    // A private broker: the ledger must hold this test's events only.
    let broker = xiaoneng_e2e::Broker::start();
    let catalog = ServiceProc::start(ServiceKind::Catalog, &broker.brokers()).await;
    let acc = ServiceProc::start(ServiceKind::Accountability, &broker.brokers()).await;
    create_departments(&catalog, "410702", "V", 2).await;
    create_departments(&catalog, "410703", "W", 3).await;
    let ledger = |who: &str, region: &str| {
        let (addr, t) = (acc.addr(), token(who, &[roles::SUPERVISOR], region));
        async move { AccountabilityServiceClient::new(channel(&addr, Some(&t)).await) }
    };
    let (city, mut county) = (ledger("city", "410700").await, ledger("county", "410702").await);
    let list = |c: &AccountabilityServiceClient<_>, region: &str, page_size: i32, page_token: String| {
        let (mut c, region_code) = (c.clone(), region.to_string());
        async move {
            c.list_ledger_entries(ListLedgerEntriesRequest { region_code, page_size, page_token, ..Default::default() })
                .await
        }
    };
    let all = eventually(60, "5 ledger entries for the city", || {
        let f = list(&city, "", 0, String::new());
        async move { f.await.ok().map(|r| r.into_inner().entries).filter(|e| e.len() == 5) }
    })
    .await;
    assert_eq!(all.iter().filter(|e| e.region_code == "410703").count(), 3);
    let own = list(&county, "", 0, String::new()).await.unwrap().into_inner().entries;
    assert_eq!(own.iter().filter(|e| e.region_code == "410702").count(), 2);
    assert_eq!(own.len(), 2);
    let other =
        county.list_ledger_entries(ListLedgerEntriesRequest { region_code: "410703".into(), ..Default::default() });
    assert_eq!(other.await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(list(&city, "410703", 0, String::new()).await.unwrap().into_inner().entries.len(), 3);
    let (mut seen, mut page_token) = (Vec::new(), String::new());
    loop {
        let page = list(&city, "", 2, page_token).await.unwrap().into_inner();
        seen.extend(page.entries.into_iter().map(|e| e.event_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5);
}

fn run_catalog_with(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(bin_dir().join("xiaoneng-catalog"))
        .envs(env.iter().copied())
        .env("XIAONENG__SERVICE__GRPC_ADDR", "127.0.0.1:0")
        .output()
        .expect("run catalog");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn malformed_config_fails_clearly() {
    let (code, err) = run_catalog_with(&[("XIAONENG__DATABASE__MAX_CONNECTIONS", "lots")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("database.max_connections"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let (code, err) = run_catalog_with(&[("XIAONENG__DATABASE__PASWORD", "x")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown field") && err.contains("pasword"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog.toml");
    std::fs::write(&file, "[service]\ngrpc_adr = \"x\"\n").unwrap();
    let (code, err) = run_catalog_with(&[("XIAONENG_CONFIG", file.to_str().unwrap())]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("grpc_adr"), "{err}");
}
