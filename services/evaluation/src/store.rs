//! SQL of invitations and ratings, on the caller's connection or transaction; never writes
//! events.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;
use xiaoneng_kit::auth::Audience;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::AppResult;

use crate::domain::{
    FlagKind, FlagRow, InvitationRow, Loop, NewInvitation, NewRating, PublicRow, RatingRow, StatRow,
};

const INVITATION: &str =
    "id, region_code, occurrence, source_key, ticket_id, case_id, matter_id, matter_name,
    window_code, hall_id, department, staff_id, citizen_id, opened_at, rate_by, rating_id, expired_at";
const RATING: &str =
    "id, invitation_id, region_code, level, scores, comment, tags, reason, channel, anonymous,
    follow_up, rater, rated_at, rated_on, bad_loop, version, appeal, excluded, device, defaulted";

/// Opens an invitation unless its occurrence has one; the new row, or None.
pub async fn open_invitation(
    conn: &mut PgConnection,
    n: &NewInvitation,
) -> AppResult<Option<InvitationRow>> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO invitations (id, region_code, occurrence, source_key, ticket_id, case_id, matter_id, matter_name,
            window_code, hall_id, department, staff_id, citizen_id, opened_at, rate_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (source_key) DO NOTHING RETURNING {INVITATION}"
    ))
    .bind(Uuid::now_v7())
    .bind(&n.region_code)
    .bind(n.occurrence)
    .bind(&n.source_key)
    .bind(&n.ticket_id)
    .bind(&n.case_id)
    .bind(&n.matter_id)
    .bind(&n.matter_name)
    .bind(&n.window_code)
    .bind(&n.hall_id)
    .bind(&n.department)
    .bind(&n.staff_id)
    .bind(&n.citizen_id)
    .bind(n.opened_at)
    .bind(n.rate_by)
    .fetch_optional(conn)
    .await?)
}

/// An invitation the audience may see (NOT_FOUND outside the region, PERMISSION_DENIED for
/// another citizen's), locked when `lock`.
pub async fn invitation(
    conn: &mut PgConnection,
    scope: &Audience,
    id: Uuid,
    lock: bool,
) -> AppResult<InvitationRow> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row: InvitationRow = sqlx::query_as(&format!(
        "SELECT {INVITATION} FROM invitations WHERE id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| xiaoneng_kit::AppError::not_found("invitation", id.to_string()))?;
    let region = RegionCode::parse(&row.region_code).map_err(anyhow::Error::msg)?;
    scope.check("invitation", &id.to_string(), &region, &row.citizen_id)?;
    Ok(row)
}

/// Stores a rating of `inv` (the region's default when `defaulted`) and marks the invitation
/// rated.
#[allow(clippy::too_many_arguments)]
pub async fn insert_rating(
    conn: &mut PgConnection,
    inv: &InvitationRow,
    r: &NewRating,
    rater: &str,
    at: chrono::DateTime<chrono::Utc>,
    on: chrono::NaiveDate,
    bad_loop: Option<&Loop>,
    defaulted: bool,
) -> AppResult<RatingRow> {
    let scores: Vec<(String, i32)> = r
        .scores
        .iter()
        .map(|(i, l)| (i.clone(), l.value()))
        .collect();
    let row: RatingRow = sqlx::query_as(&format!(
        "INSERT INTO ratings (id, invitation_id, region_code, level, scores, comment, tags, reason, channel, anonymous,
            rater, rated_at, rated_on, bad_loop, loop_state, step_due, device, defaulted, staff_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
         RETURNING {RATING}"
    ))
    .bind(Uuid::now_v7())
    .bind(inv.id)
    .bind(&inv.region_code)
    .bind(r.level.value())
    .bind(sqlx::types::Json(&scores))
    .bind(&r.comment)
    .bind(&r.tags)
    .bind(&r.reason)
    .bind(r.channel)
    .bind(r.anonymous)
    .bind(rater)
    .bind(at)
    .bind(on)
    .bind(bad_loop.map(sqlx::types::Json))
    .bind(bad_loop.map(|l| l.state))
    .bind(bad_loop.and_then(|l| l.step_due))
    .bind(&r.device)
    .bind(defaulted)
    .bind(&inv.staff_id)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("UPDATE invitations SET rating_id = $2 WHERE id = $1")
        .bind(inv.id)
        .bind(row.id)
        .execute(conn)
        .await?;
    Ok(row)
}

/// A rating, locked when `lock`.
pub async fn rating(conn: &mut PgConnection, id: Uuid, lock: bool) -> AppResult<RatingRow> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(&format!("SELECT {RATING} FROM ratings WHERE id = $1{lock}"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| xiaoneng_kit::AppError::not_found("rating", id.to_string()))
}

/// Writes a rating's follow-up and loop.
pub async fn update_rating(conn: &mut PgConnection, r: &RatingRow) -> AppResult<RatingRow> {
    let l = r.bad_loop.as_ref().map(|l| &l.0);
    Ok(sqlx::query_as(&format!(
        "UPDATE ratings SET follow_up = $2, bad_loop = $3, loop_state = $4, step_due = $5, appeal = $6,
            excluded = $7, version = version + 1
         WHERE id = $1 RETURNING {RATING}"
    ))
    .bind(r.id)
    .bind(&r.follow_up)
    .bind(l.map(sqlx::types::Json))
    .bind(l.map(|l| l.state))
    .bind(l.and_then(|l| l.step_due))
    .bind(r.appeal.as_ref())
    .bind(r.excluded)
    .fetch_one(conn)
    .await?)
}

/// Ratings within the last `minutes` before `at` from `device` and of `staff` (the new one
/// included), with their ids: what the manipulation signals look at.
pub async fn recent(
    conn: &mut PgConnection,
    device: &str,
    staff: &str,
    at: chrono::DateTime<chrono::Utc>,
    minutes: u32,
) -> AppResult<(Vec<Uuid>, Vec<Uuid>)> {
    let since = at - chrono::Duration::minutes(minutes as i64);
    let by_device: Vec<Uuid> = if device.is_empty() {
        Vec::new()
    } else {
        sqlx::query_scalar("SELECT id FROM ratings WHERE device = $1 AND rated_at > $2 AND rated_at <= $3 ORDER BY id")
            .bind(device)
            .bind(since)
            .bind(at)
            .fetch_all(&mut *conn)
            .await?
    };
    let of_staff: Vec<Uuid> = if staff.is_empty() {
        Vec::new()
    } else {
        sqlx::query_scalar(
            "SELECT id FROM ratings WHERE staff_id = $1 AND staff_id <> '' AND rated_at > $2 AND rated_at <= $3
             ORDER BY id",
        )
        .bind(staff)
        .bind(since)
        .bind(at)
        .fetch_all(&mut *conn)
        .await?
    };
    Ok((by_device, of_staff))
}

/// Flags `kind` on `subject` unless it was flagged within the window; the new flag's id.
#[allow(clippy::too_many_arguments)]
pub async fn flag(
    conn: &mut PgConnection,
    region: &str,
    kind: FlagKind,
    subject: &str,
    ratings: &[Uuid],
    minutes: u32,
    at: chrono::DateTime<chrono::Utc>,
) -> AppResult<Option<Uuid>> {
    let since = at - chrono::Duration::minutes(minutes as i64);
    Ok(sqlx::query_scalar(
        "INSERT INTO manipulation_flags (id, region_code, kind, subject, ratings, window_minutes, rating_ids, flagged_at)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8
         WHERE NOT EXISTS (SELECT 1 FROM manipulation_flags WHERE kind = $3 AND subject = $4 AND flagged_at > $9)
         RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(region)
    .bind(kind)
    .bind(subject)
    .bind(ratings.len() as i32)
    .bind(minutes as i32)
    .bind(ratings)
    .bind(at)
    .bind(since)
    .fetch_optional(conn)
    .await?)
}

/// Flags in regions matching `region_like`, newest first (at most 500).
pub async fn flags(pool: &PgPool, region_like: &str) -> AppResult<Vec<FlagRow>> {
    Ok(sqlx::query_as(
        "SELECT id, region_code, kind, subject, ratings, window_minutes, rating_ids, flagged_at
         FROM manipulation_flags WHERE region_code LIKE $1 ORDER BY flagged_at DESC LIMIT 500",
    )
    .bind(region_like)
    .fetch_all(pool)
    .await?)
}

/// Open loops whose step was due before `today` and not yet reported overdue for that due
/// date, locked for the overdue pass (skipping what another replica holds).
pub async fn lock_overdue(
    conn: &mut PgConnection,
    today: chrono::NaiveDate,
    batch: i64,
) -> AppResult<Vec<RatingRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {RATING} FROM ratings
         WHERE loop_state NOT IN ('closed', 'escalated') AND step_due < $1
           AND (overdue_notified_for IS NULL OR overdue_notified_for <> step_due)
         ORDER BY step_due LIMIT $2 FOR UPDATE SKIP LOCKED"
    ))
    .bind(today)
    .bind(batch)
    .fetch_all(conn)
    .await?)
}

/// Open loops whose step is due on `today` and not yet reminded for that day, locked for the
/// reminder pass (skipping what another replica holds).
pub async fn lock_due_today(
    conn: &mut PgConnection,
    today: chrono::NaiveDate,
    batch: i64,
) -> AppResult<Vec<RatingRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {RATING} FROM ratings
         WHERE loop_state NOT IN ('closed', 'escalated') AND step_due = $1
           AND (reminded_for IS NULL OR reminded_for <> step_due)
         ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED"
    ))
    .bind(today)
    .bind(batch)
    .fetch_all(conn)
    .await?)
}

/// Records that the reminder for the step due on `due` was sent.
pub async fn mark_reminded(
    conn: &mut PgConnection,
    id: Uuid,
    due: chrono::NaiveDate,
) -> AppResult<()> {
    sqlx::query("UPDATE ratings SET reminded_for = $2 WHERE id = $1")
        .bind(id)
        .bind(due)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records that the overdue of the step due on `due` was reported.
pub async fn mark_overdue(
    conn: &mut PgConnection,
    id: Uuid,
    due: chrono::NaiveDate,
) -> AppResult<()> {
    sqlx::query("UPDATE ratings SET overdue_notified_for = $2 WHERE id = $1")
        .bind(id)
        .bind(due)
        .execute(conn)
        .await?;
    Ok(())
}

/// The statistics of ratings in regions matching `region_like` rated from `from` to `to`,
/// grouped by `group` (a column of the invitation, or the region).
pub async fn statistics(
    pool: &PgPool,
    region_like: &str,
    group: &str,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> AppResult<Vec<StatRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT i.{group} AS key, count(*) AS ratings,
                count(*) FILTER (WHERE r.level >= 3) AS satisfied,
                count(*) FILTER (WHERE r.level <= 2) AS bad,
                count(*) FILTER (WHERE r.level <= 2 AND r.bad_loop->>'callback_at' IS NOT NULL) AS called_back,
                count(*) FILTER (WHERE r.level <= 2 AND r.loop_state = 'closed') AS rectified
         FROM ratings r JOIN invitations i ON i.id = r.invitation_id
         WHERE r.region_code LIKE $1 AND r.rated_on BETWEEN $2 AND $3 AND NOT r.excluded
         GROUP BY i.{group} ORDER BY i.{group}"
    ))
    .bind(region_like)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?)
}

/// Open loops whose deadline was computed under an epoch before `epoch`, locked for the
/// recompute pass (skipping what another replica holds).
pub async fn lock_behind_calendar(
    conn: &mut PgConnection,
    epoch: i64,
    batch: i64,
) -> AppResult<Vec<RatingRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {RATING} FROM ratings
         WHERE calendar_epoch < $1 AND loop_state IS NOT NULL AND loop_state NOT IN ('closed', 'escalated')
         ORDER BY calendar_epoch, id LIMIT $2 FOR UPDATE SKIP LOCKED"
    ))
    .bind(epoch)
    .bind(batch)
    .fetch_all(conn)
    .await?)
}

/// Marks ratings as computed under `epoch`.
pub async fn set_calendar_epoch(
    conn: &mut PgConnection,
    ids: &[Uuid],
    epoch: i64,
) -> AppResult<()> {
    sqlx::query("UPDATE ratings SET calendar_epoch = $2 WHERE id = ANY($1)")
        .bind(ids)
        .bind(epoch)
        .execute(conn)
        .await?;
    Ok(())
}

/// Invitations in regions matching `region_like` (a citizen's own when `citizen` is set),
/// newest first, optionally of one ticket or case, one page.
/// Which invitations a list reads: inside `region_like`, a citizen's own, and each other
/// field when not empty.
pub struct InvitationFilter<'a> {
    pub region_like: &'a str,
    pub citizen: Option<&'a str>,
    pub ticket: &'a str,
    pub case: &'a str,
    pub hall: &'a str,
    pub window_code: &'a str,
    pub unrated_only: bool,
}

pub async fn list_invitations(
    pool: &PgPool,
    f: &InvitationFilter<'_>,
    page: &xiaoneng_kit::paging::PageRequest,
) -> AppResult<(Vec<InvitationRow>, String)> {
    let before = match &page.after {
        Some(c) => Some(
            Uuid::parse_str(c)
                .map_err(|_| xiaoneng_kit::AppError::invalid("page_token", "is not valid"))?,
        ),
        None => None,
    };
    let rows: Vec<InvitationRow> = sqlx::query_as(&format!(
        "SELECT {INVITATION} FROM invitations
         WHERE region_code LIKE $1 AND ($2::text IS NULL OR citizen_id = $2)
           AND ($3 = '' OR ticket_id = $3) AND ($4 = '' OR case_id = $4)
           AND (NOT $5 OR rating_id IS NULL) AND ($6::uuid IS NULL OR id < $6)
           AND ($8 = '' OR hall_id = $8) AND ($9 = '' OR window_code = $9)
         ORDER BY id DESC LIMIT $7"
    ))
    .bind(f.region_like)
    .bind(f.citizen)
    .bind(f.ticket)
    .bind(f.case)
    .bind(f.unrated_only)
    .bind(before)
    .bind(page.size + 1)
    .bind(f.hall)
    .bind(f.window_code)
    .fetch_all(pool)
    .await?;
    Ok(page.finish(rows, |r| r.id.to_string()))
}

/// Unrated, unexpired invitations whose window closed before `today`, locked for the expiry
/// pass (skipping what another replica holds).
pub async fn lock_expiring(
    conn: &mut PgConnection,
    today: chrono::NaiveDate,
    batch: i64,
) -> AppResult<Vec<InvitationRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {INVITATION} FROM invitations
         WHERE rating_id IS NULL AND expired_at IS NULL AND rate_by < $1
         ORDER BY rate_by, id LIMIT $2 FOR UPDATE SKIP LOCKED"
    ))
    .bind(today)
    .bind(batch)
    .fetch_all(conn)
    .await?)
}

/// Marks an invitation expired at `at`.
pub async fn mark_expired(
    conn: &mut PgConnection,
    id: Uuid,
    at: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    sqlx::query("UPDATE invitations SET expired_at = $2 WHERE id = $1")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ratings in regions matching `region_like` rated from `from` to `to` (not excluded by an
/// appeal), newest first, one page; only 差评 when `bad_only`.
pub async fn public_ratings(
    pool: &PgPool,
    region_like: &str,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    bad_only: bool,
    page: &xiaoneng_kit::paging::PageRequest,
) -> AppResult<(Vec<PublicRow>, String)> {
    let before = match &page.after {
        Some(c) => Some(
            Uuid::parse_str(c)
                .map_err(|_| xiaoneng_kit::AppError::invalid("page_token", "is not valid"))?,
        ),
        None => None,
    };
    let cols = RATING
        .split(',')
        .map(|c| format!("r.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let rows: Vec<PublicRow> = sqlx::query_as(&format!(
        "SELECT {cols}, i.occurrence, i.matter_name, i.department, i.window_code, i.staff_id
         FROM ratings r JOIN invitations i ON i.id = r.invitation_id
         WHERE r.region_code LIKE $1 AND r.rated_on BETWEEN $2 AND $3 AND NOT r.excluded
           AND (NOT $4 OR r.level <= 2) AND ($5::uuid IS NULL OR r.id < $5)
         ORDER BY r.id DESC LIMIT $6"
    ))
    .bind(region_like)
    .bind(from)
    .bind(to)
    .bind(bad_only)
    .bind(before)
    .bind(page.size + 1)
    .fetch_all(pool)
    .await?;
    Ok(page.finish(rows, |r| r.rating.id.to_string()))
}

/// The evaluation service's gauges: today's ratings (good: 3 stars or more) by channel, open
/// 差评 loops by state, and those past their step's due date.
pub const GAUGES: &[xiaoneng_kit::gauges::GaugeQuery] = &[
    xiaoneng_kit::gauges::GaugeQuery {
        metric: "evaluation_ratings_today",
        labels: &["region", "good"],
        sql: "SELECT region_code, (level >= 3)::text, count(*)::float8 FROM ratings
              WHERE rated_on = (now() AT TIME ZONE 'Asia/Shanghai')::date AND NOT excluded GROUP BY 1, 2",
    },
    xiaoneng_kit::gauges::GaugeQuery {
        metric: "evaluation_open_bad_rating_loops",
        labels: &["region", "state"],
        sql: "SELECT region_code, loop_state, count(*)::float8 FROM ratings
              WHERE loop_state IS NOT NULL AND loop_state NOT IN ('closed', 'escalated') GROUP BY 1, 2",
    },
    xiaoneng_kit::gauges::GaugeQuery {
        metric: "evaluation_overdue_bad_rating_loops",
        labels: &["region"],
        sql: "SELECT region_code, count(*)::float8 FROM ratings
              WHERE loop_state IS NOT NULL AND loop_state NOT IN ('closed', 'escalated') AND step_due < (now() AT TIME ZONE 'Asia/Shanghai')::date
              GROUP BY 1",
    },
];
