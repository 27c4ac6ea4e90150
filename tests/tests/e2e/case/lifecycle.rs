//! A case's life at the counter and in review: one-time notices and their violation, 容缺
//! acceptance, illegal transitions, optimistic concurrency, parallel review, extension,
//! suspension, delivery and withdrawal.

use tonic::Code;
use xiaoneng_e2e::proto::case::v1 as cpb;
use xiaoneng_e2e::proto::case::v1::case_service_client::CaseServiceClient;
use xiaoneng_e2e::{channel, shared_brokers};
use xiaoneng_kit::auth::roles;

use super::driver::{act, as_, as_in, names};
use super::{accepted, get, matter, start, submit, with_dept};
use crate::common::{reason, violations};

// The service runs from Mon 14 Sep 2026 (`BUSINESS_TIME`). Counted by hand on the State
// Council's 2026 notice (中秋 25-27 Sep, 国庆 1-7 Oct; make-up workdays Sun 20 Sep, Sat 10 Oct):
// +5 working days: 15, 16, 17, 18, 20 → Sun 20 Sep;
// +10: 21, 22, 23, 24, 28 → Mon 28 Sep;
// +20: 29, 30, 8 Oct, 9, 10, 12, 13, 14, 15, 16 → Fri 16 Oct;
// +30: 19-23, 26-30 Oct → Fri 30 Oct.
const TODAY: &str = "2026-09-14";

/// The second notice names 场所证明, missing from the start but left out of the first: a
/// violation of the one-time notice, with its own event; every change is in the history and
/// the outbox; a stale version is ABORTED.
#[tokio::test(flavor = "multi_thread")]
async fn a_material_left_out_of_the_first_notice_is_a_violation() {
    let (catalog, case) = start(&shared_brokers()).await;
    let matter_id = matter(&catalog).await;
    let mut c = as_(&case, "clerk-01", &[roles::CLERK]).await;
    let mut k = submit(&mut c, &matter_id, &["申请书"]).await;
    assert_eq!((k.state, k.version, k.matter_version), (cpb::CaseState::Submitted as i32, 1, 1));
    assert_eq!(k.first_responsible, "clerk-01");
    let mut missing = k.missing_materials.clone();
    missing.sort();
    assert_eq!(missing, names(&["场所证明", "营业执照复印件"]), "optional ones are never missing");
    let stale = k.clone();
    act!(c, k, start_pre_review, StartPreReviewRequest {}).unwrap();
    let mut stale = stale;
    let e = act!(c, stale, start_pre_review, StartPreReviewRequest {}).unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
    for m in ["营业执照复印件", "场所证明"] {
        act!(c, k, request_correction, RequestCorrectionRequest { materials: names(&[m]), reason: format!("缺少{m}") })
            .unwrap();
        act!(c, k, supply_materials, SupplyMaterialsRequest { materials: names(&[m]) }).unwrap();
    }
    assert!(k.notices[0].violation_materials.is_empty());
    assert_eq!(k.notices[1].violation_materials, ["场所证明"]);
    act!(c, k, accept_case, AcceptCaseRequest {}).unwrap();
    assert_eq!(k.state, cpb::CaseState::Accepted as i32);
    assert_eq!(k.accepted_date, TODAY);
    assert_eq!(k.promised_deadline, "2026-09-20");
    assert_eq!(k.statutory_deadline, "2026-10-16");
    let actions: Vec<_> = k.history.iter().map(|h| h.action.as_str()).collect();
    let want = ["submit", "start_pre_review", "request_correction", "supply_materials"];
    assert_eq!(actions, [&want[..], &want[2..], &["accept"]].concat());
    assert!(k.history.iter().all(|h| h.actor == "clerk-01" && h.actor_role == "clerk" && h.time.is_some()));
    let types: Vec<String> = sqlx::query_scalar("SELECT event_type FROM outbox WHERE event_key = $1")
        .bind(&k.id)
        .fetch_all(&case.db().await)
        .await
        .unwrap();
    let count = |suffix: &str| types.iter().filter(|t| t.ends_with(suffix)).count();
    assert_eq!((count("CaseTransitioned"), count("OneTimeNoticeViolated")), (7, 1));
}

/// Refusing an accepted case is FAILED_PRECONDITION with ILLEGAL_TRANSITION, and nothing changes.
#[tokio::test(flavor = "multi_thread")]
async fn an_illegal_transition_is_refused_and_changes_nothing() {
    let (catalog, case) = start(&shared_brokers()).await;
    let matter_id = matter(&catalog).await;
    let mut c = as_(&case, "clerk-01", &[roles::CLERK]).await;
    let mut k = accepted(&mut c, &matter_id).await;
    let before = k.clone();
    let e = act!(c, k, refuse_case, RefuseCaseRequest { reason: "x".into() }).unwrap_err();
    assert_eq!((e.code(), reason(&e)), (Code::FailedPrecondition, "ILLEGAL_TRANSITION".into()));
    let now = get(&mut c, &k.id).await;
    assert_eq!(now.state, cpb::CaseState::Accepted as i32, "still accepted");
    assert_eq!((now.version, now.history.len()), (before.version, before.history.len()), "nothing written");
}

/// 容缺受理: missing non-key materials need a due date and are then listed as tolerated; a
/// missing key material is never tolerated.
#[tokio::test(flavor = "multi_thread")]
async fn tolerated_acceptance_needs_a_due_date_and_never_a_key_material() {
    let (catalog, case) = start(&shared_brokers()).await;
    let matter_id = matter(&catalog).await;
    let mut c = as_(&case, "clerk-02", &[roles::CLERK]).await;
    let mut k = submit(&mut c, &matter_id, &["申请书"]).await;
    let e = act!(c, k, accept_case, AcceptCaseRequest {}).unwrap_err();
    assert_eq!(violations(&e), ["tolerance_due_date"]);
    let due = "2026-09-24".to_string();
    act!(c, k, accept_case, AcceptCaseRequest { tolerance_due_date: due.clone() }).unwrap();
    assert_eq!((k.tolerance_due_date.as_str(), k.tolerated_materials.len()), (due.as_str(), 2));
    let mut k = submit(&mut c, &matter_id, &["营业执照复印件"]).await;
    let e = act!(c, k, accept_case, AcceptCaseRequest { tolerance_due_date: due }).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("申请书"), "{}", e.message());
}

/// Eight clerks start the pre-review of one case at version 1 at once: one wins, the others
/// are ABORTED, and the case moved once.
#[tokio::test(flavor = "multi_thread")]
async fn of_concurrent_transitions_on_one_case_one_wins() {
    let (catalog, case) = start(&shared_brokers()).await;
    let matter_id = matter(&catalog).await;
    let mut c = as_(&case, "clerk-02", &[roles::CLERK]).await;
    let k = submit(&mut c, &matter_id, &["申请书", "营业执照复印件", "场所证明"]).await;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (mut c, mut k, start) = (c.clone(), k.clone(), start.clone());
        tasks.spawn(async move {
            start.wait().await;
            act!(c, k, start_pre_review, StartPreReviewRequest {})
        });
    }
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(()) => ok += 1,
            Err(e) => assert_eq!(e.code(), Code::Aborted),
        }
    }
    assert_eq!(ok, 1);
    let now = get(&mut c, &k.id).await;
    assert_eq!((now.version, now.history.len()), (2, 2));
}

/// An unknown material is INVALID_ARGUMENT, an unknown matter NOT_FOUND; another county's
/// clerk does not see the case; a citizen may not review.
#[tokio::test(flavor = "multi_thread")]
async fn bad_submissions_and_other_regions_are_refused() {
    let (catalog, case) = start(&shared_brokers()).await;
    let matter_id = matter(&catalog).await;
    let mut c = as_(&case, "clerk-02", &[roles::CLERK]).await;
    let submission = |matter_id: String, materials: &[&str]| cpb::SubmitCaseRequest {
        region_code: "410702".into(),
        matter_id,
        applicant: Some(cpb::Applicant { name: "李四".into(), ..Default::default() }),
        supplied_materials: names(materials),
        ..Default::default()
    };
    let unknown = c.submit_case(submission(matter_id.clone(), &["不相干的材料"])).await;
    assert_eq!(unknown.unwrap_err().code(), Code::InvalidArgument);
    let no_matter = c.submit_case(submission(uuid::Uuid::new_v4().to_string(), &[])).await;
    assert_eq!(no_matter.unwrap_err().code(), Code::NotFound);
    let mut k = submit(&mut c, &matter_id, &["申请书"]).await;
    let mut other = as_in(&case, "clerk-x", &[roles::CLERK], "410703").await;
    assert_eq!(get_err(&mut other, &k.id).await, Code::NotFound);
    let mut citizen = as_(&case, "citizen", &[roles::CITIZEN]).await;
    let denied = act!(citizen, k, start_pre_review, StartPreReviewRequest {});
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);
}

async fn get_err(c: &mut super::Cases, id: &str) -> Code {
    c.get_case(cpb::GetCaseRequest { id: id.into() }).await.unwrap_err().code()
}

/// 并联审批: the case waits for both departments; a reviewer concludes only their own step;
/// a denial needs a reason and denies the case with it.
#[tokio::test(flavor = "multi_thread")]
async fn a_parallel_review_is_denied_by_one_department() {
    let (catalog, case) = start(&shared_brokers()).await;
    let matter_id = matter(&catalog).await;
    let mut c = as_(&case, "clerk-03", &[roles::CLERK]).await;
    let reviewer = |who: &str, dept: &str| {
        let (addr, t) = (case.addr(), with_dept(who, dept));
        async move { CaseServiceClient::new(channel(&addr, Some(&t)).await) }
    };
    let (mut market, mut health) = (reviewer("rev-scj", "市场监管").await, reviewer("rev-wj", "卫健").await);
    let mut k = accepted(&mut c, &matter_id).await;
    act!(c, k, start_review, StartReviewRequest { departments: names(&["市场监管", "卫健"]) }).unwrap();
    let wrong =
        act!(market, k, conclude_review_step, ConcludeReviewStepRequest { department: "卫健".into(), approve: true });
    assert_eq!(wrong.unwrap_err().code(), Code::PermissionDenied);
    act!(market, k, conclude_review_step, ConcludeReviewStepRequest { department: "市场监管".into(), approve: true })
        .unwrap();
    assert_eq!(k.state, cpb::CaseState::InReview as i32);
    let no_reason = act!(health, k, conclude_review_step, ConcludeReviewStepRequest { department: "卫健".into() });
    assert_eq!(no_reason.unwrap_err().code(), Code::InvalidArgument);
    let why = "经营场所不符合卫生要求".to_string();
    act!(health, k, conclude_review_step, ConcludeReviewStepRequest { department: "卫健".into(), reason: why.clone() })
        .unwrap();
    assert_eq!((k.state, &k.denial_reason), (cpb::CaseState::Denied as i32, &why));
    assert_eq!(k.decided_date, TODAY);
    act!(c, k, close_case, CloseCaseRequest {}).unwrap();
    assert_eq!(k.state, cpb::CaseState::Closed as i32);
}

/// One extension of at most 10 working days moves the statutory deadline, not the promise;
/// suspension and resumption the same day pause nothing; approval sets the certificate
/// deadline; delivery and closing end it, and a closed case cannot be withdrawn.
#[tokio::test(flavor = "multi_thread")]
async fn an_approved_case_is_extended_once_suspended_delivered_and_closed() {
    let (catalog, case) = start(&shared_brokers()).await;
    let matter_id = matter(&catalog).await;
    let mut c = as_(&case, "clerk-03", &[roles::CLERK]).await;
    let t = with_dept("rev-scj", "市场监管");
    let mut market = CaseServiceClient::new(channel(&case.addr(), Some(&t)).await);
    let mut k = accepted(&mut c, &matter_id).await;
    act!(c, k, start_review, StartReviewRequest { departments: names(&["市场监管"]) }).unwrap();
    let (why, approver) = ("需现场核查".to_string(), "局长 张三".to_string());
    let too_long = act!(
        market,
        k,
        extend_deadline,
        ExtendDeadlineRequest { days: 11, reason: why.clone(), approver: approver.clone() }
    );
    assert_eq!(too_long.unwrap_err().code(), Code::InvalidArgument);
    act!(
        market,
        k,
        extend_deadline,
        ExtendDeadlineRequest { days: 10, reason: why.clone(), approver: approver.clone() }
    )
    .unwrap();
    assert_eq!((k.extension_days, k.statutory_deadline.clone()), (10, "2026-10-30".to_string()));
    assert_eq!(k.promised_deadline, "2026-09-20", "the promise is not extended");
    let again = act!(market, k, extend_deadline, ExtendDeadlineRequest { days: 5, reason: why, approver: approver });
    assert_eq!(again.unwrap_err().code(), Code::FailedPrecondition);
    act!(market, k, suspend_case, SuspendCaseRequest { reason: "专家评审".into() }).unwrap();
    assert_eq!(k.state, cpb::CaseState::Suspended as i32);
    act!(market, k, resume_case, ResumeCaseRequest {}).unwrap();
    assert_eq!((k.state, k.paused_working_days), (cpb::CaseState::InReview as i32, 0));
    act!(market, k, conclude_review_step, ConcludeReviewStepRequest { department: "市场监管".into(), approve: true })
        .unwrap();
    assert_eq!((k.state, k.certificate_deadline.clone()), (cpb::CaseState::Approved as i32, "2026-09-28".to_string()));
    act!(c, k, issue_certificate, IssueCertificateRequest { certificate_number: "JY34107020012345".into() }).unwrap();
    act!(c, k, deliver_case, DeliverCaseRequest { method: "邮寄送达".into() }).unwrap();
    assert_eq!((k.delivery_method.as_str(), k.certificate_number.as_str()), ("邮寄送达", "JY34107020012345"));
    act!(c, k, close_case, CloseCaseRequest {}).unwrap();
    let late = act!(c, k, withdraw_case, WithdrawCaseRequest { reason: "不办了".into() });
    assert_eq!(late.unwrap_err().code(), Code::FailedPrecondition);
    let actions: Vec<_> = k.history.iter().map(|h| h.action.as_str()).collect();
    let want = ["submit", "accept", "start_review", "extend_deadline", "suspend", "resume"];
    let then = ["conclude_review_step", "issue_certificate", "deliver", "close"];
    assert_eq!(actions, [&want[..], &then[..]].concat());
}

/// The applicant, as a citizen, submits and withdraws their own fresh application.
#[tokio::test(flavor = "multi_thread")]
async fn the_applicant_withdraws_a_fresh_application() {
    let (catalog, case) = start(&shared_brokers()).await;
    let matter_id = matter(&catalog).await;
    let mut me = as_(&case, "citizen-1", &[roles::CITIZEN]).await;
    let mut k = submit(&mut me, &matter_id, &["申请书"]).await;
    assert_eq!(k.first_responsible, "citizen-1");
    act!(me, k, withdraw_case, WithdrawCaseRequest { reason: "材料不全, 改日再来".into() }).unwrap();
    assert_eq!(k.state, cpb::CaseState::Withdrawn as i32);
}
