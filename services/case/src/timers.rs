//! The legal clock's timers: warnings, yellow and red cards per clock (promised, statutory,
//! each review step, the certificate), deemed acceptance (行政许可法 art. 32) and 容缺 due
//! dates.
//!
//! Every write of a case recomputes the case's due times ([`desired`]) and brings its rows of
//! the `case_timers` index in line ([`sync`]) in the same transaction. The firing loop reads
//! only due rows through a partial index ([`fire_due`]): it never scans open cases. A fired
//! row keeps its `fired_at`, so each escalation fires once per case, clock and level; the
//! firing, its history entry and its event commit together, so a crash or restart neither
//! loses nor repeats one, and cases nobody touched fire like any other.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use xiaoneng_calendar::{Calendar, Calendars, Clock, Pause};
use xiaoneng_kit::clock::{cst, BusinessClock};
use xiaoneng_kit::{outbox, AppResult};

use crate::domain::{self, Action, Escalation, State};
use crate::store::{self, CaseRow, Ctx, History};

/// When escalations fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A warning when this many working days or fewer are left.
    pub warn_days: u32,
    /// A red card when a clock is more than this many working days overdue.
    pub red_after_days: u32,
}

/// 行政许可法 art. 44: the certificate within 10 working days of the decision.
pub const CERTIFICATE_DAYS: u32 = 10;
/// 行政许可法 art. 32: a notice within 5 working days, or the application counts as accepted.
pub const NOTICE_DAYS: u32 = 5;

pub const DEEMED_ACCEPTANCE: &str = "deemed_acceptance";
pub const TOLERANCE_DUE: &str = "tolerance_due";
/// The clock name of timers about the case itself (not a limit).
pub const CASE: &str = "case";

/// Pauses of the case that fall after `start`, clipped to it.
fn pauses_since(pauses: &[Pause], start: NaiveDate) -> Vec<Pause> {
    pauses
        .iter()
        .filter(|p| p.until.is_none_or(|u| u > start))
        .map(|p| Pause {
            from: p.from.max(start),
            until: p.until,
        })
        .collect()
}

/// The clocks of a case that run (or stand paused) now, by name.
pub fn running_clocks(row: &CaseRow) -> Vec<(String, Clock)> {
    let rec = &row.body;
    let state = rec.case.state;
    let mut out = Vec::new();
    if matches!(state, State::Accepted | State::InReview | State::Suspended) {
        if let Some(start) = row.accepted_on {
            let pauses = rec.pauses.clone();
            out.push((
                "promised".to_string(),
                Clock {
                    start,
                    limit: row.promised_limit.max(0) as u32,
                    extension: 0,
                    pauses: pauses.clone(),
                },
            ));
            out.push((
                "statutory".to_string(),
                Clock {
                    start,
                    limit: row.statutory_limit.max(0) as u32,
                    extension: rec.extension,
                    pauses,
                },
            ));
        }
        let reviewing =
            state == State::InReview || rec.case.suspended_from == Some(State::InReview);
        if let (true, Some((_, limit)), Some(started)) =
            (reviewing, &rec.review_step, rec.review_started_on)
        {
            for (dept, conclusion) in &rec.case.review {
                if conclusion.is_none() {
                    let clock = Clock {
                        start: started,
                        limit: *limit,
                        extension: 0,
                        pauses: pauses_since(&rec.pauses, started),
                    };
                    out.push((format!("step:{dept}"), clock));
                }
            }
        }
    }
    if state == State::Approved {
        if let Some(decided) = rec.decided_on {
            out.push((
                "certificate".to_string(),
                Clock::new(decided, CERTIFICATE_DAYS),
            ));
        }
    }
    out
}

/// One due time of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub clock: String,
    pub kind: String,
    pub on: NaiveDate,
    /// The deadline an escalation is about.
    pub deadline: Option<NaiveDate>,
}

/// Every timer the case should have now (fired or not): pure, from the case alone.
pub fn desired(row: &CaseRow, cal: &Calendar, policy: Policy) -> Vec<Due> {
    let rec = &row.body;
    let state = rec.case.state;
    let mut out = Vec::new();
    if matches!(state, State::Submitted | State::PreReview) && rec.case.notices.is_empty() {
        let last = cal.add_working_days(row.submitted_on, NOTICE_DAYS);
        out.push(Due {
            clock: CASE.into(),
            kind: DEEMED_ACCEPTANCE.into(),
            on: last.succ_opt().expect("date"),
            deadline: Some(last),
        });
    }
    if let (true, Some(due)) = (
        matches!(state, State::Accepted | State::InReview | State::Suspended),
        row.tolerance_due,
    ) {
        if !rec.tolerated_outstanding().is_empty() {
            out.push(Due {
                clock: CASE.into(),
                kind: TOLERANCE_DUE.into(),
                on: due.succ_opt().expect("date"),
                deadline: Some(due),
            });
        }
    }
    for (name, clock) in running_clocks(row) {
        if clock.is_paused() {
            continue; // the clock stands still: nothing can become due until it resumes
        }
        let deadline = clock.deadline(cal, clock.start);
        for (level, on) in
            domain::escalation_dates(cal, &clock, policy.warn_days, policy.red_after_days)
        {
            out.push(Due {
                clock: name.clone(),
                kind: level.name().into(),
                on,
                deadline: Some(deadline),
            });
        }
    }
    out
}

/// Brings the case's unfired index rows in line with [`desired`]; fired rows stay as they are.
pub async fn sync(conn: &mut sqlx::PgConnection, row: &CaseRow, ctx: &Ctx<'_>) -> AppResult<()> {
    let cal = ctx.calendars.for_region(&row.region_code);
    let due = desired(row, &cal, ctx.policy);
    let clocks: Vec<&str> = due.iter().map(|d| d.clock.as_str()).collect();
    let kinds: Vec<&str> = due.iter().map(|d| d.kind.as_str()).collect();
    let at: Vec<DateTime<Utc>> = due.iter().map(|d| BusinessClock::start_of(d.on)).collect();
    let deadlines: Vec<Option<NaiveDate>> = due.iter().map(|d| d.deadline).collect();
    sqlx::query(
        "DELETE FROM case_timers t WHERE t.case_id = $1 AND t.fired_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM unnest($2::text[], $3::text[]) AS d(clock, kind)
                           WHERE d.clock = t.clock AND d.kind = t.kind)",
    )
    .bind(row.id)
    .bind(&clocks)
    .bind(&kinds)
    .execute(&mut *conn)
    .await?;
    if !due.is_empty() {
        sqlx::query(
            "INSERT INTO case_timers (case_id, clock, kind, due_at, deadline)
             SELECT $1, * FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::date[])
             ON CONFLICT (case_id, clock, kind) DO UPDATE SET due_at = EXCLUDED.due_at, deadline = EXCLUDED.deadline
             WHERE case_timers.fired_at IS NULL",
        )
        .bind(row.id)
        .bind(&clocks)
        .bind(&kinds)
        .bind(&at)
        .bind(&deadlines)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// What a due timer did.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Fired: an escalation event, or a state change already applied to the row.
    Escalated {
        level: Escalation,
        deadline: NaiveDate,
    },
    Changed {
        action: &'static str,
        from: State,
        reason: String,
    },
    /// No longer applies as indexed (the case moved on): `sync` repairs the row.
    Stale,
}

fn decide(
    row: &mut CaseRow,
    cal: &Calendar,
    policy: Policy,
    clock: &str,
    kind: &str,
    today: NaiveDate,
) -> Outcome {
    let from = row.body.case.state;
    match kind {
        DEEMED_ACCEPTANCE => {
            let first_notice = row
                .body
                .notices
                .first()
                .map(|n| n.at.with_timezone(&cst()).date_naive());
            match domain::deemed_acceptance(cal, row.submitted_on, first_notice, today) {
                Some(on) if row.body.case.apply(&Action::DeemAccept).is_ok() => {
                    row.accepted_on = Some(on);
                    row.body.deemed_accepted = true;
                    recompute_deadlines(row, cal, today);
                    Outcome::Changed {
                        action: "deemed_accept",
                        from,
                        reason: format!(
                            "{NOTICE_DAYS}个工作日内未一次性告知，自收到申请之日({on})起即为受理"
                        ),
                    }
                }
                _ => Outcome::Stale,
            }
        }
        TOLERANCE_DUE => {
            let outstanding = row.body.tolerated_outstanding();
            let overdue = row.tolerance_due.is_some_and(|d| today > d);
            if overdue && !outstanding.is_empty() && row.body.case.apply(&Action::Return).is_ok() {
                Outcome::Changed {
                    action: "return",
                    from,
                    reason: format!("容缺材料逾期未补齐: {}", outstanding.join("、")),
                }
            } else {
                Outcome::Stale
            }
        }
        level => {
            let (Some(level), Some((_, c))) = (
                Escalation::from_name(level),
                running_clocks(row).into_iter().find(|(n, _)| n == clock),
            ) else {
                return Outcome::Stale;
            };
            if c.is_paused()
                || domain::escalation(cal, &c, today, policy.warn_days, policy.red_after_days)
                    < level
            {
                return Outcome::Stale;
            }
            Outcome::Escalated {
                level,
                deadline: c.deadline(cal, today),
            }
        }
    }
}

/// Sets the statutory and promised deadlines from the clocks.
pub fn recompute_deadlines(row: &mut CaseRow, cal: &Calendar, today: NaiveDate) {
    for (name, clock) in running_clocks(row) {
        match name.as_str() {
            "promised" => row.promised_deadline = Some(clock.deadline(cal, today)),
            "statutory" => row.statutory_deadline = Some(clock.deadline(cal, today)),
            _ => {}
        }
    }
}

/// Fires what is due at the clock's now, up to `batch` cases in one transaction. Returns the
/// number of timers fired.
pub async fn fire_due(
    pool: &PgPool,
    calendars: &Calendars,
    policy: Policy,
    clock: &BusinessClock,
    batch: i64,
) -> AppResult<usize> {
    let now = clock.now();
    let ctx = Ctx {
        calendars,
        policy,
        now,
    };
    let today = ctx.today();
    let mut tx = pool.begin().await?;
    // Cases first, then their timers: the same lock order as every API write.
    let rows = store::lock_due(&mut tx, now, batch).await?;
    let mut fired = 0;
    for mut row in rows {
        let due: Vec<(String, String)> = sqlx::query_as(
            "SELECT clock, kind FROM case_timers WHERE case_id = $1 AND fired_at IS NULL AND due_at <= $2
             ORDER BY due_at, kind",
        )
        .bind(row.id)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let cal = calendars.for_region(&row.region_code);
        let (mut changed, mut stale) = (false, false);
        let now = clock.now();
        for (clock, kind) in due {
            let outcome = decide(&mut row, &cal, policy, &clock, &kind, today);
            match &outcome {
                Outcome::Stale => {
                    stale = true;
                    continue;
                }
                Outcome::Escalated { level, deadline } => {
                    let reason = format!("{clock}: 期限 {deadline}");
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
                        &crate::events::escalated(&row, &clock, *level, *deadline, today)?,
                    )
                    .await?;
                }
                Outcome::Changed {
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
                    store::record(&mut tx, &row, &h, today).await?;
                    changed = true;
                }
            }
            sqlx::query("UPDATE case_timers SET fired_at = $4 WHERE case_id = $1 AND clock = $2 AND kind = $3")
                .bind(row.id)
                .bind(&clock)
                .bind(&kind)
                .bind(now)
                .execute(&mut *tx)
                .await?;
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

/// The firing loop: every `interval`, fires what is due; goes on at once while batches are full.
pub async fn run(
    pool: PgPool,
    calendars: Calendars,
    policy: Policy,
    clock: BusinessClock,
    interval: Duration,
    batch: i64,
    stop: CancellationToken,
) {
    loop {
        let result = fire_due(&pool, &calendars, policy, &clock, batch).await;
        metrics::counter!("background_passes_total", "loop" => "case_timers").increment(1);
        let wait = match result {
            Ok(n) if n as i64 >= batch => Duration::ZERO,
            Ok(n) => {
                if n > 0 {
                    tracing::info!(fired = n, "case timers fired");
                }
                interval
            }
            Err(e) => {
                tracing::warn!(error = %e, "case timers: will retry");
                interval
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
