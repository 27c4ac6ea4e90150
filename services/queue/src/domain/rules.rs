//! The state machines of a ticket, an appointment and a window, and the booking rules (daily
//! cap, check-in grace, blackout days). Each rule changes a record in memory or refuses with
//! the reason a client switches on; the service stores what changed.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use uuid::Uuid;
use xiaoneng_calendar::Calendar;
use xiaoneng_kit::{AppError, Violations};

use super::{
    filter, may_serve, AppointmentRow, AppointmentState, Category, Priority, Reason, ServiceKind,
    StaffOnDuty, TicketRow, TicketState, TicketView, TidalPolicy, WindowKind, WindowRow,
    WindowState, WindowView,
};

/// A rule said no: the reason a client switches on and a sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub message: String,
}

fn refuse<T>(reason: Reason, message: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        reason,
        message: message.into(),
    })
}

impl From<Refusal> for AppError {
    fn from(r: Refusal) -> Self {
        AppError::precondition(r.reason.name(), r.message)
    }
}

/// What the window's filter sees of a window.
pub fn view(w: &WindowRow) -> WindowView {
    WindowView {
        code: w.code.clone(),
        kind: WindowKind::from_name(&w.kind).unwrap_or(WindowKind::Comprehensive),
        matter_ids: w.matter_ids.iter().cloned().collect(),
        tidal_category: (w.tidal && !w.tidal_category.is_empty()).then(|| w.tidal_category.clone()),
    }
}

/// What a window's filter sees of a ticket.
pub fn ticket_view(t: &TicketRow) -> TicketView {
    TicketView {
        matter_id: t.matter_id.clone(),
        kind: ServiceKind::from_name(&t.service_kind).unwrap_or(ServiceKind::Normal),
        priority: Priority::from_rank(t.priority).unwrap_or(Priority::Normal),
        category: t.category.clone(),
        window_codes: t.window_codes.clone(),
    }
}

/// Whether window `w` may serve ticket `t`: a ticket sent to a named window goes there only;
/// any other goes to every window whose filter takes it.
pub fn window_may_serve(w: &WindowRow, t: &TicketRow) -> bool {
    match t.direct_window {
        Some(d) => d == w.id,
        None => may_serve(&filter(&view(w)), &ticket_view(t)),
    }
}

/// The window codes of `windows` that may serve `t`.
pub fn eligible_codes(windows: &[WindowRow], t: &TicketRow) -> Vec<String> {
    windows
        .iter()
        .filter(|w| window_may_serve(w, t))
        .map(|w| w.code.clone())
        .collect()
}

/// Whether a ticket put back in the queue goes into the hot queue after the commit.
pub type Requeue = bool;

/// A matter a ticket is transferred to: its name and the windows that accept it.
#[derive(Debug, Clone)]
pub struct MatterInfo {
    pub name: String,
    /// The department the matter belongs to (the catalog's name of it).
    pub department: String,
    pub window_codes: Vec<String>,
}

impl TicketRow {
    fn called_or(&self, message: &str) -> Result<(), Refusal> {
        if self.state != TicketState::Called {
            return refuse(Reason::AlreadyServing, message);
        }
        Ok(())
    }

    fn leave_window(&mut self) {
        self.window_id = None;
        self.window_code = String::new();
        self.staff_id = String::new();
    }

    /// The window calls the citizen again.
    pub fn recall(&mut self) -> Result<Requeue, Refusal> {
        self.called_or("the citizen is already being served")?;
        self.recalls += 1;
        Ok(false)
    }

    /// The citizen did not come: the first time back at the end of their class (arrival now),
    /// the second time dropped.
    pub fn no_show(&mut self, now: DateTime<Utc>) -> Result<Requeue, Refusal> {
        self.called_or("the citizen is being served")?;
        self.no_shows += 1;
        self.leave_window();
        if self.no_shows >= 2 {
            self.state = TicketState::Dropped;
            return Ok(false);
        }
        self.state = TicketState::Waiting;
        self.arrival_ms = now.timestamp_millis();
        Ok(true)
    }

    /// Set aside (the citizen fetches a paper); it keeps its arrival and so its place.
    pub fn hold(&mut self) -> Result<Requeue, Refusal> {
        self.state = TicketState::Held;
        self.window_id = None;
        Ok(false)
    }

    /// A held ticket waits again where it was: its original arrival time.
    pub fn resume(&mut self) -> Result<Requeue, Refusal> {
        if self.state != TicketState::Held {
            return refuse(
                Reason::NotHeld,
                format!("ticket {} is {}", self.number, self.state),
            );
        }
        self.state = TicketState::Waiting;
        Ok(true)
    }

    pub fn start(&mut self, now: DateTime<Utc>) -> Result<Requeue, Refusal> {
        self.called_or("the service already started")?;
        self.state = TicketState::Serving;
        self.started_at = Some(now);
        Ok(false)
    }

    pub fn finish(&mut self, now: DateTime<Utc>) -> Result<Requeue, Refusal> {
        self.state = TicketState::Finished;
        self.finished_at = Some(now);
        Ok(false)
    }

    /// Sent on to another matter or a named window of the hall (`windows`). The arrival time
    /// stays: the citizen does not queue again from the back.
    pub fn transfer(
        &mut self,
        matter: Option<(String, MatterInfo)>,
        to_window: Option<Uuid>,
        windows: &[WindowRow],
    ) -> Result<Requeue, Refusal> {
        if let Some((id, m)) = matter {
            self.matter_id = id;
            self.matter_name = m.name;
            self.department = m.department;
            self.window_codes = m.window_codes;
        }
        self.state = TicketState::Waiting;
        self.leave_window();
        self.direct_window = to_window;
        if to_window.is_none() && eligible_codes(windows, self).is_empty() {
            return refuse(Reason::NoWindow, "no window of the hall serves that matter");
        }
        Ok(true)
    }
}

/// A window calls a waiting ticket only when it is open and free, and only one it may serve.
pub fn may_call(
    w: &WindowRow,
    current: Option<&TicketRow>,
    named: Option<&TicketRow>,
) -> Result<(), Refusal> {
    if w.state != WindowState::Open {
        return refuse(
            Reason::WindowNotOpen,
            format!("window {} is {}", w.code, w.state),
        );
    }
    if let Some(cur) = current {
        return refuse(
            Reason::WindowBusy,
            format!(
                "window {} is still on {}: finish, hold or mark a no-show first",
                w.code, cur.number
            ),
        );
    }
    if let Some(t) = named {
        if t.state != TicketState::Waiting {
            return refuse(
                Reason::NotWaiting,
                format!("ticket {} is {}", t.number, t.state),
            );
        }
        if !window_may_serve(w, t) {
            return refuse(
                Reason::NotEligible,
                format!("window {} may not serve {}", w.code, t.number),
            );
        }
    }
    Ok(())
}

/// A window opened (someone on it), paused (the same person) or closed (only when free; a
/// closed window drops its tidal category). The staff and tidal category it then has.
pub fn window_change(
    w: &WindowRow,
    to: WindowState,
    staff: &str,
    current: Option<&TicketRow>,
) -> Result<(String, String), Refusal> {
    match to {
        WindowState::Open => Ok((staff.trim().to_string(), w.tidal_category.clone())),
        WindowState::Paused => Ok((w.staff_id.clone(), w.tidal_category.clone())),
        WindowState::Closed => match current {
            Some(cur) => refuse(
                Reason::WindowBusy,
                format!("window {} is still on {}", w.code, cur.number),
            ),
            None => Ok((String::new(), String::new())),
        },
    }
}

/// Whether a hall takes appointments on `day`: the calendar's working days, and weekends too
/// when the hall serves then (周末不打烊) — never a holiday. A 调休 Saturday is a working day.
pub fn bookable_day(
    cal: &Calendar,
    region: &str,
    day: NaiveDate,
    weekend_service: bool,
) -> Result<(), Refusal> {
    if cal.is_working_day(day) || (weekend_service && !cal.is_holiday(day)) {
        return Ok(());
    }
    refuse(
        Reason::ClosedDay,
        format!("{day} is not a working day in {region}"),
    )
}

/// A person holds at most `cap` appointments in a hall on one day, and a slot only once.
/// `held` are the slots they hold that day (without the one being moved).
pub fn may_book(held: &[Uuid], slot: Uuid, cap: usize) -> Result<(), Refusal> {
    if held.contains(&slot) {
        return refuse(Reason::AlreadyBooked, "this person already holds this slot");
    }
    if held.len() >= cap {
        return refuse(
            Reason::DailyCap,
            format!("at most {cap} appointments a day per person"),
        );
    }
    Ok(())
}

/// A slot still to come: not on a day already past.
pub fn slot_ahead(day: NaiveDate, today: NaiveDate) -> Result<(), Refusal> {
    if day < today {
        return refuse(Reason::SlotPast, "the slot is in the past");
    }
    Ok(())
}

/// Check-in on the slot's day: within `grace_minutes` after the slot's start the ticket comes
/// before walk-ins; later it is a walk-in. The priority, and whether it was late.
pub fn check_in_priority(
    slot_day: NaiveDate,
    slot_start: NaiveTime,
    now: chrono::NaiveDateTime,
    grace_minutes: i64,
) -> Result<(Priority, bool), Refusal> {
    if slot_day != now.date() {
        return refuse(
            Reason::NotToday,
            format!("the appointment is for {slot_day}"),
        );
    }
    let late = now.time() > slot_start + chrono::Duration::minutes(grace_minutes);
    Ok((
        if late {
            Priority::Normal
        } else {
            Priority::Appointment
        },
        late,
    ))
}

impl AppointmentRow {
    /// Only a booked appointment is cancelled, moved or checked in.
    pub fn ensure_booked(&self) -> Result<(), Refusal> {
        if self.state != AppointmentState::Booked {
            return refuse(
                Reason::NotBooked,
                format!("the appointment is {}", self.state),
            );
        }
        Ok(())
    }

    pub fn cancel(&mut self) -> Result<(), Refusal> {
        self.ensure_booked()?;
        self.state = AppointmentState::Cancelled;
        Ok(())
    }

    pub fn checked_in(&mut self, ticket: Uuid) -> Result<(), Refusal> {
        self.ensure_booked()?;
        self.state = AppointmentState::CheckedIn;
        self.ticket_id = Some(ticket);
        Ok(())
    }
}

/// A hall's roster: each staff member once, qualified only for the hall's categories.
pub fn check_roster(categories: &[Category], staff: &[StaffOnDuty], v: &mut Violations) {
    let codes: BTreeSet<&str> = categories.iter().map(|c| c.code.as_str()).collect();
    let mut seen = BTreeSet::new();
    for (i, s) in staff.iter().enumerate() {
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
}

/// A tidal policy for one of the hall's categories, closing below where it opens. The hall's
/// policies with this one in place of the category's old one.
pub fn with_tidal_policy(
    categories: &[Category],
    policies: &[TidalPolicy],
    p: TidalPolicy,
    v: &mut Violations,
) -> Vec<TidalPolicy> {
    v.check(
        categories.iter().any(|c| c.code == p.category),
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
    let mut out: Vec<TidalPolicy> = policies
        .iter()
        .filter(|x| x.category != p.category)
        .cloned()
        .collect();
    out.push(p);
    out
}

/// The slots between `start` and `end`, `minutes` long (the last one shorter when it does not
/// divide evenly).
pub fn slot_times(start: NaiveTime, end: NaiveTime, minutes: u32) -> Vec<(NaiveTime, NaiveTime)> {
    let mut out = Vec::new();
    let mut t = start;
    while t < end && minutes > 0 {
        let next = (t + chrono::Duration::minutes(i64::from(minutes))).min(end);
        if next <= t {
            break;
        }
        out.push((t, next));
        t = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use xiaoneng_calendar::Calendars;

    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 9, 14, h, m, 0).unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn ticket(state: TicketState) -> TicketRow {
        TicketRow {
            id: Uuid::from_u128(1),
            hall_id: Uuid::from_u128(2),
            region_code: "410702".into(),
            day: day("2026-09-14"),
            number: "A007".into(),
            category: "A".into(),
            matter_id: "m1".into(),
            matter_name: "营业执照".into(),
            department: String::new(),
            window_codes: vec![],
            priority: Priority::Normal.rank(),
            service_kind: "normal".into(),
            state,
            arrival_at: at(1, 0),
            arrival_ms: at(1, 0).timestamp_millis(),
            window_id: Some(Uuid::from_u128(3)),
            window_code: "W1".into(),
            staff_id: "s1".into(),
            called_at: Some(at(1, 30)),
            started_at: None,
            finished_at: None,
            no_shows: 0,
            recalls: 0,
            call_seq: Some(1),
            case_id: String::new(),
            citizen_id: "c1".into(),
            appointment_id: None,
            direct_window: None,
        }
    }

    fn window(code: &str, kind: &str, matters: &[&str]) -> WindowRow {
        WindowRow {
            id: Uuid::from_u128(10 + code.len() as u128),
            hall_id: Uuid::from_u128(2),
            code: code.into(),
            kind: kind.into(),
            matter_ids: matters.iter().map(|m| m.to_string()).collect(),
            state: WindowState::Open,
            staff_id: "s1".into(),
            tidal: false,
            tidal_category: String::new(),
        }
    }

    #[test]
    fn a_no_show_goes_back_once_at_the_end_then_is_dropped() {
        let mut t = ticket(TicketState::Called);
        assert_eq!(t.no_show(at(2, 0)), Ok(true));
        assert_eq!(t.state, TicketState::Waiting);
        assert_eq!(t.arrival_ms, at(2, 0).timestamp_millis());
        assert_eq!(
            (t.window_id, t.window_code.as_str(), t.no_shows),
            (None, "", 1)
        );
        t.state = TicketState::Called;
        assert_eq!(t.no_show(at(3, 0)), Ok(false));
        assert_eq!((t.state, t.no_shows), (TicketState::Dropped, 2));
    }

    #[test]
    fn a_ticket_in_service_is_neither_recalled_nor_a_no_show() {
        let mut t = ticket(TicketState::Serving);
        assert_eq!(t.recall().unwrap_err().reason, Reason::AlreadyServing);
        assert_eq!(
            t.no_show(at(2, 0)).unwrap_err().reason,
            Reason::AlreadyServing
        );
        assert_eq!(
            t.start(at(2, 0)).unwrap_err().reason,
            Reason::AlreadyServing
        );
        assert_eq!(
            (t.state, t.no_shows, t.recalls),
            (TicketState::Serving, 0, 0)
        );
    }

    #[test]
    fn hold_and_resume_keep_the_arrival_and_so_the_place() {
        let mut t = ticket(TicketState::Called);
        let arrival = t.arrival_ms;
        assert_eq!(t.hold(), Ok(false));
        assert_eq!((t.state, t.window_id), (TicketState::Held, None));
        assert_eq!(t.resume(), Ok(true));
        assert_eq!((t.state, t.arrival_ms), (TicketState::Waiting, arrival));
        assert_eq!(t.resume().unwrap_err().reason, Reason::NotHeld);
    }

    #[test]
    fn a_transfer_keeps_the_arrival_and_refuses_a_matter_no_window_serves() {
        let windows = [window("D1", "department", &["m2"])];
        let mut t = ticket(TicketState::Called);
        let arrival = t.arrival_ms;
        let m2 = MatterInfo {
            name: "食品经营许可".into(),
            department: "市场监督管理局".into(),
            window_codes: vec![],
        };
        assert_eq!(
            t.transfer(Some(("m2".into(), m2)), None, &windows),
            Ok(true)
        );
        assert_eq!(
            (
                t.state,
                t.arrival_ms,
                t.matter_id.as_str(),
                t.department.as_str()
            ),
            (TicketState::Waiting, arrival, "m2", "市场监督管理局")
        );
        let m3 = MatterInfo {
            name: "other".into(),
            department: String::new(),
            window_codes: vec![],
        };
        let mut u = ticket(TicketState::Called);
        assert_eq!(
            u.transfer(Some(("m3".into(), m3)), None, &windows)
                .unwrap_err()
                .reason,
            Reason::NoWindow
        );
        let mut v = ticket(TicketState::Called);
        assert_eq!(v.transfer(None, Some(windows[0].id), &windows), Ok(true));
        assert_eq!(v.direct_window, Some(windows[0].id));
    }

    #[test]
    fn a_window_calls_only_open_free_and_eligible() {
        let mut w = window("W1", "comprehensive", &[]);
        let waiting = ticket(TicketState::Waiting);
        assert_eq!(may_call(&w, None, Some(&waiting)), Ok(()));
        let cur = ticket(TicketState::Called);
        assert_eq!(
            may_call(&w, Some(&cur), None).unwrap_err().reason,
            Reason::WindowBusy
        );
        assert_eq!(
            may_call(&w, None, Some(&cur)).unwrap_err().reason,
            Reason::NotWaiting
        );
        let dept = window("D1", "department", &["m9"]);
        assert_eq!(
            may_call(&dept, None, Some(&waiting)).unwrap_err().reason,
            Reason::NotEligible
        );
        w.state = WindowState::Paused;
        assert_eq!(
            may_call(&w, None, None).unwrap_err().reason,
            Reason::WindowNotOpen
        );
    }

    #[test]
    fn a_window_closes_only_when_free_and_then_forgets_its_staff_and_tide() {
        let mut w = window("T1", "comprehensive", &[]);
        w.tidal_category = "A".into();
        let cur = ticket(TicketState::Serving);
        assert_eq!(
            window_change(&w, WindowState::Closed, "", Some(&cur))
                .unwrap_err()
                .reason,
            Reason::WindowBusy
        );
        assert_eq!(
            window_change(&w, WindowState::Closed, "", None),
            Ok((String::new(), String::new()))
        );
        assert_eq!(
            window_change(&w, WindowState::Paused, "x", None),
            Ok(("s1".into(), "A".into()))
        );
        assert_eq!(
            window_change(&w, WindowState::Open, " s2 ", None),
            Ok(("s2".into(), "A".into()))
        );
    }

    #[test]
    fn the_daily_cap_counts_the_days_bookings_and_a_slot_is_held_once() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        assert_eq!(may_book(&[], a, 2), Ok(()));
        assert_eq!(may_book(&[a], b, 2), Ok(()));
        assert_eq!(
            may_book(&[a, b], c, 2).unwrap_err().reason,
            Reason::DailyCap
        );
        assert_eq!(
            may_book(&[a], a, 2).unwrap_err().reason,
            Reason::AlreadyBooked
        );
    }

    #[test]
    fn check_in_within_grace_comes_before_walk_ins_and_later_is_a_walk_in() {
        let start = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        let now = |h, m| day("2026-09-14").and_hms_opt(h, m, 0).unwrap();
        assert_eq!(
            check_in_priority(day("2026-09-14"), start, now(8, 40), 15),
            Ok((Priority::Appointment, false))
        );
        assert_eq!(
            check_in_priority(day("2026-09-14"), start, now(9, 15), 15),
            Ok((Priority::Appointment, false))
        );
        assert_eq!(
            check_in_priority(day("2026-09-14"), start, now(9, 16), 15),
            Ok((Priority::Normal, true))
        );
        let other_day = check_in_priority(day("2026-09-15"), start, now(9, 0), 15);
        assert_eq!(other_day.unwrap_err().reason, Reason::NotToday);
    }

    #[test]
    fn blackout_days_are_holidays_and_weekends_but_a_tiaoxiu_saturday_is_open() {
        let cal = Calendars::national_only().for_region("410702");
        let open = |d: &str, weekend| bookable_day(&cal, "410702", day(d), weekend).is_ok();
        assert!(open("2026-09-14", false), "a Monday");
        assert!(!open("2026-10-01", false), "National Day");
        assert!(
            !open("2026-10-01", true),
            "a holiday even where weekends are served"
        );
        assert!(!open("2026-09-19", false), "a Saturday");
        assert!(
            open("2026-09-19", true),
            "a Saturday in a hall open at weekends"
        );
        assert!(
            open("2026-10-10", false),
            "the 调休 Saturday after National Day"
        );
        assert!(open("2026-09-20", false), "the 调休 Sunday before it");
        let refusal = bookable_day(&cal, "410702", day("2026-10-02"), false).unwrap_err();
        assert_eq!(refusal.reason, Reason::ClosedDay);
    }

    #[test]
    fn a_past_slot_is_refused() {
        assert_eq!(
            slot_ahead(day("2026-09-13"), day("2026-09-14"))
                .unwrap_err()
                .reason,
            Reason::SlotPast
        );
        assert_eq!(slot_ahead(day("2026-09-14"), day("2026-09-14")), Ok(()));
    }

    #[test]
    fn slots_divide_the_span_and_the_last_is_shorter() {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert_eq!(
            slot_times(t(9, 0), t(10, 10), 30),
            [
                (t(9, 0), t(9, 30)),
                (t(9, 30), t(10, 0)),
                (t(10, 0), t(10, 10))
            ]
        );
        assert!(slot_times(t(9, 0), t(9, 0), 30).is_empty());
    }

    #[test]
    fn an_appointment_is_cancelled_or_checked_in_only_while_booked() {
        let mut a = AppointmentRow {
            id: Uuid::from_u128(1),
            slot_id: Uuid::from_u128(2),
            hall_id: Uuid::from_u128(3),
            matter_id: "m1".into(),
            citizen_id: "c1".into(),
            citizen_name: "王小明".into(),
            state: AppointmentState::Booked,
            ticket_id: None,
        };
        let mut b = a.clone();
        assert_eq!(a.checked_in(Uuid::from_u128(9)), Ok(()));
        assert_eq!(
            (a.state, a.ticket_id),
            (AppointmentState::CheckedIn, Some(Uuid::from_u128(9)))
        );
        assert_eq!(a.cancel().unwrap_err().reason, Reason::NotBooked);
        assert_eq!(b.cancel(), Ok(()));
        assert_eq!(
            b.checked_in(Uuid::from_u128(9)).unwrap_err().reason,
            Reason::NotBooked
        );
    }
}
