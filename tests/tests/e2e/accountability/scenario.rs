//! A scripted scenario on a broker of its own, through the real catalog, case, queue and
//! evaluation services: the starter rules not covered by the complaint and visit tests each
//! fire from its events and from nothing else, and every event delivered a second time makes
//! no second record.
//!
//! - Case: a material left out of the first notice (一次性告知), then the promise passes on
//!   the case service's business clock: warning and yellow card on 25 Sep, red card on 8 Oct.
//! - Evaluation: three window 差评 of s1 (one yellow card for the month, counted under the
//!   matter's department, as a window rating names none), each loop overdue on 9 Oct.
//! - Catalog (持证上岗): three officers hold an enforcement matter; 梁晨's certificate is
//!   revoked, 罗斌's only one expires tomorrow (the accountability clock runs five days ahead),
//!   韩冰's expires tomorrow too but a second one stays valid: two records, not three.

use xiaoneng_e2e::proto::accountability::v1 as apb;
use xiaoneng_e2e::proto::accountability::v1::accountability_service_client::AccountabilityServiceClient;
use xiaoneng_e2e::proto::catalog::v1 as kpb;
use xiaoneng_e2e::proto::evaluation::v1::evaluation_service_client::EvaluationServiceClient;
use xiaoneng_e2e::proto::queue::v1 as qpb;
use xiaoneng_e2e::{channel, eventually, token, Broker, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

use crate::case::driver::{act, as_, names};

async fn outbox_ids(s: &ServiceProc) -> Vec<uuid::Uuid> {
    sqlx::query_scalar("SELECT event_id FROM outbox").fetch_all(&s.db().await).await.unwrap()
}

async fn unpublished(s: &ServiceProc) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetch_one(&s.db().await).await.unwrap()
}

/// (rule, subject, unit, person) of every record, sorted.
async fn records(
    city: &mut AccountabilityServiceClient<xiaoneng_e2e::Intercepted>,
) -> Vec<(String, String, String, String)> {
    let req = apb::ListRecordsRequest { page_size: 100, ..Default::default() };
    let mut v: Vec<_> = city
        .list_records(req)
        .await
        .unwrap()
        .into_inner()
        .records
        .into_iter()
        .map(|r| (r.rule_id, r.subject, r.unit, r.person))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn every_other_starter_rule_fires_from_a_scripted_scenario_and_from_nothing_else() {
    let broker = Broker::start();
    let b = broker.brokers();
    let catalog = ServiceProc::start(ServiceKind::Catalog, &b).await;
    let today = xiaoneng_kit::today_cn();
    let ahead = format!("{}T09:00:00+08:00", today + chrono::Duration::days(5));
    let acc = ServiceProc::start_with(
        ServiceKind::Accountability,
        &b,
        &[("XIAONENG__DOMAIN__BUSINESS_TIME", &ahead), ("XIAONENG__DOMAIN__CERTIFICATE_INTERVAL_MS", "100")],
    )
    .await;

    let (certs, people) = lapsed_certificates(&catalog).await;
    let (case, k, matter_id) = a_case_past_its_promise(&b, &catalog).await;
    let (queue, eval, ratings) = three_bad_ratings_overdue(&b, &catalog, &matter_id).await;
    let services = [&catalog, &case, &queue, &eval];
    settled(&acc, &services).await;
    let mut city = AccountabilityServiceClient::new(
        channel(&acc.addr(), Some(&token("xiaonengban", &[roles::SUPERVISOR], "410700"))).await,
    );
    let got = records(&mut city).await;
    // Written out: the case's records name its handler (the clerk has no department, so no
    // unit); each overdue loop is a record on its rating, under the matter's department (the
    // queue names it on the finished service, the rating and its loop carry it); the third 差评 of the month makes the one repeated-ratings record, under the
    // matter's department; the two lapsed certificates, one each.
    let s = |x: &str| x.to_string();
    let case_rec = |rule: &str| (s(rule), k.id.clone(), s(""), s("clerk-01"));
    let mut want = vec![
        case_rec("case-warning"),
        case_rec("case-yellow-card"),
        case_rec("case-red-card"),
        case_rec("one-time-notice"),
        (s("uncertified-enforcement"), certs[0].clone(), s("JTJ局"), people[0].clone()),
        (s("uncertified-enforcement"), certs[1].clone(), s("JTJ局"), people[1].clone()),
        (s("repeated-bad-ratings"), ratings[2].clone(), s("红旗区市场监督管理局"), s("s1")),
    ];
    for r in &ratings {
        want.push((s("bad-rating-rectification-overdue"), r.clone(), s("红旗区市场监督管理局"), s("s1")));
    }
    want.sort();
    assert_eq!(got, want);
    let rule_ids: std::collections::BTreeSet<&str> = got.iter().map(|r| r.0.as_str()).collect();
    let seven = [
        "bad-rating-rectification-overdue",
        "case-red-card",
        "case-warning",
        "case-yellow-card",
        "one-time-notice",
        "repeated-bad-ratings",
        "uncertified-enforcement",
    ];
    assert_eq!(rule_ids.into_iter().collect::<Vec<_>>(), seven, "with the complaint and visit tests: all ten");

    delivered_twice_makes_nothing(&b, &acc, &services, &mut city, &got).await;
    drop(broker);
}

/// 持证上岗: three officers hold an enforcement matter; 梁晨's certificate is revoked, 罗斌's only
/// one expires tomorrow, 韩冰's too but a second stays valid. The lapsed certificates' ids, and
/// the officers.
async fn lapsed_certificates(catalog: &ServiceProc) -> (Vec<String>, Vec<String>) {
    let (mut admin, _) = crate::catalog::clients(catalog, "410702").await;
    let (dept, _, people) = crate::catalog::enforcement_team(&mut admin).await;
    let mut certs = Vec::new();
    for (staff, number, expiry) in
        [(&people[0], "C-1", 300), (&people[1], "C-2", 1), (&people[2], "C-3", 1), (&people[2], "C-4", 400)]
    {
        let certificate = kpb::Certificate {
            staff_id: staff.clone(),
            number: number.into(),
            scope: "交通运输行政执法".into(),
            issue_date: crate::catalog::day(-700),
            expiry_date: crate::catalog::day(expiry),
            ..Default::default()
        };
        let c = admin.issue_certificate(kpb::IssueCertificateRequest { certificate: Some(certificate) }).await.unwrap();
        certs.push(c.into_inner().certificate.unwrap().id);
    }
    let mut penalty = crate::catalog::terms(&dept, "410702-JT-009", 20);
    penalty.name = "对道路运输违法行为的行政处罚".into();
    penalty.matter_type = kpb::MatterType::Penalty as i32;
    let req =
        kpb::CreateMatterDraftRequest { region_code: "410702".into(), terms: Some(penalty), ..Default::default() };
    let enforcement = admin.create_matter_draft(req).await.unwrap().into_inner().matter.unwrap().matter_id;
    for p in &people {
        let req = kpb::AssignMatterToStaffRequest { staff_id: p.clone(), matter_id: enforcement.clone() };
        admin.assign_matter_to_staff(req).await.unwrap();
    }
    let revoke = kpb::RevokeCertificateRequest { id: certs[0].clone(), reason: "调离执法岗位".into() };
    admin.revoke_certificate(revoke).await.unwrap();

    (certs, people)
}

/// The case: a material left out of the first notice, then its promise passes on the case
/// service's clock (warning and yellow on 25 Sep, red on 8 Oct).
async fn a_case_past_its_promise(
    b: &str,
    catalog: &ServiceProc,
) -> (ServiceProc, xiaoneng_e2e::proto::case::v1::Case, String) {
    let matter_id = crate::case::matter(catalog).await;
    let addr = catalog.addr();
    let env = [
        ("XIAONENG__DOMAIN__CATALOG_ADDR", addr.as_str()),
        ("XIAONENG__DOMAIN__BUSINESS_TIME", "2026-09-18T09:00:00+08:00"),
        ("XIAONENG__DOMAIN__WARN_DAYS", "2"),
        ("XIAONENG__DOMAIN__RED_AFTER_DAYS", "3"),
        ("XIAONENG__DOMAIN__TIMER_INTERVAL_MS", "100"),
    ];
    let mut case = ServiceProc::start_with(ServiceKind::Case, b, &env).await;
    let mut c = as_(&case, "clerk-01", &[roles::CLERK]).await;
    let mut k = crate::case::submit(&mut c, &matter_id, &["申请书"]).await;
    act!(c, k, start_pre_review, StartPreReviewRequest {}).unwrap();
    for m in ["营业执照复印件", "场所证明"] {
        act!(c, k, request_correction, RequestCorrectionRequest { materials: names(&[m]), reason: format!("缺少{m}") })
            .unwrap();
        act!(c, k, supply_materials, SupplyMaterialsRequest { materials: names(&[m]) }).unwrap();
    }
    act!(c, k, accept_case, AcceptCaseRequest {}).unwrap();
    assert_eq!(k.promised_deadline, "2026-09-24");
    crate::case::restart_at(&mut case, "2026-09-25T08:00:00+08:00").await;
    let mut c = as_(&case, "clerk-01", &[roles::CLERK]).await;
    crate::case::wait_fired(&case, &mut c, &k.id, &["promised/warning", "promised/yellow"], "25 Sep").await;
    crate::case::restart_at(&mut case, "2026-10-08T09:00:00+08:00").await;
    let mut c = as_(&case, "clerk-01", &[roles::CLERK]).await;
    let all = ["promised/warning", "promised/yellow", "promised/red"];
    crate::case::wait_fired(&case, &mut c, &k.id, &all, "8 Oct").await;

    (case, k, matter_id)
}

/// Three window 差评 of s1 on 30 Sep, each loop due 8 Oct and overdue on the 9th; the
/// services and the ratings' ids.
async fn three_bad_ratings_overdue(
    b: &str,
    catalog: &ServiceProc,
    matter_id: &str,
) -> (ServiceProc, ServiceProc, Vec<String>) {
    let addr = catalog.addr();
    use crate::queue::{call_and_finish, category, client, hall, issue, open, window};
    let queue = ServiceProc::start_with(ServiceKind::Queue, b, &[("XIAONENG__DOMAIN__CATALOG_ADDR", &addr)]).await;
    let eval_env = [
        ("XIAONENG__DOMAIN__BUSINESS_TIME", "2026-09-30T10:00:00+08:00"),
        ("XIAONENG__DOMAIN__OVERDUE_INTERVAL_MS", "100"),
    ];
    let mut eval = ServiceProc::start_with(ServiceKind::Evaluation, b, &eval_env).await;
    let mut m = client(&queue, "manager", &[roles::HALL_MANAGER]).await;
    let h = hall(&mut m, "督查大厅", vec![category("A", &[])]).await;
    let w = window(&mut m, &h.id, "ZH01", qpb::WindowKind::Comprehensive, &[], false).await;
    open(&mut m, &w, "s1").await;
    let mut kiosk = client(&queue, "kiosk", &[roles::SYSTEM]).await;
    let mut clerk = client(&queue, "s1", &[roles::CLERK]).await;
    let pad = token("pad", &[roles::SYSTEM], "410702");
    let mut pad = EvaluationServiceClient::new(channel(&eval.addr(), Some(&pad)).await);
    let mut ratings = Vec::new();
    for _ in 0..3 {
        let t = issue(&mut kiosk, &h.id, matter_id, qpb::Priority::Normal).await;
        assert_eq!(call_and_finish(&mut clerk, &w).await, Some(t.number));
        let r = super::rate_at_pad(&mut pad, &t.id, 2, "推诿").await;
        assert_eq!(r.r#loop.unwrap().step_due_date, "2026-10-08");
        ratings.push(r.id);
    }
    eval.kill();
    eval.set_env("XIAONENG__DOMAIN__BUSINESS_TIME", "2026-10-09T09:00:00+08:00");
    eval.restart().await;
    let edb = eval.db().await;
    eventually(60, "three loops reported overdue", || async {
        use prost::Message as _;
        let rows: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT payload FROM outbox WHERE event_type = 'xiaoneng.evaluation.events.v1.BadRatingLoopChanged'",
        )
        .fetch_all(&edb)
        .await
        .unwrap();
        let overdue = rows
            .iter()
            .filter(|p| {
                xiaoneng_e2e::proto::evaluation::events::v1::BadRatingLoopChanged::decode(p.as_slice()).unwrap().overdue
            })
            .count();
        (overdue == 3).then_some(())
    })
    .await;

    (queue, eval, ratings)
}

/// Everything published and applied; then the certificate sweep has had three more passes.
async fn settled(acc: &ServiceProc, services: &[&ServiceProc]) {
    let mut ids = Vec::new();
    for s in services.iter().copied() {
        eventually(60, "every event published", || async { (unpublished(s).await == 0).then_some(()) }).await;
        ids.extend(outbox_ids(s).await);
    }
    let adb = acc.db().await;
    let applied = || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE event_id = ANY($1)")
            .bind(&ids)
            .fetch_one(&adb)
            .await
            .unwrap();
        n as usize
    };
    eventually(180, "every event applied", || async { (applied().await == ids.len()).then_some(()) }).await;
    let sweeps = "background_passes_total{loop=\"certificate_expiry\"}";
    let before = acc.metric(sweeps).await;
    eventually(20, "three more sweeps", || async { (acc.metric(sweeps).await >= before + 3.0).then_some(()) }).await;
}

/// Every record of every topic delivered a second time: no second record.
async fn delivered_twice_makes_nothing(
    b: &str,
    acc: &ServiceProc,
    services: &[&ServiceProc],
    city: &mut AccountabilityServiceClient<xiaoneng_e2e::Intercepted>,
    got: &[(String, String, String, String)],
) {
    let dup = "events_duplicate_total{consumer=\"ledger\"}";
    let seen = acc.metric(dup).await;
    let mut again = 0;
    let mut published = 0;
    for s in services.iter().copied() {
        let n = outbox_ids(s).await.len();
        published += n;
        again += super::redeliver(b, &s.kind.topic(), n).await;
    }
    assert_eq!(again, published);
    eventually(180, "every redelivered event recognised", || async {
        (acc.metric(dup).await >= seen + again as f64).then_some(())
    })
    .await;
    assert_eq!(records(city).await, got, "duplicates make no second record");
}
