//! Events the complaint service publishes on `xiaoneng.complaint.events`: every filing, merge,
//! step, reminder, escalation, conclusion and callback. Built from the complaint's substance
//! only: no function here is given the complainant's identity.

use crate::domain::wire::{channel, finding, kind, state, target};
use crate::domain::{self, ComplaintRow, State};
use chrono::NaiveDate;
use xiaoneng_kit::events::NewEvent;
use xiaoneng_kit::region::RegionCode;
use xiaoneng_kit::ServiceKind;
use xiaoneng_proto::complaint::events::v1 as ev;

fn region(code: &str) -> anyhow::Result<RegionCode> {
    RegionCode::parse(code).map_err(anyhow::Error::msg)
}

fn new(c: &ComplaintRow, msg: &impl prost::Name) -> anyhow::Result<NewEvent> {
    Ok(NewEvent::new(
        ServiceKind::Complaint,
        c.id.to_string(),
        &region(&c.region_code)?,
        msg,
    ))
}

fn date(d: Option<NaiveDate>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

pub fn filed(c: &ComplaintRow) -> anyhow::Result<NewEvent> {
    new(
        c,
        &ev::ComplaintFiled {
            complaint_id: c.id.to_string(),
            region_code: c.region_code.clone(),
            kind: kind(c.kind) as i32,
            category: c.category.clone(),
            channel: channel(c.channel) as i32,
            target: Some(target(c)),
            anonymous: c.anonymous,
            fast_track: c.fast_track,
            due_date: date(c.due_on),
            to_discipline: c.to_discipline,
            linked_case_id: c.linked_case_id.clone(),
            linked_complaint_id: c.linked_complaint_id.clone(),
            on_date: cst_date(c.filed_at),
        },
    )
}

/// A time's day in China Standard Time.
fn cst_date(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&xiaoneng_kit::clock::cst())
        .date_naive()
        .to_string()
}

pub fn merged(c: &ComplaintRow) -> anyhow::Result<NewEvent> {
    new(
        c,
        &ev::ComplaintMerged {
            complaint_id: c.id.to_string(),
            region_code: c.region_code.clone(),
            merged: c.merged,
        },
    )
}

/// What kind of step event: a step taken, or the system's reminder / escalation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    pub reminder: bool,
    pub overdue: bool,
    pub escalated: bool,
    pub extended: bool,
    pub reopened: bool,
}

pub fn step(
    c: &ComplaintRow,
    from: State,
    actor: &str,
    today: NaiveDate,
    f: Flags,
) -> anyhow::Result<NewEvent> {
    new(
        c,
        &ev::ComplaintStepChanged {
            complaint_id: c.id.to_string(),
            region_code: c.region_code.clone(),
            from_state: state(from) as i32,
            to_state: state(c.state) as i32,
            actor: actor.to_string(),
            assigned_to: c.assigned_to.clone(),
            due_date: date(c.due_on),
            on_date: today.to_string(),
            reminder: f.reminder,
            overdue: f.overdue,
            escalated: f.escalated,
            extended: f.extended,
            reopened: f.reopened,
            category: c.category.clone(),
        },
    )
}

pub fn concluded(c: &ComplaintRow) -> anyhow::Result<NewEvent> {
    new(
        c,
        &ev::ComplaintConcluded {
            complaint_id: c.id.to_string(),
            region_code: c.region_code.clone(),
            finding: finding(c.finding) as i32,
            category: c.category.clone(),
            responsible_unit: c.responsible_unit.clone(),
            responsible_person: c.responsible_person.clone(),
            target: Some(target(c)),
            to_discipline: c.to_discipline,
            retaliation: c.kind == domain::Kind::Retaliation,
            on_date: cst_date(c.updated_at),
        },
    )
}

pub fn callback(c: &ComplaintRow) -> anyhow::Result<NewEvent> {
    new(
        c,
        &ev::CallbackRecorded {
            complaint_id: c.id.to_string(),
            region_code: c.region_code.clone(),
            satisfaction: c.satisfaction.clone(),
        },
    )
}
