//! The queue service against the real stack (PostgreSQL, Redis, the catalog): many windows
//! calling at once serve every ticket exactly once in priority order; appointments under
//! concurrency, check-in ahead of walk-ins; tidal windows; the board stream; bad input; a Redis
//! restart; a day boundary.

use tonic::Code;
use xiaoneng_e2e::proto::catalog::v1 as cpb;
use xiaoneng_e2e::proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use xiaoneng_e2e::proto::queue::v1 as pb;
use xiaoneng_e2e::proto::queue::v1::queue_service_client::QueueServiceClient;
use xiaoneng_e2e::{bin_dir, channel, eventually, shared_brokers, token, Intercepted, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

mod appointments;
mod authorization;
mod counter;
mod driver;
mod load;
mod tidal;

pub(crate) type Queue = QueueServiceClient<Intercepted>;

/// A catalog with the starter matters of 410702; returns it and six matter ids.
pub(crate) async fn catalog() -> (ServiceProc, Vec<String>) {
    let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
    let ids = load_starter_into(&catalog).await;
    (catalog, ids)
}

/// Loads the starter matters of 410702 into `catalog`; returns six matter ids.
pub(crate) async fn load_starter_into(catalog: &ServiceProc) -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root");
    let out = std::process::Command::new(bin_dir().join("xiaoneng-catalog-load"))
        .arg("--file")
        .arg(root.join("services/catalog/data/starter/410702.toml"))
        .env("XIAONENG__DATABASE__NAME", &catalog.database)
        .output()
        .expect("loader");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut c = CatalogServiceClient::new(channel(&catalog.addr(), None).await);
    let ids = c
        .list_matters(cpb::ListMattersRequest { region_code: "410702".into(), page_size: 6, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .matters
        .into_iter()
        .map(|m| m.matter_id)
        .collect();
    ids
}

pub(crate) async fn queue_service(catalog: &ServiceProc, extra: &[(&str, &str)]) -> ServiceProc {
    let addr = catalog.addr();
    let mut env =
        vec![("XIAONENG__DOMAIN__CATALOG_ADDR", addr.as_str()), ("XIAONENG__DOMAIN__TIDAL_INTERVAL_MS", "200")];
    env.extend_from_slice(extra);
    ServiceProc::start_with(ServiceKind::Queue, &shared_brokers(), &env).await
}

pub(crate) async fn client(q: &ServiceProc, who: &str, roles: &[&str]) -> Queue {
    QueueServiceClient::new(channel(&q.addr(), Some(&token(who, roles, "410702"))).await)
}

pub(crate) fn category(code: &str, matters: &[&str]) -> pb::Category {
    pb::Category {
        code: code.into(),
        name: format!("{code}类"),
        matter_ids: matters.iter().map(|s| s.to_string()).collect(),
    }
}

pub(crate) async fn hall(m: &mut Queue, name: &str, categories: Vec<pb::Category>) -> pb::Hall {
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

pub(crate) async fn window(
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

pub(crate) async fn open(m: &mut Queue, w: &pb::Window, staff: &str) {
    m.set_window_state(pb::SetWindowStateRequest {
        window_id: w.id.clone(),
        state: pb::WindowState::Open as i32,
        staff_id: staff.into(),
    })
    .await
    .unwrap();
}

pub(crate) async fn issue(c: &mut Queue, hall: &str, matter: &str, priority: pb::Priority) -> pb::Ticket {
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
    let zh = window(&mut m, &h.id, "ZH01", pb::WindowKind::Comprehensive, &[], false).await;
    open(&mut m, &zh, "s1").await;
    let mut kiosk = client(&q, "kiosk", &[roles::SYSTEM]).await;
    let mut issued = Vec::new();
    for _ in 0..5 {
        issued.push(issue(&mut kiosk, &h.id, &matters[0], pb::Priority::Normal).await.number);
    }
    let mut clerk = client(&q, "clerk", &[roles::CLERK]).await;
    let mut called = Vec::new();
    for _ in 0..2 {
        called.push(call_and_finish(&mut clerk, &zh).await.expect("a ticket"));
    }
    // The third call dies after the pop: the ticket is in the record, waiting, and in no lane.
    let crash = clerk.call_next(pb::CallNextRequest { window_id: zh.id.clone() }).await;
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
            let w =
                board.estimate_wait(pb::EstimateWaitRequest { hall_id: hall }).await.unwrap().into_inner().categories;
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
pub(crate) async fn call_and_finish(clerk: &mut Queue, w: &pb::Window) -> Option<String> {
    let t = clerk.call_next(pb::CallNextRequest { window_id: w.id.clone() }).await.unwrap().into_inner().ticket?;
    clerk.finish_service(pb::FinishServiceRequest { window_id: w.id.clone() }).await.unwrap();
    Some(t.number)
}

/// A citizen reads only a ticket taken in their name; staff of the hall's region read any.
#[tokio::test(flavor = "multi_thread")]
async fn a_citizen_reads_only_their_own_ticket() {
    let (catalog, matters) = catalog().await;
    let q = queue_service(&catalog, &[]).await;
    let mut m = client(&q, "manager", &[roles::HALL_MANAGER]).await;
    let h = hall(&mut m, "隐私大厅", vec![category("A", &[])]).await;
    window(&mut m, &h.id, "ZH01", pb::WindowKind::Comprehensive, &[], false).await;
    let mut wang = client(&q, "citizen-wang", &[roles::CITIZEN]).await;
    let t = issue(&mut wang, &h.id, &matters[0], pb::Priority::Normal).await;
    let read = |c: &Queue| {
        let (mut c, id) = (c.clone(), t.id.clone());
        async move { c.get_ticket(pb::GetTicketRequest { ticket_id: id }).await }
    };
    assert_eq!(read(&wang).await.unwrap().into_inner().ticket.unwrap().number, t.number);
    let li = client(&q, "citizen-li", &[roles::CITIZEN]).await;
    assert_eq!(read(&li).await.unwrap_err().code(), Code::PermissionDenied);
    let clerk = client(&q, "clerk", &[roles::CLERK]).await;
    assert!(read(&clerk).await.is_ok());
    let far = QueueServiceClient::new(channel(&q.addr(), Some(&token("clerk", &[roles::CLERK], "410703"))).await);
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
    let zh = window(&mut m, &h.id, "ZH01", pb::WindowKind::Comprehensive, &[], false).await;
    open(&mut m, &zh, "s1").await;
    let mut kiosk = client(&q, "kiosk", &[roles::SYSTEM]).await;
    let t = issue(&mut kiosk, &h.id, &matters[0], pb::Priority::Normal).await;
    let mut clerk = client(&q, "clerk", &[roles::CLERK]).await;
    assert_eq!(call_and_finish(&mut clerk, &zh).await, Some(t.number));
    let seen = crate::common::ledger_of(&acc, &broker.brokers(), "xiaoneng.queue.events", &t.id, 3).await;
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
