//! The gRPC adapter: each handler checks the caller's roles against [`AUTHORIZATION`] (the
//! public reads need no token), parses the request, calls one use case of
//! [`service::Catalog`] and maps the answer. No rules live here.

use tonic::{Request, Response, Status};
use uuid::Uuid;
use xiaoneng_kit::auth::{self, roles, Authorization};
use xiaoneng_kit::paging::PageRequest;
use xiaoneng_kit::parse_date_field;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::AppError;
use xiaoneng_proto::catalog::v1 as pb;

use crate::domain::{
    version_to_pb, versions_to_pb, CertificateRow, DepartmentRow, Filter, NewCertificate,
    NewDepartment, NewStaff, PostRow, StaffAccountRow, StaffRow,
};
use crate::service::Catalog;

/// Method → the roles that may call it; every write is the catalog administrator's, within
/// their region. The public reads (`PUBLIC_METHODS` in lib.rs) need no token and are not listed.
pub const AUTHORIZATION: Authorization = &[
    ("CreateDepartment", &[roles::CATALOG_ADMIN]),
    ("CreateMatterDraft", &[roles::CATALOG_ADMIN]),
    ("UpdateMatterDraft", &[roles::CATALOG_ADMIN]),
    ("PublishMatterVersion", &[roles::CATALOG_ADMIN]),
    ("RetireMatter", &[roles::CATALOG_ADMIN]),
    ("GetMatterVersion", &[roles::CATALOG_ADMIN]),
    ("CreatePost", &[roles::CATALOG_ADMIN]),
    ("CreateStaff", &[roles::CATALOG_ADMIN]),
    ("SetPostStaff", &[roles::CATALOG_ADMIN]),
    ("IssueCertificate", &[roles::CATALOG_ADMIN]),
    ("RevokeCertificate", &[roles::CATALOG_ADMIN]),
    ("AssignMatterToStaff", &[roles::CATALOG_ADMIN]),
    // A person's roles are for the sign-in front (a system caller) and the administrator.
    ("FindStaffAccount", &[roles::SYSTEM, roles::CATALOG_ADMIN]),
    ("ListStaffAccounts", &[roles::SYSTEM, roles::CATALOG_ADMIN]),
];

pub struct CatalogApi(pub Catalog);

fn post_to_pb(p: PostRow) -> pb::Post {
    pb::Post {
        id: p.id.to_string(),
        department_id: p.department_id.to_string(),
        region_code: p.region_code,
        name: p.name,
        duties: p.duties,
        a_staff_id: p.a_staff_id.map(|i| i.to_string()).unwrap_or_default(),
        b_staff_id: p.b_staff_id.map(|i| i.to_string()).unwrap_or_default(),
    }
}

fn cert_to_pb(c: CertificateRow, today: chrono::NaiveDate) -> pb::Certificate {
    let status = if c.revoked {
        pb::CertificateStatus::Revoked
    } else if c.expiry_date < today {
        pb::CertificateStatus::Expired
    } else {
        pb::CertificateStatus::Valid
    };
    pb::Certificate {
        id: c.id.to_string(),
        staff_id: c.staff_id.to_string(),
        region_code: c.region_code,
        number: c.number,
        scope: c.scope,
        issue_date: c.issue_date.to_string(),
        expiry_date: c.expiry_date.to_string(),
        status: status as i32,
        revoke_reason: c.revoke_reason.unwrap_or_default(),
        staff_name: c.staff_name,
    }
}

fn optional_id(id: &str, field: &str) -> Result<Option<Uuid>, AppError> {
    if id.is_empty() {
        Ok(None)
    } else {
        parse_id(id, field).map(Some)
    }
}

/// The region filter of a public read: the requested region and everything inside it.
fn region_like(region_code: &str) -> Result<String, AppError> {
    xiaoneng_kit::region::public_filter(region_code, "region_code")
}

fn enum_filter(value: i32) -> Option<i32> {
    (value != 0).then_some(value)
}

/// The caller of `req`, allowed to call `method`, and the region they act in.
fn admin<T>(req: &Request<T>, method: &str) -> Result<RegionCode, Status> {
    let caller = auth::caller(req)?;
    caller.authorize(AUTHORIZATION, method)?;
    Ok(caller.region.clone())
}

fn to_pb(d: DepartmentRow) -> pb::Department {
    pb::Department {
        id: d.id.to_string(),
        region_code: d.region_code,
        code: d.code,
        display_name: d.display_name,
        create_time: Some(xiaoneng_kit::timestamp(d.created_at)),
    }
}

fn parse_id(id: &str, field: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(id).map_err(|_| AppError::invalid(field, "must be a UUID"))
}

#[tonic::async_trait]
impl pb::catalog_service_server::CatalogService for CatalogApi {
    async fn create_department(
        &self,
        req: Request<pb::CreateDepartmentRequest>,
    ) -> Result<Response<pb::CreateDepartmentResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.authorize(AUTHORIZATION, "CreateDepartment")?;
        let r = req.into_inner();
        let d = r
            .department
            .ok_or_else(|| AppError::invalid("department", "is required"))?;
        let new = NewDepartment::parse(&d.region_code, &d.code, &d.display_name, "department.")?;
        caller.require_role_in(roles::CATALOG_ADMIN, &new.region)?;
        let request_id = Some(r.request_id.as_str()).filter(|s| !s.is_empty());
        let row = self.0.create_department(&new, request_id).await?;
        Ok(Response::new(pb::CreateDepartmentResponse {
            department: Some(to_pb(row)),
        }))
    }

    async fn get_department(
        &self,
        req: Request<pb::GetDepartmentRequest>,
    ) -> Result<Response<pb::GetDepartmentResponse>, Status> {
        let id = parse_id(&req.get_ref().id, "id")?;
        let row = self.0.department(id).await?;
        Ok(Response::new(pb::GetDepartmentResponse {
            department: Some(to_pb(row)),
        }))
    }

    async fn list_departments(
        &self,
        req: Request<pb::ListDepartmentsRequest>,
    ) -> Result<Response<pb::ListDepartmentsResponse>, Status> {
        let r = req.get_ref();
        let page = PageRequest::parse(r.page_size, &r.page_token)?;
        // Departments are public (亮牌服务): no token needed, any region may be asked for.
        let like = region_like(&r.region_code)?;
        let (rows, next_page_token) = self.0.departments(&like, &page).await?;
        Ok(Response::new(pb::ListDepartmentsResponse {
            departments: rows.into_iter().map(to_pb).collect(),
            next_page_token,
        }))
    }

    async fn create_matter_draft(
        &self,
        req: Request<pb::CreateMatterDraftRequest>,
    ) -> Result<Response<pb::CreateMatterDraftResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.authorize(AUTHORIZATION, "CreateMatterDraft")?;
        let r = req.into_inner();
        let region =
            RegionCode::parse(&r.region_code).map_err(|e| AppError::invalid("region_code", e))?;
        caller.require_role_in(roles::CATALOG_ADMIN, &region)?;
        let terms = r
            .terms
            .ok_or_else(|| AppError::invalid("terms", "is required"))?;
        let request_id = Some(r.request_id.as_str()).filter(|s| !s.is_empty());
        let row = self.0.create_draft(&region, &terms, request_id).await?;
        Ok(Response::new(pb::CreateMatterDraftResponse {
            matter: Some(version_to_pb(row)?),
        }))
    }

    async fn update_matter_draft(
        &self,
        req: Request<pb::UpdateMatterDraftRequest>,
    ) -> Result<Response<pb::UpdateMatterDraftResponse>, Status> {
        let scope = admin(&req, "UpdateMatterDraft")?;
        let r = req.into_inner();
        let id = parse_id(&r.matter_id, "matter_id")?;
        let terms = r
            .terms
            .ok_or_else(|| AppError::invalid("terms", "is required"))?;
        let row = self.0.update_draft(&scope, id, r.version, &terms).await?;
        Ok(Response::new(pb::UpdateMatterDraftResponse {
            matter: Some(version_to_pb(row)?),
        }))
    }

    async fn publish_matter_version(
        &self,
        req: Request<pb::PublishMatterVersionRequest>,
    ) -> Result<Response<pb::PublishMatterVersionResponse>, Status> {
        let scope = admin(&req, "PublishMatterVersion")?;
        let r = req.into_inner();
        let id = parse_id(&r.matter_id, "matter_id")?;
        let effective = parse_date_field(&r.effective_date, "effective_date", self.0.today())?;
        let row = self.0.publish(&scope, id, r.version, effective).await?;
        Ok(Response::new(pb::PublishMatterVersionResponse {
            matter: Some(version_to_pb(row)?),
        }))
    }

    async fn retire_matter(
        &self,
        req: Request<pb::RetireMatterRequest>,
    ) -> Result<Response<pb::RetireMatterResponse>, Status> {
        let scope = admin(&req, "RetireMatter")?;
        let r = req.into_inner();
        let id = parse_id(&r.matter_id, "matter_id")?;
        let on = parse_date_field(&r.retire_date, "retire_date", self.0.today())?;
        if r.reason.trim().is_empty() {
            return Err(AppError::invalid("reason", "is required").into());
        }
        let row = self.0.retire(&scope, id, on, &r.reason).await?;
        Ok(Response::new(pb::RetireMatterResponse {
            matter: Some(version_to_pb(row)?),
        }))
    }

    async fn get_matter(
        &self,
        req: Request<pb::GetMatterRequest>,
    ) -> Result<Response<pb::GetMatterResponse>, Status> {
        let r = req.get_ref();
        let id = parse_id(&r.matter_id, "matter_id")?;
        let on = parse_date_field(&r.as_of, "as_of", self.0.today())?;
        let resp = self.0.matter_in_force(id, on).await?;
        Ok(Response::new(resp))
    }

    async fn get_matter_version(
        &self,
        req: Request<pb::GetMatterVersionRequest>,
    ) -> Result<Response<pb::GetMatterVersionResponse>, Status> {
        let scope = admin(&req, "GetMatterVersion")?;
        let r = req.get_ref();
        let id = parse_id(&r.matter_id, "matter_id")?;
        let row = self.0.version(&scope, id, r.version).await?;
        Ok(Response::new(pb::GetMatterVersionResponse {
            matter: Some(version_to_pb(row)?),
        }))
    }

    async fn list_matters(
        &self,
        req: Request<pb::ListMattersRequest>,
    ) -> Result<Response<pb::ListMattersResponse>, Status> {
        let r = req.get_ref();
        let page = PageRequest::parse(r.page_size, &r.page_token)?;
        let filter = Filter {
            region_like: region_like(&r.region_code)?,
            department_id: optional_id(&r.department_id, "department_id")?,
            matter_type: enum_filter(r.matter_type),
            channel: enum_filter(r.channel),
            on: self.0.today(),
            query: None,
        };
        let (rows, next_page_token) = self.0.matters(&filter, &page).await?;
        Ok(Response::new(pb::ListMattersResponse {
            matters: versions_to_pb(rows)?,
            next_page_token,
        }))
    }

    async fn search_matters(
        &self,
        req: Request<pb::SearchMattersRequest>,
    ) -> Result<Response<pb::SearchMattersResponse>, Status> {
        let r = req.get_ref();
        let query = r.query.trim();
        let mut v = xiaoneng_kit::Violations::new();
        v.text(query, "query", 100);
        v.into_result()?;
        let page = PageRequest::parse(r.page_size, &r.page_token)?;
        let filter = Filter {
            region_like: region_like(&r.region_code)?,
            department_id: optional_id(&r.department_id, "department_id")?,
            matter_type: enum_filter(r.matter_type),
            channel: enum_filter(r.channel),
            on: self.0.today(),
            query: Some(query),
        };
        let key = format!(
            "search:{}:{}:{}:{}:{}:{}:{}:{}",
            filter.on,
            filter.region_like,
            r.department_id,
            r.matter_type,
            r.channel,
            page.size,
            r.page_token,
            query
        );
        let resp = self.0.search(&key, &filter, &page).await?;
        Ok(Response::new(resp))
    }

    async fn create_post(
        &self,
        req: Request<pb::CreatePostRequest>,
    ) -> Result<Response<pb::CreatePostResponse>, Status> {
        let scope = admin(&req, "CreatePost")?;
        let p = req
            .into_inner()
            .post
            .ok_or_else(|| AppError::invalid("post", "is required"))?;
        let mut v = xiaoneng_kit::Violations::new();
        v.text(&p.name, "post.name", 100);
        v.text(&p.duties, "post.duties", 2000);
        v.into_result()?;
        let dept = parse_id(&p.department_id, "post.department_id")?;
        let row = self
            .0
            .create_post(&scope, dept, p.name.trim(), p.duties.trim())
            .await?;
        Ok(Response::new(pb::CreatePostResponse {
            post: Some(post_to_pb(row)),
        }))
    }

    async fn list_posts(
        &self,
        req: Request<pb::ListPostsRequest>,
    ) -> Result<Response<pb::ListPostsResponse>, Status> {
        let dept = parse_id(&req.get_ref().department_id, "department_id")?;
        let rows = self.0.posts(dept).await?;
        Ok(Response::new(pb::ListPostsResponse {
            posts: rows.into_iter().map(post_to_pb).collect(),
        }))
    }

    async fn create_staff(
        &self,
        req: Request<pb::CreateStaffRequest>,
    ) -> Result<Response<pb::CreateStaffResponse>, Status> {
        let scope = admin(&req, "CreateStaff")?;
        let r = req.into_inner();
        let s = r
            .staff
            .ok_or_else(|| AppError::invalid("staff", "is required"))?;
        let roles = staff_roles(r.roles)?;
        let mut v = xiaoneng_kit::Violations::new();
        v.text(&s.name, "staff.name", 50);
        v.text(&s.badge_number, "staff.badge_number", 32);
        v.text(&s.title, "staff.title", 50);
        v.text(&s.main_business, "staff.main_business", 500);
        v.into_result()?;
        let new = NewStaff {
            department_id: parse_id(&s.department_id, "staff.department_id")?,
            post_id: optional_id(&s.post_id, "staff.post_id")?,
            name: s.name.trim().into(),
            badge_number: s.badge_number.trim().into(),
            title: s.title.trim().into(),
            main_business: s.main_business.trim().into(),
            trained: s.trained,
            roles,
        };
        let row = self.0.create_staff(&scope, &new).await?;
        Ok(Response::new(pb::CreateStaffResponse {
            staff: Some(staff_to_pb(row, vec![], vec![], self.0.today())),
        }))
    }

    async fn get_staff(
        &self,
        req: Request<pb::GetStaffRequest>,
    ) -> Result<Response<pb::GetStaffResponse>, Status> {
        let id = parse_id(&req.get_ref().id, "id")?;
        let (row, certs, matters) = self.0.staff(id).await?;
        Ok(Response::new(pb::GetStaffResponse {
            staff: Some(staff_to_pb(row, certs, matters, self.0.today())),
        }))
    }

    async fn find_staff_account(
        &self,
        req: Request<pb::FindStaffAccountRequest>,
    ) -> Result<Response<pb::FindStaffAccountResponse>, Status> {
        let scope = admin(&req, "FindStaffAccount")?;
        let badge = req.get_ref().badge_number.trim();
        if badge.is_empty() {
            return Err(AppError::invalid("badge_number", "is required").into());
        }
        let row = self.0.account(&scope.like_pattern(), badge).await?;
        Ok(Response::new(pb::FindStaffAccountResponse {
            account: Some(account_to_pb(row)),
        }))
    }

    async fn list_staff_accounts(
        &self,
        req: Request<pb::ListStaffAccountsRequest>,
    ) -> Result<Response<pb::ListStaffAccountsResponse>, Status> {
        let scope = admin(&req, "ListStaffAccounts")?;
        let r = req.get_ref();
        let page = PageRequest::parse(r.page_size, &r.page_token)?;
        let region = if r.region_code.is_empty() {
            scope
        } else {
            let asked = RegionCode::parse(&r.region_code)
                .map_err(|e| AppError::invalid("region_code", e))?;
            if !scope.contains(&asked) {
                return Err(AppError::PermissionDenied(format!(
                    "region {asked} is outside the caller's region {scope}"
                ))
                .into());
            }
            asked
        };
        let (rows, next_page_token) = self.0.accounts(&region.like_pattern(), &page).await?;
        Ok(Response::new(pb::ListStaffAccountsResponse {
            accounts: rows.into_iter().map(account_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn set_post_staff(
        &self,
        req: Request<pb::SetPostStaffRequest>,
    ) -> Result<Response<pb::SetPostStaffResponse>, Status> {
        let scope = admin(&req, "SetPostStaff")?;
        let r = req.get_ref();
        let post = parse_id(&r.post_id, "post_id")?;
        let a = optional_id(&r.a_staff_id, "a_staff_id")?;
        let b = optional_id(&r.b_staff_id, "b_staff_id")?;
        let row = self.0.set_post_staff(&scope, post, a, b).await?;
        Ok(Response::new(pb::SetPostStaffResponse {
            post: Some(post_to_pb(row)),
        }))
    }

    async fn issue_certificate(
        &self,
        req: Request<pb::IssueCertificateRequest>,
    ) -> Result<Response<pb::IssueCertificateResponse>, Status> {
        let scope = admin(&req, "IssueCertificate")?;
        let c = req
            .into_inner()
            .certificate
            .ok_or_else(|| AppError::invalid("certificate", "is required"))?;
        let mut v = xiaoneng_kit::Violations::new();
        v.text(&c.number, "certificate.number", 64);
        v.text(&c.scope, "certificate.scope", 500);
        v.into_result()?;
        let issue = parse_date_field(&c.issue_date, "certificate.issue_date", self.0.today())?;
        let expiry =
            chrono::NaiveDate::parse_from_str(&c.expiry_date, "%Y-%m-%d").map_err(|_| {
                AppError::invalid("certificate.expiry_date", "must be a date YYYY-MM-DD")
            })?;
        if expiry <= issue {
            return Err(AppError::invalid(
                "certificate.expiry_date",
                "must be after the issue date",
            )
            .into());
        }
        let new = NewCertificate {
            staff_id: parse_id(&c.staff_id, "certificate.staff_id")?,
            number: c.number.trim().into(),
            scope: c.scope.trim().into(),
            issue_date: issue,
            expiry_date: expiry,
        };
        let row = self.0.issue_certificate(&scope, &new).await?;
        Ok(Response::new(pb::IssueCertificateResponse {
            certificate: Some(cert_to_pb(row, self.0.today())),
        }))
    }

    async fn revoke_certificate(
        &self,
        req: Request<pb::RevokeCertificateRequest>,
    ) -> Result<Response<pb::RevokeCertificateResponse>, Status> {
        let scope = admin(&req, "RevokeCertificate")?;
        let r = req.get_ref();
        let id = parse_id(&r.id, "id")?;
        if r.reason.trim().is_empty() {
            return Err(AppError::invalid("reason", "is required").into());
        }
        let row = self
            .0
            .revoke_certificate(&scope, id, r.reason.trim())
            .await?;
        Ok(Response::new(pb::RevokeCertificateResponse {
            certificate: Some(cert_to_pb(row, self.0.today())),
        }))
    }

    async fn list_certificate_notices(
        &self,
        req: Request<pb::ListCertificateNoticesRequest>,
    ) -> Result<Response<pb::ListCertificateNoticesResponse>, Status> {
        let r = req.get_ref();
        if !(0..=3650).contains(&r.expiring_within_days) {
            return Err(AppError::invalid("expiring_within_days", "must be 0-3650").into());
        }
        let today = self.0.today();
        let (expiring, revoked) = self
            .0
            .certificate_notices(&region_like(&r.region_code)?, r.expiring_within_days)
            .await?;
        Ok(Response::new(pb::ListCertificateNoticesResponse {
            expiring: expiring.into_iter().map(|c| cert_to_pb(c, today)).collect(),
            revoked: revoked.into_iter().map(|c| cert_to_pb(c, today)).collect(),
        }))
    }

    async fn assign_matter_to_staff(
        &self,
        req: Request<pb::AssignMatterToStaffRequest>,
    ) -> Result<Response<pb::AssignMatterToStaffResponse>, Status> {
        let scope = admin(&req, "AssignMatterToStaff")?;
        let r = req.get_ref();
        let staff_id = parse_id(&r.staff_id, "staff_id")?;
        let matter_id = parse_id(&r.matter_id, "matter_id")?;
        let (row, certs, matters) = self.0.assign_matter(&scope, staff_id, matter_id).await?;
        Ok(Response::new(pb::AssignMatterToStaffResponse {
            staff: Some(staff_to_pb(row, certs, matters, self.0.today())),
        }))
    }
}

/// The roles a new staff record grants: clerk when none are given; each a staff role.
fn staff_roles(asked: Vec<String>) -> Result<Vec<String>, AppError> {
    if asked.is_empty() {
        return Ok(vec![roles::CLERK.to_string()]);
    }
    let mut v = xiaoneng_kit::Violations::new();
    for (i, r) in asked.iter().enumerate() {
        if !crate::domain::grantable_role(r) {
            v.add(format!("roles[{i}]"), "is no role a staff member holds");
        }
    }
    v.into_result()?;
    let mut roles = asked;
    roles.sort();
    roles.dedup();
    Ok(roles)
}

fn account_to_pb(a: StaffAccountRow) -> pb::StaffAccount {
    let roles = a.staff.roles.clone();
    pb::StaffAccount {
        staff: Some(staff_to_pb(a.staff, vec![], vec![], chrono::NaiveDate::MIN)),
        roles,
        department_code: a.department_code,
    }
}

fn staff_to_pb(
    s: StaffRow,
    certs: Vec<CertificateRow>,
    matters: Vec<Uuid>,
    today: chrono::NaiveDate,
) -> pb::Staff {
    pb::Staff {
        id: s.id.to_string(),
        department_id: s.department_id.to_string(),
        region_code: s.region_code,
        post_id: s.post_id.map(|p| p.to_string()).unwrap_or_default(),
        name: s.name,
        badge_number: s.badge_number,
        title: s.title,
        main_business: s.main_business,
        trained: s.trained,
        certificates: certs.into_iter().map(|c| cert_to_pb(c, today)).collect(),
        assigned_matter_ids: matters.into_iter().map(|m| m.to_string()).collect(),
    }
}
