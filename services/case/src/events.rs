//! Events the case service publishes on `xiaoneng.case.events`: every transition, every
//! escalation (warning, yellow card, red card) and every one-time-notice violation, with
//! enough of the case for evaluation, accountability and department systems to act without
//! calling back.

use chrono::NaiveDate;
use xiaoneng_kit::events::NewEvent;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::ServiceKind;
use xiaoneng_proto::case::events::v1::{
    CalendarNoticeLoaded, CaseDeadlinesMoved, CaseEscalated, CaseTransitioned,
    OneTimeNoticeViolated,
};

use crate::domain::{date, CaseRow, Escalation, History, Moved};

fn region(row: &CaseRow) -> anyhow::Result<RegionCode> {
    RegionCode::parse(&row.region_code).map_err(anyhow::Error::msg)
}

pub fn transitioned(row: &CaseRow, h: &History<'_>, today: NaiveDate) -> anyhow::Result<NewEvent> {
    let rec = &row.body;
    Ok(NewEvent::new(
        ServiceKind::Case,
        row.id.to_string(),
        &region(row)?,
        &CaseTransitioned {
            case_id: row.id.to_string(),
            region_code: row.region_code.clone(),
            matter_id: row.matter_id.to_string(),
            matter_version: row.matter_version,
            action: h.action.to_string(),
            from_state: h.from.wire() as i32,
            to_state: rec.case.state.wire() as i32,
            actor: h.actor.to_string(),
            actor_role: h.role.to_string(),
            reason: h.reason.to_string(),
            case_version: row.version,
            promised_deadline: date(row.promised_deadline),
            statutory_deadline: date(row.statutory_deadline),
            matter_name: row.matter_name.clone(),
            first_responsible: row.first_responsible.clone(),
            handling_department: rec.handling_department.clone(),
            handler: rec.handler.clone(),
            joint: rec.joint,
            supervised: rec.supervised,
            on_date: today.to_string(),
            accepted_date: date(row.accepted_on),
            decided_date: date(rec.decided_on),
            applicant_name: rec.applicant_name.clone(),
            agent_name: rec.agent_name.clone(),
            provisional: row.provisional,
        },
    ))
}

pub fn escalated(
    row: &CaseRow,
    clock: &str,
    level: Escalation,
    deadline: NaiveDate,
    due: NaiveDate,
    provisional: bool,
) -> anyhow::Result<NewEvent> {
    let rec = &row.body;
    Ok(NewEvent::new(
        ServiceKind::Case,
        row.id.to_string(),
        &region(row)?,
        &CaseEscalated {
            case_id: row.id.to_string(),
            region_code: row.region_code.clone(),
            matter_id: row.matter_id.to_string(),
            matter_name: row.matter_name.clone(),
            clock: clock.to_string(),
            level: level.name().to_string(),
            deadline: deadline.to_string(),
            due_date: due.to_string(),
            state: rec.case.state.wire() as i32,
            first_responsible: row.first_responsible.clone(),
            handling_department: rec.handling_department.clone(),
            handler: rec.handler.clone(),
            joint: rec.joint,
            supervised: rec.supervised,
            provisional,
        },
    ))
}

/// The deadlines of `row` moved from `moved` because of the calendar notice `notice`
/// (`<scope> <version>`).
pub fn deadlines_moved(
    row: &CaseRow,
    moved: &Moved,
    notice: &str,
    today: NaiveDate,
) -> anyhow::Result<NewEvent> {
    let (scope, version) = notice.split_once(' ').unwrap_or((notice, ""));
    Ok(NewEvent::new(
        ServiceKind::Case,
        row.id.to_string(),
        &region(row)?,
        &CaseDeadlinesMoved {
            case_id: row.id.to_string(),
            region_code: row.region_code.clone(),
            matter_id: row.matter_id.to_string(),
            calendar_scope: scope.to_string(),
            calendar_version: version.to_string(),
            old_promised_deadline: date(moved.old_promised),
            promised_deadline: date(row.promised_deadline),
            old_statutory_deadline: date(moved.old_statutory),
            statutory_deadline: date(row.statutory_deadline),
            provisional: row.provisional,
            case_version: row.version,
            on_date: today.to_string(),
        },
    ))
}

pub fn notice_violated(
    row: &CaseRow,
    materials: &[String],
    actor: &str,
) -> anyhow::Result<NewEvent> {
    Ok(NewEvent::new(
        ServiceKind::Case,
        row.id.to_string(),
        &region(row)?,
        &OneTimeNoticeViolated {
            case_id: row.id.to_string(),
            region_code: row.region_code.clone(),
            matter_id: row.matter_id.to_string(),
            materials: materials.to_vec(),
            actor: actor.to_string(),
        },
    ))
}

/// A calendar notice was loaded (keyed by its scope, so one scope's versions stay in order).
pub fn notice_loaded(
    notice: &xiaoneng_calendar::Notice,
    text: &str,
    by: &str,
    region: &RegionCode,
) -> anyhow::Result<NewEvent> {
    Ok(NewEvent::new(
        ServiceKind::Case,
        notice.scope.key(),
        region,
        &CalendarNoticeLoaded {
            scope: notice.scope.key(),
            version: notice.version.clone(),
            source: notice.source.clone(),
            fabricated: notice.fabricated,
            text: text.to_string(),
            loaded_by: by.to_string(),
        },
    ))
}
