//! Hall use cases: a hall and its categories, windows and their states, the staff roster, tidal
//! policies, appointment slots.

use chrono::{NaiveDate, NaiveTime};
use uuid::Uuid;
use xiaoneng_kit::auth::Caller;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{AppError, AppResult, Violations};
use xiaoneng_proto::queue::v1 as pb;

use super::Queue;
use crate::domain::{
    self, Category, HallRow, SlotRow, StaffOnDuty, TidalPolicy, TidalRow, WindowRow, WindowState,
};
use crate::store;

/// A day's slots asked for by a hall manager.
#[derive(Debug, Clone)]
pub struct NewSlots {
    pub hall_id: Uuid,
    pub matter_id: String,
    pub day: NaiveDate,
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub minutes: u32,
    pub capacity: i32,
}

impl Queue {
    pub async fn create_hall(
        &self,
        caller: &Caller,
        region: RegionCode,
        name: &str,
        categories: &[Category],
        weekend_service: bool,
    ) -> AppResult<HallRow> {
        caller.require_region(&region)?;
        let h = store::create_hall(&self.pool, &region, name, categories, weekend_service).await?;
        self.rebuild(h.id).await?;
        Ok(h)
    }

    /// A hall with its windows; `caller` `None` for the public reads (board, waits, slots).
    pub async fn hall(
        &self,
        caller: Option<&Caller>,
        id: Uuid,
    ) -> AppResult<(HallRow, Vec<WindowRow>)> {
        let mut conn = self.pool.acquire().await?;
        let h = store::hall(&mut conn, caller.map(|c| &c.region), id).await?;
        let w = store::windows(&mut conn, id).await?;
        Ok((h, w))
    }

    /// The halls of `region` (inside the caller's scope) with their windows.
    pub async fn halls(&self, region: &RegionCode) -> AppResult<Vec<(HallRow, Vec<WindowRow>)>> {
        let mut conn = self.pool.acquire().await?;
        let (halls, mut windows) = store::halls_in(&mut conn, region).await?;
        Ok(halls
            .into_iter()
            .map(|h| {
                let (mine, rest) = windows.drain(..).partition(|w| w.hall_id == h.id);
                windows = rest;
                (h, mine)
            })
            .collect())
    }

    /// Creates or changes a window (a new window starts closed); it never moves hall.
    pub async fn upsert_window(&self, caller: &Caller, mut row: WindowRow) -> AppResult<WindowRow> {
        let mut tx = self.pool.begin().await?;
        let hall = store::hall(&mut tx, Some(&caller.region), row.hall_id).await?;
        row.state = WindowState::Closed;
        let saved = store::upsert_window(&mut tx, &row).await?;
        if saved.hall_id != hall.id {
            return Err(AppError::invalid(
                "window.hall_id",
                "a window cannot move to another hall",
            ));
        }
        tx.commit().await?;
        self.forget_windows(hall.id);
        Ok(saved)
    }

    /// Opens (with someone on it), pauses or closes (only when free) a window.
    pub async fn set_window_state(
        &self,
        caller: &Caller,
        window_id: Uuid,
        to: WindowState,
        staff: &str,
    ) -> AppResult<WindowRow> {
        let mut tx = self.pool.begin().await?;
        let (w, hall) = store::lock_window(&mut tx, &caller.region, window_id).await?;
        let current = store::current_at(&mut tx, w.id).await?;
        let (staff, tidal_category) = domain::window_change(&w, to, staff, current.as_ref())?;
        let saved = store::set_window_state(&mut tx, w.id, to, &staff, &tidal_category).await?;
        tx.commit().await?;
        self.forget_windows(hall.id);
        self.announce(&hall, pb::watch_board_response::Kind::Counts, "", "")
            .await;
        Ok(saved)
    }

    /// Replaces the hall's roster of staff on duty (who the tidal loop may open a window with).
    pub async fn set_roster(
        &self,
        caller: &Caller,
        hall_id: Uuid,
        staff: Vec<StaffOnDuty>,
    ) -> AppResult<(HallRow, Vec<WindowRow>)> {
        let (h, _) = self.hall(Some(caller), hall_id).await?;
        let mut v = Violations::new();
        domain::check_roster(&h.categories, &staff, &mut v);
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        let staff = serde_json::to_value(&staff).map_err(|e| AppError::Internal(e.into()))?;
        store::set_hall_json(&mut conn, h.id, "staff", staff).await?;
        drop(conn);
        self.hall(Some(caller), hall_id).await
    }

    /// Sets the tidal policy of one of the hall's categories.
    pub async fn set_tidal_policy(
        &self,
        caller: &Caller,
        hall_id: Uuid,
        policy: TidalPolicy,
    ) -> AppResult<(HallRow, Vec<WindowRow>)> {
        let (h, _) = self.hall(Some(caller), hall_id).await?;
        let mut v = Violations::new();
        let policies = domain::with_tidal_policy(&h.categories, &h.tidal, policy, &mut v);
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        let policies = serde_json::to_value(&policies).map_err(|e| AppError::Internal(e.into()))?;
        store::set_hall_json(&mut conn, h.id, "tidal", policies).await?;
        drop(conn);
        self.hall(Some(caller), hall_id).await
    }

    /// A day's appointment slots for a matter, on a day the hall takes appointments.
    pub async fn create_slots(&self, caller: &Caller, r: NewSlots) -> AppResult<Vec<SlotRow>> {
        let (h, _) = self.hall(Some(caller), r.hall_id).await?;
        if r.day < self.today() {
            return Err(AppError::invalid("date", "must not be in the past"));
        }
        let cal = self.calendars.for_region(&h.region_code);
        domain::bookable_day(&cal, &h.region_code, r.day, h.weekend_service)?;
        self.matter(&r.matter_id).await?;
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::new();
        for (start, end) in domain::slot_times(r.start, r.end, r.minutes) {
            let s = SlotRow {
                id: Uuid::now_v7(),
                hall_id: h.id,
                matter_id: r.matter_id.clone(),
                day: r.day,
                start_time: start,
                end_time: end,
                capacity: r.capacity,
                booked: 0,
            };
            out.push(store::insert_slot(&mut tx, &s).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// The slots of a hall's matter on a day (public).
    pub async fn slots(
        &self,
        hall_id: Uuid,
        matter_id: &str,
        day: NaiveDate,
    ) -> AppResult<Vec<SlotRow>> {
        let (h, _) = self.hall(None, hall_id).await?;
        store::slots(&self.pool, h.id, matter_id, day).await
    }

    /// The hall's tidal openings, closings and recommendations.
    pub async fn tidal_events(&self, caller: &Caller, hall_id: Uuid) -> AppResult<Vec<TidalRow>> {
        let (h, _) = self.hall(Some(caller), hall_id).await?;
        let mut conn = self.pool.acquire().await?;
        store::tidal_events(&mut conn, h.id).await
    }

    /// The estimated waits of a hall's categories (public).
    pub async fn hall_waits(&self, hall_id: Uuid) -> AppResult<Vec<pb::CategoryWait>> {
        let (h, w) = self.hall(None, hall_id).await?;
        let mut conn = self.pool.acquire().await?;
        self.waits(&mut conn, &h, &w).await
    }

    /// A board's first picture: the hall's waiting counts and estimated waits per category,
    /// today's latest calls (newest first) and the numbers that missed their call (过号).
    pub async fn board_snapshot(&self, hall_id: Uuid) -> AppResult<pb::WatchBoardResponse> {
        let (h, w) = self.hall(None, hall_id).await?;
        let mut conn = self.pool.acquire().await?;
        let waiting = self.counts(&h).await?.into_iter().collect();
        let estimated_wait_minutes = self
            .waits(&mut conn, &h, &w)
            .await?
            .into_iter()
            .map(|c| (c.category, c.estimated_wait_minutes))
            .collect();
        let today = self.clock.today();
        let recent: Vec<(String, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
            "SELECT number, window_code, called_at FROM tickets
             WHERE hall_id = $1 AND day = $2 AND called_at IS NOT NULL AND window_code <> ''
             ORDER BY called_at DESC LIMIT 10",
        )
        .bind(h.id)
        .bind(today)
        .fetch_all(&mut *conn)
        .await?;
        let missed: Vec<String> = sqlx::query_scalar(
            "SELECT number FROM tickets
             WHERE hall_id = $1 AND day = $2 AND no_shows > 0 AND state IN ('waiting', 'dropped')
             ORDER BY number",
        )
        .bind(h.id)
        .bind(today)
        .fetch_all(&mut *conn)
        .await?;
        Ok(pb::WatchBoardResponse {
            kind: pb::watch_board_response::Kind::Snapshot as i32,
            hall_id: h.id.to_string(),
            waiting,
            estimated_wait_minutes,
            recent: recent
                .into_iter()
                .map(|(number, window_code, at)| pb::BoardCall {
                    number,
                    window_code,
                    time: Some(xiaoneng_kit::timestamp(at)),
                })
                .collect(),
            missed,
            time: Some(xiaoneng_kit::timestamp(self.clock.now())),
            ..Default::default()
        })
    }
}
