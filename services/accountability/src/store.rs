//! Ledger persistence.

use sqlx::{PgConnection, PgPool};
use xiaoneng_kit::events::ConsumedEvent;
use xiaoneng_kit::paging::PageRequest;
use xiaoneng_kit::{AppError, AppResult};

pub use crate::domain::LedgerRow;
use crate::domain::{Fact, RecordRow, Rule, RuleSet};

pub async fn record(tx: &mut PgConnection, e: &ConsumedEvent) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO ledger_entries (event_id, event_type, source, subject, region_code, occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(e.event_id)
    .bind(&e.event_type)
    .bind(&e.source)
    .bind(&e.subject)
    .bind(&e.region_code)
    .bind(e.occurred_at)
    .execute(tx)
    .await?;
    Ok(())
}

/// Entries in regions matching `region_like`, newest first, optionally of one type.
pub async fn list(
    pool: &PgPool,
    region_like: &str,
    event_type: Option<&str>,
    page: &PageRequest,
) -> AppResult<(Vec<LedgerRow>, String)> {
    let before = match &page.after {
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| AppError::invalid("page_token", "is not valid"))?,
        ),
        None => None,
    };
    let rows: Vec<LedgerRow> = sqlx::query_as(
        "SELECT id, event_id, event_type, source, subject, region_code, occurred_at, recorded_at
         FROM ledger_entries
         WHERE region_code LIKE $1 AND ($2::text IS NULL OR event_type = $2) AND ($3::bigint IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4",
    )
    .bind(region_like)
    .bind(event_type)
    .bind(before)
    .bind(page.size + 1)
    .fetch_all(pool)
    .await?;
    Ok(page.finish(rows, |r| r.id.to_string()))
}

/// Stores a fact (once per event and kind) for the counting rules.
pub async fn insert_fact(tx: &mut PgConnection, f: &Fact) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO facts (event_id, kind, region_code, unit, person, on_date, attrs, subject)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT DO NOTHING",
    )
    .bind(f.event_id)
    .bind(&f.kind)
    .bind(&f.region_code)
    .bind(&f.unit)
    .bind(&f.person)
    .bind(f.on)
    .bind(sqlx::types::Json(&f.attrs))
    .bind(&f.subject)
    .execute(tx)
    .await?;
    Ok(())
}

/// The event ids of `person`'s facts of `kind` from `from` to `to`.
pub async fn facts_of(
    tx: &mut PgConnection,
    kind: &str,
    person: &str,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> sqlx::Result<Vec<uuid::Uuid>> {
    sqlx::query_scalar(
        "SELECT event_id FROM facts WHERE kind = $1 AND person = $2 AND on_date BETWEEN $3 AND $4 ORDER BY on_date, event_id",
    )
    .bind(kind)
    .bind(person)
    .bind(from)
    .bind(to)
    .fetch_all(tx)
    .await
}

/// The rule set in force for `region` on `on`: the county's own, else its city's; (region,
/// version).
pub async fn rule_set_in_force(
    tx: &mut PgConnection,
    region: &str,
    on: chrono::NaiveDate,
) -> sqlx::Result<Option<(String, String)>> {
    let city = region
        .get(..4)
        .map(|c| format!("{c}00"))
        .unwrap_or_default();
    sqlx::query_as(
        "SELECT region_code, version FROM rule_sets WHERE region_code IN ($1, $2) AND effective_from <= $3
         ORDER BY (region_code = $1) DESC, effective_from DESC, id DESC LIMIT 1",
    )
    .bind(region)
    .bind(city)
    .bind(on)
    .fetch_optional(tx)
    .await
}

/// The text of a loaded rule set.
pub async fn rule_set_body(
    tx: &mut PgConnection,
    region: &str,
    version: &str,
) -> sqlx::Result<String> {
    sqlx::query_scalar("SELECT body FROM rule_sets WHERE region_code = $1 AND version = $2")
        .bind(region)
        .bind(version)
        .fetch_one(tx)
        .await
}

/// Stores a record unless its dedupe key has one; the new record.
pub async fn insert_record(
    tx: &mut PgConnection,
    rule: &Rule,
    version: &str,
    f: &Fact,
    evidence: &[uuid::Uuid],
) -> sqlx::Result<Option<RecordRow>> {
    sqlx::query_as(
        "INSERT INTO records (id, dedupe_key, rule_id, rule_version, region_code, level, title, unit, person, subject,
            evidence, on_date)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (dedupe_key) DO NOTHING
         RETURNING id, rule_id, rule_version, region_code, level, title, unit, person, subject, evidence, on_date, created_at,
            exemption_reason, exemption_approver, exemption_date",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(rule.dedupe_key(f))
    .bind(&rule.id)
    .bind(version)
    .bind(&f.region_code)
    .bind(rule.level())
    .bind(&rule.title)
    .bind(&f.unit)
    .bind(&f.person)
    .bind(&f.subject)
    .bind(evidence)
    .bind(f.on)
    .fetch_optional(tx)
    .await
}

/// Stores a rule set; false when its (region, version) is there.
pub async fn insert_rule_set(
    conn: &mut PgConnection,
    set: &RuleSet,
    body: &str,
    by: &str,
) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "INSERT INTO rule_sets (region_code, version, effective_from, body, loaded_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (region_code, version) DO NOTHING",
    )
    .bind(&set.region)
    .bind(&set.version)
    .bind(set.effective_from)
    .bind(body)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn rule_sets(
    pool: &PgPool,
    region_like: &str,
) -> AppResult<Vec<(String, String, chrono::NaiveDate)>> {
    Ok(sqlx::query_as(
        "SELECT region_code, version, effective_from FROM rule_sets
         WHERE region_code LIKE $1 OR region_code = substr($1, 1, 4) || '00'
         ORDER BY effective_from DESC, id DESC",
    )
    .bind(region_like)
    .fetch_all(pool)
    .await?)
}

/// Records in regions matching `region_like`, newest first, one page.
pub async fn records(
    pool: &PgPool,
    region_like: &str,
    page: &PageRequest,
) -> AppResult<(Vec<RecordRow>, String)> {
    let before = match &page.after {
        Some(c) => Some(
            uuid::Uuid::parse_str(c)
                .map_err(|_| AppError::invalid("page_token", "is not valid"))?,
        ),
        None => None,
    };
    let rows: Vec<RecordRow> = sqlx::query_as(
        "SELECT id, rule_id, rule_version, region_code, level, title, unit, person, subject, evidence, on_date, created_at,
            exemption_reason, exemption_approver, exemption_date
         FROM records WHERE region_code LIKE $1 AND ($2::uuid IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3",
    )
    .bind(region_like)
    .bind(before)
    .bind(page.size + 1)
    .fetch_all(pool)
    .await?;
    Ok(page.finish(rows, |r| r.id.to_string()))
}

/// A record, locked, inside `region_like`.
pub async fn record_for_update(
    tx: &mut PgConnection,
    id: uuid::Uuid,
    region_like: &str,
) -> AppResult<RecordRow> {
    sqlx::query_as(
        "SELECT id, rule_id, rule_version, region_code, level, title, unit, person, subject, evidence, on_date, created_at,
            exemption_reason, exemption_approver, exemption_date
         FROM records WHERE id = $1 AND region_code LIKE $2 FOR UPDATE",
    )
    .bind(id)
    .bind(region_like)
    .fetch_optional(tx)
    .await?
    .ok_or_else(|| AppError::not_found("record", id.to_string()))
}

pub async fn save_exemption(tx: &mut PgConnection, r: &RecordRow) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE records SET exemption_reason = $2, exemption_approver = $3, exemption_date = $4 WHERE id = $1",
    )
    .bind(r.id)
    .bind(&r.exemption_reason)
    .bind(&r.exemption_approver)
    .bind(r.exemption_date)
    .execute(tx)
    .await?;
    Ok(())
}

/// Stores an inspection.
#[allow(clippy::too_many_arguments)]
pub async fn insert_inspection(
    tx: &mut PgConnection,
    id: uuid::Uuid,
    region: &str,
    kind: crate::domain::InspectionKind,
    place: &str,
    inspector: &str,
    on: chrono::NaiveDate,
    photos: &[String],
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO inspections (id, region_code, kind, place, inspector, on_date, photos) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(region)
    .bind(kind)
    .bind(place)
    .bind(inspector)
    .bind(on)
    .bind(photos)
    .execute(tx)
    .await?;
    Ok(())
}

/// A record made directly (an inspection finding): its key is the inspection and the finding.
#[allow(clippy::too_many_arguments)]
pub async fn insert_finding_record(
    tx: &mut PgConnection,
    key: &str,
    region: &str,
    f: &crate::domain::Finding,
    subject: &str,
    on: chrono::NaiveDate,
) -> sqlx::Result<Option<RecordRow>> {
    sqlx::query_as(
        "INSERT INTO records (id, dedupe_key, rule_id, rule_version, region_code, level, title, unit, person, subject,
            evidence, on_date)
         VALUES ($1, $2, 'inspection', '', $3, $4, $5, $6, $7, $8, '{}', $9)
         ON CONFLICT (dedupe_key) DO NOTHING
         RETURNING id, rule_id, rule_version, region_code, level, title, unit, person, subject, evidence, on_date, created_at,
            exemption_reason, exemption_approver, exemption_date",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(key)
    .bind(region)
    .bind(f.level)
    .bind(&f.title)
    .bind(&f.unit)
    .bind(&f.person)
    .bind(subject)
    .bind(on)
    .fetch_optional(tx)
    .await
}

#[derive(sqlx::FromRow)]
struct FactRow {
    event_id: uuid::Uuid,
    kind: String,
    region_code: String,
    subject: String,
    unit: String,
    person: String,
    on_date: chrono::NaiveDate,
    attrs: sqlx::types::Json<std::collections::BTreeMap<String, String>>,
}

/// The facts of regions matching `region_like` from `from` to `to`, in date order.
pub async fn facts_in(
    pool: &PgPool,
    region_like: &str,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> AppResult<Vec<Fact>> {
    let rows: Vec<FactRow> = sqlx::query_as(
        "SELECT event_id, kind, region_code, subject, unit, person, on_date, attrs FROM facts
         WHERE region_code LIKE $1 AND on_date BETWEEN $2 AND $3 ORDER BY on_date, event_id",
    )
    .bind(region_like)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(FactRow::into_fact).collect())
}

/// Rule-made records of regions matching `region_like` from `from` to `to`, by rule id.
pub async fn records_by_rule(
    pool: &PgPool,
    region_like: &str,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> AppResult<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT rule_id, count(*) FROM records WHERE region_code LIKE $1 AND on_date BETWEEN $2 AND $3
           AND rule_id <> 'inspection' GROUP BY rule_id ORDER BY rule_id",
    )
    .bind(region_like)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?)
}

/// Records (rule-made and inspection findings) of regions matching `region_like` in a period.
pub async fn records_in(
    pool: &PgPool,
    region_like: &str,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> AppResult<Vec<RecordRow>> {
    Ok(sqlx::query_as(
        "SELECT id, rule_id, rule_version, region_code, level, title, unit, person, subject, evidence, on_date, created_at,
            exemption_reason, exemption_approver, exemption_date
         FROM records WHERE region_code LIKE $1 AND on_date BETWEEN $2 AND $3 ORDER BY on_date, id",
    )
    .bind(region_like)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?)
}

/// Records an action on a ranked key once; false when it was recorded.
pub async fn insert_action(
    tx: &mut PgConnection,
    region: &str,
    period: &str,
    a: &crate::domain::bulletin::ActionRow,
    by: &str,
) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "INSERT INTO actions (region_code, period, key, action, note, recorded_by) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT DO NOTHING",
    )
    .bind(region)
    .bind(period)
    .bind(&a.key)
    .bind(&a.action)
    .bind(&a.note)
    .bind(by)
    .execute(tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn actions(
    pool: &PgPool,
    region: &str,
    period: &str,
) -> AppResult<Vec<crate::domain::bulletin::ActionRow>> {
    Ok(sqlx::query_as(
        "SELECT key, action, note FROM actions WHERE region_code = $1 AND period = $2 ORDER BY id",
    )
    .bind(region)
    .bind(period)
    .fetch_all(pool)
    .await?)
}

const BULLETIN_COLS: &str = "id, region_code, period, markdown, html, published_by, published_at";

/// A bulletin by id, if it is in a region matching `region_like`.
pub async fn bulletin(
    pool: &PgPool,
    region_like: &str,
    id: uuid::Uuid,
) -> AppResult<Option<crate::domain::bulletin::BulletinRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {BULLETIN_COLS} FROM bulletins WHERE id = $1 AND region_code LIKE $2"
    ))
    .bind(id)
    .bind(region_like)
    .fetch_optional(pool)
    .await?)
}

/// Bulletins in regions matching `region_like`, newest first (ids are time-ordered),
/// optionally of one period.
pub async fn bulletins(
    pool: &PgPool,
    region_like: &str,
    period: Option<&str>,
    page: &PageRequest,
) -> AppResult<(Vec<crate::domain::bulletin::BulletinRow>, String)> {
    let before = match &page.after {
        Some(c) => Some(
            uuid::Uuid::parse_str(c)
                .map_err(|_| AppError::invalid("page_token", "is not valid"))?,
        ),
        None => None,
    };
    let rows: Vec<crate::domain::bulletin::BulletinRow> = sqlx::query_as(&format!(
        "SELECT {BULLETIN_COLS} FROM bulletins
         WHERE region_code LIKE $1 AND ($2::text IS NULL OR period = $2) AND ($3::uuid IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(region_like)
    .bind(period)
    .bind(before)
    .bind(page.size + 1)
    .fetch_all(pool)
    .await?;
    Ok(page.finish(rows, |r| r.id.to_string()))
}

pub async fn insert_bulletin(
    tx: &mut PgConnection,
    id: uuid::Uuid,
    region: &str,
    period: &str,
    md: &str,
    html: &str,
    by: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO bulletins (id, region_code, period, markdown, html, published_by) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(region)
    .bind(period)
    .bind(md)
    .bind(html)
    .bind(by)
    .execute(tx)
    .await?;
    Ok(())
}

/// A demonstration unit's title as stored: (unit, year, status, reasons).
pub type TitleRow = (String, i32, String, Vec<String>);

/// Grants a title; false when the unit holds one for the year.
pub async fn grant_title(
    tx: &mut PgConnection,
    region: &str,
    unit: &str,
    year: i32,
    by: &str,
) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "INSERT INTO titles (region_code, unit, year, status, changed_by) VALUES ($1, $2, $3, 'held', $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(region)
    .bind(unit)
    .bind(year)
    .bind(by)
    .execute(tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The titles held in regions matching `region_like` for `year`, locked: (region, unit).
pub async fn held_titles(
    tx: &mut PgConnection,
    region_like: &str,
    year: i32,
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT region_code, unit FROM titles WHERE region_code LIKE $1 AND year = $2 AND status = 'held'
         ORDER BY unit FOR UPDATE",
    )
    .bind(region_like)
    .bind(year)
    .fetch_all(tx)
    .await
}

pub async fn set_title(
    tx: &mut PgConnection,
    region: &str,
    unit: &str,
    year: i32,
    status: &str,
    reasons: &[String],
    by: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE titles SET status = $4, reasons = $5, changed_by = $6, changed_at = now()
         WHERE region_code = $1 AND unit = $2 AND year = $3",
    )
    .bind(region)
    .bind(unit)
    .bind(year)
    .bind(status)
    .bind(reasons)
    .bind(by)
    .execute(tx)
    .await?;
    Ok(())
}

/// Records the visits a matter promises at most.
/// A matter's promise of visits and its department, as its latest published version says.
pub async fn set_matter(
    tx: &mut PgConnection,
    matter: &str,
    max: i32,
    department: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO matters (matter_id, max_visits, department_id) VALUES ($1, $2, $3)
         ON CONFLICT (matter_id) DO UPDATE SET max_visits = EXCLUDED.max_visits,
            department_id = EXCLUDED.department_id",
    )
    .bind(matter)
    .bind(max)
    .bind(department)
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn set_department(tx: &mut PgConnection, id: &str, name: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO departments (department_id, display_name) VALUES ($1, $2)
         ON CONFLICT (department_id) DO UPDATE SET display_name = EXCLUDED.display_name",
    )
    .bind(id)
    .bind(name)
    .execute(tx)
    .await?;
    Ok(())
}

/// The unit a matter is handled by: its department's name, else the department's id until the
/// department's own event arrives ([`name_department`] puts the name in then).
pub async fn unit_of_matter(tx: &mut PgConnection, matter: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT coalesce(d.display_name, nullif(m.department_id, '')) FROM matters m
         LEFT JOIN departments d ON d.department_id = m.department_id WHERE m.matter_id = $1",
    )
    .bind(matter)
    .fetch_optional(tx)
    .await
    .map(Option::flatten)
}

/// The unit (department name, else its id) of a department id.
pub async fn unit_of_department(tx: &mut PgConnection, id: &str) -> sqlx::Result<String> {
    let name: Option<String> =
        sqlx::query_scalar("SELECT display_name FROM departments WHERE department_id = $1")
            .bind(id)
            .fetch_optional(tx)
            .await?;
    Ok(name.unwrap_or_else(|| id.to_string()))
}

/// Facts and records that named a department by its id (its event had not arrived) now name it.
pub async fn name_department(tx: &mut PgConnection, id: &str, name: &str) -> sqlx::Result<()> {
    for table in ["facts", "records"] {
        sqlx::query(&format!("UPDATE {table} SET unit = $2 WHERE unit = $1"))
            .bind(id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Window ratings and visits of `matter` that arrived before its matter did (no unit): the unit now.
pub async fn unit_for_matter_facts(
    tx: &mut PgConnection,
    matter: &str,
    unit: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE records r SET unit = $2 WHERE r.unit = '' AND EXISTS
            (SELECT 1 FROM facts f WHERE f.event_id = ANY(r.evidence) AND f.attrs->>'matter' = $1)",
    )
    .bind(matter)
    .bind(unit)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE facts SET unit = $2 WHERE unit = '' AND attrs->>'matter' = $1")
        .bind(matter)
        .bind(unit)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// A certificate as its latest CertificateChanged says.
#[allow(clippy::too_many_arguments)]
pub async fn set_certificate(
    tx: &mut PgConnection,
    id: &str,
    staff: &str,
    region: &str,
    revoked: bool,
    expiry: chrono::NaiveDate,
    on: chrono::NaiveDate,
    event: uuid::Uuid,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO certificates (certificate_id, staff_id, region_code, revoked, expiry_date, changed_on, event_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (certificate_id) DO UPDATE SET revoked = EXCLUDED.revoked, expiry_date = EXCLUDED.expiry_date,
            changed_on = EXCLUDED.changed_on, event_id = EXCLUDED.event_id",
    )
    .bind(id)
    .bind(staff)
    .bind(region)
    .bind(revoked)
    .bind(expiry)
    .bind(on)
    .bind(event)
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn assign_enforcement(
    tx: &mut PgConnection,
    staff: &str,
    matter: &str,
    department: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO enforcement_assignments (staff_id, matter_id, department_id) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(staff)
    .bind(matter)
    .bind(department)
    .execute(tx)
    .await?;
    Ok(())
}

/// A staff member's certificate that lapsed last, when none is valid on `today` while they
/// hold enforcement matters: (certificate, its last event, region, revoked, lapsed on), and
/// the matters with their department.
pub async fn lapsed_certificate(
    tx: &mut PgConnection,
    staff: &str,
    today: chrono::NaiveDate,
) -> sqlx::Result<Option<(Lapsed, Vec<(String, String)>)>> {
    let matters: Vec<(String, String)> = sqlx::query_as(
        "SELECT matter_id, department_id FROM enforcement_assignments WHERE staff_id = $1 ORDER BY matter_id",
    )
    .bind(staff)
    .fetch_all(&mut *tx)
    .await?;
    if matters.is_empty() {
        return Ok(None);
    }
    let last: Option<Lapsed> = sqlx::query_as(
        "SELECT certificate_id, event_id, region_code, revoked,
            CASE WHEN revoked THEN changed_on ELSE expiry_date + 1 END AS lapsed_on
         FROM certificates c WHERE staff_id = $1
           AND NOT EXISTS (SELECT 1 FROM certificates v WHERE v.staff_id = $1 AND NOT v.revoked AND v.expiry_date >= $2)
         ORDER BY lapsed_on DESC, certificate_id LIMIT 1",
    )
    .bind(staff)
    .bind(today)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(last.map(|l| (l, matters)))
}

/// A certificate that lapsed: which, on what event, and how.
#[derive(Debug, sqlx::FromRow)]
pub struct Lapsed {
    pub certificate_id: String,
    pub event_id: uuid::Uuid,
    pub region_code: String,
    pub revoked: bool,
    pub lapsed_on: chrono::NaiveDate,
}

/// Up to `n` certificates expired before `today` that the sweep has not looked at, locked for
/// this transaction (another replica skips them): (certificate, staff).
pub async fn claim_expired(
    tx: &mut PgConnection,
    today: chrono::NaiveDate,
    n: i64,
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT certificate_id, staff_id FROM certificates
         WHERE NOT revoked AND NOT expiry_judged AND expiry_date < $1
         ORDER BY expiry_date, certificate_id LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(today)
    .bind(n)
    .fetch_all(tx)
    .await
}

pub async fn mark_expiry_judged(tx: &mut PgConnection, ids: &[String]) -> sqlx::Result<()> {
    sqlx::query("UPDATE certificates SET expiry_judged = true WHERE certificate_id = ANY($1)")
        .bind(ids)
        .execute(tx)
        .await?;
    Ok(())
}

pub async fn max_visits(tx: &mut PgConnection, matter: &str) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar("SELECT max_visits FROM matters WHERE matter_id = $1")
        .bind(matter)
        .fetch_optional(tx)
        .await
}

/// The visit facts of one case, in date order.
pub async fn visits_of(tx: &mut PgConnection, case_id: &str) -> AppResult<Vec<Fact>> {
    let rows: Vec<FactRow> = sqlx::query_as(
        "SELECT event_id, kind, region_code, subject, unit, person, on_date, attrs FROM facts
         WHERE kind = 'visit' AND subject = $1 ORDER BY on_date, event_id",
    )
    .bind(case_id)
    .fetch_all(tx)
    .await?;
    Ok(rows.into_iter().map(FactRow::into_fact).collect())
}

/// The cases with visit facts of `matter`.
pub async fn cases_visiting(tx: &mut PgConnection, matter: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT DISTINCT subject FROM facts WHERE kind = 'visit' AND attrs->>'matter' = $1",
    )
    .bind(matter)
    .fetch_all(tx)
    .await
}

impl FactRow {
    fn into_fact(self) -> Fact {
        Fact {
            event_id: self.event_id,
            kind: self.kind,
            region_code: self.region_code,
            subject: self.subject,
            unit: self.unit,
            person: self.person,
            on: self.on_date,
            attrs: self.attrs.0,
        }
    }
}

/// The accountability service's gauges: this month's records by level (exempt ones apart).
pub const GAUGES: &[xiaoneng_kit::gauges::GaugeQuery] = &[xiaoneng_kit::gauges::GaugeQuery {
    metric: "accountability_records_this_month",
    labels: &["region", "level", "exempt"],
    sql: "SELECT region_code, level, (exemption_reason IS NOT NULL)::text, count(*)::float8 FROM records
          WHERE on_date >= date_trunc('month', (now() AT TIME ZONE 'Asia/Shanghai')::date)::date GROUP BY 1, 2, 3",
}];
