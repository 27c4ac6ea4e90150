//! gRPC handlers: parse, authorize, run the rule through PostgreSQL (the record) and Redis (the
//! hot queue), publish to the board.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{NaiveTime, Utc};
use futures::Stream;
use tonic::{Request, Response, Status};
use uuid::Uuid;
use xiaoneng_kit::auth::{self, roles, Caller};
use xiaoneng_kit::clock::cst;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{outbox, parse_date_field, AppError, AppResult, Violations};
use xiaoneng_proto::queue::v1 as pb;

use crate::domain::wire;
use crate::domain::Reason;
use crate::domain::{
    self, AppointmentAction, AppointmentState, CallAction, Category, Priority, ServiceKind,
    StaffOnDuty, TicketState, TidalPolicy, WindowKind, WindowState,
};
use crate::events;
use crate::service::{eligible_codes, parse_uuid, Queue};
use crate::store::{self, AppointmentRow, HallRow, SlotRow, TicketRow, WindowRow};

const MANAGE: &[&str] = &[roles::HALL_MANAGER];
const WINDOW_STAFF: &[&str] = &[roles::CLERK, roles::HALL_MANAGER];
const READ_TICKET: &[&str] = &[
    roles::CITIZEN,
    roles::CLERK,
    roles::HALL_MANAGER,
    roles::SUPERVISOR,
    roles::SYSTEM,
];
const TAKE_TICKET: &[&str] = &[
    roles::CITIZEN,
    roles::CLERK,
    roles::HALL_MANAGER,
    roles::SYSTEM,
];

pub fn window_kind(k: pb::WindowKind) -> Option<WindowKind> {
    match k {
        pb::WindowKind::Comprehensive => Some(WindowKind::Comprehensive),
        pb::WindowKind::Department => Some(WindowKind::Department),
        pb::WindowKind::GreenChannel => Some(WindowKind::GreenChannel),
        pb::WindowKind::Complaint => Some(WindowKind::Complaint),
        pb::WindowKind::Assisted => Some(WindowKind::Assisted),
        pb::WindowKind::Unspecified => None,
    }
}

fn window_kind_pb(k: &str) -> pb::WindowKind {
    match WindowKind::from_name(k) {
        Some(WindowKind::Comprehensive) => pb::WindowKind::Comprehensive,
        Some(WindowKind::Department) => pb::WindowKind::Department,
        Some(WindowKind::GreenChannel) => pb::WindowKind::GreenChannel,
        Some(WindowKind::Complaint) => pb::WindowKind::Complaint,
        Some(WindowKind::Assisted) => pb::WindowKind::Assisted,
        None => pb::WindowKind::Unspecified,
    }
}

fn window_pb(w: &WindowRow) -> pb::Window {
    pb::Window {
        id: w.id.to_string(),
        hall_id: w.hall_id.to_string(),
        code: w.code.clone(),
        kind: window_kind_pb(&w.kind) as i32,
        matter_ids: w.matter_ids.clone(),
        state: wire::window_state(w.state) as i32,
        staff_id: w.staff_id.clone(),
        tidal: w.tidal,
        tidal_category: w.tidal_category.clone(),
    }
}

fn hall_pb(h: &HallRow, windows: &[WindowRow]) -> pb::Hall {
    pb::Hall {
        id: h.id.to_string(),
        region_code: h.region_code.clone(),
        name: h.name.clone(),
        categories: h
            .categories
            .iter()
            .map(|c| pb::Category {
                code: c.code.clone(),
                name: c.name.clone(),
                matter_ids: c.matter_ids.clone(),
            })
            .collect(),
        windows: windows.iter().map(window_pb).collect(),
        staff: h
            .staff
            .iter()
            .map(|s| pb::StaffOnDuty {
                staff_id: s.staff_id.clone(),
                name: s.name.clone(),
                categories: s.categories.clone(),
            })
            .collect(),
        tidal_policies: h
            .tidal
            .iter()
            .map(|p| pb::TidalPolicy {
                category: p.category.clone(),
                open_waiting: p.open_waiting,
                open_wait_minutes: p.open_wait_minutes,
                close_waiting: p.close_waiting,
            })
            .collect(),
        weekend_service: h.weekend_service,
    }
}

fn ts(t: Option<chrono::DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    t.map(xiaoneng_kit::timestamp)
}

pub fn ticket_pb(t: &TicketRow, windows: &[WindowRow]) -> pb::Ticket {
    pb::Ticket {
        id: t.id.to_string(),
        hall_id: t.hall_id.to_string(),
        region_code: t.region_code.clone(),
        date: t.day.to_string(),
        number: t.number.clone(),
        category: t.category.clone(),
        matter_id: t.matter_id.clone(),
        matter_name: t.matter_name.clone(),
        priority: wire::priority(t.priority) as i32,
        service_kind: wire::service_kind(&t.service_kind) as i32,
        state: wire::ticket_state(t.state) as i32,
        arrival_time: ts(Some(t.arrival_at)),
        eligible_windows: eligible_codes(windows, t),
        window_id: t.window_id.map(|w| w.to_string()).unwrap_or_default(),
        window_code: t.window_code.clone(),
        staff_id: t.staff_id.clone(),
        call_time: ts(t.called_at),
        start_time: ts(t.started_at),
        finish_time: ts(t.finished_at),
        no_shows: t.no_shows,
        recalls: t.recalls,
        case_id: t.case_id.clone(),
        appointment_id: t.appointment_id.map(|a| a.to_string()).unwrap_or_default(),
        call_sequence: t.call_seq.unwrap_or(0),
    }
}

fn slot_pb(s: &SlotRow) -> pb::Slot {
    pb::Slot {
        id: s.id.to_string(),
        hall_id: s.hall_id.to_string(),
        matter_id: s.matter_id.clone(),
        date: s.day.to_string(),
        start_time: s.start_time.format("%H:%M").to_string(),
        end_time: s.end_time.format("%H:%M").to_string(),
        capacity: s.capacity,
        booked: s.booked,
    }
}

fn appointment_pb(a: &AppointmentRow, slot: &SlotRow) -> pb::Appointment {
    pb::Appointment {
        id: a.id.to_string(),
        slot_id: a.slot_id.to_string(),
        hall_id: a.hall_id.to_string(),
        matter_id: a.matter_id.clone(),
        citizen_id: a.citizen_id.clone(),
        citizen_name: a.citizen_name.clone(),
        state: wire::appointment_state(a.state) as i32,
        date: slot.day.to_string(),
        start_time: slot.start_time.format("%H:%M").to_string(),
        ticket_id: a.ticket_id.map(|t| t.to_string()).unwrap_or_default(),
    }
}

fn parse_time(s: &str, field: &str) -> AppResult<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M")
        .map_err(|_| AppError::invalid(field, "must be a time HH:MM"))
}

/// A citizen reads only a ticket taken in their name; staff any ticket of their region.
fn may_read_ticket(caller: &Caller, t: &TicketRow) -> AppResult<()> {
    let region = RegionCode::parse(&t.region_code)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored region: {e}")))?;
    caller
        .audience()
        .check("ticket", &t.id.to_string(), &region, &t.citizen_id)
}

/// The gRPC adapter over the queue's use cases.
pub struct QueueApi(pub Arc<Queue>);

impl QueueApi {
    async fn ticket_response(&self, t: &TicketRow) -> AppResult<pb::Ticket> {
        let windows = self.hall_windows(t.hall_id).await?;
        Ok(ticket_pb(t, &windows))
    }
}

impl std::ops::Deref for QueueApi {
    type Target = Queue;

    fn deref(&self) -> &Queue {
        &self.0
    }
}

type BoardStream = Pin<Box<dyn Stream<Item = Result<pb::WatchBoardResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::queue_service_server::QueueService for QueueApi {
    async fn create_hall(
        &self,
        req: Request<pb::CreateHallRequest>,
    ) -> Result<Response<pb::CreateHallResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(MANAGE)?;
        let r = req.into_inner();
        let mut v = Violations::new();
        let region = RegionCode::parse_field(&r.region_code, "region_code", &mut v);
        v.text(&r.name, "name", 100);
        let categories: Vec<Category> = r
            .categories
            .iter()
            .map(|c| Category {
                code: c.code.trim().to_string(),
                name: c.name.trim().to_string(),
                matter_ids: c.matter_ids.clone(),
            })
            .collect();
        if let Err((field, msg)) = domain::check_categories(&categories) {
            v.add(&field, &msg);
        }
        v.into_result()?;
        let region = region.expect("checked");
        caller.require_region(&region)?;
        let h = store::create_hall(
            &self.pool,
            &region,
            r.name.trim(),
            &categories,
            r.weekend_service,
        )
        .await?;
        self.rebuild(h.id).await?;
        Ok(Response::new(pb::CreateHallResponse {
            hall: Some(hall_pb(&h, &[])),
        }))
    }

    async fn get_hall(
        &self,
        req: Request<pb::GetHallRequest>,
    ) -> Result<Response<pb::GetHallResponse>, Status> {
        let caller = auth::caller(&req)?;
        let (h, w) = self
            .load_hall(Some(&caller), &req.get_ref().hall_id)
            .await?;
        Ok(Response::new(pb::GetHallResponse {
            hall: Some(hall_pb(&h, &w)),
        }))
    }

    async fn upsert_window(
        &self,
        req: Request<pb::UpsertWindowRequest>,
    ) -> Result<Response<pb::UpsertWindowResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(MANAGE)?;
        let w = req.into_inner().window.unwrap_or_default();
        let mut v = Violations::new();
        let hall_id = Uuid::parse_str(&w.hall_id).ok();
        v.check(hall_id.is_some(), "window.hall_id", "must be a hall id");
        v.text(&w.code, "window.code", 20);
        let kind = pb::WindowKind::try_from(w.kind).ok().and_then(window_kind);
        v.check(kind.is_some(), "window.kind", "must be a window kind");
        if kind == Some(WindowKind::Department) {
            v.check(
                !w.matter_ids.is_empty(),
                "window.matter_ids",
                "a department window needs its matters",
            );
        }
        let id = if w.id.is_empty() {
            Some(Uuid::now_v7())
        } else {
            Uuid::parse_str(&w.id).ok()
        };
        v.check(id.is_some(), "window.id", "must be a window id or empty");
        v.into_result()?;
        let mut tx = self.pool.begin().await.map_err(AppError::from)?;
        let hall = store::hall(&mut tx, Some(&caller.region), hall_id.expect("checked")).await?;
        let row = WindowRow {
            id: id.expect("checked"),
            hall_id: hall.id,
            code: w.code.trim().to_string(),
            kind: kind.expect("checked").name().to_string(),
            matter_ids: w.matter_ids.clone(),
            state: WindowState::Closed,
            staff_id: String::new(),
            tidal: w.tidal,
            tidal_category: String::new(),
        };
        let saved = store::upsert_window(&mut tx, &row).await?;
        if saved.hall_id != hall.id {
            return Err(AppError::invalid(
                "window.hall_id",
                "a window cannot move to another hall",
            )
            .into());
        }
        tx.commit().await.map_err(AppError::from)?;
        self.forget_windows(hall.id);
        Ok(Response::new(pb::UpsertWindowResponse {
            window: Some(window_pb(&saved)),
        }))
    }

    async fn set_window_state(
        &self,
        req: Request<pb::SetWindowStateRequest>,
    ) -> Result<Response<pb::SetWindowStateResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(WINDOW_STAFF)?;
        let r = req.into_inner();
        let state = match pb::WindowState::try_from(r.state) {
            Ok(pb::WindowState::Open) => WindowState::Open,
            Ok(pb::WindowState::Paused) => WindowState::Paused,
            Ok(pb::WindowState::Closed) => WindowState::Closed,
            _ => return Err(AppError::invalid("state", "must be open, paused or closed").into()),
        };
        let window_id = parse_uuid(&r.window_id, "window_id")?;
        let mut tx = self.pool.begin().await.map_err(AppError::from)?;
        let (w, hall) = store::lock_window(&mut tx, &caller.region, window_id).await?;
        let staff = match state {
            WindowState::Open => {
                let staff = r.staff_id.trim().to_string();
                if staff.is_empty() {
                    return Err(
                        AppError::invalid("staff_id", "an open window has someone on it").into(),
                    );
                }
                staff
            }
            WindowState::Paused => w.staff_id.clone(),
            WindowState::Closed => {
                if let Some(cur) = store::current_at(&mut tx, w.id).await? {
                    return Err(AppError::precondition(
                        Reason::WindowBusy.name(),
                        format!("window {} is still on {}", w.code, cur.number),
                    )
                    .into());
                }
                String::new()
            }
        };
        let tidal_category = if state == WindowState::Closed {
            String::new()
        } else {
            w.tidal_category.clone()
        };
        let saved = store::set_window_state(&mut tx, w.id, state, &staff, &tidal_category).await?;
        tx.commit().await.map_err(AppError::from)?;
        self.forget_windows(hall.id);
        self.announce(&hall, pb::watch_board_response::Kind::Counts, "", "")
            .await;
        Ok(Response::new(pb::SetWindowStateResponse {
            window: Some(window_pb(&saved)),
        }))
    }

    async fn set_staff_roster(
        &self,
        req: Request<pb::SetStaffRosterRequest>,
    ) -> Result<Response<pb::SetStaffRosterResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(MANAGE)?;
        let r = req.into_inner();
        let (h, _) = self.load_hall(Some(&caller), &r.hall_id).await?;
        let mut v = Violations::new();
        let codes: BTreeSet<&str> = h.categories.iter().map(|c| c.code.as_str()).collect();
        let mut seen = BTreeSet::new();
        for (i, s) in r.staff.iter().enumerate() {
            v.text(&s.staff_id, &format!("staff[{i}].staff_id"), 64);
            v.check(
                seen.insert(s.staff_id.clone()),
                &format!("staff[{i}].staff_id"),
                "is listed twice",
            );
            for (j, c) in s.categories.iter().enumerate() {
                v.check(
                    codes.contains(c.as_str()),
                    &format!("staff[{i}].categories[{j}]"),
                    "is not a category of the hall",
                );
            }
        }
        v.into_result()?;
        let staff: Vec<StaffOnDuty> = r
            .staff
            .iter()
            .map(|s| StaffOnDuty {
                staff_id: s.staff_id.trim().into(),
                name: s.name.clone(),
                categories: s.categories.clone(),
            })
            .collect();
        let mut conn = self.pool.acquire().await.map_err(AppError::from)?;
        store::set_hall_json(
            &mut conn,
            h.id,
            "staff",
            serde_json::to_value(&staff).map_err(|e| AppError::Internal(e.into()))?,
        )
        .await?;
        drop(conn);
        let (h, w) = self.load_hall(Some(&caller), &r.hall_id).await?;
        Ok(Response::new(pb::SetStaffRosterResponse {
            hall: Some(hall_pb(&h, &w)),
        }))
    }

    async fn set_tidal_policy(
        &self,
        req: Request<pb::SetTidalPolicyRequest>,
    ) -> Result<Response<pb::SetTidalPolicyResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(MANAGE)?;
        let r = req.into_inner();
        let (h, _) = self.load_hall(Some(&caller), &r.hall_id).await?;
        let p = r.policy.unwrap_or_default();
        let mut v = Violations::new();
        v.check(
            h.categories.iter().any(|c| c.code == p.category),
            "policy.category",
            "is not a category of the hall",
        );
        v.check(
            p.open_waiting >= 1,
            "policy.open_waiting",
            "must be at least 1",
        );
        v.check(
            p.open_wait_minutes >= 0,
            "policy.open_wait_minutes",
            "must not be negative",
        );
        v.check(
            p.close_waiting >= 0 && p.close_waiting < p.open_waiting,
            "policy.close_waiting",
            "must be below open_waiting",
        );
        v.into_result()?;
        let mut policies: Vec<TidalPolicy> = h
            .tidal
            .0
            .iter()
            .filter(|x| x.category != p.category)
            .cloned()
            .collect();
        policies.push(TidalPolicy {
            category: p.category,
            open_waiting: p.open_waiting,
            open_wait_minutes: p.open_wait_minutes,
            close_waiting: p.close_waiting,
        });
        let mut conn = self.pool.acquire().await.map_err(AppError::from)?;
        store::set_hall_json(
            &mut conn,
            h.id,
            "tidal",
            serde_json::to_value(&policies).map_err(|e| AppError::Internal(e.into()))?,
        )
        .await?;
        drop(conn);
        let (h, w) = self.load_hall(Some(&caller), &r.hall_id).await?;
        Ok(Response::new(pb::SetTidalPolicyResponse {
            hall: Some(hall_pb(&h, &w)),
        }))
    }

    async fn create_slots(
        &self,
        req: Request<pb::CreateSlotsRequest>,
    ) -> Result<Response<pb::CreateSlotsResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(MANAGE)?;
        let r = req.into_inner();
        let (h, _) = self.load_hall(Some(&caller), &r.hall_id).await?;
        let today = self.today();
        let mut v = Violations::new();
        let day = parse_date_field(&r.date, "date", today).ok();
        v.check(
            day.is_some() && !r.date.is_empty(),
            "date",
            "must be a date YYYY-MM-DD",
        );
        let start = parse_time(&r.start_time, "start_time").ok();
        let end = parse_time(&r.end_time, "end_time").ok();
        v.check(start.is_some(), "start_time", "must be a time HH:MM");
        v.check(end.is_some(), "end_time", "must be a time HH:MM");
        v.check((5..=240).contains(&r.minutes), "minutes", "must be 5-240");
        v.check(
            (1..=1000).contains(&r.capacity),
            "capacity",
            "must be 1-1000",
        );
        if let (Some(s), Some(e)) = (start, end) {
            v.check(s < e, "end_time", "must be after start_time");
        }
        v.into_result()?;
        let (day, start, end) = (
            day.expect("checked"),
            start.expect("checked"),
            end.expect("checked"),
        );
        if day < today {
            return Err(AppError::invalid("date", "must not be in the past").into());
        }
        // Blackout days: the calendar's holidays, and weekends unless the hall serves then
        // (周末不打烊); 调休 workdays are open.
        let cal = self.calendars.for_region(&h.region_code);
        if !(cal.is_working_day(day) || (h.weekend_service && !cal.is_holiday(day))) {
            return Err(AppError::precondition(
                Reason::ClosedDay.name(),
                format!("{day} is not a working day in {}", h.region_code),
            )
            .into());
        }
        self.matter(&r.matter_id).await?;
        let mut tx = self.pool.begin().await.map_err(AppError::from)?;
        let mut out = Vec::new();
        let mut t = start;
        while t < end {
            let next = (t + chrono::Duration::minutes(i64::from(r.minutes))).min(end);
            if next <= t {
                break;
            }
            let s = SlotRow {
                id: Uuid::now_v7(),
                hall_id: h.id,
                matter_id: r.matter_id.clone(),
                day,
                start_time: t,
                end_time: next,
                capacity: r.capacity,
                booked: 0,
            };
            out.push(slot_pb(&store::insert_slot(&mut tx, &s).await?));
            t = next;
        }
        tx.commit().await.map_err(AppError::from)?;
        Ok(Response::new(pb::CreateSlotsResponse { slots: out }))
    }

    async fn list_slots(
        &self,
        req: Request<pb::ListSlotsRequest>,
    ) -> Result<Response<pb::ListSlotsResponse>, Status> {
        let r = req.into_inner();
        let (h, _) = self.load_hall(None, &r.hall_id).await?;
        let day = parse_date_field(&r.date, "date", self.today())?;
        let slots = store::slots(&self.pool, h.id, &r.matter_id, day).await?;
        Ok(Response::new(pb::ListSlotsResponse {
            slots: slots.iter().map(slot_pb).collect(),
        }))
    }

    async fn book_appointment(
        &self,
        req: Request<pb::BookAppointmentRequest>,
    ) -> Result<Response<pb::BookAppointmentResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(TAKE_TICKET)?;
        let r = req.into_inner();
        let slot_id = parse_uuid(&r.slot_id, "slot_id")?;
        let citizen = Queue::citizen_of(&caller, &r.citizen_id)?;
        let mut tx = self.pool.begin().await.map_err(AppError::from)?;
        store::lock_citizen(&mut tx, &citizen).await?;
        let slot = store::slot(&mut tx, slot_id).await?;
        let hall = store::hall(&mut tx, Some(&caller.region), slot.hall_id)
            .await
            .map_err(|_| AppError::not_found("slot", slot_id.to_string()))?;
        self.slot_day_checks(&slot).await?;
        let booked = store::booked_on(&mut tx, &citizen, hall.id, slot.day, None).await?;
        if booked.iter().any(|(_, s)| *s == slot.id) {
            return Err(AppError::precondition(
                Reason::AlreadyBooked.name(),
                "this person already holds this slot",
            )
            .into());
        }
        if booked.len() >= self.settings.daily_cap {
            return Err(AppError::precondition(
                Reason::DailyCap.name(),
                format!(
                    "at most {} appointments a day per person",
                    self.settings.daily_cap
                ),
            )
            .into());
        }
        if !store::take_place(&mut tx, slot.id).await? {
            return Err(AppError::precondition(
                Reason::SlotFull.name(),
                "the slot is fully booked",
            )
            .into());
        }
        let a = AppointmentRow {
            id: Uuid::now_v7(),
            slot_id: slot.id,
            hall_id: hall.id,
            matter_id: slot.matter_id.clone(),
            citizen_id: citizen,
            citizen_name: r.citizen_name.trim().to_string(),
            state: AppointmentState::Booked,
            ticket_id: None,
        };
        let a = store::insert_appointment(&mut tx, &a).await?;
        Queue::record_appointment(&mut tx, &a, &slot, &hall, AppointmentAction::Booked).await?;
        tx.commit().await.map_err(AppError::from)?;
        Ok(Response::new(pb::BookAppointmentResponse {
            appointment: Some(appointment_pb(&a, &slot)),
        }))
    }

    async fn cancel_appointment(
        &self,
        req: Request<pb::CancelAppointmentRequest>,
    ) -> Result<Response<pb::CancelAppointmentResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(TAKE_TICKET)?;
        let id = parse_uuid(&req.get_ref().appointment_id, "appointment_id")?;
        let mut tx = self.pool.begin().await.map_err(AppError::from)?;
        let (mut a, hall) = Queue::booked_appointment(&mut tx, &caller, id, true).await?;
        store::release_place(&mut tx, a.slot_id).await?;
        a.state = AppointmentState::Cancelled;
        let a = store::update_appointment(&mut tx, &a).await?;
        let slot = store::slot(&mut tx, a.slot_id).await?;
        Queue::record_appointment(&mut tx, &a, &slot, &hall, AppointmentAction::Cancelled).await?;
        tx.commit().await.map_err(AppError::from)?;
        Ok(Response::new(pb::CancelAppointmentResponse {
            appointment: Some(appointment_pb(&a, &slot)),
        }))
    }

    async fn reschedule_appointment(
        &self,
        req: Request<pb::RescheduleAppointmentRequest>,
    ) -> Result<Response<pb::RescheduleAppointmentResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(TAKE_TICKET)?;
        let r = req.into_inner();
        let id = parse_uuid(&r.appointment_id, "appointment_id")?;
        let slot_id = parse_uuid(&r.slot_id, "slot_id")?;
        let mut tx = self.pool.begin().await.map_err(AppError::from)?;
        let (mut a, hall) = Queue::booked_appointment(&mut tx, &caller, id, true).await?;
        store::lock_citizen(&mut tx, &a.citizen_id).await?;
        let slot = store::slot(&mut tx, slot_id).await?;
        if slot.hall_id != a.hall_id || slot.matter_id != a.matter_id {
            return Err(
                AppError::invalid("slot_id", "must be a slot of the same hall and matter").into(),
            );
        }
        self.slot_day_checks(&slot).await?;
        if slot.id == a.slot_id {
            return Err(AppError::invalid("slot_id", "is the slot already booked").into());
        }
        if store::booked_on(&mut tx, &a.citizen_id, a.hall_id, slot.day, Some(a.id))
            .await?
            .len()
            >= self.settings.daily_cap
        {
            return Err(AppError::precondition(
                Reason::DailyCap.name(),
                format!(
                    "at most {} appointments a day per person",
                    self.settings.daily_cap
                ),
            )
            .into());
        }
        // Take the new place first: a full slot leaves the old booking as it was.
        if !store::take_place(&mut tx, slot.id).await? {
            return Err(AppError::precondition(
                Reason::SlotFull.name(),
                "the slot is fully booked",
            )
            .into());
        }
        store::release_place(&mut tx, a.slot_id).await?;
        a.slot_id = slot.id;
        let a = store::update_appointment(&mut tx, &a).await?;
        Queue::record_appointment(&mut tx, &a, &slot, &hall, AppointmentAction::Rescheduled)
            .await?;
        tx.commit().await.map_err(AppError::from)?;
        Ok(Response::new(pb::RescheduleAppointmentResponse {
            appointment: Some(appointment_pb(&a, &slot)),
        }))
    }

    async fn check_in(
        &self,
        req: Request<pb::CheckInRequest>,
    ) -> Result<Response<pb::CheckInResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(TAKE_TICKET)?;
        let id = parse_uuid(&req.get_ref().appointment_id, "appointment_id")?;
        let mut conn = self.pool.acquire().await.map_err(AppError::from)?;
        let (a, hall) = Queue::booked_appointment(&mut conn, &caller, id, false).await?;
        let slot = store::slot(&mut conn, a.slot_id).await?;
        drop(conn);
        let now = self.clock.now().with_timezone(&cst());
        if slot.day != now.date_naive() {
            return Err(AppError::precondition(
                Reason::NotToday.name(),
                format!("the appointment is for {}", slot.day),
            )
            .into());
        }
        // Within the grace period after the slot's start: ahead of walk-ins; later: a walk-in.
        let late =
            now.time() > slot.start_time + chrono::Duration::minutes(self.settings.grace_minutes);
        let priority = if late {
            Priority::Normal
        } else {
            Priority::Appointment
        };
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
        let mut tx = self.pool.begin().await.map_err(AppError::from)?;
        // Checked again under the lock: two check-ins of one appointment give one ticket.
        let (mut a, _) = Queue::booked_appointment(&mut tx, &caller, id, true).await?;
        let t = Queue::persist(&mut tx, &t, None).await?;
        a.state = AppointmentState::CheckedIn;
        a.ticket_id = Some(t.id);
        let a = store::update_appointment(&mut tx, &a).await?;
        Queue::record_appointment(&mut tx, &a, &slot, &hall, AppointmentAction::CheckedIn).await?;
        tx.commit().await.map_err(AppError::from)?;
        self.queue_after_commit(&t).await;
        self.announce(&hall, pb::watch_board_response::Kind::Counts, "", "")
            .await;
        Ok(Response::new(pb::CheckInResponse {
            appointment: Some(appointment_pb(&a, &slot)),
            ticket: Some(ticket_pb(&t, &windows)),
            late,
        }))
    }

    async fn issue_ticket(
        &self,
        req: Request<pb::IssueTicketRequest>,
    ) -> Result<Response<pb::IssueTicketResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(TAKE_TICKET)?;
        let r = req.into_inner();
        let mut v = Violations::new();
        let hall_id = Uuid::parse_str(&r.hall_id).ok();
        v.check(hall_id.is_some(), "hall_id", "must be a hall id");
        v.check(!r.matter_id.trim().is_empty(), "matter_id", "is required");
        let priority = match pb::Priority::try_from(r.priority) {
            Ok(pb::Priority::Unspecified | pb::Priority::Normal) => Some(Priority::Normal),
            Ok(pb::Priority::Urgent) => Some(Priority::Urgent),
            Ok(pb::Priority::Elderly) => Some(Priority::Elderly),
            _ => None,
        };
        v.check(
            priority.is_some(),
            "priority",
            "must be normal, urgent or elderly (appointments come through CheckIn)",
        );
        let kind = match pb::ServiceKind::try_from(r.service_kind) {
            Ok(pb::ServiceKind::Unspecified | pb::ServiceKind::Normal) => Some(ServiceKind::Normal),
            Ok(pb::ServiceKind::Complaint) => Some(ServiceKind::Complaint),
            Ok(pb::ServiceKind::Assisted) => Some(ServiceKind::Assisted),
            Err(_) => None,
        };
        v.check(kind.is_some(), "service_kind", "must be a service kind");
        v.into_result()?;
        let mut conn = self.pool.acquire().await.map_err(AppError::from)?;
        if !r.request_id.is_empty() {
            if let Some(t) = store::ticket_by_request(&mut conn, &r.request_id).await? {
                drop(conn);
                // The same request again: answered only to whoever may read the ticket.
                may_read_ticket(&caller, &t)?;
                return Ok(Response::new(pb::IssueTicketResponse {
                    ticket: Some(self.ticket_response(&t).await?),
                    ..Default::default()
                }));
            }
        }
        let hall = store::hall(&mut conn, Some(&caller.region), hall_id.expect("checked")).await?;
        drop(conn);
        let windows = self.hall_windows(hall.id).await?;
        let citizen = if caller.acts_as_citizen() {
            caller.subject.clone()
        } else {
            r.citizen_id.clone()
        };
        let t = self
            .prepare(
                &hall,
                &windows,
                r.matter_id.trim(),
                priority.expect("checked"),
                kind.expect("checked"),
                &citizen,
                &r.case_id,
                None,
            )
            .await?;
        let request_id = Some(r.request_id.as_str()).filter(|s| !s.is_empty());
        let mut tx = self.pool.begin().await.map_err(AppError::from)?;
        let t = Queue::persist(&mut tx, &t, request_id).await?;
        tx.commit().await.map_err(AppError::from)?;
        self.queue_after_commit(&t).await;
        self.announce(&hall, pb::watch_board_response::Kind::Counts, "", "")
            .await;
        let mut conn = self.pool.acquire().await.map_err(AppError::from)?;
        let waits = self.waits(&mut conn, &hall, &windows).await?;
        let w = waits
            .iter()
            .find(|w| w.category == t.category)
            .cloned()
            .unwrap_or_default();
        Ok(Response::new(pb::IssueTicketResponse {
            ticket: Some(ticket_pb(&t, &windows)),
            estimated_wait_minutes: w.estimated_wait_minutes,
            waiting_ahead: (w.waiting - 1).max(0),
        }))
    }

    async fn get_ticket(
        &self,
        req: Request<pb::GetTicketRequest>,
    ) -> Result<Response<pb::GetTicketResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(READ_TICKET)?;
        let id = parse_uuid(&req.get_ref().ticket_id, "ticket_id")?;
        let mut conn = self.pool.acquire().await.map_err(AppError::from)?;
        let t = store::ticket(&mut conn, Some(&caller.region), id, false).await?;
        drop(conn);
        // A citizen reads only a ticket taken in their name.
        may_read_ticket(&caller, &t)?;
        Ok(Response::new(pb::GetTicketResponse {
            ticket: Some(self.ticket_response(&t).await?),
        }))
    }

    async fn call_next(
        &self,
        req: Request<pb::CallNextRequest>,
    ) -> Result<Response<pb::CallNextResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(WINDOW_STAFF)?;
        let t = self.call(&caller, &req.get_ref().window_id, None).await?;
        let ticket = match t {
            Some(t) => Some(self.ticket_response(&t).await?),
            None => None,
        };
        Ok(Response::new(pb::CallNextResponse { ticket }))
    }

    async fn call_ticket(
        &self,
        req: Request<pb::CallTicketRequest>,
    ) -> Result<Response<pb::CallTicketResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(WINDOW_STAFF)?;
        let r = req.into_inner();
        let tid = parse_uuid(&r.ticket_id, "ticket_id")?;
        let t = self
            .call(&caller, &r.window_id, Some(tid))
            .await?
            .ok_or_else(|| AppError::precondition(Reason::NotWaiting.name(), "not waiting"))?;
        Ok(Response::new(pb::CallTicketResponse {
            ticket: Some(self.ticket_response(&t).await?),
        }))
    }

    async fn recall(
        &self,
        req: Request<pb::RecallRequest>,
    ) -> Result<Response<pb::RecallResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(WINDOW_STAFF)?;
        let (t, hall, w, _) = self
            .at_window(
                &caller,
                &req.get_ref().window_id,
                CallAction::Recalled,
                |t, _, _| {
                    if t.state != TicketState::Called {
                        return Err(AppError::precondition(
                            Reason::AlreadyServing.name(),
                            "the citizen is already being served",
                        ));
                    }
                    t.recalls += 1;
                    Ok(false)
                },
            )
            .await?;
        self.announce(
            &hall,
            pb::watch_board_response::Kind::Recalled,
            &t.number,
            &w.code,
        )
        .await;
        Ok(Response::new(pb::RecallResponse {
            ticket: Some(self.ticket_response(&t).await?),
        }))
    }

    async fn mark_no_show(
        &self,
        req: Request<pb::MarkNoShowRequest>,
    ) -> Result<Response<pb::MarkNoShowResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(WINDOW_STAFF)?;
        let (t, hall, _, _) = self
            .at_window(
                &caller,
                &req.get_ref().window_id,
                CallAction::NoShow,
                |t, _, now| {
                    if t.state != TicketState::Called {
                        return Err(AppError::precondition(
                            Reason::AlreadyServing.name(),
                            "the citizen is being served",
                        ));
                    }
                    t.no_shows += 1;
                    t.window_id = None;
                    t.window_code = String::new();
                    t.staff_id = String::new();
                    if t.no_shows >= 2 {
                        t.state = TicketState::Dropped;
                        Ok(false)
                    } else {
                        // Back in the queue once, at the end of its class.
                        t.state = TicketState::Waiting;
                        t.arrival_ms = now.timestamp_millis();
                        Ok(true)
                    }
                },
            )
            .await?;
        self.announce(&hall, pb::watch_board_response::Kind::Counts, "", "")
            .await;
        Ok(Response::new(pb::MarkNoShowResponse {
            ticket: Some(self.ticket_response(&t).await?),
        }))
    }

    async fn hold_ticket(
        &self,
        req: Request<pb::HoldTicketRequest>,
    ) -> Result<Response<pb::HoldTicketResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(WINDOW_STAFF)?;
        let (t, _, _, _) = self
            .at_window(
                &caller,
                &req.get_ref().window_id,
                CallAction::Held,
                |t, _, _| {
                    t.state = TicketState::Held;
                    t.window_id = None;
                    Ok(false)
                },
            )
            .await?;
        Ok(Response::new(pb::HoldTicketResponse {
            ticket: Some(self.ticket_response(&t).await?),
        }))
    }

    async fn resume_ticket(
        &self,
        req: Request<pb::ResumeTicketRequest>,
    ) -> Result<Response<pb::ResumeTicketResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(WINDOW_STAFF)?;
        let id = parse_uuid(&req.get_ref().ticket_id, "ticket_id")?;
        let mut tx = self.pool.begin().await.map_err(AppError::from)?;
        let mut t = store::ticket(&mut tx, Some(&caller.region), id, true).await?;
        if t.state != TicketState::Held {
            return Err(AppError::precondition(
                Reason::NotHeld.name(),
                format!("ticket {} is {}", t.number, t.state),
            )
            .into());
        }
        // Back where it was: its original arrival time.
        t.state = TicketState::Waiting;
        let t = store::update_ticket(&mut tx, &t).await?;
        outbox::enqueue(&mut tx, &events::called(&t, CallAction::Resumed, "", "")?)
            .await
            .map_err(AppError::from)?;
        tx.commit().await.map_err(AppError::from)?;
        self.queue_after_commit(&t).await;
        Ok(Response::new(pb::ResumeTicketResponse {
            ticket: Some(self.ticket_response(&t).await?),
        }))
    }

    async fn transfer_ticket(
        &self,
        req: Request<pb::TransferTicketRequest>,
    ) -> Result<Response<pb::TransferTicketResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(WINDOW_STAFF)?;
        let r = req.into_inner();
        if r.matter_id.is_empty() && r.to_window_id.is_empty() {
            return Err(AppError::invalid(
                "matter_id",
                "name another matter or a window (to_window_id)",
            )
            .into());
        }
        let to_window = if r.to_window_id.is_empty() {
            None
        } else {
            Some(parse_uuid(&r.to_window_id, "to_window_id")?)
        };
        let matter = if r.matter_id.is_empty() {
            None
        } else {
            Some(self.matter(&r.matter_id).await?)
        };
        let mut conn = self.pool.acquire().await.map_err(AppError::from)?;
        let window_id = parse_uuid(&r.window_id, "window_id")?;
        let (_, hall) = store::window(&mut conn, &caller.region, window_id, false).await?;
        let windows = store::windows(&mut conn, hall.id).await?;
        drop(conn);
        if let Some(to) = to_window {
            if !windows.iter().any(|w| w.id == to) {
                return Err(
                    AppError::invalid("to_window_id", "is not a window of this hall").into(),
                );
            }
        }
        let (t, _, _, _) = self
            .at_window(&caller, &r.window_id, CallAction::Transferred, |t, _, _| {
                if let Some(m) = matter {
                    t.matter_id = r.matter_id.clone();
                    t.matter_name = m.name;
                    t.window_codes = m.window_codes;
                }
                // The original arrival time stays: the citizen does not queue again from the back.
                t.state = TicketState::Waiting;
                t.window_id = None;
                t.window_code = String::new();
                t.staff_id = String::new();
                t.direct_window = to_window;
                if to_window.is_none() && eligible_codes(&windows, t).is_empty() {
                    return Err(AppError::precondition(
                        Reason::NoWindow.name(),
                        "no window of the hall serves that matter",
                    ));
                }
                Ok(true)
            })
            .await?;
        Ok(Response::new(pb::TransferTicketResponse {
            ticket: Some(self.ticket_response(&t).await?),
        }))
    }

    async fn start_service(
        &self,
        req: Request<pb::StartServiceRequest>,
    ) -> Result<Response<pb::StartServiceResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(WINDOW_STAFF)?;
        let (t, _, _, _) = self
            .at_window(
                &caller,
                &req.get_ref().window_id,
                CallAction::Started,
                |t, _, now| {
                    if t.state != TicketState::Called {
                        return Err(AppError::precondition(
                            Reason::AlreadyServing.name(),
                            "the service already started",
                        ));
                    }
                    t.state = TicketState::Serving;
                    t.started_at = Some(now);
                    Ok(false)
                },
            )
            .await?;
        Ok(Response::new(pb::StartServiceResponse {
            ticket: Some(self.ticket_response(&t).await?),
        }))
    }

    async fn finish_service(
        &self,
        req: Request<pb::FinishServiceRequest>,
    ) -> Result<Response<pb::FinishServiceResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(WINDOW_STAFF)?;
        let (t, _, _, _) = self
            .at_window(
                &caller,
                &req.get_ref().window_id,
                CallAction::Finished,
                |t, _, now| {
                    t.state = TicketState::Finished;
                    t.finished_at = Some(now);
                    Ok(false)
                },
            )
            .await?;
        Ok(Response::new(pb::FinishServiceResponse {
            ticket: Some(self.ticket_response(&t).await?),
        }))
    }

    async fn link_case(
        &self,
        req: Request<pb::LinkCaseRequest>,
    ) -> Result<Response<pb::LinkCaseResponse>, Status> {
        let caller = auth::caller(&req)?;
        caller.require_any_role(WINDOW_STAFF)?;
        let r = req.into_inner();
        let id = parse_uuid(&r.ticket_id, "ticket_id")?;
        parse_uuid(&r.case_id, "case_id")?;
        let mut tx = self.pool.begin().await.map_err(AppError::from)?;
        let mut t = store::ticket(&mut tx, Some(&caller.region), id, true).await?;
        t.case_id = r.case_id;
        let t = store::update_ticket(&mut tx, &t).await?;
        tx.commit().await.map_err(AppError::from)?;
        Ok(Response::new(pb::LinkCaseResponse {
            ticket: Some(self.ticket_response(&t).await?),
        }))
    }

    async fn estimate_wait(
        &self,
        req: Request<pb::EstimateWaitRequest>,
    ) -> Result<Response<pb::EstimateWaitResponse>, Status> {
        let (h, w) = self.load_hall(None, &req.get_ref().hall_id).await?;
        let mut conn = self.pool.acquire().await.map_err(AppError::from)?;
        let categories = self.waits(&mut conn, &h, &w).await?;
        Ok(Response::new(pb::EstimateWaitResponse { categories }))
    }

    type WatchBoardStream = BoardStream;

    async fn watch_board(
        &self,
        req: Request<pb::WatchBoardRequest>,
    ) -> Result<Response<Self::WatchBoardStream>, Status> {
        let (h, _) = self.load_hall(None, &req.get_ref().hall_id).await?;
        // Subscribe before the snapshot: nothing between the two is missed.
        let rx = self.board.subscribe();
        let mut conn = self.pool.acquire().await.map_err(AppError::from)?;
        let waiting = self.counts(&mut conn, &h).await?.into_iter().collect();
        let snapshot = pb::WatchBoardResponse {
            kind: pb::watch_board_response::Kind::Snapshot as i32,
            hall_id: h.id.to_string(),
            waiting,
            time: Some(xiaoneng_kit::timestamp(self.clock.now())),
            ..Default::default()
        };
        let hall_id = h.id.to_string();
        use tokio_stream::StreamExt;
        let updates =
            tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |u| match u {
                Ok(u) if u.hall_id == hall_id => Some(Ok(u)),
                Ok(_) => None,
                Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "a board watcher fell behind");
                    None
                }
            });
        let stream = tokio_stream::once(Ok(snapshot)).chain(updates);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_tidal_events(
        &self,
        req: Request<pb::ListTidalEventsRequest>,
    ) -> Result<Response<pb::ListTidalEventsResponse>, Status> {
        let caller = auth::caller(&req)?;
        let (h, _) = self
            .load_hall(Some(&caller), &req.get_ref().hall_id)
            .await?;
        let mut conn = self.pool.acquire().await.map_err(AppError::from)?;
        let events = store::tidal_events(&mut conn, h.id)
            .await?
            .into_iter()
            .map(|t| pb::TidalEvent {
                id: t.id.to_string(),
                hall_id: t.hall_id.to_string(),
                category: t.category,
                action: wire::tidal_action(t.action) as i32,
                window_id: t.window_id.map(|w| w.to_string()).unwrap_or_default(),
                window_code: t.window_code,
                staff_id: t.staff_id,
                waiting: t.waiting,
                estimated_wait_minutes: t.estimated_wait,
                reason: t.reason,
                time: Some(xiaoneng_kit::timestamp(t.at)),
            })
            .collect();
        Ok(Response::new(pb::ListTidalEventsResponse { events }))
    }
}
