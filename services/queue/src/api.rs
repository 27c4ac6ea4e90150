//! The gRPC adapter: each handler checks the caller's roles against [`AUTHORIZATION`], parses
//! the request into domain values (every bad field listed), calls one use case of
//! [`Queue`](crate::service::Queue) and maps the answer to protobuf.

use std::pin::Pin;
use std::sync::Arc;

use chrono::{NaiveTime, Utc};
use futures::Stream;
use tonic::{Request, Response, Status};
use uuid::Uuid;
use xiaoneng_kit::auth::{self, roles, Authorization, Caller};
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::{parse_date_field, AppError, AppResult, Violations};
use xiaoneng_proto::queue::v1 as pb;

use crate::domain::{
    eligible_codes, wire, AppointmentRow, Category, HallRow, Priority, ServiceKind, SlotRow,
    StaffOnDuty, TicketRow, TidalPolicy, WindowKind, WindowRow, WindowState,
};
use crate::service::{parse_uuid, NewSlots, NewTicket, Queue, Step};

const MANAGE: &[&str] = &[roles::HALL_MANAGER];
const WINDOW_STAFF: &[&str] = &[roles::CLERK, roles::HALL_MANAGER];
const TAKE_TICKET: &[&str] = &[
    roles::CITIZEN,
    roles::CLERK,
    roles::HALL_MANAGER,
    roles::SYSTEM,
];
const HALL_STAFF: &[&str] = &[
    roles::CLERK,
    roles::HALL_MANAGER,
    roles::SUPERVISOR,
    roles::INSPECTOR,
    roles::SYSTEM,
];
const ANYONE_SIGNED_IN: &[&str] = &[
    roles::CITIZEN,
    roles::CLERK,
    roles::REVIEWER,
    roles::HALL_MANAGER,
    roles::SUPERVISOR,
    roles::INSPECTOR,
    roles::SYSTEM,
    roles::CATALOG_ADMIN,
];

/// Method → the roles that may call it. Whose records are then in scope: a citizen their own
/// tickets and appointments, staff their region's halls, the city its counties'. WatchBoard,
/// EstimateWait and ListSlots are public (no token) and not listed.
pub const AUTHORIZATION: Authorization = &[
    ("CreateHall", MANAGE),
    ("GetHall", ANYONE_SIGNED_IN),
    ("ListHalls", ANYONE_SIGNED_IN),
    ("UpsertWindow", MANAGE),
    ("SetWindowState", WINDOW_STAFF),
    ("SetStaffRoster", MANAGE),
    ("SetTidalPolicy", MANAGE),
    ("CreateSlots", MANAGE),
    ("BookAppointment", TAKE_TICKET),
    ("CancelAppointment", TAKE_TICKET),
    ("RescheduleAppointment", TAKE_TICKET),
    ("CheckIn", TAKE_TICKET),
    ("IssueTicket", TAKE_TICKET),
    (
        "GetTicket",
        &[
            roles::CITIZEN,
            roles::CLERK,
            roles::HALL_MANAGER,
            roles::SUPERVISOR,
            roles::SYSTEM,
        ],
    ),
    ("CallNext", WINDOW_STAFF),
    ("CallTicket", WINDOW_STAFF),
    ("Recall", WINDOW_STAFF),
    ("MarkNoShow", WINDOW_STAFF),
    ("HoldTicket", WINDOW_STAFF),
    ("ResumeTicket", WINDOW_STAFF),
    ("TransferTicket", WINDOW_STAFF),
    ("StartService", WINDOW_STAFF),
    ("FinishService", WINDOW_STAFF),
    ("LinkCase", WINDOW_STAFF),
    ("ListTidalEvents", HALL_STAFF),
];

/// The caller of `req`, allowed to call `method`.
fn authorized<T>(req: &Request<T>, method: &str) -> Result<Caller, Status> {
    let caller = auth::caller(req)?;
    caller.authorize(AUTHORIZATION, method)?;
    Ok(caller)
}

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

fn priority(p: i32) -> Option<Priority> {
    match pb::Priority::try_from(p) {
        Ok(pb::Priority::Unspecified | pb::Priority::Normal) => Some(Priority::Normal),
        Ok(pb::Priority::Urgent) => Some(Priority::Urgent),
        Ok(pb::Priority::Elderly) => Some(Priority::Elderly),
        _ => None,
    }
}

fn service_kind(k: i32) -> Option<ServiceKind> {
    match pb::ServiceKind::try_from(k) {
        Ok(pb::ServiceKind::Unspecified | pb::ServiceKind::Normal) => Some(ServiceKind::Normal),
        Ok(pb::ServiceKind::Complaint) => Some(ServiceKind::Complaint),
        Ok(pb::ServiceKind::Assisted) => Some(ServiceKind::Assisted),
        Err(_) => None,
    }
}

/// The gRPC adapter over the queue's use cases.
pub struct QueueApi(pub Arc<Queue>);

impl QueueApi {
    /// A ticket in its response form (with the windows of its hall that may serve it).
    async fn ticket(&self, t: &TicketRow) -> AppResult<pb::Ticket> {
        let windows = self.0.hall_windows(t.hall_id).await?;
        Ok(ticket_pb(t, &windows))
    }

    /// A window step on the ticket `window_id` is on, answered as the ticket.
    async fn step(
        &self,
        caller: &Caller,
        window_id: &str,
        step: Step,
    ) -> AppResult<Option<pb::Ticket>> {
        let window_id = parse_uuid(window_id, "window_id")?;
        let t = self.0.step(caller, window_id, step).await?;
        Ok(Some(self.ticket(&t).await?))
    }
}

type BoardStream = Pin<Box<dyn Stream<Item = Result<pb::WatchBoardResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::queue_service_server::QueueService for QueueApi {
    async fn create_hall(
        &self,
        req: Request<pb::CreateHallRequest>,
    ) -> Result<Response<pb::CreateHallResponse>, Status> {
        let caller = authorized(&req, "CreateHall")?;
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
        if let Err((field, msg)) = crate::domain::check_categories(&categories) {
            v.add(&field, &msg);
        }
        v.into_result()?;
        let region = region.expect("checked");
        let h = self
            .0
            .create_hall(
                &caller,
                region,
                r.name.trim(),
                &categories,
                r.weekend_service,
            )
            .await?;
        Ok(Response::new(pb::CreateHallResponse {
            hall: Some(hall_pb(&h, &[])),
        }))
    }

    async fn get_hall(
        &self,
        req: Request<pb::GetHallRequest>,
    ) -> Result<Response<pb::GetHallResponse>, Status> {
        let caller = authorized(&req, "GetHall")?;
        let id = parse_uuid(&req.get_ref().hall_id, "hall_id")?;
        let (h, w) = self.0.hall(Some(&caller), id).await?;
        Ok(Response::new(pb::GetHallResponse {
            hall: Some(hall_pb(&h, &w)),
        }))
    }

    async fn list_halls(
        &self,
        req: Request<pb::ListHallsRequest>,
    ) -> Result<Response<pb::ListHallsResponse>, Status> {
        let caller = authorized(&req, "ListHalls")?;
        let region = xiaoneng_kit::region::narrow(
            &caller.region,
            &req.get_ref().region_code,
            "region_code",
        )?;
        let halls = self.0.halls(&region).await?;
        Ok(Response::new(pb::ListHallsResponse {
            halls: halls.iter().map(|(h, w)| hall_pb(h, w)).collect(),
        }))
    }

    async fn upsert_window(
        &self,
        req: Request<pb::UpsertWindowRequest>,
    ) -> Result<Response<pb::UpsertWindowResponse>, Status> {
        let caller = authorized(&req, "UpsertWindow")?;
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
        let row = WindowRow {
            id: id.expect("checked"),
            hall_id: hall_id.expect("checked"),
            code: w.code.trim().to_string(),
            kind: kind.expect("checked").name().to_string(),
            matter_ids: w.matter_ids.clone(),
            state: WindowState::Closed,
            staff_id: String::new(),
            tidal: w.tidal,
            tidal_category: String::new(),
        };
        let saved = self.0.upsert_window(&caller, row).await?;
        Ok(Response::new(pb::UpsertWindowResponse {
            window: Some(window_pb(&saved)),
        }))
    }

    async fn set_window_state(
        &self,
        req: Request<pb::SetWindowStateRequest>,
    ) -> Result<Response<pb::SetWindowStateResponse>, Status> {
        let caller = authorized(&req, "SetWindowState")?;
        let r = req.into_inner();
        let mut v = Violations::new();
        let state = match pb::WindowState::try_from(r.state) {
            Ok(pb::WindowState::Open) => Some(WindowState::Open),
            Ok(pb::WindowState::Paused) => Some(WindowState::Paused),
            Ok(pb::WindowState::Closed) => Some(WindowState::Closed),
            _ => None,
        };
        v.check(state.is_some(), "state", "must be open, paused or closed");
        v.check(
            state != Some(WindowState::Open) || !r.staff_id.trim().is_empty(),
            "staff_id",
            "an open window has someone on it",
        );
        let window_id = Uuid::parse_str(&r.window_id).ok();
        v.check(window_id.is_some(), "window_id", "must be an id");
        v.into_result()?;
        let saved = self
            .0
            .set_window_state(
                &caller,
                window_id.expect("checked"),
                state.expect("checked"),
                &r.staff_id,
            )
            .await?;
        Ok(Response::new(pb::SetWindowStateResponse {
            window: Some(window_pb(&saved)),
        }))
    }

    async fn set_staff_roster(
        &self,
        req: Request<pb::SetStaffRosterRequest>,
    ) -> Result<Response<pb::SetStaffRosterResponse>, Status> {
        let caller = authorized(&req, "SetStaffRoster")?;
        let r = req.into_inner();
        let hall_id = parse_uuid(&r.hall_id, "hall_id")?;
        let staff: Vec<StaffOnDuty> = r
            .staff
            .iter()
            .map(|s| StaffOnDuty {
                staff_id: s.staff_id.trim().into(),
                name: s.name.clone(),
                categories: s.categories.clone(),
            })
            .collect();
        let (h, w) = self.0.set_roster(&caller, hall_id, staff).await?;
        Ok(Response::new(pb::SetStaffRosterResponse {
            hall: Some(hall_pb(&h, &w)),
        }))
    }

    async fn set_tidal_policy(
        &self,
        req: Request<pb::SetTidalPolicyRequest>,
    ) -> Result<Response<pb::SetTidalPolicyResponse>, Status> {
        let caller = authorized(&req, "SetTidalPolicy")?;
        let r = req.into_inner();
        let hall_id = parse_uuid(&r.hall_id, "hall_id")?;
        let p = r.policy.unwrap_or_default();
        let policy = TidalPolicy {
            category: p.category,
            open_waiting: p.open_waiting,
            open_wait_minutes: p.open_wait_minutes,
            close_waiting: p.close_waiting,
        };
        let (h, w) = self.0.set_tidal_policy(&caller, hall_id, policy).await?;
        Ok(Response::new(pb::SetTidalPolicyResponse {
            hall: Some(hall_pb(&h, &w)),
        }))
    }

    async fn create_slots(
        &self,
        req: Request<pb::CreateSlotsRequest>,
    ) -> Result<Response<pb::CreateSlotsResponse>, Status> {
        let caller = authorized(&req, "CreateSlots")?;
        let r = req.into_inner();
        let mut v = Violations::new();
        let hall_id = Uuid::parse_str(&r.hall_id).ok();
        v.check(hall_id.is_some(), "hall_id", "must be an id");
        let day = parse_date_field(&r.date, "date", self.0.today()).ok();
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
        let ask = NewSlots {
            hall_id: hall_id.expect("checked"),
            matter_id: r.matter_id,
            day: day.expect("checked"),
            start: start.expect("checked"),
            end: end.expect("checked"),
            minutes: r.minutes as u32,
            capacity: r.capacity,
        };
        let slots = self.0.create_slots(&caller, ask).await?;
        Ok(Response::new(pb::CreateSlotsResponse {
            slots: slots.iter().map(slot_pb).collect(),
        }))
    }

    async fn list_slots(
        &self,
        req: Request<pb::ListSlotsRequest>,
    ) -> Result<Response<pb::ListSlotsResponse>, Status> {
        let r = req.into_inner();
        let hall_id = parse_uuid(&r.hall_id, "hall_id")?;
        let day = parse_date_field(&r.date, "date", self.0.today())?;
        let slots = self.0.slots(hall_id, &r.matter_id, day).await?;
        Ok(Response::new(pb::ListSlotsResponse {
            slots: slots.iter().map(slot_pb).collect(),
        }))
    }

    async fn book_appointment(
        &self,
        req: Request<pb::BookAppointmentRequest>,
    ) -> Result<Response<pb::BookAppointmentResponse>, Status> {
        let caller = authorized(&req, "BookAppointment")?;
        let r = req.into_inner();
        let slot_id = parse_uuid(&r.slot_id, "slot_id")?;
        let (a, slot) = self
            .0
            .book(&caller, slot_id, &r.citizen_id, &r.citizen_name)
            .await?;
        Ok(Response::new(pb::BookAppointmentResponse {
            appointment: Some(appointment_pb(&a, &slot)),
        }))
    }

    async fn cancel_appointment(
        &self,
        req: Request<pb::CancelAppointmentRequest>,
    ) -> Result<Response<pb::CancelAppointmentResponse>, Status> {
        let caller = authorized(&req, "CancelAppointment")?;
        let id = parse_uuid(&req.get_ref().appointment_id, "appointment_id")?;
        let (a, slot) = self.0.cancel(&caller, id).await?;
        Ok(Response::new(pb::CancelAppointmentResponse {
            appointment: Some(appointment_pb(&a, &slot)),
        }))
    }

    async fn reschedule_appointment(
        &self,
        req: Request<pb::RescheduleAppointmentRequest>,
    ) -> Result<Response<pb::RescheduleAppointmentResponse>, Status> {
        let caller = authorized(&req, "RescheduleAppointment")?;
        let r = req.into_inner();
        let id = parse_uuid(&r.appointment_id, "appointment_id")?;
        let slot_id = parse_uuid(&r.slot_id, "slot_id")?;
        let (a, slot) = self.0.reschedule(&caller, id, slot_id).await?;
        Ok(Response::new(pb::RescheduleAppointmentResponse {
            appointment: Some(appointment_pb(&a, &slot)),
        }))
    }

    async fn check_in(
        &self,
        req: Request<pb::CheckInRequest>,
    ) -> Result<Response<pb::CheckInResponse>, Status> {
        let caller = authorized(&req, "CheckIn")?;
        let id = parse_uuid(&req.get_ref().appointment_id, "appointment_id")?;
        let c = self.0.check_in(&caller, id).await?;
        Ok(Response::new(pb::CheckInResponse {
            appointment: Some(appointment_pb(&c.appointment, &c.slot)),
            ticket: Some(ticket_pb(&c.ticket, &c.windows)),
            late: c.late,
        }))
    }

    async fn issue_ticket(
        &self,
        req: Request<pb::IssueTicketRequest>,
    ) -> Result<Response<pb::IssueTicketResponse>, Status> {
        let caller = authorized(&req, "IssueTicket")?;
        let r = req.into_inner();
        let mut v = Violations::new();
        let hall_id = Uuid::parse_str(&r.hall_id).ok();
        v.check(hall_id.is_some(), "hall_id", "must be a hall id");
        v.check(!r.matter_id.trim().is_empty(), "matter_id", "is required");
        let priority = priority(r.priority);
        v.check(
            priority.is_some(),
            "priority",
            "must be normal, urgent or elderly (appointments come through CheckIn)",
        );
        let kind = service_kind(r.service_kind);
        v.check(kind.is_some(), "service_kind", "must be a service kind");
        v.into_result()?;
        let ask = NewTicket {
            hall_id: hall_id.expect("checked"),
            matter_id: r.matter_id.trim().to_string(),
            priority: priority.expect("checked"),
            kind: kind.expect("checked"),
            citizen_id: r.citizen_id,
            case_id: r.case_id,
            request_id: r.request_id,
        };
        let issued = self.0.issue(&caller, ask).await?;
        let (waiting_ahead, estimated_wait_minutes) = issued.wait.map_or((0, 0), |w| {
            ((w.waiting - 1).max(0), w.estimated_wait_minutes)
        });
        Ok(Response::new(pb::IssueTicketResponse {
            ticket: Some(ticket_pb(&issued.ticket, &issued.windows)),
            estimated_wait_minutes,
            waiting_ahead,
        }))
    }

    async fn get_ticket(
        &self,
        req: Request<pb::GetTicketRequest>,
    ) -> Result<Response<pb::GetTicketResponse>, Status> {
        let caller = authorized(&req, "GetTicket")?;
        let id = parse_uuid(&req.get_ref().ticket_id, "ticket_id")?;
        let t = self.0.ticket(&caller, id).await?;
        Ok(Response::new(pb::GetTicketResponse {
            ticket: Some(self.ticket(&t).await?),
        }))
    }

    async fn call_next(
        &self,
        req: Request<pb::CallNextRequest>,
    ) -> Result<Response<pb::CallNextResponse>, Status> {
        let caller = authorized(&req, "CallNext")?;
        let window_id = parse_uuid(&req.get_ref().window_id, "window_id")?;
        let ticket = match self.0.call(&caller, window_id, None).await? {
            Some(t) => Some(self.ticket(&t).await?),
            None => None,
        };
        Ok(Response::new(pb::CallNextResponse { ticket }))
    }

    async fn call_ticket(
        &self,
        req: Request<pb::CallTicketRequest>,
    ) -> Result<Response<pb::CallTicketResponse>, Status> {
        let caller = authorized(&req, "CallTicket")?;
        let r = req.into_inner();
        let mut v = Violations::new();
        let window_id = Uuid::parse_str(&r.window_id).ok();
        v.check(window_id.is_some(), "window_id", "must be an id");
        let number = r.number.trim().to_uppercase();
        let ticket_id = Uuid::parse_str(&r.ticket_id).ok();
        if number.is_empty() {
            v.check(ticket_id.is_some(), "ticket_id", "must be an id");
        } else {
            v.check(
                r.ticket_id.is_empty(),
                "number",
                "give a ticket id or a number, not both",
            );
            v.check(number.chars().count() <= 16, "number", "is too long");
        }
        v.into_result()?;
        let window_id = window_id.expect("checked");
        let ticket_id = match ticket_id {
            Some(id) => id,
            None => self.0.ticket_numbered(&caller, window_id, &number).await?,
        };
        let t = self
            .0
            .call(&caller, window_id, Some(ticket_id))
            .await?
            .ok_or_else(|| {
                AppError::precondition(crate::domain::Reason::NotWaiting.name(), "not waiting")
            })?;
        Ok(Response::new(pb::CallTicketResponse {
            ticket: Some(self.ticket(&t).await?),
        }))
    }

    async fn recall(
        &self,
        req: Request<pb::RecallRequest>,
    ) -> Result<Response<pb::RecallResponse>, Status> {
        let caller = authorized(&req, "Recall")?;
        let ticket = self
            .step(&caller, &req.get_ref().window_id, Step::Recall)
            .await?;
        Ok(Response::new(pb::RecallResponse { ticket }))
    }

    async fn mark_no_show(
        &self,
        req: Request<pb::MarkNoShowRequest>,
    ) -> Result<Response<pb::MarkNoShowResponse>, Status> {
        let caller = authorized(&req, "MarkNoShow")?;
        let ticket = self
            .step(&caller, &req.get_ref().window_id, Step::NoShow)
            .await?;
        Ok(Response::new(pb::MarkNoShowResponse { ticket }))
    }

    async fn hold_ticket(
        &self,
        req: Request<pb::HoldTicketRequest>,
    ) -> Result<Response<pb::HoldTicketResponse>, Status> {
        let caller = authorized(&req, "HoldTicket")?;
        let ticket = self
            .step(&caller, &req.get_ref().window_id, Step::Hold)
            .await?;
        Ok(Response::new(pb::HoldTicketResponse { ticket }))
    }

    async fn resume_ticket(
        &self,
        req: Request<pb::ResumeTicketRequest>,
    ) -> Result<Response<pb::ResumeTicketResponse>, Status> {
        let caller = authorized(&req, "ResumeTicket")?;
        let id = parse_uuid(&req.get_ref().ticket_id, "ticket_id")?;
        let t = self.0.resume(&caller, id).await?;
        Ok(Response::new(pb::ResumeTicketResponse {
            ticket: Some(self.ticket(&t).await?),
        }))
    }

    async fn transfer_ticket(
        &self,
        req: Request<pb::TransferTicketRequest>,
    ) -> Result<Response<pb::TransferTicketResponse>, Status> {
        let caller = authorized(&req, "TransferTicket")?;
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
        let matter_id = Some(r.matter_id.clone()).filter(|m| !m.is_empty());
        let step = Step::Transfer {
            matter_id,
            to_window,
        };
        let ticket = self.step(&caller, &r.window_id, step).await?;
        Ok(Response::new(pb::TransferTicketResponse { ticket }))
    }

    async fn start_service(
        &self,
        req: Request<pb::StartServiceRequest>,
    ) -> Result<Response<pb::StartServiceResponse>, Status> {
        let caller = authorized(&req, "StartService")?;
        let ticket = self
            .step(&caller, &req.get_ref().window_id, Step::Start)
            .await?;
        Ok(Response::new(pb::StartServiceResponse { ticket }))
    }

    async fn finish_service(
        &self,
        req: Request<pb::FinishServiceRequest>,
    ) -> Result<Response<pb::FinishServiceResponse>, Status> {
        let caller = authorized(&req, "FinishService")?;
        let ticket = self
            .step(&caller, &req.get_ref().window_id, Step::Finish)
            .await?;
        Ok(Response::new(pb::FinishServiceResponse { ticket }))
    }

    async fn link_case(
        &self,
        req: Request<pb::LinkCaseRequest>,
    ) -> Result<Response<pb::LinkCaseResponse>, Status> {
        let caller = authorized(&req, "LinkCase")?;
        let r = req.into_inner();
        let id = parse_uuid(&r.ticket_id, "ticket_id")?;
        let case_id = parse_uuid(&r.case_id, "case_id")?;
        let t = self.0.link_case(&caller, id, case_id).await?;
        Ok(Response::new(pb::LinkCaseResponse {
            ticket: Some(self.ticket(&t).await?),
        }))
    }

    async fn estimate_wait(
        &self,
        req: Request<pb::EstimateWaitRequest>,
    ) -> Result<Response<pb::EstimateWaitResponse>, Status> {
        let hall_id = parse_uuid(&req.get_ref().hall_id, "hall_id")?;
        let categories = self.0.hall_waits(hall_id).await?;
        Ok(Response::new(pb::EstimateWaitResponse { categories }))
    }

    type WatchBoardStream = BoardStream;

    async fn watch_board(
        &self,
        req: Request<pb::WatchBoardRequest>,
    ) -> Result<Response<Self::WatchBoardStream>, Status> {
        let hall_id = parse_uuid(&req.get_ref().hall_id, "hall_id")?;
        // Subscribe before the snapshot: nothing between the two is missed.
        let rx = self.0.board.subscribe();
        let snapshot = self.0.board_snapshot(hall_id).await?;
        let hall_id = snapshot.hall_id.clone();
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
        let caller = authorized(&req, "ListTidalEvents")?;
        let hall_id = parse_uuid(&req.get_ref().hall_id, "hall_id")?;
        let events = self
            .0
            .tidal_events(&caller, hall_id)
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
