//! Catalog persistence: SQL with typed rows. Writes run on the caller's transaction; the
//! service commits each with its events (outbox).

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;
use xiaoneng_kit::paging::PageRequest;
use xiaoneng_kit::{AppError, AppResult};

use crate::domain::NewDepartment;

pub use crate::domain::DepartmentRow;

const COLUMNS: &str = "id, region_code, code, display_name, created_at";

/// Creates a department; a repeated `request_id` returns the department created the first
/// time. The flag tells whether this call created it.
pub async fn create_department(
    tx: &mut PgConnection,
    d: &NewDepartment,
    request_id: Option<&str>,
) -> AppResult<(DepartmentRow, bool)> {
    let inserted: Option<DepartmentRow> = sqlx::query_as(&format!(
        "INSERT INTO departments (id, region_code, code, display_name, request_id) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (request_id) WHERE request_id IS NOT NULL DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(d.region.as_str())
    .bind(&d.code)
    .bind(&d.display_name)
    .bind(request_id)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(match inserted {
        Some(row) => (row, true),
        None => {
            let row = sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM departments WHERE request_id = $1"
            ))
            .bind(request_id)
            .fetch_one(&mut *tx)
            .await?;
            (row, false)
        }
    })
}

pub async fn get_department(pool: &PgPool, id: Uuid) -> AppResult<DepartmentRow> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM departments WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| AppError::not_found("department", id.to_string()))
}

/// Departments whose region matches `region_like` (a `LIKE` pattern), in creation order.
pub async fn list_departments(
    pool: &PgPool,
    region_like: &str,
    page: &PageRequest,
) -> AppResult<(Vec<DepartmentRow>, String)> {
    let after = match &page.after {
        Some(c) => {
            Some(Uuid::parse_str(c).map_err(|_| AppError::invalid("page_token", "is not valid"))?)
        }
        None => None,
    };
    let rows: Vec<DepartmentRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM departments WHERE region_code LIKE $1 AND ($2::uuid IS NULL OR id > $2)
         ORDER BY id LIMIT $3"
    ))
    .bind(region_like)
    .bind(after)
    .bind(page.size + 1)
    .fetch_all(pool)
    .await?;
    Ok(page.finish(rows, |r| r.id.to_string()))
}

pub mod matters;
pub mod staff;

/// The catalog's gauges: valid enforcement certificates expiring within 30 days.
pub const GAUGES: &[xiaoneng_kit::gauges::GaugeQuery] = &[xiaoneng_kit::gauges::GaugeQuery {
    metric: "catalog_certificates_expiring",
    labels: &["region"],
    sql: "SELECT region_code, count(*)::float8 FROM certificates
          WHERE revoked_at IS NULL AND expiry_date BETWEEN (now() AT TIME ZONE 'Asia/Shanghai')::date AND (now() AT TIME ZONE 'Asia/Shanghai')::date + 30 GROUP BY 1",
}];
