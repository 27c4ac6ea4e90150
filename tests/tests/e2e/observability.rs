//! What the dashboards and alerts read, from the real services' /metrics: every service's
//! domain gauge queries run against its real schema; the queue's gauges count what waits in a
//! hall; requests are counted per method with latency buckets; the outbox backlog and relay lag,
//! and the consumers' lag, are exported.

use xiaoneng_e2e::proto::queue::v1 as qpb;
use xiaoneng_e2e::{eventually, http_get, shared_brokers, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

/// Each of the six services passes its gauge loop without an error (its SQL runs on its own
/// migrated database).
#[tokio::test(flavor = "multi_thread")]
async fn every_service_reads_its_gauges_from_its_own_schema() {
    let brokers = shared_brokers();
    let mut procs = Vec::new();
    for kind in ServiceKind::ALL {
        procs.push(ServiceProc::start(kind, &brokers).await);
    }
    for p in &procs {
        let passes = "background_passes_total{loop=\"gauges\"}";
        eventually(30, &format!("{:?}: a gauge pass", p.kind), || async {
            (p.metric(passes).await >= 1.0).then_some(())
        })
        .await;
        assert!(!p.log_text().contains("domain gauges not read"), "{:?}:\n{}", p.kind, p.log_tail());
    }
}

/// Two tickets waiting in a hall with one open window: the waiting count, the longest wait and
/// the estimate (two ahead over one window × 300 s before any service finished) per hall and
/// category; the calls counted by method with their latency buckets; the relay's backlog and lag.
#[tokio::test(flavor = "multi_thread")]
async fn the_queue_reports_what_waits_in_each_hall() {
    use crate::queue::{category, client, hall, issue, load_starter_into, open, window};
    // A broker of its own: the relay's figures do not wait on a broker busy with other tests.
    let broker = xiaoneng_e2e::Broker::start();
    let catalog = ServiceProc::start(ServiceKind::Catalog, &broker.brokers()).await;
    let matters = load_starter_into(&catalog).await;
    let addr = catalog.addr();
    let queue =
        ServiceProc::start_with(ServiceKind::Queue, &broker.brokers(), &[("XIAONENG__DOMAIN__CATALOG_ADDR", &addr)])
            .await;
    let mut m = client(&queue, "manager", &[roles::HALL_MANAGER]).await;
    let name = format!("指标大厅-{}", uuid::Uuid::new_v4().simple());
    let h = hall(&mut m, &name, vec![category("A", &[])]).await;
    let w = window(&mut m, &h.id, "ZH01", qpb::WindowKind::Comprehensive, &[], false).await;
    open(&mut m, &w, "s1").await;
    let mut kiosk = client(&queue, "kiosk", &[roles::SYSTEM]).await;
    let first_issued = std::time::Instant::now();
    for _ in 0..2 {
        issue(&mut kiosk, &h.id, &matters[0], qpb::Priority::Normal).await;
    }
    let series = |metric: &str| format!("{metric}{{region=\"410702\",hall=\"{name}\",category=\"A\"}}");
    let waiting = series("queue_waiting_tickets");
    eventually(40, "two tickets waiting in the gauge", || async {
        (queue.metric(&waiting).await == 2.0).then_some(())
    })
    .await;
    assert_eq!(queue.metric(&series("queue_estimated_wait_seconds")).await, 600.0);
    // The longest wait grows with the first ticket's wait: at least a second once a second
    // has passed, never more than the time since it was issued (an absent series reads 0).
    let longest = series("queue_longest_wait_seconds");
    let waited = eventually(30, "the longest wait past a second", || async {
        let v = queue.metric(&longest).await;
        (v >= 1.0).then_some(v)
    })
    .await;
    assert!(waited <= first_issued.elapsed().as_secs_f64() + 1.0, "{waited} s");

    let body = http_get(&queue.env_of("XIAONENG__SERVICE__METRICS_ADDR").unwrap(), "/metrics").await;
    let issue_method = "method=\"/xiaoneng.queue.v1.QueueService/IssueTicket\"";
    assert!(
        body.lines().any(|l| l.starts_with("grpc_server_request_duration_seconds_bucket") && l.contains(issue_method)),
        "latency buckets per method"
    );
    assert!(queue.metric(&format!("grpc_server_requests_total{{{issue_method}")).await >= 2.0);
    eventually(30, "the relay published everything", || async {
        (queue.metric("outbox_backlog").await == 0.0 && queue.metric("outbox_relay_lag_seconds_count").await >= 2.0)
            .then_some(())
    })
    .await;
}
