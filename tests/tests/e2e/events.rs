//! Nothing lost, nothing twice: catalog writes travel through its outbox, the real broker and
//! accountability's idempotent consumer — also across a broker outage and a consumer crash.

use std::time::Duration;

use crate::common::{create_departments, group_caught_up, ledger_counts, pending_outbox};
use xiaoneng_e2e::{eventually, Broker, ServiceProc};
use xiaoneng_kit::ServiceKind;

/// The broker outage and the consumer kill each run alone: they restart a broker or a
/// consumer and wait for a consumer group to form again, which is slowest under load.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits until the ledger holds `n` rows and the ledger's consumer group has committed every
/// record of the catalog topic (so nothing more, not even a duplicate, can still arrive), then
/// checks it holds exactly `n` distinct events.
async fn assert_ledger_settles_at(acc: &ServiceProc, brokers: &str, n: i64) {
    let pool = acc.db().await;
    let group = format!("{}-group", acc.database);
    eventually(180, &format!("{n} ledger entries, all records committed"), || {
        let (pool, group) = (pool.clone(), group.clone());
        async move {
            let settled =
                ledger_counts(&pool).await.0 >= n && group_caught_up(brokers, &group, "xiaoneng.catalog.events").await;
            settled.then_some(())
        }
    })
    .await;
    assert_eq!(ledger_counts(&pool).await, (n, n), "every event exactly once:\n{}", acc.log_tail());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_reaches_another_service_exactly_once() {
    let broker = Broker::start();
    let catalog = ServiceProc::start(ServiceKind::Catalog, &broker.brokers()).await;
    let acc = ServiceProc::start(ServiceKind::Accountability, &broker.brokers()).await;
    create_departments(&catalog, "410702", "RT", 60).await;
    assert_ledger_settles_at(&acc, &broker.brokers(), 60).await;
    assert_eq!(pending_outbox(&catalog.db().await).await, 0);
    let processed: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE consumer = 'ledger'")
        .fetch_one(&acc.db().await)
        .await
        .unwrap();
    assert_eq!(processed, 60);
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_outage_during_writes_loses_nothing() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let mut broker = Broker::start();
    let catalog = ServiceProc::start(ServiceKind::Catalog, &broker.brokers()).await;
    let acc = ServiceProc::start(ServiceKind::Accountability, &broker.brokers()).await;
    create_departments(&catalog, "410702", "BEFORE", 10).await;
    assert_ledger_settles_at(&acc, &broker.brokers(), 10).await;

    broker.kill();
    // Writes go on: each state change and its event commit together in the outbox.
    create_departments(&catalog, "410702", "DURING", 40).await;
    // The relay keeps trying while the broker is down: wait until at least one send has
    // failed for good (past the producer's 5 s message timeout), then all 40 are still there.
    let relay_failures = "outbox_publish_failures_total";
    let cat = &catalog;
    eventually(60, "a publish attempt to fail", move || async move {
        (cat.metric(relay_failures).await >= 1.0).then_some(())
    })
    .await;
    let pending = pending_outbox(&catalog.db().await).await;
    assert_eq!(pending, 40, "with the broker down the events wait in the outbox");

    broker.restart();
    assert_ledger_settles_at(&acc, &broker.brokers(), 50).await;
    assert_eq!(pending_outbox(&catalog.db().await).await, 0);
}

/// The consumer dies (abort at a crash point) right after committing its 200th record and
/// before storing that record's offset: on restart that record and those after the last
/// committed offset come again, are recognised as applied, and none is applied twice.
#[tokio::test(flavor = "multi_thread")]
async fn consumer_killed_mid_batch_reapplies_nothing() {
    let _alone = ONE_AT_A_TIME.lock().await;
    const N: i64 = 500;
    let broker = Broker::start();
    let catalog = ServiceProc::start(ServiceKind::Catalog, &broker.brokers()).await;
    create_departments(&catalog, "410703", "K", N as usize).await;
    let cat_db = catalog.db().await;
    eventually(60, "the catalog outbox to drain", || {
        let db = cat_db.clone();
        async move { (pending_outbox(&db).await == 0).then_some(()) }
    })
    .await;

    // Not waited on to serve: it may reach its crash point before the first health check.
    let mut acc = ServiceProc::configure(
        ServiceKind::Accountability,
        &broker.brokers(),
        &[("XIAONENG_FAILPOINTS", "consumer.before_offset_store@200")],
    );
    acc.start_detached();
    acc.wait_exit(120).await;
    let pool = acc.db().await;
    assert_eq!(ledger_counts(&pool).await, (200, 200), "applied before the crash");

    acc.set_env("XIAONENG_FAILPOINTS", "");
    acc.restart().await;
    assert_ledger_settles_at(&acc, &broker.brokers(), N).await;
    let redelivered = acc.metric("events_duplicate_total{consumer=\"ledger\"}").await;
    assert!(redelivered >= 1.0, "the 200th record at least came again");
    let processed: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events").fetch_one(&pool).await.unwrap();
    assert_eq!(processed, N);
}

/// A department system reading the topic with a plain Kafka consumer sees CloudEvents headers,
/// the protobuf payload, the aggregate id as key, and the caller's trace id carried from the
/// gRPC call through the outbox.
#[tokio::test(flavor = "multi_thread")]
async fn records_carry_cloudevents_headers_and_the_callers_trace() {
    use prost::Message as _;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::Headers;
    use rdkafka::Message;
    use xiaoneng_e2e::proto::catalog::events::v1::DepartmentCreated;
    use xiaoneng_e2e::proto::catalog::v1::{
        catalog_service_client::CatalogServiceClient, CreateDepartmentRequest, Department,
    };

    let broker = Broker::start();
    let catalog = ServiceProc::start(ServiceKind::Catalog, &broker.brokers()).await;
    let admin = xiaoneng_e2e::token("admin", &[xiaoneng_kit::auth::roles::CATALOG_ADMIN], "410702");
    let ch = tonic::transport::Channel::from_shared(catalog.addr()).unwrap().connect().await.unwrap();
    let mut client = CatalogServiceClient::new(ch);
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut req = tonic::Request::new(CreateDepartmentRequest {
        department: Some(Department {
            region_code: "410702".into(),
            code: "YBJ".into(),
            display_name: "县医疗保障局".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    });
    req.metadata_mut().insert("authorization", format!("Bearer {admin}").parse().unwrap());
    req.metadata_mut().insert("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01").parse().unwrap());
    let dept = client.create_department(req).await.unwrap().into_inner().department.unwrap();

    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.brokers())
        .set("group.id", "department-system")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["xiaoneng.catalog.events"]).unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await.expect("a record").unwrap();
    let headers: std::collections::HashMap<String, String> = msg
        .headers()
        .unwrap()
        .iter()
        .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
        .collect();
    assert_eq!(msg.key(), Some(dept.id.as_bytes()));
    assert_eq!(headers["ce_specversion"], "1.0");
    assert_eq!(headers["ce_type"], "xiaoneng.catalog.events.v1.DepartmentCreated");
    assert_eq!(headers["ce_source"], "/xiaoneng/catalog");
    assert_eq!(headers["ce_subject"], dept.id);
    assert_eq!(headers["ce_regioncode"], "410702");
    assert_eq!(headers["content-type"], "application/protobuf");
    assert!(uuid::Uuid::parse_str(&headers["ce_id"]).is_ok());
    assert!(headers["traceparent"].contains(trace_id), "trace continues: {}", headers["traceparent"]);
    let event = DepartmentCreated::decode(msg.payload().unwrap()).unwrap();
    assert_eq!(event.department_id, dept.id);
    assert_eq!(event.display_name, "县医疗保障局");
}
