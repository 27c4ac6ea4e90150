//! Queue persistence: halls, windows, tickets, slots, appointments, tidal events.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{AppError, AppResult};

use crate::domain::{
    AppointmentRow, Category, HallRow, SlotRow, TicketRow, TidalRow, WindowRow, WindowState,
};

pub const TICKET_COLS: &str = "id, hall_id, region_code, day, number, category, matter_id, matter_name, department, window_codes, priority,
    service_kind, state, arrival_at, arrival_ms, window_id, window_code, staff_id, called_at, started_at, finished_at,
    no_shows, recalls, call_seq, case_id, citizen_id, appointment_id, direct_window";

const HALL_COLS: &str = "id, region_code, name, categories, staff, tidal, weekend_service";
const WINDOW_COLS: &str =
    "id, hall_id, code, kind, matter_ids, state, staff_id, tidal, tidal_category";

fn in_scope(scope: &RegionCode, region: &str) -> bool {
    RegionCode::parse(region).is_ok_and(|r| scope.contains(&r))
}

pub async fn create_hall(
    pool: &PgPool,
    region: &RegionCode,
    name: &str,
    categories: &[Category],
    weekend_service: bool,
) -> AppResult<HallRow> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO halls (id, region_code, name, categories, weekend_service)
         VALUES ($1, $2, $3, $4, $5) RETURNING {HALL_COLS}"
    ))
    .bind(Uuid::now_v7())
    .bind(region.as_str())
    .bind(name)
    .bind(sqlx::types::Json(categories))
    .bind(weekend_service)
    .fetch_one(pool)
    .await?)
}

/// The hall, if it is in `scope` (None scope: public reads such as the board).
pub async fn hall(
    conn: &mut PgConnection,
    scope: Option<&RegionCode>,
    id: Uuid,
) -> AppResult<HallRow> {
    sqlx::query_as(&format!("SELECT {HALL_COLS} FROM halls WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .filter(|h: &HallRow| scope.is_none_or(|s| in_scope(s, &h.region_code)))
        .ok_or_else(|| AppError::not_found("hall", id.to_string()))
}

/// The halls inside `scope`, by region and name, and every window of theirs (by code).
pub async fn halls_in(
    conn: &mut PgConnection,
    scope: &RegionCode,
) -> AppResult<(Vec<HallRow>, Vec<WindowRow>)> {
    let halls: Vec<HallRow> = sqlx::query_as(&format!(
        "SELECT {HALL_COLS} FROM halls WHERE region_code LIKE $1 ORDER BY region_code, name"
    ))
    .bind(scope.like_pattern())
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<Uuid> = halls.iter().map(|h| h.id).collect();
    let windows = sqlx::query_as(&format!(
        "SELECT {WINDOW_COLS} FROM windows WHERE hall_id = ANY($1) ORDER BY code"
    ))
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    Ok((halls, windows))
}

pub async fn windows(conn: &mut PgConnection, hall: Uuid) -> AppResult<Vec<WindowRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {WINDOW_COLS} FROM windows WHERE hall_id = $1 ORDER BY code"
    ))
    .bind(hall)
    .fetch_all(conn)
    .await?)
}

/// The window and its hall, if the hall is in `scope`; `lock` holds the window row (one change at
/// a window at a time).
pub async fn window(
    conn: &mut PgConnection,
    scope: &RegionCode,
    id: Uuid,
    lock: bool,
) -> AppResult<(WindowRow, HallRow)> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let w: WindowRow = sqlx::query_as(&format!(
        "SELECT {WINDOW_COLS} FROM windows WHERE id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| AppError::not_found("window", id.to_string()))?;
    let h = hall(conn, Some(scope), w.hall_id)
        .await
        .map_err(|_| AppError::not_found("window", id.to_string()))?;
    Ok((w, h))
}

/// The window and its hall, locked.
pub async fn lock_window(
    conn: &mut PgConnection,
    scope: &RegionCode,
    id: Uuid,
) -> AppResult<(WindowRow, HallRow)> {
    window(conn, scope, id, true).await
}

pub async fn upsert_window(conn: &mut PgConnection, w: &WindowRow) -> AppResult<WindowRow> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO windows (id, hall_id, code, kind, matter_ids, tidal) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET code = EXCLUDED.code, kind = EXCLUDED.kind, matter_ids = EXCLUDED.matter_ids,
            tidal = EXCLUDED.tidal
         RETURNING {WINDOW_COLS}"
    ))
    .bind(w.id)
    .bind(w.hall_id)
    .bind(&w.code)
    .bind(&w.kind)
    .bind(&w.matter_ids)
    .bind(w.tidal)
    .fetch_one(conn)
    .await?)
}

pub async fn set_window_state(
    conn: &mut PgConnection,
    id: Uuid,
    state: WindowState,
    staff: &str,
    tidal_category: &str,
) -> AppResult<WindowRow> {
    Ok(sqlx::query_as(&format!(
        "UPDATE windows SET state = $2, staff_id = $3, tidal_category = $4 WHERE id = $1 RETURNING {WINDOW_COLS}"
    ))
    .bind(id)
    .bind(state)
    .bind(staff)
    .bind(tidal_category)
    .fetch_one(conn)
    .await?)
}

pub async fn set_hall_json(
    conn: &mut PgConnection,
    id: Uuid,
    column: &str,
    value: serde_json::Value,
) -> AppResult<()> {
    let column = match column {
        "staff" => "staff",
        "tidal" => "tidal",
        _ => {
            return Err(AppError::Internal(anyhow::anyhow!(
                "unknown hall column {column}"
            )))
        }
    };
    sqlx::query(&format!("UPDATE halls SET {column} = $2 WHERE id = $1"))
        .bind(id)
        .bind(value)
        .execute(conn)
        .await?;
    Ok(())
}

/// The next number of a category on a hall day.
pub async fn next_number(
    conn: &mut PgConnection,
    hall: Uuid,
    category: &str,
    day: NaiveDate,
) -> AppResult<i32> {
    Ok(sqlx::query_scalar(
        "INSERT INTO ticket_counters (hall_id, category, day, n) VALUES ($1, $2, $3, 1)
         ON CONFLICT (hall_id, category, day) DO UPDATE SET n = ticket_counters.n + 1 RETURNING n",
    )
    .bind(hall)
    .bind(category)
    .bind(day)
    .fetch_one(conn)
    .await?)
}

pub async fn insert_ticket(
    conn: &mut PgConnection,
    t: &TicketRow,
    request_id: Option<&str>,
) -> AppResult<TicketRow> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO tickets (id, hall_id, region_code, day, number, category, matter_id, matter_name, window_codes, priority,
            service_kind, state, arrival_at, arrival_ms, case_id, citizen_id, appointment_id, request_id, department)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'waiting', $12, $13, $14, $15, $16, $17, $18)
         RETURNING {TICKET_COLS}"
    ))
    .bind(t.id)
    .bind(t.hall_id)
    .bind(&t.region_code)
    .bind(t.day)
    .bind(&t.number)
    .bind(&t.category)
    .bind(&t.matter_id)
    .bind(&t.matter_name)
    .bind(&t.window_codes)
    .bind(t.priority)
    .bind(&t.service_kind)
    .bind(t.arrival_at)
    .bind(t.arrival_ms)
    .bind(&t.case_id)
    .bind(&t.citizen_id)
    .bind(t.appointment_id)
    .bind(request_id)
    .bind(&t.department)
    .fetch_one(conn)
    .await?)
}

pub async fn ticket_by_request(
    conn: &mut PgConnection,
    request_id: &str,
) -> AppResult<Option<TicketRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TICKET_COLS} FROM tickets WHERE request_id = $1"
    ))
    .bind(request_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn ticket(
    conn: &mut PgConnection,
    scope: Option<&RegionCode>,
    id: Uuid,
    lock: bool,
) -> AppResult<TicketRow> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(&format!(
        "SELECT {TICKET_COLS} FROM tickets WHERE id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .filter(|t: &TicketRow| scope.is_none_or(|s| in_scope(s, &t.region_code)))
    .ok_or_else(|| AppError::not_found("ticket", id.to_string()))
}

/// The id of today's ticket `number` in the hall of `window`, inside `scope`.
pub async fn ticket_numbered(
    pool: &PgPool,
    scope: &RegionCode,
    window: Uuid,
    day: NaiveDate,
    number: &str,
) -> AppResult<Uuid> {
    let found: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT t.id, t.region_code FROM tickets t JOIN windows w ON w.hall_id = t.hall_id
         WHERE w.id = $1 AND t.day = $2 AND t.number = $3",
    )
    .bind(window)
    .bind(day)
    .bind(number)
    .fetch_optional(pool)
    .await?;
    match found {
        Some((id, region)) if in_scope(scope, &region) => Ok(id),
        _ => Err(AppError::not_found("ticket", number)),
    }
}

/// The ticket a window is calling or serving, locked.
pub async fn current_at(conn: &mut PgConnection, window: Uuid) -> AppResult<Option<TicketRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TICKET_COLS} FROM tickets WHERE window_id = $1 AND state IN ('called', 'serving') FOR UPDATE"
    ))
    .bind(window)
    .fetch_optional(conn)
    .await?)
}

/// Moves a waiting ticket to `called` at a window; None when it was not waiting any more.
pub async fn mark_called(
    conn: &mut PgConnection,
    id: Uuid,
    w: &WindowRow,
    at: DateTime<Utc>,
    seq: i64,
) -> AppResult<Option<TicketRow>> {
    Ok(sqlx::query_as(&format!(
        "UPDATE tickets SET state = 'called', window_id = $2, window_code = $3, staff_id = $4, called_at = $5, call_seq = $6,
            direct_window = NULL
         WHERE id = $1 AND state = 'waiting' RETURNING {TICKET_COLS}"
    ))
    .bind(id)
    .bind(w.id)
    .bind(&w.code)
    .bind(&w.staff_id)
    .bind(at)
    .bind(seq)
    .fetch_optional(conn)
    .await?)
}

/// Writes the mutable fields of a ticket.
pub async fn update_ticket(conn: &mut PgConnection, t: &TicketRow) -> AppResult<TicketRow> {
    Ok(sqlx::query_as(&format!(
        "UPDATE tickets SET state = $2, window_id = $3, window_code = $4, staff_id = $5, started_at = $6, finished_at = $7,
            no_shows = $8, recalls = $9, arrival_ms = $10, matter_id = $11, matter_name = $12, window_codes = $13,
            category = $14, case_id = $15, direct_window = $16, department = $17
         WHERE id = $1 RETURNING {TICKET_COLS}"
    ))
    .bind(t.id)
    .bind(t.state)
    .bind(t.window_id)
    .bind(&t.window_code)
    .bind(&t.staff_id)
    .bind(t.started_at)
    .bind(t.finished_at)
    .bind(t.no_shows)
    .bind(t.recalls)
    .bind(t.arrival_ms)
    .bind(&t.matter_id)
    .bind(&t.matter_name)
    .bind(&t.window_codes)
    .bind(&t.category)
    .bind(&t.case_id)
    .bind(t.direct_window)
    .bind(&t.department)
    .fetch_one(conn)
    .await?)
}

pub async fn waiting_tickets(conn: &mut PgConnection, hall: Uuid) -> AppResult<Vec<TicketRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TICKET_COLS} FROM tickets WHERE hall_id = $1 AND state = 'waiting'"
    ))
    .bind(hall)
    .fetch_all(conn)
    .await?)
}

pub async fn max_call_seq(conn: &mut PgConnection, hall: Uuid) -> AppResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(max(call_seq), 0) FROM tickets WHERE hall_id = $1")
            .bind(hall)
            .fetch_one(conn)
            .await?,
    )
}

/// Waiting tickets per category.
pub async fn waiting_counts(conn: &mut PgConnection, hall: Uuid) -> AppResult<Vec<(String, i64)>> {
    Ok(sqlx::query_as("SELECT category, count(*) FROM tickets WHERE hall_id = $1 AND state = 'waiting' GROUP BY category")
        .bind(hall)
        .fetch_all(conn)
        .await?)
}

/// Mean service seconds of the hall's last 50 finished services (None: none yet).
pub async fn mean_service_secs(conn: &mut PgConnection, hall: Uuid) -> AppResult<Option<i64>> {
    let mean: Option<f64> = sqlx::query_scalar(
        "SELECT avg(extract(epoch FROM finished_at - COALESCE(started_at, called_at)))::float8 FROM (
            SELECT finished_at, started_at, called_at FROM tickets WHERE hall_id = $1 AND state = 'finished'
            ORDER BY finished_at DESC LIMIT 50) recent",
    )
    .bind(hall)
    .fetch_one(conn)
    .await?;
    Ok(mean.map(|m| m.round() as i64))
}

const SLOT_COLS: &str = "id, hall_id, matter_id, day, start_time, end_time, capacity, booked";

pub async fn insert_slot(conn: &mut PgConnection, s: &SlotRow) -> AppResult<SlotRow> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO slots (id, hall_id, matter_id, day, start_time, end_time, capacity) VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING {SLOT_COLS}"
    ))
    .bind(s.id)
    .bind(s.hall_id)
    .bind(&s.matter_id)
    .bind(s.day)
    .bind(s.start_time)
    .bind(s.end_time)
    .bind(s.capacity)
    .fetch_one(conn)
    .await?)
}

pub async fn slots(
    pool: &PgPool,
    hall: Uuid,
    matter: &str,
    day: NaiveDate,
) -> AppResult<Vec<SlotRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {SLOT_COLS} FROM slots WHERE hall_id = $1 AND ($2 = '' OR matter_id = $2) AND day = $3 ORDER BY start_time, matter_id"
    ))
    .bind(hall)
    .bind(matter)
    .bind(day)
    .fetch_all(pool)
    .await?)
}

pub async fn slot(conn: &mut PgConnection, id: Uuid) -> AppResult<SlotRow> {
    sqlx::query_as(&format!("SELECT {SLOT_COLS} FROM slots WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| AppError::not_found("slot", id.to_string()))
}

/// Takes a place in a slot; false when it is full (the check and the increment are one statement).
pub async fn take_place(conn: &mut PgConnection, slot: Uuid) -> AppResult<bool> {
    let r = sqlx::query("UPDATE slots SET booked = booked + 1 WHERE id = $1 AND booked < capacity")
        .bind(slot)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn release_place(conn: &mut PgConnection, slot: Uuid) -> AppResult<()> {
    sqlx::query("UPDATE slots SET booked = booked - 1 WHERE id = $1 AND booked > 0")
        .bind(slot)
        .execute(conn)
        .await?;
    Ok(())
}

const APPT_COLS: &str =
    "id, slot_id, hall_id, matter_id, citizen_id, citizen_name, state, ticket_id";

pub async fn insert_appointment(
    conn: &mut PgConnection,
    a: &AppointmentRow,
) -> AppResult<AppointmentRow> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO appointments (id, slot_id, hall_id, matter_id, citizen_id, citizen_name, state)
         VALUES ($1, $2, $3, $4, $5, $6, 'booked') RETURNING {APPT_COLS}"
    ))
    .bind(a.id)
    .bind(a.slot_id)
    .bind(a.hall_id)
    .bind(&a.matter_id)
    .bind(&a.citizen_id)
    .bind(&a.citizen_name)
    .fetch_one(conn)
    .await?)
}

pub async fn appointment(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> AppResult<AppointmentRow> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(&format!(
        "SELECT {APPT_COLS} FROM appointments WHERE id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| AppError::not_found("appointment", id.to_string()))
}

/// Serialises one person's bookings until the transaction ends: a daily cap cannot be raced past.
pub async fn lock_citizen(conn: &mut PgConnection, citizen: &str) -> AppResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('xiaoneng-queue-citizen:' || $1))")
        .bind(citizen)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn update_appointment(
    conn: &mut PgConnection,
    a: &AppointmentRow,
) -> AppResult<AppointmentRow> {
    Ok(sqlx::query_as(&format!(
        "UPDATE appointments SET slot_id = $2, state = $3, ticket_id = $4 WHERE id = $1 RETURNING {APPT_COLS}"
    ))
    .bind(a.id)
    .bind(a.slot_id)
    .bind(a.state)
    .bind(a.ticket_id)
    .fetch_one(conn)
    .await?)
}

/// A citizen's booked appointments in a hall on a day (excluding `except`).
pub async fn booked_on(
    conn: &mut PgConnection,
    citizen: &str,
    hall: Uuid,
    day: NaiveDate,
    except: Option<Uuid>,
) -> AppResult<Vec<(Uuid, Uuid)>> {
    Ok(sqlx::query_as(
        "SELECT a.id, a.slot_id FROM appointments a JOIN slots s ON s.id = a.slot_id
         WHERE a.citizen_id = $1 AND a.hall_id = $2 AND s.day = $3 AND a.state = 'booked' AND ($4::uuid IS NULL OR a.id <> $4)",
    )
    .bind(citizen)
    .bind(hall)
    .bind(day)
    .bind(except)
    .fetch_all(conn)
    .await?)
}

const TIDAL_COLS: &str = "id, hall_id, category, action, window_id, window_code, staff_id, waiting, estimated_wait, reason, at";

pub async fn insert_tidal(conn: &mut PgConnection, t: &TidalRow) -> AppResult<()> {
    sqlx::query(&format!("INSERT INTO tidal_events ({TIDAL_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"))
        .bind(t.id)
        .bind(t.hall_id)
        .bind(&t.category)
        .bind(t.action)
        .bind(t.window_id)
        .bind(&t.window_code)
        .bind(&t.staff_id)
        .bind(t.waiting)
        .bind(t.estimated_wait)
        .bind(&t.reason)
        .bind(t.at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn tidal_events(conn: &mut PgConnection, hall: Uuid) -> AppResult<Vec<TidalRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TIDAL_COLS} FROM tidal_events WHERE hall_id = $1 ORDER BY at, id"
    ))
    .bind(hall)
    .fetch_all(conn)
    .await?)
}

/// Halls with tidal policies (the tidal loop's work list).
/// Every hall (the reconciler looks at each).
pub async fn hall_ids(pool: &PgPool) -> AppResult<Vec<Uuid>> {
    Ok(sqlx::query_scalar("SELECT id FROM halls ORDER BY id")
        .fetch_all(pool)
        .await?)
}

/// The lock under which a hall's hot queue is rebuilt or reconciled (session level: Redis
/// work happens while it is held). Waits for it.
pub async fn lock_hall_queue(conn: &mut PgConnection, hall: Uuid) -> AppResult<()> {
    sqlx::query("SELECT pg_advisory_lock(hashtext('xiaoneng-queue-rebuild:' || $1))")
        .bind(hall.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Takes the hall's queue lock if nobody holds it.
pub async fn try_lock_hall_queue(conn: &mut PgConnection, hall: Uuid) -> AppResult<bool> {
    Ok(
        sqlx::query_scalar(
            "SELECT pg_try_advisory_lock(hashtext('xiaoneng-queue-rebuild:' || $1))",
        )
        .bind(hall.to_string())
        .fetch_one(conn)
        .await?,
    )
}

pub async fn unlock_hall_queue(conn: &mut PgConnection, hall: Uuid) -> AppResult<()> {
    sqlx::query("SELECT pg_advisory_unlock(hashtext('xiaoneng-queue-rebuild:' || $1))")
        .bind(hall.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn tidal_halls(pool: &PgPool) -> AppResult<Vec<Uuid>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM halls WHERE tidal <> '[]'::jsonb")
            .fetch_all(pool)
            .await?,
    )
}

/// The queue's gauges for today, per hall and category: tickets waiting, the longest wait so
/// far, and the estimated wait of the next ticket (the waiting ahead of it over the hall's open
/// windows, times today's mean service time there, 5 minutes before any finished).
pub const GAUGES: &[xiaoneng_kit::gauges::GaugeQuery] = &[
    xiaoneng_kit::gauges::GaugeQuery {
        metric: "queue_waiting_tickets",
        labels: &["region", "hall", "category"],
        sql: "SELECT t.region_code, h.name, t.category, count(*)::float8
              FROM tickets t JOIN halls h ON h.id = t.hall_id
              WHERE t.state = 'waiting' AND t.day = (now() AT TIME ZONE 'Asia/Shanghai')::date GROUP BY 1, 2, 3",
    },
    xiaoneng_kit::gauges::GaugeQuery {
        metric: "queue_longest_wait_seconds",
        labels: &["region", "hall", "category"],
        sql: "SELECT t.region_code, h.name, t.category, EXTRACT(EPOCH FROM now() - min(t.arrival_at))::float8
              FROM tickets t JOIN halls h ON h.id = t.hall_id
              WHERE t.state = 'waiting' AND t.day = (now() AT TIME ZONE 'Asia/Shanghai')::date GROUP BY 1, 2, 3",
    },
    xiaoneng_kit::gauges::GaugeQuery {
        metric: "queue_estimated_wait_seconds",
        labels: &["region", "hall", "category"],
        sql: "WITH w AS (SELECT hall_id, region_code, category, count(*) AS n FROM tickets
                         WHERE state = 'waiting' AND day = (now() AT TIME ZONE 'Asia/Shanghai')::date GROUP BY 1, 2, 3),
                   s AS (SELECT hall_id, avg(EXTRACT(EPOCH FROM finished_at - coalesce(started_at, called_at))) AS secs
                         FROM tickets WHERE state = 'finished' AND day = (now() AT TIME ZONE 'Asia/Shanghai')::date GROUP BY 1),
                   o AS (SELECT hall_id, count(*) AS open FROM windows WHERE state = 'open' GROUP BY 1)
              SELECT w.region_code, h.name, w.category,
                     (ceil(w.n::float8 / greatest(coalesce(o.open, 0), 1)) * coalesce(s.secs, 300))::float8
              FROM w JOIN halls h ON h.id = w.hall_id
              LEFT JOIN s ON s.hall_id = w.hall_id LEFT JOIN o ON o.hall_id = w.hall_id",
    },
];
