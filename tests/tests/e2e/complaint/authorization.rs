//! The complaint service's authorization as a matrix: every method × every role, and the
//! region cells, each with the expected allow or deny written out here — not read from the
//! service's table.

use tonic::Code;
use xiaoneng_e2e::proto::complaint::v1 as cpb;
use xiaoneng_e2e::{shared_brokers, ServiceProc};
use xiaoneng_kit::auth::roles::*;
use xiaoneng_kit::ServiceKind;

use super::Complaints;

/// Method → the roles that may call it.
const EXPECTED: &[(&str, &[&str])] = &[
    ("FileComplaint", &[CITIZEN, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM]),
    ("GetComplaint", &[CITIZEN, CLERK, REVIEWER, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM]),
    ("ListComplaints", &[CITIZEN, CLERK, REVIEWER, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM]),
    ("AdvanceComplaint", &[HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM]),
    ("ReopenComplaint", &[CITIZEN, SYSTEM]),
    ("ExtendComplaint", &[SUPERVISOR, INSPECTOR]),
    ("RevealComplainant", &[INSPECTOR]),
    ("ListIdentityReads", &[SUPERVISOR, INSPECTOR]),
    // Public: the negative list, with any token or none.
    ("ListCategories", &[CITIZEN, CLERK, REVIEWER, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM, CATALOG_ADMIN]),
];

const ROLES: &[&str] = &[CITIZEN, CLERK, REVIEWER, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM, CATALOG_ADMIN];

/// Calls `method` with an (almost) empty request; its code.
async fn call(c: &mut Complaints, method: &str, id: &str) -> Code {
    let id = id.to_string();
    let r = match method {
        "FileComplaint" => c.file_complaint(cpb::FileComplaintRequest::default()).await.map(|_| ()),
        "GetComplaint" => c.get_complaint(cpb::GetComplaintRequest { id }).await.map(|_| ()),
        "ListComplaints" => c.list_complaints(cpb::ListComplaintsRequest::default()).await.map(|_| ()),
        "AdvanceComplaint" => {
            c.advance_complaint(cpb::AdvanceComplaintRequest { id, ..Default::default() }).await.map(|_| ())
        }
        "ReopenComplaint" => {
            c.reopen_complaint(cpb::ReopenComplaintRequest { id, reason: String::new() }).await.map(|_| ())
        }
        "ExtendComplaint" => {
            c.extend_complaint(cpb::ExtendComplaintRequest { id, reason: String::new() }).await.map(|_| ())
        }
        "RevealComplainant" => {
            c.reveal_complainant(cpb::RevealComplainantRequest { id, purpose: String::new() }).await.map(|_| ())
        }
        "ListIdentityReads" => c.list_identity_reads(cpb::ListIdentityReadsRequest::default()).await.map(|_| ()),
        "ListCategories" => {
            c.list_categories(cpb::ListCategoriesRequest { region_code: "410702".into() }).await.map(|_| ())
        }
        other => panic!("no such method {other}"),
    };
    r.err().map_or(Code::Ok, |e| e.code())
}

/// Every role on every method: PERMISSION_DENIED exactly where the matrix says deny.
#[tokio::test(flavor = "multi_thread")]
async fn every_role_on_every_method() {
    let e = ServiceProc::start(ServiceKind::Complaint, &shared_brokers()).await;
    let mut wrong = Vec::new();
    for role in ROLES {
        let mut c = super::as_in(&e, &format!("{role}-1"), &[role], "410702").await;
        for (method, allowed) in EXPECTED {
            let denied = call(&mut c, method, "").await == Code::PermissionDenied;
            if denied == allowed.contains(role) {
                wrong.push(format!("{role} on {method}: {}", if denied { "denied" } else { "allowed" }));
            }
        }
    }
    assert!(wrong.is_empty(), "cells not as expected:\n{}", wrong.join("\n"));
}

/// A complaint of county 410702: its own staff and the city's read it; another county's
/// staff get NOT_FOUND (it does not exist for them), another citizen PERMISSION_DENIED.
#[tokio::test(flavor = "multi_thread")]
async fn a_county_reads_its_own_complaints_and_the_city_its_counties() {
    let e = ServiceProc::start(ServiceKind::Complaint, &shared_brokers()).await;
    let mut citizen = super::as_in(&e, "citizen-liu", &[CITIZEN], "410702").await;
    let c = citizen.file_complaint(super::filing("absence", "ZH09", "窗口无人")).await.unwrap().into_inner();
    let id = c.complaint.unwrap().id;
    let mut wrong = Vec::new();
    for (who, roles, region, want) in [
        ("own-county", &[SUPERVISOR][..], "410702", Code::Ok),
        ("city", &[SUPERVISOR][..], "410700", Code::Ok),
        ("other-county", &[SUPERVISOR][..], "410703", Code::NotFound),
        ("inspector-other-county", &[INSPECTOR][..], "410703", Code::NotFound),
        ("citizen-liu", &[CITIZEN][..], "410702", Code::Ok),
        ("citizen-other", &[CITIZEN][..], "410702", Code::PermissionDenied),
    ] {
        let mut c = super::as_in(&e, who, roles, region).await;
        let got = call(&mut c, "GetComplaint", &id).await;
        if got != want {
            wrong.push(format!("{who} of {region}: {got:?}, expected {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "cells not as expected:\n{}", wrong.join("\n"));
}
