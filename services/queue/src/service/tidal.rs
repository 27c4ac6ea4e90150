//! 潮汐窗口, one hall at a time: a surge (people waiting or the estimated wait past the
//! thresholds) opens a reserve window with a qualified idle staff member — or, when there is
//! none, records a recommendation once per surge; the surge's end (few enough waiting, the
//! window free) closes it. Every opening, closing and recommendation is recorded and emitted.

use uuid::Uuid;
use xiaoneng_kit::{outbox, AppResult};
use xiaoneng_proto::queue::v1 as pb;

use super::Queue;
use crate::domain::{self, TidalAction, TidalDecision, TidalRow, WindowRow, WindowState};
use crate::events;
use crate::store;

impl Queue {
    /// The halls that have tidal policies.
    pub async fn tidal_halls(&self) -> AppResult<Vec<Uuid>> {
        store::tidal_halls(&self.pool).await
    }

    /// Looks at one hall; returns the tidal events it recorded.
    pub async fn tidal_pass(&self, hall_id: Uuid) -> AppResult<Vec<TidalRow>> {
        let api = self;
        let mut tx = api.pool.begin().await?;
        let locked: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_xact_lock(hashtext('xiaoneng-queue-tidal:' || $1))",
        )
        .bind(hall_id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        if !locked {
            return Ok(Vec::new());
        }
        let hall = store::hall(&mut tx, None, hall_id).await?;
        let windows = store::windows(&mut tx, hall_id).await?;
        let waits = api.waits(&mut tx, &hall, &windows).await?;
        let history = store::tidal_events(&mut tx, hall_id).await?;
        let now = api.clock.now();
        let mut recorded = Vec::new();
        for p in hall.tidal.iter() {
            let Some(w) = waits.iter().find(|w| w.category == p.category) else {
                continue;
            };
            let open_for: Option<&WindowRow> = windows.iter().find(|x| {
                x.tidal && x.state != WindowState::Closed && x.tidal_category == p.category
            });
            let event = |action: TidalAction,
                         window: Option<&WindowRow>,
                         staff: &str,
                         reason: String| TidalRow {
                id: Uuid::now_v7(),
                hall_id,
                category: p.category.clone(),
                action,
                window_id: window.map(|x| x.id),
                window_code: window.map(|x| x.code.clone()).unwrap_or_default(),
                staff_id: staff.to_string(),
                waiting: w.waiting,
                estimated_wait: w.estimated_wait_minutes,
                reason,
                at: now,
            };
            match domain::tidal(
                p,
                i64::from(w.waiting),
                i64::from(w.estimated_wait_minutes),
                open_for.is_some(),
            ) {
                TidalDecision::Open => {
                    let busy: Vec<&str> = windows
                        .iter()
                        .filter(|x| x.state != WindowState::Closed)
                        .map(|x| x.staff_id.as_str())
                        .collect();
                    let reserve = windows
                        .iter()
                        .find(|x| x.tidal && x.state == WindowState::Closed);
                    let idle = hall.staff.iter().find(|s| {
                        s.qualified_for(&p.category) && !busy.contains(&s.staff_id.as_str())
                    });
                    let why = format!(
                        "{} waiting, about {} min (thresholds {} / {} min)",
                        w.waiting, w.estimated_wait_minutes, p.open_waiting, p.open_wait_minutes
                    );
                    match (reserve, idle) {
                        (Some(win), Some(staff)) => {
                            store::set_window_state(
                                &mut tx,
                                win.id,
                                WindowState::Open,
                                &staff.staff_id,
                                &p.category,
                            )
                            .await?;
                            recorded.push(event(
                                TidalAction::Opened,
                                Some(win),
                                &staff.staff_id,
                                why,
                            ));
                        }
                        _ => {
                            // Once per surge: not again until the category's last event was something else.
                            let last = history
                                .iter()
                                .rev()
                                .find(|e| e.category == p.category)
                                .map(|e| e.action);
                            if last != Some(TidalAction::Recommended) {
                                let suggestion = hall
                                    .staff
                                    .iter()
                                    .find(|s| s.qualified_for(&p.category))
                                    .map(|s| format!("; recommend {} ({})", s.name, s.staff_id))
                                    .unwrap_or_default();
                                let missing = if reserve.is_none() {
                                    "no reserve window is free"
                                } else {
                                    "no qualified staff member is idle"
                                };
                                recorded.push(event(
                                    TidalAction::Recommended,
                                    reserve,
                                    "",
                                    format!("{why}; {missing}{suggestion}"),
                                ));
                            }
                        }
                    }
                }
                TidalDecision::Close => {
                    let win = open_for.expect("open");
                    if store::current_at(&mut tx, win.id).await?.is_none() {
                        store::set_window_state(&mut tx, win.id, WindowState::Closed, "", "")
                            .await?;
                        let why = format!(
                            "surge over: {} waiting (close at {})",
                            w.waiting, p.close_waiting
                        );
                        recorded.push(event(TidalAction::Closed, Some(win), &win.staff_id, why));
                    }
                }
                TidalDecision::Keep => {}
            }
        }
        for e in &recorded {
            store::insert_tidal(&mut tx, e).await?;
            outbox::enqueue(&mut tx, &events::tidal(e, &hall.region_code)?).await?;
        }
        tx.commit().await?;
        if !recorded.is_empty() {
            api.forget_windows(hall_id);
            api.announce(&hall, pb::watch_board_response::Kind::Counts, "", "")
                .await;
        }
        Ok(recorded)
    }
}
