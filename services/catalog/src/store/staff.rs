//! Posts (岗位), staff (工牌), law-enforcement certificates (持证上岗) and assignments.

use crate::domain::{Assigned, Reason};
use chrono::NaiveDate;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{AppError, AppResult};

pub use crate::domain::{
    CertificateRow, NewCertificate, NewStaff, PostRow, StaffAccountRow, StaffRow,
};

const POST_COLS: &str = "id, department_id, region_code, name, duties, a_staff_id, b_staff_id";
const STAFF_COLS: &str =
    "id, department_id, region_code, post_id, name, badge_number, title, main_business, trained, roles";
const CERT_SELECT: &str =
    "SELECT c.id, c.staff_id, c.region_code, c.number, c.scope, c.issue_date, c.expiry_date,
        c.revoked_at IS NOT NULL AS revoked, c.revoke_reason, s.name AS staff_name
    FROM certificates c JOIN staff s ON s.id = c.staff_id";

/// The department's region, when the caller may write in it; NOT_FOUND otherwise.
async fn department_region(
    conn: &mut PgConnection,
    id: Uuid,
    scope: &RegionCode,
    field: &str,
) -> AppResult<String> {
    let region: Option<String> =
        sqlx::query_scalar("SELECT region_code FROM departments WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    match region {
        Some(r) if RegionCode::parse(&r).is_ok_and(|r| scope.contains(&r)) => Ok(r),
        _ => Err(AppError::invalid(
            field,
            "no such department in the caller's region",
        )),
    }
}

pub async fn create_post(
    pool: &PgPool,
    scope: &RegionCode,
    dept: Uuid,
    name: &str,
    duties: &str,
) -> AppResult<PostRow> {
    let mut tx = pool.begin().await?;
    let region = department_region(&mut tx, dept, scope, "post.department_id").await?;
    let row = sqlx::query_as(&format!(
        "INSERT INTO posts (id, department_id, region_code, name, duties) VALUES ($1, $2, $3, $4, $5) RETURNING {POST_COLS}"
    ))
    .bind(Uuid::now_v7())
    .bind(dept)
    .bind(region)
    .bind(name)
    .bind(duties)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn list_posts(pool: &PgPool, dept: Uuid) -> AppResult<Vec<PostRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {POST_COLS} FROM posts WHERE department_id = $1 ORDER BY name"
    ))
    .bind(dept)
    .fetch_all(pool)
    .await?)
}

pub async fn create_staff(pool: &PgPool, scope: &RegionCode, s: &NewStaff) -> AppResult<StaffRow> {
    let mut tx = pool.begin().await?;
    let region = department_region(&mut tx, s.department_id, scope, "staff.department_id").await?;
    if let Some(post) = s.post_id {
        let ok: Option<bool> =
            sqlx::query_scalar("SELECT department_id = $2 FROM posts WHERE id = $1")
                .bind(post)
                .bind(s.department_id)
                .fetch_optional(&mut *tx)
                .await?;
        if ok != Some(true) {
            return Err(AppError::invalid(
                "staff.post_id",
                "no such post in the staff member's department",
            ));
        }
    }
    let row = sqlx::query_as(&format!(
        "INSERT INTO staff (id, department_id, region_code, post_id, name, badge_number, title, main_business, trained, roles)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {STAFF_COLS}"
    ))
    .bind(Uuid::now_v7())
    .bind(s.department_id)
    .bind(region)
    .bind(s.post_id)
    .bind(&s.name)
    .bind(&s.badge_number)
    .bind(&s.title)
    .bind(&s.main_business)
    .bind(s.trained)
    .bind(&s.roles)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn get_staff(
    pool: &PgPool,
    id: Uuid,
) -> AppResult<(StaffRow, Vec<CertificateRow>, Vec<Uuid>)> {
    let staff: StaffRow = sqlx::query_as(&format!("SELECT {STAFF_COLS} FROM staff WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| AppError::not_found("staff", id.to_string()))?;
    let certs = sqlx::query_as(&format!(
        "{CERT_SELECT} WHERE c.staff_id = $1 ORDER BY c.issue_date"
    ))
    .bind(id)
    .fetch_all(pool)
    .await?;
    let matters = sqlx::query_scalar(
        "SELECT matter_id FROM staff_matters WHERE staff_id = $1 ORDER BY matter_id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok((staff, certs, matters))
}

async fn staff_in_dept(
    conn: &mut PgConnection,
    staff: Option<Uuid>,
    dept: Uuid,
    field: &str,
) -> AppResult<()> {
    if let Some(s) = staff {
        let ok: Option<bool> =
            sqlx::query_scalar("SELECT department_id = $2 FROM staff WHERE id = $1")
                .bind(s)
                .bind(dept)
                .fetch_optional(conn)
                .await?;
        if ok != Some(true) {
            return Err(AppError::invalid(
                field,
                "no such staff member in the post's department",
            ));
        }
    }
    Ok(())
}

/// Sets the A and B roles of a post (岗位AB角); they must be two people of its department.
pub async fn set_post_staff(
    pool: &PgPool,
    scope: &RegionCode,
    post: Uuid,
    a: Option<Uuid>,
    b: Option<Uuid>,
) -> AppResult<PostRow> {
    if a.is_some() && a == b {
        return Err(AppError::invalid(
            "b_staff_id",
            "the backup must be another person",
        ));
    }
    let mut tx = pool.begin().await?;
    let dept: Option<Uuid> =
        sqlx::query_scalar("SELECT department_id FROM posts WHERE id = $1 FOR UPDATE")
            .bind(post)
            .fetch_optional(&mut *tx)
            .await?;
    let dept = dept.ok_or_else(|| AppError::not_found("post", post.to_string()))?;
    department_region(&mut tx, dept, scope, "post_id").await?;
    staff_in_dept(&mut tx, a, dept, "a_staff_id").await?;
    staff_in_dept(&mut tx, b, dept, "b_staff_id").await?;
    let row = sqlx::query_as(&format!(
        "UPDATE posts SET a_staff_id = $2, b_staff_id = $3 WHERE id = $1 RETURNING {POST_COLS}"
    ))
    .bind(post)
    .bind(a)
    .bind(b)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

async fn fetch_cert(conn: &mut PgConnection, id: Uuid) -> AppResult<CertificateRow> {
    sqlx::query_as(&format!("{CERT_SELECT} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| AppError::not_found("certificate", id.to_string()))
}

/// Issues a certificate; returns it with the staff member's region.
pub async fn issue_certificate(
    tx: &mut PgConnection,
    scope: &RegionCode,
    c: &NewCertificate,
) -> AppResult<(CertificateRow, RegionCode)> {
    let region: Option<String> = sqlx::query_scalar("SELECT region_code FROM staff WHERE id = $1")
        .bind(c.staff_id)
        .fetch_optional(&mut *tx)
        .await?;
    let region = match region.map(|r| RegionCode::parse(&r)) {
        Some(Ok(r)) if scope.contains(&r) => r,
        _ => {
            return Err(AppError::invalid(
                "certificate.staff_id",
                "no such staff member in the caller's region",
            ))
        }
    };
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO certificates (id, staff_id, region_code, number, scope, issue_date, expiry_date)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(c.staff_id)
    .bind(region.as_str())
    .bind(&c.number)
    .bind(&c.scope)
    .bind(c.issue_date)
    .bind(c.expiry_date)
    .execute(&mut *tx)
    .await?;
    let row = fetch_cert(&mut *tx, id).await?;
    Ok((row, region))
}

/// Revokes a certificate; returns it with its region.
pub async fn revoke_certificate(
    tx: &mut PgConnection,
    scope: &RegionCode,
    id: Uuid,
    reason: &str,
) -> AppResult<(CertificateRow, RegionCode)> {
    let current = fetch_cert(&mut *tx, id).await?;
    let region = RegionCode::parse(&current.region_code)
        .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
    if !scope.contains(&region) {
        return Err(AppError::not_found("certificate", id.to_string()));
    }
    let updated = sqlx::query("UPDATE certificates SET revoked_at = now(), revoke_reason = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .bind(reason)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if updated == 0 {
        return Err(AppError::precondition(
            Reason::CertificateRevoked.name(),
            "the certificate is already revoked",
        ));
    }
    let row = fetch_cert(&mut *tx, id).await?;
    Ok((row, region))
}

/// Valid certificates expiring within `days` of `today`, and revoked ones, in `region_like`.
pub async fn certificate_notices(
    pool: &PgPool,
    region_like: &str,
    today: NaiveDate,
    days: i32,
) -> AppResult<(Vec<CertificateRow>, Vec<CertificateRow>)> {
    let expiring = sqlx::query_as(&format!(
        "{CERT_SELECT} WHERE c.region_code LIKE $1 AND c.revoked_at IS NULL
           AND c.expiry_date >= $2 AND c.expiry_date <= $2 + $3 ORDER BY c.expiry_date, c.number"
    ))
    .bind(region_like)
    .bind(today)
    .bind(days)
    .fetch_all(pool)
    .await?;
    let revoked = sqlx::query_as(&format!(
        "{CERT_SELECT} WHERE c.region_code LIKE $1 AND c.revoked_at IS NOT NULL ORDER BY c.revoked_at DESC"
    ))
    .bind(region_like)
    .fetch_all(pool)
    .await?;
    Ok((expiring, revoked))
}

/// Assigns a matter; an enforcement matter needs a certificate valid on `today`. `None` when
/// it was assigned already.
pub async fn assign_matter(
    tx: &mut PgConnection,
    scope: &RegionCode,
    staff: Uuid,
    matter: Uuid,
    today: NaiveDate,
) -> AppResult<Option<Assigned>> {
    let staff_row: Option<(String, Uuid)> =
        sqlx::query_as("SELECT region_code, department_id FROM staff WHERE id = $1")
            .bind(staff)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((region, department_id)) = staff_row
        .and_then(|(r, d)| RegionCode::parse(&r).ok().map(|r| (r, d)))
        .filter(|(r, _)| scope.contains(r))
    else {
        return Err(AppError::not_found("staff", staff.to_string()));
    };
    let matter_type: Option<i32> = sqlx::query_scalar(
        "SELECT v.matter_type FROM matter_versions v WHERE v.matter_id = $1
         ORDER BY (v.state = 'published') DESC, v.effective_date DESC NULLS LAST, v.version DESC LIMIT 1",
    )
    .bind(matter)
    .fetch_optional(&mut *tx)
    .await?;
    let matter_type =
        matter_type.ok_or_else(|| AppError::not_found("matter", matter.to_string()))?;
    let enforcement = crate::domain::matter::is_enforcement(matter_type);
    if enforcement {
        let valid: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM certificates WHERE staff_id = $1 AND revoked_at IS NULL
                AND issue_date <= $2 AND expiry_date >= $2)",
        )
        .bind(staff)
        .bind(today)
        .fetch_one(&mut *tx)
        .await?;
        if !valid {
            return Err(AppError::precondition(
                Reason::NoValidCertificate.name(),
                "an enforcement matter needs a valid law-enforcement certificate (持证上岗)",
            ));
        }
    }
    let added = sqlx::query(
        "INSERT INTO staff_matters (staff_id, matter_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(staff)
    .bind(matter)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok((added == 1).then_some(Assigned {
        region,
        department_id,
        enforcement,
    }))
}

const ACCOUNT_SELECT: &str =
    "SELECT s.id, s.department_id, s.region_code, s.post_id, s.name, s.badge_number,
        s.title, s.main_business, s.trained, s.roles, d.code AS department_code
    FROM staff s JOIN departments d ON d.id = s.department_id";

/// The accounts a badge number names inside `region_like` (badges are unique per county, so a
/// city may find more than one).
pub async fn accounts_by_badge(
    pool: &PgPool,
    region_like: &str,
    badge: &str,
) -> AppResult<Vec<StaffAccountRow>> {
    Ok(sqlx::query_as(&format!(
        "{ACCOUNT_SELECT} WHERE s.badge_number = $1 AND s.region_code LIKE $2 LIMIT 2"
    ))
    .bind(badge)
    .bind(region_like)
    .fetch_all(pool)
    .await?)
}

/// A page of the accounts inside `region_like`, by region and badge number.
pub async fn list_accounts(
    pool: &PgPool,
    region_like: &str,
    page: &xiaoneng_kit::paging::PageRequest,
) -> AppResult<(Vec<StaffAccountRow>, String)> {
    let after = page.after.clone().unwrap_or_default();
    let rows: Vec<StaffAccountRow> = sqlx::query_as(&format!(
        "{ACCOUNT_SELECT} WHERE s.region_code LIKE $1 AND (s.region_code || '/' || s.badge_number) > $2
         ORDER BY s.region_code || '/' || s.badge_number LIMIT $3"
    ))
    .bind(region_like)
    .bind(after)
    .bind(page.size + 1)
    .fetch_all(pool)
    .await?;
    Ok(page.finish(rows, |r| {
        format!("{}/{}", r.staff.region_code, r.staff.badge_number)
    }))
}
