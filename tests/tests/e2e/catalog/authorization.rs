//! The catalog's authorization as a matrix: every method × every role (and no token at all),
//! and the region cells of a write, each with the expected allow or deny written out here —
//! not read from the service's table.

use tonic::Code;
use xiaoneng_e2e::proto::catalog::v1 as pb;
use xiaoneng_e2e::proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use xiaoneng_e2e::{channel, shared_brokers, token, ServiceProc};
use xiaoneng_kit::auth::roles::*;
use xiaoneng_kit::ServiceKind;

use super::Client;

const ROLES: &[&str] = &[CITIZEN, CLERK, REVIEWER, HALL_MANAGER, SUPERVISOR, INSPECTOR, SYSTEM, CATALOG_ADMIN];

/// Method → who may call it: `None` is public (no token needed), `Some` lists the roles.
const EXPECTED: &[(&str, Option<&[&str]>)] = &[
    ("CreateDepartment", Some(&[CATALOG_ADMIN])),
    ("GetDepartment", None),
    ("ListDepartments", None),
    ("CreateMatterDraft", Some(&[CATALOG_ADMIN])),
    ("UpdateMatterDraft", Some(&[CATALOG_ADMIN])),
    ("PublishMatterVersion", Some(&[CATALOG_ADMIN])),
    ("RetireMatter", Some(&[CATALOG_ADMIN])),
    ("GetMatter", None),
    ("GetMatterVersion", Some(&[CATALOG_ADMIN])),
    ("ListMatters", None),
    ("SearchMatters", None),
    ("CreatePost", Some(&[CATALOG_ADMIN])),
    ("ListPosts", None),
    ("CreateStaff", Some(&[CATALOG_ADMIN])),
    ("GetStaff", None),
    ("SetPostStaff", Some(&[CATALOG_ADMIN])),
    ("IssueCertificate", Some(&[CATALOG_ADMIN])),
    ("RevokeCertificate", Some(&[CATALOG_ADMIN])),
    ("ListCertificateNotices", None),
    ("AssignMatterToStaff", Some(&[CATALOG_ADMIN])),
];

/// Calls `method` with an empty request (a department naming `region` for the create); its
/// status code.
async fn call(c: &mut Client, method: &str, region: &str) -> Code {
    let r = match method {
        "CreateDepartment" => {
            let department = Some(pb::Department {
                region_code: region.into(),
                code: format!("D{}", uuid::Uuid::new_v4().simple()),
                display_name: "市场监管局".into(),
                ..Default::default()
            });
            c.create_department(pb::CreateDepartmentRequest { department, ..Default::default() }).await.map(|_| ())
        }
        "GetDepartment" => c.get_department(pb::GetDepartmentRequest::default()).await.map(|_| ()),
        "ListDepartments" => c.list_departments(pb::ListDepartmentsRequest::default()).await.map(|_| ()),
        "CreateMatterDraft" => c.create_matter_draft(pb::CreateMatterDraftRequest::default()).await.map(|_| ()),
        "UpdateMatterDraft" => c.update_matter_draft(pb::UpdateMatterDraftRequest::default()).await.map(|_| ()),
        "PublishMatterVersion" => {
            c.publish_matter_version(pb::PublishMatterVersionRequest::default()).await.map(|_| ())
        }
        "RetireMatter" => c.retire_matter(pb::RetireMatterRequest::default()).await.map(|_| ()),
        "GetMatter" => c.get_matter(pb::GetMatterRequest::default()).await.map(|_| ()),
        "GetMatterVersion" => c.get_matter_version(pb::GetMatterVersionRequest::default()).await.map(|_| ()),
        "ListMatters" => c.list_matters(pb::ListMattersRequest::default()).await.map(|_| ()),
        "SearchMatters" => c.search_matters(pb::SearchMattersRequest::default()).await.map(|_| ()),
        "CreatePost" => c.create_post(pb::CreatePostRequest::default()).await.map(|_| ()),
        "ListPosts" => c.list_posts(pb::ListPostsRequest::default()).await.map(|_| ()),
        "CreateStaff" => c.create_staff(pb::CreateStaffRequest::default()).await.map(|_| ()),
        "GetStaff" => c.get_staff(pb::GetStaffRequest::default()).await.map(|_| ()),
        "SetPostStaff" => c.set_post_staff(pb::SetPostStaffRequest::default()).await.map(|_| ()),
        "IssueCertificate" => c.issue_certificate(pb::IssueCertificateRequest::default()).await.map(|_| ()),
        "RevokeCertificate" => c.revoke_certificate(pb::RevokeCertificateRequest::default()).await.map(|_| ()),
        "ListCertificateNotices" => {
            c.list_certificate_notices(pb::ListCertificateNoticesRequest::default()).await.map(|_| ())
        }
        "AssignMatterToStaff" => c.assign_matter_to_staff(pb::AssignMatterToStaffRequest::default()).await.map(|_| ()),
        other => panic!("no such method {other}"),
    };
    r.err().map_or(Code::Ok, |e| e.code())
}

/// Every role, and no token, on every method: refused exactly where the matrix says deny
/// (PERMISSION_DENIED for a role, UNAUTHENTICATED without a token).
#[tokio::test(flavor = "multi_thread")]
async fn every_role_and_no_token_on_every_method() {
    let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
    let mut wrong = Vec::new();
    let anonymous = std::iter::once(None);
    for role in anonymous.chain(ROLES.iter().map(Some)) {
        let token = role.map(|r| token(&format!("{r}-1"), &[r], "410702"));
        let mut c = CatalogServiceClient::new(channel(&catalog.addr(), token.as_deref()).await);
        for (method, allowed) in EXPECTED {
            let code = call(&mut c, method, "410702").await;
            let denied = matches!(code, Code::PermissionDenied | Code::Unauthenticated);
            let expected_allowed = match (allowed, role) {
                (None, _) => true,
                (Some(roles), Some(r)) => roles.contains(r),
                (Some(_), None) => false,
            };
            if denied == expected_allowed {
                wrong.push(format!("{role:?} on {method}: {code:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "cells not as expected:\n{}", wrong.join("\n"));
}

/// A department of county 410702: its own administrator and the city's create it, another
/// county's may not.
#[tokio::test(flavor = "multi_thread")]
async fn an_administrator_writes_in_their_own_region_and_the_city_in_its_counties() {
    let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
    let cells = [("410702", Code::Ok), ("410700", Code::Ok), ("410703", Code::PermissionDenied)];
    let mut wrong = Vec::new();
    for (region, expected) in cells {
        let token = token("admin", &[CATALOG_ADMIN], region);
        let mut c = CatalogServiceClient::new(channel(&catalog.addr(), Some(&token)).await);
        let got = call(&mut c, "CreateDepartment", "410702").await;
        if got != expected {
            wrong.push(format!("administrator of {region}: {got:?}, expected {expected:?}"));
        }
    }
    assert!(wrong.is_empty(), "cells not as expected:\n{}", wrong.join("\n"));
}
