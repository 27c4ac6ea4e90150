//! What leaves the closed room: public reads with personal data masked, invitations that
//! expire (with a region's default rating only where its rules name one), and ratings a
//! provincial platform forwards in bulk, each item rated or refused on its own.

use tonic::Code;
use xiaoneng_e2e::proto::evaluation::events::v1::{InvitationExpired, RatingSubmitted};
use xiaoneng_e2e::proto::evaluation::v1 as epb;
use xiaoneng_e2e::proto::evaluation::v1::evaluation_service_client::EvaluationServiceClient;
use xiaoneng_e2e::{channel, eventually, ServiceProc};
use xiaoneng_kit::auth::roles;

use super::{as_, as_in, count, Served};
use crate::common::{reason, violations};

/// The payloads of `event_type` in the service's outbox, decoded.
async fn events<M: prost::Message + Default>(db: &sqlx::PgPool, event_type: &str) -> Vec<M> {
    let rows: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM outbox WHERE event_type = $1 ORDER BY id")
        .bind(format!("xiaoneng.evaluation.events.v1.{event_type}"))
        .fetch_all(db)
        .await
        .unwrap();
    rows.iter().map(|p| M::decode(p.as_slice()).unwrap()).collect()
}

/// A real-name 差评 with a phone number and a surname in it, followed up with a reply that
/// repeats them: the public read (no token at all) shows the account, the comment and the
/// reply masked, and nothing of the device; a bad region is refused.
#[tokio::test(flavor = "multi_thread")]
async fn public_reads_mask_the_raters_personal_data() {
    let s = Served::start("2026-11-02T10:00:00+08:00").await;
    let mut wang = as_(&s.eval, "citizen-wang", &[roles::CITIZEN]).await;
    let req = epb::SubmitRatingRequest {
        device: "kiosk-secret-07".into(),
        ..s.rating(1, "王先生等了两小时, 请回电13812345678或138-1234-5678、+86 137 0000 1111、１３６１２３４５６７８, 我叫张三丰, 邮箱zhangsf@163.com")
    };
    let r = wang.submit_rating(req).await.unwrap().into_inner().rating.unwrap();
    let mut unit = as_(&s.eval, "hall-manager", &[roles::HALL_MANAGER]).await;
    for (step, text) in [
        (epb::LoopStep::Callback, "已回访"),
        (epb::LoopStep::Rectify, "增开窗口, 已向王先生致歉"),
        (epb::LoopStep::Reply, "已电话13812345678答复"),
    ] {
        let req = epb::AdvanceLoopRequest { rating_id: r.id.clone(), step: step as i32, text: text.into() };
        unit.advance_loop(req).await.unwrap();
    }

    let mut public = EvaluationServiceClient::new(channel(&s.eval.addr(), None).await);
    let req = epb::ListPublicRatingsRequest {
        region_code: "410702".into(),
        from_date: "2026-11-01".into(),
        to_date: "2026-11-30".into(),
        bad_only: true,
        page_size: 100,
        ..Default::default()
    };
    let page = public.list_public_ratings(req.clone()).await.unwrap().into_inner();
    let mine: Vec<_> = page.ratings.iter().filter(|p| p.id == r.id).collect();
    assert_eq!(mine.len(), 1, "{page:?}");
    let p = mine[0];
    assert_eq!(p.rater, "c**********g");
    assert_eq!(
        p.comment,
        "*先生等了两小时, 请回电138****5678或138-****-5678、+86 137 **** 1111、１３６****５６７８, 我叫张**, 邮箱z******@163.com"
    );
    assert_eq!(p.rectification, "增开窗口, 已向*先生致歉");
    assert_eq!(p.reply, "已电话138****5678答复");
    assert_eq!((p.window_code.as_str(), p.staff_id.as_str(), p.level), ("ZH01", "s1", 1));
    let all = format!("{page:?}");
    for secret in
        ["13812345678", "citizen-wang", "kiosk-secret-07", "王先生", "1234-5678", "0000 1111", "张三丰", "zhangsf"]
    {
        assert!(!all.contains(secret), "{secret} in a public read");
    }
    let bad = epb::ListPublicRatingsRequest { region_code: "41".into(), page_size: -1, ..req };
    assert_eq!(violations(&public.list_public_ratings(bad).await.unwrap_err()), ["page_size", "region_code"]);
}

/// Restarts the evaluation service on the day after the invitation's window closed (7
/// calendar days after the day of the service, counted here), with `extra` settings; returns
/// the service's database.
async fn past_the_window(s: &mut Served, extra: &[(&str, &str)]) -> sqlx::PgPool {
    let mut c = as_(&s.eval, "citizen-wang", &[roles::CITIZEN]).await;
    let inv = c.get_invitation(epb::GetInvitationRequest { id: s.invitation.clone() }).await.unwrap();
    let last_day = s.served_on + chrono::Duration::days(7);
    assert_eq!(inv.into_inner().invitation.unwrap().rate_by_date, last_day.to_string());
    s.eval.kill();
    let next = last_day + chrono::Duration::days(1);
    s.eval.set_env("XIAONENG__DOMAIN__BUSINESS_TIME", &format!("{next}T09:00:00+08:00"));
    for (k, v) in extra {
        s.eval.set_env(k, v);
    }
    s.eval.restart().await;
    s.eval.db().await
}

/// Three more passes of the overdue loop: whatever a pass would repeat, it had the chance.
async fn three_more_passes(e: &ServiceProc) {
    let passes = "background_passes_total{loop=\"evaluation_overdue\"}";
    let before = e.metric(passes).await;
    eventually(20, "three more passes", || async { (e.metric(passes).await >= before + 3.0).then_some(()) }).await;
}

/// Without a default in the region's rules, an invitation past its window expires unrated:
/// one InvitationExpired with no default rating, no rating row, and a late rating is refused.
#[tokio::test(flavor = "multi_thread")]
async fn an_unrated_invitation_expires_and_is_never_silently_rated() {
    let mut s = Served::start("2026-11-02T10:00:00+08:00").await;
    let db = past_the_window(&mut s, &[]).await;
    let mut wang = as_(&s.eval, "citizen-wang", &[roles::CITIZEN]).await;
    let id = s.invitation.clone();
    eventually(30, "the invitation expired", || {
        let (mut c, id) = (wang.clone(), id.clone());
        async move {
            let i = c.get_invitation(epb::GetInvitationRequest { id }).await.unwrap().into_inner().invitation.unwrap();
            i.expired.then_some(i)
        }
    })
    .await;
    three_more_passes(&s.eval).await;
    let expired: Vec<InvitationExpired> = events(&db, "InvitationExpired").await;
    let ours: Vec<_> = expired.iter().filter(|e| e.invitation_id == s.invitation).collect();
    assert_eq!(ours.len(), 1, "expired once");
    assert_eq!(ours[0].default_rating_id, "", "no default rating");
    let ratings = format!("SELECT count(*) FROM ratings WHERE invitation_id = '{}'", s.invitation);
    assert_eq!(count(&db, &ratings).await, 0);
    let late = wang.submit_rating(s.rating(5, "")).await.unwrap_err();
    assert_eq!(reason(&late), "RATING_WINDOW_CLOSED");
}

/// Where the county's rules name a default (5), the expired invitation is given it once,
/// marked `defaulted`, by no citizen, with its events; the citizen can no longer rate it.
#[tokio::test(flavor = "multi_thread")]
async fn a_regions_default_rating_is_given_once_and_marked() {
    let mut s = Served::start("2026-11-02T10:00:00+08:00").await;
    let db = past_the_window(&mut s, &[("XIAONENG__DOMAIN__REGIONS__410702__DEFAULT_LEVEL_ON_EXPIRY", "5")]).await;
    let mut office = as_in(&s.eval, "xiaonengban", &[roles::SUPERVISOR], "410700").await;
    let id = s.invitation.clone();
    let inv = eventually(30, "the default rating", || {
        let (mut c, id) = (office.clone(), id.clone());
        async move {
            let i = c.get_invitation(epb::GetInvitationRequest { id }).await.unwrap().into_inner().invitation.unwrap();
            (i.expired && !i.rating_id.is_empty()).then_some(i)
        }
    })
    .await;
    let r = office.get_rating(epb::GetRatingRequest { id: inv.rating_id.clone() }).await.unwrap();
    let r = r.into_inner().rating.unwrap();
    assert_eq!((r.level, r.defaulted, r.anonymous, r.r#loop.is_none()), (5, true, true, true));
    three_more_passes(&s.eval).await;
    let expired: Vec<InvitationExpired> = events(&db, "InvitationExpired").await;
    let ours: Vec<_> = expired.iter().filter(|e| e.invitation_id == s.invitation).collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].default_rating_id, inv.rating_id);
    let submitted: Vec<RatingSubmitted> = events(&db, "RatingSubmitted").await;
    let ours: Vec<_> = submitted.iter().filter(|e| e.invitation_id == s.invitation).collect();
    assert_eq!((ours.len(), ours[0].defaulted), (1, true));
    let mut wang = as_(&s.eval, "citizen-wang", &[roles::CITIZEN]).await;
    assert_eq!(reason(&wang.submit_rating(s.rating(1, "晚了也要差评")).await.unwrap_err()), "ALREADY_RATED");
}

/// A provincial platform forwards six ratings in one call: two good, a bad level, an id that
/// does not parse, an unknown invitation, a repeat of the first. Each refused item carries
/// its code, reason or fields; the two good ones are stored (one 差评 with its loop), nothing
/// of the refused ones; a staff member's own token may not call it at all.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_rates_or_refuses_each_item_on_its_own() {
    let s = Served::start_for("2026-11-02T10:00:00+08:00", &["citizen-wang", "citizen-li", "citizen-zhang"]).await;
    let (first, second, third) = (s.invitation.clone(), s.more[0].clone(), s.more[1].clone());
    let item = |inv: &str, level: i32, comment: &str| epb::SubmitRatingRequest {
        invitation_id: inv.into(),
        level,
        comment: comment.into(),
        channel: epb::Channel::Portal as i32,
        ..Default::default()
    };
    let ratings = vec![
        item(&first, 5, ""),
        item(&second, 9, ""),
        item("not-an-id", 5, ""),
        item(&uuid::Uuid::new_v4().to_string(), 5, ""),
        item(&third, 1, "材料被退回三次"),
        item(&first, 2, "重复"),
    ];
    let mut platform = as_(&s.eval, "province-platform", &[roles::SYSTEM]).await;
    let req = epb::SubmitRatingsRequest { ratings };
    let results = platform.submit_ratings(req.clone()).await.unwrap().into_inner().results;
    let outcome: Vec<(String, String, Vec<String>, bool)> = results
        .iter()
        .map(|r| (r.error_code.clone(), r.error_reason.clone(), r.bad_fields.clone(), r.rating.is_some()))
        .collect();
    let ok = || (String::new(), String::new(), Vec::<String>::new(), true);
    let err =
        |c: &str, r: &str, f: &[&str]| (c.to_string(), r.to_string(), f.iter().map(|x| x.to_string()).collect(), false);
    assert_eq!(
        outcome,
        vec![
            ok(),
            err("INVALID_ARGUMENT", "", &["level"]),
            err("INVALID_ARGUMENT", "", &["invitation_id"]),
            err("NOT_FOUND", "", &[]),
            ok(),
            err("FAILED_PRECONDITION", "ALREADY_RATED", &[]),
        ]
    );
    let bad = results[4].rating.as_ref().unwrap();
    assert_eq!(bad.r#loop.as_ref().unwrap().state, epb::LoopState::Assigned as i32);
    let db = s.eval.db().await;
    let stored = format!("SELECT count(*) FROM ratings WHERE invitation_id IN ('{first}', '{second}', '{third}')");
    assert_eq!(count(&db, &stored).await, 2);
    let second_rated = format!("SELECT count(*) FROM invitations WHERE id = '{second}' AND rating_id IS NOT NULL");
    assert_eq!(count(&db, &second_rated).await, 0, "a refused item changes nothing");
    let mut clerk = as_(&s.eval, "s9", &[roles::CLERK]).await;
    assert_eq!(clerk.submit_ratings(req).await.unwrap_err().code(), Code::PermissionDenied);
    let empty = platform.submit_ratings(epb::SubmitRatingsRequest::default()).await.unwrap_err();
    assert_eq!(violations(&empty), ["ratings"]);
}
