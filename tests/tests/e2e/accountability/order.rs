//! Whichever event arrives first: window ratings reach accountability before anything of the
//! catalog (the catalog here publishes nothing; its events are produced by hand, in the order
//! the test needs, to one partition). The ratings already name their matter's department (the
//! queue read it from the catalog over gRPC and carries it on the finished service); the
//! matter's MatterPublished, naming a department by id, and that department's
//! DepartmentCreated, arriving later, rename nothing that names its department already — and
//! the unit ranking counts the window ratings under the department (never under a window).

use xiaoneng_e2e::proto::accountability::v1 as apb;
use xiaoneng_e2e::proto::accountability::v1::accountability_service_client::AccountabilityServiceClient;
use xiaoneng_e2e::proto::catalog::events::v1 as cat;
use xiaoneng_e2e::proto::evaluation::v1::evaluation_service_client::EvaluationServiceClient;
use xiaoneng_e2e::proto::queue::v1 as qpb;
use xiaoneng_e2e::{channel, eventually, free_port, token, Broker, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::ServiceKind;

/// Produces `events` to partition 0 of the catalog's topic, in order, as the relay would.
async fn produce(brokers: &str, events: Vec<xiaoneng_kit::events::NewEvent>) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let settings = xiaoneng_kit::config::KafkaSettings {
        brokers: brokers.to_string(),
        partitions: 3,
        replication_factor: 1,
        message_timeout_ms: 5000,
    };
    xiaoneng_kit::kafka::ensure_topics(&settings, &[ServiceKind::Catalog.topic()]).await.unwrap();
    let p: FutureProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    for e in events {
        let h = xiaoneng_kit::events::headers(
            &e.event_id,
            &e.event_type,
            &e.source,
            &e.key,
            &e.region_code,
            &e.occurred_at,
            &Default::default(),
        );
        let r = FutureRecord::to(&e.topic).key(&e.key).payload(&e.payload).partition(0).headers(h);
        p.send(r, std::time::Duration::from_secs(10)).await.map_err(|(e, _)| e).unwrap();
    }
}

async fn units(adb: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT DISTINCT unit FROM facts WHERE kind = 'rating' ORDER BY 1").fetch_all(adb).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn window_ratings_first_then_the_matter_then_its_department() {
    use crate::queue::{call_and_finish, category, client, hall, issue, load_starter_into, open, window};
    let broker = Broker::start();
    let b = broker.brokers();
    // The catalog serves its matters but publishes nothing: no broker at its address.
    let catalog = ServiceProc::start(ServiceKind::Catalog, &format!("127.0.0.1:{}", free_port())).await;
    let matters = load_starter_into(&catalog).await;
    let queue =
        ServiceProc::start_with(ServiceKind::Queue, &b, &[("XIAONENG__DOMAIN__CATALOG_ADDR", &catalog.addr())]).await;
    let at = [("XIAONENG__DOMAIN__BUSINESS_TIME", "2026-11-02T10:00:00+08:00")];
    let eval = ServiceProc::start_with(ServiceKind::Evaluation, &b, &at).await;
    let acc = ServiceProc::start(ServiceKind::Accountability, &b).await;
    let mut m = client(&queue, "manager", &[roles::HALL_MANAGER]).await;
    let h = hall(&mut m, "顺序大厅", vec![category("A", &[])]).await;
    let w = window(&mut m, &h.id, "ZH01", qpb::WindowKind::Comprehensive, &[], false).await;
    open(&mut m, &w, "s1").await;
    let mut kiosk = client(&queue, "kiosk", &[roles::SYSTEM]).await;
    let mut clerk = client(&queue, "s1", &[roles::CLERK]).await;
    let mut pad =
        EvaluationServiceClient::new(channel(&eval.addr(), Some(&token("pad", &[roles::SYSTEM], "410702"))).await);
    for level in [5, 4, 2] {
        let t = issue(&mut kiosk, &h.id, &matters[0], qpb::Priority::Normal).await;
        assert_eq!(call_and_finish(&mut clerk, &w).await, Some(t.number));
        super::rate_at_pad(&mut pad, &t.id, level, if level == 2 { "等太久" } else { "" }).await;
    }
    let adb = acc.db().await;
    eventually(120, "three ratings, each a fact", || async {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM facts WHERE kind = 'rating'").fetch_one(&adb).await.unwrap();
        (n == 3).then_some(())
    })
    .await;
    let department = {
        use xiaoneng_e2e::proto::catalog::v1 as cpb;
        use xiaoneng_e2e::proto::catalog::v1::catalog_service_client::CatalogServiceClient;
        let mut c = CatalogServiceClient::new(channel(&catalog.addr(), None).await);
        let m = c.get_matter(cpb::GetMatterRequest { matter_id: matters[0].clone(), ..Default::default() });
        m.await.unwrap().into_inner().matter.unwrap().department_name
    };
    assert!(!department.is_empty());
    assert_eq!(units(&adb).await, [department.clone()], "no catalog event yet: the ratings name their department");

    let region = RegionCode::parse("410702").unwrap();
    let dept_id = uuid::Uuid::new_v4().to_string();
    let published = cat::MatterPublished {
        matter_id: matters[0].clone(),
        region_code: "410702".into(),
        version: 1,
        name: "测试事项".into(),
        department_id: dept_id.clone(),
        effective_date: "2026-01-01".into(),
        max_visits: 1,
        ..Default::default()
    };
    let created = cat::DepartmentCreated {
        department_id: dept_id.clone(),
        region_code: "410702".into(),
        code: "XNCS".into(),
        display_name: "效能测试局".into(),
    };
    let kind = ServiceKind::Catalog;
    let applied = |event: &'static str| {
        let adb = adb.clone();
        async move {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_entries WHERE event_type = $1")
                .bind(format!("xiaoneng.catalog.events.v1.{event}"))
                .fetch_one(&adb)
                .await
                .unwrap();
            (n == 1).then_some(())
        }
    };
    produce(&b, vec![xiaoneng_kit::events::NewEvent::new(kind, &matters[0], &region, &published)]).await;
    eventually(60, "the matter's event applied", || applied("MatterPublished")).await;
    assert_eq!(units(&adb).await, [department.clone()]);
    produce(&b, vec![xiaoneng_kit::events::NewEvent::new(kind, &dept_id, &region, &created)]).await;
    eventually(60, "the department's event applied", || applied("DepartmentCreated")).await;
    assert_eq!(units(&adb).await, [department.clone()]);

    let mut city = AccountabilityServiceClient::new(
        channel(&acc.addr(), Some(&token("xiaonengban", &[roles::SUPERVISOR], "410700"))).await,
    );
    let r = city
        .get_ranking(apb::GetRankingRequest { period: "2026-11".into(), staff: false, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let rows: Vec<(&str, i32, i32)> = r.rows.iter().map(|x| (x.key.as_str(), x.ratings, x.good_ratings)).collect();
    assert_eq!(rows, [(department.as_str(), 3, 2)], "the window ratings count under the department, by name");
}
