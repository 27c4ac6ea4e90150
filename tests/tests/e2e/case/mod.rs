//! The case service against the real stack and the real catalog: submission against the
//! matter in force, one-time notices and their violation, 容缺 acceptance with deadlines from
//! the working-day calendar, illegal transitions, optimistic concurrency, regions.

use tonic::Code;
use xiaoneng_e2e::proto::case::v1 as cpb;
use xiaoneng_e2e::proto::case::v1::case_service_client::CaseServiceClient;
use xiaoneng_e2e::proto::catalog::v1 as pb;
use xiaoneng_e2e::proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use xiaoneng_e2e::{channel, shared_brokers, token, Intercepted, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

mod authorization;
mod calendar;
mod clock;
pub(crate) mod driver;
mod lifecycle;
mod responsibility;

pub(crate) type Cases = CaseServiceClient<Intercepted>;

fn material(name: &str, key: bool, required: bool) -> pb::Material {
    pb::Material {
        name: name.into(),
        key,
        required,
        form: pb::MaterialForm::Original as i32,
        copies: 1,
        ..Default::default()
    }
}

/// A published matter of 410702 in force all 2026: 申请书 (key), 营业执照复印件 and 场所证明
/// (required), 委托书 (optional).
pub(crate) async fn matter(catalog: &ServiceProc) -> String {
    matter_with(catalog, "2026-01-01", vec![]).await
}

/// The business moment the case service of [`start`] runs from: Mon 14 Sep 2026, 09:00, so
/// that expected dates are written out from a fixed day, never from the wall clock.
const BUSINESS_TIME: &str = "2026-09-14T09:00:00+08:00";

/// The same matter, in force from `effective`, with `steps`.
async fn matter_with(catalog: &ServiceProc, effective: &str, steps: Vec<pb::Step>) -> String {
    matter_limited(catalog, effective, steps, 20, 5).await
}

/// The same matter with a statutory and a promised limit of its own (working days).
async fn matter_limited(
    catalog: &ServiceProc,
    effective: &str,
    steps: Vec<pb::Step>,
    statutory: i32,
    promised: i32,
) -> String {
    let admin = token("admin", &[roles::CATALOG_ADMIN], "410702");
    let mut c = CatalogServiceClient::new(channel(&catalog.addr(), Some(&admin)).await);
    let dept = crate::common::department(&mut c, "410702", "SCJGJ", "红旗区市场监督管理局").await;
    let draft = c
        .create_matter_draft(pb::CreateMatterDraftRequest {
            region_code: "410702".into(),
            terms: Some(pb::MatterTerms {
                implementation_code: "410702-SCJ-006".into(),
                name: "食品经营许可".into(),
                matter_type: pb::MatterType::License as i32,
                department_id: dept,
                statutory_limit_days: statutory,
                promised_limit_days: promised,
                free: true,
                channels: vec![pb::Channel::Window as i32],
                window_codes: vec!["ZH01".into()],
                max_visits: 1,
                materials: vec![
                    material("申请书", true, true),
                    material("营业执照复印件", false, true),
                    material("场所证明", false, true),
                    material("委托书", false, false),
                ],
                steps,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .matter
        .unwrap();
    c.publish_matter_version(pb::PublishMatterVersionRequest {
        matter_id: draft.matter_id.clone(),
        version: 1,
        effective_date: effective.to_string(),
    })
    .await
    .unwrap();
    draft.matter_id
}

pub(crate) async fn submit(c: &mut Cases, matter_id: &str, supplied: &[&str]) -> cpb::Case {
    c.submit_case(cpb::SubmitCaseRequest {
        region_code: "410702".into(),
        matter_id: matter_id.into(),
        applicant: Some(cpb::Applicant { name: "王小明".into(), phone: "13800000000".into(), ..Default::default() }),
        supplied_materials: supplied.iter().map(|s| s.to_string()).collect(),
        request_id: String::new(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .case
    .unwrap()
}

pub(crate) async fn start(catalog_brokers: &str) -> (ServiceProc, ServiceProc) {
    let catalog = ServiceProc::start(ServiceKind::Catalog, catalog_brokers).await;
    let addr = catalog.addr();
    let env = [("XIAONENG__DOMAIN__CATALOG_ADDR", addr.as_str()), ("XIAONENG__DOMAIN__BUSINESS_TIME", BUSINESS_TIME)];
    let case = ServiceProc::start_with(ServiceKind::Case, catalog_brokers, &env).await;
    (catalog, case)
}

pub(crate) fn with_dept(sub: &str, dept: &str) -> String {
    xiaoneng_kit::auth::TokenMinter::new(&xiaoneng_e2e::settings().auth).mint(
        sub,
        &[roles::REVIEWER],
        "410702",
        Some(dept),
        3600,
    )
}

pub(crate) async fn accepted(c: &mut Cases, matter_id: &str) -> cpb::Case {
    let k = submit(c, matter_id, &["申请书", "营业执照复印件", "场所证明"]).await;
    c.accept_case(cpb::AcceptCaseRequest { id: k.id, expected_version: 1, tolerance_due_date: String::new() })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap()
}

/// Which escalations fired on a case, as `clock/level` strings, sorted.
fn fired(k: &cpb::Case) -> Vec<String> {
    let mut v: Vec<String> = k
        .escalations
        .iter()
        .map(|e| {
            let level = match cpb::EscalationLevel::try_from(e.level).unwrap() {
                cpb::EscalationLevel::Warning => "warning",
                cpb::EscalationLevel::YellowCard => "yellow",
                cpb::EscalationLevel::RedCard => "red",
                cpb::EscalationLevel::Unspecified => "?",
            };
            format!("{}/{level}", e.clock)
        })
        .collect();
    v.sort();
    v
}

/// Restarts the case service (after a SIGKILL: no graceful anything) with its business clock at `at`.
pub(crate) async fn restart_at(case: &mut ServiceProc, at: &str) {
    case.kill();
    case.set_env("XIAONENG__DOMAIN__BUSINESS_TIME", at);
    case.restart().await;
}

async fn get(c: &mut Cases, id: &str) -> cpb::Case {
    c.get_case(cpb::GetCaseRequest { id: id.into() }).await.unwrap().into_inner().case.unwrap()
}

/// Waits for three more passes of the case service's timer loop.
async fn timer_passes(case: &ServiceProc) {
    let series = "background_passes_total{loop=\"case_timers\"}";
    let before = case.metric(series).await;
    xiaoneng_e2e::eventually(20, "three timer passes", move || async move {
        (case.metric(series).await >= before + 3.0).then_some(())
    })
    .await;
}

/// Waits until `id` has exactly the escalations `want` (and then checks they stay so).
pub(crate) async fn wait_fired(case: &ServiceProc, c: &mut Cases, id: &str, want: &[&str], what: &str) -> cpb::Case {
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    let cases = c.clone();
    xiaoneng_e2e::eventually(20, &format!("{what}: escalations {want:?}"), || {
        let (mut c, id, want) = (cases.clone(), id.to_string(), want.clone());
        async move { (fired(&get(&mut c, &id).await) == want).then_some(()) }
    })
    .await;
    // More timer passes must not add anything.
    timer_passes(case).await;
    let k = get(c, id).await;
    assert_eq!(fired(&k), want, "{what}: fired more than once or too early");
    k
}

/// Across restarts and a crash inside a firing pass, each (case, clock, level) escalation and
/// each deemed acceptance or 容缺 return is in the history once and in the outbox once.
async fn assert_each_firing_once(db: &sqlx::PgPool) {
    use prost::Message as _;
    use std::collections::BTreeMap;
    use xiaoneng_e2e::proto::case::events::v1::{CaseEscalated, CaseTransitioned};
    let history: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT case_id::text, action, split_part(reason, ':', 1) FROM case_history
         WHERE action IN ('warning', 'yellow_card', 'red_card', 'deemed_accept', 'return')",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let mut seen: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for (case, action, clock) in &history {
        let key = match action.as_str() {
            "deemed_accept" | "return" => (case.clone(), action.clone(), String::new()),
            _ => (case.clone(), action.clone(), clock.clone()),
        };
        *seen.entry(key).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "in the history more than once: {twice:?}");
    assert!(!seen.is_empty(), "nothing fired");

    let events: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT event_type, payload FROM outbox WHERE event_type LIKE 'xiaoneng.case.events.v1.Case%'")
            .fetch_all(db)
            .await
            .unwrap();
    let mut emitted: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for (kind, payload) in &events {
        let key = if kind.ends_with("CaseEscalated") {
            let e = CaseEscalated::decode(payload.as_slice()).unwrap();
            (e.case_id, e.level, e.clock)
        } else {
            let e = CaseTransitioned::decode(payload.as_slice()).unwrap();
            if !["deemed_accept", "return"].contains(&e.action.as_str()) {
                continue;
            }
            (e.case_id, e.action, String::new())
        };
        *emitted.entry(key).or_default() += 1;
    }
    let twice: Vec<_> = emitted.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "emitted more than once: {twice:?}");
    assert_eq!(emitted.len(), seen.len(), "one event per recorded firing");
}

/// A citizen token of the county reads and acts only on cases naming that citizen; another
/// citizen gets PERMISSION_DENIED on every method a citizen may call and nothing changes; a
/// citizen of another county does not see the case at all; staff of the region read it.
#[tokio::test(flavor = "multi_thread")]
async fn a_citizen_reads_and_acts_only_on_their_own_case() {
    let (catalog, case) = start(&shared_brokers()).await;
    let matter_id = matter(&catalog).await;
    let owner = token("citizen-wang", &[roles::CITIZEN], "410702");
    let mut mine = CaseServiceClient::new(channel(&case.addr(), Some(&owner)).await);
    let k = submit(&mut mine, &matter_id, &["申请书"]).await;
    assert_eq!(k.applicant.as_ref().unwrap().citizen_id, "citizen-wang");

    let other = token("citizen-li", &[roles::CITIZEN], "410702");
    let mut theirs = CaseServiceClient::new(channel(&case.addr(), Some(&other)).await);
    let (id, v) = (k.id.clone(), k.version);
    let denied = [
        theirs.get_case(cpb::GetCaseRequest { id: id.clone() }).await.map(|_| ()),
        theirs
            .withdraw_case(cpb::WithdrawCaseRequest { id: id.clone(), expected_version: v, reason: "不办了".into() })
            .await
            .map(|_| ()),
        theirs
            .supply_materials(cpb::SupplyMaterialsRequest {
                id: id.clone(),
                expected_version: v,
                materials: vec!["场所证明".into()],
            })
            .await
            .map(|_| ()),
        theirs
            .supply_tolerated_materials(cpb::SupplyToleratedMaterialsRequest {
                id: id.clone(),
                expected_version: v,
                materials: vec!["场所证明".into()],
            })
            .await
            .map(|_| ()),
    ];
    for (i, r) in denied.into_iter().enumerate() {
        assert_eq!(r.unwrap_err().code(), Code::PermissionDenied, "call {i}");
    }
    let elsewhere = token("citizen-wang", &[roles::CITIZEN], "410703");
    let mut far = CaseServiceClient::new(channel(&case.addr(), Some(&elsewhere)).await);
    let r = far.get_case(cpb::GetCaseRequest { id: id.clone() }).await;
    assert_eq!(r.unwrap_err().code(), Code::NotFound);

    let after = get(&mut mine, &id).await;
    assert_eq!((after.version, after.state, after.history.len()), (1, cpb::CaseState::Submitted as i32, 1));
    let clerk = token("clerk-01", &[roles::CLERK], "410702");
    let mut staff = CaseServiceClient::new(channel(&case.addr(), Some(&clerk)).await);
    assert_eq!(get(&mut staff, &id).await.applicant.unwrap().name, "王小明");

    // A walk-in applicant without an account: no citizen token reads that case.
    let walk_in = submit(&mut staff, &matter_id, &["申请书"]).await;
    let r = mine.get_case(cpb::GetCaseRequest { id: walk_in.id }).await;
    assert_eq!(r.unwrap_err().code(), Code::PermissionDenied);
    // A citizen cannot apply in someone else's name.
    let r = mine
        .submit_case(cpb::SubmitCaseRequest {
            region_code: "410702".into(),
            matter_id: matter_id.clone(),
            applicant: Some(cpb::Applicant {
                name: "李四".into(),
                citizen_id: "citizen-li".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(r.code(), Code::InvalidArgument);
}

/// A correction notice is stamped on the business clock, like every other record: with the
/// clock at Mon 14 Sep 2026 the notice is of that day, so a case noticed in time is never
/// deemed accepted, while an untouched one submitted the same day is, as of 14 Sep, once the
/// clock passes Mon 21 Sep (five working days).
#[tokio::test(flavor = "multi_thread")]
async fn a_correction_notice_is_dated_by_the_business_clock() {
    let brokers = shared_brokers();
    let catalog = ServiceProc::start(ServiceKind::Catalog, &brokers).await;
    let matter_id = matter_with(&catalog, "2026-01-01", vec![]).await;
    let catalog_addr = catalog.addr();
    let mut case = ServiceProc::start_with(
        ServiceKind::Case,
        &brokers,
        &[
            ("XIAONENG__DOMAIN__CATALOG_ADDR", catalog_addr.as_str()),
            ("XIAONENG__DOMAIN__BUSINESS_TIME", "2026-09-14T09:00:00+08:00"),
        ],
    )
    .await;
    let clerk = token("clerk-01", &[roles::CLERK], "410702");
    let mut c = CaseServiceClient::new(channel(&case.addr(), Some(&clerk)).await);
    let untouched = submit(&mut c, &matter_id, &["申请书"]).await;
    let noticed = submit(&mut c, &matter_id, &["申请书"]).await;
    let noticed = c
        .request_correction(cpb::RequestCorrectionRequest {
            id: noticed.id.clone(),
            expected_version: noticed.version,
            materials: vec!["营业执照复印件".into(), "场所证明".into()],
            reason: "缺少材料".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    let at = noticed.notices[0].time.clone().unwrap();
    let day = chrono::DateTime::from_timestamp(at.seconds, 0)
        .unwrap()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .date_naive();
    assert_eq!(day.to_string(), "2026-09-14", "the notice's day");

    restart_at(&mut case, "2026-09-22T09:00:00+08:00").await;
    let k = wait_state(&mut c, &untouched.id, cpb::CaseState::Accepted).await;
    assert!(k.deemed_accepted);
    assert_eq!(k.accepted_date, "2026-09-14");
    let n = get(&mut c, &noticed.id).await;
    assert_eq!(n.state, cpb::CaseState::CorrectionRequested as i32);
    assert!(!n.deemed_accepted);
}

/// Waits (20 s at most) until case `id` is in `state`.
async fn wait_state(c: &mut Cases, id: &str, state: cpb::CaseState) -> cpb::Case {
    let c = c.clone();
    xiaoneng_e2e::eventually(20, &format!("case {id} to be {state:?}"), || {
        let (mut c, id) = (c.clone(), id.to_string());
        async move {
            let k = get(&mut c, &id).await;
            (k.state == state as i32).then_some(k)
        }
    })
    .await
}

/// A case's escalation reaches the city's supervision ledger over the broker, once, beside
/// every transition of the case.
#[tokio::test(flavor = "multi_thread")]
async fn a_warning_reaches_the_accountability_ledger_once() {
    let broker = xiaoneng_e2e::Broker::start();
    let catalog = ServiceProc::start(ServiceKind::Catalog, &broker.brokers()).await;
    let matter_id = matter_with(&catalog, "2026-01-01", vec![]).await;
    let catalog_addr = catalog.addr();
    let mut case = ServiceProc::start_with(
        ServiceKind::Case,
        &broker.brokers(),
        &[
            ("XIAONENG__DOMAIN__CATALOG_ADDR", catalog_addr.as_str()),
            ("XIAONENG__DOMAIN__BUSINESS_TIME", "2026-09-14T09:00:00+08:00"),
            ("XIAONENG__DOMAIN__WARN_DAYS", "2"),
        ],
    )
    .await;
    let acc = ServiceProc::start(ServiceKind::Accountability, &broker.brokers()).await;
    let clerk = token("clerk-01", &[roles::CLERK], "410702");
    let mut c = CaseServiceClient::new(channel(&case.addr(), Some(&clerk)).await);
    let k = submit(&mut c, &matter_id, &["申请书", "营业执照复印件", "场所证明"]).await;
    let k = c
        .accept_case(cpb::AcceptCaseRequest { id: k.id.clone(), expected_version: k.version, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    // Promised 5 working days counted from the day after acceptance (as accepted Fri 18 Sep →
    // due Thu 24 Sep in the legal-clock test): 15, 16, 17, 18 and Sunday 20 Sep, a make-up
    // workday. On the 17th two working days are left (18, 20): the warning.
    assert_eq!(k.promised_deadline, "2026-09-20");
    restart_at(&mut case, "2026-09-17T09:00:00+08:00").await;
    let mut c = CaseServiceClient::new(channel(&case.addr(), Some(&clerk)).await);
    wait_fired(&case, &mut c, &k.id, &["promised/warning"], "17 Sep").await;
    // Made by the timer loop, not by a call: it still carries a trace of its own.
    let traces: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT trace_context FROM outbox WHERE event_type = 'xiaoneng.case.events.v1.CaseEscalated' AND event_key = $1",
    )
    .bind(&k.id)
    .fetch_all(&case.db().await)
    .await
    .unwrap();
    assert_eq!(traces.len(), 1);
    assert!(traces[0]["traceparent"].as_str().is_some_and(|t| t.starts_with("00-")), "{traces:?}");
    let seen = crate::common::ledger_of(&acc, &broker.brokers(), "xiaoneng.case.events", &k.id, 3).await;
    assert_eq!(seen["xiaoneng.case.events.v1.CaseEscalated"], 1);
    // Submitted and accepted.
    assert_eq!(seen["xiaoneng.case.events.v1.CaseTransitioned"], 2);
}
