//! Case persistence. A change locks the row, checks the caller's expected version (a stale
//! one is ABORTED: optimistic concurrency as the API contract, the row lock so two writers
//! never both pass), applies the domain rule, and writes the case, its history entry and its
//! events in one transaction.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;
use xiaoneng_kit::auth::Audience;
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
    /// The matter's steps and their limits (working days), kept from submission.
    #[serde(default)]
    pub steps: Vec<(String, u32)>,
    /// The matter step whose limit each review step has, and when review started.
    #[serde(default)]
    pub review_step: Option<(String, u32)>,
    #[serde(default)]
    pub review_started_on: Option<NaiveDate>,
    /// 首问负责: where the case is handled now and how it got there.
    #[serde(default)]
    pub handling_department: String,
    #[serde(default)]
    pub handler: String,
    #[serde(default)]
    pub referrals: Vec<Referral>,
    /// 联办 / 督办.
    #[serde(default)]
    pub joint: bool,
    #[serde(default)]
    pub supervised: bool,
    /// 代办 or 帮办 when an agent acts for the applicant.
    #[serde(default)]
    pub agent_kind: String,
    #[serde(default)]
    pub deemed_accepted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Referral {
    pub from_department: String,
    pub to_department: String,
    pub handler: String,
    pub reason: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

impl CaseRecord {
    /// 容缺 materials still outstanding.
    pub fn tolerated_outstanding(&self) -> Vec<String> {
        self.tolerated
            .iter()
            .filter(|m| !self.case.supplied.contains(*m))
            .cloned()
            .collect()
    }
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
    /// The applicant's citizen account ('' when the applicant has none).
    pub applicant_citizen_id: String,
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
    statutory_limit, first_responsible, submitted_on, accepted_on, promised_deadline, statutory_deadline, tolerance_due,
    applicant_citizen_id";

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
    /// Who submitted: the first-responsible, or an agent acting for the applicant.
    pub actor: String,
    pub actor_role: String,
    pub submitted_on: NaiveDate,
    /// The applicant's citizen account ('' when the applicant has none).
    pub applicant_citizen_id: String,
}

/// What every write needs besides the case: the calendars and the escalation policy to keep
/// the timer index right, and the business time of the change.
pub struct Ctx<'a> {
    pub calendars: &'a xiaoneng_calendar::Calendars,
    pub policy: crate::timers::Policy,
    pub now: DateTime<Utc>,
}

impl Ctx<'_> {
    pub fn today(&self) -> NaiveDate {
        self.now
            .with_timezone(&xiaoneng_kit::clock::cst())
            .date_naive()
    }
}

pub async fn submit(
    pool: &PgPool,
    ctx: &Ctx<'_>,
    c: &NewCase,
    request_id: Option<&str>,
    inquiry: Option<Uuid>,
) -> AppResult<CaseRow> {
    let mut tx = pool.begin().await?;
    if let Some(rid) = request_id {
        let done: Option<CaseRow> =
            sqlx::query_as(&format!("SELECT {COLS} FROM cases WHERE request_id = $1"))
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
            statutory_limit, first_responsible, submitted_on, request_id, applicant_citizen_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {COLS}"
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
    .bind(&c.applicant_citizen_id)
    .fetch_one(&mut *tx)
    .await?;
    if let Some(inquiry) = inquiry {
        // The inquiry now leads to this case; one inquiry, one case.
        let linked =
            sqlx::query("UPDATE inquiries SET case_id = $2 WHERE id = $1 AND case_id IS NULL")
                .bind(inquiry)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if linked.rows_affected() != 1 {
            return Err(AppError::precondition(
                "INQUIRY_USED",
                "the inquiry already led to a case",
            ));
        }
    }
    let ev = History {
        action: "submit",
        from: State::Submitted,
        actor: &c.actor,
        role: &c.actor_role,
        reason: "",
        at: ctx.now,
    };
    record(&mut tx, &row, &ev, ctx.today()).await?;
    crate::timers::sync(&mut tx, &row, ctx).await?;
    tx.commit().await?;
    Ok(row)
}

/// One entry of a case's history.
pub struct History<'a> {
    pub action: &'a str,
    pub from: State,
    pub actor: &'a str,
    pub role: &'a str,
    pub reason: &'a str,
    pub at: DateTime<Utc>,
}

/// Writes the history entry of a change of `row` (already updated) and its event.
pub async fn record(
    conn: &mut sqlx::PgConnection,
    row: &CaseRow,
    h: &History<'_>,
    today: NaiveDate,
) -> AppResult<()> {
    insert_history(&mut *conn, row, h).await?;
    outbox::enqueue(conn, &crate::events::transitioned(row, h, today)?).await?;
    Ok(())
}

/// Writes a history entry only (escalations: they have their own event).
pub async fn insert_history(
    conn: &mut sqlx::PgConnection,
    row: &CaseRow,
    h: &History<'_>,
) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO case_history (case_id, action, from_state, to_state, actor, actor_role, reason, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(row.id)
    .bind(h.action)
    .bind(state_name(h.from))
    .bind(state_name(row.body.case.state))
    .bind(h.actor)
    .bind(h.role)
    .bind(h.reason)
    .bind(h.at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes the row's mutable columns; returns it as stored.
pub async fn update(conn: &mut sqlx::PgConnection, row: &CaseRow) -> AppResult<CaseRow> {
    Ok(sqlx::query_as(&format!(
        "UPDATE cases SET state = $2, version = version + 1, body = $3, accepted_on = $4, promised_deadline = $5,
            statutory_deadline = $6, tolerance_due = $7, joint = $8, supervised = $9
         WHERE id = $1 RETURNING {COLS}"
    ))
    .bind(row.id)
    .bind(state_name(row.body.case.state))
    .bind(&row.body)
    .bind(row.accepted_on)
    .bind(row.promised_deadline)
    .bind(row.statutory_deadline)
    .bind(row.tolerance_due)
    .bind(row.body.joint)
    .bind(row.body.supervised)
    .fetch_one(conn)
    .await?)
}

/// Locks the given cases (skipping any another writer holds) for the timer loop.
pub async fn lock_due(
    conn: &mut sqlx::PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> AppResult<Vec<CaseRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLS} FROM cases WHERE id IN (
            SELECT case_id FROM case_timers WHERE fired_at IS NULL AND due_at <= $1 ORDER BY due_at LIMIT $2)
         FOR UPDATE SKIP LOCKED"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Who changes a case, and why.
pub struct Change<'a> {
    /// Whose cases the caller may act on.
    pub scope: &'a Audience,
    pub expected_version: i64,
    pub action: &'a str,
    pub actor: &'a str,
    pub actor_role: &'a str,
    pub reason: &'a str,
}

/// Applies `rule` to the case under the row lock and persists the result with its history,
/// events and timers. `rule` may also set the row's dates; on any error nothing is written.
pub async fn change<F>(
    pool: &PgPool,
    ctx: &Ctx<'_>,
    id: Uuid,
    ch: &Change<'_>,
    rule: F,
) -> AppResult<CaseRow>
where
    F: FnOnce(&mut CaseRow) -> AppResult<domain::Effects>,
{
    let mut tx = pool.begin().await?;
    let mut row: CaseRow = sqlx::query_as(&format!(
        "SELECT {COLS} FROM cases WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| AppError::not_found("case", id.to_string()))?;
    in_scope(ch.scope, &row)?;
    if row.version != ch.expected_version {
        return Err(AppError::Aborted(format!(
            "the case is at version {}, not {}; reload and retry",
            row.version, ch.expected_version
        )));
    }
    let from = row.body.case.state;
    let effects = rule(&mut row)?;
    let updated = update(&mut tx, &row).await?;
    let h = History {
        action: ch.action,
        from,
        actor: ch.actor,
        role: ch.actor_role,
        reason: ch.reason,
        at: ctx.now,
    };
    record(&mut tx, &updated, &h, ctx.today()).await?;
    if !effects.notice_violation.is_empty() {
        outbox::enqueue(
            &mut tx,
            &crate::events::notice_violated(&updated, &effects.notice_violation, ch.actor)?,
        )
        .await?;
    }
    crate::timers::sync(&mut tx, &updated, ctx).await?;
    tx.commit().await?;
    Ok(updated)
}

/// Cases in regions matching `region_like`, newest first.
pub async fn list(
    pool: &PgPool,
    region_like: &str,
    state: Option<&str>,
    flagged_only: bool,
    page: &xiaoneng_kit::paging::PageRequest,
) -> AppResult<(Vec<CaseRow>, String)> {
    let before = match &page.after {
        Some(c) => {
            Some(Uuid::parse_str(c).map_err(|_| AppError::invalid("page_token", "is not valid"))?)
        }
        None => None,
    };
    let rows: Vec<CaseRow> = sqlx::query_as(&format!(
        "SELECT {COLS} FROM cases
         WHERE region_code LIKE $1 AND ($2::text IS NULL OR state = $2) AND (NOT $3 OR joint OR supervised)
           AND ($4::uuid IS NULL OR id < $4)
         ORDER BY id DESC LIMIT $5"
    ))
    .bind(region_like)
    .bind(state)
    .bind(flagged_only)
    .bind(before)
    .bind(page.size + 1)
    .fetch_all(pool)
    .await?;
    Ok(page.finish(rows, |r| r.id.to_string()))
}

/// An escalation that fired.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FiredRow {
    pub clock: String,
    pub kind: String,
    pub deadline: Option<NaiveDate>,
    pub fired_at: DateTime<Utc>,
}

pub async fn fired_escalations(pool: &PgPool, id: Uuid) -> AppResult<Vec<FiredRow>> {
    Ok(sqlx::query_as(
        "SELECT clock, kind, deadline, fired_at FROM case_timers
         WHERE case_id = $1 AND fired_at IS NOT NULL AND kind IN ('warning', 'yellow_card', 'red_card')
         ORDER BY fired_at, clock, kind",
    )
    .bind(id)
    .fetch_all(pool)
    .await?)
}

/// A case is in the caller's scope: their region, and their own case when they are a citizen.
fn in_scope(scope: &Audience, row: &CaseRow) -> AppResult<()> {
    let region = RegionCode::parse(&row.region_code)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored region of {}: {e}", row.id)))?;
    scope.check(
        "case",
        &row.id.to_string(),
        &region,
        &row.applicant_citizen_id,
    )
}

pub async fn get(
    pool: &PgPool,
    scope: &Audience,
    id: Uuid,
) -> AppResult<(CaseRow, Vec<HistoryRow>)> {
    let row: CaseRow = sqlx::query_as(&format!("SELECT {COLS} FROM cases WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| AppError::not_found("case", id.to_string()))?;
    in_scope(scope, &row)?;
    let history = sqlx::query_as(
        "SELECT action, from_state, to_state, actor, actor_role, reason, at FROM case_history WHERE case_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok((row, history))
}

/// A citizen's inquiry (咨询): 首问负责 starts with whoever received it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InquiryRecord {
    pub citizen_name: String,
    pub question: String,
    pub first_responsible: String,
    pub handling_department: String,
    pub handler: String,
    #[serde(default)]
    pub referrals: Vec<Referral>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InquiryRow {
    pub id: Uuid,
    pub region_code: String,
    pub body: sqlx::types::Json<InquiryRecord>,
    pub created_at: DateTime<Utc>,
    pub case_id: Option<Uuid>,
}

pub async fn open_inquiry(
    pool: &PgPool,
    region: &RegionCode,
    rec: &InquiryRecord,
    at: DateTime<Utc>,
) -> AppResult<InquiryRow> {
    Ok(sqlx::query_as(
        "INSERT INTO inquiries (id, region_code, body, first_responsible, created_at) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, region_code, body, created_at, case_id",
    )
    .bind(Uuid::now_v7())
    .bind(region.as_str())
    .bind(sqlx::types::Json(rec))
    .bind(&rec.first_responsible)
    .bind(at)
    .fetch_one(pool)
    .await?)
}

pub async fn get_inquiry(
    pool: &PgPool,
    scope: &RegionCode,
    id: Uuid,
) -> AppResult<(InquiryRow, InquiryRecord)> {
    let row: InquiryRow = sqlx::query_as(
        "SELECT id, region_code, body, created_at, case_id FROM inquiries WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?
    .filter(|r: &InquiryRow| RegionCode::parse(&r.region_code).is_ok_and(|r| scope.contains(&r)))
    .ok_or_else(|| AppError::not_found("inquiry", id.to_string()))?;
    let rec = row.body.0.clone();
    Ok((row, rec))
}

/// Refers an inquiry on under its row lock; the first-responsible never changes.
pub async fn refer_inquiry(
    pool: &PgPool,
    scope: &RegionCode,
    id: Uuid,
    referral: Referral,
) -> AppResult<InquiryRow> {
    let mut tx = pool.begin().await?;
    let row: InquiryRow = sqlx::query_as(
        "SELECT id, region_code, body, created_at, case_id FROM inquiries WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .filter(|r: &InquiryRow| RegionCode::parse(&r.region_code).is_ok_and(|r| scope.contains(&r)))
    .ok_or_else(|| AppError::not_found("inquiry", id.to_string()))?;
    let mut rec = row.body.0;
    let mut referral = referral;
    referral.from_department = rec.handling_department.clone();
    rec.handling_department = referral.to_department.clone();
    rec.handler = referral.handler.clone();
    rec.referrals.push(referral);
    let row = sqlx::query_as(
        "UPDATE inquiries SET body = $2 WHERE id = $1 RETURNING id, region_code, body, created_at, case_id",
    )
    .bind(id)
    .bind(sqlx::types::Json(&rec))
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Inquiries in regions matching `region_like`, newest first.
pub async fn list_inquiries(
    pool: &PgPool,
    region_like: &str,
    page: &xiaoneng_kit::paging::PageRequest,
) -> AppResult<(Vec<InquiryRow>, String)> {
    let before = match &page.after {
        Some(c) => {
            Some(Uuid::parse_str(c).map_err(|_| AppError::invalid("page_token", "is not valid"))?)
        }
        None => None,
    };
    let rows: Vec<InquiryRow> = sqlx::query_as(
        "SELECT id, region_code, body, created_at, case_id FROM inquiries
         WHERE region_code LIKE $1 AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
    )
    .bind(region_like)
    .bind(before)
    .bind(page.size + 1)
    .fetch_all(pool)
    .await?;
    Ok(page.finish(rows, |r| r.id.to_string()))
}
