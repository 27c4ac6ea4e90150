//! gRPC handlers: parse, authorize, call the store, map. No rules live here.

use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;
use xiaoneng_kit::auth::{self, roles};
use xiaoneng_kit::paging::PageRequest;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::AppError;
use xiaoneng_proto::catalog::v1 as pb;

use crate::cache::Cache;
use crate::domain::NewDepartment;
use crate::service;
use crate::store::matters::{self, Filter, VersionRow};
use crate::store::staff::{self, CertificateRow, NewCertificate, NewStaff, PostRow, StaffRow};
use crate::store::{self, DepartmentRow};
use xiaoneng_kit::{parse_date_field, today_cn};

pub struct CatalogApi {
    pool: PgPool,
    cache: Cache,
}

impl CatalogApi {
    pub fn new(pool: PgPool, cache: Cache) -> Self {
        CatalogApi { pool, cache }
    }
}

fn version_to_pb(r: VersionRow) -> Result<pb::MatterVersion, AppError> {
    let terms = r.terms()?;
    Ok(pb::MatterVersion {
        matter_id: r.matter_id.to_string(),
        region_code: r.region_code,
        version: r.version,
        state: match r.state.as_str() {
            "draft" => pb::VersionState::Draft,
            _ if r.retire_date.is_some() => pb::VersionState::Retired,
            _ => pb::VersionState::Published,
        } as i32,
        effective_date: r.effective_date.map(|d| d.to_string()).unwrap_or_default(),
        retire_date: r.retire_date.map(|d| d.to_string()).unwrap_or_default(),
        terms: Some(terms),
        department_name: r.department_name,
        create_time: Some(xiaoneng_kit::timestamp(r.created_at)),
        publish_time: r.published_at.map(xiaoneng_kit::timestamp),
    })
}

fn versions_to_pb(rows: Vec<VersionRow>) -> Result<Vec<pb::MatterVersion>, AppError> {
    rows.into_iter().map(version_to_pb).collect()
}

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
    if region_code.is_empty() {
        Ok("%".to_string())
    } else {
        Ok(RegionCode::parse(region_code)
            .map_err(|e| AppError::invalid("region_code", e))?
            .like_pattern())
    }
}

fn enum_filter(value: i32) -> Option<i32> {
    (value != 0).then_some(value)
}

fn admin(caller: &auth::Caller) -> Result<RegionCode, AppError> {
    caller.require_role(roles::CATALOG_ADMIN)?;
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
        let r = req.into_inner();
        let d = r
            .department
            .ok_or_else(|| AppError::invalid("department", "is required"))?;
        let new = NewDepartment::parse(&d.region_code, &d.code, &d.display_name, "department.")?;
        caller.require_role_in(roles::CATALOG_ADMIN, &new.region)?;
        let request_id = Some(r.request_id.as_str()).filter(|s| !s.is_empty());
        let row = service::create_department(&self.pool, &new, request_id).await?;
        Ok(Response::new(pb::CreateDepartmentResponse {
            department: Some(to_pb(row)),
        }))
    }

    async fn get_department(
        &self,
        req: Request<pb::GetDepartmentRequest>,
    ) -> Result<Response<pb::GetDepartmentResponse>, Status> {
        let id = parse_id(&req.get_ref().id, "id")?;
        let row = store::get_department(&self.pool, id).await?;
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
        let (rows, next_page_token) = store::list_departments(&self.pool, &like, &page).await?;
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
        let r = req.into_inner();
        let region =
            RegionCode::parse(&r.region_code).map_err(|e| AppError::invalid("region_code", e))?;
        caller.require_role_in(roles::CATALOG_ADMIN, &region)?;
        let terms = r
            .terms
            .ok_or_else(|| AppError::invalid("terms", "is required"))?;
        let request_id = Some(r.request_id.as_str()).filter(|s| !s.is_empty());
        let row = matters::create_draft(&self.pool, &region, &terms, request_id).await?;
        Ok(Response::new(pb::CreateMatterDraftResponse {
            matter: Some(version_to_pb(row)?),
        }))
    }

    async fn update_matter_draft(
        &self,
        req: Request<pb::UpdateMatterDraftRequest>,
    ) -> Result<Response<pb::UpdateMatterDraftResponse>, Status> {
        let scope = admin(&auth::caller(&req)?)?;
        let r = req.into_inner();
        let id = parse_id(&r.matter_id, "matter_id")?;
        let terms = r
            .terms
            .ok_or_else(|| AppError::invalid("terms", "is required"))?;
        let row = matters::update_draft(&self.pool, &scope, id, r.version, &terms).await?;
        Ok(Response::new(pb::UpdateMatterDraftResponse {
            matter: Some(version_to_pb(row)?),
        }))
    }

    async fn publish_matter_version(
        &self,
        req: Request<pb::PublishMatterVersionRequest>,
    ) -> Result<Response<pb::PublishMatterVersionResponse>, Status> {
        let scope = admin(&auth::caller(&req)?)?;
        let r = req.into_inner();
        let id = parse_id(&r.matter_id, "matter_id")?;
        let effective = parse_date_field(&r.effective_date, "effective_date", today_cn())?;
        let row = service::publish(&self.pool, &scope, id, r.version, effective).await?;
        self.cache.invalidate().await;
        Ok(Response::new(pb::PublishMatterVersionResponse {
            matter: Some(version_to_pb(row)?),
        }))
    }

    async fn retire_matter(
        &self,
        req: Request<pb::RetireMatterRequest>,
    ) -> Result<Response<pb::RetireMatterResponse>, Status> {
        let scope = admin(&auth::caller(&req)?)?;
        let r = req.into_inner();
        let id = parse_id(&r.matter_id, "matter_id")?;
        let on = parse_date_field(&r.retire_date, "retire_date", today_cn())?;
        if r.reason.trim().is_empty() {
            return Err(AppError::invalid("reason", "is required").into());
        }
        let row = service::retire(&self.pool, &scope, id, on, &r.reason).await?;
        self.cache.invalidate().await;
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
        let on = parse_date_field(&r.as_of, "as_of", today_cn())?;
        let resp = self
            .cache
            .get_or(&format!("matter:{id}:{on}"), || async {
                let row = matters::get_in_force(&self.pool, id, on).await?;
                Ok::<_, AppError>(pb::GetMatterResponse {
                    matter: Some(version_to_pb(row)?),
                })
            })
            .await?;
        Ok(Response::new(resp))
    }

    async fn get_matter_version(
        &self,
        req: Request<pb::GetMatterVersionRequest>,
    ) -> Result<Response<pb::GetMatterVersionResponse>, Status> {
        let scope = admin(&auth::caller(&req)?)?;
        let r = req.get_ref();
        let id = parse_id(&r.matter_id, "matter_id")?;
        let row = matters::get_version(&self.pool, id, r.version).await?;
        let region = RegionCode::parse(&row.region_code)
            .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
        if !scope.contains(&region) {
            return Err(
                AppError::not_found("matter version", format!("{id}/{}", r.version)).into(),
            );
        }
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
            on: today_cn(),
            query: None,
        };
        let (rows, next_page_token) = matters::find(&self.pool, &filter, &page).await?;
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
            on: today_cn(),
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
        let resp = self
            .cache
            .get_or(&key, || async {
                let (rows, next_page_token) = matters::find(&self.pool, &filter, &page).await?;
                Ok::<_, AppError>(pb::SearchMattersResponse {
                    matters: versions_to_pb(rows)?,
                    next_page_token,
                })
            })
            .await?;
        Ok(Response::new(resp))
    }

    async fn create_post(
        &self,
        req: Request<pb::CreatePostRequest>,
    ) -> Result<Response<pb::CreatePostResponse>, Status> {
        let scope = admin(&auth::caller(&req)?)?;
        let p = req
            .into_inner()
            .post
            .ok_or_else(|| AppError::invalid("post", "is required"))?;
        let mut v = xiaoneng_kit::Violations::new();
        v.text(&p.name, "post.name", 100);
        v.text(&p.duties, "post.duties", 2000);
        v.into_result()?;
        let dept = parse_id(&p.department_id, "post.department_id")?;
        let row =
            staff::create_post(&self.pool, &scope, dept, p.name.trim(), p.duties.trim()).await?;
        Ok(Response::new(pb::CreatePostResponse {
            post: Some(post_to_pb(row)),
        }))
    }

    async fn list_posts(
        &self,
        req: Request<pb::ListPostsRequest>,
    ) -> Result<Response<pb::ListPostsResponse>, Status> {
        let dept = parse_id(&req.get_ref().department_id, "department_id")?;
        let rows = staff::list_posts(&self.pool, dept).await?;
        Ok(Response::new(pb::ListPostsResponse {
            posts: rows.into_iter().map(post_to_pb).collect(),
        }))
    }

    async fn create_staff(
        &self,
        req: Request<pb::CreateStaffRequest>,
    ) -> Result<Response<pb::CreateStaffResponse>, Status> {
        let scope = admin(&auth::caller(&req)?)?;
        let s = req
            .into_inner()
            .staff
            .ok_or_else(|| AppError::invalid("staff", "is required"))?;
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
        };
        let row = staff::create_staff(&self.pool, &scope, &new).await?;
        Ok(Response::new(pb::CreateStaffResponse {
            staff: Some(staff_to_pb(row, vec![], vec![])),
        }))
    }

    async fn get_staff(
        &self,
        req: Request<pb::GetStaffRequest>,
    ) -> Result<Response<pb::GetStaffResponse>, Status> {
        let id = parse_id(&req.get_ref().id, "id")?;
        let (row, certs, matters) = staff::get_staff(&self.pool, id).await?;
        Ok(Response::new(pb::GetStaffResponse {
            staff: Some(staff_to_pb(row, certs, matters)),
        }))
    }

    async fn set_post_staff(
        &self,
        req: Request<pb::SetPostStaffRequest>,
    ) -> Result<Response<pb::SetPostStaffResponse>, Status> {
        let scope = admin(&auth::caller(&req)?)?;
        let r = req.get_ref();
        let post = parse_id(&r.post_id, "post_id")?;
        let a = optional_id(&r.a_staff_id, "a_staff_id")?;
        let b = optional_id(&r.b_staff_id, "b_staff_id")?;
        let row = staff::set_post_staff(&self.pool, &scope, post, a, b).await?;
        Ok(Response::new(pb::SetPostStaffResponse {
            post: Some(post_to_pb(row)),
        }))
    }

    async fn issue_certificate(
        &self,
        req: Request<pb::IssueCertificateRequest>,
    ) -> Result<Response<pb::IssueCertificateResponse>, Status> {
        let scope = admin(&auth::caller(&req)?)?;
        let c = req
            .into_inner()
            .certificate
            .ok_or_else(|| AppError::invalid("certificate", "is required"))?;
        let mut v = xiaoneng_kit::Violations::new();
        v.text(&c.number, "certificate.number", 64);
        v.text(&c.scope, "certificate.scope", 500);
        v.into_result()?;
        let issue = parse_date_field(&c.issue_date, "certificate.issue_date", today_cn())?;
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
        let row = service::issue_certificate(&self.pool, &scope, &new).await?;
        Ok(Response::new(pb::IssueCertificateResponse {
            certificate: Some(cert_to_pb(row, today_cn())),
        }))
    }

    async fn revoke_certificate(
        &self,
        req: Request<pb::RevokeCertificateRequest>,
    ) -> Result<Response<pb::RevokeCertificateResponse>, Status> {
        let scope = admin(&auth::caller(&req)?)?;
        let r = req.get_ref();
        let id = parse_id(&r.id, "id")?;
        if r.reason.trim().is_empty() {
            return Err(AppError::invalid("reason", "is required").into());
        }
        let row = service::revoke_certificate(&self.pool, &scope, id, r.reason.trim()).await?;
        Ok(Response::new(pb::RevokeCertificateResponse {
            certificate: Some(cert_to_pb(row, today_cn())),
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
        let today = today_cn();
        let (expiring, revoked) = staff::certificate_notices(
            &self.pool,
            &region_like(&r.region_code)?,
            today,
            r.expiring_within_days,
        )
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
        let scope = admin(&auth::caller(&req)?)?;
        let r = req.get_ref();
        let staff_id = parse_id(&r.staff_id, "staff_id")?;
        let matter_id = parse_id(&r.matter_id, "matter_id")?;
        staff::assign_matter(&self.pool, &scope, staff_id, matter_id, today_cn()).await?;
        let (row, certs, matters) = staff::get_staff(&self.pool, staff_id).await?;
        Ok(Response::new(pb::AssignMatterToStaffResponse {
            staff: Some(staff_to_pb(row, certs, matters)),
        }))
    }
}

fn staff_to_pb(s: StaffRow, certs: Vec<CertificateRow>, matters: Vec<Uuid>) -> pb::Staff {
    let today = today_cn();
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
