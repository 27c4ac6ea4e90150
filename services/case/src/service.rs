//! The case use cases: each loads the case under its row lock, checks the caller's expected
//! version (a stale one is ABORTED), applies the domain rule, and writes the case, its history
//! entry, its events and its timer index in one transaction. The API and the timer loop call
//! these; neither writes SQL or events itself.

use chrono::Datelike;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;
use xiaoneng_calendar::{Calendar, Notice};
use xiaoneng_kit::auth::{Audience, Caller};
use xiaoneng_kit::calendar::{self, LiveCalendars, Snapshot};
use xiaoneng_kit::clock::BusinessClock;
use xiaoneng_kit::paging::PageRequest;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{outbox, AppError, AppResult};

use xiaoneng_kit::catalog::Catalog;

use crate::domain::{
    self, Application, CaseRow, FiredRow, History, HistoryRow, InquiryRecord, InquiryRow, NewCase,
    Policy, Reception, Referral, State, Terms,
};
use crate::events;
use crate::store;

/// What every write needs besides the case: the calendars and the escalation policy to keep
/// the timer index right, and the business time of the change.
pub struct Ctx<'a> {
    pub calendars: &'a xiaoneng_calendar::Calendars,
    /// The calendar epoch `calendars` are at (see `kit::calendar`).
    pub epoch: i64,
    pub policy: Policy,
    pub now: DateTime<Utc>,
}

impl Ctx<'_> {
    pub fn today(&self) -> NaiveDate {
        self.now
            .with_timezone(&xiaoneng_kit::clock::cst())
            .date_naive()
    }
}

/// Opens the case an application asks for under the matter version in force today (the case
/// keeps its terms), received by whoever received the inquiry it follows (of the caller's
/// region), or by the caller now.
pub async fn apply(
    pool: &PgPool,
    catalog: &Catalog,
    ctx: &Ctx<'_>,
    app: Application,
    caller: &Caller,
    request_id: Option<&str>,
) -> AppResult<CaseRow> {
    let matter = catalog
        .matter_in_force(&app.matter_id.to_string(), ctx.today())
        .await?;
    let t = matter.terms.unwrap_or_default();
    let terms = Terms {
        version: matter.version,
        region_code: matter.region_code,
        name: t.name,
        cross_region: t.cross_region,
        materials: t
            .materials
            .into_iter()
            .map(|m| (m.name, m.required, m.key))
            .collect(),
        steps: t
            .steps
            .into_iter()
            .map(|s| (s.name, s.limit_days.max(0) as u32))
            .collect(),
        promised_limit: t.promised_limit_days,
        statutory_limit: t.statutory_limit_days,
    };
    let reception = match app.inquiry {
        Some(id) => {
            let (_, inq) = store::get_inquiry(pool, &caller.region, id).await?;
            Reception {
                first_responsible: inq.first_responsible,
                handling_department: inq.handling_department,
                handler: inq.handler,
            }
        }
        None => Reception {
            first_responsible: caller.subject.clone(),
            handling_department: caller.department.clone().unwrap_or_default(),
            handler: caller.subject.clone(),
        },
    };
    let inquiry = app.inquiry;
    let new = NewCase::open(app, &terms, reception, ctx.today())?;
    submit(pool, ctx, &new, request_id, inquiry).await
}

/// Submits a new case (or returns the one an earlier request with the same id created), with
/// its history entry, event and timers, in one transaction.
pub async fn submit(
    pool: &PgPool,
    ctx: &Ctx<'_>,
    c: &NewCase,
    request_id: Option<&str>,
    inquiry: Option<Uuid>,
) -> AppResult<CaseRow> {
    let mut tx = pool.begin().await?;
    if let Some(rid) = request_id {
        if let Some(row) = store::by_request(&mut tx, rid).await? {
            return Ok(row);
        }
    }
    let row = store::insert(&mut tx, c, request_id, ctx.epoch).await?;
    if let Some(inquiry) = inquiry {
        store::link_inquiry(&mut tx, inquiry, row.id).await?;
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
    sync(&mut tx, &row, ctx).await?;
    tx.commit().await?;
    Ok(row)
}

/// Writes the history entry of a change of `row` (already updated) and its event.
pub async fn record(
    conn: &mut sqlx::PgConnection,
    row: &CaseRow,
    h: &History<'_>,
    today: NaiveDate,
) -> AppResult<()> {
    store::insert_history(&mut *conn, row, h).await?;
    outbox::enqueue(conn, &events::transitioned(row, h, today)?).await?;
    Ok(())
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
    F: FnOnce(&mut CaseRow, &Calendar) -> AppResult<domain::Effects>,
{
    let mut tx = pool.begin().await?;
    let mut row = store::lock(&mut tx, ch.scope, id).await?;
    if row.version != ch.expected_version {
        return Err(AppError::Aborted(format!(
            "the case is at version {}, not {}; reload and retry",
            row.version, ch.expected_version
        )));
    }
    let from = row.body.case.state;
    let cal = ctx.calendars.for_region(&row.region_code);
    let effects = rule(&mut row, &cal)?;
    // A replica still on an older calendar lowers the epoch, so the recompute pass revisits.
    row.calendar_epoch = row.calendar_epoch.min(ctx.epoch);
    let updated = store::update(&mut tx, &row).await?;
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
            &events::notice_violated(&updated, &effects.notice_violation, ch.actor)?,
        )
        .await?;
    }
    sync(&mut tx, &updated, ctx).await?;
    tx.commit().await?;
    Ok(updated)
}

/// Brings the case's timer index in line with what its clocks make due now.
pub async fn sync(conn: &mut PgConnection, row: &CaseRow, ctx: &Ctx<'_>) -> AppResult<()> {
    let cal = ctx.calendars.for_region(&row.region_code);
    store::sync_timers(conn, row.id, &domain::desired(row, &cal, ctx.policy)).await
}

/// Fires what is due at the clock's now, up to `batch` cases in one transaction. Returns the
/// number of timers fired.
pub async fn fire_due(
    pool: &PgPool,
    snap: &Snapshot,
    policy: Policy,
    clock: &BusinessClock,
    batch: i64,
) -> AppResult<usize> {
    let now = clock.now();
    let calendars = &snap.calendars;
    let ctx = Ctx {
        calendars,
        epoch: snap.epoch,
        policy,
        now,
    };
    let today = ctx.today();
    let mut tx = pool.begin().await?;
    // Cases first, then their timers: the same lock order as every API write.
    let rows = store::lock_due(&mut tx, now, batch).await?;
    let mut fired = 0;
    for mut row in rows {
        let due = store::due_timers(&mut tx, row.id, now).await?;
        let cal = calendars.for_region(&row.region_code);
        let (mut changed, mut stale) = (false, false);
        let now = clock.now();
        for (clock, kind) in due {
            let outcome = domain::decide(&mut row, &cal, policy, &clock, &kind, today);
            match &outcome {
                domain::Outcome::Stale => {
                    stale = true;
                    continue;
                }
                domain::Outcome::Escalated { level, deadline } => {
                    // Past the calendar's coverage the date was counted Monday–Friday: say so.
                    let provisional = !cal.covers(deadline.year()) || row.provisional;
                    let note = if provisional { " (暂定期限)" } else { "" };
                    let reason = format!("{clock}: 期限 {deadline}{note}");
                    let h = History {
                        action: level.name(),
                        from: row.body.case.state,
                        actor: "system",
                        role: "system",
                        reason: &reason,
                        at: now,
                    };
                    store::insert_history(&mut tx, &row, &h).await?;
                    outbox::enqueue(
                        &mut tx,
                        &events::escalated(&row, &clock, *level, *deadline, today, provisional)?,
                    )
                    .await?;
                }
                domain::Outcome::Changed {
                    action,
                    from,
                    reason,
                } => {
                    row = store::update(&mut tx, &row).await?;
                    let h = History {
                        action,
                        from: *from,
                        actor: "system",
                        role: "system",
                        reason,
                        at: now,
                    };
                    record(&mut tx, &row, &h, today).await?;
                    changed = true;
                }
            }
            store::mark_fired(&mut tx, row.id, &clock, &kind, now).await?;
            fired += 1;
            if changed {
                break; // the case moved: what else is due is decided on the new state
            }
        }
        if changed || stale {
            // An escalation alone leaves the due times as they are; a change or a stale row does not.
            sync(&mut tx, &row, &ctx).await?;
        }
    }
    if fired > 0 {
        // The pass decided and wrote its firings but has not committed: a crash here loses
        // the whole pass, which fires again, once, after the restart.
        xiaoneng_kit::failpoint::hit("case.timers.before_commit");
    }
    tx.commit().await?;
    Ok(fired)
}

/// Recomputes, in one transaction, the deadlines of up to `batch` open cases computed under an
/// older calendar than `ctx`'s: a case whose deadlines move gets a history entry naming the
/// notice, a `CaseDeadlinesMoved` event and its timers moved (a fired escalation stays fired
/// and never fires again); the others are only marked. Replicas share the work: each batch
/// skips the cases another holds. Returns the number of cases taken.
pub async fn recalendar(
    pool: &PgPool,
    ctx: &Ctx<'_>,
    notice: &str,
    batch: i64,
) -> AppResult<usize> {
    let mut tx = pool.begin().await?;
    let rows = store::lock_behind_calendar(&mut tx, ctx.epoch, batch).await?;
    let taken = rows.len();
    let today = ctx.today();
    let mut unmoved = Vec::new();
    for mut row in rows {
        let cal = ctx.calendars.for_region(&row.region_code);
        row.calendar_epoch = ctx.epoch;
        let Some(moved) = domain::recalendar(&mut row, &cal, today) else {
            unmoved.push(row.id);
            sync(&mut tx, &row, ctx).await?;
            continue;
        };
        store::set_deadlines(&mut tx, &row).await?;
        row.version += 1;
        let updated = row;
        let reason = format!(
            "日历 {notice}: 承诺期限 {} → {}, 法定期限 {} → {}{}",
            domain::date(moved.old_promised),
            domain::date(updated.promised_deadline),
            domain::date(moved.old_statutory),
            domain::date(updated.statutory_deadline),
            if updated.provisional {
                " (仍为暂定)"
            } else {
                ""
            },
        );
        let h = History {
            action: "recompute_deadlines",
            from: updated.body.case.state,
            actor: "system",
            role: "system",
            reason: &reason,
            at: ctx.now,
        };
        store::insert_history(&mut tx, &updated, &h).await?;
        outbox::enqueue(
            &mut tx,
            &events::deadlines_moved(&updated, &moved, notice, today)?,
        )
        .await?;
        sync(&mut tx, &updated, ctx).await?;
    }
    store::set_calendar_epoch(&mut tx, &unmoved, ctx.epoch).await?;
    tx.commit().await?;
    Ok(taken)
}

/// Open cases with a provisional deadline (a gauge for operators).
pub async fn provisional_count(pool: &PgPool) -> AppResult<i64> {
    store::count_provisional(pool).await
}

/// Stores a validated calendar notice with its `CalendarNoticeLoaded` event (so every other
/// service with a legal clock applies it too) and applies it on this replica at once (the
/// others pick it up on their next refresh); its epoch. The same scope and version twice is
/// ALREADY_EXISTS.
#[allow(clippy::too_many_arguments)]
pub async fn load_notice(
    pool: &PgPool,
    live: &LiveCalendars,
    notice: &Notice,
    text: &str,
    by: &str,
    region: &RegionCode,
    at: DateTime<Utc>,
) -> AppResult<i64> {
    let mut tx = pool.begin().await?;
    let epoch = calendar::insert_notice(&mut tx, notice, text, by, at)
        .await?
        .ok_or_else(|| {
            let what = format!(
                "calendar notice {} {} is loaded already",
                notice.scope.key(),
                notice.version
            );
            AppError::AlreadyExists(what)
        })?;
    outbox::enqueue(&mut tx, &events::notice_loaded(notice, text, by, region)?).await?;
    tx.commit().await?;
    live.refresh(pool).await?;
    Ok(epoch)
}

/// A case as the caller may read it, with its history and the escalations that fired.
pub async fn view(
    pool: &PgPool,
    scope: &Audience,
    id: Uuid,
) -> AppResult<(CaseRow, Vec<HistoryRow>, Vec<FiredRow>)> {
    let (row, history) = store::get(pool, scope, id).await?;
    let fired = store::fired_escalations(pool, id).await?;
    Ok((row, history, fired))
}

/// Cases of a region scope, newest first, one page.
pub async fn list(
    pool: &PgPool,
    scope: &RegionCode,
    state: Option<State>,
    flagged_only: bool,
    page: &PageRequest,
) -> AppResult<(Vec<CaseRow>, String)> {
    store::list(pool, &scope.like_pattern(), state, flagged_only, page).await
}

/// An inquiry of the caller's region.
pub async fn inquiry(
    pool: &PgPool,
    scope: &RegionCode,
    id: Uuid,
) -> AppResult<(InquiryRow, InquiryRecord)> {
    store::get_inquiry(pool, scope, id).await
}

/// Opens an inquiry; whoever received it is its first-responsible.
pub async fn open_inquiry(
    pool: &PgPool,
    region: &RegionCode,
    rec: &InquiryRecord,
    at: DateTime<Utc>,
) -> AppResult<InquiryRow> {
    store::open_inquiry(pool, region, rec, at).await
}

/// Refers an inquiry on under its row lock (首问负责: the first-responsible stays).
pub async fn refer_inquiry(
    pool: &PgPool,
    scope: &RegionCode,
    id: Uuid,
    referral: Referral,
) -> AppResult<InquiryRow> {
    let mut tx = pool.begin().await?;
    let row = store::lock_inquiry(&mut tx, scope, id).await?;
    let mut rec = row.body.0;
    rec.refer(referral);
    let row = store::update_inquiry(&mut tx, id, &rec).await?;
    tx.commit().await?;
    Ok(row)
}

/// Inquiries of a region scope, newest first, one page.
pub async fn list_inquiries(
    pool: &PgPool,
    scope: &RegionCode,
    page: &PageRequest,
) -> AppResult<(Vec<InquiryRow>, String)> {
    store::list_inquiries(pool, &scope.like_pattern(), page).await
}
