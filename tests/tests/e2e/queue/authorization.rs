//! The queue service's authorization as a matrix: every method × every role, and the region
//! cells (own county, the city, another county), each with the expected allow or deny written
//! out here — not read from the service's table.

use tonic::Code;
use xiaoneng_e2e::proto::queue::v1 as pb;
use xiaoneng_e2e::proto::queue::v1::queue_service_client::QueueServiceClient;
use xiaoneng_e2e::{channel, token};
use xiaoneng_kit::auth::roles::*;

use super::{catalog, category, client, hall, queue_service, Queue};

const WINDOW_STAFF: &[&str] = &[CLERK, HALL_MANAGER];
const TAKE: &[&str] = &[CITIZEN, CLERK, HALL_MANAGER, SYSTEM];

/// Method → the roles that may call it.
const EXPECTED: &[(&str, &[&str])] = &[
    ("CreateHall", &[HALL_MANAGER]),
    ("GetHall", &[CITIZEN, CLERK, REVIEWER, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM, CATALOG_ADMIN]),
    ("ListHalls", &[CITIZEN, CLERK, REVIEWER, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM, CATALOG_ADMIN]),
    ("UpsertWindow", &[HALL_MANAGER]),
    ("SetWindowState", WINDOW_STAFF),
    ("SetStaffRoster", &[HALL_MANAGER]),
    ("SetTidalPolicy", &[HALL_MANAGER]),
    ("CreateSlots", &[HALL_MANAGER]),
    ("BookAppointment", TAKE),
    ("CancelAppointment", TAKE),
    ("RescheduleAppointment", TAKE),
    ("CheckIn", TAKE),
    ("IssueTicket", TAKE),
    ("GetTicket", &[CITIZEN, CLERK, HALL_MANAGER, SUPERVISOR, SYSTEM]),
    ("CallNext", WINDOW_STAFF),
    ("CallTicket", WINDOW_STAFF),
    ("Recall", WINDOW_STAFF),
    ("MarkNoShow", WINDOW_STAFF),
    ("HoldTicket", WINDOW_STAFF),
    ("ResumeTicket", WINDOW_STAFF),
    ("TransferTicket", WINDOW_STAFF),
    ("StartService", WINDOW_STAFF),
    ("FinishService", WINDOW_STAFF),
    ("LinkCase", WINDOW_STAFF),
    ("ListTidalEvents", &[CLERK, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM]),
    // Public: the board, the waits and the free slots need no token at all.
    ("EstimateWait", &[CITIZEN, CLERK, REVIEWER, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM, CATALOG_ADMIN]),
    ("ListSlots", &[CITIZEN, CLERK, REVIEWER, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM, CATALOG_ADMIN]),
];

const ROLES: &[&str] = &[CITIZEN, CLERK, REVIEWER, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM, CATALOG_ADMIN];

/// Calls `method` with an empty request (a hall naming `region`, the hall `hall_id` for reads);
/// its status code.
async fn call(q: &mut Queue, method: &str, region: &str, hall_id: &str) -> Code {
    let hall_id = hall_id.to_string();
    let r = match method {
        "CreateHall" => {
            let name = format!("大厅 {}", uuid::Uuid::new_v4().simple());
            let (region_code, categories) = (region.into(), vec![category("A", &["m1"])]);
            q.create_hall(pb::CreateHallRequest { region_code, name, categories, ..Default::default() })
                .await
                .map(|_| ())
        }
        "GetHall" => q.get_hall(pb::GetHallRequest { hall_id }).await.map(|_| ()),
        "ListHalls" => q.list_halls(pb::ListHallsRequest::default()).await.map(|_| ()),
        "UpsertWindow" => q.upsert_window(pb::UpsertWindowRequest::default()).await.map(|_| ()),
        "SetWindowState" => q.set_window_state(pb::SetWindowStateRequest::default()).await.map(|_| ()),
        "SetStaffRoster" => q.set_staff_roster(pb::SetStaffRosterRequest::default()).await.map(|_| ()),
        "SetTidalPolicy" => q.set_tidal_policy(pb::SetTidalPolicyRequest::default()).await.map(|_| ()),
        "CreateSlots" => q.create_slots(pb::CreateSlotsRequest::default()).await.map(|_| ()),
        "BookAppointment" => q.book_appointment(pb::BookAppointmentRequest::default()).await.map(|_| ()),
        "CancelAppointment" => q.cancel_appointment(pb::CancelAppointmentRequest::default()).await.map(|_| ()),
        "RescheduleAppointment" => {
            q.reschedule_appointment(pb::RescheduleAppointmentRequest::default()).await.map(|_| ())
        }
        "CheckIn" => q.check_in(pb::CheckInRequest::default()).await.map(|_| ()),
        "IssueTicket" => q.issue_ticket(pb::IssueTicketRequest::default()).await.map(|_| ()),
        "GetTicket" => q.get_ticket(pb::GetTicketRequest::default()).await.map(|_| ()),
        "CallNext" => q.call_next(pb::CallNextRequest::default()).await.map(|_| ()),
        "CallTicket" => q.call_ticket(pb::CallTicketRequest::default()).await.map(|_| ()),
        "Recall" => q.recall(pb::RecallRequest::default()).await.map(|_| ()),
        "MarkNoShow" => q.mark_no_show(pb::MarkNoShowRequest::default()).await.map(|_| ()),
        "HoldTicket" => q.hold_ticket(pb::HoldTicketRequest::default()).await.map(|_| ()),
        "ResumeTicket" => q.resume_ticket(pb::ResumeTicketRequest::default()).await.map(|_| ()),
        "TransferTicket" => q.transfer_ticket(pb::TransferTicketRequest::default()).await.map(|_| ()),
        "StartService" => q.start_service(pb::StartServiceRequest::default()).await.map(|_| ()),
        "FinishService" => q.finish_service(pb::FinishServiceRequest::default()).await.map(|_| ()),
        "LinkCase" => q.link_case(pb::LinkCaseRequest::default()).await.map(|_| ()),
        "ListTidalEvents" => q.list_tidal_events(pb::ListTidalEventsRequest { hall_id }).await.map(|_| ()),
        "EstimateWait" => q.estimate_wait(pb::EstimateWaitRequest { hall_id }).await.map(|_| ()),
        "ListSlots" => q.list_slots(pb::ListSlotsRequest { hall_id, ..Default::default() }).await.map(|_| ()),
        other => panic!("no such method {other}"),
    };
    r.err().map_or(Code::Ok, |e| e.code())
}

/// Every role on every method: PERMISSION_DENIED exactly where the matrix says deny.
#[tokio::test(flavor = "multi_thread")]
async fn every_role_on_every_method() {
    let (catalog, _) = catalog().await;
    let queue = queue_service(&catalog, &[]).await;
    let mut wrong = Vec::new();
    for role in ROLES {
        let mut q = client(&queue, &format!("{role}-1"), &[role]).await;
        for (method, allowed) in EXPECTED {
            let denied = call(&mut q, method, "410702", "").await == Code::PermissionDenied;
            if denied == allowed.contains(role) {
                wrong.push(format!("{role} on {method}: {}", if denied { "denied" } else { "allowed" }));
            }
        }
    }
    assert!(wrong.is_empty(), "cells not as expected:\n{}", wrong.join("\n"));
}

/// A hall of county 410702: its own manager and the city's create and read it; another
/// county's manager may not create it and does not see it.
#[tokio::test(flavor = "multi_thread")]
async fn a_county_acts_on_its_own_halls_and_the_city_on_its_counties() {
    let (catalog, _) = catalog().await;
    let queue = queue_service(&catalog, &[]).await;
    let h = hall(&mut client(&queue, "m", &[HALL_MANAGER]).await, "东区大厅", vec![category("A", &["m1"])]).await;
    let cells = [
        ("410702", "CreateHall", Code::Ok),
        ("410700", "CreateHall", Code::Ok),
        ("410703", "CreateHall", Code::PermissionDenied),
        ("410702", "GetHall", Code::Ok),
        ("410700", "GetHall", Code::Ok),
        ("410703", "GetHall", Code::NotFound),
        ("410703", "ListTidalEvents", Code::NotFound),
    ];
    let mut wrong = Vec::new();
    for (region, method, expected) in cells {
        let token = token("someone", &[HALL_MANAGER], region);
        let mut q = QueueServiceClient::new(channel(&queue.addr(), Some(&token)).await);
        let got = call(&mut q, method, "410702", &h.id).await;
        if got != expected {
            wrong.push(format!("manager of {region} on {method} for 410702: {got:?}, expected {expected:?}"));
        }
    }
    assert!(wrong.is_empty(), "cells not as expected:\n{}", wrong.join("\n"));

    // Discovery: a county lists its own halls with their windows, the city its counties', and
    // another county neither sees it nor may ask for 410702.
    let mut m = client(&queue, "m", &[HALL_MANAGER]).await;
    super::window(&mut m, &h.id, "ZH01", pb::WindowKind::Comprehensive, &[], false).await;
    let listed = |region: &'static str, asked: &'static str| {
        let queue = &queue;
        async move {
            let token = token("someone", &[CLERK], region);
            let mut q = QueueServiceClient::new(channel(&queue.addr(), Some(&token)).await);
            q.list_halls(pb::ListHallsRequest { region_code: asked.into() }).await.map(|r| r.into_inner().halls)
        }
    };
    let own = listed("410702", "").await.unwrap();
    let mine = own.iter().find(|x| x.id == h.id).expect("the county lists its hall");
    assert_eq!(
        (mine.name.as_str(), mine.windows.iter().map(|w| w.code.as_str()).collect::<Vec<_>>()),
        ("东区大厅", vec!["ZH01"])
    );
    assert!(listed("410700", "").await.unwrap().iter().any(|x| x.id == h.id), "the city lists its counties' halls");
    assert!(listed("410700", "410702").await.unwrap().iter().any(|x| x.id == h.id));
    assert!(listed("410703", "").await.unwrap().iter().all(|x| x.id != h.id), "another county does not see it");
    assert_eq!(listed("410703", "410702").await.unwrap_err().code(), Code::PermissionDenied);
}
