//! The evaluation service against the real stack: a service finished at a window reaches it
//! over the broker and opens one invitation; the citizen served rates it once; a 差评's closed
//! loop runs on the working-day calendar (National Day 2026 in the middle), reports an overdue
//! step once, reopens once and goes to the efficiency office; the statistics count it.

use prost::Message as _;
use tonic::Code;
use xiaoneng_e2e::proto::evaluation::events::v1::BadRatingLoopChanged;
use xiaoneng_e2e::proto::evaluation::v1 as epb;
use xiaoneng_e2e::proto::evaluation::v1::evaluation_service_client::EvaluationServiceClient;
use xiaoneng_e2e::proto::queue::v1 as qpb;
use xiaoneng_e2e::{channel, eventually, token, Intercepted, ServiceProc};
use xiaoneng_kit::auth::roles;
use xiaoneng_kit::ServiceKind;

mod authorization;
mod online;
mod publication;

use crate::common::{reason, violations};
use crate::queue::{call_and_finish, category, client, hall, issue, open, window};

type Ratings = EvaluationServiceClient<Intercepted>;

async fn as_(e: &ServiceProc, who: &str, roles: &[&str]) -> Ratings {
    as_in(e, who, roles, "410702").await
}

async fn as_in(e: &ServiceProc, who: &str, roles: &[&str], region: &str) -> Ratings {
    EvaluationServiceClient::new(channel(&e.addr(), Some(&token(who, roles, region))).await)
}

/// The statistics rows of the caller's scope, by `dimension`, for ratings from `from` to `to`.
async fn statistics(c: &mut Ratings, dimension: epb::Dimension, from: &str, to: &str) -> Vec<epb::StatisticsRow> {
    let req = epb::GetStatisticsRequest {
        dimension: dimension as i32,
        from_date: from.into(),
        to_date: to.into(),
        ..Default::default()
    };
    c.get_statistics(req).await.unwrap().into_inner().rows
}

/// The catalog, the queue and the evaluation service (business clock at `at`, overdue pass every
/// 100 ms) on the shared broker; a hall with window ZH01 open for staff `s1`; one ticket taken
/// by citizen-wang, called and finished there. Returns the services and the invitation's id.
struct Served {
    /// The broker of this test alone (none when the test brought its own): a service started
    /// on it replays no other test's events.
    _broker: Option<xiaoneng_e2e::Broker>,
    _catalog: ServiceProc,
    _queue: ServiceProc,
    eval: ServiceProc,
    invitation: String,
    ticket: String,
    /// The matter every ticket was taken for.
    matter: String,
    more: Vec<String>,
    /// The day (China Standard Time) the tickets were finished: the queue finishes on the
    /// wall clock, so the rating window opens on it, whatever the evaluation service's clock.
    served_on: chrono::NaiveDate,
}

impl Served {
    async fn start(at: &str) -> Self {
        Self::start_for(at, &["citizen-wang"]).await
    }

    /// As [`Served::start`], with one ticket for each of `citizens`, served in turn; the
    /// invitation and ticket of the first are kept, the others' invitations in `more`.
    async fn start_for(at: &str, citizens: &[&str]) -> Self {
        Self::start_with(at, citizens, &[]).await
    }

    /// As [`Served::start_for`] on a broker of its own, with `extra` settings for the
    /// evaluation service.
    async fn start_with(at: &str, citizens: &[&str], extra: &[(&str, &str)]) -> Self {
        let broker = xiaoneng_e2e::Broker::start();
        let mut s = Self::start_on(&broker.brokers(), at, citizens, extra).await;
        s._broker = Some(broker);
        s
    }

    /// As [`Served::start_for`] on `brokers`, with `extra` settings for the evaluation service.
    async fn start_on(brokers: &str, at: &str, citizens: &[&str], extra: &[(&str, &str)]) -> Self {
        let catalog = ServiceProc::start(ServiceKind::Catalog, brokers).await;
        let matters = crate::queue::load_starter_into(&catalog).await;
        let addr = catalog.addr();
        let queue =
            ServiceProc::start_with(ServiceKind::Queue, brokers, &[("XIAONENG__DOMAIN__CATALOG_ADDR", &addr)]).await;
        let mut env = vec![("XIAONENG__DOMAIN__BUSINESS_TIME", at), ("XIAONENG__DOMAIN__OVERDUE_INTERVAL_MS", "100")];
        env.extend_from_slice(extra);
        let eval = ServiceProc::start_with(ServiceKind::Evaluation, brokers, &env).await;
        let mut m = client(&queue, "manager", &[roles::HALL_MANAGER]).await;
        let h = hall(&mut m, "评价大厅", vec![category("A", &[])]).await;
        let zh = window(&mut m, &h.id, "ZH01", qpb::WindowKind::Comprehensive, &[], false).await;
        open(&mut m, &zh, "s1").await;
        let mut clerk = client(&queue, "s1", &[roles::CLERK]).await;
        let db = eval.db().await;
        let mut served = Vec::new();
        let today = || chrono::Utc::now().with_timezone(&xiaoneng_kit::clock::cst()).date_naive();
        let before = today();
        for who in citizens {
            let mut citizen = client(&queue, who, &[roles::CITIZEN]).await;
            let t = issue(&mut citizen, &h.id, &matters[0], qpb::Priority::Normal).await;
            assert_eq!(call_and_finish(&mut clerk, &zh).await, Some(t.number.clone()));
            let ticket = t.id.clone();
            let invitation = eventually(60, "the invitation of the finished ticket", || {
                let (db, ticket) = (db.clone(), ticket.clone());
                async move {
                    sqlx::query_scalar::<_, String>("SELECT id::text FROM invitations WHERE ticket_id = $1")
                        .bind(&ticket)
                        .fetch_optional(&db)
                        .await
                        .unwrap()
                }
            })
            .await;
            served.push((invitation, t.id));
        }
        let served_on = today();
        assert_eq!(before, served_on, "served across midnight: run again");
        let (invitation, ticket) = served.remove(0);
        let more = served.into_iter().map(|(i, _)| i).collect();
        let matter = matters[0].clone();
        Served { _broker: None, _catalog: catalog, _queue: queue, eval, invitation, ticket, matter, more, served_on }
    }

    /// The department of the served matter, as the catalog names it.
    async fn department(&self) -> String {
        use xiaoneng_e2e::proto::catalog::v1 as cpb;
        use xiaoneng_e2e::proto::catalog::v1::catalog_service_client::CatalogServiceClient;
        let mut c = CatalogServiceClient::new(channel(&self._catalog.addr(), None).await);
        let m =
            c.get_matter(cpb::GetMatterRequest { matter_id: self.matter.clone(), ..Default::default() }).await.unwrap();
        m.into_inner().matter.unwrap().department_name
    }

    fn rating(&self, level: i32, comment: &str) -> epb::SubmitRatingRequest {
        epb::SubmitRatingRequest {
            invitation_id: self.invitation.clone(),
            level,
            comment: comment.into(),
            channel: epb::Channel::WindowDevice as i32,
            ..Default::default()
        }
    }
}

async fn count(db: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap()
}

/// One invitation for the finished ticket, bound to its window, staff and citizen; second,
/// self, other citizens', unknown and malformed ratings are refused and change nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_finished_service_opens_one_invitation_and_is_rated_once() {
    let s = Served::start("2026-09-30T10:00:00+08:00").await;
    let mut wang = as_(&s.eval, "citizen-wang", &[roles::CITIZEN]).await;
    let inv = wang.get_invitation(epb::GetInvitationRequest { id: s.invitation.clone() }).await.unwrap();
    let inv = inv.into_inner().invitation.unwrap();
    assert_eq!(
        (inv.window_code.as_str(), inv.staff_id.as_str(), inv.citizen_id.as_str()),
        ("ZH01", "s1", "citizen-wang")
    );
    assert_eq!((inv.ticket_id.as_str(), inv.occurrence), (s.ticket.as_str(), epb::Occurrence::OnSite as i32));

    // The shared broker carries other tests' tickets too: each citizen sees only invitations
    // naming them, and ours only to wang.
    let mine = wang.list_invitations(epb::ListInvitationsRequest::default()).await.unwrap().into_inner();
    assert!(mine.invitations.iter().all(|i| i.citizen_id == "citizen-wang"));
    assert!(mine.invitations.iter().any(|i| i.id == s.invitation));
    let mut li = as_(&s.eval, "citizen-li", &[roles::CITIZEN]).await;
    let theirs = li.list_invitations(epb::ListInvitationsRequest::default()).await.unwrap().into_inner();
    assert!(theirs.invitations.iter().all(|i| i.citizen_id == "citizen-li" && i.id != s.invitation));
    let bad = wang.submit_rating(epb::SubmitRatingRequest { channel: 0, ..s.rating(7, "") }).await.unwrap_err();
    assert_eq!(violations(&bad), ["channel", "level"]);
    let no_reason = wang.submit_rating(s.rating(1, "")).await.unwrap_err();
    assert_eq!(violations(&no_reason), ["reason"]);
    let mut server = as_(&s.eval, "s1", &[roles::SYSTEM]).await;
    let own = server.submit_rating(s.rating(5, "")).await.unwrap_err();
    assert_eq!((own.code(), reason(&own)), (Code::FailedPrecondition, "SELF_RATING".to_string()));
    // Refused, and flagged for the efficiency office: never silently dropped.
    let mut office = as_in(&s.eval, "xiaonengban", &[roles::SUPERVISOR], "410700").await;
    let flags = office.list_manipulation_flags(epb::ListManipulationFlagsRequest::default()).await.unwrap();
    let flags: Vec<_> = flags.into_inner().flags.into_iter().map(|f| (f.kind, f.subject)).collect();
    assert_eq!(flags, [("self_rating".to_string(), "s1".to_string())]);
    assert_eq!(li.submit_rating(s.rating(5, "")).await.unwrap_err().code(), Code::PermissionDenied);
    let unknown = epb::SubmitRatingRequest { invitation_id: uuid::Uuid::new_v4().to_string(), ..s.rating(5, "") };
    assert_eq!(wang.submit_rating(unknown).await.unwrap_err().code(), Code::NotFound);

    let r = wang.submit_rating(s.rating(4, "办得很快")).await.unwrap().into_inner().rating.unwrap();
    assert_eq!((r.level, r.r#loop.is_none()), (4, true), "a good rating has no loop");
    let again = wang.submit_rating(s.rating(1, "改评差评")).await.unwrap_err();
    assert_eq!(reason(&again), "ALREADY_RATED");
    let db = s.eval.db().await;
    // Every queue event of the test delivered a second time (the finished ticket among them):
    // each recognised as a duplicate, and still one invitation and one rating.
    let queued: i64 = count(&s._queue.db().await, "SELECT count(*) FROM outbox").await;
    let brokers = s._broker.as_ref().map(|b| b.brokers()).unwrap_or_default();
    let dup = "events_duplicate_total{consumer=\"invitations\"}";
    let seen = s.eval.metric(dup).await;
    let again = crate::accountability::redeliver(&brokers, &ServiceKind::Queue.topic(), queued as usize).await;
    assert_eq!(again, queued as usize);
    eventually(60, "every redelivered queue event recognised", || async {
        (s.eval.metric(dup).await >= seen + again as f64).then_some(())
    })
    .await;
    let ratings = format!("SELECT count(*) FROM ratings WHERE invitation_id = '{}'", s.invitation);
    assert_eq!(count(&db, &ratings).await, 1);
    let invitations = format!("SELECT count(*) FROM invitations WHERE ticket_id = '{}'", s.ticket);
    assert_eq!(count(&db, &invitations).await, 1);
    let opened = format!(
        "SELECT count(*) FROM outbox WHERE event_type = 'xiaoneng.evaluation.events.v1.InvitationOpened' AND event_key = '{}'",
        s.invitation
    );
    assert_eq!(count(&db, &opened).await, 1);
    let follow = epb::AddFollowUpRequest { rating_id: r.id.clone(), comment: "窗口人员很耐心".into() };
    wang.add_follow_up(follow.clone()).await.unwrap();
    assert_eq!(reason(&wang.add_follow_up(follow).await.unwrap_err()), "FOLLOW_UP_GIVEN");
}

/// The rating window closes 7 calendar days (the default) after the day of the service: on
/// that last day a rating is still taken (citizen-li), the day after no more (citizen-wang).
/// The queue finishes on the wall clock: the days are counted here from that day.
#[tokio::test(flavor = "multi_thread")]
async fn a_rating_after_the_regions_window_is_refused() {
    let mut s = Served::start_for("2026-09-30T10:00:00+08:00", &["citizen-wang", "citizen-li"]).await;
    let last_day = s.served_on + chrono::Duration::days(7);
    let inv = as_(&s.eval, "citizen-wang", &[roles::CITIZEN]).await;
    let rate_by = inv.clone().get_invitation(epb::GetInvitationRequest { id: s.invitation.clone() }).await.unwrap();
    assert_eq!(rate_by.into_inner().invitation.unwrap().rate_by_date, last_day.to_string());
    s.eval.kill();
    s.eval.set_env("XIAONENG__DOMAIN__BUSINESS_TIME", &format!("{last_day}T23:00:00+08:00"));
    s.eval.restart().await;
    let mut li = as_(&s.eval, "citizen-li", &[roles::CITIZEN]).await;
    li.submit_rating(epb::SubmitRatingRequest { invitation_id: s.more[0].clone(), ..s.rating(5, "") }).await.unwrap();
    s.eval.kill();
    let next = last_day + chrono::Duration::days(1);
    s.eval.set_env("XIAONENG__DOMAIN__BUSINESS_TIME", &format!("{next}T09:00:00+08:00"));
    s.eval.restart().await;
    let mut wang = as_(&s.eval, "citizen-wang", &[roles::CITIZEN]).await;
    let late = wang.submit_rating(s.rating(5, "")).await.unwrap_err();
    assert_eq!(reason(&late), "RATING_WINDOW_CLOSED");
    let ratings = format!("SELECT count(*) FROM ratings WHERE invitation_id = '{}'", s.invitation);
    assert_eq!(count(&s.eval.db().await, &ratings).await, 0);
}

/// A 差评 on Wed 30 Sep 2026: the callback is due Thu 8 Oct (National Day 1-7 Oct). On 8 Oct
/// it is reminded, on 9 Oct reported overdue, each once; the callback then makes the rectification due in 5 working
/// days: 10 (Sat, make-up), 12, 13, 14, 15 → Thu 15 Oct. Not satisfied reopens once, then the
/// loop goes to the efficiency office; an illegal step is refused; the statistics count it.
#[tokio::test(flavor = "multi_thread")]
async fn a_bad_rating_is_followed_up_until_the_efficiency_office() {
    let mut s = Served::start("2026-09-30T10:00:00+08:00").await;
    let mut wang = as_(&s.eval, "citizen-wang", &[roles::CITIZEN]).await;
    let r = wang.submit_rating(s.rating(2, "等候太久")).await.unwrap().into_inner().rating.unwrap();
    let l = r.r#loop.clone().unwrap();
    assert_eq!((l.state, l.step_due_date.as_str()), (epb::LoopState::Assigned as i32, "2026-10-08"));

    let db = s.eval.db().await;
    let loop_events = || async {
        let rows: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT payload FROM outbox WHERE event_type = 'xiaoneng.evaluation.events.v1.BadRatingLoopChanged'",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        rows.iter().map(|p| BadRatingLoopChanged::decode(p.as_slice()).unwrap()).collect::<Vec<_>>()
    };
    let reminders = || async { loop_events().await.iter().filter(|e| e.reminder).count() };
    let overdue = || async { loop_events().await.iter().filter(|e| e.overdue).count() };
    // Two replicas on the one database share the overdue and reminder passes.
    let mut two = s.eval.replica().await;
    // On the day it is due, a reminder (催办), once.
    for r in [&mut s.eval, &mut two] {
        r.kill();
        r.set_env("XIAONENG__DOMAIN__BUSINESS_TIME", "2026-10-08T09:00:00+08:00");
        r.restart().await;
    }
    eventually(30, "the callback reminded", || async { (reminders().await == 1).then_some(()) }).await;
    // Not overdue on its day: three more passes had the chance to report it.
    let passes = "background_passes_total{loop=\"evaluation_overdue\"}";
    let before = s.eval.metric(passes).await;
    eventually(20, "three more passes on the due day", || async {
        (s.eval.metric(passes).await >= before + 3.0).then_some(())
    })
    .await;
    assert_eq!(overdue().await, 0, "not overdue on its day");
    for r in [&mut s.eval, &mut two] {
        r.kill();
        r.set_env("XIAONENG__DOMAIN__BUSINESS_TIME", "2026-10-09T09:00:00+08:00");
        r.restart().await;
    }
    eventually(30, "the overdue callback reported", || async { (overdue().await == 1).then_some(()) }).await;
    for r in [&s.eval, &two] {
        let before = r.metric(passes).await;
        eventually(20, "three more overdue passes on each replica", || async {
            (r.metric(passes).await >= before + 3.0).then_some(())
        })
        .await;
    }
    drop(two);
    assert_eq!((overdue().await, reminders().await), (1, 1), "reported once per deadline");

    let mut unit = as_(&s.eval, "hall-manager", &[roles::HALL_MANAGER]).await;
    let step = |step: epb::LoopStep, text: &str| epb::AdvanceLoopRequest {
        rating_id: r.id.clone(),
        step: step as i32,
        text: text.into(),
    };
    let early = unit.advance_loop(step(epb::LoopStep::Reply, "已答复")).await.unwrap_err();
    assert_eq!(reason(&early), "ILLEGAL_STEP");
    let cb = unit.advance_loop(step(epb::LoopStep::Callback, "已电话回访")).await.unwrap().into_inner();
    let l = cb.rating.unwrap().r#loop.unwrap();
    assert_eq!((l.state, l.step_due_date.as_str()), (epb::LoopState::CalledBack as i32, "2026-10-15"));
    let not_mine = unit.advance_loop(step(epb::LoopStep::Confirm, "satisfied")).await.unwrap_err();
    assert_eq!(not_mine.code(), Code::PermissionDenied, "the citizen confirms");
    for round in 0..2 {
        unit.advance_loop(step(epb::LoopStep::Rectify, "已整改: 增开窗口")).await.unwrap();
        unit.advance_loop(step(epb::LoopStep::Reply, "已答复群众")).await.unwrap();
        let answer = wang.advance_loop(step(epb::LoopStep::Confirm, "not_satisfied")).await.unwrap().into_inner();
        let l = answer.rating.unwrap().r#loop.unwrap();
        let want = if round == 0 { epb::LoopState::CalledBack } else { epb::LoopState::Escalated };
        assert_eq!((l.state, l.reopened), (want as i32, 1), "round {round}");
    }
    let mut office = as_in(&s.eval, "xiaonengban", &[roles::SUPERVISOR], "410700").await;
    let stats = statistics(&mut office, epb::Dimension::Staff, "2026-09-01", "2026-10-31").await;
    assert_eq!(stats.len(), 1);
    let row = &stats[0];
    assert_eq!((row.key.as_str(), row.ratings, row.bad_ratings), ("s1", 1, 1));
    assert_eq!((row.satisfaction_rate, row.bad_rate, row.callback_rate, row.rectification_rate), (0.0, 1.0, 1.0, 0.0));
    // A window rating counts for the department of its matter (it came back under "").
    let department = s.department().await;
    assert!(!department.is_empty());
    let by_department = statistics(&mut office, epb::Dimension::Department, "2026-09-01", "2026-10-31").await;
    let keys: Vec<(&str, i64)> = by_department.iter().map(|r| (r.key.as_str(), r.ratings)).collect();
    assert_eq!(keys, [(department.as_str(), 1)]);
}

/// Six ratings from one kiosk within minutes flag the kiosk once (at the fifth; the sixth
/// finds the flag of its window), and with a seventh from another kiosk s1's six-rating burst
/// is flagged once too (threshold 6 here) — all kept. The hall appeals the fifth, a malicious
/// 差评, with evidence, once; the office upholds it and it leaves the statistics but stays on
/// record.
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_is_flagged_once_and_an_upheld_appeal_leaves_the_statistics() {
    let citizens = ["citizen-1", "citizen-2", "citizen-3", "citizen-4", "citizen-5", "citizen-6", "citizen-7"];
    let staff_burst = [("XIAONENG__DOMAIN__SIGNALS__STAFF_BURST", "6")];
    let s = Served::start_with("2026-11-02T10:00:00+08:00", &citizens, &staff_burst).await;
    let invitations: Vec<String> = std::iter::once(s.invitation.clone()).chain(s.more.clone()).collect();
    let mut ids = Vec::new();
    for (i, (who, inv)) in citizens.iter().zip(&invitations).enumerate() {
        let mut c = as_(&s.eval, who, &[roles::CITIZEN]).await;
        let device = if i < 6 { "kiosk-07" } else { "kiosk-08" };
        let level = if i == 4 { 1 } else { 5 };
        let req =
            epb::SubmitRatingRequest { invitation_id: inv.clone(), device: device.into(), ..s.rating(level, "评价") };
        ids.push(c.submit_rating(req).await.unwrap().into_inner().rating.unwrap().id);
    }
    let mut office = as_in(&s.eval, "xiaonengban", &[roles::SUPERVISOR], "410700").await;
    let flags = office.list_manipulation_flags(epb::ListManipulationFlagsRequest::default()).await.unwrap();
    let mut flags: Vec<(String, String, Vec<String>)> = flags
        .into_inner()
        .flags
        .into_iter()
        .map(|f| {
            let mut r = f.rating_ids;
            r.sort();
            (f.kind, f.subject, r)
        })
        .collect();
    flags.sort();
    let sorted = |n: usize| {
        let mut v = ids[..n].to_vec();
        v.sort();
        v
    };
    assert_eq!(
        flags,
        [
            ("device_burst".to_string(), "kiosk-07".to_string(), sorted(5)),
            ("staff_burst".to_string(), "s1".to_string(), sorted(6)),
        ]
    );
    appeal_the_fifth(&s, &ids, &mut office).await;
}

/// The hall appeals `ids[4]` (the 差评) once; the office upholds it: 6 of 7 ratings counted.
async fn appeal_the_fifth(s: &Served, ids: &[String], office: &mut Ratings) {
    let mut hall = as_(&s.eval, "hall-manager", &[roles::HALL_MANAGER]).await;
    let appeal = epb::AppealRatingRequest {
        rating_id: ids[4].clone(),
        grounds: "malicious".into(),
        statement: "同一设备数分钟内连续评价".into(),
        evidence: vec!["录像:ZH01-1102-1000".into()],
    };
    hall.appeal_rating(appeal.clone()).await.unwrap();
    assert_eq!(reason(&hall.appeal_rating(appeal).await.unwrap_err()), "APPEAL_EXISTS");
    let decide = epb::DecideAppealRequest { rating_id: ids[4].clone(), uphold: true, reason: "录像证实".into() };
    assert_eq!(hall.decide_appeal(decide.clone()).await.unwrap_err().code(), Code::PermissionDenied);
    let r = office.decide_appeal(decide.clone()).await.unwrap().into_inner().rating.unwrap();
    assert!(r.excluded && r.appeal.unwrap().state == epb::AppealState::Upheld as i32);
    assert_eq!(reason(&office.decide_appeal(decide).await.unwrap_err()), "NO_PENDING_APPEAL");
    let stats = statistics(office, epb::Dimension::Window, "2026-11-01", "2026-11-30").await;
    // Recount: seven ratings at ZH01, one (the 差评) out by the appeal: 6 rated 5, none bad.
    assert_eq!(stats.len(), 1);
    assert_eq!((stats[0].key.as_str(), stats[0].ratings, stats[0].bad_ratings), ("ZH01", 6, 0));
    assert_eq!(stats[0].satisfaction_rate, 1.0);
    let bottom = epb::GetStatisticsRequest {
        dimension: epb::Dimension::Window as i32,
        from_date: "2026-11-01".into(),
        to_date: "2026-11-30".into(),
        bottom: 3,
        min_ratings: 7,
        ..Default::default()
    };
    let rows = office.get_statistics(bottom.clone()).await.unwrap().into_inner().rows;
    assert!(rows.is_empty(), "ZH01 has 6 counted ratings, fewer than 7: not ranked");
    let rows = office.get_statistics(epb::GetStatisticsRequest { min_ratings: 6, ..bottom }).await.unwrap();
    assert_eq!(rows.into_inner().rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["ZH01"]);
    let still: i64 = sqlx::query_scalar("SELECT count(*) FROM ratings").fetch_one(&s.eval.db().await).await.unwrap();
    assert_eq!(still, 7, "the appealed rating stays on record");
}

/// An appeal the office rejects: the rating stays in the statistics, the appeal is marked
/// rejected with its reason, and neither it nor its evidence reaches the public read.
#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_appeal_keeps_the_rating_and_its_evidence_stays_inside() {
    let s = Served::start("2026-11-02T10:00:00+08:00").await;
    let mut wang = as_(&s.eval, "citizen-wang", &[roles::CITIZEN]).await;
    let r = wang.submit_rating(s.rating(1, "态度很差")).await.unwrap().into_inner().rating.unwrap();
    let mut hall = as_(&s.eval, "hall-manager", &[roles::HALL_MANAGER]).await;
    let appeal = epb::AppealRatingRequest {
        rating_id: r.id.clone(),
        grounds: "mistaken".into(),
        statement: "评价对象错误: 当时ZH01由AB角顶岗".into(),
        evidence: vec!["排班表:内部-2026-11-02".into()],
    };
    hall.appeal_rating(appeal).await.unwrap();
    let mut office = as_in(&s.eval, "xiaonengban", &[roles::SUPERVISOR], "410700").await;
    let decide =
        epb::DecideAppealRequest {
            rating_id: r.id.clone(), uphold: false, reason: "排班表显示本人在岗".into()
        };
    let decided = office.decide_appeal(decide).await.unwrap().into_inner().rating.unwrap();
    let a = decided.appeal.unwrap();
    assert_eq!(a.state, epb::AppealState::Rejected as i32);
    assert!(!decided.excluded, "a rejected appeal leaves the rating counted");
    let stats = statistics(&mut office, epb::Dimension::Window, "2026-11-01", "2026-11-30").await;
    assert_eq!((stats[0].ratings, stats[0].bad_ratings), (1, 1));
    let mut public = EvaluationServiceClient::new(channel(&s.eval.addr(), None).await);
    let page = public
        .list_public_ratings(epb::ListPublicRatingsRequest {
            region_code: "410702".into(),
            from_date: "2026-11-01".into(),
            to_date: "2026-11-30".into(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let all = format!("{page:?}");
    assert!(page.ratings.iter().any(|p| p.id == r.id), "the rating is public");
    for inside in ["排班表", "AB角", "本人在岗", "mistaken"] {
        assert!(!all.contains(inside), "{inside} in the public read: {all}");
    }
}

/// On a broker of its own: ten tickets finished at a window; the evaluation service dies right
/// after applying its 15th event and before storing that event's offset, so it receives it
/// again after the restart. Still exactly one invitation, and one InvitationOpened event, per
/// ticket.
#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_killed_mid_batch_opens_each_invitation_once() {
    let broker = xiaoneng_e2e::Broker::start();
    let catalog = ServiceProc::start(ServiceKind::Catalog, &broker.brokers()).await;
    let matters = crate::queue::load_starter_into(&catalog).await;
    let addr = catalog.addr();
    let queue =
        ServiceProc::start_with(ServiceKind::Queue, &broker.brokers(), &[("XIAONENG__DOMAIN__CATALOG_ADDR", &addr)])
            .await;
    let mut m = client(&queue, "manager", &[roles::HALL_MANAGER]).await;
    let h = hall(&mut m, "评价大厅", vec![category("A", &[])]).await;
    let zh = window(&mut m, &h.id, "ZH01", qpb::WindowKind::Comprehensive, &[], false).await;
    open(&mut m, &zh, "s1").await;
    let (mut kiosk, mut clerk) =
        (client(&queue, "kiosk", &[roles::SYSTEM]).await, client(&queue, "s1", &[roles::CLERK]).await);
    for _ in 0..10 {
        let t = issue(&mut kiosk, &h.id, &matters[0], qpb::Priority::Normal).await;
        assert_eq!(call_and_finish(&mut clerk, &zh).await, Some(t.number));
    }
    let mut eval = ServiceProc::configure(
        ServiceKind::Evaluation,
        &broker.brokers(),
        &[("XIAONENG_FAILPOINTS", "consumer.before_offset_store@15")],
    );
    eval.start_detached();
    assert!(!eval.wait_exit(120).await.success(), "died at the crash point");
    let db = eval.db().await;
    let before = count(&db, "SELECT count(*) FROM invitations").await;
    assert!(before < 10, "{before} invitations before the crash");
    eval.set_env("XIAONENG_FAILPOINTS", "");
    eval.restart().await;
    // The restarted consumer gets the partitions once the dead member's session has expired.
    eventually(180, "ten invitations", || async {
        (count(&db, "SELECT count(*) FROM invitations").await == 10).then_some(())
    })
    .await;
    let opened = "SELECT count(*) FROM outbox WHERE event_type = 'xiaoneng.evaluation.events.v1.InvitationOpened'";
    assert_eq!(count(&db, opened).await, 10);
    assert_eq!(count(&db, "SELECT count(DISTINCT ticket_id) FROM invitations").await, 10);
    let again = eval.metric("events_duplicate_total{consumer=\"invitations\"}").await;
    assert!(again >= 1.0, "the 15th event came again");
}

/// The shared legal clock: a 差评 on Wed 30 Dec 2026 with a 5-day callback is due Wed 6 Jan 2027
/// counted Monday–Friday (31 Dec, 1, 4, 5, 6). A fabricated 2027 notice taking 1 Jan off,
/// loaded into the case service, reaches the evaluation service as an event and moves it to
/// Thu 7 Jan, once, with an event naming the notice. On a broker of its own, so no other
/// test's notice interferes.
#[tokio::test(flavor = "multi_thread")]
async fn a_notice_loaded_into_the_case_service_moves_a_loops_deadline() {
    let broker = xiaoneng_e2e::Broker::start();
    // The ticket is finished on today's wall clock, the rating given on the business clock's
    // 30 Dec: a window long enough for both.
    // Only the notices through 2026 count as published, whichever years this build carries.
    let callback = [
        ("XIAONENG__DOMAIN__RULES__CALLBACK_DAYS", "5"),
        ("XIAONENG__DOMAIN__RULES__RATING_WINDOW_DAYS", "400"),
        ("XIAONENG__DOMAIN__CALENDAR_THROUGH", "2026"),
    ];
    let s = Served::start_on(&broker.brokers(), "2026-12-30T10:00:00+08:00", &["citizen-wang"], &callback).await;
    let mut wang = as_(&s.eval, "citizen-wang", &[roles::CITIZEN]).await;
    let r = wang.submit_rating(s.rating(1, "没人理")).await.unwrap().into_inner().rating.unwrap();
    let l = r.r#loop.clone().unwrap();
    assert_eq!((l.step_due_date.as_str(), l.provisional), ("2027-01-06", true), "past the published years");

    let through = [("XIAONENG__DOMAIN__CALENDAR_THROUGH", "2026")];
    let case = ServiceProc::start_with(ServiceKind::Case, &broker.brokers(), &through).await;
    let office = token("xiaonengban", &[roles::SUPERVISOR], "410700");
    let mut cases = xiaoneng_e2e::proto::case::v1::case_service_client::CaseServiceClient::new(
        channel(&case.addr(), Some(&office)).await,
    );
    let text = "# Fabricated for the tests.\nyear = 2027\nversion = \"2027-eval\"\nsource = \"fabricated\"\n\
                fabricated = true\nholidays = [{ name = \"元旦\", from = \"2027-01-01\", to = \"2027-01-01\" }]\n";
    let req = xiaoneng_e2e::proto::case::v1::LoadCalendarNoticeRequest { text: text.into() };
    cases.load_calendar_notice(req).await.unwrap();
    let id = r.id.clone();
    let moved_loop = eventually(60, "the callback due on 7 Jan", || {
        let (mut c, id) = (wang.clone(), id.clone());
        async move {
            let r = c.get_rating(epb::GetRatingRequest { id }).await.unwrap().into_inner().rating.unwrap();
            let l = r.r#loop.unwrap();
            (l.step_due_date == "2027-01-07").then_some(l)
        }
    })
    .await;
    let db = s.eval.db().await;
    let moved = || async {
        let rows: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT payload FROM outbox WHERE event_type = 'xiaoneng.evaluation.events.v1.BadRatingLoopChanged'",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        let events = rows.iter().map(|p| BadRatingLoopChanged::decode(p.as_slice()).unwrap());
        events
            .filter(|e| !e.calendar_notice.is_empty())
            .map(|e| (e.calendar_notice, e.step_due_date, e.provisional))
            .collect::<Vec<_>>()
    };
    let passes = "background_passes_total{loop=\"evaluation_overdue\"}";
    let before = s.eval.metric(passes).await;
    eventually(20, "three more passes", || async { (s.eval.metric(passes).await >= before + 3.0).then_some(()) }).await;
    assert_eq!(moved().await, [("national:2027 2027-eval".to_string(), "2027-01-07".to_string(), false)]);
    assert!(!moved_loop.provisional, "final once 2027 is published");
}
