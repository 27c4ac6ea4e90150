//! The case service against the real stack and the real catalog: submission against the
//! matter in force, one-time notices and their violation, 容缺 acceptance with deadlines from
//! the working-day calendar, illegal transitions, optimistic concurrency, regions.

use tonic::Code;
use tonic_types::StatusExt;
use xiaoneng_e2e::proto::case::v1 as cpb;
use xiaoneng_e2e::proto::case::v1::case_service_client::CaseServiceClient;
use xiaoneng_e2e::proto::catalog::v1 as pb;
use xiaoneng_e2e::proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use xiaoneng_e2e::{channel, shared_brokers, token, Intercepted, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

type Cases = CaseServiceClient<Intercepted>;

fn material(name: &str, key: bool, required: bool) -> pb::Material {
    pb::Material { name: name.into(), key, required, form: pb::MaterialForm::Original as i32, copies: 1, ..Default::default() }
}

/// A published matter of 410702: 申请书 (key), 营业执照复印件 and 场所证明 (required), 委托书 (optional).
async fn matter(catalog: &ServiceProc) -> String {
    let admin = token("admin", &[roles::CATALOG_ADMIN], "410702");
    let mut c = CatalogServiceClient::new(channel(&catalog.addr(), Some(&admin)).await);
    let dept = c
        .create_department(pb::CreateDepartmentRequest {
            department: Some(pb::Department {
                region_code: "410702".into(),
                code: "SCJGJ".into(),
                display_name: "红旗区市场监督管理局".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .department
        .unwrap()
        .id;
    let draft = c
        .create_matter_draft(pb::CreateMatterDraftRequest {
            region_code: "410702".into(),
            terms: Some(pb::MatterTerms {
                implementation_code: "410702-SCJ-006".into(),
                name: "食品经营许可".into(),
                matter_type: pb::MatterType::License as i32,
                department_id: dept,
                statutory_limit_days: 20,
                promised_limit_days: 5,
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
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .matter
        .unwrap();
    let yesterday = (xiaoneng_kit::today_cn() - chrono::Duration::days(1)).to_string();
    c.publish_matter_version(pb::PublishMatterVersionRequest {
        matter_id: draft.matter_id.clone(),
        version: 1,
        effective_date: yesterday,
    })
    .await
    .unwrap();
    draft.matter_id
}

async fn submit(c: &mut Cases, matter_id: &str, supplied: &[&str]) -> cpb::Case {
    c.submit_case(cpb::SubmitCaseRequest {
        region_code: "410702".into(),
        matter_id: matter_id.into(),
        applicant: Some(cpb::Applicant { name: "王小明".into(), phone: "13800000000".into(), agent_name: String::new() }),
        supplied_materials: supplied.iter().map(|s| s.to_string()).collect(),
        request_id: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
    .case
    .unwrap()
}

async fn start(catalog_brokers: &str) -> (ServiceProc, ServiceProc) {
    let catalog = ServiceProc::start(ServiceKind::Catalog, catalog_brokers).await;
    let addr = catalog.addr();
    let case = ServiceProc::start_with(ServiceKind::Case, catalog_brokers, &[("XIAONENG__DOMAIN__CATALOG_ADDR", &addr)]).await;
    (catalog, case)
}

#[tokio::test(flavor = "multi_thread")]
async fn one_time_notice_violation_and_deadlines_from_the_calendar() {
    let (catalog, case) = start(&shared_brokers()).await;
    let matter_id = matter(&catalog).await;
    let clerk = token("clerk-01", &[roles::CLERK], "410702");
    let mut c = CaseServiceClient::new(channel(&case.addr(), Some(&clerk)).await);

    let k = submit(&mut c, &matter_id, &["申请书"]).await;
    assert_eq!((k.state, k.version, k.matter_version), (cpb::CaseState::Submitted as i32, 1, 1));
    assert_eq!(k.first_responsible, "clerk-01");
    let mut missing = k.missing_materials.clone();
    missing.sort();
    let mut expected = vec!["营业执照复印件".to_string(), "场所证明".to_string()];
    expected.sort();
    assert_eq!(missing, expected, "optional materials are never missing");

    let k = c.start_pre_review(cpb::StartPreReviewRequest { id: k.id.clone(), expected_version: 1 }).await.unwrap();
    let k = k.into_inner().case.unwrap();
    // A stale version is ABORTED and changes nothing.
    let stale = c.start_pre_review(cpb::StartPreReviewRequest { id: k.id.clone(), expected_version: 1 }).await;
    assert_eq!(stale.unwrap_err().code(), Code::Aborted);

    // The first notice leaves 场所证明 out although it was missing: the second one that names it is a violation.
    let k = c
        .request_correction(cpb::RequestCorrectionRequest {
            id: k.id.clone(),
            expected_version: k.version,
            materials: vec!["营业执照复印件".into()],
            reason: "缺少营业执照复印件".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert!(k.notices[0].violation_materials.is_empty());
    let k = c
        .supply_materials(cpb::SupplyMaterialsRequest {
            id: k.id.clone(),
            expected_version: k.version,
            materials: vec!["营业执照复印件".into()],
        })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    let k = c
        .request_correction(cpb::RequestCorrectionRequest {
            id: k.id.clone(),
            expected_version: k.version,
            materials: vec!["场所证明".into()],
            reason: "缺少场所证明".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(k.notices[1].violation_materials, ["场所证明"]);
    let k = c
        .supply_materials(cpb::SupplyMaterialsRequest {
            id: k.id.clone(),
            expected_version: k.version,
            materials: vec!["场所证明".into()],
        })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    let k = c
        .accept_case(cpb::AcceptCaseRequest { id: k.id.clone(), expected_version: k.version, tolerance_due_date: String::new() })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(k.state, cpb::CaseState::Accepted as i32);
    let today = xiaoneng_kit::today_cn();
    let cal = xiaoneng_calendar::Calendar::national();
    assert_eq!(k.accepted_date, today.to_string());
    assert_eq!(k.promised_deadline, cal.add_working_days(today, 5).to_string());
    assert_eq!(k.statutory_deadline, cal.add_working_days(today, 20).to_string());

    // Illegal: refusing an accepted case. Nothing changes.
    let err = c
        .refuse_case(cpb::RefuseCaseRequest { id: k.id.clone(), expected_version: k.version, reason: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(err.get_error_details().error_info().unwrap().reason, "ILLEGAL_TRANSITION");
    let now = c.get_case(cpb::GetCaseRequest { id: k.id.clone() }).await.unwrap().into_inner().case.unwrap();
    assert_eq!((now.state, now.version), (k.state, k.version));
    let actions: Vec<_> = now.history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(
        actions,
        ["submit", "start_pre_review", "request_correction", "supply_materials", "request_correction", "supply_materials", "accept"]
    );
    assert!(now.history.iter().all(|h| h.actor == "clerk-01" && h.actor_role == "clerk" && h.time.is_some()));

    // Every change left its event; the violation its own.
    let types: Vec<String> = sqlx::query_scalar("SELECT event_type FROM outbox WHERE event_key = $1 ORDER BY id")
        .bind(&k.id)
        .fetch_all(&case.db().await)
        .await
        .unwrap();
    assert_eq!(types.iter().filter(|t| t.ends_with("CaseTransitioned")).count(), 7);
    assert_eq!(types.iter().filter(|t| t.ends_with("OneTimeNoticeViolated")).count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn tolerated_acceptance_concurrency_and_regions() {
    let (catalog, case) = start(&shared_brokers()).await;
    let matter_id = matter(&catalog).await;
    let clerk = token("clerk-02", &[roles::CLERK], "410702");
    let mut c = CaseServiceClient::new(channel(&case.addr(), Some(&clerk)).await);

    // 容缺受理: non-key materials missing need a due date; then they are listed as tolerated.
    let k = submit(&mut c, &matter_id, &["申请书"]).await;
    let err = c
        .accept_case(cpb::AcceptCaseRequest { id: k.id.clone(), expected_version: 1, tolerance_due_date: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.get_error_details().bad_request().unwrap().field_violations[0].field, "tolerance_due_date");
    let due = (xiaoneng_kit::today_cn() + chrono::Duration::days(10)).to_string();
    let k = c
        .accept_case(cpb::AcceptCaseRequest { id: k.id.clone(), expected_version: 1, tolerance_due_date: due.clone() })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(k.tolerance_due_date, due);
    assert_eq!(k.tolerated_materials.len(), 2);

    // A key material can never be missing.
    let k = submit(&mut c, &matter_id, &["营业执照复印件"]).await;
    let err = c
        .accept_case(cpb::AcceptCaseRequest { id: k.id.clone(), expected_version: 1, tolerance_due_date: due.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("申请书"), "{}", err.message());

    // Concurrent transitions on one case: exactly one wins.
    let k = submit(&mut c, &matter_id, &["申请书", "营业执照复印件", "场所证明"]).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut c = c.clone();
        let id = k.id.clone();
        tasks.push(tokio::spawn(async move {
            c.start_pre_review(cpb::StartPreReviewRequest { id, expected_version: 1 }).await.map(|_| ())
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(e) => assert_eq!(e.code(), Code::Aborted),
        }
    }
    assert_eq!(ok, 1);
    let now = c.get_case(cpb::GetCaseRequest { id: k.id.clone() }).await.unwrap().into_inner().case.unwrap();
    assert_eq!((now.version, now.history.len()), (2, 2));

    // Bad input and other regions.
    let unknown = c
        .submit_case(cpb::SubmitCaseRequest {
            region_code: "410702".into(),
            matter_id: matter_id.clone(),
            applicant: Some(cpb::Applicant { name: "李四".into(), ..Default::default() }),
            supplied_materials: vec!["不相干的材料".into()],
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    let no_matter = c
        .submit_case(cpb::SubmitCaseRequest {
            region_code: "410702".into(),
            matter_id: uuid::Uuid::new_v4().to_string(),
            applicant: Some(cpb::Applicant { name: "李四".into(), ..Default::default() }),
            supplied_materials: vec![],
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(no_matter.code(), Code::NotFound);
    let other = token("clerk-x", &[roles::CLERK], "410703");
    let mut other = CaseServiceClient::new(channel(&case.addr(), Some(&other)).await);
    assert_eq!(other.get_case(cpb::GetCaseRequest { id: k.id.clone() }).await.unwrap_err().code(), Code::NotFound);
    let citizen = token("citizen", &[roles::CITIZEN], "410702");
    let mut citizen = CaseServiceClient::new(channel(&case.addr(), Some(&citizen)).await);
    let denied = citizen.start_pre_review(cpb::StartPreReviewRequest { id: k.id.clone(), expected_version: 2 }).await;
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);
}

fn with_dept(sub: &str, dept: &str) -> String {
    xiaoneng_kit::auth::TokenMinter::new(&xiaoneng_e2e::settings().auth).mint(sub, &[roles::REVIEWER], "410702", Some(dept), 3600)
}

async fn accepted(c: &mut Cases, matter_id: &str) -> cpb::Case {
    let k = submit(c, matter_id, &["申请书", "营业执照复印件", "场所证明"]).await;
    c.accept_case(cpb::AcceptCaseRequest { id: k.id, expected_version: 1, tolerance_due_date: String::new() })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_review_extension_suspension_and_delivery() {
    let (catalog, case) = start(&shared_brokers()).await;
    let matter_id = matter(&catalog).await;
    let clerk = token("clerk-03", &[roles::CLERK], "410702");
    let mut c = CaseServiceClient::new(channel(&case.addr(), Some(&clerk)).await);
    let mut market = CaseServiceClient::new(channel(&case.addr(), Some(&with_dept("rev-scj", "市场监管"))).await);
    let mut health = CaseServiceClient::new(channel(&case.addr(), Some(&with_dept("rev-wj", "卫健"))).await);
    let today = xiaoneng_kit::today_cn();
    let cal = xiaoneng_calendar::Calendar::national();

    // 并联审批: the case waits for both departments; one denial denies it with its reason.
    let k = accepted(&mut c, &matter_id).await;
    let k = c
        .start_review(cpb::StartReviewRequest {
            id: k.id.clone(),
            expected_version: k.version,
            departments: vec!["市场监管".into(), "卫健".into()],
        })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    let conclude = |k: &cpb::Case, dept: &str, approve: bool, reason: &str| cpb::ConcludeReviewStepRequest {
        id: k.id.clone(),
        expected_version: k.version,
        department: dept.into(),
        approve,
        reason: reason.into(),
    };
    let wrong = market.conclude_review_step(conclude(&k, "卫健", true, "")).await.unwrap_err();
    assert_eq!(wrong.code(), Code::PermissionDenied);
    let k = market.conclude_review_step(conclude(&k, "市场监管", true, "")).await.unwrap().into_inner().case.unwrap();
    assert_eq!(k.state, cpb::CaseState::InReview as i32);
    let no_reason = health.conclude_review_step(conclude(&k, "卫健", false, "")).await.unwrap_err();
    assert_eq!(no_reason.code(), Code::InvalidArgument);
    let k = health
        .conclude_review_step(conclude(&k, "卫健", false, "经营场所不符合卫生要求"))
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(k.state, cpb::CaseState::Denied as i32);
    assert_eq!(k.denial_reason, "经营场所不符合卫生要求");
    assert_eq!(k.decided_date, today.to_string());
    let k = c.close_case(cpb::CloseCaseRequest { id: k.id.clone(), expected_version: k.version }).await.unwrap();
    assert_eq!(k.into_inner().case.unwrap().state, cpb::CaseState::Closed as i32);

    // One department: extension once (+10 at most), suspension stops the clock, then approval to delivery.
    let k = accepted(&mut c, &matter_id).await;
    let k = c
        .start_review(cpb::StartReviewRequest { id: k.id.clone(), expected_version: k.version, departments: vec!["市场监管".into()] })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    let extend = |k: &cpb::Case, days: i32| cpb::ExtendDeadlineRequest {
        id: k.id.clone(),
        expected_version: k.version,
        days,
        reason: "需现场核查".into(),
        approver: "局长 张三".into(),
    };
    assert_eq!(market.extend_deadline(extend(&k, 11)).await.unwrap_err().code(), Code::InvalidArgument);
    let k = market.extend_deadline(extend(&k, 10)).await.unwrap().into_inner().case.unwrap();
    assert_eq!(k.extension_days, 10);
    assert_eq!(k.statutory_deadline, cal.add_working_days(today, 30).to_string());
    assert_eq!(k.promised_deadline, cal.add_working_days(today, 5).to_string(), "the promise is not extended");
    assert_eq!(market.extend_deadline(extend(&k, 5)).await.unwrap_err().code(), Code::FailedPrecondition);
    let k = market
        .suspend_case(cpb::SuspendCaseRequest { id: k.id.clone(), expected_version: k.version, reason: "专家评审".into() })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(k.state, cpb::CaseState::Suspended as i32);
    let k = market
        .resume_case(cpb::ResumeCaseRequest { id: k.id.clone(), expected_version: k.version })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!((k.state, k.paused_working_days), (cpb::CaseState::InReview as i32, 0));
    let k = market.conclude_review_step(conclude(&k, "市场监管", true, "")).await.unwrap().into_inner().case.unwrap();
    assert_eq!(k.state, cpb::CaseState::Approved as i32);
    assert_eq!(k.certificate_deadline, cal.add_working_days(today, 10).to_string());
    let k = c
        .issue_certificate(cpb::IssueCertificateRequest {
            id: k.id.clone(),
            expected_version: k.version,
            certificate_number: "JY34107020012345".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    let k = c
        .deliver_case(cpb::DeliverCaseRequest { id: k.id.clone(), expected_version: k.version, method: "邮寄送达".into() })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!((k.delivery_method.as_str(), k.certificate_number.as_str()), ("邮寄送达", "JY34107020012345"));
    let k = c.close_case(cpb::CloseCaseRequest { id: k.id.clone(), expected_version: k.version }).await.unwrap().into_inner().case.unwrap();
    assert_eq!(k.state, cpb::CaseState::Closed as i32);
    let late = c
        .withdraw_case(cpb::WithdrawCaseRequest { id: k.id.clone(), expected_version: k.version, reason: "不办了".into() })
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    let actions: Vec<_> = k.history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(
        actions,
        ["submit", "accept", "start_review", "extend_deadline", "suspend", "resume", "conclude_review_step", "issue_certificate", "deliver", "close"]
    );

    // The applicant withdraws a fresh application.
    let citizen = token("citizen-1", &[roles::CITIZEN], "410702");
    let mut me = CaseServiceClient::new(channel(&case.addr(), Some(&citizen)).await);
    let k = submit(&mut me, &matter_id, &["申请书"]).await;
    assert_eq!(k.first_responsible, "citizen-1");
    let k = me
        .withdraw_case(cpb::WithdrawCaseRequest { id: k.id.clone(), expected_version: 1, reason: "材料不全, 改日再来".into() })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(k.state, cpb::CaseState::Withdrawn as i32);
}
