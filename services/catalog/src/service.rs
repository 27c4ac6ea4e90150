//! The catalog's writes as use cases: each runs the store's statements on one transaction and
//! enqueues the event that announces it (outbox), then commits. The API and the starter loader
//! call these; the store never writes an event.

use chrono::NaiveDate;
use sqlx::PgPool;
use uuid::Uuid;
use xiaoneng_kit::clock::BusinessClock;
use xiaoneng_kit::paging::PageRequest;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{outbox, AppError, AppResult};
use xiaoneng_proto::catalog::v1::{self as pb, MatterTerms};

use crate::cache::Cache;
use crate::domain::{
    version_to_pb, versions_to_pb, CertificateRow, DepartmentRow, Filter, NewCertificate,
    NewDepartment, NewStaff, PostRow, StaffAccountRow, StaffRow, VersionRow,
};
use crate::events;
use crate::store;
use crate::store::matters;
use crate::store::staff;

/// Creates a department and announces it; a repeated `request_id` returns the first answer
/// and announces nothing.
pub async fn create_department(
    pool: &PgPool,
    d: &NewDepartment,
    request_id: Option<&str>,
) -> AppResult<DepartmentRow> {
    let mut tx = pool.begin().await?;
    let (row, created) = store::create_department(&mut tx, d, request_id).await?;
    if created {
        outbox::enqueue(&mut tx, &events::department_created(&row)?).await?;
    }
    tx.commit().await?;
    Ok(row)
}

/// Publishes a draft from `effective` and announces it.
pub async fn publish(
    pool: &PgPool,
    scope: &RegionCode,
    matter_id: Uuid,
    version: i32,
    effective: NaiveDate,
) -> AppResult<VersionRow> {
    let mut tx = pool.begin().await?;
    let (row, region, terms) =
        matters::publish(&mut tx, scope, matter_id, version, effective).await?;
    outbox::enqueue(
        &mut tx,
        &events::matter_published(matter_id, &region, version, &terms, effective),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Retires a matter from `on` and announces it.
pub async fn retire(
    pool: &PgPool,
    scope: &RegionCode,
    matter_id: Uuid,
    on: NaiveDate,
    reason: &str,
) -> AppResult<VersionRow> {
    let mut tx = pool.begin().await?;
    let (row, region) = matters::retire(&mut tx, scope, matter_id, on, reason).await?;
    outbox::enqueue(
        &mut tx,
        &events::matter_retired(matter_id, &region, on, reason),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn issue_certificate(
    pool: &PgPool,
    scope: &RegionCode,
    c: &NewCertificate,
) -> AppResult<CertificateRow> {
    let mut tx = pool.begin().await?;
    let (row, region) = staff::issue_certificate(&mut tx, scope, c).await?;
    outbox::enqueue(&mut tx, &events::certificate_changed(&row, &region)).await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn revoke_certificate(
    pool: &PgPool,
    scope: &RegionCode,
    id: Uuid,
    reason: &str,
) -> AppResult<CertificateRow> {
    let mut tx = pool.begin().await?;
    let (row, region) = staff::revoke_certificate(&mut tx, scope, id, reason).await?;
    outbox::enqueue(&mut tx, &events::certificate_changed(&row, &region)).await?;
    tx.commit().await?;
    Ok(row)
}

/// The catalog's use cases over its pool, its guide cache and the business clock: the API
/// calls these and nothing else.
pub struct Catalog {
    pub pool: PgPool,
    cache: Cache,
    clock: BusinessClock,
}

impl Catalog {
    pub fn new(pool: PgPool, cache: Cache, clock: BusinessClock) -> Self {
        Catalog { pool, cache, clock }
    }

    /// Today by the business clock.
    pub fn today(&self) -> NaiveDate {
        self.clock.today()
    }

    pub async fn create_department(
        &self,
        d: &NewDepartment,
        request_id: Option<&str>,
    ) -> AppResult<DepartmentRow> {
        create_department(&self.pool, d, request_id).await
    }

    pub async fn department(&self, id: Uuid) -> AppResult<DepartmentRow> {
        store::get_department(&self.pool, id).await
    }

    pub async fn departments(
        &self,
        like: &str,
        page: &PageRequest,
    ) -> AppResult<(Vec<DepartmentRow>, String)> {
        store::list_departments(&self.pool, like, page).await
    }

    pub async fn create_draft(
        &self,
        region: &RegionCode,
        terms: &MatterTerms,
        request_id: Option<&str>,
    ) -> AppResult<VersionRow> {
        matters::create_draft(&self.pool, region, terms, request_id).await
    }

    pub async fn update_draft(
        &self,
        scope: &RegionCode,
        id: Uuid,
        version: i32,
        terms: &MatterTerms,
    ) -> AppResult<VersionRow> {
        matters::update_draft(&self.pool, scope, id, version, terms).await
    }

    /// Publishes a draft; cached guides are dropped.
    pub async fn publish(
        &self,
        scope: &RegionCode,
        id: Uuid,
        version: i32,
        effective: NaiveDate,
    ) -> AppResult<VersionRow> {
        let row = publish(&self.pool, scope, id, version, effective).await?;
        self.cache.invalidate().await;
        Ok(row)
    }

    /// Retires a matter; cached guides are dropped.
    pub async fn retire(
        &self,
        scope: &RegionCode,
        id: Uuid,
        on: NaiveDate,
        reason: &str,
    ) -> AppResult<VersionRow> {
        let row = retire(&self.pool, scope, id, on, reason).await?;
        self.cache.invalidate().await;
        Ok(row)
    }

    /// The guide in force on `on` (public, cached until the next publication or retirement).
    pub async fn matter_in_force(
        &self,
        id: Uuid,
        on: NaiveDate,
    ) -> AppResult<pb::GetMatterResponse> {
        self.cache
            .get_or(&format!("matter:{id}:{on}"), || async {
                let row = matters::get_in_force(&self.pool, id, on).await?;
                Ok::<_, AppError>(pb::GetMatterResponse {
                    matter: Some(version_to_pb(row)?),
                })
            })
            .await
    }

    /// One version of a matter of the caller's scope (drafts included).
    pub async fn version(
        &self,
        scope: &RegionCode,
        id: Uuid,
        version: i32,
    ) -> AppResult<VersionRow> {
        let row = matters::get_version(&self.pool, id, version).await?;
        let region = RegionCode::parse(&row.region_code)
            .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
        if !scope.contains(&region) {
            return Err(AppError::not_found(
                "matter version",
                format!("{id}/{version}"),
            ));
        }
        Ok(row)
    }

    /// Matters in force matching `filter`, one page.
    pub async fn matters(
        &self,
        filter: &Filter<'_>,
        page: &PageRequest,
    ) -> AppResult<(Vec<VersionRow>, String)> {
        matters::find(&self.pool, filter, page).await
    }

    /// A search (public, cached under `key` until the next publication or retirement).
    pub async fn search(
        &self,
        key: &str,
        filter: &Filter<'_>,
        page: &PageRequest,
    ) -> AppResult<pb::SearchMattersResponse> {
        self.cache
            .get_or(key, || async {
                let (rows, next_page_token) = matters::find(&self.pool, filter, page).await?;
                Ok::<_, AppError>(pb::SearchMattersResponse {
                    matters: versions_to_pb(rows)?,
                    next_page_token,
                })
            })
            .await
    }

    pub async fn create_post(
        &self,
        scope: &RegionCode,
        dept: Uuid,
        name: &str,
        duties: &str,
    ) -> AppResult<PostRow> {
        staff::create_post(&self.pool, scope, dept, name, duties).await
    }

    pub async fn posts(&self, dept: Uuid) -> AppResult<Vec<PostRow>> {
        staff::list_posts(&self.pool, dept).await
    }

    pub async fn create_staff(&self, scope: &RegionCode, s: &NewStaff) -> AppResult<StaffRow> {
        staff::create_staff(&self.pool, scope, s).await
    }

    /// The one sign-in account `badge` names inside `like`; NOT_FOUND when none, or when two
    /// counties of a city hold the badge (the person signs in at their county).
    pub async fn account(&self, like: &str, badge: &str) -> AppResult<StaffAccountRow> {
        let mut rows = staff::accounts_by_badge(&self.pool, like, badge).await?;
        match (rows.pop(), rows.is_empty()) {
            (Some(one), true) => Ok(one),
            _ => Err(AppError::not_found("staff account", badge)),
        }
    }

    pub async fn accounts(
        &self,
        like: &str,
        page: &PageRequest,
    ) -> AppResult<(Vec<StaffAccountRow>, String)> {
        staff::list_accounts(&self.pool, like, page).await
    }

    /// A staff member with their certificates and assigned matters (亮牌服务: public).
    pub async fn staff(&self, id: Uuid) -> AppResult<(StaffRow, Vec<CertificateRow>, Vec<Uuid>)> {
        staff::get_staff(&self.pool, id).await
    }

    pub async fn set_post_staff(
        &self,
        scope: &RegionCode,
        post: Uuid,
        a: Option<Uuid>,
        b: Option<Uuid>,
    ) -> AppResult<PostRow> {
        staff::set_post_staff(&self.pool, scope, post, a, b).await
    }

    pub async fn issue_certificate(
        &self,
        scope: &RegionCode,
        c: &NewCertificate,
    ) -> AppResult<CertificateRow> {
        issue_certificate(&self.pool, scope, c).await
    }

    pub async fn revoke_certificate(
        &self,
        scope: &RegionCode,
        id: Uuid,
        reason: &str,
    ) -> AppResult<CertificateRow> {
        revoke_certificate(&self.pool, scope, id, reason).await
    }

    /// Certificates expiring within `days` of today, and revoked ones, in a region scope.
    pub async fn certificate_notices(
        &self,
        like: &str,
        days: i32,
    ) -> AppResult<(Vec<CertificateRow>, Vec<CertificateRow>)> {
        staff::certificate_notices(&self.pool, like, self.today(), days).await
    }

    /// Assigns a matter to a staff member; their card as it now reads.
    pub async fn assign_matter(
        &self,
        scope: &RegionCode,
        staff_id: Uuid,
        matter_id: Uuid,
    ) -> AppResult<(StaffRow, Vec<CertificateRow>, Vec<Uuid>)> {
        let today = self.today();
        let mut tx = self.pool.begin().await?;
        if let Some(a) = staff::assign_matter(&mut tx, scope, staff_id, matter_id, today).await? {
            let e = events::matter_assigned(staff_id, matter_id, &a, today);
            outbox::enqueue(&mut tx, &e).await?;
        }
        tx.commit().await?;
        staff::get_staff(&self.pool, staff_id).await
    }
}
