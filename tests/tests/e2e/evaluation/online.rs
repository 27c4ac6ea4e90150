//! 一事一评: a case carried to delivery and then closed (two transitions that both end a case)
//! opens exactly one online invitation, bound to the case, its matter, department and handler;
//! it is rated with the online indicators, and an on-site indicator is refused.

use xiaoneng_e2e::proto::case::v1 as cpb;
use xiaoneng_e2e::proto::case::v1::case_service_client::CaseServiceClient;
use xiaoneng_e2e::proto::evaluation::v1 as epb;
use xiaoneng_e2e::{channel, eventually, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

use super::{as_, count};
use crate::common::violations;

#[tokio::test(flavor = "multi_thread")]
async fn a_delivered_then_closed_case_opens_one_online_invitation() {
    // A broker of its own: the evaluation service replays no other test's events.
    let broker = xiaoneng_e2e::Broker::start();
    let brokers = broker.brokers();
    let eval = ServiceProc::start_with(
        ServiceKind::Evaluation,
        &brokers,
        &[("XIAONENG__DOMAIN__BUSINESS_TIME", "2026-09-15T10:00:00+08:00")],
    )
    .await;
    let (catalog, case) = crate::case::start(&brokers).await;
    let matter_id = crate::case::matter(&catalog).await;
    // The receiving clerk of 行政审批局: the case's handling department and handler.
    let minter = xiaoneng_kit::auth::TokenMinter::new(&xiaoneng_e2e::settings().auth);
    let t = minter.mint("clerk-07", &[roles::CLERK], "410702", Some("行政审批局"), 3600);
    let mut clerk = CaseServiceClient::new(channel(&case.addr(), Some(&t)).await);
    let t = crate::case::with_dept("rev-scj", "市场监管");
    let mut market = CaseServiceClient::new(channel(&case.addr(), Some(&t)).await);
    let k = crate::case::accepted(&mut clerk, &matter_id).await;
    let id = k.id.clone();
    delivered_then_closed(&mut clerk, &mut market, k).await;

    let db = eval.db().await;
    let mut platform = as_(&eval, "portal", &[roles::SYSTEM]).await;
    let inv = eventually(60, "the case's invitation", || {
        let (mut p, case_id) = (platform.clone(), id.clone());
        async move {
            let req = epb::ListInvitationsRequest { case_id, ..Default::default() };
            p.list_invitations(req).await.ok()?.into_inner().invitations.into_iter().next()
        }
    })
    .await;
    assert_eq!(inv.occurrence, epb::Occurrence::Online as i32);
    assert_eq!((inv.matter_id.as_str(), inv.department.as_str()), (matter_id.as_str(), "行政审批局"));
    assert!(!inv.staff_id.is_empty(), "bound to the handler");
    // Both the delivery and the closing reached the service: every event of the case was
    // applied by the invitation consumer, and the closing opened nothing more.
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT event_id FROM outbox WHERE event_key = $1")
        .bind(&id)
        .fetch_all(&case.db().await)
        .await
        .unwrap();
    assert!(ids.len() >= 6, "{} events of the case", ids.len());
    eventually(120, "every event of the case consumed", || {
        let (db, ids) = (db.clone(), ids.clone());
        async move {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE event_id = ANY($1)")
                .bind(&ids)
                .fetch_one(&db)
                .await
                .unwrap();
            (n as usize == ids.len()).then_some(())
        }
    })
    .await;
    let of_case = format!("SELECT count(*) FROM invitations WHERE case_id = '{id}'");
    assert_eq!(count(&db, &of_case).await, 1);
    let opened = format!(
        "SELECT count(*) FROM outbox WHERE event_type = 'xiaoneng.evaluation.events.v1.InvitationOpened' AND event_key = '{}'",
        inv.id
    );
    assert_eq!(count(&db, &opened).await, 1);

    let rating = |indicator: &str| epb::SubmitRatingRequest {
        invitation_id: inv.id.clone(),
        level: 4,
        scores: vec![epb::Score { indicator: indicator.into(), level: 4 }],
        channel: epb::Channel::Portal as i32,
        ..Default::default()
    };
    let wrong = platform.submit_rating(rating("attitude")).await.unwrap_err();
    assert_eq!(violations(&wrong), ["scores[0].indicator"], "attitude is an on-site indicator");
    let r = platform.submit_rating(rating("guide_accuracy")).await.unwrap().into_inner().rating.unwrap();
    assert_eq!((r.level, r.scores[0].indicator.as_str()), (4, "guide_accuracy"));
}

type Cases = CaseServiceClient<xiaoneng_e2e::Intercepted>;

/// The accepted case `k` reviewed by 市场监管, approved, its certificate issued, delivered at
/// the window and closed: two transitions that each end a case.
async fn delivered_then_closed(clerk: &mut Cases, market: &mut Cases, k: cpb::Case) {
    let (id, mut v) = (k.id.clone(), k.version);
    let k = clerk
        .start_review(cpb::StartReviewRequest {
            id: id.clone(),
            expected_version: v,
            departments: vec!["市场监管".into()],
            step: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    v = k.version;
    let k = market
        .conclude_review_step(cpb::ConcludeReviewStepRequest {
            id: id.clone(),
            expected_version: v,
            department: "市场监管".into(),
            approve: true,
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    v = k.version;
    let k = clerk
        .issue_certificate(cpb::IssueCertificateRequest {
            id: id.clone(),
            expected_version: v,
            certificate_number: "JY1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    v = k.version;
    let k = clerk
        .deliver_case(cpb::DeliverCaseRequest { id: id.clone(), expected_version: v, method: "窗口领取".into() })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    let k = clerk
        .close_case(cpb::CloseCaseRequest { id: id.clone(), expected_version: k.version })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(k.state, cpb::CaseState::Closed as i32);
}
