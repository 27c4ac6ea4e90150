//! Tidal windows: a surge opens the reserve window with idle qualified staff, the end of the
//! surge closes it, and without idle staff the manager gets one recommendation.

use std::time::Duration;

use tokio_stream::StreamExt;
use tonic::Code;
use xiaoneng_e2e::proto::queue::v1 as pb;
use xiaoneng_e2e::{channel, eventually, ServiceProc};

use super::driver::{Desk, Hall};
use super::{catalog, queue_service, window, QueueServiceClient};

/// A hall with ZH01 open (staff s1), the tidal reserve CX01 closed, and `roster` on duty.
async fn tidal_hall(q: &ServiceProc, roster: &[&str]) -> (Hall, Desk, pb::Window) {
    let mut h = Hall::open(q, "潮汐大厅").await;
    let zh = h.desk("ZH01", &[], "s1").await;
    let kind = pb::WindowKind::Comprehensive;
    let reserve = window(&mut h.manager, &h.hall.id, "CX01", kind, &[], true).await;
    set_roster(&mut h, roster).await;
    (h, zh, reserve)
}

async fn set_roster(h: &mut Hall, ids: &[&str]) {
    let staff =
        ids.iter().map(|s| pb::StaffOnDuty { staff_id: s.to_string(), name: format!("员工{s}"), categories: vec![] });
    let req = pb::SetStaffRosterRequest { hall_id: h.id(), staff: staff.collect() };
    h.manager.set_staff_roster(req).await.expect("roster");
}

/// Opens at `open_waiting` waiting in category A, closes at 1.
async fn set_policy(h: &mut Hall, open_waiting: i32) {
    let policy = pb::TidalPolicy { category: "A".into(), open_waiting, open_wait_minutes: 0, close_waiting: 1 };
    let req = pb::SetTidalPolicyRequest { hall_id: h.id(), policy: Some(policy) };
    h.manager.set_tidal_policy(req).await.expect("policy");
}

/// Waits for the hall's first tidal event of `action`.
async fn first(h: &Hall, action: pb::TidalAction) -> pb::TidalEvent {
    eventually(15, &format!("a tidal event {action:?}"), || {
        let (mut m, hall_id) = (h.manager.clone(), h.id());
        async move {
            let all = m.list_tidal_events(pb::ListTidalEventsRequest { hall_id }).await.ok()?;
            all.into_inner().events.into_iter().find(|e| e.action == action as i32)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_for_an_unknown_category_is_refused() {
    let (catalog, _) = catalog().await;
    let q = queue_service(&catalog, &[]).await;
    let mut h = Hall::open(&q, "潮汐大厅").await;
    let policy = pb::TidalPolicy { category: "Z".into(), ..Default::default() };
    let req = pb::SetTidalPolicyRequest { hall_id: h.id(), policy: Some(policy) };
    assert_eq!(h.manager.set_tidal_policy(req).await.unwrap_err().code(), Code::InvalidArgument);
}

/// Six waiting against a policy of five: CX01 opens with the idle s2; the board announces
/// every call of both windows; at one waiting the reserve closes again.
#[tokio::test(flavor = "multi_thread")]
async fn a_surge_opens_the_reserve_window_and_its_end_closes_it() {
    let (catalog, matters) = catalog().await;
    let q = queue_service(&catalog, &[]).await;
    let (mut h, zh, reserve) = tidal_hall(&q, &["s1", "s2"]).await;
    let mut public = QueueServiceClient::new(channel(&q.addr(), None).await);
    let mut board = public.watch_board(pb::WatchBoardRequest { hall_id: h.id() }).await.unwrap().into_inner();
    let snapshot = board.next().await.unwrap().unwrap().kind;
    assert_eq!(snapshot, pb::watch_board_response::Kind::Snapshot as i32);
    h.issue_n(&matters[0], 6).await;
    // The policy comes after the six tickets, so the first look at the hall sees all six.
    set_policy(&mut h, 5).await;
    let opened = first(&h, pb::TidalAction::Opened).await;
    let who = (opened.window_code.as_str(), opened.staff_id.as_str(), opened.waiting);
    assert_eq!(who, ("CX01", "s2", 6));
    let got = h.manager.get_hall(pb::GetHallRequest { hall_id: h.id() }).await.unwrap();
    let got = got.into_inner().hall.unwrap();
    let cx = got.windows.iter().find(|w| w.code == "CX01").unwrap();
    assert_eq!((cx.state, cx.tidal_category.as_str()), (pb::WindowState::Open as i32, "A"));

    let cx = Desk { clerk: h.clerk.clone(), window: reserve };
    let mut called = Vec::new();
    for mut d in [zh.clone(), cx.clone(), zh.clone(), cx, zh] {
        called.push((d.serve_next().await.expect("a ticket"), d.window.code.clone()));
    }
    let mut heard = Vec::new();
    while heard.len() < called.len() {
        let u = tokio::time::timeout(Duration::from_secs(10), board.next()).await;
        let u = u.expect("board update").unwrap().unwrap();
        if u.kind == pb::watch_board_response::Kind::Called as i32 {
            assert!(u.announcement.contains(&u.number));
            heard.push((u.number, u.window_code));
        }
    }
    assert_eq!(heard, called);
    assert_eq!(first(&h, pb::TidalAction::Closed).await.window_code, "CX01");
    let waits = h.kiosk.estimate_wait(pb::EstimateWaitRequest { hall_id: h.id() }).await;
    let a = &waits.unwrap().into_inner().categories[0];
    assert_eq!((a.waiting, a.open_windows), (1, 1));
}

/// With nobody idle a surge gets the manager one recommendation, not one per look at the hall.
#[tokio::test(flavor = "multi_thread")]
async fn without_idle_staff_a_surge_gets_one_recommendation() {
    let (catalog, matters) = catalog().await;
    let q = queue_service(&catalog, &[]).await;
    let (mut h, _zh, _reserve) = tidal_hall(&q, &["s1"]).await;
    h.issue_n(&matters[0], 6).await;
    set_policy(&mut h, 5).await;
    first(&h, pb::TidalAction::Recommended).await;
    let tidal = "background_passes_total{loop=\"queue_tidal\"}";
    let passes = q.metric(tidal).await;
    let qr = &q;
    eventually(
        15,
        "three more tidal passes",
        move || async move { (qr.metric(tidal).await >= passes + 3.0).then_some(()) },
    )
    .await;
    let events = h.manager.list_tidal_events(pb::ListTidalEventsRequest { hall_id: h.id() });
    let actions: Vec<i32> = events.await.unwrap().into_inner().events.iter().map(|e| e.action).collect();
    assert_eq!(actions, [pb::TidalAction::Recommended as i32]);
    let emitted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE event_type = 'xiaoneng.queue.events.v1.TidalWindowChanged'",
    )
    .fetch_one(&q.db().await)
    .await
    .unwrap();
    assert_eq!(emitted, 1);
}
