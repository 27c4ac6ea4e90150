//! The case service's authorization as a matrix: every method × every role, and the region
//! cells (own county, another county, the city), each with the expected allow or deny written
//! out here — not read from the service's table.

use tonic::Code;
use xiaoneng_e2e::proto::case::v1 as cpb;
use xiaoneng_e2e::shared_brokers;
use xiaoneng_kit::auth::roles::*;

use super::driver::as_in;
use super::{start, Cases};

/// Method → the roles that may call it.
const EXPECTED: &[(&str, &[&str])] = &[
    ("SubmitCase", &[CLERK, CITIZEN, SYSTEM]),
    ("GetCase", &[CITIZEN, CLERK, REVIEWER, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM]),
    ("StartPreReview", &[CLERK]),
    ("RequestCorrection", &[CLERK]),
    ("SupplyMaterials", &[CLERK, CITIZEN]),
    ("AcceptCase", &[CLERK]),
    ("RefuseCase", &[CLERK]),
    ("StartReview", &[CLERK, REVIEWER]),
    ("ConcludeReviewStep", &[REVIEWER]),
    ("ExtendDeadline", &[REVIEWER]),
    ("SuspendCase", &[REVIEWER]),
    ("ResumeCase", &[REVIEWER]),
    ("IssueCertificate", &[CLERK, REVIEWER]),
    ("DeliverCase", &[CLERK]),
    ("CloseCase", &[CLERK]),
    ("WithdrawCase", &[CLERK, CITIZEN]),
    ("SupplyToleratedMaterials", &[CLERK, CITIZEN]),
    ("ReferCase", &[CLERK, REVIEWER, HALL_MANAGER]),
    ("SetCaseFlags", &[SUPERVISOR, HALL_MANAGER]),
    ("ListCases", &[SUPERVISOR, HALL_MANAGER, INSPECTOR, CLERK, REVIEWER]),
    ("OpenInquiry", &[CLERK, HALL_MANAGER, REVIEWER]),
    ("ReferInquiry", &[CLERK, REVIEWER, HALL_MANAGER]),
    ("ListInquiries", &[SUPERVISOR, HALL_MANAGER, INSPECTOR, CLERK, REVIEWER]),
    ("LoadCalendarNotice", &[SUPERVISOR, SYSTEM]),
    ("GetCalendarCoverage", &[SUPERVISOR, HALL_MANAGER, INSPECTOR, CLERK, REVIEWER]),
];

const ROLES: &[&str] = &[CITIZEN, CLERK, REVIEWER, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM, CATALOG_ADMIN];

/// Calls `method` with an empty request (a submission and an inquiry complete enough to reach
/// the region check, naming `region`); its status code.
async fn call(c: &mut Cases, method: &str, region: &str) -> Code {
    let id = String::new();
    let region_code = region.to_string();
    let r = match method {
        "SubmitCase" => {
            let applicant = Some(cpb::Applicant { name: "王小明".into(), ..Default::default() });
            let matter_id = uuid::Uuid::new_v4().to_string();
            let req = cpb::SubmitCaseRequest { region_code, matter_id, applicant, ..Default::default() };
            c.submit_case(req).await.map(|_| ())
        }
        "GetCase" => c.get_case(cpb::GetCaseRequest { id }).await.map(|_| ()),
        "StartPreReview" => c.start_pre_review(cpb::StartPreReviewRequest::default()).await.map(|_| ()),
        "RequestCorrection" => c.request_correction(cpb::RequestCorrectionRequest::default()).await.map(|_| ()),
        "SupplyMaterials" => c.supply_materials(cpb::SupplyMaterialsRequest::default()).await.map(|_| ()),
        "AcceptCase" => c.accept_case(cpb::AcceptCaseRequest::default()).await.map(|_| ()),
        "RefuseCase" => c.refuse_case(cpb::RefuseCaseRequest::default()).await.map(|_| ()),
        "StartReview" => c.start_review(cpb::StartReviewRequest::default()).await.map(|_| ()),
        "ConcludeReviewStep" => c.conclude_review_step(cpb::ConcludeReviewStepRequest::default()).await.map(|_| ()),
        "ExtendDeadline" => c.extend_deadline(cpb::ExtendDeadlineRequest::default()).await.map(|_| ()),
        "SuspendCase" => c.suspend_case(cpb::SuspendCaseRequest::default()).await.map(|_| ()),
        "ResumeCase" => c.resume_case(cpb::ResumeCaseRequest::default()).await.map(|_| ()),
        "IssueCertificate" => c.issue_certificate(cpb::IssueCertificateRequest::default()).await.map(|_| ()),
        "DeliverCase" => c.deliver_case(cpb::DeliverCaseRequest::default()).await.map(|_| ()),
        "CloseCase" => c.close_case(cpb::CloseCaseRequest::default()).await.map(|_| ()),
        "WithdrawCase" => c.withdraw_case(cpb::WithdrawCaseRequest::default()).await.map(|_| ()),
        "SupplyToleratedMaterials" => {
            c.supply_tolerated_materials(cpb::SupplyToleratedMaterialsRequest::default()).await.map(|_| ())
        }
        "ReferCase" => c.refer_case(cpb::ReferCaseRequest::default()).await.map(|_| ()),
        "SetCaseFlags" => c.set_case_flags(cpb::SetCaseFlagsRequest::default()).await.map(|_| ()),
        "ListCases" => c.list_cases(cpb::ListCasesRequest { region_code, ..Default::default() }).await.map(|_| ()),
        "OpenInquiry" => {
            let (citizen_name, question) = ("王小明".into(), "开饭店要办什么证?".into());
            let req = cpb::OpenInquiryRequest { region_code, citizen_name, question, ..Default::default() };
            c.open_inquiry(req).await.map(|_| ())
        }
        "ReferInquiry" => c.refer_inquiry(cpb::ReferInquiryRequest::default()).await.map(|_| ()),
        "ListInquiries" => {
            c.list_inquiries(cpb::ListInquiriesRequest { region_code, ..Default::default() }).await.map(|_| ())
        }
        "LoadCalendarNotice" => c.load_calendar_notice(cpb::LoadCalendarNoticeRequest::default()).await.map(|_| ()),
        "GetCalendarCoverage" => {
            c.get_calendar_coverage(cpb::GetCalendarCoverageRequest { region_code }).await.map(|_| ())
        }
        other => panic!("no such method {other}"),
    };
    r.err().map_or(Code::Ok, |e| e.code())
}

/// Every role on every method: PERMISSION_DENIED exactly where the matrix says deny.
#[tokio::test(flavor = "multi_thread")]
async fn every_role_on_every_method() {
    let (_catalog, case) = start(&shared_brokers()).await;
    let mut wrong = Vec::new();
    for role in ROLES {
        let mut c = as_in(&case, &format!("{role}-1"), &[role], "410702").await;
        for (method, allowed) in EXPECTED {
            let denied = call(&mut c, method, "").await == Code::PermissionDenied;
            if denied == allowed.contains(role) {
                wrong.push(format!("{role} on {method}: {}", if denied { "denied" } else { "allowed" }));
            }
        }
    }
    assert!(wrong.is_empty(), "cells not as expected:\n{}", wrong.join("\n"));
}

/// Naming county 410702: its own staff and the city's may, another county's may not.
#[tokio::test(flavor = "multi_thread")]
async fn a_county_acts_in_its_own_region_and_the_city_in_its_counties() {
    let (_catalog, case) = start(&shared_brokers()).await;
    let cells = [("410702", false), ("410700", false), ("410703", true)];
    let mut wrong = Vec::new();
    for (method, role) in [
        ("SubmitCase", CLERK),
        ("ListCases", SUPERVISOR),
        ("OpenInquiry", CLERK),
        ("ListInquiries", INSPECTOR),
        ("GetCalendarCoverage", CLERK),
    ] {
        for (region, deny) in cells {
            let mut c = as_in(&case, "someone", &[role], region).await;
            let denied = call(&mut c, method, "410702").await == Code::PermissionDenied;
            if denied != deny {
                wrong.push(format!("{role} of {region} on {method} for 410702: denied {denied}"));
            }
        }
    }
    assert!(wrong.is_empty(), "cells not as expected:\n{}", wrong.join("\n"));
}
