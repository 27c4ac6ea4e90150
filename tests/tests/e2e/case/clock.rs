//! The legal clock against the real stack, on the 2026 national calendar, driven by the
//! service's business clock across SIGKILL restarts: warnings, yellow and red cards fire once
//! each, on their day (not before); deemed acceptance; suspension; 容缺 commitments.

use tonic::Code;
use xiaoneng_e2e::proto::case::v1 as cpb;
use xiaoneng_e2e::proto::catalog::v1 as pb;
use xiaoneng_e2e::{shared_brokers, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

use super::driver::{act, as_, names};
use super::{
    accepted, assert_each_firing_once, fired, get, matter_with, submit, timer_passes, wait_fired, wait_state, Cases,
};

/// The case service on a business clock (warn 2 working days ahead, red after 3 overdue,
/// timers every 100 ms), a matter with a 3-day review step 审查, and a clerk.
struct Clock {
    _catalog: ServiceProc,
    case: ServiceProc,
    matter_id: String,
    clerk: Cases,
}

impl Clock {
    async fn start(at: &str) -> Self {
        let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
        let step = pb::Step { name: "审查".into(), description: "材料审查".into(), limit_days: 3 };
        let matter_id = matter_with(&catalog, "2026-01-01", vec![step]).await;
        let addr = catalog.addr();
        let env = [
            ("XIAONENG__DOMAIN__CATALOG_ADDR", addr.as_str()),
            ("XIAONENG__DOMAIN__BUSINESS_TIME", at),
            ("XIAONENG__DOMAIN__WARN_DAYS", "2"),
            ("XIAONENG__DOMAIN__RED_AFTER_DAYS", "3"),
            ("XIAONENG__DOMAIN__TIMER_INTERVAL_MS", "100"),
        ];
        let case = ServiceProc::start_with(ServiceKind::Case, &shared_brokers(), &env).await;
        let clerk = as_(&case, "clerk-01", &[roles::CLERK]).await;
        Clock { _catalog: catalog, case, matter_id, clerk }
    }

    /// Kills the service and starts it again at `at` on the business clock.
    async fn at(&mut self, at: &str) {
        super::restart_at(&mut self.case, at).await;
        self.clerk = as_(&self.case, "clerk-01", &[roles::CLERK]).await;
    }

    async fn fired(&mut self, k: &cpb::Case, want: &[&str], when: &str) -> cpb::Case {
        wait_fired(&self.case, &mut self.clerk, &k.id, want, when).await
    }
}

/// A review step of 3 days from Fri 18 Sep is due Tue 22nd (Sun 20th is a make-up workday);
/// the 5-day promise Thu 24th. Each level fires once, on its day, also when the service dies
/// inside the firing pass on the 24th; a bad step name is refused.
#[tokio::test(flavor = "multi_thread")]
async fn the_review_step_and_the_promise_escalate_once_on_their_days() {
    let mut t = Clock::start("2026-09-18T09:00:00+08:00").await;
    let mut a = accepted(&mut t.clerk, &t.matter_id).await;
    assert_eq!((a.accepted_date.as_str(), a.promised_deadline.as_str()), ("2026-09-18", "2026-09-24"));
    let c = &mut t.clerk;
    let bad = act!(c, a, start_review, StartReviewRequest { step: "不存在".into() });
    assert_eq!(bad.unwrap_err().code(), Code::InvalidArgument);
    act!(c, a, start_review, StartReviewRequest { departments: names(&["市场监管"]), step: "审查".into() }).unwrap();
    assert_eq!((a.review_step_limit_days, a.review_started_date.as_str()), (3, "2026-09-18"));
    timer_passes(&t.case).await;
    assert!(fired(&get(&mut t.clerk, &a.id).await).is_empty(), "nothing is due on the 18th");
    t.at("2026-09-21T09:00:00+08:00").await;
    t.fired(&a, &["step:市场监管/warning"], "21 Sep").await;
    for at in ["2026-09-22T00:00:01+08:00", "2026-09-22T10:00:00+08:00"] {
        t.at(at).await;
        t.fired(&a, &["promised/warning", "step:市场监管/warning"], at).await;
    }
    // The first start on the 24th dies inside its firing pass, before the commit.
    t.case.kill();
    t.case.set_env("XIAONENG__DOMAIN__BUSINESS_TIME", "2026-09-24T09:00:00+08:00");
    t.case.set_env("XIAONENG_FAILPOINTS", "case.timers.before_commit");
    t.case.start_detached();
    assert!(!t.case.wait_exit(60).await.success(), "died at the crash point");
    t.case.set_env("XIAONENG_FAILPOINTS", "");
    t.at("2026-09-24T09:00:00+08:00").await;
    let step = ["step:市场监管/warning", "step:市场监管/yellow"];
    t.fired(&a, &[&["promised/warning"], &step[..]].concat(), "24 Sep").await;
    t.at("2026-09-25T08:00:00+08:00").await;
    t.fired(&a, &[&["promised/warning", "promised/yellow"], &step[..]].concat(), "25 Sep").await;
    // Red: more than 3 working days overdue (28, 29, 30 Sep, 8 Oct).
    t.at("2026-10-08T09:00:00+08:00").await;
    let all = ["promised/warning", "promised/yellow", "promised/red", step[0], step[1], "step:市场监管/red"];
    let a = t.fired(&a, &all, "8 Oct").await;
    let levels = ["warning", "yellow_card", "red_card"];
    assert_eq!(a.history.iter().filter(|h| levels.contains(&h.action.as_str())).count(), 6);
    let for_a: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE event_type = 'xiaoneng.case.events.v1.CaseEscalated' AND event_key = $1",
    )
    .bind(&a.id)
    .fetch_one(&t.case.db().await)
    .await
    .unwrap();
    assert_eq!(for_a, 6);
    assert_each_firing_once(&t.case.db().await).await;
}

/// A submission nobody touches is still submitted on Thu 24 Sep, deemed accepted on the 25th
/// as of its submission day (recorded as the system's act), and its overdue promise warns and
/// shows yellow at once, red on 8 Oct.
#[tokio::test(flavor = "multi_thread")]
async fn an_untouched_submission_is_deemed_accepted_after_five_working_days() {
    let mut t = Clock::start("2026-09-18T09:00:00+08:00").await;
    let b = submit(&mut t.clerk, &t.matter_id, &["申请书"]).await;
    t.at("2026-09-24T09:00:00+08:00").await;
    timer_passes(&t.case).await;
    let still = get(&mut t.clerk, &b.id).await.state;
    assert_eq!(still, cpb::CaseState::Submitted as i32, "the fifth working day is not over");
    t.at("2026-09-25T08:00:00+08:00").await;
    let b = t.fired(&b, &["promised/warning", "promised/yellow"], "B deemed accepted").await;
    assert_eq!((b.state, b.deemed_accepted), (cpb::CaseState::Accepted as i32, true));
    assert_eq!(b.accepted_date, "2026-09-18");
    let deemed = b.history.iter().find(|h| h.action == "deemed_accept").expect("recorded");
    assert_eq!((deemed.actor.as_str(), deemed.actor_role.as_str()), ("system", "system"));
    t.at("2026-10-08T09:00:00+08:00").await;
    t.fired(&b, &["promised/warning", "promised/yellow", "promised/red"], "8 Oct").await;
    assert_each_firing_once(&t.case.db().await).await;
}

/// Suspended on Mon 21st, a case due Thu 24th does not warn on the 22nd; resumed on the 24th
/// its promise moves by the 3 paused working days (22, 23, 24) to the 30th, with no warning
/// yet. A case accepted on the 24th is due 9 Oct (Mid-Autumn and National Day skipped).
#[tokio::test(flavor = "multi_thread")]
async fn a_suspension_moves_the_deadline_by_the_paused_working_days() {
    let mut t = Clock::start("2026-09-18T09:00:00+08:00").await;
    let mut d = accepted(&mut t.clerk, &t.matter_id).await;
    t.at("2026-09-21T09:00:00+08:00").await;
    let mut r = as_(&t.case, "rev-01", &[roles::REVIEWER]).await;
    act!(r, d, suspend_case, SuspendCaseRequest { reason: "专家评审".into() }).unwrap();
    t.at("2026-09-22T10:00:00+08:00").await;
    t.fired(&d, &[], "a suspended clock does not warn").await;
    t.at("2026-09-24T09:00:00+08:00").await;
    let mut r = as_(&t.case, "rev-01", &[roles::REVIEWER]).await;
    act!(r, d, resume_case, ResumeCaseRequest {}).unwrap();
    assert_eq!((d.paused_working_days, d.promised_deadline.as_str()), (3, "2026-09-30"));
    t.fired(&d, &[], "3 days left after resuming").await;
    let k = accepted(&mut t.clerk, &t.matter_id).await;
    assert_eq!(k.promised_deadline, "2026-10-09");
    t.at("2026-10-08T09:00:00+08:00").await;
    t.fired(&d, &["promised/warning", "promised/yellow"], "8 Oct").await;
}

/// Two cases accepted with 场所证明 tolerated until Tue 22nd: the one that supplies it on the
/// 21st stays accepted (a second supply finds nothing outstanding), the other is returned
/// once the date has passed, with the material named.
#[tokio::test(flavor = "multi_thread")]
async fn an_unmet_tolerance_commitment_returns_the_case() {
    let mut t = Clock::start("2026-09-18T09:00:00+08:00").await;
    let mut cases = Vec::new();
    for _ in 0..2 {
        let mut k = submit(&mut t.clerk, &t.matter_id, &["申请书", "营业执照复印件"]).await;
        let c = &mut t.clerk;
        act!(c, k, accept_case, AcceptCaseRequest { tolerance_due_date: "2026-09-22".into() }).unwrap();
        assert_eq!(k.tolerated_materials, ["场所证明"]);
        cases.push(k);
    }
    let (e, mut f) = (cases[0].clone(), cases[1].clone());
    t.at("2026-09-21T09:00:00+08:00").await;
    let c = &mut t.clerk;
    act!(c, f, supply_tolerated_materials, SupplyToleratedMaterialsRequest { materials: names(&["场所证明"]) })
        .unwrap();
    let again =
        act!(c, f, supply_tolerated_materials, SupplyToleratedMaterialsRequest { materials: names(&["场所证明"]) });
    assert_eq!(again.unwrap_err().code(), Code::InvalidArgument, "nothing is outstanding");
    t.at("2026-09-25T08:00:00+08:00").await;
    let e = wait_state(&mut t.clerk, &e.id, cpb::CaseState::Returned).await;
    assert!(e.history.iter().any(|h| h.action == "return" && h.reason.contains("场所证明")), "{:?}", e.history);
    timer_passes(&t.case).await;
    let f = get(&mut t.clerk, &f.id).await.state;
    assert_eq!(f, cpb::CaseState::Accepted as i32, "F met its commitment");
    assert_each_firing_once(&t.case.db().await).await;
}

/// Time runs faster (`domain.business_clock_rate`): at 4,320× (a business day in 20 real
/// seconds, no restart) the review step's warning and the promise's warning fire during the
/// run, each on its day. The step (3 working days from Fri 18 Sep: Sun 20th, a make-up
/// workday, Mon 21st, Tue 22nd) has two working days left on the 20th; the promise (5: the
/// 20th to Thu 24th) on the 22nd. (The test above restarts on the 21st, so it sees the step's
/// warning then.)
#[tokio::test(flavor = "multi_thread")]
async fn a_faster_business_clock_fires_the_warnings_on_their_days_during_the_run() {
    let catalog = ServiceProc::start(ServiceKind::Catalog, &shared_brokers()).await;
    let step = pb::Step { name: "审查".into(), description: "材料审查".into(), limit_days: 3 };
    let matter_id = matter_with(&catalog, "2026-01-01", vec![step]).await;
    let addr = catalog.addr();
    let env = [
        ("XIAONENG__DOMAIN__CATALOG_ADDR", addr.as_str()),
        ("XIAONENG__DOMAIN__BUSINESS_TIME", "2026-09-18T00:30:00+08:00"),
        ("XIAONENG__DOMAIN__BUSINESS_CLOCK_RATE", "4320"),
        ("XIAONENG__DOMAIN__WARN_DAYS", "2"),
        ("XIAONENG__DOMAIN__TIMER_INTERVAL_MS", "100"),
    ];
    let case = ServiceProc::start_with(ServiceKind::Case, &shared_brokers(), &env).await;
    let mut clerk = as_(&case, "clerk-01", &[roles::CLERK]).await;
    let mut a = accepted(&mut clerk, &matter_id).await;
    assert_eq!((a.accepted_date.as_str(), a.promised_deadline.as_str()), ("2026-09-18", "2026-09-24"));
    let c = &mut clerk;
    act!(c, a, start_review, StartReviewRequest { departments: names(&["市场监管"]), step: "审查".into() }).unwrap();
    let cases = clerk.clone();
    let k = xiaoneng_e2e::eventually(150, "both warnings on the fast clock", || {
        let (mut c, id) = (cases.clone(), a.id.clone());
        async move {
            let k = get(&mut c, &id).await;
            (fired(&k).len() >= 2).then_some(k)
        }
    })
    .await;
    let day = |clock: &str| {
        let e = k.escalations.iter().find(|e| e.clock == clock).expect(clock);
        let t = e.time.clone().unwrap();
        chrono::DateTime::from_timestamp(t.seconds, 0).unwrap().with_timezone(&xiaoneng_kit::clock::cst()).date_naive()
    };
    assert_eq!(fired(&k)[..2], ["promised/warning", "step:市场监管/warning"]);
    assert_eq!(
        (day("step:市场监管").to_string(), day("promised").to_string()),
        ("2026-09-20".into(), "2026-09-22".into())
    );
}
