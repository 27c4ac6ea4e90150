//! gRPC handlers: parse, authorize, call the store, map. No rules live here.

use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;
use xiaoneng_kit::auth::{self, roles};
use xiaoneng_kit::paging::PageRequest;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::AppError;
use xiaoneng_proto::catalog::v1 as pb;

use crate::domain::NewDepartment;
use crate::store::{self, DepartmentRow};

pub struct CatalogApi {
    pool: PgPool,
}

impl CatalogApi {
    pub fn new(pool: PgPool) -> Self {
        CatalogApi { pool }
    }
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
        let d = r.department.ok_or_else(|| AppError::invalid("department", "is required"))?;
        let new = NewDepartment::parse(&d.region_code, &d.code, &d.display_name, "department.")?;
        caller.require_role_in(roles::CATALOG_ADMIN, &new.region)?;
        let request_id = Some(r.request_id.as_str()).filter(|s| !s.is_empty());
        let row = store::create_department(&self.pool, &new, request_id).await?;
        Ok(Response::new(pb::CreateDepartmentResponse { department: Some(to_pb(row)) }))
    }

    async fn get_department(
        &self,
        req: Request<pb::GetDepartmentRequest>,
    ) -> Result<Response<pb::GetDepartmentResponse>, Status> {
        let id = parse_id(&req.get_ref().id, "id")?;
        let row = store::get_department(&self.pool, id).await?;
        Ok(Response::new(pb::GetDepartmentResponse { department: Some(to_pb(row)) }))
    }

    async fn list_departments(
        &self,
        req: Request<pb::ListDepartmentsRequest>,
    ) -> Result<Response<pb::ListDepartmentsResponse>, Status> {
        let r = req.get_ref();
        let page = PageRequest::parse(r.page_size, &r.page_token)?;
        // Departments are public (亮牌服务): no token needed, any region may be asked for.
        let like = if r.region_code.is_empty() {
            "%".to_string()
        } else {
            RegionCode::parse(&r.region_code).map_err(|e| AppError::invalid("region_code", e))?.like_pattern()
        };
        let (rows, next_page_token) = store::list_departments(&self.pool, &like, &page).await?;
        Ok(Response::new(pb::ListDepartmentsResponse {
            departments: rows.into_iter().map(to_pb).collect(),
            next_page_token,
        }))
    }
}
