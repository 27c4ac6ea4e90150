//! Case persistence. A change locks the row, checks the caller's expected version (a stale
//! one is ABORTED: optimistic concurrency as the API contract, the row lock so two writers
//! never both pass), applies the domain rule, and writes the case, its history entry and its
//! events in one transaction.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{outbox, AppError, AppResult};

use crate::domain::{self, Case, State};

/// The stored body of a case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseRecord {
    pub case: Case,
    pub applicant_name: String,
    pub applicant_phone: String,
    pub agent_name: String,
    pub notices: Vec<NoticeMeta>,
    pub tolerated: Vec<String>,
    /// Stops of the legal clock (suspensions).
    #[serde(default)]
    pub pauses: Vec<xiaoneng_calendar::Pause>,
    /// Working days added by the one extension.
    #[serde(default)]
    pub extension: u32,
    #[serde(default)]
    pub decided_on: Option<NaiveDate>,
    #[serde(default)]
    pub certificate_number: String,
    #[serde(default)]
    pub delivery_method: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoticeMeta {
    pub reason: String,
    pub at: DateTime<Utc>,
    pub violation: Vec<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CaseRow {
    pub id: Uuid,
    pub region_code: String,
    pub matter_id: Uuid,
    pub matter_version: i32,
    pub matter_name: String,
    pub version: i64,
    pub body: sqlx::types::Json<CaseRecord>,
    pub promised_limit: i32,
    pub statutory_limit: i32,
    pub first_responsible: String,
    pub submitted_on: NaiveDate,
    pub accepted_on: Option<NaiveDate>,
    pub promised_deadline: Option<NaiveDate>,
    pub statutory_deadline: Option<NaiveDate>,
    pub tolerance_due: Option<NaiveDate>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    pub action: String,
    pub from_state: String,
    pub to_state: String,
    pub actor: String,
    pub actor_role: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

const COLS: &str = "id, region_code, matter_id, matter_version, matter_name, version, body, promised_limit,
    statutory_limit, first_responsible, submitted_on, accepted_on, promised_deadline, statutory_deadline, tolerance_due";

pub fn state_name(s: State) -> String {
    format!("{s:?}")
}

pub struct NewCase {
    pub region: RegionCode,
    pub matter_id: Uuid,
    pub matter_version: i32,
    pub matter_name: String,
    pub promised_limit: i32,
    pub statutory_limit: i32,
    pub record: CaseRecord,
    pub first_responsible: String,
    pub actor_role: String,
    pub submitted_on: NaiveDate,
}

pub async fn submit(pool: &PgPool, c: &NewCase, request_id: Option<&str>) -> AppResult<CaseRow> {
    let mut tx = pool.begin().await?;
    if let Some(rid) = request_id {
        let done: Option<CaseRow> = sqlx::query_as(&format!("SELECT {COLS} FROM cases WHERE request_id = $1"))
            .bind(rid)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = done {
            return Ok(row);
        }
    }
    let id = Uuid::now_v7();
    let row: CaseRow = sqlx::query_as(&format!(
        "INSERT INTO cases (id, region_code, matter_id, matter_version, matter_name, state, body, promised_limit,
            statutory_limit, first_responsible, submitted_on, request_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {COLS}"
    ))
    .bind(id)
    .bind(c.region.as_str())
    .bind(c.matter_id)
    .bind(c.matter_version)
    .bind(&c.matter_name)
    .bind(state_name(State::Submitted))
    .bind(sqlx::types::Json(&c.record))
    .bind(c.promised_limit)
    .bind(c.statutory_limit)
    .bind(&c.first_responsible)
    .bind(c.submitted_on)
    .bind(request_id)
    .fetch_one(&mut *tx)
    .await?;
    record_history(&mut tx, id, "submit", State::Submitted, State::Submitted, &c.first_responsible, &c.actor_role, "").await?;
    outbox::enqueue(&mut tx, &crate::events::transitioned(&row, "submit", State::Submitted, &c.first_responsible, &c.actor_role, "")?)
        .await?;
    tx.commit().await?;
    Ok(row)
}

#[allow(clippy::too_many_arguments)]
async fn record_history(
    conn: &mut sqlx::PgConnection,
    id: Uuid,
    action: &str,
    from: State,
    to: State,
    actor: &str,
    role: &str,
    reason: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO case_history (case_id, action, from_state, to_state, actor, actor_role, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(action)
    .bind(state_name(from))
    .bind(state_name(to))
    .bind(actor)
    .bind(role)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// Who changes a case, and why.
pub struct Change<'a> {
    pub scope: &'a RegionCode,
    pub expected_version: i64,
    pub action: &'a str,
    pub actor: &'a str,
    pub actor_role: &'a str,
    pub reason: &'a str,
}

/// Applies `rule` to the case under the row lock and persists the result with its history and
/// events. `rule` may also set the row's dates; on any error nothing is written.
pub async fn change<F>(pool: &PgPool, id: Uuid, ch: &Change<'_>, rule: F) -> AppResult<CaseRow>
where
    F: FnOnce(&mut CaseRow) -> AppResult<domain::Effects>,
{
    let mut tx = pool.begin().await?;
    let mut row: CaseRow = sqlx::query_as(&format!("SELECT {COLS} FROM cases WHERE id = $1 FOR UPDATE"))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .filter(|r: &CaseRow| RegionCode::parse(&r.region_code).is_ok_and(|r| ch.scope.contains(&r)))
        .ok_or_else(|| AppError::not_found("case", id.to_string()))?;
    if row.version != ch.expected_version {
        return Err(AppError::Aborted(format!(
            "the case is at version {}, not {}; reload and retry",
            row.version, ch.expected_version
        )));
    }
    let from = row.body.case.state;
    let effects = rule(&mut row)?;
    let to = row.body.case.state;
    let updated: CaseRow = sqlx::query_as(&format!(
        "UPDATE cases SET state = $2, version = version + 1, body = $3, accepted_on = $4, promised_deadline = $5,
            statutory_deadline = $6, tolerance_due = $7
         WHERE id = $1 RETURNING {COLS}"
    ))
    .bind(id)
    .bind(state_name(to))
    .bind(&row.body)
    .bind(row.accepted_on)
    .bind(row.promised_deadline)
    .bind(row.statutory_deadline)
    .bind(row.tolerance_due)
    .fetch_one(&mut *tx)
    .await?;
    record_history(&mut tx, id, ch.action, from, to, ch.actor, ch.actor_role, ch.reason).await?;
    outbox::enqueue(&mut tx, &crate::events::transitioned(&updated, ch.action, from, ch.actor, ch.actor_role, ch.reason)?)
        .await?;
    if !effects.notice_violation.is_empty() {
        outbox::enqueue(&mut tx, &crate::events::notice_violated(&updated, &effects.notice_violation, ch.actor)?).await?;
    }
    tx.commit().await?;
    Ok(updated)
}

pub async fn get(pool: &PgPool, scope: &RegionCode, id: Uuid) -> AppResult<(CaseRow, Vec<HistoryRow>)> {
    let row: CaseRow = sqlx::query_as(&format!("SELECT {COLS} FROM cases WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .filter(|r: &CaseRow| RegionCode::parse(&r.region_code).is_ok_and(|r| scope.contains(&r)))
        .ok_or_else(|| AppError::not_found("case", id.to_string()))?;
    let history = sqlx::query_as(
        "SELECT action, from_state, to_state, actor, actor_role, reason, at FROM case_history WHERE case_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok((row, history))
}
