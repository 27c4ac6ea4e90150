//! SQL of complaints, merges and identity reads, on the caller's connection or transaction;
//! never writes events. The sealed identity is read by [`sealed`] only.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;
use xiaoneng_kit::{AppError, AppResult};

use crate::domain::sight::ListFilter;
use crate::domain::{ComplaintRow, NewComplaint, Sealed, State};

const COLUMNS: &str = "id, region_code, kind, category, channel, target_kind, target_id, target_department,
    description, attachments, anonymous, fast_track, state, assigned_to, to_discipline, started_on, due_on,
    escalated, extended, extension_reason, finding, findings, responsible_unit, responsible_person, reply,
    satisfaction, callback_note, reopened, merged, linked_case_id, linked_complaint_id, filed_at, version,
    filer_hash, address, address_id, lat, long, updated_at, text_key_id, text_nonce, text_cipher";

/// What a new row carries besides the filing.
pub struct Registration<'a> {
    pub id: Uuid,
    pub state: State,
    pub assigned_to: &'a str,
    pub started_on: NaiveDate,
    pub due_on: NaiveDate,
    pub filed_at: DateTime<Utc>,
    pub filer_hash: &'a str,
    pub complainant_hash: Option<&'a str>,
    pub sealed: Option<&'a Sealed>,
    /// The description sealed (the row stores it masked).
    pub text: Option<&'a Sealed>,
    pub linked_case_id: &'a str,
    pub linked_complaint_id: &'a str,
}

pub async fn insert(
    conn: &mut PgConnection,
    n: &NewComplaint,
    r: &Registration<'_>,
) -> AppResult<ComplaintRow> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO complaints (id, region_code, kind, category, channel, target_kind, target_id, target_department,
            description, attachments, anonymous, fast_track, state, assigned_to, to_discipline, started_on, due_on,
            filed_at, filer_hash, complainant_hash, identity_key_id, identity_nonce, identity_cipher,
            linked_case_id, linked_complaint_id, address, address_id, lat, long, updated_at,
            text_key_id, text_nonce, text_cipher)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
            $22, $23, $24, $25, $26, $27, $28, $29, $18, $30, $31, $32)
         RETURNING {COLUMNS}"
    ))
    .bind(r.id)
    .bind(&n.region_code)
    .bind(n.kind)
    .bind(&n.category.code)
    .bind(n.channel)
    .bind(n.target_kind)
    .bind(&n.target_id)
    .bind(&n.target_department)
    .bind(xiaoneng_kit::mask::text(&n.description))
    .bind(&n.attachments)
    .bind(n.identity.is_none())
    .bind(n.fast_track)
    .bind(r.state)
    .bind(r.assigned_to)
    .bind(n.to_discipline())
    .bind(r.started_on)
    .bind(r.due_on)
    .bind(r.filed_at)
    .bind(r.filer_hash)
    .bind(r.complainant_hash)
    .bind(r.sealed.map(|s| s.key_id.as_str()))
    .bind(r.sealed.map(|s| s.nonce.as_slice()))
    .bind(r.sealed.map(|s| s.cipher.as_slice()))
    .bind(r.linked_case_id)
    .bind(r.linked_complaint_id)
    .bind(&n.location.address)
    .bind(&n.location.address_id)
    .bind(n.location.lat)
    .bind(n.location.long)
    .bind(r.text.map(|s| s.key_id.as_str()))
    .bind(r.text.map(|s| s.nonce.as_slice()))
    .bind(r.text.map(|s| s.cipher.as_slice()))
    .fetch_one(conn)
    .await?)
}

/// Serializes filings of one complainant, target and category (the merge check and the
/// insert) for the rest of the transaction.
pub async fn lock_merge_key(conn: &mut PgConnection, key: &str) -> AppResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// The complaint of the same complainant, target and category filed since `since` and still
/// being handled (not yet replied), locked, if there is one.
pub async fn open_duplicate(
    conn: &mut PgConnection,
    complainant_hash: &str,
    n: &NewComplaint,
    since: DateTime<Utc>,
) -> AppResult<Option<ComplaintRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM complaints
         WHERE complainant_hash = $1 AND target_kind = $2 AND target_id = $3 AND category = $4
           AND state IN ('registered', 'assigned', 'investigating', 'concluded')
           AND filed_at >= $5 AND region_code = $6
         ORDER BY filed_at DESC LIMIT 1 FOR UPDATE"
    ))
    .bind(complainant_hash)
    .bind(n.target_kind)
    .bind(&n.target_id)
    .bind(&n.category.code)
    .bind(since)
    .bind(&n.region_code)
    .fetch_optional(conn)
    .await?)
}

/// Records a filing merged into `id` and counts it.
pub async fn merge(
    conn: &mut PgConnection,
    id: Uuid,
    n: &NewComplaint,
    at: DateTime<Utc>,
) -> AppResult<ComplaintRow> {
    sqlx::query(
        "INSERT INTO complaint_merges (complaint_id, channel, description, merged_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(n.channel)
    .bind(xiaoneng_kit::mask::text(&n.description))
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(sqlx::query_as(&format!(
        "UPDATE complaints SET merged = merged + 1, version = version + 1, updated_at = $2 WHERE id = $1
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(at)
    .fetch_one(conn)
    .await?)
}

/// A complaint by id (NOT_FOUND when there is none), locked when `lock`. Who may see it is
/// the service's to decide ([`crate::domain::sight`]).
pub async fn complaint(conn: &mut PgConnection, id: Uuid, lock: bool) -> AppResult<ComplaintRow> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM complaints WHERE id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| AppError::not_found("complaint", id.to_string()))
}

/// Writes a complaint's mutable state, if its version is still `version`.
pub async fn update(conn: &mut PgConnection, r: &ComplaintRow) -> AppResult<ComplaintRow> {
    sqlx::query_as(&format!(
        "UPDATE complaints SET state = $2, assigned_to = $3, started_on = $4, due_on = $5, escalated = $6,
            extended = $7, extension_reason = $8, finding = $9, findings = $10, responsible_unit = $11,
            responsible_person = $12, reply = $13, satisfaction = $14, callback_note = $15, reopened = $16,
            version = version + 1, updated_at = $18
         WHERE id = $1 AND version = $17 RETURNING {COLUMNS}"
    ))
    .bind(r.id)
    .bind(r.state)
    .bind(&r.assigned_to)
    .bind(r.started_on)
    .bind(r.due_on)
    .bind(r.escalated)
    .bind(r.extended)
    .bind(&r.extension_reason)
    .bind(r.finding)
    .bind(&r.findings)
    .bind(&r.responsible_unit)
    .bind(&r.responsible_person)
    .bind(&r.reply)
    .bind(&r.satisfaction)
    .bind(&r.callback_note)
    .bind(r.reopened)
    .bind(r.version)
    .bind(r.updated_at)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| AppError::Aborted("the complaint changed meanwhile; read it again".into()))
}

/// The sealed identity of a complaint (None when anonymous).
pub async fn sealed(conn: &mut PgConnection, id: Uuid) -> AppResult<Option<Sealed>> {
    Ok(sqlx::query_as(
        "SELECT identity_key_id AS key_id, identity_nonce AS nonce, identity_cipher AS cipher
         FROM complaints WHERE id = $1 AND identity_cipher IS NOT NULL",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Audits a read of a complaint's identity.
pub async fn audit_read(
    conn: &mut PgConnection,
    c: &ComplaintRow,
    reader: &str,
    purpose: &str,
    at: DateTime<Utc>,
) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO identity_reads (complaint_id, region_code, reader, purpose, read_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(c.id)
    .bind(&c.region_code)
    .bind(reader)
    .bind(purpose)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// One audited identity read.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReadRow {
    pub complaint_id: Uuid,
    pub region_code: String,
    pub reader: String,
    pub purpose: String,
    pub read_at: DateTime<Utc>,
}

/// Identity reads in regions matching `region_like` (of one complaint when given), newest
/// first (at most 500).
pub async fn reads(
    pool: &PgPool,
    region_like: &str,
    complaint: Option<Uuid>,
) -> AppResult<Vec<ReadRow>> {
    Ok(sqlx::query_as(
        "SELECT complaint_id, region_code, reader, purpose, read_at FROM identity_reads
         WHERE region_code LIKE $1 AND ($2::uuid IS NULL OR complaint_id = $2)
         ORDER BY read_at DESC LIMIT 500",
    )
    .bind(region_like)
    .bind(complaint)
    .fetch_all(pool)
    .await?)
}

/// The SQL of [`ListFilter`]: the same table as [`crate::domain::sight`], bound from $2.
const SIGHT: &str = "($2::text IS NULL OR filer_hash = $2)
    AND ($3::text IS NULL OR NOT ((target_kind = 'staff' AND target_id = $3) OR responsible_person = $3))
    AND ($4 OR NOT (to_discipline OR assigned_to = 'discipline'))
    AND ($5::text IS NULL OR assigned_to = $5)
    AND NOT $6";

/// Complaints in regions matching `region_like` that the filter admits, optionally in one
/// state, newest first, one page.
pub async fn list(
    pool: &PgPool,
    region_like: &str,
    filter: &ListFilter,
    state: Option<State>,
    page: &xiaoneng_kit::paging::PageRequest,
) -> AppResult<(Vec<ComplaintRow>, String)> {
    let before = match &page.after {
        Some(c) => {
            Some(Uuid::parse_str(c).map_err(|_| AppError::invalid("page_token", "is not valid"))?)
        }
        None => None,
    };
    let rows: Vec<ComplaintRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM complaints
         WHERE region_code LIKE $1 AND {SIGHT}
           AND ($7::text IS NULL OR state = $7) AND ($8::uuid IS NULL OR id < $8)
         ORDER BY id DESC LIMIT $9"
    ))
    .bind(region_like)
    .bind(&filter.filer)
    .bind(&filter.not_naming)
    .bind(filter.discipline)
    .bind(&filter.assigned_to)
    .bind(filter.nothing)
    .bind(state)
    .bind(before)
    .bind(page.size + 1)
    .fetch_all(pool)
    .await?;
    Ok(page.finish(rows, |r| r.id.to_string()))
}

/// How many discipline reports lie in regions matching `region_like` (optionally in one
/// state): the count the efficiency office may see.
pub async fn count_discipline(
    pool: &PgPool,
    region_like: &str,
    state: Option<State>,
) -> AppResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM complaints WHERE region_code LIKE $1
           AND (to_discipline OR assigned_to = 'discipline') AND ($2::text IS NULL OR state = $2)",
    )
    .bind(region_like)
    .bind(state)
    .fetch_one(pool)
    .await?)
}

/// Running complaints due on `today` not yet reminded for that deadline, locked for the
/// reminder pass (skipping what another replica holds).
pub async fn lock_due_today(
    conn: &mut PgConnection,
    today: NaiveDate,
    batch: i64,
) -> AppResult<Vec<ComplaintRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM complaints
         WHERE state IN ('registered', 'assigned', 'investigating', 'concluded') AND due_on = $1
           AND (reminded_for IS NULL OR reminded_for <> due_on)
         ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED"
    ))
    .bind(today)
    .bind(batch)
    .fetch_all(conn)
    .await?)
}

/// Running complaints past their deadline not yet escalated for it, locked for the
/// escalation pass (skipping what another replica holds).
pub async fn lock_overdue(
    conn: &mut PgConnection,
    today: NaiveDate,
    batch: i64,
) -> AppResult<Vec<ComplaintRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM complaints
         WHERE state IN ('registered', 'assigned', 'investigating', 'concluded') AND due_on < $1
           AND (escalated_for IS NULL OR escalated_for <> due_on)
         ORDER BY due_on, id LIMIT $2 FOR UPDATE SKIP LOCKED"
    ))
    .bind(today)
    .bind(batch)
    .fetch_all(conn)
    .await?)
}

/// Records the reminder for the deadline `due`.
pub async fn mark_reminded(conn: &mut PgConnection, id: Uuid, due: NaiveDate) -> AppResult<()> {
    sqlx::query("UPDATE complaints SET reminded_for = $2 WHERE id = $1")
        .bind(id)
        .bind(due)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the escalation for the deadline `due`.
pub async fn mark_escalated(conn: &mut PgConnection, id: Uuid, due: NaiveDate) -> AppResult<()> {
    sqlx::query("UPDATE complaints SET escalated_for = $2, escalated = true WHERE id = $1")
        .bind(id)
        .bind(due)
        .execute(conn)
        .await?;
    Ok(())
}

/// The latest replied or closed complaint of the same complainant, target and category filed
/// since `since`: a repeat after the reply is a new complaint linked to it.
pub async fn answered_before(
    conn: &mut PgConnection,
    complainant_hash: &str,
    n: &NewComplaint,
    since: DateTime<Utc>,
) -> AppResult<Option<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM complaints
         WHERE complainant_hash = $1 AND target_kind = $2 AND target_id = $3 AND category = $4
           AND state IN ('replied', 'called_back', 'closed') AND filed_at >= $5 AND region_code = $6
         ORDER BY filed_at DESC LIMIT 1",
    )
    .bind(complainant_hash)
    .bind(n.target_kind)
    .bind(&n.target_id)
    .bind(&n.category.code)
    .bind(since)
    .bind(&n.region_code)
    .fetch_optional(conn)
    .await?)
}

/// The complaint service's gauges: complaints being handled, and those past their limit.
pub const GAUGES: &[xiaoneng_kit::gauges::GaugeQuery] = &[
    xiaoneng_kit::gauges::GaugeQuery {
        metric: "complaint_open",
        labels: &["region"],
        sql: "SELECT region_code, count(*)::float8 FROM complaints
              WHERE state IN ('registered', 'assigned', 'investigating', 'concluded') GROUP BY 1",
    },
    xiaoneng_kit::gauges::GaugeQuery {
        metric: "complaint_open_past_limit",
        labels: &["region"],
        sql: "SELECT region_code, count(*)::float8 FROM complaints
              WHERE state IN ('registered', 'assigned', 'investigating', 'concluded') AND due_on < (now() AT TIME ZONE 'Asia/Shanghai')::date
              GROUP BY 1",
    },
];
