//! The evaluation service's authorization as a matrix: every method × every role, and the
//! region cells, each with the expected allow or deny written out here — not read from the
//! service's table.

use tonic::Code;
use xiaoneng_e2e::proto::evaluation::v1 as epb;
use xiaoneng_e2e::{shared_brokers, ServiceProc};
use xiaoneng_kit::auth::roles::*;
use xiaoneng_kit::ServiceKind;

use super::Ratings;

/// Method → the roles that may call it.
const EXPECTED: &[(&str, &[&str])] = &[
    ("GetInvitation", &[CITIZEN, CLERK, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM]),
    ("ListInvitations", &[CITIZEN, CLERK, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM]),
    ("SubmitRating", &[CITIZEN, SYSTEM]),
    ("SubmitRatings", &[SYSTEM]),
    ("AddFollowUp", &[CITIZEN, SYSTEM]),
    ("GetRating", &[CITIZEN, CLERK, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM]),
    ("AdvanceLoop", &[CITIZEN, CLERK, HALL_MANAGER, SUPERVISOR, SYSTEM]),
    ("AppealRating", &[CLERK, HALL_MANAGER]),
    ("DecideAppeal", &[SUPERVISOR]),
    ("ListManipulationFlags", &[SUPERVISOR, INSPECTOR]),
    ("GetStatistics", &[HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM]),
    // Public: anyone, with a token of any role or none (masked).
    ("ListPublicRatings", &[CITIZEN, CLERK, REVIEWER, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM, CATALOG_ADMIN]),
];

const ROLES: &[&str] = &[CITIZEN, CLERK, REVIEWER, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM, CATALOG_ADMIN];

async fn as_role(e: &ServiceProc, role: &str, region: &str) -> Ratings {
    super::as_in(e, &format!("{role}-1"), &[role], region).await
}

/// Calls `method` with an empty request (statistics and flags naming `region`); its code.
async fn call(c: &mut Ratings, method: &str, region: &str) -> Code {
    let region_code = region.to_string();
    let r = match method {
        "GetInvitation" => c.get_invitation(epb::GetInvitationRequest::default()).await.map(|_| ()),
        "ListInvitations" => {
            c.list_invitations(epb::ListInvitationsRequest { region_code, ..Default::default() }).await.map(|_| ())
        }
        "SubmitRating" => c.submit_rating(epb::SubmitRatingRequest::default()).await.map(|_| ()),
        "SubmitRatings" => c.submit_ratings(epb::SubmitRatingsRequest::default()).await.map(|_| ()),
        "ListPublicRatings" => {
            let region_code = "410702".to_string();
            c.list_public_ratings(epb::ListPublicRatingsRequest { region_code, ..Default::default() }).await.map(|_| ())
        }
        "AddFollowUp" => c.add_follow_up(epb::AddFollowUpRequest::default()).await.map(|_| ()),
        "GetRating" => c.get_rating(epb::GetRatingRequest::default()).await.map(|_| ()),
        "AdvanceLoop" => c.advance_loop(epb::AdvanceLoopRequest::default()).await.map(|_| ()),
        "AppealRating" => c.appeal_rating(epb::AppealRatingRequest::default()).await.map(|_| ()),
        "DecideAppeal" => c.decide_appeal(epb::DecideAppealRequest::default()).await.map(|_| ()),
        "ListManipulationFlags" => {
            c.list_manipulation_flags(epb::ListManipulationFlagsRequest { region_code }).await.map(|_| ())
        }
        "GetStatistics" => {
            let dimension = epb::Dimension::Region as i32;
            let req = epb::GetStatisticsRequest { region_code, dimension, ..Default::default() };
            c.get_statistics(req).await.map(|_| ())
        }
        other => panic!("no such method {other}"),
    };
    r.err().map_or(Code::Ok, |e| e.code())
}

/// Every role on every method: PERMISSION_DENIED exactly where the matrix says deny.
#[tokio::test(flavor = "multi_thread")]
async fn every_role_on_every_method() {
    let e = ServiceProc::start(ServiceKind::Evaluation, &shared_brokers()).await;
    let mut wrong = Vec::new();
    for role in ROLES {
        let mut c = as_role(&e, role, "410702").await;
        for (method, allowed) in EXPECTED {
            let denied = call(&mut c, method, "").await == Code::PermissionDenied;
            if denied == allowed.contains(role) {
                wrong.push(format!("{role} on {method}: {}", if denied { "denied" } else { "allowed" }));
            }
        }
    }
    assert!(wrong.is_empty(), "cells not as expected:\n{}", wrong.join("\n"));
}

/// Statistics and flags naming county 410702: its own office and the city's may, another
/// county's may not.
#[tokio::test(flavor = "multi_thread")]
async fn a_county_reads_its_own_region_and_the_city_its_counties() {
    let e = ServiceProc::start(ServiceKind::Evaluation, &shared_brokers()).await;
    let mut wrong = Vec::new();
    for method in ["GetStatistics", "ListManipulationFlags"] {
        for (region, deny) in [("410702", false), ("410700", false), ("410703", true)] {
            let mut c = as_role(&e, SUPERVISOR, region).await;
            let denied = call(&mut c, method, "410702").await == Code::PermissionDenied;
            if denied != deny {
                wrong.push(format!("supervisor of {region} on {method} for 410702: denied {denied}"));
            }
        }
    }
    assert!(wrong.is_empty(), "cells not as expected:\n{}", wrong.join("\n"));
}
