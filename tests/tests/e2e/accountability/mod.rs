//! Accountability's rules as data against the real stack: the complaint service's events reach
//! it over the broker, and the starter rules make a record of a substantiated complaint (the
//! unit and person it names) and of a retaliation report — from nothing else; every event
//! delivered a second time makes no second record. Rule sets load by region, refused whole
//! when a rule is bad.

use tonic::Code;
use xiaoneng_e2e::proto::accountability::v1 as apb;
use xiaoneng_e2e::proto::accountability::v1::accountability_service_client::AccountabilityServiceClient;
use xiaoneng_e2e::proto::complaint::v1 as cpb;
use xiaoneng_e2e::proto::complaint::v1::complaint_service_client::ComplaintServiceClient;
use xiaoneng_e2e::{channel, eventually, token, Broker, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

fn filing(kind: cpb::Kind, category: &str, staff: &str) -> cpb::FileComplaintRequest {
    cpb::FileComplaintRequest {
        region_code: "410702".into(),
        kind: kind as i32,
        category: category.into(),
        channel: cpb::Channel::Hotline as i32,
        target: Some(cpb::Target {
            kind: cpb::TargetKind::Staff as i32,
            id: staff.into(),
            department: "行政审批局".into(),
        }),
        description: "窗口推诿".into(),
        ..Default::default()
    }
}

async fn conclude(c: &mut ComplaintServiceClient<xiaoneng_e2e::Intercepted>, id: &str, finding: cpb::Finding) {
    for (step, f) in [(cpb::Step::Assign, 0), (cpb::Step::Investigate, 0), (cpb::Step::Conclude, finding as i32)] {
        c.advance_complaint(cpb::AdvanceComplaintRequest {
            id: id.into(),
            step: step as i32,
            unit: "行政审批局".into(),
            finding: f,
            text: "经核查".into(),
            responsible_unit: "行政审批局".into(),
            responsible_person: "s1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
}

/// On a broker of its own: three complaints filed and concluded (substantiated about s1, not
/// substantiated about s2, a retaliation report about s3) on the complaint service's clock of
/// Mon 2 Nov 2026; accountability started after, applies every event, then receives every
/// record of the topic a second time and recognises each.
struct Filed {
    _broker: Broker,
    complaint: ServiceProc,
    acc: ServiceProc,
    office: ComplaintServiceClient<xiaoneng_e2e::Intercepted>,
    substantiated: String,
    retaliation: String,
    events: Vec<(uuid::Uuid, String, String)>,
}

async fn filed_and_applied_twice() -> Filed {
    let broker = Broker::start();
    // The complaint service's clock fixes the facts' dates (Mon 2 Nov 2026), whatever today is.
    let at = [("XIAONENG__DOMAIN__BUSINESS_TIME", "2026-11-02T10:00:00+08:00")];
    let complaint = ServiceProc::start_with(ServiceKind::Complaint, &broker.brokers(), &at).await;
    let mut office = ComplaintServiceClient::new(
        channel(&complaint.addr(), Some(&token("xiaonengban", &[roles::SUPERVISOR], "410700"))).await,
    );
    let substantiated = office.file_complaint(filing(cpb::Kind::Complaint, "buck_passing", "s1")).await.unwrap();
    let substantiated = substantiated.into_inner().complaint.unwrap().id;
    conclude(&mut office, &substantiated, cpb::Finding::Substantiated).await;
    let not = office.file_complaint(filing(cpb::Kind::Complaint, "absence", "s2")).await.unwrap();
    let not = not.into_inner().complaint.unwrap().id;
    conclude(&mut office, &not, cpb::Finding::NotSubstantiated).await;
    let retaliation = office.file_complaint(filing(cpb::Kind::Retaliation, "", "s3")).await.unwrap();
    let retaliation = retaliation.into_inner().complaint.unwrap().id;
    let cdb = complaint.db().await;
    let events: Vec<(uuid::Uuid, String, String)> =
        sqlx::query_as("SELECT event_id, event_type, event_key FROM outbox ORDER BY id").fetch_all(&cdb).await.unwrap();
    eventually(60, "every complaint event published", || async {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetch_one(&cdb).await.unwrap();
        (n == 0).then_some(())
    })
    .await;

    let acc = ServiceProc::start(ServiceKind::Accountability, &broker.brokers()).await;
    let adb = acc.db().await;
    let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.0).collect();
    let applied = |adb: sqlx::PgPool, ids: Vec<uuid::Uuid>| async move {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE event_id = ANY($1)")
            .bind(&ids)
            .fetch_one(&adb)
            .await
            .unwrap();
        (n as usize == ids.len()).then_some(())
    };
    eventually(120, "every complaint event applied", || applied(adb.clone(), ids.clone())).await;
    // Every record of the topic delivered a second time, as a broker may: same key, headers
    // and payload. Each is recognised as applied and makes no second record.
    let again = redeliver(&broker.brokers(), "xiaoneng.complaint.events", events.len()).await;
    assert_eq!(again, events.len());
    let dup = "events_duplicate_total{consumer=\"ledger\"}";
    eventually(120, "every redelivered event recognised", || async {
        (acc.metric(dup).await >= events.len() as f64).then_some(())
    })
    .await;
    Filed { _broker: broker, complaint, acc, office, substantiated, retaliation, events }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_starter_rules_record_complaint_facts_once_even_when_delivered_twice() {
    let f = filed_and_applied_twice().await;
    let (acc, substantiated, retaliation, events) = (&f.acc, &f.substantiated, &f.retaliation, &f.events);
    let adb = acc.db().await;
    let mut city = AccountabilityServiceClient::new(
        channel(&acc.addr(), Some(&token("xiaonengban", &[roles::SUPERVISOR], "410700"))).await,
    );
    let records = city.list_records(apb::ListRecordsRequest::default()).await.unwrap().into_inner().records;
    let mut got: Vec<(String, String, String, String, String)> = records
        .iter()
        .map(|r| (r.rule_id.clone(), r.level.clone(), r.subject.clone(), r.unit.clone(), r.person.clone()))
        .collect();
    got.sort();
    let want = vec![
        (
            "complaint-substantiated".to_string(),
            "circulated".to_string(),
            substantiated.clone(),
            "行政审批局".to_string(),
            "s1".to_string(),
        ),
        (
            "retaliation-report".to_string(),
            "accountability".to_string(),
            retaliation.clone(),
            "行政审批局".to_string(),
            "s3".to_string(),
        ),
    ];
    assert_eq!(got, want, "the two facts the starter rules name, and nothing else");
    let concluded = events
        .iter()
        .find(|e| e.1.ends_with("ComplaintConcluded") && e.2 == *substantiated)
        .map(|e| e.0.to_string())
        .unwrap();
    let rec = records.iter().find(|r| r.rule_id == "complaint-substantiated").unwrap();
    assert_eq!(rec.evidence, [concluded], "the record rests on the conclusion's event");
    let published: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE event_type = 'xiaoneng.accountability.events.v1.RecordCreated'",
    )
    .fetch_one(&adb)
    .await
    .unwrap();
    assert_eq!(published, 2);

    // 容错纠错: the substantiated complaint's record exempted once; it stays, marked.
    let exempt = apb::ExemptRecordRequest {
        record_id: rec.id.clone(),
        reason: "窗口系统故障所致, 非主观过错".into(),
        approver: "效能办主任".into(),
    };
    let r = city.exempt_record(exempt.clone()).await.unwrap().into_inner().record.unwrap();
    assert_eq!((r.exemption_approver.as_str(), r.rule_id.as_str()), ("效能办主任", "complaint-substantiated"));
    assert_eq!(crate::common::reason(&city.exempt_record(exempt).await.unwrap_err()), "EXEMPTED_ONCE");

    what_if(&mut city).await;
}

/// What-if: a proposal that also records unsubstantiated complaints and drops the
/// retaliation rule, replayed over November's facts: side by side, nothing written.
async fn what_if(city: &mut AccountabilityServiceClient<xiaoneng_e2e::Intercepted>) {
    let proposal = crate::accountability::PROPOSAL;
    let w = city
        .what_if(apb::WhatIfRequest {
            text: proposal.into(),
            from_date: "2026-11-01".into(),
            to_date: "2026-11-30".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut side: Vec<(String, i64, i64)> = w.rules.iter().map(|r| (r.rule_id.clone(), r.actual, r.proposed)).collect();
    side.sort();
    assert_eq!(
        side,
        [
            ("complaint-any".to_string(), 0, 2),
            ("complaint-substantiated".to_string(), 1, 0),
            ("retaliation-report".to_string(), 1, 0)
        ]
    );
    let mut people: Vec<&str> = w.proposed.iter().map(|p| p.person.as_str()).collect();
    people.sort();
    assert_eq!(people, ["s1", "s1"], "both conclusions name s1 as responsible");
    let still = city.list_records(apb::ListRecordsRequest::default()).await.unwrap().into_inner().records;
    assert_eq!(still.len(), 2, "a what-if writes nothing");
}

/// An inspection's findings: each a record; a bad inspection lists its bad fields.
#[tokio::test(flavor = "multi_thread")]
async fn an_inspections_findings_are_records() {
    // On the business clock (it read the wall clock): the inspection's day is the service's.
    let at = [("XIAONENG__DOMAIN__BUSINESS_TIME", "2026-09-18T09:00:00+08:00")];
    let acc = ServiceProc::start_with(ServiceKind::Accountability, &xiaoneng_e2e::shared_brokers(), &at).await;
    let mut inspector = AccountabilityServiceClient::new(
        channel(&acc.addr(), Some(&token("jiwei-01", &[roles::INSPECTOR], "410702"))).await,
    );
    let finding = |unit: &str, person: &str, level: &str, title: &str| apb::InspectionFinding {
        unit: unit.into(),
        person: person.into(),
        level: level.into(),
        title: title.into(),
    };
    let visit = apb::RecordInspectionRequest {
        kind: "covert_visit".into(),
        place: "红旗区政务服务中心".into(),
        findings: vec![
            finding("行政审批局", "s4", "warning", "窗口人员离岗"),
            finding("不动产登记中心", "", "reminder", "引导标识不清"),
        ],
        photos: vec!["photo:2026-1202-001".into()],
        ..Default::default()
    };
    let made = inspector.record_inspection(visit).await.unwrap().into_inner();
    let levels: Vec<(&str, &str)> = made.records.iter().map(|r| (r.person.as_str(), r.level.as_str())).collect();
    assert_eq!(levels, [("s4", "warning"), ("", "reminder")]);
    assert!(made.records.iter().all(|r| r.subject == made.inspection_id && r.rule_id == "inspection"));
    assert!(made.records.iter().all(|r| r.on_date == "2026-09-18"), "{:?}", made.records);
    let bad = apb::RecordInspectionRequest {
        kind: "tea".into(),
        findings: vec![finding("", "", "purple", "")],
        ..Default::default()
    };
    let e = inspector.record_inspection(bad).await.unwrap_err();
    assert_eq!(
        crate::common::violations(&e),
        ["findings[0].level", "findings[0].title", "findings[0].unit", "kind", "place"]
    );
}

/// 示范点: a substantiated 吃拿卡要 complaint (discipline inspection concludes it) costs
/// 行政审批局 its title; 不动产登记中心 keeps its own. The county's rule set asks no minimum of
/// ratings here, so only the misconduct criterion decides.
#[tokio::test(flavor = "multi_thread")]
async fn a_substantiated_misconduct_complaint_costs_a_unit_its_title() {
    let mut f = filed_and_applied_twice().await;
    let (complaint, acc, office) = (&f.complaint, &f.acc, &mut f.office);
    let adb = acc.db().await;
    let mut city = AccountabilityServiceClient::new(
        channel(&acc.addr(), Some(&token("xiaonengban", &[roles::SUPERVISOR], "410700"))).await,
    );
    let mut jiwei = ComplaintServiceClient::new(
        channel(&complaint.addr(), Some(&token("jiwei-02", &[roles::INSPECTOR], "410700"))).await,
    );
    let bribery = office.file_complaint(filing(cpb::Kind::Complaint, "bribery", "s5")).await.unwrap();
    let bribery = bribery.into_inner().complaint.unwrap().id;
    for (step, f) in [(cpb::Step::Investigate, 0), (cpb::Step::Conclude, cpb::Finding::Substantiated as i32)] {
        jiwei
            .advance_complaint(cpb::AdvanceComplaintRequest {
                id: bribery.clone(),
                step: step as i32,
                finding: f,
                text: "查实收受好处".into(),
                responsible_unit: "行政审批局".into(),
                responsible_person: "s5".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    eventually(60, "the misconduct conclusion a fact", || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM facts WHERE kind = 'complaint_concluded'")
            .fetch_one(&adb)
            .await
            .unwrap();
        (n == 3).then_some(())
    })
    .await;
    let county = "region = \"410702\"\nversion = \"demo-2026\"\neffective_from = \"2026-01-01\"\nrules = []\n\
                  [demonstration]\nmin_ratings = 0\n";
    city.load_rule_set(apb::LoadRuleSetRequest { text: county.into() }).await.unwrap();
    let year = 2026;
    for unit in ["行政审批局", "不动产登记中心"] {
        let g = apb::GrantTitleRequest { region_code: "410702".into(), unit: unit.into(), year };
        city.grant_title(g).await.unwrap();
    }
    let again = apb::GrantTitleRequest { region_code: "410702".into(), unit: "行政审批局".into(), year };
    assert_eq!(city.grant_title(again).await.unwrap_err().code(), Code::AlreadyExists);
    let assessed = city
        .assess_titles(apb::AssessTitlesRequest { region_code: "410702".into(), year })
        .await
        .unwrap()
        .into_inner()
        .titles;
    let mut got: Vec<(&str, &str, Vec<String>)> =
        assessed.iter().map(|t| (t.unit.as_str(), t.status.as_str(), t.reasons.clone())).collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("不动产登记中心", "held", vec![]),
            ("行政审批局", "revoked", vec!["1 substantiated misconduct complaint(s)".to_string()]),
        ]
    );
}

/// A proposed rule set for the what-if: every conclusion recorded, no retaliation rule.
const PROPOSAL: &str = "region = \"410700\"\nversion = \"proposal\"\neffective_from = \"2026-01-01\"\n\
    [[rules]]\nid = \"complaint-any\"\ntitle = \"投诉办结\"\nfact = \"complaint_concluded\"\nlevel = \"reminder\"\n";

#[tokio::test(flavor = "multi_thread")]
async fn rule_sets_load_by_region_whole_or_not_at_all() {
    let acc = ServiceProc::start(ServiceKind::Accountability, &xiaoneng_e2e::shared_brokers()).await;
    let client = |region: &str| {
        let t = token("office", &[roles::SUPERVISOR], region);
        let addr = acc.addr();
        async move { AccountabilityServiceClient::new(channel(&addr, Some(&t)).await) }
    };
    let mut city = client("410700").await;
    let next = "region = \"410700\"\nversion = \"2027-1\"\neffective_from = \"2027-01-01\"\n\
                [[rules]]\nid = \"case-red-card\"\ntitle = \"红牌\"\nfact = \"case_escalated\"\n\
                when = { level = \"red_card\" }\nlevel = \"accountability\"\n";
    let loaded = city.load_rule_set(apb::LoadRuleSetRequest { text: next.into() }).await.unwrap().into_inner();
    assert_eq!(loaded.rule_set.unwrap().rules, 1);
    let again = city.load_rule_set(apb::LoadRuleSetRequest { text: next.into() }).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    let sets = city.list_rule_sets(apb::ListRuleSetsRequest::default()).await.unwrap().into_inner().rule_sets;
    let versions: Vec<&str> = sets.iter().map(|s| s.version.as_str()).collect();
    assert_eq!(versions, ["2027-1", "starter-2"]);
    let bad = next.replace("case_escalated", "weather").replace("2027-1", "2027-2");
    let e = city.load_rule_set(apb::LoadRuleSetRequest { text: bad }).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let mut county = client("410703").await;
    let e = county.load_rule_set(apb::LoadRuleSetRequest { text: next.replace("2027-1", "2027-3") }).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "a county loads only its own");
    let mut clerk =
        AccountabilityServiceClient::new(channel(&acc.addr(), Some(&token("clerk", &[roles::CLERK], "410702"))).await);
    let e = clerk.list_records(apb::ListRecordsRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

/// Reads the first `n` records of `topic` and produces each again, unchanged; how many.
/// Rates, on the window's pad, the invitation the finished ticket opened (once it is there).
async fn rate_at_pad(
    pad: &mut xiaoneng_e2e::proto::evaluation::v1::evaluation_service_client::EvaluationServiceClient<
        xiaoneng_e2e::Intercepted,
    >,
    ticket: &str,
    level: i32,
    comment: &str,
) -> xiaoneng_e2e::proto::evaluation::v1::Rating {
    use xiaoneng_e2e::proto::evaluation::v1 as epb;
    let inv = eventually(60, "the invitation", || {
        let (mut p, ticket_id) = (pad.clone(), ticket.to_string());
        async move {
            let req = epb::ListInvitationsRequest { ticket_id, ..Default::default() };
            p.list_invitations(req).await.ok()?.into_inner().invitations.into_iter().next()
        }
    })
    .await;
    let req = epb::SubmitRatingRequest {
        invitation_id: inv.id,
        level,
        comment: comment.into(),
        channel: epb::Channel::WindowDevice as i32,
        ..Default::default()
    };
    pad.submit_rating(req).await.unwrap().into_inner().rating.unwrap()
}

pub(crate) async fn redeliver(brokers: &str, topic: &str, n: usize) -> usize {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Header, Headers, OwnedHeaders};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::{Message, Offset, TopicPartitionList};
    let (brokers, topic) = (brokers.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", format!("redeliver-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let p: BaseProducer =
            rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().expect("producer");
        let timeout = std::time::Duration::from_secs(10);
        let meta = c.fetch_metadata(Some(&topic), timeout).expect("metadata");
        let mut tpl = TopicPartitionList::new();
        for part in meta.topics().iter().flat_map(|t| t.partitions()) {
            tpl.add_partition_offset(&topic, part.id(), Offset::Beginning).expect("partition");
        }
        c.assign(&tpl).expect("assign");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut sent = 0;
        while sent < n && std::time::Instant::now() < deadline {
            let Some(Ok(m)) = c.poll(std::time::Duration::from_millis(200)) else { continue };
            let mut headers = OwnedHeaders::new();
            if let Some(h) = m.headers() {
                for x in h.iter() {
                    headers = headers.insert(Header { key: x.key, value: x.value });
                }
            }
            let key = m.key().unwrap_or_default().to_vec();
            let payload = m.payload().unwrap_or_default().to_vec();
            let rec = BaseRecord::to(&topic).key(&key).payload(&payload).headers(headers).partition(m.partition());
            p.send(rec).map_err(|(e, _)| e).expect("produce");
            sent += 1;
        }
        p.flush(timeout).expect("flush");
        sent
    })
    .await
    .expect("redeliver")
}

/// On a broker of its own: the catalog, queue, evaluation (clock at Mon 2 Nov 2026) and
/// accountability services; each (staff, window, n, good) of `plan` serves n tickets at its
/// window and has `good` of them rated satisfied at the pad, the rest 差评. The services and
/// how many ratings were given.
async fn served_and_rated(
    plan: &[(&str, &str, i64, i64)],
) -> (Broker, ServiceProc, ServiceProc, ServiceProc, ServiceProc, i64) {
    use crate::queue::{call_and_finish, category, client, hall, issue, load_starter_into, open, window};
    use xiaoneng_e2e::proto::evaluation::v1::evaluation_service_client::EvaluationServiceClient;
    use xiaoneng_e2e::proto::queue::v1 as qpb;
    let broker = Broker::start();
    let catalog = ServiceProc::start(ServiceKind::Catalog, &broker.brokers()).await;
    let matters = load_starter_into(&catalog).await;
    let addr = catalog.addr();
    let queue =
        ServiceProc::start_with(ServiceKind::Queue, &broker.brokers(), &[("XIAONENG__DOMAIN__CATALOG_ADDR", &addr)])
            .await;
    // The ratings' dates come from the evaluation service's clock: November 2026, whatever
    // today is.
    let at = [("XIAONENG__DOMAIN__BUSINESS_TIME", "2026-11-02T10:00:00+08:00")];
    let eval = ServiceProc::start_with(ServiceKind::Evaluation, &broker.brokers(), &at).await;
    let acc = ServiceProc::start(ServiceKind::Accountability, &broker.brokers()).await;
    let mut m = client(&queue, "manager", &[roles::HALL_MANAGER]).await;
    let h = hall(&mut m, "排名大厅", vec![category("A", &[])]).await;
    let mut kiosk = client(&queue, "kiosk", &[roles::SYSTEM]).await;
    let pad = token("pad", &[roles::SYSTEM], "410702");
    let mut pad = EvaluationServiceClient::new(channel(&eval.addr(), Some(&pad)).await);
    let mut rated = 0;
    for &(staff, code, n, good) in plan {
        let w = window(&mut m, &h.id, code, qpb::WindowKind::Comprehensive, &[], false).await;
        open(&mut m, &w, staff).await;
        let mut clerk = client(&queue, staff, &[roles::CLERK]).await;
        for i in 0..n {
            let t = issue(&mut kiosk, &h.id, &matters[0], qpb::Priority::Normal).await;
            assert_eq!(call_and_finish(&mut clerk, &w).await, Some(t.number));
            let level = if i < good { 5 } else { 2 };
            rate_at_pad(&mut pad, &t.id, level, if level == 2 { "等太久" } else { "" }).await;
            rated += 1;
        }
        // The window closes before the next staff member's opens: each serves its own.
        m.set_window_state(qpb::SetWindowStateRequest {
            window_id: w.id.clone(),
            state: qpb::WindowState::Closed as i32,
            staff_id: String::new(),
        })
        .await
        .unwrap();
    }
    (broker, catalog, queue, eval, acc, rated)
}

/// On a broker of its own: three window staff served and rated at the pads — s1 25 times (23
/// satisfied), s3 22 times (15 satisfied), s2 4 times (all satisfied). The staff ranking of the
/// month agrees with a recount from the evaluation service's own ratings: s1 first, s3 last
/// (末位), s2 shown with its counts and not ranked (4 < 20 observations); each row carries its
/// Wilson interval, recomputed here by hand. An action on the bottom and the bulletin follow.
#[tokio::test(flavor = "multi_thread")]
async fn the_ranking_agrees_with_a_recount_and_small_units_are_not_ranked() {
    let plan = [("s1", "ZH01", 25, 23), ("s3", "ZH03", 22, 15), ("s2", "ZH02", 4, 4)];
    let (_broker, _catalog, _queue, eval, acc, rated) = served_and_rated(&plan).await;
    let adb = acc.db().await;
    eventually(120, "every rating a fact", || async {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM facts WHERE kind = 'rating'").fetch_one(&adb).await.unwrap();
        (n == rated).then_some(())
    })
    .await;

    // The recount, from the evaluation service's own ratings.
    let recount: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT i.staff_id, count(*), count(*) FILTER (WHERE r.level >= 3)
         FROM ratings r JOIN invitations i ON i.id = r.invitation_id GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&eval.db().await)
    .await
    .unwrap();
    assert_eq!(recount, [("s1".to_string(), 25, 23), ("s2".to_string(), 4, 4), ("s3".to_string(), 22, 15)]);
    let period = "2026-11".to_string();
    let mut city = AccountabilityServiceClient::new(
        channel(&acc.addr(), Some(&token("xiaonengban", &[roles::SUPERVISOR], "410700"))).await,
    );
    let req = apb::GetRankingRequest { period: period.clone(), staff: true, ..Default::default() };
    let r = city.get_ranking(req).await.unwrap().into_inner();
    assert_eq!(r.rule_version, "starter-2");
    let rows: Vec<(String, i32, i32, i32, bool, bool)> =
        r.rows.iter().map(|x| (x.key.clone(), x.rank, x.ratings, x.good_ratings, x.top, x.bottom)).collect();
    assert_eq!(
        rows,
        [
            ("s1".to_string(), 1, 25, 23, true, false),
            ("s3".to_string(), 2, 22, 15, false, true),
            ("s2".to_string(), 0, 4, 4, false, false),
        ]
    );
    // Wilson by hand (z = 1.96) for s1: 23 of 25.
    let (k, n, z) = (23.0_f64, 25.0_f64, 1.96_f64);
    let p = k / n;
    let lower = (p + z * z / (2.0 * n) - z * ((p * (1.0 - p) + z * z / (4.0 * n)) / n).sqrt()) / (1.0 + z * z / n);
    let s1 = &r.rows[0];
    assert!((s1.satisfaction_lower - lower).abs() < 1e-9, "{} vs {lower}", s1.satisfaction_lower);
    assert!((s1.score - 100.0 * lower).abs() < 1e-9, "no cases, no records: the score is the bound");

    // Actions belong to the edges of the ranking: 约谈 the bottom, a commendation the top;
    // not the other way round, and not someone too small to be ranked.
    let action = |key: &str, action: &str, note: &str| apb::RecordActionRequest {
        period: period.clone(),
        key: key.into(),
        action: action.into(),
        note: note.into(),
        ..Default::default()
    };
    for (key, what) in [("s3", "commendation"), ("s1", "interview"), ("s2", "interview"), ("s9", "training")] {
        let e = city.record_action(action(key, what, "x")).await.unwrap_err();
        assert_eq!(crate::common::reason(&e), "NOT_AT_THE_RANKING_EDGE", "{what} on {key}");
    }
    city.record_action(action("s3", "interview", "效能办约谈")).await.unwrap();
    city.record_action(action("s1", "commendation", "通报表扬")).await.unwrap();
    let b = city
        .publish_bulletin(apb::PublishBulletinRequest { period: period.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(b.markdown.contains("效能督查通报") && b.markdown.contains("s3 — 约谈: 效能办约谈"), "{}", b.markdown);
    assert!(b.html.starts_with("<article") && b.html.contains("<table>"));
    // Stored as published: read back by id, and listed under its period, newest first.
    let stored = city
        .get_bulletin(apb::GetBulletinRequest { bulletin_id: b.bulletin_id.clone() })
        .await
        .unwrap()
        .into_inner()
        .bulletin
        .unwrap();
    assert_eq!(
        (stored.period.as_str(), stored.markdown.as_str(), stored.html.as_str()),
        (period.as_str(), b.markdown.as_str(), b.html.as_str())
    );
    let second = city
        .publish_bulletin(apb::PublishBulletinRequest { period: period.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let listed = city
        .list_bulletins(apb::ListBulletinsRequest { period: period.clone(), page_size: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.bulletins.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(), [second.bulletin_id.as_str()]);
    let next = city
        .list_bulletins(apb::ListBulletinsRequest {
            period: period.clone(),
            page_size: 1,
            page_token: listed.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.bulletins.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(), [b.bulletin_id.as_str()]);
    let bad = city.list_bulletins(apb::ListBulletinsRequest { period: "soon".into(), ..Default::default() }).await;
    assert_eq!(crate::common::violations(&bad.unwrap_err()), ["period"]);
    let bad = city.get_ranking(apb::GetRankingRequest { period: "soon".into(), ..Default::default() }).await;
    assert_eq!(crate::common::violations(&bad.unwrap_err()), ["period"]);
    // A bad region and a bad period: both, in one answer (it named only the region).
    let both = apb::GetRankingRequest { region_code: "41x".into(), period: "soon".into(), staff: false };
    assert_eq!(crate::common::violations(&city.get_ranking(both).await.unwrap_err()), ["period", "region_code"]);
}

/// 最多跑一次: three visits linked to one case of a matter promising one visit are held
/// against the promise — one record for the case, however many visits went over; a case
/// visited once makes none. The matter's promise reaches accountability from the catalog's
/// own MatterPublished events.
#[tokio::test(flavor = "multi_thread")]
async fn visits_above_a_matters_promise_make_one_record_per_case() {
    use crate::queue::{category, client, hall, issue, load_starter_into, open, window};
    use xiaoneng_e2e::proto::catalog::v1 as kpb;
    use xiaoneng_e2e::proto::catalog::v1::catalog_service_client::CatalogServiceClient;
    use xiaoneng_e2e::proto::queue::v1 as qpb;
    let broker = Broker::start();
    let catalog = ServiceProc::start(ServiceKind::Catalog, &broker.brokers()).await;
    let acc = ServiceProc::start(ServiceKind::Accountability, &broker.brokers()).await;
    load_starter_into(&catalog).await;
    let mut c = CatalogServiceClient::new(channel(&catalog.addr(), None).await);
    let list = c
        .list_matters(kpb::ListMattersRequest { region_code: "410702".into(), page_size: 100, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .matters;
    let once = list
        .iter()
        .find(|m| m.terms.as_ref().is_some_and(|t| t.max_visits == 1))
        .map(|m| m.matter_id.clone())
        .expect("a starter matter promising one visit");
    let addr = catalog.addr();
    let queue =
        ServiceProc::start_with(ServiceKind::Queue, &broker.brokers(), &[("XIAONENG__DOMAIN__CATALOG_ADDR", &addr)])
            .await;
    let mut m = client(&queue, "manager", &[roles::HALL_MANAGER]).await;
    let h = hall(&mut m, "跑动大厅", vec![category("A", &[])]).await;
    let w = window(&mut m, &h.id, "ZH01", qpb::WindowKind::Comprehensive, &[], false).await;
    open(&mut m, &w, "s1").await;
    let mut kiosk = client(&queue, "kiosk", &[roles::SYSTEM]).await;
    let mut clerk = client(&queue, "s1", &[roles::CLERK]).await;
    let (busy, quiet) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    for case in [&busy, &busy, &busy, &quiet] {
        let t = issue(&mut kiosk, &h.id, &once, qpb::Priority::Normal).await;
        clerk.link_case(qpb::LinkCaseRequest { ticket_id: t.id.clone(), case_id: case.clone() }).await.unwrap();
        let called = clerk.call_next(qpb::CallNextRequest { window_id: w.id.clone() }).await.unwrap();
        assert_eq!(called.into_inner().ticket.unwrap().id, t.id);
        clerk.finish_service(qpb::FinishServiceRequest { window_id: w.id.clone() }).await.unwrap();
    }
    let adb = acc.db().await;
    // Both sources settled: the four visits, and every catalog event (the promise among them),
    // whichever came first.
    let catalog_events: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT event_id FROM outbox").fetch_all(&catalog.db().await).await.unwrap();
    eventually(120, "four visits and every catalog event applied", || {
        let (adb, ids) = (adb.clone(), catalog_events.clone());
        async move {
            let visits: i64 =
                sqlx::query_scalar("SELECT count(*) FROM facts WHERE kind = 'visit'").fetch_one(&adb).await.unwrap();
            let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE event_id = ANY($1)")
                .bind(&ids)
                .fetch_one(&adb)
                .await
                .unwrap();
            (visits == 4 && applied as usize == ids.len()).then_some(())
        }
    })
    .await;
    let mut city = AccountabilityServiceClient::new(
        channel(&acc.addr(), Some(&token("xiaonengban", &[roles::SUPERVISOR], "410700"))).await,
    );
    let records = city.list_records(apb::ListRecordsRequest::default()).await.unwrap().into_inner().records;
    let visits: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| r.rule_id == "visits-above-promise")
        .map(|r| (r.subject.as_str(), r.level.as_str()))
        .collect();
    assert_eq!(visits, [(busy.as_str(), "warning")], "one record, for the case visited three times");
}
mod authorization;
mod order;
mod scenario;
