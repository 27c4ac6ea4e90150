//! Events the evaluation service publishes on `xiaoneng.evaluation.events`: every invitation,
//! every rating and every step of a 差评's closed loop (overdue steps included).

use chrono::NaiveDate;
use xiaoneng_kit::events::NewEvent;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::ServiceKind;
use xiaoneng_proto::evaluation::events::v1::{
    AppealDecided, BadRatingLoopChanged, InvitationExpired, InvitationOpened, ManipulationFlagged,
    RatingSubmitted,
};

use crate::domain::{Appeal, AppealState, FlagKind, InvitationRow, LoopState, RatingRow};

fn region(code: &str) -> anyhow::Result<RegionCode> {
    RegionCode::parse(code).map_err(anyhow::Error::msg)
}

fn date(d: Option<NaiveDate>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

pub fn invitation_opened(i: &InvitationRow) -> anyhow::Result<NewEvent> {
    Ok(NewEvent::new(
        ServiceKind::Evaluation,
        i.id.to_string(),
        &region(&i.region_code)?,
        &InvitationOpened {
            invitation_id: i.id.to_string(),
            region_code: i.region_code.clone(),
            occurrence: i.occurrence.wire() as i32,
            ticket_id: i.ticket_id.clone(),
            case_id: i.case_id.clone(),
            matter_id: i.matter_id.clone(),
            staff_id: i.staff_id.clone(),
            department: i.department.clone(),
            rate_by_date: i.rate_by.to_string(),
        },
    ))
}

pub fn rating_submitted(i: &InvitationRow, r: &RatingRow) -> anyhow::Result<NewEvent> {
    Ok(NewEvent::new(
        ServiceKind::Evaluation,
        r.id.to_string(),
        &region(&r.region_code)?,
        &RatingSubmitted {
            rating_id: r.id.to_string(),
            invitation_id: i.id.to_string(),
            region_code: r.region_code.clone(),
            level: r.level,
            bad: r.level <= 2,
            channel: r.channel,
            occurrence: i.occurrence.wire() as i32,
            ticket_id: i.ticket_id.clone(),
            case_id: i.case_id.clone(),
            matter_id: i.matter_id.clone(),
            window_code: i.window_code.clone(),
            department: i.department.clone(),
            staff_id: i.staff_id.clone(),
            rate_time: Some(xiaoneng_kit::timestamp(r.rated_at)),
            defaulted: r.defaulted,
        },
    ))
}

/// The rating window passed unrated (with the region's default rating, when it gives one).
pub fn invitation_expired(
    i: &InvitationRow,
    default_rating: Option<uuid::Uuid>,
) -> anyhow::Result<NewEvent> {
    Ok(NewEvent::new(
        ServiceKind::Evaluation,
        i.id.to_string(),
        &region(&i.region_code)?,
        &InvitationExpired {
            invitation_id: i.id.to_string(),
            region_code: i.region_code.clone(),
            ticket_id: i.ticket_id.clone(),
            case_id: i.case_id.clone(),
            staff_id: i.staff_id.clone(),
            rate_by_date: i.rate_by.to_string(),
            default_rating_id: default_rating.map(|r| r.to_string()).unwrap_or_default(),
        },
    ))
}

/// A loop step (or its overdue: `from == to`, actor `system`; or its deadline moved by the
/// calendar notice `calendar_notice`).
pub fn loop_changed(
    i: &InvitationRow,
    r: &RatingRow,
    from: LoopState,
    actor: &str,
    today: NaiveDate,
    overdue: bool,
    calendar_notice: &str,
) -> anyhow::Result<NewEvent> {
    loop_event(i, r, from, actor, today, (overdue, false), calendar_notice)
}

/// A reminder (催办): the step under way is due today.
pub fn loop_reminder(
    i: &InvitationRow,
    r: &RatingRow,
    today: NaiveDate,
) -> anyhow::Result<NewEvent> {
    let state = r
        .bad_loop
        .as_ref()
        .map(|l| l.0.state)
        .unwrap_or(LoopState::Assigned);
    loop_event(i, r, state, "system", today, (false, true), "")
}

fn loop_event(
    i: &InvitationRow,
    r: &RatingRow,
    from: LoopState,
    actor: &str,
    today: NaiveDate,
    (overdue, reminder): (bool, bool),
    calendar_notice: &str,
) -> anyhow::Result<NewEvent> {
    let l = r.bad_loop.as_ref().map(|l| &l.0);
    Ok(NewEvent::new(
        ServiceKind::Evaluation,
        r.id.to_string(),
        &region(&r.region_code)?,
        &BadRatingLoopChanged {
            rating_id: r.id.to_string(),
            region_code: r.region_code.clone(),
            from_state: from.wire() as i32,
            to_state: l.map(|l| l.state.wire() as i32).unwrap_or_default(),
            actor: actor.to_string(),
            department: i.department.clone(),
            staff_id: i.staff_id.clone(),
            step_due_date: date(l.and_then(|l| l.step_due)),
            on_date: today.to_string(),
            overdue,
            calendar_notice: calendar_notice.to_string(),
            reminder,
            provisional: l.is_some_and(|l| l.provisional),
        },
    ))
}

pub fn appeal_decided(i: &InvitationRow, r: &RatingRow, a: &Appeal) -> anyhow::Result<NewEvent> {
    Ok(NewEvent::new(
        ServiceKind::Evaluation,
        r.id.to_string(),
        &region(&r.region_code)?,
        &AppealDecided {
            rating_id: r.id.to_string(),
            region_code: r.region_code.clone(),
            upheld: a.state == AppealState::Upheld,
            grounds: a.grounds.clone(),
            decided_by: a.decided_by.clone(),
            reason: a.decision_reason.clone(),
            staff_id: i.staff_id.clone(),
            department: i.department.clone(),
        },
    ))
}

pub fn flagged(
    id: uuid::Uuid,
    region_code: &str,
    kind: FlagKind,
    subject: &str,
    ratings: &[uuid::Uuid],
) -> anyhow::Result<NewEvent> {
    Ok(NewEvent::new(
        ServiceKind::Evaluation,
        id.to_string(),
        &region(region_code)?,
        &ManipulationFlagged {
            flag_id: id.to_string(),
            region_code: region_code.to_string(),
            kind: kind.name().to_string(),
            subject: subject.to_string(),
            ratings: ratings.len() as i32,
            rating_ids: ratings.iter().map(|r| r.to_string()).collect(),
        },
    ))
}
