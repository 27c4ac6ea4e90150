//! 首问负责 through an inquiry and referrals, 代办 agents, key-project flags for supervisors,
//! and region-scoped listing for the city.

use tonic::Code;
use xiaoneng_e2e::proto::case::v1 as cpb;
use xiaoneng_e2e::proto::case::v1::case_service_client::CaseServiceClient;
use xiaoneng_e2e::{channel, shared_brokers, ServiceProc};
use xiaoneng_kit::auth::roles;

use super::driver::{act, as_, as_in};
use super::{matter, start, submit, Cases};
use crate::common::violations;

/// clerk-07 of the 综合窗口, first asked.
async fn first_asked(case: &ServiceProc) -> Cases {
    let minter = xiaoneng_kit::auth::TokenMinter::new(&xiaoneng_e2e::settings().auth);
    let t = minter.mint("clerk-07", &[roles::CLERK], "410702", Some("综合窗口"), 3600);
    CaseServiceClient::new(channel(&case.addr(), Some(&t)).await)
}

/// An inquiry to clerk-07, referred to 市场监管局 (赵六).
async fn referred_inquiry(c: &mut Cases) -> cpb::Inquiry {
    let inq = c.open_inquiry(cpb::OpenInquiryRequest {
        region_code: "410702".into(),
        citizen_name: "王小明".into(),
        question: "开饭店要办什么证?".into(),
        department: String::new(),
    });
    let inq = inq.await.unwrap().into_inner().inquiry.unwrap();
    assert_eq!((inq.first_responsible.as_str(), inq.handling_department.as_str()), ("clerk-07", "综合窗口"));
    let refer = |department: &str, handler: &str| cpb::ReferInquiryRequest {
        id: inq.id.clone(),
        department: department.into(),
        handler: handler.into(),
        reason: "属市场监管职责".into(),
    };
    let bad = c.refer_inquiry(refer(" ", "")).await.unwrap_err();
    assert_eq!(violations(&bad), ["department", "handler"]);
    let inq = c.refer_inquiry(refer("红旗区市场监督管理局", "赵六")).await.unwrap().into_inner().inquiry.unwrap();
    let r = &inq.referrals[0];
    assert_eq!((r.from_department.as_str(), r.to_department.as_str()), ("综合窗口", "红旗区市场监督管理局"));
    assert_eq!(inq.first_responsible, "clerk-07");
    inq
}

/// An agent (代办) applies later at another window for the citizen who first asked clerk-07:
/// the case keeps clerk-07 as first responsible and the inquiry's department and handler, a
/// referral of the case names the next; the inquiry leads to one case only; the city lists
/// the inquiry with its case, another county nothing.
#[tokio::test(flavor = "multi_thread")]
async fn the_first_responsible_carries_from_the_inquiry_through_referrals() {
    let (catalog, case) = start(&shared_brokers()).await;
    let matter_id = matter(&catalog).await;
    let inq = referred_inquiry(&mut first_asked(&case).await).await;
    let mut c9 = as_(&case, "clerk-09", &[roles::CLERK]).await;
    let applicant = cpb::Applicant {
        name: "王小明".into(),
        phone: "13800000000".into(),
        agent_name: "帮办员 刘".into(),
        agent_kind: "代办".into(),
        ..Default::default()
    };
    let submission = |applicant: cpb::Applicant, materials: &[&str]| cpb::SubmitCaseRequest {
        region_code: "410702".into(),
        matter_id: matter_id.clone(),
        applicant: Some(applicant),
        supplied_materials: materials.iter().map(|m| m.to_string()).collect(),
        inquiry_id: inq.id.clone(),
        ..Default::default()
    };
    let all = ["申请书", "营业执照复印件", "场所证明"];
    let mut k = c9.submit_case(submission(applicant.clone(), &all)).await.unwrap().into_inner().case.unwrap();
    assert_eq!(k.first_responsible, "clerk-07");
    assert_eq!((k.handling_department.as_str(), k.handler.as_str()), ("红旗区市场监督管理局", "赵六"));
    let a = k.applicant.clone().unwrap();
    assert_eq!((a.agent_name.as_str(), a.agent_kind.as_str()), ("帮办员 刘", "代办"));
    assert_eq!(k.history[0].actor, "clerk-09", "who did it is recorded");
    let reused = c9.submit_case(submission(applicant.clone(), &[])).await.unwrap_err();
    assert_eq!(reused.code(), Code::FailedPrecondition);
    let odd = cpb::Applicant { agent_kind: "托人".into(), agent_name: "某".into(), ..applicant };
    let bad_agent = c9.submit_case(cpb::SubmitCaseRequest { inquiry_id: String::new(), ..submission(odd, &[]) });
    assert_eq!(bad_agent.await.unwrap_err().code(), Code::InvalidArgument);
    act!(
        c9,
        k,
        refer_case,
        ReferCaseRequest {
            department: "红旗区卫生健康委员会".into(),
            handler: "钱七".into(),
            reason: "涉及卫生许可".into(),
        }
    )
    .unwrap();
    assert_eq!((k.first_responsible.as_str(), k.handler.as_str()), ("clerk-07", "钱七"));
    assert_eq!(k.referrals[0].from_department, "红旗区市场监督管理局");
    let mut city = as_in(&case, "sup-city", &[roles::SUPERVISOR], "410700").await;
    let listed = city.list_inquiries(cpb::ListInquiriesRequest::default()).await.unwrap().into_inner().inquiries;
    let seen: Vec<_> =
        listed.iter().map(|i| (i.case_id.as_str(), i.first_responsible.as_str(), i.referrals.len())).collect();
    assert_eq!(seen, [(k.id.as_str(), "clerk-07", 1)]);
    let mut far = as_in(&case, "sup-3", &[roles::SUPERVISOR], "410703").await;
    let none = far.list_inquiries(cpb::ListInquiriesRequest::default()).await.unwrap();
    assert!(none.into_inner().inquiries.is_empty());
}

/// 联办/督办 flags are set by supervisors only; the city lists its counties' cases (flagged
/// only, or page by page), another county sees none of them and may not ask for this one.
#[tokio::test(flavor = "multi_thread")]
async fn key_project_flags_are_for_supervisors_and_the_city_lists_its_counties() {
    let (catalog, case) = start(&shared_brokers()).await;
    let matter_id = matter(&catalog).await;
    let mut clerk = as_(&case, "clerk-09", &[roles::CLERK]).await;
    let mut k = submit(&mut clerk, &matter_id, &["申请书"]).await;
    submit(&mut clerk, &matter_id, &["申请书"]).await;
    let denied = act!(
        clerk,
        k,
        set_case_flags,
        SetCaseFlagsRequest { joint: true, supervised: true, reason: "市重点项目".into() }
    );
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);
    let mut sup = as_(&case, "sup-1", &[roles::SUPERVISOR]).await;
    act!(sup, k, set_case_flags, SetCaseFlagsRequest { joint: true, supervised: true, reason: "市重点项目".into() })
        .unwrap();
    assert!(k.joint && k.supervised);
    let mut city = as_in(&case, "sup-city", &[roles::SUPERVISOR], "410700").await;
    let list = |c: &Cases, req: cpb::ListCasesRequest| {
        let mut c = c.clone();
        async move { c.list_cases(req).await.map(|r| r.into_inner()) }
    };
    let flagged = list(&city, cpb::ListCasesRequest { flagged_only: true, ..Default::default() }).await.unwrap();
    assert_eq!(flagged.cases.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), [k.id.as_str()]);
    let page = list(&city, cpb::ListCasesRequest { page_size: 1, ..Default::default() }).await.unwrap();
    let page_token = page.next_page_token.clone();
    let rest = city.list_cases(cpb::ListCasesRequest { page_size: 1, page_token, ..Default::default() });
    let rest = rest.await.unwrap().into_inner();
    assert_eq!((page.cases.len(), rest.cases.len()), (1, 1));
    assert_ne!(rest.cases[0].id, page.cases[0].id);
    let far = as_in(&case, "sup-3", &[roles::SUPERVISOR], "410703").await;
    assert!(list(&far, cpb::ListCasesRequest::default()).await.unwrap().cases.is_empty());
    let theirs = list(&far, cpb::ListCasesRequest { region_code: "410702".into(), ..Default::default() }).await;
    assert_eq!(theirs.unwrap_err().code(), Code::PermissionDenied);
}
