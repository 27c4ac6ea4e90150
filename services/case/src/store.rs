//! Case persistence: SQL with typed rows, no rules, no events, no transactions of its own. The use cases that combine these are in `service`.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;
use xiaoneng_kit::auth::Audience;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{AppError, AppResult};

use crate::domain::Reason;
pub use crate::domain::{
    CaseRecord, CaseRow, FiredRow, History, HistoryRow, InquiryRecord, InquiryRow, NewCase,
    NoticeMeta, Referral,
};
use crate::domain::{Due, State};

const COLS: &str = "id, region_code, matter_id, matter_version, matter_name, version, body, promised_limit,
    statutory_limit, first_responsible, submitted_on, accepted_on, promised_deadline, statutory_deadline, tolerance_due,
    applicant_citizen_id, calendar_epoch, provisional";

/// The case an earlier request with this id created.
pub async fn by_request(conn: &mut PgConnection, request_id: &str) -> AppResult<Option<CaseRow>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLS} FROM cases WHERE request_id = $1"))
            .bind(request_id)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn insert(
    conn: &mut PgConnection,
    c: &NewCase,
    request_id: Option<&str>,
    calendar_epoch: i64,
) -> AppResult<CaseRow> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO cases (id, region_code, matter_id, matter_version, matter_name, state, body, promised_limit,
            statutory_limit, first_responsible, submitted_on, request_id, applicant_citizen_id, calendar_epoch)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING {COLS}"
    ))
    .bind(Uuid::now_v7())
    .bind(c.region.as_str())
    .bind(c.matter_id)
    .bind(c.matter_version)
    .bind(&c.matter_name)
    .bind(State::Submitted)
    .bind(sqlx::types::Json(&c.record))
    .bind(c.promised_limit)
    .bind(c.statutory_limit)
    .bind(&c.first_responsible)
    .bind(c.submitted_on)
    .bind(request_id)
    .bind(&c.applicant_citizen_id)
    .bind(calendar_epoch)
    .fetch_one(conn)
    .await?)
}

/// The inquiry now leads to case `id`; one inquiry, one case.
pub async fn link_inquiry(conn: &mut PgConnection, inquiry: Uuid, id: Uuid) -> AppResult<()> {
    let linked = sqlx::query("UPDATE inquiries SET case_id = $2 WHERE id = $1 AND case_id IS NULL")
        .bind(inquiry)
        .bind(id)
        .execute(conn)
        .await?;
    if linked.rows_affected() != 1 {
        return Err(AppError::precondition(
            Reason::InquiryUsed.name(),
            "the inquiry already led to a case",
        ));
    }
    Ok(())
}

/// Locks case `id` in the caller's scope.
pub async fn lock(conn: &mut PgConnection, scope: &Audience, id: Uuid) -> AppResult<CaseRow> {
    let row: CaseRow = sqlx::query_as(&format!(
        "SELECT {COLS} FROM cases WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| AppError::not_found("case", id.to_string()))?;
    in_scope(scope, &row)?;
    Ok(row)
}

/// Brings the case's unfired timer rows in line with `due`; fired rows stay as they are.
pub async fn sync_timers(conn: &mut PgConnection, id: Uuid, due: &[Due]) -> AppResult<()> {
    let clocks: Vec<&str> = due.iter().map(|d| d.clock.as_str()).collect();
    let kinds: Vec<&str> = due.iter().map(|d| d.kind.as_str()).collect();
    let at: Vec<DateTime<Utc>> = due
        .iter()
        .map(|d| xiaoneng_kit::clock::BusinessClock::start_of(d.on))
        .collect();
    let deadlines: Vec<Option<NaiveDate>> = due.iter().map(|d| d.deadline).collect();
    let provisional: Vec<bool> = due.iter().map(|d| d.provisional).collect();
    sqlx::query(
        "DELETE FROM case_timers t WHERE t.case_id = $1 AND t.fired_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM unnest($2::text[], $3::text[]) AS d(clock, kind)
                           WHERE d.clock = t.clock AND d.kind = t.kind)",
    )
    .bind(id)
    .bind(&clocks)
    .bind(&kinds)
    .execute(&mut *conn)
    .await?;
    if !due.is_empty() {
        sqlx::query(
            "INSERT INTO case_timers (case_id, clock, kind, due_at, deadline, provisional)
             SELECT $1, * FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::date[], $6::bool[])
             ON CONFLICT (case_id, clock, kind) DO UPDATE
               SET due_at = EXCLUDED.due_at, deadline = EXCLUDED.deadline, provisional = EXCLUDED.provisional
             WHERE case_timers.fired_at IS NULL",
        )
        .bind(id)
        .bind(&clocks)
        .bind(&kinds)
        .bind(&at)
        .bind(&deadlines)
        .bind(&provisional)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The case's unfired timers due by `now`, as (clock, kind), earliest first.
pub async fn due_timers(
    conn: &mut PgConnection,
    id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT clock, kind FROM case_timers WHERE case_id = $1 AND fired_at IS NULL AND due_at <= $2
         ORDER BY due_at, kind",
    )
    .bind(id)
    .bind(now)
    .fetch_all(conn)
    .await?)
}

pub async fn mark_fired(
    conn: &mut PgConnection,
    id: Uuid,
    clock: &str,
    kind: &str,
    at: DateTime<Utc>,
) -> AppResult<()> {
    sqlx::query(
        "UPDATE case_timers SET fired_at = $4 WHERE case_id = $1 AND clock = $2 AND kind = $3",
    )
    .bind(id)
    .bind(clock)
    .bind(kind)
    .bind(at)
    .execute(conn)
    .await?;
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
    .bind(h.from)
    .bind(row.body.case.state)
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
            statutory_deadline = $6, tolerance_due = $7, joint = $8, supervised = $9,
            calendar_epoch = $10, provisional = $11
         WHERE id = $1 RETURNING {COLS}"
    ))
    .bind(row.id)
    .bind(row.body.case.state)
    .bind(&row.body)
    .bind(row.accepted_on)
    .bind(row.promised_deadline)
    .bind(row.statutory_deadline)
    .bind(row.tolerance_due)
    .bind(row.body.joint)
    .bind(row.body.supervised)
    .bind(row.calendar_epoch)
    .bind(row.provisional)
    .fetch_one(conn)
    .await?)
}

/// Open cases whose deadlines were computed under an epoch before `epoch`, locked for the
/// recompute pass (skipping any another writer or replica holds).
pub async fn lock_behind_calendar(
    conn: &mut PgConnection,
    epoch: i64,
    batch: i64,
) -> AppResult<Vec<CaseRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLS} FROM cases
         WHERE calendar_epoch < $1
           AND state NOT IN ('Closed', 'Withdrawn', 'NotAccepted', 'Returned', 'Delivered', 'Denied')
         ORDER BY calendar_epoch, id LIMIT $2 FOR UPDATE SKIP LOCKED"
    ))
    .bind(epoch)
    .bind(batch)
    .fetch_all(conn)
    .await?)
}

/// Writes what a calendar change moves: the deadlines, whether one is provisional, and the
/// epoch; the version goes up (the body is unchanged, so it is not rewritten).
pub async fn set_deadlines(conn: &mut PgConnection, row: &CaseRow) -> AppResult<()> {
    sqlx::query(
        "UPDATE cases SET promised_deadline = $2, statutory_deadline = $3, provisional = $4, calendar_epoch = $5,
            version = version + 1
         WHERE id = $1",
    )
    .bind(row.id)
    .bind(row.promised_deadline)
    .bind(row.statutory_deadline)
    .bind(row.provisional)
    .bind(row.calendar_epoch)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks cases as computed under `epoch` without another change.
pub async fn set_calendar_epoch(
    conn: &mut PgConnection,
    ids: &[Uuid],
    epoch: i64,
) -> AppResult<()> {
    sqlx::query("UPDATE cases SET calendar_epoch = $2 WHERE id = ANY($1)")
        .bind(ids)
        .bind(epoch)
        .execute(conn)
        .await?;
    Ok(())
}

/// Open cases with a provisional deadline.
pub async fn count_provisional(pool: &sqlx::PgPool) -> AppResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM cases WHERE provisional
           AND state NOT IN ('Closed', 'Withdrawn', 'NotAccepted', 'Returned', 'Delivered', 'Denied')",
    )
    .fetch_one(pool)
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

/// Cases in regions matching `region_like`, newest first.
pub async fn list(
    pool: &PgPool,
    region_like: &str,
    state: Option<State>,
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

/// An inquiry of the caller's region, locked for a change.
pub async fn lock_inquiry(
    conn: &mut PgConnection,
    scope: &RegionCode,
    id: Uuid,
) -> AppResult<InquiryRow> {
    sqlx::query_as(
        "SELECT id, region_code, body, created_at, case_id FROM inquiries WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?
    .filter(|r: &InquiryRow| RegionCode::parse(&r.region_code).is_ok_and(|r| scope.contains(&r)))
    .ok_or_else(|| AppError::not_found("inquiry", id.to_string()))
}

pub async fn update_inquiry(
    conn: &mut PgConnection,
    id: Uuid,
    rec: &InquiryRecord,
) -> AppResult<InquiryRow> {
    Ok(sqlx::query_as(
        "UPDATE inquiries SET body = $2 WHERE id = $1 RETURNING id, region_code, body, created_at, case_id",
    )
    .bind(id)
    .bind(sqlx::types::Json(rec))
    .fetch_one(conn)
    .await?)
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

/// The case service's gauges: open cases, and open cases by the clock and the escalation level
/// each has reached (a red-carded case counts at every level it passed); "about to breach": a
/// warning fired, the yellow card of the same clock not yet.
pub const GAUGES: &[xiaoneng_kit::gauges::GaugeQuery] = &[
    xiaoneng_kit::gauges::GaugeQuery {
        metric: "case_open_cases",
        labels: &["region"],
        sql: "SELECT region_code, count(*)::float8 FROM cases
              WHERE state NOT IN ('Closed', 'Withdrawn', 'NotAccepted', 'Returned', 'Delivered', 'Denied')
              GROUP BY 1",
    },
    xiaoneng_kit::gauges::GaugeQuery {
        metric: "case_open_escalated",
        labels: &["region", "clock", "level"],
        sql: "SELECT c.region_code, split_part(t.clock, ':', 1), t.kind, count(DISTINCT c.id)::float8
              FROM cases c JOIN case_timers t ON t.case_id = c.id
              WHERE t.fired_at IS NOT NULL AND t.kind IN ('warning', 'yellow_card', 'red_card')
                AND c.state NOT IN ('Closed', 'Withdrawn', 'NotAccepted', 'Returned', 'Delivered', 'Denied')
              GROUP BY 1, 2, 3",
    },
    xiaoneng_kit::gauges::GaugeQuery {
        metric: "case_about_to_breach",
        labels: &["region"],
        sql: "SELECT c.region_code, count(DISTINCT c.id)::float8
              FROM cases c JOIN case_timers w ON w.case_id = c.id AND w.kind = 'warning' AND w.fired_at IS NOT NULL
              JOIN case_timers y ON y.case_id = c.id AND y.clock = w.clock AND y.kind = 'yellow_card' AND y.fired_at IS NULL
              WHERE c.state NOT IN ('Closed', 'Withdrawn', 'NotAccepted', 'Returned', 'Delivered', 'Denied')
              GROUP BY 1",
    },
];
