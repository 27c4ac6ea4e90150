//! Events the queue service publishes on `xiaoneng.queue.events`.

use xiaoneng_kit::events::NewEvent;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{AppError, AppResult, ServiceKind};
use xiaoneng_proto::queue::events::v1 as ev;

use crate::domain::wire;
use crate::domain::{AppointmentAction, CallAction};
use crate::domain::{AppointmentRow, SlotRow, TicketRow, TidalRow};

fn region(code: &str) -> AppResult<RegionCode> {
    RegionCode::parse(code)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored region {code}: {e}")))
}

pub fn issued(t: &TicketRow) -> AppResult<NewEvent> {
    Ok(NewEvent::new(
        ServiceKind::Queue,
        t.id.to_string(),
        &region(&t.region_code)?,
        &ev::TicketIssued {
            ticket_id: t.id.to_string(),
            hall_id: t.hall_id.to_string(),
            region_code: t.region_code.clone(),
            number: t.number.clone(),
            category: t.category.clone(),
            matter_id: t.matter_id.clone(),
            priority: wire::priority(t.priority) as i32,
            service_kind: wire::service_kind(&t.service_kind) as i32,
            arrival_time: Some(xiaoneng_kit::timestamp(t.arrival_at)),
            appointment_id: t.appointment_id.map(|a| a.to_string()).unwrap_or_default(),
            case_id: t.case_id.clone(),
        },
    ))
}

pub fn called(
    t: &TicketRow,
    action: CallAction,
    window_id: &str,
    window_code: &str,
) -> AppResult<NewEvent> {
    Ok(NewEvent::new(
        ServiceKind::Queue,
        t.id.to_string(),
        &region(&t.region_code)?,
        &ev::TicketCalled {
            ticket_id: t.id.to_string(),
            hall_id: t.hall_id.to_string(),
            region_code: t.region_code.clone(),
            number: t.number.clone(),
            window_id: window_id.to_string(),
            window_code: window_code.to_string(),
            staff_id: t.staff_id.clone(),
            action: wire::call_action(action, t.state) as i32,
            call_sequence: t.call_seq.unwrap_or(0),
        },
    ))
}

pub fn finished(t: &TicketRow) -> AppResult<NewEvent> {
    let called = t.called_at.unwrap_or(t.arrival_at);
    let finished = t.finished_at.unwrap_or(called);
    Ok(NewEvent::new(
        ServiceKind::Queue,
        t.id.to_string(),
        &region(&t.region_code)?,
        &ev::ServiceFinished {
            ticket_id: t.id.to_string(),
            hall_id: t.hall_id.to_string(),
            region_code: t.region_code.clone(),
            number: t.number.clone(),
            matter_id: t.matter_id.clone(),
            matter_name: t.matter_name.clone(),
            window_id: t.window_id.map(|w| w.to_string()).unwrap_or_default(),
            window_code: t.window_code.clone(),
            staff_id: t.staff_id.clone(),
            wait_seconds: (called - t.arrival_at).num_seconds().max(0),
            service_seconds: (finished - t.started_at.unwrap_or(called))
                .num_seconds()
                .max(0),
            case_id: t.case_id.clone(),
            citizen_id: t.citizen_id.clone(),
            finish_time: Some(xiaoneng_kit::timestamp(finished)),
            department: t.department.clone(),
        },
    ))
}

/// An appointment was booked, cancelled, rescheduled or checked in (`action`).
pub fn appointment(
    a: &AppointmentRow,
    slot: &SlotRow,
    region_code: &str,
    action: AppointmentAction,
) -> AppResult<NewEvent> {
    Ok(NewEvent::new(
        ServiceKind::Queue,
        a.id.to_string(),
        &region(region_code)?,
        &ev::AppointmentChanged {
            appointment_id: a.id.to_string(),
            hall_id: a.hall_id.to_string(),
            region_code: region_code.to_string(),
            matter_id: a.matter_id.clone(),
            citizen_id: a.citizen_id.clone(),
            slot_id: slot.id.to_string(),
            date: slot.day.to_string(),
            start_time: slot.start_time.format("%H:%M").to_string(),
            action: wire::appointment_action(action) as i32,
        },
    ))
}

pub fn tidal(t: &TidalRow, region_code: &str) -> AppResult<NewEvent> {
    Ok(NewEvent::new(
        ServiceKind::Queue,
        t.hall_id.to_string(),
        &region(region_code)?,
        &ev::TidalWindowChanged {
            hall_id: t.hall_id.to_string(),
            region_code: region_code.to_string(),
            category: t.category.clone(),
            action: wire::tidal_action(t.action) as i32,
            window_id: t.window_id.map(|w| w.to_string()).unwrap_or_default(),
            window_code: t.window_code.clone(),
            staff_id: t.staff_id.clone(),
            waiting: t.waiting,
            estimated_wait_minutes: t.estimated_wait,
            reason: t.reason.clone(),
        },
    ))
}
