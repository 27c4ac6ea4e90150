//! The queue service against the real stack (PostgreSQL, Redis, the catalog): many windows
//! calling at once serve every ticket exactly once in priority order; appointments under
//! concurrency, check-in ahead of walk-ins; tidal windows; the board stream; bad input; a Redis
//! restart; a day boundary.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tokio_stream::StreamExt;
use tonic::Code;
use tonic_types::StatusExt;
use xiaoneng_e2e::proto::catalog::v1 as cpb;
use xiaoneng_e2e::proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use xiaoneng_e2e::proto::queue::v1 as pb;
use xiaoneng_e2e::proto::queue::v1::queue_service_client::QueueServiceClient;
use xiaoneng_e2e::{
    bin_dir, channel, eventually, free_port, shared_brokers, token, Intercepted, ServiceProc,
};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

type Queue = QueueServiceClient<Intercepted>;

/// A catalog with the starter matters of 410702; returns it and six matter ids.
async fn catalog() -> (ServiceProc, Vec<String>) {
    let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
    let ids = load_starter_into(&catalog).await;
    (catalog, ids)
}

/// Loads the starter matters of 410702 into `catalog`; returns six matter ids.
async fn load_starter_into(catalog: &ServiceProc) -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root");
    let out = std::process::Command::new(bin_dir().join("xiaoneng-catalog-load"))
        .arg("--file")
        .arg(root.join("services/catalog/data/starter/410702.toml"))
        .env("XIAONENG__DATABASE__NAME", &catalog.database)
        .output()
        .expect("loader");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut c = CatalogServiceClient::new(channel(&catalog.addr(), None).await);
    let ids = c
        .list_matters(cpb::ListMattersRequest {
            region_code: "410702".into(),
            page_size: 6,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .matters
        .into_iter()
        .map(|m| m.matter_id)
        .collect();
    ids
}

async fn queue_service(catalog: &ServiceProc, extra: &[(&str, &str)]) -> ServiceProc {
    let addr = catalog.addr();
    let mut env = vec![
        ("XIAONENG__DOMAIN__CATALOG_ADDR", addr.as_str()),
        ("XIAONENG__DOMAIN__TIDAL_INTERVAL_MS", "200"),
    ];
    env.extend_from_slice(extra);
    ServiceProc::start_with(ServiceKind::Queue, &shared_brokers(), &env).await
}

async fn client(q: &ServiceProc, who: &str, roles: &[&str]) -> Queue {
    QueueServiceClient::new(channel(&q.addr(), Some(&token(who, roles, "410702"))).await)
}

fn category(code: &str, matters: &[&str]) -> pb::Category {
    pb::Category {
        code: code.into(),
        name: format!("{code}类"),
        matter_ids: matters.iter().map(|s| s.to_string()).collect(),
    }
}

async fn hall(m: &mut Queue, name: &str, categories: Vec<pb::Category>) -> pb::Hall {
    m.create_hall(pb::CreateHallRequest {
        region_code: "410702".into(),
        name: name.into(),
        categories,
        weekend_service: false,
    })
    .await
    .unwrap()
    .into_inner()
    .hall
    .unwrap()
}

async fn window(
    m: &mut Queue,
    hall: &str,
    code: &str,
    kind: pb::WindowKind,
    matters: &[String],
    tidal: bool,
) -> pb::Window {
    m.upsert_window(pb::UpsertWindowRequest {
        window: Some(pb::Window {
            hall_id: hall.into(),
            code: code.into(),
            kind: kind as i32,
            matter_ids: matters.to_vec(),
            tidal,
            ..Default::default()
        }),
    })
    .await
    .unwrap()
    .into_inner()
    .window
    .unwrap()
}

async fn open(m: &mut Queue, w: &pb::Window, staff: &str) {
    m.set_window_state(pb::SetWindowStateRequest {
        window_id: w.id.clone(),
        state: pb::WindowState::Open as i32,
        staff_id: staff.into(),
    })
    .await
    .unwrap();
}

async fn issue(c: &mut Queue, hall: &str, matter: &str, priority: pb::Priority) -> pb::Ticket {
    c.issue_ticket(pb::IssueTicketRequest {
        hall_id: hall.into(),
        matter_id: matter.into(),
        priority: priority as i32,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .ticket
    .unwrap()
}

/// 200 windows (comprehensive, department, green channel) calling at once over 5,000 tickets:
/// every ticket is called exactly once and finished, and each window always got the best
/// ticket it was allowed to serve at the moment it called (checked against the hall-wide call
/// sequence the atomic call-next assigns).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_windows_serve_five_thousand_tickets_once_in_priority_order() {
    let (catalog, matters) = catalog().await;
    let q = queue_service(&catalog, &[("XIAONENG__DATABASE__MAX_CONNECTIONS", "30")]).await;
    let mut m = client(&q, "manager", &[roles::HALL_MANAGER]).await;
    let h = hall(
        &mut m,
        "红旗区政务服务中心",
        vec![
            category("A", &[]),
            category("B", &[&matters[0], &matters[1]]),
        ],
    )
    .await;
    let mut windows = Vec::new();
    for i in 0..200 {
        let (kind, ms) = match i % 10 {
            0..=5 => (pb::WindowKind::Comprehensive, vec![]),
            6..=8 => (
                pb::WindowKind::Department,
                vec![matters[i % 6].clone(), matters[(i + 1) % 6].clone()],
            ),
            _ => (pb::WindowKind::GreenChannel, vec![]),
        };
        let w = window(&mut m, &h.id, &format!("W{i:03}"), kind, &ms, false).await;
        open(&mut m, &w, &format!("staff-{i}")).await;
        windows.push((w, kind, ms));
    }
    // 5,000 tickets, issued from 40 kiosks at once.
    let kiosk = client(&q, "kiosk", &[roles::SYSTEM]).await;
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..40 {
        let (mut c, hall_id, matters) = (kiosk.clone(), h.id.clone(), matters.clone());
        tasks.spawn(async move {
            let mut asked = Vec::new();
            for n in 0..125 {
                let i = k * 125 + n;
                let p = match i % 20 {
                    0 => pb::Priority::Urgent,
                    1 | 2 => pb::Priority::Elderly,
                    _ => pb::Priority::Normal,
                };
                let t = issue(&mut c, &hall_id, &matters[(i * 7 + n) % 6], p).await;
                asked.push((t.id, p));
            }
            asked
        });
    }
    // What each kiosk asked for, by ticket id: the expectation below never reads the
    // service's own priority column.
    let mut asked: std::collections::HashMap<String, pb::Priority> = Default::default();
    while let Some(r) = tasks.join_next().await {
        asked.extend(r.unwrap());
    }
    // Every window calls and finishes until nothing it may serve is left.
    let mut tasks = tokio::task::JoinSet::new();
    for (w, _, _) in &windows {
        let (mut c, id) = (client(&q, "clerk", &[roles::CLERK]).await, w.id.clone());
        tasks.spawn(async move {
            let mut served = 0;
            loop {
                let t = c
                    .call_next(pb::CallNextRequest {
                        window_id: id.clone(),
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .ticket;
                if t.is_none() {
                    return served;
                }
                c.finish_service(pb::FinishServiceRequest {
                    window_id: id.clone(),
                })
                .await
                .unwrap();
                served += 1;
            }
        });
    }
    let mut served = 0;
    while let Some(r) = tasks.join_next().await {
        served += r.unwrap();
    }
    assert_eq!(served, 5000);

    let db = q.db().await;
    let rows: Vec<(String, i16, i64, String, String, Option<i64>, Option<String>)> = sqlx::query_as(
        "SELECT id::text, priority, arrival_ms, matter_id, state, call_seq, window_id::text FROM tickets WHERE hall_id = $1::uuid",
    )
    .bind(&h.id)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(rows.len(), 5000);
    assert!(
        rows.iter().all(|r| r.4 == "finished"),
        "every ticket served"
    );
    let seqs: HashSet<i64> = rows.iter().filter_map(|r| r.5).collect();
    assert_eq!(
        seqs.len(),
        5000,
        "each ticket called exactly once, one call sequence number each"
    );
    let calls: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE event_type = 'xiaoneng.queue.events.v1.TicketCalled'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let finished: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE event_type = 'xiaoneng.queue.events.v1.ServiceFinished'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((calls, finished), (5000, 5000));

    // Written from the rules of the hall, not from the service: urgent, then elderly, then
    // normal (no appointments here), then arrival; a comprehensive window serves everything,
    // a department window its own matters, the green channel urgent and elderly tickets only.
    type Row = (
        String,
        i16,
        i64,
        String,
        String,
        Option<i64>,
        Option<String>,
    );
    let class = |r: &Row| match asked[&r.0] {
        pb::Priority::Urgent => 0i64,
        pb::Priority::Elderly => 1,
        _ => 2,
    };
    let may = |kind: pb::WindowKind, ms: &[String], r: &Row| match kind {
        pb::WindowKind::Comprehensive => true,
        pb::WindowKind::Department => ms.contains(&r.3),
        pb::WindowKind::GreenChannel => class(r) <= 1,
        _ => false,
    };
    let by_id: std::collections::HashMap<&str, (pb::WindowKind, &[String], &str)> = windows
        .iter()
        .map(|(w, k, ms)| (w.id.as_str(), (*k, ms.as_slice(), w.code.as_str())))
        .collect();
    // The record keeps what each kiosk asked for: one stored rank per asked class, in order.
    let mut ranks: std::collections::BTreeMap<i64, HashSet<i16>> = Default::default();
    for r in &rows {
        let (kind, ms, code) = by_id[r.6.as_deref().expect("called at a window")];
        assert!(
            may(kind, ms, r),
            "window {code} called {} which it may not serve",
            r.0
        );
        ranks.entry(class(r)).or_default().insert(r.1);
    }
    let ranks: Vec<i16> = ranks
        .values()
        .map(|set| {
            assert_eq!(
                set.len(),
                1,
                "one stored priority per asked priority: {set:?}"
            );
            *set.iter().next().unwrap()
        })
        .collect();
    assert!(
        ranks.windows(2).all(|p| p[0] < p[1]),
        "urgent < elderly < normal: {ranks:?}"
    );
    // When window W called T (sequence s), every ticket W could serve with a better (class,
    // arrival) had been called before s. Tickets of equal key may go either way.
    for (w, kind, ms) in &windows {
        let mut allowed: Vec<&Row> = rows.iter().filter(|r| may(*kind, ms, r)).collect();
        let key = |r: &&Row| (class(r), r.2);
        allowed.sort_by_key(key);
        let mut best_before = 0i64;
        for group in allowed.chunk_by(|a, b| key(a) == key(b)) {
            for r in group {
                let seq = r.5.unwrap();
                if r.6.as_deref() == Some(w.id.as_str()) {
                    assert!(seq > best_before, "window {} called {} (seq {seq}) while a better ticket it could serve waited until {best_before}", w.code, r.0);
                }
            }
            best_before = best_before.max(group.iter().map(|r| r.5.unwrap()).max().unwrap());
        }
    }
    drop(catalog);
}

/// Appointments: the last place of a slot goes to exactly one of many concurrent bookings;
/// daily caps; closed days; reschedule and cancel; a checked-in appointment is called before
/// walk-ins who came earlier, a late one queues as a walk-in.
#[tokio::test(flavor = "multi_thread")]
async fn appointments_last_place_caps_and_check_in_ahead_of_walk_ins() {
    let (catalog, matters) = catalog().await;
    // Monday 21 September 2026, 08:30.
    let q = queue_service(
        &catalog,
        &[(
            "XIAONENG__DOMAIN__BUSINESS_TIME",
            "2026-09-21T08:30:00+08:00",
        )],
    )
    .await;
    let mut m = client(&q, "manager", &[roles::HALL_MANAGER]).await;
    let h = hall(&mut m, "预约大厅", vec![category("A", &[])]).await;
    let slots = |date: &str, start: &str, capacity: i32, matter: &str| pb::CreateSlotsRequest {
        hall_id: h.id.clone(),
        matter_id: matter.into(),
        date: date.into(),
        start_time: start.into(),
        end_time: "10:00".into(),
        minutes: 30,
        capacity,
    };
    let s = m
        .create_slots(slots("2026-09-21", "08:00", 1, &matters[0]))
        .await
        .unwrap()
        .into_inner()
        .slots;
    assert_eq!(
        s.iter().map(|x| x.start_time.as_str()).collect::<Vec<_>>(),
        ["08:00", "08:30", "09:00", "09:30"]
    );
    let closed = m
        .create_slots(slots("2026-10-01", "08:00", 1, &matters[0]))
        .await
        .unwrap_err();
    assert_eq!(
        closed.get_error_details().error_info().unwrap().reason,
        "CLOSED_DAY",
        "National Day is closed"
    );
    m.create_slots(slots("2026-10-10", "08:00", 1, &matters[0]))
        .await
        .expect("Saturday 10 October is a make-up workday");
    let weekend = m
        .create_slots(slots("2026-09-26", "08:00", 1, &matters[0]))
        .await
        .unwrap_err();
    assert_eq!(
        weekend.get_error_details().error_info().unwrap().reason,
        "CLOSED_DAY",
        "a Saturday, and the hall does not open on weekends"
    );
    let past = m
        .create_slots(slots("2026-09-18", "08:00", 1, &matters[0]))
        .await
        .unwrap_err();
    assert_eq!(past.code(), Code::InvalidArgument);
    let bad = m
        .create_slots(pb::CreateSlotsRequest {
            minutes: 0,
            capacity: 0,
            ..slots("x", "25:00", 1, &matters[0])
        })
        .await
        .unwrap_err();
    let mut fields: Vec<_> = bad
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|f| f.field)
        .collect();
    fields.sort();
    assert_eq!(fields, ["capacity", "date", "minutes", "start_time"]);

    // 20 citizens race for the 09:00 slot's single place.
    let nine = s[2].id.clone();
    // Every client is connected first; the bookings start together behind a barrier.
    let mut tasks = tokio::task::JoinSet::new();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    for i in 0..20 {
        let mut c = client(&q, &format!("citizen-{i}"), &[roles::CITIZEN]).await;
        let slot = nine.clone();
        let start = start.clone();
        tasks.spawn(async move {
            start.wait().await;
            c.book_appointment(pb::BookAppointmentRequest {
                slot_id: slot,
                citizen_name: format!("市民{i}"),
                ..Default::default()
            })
            .await
        });
    }
    let (mut ok, mut full) = (Vec::new(), 0);
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(a) => ok.push(a.into_inner().appointment.unwrap()),
            Err(e) => {
                assert_eq!(
                    e.get_error_details().error_info().unwrap().reason,
                    "SLOT_FULL"
                );
                full += 1;
            }
        }
    }
    assert_eq!((ok.len(), full), (1, 19));
    let listed = m
        .list_slots(pb::ListSlotsRequest {
            hall_id: h.id.clone(),
            matter_id: matters[0].clone(),
            date: "2026-09-21".into(),
        })
        .await
        .unwrap();
    assert_eq!(listed.into_inner().slots[2].booked, 1);

    // Daily cap of 2 per person; reschedule keeps one place; cancel frees it.
    let wide = m
        .create_slots(slots("2026-09-21", "08:00", 5, &matters[1]))
        .await
        .unwrap()
        .into_inner()
        .slots;
    let mut zhang = client(&q, "citizen-zhang", &[roles::CITIZEN]).await;
    let book = |slot: &str| pb::BookAppointmentRequest {
        slot_id: slot.into(),
        citizen_name: "张三".into(),
        ..Default::default()
    };
    let early = zhang
        .book_appointment(book(&wide[0].id))
        .await
        .unwrap()
        .into_inner()
        .appointment
        .unwrap(); // 08:00: will be late
    let on_time = zhang
        .book_appointment(book(&wide[1].id))
        .await
        .unwrap()
        .into_inner()
        .appointment
        .unwrap(); // 08:30
    let cap = zhang.book_appointment(book(&wide[2].id)).await.unwrap_err();
    assert_eq!(
        cap.get_error_details().error_info().unwrap().reason,
        "DAILY_CAP"
    );
    let moved = zhang
        .reschedule_appointment(pb::RescheduleAppointmentRequest {
            appointment_id: on_time.id.clone(),
            slot_id: wide[3].id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .appointment
        .unwrap();
    assert_eq!(moved.start_time, "09:30");
    let moved = zhang
        .reschedule_appointment(pb::RescheduleAppointmentRequest {
            appointment_id: moved.id.clone(),
            slot_id: wide[1].id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .appointment
        .unwrap();
    let counts: Vec<i32> = m
        .list_slots(pb::ListSlotsRequest {
            hall_id: h.id.clone(),
            matter_id: matters[1].clone(),
            date: "2026-09-21".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .slots
        .iter()
        .map(|s| s.booked)
        .collect();
    assert_eq!(counts, [1, 1, 0, 0]);
    let other = client(&q, "citizen-li", &[roles::CITIZEN]).await;
    let mut other = other;
    assert_eq!(
        other
            .cancel_appointment(pb::CancelAppointmentRequest {
                appointment_id: moved.id.clone()
            })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound,
        "another citizen's appointment is not theirs to cancel"
    );

    // Walk-ins come first, then the appointment holder checks in: called first.
    let w = window(
        &mut m,
        &h.id,
        "ZH01",
        pb::WindowKind::Comprehensive,
        &[],
        false,
    )
    .await;
    open(&mut m, &w, "clerk-1").await;
    let mut kiosk = client(&q, "kiosk", &[roles::SYSTEM]).await;
    let mut walk_ins = Vec::new();
    for _ in 0..3 {
        walk_ins.push(issue(&mut kiosk, &h.id, &matters[1], pb::Priority::Normal).await);
    }
    assert_eq!(walk_ins[0].number, "A001");
    let ci = zhang
        .check_in(pb::CheckInRequest {
            appointment_id: moved.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!ci.late);
    let appt_ticket = ci.ticket.unwrap();
    assert_eq!(appt_ticket.priority, pb::Priority::Appointment as i32);
    let late = zhang
        .check_in(pb::CheckInRequest {
            appointment_id: early.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(late.late, "08:00 + 15 minutes of grace is past at 08:30");
    assert_eq!(late.ticket.unwrap().priority, pb::Priority::Normal as i32);
    let again = zhang
        .check_in(pb::CheckInRequest {
            appointment_id: moved.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    let mut clerk = client(&q, "clerk-1", &[roles::CLERK]).await;
    let first = clerk
        .call_next(pb::CallNextRequest {
            window_id: w.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(
        first.id, appt_ticket.id,
        "一键取号: the appointment jumps the walk-ins"
    );
    clerk
        .finish_service(pb::FinishServiceRequest {
            window_id: w.id.clone(),
        })
        .await
        .unwrap();
    let second = clerk
        .call_next(pb::CallNextRequest {
            window_id: w.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(second.id, walk_ins[0].id);
}

/// A surge opens the reserve window with the idle qualified staff member, the board streams the
/// calls, the end of the surge closes it; without idle staff the manager gets one recommendation.
#[tokio::test(flavor = "multi_thread")]
async fn a_surge_opens_a_tidal_window_and_its_end_closes_it() {
    let (catalog, matters) = catalog().await;
    let q = queue_service(&catalog, &[]).await;
    let mut m = client(&q, "manager", &[roles::HALL_MANAGER]).await;
    let h = hall(&mut m, "潮汐大厅", vec![category("A", &[])]).await;
    let zh = window(
        &mut m,
        &h.id,
        "ZH01",
        pb::WindowKind::Comprehensive,
        &[],
        false,
    )
    .await;
    let reserve = window(
        &mut m,
        &h.id,
        "CX01",
        pb::WindowKind::Comprehensive,
        &[],
        true,
    )
    .await;
    open(&mut m, &zh, "s1").await;
    let roster = |ids: &[&str]| pb::SetStaffRosterRequest {
        hall_id: h.id.clone(),
        staff: ids
            .iter()
            .map(|s| pb::StaffOnDuty {
                staff_id: s.to_string(),
                name: format!("员工{s}"),
                categories: vec![],
            })
            .collect(),
    };
    m.set_staff_roster(roster(&["s1", "s2"])).await.unwrap();
    let policy = |open_waiting| pb::SetTidalPolicyRequest {
        hall_id: h.id.clone(),
        policy: Some(pb::TidalPolicy {
            category: "A".into(),
            open_waiting,
            open_wait_minutes: 0,
            close_waiting: 1,
        }),
    };
    let bad = m
        .set_tidal_policy(pb::SetTidalPolicyRequest {
            hall_id: h.id.clone(),
            policy: Some(pb::TidalPolicy {
                category: "Z".into(),
                ..Default::default()
            }),
        })
        .await;
    assert_eq!(bad.unwrap_err().code(), Code::InvalidArgument);

    let mut board = QueueServiceClient::new(channel(&q.addr(), None).await)
        .watch_board(pb::WatchBoardRequest {
            hall_id: h.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let snapshot = board.next().await.unwrap().unwrap();
    assert_eq!(
        snapshot.kind,
        pb::watch_board_response::Kind::Snapshot as i32
    );

    let mut kiosk = client(&q, "kiosk", &[roles::SYSTEM]).await;
    for _ in 0..6 {
        issue(&mut kiosk, &h.id, &matters[0], pb::Priority::Normal).await;
    }
    // The policy comes after the six tickets, so the first look at the hall sees all six (set
    // before, a look between the fifth and sixth ticket would already open the window at 5).
    m.set_tidal_policy(policy(5)).await.unwrap();
    let events = |m: &Queue| {
        let (mut m, hall) = (m.clone(), h.id.clone());
        async move {
            m.list_tidal_events(pb::ListTidalEventsRequest { hall_id: hall })
                .await
                .unwrap()
                .into_inner()
                .events
        }
    };
    let opened = eventually(15, "the tidal window to open", || {
        let f = events(&m);
        async move {
            f.await
                .into_iter()
                .find(|e| e.action == pb::TidalAction::Opened as i32)
        }
    })
    .await;
    assert_eq!(
        (
            opened.window_code.as_str(),
            opened.staff_id.as_str(),
            opened.waiting
        ),
        ("CX01", "s2", 6)
    );
    let got = m
        .get_hall(pb::GetHallRequest {
            hall_id: h.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .hall
        .unwrap();
    let cx = got.windows.iter().find(|w| w.code == "CX01").unwrap();
    assert_eq!(
        (cx.state, cx.tidal_category.as_str()),
        (pb::WindowState::Open as i32, "A")
    );

    // Both windows work the queue down; the board hears every call.
    let mut clerk = client(&q, "clerk", &[roles::CLERK]).await;
    let mut called = Vec::new();
    for w in [&zh, &reserve, &zh, &reserve, &zh] {
        let t = clerk
            .call_next(pb::CallNextRequest {
                window_id: w.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .ticket
            .unwrap();
        called.push((t.number.clone(), w.code.clone()));
        clerk
            .finish_service(pb::FinishServiceRequest {
                window_id: w.id.clone(),
            })
            .await
            .unwrap();
    }
    let mut heard = Vec::new();
    while heard.len() < called.len() {
        let u = tokio::time::timeout(Duration::from_secs(10), board.next())
            .await
            .expect("board update")
            .unwrap()
            .unwrap();
        if u.kind == pb::watch_board_response::Kind::Called as i32 {
            assert!(u.announcement.contains(&u.number));
            heard.push((u.number, u.window_code));
        }
    }
    assert_eq!(heard, called);
    let closed = eventually(15, "the tidal window to close", || {
        let f = events(&m);
        async move {
            f.await
                .into_iter()
                .find(|e| e.action == pb::TidalAction::Closed as i32)
        }
    })
    .await;
    assert_eq!(closed.window_code, "CX01");
    let waits = m
        .estimate_wait(pb::EstimateWaitRequest {
            hall_id: h.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .categories;
    assert_eq!((waits[0].waiting, waits[0].open_windows), (1, 1));

    // Another surge with nobody idle: one recommendation, not one per tick.
    m.set_staff_roster(roster(&["s1"])).await.unwrap();
    for _ in 0..5 {
        issue(&mut kiosk, &h.id, &matters[0], pb::Priority::Normal).await;
    }
    eventually(15, "a recommendation", || {
        let f = events(&m);
        async move {
            f.await
                .into_iter()
                .find(|e| e.action == pb::TidalAction::Recommended as i32)
        }
    })
    .await;
    // Three more looks at the hall must not add a second recommendation.
    let tidal = "background_passes_total{loop=\"queue_tidal\"}";
    let passes = q.metric(tidal).await;
    let qr = &q;
    eventually(15, "three more tidal passes", move || async move {
        (qr.metric(tidal).await >= passes + 3.0).then_some(())
    })
    .await;
    let all = events(&m).await;
    let actions: Vec<i32> = all.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            pb::TidalAction::Opened as i32,
            pb::TidalAction::Closed as i32,
            pb::TidalAction::Recommended as i32
        ]
    );
    let db = q.db().await;
    let emitted: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE event_type = 'xiaoneng.queue.events.v1.TidalWindowChanged'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(emitted, 3);
}

/// Bad input is refused clearly; a Redis restart loses no ticket; the hall works through midnight.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_redis_restart_and_the_day_boundary() {
    let (catalog, matters) = catalog().await;
    // A private Redis this test may restart.
    let port = free_port();
    let redis = |port: u16| {
        std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server")
    };
    let mut r = redis(port);
    eventually(10, "redis", || async move {
        xiaoneng_e2e::port_open(port).then_some(())
    })
    .await;
    let url = format!("redis://127.0.0.1:{port}");
    let started = Instant::now();
    let q = queue_service(
        &catalog,
        &[
            ("XIAONENG__REDIS__URL", url.as_str()),
            (
                "XIAONENG__DOMAIN__BUSINESS_TIME",
                "2026-09-21T23:59:48+08:00",
            ),
        ],
    )
    .await;
    let mut m = client(&q, "manager", &[roles::HALL_MANAGER]).await;
    let h = hall(&mut m, "夜间大厅", vec![category("A", &[])]).await;
    let other_hall = hall(&mut m, "另一个大厅", vec![category("A", &[])]).await;
    let w = window(
        &mut m,
        &h.id,
        "ZH01",
        pb::WindowKind::Comprehensive,
        &[],
        false,
    )
    .await;
    let ow = window(
        &mut m,
        &other_hall.id,
        "ZH01",
        pb::WindowKind::Comprehensive,
        &[],
        false,
    )
    .await;
    let mut clerk = client(&q, "clerk", &[roles::CLERK]).await;
    let mut kiosk = client(&q, "kiosk", &[roles::SYSTEM]).await;

    // Bad input.
    let e = m
        .create_hall(pb::CreateHallRequest {
            region_code: "4107".into(),
            name: String::new(),
            categories: vec![category("a1", &[])],
            weekend_service: false,
        })
        .await
        .unwrap_err();
    let mut fields: Vec<_> = e
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|f| f.field)
        .collect();
    fields.sort();
    assert_eq!(fields, ["categories[0].code", "name", "region_code"]);
    let unknown = clerk
        .call_next(pb::CallNextRequest {
            window_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let closed = clerk
        .call_next(pb::CallNextRequest {
            window_id: w.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        closed.get_error_details().error_info().unwrap().reason,
        "WINDOW_NOT_OPEN"
    );
    let t_other = issue(
        &mut kiosk,
        &other_hall.id,
        &matters[0],
        pb::Priority::Normal,
    )
    .await;
    open(&mut m, &w, "clerk").await;
    let foreign = clerk
        .call_ticket(pb::CallTicketRequest {
            window_id: w.id.clone(),
            ticket_id: t_other.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        foreign.code(),
        Code::InvalidArgument,
        "a ticket of another hall"
    );
    let no_matter = kiosk
        .issue_ticket(pb::IssueTicketRequest {
            hall_id: h.id.clone(),
            matter_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        })
        .await;
    assert_eq!(no_matter.unwrap_err().code(), Code::NotFound);
    let appt = kiosk.issue_ticket(pb::IssueTicketRequest {
        hall_id: h.id.clone(),
        matter_id: matters[0].clone(),
        priority: pb::Priority::Appointment as i32,
        ..Default::default()
    });
    assert_eq!(appt.await.unwrap_err().code(), Code::InvalidArgument);
    let nobody = clerk
        .finish_service(pb::FinishServiceRequest {
            window_id: w.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        nobody.get_error_details().error_info().unwrap().reason,
        "NO_CURRENT_TICKET"
    );
    let outsider = QueueServiceClient::new(
        channel(&q.addr(), Some(&token("c", &[roles::CLERK], "410703"))).await,
    )
    .call_next(pb::CallNextRequest {
        window_id: w.id.clone(),
    })
    .await
    .unwrap_err();
    assert_eq!(
        outsider.code(),
        Code::NotFound,
        "another county's window does not exist for them"
    );
    let citizen = client(&q, "citizen-1", &[roles::CITIZEN])
        .await
        .call_next(pb::CallNextRequest {
            window_id: w.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(citizen.code(), Code::PermissionDenied);
    drop(ow);

    // Before midnight: A001…A003 of the 21st.
    let mut before = Vec::new();
    for _ in 0..3 {
        before.push(issue(&mut kiosk, &h.id, &matters[0], pb::Priority::Normal).await);
    }
    assert_eq!(
        (before[0].number.as_str(), before[0].date.as_str()),
        ("A001", "2026-09-21")
    );

    // Redis restarts empty: nothing is lost.
    r.kill().unwrap();
    r.wait().unwrap();
    r = redis(port);
    eventually(10, "redis back", || async move {
        xiaoneng_e2e::port_open(port).then_some(())
    })
    .await;
    let first = eventually(10, "a call after the Redis restart", || {
        let (mut c, id) = (clerk.clone(), w.id.clone());
        async move {
            c.call_next(pb::CallNextRequest { window_id: id })
                .await
                .ok()?
                .into_inner()
                .ticket
        }
    })
    .await;
    assert_eq!(first.id, before[0].id, "rebuilt from PostgreSQL in order");
    clerk
        .finish_service(pb::FinishServiceRequest {
            window_id: w.id.clone(),
        })
        .await
        .unwrap();

    // After midnight: numbers start again at A001; yesterday's tickets are still served first.
    tokio::time::sleep(
        (started + Duration::from_secs(14)).saturating_duration_since(Instant::now()),
    )
    .await;
    let after = issue(&mut kiosk, &h.id, &matters[0], pb::Priority::Normal).await;
    assert_eq!(
        (after.number.as_str(), after.date.as_str()),
        ("A001", "2026-09-22")
    );
    let mut order = Vec::new();
    for _ in 0..3 {
        let t = clerk
            .call_next(pb::CallNextRequest {
                window_id: w.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .ticket
            .unwrap();
        order.push(t.id.clone());
        clerk
            .finish_service(pb::FinishServiceRequest {
                window_id: w.id.clone(),
            })
            .await
            .unwrap();
    }
    assert_eq!(
        order,
        [before[1].id.clone(), before[2].id.clone(), after.id.clone()]
    );

    // No-show: back once, then dropped; hold and resume keep the place; transfer keeps arrival.
    let a = issue(&mut kiosk, &h.id, &matters[0], pb::Priority::Normal).await;
    let b = issue(&mut kiosk, &h.id, &matters[0], pb::Priority::Normal).await;
    clerk
        .call_next(pb::CallNextRequest {
            window_id: w.id.clone(),
        })
        .await
        .unwrap();
    let ns = clerk
        .mark_no_show(pb::MarkNoShowRequest {
            window_id: w.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(
        (ns.id.as_str(), ns.state),
        (a.id.as_str(), pb::TicketState::Waiting as i32)
    );
    let next = clerk
        .call_next(pb::CallNextRequest {
            window_id: w.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(next.id, b.id, "a no-show goes to the back");
    let held = clerk
        .hold_ticket(pb::HoldTicketRequest {
            window_id: w.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(held.state, pb::TicketState::Held as i32);
    let again = clerk
        .call_next(pb::CallNextRequest {
            window_id: w.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(again.id, a.id);
    let dropped = clerk
        .mark_no_show(pb::MarkNoShowRequest {
            window_id: w.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(
        dropped.state,
        pb::TicketState::Dropped as i32,
        "a second no-show drops it"
    );
    clerk
        .resume_ticket(pb::ResumeTicketRequest {
            ticket_id: b.id.clone(),
        })
        .await
        .unwrap();
    let w2 = window(
        &mut m,
        &h.id,
        "BDC01",
        pb::WindowKind::Department,
        &[matters[1].clone()],
        false,
    )
    .await;
    open(&mut m, &w2, "clerk-2").await;
    let resumed = clerk
        .call_next(pb::CallNextRequest {
            window_id: w.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(resumed.id, b.id);
    let moved = clerk
        .transfer_ticket(pb::TransferTicketRequest {
            window_id: w.id.clone(),
            matter_id: matters[1].clone(),
            to_window_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(
        (moved.arrival_time.clone(), moved.matter_id.as_str()),
        (b.arrival_time.clone(), matters[1].as_str())
    );
    assert!(moved.eligible_windows.contains(&"BDC01".to_string()));
    let at_dept = clerk
        .call_next(pb::CallNextRequest {
            window_id: w2.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(at_dept.id, b.id);
    let started = clerk
        .start_service(pb::StartServiceRequest {
            window_id: w2.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(started.state, pb::TicketState::Serving as i32);
    let case_id = uuid::Uuid::new_v4().to_string();
    let linked = clerk
        .link_case(pb::LinkCaseRequest {
            ticket_id: b.id.clone(),
            case_id: case_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(linked.case_id, case_id);
    clerk
        .finish_service(pb::FinishServiceRequest {
            window_id: w2.id.clone(),
        })
        .await
        .unwrap();
    let db = q.db().await;
    let payload: Vec<u8> = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE event_type = 'xiaoneng.queue.events.v1.ServiceFinished' AND event_key = $1",
    )
    .bind(&b.id)
    .fetch_one(&db)
    .await
    .unwrap();
    let fin = <xiaoneng_e2e::proto::queue::events::v1::ServiceFinished as prost::Message>::decode(
        payload.as_slice(),
    )
    .unwrap();
    assert_eq!(
        (
            fin.window_code.as_str(),
            fin.staff_id.as_str(),
            fin.case_id.as_str()
        ),
        ("BDC01", "clerk-2", case_id.as_str())
    );
    assert!(fin.wait_seconds >= 0 && !fin.matter_name.is_empty());
    r.kill().unwrap();
    let _ = r.wait();
}

/// A queue service killed between taking a ticket from the hot queue and committing the call
/// (a crash point aborts the process exactly there) strands no ticket: after the restart the
/// reconciler puts it back and a window calls it, and every ticket is called exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_pop_and_commit_strands_no_ticket() {
    let (catalog, matters) = catalog().await;
    let mut q = queue_service(
        &catalog,
        &[
            ("XIAONENG_FAILPOINTS", "queue.call.after_pop@3"),
            ("XIAONENG__DOMAIN__RECONCILE_INTERVAL_MS", "200"),
            ("XIAONENG__DOMAIN__IN_FLIGHT_GRACE_MS", "1000"),
        ],
    )
    .await;
    let mut m = client(&q, "manager", &[roles::HALL_MANAGER]).await;
    let h = hall(&mut m, "崩溃大厅", vec![category("A", &[])]).await;
    let zh = window(
        &mut m,
        &h.id,
        "ZH01",
        pb::WindowKind::Comprehensive,
        &[],
        false,
    )
    .await;
    open(&mut m, &zh, "s1").await;
    let mut kiosk = client(&q, "kiosk", &[roles::SYSTEM]).await;
    let mut issued = Vec::new();
    for _ in 0..5 {
        issued.push(
            issue(&mut kiosk, &h.id, &matters[0], pb::Priority::Normal)
                .await
                .number,
        );
    }
    let mut clerk = client(&q, "clerk", &[roles::CLERK]).await;
    let mut called = Vec::new();
    for _ in 0..2 {
        called.push(call_and_finish(&mut clerk, &zh).await.expect("a ticket"));
    }
    // The third call dies after the pop: the ticket is in the record, waiting, and in no lane.
    let crash = clerk
        .call_next(pb::CallNextRequest {
            window_id: zh.id.clone(),
        })
        .await;
    assert!(crash.is_err(), "the crash point was not reached");
    let db = q.db().await;
    let stranded: String = sqlx::query_scalar(
        "SELECT number FROM tickets WHERE hall_id = $1::uuid AND state = 'waiting' ORDER BY arrival_ms LIMIT 1",
    )
    .bind(&h.id)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(stranded, issued[2]);

    q.kill();
    q.set_env("XIAONENG_FAILPOINTS", "");
    q.restart().await;
    // The hot queue counts the stranded ticket again once the reconciler put it back.
    let board = QueueServiceClient::new(channel(&q.addr(), None).await);
    eventually(30, "the stranded ticket back in the queue", || {
        let (mut board, hall) = (board.clone(), h.id.clone());
        async move {
            let w = board
                .estimate_wait(pb::EstimateWaitRequest { hall_id: hall })
                .await
                .unwrap()
                .into_inner()
                .categories;
            (w[0].waiting == 3).then_some(())
        }
    })
    .await;
    assert_eq!(q.metric("queue_tickets_requeued_total").await, 1.0);
    let mut clerk = client(&q, "clerk", &[roles::CLERK]).await;
    while let Some(n) = call_and_finish(&mut clerk, &zh).await {
        called.push(n);
    }
    assert_eq!(called, issued, "each ticket called once, in arrival order");
}

/// Calls the next ticket at `w` and finishes it; None when nobody waits.
async fn call_and_finish(clerk: &mut Queue, w: &pb::Window) -> Option<String> {
    let t = clerk
        .call_next(pb::CallNextRequest {
            window_id: w.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .ticket?;
    clerk
        .finish_service(pb::FinishServiceRequest {
            window_id: w.id.clone(),
        })
        .await
        .unwrap();
    Some(t.number)
}

/// A citizen reads only a ticket taken in their name; staff of the hall's region read any.
#[tokio::test(flavor = "multi_thread")]
async fn a_citizen_reads_only_their_own_ticket() {
    let (catalog, matters) = catalog().await;
    let q = queue_service(&catalog, &[]).await;
    let mut m = client(&q, "manager", &[roles::HALL_MANAGER]).await;
    let h = hall(&mut m, "隐私大厅", vec![category("A", &[])]).await;
    window(
        &mut m,
        &h.id,
        "ZH01",
        pb::WindowKind::Comprehensive,
        &[],
        false,
    )
    .await;
    let mut wang = client(&q, "citizen-wang", &[roles::CITIZEN]).await;
    let t = issue(&mut wang, &h.id, &matters[0], pb::Priority::Normal).await;
    let read = |c: &Queue| {
        let (mut c, id) = (c.clone(), t.id.clone());
        async move { c.get_ticket(pb::GetTicketRequest { ticket_id: id }).await }
    };
    assert_eq!(
        read(&wang)
            .await
            .unwrap()
            .into_inner()
            .ticket
            .unwrap()
            .number,
        t.number
    );
    let li = client(&q, "citizen-li", &[roles::CITIZEN]).await;
    assert_eq!(read(&li).await.unwrap_err().code(), Code::PermissionDenied);
    let clerk = client(&q, "clerk", &[roles::CLERK]).await;
    assert!(read(&clerk).await.is_ok());
    let far = QueueServiceClient::new(
        channel(&q.addr(), Some(&token("clerk", &[roles::CLERK], "410703"))).await,
    );
    assert_eq!(read(&far).await.unwrap_err().code(), Code::NotFound);
}

/// A ticket's life reaches the city's supervision ledger over the broker: issued, called and
/// finished, each exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn queue_events_reach_the_accountability_ledger_once() {
    let broker = xiaoneng_e2e::Broker::start();
    let catalog_proc = ServiceProc::start(ServiceKind::Catalog, &broker.brokers()).await;
    let matters = load_starter_into(&catalog_proc).await;
    let addr = catalog_proc.addr();
    let q = ServiceProc::start_with(
        ServiceKind::Queue,
        &broker.brokers(),
        &[("XIAONENG__DOMAIN__CATALOG_ADDR", addr.as_str())],
    )
    .await;
    let acc = ServiceProc::start(ServiceKind::Accountability, &broker.brokers()).await;
    let mut m = client(&q, "manager", &[roles::HALL_MANAGER]).await;
    let h = hall(&mut m, "台账大厅", vec![category("A", &[])]).await;
    let zh = window(
        &mut m,
        &h.id,
        "ZH01",
        pb::WindowKind::Comprehensive,
        &[],
        false,
    )
    .await;
    open(&mut m, &zh, "s1").await;
    let mut kiosk = client(&q, "kiosk", &[roles::SYSTEM]).await;
    let t = issue(&mut kiosk, &h.id, &matters[0], pb::Priority::Normal).await;
    let mut clerk = client(&q, "clerk", &[roles::CLERK]).await;
    assert_eq!(call_and_finish(&mut clerk, &zh).await, Some(t.number));
    let seen =
        crate::common::ledger_of(&acc, &broker.brokers(), "xiaoneng.queue.events", &t.id, 3).await;
    let want: std::collections::BTreeMap<String, i64> = [
        "xiaoneng.queue.events.v1.ServiceFinished",
        "xiaoneng.queue.events.v1.TicketCalled",
        "xiaoneng.queue.events.v1.TicketIssued",
    ]
    .into_iter()
    .map(|k| (k.to_string(), 1))
    .collect();
    assert_eq!(seen, want);
}
