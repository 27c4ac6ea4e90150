//! Appointments: slots on the hall's calendar, the last place under a race, the daily cap,
//! reschedule and cancel, and check-in ahead of walk-ins.

use tonic::Code;
use xiaoneng_e2e::proto::queue::v1 as pb;
use xiaoneng_e2e::ServiceProc;
use xiaoneng_kit::auth::roles;

use super::driver::Hall;
use super::{catalog, client, queue_service, Queue};
use crate::common::{reason, violations};

/// The queue on Monday 21 September 2026, 08:30 (business clock), with the appointment hall:
/// the catalog, the queue service, the hall and six matter ids.
async fn appointment_hall() -> (ServiceProc, ServiceProc, Hall, Vec<String>) {
    let (catalog, matters) = catalog().await;
    let at = ("XIAONENG__DOMAIN__BUSINESS_TIME", "2026-09-21T08:30:00+08:00");
    let q = queue_service(&catalog, &[at]).await;
    let h = Hall::open(&q, "预约大厅").await;
    (catalog, q, h, matters)
}

/// Half-hour slots from `start` to 10:00 with `capacity` places each.
fn slots(hall_id: &str, matter: &str, date: &str, start: &str, capacity: i32) -> pb::CreateSlotsRequest {
    pb::CreateSlotsRequest {
        hall_id: hall_id.into(),
        matter_id: matter.into(),
        date: date.into(),
        start_time: start.into(),
        end_time: "10:00".into(),
        minutes: 30,
        capacity,
    }
}

async fn create(
    h: &mut Hall,
    matter: &str,
    date: &str,
    start: &str,
    capacity: i32,
) -> Result<Vec<pb::Slot>, tonic::Status> {
    let req = slots(&h.id(), matter, date, start, capacity);
    Ok(h.manager.create_slots(req).await?.into_inner().slots)
}

async fn book(c: &mut Queue, slot: &pb::Slot) -> Result<pb::Appointment, tonic::Status> {
    let req =
        pb::BookAppointmentRequest { slot_id: slot.id.clone(), citizen_name: "张三".into(), ..Default::default() };
    Ok(c.book_appointment(req).await?.into_inner().appointment.expect("appointment"))
}

async fn booked(h: &mut Hall, matter: &str) -> Vec<i32> {
    let req = pb::ListSlotsRequest { hall_id: h.id(), matter_id: matter.into(), date: "2026-09-21".into() };
    let slots = h.manager.list_slots(req).await.unwrap().into_inner().slots;
    slots.iter().map(|s| s.booked).collect()
}

/// Slots follow the hall's calendar: not on National Day or an ordinary Saturday, yes on the
/// 调休 Saturday, not in the past; bad fields are all named.
#[tokio::test(flavor = "multi_thread")]
async fn slots_follow_the_hall_calendar() {
    let (_catalog, _q, mut h, matters) = appointment_hall().await;
    let m = matters[0].as_str();
    let s = create(&mut h, m, "2026-09-21", "08:00", 1).await.unwrap();
    let starts: Vec<&str> = s.iter().map(|x| x.start_time.as_str()).collect();
    assert_eq!(starts, ["08:00", "08:30", "09:00", "09:30"]);
    let national_day = create(&mut h, m, "2026-10-01", "08:00", 1).await;
    assert_eq!(reason(&national_day.unwrap_err()), "CLOSED_DAY");
    let make_up = create(&mut h, m, "2026-10-10", "08:00", 1).await;
    make_up.expect("Saturday 10 October is a make-up workday");
    let saturday = create(&mut h, m, "2026-09-26", "08:00", 1).await;
    assert_eq!(reason(&saturday.unwrap_err()), "CLOSED_DAY", "no weekend service");
    let past = create(&mut h, m, "2026-09-18", "08:00", 1).await;
    assert_eq!(past.unwrap_err().code(), Code::InvalidArgument);
    let bad = pb::CreateSlotsRequest { minutes: 0, capacity: 0, ..slots(&h.id(), m, "x", "25:00", 1) };
    let bad = h.manager.create_slots(bad).await;
    let fields = violations(&bad.unwrap_err());
    assert_eq!(fields, ["capacity", "date", "minutes", "start_time"]);
}

/// Twenty citizens, connected first and released together, race for a slot's single place:
/// one booking, nineteen SLOT_FULL, one place counted.
#[tokio::test(flavor = "multi_thread")]
async fn the_last_place_of_a_slot_goes_to_exactly_one_booking() {
    let (_catalog, q, mut h, matters) = appointment_hall().await;
    let s = create(&mut h, &matters[0], "2026-09-21", "08:00", 1).await.unwrap();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let mut c = client(&q, &format!("citizen-{i}"), &[roles::CITIZEN]).await;
        let (slot, start) = (s[2].clone(), start.clone());
        tasks.spawn(async move {
            start.wait().await;
            book(&mut c, &slot).await
        });
    }
    let (mut ok, mut full) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(reason(&e), "SLOT_FULL");
                full += 1;
            }
        }
    }
    assert_eq!((ok, full), (1, 19));
    assert_eq!(booked(&mut h, &matters[0]).await, [0, 0, 1, 0]);
}

/// Two appointments a day per person; a reschedule moves the one place; a cancel frees it.
#[tokio::test(flavor = "multi_thread")]
async fn a_daily_cap_a_reschedule_and_a_cancel() {
    let (_catalog, q, mut h, matters) = appointment_hall().await;
    let m = matters[1].as_str();
    let wide = create(&mut h, m, "2026-09-21", "08:00", 5).await.unwrap();
    let mut zhang = client(&q, "citizen-zhang", &[roles::CITIZEN]).await;
    book(&mut zhang, &wide[0]).await.unwrap();
    let second = book(&mut zhang, &wide[1]).await.unwrap();
    let third = book(&mut zhang, &wide[2]).await.unwrap_err();
    assert_eq!(reason(&third), "DAILY_CAP");
    let moved = zhang.reschedule_appointment(pb::RescheduleAppointmentRequest {
        appointment_id: second.id.clone(),
        slot_id: wide[3].id.clone(),
    });
    let moved = moved.await.unwrap().into_inner().appointment.unwrap();
    assert_eq!(moved.start_time, "09:30");
    assert_eq!(booked(&mut h, m).await, [1, 0, 0, 1]);
    let appointment_id = moved.id.clone();
    zhang.cancel_appointment(pb::CancelAppointmentRequest { appointment_id }).await.unwrap();
    assert_eq!(booked(&mut h, m).await, [1, 0, 0, 0], "a cancel frees the place");
}

/// At 08:30 an 08:30 appointment checks in after three walk-ins and is called first (一键取号);
/// an 08:00 appointment is past its 15 minutes of grace and queues as a walk-in; checking in
/// twice is an illegal transition.
#[tokio::test(flavor = "multi_thread")]
async fn a_checked_in_appointment_is_called_before_earlier_walk_ins() {
    let (_catalog, q, mut h, matters) = appointment_hall().await;
    let m = matters[1].as_str();
    let s = create(&mut h, m, "2026-09-21", "08:00", 5).await.unwrap();
    let mut zhang = client(&q, "citizen-zhang", &[roles::CITIZEN]).await;
    let (early, on_time) = (book(&mut zhang, &s[0]).await.unwrap(), book(&mut zhang, &s[1]).await.unwrap());
    let mut zh = h.desk("ZH01", &[], "clerk-1").await;
    let walk_ins = h.issue_n(m, 3).await;
    assert_eq!(walk_ins[0].number, "A001");
    let check_in = |id: &str| {
        let (mut c, appointment_id) = (zhang.clone(), id.to_string());
        async move { Ok::<_, tonic::Status>(c.check_in(pb::CheckInRequest { appointment_id }).await?.into_inner()) }
    };
    let ci = check_in(&on_time.id).await.unwrap();
    let ticket = ci.ticket.unwrap();
    assert_eq!((ci.late, ticket.priority), (false, pb::Priority::Appointment as i32));
    let late = check_in(&early.id).await.unwrap();
    assert!(late.late, "08:00 + 15 minutes of grace is past at 08:30");
    assert_eq!(late.ticket.unwrap().priority, pb::Priority::Normal as i32);
    let again = check_in(&on_time.id).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(zh.serve_next().await, Some(ticket.number), "the appointment jumps the walk-ins");
    assert_eq!(zh.call_next().await.unwrap().id, walk_ins[0].id);
}

/// Another citizen of the county can neither cancel, reschedule nor check in an appointment
/// that is not theirs: to them it does not exist, and it stays booked as it was.
#[tokio::test(flavor = "multi_thread")]
async fn another_citizen_cannot_touch_an_appointment() {
    let (_catalog, q, mut h, matters) = appointment_hall().await;
    let m = matters[1].as_str();
    let s = create(&mut h, m, "2026-09-21", "08:00", 5).await.unwrap();
    let mut zhang = client(&q, "citizen-zhang", &[roles::CITIZEN]).await;
    let mine = book(&mut zhang, &s[1]).await.unwrap();
    let mut li = client(&q, "citizen-li", &[roles::CITIZEN]).await;
    let id = || mine.id.clone();
    let cancel = li.cancel_appointment(pb::CancelAppointmentRequest { appointment_id: id() }).await;
    assert_eq!(cancel.unwrap_err().code(), Code::NotFound);
    let moved = pb::RescheduleAppointmentRequest { appointment_id: id(), slot_id: s[3].id.clone() };
    assert_eq!(li.reschedule_appointment(moved).await.unwrap_err().code(), Code::NotFound);
    let check_in = li.check_in(pb::CheckInRequest { appointment_id: id() }).await;
    assert_eq!(check_in.unwrap_err().code(), Code::NotFound);
    assert_eq!(booked(&mut h, m).await, [0, 1, 0, 0], "still booked where it was");
    h.window("ZH01", &[]).await;
    let ticket = zhang.check_in(pb::CheckInRequest { appointment_id: id() }).await.unwrap();
    assert_eq!(ticket.into_inner().ticket.unwrap().priority, pb::Priority::Appointment as i32);
}
