//! The catalog's writes as use cases: each runs the store's statements on one transaction and
//! enqueues the event that announces it (outbox), then commits. The API and the starter loader
//! call these; the store never writes an event.

use chrono::NaiveDate;
use sqlx::PgPool;
use uuid::Uuid;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{outbox, AppResult};

use crate::domain::{CertificateRow, DepartmentRow, NewDepartment};
use crate::events;
use crate::store;
use crate::store::matters::{self, VersionRow};
use crate::store::staff::{self, NewCertificate};

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
