//! Matters and their versions. A published version is never changed; "in force on D" is the
//! published version with the latest effective date ≤ D, unless the matter was retired by D.

use chrono::NaiveDate;
use prost::Message;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;
use xiaoneng_kit::paging::PageRequest;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{AppError, AppResult};
use xiaoneng_proto::catalog::v1::MatterTerms;

use crate::domain::matter;
use crate::domain::Reason;
pub use crate::domain::{Filter, VersionRow};

const SELECT: &str = "SELECT v.matter_id, m.region_code, v.version, v.state, v.effective_date, m.retire_date, v.terms,
        d.display_name AS department_name, v.created_at, v.published_at
    FROM matter_versions v JOIN matters m ON m.id = v.matter_id JOIN departments d ON d.id = v.department_id";

/// The department's name, checking it belongs to `region`.
async fn department_name(
    conn: &mut PgConnection,
    id: &str,
    region: &RegionCode,
) -> AppResult<(Uuid, String)> {
    let id = Uuid::parse_str(id)
        .map_err(|_| AppError::invalid("terms.department_id", "must be a department id"))?;
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT display_name, region_code FROM departments WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    match row {
        Some((name, r)) if r == region.as_str() => Ok((id, name)),
        _ => Err(AppError::invalid(
            "terms.department_id",
            format!("no such department in region {region}"),
        )),
    }
}

async fn write_columns(
    conn: &mut PgConnection,
    matter_id: Uuid,
    version: i32,
    terms: &MatterTerms,
    region: &RegionCode,
    request_id: Option<&str>,
    insert: bool,
) -> AppResult<()> {
    let (dept, dept_name) = department_name(conn, &terms.department_id, region).await?;
    let sql = if insert {
        "INSERT INTO matter_versions (matter_id, version, state, terms, name, department_id, matter_type, channels, keywords, search_text, request_id)
         VALUES ($1, $2, 'draft', $3, $4, $5, $6, $7, $8, $9, $10)"
    } else {
        "UPDATE matter_versions SET terms = $3, name = $4, department_id = $5, matter_type = $6, channels = $7,
             keywords = $8, search_text = $9
         WHERE matter_id = $1 AND version = $2 AND state = 'draft'"
    };
    let q = sqlx::query(sql)
        .bind(matter_id)
        .bind(version)
        .bind(terms.encode_to_vec())
        .bind(&terms.name)
        .bind(dept)
        .bind(terms.matter_type)
        .bind(&terms.channels)
        .bind(&terms.keywords)
        .bind(matter::search_text(terms, &dept_name));
    let q = if insert { q.bind(request_id) } else { q };
    q.execute(conn).await?;
    Ok(())
}

async fn fetch_version(
    conn: &mut PgConnection,
    matter_id: Uuid,
    version: i32,
) -> AppResult<VersionRow> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE v.matter_id = $1 AND v.version = $2"
    ))
    .bind(matter_id)
    .bind(version)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| AppError::not_found("matter version", format!("{matter_id}/{version}")))
}

/// Creates the next draft of the matter with this implementation code (a new matter if none).
pub async fn create_draft(
    pool: &PgPool,
    region: &RegionCode,
    terms: &MatterTerms,
    request_id: Option<&str>,
) -> AppResult<VersionRow> {
    matter::validate(terms)?;
    let mut tx = pool.begin().await?;
    if let Some(rid) = request_id {
        let done: Option<(Uuid, i32)> =
            sqlx::query_as("SELECT matter_id, version FROM matter_versions WHERE request_id = $1")
                .bind(rid)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((id, v)) = done {
            return fetch_version(&mut tx, id, v).await;
        }
    }
    sqlx::query(
        "INSERT INTO matters (id, region_code, implementation_code) VALUES ($1, $2, $3)
         ON CONFLICT (region_code, implementation_code) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(region.as_str())
    .bind(&terms.implementation_code)
    .execute(&mut *tx)
    .await?;
    let (matter_id, retired): (Uuid, Option<NaiveDate>) = sqlx::query_as(
        "SELECT id, retire_date FROM matters WHERE region_code = $1 AND implementation_code = $2 FOR UPDATE",
    )
    .bind(region.as_str())
    .bind(&terms.implementation_code)
    .fetch_one(&mut *tx)
    .await?;
    if retired.is_some() {
        return Err(AppError::precondition(
            Reason::MatterRetired.name(),
            "the matter is retired; it takes no new versions",
        ));
    }
    let (next, drafts): (i32, i64) = sqlx::query_as(
        "SELECT coalesce(max(version), 0) + 1, count(*) FILTER (WHERE state = 'draft') FROM matter_versions WHERE matter_id = $1",
    )
    .bind(matter_id)
    .fetch_one(&mut *tx)
    .await?;
    if drafts > 0 {
        return Err(AppError::precondition(
            Reason::DraftExists.name(),
            "the matter already has a draft; update or publish it",
        ));
    }
    write_columns(&mut tx, matter_id, next, terms, region, request_id, true).await?;
    let row = fetch_version(&mut tx, matter_id, next).await?;
    tx.commit().await?;
    Ok(row)
}

/// Locks the matter and returns its region; NOT_FOUND outside `scope`.
async fn lock_matter(
    conn: &mut PgConnection,
    matter_id: Uuid,
    scope: &RegionCode,
) -> AppResult<(RegionCode, Option<NaiveDate>)> {
    let row: Option<(String, Option<NaiveDate>)> =
        sqlx::query_as("SELECT region_code, retire_date FROM matters WHERE id = $1 FOR UPDATE")
            .bind(matter_id)
            .fetch_optional(conn)
            .await?;
    let (region, retired) =
        row.ok_or_else(|| AppError::not_found("matter", matter_id.to_string()))?;
    let region = RegionCode::parse(&region).map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
    if !scope.contains(&region) {
        return Err(AppError::not_found("matter", matter_id.to_string()));
    }
    Ok((region, retired))
}

pub async fn update_draft(
    pool: &PgPool,
    scope: &RegionCode,
    matter_id: Uuid,
    version: i32,
    terms: &MatterTerms,
) -> AppResult<VersionRow> {
    matter::validate(terms)?;
    let mut tx = pool.begin().await?;
    let (region, _) = lock_matter(&mut tx, matter_id, scope).await?;
    let current = fetch_version(&mut tx, matter_id, version).await?;
    if current.state != "draft" {
        return Err(AppError::precondition(
            Reason::VersionPublished.name(),
            "a published version is immutable; create a new draft",
        ));
    }
    if current.terms()?.implementation_code != terms.implementation_code {
        return Err(AppError::invalid(
            "terms.implementation_code",
            "cannot change between versions of a matter",
        ));
    }
    write_columns(&mut tx, matter_id, version, terms, &region, None, false).await?;
    let row = fetch_version(&mut tx, matter_id, version).await?;
    tx.commit().await?;
    Ok(row)
}

/// Publishes a draft from `effective`; it must start after every earlier published version.
/// Returns the version, the matter's region and the published terms.
pub async fn publish(
    tx: &mut PgConnection,
    scope: &RegionCode,
    matter_id: Uuid,
    version: i32,
    effective: NaiveDate,
) -> AppResult<(VersionRow, RegionCode, MatterTerms)> {
    let (region, retired) = lock_matter(&mut *tx, matter_id, scope).await?;
    if retired.is_some() {
        return Err(AppError::precondition(
            Reason::MatterRetired.name(),
            "the matter is retired",
        ));
    }
    let current = fetch_version(&mut *tx, matter_id, version).await?;
    if current.state != "draft" {
        return Err(AppError::precondition(
            Reason::VersionPublished.name(),
            "the version is already published",
        ));
    }
    let latest: Option<NaiveDate> = sqlx::query_scalar(
        "SELECT max(effective_date) FROM matter_versions WHERE matter_id = $1 AND state = 'published'",
    )
    .bind(matter_id)
    .fetch_one(&mut *tx)
    .await?;
    if let Some(l) = latest.filter(|l| effective <= *l) {
        return Err(AppError::invalid(
            "effective_date",
            format!("must be after {l}, the effective date of the version in force"),
        ));
    }
    let terms = current.terms()?;
    matter::validate(&terms)?;
    sqlx::query(
        "UPDATE matter_versions SET state = 'published', effective_date = $3, published_at = now()
         WHERE matter_id = $1 AND version = $2",
    )
    .bind(matter_id)
    .bind(version)
    .bind(effective)
    .execute(&mut *tx)
    .await?;
    let row = fetch_version(&mut *tx, matter_id, version).await?;
    Ok((row, region, terms))
}

/// Retires the matter from `on`; returns its latest published version and its region.
pub async fn retire(
    tx: &mut PgConnection,
    scope: &RegionCode,
    matter_id: Uuid,
    on: NaiveDate,
    reason: &str,
) -> AppResult<(VersionRow, RegionCode)> {
    let (region, retired) = lock_matter(&mut *tx, matter_id, scope).await?;
    if let Some(d) = retired {
        return Err(AppError::precondition(
            Reason::MatterRetired.name(),
            format!("the matter is already retired from {d}"),
        ));
    }
    let latest: Option<i32> = sqlx::query_scalar(
        "SELECT version FROM matter_versions WHERE matter_id = $1 AND state = 'published' ORDER BY effective_date DESC LIMIT 1",
    )
    .bind(matter_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(latest) = latest else {
        return Err(AppError::precondition(
            Reason::NotPublished.name(),
            "a matter never published cannot be retired",
        ));
    };
    sqlx::query("UPDATE matters SET retire_date = $2, retire_reason = $3 WHERE id = $1")
        .bind(matter_id)
        .bind(on)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
    let row = fetch_version(&mut *tx, matter_id, latest).await?;
    Ok((row, region))
}

pub async fn get_version(pool: &PgPool, matter_id: Uuid, version: i32) -> AppResult<VersionRow> {
    fetch_version(&mut *pool.acquire().await?, matter_id, version).await
}

/// The version in force on `on`.
pub async fn get_in_force(pool: &PgPool, matter_id: Uuid, on: NaiveDate) -> AppResult<VersionRow> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE v.matter_id = $1 AND v.state = 'published' AND v.effective_date <= $2
           AND (m.retire_date IS NULL OR m.retire_date > $2)
         ORDER BY v.effective_date DESC LIMIT 1"
    ))
    .bind(matter_id)
    .bind(on)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| AppError::not_found("matter in force", format!("{matter_id} on {on}")))
}

/// Matters in force on `f.on`, matching the filters; with a query, ranked by relevance.
/// The page cursor is the offset into the ranked list.
pub async fn find(
    pool: &PgPool,
    f: &Filter<'_>,
    page: &PageRequest,
) -> AppResult<(Vec<VersionRow>, String)> {
    let offset: i64 = match &page.after {
        Some(c) => c
            .parse()
            .map_err(|_| AppError::invalid("page_token", "is not valid"))?,
        None => 0,
    };
    let (query, grams) = match f.query {
        Some(q) => (q.trim().to_string(), matter::bigrams(q)),
        None => (String::new(), Vec::new()),
    };
    let sql = format!(
        "WITH cur AS (
            SELECT DISTINCT ON (v.matter_id) v.matter_id, v.version, v.name, v.keywords, v.search_text
            FROM matter_versions v JOIN matters m ON m.id = v.matter_id
            WHERE v.state = 'published' AND v.effective_date <= $1 AND (m.retire_date IS NULL OR m.retire_date > $1)
              AND m.region_code LIKE $2
              AND ($3::uuid IS NULL OR v.department_id = $3)
              AND ($4::int IS NULL OR v.matter_type = $4)
              AND ($5::int IS NULL OR $5 = ANY(v.channels))
            ORDER BY v.matter_id, v.effective_date DESC
        ), scored AS (
            SELECT matter_id, version, name,
                CASE WHEN $6 = '' THEN 1 ELSE
                    (CASE WHEN name = $6 THEN 1000 ELSE 0 END)
                  + (CASE WHEN $6 = ANY(keywords) THEN 500 ELSE 0 END)
                  + (CASE WHEN strpos(name, $6) > 0 THEN 300 ELSE 0 END)
                  + (CASE WHEN strpos(lower(search_text), lower($6)) > 0 THEN 100 ELSE 0 END)
                  + 10 * (SELECT count(*) FROM unnest($7::text[]) g WHERE strpos(lower(search_text), g) > 0)
                END AS score
            FROM cur
        ), ranked AS (
            SELECT matter_id, version, score, name FROM scored WHERE score > 0
            ORDER BY score DESC, char_length(name), matter_id OFFSET $8 LIMIT $9
        )
        {SELECT} JOIN ranked r ON r.matter_id = v.matter_id AND r.version = v.version
        ORDER BY r.score DESC, char_length(r.name), r.matter_id"
    );
    let rows: Vec<VersionRow> = sqlx::query_as(&sql)
        .bind(f.on)
        .bind(&f.region_like)
        .bind(f.department_id)
        .bind(f.matter_type)
        .bind(f.channel)
        .bind(&query)
        .bind(&grams)
        .bind(offset)
        .bind(page.size + 1)
        .fetch_all(pool)
        .await?;
    let (rows, more) = page.finish(rows, |_| String::new());
    let token = if more.is_empty() {
        String::new()
    } else {
        xiaoneng_kit::paging::token_for(&(offset + rows.len() as i64).to_string())
    };
    Ok((rows, token))
}
