//! The complaint service against the real stack: a real-name complaint by the hotline and one
//! by the hall's QR code carried through the closed loop, a repeat merged, the inspector's
//! audited read of the identity — and no identity anywhere else: not in a table, not on the
//! topic, not in the log, not in anything the accused unit can read. Deadlines across National
//! Day, reminders and escalations once across restarts; the Open311 face.

use prost::Message as _;
use tonic::Code;
use xiaoneng_e2e::proto::complaint::events::v1 as cev;
use xiaoneng_e2e::proto::complaint::v1 as cpb;
use xiaoneng_e2e::proto::complaint::v1::complaint_service_client::ComplaintServiceClient;
use xiaoneng_e2e::{channel, eventually, token, Intercepted, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

mod authorization;
mod open311;
mod targets;
mod visibility;

use crate::common::{reason, violations};

type Complaints = ComplaintServiceClient<Intercepted>;

async fn as_in(e: &ServiceProc, who: &str, roles: &[&str], region: &str) -> Complaints {
    ComplaintServiceClient::new(channel(&e.addr(), Some(&token(who, roles, region))).await)
}

/// As staff of department `dept`.
async fn as_dept(e: &ServiceProc, who: &str, roles: &[&str], region: &str, dept: &str) -> Complaints {
    ComplaintServiceClient::new(channel(&e.addr(), Some(&xiaoneng_e2e::token_in(who, roles, region, dept))).await)
}

/// The complaint service at business time `at` (overdue pass every 100 ms), with an Open311
/// endpoint of its own (the harness gives it a free port) and the API key `key-12345` for the
/// client `shizhang-rexian`.
async fn start(brokers: &str, at: &str) -> ServiceProc {
    start_with_extra(brokers, at, &[]).await
}

/// As [`start`], with `extra` settings.
async fn start_with_extra(brokers: &str, at: &str, extra: &[(&str, &str)]) -> ServiceProc {
    let mut env = vec![
        ("XIAONENG__DOMAIN__BUSINESS_TIME", at),
        ("XIAONENG__DOMAIN__OVERDUE_INTERVAL_MS", "100"),
        ("XIAONENG__DOMAIN__OPEN311__API_KEYS__key-12345", "shizhang-rexian"),
    ];
    env.extend_from_slice(extra);
    ServiceProc::start_with(ServiceKind::Complaint, brokers, &env).await
}

const NAME: &str = "张三丰";
const PHONE: &str = "13912345678";
const ID_NUMBER: &str = "410702199001011234";

fn complainant() -> cpb::Complainant {
    cpb::Complainant {
        name: NAME.into(),
        phone: PHONE.into(),
        id_number: ID_NUMBER.into(),
        address: "牧野区建设路".into(),
        ..Default::default()
    }
}

fn filing(category: &str, target: &str, description: &str) -> cpb::FileComplaintRequest {
    cpb::FileComplaintRequest {
        region_code: "410702".into(),
        kind: cpb::Kind::Complaint as i32,
        category: category.into(),
        channel: cpb::Channel::Hotline as i32,
        target: Some(cpb::Target {
            kind: cpb::TargetKind::Window as i32,
            id: target.into(),
            department: "行政审批局".into(),
        }),
        description: description.into(),
        complainant: Some(complainant()),
        ..Default::default()
    }
}

async fn advance(
    c: &mut Complaints,
    id: &str,
    step: cpb::Step,
    f: impl FnOnce(&mut cpb::AdvanceComplaintRequest),
) -> cpb::Complaint {
    let mut req = cpb::AdvanceComplaintRequest { id: id.into(), step: step as i32, ..Default::default() };
    f(&mut req);
    c.advance_complaint(req).await.unwrap().into_inner().complaint.unwrap()
}

async fn outbox(db: &sqlx::PgPool) -> Vec<(String, Vec<u8>)> {
    sqlx::query_as("SELECT event_type, payload FROM outbox ORDER BY id").fetch_all(db).await.unwrap()
}

const ADDRESS: &str = "牧野区建设路";

/// Every text of every row of every table of the service's database, and every byte string
/// (a `bytea` column) as the text its bytes would spell, so that an identity stored in clear
/// in a binary column is found too (`t::text` shows a `bytea` as hex).
async fn every_table(db: &sqlx::PgPool) -> String {
    let tables: Vec<String> = sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
        .fetch_all(db)
        .await
        .unwrap();
    let mut all = String::new();
    for t in tables {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT t::text FROM \"{t}\" t")).fetch_all(db).await.unwrap();
        all.push_str(&rows.join("\n"));
    }
    let binary: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = 'public' AND data_type = 'bytea'",
    )
    .fetch_all(db)
    .await
    .unwrap();
    assert!(binary.iter().any(|(_, c)| c == "identity_cipher"), "the sealed identity is a bytea column: {binary:?}");
    for (t, c) in binary {
        let values: Vec<Vec<u8>> =
            sqlx::query_scalar(&format!("SELECT \"{c}\" FROM \"{t}\" WHERE \"{c}\" IS NOT NULL"))
                .fetch_all(db)
                .await
                .unwrap();
        for v in values {
            all.push_str(&String::from_utf8_lossy(&v));
        }
    }
    all
}

fn leaks(text: &str) -> Vec<&'static str> {
    [NAME, PHONE, ID_NUMBER, ADDRESS].into_iter().filter(|s| text.contains(s)).collect()
}

/// On a broker of its own (so the topic holds only this test's events): a real-name hotline
/// complaint about window ZH01 (推诿扯皮) is merged with its repeat, carried to a substantiated
/// conclusion naming the unit and the person, replied and called back; a 吃拿卡要 report via
/// the QR code goes straight to discipline inspection, which only an inspector advances. The
/// inspector reads the identity once, audited. Then every table, every record on the topic,
/// the whole log and every response the accused unit's staff can get are searched: no name,
/// phone or ID number of the complainant in clear text.
#[tokio::test(flavor = "multi_thread")]
async fn no_identity_of_a_real_name_complainant_leaks() {
    let broker = xiaoneng_e2e::Broker::start();
    let svc = start(&broker.brokers(), "2026-11-02T10:00:00+08:00").await;
    let (c, bribery) = a_complaint_and_a_report(&svc).await;
    let c = carried_to_the_callback(&svc, &c.id, &bribery.id).await;
    inspector_reads_the_identity_once(&svc, &c.id, &bribery.id).await;
    let seen = what_the_accused_unit_gets(&svc, &c.id, &bribery.id).await;
    assert_eq!(leaks(&seen), Vec::<&str>::new(), "the accused unit saw an identity");
    nowhere_else(&svc, &broker).await;
}

/// The hotline's real-name complaint about ZH01 (its text naming the complainant and phone)
/// and its repeat, merged; a 吃拿卡要 report by QR code, straight to discipline inspection.
async fn a_complaint_and_a_report(svc: &ServiceProc) -> (cpb::Complaint, cpb::Complaint) {
    let mut hotline = as_in(svc, "12345-agent-07", &[roles::SYSTEM], "410700").await;
    let first = hotline
        .file_complaint(filing(
            "buck_passing",
            "ZH01",
            "我是张三丰, 电话13912345678, 窗口让我跑了三个部门盖章, 还说材料不全",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.merged);
    let c = first.complaint.unwrap();
    assert_eq!((c.state, c.due_date.as_str()), (cpb::State::Registered as i32, "2026-11-16"));
    let repeat = hotline.file_complaint(filing("buck_passing", "ZH01", "又打电话催问")).await.unwrap().into_inner();
    assert!(repeat.merged, "the same complainant, target and category merge");
    let merged_into = repeat.complaint.unwrap();
    assert_eq!((merged_into.id.as_str(), merged_into.merged), (c.id.as_str(), 1));

    let mut citizen = as_in(svc, "citizen-zhang", &[roles::CITIZEN], "410702").await;
    let qr = cpb::FileComplaintRequest {
        channel: cpb::Channel::QrCode as i32,
        target: Some(cpb::Target {
            kind: cpb::TargetKind::Staff as i32,
            id: "s1".into(),
            department: "行政审批局".into(),
        }),
        ..filing("bribery", "s1", "办事人员暗示要好处费")
    };
    let bribery = citizen.file_complaint(qr).await.unwrap().into_inner().complaint.unwrap();
    assert_eq!((bribery.assigned_to.as_str(), bribery.to_discipline), ("discipline", true));
    assert_eq!(bribery.state, cpb::State::Assigned as i32);

    (c, bribery)
}

/// The efficiency office carries the complaint through to the callback; the report is not
/// theirs to advance (it does not exist for them).
async fn carried_to_the_callback(svc: &ServiceProc, id: &str, bribery: &str) -> cpb::Complaint {
    let mut office = as_in(svc, "xiaonengban", &[roles::SUPERVISOR], "410700").await;
    let c = advance(&mut office, id, cpb::Step::Assign, |r| r.unit = "行政审批局".into()).await;
    let c = advance(&mut office, &c.id, cpb::Step::Investigate, |_| {}).await;
    let c = advance(&mut office, &c.id, cpb::Step::Conclude, |r| {
        r.finding = cpb::Finding::Substantiated as i32;
        r.text = "经调取录像, 窗口未一次性告知".into();
        r.responsible_unit = "行政审批局".into();
        r.responsible_person = "s1".into();
    })
    .await;
    let c = advance(&mut office, &c.id, cpb::Step::Reply, |r| r.text = "已约谈窗口人员并整改".into()).await;
    let c = advance(&mut office, &c.id, cpb::Step::Callback, |r| {
        r.satisfaction = "satisfied".into();
        r.text = "电话回访满意".into();
    })
    .await;
    assert_eq!(c.state, cpb::State::CalledBack as i32);
    // Discipline inspection's case: the efficiency office may not advance it, an inspector may.
    let denied = office
        .advance_complaint(cpb::AdvanceComplaintRequest {
            id: bribery.to_string(),
            step: cpb::Step::Investigate as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::NotFound, "a discipline report does not exist for the office");
    c
}

/// The inspector's one audited read of the identity; nobody else may read it.
async fn inspector_reads_the_identity_once(svc: &ServiceProc, id: &str, bribery: &str) {
    let mut inspector = as_in(svc, "jiwei-01", &[roles::INSPECTOR], "410700").await;
    advance(&mut inspector, bribery, cpb::Step::Investigate, |_| {}).await;
    let no_purpose = inspector
        .reveal_complainant(cpb::RevealComplainantRequest { id: id.to_string(), purpose: String::new() })
        .await
        .unwrap_err();
    assert_eq!(violations(&no_purpose), ["purpose"]);
    let who = inspector
        .reveal_complainant(cpb::RevealComplainantRequest {
            id: id.to_string(),
            purpose: "核实举报人身份以便回访".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(who.complainant.unwrap(), complainant());
    let reads = inspector
        .list_identity_reads(cpb::ListIdentityReadsRequest { complaint_id: id.to_string(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .reads;
    assert_eq!(reads.len(), 1);
    assert_eq!((reads[0].reader.as_str(), reads[0].purpose.as_str()), ("jiwei-01", "核实举报人身份以便回访"));
    for role in [roles::HALL_MANAGER, roles::SUPERVISOR, roles::CLERK] {
        let mut x = as_in(svc, "someone", &[role], "410702").await;
        let e = x
            .reveal_complainant(cpb::RevealComplainantRequest { id: id.to_string(), purpose: "想知道是谁".into() })
            .await;
        assert_eq!(e.unwrap_err().code(), Code::PermissionDenied, "{role}");
    }
}

/// Everything the accused unit's staff can read, as text: the person named gets nothing in
/// any role; a colleague of the assigned unit reads the complaint masked; the public face.
async fn what_the_accused_unit_gets(svc: &ServiceProc, c_id: &str, bribery_id: &str) -> String {
    // What the accused unit can get. The person named (s1: the bribery report's target, the
    // one the conclusion held responsible) gets nothing, in any role; a colleague of the unit
    // the complaint was assigned to reads it, masked — and the filed text holds the
    // complainant's name and phone, so that masking is what is read here.
    let mut seen = String::new();
    for role in [roles::CLERK, roles::HALL_MANAGER, roles::REVIEWER] {
        let mut named = as_dept(svc, "s1", &[role], "410702", "行政审批局").await;
        for id in [c_id, bribery_id] {
            let e = named.get_complaint(cpb::GetComplaintRequest { id: id.to_string() }).await.unwrap_err();
            assert_eq!(e.code(), Code::NotFound, "{role} s1 on {id}");
        }
        let list = named.list_complaints(cpb::ListComplaintsRequest::default()).await.unwrap().into_inner();
        assert_eq!(list.complaints.len(), 0, "{role} s1 lists nothing");
        let mut colleague = as_dept(svc, "s5", &[role], "410702", "行政审批局").await;
        let r = colleague.get_complaint(cpb::GetComplaintRequest { id: c_id.to_string() }).await.unwrap().into_inner();
        let text = r.complaint.as_ref().unwrap().description.clone();
        assert!(text.contains("窗口让我跑了三个部门盖章") && text.contains("139****5678"), "{text}");
        seen.push_str(&format!("{r:?}"));
        let e = colleague.get_complaint(cpb::GetComplaintRequest { id: bribery_id.to_string() }).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{role}: the discipline report is not the unit's");
        let list = colleague.list_complaints(cpb::ListComplaintsRequest::default()).await.unwrap().into_inner();
        assert_eq!(list.complaints.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), [c_id]);
        seen.push_str(&format!("{list:?}"));
        let e = colleague
            .reveal_complainant(cpb::RevealComplainantRequest { id: c_id.to_string(), purpose: "x".into() })
            .await;
        seen.push_str(&format!("{:?}", e.unwrap_err()));
    }
    let (_, open311) = xiaoneng_e2e::http_request(
        &svc.env_of("XIAONENG__DOMAIN__OPEN311__ADDR").unwrap(),
        "GET",
        "/open311/v2/requests.json",
        None,
    )
    .await;
    assert!(open311.contains(c_id), "{open311}");
    seen.push_str(&open311);

    seen
}

/// Every table (text and binary), every record on the topic, the whole log: no identity.
async fn nowhere_else(svc: &ServiceProc, broker: &xiaoneng_e2e::Broker) {
    let db = svc.db().await;
    let tables = every_table(&db).await;
    assert!(tables.contains("推诿扯皮") || tables.contains("buck_passing"), "the tables were read");
    assert_eq!(leaks(&tables), Vec::<&str>::new(), "an identity in a table");
    let events = outbox(&db).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.rsplit('.').next().unwrap()).collect();
    for t in ["ComplaintFiled", "ComplaintMerged", "ComplaintStepChanged", "ComplaintConcluded", "CallbackRecorded"] {
        assert!(types.contains(&t), "{t} in {types:?}");
    }
    let concluded = events.iter().find(|(t, _)| t.ends_with("ComplaintConcluded")).unwrap();
    let concluded = cev::ComplaintConcluded::decode(concluded.1.as_slice()).unwrap();
    assert_eq!((concluded.responsible_unit.as_str(), concluded.responsible_person.as_str()), ("行政审批局", "s1"));
    let records = xiaoneng_e2e::read_topic(&broker.brokers(), "xiaoneng.complaint.events", events.len()).await;
    assert_eq!(records.len(), events.len(), "every event reached the topic");
    let on_topic: String = records.iter().map(|r| String::from_utf8_lossy(r).to_string()).collect();
    assert_eq!(leaks(&on_topic), Vec::<&str>::new(), "an identity on the topic");
    assert_eq!(leaks(&svc.log_text()), Vec::<&str>::new(), "an identity in the log");
}

/// Filed Wed 30 Sep 2026: a complaint is due in 10 working days across National Day (8, 9,
/// 10 (Sat, make-up), 12, 13, 14, 15, 16, 19, 20 → Tue 20 Oct), a consultation in 3 (8, 9,
/// 10 → Sat 10 Oct), the fast track in 1 (Thu 8 Oct), an urgent one the same day. On 20 Oct the complaint is reminded,
/// on 21 Oct escalated to the efficiency office — each once, also across a restart.
#[tokio::test(flavor = "multi_thread")]
async fn deadlines_cross_national_day_and_fire_once_across_restarts() {
    let brokers = xiaoneng_e2e::shared_brokers();
    let mut svc = start(&brokers, "2026-09-30T10:00:00+08:00").await;
    let mut hotline = as_in(&svc, "12345", &[roles::SYSTEM], "410702").await;
    let anon = |kind: cpb::Kind, fast: bool, window: &str| cpb::FileComplaintRequest {
        kind: kind as i32,
        complainant: None,
        fast_track: fast,
        ..filing("slow_action", window, "迟迟不办")
    };
    let c = hotline.file_complaint(anon(cpb::Kind::Complaint, false, "ZH01")).await.unwrap().into_inner();
    let c = c.complaint.unwrap();
    assert_eq!(c.due_date, "2026-10-20");
    let q = hotline.file_complaint(anon(cpb::Kind::Consultation, false, "ZH02")).await.unwrap().into_inner();
    let q = q.complaint.unwrap();
    assert_eq!(q.due_date, "2026-10-10");
    let f = hotline.file_complaint(anon(cpb::Kind::Complaint, true, "ZH03")).await.unwrap().into_inner();
    let f = f.complaint.unwrap();
    assert_eq!(f.due_date, "2026-10-08", "直查快办: one working day");
    let u = hotline.file_complaint(anon(cpb::Kind::Urgent, false, "ZH04")).await.unwrap().into_inner();
    assert_eq!(u.complaint.unwrap().due_date, "2026-09-30", "urgent: the same working day");
    let mut office = as_in(&svc, "xiaonengban", &[roles::SUPERVISOR], "410700").await;
    // Only the 10-day complaint stays open: the other two are replied before their deadlines.
    for id in [&q.id, &f.id] {
        replied(&mut office, id).await;
    }
    let db = svc.db().await;
    let steps = || async {
        outbox(&db)
            .await
            .into_iter()
            .filter(|(t, _)| t.ends_with("ComplaintStepChanged"))
            .map(|(_, p)| cev::ComplaintStepChanged::decode(p.as_slice()).unwrap())
            .filter(|e| e.complaint_id == c.id)
            .collect::<Vec<_>>()
    };
    let passes = "background_passes_total{loop=\"complaint_overdue\"}";
    // Two replicas on the one database share the passes: each reminder and escalation once.
    let mut two = svc.replica().await;
    for (day, reminders, escalations) in
        [("2026-10-20", 1, 0), ("2026-10-20", 1, 0), ("2026-10-21", 1, 1), ("2026-10-21", 1, 1)]
    {
        restart_both_at(&mut svc, &mut two, day, passes).await;
        let ev = steps().await;
        let r = ev.iter().filter(|e| e.reminder).count();
        let x = ev.iter().filter(|e| e.escalated).count();
        assert_eq!((r, x), (reminders, escalations), "on {day}");
    }
    let escalated = steps().await.into_iter().find(|e| e.escalated).unwrap();
    assert_eq!((escalated.due_date.as_str(), escalated.on_date.as_str()), ("2026-10-20", "2026-10-21"));
    let mut office = as_in(&svc, "xiaonengban", &[roles::SUPERVISOR], "410700").await;
    let now = office.get_complaint(cpb::GetComplaintRequest { id: c.id.clone() }).await.unwrap().into_inner();
    let now = now.complaint.unwrap();
    assert!(now.overdue && now.escalated);
    // The other two were replied in time: never reminded or escalated.
    let others: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM complaints WHERE id = ANY($1::uuid[]) AND (reminded_for IS NOT NULL OR escalated_for IS NOT NULL)",
    )
    .bind(vec![q.id.clone(), f.id.clone()])
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(others, 0);
    // The one extension, with a reason: 20 Oct + 5 working days → 27 Oct.
    let ext =
        office.extend_complaint(cpb::ExtendComplaintRequest { id: c.id.clone(), reason: "需调取监控".into() }).await;
    assert_eq!(ext.unwrap().into_inner().complaint.unwrap().due_date, "2026-10-27");
    let again = office.extend_complaint(cpb::ExtendComplaintRequest { id: c.id.clone(), reason: "再延".into() }).await;
    assert_eq!(reason(&again.unwrap_err()), "EXTENDED_ONCE");
}

/// Assigned, investigated, concluded not substantiated and replied by the office.
async fn replied(office: &mut Complaints, id: &str) {
    advance(office, id, cpb::Step::Assign, |r| r.unit = "行政审批局".into()).await;
    advance(office, id, cpb::Step::Investigate, |_| {}).await;
    advance(office, id, cpb::Step::Conclude, |r| {
        r.finding = cpb::Finding::NotSubstantiated as i32;
        r.text = "经核实不属实".into();
    })
    .await;
    advance(office, id, cpb::Step::Reply, |r| r.text = "已答复".into()).await;
}

/// Both replicas killed, started again on `day` at 09:00, and each through three passes of
/// the loop counted by `passes`.
async fn restart_both_at(one: &mut ServiceProc, two: &mut ServiceProc, day: &str, passes: &str) {
    for r in [&mut *one, &mut *two] {
        r.kill();
        r.set_env("XIAONENG__DOMAIN__BUSINESS_TIME", &format!("{day}T09:00:00+08:00"));
    }
    one.restart().await;
    two.restart().await;
    for r in [&*one, &*two] {
        let before = r.metric(passes).await;
        eventually(30, "three passes after the restart, on each replica", || async {
            (r.metric(passes).await >= before + 3.0).then_some(())
        })
        .await;
    }
}

/// Bad filings list every bad field and store nothing; a complaint about a previous complaint
/// links to it, and so does a repeat after the reply; the complainant reopens once.
#[tokio::test(flavor = "multi_thread")]
async fn bad_filings_change_nothing_and_a_repeat_links_and_reopens_once() {
    let svc = start(&xiaoneng_e2e::shared_brokers(), "2026-11-02T10:00:00+08:00").await;
    let mut citizen = as_in(&svc, "citizen-li", &[roles::CITIZEN], "410702").await;
    let bad = cpb::FileComplaintRequest {
        category: "noise".into(),
        kind: 0,
        description: String::new(),
        ..filing("x", "", "")
    };
    let e = citizen.file_complaint(bad).await.unwrap_err();
    assert_eq!(violations(&e), ["category", "description", "kind", "target.id"]);
    let db = svc.db().await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM complaints").fetch_one(&db).await.unwrap();
    assert_eq!(n, 0);
    let first = citizen.file_complaint(filing("slow_action", "ZH02", "一直不办")).await.unwrap().into_inner();
    let first = first.complaint.unwrap();
    let mut office = as_in(&svc, "xiaonengban", &[roles::SUPERVISOR], "410700").await;
    for (step, text) in [(cpb::Step::Assign, ""), (cpb::Step::Investigate, ""), (cpb::Step::Conclude, "不属实")] {
        advance(&mut office, &first.id, step, |r| {
            r.unit = "行政审批局".into();
            r.text = text.into();
            r.finding = cpb::Finding::NotSubstantiated as i32;
        })
        .await;
    }
    advance(&mut office, &first.id, cpb::Step::Reply, |r| r.text = "已答复".into()).await;
    advance(&mut office, &first.id, cpb::Step::Callback, |r| r.satisfaction = "not_satisfied".into()).await;
    let early = office.advance_complaint(cpb::AdvanceComplaintRequest {
        id: first.id.clone(),
        step: cpb::Step::Reply as i32,
        text: "x".into(),
        ..Default::default()
    });
    assert_eq!(reason(&early.await.unwrap_err()), "ILLEGAL_STEP");
    let reopen = cpb::ReopenComplaintRequest { id: first.id.clone(), reason: "答复与事实不符".into() };
    let r = citizen.reopen_complaint(reopen.clone()).await.unwrap().into_inner().complaint.unwrap();
    assert_eq!((r.state, r.reopened), (cpb::State::Investigating as i32, 1));
    let mut other = as_in(&svc, "citizen-wang", &[roles::CITIZEN], "410702").await;
    assert_eq!(
        other.get_complaint(cpb::GetComplaintRequest { id: first.id.clone() }).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let about = cpb::FileComplaintRequest {
        target: Some(cpb::Target {
            kind: cpb::TargetKind::Complaint as i32,
            id: first.id.clone(),
            department: String::new(),
        }),
        ..filing("buck_passing", "", "上次投诉处理敷衍")
    };
    let linked = citizen.file_complaint(about).await.unwrap().into_inner().complaint.unwrap();
    assert_eq!(linked.linked_complaint_id, first.id);
    advance(&mut office, &first.id, cpb::Step::Conclude, |r| {
        r.finding = cpb::Finding::NotSubstantiated as i32;
        r.text = "复查仍不属实".into();
    })
    .await;
    advance(&mut office, &first.id, cpb::Step::Reply, |r| r.text = "复查答复".into()).await;
    advance(&mut office, &first.id, cpb::Step::Callback, |r| r.satisfaction = "not_satisfied".into()).await;
    assert_eq!(reason(&citizen.reopen_complaint(reopen).await.unwrap_err()), "REOPENED_ONCE");
    // The same complaint again after its reply: not merged into an answered one, a new one
    // linked to it.
    let again = citizen.file_complaint(filing("slow_action", "ZH02", "还是不办")).await.unwrap().into_inner();
    let c = again.complaint.unwrap();
    assert!(!again.merged);
    assert_eq!((c.linked_complaint_id.as_str(), c.state), (first.id.as_str(), cpb::State::Registered as i32));
}

/// The merge window's edge (30 days, the default): a repeat a minute before the 30th day's
/// hour merges into the open complaint, a repeat a minute after is a complaint of its own.
#[tokio::test(flavor = "multi_thread")]
async fn a_repeat_merges_inside_the_window_and_not_a_minute_after() {
    let mut svc = start(&xiaoneng_e2e::shared_brokers(), "2026-11-02T10:00:00+08:00").await;
    let mut hotline = as_in(&svc, "12345", &[roles::SYSTEM], "410702").await;
    let first = hotline.file_complaint(filing("slow_action", "ZH05", "一直不办")).await.unwrap().into_inner();
    let first = first.complaint.unwrap();
    for (at, merged) in [("2026-12-02T09:59:00+08:00", true), ("2026-12-02T10:01:00+08:00", false)] {
        svc.kill();
        svc.set_env("XIAONENG__DOMAIN__BUSINESS_TIME", at);
        svc.restart().await;
        let mut hotline = as_in(&svc, "12345", &[roles::SYSTEM], "410702").await;
        let r = hotline.file_complaint(filing("slow_action", "ZH05", "还是不办")).await.unwrap().into_inner();
        let c = r.complaint.unwrap();
        assert_eq!((r.merged, c.id == first.id), (merged, merged), "at {at}");
    }
}
