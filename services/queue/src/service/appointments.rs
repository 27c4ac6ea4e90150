//! Appointment use cases: book, cancel, move to another slot, check in (which issues the
//! ticket). Each locks the citizen's bookings or the appointment, applies the domain rule and
//! stores the change with its event in one transaction.

use sqlx::PgConnection;
use uuid::Uuid;
use xiaoneng_kit::auth::Caller;
use xiaoneng_kit::clock::cst;
use xiaoneng_kit::{outbox, AppError, AppResult};
use xiaoneng_proto::queue::v1 as pb;

use super::Queue;
use crate::domain::{
    self, AppointmentAction, AppointmentRow, AppointmentState, HallRow, Reason, ServiceKind,
    SlotRow, TicketRow, WindowRow,
};
use crate::events;
use crate::store;

/// A check-in: the appointment, its slot, the ticket it became (with the hall's windows) and
/// whether it came after the grace period.
pub struct CheckedIn {
    pub appointment: AppointmentRow,
    pub slot: SlotRow,
    pub ticket: TicketRow,
    pub windows: std::sync::Arc<Vec<WindowRow>>,
    pub late: bool,
}

/// Records an appointment change's event in the caller's transaction.
async fn record(
    conn: &mut PgConnection,
    a: &AppointmentRow,
    slot: &SlotRow,
    hall: &HallRow,
    action: AppointmentAction,
) -> AppResult<()> {
    outbox::enqueue(
        conn,
        &events::appointment(a, slot, &hall.region_code, action)?,
    )
    .await?;
    Ok(())
}

/// The appointment `id` as the caller may act on it (in their region; their own when they are
/// a citizen — another's reads as not found), booked, with its hall.
async fn booked(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    lock: bool,
) -> AppResult<(AppointmentRow, HallRow)> {
    let a = store::appointment(conn, id, lock).await?;
    let hall = store::hall(conn, Some(&caller.region), a.hall_id)
        .await
        .map_err(|_| AppError::not_found("appointment", id.to_string()))?;
    if caller.acts_as_citizen() && a.citizen_id != caller.subject {
        return Err(AppError::not_found("appointment", id.to_string()));
    }
    a.ensure_booked()?;
    Ok((a, hall))
}

/// The citizen a booking is for: a citizen books for themself; staff name one.
fn citizen_of(caller: &Caller, given: &str) -> AppResult<String> {
    if caller.acts_as_citizen() {
        if !given.is_empty() && given != caller.subject {
            return Err(AppError::PermissionDenied(
                "a citizen books for themself".into(),
            ));
        }
        return Ok(caller.subject.clone());
    }
    if given.trim().is_empty() {
        return Err(AppError::invalid("citizen_id", "is required"));
    }
    Ok(given.trim().to_string())
}

fn slot_full() -> AppError {
    AppError::precondition(Reason::SlotFull.name(), "the slot is fully booked")
}

impl Queue {
    /// Books a place in a slot for a citizen (within the daily cap, once per slot).
    pub async fn book(
        &self,
        caller: &Caller,
        slot_id: Uuid,
        citizen_id: &str,
        citizen_name: &str,
    ) -> AppResult<(AppointmentRow, SlotRow)> {
        let citizen = citizen_of(caller, citizen_id)?;
        let mut tx = self.pool.begin().await?;
        store::lock_citizen(&mut tx, &citizen).await?;
        let slot = store::slot(&mut tx, slot_id).await?;
        let hall = store::hall(&mut tx, Some(&caller.region), slot.hall_id)
            .await
            .map_err(|_| AppError::not_found("slot", slot_id.to_string()))?;
        domain::slot_ahead(slot.day, self.today())?;
        let held: Vec<Uuid> = store::booked_on(&mut tx, &citizen, hall.id, slot.day, None)
            .await?
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        domain::may_book(&held, slot.id, self.settings.daily_cap)?;
        if !store::take_place(&mut tx, slot.id).await? {
            return Err(slot_full());
        }
        let a = AppointmentRow {
            id: Uuid::now_v7(),
            slot_id: slot.id,
            hall_id: hall.id,
            matter_id: slot.matter_id.clone(),
            citizen_id: citizen,
            citizen_name: citizen_name.trim().to_string(),
            state: AppointmentState::Booked,
            ticket_id: None,
        };
        let a = store::insert_appointment(&mut tx, &a).await?;
        record(&mut tx, &a, &slot, &hall, AppointmentAction::Booked).await?;
        tx.commit().await?;
        Ok((a, slot))
    }

    /// Cancels a booked appointment and gives its place back.
    pub async fn cancel(&self, caller: &Caller, id: Uuid) -> AppResult<(AppointmentRow, SlotRow)> {
        let mut tx = self.pool.begin().await?;
        let (mut a, hall) = booked(&mut tx, caller, id, true).await?;
        a.cancel()?;
        store::release_place(&mut tx, a.slot_id).await?;
        let a = store::update_appointment(&mut tx, &a).await?;
        let slot = store::slot(&mut tx, a.slot_id).await?;
        record(&mut tx, &a, &slot, &hall, AppointmentAction::Cancelled).await?;
        tx.commit().await?;
        Ok((a, slot))
    }

    /// Moves a booked appointment to another slot of the same hall and matter; a full slot
    /// leaves the old booking as it was.
    pub async fn reschedule(
        &self,
        caller: &Caller,
        id: Uuid,
        slot_id: Uuid,
    ) -> AppResult<(AppointmentRow, SlotRow)> {
        let mut tx = self.pool.begin().await?;
        let (mut a, hall) = booked(&mut tx, caller, id, true).await?;
        store::lock_citizen(&mut tx, &a.citizen_id).await?;
        let slot = store::slot(&mut tx, slot_id).await?;
        if slot.hall_id != a.hall_id || slot.matter_id != a.matter_id {
            return Err(AppError::invalid(
                "slot_id",
                "must be a slot of the same hall and matter",
            ));
        }
        domain::slot_ahead(slot.day, self.today())?;
        if slot.id == a.slot_id {
            return Err(AppError::invalid("slot_id", "is the slot already booked"));
        }
        let held: Vec<Uuid> =
            store::booked_on(&mut tx, &a.citizen_id, a.hall_id, slot.day, Some(a.id))
                .await?
                .into_iter()
                .map(|(_, s)| s)
                .collect();
        domain::may_book(&held, slot.id, self.settings.daily_cap)?;
        if !store::take_place(&mut tx, slot.id).await? {
            return Err(slot_full());
        }
        store::release_place(&mut tx, a.slot_id).await?;
        a.slot_id = slot.id;
        let a = store::update_appointment(&mut tx, &a).await?;
        record(&mut tx, &a, &slot, &hall, AppointmentAction::Rescheduled).await?;
        tx.commit().await?;
        Ok((a, slot))
    }

    /// Checks a citizen in on the appointment's day: a ticket ahead of walk-ins within the
    /// grace period, a walk-in ticket after it. Two check-ins of one appointment give one ticket.
    pub async fn check_in(&self, caller: &Caller, id: Uuid) -> AppResult<CheckedIn> {
        let mut conn = self.pool.acquire().await?;
        let (a, hall) = booked(&mut conn, caller, id, false).await?;
        let slot = store::slot(&mut conn, a.slot_id).await?;
        drop(conn);
        let now = self.clock.now().with_timezone(&cst()).naive_local();
        let (priority, late) =
            domain::check_in_priority(slot.day, slot.start_time, now, self.settings.grace_minutes)?;
        let windows = self.hall_windows(hall.id).await?;
        let t = self
            .prepare(
                &hall,
                &windows,
                &a.matter_id,
                priority,
                ServiceKind::Normal,
                &a.citizen_id,
                "",
                Some(a.id),
            )
            .await?;
        let mut tx = self.pool.begin().await?;
        // Checked again under the lock.
        let (mut a, _) = booked(&mut tx, caller, id, true).await?;
        let t = Queue::persist(&mut tx, &t, None).await?;
        a.checked_in(t.id)?;
        let a = store::update_appointment(&mut tx, &a).await?;
        record(&mut tx, &a, &slot, &hall, AppointmentAction::CheckedIn).await?;
        tx.commit().await?;
        self.queue_after_commit(&t).await;
        self.announce(&hall, pb::watch_board_response::Kind::Counts, "", "")
            .await;
        Ok(CheckedIn {
            appointment: a,
            slot,
            ticket: t,
            windows,
            late,
        })
    }
}
