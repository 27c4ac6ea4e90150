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
    catalog_service_client::CatalogServiceClient, CreateDepartmentRequest, Department,
    GetDepartmentRequest, ListDepartmentsRequest,
};
use xiaoneng_e2e::{
    bin_dir, channel, eventually, health, http_get, shared_brokers, token, ServiceProc,
};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

#[tokio::test(flavor = "multi_thread")]
async fn six_services_serve_health_and_reflection() {
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let brokers = shared_brokers();
    let mut procs = Vec::new();
    for kind in ServiceKind::ALL {
        procs.push(ServiceProc::start(kind, &brokers).await);
    }
    for p in &procs {
        assert_eq!(
            health(&p.addr(), p.kind.grpc_service()).await.as_deref(),
            Ok("Serving")
        );
        assert_eq!(health(&p.addr(), "").await.as_deref(), Ok("Serving"));
        let mut client = ServerReflectionClient::new(channel(&p.addr(), None).await);
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = client
            .server_reflection_info(tokio_stream::iter([req]))
            .await
            .unwrap()
            .into_inner();
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
    let queue = ServiceProc::start_with(
        ServiceKind::Queue,
        &brokers,
        &[("XIAONENG__SERVICE__METRICS_ADDR", &addr)],
    )
    .await;
    assert_eq!(health(&queue.addr(), "").await.as_deref(), Ok("Serving"));
    let body = http_get(&addr, "/metrics").await;
    assert!(body.contains("grpc_server_requests_total"), "{body}");
    assert!(body.contains("/grpc.health.v1.Health/Check"), "{body}");
    procs.push(queue);

    // Graceful stop: SIGTERM ends the process cleanly.
    for mut p in procs {
        let status = p.terminate();
        assert!(
            status.success(),
            "{} exited with {status}:\n{}",
            p.kind.name(),
            p.log_tail()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_roles_and_regions() {
    // A private broker: the ledger must hold this test's events only.
    let broker = xiaoneng_e2e::Broker::start();
    let brokers = broker.brokers();
    let catalog = ServiceProc::start(ServiceKind::Catalog, &brokers).await;
    let acc = ServiceProc::start(ServiceKind::Accountability, &brokers).await;
    let dept = |region: &str, code: &str| CreateDepartmentRequest {
        department: Some(Department {
            region_code: region.into(),
            code: code.into(),
            display_name: "县民政局".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    };

    // No token, a forged token, an expired-looking garbage token: UNAUTHENTICATED.
    let mut anon = CatalogServiceClient::new(channel(&catalog.addr(), None).await);
    assert_eq!(
        anon.create_department(dept("410702", "A"))
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let mut forged = CatalogServiceClient::new(channel(&catalog.addr(), Some("not.a.jwt")).await);
    assert_eq!(
        forged
            .create_department(dept("410702", "A"))
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let mut acc_anon = AccountabilityServiceClient::new(channel(&acc.addr(), None).await);
    assert_eq!(
        acc_anon
            .list_ledger_entries(ListLedgerEntriesRequest::default())
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );

    // Wrong role, wrong region: PERMISSION_DENIED.
    let clerk = token("clerk", &[roles::CLERK], "410702");
    let mut c = CatalogServiceClient::new(channel(&catalog.addr(), Some(&clerk)).await);
    assert_eq!(
        c.create_department(dept("410702", "A"))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let admin = token("admin", &[roles::CATALOG_ADMIN], "410702");
    let mut c = CatalogServiceClient::new(channel(&catalog.addr(), Some(&admin)).await);
    assert_eq!(
        c.create_department(dept("410703", "A"))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );

    // Bad input: INVALID_ARGUMENT naming each field.
    let err = c.create_department(dept("41", "")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let details = err.get_error_details();
    let fields: Vec<_> = details
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(fields, ["department.region_code", "department.code"]);
    assert_eq!(details.error_info().unwrap().reason, "INVALID_ARGUMENT");

    // A duplicate is ALREADY_EXISTS; the same request id returns the first answer.
    let first = c
        .create_department(dept("410702", "MZJ"))
        .await
        .unwrap()
        .into_inner()
        .department
        .unwrap();
    assert_eq!(
        c.create_department(dept("410702", "MZJ"))
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );
    let mut again = dept("410702", "MZJ2");
    again.request_id = "req-1".into();
    let a = c
        .create_department(again.clone())
        .await
        .unwrap()
        .into_inner()
        .department
        .unwrap();
    let b = c
        .create_department(again)
        .await
        .unwrap()
        .into_inner()
        .department
        .unwrap();
    assert_eq!(a.id, b.id);
    // Unknown id: NOT_FOUND; malformed id: INVALID_ARGUMENT. Public reads need no token.
    let missing = anon
        .get_department(GetDepartmentRequest {
            id: uuid::Uuid::new_v4().to_string(),
        })
        .await;
    assert_eq!(missing.unwrap_err().code(), Code::NotFound);
    let bad = anon
        .get_department(GetDepartmentRequest { id: "x".into() })
        .await;
    assert_eq!(bad.unwrap_err().code(), Code::InvalidArgument);
    let got = anon
        .get_department(GetDepartmentRequest {
            id: first.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.department.unwrap().code, "MZJ");

    // Another county's data is invisible; the city sees both.
    create_departments(&catalog, "410703", "W", 3).await;
    let city = token("city", &[roles::SUPERVISOR], "410700");
    let mut city_acc = AccountabilityServiceClient::new(channel(&acc.addr(), Some(&city)).await);
    let all = eventually(60, "5 ledger entries for the city", || {
        let mut c = city_acc.clone();
        async move {
            let r = c
                .list_ledger_entries(ListLedgerEntriesRequest::default())
                .await
                .ok()?
                .into_inner();
            (r.entries.len() == 5).then_some(r.entries)
        }
    })
    .await;
    assert_eq!(all.iter().filter(|e| e.region_code == "410703").count(), 3);
    let county = token("county", &[roles::SUPERVISOR], "410702");
    let mut county_acc =
        AccountabilityServiceClient::new(channel(&acc.addr(), Some(&county)).await);
    let own = county_acc
        .list_ledger_entries(ListLedgerEntriesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.entries.len(), 2);
    assert!(own.entries.iter().all(|e| e.region_code == "410702"));
    let other = county_acc
        .list_ledger_entries(ListLedgerEntriesRequest {
            region_code: "410703".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied);
    let narrowed = city_acc
        .list_ledger_entries(ListLedgerEntriesRequest {
            region_code: "410703".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(narrowed.entries.len(), 3);

    // Pagination walks every entry once.
    let mut seen = Vec::new();
    let mut token_ = String::new();
    loop {
        let page = city_acc
            .list_ledger_entries(ListLedgerEntriesRequest {
                page_size: 2,
                page_token: token_,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.entries.into_iter().map(|e| e.event_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token_ = page.next_page_token;
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5);
    let listed = anon
        .list_departments(ListDepartmentsRequest {
            region_code: "410703".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.departments.len(), 3);
}

fn run_catalog_with(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(bin_dir().join("xiaoneng-catalog"))
        .envs(env.iter().copied())
        .env("XIAONENG__SERVICE__GRPC_ADDR", "127.0.0.1:0")
        .output()
        .expect("run catalog");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn malformed_config_fails_clearly() {
    let (code, err) = run_catalog_with(&[("XIAONENG__DATABASE__MAX_CONNECTIONS", "lots")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("database.max_connections"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let (code, err) = run_catalog_with(&[("XIAONENG__DATABASE__PASWORD", "x")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("unknown field") && err.contains("pasword"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog.toml");
    std::fs::write(&file, "[service]\ngrpc_adr = \"x\"\n").unwrap();
    let (code, err) = run_catalog_with(&[("XIAONENG_CONFIG", file.to_str().unwrap())]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("grpc_adr"), "{err}");
}
