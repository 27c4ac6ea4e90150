//! A target id is checked with the service that owns it: a matter in force in the catalog, a
//! case in the case service. Unknown ones are NOT_FOUND and store nothing; known ones take the
//! department the owner names, and a complaint about a case links to it.

use tonic::Code;
use xiaoneng_e2e::proto::case::v1 as kpb;
use xiaoneng_e2e::proto::complaint::v1 as cpb;
use xiaoneng_e2e::{shared_brokers, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

use super::{as_in, filing};

#[tokio::test(flavor = "multi_thread")]
async fn matters_and_cases_are_checked_with_their_owners() {
    let brokers = shared_brokers();
    let (catalog, case) = crate::case::start(&brokers).await;
    let matter_id = crate::case::matter(&catalog).await;
    let minter = xiaoneng_kit::auth::TokenMinter::new(&xiaoneng_e2e::settings().auth);
    let t = minter.mint("clerk-08", &[roles::CLERK], "410702", Some("行政审批局"), 3600);
    let mut clerk = xiaoneng_e2e::proto::case::v1::case_service_client::CaseServiceClient::new(
        xiaoneng_e2e::channel(&case.addr(), Some(&t)).await,
    );
    let k = crate::case::accepted(&mut clerk, &matter_id).await;
    let svc = ServiceProc::start_with(
        ServiceKind::Complaint,
        &brokers,
        &[
            ("XIAONENG__DOMAIN__CATALOG_ADDR", &catalog.addr()),
            ("XIAONENG__DOMAIN__CASE_ADDR", &case.addr()),
            ("XIAONENG__DOMAIN__BUSINESS_TIME", "2026-09-14T10:00:00+08:00"),
        ],
    )
    .await;
    let mut hotline = as_in(&svc, "12345", &[roles::SYSTEM], "410702").await;
    let about = |kind: cpb::TargetKind, id: &str| cpb::FileComplaintRequest {
        target: Some(cpb::Target { kind: kind as i32, id: id.into(), department: String::new() }),
        complainant: None,
        ..filing("slow_action", id, "办理太慢")
    };
    let unknown = hotline.file_complaint(about(cpb::TargetKind::Matter, "no-such-matter")).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let unknown = hotline.file_complaint(about(cpb::TargetKind::Case, &uuid::Uuid::new_v4().to_string())).await;
    assert_eq!(unknown.unwrap_err().code(), Code::NotFound);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM complaints").fetch_one(&svc.db().await).await.unwrap();
    assert_eq!(n, 0, "a refused filing stores nothing");

    let m = hotline.file_complaint(about(cpb::TargetKind::Matter, &matter_id)).await.unwrap().into_inner();
    let m = m.complaint.unwrap();
    assert!(!m.target.unwrap().department.is_empty(), "the matter's department, from the catalog");
    let c = hotline.file_complaint(about(cpb::TargetKind::Case, &k.id)).await.unwrap().into_inner();
    let c = c.complaint.unwrap();
    assert_eq!((c.linked_case_id.as_str(), c.target.unwrap().department.as_str()), (k.id.as_str(), "行政审批局"));
    assert_eq!(k.state, kpb::CaseState::Accepted as i32);
}

/// A ticket target is checked with the queue: an unknown ticket is NOT_FOUND, a real one is
/// taken. With the case service down, a complaint about a case is recorded as given (linked,
/// no department) — never refused because a neighbour does not answer.
#[tokio::test(flavor = "multi_thread")]
async fn tickets_are_checked_and_an_owner_that_is_down_is_not_a_refusal() {
    use crate::queue::{category, client, hall, issue, load_starter_into, window};
    use xiaoneng_e2e::proto::queue::v1 as qpb;
    let brokers = shared_brokers();
    let catalog = ServiceProc::start(ServiceKind::Catalog, &brokers).await;
    let matters = load_starter_into(&catalog).await;
    let queue =
        ServiceProc::start_with(ServiceKind::Queue, &brokers, &[("XIAONENG__DOMAIN__CATALOG_ADDR", &catalog.addr())])
            .await;
    let mut case =
        ServiceProc::start_with(ServiceKind::Case, &brokers, &[("XIAONENG__DOMAIN__CATALOG_ADDR", &catalog.addr())])
            .await;
    let mut m = client(&queue, "manager", &[roles::HALL_MANAGER]).await;
    let h = hall(&mut m, "投诉大厅", vec![category("A", &[])]).await;
    window(&mut m, &h.id, "ZH01", qpb::WindowKind::Comprehensive, &[], false).await;
    let mut kiosk = client(&queue, "kiosk", &[roles::SYSTEM]).await;
    let t = issue(&mut kiosk, &h.id, &matters[0], qpb::Priority::Normal).await;
    let svc = ServiceProc::start_with(
        ServiceKind::Complaint,
        &brokers,
        &[("XIAONENG__DOMAIN__QUEUE_ADDR", &queue.addr()), ("XIAONENG__DOMAIN__CASE_ADDR", &case.addr())],
    )
    .await;
    let mut hotline = as_in(&svc, "12345", &[roles::SYSTEM], "410702").await;
    let about = |kind: cpb::TargetKind, id: &str| cpb::FileComplaintRequest {
        target: Some(cpb::Target { kind: kind as i32, id: id.into(), department: String::new() }),
        complainant: None,
        ..filing("slow_action", id, "叫号后没人办")
    };
    let unknown = hotline.file_complaint(about(cpb::TargetKind::Ticket, &uuid::Uuid::new_v4().to_string())).await;
    assert_eq!(unknown.unwrap_err().code(), Code::NotFound);
    let ok = hotline.file_complaint(about(cpb::TargetKind::Ticket, &t.id)).await.unwrap().into_inner();
    assert_eq!(ok.complaint.unwrap().target.unwrap().id, t.id);

    case.kill();
    let id = uuid::Uuid::new_v4().to_string();
    let given = hotline.file_complaint(about(cpb::TargetKind::Case, &id)).await.unwrap().into_inner();
    let given = given.complaint.unwrap();
    assert_eq!((given.linked_case_id.as_str(), given.target.unwrap().department.as_str()), (id.as_str(), ""));
    assert!(svc.log_text().contains("target not checked"), "the unchecked target is logged");
}
