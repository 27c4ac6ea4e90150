//! Pure rules of the hall: priority order, which windows may serve which ticket, ticket
//! numbers, estimated waits and the tidal window decision. No I/O.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

mod records;
mod rules;

pub use records::{AppointmentRow, HallRow, SlotRow, TicketRow, TidalRow, WindowRow};
pub use rules::*;

xiaoneng_kit::named_enum! {
    /// The reasons a client switches on: `ErrorInfo.reason` of a FAILED_PRECONDITION from this
    /// service (listed in the service's proto comment).
    pub enum Reason {
        /// The citizen already holds this appointment slot.
        AlreadyBooked = "ALREADY_BOOKED",
        /// The ticket is being served.
        AlreadyServing = "ALREADY_SERVING",
        /// The hall is closed that day (holiday, weekend without weekend service).
        ClosedDay = "CLOSED_DAY",
        /// The citizen has reached the daily number of appointments.
        DailyCap = "DAILY_CAP",
        /// The appointment is not booked (cancelled or checked in).
        NotBooked = "NOT_BOOKED",
        /// The window may not serve this ticket.
        NotEligible = "NOT_ELIGIBLE",
        /// The ticket is not on hold.
        NotHeld = "NOT_HELD",
        /// The appointment is not for today.
        NotToday = "NOT_TODAY",
        /// The ticket is not waiting.
        NotWaiting = "NOT_WAITING",
        /// No category of the hall takes the matter.
        NoCategory = "NO_CATEGORY",
        /// The window has no current ticket.
        NoCurrentTicket = "NO_CURRENT_TICKET",
        /// No window of the hall serves the matter.
        NoWindow = "NO_WINDOW",
        /// The slot has no place left.
        SlotFull = "SLOT_FULL",
        /// The slot is over.
        SlotPast = "SLOT_PAST",
        /// The window is still on a ticket.
        WindowBusy = "WINDOW_BUSY",
        /// The window is not open.
        WindowNotOpen = "WINDOW_NOT_OPEN",
    }
}

xiaoneng_kit::named_enum! {
    /// Where a ticket stands.
    pub enum TicketState {
        Waiting = "waiting",
        Called = "called",
        Serving = "serving",
        Finished = "finished",
        /// Set aside by the window (材料不全, 暂缓): keeps its place until resumed.
        Held = "held",
        /// A second no-show.
        Dropped = "dropped",
    }
}

xiaoneng_kit::named_enum! {
    /// Where an appointment stands.
    pub enum AppointmentState {
        Booked = "booked",
        Cancelled = "cancelled",
        CheckedIn = "checked_in",
    }
}

xiaoneng_kit::named_enum! {
    /// Whether a window calls.
    pub enum WindowState {
        Open = "open",
        Paused = "paused",
        Closed = "closed",
    }
}

xiaoneng_kit::named_enum! {
    /// What a window did with a ticket.
    pub enum CallAction {
        Called = "called",
        Recalled = "recalled",
        NoShow = "no_show",
        Held = "held",
        Resumed = "resumed",
        Transferred = "transferred",
        Started = "started",
        Finished = "finished",
    }
}

xiaoneng_kit::named_enum! {
    /// What happened to an appointment.
    pub enum AppointmentAction {
        Booked = "booked",
        Cancelled = "cancelled",
        Rescheduled = "rescheduled",
        CheckedIn = "checked_in",
    }
}

xiaoneng_kit::named_enum! {
    /// What the tidal loop did.
    pub enum TidalAction {
        Opened = "opened",
        Closed = "closed",
        Recommended = "recommended",
    }
}

/// Priority classes, best first (the number is the class rank in the queue score).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Priority {
    /// 绿色通道 / urgent.
    Urgent = 1,
    /// A checked-in appointment: ahead of walk-ins.
    Appointment = 2,
    /// Elderly or disabled.
    Elderly = 3,
    Normal = 4,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Urgent,
        Priority::Appointment,
        Priority::Elderly,
        Priority::Normal,
    ];

    pub fn rank(self) -> i16 {
        self as i16
    }

    pub fn from_rank(r: i16) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.rank() == r)
    }

    pub fn name(self) -> &'static str {
        match self {
            Priority::Urgent => "urgent",
            Priority::Appointment => "appointment",
            Priority::Elderly => "elderly",
            Priority::Normal => "normal",
        }
    }
}

/// The values the API and the events carry: one mapping from each rule type to its protobuf
/// enum, used by both.
pub mod wire {
    use super::*;
    use xiaoneng_proto::queue::events::v1 as ev;
    use xiaoneng_proto::queue::v1 as pb;

    pub fn priority(rank: i16) -> pb::Priority {
        match Priority::from_rank(rank) {
            Some(Priority::Urgent) => pb::Priority::Urgent,
            Some(Priority::Appointment) => pb::Priority::Appointment,
            Some(Priority::Elderly) => pb::Priority::Elderly,
            Some(Priority::Normal) => pb::Priority::Normal,
            None => pb::Priority::Unspecified,
        }
    }

    pub fn service_kind(name: &str) -> pb::ServiceKind {
        match ServiceKind::from_name(name) {
            Some(ServiceKind::Normal) => pb::ServiceKind::Normal,
            Some(ServiceKind::Complaint) => pb::ServiceKind::Complaint,
            Some(ServiceKind::Assisted) => pb::ServiceKind::Assisted,
            None => pb::ServiceKind::Unspecified,
        }
    }

    pub fn ticket_state(s: TicketState) -> pb::TicketState {
        match s {
            TicketState::Waiting => pb::TicketState::Waiting,
            TicketState::Called => pb::TicketState::Called,
            TicketState::Serving => pb::TicketState::Serving,
            TicketState::Finished => pb::TicketState::Finished,
            TicketState::Held => pb::TicketState::Held,
            TicketState::Dropped => pb::TicketState::Dropped,
        }
    }

    pub fn window_state(s: WindowState) -> pb::WindowState {
        match s {
            WindowState::Open => pb::WindowState::Open,
            WindowState::Paused => pb::WindowState::Paused,
            WindowState::Closed => pb::WindowState::Closed,
        }
    }

    pub fn appointment_state(s: AppointmentState) -> pb::AppointmentState {
        match s {
            AppointmentState::Booked => pb::AppointmentState::Booked,
            AppointmentState::Cancelled => pb::AppointmentState::Cancelled,
            AppointmentState::CheckedIn => pb::AppointmentState::CheckedIn,
        }
    }

    pub fn tidal_action(a: TidalAction) -> pb::TidalAction {
        match a {
            TidalAction::Opened => pb::TidalAction::Opened,
            TidalAction::Closed => pb::TidalAction::Closed,
            TidalAction::Recommended => pb::TidalAction::Recommended,
        }
    }

    /// What a window did; a no-show that drops the ticket is `DROPPED`.
    pub fn call_action(action: CallAction, state: TicketState) -> ev::CallAction {
        match action {
            CallAction::Called => ev::CallAction::Called,
            CallAction::Recalled => ev::CallAction::Recalled,
            CallAction::NoShow if state == TicketState::Dropped => ev::CallAction::Dropped,
            CallAction::NoShow => ev::CallAction::NoShow,
            CallAction::Held => ev::CallAction::Held,
            CallAction::Resumed => ev::CallAction::Resumed,
            CallAction::Transferred => ev::CallAction::Transferred,
            CallAction::Started => ev::CallAction::Started,
            CallAction::Finished => ev::CallAction::Unspecified,
        }
    }

    pub fn appointment_action(a: AppointmentAction) -> ev::AppointmentAction {
        match a {
            AppointmentAction::Booked => ev::AppointmentAction::Booked,
            AppointmentAction::Cancelled => ev::AppointmentAction::Cancelled,
            AppointmentAction::Rescheduled => ev::AppointmentAction::Rescheduled,
            AppointmentAction::CheckedIn => ev::AppointmentAction::CheckedIn,
        }
    }
}

/// Class ranks are this far apart in a queue score, so arrival milliseconds (≈1.8e12 today)
/// order within a class and every score stays an exact integer in a double (< 2^53).
pub const CLASS_SPAN: i64 = 10_000_000_000_000;

/// The queue score: by priority class, then arrival.
pub fn score(priority: Priority, arrival_ms: i64) -> i64 {
    i64::from(priority.rank()) * CLASS_SPAN + arrival_ms
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServiceKind {
    Normal,
    /// 有诉即办.
    Complaint,
    /// 帮办代办.
    Assisted,
}

impl ServiceKind {
    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Normal => "normal",
            ServiceKind::Complaint => "complaint",
            ServiceKind::Assisted => "assisted",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        [
            ServiceKind::Normal,
            ServiceKind::Complaint,
            ServiceKind::Assisted,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WindowKind {
    Comprehensive,
    Department,
    GreenChannel,
    Complaint,
    Assisted,
}

impl WindowKind {
    pub fn name(self) -> &'static str {
        match self {
            WindowKind::Comprehensive => "comprehensive",
            WindowKind::Department => "department",
            WindowKind::GreenChannel => "green_channel",
            WindowKind::Complaint => "complaint",
            WindowKind::Assisted => "assisted",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        [
            WindowKind::Comprehensive,
            WindowKind::Department,
            WindowKind::GreenChannel,
            WindowKind::Complaint,
            WindowKind::Assisted,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

/// A window as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowView {
    pub code: String,
    pub kind: WindowKind,
    pub matter_ids: BTreeSet<String>,
    /// A tidal window open for a category serves that category only.
    pub tidal_category: Option<String>,
}

/// What a window may serve: the filter the atomic call-next applies in Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub kind: ServiceKind,
    pub priorities: Vec<Priority>,
    /// None: every matter.
    pub matters: Option<BTreeSet<String>>,
    /// Matters whose guide lists this window code are served too (department windows).
    pub window_code: Option<String>,
    pub category: Option<String>,
}

pub fn filter(w: &WindowView) -> Filter {
    let all = Priority::ALL.to_vec();
    let (kind, priorities, matters, window_code) = match w.kind {
        WindowKind::Comprehensive => (ServiceKind::Normal, all, None, None),
        WindowKind::Department => (
            ServiceKind::Normal,
            all,
            Some(w.matter_ids.clone()),
            Some(w.code.clone()),
        ),
        WindowKind::GreenChannel => (
            ServiceKind::Normal,
            vec![Priority::Urgent, Priority::Elderly],
            None,
            None,
        ),
        WindowKind::Complaint => (ServiceKind::Complaint, all, None, None),
        WindowKind::Assisted => (ServiceKind::Assisted, all, None, None),
    };
    Filter {
        kind,
        priorities,
        matters,
        window_code,
        category: w.tidal_category.clone(),
    }
}

/// A waiting ticket as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketView {
    pub matter_id: String,
    pub kind: ServiceKind,
    pub priority: Priority,
    pub category: String,
    /// Window codes the matter's guide names.
    pub window_codes: Vec<String>,
}

/// Whether a window with filter `f` may serve `t`.
pub fn may_serve(f: &Filter, t: &TicketView) -> bool {
    let matter_ok = match &f.matters {
        None => true,
        Some(m) => {
            m.contains(&t.matter_id)
                || f.window_code
                    .as_ref()
                    .is_some_and(|c| t.window_codes.contains(c))
        }
    };
    f.kind == t.kind
        && f.priorities.contains(&t.priority)
        && matter_ok
        && f.category.as_ref().is_none_or(|c| *c == t.category)
}

/// A ticket category of a hall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub matter_ids: Vec<String>,
}

/// The category a matter's tickets take: the first naming it, else the first naming none.
pub fn category_for<'a>(categories: &'a [Category], matter_id: &str) -> Option<&'a Category> {
    categories
        .iter()
        .find(|c| c.matter_ids.iter().any(|m| m == matter_id))
        .or_else(|| categories.iter().find(|c| c.matter_ids.is_empty()))
}

/// Checks a hall's categories: codes are 1-2 capital letters, unique; at most one default.
pub fn check_categories(categories: &[Category]) -> Result<(), (String, String)> {
    if categories.is_empty() {
        return Err((
            "categories".into(),
            "a hall needs at least one ticket category".into(),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, c) in categories.iter().enumerate() {
        let ok =
            (1..=2).contains(&c.code.len()) && c.code.chars().all(|ch| ch.is_ascii_uppercase());
        if !ok {
            return Err((
                format!("categories[{i}].code"),
                "must be one or two capital letters (A, B, VIP is too long)".into(),
            ));
        }
        if !seen.insert(c.code.clone()) {
            return Err((
                format!("categories[{i}].code"),
                format!("{} is used twice", c.code),
            ));
        }
    }
    if categories
        .iter()
        .filter(|c| c.matter_ids.is_empty())
        .count()
        > 1
    {
        return Err((
            "categories".into(),
            "only one category may take the remaining matters".into(),
        ));
    }
    Ok(())
}

/// The number on a ticket: category code and a three-digit (or longer) counter.
pub fn display_number(category: &str, n: i32) -> String {
    format!("{category}{n:03}")
}

/// Estimated wait in minutes: the people waiting, shared by the windows able to serve them,
/// at the recent mean service time.
pub fn estimate_minutes(waiting: i64, open_windows: i64, mean_service_secs: i64) -> i64 {
    if waiting == 0 {
        return 0;
    }
    let secs = waiting * mean_service_secs.max(1) / open_windows.max(1);
    (secs + 59) / 60
}

/// A staff member on duty in a hall and the categories they may serve (none: all).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffOnDuty {
    pub staff_id: String,
    pub name: String,
    #[serde(default)]
    pub categories: Vec<String>,
}

impl StaffOnDuty {
    pub fn qualified_for(&self, category: &str) -> bool {
        self.categories.is_empty() || self.categories.iter().any(|c| c == category)
    }
}

/// A category's tidal thresholds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TidalPolicy {
    pub category: String,
    pub open_waiting: i32,
    #[serde(default)]
    pub open_wait_minutes: i32,
    pub close_waiting: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TidalDecision {
    Open,
    Close,
    Keep,
}

/// What the tidal rule says for a category now.
pub fn tidal(
    p: &TidalPolicy,
    waiting: i64,
    estimated_minutes: i64,
    tidal_open: bool,
) -> TidalDecision {
    let surge = waiting >= i64::from(p.open_waiting)
        || (p.open_wait_minutes > 0 && estimated_minutes >= i64::from(p.open_wait_minutes));
    match (tidal_open, surge) {
        (false, true) => TidalDecision::Open,
        (true, false) if waiting <= i64::from(p.close_waiting) => TidalDecision::Close,
        _ => TidalDecision::Keep,
    }
}

/// What to repair in a hall's hot queue so that it holds exactly the record's waiting tickets.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Repair {
    /// Waiting in the record, nowhere in the hot queue and not taken by a live call: stranded
    /// (a crash between pop and commit, or between a commit and its enqueue).
    pub requeue: Vec<uuid::Uuid>,
    /// Queued (lane key, ticket) but no longer waiting in the record.
    pub unqueue: Vec<(String, uuid::Uuid)>,
    /// In-flight entries older than the grace: their call died (a waiting one is requeued).
    pub forget: Vec<uuid::Uuid>,
}

/// Compares the hot queue, read first, with the record's waiting tickets, read after it.
/// A call's in-flight entry younger than `grace_ms` is a call still running: left alone.
pub fn repair(
    queued: &[(String, uuid::Uuid)],
    in_flight: &[(uuid::Uuid, i64)],
    waiting: &BTreeSet<uuid::Uuid>,
    now_ms: i64,
    grace_ms: i64,
) -> Repair {
    let in_queue: BTreeSet<uuid::Uuid> = queued.iter().map(|(_, t)| *t).collect();
    let live: BTreeSet<uuid::Uuid> = in_flight
        .iter()
        .filter(|(_, at)| now_ms - at <= grace_ms)
        .map(|(t, _)| *t)
        .collect();
    Repair {
        requeue: waiting
            .iter()
            .filter(|t| !in_queue.contains(t) && !live.contains(t))
            .copied()
            .collect(),
        unqueue: queued
            .iter()
            .filter(|(_, t)| !waiting.contains(t))
            .cloned()
            .collect(),
        forget: in_flight
            .iter()
            .filter(|(t, _)| !live.contains(t))
            .map(|(t, _)| *t)
            .collect(),
    }
}

#[cfg(test)]
mod tests {

    /// The stored and published names, written out: renaming a variant fails here instead of
    /// silently changing a column or an event.
    #[test]
    fn state_and_action_names_are_fixed() {
        let names = |all: &[&'static str]| all.to_vec();
        assert_eq!(
            TicketState::ALL
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>(),
            names(&["waiting", "called", "serving", "finished", "held", "dropped"])
        );
        assert_eq!(
            AppointmentState::ALL
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>(),
            names(&["booked", "cancelled", "checked_in"])
        );
        assert_eq!(
            WindowState::ALL
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>(),
            names(&["open", "paused", "closed"])
        );
        assert_eq!(
            TidalAction::ALL
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>(),
            names(&["opened", "closed", "recommended"])
        );
        assert_eq!(
            AppointmentAction::ALL
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>(),
            names(&["booked", "cancelled", "rescheduled", "checked_in"])
        );
        assert_eq!(
            Priority::ALL.map(Priority::name),
            ["urgent", "appointment", "elderly", "normal"]
        );
        assert_eq!(Priority::ALL.map(Priority::rank), [1, 2, 3, 4]);
    }

    use super::*;

    fn window(kind: WindowKind, matters: &[&str]) -> WindowView {
        WindowView {
            code: "W1".into(),
            kind,
            matter_ids: matters.iter().map(|s| s.to_string()).collect(),
            tidal_category: None,
        }
    }

    fn ticket(matter: &str, kind: ServiceKind, priority: Priority) -> TicketView {
        TicketView {
            matter_id: matter.into(),
            kind,
            priority,
            category: "A".into(),
            window_codes: vec![],
        }
    }

    #[test]
    fn priority_then_arrival() {
        assert!(
            score(Priority::Urgent, 2_000_000_000_000)
                < score(Priority::Appointment, 1_000_000_000_000)
        );
        assert!(
            score(Priority::Appointment, 1_900_000_000_000)
                < score(Priority::Normal, 1_000_000_000_000)
        );
        assert!(score(Priority::Normal, 1) < score(Priority::Normal, 2));
        assert!(
            score(Priority::Normal, 4_102_444_800_000) < (1i64 << 53),
            "exact in a Redis double until 2100"
        );
    }

    #[test]
    fn who_serves_what() {
        let t = ticket("m1", ServiceKind::Normal, Priority::Normal);
        assert!(may_serve(
            &filter(&window(WindowKind::Comprehensive, &[])),
            &t
        ));
        assert!(may_serve(
            &filter(&window(WindowKind::Department, &["m1"])),
            &t
        ));
        assert!(!may_serve(
            &filter(&window(WindowKind::Department, &["m2"])),
            &t
        ));
        let by_code = TicketView {
            window_codes: vec!["W1".into()],
            ..t.clone()
        };
        assert!(
            may_serve(&filter(&window(WindowKind::Department, &["m2"])), &by_code),
            "the guide names the window"
        );
        assert!(!may_serve(
            &filter(&window(WindowKind::GreenChannel, &[])),
            &t
        ));
        assert!(may_serve(
            &filter(&window(WindowKind::GreenChannel, &[])),
            &ticket("m1", ServiceKind::Normal, Priority::Elderly)
        ));
        assert!(!may_serve(&filter(&window(WindowKind::Complaint, &[])), &t));
        assert!(may_serve(
            &filter(&window(WindowKind::Complaint, &[])),
            &ticket("x", ServiceKind::Complaint, Priority::Normal)
        ));
        assert!(!may_serve(
            &filter(&window(WindowKind::Comprehensive, &[])),
            &ticket("x", ServiceKind::Assisted, Priority::Normal)
        ));
        let mut tidal = window(WindowKind::Comprehensive, &[]);
        tidal.tidal_category = Some("B".into());
        assert!(
            !may_serve(&filter(&tidal), &t),
            "a tidal window serves its surge's category"
        );
    }

    #[test]
    fn categories_and_numbers() {
        let cats = vec![
            Category {
                code: "A".into(),
                name: "综合".into(),
                matter_ids: vec![],
            },
            Category {
                code: "B".into(),
                name: "不动产".into(),
                matter_ids: vec!["m9".into()],
            },
        ];
        assert_eq!(category_for(&cats, "m9").unwrap().code, "B");
        assert_eq!(category_for(&cats, "m1").unwrap().code, "A");
        assert!(check_categories(&cats).is_ok());
        let bad = vec![Category {
            code: "a".into(),
            name: "x".into(),
            matter_ids: vec![],
        }];
        assert!(check_categories(&bad).is_err());
        let twice = vec![cats[0].clone(), cats[0].clone()];
        assert!(check_categories(&twice).is_err());
        assert_eq!(display_number("A", 1), "A001");
        assert_eq!(display_number("B", 1234), "B1234");
    }

    #[test]
    fn waits_and_tides() {
        assert_eq!(estimate_minutes(0, 3, 300), 0);
        assert_eq!(estimate_minutes(12, 3, 300), 20);
        assert_eq!(
            estimate_minutes(1, 0, 61),
            2,
            "no open window counts as one"
        );
        let p = TidalPolicy {
            category: "A".into(),
            open_waiting: 10,
            open_wait_minutes: 30,
            close_waiting: 2,
        };
        assert_eq!(tidal(&p, 10, 0, false), TidalDecision::Open);
        assert_eq!(
            tidal(&p, 3, 31, false),
            TidalDecision::Open,
            "a long estimated wait is a surge too"
        );
        assert_eq!(tidal(&p, 9, 5, false), TidalDecision::Keep);
        assert_eq!(
            tidal(&p, 5, 5, true),
            TidalDecision::Keep,
            "hysteresis: not closed until the queue is short"
        );
        assert_eq!(tidal(&p, 2, 1, true), TidalDecision::Close);
    }

    fn id(n: u128) -> uuid::Uuid {
        uuid::Uuid::from_u128(n)
    }

    #[test]
    fn a_ticket_taken_by_a_dead_call_goes_back_a_live_call_keeps_it() {
        let waiting: BTreeSet<_> = [id(1), id(2), id(3)].into_iter().collect();
        let queued = vec![("lane:a".to_string(), id(1))];
        // 2 was taken 30 s ago by a call that never settled; 3 half a second ago.
        let in_flight = vec![(id(2), 70_000), (id(3), 99_500)];
        let r = repair(&queued, &in_flight, &waiting, 100_000, 10_000);
        assert_eq!(r.requeue, vec![id(2)]);
        assert_eq!(r.forget, vec![id(2)]);
        assert!(r.unqueue.is_empty());
    }

    #[test]
    fn a_waiting_ticket_nowhere_in_the_hot_queue_is_requeued() {
        let waiting: BTreeSet<_> = [id(7)].into_iter().collect();
        let r = repair(&[], &[], &waiting, 0, 10_000);
        assert_eq!(r.requeue, vec![id(7)]);
    }

    #[test]
    fn queued_tickets_that_left_waiting_are_removed_and_settled_calls_forgotten() {
        let waiting: BTreeSet<_> = [id(1)].into_iter().collect();
        let queued = vec![
            ("lane:a".to_string(), id(1)),
            ("direct:w".to_string(), id(4)),
        ];
        // 5 was called and committed long ago but its settle never reached Redis.
        let r = repair(&queued, &[(id(5), 0)], &waiting, 60_000, 10_000);
        assert_eq!(
            r,
            Repair {
                requeue: vec![],
                unqueue: vec![("direct:w".to_string(), id(4))],
                forget: vec![id(5)],
            }
        );
    }
}
