//! One hall's counter work: bad input, a Redis restart, a new hall day, no-show, hold and
//! transfer — each as one test on the queue driver.

use tonic::Code;
use xiaoneng_e2e::proto::queue::v1 as pb;
use xiaoneng_e2e::{channel, token};
use xiaoneng_kit::auth::roles;

use super::driver::{ticket, Desk, Hall};
use super::{catalog, category, client, queue_service, QueueServiceClient};
use crate::common::{reason, violations, PrivateRedis};

/// Bad fields are all named; an unknown window is NOT_FOUND, a closed one WINDOW_NOT_OPEN; a
/// ticket of another hall, an unknown matter or a self-declared appointment are refused;
/// another county's clerk does not see the window, a citizen may not call.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_with_a_reason() {
    let (catalog, matters) = catalog().await;
    let q = queue_service(&catalog, &[]).await;
    let mut h = Hall::open(&q, "拒绝大厅").await;
    let bad = h.manager.create_hall(pb::CreateHallRequest {
        region_code: "4107".into(),
        name: String::new(),
        categories: vec![category("a1", &[])],
        weekend_service: false,
    });
    let fields = violations(&bad.await.unwrap_err());
    assert_eq!(fields, ["categories[0].code", "name", "region_code"]);

    let mut zh = Desk { clerk: h.clerk.clone(), window: h.window("ZH01", &[]).await };
    let unknown = QueueServiceClient::call_next(
        &mut h.clerk,
        pb::CallNextRequest { window_id: uuid::Uuid::new_v4().to_string() },
    );
    assert_eq!(unknown.await.unwrap_err().code(), Code::NotFound);
    let closed = zh.try_call_next().await.unwrap_err();
    assert_eq!(reason(&closed), "WINDOW_NOT_OPEN");

    let mut other = Hall::open(&q, "另一个大厅").await;
    other.window("ZH01", &[]).await;
    let foreign = other.issue(&matters[0]).await;
    super::open(&mut h.manager, &zh.window, "clerk").await;
    let e = zh.call(&foreign.id).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "a ticket of another hall");
    let no_matter = h.kiosk.issue_ticket(pb::IssueTicketRequest {
        hall_id: h.id(),
        matter_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    });
    assert_eq!(no_matter.await.unwrap_err().code(), Code::NotFound);
    let appt = h.kiosk.issue_ticket(pb::IssueTicketRequest {
        hall_id: h.id(),
        matter_id: matters[0].clone(),
        priority: pb::Priority::Appointment as i32,
        ..Default::default()
    });
    assert_eq!(appt.await.unwrap_err().code(), Code::InvalidArgument);
    let nobody = zh.clerk.finish_service(pb::FinishServiceRequest { window_id: zh.window.id.clone() });
    assert_eq!(reason(&nobody.await.unwrap_err()), "NO_CURRENT_TICKET");

    let far = token("c", &[roles::CLERK], "410703");
    let far = QueueServiceClient::new(channel(&q.addr(), Some(&far)).await);
    let outsider = Desk { clerk: far, window: zh.window.clone() }.try_call_next().await;
    assert_eq!(outsider.unwrap_err().code(), Code::NotFound, "another county's window");
    let citizen = client(&q, "citizen-1", &[roles::CITIZEN]).await;
    let citizen = Desk { clerk: citizen, window: zh.window.clone() }.try_call_next().await;
    assert_eq!(citizen.unwrap_err().code(), Code::PermissionDenied);
}

/// Redis restarts empty while tickets are waiting, held, transferred, called and in service:
/// the hot queue is rebuilt from PostgreSQL, every ticket ends where it would have without the
/// restart, and the hall's call sequence goes on from where it was.
#[tokio::test(flavor = "multi_thread")]
async fn a_redis_restart_loses_no_ticket_in_any_state() {
    let (catalog, matters) = catalog().await;
    let mut redis = PrivateRedis::start().await;
    let url = redis.url();
    let q = queue_service(&catalog, &[("XIAONENG__REDIS__URL", url.as_str())]).await;
    let mut h = Hall::open(&q, "重启大厅").await;
    let mut zh = h.desk("ZH01", &[], "s1").await;
    let mut zh2 = h.desk("ZH02", &[], "s2").await;
    let mut dept = h.desk("BDC01", &[matters[1].clone()], "s3").await;
    let t = h.issue_n(&matters[0], 6).await;
    assert_eq!(zh.call_next().await.unwrap().id, t[0].id);
    assert_eq!(zh.hold().await.state, pb::TicketState::Held as i32);
    assert_eq!(zh.call_next().await.unwrap().id, t[1].id);
    zh.transfer_to(&matters[1], &dept.window).await;
    let called = zh.call_next().await.unwrap();
    assert_eq!((called.id.as_str(), called.call_sequence), (t[2].id.as_str(), 3), "t2 stays called at ZH01");
    assert_eq!(zh2.call_next().await.unwrap().id, t[3].id);
    zh2.start().await;

    redis.restart_empty().await;
    let moved = xiaoneng_e2e::eventually(20, "a call after the Redis restart", || {
        let mut d = dept.clone();
        async move { d.try_call_next().await.ok().flatten() }
    })
    .await;
    assert_eq!((moved.id.as_str(), moved.call_sequence), (t[1].id.as_str(), 5), "the direct lane is rebuilt");
    assert_eq!(zh.finish().await.id, t[2].id, "the called ticket is still at its window");
    assert_eq!(zh2.finish().await.id, t[3].id, "the one in service too");
    dept.finish().await;
    zh.resume(&t[0].id).await;
    let mut after = Vec::new();
    for mut d in [zh.clone(), zh2.clone(), zh.clone()] {
        let c = d.call_next().await.unwrap();
        after.push((c.id, c.call_sequence));
        d.finish().await;
    }
    let want = [(&t[0], 6), (&t[4], 7), (&t[5], 8)].map(|(t, s)| (t.id.clone(), s));
    assert_eq!(after, want, "the held ticket kept its place; the sequence goes on");
    assert!(zh.call_next().await.is_none());
}

/// A new hall day numbers from A001 again, and tickets of the day before that still wait are
/// served first. The business clock is moved by a restart, not raced.
#[tokio::test(flavor = "multi_thread")]
async fn a_new_day_numbers_from_a001_and_serves_yesterdays_tickets_first() {
    let (catalog, matters) = catalog().await;
    const CLOCK: &str = "XIAONENG__DOMAIN__BUSINESS_TIME";
    let mut q = queue_service(&catalog, &[(CLOCK, "2026-09-21T16:00:00+08:00")]).await;
    let mut h = Hall::open(&q, "跨日大厅").await;
    let zh = h.desk("ZH01", &[], "s1").await;
    let before = h.issue_n(&matters[0], 3).await;
    let first = (before[0].number.as_str(), before[0].date.as_str());
    assert_eq!(first, ("A001", "2026-09-21"));

    q.kill();
    q.set_env(CLOCK, "2026-09-22T08:30:00+08:00");
    q.restart().await;
    h.reconnect(&q).await;
    let mut zh = Desk { clerk: h.clerk.clone(), window: zh.window };
    let after = h.issue(&matters[0]).await;
    assert_eq!((after.number.as_str(), after.date.as_str()), ("A001", "2026-09-22"));
    let mut order = Vec::new();
    while let Some(t) = zh.call_next().await {
        order.push(t.id);
        zh.finish().await;
    }
    let want: Vec<String> = before.iter().chain([&after]).map(|t| t.id.clone()).collect();
    assert_eq!(order, want);
}

/// A no-show goes to the back once and is dropped the second time; a held ticket keeps its
/// place; a transferred one keeps its arrival and is served at the department window, whose
/// finish event names the window, the staff and the linked case.
#[tokio::test(flavor = "multi_thread")]
async fn no_show_hold_and_transfer_at_the_counter() {
    let (catalog, matters) = catalog().await;
    let q = queue_service(&catalog, &[]).await;
    let mut h = Hall::open(&q, "叫号大厅").await;
    let mut zh = h.desk("ZH01", &[], "clerk").await;
    let (a, b) = (h.issue(&matters[0]).await, h.issue(&matters[0]).await);
    assert_eq!(zh.call_next().await.unwrap().id, a.id);
    let ns = zh.no_show().await;
    assert_eq!((ns.id.as_str(), ns.state), (a.id.as_str(), pb::TicketState::Waiting as i32));
    assert_eq!(zh.call_next().await.unwrap().id, b.id, "a no-show goes to the back");
    assert_eq!(zh.hold().await.state, pb::TicketState::Held as i32);
    assert_eq!(zh.call_next().await.unwrap().id, a.id);
    let dropped = zh.no_show().await.state;
    assert_eq!(dropped, pb::TicketState::Dropped as i32, "a second no-show drops it");
    zh.resume(&b.id).await;
    let mut dept = h.desk("BDC01", &[matters[1].clone()], "clerk-2").await;
    assert_eq!(zh.call_next().await.unwrap().id, b.id, "resumed in its place");
    let moved = zh.transfer(&matters[1]).await;
    assert_eq!((&moved.arrival_time, &moved.matter_id), (&b.arrival_time, &matters[1]));
    assert!(moved.eligible_windows.contains(&"BDC01".to_string()));
    assert_eq!(dept.call_next().await.unwrap().id, b.id);
    assert_eq!(dept.start().await.state, pb::TicketState::Serving as i32);
    let case_id = uuid::Uuid::new_v4().to_string();
    let link = dept.clerk.link_case(pb::LinkCaseRequest { ticket_id: b.id.clone(), case_id: case_id.clone() });
    assert_eq!(ticket("link case", link.await).case_id, case_id);
    dept.finish().await;

    let payload: Vec<u8> = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE event_type = 'xiaoneng.queue.events.v1.ServiceFinished' AND event_key = $1",
    )
    .bind(&b.id)
    .fetch_one(&q.db().await)
    .await
    .unwrap();
    use xiaoneng_e2e::proto::queue::events::v1::ServiceFinished;
    let fin = <ServiceFinished as prost::Message>::decode(payload.as_slice()).unwrap();
    let named = (fin.window_code.as_str(), fin.staff_id.as_str(), fin.case_id.as_str());
    assert_eq!(named, ("BDC01", "clerk-2", case_id.as_str()));
    assert!(fin.wait_seconds >= 0 && !fin.matter_name.is_empty());
}
